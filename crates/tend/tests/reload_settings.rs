//! End to end: a reload that changes a `[supervisor]` setting tend uses only from its start
//! (`log_dir`, `umask`, `cgroups`) is refused as a config error, with what changed and what to
//! do, and changes nothing; before, a new `log_dir` was taken without the checks of `tend up`
//! (a world-writable directory included), new runs logged there while running ones and
//! tend.log stayed in the old one, and `tend logs` looked in the new one.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::daemon::Daemon;
use common::eventually;

const PROCESS: &str =
    "[process.p]\ncommand = [\"sh\", \"-c\", \"echo hello from p; exec sleep 1000\"]\n";

/// `tend reload` (and `--dry-run`) of `config` fails with 78; the error of the reload.
fn refused(d: &Daemon, config: &str) -> String {
    fs::write(d.config(), config).unwrap();
    let dry = d.tend(&["reload", "--dry-run"]);
    assert_eq!(dry.code, Some(78), "{config}: {dry:?}");
    let ran = d.tend(&["reload"]);
    assert_eq!(ran.code, Some(78), "{config}: {ran:?}");
    assert_eq!(dry.stderr, ran.stderr, "the plan says what the reload says");
    ran.stderr
}

#[test]
fn a_reload_that_changes_a_setting_read_at_start_is_refused_and_changes_nothing() {
    let d = Daemon::start(PROCESS);
    let pid = d.wait_state("p.0", "running")["pid"].clone();
    let old_dir = d.path(".tend/logs");
    // Another process too, so that a reload that went through would show.
    let more = format!("{PROCESS}[process.q]\ncommand = [\"sleep\", \"1000\"]\n");

    // A directory anyone may write in: `tend up` refuses it, and so does a reload.
    let open = d.path("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let error = refused(&d, &format!("[supervisor]\nlog_dir = \"open\"\n{more}"));
    for says in [
        "tend.toml: supervisor.log_dir: changed from ",
        &format!("to {}", open.display()),
        "restart tend to change log_dir (`tend down`, then `tend up`), or set it back",
        "before that, fix what `tend up` would refuse: log dir",
        &format!("`chmod go-w {}` fixes that", open.display()),
    ] {
        assert!(error.contains(says), "{says:?} in {error}");
    }

    // A directory that would do at start is refused all the same, and not made.
    let elsewhere = d.path("elsewhere");
    let error = refused(
        &d,
        &format!("[supervisor]\nlog_dir = \"elsewhere\"\n{more}"),
    );
    assert!(
        error.contains(&format!(
            "supervisor.log_dir: changed from {} to {}",
            old_dir.display(),
            elsewhere.display()
        )) && error.contains("restart tend to change log_dir")
            && !error.contains("`tend up` would refuse"),
        "{error}"
    );
    assert!(!elsewhere.exists(), "a refused reload creates nothing");

    let error = refused(&d, &format!("[supervisor]\numask = \"027\"\n{more}"));
    assert!(
        error.contains("supervisor.umask: changed from \"022\" to \"027\"")
            && error.contains("restart tend to change umask"),
        "{error}"
    );
    let error = refused(&d, &format!("[supervisor]\ncgroups = false\n{more}"));
    assert!(
        error.contains("supervisor.cgroups: changed from true to false")
            && error.contains("restart tend to change cgroups"),
        "{error}"
    );

    // Nothing changed: the same run, no q, and the logs where they were.
    let status = d.status();
    assert_eq!(status.len(), 1, "{status:?}");
    assert_eq!(status[0]["pid"], pid, "{status:?}");
    let logs = d.tend(&["logs", "p"]);
    assert!(logs.stdout.contains("hello from p"), "{logs:?}");

    // The same settings, log_dir spelled out: the rest reloads.
    fs::write(
        d.config(),
        format!("[supervisor]\nlog_dir = \".tend/logs\"\numask = \"022\"\n{more}"),
    )
    .unwrap();
    let ran = d.tend(&["reload"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    d.wait_state("q.0", "running");
    assert_eq!(d.instance("p.0")["pid"], pid);
    eventually("q.0 logs in the log_dir tend started with", || {
        old_dir.join("q.0.log").exists()
    });
    assert!(
        fs::read_dir(&open).unwrap().next().is_none(),
        "nothing in open/"
    );
}
