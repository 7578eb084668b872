//! The status of one process instance, as the supervisor reports it.
//!
//! [`InstanceStatus`] is the element of the `instances` array in the answers to `status`,
//! `start`, `stop` and `restart`, and `tend status --json` prints an array of exactly these
//! objects. It is a stable format: fields may be added (readers ignore fields they do not
//! know), but none is renamed, removed or given another meaning without a new protocol version.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The state of one instance, as in supervisord.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Not running, and not wanted up.
    Stopped,
    /// Wanted up, waiting for conditions on other processes (`depends_on`).
    Waiting,
    /// Spawned, and not yet up for `start_secs` (processes without a readiness check).
    Starting,
    /// Up; for a process with a readiness check, spawned and not ready yet.
    Running,
    /// Ready by its readiness check.
    Ready,
    /// Ended unexpectedly; waiting for the backoff delay before the next start.
    Backoff,
    /// The stop signal was sent; waiting for the instance to exit.
    Stopping,
    /// Finished, and not to be restarted by its restart policy.
    Exited,
    /// Gave up after `max_restarts`; only a `start` or `restart` runs it again.
    Failed,
}

impl State {
    /// Every state, in the order of a life cycle.
    pub const ALL: &'static [State] = &[
        State::Stopped,
        State::Waiting,
        State::Starting,
        State::Running,
        State::Ready,
        State::Backoff,
        State::Stopping,
        State::Exited,
        State::Failed,
    ];

    /// The name on the wire and in tables, such as `"running"`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Stopped => "stopped",
            State::Waiting => "waiting",
            State::Starting => "starting",
            State::Running => "running",
            State::Ready => "ready",
            State::Backoff => "backoff",
            State::Stopping => "stopping",
            State::Exited => "exited",
            State::Failed => "failed",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the last run of an instance ended. On the wire exactly one of `{"code":1}`,
/// `{"signal":"SIGKILL"}` or `{"spawn_error":"No such file or directory"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LastExit {
    /// It exited with this status code.
    Code(i32),
    /// A signal killed it; the signal's name, such as `"SIGKILL"`.
    Signal(String),
    /// It could not be started; the operating system's reason.
    SpawnError(String),
}

/// One process instance as `tend status` shows it. See the module documentation: this is the
/// stable `tend status --json` element.
///
/// ```json
/// {"name":"web.0","process":"web","instance":0,"state":"running","pid":1234,
///  "uptime_ms":5021,"restarts":2,"last_exit":{"code":1}}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceStatus {
    /// The instance's name, `<process>.<instance>`, such as `"web.0"`.
    pub name: String,
    /// The process's name from the config, such as `"web"`.
    pub process: String,
    /// The instance index, `0..replicas`; the child's `$TEND_INSTANCE`.
    pub instance: u32,
    /// The current state.
    pub state: State,
    /// The PID of the live run; `null` when no run is live (or it is not spawned yet).
    pub pid: Option<u32>,
    /// Milliseconds since the live run was spawned; `null` when no run is live.
    pub uptime_ms: Option<u64>,
    /// How many times tend has started this instance again since it was first started.
    pub restarts: u32,
    /// How the previous run ended; `null` if none has ended yet.
    pub last_exit: Option<LastExit>,
    /// A log file of the instance that tend cannot write to right now (a full disk, say):
    /// present only while writes keep failing. Meanwhile tend retries and the instance waits
    /// on its full pipe; nothing is lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_error: Option<LogError>,
    /// While `waiting`: the conditions on other processes that do not hold yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_for: Vec<WaitingFor>,
    /// The live run's last `STATUS=` over the sd_notify protocol, made safe to print.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_status: Option<String>,
    /// The live run's `MAINPID=` over the sd_notify protocol, if it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_pid: Option<u32>,
    /// The liveness check's verdict on the live run, once it has tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// What the live run's process group uses now, read from /proc when status is asked.
    #[serde(flatten)]
    pub usage: Option<Usage>,
    /// Bytes of the instance's output written to its log files since tend opened them (at its
    /// start, or the reload that changed the process's `log` settings): all runs, both
    /// streams, rotated files included, timestamps not counted. Absent when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub log_bytes: u64,
    /// Writes to its log files that failed since tend opened them (each is retried until it
    /// works: nothing is lost). Absent when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub log_write_errors: u64,
    /// For a `failed` instance whose process has `retry_after`: milliseconds until tend
    /// tries it again. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_in_ms: Option<u64>,
    /// The previous run ended by itself after the kernel's OOM killer killed processes of
    /// it (its cgroup reached `memory_max`): `last_exit` is then usually
    /// `{"signal":"SIGKILL"}`. Absent when not, and for a run tend stopped.
    #[serde(default, skip_serializing_if = "is_false")]
    pub last_exit_oom: bool,
    /// Processes of the instance's runs the OOM killer killed since tend started it, the live
    /// run's so far included. Absent when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub oom_kills: u64,
}

pub(crate) fn is_zero(n: &u64) -> bool {
    *n == 0
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// What a live run's process group uses: `"processes":3,"cpu_ms":1520,"cpu_percent":12.5,
/// "rss_bytes":31457280`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Live processes in the group.
    pub processes: u32,
    /// CPU time the processes in the group have used, user and system, in milliseconds (the
    /// children they reaped count; those that left the group do not).
    pub cpu_ms: u64,
    /// CPU use since the previous status of this run (or since its spawn), in percent of one
    /// core: 200 is two cores busy.
    pub cpu_percent: Percent,
    /// Resident memory of the processes in the group, in bytes (shared pages count in each).
    pub rss_bytes: u64,
}

/// A percentage, such as `12.5`. Equal when the bits are (it is never NaN).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Percent(pub f64);

impl PartialEq for Percent {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Percent {}

/// A condition a waiting instance waits for:
/// `{"process":"db","condition":"ready","state":"running","gave_up":false}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingFor {
    /// The process depended on.
    pub process: String,
    /// `started`, `ready` or `completed`.
    pub condition: String,
    /// The state of its first instance that does not meet the condition.
    pub state: State,
    /// That instance will not get there by itself (failed, exited or stopped).
    pub gave_up: bool,
    /// The process depended on has no instance (`tend scale NAME=0`): `state` is `stopped`,
    /// `gave_up` is true, and it takes a scale, not a start. Absent when false; added without
    /// a new protocol version.
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_instances: bool,
}

/// The liveness check's verdict: `{"healthy":false,"failures_in_row":2,
/// "last_failure":"HTTP 503"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Whether the last try passed.
    pub healthy: bool,
    /// Failed tries since the last success.
    pub failures_in_row: u32,
    /// Why the last failed try failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
}

/// Why tend cannot write an instance's log: `{"file":"/srv/.tend/logs/web.0.log",
/// "error":"No space left on device (os error 28)","failing_ms":12034}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogError {
    /// The log file's path.
    pub file: String,
    /// The operating system's reason for the last failed write.
    pub error: String,
    /// Milliseconds since the first write of this run of failures failed.
    pub failing_ms: u64,
}
