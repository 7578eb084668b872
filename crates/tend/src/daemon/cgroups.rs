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

use tend_os::cgroup::{hand_back, hand_down, Cgroup, HandedDown, Hierarchies, SUPERVISOR_LEAF};

/// tend's cgroups, if it has any.
#[derive(Default)]
pub struct Cgroups {
    /// `tend-<id>` under tend's own cgroup2.
    base: Option<Cgroup>,
    /// Where each limit is set: under tend's cgroup2 when it has the controller, else under
    /// its v1 cgroup of that controller.
    limiters: Limiters,
    /// The cgroups of each live run (and leftover group), by process group id.
    runs: HashMap<i32, RunCgroups>,
    /// tend's own cgroup2 and what was done to it to hand controllers down.
    handed: Option<(Cgroup, HandedDown)>,
}

/// Where `memory_max`, `cpu_max` and `pids_max` are set, when they can be.
#[derive(Default)]
struct Limiters {
    memory: Option<Limiter>,
    cpu: Option<Limiter>,
    pids: Option<Limiter>,
}

/// A `tend-<id>` directory where one controller applies.
struct Limiter {
    dir: Cgroup,
    /// A cgroup v1 hierarchy (its own directory per instance, joined too); else cgroup2
    /// (the instance's directory under `base`, above the run's leaf).
    v1: bool,
}

/// The limits of one instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// `memory_max`, bytes.
    pub memory_max: Option<u64>,
    /// `cpu_max`, percent of one CPU.
    pub cpu_max: Option<u32>,
    /// `pids_max`.
    pub pids_max: Option<u64>,
}

/// A cgroup file and what to write to it.
type Setting = (&'static str, String);

/// One limit to set.
#[derive(Clone, Copy)]
enum Limit {
    Memory(u64),
    Cpu(u32),
    Pids(u64),
}

impl Limit {
    /// The files that say it, in a v1 or a cgroup2 hierarchy: those that must be written,
    /// and those written if the kernel has them.
    fn files(self, v1: bool) -> (Vec<Setting>, Vec<Setting>) {
        match (self, v1) {
            (Limit::Memory(bytes), false) => (vec![("memory.max", bytes.to_string())], vec![]),
            (Limit::Memory(bytes), true) => (
                vec![("memory.limit_in_bytes", bytes.to_string())],
                // Swap counts too where the kernel accounts it.
                vec![("memory.memsw.limit_in_bytes", bytes.to_string())],
            ),
            (Limit::Cpu(percent), false) => {
                let quota = u64::from(percent) * CPU_PERIOD_US / 100;
                (
                    vec![("cpu.max", format!("{quota} {CPU_PERIOD_US}"))],
                    vec![],
                )
            }
            (Limit::Cpu(percent), true) => {
                let quota = u64::from(percent) * CPU_PERIOD_US / 100;
                (
                    vec![
                        ("cpu.cfs_period_us", CPU_PERIOD_US.to_string()),
                        ("cpu.cfs_quota_us", quota.to_string()),
                    ],
                    vec![],
                )
            }
            (Limit::Pids(n), _) => (vec![("pids.max", n.to_string())], vec![]),
        }
    }
}

/// The cgroup period of `cpu_max`, in microseconds (the kernel's default).
const CPU_PERIOD_US: u64 = 100_000;

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
        // cgroup2's controllers, where tend's cgroup has them to hand down; else v1's.
        let own = Cgroup {
            dir: unified.clone(),
        };
        let (handed, handing_failed) =
            match hand_down(&own, &base, &["memory", "cpu", "pids"], std::process::id()) {
                Ok(handed) => (handed, None),
                Err(e) => (HandedDown::default(), Some(e)),
            };
        let limiter = |controller: &str, v1: &Option<std::path::PathBuf>| {
            if handed.controllers.iter().any(|c| c == controller) {
                Some(Limiter {
                    dir: base.clone(),
                    v1: false,
                })
            } else {
                v1.as_ref()
                    .and_then(|dir| Cgroup::create(&dir.join(&name)).ok())
                    .map(|dir| Limiter { dir, v1: true })
            }
        };
        let limiters = Limiters {
            memory: limiter("memory", &found.memory_v1),
            cpu: limiter("cpu", &found.cpu_v1),
            pids: limiter("pids", &found.pids_v1),
        };
        let said: Vec<String> = [
            ("memory_max", &limiters.memory),
            ("cpu_max", &limiters.cpu),
            ("pids_max", &limiters.pids),
        ]
        .iter()
        .map(|(key, limiter)| match limiter {
            Some(Limiter { v1: true, dir }) => {
                format!("{key} by cgroup v1 ({})", dir.dir.display())
            }
            Some(Limiter { v1: false, .. }) => format!("{key} by cgroup2"),
            None => format!("no {key} (no controller)"),
        })
        .collect();
        let memory = format!("; {}", said.join(", "));
        let mut notice = format!(
            "cgroups: a cgroup per instance under {}{memory}",
            base.dir.display()
        );
        if let Some(moved_to) = &handed.moved_to {
            notice.push_str(&format!(
                "; tend moved itself to {} so that its cgroup could hand controllers down",
                moved_to.display()
            ));
        }
        if let Some(e) = handing_failed {
            notice.push_str(&format!("; cgroup2 controllers not used: {e}"));
        }
        let cgroups = Cgroups {
            base: Some(base),
            limiters,
            runs: HashMap::new(),
            handed: Some((own, handed)),
        };
        (cgroups, notice)
    }

    /// Whether cgroups are in use.
    pub fn enabled(&self) -> bool {
        self.base.is_some()
    }

    /// Of `wanted`, the limits that cannot be enforced here, by config key.
    pub fn unenforceable(&self, wanted: &Limits) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if wanted.memory_max.is_some() && self.limiters.memory.is_none() {
            keys.push("memory_max");
        }
        if wanted.cpu_max.is_some() && self.limiters.cpu.is_none() {
            keys.push("cpu_max");
        }
        if wanted.pids_max.is_some() && self.limiters.pids.is_none() {
            keys.push("pids_max");
        }
        keys
    }

    /// Removes what tends of other configs that died (killed, so they could not clean up)
    /// left beside tend's own: `tend-*` trees in which no process lives and no directory
    /// changed for [`STALE_AFTER`] (a live tend that is only between runs changes its tree
    /// at each spawn, and makes again what it needs). Returns how many trees went.
    pub fn sweep_strangers(&self) -> usize {
        let Some(base) = &self.base else { return 0 };
        let mut removed = 0;
        for own in std::iter::once(base).chain(self.v1_dirs()) {
            let Some(parent) = own.dir.parent() else {
                continue;
            };
            let parent = Cgroup {
                dir: parent.to_path_buf(),
            };
            for sibling in children(&parent) {
                let named = sibling
                    .dir
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("tend-"));
                if !named || sibling.dir == own.dir || sibling.populated() || recent(&sibling) {
                    continue;
                }
                if remove_tree(&sibling) {
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Kills whatever a predecessor (a tend of the same config that died without stopping
    /// them) left in its cgroups, and removes the empty ones. Returns how many cgroups still
    /// held processes.
    pub fn sweep(&self) -> usize {
        let Some(base) = &self.base else { return 0 };
        let mut swept = 0;
        for instance in children(base) {
            if instance.dir.ends_with(SUPERVISOR_LEAF) {
                // tend itself lives there (see `hand_down`).
                continue;
            }
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
    /// limits (those that can be enforced), and opens what the child joins.
    pub fn prepare(&self, instance: &str, run: u64, limits: &Limits) -> std::io::Result<Joining> {
        let Some(base) = &self.base else {
            return Ok(Joining {
                procs: Vec::new(),
                run: None,
            });
        };
        let leaf = Cgroup::create(&base.dir.join(instance).join(format!("run-{run}")))?;
        let mut procs = vec![leaf.procs_for_joining()?];
        let mut memory = None;
        let requests = [
            (&self.limiters.memory, limits.memory_max.map(Limit::Memory)),
            (&self.limiters.cpu, limits.cpu_max.map(Limit::Cpu)),
            (&self.limiters.pids, limits.pids_max.map(Limit::Pids)),
        ];
        for (limiter, limit) in requests {
            let (Some(limiter), Some(limit)) = (limiter, limit) else {
                continue;
            };
            let dir = Cgroup::create(&limiter.dir.dir.join(instance))?;
            let (required, optional) = limit.files(limiter.v1);
            for (file, value) in required {
                dir.write(file, &value)?;
            }
            for (file, value) in optional {
                let _ = dir.write(file, &value);
            }
            if limiter.v1 {
                procs.push(dir.procs_for_joining()?);
            }
            if matches!(limit, Limit::Memory(_)) {
                let before = dir.oom_kills();
                memory = Some((dir, before));
            }
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

    /// How many processes of the run of `pgid` the OOM killer has killed (in its instance's
    /// memory cgroup) since its spawn.
    pub fn oom_kills(&self, pgid: i32) -> u32 {
        self.runs
            .get(&pgid)
            .and_then(|run| run.memory.as_ref())
            .map_or(0, |(memory, before)| {
                u32::try_from(memory.oom_kills().saturating_sub(*before)).unwrap_or(u32::MAX)
            })
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
        if let (Some(base), Some((own, handed))) = (&self.base, &self.handed) {
            let _ = hand_back(own, base, handed, std::process::id());
        }
        for base in self.base.iter().chain(self.v1_dirs()) {
            remove_tree(base);
        }
    }

    /// The `tend-<id>` directories of the v1 hierarchies in use.
    fn v1_dirs(&self) -> impl Iterator<Item = &Cgroup> {
        [
            &self.limiters.memory,
            &self.limiters.cpu,
            &self.limiters.pids,
        ]
        .into_iter()
        .flatten()
        .filter(|l| l.v1)
        .map(|l| &l.dir)
    }
}

/// How long a tree of another tend's cgroups must be unchanged before it counts as left
/// behind.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Whether a directory of `tree` changed within [`STALE_AFTER`].
fn recent(tree: &Cgroup) -> bool {
    let changed = std::fs::metadata(&tree.dir)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_none_or(|age| age < STALE_AFTER);
    changed || children(tree).iter().any(recent)
}

/// Removes what it can of a cgroup tree, leaves first (a cgroup with a process stays, and
/// so do those above it): whether it is all gone.
fn remove_tree(tree: &Cgroup) -> bool {
    for child in children(tree) {
        remove_tree(&child);
    }
    matches!(tree.remove(), Ok(true))
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
