//! Structured events: what the supervisor did and saw, as data. The terminal and tend.log
//! render them as lines of text; the event stream of the control socket and the HTTP API (a
//! later issue) will carry them as they are.
//!
//! ```json
//! {"time":"2026-11-29T21:44:09.512Z","instance":"web.0","event":"exited",
//!  "how":{"code":1},"next":{"restart_in_ms":200}}
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::status::LastExit;

/// One event: when, about which instance (if any), and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When it happened, RFC 3339 in UTC with milliseconds.
    pub time: String,
    /// The instance it is about, such as `web.0`; absent for tend's own events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// A run was spawned.
    Spawned {
        /// Its pid, which is also its process group.
        pid: u32,
    },
    /// A run stayed up `start_secs`: it is running.
    Running,
    /// A run ended, or could not be started, and what follows.
    Exited {
        /// How it ended.
        how: LastExit,
        /// What the supervisor does about it.
        next: NextStep,
        /// Processes of the run the kernel's OOM killer killed (its cgroup reached
        /// `memory_max`). Absent when 0.
        #[serde(default, skip_serializing_if = "crate::status::is_zero")]
        oom_kills: u64,
    },
    /// The supervisor gave up on the instance after too many restarts: it is `failed`.
    GaveUp {
        /// How the last run ended.
        how: LastExit,
        /// The process, for `tend start PROCESS`.
        process: String,
        /// `max_restarts.count`.
        restarts: u32,
        /// `max_restarts.within`, in milliseconds.
        within_ms: u64,
        /// With `retry_after`: tend tries it again this many milliseconds from now. Absent
        /// otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_in_ms: Option<u64>,
        /// Processes of the last run the kernel's OOM killer killed. Absent when 0.
        #[serde(default, skip_serializing_if = "crate::status::is_zero")]
        oom_kills: u64,
    },
    /// The stop signal was sent to the instance's process group.
    Stopping {
        /// The signal, such as `"SIGTERM"`.
        signal: String,
    },
    /// The stop timeout passed: SIGKILL was sent to the process group.
    Killed {
        /// The stop timeout, in milliseconds.
        after_ms: u64,
    },
    /// A pending start (a restart in backoff, or a start waiting for its dependencies) was
    /// cancelled by a stop: the instance is stopped.
    Cancelled,
    /// An essential instance (`on_exit = "shutdown"`) ended for good: everything stops, and
    /// tend exits with `exit_code`.
    EssentialEnded {
        /// The code tend exits with.
        exit_code: u8,
    },
    /// An instance is to start but waits for conditions on other processes.
    Waiting {
        /// The conditions that do not hold yet, such as `"db ready"`.
        on: Vec<String>,
    },
    /// A waiting instance's dependency will not get where it must by itself.
    DependencyGaveUp {
        /// The dependency.
        dependency: String,
        /// What the instance waits for: `started`, `ready` or `completed`.
        condition: String,
        /// The dependency's state.
        state: crate::status::State,
        /// The dependency has no instance (`tend scale NAME=0`): it needs a scale, not a
        /// start. Absent when false; added without a new protocol version.
        #[serde(default, skip_serializing_if = "crate::status::is_false")]
        no_instances: bool,
    },
    /// A run got ready.
    Ready,
    /// The liveness check started failing (`reason`), or passes again (no reason).
    Health {
        /// Whether it passes.
        healthy: bool,
        /// Why it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A check failed a run: it is stopped, and its restart policy applies.
    CheckFailed {
        /// `start_timeout`, `watchdog` or `health`.
        check: String,
        /// What happened, for people.
        reason: String,
    },
    /// A failed instance is tried again: its `retry_after` passed since it gave up (its
    /// restart budget starts afresh).
    Retrying {
        /// The `retry_after`, in milliseconds.
        after_ms: u64,
    },
    /// A new config was applied.
    Reloaded {
        /// Processes new in the config.
        added: Vec<String>,
        /// Processes gone from the config.
        removed: Vec<String>,
        /// Processes whose settings changed.
        changed: Vec<String>,
        /// Processes left alone.
        unchanged: Vec<String>,
        /// What changed in each process of `changed`, by config key (`command`, `env (PORT)`:
        /// variable names only, `replicas 2 → 4`). Absent when none.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        keys: BTreeMap<String, Vec<String>>,
        /// The processes of `changed` that were not restarted (no instance wanted up or
        /// failed): their new settings take effect at their next start. Absent when none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        not_running: Vec<String>,
    },
}

/// What follows a run that ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NextStep {
    /// Restarted after this many milliseconds (0: at once).
    RestartInMs(u64),
    /// Stays in this state: `stopped` or `exited` (`failed` is [`EventKind::GaveUp`]).
    Stay(crate::status::State),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_have_a_flat_stable_shape() {
        let e = Event {
            time: "2026-11-29T21:44:09.512Z".into(),
            instance: Some("web.0".into()),
            kind: EventKind::Exited {
                how: LastExit::Code(1),
                next: NextStep::RestartInMs(200),
                oom_kills: 0,
            },
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"time":"2026-11-29T21:44:09.512Z","instance":"web.0","event":"exited","how":{"code":1},"next":{"restart_in_ms":200}}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), e);
        let reloaded = Event {
            time: "t".into(),
            instance: None,
            kind: EventKind::Running,
        };
        assert_eq!(
            serde_json::to_string(&reloaded).unwrap(),
            r#"{"time":"t","event":"running"}"#
        );
        let oom = Event {
            time: "t".into(),
            instance: Some("web.0".into()),
            kind: EventKind::Exited {
                how: LastExit::Signal("SIGKILL".into()),
                next: NextStep::RestartInMs(0),
                oom_kills: 1,
            },
        };
        let json = serde_json::to_string(&oom).unwrap();
        assert_eq!(
            json,
            r#"{"time":"t","instance":"web.0","event":"exited","how":{"signal":"SIGKILL"},"next":{"restart_in_ms":0},"oom_kills":1}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), oom);
    }

    #[test]
    fn a_dependency_without_instances_is_said_only_when_so() {
        let event = |no_instances| Event {
            time: "t".into(),
            instance: Some("web.0".into()),
            kind: EventKind::DependencyGaveUp {
                dependency: "db".into(),
                condition: "ready".into(),
                state: crate::status::State::Stopped,
                no_instances,
            },
        };
        let plain = r#"{"time":"t","instance":"web.0","event":"dependency_gave_up","dependency":"db","condition":"ready","state":"stopped""#;
        let json = serde_json::to_string(&event(false)).unwrap();
        assert_eq!(json, format!("{plain}}}"));
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), event(false));
        let json = serde_json::to_string(&event(true)).unwrap();
        assert_eq!(json, format!(r#"{plain},"no_instances":true}}"#));
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), event(true));
    }
}
