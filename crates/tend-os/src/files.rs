//! Opening the files tend writes (its lock, its own log, the children's logs) so that a symlink
//! planted where one of them goes is refused, never followed.
//!
//! Every such open uses `O_NOFOLLOW` (a symlink as the last component fails with `ELOOP`) and
//! `O_CLOEXEC` (std sets it on every open). [`symlink_refused`] turns that `ELOOP` into an
//! error that says what happened.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens `path` for appending (`O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC`),
/// creating it with mode `mode` (less the umask) if it is missing.
///
/// A symlink at `path` is refused with the error of [`symlink_refused`]; other errors are the
/// OS's, unchanged (so a missing directory is still `NotFound`).
pub fn open_append_nofollow(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(symlink_refused)
}

/// Like [`open_append_nofollow`], and readable too (`O_RDWR` rather than `O_WRONLY`): for a
/// file tend appends to and also looks back into, such as a log file's index. With `create`,
/// a missing file is created with that mode (less the umask); without, it is `NotFound`.
pub fn open_read_append_nofollow(path: &Path, create: Option<u32>) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(create.is_some())
        .mode(create.unwrap_or(0o600))
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(symlink_refused)
}

/// Opens `path` for reading only (`O_RDONLY | O_NOFOLLOW | O_CLOEXEC`): a symlink is refused
/// as by [`open_append_nofollow`].
pub fn open_read_nofollow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(symlink_refused)
}

/// `e` unchanged, unless it is the `ELOOP` of an `O_NOFOLLOW` open of a symlink: then an error
/// of kind `InvalidInput` whose text says what is wrong and what to do.
pub fn symlink_refused(e: io::Error) -> io::Error {
    if e.raw_os_error() != Some(libc::ELOOP) {
        return e;
    }
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "is a symbolic link, which tend does not follow (someone may want tend to write to \
         the file it points to); remove it, then try again",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_symlink_is_refused_and_its_target_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let link = dir.path().join("x.log");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let err = open_append_nofollow(&link, 0o600).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }

    #[test]
    fn reading_opens_refuse_symlinks_too() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let link = dir.path().join("x.log.idx");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        for create in [Some(0o600), None] {
            let err = open_read_append_nofollow(&link, create).unwrap_err();
            assert!(err.to_string().contains("symbolic link"), "{err}");
        }
        let err = open_read_nofollow(&link).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let plain = dir.path().join("plain");
        let missing = open_read_append_nofollow(&plain, None).unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
        let mut file = open_read_append_nofollow(&plain, Some(0o600)).unwrap();
        std::io::Write::write_all(&mut file, b"abc").unwrap();
        let mut back = String::new();
        std::io::Read::read_to_string(&mut open_read_nofollow(&plain).unwrap(), &mut back).unwrap();
        assert_eq!(back, "abc");
    }

    #[test]
    fn a_new_file_gets_the_mode_and_close_on_exec() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let file = open_append_nofollow(&path, 0o600).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let flags = nix::fcntl::fcntl(file.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(flags & libc::FD_CLOEXEC, 0);
    }
}
