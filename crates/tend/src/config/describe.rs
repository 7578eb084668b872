//! What `tend check` prints: the spec in words, one block per process.

use std::fmt::Write as _;
use std::path::Path;

use tend_core::{Probe, ProbeSpec, ProcessSpec, ReadyCheck, ReadySpec, RestartPolicy, Spec};

use super::units::{format_duration, format_size};

/// See [`super::describe`].
pub(super) fn describe(spec: &Spec, path: &Path) -> String {
    let mut out = String::new();
    let count = spec.processes.len();
    let noun = if count == 1 { "process" } else { "processes" };
    let _ = writeln!(
        out,
        "{}: {count} {noun}, logs in {}, default stop timeout {}",
        path.display(),
        spec.supervisor.log_dir.display(),
        format_duration(spec.supervisor.stop_timeout),
    );
    if count == 0 {
        out.push_str("nothing to run: add a [process.NAME] table with a command\n");
    }
    for process in &spec.processes {
        out.push('\n');
        describe_process(&mut out, process);
    }
    out
}

fn describe_process(out: &mut String, p: &ProcessSpec) {
    let _ = writeln!(out, "{}: {}", instances(p), command_line(&p.argv));
    let mut line = |label: &str, text: String| {
        let _ = writeln!(out, "  {label:<10} {text}");
    };
    if let Some(cwd) = &p.cwd {
        line("cwd", cwd.display().to_string());
    }
    if !p.env.is_empty() {
        let names: Vec<&str> = p.env.iter().map(|(k, _)| k.as_str()).collect();
        line("env", names.join(", "));
    }
    if let Some(file) = &p.env_file {
        line("env file", file.display().to_string());
    }
    if let Some(identity) = &p.identity {
        let groups: Vec<String> = identity.groups.iter().map(u32::to_string).collect();
        let groups = if groups.is_empty() {
            "none".to_owned()
        } else {
            groups.join(", ")
        };
        let who = match &identity.user {
            Some(user) => format!("{} (uid {}), ", user.name, user.uid),
            None => String::new(),
        };
        line(
            "runs as",
            format!("{who}gid {}, supplementary groups {groups}", identity.gid),
        );
    }
    let mut limits: Vec<String> = p
        .rlimits
        .iter()
        .map(|l| {
            let show = |n: u64| match n {
                tend_core::Rlimit::UNLIMITED => "unlimited".to_owned(),
                n if l.kind.is_bytes() => format_size(n),
                n => n.to_string(),
            };
            if l.soft == l.hard {
                format!("{} {}", l.kind.key(), show(l.soft))
            } else {
                format!("{} {} (hard {})", l.kind.key(), show(l.soft), show(l.hard))
            }
        })
        .collect();
    if let Some(mask) = p.umask {
        limits.push(format!("umask {mask:04o}"));
    }
    if let Some(nice) = p.nice {
        limits.push(format!("nice {nice}"));
    }
    if let Some(adj) = p.oom_score_adj {
        limits.push(format!("oom_score_adj {adj}"));
    }
    if !limits.is_empty() {
        line("limits", limits.join(", "));
    }
    if let Some(max) = p.memory_max {
        line(
            "memory max",
            format!(
                "{} per instance, by its cgroup (the OOM killer past it)",
                format_size(max)
            ),
        );
    }
    if let Some(percent) = p.cpu_max {
        line(
            "cpu max",
            format!("{percent}% of one CPU per instance, by its cgroup"),
        );
    }
    if let Some(n) = p.pids_max {
        line(
            "pids max",
            format!("{n} processes per instance, by its cgroup"),
        );
    }
    if let Some(limit) = &p.memory_limit {
        line(
            "memory",
            format!(
                "stopped (then its restart policy applies) when its processes use more than {} \
                 for {} (sampled every second)",
                format_size(limit.bytes),
                format_duration(limit.for_at_least)
            ),
        );
    }
    if let Some(first) = p.port {
        let ports = match p.replicas {
            1 => format!("PORT={first}"),
            n => format!(
                "PORT={first} to {} (one per instance)",
                u32::from(first) + n - 1
            ),
        };
        line("port", ports);
    }
    if !p.autostart {
        line(
            "autostart",
            format!("no (start it with: tend start {})", p.name),
        );
    }
    if !p.depends_on.is_empty() {
        let dependencies: Vec<String> = p
            .depends_on
            .iter()
            .map(|d| {
                let condition = d.condition.name();
                let with = if p.restart_with.contains(&d.name) {
                    ", restarts with it"
                } else {
                    ""
                };
                format!("{} ({condition}{with})", d.name)
            })
            .collect();
        line("depends on", dependencies.join(", "));
    }
    if let Some(ready) = &p.ready {
        line("ready", describe_ready(ready));
    }
    if let Some(health) = &p.health {
        line(
            "health",
            match health.failures {
                1 => format!("{}; a failure stops it", describe_probe(&health.probe)),
                n => format!(
                    "{}; {n} failures in a row stop it",
                    describe_probe(&health.probe)
                ),
            },
        );
    }
    let restart = match p.restart {
        RestartPolicy::Always => "always".to_owned(),
        RestartPolicy::Never => "never".to_owned(),
        RestartPolicy::OnFailure => {
            let codes: Vec<String> = p.success_codes.iter().map(i32::to_string).collect();
            format!("on-failure (success: exit {})", codes.join(", "))
        }
    };
    line("restart", restart);
    if p.restart != RestartPolicy::Never {
        let (b, m) = (&p.backoff, &p.max_restarts);
        line(
            "backoff",
            format!(
                "{}, x{} up to {}; reset after {} up; fail after {} restarts within {}",
                format_duration(b.initial),
                b.factor,
                format_duration(b.max),
                format_duration(p.start_secs),
                m.count,
                format_duration(m.within),
            ),
        );
    }
    if let Some(after) = p.retry_after {
        line(
            "retry",
            format!(
                "once failed, tried again after {} with its restarts counted afresh",
                format_duration(after)
            ),
        );
    }
    line(
        "stop",
        format!(
            "{}, then SIGKILL after {}",
            p.stop_signal,
            format_duration(p.stop_timeout)
        ),
    );
    if p.interactive {
        line(
            "terminal",
            "interactive: a pseudo-terminal for stdin, stdout and stderr (one log); \
             `tend attach` types into it"
                .to_owned(),
        );
    }
    if p.on_exit == tend_core::OnExit::Shutdown {
        line(
            "on exit",
            "essential: when it ends for good, tend stops everything and exits with its code"
                .to_owned(),
        );
    }
    let timestamps = if p.log.timestamps { ", timestamps" } else { "" };
    line(
        "log",
        format!(
            "rotate at {}, keep {} rotated files{timestamps}",
            format_size(p.log.max_size),
            p.log.keep
        ),
    );
}

/// `notify, watchdog 30s; a failed start if not ready within 1m30s`.
pub(super) fn describe_ready(ready: &ReadySpec) -> String {
    let check = match &ready.check {
        ReadyCheck::Notify => "notify (READY=1 on $NOTIFY_SOCKET)".to_owned(),
        ReadyCheck::NotifyFd(fd) => format!("a line on fd {fd}"),
        ReadyCheck::LogLine(pattern) => format!("a log line matching {pattern:?}"),
        ReadyCheck::Probe(probe) => describe_probe(probe),
    };
    let watchdog = match ready.watchdog {
        Some(w) => format!(", watchdog {}", format_duration(w)),
        None => String::new(),
    };
    let timeout = match ready.start_timeout {
        Some(t) => format!("a failed start if not ready within {}", format_duration(t)),
        None => "may take for ever".to_owned(),
    };
    format!("{check}{watchdog}; {timeout}")
}

/// `tcp 127.0.0.1:5432 every 500ms, timeout 1s`.
pub(super) fn describe_probe(probe: &ProbeSpec) -> String {
    let what = match &probe.kind {
        Probe::Tcp(address) => format!("tcp {address}"),
        Probe::Http(url) => format!("http {url}"),
        Probe::Exec(argv) => format!("exec {}", command_line(argv)),
    };
    format!(
        "{what} every {}, timeout {}",
        format_duration(probe.period),
        format_duration(probe.timeout)
    )
}

/// `web`, `web (2 replicas: web.0, web.1)` or `web (8 replicas: web.0 … web.7)`.
fn instances(p: &ProcessSpec) -> String {
    let n = p.replicas;
    match n {
        1 => p.name.clone(),
        2 | 3 => {
            let names: Vec<String> = (0..n).map(|i| format!("{}.{i}", p.name)).collect();
            format!("{} ({n} replicas: {})", p.name, names.join(", "))
        }
        _ => format!("{0} ({n} replicas: {0}.0 … {0}.{1})", p.name, n - 1),
    }
}

/// The argv as a shell would need it typed, on one line.
fn command_line(argv: &[String]) -> String {
    let words: Vec<String> = argv.iter().map(|word| quote(word)).collect();
    words.join(" ")
}

/// A word as a shell would need it typed. A word with a control character (a newline, a tab,
/// the ESC of an escape sequence) is written in `$'…'` quoting (bash, zsh, ksh) with each
/// such character escaped (`$'echo a\necho b'`), so that it stays on its line and nothing in
/// it reaches the terminal raw.
fn quote(word: &str) -> String {
    if !word.chars().any(char::is_control) {
        if let Ok(quoted) = shlex::try_quote(word) {
            return quoted.into_owned();
        }
    }
    let mut out = String::from("$'");
    for c in word.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}
