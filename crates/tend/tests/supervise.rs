//! End to end: `tend up` keeps real processes alive by policy and stops them for good.

mod common;

use std::collections::HashSet;
use std::fs;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

#[test]
fn crashing_process_restarts_with_growing_backoff_then_fails() {
    let tend = Tend::up(
        r#"
[process.crash]
command = "exit 1"
shell = true
backoff = { initial = "50ms", max = "200ms", factor = 2.0 }
max_restarts = { count = 4, within = "60s" }
"#,
        &[],
    );
    let gave_up = tend.wait_line("giving up", |l| {
        l.contains("crash.0") && l.contains("giving up")
    });
    assert!(gave_up.contains("4 restarts within 1m"), "{gave_up}");
    let t = tend.transcript();
    let delays: Vec<&str> = t
        .iter()
        .filter_map(|l| l.split("restarting in ").nth(1))
        .collect();
    assert_eq!(delays, ["50ms", "100ms", "200ms", "200ms"], "{t:#?}");
    assert_eq!(
        tend.child_pids().len(),
        5,
        "the first start and 4 restarts: {t:#?}"
    );
    // Once it gave up, nothing starts it again: over a quiet window of three times the
    // longest backoff (a measurement, not a synchronisation), no start follows the give-up.
    std::thread::sleep(Duration::from_millis(600));
    let t = tend.transcript();
    let gave_up_at = t.iter().position(|l| *l == gave_up).unwrap();
    let after: Vec<&String> = t[gave_up_at + 1..]
        .iter()
        .filter(|l| l.contains("crash.0"))
        .collect();
    assert!(after.is_empty(), "crash.0 lines after giving up: {t:#?}");
    assert_eq!(tend.child_pids().len(), 5, "{t:#?}");
}

#[test]
fn backoff_delays_are_waited_out() {
    let tend = Tend::up(
        r#"
[process.crash]
command = ["sh", "-c", "exit 2"]
backoff = { initial = "300ms", max = "300ms", factor = 1.0 }
max_restarts = { count = 2, within = "60s" }
"#,
        &[],
    );
    let start = Instant::now();
    tend.wait_line("giving up", |l| l.contains("giving up"));
    // Two restarts, each after 300 ms.
    assert!(
        start.elapsed() >= Duration::from_millis(600),
        "{:?}",
        start.elapsed()
    );
    let t = tend.transcript();
    assert_eq!(
        t.iter()
            .filter(|l| l.contains("exited with status 2"))
            .count(),
        3,
        "{t:#?}"
    );
}

#[test]
fn restart_never_and_success_codes_are_honoured() {
    let tend = Tend::up(
        r#"
[process.once]
command = "exit 1"
shell = true
restart = "never"

[process.done]
command = "exit 3"
shell = true
restart = "on-failure"
success_codes = [0, 3]

[process.retry]
command = "exit 4"
shell = true
restart = "on-failure"
success_codes = [0, 3]
backoff = { initial = "0s", max = "0s", factor = 1.0 }
max_restarts = { count = 1, within = "60s" }
"#,
        &[],
    );
    tend.wait_line("once exited", |l| {
        l.contains("once.0 exited with status 1; now exited")
    });
    tend.wait_line("done exited", |l| {
        l.contains("done.0 exited with status 3; now exited")
    });
    tend.wait_line("retry failed", |l| {
        l.contains("retry.0 exited with status 4; giving up")
    });
    let t = tend.transcript();
    let starts = |name: &str| {
        t.iter()
            .filter(|l| l.contains(&format!("{name}.0 started")))
            .count()
    };
    assert_eq!(
        (starts("once"), starts("done"), starts("retry")),
        (1, 1, 2),
        "{t:#?}"
    );
}

#[test]
fn process_ignoring_sigterm_is_killed_with_its_grandchildren_after_stop_timeout() {
    let mut tend = Tend::up(
        r#"
[process.stubborn]
command = 'trap "" TERM; sleep 1000 & echo "grandchild $!"; wait'
shell = true
stop_timeout = "700ms"
"#,
        &[],
    );
    let line = tend.wait_line("grandchild pid", |l| l.contains("| grandchild "));
    let grandchild: i32 = line.rsplit(' ').next().unwrap().parse().unwrap();
    let child = tend.child_pids()[0];
    assert!(is_running(grandchild) && is_running(child));
    let asked = Instant::now();
    tend.signal(Signal::SIGTERM);
    tend.wait_line("SIGKILL notice", |l| {
        l.contains("stubborn.0 still running 700ms after the stop signal")
    });
    let status = tend.wait_exit();
    assert!(asked.elapsed() >= Duration::from_millis(700));
    assert_eq!(status.code(), Some(0), "stderr: {}", tend.stderr());
    assert!(!is_running(child), "the child is gone");
    assert!(!is_running(grandchild), "the grandchild is gone");
    tend.assert_printed("stubborn.0 was killed by SIGKILL");
}

#[test]
fn sigterm_stops_everything_and_exits_zero_leaving_nothing() {
    let mut tend = Tend::up(
        r#"
[process.web]
command = ["sleep", "1000"]
replicas = 3

[process.job]
command = "sleep 1000 & sleep 1000 & wait"
shell = true
"#,
        &[],
    );
    tend.wait_lines(4, "four starts", |l| l.contains(" started (pid "));
    let pids = tend.child_pids();
    // Grandchildren too: everything whose process group is one of the children's.
    let groups: HashSet<i32> = pids.iter().copied().collect();
    eventually("job's two sleeps", || children_of(pids[3]).len() == 2);
    let mut members = pids.clone();
    members.extend(children_of(pids[3]).into_iter().map(|(p, _)| p));
    tend.signal(Signal::SIGTERM);
    assert_eq!(
        tend.wait_exit().code(),
        Some(0),
        "stderr: {}",
        tend.stderr()
    );
    for pid in members {
        assert!(
            !is_running(pid),
            "{pid} (of groups {groups:?}) survived tend"
        );
    }
    tend.assert_printed("all processes stopped; exiting");
}

#[test]
fn second_sigint_kills_at_once() {
    let mut tend = Tend::up(
        r#"
[process.stubborn]
command = 'trap "" TERM INT; echo up; while true; do sleep 1; done'
shell = true
stop_timeout = "60s"
"#,
        &[],
    );
    tend.wait_line("up", |l| l.ends_with("| up"));
    let child = tend.child_pids()[0];
    tend.signal(Signal::SIGINT);
    tend.wait_line("stopping", |l| {
        l.contains("stubborn.0 stopping (SIGTERM sent)")
    });
    let asked = Instant::now();
    tend.signal(Signal::SIGINT);
    // As a shell says of a job that Ctrl+C ended: 128 + SIGINT.
    assert_eq!(tend.wait_exit().code(), Some(130));
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "did not wait out the 60s stop timeout"
    );
    assert!(!is_running(child));
}

#[test]
fn no_zombie_after_a_thousand_restarts() {
    let mut tend = Tend::up(
        r#"
[process.blink]
command = ["true"]
start_secs = "0s"
backoff = { initial = "0s", max = "0s", factor = 1.0 }
max_restarts = { count = 1000, within = "1h" }
"#,
        &["--quiet"],
    );
    // 1001 runs, then the process is failed and nothing more is spawned.
    tend.wait_line("gave up", |l| {
        l.contains("blink.0") && l.contains("giving up")
    });
    let t = tend.transcript();
    assert_eq!(
        t.iter()
            .filter(|l| l.contains("blink.0 exited with status 0"))
            .count(),
        1001
    );
    // tend is still running, and no child of it is left unreaped.
    let tend_pid = tend.pid();
    assert!(is_running(tend_pid));
    assert_eq!(
        children_of(tend_pid),
        vec![],
        "no child at all, zombie or not"
    );
    tend.signal(Signal::SIGTERM);
    assert_eq!(tend.wait_exit().code(), Some(0));
}

#[test]
fn orphaned_grandchildren_are_adopted_and_reaped_by_tend() {
    let tend = Tend::up(
        r#"
[process.forker]
command = 'for i in 1 2 3 4 5; do sleep 1000 & echo "orphan $!"; done; exit 0'
shell = true
restart = "never"
"#,
        &[],
    );
    let orphans: Vec<i32> = tend
        .wait_lines(5, "five grandchildren", |l| l.contains("| orphan "))
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    let _guards: Vec<KillOnDrop> = orphans.iter().map(|&pid| KillOnDrop(pid)).collect();
    tend.wait_line("the forker exited", |l| l.contains("forker.0 exited"));
    // Their parent is gone: the kernel gives them to the nearest subreaper, which must be tend
    // (were it not, they would go to init, which reaps them just as well).
    let tend_pid = i64::from(tend.pid());
    for &pid in &orphans {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let ppid: i64 = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap();
        assert_eq!(ppid, tend_pid, "orphan {pid} was adopted by tend");
    }
    // They die at once, all members of the forker's group (one coalesced SIGCHLD, likely):
    // tend reaps every one.
    let forker = tend.child_pids()[0];
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(forker), Signal::SIGKILL).unwrap();
    eventually("tend reaps its orphaned grandchildren", || {
        orphans.iter().all(|&pid| proc_state_of(pid).is_none())
    });
    assert_eq!(children_of(tend.pid()), vec![], "no zombie child of tend");
}

#[test]
fn group_members_finish_their_graceful_stop_after_the_leader_exits() {
    let mut tend = Tend::up(
        r#"
[process.team]
command = """
(trap 'sleep 0.5; echo worker-drained; exit 0' TERM; echo worker-ready; while true; do sleep 0.1; done) &
trap 'exit 0' TERM
while true; do sleep 0.1; done
"""
shell = true
stop_timeout = "10s"
"#,
        &[],
    );
    tend.wait_line("worker ready", |l| l.ends_with("| worker-ready"));
    tend.signal(Signal::SIGTERM);
    assert_eq!(tend.wait_exit().code(), Some(0));
    let log = std::fs::read_to_string(tend.path(".tend/logs/team.0.log")).unwrap();
    assert_eq!(
        log, "worker-ready\nworker-drained\n",
        "the worker was not cut short"
    );
}

#[test]
fn a_pipe_held_outside_the_group_does_not_keep_tend_from_exiting() {
    let mut tend = Tend::up(
        r#"
[process.escape]
command = 'setsid sleep 30 & echo "escaped $!"; exec sleep 1000'
shell = true
"#,
        &[],
    );
    let line = tend.wait_line("escaped", |l| l.contains("| escaped "));
    let escaped: i32 = line.rsplit(' ').next().unwrap().parse().unwrap();
    let _guard = KillOnDrop(escaped);
    // The shell prints the PID as it forks; wait until the process has left the group.
    eventually("the escaped process leads its own session", || {
        std::fs::read_to_string(format!("/proc/{escaped}/stat"))
            .is_ok_and(|stat| stat_field(&stat, 6) == Some(i64::from(escaped)))
    });
    let asked = Instant::now();
    tend.signal(Signal::SIGTERM);
    assert_eq!(
        tend.wait_exit().code(),
        Some(0),
        "stderr: {}",
        tend.stderr()
    );
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    if tend
        .transcript()
        .iter()
        .any(|l| l.contains("cgroups: a cgroup per instance"))
    {
        // With a cgroup per instance, the process that left its group was asked to stop too
        // (and is gone: it was tend's child by then, and tend reaped it before exiting).
        eventually("the escaped process to be gone", || {
            std::fs::read_to_string(format!("/proc/{escaped}/stat"))
                .map_or(true, |stat| proc_state(&stat) == Some('Z'))
        });
    } else {
        tend.assert_printed("still held open by processes that left their group");
    }
}

/// Kills a process tend does not know about when the test ends.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0), Signal::SIGKILL);
    }
}

#[test]
fn child_sees_only_fds_0_1_2_and_a_clean_signal_state() {
    // tend itself is started with an extra inherited fd and SIGHUP, SIGPIPE ignored.
    let dir = project(
        r#"
[process.probe]
command = 'echo ready; exec sleep 1000'
shell = true
"#,
    );
    let config = dir.path().join("tend.toml");
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(r#"trap "" HUP PIPE; exec "$0" -c "$1" up 7</dev/null"#)
        .arg(tend_bin())
        .arg(&config);
    let tend = Tend::spawn(dir, cmd);
    tend.wait_line("ready", |l| l.ends_with("| ready"));
    let pid = tend.child_pids()[0];
    eventually("the probe has exec'd sleep", || {
        fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
    });
    // `comm` changes early in the exec, before the shell's close-on-exec fds are closed; the
    // new program's environment is set up after that: once it is there, the exec is done.
    let mut environ = Vec::new();
    eventually("the environment of sleep is readable", || {
        environ = fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        !environ.is_empty()
    });
    // `sleep` itself opens the locale archive for a moment as it starts: wait for its fds to
    // settle. An fd inherited from tend would stay, and fail the test at the deadline.
    let fds = || {
        let mut fds: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        fds.sort();
        fds
    };
    let deadline = std::time::Instant::now() + PATIENCE;
    while fds() != ["0", "1", "2"] {
        assert!(
            std::time::Instant::now() < deadline,
            "the child has fds {:?}, not only 0, 1 and 2",
            fds()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/fd/0")).unwrap().to_str(),
        Some("/dev/null")
    );
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap()
    };
    assert_eq!(field("SigBlk:"), "0000000000000000", "empty signal mask");
    assert_eq!(field("SigIgn:"), "0000000000000000", "no ignored signal");
    // tend's own fd 7 is there (it was inherited), so the test is meaningful.
    assert!(fs::read_link(format!("/proc/{}/fd/7", tend.pid())).is_ok());
    // Its own process group, and TEND_* in the environment.
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    assert_eq!(
        stat_field(&stat, 5),
        Some(i64::from(pid)),
        "process group = pid"
    );
    let vars: Vec<&[u8]> = environ.split(|&b| b == 0).collect();
    assert!(vars.contains(&&b"TEND_PROCESS=probe"[..]));
    assert!(vars.contains(&&b"TEND_INSTANCE=0"[..]));
}

#[test]
fn up_with_names_starts_only_those() {
    let tend = Tend::up(
        r#"
[process.a]
command = "echo a-ran; exec sleep 1000"
shell = true

[process.b]
command = "echo b-ran; exec sleep 1000"
shell = true
replicas = 2

[process.c]
command = "echo c-ran; exec sleep 1000"
shell = true
autostart = false
"#,
        &["b.1", "c"],
    );
    tend.wait_lines(2, "two starts", |l| l.contains(" started (pid "));
    tend.wait_line("b ran", |l| l.starts_with("b.1 ") && l.ends_with("| b-ran"));
    tend.wait_line("c ran", |l| l.starts_with("c.0 ") && l.ends_with("| c-ran"));
    let t = tend.transcript();
    assert!(
        !t.iter().any(|l| l.contains("a.0") || l.contains("b.0")),
        "{t:#?}"
    );
}

#[test]
fn missing_program_is_reported_and_retried_then_failed() {
    let tend = Tend::up(
        r#"
[process.ghost]
command = ["/nonexistent/program", "--flag"]
backoff = { initial = "10ms", max = "10ms", factor = 1.0 }
max_restarts = { count = 2, within = "60s" }
"#,
        &[],
    );
    let line = tend.wait_line("could not start", |l| l.contains("ghost.0 could not start"));
    assert!(line.contains("/nonexistent/program"), "{line}");
    assert!(line.contains("No such file or directory"), "{line}");
    tend.wait_line("giving up", |l| {
        l.contains("ghost.0") && l.contains("giving up")
    });
}

#[test]
fn a_config_without_processes_says_so_instead_of_idling_silently() {
    let mut tend = Tend::up("[supervisor]\nstop_timeout = \"1s\"\n", &[]);
    tend.wait_line("the notice", |l| {
        l.contains("defines no process, so nothing runs") && l.contains("[process.NAME]")
    });
    tend.signal(Signal::SIGINT);
    assert_eq!(tend.wait_exit().code(), Some(0));
}

#[test]
fn a_process_s_last_lines_come_before_the_notice_that_it_ended() {
    let n = 30;
    let mut tend = Tend::up(
        &format!(
            r#"
[process.bye]
command = 'echo "first $TEND_INSTANCE"; echo "last $TEND_INSTANCE" >&2'
shell = true
restart = "never"
replicas = {n}
"#
        ),
        &[],
    );
    let ended = tend.wait_lines(n, "every instance ended", |l| {
        l.contains(" exited with status 0")
    });
    assert_eq!(ended.len(), n);
    let lines = tend.transcript();
    for i in 0..n {
        let name = format!("bye.{i} ");
        let at = |pred: &dyn Fn(&str) -> bool| lines.iter().position(|l| pred(l));
        let first = at(&|l| l.starts_with(&name) && l.ends_with(&format!("| first {i}")));
        let last = at(&|l| l.starts_with(&name) && l.ends_with(&format!("| last {i}")));
        let notice = at(&|l| l.contains(&format!("bye.{i} exited with status 0")));
        assert!(
            first.is_some() && last.is_some() && first < notice && last < notice,
            "bye.{i}: {lines:#?}"
        );
    }
    tend.signal(Signal::SIGINT);
    tend.wait_exit();
}
