//! The demo's own children: spawning them through tend-os with stdin, stdout and stderr on pipes,
//! and reaping them the way tend does, with `reap_one` woken by SIGCHLD (not std's
//! `Child::wait`: tend-os hands over no std handle, and one reaper owns `waitpid`).

use std::fs::File;
use std::io::Read;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tend_core::{ExitStatus, Signal};
use tend_os::{Pid, SignalWaiter};

/// How long a child that was told to end (its stdin closed) may take to exit.
pub const EXIT_WITHIN: Duration = Duration::from_secs(10);

/// A running child of the demo, with its three pipes.
pub struct Piped<'w> {
    /// The child itself, to reap.
    pub child: OwnChild<'w>,
    /// The write end of its stdin: dropping it is the child's EOF.
    pub stdin: File,
    /// The read end of its stdout.
    pub stdout: File,
    /// The read end of its stderr.
    pub stderr: File,
}

/// Spawns `argv` through tend-os with its stdin, stdout and stderr on pipes.
pub fn spawn_piped<'w>(argv: &[String], sigchld: &'w SignalWaiter) -> anyhow::Result<Piped<'w>> {
    let (child, stdin) = tend_os::spawn_with_stdin(&tend_os::Command {
        argv,
        cwd: None,
        env: &[],
        actions: &[],
    })
    .with_context(|| format!("starting {}", argv.join(" ")))?;
    Ok(Piped {
        child: OwnChild {
            pid: child.pid,
            sigchld,
            reaped: false,
        },
        stdin: File::from(stdin),
        stdout: File::from(child.stdout),
        stderr: File::from(child.stderr),
    })
}

/// The argv that runs this same binary with `args`: the demos' helper children.
pub fn this_binary(args: &[&str]) -> anyhow::Result<Vec<String>> {
    let exe = std::env::current_exe().context("finding this program")?;
    let exe = exe
        .into_os_string()
        .into_string()
        .map_err(|exe| anyhow::anyhow!("this program's path is not UTF-8: {exe:?}"))?;
    Ok(std::iter::once(exe)
        .chain(args.iter().map(|a| a.to_string()))
        .collect())
}

/// A child the demo must reap. Dropped without [`OwnChild::wait`] (the demo is leaving on an
/// error), it kills the child's process group and reaps it, so no demo leaves a process behind.
pub struct OwnChild<'w> {
    pid: Pid,
    sigchld: &'w SignalWaiter,
    reaped: bool,
}

impl OwnChild<'_> {
    /// The child's pid (also its process group id).
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Waits up to `within` for the child to exit and reaps it; fails if it did not exit cleanly
    /// (printing what it wrote on `stderr`, read to EOF).
    pub fn wait(mut self, within: Duration, stderr: File) -> anyhow::Result<()> {
        let Some(status) = reap(self.pid, self.sigchld, within)? else {
            bail!("child {} did not exit within {within:?}", self.pid);
        };
        self.reaped = true;
        let mut errors = String::new();
        // Every writer of the pipe has exited by now (the child's own children are none of ours).
        let _ = { stderr }.read_to_string(&mut errors);
        match status {
            ExitStatus::Code(0) => Ok(()),
            ExitStatus::Code(code) => bail!("child {} exited with {code}: {errors}", self.pid),
            ExitStatus::Signaled(n) => bail!(
                "child {} was killed by {}: {errors}",
                self.pid,
                tend_os::signal_name(n)
            ),
        }
    }
}

impl Drop for OwnChild<'_> {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = tend_os::signal_group(self.pid, Signal::Kill);
            let _ = reap(self.pid, self.sigchld, EXIT_WITHIN);
        }
    }
}

/// Reaps `pid` once it has exited, waiting at most `within`: `None` if it is still running then.
///
/// SIGCHLD is blocked, so one that arrives between a `reap_one` finding nothing and the wait stays
/// pending and ends the wait at once: no exit is missed, and nothing polls.
fn reap(pid: Pid, sigchld: &SignalWaiter, within: Duration) -> anyhow::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + within;
    loop {
        // SIGCHLD coalesces: reap everything that has exited before waiting for the next one.
        while let Some((reaped, status)) = tend_os::reap_one()? {
            if reaped == pid {
                return Ok(Some(status));
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        sigchld.wait(Some(left))?;
    }
}
