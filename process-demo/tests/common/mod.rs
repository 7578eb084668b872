//! Helpers shared by the process-demo tests: the real binary started with pipes, its stdout read
//! line by line as it comes, every wait bounded by a deadline, and the process group killed when
//! the test ends, even when it fails.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_process-demo");

/// `process-demo ARGS...` with stdin from `/dev/null`, in a process group of its own (so that
/// the guard can kill it and whatever it started in that group, and a signal for it reaches
/// nothing of the test's).
pub fn demo(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdin(Stdio::null()).process_group(0);
    cmd
}

/// A running process-demo. Dropped before it exited, it SIGKILLs the process group its pid leads
/// and reaps it.
pub struct Running {
    child: Child,
    /// Its pid.
    pub pid: i32,
    lines: Receiver<String>,
    /// Every stdout line taken so far, for failure messages and [`Finished::stdout`].
    seen: Vec<String>,
    stderr: Receiver<String>,
    started: Instant,
    exited: bool,
}

/// What a process-demo that ran to its end left behind.
#[derive(Debug)]
pub struct Finished {
    /// How it ended.
    pub status: ExitStatus,
    /// Every line it wrote on stdout.
    pub stdout: Vec<String>,
    /// Everything it wrote on stderr.
    pub stderr: String,
    /// From its start to its exit.
    pub took: Duration,
}

impl Running {
    /// Starts `cmd` with stdout and stderr piped to reader threads (stdin is the caller's
    /// choice).
    pub fn start(mut cmd: Command) -> Running {
        let started = Instant::now();
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        let pid = child.id() as i32;
        let (line_tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (err_tx, stderr) = mpsc::channel();
        let mut err_pipe = child.stderr.take().expect("piped");
        thread::spawn(move || {
            let mut text = String::new();
            let _ = err_pipe.read_to_string(&mut text);
            let _ = err_tx.send(text);
        });
        Running {
            child,
            pid,
            lines,
            seen: Vec::new(),
            stderr,
            started,
            exited: false,
        }
    }

    /// Waits up to `secs` seconds for a stdout line that satisfies `wanted`, and returns it;
    /// fails the test with everything printed so far otherwise.
    pub fn expect_line(&mut self, what: &str, secs: u64, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no {what} within {secs} s; stdout so far: {:#?}", self.seen)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("stdout closed with no {what}; stdout: {:#?}", self.seen)
                }
            }
        }
    }

    /// Sends `sig` to the process (not its group).
    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid), sig).expect("kill");
    }

    /// Waits up to `secs` seconds for the process to close stdout and exit; fails the test (and
    /// kills it) otherwise.
    pub fn finish(mut self, secs: u64) -> Finished {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "still running after {secs} s; stdout so far: {:#?}",
                        self.seen
                    )
                }
            }
        }
        // stdout is closed: the exit is at most a moment away.
        let status = wait_for("the exit", deadline, || {
            self.child.try_wait().expect("try_wait")
        });
        self.exited = true;
        let took = self.started.elapsed();
        let left = deadline.saturating_duration_since(Instant::now());
        let stderr = self.stderr.recv_timeout(left).unwrap_or_default();
        Finished {
            status,
            stdout: std::mem::take(&mut self.seen),
            stderr,
            took,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.exited {
            let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `cmd` to its end (at most `secs` seconds) and returns what it did.
pub fn run(cmd: Command, secs: u64) -> Finished {
    Running::start(cmd).finish(secs)
}

/// Asks `check` every millisecond until it returns `Some`, failing the test at `deadline`.
pub fn wait_for<T>(what: &str, deadline: Instant, mut check: impl FnMut() -> Option<T>) -> T {
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// Asserts that the process exited with code 0, showing its output otherwise.
pub fn assert_success(finished: &Finished) {
    assert!(
        finished.status.success(),
        "exit {:?}; stdout: {:#?}; stderr: {}",
        finished.status,
        finished.stdout,
        finished.stderr
    );
}
