//! Every state × every input, as a table checked in beside this file (`state_table.txt`), in
//! the spirit of s6-supervise's `actions[state][event]`: any change of behaviour shows up as a
//! diff of that table. When a change is meant, regenerate it with
//! `UPDATE_STATE_TABLE=1 cargo test -p tend-core --test state_table` and review the diff.
//!
//! Each row puts one instance in a state by real inputs, gives it one input, and writes the
//! state it ends in and the effects, in short: `spawn`, a signal name, a notice, `exit`.

mod common;

use std::fmt::Write as _;
use std::time::Duration;

use common::*;
use tend_core::*;

/// The states an instance can be in, with how to get there from a fresh supervisor.
const STATES: &[&str] = &[
    "stopped",
    "starting (spawn asked)",
    "starting",
    "running",
    "running, not ready",
    "ready",
    "waiting",
    "backoff",
    "stopping",
    "stopping, then restart",
    "stopping, killed",
    "exited",
    "failed",
    "stopping all",
];

/// The inputs given in each state.
const INPUTS: &[&str] = &[
    "start",
    "stop",
    "restart",
    "spawned",
    "spawn failed",
    "exited 0",
    "exited 1",
    "exited 1, group left",
    "tick at deadline",
    "ready",
    "watchdog ping",
    "health failed",
    "reload, changed",
    "shutdown",
    "shutdown, force",
];

/// The process of the table: restarts on failure, 1 s start_secs unless `running` needs 0.
fn process(start_secs: u64, restart: RestartPolicy, max_restarts: u32) -> ProcessSpec {
    let mut p = proc("p");
    p.restart = restart;
    p.start_secs = Duration::from_secs(start_secs);
    p.backoff = Backoff {
        initial: ms(500),
        max: ms(4000),
        factor: 2.0,
    };
    p.max_restarts = MaxRestarts {
        count: max_restarts,
        within: Duration::from_secs(60),
    };
    p.stop_timeout = Duration::from_secs(2);
    p
}

/// The process with a readiness check by sd_notify (start timeout 5 s, watchdog 3 s) and a
/// health check that fails a run after 2 failures.
fn with_checks(mut p: ProcessSpec) -> ProcessSpec {
    p.ready = Some(ReadySpec {
        check: ReadyCheck::Notify,
        start_timeout: Some(Duration::from_secs(5)),
        watchdog: Some(Duration::from_secs(3)),
    });
    p.health = Some(HealthSpec {
        probe: ProbeSpec {
            kind: Probe::Tcp("127.0.0.1:1".into()),
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
        },
        failures: 2,
    });
    p
}

/// A supervisor with the instance in `state`, and its live run if it has one.
fn setup(state: &str) -> (Harness, Option<RunId>) {
    let (start_secs, restart, max) = match state {
        "starting" => (1, RestartPolicy::OnFailure, 5),
        "exited" => (0, RestartPolicy::Never, 5),
        "failed" => (0, RestartPolicy::OnFailure, 0),
        _ => (0, RestartPolicy::OnFailure, 5),
    };
    let mut p = process(start_secs, restart, max);
    if state == "running, not ready" || state == "ready" {
        p = with_checks(p);
    }
    if state == "waiting" {
        // `p` waits for `dep` to be ready; `dep` is spawned and not ready yet.
        let mut dep = with_checks(process(0, RestartPolicy::OnFailure, 5));
        dep.name = "dep".into();
        dep.autostart = false;
        p.depends_on = vec![Dependency {
            name: "dep".into(),
            condition: Condition::Ready,
        }];
        let mut h = Harness::new(vec![p, dep]);
        let effects = h.feed(Input::Up(None));
        h.spawn_all(&effects);
        return (h, None);
    }
    let mut h = Harness::new(vec![p]);
    if state == "stopped" {
        return (h, None);
    }
    let asked = spawns(&h.feed(Input::Up(None)))[0];
    if state == "starting (spawn asked)" {
        return (h, Some(asked));
    }
    h.feed(Input::Spawned {
        run: asked,
        pid: 77,
    });
    let run = Some(asked);
    let exit1 = Input::Exited {
        run: asked,
        status: ExitStatus::Code(1),
        group_left: false,
    };
    match state {
        "starting" | "running" | "running, not ready" => {}
        "ready" => {
            h.feed(Input::Readiness {
                run: asked,
                fact: ReadyFact::Ready,
            });
        }
        "backoff" | "failed" => {
            h.feed(exit1);
            return (h, None);
        }
        "exited" => {
            h.feed(Input::Exited {
                run: asked,
                status: ExitStatus::Code(0),
                group_left: false,
            });
            return (h, None);
        }
        "stopping" => {
            h.feed(Input::StopRequested(Target::All));
        }
        "stopping, then restart" => {
            h.feed(Input::RestartRequested(Target::All));
        }
        "stopping, killed" => {
            h.feed(Input::StopRequested(Target::All));
            h.advance(Duration::from_secs(2));
        }
        "stopping all" => {
            h.feed(Input::ShutdownRequested { force: false });
        }
        other => panic!("no setup for {other}"),
    }
    (h, run)
}

/// One input to the instance whose live run (if any) is `run`.
fn give(h: &mut Harness, run: Option<RunId>, input: &str) -> Vec<Effect> {
    // A fact about a run that is not live is ignored; give one anyway where none is.
    let run = run.unwrap_or(RunId(9999));
    let exited = |code, group_left| Input::Exited {
        run,
        status: ExitStatus::Code(code),
        group_left,
    };
    match input {
        "start" => h.feed(Input::StartRequested(Target::All)),
        "stop" => h.feed(Input::StopRequested(Target::All)),
        "restart" => h.feed(Input::RestartRequested(Target::All)),
        "spawned" => h.feed(Input::Spawned { run, pid: 88 }),
        "spawn failed" => h.feed(Input::SpawnFailed {
            run,
            error: "ENOENT".into(),
        }),
        "exited 0" => h.feed(exited(0, false)),
        "exited 1" => h.feed(exited(1, false)),
        "exited 1, group left" => h.feed(exited(1, true)),
        "tick at deadline" => {
            if let Some(due) = h.sup.next_deadline() {
                h.now = due.max(h.now);
            }
            h.feed(Input::Tick)
        }
        "ready" => {
            // Every live run gets ready (in `waiting`, the dependency's).
            let runs: Vec<RunId> = h.sup.instances().filter_map(|v| v.run).collect();
            runs.into_iter()
                .flat_map(|run| {
                    h.feed(Input::Readiness {
                        run,
                        fact: ReadyFact::Ready,
                    })
                })
                .collect()
        }
        "watchdog ping" => h.feed(Input::Readiness {
            run,
            fact: ReadyFact::WatchdogPing,
        }),
        "health failed" => {
            let mut effects = h.feed(Input::HealthChecked {
                run,
                result: Err("connection refused".into()),
            });
            effects.extend(h.feed(Input::HealthChecked {
                run,
                result: Err("connection refused".into()),
            }));
            effects
        }
        "reload, changed" => {
            let mut p = h.sup.process(0).map(|p| (**p).clone()).unwrap();
            p.argv.push("--changed".into());
            h.feed(Input::ReloadRequested(spec_of(vec![p])))
        }
        "shutdown" => h.feed(Input::ShutdownRequested { force: false }),
        "shutdown, force" => h.feed(Input::ShutdownRequested { force: true }),
        other => panic!("no input {other}"),
    }
}

/// The effects in short.
fn short(effects: &[Effect]) -> String {
    let words: Vec<String> = effects
        .iter()
        .map(|e| match e {
            Effect::Spawn { .. } => "spawn".to_owned(),
            Effect::Signal { signal, .. } => signal.name().to_owned(),
            Effect::Notify(notice) => match notice {
                Notice::Started { .. } => "started".to_owned(),
                Notice::Running { .. } => "running".to_owned(),
                Notice::Ended { next, .. } => match next {
                    Next::Restart(d) => format!("ended:restart({d:?})"),
                    Next::Stay(state) => format!("ended:{state}"),
                },
                Notice::Stopping { .. } => "stopping".to_owned(),
                Notice::Killed { .. } => "killed".to_owned(),
                Notice::Cancelled { .. } => "cancelled".to_owned(),
                Notice::EssentialEnded { exit_code, .. } => format!("essential-ended:{exit_code}"),
                Notice::Waiting { on, .. } => format!("waiting({})", on.len()),
                Notice::DependencyGaveUp { state, .. } => format!("dependency-gave-up:{state}"),
                Notice::Ready { .. } => "ready".to_owned(),
                Notice::Health { result, .. } => format!("health:{}", result.is_ok()),
                Notice::Retrying { .. } => "retrying".to_owned(),
                Notice::CheckFailed { failure, .. } => match failure {
                    Failure::StartTimeout(_) => "check-failed:start-timeout".to_owned(),
                    Failure::Watchdog(_) => "check-failed:watchdog".to_owned(),
                    Failure::Unhealthy { .. } => "check-failed:health".to_owned(),
                    Failure::MemoryLimit { .. } => "check-failed:memory-limit".to_owned(),
                },
            },
            Effect::Reloaded(_) => "reloaded".to_owned(),
            Effect::Exit => "exit".to_owned(),
        })
        .collect();
    if words.is_empty() {
        "-".to_owned()
    } else {
        words.join(" ")
    }
}

/// The whole table as text.
fn table() -> String {
    let mut text = String::from(
        "# state × input → state after | effects (generated by tests/state_table.rs)\n",
    );
    for state in STATES {
        let _ = writeln!(text, "\n## {state}");
        for input in INPUTS {
            let (mut h, run) = setup(state);
            let before = h.state(0, 0);
            let effects = give(&mut h, run, input);
            let after = h
                .sup
                .instance(InstanceId {
                    process: 0,
                    replica: 0,
                })
                .map_or("gone".to_owned(), |v| v.state.to_string());
            let phase = match h.sup.phase() {
                Phase::Running => String::new(),
                phase => format!(" [{phase:?}]"),
            };
            let _ = writeln!(
                text,
                "{input:<22} {before} → {after}{phase} | {}",
                short(&effects)
            );
        }
    }
    text
}

#[test]
fn every_state_and_input_as_checked_in() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/state_table.txt");
    let now = table();
    if std::env::var_os("UPDATE_STATE_TABLE").is_some() {
        std::fs::write(&path, &now).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if now != checked_in {
        let diff: Vec<String> = now
            .lines()
            .zip(checked_in.lines().chain(std::iter::repeat("")))
            .filter(|(a, b)| a != b)
            .map(|(a, b)| format!("- {b}\n+ {a}"))
            .collect();
        panic!(
            "the state table changed ({} lines); if that is meant, run \
             UPDATE_STATE_TABLE=1 cargo test -p tend-core --test state_table and review:\n{}",
            diff.len(),
            diff.join("\n")
        );
    }
}
