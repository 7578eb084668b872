//! End to end: a real daemon (`tend up -d`) driven by the real CLI and by raw protocol lines.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

use common::daemon::{exists, run_with_deadline, Daemon};
use common::*;

const TWO: &str = r#"
[process.web]
command = "echo web-says-hi; exec sleep 1000"
shell = true
start_secs = "200ms"

[process.worker]
command = "echo worker $TEND_INSTANCE; exec sleep 1000"
shell = true
replicas = 2
start_secs = "200ms"
"#;

fn pid_of(d: &Daemon, name: &str) -> u64 {
    d.wait_state(name, "running")["pid"].as_u64().unwrap()
}

#[test]
fn up_d_returns_when_ready_and_status_shows_every_instance() {
    let d = Daemon::start(TWO);
    for name in ["web.0", "worker.0", "worker.1"] {
        d.wait_state(name, "running");
    }
    let table = d.tend(&["status"]);
    assert_eq!(table.code, Some(0), "{table:?}");
    // The header line (tend's pid, uptime, config), then the table.
    let lines: Vec<&str> = table.stdout.lines().skip(1).collect();
    assert!(lines[0].starts_with("NAME"), "{}", table.stdout);
    assert_eq!(lines.len(), 4, "{}", table.stdout);
    assert!(
        lines[1].starts_with("web.0") && lines[1].contains("running"),
        "{}",
        table.stdout
    );
    // --json: the stable format of docs/protocol.md.
    let web = d.instance("web.0");
    for key in [
        "name",
        "process",
        "instance",
        "state",
        "pid",
        "uptime_ms",
        "restarts",
        "last_exit",
    ] {
        assert!(web.get(key).is_some(), "{key} missing in {web}");
    }
    assert_eq!(web["process"], "web");
    assert_eq!(web["instance"], 0);
    // Names filter the status.
    let only = d.tend(&["status", "--json", "worker.1"]);
    let only: Vec<serde_json::Value> = serde_json::from_str(&only.stdout).unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["name"], "worker.1");
}

#[test]
fn stop_start_restart_wait_for_the_wanted_state() {
    let d = Daemon::start(TWO);
    let before = pid_of(&d, "web.0");
    let stop = d.tend(&["stop", "web"]);
    assert_eq!(stop.code, Some(0), "{stop:?}");
    assert_eq!(
        d.instance("web.0")["state"],
        "stopped",
        "stop returned only once stopped"
    );
    assert!(!is_running(before as i32));

    let start = d.tend(&["start", "web.0"]);
    assert_eq!(start.code, Some(0), "{start:?}");
    assert_eq!(
        d.instance("web.0")["state"],
        "running",
        "start returned only once running"
    );
    let started = d.instance("web.0")["pid"].as_u64().unwrap();

    let restart = d.tend(&["restart", "web"]);
    assert_eq!(restart.code, Some(0), "{restart:?}");
    let after = d.instance("web.0");
    assert_eq!(after["state"], "running");
    assert_ne!(after["pid"].as_u64().unwrap(), started, "a new run");
    assert!(!is_running(started as i32));

    let all = d.tend(&["stop", "all"]);
    assert_eq!(all.code, Some(0), "{all:?}");
    assert!(d.status().iter().all(|i| i["state"] == "stopped"));
}

#[test]
fn no_wait_returns_at_once() {
    let d =
        Daemon::start("[process.slow]\ncommand = [\"sleep\", \"1000\"]\nstart_secs = \"30s\"\n");
    let asked = Instant::now();
    let restart = d.tend(&["restart", "--no-wait", "slow"]);
    assert_eq!(restart.code, Some(0), "{restart:?}");
    assert!(asked.elapsed() < Duration::from_secs(10));
    assert_ne!(
        d.instance("slow.0")["state"],
        "running",
        "start_secs is 30s"
    );
}

#[test]
fn a_start_that_fails_is_reported_with_exit_1() {
    let d = Daemon::start(
        r#"
[process.bad]
command = "exit 3"
shell = true
autostart = false
backoff = { initial = "0s", max = "0s", factor = 1.0 }
max_restarts = { count = 2, within = "60s" }
"#,
    );
    let start = d.tend(&["start", "bad"]);
    assert_eq!(start.code, Some(1), "{start:?}");
    assert!(start.stderr.contains("bad.0 failed"), "{start:?}");
    assert!(start.stderr.contains("status 3"), "{start:?}");
}

#[test]
fn signal_reaches_the_process_group() {
    // The leader and a second member of its group (a background subshell) each trap USR1.
    let d = Daemon::start(
        r#"
[process.trapper]
command = """
(trap 'echo member-got-usr1' USR1; echo member-ready; while true; do sleep 0.1; done) &
trap 'echo leader-got-usr1' USR1; echo leader-ready; while true; do sleep 0.1; done
"""
shell = true
start_secs = "0s"
"#,
    );
    d.wait_state("trapper.0", "running");
    let log = || std::fs::read_to_string(d.path(".tend/logs/trapper.0.log")).unwrap_or_default();
    eventually("both traps are set", || {
        let t = log();
        t.contains("leader-ready") && t.contains("member-ready")
    });
    let sent = d.tend(&["signal", "USR1", "trapper"]);
    assert_eq!(sent.code, Some(0), "{sent:?}");
    assert!(sent.stdout.contains("trapper.0"), "{sent:?}");
    eventually("the leader's trap ran", || {
        log().contains("leader-got-usr1")
    });
    eventually("the other member's trap ran", || {
        log().contains("member-got-usr1")
    });
    // Named twice, signalled once.
    let twice = d.tend(&["signal", "USR1", "trapper.0", "trapper", "trapper.0"]);
    assert_eq!(twice.code, Some(0), "{twice:?}");
    assert_eq!(twice.stdout.matches("trapper.0").count(), 1, "{twice:?}");
    let bad = d.tend(&["signal", "SIGNOPE", "trapper"]);
    assert_eq!(bad.code, Some(2), "{bad:?}");
}

#[test]
fn logs_shows_past_lines_and_follows_new_ones() {
    let d = Daemon::start(
        r#"
[process.talker]
command = 'for i in 1 2 3 4 5; do echo "line $i"; done; echo oops >&2; exec sleep 1000'
shell = true
start_secs = "0s"

[process.ticker]
command = 'n=0; while true; do n=$((n+1)); echo "tick $n"; sleep 0.05; done'
shell = true
start_secs = "0s"
"#,
    );
    eventually("the talker's lines are logged", || {
        std::fs::read_to_string(d.path(".tend/logs/talker.0.err.log")).is_ok_and(|t| t == "oops\n")
    });
    let past = d.tend(&["logs", "-n", "2", "talker"]);
    assert_eq!(past.code, Some(0), "{past:?}");
    let lines: Vec<&str> = past.stdout.lines().collect();
    assert_eq!(
        lines,
        ["talker.0 | line 4", "talker.0 | line 5", "talker.0 | oops"],
        "the last 2 lines of stdout, then of stderr: {past:?}"
    );

    // Follow with no past lines: every line that comes is live, and only the ticker's.
    // It is killed (with its process group) when dropped, even if the test fails.
    let follow = Running::start(d.command(&["logs", "-f", "-n", "0", "ticker"]));
    let logged_before = std::fs::read_to_string(d.path(".tend/logs/ticker.0.log")).unwrap();
    let last_before = logged_before.lines().count();
    eventually("three lines followed", || {
        follow.printed().stdout.lines().count() >= 3
    });
    for line in follow.printed().stdout.lines().take(3) {
        let n: usize = line
            .strip_prefix("ticker.0 | tick ")
            .unwrap_or_else(|| panic!("not a ticker line: {line:?}"))
            .parse()
            .unwrap();
        assert!(
            n + 1 >= last_before,
            "tick {n} is not older than the follow ({last_before})"
        );
    }
    // A follower that goes away costs nothing: the daemon keeps serving.
    drop(follow);
    assert_eq!(d.tend(&["status"]).code, Some(0));
}

#[test]
fn reload_keeps_unchanged_restarts_changed_adds_and_removes() {
    let d = Daemon::start(TWO);
    let web = pid_of(&d, "web.0");
    let worker = pid_of(&d, "worker.0");
    let changed = TWO.replace(
        "echo worker $TEND_INSTANCE",
        "echo worker v2 $TEND_INSTANCE",
    ) + "\n[process.extra]\ncommand = [\"sleep\", \"1000\"]\n";
    std::fs::write(d.config(), changed).unwrap();
    let reload = d.tend(&["reload"]);
    assert_eq!(reload.code, Some(0), "{reload:?}");
    assert!(
        reload.stdout.contains("extra") && reload.stdout.contains("worker"),
        "{reload:?}"
    );
    d.wait_state("extra.0", "running");
    let new_worker = d.wait_state("worker.0", "running")["pid"].as_u64().unwrap();
    assert_eq!(pid_of(&d, "web.0"), web, "unchanged: same pid");
    assert_ne!(new_worker, worker, "changed: restarted");

    // Remove web: it is stopped and forgotten.
    let web_block = "[process.web]\ncommand = \"echo web-says-hi; exec sleep 1000\"\nshell = true\nstart_secs = \"200ms\"\n";
    let without_web = std::fs::read_to_string(d.config())
        .unwrap()
        .replace(web_block, "");
    assert!(!without_web.contains("[process.web]"));
    std::fs::write(d.config(), without_web).unwrap();
    let reload = d.tend(&["reload"]);
    assert_eq!(reload.code, Some(0), "{reload:?}");
    eventually("web is gone", || {
        d.status().iter().all(|i| i["process"] != "web")
    });
    assert!(!is_running(web as i32));
}

#[test]
fn a_bad_reload_changes_nothing_and_says_where() {
    let d = Daemon::start(TWO);
    let web = pid_of(&d, "web.0");
    std::fs::write(
        d.config(),
        "[process.web]\ncommand = [\"sleep\"]\nstop_signal = \"SIGNOPE\"\n",
    )
    .unwrap();
    let reload = d.tend(&["reload"]);
    assert_eq!(reload.code, Some(78), "{reload:?}");
    assert!(reload.stderr.contains("tend.toml:3:15"), "{reload:?}");
    assert!(reload.stderr.contains("stop_signal"), "{reload:?}");
    assert_eq!(pid_of(&d, "web.0"), web);
    assert_eq!(d.status().len(), 3, "nothing added or removed");
}

#[test]
fn sighup_reloads() {
    let d = Daemon::start("[process.a]\ncommand = [\"sleep\", \"1000\"]\n");
    std::fs::write(
        d.config(),
        "[process.a]\ncommand = [\"sleep\", \"1000\"]\n[process.b]\ncommand = [\"sleep\", \"1000\"]\n",
    )
    .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    eventually("b appears", || {
        d.status().iter().any(|i| i["name"] == "b.0")
    });
}

#[test]
fn down_stops_everything_and_returns_when_the_daemon_is_gone() {
    let d = Daemon::start(TWO);
    let pids: Vec<u64> = ["web.0", "worker.0", "worker.1"]
        .iter()
        .map(|n| pid_of(&d, n))
        .collect();
    let down = d.tend(&["down"]);
    assert_eq!(down.code, Some(0), "{down:?}");
    assert!(!d.alive(), "down returned before the daemon was gone");
    for pid in pids {
        assert!(!is_running(pid as i32), "{pid} survived tend down");
    }
    assert!(!exists(&d.socket()), "the socket is removed");
    let status = d.tend(&["status"]);
    assert_eq!(status.code, Some(3), "{status:?}");
    assert!(
        status.stderr.contains("tend.sock"),
        "names the socket: {status:?}"
    );
}

#[test]
fn up_right_after_down_always_succeeds() {
    let mut d = Daemon::start("[process.a]\ncommand = [\"sleep\", \"1000\"]\n");
    for round in 0..5 {
        let down = d.tend(&["down"]);
        assert_eq!(down.code, Some(0), "round {round}: {down:?}");
        assert!(
            !d.alive(),
            "round {round}: down returned before the daemon was gone"
        );
        let up = d.tend(&["up", "-d"]);
        assert_eq!(up.code, Some(0), "round {round}: {up:?}");
        d.pid = std::fs::read_to_string(d.path("tend.sock.lock"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
    }
}

#[test]
fn a_second_up_is_refused_with_the_running_pid() {
    let d = Daemon::start(TWO);
    let again = d.tend(&["up", "-d"]);
    assert_ne!(again.code, Some(0), "{again:?}");
    assert!(again.stderr.contains("already running"), "{again:?}");
    assert!(again.stderr.contains(&d.pid.to_string()), "{again:?}");
    let fg = d.tend(&["up"]);
    assert_ne!(fg.code, Some(0), "{fg:?}");
    assert!(d.alive());
}

#[test]
fn a_daemon_killed_with_sigkill_is_replaced_by_the_next_up() {
    let mut d = Daemon::start("[process.a]\ncommand = [\"sleep\", \"1000\"]\n");
    let child = pid_of(&d, "a.0");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    d.wait_gone();
    // Its child was orphaned; end it, as a stale socket and lock stay behind.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert!(exists(&d.socket()), "the crash left its socket");
    let status = d.tend(&["status"]);
    assert_eq!(
        status.code,
        Some(3),
        "a stale socket means no supervisor: {status:?}"
    );
    let up = d.tend(&["up", "-d"]);
    assert_eq!(up.code, Some(0), "{up:?}");
    d.pid = std::fs::read_to_string(d.path("tend.sock.lock"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    d.wait_state("a.0", "running");
}

#[test]
fn config_and_socket_may_follow_the_verb() {
    let d = Daemon::start(TWO);
    let mut cmd = std::process::Command::new(tend_bin());
    cmd.args(["status", "--json", "-c"])
        .arg(d.config())
        .arg("--socket")
        .arg(d.socket())
        .current_dir("/");
    let ran = run_with_deadline(cmd);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stdout.contains("web.0"), "{ran:?}");
}

#[test]
fn unknown_names_list_the_known_ones() {
    let d = Daemon::start(TWO);
    let ran = d.tend(&["stop", "wbe"]);
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(
        ran.stderr.contains("wbe") && ran.stderr.contains("web") && ran.stderr.contains("worker"),
        "{ran:?}"
    );
}

#[test]
fn no_supervisor_says_which_socket_and_what_to_do() {
    let dir = project(TWO);
    let mut cmd = std::process::Command::new(tend_bin());
    cmd.arg("-c")
        .arg(dir.path().join("tend.toml"))
        .args(["--socket"])
        .arg(dir.path().join("none.sock"))
        .arg("status");
    let ran = run_with_deadline(cmd);
    assert_eq!(ran.code, Some(3), "{ran:?}");
    assert!(ran.stderr.contains("none.sock"), "{ran:?}");
    assert!(ran.stderr.contains("tend up -d"), "{ran:?}");
}

/// One request over a raw connection: the handshake, then `line`; returns the answer lines.
fn raw(d: &Daemon, hello: &str, line: &str) -> Vec<serde_json::Value> {
    let mut s = d.connect();
    s.write_all(hello.as_bytes()).unwrap();
    s.write_all(line.as_bytes()).unwrap();
    let mut lines = Vec::new();
    for l in BufReader::new(s).lines() {
        let Ok(l) = l else { break };
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        let terminal = v.get("ok").is_some() || v.get("error").is_some();
        lines.push(v);
        if terminal && lines.len() >= 2 {
            break;
        }
    }
    lines
}

const HELLO: &str = "{\"hello\":{\"protocol\":2,\"client\":\"test\"}}\n";

#[test]
fn protocol_mismatch_garbage_and_long_lines_get_errors_and_others_are_served() {
    let d = Daemon::start(TWO);
    d.wait_state("web.0", "running");
    // A client that connects and never says anything.
    let _silent = d.connect();
    // A wrong protocol version.
    let mut s = d.connect();
    s.write_all(b"{\"hello\":{\"protocol\":99,\"client\":\"future\"}}\n")
        .unwrap();
    let mut answer = String::new();
    BufReader::new(&s).read_line(&mut answer).unwrap();
    assert!(answer.contains("protocol_mismatch"), "{answer}");
    // Garbage after a good hello: an error, and the connection stays usable.
    let lines = raw(&d, HELLO, "this is not json\n");
    assert_eq!(lines[1]["error"]["code"], "bad_request", "{lines:?}");
    // A line over the limit: an error, then the server closes.
    let mut s = d.connect();
    s.write_all(HELLO.as_bytes()).unwrap();
    let long = vec![b'x'; 100 * 1024];
    let _ = s.write_all(&long);
    let _ = s.write_all(b"\n");
    let mut lines = BufReader::new(&s).lines();
    let _hello = lines.next();
    let err = lines.next().unwrap().unwrap();
    assert!(err.contains("line_too_long"), "{err}");
    // While a client is half-way through a garbage line (no newline yet), and another has
    // said nothing at all, the CLI is served as usual.
    let mut half = d.connect();
    half.write_all(HELLO.as_bytes()).unwrap();
    half.write_all(b"{\"id\":1,\"request\":garbage garbage")
        .unwrap();
    for _ in 0..5 {
        assert_eq!(d.tend(&["status"]).code, Some(0));
    }
    half.write_all(b"\n").unwrap();
    let mut lines = BufReader::new(&half).lines();
    let _hello = lines.next();
    assert!(lines.next().unwrap().unwrap().contains("bad_request"));
    // And a raw status request works.
    let lines = raw(
        &d,
        HELLO,
        "{\"id\":7,\"request\":{\"status\":{\"names\":[\"web\"]}}}\n",
    );
    assert_eq!(lines[1]["id"], 7);
    assert_eq!(lines[1]["ok"]["instances"][0]["name"], "web.0", "{lines:?}");
}

#[test]
fn a_hundred_clients_at_once_are_all_served() {
    let d = Daemon::start(TWO);
    d.wait_state("web.0", "running");
    let socket = d.socket();
    let clients: Vec<_> = (0..100)
        .map(|i| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
                s.set_read_timeout(Some(PATIENCE)).unwrap();
                s.write_all(HELLO.as_bytes()).unwrap();
                s.write_all(format!("{{\"id\":{i},\"request\":{{\"status\":{{}}}}}}\n").as_bytes())
                    .unwrap();
                let mut lines = BufReader::new(s).lines();
                let _hello = lines.next().unwrap().unwrap();
                let answer: serde_json::Value =
                    serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
                assert_eq!(answer["id"], i);
                answer["ok"]["instances"].as_array().unwrap().len()
            })
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap(), 3);
    }
}

/// Tests that need root. Each is `#[ignore]`d with its reason, so that a run as another user
/// shows it as ignored rather than passed; CI runs as root and runs them with
/// `cargo test --workspace -- --ignored needs_root::` (see .ci/run and README.md).
mod needs_root {
    use super::*;

    #[test]
    #[ignore = "needs root to run a client as nobody: run with --ignored needs_root:: (CI does)"]
    fn a_peer_of_another_uid_is_refused() {
        assert!(
            nix::unistd::Uid::effective().is_root(),
            "needs root to run a client as nobody"
        );
        let d = Daemon::start(TWO);
        // Open the way to the socket, so that only tend's own check stands between.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(d.socket(), std::fs::Permissions::from_mode(0o666)).unwrap();
        std::fs::set_permissions(d.config(), std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut cmd = std::process::Command::new("setpriv");
        cmd.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            tend_bin(),
        ])
        .arg("-c")
        .arg(d.config())
        .arg("--socket")
        .arg(d.socket())
        .arg("status");
        let ran = run_with_deadline(cmd);
        assert_eq!(ran.code, Some(1), "{ran:?}");
        assert!(ran.stderr.contains("uid 65534"), "{ran:?}");
        assert_eq!(d.tend(&["status"]).code, Some(0), "the owner still gets in");
    }
}

#[test]
fn status_works_beside_a_foreground_up() {
    let dir = project(TWO);
    let socket = dir.path().join("fg.sock");
    let mut cmd = std::process::Command::new(tend_bin());
    cmd.arg("-c")
        .arg(dir.path().join("tend.toml"))
        .arg("--socket")
        .arg(&socket)
        .arg("up");
    let mut tend = Tend::spawn(dir, cmd);
    tend.wait_lines(3, "three starts", |l| l.contains(" started (pid "));
    let mut status = std::process::Command::new(tend_bin());
    status
        .arg("-c")
        .arg(tend.path("tend.toml"))
        .arg("--socket")
        .arg(&socket)
        .args(["status", "--json"]);
    let ran = run_with_deadline(status);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let list: Vec<serde_json::Value> = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(list.len(), 3);
    tend.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(tend.wait_exit().code(), Some(0));
}

#[test]
fn the_daemon_applies_the_configured_umask_and_logs_to_tend_log() {
    let d = Daemon::start(
        r#"
[supervisor]
umask = "077"

[process.show]
command = "umask; exec sleep 1000"
shell = true
"#,
    );
    eventually("the child printed its umask", || {
        std::fs::read_to_string(d.path(".tend/logs/show.0.log")).is_ok_and(|t| t == "0077\n")
    });
    // The notices reach tend.log through the terminal thread, so they may come a bit later.
    eventually("tend's notices reach tend.log", || {
        std::fs::read_to_string(d.path(".tend/logs/tend.log"))
            .is_ok_and(|l| l.contains("show.0 started (pid "))
    });
    let log = std::fs::read_to_string(d.path(".tend/logs/tend.log")).unwrap();
    assert!(
        log.contains("show.0 started (pid "),
        "tend's notices go to tend.log: {log}"
    );
    assert!(
        !log.contains("0077"),
        "children's output is not in tend.log: {log}"
    );
}

#[test]
fn a_start_whose_program_is_missing_fails_with_exit_1() {
    let d = Daemon::start(
        "[process.bad]\ncommand = [\"/nonexistent/bin\"]\nrestart = \"never\"\nautostart = false\n",
    );
    let start = d.tend(&["start", "bad"]);
    assert_eq!(start.code, Some(1), "{start:?}");
    assert!(start.stderr.contains("No such file"), "{start:?}");
    let restart = d.tend(&["restart", "bad"]);
    assert_eq!(
        restart.code,
        Some(1),
        "a restart that cannot spawn ends too: {restart:?}"
    );
}

#[test]
fn a_waiting_request_ends_when_another_request_changes_the_goal() {
    let d = Daemon::start(
        r#"
[process.crash]
command = "exit 1"
shell = true
autostart = false
backoff = { initial = "30s", max = "30s", factor = 1.0 }

[process.slow]
command = 'trap "" TERM; echo up; exec sleep 1000'
shell = true
stop_timeout = "30s"
start_secs = "0s"
"#,
    );
    // A start that waits on an instance in a 30 s backoff, then a stop from elsewhere.
    let start = Running::start(d.command(&["start", "crash"]));
    d.wait_state("crash.0", "backoff");
    assert_eq!(d.tend(&["stop", "crash"]).code, Some(0));
    let out = start.finish();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("stopped by another request"), "{out:?}");

    // A stop that waits on an instance ignoring SIGTERM (30 s timeout), then a start.
    d.wait_state("slow.0", "running");
    let stop = Running::start(d.command(&["stop", "slow"]));
    d.wait_state("slow.0", "stopping");
    assert_eq!(d.tend(&["start", "--no-wait", "slow"]).code, Some(0));
    let out = stop.finish();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("started again by another request"),
        "{out:?}"
    );
}

#[test]
fn a_huge_logs_request_does_not_stall_the_supervisor() {
    let d = Daemon::start(
        "[process.big]\ncommand = [\"seq\", \"1\", \"3000000\"]\nrestart = \"never\"\nlog = { max_size = \"1GiB\" }\n",
    );
    d.wait_state("big.0", "exited");
    let logs = Running::start(d.command(&["logs", "-n", "4000000000", "big"]));
    // Meanwhile the supervisor answers at once.
    for _ in 0..3 {
        let asked = Instant::now();
        assert_eq!(d.tend(&["status"]).code, Some(0));
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "{:?}",
            asked.elapsed()
        );
    }
    let logs = logs.finish();
    assert_eq!(logs.code, Some(0), "{}", logs.stderr);
    assert_eq!(
        logs.stdout.lines().count(),
        100_000,
        "capped at 100000 past lines per file"
    );
}

#[test]
fn a_reload_that_removes_instances_closes_their_log_files() {
    let d = Daemon::start("[process.many]\ncommand = [\"sleep\", \"1000\"]\nreplicas = 4\n");
    d.wait_state("many.3", "running");
    let log_fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", d.pid))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|p| p.to_string_lossy().contains("/.tend/logs/many."))
            .count()
    };
    assert_eq!(
        log_fds(),
        8,
        "stdout and stderr of 4 instances (silent: no index)"
    );
    std::fs::write(
        d.config(),
        "[process.many]\ncommand = [\"sleep\", \"1000\"]\nreplicas = 1\n",
    )
    .unwrap();
    assert_eq!(d.tend(&["reload"]).code, Some(0));
    eventually("3 instances gone", || d.status().len() == 1);
    eventually("their log files closed", || log_fds() == 2);
}

#[test]
fn the_daemon_keeps_no_fd_its_caller_left_open() {
    let dir = project("[process.a]\ncommand = [\"sleep\", \"1000\"]\n");
    let marker = dir.path().join("marker");
    std::fs::write(&marker, "").unwrap();
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(r#"exec "$0" -c "$1" --socket "$2" up -d 7<"$3""#)
        .arg(tend_bin())
        .arg(dir.path().join("tend.toml"))
        .arg(dir.path().join("tend.sock"))
        .arg(&marker);
    let up = run_with_deadline(cmd);
    assert_eq!(up.code, Some(0), "{up:?}");
    let pid: i32 = std::fs::read_to_string(dir.path().join("tend.sock.lock"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let d = Daemon {
        dir,
        pid,
        runtime_dir: None,
    };
    d.wait_state("a.0", "running");
    let held: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.ends_with("marker"))
        .collect();
    assert!(held.is_empty(), "the daemon still holds {held:?}");
}

#[test]
fn stop_answers_only_once_every_member_of_the_group_is_gone() {
    // The leader dies of SIGTERM at once; a background member ignores it and lives on
    // until SIGKILL at the stop timeout.
    let dir = tempfile::tempdir().unwrap();
    let member_file = dir.path().join("member.pid");
    std::fs::write(
        dir.path().join("tend.toml"),
        format!(
            r#"
[process.web]
command = '(trap "" TERM; exec sleep 1000) & echo $! > {}; exec sleep 1000'
shell = true
start_secs = "0s"
stop_timeout = "1s"
"#,
            member_file.display()
        ),
    )
    .unwrap();
    let d = Daemon::start_in(dir);
    let leader = pid_of(&d, "web.0") as i32;
    let mut member = None;
    eventually("the member writes its pid", || {
        member = std::fs::read_to_string(&member_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        member.is_some()
    });
    let member = member.unwrap();
    assert!(is_running(member));
    let asked = Instant::now();
    let stop = d.tend(&["stop", "web"]);
    assert_eq!(stop.code, Some(0), "{stop:?}");
    assert!(stop.stdout.contains("web.0 stopped"), "{stop:?}");
    assert!(
        !is_running(leader) && !is_running(member),
        "`stop` answered while the group still had a member"
    );
    assert!(
        asked.elapsed() >= Duration::from_millis(900),
        "it waited for the kill"
    );
}

#[test]
fn status_shows_tend_itself_and_what_each_process_group_uses() {
    let d = Daemon::start(
        r#"
[process.busy]
command = 'sleep 1000 & while :; do :; done'
shell = true
start_secs = "0s"
"#,
    );
    d.wait_state("busy.0", "running");
    let mut usage = serde_json::Value::Null;
    eventually("busy.0 used some CPU", || {
        usage = d.instance("busy.0");
        usage["cpu_ms"].as_u64().is_some_and(|ms| ms >= 50)
    });
    assert_eq!(usage["processes"], 2, "{usage}");
    assert!(usage["rss_bytes"].as_u64().unwrap() > 0, "{usage}");
    let percent = usage["cpu_percent"].as_f64().unwrap();
    assert!(percent > 0.0 && percent <= 200.0, "{usage}");
    let table = d.tend(&["status"]);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(
        lines[0].starts_with("tend ")
            && lines[0].contains(&format!("(pid {})", d.pid))
            && lines[0].contains(", up ")
            && lines[0].ends_with(&d.config().display().to_string()),
        "{}",
        table.stdout
    );
    assert!(
        lines[1].contains("CPU") && lines[1].contains("MEM"),
        "{}",
        table.stdout
    );
    assert!(lines[2].contains('%'), "{}", table.stdout);
}

#[test]
fn ls_lists_every_tend_of_the_runtime_dir_with_its_config_and_states() {
    let runtime = tempfile::tempdir().unwrap();
    let one = Daemon::start_with_runtime_dir(
        "[process.a]\ncommand = \"sleep 1000\"\nstart_secs = \"0s\"\n",
        runtime.path(),
    );
    let two = Daemon::start_with_runtime_dir(
        "[process.b]\ncommand = \"sleep 1000\"\nstart_secs = \"0s\"\nreplicas = 2\n\n\
         [process.c]\ncommand = \"false\"\nrestart = \"never\"\n",
        runtime.path(),
    );
    one.wait_state("a.0", "running");
    two.wait_state("b.1", "running");
    two.wait_state("c.0", "exited");
    // A socket nobody answers on (a tend killed with -9) is skipped.
    let dead = std::os::unix::net::UnixListener::bind(runtime.path().join("tend/dead.sock"));
    drop(dead);
    let ls = one.tend(&["ls", "--json"]);
    assert_eq!(ls.code, Some(0), "{ls:?}");
    let found: Vec<serde_json::Value> = serde_json::from_str(&ls.stdout).unwrap();
    assert_eq!(found.len(), 2, "{}", ls.stdout);
    let of = |d: &Daemon| {
        found
            .iter()
            .find(|f| f["config"] == d.config().display().to_string())
            .unwrap_or_else(|| panic!("{} not listed: {}", d.config().display(), ls.stdout))
            .clone()
    };
    assert_eq!(of(&one)["pid"], one.pid);
    assert_eq!(of(&one)["instances"], 1);
    assert_eq!(of(&two)["instances"], 3);
    assert_eq!(of(&two)["states"]["running"], 2, "{}", ls.stdout);
    assert_eq!(of(&two)["states"]["exited"], 1, "{}", ls.stdout);
    let table = one.tend(&["ls"]);
    assert!(table.stdout.starts_with("PID"), "{table:?}");
    assert!(
        table.stdout.contains("2 running") && table.stdout.contains("1 exited"),
        "{table:?}"
    );
}

#[test]
fn a_start_that_cannot_spawn_says_why_once() {
    let d = Daemon::start(
        "[process.a]\ncommand = [\"/nonexistent/tend-test-binary\"]\nautostart = false\n\
         restart = \"never\"\n",
    );
    let start = d.tend(&["start", "a"]);
    assert_eq!(start.code, Some(1), "{start:?}");
    // The progress lines (the spawn failure as it happened), then the reason, said once.
    let reason = start.stderr.lines().last().unwrap_or_default();
    assert!(
        reason.starts_with("tend: a.0 could not start: ")
            && reason.matches("could not start").count() == 1,
        "{start:?}"
    );
}

#[test]
fn a_waiting_start_shows_each_attempt_as_it_happens_and_the_reason_at_the_end() {
    let d = Daemon::start(
        r#"
[process.crashy]
command = "echo trying; exit 3"
shell = true
autostart = false
backoff = { initial = "50ms", max = "50ms" }
max_restarts = { count = 2, within = "60s" }
"#,
    );
    let start = d.tend(&["start", "crashy"]);
    assert_eq!(start.code, Some(1), "{start:?}");
    // Not a terminal: plain lines on stderr, as they happened, then the reason.
    let lines: Vec<&str> = start.stderr.lines().collect();
    let spawned = lines
        .iter()
        .filter(|l| l.starts_with("crashy.0 started (pid "))
        .count();
    assert_eq!(spawned, 3, "the first start and 2 restarts: {lines:#?}");
    let restarting = lines
        .iter()
        .filter(|l| l.contains("crashy.0 exited with status 3; restarting in 50ms"))
        .count();
    assert_eq!(restarting, 2, "{lines:#?}");
    let gave_up = lines.iter().position(|l| l.contains("giving up")).unwrap();
    let reason = lines
        .iter()
        .position(|l| l.starts_with("tend: ") && l.contains("crashy.0 failed"))
        .unwrap();
    assert!(gave_up < reason, "{lines:#?}");
    assert!(start.stdout.is_empty(), "{start:?}");
}

#[test]
fn events_streams_what_happens_until_the_client_goes() {
    let d = Daemon::start(TWO);
    d.wait_state("web.0", "running");
    let events = Running::start(d.command(&["events", "--json", "web"]));
    // The stream begins when the request reaches tend, which nothing here can wait for: a
    // restart may come before it. Restart (at most once a second) until one restart's events
    // arrive whole.
    let whole = ["stopping", "exited", "spawned", "running"];
    let mut seen = Vec::new();
    let mut last_restart: Option<Instant> = None;
    eventually("a whole restart's events", || {
        seen = events
            .printed()
            .stdout
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect();
        let kinds: Vec<&str> = seen.iter().map(|e| e["event"].as_str().unwrap()).collect();
        if kinds.windows(4).any(|w| w == whole) {
            return true;
        }
        if last_restart.is_none_or(|at| at.elapsed() > Duration::from_secs(1)) {
            let restart = d.tend(&["restart", "web"]);
            assert_eq!(restart.code, Some(0), "{restart:?}");
            last_restart = Some(Instant::now());
        }
        false
    });
    assert!(seen.iter().all(|e| e["instance"] == "web.0"), "{seen:#?}");
    assert!(
        events.finish_within(Duration::from_millis(1)).is_err(),
        "it streams on"
    );
}

#[test]
fn a_waiting_instance_has_its_log_files_before_it_spawns() {
    // So that its spawn, once its dependency is ready, does not wait for the file system.
    let d = Daemon::start(
        r#"
[process.a]
command = "exec sleep 1000"
shell = true
ready = { exec = ["false"], period = "1h" }

[process.b]
command = "exec sleep 1000"
shell = true
depends_on = { a = "ready" }
"#,
    );
    d.wait_state("b.0", "waiting");
    assert!(d.path(".tend/logs/b.0.log").exists());
    assert!(d.path(".tend/logs/b.0.err.log").exists());
    assert_eq!(d.instance("b.0")["pid"], serde_json::Value::Null);
}
