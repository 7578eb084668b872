//! `/metrics`: the status of every instance, and tend's own use, in Prometheus's text
//! exposition format (version 0.0.4), checked by `promtool check metrics` in the tests.
//!
//! Made from the same `status` answer as `tend status`, so the numbers agree; tend's own
//! CPU, memory and open descriptors are read from /proc when scraped. Nothing is sampled
//! between scrapes.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use tend_proto::{InstanceStatus, LastExit, State};

/// The states, as the `state` label of `tend_instance_state` spells them.
const STATES: &[(State, &str)] = &[
    (State::Stopped, "stopped"),
    (State::Waiting, "waiting"),
    (State::Starting, "starting"),
    (State::Running, "running"),
    (State::Ready, "ready"),
    (State::Backoff, "backoff"),
    (State::Stopping, "stopping"),
    (State::Exited, "exited"),
    (State::Failed, "failed"),
];

/// What tend itself uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct Own {
    /// CPU time, in seconds.
    pub cpu_seconds: f64,
    /// Resident memory, in bytes.
    pub rss_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// When tend started.
    pub started: Option<SystemTime>,
}

impl Own {
    /// tend's own use, now.
    pub fn now(started: Option<SystemTime>) -> Own {
        let ticks = tend_os::procfs::ticks_per_second().max(1) as f64;
        let (cpu, rss) =
            tend_os::procfs::process_usage(std::process::id() as i32).unwrap_or((0, 0));
        let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count() as u64);
        Own {
            cpu_seconds: cpu as f64 / ticks,
            rss_bytes: rss,
            // The read_dir's own descriptor is not tend's.
            open_fds: open_fds.saturating_sub(1),
            started,
        }
    }
}

/// The exposition of `instances` and `own`, at `now`.
pub fn render(instances: &[InstanceStatus], own: &Own, now: SystemTime) -> String {
    let mut out = String::with_capacity(512 + instances.len() * 1024);
    let labels = |i: &InstanceStatus| {
        format!(
            "process=\"{}\",instance=\"{}\"",
            escape(&i.process),
            escape(&i.name)
        )
    };
    // One value per instance (or none, when it has nothing to say), each family in turn.
    type Value = fn(&InstanceStatus, SystemTime) -> Option<String>;
    let per_instance: [(&str, &str, &str, Value); 10] = [
        ("tend_instance_up", "gauge", "Whether the instance has a live process (1) or not (0).",
            |i, _| Some(u8::from(i.pid.is_some()).to_string())),
        ("tend_instance_restarts_total", "counter", "How many times tend started the instance again.",
            |i, _| Some(i.restarts.to_string())),
        ("tend_instance_last_exit_code", "gauge", "The exit code of the instance's previous run (128 + the signal that killed it); absent before one ended, or when it could not start.",
            |i, _| last_exit_code(i).map(|c| c.to_string())),
        ("tend_instance_start_time_seconds", "gauge", "When the live run was spawned, in seconds since the Unix epoch.",
            |i, now| {
                let start = now.checked_sub(Duration::from_millis(i.uptime_ms?))?;
                Some(format!("{:.3}", start.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs_f64()))
            }),
        ("tend_instance_cpu_seconds_total", "counter", "CPU time of the live run's process group, user and system.",
            |i, _| i.usage.as_ref().map(|u| format!("{:.3}", u.cpu_ms as f64 / 1000.0))),
        ("tend_instance_resident_memory_bytes", "gauge", "Resident memory of the live run's process group.",
            |i, _| i.usage.as_ref().map(|u| u.rss_bytes.to_string())),
        ("tend_instance_processes", "gauge", "Live processes in the live run's process group.",
            |i, _| i.usage.as_ref().map(|u| u.processes.to_string())),
        ("tend_instance_log_bytes_total", "counter", "Bytes of the instance's output written to its log files.",
            |i, _| Some(i.log_bytes.to_string())),
        ("tend_instance_log_write_errors_total", "counter", "Writes to the instance's log files that failed (each is retried).",
            |i, _| Some(i.log_write_errors.to_string())),
        ("tend_instance_oom_kills_total", "counter", "Processes of the instance the kernel's OOM killer killed (its cgroup reached memory_max).",
            |i, _| Some(i.oom_kills.to_string())),
    ];
    for (name, kind, help, value) in per_instance {
        family(&mut out, name, kind, help);
        for i in instances {
            if let Some(value) = value(i, now) {
                let _ = writeln!(out, "{name}{{{}}} {value}", labels(i));
            }
        }
    }
    // The state: one series per state, 1 for the one it is in.
    family(
        &mut out,
        "tend_instance_state",
        "gauge",
        "The instance's state: 1 for the state it is in, 0 for the others.",
    );
    for i in instances {
        for (state, state_name) in STATES {
            let _ = writeln!(
                out,
                "tend_instance_state{{{},state=\"{state_name}\"}} {}",
                labels(i),
                u8::from(i.state == *state)
            );
        }
    }
    family(
        &mut out,
        "process_cpu_seconds_total",
        "counter",
        "CPU time of tend itself, user and system.",
    );
    let _ = writeln!(out, "process_cpu_seconds_total {:.3}", own.cpu_seconds);
    family(
        &mut out,
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory of tend itself.",
    );
    let _ = writeln!(out, "process_resident_memory_bytes {}", own.rss_bytes);
    family(
        &mut out,
        "process_open_fds",
        "gauge",
        "Open file descriptors of tend itself.",
    );
    let _ = writeln!(out, "process_open_fds {}", own.open_fds);
    if let Some(started) = own
        .started
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
    {
        family(
            &mut out,
            "process_start_time_seconds",
            "gauge",
            "When tend started, in seconds since the Unix epoch.",
        );
        let _ = writeln!(
            out,
            "process_start_time_seconds {:.3}",
            started.as_secs_f64()
        );
    }
    family(
        &mut out,
        "tend_build_info",
        "gauge",
        "tend's version, as a label; always 1.",
    );
    let _ = writeln!(
        out,
        "tend_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    out
}

/// The exit code of the instance's previous run, 128 + the signal for one that was killed.
fn last_exit_code(i: &InstanceStatus) -> Option<i64> {
    match &i.last_exit {
        Some(LastExit::Code(code)) => Some(i64::from(*code)),
        Some(LastExit::Signal(name)) => name
            .parse::<tend_core::Signal>()
            .ok()
            .map(|s| 128 + i64::from(tend_os::signal_number(s))),
        _ => None,
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value as the format writes it: `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tend_proto::Usage;

    fn instance(name: &str, state: State, pid: Option<u32>) -> InstanceStatus {
        serde_json::from_value(serde_json::json!({
            "name": name, "process": name.split('.').next().unwrap(),
            "instance": 0, "state": state, "pid": pid, "uptime_ms": pid.map(|_| 2500),
            "restarts": 3, "last_exit": {"signal": "SIGTERM"}
        }))
        .unwrap()
    }

    #[test]
    fn every_instance_has_its_lines_and_values() {
        let mut web = instance("web.0", State::Running, Some(42));
        web.usage = Some(Usage {
            processes: 2,
            cpu_ms: 1500,
            cpu_percent: tend_proto::Percent(0.0),
            rss_bytes: 4096,
        });
        web.log_bytes = 100;
        let mut db = instance("db.0", State::Failed, None);
        db.oom_kills = 2;
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let text = render(&[web, db], &Own::default(), now);
        for line in [
            r#"tend_instance_up{process="web",instance="web.0"} 1"#,
            r#"tend_instance_up{process="db",instance="db.0"} 0"#,
            r#"tend_instance_state{process="web",instance="web.0",state="running"} 1"#,
            r#"tend_instance_state{process="web",instance="web.0",state="ready"} 0"#,
            r#"tend_instance_state{process="db",instance="db.0",state="failed"} 1"#,
            r#"tend_instance_restarts_total{process="web",instance="web.0"} 3"#,
            r#"tend_instance_last_exit_code{process="db",instance="db.0"} 143"#,
            r#"tend_instance_start_time_seconds{process="web",instance="web.0"} 997.500"#,
            r#"tend_instance_cpu_seconds_total{process="web",instance="web.0"} 1.500"#,
            r#"tend_instance_resident_memory_bytes{process="web",instance="web.0"} 4096"#,
            r#"tend_instance_processes{process="web",instance="web.0"} 2"#,
            r#"tend_instance_log_bytes_total{process="web",instance="web.0"} 100"#,
            r#"tend_instance_oom_kills_total{process="db",instance="db.0"} 2"#,
            r#"tend_instance_oom_kills_total{process="web",instance="web.0"} 0"#,
            "# TYPE tend_instance_restarts_total counter",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in:\n{text}"
            );
        }
        assert!(
            !text.contains(r#"start_time_seconds{process="db""#),
            "{text}"
        );
        assert_eq!(escape("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
    }
}
