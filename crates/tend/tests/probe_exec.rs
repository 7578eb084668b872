//! exec probes with a reaper like tend's: `waitpid(-1)` on SIGCHLD, every pid offered to
//! `ProbeChildren::reaped`. Every child of this test binary is a probe's (anything else
//! would be reaped from under its owner), and all tests share one `ProbeChildren`, since
//! any test's reaper may reap any test's child.

use std::future::Future;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid as NixPid;
use tend::daemon::probe::{try_once, ProbeChildren, ProbeContext};
use tend_core::Probe;
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::Instant;

fn children() -> ProbeChildren {
    static CHILDREN: OnceLock<ProbeChildren> = OnceLock::new();
    CHILDREN.get_or_init(ProbeChildren::new).clone()
}

fn ctx() -> ProbeContext {
    ProbeContext {
        cwd: None,
        env: Vec::new(),
        children: children(),
        runs_as: None,
    }
}

/// Runs `test` with a reaper beside it, as tend's driver reaps: on SIGCHLD (the stream exists
/// before anything is spawned), `waitpid(-1)` until nothing is left, each pid offered to the
/// probes first.
async fn with_reaper<F: Future>(test: F) -> F::Output {
    let children = children();
    let mut sigchld = signal(SignalKind::child()).expect("SIGCHLD stream");
    let reaper = async move {
        loop {
            while let Some((pid, status)) = tend_os::reap_one().expect("waitpid") {
                // Not a probe's: nothing else of this binary spawns, but say so if it did.
                if !children.reaped(pid, status) {
                    eprintln!("reaped {pid}, which no probe spawned");
                }
            }
            sigchld.recv().await;
        }
    };
    tokio::select! {
        out = test => out,
        _ = reaper => unreachable!("the reaper never ends"),
    }
}

fn exec(words: &[&str]) -> Probe {
    Probe::Exec(words.iter().map(|w| w.to_string()).collect())
}

/// Whether `pid` is gone: no process, not even a zombie, has it.
fn gone(pid: i32) -> bool {
    kill(NixPid::from_raw(pid), None) == Err(Errno::ESRCH)
}

/// The pids written to `file` by a probe (`echo $$ ... > file`), if it got that far.
fn pids_in(file: &Path) -> Option<Vec<i32>> {
    let text = std::fs::read_to_string(file).ok()?;
    let pids: Vec<i32> = text
        .split_whitespace()
        .map(|p| p.parse().expect("a pid"))
        .collect();
    (!pids.is_empty()).then_some(pids)
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn exit_zero_is_success_and_anything_else_says_what_happened() {
    with_reaper(async {
        let ctx = ctx();
        assert_eq!(try_once(&exec(&["true"]), SECOND * 10, &ctx).await, Ok(()));
        assert_eq!(
            try_once(&exec(&["false"]), SECOND * 10, &ctx).await,
            Err("exit code 1".to_owned())
        );
        assert_eq!(
            try_once(&exec(&["sh", "-c", "exit 7"]), SECOND * 10, &ctx).await,
            Err("exit code 7".to_owned())
        );
        assert_eq!(
            try_once(&exec(&["sh", "-c", "kill -9 $$"]), SECOND * 10, &ctx).await,
            Err("killed by SIGKILL".to_owned())
        );
        let err = try_once(&exec(&["/no/such/probe"]), SECOND * 10, &ctx)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            "cannot run: spawn /no/such/probe: no such file or directory"
        );
    })
    .await;
}

#[tokio::test]
async fn the_probe_runs_in_the_processes_cwd_and_environment_and_may_write() {
    with_reaper(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let dir = dir.path().canonicalize().expect("canonical");
        let ctx = ProbeContext {
            cwd: Some(dir.clone()),
            env: vec![
                ("WANT".into(), "yes".into()),
                ("DIR".into(), dir.display().to_string()),
            ],
            children: children(),
            runs_as: None,
        };
        let check = r#"test "$(pwd -P)" = "$DIR" && test "$WANT" = yes"#;
        assert_eq!(
            try_once(&exec(&["sh", "-c", check]), SECOND * 10, &ctx).await,
            Ok(())
        );
        // Output goes to /dev/null: a talkative probe is not killed by SIGPIPE.
        let talk = "seq 1 100000; seq 1 100000 >&2";
        assert_eq!(
            try_once(&exec(&["sh", "-c", talk]), SECOND * 10, &ctx).await,
            Ok(())
        );
        // stdin is /dev/null: a probe that reads gets EOF at once.
        assert_eq!(
            try_once(&exec(&["sh", "-c", "cat"]), SECOND * 10, &ctx).await,
            Ok(())
        );
    })
    .await;
}

/// Runs a probe that writes its pids to a file and would run for 30 s, `attempt` bounding it,
/// until one try got as far as writing them (a loaded machine may not start the shell within
/// a short timeout): returns the result, how long the try took, and the pids.
async fn until_pids_written<F, Fut>(
    script: &str,
    attempt: F,
) -> (Result<(), String>, Duration, Vec<i32>)
where
    F: Fn(Probe) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("pids");
    for _ in 0..5 {
        let _ = std::fs::remove_file(&file);
        let probe = exec(&[
            "sh",
            "-c",
            &script.replace("FILE", &file.display().to_string()),
        ]);
        let start = Instant::now();
        let result = attempt(probe).await;
        let took = start.elapsed();
        if let Some(pids) = pids_in(&file) {
            return (result, took, pids);
        }
    }
    panic!("in 5 tries, the probe never got as far as writing its pids");
}

#[tokio::test]
async fn a_probe_that_outlives_its_timeout_is_killed_and_reaped_promptly() {
    with_reaper(async {
        let ctx = ctx();
        let timeout = Duration::from_millis(200);
        let (result, took, pids) = until_pids_written("echo $$ > FILE; exec sleep 5", |probe| {
            let ctx = ctx.clone();
            async move { try_once(&probe, timeout, &ctx).await }
        })
        .await;
        assert_eq!(result, Err("timed out after 200ms".to_owned()));
        assert!(took >= timeout, "{took:?}");
        assert!(took < Duration::from_secs(2), "returned after {took:?}");
        // The sleep (the shell's pid, exec'd) was killed and reaped before try_once returned.
        assert!(gone(pids[0]), "{} is still there", pids[0]);
    })
    .await;
}

#[tokio::test]
async fn a_timeout_kills_the_whole_group_grandchildren_too() {
    with_reaper(async {
        let ctx = ctx();
        let timeout = Duration::from_millis(300);
        let (result, _, pids) = until_pids_written("sleep 30 & echo $$ $! > FILE; wait", |probe| {
            let ctx = ctx.clone();
            async move { try_once(&probe, timeout, &ctx).await }
        })
        .await;
        assert_eq!(result, Err("timed out after 300ms".to_owned()));
        assert!(gone(pids[0]), "the shell {} is still there", pids[0]);
        // The grandchild got the group's SIGKILL; whoever reaps it, it has exited.
        assert!(
            tend_os::wait_exit(pids[1], Duration::from_secs(10)).expect("pidfd"),
            "the grandchild {} still runs",
            pids[1]
        );
    })
    .await;
}

#[tokio::test]
async fn a_probe_that_exits_leaves_nothing_of_its_group_behind() {
    with_reaper(async {
        let ctx = ctx();
        let (result, _, pids) = until_pids_written("sleep 30 & echo $! > FILE", |probe| {
            let ctx = ctx.clone();
            async move { try_once(&probe, SECOND * 10, &ctx).await }
        })
        .await;
        assert_eq!(result, Ok(()));
        assert!(
            tend_os::wait_exit(pids[0], Duration::from_secs(10)).expect("pidfd"),
            "the probe's background sleep {} still runs",
            pids[0]
        );
    })
    .await;
}

#[tokio::test]
async fn a_dropped_try_kills_its_group() {
    with_reaper(async {
        let ctx = ctx();
        let (result, took, pids) = until_pids_written("echo $$ > FILE; exec sleep 30", |probe| {
            let ctx = ctx.clone();
            async move {
                // The caller gives up first (the driver dropping a probe task).
                let cut = Duration::from_millis(200);
                match tokio::time::timeout(cut, try_once(&probe, SECOND * 60, &ctx)).await {
                    Ok(result) => result,
                    Err(_) => Err("dropped".to_owned()),
                }
            }
        })
        .await;
        assert_eq!(result, Err("dropped".to_owned()));
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert!(
            tend_os::wait_exit(pids[0], Duration::from_secs(10)).expect("pidfd"),
            "the dropped probe's sleep {} still runs",
            pids[0]
        );
    })
    .await;
}
