//! As a subreaper, tend reaps orphaned grandchildren through `reap_one`.
//! One test in its own binary: `reap_one` reaps any child of the process.

mod common;

use common::{spawn_guarded, wait_for};
use tend_core::ExitStatus;
use tend_os::{reap_one, set_child_subreaper, Pid};

#[test]
fn orphaned_grandchild_is_reaped_by_reap_one() {
    set_child_subreaper().expect("subreaper");
    let (child, mut guard) = spawn_guarded(&["sh", "-c", "sleep 0.2 >/dev/null 2>&1 & echo $!"]);
    let orphan: Pid = common::read_all(child.stdout)
        .trim()
        .parse()
        .expect("pid of sleep");

    let mut seen = Vec::new();
    wait_for("the shell and the orphan to be reaped", 5, || {
        // waitpid(-1) only returns our own children: the orphan was reparented to us.
        while let Some(reaped) = reap_one().expect("reap_one") {
            seen.push(reaped);
        }
        (seen.len() == 2).then_some(())
    });
    guard.mark_reaped();
    seen.sort_unstable_by_key(|&(pid, _)| pid != child.pid);
    assert_eq!(
        seen,
        [
            (child.pid, ExitStatus::Code(0)),
            (orphan, ExitStatus::Code(0))
        ]
    );
    assert_eq!(reap_one().expect("reap_one"), None, "no children left");
}
