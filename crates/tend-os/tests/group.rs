//! Signalling process groups: reaching grandchildren, and a group that is gone.

mod common;

use common::{live_members, spawn_guarded, wait_for};
use nix::sys::wait::WaitStatus;
use tend_core::Signal;
use tend_os::{group_alive, signal_group};

#[test]
fn signal_group_reaches_grandchildren() {
    let (child, mut guard) = spawn_guarded(&["sh", "-c", "sleep 60 & sleep 60 & wait"]);
    wait_for("the shell and both sleeps", 5, || {
        (live_members(child.pid).len() == 3).then_some(())
    });

    assert!(signal_group(child.pid, Signal::Kill).expect("killpg"));
    assert!(matches!(
        guard.wait(),
        WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGKILL, _)
    ));
    // The orphaned sleeps are reaped by whoever inherited them; they must not be running.
    wait_for("every process of the group to be gone", 5, || {
        live_members(child.pid).is_empty().then_some(())
    });
}

#[test]
fn signal_group_after_the_group_is_gone_is_ok_false() {
    let (child, mut guard) = spawn_guarded(&["sleep", "30"]);
    assert!(group_alive(child.pid));
    assert!(signal_group(child.pid, Signal::Term).expect("killpg"));
    assert!(matches!(
        guard.wait(),
        WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGTERM, _)
    ));

    assert!(!group_alive(child.pid));
    assert!(!signal_group(child.pid, Signal::Kill).expect("killpg"));
}

#[test]
fn signal_process_if_signals_only_what_the_check_vouches_for() {
    let (child, mut guard) = spawn_guarded(&["sleep", "60"]);
    // Not vouched for: nothing is sent.
    assert!(!tend_os::signal_process_if(child.pid, Signal::Kill, || false).expect("pidfd"));
    assert!(group_alive(child.pid), "left alone");
    // Vouched for: sent, to that very process.
    assert!(tend_os::signal_process_if(child.pid, Signal::Kill, || true).expect("pidfd"));
    assert!(matches!(
        guard.wait(),
        WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGKILL, _)
    ));
    // Gone (or its pid someone else's, whom the check does not vouch for): nothing sent.
    assert!(!tend_os::signal_process_if(child.pid, Signal::Kill, || false).expect("gone"));
}
