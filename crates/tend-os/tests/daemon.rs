//! Contract tests of `daemonize` and `redirect_stdio_to`, through the tend-os-probe helper (a
//! test harness must not fork itself): what state the daemon starts in, and what the parent on
//! the terminal learns.

mod common;

use std::ffi::CStr;
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

use common::{adopt_orphans, probe, proc_stat, read_report, run_with_deadline, Finished, PidGuard};
use tend_os::Pid;

/// Generous for a double fork and a report; a hang fails instead of blocking the suite.
const DEADLINE_SECS: u64 = 10;

/// A pseudo-terminal pair; the slave becomes the controlling terminal of a spawned command.
struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
}

impl Pty {
    fn open() -> Pty {
        // SAFETY: posix_openpt returns a new fd or -1; grantpt and unlockpt act on that fd;
        // ptsname_r writes at most `name.len()` bytes into `name`.
        unsafe {
            let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            assert!(master >= 0, "posix_openpt");
            let master = OwnedFd::from_raw_fd(master);
            assert_eq!(libc::grantpt(master.as_raw_fd()), 0, "grantpt");
            assert_eq!(libc::unlockpt(master.as_raw_fd()), 0, "unlockpt");
            let mut name = [0 as libc::c_char; 128];
            assert_eq!(
                libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()),
                0
            );
            let slave = libc::open(
                name.as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            );
            assert!(slave >= 0, "open {:?}", CStr::from_ptr(name.as_ptr()));
            Pty {
                master,
                slave: OwnedFd::from_raw_fd(slave),
            }
        }
    }

    /// Makes the command a session leader with this terminal as its controlling terminal, as a
    /// login shell would have it.
    fn control(&self, cmd: &mut std::process::Command) {
        let slave = self.slave.as_raw_fd();
        // SAFETY: runs between fork and exec; setsid and ioctl are async-signal-safe and `slave`
        // stays open until exec (it is O_CLOEXEC, which is what closes it).
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 || libc::ioctl(slave, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

/// Runs `tend-os-probe daemon REPORT ARGS...` from a terminal and returns what it did.
fn run_daemon_probe(report: &Path, args: &[&str]) -> Finished {
    adopt_orphans();
    let pty = Pty::open();
    let mut cmd = probe();
    cmd.arg("daemon").arg(report).args(args);
    pty.control(&mut cmd);
    let finished = run_with_deadline(cmd, DEADLINE_SECS);
    drop(pty.master);
    finished
}

/// The parent's stdout on success: `daemon <pid>`, `children <n>`, `tty <state>`.
fn parse_parent(stdout: &[u8]) -> (Pid, usize, String) {
    let text = String::from_utf8_lossy(stdout);
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {key} in {text:?}"))
            .to_owned()
    };
    (
        value("daemon").parse().unwrap(),
        value("children").parse().unwrap(),
        value("tty"),
    )
}

fn stderr_of(finished: &Finished) -> String {
    String::from_utf8_lossy(&finished.output.stderr).into_owned()
}

#[test]
fn daemon_is_in_a_new_session_without_terminal_in_root_with_umask_and_null_stdio() {
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report");
    let run = run_daemon_probe(&report_path, &["--umask", "027"]);
    assert!(run.output.status.success(), "{}", stderr_of(&run));
    assert!(run.took < Duration::from_secs(5), "took {:?}", run.took);
    let (daemon_pid, children, parent_tty) = parse_parent(&run.output.stdout);
    let daemon = PidGuard::new(daemon_pid);
    // The parent had a terminal (else "no terminal" below would prove nothing), and no child
    // left: the middle process was reaped, the daemon is not its child.
    assert_eq!(parent_tty, "yes");
    assert_eq!(children, 0, "the middle process was not reaped");

    let report = read_report(&report_path);
    let pid = daemon_pid.to_string();
    assert_eq!(report["pid"], pid);
    // A new session (the probe led its own, on the terminal), whose leader was the middle
    // process: the daemon is not a session leader, so it can never acquire a terminal again.
    let sid: Pid = report["sid"].parse().unwrap();
    assert_ne!(
        sid, run.pid,
        "the daemon is still in the terminal's session"
    );
    assert_ne!(sid, daemon_pid, "the daemon must not lead its session");
    assert_eq!(
        report["pgid"], report["sid"],
        "in the middle process's group"
    );
    assert_eq!(proc_stat(sid), None, "the middle process is still there");
    // Reparented to the nearest subreaper, this test process: its parent, the middle, is gone.
    // Read now, not from the report: the daemon may write its report before the middle exits.
    assert!(
        matches!(proc_stat(daemon_pid), Some((_, ppid, _)) if ppid == std::process::id() as Pid),
        "the daemon was not reparented to the subreaper: {:?}",
        proc_stat(daemon_pid)
    );
    assert_eq!(
        report["tty"], "none",
        "the daemon has no controlling terminal"
    );
    assert_eq!(report["cwd"], "/");
    assert_eq!(report["umask"], "027");
    for fd in ["fd0", "fd1", "fd2"] {
        assert_eq!(report[fd], "/dev/null", "{fd}");
    }
    assert_eq!(report["sender_cloexec"], "true");

    // It outlived the parent (and the SIGHUP of its terminal session) and keeps running.
    assert!(!daemon.exited_within(Duration::ZERO), "the daemon died");
    assert!(matches!(proc_stat(daemon_pid), Some((state, _, _)) if state != 'Z'));
    daemon.kill();
}

#[test]
fn daemon_failure_message_reaches_the_parent_which_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report");
    let run = run_daemon_probe(&report_path, &["--fail", "bind /run/tend.sock: in use"]);
    // It exits by itself after reporting, maybe before we look: watched, not killed.
    let daemon = PidGuard::watch(read_report(&report_path)["pid"].parse().unwrap());
    assert_eq!(run.output.status.code(), Some(1));
    assert!(run.took < Duration::from_secs(5), "took {:?}", run.took);
    assert_eq!(
        stderr_of(&run),
        "tend-os-probe: bind /run/tend.sock: in use\n"
    );
    assert!(run.output.stdout.is_empty());
    assert!(daemon.exited_within(Duration::from_secs(5)));
}

#[test]
fn daemon_dying_without_a_word_is_reported_as_died() {
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report");
    let run = run_daemon_probe(&report_path, &["--die"]);
    let daemon = PidGuard::watch(read_report(&report_path)["pid"].parse().unwrap());
    assert_eq!(run.output.status.code(), Some(1));
    assert_eq!(
        stderr_of(&run),
        "tend-os-probe: the daemon exited before reporting ready\n"
    );
    assert!(daemon.exited_within(Duration::from_secs(5)));
}

#[test]
fn children_of_the_daemon_do_not_hold_the_report_pipe() {
    // The daemon spawns a long sleep, then fails: the parent reads the error to EOF, which comes
    // only if the sleep did not inherit the write end.
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report");
    let run = run_daemon_probe(&report_path, &["--spawn-sleep", "--fail", "no"]);
    let report = read_report(&report_path);
    let daemon = PidGuard::watch(report["pid"].parse().unwrap());
    let sleep_pid: Pid = report["sleep_pid"].parse().unwrap();
    assert!(sleep_pid > 0, "the daemon could not spawn sleep");
    let sleep = PidGuard::new(sleep_pid);
    assert_eq!(run.output.status.code(), Some(1));
    assert_eq!(stderr_of(&run), "tend-os-probe: no\n");
    // Not vacuous: the sleep was alive all along.
    assert!(!sleep.exited_within(Duration::ZERO), "sleep died early");
    sleep.kill();
    assert!(daemon.exited_within(Duration::from_secs(5)));
}

#[test]
fn redirect_stdio_to_appends_to_a_0600_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("tend.log");
    for round in 1..=2 {
        let report_path = dir.path().join(format!("report{round}"));
        let run = run_daemon_probe(&report_path, &["--log", log.to_str().unwrap()]);
        assert!(run.output.status.success(), "{}", stderr_of(&run));
        let (pid, _, _) = parse_parent(&run.output.stdout);
        let daemon = PidGuard::new(pid);
        assert_eq!(read_report(&report_path)["log_fd1"], log.to_str().unwrap());
        daemon.kill();
    }
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "to stdout\nto stderr\n".repeat(2),
        "the second daemon appended"
    );
    let mode = fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}
