//! Contract tests of `LockFile`: one holder at a time, across processes and with flock(1), and a
//! holder killed with SIGKILL leaves nothing stale behind.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use common::{adopt_orphans, probe, read_report, run_with_deadline, PidGuard};
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use tend_os::{LockError, LockFile};

/// A child process in its own process group, SIGKILLed as a group and reaped on drop.
struct ChildGuard(Child);

impl ChildGuard {
    fn spawn(cmd: &mut Command) -> ChildGuard {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("spawn");
        ChildGuard(child)
    }

    /// The first line the child prints (the probe and the flock command below print one as soon
    /// as they hold the lock, or exit).
    fn first_line(&mut self) -> String {
        let mut line = String::new();
        BufReader::new(self.0.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .expect("read");
        line
    }

    fn kill_group_and_reap(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.0.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill_group_and_reap();
    }
}

fn held_pid(path: &std::path::Path) -> Option<u32> {
    match LockFile::acquire(path) {
        Err(LockError::Held { pid }) => pid,
        Ok(_) => panic!("acquired a lock that should be held"),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn acquire_writes_our_pid_and_a_second_acquire_is_held_until_the_first_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tend.lock");
    let me = std::process::id();
    let mut lock = LockFile::acquire(&path).expect("acquire");
    assert_eq!(lock.path(), path);
    assert_eq!(fs::read_to_string(&path).unwrap(), format!("{me}\n"));
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let flags = fcntl(lock.as_fd().as_raw_fd(), FcntlArg::F_GETFD).unwrap();
    assert!(FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC));

    // Another open file of the same process conflicts too, and did not touch the content.
    assert_eq!(held_pid(&path), Some(me));
    fs::write(&path, "garbage, longer than a pid\n").unwrap();
    lock.write_pid().unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), format!("{me}\n"));

    drop(lock);
    // At once, although a process forked by another test thread may hold a copy of every fd
    // of ours, the lock's included, until it execs: the drop unlocks.
    assert!(LockFile::acquire(&path).is_ok(), "released by the drop");
}

#[test]
fn lock_of_a_process_killed_with_sigkill_is_released() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tend.lock");
    let mut holder = ChildGuard::spawn(probe().arg("hold-lock").arg(&path));
    assert_eq!(holder.first_line(), "locked\n");
    assert_eq!(held_pid(&path), Some(holder.0.id()));

    holder.kill_group_and_reap();
    // The file still names the dead holder; the lock is gone with its fd.
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        format!("{}\n", holder.0.id())
    );
    let _lock = LockFile::acquire(&path).expect("acquire after SIGKILL");
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        format!("{}\n", std::process::id())
    );
}

#[test]
fn flock_1_and_lockfile_exclude_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tend.lock");

    // flock(1) on an fd of the shell, which then becomes the sleep: one process holds the lock.
    let mut holder = ChildGuard::spawn(
        Command::new("sh")
            .arg("-c")
            .arg(r#"exec 9>"$1"; flock -n 9 && echo locked && exec sleep 60"#)
            .arg("sh")
            .arg(&path),
    );
    assert_eq!(holder.first_line(), "locked\n");
    // flock(1) writes no pid.
    assert_eq!(held_pid(&path), None);
    holder.kill_group_and_reap();
    let lock = LockFile::acquire(&path).expect("acquire after flock(1) died");

    let mut cmd = Command::new("flock");
    cmd.arg("-n").arg(&path).arg("true");
    let run = run_with_deadline(cmd, 10);
    assert_eq!(run.output.status.code(), Some(1), "flock -n got our lock");
    drop(lock);
}

#[test]
fn lock_acquired_after_daemonizing_is_held_by_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tend.lock");
    let report_path = dir.path().join("report");
    adopt_orphans();
    let mut cmd = probe();
    cmd.arg("daemon").arg(&report_path).arg("--lock").arg(&path);
    let run = run_with_deadline(cmd, 10);
    assert!(run.output.status.success());
    let report = read_report(&report_path);
    let daemon_pid: u32 = report["pid"].parse().unwrap();
    let daemon = PidGuard::new(daemon_pid as i32);
    assert_eq!(report["lock"], "acquired");

    assert_eq!(held_pid(&path), Some(daemon_pid));
    daemon.kill();
    let _lock = LockFile::acquire(&path).expect("acquire after the daemon died");
}

#[test]
fn a_pid_in_the_file_is_named_only_while_that_process_lives() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tend.lock");
    // A dead process's pid is in the file (a new holder has not rewritten it yet).
    fs::write(&path, "4194304\n").unwrap();
    let mut holder = ChildGuard::spawn(
        Command::new("sh")
            .arg("-c")
            .arg(r#"exec 9>>"$1"; flock -n 9 && echo locked && exec sleep 60"#)
            .arg("sh")
            .arg(&path),
    );
    assert_eq!(holder.first_line(), "locked\n");
    assert_eq!(held_pid(&path), None, "no pid rather than a dead one");
    // Once the holder's own pid is there, it is named.
    let pid = holder.0.id();
    fs::write(&path, format!("{pid}\n")).unwrap();
    assert_eq!(held_pid(&path), Some(pid));
    holder.kill_group_and_reap();
}

#[test]
fn acquirers_racing_holders_that_remove_the_file_never_both_hold_it() {
    use std::os::unix::fs::MetadataExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    const THREADS: usize = 4;
    const ROUNDS: usize = 400;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tend.lock");
    let holders = AtomicUsize::new(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    // Threads stand for processes: a flock belongs to an open file, and each acquire opens
    // its own. Each one takes the lock, checks it is the only holder and that the path names
    // the file it locked, and removes the file as tend does at a clean exit.
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                let mut rounds = 0;
                while rounds < ROUNDS {
                    assert!(
                        Instant::now() < deadline,
                        "{rounds} of {ROUNDS} rounds within the deadline"
                    );
                    let lock = match LockFile::acquire(&path) {
                        Ok(lock) => lock,
                        Err(LockError::Held { .. }) => {
                            std::thread::yield_now();
                            continue;
                        }
                        Err(e) => panic!("{e}"),
                    };
                    assert_eq!(
                        holders.fetch_add(1, Ordering::SeqCst),
                        0,
                        "two holders of {} at once",
                        path.display()
                    );
                    let locked = nix::sys::stat::fstat(lock.as_fd().as_raw_fd()).unwrap();
                    let named = fs::symlink_metadata(&path).expect("the held file is at the path");
                    assert_eq!(
                        (named.dev(), named.ino()),
                        (locked.st_dev, locked.st_ino),
                        "the path names the file that is locked"
                    );
                    std::thread::yield_now();
                    holders.fetch_sub(1, Ordering::SeqCst);
                    lock.remove().expect("remove");
                    rounds += 1;
                }
            });
        }
    });
    assert!(!path.exists(), "the last holder removed it");
}
