//! `process-demo server`: on SIGTERM a request in flight finishes with 200, new connections are
//! refused, and the process exits 0.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_success, demo, Running};
use nix::sys::signal::Signal;

/// Starts the server on a free port and returns it with its address.
fn start_server(extra: &[&str]) -> (Running, SocketAddr) {
    let mut args = vec!["server", "--addr", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut server = Running::start(demo(&args));
    let line = server.expect_line("listening line", 20, |l| {
        l.starts_with("Listening on http://")
    });
    let addr = line["Listening on http://".len()..]
        .parse()
        .unwrap_or_else(|e| panic!("{line:?}: {e}"));
    (server, addr)
}

/// Connects and sends `GET path`, asking the server to close after the answer.
fn get(addr: SocketAddr, path: &str) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    Ok(stream)
}

/// Reads the whole response (the server closes the connection after it).
fn response(mut stream: TcpStream) -> String {
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read the response");
    text
}

#[test]
fn fast_path_answers() {
    let (server, addr) = start_server(&[]);
    let answer = response(get(addr, "/").expect("connect"));
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("hello from process-demo\n"), "{answer}");
    server.signal(Signal::SIGTERM);
    assert_success(&server.finish(20));
}

#[test]
fn sigterm_lets_the_request_in_flight_finish_refuses_new_ones_and_exits_0() {
    let (mut server, addr) = start_server(&["--slow-secs", "3"]);
    let slow = get(addr, "/slow").expect("connect");
    server.expect_line("the slow request's start", 20, |l| {
        l.starts_with("/slow #1: started")
    });
    server.signal(Signal::SIGTERM);
    server.expect_line("the shutdown notice", 20, |l| {
        l.starts_with("Received SIGTERM")
    });

    // The listener closes right after the notice; a connection that slipped in just before
    // would still be served, so try until one is refused.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match TcpStream::connect(addr) {
            // Refused; or reset, when the SYN met the listener as it closed: not served either.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset
                ) =>
            {
                break
            }
            Err(e) => panic!("connect after SIGTERM: {e}"),
            Ok(_) => {
                assert!(
                    Instant::now() < deadline,
                    "still accepting 2 s after SIGTERM"
                );
                thread::sleep(Duration::from_millis(5));
            }
        }
    }
    // ... while the slow request is still in flight: refusing came first.
    slow.set_nonblocking(true).expect("nonblocking");
    let mut byte = [0u8; 1];
    assert_eq!(
        slow.peek(&mut byte).map_err(|e| e.kind()).err(),
        Some(ErrorKind::WouldBlock),
        "the slow answer came before new connections were refused"
    );
    slow.set_nonblocking(false).expect("blocking");

    let answer = response(slow);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("slow answer #1, after 3 s\n"), "{answer}");

    let finished = server.finish(20);
    assert_success(&finished);
    let notice = finished
        .stdout
        .iter()
        .position(|l| l.starts_with("Received SIGTERM"))
        .expect("notice");
    let done = finished
        .stdout
        .iter()
        .position(|l| l == "/slow #1: done")
        .expect("the slow request finished");
    assert!(notice < done, "{:#?}", finished.stdout);
    assert_eq!(
        finished.stdout.last().map(String::as_str),
        Some("All requests in flight have finished; exiting.")
    );
}

#[test]
fn a_second_signal_ends_a_graceful_stop_at_once() {
    let (mut server, addr) = start_server(&["--slow-secs", "60"]);
    let _slow = get(addr, "/slow").expect("connect");
    server.expect_line("the slow request's start", 20, |l| {
        l.starts_with("/slow #1: started")
    });
    server.signal(Signal::SIGTERM);
    server.expect_line("the shutdown notice", 20, |l| {
        l.starts_with("Received SIGTERM")
    });
    let asked = Instant::now();
    server.signal(Signal::SIGINT);
    let finished = server.finish(20);
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "did not wait for the 60 s request"
    );
    assert_eq!(finished.status.code(), Some(1), "{finished:?}");
    assert!(
        finished
            .stdout
            .iter()
            .any(|l| l.starts_with("A second SIGINT")),
        "{:#?}",
        finished.stdout
    );
}
