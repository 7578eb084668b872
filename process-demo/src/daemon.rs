//! The lesson's daemon (守护进程): go to the background in the lesson's five steps, through
//! [`tend_os::daemonize`], and write a status file: the daemon's PID, then a heartbeat line with a
//! time stamp every second, and a last line when SIGTERM (or SIGINT) stops it.
//!
//! The heartbeat's clock is [`SignalWaiter::wait`] with a timeout: the daemon sleeps until the
//! next second or a signal, whichever comes first. No busy loop, no thread, no signal handler.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use tend_core::Signal;
use tend_os::{Daemon, ReadySender, SignalWaiter};

/// The daemon's file mode creation mask (step 4): files it creates are not group- or
/// world-writable, whatever the umask of the shell that started it.
const UMASK: u32 = 0o022;

/// Runs the demo. In the process started from the terminal: prints the steps, then the daemon's
/// PID once it is ready, and returns. In the daemon: writes `out` until a signal or `lifetime`.
pub fn run(out: &Path, lifetime: Option<Duration>) -> anyhow::Result<ExitCode> {
    // The daemon's working directory will be `/`.
    let out = std::path::absolute(out).with_context(|| format!("{}", out.display()))?;
    println!("== Daemon (守护进程) ==");
    println!("Going to the background in the lesson's five steps:");
    println!("  1. fork, and the parent exits (this process, once the daemon says it is ready)");
    println!("  2. setsid: a new session, with no controlling terminal (then a second fork, so");
    println!("     that the daemon leads no session and can never get a terminal back)");
    println!("  3. chdir /: keep no directory busy");
    println!("  4. umask {UMASK:03o}: a known file mode creation mask");
    println!("  5. stdin, stdout and stderr to /dev/null");
    match tend_os::daemonize(UMASK)? {
        Daemon::Parent(parent) => match parent.wait() {
            Ok(pid) => {
                println!(
                    "Daemon started with PID {pid}; it writes to {}",
                    out.display()
                );
                println!("Watch it with: tail -f {}", out.display());
                println!("Stop it with: kill {pid}");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("process-demo: the daemon did not start: {e}");
                Ok(ExitCode::FAILURE)
            }
        },
        // stdout and stderr are /dev/null from here on: the status file is all the daemon says.
        Daemon::Child(ready) => Ok(match daemon(ready, &out, lifetime) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        }),
    }
}

/// The daemon's life: set up, report to the parent, then write heartbeats until stopped.
fn daemon(ready: ReadySender, out: &Path, lifetime: Option<Duration>) -> anyhow::Result<()> {
    let setup = || -> anyhow::Result<(SignalWaiter, File)> {
        // Blocked before the parent tells the user the PID: a `kill` right away is caught.
        let waiter = SignalWaiter::block(&[Signal::Term, Signal::Int])?;
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(out)
            .with_context(|| format!("opening {}", out.display()))?;
        line(&mut file, &format!("pid {}", std::process::id()))?;
        Ok((waiter, file))
    };
    let (waiter, mut file) = match setup() {
        Ok(set_up) => set_up,
        Err(e) => {
            // The parent prints it on the terminal.
            let _ = ready.failed(&format!("{e:#}"));
            return Err(e);
        }
    };
    // If the parent is gone (killed), nobody needs the report: carry on.
    let _ = ready.ready();

    let start = Instant::now();
    let mut beat = 0;
    loop {
        beat += 1;
        let due = start + Duration::from_secs(beat);
        if let Some(signal) = waiter.wait(Some(due.saturating_duration_since(Instant::now())))? {
            line(&mut file, &format!("stopping on {}", signal.name()))?;
            return Ok(());
        }
        line(
            &mut file,
            &format!("heartbeat {beat} {}", rfc3339(SystemTime::now())),
        )?;
        if lifetime.is_some_and(|lifetime| start.elapsed() >= lifetime) {
            line(&mut file, "stopping: lifetime over")?;
            return Ok(());
        }
    }
}

/// Appends `text` and a newline in one write (a reader never sees half a line); `File` has no
/// buffer, so the line is in the file when this returns.
fn line(file: &mut File, text: &str) -> anyhow::Result<()> {
    file.write_all(format!("{text}\n").as_bytes())
        .context("writing the status file")
}

/// `2026-11-24T06:49:41Z`: the heartbeat's time stamp (UTC).
fn rfc3339(t: SystemTime) -> String {
    tend_core::time::rfc3339_seconds(t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_stamps_are_rfc3339_utc() {
        let at = |secs| rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        // 2000-02-29, a leap day of a year divisible by 400.
        assert_eq!(at(951_782_400 + 3_723), "2000-02-29T01:02:03Z");
        assert_eq!(at(1_767_225_599), "2025-12-31T23:59:59Z");
    }
}
