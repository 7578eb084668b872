//! End to end: files an attacker could plant. Logs are private, a symlink where tend writes is
//! refused (never followed), and a log directory others may write in is refused.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};

use common::daemon::Daemon;
use common::*;

const PRINTER: &str = r#"
[process.web]
command = ["sh", "-c", "echo secret; exec sleep 60"]
"#;

fn mode_of(path: &std::path::Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// `tend up -d` in `dir`, expected to fail; returns the project and what tend printed on
/// stderr. A daemon that starts after all is stopped (or killed) before the test fails.
fn up_fails(dir: tempfile::TempDir) -> (tempfile::TempDir, String) {
    let mut daemon = Daemon {
        dir,
        pid: 0,
        runtime_dir: None,
    };
    let ran = daemon.tend(&["up", "-d"]);
    if ran.code == Some(0) {
        let lock = daemon.path("tend.sock.lock");
        daemon.pid = fs::read_to_string(lock)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        panic!("tend up -d should have failed: {ran:?}");
    }
    // Hand the project back (pid 0: the Daemon's drop does nothing).
    let project = std::mem::replace(&mut daemon.dir, tempfile::TempDir::new().unwrap());
    (project, ran.stderr)
}

#[test]
fn child_logs_and_their_indexes_are_0600_by_default_and_0640_when_asked() {
    let daemon = Daemon::start(&format!(
        "{PRINTER}\n[process.shared]\ncommand = [\"sh\", \"-c\", \"echo hi; exec sleep 60\"]\nlog.mode = \"0640\"\n"
    ));
    let logs = daemon.path(".tend/logs");
    eventually("both processes wrote their line", || {
        fs::read_to_string(logs.join("web.0.log")).is_ok_and(|t| t.contains("secret"))
            && fs::read_to_string(logs.join("shared.0.log")).is_ok_and(|t| t.contains("hi"))
    });
    assert_eq!(mode_of(&logs.join("web.0.log")), 0o600);
    assert_eq!(mode_of(&logs.join("web.0.err.log")), 0o600);
    assert_eq!(mode_of(&logs.join("shared.0.log")), 0o640);
    // A fresh log's index is written within a second, or when `tend logs` reads it.
    assert_eq!(daemon.tend(&["logs"]).code, Some(0));
    assert_eq!(mode_of(&logs.join("web.0.log.idx")), 0o600);
    assert_eq!(mode_of(&logs.join("shared.0.log.idx")), 0o640);
    assert_eq!(mode_of(&logs.join("tend.log")), 0o600);
}

#[test]
fn a_symlink_planted_at_the_lock_file_is_refused_and_not_followed() {
    let dir = project(PRINTER);
    let victim = dir.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    symlink(&victim, dir.path().join("tend.sock.lock")).unwrap();
    let (dir, stderr) = up_fails(dir);
    assert!(stderr.contains("tend.sock.lock"), "{stderr}");
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert_eq!(
        fs::read_to_string(dir.path().join("victim")).unwrap(),
        "precious"
    );
}

#[test]
fn a_symlink_planted_at_tend_log_is_refused_and_not_followed() {
    let dir = project(PRINTER);
    let victim = dir.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    let logs = dir.path().join(".tend/logs");
    fs::create_dir_all(&logs).unwrap();
    symlink(&victim, logs.join("tend.log")).unwrap();
    let (dir, stderr) = up_fails(dir);
    assert!(stderr.contains("tend.log"), "{stderr}");
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert_eq!(
        fs::read_to_string(dir.path().join("victim")).unwrap(),
        "precious"
    );
}

#[test]
fn a_symlink_planted_at_a_child_log_is_refused_and_not_followed() {
    let dir = project(PRINTER);
    let victim = dir.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    let logs = dir.path().join(".tend/logs");
    fs::create_dir_all(&logs).unwrap();
    symlink(&victim, logs.join("web.0.log")).unwrap();
    let daemon = Daemon::start_in(dir);
    let deadline = std::time::Instant::now() + PATIENCE;
    let error = loop {
        let web = daemon.instance("web.0");
        if let Some(error) = web["last_exit"]["spawn_error"].as_str() {
            break error.to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "web.0 started: {web}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(error.contains("web.0.log"), "{error}");
    assert!(error.contains("symbolic link"), "{error}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
}

#[test]
fn a_symlink_planted_at_a_log_index_is_refused_and_not_followed() {
    let dir = project(PRINTER);
    let victim = dir.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    let logs = dir.path().join(".tend/logs");
    fs::create_dir_all(&logs).unwrap();
    symlink(&victim, logs.join("web.0.err.log.idx")).unwrap();
    let daemon = Daemon::start_in(dir);
    let deadline = std::time::Instant::now() + PATIENCE;
    let error = loop {
        let web = daemon.instance("web.0");
        if let Some(error) = web["last_exit"]["spawn_error"].as_str() {
            break error.to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "web.0 started: {web}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(error.contains("web.0.err.log.idx"), "{error}");
    assert!(error.contains("symbolic link"), "{error}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    // `tend logs` (which opens indexes with O_NOFOLLOW too) still answers.
    let logs = daemon.tend(&["logs", "--json", "web"]);
    assert_eq!(logs.code, Some(0), "{logs:?}");
}

#[test]
fn a_log_dir_others_may_write_in_is_refused() {
    for daemon_mode in [true, false] {
        let dir = project(PRINTER);
        let logs = dir.path().join(".tend/logs");
        fs::create_dir_all(&logs).unwrap();
        fs::set_permissions(&logs, fs::Permissions::from_mode(0o777)).unwrap();
        let stderr = if daemon_mode {
            up_fails(dir).1
        } else {
            let mut tend = Tend::up_in(dir, &[]);
            assert_ne!(tend.wait_exit().code(), Some(0));
            eventually("tend's error is read", || tend.stderr().contains("log dir"));
            tend.stderr()
        };
        assert!(stderr.contains(&logs.display().to_string()), "{stderr}");
        assert!(stderr.contains("0777"), "{stderr}");
        assert!(stderr.contains("chmod go-w"), "{stderr}");
    }
}

/// Tests that need root.
mod needs_root {
    use super::*;

    #[test]
    #[ignore = "needs root to chown: run with --ignored needs_root:: (CI does)"]
    fn a_log_dir_of_another_user_is_refused() {
        assert!(nix::unistd::getuid().is_root(), "needs root to chown");
        let dir = project(PRINTER);
        let logs = dir.path().join(".tend/logs");
        fs::create_dir_all(&logs).unwrap();
        std::os::unix::fs::chown(&logs, Some(65534), Some(65534)).unwrap();
        let (_dir, stderr) = up_fails(dir);
        assert!(stderr.contains(&logs.display().to_string()), "{stderr}");
        assert!(stderr.contains("owned by uid 65534"), "{stderr}");
    }
}
