//! The sd_notify socket against real senders: std's `UnixDatagram`, a Python child, and
//! `systemd-notify` (when installed) with its barrier.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
use tend_core::NotifyMessage;
use tend_os::notify::{MAX_FDS, MAX_PAYLOAD};
use tend_os::{Datagram, NotifySocket};

/// A name no other test (nor another run of this binary) uses.
fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "tend-test/{}/{tag}/{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Waits (poll, no spinning) for the next datagram, for at most `limit`.
fn recv_within(socket: &NotifySocket, limit: Duration) -> Datagram {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(datagram) = socket.recv().expect("recv") {
            return datagram;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no datagram within {limit:?}");
        let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
        poll(
            &mut fds,
            PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
        )
        .expect("poll");
    }
}

/// A sender connected to the socket's abstract address, as a client of `@name` makes one.
fn sender_to(socket: &NotifySocket) -> UnixDatagram {
    let sender = UnixDatagram::unbound().expect("socket");
    let addr = SocketAddr::from_abstract_name(socket.name()).expect("abstract address");
    sender.connect_addr(&addr).expect("connect");
    sender
}

/// A pipe whose read end is non-blocking, and `n` copies of its write end (the original
/// closed): a read sees EOF exactly when every copy is closed.
fn pipe_with_writers(n: usize) -> (OwnedFd, Vec<OwnedFd>) {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).expect("pipe");
    fcntl(read.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).expect("O_NONBLOCK");
    let copies = (0..n).map(|_| write.try_clone().expect("dup")).collect();
    (read, copies)
}

/// Whether every write end of the pipe is closed: a read sees EOF, not EAGAIN.
fn all_writers_closed(read: &OwnedFd) -> bool {
    match nix::unistd::read(read.as_raw_fd(), &mut [0u8; 1]) {
        Ok(0) => true,
        Err(nix::errno::Errno::EAGAIN) => false,
        other => panic!("reading the pipe: {other:?}"),
    }
}

/// Waits (at most 10 s) until every write end of the pipe is closed. Not at once: a child that
/// another test of this binary spawns meanwhile holds copies of every fd, close-on-exec ones
/// too, from its fork to its exec.
fn wait_all_writers_closed(read: &OwnedFd) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if all_writers_closed(read) {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut fds = [PollFd::new(read.as_fd(), PollFlags::POLLIN)];
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let _ = poll(&mut fds, PollTimeout::from(ms));
    }
}

/// Skips a test whose tool is missing, saying why; where `TEND_TEST_REQUIRE_TOOLS` is set (CI
/// installs the tools and sets it), a missing tool fails the test instead.
fn skip(why: &str) {
    assert!(
        std::env::var_os("TEND_TEST_REQUIRE_TOOLS").is_none(),
        "needed, and TEND_TEST_REQUIRE_TOOLS is set: {why}"
    );
    eprintln!("skipped: {why}");
}

/// Kills and reaps a child on drop, even when the test fails.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_env_value_is_the_name_after_an_at_sign_and_a_name_is_bound_once() {
    let name = unique_name("env");
    let socket = NotifySocket::bind(&name).expect("bind");
    assert_eq!(socket.name(), name);
    assert_eq!(socket.env_value(), format!("@{name}"));
    let err = NotifySocket::bind(&name).expect_err("a second bind of the name");
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE));
    // Close-on-exec and non-blocking from the start.
    let fd_flags = fcntl(socket.as_raw_fd(), FcntlArg::F_GETFD).expect("F_GETFD");
    assert!(FdFlag::from_bits_truncate(fd_flags).contains(FdFlag::FD_CLOEXEC));
    let fl_flags = fcntl(socket.as_raw_fd(), FcntlArg::F_GETFL).expect("F_GETFL");
    assert!(OFlag::from_bits_truncate(fl_flags).contains(OFlag::O_NONBLOCK));
    assert!(socket.recv().expect("recv").is_none(), "nothing sent yet");
}

#[test]
fn a_datagram_comes_with_its_senders_credentials() {
    let socket = NotifySocket::bind(&unique_name("creds")).expect("bind");
    let sender = sender_to(&socket);
    sender.send(b"READY=1\nSTATUS=up").expect("send");
    let datagram = recv_within(&socket, Duration::from_secs(10));
    let creds = datagram.credentials.expect("credentials");
    assert_eq!(creds.pid as u32, std::process::id());
    assert_eq!(creds.uid, nix::unistd::getuid().as_raw());
    assert_eq!(creds.gid, nix::unistd::getgid().as_raw());
    assert_eq!(datagram.payload, b"READY=1\nSTATUS=up");
    assert!(!datagram.truncated && !datagram.control_truncated);
    assert!(datagram.fds.is_empty());
    assert_eq!(
        datagram.messages(),
        vec![NotifyMessage::Ready, NotifyMessage::Status("up".into())]
    );
    assert!(
        socket.recv().expect("recv").is_none(),
        "one datagram, one recv"
    );

    // An empty datagram is a datagram.
    sender.send(b"").expect("send");
    let empty = recv_within(&socket, Duration::from_secs(10));
    assert!(empty.payload.is_empty() && empty.credentials.is_some());
}

#[test]
fn a_datagram_longer_than_the_limit_is_cut_and_marked() {
    let socket = NotifySocket::bind(&unique_name("long")).expect("bind");
    let long = vec![b'x'; MAX_PAYLOAD + 904];
    sender_to(&socket).send(&long).expect("send");
    let datagram = recv_within(&socket, Duration::from_secs(10));
    assert!(datagram.truncated);
    assert_eq!(datagram.payload, &long[..MAX_PAYLOAD]);

    let exact = vec![b'y'; MAX_PAYLOAD];
    sender_to(&socket).send(&exact).expect("send");
    let datagram = recv_within(&socket, Duration::from_secs(10));
    assert!(!datagram.truncated);
    assert_eq!(datagram.payload, exact);
}

/// Sends `payload` with `fds` (SCM_RIGHTS) to the socket.
fn send_with_fds(socket: &NotifySocket, payload: &[u8], fds: &[OwnedFd]) {
    let sender = sender_to(socket);
    let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
    sendmsg::<UnixAddr>(
        sender.as_raw_fd(),
        &[IoSlice::new(payload)],
        &[ControlMessage::ScmRights(&raw)],
        MsgFlags::empty(),
        None,
    )
    .expect("sendmsg");
}

#[test]
fn descriptors_arrive_close_on_exec_and_are_closed_with_the_datagram() {
    let socket = NotifySocket::bind(&unique_name("fds")).expect("bind");
    let (read, writers) = pipe_with_writers(3);
    send_with_fds(&socket, b"BARRIER=1", &writers);
    drop(writers);
    let datagram = recv_within(&socket, Duration::from_secs(10));
    assert_eq!(datagram.messages(), vec![NotifyMessage::Barrier]);
    assert_eq!(datagram.fds.len(), 3);
    assert!(!datagram.control_truncated);
    for fd in &datagram.fds {
        let flags = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFD).expect("F_GETFD");
        assert!(FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC));
    }
    assert!(!all_writers_closed(&read), "the datagram holds them");
    drop(datagram);
    assert!(
        wait_all_writers_closed(&read),
        "dropping the datagram closes them"
    );
}

#[test]
fn more_descriptors_than_room_are_all_closed_none_leaked() {
    let socket = NotifySocket::bind(&unique_name("many-fds")).expect("bind");
    let (read, writers) = pipe_with_writers(MAX_FDS + 24);
    send_with_fds(&socket, b"FDSTORE=1", &writers);
    drop(writers);
    let datagram = recv_within(&socket, Duration::from_secs(10));
    assert!(datagram.control_truncated);
    // As many as the control buffer has room for.
    assert_eq!(datagram.fds.len(), MAX_FDS);
    // Credentials come first and always fit.
    assert_eq!(
        datagram.credentials.map(|c| c.pid as u32),
        Some(std::process::id())
    );
    assert!(!all_writers_closed(&read));
    drop(datagram);
    // The kernel closed those that did not fit; we closed the rest: no write end is left.
    assert!(wait_all_writers_closed(&read));
}

#[test]
fn a_python_child_reports_with_its_own_pid() {
    if Command::new("python3").arg("-c").arg("").status().is_err() {
        skip("python3 is not installed");
        return;
    }
    let socket = NotifySocket::bind(&unique_name("python")).expect("bind");
    let script = "import os, socket\n\
                  addr = os.environ['NOTIFY_SOCKET']\n\
                  if addr.startswith('@'): addr = '\\0' + addr[1:]\n\
                  s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
                  s.connect(addr)\n\
                  s.sendall(b'READY=1\\nSTATUS=from python\\nMAINPID=%d\\n' % os.getpid())\n";
    let mut child = ChildGuard(
        Command::new("python3")
            .args(["-c", script])
            .env("NOTIFY_SOCKET", socket.env_value())
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn python3"),
    );
    let pid = child.0.id();
    let datagram = recv_within(&socket, Duration::from_secs(30));
    assert_eq!(datagram.credentials.map(|c| c.pid as u32), Some(pid));
    assert_eq!(
        datagram.messages(),
        vec![
            NotifyMessage::Ready,
            NotifyMessage::Status("from python".into()),
            NotifyMessage::MainPid(pid),
        ]
    );
    assert!(child.0.wait().expect("wait").success());
}

/// `systemd-notify --ready --status=hello`, not under systemd, with `NOTIFY_SOCKET=@name`
/// (systemd 252, Debian 12): it sends `READY=1\nSTATUS=hello` (credentials: its parent's pid
/// when run as root, which may name another process; its own otherwise), then `BARRIER=1`
/// with the write end of a pipe, and waits until that is closed before it exits 0.
#[test]
fn systemd_notify_reports_and_waits_for_its_barrier_to_be_closed() {
    let installed = Command::new("sh")
        .args(["-c", "command -v systemd-notify"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        skip("systemd-notify is not installed (Debian: `apt-get install -y systemd`)");
        return;
    }
    let socket = NotifySocket::bind(&unique_name("systemd-notify")).expect("bind");
    let mut child = ChildGuard(
        Command::new("systemd-notify")
            .args(["--ready", "--status=hello"])
            .env("NOTIFY_SOCKET", socket.env_value())
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn systemd-notify"),
    );
    let pid = child.0.id() as i32;
    let first = recv_within(&socket, Duration::from_secs(30));
    assert_eq!(
        first.messages(),
        vec![NotifyMessage::Ready, NotifyMessage::Status("hello".into())]
    );
    let sender = first.credentials.expect("credentials").pid;
    assert!(
        sender == pid || sender as u32 == std::process::id(),
        "credentials name {sender}, neither systemd-notify ({pid}) nor its parent"
    );
    drop(first);

    let barrier = recv_within(&socket, Duration::from_secs(30));
    assert_eq!(barrier.messages(), vec![NotifyMessage::Barrier]);
    assert_eq!(barrier.credentials.map(|c| c.pid), Some(pid));
    assert_eq!(barrier.fds.len(), 1);
    // While the barrier's descriptor is open, systemd-notify waits (for a while at least).
    assert!(
        !tend_os::wait_exit(pid, Duration::from_millis(300)).expect("pidfd"),
        "systemd-notify exited before its barrier was released"
    );
    drop(barrier);
    assert!(
        tend_os::wait_exit(pid, Duration::from_secs(30)).expect("pidfd"),
        "systemd-notify still waits after its barrier's descriptor was closed"
    );
    let status = child.0.wait().expect("wait");
    assert!(status.success(), "{status}");
}

#[test]
fn the_socket_is_pollable_through_its_fd() {
    let socket = NotifySocket::bind(&unique_name("poll")).expect("bind");
    // Not readable while empty.
    let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
    assert_eq!(poll(&mut fds, PollTimeout::ZERO).expect("poll"), 0);
    sender_to(&socket).send(b"WATCHDOG=1").expect("send");
    let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
    assert_eq!(
        poll(&mut fds, PollTimeout::try_from(10_000u32).unwrap()).expect("poll"),
        1
    );
    let datagram = socket.recv().expect("recv").expect("a datagram");
    assert_eq!(datagram.messages(), vec![NotifyMessage::Watchdog]);
}
