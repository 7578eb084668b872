//! `process-demo daemon`, started from a terminal as a user would: the parent returns at once with
//! the daemon's PID; the daemon is in a session of its own without a controlling terminal, writes
//! heartbeats to the `--out` file, and on SIGTERM writes its last line and exits 0.
//!
//! This test process is a child subreaper, so the daemon (whose parent exits) becomes its child:
//! its pid stays ours until we reap it, and the guard can never kill a stranger that reused it.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_success, run, wait_for, Finished, BIN};
use nix::errno::Errno;
use nix::pty::openpty;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{getsid, Pid};

/// (session id, tty_nr) of a process, from fields 6 and 7 of /proc/PID/stat.
fn session_and_tty(pid: i32) -> Option<(i32, i32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields follow the last ')'.
    let fields: Vec<&str> = text[text.rfind(')')? + 2..].split(' ').collect();
    // fields[0] is field 3 (state): session is field 6, tty_nr field 7.
    Some((fields[3].parse().ok()?, fields[4].parse().ok()?))
}

/// Runs `program ARGS...` as the leader of a new session whose controlling terminal is a fresh
/// pseudo-terminal, as a login shell's child would be (util-linux `setsid --ctty`, which takes
/// stdin as the terminal).
fn on_a_terminal(program: &str, args: &[&str], secs: u64) -> Finished {
    let pty = openpty(None, None).expect("openpty");
    let mut cmd = Command::new("setsid");
    cmd.arg("--ctty")
        .arg(program)
        .args(args)
        .stdin(Stdio::from(pty.slave));
    let finished = run(cmd, secs);
    drop(pty.master);
    finished
}

/// The daemon: SIGKILLed and reaped on drop unless the test reaped it.
struct DaemonGuard {
    pid: Pid,
    reaped: bool,
}

impl DaemonGuard {
    /// Waits up to `secs` for the daemon to exit, and reaps it.
    fn wait(&mut self, secs: u64) -> WaitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let status = wait_for("the daemon to exit", deadline, || {
            match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)).expect("waitpid the daemon") {
                WaitStatus::StillAlive => None,
                status => Some(status),
            }
        });
        self.reaped = true;
        status
    }
}

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn daemon_detaches_beats_every_second_and_stops_on_sigterm() {
    tend_os::set_child_subreaper().expect("PR_SET_CHILD_SUBREAPER");

    // The set-up gives a controlling terminal, or the daemon's lack of one would prove nothing.
    let probe = on_a_terminal("cat", &["/proc/self/stat"], 20);
    assert_success(&probe);
    let stat = probe.stdout.join("\n");
    let tty_nr: i32 = stat[stat.rfind(')').expect("stat") + 2..]
        .split(' ')
        .nth(4)
        .and_then(|f| f.parse().ok())
        .expect("tty_nr");
    assert_ne!(tty_nr, 0, "the parent runs on a terminal: {stat}");

    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("daemon.out");
    let out_arg = out.to_str().expect("UTF-8 temp path");
    // The lifetime only bounds a daemon the guard could not kill (the test process died).
    let parent = on_a_terminal(
        BIN,
        &["daemon", "--out", out_arg, "--lifetime-secs", "60"],
        20,
    );
    assert_success(&parent);
    assert!(
        parent.took < Duration::from_secs(10),
        "the parent returns at once, not after {:?}",
        parent.took
    );
    let pid: i32 = parent
        .stdout
        .iter()
        .find_map(|l| l.strip_prefix("Daemon started with PID "))
        .and_then(|rest| rest.split(';').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no PID in {:#?}", parent.stdout));
    let mut daemon = DaemonGuard {
        pid: Pid::from_raw(pid),
        reaped: false,
    };
    assert!(
        parent
            .stdout
            .iter()
            .any(|l| *l == format!("Stop it with: kill {pid}")),
        "{:#?}",
        parent.stdout
    );

    let (session, tty) = session_and_tty(pid).expect("the daemon runs");
    let ours = getsid(None).expect("getsid").as_raw();
    assert_ne!(session, ours, "the daemon is in a session of its own");
    assert_ne!(session, pid, "the double fork: the daemon leads no session");
    assert_eq!(tty, 0, "the daemon has no controlling terminal");
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/cwd")).expect("cwd"),
        Path::new("/")
    );
    for fd in 0..=2 {
        assert_eq!(
            fs::read_link(format!("/proc/{pid}/fd/{fd}")).expect("fd"),
            Path::new("/dev/null"),
            "fd {fd}"
        );
    }

    // Its PID first (written before it reported ready), then a heartbeat a second.
    assert_eq!(lines(&out).first(), Some(&format!("pid {pid}")));
    let deadline = Instant::now() + Duration::from_secs(10);
    let beats = wait_for("two heartbeats", deadline, || {
        let beats: Vec<String> = lines(&out)
            .into_iter()
            .filter(|l| l.starts_with("heartbeat "))
            .collect();
        (beats.len() >= 2).then_some(beats)
    });
    for (n, beat) in beats.iter().take(2).enumerate() {
        let rest = beat
            .strip_prefix(&format!("heartbeat {} ", n + 1))
            .unwrap_or_else(|| panic!("{beat:?}"));
        // 2026-11-24T06:49:41Z
        assert!(
            rest.len() == 20 && rest.as_bytes()[10] == b'T' && rest.ends_with('Z'),
            "{beat:?}"
        );
    }

    kill(daemon.pid, Signal::SIGTERM).expect("SIGTERM the daemon");
    assert_eq!(daemon.wait(10), WaitStatus::Exited(daemon.pid, 0));
    assert_eq!(
        lines(&out).last().map(String::as_str),
        Some("stopping on SIGTERM")
    );
    assert_eq!(
        kill(daemon.pid, None),
        Err(Errno::ESRCH),
        "the daemon is gone"
    );
}

#[test]
fn a_status_file_the_daemon_cannot_open_is_reported_by_the_parent() {
    let finished = run(
        common::demo(&["daemon", "--out", "/nonexistent/dir/daemon.out"]),
        20,
    );
    assert_eq!(finished.status.code(), Some(1), "{finished:#?}");
    assert!(
        finished.stderr.contains("/nonexistent/dir/daemon.out"),
        "{}",
        finished.stderr
    );
}
