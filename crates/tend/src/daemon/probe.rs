//! Probes: one try of a readiness or health check ([`try_once`]), bounded by its timeout.
//!
//! - **tcp**: `host:port` resolves, and a connection to one of its addresses succeeds (then
//!   it is closed).
//! - **http**: a `GET` of an `http://host[:port]/path` URL answers a 2xx status. A minimal
//!   HTTP/1.1 client: the request says `Connection: close`, only the status line is read (at
//!   most [`MAX_HEAD`] bytes, interim 1xx answers skipped), the body never.
//! - **exec**: an argv exits 0. It runs with the process's cwd and environment, as the
//!   process's user, with its groups, limits, umask, nice value and OOM score (the same child
//!   actions as the process, so a check script the user may write cannot run as tend's user),
//!   stdin, stdout and stderr on `/dev/null`, in a process group of its own. On timeout (or
//!   when the try is dropped) the whole group gets SIGKILL.
//!
//! The failure of a try is a short reason for people: "connection refused", "HTTP 503",
//! "exit code 1", "timed out after 1s", "no answer: connection reset by peer".
//!
//! ## Exec probes and the one reaper
//!
//! tend's reaper owns `waitpid(-1)` (see the daemon module): it reaps every child of tend,
//! a probe's too, so a probe cannot wait for its own child (tokio's `process::Child` would
//! find it gone). Instead a probe spawns through tend-os, as every child of tend is spawned,
//! and registers its pid in [`ProbeChildren`]; the reaper must offer every pid it reaps to
//! [`ProbeChildren::reaped`] first, which hands the status over to the waiting probe (and
//! reports the pid as taken). Spawning and registering happen under one lock, so even a reaper
//! on another thread cannot reap the child before it is known; on the driver's single thread
//! the question does not arise.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io;
use std::net::{Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tend_core::time::format_duration_rounded;
use tend_core::{ExitStatus, Probe, ProcessSpec, Signal};
use tend_os::{ChildAction, Command, Pid};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// The most bytes of an HTTP answer read looking for its status line.
pub const MAX_HEAD: usize = 8 * 1024;

/// How long a timed-out exec probe waits, after its SIGKILL, for the reaper to hand over its
/// exit: a killed process exits at once (unless stuck in the kernel).
const REAP_GRACE: Duration = Duration::from_secs(1);

/// What an exec probe needs of the process it checks: where it runs, its environment, and
/// who it runs as.
#[derive(Debug, Clone)]
pub struct ProbeContext {
    /// The working directory (the process's), tend's own when `None`.
    pub cwd: Option<PathBuf>,
    /// Variables set on top of tend's environment (the process's, with its user's `HOME`,
    /// `USER` and `LOGNAME`).
    pub env: Vec<(String, String)>,
    /// Where the reaper hands over the exits of probe children.
    pub children: ProbeChildren,
    /// The process whose identity an exec probe takes: its user, groups, limits, umask, nice
    /// value and OOM score, set as for the process itself. `None`: tend's own.
    pub runs_as: Option<Arc<ProcessSpec>>,
}

/// Tries `probe` once, for at most `timeout`: `Ok(())` when it succeeded, or why not.
///
/// A timed-out exec probe's group is killed and its leader's exit awaited (at most a second
/// more), so it has been reaped when this returns. Dropping the future kills the group too.
pub async fn try_once(probe: &Probe, timeout: Duration, ctx: &ProbeContext) -> Result<(), String> {
    let deadline = Instant::now().checked_add(timeout);
    let timed_out = || format!("timed out after {}", format_duration_rounded(timeout));
    match probe {
        Probe::Tcp(address) => within(deadline, tcp(address))
            .await
            .unwrap_or_else(|| Err(timed_out())),
        Probe::Http(url) => within(deadline, http(url))
            .await
            .unwrap_or_else(|| Err(timed_out())),
        Probe::Exec(argv) => {
            let mut child = ctx.children.spawn(argv, ctx)?;
            match within(deadline, child.exit()).await {
                Some(exit) => describe_exit(exit?),
                None => {
                    child.kill();
                    let _ = tokio::time::timeout(REAP_GRACE, child.exit()).await;
                    Err(timed_out())
                }
            }
        }
    }
}

/// `future`'s output, or `None` if `deadline` came first (`None` as deadline: no limit, for a
/// timeout beyond the clock).
async fn within<F: std::future::Future>(deadline: Option<Instant>, future: F) -> Option<F::Output> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, future).await.ok(),
        None => Some(future.await),
    }
}

/// Success for exit code 0, else what happened.
fn describe_exit(status: ExitStatus) -> Result<(), String> {
    match status {
        ExitStatus::Code(0) => Ok(()),
        ExitStatus::Code(code) => Err(format!("exit code {code}")),
        ExitStatus::Signaled(n) => Err(format!("killed by {}", tend_os::signal_name(n))),
    }
}

async fn tcp(address: &str) -> Result<(), String> {
    let addrs = tokio::net::lookup_host(address)
        .await
        .map_err(|e| format!("cannot resolve {address}: {}", reason(&e)))?;
    connect_any(addrs).await.map(drop)
}

/// A connection to the first of `addrs` that accepts one; the error of the last otherwise.
async fn connect_any(addrs: impl Iterator<Item = SocketAddr>) -> Result<TcpStream, String> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(|| "the name has no address".to_owned(), |e| reason(&e)))
}

async fn http(url: &str) -> Result<(), String> {
    let url = HttpUrl::parse(url)?;
    let addrs = tokio::net::lookup_host((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("cannot resolve {}: {}", url.host, reason(&e)))?;
    let mut stream = connect_any(addrs).await?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: tend\r\n\r\n",
        url.path, url.authority
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("no answer: {}", reason(&e)))?;
    let mut head = Vec::with_capacity(1024);
    loop {
        match final_status(&head) {
            Head::Status(code) if (200..300).contains(&code) => return Ok(()),
            Head::Status(code) => return Err(format!("HTTP {code}")),
            Head::NotHttp => return Err("no HTTP answer".to_owned()),
            Head::Partial if head.len() >= MAX_HEAD => {
                return Err(format!("no HTTP answer in the first {MAX_HEAD} bytes"))
            }
            Head::Partial => {}
        }
        let room = MAX_HEAD - head.len();
        let read = (&mut stream).take(room as u64).read_buf(&mut head).await;
        match read {
            Ok(0) if head.is_empty() => return Err("no answer: connection closed".to_owned()),
            Ok(0) => return Err("no HTTP answer: cut short".to_owned()),
            Ok(_) => {}
            Err(e) if head.is_empty() => return Err(format!("no answer: {}", reason(&e))),
            Err(_) => return Err("no HTTP answer: cut short".to_owned()),
        }
    }
}

/// An `http://` URL, taken apart for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// The host to resolve or the IP address, without the brackets of an IPv6 address.
    pub host: String,
    /// The port, 80 unless given.
    pub port: u16,
    /// The `Host` header: host and port as the URL writes them (`[::1]:8080`).
    pub authority: String,
    /// The request target: the path and query (`/` when the URL has none), no fragment.
    pub path: String,
}

impl HttpUrl {
    /// Parses `http://host[:port][/path][?query][#fragment]`; the host may be a name, an IPv4
    /// address or an IPv6 address in brackets. The path must already be percent-encoded
    /// (printable ASCII, no spaces). The error says what is wrong; the config layer can use it
    /// to refuse a URL at load time.
    pub fn parse(url: &str) -> Result<HttpUrl, String> {
        let scheme_end = url
            .find("://")
            .ok_or_else(|| format!("not an http:// URL: {url}"))?;
        let scheme = &url[..scheme_end];
        if scheme.eq_ignore_ascii_case("https") {
            return Err(format!("https is not supported, only http://: {url}"));
        }
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(format!("not an http:// URL: {url}"));
        }
        let rest = &url[scheme_end + 3..];
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(end);
        if authority.contains('@') {
            return Err(format!("a user name in the URL is not supported: {url}"));
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(bracketed) => {
                let (ip, after) = bracketed
                    .split_once(']')
                    .ok_or_else(|| format!("an IPv6 address without its closing ]: {url}"))?;
                ip.parse::<Ipv6Addr>()
                    .map_err(|_| format!("not an IPv6 address: [{ip}] in {url}"))?;
                let port = match after {
                    "" => None,
                    _ => Some(
                        after
                            .strip_prefix(':')
                            .ok_or_else(|| format!("bad host: {url}"))?,
                    ),
                };
                (ip, port)
            }
            None => {
                if authority.matches(':').count() > 1 {
                    return Err(format!(
                        "an IPv6 address goes in brackets (http://[::1]:8080/): {url}"
                    ));
                }
                let (host, port) = match authority.split_once(':') {
                    Some((host, port)) => (host, Some(port)),
                    None => (authority, None),
                };
                if host.bytes().any(|b| b.is_ascii_control() || b == b' ') {
                    return Err(format!("bad host: {url}"));
                }
                (host, port)
            }
        };
        if host.is_empty() {
            return Err(format!("no host in the URL: {url}"));
        }
        let port = match port {
            None => 80,
            Some(text) => match text.parse::<u16>() {
                Ok(port) if port > 0 && text.bytes().all(|b| b.is_ascii_digit()) => port,
                _ => return Err(format!("bad port {text:?} in {url}")),
            },
        };
        let target = target.split('#').next().unwrap_or("");
        if !target.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "the path must be percent-encoded (printable ASCII, no spaces): {url}"
            ));
        }
        let path = match target {
            "" => "/".to_owned(),
            query if query.starts_with('?') => format!("/{query}"),
            path => path.to_owned(),
        };
        Ok(HttpUrl {
            host: host.to_owned(),
            port,
            authority: authority.to_owned(),
            path,
        })
    }
}

/// What the bytes read so far say.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// The status code of the final answer.
    Status(u16),
    /// Not enough yet.
    Partial,
    /// Not an HTTP answer.
    NotHttp,
}

/// The status of the final answer in `buf`, skipping interim (1xx) answers and their fields.
fn final_status(buf: &[u8]) -> Head {
    let mut at = 0;
    loop {
        let Some(line) = next_line(buf, &mut at) else {
            let rest = &buf[at..];
            let n = rest.len().min(5);
            return if rest[..n] == b"HTTP/"[..n] {
                Head::Partial
            } else {
                Head::NotHttp
            };
        };
        let Some(code) = status_code(line) else {
            return Head::NotHttp;
        };
        if !(100..200).contains(&code) || code == 101 {
            return Head::Status(code);
        }
        // An interim answer (103 Early Hints): its fields end at an empty line.
        loop {
            match next_line(buf, &mut at) {
                None => return Head::Partial,
                Some([]) => break,
                Some(_) => {}
            }
        }
    }
}

/// The line at `*at` without its `\n` (or `\r\n`), moving `*at` past it; `None` if it has
/// not ended yet.
fn next_line<'a>(buf: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let rest = &buf[*at..];
    let eol = memchr::memchr(b'\n', rest)?;
    *at += eol + 1;
    let line = &rest[..eol];
    Some(line.strip_suffix(b"\r").unwrap_or(line))
}

/// The code of a status line: `HTTP/` and a version, a space, three digits, then a space or
/// the end of the line (`HTTP/1.1 200 OK`, `HTTP/1.0 404`).
fn status_code(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"HTTP/")?;
    let space = rest.iter().position(|&b| b == b' ')?;
    let version = &rest[..space];
    if version.is_empty() || !version.iter().all(|b| b.is_ascii_digit() || *b == b'.') {
        return None;
    }
    let after = &rest[space + 1..];
    let digits = after.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) || after.get(3).is_some_and(|&b| b != b' ') {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// An I/O error as a short reason: "connection refused", not "Connection refused (os error
/// 111)".
fn reason(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => &text[..at],
        _ => &text,
    };
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && second.is_lowercase() => first
            .to_lowercase()
            .chain(text[first.len_utf8()..].chars())
            .collect(),
        _ => text.to_owned(),
    }
}

/// The children of exec probes that are not reaped yet, each with where its exit goes.
///
/// Shared (a clone is the same set) between the probes, which add their children, and the
/// reaper, which must offer every pid it reaps to [`ProbeChildren::reaped`] before taking it
/// for an orphan. Without that, an exec probe never learns its child's exit: it times out.
#[derive(Debug, Clone, Default)]
pub struct ProbeChildren {
    waiting: Arc<Mutex<HashMap<Pid, oneshot::Sender<ExitStatus>>>>,
}

impl ProbeChildren {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// For the reaper, with each pid it reaped: whether it was a probe's child. If so its
    /// status went to the probe (or nowhere, if the probe was dropped), and what is left of
    /// its process group is killed, so a probe never leaves processes behind. (That group
    /// has other members, so its id is not free; or it has none and the signal finds none.
    /// Only a pid reused in between, which takes a wrap of the pid space, could be hit.)
    pub fn reaped(&self, pid: Pid, status: ExitStatus) -> bool {
        let Some(waiter) = self.lock().remove(&pid) else {
            return false;
        };
        let _ = tend_os::signal_group(pid, Signal::Kill);
        let _ = waiter.send(status);
        true
    }

    /// How many probe children are not reaped yet.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether every probe child has been reaped.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Pid, oneshot::Sender<ExitStatus>>> {
        // The map stays consistent whatever panicked while holding it.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Spawns `argv` for a probe and registers it, under the lock (see the module doc).
    fn spawn(&self, argv: &[String], ctx: &ProbeContext) -> Result<ProbeChild, String> {
        let null = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| format!("cannot open /dev/null: {}", reason(&e)))?;
        // stdout and stderr to /dev/null over spawn's pipes (stdin is /dev/null already), so
        // a probe that writes is not killed by SIGPIPE once the pipes' read ends are dropped.
        let mut actions = vec![
            ChildAction::Dup2 {
                from: null.as_fd(),
                to: 1,
            },
            ChildAction::Dup2 {
                from: null.as_fd(),
                to: 2,
            },
        ];
        // Then, privilege dropped last, who the process is: a check must not run as tend's
        // user (root) when its process runs as another.
        if let Some(spec) = &ctx.runs_as {
            actions.extend(super::identity_actions(spec));
        }
        // The working directory last, as that user (as the process's own spawn does).
        actions.extend(ctx.cwd.as_deref().map(ChildAction::Chdir));
        let cmd = Command {
            argv,
            cwd: None,
            env: &ctx.env,
            actions: &actions,
        };
        let mut waiting = self.lock();
        let child = tend_os::spawn(&cmd).map_err(|e| {
            let what = e
                .path
                .as_ref()
                .map_or(String::new(), |p| format!(" {}", p.display()));
            format!("cannot run: {}{what}: {}", e.op, reason(&e.source))
        })?;
        let (tx, rx) = oneshot::channel();
        waiting.insert(child.pid, tx);
        Ok(ProbeChild {
            pid: child.pid,
            exit: rx,
            done: None,
            killed: false,
        })
    }
}

/// A running probe child: its group is killed on drop unless its exit was seen.
struct ProbeChild {
    pid: Pid,
    exit: oneshot::Receiver<ExitStatus>,
    /// What [`ProbeChild::exit`] returns once the receiver has given it (it must not be
    /// polled again).
    done: Option<Result<ExitStatus, String>>,
    killed: bool,
}

/// The reason when the reaper's side of a child is gone without its exit.
const LOST: &str = "its exit was lost: the reaper's record of it is gone";

impl ProbeChild {
    /// Waits until the reaper hands over the exit.
    async fn exit(&mut self) -> Result<ExitStatus, String> {
        if let Some(done) = &self.done {
            return done.clone();
        }
        let result = (&mut self.exit).await.map_err(|_| LOST.to_owned());
        self.done = Some(result.clone());
        result
    }

    /// SIGKILL to the whole group, while the leader is unreaped (its id cannot be reused).
    fn kill(&mut self) {
        if self.killed || self.done.is_some() {
            return;
        }
        self.killed = true;
        match self.exit.try_recv() {
            Err(oneshot::error::TryRecvError::Empty) => {
                let _ = tend_os::signal_group(self.pid, Signal::Kill);
            }
            // Reaped meanwhile, and the rest of its group killed then.
            Ok(status) => self.done = Some(Ok(status)),
            Err(oneshot::error::TryRecvError::Closed) => self.done = Some(Err(LOST.to_owned())),
        }
    }
}

impl Drop for ProbeChild {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> HttpUrl {
        HttpUrl::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn urls_are_taken_apart() {
        let u = url("http://localhost:8080/health?full=1#top");
        assert_eq!(
            (
                u.host.as_str(),
                u.port,
                u.authority.as_str(),
                u.path.as_str()
            ),
            ("localhost", 8080, "localhost:8080", "/health?full=1")
        );
        let u = url("http://127.0.0.1");
        assert_eq!(
            (u.port, u.path.as_str(), u.authority.as_str()),
            (80, "/", "127.0.0.1")
        );
        let u = url("HTTP://[::1]:9000?x");
        assert_eq!(
            (
                u.host.as_str(),
                u.port,
                u.authority.as_str(),
                u.path.as_str()
            ),
            ("::1", 9000, "[::1]:9000", "/?x")
        );
        let u = url("http://[fe80::1]/a%20b");
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("fe80::1", 80, "/a%20b")
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (text, says) in [
            ("https://example.com/", "https is not supported"),
            ("ftp://example.com/", "not an http:// URL"),
            ("localhost:80", "not an http:// URL"),
            ("http:///path", "no host"),
            ("http://:80/", "no host"),
            ("http://user@host/", "user name"),
            ("http://[::1/", "closing ]"),
            ("http://[nope]/", "not an IPv6 address"),
            ("http://[::1]x/", "bad host"),
            ("http://::1/", "in brackets"),
            ("http://a b/", "bad host"),
            ("http://host:0/", "bad port"),
            ("http://host:65536/", "bad port"),
            ("http://host:+80/", "bad port"),
            ("http://host:/", "bad port"),
            ("http://host/a b", "percent-encoded"),
            ("http://host/a\r\nX: y", "percent-encoded"),
            ("http://host/caf\u{e9}", "percent-encoded"),
        ] {
            let err = HttpUrl::parse(text).expect_err(text);
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn the_final_status_is_found_in_what_was_read() {
        assert_eq!(final_status(b"HTTP/1.1 200 OK\r\n"), Head::Status(200));
        assert_eq!(final_status(b"HTTP/1.0 503\n"), Head::Status(503));
        assert_eq!(final_status(b"HTTP/2 204 \r\nx"), Head::Status(204));
        assert_eq!(final_status(b""), Head::Partial);
        assert_eq!(final_status(b"HTT"), Head::Partial);
        assert_eq!(final_status(b"HTTP/1.1 200 O"), Head::Partial);
        assert_eq!(
            final_status(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 404 No\r\n"),
            Head::Status(404)
        );
        assert_eq!(
            final_status(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2"),
            Head::Partial
        );
        assert_eq!(
            final_status(b"HTTP/1.1 103 Hints\r\nLink: x\r\n"),
            Head::Partial
        );
        for garbage in [
            &b"SSH-2.0-OpenSSH\r\n"[..],
            b"hello",
            b"HTTP/1.1 20 OK\r\n",
            b"HTTP/1.1 2000 OK\r\n",
            b"HTTP/1.1 abc OK\r\n",
            b"HTTP/x 200 OK\r\n",
            b"HTTP/ 200 OK\r\n",
            b"HTTP/1.1  200 OK\r\n",
            b"\r\n",
        ] {
            assert_eq!(final_status(garbage), Head::NotHttp, "{garbage:?}");
        }
    }

    #[test]
    fn io_errors_read_as_short_reasons() {
        let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(reason(&refused), "connection refused");
        let custom = io::Error::other("TLS went wrong");
        assert_eq!(reason(&custom), "TLS went wrong");
    }

    #[test]
    fn exits_read_as_short_reasons() {
        assert_eq!(describe_exit(ExitStatus::Code(0)), Ok(()));
        assert_eq!(
            describe_exit(ExitStatus::Code(3)),
            Err("exit code 3".into())
        );
        assert_eq!(
            describe_exit(ExitStatus::Signaled(libc::SIGKILL)),
            Err("killed by SIGKILL".into())
        );
    }

    #[test]
    fn a_try_is_a_future_the_driver_can_spawn() {
        fn send<T: Send>(_: &T) {}
        let ctx = ProbeContext {
            cwd: None,
            env: Vec::new(),
            children: ProbeChildren::new(),
            runs_as: None,
        };
        let probe = Probe::Tcp("127.0.0.1:1".into());
        let fut = try_once(&probe, Duration::from_secs(1), &ctx);
        send(&fut);
    }

    /// A child record for no process: i32::MAX is above every pid_max.
    fn unborn(exit: oneshot::Receiver<ExitStatus>) -> ProbeChild {
        ProbeChild {
            pid: i32::MAX,
            exit,
            done: None,
            killed: false,
        }
    }

    #[tokio::test]
    async fn an_exit_that_arrives_as_the_timeout_kills_is_kept_not_polled_twice() {
        let (tx, rx) = oneshot::channel();
        let mut child = unborn(rx);
        tx.send(ExitStatus::Code(0)).unwrap();
        child.kill();
        assert_eq!(child.exit().await, Ok(ExitStatus::Code(0)));
        assert_eq!(child.exit().await, Ok(ExitStatus::Code(0)));

        let (tx, rx) = oneshot::channel::<ExitStatus>();
        let mut child = unborn(rx);
        drop(tx);
        child.kill();
        assert_eq!(child.exit().await, Err(LOST.to_owned()));
    }

    #[test]
    fn a_pid_not_of_a_probe_is_left_to_the_reaper() {
        let children = ProbeChildren::new();
        assert!(!children.reaped(12345, ExitStatus::Code(0)));
        assert!(children.is_empty());
    }
}
