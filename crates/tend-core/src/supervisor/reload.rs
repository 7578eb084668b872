//! Applying a new config while running: processes added, removed, changed, or only scaled,
//! with every instance keeping its identity (its slot and replica) across reloads. Also the
//! plan of a reload without applying it (`tend reload --dry-run`; a reload applies exactly
//! its plan), `tend scale` (a change of `replicas` alone, until the next reload) and a
//! process's environment read again (`tend restart`).

use std::collections::{btree_map, BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use super::instance::Instance;
use super::{Effect, InstanceId, Phase, ReloadSummary, Slot, State, Supervisor, Target};
use crate::spec::{ProcessSpec, Spec};

impl Supervisor {
    /// Applies a new config; see [`Input::ReloadRequested`].
    pub(super) fn reload(
        &mut self,
        spec: Spec,
        now: Instant,
        out: &mut Vec<Effect>,
    ) -> ReloadSummary {
        let summary = self.plan_reload(&spec);
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
            .map(|new| (new.name.clone(), self.revive_or_add_slot(Arc::clone(new))))
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
                }
                Some(&process) => {
                    kept.push(process);
                    if summary.keys.contains_key(&name) {
                        self.change(process, new, now, out);
                    }
                }
            }
        }
        for &process in old.values() {
            if !kept.contains(&process) {
                self.remove(process, now, out);
            }
        }
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

    /// The slot of a process a reload adds: a new one, or, when an earlier reload removed a
    /// process of that name that is still stopping, that one back with the new spec (its
    /// instances kept, so the old and the new run of `b.0` are never live together: each
    /// instance starts once its old run ended).
    fn revive_or_add_slot(&mut self, spec: Arc<ProcessSpec>) -> usize {
        let stopping = self.order.iter().copied().find(|&p| {
            self.slot(p)
                .is_some_and(|slot| slot.removed && slot.spec.name == spec.name)
        });
        let Some(process) = stopping else {
            return self.add_slot(spec);
        };
        self.has_deps |= !spec.depends_on.is_empty();
        self.by_name.insert(spec.name.clone(), process);
        let slot = self.slots[process].as_mut().expect("a live slot");
        slot.removed = false;
        for replica in 0..spec.replicas {
            slot.instances
                .entry(replica)
                .or_insert_with(|| Instance::new(&spec));
        }
        slot.spec = spec;
        process
    }

    /// What [`Input::ReloadRequested`](super::Input::ReloadRequested) with `spec` would do
    /// now, without doing it: the processes it would add, remove, change (and which keys) and
    /// leave alone. A reload applies exactly this plan.
    pub fn plan_reload(&self, spec: &Spec) -> ReloadSummary {
        let mut summary = ReloadSummary::default();
        for new in &spec.processes {
            let current = self.by_name.get(&new.name).and_then(|&p| self.slot(p));
            match current {
                None => summary.added.push(new.name.clone()),
                Some(slot) => {
                    let mut keys = changed_keys(&slot.spec, new);
                    if let Some(run) = stale_env_run(slot, new) {
                        if !keys.iter().any(|k| k.starts_with("env")) {
                            let as_run = ProcessSpec {
                                env: run.spec.env.clone(),
                                ..(*slot.spec).clone()
                            };
                            keys = changed_keys(&as_run, new);
                        }
                    }
                    if keys.is_empty() {
                        summary.unchanged.push(new.name.clone());
                    } else {
                        summary.changed.push(new.name.clone());
                        summary.keys.insert(new.name.clone(), keys);
                        if waits_for_next_start(slot, new) {
                            summary.not_running.push(new.name.clone());
                        }
                    }
                }
            }
        }
        let names: HashSet<&str> = spec.processes.iter().map(|p| p.name.as_str()).collect();
        summary.removed = self
            .by_name
            .keys()
            .filter(|name| !names.contains(name.as_str()))
            .cloned()
            .collect();
        summary.removed.sort();
        summary
    }

    /// `tend scale`: the process in slot `process` gets `replicas` instances, as a reload
    /// that changed only `replicas` would give it (see [`Supervisor::change`]). A process
    /// scaled up from 0 starts its new instances if it is `autostart`.
    pub(super) fn scale(
        &mut self,
        process: usize,
        replicas: u32,
        now: Instant,
        out: &mut Vec<Effect>,
    ) {
        let Some(slot) = self.slot(process) else {
            return;
        };
        if self.phase != Phase::Running || slot.removed || slot.spec.replicas == replicas {
            return;
        }
        let new = Arc::new(ProcessSpec {
            replicas,
            ..(*slot.spec).clone()
        });
        self.change(process, new, now, out);
    }

    /// The environment of a process was read again: its next spawns get it.
    pub(super) fn env_read(
        &mut self,
        process: usize,
        env: Vec<(String, String)>,
        read_from: &ProcessSpec,
    ) {
        let Some(slot) = self.slots.get_mut(process).and_then(Option::as_mut) else {
            return;
        };
        let stale =
            slot.spec.env_file != read_from.env_file || slot.spec.env_table != read_from.env_table;
        if slot.removed || stale || slot.spec.env == env {
            return;
        }
        slot.spec = Arc::new(ProcessSpec {
            env,
            ..(*slot.spec).clone()
        });
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
        let only_replicas = only_replicas_change(slot, &new);
        let old_replicas = slot.spec.replicas;
        let active = starts_added(slot, &new);
        let existing: Vec<u32> = slot.instances.keys().copied().collect();
        // Replicas an earlier reload retired, still stopping.
        let was_retired: Vec<u32> = existing
            .iter()
            .copied()
            .filter(|&r| r >= old_replicas)
            .collect();
        // Replicas this reload retires: stopped with the spec they were started with, highest
        // index first.
        let retiring: Vec<InstanceId> = existing
            .iter()
            .rev()
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
                if !restarts(replica, inst, old_replicas, new.replicas) {
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

/// Whether a change of the process of `slot` to `new` starts the instances it adds (and those
/// an earlier reload retired that it wants again): an instance of the process is wanted up,
/// or ended by itself (failed, or exited and not restarted by its policy: the process is in
/// use, and only a stop by the user keeps new instances down), or the change turns
/// `autostart` on, or the process had no instance and is `autostart`.
fn starts_added(slot: &Slot, new: &ProcessSpec) -> bool {
    let old_replicas = slot.spec.replicas;
    slot.instances.iter().any(|(&r, i)| {
        let ended_by_itself =
            matches!(i.state(), State::Failed | State::Exited) && !i.stopped_by_user;
        r < old_replicas && (i.want_up || ended_by_itself)
    }) || (new.autostart && (!slot.spec.autostart || old_replicas == 0))
}

/// Whether a change of settings (not of `replicas` alone) from `old_replicas` to
/// `new_replicas` instances restarts instance `replica`: one it keeps (not one an earlier
/// reload retired) that is wanted up, or failed (the new settings may be the fix). One the
/// user stopped stays stopped.
fn restarts(replica: u32, inst: &Instance, old_replicas: u32, new_replicas: u32) -> bool {
    replica < old_replicas
        && replica < new_replicas
        && (inst.want_up || inst.state() == State::Failed)
}

/// A live run of the process of `slot` started with another env than `new`'s: a restart of
/// other instances read the env file again since, and this one keeps what it got.
fn stale_env_run<'a>(slot: &'a Slot, new: &ProcessSpec) -> Option<&'a super::instance::Run> {
    slot.instances
        .values()
        .filter_map(Instance::run)
        .find(|run| run.spec.env != new.env)
}

/// Whether the change of the process of `slot` to `new` is of `replicas` alone: instances
/// are added or retired and the others keep running. A live run on another env than `new`'s
/// makes it a change of settings (it restarts).
fn only_replicas_change(slot: &Slot, new: &ProcessSpec) -> bool {
    stale_env_run(slot, new).is_none()
        && ProcessSpec {
            replicas: new.replicas,
            ..(*slot.spec).clone()
        } == *new
}

/// Whether a change of the process of `slot` to `new` (other than of `replicas` alone)
/// leaves it as it is now: it restarts no instance and starts none it adds, so the new
/// settings take effect at the process's next start. As [`Supervisor::change`] decides.
fn waits_for_next_start(slot: &Slot, new: &ProcessSpec) -> bool {
    if only_replicas_change(slot, new) {
        return false;
    }
    let old_replicas = slot.spec.replicas;
    let restarted = slot
        .instances
        .iter()
        .any(|(&r, inst)| restarts(r, inst, old_replicas, new.replicas));
    // Added: a replica without an instance, or one an earlier reload retired.
    let added = (0..new.replicas).any(|r| r >= old_replicas || !slot.instances.contains_key(&r));
    let started = added && starts_added(slot, new);
    !(restarted || started)
}

/// What differs between two specs of a process, by config key, in the order of the config
/// reference: `command`, `cwd`, `env (PORT, TOKEN)` (the names of the variables set,
/// changed or unset, never their values: they may be secrets), `replicas 2 → 4`, … Empty
/// when they are equal. A difference in a field that has no entry here is `other settings`.
pub fn changed_keys(old: &ProcessSpec, new: &ProcessSpec) -> Vec<String> {
    let mut keys = Vec::new();
    macro_rules! key {
        ($field:ident, $name:expr) => {
            if old.$field != new.$field {
                keys.push($name.to_owned());
            }
        };
    }
    key!(argv, "command");
    key!(cwd, "cwd");
    let (before, after) = (vars(&old.env), vars(&new.env));
    let mut names: Vec<&str> = before
        .iter()
        .filter(|(name, value)| after.get(*name) != Some(*value))
        .map(|(name, _)| *name)
        .chain(
            after
                .keys()
                .filter(|name| !before.contains_key(*name))
                .copied(),
        )
        .collect();
    names.sort_unstable();
    if !names.is_empty() {
        keys.push(format!("env ({})", names.join(", ")));
    } else if old.env != new.env || old.env_table != new.env_table {
        // The same variables in another order, or now set by `env` rather than the env file.
        keys.push("env".to_owned());
    }
    key!(env_file, "env_file");
    if old.replicas != new.replicas {
        keys.push(format!("replicas {} → {}", old.replicas, new.replicas));
    }
    key!(port, "port");
    key!(autostart, "autostart");
    key!(interactive, "interactive");
    key!(restart, "restart");
    key!(success_codes, "success_codes");
    key!(start_secs, "start_secs");
    key!(backoff, "backoff");
    key!(max_restarts, "max_restarts");
    key!(retry_after, "retry_after");
    key!(stop_signal, "stop_signal");
    key!(stop_timeout, "stop_timeout");
    key!(log, "log");
    key!(on_exit, "on_exit");
    key!(depends_on, "depends_on");
    key!(restart_with, "restart_with");
    key!(ready, "ready");
    key!(health, "health");
    if old.identity != new.identity {
        // Which of the three changed is in the config; the resolved ids say only that one did.
        keys.push("user, group or groups".to_owned());
    }
    key!(umask, "umask");
    key!(rlimits, "rlimits");
    key!(nice, "nice");
    key!(oom_score_adj, "oom_score_adj");
    key!(memory_limit, "memory_limit");
    key!(memory_max, "memory_max");
    key!(cpu_max, "cpu_max");
    key!(pids_max, "pids_max");
    if keys.is_empty() && old != new {
        keys.push("other settings".to_owned());
    }
    keys
}

/// Variables by name (the last value of a name wins, as at spawn).
fn vars(env: &[(String, String)]) -> BTreeMap<&str, &str> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}
