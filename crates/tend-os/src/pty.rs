//! Pseudo-terminals for interactive processes, and the raw mode of the terminal that attaches
//! to one.
//!
//! An interactive process gets a pty's terminal side as stdin, stdout, stderr and controlling
//! terminal ([`crate::spawn_on_terminal`]); tend keeps the other side, the [`Pty`]'s
//! `master`: what it reads there is the process's output, what it writes there is the
//! process's input (typed by whoever is attached), and [`set_window_size`] tells the process
//! the size of the attached terminal (the kernel sends it `SIGWINCH`).
//!
//! The terminal side starts with output post-processing off (no `\n` → `\r\n`): the log gets
//! the bytes the process wrote, and the attached terminal, which keeps its own output
//! processing on ([`RawInput`]), moves to the start of the line itself.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::sys::termios::{self, LocalFlags, OutputFlags, SetArg, Termios};

use crate::OsError;

/// A pseudo-terminal: both sides open, `O_CLOEXEC`, neither anyone's controlling terminal.
#[derive(Debug)]
pub struct Pty {
    /// tend's side: read the process's output, write its input. Non-blocking.
    pub master: OwnedFd,
    /// The process's side, for [`crate::spawn_on_terminal`]; close it once the process has it,
    /// or reads of `master` never end.
    pub terminal: OwnedFd,
}

/// The size of a terminal, in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSize {
    /// Lines.
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

impl Pty {
    /// Opens a new pseudo-terminal of `size`, with output post-processing off on the terminal
    /// side (see the module doc).
    ///
    /// Fails with op `"posix_openpt"` (e.g. `EMFILE`, or `ENOENT` with no `/dev/ptmx`),
    /// `"grantpt"`, `"unlockpt"`, `"open pty"` or `"tcsetattr"`.
    pub fn open(size: WindowSize) -> Result<Pty, OsError> {
        // SAFETY: posix_openpt takes flags only and returns a new fd or -1.
        let master = unsafe {
            libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NONBLOCK)
        };
        if master < 0 {
            return Err(OsError::new("posix_openpt", io::Error::last_os_error()));
        }
        // SAFETY: `master` was just opened and is owned by nobody else.
        let master = unsafe { OwnedFd::from_raw_fd(master) };
        // SAFETY: grantpt and unlockpt take an open pty master fd, which the borrow keeps open.
        if unsafe { libc::grantpt(master.as_raw_fd()) } != 0 {
            return Err(OsError::new("grantpt", io::Error::last_os_error()));
        }
        // SAFETY: as above.
        if unsafe { libc::unlockpt(master.as_raw_fd()) } != 0 {
            return Err(OsError::new("unlockpt", io::Error::last_os_error()));
        }
        let terminal = open_peer(master.as_fd())?;
        let pty = Pty { master, terminal };
        let mut settings = termios::tcgetattr(pty.terminal.as_fd())
            .map_err(|e| OsError::from_errno("tcgetattr", e))?;
        settings.output_flags.remove(OutputFlags::ONLCR);
        termios::tcsetattr(pty.terminal.as_fd(), SetArg::TCSANOW, &settings)
            .map_err(|e| OsError::from_errno("tcsetattr", e))?;
        set_window_size(pty.master.as_fd(), size)?;
        Ok(pty)
    }
}

/// Opens the terminal side of the pty `master`: by `TIOCGPTPEER` (Linux 4.13), which needs no
/// path, else by the name `ptsname_r` gives.
fn open_peer(master: BorrowedFd<'_>) -> Result<OwnedFd, OsError> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes the open flags as its argument and returns a new fd or -1.
    let peer = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    if peer >= 0 {
        // SAFETY: `peer` was just opened and is owned by nobody else.
        return Ok(unsafe { OwnedFd::from_raw_fd(peer) });
    }
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: ptsname_r writes at most `name.len()` bytes, NUL-terminated, into `name`.
    let rc = unsafe { libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) };
    if rc != 0 {
        return Err(OsError::new("ptsname", io::Error::from_raw_os_error(rc)));
    }
    // SAFETY: `name` is NUL-terminated (ptsname_r succeeded); open returns a new fd or -1.
    let peer = unsafe { libc::open(name.as_ptr(), flags) };
    if peer < 0 {
        return Err(OsError::new("open pty", io::Error::last_os_error()));
    }
    // SAFETY: `peer` was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(peer) })
}

/// Tells the pty whose `master` this is its size; the kernel sends `SIGWINCH` to the
/// terminal's foreground process group when it changed. Sizes of 0 are taken as 1.
///
/// Fails with op `"TIOCSWINSZ"` (e.g. `EBADF`, `ENOTTY`).
pub fn set_window_size(master: BorrowedFd<'_>, size: WindowSize) -> Result<(), OsError> {
    let size = libc::winsize {
        ws_row: size.rows.max(1),
        ws_col: size.cols.max(1),
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize through a valid pointer; the fd is borrowed open.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) } != 0 {
        return Err(OsError::new("TIOCSWINSZ", io::Error::last_os_error()));
    }
    Ok(())
}

/// The size of the terminal on `fd`, if it is one.
pub fn window_size(fd: BorrowedFd<'_>) -> Option<WindowSize> {
    // SAFETY: an all-zero winsize is a valid value.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize through a valid pointer; the fd is borrowed open.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) } != 0 {
        return None;
    }
    (size.ws_row > 0 && size.ws_col > 0).then_some(WindowSize {
        rows: size.ws_row,
        cols: size.ws_col,
    })
}

/// The terminal of `tend attach` while it is attached: every key goes to the process as is
/// (no line editing, no echo, no signals from Ctrl+C or Ctrl+Z, no flow control), while the
/// output keeps its processing (see the module doc). Restored when dropped.
#[derive(Debug)]
pub struct RawInput<'fd> {
    fd: BorrowedFd<'fd>,
    saved: Termios,
}

impl<'fd> RawInput<'fd> {
    /// Puts the terminal on `fd` in raw input mode.
    ///
    /// Fails with op `"tcgetattr"` when `fd` is not a terminal (`ENOTTY`).
    pub fn enter(fd: BorrowedFd<'fd>) -> Result<Self, OsError> {
        let saved = termios::tcgetattr(fd).map_err(|e| OsError::from_errno("tcgetattr", e))?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        // cfmakeraw turns output processing off too: keep the terminal's own.
        raw.output_flags = saved.output_flags;
        raw.local_flags.remove(LocalFlags::ECHO);
        termios::tcsetattr(fd, SetArg::TCSAFLUSH, &raw)
            .map_err(|e| OsError::from_errno("tcsetattr", e))?;
        Ok(RawInput { fd, saved })
    }

    /// The settings the terminal had before, to restore from elsewhere (a signal handler's
    /// thread) with [`restore_terminal`].
    pub fn saved(&self) -> &Termios {
        &self.saved
    }
}

impl Drop for RawInput<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd, SetArg::TCSAFLUSH, &self.saved);
    }
}

/// Puts back `settings` on the terminal on `fd`.
pub fn restore_terminal(fd: BorrowedFd<'_>, settings: &Termios) -> Result<(), OsError> {
    termios::tcsetattr(fd, SetArg::TCSAFLUSH, settings)
        .map_err(|e| OsError::from_errno("tcsetattr", e))
}
