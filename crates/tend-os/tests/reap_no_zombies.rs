//! 1000 spawn+reap cycles leave no zombie and no fd behind.
//! One test in its own binary: `reap_one` reaps any child of the process.

mod common;

use common::{fds_of, my_zombies, spawn_guarded, wait_for};
use tend_core::ExitStatus;
use tend_os::{reap_one, set_child_subreaper, Pid};

#[test]
fn thousand_restarts_leave_no_zombie() {
    set_child_subreaper().expect("subreaper");
    let me = std::process::id() as Pid;
    let fds_before = fds_of(me).len();
    for _ in 0..1000 {
        let (child, mut guard) = spawn_guarded(&["true"]);
        let status = wait_for("true to be reaped", 5, || {
            let (pid, status) = reap_one().expect("reap_one")?;
            assert_eq!(pid, child.pid);
            Some(status)
        });
        guard.mark_reaped();
        assert_eq!(status, ExitStatus::Code(0));
    }
    assert_eq!(reap_one().expect("reap_one"), None);
    assert_eq!(my_zombies(), Vec::<Pid>::new());
    assert_eq!(fds_of(me).len(), fds_before, "pipes leaked");
}
