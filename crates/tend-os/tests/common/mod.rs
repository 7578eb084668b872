//! Helpers shared by the contract tests: a guard that kills a spawned group, /proc readers and a
//! bounded wait on a condition.
#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::wait::{waitpid, WaitStatus};
use tend_os::{Child, Command, Pid};

/// Kills the process group (SIGKILL) and reaps its leader on drop, even when the test fails.
pub struct GroupGuard {
    pgid: Pid,
    reaped: bool,
}

impl GroupGuard {
    pub fn new(pgid: Pid) -> Self {
        GroupGuard {
            pgid,
            reaped: false,
        }
    }

    /// Waits for the leader (blocking) and reports how it ended.
    pub fn wait(&mut self) -> WaitStatus {
        let status = waitpid(nix::unistd::Pid::from_raw(self.pgid), None).expect("waitpid");
        self.reaped = true;
        status
    }

    /// Records that the leader was reaped by someone else (e.g. `reap_one`).
    pub fn mark_reaped(&mut self) {
        self.reaped = true;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.pgid),
            nix::sys::signal::Signal::SIGKILL,
        );
        if !self.reaped {
            let _ = waitpid(nix::unistd::Pid::from_raw(self.pgid), None);
        }
    }
}

pub fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// Spawns `argv` with no cwd or env changes and guards its group.
pub fn spawn_guarded(words: &[&str]) -> (Child, GroupGuard) {
    let argv = argv(words);
    let child = tend_os::spawn(&Command {
        argv: &argv,
        cwd: None,
        env: &[],
        actions: &[],
    })
    .expect("spawn");
    let guard = GroupGuard::new(child.pid);
    wait_exec(child.pid);
    (child, guard)
}

/// Waits until `pid` runs its own program (or has already ended): spawn returns right after
/// the fork, so the child's state is only final once it has exec'd.
pub fn wait_exec(pid: Pid) {
    let ours = fs::read_link("/proc/self/exe").expect("our exe");
    wait_for("the child's exec", 10, || {
        match fs::read_link(format!("/proc/{pid}/exe")) {
            Ok(exe) if exe == ours => None,
            _ => Some(()),
        }
    });
}

/// Reads a pipe until EOF.
pub fn read_all(fd: OwnedFd) -> String {
    let mut text = String::new();
    fs::File::from(fd)
        .read_to_string(&mut text)
        .expect("read pipe");
    text
}

/// Calls `check` every millisecond until it returns `Some`, panicking after `secs` seconds.
pub fn wait_for<T>(what: &str, secs: u64, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// (state, ppid, pgid) of a process from /proc/<pid>/stat, if it exists.
pub fn proc_stat(pid: Pid) -> Option<(char, Pid, Pid)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields follow the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    Some((state, ppid, pgid))
}

/// Every pid in /proc.
pub fn all_pids() -> Vec<Pid> {
    fs::read_dir("/proc")
        .expect("read /proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Processes of the group `pgid` that are not zombies.
pub fn live_members(pgid: Pid) -> Vec<Pid> {
    all_pids()
        .into_iter()
        .filter(|&pid| matches!(proc_stat(pid), Some((state, _, g)) if g == pgid && state != 'Z'))
        .collect()
}

/// Zombie children of this process.
pub fn my_zombies() -> Vec<Pid> {
    let me = std::process::id() as Pid;
    all_pids()
        .into_iter()
        .filter(|&pid| matches!(proc_stat(pid), Some(('Z', ppid, _)) if ppid == me))
        .collect()
}

/// The numeric fds listed in /proc/<pid>/fd, sorted.
pub fn fds_of(pid: Pid) -> Vec<i32> {
    let mut fds: Vec<i32> = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    fds.sort_unstable();
    fds
}

/// The value of `field:` in /proc/<pid>/status.
pub fn status_field(pid: Pid, field: &str) -> String {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in status"))
        .trim()
        .to_owned()
}

pub fn readlink(path: impl AsRef<Path>) -> String {
    fs::read_link(path)
        .expect("readlink")
        .to_string_lossy()
        .into_owned()
}

/// The helper binary that daemonizes or holds a lock for the tests (src/bin/tend-os-probe.rs).
pub fn probe() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_tend-os-probe"))
}

/// What a command run to its end with [`run_with_deadline`] left behind.
pub struct Finished {
    /// Its pid (it has been reaped).
    pub pid: Pid,
    /// Exit status and everything it wrote on stdout and stderr (read until EOF).
    pub output: std::process::Output,
    /// From spawn to EOF on both pipes and exit.
    pub took: Duration,
}

/// Runs `cmd` with stdout and stderr piped until it exits and both pipes reach EOF, killing it
/// and failing the test after `secs` seconds.
pub fn run_with_deadline(mut cmd: std::process::Command, secs: u64) -> Finished {
    use std::process::Stdio;
    let start = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id() as Pid;
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(output) => Finished {
            pid,
            output: output.expect("wait"),
            took: start.elapsed(),
        },
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("{cmd:?} did not finish within {secs} s (or a process kept its pipes open)");
        }
    }
}

/// A process that is not our child (a daemon, an orphan), held by a pidfd: SIGKILLed on drop,
/// and never mistaken for a later process that reuses its pid. If it was reparented to us (the
/// test process is a subreaper, see [`adopt_orphans`]), it is reaped once it has exited.
pub struct PidGuard {
    pub pid: Pid,
    pidfd: Option<OwnedFd>,
    kill_on_drop: bool,
}

impl PidGuard {
    /// Guards `pid`, which must be alive (a pid that is free may be reused later); if it is
    /// already gone, the guard does nothing.
    pub fn new(pid: Pid) -> Self {
        let mut guard = Self::watch(pid);
        guard.kill_on_drop = true;
        guard
    }

    /// Watches `pid` without killing it on drop: for a process that may already have exited by
    /// itself, whose pid may be free (and reused) by now.
    pub fn watch(pid: Pid) -> Self {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let pidfd = (fd >= 0).then(|| {
            // SAFETY: a new fd that nobody else owns.
            unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as i32) }
        });
        PidGuard {
            pid,
            pidfd,
            kill_on_drop: false,
        }
    }

    /// Whether the process has exited, waiting up to `timeout` for it to.
    pub fn exited_within(&self, timeout: Duration) -> bool {
        use std::os::fd::AsRawFd;
        let Some(pidfd) = &self.pidfd else {
            return true;
        };
        let mut pollfd = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // SAFETY: one valid pollfd; a pidfd becomes readable when the process exits.
            let rc = unsafe { libc::poll(&mut pollfd, 1, left.as_millis() as i32) };
            if rc > 0 {
                return true;
            }
            if rc == 0 || Instant::now() >= deadline {
                return false;
            }
            // EINTR: poll again for the time left.
        }
    }

    /// Sends SIGKILL and waits (bounded) for the process to be gone, and reaps it if it is ours.
    pub fn kill(&self) {
        self.signal(libc::SIGKILL);
        assert!(
            self.exited_within(Duration::from_secs(5)),
            "pid {} survived SIGKILL",
            self.pid
        );
        self.reap_if_ours();
    }

    /// Reaps the exited process if it is our child; does nothing (`ECHILD`) if it is not.
    fn reap_if_ours(&self) {
        if self.pidfd.is_some() {
            // Exited, so this does not block: it reaps our zombie or fails with ECHILD.
            let _ = waitpid(nix::unistd::Pid::from_raw(self.pid), None);
        }
    }

    fn signal(&self, sig: i32) {
        use std::os::fd::AsRawFd;
        if let Some(pidfd) = &self.pidfd {
            // SAFETY: pidfd_send_signal with a valid pidfd, no siginfo and no flags.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    pidfd.as_raw_fd(),
                    sig,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
        }
    }
}

impl Drop for PidGuard {
    fn drop(&mut self) {
        if self.kill_on_drop {
            self.signal(libc::SIGKILL);
        }
        if self.exited_within(Duration::from_secs(5)) {
            self.reap_if_ours();
        }
    }
}

/// The `key=value` lines a daemon probe wrote.
pub fn read_report(path: &Path) -> std::collections::HashMap<String, String> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Makes the test process a child subreaper, so that orphans of the processes it starts (a
/// daemon whose middle process exited) become its children, which [`PidGuard`] reaps, instead of
/// init's (which, in some containers, never reaps them). Idempotent.
pub fn adopt_orphans() {
    tend_os::set_child_subreaper().expect("PR_SET_CHILD_SUBREAPER");
}
