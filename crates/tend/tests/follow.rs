//! End to end: `logs -f` on the socket and `GET /api/logs?follow=1` over HTTP deliver every
//! line a child prints, once and in order, through a burst of 50 MiB read by a client that
//! stalls, and through rotations; and tend's memory stays bounded meanwhile.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// `seq 1 6000000` prints 52 MB.
const BURST: u64 = 6_000_000;
/// How long any one test may take to see every line.
const DEADLINE: Duration = Duration::from_secs(600);
/// tend's resident memory must stay under this during a burst.
const RSS_BOUND_KIB: u64 = 100 * 1024;

/// A process `burst` that says `waiting` until the file `go` exists, then prints `seq 1 n`.
fn burst_config(n: u64, extra: &str) -> String {
    format!(
        r#"
{extra}
[process.burst]
command = 'until [ -e go ]; do echo waiting; sleep 0.05; done; seq 1 {n}'
shell = true
restart = "never"
cwd = "."
"#
    )
}

/// tend's resident set in KiB, from /proc.
/// Waits a second while the client reads nothing; returns tend's peak RSS meanwhile (KiB).
fn stalled_for_a_second(pid: i32) -> u64 {
    let mut peak = 0;
    let stalled = Instant::now();
    while stalled.elapsed() < Duration::from_secs(1) {
        peak = peak.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    peak
}

/// Reads lines until `check` has seen the whole burst; returns tend's peak RSS (KiB),
/// sampled every 100 000 lines.
fn read_to_the_end(pid: i32, check: &mut Checker, mut next_line: impl FnMut() -> String) -> u64 {
    let mut peak = 0;
    let mut n = 0u64;
    loop {
        n += 1;
        if n.is_multiple_of(100_000) {
            peak = peak.max(rss_kib(pid));
        }
        if check.take(&next_line()) {
            return peak;
        }
    }
}

fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Checks lines as they come: any number of `waiting`, then exactly 1, 2, … `n` in order.
struct Checker {
    next: u64,
    n: u64,
}

impl Checker {
    fn new(n: u64) -> Checker {
        Checker { next: 1, n }
    }

    /// Takes one line; true once the last one came.
    fn take(&mut self, line: &str) -> bool {
        if self.next == 1 && line == "waiting" {
            return false;
        }
        assert_eq!(
            line,
            self.next.to_string(),
            "line {} of the burst (every line once, in order)",
            self.next
        );
        self.next += 1;
        self.next > self.n
    }
}

/// A `tend logs -f` client, its output piped to this test (which may stop reading it).
struct Client {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Client {
    fn start(d: &Daemon, args: &[&str]) -> Client {
        let mut cmd = d.command(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().expect("spawn the client");
        let out = child.stdout.take().unwrap();
        let pid = child.id() as i32;
        // A watchdog: past the deadline the client is killed, so a read cannot hang.
        std::thread::spawn(move || {
            std::thread::sleep(DEADLINE);
            let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
        });
        Client {
            child,
            lines: BufReader::with_capacity(1 << 16, out).lines(),
        }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    fn line(&mut self) -> String {
        self.lines
            .next()
            .expect("the client ended before every line came (deadline?)")
            .expect("read")
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(-(self.child.id() as i32)), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Waits for the follower to show `waiting`, then lets the burst go.
fn go(d: &Daemon, mut next_line: impl FnMut() -> String) {
    while next_line() != "waiting" {}
    std::fs::write(d.path("go"), "").unwrap();
}

#[test]
fn a_stalled_socket_client_gets_every_line_of_a_50_mib_burst_in_order() {
    let d = Daemon::start(&burst_config(BURST, ""));
    // From the lock file beside the socket.
    let pid = d.pid;
    let started = Instant::now();
    let mut client = Client::start(&d, &["logs", "-f", "-n", "0", "--no-prefix", "burst"]);
    go(&d, || client.line());
    let mut check = Checker::new(BURST);
    // Read a little, then stop reading and stop the client for a second: the burst goes on
    // into the log files meanwhile.
    for _ in 0..1000 {
        assert!(!check.take(&client.line()));
    }
    kill(client.pid(), Signal::SIGSTOP).unwrap();
    let mut peak = stalled_for_a_second(pid);
    kill(client.pid(), Signal::SIGCONT).unwrap();
    peak = peak.max(read_to_the_end(pid, &mut check, || client.line()));
    eprintln!(
        "socket: {BURST} lines followed in {:?}, tend's peak RSS {peak} KiB",
        started.elapsed()
    );
    assert!(peak < RSS_BOUND_KIB, "tend's RSS reached {peak} KiB");
}

#[test]
fn tends_memory_stays_bounded_while_a_stopped_client_follows_a_50_mib_burst() {
    let d = Daemon::start(&burst_config(BURST, ""));
    // From the lock file beside the socket.
    let pid = d.pid;
    let mut client = Client::start(&d, &["logs", "-f", "-n", "0", "--no-prefix", "burst"]);
    go(&d, || client.line());
    // The client stops for the whole burst: its socket fills, and tend must neither hold
    // the burst in memory nor slow the child.
    kill(client.pid(), Signal::SIGSTOP).unwrap();
    let mut peak = 0;
    let burst = Instant::now();
    let mut exited = false;
    while !exited {
        assert!(burst.elapsed() < DEADLINE, "the burst did not end");
        peak = peak.max(rss_kib(pid));
        exited = d.instance("burst.0")["state"] == "exited";
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = burst.elapsed();
    kill(client.pid(), Signal::SIGCONT).unwrap();
    let mut check = Checker::new(BURST);
    while !check.take(&client.line()) {}
    eprintln!(
        "stopped client: the burst of {BURST} lines took {took:?} with the client stopped; tend's peak RSS {peak} KiB"
    );
    assert!(peak < RSS_BOUND_KIB, "tend's RSS reached {peak} KiB");
}

#[test]
fn rotation_during_a_follow_loses_and_repeats_no_line() {
    // 200 000 lines (1.3 MB) in 64 KiB files: about 20 rotations during the follow, at a
    // pace a reading client keeps up with (no file is dropped before it is read). keep = 4:
    // room for a client starved of CPU for a while (a loaded CI machine) to catch up.
    let n = 200_000;
    let d = Daemon::start(&format!(
        r#"
[process.burst]
command = 'until [ -e go ]; do echo waiting; sleep 0.05; done; awk "BEGIN {{ for (i = 1; i <= {n}; i++) {{ print i; if (i % 500 == 0) {{ fflush(); system(\"sleep 0.01\") }} }} }}"'
shell = true
restart = "never"
cwd = "."
log = {{ max_size = "64KiB", keep = 4 }}
"#
    ));
    let mut client = Client::start(&d, &["logs", "-f", "-n", "0", "--no-prefix", "burst"]);
    go(&d, || client.line());
    let mut check = Checker::new(n);
    while !check.take(&client.line()) {}
    assert!(
        std::fs::metadata(d.path(".tend/logs/burst.0.log.1")).is_ok(),
        "the log rotated"
    );
}

/// A follow over HTTP: the response's body, its chunked encoding undone, as lines.
struct SseLines {
    reader: BufReader<TcpStream>,
    /// Bytes of the body not yet split into lines.
    body: Vec<u8>,
    /// Where the next line begins in `body`.
    at: usize,
}

impl SseLines {
    fn open(api_addr: &str, token: &str, path: &str) -> SseLines {
        let mut stream = TcpStream::connect(api_addr).expect("connect");
        stream
            .set_read_timeout(Some(DEADLINE))
            .expect("read timeout");
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: {api_addr}\r\nAuthorization: Bearer {token}\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).expect("send");
        let mut reader = BufReader::with_capacity(1 << 16, stream);
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let mut chunked = false;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            if header == "\r\n" {
                break;
            }
            chunked |= header
                .to_ascii_lowercase()
                .starts_with("transfer-encoding: chunked");
        }
        assert!(chunked, "a stream is sent chunked");
        SseLines {
            reader,
            body: Vec::new(),
            at: 0,
        }
    }

    /// The next `data:` line's `line` field.
    fn line(&mut self) -> String {
        loop {
            if let Some(end) = self.body[self.at..].iter().position(|&b| b == b'\n') {
                let line = &self.body[self.at..self.at + end];
                self.at += end + 1;
                if let Some(json) = line.strip_prefix(b"data: ") {
                    let log: serde_json::Value = serde_json::from_slice(json).expect("JSON");
                    return log["line"].as_str().expect("a line").to_owned();
                }
                continue;
            }
            self.body.drain(..self.at);
            self.at = 0;
            // The next chunk: its size in hex, the bytes, CRLF.
            let mut size = String::new();
            self.reader.read_line(&mut size).expect("a chunk size");
            let size = usize::from_str_radix(size.trim(), 16).expect("a chunk size in hex");
            assert!(size > 0, "the stream ended");
            let start = self.body.len();
            self.body.resize(start + size + 2, 0);
            self.reader
                .read_exact(&mut self.body[start..])
                .expect("a chunk");
            self.body.truncate(start + size);
        }
    }
}

#[test]
fn a_stalled_http_client_gets_every_line_of_a_50_mib_burst_in_order() {
    let d = Daemon::start(&burst_config(BURST, "[http]\nlisten = \"127.0.0.1:0\"\n"));
    // From the lock file beside the socket.
    let pid = d.pid;
    let ran = d.tend(&["http-url"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let url = ran
        .stdout
        .trim()
        .strip_prefix("http://")
        .unwrap()
        .to_owned();
    let (addr, token) = url.split_once("/?token=").unwrap();
    let started = Instant::now();
    let mut sse = SseLines::open(addr, token, "/api/logs?follow=1&lines=0&names=burst");
    go(&d, || sse.line());
    let mut check = Checker::new(BURST);
    for _ in 0..1000 {
        assert!(!check.take(&sse.line()));
    }
    // Stop reading for a second.
    let mut peak = stalled_for_a_second(pid);
    peak = peak.max(read_to_the_end(pid, &mut check, || sse.line()));
    eprintln!(
        "http: {BURST} lines followed in {:?}, tend's peak RSS {peak} KiB",
        started.elapsed()
    );
    assert!(peak < RSS_BOUND_KIB, "tend's RSS reached {peak} KiB");
}
