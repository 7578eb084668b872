//! The terminal side of `tend up`: every child's lines as `name.N | line`, and tend's own
//! notices, written by one thread so that a slow terminal never stalls the supervisor.
//!
//! Lines reach the writer thread over a bounded channel. When the terminal cannot keep up
//! and the channel is full, lines are dropped from the terminal only (the log files have
//! every byte) and the count of dropped lines is printed once the terminal catches up.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

/// How many lines may wait for the terminal before new ones are dropped.
const BACKLOG: usize = 4096;

/// ANSI colours for process prefixes; a process keeps its colour for tend's whole life.
const COLOURS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

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
}

impl Terminal {
    /// Starts the writer thread. `width` is the longest instance name, for alignment;
    /// with `quiet`, only notices are printed; with `timestamps`, each notice starts with the
    /// time (for tend.log in daemon mode).
    pub fn start(width: usize, quiet: bool, timestamps: bool) -> (Terminal, TerminalWriter) {
        let (tx, rx) = mpsc::sync_channel::<Line>(BACKLOG);
        let dropped = Arc::new(AtomicU64::new(0));
        let stdout = io::stdout();
        let colour = colour_wanted();
        let seen = Arc::clone(&dropped);
        let tend_prefix = paint(&format!("{:width$} |", "tend"), "1", colour);
        let thread = thread::Builder::new()
            .name("tend-terminal".into())
            .spawn(move || {
                let mut out = stdout.lock();
                let mut buf = Vec::with_capacity(256);
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
                            buf.extend_from_slice(&text);
                            buf.push(b'\n');
                        }
                        Line::Notice(text) if timestamps => {
                            let now = super::logfile::rfc3339_millis(std::time::SystemTime::now());
                            let _ = writeln!(buf, "{now} {text}");
                        }
                        Line::Notice(text) => {
                            let _ = writeln!(buf, "{tend_prefix} {text}");
                        }
                    }
                    if out.write_all(&buf).and_then(|()| out.flush()).is_err() {
                        // The terminal is gone (EPIO, EPIPE): nothing more to show.
                        break;
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
            TerminalWriter { thread },
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
    /// Waits until every line sent before all [`Terminal`] handles were dropped is written.
    pub fn finish(self) {
        let _ = self.thread.join();
    }
}

/// `text` in the ANSI colour `colour` when `on`.
pub fn paint(text: &str, colour: &str, on: bool) -> String {
    if on {
        format!("\x1b[{colour}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// The colour of a process's prefix: the same for a name in every run and every command.
pub fn colour_of(process: &str) -> &'static str {
    COLOURS[stable_hash(process) % COLOURS.len()]
}

/// Whether to colour what goes to stdout: a terminal, and no `NO_COLOR`.
pub fn colour_wanted() -> bool {
    io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// FNV-1a: stable across runs and builds, unlike `DefaultHasher`.
fn stable_hash(text: &str) -> usize {
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) as usize
}
