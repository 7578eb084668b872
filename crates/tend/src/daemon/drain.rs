//! Pipe drainers: one task per child pipe reads until EOF (a grandchild may hold the pipe
//! after the child exited) and hands every byte to the instance's log file and the terminal.
//!
//! No byte is dropped: when the disk refuses a write, the drainer reports it, waits and
//! retries the same bytes, and meanwhile the child waits on its full pipe.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe::Receiver;

use super::lines::LineSplitter;
use super::logfile::LogFile;
use super::output::Terminal;

/// Read size: the pipe's default capacity, so one read usually empties it.
const CHUNK: usize = 64 * 1024;
/// The longest piece of a line shown on the terminal at once.
const TERMINAL_LINE_CAP: usize = 16 * 1024;
/// Wait before retrying a failed log write.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Where one pipe's bytes go.
pub struct Sink {
    log: Arc<Mutex<LogFile>>,
    terminal: Terminal,
    prefix: Arc<str>,
    lines: LineSplitter,
}

impl Sink {
    /// A sink writing to `log` and showing lines on `terminal` behind `prefix`.
    pub fn new(log: Arc<Mutex<LogFile>>, terminal: Terminal, prefix: Arc<str>) -> Self {
        Sink {
            log,
            terminal,
            prefix,
            lines: LineSplitter::new(TERMINAL_LINE_CAP),
        }
    }

    async fn write(&mut self, data: &[u8]) {
        let now = SystemTime::now();
        let mut rest = data;
        loop {
            let result = self.log.lock().expect("log lock").write(&mut rest, now);
            match result {
                Ok(()) => break,
                Err(e) => {
                    let path = self
                        .log
                        .lock()
                        .expect("log lock")
                        .path()
                        .display()
                        .to_string();
                    self.terminal.notice(format!(
                        "writing {path} failed: {e}; retrying in {}s (the process waits meanwhile)",
                        RETRY_AFTER.as_secs()
                    ));
                    tokio::time::sleep(RETRY_AFTER).await;
                }
            }
        }
        let (terminal, prefix) = (&self.terminal, &self.prefix);
        self.lines
            .feed(data, |line| terminal.child_line(prefix, line));
    }
}

/// Copies `pipe` into `sink` until EOF.
pub async fn drain(mut pipe: Receiver, mut sink: Sink) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => sink.write(&buf[..n]).await,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                sink.terminal
                    .notice(format!("reading a child's output failed: {e}"));
                break;
            }
        }
    }
    let (terminal, prefix) = (&sink.terminal, &sink.prefix);
    sink.lines.finish(|line| terminal.child_line(prefix, line));
}
