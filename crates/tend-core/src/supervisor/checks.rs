//! The facts of a run's checks: readiness (and what a run says over the sd_notify protocol),
//! the watchdog, and the liveness check. A check that fails a run stops it and has its restart
//! policy judge its end as a failure.

use std::time::{Duration, Instant};

use super::instance::{Status, Then};
use super::{deadline_after, Effect, Failure, InstanceId, Notice, ReadyFact, RunId, Supervisor};

/// The most of a `STATUS=` text kept, in bytes.
const MAX_STATUS_TEXT: usize = 1024;

impl Supervisor {
    /// A readiness fact about the live `run` of `id`.
    pub(super) fn readiness(
        &mut self,
        id: InstanceId,
        run: RunId,
        fact: ReadyFact,
        now: Instant,
        out: &mut Vec<Effect>,
    ) {
        let spec = self.spec_of(id);
        let Some(ready) = spec.ready.as_ref() else {
            return;
        };
        if self.inst(id).active_run().is_none_or(|r| r.id != run) {
            return;
        }
        match fact {
            ReadyFact::Ready => {
                if !matches!(self.inst(id).status, Status::Running { .. }) {
                    return;
                }
                let watchdog = ready.watchdog;
                self.modify(id, |status| {
                    if let Status::Running { mut run, .. } =
                        std::mem::replace(status, Status::Stopped)
                    {
                        // The watchdog starts when the start-up is complete, as systemd's.
                        if !run.was_ready {
                            run.watchdog_at = watchdog.and_then(|every| deadline_after(now, every));
                        }
                        run.was_ready = true;
                        *status = Status::Ready { run };
                    }
                });
                out.push(Effect::Notify(Notice::Ready { instance: id }));
            }
            ReadyFact::NotReady => {
                if !matches!(self.inst(id).status, Status::Ready { .. }) {
                    return;
                }
                self.modify(id, |status| {
                    if let Status::Ready { run } = std::mem::replace(status, Status::Stopped) {
                        *status = Status::Running {
                            run,
                            ready_by: None,
                        };
                    }
                });
            }
            ReadyFact::Status(mut text) => {
                if text.len() > MAX_STATUS_TEXT {
                    let mut end = MAX_STATUS_TEXT;
                    while !text.is_char_boundary(end) {
                        end -= 1;
                    }
                    text.truncate(end);
                }
                if let Some(run) = self.inst_mut(id).run_mut() {
                    run.status_text = Some(text);
                }
            }
            ReadyFact::MainPid(pid) => {
                if let Some(run) = self.inst_mut(id).run_mut() {
                    run.main_pid = Some(pid);
                }
            }
            ReadyFact::WatchdogPing => {
                if let Some(every) = ready.watchdog {
                    self.modify(id, |status| {
                        if let Status::Running { run, .. } | Status::Ready { run } = status {
                            if run.was_ready {
                                run.watchdog_at = deadline_after(now, every);
                            }
                        }
                    });
                }
            }
            ReadyFact::WatchdogTrigger => {
                self.fail_run(id, Failure::Watchdog(Duration::ZERO), now, out)
            }
            ReadyFact::ExtendTimeout(by) => {
                let until = deadline_after(now, by);
                self.modify(id, |status| {
                    if let Status::Running {
                        ready_by: Some(at), ..
                    } = status
                    {
                        *at = (*at).max(until.unwrap_or(*at));
                    }
                });
            }
        }
    }

    /// A try of the liveness check of the live `run` of `id` ended. Tries count once the run
    /// is ready (or, without a readiness check, once it is running: up for `start_secs`).
    pub(super) fn health_checked(
        &mut self,
        id: InstanceId,
        run: RunId,
        result: Result<(), String>,
        now: Instant,
        out: &mut Vec<Effect>,
    ) {
        let spec = self.spec_of(id);
        let Some(health) = spec.health.as_ref() else {
            return;
        };
        let counts = match &self.inst(id).status {
            Status::Ready { run: r } => r.id == run,
            Status::Running { run: r, .. } => r.id == run && spec.ready.is_none(),
            _ => false,
        };
        if !counts {
            return;
        }
        let state = &mut self.inst_mut(id).run_mut().expect("a live run").health;
        state.checked = true;
        match result {
            Ok(()) => {
                let was_failing = state.failures_in_row > 0;
                state.failures_in_row = 0;
                if was_failing {
                    out.push(Effect::Notify(Notice::Health {
                        instance: id,
                        result: Ok(()),
                    }));
                }
            }
            Err(reason) => {
                state.failures_in_row = state.failures_in_row.saturating_add(1);
                state.last_failure = Some(reason.clone());
                let failures = state.failures_in_row;
                if failures == 1 {
                    out.push(Effect::Notify(Notice::Health {
                        instance: id,
                        result: Err(reason.clone()),
                    }));
                }
                if failures >= health.failures {
                    self.fail_run(id, Failure::Unhealthy { failures, reason }, now, out);
                }
            }
        }
    }

    /// A sample of what the live `run` of `id` uses: above its `memory_limit` for
    /// `memory_limit_for`, the run is failed (stopped, and its restart policy applies), as
    /// pm2's `max_memory_restart` does, but measured on the whole tree.
    pub(super) fn memory_used(
        &mut self,
        id: InstanceId,
        run: RunId,
        bytes: u64,
        now: Instant,
        out: &mut Vec<Effect>,
    ) {
        let Some(limit) = self.spec_of(id).memory_limit else {
            return;
        };
        // A live run, not one on its way down (Stopping): the stop is already asked for.
        if self
            .inst(id)
            .active_run()
            .is_none_or(|r| r.id != run || r.pid.is_none())
        {
            return;
        }
        let live = self.inst_mut(id).run_mut().expect("an active run");
        if bytes <= limit.bytes {
            live.over_memory_since = None;
            return;
        }
        let since = *live.over_memory_since.get_or_insert(now);
        if now.saturating_duration_since(since) >= limit.for_at_least {
            let failure = Failure::MemoryLimit {
                bytes,
                limit: limit.bytes,
            };
            self.fail_run(id, failure, now, out);
        }
    }

    /// A check failed the live run of `id`: stop it, and let its restart policy judge its end
    /// as a failure.
    pub(super) fn fail_run(
        &mut self,
        id: InstanceId,
        failure: Failure,
        now: Instant,
        out: &mut Vec<Effect>,
    ) {
        if self
            .inst(id)
            .active_run()
            .is_none_or(|run| run.pid.is_none())
        {
            return;
        }
        out.push(Effect::Notify(Notice::CheckFailed {
            instance: id,
            failure,
        }));
        self.begin_stop(id, now, out);
        self.set_then(id, Then::Fail);
    }
}
