//! What the driver does to the world, behind one seam: spawning children, signalling process
//! groups, asking whether a group still has members, and reaping. [`Os`] is the real thing
//! (tend-os); tests put a fake in its place and drive the supervisor without processes, under
//! tokio's paused clock.
//!
//! The driver's other inputs reach it on one channel as [`Event`]s: a child exited (SIGCHLD,
//! or the fake's word), a signal to tend, a control request, a config read for a reload.

use std::os::fd::BorrowedFd;

use tend_core::{ExitStatus, ReadyFact, RunId, Signal};
use tend_os::{Child, Command, OsError, Pid};

use super::control::ControlRequest;
use super::requests::Loaded;

/// Something the driver must act on, from whichever source.
pub enum Event {
    /// A child may have exited: reap (SIGCHLD coalesces, so reap until none is left).
    ChildExited,
    /// tend got this signal.
    Signal(Signal),
    /// A control request, from the socket.
    Control(ControlRequest),
    /// The config file was read for a reload, off the driver's thread.
    Loaded(Loaded),
    /// The env files of the processes of a `restart` were read, off the driver's thread:
    /// the variables of each process by slot, or why a file could not be read.
    EnvRead {
        /// The restart request.
        args: tend_proto::TargetArgs,
        /// [`Driver::stops_asked`](super::Driver) when it came.
        stops_asked: u64,
        /// Its reply.
        reply: tokio::sync::oneshot::Sender<super::control::Reply>,
        /// The variables by process slot, or the error.
        read: super::requests::EnvsRead,
    },
    /// A run's readiness check found something, or the run said something over sd_notify.
    Readiness {
        /// The run.
        run: RunId,
        /// What.
        fact: ReadyFact,
    },
    /// The HTTP API has stopped accepting and its connections are done (tend is stopping).
    HttpDrained,
    /// A try of a run's liveness check ended.
    HealthChecked {
        /// The run.
        run: RunId,
        /// `Err`: why it failed.
        result: Result<(), String>,
    },
}

/// The driver's hands: each call is one system call or a few, and never blocks for long.
pub trait World {
    /// Spawns `cmd` into its own process group, as [`tend_os::spawn`] does.
    fn spawn(&mut self, cmd: &Command<'_>) -> Result<Child, OsError>;
    /// Spawns `cmd` on `terminal` in a new session, as [`tend_os::spawn_on_terminal`] does.
    fn spawn_on_terminal(
        &mut self,
        cmd: &Command<'_>,
        terminal: BorrowedFd<'_>,
    ) -> Result<Pid, OsError>;
    /// Sends `signal` to the group `pgid`: `Ok(false)` when the group is gone.
    fn signal_group(&mut self, pgid: Pid, signal: Signal) -> Result<bool, OsError>;
    /// Whether any process (zombies included) is left in the group `pgid`.
    fn group_alive(&self, pgid: Pid) -> bool;
    /// Reaps one exited child without blocking; `Ok(None)` when none has exited.
    fn reap_one(&mut self) -> Result<Option<(Pid, ExitStatus)>, OsError>;
}

/// The real world, through tend-os.
pub struct Os;

impl World for Os {
    fn spawn(&mut self, cmd: &Command<'_>) -> Result<Child, OsError> {
        tend_os::spawn(cmd)
    }

    fn spawn_on_terminal(
        &mut self,
        cmd: &Command<'_>,
        terminal: BorrowedFd<'_>,
    ) -> Result<Pid, OsError> {
        tend_os::spawn_on_terminal(cmd, terminal)
    }

    fn signal_group(&mut self, pgid: Pid, signal: Signal) -> Result<bool, OsError> {
        tend_os::signal_group(pgid, signal)
    }

    fn group_alive(&self, pgid: Pid) -> bool {
        tend_os::group_alive(pgid)
    }

    fn reap_one(&mut self) -> Result<Option<(Pid, ExitStatus)>, OsError> {
        tend_os::reap_one()
    }
}
