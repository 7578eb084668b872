//! Property tests: random sequences of facts keep the supervisor's promises.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::*;
use proptest::prelude::*;
use tend_core::*;

#[derive(Debug, Clone)]
enum Step {
    Advance(u64),
    /// The run at this index (modulo) of the live ones exits with this code; with `true`,
    /// other members of its process group live on (a leftover group).
    ExitOne(usize, i32, bool),
    /// The leftover group at this index (modulo) empties by itself.
    GroupEmptyOne(usize),
    /// The run at this index (modulo) of the live ones turns out not to have exec'd.
    SpawnFailOne(usize),
    Start(Pick),
    Stop(Pick),
    Restart(Pick),
    Reload(u8),
    /// The live run at this index (modulo) gets ready (ignored without a readiness check).
    Ready(usize),
    /// `tend scale`: the process of the pick gets this many instances.
    Scale(Pick, u32),
    /// The OOM killer kills processes of the live run at this index (modulo): a fact that
    /// changes nothing but what status tells.
    OomOne(usize, u32),
}

/// Whom a request names: the instance at this index (modulo) of those that exist, alone or
/// with its whole process; or everything.
#[derive(Debug, Clone, Copy)]
enum Pick {
    Instance(usize),
    ProcessOf(usize),
    All,
}

impl Pick {
    fn target(self, sup: &Supervisor) -> Target {
        let ids: Vec<InstanceId> = sup.instances().map(|v| v.id).collect();
        match self {
            _ if ids.is_empty() => Target::All,
            Pick::Instance(i) => Target::Instance(ids[i % ids.len()]),
            Pick::ProcessOf(i) => Target::Process(ids[i % ids.len()].process),
            Pick::All => Target::All,
        }
    }
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        4 => any::<usize>().prop_map(Pick::Instance),
        3 => any::<usize>().prop_map(Pick::ProcessOf),
        1 => Just(Pick::All),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u64..3000).prop_map(Step::Advance),
        4 => (any::<usize>(), 0i32..3, prop::bool::weighted(0.3))
            .prop_map(|(i, c, left)| Step::ExitOne(i, c, left)),
        1 => any::<usize>().prop_map(Step::GroupEmptyOne),
        1 => any::<usize>().prop_map(Step::SpawnFailOne),
        1 => pick().prop_map(Step::Start),
        1 => pick().prop_map(Step::Stop),
        1 => pick().prop_map(Step::Restart),
        1 => (0u8..4).prop_map(Step::Reload),
        2 => any::<usize>().prop_map(Step::Ready),
        1 => (pick(), 0u32..4).prop_map(|(p, n)| Step::Scale(p, n)),
        1 => (any::<usize>(), 1u32..3).prop_map(|(i, n)| Step::OomOne(i, n)),
    ]
}

/// A sequence of steps, and maybe where a shutdown comes: it cannot be undone, so there is at
/// most one per case (and maybe a forced one after it), in half the cases, at a random place.
fn script() -> impl Strategy<Value = (Vec<Step>, Option<prop::sample::Index>)> {
    (
        proptest::collection::vec(step(), 1..80),
        proptest::option::of(any::<prop::sample::Index>()),
    )
}

/// The processes of a case: without dependencies, or (`deps`) in an order: `a` ready by
/// notify; `b` (2 replicas) needs `a` ready; `c` (a one-shot) needs `b` started and restarts
/// with it; `e` needs `c` completed.
fn procs_of(deps: bool) -> Vec<ProcessSpec> {
    let mut list = procs();
    if deps {
        let need = |p: &mut ProcessSpec, name: &str, condition| {
            p.depends_on.push(Dependency {
                name: name.into(),
                condition,
            })
        };
        list[0].ready = Some(ReadySpec {
            check: ReadyCheck::Notify,
            start_timeout: None,
            watchdog: None,
        });
        need(&mut list[1], "a", Condition::Ready);
        need(&mut list[2], "b", Condition::Started);
        list[2].restart_with = vec!["b".into()];
        let mut e = proc("e");
        e.restart = RestartPolicy::OnFailure;
        need(&mut e, "c", Condition::Completed);
        list.push(e);
    }
    list
}

/// The longest chain of dependencies among `procs_of(deps)`: a graceful stop takes a stop
/// timeout per link.
fn stop_stages(deps: bool) -> u32 {
    if deps {
        4
    } else {
        1
    }
}

fn procs() -> Vec<ProcessSpec> {
    let mut a = proc("a");
    a.backoff = Backoff {
        initial: ms(0),
        max: ms(400),
        factor: 3.0,
    };
    a.start_secs = ms(0);
    // Tried again a while after it gives up.
    a.retry_after = Some(ms(2000));
    let mut b = proc("b");
    b.replicas = 2;
    b.restart = RestartPolicy::OnFailure;
    b.backoff = Backoff {
        initial: ms(50),
        max: ms(1000),
        factor: 2.0,
    };
    b.stop_timeout = ms(700);
    let mut c = proc("c");
    c.restart = RestartPolicy::Never;
    c.stop_timeout = ms(0);
    vec![a, b, c]
}

/// Variations of `procs_of(deps)` for reloads: unchanged, `a` edited, `b` scaled, the last
/// removed and `d` added.
fn variant(v: u8, deps: bool) -> Vec<ProcessSpec> {
    let mut list = procs_of(deps);
    match v {
        1 => list[0].argv.push("--edited".into()),
        2 => list[1].replicas = if list[1].replicas == 2 { 3 } else { 1 },
        3 => {
            list.pop();
            list.push(proc("d"));
        }
        _ => {}
    }
    list
}

/// The processes that depend on `process`, directly or through others.
fn dependents_of(sup: &Supervisor, process: usize) -> HashSet<usize> {
    let mut found = HashSet::new();
    let mut todo = vec![process];
    while let Some(p) = todo.pop() {
        let name = sup.process(p).unwrap().name.clone();
        for (q, spec) in sup.processes() {
            if spec.depends_on.iter().any(|d| d.name == name) && found.insert(q) {
                todo.push(q);
            }
        }
    }
    found
}

/// The supervisor, a fake OS around it (which runs exist), and what the checks remember from
/// one step to the next.
struct World {
    h: Harness,
    /// The processes depend on each other (`procs_of(true)`).
    deps: bool,
    pending: Vec<RunId>,
    alive: Vec<RunId>,
    ever: HashSet<RunId>,
    killed: HashSet<RunId>,
    stopping_since: HashMap<InstanceId, Instant>,
    shutdown_at: Option<Instant>,
    /// When the supervisor said to exit.
    exited: Option<Instant>,
    /// Leftover groups (of ended runs) that still have members, with when they must have
    /// been killed: the run's kill deadline if it was stopping; for one left alone, the
    /// supervisor's stop timeout after a shutdown began (`None` until then).
    left: HashMap<RunId, Option<Instant>>,
}

impl World {
    fn new(deps: bool) -> World {
        World {
            h: Harness::new(procs_of(deps)),
            deps,
            pending: Vec::new(),
            alive: Vec::new(),
            ever: HashSet::new(),
            killed: HashSet::new(),
            stopping_since: HashMap::new(),
            shutdown_at: None,
            exited: None,
            left: HashMap::new(),
        }
    }

    /// Carries out the effects of one input like a driver would, checking each one (spawns
    /// are answered at once, and their effects carried out too), then checks the state.
    fn settle(&mut self, mut effects: Vec<Effect>) -> Result<(), TestCaseError> {
        loop {
            for e in &effects {
                match e {
                    Effect::Spawn { run, instance, .. } => {
                        prop_assert!(self.ever.insert(*run), "run ids are never reused");
                        prop_assert!(
                            self.h.sup.waiting_for(*instance).is_empty(),
                            "spawned only when its conditions hold: {:?} waits for {:?}",
                            instance,
                            self.h.sup.waiting_for(*instance)
                        );
                        prop_assert!(
                            self.shutdown_at.is_none(),
                            "nothing starts during a shutdown: {:?}",
                            run
                        );
                        self.pending.push(*run);
                    }
                    Effect::Signal { run, signal, .. } => {
                        if *signal == Signal::Kill {
                            self.killed.insert(*run);
                        }
                        prop_assert!(
                            self.alive.contains(run)
                                || self.pending.contains(run)
                                || self.left.contains_key(run),
                            "signal only live runs and groups not reported empty: {:?}",
                            run
                        );
                    }
                    Effect::Notify(Notice::Ended {
                        instance,
                        next: Next::Restart(d),
                        ..
                    }) => {
                        let max = self
                            .h
                            .sup
                            .process(instance.process)
                            .map_or(ms(1000), |p| p.backoff.max);
                        prop_assert!(*d <= max, "backoff bounded");
                    }
                    Effect::Notify(Notice::Stopping { instance, .. })
                        if self.h.sup.phase() != Phase::KillingAll
                            && self.h.sup.instance(*instance).is_some_and(|v| !v.want_up) =>
                    {
                        // Going down for good: no dependent (direct or through others) on its
                        // way down still runs.
                        let dependents = dependents_of(&self.h.sup, instance.process);
                        let blocking: Vec<InstanceId> = self
                            .h
                            .sup
                            .instances()
                            .filter(|v| {
                                dependents.contains(&v.id.process) && !v.want_up && v.run.is_some()
                            })
                            .map(|v| v.id)
                            .collect();
                        prop_assert!(
                            blocking.is_empty(),
                            "{:?} stopped before its dependents {:?}",
                            instance,
                            blocking
                        );
                    }
                    Effect::Exit => {
                        prop_assert!(self.exited.is_none(), "exit once");
                        prop_assert!(self.shutdown_at.is_some(), "exit only when asked");
                        prop_assert!(
                            self.left.is_empty(),
                            "exit only when no group of tend's lives: {:?}",
                            self.left
                        );
                        self.exited = Some(self.h.now);
                    }
                    _ => {}
                }
            }
            let mut follow = Vec::new();
            for run in std::mem::take(&mut self.pending) {
                self.alive.push(run);
                follow.extend(self.h.feed(Input::Spawned {
                    run,
                    pid: 1000 + run.0 as u32,
                }));
            }
            if follow.is_empty() {
                break;
            }
            effects = follow;
        }
        self.check()
    }

    /// The promises about the state between inputs.
    fn check(&mut self) -> Result<(), TestCaseError> {
        // At most one live run per instance, and only in the states that have one.
        let mut live = 0;
        for v in self.h.sup.instances() {
            let has_run = matches!(
                v.state,
                State::Starting | State::Running | State::Ready | State::Stopping
            );
            prop_assert_eq!(v.pid.is_some(), has_run, "{:?}", v);
            prop_assert!(
                v.state != State::Failed || v.deadline.is_none() || v.spec.retry_after.is_some(),
                "a failed instance waits for a retry only with retry_after: {:?}",
                v
            );
            prop_assert!(
                v.id.replica < v.spec.replicas || !v.want_up,
                "an instance above the count is never wanted up: {:?}",
                v
            );
            if has_run {
                live += 1;
            }
            if v.state == State::Stopping {
                let since = *self.stopping_since.entry(v.id).or_insert(self.h.now);
                let run = RunId(u64::from(v.pid.unwrap()) - 1000);
                prop_assert!(
                    self.h.now <= since + v.spec.stop_timeout || self.killed.contains(&run),
                    "a stop escalates to SIGKILL by stop_timeout: {:?}",
                    v
                );
            } else {
                self.stopping_since.remove(&v.id);
            }
        }
        prop_assert_eq!(live, self.alive.len());
        if self.exited.is_some() {
            prop_assert_eq!(live, 0, "exit only when nothing runs");
        }
        // A leftover group left alone is stopped when everything stops, and every stopping
        // leftover is killed by its deadline.
        let stop_timeout = self.h.sup.settings().stop_timeout;
        for (run, due) in &mut self.left {
            if let (None, Some(asked)) = (*due, self.shutdown_at) {
                *due = Some(asked + stop_timeout);
            }
            if let Some(due) = *due {
                prop_assert!(
                    self.h.now <= due || self.killed.contains(run),
                    "a leftover group is killed by its deadline: {:?}",
                    run
                );
            }
        }
        let known: HashSet<RunId> = self.h.sup.leftover_groups().map(|(run, _)| run).collect();
        let ours: HashSet<RunId> = self.left.keys().copied().collect();
        prop_assert_eq!(
            known,
            ours,
            "the supervisor's leftovers are the live groups"
        );
        Ok(())
    }

    fn step(&mut self, step: Step) -> Vec<Effect> {
        let h = &mut self.h;
        match step {
            Step::Advance(n) => {
                // Deliver the next deadline on time, as the driver does, or let time pass.
                let target = h.now + ms(n);
                match h.sup.next_deadline().filter(|&d| d <= target) {
                    Some(due) => {
                        h.now = due.max(h.now);
                        h.feed(Input::Tick)
                    }
                    None => {
                        h.now = target;
                        Vec::new()
                    }
                }
            }
            Step::ExitOne(..) | Step::SpawnFailOne(_) if self.alive.is_empty() => Vec::new(),
            Step::ExitOne(i, code, group_left) => {
                let run = self.alive.remove(i % self.alive.len());
                if group_left {
                    let view = h.sup.instances().find(|v| v.run == Some(run));
                    let due = match view {
                        // Its members got the stop signal: killed by the run's deadline (at
                        // once if it was killed already).
                        Some(v) if v.state == State::Stopping => Some(v.deadline.unwrap_or(h.now)),
                        _ if self.shutdown_at.is_some() => {
                            Some(h.now + h.sup.settings().stop_timeout)
                        }
                        _ => None,
                    };
                    self.left.insert(run, due);
                }
                h.feed(Input::Exited {
                    group_left,
                    run,
                    status: ExitStatus::Code(code),
                })
            }
            Step::GroupEmptyOne(_) if self.left.is_empty() => Vec::new(),
            Step::GroupEmptyOne(i) => {
                let mut runs: Vec<RunId> = self.left.keys().copied().collect();
                runs.sort();
                let run = runs[i % runs.len()];
                self.left.remove(&run);
                h.feed(Input::GroupEmpty { run })
            }
            Step::SpawnFailOne(i) => {
                // Stands in for a run whose exec failed: reported as a spawn failure.
                let run = self.alive.remove(i % self.alive.len());
                h.feed(Input::SpawnFailed {
                    run,
                    error: "exec failed".into(),
                })
            }
            Step::Start(p) => {
                let target = p.target(&h.sup);
                h.feed(Input::StartRequested(target))
            }
            Step::Stop(p) => {
                let target = p.target(&h.sup);
                h.feed(Input::StopRequested(target))
            }
            Step::Restart(p) => {
                let target = p.target(&h.sup);
                h.feed(Input::RestartRequested(target))
            }
            Step::Reload(v) => {
                let spec = spec_of(variant(v, self.deps));
                let plan = h.sup.plan_reload(&spec);
                let effects = h.feed(Input::ReloadRequested(spec));
                for effect in &effects {
                    match effect {
                        // A reload does what its plan says (`tend reload --dry-run`).
                        Effect::Reloaded(summary) => assert_eq!(*summary, plan),
                        // What the plan says waits for its next start does not start now.
                        Effect::Spawn { spec, .. } => assert!(
                            !plan.not_running.contains(&spec.name),
                            "{} is not running for the plan {plan:?}, yet spawned",
                            spec.name
                        ),
                        _ => {}
                    }
                }
                effects
            }
            Step::Scale(p, replicas) => match p.target(&h.sup) {
                Target::Process(process) | Target::Instance(InstanceId { process, .. }) => {
                    h.feed(Input::ScaleRequested { process, replicas })
                }
                _ => Vec::new(),
            },
            Step::OomOne(..) if self.alive.is_empty() => Vec::new(),
            Step::OomOne(i, kills) => {
                let run = self.alive[i % self.alive.len()];
                let effects = h.feed(Input::OomKilled { run, kills });
                assert!(effects.is_empty(), "an OOM kill did {effects:?}");
                effects
            }
            Step::Ready(_) if self.alive.is_empty() => Vec::new(),
            Step::Ready(i) => {
                let run = self.alive[i % self.alive.len()];
                h.feed(Input::Readiness {
                    run,
                    fact: ReadyFact::Ready,
                })
            }
        }
    }

    fn shutdown(&mut self, force: bool) -> Vec<Effect> {
        self.shutdown_at.get_or_insert(self.h.now);
        self.h.feed(Input::ShutdownRequested { force })
    }

    /// After a shutdown, the worst case: no run stops by itself, only SIGKILL ends one (at
    /// once, from here on). Time passes from deadline to deadline; tend must exit, by the
    /// longest stop_timeout after the shutdown (or now, if a run killed earlier was only
    /// reported dead now).
    fn finish_shutdown(&mut self) -> Result<(), TestCaseError> {
        let asked = self.shutdown_at.expect("a shutdown was asked");
        let drain = self.h.now;
        for _ in 0..1000 {
            if self.exited.is_some() {
                break;
            }
            let dead = self.alive.iter().position(|r| self.killed.contains(r));
            let dead_group = self.left.keys().find(|r| self.killed.contains(r)).copied();
            let effects = if let Some(i) = dead {
                let run = self.alive.remove(i);
                self.h.feed(Input::Exited {
                    group_left: false,
                    run,
                    status: ExitStatus::Signaled(9),
                })
            } else if let Some(run) = dead_group {
                self.left.remove(&run);
                self.h.feed(Input::GroupEmpty { run })
            } else if let Some(due) = self.h.sup.next_deadline() {
                self.h.now = due.max(self.h.now);
                self.h.feed(Input::Tick)
            } else {
                prop_assert!(
                    false,
                    "a shutdown stalled: no deadline, runs {:?} alive, groups {:?} left",
                    self.alive,
                    self.left
                );
                unreachable!()
            };
            self.settle(effects)?;
        }
        let Some(exited) = self.exited else {
            return Err(TestCaseError::fail("a shutdown ends with Exit"));
        };
        // Leftover groups left alone get the supervisor's stop timeout.
        let longest = variant(3, self.deps)
            .iter()
            .chain(&procs_of(self.deps))
            .map(|p| p.stop_timeout)
            .chain([self.h.sup.settings().stop_timeout])
            .max()
            .unwrap()
            * stop_stages(self.deps);
        prop_assert!(
            exited <= (asked + longest).max(drain),
            "exited {:?} after the shutdown, longer than the longest stop_timeout",
            exited - asked
        );
        Ok(())
    }
}

/// How a case ends: a graceful shutdown, a forced one, or a graceful one followed by a forced
/// one after the remaining steps (a second Ctrl+C).
fn shutdown_kind(n: u8) -> (bool, bool) {
    match n % 3 {
        0 => (false, false),
        1 => (true, false),
        _ => (false, true),
    }
}

/// Plays one case: the steps, with a shutdown before step `shutdown_at` (or after the last)
/// if any, of the given kind; then, after a shutdown, drives it to its end.
fn play(
    deps: bool,
    steps: Vec<Step>,
    shutdown_at: Option<usize>,
    kind: u8,
) -> Result<(), TestCaseError> {
    let mut world = World::new(deps);
    let effects = world.h.feed(Input::Up(None));
    world.settle(effects)?;
    let (force, then_force) = shutdown_kind(kind);
    for (i, step) in steps.into_iter().enumerate() {
        if shutdown_at == Some(i) {
            let effects = world.shutdown(force);
            world.settle(effects)?;
        }
        let effects = world.step(step);
        world.settle(effects)?;
    }
    if shutdown_at.is_some() {
        if world.shutdown_at.is_none() {
            // Placed after the last step.
            let effects = world.shutdown(force);
            world.settle(effects)?;
        }
        if then_force {
            let effects = world.shutdown(true);
            world.settle(effects)?;
        }
        world.finish_shutdown()?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn promises_hold((steps, shutdown) in script(), kind in 0u8..3) {
        let shutdown_at = shutdown.map(|at| at.index(steps.len() + 1));
        play(false, steps, shutdown_at, kind)?;
    }

    /// The same with dependencies: besides the promises above, nothing is spawned before its
    /// conditions hold, and nothing goes down before its dependents that go down too.
    #[test]
    fn promises_hold_with_dependencies((steps, shutdown) in script(), kind in 0u8..3) {
        let shutdown_at = shutdown.map(|at| at.index(steps.len() + 1));
        play(true, steps, shutdown_at, kind)?;
    }
}

#[test]
fn backoff_grows_monotonically_to_its_cap() {
    let mut p = proc("p");
    p.backoff = Backoff {
        initial: ms(10),
        max: ms(1000),
        factor: 1.5,
    };
    p.max_restarts = MaxRestarts {
        count: 1000,
        within: Duration::from_secs(1),
    };
    let mut h = Harness::new(vec![p]);
    let mut e = h.feed(Input::Up(None));
    let mut delays = Vec::new();
    for _ in 0..40 {
        let (runs, _) = h.spawn_all(&e);
        let ended = h.feed(Input::Exited {
            group_left: false,
            run: runs[0],
            status: ExitStatus::Code(1),
        });
        let d = restart_delays(&ended)[0];
        delays.push(d);
        e = h.advance(d);
    }
    assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
    assert_eq!(*delays.last().unwrap(), ms(1000));
    assert_eq!(delays[0], ms(10));
}
