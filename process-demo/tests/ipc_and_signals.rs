//! `process-demo` with no subcommand: the IPC demo's uppercase line, then the signal demo's
//! wait, ended by SIGINT or SIGTERM (caught, reported, clean exit) or by the time running out.

mod common;

use std::time::Duration;

use common::{assert_success, demo, run, Running};
use nix::sys::signal::Signal;

#[test]
fn ipc_prints_the_uppercase_line() {
    let finished = run(demo(&["--wait-secs", "0"]), 20);
    assert_success(&finished);
    assert!(
        finished
            .stdout
            .iter()
            .any(|l| l == "Output: HELLO PROCESS WORLD"),
        "{:#?}",
        finished.stdout
    );
}

/// Waits for the signal demo's announcement, sends `sig`, and checks it was caught.
fn signal_during_the_wait_is_caught(sig: Signal) {
    // Far longer than the test allows: only the signal can end the wait in time.
    let mut running = Running::start(demo(&["--wait-secs", "60"]));
    running.expect_line("uppercase line", 20, |l| l == "Output: HELLO PROCESS WORLD");
    running.expect_line("waiting line", 20, |l| l.starts_with("Waiting 60 seconds"));
    running.signal(sig);
    let finished = running.finish(20);
    assert_success(&finished);
    let received = format!("Received signal {}", sig.as_str());
    let at = finished
        .stdout
        .iter()
        .position(|l| *l == received)
        .unwrap_or_else(|| panic!("no {received:?} in {:#?}", finished.stdout));
    assert!(
        finished.stdout[at + 1..]
            .iter()
            .any(|l| l.starts_with("Cleaning up")),
        "no clean-up after the signal: {:#?}",
        finished.stdout
    );
    assert!(
        !finished.stdout.iter().any(|l| l.contains("no signal")),
        "{:#?}",
        finished.stdout
    );
}

#[test]
fn sigint_during_the_wait_is_reported_and_the_exit_is_clean() {
    signal_during_the_wait_is_caught(Signal::SIGINT);
}

#[test]
fn sigterm_during_the_wait_is_reported_and_the_exit_is_clean() {
    signal_during_the_wait_is_caught(Signal::SIGTERM);
}

#[test]
fn without_a_signal_the_wait_ends_after_the_time_given() {
    let finished = run(demo(&["--wait-secs", "1"]), 20);
    assert_success(&finished);
    assert!(
        finished
            .stdout
            .last()
            .is_some_and(|l| l.contains("1 second passed with no signal")),
        "{:#?}",
        finished.stdout
    );
    assert!(
        finished.took >= Duration::from_secs(1),
        "{:?}",
        finished.took
    );
}
