//! `reap_one` reports exit codes and terminating signals, realtime ones included.
//! One test in its own binary: `reap_one` reaps any child of the process.

mod common;

use common::{spawn_guarded, wait_for};
use tend_core::ExitStatus;
use tend_os::{reap_one, Pid};

fn reap(pid: Pid) -> ExitStatus {
    wait_for("the child to be reaped", 5, || {
        match reap_one().expect("reap_one") {
            Some((reaped, status)) => {
                assert_eq!(reaped, pid);
                Some(status)
            }
            None => None,
        }
    })
}

#[test]
fn reap_one_reports_codes_and_signals() {
    assert_eq!(reap_one().expect("reap_one"), None, "no children yet");

    let (child, mut guard) = spawn_guarded(&["sh", "-c", "exit 3"]);
    assert_eq!(reap(child.pid), ExitStatus::Code(3));
    guard.mark_reaped();

    for sig in [libc::SIGKILL, libc::SIGRTMIN() + 1] {
        let (child, mut guard) = spawn_guarded(&["sleep", "30"]);
        // SAFETY: kill has no memory-safety preconditions; the pid is our unreaped child.
        assert_eq!(unsafe { libc::kill(child.pid, sig) }, 0);
        assert_eq!(reap(child.pid), ExitStatus::Signaled(sig));
        guard.mark_reaped();
    }
}
