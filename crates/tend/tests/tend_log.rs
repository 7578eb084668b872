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
