//! cgroups against the real kernel: a child joins its cgroup before its exec, so a process
//! that leaves its group and session (`setsid`) is still in it and `cgroup.kill` ends it; v1's
//! memory controller limits a tree and counts the OOM kill. Needs root and a cgroup file
//! system it may write (CI has both); otherwise each test says why it skips.

mod common;

use std::fs;
use std::os::fd::AsFd;
use std::path::PathBuf;

use common::{argv, wait_for, GroupGuard};
use tend_os::cgroup::{Cgroup, Hierarchies};
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
