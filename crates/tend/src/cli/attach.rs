//! `tend attach NAME`: connects this terminal to the terminal of an interactive process
//! (`interactive = true`) until the detach key, Ctrl+] (as telnet's).
//!
//! After the `attach` answer the connection carries raw bytes (docs/protocol.md): a thread
//! copies the keyboard to it, another copies it to the screen, a third takes signals (a new
//! window size is sent with a `resize` request on a connection of its own), and the main
//! thread waits for whichever ends it first. On a terminal, stdin is in raw input mode
//! meanwhile (every key goes to the process: Ctrl+C interrupts the process, not `tend
//! attach`), restored on every way out. Without a terminal on stdin, what stdin gives is sent
//! and its end detaches, so `printf 'p x\n' | tend attach web` works in scripts.

use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::mpsc;

use tend_core::Signal;
use tend_os::{RawInput, SignalWaiter};
use tend_proto::{AttachArgs, OkBody, Request};

use super::conn::Connection;
use super::{Failure, EXIT_FAILED, EXIT_OK};

/// The key that detaches: Ctrl+].
pub const DETACH_KEY: u8 = 0x1d;

/// How an attachment ended.
enum End {
    /// The detach key.
    Detached,
    /// stdin ended (not a terminal).
    InputEnded,
    /// The supervisor closed the connection: the run's terminal closed, or tend went.
    Closed,
    /// A signal asked `tend attach` to end.
    Signal(Signal),
    /// Reading or writing failed.
    Failed(String),
}

/// Runs `tend attach name` against the supervisor of `config` at `socket`.
pub fn run(config: &Path, socket: &Path, name: &str) -> Result<u8, Failure> {
    let mut conn = Connection::open(config, socket)?;
    let stdin = io::stdin();
    let on_terminal = stdin.is_terminal();
    let size = tend_os::window_size(io::stdout().as_fd())
        .or_else(|| tend_os::window_size(stdin.as_fd()))
        .filter(|_| on_terminal);
    let id = conn.send(Request::Attach(AttachArgs {
        name: name.to_owned(),
        rows: size.map(|s| s.rows),
        cols: size.map(|s| s.cols),
    }))?;
    let attached = match conn.ok(id)? {
        OkBody::Attached(attached) => attached.attached,
        _ => return Err(conn.failure("the supervisor answered attach with something else".into())),
    };
    let instance = attached.instance;
    let (mut from_tend, mut to_tend) = conn.into_parts();
    // Before any thread exists, so that every thread inherits the mask.
    let waiter = SignalWaiter::block(&[Signal::Term, Signal::Hup, Signal::Int, Signal::Winch])
        .map_err(|e| Failure::report(EXIT_FAILED, format!("cannot block signals: {e}")))?;
    if on_terminal {
        eprintln!(
            "tend: attached to {instance} (pid {}); detach with Ctrl+]",
            attached.pid
        );
    }
    let stdin_fd = stdin.as_fd();
    let raw = if on_terminal {
        Some(RawInput::enter(stdin_fd).map_err(|e| {
            Failure::report(EXIT_FAILED, format!("cannot set up the terminal: {e}"))
        })?)
    } else {
        None
    };
    let (tx, rx) = mpsc::channel();
    let screen = tx.clone();
    std::thread::spawn(move || {
        let mut out = io::stdout();
        let mut buf = vec![0u8; 64 * 1024];
        let end = loop {
            match from_tend.read(&mut buf) {
                Ok(0) => break End::Closed,
                Ok(n) => {
                    if let Err(e) = out.write_all(&buf[..n]).and_then(|()| out.flush()) {
                        break End::Failed(format!("cannot write to stdout: {e}"));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A reset connection: tend went away.
                Err(_) => break End::Closed,
            }
        };
        let _ = screen.send(end);
    });
    let keyboard = tx.clone();
    std::thread::spawn(move || {
        let mut input = io::stdin().lock();
        let mut buf = [0u8; 4096];
        let end = loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break End::InputEnded,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break End::Failed(format!("cannot read stdin: {e}")),
            };
            let (keys, detach) = match buf[..n].iter().position(|&b| b == DETACH_KEY) {
                Some(at) => (&buf[..at], true),
                None => (&buf[..n], false),
            };
            if to_tend.write_all(keys).is_err() {
                break End::Closed;
            }
            if detach {
                break End::Detached;
            }
        };
        let _ = keyboard.send(end);
    });
    let resizes = (config.to_owned(), socket.to_owned(), name.to_owned());
    std::thread::spawn(move || loop {
        match waiter.wait(None) {
            Ok(Some(Signal::Winch)) => {
                let (config, socket, name) = &resizes;
                resize(config, socket, name);
            }
            Ok(Some(signal)) => {
                let _ = tx.send(End::Signal(signal));
                return;
            }
            Ok(None) => {}
            Err(_) => return,
        }
    });
    let end = rx.recv().unwrap_or(End::Closed);
    drop(raw);
    Ok(match end {
        End::Detached => {
            if on_terminal {
                eprintln!("\ntend: detached from {instance}; it goes on running");
            }
            EXIT_OK
        }
        End::InputEnded => EXIT_OK,
        End::Closed => {
            eprintln!(
                "\ntend: {instance}'s terminal closed: {}",
                ended_how(config, socket, &instance)
            );
            EXIT_OK
        }
        End::Signal(signal) => 128 + tend_os::signal_number(signal) as u8,
        End::Failed(why) => return Err(Failure::report(EXIT_FAILED, why)),
    })
}

/// Tells the run's terminal the size of ours (on a connection of its own: the attached one
/// carries raw bytes).
fn resize(config: &Path, socket: &Path, name: &str) {
    let Some(size) = tend_os::window_size(io::stdout().as_fd()) else {
        return;
    };
    if let Ok(mut conn) = Connection::open(config, socket) {
        if let Ok(id) = conn.send(Request::Resize(AttachArgs {
            name: name.to_owned(),
            rows: Some(size.rows),
            cols: Some(size.cols),
        })) {
            let _ = conn.ok(id);
        }
    }
}

/// What became of `instance` once its terminal closed, in a few words.
fn ended_how(config: &Path, socket: &Path, instance: &str) -> String {
    let status = Connection::open(config, socket).and_then(|mut conn| {
        let id = conn.send(Request::Status(tend_proto::StatusArgs {
            names: vec![instance.to_owned()],
        }))?;
        conn.ok(id)
    });
    match status {
        Ok(OkBody::Instances(found)) => match found.instances.first() {
            Some(status) => format!("now {}", super::render::instance_line(status)),
            None => "it is gone from the config".to_owned(),
        },
        _ => "tend is not running any more".to_owned(),
    }
}
