//! What `tend check --json` prints: the validated spec as one JSON document, every default
//! applied, durations in milliseconds, so that a script sees exactly what tend would run.
//! Environment values are left out (they may hold secrets); their names are listed.

use std::path::Path;

use serde::Serialize;
use tend_core::{OnExit, Probe, ProbeSpec, ProcessSpec, ReadyCheck, RestartPolicy, Spec};

/// The document.
#[derive(Serialize)]
pub struct Checked<'a> {
    config: String,
    log_dir: String,
    stop_timeout_ms: u64,
    processes: Vec<Process<'a>>,
}

#[derive(Serialize)]
struct Process<'a> {
    name: &'a str,
    argv: &'a [String],
    cwd: Option<String>,
    env: Vec<&'a str>,
    env_file: Option<String>,
    port: Option<u16>,
    user: Option<&'a str>,
    uid: Option<u32>,
    gid: Option<u32>,
    groups: Option<&'a [u32]>,
    umask: Option<String>,
    rlimits: serde_json::Map<String, serde_json::Value>,
    nice: Option<i32>,
    oom_score_adj: Option<i32>,
    memory_limit: Option<u64>,
    memory_limit_for_ms: Option<u64>,
    memory_max: Option<u64>,
    cpu_max_percent: Option<u32>,
    pids_max: Option<u64>,
    replicas: u32,
    autostart: bool,
    interactive: bool,
    restart: &'static str,
    success_codes: &'a [i32],
    start_secs_ms: u64,
    backoff: Backoff,
    max_restarts: MaxRestarts,
    stop_signal: &'static str,
    stop_timeout_ms: u64,
    log: Log,
    on_exit: &'static str,
    depends_on: serde_json::Map<String, serde_json::Value>,
    restart_with: &'a [String],
    ready: Option<serde_json::Value>,
    health: Option<serde_json::Value>,
    retry_after_ms: Option<u64>,
}

#[derive(Serialize)]
struct Backoff {
    initial_ms: u64,
    max_ms: u64,
    factor: f64,
}

#[derive(Serialize)]
struct MaxRestarts {
    count: u32,
    within_ms: u64,
}

#[derive(Serialize)]
struct Log {
    max_size: u64,
    keep: u32,
    timestamps: bool,
    mode: String,
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The spec of `path` as `tend check --json` prints it.
pub fn checked<'a>(spec: &'a Spec, path: &Path) -> Checked<'a> {
    Checked {
        config: path.display().to_string(),
        log_dir: spec.supervisor.log_dir.display().to_string(),
        stop_timeout_ms: ms(spec.supervisor.stop_timeout),
        processes: spec.processes.iter().map(|p| process(p)).collect(),
    }
}

fn process(p: &ProcessSpec) -> Process<'_> {
    Process {
        name: &p.name,
        argv: &p.argv,
        cwd: p.cwd.as_ref().map(|c| c.display().to_string()),
        env: p.env.iter().map(|(k, _)| k.as_str()).collect(),
        env_file: p.env_file.as_ref().map(|f| f.display().to_string()),
        port: p.port,
        user: p
            .identity
            .as_ref()
            .and_then(|i| i.user.as_ref())
            .map(|u| u.name.as_str()),
        uid: p
            .identity
            .as_ref()
            .and_then(|i| i.user.as_ref())
            .map(|u| u.uid),
        gid: p.identity.as_ref().map(|i| i.gid),
        groups: p.identity.as_ref().map(|i| i.groups.as_slice()),
        umask: p.umask.map(|m| format!("{m:04o}")),
        rlimits: p
            .rlimits
            .iter()
            .map(|l| {
                let value = |n: u64| match n {
                    tend_core::Rlimit::UNLIMITED => serde_json::json!("unlimited"),
                    n => serde_json::json!(n),
                };
                (
                    l.kind.key().to_owned(),
                    serde_json::json!({ "soft": value(l.soft), "hard": value(l.hard) }),
                )
            })
            .collect(),
        nice: p.nice,
        oom_score_adj: p.oom_score_adj,
        memory_limit: p.memory_limit.map(|l| l.bytes),
        memory_limit_for_ms: p.memory_limit.map(|l| ms(l.for_at_least)),
        memory_max: p.memory_max,
        cpu_max_percent: p.cpu_max,
        pids_max: p.pids_max,
        replicas: p.replicas,
        autostart: p.autostart,
        interactive: p.interactive,
        restart: match p.restart {
            RestartPolicy::Always => "always",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::Never => "never",
        },
        success_codes: &p.success_codes,
        start_secs_ms: ms(p.start_secs),
        backoff: Backoff {
            initial_ms: ms(p.backoff.initial),
            max_ms: ms(p.backoff.max),
            factor: p.backoff.factor,
        },
        max_restarts: MaxRestarts {
            count: p.max_restarts.count,
            within_ms: ms(p.max_restarts.within),
        },
        stop_signal: p.stop_signal.name(),
        stop_timeout_ms: ms(p.stop_timeout),
        log: Log {
            max_size: p.log.max_size,
            keep: p.log.keep,
            timestamps: p.log.timestamps,
            mode: format!("{:04o}", p.log.mode),
        },
        on_exit: match p.on_exit {
            OnExit::Ignore => "ignore",
            OnExit::Shutdown => "shutdown",
        },
        depends_on: p
            .depends_on
            .iter()
            .map(|d| {
                let condition = d.condition.name();
                (d.name.clone(), condition.into())
            })
            .collect(),
        restart_with: &p.restart_with,
        ready: p.ready.as_ref().map(|r| {
            let mut check = match &r.check {
                ReadyCheck::Notify => serde_json::json!({ "notify": true }),
                ReadyCheck::NotifyFd(fd) => serde_json::json!({ "notify_fd": fd }),
                ReadyCheck::LogLine(re) => serde_json::json!({ "log_line": re }),
                ReadyCheck::Probe(probe) => probe_json(probe),
            };
            check["start_timeout_ms"] = r.start_timeout.map(ms).into();
            check["watchdog_ms"] = r.watchdog.map(ms).into();
            check
        }),
        health: p.health.as_ref().map(|h| {
            let mut check = probe_json(&h.probe);
            check["failures"] = h.failures.into();
            check
        }),
        retry_after_ms: p.retry_after.map(ms),
    }
}

fn probe_json(probe: &ProbeSpec) -> serde_json::Value {
    let mut value = match &probe.kind {
        Probe::Tcp(addr) => serde_json::json!({ "tcp": addr }),
        Probe::Http(url) => serde_json::json!({ "http": url }),
        Probe::Exec(argv) => serde_json::json!({ "exec": argv }),
    };
    value["period_ms"] = ms(probe.period).into();
    value["timeout_ms"] = ms(probe.timeout).into();
    value
}
