//! Contract tests of [`ChildAction`]s against real processes: each action is seen by the
//! program the child executes, and a failing one is named in the error.

mod common;

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use common::{argv, read_all, GroupGuard};
use nix::sys::wait::WaitStatus;
use tend_os::{spawn, Child, ChildAction, Command, OsError, Resource};

/// Spawns `words` with `actions` (and `env`) and guards its group.
fn spawn_with(
    words: &[&str],
    env: &[(String, String)],
    actions: &[ChildAction<'_>],
) -> (Child, GroupGuard) {
    let argv = argv(words);
    let child = spawn(&Command {
        argv: &argv,
        cwd: None,
        env,
        actions,
    })
    .expect("spawn");
    let guard = GroupGuard::new(child.pid);
    (child, guard)
}

/// Runs `words` with `actions` to its end and returns its stdout, checking it exited 0.
fn output_of(words: &[&str], actions: &[ChildAction<'_>]) -> String {
    let (child, mut guard) = spawn_with(words, &[], actions);
    let out = read_all(child.stdout);
    let err = read_all(child.stderr);
    assert!(
        matches!(guard.wait(), WaitStatus::Exited(_, 0)),
        "{words:?} failed: {err}"
    );
    out
}

/// The spawn error for `actions` (the program is `true`).
fn error_of(actions: &[ChildAction<'_>]) -> OsError {
    let argv = argv(&["true"]);
    let result = spawn(&Command {
        argv: &argv,
        cwd: None,
        env: &[],
        actions,
    });
    match result {
        Ok(child) => {
            GroupGuard::new(child.pid).wait();
            panic!("the spawn should have failed");
        }
        Err(err) => err,
    }
}

/// A pipe whose read end holds `text` and then EOF: (read end).
fn pipe_holding(text: &str) -> OwnedFd {
    let (read, write) = nix::unistd::pipe().expect("pipe");
    std::fs::File::from(write)
        .write_all(text.as_bytes())
        .expect("write");
    read
}

#[test]
fn a_kept_fd_is_readable_at_the_given_number() {
    let read = pipe_holding("through fd 3\n");
    let out = output_of(
        &["sh", "-c", "cat <&3"],
        &[ChildAction::Dup2 {
            from: read.as_fd(),
            to: 3,
        }],
    );
    assert_eq!(out, "through fd 3\n");
}

#[test]
fn a_kept_fd_at_its_own_number_stays_open_across_the_exec() {
    // Every fd of the test is O_CLOEXEC; keeping one at its own number clears the flag.
    let read = pipe_holding("same number\n");
    let fd = read.as_raw_fd();
    let out = output_of(
        &["sh", "-c", &format!("cat /dev/fd/{fd}")],
        &[ChildAction::Dup2 {
            from: read.as_fd(),
            to: fd,
        }],
    );
    assert_eq!(out, "same number\n");
}

#[test]
fn dup2_sources_are_tends_fds_even_when_an_earlier_action_reuses_their_number() {
    // A swap: the second action's source is the first one's target. Run one after the
    // other on raw numbers, both would end up on `first`.
    let first = pipe_holding("first\n");
    let second = pipe_holding("second\n");
    let (a, b) = (first.as_raw_fd(), second.as_raw_fd());
    let out = output_of(
        &["sh", "-c", &format!("cat /dev/fd/{a}; cat /dev/fd/{b}")],
        &[
            ChildAction::Dup2 {
                from: first.as_fd(),
                to: b,
            },
            ChildAction::Dup2 {
                from: second.as_fd(),
                to: a,
            },
        ],
    );
    assert_eq!(out, "second\nfirst\n");
}

#[test]
fn dup2_onto_stdout_redirects_it() {
    let (read, write) = nix::unistd::pipe().expect("pipe");
    let (child, mut guard) = spawn_with(
        &["sh", "-c", "echo redirected"],
        &[],
        &[ChildAction::Dup2 {
            from: write.as_fd(),
            to: 1,
        }],
    );
    drop(write);
    assert_eq!(read_all(read), "redirected\n");
    assert_eq!(
        read_all(child.stdout),
        "",
        "the usual stdout pipe got nothing"
    );
    assert!(matches!(guard.wait(), WaitStatus::Exited(_, 0)));
}

#[test]
fn a_pid_variable_holds_the_childs_own_pid_and_replaces_any_other_value() {
    let env = [("MYPID".to_owned(), "stale".to_owned())];
    let (child, mut guard) = spawn_with(
        &["sh", "-c", "echo $MYPID $$; env | grep -c '^MYPID='"],
        &env,
        &[ChildAction::SetEnvPid { name: "MYPID" }],
    );
    let pid = child.pid;
    assert_eq!(read_all(child.stdout), format!("{pid} {pid}\n1\n"));
    assert!(matches!(guard.wait(), WaitStatus::Exited(_, 0)));
}

#[test]
fn chdir_changes_the_working_directory_after_cwd() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
    let argv = argv(&["pwd", "-P"]);
    // Relative: from `cwd`, which comes first.
    let child = spawn(&Command {
        argv: &argv,
        cwd: Some(dir.path()),
        env: &[],
        actions: &[ChildAction::Chdir(Path::new("sub"))],
    })
    .expect("spawn");
    let mut guard = GroupGuard::new(child.pid);
    let expected = dir.path().canonicalize().expect("canonicalize").join("sub");
    assert_eq!(read_all(child.stdout), format!("{}\n", expected.display()));
    assert!(matches!(guard.wait(), WaitStatus::Exited(_, 0)));
}

#[test]
fn an_rlimit_is_set() {
    let out = output_of(
        &["sh", "-c", "ulimit -Sn; ulimit -Hn"],
        &[ChildAction::SetRlimit {
            resource: Resource::RLIMIT_NOFILE,
            soft: 123,
            hard: 456,
        }],
    );
    assert_eq!(out, "123\n456\n");
}

#[test]
fn the_umask_is_set() {
    assert_eq!(
        output_of(&["sh", "-c", "umask"], &[ChildAction::Umask(0o027)]),
        "0027\n"
    );
}

#[test]
fn the_nice_value_is_set() {
    assert_eq!(output_of(&["nice"], &[ChildAction::Nice(7)]), "7\n");
}

#[test]
fn the_oom_score_adjustment_is_set_and_checked() {
    assert_eq!(
        output_of(
            &["cat", "/proc/self/oom_score_adj"],
            &[ChildAction::OomScoreAdj(432)]
        ),
        "432\n"
    );
    let err = error_of(&[ChildAction::OomScoreAdj(1001)]);
    assert_eq!(err.errno(), Some(libc::EINVAL));
}

#[test]
fn a_failing_action_is_named_with_its_errno() {
    let err = error_of(&[
        ChildAction::Umask(0o022),
        ChildAction::SetRlimit {
            resource: Resource::RLIMIT_NOFILE,
            soft: 200,
            hard: 100,
        },
    ]);
    assert_eq!(err.op, "setrlimit");
    assert_eq!(err.errno(), Some(libc::EINVAL));
    assert!(
        err.to_string()
            .starts_with("setrlimit RLIMIT_NOFILE soft 200 hard 100: "),
        "{err}"
    );

    let err = error_of(&[ChildAction::Chdir(Path::new("/nonexistent/tend-test-dir"))]);
    assert_eq!(err.op, "chdir");
    assert_eq!(
        err.path.as_deref(),
        Some(Path::new("/nonexistent/tend-test-dir"))
    );
    assert_eq!(err.errno(), Some(libc::ENOENT));
}

#[test]
fn a_failing_setuid_is_named_with_the_uid() {
    // As root the first drop works and the way back fails; as anyone else the first fails.
    let err = error_of(&[ChildAction::SetUid(65534), ChildAction::SetUid(0)]);
    let root = nix::unistd::geteuid().is_root();
    assert_eq!(err.op, "setuid");
    assert_eq!(err.errno(), Some(libc::EPERM), "{err}");
    let uid = if root { "0" } else { "65534" };
    assert!(
        err.to_string()
            .starts_with(&format!("setuid {uid}: Operation not permitted")),
        "{err}"
    );
}

#[test]
fn actions_that_cannot_work_are_refused_before_anything_starts() {
    let err = error_of(&[ChildAction::SetUid(65534), ChildAction::SetGid(65534)]);
    assert_eq!(
        (err.op, err.errno()),
        ("setgid after setuid", Some(libc::EINVAL))
    );
    let err = error_of(&[ChildAction::SetUid(65534), ChildAction::SetGroups(&[])]);
    assert_eq!(
        (err.op, err.errno()),
        ("setgroups after setuid", Some(libc::EINVAL))
    );
    for name in ["", "A=B"] {
        let err = error_of(&[ChildAction::SetEnvPid { name }]);
        assert_eq!(err.errno(), Some(libc::EINVAL), "{name:?}");
    }
    let read = pipe_holding("");
    let err = error_of(&[ChildAction::Dup2 {
        from: read.as_fd(),
        to: -1,
    }]);
    assert_eq!(err.op, "dup2");
    assert_eq!(err.errno(), Some(libc::EBADF));
    assert!(
        err.to_string().starts_with(&format!(
            "dup2 fd {} to -1: Bad file descriptor",
            read.as_raw_fd()
        )),
        "{err}"
    );
}

mod needs_root {
    use super::*;

    /// The uid and gid lines of a /proc status file (None if the thread has ended).
    fn ids(status: &Path) -> Option<Vec<String>> {
        let ids = std::fs::read_to_string(status)
            .ok()?
            .lines()
            .filter(|l| l.starts_with("Uid:") || l.starts_with("Gid:") || l.starts_with("Groups:"))
            .map(str::to_owned)
            .collect();
        Some(ids)
    }

    /// The ids of every thread of this (test) process.
    fn ids_of_every_thread() -> Vec<Vec<String>> {
        let mut all: Vec<_> = std::fs::read_dir("/proc/self/task")
            .expect("tasks")
            .filter_map(|t| ids(&t.expect("task").path().join("status")))
            .collect();
        all.sort();
        all.dedup();
        all
    }

    #[test]
    #[ignore = "needs root: drops to nobody"]
    fn the_child_runs_as_the_user_and_groups_and_tend_keeps_its_own() {
        // Another thread of tend lives meanwhile, as the driver's blocking pool would.
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || stopped.recv());
        let before = ids_of_every_thread();
        let out = output_of(
            &["sh", "-c", "id -u; id -g; id -G"],
            &[
                ChildAction::SetGroups(&[65534, 1]),
                ChildAction::SetGid(65534),
                ChildAction::SetUid(65534),
            ],
        );
        assert_eq!(out, "65534\n65534\n65534 1\n");
        // The ids are the child's alone (credentials are per thread in Linux).
        assert_eq!(ids_of_every_thread(), before);
        assert!(nix::unistd::geteuid().is_root());
        drop(stop);
        let _ = other.join();
    }
}
