//! End to end, runtime operations with real processes: `retry_after`, `tend scale`,
//! `tend reload --dry-run` and the plan a reload prints, and env files read again (by a
//! reload, and by `tend restart`).

mod common;

use std::process::Command;

use common::daemon::Daemon;
use common::*;

fn pid_of(d: &Daemon, name: &str) -> u64 {
    d.wait_state(name, "running")["pid"].as_u64().unwrap()
}

fn names(d: &Daemon) -> Vec<String> {
    d.status()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_failed_process_is_tried_again_after_retry_after() {
    // Fails its first two runs (a run and its one restart: failed), then runs: the retry
    // after retry_after is what brings it up.
    let d = Daemon::start(
        r#"
[process.flaky]
command = 'n=$(cat tries 2>/dev/null || echo 0); echo $((n+1)) > tries; [ "$n" -ge 2 ] && exec sleep 1000; exit 1'
shell = true
cwd = "."
autostart = false
start_secs = "100ms"
backoff = { initial = "0s", max = "0s", factor = 1.0 }
max_restarts = { count = 1, within = "60s" }
retry_after = "1s"
"#,
    );
    let start = d.tend(&["start", "flaky"]);
    assert_eq!(start.code, Some(1), "it fails at first: {start:?}");
    let failed = d.instance("flaky.0");
    // It may have been retried already on a slow machine; if not, status says when.
    if failed["state"] == "failed" {
        let due = failed["retry_in_ms"].as_u64().expect("retry_in_ms");
        assert!(due <= 1000, "{failed}");
        let table = d.tend(&["status"]);
        assert!(table.stdout.contains("failed, retry in"), "{table:?}");
    }
    let up = d.wait_state("flaky.0", "running");
    assert!(up.get("retry_in_ms").is_none(), "{up}");
    assert_eq!(
        std::fs::read_to_string(d.path("tries")).unwrap().trim(),
        "3"
    );
    let log = std::fs::read_to_string(d.path(".tend/logs/tend.log")).unwrap_or_default();
    assert!(
        log.contains("flaky.0 is tried again: 1s passed since it failed (retry_after)"),
        "{log}"
    );
    assert!(log.contains("tried again in 1s by retry_after"), "{log}");
}

#[test]
fn scale_adds_and_stops_instances_until_the_next_reload() {
    let d = Daemon::start(
        "[process.web]\ncommand = [\"sleep\", \"1000\"]\nreplicas = 2\nstart_secs = \"100ms\"\n",
    );
    let first = [pid_of(&d, "web.0"), pid_of(&d, "web.1")];

    let up = d.tend(&["scale", "web=4"]);
    assert_eq!(up.code, Some(0), "{up:?}");
    assert!(up.stdout.contains("web: 2 → 4 instances"), "{up:?}");
    assert!(up.stdout.contains("until the next reload"), "{up:?}");
    let added = [pid_of(&d, "web.2"), pid_of(&d, "web.3")];
    assert_eq!([pid_of(&d, "web.0"), pid_of(&d, "web.1")], first, "kept");
    eventually("the scale in tend.log", || {
        std::fs::read_to_string(d.path(".tend/logs/tend.log"))
            .is_ok_and(|log| log.contains("scale: web 2 → 4 instances (until the next reload)"))
    });

    let down = d.tend(&["scale", "web=1"]);
    assert_eq!(down.code, Some(0), "{down:?}");
    assert!(down.stdout.contains("web: 4 → 1 instance\n"), "{down:?}");
    eventually("web.1 to web.3 gone", || names(&d) == ["web.0"]);
    for pid in added.iter().chain(&first[1..]) {
        eventually("the stopped instances' processes end", || {
            !is_running(*pid as i32)
        });
    }
    assert_eq!(pid_of(&d, "web.0"), first[0]);

    // Refusals change nothing.
    let instance = d.tend(&["scale", "web.0=3"]);
    assert_eq!(instance.code, Some(2), "{instance:?}");
    assert!(
        instance.stderr.contains("scale takes processes"),
        "{instance:?}"
    );
    let unknown = d.tend(&["scale", "web=2", "nope=1"]);
    assert_eq!(unknown.code, Some(2), "{unknown:?}");
    let absurd = d.tend(&["scale", "web=10001"]);
    assert_eq!(absurd.code, Some(2), "{absurd:?}");
    assert_eq!(names(&d), ["web.0"]);

    // To 0 and back: the process stays known.
    assert_eq!(d.tend(&["scale", "web=0"]).code, Some(0));
    eventually("no instance", || names(&d).is_empty());
    assert_eq!(d.tend(&["scale", "web=1"]).code, Some(0));
    pid_of(&d, "web.0");

    // The next reload applies the config's replicas again, and says so.
    let reload = d.tend(&["reload"]);
    assert_eq!(reload.code, Some(0), "{reload:?}");
    assert!(
        reload.stdout.contains("  scale      web: replicas 1 → 2"),
        "{reload:?}"
    );
    pid_of(&d, "web.1");
}

const PLANNED: &str = r#"
[process.web]
command = ["sleep", "1000"]
env = { PORT = "8000", TOKEN = "s3cret" }
start_secs = "100ms"

[process.worker]
command = ["sleep", "1001"]
start_secs = "100ms"

[process.old]
command = ["sleep", "1002"]
start_secs = "100ms"
"#;

#[test]
fn reload_dry_run_shows_the_plan_and_changes_nothing() {
    let d = Daemon::start(PLANNED);
    let before: Vec<(String, u64)> = ["web.0", "worker.0", "old.0"]
        .iter()
        .map(|n| (n.to_string(), pid_of(&d, n)))
        .collect();
    let edited = PLANNED
        .replace("TOKEN = \"s3cret\"", "TOKEN = \"changed\", DEBUG = \"1\"")
        .replace("[\"sleep\", \"1000\"]", "[\"sleep\", \"999\"]")
        .replace(
            "[process.old]\ncommand = [\"sleep\", \"1002\"]\nstart_secs = \"100ms\"\n",
            "[process.new]\ncommand = [\"sleep\", \"1003\"]\n",
        );
    std::fs::write(d.config(), &edited).unwrap();

    let plan = d.tend(&["reload", "--dry-run"]);
    assert_eq!(plan.code, Some(0), "{plan:?}");
    let expected = "  start      new\n  \
                    restart    web: command, env (DEBUG, TOKEN)\n  \
                    stop       old\n  \
                    unchanged  worker\n";
    assert!(
        plan.stdout.starts_with(
            "a reload would do (dry run, nothing changed): 1 added (new), 1 changed (web), 1 \
             removed (old), 1 unchanged\n"
        ),
        "{plan:?}"
    );
    assert!(plan.stdout.ends_with(expected), "{plan:?}");
    assert!(
        !plan.stdout.contains("s3cret") && !plan.stdout.contains("changed\""),
        "never values: {plan:?}"
    );
    // Nothing changed: the same instances, with the same pids.
    let now: Vec<(String, u64)> = d
        .status()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_owned(),
                i["pid"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(now, before);

    // A real reload prints the same plan, and does it.
    let reload = d.tend(&["reload"]);
    assert_eq!(reload.code, Some(0), "{reload:?}");
    assert!(
        reload.stdout.starts_with(
            "reloaded: 1 added (new), 1 changed (web), 1 removed (old), 1 unchanged\n"
        ),
        "{reload:?}"
    );
    assert!(reload.stdout.ends_with(expected), "{reload:?}");
    pid_of(&d, "new.0");
    eventually("old gone", || !names(&d).contains(&"old.0".to_owned()));
    assert_ne!(pid_of(&d, "web.0"), before[0].1, "web restarted");
    assert_eq!(pid_of(&d, "worker.0"), before[1].1, "worker left alone");
}

const GREETER: &str = r#"
[process.web]
command = 'echo "greeting: $GREETING"; exec sleep 1000'
shell = true
env_file = ".env"
start_secs = "100ms"
"#;

/// Waits until web's log has the line `greeting: WORD`.
fn wait_greeting(d: &Daemon, word: &str) {
    let line = format!("greeting: {word}");
    eventually(&format!("web printed {line:?}"), || {
        std::fs::read_to_string(d.path(".tend/logs/web.0.log"))
            .is_ok_and(|log| log.lines().any(|l| l == line))
    });
}

#[test]
fn an_edited_env_file_restarts_the_process_on_reload() {
    let dir = project(GREETER);
    std::fs::write(dir.path().join(".env"), "GREETING=hello\n").unwrap();
    let d = Daemon::start_in(dir);
    let first = pid_of(&d, "web.0");
    wait_greeting(&d, "hello");

    // Nothing changed yet: nothing restarts.
    let same = d.tend(&["reload"]);
    assert!(same.stdout.contains("  unchanged  web"), "{same:?}");
    assert_eq!(pid_of(&d, "web.0"), first);

    std::fs::write(d.path(".env"), "GREETING=bye\n").unwrap();
    let reload = d.tend(&["reload"]);
    assert_eq!(reload.code, Some(0), "{reload:?}");
    assert!(
        reload.stdout.contains("  restart    web: env (GREETING)"),
        "{reload:?}"
    );
    assert!(!reload.stdout.contains("bye"), "never values: {reload:?}");
    wait_greeting(&d, "bye");
    assert_ne!(pid_of(&d, "web.0"), first);
}

#[test]
fn restart_reads_the_env_file_again_and_a_bad_one_changes_nothing() {
    let dir = project(GREETER);
    std::fs::write(dir.path().join(".env"), "GREETING=hello\n").unwrap();
    let d = Daemon::start_in(dir);
    let first = pid_of(&d, "web.0");
    wait_greeting(&d, "hello");

    std::fs::write(d.path(".env"), "GREETING=bye\n").unwrap();
    let restart = d.tend(&["restart", "web"]);
    assert_eq!(restart.code, Some(0), "{restart:?}");
    wait_greeting(&d, "bye");
    let second = pid_of(&d, "web.0");
    assert_ne!(second, first);

    std::fs::write(d.path(".env"), "GREETING=ok\nthis is not a variable\n").unwrap();
    let bad = d.tend(&["restart", "web"]);
    assert_eq!(bad.code, Some(1), "{bad:?}");
    assert!(
        bad.stderr.contains(".env:2: expected KEY=VALUE")
            && bad.stderr.contains("nothing was restarted"),
        "{bad:?}"
    );
    assert_eq!(pid_of(&d, "web.0"), second, "still the same run");

    // The env file read again is what the next reload reads too: nothing left to change.
    std::fs::write(d.path(".env"), "GREETING=bye\n").unwrap();
    let reload = d.tend(&["reload"]);
    assert!(reload.stdout.contains("  unchanged  web"), "{reload:?}");
    assert_eq!(pid_of(&d, "web.0"), second);
}

/// The descriptors tend holds open.
fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn scaling_down_stopped_instances_closes_their_log_files() {
    let d = Daemon::start("[process.web]\ncommand = [\"sleep\", \"1000\"]\nstart_secs = \"0s\"\n");
    pid_of(&d, "web.0");
    assert_eq!(d.tend(&["scale", "web=21"]).code, Some(0));
    pid_of(&d, "web.20");
    assert_eq!(d.tend(&["stop", "web"]).code, Some(0));
    eventually("every web stopped", || {
        d.status().iter().all(|i| i["state"] == "stopped")
    });
    let before = open_fds(d.pid);
    assert_eq!(d.tend(&["scale", "web=1"]).code, Some(0));
    eventually("web.1 to web.20 gone", || names(&d) == ["web.0"]);
    // Two log files for each of the 20 instances retired without a run.
    let after = open_fds(d.pid);
    assert!(after + 40 <= before, "{before} → {after} descriptors");
}

#[test]
fn restarting_one_instance_on_a_new_env_leaves_the_others_to_the_next_reload() {
    let dir = project(&GREETER.replace("start_secs", "replicas = 2\nstart_secs"));
    std::fs::write(dir.path().join(".env"), "GREETING=hello\n").unwrap();
    let d = Daemon::start_in(dir);
    let first = pid_of(&d, "web.0");
    pid_of(&d, "web.1");
    std::fs::write(d.path(".env"), "GREETING=bye\n").unwrap();
    assert_eq!(d.tend(&["restart", "web.1"]).code, Some(0));
    assert_eq!(pid_of(&d, "web.0"), first, "only web.1 restarted");
    // web.0 still has the env it was started with: the reload says so and restarts it.
    let reload = d.tend(&["reload"]);
    assert!(
        reload.stdout.contains("  restart    web: env (GREETING)"),
        "{reload:?}"
    );
    wait_greeting(&d, "bye");
    assert_ne!(pid_of(&d, "web.0"), first);
}

#[test]
fn scale_refuses_a_name_given_twice_and_a_count_that_is_not_a_number() {
    let d =
        Daemon::start("[process.web]\ncommand = [\"sleep\", \"1000\"]\nstart_secs = \"100ms\"\n");
    pid_of(&d, "web.0");

    // Not the last of the two silently: which one was meant is not for tend to guess.
    let twice = d.tend(&["scale", "web=2", "web=4"]);
    assert_eq!(twice.code, Some(2), "{twice:?}");
    assert!(
        twice.stderr.contains("web is given twice (web=2, web=4)"),
        "{twice:?}"
    );
    assert_eq!(names(&d), ["web.0"], "nothing changed");

    for (pair, why) in [
        ("web=x", "\"x\" is not a number"),
        ("web=", "no count after ="),
        ("web=1.5", "\"1.5\" is not a number"),
        ("web=-1", "the count must be 0 to 10000"),
        ("web=10001", "the count must be 0 to 10000"),
    ] {
        let ran = d.tend(&["scale", pair]);
        assert_eq!(ran.code, Some(2), "{pair}: {ran:?}");
        assert!(ran.stderr.contains(why), "{pair}: {ran:?}");
    }
    let x = d.tend(&["scale", "web=x"]);
    assert!(!x.stderr.contains("must be 0 to"), "{x:?}");
    assert_eq!(names(&d), ["web.0"], "nothing changed");
}

/// `tend up -d` of `config` in `d`'s directory, started by a shell that set the open-files
/// limit (soft and hard) to `nofile` first.
fn up_with_nofile(d: &Daemon, nofile: u32) -> common::Ran {
    let up = d.command(&["up", "-d"]);
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -n {nofile} && exec \"$@\""))
        .arg("sh")
        .arg(up.get_program())
        .args(up.get_args())
        .current_dir(d.dir.path())
        .env_remove("TEND_CONFIG");
    run_with_deadline(cmd)
}

/// A project of `config` with no tend started yet (its `pid` is set by whoever starts one).
fn not_started(config: &str) -> Daemon {
    Daemon {
        dir: project(config),
        pid: 0,
        runtime_dir: None,
    }
}

/// [`up_with_nofile`] of `config`, which must start.
fn start_with_nofile(config: &str, nofile: u32) -> Daemon {
    let mut d = not_started(config);
    let ran = up_with_nofile(&d, nofile);
    assert_eq!(ran.code, Some(0), "tend up -d failed: {ran:?}");
    d.pid = std::fs::read_to_string(d.path("tend.sock.lock"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    d
}

#[test]
fn scale_refuses_more_instances_than_the_open_files_limit_holds() {
    // 200 open files: tend's own 64 and 4 for each instance (two pipes, two log files) hold
    // 34 instances. Before, web=100 was taken, and the spawns past the limit failed with
    // "Too many open files", again and again.
    let d = start_with_nofile(
        "[process.web]\ncommand = [\"sleep\", \"1000\"]\nstart_secs = \"100ms\"\n",
        200,
    );
    pid_of(&d, "web.0");
    let refused = d.tend(&["scale", "web=100"]);
    assert_eq!(refused.code, Some(2), "{refused:?}");
    for what in [
        "web=100: 100 instances in all would need about 464 open files",
        "more than tend's limit of 200 (RLIMIT_NOFILE)",
        "scale to at most web=34",
        "`ulimit -n` before `tend up`, or LimitNOFILE=",
    ] {
        assert!(refused.stderr.contains(what), "{what:?}: {refused:?}");
    }
    assert_eq!(names(&d), ["web.0"], "nothing changed");

    // What fits is taken, and runs.
    let fits = d.tend(&["scale", "web=30"]);
    assert_eq!(fits.code, Some(0), "{fits:?}");
    for n in 0..30 {
        pid_of(&d, &format!("web.{n}"));
    }
    let restarts: u64 = d
        .status()
        .iter()
        .map(|i| i["restarts"].as_u64().unwrap())
        .sum();
    assert_eq!(restarts, 0, "no spawn failed");
    // Down is never refused.
    let down = d.tend(&["scale", "web=1"]);
    assert_eq!(down.code, Some(0), "{down:?}");
}

#[test]
fn up_and_reload_refuse_more_instances_than_the_open_files_limit_holds() {
    // Before, `tend up` started 46 of 100 and the rest failed their spawns with "Too many
    // open files", again and again.
    let d = not_started("[process.web]\ncommand = [\"sleep\", \"1000\"]\nreplicas = 100\n");
    // `tend check` from the same shell says so, and still validates the config.
    let mut check = Command::new("sh");
    check
        .arg("-c")
        .arg("ulimit -n 200 && exec \"$0\" check")
        .arg(tend_bin())
        .current_dir(d.dir.path())
        .env_remove("TEND_CONFIG");
    let checked = run_with_deadline(check);
    assert_eq!(checked.code, Some(0), "{checked:?}");
    assert!(
        checked.stderr.contains(
            "tend: warning: the 100 instances `tend up` starts would need about 464 open files, \
             more than the hard RLIMIT_NOFILE here (200)"
        ),
        "{checked:?}"
    );
    let refused = up_with_nofile(&d, 200);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    for what in [
        "cannot start this config: the 100 instances it starts would need about 464 open files",
        "more than tend's limit of 200 (RLIMIT_NOFILE)",
        "at most about 34 instances",
        "`ulimit -n` before `tend up`, or LimitNOFILE=",
    ] {
        assert!(refused.stderr.contains(what), "{what:?}: {refused:?}");
    }
    let status = d.tend(&["status"]);
    assert_eq!(status.code, Some(3), "no tend runs: {status:?}");
    let logs: Vec<_> = std::fs::read_dir(d.path(".tend/logs"))
        .map(|dir| dir.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        !logs.iter().any(|f| f.to_string_lossy().starts_with("web.")),
        "no instance was started: {logs:?}"
    );

    // What `tend up` does not start is not counted: the same 100 with autostart off start
    // (a `tend start web` then meets the limit, spawn by spawn); pulled in as the dependency
    // of one that starts, they count again.
    let lazy = start_with_nofile(
        "[process.web]\ncommand = [\"sleep\", \"1000\"]\nreplicas = 100\nautostart = false\n",
        200,
    );
    assert_eq!(lazy.tend(&["down"]).code, Some(0));
    let pulled = not_started(
        "[process.web]\ncommand = [\"sleep\", \"1000\"]\nreplicas = 100\n\
         autostart = false\n\n[process.proxy]\ncommand = [\"sleep\", \"1000\"]\n\
         depends_on = [\"web\"]\n",
    );
    let ran = up_with_nofile(&pulled, 200);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(
        ran.stderr.contains("the 101 instances it starts"),
        "{ran:?}"
    );

    // Under the limit, it starts; a reload past it is refused and changes nothing.
    let d = start_with_nofile("[process.web]\ncommand = [\"sleep\", \"1000\"]\n", 200);
    pid_of(&d, "web.0");
    std::fs::write(
        d.config(),
        "[process.web]\ncommand = [\"sleep\", \"1000\"]\nreplicas = 100\n",
    )
    .unwrap();
    let reload = d.tend(&["reload"]);
    assert_eq!(reload.code, Some(78), "{reload:?}");
    assert!(
        reload.stderr.contains(
            "cannot reload this config: the 100 instances it starts would need about 464"
        ),
        "{reload:?}"
    );
    assert_eq!(names(&d), ["web.0"], "nothing changed");

    // A tend already past its limit (lowered under it by prlimit) may still reload to fewer:
    // never refused for needing less than now, as a scale down is not.
    let d = start_with_nofile(
        "[process.web]\ncommand = [\"sleep\", \"1000\"]\nreplicas = 30\n",
        200,
    );
    for n in 0..30 {
        pid_of(&d, &format!("web.{n}"));
    }
    let mut lower = Command::new("prlimit");
    lower
        .arg(format!("--pid={}", d.pid))
        .arg("--nofile=170:170");
    assert_eq!(run_with_deadline(lower).code, Some(0));
    std::fs::write(
        d.config(),
        "[process.web]\ncommand = [\"sleep\", \"1000\"]\nreplicas = 28\n",
    )
    .unwrap();
    let reload = d.tend(&["reload"]);
    assert_eq!(reload.code, Some(0), "{reload:?}");
    eventually("web.28 and web.29 retired", || names(&d).len() == 28);
}

#[test]
fn start_refuses_more_instances_than_the_open_files_limit_holds() {
    // 100 instances that `tend up` leaves stopped: starting them all would need 464 open
    // files under a limit of 200. Before, the spawns past the limit failed again and again.
    let d = start_with_nofile(
        "[process.web]\ncommand = [\"sleep\", \"1000\"]\nreplicas = 100\nautostart = false\n\
         start_secs = \"100ms\"\n",
        200,
    );
    let refused = d.tend(&["start", "web"]);
    assert_eq!(refused.code, Some(2), "{refused:?}");
    for what in [
        "starting web.0 web.1 web.2 and 97 more would make 100 instances run",
        "about 464 open files",
        "more than tend's limit of 200 (RLIMIT_NOFILE)",
    ] {
        assert!(refused.stderr.contains(what), "{what:?}: {refused:?}");
    }
    // A restart starts what is not up: refused the same way.
    let restart = d.tend(&["restart", "--no-wait", "web"]);
    assert_eq!(restart.code, Some(2), "{restart:?}");
    assert!(
        restart.stderr.contains("would make 100 instances run"),
        "{restart:?}"
    );
    assert!(
        d.status().iter().all(|i| i["state"] == "stopped"),
        "nothing started"
    );
    // What fits starts, and runs.
    let fits = d.tend(&["start", "web.0", "web.1"]);
    assert_eq!(fits.code, Some(0), "{fits:?}");
    pid_of(&d, "web.0");
    pid_of(&d, "web.1");
}

#[test]
fn a_scale_keeps_the_log_counters_and_files_of_the_instances_it_keeps() {
    let d = Daemon::start(
        "[process.web]\ncommand = \"echo hello; exec sleep 1000\"\nshell = true\n\
         start_secs = \"100ms\"\n",
    );
    let first = pid_of(&d, "web.0");
    eventually("hello counted", || d.instance("web.0")["log_bytes"] == 6);
    assert_eq!(d.tend(&["scale", "web=2"]).code, Some(0));
    assert_eq!(d.tend(&["restart", "web.0"]).code, Some(0));
    eventually("web.0 restarted", || {
        d.instance("web.0")["pid"]
            .as_u64()
            .is_some_and(|pid| pid != first)
    });
    // Before, the restart after the scale reopened web.0's log files: the count began again
    // at 6, and the file had a second writer while the first one's drainer was still there.
    eventually("both hellos counted", || {
        d.instance("web.0")["log_bytes"] == 12
    });
    let log = std::fs::read_to_string(d.path(".tend/logs/web.0.log")).unwrap();
    assert_eq!(log, "hello\nhello\n");
}

const DB_AND_WEB: &str = r#"
[process.db]
command = ["sleep", "1000"]
start_secs = "100ms"

[process.web]
command = ["sleep", "1001"]
depends_on = ["db"]
start_secs = "100ms"
"#;

#[test]
fn a_dependent_of_a_process_scaled_to_zero_says_to_scale_it_not_to_start_it() {
    let d = Daemon::start(DB_AND_WEB);
    pid_of(&d, "db.0");
    pid_of(&d, "web.0");
    assert_eq!(d.tend(&["scale", "db=0"]).code, Some(0));
    eventually("db has no instance", || names(&d) == ["web.0"]);

    // web waits for db, which has no instance: `tend start db` would do nothing.
    let restart = d.tend(&["restart", "web"]);
    assert_eq!(restart.code, Some(1), "{restart:?}");
    let told = "web.0 waits for db to be started, but db has no instances (`tend scale db=N`";
    assert!(restart.stderr.contains(told), "{restart:?}");
    assert!(!restart.stderr.contains("tend start db"), "{restart:?}");
    let waiting = d.instance("web.0");
    assert_eq!(waiting["state"], "waiting", "{waiting}");
    assert_eq!(waiting["waiting_for"][0]["no_instances"], true, "{waiting}");
    let table = d.tend(&["status"]);
    assert!(
        table
            .stdout
            .contains("waiting for: db started (db has no instances: `tend scale db=N`)"),
        "{table:?}"
    );
    let log = std::fs::read_to_string(d.path(".tend/logs/tend.log")).unwrap();
    assert!(
        log.contains(
            "web.0 waits for db to be started, but db has no instances (`tend scale db=N`)"
        ),
        "{log}"
    );
    assert!(!log.contains("`tend start db` tries it again"), "{log}");

    // Scaled back, db starts and web follows.
    assert_eq!(d.tend(&["scale", "db=1"]).code, Some(0));
    pid_of(&d, "web.0");
}

#[test]
fn start_stop_and_restart_of_a_process_without_instances_say_so() {
    let d = Daemon::start(DB_AND_WEB);
    pid_of(&d, "db.0");
    let web = pid_of(&d, "web.0");
    assert_eq!(d.tend(&["scale", "db=0"]).code, Some(0));
    eventually("db has no instance", || names(&d) == ["web.0"]);

    // Nothing to do is not an error (as `tend signal` to nothing), but it is said.
    for verb in ["start", "restart"] {
        let ran = d.tend(&[verb, "db"]);
        assert_eq!(ran.code, Some(0), "{verb}: {ran:?}");
        assert_eq!(
            ran.stdout, "db has no instances (scaled to 0): `tend scale db=1` starts one\n",
            "{verb}: {ran:?}"
        );
    }
    let stop = d.tend(&["stop", "db"]);
    assert_eq!(stop.code, Some(0), "{stop:?}");
    assert_eq!(
        stop.stdout, "db has no instances (scaled to 0): nothing to stop\n",
        "{stop:?}"
    );
    // With a process that has instances: its lines, then the note.
    let both = d.tend(&["stop", "web", "db"]);
    assert_eq!(both.code, Some(0), "{both:?}");
    assert_eq!(
        both.stdout, "web.0 stopped\ndb has no instances (scaled to 0): nothing to stop\n",
        "{both:?}"
    );
    eventually("web's process ends", || !is_running(web as i32));
}

#[test]
fn status_shows_a_process_scaled_to_zero() {
    let d = Daemon::start(DB_AND_WEB);
    pid_of(&d, "db.0");
    pid_of(&d, "web.0");
    assert_eq!(d.tend(&["scale", "db=0"]).code, Some(0));
    eventually("db has no instance", || names(&d) == ["web.0"]);

    let table = d.tend(&["status"]);
    assert_eq!(table.code, Some(0), "{table:?}");
    assert!(table.stdout.contains("\nweb.0 "), "{table:?}");
    assert!(
        table.stdout.ends_with("\ndb: no instances (scaled to 0)\n"),
        "{table:?}"
    );
    let db = d.tend(&["status", "db"]);
    assert_eq!(db.code, Some(0), "{db:?}");
    assert!(
        db.stdout.ends_with("\ndb: no instances (scaled to 0)\n"),
        "{db:?}"
    );
    assert!(!db.stdout.contains("no processes"), "{db:?}");
    // --json stays a list of instances.
    let json = d.tend(&["status", "--json", "db"]);
    assert_eq!(json.stdout, "[]\n", "{json:?}");
    assert_eq!(names(&d), ["web.0"]);

    assert_eq!(d.tend(&["scale", "web=0"]).code, Some(0));
    eventually("no instance at all", || names(&d).is_empty());
    let none = d.tend(&["status"]);
    assert!(
        none.stdout
            .ends_with("\ndb: no instances (scaled to 0)\nweb: no instances (scaled to 0)\n"),
        "{none:?}"
    );
    assert!(!none.stdout.contains("no processes"), "{none:?}");
}

const MIXED: &str = r#"
[process.web]
command = ["sleep", "1000"]
start_secs = "100ms"

[process.worker]
command = ["sleep", "1001"]
start_secs = "100ms"

[process.job]
command = ["true"]
restart = "never"

[process.off]
command = ["sleep", "1002"]
autostart = false
"#;

#[test]
fn the_reload_plan_tells_a_restart_from_a_change_that_waits_for_the_next_start() {
    let d = Daemon::start(MIXED);
    let web = pid_of(&d, "web.0");
    pid_of(&d, "worker.0");
    d.wait_state("job.0", "exited");
    let stop = d.tend(&["stop", "worker"]);
    assert_eq!(stop.code, Some(0), "{stop:?}");
    let edited = MIXED.replace("command = [\"", "command = [\"nice\", \"");
    std::fs::write(d.config(), edited).unwrap();

    // Before, each was `restart`, though only web restarts.
    let expected = "  restart    web: command\n  \
                    update     worker: command (not running: takes effect at its next start)\n  \
                    update     job: command (not running: takes effect at its next start)\n  \
                    update     off: command (not running: takes effect at its next start)\n";
    let plan = d.tend(&["reload", "--dry-run"]);
    assert_eq!(plan.code, Some(0), "{plan:?}");
    assert!(plan.stdout.ends_with(expected), "{plan:?}");
    // The JSON answer lists them in `not_running`.
    let answer = dry_run_answer(&d);
    assert_eq!(
        answer["ok"]["not_running"],
        serde_json::json!(["worker", "job", "off"]),
        "{answer}"
    );

    let reload = d.tend(&["reload"]);
    assert_eq!(reload.code, Some(0), "{reload:?}");
    assert!(
        reload.stdout.starts_with(
            "reloaded: 0 added, 4 changed (web, worker, job, off), 0 removed, 0 unchanged\n"
        ),
        "{reload:?}"
    );
    assert!(reload.stdout.ends_with(expected), "{reload:?}");
    // And so does its event, in tend.log (and `not_running` in its JSON).
    eventually("the reload in tend.log", || {
        std::fs::read_to_string(d.path(".tend/logs/tend.log"))
            .unwrap_or_default()
            .contains(
                "changed web (command), worker (command), job (command), off (command) \
                 (worker, job, off not running: takes effect at its next start); unchanged none",
            )
    });
    // As the plan said: web restarted, the others left as they were.
    eventually("web restarted", || {
        d.instance("web.0")["pid"]
            .as_u64()
            .is_some_and(|pid| pid != web)
    });
    let states: Vec<String> = d
        .status()
        .iter()
        .map(|i| {
            format!(
                "{} {}",
                i["name"].as_str().unwrap(),
                i["state"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        states[1..],
        ["worker.0 stopped", "job.0 exited", "off.0 stopped"]
    );
    let answer = dry_run_answer(&d);
    assert!(
        answer["ok"].get("not_running").is_none(),
        "nothing to change: {answer}"
    );
}

/// The raw JSON answer to `{"reload":{"dry_run":true}}`.
fn dry_run_answer(d: &Daemon) -> serde_json::Value {
    use std::io::{BufRead, Write};
    let mut conn = d.connect();
    writeln!(conn, r#"{{"hello":{{"protocol":2,"client":"test"}}}}"#).unwrap();
    writeln!(
        conn,
        r#"{{"id":1,"request":{{"reload":{{"dry_run":true}}}}}}"#
    )
    .unwrap();
    let mut lines = std::io::BufReader::new(conn).lines();
    lines.next().unwrap().unwrap();
    serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap()
}
