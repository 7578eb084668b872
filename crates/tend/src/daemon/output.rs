//! The terminal side of `tend up`: every child's lines as `name.N | line`, and tend's own
//! notices, written by one thread so that a slow terminal never stalls the supervisor.
//!
//! Lines reach the writer thread over a bounded channel. When the terminal cannot keep up
//! and the channel is full, lines are dropped from the terminal only (the log files have
//! every byte) and the count of dropped lines is printed once the terminal catches up.
//!
//! A write that fails (tend.log on a full disk) is retried every second with the line in
//! hand; meanwhile new lines are dropped and counted as above, and once a write succeeds
//! again a notice says for how long writing failed, why, and how many lines were lost. Only
//! a reader that is gone for good (`EPIPE`, or `EIO` from a terminal that hung up) ends the
//! writer, and so does tend's exit: then what still cannot be written is given up.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::style::{colour_of, colour_wanted, console_safe, paint, stdout_is_terminal};

/// How many lines may wait for the terminal before new ones are dropped.
const BACKLOG: usize = 4096;
/// Wait before retrying a failed write.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// tend.log is rotated at the size of a default child log…
pub const TEND_LOG_MAX_SIZE: u64 = 10 * 1024 * 1024;
/// …and keeps as many old files.
pub const TEND_LOG_KEEP: u32 = 5;

enum Line {
    Child { prefix: Arc<str>, text: Vec<u8> },
    Notice(String),
}

/// A handle for sending lines to the terminal. Cloning is cheap.
#[derive(Clone)]
pub struct Terminal {
    tx: SyncSender<Line>,
    dropped: Arc<AtomicU64>,
    colour: bool,
    quiet: bool,
    width: usize,
}

/// Owns the writer thread; [`TerminalWriter::finish`] flushes everything and joins it.
pub struct TerminalWriter {
    thread: JoinHandle<()>,
    /// Set when tend exits: a failing write is given up instead of retried.
    closing: Arc<AtomicBool>,
}

impl Terminal {
    /// Starts the writer thread. `width` is the longest instance name, for alignment;
    /// with `quiet`, only notices are printed. With `tend_log` (daemon mode: fds 1 and 2 are
    /// that file), each notice starts with the time, and the file is rotated as a default
    /// child log is ([`TEND_LOG_MAX_SIZE`], [`TEND_LOG_KEEP`]): renamed to `tend.log.1` and
    /// so on, then fds 1 and 2 are pointed at a fresh `tend.log`.
    pub fn start(
        width: usize,
        quiet: bool,
        tend_log: Option<PathBuf>,
    ) -> (Terminal, TerminalWriter) {
        let console = stdout_is_terminal();
        Terminal::start_with(width, quiet, tend_log, colour_wanted(), console, || {
            Box::new(io::stdout().lock())
        })
    }

    /// [`Terminal::start`] writing to what `open` gives (on the writer thread), in colour
    /// when `colour`, and made safe for a terminal when `console` (see
    /// [`console_safe`](crate::style::console_safe)): for tests, which read what tend would
    /// have printed.
    pub fn start_with(
        width: usize,
        quiet: bool,
        tend_log: Option<PathBuf>,
        colour: bool,
        console: bool,
        open: impl FnOnce() -> Box<dyn Write> + Send + 'static,
    ) -> (Terminal, TerminalWriter) {
        let timestamps = tend_log.is_some();
        let (tx, rx) = mpsc::sync_channel::<Line>(BACKLOG);
        let dropped = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&dropped);
        let tend_prefix = paint(&format!("{:width$} |", "tend"), "1", colour);
        let closing = Arc::new(AtomicBool::new(false));
        let giving_up = Arc::clone(&closing);
        let thread = thread::Builder::new()
            .name("tend-terminal".into())
            .spawn(move || {
                let mut out = open();
                let mut buf = Vec::with_capacity(256);
                let notice = |buf: &mut Vec<u8>, text: &str| {
                    if timestamps {
                        let now = super::logfile::rfc3339_millis(std::time::SystemTime::now());
                        let _ = writeln!(buf, "{now} {text}");
                    } else {
                        let _ = writeln!(buf, "{tend_prefix} {text}");
                    }
                };
                // Lines given up at exit because writing kept failing.
                let mut given_up = 0;
                let mut tend_log = tend_log.map(|path| {
                    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
                    (path, size)
                });
                for line in rx {
                    buf.clear();
                    let lost = seen.swap(0, Ordering::Relaxed);
                    if lost > 0 {
                        let _ = writeln!(buf, "{tend_prefix} ({lost} lines not shown: the terminal was slow; the log files have them)");
                    }
                    match line {
                        Line::Child { prefix, text } => {
                            buf.extend_from_slice(prefix.as_bytes());
                            buf.push(b' ');
                            if console {
                                console_safe(&text, colour, &mut buf);
                            } else {
                                buf.extend_from_slice(&text);
                            }
                            buf.push(b'\n');
                        }
                        Line::Notice(text) => notice(&mut buf, &text),
                    }
                    let written = write_retrying(&mut out, &buf, &giving_up);
                    if let (Some((path, size)), Ok(_)) = (&mut tend_log, &written) {
                        *size += buf.len() as u64;
                        if *size >= TEND_LOG_MAX_SIZE {
                            *size = 0;
                            let _ = out.flush();
                            let rotated = super::logfile::shift_numbered(path, TEND_LOG_KEEP)
                                .map_err(|e| e.to_string())
                                .and_then(|()| {
                                    tend_os::redirect_stdio_to(path).map_err(|e| e.to_string())
                                });
                            if let Err(e) = rotated {
                                buf.clear();
                                notice(&mut buf, &format!("rotating {} failed: {e}", path.display()));
                                let _ = write_retrying(&mut out, &buf, &giving_up);
                            }
                        }
                    }
                    match written {
                        Ok(None) => {}
                        Ok(Some((since, error))) => {
                            // Writing works again: say how long it failed and what was lost.
                            let lost = seen.swap(0, Ordering::Relaxed) + given_up;
                            given_up = 0;
                            buf.clear();
                            notice(
                                &mut buf,
                                &format!(
                                    "writing tend's output failed for {}s ({error}) and works again; {lost} lines of it could not be kept meanwhile",
                                    since.elapsed().as_secs()
                                ),
                            );
                            let _ = write_retrying(&mut out, &buf, &giving_up);
                        }
                        Err(e) if reader_gone(&e) => break,
                        Err(_) => given_up += 1,
                    }
                }
            })
            .expect("spawning the terminal thread");
        (
            Terminal {
                tx,
                dropped,
                colour,
                quiet,
                width,
            },
            TerminalWriter { thread, closing },
        )
    }

    /// The coloured, aligned prefix `name.N |` of an instance of process `process`.
    pub fn prefix(&self, process: &str, instance: &str) -> Arc<str> {
        let colour = colour_of(process);
        paint(
            &format!("{instance:w$} |", w = self.width),
            colour,
            self.colour,
        )
        .into()
    }

    /// Whether children's lines are shown (not with `--quiet`).
    pub fn shows_output(&self) -> bool {
        !self.quiet
    }

    /// Prints one line of a child's output (unless quiet).
    pub fn child_line(&self, prefix: &Arc<str>, text: &[u8]) {
        if !self.quiet {
            self.send(Line::Child {
                prefix: Arc::clone(prefix),
                text: text.to_vec(),
            });
        }
    }

    /// Prints one of tend's own notices.
    pub fn notice(&self, text: String) {
        self.send(Line::Notice(text));
    }

    fn send(&self, line: Line) {
        match self.tx.try_send(line) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl TerminalWriter {
    /// Waits until every line sent before all [`Terminal`] handles were dropped is written,
    /// or could not be: a write that keeps failing is tried once more, then given up.
    pub fn finish(self) {
        self.closing.store(true, Ordering::Relaxed);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}

/// Writes all of `buf` to `out`, retrying a failed write every [`RETRY_AFTER`] (no byte
/// twice) until it succeeds, or until `closing` is set (then the error); an `EPIPE` is
/// returned at once. Returns when the first write failed and the last error, if one did.
fn write_retrying(
    out: &mut impl Write,
    buf: &[u8],
    closing: &AtomicBool,
) -> io::Result<Option<(Instant, String)>> {
    let mut rest = buf;
    let mut failing: Option<(Instant, String)> = None;
    loop {
        match write_counting(out, &mut rest).and_then(|()| out.flush()) {
            Ok(()) => return Ok(failing),
            Err(e) if reader_gone(&e) => return Err(e),
            Err(e) if closing.load(Ordering::Relaxed) => return Err(e),
            Err(e) => {
                let since = failing.map_or_else(Instant::now, |(since, _)| since);
                failing = Some((since, e.to_string()));
                thread::park_timeout(RETRY_AFTER);
            }
        }
    }
}

/// Whether a write error means nobody will ever read what tend writes: a closed pipe, or a
/// terminal that hung up (`EIO`; a file on a failing disk may say `EIO` too, and tend.log then
/// stops, as it would anyway). Retrying those would wake tend every second for nothing.
fn reader_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe || e.raw_os_error() == Some(libc::EIO)
}

/// Writes `rest` to `out`, advancing it past what was written, even when a write fails.
fn write_counting(out: &mut impl Write, rest: &mut &[u8]) -> io::Result<()> {
    while !rest.is_empty() {
        match out.write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *rest = &rest[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
