//! The supervision state machine: facts in, effects out.
//!
//! [`Supervisor::handle`] takes the current time and one past-tense fact ([`Input`]) and
//! returns the imperatives the driver must carry out ([`Effect`]), in order. Timers (restart
//! delays, start_secs, stop timeouts, the deadlines of leftover groups) are kept here in one
//! ordered index; the driver asks [`Supervisor::next_deadline`] and feeds [`Input::Tick`] when
//! it passes, so no timer handle ever outlives the decision that armed it.
//!
//! Inside: this file holds the vocabulary (facts, effects, states) and the queries;
//! `instance` the life of one instance, each state with its data (a run exists exactly in the
//! states that have one); `policy` what follows an exit; `checks` the facts of readiness,
//! watchdog and health checks; `deps` the order between processes (`depends_on`): waiting
//! for conditions, stopping dependents first; `reload` applying a new config; `timers` the
//! index.
//!
//! Processes live in slots that keep their number for as long as the process is supervised,
//! across reloads, so an [`InstanceId`] never comes to mean another instance.
//!
//! The supervisor also decides about process groups that outlive their leader (a background
//! job of a run that exited, or members still stopping after their leader did): it keeps them
//! as *leftovers* until the driver reports them empty, stops them when everything stops, and
//! kills them at their deadline; and about its own life ([`Phase`]): it says [`Effect::Exit`]
//! once, when everything was asked to stop and no run and no group of its own lives.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::spec::{Condition, Dependency, ProcessSpec, Spec, SupervisorSpec};
use crate::Signal;

mod checks;
mod deps;
mod instance;
mod policy;
mod reload;
mod timers;

pub use deps::Unmet;
pub use reload::changed_keys;

use instance::{view, Instance, Leftover};
use timers::{Timer, Timers};

/// Identifies one spawn of one instance. Strictly increasing over the supervisor's life, so a
/// fact about an older run can never be mistaken for one about the current run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(pub u64);

/// One instance of a process: the process's slot and the replica index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceId {
    /// The process's slot in the supervisor: at first its index in [`Spec::processes`]; a
    /// process added by a reload gets a new slot, and a slot is never reused.
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
    /// Wanted up, waiting for its dependencies' conditions to hold.
    Waiting,
    /// Spawned, not yet up for `start_secs` (processes without a readiness check).
    Starting,
    /// Up for at least `start_secs` (without a readiness check), or spawned and not ready
    /// yet (with one).
    Running,
    /// Ready by its readiness check.
    Ready,
    /// Waiting out the restart delay.
    Backoff,
    /// Stop signal sent, waiting for the exit.
    Stopping,
    /// Finished and not to be restarted (by policy).
    Exited,
    /// Gave up after `max_restarts`.
    Failed,
}

/// The supervisor's life: supervising, then stopping everything, then done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Supervising: instances start, stop and restart as asked and by policy.
    Running,
    /// Everything is being stopped gracefully (stop signals, then SIGKILL at the deadlines).
    StoppingAll,
    /// Everything is being killed now (a second stop request, or a forced one).
    KillingAll,
    /// Nothing of tend's lives any more: [`Effect::Exit`] was said; no input changes anything.
    Done,
}

/// Which instances a request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every instance of every process.
    All,
    /// Every instance of the process in this slot.
    Process(usize),
    /// One instance.
    Instance(InstanceId),
    /// These instances, as one request: `tend stop db web` stops web before db whatever the
    /// order of the names, since each instance sees that the others go down too.
    Instances(Vec<InstanceId>),
}

/// A past-tense fact for the supervisor.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Start the autostart processes (`tend up`), or those named.
    Up(Option<Vec<Target>>),
    /// The user asked for these instances to be running, and what they depend on.
    StartRequested(Target),
    /// The user asked for these instances to be running, and nothing else (`--no-deps`).
    StartOnlyRequested(Target),
    /// The user asked for these instances to be stopped.
    StopRequested(Target),
    /// The user asked for these instances to be stopped and started again.
    RestartRequested(Target),
    /// The user asked for the config to be applied: start added processes, stop removed ones,
    /// restart changed ones, leave the others alone. Answered by [`Effect::Reloaded`].
    ReloadRequested(Spec),
    /// The user asked for this many instances of the process in this slot (`tend scale
    /// web=4`): instances are added (and started if the process runs) or stopped and
    /// forgotten, highest index first. 0 keeps the process with no instance. Lasts until the
    /// next reload, which applies the config's `replicas` again.
    ScaleRequested {
        /// The process's slot.
        process: usize,
        /// How many instances it is to have.
        replicas: u32,
    },
    /// The environment of the process in this slot was read again (`tend restart` reads its
    /// `env_file` again): its next spawns get `env`. Nothing is stopped or started. Dropped
    /// when the process's `env_file` or `env` changed since `read_from` (a reload came
    /// between: what it set stands).
    EnvRead {
        /// The process's slot.
        process: usize,
        /// Its variables, as [`ProcessSpec::env`].
        env: Vec<(String, String)>,
        /// The spec whose `env_file` and `env` table were read.
        read_from: Arc<ProcessSpec>,
    },
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
        /// Other members of its process group still live: the group is kept as a leftover
        /// until [`Input::GroupEmpty`].
        group_left: bool,
    },
    /// The kernel's OOM killer killed `kills` processes of a live run (its cgroup reached
    /// `memory_max`). Told before the run's [`Input::Exited`] when the leader was one of them.
    OomKilled {
        /// The run.
        run: RunId,
        /// How many of its processes.
        kills: u32,
    },
    /// The process group of an ended run (a leftover) has no member any more.
    GroupEmpty {
        /// The run whose group it was.
        run: RunId,
    },
    /// A run told (or its readiness check found) something about its readiness.
    Readiness {
        /// The run it is about.
        run: RunId,
        /// What.
        fact: ReadyFact,
    },
    /// A try of a run's liveness check ended: `Err` holds why it failed.
    HealthChecked {
        /// The run it is about.
        run: RunId,
        /// The result.
        result: Result<(), String>,
    },
    /// What the process tree of a run uses now (sampled for processes with a
    /// `memory_limit`).
    MemoryUsed {
        /// The run it is about.
        run: RunId,
        /// The resident memory of its whole tree, in bytes.
        bytes: u64,
    },
    /// Time has passed; deadlines at or before `now` are due.
    Tick,
}

/// What a run's readiness check found, or what it said over the sd_notify protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadyFact {
    /// Ready (`READY=1`, a newline on the notify fd, a matching log line, a probe that
    /// succeeded).
    Ready,
    /// No longer ready (`RELOADING=1`, `STOPPING=1`): ready again at the next [`Self::Ready`].
    NotReady,
    /// `STATUS=`: a line for `tend status`.
    Status(String),
    /// `MAINPID=`: the process the run says is its main one.
    MainPid(u32),
    /// `WATCHDOG=1`: alive; the watchdog starts over.
    WatchdogPing,
    /// `WATCHDOG=trigger`: the run asks to be treated as hung.
    WatchdogTrigger,
    /// `EXTEND_TIMEOUT_USEC=`: the start timeout (or, while stopping, the stop timeout) ends
    /// no earlier than this long from now.
    ExtendTimeout(Duration),
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
    /// Send a signal to a process group: a live run's, or a leftover's. The supervisor asks
    /// only for groups that still have a member the driver has not reported gone (a live run's
    /// leader is unreaped; a leftover is not yet [`Input::GroupEmpty`]), so the id is not reused.
    Signal {
        /// The run whose group gets the signal.
        run: RunId,
        /// The process group.
        pgid: u32,
        /// The signal.
        signal: Signal,
    },
    /// Tell the user what happened.
    Notify(Notice),
    /// A reload was applied: what it changed.
    Reloaded(ReloadSummary),
    /// Everything is stopped after a shutdown request and no group of tend's lives: the driver
    /// exits. Said once; the supervisor is [`Phase::Done`] from then on.
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
        /// Processes of the run the OOM killer killed (told by [`Input::OomKilled`]).
        oom_kills: u32,
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
    /// An essential instance (`on_exit = "shutdown"`) ended for good: everything stops, and
    /// tend exits with `exit_code`.
    EssentialEnded {
        /// The instance.
        instance: InstanceId,
        /// The code tend exits with.
        exit_code: u8,
    },
    /// An instance is to start but waits for these conditions on other processes.
    Waiting {
        /// The instance.
        instance: InstanceId,
        /// The conditions that do not hold yet.
        on: Vec<Dependency>,
    },
    /// A waiting instance's dependency will not get where it must by itself (it failed,
    /// exited, or was stopped): the instance keeps waiting, and the user should know.
    DependencyGaveUp {
        /// The waiting instance.
        instance: InstanceId,
        /// The dependency.
        dependency: String,
        /// What it waits for.
        condition: Condition,
        /// The state of the dependency's instance that does not meet it.
        state: State,
        /// The dependency has no instance (scaled to 0): it needs a scale, not a start.
        no_instances: bool,
    },
    /// A run got ready.
    Ready {
        /// The instance.
        instance: InstanceId,
    },
    /// The liveness check of a run changed its verdict: failing (with why) or passing again.
    Health {
        /// The instance.
        instance: InstanceId,
        /// `Err`: why the last try failed.
        result: Result<(), String>,
    },
    /// A failed instance is tried again: its `retry_after` passed since it gave up. Its
    /// restart budget and backoff start afresh.
    Retrying {
        /// The instance.
        instance: InstanceId,
        /// The `retry_after` that passed.
        after: Duration,
    },
    /// A check failed a run: it is stopped, and its restart policy applies as after a failure.
    CheckFailed {
        /// The instance.
        instance: InstanceId,
        /// Which check, and how.
        failure: Failure,
    },
}

/// How a check failed a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// It was not ready within its start timeout.
    StartTimeout(Duration),
    /// It did not send `WATCHDOG=1` within this interval (or sent `WATCHDOG=trigger`: zero).
    Watchdog(Duration),
    /// Its process tree used more than `limit` bytes (`bytes`, at the last sample) for
    /// `memory_limit_for` or longer.
    MemoryLimit {
        /// What it used at the last sample.
        bytes: u64,
        /// Its `memory_limit`.
        limit: u64,
    },
    /// Its liveness check failed this many times in a row; the last time for this reason.
    Unhealthy {
        /// Failed tries in a row.
        failures: u32,
        /// Why the last one failed.
        reason: String,
    },
}

/// What a reload did (or, from [`Supervisor::plan_reload`], would do), by process name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Processes new in the config: started if autostart.
    pub added: Vec<String>,
    /// Processes gone from the config: stopped, then forgotten.
    pub removed: Vec<String>,
    /// Processes whose settings changed: their instances restart with the new ones (or, when
    /// only `replicas` changed, instances are added or removed and the others stay).
    pub changed: Vec<String>,
    /// Processes left alone, with the same PIDs.
    pub unchanged: Vec<String>,
    /// For each process of `changed`, what changed, by config key: `command`, `env (PORT,
    /// TOKEN)` (the names of the variables, never their values), `replicas 2 → 4`. See
    /// [`changed_keys`].
    pub keys: BTreeMap<String, Vec<String>>,
    /// The processes of `changed` whose change restarts and starts no instance now, since
    /// none is wanted up or failed (stopped, or one-shots that exited): their new settings
    /// take effect at their next start. A change of `replicas` alone is a scale and never
    /// listed.
    pub not_running: Vec<String>,
}

/// What the supervisor does after a run ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    /// Restart after this delay.
    Restart(Duration),
    /// Stay in this state: `Stopped`, `Exited` or `Failed`.
    Stay(State),
}

/// A supervised process: its spec and its instances by replica index.
#[derive(Debug, Clone)]
struct Slot {
    spec: Arc<ProcessSpec>,
    instances: BTreeMap<u32, Instance>,
    /// Gone from the config; the slot is emptied once its last instance is forgotten.
    removed: bool,
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
    /// The live run, if any.
    pub run: Option<RunId>,
    /// The PID of the live run, once spawned.
    pub pid: Option<u32>,
    /// When the live run was spawned.
    pub since: Option<Instant>,
    /// When something is due: the end of start_secs, the restart, (while stopping) the
    /// SIGKILL, or (failed, with `retry_after`) the retry.
    pub deadline: Option<Instant>,
    /// Restarts over the instance's life.
    pub restarts: u64,
    /// How the last run ended (`Err`: the spawn error).
    pub last_exit: Option<&'a Result<ExitStatus, String>>,
    /// The last run that ended did so by itself after the OOM killer killed processes of it.
    pub last_exit_oom: bool,
    /// Processes of its runs the OOM killer killed, over the instance's life.
    pub oom_kills: u64,
    /// `MAINPID=` of the live run, if it said one.
    pub main_pid: Option<u32>,
    /// `STATUS=` of the live run, as it sent it (not yet safe to print).
    pub status_text: Option<&'a str>,
    /// The liveness check's verdict on the live run, once it has tried.
    pub health: Option<HealthView<'a>>,
}

/// The liveness check's verdict on a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthView<'a> {
    /// Whether the last try passed.
    pub healthy: bool,
    /// Failed tries since the last success.
    pub failures_in_row: u32,
    /// Why the last failed try failed (kept after a success).
    pub last_failure: Option<&'a str>,
}

impl InstanceView<'_> {
    /// Whether the last run exited with one of the process's success codes (a one-shot job
    /// that did its work).
    pub fn ended_well(&self) -> bool {
        matches!(self.last_exit, Some(Ok(status)) if policy::is_success(self.spec, *status))
    }
}

/// The supervision state machine. See the module documentation.
#[derive(Debug)]
pub struct Supervisor {
    settings: SupervisorSpec,
    /// `slots[p]` is the process of [`InstanceId::process`] `p`; `None` once forgotten.
    slots: Vec<Option<Slot>>,
    /// Slot numbers in config order, for listings.
    order: Vec<usize>,
    /// The instance of every live run, so that a fact about a run finds it at once.
    live_runs: HashMap<RunId, InstanceId>,
    /// Groups of ended runs that still have members.
    leftovers: BTreeMap<RunId, Leftover>,
    /// Every armed timer, by due time.
    timers: Timers,
    next_run: u64,
    phase: Phase,
    /// Some process has (or had) `depends_on`: only then are waits and held stops looked at.
    has_deps: bool,
    /// The slot of each process in the config (not removed), by name.
    by_name: HashMap<String, usize>,
    /// The exit code of an essential instance that ended for good, for tend's own.
    exit_code: Option<u8>,
    /// The names of forgotten processes (their slots are `None`), for the notices about
    /// their last instances, which the driver renders after the slot went.
    forgotten: HashMap<usize, String>,
}

impl Supervisor {
    /// A supervisor for `spec` with every instance stopped. Nothing runs until
    /// [`Input::Up`] or a start request.
    pub fn new(spec: Spec) -> Self {
        let mut sup = Supervisor {
            settings: spec.supervisor,
            slots: Vec::new(),
            order: Vec::new(),
            live_runs: HashMap::new(),
            leftovers: BTreeMap::new(),
            timers: Timers::default(),
            exit_code: None,
            forgotten: HashMap::new(),
            next_run: 1,
            phase: Phase::Running,
            has_deps: false,
            by_name: HashMap::new(),
        };
        for process in spec.processes {
            sup.add_slot(process);
        }
        sup
    }

    /// The supervisor's own settings.
    pub fn settings(&self) -> &SupervisorSpec {
        &self.settings
    }

    /// The spec of the process in slot `process`, while it is supervised.
    pub fn process(&self, process: usize) -> Option<&Arc<ProcessSpec>> {
        self.slot(process).map(|slot| &slot.spec)
    }

    /// The supervised processes in config order, with their slots (removed ones last, until
    /// their instances have stopped).
    pub fn processes(&self) -> impl Iterator<Item = (usize, &Arc<ProcessSpec>)> + '_ {
        self.order
            .iter()
            .filter_map(|&p| self.slot(p).map(|slot| (p, &slot.spec)))
    }

    /// The display name of an instance, such as `web.0`.
    pub fn instance_name(&self, id: InstanceId) -> String {
        match self.process(id.process) {
            Some(spec) => format!("{}.{}", spec.name, id.replica),
            None => match self.forgotten.get(&id.process) {
                Some(name) => format!("{name}.{}", id.replica),
                None => format!("#{}.{}", id.process, id.replica),
            },
        }
    }

    /// Resolves a user's name: `all`, a process (`web`) or an instance (`web.1`). Processes
    /// that a reload removed are not found.
    pub fn resolve(&self, name: &str) -> Option<Target> {
        if name == "all" {
            return Some(Target::All);
        }
        let find = |n: &str| {
            self.order.iter().copied().find(|&p| {
                self.slot(p)
                    .is_some_and(|slot| !slot.removed && slot.spec.name == n)
            })
        };
        if let Some(process) = find(name) {
            return Some(Target::Process(process));
        }
        let (process, replica) = name.rsplit_once('.')?;
        let process = find(process)?;
        let replica: u32 = replica.parse().ok()?;
        let id = InstanceId { process, replica };
        (self.instance(id).is_some() && !self.retired(id)).then_some(Target::Instance(id))
    }

    /// Every instance, in config order.
    pub fn instances(&self) -> impl Iterator<Item = InstanceView<'_>> {
        self.order
            .iter()
            .filter_map(move |&p| self.slot(p).map(|slot| (p, slot)))
            .flat_map(move |(p, slot)| {
                slot.instances.iter().map(move |(&replica, inst)| {
                    view(
                        InstanceId {
                            process: p,
                            replica,
                        },
                        &slot.spec,
                        inst,
                    )
                })
            })
    }

    /// The view of one instance, while it exists.
    pub fn instance(&self, id: InstanceId) -> Option<InstanceView<'_>> {
        let slot = self.slot(id.process)?;
        let inst = slot.instances.get(&id.replica)?;
        Some(view(id, &slot.spec, inst))
    }

    /// The instances a target names, in config order.
    pub fn targets(&self, target: &Target) -> Vec<InstanceId> {
        let of = |process: usize| -> Vec<InstanceId> {
            self.slot(process)
                .map(|slot| {
                    slot.instances
                        .keys()
                        .map(|&replica| InstanceId { process, replica })
                        .collect()
                })
                .unwrap_or_default()
        };
        match *target {
            Target::All => self.order.iter().flat_map(|&p| of(p)).collect(),
            Target::Process(process) => of(process),
            Target::Instance(id) => {
                if self.instance(id).is_some() {
                    vec![id]
                } else {
                    Vec::new()
                }
            }
            Target::Instances(ref ids) => ids
                .iter()
                .copied()
                .filter(|&id| self.instance(id).is_some())
                .collect(),
        }
    }

    /// Where the supervisor is in its life.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The code tend should exit with: an essential instance's (see [`crate::OnExit`]), else 0.
    pub fn exit_code(&self) -> u8 {
        self.exit_code.unwrap_or(0)
    }

    /// Whether a process group of an ended run of `id` still has members (a stop is not over
    /// until they are gone).
    pub fn has_leftovers(&self, id: InstanceId) -> bool {
        self.leftovers.values().any(|l| l.instance == id)
    }

    /// The process groups of ended runs that still have members, with their group ids.
    pub fn leftover_groups(&self) -> impl Iterator<Item = (RunId, u32)> + '_ {
        self.leftovers.iter().map(|(&run, l)| (run, l.pgid))
    }

    /// The earliest deadline, if any: the driver feeds [`Input::Tick`] once it has passed.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Applies one fact at time `now` and returns what the driver must do, in order.
    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Effect> {
        let mut out = Vec::new();
        if self.phase == Phase::Done {
            return out;
        }
        match input {
            Input::Up(None) => {
                let autostart: Vec<InstanceId> = self
                    .targets(&Target::All)
                    .into_iter()
                    .filter(|&id| self.spec_of(id).autostart)
                    .collect();
                self.start_with_deps(autostart, now, &mut out);
            }
            Input::Up(Some(targets)) => {
                let ids = targets.iter().flat_map(|t| self.targets(t)).collect();
                self.start_with_deps(ids, now, &mut out);
            }
            Input::StartRequested(target) => {
                let ids = self.targets(&target);
                self.start_with_deps(ids, now, &mut out);
            }
            Input::StartOnlyRequested(target) => {
                for id in self.targets(&target) {
                    self.start(id, now, &mut out);
                }
            }
            Input::StopRequested(target) => {
                for id in self.targets(&target) {
                    self.stop(id, now, &mut out);
                    self.inst_mut(id).stopped_by_user = true;
                }
            }
            Input::RestartRequested(target) => {
                for id in self.targets(&target) {
                    self.restart(id, now, &mut out);
                }
            }
            Input::ReloadRequested(spec) => {
                let summary = self.reload(spec, now, &mut out);
                out.push(Effect::Reloaded(summary));
            }
            Input::ScaleRequested { process, replicas } => {
                self.scale(process, replicas, now, &mut out)
            }
            Input::EnvRead {
                process,
                env,
                read_from,
            } => self.env_read(process, env, &read_from),
            Input::ShutdownRequested { force } => self.shutdown(force, now, &mut out),
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
            Input::Exited {
                run,
                status,
                group_left,
            } => {
                if let Some(id) = self.find_run(run) {
                    if group_left {
                        self.keep_leftover(id, run, now, &mut out);
                    }
                    self.ended(id, Ok(status), now, &mut out);
                }
            }
            Input::OomKilled { run, kills } => {
                if let Some(id) = self.find_run(run) {
                    let inst = self.inst_mut(id);
                    inst.oom_kills += u64::from(kills);
                    if let Some(live) = inst.run_mut() {
                        live.oom_kills = live.oom_kills.saturating_add(kills);
                    }
                }
            }
            Input::GroupEmpty { run } => self.forget_leftover(run),
            Input::Readiness { run, fact } => {
                if let Some(id) = self.find_run(run) {
                    self.readiness(id, run, fact, now, &mut out);
                }
            }
            Input::HealthChecked { run, result } => {
                if let Some(id) = self.find_run(run) {
                    self.health_checked(id, run, result, now, &mut out);
                }
            }
            Input::MemoryUsed { run, bytes } => {
                if let Some(id) = self.find_run(run) {
                    self.memory_used(id, run, bytes, now, &mut out);
                }
            }
            Input::Tick => {
                while let Some(timer) = self.timers.pop_due(now) {
                    self.timer_fired(timer, now, &mut out);
                }
            }
        }
        self.settle(now, &mut out);
        if self.phase != Phase::Running && self.live_runs.is_empty() && self.leftovers.is_empty() {
            self.phase = Phase::Done;
            out.push(Effect::Exit);
        }
        out
    }

    /// Everything is to stop (`force`: be killed now; a second request while stopping kills
    /// too): every instance stops, and so does every leftover group left alone.
    fn shutdown(&mut self, force: bool, now: Instant, out: &mut Vec<Effect>) {
        self.phase = if force || self.phase == Phase::KillingAll {
            Phase::KillingAll
        } else {
            Phase::StoppingAll
        };
        let kill = self.phase == Phase::KillingAll;
        for id in self.targets(&Target::All) {
            self.stop(id, now, out);
            if kill {
                self.kill_now(id, out);
            }
        }
        let grace = deadline_after(now, self.settings.stop_timeout);
        let runs: Vec<RunId> = self.leftovers.keys().copied().collect();
        for run in runs {
            if kill {
                self.kill_leftover(run, out);
            } else {
                self.drain_lingering(run, grace, out);
            }
        }
    }

    fn slot(&self, process: usize) -> Option<&Slot> {
        self.slots.get(process)?.as_ref()
    }

    fn add_slot(&mut self, spec: Arc<ProcessSpec>) -> usize {
        let instances = (0..spec.replicas)
            .map(|r| (r, Instance::new(&spec)))
            .collect();
        // Sticky: instances may still wait after a reload took every dependency away.
        self.has_deps |= !spec.depends_on.is_empty();
        let process = self.slots.len();
        self.by_name.insert(spec.name.clone(), process);
        self.slots.push(Some(Slot {
            spec,
            instances,
            removed: false,
        }));
        self.order.push(process);
        process
    }

    fn spec_of(&self, id: InstanceId) -> Arc<ProcessSpec> {
        Arc::clone(&self.slot(id.process).expect("a live slot").spec)
    }

    fn inst(&self, id: InstanceId) -> &Instance {
        &self.slot(id.process).expect("a live slot").instances[&id.replica]
    }

    fn inst_mut(&mut self, id: InstanceId) -> &mut Instance {
        self.slots[id.process]
            .as_mut()
            .expect("a live slot")
            .instances
            .get_mut(&id.replica)
            .expect("a live instance")
    }

    fn find_run(&self, run: RunId) -> Option<InstanceId> {
        self.live_runs.get(&run).copied()
    }

    /// Whether an instance is gone from the config (its process removed, or its replica above
    /// the count): it is forgotten as soon as nothing of it runs, and never started again.
    fn retired(&self, id: InstanceId) -> bool {
        self.slot(id.process)
            .is_none_or(|slot| slot.removed || id.replica >= slot.spec.replicas)
    }

    /// Forgets a retired instance once nothing of it runs, and its slot once empty.
    fn forget_if_retired(&mut self, id: InstanceId) {
        if !self.retired(id) {
            return;
        }
        let Some(slot) = self.slots[id.process].as_mut() else {
            return;
        };
        if slot
            .instances
            .get(&id.replica)
            .is_some_and(|i| i.run().is_none() && i.timer().is_none())
        {
            slot.instances.remove(&id.replica);
        }
        if slot.removed && slot.instances.is_empty() {
            self.forgotten.insert(id.process, slot.spec.name.clone());
            self.slots[id.process] = None;
            self.order.retain(|&p| p != id.process);
        }
    }
}

/// The effect that sends `signal` to the group `pgid` of `run`.
fn signal(run: RunId, pgid: u32, signal: Signal) -> Effect {
    Effect::Signal { run, pgid, signal }
}

/// `now + after`, or no deadline at all when that is beyond what an `Instant` can hold.
fn deadline_after(now: Instant, after: Duration) -> Option<Instant> {
    now.checked_add(after)
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Stopped => "stopped",
            State::Waiting => "waiting",
            State::Starting => "starting",
            State::Running => "running",
            State::Ready => "ready",
            State::Backoff => "backoff",
            State::Stopping => "stopping",
            State::Exited => "exited",
            State::Failed => "failed",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every armed timer belongs to a state or a leftover that waits for it, and back.
    fn timers_match_states(sup: &Supervisor) {
        let waiting = sup.instances().filter(|v| v.deadline.is_some()).count()
            + sup
                .leftovers
                .values()
                .filter(|l| l.is_draining_with_deadline())
                .count();
        assert_eq!(sup.timers.len(), waiting, "{sup:#?}");
    }

    #[test]
    fn a_timer_is_armed_exactly_while_a_state_waits_for_it() {
        let mut p = ProcessSpec::new("p", vec!["true".into()]);
        p.start_secs = Duration::from_millis(100);
        p.backoff.initial = Duration::from_millis(50);
        let spec = Spec {
            supervisor: SupervisorSpec {
                log_dir: "/tmp".into(),
                stop_timeout: Duration::from_secs(1),
                umask: 0o022,
                cgroups: true,
            },
            processes: vec![Arc::new(p)],
        };
        let mut sup = Supervisor::new(spec);
        let t0 = Instant::now();
        let run = |effects: &[Effect]| {
            effects.iter().find_map(|e| match e {
                Effect::Spawn { run, .. } => Some(*run),
                _ => None,
            })
        };
        let first = run(&sup.handle(t0, Input::Up(None))).unwrap();
        timers_match_states(&sup);
        sup.handle(
            t0,
            Input::Spawned {
                run: first,
                pid: 10,
            },
        );
        timers_match_states(&sup); // start_secs
        sup.handle(
            t0,
            Input::Exited {
                run: first,
                status: ExitStatus::Code(1),
                group_left: true,
            },
        );
        timers_match_states(&sup); // backoff; the group lingers without a timer
        sup.handle(t0, Input::StopRequested(Target::All));
        timers_match_states(&sup); // backoff cancelled
        let second = run(&sup.handle(t0, Input::StartRequested(Target::All))).unwrap();
        sup.handle(
            t0,
            Input::Spawned {
                run: second,
                pid: 11,
            },
        );
        sup.handle(t0, Input::ShutdownRequested { force: false });
        timers_match_states(&sup); // the stop timeout, and the lingering group's deadline
        assert_eq!(sup.timers.len(), 2);
        sup.handle(t0, Input::GroupEmpty { run: first });
        sup.handle(
            t0,
            Input::Exited {
                run: second,
                status: ExitStatus::Signaled(15),
                group_left: false,
            },
        );
        timers_match_states(&sup);
        assert_eq!(sup.timers.len(), 0);
        assert_eq!(sup.phase(), Phase::Done);
    }
}
