//! Contract tests of `spawn` against real processes: what state the child starts in.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use std::io::Write;

use common::{argv, fds_of, proc_stat, read_all, readlink, spawn_guarded, wait_for, GroupGuard};
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::wait::WaitStatus;
use tend_os::{spawn, spawn_with_stdin, Child, Command};

#[test]
fn child_has_only_fds_0_1_2_even_when_tend_holds_an_inheritable_fd() {
    // dup() clears FD_CLOEXEC: this fd would leak into a child without the close_range mark.
    // SAFETY: dup of fd 2, which the test harness keeps open; we own the new fd.
    let leaky = unsafe { OwnedFd::from_raw_fd(libc::dup(2)) };
    let flags = fcntl(leaky.as_raw_fd(), FcntlArg::F_GETFD).expect("F_GETFD");
    assert_eq!(
        flags & libc::FD_CLOEXEC,
        0,
        "the test fd must be inheritable"
    );

    let (child, _guard) = spawn_guarded(&["sleep", "30"]);
    // sleep opens files briefly while it starts (ld.so, locale); a leaked fd would stay forever.
    wait_for("the child's fds to be exactly 0, 1, 2", 5, || {
        (fds_of(child.pid) == [0, 1, 2]).then_some(())
    });
    drop(leaky);
}

#[test]
fn child_leads_its_own_process_group_with_stdin_from_dev_null() {
    let (child, _guard) = spawn_guarded(&["sleep", "30"]);
    let pgid = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(child.pid))).expect("getpgid");
    assert_eq!(pgid.as_raw(), child.pid);
    assert_ne!(pgid, nix::unistd::getpgrp());
    assert_eq!(readlink(format!("/proc/{}/fd/0", child.pid)), "/dev/null");
    assert!(readlink(format!("/proc/{}/fd/1", child.pid)).starts_with("pipe:"));
    assert!(readlink(format!("/proc/{}/fd/2", child.pid)).starts_with("pipe:"));
}

#[test]
fn stdout_and_stderr_arrive_separately_including_a_last_line_without_newline() {
    let (child, mut guard) = spawn_guarded(&[
        "sh",
        "-c",
        "echo out1; echo err1 >&2; echo out2; printf 'no newline' >&2",
    ]);
    assert_eq!(read_all(child.stdout), "out1\nout2\n");
    assert_eq!(read_all(child.stderr), "err1\nno newline");
    assert!(matches!(guard.wait(), WaitStatus::Exited(_, 0)));
}

#[test]
fn pipe_read_ends_are_cloexec() {
    let (child, _guard) = spawn_guarded(&["sleep", "30"]);
    for fd in [&child.stdout, &child.stderr] {
        let flags = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFD).expect("F_GETFD");
        assert!(FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC));
    }
}

#[test]
fn pipe_eof_comes_only_after_a_grandchild_holding_it_exits() {
    let (child, mut guard) = spawn_guarded(&["sh", "-c", "(sleep 0.3; echo late) & echo early"]);
    // The shell exits at once; its background subshell still holds the write end.
    assert!(matches!(guard.wait(), WaitStatus::Exited(_, 0)));
    assert_eq!(read_all(child.stdout), "early\nlate\n");
}

#[test]
fn missing_program_is_a_spawn_error_with_path_and_enoent() {
    for program in [
        "/nonexistent/tend-test-program",
        "tend-test-no-such-program",
    ] {
        let argv = argv(&[program]);
        let err = spawn(&Command {
            argv: &argv,
            cwd: None,
            env: &[],
            actions: &[],
        })
        .expect_err("spawn must fail");
        assert_eq!(err.op, "spawn");
        assert_eq!(err.path.as_deref(), Some(Path::new(program)));
        assert_eq!(err.errno(), Some(libc::ENOENT), "{err}");
    }
}

#[test]
fn a_cwd_that_is_missing_or_a_file_is_a_chdir_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let argv = argv(&["true"]);
    for (dir, errno) in [
        (PathBuf::from("/nonexistent/tend-test-dir"), libc::ENOENT),
        (file, libc::ENOTDIR),
    ] {
        let err = spawn(&Command {
            argv: &argv,
            cwd: Some(&dir),
            env: &[],
            actions: &[],
        })
        .expect_err("spawn must fail");
        assert_eq!(err.op, "chdir");
        assert_eq!(err.path.as_deref(), Some(dir.as_path()));
        assert_eq!(err.errno(), Some(errno));
    }
}

#[test]
fn empty_argv_is_einval() {
    let err = spawn(&Command {
        argv: &[],
        cwd: None,
        env: &[],
        actions: &[],
    })
    .expect_err("spawn must fail");
    assert_eq!(err.errno(), Some(libc::EINVAL));
}

#[test]
fn cwd_and_env_apply_on_top_of_the_inherited_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let argv = argv(&[
        "sh",
        "-c",
        "pwd -P; printf '%s\\n' \"$TEND_TEST_VAR\" \"$PATH\"",
    ]);
    let env = [("TEND_TEST_VAR".to_owned(), "set by tend".to_owned())];
    let child = spawn(&Command {
        argv: &argv,
        cwd: Some(dir.path()),
        env: &env,
        actions: &[],
    })
    .expect("spawn");
    let mut guard = GroupGuard::new(child.pid);
    let expected = format!(
        "{}\nset by tend\n{}\n",
        dir.path().canonicalize().expect("canonicalize").display(),
        std::env::var("PATH").expect("PATH is set"),
    );
    assert_eq!(read_all(child.stdout), expected);
    assert!(matches!(guard.wait(), WaitStatus::Exited(_, 0)));
}

/// Spawns `argv` with its stdin on a pipe and guards its group.
fn spawn_with_stdin_guarded(words: &[&str]) -> (Child, OwnedFd, GroupGuard) {
    let argv = argv(words);
    let (child, stdin) = spawn_with_stdin(&Command {
        argv: &argv,
        cwd: None,
        env: &[],
        actions: &[],
    })
    .expect("spawn_with_stdin");
    let guard = GroupGuard::new(child.pid);
    common::wait_exec(child.pid);
    (child, stdin, guard)
}

#[test]
fn piped_stdin_carries_what_the_parent_writes_and_closing_it_is_eof() {
    let (child, stdin, mut guard) = spawn_with_stdin_guarded(&["tr", "a-z", "A-Z"]);
    assert!(readlink(format!("/proc/{}/fd/0", child.pid)).starts_with("pipe:"));
    let mut stdin = std::fs::File::from(stdin);
    stdin.write_all(b"hello process world").expect("write");
    // tr reads until EOF, which only closing the write end gives.
    drop(stdin);
    assert_eq!(read_all(child.stdout), "HELLO PROCESS WORLD");
    assert!(matches!(guard.wait(), WaitStatus::Exited(_, 0)));
}

#[test]
fn piped_stdin_write_end_is_cloexec() {
    let (_child, stdin, _guard) = spawn_with_stdin_guarded(&["sleep", "30"]);
    let flags = fcntl(stdin.as_raw_fd(), FcntlArg::F_GETFD).expect("F_GETFD");
    assert!(FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC));
}

#[test]
fn a_second_child_does_not_hold_the_first_childs_stdin_pipe() {
    let (first, first_stdin, mut first_guard) = spawn_with_stdin_guarded(&["cat"]);
    let (second, _second_stdin, _second_guard) = spawn_with_stdin_guarded(&["sleep", "30"]);
    wait_for("the second child's fds to be exactly 0, 1, 2", 5, || {
        (fds_of(second.pid) == [0, 1, 2]).then_some(())
    });
    assert_ne!(
        readlink(format!("/proc/{}/fd/0", first.pid)),
        readlink(format!("/proc/{}/fd/0", second.pid)),
        "each child has its own stdin pipe"
    );
    // Had the second child inherited the write end, cat would see EOF only when sleep exits.
    drop(first_stdin);
    assert_eq!(read_all(first.stdout), "");
    assert!(matches!(first_guard.wait(), WaitStatus::Exited(_, 0)));
    assert!(
        matches!(proc_stat(second.pid), Some((state, _, _)) if state != 'Z'),
        "the first child got EOF while the second still runs"
    );
}

#[test]
fn programs_are_found_on_the_childs_path_and_must_be_executable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("tend-test-hello");
    std::fs::write(&script, "#!/bin/sh\necho found\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("/nonexistent:{}", dir.path().display());
    let env = vec![("PATH".to_owned(), path)];
    let argv = argv(&["tend-test-hello"]);
    let child = spawn(&Command {
        argv: &argv,
        cwd: None,
        env: &env,
        actions: &[],
    })
    .expect("found on PATH");
    let mut guard = GroupGuard::new(child.pid);
    assert_eq!(read_all(child.stdout), "found\n");
    guard.wait();

    // Found, but not executable: EACCES, as execvp says.
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = spawn(&Command {
        argv: &argv,
        cwd: None,
        env: &env,
        actions: &[],
    })
    .expect_err("not executable");
    assert_eq!(err.errno(), Some(libc::EACCES), "{err}");
}

#[test]
fn a_script_without_a_shebang_runs_with_the_shell_and_its_arguments() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("no-shebang");
    std::fs::write(&script, "echo \"ran with $1\"\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A relative program with a slash is found from the child's working directory.
    let argv = argv(&["./no-shebang", "an-argument"]);
    let child = spawn(&Command {
        argv: &argv,
        cwd: Some(dir.path()),
        env: &[],
        actions: &[],
    })
    .expect("execvp runs it with /bin/sh, and so does spawn");
    let mut guard = GroupGuard::new(child.pid);
    assert_eq!(read_all(child.stdout), "ran with an-argument\n");
    assert!(matches!(guard.wait(), WaitStatus::Exited(_, 0)));
}
