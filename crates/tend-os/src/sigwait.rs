//! Synchronous signal intake for a program that blocks instead of running an event loop: the
//! lesson's "wait for signals in a separate thread", without a signal handler.
//!
//! [`SignalWaiter::block`] blocks a set of signals in the calling thread, so that they stay
//! pending instead of running a handler or their default action (for SIGINT and SIGTERM: death),
//! and [`SignalWaiter::wait`] takes one pending signal out with `sigtimedwait`, waiting up to a
//! timeout. Nothing runs in signal context, so the program may do anything with what it learns.
//!
//! The mask belongs to a thread and is inherited by the threads it spawns later: **block before
//! the process spawns any thread** (and before any runtime starts). A thread that left a signal
//! unblocked may be the one the kernel delivers a process-directed signal to, and then the
//! default action runs. Children spawned with [`spawn`](crate::spawn()) start with an empty mask
//! whatever the mask here; a process that [`daemonize`](crate::daemonize())s keeps it. tend
//! itself takes signals through its async runtime; this serves blocking programs such as
//! process-demo.

use std::io;
use std::ptr;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
use tend_core::Signal;

use crate::signal::{signal_from_number, to_nix};
use crate::OsError;

/// A set of signals blocked in the threads of this process, taken out one at a time by
/// [`SignalWaiter::wait`].
///
/// The signals stay blocked when it is dropped: unblocking them would deliver a pending one with
/// its default action.
#[derive(Debug, Clone)]
pub struct SignalWaiter {
    set: SigSet,
}

impl SignalWaiter {
    /// Blocks `signals` in the calling thread (adding to what it already blocks) and returns the
    /// waiter for them. Call it before the process spawns any thread, so that every thread
    /// inherits the mask (see the module doc).
    ///
    /// `SIGKILL` and `SIGSTOP` cannot be blocked: asking for them fails with op
    /// `"pthread_sigmask"` and `EINVAL`, as does an empty list.
    pub fn block(signals: &[Signal]) -> Result<SignalWaiter, OsError> {
        if signals.is_empty()
            || signals
                .iter()
                .any(|s| matches!(s, Signal::Kill | Signal::Stop))
        {
            return Err(OsError::from_errno("pthread_sigmask", Errno::EINVAL));
        }
        let mut set = SigSet::empty();
        for &sig in signals {
            set.add(to_nix(sig));
        }
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
            .map_err(|e| OsError::from_errno("pthread_sigmask", e))?;
        Ok(SignalWaiter { set })
    }

    /// Waits until one of the blocked signals is pending and takes it out (it is then gone: the
    /// same signal sent twice before a wait is one signal, as always for standard signals).
    ///
    /// Returns `Ok(None)` once `timeout` has passed with no signal (`None` waits for ever; a zero
    /// timeout only looks). An interruption by a signal that has a handler (`EINTR`) is retried
    /// with the time left.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<Option<Signal>, OsError> {
        // A timeout too large for an Instant is as good as none.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let set: &libc::sigset_t = self.set.as_ref();
        loop {
            let rc = match deadline {
                // SAFETY: `set` is a valid, initialised sigset_t; a null siginfo is allowed.
                None => unsafe { libc::sigwaitinfo(set, ptr::null_mut()) },
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let timeout = libc::timespec {
                        tv_sec: left.as_secs().try_into().unwrap_or(libc::time_t::MAX),
                        tv_nsec: left.subsec_nanos().into(),
                    };
                    // SAFETY: `set` and `timeout` are valid and initialised; a null siginfo is
                    // allowed.
                    unsafe { libc::sigtimedwait(set, ptr::null_mut(), &timeout) }
                }
            };
            if rc > 0 {
                // Only a signal of the set can come out, and the set holds only known signals.
                return signal_from_number(rc)
                    .map(Some)
                    .ok_or_else(|| OsError::from_errno("sigtimedwait", Errno::EINVAL));
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => return Ok(None),
                _ => return Err(OsError::new("sigtimedwait", err)),
            }
        }
    }
}
