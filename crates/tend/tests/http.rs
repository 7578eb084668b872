//! End to end: the HTTP API of the real binary (`[http] listen` on a free loopback port),
//! spoken to with plain HTTP/1.1 over a TCP socket, so that every header (a forged `Host`, a
//! foreign `Origin`) is the test's to choose: every endpoint, every refusal (and that a
//! refused request changed nothing), the event stream against the socket's, and the drain on
//! SIGTERM.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use common::daemon::Daemon;
use common::*;

const CONFIG: &str = r#"
[http]
listen = "127.0.0.1:0"

[process.web]
command = ["sh", "-c", "echo web says hi; exec sleep 1000"]
replicas = 2

[process.idle]
command = ["sleep", "1000"]
autostart = false
"#;

/// The API of a daemon: its address and token, from `tend http-url`.
struct Api {
    addr: SocketAddr,
    token: String,
}

impl Api {
    fn of(d: &Daemon) -> Api {
        let ran = d.tend(&["http-url"]);
        assert_eq!(ran.code, Some(0), "{ran:?}");
        let url = ran.stdout.trim();
        let rest = url.strip_prefix("http://").expect("an http URL");
        let (addr, query) = rest.split_once("/?token=").expect("the token in the URL");
        Api {
            addr: addr.parse().expect("an address"),
            token: query.to_owned(),
        }
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// A request with our Host and the token in the header.
    fn call(&self, method: &str, path: &str, body: &str) -> Reply {
        let host = self.addr.to_string();
        let auth = self.auth();
        self.raw(
            method,
            path,
            &[("Host", &host), ("Authorization", &auth)],
            body,
        )
    }

    /// A request with exactly these headers (plus `Content-Length` and `Connection: close`).
    fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        stream
            .set_read_timeout(Some(PATIENCE))
            .expect("read timeout");
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ));
        stream.write_all(head.as_bytes()).expect("send");
        let mut text = String::new();
        stream.read_to_string(&mut text).expect("read the reply");
        Reply::parse(&text)
    }
}

/// An HTTP reply: status, headers (names lower-cased), body (de-chunked).
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn parse(text: &str) -> Reply {
        let (head, body) = text.split_once("\r\n\r\n").expect("a head");
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v == "chunked");
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").expect("a chunk size");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex");
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

fn pid(d: &Daemon, name: &str) -> u64 {
    d.instance(name)["pid"].as_u64().expect("a pid")
}

#[test]
fn every_endpoint_does_what_the_socket_does() {
    let d = Daemon::start(CONFIG);
    d.wait_state("web.0", "running");
    d.wait_state("web.1", "running");
    let api = Api::of(&d);

    let status = api.call("GET", "/api/status", "");
    assert_eq!(status.status, 200, "{status:?}");
    assert_eq!(status.header("content-type"), Some("application/json"));
    let names: Vec<String> = status.json()["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["web.0", "web.1", "idle.0"]);
    let one = api.call("GET", "/api/status?names=web.1", "").json();
    assert_eq!(one["instances"].as_array().unwrap().len(), 1);
    assert!(one["instances"][0]["rss_bytes"].as_u64().unwrap() > 0);

    let before = pid(&d, "web.1");
    let restarted = api.call("POST", "/api/restart", r#"{"names":["web.1"]}"#);
    assert_eq!(restarted.status, 200, "{restarted:?}");
    assert_ne!(pid(&d, "web.1"), before);
    assert_eq!(
        restarted.json()["instances"][0]["pid"].as_u64(),
        Some(pid(&d, "web.1"))
    );

    let started = api.call("POST", "/api/start", r#"{"names":["idle"]}"#);
    assert_eq!(started.status, 200, "{started:?}");
    assert_eq!(d.instance("idle.0")["state"], "running");
    let stopped = api.call("POST", "/api/stop", r#"{"names":["idle"]}"#);
    assert_eq!(stopped.status, 200, "{stopped:?}");
    assert_eq!(d.instance("idle.0")["state"], "stopped");

    let signalled = api.call(
        "POST",
        "/api/signal",
        r#"{"signal":"USR1","names":["idle"]}"#,
    );
    assert_eq!(signalled.status, 200, "{signalled:?}");
    assert_eq!(signalled.json()["signalled"], serde_json::json!([]));

    let unknown = api.call("POST", "/api/start", r#"{"names":["nope"]}"#);
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert_eq!(unknown.json()["error"]["code"], "unknown_name");
    let bad = api.call("POST", "/api/start", r#"{"names":"web","colour":1}"#);
    assert_eq!(bad.status, 400, "{bad:?}");

    let logs = api.call("GET", "/api/logs?names=web.0&lines=5", "");
    assert_eq!(logs.status, 200, "{logs:?}");
    let lines = logs.json()["lines"].as_array().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l["line"] == "web says hi" && l["instance"] == "web.0"),
        "{lines:?}"
    );

    let reloaded = api.call("POST", "/api/reload", "");
    assert_eq!(reloaded.status, 200, "{reloaded:?}");
    assert_eq!(
        reloaded.json()["unchanged"],
        serde_json::json!(["web", "idle"])
    );

    let plan = api.call("POST", "/api/reload", r#"{"dry_run":true}"#);
    assert_eq!(plan.status, 200, "{plan:?}");
    assert_eq!(plan.json()["dry_run"], true);
    let scaled = api.call("POST", "/api/scale", r#"{"replicas":{"idle":2}}"#);
    assert_eq!(scaled.status, 200, "{scaled:?}");
    assert_eq!(
        scaled.json()["scaled"],
        serde_json::json!([{"process":"idle","from":1,"to":2}])
    );
    let bad_scale = api.call("POST", "/api/scale", r#"{"replicas":{"idle.0":2}}"#);
    assert_eq!(bad_scale.status, 400, "{bad_scale:?}");

    let missing = api.call("GET", "/api/nothing", "");
    assert_eq!(missing.status, 404);

    let down = api.call("POST", "/api/down", "");
    assert_eq!(down.status, 202, "{down:?}");
    assert_eq!(down.json()["stopping"], true);
    d.wait_gone();
}

#[test]
fn each_refusal_is_a_4xx_that_changes_nothing() {
    let d = Daemon::start(CONFIG);
    d.wait_state("web.0", "running");
    let api = Api::of(&d);
    let host = api.addr.to_string();
    let auth = api.auth();
    let body = r#"{"names":["web.0"]}"#;
    let before = pid(&d, "web.0");
    let cookie = format!("token={}", api.token);
    // What is wrong, the method, the headers, the status, and what the answer says.
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        ("no token", "POST", vec![("Host", &host)], 401, "no token"),
        (
            "a wrong token",
            "POST",
            vec![
                ("Host", &host),
                ("Authorization", "Bearer 0123456789abcdef"),
            ],
            401,
            "wrong token",
        ),
        (
            "a forged Host (DNS rebinding)",
            "POST",
            vec![("Host", "evil.example:80"), ("Authorization", &auth)],
            403,
            "does not name this server",
        ),
        (
            "a foreign Origin",
            "POST",
            vec![
                ("Host", &host),
                ("Authorization", &auth),
                ("Origin", "http://evil.example"),
            ],
            403,
            "are refused",
        ),
        (
            "GET for a state change",
            "GET",
            vec![("Host", &host), ("Authorization", &auth)],
            405,
            "send it as POST",
        ),
        (
            "a cookie alone",
            "POST",
            vec![("Host", &host), ("Cookie", &cookie)],
            401,
            "no token",
        ),
    ];
    for (what, method, headers, status, says) in cases {
        let reply = api.raw(method, "/api/restart", &headers, body);
        assert_eq!(reply.status, status, "{what}: {reply:?}");
        assert!(reply.body.contains(says), "{what}: {reply:?}");
    }
    // The token in the address works for reads, never for a change.
    let token_path = format!("/api/restart?token={}", api.token);
    let reply = api.raw("POST", &token_path, &[("Host", &host)], body);
    assert_eq!(reply.status, 401, "{reply:?}");
    let read = api.raw(
        "GET",
        &format!("/api/status?token={}", api.token),
        &[("Host", &host)],
        "",
    );
    assert_eq!(read.status, 200, "{read:?}");
    // A read without the token is refused too, and says how to get one.
    let read = api.raw("GET", "/api/status", &[("Host", &host)], "");
    assert_eq!(read.status, 401, "{read:?}");
    assert_eq!(read.header("www-authenticate"), Some("Bearer"));
    assert!(read.body.contains("tend http-url"), "{read:?}");
    // Nothing was restarted by any of them.
    assert_eq!(pid(&d, "web.0"), before);
    assert_eq!(d.instance("web.0")["restarts"], 0);
}

#[test]
fn a_configured_token_file_is_the_token_and_a_bad_one_stops_the_start() {
    let token = "correct-horse-battery-staple";
    let dir = project(&CONFIG.replace(
        "listen = \"127.0.0.1:0\"",
        "listen = \"127.0.0.1:0\"\ntoken_file = \"token\"",
    ));
    std::fs::write(dir.path().join("token"), format!("{token}\n")).unwrap();
    let d = Daemon::start_in(dir);
    d.wait_state("web.0", "running");
    let api = Api::of(&d);
    assert_eq!(api.token, token);
    assert_eq!(api.call("GET", "/api/status", "").status, 200);
    // The record tend http-url reads is 0600.
    let record = std::fs::read_dir(d.path(""))
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with(".http"))
        .expect("the runtime record beside the socket");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        record.metadata().unwrap().permissions().mode() & 0o777,
        0o600
    );
    // A token too short to be one: the start fails and says why; nothing runs.
    let dir = project(&CONFIG.replace(
        "listen = \"127.0.0.1:0\"",
        "listen = \"127.0.0.1:0\"\ntoken_file = \"token\"",
    ));
    std::fs::write(dir.path().join("token"), "short\n").unwrap();
    let mut cmd = std::process::Command::new(tend_bin());
    cmd.arg("--socket")
        .arg(dir.path().join("tend.sock"))
        .args(["up", "-d"])
        .current_dir(dir.path());
    let ran = run_with_deadline(cmd);
    assert_ne!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stderr.contains("at least 16 characters"), "{ran:?}");
    assert!(
        !dir.path().join(".tend/logs/web.0.log").exists(),
        "nothing started"
    );
    assert!(
        !dir.path().join("tend.sock").exists(),
        "no socket left behind"
    );
}

#[test]
fn the_page_and_the_document_need_the_token_and_a_huge_body_is_refused() {
    let d = Daemon::start(CONFIG);
    d.wait_state("web.0", "running");
    let api = Api::of(&d);
    let host = api.addr.to_string();
    let page = api.raw("GET", "/", &[("Host", &host)], "");
    assert_eq!(page.status, 401, "{page:?}");
    let page = api.call("GET", "/", "");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = page.header("content-security-policy").expect("a CSP");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    let doc = api.call("GET", "/openapi.json", "");
    assert_eq!(doc.status, 200);
    assert!(doc.json()["paths"]["/api/restart"]["post"].is_object());
    // A body over 64 KiB: refused, nothing done.
    let names: Vec<String> = (0..20_000).map(|n| format!("web.{n}")).collect();
    let body = serde_json::json!({ "names": names }).to_string();
    assert!(body.len() > 64 * 1024);
    let reply = api.call("POST", "/api/stop", &body);
    assert_eq!(reply.status, 413, "{}", reply.status);
    assert_eq!(d.instance("web.0")["state"], "running");
}

/// The events of a Server-Sent Events stream, one `data:` line each.
struct Events {
    reader: BufReader<TcpStream>,
}

impl Events {
    fn new(stream: TcpStream) -> Events {
        Events {
            reader: BufReader::new(stream),
        }
    }

    /// The next event, or `None` when none came within `wait` (or the stream ended).
    fn next(&mut self, wait: std::time::Duration) -> Option<serde_json::Value> {
        self.reader
            .get_ref()
            .set_read_timeout(Some(wait.max(std::time::Duration::from_millis(1))))
            .expect("read timeout");
        let mut line = String::new();
        loop {
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                // Chunk sizes and blank lines go by; each event is one `data:` line.
                Ok(_) => {
                    if let Some(json) = line.trim_end().strip_prefix("data: ") {
                        return Some(serde_json::from_str(json).expect("an event as JSON"));
                    }
                }
            }
        }
    }

    /// Events until `done` says so, within [`PATIENCE`].
    fn until(
        &mut self,
        mut done: impl FnMut(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + PATIENCE;
        let mut events = Vec::new();
        while !done(&events) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "events so far: {events:?}");
            if let Some(event) = self.next(left) {
                events.push(event);
            }
        }
        events
    }
}

/// One JSON value per line.
fn parse_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("an event as JSON"))
        .collect()
}

fn open_stream(api: &Api, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(api.addr).expect("connect");
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\r\n",
        api.addr,
        api.auth()
    );
    stream.write_all(head.as_bytes()).expect("send");
    stream
}

#[test]
fn the_event_stream_is_the_sockets_in_order_through_a_restart_storm() {
    let d = Daemon::start(CONFIG);
    d.wait_state("web.0", "running");
    let api = Api::of(&d);
    let mut sse = Events::new(open_stream(&api, "/api/events?names=web.0"));
    let socket = Running::start(d.command(&["events", "--json", "web.0"]));
    // Both streams are on once each has shown a reload (tend's own events go to every
    // stream): reload until they have.
    let deadline = Instant::now() + PATIENCE;
    let (mut on_http, mut on_socket) = (false, false);
    while !(on_http && on_socket) {
        assert!(
            Instant::now() < deadline,
            "the streams never both showed a reload"
        );
        assert_eq!(d.tend(&["reload"]).code, Some(0));
        let settle = Instant::now() + std::time::Duration::from_millis(500);
        while let Some(event) = sse.next(settle.saturating_duration_since(Instant::now())) {
            on_http |= event["event"] == "reloaded";
            if on_http {
                break;
            }
        }
        while !on_socket && Instant::now() < settle {
            on_socket = socket.printed().stdout.contains(r#""event":"reloaded""#);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    // Any other reload event still on its way is skipped below: compare from the storm on.
    let storm = |events: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
        events
            .into_iter()
            .filter(|e| e["event"] != "reloaded")
            .collect()
    };
    let restarts = 20;
    for _ in 0..restarts {
        let ran = d.tend(&["restart", "--no-wait", "web.0"]);
        assert_eq!(ran.code, Some(0), "{ran:?}");
    }
    d.wait_state("web.0", "running");
    // Restarts asked for while one is under way join it: count the spawns there were (every
    // one after the first, which came before the streams began).
    let spawns = d.instance("web.0")["restarts"].as_u64().unwrap() as usize;
    assert!(spawns >= 1, "the storm restarted web.0");
    let spawned =
        |events: &[serde_json::Value]| events.iter().filter(|e| e["event"] == "spawned").count();
    let over_http = storm(sse.until(|events| {
        spawned(events) >= spawns && events.last().is_some_and(|e| e["event"] == "running")
    }));
    eventually("the socket's stream to catch up", || {
        spawned(&parse_lines(&socket.printed().stdout)) >= spawns
    });
    let over_socket = storm(parse_lines(&socket.printed().stdout));
    assert_eq!(spawned(&over_http), spawns, "{over_http:?}");
    assert_eq!(over_http, over_socket[..over_http.len()]);
    // In order: each spawn after the exit before it, each exit after its stop.
    let kinds: Vec<&str> = over_http
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    let mut alive = true;
    for kind in &kinds {
        match *kind {
            "exited" => {
                assert!(alive, "two exits in a row: {kinds:?}");
                alive = false;
            }
            "spawned" => {
                assert!(!alive, "a spawn before the exit: {kinds:?}");
                alive = true;
            }
            _ => {}
        }
    }
}

#[test]
fn a_request_in_flight_at_sigterm_completes_while_new_connections_are_refused() {
    let d = Daemon::start(CONFIG);
    d.wait_state("web.0", "running");
    let api = Api::of(&d);
    // A request whose body is not all sent yet: in flight.
    let mut slow = TcpStream::connect(api.addr).expect("connect");
    slow.set_read_timeout(Some(PATIENCE)).unwrap();
    let body = r#"{"signal":"USR1","names":["web.0"]}"#;
    let head = format!(
        "POST /api/signal HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Length: {}\r\n\r\n",
        api.addr,
        api.auth(),
        body.len()
    );
    slow.write_all(head.as_bytes()).unwrap();
    slow.write_all(&body.as_bytes()[..5]).unwrap();
    // An idle event stream, which must end cleanly.
    let sse = open_stream(&api, "/api/events");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    eventually("new connections refused", || {
        TcpStream::connect(api.addr).is_err()
    });
    // The request in flight is still served.
    slow.write_all(&body.as_bytes()[5..]).unwrap();
    let mut text = String::new();
    slow.read_to_string(&mut text).expect("the reply");
    let reply = Reply::parse(&text);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["signalled"], serde_json::json!(["web.0"]));
    // The event stream ended: its last chunk, then the end of the connection.
    let mut rest = String::new();
    let mut sse = sse;
    sse.set_read_timeout(Some(PATIENCE)).unwrap();
    sse.read_to_string(&mut rest).expect("the stream's end");
    assert!(
        rest.ends_with("0\r\n\r\n"),
        "a clean end of the chunked body: {rest:?}"
    );
    d.wait_gone();
}

#[test]
fn check_says_where_the_api_listens() {
    let d = project("[http]\nlisten = \"127.0.0.1:9100\"\nmetrics_public = true\n\n[process.p]\ncommand = [\"true\"]\n");
    let mut cmd = std::process::Command::new(tend_bin());
    cmd.args(["check"]).current_dir(d.path());
    let ran = run_with_deadline(cmd);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(
        ran.stdout.contains("HTTP API: http://127.0.0.1:9100/ (this machine only), every request with a token made at each start (`tend http-url`); /metrics without the token"),
        "{ran:?}"
    );
    let mut cmd = std::process::Command::new(tend_bin());
    cmd.args(["check", "--json"]).current_dir(d.path());
    let ran = run_with_deadline(cmd);
    let doc: serde_json::Value = serde_json::from_str(&ran.stdout).expect("JSON");
    assert_eq!(doc["http"]["listen"], "127.0.0.1:9100");
    assert_eq!(doc["http"]["metrics_public"], true);
    assert_eq!(doc["processes"][0]["name"], "p");
}

#[test]
fn config_and_flag_errors_say_what_and_where() {
    let d = project("[http]\nlisten = \"0.0.0.0:9100\"\n\n[process.p]\ncommand = [\"true\"]\n");
    let mut cmd = std::process::Command::new(tend_bin());
    cmd.args(["check"]).current_dir(d.path());
    let ran = run_with_deadline(cmd);
    assert_eq!(ran.code, Some(78), "{ran:?}");
    assert!(
        ran.stderr
            .contains("tend.toml:2:10: http.listen: 0.0.0.0:9100 is not a loopback address")
            && ran.stderr.contains("allow_remote = true"),
        "{ran:?}"
    );
    let d = project("[process.p]\ncommand = [\"true\"]\n");
    let mut cmd = std::process::Command::new(tend_bin());
    cmd.args(["up", "--http", "10.1.2.3:80"])
        .current_dir(d.path());
    let ran = run_with_deadline(cmd);
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(
        ran.stderr
            .contains("--http 10.1.2.3:80 is not a loopback address"),
        "{ran:?}"
    );
    let mut cmd = std::process::Command::new(tend_bin());
    cmd.args(["up", "--http", "nonsense"]).current_dir(d.path());
    let ran = run_with_deadline(cmd);
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(
        ran.stderr.contains("is not an address to listen on"),
        "{ran:?}"
    );
    // A port in use: the start fails before anything runs, and says so.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let mut cmd = std::process::Command::new(tend_bin());
    cmd.arg("--socket")
        .arg(d.path().join("tend.sock"))
        .args(["up", "-d", "--http", &format!("127.0.0.1:{port}")])
        .current_dir(d.path());
    let ran = run_with_deadline(cmd);
    assert_ne!(ran.code, Some(0), "{ran:?}");
    assert!(
        ran.stderr
            .contains(&format!("listening for HTTP on 127.0.0.1:{port}")),
        "{ran:?}"
    );
}

/// Whether promtool is there: a missing one skips the test with its reason, or fails it where
/// `TEND_TEST_REQUIRE_TOOLS` is set (`.ci/run` installs Debian's prometheus and sets it).
fn have_promtool() -> bool {
    have("promtool", "promtool", &["--version"])
}

#[test]
fn live_metrics_pass_promtool_and_count_what_happened() {
    let d = Daemon::start(CONFIG);
    d.wait_state("web.0", "running");
    let api = Api::of(&d);
    let ran = d.tend(&["restart", "web.1"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let metrics = api.call("GET", "/metrics", "");
    assert_eq!(metrics.status, 200, "{metrics:?}");
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = &metrics.body;
    for line in [
        r#"tend_instance_up{process="web",instance="web.0"} 1"#,
        r#"tend_instance_up{process="idle",instance="idle.0"} 0"#,
        r#"tend_instance_restarts_total{process="web",instance="web.1"} 1"#,
        r#"tend_instance_restarts_total{process="web",instance="web.0"} 0"#,
        r#"tend_instance_last_exit_code{process="web",instance="web.1"} 143"#,
        r#"tend_instance_state{process="idle",instance="idle.0",state="stopped"} 1"#,
        r#"tend_instance_log_bytes_total{process="web",instance="web.0"} 12"#,
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
    let own = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
    };
    assert!(own("process_resident_memory_bytes") > 1e6);
    assert!(own("process_open_fds") >= 3.0);
    // Without the token: refused, unless metrics_public.
    let host = api.addr.to_string();
    assert_eq!(
        api.raw("GET", "/metrics", &[("Host", &host)], "").status,
        401
    );
    if have_promtool() {
        let file = d.path("metrics.txt");
        std::fs::write(&file, text).unwrap();
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg(format!("promtool check metrics < '{}'", file.display()));
        let ran = run_with_deadline(cmd);
        assert_eq!(ran.code, Some(0), "promtool check metrics: {ran:?}");
        assert!(
            ran.stdout.trim().is_empty() && ran.stderr.trim().is_empty(),
            "{ran:?}"
        );
    }
}

#[test]
fn metrics_public_waives_the_token_for_metrics_alone() {
    let d = Daemon::start(&CONFIG.replace(
        "listen = \"127.0.0.1:0\"",
        "listen = \"127.0.0.1:0\"\nmetrics_public = true",
    ));
    d.wait_state("web.0", "running");
    let api = Api::of(&d);
    let host = api.addr.to_string();
    let scrape = api.raw("GET", "/metrics", &[("Host", &host)], "");
    assert_eq!(scrape.status, 200, "{scrape:?}");
    assert!(scrape.body.contains("tend_instance_up"), "{scrape:?}");
    assert_eq!(
        api.raw("GET", "/api/status", &[("Host", &host)], "").status,
        401
    );
    let forged = api.raw("GET", "/metrics", &[("Host", "evil.example:80")], "");
    assert_eq!(forged.status, 403, "the Host check still holds: {forged:?}");
}

/// Whether headless Chromium can be driven here (chromium, chromedriver, selenium); see
/// `have_promtool` for what happens when not.
fn have_chromium() -> bool {
    have("headless Chromium", "chromium", &["--version"])
        && have("chromedriver", "chromedriver", &["--version"])
        && have("selenium", "python3", &["-c", "import selenium"])
}

#[test]
fn the_dashboard_in_chromium_lists_restarts_follows_logs_and_shows_markup_as_text() {
    if !have_chromium() {
        return;
    }
    let d = Daemon::start(
        r#"
[http]
listen = "127.0.0.1:0"

[process.web]
command = "echo \"web $TEND_INSTANCE started as $$\"; exec sleep 1000"
shell = true
replicas = 2

[process.evil]
command = """printf '%s\n' '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">'; exec sleep 1000"""
shell = true
"#,
    );
    d.wait_state("web.0", "running");
    d.wait_state("evil.0", "running");
    let url = d.tend(&["http-url"]).stdout.trim().to_owned();
    // Kept after the run: target/tmp/dashboard*.png.
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&shots).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/dashboard/check.py");
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(script).arg(&url).arg(&shots);
    let ran = try_run(cmd, std::time::Duration::from_secs(120))
        .expect("the browser check finished within 2 minutes");
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stdout.contains(r#"{"ok": true}"#), "{ran:?}");
    let restarted = d.instance("web.0");
    assert_eq!(restarted["restarts"], 1, "the click restarted web.0");
    for shot in ["dashboard.png", "dashboard-phone.png"] {
        let size = std::fs::metadata(shots.join(shot)).map_or(0, |m| m.len());
        assert!(size > 1000, "{shot}: {size} bytes");
    }
    eprintln!("screenshots: {}", shots.display());
}
