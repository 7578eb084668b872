//! The client side of tend's control plane: the verbs `status`, `start`, `stop`, `restart`,
//! `signal`, `logs`, `reload` and `down`, run against the supervisor of a config over its
//! control socket (newline-delimited JSON, see docs/protocol.md).
//!
//! This module owns what the user sees of those verbs: what they print on stdout, the
//! `tend: ...` messages on stderr, and the exit code. [`conn`] speaks the protocol over a
//! blocking [`std::os::unix::net::UnixStream`], [`render`] formats answers for people and
//! [`verbs`] puts the two together, one function per verb. [`ui`] is `tend ui`, the terminal
//! UI over the same connections.
//!
//! Exit codes (PRODUCT.md): 0 ok, 1 an operation failed, 2 usage error, 3 no supervisor
//! running, 78 a `reload` found a bad config.

use std::io::{self, Write};
use std::path::Path;

use tend_proto::{ErrorBody, ErrorCode};

use crate::paths::RuntimePaths;
use crate::style::colour_wanted;

pub mod attach;
mod conn;
pub mod ls;
mod progress;
mod render;
pub mod ui;
mod verbs;

#[cfg(test)]
mod tests;

/// How `tend logs` shows its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogsView {
    /// One JSON object per line (the protocol's log line) instead of text.
    pub json: bool,
    /// Only the lines of this stream.
    pub only: Option<tend_proto::Stream>,
    /// `name.N |` before each line of text.
    pub prefix: bool,
    /// The time tend read each line before it (`--timestamps`).
    pub timestamps: bool,
}

impl Default for LogsView {
    fn default() -> Self {
        LogsView {
            json: false,
            only: None,
            prefix: true,
            timestamps: false,
        }
    }
}

/// `tend logs --since`: the oldest lines to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// Read at most this long ago: `90s`, `10m`, `1h30m` (the config's durations).
    Ago(std::time::Duration),
    /// Read at or after this time, in milliseconds since the Unix epoch: an RFC 3339 time,
    /// such as `2026-11-29T21:44:09Z` or `2026-11-29T22:44:09.5+01:00`.
    At(u64),
}

impl Since {
    /// Reads `--since`: a duration as the config writes them, or an RFC 3339 time.
    pub fn parse(text: &str) -> Result<Since, String> {
        if let Ok(ago) = crate::config::parse_duration(text) {
            return Ok(Since::Ago(ago));
        }
        match tend_core::time::parse_rfc3339(text) {
            Some(at) => Ok(Since::At(u64::try_from(at.as_millis()).unwrap_or(u64::MAX))),
            None => Err(format!(
                "{text:?} is neither a duration (such as 90s, 10m or 1h30m; units ns, us, ms, \
                 s, m, h) nor an RFC 3339 time (such as 2026-11-29T21:44:09Z or \
                 2026-11-29T22:44:09.512+01:00)"
            )),
        }
    }

    /// The time meant, in milliseconds since the Unix epoch, with `now` as now.
    pub fn unix_ms(self, now: std::time::SystemTime) -> u64 {
        match self {
            Since::At(ms) => ms,
            Since::Ago(ago) => {
                let now = now
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                u64::try_from(now.saturating_sub(ago).as_millis()).unwrap_or(u64::MAX)
            }
        }
    }
}

/// Exit code: everything asked was done.
pub const EXIT_OK: u8 = 0;
/// Exit code: a requested operation failed (or the conversation with the supervisor did).
pub const EXIT_FAILED: u8 = 1;
/// Exit code: a usage error (a name that does not exist, a request that makes no sense).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: no supervisor is running for the config.
pub const EXIT_NOT_RUNNING: u8 = 3;
/// Exit code: `reload` found a bad config file (sysexits' EX_CONFIG); nothing was changed.
pub const EXIT_CONFIG: u8 = 78;

/// A client verb and its arguments, as the command line gave them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientVerb {
    /// `tend status [--json] [NAME...]`: the state of each instance (all when no names).
    Status {
        /// Print the instances as the stable JSON array instead of a table.
        json: bool,
        /// Processes or instances; empty for all.
        names: Vec<String>,
    },
    /// `tend start [--no-wait] [--no-deps] NAME...`.
    Start {
        /// Processes, instances or `all`.
        names: Vec<String>,
        /// Return once they run (false with `--no-wait`).
        wait: bool,
        /// Start only these, not what they depend on (`--no-deps`).
        no_deps: bool,
    },
    /// `tend stop [--no-wait] NAME...`.
    Stop {
        /// Processes, instances or `all`.
        names: Vec<String>,
        /// Return once they stopped (false with `--no-wait`).
        wait: bool,
    },
    /// `tend restart [--no-wait] NAME...`.
    Restart {
        /// Processes, instances or `all`.
        names: Vec<String>,
        /// Return once they run again (false with `--no-wait`).
        wait: bool,
    },
    /// `tend events [--json] [NAME...]`: the supervisor's events as they happen.
    Events {
        /// One JSON object per event instead of a line of text.
        json: bool,
        /// Processes or instances; empty for all.
        names: Vec<String>,
    },
    /// `tend signal SIGNAL NAME...`: a signal to the process group of each named instance.
    Signal {
        /// The signal's name, with or without `SIG`, in any case.
        signal: String,
        /// Processes, instances or `all`.
        names: Vec<String>,
    },
    /// `tend logs [-f] [-n N] [--since WHEN] [NAME...]`: past lines in the order they were
    /// printed, then with `follow` new ones.
    Logs {
        /// Keep printing new lines until the supervisor closes or the user interrupts.
        follow: bool,
        /// How many past lines per instance and stream; `None`: 10, or with `since` all.
        lines: Option<u32>,
        /// Only lines read since then.
        since: Option<Since>,
        /// Processes or instances; empty for all.
        names: Vec<String>,
        /// How to show the lines.
        view: LogsView,
    },
    /// `tend reload [--dry-run]`: re-read the config and apply the difference, printing the
    /// plan (with `dry_run`: only print it).
    Reload {
        /// Print what a reload would do and change nothing.
        dry_run: bool,
    },
    /// `tend scale web=4 worker=0`: how many instances of each process run, until the next
    /// reload.
    Scale {
        /// Process names and counts, in the order given.
        counts: Vec<(String, u32)>,
    },
    /// `tend down`: stop everything and exit the supervisor; returns once it is gone.
    Down,
}

/// Runs one verb against the supervisor of `config` (absolute path) at `paths.socket`; prints
/// results to stdout and errors to stderr (`tend: ...`); returns the process exit code.
///
/// Colour (the `name |` prefix of log lines) is on when stdout is a terminal and `NO_COLOR` is
/// not set. A stdout closed by its reader (`tend logs | head`) ends the verb quietly with 0.
pub fn run(verb: ClientVerb, config: &Path, paths: &RuntimePaths) -> u8 {
    let stdout = io::stdout();
    let stderr = io::stderr();
    let colour = colour_wanted();
    run_with(
        verb,
        config,
        paths,
        &mut stdout.lock(),
        &mut stderr.lock(),
        colour,
    )
}

/// [`run`] with its output streams and colour choice passed in, so tests can capture them.
pub(crate) fn run_with(
    verb: ClientVerb,
    config: &Path,
    paths: &RuntimePaths,
    out: &mut dyn Write,
    err: &mut dyn Write,
    colour: bool,
) -> u8 {
    let result = verbs::run(verb, config, &paths.socket, out, err, colour)
        .and_then(|()| out.flush().map_err(stdout_failure));
    match result {
        Ok(()) | Err(Failure::StdoutClosed) => EXIT_OK,
        Err(Failure::Report { code, message }) => {
            // If stderr is gone too, there is nobody left to tell.
            let _ = writeln!(err, "tend: {message}");
            code
        }
    }
}

/// The starter config `tend init` writes.
pub const STARTER: &str = include_str!("starter.toml");

/// `tend init`: writes [`STARTER`] to `tend.toml` here, or to `path`; never over a file
/// that exists (nor through a symlink planted where it goes). With a `Procfile` beside it,
/// the config is that Procfile's (`tend import`), with a pointer to the other settings.
pub fn init(path: Option<&Path>) -> Result<u8, Failure> {
    use std::io::Write as _;
    let path = path.unwrap_or(Path::new("tend.toml"));
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let procfile = dir.join("Procfile");
    let (text, what) = if procfile.is_file() {
        let imported = crate::import::procfile::import(&procfile)
            .map_err(|e| Failure::report(EXIT_CONFIG, e))?;
        let text = format!(
            "{imported}\n# More settings (readiness, health checks, logs, [http]): every key is in\n\
             # docs/config.md of tend's repository; `tend check` shows what this file runs.\n"
        );
        (text, "the processes of Procfile")
    } else {
        (
            STARTER.to_owned(),
            "one process (web), and the common settings commented out",
        )
    };
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path);
    let mut file = match created {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(Failure::report(
                EXIT_FAILED,
                format!(
                    "{} exists already; nothing was written (`tend check` shows what it runs)",
                    path.display()
                ),
            ))
        }
        Err(e) => {
            return Err(Failure::report(
                EXIT_FAILED,
                format!("cannot create {}: {e}", path.display()),
            ))
        }
    };
    file.write_all(text.as_bytes())
        .map_err(|e| Failure::report(EXIT_FAILED, format!("writing {}: {e}", path.display())))?;
    println!(
        "wrote {}: {what}; `tend check` shows what it runs, `tend up` runs it",
        path.display()
    );
    Ok(EXIT_OK)
}

/// `tend http-url`: the dashboard's address with its token, from what the running tend
/// wrote beside its socket.
pub fn http_url(config: &Path, paths: &RuntimePaths) -> Result<u8, Failure> {
    #[derive(serde::Deserialize)]
    struct Record {
        listen: std::net::SocketAddr,
        token: String,
    }
    let record = match std::fs::read(&paths.http) {
        Ok(bytes) => serde_json::from_slice::<Record>(&bytes).map_err(|e| {
            Failure::report(
                EXIT_FAILED,
                format!(
                    "{} is not what tend writes there: {e}",
                    paths.http.display()
                ),
            )
        })?,
        Err(_) => {
            // Running without HTTP, or not running: the socket says which.
            conn::Connection::open(config, &paths.socket)?;
            return Err(Failure::report(
                EXIT_FAILED,
                format!(
                    "the tend of {} serves no HTTP API; add [http] listen = \"127.0.0.1:9100\" \
                     to it (or start it with `tend up --http 127.0.0.1:9100`) and restart it",
                    config.display()
                ),
            ));
        }
    };
    println!(
        "{}",
        crate::daemon::http::url_with_token(record.listen, &record.token)
    );
    Ok(EXIT_OK)
}

/// Why a verb (or the command as a whole) ended early.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// Tell the user `tend: {message}` on stderr and exit with `code`.
    Report {
        /// The exit code.
        code: u8,
        /// What went wrong, where, and what to do next.
        message: String,
    },
    /// Whoever read stdout has closed it (EPIPE): stop quietly, a success.
    StdoutClosed,
}

impl Failure {
    /// A failure to report with `code`.
    pub fn report(code: u8, message: impl Into<String>) -> Failure {
        Failure::Report {
            code,
            message: message.into(),
        }
    }
}

impl From<crate::config::ConfigError> for Failure {
    /// A bad config file: its error (file, line, column, key), exit code 78.
    fn from(e: crate::config::ConfigError) -> Self {
        Failure::report(EXIT_CONFIG, e.to_string())
    }
}

/// The failure for an error writing to stdout: a broken pipe ends quietly, anything else is
/// reported.
pub(crate) fn stdout_failure(e: io::Error) -> Failure {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Failure::StdoutClosed
    } else {
        Failure::report(EXIT_FAILED, format!("cannot write to stdout: {e}"))
    }
}

/// The exit code for an error the supervisor answered with.
pub fn exit_code(code: ErrorCode) -> u8 {
    match code {
        ErrorCode::BadRequest | ErrorCode::UnknownName => EXIT_USAGE,
        ErrorCode::Config => EXIT_CONFIG,
        ErrorCode::ProtocolMismatch
        | ErrorCode::LineTooLong
        | ErrorCode::Failed
        | ErrorCode::ShuttingDown
        | ErrorCode::PermissionDenied => EXIT_FAILED,
    }
}

/// The failure for an error the supervisor answered with: its message, with the known names
/// added for `unknown_name` when the message does not list them already.
pub(crate) fn error_failure(error: ErrorBody) -> Failure {
    let code = exit_code(error.code);
    let mut message = error.message;
    let known = error.known.filter(|_| error.code == ErrorCode::UnknownName);
    if let Some(known) = known {
        if known.is_empty() {
            message.push_str("; the config has no processes");
        } else if !known.iter().all(|name| message.contains(name.as_str())) {
            message.push_str(&format!("; known: {}", known.join(", ")));
        }
    }
    Failure::report(code, message)
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn every_error_code_has_its_exit_code() {
        let expect = |code: ErrorCode| match code {
            ErrorCode::UnknownName | ErrorCode::BadRequest => 2,
            ErrorCode::Config => 78,
            _ => 1,
        };
        for &code in ErrorCode::ALL {
            assert_eq!(exit_code(code), expect(code), "{code}");
        }
        assert_eq!(exit_code(ErrorCode::Failed), EXIT_FAILED);
        assert_eq!(exit_code(ErrorCode::ShuttingDown), EXIT_FAILED);
        assert_eq!(exit_code(ErrorCode::ProtocolMismatch), EXIT_FAILED);
        assert_eq!(exit_code(ErrorCode::PermissionDenied), EXIT_FAILED);
    }

    #[test]
    fn unknown_names_come_with_the_known_ones() {
        let listed = ErrorBody::unknown_name(
            "no process or instance named \"wbe\"; known processes: web, worker",
            vec!["web".into(), "worker".into()],
        );
        assert_eq!(
            error_failure(listed),
            Failure::report(
                EXIT_USAGE,
                "no process or instance named \"wbe\"; known processes: web, worker"
            )
        );
        let bare = ErrorBody::unknown_name(
            "no process named 'wbe'",
            vec!["web".into(), "worker".into()],
        );
        assert_eq!(
            error_failure(bare),
            Failure::report(EXIT_USAGE, "no process named 'wbe'; known: web, worker")
        );
        let none = ErrorBody::unknown_name("no process named 'x'", vec![]);
        assert_eq!(
            error_failure(none),
            Failure::report(
                EXIT_USAGE,
                "no process named 'x'; the config has no processes"
            )
        );
    }

    #[test]
    fn config_errors_keep_the_servers_message() {
        let error = ErrorBody::new(ErrorCode::Config, "/p/tend.toml:3:5: `comand`: unknown key");
        assert_eq!(
            error_failure(error),
            Failure::report(EXIT_CONFIG, "/p/tend.toml:3:5: `comand`: unknown key")
        );
    }

    #[test]
    fn only_a_broken_pipe_on_stdout_is_quiet() {
        assert_eq!(
            stdout_failure(io::ErrorKind::BrokenPipe.into()),
            Failure::StdoutClosed
        );
        assert!(matches!(
            stdout_failure(io::Error::other("disk full")),
            Failure::Report {
                code: EXIT_FAILED,
                ..
            }
        ));
    }
}
