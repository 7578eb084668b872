//! End to end: the daemon's own log, tend.log, is rotated like a default child log (10 MiB,
//! 5 old files), and fds 1 and 2 of the daemon follow the fresh file.

mod common;

use std::fs;

use common::daemon::Daemon;
use common::*;

#[test]
fn tend_log_is_rotated_and_stdout_and_stderr_follow_it() {
    let dir = project("[process.web]\ncommand = [\"sleep\", \"600\"]\n");
    let logs = dir.path().join(".tend/logs");
    fs::create_dir_all(&logs).unwrap();
    // A tend.log just below 10 MiB: the first notices take it over.
    let filler = vec![b'x'; 10 * 1024 * 1024 - 10];
    fs::write(logs.join("tend.log"), &filler).unwrap();
    fs::set_permissions(
        logs.join("tend.log"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let daemon = Daemon::start_in(dir);
    daemon.wait_state("web.0", "running");
    assert_eq!(daemon.tend(&["stop", "web"]).code, Some(0));
    let rotated = logs.join("tend.log.1");
    eventually("tend.log is rotated and written again", || {
        fs::read_to_string(logs.join("tend.log")).is_ok_and(|t| t.contains("web.0 stopping"))
    });
    let old = fs::read(&rotated).unwrap();
    assert!(
        old.starts_with(&filler),
        "the old content moved to tend.log.1"
    );
    let current = fs::metadata(logs.join("tend.log")).unwrap().len();
    assert!(current < 1024 * 1024, "a fresh tend.log: {current} bytes");
    for fd in [1, 2] {
        let target = fs::read_link(format!("/proc/{}/fd/{fd}", daemon.pid)).unwrap();
        assert_eq!(target, logs.join("tend.log"), "fd {fd}");
    }
}

/// The processes running `tend` with `config` in their command line, but `except`: what is
/// left of a `tend -c CONFIG up -d` (its daemon outlives the command, in a session of its own).
fn tends_of(config: &std::path::Path, except: i32) -> Vec<i32> {
    let config = config.as_os_str().as_encoded_bytes();
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let mut args = cmdline.split(|&b| b == 0);
        let is_tend = args.next() == Some(tend_bin().as_bytes());
        if is_tend && pid != except && args.any(|a| a == config) && is_running(pid) {
            found.push(pid);
        }
    }
    found
}

#[test]
fn a_refused_second_up_tells_its_caller_and_writes_nothing_into_the_running_tend_log() {
    let daemon = Daemon::start("[process.web]\ncommand = [\"sleep\", \"600\"]\n");
    let log = daemon.path(".tend/logs/tend.log");
    // Its last notice until something happens.
    eventually("tend.log tells web.0 is running", || {
        fs::read_to_string(&log).is_ok_and(|t| t.contains("web.0 is running"))
    });
    let before = fs::read(&log).unwrap();

    let again = daemon.tend(&["up", "-d"]);
    assert_eq!(again.code, Some(1), "{again:?}");
    assert!(again.stderr.contains("already running"), "{again:?}");
    assert!(
        again.stderr.contains(&format!("(pid {})", daemon.pid)),
        "{again:?}"
    );
    // Its daemon may outlive `tend up -d` by a moment: wait until it is gone, so that
    // whatever it wrote is in the file.
    eventually("the refused daemon exits", || {
        tends_of(&daemon.config(), daemon.pid).is_empty()
    });
    assert_eq!(
        String::from_utf8_lossy(&fs::read(&log).unwrap()),
        String::from_utf8_lossy(&before),
        "tend.log changed"
    );
    assert!(daemon.alive());
    daemon.wait_state("web.0", "running");
}
