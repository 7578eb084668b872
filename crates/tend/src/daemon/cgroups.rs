//! A cgroup per instance, where tend may make them: `tend-<id>/<instance>/run-<n>` under
//! tend's own cgroup2 (and `tend-<id>/<instance>` under its v1 memory cgroup for
//! `memory_max` on machines whose cgroup2 has no memory controller).
//!
//! The run's leaf is how far a run reaches: the child joins it before its exec, so a process
//! that left its process group and session (`setsid`, a daemon's double fork) is still in it.
//! The driver asks [`Cgroups::populated`] besides whether the process group lives, and at the
//! SIGKILL of a stop (the deadline) [`Cgroups::kill`] writes `cgroup.kill`. Where cgroups
//! cannot be had (no cgroup2, not root and nothing delegated), tend says so once and relies on
//! process groups, as before.

use std::collections::HashMap;
use std::os::fd::OwnedFd;

use tend_os::cgroup::{Cgroup, Hierarchies};

/// tend's cgroups, if it has any.
#[derive(Default)]
pub struct Cgroups {
    /// `tend-<id>` under tend's own cgroup2.
    base: Option<Cgroup>,
    /// `tend-<id>` where memory is limited: under tend's cgroup2 when it has the memory
    /// controller, else under its v1 memory cgroup.
    memory_base: Option<MemoryBase>,
    /// The cgroups of each live run (and leftover group), by process group id.
    runs: HashMap<i32, RunCgroups>,
}

/// Where `memory_max` is set.
struct MemoryBase {
    dir: Cgroup,
    /// cgroup v1: `memory.limit_in_bytes`; else cgroup2's `memory.max`.
    v1: bool,
}

/// The cgroups of one run.
struct RunCgroups {
    /// Its leaf under `base`.
    leaf: Cgroup,
    /// Its instance's memory cgroup, and the OOM kills counted there before the spawn.
    memory: Option<(Cgroup, u64)>,
}

/// What a spawn needs: the files the child writes `0` to, to join, and what to remember of
/// them once it runs.
pub struct Joining {
    /// `cgroup.procs` of each cgroup to join, open for writing.
    pub procs: Vec<OwnedFd>,
    run: Option<RunCgroups>,
}

impl Cgroups {
    /// Finds tend's cgroups and makes `tend-<id>` under them. Returns what to tell the user
    /// once: which are in use, or why none is.
    pub fn setup(id: &str) -> (Cgroups, String) {
        let found = Hierarchies::find();
        let name = format!("tend-{id}");
        let Some(unified) = &found.unified else {
            return (
                Cgroups::default(),
                "cgroups: no cgroup2 hierarchy here; stopping reaches each process group only"
                    .to_owned(),
            );
        };
        let base = match Cgroup::create(&unified.join(&name)) {
            Ok(base) => base,
            Err(e) => {
                return (
                    Cgroups::default(),
                    format!(
                        "cgroups: not available ({e}); stopping reaches each process group only"
                    ),
                )
            }
        };
        let memory_base = if found.unified_controllers.iter().any(|c| c == "memory") {
            enable_memory(&base).map(|()| MemoryBase {
                dir: base.clone(),
                v1: false,
            })
        } else {
            found
                .memory_v1
                .as_ref()
                .and_then(|dir| Cgroup::create(&dir.join(&name)).ok())
                .map(|dir| MemoryBase { dir, v1: true })
        };
        let memory = match &memory_base {
            Some(MemoryBase { dir, v1: true }) => {
                format!(
                    "; memory_max by cgroup v1's memory controller at {}",
                    dir.dir.display()
                )
            }
            Some(MemoryBase { v1: false, .. }) => "; memory_max by cgroup2".to_owned(),
            None => "; no memory controller, so memory_max cannot be enforced".to_owned(),
        };
        let notice = format!(
            "cgroups: a cgroup per instance under {}{memory}",
            base.dir.display()
        );
        let cgroups = Cgroups {
            base: Some(base),
            memory_base,
            runs: HashMap::new(),
        };
        (cgroups, notice)
    }

    /// Whether cgroups are in use.
    pub fn enabled(&self) -> bool {
        self.base.is_some()
    }

    /// Whether `memory_max` can be enforced.
    pub fn can_limit_memory(&self) -> bool {
        self.memory_base.is_some()
    }

    /// Kills whatever a predecessor (a tend of the same config that died without stopping
    /// them) left in its cgroups, and removes the empty ones. Returns how many cgroups still
    /// held processes.
    pub fn sweep(&self) -> usize {
        let Some(base) = &self.base else { return 0 };
        let mut swept = 0;
        for instance in children(base) {
            for leaf in children(&instance) {
                if leaf.populated() {
                    swept += 1;
                    let _ = leaf.kill();
                }
                let _ = leaf.remove();
            }
            let _ = instance.remove();
        }
        swept
    }

    /// Makes the cgroups of run `run` of the instance `instance` (`web.0`), with its
    /// `memory_max`, and opens what the child joins.
    pub fn prepare(
        &self,
        instance: &str,
        run: u64,
        memory_max: Option<u64>,
    ) -> std::io::Result<Joining> {
        let Some(base) = &self.base else {
            return Ok(Joining {
                procs: Vec::new(),
                run: None,
            });
        };
        let leaf = Cgroup::create(&base.dir.join(instance).join(format!("run-{run}")))?;
        let mut procs = vec![leaf.procs_for_joining()?];
        let mut memory = None;
        if let (Some(limit), Some(memory_base)) = (memory_max, &self.memory_base) {
            let limited = if memory_base.v1 {
                let dir = Cgroup::create(&memory_base.dir.dir.join(instance))?;
                dir.write("memory.limit_in_bytes", &limit.to_string())?;
                // Swap counts too where the kernel accounts it, so that the limit is one.
                let _ = dir.write("memory.memsw.limit_in_bytes", &limit.to_string());
                procs.push(dir.procs_for_joining()?);
                dir
            } else {
                let dir = Cgroup::create(&base.dir.join(instance))?;
                dir.write("memory.max", &limit.to_string())?;
                dir
            };
            let before = limited.oom_kills();
            memory = Some((limited, before));
        }
        Ok(Joining {
            procs,
            run: Some(RunCgroups { leaf, memory }),
        })
    }

    /// The run whose cgroups `joining` made is spawned as process group `pgid` (or failed to
    /// be: `None`, and its leaf is removed).
    pub fn spawned(&mut self, pgid: Option<i32>, joining: Joining) {
        let Some(run) = joining.run else { return };
        match pgid {
            Some(pgid) => {
                self.runs.insert(pgid, run);
            }
            None => {
                let _ = run.leaf.remove();
            }
        }
    }

    /// Whether a process of the run of process group `pgid` is left anywhere in its cgroup.
    pub fn populated(&self, pgid: i32) -> bool {
        self.runs.get(&pgid).is_some_and(|run| run.leaf.populated())
    }

    /// Sends `signal` to the processes of the run of process group `pgid` that left the
    /// group (the group gets it from the caller), as systemd's `KillMode=control-group` does.
    pub fn signal_escaped(&self, pgid: i32, signal: tend_core::Signal) {
        let Some(run) = self.runs.get(&pgid) else {
            return;
        };
        for pid in run.leaf.pids() {
            let escaped = tend_os::procfs::stat(pid).is_some_and(|stat| stat.pgid != pgid);
            if escaped {
                let _ = tend_os::signal_process(pid, signal);
            }
        }
    }

    /// What the run of process group `pgid` uses, counted over its cgroup (so with the
    /// processes that left the group), if it has one.
    pub fn usage(&self, pgid: i32) -> Option<tend_os::procfs::GroupUsage> {
        let run = self.runs.get(&pgid)?;
        Some(tend_os::procfs::pids_usage(&run.leaf.pids()))
    }

    /// Kills every process of the run of process group `pgid` at once, wherever it went.
    pub fn kill(&self, pgid: i32) {
        if let Some(run) = self.runs.get(&pgid) {
            let _ = run.leaf.kill();
        }
    }

    /// Whether the OOM killer has killed a process of the run of `pgid` (in its instance's
    /// memory cgroup) since its spawn.
    pub fn oom_killed(&self, pgid: i32) -> bool {
        self.runs
            .get(&pgid)
            .and_then(|run| run.memory.as_ref())
            .is_some_and(|(memory, before)| memory.oom_kills() > *before)
    }

    /// The run of `pgid` is over and nothing of it is left: its leaf goes.
    pub fn forget(&mut self, pgid: i32) {
        if let Some(run) = self.runs.remove(&pgid) {
            let _ = run.leaf.remove();
        }
    }

    /// tend exits: every cgroup it made goes (they are empty by now).
    pub fn remove_all(&mut self) {
        for (_, run) in self.runs.drain() {
            let _ = run.leaf.remove();
        }
        for base in [
            self.base.as_ref(),
            self.memory_base.as_ref().map(|m| &m.dir),
        ]
        .into_iter()
        .flatten()
        {
            for instance in children(base) {
                for leaf in children(&instance) {
                    let _ = leaf.remove();
                }
                let _ = instance.remove();
            }
            let _ = base.remove();
        }
    }
}

/// Turns the memory controller on for the children of `base` (cgroup2).
fn enable_memory(base: &Cgroup) -> Option<()> {
    base.write("cgroup.subtree_control", "+memory").ok()
}

/// The child cgroups of `cgroup`.
fn children(cgroup: &Cgroup) -> Vec<Cgroup> {
    let Ok(entries) = std::fs::read_dir(&cgroup.dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| Cgroup { dir: e.path() })
        .collect()
}
