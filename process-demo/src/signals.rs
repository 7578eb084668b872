//! The lesson's second demo, signal handling (信号处理): for a few seconds, a Ctrl+C (SIGINT) or
//! a SIGTERM is caught and reported instead of killing the program, which then cleans up and
//! exits normally.
//!
//! As the lesson does, a separate thread waits for the signal. It needs no signal handler:
//! SIGINT and SIGTERM are blocked, so they stay pending until the thread takes them with
//! [`SignalWaiter::wait`]. They are blocked *before* that thread starts, so it inherits the mask
//! (a thread with the signal unblocked would receive it and die of it).

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use tend_core::Signal;
use tend_os::SignalWaiter;

/// Runs the demo: waits up to `wait` for SIGINT or SIGTERM.
pub fn run(wait: Duration) -> anyhow::Result<()> {
    println!("== Signals: catching SIGINT and SIGTERM (信号处理) ==");
    let waiter = SignalWaiter::block(&[Signal::Int, Signal::Term])?;
    let (tx, rx) = mpsc::channel();
    // Detached: when no signal comes, the process exits with this thread still waiting.
    thread::spawn(move || {
        let _ = tx.send(waiter.wait(None));
    });
    let secs = match wait.as_secs() {
        1 => "1 second".to_owned(),
        n => format!("{n} seconds"),
    };
    println!(
        "Waiting {secs} (PID {}): press Ctrl+C (SIGINT) and the program catches it instead of dying.",
        std::process::id()
    );
    match rx.recv_timeout(wait) {
        Ok(signal) => {
            let signal = signal?.ok_or_else(|| anyhow::anyhow!("a wait for ever timed out"))?;
            println!("Received signal {}", signal.name());
            println!("Cleaning up before exit (nothing to close here) ... done.");
        }
        Err(RecvTimeoutError::Disconnected) => anyhow::bail!("the signal thread died"),
        Err(RecvTimeoutError::Timeout) => {
            println!("{secs} passed with no signal; exiting normally.")
        }
    }
    Ok(())
}
