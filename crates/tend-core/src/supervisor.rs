//! The supervision state machine: facts in, effects out.
//!
//! [`Supervisor::handle`] takes the current time and one past-tense fact ([`Input`]) and
//! returns the imperatives the driver must carry out ([`Effect`]), in order. Deadlines (restart
//! delays, start_secs, stop timeouts) are kept here; the driver asks [`Supervisor::next_deadline`]
//! and feeds [`Input::Tick`] when it passes, so no timer handle ever outlives the decision that
//! armed it.
//!
//! Processes live in slots that keep their number for as long as the process is supervised,
//! across reloads, so an [`InstanceId`] never comes to mean another instance.
//!
//! The supervisor also decides about process groups that outlive their leader (a background
//! job of a run that exited, or members still stopping after their leader did): it keeps them
//! as *leftovers* until the driver reports them empty, stops them when everything stops, and
//! kills them at their deadline; and about its own life ([`Phase`]): it says [`Effect::Exit`]
//! once, when everything was asked to stop and no run and no group of its own lives.

use std::collections::{btree_map, BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::spec::{ProcessSpec, RestartPolicy, Spec, SupervisorSpec};
use crate::Signal;

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
    /// The user asked for the config to be applied: start added processes, stop removed ones,
    /// restart changed ones, leave the others alone. Answered by [`Effect::Reloaded`].
    ReloadRequested(Spec),
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
    /// The process group of an ended run (a leftover) has no member any more.
    GroupEmpty {
        /// The run whose group it was.
        run: RunId,
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

/// What a reload did, by process name.
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
    /// Gone from the config: forgotten as soon as no run of it is live.
    retired: bool,
    /// The delay before the next restart.
    next_backoff: Duration,
    /// When each recent restart was decided, for `max_restarts`.
    recent_restarts: VecDeque<Instant>,
    /// Restarts over the instance's whole life, for status.
    restarts: u64,
    last_exit: Option<Result<ExitStatus, String>>,
}

impl Instance {
    fn new(spec: &ProcessSpec) -> Self {
        Instance {
            want_up: false,
            state: State::Stopped,
            run: None,
            deadline: None,
            restart_pending: false,
            retired: false,
            next_backoff: spec.backoff.initial,
            recent_restarts: VecDeque::new(),
            restarts: 0,
            last_exit: None,
        }
    }
}

/// A supervised process: its spec and its instances by replica index.
#[derive(Debug, Clone)]
struct Slot {
    spec: Arc<ProcessSpec>,
    instances: BTreeMap<u32, Instance>,
    /// Gone from the config; the slot is emptied once its last instance is forgotten.
    removed: bool,
}

/// A process group whose leader was reaped while other members lived on.
#[derive(Debug, Clone)]
struct Leftover {
    pgid: u32,
    fate: Fate,
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
    /// When something is due: the end of start_secs, the restart, or (while stopping) the
    /// SIGKILL.
    pub deadline: Option<Instant>,
    /// Restarts over the instance's life.
    pub restarts: u64,
    /// How the last run ended (`Err`: the spawn error).
    pub last_exit: Option<&'a Result<ExitStatus, String>>,
}

impl InstanceView<'_> {
    /// Whether the last run exited with one of the process's success codes (a one-shot job
    /// that did its work).
    pub fn ended_well(&self) -> bool {
        matches!(self.last_exit, Some(Ok(status)) if is_success(self.spec, *status))
    }
}

/// Whether `status` is one of `spec`'s success codes.
fn is_success(spec: &ProcessSpec, status: ExitStatus) -> bool {
    matches!(status, ExitStatus::Code(code) if spec.success_codes.contains(&code))
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
    next_run: u64,
    phase: Phase,
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
            next_run: 1,
            phase: Phase::Running,
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
            None => format!("#{}.{}", id.process, id.replica),
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
        let slot = self.slot(process)?;
        slot.instances
            .get(&replica)
            .is_some_and(|i| !i.retired)
            .then_some(Target::Instance(InstanceId { process, replica }))
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
        }
    }

    /// Where the supervisor is in its life.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The process groups of ended runs that still have members, with their group ids.
    pub fn leftover_groups(&self) -> impl Iterator<Item = (RunId, u32)> + '_ {
        self.leftovers.iter().map(|(&run, l)| (run, l.pgid))
    }

    /// The earliest deadline, if any: the driver feeds [`Input::Tick`] once it has passed.
    pub fn next_deadline(&self) -> Option<Instant> {
        let draining = self.leftovers.values().filter_map(|l| match l.fate {
            Fate::Draining(at) => at,
            _ => None,
        });
        self.slots
            .iter()
            .flatten()
            .flat_map(|slot| slot.instances.values())
            .filter_map(|i| i.deadline)
            .chain(draining)
            .min()
    }

    /// Applies one fact at time `now` and returns what the driver must do, in order.
    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Effect> {
        let mut out = Vec::new();
        if self.phase == Phase::Done {
            return out;
        }
        match input {
            Input::Up(None) => {
                for id in self.targets(&Target::All) {
                    if self.spec_of(id).autostart {
                        self.start(id, now, &mut out);
                    }
                }
            }
            Input::Up(Some(targets)) => {
                for target in targets {
                    for id in self.targets(&target) {
                        self.start(id, now, &mut out);
                    }
                }
            }
            Input::StartRequested(target) => {
                for id in self.targets(&target) {
                    self.start(id, now, &mut out);
                }
            }
            Input::StopRequested(target) => {
                for id in self.targets(&target) {
                    self.stop(id, now, &mut out);
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
            Input::ShutdownRequested { force } => {
                let was = self.phase;
                self.phase = if force || was == Phase::KillingAll {
                    Phase::KillingAll
                } else {
                    Phase::StoppingAll
                };
                let kill = self.phase == Phase::KillingAll;
                for id in self.targets(&Target::All) {
                    self.stop(id, now, &mut out);
                    if kill {
                        self.kill_now(id, &mut out);
                    }
                }
                let grace = deadline_after(now, self.settings.stop_timeout);
                for (&run, leftover) in &mut self.leftovers {
                    match (kill, leftover.fate) {
                        (_, Fate::Killed) => {}
                        (true, _) => {
                            leftover.fate = Fate::Killed;
                            out.push(signal(run, leftover.pgid, Signal::Kill));
                        }
                        // A background job left alone so far: stopped like everything else,
                        // with the supervisor's stop timeout.
                        (false, Fate::Lingering) => {
                            out.push(signal(run, leftover.pgid, Signal::Term));
                            leftover.fate = Fate::Draining(grace);
                        }
                        (false, Fate::Draining(_)) => {}
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
            Input::GroupEmpty { run } => {
                self.leftovers.remove(&run);
            }
            Input::Tick => {
                for id in self.targets(&Target::All) {
                    if self.inst(id).deadline.is_some_and(|d| d <= now) {
                        self.deadline_passed(id, now, &mut out);
                    }
                }
                for (&run, leftover) in &mut self.leftovers {
                    if matches!(leftover.fate, Fate::Draining(Some(at)) if at <= now) {
                        leftover.fate = Fate::Killed;
                        out.push(signal(run, leftover.pgid, Signal::Kill));
                    }
                }
            }
        }
        if self.phase != Phase::Running && self.live_runs.is_empty() && self.leftovers.is_empty() {
            self.phase = Phase::Done;
            out.push(Effect::Exit);
        }
        out
    }

    /// The leader of `run` of `id` was reaped while other members of its group live on: keep
    /// the group. Members of a run being stopped got the stop signal with the leader and may
    /// finish until the run's kill deadline; a run that exited on its own leaves a group that
    /// is left alone until everything stops (then it is stopped as a run would be).
    fn keep_leftover(&mut self, id: InstanceId, run: RunId, now: Instant, out: &mut Vec<Effect>) {
        let inst = self.inst(id);
        let Some(pgid) = inst.run.as_ref().and_then(|r| r.pid) else {
            return;
        };
        let stopping = inst.state == State::Stopping;
        let fate = match (self.phase, stopping, inst.deadline) {
            (Phase::KillingAll, ..) => Fate::Killed,
            (_, true, Some(at)) if at > now => Fate::Draining(Some(at)),
            // Stopping with the deadline passed, or already killed (no deadline left).
            (_, true, _) => Fate::Killed,
            (Phase::Running, false, _) => Fate::Lingering,
            (_, false, _) => {
                out.push(signal(run, pgid, Signal::Term));
                Fate::Draining(deadline_after(now, self.settings.stop_timeout))
            }
        };
        if fate == Fate::Killed {
            out.push(signal(run, pgid, Signal::Kill));
        }
        self.leftovers.insert(run, Leftover { pgid, fate });
    }

    fn slot(&self, process: usize) -> Option<&Slot> {
        self.slots.get(process)?.as_ref()
    }

    fn add_slot(&mut self, spec: Arc<ProcessSpec>) -> usize {
        let instances = (0..spec.replicas)
            .map(|r| (r, Instance::new(&spec)))
            .collect();
        self.slots.push(Some(Slot {
            spec,
            instances,
            removed: false,
        }));
        let process = self.slots.len() - 1;
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

    /// Forgets a retired instance once nothing of it runs, and its slot once empty.
    fn forget_if_retired(&mut self, id: InstanceId) {
        let Some(slot) = self.slots[id.process].as_mut() else {
            return;
        };
        if slot
            .instances
            .get(&id.replica)
            .is_some_and(|i| i.retired && i.run.is_none())
        {
            slot.instances.remove(&id.replica);
        }
        if slot.removed && slot.instances.is_empty() {
            self.slots[id.process] = None;
            self.order.retain(|&p| p != id.process);
        }
    }

    /// Applies a new config; see [`Input::ReloadRequested`].
    fn reload(&mut self, spec: Spec, now: Instant, out: &mut Vec<Effect>) -> ReloadSummary {
        let mut summary = ReloadSummary::default();
        self.settings = spec.supervisor;
        let old: HashMap<String, usize> = self
            .order
            .iter()
            .filter_map(|&p| {
                let slot = self.slot(p)?;
                (!slot.removed).then(|| (slot.spec.name.clone(), p))
            })
            .collect();
        let mut kept = Vec::new();
        for new in spec.processes {
            let name = new.name.clone();
            match old.get(&name) {
                None => {
                    let process = self.add_slot(new);
                    kept.push(process);
                    if !(self.phase != Phase::Running)
                        && self.slot(process).expect("just added").spec.autostart
                    {
                        for id in self.targets(&Target::Process(process)) {
                            self.start(id, now, out);
                        }
                    }
                    summary.added.push(name);
                }
                Some(&process) => {
                    kept.push(process);
                    let current = Arc::clone(&self.slot(process).expect("a live slot").spec);
                    if *current == *new {
                        summary.unchanged.push(name);
                    } else {
                        self.change(process, new, now, out);
                        summary.changed.push(name);
                    }
                }
            }
        }
        for (name, &process) in &old {
            if !kept.contains(&process) {
                self.remove(process, now, out);
                summary.removed.push(name.clone());
            }
        }
        summary.removed.sort();
        // Config order for the processes kept and added; removed ones last while they stop.
        let removed: Vec<usize> = self
            .order
            .iter()
            .copied()
            .filter(|&p| !kept.contains(&p) && self.slot(p).is_some())
            .collect();
        self.order = kept;
        self.order.extend(removed);
        summary
    }

    /// Gives a process new settings. When only `replicas` changed, instances are added or
    /// retired and the others keep running. Otherwise every instance that is wanted up (or
    /// failed: the new settings may be the fix) restarts with the new spec; one the user
    /// stopped stays stopped. Live runs are stopped before the spec changes, so they get the
    /// stop signal and timeout they were started with.
    fn change(
        &mut self,
        process: usize,
        new: Arc<ProcessSpec>,
        now: Instant,
        out: &mut Vec<Effect>,
    ) {
        let slot = self.slots[process].as_mut().expect("a live slot");
        let only_replicas = ProcessSpec {
            replicas: new.replicas,
            ..(*slot.spec).clone()
        } == *new;
        let active = slot.instances.values().any(|i| !i.retired && i.want_up)
            || (new.autostart && !slot.spec.autostart);
        let existing: Vec<u32> = slot.instances.keys().copied().collect();
        for &replica in existing.iter().filter(|&&r| r >= new.replicas) {
            let id = InstanceId { process, replica };
            self.inst_mut(id).retired = true;
            self.stop(id, now, out);
            self.forget_if_retired(id);
        }
        // Instances without a live run restart at once, so only after the spec changed.
        let mut idle = Vec::new();
        if !only_replicas {
            for &replica in existing.iter().filter(|&&r| r < new.replicas) {
                let id = InstanceId { process, replica };
                let inst = self.inst(id);
                if inst.retired || !(inst.want_up || inst.state == State::Failed) {
                    continue;
                }
                if inst.run.is_some() {
                    self.restart(id, now, out);
                } else {
                    idle.push(id);
                }
            }
        }
        self.slots[process].as_mut().expect("a live slot").spec = Arc::clone(&new);
        for id in idle {
            self.restart(id, now, out);
        }
        // Replicas below the new count: new ones, and ones an earlier reload retired.
        for replica in 0..new.replicas {
            let id = InstanceId { process, replica };
            let slot = self.slots[process].as_mut().expect("a live slot");
            match slot.instances.entry(replica) {
                btree_map::Entry::Vacant(entry) => {
                    entry.insert(Instance::new(&new));
                }
                btree_map::Entry::Occupied(mut entry) if entry.get().retired => {
                    entry.get_mut().retired = false;
                }
                btree_map::Entry::Occupied(_) => continue,
            }
            if active {
                self.start(id, now, out);
            }
        }
    }

    /// Stops every instance of a process gone from the config, forgetting each once stopped.
    fn remove(&mut self, process: usize, now: Instant, out: &mut Vec<Effect>) {
        self.slots[process].as_mut().expect("a live slot").removed = true;
        for id in self.targets(&Target::Process(process)) {
            self.inst_mut(id).retired = true;
            self.stop(id, now, out);
            self.forget_if_retired(id);
        }
    }

    /// Asks for `id` to be up, with a fresh restart budget if it is down.
    fn start(&mut self, id: InstanceId, now: Instant, out: &mut Vec<Effect>) {
        if (self.phase != Phase::Running) || self.inst(id).retired {
            return;
        }
        let initial = self.spec_of(id).backoff.initial;
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
        if (self.phase != Phase::Running) || self.inst(id).retired {
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
        let spec = self.spec_of(id);
        let inst = self.inst_mut(id);
        let Some(run) = &inst.run else { return };
        let Some(pid) = run.pid else {
            // Not spawned yet: `spawned` sees want_up = false and stops it then.
            return;
        };
        let (run, pgid) = (run.id, pid);
        inst.state = State::Stopping;
        inst.deadline = deadline_after(now, spec.stop_timeout);
        out.push(signal(run, pgid, spec.stop_signal));
        out.push(Effect::Notify(Notice::Stopping {
            instance: id,
            signal: spec.stop_signal,
        }));
    }

    fn kill_now(&mut self, id: InstanceId, out: &mut Vec<Effect>) {
        let inst = self.inst_mut(id);
        if let Some(Run {
            id: run,
            pid: Some(pgid),
            ..
        }) = inst.run
        {
            inst.deadline = None;
            out.push(signal(run, pgid, Signal::Kill));
        }
    }

    fn spawn(&mut self, id: InstanceId, now: Instant, out: &mut Vec<Effect>) {
        let run = RunId(self.next_run);
        self.next_run += 1;
        self.live_runs.insert(run, id);
        let spec = self.spec_of(id);
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
            spec,
        });
    }

    fn spawned(&mut self, id: InstanceId, pid: u32, now: Instant, out: &mut Vec<Effect>) {
        let start_secs = self.spec_of(id).start_secs;
        let inst = self.inst_mut(id);
        let run = inst.run.as_mut().expect("find_run found a live run");
        run.pid = Some(pid);
        run.since = now;
        let want_up = inst.want_up;
        out.push(Effect::Notify(Notice::Started { instance: id, pid }));
        if !want_up {
            self.begin_stop(id, now, out);
            if self.phase == Phase::KillingAll {
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
        let spec = self.spec_of(id);
        let shutting_down = self.phase != Phase::Running;
        let inst = self.inst_mut(id);
        let run = inst.run.take().expect("find_run found a live run");
        self.live_runs.remove(&run.id);
        let inst = self.inst_mut(id);
        let was_stopping = inst.state == State::Stopping || !inst.want_up;
        let restart_pending = std::mem::take(&mut inst.restart_pending);
        inst.deadline = None;
        inst.last_exit = Some(how.clone());

        let next = if was_stopping {
            if restart_pending && !shutting_down && !inst.retired {
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
            let success = matches!(how, Ok(status) if is_success(&spec, status));
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
        self.forget_if_retired(id);
    }

    fn deadline_passed(&mut self, id: InstanceId, now: Instant, out: &mut Vec<Effect>) {
        let stop_timeout = self.spec_of(id).stop_timeout;
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

fn view<'a>(id: InstanceId, spec: &'a ProcessSpec, inst: &'a Instance) -> InstanceView<'a> {
    InstanceView {
        id,
        spec,
        state: inst.state,
        want_up: inst.want_up,
        run: inst.run.as_ref().map(|run| run.id),
        pid: inst.run.as_ref().and_then(|run| run.pid),
        since: inst.run.as_ref().map(|run| run.since),
        deadline: inst.deadline,
        restarts: inst.restarts,
        last_exit: inst.last_exit.as_ref(),
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
