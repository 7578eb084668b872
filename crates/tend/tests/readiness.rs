//! End to end: readiness checks, health checks and dependencies against real processes (shells,
//! python3, systemd-notify, gunicorn), run by the real `tend` binary in the foreground.
//!
//! A process that is to become ready later waits for a file `go` that the test makes once it
//! has seen the process not ready (and what depends on it waiting), so no test races the clock.
//!
//! Already covered elsewhere, not repeated here: a dependency cycle and an unknown dependency
//! exit 78 with file:line:col (`config_errors.rs`); an essential process's exit ends tend with
//! its code and stops the others (`hardening.rs`).

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;
use serde_json::{json, Value};

/// `tend up ARGS…` in the foreground on `config`, once its control socket answers.
fn up(config: &str, args: &[&str]) -> Tend {
    up_in(project(config), args)
}

fn up_in(dir: tempfile::TempDir, args: &[&str]) -> Tend {
    let t = Tend::up_in(dir, args);
    t.wait_line("tend is up", |l| l.contains(" is up; control socket "));
    t
}

/// `tend -c CONFIG ARGS…` against the foreground tend `t`.
fn client(t: &Tend, args: &[&str]) -> Ran {
    let mut cmd = Command::new(tend_bin());
    cmd.arg("-c")
        .arg(t.path("tend.toml"))
        .args(args)
        .current_dir(t.dir.path())
        .env_remove("TEND_CONFIG")
        .env("NO_COLOR", "1");
    run_with_deadline(cmd)
}

/// The `tend status --json` entry of one instance.
fn instance(t: &Tend, name: &str) -> Value {
    let ran = client(t, &["status", "--json", name]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let all: Vec<Value> =
        serde_json::from_str(&ran.stdout).unwrap_or_else(|e| panic!("{e}: {:?}", ran.stdout));
    all.into_iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no instance {name} in {:?}", ran.stdout))
}

/// Waits until the status of `name` satisfies `pred`, within the deadline; returns it.
fn wait_status(t: &Tend, name: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let i = instance(t, name);
        if pred(&i) {
            return i;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never got {what}; last status: {i}\ntend printed:\n{}",
            t.transcript().join("\n")
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn wait_state(t: &Tend, name: &str, state: &str) -> Value {
    wait_status(t, name, &format!("state {state}"), |i| i["state"] == state)
}

/// The index of the first line that contains `text`.
fn line_of(lines: &[String], text: &str) -> usize {
    lines
        .iter()
        .position(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no line has {text:?}: {lines:#?}"))
}

/// Asserts that the first line with `a` comes before the first line with `b`.
fn before(lines: &[String], a: &str, b: &str) {
    assert!(
        line_of(lines, a) < line_of(lines, b),
        "{a:?} should come before {b:?}: {lines:#?}"
    );
}

/// A loopback port nothing listens on (bound, then released).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A GET of `/` on a loopback port; the whole answer.
fn http_get(port: u16) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}

/// A shell loop that waits until the file `go` exists.
const UNTIL_GO: &str = "until [ -e go ]; do sleep 0.02; done";

/// Runs `svc` (the body of its table: a command that is not ready before the file `go` exists,
/// and a `ready` check) with `after`, which depends on svc being ready and comes first in the
/// file. Until the test makes `go`, svc is `running` (spawned, not ready) and `after` is
/// `waiting` for it (checked before and after `before_go` looks at svc); then svc becomes
/// `ready`, and only then does `after` start. Returns tend, still running, for more checks.
fn ready_gates_a_dependent(svc: &str, before_go: impl FnOnce(&Tend)) -> Tend {
    let t = up(
        &format!(
            r#"
[process.after]
command = ["sleep", "1000"]
depends_on = {{ svc = "ready" }}

[process.svc]
{svc}
"#
        ),
        &[],
    );
    t.wait_line("after waits", |l| {
        l.contains("after.0 waiting for svc ready")
    });
    t.wait_line("svc started", |l| l.contains("svc.0 started (pid "));
    let not_ready_yet = |t: &Tend| {
        let svc = instance(t, "svc.0");
        assert_eq!(svc["state"], "running", "spawned, not ready: {svc}");
        let after = instance(t, "after.0");
        assert_eq!(after["state"], "waiting", "{after}");
        assert_eq!(
            after["waiting_for"],
            json!([{"process": "svc", "condition": "ready", "state": "running", "gave_up": false}]),
            "{after}"
        );
        let lines = t.transcript();
        assert!(
            !lines.iter().any(|l| l.contains("svc.0 is ready")),
            "svc is ready before `go`: {lines:#?}"
        );
    };
    not_ready_yet(&t);
    before_go(&t);
    not_ready_yet(&t);

    fs::write(t.path("go"), "").expect("writing go");
    t.wait_line("after started", |l| l.contains("after.0 started (pid "));
    let lines = t.transcript();
    before(&lines, "svc.0 is ready", "after.0 started");
    assert_eq!(t.child_pids().len(), 2, "one run each: {lines:#?}");
    assert_eq!(instance(&t, "svc.0")["state"], "ready");
    t
}

#[test]
fn systemd_notify_makes_a_process_ready_and_its_status_shows() {
    if !have("systemd-notify", "systemd-notify", &["--version"]) {
        return;
    }
    let t = ready_gates_a_dependent(
        &format!(
            r#"command = ["sh", "-c", "{UNTIL_GO}; systemd-notify --ready --status='accepting connections'; exec sleep 1000"]
ready = {{ notify = true }}"#
        ),
        |_| {},
    );
    let svc = instance(&t, "svc.0");
    assert_eq!(svc["notify_status"], "accepting connections", "{svc}");
}

/// An sd_notify client in python: STATUS= and MAINPID= at once, READY=1 once `go` exists.
const NOTIFY_LATER: &str = r#"
import os, socket, time
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
def notify(text):
    sock.sendto(text.encode(), addr)
notify("STATUS=warming up\nMAINPID=%d" % os.getpid())
while not os.path.exists("go"):
    time.sleep(0.02)
notify("READY=1\nSTATUS=serving")
time.sleep(1000)
"#;

#[test]
fn a_python_sd_notify_client_is_ready_when_it_says_ready_1() {
    let t = ready_gates_a_dependent(
        &format!(
            r#"command = ["python3", "-c", '''{NOTIFY_LATER}''']
ready = {{ notify = true }}"#
        ),
        |t| {
            // What it said before READY=1 shows, and is not readiness.
            let svc = wait_status(t, "svc.0", "STATUS=warming up", |i| {
                i["notify_status"] == "warming up"
            });
            assert_eq!(svc["main_pid"], svc["pid"], "{svc}");
        },
    );
    let svc = wait_status(&t, "svc.0", "STATUS=serving", |i| {
        i["notify_status"] == "serving"
    });
    assert_eq!(svc["state"], "ready", "{svc}");
}

#[test]
fn a_newline_on_the_notify_fd_makes_a_process_ready() {
    ready_gates_a_dependent(
        &format!(
            r#"command = ["sh", "-c", "{UNTIL_GO}; echo >&3; exec sleep 1000"]
ready = {{ notify_fd = 3 }}"#
        ),
        |_| {},
    );
}

#[test]
fn a_matching_log_line_makes_a_process_ready_and_another_line_does_not() {
    ready_gates_a_dependent(
        &format!(
            r#"command = ["sh", "-c", "echo booting; {UNTIL_GO}; echo listening on port 8080; exec sleep 1000"]
ready = {{ log_line = 'listening on port \d+' }}"#
        ),
        |t| {
            t.wait_line("the line that does not match", |l| {
                l.starts_with("svc.0") && l.ends_with("| booting")
            });
        },
    );
}

#[test]
fn a_tcp_listener_makes_a_process_ready() {
    let port = free_port();
    let t = ready_gates_a_dependent(
        &format!(
            r#"command = ["sh", "-c", """{UNTIL_GO}; exec python3 -c '
import socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", {port}))
s.listen()
time.sleep(1000)'"""]
ready = {{ tcp = "127.0.0.1:{port}", period = "100ms" }}"#
        ),
        |_| {},
    );
    if let Err(e) = TcpStream::connect(("127.0.0.1", port)) {
        panic!("{e}: {:#?}", t.transcript());
    }
}

#[test]
fn an_http_server_answering_2xx_makes_a_process_ready() {
    let port = free_port();
    let t = ready_gates_a_dependent(
        &format!(
            r#"command = ["sh", "-c", "{UNTIL_GO}; exec python3 -m http.server --bind 127.0.0.1 {port}"]
ready = {{ http = "http://127.0.0.1:{port}/", period = "100ms" }}"#
        ),
        |_| {},
    );
    let answer = http_get(port);
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    // The server logged the probe's request (HTTP/1.1; the test's own is HTTP/1.0).
    t.wait_line("the probe's request", |l| {
        l.starts_with("svc.0") && l.contains("\"GET / HTTP/1.1\" 200")
    });
}

#[test]
fn a_command_exiting_0_makes_a_process_ready() {
    ready_gates_a_dependent(
        r#"command = ["sleep", "1000"]
ready = { exec = ["sh", "-c", "echo try >> tries; test -e go"], period = "100ms" }"#,
        |t| {
            eventually("the probe failed twice", || {
                fs::read_to_string(t.path("tries")).is_ok_and(|s| s.lines().count() >= 2)
            });
        },
    );
}

/// A WSGI app for gunicorn.
const HELLO_APP: &str = r#"
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello from gunicorn\n"]
"#;

#[test]
fn gunicorn_is_ready_by_sd_notify_and_serves_what_depends_on_it() {
    if !have("gunicorn", "python3", &["-m", "gunicorn", "--version"]) {
        return;
    }
    let port = free_port();
    let dir = project(&format!(
        r#"
[process.client]
command = ["python3", "-c", """
import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode().strip())
""", "http://127.0.0.1:{port}/"]
restart = "never"
depends_on = {{ app = "ready" }}

[process.app]
command = ["python3", "-m", "gunicorn", "--bind", "127.0.0.1:{port}", "--workers", "1", "hello:app"]
ready = {{ notify = true, start_timeout = "30s" }}
"#
    ));
    fs::write(dir.path().join("hello.py"), HELLO_APP).expect("writing hello.py");
    let mut t = up_in(dir, &[]);
    t.wait_line("client exits", |l| l.contains("client.0 exited"));
    t.wait_line("client's answer", |l| {
        l.starts_with("client.0") && l.ends_with("| hello from gunicorn")
    });
    let lines = t.transcript();
    before(&lines, "app.0 is ready", "client.0 started");
    t.assert_printed("client.0 exited with status 0; now exited");
    let app = instance(&t, "app.0");
    assert_eq!(app["state"], "ready", "{app}");
    assert_eq!(app["notify_status"], "Gunicorn arbiter booted", "{app}");
    assert!(http_get(port).ends_with("hello from gunicorn\n"));

    let app_pid = app["pid"].as_i64().unwrap() as i32;
    let workers = descendants(app_pid);
    assert!(!workers.is_empty(), "gunicorn forks a worker");
    t.signal(Signal::SIGTERM);
    assert_eq!(t.wait_exit().code(), Some(0), "{:#?}", t.transcript());
    for pid in workers.into_iter().chain([app_pid]) {
        assert!(!is_running(pid), "{pid} survived");
    }
}

/// An sd_notify client with a watchdog: READY=1 (once the file `go` exists, with `argv[2]` =
/// `after-go`), then WATCHDOG=1 five times per `WATCHDOG_USEC`, `argv[1]` times (forever if
/// negative), then nothing while it lives on.
const WATCHDOG_CLIENT: &str = r#"
import os, socket, sys, time
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
assert os.environ["WATCHDOG_PID"] == str(os.getpid()), os.environ["WATCHDOG_PID"]
every = int(os.environ["WATCHDOG_USEC"]) / 1e6 / 5
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
while sys.argv[2:] == ["after-go"] and not os.path.exists("go"):
    time.sleep(0.02)
sock.sendto(b"READY=1", addr)
pings = int(sys.argv[1])
while pings != 0:
    time.sleep(every)
    sock.sendto(b"WATCHDOG=1", addr)
    pings -= 1
print("no more pings", flush=True)
time.sleep(1000)
"#;

#[test]
fn a_missed_watchdog_restarts_and_a_kept_one_stays_up() {
    let dir = project(
        r#"
[process.quiet]
command = ["python3", "watchdog.py", "3"]
ready = { notify = true, watchdog = "1s" }
backoff = { initial = "50ms" }

[process.steady]
command = ["python3", "watchdog.py", "-1"]
ready = { notify = true, watchdog = "1s" }
"#,
    );
    fs::write(dir.path().join("watchdog.py"), WATCHDOG_CLIENT).expect("writing watchdog.py");
    let t = up_in(dir, &[]);
    let first = t.wait_line("quiet started", |l| l.contains("quiet.0 started (pid "));
    let first = started_pid(&first).unwrap();
    let failed = t.wait_line("the missed watchdog", |l| {
        l.contains("quiet.0 failed a check")
    });
    assert!(failed.contains("(no WATCHDOG=1 within 1s)"), "{failed}");
    let second = t.wait_lines(2, "quiet restarted", |l| {
        l.contains("quiet.0 started (pid ")
    });
    let second = started_pid(&second[1]).unwrap();
    assert_ne!(first, second);
    let lines = t.transcript();
    let quiet_said = lines
        .iter()
        .position(|l| l.starts_with("quiet.0") && l.ends_with("| no more pings"))
        .unwrap_or_else(|| panic!("quiet.0 never said it stopped pinging: {lines:#?}"));
    assert!(
        quiet_said < line_of(&lines, "quiet.0 failed a check"),
        "{lines:#?}"
    );
    wait_status(&t, "quiet.0", "a restart", |i| {
        i["restarts"].as_u64() >= Some(1)
            && i["pid"].as_i64().is_some_and(|p| p != i64::from(first))
    });

    // The steady one, up since the start, has pinged through several watchdog intervals.
    let steady = wait_status(&t, "steady.0", "3s up, or a restart", |i| {
        i["uptime_ms"].as_u64() >= Some(3000) || i["restarts"] != 0
    });
    assert_eq!(steady["restarts"], 0, "{steady}");
    assert_eq!(steady["state"], "ready", "{steady}");
    let lines = t.transcript();
    assert!(
        !lines.iter().any(|l| l.contains("steady.0 failed a check")),
        "{lines:#?}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("steady.0 started"))
            .count(),
        1,
        "{lines:#?}"
    );
}

#[test]
fn a_process_never_ready_fails_by_its_start_timeout() {
    let port = free_port();
    let t = up(
        &format!(
            r#"
[process.never]
command = ["sleep", "1000"]
ready = {{ tcp = "127.0.0.1:{port}", period = "100ms", start_timeout = "500ms" }}
backoff = {{ initial = "50ms" }}
max_restarts = {{ count = 1, within = "60s" }}
"#
        ),
        &[],
    );
    t.wait_line("giving up", |l| {
        l.contains("never.0") && l.contains("giving up")
    });
    let never = wait_state(&t, "never.0", "failed");
    assert_eq!(never["restarts"], 1, "{never}");
    let lines = t.transcript();
    let why: Vec<&String> = lines
        .iter()
        .filter(|l| {
            l.contains(
                "never.0 failed a check (not ready within its start_timeout of 500ms): \
                 stopping it",
            )
        })
        .collect();
    assert_eq!(why.len(), 2, "the first run and one restart: {lines:#?}");
    assert_eq!(t.child_pids().len(), 2, "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("never.0 is ready")));
}

/// Each process of the chain appends `start NAME` to the file `order` when it starts, and
/// `stop NAME` when SIGTERM stops it.
const MARKER: &str = r#"echo "start $1" >> order
trap 'echo "stop $1" >> order; exit 0' TERM
if [ -n "$2" ]; then echo "$2"; fi
sleep 1000 &
wait
"#;

#[test]
fn a_chain_starts_in_dependency_order_and_stops_in_reverse() {
    // Written against the order of the file: the dependents come first.
    let dir = project(
        r#"
[process.worker]
command = ["sh", "marker.sh", "worker"]
depends_on = { web = "ready" }

[process.web]
command = ["sh", "marker.sh", "web", "listening"]
ready = { log_line = "^listening$" }
depends_on = { migrate = "completed", db = "ready" }

[process.migrate]
command = ["sh", "-c", "echo 'start migrate' >> order"]
restart = "on-failure"
depends_on = { db = "ready" }

[process.db]
command = ["sh", "marker.sh", "db", "accepting connections"]
ready = { log_line = "accepting connections" }
"#,
    );
    fs::write(dir.path().join("marker.sh"), MARKER).expect("writing marker.sh");
    let mut t = up_in(dir, &[]);
    t.wait_line("worker started", |l| l.contains("worker.0 started (pid "));
    let lines = t.transcript();
    before(&lines, "db.0 is ready", "migrate.0 started");
    before(
        &lines,
        "migrate.0 exited with status 0; now exited",
        "web.0 started",
    );
    before(&lines, "web.0 is ready", "worker.0 started");
    // worker has no readiness check: it counts as ready once it has been up for start_secs.
    wait_state(&t, "worker.0", "running");

    t.signal(Signal::SIGTERM);
    assert_eq!(t.wait_exit().code(), Some(0), "{:#?}", t.transcript());
    let lines = t.transcript();
    // Each is stopped only once what depends on it has exited.
    before(&lines, "worker.0 exited", "web.0 stopping (SIGTERM sent)");
    before(&lines, "web.0 exited", "db.0 stopping (SIGTERM sent)");
    let order = fs::read_to_string(t.path("order")).expect("reading order");
    assert_eq!(
        order.lines().collect::<Vec<_>>(),
        [
            "start db",
            "start migrate",
            "start web",
            "start worker",
            "stop worker",
            "stop web",
            "stop db"
        ],
        "{lines:#?}"
    );
}

#[test]
fn independent_processes_start_in_parallel() {
    let t = up(
        r#"
[process.a]
command = ["sh", "-c", "sleep 1; echo up; exec sleep 1000"]
ready = { log_line = "^up$" }

[process.b]
command = ["sh", "-c", "sleep 1; echo up; exec sleep 1000"]
ready = { log_line = "^up$" }
"#,
        &[],
    );
    t.wait_line("a ready", |l| l.contains("a.0 is ready"));
    t.wait_line("b ready", |l| l.contains("b.0 is ready"));
    let lines = t.transcript();
    // Neither waited for the other: both were spawned before either was ready.
    for started in ["a.0 started", "b.0 started"] {
        for ready in ["a.0 is ready", "b.0 is ready"] {
            before(&lines, started, ready);
        }
    }
}

#[test]
fn a_failed_dependency_is_reported_by_what_waits_for_it() {
    let t = up(
        r#"
[process.db]
command = ["sh", "-c", "exit 1"]
max_restarts = { count = 0, within = "60s" }

[process.web]
command = ["sleep", "1000"]
depends_on = { db = "ready" }
"#,
        &[],
    );
    t.wait_line("web reports db", |l| {
        l.contains(
            "web.0 waits for db to be ready, but db is failed and will not get there by itself",
        )
    });
    let web = instance(&t, "web.0");
    assert_eq!(web["state"], "waiting", "{web}");
    assert_eq!(
        web["waiting_for"],
        json!([{"process": "db", "condition": "ready", "state": "failed", "gave_up": true}]),
        "{web}"
    );
    // A start that waits says why it cannot get there: with its dependencies (db fails again)
    // or without.
    for args in [&["start", "web"][..], &["start", "--no-deps", "web"]] {
        let ran = client(&t, args);
        assert_eq!(ran.code, Some(1), "{args:?}: {ran:?}");
        assert!(
            ran.stderr
                .contains("web.0 waits for db to be ready, but db is failed"),
            "{args:?}: {ran:?}"
        );
    }
    t.wait_lines(2, "db started again", |l| l.contains("db.0 started"));
    let lines = t.transcript();
    assert_eq!(
        lines.iter().filter(|l| l.contains("db.0 started")).count(),
        2,
        "db is started again by `tend start web` only: {lines:#?}"
    );
    assert!(!lines.iter().any(|l| l.contains("web.0 started")));
}

#[test]
fn a_failing_health_check_restarts_after_its_failures() {
    let dir = project(
        r#"
[process.svc]
command = ["sleep", "1000"]
health = { exec = ["test", "-e", "ok"], period = "200ms", failures = 5 }
backoff = { initial = "50ms" }
"#,
    );
    fs::write(dir.path().join("ok"), "").expect("writing ok");
    let t = up_in(dir, &[]);
    let healthy = wait_status(&t, "svc.0", "a passed health check", |i| {
        i["health"]["healthy"] == true
    });
    let first = healthy["pid"].clone();

    fs::remove_file(t.path("ok")).expect("removing ok");
    // Before the restart, status says the check fails and why.
    let failing = wait_status(&t, "svc.0", "a failed health check", |i| {
        i["health"]["healthy"] == false
    });
    assert_eq!(failing["pid"], first, "not restarted yet: {failing}");
    assert_eq!(failing["restarts"], 0, "{failing}");
    assert!(
        failing["health"]["failures_in_row"].as_u64() >= Some(1),
        "{failing}"
    );
    assert_eq!(
        failing["health"]["last_failure"], "exit code 1",
        "{failing}"
    );

    let failed = t.wait_line("the failed check", |l| l.contains("svc.0 failed a check"));
    assert!(
        failed.contains("(health check failed 5 times in a row, last: exit code 1)"),
        "{failed}"
    );
    fs::write(t.path("ok"), "").expect("writing ok");
    let lines = t.transcript();
    before(
        &lines,
        "svc.0 health check failed: ",
        "svc.0 failed a check",
    );
    let again = wait_status(&t, "svc.0", "a healthy new run", |i| {
        i["pid"] != first && i["health"]["healthy"] == true
    });
    assert!(again["restarts"].as_u64() >= Some(1), "{again}");
}

#[test]
fn up_no_deps_starts_only_what_is_named_and_start_brings_its_dependencies() {
    let t = up(
        r#"
[process.db]
command = ["sh", "-c", "echo ready; exec sleep 1000"]
ready = { log_line = "^ready$" }

[process.web]
command = ["sleep", "1000"]
depends_on = { db = "ready" }
"#,
        &["--no-deps", "web"],
    );
    t.wait_line("web waits", |l| l.contains("web.0 waiting for db ready"));
    let web = instance(&t, "web.0");
    assert_eq!(web["state"], "waiting", "{web}");
    assert_eq!(
        web["waiting_for"],
        json!([{"process": "db", "condition": "ready", "state": "stopped", "gave_up": true}]),
        "{web}"
    );
    let db = instance(&t, "db.0");
    assert_eq!(db["state"], "stopped", "{db}");
    assert!(t.child_pids().is_empty(), "{:#?}", t.transcript());

    let ran = client(&t, &["start", "web"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    // `start` returned once web runs, so it does already.
    let web = instance(&t, "web.0");
    assert_eq!(web["state"], "running", "{web}");
    assert_eq!(instance(&t, "db.0")["state"], "ready");
    t.wait_line("web started", |l| l.contains("web.0 started (pid "));
    let lines = t.transcript();
    before(&lines, "db.0 is ready", "web.0 started");
}

#[test]
fn the_watchdog_starts_once_the_process_is_ready() {
    // docs/config.md: "once ready, the process must send WATCHDOG=1 at least this often", as
    // systemd's WatchdogSec= ("activated when the start-up is completed"); before READY=1,
    // start_timeout is what bounds a start.
    let dir = project(
        r#"
[process.slow]
command = ["python3", "watchdog.py", "-1", "after-go"]
ready = { notify = true, watchdog = "500ms", start_timeout = "30s" }
"#,
    );
    fs::write(dir.path().join("watchdog.py"), WATCHDOG_CLIENT).expect("writing watchdog.py");
    let t = up_in(dir, &[]);
    let slow = wait_status(&t, "slow.0", "1.5s up, or a restart", |i| {
        i["uptime_ms"].as_u64() >= Some(1500) || i["restarts"] != 0
    });
    assert_eq!(slow["restarts"], 0, "{slow}\n{:#?}", t.transcript());
    assert_eq!(slow["state"], "running", "not ready yet: {slow}");
    fs::write(t.path("go"), "").expect("writing go");
    let slow = wait_state(&t, "slow.0", "ready");
    assert_eq!(slow["restarts"], 0, "{slow}");
}
