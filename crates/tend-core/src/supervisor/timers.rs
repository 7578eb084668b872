//! The supervisor's timers, in one ordered index: the next wake-up is its first entry, and a
//! tick takes only the entries that are due, however many instances there are.
//!
//! A timer is armed when a state that waits for a time is entered and disarmed when it is
//! left; the state keeps the time, so disarming finds the entry. `None` as a time means a delay
//! too long for the clock to hold: such a timer never fires and is not kept.

use std::collections::BTreeSet;
use std::time::Instant;

use super::{InstanceId, RunId};

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    /// The run of a starting instance has been up for `start_secs`: it is running.
    Up(InstanceId),
    /// The restart delay of an instance in backoff is over: spawn it.
    Restart(InstanceId),
    /// The stop timeout of a stopping instance passed: SIGKILL its group.
    Kill(InstanceId),
    /// A run with a readiness check did not get ready within its start timeout.
    ReadyBy(InstanceId),
    /// A run with a watchdog did not send `WATCHDOG=1` in time.
    Watchdog(InstanceId),
    /// The deadline of a leftover group that got its stop signal passed: SIGKILL it.
    KillLeftover(RunId),
    /// The `retry_after` of a failed instance passed: start it again.
    Retry(InstanceId),
}

/// Every armed timer, by due time.
#[derive(Debug, Default)]
pub(super) struct Timers {
    due: BTreeSet<(Instant, Timer)>,
}

impl Timers {
    /// Arms `timer` for `at` (nothing when `at` is `None`).
    pub(super) fn arm(&mut self, at: Option<Instant>, timer: Timer) {
        if let Some(at) = at {
            self.due.insert((at, timer));
        }
    }

    /// Disarms `timer`, armed for `at`.
    pub(super) fn disarm(&mut self, at: Option<Instant>, timer: Timer) {
        if let Some(at) = at {
            self.due.remove(&(at, timer));
        }
    }

    /// When the first timer is due.
    pub(super) fn next(&self) -> Option<Instant> {
        self.due.first().map(|&(at, _)| at)
    }

    /// Takes the first timer due at or before `now`, if any.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        let &(at, timer) = self.due.first()?;
        (at <= now).then(|| {
            self.due.pop_first();
            timer
        })
    }

    /// How many timers are armed.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.due.len()
    }
}
