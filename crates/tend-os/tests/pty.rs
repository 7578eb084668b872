//! Contract tests of pseudo-terminals against real processes: a child spawned on a pty's
//! terminal side has it as stdio and controlling terminal, leads its own session and group,
//! reads what is written to the master, gets SIGWINCH when the size changes, and its output
//! ends in EIO once it is gone; `RawInput` puts a terminal in raw input mode and back.

mod common;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use common::{argv, proc_stat, readlink, GroupGuard};
use nix::sys::termios::{self, LocalFlags, OutputFlags};
use nix::sys::wait::WaitStatus;
use tend_os::{
    set_window_size, spawn_on_terminal, window_size, Command, Pty, RawInput, WindowSize,
};

/// Reads `master` until its text contains `want` or the deadline passes; returns all read.
fn read_until(master: BorrowedFd<'_>, want: &str, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut text = Vec::new();
    loop {
        if String::from_utf8_lossy(&text).contains(want) {
            return String::from_utf8_lossy(&text).into_owned();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no {want:?} from the pty within {secs} s; read {:?}",
            String::from_utf8_lossy(&text)
        );
        let mut fds = [nix::poll::PollFd::new(master, nix::poll::PollFlags::POLLIN)];
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let _ = nix::poll::poll(&mut fds, ms);
        let mut buf = [0u8; 4096];
        match nix::unistd::read(master.as_raw_fd(), &mut buf) {
            Ok(0) => panic!("EOF before {want:?}: {:?}", String::from_utf8_lossy(&text)),
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(nix::errno::Errno::EAGAIN) => {}
            Err(e) => panic!(
                "reading the pty failed with {e} before {want:?}: {:?}",
                String::from_utf8_lossy(&text)
            ),
        }
    }
}

fn write_all(master: BorrowedFd<'_>, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match nix::unistd::write(master, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(nix::errno::Errno::EAGAIN) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("writing to the pty failed: {e}"),
        }
    }
}

fn spawn_on(pty: &Pty, script: &str) -> (i32, GroupGuard) {
    let argv = argv(&["sh", "-c", script]);
    let cmd = Command {
        argv: &argv,
        ..Command::default()
    };
    let pid = spawn_on_terminal(&cmd, pty.terminal.as_fd()).expect("spawn on a terminal");
    (pid, GroupGuard::new(pid))
}

#[test]
fn a_child_on_a_pty_has_it_as_stdio_and_controlling_terminal_in_a_session_of_its_own() {
    let pty = Pty::open(WindowSize { rows: 31, cols: 97 }).expect("open a pty");
    let (pid, mut guard) = spawn_on(
        &pty,
        "test -t 0 && test -t 1 && test -t 2 && echo all-ttys; stty size; \
         echo tpgid=$(ps -o tpgid= -p $$ | tr -d ' ') sid=$(ps -o sid= -p $$ | tr -d ' '); \
         read line; echo \"got:$line\"",
    );
    let master = pty.master.as_fd();
    let text = read_until(master, "sid=", 10);
    assert!(text.contains("all-ttys"), "{text:?}");
    assert!(
        text.contains("31 97"),
        "the size the pty was opened with: {text:?}"
    );
    // Its own session and group, which is the terminal's foreground group.
    assert!(
        text.contains(&format!("tpgid={pid} sid={pid}")),
        "pid {pid}: {text:?}"
    );
    assert_eq!(
        proc_stat(pid).expect("stat").2,
        pid,
        "its own process group"
    );
    assert!(readlink(format!("/proc/{pid}/fd/0")).starts_with("/dev/pts/"));
    // No \r before \n: output post-processing is off.
    assert!(!text.contains('\r'), "{text:?}");
    write_all(master, b"hello\n");
    let text = read_until(master, "got:hello", 10);
    // The line discipline echoes what was typed, as a terminal does.
    assert!(text.contains("hello\n"), "{text:?}");
    assert!(matches!(guard.wait(), WaitStatus::Exited(_, 0)));
}

#[test]
fn a_new_size_reaches_the_child_as_sigwinch_and_ctrl_c_as_sigint() {
    let pty = Pty::open(WindowSize { rows: 24, cols: 80 }).expect("open a pty");
    let (_pid, mut guard) = spawn_on(
        &pty,
        "trap 'echo winch $(stty size)' WINCH; trap 'echo int; exit 7' INT; echo armed; \
         while :; do sleep 0.05; done",
    );
    let master = pty.master.as_fd();
    read_until(master, "armed", 10);
    set_window_size(
        master,
        WindowSize {
            rows: 50,
            cols: 132,
        },
    )
    .expect("TIOCSWINSZ");
    read_until(master, "winch 50 132", 10);
    assert_eq!(
        window_size(pty.terminal.as_fd()),
        Some(WindowSize {
            rows: 50,
            cols: 132
        })
    );
    // Ctrl+C typed into the terminal: the line discipline signals the foreground group.
    write_all(master, b"\x03");
    read_until(master, "int", 10);
    assert!(matches!(guard.wait(), WaitStatus::Exited(_, 7)));
}

#[test]
fn reading_the_master_ends_in_eio_after_the_last_output_once_the_terminal_is_closed() {
    let pty = Pty::open(WindowSize { rows: 24, cols: 80 }).expect("open a pty");
    let Pty { master, terminal } = pty;
    let argv = argv(&["sh", "-c", "printf 'last words without newline'"]);
    let cmd = Command {
        argv: &argv,
        ..Command::default()
    };
    let pid = spawn_on_terminal(&cmd, terminal.as_fd()).expect("spawn");
    let mut guard = GroupGuard::new(pid);
    drop(terminal);
    assert!(matches!(guard.wait(), WaitStatus::Exited(_, 0)));
    let text = read_until(master.as_fd(), "last words without newline", 10);
    assert_eq!(text, "last words without newline");
    let mut buf = [0u8; 64];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match nix::unistd::read(master.as_raw_fd(), &mut buf) {
            Err(nix::errno::Errno::EIO) => break,
            Err(nix::errno::Errno::EAGAIN) if Instant::now() < deadline => {
                let mut fds = [nix::poll::PollFd::new(
                    master.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                let _ = nix::poll::poll(&mut fds, 100u16);
            }
            other => panic!("expected EIO once the terminal side is closed, got {other:?}"),
        }
    }
}

#[test]
fn raw_input_turns_off_line_editing_echo_and_signals_keeps_output_processing_and_restores() {
    let pty = Pty::open(WindowSize { rows: 24, cols: 80 }).expect("open a pty");
    let term = pty.terminal.as_fd();
    // A terminal as a user's usually is: output processing on.
    let mut usual = termios::tcgetattr(term).expect("tcgetattr");
    usual
        .output_flags
        .insert(OutputFlags::OPOST | OutputFlags::ONLCR);
    termios::tcsetattr(term, termios::SetArg::TCSANOW, &usual).expect("tcsetattr");
    let before = termios::tcgetattr(term).expect("tcgetattr");
    {
        let _raw = RawInput::enter(term).expect("raw mode");
        let raw = termios::tcgetattr(term).expect("tcgetattr");
        for flag in [LocalFlags::ICANON, LocalFlags::ECHO, LocalFlags::ISIG] {
            assert!(!raw.local_flags.contains(flag), "{flag:?} still on");
        }
        assert!(raw
            .output_flags
            .contains(OutputFlags::OPOST | OutputFlags::ONLCR));
    }
    let after = termios::tcgetattr(term).expect("tcgetattr");
    assert_eq!(after.local_flags, before.local_flags);
    assert_eq!(after.input_flags, before.input_flags);
    assert_eq!(after.output_flags, before.output_flags);
    // Not a terminal: a clear error, nothing changed.
    let file = tempfile::tempfile().expect("tempfile");
    let err = RawInput::enter(file.as_fd()).expect_err("a file is no terminal");
    assert_eq!(err.errno(), Some(libc::ENOTTY), "{err}");
}
