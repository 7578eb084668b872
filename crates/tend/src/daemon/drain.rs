//! Pipe drainers: one task per child pipe reads until EOF (a grandchild may hold the pipe
//! after the child exited) and hands every byte to the instance's log file and the terminal.
//! The pty of an interactive run is drained the same way, its bytes also going to the
//! clients attached to it ([`OutputTap`]).
//!
//! A drainer holds no buffer while it waits: it waits for the pipe to be readable, then reads
//! into one scratch buffer shared by all drainers of the thread, so a thousand idle children
//! cost a thousand small tasks, not a thousand read buffers.
//!
//! No byte is dropped: when the disk refuses a write, the drainer keeps what is left, reports
//! it, waits and retries, and meanwhile the child waits on its full pipe.

use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::net::unix::pipe::Receiver;

use tend_core::{ReadyFact, RunId};
use tokio::sync::mpsc;

use super::attach::OutputTap;
use super::follow::FollowHub;
use super::lines::LineSplitter;
use super::logfile::LogFile;
use super::output::Terminal;
use super::world::Event;

/// Read size: the pipe's default capacity, so one read usually empties it.
const CHUNK: usize = 64 * 1024;
/// Wait before retrying a failed log write.
const RETRY_AFTER: Duration = Duration::from_secs(1);

thread_local! {
    /// The read buffer of every drainer on this thread; borrowed only between two awaits.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; CHUNK]);
}

/// Where one pipe's bytes go.
pub struct Sink {
    log: Arc<Mutex<LogFile>>,
    terminal: Terminal,
    prefix: Arc<str>,
    /// Splits lines for the terminal and the readiness check.
    lines: LineSplitter,
    /// Where `logs -f` clients hear that the log grew.
    follow: Arc<FollowHub>,
    /// The `log_line` readiness check of the run, until a line matches.
    watch: Option<LineWatch>,
    /// For the pty of an interactive run: where attached clients get its output. Its
    /// reads end in `EIO` rather than EOF.
    tap: Option<Arc<OutputTap>>,
}

/// A run's `ready = { log_line = "..." }`: the first line of stdout or stderr that matches
/// makes it ready. Both drainers of the run share one, so that only the first match counts.
#[derive(Clone)]
pub struct LineWatch {
    /// The pattern (checked by the config layer).
    pub pattern: Arc<regex::bytes::Regex>,
    /// The run whose lines these are.
    pub run: RunId,
    /// Where the driver hears of it.
    pub events: mpsc::UnboundedSender<Event>,
    /// Whether a line matched already.
    pub matched: Arc<AtomicBool>,
}

impl LineWatch {
    /// Whether lines are still looked at.
    fn pending(&self) -> bool {
        !self.matched.load(Ordering::Relaxed)
    }

    /// Looks at one line; the first that matches makes the run ready.
    fn look(&self, line: &[u8]) {
        if self.pending()
            && self.pattern.is_match(line)
            && !self.matched.swap(true, Ordering::Relaxed)
        {
            let _ = self.events.send(Event::Readiness {
                run: self.run,
                fact: ReadyFact::Ready,
            });
        }
    }
}

impl Sink {
    /// A sink writing to `log`, showing lines on `terminal` behind `prefix`, and telling
    /// `follow` when the log grew.
    pub fn new(
        log: Arc<Mutex<LogFile>>,
        terminal: Terminal,
        prefix: Arc<str>,
        follow: Arc<FollowHub>,
        watch: Option<LineWatch>,
    ) -> Self {
        Sink {
            log,
            terminal,
            prefix,
            lines: LineSplitter::new(super::lines::LINE_CAP),
            follow,
            watch,
            tap: None,
        }
    }

    /// This sink reads the pty of an interactive run, whose output also goes to `tap`.
    pub fn with_tap(mut self, tap: Arc<OutputTap>) -> Self {
        self.tap = Some(tap);
        self
    }

    /// Shows one complete line (or a piece of a cut one) on the terminal, and gives it to the
    /// readiness check that waits for a line.
    fn line(&self, line: &[u8]) {
        if let Some(watch) = &self.watch {
            watch.look(line);
        }
        self.terminal.child_line(&self.prefix, line);
    }

    /// Whether anyone wants lines: the terminal, or a readiness check.
    fn wants_lines(&self) -> bool {
        self.terminal.shows_output() || self.watch.as_ref().is_some_and(LineWatch::pending)
    }

    /// Writes `data`, read now, to the log and the terminal; returns what the log refused, if
    /// anything. Its lines get the one time the log's index gives them.
    fn write(&mut self, data: &[u8]) -> Option<(Vec<u8>, io::Error)> {
        let now = SystemTime::now();
        if let Some(tap) = &self.tap {
            tap.push(data);
        }
        let mut lines = std::mem::replace(&mut self.lines, LineSplitter::new(0));
        if self.wants_lines() {
            lines.feed(data, |line, _| self.line(line));
        } else {
            lines.skip(data);
        }
        self.lines = lines;
        let mut rest = data;
        let mut log = self.log.lock().expect("log lock");
        let result = log.write(&mut rest, now);
        self.grew(&mut log);
        result.err().map(|e| (rest.to_vec(), e))
    }

    /// Tells followers that the log grew, its index written first so that they read each
    /// line's time with it.
    fn grew(&self, log: &mut LogFile) {
        if self.follow.following() {
            log.flush_index();
            self.follow.grew();
        }
    }

    /// Retries a refused write until the log takes it, reporting each failure. While it
    /// waits, the log file counts the bytes held here (see [`LogFile::held`]), so that a stop
    /// that cannot wait for the retry can say what was not written.
    async fn retry(&mut self, mut pending: Vec<u8>, mut error: io::Error) {
        self.log
            .lock()
            .expect("log lock")
            .set_held(0, pending.len());
        loop {
            let path = self
                .log
                .lock()
                .expect("log lock")
                .path()
                .display()
                .to_string();
            self.terminal.notice(format!(
                "writing {path} failed: {error}; retrying in {}s (the process waits meanwhile)",
                RETRY_AFTER.as_secs()
            ));
            tokio::time::sleep(RETRY_AFTER).await;
            let mut rest = &pending[..];
            let mut log = self.log.lock().expect("log lock");
            let result = log.write(&mut rest, SystemTime::now());
            log.set_held(pending.len(), rest.len());
            self.grew(&mut log);
            drop(log);
            match result {
                Ok(()) => {
                    self.terminal
                        .notice(format!("writing {path} works again; nothing was lost"));
                    return;
                }
                Err(e) => {
                    pending = rest.to_vec();
                    error = e;
                }
            }
        }
    }

    fn finish(&mut self) {
        if let Some(tap) = &self.tap {
            tap.end();
        }
        let mut lines = std::mem::replace(&mut self.lines, LineSplitter::new(0));
        lines.finish(|line, _| self.line(line));
        // A last line without newline: followers end it here, as the terminal did.
        let end = self.log.lock().expect("log lock").open_line_end();
        if let Some((file, offset)) = end {
            self.follow.run_ended(file, offset);
        }
    }
}

/// What one read of a ready pipe came to.
enum Step {
    /// Bytes went where they belong; read again.
    Wrote,
    /// The pipe is empty for now; wait for it.
    Empty,
    /// The log refused these bytes.
    Refused(Vec<u8>, io::Error),
    /// EOF or an error: the drainer is done.
    Done(Option<io::Error>),
}

/// Copies `pipe` into `sink` until EOF.
pub async fn drain(pipe: Receiver, mut sink: Sink) {
    loop {
        if let Err(e) = pipe.readable().await {
            sink.terminal
                .notice(format!("waiting for a child's output failed: {e}"));
            break;
        }
        let step = SCRATCH.with_borrow_mut(|buf| match pipe.try_read(buf) {
            Ok(0) => Step::Done(None),
            Ok(n) => match sink.write(&buf[..n]) {
                None => Step::Wrote,
                Some((rest, e)) => Step::Refused(rest, e),
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Step::Empty,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Step::Wrote,
            // A pty's master says EIO once no process holds its terminal side any more.
            Err(e) if sink.tap.is_some() && e.raw_os_error() == Some(libc::EIO) => Step::Done(None),
            Err(e) => Step::Done(Some(e)),
        });
        match step {
            // Readiness does not count against tokio's budget: yield now and then, so a pipe
            // that is never empty cannot starve the rest of the supervisor.
            Step::Wrote => tokio::task::consume_budget().await,
            Step::Empty => {}
            Step::Refused(rest, e) => sink.retry(rest, e).await,
            Step::Done(None) => break,
            Step::Done(Some(e)) => {
                sink.terminal
                    .notice(format!("reading a child's output failed: {e}"));
                break;
            }
        }
    }
    sink.finish();
}
