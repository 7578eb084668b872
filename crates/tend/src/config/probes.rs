//! `ready` and `health`: how tend learns that a run is ready, and that it is still alive.

use std::net::Ipv6Addr;
use std::time::Duration;

use tend_core::{HealthSpec, Probe, ProbeSpec, ReadyCheck, ReadySpec};

use super::error::ConfigError;
use super::read::{Field, Table};
use super::spec::{words, EXEC};
use super::tree::Kind;
use super::units::format_duration;

type Result<T> = std::result::Result<T, ConfigError>;

/// The kinds of readiness check, each a key of `ready`.
const READY_KINDS: &[&str] = &["notify", "notify_fd", "log_line", "tcp", "http", "exec"];
const READY_KEYS: &[&str] = &[
    "notify",
    "notify_fd",
    "log_line",
    "tcp",
    "http",
    "exec",
    "period",
    "timeout",
    "start_timeout",
    "watchdog",
];
/// The kinds of probe, which tend runs itself.
const PROBE_KINDS: &[&str] = &["tcp", "http", "exec"];
const HEALTH_KEYS: &[&str] = &["tcp", "http", "exec", "period", "timeout", "failures"];

/// The default time a run may take to be ready: systemd's `TimeoutStartSec=`.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// The largest `health.failures`: a million tries in a row is already "never".
const MAX_FAILURES: i64 = 1_000_000;
/// The highest `notify_fd`: below the usual soft limit of open files (1024).
const MAX_NOTIFY_FD: i64 = 1023;
/// The shortest watchdog: the child gets it in microseconds (`WATCHDOG_USEC`), where a
/// shorter one could be 0, which means none.
const MIN_WATCHDOG: Duration = Duration::from_millis(1);

/// `ready = { ... }`.
pub(super) fn ready(f: &Field<'_>) -> Result<ReadySpec> {
    let table = table(
        f,
        "ready = { notify = true } or ready = { tcp = \"127.0.0.1:8000\" }",
    )?;
    table.allow(READY_KEYS)?;
    let (kind, k) = one_kind(&table, READY_KINDS, "readiness check")?;
    let check = match kind {
        "notify" => {
            if !k.boolean()? {
                return Err(k.error(
                    "notify = false asks for no check; remove the key, or set notify = true",
                ));
            }
            ReadyCheck::Notify
        }
        "notify_fd" => ReadyCheck::NotifyFd(notify_fd(&k)?),
        "log_line" => ReadyCheck::LogLine(log_line(&k)?),
        _ => ReadyCheck::Probe(probe(
            &table,
            kind,
            &k,
            Duration::from_millis(500),
            Duration::from_secs(1),
        )?),
    };
    if !PROBE_KINDS.contains(&kind) {
        if let Some((key, f)) = ["period", "timeout"]
            .iter()
            .find_map(|key| table.get(key).map(|f| (key, f)))
        {
            return Err(f.key_error(format!(
                "{key} applies to the checks tend runs itself (tcp, http, exec), not to \
                 {kind}; remove it"
            )));
        }
    }
    let start_timeout = match table.get("start_timeout") {
        None => Some(START_TIMEOUT),
        Some(f) if matches!(f.node.kind, Kind::String(ref s) if s == "none") => None,
        Some(f) => {
            let none = "or \"none\" to wait for ever";
            let timeout = f.duration().map_err(|e| ConfigError {
                message: format!("{}; {none}", e.message),
                ..e
            })?;
            if timeout.is_zero() {
                return Err(f.error(format!("must be longer than 0s, e.g. \"90s\", {none}")));
            }
            Some(timeout)
        }
    };
    let watchdog = match table.get("watchdog") {
        None => None,
        Some(f) if kind != "notify" => {
            return Err(f.key_error(
                "watchdog needs notify = true: the process pings it with WATCHDOG=1 on the \
                 notify socket; remove it, or use notify",
            ))
        }
        Some(f) => {
            let watchdog = f.duration()?;
            if watchdog < MIN_WATCHDOG {
                return Err(f.error(format!(
                    "watchdog must be at least {}, e.g. \"30s\": the time within which the \
                     process sends WATCHDOG=1 again",
                    format_duration(MIN_WATCHDOG)
                )));
            }
            Some(watchdog)
        }
    };
    Ok(ReadySpec {
        check,
        start_timeout,
        watchdog,
    })
}

/// `health = { ... }`.
pub(super) fn health(f: &Field<'_>) -> Result<HealthSpec> {
    let table = table(f, "health = { http = \"http://127.0.0.1:8000/health\" }")?;
    if let Some(f) = ["notify", "notify_fd", "log_line"]
        .iter()
        .find_map(|key| table.get(key))
    {
        return Err(f.key_error(
            "health checks are probes: tcp, http or exec; notify, notify_fd and log_line are \
             for ready = { ... }",
        ));
    }
    table.allow(HEALTH_KEYS)?;
    let (kind, k) = one_kind(&table, PROBE_KINDS, "health check")?;
    let probe = probe(
        &table,
        kind,
        &k,
        Duration::from_secs(10),
        Duration::from_secs(5),
    )?;
    let failures = match table.get("failures") {
        None => 3,
        Some(f) => u32::try_from(f.integer(1..=MAX_FAILURES)?).expect("in range"),
    };
    Ok(HealthSpec { probe, failures })
}

/// The table of `ready` or `health`; `example` shows one in the error.
fn table<'a>(f: &Field<'a>, example: &str) -> Result<Table<'a>> {
    match f.node.kind {
        Kind::Table(_) => f.table(),
        _ => Err(f.expected(&format!("a table such as {example}"))),
    }
}

/// The one key of `table` among `kinds`, and its value. `what` names a kind in the errors.
fn one_kind<'a>(
    table: &Table<'a>,
    kinds: &[&'static str],
    what: &str,
) -> Result<(&'static str, Field<'a>)> {
    let mut found = table.entries().filter_map(|(key, f)| {
        let kind = kinds.iter().find(|&&k| k == key.name)?;
        Some((*kind, f))
    });
    let Some(first) = found.next() else {
        return Err(table
            .field()
            .error(format!("no {what}: give one of {}", kinds.join(", "))));
    };
    let others: Vec<(&str, Field<'a>)> = found.collect();
    let Some((_, second)) = others.first() else {
        return Ok(first);
    };
    let mut all: Vec<&str> = std::iter::once(first.0)
        .chain(others.iter().map(|(k, _)| *k))
        .collect();
    let last = all.pop().expect("at least two");
    let count = ["two", "three", "four", "five", "six"][all.len() - 1];
    Err(second.key_error(format!(
        "{} and {last} are {count} {what}s; keep one",
        all.join(", ")
    )))
}

/// A probe: `kind` (tcp, http or exec) with value `k`, and the table's `period` and
/// `timeout`.
fn probe(
    table: &Table<'_>,
    kind: &str,
    k: &Field<'_>,
    period: Duration,
    timeout: Duration,
) -> Result<ProbeSpec> {
    let kind = match kind {
        "tcp" => Probe::Tcp(tcp(k)?),
        "http" => Probe::Http(http(k)?),
        "exec" => Probe::Exec(words(k, &EXEC)?),
        _ => unreachable!("one of PROBE_KINDS"),
    };
    let period = match table.get("period") {
        None => period,
        Some(f) => positive(&f, period)?,
    };
    let timeout = match table.get("timeout") {
        None => timeout,
        Some(f) => positive(&f, timeout)?,
    };
    Ok(ProbeSpec {
        kind,
        period,
        timeout,
    })
}

/// A duration longer than zero; the error for a zero one offers `default`.
fn positive(f: &Field<'_>, default: Duration) -> Result<Duration> {
    let duration = f.duration()?;
    if duration.is_zero() {
        return Err(f.error(format!(
            "must be longer than 0s, e.g. \"{}\" (the default)",
            format_duration(default)
        )));
    }
    Ok(duration)
}

fn notify_fd(f: &Field<'_>) -> Result<i32> {
    match f.node.kind {
        Kind::Integer(n @ 0..=2) => Err(f.error(format!(
            "fd {n} is the process's {}; use a number from 3 to {MAX_NOTIFY_FD}",
            ["stdin", "stdout", "stderr"][n as usize]
        ))),
        _ => Ok(i32::try_from(f.integer(3..=MAX_NOTIFY_FD)?).expect("in range")),
    }
}

/// A regular expression: checked here, kept as written (the daemon compiles it again).
fn log_line(f: &Field<'_>) -> Result<String> {
    let pattern = f.string()?;
    if pattern.is_empty() {
        return Err(f.error(
            "the pattern is empty; give a regular expression a line must match, e.g. \
             \"listening on\" (\"^\" matches any line)",
        ));
    }
    regex::Regex::new(pattern).map_err(|e| f.error(regex_error(pattern, &e)))?;
    Ok(pattern.to_owned())
}

/// regex's message on one line. A syntax error is displayed on several lines: the pattern, a
/// line of `^` under the offending part, and `error: WHAT`; this says WHAT and quotes the
/// part. Anything else is joined with "; ".
fn regex_error(pattern: &str, error: &regex::Error) -> String {
    let text = error.to_string();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('~'))
        .collect();
    let what = lines.iter().find_map(|l| l.strip_prefix("error: "));
    let part = (!pattern.contains('\n'))
        .then(|| lines.iter().find(|l| l.trim_start().starts_with('^')))
        .flatten()
        .and_then(|carets| {
            // The pattern is shown indented by four spaces, the carets under it.
            let start = carets.find('^')?.checked_sub(4)?;
            let count = carets.matches('^').count();
            let part: String = pattern.chars().skip(start).take(count).collect();
            (part.chars().count() == count).then_some((start, part))
        });
    match (what, part) {
        (Some(what), Some((start, part))) => format!(
            "invalid regular expression: {what}: {part:?} at character {} of the pattern",
            start + 1
        ),
        (Some(what), None) => format!("invalid regular expression: {what}"),
        _ => format!("invalid regular expression: {}", lines.join("; ")),
    }
}

/// `host:port`, an IPv6 address in brackets (`[::1]:5432`); kept as written.
fn tcp(f: &Field<'_>) -> Result<String> {
    let text = f.string()?;
    let bad = |why: &str| {
        f.error(format!(
            "invalid address {text:?}: {why}; write host:port, e.g. \"127.0.0.1:5432\" or \
             \"[::1]:5432\""
        ))
    };
    if text.contains("://") {
        return Err(bad(
            "tcp takes host:port, not a URL (for an HTTP check, use http)",
        ));
    }
    host_port(text, false).map_err(|why| bad(&why))?;
    Ok(text.to_owned())
}

/// An `http://host[:port][/path]` URL; kept as written.
fn http(f: &Field<'_>) -> Result<String> {
    let text = f.string()?;
    let example = "e.g. \"http://127.0.0.1:8000/health\"";
    let bad = |why: &str| f.error(format!("invalid URL {text:?}: {why}"));
    let Some(rest) = text.strip_prefix("http://") else {
        let scheme = text.split_once("://").map(|(scheme, _)| scheme);
        return Err(match scheme {
            Some(s) if s.eq_ignore_ascii_case("https") => bad(&format!(
                "tend's probe speaks plain HTTP; point it at a local http:// address, {example}"
            )),
            Some(_) => bad(&format!("it must start with http://, {example}")),
            None => bad(&format!(
                "not a URL; write http://host[:port][/path], {example}"
            )),
        });
    };
    if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(&format!(
            "it contains {c:?}, which a URL cannot; percent-encode it (a space is %20)"
        )));
    }
    if text.contains('#') {
        return Err(bad("a #fragment is never sent to the server; remove it"));
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    host_port(&rest[..end], true).map_err(|why| bad(&format!("{why}; {example}")))?;
    // And what the probe itself will make of it, so that a URL passes here only if every try
    // can send it (a path that is not percent-encoded ASCII, say).
    crate::daemon::probe::HttpUrl::parse(text).map_err(|why| bad(&why))?;
    Ok(text.to_owned())
}

/// Checks `host:port` (or `host` alone when `port_optional`), an IPv6 host in brackets. The
/// error says what is wrong.
fn host_port(text: &str, port_optional: bool) -> std::result::Result<(), String> {
    let port = if let Some(rest) = text.strip_prefix('[') {
        let (address, after) = rest
            .split_once(']')
            .ok_or("the \"[\" of an IPv6 address has no \"]\"")?;
        if address.parse::<Ipv6Addr>().is_err() {
            return Err(format!("{address:?} is not an IPv6 address"));
        }
        match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(|| {
                format!("expected \":\" and a port after \"]\", found {after:?}")
            })?),
        }
    } else {
        if text.matches(':').count() > 1 {
            return Err("an IPv6 address goes in brackets, e.g. \"[::1]:8000\"".to_owned());
        }
        let (host, port) = match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        };
        if host.is_empty() {
            return Err("the host is missing".to_owned());
        }
        let name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        if !host.chars().all(name) {
            return Err(format!(
                "{host:?} is not a host name or address (letters, digits, '.', '-' and '_')"
            ));
        }
        port
    };
    let Some(port) = port else {
        return match port_optional {
            true => Ok(()),
            false => Err("the port is missing".to_owned()),
        };
    };
    if port.is_empty() {
        return Err("the port is missing after the \":\"".to_owned());
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port {port:?} is not a number"));
    }
    match port.parse::<u16>() {
        Ok(n) if n > 0 => Ok(()),
        _ => Err(format!("port {port} is out of range; expected 1 to 65535")),
    }
}

#[cfg(test)]
mod tests {
    use super::host_port;

    #[test]
    fn host_port_accepts_names_addresses_and_bracketed_ipv6() {
        for ok in [
            "127.0.0.1:5432",
            "localhost:1",
            "db-1.internal:65535",
            "[::1]:80",
        ] {
            assert_eq!(host_port(ok, false), Ok(()), "{ok}");
        }
        for ok in ["127.0.0.1", "[::1]", "web:8080"] {
            assert_eq!(host_port(ok, true), Ok(()), "{ok}");
        }
    }

    #[test]
    fn host_port_says_what_is_wrong() {
        for (bad, why) in [
            ("127.0.0.1", "the port is missing"),
            ("127.0.0.1:", "the port is missing after"),
            (":80", "the host is missing"),
            ("db:0", "port 0 is out of range"),
            ("db:65536", "port 65536 is out of range"),
            ("db:+80", "port \"+80\" is not a number"),
            ("db:http", "port \"http\" is not a number"),
            ("::1:80", "an IPv6 address goes in brackets"),
            ("[::1", "has no \"]\""),
            ("[::g]:80", "is not an IPv6 address"),
            ("[::1]80", "expected \":\" and a port"),
            ("[]:80", "\"\" is not an IPv6 address"),
            ("d b:80", "is not a host name"),
            ("user@db:80", "is not a host name"),
        ] {
            let err = host_port(bad, false).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
