//! cgroups against the real kernel: a child starts in its cgroup (`clone3` into it, or, where
//! that is refused, a write before its exec); a child joins its cgroup before its exec, so a process
//! that leaves its group and session (`setsid`) is still in it and `cgroup.kill` ends it; v1's
//! memory controller limits a tree and counts the OOM kill; a cgroup2 controller is handed
//! down from a cgroup its process must leave first, and handed back. Needs root and a cgroup
//! file system it may write (CI has both); otherwise each test says why it skips.

mod common;

use std::fs;
use std::os::fd::AsFd;
use std::path::PathBuf;

use common::{argv, probe, run_with_deadline, wait_for, GroupGuard};
use tend_os::cgroup::{hand_back, hand_down, Cgroup, Hierarchies, SUPERVISOR_LEAF};
use tend_os::{spawn, ChildAction, Command};

/// A cgroup for this test under `parent`, removed (after a kill) on drop.
struct TestCgroup(Cgroup);

impl TestCgroup {
    fn new(parent: Option<PathBuf>, what: &str) -> Option<TestCgroup> {
        let Some(parent) = parent else {
            eprintln!("skipped: no {what} hierarchy on this machine");
            return None;
        };
        let dir = parent.join(format!("tend-test-{}-{what}", std::process::id()));
        match Cgroup::create(&dir) {
            Ok(cgroup) => Some(TestCgroup(cgroup)),
            Err(e) => {
                eprintln!("skipped: cannot make a {what} cgroup here: {e}");
                None
            }
        }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = self.0.kill();
        for pid in self.0.pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !matches!(self.0.remove(), Ok(true)) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

#[test]
fn a_child_that_left_its_session_is_still_in_the_cgroup_and_cgroup_kill_ends_it() {
    let Some(cgroup) = TestCgroup::new(Hierarchies::find().unified, "cgroup2") else {
        return;
    };
    let procs = cgroup.0.procs_for_joining().unwrap();
    let words = argv(&["sh", "-c", "setsid sleep 1000 & echo $!; exec sleep 1000"]);
    let child = spawn(&Command {
        argv: &words,
        cwd: None,
        env: &[],
        actions: &[ChildAction::JoinCgroup(procs.as_fd())],
    })
    .unwrap();
    let _guard = GroupGuard::new(child.pid);
    drop(procs);
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(fs::File::from(child.stdout)),
        &mut line,
    )
    .unwrap();
    let escaped: i32 = line.trim().parse().unwrap();
    let members = wait_for("both in the cgroup", 10, || {
        let pids = cgroup.0.pids();
        (pids.contains(&child.pid) && pids.contains(&escaped)).then_some(pids)
    });
    assert_eq!(members.len(), 2, "{members:?}");
    assert!(cgroup.0.populated());
    assert!(cgroup.0.kill().unwrap(), "cgroup.kill (Linux 5.14)");
    wait_for("the cgroup to empty", 10, || {
        (!cgroup.0.populated()).then_some(())
    });
}

#[test]
fn the_v1_memory_controller_limits_the_tree_and_counts_the_oom_kill() {
    let Some(cgroup) = TestCgroup::new(Hierarchies::find().memory_v1, "memory-v1") else {
        return;
    };
    cgroup
        .0
        .write("memory.limit_in_bytes", &(32u64 << 20).to_string())
        .unwrap();
    let _ = cgroup
        .0
        .write("memory.memsw.limit_in_bytes", &(32u64 << 20).to_string());
    assert_eq!(cgroup.0.oom_kills(), 0);
    let procs = cgroup.0.procs_for_joining().unwrap();
    let words = argv(&["python3", "-c", "x = b'x' * (200 << 20); print('survived')"]);
    let child = spawn(&Command {
        argv: &words,
        cwd: None,
        env: &[],
        actions: &[ChildAction::JoinCgroup(procs.as_fd())],
    })
    .unwrap();
    let mut guard = GroupGuard::new(child.pid);
    drop(procs);
    let status = guard.wait();
    assert!(
        matches!(
            status,
            nix::sys::wait::WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGKILL, _)
        ),
        "{status:?}"
    );
    assert!(cgroup.0.oom_kills() >= 1);
}

/// The cgroup of `pid` in the cgroup2 hierarchy, as /proc says it.
fn unified_cgroup_of(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
        .unwrap()
}

/// Takes the controller off the children of `parent` again on drop, if the test put it on.
struct ControllerOn<'a>(&'a Cgroup, &'a str, bool);

impl Drop for ControllerOn<'_> {
    fn drop(&mut self) {
        if self.2 {
            let _ = self
                .0
                .write("cgroup.subtree_control", &format!("-{}", self.1));
        }
    }
}

/// Removes the directories a test made under a cgroup (deepest first) on drop, before that
/// cgroup's own guard removes it.
struct Below(Vec<PathBuf>);

impl Drop for Below {
    fn drop(&mut self) {
        for dir in self.0.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// cgroup2 hands controllers down only from a cgroup with no process of its own: a lone
/// supervisor that moved into its leaf below `base` can hand them down, `hand_back` undoes it
/// (and it can move back), and with another process there `hand_down` refuses and says why.
/// Tested with the one controller this kind of machine leaves to cgroup2 (hugetlb: memory,
/// cpu and pids are v1's on these hybrids), or one a pure cgroup2 machine has.
#[test]
fn a_supervisor_in_its_leaf_hands_controllers_down_and_back() {
    let Some(own) = Hierarchies::find().unified else {
        eprintln!("skipped: no cgroup2 hierarchy on this machine");
        return;
    };
    let own = Cgroup { dir: own };
    let Some(controller) = ["hugetlb", "pids", "memory"]
        .into_iter()
        .find(|c| own.controllers().iter().any(|have| have == c))
    else {
        eprintln!(
            "skipped: the test's cgroup2 ({}) has no controller to hand down",
            own.dir.display()
        );
        return;
    };
    let was_on = own.subtree_control().iter().any(|c| c == controller);
    if !was_on {
        if let Err(e) = own.write("cgroup.subtree_control", &format!("+{controller}")) {
            eprintln!("skipped: cannot hand {controller} down from the test's cgroup: {e}");
            return;
        }
    }
    let _on = ControllerOn(&own, controller, !was_on);
    let Some(outer) = TestCgroup::new(Some(own.dir.clone()), "hand-down") else {
        return;
    };
    let outer = &outer.0;
    let base = Cgroup::create(&outer.dir.join("tend-test")).unwrap();
    let leaf = Cgroup::create(&base.dir.join(SUPERVISOR_LEAF)).unwrap();
    let instance = base.dir.join("web.0");
    let _below = Below(vec![base.dir.clone(), leaf.dir.clone(), instance.clone()]);
    let spawn_into = |cgroup: &Cgroup| {
        let procs = cgroup.procs_for_joining().unwrap();
        let words = argv(&["sleep", "1000"]);
        let child = spawn(&Command {
            argv: &words,
            cwd: None,
            env: &[],
            actions: &[ChildAction::JoinCgroup(procs.as_fd())],
        })
        .unwrap();
        let guard = GroupGuard::new(child.pid);
        wait_for("the child in its cgroup", 10, || {
            cgroup.pids().contains(&child.pid).then_some(())
        });
        (child.pid, guard)
    };
    // The supervisor: a process alone in `outer`, which cannot hand down while it is there.
    let (supervisor, _supervisor_guard) = spawn_into(outer);
    let pid = u32::try_from(supervisor).unwrap();
    let refused = hand_down(outer, &base, &[controller]).unwrap_err();
    assert!(
        refused.to_string().contains("holds other processes"),
        "{refused}"
    );
    assert!(!outer.subtree_control().iter().any(|c| c == controller));
    // Moved into its leaf, it can.
    leaf.enter(pid).unwrap();
    assert!(
        unified_cgroup_of(supervisor).ends_with("/tend-test/supervisor"),
        "{}",
        unified_cgroup_of(supervisor)
    );
    let handed = hand_down(outer, &base, &["no-such-controller", controller]).unwrap();
    assert_eq!(handed.controllers, [controller]);
    assert_eq!(handed.enabled_in_own, [controller]);
    assert!(outer.subtree_control().iter().any(|c| c == controller));
    assert!(base.subtree_control().iter().any(|c| c == controller));
    // An instance's cgroup has the controller: a limit can be set there.
    let instance = Cgroup::create(&instance).unwrap();
    assert!(
        instance.controllers().iter().any(|c| c == controller),
        "{:?}",
        instance.controllers()
    );
    // A process cannot join `outer` now (no internal processes) ...
    let refused = outer.enter(pid).unwrap_err();
    assert_eq!(
        refused.kind(),
        std::io::ErrorKind::ResourceBusy,
        "{refused}"
    );
    // ... until it is handed back.
    hand_back(outer, &base, &handed).unwrap();
    assert!(!outer.subtree_control().iter().any(|c| c == controller));
    outer.enter(pid).unwrap();
    assert!(outer.pids().contains(&supervisor));
}

/// Whether this kernel and this process allow `clone3(CLONE_INTO_CGROUP)`: Linux 5.7 or later
/// on x86-64, and no seccomp filter that might refuse `clone3`. `Err` says why not.
fn clone_into_cgroup_expected() -> Result<(), String> {
    if !cfg!(all(target_arch = "x86_64", target_pointer_width = "64")) {
        return Err("tend-os makes clone3 itself on x86-64 only".into());
    }
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    let version = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    if version < (5, 7) {
        return Err(format!(
            "kernel {} has no CLONE_INTO_CGROUP",
            release.trim()
        ));
    }
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    if !status.lines().any(|l| l == "Seccomp:\t0") {
        return Err("this process runs under a seccomp filter, which may refuse clone3".into());
    }
    Ok(())
}

#[test]
fn a_child_starts_in_its_cgroup_by_clone3_and_by_joining_where_clone3_is_refused() {
    let Some(cgroup) = TestCgroup::new(Hierarchies::find().unified, "cgroup2-start") else {
        return;
    };
    let name = cgroup
        .0
        .dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let dir = cgroup.0.dir.to_string_lossy().into_owned();
    for (extra, how) in [(None, "true"), (Some("--no-clone3"), "false")] {
        let mut cmd = probe();
        cmd.args(["start-in-cgroup", &dir]).args(extra);
        let run = run_with_deadline(cmd, 20);
        let out = String::from_utf8_lossy(&run.output.stdout).into_owned();
        assert!(
            run.output.status.success(),
            "{extra:?}: {out}{}",
            String::from_utf8_lossy(&run.output.stderr)
        );
        // The child's own view of its cgroup2 cgroup: the test's.
        let unified = out.lines().find(|l| l.starts_with("0::")).unwrap_or("");
        assert!(
            unified.ends_with(&format!("/{name}")),
            "{extra:?}: the child is not in {name}: {out}"
        );
        let starts_in = out.lines().last().unwrap_or("");
        // The probe (no process made) says what the spawn then did.
        let probe = out.lines().rev().nth(1).unwrap_or("");
        match (extra, clone_into_cgroup_expected()) {
            (None, Err(why)) => eprintln!("not checked that clone3 was used: {why} ({starts_in})"),
            _ => {
                assert_eq!(starts_in, format!("starts_in {how}"), "{extra:?}: {out}");
                assert_eq!(probe, format!("probe {how}"), "{extra:?}: {out}");
            }
        }
    }
    // A cgroup v1 directory is not one a child can start in: a clear error, nothing runs.
    if let Some(memory) = Hierarchies::find().memory_v1 {
        if clone_into_cgroup_expected().is_ok() {
            let mut cmd = probe();
            cmd.args(["start-in-cgroup", &memory.to_string_lossy()]);
            let run = run_with_deadline(cmd, 20);
            assert!(!run.output.status.success());
            let err = String::from_utf8_lossy(&run.output.stderr);
            assert!(err.contains("clone3 into a cgroup"), "{err}");
        }
    }
}
