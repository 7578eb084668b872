//! The supervision state machine: facts in, effects out.
//!
//! [`Supervisor::handle`] takes the current time and one past-tense fact ([`Input`]) and
//! returns the imperatives the driver must carry out ([`Effect`]), in order. Deadlines (restart
//! delays, start_secs, stop timeouts) are kept here; the driver asks [`Supervisor::next_deadline`]
//! and feeds [`Input::Tick`] when it passes, so no timer handle ever outlives the decision that
//! armed it.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::spec::{ProcessSpec, RestartPolicy, Spec};
use crate::Signal;

/// Identifies one spawn of one instance. Strictly increasing over the supervisor's life, so a
/// fact about an older run can never be mistaken for one about the current run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(pub u64);

/// One instance of a process: the process's position in the spec and the replica index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceId {
    /// Index of the process in [`Spec::processes`].
    pub process: usize,
    /// Replica index, `0..replicas`; `$TEND_INSTANCE` of the child.
    pub replica: u32,
}

/// How a run ended, as the kernel reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited with this code.
    Code(i32),
    /// Killed by the signal of this number.
    Signaled(i32),
}

/// The observed state of an instance (supervisord's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not running and not wanted.
    Stopped,
    /// Spawned, not yet up for `start_secs`.
    Starting,
    /// Up for at least `start_secs`.
    Running,
    /// Waiting out the restart delay.
    Backoff,
    /// Stop signal sent, waiting for the exit.
    Stopping,
    /// Finished and not to be restarted (by policy).
    Exited,
    /// Gave up after `max_restarts`.
    Failed,
}

/// Which instances a request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every instance of every process.
    All,
    /// Every instance of the process at this index.
    Process(usize),
    /// One instance.
    Instance(InstanceId),
}

/// A past-tense fact for the supervisor.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Start the autostart processes (`tend up`), or those named.
    Up(Option<Vec<Target>>),
    /// The user asked for these instances to be running.
    StartRequested(Target),
    /// The user asked for these instances to be stopped.
    StopRequested(Target),
    /// The user asked for these instances to be stopped and started again.
    RestartRequested(Target),
    /// The user asked tend to stop everything and exit. With `force`, SIGKILL every group now.
    ShutdownRequested {
        /// Skip the graceful stop.
        force: bool,
    },
    /// A [`Effect::Spawn`] succeeded.
    Spawned {
        /// The run that was spawned.
        run: RunId,
        /// Its PID, which is also its process group.
        pid: u32,
    },
    /// A [`Effect::Spawn`] failed before the program ran.
    SpawnFailed {
        /// The run that could not be spawned.
        run: RunId,
        /// What went wrong, for the user.
        error: String,
    },
    /// The leader of a run was reaped.
    Exited {
        /// The run that ended.
        run: RunId,
        /// How it ended.
        status: ExitStatus,
    },
    /// Time has passed; deadlines at or before `now` are due.
    Tick,
}

/// An imperative for the driver.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Spawn a new run of an instance and report [`Input::Spawned`] or [`Input::SpawnFailed`].
    Spawn {
        /// The new run's id.
        run: RunId,
        /// Which instance it is.
        instance: InstanceId,
        /// What to run.
        spec: Arc<ProcessSpec>,
    },
    /// Send a signal to the process group of a run. A run already reaped is skipped.
    Signal {
        /// The run whose group gets the signal.
        run: RunId,
        /// The signal.
        signal: Signal,
    },
    /// Tell the user what happened.
    Notify(Notice),
    /// Everything is stopped after a shutdown request: the driver may exit.
    Exit,
}

/// Something worth telling the user, in the terminal and in tend's own log.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// A run was spawned.
    Started {
        /// The instance.
        instance: InstanceId,
        /// Its PID.
        pid: u32,
    },
    /// A run stayed up `start_secs` and is now running.
    Running {
        /// The instance.
        instance: InstanceId,
    },
    /// A run ended (or could not be spawned) and what happens next.
    Ended {
        /// The instance.
        instance: InstanceId,
        /// How it ended; `Err` holds the spawn error.
        how: Result<ExitStatus, String>,
        /// What the supervisor does about it.
        next: Next,
    },
    /// The stop signal was sent.
    Stopping {
        /// The instance.
        instance: InstanceId,
        /// The signal sent.
        signal: Signal,
    },
    /// The stop timeout passed: SIGKILL was sent to the group.
    Killed {
        /// The instance.
        instance: InstanceId,
        /// The timeout that passed.
        after: Duration,
    },
    /// A pending restart was cancelled by a stop; the instance is stopped.
    Cancelled {
        /// The instance.
        instance: InstanceId,
    },
}

/// What the supervisor does after a run ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    /// Restart after this delay.
    Restart(Duration),
    /// Stay in this state: `Stopped`, `Exited` or `Failed`.
    Stay(State),
}

/// One spawn of an instance, from the `Spawn` effect until its leader is reaped.
#[derive(Debug, Clone)]
struct Run {
    id: RunId,
    /// Known once `Spawned` arrives.
    pid: Option<u32>,
    /// When `Spawned` arrived (or the spawn was asked for, until then).
    since: Instant,
}

/// Everything the supervisor knows of one instance.
#[derive(Debug, Clone)]
struct Instance {
    /// Wanted state, separate from the observed one (s6's want-up flag).
    want_up: bool,
    state: State,
    /// The live run: present exactly in `Starting`, `Running` and `Stopping`.
    run: Option<Run>,
    /// When something is due: end of start_secs (`Starting`), the restart (`Backoff`), or the
    /// SIGKILL (`Stopping`). `None` means nothing is due.
    deadline: Option<Instant>,
    /// Start it again once the current run has ended (a restart request).
    restart_pending: bool,
    /// The delay before the next restart.
    next_backoff: Duration,
    /// When each recent restart was decided, for `max_restarts`.
    recent_restarts: VecDeque<Instant>,
    /// Restarts over the instance's whole life, for status.
    restarts: u64,
    last_exit: Option<Result<ExitStatus, String>>,
}

/// A read-only view of one instance, for status and display.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceView<'a> {
    /// Which instance.
    pub id: InstanceId,
    /// The process it belongs to.
    pub spec: &'a ProcessSpec,
    /// Its observed state.
    pub state: State,
    /// Whether it is wanted up.
    pub want_up: bool,
    /// The PID of the live run, once spawned.
    pub pid: Option<u32>,
    /// When the live run was spawned.
    pub since: Option<Instant>,
    /// Restarts over the instance's life.
    pub restarts: u64,
    /// How the last run ended (`Err`: the spawn error).
    pub last_exit: Option<&'a Result<ExitStatus, String>>,
}

/// The supervision state machine. See the module documentation.
#[derive(Debug)]
pub struct Supervisor {
    spec: Spec,
    /// `instances[p][r]` is replica `r` of `spec.processes[p]`.
    instances: Vec<Vec<Instance>>,
    /// The instance of every live run, so that a fact about a run finds it at once.
    live_runs: HashMap<RunId, InstanceId>,
    next_run: u64,
    shutting_down: bool,
    force_kill: bool,
    exit_sent: bool,
}

impl Supervisor {
    /// A supervisor for `spec` with every instance stopped. Nothing runs until
    /// [`Input::Up`] or a start request.
    pub fn new(spec: Spec) -> Self {
        let instances = spec
            .processes
            .iter()
            .map(|p| {
                (0..p.replicas)
                    .map(|_| Instance {
                        want_up: false,
                        state: State::Stopped,
                        run: None,
                        deadline: None,
                        restart_pending: false,
                        next_backoff: p.backoff.initial,
                        recent_restarts: VecDeque::new(),
                        restarts: 0,
                        last_exit: None,
                    })
                    .collect()
            })
            .collect();
        Supervisor {
            spec,
            instances,
            live_runs: HashMap::new(),
            next_run: 1,
            shutting_down: false,
            force_kill: false,
            exit_sent: false,
        }
    }

    /// The spec being supervised.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The display name of an instance, such as `web.0`.
    pub fn instance_name(&self, id: InstanceId) -> String {
        format!("{}.{}", self.spec.processes[id.process].name, id.replica)
    }

    /// Resolves a user's name: `all`, a process (`web`) or an instance (`web.1`).
    pub fn resolve(&self, name: &str) -> Option<Target> {
        self.spec.resolve(name)
    }

    /// Every instance, in spec order.
    pub fn instances(&self) -> impl Iterator<Item = InstanceView<'_>> {
        self.instances
            .iter()
            .enumerate()
            .flat_map(move |(p, list)| {
                list.iter().enumerate().map(move |(r, inst)| InstanceView {
                    id: InstanceId {
                        process: p,
                        replica: r as u32,
                    },
                    spec: &self.spec.processes[p],
                    state: inst.state,
                    want_up: inst.want_up,
                    pid: inst.run.as_ref().and_then(|run| run.pid),
                    since: inst.run.as_ref().map(|run| run.since),
                    restarts: inst.restarts,
                    last_exit: inst.last_exit.as_ref(),
                })
            })
    }

    /// The view of one instance.
    pub fn instance(&self, id: InstanceId) -> InstanceView<'_> {
        self.instances()
            .find(|v| v.id == id)
            .expect("instance ids come from this supervisor")
    }

    /// The earliest deadline, if any: the driver feeds [`Input::Tick`] once it has passed.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.instances
            .iter()
            .flatten()
            .filter_map(|i| i.deadline)
            .min()
    }

    /// Applies one fact at time `now` and returns what the driver must do, in order.
    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Effect> {
        let mut out = Vec::new();
        match input {
            Input::Up(None) => {
                for id in self.ids(&Target::All) {
                    if self.spec.processes[id.process].autostart {
                        self.start(id, now, &mut out);
                    }
                }
            }
            Input::Up(Some(targets)) => {
                for target in targets {
                    for id in self.ids(&target) {
                        self.start(id, now, &mut out);
                    }
                }
            }
            Input::StartRequested(target) => {
                for id in self.ids(&target) {
                    self.start(id, now, &mut out);
                }
            }
            Input::StopRequested(target) => {
                for id in self.ids(&target) {
                    self.stop(id, now, &mut out);
                }
            }
            Input::RestartRequested(target) => {
                for id in self.ids(&target) {
                    self.restart(id, now, &mut out);
                }
            }
            Input::ShutdownRequested { force } => {
                self.shutting_down = true;
                self.force_kill |= force;
                for id in self.ids(&Target::All) {
                    self.stop(id, now, &mut out);
                    if self.force_kill {
                        self.kill_now(id, &mut out);
                    }
                }
            }
            Input::Spawned { run, pid } => {
                if let Some(id) = self.find_run(run) {
                    self.spawned(id, pid, now, &mut out);
                }
            }
            Input::SpawnFailed { run, error } => {
                if let Some(id) = self.find_run(run) {
                    self.ended(id, Err(error), now, &mut out);
                }
            }
            Input::Exited { run, status } => {
                if let Some(id) = self.find_run(run) {
                    self.ended(id, Ok(status), now, &mut out);
                }
            }
            Input::Tick => {
                for id in self.ids(&Target::All) {
                    if self.inst(id).deadline.is_some_and(|d| d <= now) {
                        self.deadline_passed(id, now, &mut out);
                    }
                }
            }
        }
        if self.shutting_down && !self.exit_sent && self.live_runs.is_empty() {
            self.exit_sent = true;
            out.push(Effect::Exit);
        }
        out
    }

    fn ids(&self, target: &Target) -> Vec<InstanceId> {
        let replicas = |process: usize| {
            (0..self.spec.processes[process].replicas)
                .map(move |replica| InstanceId { process, replica })
        };
        match *target {
            Target::All => (0..self.spec.processes.len()).flat_map(replicas).collect(),
            Target::Process(process) if process < self.spec.processes.len() => {
                replicas(process).collect()
            }
            Target::Instance(id)
                if id.process < self.spec.processes.len()
                    && id.replica < self.spec.processes[id.process].replicas =>
            {
                vec![id]
            }
            _ => Vec::new(),
        }
    }

    fn inst(&self, id: InstanceId) -> &Instance {
        &self.instances[id.process][id.replica as usize]
    }

    fn inst_mut(&mut self, id: InstanceId) -> &mut Instance {
        &mut self.instances[id.process][id.replica as usize]
    }

    fn find_run(&self, run: RunId) -> Option<InstanceId> {
        self.live_runs.get(&run).copied()
    }

    /// Asks for `id` to be up, with a fresh restart budget if it is down.
    fn start(&mut self, id: InstanceId, now: Instant, out: &mut Vec<Effect>) {
        if self.shutting_down {
            return;
        }
        let initial = self.spec.processes[id.process].backoff.initial;
        let inst = self.inst_mut(id);
        inst.want_up = true;
        match inst.state {
            State::Starting | State::Running => {}
            State::Stopping => inst.restart_pending = true,
            State::Backoff | State::Stopped | State::Exited | State::Failed => {
                inst.next_backoff = initial;
                inst.recent_restarts.clear();
                self.spawn(id, now, out);
            }
        }
    }

    fn stop(&mut self, id: InstanceId, now: Instant, out: &mut Vec<Effect>) {
        let inst = self.inst_mut(id);
        inst.want_up = false;
        inst.restart_pending = false;
        match inst.state {
            State::Starting | State::Running => self.begin_stop(id, now, out),
            State::Backoff => {
                inst.state = State::Stopped;
                inst.deadline = None;
                out.push(Effect::Notify(Notice::Cancelled { instance: id }));
            }
            State::Stopping | State::Stopped | State::Exited | State::Failed => {}
        }
    }

    fn restart(&mut self, id: InstanceId, now: Instant, out: &mut Vec<Effect>) {
        if self.shutting_down {
            return;
        }
        match self.inst(id).state {
            State::Starting | State::Running => {
                self.begin_stop(id, now, out);
                let inst = self.inst_mut(id);
                inst.want_up = true;
                inst.restart_pending = true;
            }
            State::Stopping => {
                let inst = self.inst_mut(id);
                inst.want_up = true;
                inst.restart_pending = true;
            }
            State::Backoff | State::Stopped | State::Exited | State::Failed => {
                self.start(id, now, out)
            }
        }
    }

    /// Sends the stop signal to a live run (once its PID is known) and arms the kill deadline.
    fn begin_stop(&mut self, id: InstanceId, now: Instant, out: &mut Vec<Effect>) {
        let spec = Arc::clone(&self.spec.processes[id.process]);
        let inst = self.inst_mut(id);
        let Some(run) = &inst.run else { return };
        let Some(_pid) = run.pid else {
            // Not spawned yet: `spawned` sees want_up = false and stops it then.
            return;
        };
        let run = run.id;
        inst.state = State::Stopping;
        inst.deadline = deadline_after(now, spec.stop_timeout);
        out.push(Effect::Signal {
            run,
            signal: spec.stop_signal,
        });
        out.push(Effect::Notify(Notice::Stopping {
            instance: id,
            signal: spec.stop_signal,
        }));
    }

    fn kill_now(&mut self, id: InstanceId, out: &mut Vec<Effect>) {
        let inst = self.inst_mut(id);
        if let Some(Run {
            id: run,
            pid: Some(_),
            ..
        }) = inst.run
        {
            inst.deadline = None;
            out.push(Effect::Signal {
                run,
                signal: Signal::Kill,
            });
        }
    }

    fn spawn(&mut self, id: InstanceId, now: Instant, out: &mut Vec<Effect>) {
        let run = RunId(self.next_run);
        self.next_run += 1;
        self.live_runs.insert(run, id);
        let inst = self.inst_mut(id);
        inst.state = State::Starting;
        inst.deadline = None;
        inst.run = Some(Run {
            id: run,
            pid: None,
            since: now,
        });
        out.push(Effect::Spawn {
            run,
            instance: id,
            spec: Arc::clone(&self.spec.processes[id.process]),
        });
    }

    fn spawned(&mut self, id: InstanceId, pid: u32, now: Instant, out: &mut Vec<Effect>) {
        let start_secs = self.spec.processes[id.process].start_secs;
        let inst = self.inst_mut(id);
        let run = inst.run.as_mut().expect("find_run found a live run");
        run.pid = Some(pid);
        run.since = now;
        let want_up = inst.want_up;
        out.push(Effect::Notify(Notice::Started { instance: id, pid }));
        if !want_up {
            self.begin_stop(id, now, out);
            if self.force_kill {
                self.kill_now(id, out);
            }
        } else if start_secs.is_zero() {
            inst.state = State::Running;
        } else {
            inst.deadline = deadline_after(now, start_secs);
        }
    }

    /// The live run of `id` ended (or never started): decide what comes next.
    fn ended(
        &mut self,
        id: InstanceId,
        how: Result<ExitStatus, String>,
        now: Instant,
        out: &mut Vec<Effect>,
    ) {
        let spec = Arc::clone(&self.spec.processes[id.process]);
        let shutting_down = self.shutting_down;
        let inst = self.inst_mut(id);
        let run = inst.run.take().expect("find_run found a live run");
        self.live_runs.remove(&run.id);
        let inst = self.inst_mut(id);
        let was_stopping = inst.state == State::Stopping || !inst.want_up;
        let restart_pending = std::mem::take(&mut inst.restart_pending);
        inst.deadline = None;
        inst.last_exit = Some(how.clone());

        let next = if was_stopping {
            if restart_pending && !shutting_down {
                inst.want_up = true;
                inst.restarts += 1;
                inst.next_backoff = spec.backoff.initial;
                inst.recent_restarts.clear();
                Next::Restart(Duration::ZERO)
            } else {
                inst.want_up = false;
                inst.state = State::Stopped;
                Next::Stay(State::Stopped)
            }
        } else {
            let success =
                matches!(how, Ok(ExitStatus::Code(code)) if spec.success_codes.contains(&code));
            let wanted = match spec.restart {
                RestartPolicy::Always => true,
                RestartPolicy::OnFailure => !success,
                RestartPolicy::Never => false,
            };
            if !wanted {
                inst.want_up = false;
                inst.state = State::Exited;
                Next::Stay(State::Exited)
            } else {
                if now.saturating_duration_since(run.since) >= spec.start_secs && run.pid.is_some()
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
                    inst.state = State::Failed;
                    Next::Stay(State::Failed)
                } else {
                    let delay = inst.next_backoff;
                    inst.recent_restarts.push_back(now);
                    inst.restarts += 1;
                    inst.next_backoff = grow(delay, spec.backoff.factor, spec.backoff.max);
                    inst.state = State::Backoff;
                    inst.deadline = deadline_after(now, delay);
                    Next::Restart(delay)
                }
            }
        };
        out.push(Effect::Notify(Notice::Ended {
            instance: id,
            how,
            next,
        }));
        if next == Next::Restart(Duration::ZERO) {
            self.spawn(id, now, out);
        }
    }

    fn deadline_passed(&mut self, id: InstanceId, now: Instant, out: &mut Vec<Effect>) {
        let stop_timeout = self.spec.processes[id.process].stop_timeout;
        let inst = self.inst_mut(id);
        inst.deadline = None;
        match inst.state {
            State::Starting => {
                inst.state = State::Running;
                out.push(Effect::Notify(Notice::Running { instance: id }));
            }
            State::Backoff => self.spawn(id, now, out),
            State::Stopping => {
                self.kill_now(id, out);
                out.push(Effect::Notify(Notice::Killed {
                    instance: id,
                    after: stop_timeout,
                }));
            }
            State::Running | State::Stopped | State::Exited | State::Failed => {}
        }
    }
}

/// `now + after`, or no deadline at all when that is beyond what an `Instant` can hold.
fn deadline_after(now: Instant, after: Duration) -> Option<Instant> {
    now.checked_add(after)
}

/// The backoff after `delay`: multiplied by `factor`, capped at `max`.
fn grow(delay: Duration, factor: f64, max: Duration) -> Duration {
    Duration::try_from_secs_f64(delay.as_secs_f64() * factor)
        .unwrap_or(max)
        .min(max)
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Stopped => "stopped",
            State::Starting => "starting",
            State::Running => "running",
            State::Backoff => "backoff",
            State::Stopping => "stopping",
            State::Exited => "exited",
            State::Failed => "failed",
        })
    }
}
