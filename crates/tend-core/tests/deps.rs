//! Transcripts of readiness, checks and dependency order: who is spawned when, who waits, who
//! stops first, and what a failed check leads to.

mod common;

use std::time::Duration;

use common::*;
use tend_core::*;

fn id(process: usize) -> InstanceId {
    InstanceId {
        process,
        replica: 0,
    }
}

fn notify(mut p: ProcessSpec) -> ProcessSpec {
    p.ready = Some(ReadySpec {
        check: ReadyCheck::Notify,
        start_timeout: None,
        watchdog: None,
    });
    p
}

fn needs(mut p: ProcessSpec, deps: &[(&str, Condition)]) -> ProcessSpec {
    p.depends_on = deps
        .iter()
        .map(|&(name, condition)| Dependency {
            name: name.into(),
            condition,
        })
        .collect();
    p
}

/// The processes whose instances the effects spawn, by name.
fn spawned_names(h: &Harness, effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Spawn { instance, .. } => Some(h.sup.instance_name(*instance)),
            _ => None,
        })
        .collect()
}

/// The names of the instances whose groups get their stop signal (SIGTERM) in `effects`.
fn stopped_names(h: &Harness, effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Notify(Notice::Stopping { instance, .. }) => {
                Some(h.sup.instance_name(*instance))
            }
            _ => None,
        })
        .collect()
}

fn run_of(h: &Harness, process: usize) -> RunId {
    h.sup.instance(id(process)).unwrap().run.unwrap()
}

fn ready(h: &mut Harness, process: usize) -> Vec<Effect> {
    let run = run_of(h, process);
    h.feed(Input::Readiness {
        run,
        fact: ReadyFact::Ready,
    })
}

fn exit(h: &mut Harness, process: usize, code: i32) -> Vec<Effect> {
    let run = run_of(h, process);
    h.feed(Input::Exited {
        run,
        status: ExitStatus::Code(code),
        group_left: false,
    })
}

/// db (ready by notify) → migrate (completed) → web (ready) → worker, and an independent
/// cache.
fn stack() -> Harness {
    let mut migrate = needs(proc("migrate"), &[("db", Condition::Ready)]);
    migrate.restart = RestartPolicy::OnFailure;
    Harness::new(vec![
        notify(proc("db")),
        migrate,
        needs(
            notify(proc("web")),
            &[("db", Condition::Ready), ("migrate", Condition::Completed)],
        ),
        needs(proc("worker"), &[("web", Condition::Ready)]),
        proc("cache"),
    ])
}

#[test]
fn a_chain_starts_in_order_each_when_its_conditions_hold_and_independents_at_once() {
    let mut h = stack();
    let up = h.feed(Input::Up(None));
    assert_eq!(spawned_names(&h, &up), ["db.0", "cache.0"]);
    h.spawn_all(&up);
    for (p, on) in [(1, "db"), (2, "db"), (3, "web")] {
        assert_eq!(h.state(p, 0), State::Waiting);
        assert_eq!(h.sup.waiting_for(id(p))[0].dependency, on);
    }
    assert_eq!(h.state(0, 0), State::Running, "spawned, not ready");
    let effects = ready(&mut h, 0);
    assert_eq!(spawned_names(&h, &effects), ["migrate.0"]);
    h.spawn_all(&effects);
    assert_eq!(h.state(2, 0), State::Waiting, "web waits for migrate");
    let effects = exit(&mut h, 1, 0);
    assert_eq!(h.state(1, 0), State::Exited);
    assert_eq!(spawned_names(&h, &effects), ["web.0"]);
    h.spawn_all(&effects);
    assert_eq!(
        h.state(3, 0),
        State::Waiting,
        "worker waits for web to be ready"
    );
    let effects = ready(&mut h, 2);
    assert_eq!(spawned_names(&h, &effects), ["worker.0"]);
}

#[test]
fn everything_stops_dependents_first() {
    let mut h = stack();
    let up = h.feed(Input::Up(None));
    h.spawn_all(&up);
    let e = ready(&mut h, 0);
    h.spawn_all(&e);
    let e = exit(&mut h, 1, 0);
    h.spawn_all(&e);
    let e = ready(&mut h, 2);
    h.spawn_all(&e);
    h.now += ms(2000);
    h.feed(Input::Tick);
    let effects = h.feed(Input::ShutdownRequested { force: false });
    assert_eq!(stopped_names(&h, &effects), ["worker.0", "cache.0"]);
    let effects = exit(&mut h, 3, 0);
    assert_eq!(stopped_names(&h, &effects), ["web.0"]);
    let effects = exit(&mut h, 2, 0);
    assert_eq!(stopped_names(&h, &effects), ["db.0"]);
    // A forced stop kills what is left at once, order or not.
    let effects = h.feed(Input::ShutdownRequested { force: true });
    assert!(signals(&effects).iter().any(|&(_, s)| s == Signal::Kill));
}

#[test]
fn starting_one_process_starts_what_it_needs_unless_told_not_to() {
    let mut h = stack();
    let web = Target::Process(2);
    let effects = h.feed(Input::StartOnlyRequested(web.clone()));
    assert!(spawned_names(&h, &effects).is_empty());
    assert_eq!(h.state(2, 0), State::Waiting);
    assert_eq!(h.state(0, 0), State::Stopped);
    // db is stopped and nobody will start it: web says so, once.
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Notify(Notice::DependencyGaveUp { dependency, .. }) if dependency == "db"
    )));
    assert!(h.sup.waiting_for(id(2))[0].gave_up);
    let effects = h.feed(Input::StartRequested(web));
    assert_eq!(
        spawned_names(&h, &effects),
        ["db.0"],
        "db, and migrate once db is ready"
    );
    assert_eq!(
        h.state(3, 0),
        State::Stopped,
        "worker is not web's dependency"
    );
}

#[test]
fn a_dependency_that_gives_up_is_reported_by_its_waiting_dependents() {
    let mut db = notify(proc("db"));
    db.max_restarts.count = 0;
    let mut h = Harness::new(vec![db, needs(proc("web"), &[("db", Condition::Ready)])]);
    let up = h.feed(Input::Up(None));
    h.spawn_all(&up);
    let effects = exit(&mut h, 0, 1);
    assert_eq!(h.state(0, 0), State::Failed);
    let told: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Notify(Notice::DependencyGaveUp {
                instance,
                dependency,
                state,
                no_instances,
                ..
            }) => Some((*instance, dependency.clone(), *state, *no_instances)),
            _ => None,
        })
        .collect();
    assert_eq!(told, [(id(1), "db".to_owned(), State::Failed, false)]);
    assert_eq!(h.state(1, 0), State::Waiting);
    // Told once, not at every fact.
    let effects = h.advance(ms(10));
    assert!(effects.is_empty());
}

#[test]
fn a_dependency_restart_leaves_dependents_alone_unless_restart_with() {
    let mut with = needs(proc("with"), &[("db", Condition::Ready)]);
    with.restart_with = vec!["db".into()];
    let mut h = Harness::new(vec![
        notify(proc("db")),
        needs(proc("alone"), &[("db", Condition::Ready)]),
        with,
    ]);
    let up = h.feed(Input::Up(None));
    h.spawn_all(&up);
    let e = ready(&mut h, 0);
    h.spawn_all(&e);
    let (alone, with) = (run_of(&h, 1), run_of(&h, 2));
    let effects = exit(&mut h, 0, 1);
    assert_eq!(stopped_names(&h, &effects), ["with.0"]);
    assert_eq!(run_of(&h, 1), alone, "dinit's smooth recovery");
    let effects = h.feed(Input::Exited {
        run: with,
        status: ExitStatus::Signaled(15),
        group_left: false,
    });
    assert!(spawned_names(&h, &effects).is_empty());
    assert_eq!(h.state(2, 0), State::Waiting, "until db is ready again");
    let effects = h.advance(ms(100));
    h.spawn_all(&effects);
    let effects = ready(&mut h, 0);
    assert_eq!(spawned_names(&h, &effects), ["with.0"]);
}

#[test]
fn a_never_ready_run_fails_by_its_start_timeout_and_eventually_gives_up() {
    let mut p = notify(proc("slow"));
    p.ready.as_mut().unwrap().start_timeout = Some(ms(500));
    p.restart = RestartPolicy::OnFailure;
    p.max_restarts = MaxRestarts {
        count: 1,
        within: Duration::from_secs(60),
    };
    let mut h = Harness::new(vec![p]);
    let up = h.feed(Input::Up(None));
    h.spawn_all(&up);
    for attempt in 0..2 {
        let effects = h.advance(ms(500));
        assert!(
            effects.iter().any(|e| matches!(
                e,
                Effect::Notify(Notice::CheckFailed {
                    failure: Failure::StartTimeout(_),
                    ..
                })
            )),
            "attempt {attempt}: {effects:?}"
        );
        // It exits 0 on SIGTERM: still a failed start, whatever its code.
        let effects = exit(&mut h, 0, 0);
        if attempt == 0 {
            let e = h.advance(restart_delays(&effects)[0]);
            h.spawn_all(&e);
        }
    }
    assert_eq!(h.state(0, 0), State::Failed);
}

#[test]
fn a_missed_watchdog_restarts_and_pings_keep_it_alive() {
    let mut p = notify(proc("dog"));
    p.ready.as_mut().unwrap().watchdog = Some(ms(1000));
    let mut h = Harness::new(vec![p]);
    let up = h.feed(Input::Up(None));
    h.spawn_all(&up);
    ready(&mut h, 0);
    for _ in 0..5 {
        assert!(h.advance(ms(900)).is_empty());
        let run = run_of(&h, 0);
        h.feed(Input::Readiness {
            run,
            fact: ReadyFact::WatchdogPing,
        });
    }
    let effects = h.advance(ms(1000));
    assert!(matches!(
        effects[0],
        Effect::Notify(Notice::CheckFailed {
            failure: Failure::Watchdog(_),
            ..
        })
    ));
    let effects = exit(&mut h, 0, 0);
    assert_eq!(restart_delays(&effects).len(), 1, "restarted by its policy");
}

#[test]
fn a_health_check_restarts_after_failures_in_a_row_only() {
    let mut p = notify(proc("web"));
    p.health = Some(HealthSpec {
        probe: ProbeSpec {
            kind: Probe::Http("http://127.0.0.1:1/".into()),
            period: ms(1000),
            timeout: ms(1000),
        },
        failures: 3,
    });
    let mut h = Harness::new(vec![p]);
    let up = h.feed(Input::Up(None));
    h.spawn_all(&up);
    let run = run_of(&h, 0);
    let check = |h: &mut Harness, ok: bool| {
        h.feed(Input::HealthChecked {
            run,
            result: if ok { Ok(()) } else { Err("HTTP 503".into()) },
        })
    };
    assert!(
        check(&mut h, false).is_empty(),
        "not ready yet: not counted"
    );
    ready(&mut h, 0);
    check(&mut h, false);
    check(&mut h, false);
    check(&mut h, true);
    let view = h.sup.instance(id(0)).unwrap();
    assert_eq!(view.health.unwrap().failures_in_row, 0);
    assert_eq!(view.health.unwrap().last_failure, Some("HTTP 503"));
    check(&mut h, false);
    check(&mut h, false);
    let effects = check(&mut h, false);
    assert!(matches!(
        &effects[0],
        Effect::Notify(Notice::CheckFailed {
            failure: Failure::Unhealthy { failures: 3, .. },
            ..
        })
    ));
    assert_eq!(h.state(0, 0), State::Stopping);
}

#[test]
fn a_memory_limit_fails_a_run_above_it_for_long_enough_only() {
    let mut p = proc("web");
    p.memory_limit = Some(MemoryLimit {
        bytes: 1000,
        for_at_least: ms(3000),
    });
    let mut h = Harness::new(vec![p]);
    let up = h.feed(Input::Up(None));
    h.spawn_all(&up);
    let run = run_of(&h, 0);
    let sample = |h: &mut Harness, bytes: u64| h.feed(Input::MemoryUsed { run, bytes });
    assert!(sample(&mut h, 5000).is_empty(), "above, from now");
    h.advance(ms(2000));
    assert!(
        sample(&mut h, 999).is_empty(),
        "back under: the clock starts again"
    );
    assert!(sample(&mut h, 5000).is_empty());
    h.advance(ms(2999));
    assert!(sample(&mut h, 5000).is_empty(), "not yet for 3s");
    h.advance(ms(1));
    let effects = sample(&mut h, 5000);
    assert!(
        matches!(
            &effects[0],
            Effect::Notify(Notice::CheckFailed {
                failure: Failure::MemoryLimit {
                    bytes: 5000,
                    limit: 1000
                },
                ..
            })
        ),
        "{effects:?}"
    );
    assert_eq!(h.state(0, 0), State::Stopping);
    // A sample of a run on its way down, or of an old run, changes nothing.
    assert!(sample(&mut h, 9000).is_empty());
    let effects = exit(&mut h, 0, 143);
    assert_eq!(restart_delays(&effects).len(), 1, "restarted by its policy");
}

#[test]
fn oom_kills_are_told_with_the_exit_and_counted_over_the_instances_life() {
    let mut h = Harness::new(vec![proc("web")]);
    let up = h.feed(Input::Up(None));
    h.spawn_all(&up);
    let run = run_of(&h, 0);
    assert!(
        h.feed(Input::OomKilled { run, kills: 1 }).is_empty(),
        "a fact to remember, nothing to do"
    );
    let killed = h.feed(Input::Exited {
        run,
        status: ExitStatus::Signaled(9),
        group_left: false,
    });
    assert!(
        killed.iter().any(|e| matches!(
            e,
            Effect::Notify(Notice::Ended {
                oom_kills: 1,
                next: Next::Restart(_),
                ..
            })
        )),
        "{killed:?}"
    );
    let view = h.sup.instance(id(0)).unwrap();
    assert!(view.last_exit_oom);
    assert_eq!(view.oom_kills, 1);
    // An OOM kill of a run that is gone (or of another run) changes nothing.
    assert!(h.feed(Input::OomKilled { run, kills: 5 }).is_empty());
    assert_eq!(h.sup.instance(id(0)).unwrap().oom_kills, 1);
    // The next run ends by itself: its exit is not an OOM kill, the count stays.
    let restarted = h.advance(ms(60_000));
    h.spawn_all(&restarted);
    let ended = exit(&mut h, 0, 1);
    assert!(
        ended
            .iter()
            .any(|e| matches!(e, Effect::Notify(Notice::Ended { oom_kills: 0, .. }))),
        "{ended:?}"
    );
    let view = h.sup.instance(id(0)).unwrap();
    assert!(!view.last_exit_oom);
    assert_eq!(view.oom_kills, 1);
    // A run tend stops is not one the OOM killer ended, whatever it killed in it.
    let restarted = h.advance(ms(60_000));
    h.spawn_all(&restarted);
    let run = run_of(&h, 0);
    h.feed(Input::OomKilled { run, kills: 1 });
    h.feed(Input::StopRequested(Target::All));
    let stopped = h.feed(Input::Exited {
        run,
        status: ExitStatus::Signaled(15),
        group_left: false,
    });
    assert!(
        stopped
            .iter()
            .any(|e| matches!(e, Effect::Notify(Notice::Ended { oom_kills: 1, .. }))),
        "{stopped:?}"
    );
    let view = h.sup.instance(id(0)).unwrap();
    assert!(!view.last_exit_oom);
    assert_eq!(view.oom_kills, 2);
}

#[test]
fn status_and_extended_start_timeout_from_sd_notify() {
    let mut p = notify(proc("db"));
    p.ready.as_mut().unwrap().start_timeout = Some(ms(1000));
    let mut h = Harness::new(vec![p]);
    let up = h.feed(Input::Up(None));
    h.spawn_all(&up);
    let run = run_of(&h, 0);
    for fact in [
        ReadyFact::Status("recovering".into()),
        ReadyFact::MainPid(4242),
        ReadyFact::ExtendTimeout(ms(5000)),
    ] {
        h.feed(Input::Readiness { run, fact });
    }
    let view = h.sup.instance(id(0)).unwrap();
    assert_eq!(view.status_text, Some("recovering"));
    assert_eq!(view.main_pid, Some(4242));
    assert!(h.advance(ms(4000)).is_empty(), "the timeout was extended");
    ready(&mut h, 0);
    assert_eq!(h.state(0, 0), State::Ready);
    h.feed(Input::Readiness {
        run,
        fact: ReadyFact::NotReady,
    });
    assert_eq!(h.state(0, 0), State::Running, "RELOADING=1");
}

#[test]
fn a_database_outlives_a_web_server_that_needed_it_only_through_a_migration() {
    let mut migrate = needs(proc("migrate"), &[("db", Condition::Ready)]);
    migrate.restart = RestartPolicy::OnFailure;
    let mut h = Harness::new(vec![
        notify(proc("db")),
        migrate,
        needs(proc("web"), &[("migrate", Condition::Completed)]),
    ]);
    let up = h.feed(Input::Up(None));
    h.spawn_all(&up);
    let e = ready(&mut h, 0);
    h.spawn_all(&e);
    let e = exit(&mut h, 1, 0);
    h.spawn_all(&e);
    let effects = h.feed(Input::ShutdownRequested { force: false });
    assert_eq!(stopped_names(&h, &effects), ["web.0"]);
    let effects = exit(&mut h, 2, 0);
    assert_eq!(stopped_names(&h, &effects), ["db.0"]);
}
