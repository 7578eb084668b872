//! tend's own standard fds: if tend is started with 0, 1 or 2 closed, the first file it opens
//! would land there and be mistaken for stdin/stdout/stderr (by tend, and by anything that writes
//! to fd 2). [`ensure_std_fds_open`] fills such holes with `/dev/null`.

use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{close, dup2};

use crate::OsError;

/// Opens `/dev/null` on each of fds 0, 1 and 2 that is closed; leaves open ones alone.
///
/// Call it first thing in `main`, before any thread exists or any file is opened.
pub fn ensure_std_fds_open() -> Result<(), OsError> {
    for fd in 0..=2 {
        match fcntl(fd, FcntlArg::F_GETFD) {
            Err(Errno::EBADF) => {}
            _ => continue,
        }
        let null = open("/dev/null", OFlag::O_RDWR, Mode::empty())
            .map_err(|e| OsError::from_errno("open /dev/null", e))?;
        // The lowest free fd is `fd`, since the lower ones are open; only another thread opening
        // a file at the same moment could make it differ.
        if null != fd {
            dup2(null, fd).map_err(|e| OsError::from_errno("dup2 /dev/null", e))?;
            close(null).map_err(|e| OsError::from_errno("close", e))?;
        }
    }
    Ok(())
}
