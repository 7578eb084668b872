//! The control socket: where it lives, binding it over a stale one, and who is on the other end.
//!
//! The socket sits in a directory only our user can enter ([`runtime_dir`]), is itself mode 0600,
//! and the server can still check each client's uid ([`peer_uid`]). A socket file left behind by
//! a tend killed with SIGKILL is detected by trying to connect before unlinking it
//! ([`bind_listener`]); the lock file, not the socket, is what keeps two tends apart.

use std::ffi::OsString;
use std::fs::{self, DirBuilder};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::sys::socket::{getsockopt, sockopt};

use crate::OsError;

/// The size of `sun_path` in `struct sockaddr_un`: a socket path must be shorter, leaving room
/// for the terminating NUL.
const SUN_PATH_LEN: usize = 108;

/// The directory for tend's socket: `$XDG_RUNTIME_DIR/tend` if `XDG_RUNTIME_DIR` is set to an
/// absolute path, else `<temp dir>/tend-<uid>` (the temp dir is `$TMPDIR` or `/tmp`).
///
/// Creates it with mode 0700 if it is missing (not its parents). If it exists it must be a
/// directory — not a symlink to one — owned by our uid with no group or other permission bits;
/// otherwise someone else could swap the socket, and this fails with op `"runtime dir"`, the path,
/// and an error of kind `PermissionDenied` (or `NotADirectory`) that says what is wrong.
pub fn runtime_dir() -> Result<PathBuf, OsError> {
    runtime_dir_from(
        std::env::var_os("XDG_RUNTIME_DIR"),
        &std::env::temp_dir(),
        current_uid(),
    )
}

/// [`runtime_dir`] with its inputs passed in, so tests need not change the process environment.
fn runtime_dir_from(xdg: Option<OsString>, tmp: &Path, uid: u32) -> Result<PathBuf, OsError> {
    let dir = match xdg.map(PathBuf::from) {
        Some(xdg) if xdg.is_absolute() => xdg.join("tend"),
        _ => tmp.join(format!("tend-{uid}")),
    };
    match DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {
            // The umask may have taken bits away; set exactly 0700 (the directory is ours).
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| OsError::with_path("chmod", &dir, e))?;
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(OsError::with_path("mkdir", &dir, e)),
    }
    let meta = fs::symlink_metadata(&dir).map_err(|e| OsError::with_path("lstat", &dir, e))?;
    const RISK: &str = "someone else could replace tend's socket there";
    if meta.file_type().is_symlink() {
        return Err(OsError::with_path(
            "runtime dir",
            &dir,
            io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("is a symlink, not a directory; {RISK}"),
            ),
        ));
    }
    check_dir_is_ours("runtime dir", &dir, &meta, uid, 0o077, RISK)?;
    Ok(dir)
}

/// Checks that `dir`, whose metadata (`lstat` or `stat`, the caller's choice) is `meta`, is a
/// directory owned by `uid` with none of the `forbidden` permission bits: `0o077` for a
/// private directory (it must be 0700), `0o022` for one others may read but not write.
///
/// Fails with op `op`, the path, and an error of kind `NotADirectory` or `PermissionDenied`
/// whose text says what is wrong, what to do, and then `risk` (what someone else could do).
/// [`runtime_dir`] uses it for the socket's directory; tend uses it for its log directory.
pub fn check_dir_is_ours(
    op: &'static str,
    dir: &Path,
    meta: &fs::Metadata,
    uid: u32,
    forbidden: u32,
    risk: &str,
) -> Result<(), OsError> {
    let refuse = |kind: io::ErrorKind, why: String| {
        let why = format!("{why}; {risk}");
        Err(OsError::with_path(op, dir, io::Error::new(kind, why)))
    };
    if !meta.is_dir() {
        return refuse(io::ErrorKind::NotADirectory, "is not a directory".into());
    }
    if meta.uid() != uid {
        return refuse(
            io::ErrorKind::PermissionDenied,
            format!(
                "is owned by uid {}, not by us (uid {uid}): use a directory of our own",
                meta.uid()
            ),
        );
    }
    let mode = meta.mode() & 0o7777;
    if mode & forbidden != 0 {
        let what = if forbidden & 0o055 != 0 {
            format!("group or others have access (it must be {:04o})", 0o700)
        } else if mode & 0o1000 != 0 {
            "it is shared (sticky, like /tmp): others may create files in it".to_owned()
        } else {
            format!(
                "group or others may write in it (`chmod go-w {}` fixes that)",
                dir.display()
            )
        };
        return refuse(
            io::ErrorKind::PermissionDenied,
            format!("has mode {mode:04o}: {what}"),
        );
    }
    Ok(())
}

/// Binds a listening Unix socket at `path` (`SOCK_CLOEXEC`, as std does), then makes it mode
/// 0600. The parent directory must exist; it should be [`runtime_dir`], whose mode 0700 covers
/// the moment between bind and chmod.
///
/// If something already exists at `path`, it first tries to connect: refused (a socket nobody
/// listens on, left by a crash, or not a socket at all) → the file is unlinked and replaced;
/// accepted → fails with op `"bind"`, the path and `EADDRINUSE`, since a live server owns it.
/// Two tends racing here are kept apart by the lock file, not by this check.
///
/// A path of 108 bytes or more does not fit `sun_path`: fails with op `"bind"`, the path, and an
/// `InvalidInput` error that says so. Other failures carry op `"connect"`, `"unlink"`, `"bind"`
/// or `"chmod"` and the path.
pub fn bind_listener(path: &Path) -> Result<UnixListener, OsError> {
    let len = path.as_os_str().len();
    if len >= SUN_PATH_LEN {
        return Err(too_long(path, len));
    }
    if fs::symlink_metadata(path).is_ok() {
        match UnixStream::connect(path) {
            Ok(_) => {
                let err = io::Error::from_raw_os_error(libc::EADDRINUSE);
                return Err(OsError::with_path("bind", path, err));
            }
            Err(e) if is_stale(&e) => match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(OsError::with_path("unlink", path, e)),
            },
            Err(e) => return Err(OsError::with_path("connect", path, e)),
        }
    }
    let listener = UnixListener::bind(path).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidInput => too_long(path, len),
        _ => OsError::with_path("bind", path, e),
    })?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(|e| OsError::with_path("chmod", path, e))?;
    Ok(listener)
}

/// Whether a failed connect means nobody serves the file: refused (a dead socket, or not a
/// socket), or the file vanished meanwhile.
fn is_stale(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNREFUSED | libc::ENOTSOCK | libc::ENOENT)
    )
}

fn too_long(path: &Path, len: usize) -> OsError {
    let why = format!(
        "the socket path is {len} bytes long; a Unix socket path must be under {SUN_PATH_LEN}"
    );
    OsError::with_path(
        "bind",
        path,
        io::Error::new(io::ErrorKind::InvalidInput, why),
    )
}

/// The uid of the process at the other end of a connected Unix socket, as the kernel recorded
/// it at connect time (`SO_PEERCRED`). Fails with op `"getsockopt SO_PEERCRED"`.
pub fn peer_uid(stream: &impl AsFd) -> Result<u32, OsError> {
    getsockopt(stream, sockopt::PeerCredentials)
        .map(|cred| cred.uid())
        .map_err(|e| OsError::from_errno("getsockopt SO_PEERCRED", e))
}

/// The real uid of this process.
pub fn current_uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn runtime_dir_is_under_xdg_runtime_dir_when_absolute() {
        let xdg = tempfile::tempdir().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let uid = current_uid();
        let dir = runtime_dir_from(Some(xdg.path().into()), tmp.path(), uid).unwrap();
        assert_eq!(dir, xdg.path().join("tend"));
        assert_eq!(mode_of(&dir), 0o700);
        // Existing and correct: accepted as is.
        assert_eq!(
            runtime_dir_from(Some(xdg.path().into()), tmp.path(), uid).unwrap(),
            dir
        );
    }

    #[test]
    fn runtime_dir_falls_back_to_tmp_when_xdg_is_unset_empty_or_relative() {
        let tmp = tempfile::tempdir().unwrap();
        let uid = current_uid();
        let expected = tmp.path().join(format!("tend-{uid}"));
        for xdg in [None, Some(""), Some("relative/run")] {
            let dir = runtime_dir_from(xdg.map(OsString::from), tmp.path(), uid).unwrap();
            assert_eq!(dir, expected, "{xdg:?}");
            assert_eq!(mode_of(&dir), 0o700);
        }
    }

    #[test]
    fn runtime_dir_refuses_an_open_mode_another_owner_a_symlink_and_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let uid = current_uid();
        let dir = tmp.path().join(format!("tend-{uid}"));
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let err = runtime_dir_from(None, tmp.path(), uid).unwrap_err();
        assert_eq!(err.op, "runtime dir");
        assert_eq!(err.path.as_deref(), Some(dir.as_path()));
        assert_eq!(err.source.kind(), io::ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("0755"), "{err}");

        // The same directory seen by another uid: not its owner.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        let other = uid + 1;
        fs::rename(&dir, tmp.path().join(format!("tend-{other}"))).unwrap();
        let err = runtime_dir_from(None, tmp.path(), other).unwrap_err();
        assert_eq!(err.source.kind(), io::ErrorKind::PermissionDenied);
        assert!(
            err.to_string().contains(&format!("owned by uid {uid}")),
            "{err}"
        );

        let real = tmp.path().join("real");
        fs::create_dir(&real).unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink(&real, &dir).unwrap();
        let err = runtime_dir_from(None, tmp.path(), uid).unwrap_err();
        assert_eq!(err.source.kind(), io::ErrorKind::NotADirectory);
        assert!(err.to_string().contains("symlink"), "{err}");

        fs::remove_file(&dir).unwrap();
        fs::write(&dir, "").unwrap();
        let err = runtime_dir_from(None, tmp.path(), uid).unwrap_err();
        assert_eq!(err.source.kind(), io::ErrorKind::NotADirectory);
    }

    #[test]
    fn runtime_dir_without_its_parent_is_a_mkdir_error() {
        let tmp = tempfile::tempdir().unwrap();
        let xdg = tmp.path().join("missing");
        let err = runtime_dir_from(Some(xdg.clone().into()), tmp.path(), 0).unwrap_err();
        assert_eq!(err.op, "mkdir");
        assert_eq!(err.path, Some(xdg.join("tend")));
        assert_eq!(err.errno(), Some(libc::ENOENT));
    }
}
