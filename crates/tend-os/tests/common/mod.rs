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
    })
    .expect("spawn");
    let guard = GroupGuard::new(child.pid);
    (child, guard)
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
