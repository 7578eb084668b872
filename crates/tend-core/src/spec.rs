//! The validated description of what tend supervises.
//!
//! A [`Spec`] is what the config file means once parsed and checked: every default applied,
//! every path absolute, every value in range. The core trusts it; the config layer of the
//! binary is what turns TOML into a `Spec` and reports errors with file, line and column.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::Signal;

/// Everything tend supervises, as one validated value.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// Settings of the supervisor itself.
    pub supervisor: SupervisorSpec,
    /// The processes, in the order the config file lists them.
    pub processes: Vec<Arc<ProcessSpec>>,
}

/// Settings of the supervisor itself (`[supervisor]` in tend.toml).
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisorSpec {
    /// Directory of the per-instance log files (absolute).
    pub log_dir: PathBuf,
    /// The default stop timeout of processes that set none.
    pub stop_timeout: Duration,
    /// The file mode creation mask of the daemon (`tend up -d`) and so of its children.
    pub umask: u32,
    /// Whether tend makes a cgroup per instance where it may (`cgroups`, default true).
    pub cgroups: bool,
}

/// One `[process.NAME]` table: a command and how to keep it running.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSpec {
    /// The process's name, the key of its table (`web` in `[process.web]`).
    pub name: String,
    /// The argv to execute; never empty. With `shell = true` in the config this is already
    /// `["/bin/sh", "-c", "exec …"]`.
    pub argv: Vec<String>,
    /// Working directory (absolute), or tend's own when `None`.
    pub cwd: Option<PathBuf>,
    /// Variables set on top of tend's environment, `env_file` first, then `env`, later
    /// entries winning. `TEND_PROCESS` and `TEND_INSTANCE` (and `PORT` with [`Self::port`])
    /// are added at spawn.
    pub env: Vec<(String, String)>,
    /// The `env_file` whose variables are in [`Self::env`] (absolute), for those that need
    /// to name it (`tend export systemd`).
    pub env_file: Option<PathBuf>,
    /// The first port: instance N gets `PORT` = port + N (foreman's convention, which
    /// Procfiles rely on). The config layer checks that the last instance's port fits.
    pub port: Option<u16>,
    /// How many instances run (`name.0` … `name.{replicas-1}`); at least 1 in a config,
    /// 0 only after `tend scale NAME=0` (the process is kept, with no instance).
    pub replicas: u32,
    /// Whether `tend up` without names starts this process.
    pub autostart: bool,
    /// When an exited instance is started again.
    pub restart: RestartPolicy,
    /// Exit codes that count as success for `restart = "on-failure"`.
    pub success_codes: Vec<i32>,
    /// How long an instance must stay up to count as started (and reset its backoff).
    pub start_secs: Duration,
    /// Delay before each restart.
    pub backoff: Backoff,
    /// When to give up restarting.
    pub max_restarts: MaxRestarts,
    /// Signal sent to the process group to ask it to stop.
    pub stop_signal: Signal,
    /// Time between the stop signal and SIGKILL to the process group.
    pub stop_timeout: Duration,
    /// Log file settings.
    pub log: LogSpec,
    /// What an instance's end for good (exited and not restarted, or failed) means for tend.
    pub on_exit: OnExit,
    /// How tend learns that a run is ready (`None`: it counts as ready once running).
    pub ready: Option<ReadySpec>,
    /// The liveness check that restarts an instance after failures in a row.
    pub health: Option<HealthSpec>,
    /// What must hold of other processes before an instance of this one is spawned, by
    /// process name, in the config's order. The config layer checks that every name exists
    /// and that there is no cycle.
    pub depends_on: Vec<Dependency>,
    /// Processes among `depends_on` whose restart restarts this one too.
    pub restart_with: Vec<String>,
    /// Whether each run gets a pseudo-terminal as stdin, stdout and stderr (one stream,
    /// logged as stdout) instead of pipes, so that `tend attach` can type into it.
    pub interactive: bool,
    /// Who the process runs as (`user`, `group`, `groups`); `None`: as tend.
    pub identity: Option<Identity>,
    /// The file mode creation mask of the process (`umask`); `None`: tend's.
    pub umask: Option<u32>,
    /// Resource limits set before the exec (`rlimits`), in config order.
    pub rlimits: Vec<Rlimit>,
    /// The nice value (`nice`, -20 to 19); `None`: tend's.
    pub nice: Option<i32>,
    /// The OOM killer's adjustment (`oom_score_adj`, -1000 to 1000); `None`: tend's.
    pub oom_score_adj: Option<i32>,
    /// The memory an instance's process tree may use before it is restarted
    /// (`memory_limit`, `memory_limit_for`); `None`: no limit, and no sampling.
    pub memory_limit: Option<MemoryLimit>,
    /// The kernel's limit of the memory of each instance's cgroup, in bytes (`memory_max`):
    /// past it, the OOM killer kills in the cgroup. Enforced only where tend has a memory
    /// cgroup controller.
    pub memory_max: Option<u64>,
    /// The CPU time each instance's cgroup may use, in percent of one CPU (`cpu_max`,
    /// "50%"; 200 is two CPUs). Enforced only where tend has a cpu cgroup controller.
    pub cpu_max: Option<u32>,
    /// The most processes (and threads) each instance's cgroup may hold (`pids_max`).
    /// Enforced only where tend has a pids cgroup controller.
    pub pids_max: Option<u64>,
    /// After the instance gave up (`failed`, `max_restarts` spent), try it again this long
    /// after, with a fresh restart budget (`None`: stay failed until someone starts it).
    /// Never zero.
    pub retry_after: Option<Duration>,
    /// The variables of the `env` key alone (the rest of [`Self::env`] came from
    /// [`Self::env_file`]), so that `tend restart` can read the env file again and build
    /// [`Self::env`] as the config would.
    pub env_table: Vec<(String, String)>,
}

/// `memory_limit = "512MiB"` and `memory_limit_for = "10s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimit {
    /// The largest resident memory of the whole tree, in bytes.
    pub bytes: u64,
    /// How long the tree may stay above it (by the samples) before the run is failed.
    pub for_at_least: Duration,
}

/// Who a process runs as, resolved from the system's user and group databases when the
/// config was read. The child sets the groups, then the group id, then the user id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user, if `user` is set: the process gets its uid, and `HOME`, `USER` and
    /// `LOGNAME` (unless `env` sets them).
    pub user: Option<UserIdentity>,
    /// The group id: `group`, else the user's primary group.
    pub gid: u32,
    /// The supplementary groups: `groups`, else the user's groups in the group database
    /// (what `initgroups` gives), else none.
    pub groups: Vec<u32>,
}

/// The user a process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentity {
    /// The login name.
    pub name: String,
    /// The user id.
    pub uid: u32,
    /// The home directory.
    pub home: PathBuf,
}

/// One resource limit (`rlimits = { nofile = 65536 }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// Which limit.
    pub kind: RlimitKind,
    /// The soft limit; [`Rlimit::UNLIMITED`] for none.
    pub soft: u64,
    /// The hard limit; [`Rlimit::UNLIMITED`] for none.
    pub hard: u64,
}

impl Rlimit {
    /// No limit (`RLIM_INFINITY`).
    pub const UNLIMITED: u64 = u64::MAX;
}

/// The limits of `setrlimit(2)` a config may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RlimitKind {
    /// `as`: the address space, in bytes.
    As,
    /// `core`: the largest core dump, in bytes.
    Core,
    /// `cpu`: CPU time, in seconds.
    Cpu,
    /// `data`: the data segment, in bytes.
    Data,
    /// `fsize`: the largest file written, in bytes.
    Fsize,
    /// `memlock`: locked memory, in bytes.
    Memlock,
    /// `msgqueue`: POSIX message queues, in bytes.
    Msgqueue,
    /// `nofile`: open file descriptors.
    Nofile,
    /// `nproc`: processes of the user.
    Nproc,
    /// `stack`: the stack, in bytes.
    Stack,
}

impl RlimitKind {
    /// Every kind, with its config key.
    pub const ALL: [(RlimitKind, &'static str); 10] = [
        (RlimitKind::As, "as"),
        (RlimitKind::Core, "core"),
        (RlimitKind::Cpu, "cpu"),
        (RlimitKind::Data, "data"),
        (RlimitKind::Fsize, "fsize"),
        (RlimitKind::Memlock, "memlock"),
        (RlimitKind::Msgqueue, "msgqueue"),
        (RlimitKind::Nofile, "nofile"),
        (RlimitKind::Nproc, "nproc"),
        (RlimitKind::Stack, "stack"),
    ];

    /// The config key (`nofile`).
    pub fn key(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(kind, _)| *kind == self)
            .map_or("?", |(_, key)| key)
    }

    /// Whether the limit is a number of bytes (so a size such as "512MiB" may give it).
    pub fn is_bytes(self) -> bool {
        !matches!(
            self,
            RlimitKind::Cpu | RlimitKind::Nofile | RlimitKind::Nproc
        )
    }
}

/// A condition on another process (`depends_on = { db = "ready" }`). It holds when it holds
/// for every instance of that process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The process depended on.
    pub name: String,
    /// What must hold of it.
    pub condition: Condition,
}

/// What a dependent waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Condition {
    /// Spawned (its program runs).
    Started,
    /// Ready by its readiness check, or running when it has none.
    Ready,
    /// Exited with one of its success codes (a one-shot job that did its work).
    Completed,
}

impl Condition {
    /// The config's word for it: `started`, `ready` or `completed`.
    pub fn name(self) -> &'static str {
        match self {
            Condition::Started => "started",
            Condition::Ready => "ready",
            Condition::Completed => "completed",
        }
    }
}

/// How a run tells tend it is ready (`ready = { ... }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadySpec {
    /// The check.
    pub check: ReadyCheck,
    /// A run that is not ready this long after its spawn counts as a failed start: it is
    /// stopped and its restart policy applies. `None`: it may take for ever.
    pub start_timeout: Option<Duration>,
    /// With `notify`: a run must send `WATCHDOG=1` at least this often, or it is stopped and
    /// its restart policy applies (systemd's `WatchdogSec=`).
    pub watchdog: Option<Duration>,
}

/// The kinds of readiness check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadyCheck {
    /// The sd_notify protocol: `READY=1` on the datagram socket named by `NOTIFY_SOCKET`.
    Notify,
    /// s6's convention: a newline written to this file descriptor of the child.
    NotifyFd(i32),
    /// A line of stdout or stderr matches this regular expression.
    LogLine(String),
    /// A probe succeeds, tried every period from the spawn until it does.
    Probe(ProbeSpec),
}

/// A probe that tend runs: the check is its kind, every `period`, each try bounded by
/// `timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSpec {
    /// What is tried.
    pub kind: Probe,
    /// Time between the start of one try and the next.
    pub period: Duration,
    /// How long one try may take before it counts as failed.
    pub timeout: Duration,
}

/// What a probe tries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A TCP connect to `host:port` succeeds.
    Tcp(String),
    /// An HTTP GET of this `http://` URL answers 2xx.
    Http(String),
    /// This argv exits 0 (run with the process's cwd and environment).
    Exec(Vec<String>),
}

/// A liveness check (`health = { ... }`): after `failures` failed tries in a row the
/// instance is stopped and its restart policy applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSpec {
    /// The probe, tried every period once the run is ready (or running, without readiness).
    pub probe: ProbeSpec,
    /// Failed tries in a row that count as a failure of the run; at least 1.
    pub failures: u32,
}

/// What the end for good of an instance means for tend as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnExit {
    /// Nothing: the others go on.
    #[default]
    Ignore,
    /// The process is essential: tend stops everything and exits with its exit code (128 +
    /// the signal if it was killed, 127 if it could not be started), as a container's
    /// entrypoint should.
    Shutdown,
}

/// When an exited instance is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Always, whatever the exit status.
    Always,
    /// Only when the exit was not a success code (a death by signal is a failure).
    OnFailure,
    /// Never.
    Never,
}

/// Restart delay: `initial`, multiplied by `factor` after each restart, capped at `max`;
/// back to `initial` after a run that stayed up `start_secs`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first delay. Zero is allowed: restart at once.
    pub initial: Duration,
    /// The largest delay.
    pub max: Duration,
    /// Growth per restart; at least 1.0.
    pub factor: f64,
}

/// Give up (state `failed`) when a further restart would make more than `count` restarts
/// within `within`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxRestarts {
    /// Restarts allowed within the window.
    pub count: u32,
    /// The sliding window.
    pub within: Duration,
}

/// Log file settings of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSpec {
    /// Size at which a log file is rotated, in bytes.
    pub max_size: u64,
    /// How many rotated files are kept.
    pub keep: u32,
    /// Whether each line is prefixed with the time it was read.
    pub timestamps: bool,
    /// The permission bits of the log files: `0o600` (the default) or `0o640`.
    pub mode: u32,
}

impl ProcessSpec {
    /// A spec with the documented defaults, for `argv`. Used by tests and by the config layer
    /// as the base that keys override.
    pub fn new(name: impl Into<String>, argv: Vec<String>) -> Self {
        ProcessSpec {
            name: name.into(),
            argv,
            cwd: None,
            env: Vec::new(),
            env_file: None,
            port: None,
            replicas: 1,
            autostart: true,
            restart: RestartPolicy::Always,
            success_codes: vec![0],
            start_secs: Duration::from_secs(1),
            backoff: Backoff::default(),
            max_restarts: MaxRestarts::default(),
            stop_signal: Signal::Term,
            stop_timeout: Duration::from_secs(10),
            log: LogSpec::default(),
            on_exit: OnExit::Ignore,
            ready: None,
            health: None,
            depends_on: Vec::new(),
            restart_with: Vec::new(),
            interactive: false,
            identity: None,
            umask: None,
            rlimits: Vec::new(),
            nice: None,
            oom_score_adj: None,
            memory_limit: None,
            memory_max: None,
            cpu_max: None,
            pids_max: None,
            retry_after: None,
            env_table: Vec::new(),
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            factor: 2.0,
        }
    }
}

impl Default for MaxRestarts {
    fn default() -> Self {
        MaxRestarts {
            count: 5,
            within: Duration::from_secs(60),
        }
    }
}

impl Default for LogSpec {
    fn default() -> Self {
        LogSpec {
            max_size: 10 * 1024 * 1024,
            keep: 5,
            timestamps: false,
            mode: 0o600,
        }
    }
}
