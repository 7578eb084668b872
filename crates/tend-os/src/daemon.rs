//! Becoming a daemon, and telling the terminal how that went.
//!
//! This module owns the classic double fork and the one-message pipe between the process the user
//! started on a terminal (the *parent*) and the daemon it turns into:
//!
//! ```text
//! parent ── fork ──▶ middle ── setsid, fork ──▶ daemon (the grandchild)
//!   │                  └─ _exit(0) at once, reaped by the parent
//!   └─ ParentSide::wait: blocks until the daemon says "ok <pid>\n" or "err <text>", or dies
//! ```
//!
//! The daemon leads no session (the middle process did), so it can never acquire a controlling
//! terminal again; its working directory is `/`; its umask is the caller's choice; its fds 0, 1
//! and 2 are `/dev/null`. **stdout and stderr are `/dev/null` afterwards**: the caller redirects
//! its own log with [`redirect_stdio_to`] once it knows where that goes (`<log_dir>/tend.log`).
//!
//! The order tend must use: [`daemonize`] first, before any thread or runtime exists; then
//! [`LockFile::acquire`](crate::LockFile::acquire), then bind the control socket, then
//! [`ReadySender::ready`] — or [`ReadySender::failed`] with the reason, which the parent prints on
//! the terminal before exiting non-zero.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, dup2, fork, pipe2, setsid, ForkResult};

use crate::OsError;

/// What [`daemonize`] returns, in each of the two processes it returns in.
#[derive(Debug)]
pub enum Daemon {
    /// In the process the user started: wait for the daemon's report, then exit.
    Parent(ParentSide),
    /// In the daemon: set up, then report with the sender.
    Child(ReadySender),
}

/// The parent's end of the report pipe (the read end, `O_CLOEXEC`).
#[derive(Debug)]
pub struct ParentSide {
    read: File,
}

/// The daemon's end of the report pipe (the write end, `O_CLOEXEC`, so that the daemon's own
/// children never hold it). Consumed by the one message it sends.
///
/// Dropping it without a message closes the pipe: the parent sees EOF and reports
/// [`DaemonFailed::Died`], exactly as if the daemon had crashed.
#[derive(Debug)]
pub struct ReadySender {
    write: File,
}

/// Why the daemon did not come up, as the parent learnt it.
#[derive(Debug)]
pub enum DaemonFailed {
    /// The daemon reported this error with [`ReadySender::failed`].
    Reported(String),
    /// The pipe reached EOF with nothing said: the daemon died, or dropped its [`ReadySender`],
    /// before reporting.
    Died,
    /// The daemon wrote something that is not the protocol (quoted in the message).
    Garbled(String),
    /// Reading the pipe failed.
    Os(OsError),
}

impl fmt::Display for DaemonFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaemonFailed::Reported(message) => f.write_str(message),
            DaemonFailed::Died => f.write_str("the daemon exited before reporting ready"),
            DaemonFailed::Garbled(text) => {
                write!(f, "the daemon sent an unintelligible report: {text:?}")
            }
            DaemonFailed::Os(e) => write!(f, "while waiting for the daemon: {e}"),
        }
    }
}

/// No `source()`: the message includes the cause already, and an error reporter that prints
/// the chain (anyhow's `{:#}`) would show it twice.
impl std::error::Error for DaemonFailed {}

/// Turns the calling process into a daemon, as the module doc describes; `umask` is the daemon's
/// file mode creation mask (e.g. `0o027`; bits above `0o777` are ignored).
///
/// Returns twice, like `fork`: [`Daemon::Parent`] in the calling process, once the middle process
/// has exited and been reaped (no zombie stays), and [`Daemon::Child`] in the daemon. It returns
/// an error only in the calling process, before any fork or when the first fork fails: a failure
/// in the middle process or in the daemon (setsid, the second fork, chdir, `/dev/null`) is sent
/// over the pipe and that process exits, so the parent's [`ParentSide::wait`] reports it.
///
/// Must be called while the process has a single thread (fork copies only the calling thread:
/// a lock another thread held would stay locked forever in the daemon). It checks
/// `/proc/self/task` and fails with op `"daemonize with other threads running"` and `EINVAL`
/// otherwise (and trusts the caller where `/proc` cannot be read).
pub fn daemonize(umask: u32) -> Result<Daemon, OsError> {
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        if tasks.count() > 1 {
            return Err(OsError::from_errno(
                "daemonize with other threads running",
                Errno::EINVAL,
            ));
        }
    }
    let (read, write) = pipe2(OFlag::O_CLOEXEC).map_err(|e| OsError::from_errno("pipe2", e))?;
    // SAFETY: the process has one thread (checked above), so the child is a full copy of a
    // consistent process: it may allocate, lock and run any code, as after a plain fork.
    match unsafe { fork() }.map_err(|e| OsError::from_errno("fork", e))? {
        ForkResult::Parent { child: middle } => {
            // Only the daemon may hold the write end, or EOF would never come.
            drop(write);
            reap(middle.as_raw()).map_err(|e| OsError::new("waitpid", e))?;
            Ok(Daemon::Parent(ParentSide {
                read: File::from(read),
            }))
        }
        ForkResult::Child => {
            drop(read);
            let sender = ReadySender {
                write: File::from(write),
            };
            Ok(Daemon::Child(sender.become_daemon(umask)))
        }
    }
}

/// Waits for `pid` to exit, retrying on `EINTR`.
fn reap(pid: libc::pid_t) -> io::Result<()> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only to `status`, a valid local.
        if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

impl ReadySender {
    /// Runs in the child of the first fork: the rest of the double fork and the daemon's setup.
    /// Returns only in the daemon; a failure is reported to the parent and ends the process.
    fn become_daemon(self, umask: u32) -> ReadySender {
        if let Err(e) = setsid() {
            self.fail_and_exit("setsid", e);
        }
        // SAFETY: still a single thread (the fork copied only the calling one, which was alone).
        match unsafe { fork() } {
            Err(e) => self.fail_and_exit("fork", e),
            // The middle process: the session leader, which the daemon must not be.
            // SAFETY: _exit ends the process at once, without running atexit handlers or
            // flushing stdio buffers the parent will flush itself.
            Ok(ForkResult::Parent { .. }) => unsafe { libc::_exit(0) },
            Ok(ForkResult::Child) => {}
        }
        if let Err(e) = chdir("/") {
            self.fail_and_exit("chdir /", e);
        }
        nix::sys::stat::umask(Mode::from_bits_truncate(umask & 0o777));
        if let Err(e) = stdio_to_dev_null() {
            self.fail_and_exit("open /dev/null", e);
        }
        close_inherited_fds(self.as_fd().as_raw_fd());
        self
    }

    fn fail_and_exit(self, op: &str, errno: Errno) -> ! {
        let _ = self.failed(&format!("{op}: {}", io::Error::from(errno)));
        // SAFETY: _exit ends this forked process without running the caller's atexit handlers.
        unsafe { libc::_exit(1) }
    }

    /// Sends a line for the user before the report, such as what the daemon is doing while the
    /// parent waits: [`ParentSide::wait_with_notes`] shows it at once. Newlines in `text` are
    /// sent as spaces.
    ///
    /// Fails like [`ReadySender::ready`].
    pub fn note(&mut self, text: &str) -> Result<(), OsError> {
        let line = format!("note {}\n", text.replace('\n', " "));
        self.write
            .write_all(line.as_bytes())
            .map_err(|e| OsError::new("report", e))
    }

    /// Reports success: the parent's [`ParentSide::wait`] returns this process's pid.
    ///
    /// Fails with op `"report"` and `EPIPE` if the parent is gone (SIGPIPE must be ignored, as
    /// Rust programs do by default); the daemon should carry on regardless.
    pub fn ready(self) -> Result<(), OsError> {
        self.send(format!("ok {}\n", std::process::id()).as_bytes())
    }

    /// Reports failure: the parent's [`ParentSide::wait`] returns [`DaemonFailed::Reported`] with
    /// `message`, which it prints on the terminal. The daemon should then exit.
    ///
    /// Fails like [`ReadySender::ready`].
    pub fn failed(self, message: &str) -> Result<(), OsError> {
        self.send(format!("err {message}").as_bytes())
    }

    fn send(mut self, message: &[u8]) -> Result<(), OsError> {
        self.write
            .write_all(message)
            .map_err(|e| OsError::new("report", e))
        // Dropping `self` closes the write end: the parent reads EOF after the message.
    }

    /// The write end of the pipe itself, for a caller that writes the protocol by other means
    /// (e.g. from a process it execs, after clearing `FD_CLOEXEC`): `"ok <pid>\n"`, or
    /// `"err <text>"` then close. Closing it with nothing written is a failure.
    pub fn into_fd(self) -> OwnedFd {
        self.write.into()
    }
}

impl AsFd for ReadySender {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.write.as_fd()
    }
}

impl ParentSide {
    /// Blocks until the daemon reports, and returns its pid; or why it failed.
    ///
    /// Returns as soon as `"ok <pid>\n"` arrives, without waiting for EOF; an error report is read
    /// to EOF. There is no timeout: a daemon that hangs before reporting hangs the parent too
    /// (and the user sees it and presses Ctrl-C, which does not reach the daemon's new session).
    pub fn wait(self) -> Result<u32, DaemonFailed> {
        self.wait_with_notes(|_| {})
    }

    /// Like [`ParentSide::wait`], calling `on_note` with each line the daemon sends with
    /// [`ReadySender::note`] as it arrives.
    pub fn wait_with_notes(mut self, mut on_note: impl FnMut(&str)) -> Result<u32, DaemonFailed> {
        let mut report = Vec::new();
        let mut buf = [0u8; 512];
        loop {
            let n = match self.read.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(DaemonFailed::Os(OsError::new("read report", e))),
            };
            report.extend_from_slice(&buf[..n]);
            while report.starts_with(b"note ") {
                let Some(end) = report.iter().position(|&b| b == b'\n') else {
                    break;
                };
                on_note(&String::from_utf8_lossy(&report[5..end]));
                report.drain(..=end);
            }
            if n == 0 || (report.starts_with(b"ok ") && report.contains(&b'\n')) {
                return parse_report(&report);
            }
        }
    }
}

impl AsFd for ParentSide {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }
}

/// Decodes the daemon's whole report (or, for success, its first line).
fn parse_report(report: &[u8]) -> Result<u32, DaemonFailed> {
    let text = String::from_utf8_lossy(report);
    if text.is_empty() {
        return Err(DaemonFailed::Died);
    }
    if let Some(message) = text.strip_prefix("err ") {
        return Err(DaemonFailed::Reported(message.to_owned()));
    }
    text.strip_prefix("ok ")
        .and_then(|rest| rest.split_once('\n'))
        .and_then(|(pid, _)| pid.parse().ok())
        .ok_or_else(|| DaemonFailed::Garbled(text.into_owned()))
}

/// Closes every fd from 3 up but `keep` (the report pipe): a daemon holds nothing its caller
/// left open, such as the write end of a pipe the caller reads to its end.
fn close_inherited_fds(keep: RawFd) {
    let close = |from: RawFd, to: RawFd| -> bool {
        if from > to {
            return true;
        }
        // SAFETY: close_range only closes fds in the range, none of which this process uses:
        // it is single-threaded here, and the one fd it needs (`keep`) is outside the range.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                from as libc::c_uint,
                to as libc::c_uint,
                0,
            )
        };
        rc == 0
    };
    if close(3, keep - 1) && close(keep + 1, RawFd::MAX) {
        return;
    }
    // Kernels before 5.9: close what /proc/self/fd lists (collected first: the listing holds an
    // fd of its own while it runs).
    let open: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => return,
    };
    for fd in open.into_iter().filter(|&fd| fd > 2 && fd != keep) {
        // SAFETY: as above; an fd that is no longer open (the listing's own) fails harmlessly.
        unsafe { libc::close(fd) };
    }
}

/// Opens `/dev/null` on fds 0, 1 and 2.
fn stdio_to_dev_null() -> Result<(), Errno> {
    let null = open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())?;
    let null = keep_above_stdio(null)?;
    for fd in 0..=2 {
        dup2(null.as_raw_fd(), fd)?;
    }
    Ok(())
}

/// Makes sure `fd` is not 0, 1 or 2 (which it is when one of them was closed): `dup2` of an fd
/// onto itself does nothing, not even clear `FD_CLOEXEC`, and dropping the original would close
/// the standard fd.
fn keep_above_stdio(fd: libc::c_int) -> Result<OwnedFd, Errno> {
    // SAFETY: `fd` was just opened by the caller and is owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    if fd > 2 {
        return Ok(owned);
    }
    let high = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(3))?;
    // The low fd is closed; the callers dup2 onto the standard fds anyway.
    drop(owned);
    // SAFETY: F_DUPFD_CLOEXEC returned a new fd that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(high) })
}

/// Points fds 1 and 2 at the file `path`, opened `O_APPEND | O_CREAT | O_NOFOLLOW` with mode
/// 0600 (if it is created): tend's own log, `<log_dir>/tend.log`, after [`daemonize`] left them
/// on `/dev/null`. A symlink at `path` is refused, never followed.
///
/// The file's own fd is closed again; fds 1 and 2 are inherited by children that do not replace
/// them (tend's own children get pipes). Fails with op `"open"` or `"dup2"` and the path.
pub fn redirect_stdio_to(path: &Path) -> Result<(), OsError> {
    let fd = open(
        path,
        OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CREAT | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| OsError::with_path("open", path, crate::files::symlink_refused(e.into())))?;
    let log = keep_above_stdio(fd).map_err(|e| OsError::with_path("open", path, e.into()))?;
    for target in [1, 2] {
        dup2(log.as_raw_fd(), target).map_err(|e| OsError::with_path("dup2", path, e.into()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_protocol() {
        assert_eq!(parse_report(b"ok 4242\n").unwrap(), 4242);
        assert!(matches!(parse_report(b""), Err(DaemonFailed::Died)));
        let Err(DaemonFailed::Reported(message)) = parse_report(b"err bind: in use\nsee log")
        else {
            panic!("an err report");
        };
        assert_eq!(message, "bind: in use\nsee log");
        for garbled in [&b"ok 12"[..], b"ok x\n", b"hello"] {
            assert!(
                matches!(parse_report(garbled), Err(DaemonFailed::Garbled(_))),
                "{garbled:?}"
            );
        }
    }

    #[test]
    fn notes_arrive_before_the_report() {
        let (read, write) = pipe2(OFlag::O_CLOEXEC).unwrap();
        let mut sender = ReadySender {
            write: File::from(write),
        };
        sender.note("stopping\nleftovers").unwrap();
        sender.note("done").unwrap();
        sender.ready().unwrap();
        let parent = ParentSide {
            read: File::from(read),
        };
        let mut notes = Vec::new();
        let pid = parent
            .wait_with_notes(|n| notes.push(n.to_owned()))
            .unwrap();
        assert_eq!(pid, std::process::id());
        assert_eq!(notes, ["stopping leftovers", "done"]);
    }

    #[test]
    fn refuses_to_fork_while_other_threads_run() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || {
            let _ = rx.recv();
        });
        let err = daemonize(0o022).expect_err("must not fork a threaded process");
        assert_eq!(err.errno(), Some(libc::EINVAL));
        assert!(err.op.contains("threads"), "{err}");
        drop(tx);
        other.join().unwrap();
    }
}
