//! Reaping: tend is the one owner of `waitpid(-1)`. As a child subreaper it also inherits (and
//! must reap) the orphaned descendants of its children.

use std::io;

use tend_core::ExitStatus;

use crate::{OsError, Pid};

/// Makes tend a child subreaper (`PR_SET_CHILD_SUBREAPER`): orphaned descendants of its children
/// are reparented to tend instead of init, so [`reap_one`] sees them too.
pub fn set_child_subreaper() -> Result<(), OsError> {
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| OsError::from_errno("prctl PR_SET_CHILD_SUBREAPER", e))
}

/// Reaps one exited child without blocking: `Ok(None)` when no child has exited yet, or when
/// there are no children at all.
///
/// SIGCHLD coalesces, so after each one call this in a loop until it returns `Ok(None)`.
/// It reaps any child, including orphans tend inherited as a subreaper.
pub fn reap_one() -> Result<Option<(Pid, ExitStatus)>, OsError> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only to `status`, a valid local. (nix's waitpid is not used: it
        // fails with EINVAL for a child killed by a realtime signal, after reaping it.)
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid == 0 {
            return Ok(None);
        }
        if pid < 0 {
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ECHILD) => return Ok(None),
                _ => return Err(OsError::new("waitpid", err)),
            }
        }
        if libc::WIFEXITED(status) {
            return Ok(Some((pid, ExitStatus::Code(libc::WEXITSTATUS(status)))));
        }
        if libc::WIFSIGNALED(status) {
            return Ok(Some((pid, ExitStatus::Signaled(libc::WTERMSIG(status)))));
        }
        // Stopped or continued (reported only for traced children): not an exit.
    }
}

/// Waits until the process `pid` (not necessarily our child) has exited, for at most
/// `timeout`: `Ok(true)` once it is gone (or a zombie), `Ok(false)` if it still runs. Uses a
/// pidfd, which becomes readable when the process exits: no polling.
pub fn wait_exit(pid: Pid, timeout: std::time::Duration) -> Result<bool, OsError> {
    if pid <= 0 {
        return Err(OsError::new(
            "pidfd_open",
            std::io::Error::from_raw_os_error(libc::EINVAL),
        ));
    }
    crate::procfs::wait_all_exit(&[pid], timeout)
}
