//! The order between processes (`depends_on`).
//!
//! An instance that is to start waits (state `waiting`) until every condition on its
//! dependencies holds, and is spawned by the first fact after which they do; a start request
//! starts what the named instances depend on, transitively, unless it says `--no-deps`.
//! Stopping goes the other way: a run whose dependents are on their way down too stays up
//! until they are gone. A waiting instance whose dependency will not get there by itself
//! (failed, exited, stopped) says so. `restart_with` restarts dependents with a dependency.
//!
//! All of it is looked at once per fact, after the fact is applied (`settle`), and only when
//! some process has dependencies: a supervisor without them pays nothing.

use std::collections::HashSet;
use std::time::Instant;

use super::instance::{Instance, Status};
use super::{policy, Effect, InstanceId, Notice, Phase, State, Supervisor, Target};
use crate::spec::{Condition, Dependency, ProcessSpec};

/// A condition an instance waits for that does not hold yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    /// The process depended on.
    pub dependency: String,
    /// What must hold of it.
    pub condition: Condition,
    /// The state of its first instance that does not meet the condition.
    pub state: State,
    /// That instance will not get there by itself: it failed, exited, or was stopped.
    pub gave_up: bool,
    /// The dependency has no instance (`tend scale NAME=0`): nothing of it will run until it
    /// is scaled up again; starting it does nothing. `state` is then `Stopped`, and `gave_up`
    /// is set.
    pub no_instances: bool,
}

/// Whether one instance of a dependency meets `condition`. A run on its way down (not wanted
/// up, kept running only until its dependents are gone) meets none.
fn meets(spec: &ProcessSpec, inst: &Instance, condition: Condition) -> bool {
    match condition {
        Condition::Started => {
            inst.want_up && inst.active_run().is_some_and(|run| run.pid.is_some())
        }
        Condition::Ready => {
            inst.want_up
                && match inst.status {
                    Status::Ready { .. } => true,
                    Status::Running { .. } => spec.ready.is_none(),
                    _ => false,
                }
        }
        Condition::Completed => inst.state() == State::Exited && ended_well(spec, inst),
    }
}

/// Whether the last run of `inst` exited with a success code.
fn ended_well(spec: &ProcessSpec, inst: &Instance) -> bool {
    matches!(&inst.last_exit, Some(Ok(status)) if policy::is_success(spec, *status))
}

/// Whether an instance that does not meet `condition` will not get there by itself.
fn gave_up(spec: &ProcessSpec, inst: &Instance, condition: Condition) -> bool {
    match inst.status {
        // It will be tried again by itself after `retry_after`.
        Status::Failed { retry_at } => retry_at.is_none(),
        Status::Exited => condition != Condition::Completed || !ended_well(spec, inst),
        Status::Stopped => !inst.want_up,
        _ => false,
    }
}

impl Supervisor {
    /// The conditions of `process` on other processes, by slot (a name not supervised, which
    /// the config layer does not let through, is left out).
    fn deps_of(&self, process: usize) -> impl Iterator<Item = (usize, Condition)> + '_ {
        self.slot(process)
            .into_iter()
            .flat_map(|slot| &slot.spec.depends_on)
            .filter_map(|d| self.by_name.get(&d.name).map(|&p| (p, d.condition)))
    }

    /// The first instance of process `dep` that does not meet `condition`, if any.
    fn first_unmet(&self, dep: usize, condition: Condition) -> Option<&Instance> {
        let slot = self.slot(dep)?;
        slot.instances
            .iter()
            .filter(|&(&replica, _)| replica < slot.spec.replicas)
            .map(|(_, inst)| inst)
            .find(|inst| !meets(&slot.spec, inst, condition))
    }

    /// The state of the first instance of process `dep` that does not meet `condition`, and
    /// whether it gave up (see [`Unmet`]); `None` when every instance meets it. A process
    /// scaled to no instance (`tend scale NAME=0`) meets no condition: it counts as stopped,
    /// and as given up.
    fn unmet(&self, dep: usize, condition: Condition) -> Option<(State, bool)> {
        let slot = self.slot(dep)?;
        if slot.spec.replicas == 0 {
            return Some((State::Stopped, true));
        }
        let inst = self.first_unmet(dep, condition)?;
        Some((inst.state(), gave_up(&slot.spec, inst, condition)))
    }

    /// Whether process `dep` has no instance (scaled to 0).
    fn has_no_instances(&self, dep: usize) -> bool {
        self.slot(dep).is_some_and(|slot| slot.spec.replicas == 0)
    }

    /// Whether every condition of `process` holds.
    fn deps_hold(&self, process: usize) -> bool {
        self.deps_of(process)
            .all(|(dep, condition)| self.unmet(dep, condition).is_none())
    }

    /// The conditions of the process of `id` that do not hold, in config order.
    pub fn waiting_for(&self, id: InstanceId) -> Vec<Unmet> {
        self.deps_of(id.process)
            .filter_map(|(dep, condition)| {
                let (state, gave_up) = self.unmet(dep, condition)?;
                Some(Unmet {
                    dependency: self.slot(dep)?.spec.name.clone(),
                    condition,
                    state,
                    gave_up,
                    no_instances: self.has_no_instances(dep),
                })
            })
            .collect()
    }

    /// The first dependency of `process` that gave up, with its slot.
    fn dependency_gave_up(&self, process: usize) -> Option<(usize, Condition, State)> {
        self.deps_of(process).find_map(|(dep, condition)| {
            let (state, gave_up) = self.unmet(dep, condition)?;
            gave_up.then_some((dep, condition, state))
        })
    }

    /// Spawns `id` if its conditions hold, else has it wait for them.
    pub(super) fn spawn_or_wait(&mut self, id: InstanceId, now: Instant, out: &mut Vec<Effect>) {
        if self.deps_hold(id.process) {
            self.spawn(id, now, out);
            return;
        }
        if matches!(self.inst(id).status, Status::Waiting { .. }) {
            return;
        }
        self.set_status(id, Status::Waiting { told: None });
        let on = self
            .waiting_for(id)
            .into_iter()
            .map(|unmet| Dependency {
                name: unmet.dependency,
                condition: unmet.condition,
            })
            .collect();
        out.push(Effect::Notify(Notice::Waiting { instance: id, on }));
    }

    /// Starts `ids` and, first, every instance of what they depend on, transitively. A
    /// dependency whose `completed` condition holds already is not run again.
    pub(super) fn start_with_deps(
        &mut self,
        ids: Vec<InstanceId>,
        now: Instant,
        out: &mut Vec<Effect>,
    ) {
        if self.has_deps {
            let mut seen: HashSet<usize> = ids.iter().map(|id| id.process).collect();
            let mut stack: Vec<usize> = seen.iter().copied().collect();
            let mut needed = HashSet::new();
            while let Some(process) = stack.pop() {
                let deps: Vec<(usize, Condition)> = self.deps_of(process).collect();
                for (dep, condition) in deps {
                    let done =
                        condition == Condition::Completed && self.unmet(dep, condition).is_none();
                    if !done && seen.insert(dep) {
                        needed.insert(dep);
                        stack.push(dep);
                    }
                }
            }
            let deps: Vec<InstanceId> = self
                .order
                .iter()
                .filter(|p| needed.contains(p))
                .flat_map(|&p| self.targets(&Target::Process(p)))
                .collect();
            for id in deps {
                self.start(id, now, out);
            }
        }
        for id in ids {
            self.start(id, now, out);
        }
    }

    /// The processes whose runs must stay up for now, by slot: a process that another one
    /// depends on, directly or through others (a web server that needs a migration that
    /// needed the database), whose instance is on its way down (not wanted up) and has not
    /// ended yet. Linear in processes and dependencies.
    fn held_up(&self) -> Vec<bool> {
        let n = self.slots.len();
        // dependents[p]: the processes that depend on p directly.
        let mut dependents = vec![Vec::new(); n];
        for &p in &self.order {
            for (dep, _) in self.deps_of(p) {
                dependents[dep].push(p);
            }
        }
        let going_down = |p: usize| {
            self.slot(p).is_some_and(|slot| {
                slot.instances
                    .values()
                    .any(|inst| !inst.want_up && inst.run().is_some())
            })
        };
        // held[p] = some dependent d is going down, or is held itself. Depth-first with
        // an explicit stack; `Some` once known. The config has no cycles, and a cycle here
        // would only end a search early, never loop.
        let mut held: Vec<Option<bool>> = vec![None; n];
        let mut on_stack = vec![false; n];
        for &root in &self.order {
            let mut stack = vec![(root, 0)];
            on_stack[root] = true;
            while let Some(&mut (p, ref mut next)) = stack.last_mut() {
                if let Some(&d) = dependents[p].get(*next) {
                    *next += 1;
                    if held[d].is_none() && !on_stack[d] {
                        on_stack[d] = true;
                        stack.push((d, 0));
                    }
                    continue;
                }
                if held[p].is_none() {
                    let value = dependents[p]
                        .iter()
                        .any(|&d| going_down(d) || held[d] == Some(true));
                    held[p] = Some(value);
                }
                on_stack[p] = false;
                stack.pop();
            }
        }
        held.into_iter().map(|h| h == Some(true)).collect()
    }

    /// Restarts the live instances of every process that asked to restart with `process`.
    pub(super) fn restart_dependents(
        &mut self,
        process: usize,
        now: Instant,
        out: &mut Vec<Effect>,
    ) {
        if !self.has_deps || self.phase != Phase::Running {
            return;
        }
        let Some(name) = self.slot(process).map(|slot| slot.spec.name.clone()) else {
            return;
        };
        let dependents: Vec<usize> = self
            .order
            .iter()
            .copied()
            .filter(|&p| {
                self.slot(p)
                    .is_some_and(|slot| !slot.removed && slot.spec.restart_with.contains(&name))
            })
            .collect();
        for p in dependents {
            for id in self.targets(&Target::Process(p)) {
                let inst = self.inst(id);
                let live = inst.run().is_some() || matches!(inst.status, Status::Backoff { .. });
                if inst.want_up && live {
                    self.restart(id, now, out);
                }
            }
        }
    }

    /// After each fact: spawns the waiting instances whose conditions now hold (and tells of
    /// dependencies that gave up), and stops the runs no dependent holds up any more.
    pub(super) fn settle(&mut self, now: Instant, out: &mut Vec<Effect>) {
        if !self.has_deps || self.phase == Phase::Done {
            return;
        }
        // Who holds whom does not change in this pass: spawning changes no wish, and a run
        // that gets its stop signal stays on its way down until it ends. Worked out only when
        // some run waits to be stopped.
        let mut held: Option<Vec<bool>> = None;
        for id in self.targets(&Target::All) {
            let inst = self.inst(id);
            let to_stop = !inst.want_up && inst.active_run().is_some_and(|run| run.pid.is_some());
            match inst.status {
                Status::Waiting { told } if self.phase == Phase::Running => {
                    if self.deps_hold(id.process) {
                        self.spawn(id, now, out);
                        continue;
                    }
                    let gave_up = self.dependency_gave_up(id.process);
                    if gave_up.map(|g| g.0) == told {
                        continue;
                    }
                    self.set_status(
                        id,
                        Status::Waiting {
                            told: gave_up.map(|g| g.0),
                        },
                    );
                    if let Some((dep, condition, state)) = gave_up {
                        out.push(Effect::Notify(Notice::DependencyGaveUp {
                            instance: id,
                            dependency: self.slot(dep).expect("resolved").spec.name.clone(),
                            condition,
                            state,
                            no_instances: self.has_no_instances(dep),
                        }));
                    }
                }
                _ if to_stop => {
                    let held = held.get_or_insert_with(|| self.held_up());
                    if !held[id.process] {
                        self.begin_stop(id, now, out);
                    }
                }
                _ => {}
            }
        }
    }
}
