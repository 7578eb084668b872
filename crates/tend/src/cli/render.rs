//! How the client verbs show the supervisor's answers to people: the `status` table, the
//! one-line summaries of `start`/`stop`/`restart`, `signal` and `reload`, and the `name |`
//! prefix of log lines.
//!
//! Everything here is pure (values in, text out), so that the formats are tested without a
//! socket. The JSON of `status --json` is not made here: it is the protocol's own encoding.

use std::fmt::Write as _;

use tend_core::Signal;
use tend_proto::{InstanceStatus, LastExit, LogLine, Reloaded, Scaled, State};

use crate::style::{colour_of, console_safe, paint};

/// What a table shows for a value that does not exist (no pid, not running, no exit yet).
const NONE: &str = "-";

/// The header of the `status` table.
pub const HEADER: [&str; 9] = [
    "NAME",
    "STATE",
    "PID",
    "UPTIME",
    "CPU",
    "MEM",
    "PROCS",
    "RESTARTS",
    "LAST EXIT",
];

/// The line above the `status` table: which tend answers, since when, for which config.
///
/// ```text
/// tend 0.1.0 (pid 4242), up 2h03m: /home/me/app/tend.toml
/// ```
pub fn status_header(hello: &tend_proto::ServerHello, now_ms: u64) -> String {
    let up = hello
        .started_ms
        .map(|started| format!(", up {}", uptime(Some(now_ms.saturating_sub(started)))))
        .unwrap_or_default();
    format!(
        "{} (pid {}){up}: {}\n",
        hello.server, hello.pid, hello.config
    )
}

/// A size in bytes for a table: `812K`, `30.0M`, `1.2G` (powers of 1024).
pub fn memory(bytes: u64) -> String {
    const K: f64 = 1024.0;
    let b = bytes as f64;
    if b < K * K {
        format!("{}K", (b / K).round() as u64)
    } else if b < K * K * K {
        format!("{:.1}M", b / K / K)
    } else {
        format!("{:.1}G", b / K / K / K)
    }
}

/// The `tend status` table: a header, then one row per instance, columns aligned and two
/// spaces apart, with no trailing blanks. Below an instance's row, indented: what a waiting
/// instance waits for, the `STATUS=` it sent over sd_notify, a failing health check, and a
/// log tend cannot write (which file, why, and for how long).
///
/// ```text
/// NAME   STATE    PID   UPTIME  RESTARTS  LAST EXIT
/// db.0   ready    1230  5m03s   0         -
///   status: accepting connections
/// web.0  running  1234  5m02s   0         -
///   log error: writing /srv/.tend/logs/web.0.log fails for 12s: No space left on device (os error 28); web.0 waits
/// worker.0  waiting  -  -       0         -
///   waiting for: web ready (web.0 is running)
/// ```
pub fn status_table(instances: &[InstanceStatus]) -> String {
    let rows: Vec<[String; 9]> = instances.iter().map(status_row).collect();
    let mut widths = HEADER.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    push_row(&mut text, &HEADER.map(str::to_owned), &widths);
    for (row, status) in rows.iter().zip(instances) {
        push_row(&mut text, row, &widths);
        for line in detail_lines(status) {
            let _ = writeln!(text, "  {line}");
        }
    }
    text
}

/// What the status table says under an instance's row (without the indent), one line each:
/// what a waiting instance waits for, the `STATUS=` it sent over sd_notify, when a failed
/// instance is tried again, a failing health check, and a log tend cannot write. `tend ui` shows the same lines for the selected one.
pub fn detail_lines(status: &InstanceStatus) -> Vec<String> {
    let mut lines = Vec::new();
    if !status.waiting_for.is_empty() {
        let on: Vec<String> = status
            .waiting_for
            .iter()
            .map(|w| {
                if w.no_instances {
                    return format!(
                        "{} {} ({0} has no instances: `tend scale {0}=N`)",
                        w.process, w.condition
                    );
                }
                let why = if w.gave_up {
                    ", and will not get there by itself"
                } else {
                    ""
                };
                format!("{} {} ({0} is {}{why})", w.process, w.condition, w.state)
            })
            .collect();
        lines.push(format!("waiting for: {}", on.join(", ")));
    }
    if let Some(said) = &status.notify_status {
        lines.push(format!("status: {said}"));
    }
    if let Some(ms) = status.retry_in_ms {
        lines.push(format!(
            "failed, retry in {} (retry_after; `tend start {}` now)",
            uptime(Some(ms)),
            status.process
        ));
    }
    if let Some(health) = status.health.as_ref().filter(|h| !h.healthy) {
        lines.push(format!(
            "health: failing, {} in a row; last: {}",
            health.failures_in_row,
            health.last_failure.as_deref().unwrap_or("no reason given")
        ));
    }
    if let Some(error) = &status.log_error {
        lines.push(format!(
            "log error: writing {} fails for {}: {}; {} waits",
            error.file,
            uptime(Some(error.failing_ms)),
            error.error,
            status.name
        ));
    }
    lines
}

/// The cells of one instance's row: name, state, pid, uptime, CPU, memory, restarts, last exit.
pub fn status_row(status: &InstanceStatus) -> [String; 9] {
    let usage = status.usage.as_ref();
    [
        status.name.clone(),
        status.state.to_string(),
        status
            .pid
            .map_or_else(|| NONE.to_owned(), |pid| pid.to_string()),
        uptime(status.uptime_ms),
        usage.map_or_else(|| NONE.to_owned(), |u| format!("{:.1}%", u.cpu_percent.0)),
        usage.map_or_else(|| NONE.to_owned(), |u| memory(u.rss_bytes)),
        usage.map_or_else(|| NONE.to_owned(), |u| u.processes.to_string()),
        status.restarts.to_string(),
        last_exit_of(status),
    ]
}

/// The last exit of `status` as a cell, marked `(OOM)` when the OOM killer ended the run:
/// `SIGKILL (OOM)`.
fn last_exit_of(status: &InstanceStatus) -> String {
    let exit = last_exit(status.last_exit.as_ref());
    if status.last_exit_oom {
        format!("{exit} (OOM)")
    } else {
        exit
    }
}

/// Appends one row, each cell but the last padded to its column's width.
fn push_row(text: &mut String, cells: &[String; 9], widths: &[usize; 9]) {
    let last = cells.len() - 1;
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if i == last {
            text.push_str(cell);
        } else {
            let pad = width - cell.chars().count();
            let _ = write!(text, "{cell}{:pad$}  ", "");
        }
    }
    text.push('\n');
}

/// A run's age for people: `45s`, `5m02s`, `2h03m`, `3d04h` (two units at most, the second
/// zero-padded); `-` when no run is live.
pub fn uptime(ms: Option<u64>) -> String {
    let Some(ms) = ms else {
        return NONE.to_owned();
    };
    let secs = ms / 1000;
    let (mins, hours, days) = (secs / 60, secs / 3600, secs / 86_400);
    if days > 0 {
        format!("{days}d{:02}h", hours % 24)
    } else if hours > 0 {
        format!("{hours}h{:02}m", mins % 60)
    } else if mins > 0 {
        format!("{mins}m{:02}s", secs % 60)
    } else {
        format!("{secs}s")
    }
}

/// How the previous run ended: its exit code (`0`, `1`), the signal that killed it
/// (`SIGKILL`), `spawn: <reason>` when it could not be started (the short reason of
/// [`spawn_reason`]), or `-` when no run has ended.
pub fn last_exit(exit: Option<&LastExit>) -> String {
    match exit {
        None => NONE.to_owned(),
        Some(LastExit::Code(code)) => code.to_string(),
        Some(LastExit::Signal(signal)) => signal.clone(),
        Some(LastExit::SpawnError(error)) => format!("spawn: {}", spawn_reason(error)),
    }
}

/// The short reason of a spawn error, for a table cell: `not found`, `permission denied`,
/// `not a directory`. The error is tend-os's `op path: Reason (os error N)`, or a context
/// and its cause (`opening the log file PATH: …`); the reason is its last part, without the
/// operation, the path, the errno or an explanation after `;` or ` (`, and in lower case.
/// `status --json` and the notices keep the whole text.
fn spawn_reason(error: &str) -> String {
    let (text, errno) = match error
        .strip_suffix(')')
        .and_then(|rest| rest.rsplit_once(" (os error "))
    {
        Some((text, errno)) => (text, errno.parse::<i32>().ok()),
        None => (error, None),
    };
    if errno == Some(libc::ENOENT) {
        // "No such file or directory": the program, or the directory to start in.
        return "not found".to_owned();
    }
    let last = text.rsplit_once(": ").map_or(text, |(_, last)| last);
    let end = [last.find("; "), last.find(" (")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(last.len());
    let reason = last[..end].trim();
    let mut chars = reason.chars();
    match (chars.next(), chars.next()) {
        // "Permission denied" → "permission denied"; an acronym stays as it is.
        (Some(first), Some(second)) if first.is_uppercase() && second.is_lowercase() => first
            .to_lowercase()
            .chain(reason[first.len_utf8()..].chars())
            .collect(),
        _ => reason.to_owned(),
    }
}

/// One instance after `start`, `stop` or `restart`: `web.0 running (pid 1234)`,
/// `web.0 stopped`, `web.0 failed (last exit 1)`.
pub fn instance_line(status: &InstanceStatus) -> String {
    let detail = match (status.pid, &status.last_exit) {
        (Some(pid), _) => format!(" (pid {pid})"),
        (None, Some(_)) if ended_badly(status.state) => {
            format!(" (last exit {})", last_exit_of(status))
        }
        (None, _) => String::new(),
    };
    format!("{} {}{detail}", status.name, status.state)
}

/// States in which the last exit explains what the user sees.
fn ended_badly(state: State) -> bool {
    matches!(state, State::Backoff | State::Exited | State::Failed)
}

/// The answer to `signal`: `sent SIGUSR1 to web.0, web.1`. `signal` is shown by its canonical
/// name when tend knows it (`usr1` → `SIGUSR1`), as typed otherwise.
pub fn signal_summary(signal: &str, signalled: &[String]) -> String {
    let name = signal
        .parse::<Signal>()
        .map_or_else(|_| signal.to_owned(), |s| s.name().to_owned());
    if signalled.is_empty() {
        format!("sent {name} to nothing: none of the named instances has a live process")
    } else {
        format!("sent {name} to {}", signalled.join(", "))
    }
}

/// What `start`, `stop` or `restart` (`verb`) of a process scaled to 0 says:
/// `db has no instances (scaled to 0): \`tend scale db=1\` starts one`.
pub fn no_instances(verb: &str, process: &str) -> String {
    match verb {
        "stop" => format!("{process} has no instances (scaled to 0): nothing to stop"),
        _ => {
            format!("{process} has no instances (scaled to 0): `tend scale {process}=1` starts one")
        }
    }
}

/// The answer to `reload`, in one sentence:
/// `reloaded: 1 added (db), 1 changed (web), 0 removed, 2 unchanged`. The names of added,
/// changed and removed processes follow their count when there are any; unchanged ones are
/// only counted.
pub fn reload_summary(reloaded: &Reloaded) -> String {
    format!(
        "{}: {}, {}, {}, {} unchanged",
        if reloaded.dry_run {
            "a reload would do (dry run, nothing changed)"
        } else {
            "reloaded"
        },
        counted("added", &reloaded.added),
        counted("changed", &reloaded.changed),
        counted("removed", &reloaded.removed),
        reloaded.unchanged.len(),
    )
}

/// What `tend reload` (and `tend reload --dry-run`) prints: the summary, then the plan, one
/// line per kind of step, processes in config order:
///
/// ```text
/// reloaded: 1 added (db), 3 changed (web, worker, job), 0 removed, 1 unchanged
///   start      db
///   restart    web: command, env (PORT)
///   scale      worker: replicas 2 → 4
///   update     job: command (not running: takes effect at its next start)
///   unchanged  cache
/// ```
///
/// `update` is a changed process that is not restarted (none of its instances is wanted
/// up: stopped, or a one-shot that exited).
pub fn reload_plan(reloaded: &Reloaded) -> String {
    let mut out = reload_summary(reloaded);
    let mut line = |what: &str, text: &str| {
        let _ = write!(out, "\n  {what:<10} {text}");
    };
    if !reloaded.added.is_empty() {
        line("start", &reloaded.added.join(", "));
    }
    for name in &reloaded.changed {
        let keys = reloaded
            .keys
            .get(name)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let scale = !keys.is_empty() && keys.iter().all(|k| k.starts_with("replicas "));
        let idle = reloaded.not_running.contains(name);
        let what = match (scale, idle) {
            (true, _) => "scale",
            (false, true) => "update",
            (false, false) => "restart",
        };
        let later = if idle && !scale {
            " (not running: takes effect at its next start)"
        } else {
            ""
        };
        if keys.is_empty() {
            line(what, &format!("{name}{later}"));
        } else {
            line(what, &format!("{name}: {}{later}", keys.join(", ")));
        }
    }
    if !reloaded.removed.is_empty() {
        line("stop", &reloaded.removed.join(", "));
    }
    if !reloaded.unchanged.is_empty() {
        line("unchanged", &reloaded.unchanged.join(", "));
    }
    out
}

/// What `tend scale` prints: `web: 2 → 4 instances`, one line per process, and that it lasts
/// until the next reload.
pub fn scale_summary(scaled: &Scaled) -> String {
    let mut out = String::new();
    for p in &scaled.scaled {
        let unit = if p.to == 1 { "instance" } else { "instances" };
        let _ = writeln!(out, "{}: {} → {} {unit}", p.process, p.from, p.to);
    }
    out.push_str("until the next reload, which applies the config's replicas again");
    out
}

/// `2 added (db, cache)`, or `0 added`.
fn counted(what: &str, names: &[String]) -> String {
    if names.is_empty() {
        format!("0 {what}")
    } else {
        format!("{} {what} ({})", names.len(), names.join(", "))
    }
}

/// One log line as `tend logs` prints it, without newline: `web.0 | text`, the prefix in its
/// process's colour (the same as `tend up`'s) when `colour`; a piece of a longer line
/// ends with ` [cut]`. On a terminal (`console`) the text is made safe as `tend up` makes it
/// ([`console_safe`]).
pub fn log_line(line: &LogLine, colour: bool, console: bool) -> String {
    let prefix = paint(
        &format!("{} |", line.instance),
        colour_of(process_of(&line.instance)),
        colour,
    );
    let cut = if line.cut { " [cut]" } else { "" };
    let text = if console {
        let mut safe = Vec::with_capacity(line.line.len());
        console_safe(line.line.as_bytes(), colour, &mut safe);
        String::from_utf8_lossy(&safe).into_owned()
    } else {
        line.line.clone()
    };
    format!("{prefix} {text}{cut}")
}

/// What stands for the time of a line whose time tend does not know, as wide as a time.
pub const UNKNOWN_TIME: &str = "????-??-??T??:??:??.???Z";

/// The time of a log line as `tend logs --timestamps` prints it before the line:
/// `2026-11-29T21:44:09.512Z`, or [`UNKNOWN_TIME`] when the supervisor does not know it.
pub fn log_time(line: &LogLine) -> &str {
    line.time.as_deref().unwrap_or(UNKNOWN_TIME)
}

/// The process of an instance name: `web` for `web.0`; a name without a numeric `.N` suffix
/// (such as tend's own `tend`) is its own process.
pub fn process_of(instance: &str) -> &str {
    match instance.rsplit_once('.') {
        Some((process, index))
            if !process.is_empty()
                && !index.is_empty()
                && index.bytes().all(|b| b.is_ascii_digit()) =>
        {
            process
        }
        _ => instance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tend_proto::Stream;

    fn status(
        name: &str,
        state: State,
        pid: Option<u32>,
        uptime_ms: Option<u64>,
    ) -> InstanceStatus {
        InstanceStatus {
            name: name.to_owned(),
            process: process_of(name).to_owned(),
            instance: 0,
            state,
            pid,
            uptime_ms,
            restarts: 0,
            last_exit: None,
            log_error: None,
            waiting_for: Vec::new(),
            notify_status: None,
            main_pid: None,
            health: None,
            usage: None,
            log_bytes: 0,
            log_write_errors: 0,
            retry_in_ms: None,
            last_exit_oom: false,
            oom_kills: 0,
        }
    }

    #[test]
    fn uptimes_switch_units_at_their_boundaries() {
        let secs = |s: u64| uptime(Some(s * 1000));
        assert_eq!(uptime(None), "-");
        assert_eq!(uptime(Some(0)), "0s");
        assert_eq!(uptime(Some(999)), "0s");
        assert_eq!(secs(45), "45s");
        assert_eq!(secs(59), "59s");
        assert_eq!(secs(60), "1m00s");
        assert_eq!(secs(302), "5m02s");
        assert_eq!(secs(3599), "59m59s");
        assert_eq!(secs(3600), "1h00m");
        assert_eq!(secs(2 * 3600 + 3 * 60 + 59), "2h03m");
        assert_eq!(secs(86_399), "23h59m");
        assert_eq!(secs(86_400), "1d00h");
        assert_eq!(secs(3 * 86_400 + 4 * 3600 + 59 * 60), "3d04h");
        assert_eq!(secs(400 * 86_400), "400d00h");
    }

    #[test]
    fn last_exits_render_each_kind() {
        assert_eq!(last_exit(None), "-");
        assert_eq!(last_exit(Some(&LastExit::Code(0))), "0");
        assert_eq!(last_exit(Some(&LastExit::Code(1))), "1");
        assert_eq!(last_exit(Some(&LastExit::Code(-1))), "-1");
        assert_eq!(
            last_exit(Some(&LastExit::Signal("SIGKILL".into()))),
            "SIGKILL"
        );
        assert_eq!(
            last_exit(Some(&LastExit::SpawnError(
                "spawn nosuchcmd: No such file or directory (os error 2)".into()
            ))),
            "spawn: not found"
        );
    }

    #[test]
    fn a_spawn_error_shows_its_short_reason_in_the_table() {
        let spawn = |error: &str| last_exit(Some(&LastExit::SpawnError(error.into())));
        // What tend-os says when the program, its permission or the working directory is wrong.
        assert_eq!(
            spawn("spawn ./app: Permission denied (os error 13)"),
            "spawn: permission denied"
        );
        assert_eq!(
            spawn("chdir /srv/a: file: Not a directory (os error 20)"),
            "spawn: not a directory"
        );
        assert_eq!(
            spawn("chdir /srv/gone: No such file or directory (os error 2)"),
            "spawn: not found"
        );
        assert_eq!(
            spawn("spawn ./adir: Is a directory (os error 21)"),
            "spawn: is a directory"
        );
        assert_eq!(
            spawn("setuid 65534: Operation not permitted (os error 1)"),
            "spawn: operation not permitted"
        );
        // Causes that are not an errno: the reason, without the advice after it.
        assert_eq!(
            spawn(
                "opening the log file /srv/.tend/logs/a.0.log: is a symbolic link, which tend \
                 does not follow (someone may want tend to write to the file it points to); \
                 remove it, then try again"
            ),
            "spawn: is a symbolic link, which tend does not follow"
        );
        assert_eq!(
            spawn("No such file or directory"),
            "spawn: no such file or directory"
        );
        // The table shows the short reason; `instance_line` too.
        let mut web = status("web.0", State::Exited, None, None);
        web.last_exit = Some(LastExit::SpawnError(
            "spawn /srv/app/bin/server: No such file or directory (os error 2)".into(),
        ));
        let table = status_table(std::slice::from_ref(&web));
        assert!(
            table
                .lines()
                .nth(1)
                .unwrap()
                .ends_with("  spawn: not found"),
            "{table}"
        );
        assert_eq!(
            instance_line(&web),
            "web.0 exited (last exit spawn: not found)"
        );
    }

    #[test]
    fn the_table_aligns_columns_and_shows_dashes() {
        let mut web = status("web.0", State::Running, Some(1234), Some(302_000));
        web.restarts = 12;
        web.usage = Some(tend_proto::Usage {
            processes: 3,
            cpu_ms: 1520,
            cpu_percent: tend_proto::Percent(12.5),
            rss_bytes: 31_457_280,
        });
        let mut db = status("database.0", State::Backoff, None, None);
        db.last_exit = Some(LastExit::Signal("SIGKILL".into()));
        let table = status_table(&[web, db]);
        let expected = "\
NAME        STATE    PID   UPTIME  CPU    MEM    PROCS  RESTARTS  LAST EXIT
web.0       running  1234  5m02s   12.5%  30.0M  3      12        -
database.0  backoff  -     -       -      -      -      0         SIGKILL
";
        assert_eq!(table, expected);
        assert!(table.lines().all(|l| !l.ends_with(' ')));
    }

    #[test]
    fn a_log_error_gets_a_line_under_its_row() {
        let mut web = status("web.0", State::Running, Some(1234), Some(302_000));
        web.log_error = Some(tend_proto::LogError {
            file: "/l/web.0.log".into(),
            error: "No space left on device (os error 28)".into(),
            failing_ms: 12_500,
        });
        let db = status("db.0", State::Stopped, None, None);
        assert_eq!(
            status_table(&[web, db]),
            "\
NAME   STATE    PID   UPTIME  CPU  MEM  PROCS  RESTARTS  LAST EXIT
web.0  running  1234  5m02s   -    -    -      0         -
  log error: writing /l/web.0.log fails for 12s: No space left on device (os error 28); web.0 waits
db.0   stopped  -     -       -    -    -      0         -
"
        );
    }

    #[test]
    fn waits_status_and_a_failing_health_check_get_lines_under_their_rows() {
        let mut db = status("db.0", State::Ready, Some(1230), Some(303_000));
        db.notify_status = Some("accepting connections".into());
        let mut web = status("web.0", State::Running, Some(1234), Some(302_000));
        web.health = Some(tend_proto::Health {
            healthy: false,
            failures_in_row: 2,
            last_failure: Some("HTTP 503".into()),
        });
        let mut worker = status("worker.0", State::Waiting, None, None);
        worker.waiting_for = vec![
            tend_proto::WaitingFor {
                process: "web".into(),
                condition: "ready".into(),
                state: State::Running,
                gave_up: false,
                no_instances: false,
            },
            tend_proto::WaitingFor {
                process: "migrate".into(),
                condition: "completed".into(),
                state: State::Failed,
                gave_up: true,
                no_instances: false,
            },
            tend_proto::WaitingFor {
                process: "cache".into(),
                condition: "started".into(),
                state: State::Stopped,
                gave_up: true,
                no_instances: true,
            },
        ];
        assert_eq!(
            status_table(&[db, web, worker]),
            "\
NAME      STATE    PID   UPTIME  CPU  MEM  PROCS  RESTARTS  LAST EXIT
db.0      ready    1230  5m03s   -    -    -      0         -
  status: accepting connections
web.0     running  1234  5m02s   -    -    -      0         -
  health: failing, 2 in a row; last: HTTP 503
worker.0  waiting  -     -       -    -    -      0         -
  waiting for: web ready (web is running), migrate completed (migrate is failed, and will not get there by itself), cache started (cache has no instances: `tend scale cache=N`)
"
        );
    }

    #[test]
    fn the_header_names_tend_its_uptime_and_config_and_sizes_read_well() {
        let mut hello = tend_proto::ServerHello::new("tend 0.1.0", 4242, "/srv/app/tend.toml");
        assert_eq!(
            status_header(&hello, 1_000_000),
            "tend 0.1.0 (pid 4242): /srv/app/tend.toml\n"
        );
        hello.started_ms = Some(1_000_000);
        assert_eq!(
            status_header(&hello, 1_000_000 + 7_380_000),
            "tend 0.1.0 (pid 4242), up 2h03m: /srv/app/tend.toml\n"
        );
        assert_eq!(memory(812 * 1024), "812K");
        assert_eq!(memory(31_457_280), "30.0M");
        assert_eq!(memory(1_288_490_189), "1.2G");
    }

    #[test]
    fn an_empty_table_is_its_header() {
        assert_eq!(
            status_table(&[]),
            "NAME  STATE  PID  UPTIME  CPU  MEM  PROCS  RESTARTS  LAST EXIT\n"
        );
    }

    #[test]
    fn instance_lines_say_pid_or_why_it_ended() {
        assert_eq!(
            instance_line(&status("web.0", State::Running, Some(1234), Some(1))),
            "web.0 running (pid 1234)"
        );
        let mut stopped = status("web.0", State::Stopped, None, None);
        stopped.last_exit = Some(LastExit::Signal("SIGTERM".into()));
        assert_eq!(instance_line(&stopped), "web.0 stopped");
        let mut failed = status("web.1", State::Failed, None, None);
        failed.last_exit = Some(LastExit::Code(1));
        assert_eq!(instance_line(&failed), "web.1 failed (last exit 1)");
    }

    #[test]
    fn the_reload_summary_names_what_moved() {
        let reloaded = Reloaded {
            added: vec!["db".into()],
            removed: vec![],
            changed: vec!["web".into()],
            unchanged: vec!["a".into(), "b".into()],
            ..Reloaded::default()
        };
        assert_eq!(
            reload_summary(&reloaded),
            "reloaded: 1 added (db), 1 changed (web), 0 removed, 2 unchanged"
        );
        let nothing = Reloaded::default();
        assert_eq!(
            reload_summary(&nothing),
            "reloaded: 0 added, 0 changed, 0 removed, 0 unchanged"
        );
        let removed = Reloaded {
            removed: vec!["x".into(), "y".into()],
            ..Reloaded::default()
        };
        assert_eq!(
            reload_summary(&removed),
            "reloaded: 0 added, 0 changed, 2 removed (x, y), 0 unchanged"
        );
    }

    #[test]
    fn the_reload_plan_says_what_happens_to_each_process_and_why() {
        let plan = Reloaded {
            added: vec!["db".into()],
            removed: vec!["old".into()],
            changed: vec!["web".into(), "worker".into(), "job".into()],
            unchanged: vec!["a".into(), "b".into()],
            keys: [
                (
                    "web".to_owned(),
                    vec!["command".into(), "env (PORT)".into()],
                ),
                ("worker".to_owned(), vec!["replicas 2 → 4".into()]),
                ("job".to_owned(), vec!["command".into()]),
            ]
            .into(),
            dry_run: true,
            not_running: vec!["job".into()],
        };
        assert_eq!(
            reload_plan(&plan),
            "a reload would do (dry run, nothing changed): 1 added (db), 3 changed (web, \
             worker, job), 1 removed (old), 2 unchanged\n  \
             start      db\n  \
             restart    web: command, env (PORT)\n  \
             scale      worker: replicas 2 → 4\n  \
             update     job: command (not running: takes effect at its next start)\n  \
             stop       old\n  \
             unchanged  a, b"
        );
    }

    #[test]
    fn the_signal_summary_uses_canonical_names() {
        let names = vec!["web.0".to_owned(), "web.1".to_owned()];
        assert_eq!(
            signal_summary("usr1", &names),
            "sent SIGUSR1 to web.0, web.1"
        );
        assert_eq!(
            signal_summary("SIGHUP", &names[..1]),
            "sent SIGHUP to web.0"
        );
        assert_eq!(signal_summary("RTMIN", &names[..1]), "sent RTMIN to web.0");
        assert!(signal_summary("TERM", &[]).starts_with("sent SIGTERM to nothing"));
    }

    #[test]
    fn log_lines_get_a_prefix_coloured_by_process() {
        let line = LogLine {
            time: None,
            instance: "web.0".into(),
            stream: Stream::Stdout,
            line: "Serving HTTP".into(),
            cut: false,
        };
        assert_eq!(log_line(&line, false, false), "web.0 | Serving HTTP");
        let piece = LogLine {
            cut: true,
            ..line.clone()
        };
        assert_eq!(log_line(&piece, false, false), "web.0 | Serving HTTP [cut]");
        let painted = log_line(&line, true, false);
        assert_eq!(
            painted,
            format!("\x1b[{}mweb.0 |\x1b[0m Serving HTTP", colour_of("web"))
        );
    }

    #[test]
    fn an_oom_kill_is_marked_in_the_row_and_the_line() {
        let mut web = status("web.0", State::Backoff, None, None);
        web.last_exit = Some(LastExit::Signal("SIGKILL".into()));
        assert_eq!(status_row(&web)[8], "SIGKILL");
        assert_eq!(instance_line(&web), "web.0 backoff (last exit SIGKILL)");
        web.last_exit_oom = true;
        assert_eq!(status_row(&web)[8], "SIGKILL (OOM)");
        assert_eq!(
            instance_line(&web),
            "web.0 backoff (last exit SIGKILL (OOM))"
        );
    }

    #[test]
    fn instance_names_map_to_their_process() {
        assert_eq!(process_of("web.0"), "web");
        assert_eq!(process_of("web.12"), "web");
        assert_eq!(process_of("api.v2.3"), "api.v2");
        assert_eq!(process_of("tend"), "tend");
        assert_eq!(process_of("web."), "web.");
        assert_eq!(process_of("web.x"), "web.x");
        assert_eq!(process_of(".1"), ".1");
    }
}
