//! What follows a run that ended without being stopped: the restart policy, the success
//! codes, the backoff that grows from one failure to the next, and the restart budget
//! (`max_restarts` within a sliding window) after which tend gives up.

use std::time::{Duration, Instant};

use super::instance::{Instance, Run};
use super::{ExitStatus, Next, State};
use crate::spec::{ProcessSpec, RestartPolicy};

/// Whether `status` is one of `spec`'s success codes.
pub(super) fn is_success(spec: &ProcessSpec, status: ExitStatus) -> bool {
    matches!(status, ExitStatus::Code(code) if spec.success_codes.contains(&code))
}

/// Decides what follows `run` of `inst`, which ended as `how` at `now` with nobody stopping
/// it (or stopped by a failed check: `failed`, whatever its exit status), and updates the
/// instance's wish and restart budget: restart after a delay, or stay exited (the policy does
/// not restart it) or failed (the budget is spent).
pub(super) fn after_exit(
    spec: &ProcessSpec,
    inst: &mut Instance,
    run: &Run,
    how: &Result<ExitStatus, String>,
    failed: bool,
    now: Instant,
) -> Next {
    let success = !failed && matches!(how, Ok(status) if is_success(spec, *status));
    let wanted = match spec.restart {
        RestartPolicy::Always => true,
        RestartPolicy::OnFailure => !success,
        RestartPolicy::Never => false,
    };
    if !wanted {
        inst.want_up = false;
        return Next::Stay(State::Exited);
    }
    // A run that stayed up start_secs (and got ready, if it has a readiness check) was a good
    // one: the next failure starts from the initial backoff again.
    let got_ready = spec.ready.is_none() || run.was_ready;
    if now.saturating_duration_since(run.since) >= spec.start_secs && run.pid.is_some() && got_ready
    {
        inst.next_backoff = spec.backoff.initial;
    }
    let window = spec.max_restarts.within;
    while inst
        .recent_restarts
        .front()
        .is_some_and(|&t| now.saturating_duration_since(t) >= window)
    {
        inst.recent_restarts.pop_front();
    }
    if inst.recent_restarts.len() >= spec.max_restarts.count as usize {
        inst.want_up = false;
        return Next::Stay(State::Failed);
    }
    let delay = inst.next_backoff;
    inst.recent_restarts.push_back(now);
    inst.restarts += 1;
    inst.next_backoff = grow(delay, spec.backoff.factor, spec.backoff.max);
    Next::Restart(delay)
}

/// The backoff after `delay`: multiplied by `factor`, capped at `max`.
fn grow(delay: Duration, factor: f64, max: Duration) -> Duration {
    Duration::try_from_secs_f64(delay.as_secs_f64() * factor)
        .unwrap_or(max)
        .min(max)
}
