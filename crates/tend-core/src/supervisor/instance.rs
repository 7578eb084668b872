//! The life of one instance: each state holds the data it needs (a run exists exactly while
//! the instance is starting, running, ready or stopping; a timer exactly while it waits for
//! one), and the transitions between states, with the effects each one asks for. Also the
//! leftover groups that runs leave behind.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{
    deadline_after, policy, signal, Effect, ExitStatus, Failure, HealthView, InstanceId,
    InstanceView, Next, Notice, Phase, RunId, State, Supervisor, Timer,
};
use crate::spec::{OnExit, ProcessSpec};
use crate::Signal;

/// One spawn of an instance, from the `Spawn` effect until its leader is reaped.
#[derive(Debug, Clone)]
pub(super) struct Run {
    pub(super) id: RunId,
    /// The spec it was spawned with (a restart of some instances may read the env file again
    /// for the next spawns; this run keeps what it got).
    pub(super) spec: Arc<ProcessSpec>,
    /// Known once `Spawned` arrives.
    pub(super) pid: Option<u32>,
    /// When `Spawned` arrived (or the spawn was asked for, until then).
    pub(super) since: Instant,
    /// When the watchdog fires unless `WATCHDOG=1` comes first (`ready.watchdog`): armed
    /// when the run first gets ready, as systemd arms it when the start-up is complete.
    pub(super) watchdog_at: Option<Instant>,
    /// The run got ready (by its readiness check) at some point.
    pub(super) was_ready: bool,
    /// `MAINPID=` of the sd_notify protocol: the process the run says is its main one.
    pub(super) main_pid: Option<u32>,
    /// `STATUS=` of the sd_notify protocol, as sent (the driver makes it safe to show).
    pub(super) status_text: Option<String>,
    /// The results of the liveness check so far.
    pub(super) health: Health,
    /// Since when the run has used more memory than its `memory_limit`, by the samples.
    pub(super) over_memory_since: Option<Instant>,
    /// Processes of the run the kernel's OOM killer killed, as the driver counted them.
    pub(super) oom_kills: u32,
}

impl Run {
    fn new(id: RunId, now: Instant, spec: Arc<ProcessSpec>) -> Self {
        Run {
            id,
            spec,
            pid: None,
            since: now,
            watchdog_at: None,
            was_ready: false,
            main_pid: None,
            status_text: None,
            health: Health::default(),
            over_memory_since: None,
            oom_kills: 0,
        }
    }
}

/// The liveness check's results for one run.
#[derive(Debug, Clone, Default)]
pub(super) struct Health {
    /// Whether any result arrived.
    pub(super) checked: bool,
    /// Failed tries since the last success.
    pub(super) failures_in_row: u32,
    /// Why the last failed try failed.
    pub(super) last_failure: Option<String>,
}

/// What follows a stop once the run has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Then {
    /// Stay stopped.
    Stay,
    /// Start again at once (a restart request, or a start that came while stopping).
    Restart,
    /// The run was stopped because a check failed (start timeout, watchdog, health): its end
    /// counts as a failure, and the restart policy decides.
    Fail,
}

/// What an instance is doing, with what that state needs.
#[derive(Debug, Clone)]
pub(super) enum Status {
    /// Not running and not wanted.
    Stopped,
    /// Wanted up, but a dependency's condition does not hold yet. `told`: the dependency
    /// (its slot) whose giving up the user was told of.
    Waiting { told: Option<usize> },
    /// Spawned (or being spawned: no pid yet), not yet up for `start_secs`, which ends at
    /// `up_at` (`None`: not spawned yet, or never). Only processes without a readiness check.
    Starting { run: Run, up_at: Option<Instant> },
    /// Without a readiness check: up for at least `start_secs`. With one: spawned and not
    /// ready yet; a failed start at `ready_by` (`None`: no start timeout).
    Running { run: Run, ready_by: Option<Instant> },
    /// Ready by its readiness check.
    Ready { run: Run },
    /// Waiting out the restart delay, until `until` (`None`: beyond the clock, never).
    Backoff { until: Option<Instant> },
    /// The stop signal was sent; SIGKILL at `kill_at` (`None`: sent already, or never), the
    /// `timeout` the run was stopped with (a reload may change the spec meanwhile).
    Stopping {
        run: Run,
        kill_at: Option<Instant>,
        timeout: Duration,
        then: Then,
    },
    /// Finished and not to be restarted (by policy).
    Exited,
    /// Gave up after `max_restarts`; tried again at `retry_at` (`retry_after`; `None`: not
    /// by itself).
    Failed { retry_at: Option<Instant> },
}

/// Everything the supervisor knows of one instance.
#[derive(Debug, Clone)]
pub(super) struct Instance {
    /// Wanted state, separate from the observed one (s6's want-up flag).
    pub(super) want_up: bool,
    pub(super) status: Status,
    /// The delay before the next restart.
    pub(super) next_backoff: Duration,
    /// When each recent restart was decided, for `max_restarts`.
    pub(super) recent_restarts: VecDeque<Instant>,
    /// Restarts over the instance's whole life, for status.
    pub(super) restarts: u64,
    pub(super) last_exit: Option<Result<ExitStatus, String>>,
    /// The OOM killer killed processes of the last run that ended.
    pub(super) last_exit_oom: bool,
    /// Processes of its runs the OOM killer killed, over the instance's whole life.
    pub(super) oom_kills: u64,
    /// The user stopped it (`tend stop`) and has not started it since: a failed or exited
    /// instance the user stopped keeps the instances a scale adds down too.
    pub(super) stopped_by_user: bool,
}

impl Instance {
    pub(super) fn new(spec: &ProcessSpec) -> Self {
        Instance {
            want_up: false,
            status: Status::Stopped,
            next_backoff: spec.backoff.initial,
            recent_restarts: VecDeque::new(),
            restarts: 0,
            last_exit: None,
            last_exit_oom: false,
            oom_kills: 0,
            stopped_by_user: false,
        }
    }

    /// The observed state, as reported.
    pub(super) fn state(&self) -> State {
        match self.status {
            Status::Stopped => State::Stopped,
            Status::Waiting { .. } => State::Waiting,
            Status::Starting { .. } => State::Starting,
            Status::Running { .. } => State::Running,
            Status::Ready { .. } => State::Ready,
            Status::Backoff { .. } => State::Backoff,
            Status::Stopping { .. } => State::Stopping,
            Status::Exited => State::Exited,
            Status::Failed { .. } => State::Failed,
        }
    }

    /// The live run, in the states that have one.
    pub(super) fn run(&self) -> Option<&Run> {
        match &self.status {
            Status::Starting { run, .. }
            | Status::Running { run, .. }
            | Status::Ready { run }
            | Status::Stopping { run, .. } => Some(run),
            _ => None,
        }
    }

    pub(super) fn run_mut(&mut self) -> Option<&mut Run> {
        match &mut self.status {
            Status::Starting { run, .. }
            | Status::Running { run, .. }
            | Status::Ready { run }
            | Status::Stopping { run, .. } => Some(run),
            _ => None,
        }
    }

    /// When the state's own deadline is due (not the watchdog's), if it has one.
    pub(super) fn timer(&self) -> Option<Instant> {
        match self.status {
            Status::Starting { up_at: at, .. }
            | Status::Running { ready_by: at, .. }
            | Status::Backoff { until: at }
            | Status::Failed { retry_at: at }
            | Status::Stopping { kill_at: at, .. } => at,
            _ => None,
        }
    }

    /// The live run, unless it is being stopped: the run that checks are about.
    pub(super) fn active_run(&self) -> Option<&Run> {
        match &self.status {
            Status::Starting { run, .. } | Status::Running { run, .. } | Status::Ready { run } => {
                Some(run)
            }
            _ => None,
        }
    }
}

/// The read-only view of an instance.
pub(super) fn view<'a>(
    id: InstanceId,
    spec: &'a ProcessSpec,
    inst: &'a Instance,
) -> InstanceView<'a> {
    let run = inst.run();
    InstanceView {
        id,
        spec,
        state: inst.state(),
        want_up: inst.want_up,
        run: run.map(|run| run.id),
        pid: run.and_then(|run| run.pid),
        since: run.map(|run| run.since),
        deadline: inst.timer(),
        restarts: inst.restarts,
        last_exit: inst.last_exit.as_ref(),
        last_exit_oom: inst.last_exit_oom,
        oom_kills: inst.oom_kills,
        main_pid: run.and_then(|run| run.main_pid),
        status_text: run.and_then(|run| run.status_text.as_deref()),
        health: run.filter(|run| run.health.checked).map(|run| HealthView {
            healthy: run.health.failures_in_row == 0,
            failures_in_row: run.health.failures_in_row,
            last_failure: run.health.last_failure.as_deref(),
        }),
    }
}

/// A process group whose leader was reaped while other members lived on.
#[derive(Debug, Clone)]
pub(super) struct Leftover {
    pub(super) pgid: u32,
    /// The instance whose run it was.
    pub(super) instance: InstanceId,
    fate: Fate,
}

impl Leftover {
    /// Whether a kill timer is armed for the group.
    #[cfg(test)]
    pub(super) fn is_draining_with_deadline(&self) -> bool {
        matches!(self.fate, Fate::Draining(Some(_)))
    }
}

/// What happens to a leftover group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Its leader exited on its own (a background job may still write): left alone until
    /// everything stops.
    Lingering,
    /// Its members got the stop signal and may finish their own graceful stop until then;
    /// SIGKILL at that time (`None`: a stop timeout beyond what the clock holds, never).
    Draining(Option<Instant>),
    /// SIGKILL was sent; waiting for the driver to report the group empty.
    Killed,
}

impl Supervisor {
    /// Moves `id` to `status`, disarming the timer of the state it leaves and arming the one
    /// of the state it enters.
    pub(super) fn set_status(&mut self, id: InstanceId, status: Status) -> Status {
        self.modify(id, |current| std::mem::replace(current, status))
    }

    /// Changes the status of `id` in place, keeping its timers in step with it.
    pub(super) fn modify<R>(&mut self, id: InstanceId, f: impl FnOnce(&mut Status) -> R) -> R {
        for (at, timer) in timers_of(&self.inst(id).status, id).into_iter().flatten() {
            self.timers.disarm(Some(at), timer);
        }
        let result = f(&mut self.inst_mut(id).status);
        for (at, timer) in timers_of(&self.inst(id).status, id).into_iter().flatten() {
            self.timers.arm(Some(at), timer);
        }
        result
    }

    /// Asks for `id` to be up, with a fresh restart budget if it is down.
    pub(super) fn start(&mut self, id: InstanceId, now: Instant, out: &mut Vec<Effect>) {
        if self.phase != Phase::Running || self.retired(id) {
            return;
        }
        let initial = self.spec_of(id).backoff.initial;
        let inst = self.inst_mut(id);
        inst.want_up = true;
        inst.stopped_by_user = false;
        match self.inst(id).status {
            Status::Starting { .. }
            | Status::Running { .. }
            | Status::Ready { .. }
            | Status::Waiting { .. } => {}
            Status::Stopping { .. } => self.set_then(id, Then::Restart),
            Status::Backoff { .. } | Status::Stopped | Status::Exited | Status::Failed { .. } => {
                let inst = self.inst_mut(id);
                inst.next_backoff = initial;
                inst.recent_restarts.clear();
                self.spawn_or_wait(id, now, out);
            }
        }
    }

    /// Asks for `id` to be down, with whatever its earlier runs left running in their groups.
    pub(super) fn stop(&mut self, id: InstanceId, now: Instant, out: &mut Vec<Effect>) {
        self.inst_mut(id).want_up = false;
        let grace = deadline_after(now, self.spec_of(id).stop_timeout);
        let lingering: Vec<RunId> = self
            .leftovers
            .iter()
            .filter(|(_, l)| l.instance == id && l.fate == Fate::Lingering)
            .map(|(&run, _)| run)
            .collect();
        for run in lingering {
            self.drain_lingering(run, grace, out);
        }
        match self.inst(id).status {
            Status::Starting { .. } | Status::Running { .. } | Status::Ready { .. } => {
                self.stop_run(id, now, out)
            }
            Status::Stopping { .. } => self.set_then(id, Then::Stay),
            Status::Backoff { .. } | Status::Waiting { .. } => {
                self.set_status(id, Status::Stopped);
                out.push(Effect::Notify(Notice::Cancelled { instance: id }));
            }
            // A stop takes back the retry of a failed instance: it stays failed.
            Status::Failed { retry_at: Some(_) } => {
                self.set_status(id, Status::Failed { retry_at: None });
            }
            Status::Stopped | Status::Exited | Status::Failed { .. } => {}
        }
    }

    pub(super) fn restart(&mut self, id: InstanceId, now: Instant, out: &mut Vec<Effect>) {
        if self.phase != Phase::Running || self.retired(id) {
            return;
        }
        match self.inst(id).status {
            Status::Starting { .. }
            | Status::Running { .. }
            | Status::Ready { .. }
            | Status::Stopping { .. } => {
                self.begin_stop(id, now, out);
                let inst = self.inst_mut(id);
                inst.want_up = true;
                inst.stopped_by_user = false;
                self.set_then(id, Then::Restart);
            }
            Status::Backoff { .. }
            | Status::Stopped
            | Status::Exited
            | Status::Failed { .. }
            | Status::Waiting { .. } => self.start(id, now, out),
        }
    }

    /// What a stopping instance does once its run has ended (nothing in other states).
    pub(super) fn set_then(&mut self, id: InstanceId, next: Then) {
        if let Status::Stopping { then, .. } = &mut self.inst_mut(id).status {
            *then = next;
        }
    }

    /// Sends the stop signal to a live run (once its PID is known) and arms the kill timer.
    /// A run not spawned yet is stopped by `spawned`, which sees `want_up` false.
    pub(super) fn begin_stop(&mut self, id: InstanceId, now: Instant, out: &mut Vec<Effect>) {
        let spec = self.spec_of(id);
        let run = match self.inst(id).active_run() {
            Some(run) if run.pid.is_some() => run.clone(),
            _ => return,
        };
        let pgid = run.pid.expect("checked above");
        stop_signal(out, run.id, pgid, spec.stop_signal);
        self.set_status(
            id,
            Status::Stopping {
                run,
                kill_at: deadline_after(now, spec.stop_timeout),
                timeout: spec.stop_timeout,
                then: Then::Stay,
            },
        );
        out.push(Effect::Notify(Notice::Stopping {
            instance: id,
            signal: spec.stop_signal,
        }));
    }

    /// Stops the live run of `id`, which is not wanted up: now, or, when processes depend on
    /// each other, once every fact of the moment is applied (`settle`), so that a run whose
    /// dependents go down too waits for them whatever the order the wishes came in. When
    /// everything is being killed, order does not matter.
    fn stop_run(&mut self, id: InstanceId, now: Instant, out: &mut Vec<Effect>) {
        if !self.has_deps || self.phase == Phase::KillingAll {
            self.begin_stop(id, now, out);
        }
    }

    /// SIGKILL to a stopping run's group now.
    pub(super) fn kill_now(&mut self, id: InstanceId, out: &mut Vec<Effect>) {
        let Status::Stopping {
            run, then, timeout, ..
        } = &self.inst(id).status
        else {
            return;
        };
        let (run, then, timeout) = (run.clone(), *then, *timeout);
        if let Some(pgid) = run.pid {
            out.push(signal(run.id, pgid, Signal::Kill));
        }
        self.set_status(
            id,
            Status::Stopping {
                run,
                kill_at: None,
                timeout,
                then,
            },
        );
    }

    pub(super) fn spawn(&mut self, id: InstanceId, now: Instant, out: &mut Vec<Effect>) {
        let run = RunId(self.next_run);
        self.next_run += 1;
        self.live_runs.insert(run, id);
        let spec = self.spec_of(id);
        self.set_status(
            id,
            Status::Starting {
                run: Run::new(run, now, Arc::clone(&spec)),
                up_at: None,
            },
        );
        out.push(Effect::Spawn {
            run,
            instance: id,
            spec,
        });
    }

    pub(super) fn spawned(
        &mut self,
        id: InstanceId,
        pid: u32,
        now: Instant,
        out: &mut Vec<Effect>,
    ) {
        let spec = self.spec_of(id);
        let inst = self.inst_mut(id);
        let run = inst.run_mut().expect("find_run found a live run");
        if run.pid.is_some() {
            // Told twice: the first report stands (the state table shows it).
            return;
        }
        run.pid = Some(pid);
        run.since = now;
        let run = run.clone();
        let want_up = inst.want_up;
        out.push(Effect::Notify(Notice::Started { instance: id, pid }));
        if !want_up {
            self.stop_run(id, now, out);
            if self.phase == Phase::KillingAll {
                self.kill_now(id, out);
            }
        } else if let Some(ready) = &spec.ready {
            let ready_by = ready.start_timeout.and_then(|t| deadline_after(now, t));
            self.set_status(id, Status::Running { run, ready_by });
        } else if spec.start_secs.is_zero() {
            self.set_status(
                id,
                Status::Running {
                    run,
                    ready_by: None,
                },
            );
        } else {
            let up_at = deadline_after(now, spec.start_secs);
            self.set_status(id, Status::Starting { run, up_at });
        }
    }

    /// The live run of `id` ended (or never started): decide what comes next.
    pub(super) fn ended(
        &mut self,
        id: InstanceId,
        how: Result<ExitStatus, String>,
        now: Instant,
        out: &mut Vec<Effect>,
    ) {
        let want_up = self.inst(id).want_up;
        let old = self.set_status(id, Status::Stopped);
        let (run, stopping) = match old {
            Status::Starting { run, .. } | Status::Running { run, .. } | Status::Ready { run } => {
                (run, None)
            }
            Status::Stopping { run, then, .. } => (run, Some(then)),
            _ => unreachable!("find_run found a live run"),
        };
        self.live_runs.remove(&run.id);
        let inst = self.inst_mut(id);
        inst.last_exit = Some(how.clone());
        // The OOM killer ended the run only if nothing else was ending it.
        inst.last_exit_oom = run.oom_kills > 0 && stopping.is_none();
        let restart_wanted = stopping == Some(Then::Restart);
        let failed_check = stopping == Some(Then::Fail) && want_up && self.phase == Phase::Running;
        let next = if failed_check {
            self.after_exit(id, &run, &how, true, now)
        } else if stopping.is_some() || !want_up {
            if restart_wanted && self.phase == Phase::Running && !self.retired(id) {
                let initial = self.spec_of(id).backoff.initial;
                let inst = self.inst_mut(id);
                inst.want_up = true;
                inst.restarts += 1;
                inst.next_backoff = initial;
                inst.recent_restarts.clear();
                Next::Restart(Duration::ZERO)
            } else {
                self.inst_mut(id).want_up = false;
                Next::Stay(State::Stopped)
            }
        } else {
            self.after_exit(id, &run, &how, false, now)
        };
        // A failed instance that will be tried again (`retry_after`) has not ended for good.
        let for_good = match next {
            Next::Stay(State::Exited) => true,
            Next::Stay(State::Failed) => self.spec_of(id).retry_after.is_none(),
            _ => false,
        };
        let essential = self.spec_of(id).on_exit == OnExit::Shutdown;
        let exit_code = exit_code_of(&how);
        out.push(Effect::Notify(Notice::Ended {
            instance: id,
            how,
            oom_kills: run.oom_kills,
            next,
        }));
        if matches!(next, Next::Restart(_)) {
            self.restart_dependents(id.process, now, out);
        }
        if next == Next::Restart(Duration::ZERO) {
            self.spawn_or_wait(id, now, out);
        }
        self.forget_if_retired(id);
        if for_good && essential && self.phase == Phase::Running {
            self.exit_code = Some(exit_code);
            out.push(Effect::Notify(Notice::EssentialEnded {
                instance: id,
                exit_code,
            }));
            self.shutdown(false, now, out);
        }
    }

    /// A run of `id` that nobody stopped ended (or one that a failed check stopped, with
    /// `failed`): restart it by its policy, after its backoff, or let it be (exited, or failed
    /// after too many restarts).
    fn after_exit(
        &mut self,
        id: InstanceId,
        run: &Run,
        how: &Result<ExitStatus, String>,
        failed: bool,
        now: Instant,
    ) -> Next {
        let spec = self.spec_of(id);
        let decision = policy::after_exit(&spec, self.inst_mut(id), run, how, failed, now);
        let status = match decision {
            Next::Restart(delay) => Status::Backoff {
                until: deadline_after(now, delay),
            },
            Next::Stay(State::Failed) => Status::Failed {
                retry_at: spec
                    .retry_after
                    .and_then(|after| deadline_after(now, after)),
            },
            Next::Stay(_) => Status::Exited,
        };
        self.set_status(id, status);
        decision
    }

    /// A timer is due.
    pub(super) fn timer_fired(&mut self, timer: Timer, now: Instant, out: &mut Vec<Effect>) {
        match timer {
            Timer::Up(id) => {
                if let Status::Starting { run, .. } = &self.inst(id).status {
                    let run = run.clone();
                    self.set_status(
                        id,
                        Status::Running {
                            run,
                            ready_by: None,
                        },
                    );
                    out.push(Effect::Notify(Notice::Running { instance: id }));
                }
            }
            Timer::Restart(id) => {
                if matches!(self.inst(id).status, Status::Backoff { .. }) {
                    self.spawn_or_wait(id, now, out);
                }
            }
            Timer::ReadyBy(id) => {
                let Some(timeout) = self
                    .spec_of(id)
                    .ready
                    .as_ref()
                    .and_then(|r| r.start_timeout)
                else {
                    return;
                };
                self.fail_run(id, Failure::StartTimeout(timeout), now, out);
            }
            Timer::Watchdog(id) => {
                let Some(every) = self.spec_of(id).ready.as_ref().and_then(|r| r.watchdog) else {
                    return;
                };
                self.fail_run(id, Failure::Watchdog(every), now, out);
            }
            Timer::Kill(id) => {
                let Status::Stopping { timeout, .. } = self.inst(id).status else {
                    return;
                };
                self.kill_now(id, out);
                out.push(Effect::Notify(Notice::Killed {
                    instance: id,
                    after: timeout,
                }));
            }
            Timer::KillLeftover(run) => self.kill_leftover(run, out),
            Timer::Retry(id) => {
                let after = self.spec_of(id).retry_after;
                let retry = matches!(self.inst(id).status, Status::Failed { retry_at: Some(_) });
                let (true, Some(after)) = (retry, after) else {
                    return;
                };
                if self.phase != Phase::Running || self.retired(id) {
                    // (A shutdown or a retirement stops the instance first, which takes the
                    // retry back; kept in step with the timers in any case.)
                    self.set_status(id, Status::Failed { retry_at: None });
                    return;
                }
                out.push(Effect::Notify(Notice::Retrying {
                    instance: id,
                    after,
                }));
                self.inst_mut(id).restarts += 1;
                // As `tend start` would: wanted up, with a fresh restart budget and backoff.
                self.start(id, now, out);
                // A restart after a pause: what restarts with it does (`restart_with`).
                self.restart_dependents(id.process, now, out);
            }
        }
    }

    /// The leader of `run` of `id` was reaped while other members of its group live on: keep
    /// the group. Members of a run being stopped got the stop signal with the leader and may
    /// finish until the run's kill deadline; a run that exited on its own leaves a group that
    /// is left alone until everything stops (then it is stopped as a run would be).
    pub(super) fn keep_leftover(
        &mut self,
        id: InstanceId,
        run: RunId,
        now: Instant,
        out: &mut Vec<Effect>,
    ) {
        let inst = self.inst(id);
        let Some(pgid) = inst.run().and_then(|r| r.pid) else {
            return;
        };
        let fate = match (self.phase, &inst.status) {
            (Phase::KillingAll, _) => Fate::Killed,
            (
                _,
                Status::Stopping {
                    kill_at: Some(at), ..
                },
            ) if *at > now => Fate::Draining(Some(*at)),
            // Stopping with the deadline passed, or already killed (no deadline left).
            (_, Status::Stopping { .. }) => Fate::Killed,
            (Phase::Running, _) => Fate::Lingering,
            (_, _) => {
                stop_signal(out, run, pgid, Signal::Term);
                Fate::Draining(deadline_after(now, self.settings.stop_timeout))
            }
        };
        if fate == Fate::Killed {
            out.push(signal(run, pgid, Signal::Kill));
        }
        if let Fate::Draining(at) = fate {
            self.timers.arm(at, Timer::KillLeftover(run));
        }
        self.leftovers.insert(
            run,
            Leftover {
                pgid,
                instance: id,
                fate,
            },
        );
    }

    /// A leftover group has no member any more.
    pub(super) fn forget_leftover(&mut self, run: RunId) {
        if let Some(Leftover {
            fate: Fate::Draining(at),
            ..
        }) = self.leftovers.remove(&run)
        {
            self.timers.disarm(at, Timer::KillLeftover(run));
        }
    }

    /// SIGKILL to a leftover group, unless it got one already.
    pub(super) fn kill_leftover(&mut self, run: RunId, out: &mut Vec<Effect>) {
        let Some(leftover) = self.leftovers.get_mut(&run) else {
            return;
        };
        match leftover.fate {
            Fate::Killed => return,
            Fate::Draining(at) => self.timers.disarm(at, Timer::KillLeftover(run)),
            Fate::Lingering => {}
        }
        leftover.fate = Fate::Killed;
        out.push(signal(run, leftover.pgid, Signal::Kill));
    }

    /// Everything stops: a leftover group left alone so far gets SIGTERM and SIGKILL at
    /// `grace`, the supervisor's stop timeout.
    pub(super) fn drain_lingering(
        &mut self,
        run: RunId,
        grace: Option<Instant>,
        out: &mut Vec<Effect>,
    ) {
        let Some(leftover) = self.leftovers.get_mut(&run) else {
            return;
        };
        if leftover.fate == Fate::Lingering {
            stop_signal(out, run, leftover.pgid, Signal::Term);
            leftover.fate = Fate::Draining(grace);
            self.timers.arm(grace, Timer::KillLeftover(run));
        }
    }
}

/// A stop signal to a group, then SIGCONT, as systemd, s6 and runit do: a member stopped with
/// SIGSTOP (or a terminal's SIGTSTP) would otherwise keep a caught stop signal pending and sit
/// out the whole stop timeout until SIGKILL.
fn stop_signal(out: &mut Vec<Effect>, run: RunId, pgid: u32, stop: Signal) {
    out.push(signal(run, pgid, stop));
    if !matches!(stop, Signal::Kill | Signal::Cont) {
        out.push(signal(run, pgid, Signal::Cont));
    }
}

/// The code a shell would give for a run that ended as `how`: its exit code, 128 + the signal
/// that killed it, or 127 for a program that could not be started.
fn exit_code_of(how: &Result<ExitStatus, String>) -> u8 {
    match how {
        Ok(ExitStatus::Code(code)) => u8::try_from(*code).unwrap_or(1),
        Ok(ExitStatus::Signaled(n)) => u8::try_from(128 + *n).unwrap_or(255),
        Err(_) => 127,
    }
}

/// The timers that instance `id` in `status` waits for, and when they are due: the state's
/// own deadline, and the watchdog of a run that is not being stopped.
fn timers_of(status: &Status, id: InstanceId) -> [Option<(Instant, Timer)>; 2] {
    let own = match *status {
        Status::Starting {
            up_at: Some(at), ..
        } => Some((at, Timer::Up(id))),
        Status::Running {
            ready_by: Some(at), ..
        } => Some((at, Timer::ReadyBy(id))),
        Status::Backoff { until: Some(at) } => Some((at, Timer::Restart(id))),
        Status::Stopping {
            kill_at: Some(at), ..
        } => Some((at, Timer::Kill(id))),
        Status::Failed { retry_at: Some(at) } => Some((at, Timer::Retry(id))),
        _ => None,
    };
    let watchdog = match status {
        Status::Running { run, .. } | Status::Ready { run } => {
            run.watchdog_at.map(|at| (at, Timer::Watchdog(id)))
        }
        _ => None,
    };
    [own, watchdog]
}
