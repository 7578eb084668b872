//! A harness for end-to-end tests: runs the real `tend` binary in a temp dir and watches what it
//! prints. Every process a test starts dies with the test: tend is killed on drop, and so is
//! the process group of every child tend reported starting.

#![allow(dead_code, missing_docs)]

pub mod daemon;
pub mod tmux;

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// The deadline for anything a test waits on; generous, since CI machines may be loaded.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub fn tend_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tend")
}

#[derive(Default)]
struct Transcript {
    lines: Vec<String>,
    closed: bool,
}

pub struct Tend {
    pub child: Child,
    pub dir: tempfile::TempDir,
    out: Arc<(Mutex<Transcript>, Condvar)>,
    err: Arc<Mutex<String>>,
    exited: Option<ExitStatus>,
}

/// Writes `config` to tend.toml in a fresh temp dir.
pub fn project(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join("tend.toml"), config).expect("writing tend.toml");
    dir
}

impl Tend {
    /// `tend -c DIR/tend.toml up ARGS…` with `config` as tend.toml.
    pub fn up(config: &str, args: &[&str]) -> Tend {
        Tend::up_in(project(config), args)
    }

    pub fn up_in(dir: tempfile::TempDir, args: &[&str]) -> Tend {
        let config = dir.path().join("tend.toml");
        let mut cmd = Command::new(tend_bin());
        cmd.arg("-c").arg(&config).arg("up").args(args);
        Tend::spawn(dir, cmd)
    }

    /// Runs `cmd` (which must end up exec'ing tend) and starts watching its output.
    pub fn spawn(dir: tempfile::TempDir, mut cmd: Command) -> Tend {
        cmd.current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("TEND_CONFIG")
            .env_remove("NO_COLOR");
        let mut child = cmd.spawn().expect("starting tend");
        let out = Arc::new((Mutex::new(Transcript::default()), Condvar::new()));
        let stdout = child.stdout.take().unwrap();
        let sink = Arc::clone(&out);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let (lock, cv) = &*sink;
                lock.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .lines
                    .push(line);
                cv.notify_all();
            }
            let (lock, cv) = &*sink;
            lock.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
            cv.notify_all();
        });
        let err = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let err_sink = Arc::clone(&err);
        thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            err_sink
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_str(&text);
        });
        Tend {
            child,
            dir,
            out,
            err,
            exited: None,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Everything tend printed on stdout so far.
    pub fn transcript(&self) -> Vec<String> {
        self.out
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lines
            .clone()
    }

    /// Asserts that some line tend printed contains `text`, showing the transcript if not.
    pub fn assert_printed(&self, text: &str) {
        let t = self.transcript();
        assert!(
            t.iter().any(|l| l.contains(text)),
            "no line has {text:?}: {t:#?}"
        );
    }

    pub fn stderr(&self) -> String {
        self.err.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until `n` printed lines satisfy `pred`; returns them. Panics with the transcript
    /// when the deadline passes.
    pub fn wait_lines(&self, n: usize, what: &str, pred: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        let (lock, cv) = &*self.out;
        let mut t = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let found: Vec<String> = t.lines.iter().filter(|l| pred(l)).cloned().collect();
            if found.len() >= n {
                return found;
            }
            let now = Instant::now();
            if now >= deadline || t.closed {
                let printed = t.lines.join("\n");
                drop(t);
                panic!(
                    "waited for {n} lines of {what:?}, saw {}; tend printed:\n{printed}\nstderr:\n{}",
                    found.len(),
                    self.stderr()
                );
            }
            t = cv.wait_timeout(t, deadline - now).unwrap().0;
        }
    }

    pub fn wait_line(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_lines(1, what, pred).remove(0)
    }

    /// PIDs of the children tend reported starting (`… started (pid N)`), in order.
    pub fn child_pids(&self) -> Vec<i32> {
        self.transcript()
            .iter()
            .filter_map(|l| started_pid(l))
            .collect()
    }

    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid()), sig).expect("signalling tend");
    }

    /// Waits for tend to exit, within the deadline.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for tend") {
                self.exited = Some(status);
                // Let the reader threads catch the last lines.
                let (lock, cv) = &*self.out;
                let mut t = lock.lock().unwrap_or_else(|e| e.into_inner());
                while !t.closed && Instant::now() < deadline {
                    t = cv.wait_timeout(t, Duration::from_millis(100)).unwrap().0;
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "tend did not exit; it printed:\n{}",
                self.transcript().join("\n")
            );
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Tend {
    fn drop(&mut self) {
        if self.exited.is_none() {
            // tend may run below what the test started (a shell, `script`): kill them all.
            for pid in descendants(self.pid()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for pid in self.child_pids() {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// The PID in a line such as `tend | web.0 started (pid 1234)`.
pub fn started_pid(line: &str) -> Option<i32> {
    let rest = line.split(" started (pid ").nth(1)?;
    rest.strip_suffix(')')?.parse().ok()
}

/// Whether a process exists and has not finished exiting (a zombie counts as not running).
///
/// Every thread counts: when a threaded process is killed its main thread may already show
/// `Z` while another thread is still exiting and the process's files (its listening socket,
/// say) are still open.
pub fn is_running(pid: i32) -> bool {
    let Ok(threads) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    threads.flatten().any(|thread| {
        fs::read_to_string(thread.path().join("stat"))
            .is_ok_and(|stat| proc_state(&stat) != Some('Z'))
    })
}

/// The state letter of a process, or `None` when it does not exist (was reaped).
pub fn proc_state_of(pid: i32) -> Option<char> {
    proc_state(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The state letter of a /proc/PID/stat line.
pub fn proc_state(stat: &str) -> Option<char> {
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Field `n` (1-based, as in proc(5)) of a /proc/PID/stat line.
pub fn stat_field(stat: &str, n: usize) -> Option<i64> {
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(n - 3)?
        .parse()
        .ok()
}

/// Every process whose parent is `ppid`, with its state letter.
pub fn children_of(ppid: i32) -> Vec<(i32, char)> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if stat_field(&stat, 4) == Some(i64::from(ppid)) {
            out.push((pid, proc_state(&stat).unwrap_or('?')));
        }
    }
    out
}

/// Every descendant of `pid`, parents before children.
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        for (child, _) in children_of(p) {
            out.push(child);
            queue.push(child);
        }
    }
    out
}

/// Waits until `cond` holds, polling, within the deadline; panics with `what` otherwise.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Reads a log and its rotated files, oldest first.
pub fn read_rotated(path: &Path, keep: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for n in (1..=keep).rev() {
        if let Ok(bytes) = fs::read(format!("{}.{n}", path.display())) {
            out.extend(bytes);
        }
    }
    out.extend(fs::read(path).unwrap_or_default());
    out
}

/// What a command printed and how it exited.
#[derive(Debug)]
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A command started in a process group of its own, its stdout and stderr collected by reader
/// threads. It cannot hang a test: [`Running::finish`] gives it a deadline, and whatever is
/// still running of it when it is dropped (its whole group) is killed.
pub struct Running {
    child: Child,
    shown: String,
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<Vec<u8>>>,
    readers: Vec<thread::JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl Running {
    /// Starts `cmd` with stdin from /dev/null, stdout and stderr piped, in a new process group.
    pub fn start(mut cmd: Command) -> Running {
        use std::os::unix::process::CommandExt;
        let shown = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {shown}: {e}"));
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), Arc::clone(&out)),
            collect(child.stderr.take().unwrap(), Arc::clone(&err)),
        ];
        Running {
            child,
            shown,
            out,
            err,
            readers,
            status: None,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// What it printed so far.
    pub fn printed(&self) -> Ran {
        let text = |b: &Arc<Mutex<Vec<u8>>>| {
            String::from_utf8_lossy(&b.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
        };
        Ran {
            code: self.status.and_then(|s| s.code()),
            stdout: text(&self.out),
            stderr: text(&self.err),
        }
    }

    /// Waits until it exits and both pipes reach EOF. After `limit`, kills its process group
    /// and returns what it printed so far as the error. Never panics on a slow command, so it
    /// is safe in `Drop`.
    pub fn finish_within(mut self, limit: Duration) -> Result<Ran, Ran> {
        let deadline = Instant::now() + limit;
        loop {
            if self.status.is_none() {
                self.status = self.child.try_wait().ok().flatten();
            }
            if self.status.is_some() && self.readers.iter().all(|r| r.is_finished()) {
                return Ok(self.printed());
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(self.printed());
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until it exits and both pipes reach EOF, within [`PATIENCE`]; otherwise kills its
    /// process group and panics with what it printed.
    pub fn finish(self) -> Ran {
        let shown = self.shown.clone();
        self.finish_within(PATIENCE).unwrap_or_else(|ran| {
            panic!(
                "{shown} did not finish within {PATIENCE:?} (or something it started kept its \
                 pipes open); it printed:\nstdout:\n{}\nstderr:\n{}",
                ran.stdout, ran.stderr
            )
        })
    }

    fn kill(&mut self) {
        let _ = killpg(Pid::from_raw(self.pid()), Signal::SIGKILL);
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.status.is_none() {
            self.kill();
        }
    }
}

fn collect(
    mut from: impl Read + Send + 'static,
    into: Arc<Mutex<Vec<u8>>>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => into
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    })
}

/// Runs a command to completion within [`PATIENCE`]; otherwise kills its process group and
/// panics with what it printed.
pub fn run_with_deadline(cmd: Command) -> Ran {
    Running::start(cmd).finish()
}

/// Runs a command to completion, or kills its process group after `limit` and returns `None`.
/// Never panics on a slow command, so it is safe in `Drop`.
pub fn try_run(cmd: Command, limit: Duration) -> Option<Ran> {
    Running::start(cmd).finish_within(limit).ok()
}

/// Whether a tool the test needs is there (`program args…` exits 0). A missing tool skips the
/// test with its reason, except where `TEND_TEST_REQUIRE_TOOLS` is set (`.ci/run` sets it and
/// installs the tools): there it fails the test.
pub fn have(what: &str, program: &str, args: &[&str]) -> bool {
    let mut cmd = Command::new(program);
    cmd.args(args);
    let ok = try_run(cmd, Duration::from_secs(30)).is_some_and(|r| r.code == Some(0));
    if !ok {
        assert!(
            std::env::var_os("TEND_TEST_REQUIRE_TOOLS").is_none(),
            "{what} is needed and TEND_TEST_REQUIRE_TOOLS is set: `{program} {}` failed",
            args.join(" ")
        );
        eprintln!(
            "skipped: {what} is not installed (`{program} {}` failed)",
            args.join(" ")
        );
    }
    ok
}
