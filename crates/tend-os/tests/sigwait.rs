//! Contract tests of `SignalWaiter` against real signals.
//!
//! Its own test binary, without the libtest harness: blocking a signal is only safe when every
//! thread of the process blocks it (the kernel may deliver `kill(getpid())` to any thread that
//! does not, and SIGUSR1's default action ends the process), so `main` blocks before any thread
//! exists, as a program using `SignalWaiter` must, and runs the tests one after the other.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{spawn_guarded, status_field};
use nix::sys::pthread::{pthread_kill, pthread_self};
use nix::sys::signal::{self as nix_signal, SaFlags, SigAction, SigHandler, SigSet};
use nix::unistd::getpid;
use tend_core::Signal;
use tend_os::SignalWaiter;

/// Slack for a loaded machine on top of a timeout, never part of what is asserted as "early".
const SLACK: Duration = Duration::from_secs(2);

/// A test: gets the waiter `main` made, fails by panicking.
type Test = fn(&SignalWaiter);

/// `[(name, test), ...]` for the test functions named.
macro_rules! tests {
    ($($test:ident),* $(,)?) => {
        [$((stringify!($test), $test as Test)),*]
    };
}

fn main() {
    // First thing, while the process has one thread: every thread spawned later inherits this.
    let waiter = SignalWaiter::block(&[Signal::Usr1, Signal::Usr2]).expect("block");
    let tests: &[(&str, Test)] = &tests![
        a_blocked_signal_sent_to_the_process_is_returned,
        no_signal_returns_none_after_about_the_timeout,
        a_zero_timeout_only_looks,
        a_signal_from_another_thread_ends_a_wait_without_timeout,
        interruptions_by_a_handled_signal_do_not_shorten_the_timeout,
        spawned_children_do_not_inherit_the_blocked_mask,
        sigkill_sigstop_and_nothing_cannot_be_blocked,
    ];
    println!("\nrunning {} tests", tests.len());
    let start = Instant::now();
    for (name, test) in tests {
        print!("test {name} ... ");
        std::io::stdout().flush().expect("flush");
        // A failed assertion panics, which ends the process with a non-zero status.
        test(&waiter);
        println!("ok");
    }
    println!(
        "\ntest result: ok. {} passed; 0 failed; finished in {:.2}s\n",
        tests.len(),
        start.elapsed().as_secs_f64()
    );
}

fn a_blocked_signal_sent_to_the_process_is_returned(waiter: &SignalWaiter) {
    nix_signal::kill(getpid(), nix_signal::SIGUSR1).expect("kill");
    assert_eq!(
        waiter.wait(Some(Duration::from_secs(5))).expect("wait"),
        Some(Signal::Usr1)
    );
    // Taken out: nothing is left pending.
    assert_eq!(waiter.wait(Some(Duration::ZERO)).expect("wait"), None);
}

fn no_signal_returns_none_after_about_the_timeout(waiter: &SignalWaiter) {
    let timeout = Duration::from_millis(300);
    let start = Instant::now();
    assert_eq!(waiter.wait(Some(timeout)).expect("wait"), None);
    let took = start.elapsed();
    assert!(
        took >= timeout,
        "returned after {took:?}, before {timeout:?}"
    );
    assert!(took < timeout + SLACK, "returned after {took:?}");
}

fn a_zero_timeout_only_looks(waiter: &SignalWaiter) {
    assert_eq!(waiter.wait(Some(Duration::ZERO)).expect("wait"), None);
    // A signal a process sends itself is pending when kill returns.
    nix_signal::kill(getpid(), nix_signal::SIGUSR2).expect("kill");
    assert_eq!(
        waiter.wait(Some(Duration::ZERO)).expect("wait"),
        Some(Signal::Usr2)
    );
}

fn a_signal_from_another_thread_ends_a_wait_without_timeout(waiter: &SignalWaiter) {
    // The thread inherits the mask, so the signal stays pending for whichever thread waits.
    let sender = thread::spawn(|| nix_signal::kill(getpid(), nix_signal::SIGUSR2).expect("kill"));
    assert_eq!(waiter.wait(None).expect("wait"), Some(Signal::Usr2));
    sender.join().expect("sender thread");
}

static HANDLED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_alarm(_: libc::c_int) {
    HANDLED.fetch_add(1, Ordering::Relaxed);
}

fn interruptions_by_a_handled_signal_do_not_shorten_the_timeout(waiter: &SignalWaiter) {
    let action = SigAction::new(
        SigHandler::Handler(count_alarm),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only increments an atomic, which is async-signal-safe; SIGALRM has no
    // other use in this process.
    unsafe { nix_signal::sigaction(nix_signal::SIGALRM, &action) }.expect("sigaction");
    // A thread keeps sending SIGALRM to the waiting thread, so sigtimedwait fails with EINTR
    // again and again; the pace is only to spread the interruptions over the wait.
    let waiting = pthread_self();
    let stop = Arc::new(AtomicBool::new(false));
    let interrupter = thread::spawn({
        let stop = Arc::clone(&stop);
        move || {
            while !stop.load(Ordering::Relaxed) {
                pthread_kill(waiting, nix_signal::SIGALRM).expect("pthread_kill");
                thread::sleep(Duration::from_millis(20));
            }
        }
    });
    let timeout = Duration::from_millis(500);
    let start = Instant::now();
    let got = waiter.wait(Some(timeout));
    let took = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    interrupter.join().expect("interrupter thread");
    assert_eq!(got.expect("wait retries EINTR"), None);
    assert!(
        took >= timeout,
        "returned after {took:?}, before {timeout:?}"
    );
    assert!(took < timeout + SLACK, "returned after {took:?}");
    assert!(
        HANDLED.load(Ordering::Relaxed) > 0,
        "no SIGALRM was handled"
    );
}

fn spawned_children_do_not_inherit_the_blocked_mask(_: &SignalWaiter) {
    let ours = status_field(std::process::id() as i32, "SigBlk");
    assert!(
        ours.ends_with("a00"),
        "SIGUSR1 and SIGUSR2 blocked here: {ours}"
    );
    let (child, _guard) = spawn_guarded(&["sleep", "30"]);
    let theirs = status_field(child.pid, "SigBlk");
    assert!(theirs.chars().all(|c| c == '0'), "child's SigBlk {theirs}");
}

fn sigkill_sigstop_and_nothing_cannot_be_blocked(_: &SignalWaiter) {
    for signals in [&[Signal::Kill][..], &[Signal::Term, Signal::Stop], &[]] {
        let err = SignalWaiter::block(signals).expect_err("must refuse");
        assert_eq!(err.errno(), Some(libc::EINVAL), "{signals:?}");
    }
}
