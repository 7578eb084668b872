//! Applying a new config while running: processes added, removed, changed, or only scaled,
//! with every instance keeping its identity (its slot and replica) across reloads.

use std::collections::{btree_map, HashMap};
use std::sync::Arc;
use std::time::Instant;

use super::instance::Instance;
use super::{Effect, InstanceId, Phase, ReloadSummary, State, Supervisor, Target};
use crate::spec::{ProcessSpec, Spec};

impl Supervisor {
    /// Applies a new config; see [`Input::ReloadRequested`].
    pub(super) fn reload(
        &mut self,
        spec: Spec,
        now: Instant,
        out: &mut Vec<Effect>,
    ) -> ReloadSummary {
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
        // Every new process gets its slot first, so that conditions on it (of processes
        // started or restarted below, in config order) find it.
        let added: HashMap<String, usize> = spec
            .processes
            .iter()
            .filter(|new| !old.contains_key(&new.name))
            .map(|new| (new.name.clone(), self.add_slot(Arc::clone(new))))
            .collect();
        let mut kept = Vec::new();
        for new in spec.processes {
            let name = new.name.clone();
            match old.get(&name) {
                None => {
                    let process = added[&name];
                    kept.push(process);
                    if self.phase == Phase::Running
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
        let old_replicas = slot.spec.replicas;
        let active = slot
            .instances
            .iter()
            .any(|(&r, i)| r < old_replicas && i.want_up)
            || (new.autostart && !slot.spec.autostart);
        let existing: Vec<u32> = slot.instances.keys().copied().collect();
        // Replicas an earlier reload retired, still stopping.
        let was_retired: Vec<u32> = existing
            .iter()
            .copied()
            .filter(|&r| r >= old_replicas)
            .collect();
        // Replicas this reload retires: stopped with the spec they were started with.
        let retiring: Vec<InstanceId> = existing
            .iter()
            .filter(|&&r| r >= new.replicas)
            .map(|&replica| InstanceId { process, replica })
            .collect();
        for &id in &retiring {
            self.stop(id, now, out);
        }
        // Instances without a live run restart at once, so only after the spec changed.
        let mut idle = Vec::new();
        if !only_replicas {
            for &replica in existing.iter().filter(|&&r| r < new.replicas) {
                let id = InstanceId { process, replica };
                let inst = self.inst(id);
                if was_retired.contains(&replica)
                    || !(inst.want_up || inst.state() == State::Failed)
                {
                    continue;
                }
                if inst.run().is_some() {
                    self.restart(id, now, out);
                } else {
                    idle.push(id);
                }
            }
        }
        self.has_deps |= !new.depends_on.is_empty();
        self.slots[process].as_mut().expect("a live slot").spec = Arc::clone(&new);
        for id in retiring {
            self.forget_if_retired(id);
        }
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
                btree_map::Entry::Occupied(_) if was_retired.contains(&replica) => {}
                btree_map::Entry::Occupied(_) => continue,
            }
            if active {
                self.start(id, now, out);
            }
        }
    }

    /// Stops every instance of a process gone from the config, forgetting each once stopped.
    fn remove(&mut self, process: usize, now: Instant, out: &mut Vec<Effect>) {
        let slot = self.slots[process].as_mut().expect("a live slot");
        slot.removed = true;
        if self.by_name.get(&slot.spec.name) == Some(&process) {
            self.by_name.remove(&slot.spec.name);
        }
        for id in self.targets(&Target::Process(process)) {
            self.stop(id, now, out);
            self.forget_if_retired(id);
        }
    }
}
