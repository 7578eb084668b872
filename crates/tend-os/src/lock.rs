//! The lock file that keeps a second tend off the same configuration.
//!
//! [`LockFile`] holds an exclusive `flock` on an open file for as long as the value lives, and
//! the file says which pid holds it (for the message a second tend prints). The kernel releases
//! the lock when the last fd of that open file is closed, including when the holder is killed
//! with SIGKILL: a lock file left behind by a crash is never stale.
//!
//! A `flock` belongs to the open file, not to the process: it survives `fork`, and every copy of
//! the fd shares it, so without an unlock the lock lasts until the *last* copy is closed.
//! Hence the order tend uses: [`daemonize`](crate::daemonize) first, then
//! [`LockFile::acquire`] in the daemon. (Acquiring before daemonizing works too — the daemon
//! inherits the lock when the parent exits — but the file then names the parent's pid until
//! [`LockFile::write_pid`] rewrites it.) Dropping a [`LockFile`] unlocks explicitly (nix's
//! `Flock`), so a copy of the fd held for a moment by a process another thread forked does
//! not keep the lock after the drop.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::OsError;

/// An open lock file (`O_CLOEXEC | O_NOFOLLOW`, mode 0600 when created) with an exclusive
/// `flock` held for the life of the value. Dropping it unlocks (`LOCK_UN`, for every copy of
/// the fd, forked ones included) and closes the fd.
#[derive(Debug)]
pub struct LockFile {
    file: Flock<File>,
    path: PathBuf,
}

/// Why [`LockFile::acquire`] failed.
#[derive(Debug)]
pub enum LockError {
    /// Another live process holds the lock: the pid it wrote in the file, if it has written one
    /// (a holder that has just acquired it may not have yet, and other tools write none).
    Held {
        /// The pid read from the file.
        pid: Option<u32>,
    },
    /// Opening, locking, reading or writing the file failed.
    Os(OsError),
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Held { pid: Some(pid) } => {
                write!(f, "the lock is held by another process (pid {pid})")
            }
            LockError::Held { pid: None } => f.write_str("the lock is held by another process"),
            LockError::Os(e) => e.fmt(f),
        }
    }
}

/// No `source()`: the message includes the cause already, and an error reporter that prints
/// the chain (anyhow's `{:#}`) would show it twice.
impl std::error::Error for LockError {}

impl From<OsError> for LockError {
    fn from(e: OsError) -> Self {
        LockError::Os(e)
    }
}

impl LockFile {
    /// Opens (creating it if needed) and locks `path` without blocking, then writes our pid and
    /// a newline into it in place of what was there.
    ///
    /// Fails with [`LockError::Held`] when another open file holds the lock — another process,
    /// or another `LockFile` of this one — and [`LockError::Os`] with op `"open"`, `"flock"`,
    /// `"read"` or `"write"` and the path otherwise. A symlink at `path` is refused (op
    /// `"open"`, the error of [`symlink_refused`](crate::files::symlink_refused)), never
    /// followed: else whoever planted it could make tend overwrite its target with a pid.
    pub fn acquire(path: &Path) -> Result<LockFile, LockError> {
        // Not truncated on open: until we hold the lock, the content is the holder's pid.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| OsError::with_path("open", path, crate::files::symlink_refused(e)))?;
        let file = loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(locked) => break locked,
                Err((again, Errno::EINTR)) => file = again,
                Err((mut held, Errno::EWOULDBLOCK)) => {
                    return Err(LockError::Held {
                        pid: read_pid(&mut held),
                    })
                }
                Err((_, errno)) => {
                    return Err(OsError::with_path("flock", path, io::Error::from(errno)).into())
                }
            }
        };
        let mut lock = LockFile {
            file,
            path: path.to_owned(),
        };
        lock.write_pid()?;
        Ok(lock)
    }

    /// Replaces the file's content with our pid and a newline: call it after a fork, whose
    /// child inherits the lock under a new pid.
    ///
    /// Fails with op `"write"` and the path.
    pub fn write_pid(&mut self) -> Result<(), OsError> {
        let text = format!("{}\n", std::process::id());
        self.file
            .set_len(0)
            .and_then(|()| self.file.write_all_at(text.as_bytes(), 0))
            .map_err(|e| OsError::with_path("write", &self.path, e))
    }

    /// The path the lock was acquired at.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AsFd for LockFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// The pid of the holder, if the file names a live process. A holder that just took the lock
/// may not have written its pid yet (the file then names an earlier, dead holder): look again
/// a few times, briefly, then give up on naming it.
fn read_pid(file: &mut File) -> Option<u32> {
    for _ in 0..20 {
        let mut text = String::new();
        file.seek(SeekFrom::Start(0)).ok()?;
        file.take(64).read_to_string(&mut text).ok()?;
        if let Ok(pid) = text.trim().parse::<u32>() {
            let live = i32::try_from(pid).is_ok_and(|p| {
                matches!(
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None),
                    Ok(()) | Err(nix::errno::Errno::EPERM)
                )
            });
            if live {
                return Some(pid);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    None
}
