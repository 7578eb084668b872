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

use tend_core::RunId;

use tend_os::cgroup::{hand_back, hand_down, Cgroup, HandedDown, Hierarchies, SUPERVISOR_LEAF};

/// tend's cgroups, if it has any.
#[derive(Default)]
pub struct Cgroups {
    /// `tend-<id>` under tend's own cgroup2.
    base: Option<Cgroup>,
    /// Where each limit is set: under tend's cgroup2 when it has the controller, else under
    /// its v1 cgroup of that controller.
    limiters: Limiters,
    /// The cgroups of each live run (and leftover), by run: not by process group, whose id
    /// is free for reuse once its members are gone even while processes that left the group
    /// live on in the leaf.
    runs: HashMap<RunId, RunCgroups>,
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
    /// The files that say it, in a v1 or a cgroup2 hierarchy, in the order to write them,
    /// each with whether it must be written (else only if the kernel has it).
    fn files(self, v1: bool) -> Vec<(Setting, bool)> {
        match (self, v1) {
            (Limit::Memory(bytes), false) => vec![(("memory.max", bytes.to_string()), true)],
            // Swap counts too where the kernel accounts it (memsw). v1 refuses a memory limit
            // above the memsw one, so memsw is lifted first: a limit can be raised.
            (Limit::Memory(bytes), true) => vec![
                (("memory.memsw.limit_in_bytes", "-1".to_owned()), false),
                (("memory.limit_in_bytes", bytes.to_string()), true),
                (("memory.memsw.limit_in_bytes", bytes.to_string()), false),
            ],
            (Limit::Cpu(percent), false) => {
                let quota = u64::from(percent) * CPU_PERIOD_US / 100;
                vec![(("cpu.max", format!("{quota} {CPU_PERIOD_US}")), true)]
            }
            (Limit::Cpu(percent), true) => {
                let quota = u64::from(percent) * CPU_PERIOD_US / 100;
                vec![
                    (("cpu.cfs_period_us", CPU_PERIOD_US.to_string()), true),
                    (("cpu.cfs_quota_us", quota.to_string()), true),
                ]
            }
            (Limit::Pids(n), _) => vec![(("pids.max", n.to_string()), true)],
        }
    }
}

/// How long a daemon waits for its parent to leave tend's cgroup (see [`Cgroups::setup`]).
pub const PARENT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

/// The cgroup period of `cpu_max`, in microseconds (the kernel's default).
const CPU_PERIOD_US: u64 = 100_000;

/// The cgroups of one run.
struct RunCgroups {
    /// Its leaf under `base`.
    leaf: Cgroup,
    /// Its instance's memory cgroup, and the OOM kills counted there before the spawn.
    memory: Option<MemoryCgroup>,
}

/// An instance's memory cgroup, and the OOM kills counted there before a run's spawn.
type MemoryCgroup = (Cgroup, u64);

/// What a spawn needs: the files the child writes `0` to, to join, and what to remember of
/// them once it runs.
pub struct Joining {
    /// The run's leaf (a cgroup2 directory, open), which the child starts in.
    pub leaf: Option<OwnedFd>,
    /// `cgroup.procs` of each v1 cgroup the child joins (for a limit), open for writing.
    pub procs: Vec<OwnedFd>,
    run: Option<RunCgroups>,
}

impl Cgroups {
    /// Finds tend's cgroups and makes `tend-<id>` under them. Returns what to tell the user
    /// once: which are in use, or why none is.
    ///
    /// When tend's cgroup holds other processes, which keep it from handing controllers
    /// down, it waits up to `patience` for them to end first (a daemon's parent, told the
    /// daemon is ready, is about to).
    pub fn setup(id: &str, patience: std::time::Duration) -> (Cgroups, String) {
        let found = Hierarchies::find();
        let name = format!("tend-{id}");
        let Some(unified) = &found.unified else {
            return (
                Cgroups::default(),
                "cgroups: no cgroup2 hierarchy here that shows tend's own cgroup; stopping reaches \
                 each process group only"
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
        let own = Cgroup {
            dir: unified.clone(),
        };
        // tend moves into a leaf of its own tree: its cgroup keeps no process of tend's (so
        // it may hand controllers down), and the tree of a live tend is never empty.
        let entered = Cgroup::create(&base.dir.join(SUPERVISOR_LEAF))
            .and_then(|leaf| leaf.enter(std::process::id()));
        // cgroup2's controllers, where tend's cgroup has them to hand down; else v1's.
        const CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];
        let mut handing = hand_down(&own, &base, &CONTROLLERS);
        if matches!(&handing, Err(e) if e.kind() == std::io::ErrorKind::ResourceBusy)
            && !patience.is_zero()
        {
            let _ = tend_os::procfs::wait_all_exit(&own.pids(), patience);
            handing = hand_down(&own, &base, &CONTROLLERS);
        }
        let (handed, handing_failed) = match handing {
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
        let mut notice = format!(
            "cgroups: a cgroup per instance under {}; {}",
            base.dir.display(),
            said.join(", ")
        );
        if let Err(e) = &entered {
            notice.push_str(&format!("; tend stays in its own cgroup ({e})"));
        }
        if let Some(e) = handing_failed {
            notice.push_str(&format!("; cgroup2 controllers not used: {e}"));
        }
        if !tend_os::probe_start_in_cgroup() {
            // Correct either way; slower this way (docs/architecture.md).
            notice.push_str(
                "; each child joins its cgroup by a write before its exec (clone3 into a cgroup \
                 is refused here: a seccomp filter, or Linux before 5.7), so a spawn after an \
                 idle spell waits for the kernel, about 10 ms",
            );
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
    /// left beside tend's own: `tend-*` trees in which no process lives, so not even their
    /// tend (a live tend is in its tree's [`SUPERVISOR_LEAF`]), made more than
    /// [`STALE_AFTER`] ago (one just made may not have its tend in it yet); with them, the
    /// directories of the same name in the v1 hierarchies. Returns how many trees went.
    pub fn sweep_strangers(&self) -> usize {
        let Some(base) = &self.base else { return 0 };
        let Some(parent) = base.dir.parent() else {
            return 0;
        };
        let parent = Cgroup {
            dir: parent.to_path_buf(),
        };
        let mut removed = 0;
        for sibling in children(&parent) {
            let Some(name) = sibling.dir.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !name.starts_with("tend-")
                || sibling.dir == base.dir
                || sibling.populated()
                || recent(&sibling)
            {
                continue;
            }
            if remove_tree(&sibling) {
                removed += 1;
            }
            for v1 in self.v1_dirs() {
                if let Some(v1_parent) = v1.dir.parent() {
                    remove_tree(&Cgroup {
                        dir: v1_parent.join(name),
                    });
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
                    let pids = leaf.pids();
                    kill_leaf(&leaf);
                    // Gone before the leaf goes: a run of this tend may get its name.
                    let _ = tend_os::procfs::wait_all_exit(&pids, SWEEP_PATIENCE);
                }
                let _ = leaf.remove();
            }
            let _ = instance.remove();
        }
        swept
    }

    /// Makes the cgroup of the instance `instance` (`web.0`) ahead of its first run's spawn
    /// (it waits for its dependencies), so that the spawn makes only the run's leaf. A
    /// failure is left for that spawn to meet.
    pub fn prepare_instance(&self, instance: &str) {
        if let Some(base) = &self.base {
            let _ = Cgroup::create(&base.dir.join(instance));
        }
    }

    /// Makes the cgroups of run `run` of the instance `instance` (`web.0`), with its
    /// limits (those that can be enforced), and opens what the child joins.
    pub fn prepare(&self, instance: &str, run: u64, limits: &Limits) -> std::io::Result<Joining> {
        let Some(base) = &self.base else {
            return Ok(Joining {
                leaf: None,
                procs: Vec::new(),
                run: None,
            });
        };
        let leaf = Cgroup::create(&base.dir.join(instance).join(format!("run-{run}")))?;
        match leaf
            .open_dir()
            .and_then(|dir| Ok((dir, self.limit(instance, limits)?)))
        {
            Ok((dir, (procs, memory))) => Ok(Joining {
                leaf: Some(dir),
                procs,
                run: Some(RunCgroups { leaf, memory }),
            }),
            Err(e) => {
                // Made again by the next try: not one leaf per failed try.
                let _ = leaf.remove();
                Err(e)
            }
        }
    }

    /// Sets the limits of a run of `instance`: the v1 cgroups its child joins, and its
    /// instance's memory cgroup with the OOM kills counted there so far.
    fn limit(
        &self,
        instance: &str,
        limits: &Limits,
    ) -> std::io::Result<(Vec<OwnedFd>, Option<MemoryCgroup>)> {
        let mut procs = Vec::new();
        let mut memory = None;
        // Each limit, with what lifts it on a cgroup2 instance directory.
        let requests = [
            (
                &self.limiters.memory,
                limits.memory_max.map(Limit::Memory),
                ("memory.max", "max".to_owned()),
            ),
            (
                &self.limiters.cpu,
                limits.cpu_max.map(Limit::Cpu),
                ("cpu.max", format!("max {CPU_PERIOD_US}")),
            ),
            (
                &self.limiters.pids,
                limits.pids_max.map(Limit::Pids),
                ("pids.max", "max".to_owned()),
            ),
        ];
        for (limiter, limit, (lift_file, lifted)) in requests {
            let Some(limiter) = limiter else {
                continue;
            };
            let dir = limiter.dir.dir.join(instance);
            let Some(limit) = limit else {
                // A cgroup2 instance directory is above every run's leaf: a limit an earlier
                // config set there goes. (A v1 one is joined only with a limit.)
                if !limiter.v1 && dir.is_dir() {
                    let _ = Cgroup { dir }.write(lift_file, &lifted);
                }
                continue;
            };
            let dir = Cgroup::create(&dir)?;
            for ((file, value), required) in limit.files(limiter.v1) {
                match dir.write(file, &value) {
                    Err(e) if required => return Err(explain(e, limit, limiter)),
                    _ => {}
                }
            }
            if limiter.v1 {
                procs.push(dir.procs_for_joining()?);
            }
            if matches!(limit, Limit::Memory(_)) {
                let before = dir.oom_kills();
                memory = Some((dir, before));
            }
        }
        Ok((procs, memory))
    }

    /// The run whose cgroups `joining` made was spawned (or failed to be, and its leaf is
    /// removed).
    pub fn spawned(&mut self, run: RunId, spawned: bool, joining: Joining) {
        let Some(cgroups) = joining.run else { return };
        if spawned {
            self.runs.insert(run, cgroups);
        } else {
            let _ = cgroups.leaf.remove();
        }
    }

    /// Whether `run` has a cgroup of its own.
    pub fn has(&self, run: RunId) -> bool {
        self.runs.contains_key(&run)
    }

    /// Whether a process of `run` is left anywhere in its cgroup.
    pub fn populated(&self, run: RunId) -> bool {
        self.runs.get(&run).is_some_and(|c| c.leaf.populated())
    }

    /// Sends `signal` to the processes of `run` that left its process group `pgid` (the
    /// group gets it from the caller), as systemd's `KillMode=control-group` does.
    pub fn signal_escaped(&self, run: RunId, pgid: i32, signal: tend_core::Signal) {
        let Some(cgroups) = self.runs.get(&run) else {
            return;
        };
        for pid in cgroups.leaf.pids() {
            let escaped = tend_os::procfs::stat(pid).is_some_and(|stat| stat.pgid != pgid);
            if escaped {
                let _ = signal_member(&cgroups.leaf, pid, signal);
            }
        }
    }

    /// Sends `signal` to every process in the cgroup of `run`: how a leftover is signalled,
    /// since its group id may belong to someone else by now (the group emptied while
    /// processes that had left it live on in the leaf).
    pub fn signal_all(&self, run: RunId, signal: tend_core::Signal) {
        if let Some(cgroups) = self.runs.get(&run) {
            for pid in cgroups.leaf.pids() {
                let _ = signal_member(&cgroups.leaf, pid, signal);
            }
        }
    }

    /// What `run` uses, counted over its cgroup (so with the processes that left its group),
    /// if it has one.
    pub fn usage(&self, run: RunId) -> Option<tend_os::procfs::GroupUsage> {
        let cgroups = self.runs.get(&run)?;
        Some(tend_os::procfs::pids_usage(&cgroups.leaf.pids()))
    }

    /// Kills every process of `run` at once, wherever it went.
    pub fn kill(&self, run: RunId) {
        if let Some(cgroups) = self.runs.get(&run) {
            kill_leaf(&cgroups.leaf);
        }
    }

    /// How many processes of `run` the OOM killer has killed (in its instance's memory
    /// cgroup) since its spawn.
    pub fn oom_kills(&self, run: RunId) -> u32 {
        self.runs
            .get(&run)
            .and_then(|c| c.memory.as_ref())
            .map_or(0, |(memory, before)| {
                u32::try_from(memory.oom_kills().saturating_sub(*before)).unwrap_or(u32::MAX)
            })
    }

    /// `run` is over and nothing of it is left: its leaf goes.
    pub fn forget(&mut self, run: RunId) {
        if let Some(cgroups) = self.runs.remove(&run) {
            let _ = cgroups.leaf.remove();
        }
    }

    /// tend exits: every cgroup it made goes (they are empty by now).
    pub fn remove_all(&mut self) {
        for (_, run) in self.runs.drain() {
            let _ = run.leaf.remove();
        }
        if let (Some(base), Some((own, handed))) = (&self.base, &self.handed) {
            // Its cgroup as tend found it, and tend back in it, so that its tree can go.
            let _ = hand_back(own, base, handed);
            let _ = own.enter(std::process::id());
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

/// Says why the kernel refused a limit where it can tell: cgroup v1 refuses a CPU quota
/// above that of the cgroup above (cgroup2 would clamp it).
fn explain(e: std::io::Error, limit: Limit, limiter: &Limiter) -> std::io::Error {
    let Limit::Cpu(percent) = limit else {
        return e;
    };
    if !limiter.v1 || e.kind() != std::io::ErrorKind::InvalidInput {
        return e;
    }
    // The quota of tend's own v1 cpu cgroup, the one above `tend-<id>` (-1: none).
    let above = limiter.dir.dir.parent().and_then(|own| {
        let read = |file: &str| -> Option<i64> {
            let value = std::fs::read_to_string(own.join(file)).ok()?;
            value.trim().parse().ok().filter(|&n: &i64| n > 0)
        };
        Some(read("cpu.cfs_quota_us")? * 100 / read("cpu.cfs_period_us")?)
    });
    match above {
        Some(most) => std::io::Error::new(
            e.kind(),
            format!(
                "{e}: cpu_max {percent}% is above the {most}% tend's own v1 cpu cgroup may use, \
                 which cgroup v1 refuses; set cpu_max to {most}% or less"
            ),
        ),
        None => e,
    }
}

/// SIGKILL to every process in `leaf`: `cgroup.kill` (Linux 5.14), or, on older kernels, a
/// SIGKILL to each process it lists, again while it lists any (a process may fork between
/// the listing and its kill; a few rounds catch its children).
fn kill_leaf(leaf: &Cgroup) {
    if matches!(leaf.kill(), Ok(true)) {
        return;
    }
    for _ in 0..KILL_ROUNDS {
        let pids = leaf.pids();
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            let _ = signal_member(leaf, pid, tend_core::Signal::Kill);
        }
    }
}

/// How long [`Cgroups::sweep`] waits for what it killed to be gone.
const SWEEP_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

/// Sends `signal` to `pid`, listed in `leaf` a moment ago, if it is still there once pinned
/// by a pidfd: a pid that ended and was reused meanwhile is someone else's.
fn signal_member(
    leaf: &Cgroup,
    pid: i32,
    signal: tend_core::Signal,
) -> Result<bool, tend_os::OsError> {
    tend_os::signal_process_if(pid, signal, || leaf.pids().contains(&pid))
}

/// Rounds of [`kill_leaf`] without `cgroup.kill`.
const KILL_ROUNDS: usize = 8;

/// How long a tree of another tend's cgroups must be unchanged before it counts as left
/// behind.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Whether a directory of `tree` was made within [`STALE_AFTER`] (cgroupfs keeps a
/// directory's time from its making: a mkdir or rmdir inside does not change it).
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

#[cfg(test)]
mod tests {
    //! Against the kernel's cgroup file systems; each test skips, saying why, where it may
    //! not make cgroups (not root, no such hierarchy).

    use super::*;
    use std::os::fd::AsFd;

    /// A cgroup for a test under `parent`, removed (after a kill) on drop.
    struct Scratch(Cgroup);

    impl Scratch {
        fn new(parent: Option<std::path::PathBuf>, what: &str) -> Option<Scratch> {
            let Some(parent) = parent else {
                eprintln!("skipped: no {what} hierarchy here");
                return None;
            };
            let dir = parent.join(format!("tend-unit-{}-{what}", std::process::id()));
            match Cgroup::create(&dir) {
                Ok(cgroup) => Some(Scratch(cgroup)),
                Err(e) => {
                    eprintln!("skipped: cannot make a {what} cgroup: {e}");
                    None
                }
            }
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            kill_leaf(&self.0);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while !remove_tree(&self.0) && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }

    /// A `sleep` in `cgroup`; its pid.
    fn sleeper_in(cgroup: &Cgroup) -> i32 {
        let procs = cgroup.procs_for_joining().unwrap();
        let argv = vec!["sleep".to_owned(), "1000".to_owned()];
        let child = tend_os::spawn(&tend_os::Command {
            argv: &argv,
            cwd: None,
            env: &[],
            actions: &[tend_os::ChildAction::JoinCgroup(procs.as_fd())],
        })
        .unwrap();
        child.pid
    }

    #[test]
    fn without_cgroup_kill_every_listed_process_gets_sigkill() {
        // A v1 hierarchy has no cgroup.kill: the path of kernels before 5.14.
        let Some(scratch) = Scratch::new(Hierarchies::find().pids_v1, "pids-v1") else {
            return;
        };
        let pids: Vec<i32> = (0..3).map(|_| sleeper_in(&scratch.0)).collect();
        assert!(!scratch.0.dir.join("cgroup.kill").exists());
        kill_leaf(&scratch.0);
        for pid in pids {
            let gone = tend_os::wait_exit(pid, std::time::Duration::from_secs(10)).unwrap();
            assert!(gone, "{pid} still runs");
            let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
            assert!(
                matches!(
                    status,
                    nix::sys::wait::WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGKILL, _)
                ),
                "{status:?}"
            );
        }
        assert!(scratch.0.pids().is_empty());
    }

    #[test]
    fn a_run_whose_limits_cannot_be_set_leaves_no_leaf_behind() {
        let Some(scratch) = Scratch::new(Hierarchies::find().unified, "cgroup2") else {
            return;
        };
        let cgroups = Cgroups {
            base: Some(scratch.0.clone()),
            limiters: Limiters {
                // Nothing can be made there.
                pids: Some(Limiter {
                    dir: Cgroup {
                        dir: "/proc/self/no-such-cgroup".into(),
                    },
                    v1: true,
                }),
                ..Limiters::default()
            },
            ..Cgroups::default()
        };
        let limits = Limits {
            pids_max: Some(4),
            ..Limits::default()
        };
        for run in 1..=3 {
            assert!(cgroups.prepare("web.0", run, &limits).is_err());
        }
        let leaves = children(&Cgroup {
            dir: scratch.0.dir.join("web.0"),
        });
        assert!(leaves.is_empty(), "{leaves:?}");
    }
}
