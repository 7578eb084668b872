//! The test harness keeps its own promises: a command past its deadline fails the test instead
//! of hanging it, and nothing it started outlives it.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn a_command_past_its_deadline_is_killed_with_its_group_and_shows_what_it_printed() {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"sleep 1000 & echo "bg $!"; echo oops >&2; exec sleep 1000"#);
    let running = Running::start(cmd);
    let leader = running.pid();
    eventually("the shell printed its background child", || {
        running.printed().stdout.contains("bg ")
    });
    let bg: i32 = running
        .printed()
        .stdout
        .trim()
        .strip_prefix("bg ")
        .unwrap()
        .parse()
        .unwrap();
    let asked = Instant::now();
    let ran = running
        .finish_within(Duration::from_millis(300))
        .expect_err("sleep 1000 cannot finish in 300ms");
    assert!(asked.elapsed() < Duration::from_secs(10));
    assert_eq!(ran.stdout, format!("bg {bg}\n"));
    assert_eq!(ran.stderr, "oops\n");
    assert_eq!(
        proc_state_of(leader),
        None,
        "the leader is killed and reaped"
    );
    eventually("the background child is killed too", || !is_running(bg));
}

#[test]
fn a_command_dropped_unfinished_is_killed_with_its_group() {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(r#"sleep 1000 & echo "bg $!"; wait"#);
    let running = Running::start(cmd);
    eventually("the shell printed its background child", || {
        running.printed().stdout.contains("bg ")
    });
    let bg: i32 = running
        .printed()
        .stdout
        .trim()
        .strip_prefix("bg ")
        .unwrap()
        .parse()
        .unwrap();
    let leader = running.pid();
    drop(running);
    assert_eq!(
        proc_state_of(leader),
        None,
        "the leader is killed and reaped"
    );
    eventually("the background child is killed too", || !is_running(bg));
}

#[test]
fn a_command_that_finishes_gives_its_code_and_output() {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg("echo out; echo err >&2; exit 3");
    let ran = run_with_deadline(cmd);
    assert_eq!(
        (ran.code, ran.stdout.as_str(), ran.stderr.as_str()),
        (Some(3), "out\n", "err\n")
    );
}
