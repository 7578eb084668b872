//! End to end: idle means idle. With children running and nothing happening, no thread of
//! tend is woken: no timer, no poll, no housekeeping.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::*;

const CONFIG: &str = r#"
[process.sleeper]
command = ["sleep", "1000"]
replicas = 3

[process.talker]
command = "echo said-once; exec sleep 1000"
shell = true
start_secs = "0s"
"#;

/// The context switches (voluntary and not) of every thread of `pid`, by thread id and name.
fn switches(pid: i32) -> BTreeMap<(i32, String), u64> {
    let mut out = BTreeMap::new();
    for task in fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let Ok(tid) = task.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // A thread may end between the listing and the read: it is then not counted, and the
        // change of the thread set shows as a difference anyway.
        let (Ok(status), Ok(comm)) = (
            fs::read_to_string(task.path().join("status")),
            fs::read_to_string(task.path().join("comm")),
        ) else {
            continue;
        };
        let n: u64 = status
            .lines()
            .filter(|l| {
                l.starts_with("voluntary_ctxt_switches:")
                    || l.starts_with("nonvoluntary_ctxt_switches:")
            })
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        out.insert((tid, comm.trim().to_owned()), n);
    }
    out
}

/// Waits until tend's threads stop switching (the start is over: the caller waits until every
/// instance is running, so that no deadline is pending), then counts the switches over a quiet
/// window of a few seconds: there must be none.
fn assert_idle(pid: i32) {
    // The starting point: two samples 300 ms apart that agree.
    let deadline = Instant::now() + PATIENCE;
    let mut before = switches(pid);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = switches(pid);
        if now == before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "tend never went quiet: {before:?} then {now:?}"
        );
        before = now;
    }
    // The measurement itself: a quiet window.
    std::thread::sleep(Duration::from_secs(3));
    let after = switches(pid);
    assert_eq!(
        after, before,
        "tend's threads ((tid, name) → context switches) woke while nothing happened"
    );
}

#[test]
fn an_idle_daemon_wakes_no_thread() {
    let d = Daemon::start(CONFIG);
    for name in ["sleeper.0", "sleeper.1", "sleeper.2", "talker.0"] {
        d.wait_state(name, "running");
    }
    assert_idle(d.pid);
}

#[test]
fn an_idle_foreground_tend_wakes_no_thread() {
    let tend = Tend::up(CONFIG, &[]);
    // Running, past start_secs: no deadline is pending.
    tend.wait_lines(4, "four starts", |l| l.contains(" started (pid "));
    tend.wait_lines(3, "the sleepers running", |l| l.ends_with(" is running"));
    tend.wait_line("the talker's line", |l| l.ends_with("| said-once"));
    assert_idle(tend.pid());
}
