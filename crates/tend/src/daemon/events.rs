//! The supervisor's notices as structured events ([`tend_proto::Event`]), and the line of text
//! each one is on the terminal and in tend.log. The driver publishes every event on a
//! broadcast channel (for the event stream and the HTTP API of later issues) and renders it.

use std::time::SystemTime;

use tend_core::time::format_duration_rounded;
use tend_core::{ExitStatus, Failure, Next, Notice, ReloadSummary, State, Supervisor};
use tend_proto::{Event, EventKind, LastExit, NextStep};

/// The event of a notice of the supervisor, at `now`.
pub fn of_notice(sup: &Supervisor, notice: &Notice, now: SystemTime) -> Event {
    let name = |id: &tend_core::InstanceId| Some(sup.instance_name(*id));
    let (instance, kind) = match notice {
        Notice::Started { instance, pid } => (name(instance), EventKind::Spawned { pid: *pid }),
        Notice::Running { instance } => (name(instance), EventKind::Running),
        Notice::Ended {
            instance,
            how,
            oom_kills,
            next,
        } => {
            let how = last_exit(how);
            let oom_kills = u64::from(*oom_kills);
            let kind = match next {
                Next::Restart(d) => EventKind::Exited {
                    how,
                    next: NextStep::RestartInMs(millis(*d)),
                    oom_kills,
                },
                Next::Stay(State::Failed) => {
                    let spec = sup.process(instance.process);
                    EventKind::GaveUp {
                        how,
                        process: spec.map(|p| p.name.clone()).unwrap_or_default(),
                        restarts: spec.map_or(0, |p| p.max_restarts.count),
                        within_ms: spec.map_or(0, |p| millis(p.max_restarts.within)),
                        retry_in_ms: spec.and_then(|p| p.retry_after).map(millis),
                        oom_kills,
                    }
                }
                Next::Stay(state) => EventKind::Exited {
                    how,
                    next: NextStep::Stay(proto_state(*state)),
                    oom_kills,
                },
            };
            (name(instance), kind)
        }
        Notice::Stopping { instance, signal } => (
            name(instance),
            EventKind::Stopping {
                signal: signal.name().to_owned(),
            },
        ),
        Notice::Killed { instance, after } => (
            name(instance),
            EventKind::Killed {
                after_ms: millis(*after),
            },
        ),
        Notice::Cancelled { instance } => (name(instance), EventKind::Cancelled),
        Notice::EssentialEnded {
            instance,
            exit_code,
        } => (
            name(instance),
            EventKind::EssentialEnded {
                exit_code: *exit_code,
            },
        ),
        Notice::Waiting { instance, on } => (
            name(instance),
            EventKind::Waiting {
                on: on
                    .iter()
                    .map(|d| format!("{} {}", d.name, d.condition.name()))
                    .collect(),
            },
        ),
        Notice::DependencyGaveUp {
            instance,
            dependency,
            condition,
            state,
            no_instances,
        } => (
            name(instance),
            EventKind::DependencyGaveUp {
                dependency: dependency.clone(),
                condition: condition.name().to_owned(),
                state: proto_state(*state),
                no_instances: *no_instances,
            },
        ),
        Notice::Ready { instance } => (name(instance), EventKind::Ready),
        Notice::Retrying { instance, after } => (
            name(instance),
            EventKind::Retrying {
                after_ms: millis(*after),
            },
        ),
        Notice::Health { instance, result } => (
            name(instance),
            EventKind::Health {
                healthy: result.is_ok(),
                reason: result.clone().err(),
            },
        ),
        Notice::CheckFailed { instance, failure } => {
            let (check, reason) = match failure {
                Failure::StartTimeout(d) => (
                    "start_timeout",
                    format!(
                        "not ready within its start_timeout of {}",
                        format_duration_rounded(*d)
                    ),
                ),
                Failure::Watchdog(d) if d.is_zero() => {
                    ("watchdog", "it sent WATCHDOG=trigger".to_owned())
                }
                Failure::Watchdog(d) => (
                    "watchdog",
                    format!("no WATCHDOG=1 within {}", format_duration_rounded(*d)),
                ),
                Failure::MemoryLimit { bytes, limit } => (
                    "memory_limit",
                    format!(
                        "its processes used {}, above its memory_limit of {}",
                        rounded_size(*bytes),
                        crate::config::format_size(*limit)
                    ),
                ),
                Failure::Unhealthy { failures, reason } => (
                    "health",
                    format!("health check failed {failures} times in a row, last: {reason}"),
                ),
            };
            (
                name(instance),
                EventKind::CheckFailed {
                    check: check.to_owned(),
                    reason,
                },
            )
        }
    };
    Event {
        time: super::logfile::rfc3339_millis(now),
        instance,
        kind,
    }
}

/// The event of an applied reload, at `now`.
pub fn of_reload(summary: &ReloadSummary, now: SystemTime) -> Event {
    Event {
        time: super::logfile::rfc3339_millis(now),
        instance: None,
        kind: EventKind::Reloaded {
            added: summary.added.clone(),
            removed: summary.removed.clone(),
            changed: summary.changed.clone(),
            unchanged: summary.unchanged.clone(),
            keys: summary.keys.clone(),
            not_running: summary.not_running.clone(),
        },
    }
}

/// The line of text of an event, for the terminal and tend.log.
pub fn render(event: &Event) -> String {
    let name = event.instance.as_deref().unwrap_or("tend");
    match &event.kind {
        EventKind::Spawned { pid } => format!("{name} started (pid {pid})"),
        EventKind::Running => format!("{name} is running"),
        EventKind::Exited {
            how,
            next,
            oom_kills,
        } => {
            let next = match next {
                NextStep::RestartInMs(0) => "restarting now".to_owned(),
                NextStep::RestartInMs(ms) => format!("restarting in {}", duration(*ms)),
                NextStep::Stay(state) => format!("now {state}"),
            };
            format!("{name} {}; {next}", describe_run_end(how, *oom_kills))
        }
        EventKind::GaveUp {
            how,
            process,
            restarts,
            within_ms,
            retry_in_ms: None,
            oom_kills,
        } => format!(
            "{name} {}; giving up: {restarts} restarts within {} (state failed; `tend start \
             {process}` tries again)",
            describe_run_end(how, *oom_kills),
            duration(*within_ms)
        ),
        EventKind::GaveUp {
            how,
            process,
            restarts,
            within_ms,
            retry_in_ms: Some(retry),
            oom_kills,
        } => format!(
            "{name} {}; giving up: {restarts} restarts within {} (state failed; tried again \
             in {} by retry_after, or now by `tend start {process}`)",
            describe_run_end(how, *oom_kills),
            duration(*within_ms),
            duration(*retry)
        ),
        EventKind::Retrying { after_ms } => format!(
            "{name} is tried again: {} passed since it failed (retry_after); its restarts \
             count afresh",
            duration(*after_ms)
        ),
        EventKind::Stopping { signal } => format!("{name} stopping ({signal} sent)"),
        EventKind::Killed { after_ms } => format!(
            "{name} still running {} after the stop signal: SIGKILL sent to its process group",
            duration(*after_ms)
        ),
        EventKind::Cancelled => format!("{name} stopped before its next start"),
        EventKind::EssentialEnded { exit_code } => format!(
            "{name} is essential (on_exit = \"shutdown\") and ended for good: stopping \
             everything; tend exits with {exit_code}"
        ),
        EventKind::Waiting { on } => format!("{name} waiting for {}", on.join(", ")),
        EventKind::DependencyGaveUp {
            dependency,
            condition,
            no_instances: true,
            ..
        } => format!(
            "{name} waits for {dependency} to be {condition}, but {dependency} has no instances \
             (`tend scale {dependency}=N`)"
        ),
        EventKind::DependencyGaveUp {
            dependency,
            condition,
            state,
            no_instances: false,
        } => format!(
            "{name} waits for {dependency} to be {condition}, but {dependency} is {state} and \
             will not get there by itself (`tend start {dependency}` tries it again)"
        ),
        EventKind::Ready => format!("{name} is ready"),
        EventKind::Health { healthy: true, .. } => format!("{name} is healthy again"),
        EventKind::Health { reason, .. } => format!(
            "{name} health check failed: {}",
            reason.as_deref().unwrap_or("no reason given")
        ),
        EventKind::CheckFailed { reason, .. } => {
            format!("{name} failed a check ({reason}): stopping it; its restart policy applies")
        }
        EventKind::Reloaded {
            added,
            removed,
            changed,
            unchanged,
            keys,
            not_running,
        } => {
            let list = |names: &[String]| {
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            };
            let later = if not_running.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} not running: takes effect at its next start)",
                    not_running.join(", ")
                )
            };
            format!(
                "reloaded: added {}; removed {}; changed {}{later}; unchanged {}",
                list(added),
                list(removed),
                list(&with_keys(changed, keys)),
                list(unchanged)
            )
        }
    }
}

/// The changed processes with what changed in each: `web (command, env (PORT))`.
fn with_keys(
    changed: &[String],
    keys: &std::collections::BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    changed
        .iter()
        .map(|name| match keys.get(name) {
            Some(keys) if !keys.is_empty() => format!("{name} ({})", keys.join(", ")),
            _ => name.clone(),
        })
        .collect()
}

/// How a run ended, as the protocol says it.
pub fn last_exit(how: &Result<ExitStatus, String>) -> LastExit {
    match how {
        Ok(ExitStatus::Code(code)) => LastExit::Code(*code),
        Ok(ExitStatus::Signaled(n)) => LastExit::Signal(tend_os::signal_name(*n)),
        Err(error) => LastExit::SpawnError(error.clone()),
    }
}

/// "exited with status 1", "was killed by SIGKILL", "could not start: …".
pub fn describe(how: &LastExit) -> String {
    match how {
        LastExit::Code(code) => format!("exited with status {code}"),
        LastExit::Signal(signal) => format!("was killed by {signal}"),
        LastExit::SpawnError(error) => format!("could not start: {error}"),
    }
}

/// How a run ended, and the OOM killer's part in it: "was killed by SIGKILL (the OOM
/// killer: its cgroup reached memory_max)".
fn describe_run_end(how: &LastExit, oom_kills: u64) -> String {
    let how_text = describe(how);
    match (how, oom_kills) {
        (_, 0) => how_text,
        (LastExit::Signal(signal), 1) if signal == "SIGKILL" => {
            format!("{how_text} (the OOM killer: its cgroup reached memory_max)")
        }
        (_, kills) => format!(
            "{how_text} (the OOM killer killed {kills} of its processes: its cgroup reached \
             memory_max)"
        ),
    }
}

/// The protocol's name of a state.
pub fn proto_state(state: State) -> tend_proto::State {
    match state {
        State::Stopped => tend_proto::State::Stopped,
        State::Waiting => tend_proto::State::Waiting,
        State::Starting => tend_proto::State::Starting,
        State::Running => tend_proto::State::Running,
        State::Ready => tend_proto::State::Ready,
        State::Backoff => tend_proto::State::Backoff,
        State::Stopping => tend_proto::State::Stopping,
        State::Exited => tend_proto::State::Exited,
        State::Failed => tend_proto::State::Failed,
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn duration(ms: u64) -> String {
    format_duration_rounded(std::time::Duration::from_millis(ms))
}

/// A size in bytes as people read it: `612.4MiB`, `1.2GiB`, `900B`.
fn rounded_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1}{}", UNITS[unit])
}
