//! tend against a hostile world: a parent that blocked or ignored signals, a terminal that
//! hangs up, a predecessor killed with SIGKILL, a process that stopped itself, a client that
//! never finishes its request, an answer larger than any line limit.

mod common;

use std::process::Command;

use common::daemon::{run_with_deadline, Daemon};
use common::{eventually, is_running, project, tend_bin, Tend};
use nix::sys::signal::Signal;

/// Python, which the issue's reproduction uses to start tend with signals blocked: it can set
/// the mask and exec in one go, which no shell builtin can.
const HOSTILE: &str = "import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT})
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
os.execv(sys.argv[1], sys.argv[1:])";

/// One process that exits 3 at once and is not restarted, one that runs until stopped.
const QUICK_AND_LONG: &str = r#"
[process.quick]
command = ["sh", "-c", "exit 3"]
restart = "never"

[process.long]
command = ["sleep", "1000"]
"#;

fn python3() -> Command {
    Command::new("python3")
}

#[test]
fn a_parent_that_blocked_and_ignored_signals_cannot_deafen_tend() {
    let dir = project(QUICK_AND_LONG);
    let config = dir.path().join("tend.toml");
    let mut cmd = python3();
    cmd.args(["-c", HOSTILE, tend_bin(), "-c"])
        .arg(&config)
        .arg("up");
    let mut tend = Tend::spawn(dir, cmd);
    // Reaped: with SIGCHLD blocked or ignored, the exit would never be seen.
    tend.wait_line("quick's exit", |l| {
        l.contains("quick.0 exited with status 3")
    });
    let long = tend.wait_line("long started", |l| l.contains("long.0 started"));
    let long = common::started_pid(&long).unwrap();
    // SIGTERM was blocked and ignored by the parent: tend must still stop on it.
    tend.signal(Signal::SIGTERM);
    let status = tend.wait_exit();
    assert!(status.success(), "{status:?}: {:#?}", tend.transcript());
    assert!(!is_running(long), "long.0 survived tend's stop");
}

#[test]
fn a_daemon_started_by_a_hostile_parent_reaps_and_stops() {
    let d_dir = project(QUICK_AND_LONG);
    let mut d = Daemon {
        dir: d_dir,
        pid: 0,
        runtime_dir: None,
    };
    let mut up = python3();
    up.args(["-c", HOSTILE])
        .arg(tend_bin())
        .args(d.command(&["up", "-d"]).get_args());
    up.current_dir(d.dir.path()).env("NO_COLOR", "1");
    let ran = run_with_deadline(up);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    d.pid = std::fs::read_to_string(d.path("tend.sock.lock"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let quick = d.wait_state("quick.0", "exited");
    assert_eq!(quick["last_exit"]["code"], 3, "{quick}");
    let long = d.wait_state("long.0", "running")["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(d.pid), Signal::SIGTERM).unwrap();
    d.wait_gone();
    assert!(!is_running(long), "long.0 survived the daemon's stop");
}

#[test]
fn a_hangup_stops_a_foreground_tend() {
    let mut tend = Tend::up("[process.long]\ncommand = [\"sleep\", \"1000\"]\n", &[]);
    let long = tend.wait_line("long started", |l| l.contains("long.0 started"));
    let long = common::started_pid(&long).unwrap();
    // The terminal closed: the kernel sends SIGHUP to the foreground job, which is tend.
    tend.signal(Signal::SIGHUP);
    let status = tend.wait_exit();
    assert!(status.success(), "{status:?}");
    tend.assert_printed("SIGHUP received: stopping everything");
    assert!(!is_running(long), "long.0 survived the hangup");
}

#[test]
fn nohup_makes_a_foreground_tend_ignore_hangups() {
    let dir = project("[process.long]\ncommand = [\"sleep\", \"1000\"]\n");
    let config = dir.path().join("tend.toml");
    let mut cmd = Command::new("nohup");
    cmd.arg(tend_bin()).arg("-c").arg(&config).arg("up");
    let mut tend = Tend::spawn(dir, cmd);
    tend.wait_line("long started", |l| l.contains("long.0 started"));
    tend.signal(Signal::SIGHUP);
    tend.wait_line("the hangup is ignored", |l| l.contains("SIGHUP ignored"));
    assert!(is_running(tend.pid()));
    tend.signal(Signal::SIGTERM);
    assert!(tend.wait_exit().success());
}

#[test]
fn a_stopped_process_is_woken_to_handle_its_stop_signal() {
    // The process catches SIGTERM, then stops itself. Without a SIGCONT after the SIGTERM, the
    // signal stays pending until the SIGKILL a minute later.
    let mut tend = Tend::up(
        r#"
[process.frozen]
command = '''trap 'echo got-term; exit 0' TERM; echo stopping; kill -STOP $$; echo woke'''
shell = true
stop_timeout = "60s"
"#,
        &[],
    );
    let started = tend.wait_line("frozen started", |l| l.contains("frozen.0 started"));
    let pid = common::started_pid(&started).unwrap();
    tend.wait_line("it stops itself", |l| l.ends_with("| stopping"));
    eventually("the process is stopped", || {
        common::proc_state_of(pid) == Some('T')
    });
    tend.signal(Signal::SIGTERM);
    tend.wait_line("it handled SIGTERM", |l| l.ends_with("| got-term"));
    assert!(tend.wait_exit().success());
    tend.assert_printed("frozen.0 exited with status 0");
}

/// Kills the process groups of `0` on drop, so that a failed test leaves no orphan behind.
struct KillGroupsOnDrop(Vec<i32>);

impl Drop for KillGroupsOnDrop {
    fn drop(&mut self) {
        for &pgid in &self.0 {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }
}

#[test]
fn the_next_tend_stops_what_a_killed_tend_left_running_before_starting_anything() {
    let mut d = Daemon::start(
        r#"
[process.plain]
command = ["sleep", "1000"]
replicas = 3

[process.family]
command = "sleep 1000 & sleep 1000 & wait"
shell = true
replicas = 2

[process.polite]
# `wait`, not a loop of `sleep 1` in the foreground: the shell would report the sleep's death by
# a signal on stderr, a pipe nobody reads since tend died, and die of SIGPIPE.
command = '''trap 'echo graceful > polite.done; exit 0' USR1; sleep 1000 & wait'''
shell = true
stop_signal = "SIGUSR1"
cwd = "."

[process.stubborn]
command = 'trap "" TERM; exec sleep 1000'
shell = true
stop_timeout = "300ms"
"#,
    );
    d.wait_state("polite.0", "running");
    d.wait_state("stubborn.0", "running");
    let groups: Vec<i32> = d
        .status()
        .iter()
        .map(|i| i["pid"].as_i64().unwrap() as i32)
        .collect();
    assert_eq!(groups.len(), 7);
    let _cleanup = KillGroupsOnDrop(groups.clone());
    eventually("the families have their grandchildren", || {
        common::descendants(d.pid).len() >= 7 + 2 * 2
    });
    let orphans = common::descendants(d.pid);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(d.pid), Signal::SIGKILL).unwrap();
    d.wait_gone();
    assert!(
        orphans.iter().all(|&p| is_running(p)),
        "the survivors live on after tend's death"
    );

    let up = d.tend(&["up", "-d"]);
    assert_eq!(up.code, Some(0), "{up:?}");
    assert!(
        up.stderr.contains("left behind (1 needed SIGKILL)"),
        "the user who ran `tend up -d` is told: {up:?}"
    );
    d.pid = std::fs::read_to_string(d.path("tend.sock.lock"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // By the time the new tend says it is up, nothing of the old one runs.
    let left: Vec<i32> = orphans.iter().copied().filter(|&p| is_running(p)).collect();
    assert!(left.is_empty(), "still running: {left:?}");
    assert_eq!(
        std::fs::read_to_string(d.path("polite.done"))
            .unwrap_or_default()
            .trim(),
        "graceful",
        "stopped by its own stop signal"
    );
    let log = std::fs::read_to_string(d.path(".tend/logs/tend.log")).unwrap();
    assert!(
        log.contains(&format!(
            "left {} processes running in 7 process groups",
            orphans.len()
        )),
        "{log}"
    );
    assert!(
        log.contains("stopped the 7 process groups left behind (1 needed SIGKILL)"),
        "{log}"
    );
    // And the new tend runs one of each instance, none of them old.
    eventually("everything runs again", || {
        d.status().iter().all(|i| i["state"] == "running")
    });
    let fresh: Vec<i32> = d
        .status()
        .iter()
        .map(|i| i["pid"].as_i64().unwrap() as i32)
        .collect();
    assert_eq!(fresh.len(), 7);
    assert!(fresh.iter().all(|p| !orphans.contains(p)));
}

#[test]
fn a_clean_exit_leaves_no_state_file() {
    let d = Daemon::start("[process.a]\ncommand = [\"sleep\", \"1000\"]\n");
    d.wait_state("a.0", "running");
    assert!(common::daemon::exists(&d.path("tend.sock.state")));
    let down = d.tend(&["down"]);
    assert_eq!(down.code, Some(0), "{down:?}");
    assert!(!common::daemon::exists(&d.path("tend.sock.state")));
}

#[test]
fn a_clean_exit_leaves_nothing_in_the_runtime_dir_and_the_next_up_starts() {
    // `--socket` in the project: its directory is this test's runtime dir.
    let mut d = Daemon::start("[process.a]\ncommand = [\"sleep\", \"1000\"]\n");
    let files = ["tend.sock", "tend.sock.lock", "tend.sock.state"];
    for round in 0..2 {
        d.wait_state("a.0", "running");
        for file in files {
            assert!(
                common::daemon::exists(&d.path(file)),
                "round {round}: {file} while it runs"
            );
        }
        let down = d.tend(&["down"]);
        assert_eq!(down.code, Some(0), "round {round}: {down:?}");
        // `down` returns once the daemon is gone.
        for file in files {
            assert!(
                !common::daemon::exists(&d.path(file)),
                "round {round}: {file} left behind"
            );
        }
        let up = d.tend(&["up", "-d"]);
        assert_eq!(up.code, Some(0), "round {round}: {up:?}");
        d.pid = std::fs::read_to_string(d.path("tend.sock.lock"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
    }
}

#[test]
fn a_request_begun_and_never_finished_is_dropped() {
    use std::io::{BufRead, BufReader, Write};
    let d = Daemon::start("[process.a]\ncommand = [\"sleep\", \"1000\"]\n");
    let mut stream = d.connect();
    stream
        .write_all(b"{\"hello\":{\"protocol\":2,\"client\":\"slowpoke\"}}\n{\"id\":1,")
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut hello = String::new();
    reader.read_line(&mut hello).unwrap();
    assert!(hello.contains("\"server\""), "{hello}");
    // The server gives up on the half request (10 s) well within the read timeout (20 s).
    let mut answer = String::new();
    reader.read_line(&mut answer).unwrap();
    assert!(
        answer.contains("bad_request") && answer.contains("not finished"),
        "{answer}"
    );
    let mut rest = String::new();
    assert_eq!(reader.read_line(&mut rest).unwrap(), 0, "closed: {rest}");
    // Meanwhile, and after, the daemon serves others.
    assert_eq!(d.status().len(), 1);
}

#[test]
fn the_status_of_two_hundred_thousand_instances_is_answered() {
    let mut config = String::new();
    for p in 0..20 {
        config.push_str(&format!(
            "[process.p{p}]\ncommand = [\"sleep\", \"1000\"]\nreplicas = 10000\nautostart = false\n"
        ));
    }
    let d = Daemon::start(&config);
    let ran = d.tend(&["status", "--json"]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(
        ran.stdout.len() > 16 << 20,
        "the answer is {} bytes",
        ran.stdout.len()
    );
    let rows = ran.stdout.matches("\"name\":").count();
    assert_eq!(rows, 200_000);
}

#[test]
fn a_relative_socket_path_means_the_same_file_to_the_daemon_and_its_clients() {
    let dir = project("[process.a]\ncommand = [\"sleep\", \"1000\"]\n");
    let cwd = dir.path().to_owned();
    let tend = |args: &[&str]| {
        let mut cmd = Command::new(tend_bin());
        cmd.args(["--socket", "rel.sock"])
            .args(args)
            .current_dir(&cwd)
            .env_remove("TEND_CONFIG");
        run_with_deadline(cmd)
    };
    let up = tend(&["up", "-d"]);
    assert_eq!(up.code, Some(0), "{up:?}");
    // Stopped however the test ends: the daemon's pid is in the lock beside the socket.
    let d = Daemon {
        pid: std::fs::read_to_string(dir.path().join("rel.sock.lock"))
            .expect("the lock is beside the socket, in the directory it was named from")
            .trim()
            .parse()
            .unwrap(),
        dir,
        runtime_dir: None,
    };
    let status = tend(&["status"]);
    assert_eq!(status.code, Some(0), "{status:?}");
    let down = tend(&["down"]);
    assert_eq!(down.code, Some(0), "{down:?}");
    d.wait_gone();
}

#[test]
fn a_socket_in_a_directory_others_may_write_in_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = project("[process.a]\ncommand = [\"sleep\", \"1000\"]\n");
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let socket = shared.join("t.sock");
    let mut cmd = Command::new(tend_bin());
    cmd.arg("-c")
        .arg(dir.path().join("tend.toml"))
        .arg("--socket")
        .arg(&socket)
        .args(["up", "-d"]);
    let up = run_with_deadline(cmd);
    assert_eq!(up.code, Some(1), "{up:?}");
    assert!(up.stderr.contains(&shared.display().to_string()), "{up:?}");
    assert!(up.stderr.contains("sticky, like /tmp"), "{up:?}");
    assert!(up.stderr.contains("--socket"), "{up:?}");
    assert_eq!(
        std::fs::read_dir(&shared).unwrap().count(),
        0,
        "nothing was created there"
    );
}

/// How many times `text` has the OS's reason `reason`: once, however the error was passed on
/// (anyhow's `{:#}` prints a chain, and an error that showed its cause and also gave it as
/// its `source()` said it twice: `…: Not a directory (os error 20): Not a directory (os error
/// 20)`).
fn times(text: &str, reason: &str) -> usize {
    text.matches(reason).count()
}

#[test]
fn an_os_error_is_said_once_wherever_it_is_reported() {
    const ENOTDIR: &str = "Not a directory (os error 20)";
    const EISDIR: &str = "Is a directory (os error 21)";
    // A log_dir below a regular file: mkdir fails with ENOTDIR before anything starts.
    let dir = project("[supervisor]\nlog_dir = \"file/logs\"\n[process.a]\ncommand = [\"true\"]\n");
    std::fs::write(dir.path().join("file"), "").unwrap();
    let d = Daemon {
        dir,
        pid: 0,
        runtime_dir: None,
    };
    let up = d.tend(&["up"]);
    assert_eq!(up.code, Some(1), "{up:?}");
    assert_eq!(times(&up.stderr, ENOTDIR), 1, "{up:?}");

    // A directory where the lock file goes: opening it fails with EISDIR, in the daemon, which
    // reports it to `tend up -d`.
    let d = Daemon {
        dir: project("[process.a]\ncommand = [\"true\"]\n"),
        pid: 0,
        runtime_dir: None,
    };
    std::fs::create_dir(d.path("tend.sock.lock")).unwrap();
    for args in [&["up"][..], &["up", "-d"]] {
        let up = d.tend(args);
        assert_eq!(up.code, Some(1), "{args:?}: {up:?}");
        assert!(
            up.stderr.contains("taking the lock file"),
            "{args:?}: {up:?}"
        );
        assert_eq!(times(&up.stderr, EISDIR), 1, "{args:?}: {up:?}");
    }

    // A cwd that is a regular file: the spawn fails at chdir. Status, the notice in tend.log
    // and a waiting `tend start` each say why once.
    let dir = project("[process.a]\ncommand = [\"true\"]\ncwd = \"file\"\nrestart = \"never\"\n");
    std::fs::write(dir.path().join("file"), "").unwrap();
    let d = Daemon::start_in(dir);
    let a = d.wait_state("a.0", "exited");
    let error = a["last_exit"]["spawn_error"].as_str().unwrap_or_default();
    assert!(error.starts_with("chdir "), "{a}");
    assert_eq!(times(error, ENOTDIR), 1, "{a}");
    let start = d.tend(&["start", "a"]);
    assert_eq!(start.code, Some(1), "{start:?}");
    // Each line once: the progress line as it happened, and the reason at the end.
    for line in start.stderr.lines() {
        assert!(times(line, ENOTDIR) <= 1, "{start:?}");
    }
    let reason = start.stderr.lines().last().unwrap_or_default();
    assert!(
        reason.starts_with("tend: ") && times(reason, ENOTDIR) == 1,
        "{start:?}"
    );
    let log = d.path(".tend/logs/tend.log");
    eventually("tend.log tells of both failed starts", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.matches("could not start").count() == 2)
    });
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        if line.contains("could not start") {
            assert_eq!(times(line, ENOTDIR), 1, "{line}");
        }
    }
}

#[test]
fn a_umask_that_lets_the_group_write_does_not_make_tend_refuse_its_own_log_dir() {
    let dir = project("[process.a]\ncommand = [\"sh\", \"-c\", \"echo hi; exec sleep 1000\"]\n");
    let config = dir.path().join("tend.toml");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"umask 002; exec "$0" -c "$1" up"#)
        .arg(tend_bin())
        .arg(&config);
    let mut tend = Tend::spawn(dir, cmd);
    tend.wait_line("a's line", |l| l.ends_with("| hi"));
    use std::os::unix::fs::PermissionsExt;
    for d in [".tend", ".tend/logs"] {
        let mode = std::fs::metadata(tend.path(d))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o755, "{d}");
    }
    tend.signal(Signal::SIGTERM);
    assert!(tend.wait_exit().success());
}

#[test]
fn a_followed_line_longer_than_16_kib_comes_in_pieces_marked_cut() {
    let d = Daemon::start(
        r#"
[process.long]
command = '''while :; do head -c 40000 /dev/zero | tr '\0' x; echo; echo short; sleep 0.1; done'''
shell = true
"#,
    );
    let follow = common::Running::start(d.command(&["logs", "-f", "-n", "0", "long"]));
    eventually("a whole long line and a short one followed", || {
        let out = follow.printed().stdout;
        out.lines().skip_while(|l| *l != "long.0 | short").count() >= 5
    });
    let out = follow.printed().stdout;
    let lines: Vec<&str> = out
        .lines()
        .skip_while(|l| *l != "long.0 | short")
        .skip(1)
        .take(4)
        .collect();
    // 40 000 bytes: pieces of 16 384, 16 384 and 7 232, every one marked; the short line not.
    let pieces: Vec<(usize, bool)> = lines
        .iter()
        .map(|l| {
            let text = l.strip_prefix("long.0 | ").unwrap();
            let cut = text.ends_with(" [cut]");
            (text.trim_end_matches(" [cut]").len(), cut)
        })
        .collect();
    assert_eq!(
        pieces,
        [(16384, true), (16384, true), (7232, true), (5, false)],
        "{lines:?}"
    );
}

#[test]
fn an_essential_process_ends_tend_with_its_exit_code() {
    // A container's entrypoint: when the job ends for good, everything stops and tend exits
    // with the job's code.
    let mut tend = Tend::up(
        r#"
[process.job]
command = ["sh", "-c", "read _ < /dev/null; exit 7"]
restart = "never"
on_exit = "shutdown"
start_secs = "0s"

[process.server]
command = ["sleep", "1000"]
"#,
        &[],
    );
    let status = tend.wait_exit();
    assert_eq!(status.code(), Some(7), "{:#?}", tend.transcript());
    tend.assert_printed("job.0 is essential (on_exit = \"shutdown\") and ended for good");
    for pid in tend.child_pids() {
        assert!(!is_running(pid), "{pid} survived");
    }
}

#[test]
fn an_essential_process_killed_by_a_signal_gives_128_plus_the_signal() {
    let mut tend = Tend::up(
        r#"
[process.job]
command = ["sh", "-c", "kill -KILL $$"]
restart = "never"
on_exit = "shutdown"
"#,
        &[],
    );
    assert_eq!(tend.wait_exit().code(), Some(137));
}

#[test]
fn logs_can_be_read_as_json_by_stream_and_without_prefixes() {
    let d = Daemon::start(
        r#"
[process.both]
command = "echo out-line; echo err-line >&2; exec sleep 1000"
shell = true
"#,
    );
    eventually("both lines are logged", || {
        std::fs::read_to_string(d.path(".tend/logs/both.0.err.log"))
            .is_ok_and(|t| t.contains("err-line"))
    });
    let json = d.tend(&["logs", "--json", "both"]);
    assert_eq!(json.code, Some(0), "{json:?}");
    let objects: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(objects
        .iter()
        .any(|o| o["instance"] == "both.0" && o["stream"] == "stdout" && o["line"] == "out-line"));
    assert!(objects
        .iter()
        .any(|o| o["stream"] == "stderr" && o["line"] == "err-line"));
    let err = d.tend(&["logs", "--stderr", "--no-prefix", "both"]);
    assert_eq!(err.stdout, "err-line\n", "{err:?}");
    let out = d.tend(&["logs", "--stdout", "both"]);
    assert_eq!(out.stdout, "both.0 | out-line\n", "{out:?}");
    let both = d.tend(&["logs", "--stdout", "--stderr", "both"]);
    assert_eq!(
        both.code,
        Some(2),
        "the two filters exclude each other: {both:?}"
    );
}

/// Kills, on drop, every process whose command line names `0` (a daemon the test could not
/// stop otherwise), and the process groups of its children.
struct KillByCmdline(String);

impl Drop for KillByCmdline {
    fn drop(&mut self) {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&self.0) {
                for (child, _) in common::children_of(pid) {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(child),
                        Signal::SIGKILL,
                    );
                }
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

#[test]
fn a_running_tend_is_reached_after_its_config_was_deleted() {
    let dir = project("[process.a]\ncommand = [\"sleep\", \"1000\"]\n");
    let config = dir.path().join("tend.toml");
    let _cleanup = KillByCmdline(config.display().to_string());
    let tend = |args: &[&str]| {
        let mut cmd = Command::new(tend_bin());
        cmd.arg("-c")
            .arg(&config)
            .args(args)
            .current_dir(dir.path())
            .env_remove("TEND_CONFIG");
        run_with_deadline(cmd)
    };
    let up = tend(&["up", "-d"]);
    assert_eq!(up.code, Some(0), "{up:?}");
    std::fs::remove_file(&config).unwrap();
    let status = tend(&["status"]);
    assert_eq!(status.code, Some(0), "{status:?}");
    assert!(status.stdout.contains("a.0"), "{status:?}");
    let down = tend(&["down"]);
    assert_eq!(down.code, Some(0), "{down:?}");
    // With no tend running, a missing config is still just that.
    let check = tend(&["check"]);
    assert_eq!(check.code, Some(78), "{check:?}");
    let status = tend(&["status"]);
    assert_eq!(status.code, Some(3), "no tend runs for it: {status:?}");
}
