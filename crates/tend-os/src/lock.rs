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
//!
//! [`LockFile::remove`] removes the file at a clean exit, so that none piles up. Unlinking a
//! lock file is racy unless every acquirer checks what it locked: one may have opened the
//! file just before the holder unlinked it, and lock it once the holder is gone, while a
//! third creates a new file at the path and locks that. So the holder unlinks while it still
//! holds the lock, then unlocks; and [`LockFile::acquire`], once it holds a lock, checks that
//! the path still names the file it locked (`fstat` of its fd against `lstat` of the path),
//! and starts again if not. A path that names the file while its lock is held keeps naming it
//! until the lock is released, since only a holder unlinks.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
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
    /// Opens (creating it if needed) and locks `path` without blocking, checks that `path`
    /// still names the file it locked (else a holder removed it meanwhile with
    /// [`LockFile::remove`], and it starts again with what the path names now), then writes our
    /// pid and a newline into it in place of what was there.
    ///
    /// Fails with [`LockError::Held`] when another open file holds the lock — another process,
    /// or another `LockFile` of this one — and [`LockError::Os`] with op `"open"`, `"flock"`,
    /// `"fstat"`, `"lstat"`, `"read"` or `"write"` and the path otherwise. A symlink at `path` is
    /// refused (op `"open"`, the error of [`symlink_refused`](crate::files::symlink_refused)),
    /// never followed: else whoever planted it could make tend overwrite its target with a pid.
    pub fn acquire(path: &Path) -> Result<LockFile, LockError> {
        loop {
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
                    Ok(locked) => break Some(locked),
                    Err((again, Errno::EINTR)) => file = again,
                    Err((mut held, Errno::EWOULDBLOCK)) => {
                        // Held, unless its holder removed it since we opened it: then the path
                        // may name a free file already.
                        if !is_at(&held, path)? {
                            break None;
                        }
                        return Err(LockError::Held {
                            pid: read_pid(&mut held),
                        });
                    }
                    Err((_, errno)) => {
                        return Err(OsError::with_path("flock", path, io::Error::from(errno)).into())
                    }
                }
            };
            let Some(file) = file else { continue };
            if !is_at(&file, path)? {
                // Locked after its holder removed it: a lock nobody else will look at.
                continue;
            }
            let mut lock = LockFile {
                file,
                path: path.to_owned(),
            };
            lock.write_pid()?;
            return Ok(lock);
        }
    }

    /// Removes the lock file, then releases the lock: for a clean exit, so that no lock file is
    /// left behind. The file is unlinked while the lock is still held, so that an acquirer that
    /// opened it meanwhile finds, once it gets the lock, that the path no longer names it (see
    /// the module doc). A path that no longer names this file (someone removed or replaced it)
    /// is left alone.
    ///
    /// Fails with op `"fstat"`, `"lstat"` or `"unlink"` and the path; the lock is released
    /// all the same.
    pub fn remove(self) -> Result<(), OsError> {
        if is_at(&self.file, &self.path)? {
            match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(OsError::with_path("unlink", &self.path, e))
                }
                _ => {}
            }
        }
        Ok(())
        // Dropping `self` unlocks, then closes.
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

/// Whether `path` names `file` itself (not a symlink to it): the same device and inode, by
/// `fstat` of the fd and `lstat` of the path. `false` when nothing is at the path.
fn is_at(file: &File, path: &Path) -> Result<bool, OsError> {
    let opened = file
        .metadata()
        .map_err(|e| OsError::with_path("fstat", path, e))?;
    match std::fs::symlink_metadata(path) {
        Ok(named) => Ok(named.dev() == opened.dev() && named.ino() == opened.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(OsError::with_path("lstat", path, e)),
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
