//! Everything of tend that talks to the kernel and needs `unsafe`.
//!
//! This is the only crate of tend allowed `unsafe`; every block carries a `// SAFETY:` comment.
//! It owns spawning children into a clean state, with what else they need described as data
//! ([`mod@spawn`], [`ChildAction`]), reaping ([`reap`]), sending signals to process groups
//! ([`signal`]), waiting for signals in a blocking program ([`sigwait`]), the open-file limit ([`limits`]), reading a user-named file that may be a
//! FIFO or a device ([`regular`]), opening log files without following a planted symlink
//! ([`files`]), the standard fds of tend itself ([`fds`]), becoming a daemon ([`daemon`]), the
//! lock file that keeps a second tend away ([`lock`]), the control socket's directory, binding
//! and peer check ([`socket`]), the sd_notify socket children report readiness on
//! ([`notify`]), what `/proc` says of processes that are not tend's children ([`procfs`]),
//! and the pseudo-terminals of interactive processes ([`pty`]).
//! Linux only.

use std::fmt;
use std::io;
use std::path::PathBuf;

pub mod cgroup;
pub mod daemon;
pub mod fds;
pub mod files;
pub mod limits;
pub mod lock;
pub mod notify;
pub mod procfs;
pub mod pty;
pub mod reap;
pub mod regular;
pub mod signal;
pub mod sigwait;
pub mod socket;
pub mod spawn;
pub mod users;

pub use daemon::{daemonize, redirect_stdio_to, Daemon, DaemonFailed, ParentSide, ReadySender};
pub use fds::ensure_std_fds_open;
pub use files::{open_append_nofollow, open_read_append_nofollow, open_read_nofollow};
pub use limits::{current_limit, original_nofile_limit, raise_nofile_limit, reserve_fds};
pub use lock::{LockError, LockFile};
pub use notify::{Credentials, Datagram, NotifySocket};
pub use pty::{restore_terminal, set_window_size, window_size, Pty, RawInput, WindowSize};
pub use reap::{reap_one, set_child_subreaper, wait_exit};
pub use regular::{read_regular, ReadError};
pub use signal::{
    group_alive, reset_signals, signal_from_number, signal_group, signal_name, signal_number,
    signal_process, signal_process_if, InheritedSignals,
};
pub use sigwait::SignalWaiter;
pub use socket::{bind_listener, check_dir_is_ours, current_uid, peer_uid, runtime_dir};
pub use spawn::{
    probe_start_in_cgroup, spawn, spawn_on_terminal, spawn_with_stdin, starts_in_cgroup, Child,
    ChildAction, Command, Resource,
};

/// A process id, as the kernel's `pid_t`. The pid of a spawned child is also its process group id.
pub type Pid = i32;

/// A failed system call: which operation, on which path if any, and the OS error.
///
/// Match on the errno ([`OsError::errno`]), never on the text.
#[derive(Debug)]
pub struct OsError {
    /// The operation that failed, such as `"spawn"` or `"killpg"`.
    pub op: &'static str,
    /// The path the operation was about, if any; for a failed
    /// [`ChildAction`], what it was about (`fd 7 to 3`, a uid).
    pub path: Option<PathBuf>,
    /// The error the kernel (or std) reported.
    pub source: io::Error,
}

impl OsError {
    /// An error of `op` about no path.
    pub fn new(op: &'static str, source: io::Error) -> Self {
        OsError {
            op,
            path: None,
            source,
        }
    }

    /// An error of `op` about `path`.
    pub fn with_path(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        OsError {
            op,
            path: Some(path.into()),
            source,
        }
    }

    /// The errno, if the error came from the OS.
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }

    /// An error of `op` carrying the errno `errno`.
    pub(crate) fn from_errno(op: &'static str, errno: nix::errno::Errno) -> Self {
        OsError::new(op, io::Error::from_raw_os_error(errno as i32))
    }
}

impl fmt::Display for OsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.op)?;
        if let Some(path) = &self.path {
            write!(f, " {}", path.display())?;
        }
        write!(f, ": {}", self.source)
    }
}

/// No `source()`: the OS error is part of the message already, and an error reporter that
/// prints the chain (anyhow's `{:#}`) would show it twice. The errno is [`OsError::errno`].
impl std::error::Error for OsError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_op_path_and_cause() {
        let e = OsError::with_path(
            "spawn",
            "/no/such",
            io::Error::from_raw_os_error(libc::ENOENT),
        );
        assert!(e.to_string().starts_with("spawn /no/such: "), "{e}");
        assert_eq!(e.errno(), Some(libc::ENOENT));
        let e = OsError::new("killpg", io::Error::from_raw_os_error(libc::EPERM));
        assert!(e.to_string().starts_with("killpg: "), "{e}");
    }
}
