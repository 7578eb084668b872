//! The receiving end of the sd_notify protocol: a datagram socket in the Linux abstract
//! namespace whose name a child gets in `NOTIFY_SOCKET`.
//!
//! [`NotifySocket::bind`] makes the socket (close-on-exec, non-blocking, `SO_PASSCRED`, so the
//! kernel attaches each sender's pid, uid and gid); [`NotifySocket::env_value`] is what the
//! child gets in `NOTIFY_SOCKET`: `@` and the name, the spelling of an abstract address that
//! systemd's `sd_notify`, `systemd-notify`, Python's and gunicorn's clients understand.
//! [`NotifySocket::recv`] takes one datagram, with the sender's credentials and any file
//! descriptors that came with it; [`tend_core::notify::parse`] reads its text.
//!
//! An abstract socket has no file and no permissions: any process in tend's network namespace
//! may send to it. What a datagram says counts only once its [`Credentials`] show it comes from
//! the process (or group) it is about.
//!
//! The socket is non-blocking and never waits; the caller waits for it to be readable (it is
//! [`AsFd`], for tokio's `AsyncFd`), then calls [`NotifySocket::recv`] until it returns
//! `Ok(None)`.

use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;

use nix::sys::socket::{
    bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, UnixAddr,
};
use tend_core::NotifyMessage;

use crate::Pid;

/// The largest payload [`NotifySocket::recv`] returns; a longer datagram is cut there and
/// marked [`Datagram::truncated`]. systemd reads at most this much too.
pub const MAX_PAYLOAD: usize = 4096;

/// The most file descriptors one [`Datagram`] brings; the kernel closes the rest, and the
/// datagram is marked [`Datagram::control_truncated`]. sd_notify senders send one (a barrier)
/// or a few (`FDSTORE=1`).
pub const MAX_FDS: usize = 16;

/// The longest name: `sun_path` is 108 bytes, of which the first is the abstract namespace's
/// NUL.
const MAX_NAME: usize = 107;

/// Room for `SCM_CREDENTIALS` and an `SCM_RIGHTS` of [`MAX_FDS`] descriptors.
// SAFETY: CMSG_SPACE is arithmetic on its argument (libc declares it unsafe, it touches no
// memory).
const CONTROL_LEN: usize = unsafe {
    libc::CMSG_SPACE(mem::size_of::<libc::ucred>() as u32)
        + libc::CMSG_SPACE((MAX_FDS * mem::size_of::<RawFd>()) as u32)
} as usize;

/// The control buffer, aligned for `cmsghdr` as the kernel lays the messages out.
#[repr(C, align(8))]
struct ControlBuf([u8; CONTROL_LEN]);

/// A bound notify socket; closed on drop.
#[derive(Debug)]
pub struct NotifySocket {
    fd: OwnedFd,
    name: String,
}

/// Who sent a datagram, as the kernel says (`SCM_CREDENTIALS`).
///
/// The kernel fills these in with the sender's own ids; a privileged sender may put others
/// (`systemd-notify` run as root names its parent's pid: the service that called it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    /// The sending process (its thread group id), in tend's pid namespace.
    pub pid: Pid,
    /// Its user id.
    pub uid: u32,
    /// Its group id.
    pub gid: u32,
}

/// One datagram received on a [`NotifySocket`].
///
/// **Close [`Datagram::fds`] once the message is handled, and not before**: a sender that
/// sent `BARRIER=1` (`systemd-notify` does after every notification, unless `--no-block`)
/// waits until the descriptors that came with it are closed, which tells it that everything
/// it sent before has been handled. Dropping the datagram (or the descriptors) closes them.
#[derive(Debug)]
pub struct Datagram {
    /// What was sent, at most [`MAX_PAYLOAD`] bytes; any bytes, not necessarily UTF-8.
    pub payload: Vec<u8>,
    /// The datagram was longer than [`MAX_PAYLOAD`]: the rest is lost.
    pub truncated: bool,
    /// The sender's credentials; always there in practice (the socket asks for them).
    pub credentials: Option<Credentials>,
    /// Descriptors that came with it (`SCM_RIGHTS`), close-on-exec, in the order sent.
    pub fds: Vec<OwnedFd>,
    /// More ancillary data came than there was room for (over [`MAX_FDS`] descriptors): the
    /// kernel closed the descriptors that did not fit.
    pub control_truncated: bool,
}

impl Datagram {
    /// The messages of the payload ([`tend_core::notify::parse`]).
    pub fn messages(&self) -> Vec<NotifyMessage> {
        tend_core::notify::parse(&self.payload)
    }
}

impl NotifySocket {
    /// Binds a datagram socket at `name` in the abstract namespace (no leading NUL or `@`:
    /// the name alone). The caller picks a name no other socket in the network namespace has
    /// (tend's pid and a counter, say); a taken one fails with `EADDRINUSE`. A name that is
    /// empty, longer than 107 bytes or holds a NUL (it could not be passed in the environment)
    /// fails with `InvalidInput`.
    pub fn bind(name: &str) -> io::Result<NotifySocket> {
        if name.is_empty() || name.len() > MAX_NAME || name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a notify socket name must be 1 to {MAX_NAME} bytes without NUL: {name:?}"),
            ));
        }
        let fd = socket(
            AddressFamily::Unix,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )?;
        // Before the bind: no datagram may arrive without credentials.
        setsockopt(&fd, sockopt::PassCred, &true)?;
        bind(fd.as_raw_fd(), &UnixAddr::new_abstract(name.as_bytes())?)?;
        Ok(NotifySocket {
            fd,
            name: name.to_owned(),
        })
    }

    /// The name it is bound at (without the leading NUL).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value of `NOTIFY_SOCKET` for a child: `@` and the name.
    pub fn env_value(&self) -> String {
        format!("@{}", self.name)
    }

    /// Takes one datagram, or `Ok(None)` when none is waiting (it never blocks).
    ///
    /// Descriptors that arrive are always returned (never leaked), also when there were more
    /// than [`MAX_FDS`] (see [`Datagram::control_truncated`]). Received with
    /// `MSG_CMSG_CLOEXEC`, so a child spawned before they are closed does not inherit them.
    pub fn recv(&self) -> io::Result<Option<Datagram>> {
        recv(self.fd.as_fd())
    }
}

/// [`NotifySocket::recv`] on the socket `fd` (once handed to an event loop as an
/// [`OwnedFd`], see `From<NotifySocket>`): one datagram, or `Ok(None)` when none is waiting.
pub fn recv(fd: BorrowedFd<'_>) -> io::Result<Option<Datagram>> {
    let mut payload = vec![0u8; MAX_PAYLOAD];
    let mut control = ControlBuf([0; CONTROL_LEN]);
    loop {
        let mut iov = libc::iovec {
            iov_base: payload.as_mut_ptr().cast(),
            iov_len: payload.len(),
        };
        // SAFETY: an all-zero msghdr is valid (null pointers with zero lengths).
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = CONTROL_LEN as _;
        // SAFETY: `msg` points to one iovec over `payload` (MAX_PAYLOAD writable bytes)
        // and to `control` (CONTROL_LEN writable bytes), all alive across the call; the
        // kernel writes within those lengths and updates `msg`'s lengths and flags.
        let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Ok(None),
                _ => return Err(err),
            }
        }
        // The kernel set msg_controllen to what it wrote; never trust it beyond the buffer.
        let control_len = (msg.msg_controllen as usize).min(CONTROL_LEN);
        let (credentials, fds) = parse_control(&control.0[..control_len]);
        payload.truncate(n as usize);
        return Ok(Some(Datagram {
            payload,
            truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
            credentials,
            fds,
            control_truncated: msg.msg_flags & libc::MSG_CTRUNC != 0,
        }));
    }
}

impl From<NotifySocket> for OwnedFd {
    fn from(socket: NotifySocket) -> OwnedFd {
        socket.fd
    }
}

impl AsFd for NotifySocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for NotifySocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Rounds up to the alignment of control messages (glibc's `CMSG_ALIGN`).
const fn cmsg_align(len: usize) -> usize {
    let align = mem::size_of::<usize>();
    (len + align - 1) & !(align - 1)
}

/// Reads the control messages the kernel wrote: the credentials, and every descriptor of
/// every `SCM_RIGHTS`, each now owned (so closed when dropped, whatever else is in there).
/// Bounds are checked against `control` itself, never taken on trust from a header.
fn parse_control(control: &[u8]) -> (Option<Credentials>, Vec<OwnedFd>) {
    let header = mem::size_of::<libc::cmsghdr>();
    let data_at = cmsg_align(header);
    let mut credentials = None;
    let mut fds = Vec::new();
    let mut offset = 0;
    while offset + header <= control.len() {
        // SAFETY: `offset + size_of::<cmsghdr>()` bytes are within `control`; the read is
        // unaligned-safe and cmsghdr is plain integers, valid for any bits.
        let cmsg: libc::cmsghdr =
            unsafe { ptr::read_unaligned(control.as_ptr().add(offset).cast()) };
        let len = cmsg.cmsg_len as usize;
        if len < data_at {
            break;
        }
        let end = offset.saturating_add(len).min(control.len());
        let data = control.get(offset + data_at..end).unwrap_or(&[]);
        match (cmsg.cmsg_level, cmsg.cmsg_type) {
            (libc::SOL_SOCKET, libc::SCM_RIGHTS) => {
                for raw in data.chunks_exact(mem::size_of::<RawFd>()) {
                    let fd = RawFd::from_ne_bytes(raw.try_into().expect("chunk of an fd's size"));
                    if fd >= 0 {
                        // SAFETY: the kernel installed this descriptor in our table for this
                        // datagram; nothing else knows it, so this is its only owner.
                        fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                    }
                }
            }
            (libc::SOL_SOCKET, libc::SCM_CREDENTIALS)
                if data.len() >= mem::size_of::<libc::ucred>() =>
            {
                // SAFETY: `data` holds at least a ucred's bytes; ucred is plain integers.
                let cred: libc::ucred = unsafe { ptr::read_unaligned(data.as_ptr().cast()) };
                credentials = Some(Credentials {
                    pid: cred.pid,
                    uid: cred.uid,
                    gid: cred.gid,
                });
            }
            _ => {}
        }
        offset = offset.saturating_add(cmsg_align(len));
    }
    (credentials, fds)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A control buffer holding one message of `level`/`kind` whose header says `len`, with
    /// `data` after the header, padded to `total` bytes.
    fn control(level: i32, kind: i32, len: usize, data: &[u8], total: usize) -> Vec<u8> {
        // SAFETY: all-zero is a valid cmsghdr (plain integers).
        let mut cmsg: libc::cmsghdr = unsafe { mem::zeroed() };
        cmsg.cmsg_len = len as _;
        cmsg.cmsg_level = level;
        cmsg.cmsg_type = kind;
        let mut buf = vec![0u8; total.max(cmsg_align(mem::size_of::<libc::cmsghdr>()))];
        // SAFETY: buf holds at least a cmsghdr's bytes; written unaligned.
        unsafe { ptr::write_unaligned(buf.as_mut_ptr().cast(), cmsg) };
        let at = cmsg_align(mem::size_of::<libc::cmsghdr>());
        buf.truncate(total);
        let room = buf.len().saturating_sub(at).min(data.len());
        if room > 0 {
            buf[at..at + room].copy_from_slice(&data[..room]);
        }
        buf
    }

    /// A pipe whose read end is non-blocking, and `n` copies of its write end (the original
    /// closed): the read end sees EOF once every copy is closed.
    fn pipe_with_writers(n: usize) -> (OwnedFd, Vec<RawFd>) {
        use std::os::fd::IntoRawFd;
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        nix::fcntl::fcntl(
            read.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        let copies = (0..n)
            .map(|_| write.try_clone().unwrap().into_raw_fd())
            .collect();
        (read, copies)
    }

    /// Whether every write end of the pipe is closed (a read sees EOF rather than EAGAIN).
    fn all_writers_closed(read: &OwnedFd) -> bool {
        nix::unistd::read(read.as_raw_fd(), &mut [0u8; 1]) == Ok(0)
    }

    #[test]
    fn a_header_claiming_more_than_the_buffer_is_cut_at_its_end() {
        let (read, fds) = pipe_with_writers(2);
        let data: Vec<u8> = fds.iter().flat_map(|fd| fd.to_ne_bytes()).collect();
        let at = cmsg_align(mem::size_of::<libc::cmsghdr>());
        // The header claims room for 10 fds; the buffer ends after the two real ones.
        let buf = control(libc::SOL_SOCKET, libc::SCM_RIGHTS, at + 40, &data, at + 8);
        let (credentials, owned) = parse_control(&buf);
        assert_eq!(credentials, None);
        assert_eq!(
            owned.iter().map(|fd| fd.as_raw_fd()).collect::<Vec<_>>(),
            fds
        );
        assert!(!all_writers_closed(&read));
        drop(owned);
        assert!(all_writers_closed(&read));
    }

    #[test]
    fn nonsense_headers_stop_the_walk_without_reading_past_the_buffer() {
        let at = cmsg_align(mem::size_of::<libc::cmsghdr>());
        // A length shorter than a header, a buffer shorter than a header, nothing at all.
        for buf in [
            control(libc::SOL_SOCKET, libc::SCM_RIGHTS, 3, &[], at + 8),
            control(libc::SOL_SOCKET, libc::SCM_RIGHTS, at + 4, &[], 7),
            Vec::new(),
        ] {
            let (credentials, fds) = parse_control(&buf);
            assert!(credentials.is_none() && fds.is_empty());
        }
        // Credentials cut short are no credentials.
        let buf = control(
            libc::SOL_SOCKET,
            libc::SCM_CREDENTIALS,
            at + 12,
            &[1; 12],
            at + 8,
        );
        assert_eq!(parse_control(&buf).0, None);
    }

    #[test]
    fn credentials_are_read() {
        let at = cmsg_align(mem::size_of::<libc::cmsghdr>());
        let mut data = Vec::new();
        data.extend_from_slice(&42i32.to_ne_bytes());
        data.extend_from_slice(&1000u32.to_ne_bytes());
        data.extend_from_slice(&100u32.to_ne_bytes());
        let buf = control(
            libc::SOL_SOCKET,
            libc::SCM_CREDENTIALS,
            at + 12,
            &data,
            at + 16,
        );
        assert_eq!(
            parse_control(&buf).0,
            Some(Credentials {
                pid: 42,
                uid: 1000,
                gid: 100
            })
        );
    }

    #[test]
    fn names_that_cannot_be_an_env_value_are_refused() {
        for name in ["", "a\0b", &"x".repeat(108)] {
            let err = NotifySocket::bind(name).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{name:?}");
        }
    }
}
