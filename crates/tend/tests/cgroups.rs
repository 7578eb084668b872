//! A cgroup per instance: a process that left its group and session (`setsid`) is stopped
//! with its instance; `memory_max` is enforced by the kernel and the OOM kill is reported and
//! restarted by the policy; and where tend cannot make cgroups (here: tend run as `nobody`), it
//! says so once and falls back to process groups. Needs root and a writable cgroup2 (CI has
//! both); otherwise each test says why it skips.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

use common::{eventually, proc_state, started_pid, tend_bin, Tend};

/// Whether this tend will have cgroups: it printed so.
fn has_cgroups(tend: &Tend) -> bool {
    let line = tend.wait_line("the cgroups notice", |l| l.contains("cgroups: "));
    let on = line.contains("a cgroup per instance");
    if !on {
        eprintln!("skipped: {line}");
    }
    on
}

/// The test that sets the kernel's last pid (so that pids are reused at once) runs alone;
/// the others, which hold pids, share this.
static PIDS: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn sharing_pids() -> std::sync::RwLockReadGuard<'static, ()> {
    PIDS.read().unwrap_or_else(|e| e.into_inner())
}

fn gone(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_or(true, |stat| proc_state(&stat) == Some('Z'))
}

#[test]
fn a_process_that_left_its_session_is_stopped_with_its_instance() {
    let _pids = sharing_pids();
    let tend = Tend::up(
        r#"
[process.esc]
command = 'setsid sleep 1000 & echo "escaped $!"; exec sleep 1000'
shell = true
"#,
        &[],
    );
    if !has_cgroups(&tend) {
        return;
    }
    let line = tend.wait_line("escaped", |l| l.contains("| escaped "));
    let escaped: i32 = line.rsplit(' ').next().unwrap().parse().unwrap();
    let _guard = KillOnDrop::new(escaped);
    eventually("the escaped process leads its own session", || {
        fs::read_to_string(format!("/proc/{escaped}/stat"))
            .is_ok_and(|stat| common::stat_field(&stat, 6) == Some(i64::from(escaped)))
    });
    let config = tend.path("tend.toml");
    // Counted over its cgroup: the shell's exec'd sleep and the escaped one.
    let mut status = Command::new(tend_bin());
    status.arg("-c").arg(&config).args(["status", "--json"]);
    let status = common::run_with_deadline(status);
    let instances: Vec<serde_json::Value> = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(instances[0]["processes"], 2, "{instances:?}");
    let mut stop = Command::new(tend_bin());
    stop.arg("-c").arg(&config).args(["stop", "esc"]);
    let ran = common::run_with_deadline(stop);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    eventually("the escaped process to be gone", || gone(escaped));
}

/// `tend -c CONFIG ARGS…` against the foreground tend of `tend`.
fn ctl(tend: &Tend, args: &[&str]) -> common::Ran {
    let mut cmd = Command::new(tend_bin());
    cmd.arg("-c")
        .arg(tend.path("tend.toml"))
        .args(args)
        .env("NO_COLOR", "1");
    common::run_with_deadline(cmd)
}

#[test]
fn memory_max_is_the_kernels_limit_and_the_oom_kill_is_told() {
    let _pids = sharing_pids();
    // The hog takes 300 MiB once a file `go` appears (which it removes), so the test can
    // listen to the events first, and each OOM kill is one the test asked for.
    let tend = Tend::up(
        r#"
[process.hog]
command = """python3 -c 'import os, time
while not os.path.exists("go"): time.sleep(0.02)
os.remove("go"); print("allocating", flush=True)
x = b"x" * (300 << 20); time.sleep(1000)'"""
shell = true
memory_max = "64MiB"
backoff = { initial = "0s" }
"#,
        &[],
    );
    if !has_cgroups(&tend) {
        return;
    }
    let notice = tend.wait_line("the cgroups notice", |l| l.contains("cgroups: "));
    if notice.contains("no memory_max") {
        eprintln!("skipped: {notice}");
        return;
    }
    let first = tend.wait_line("hog started", |l| l.contains("hog.0 started"));
    let first = started_pid(&first).unwrap();
    let mut events = Command::new(tend_bin());
    events
        .arg("-c")
        .arg(tend.path("tend.toml"))
        .args(["events", "--json", "hog"]);
    let events = common::Running::start(events);
    // The stream begins when the request reaches tend, which nothing here can wait for:
    // restart the (waiting) hog until the stream shows a spawn.
    let mut restarts = 0;
    let mut last_restart: Option<std::time::Instant> = None;
    eventually("the event stream to be listening", || {
        if events.printed().stdout.contains(r#""event":"spawned""#) {
            return true;
        }
        if last_restart.is_none_or(|at| at.elapsed() > std::time::Duration::from_millis(500)) {
            assert_eq!(ctl(&tend, &["restart", "hog"]).code, Some(0));
            restarts += 1;
            last_restart = Some(std::time::Instant::now());
        }
        false
    });
    fs::write(tend.path("go"), "").unwrap();
    tend.wait_line("the allocation", |l| l.contains("allocating"));
    let line = tend.wait_line("the OOM kill", |l| {
        l.contains("hog.0 was killed by SIGKILL")
    });
    assert!(
        line.ends_with(
            "hog.0 was killed by SIGKILL (the OOM killer: its cgroup reached memory_max); \
             restarting now"
        ),
        "{line}"
    );
    let spawned = tend.wait_lines(2 + restarts, "hog started again", |l| {
        l.contains("hog.0 started")
    });
    assert_ne!(started_pid(spawned.last().unwrap()).unwrap(), first);
    let mut exited = None;
    eventually("the exit event", || {
        exited = events
            .printed()
            .stdout
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|e| e["event"] == "exited" && e["how"]["signal"] == "SIGKILL");
        exited.is_some()
    });
    let exited = exited.unwrap();
    assert_eq!(exited["oom_kills"], 1, "{exited}");
    let status = ctl(&tend, &["status", "--json"]);
    let instances: Vec<serde_json::Value> = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(
        instances[0]["last_exit"]["signal"], "SIGKILL",
        "{instances:?}"
    );
    assert_eq!(instances[0]["last_exit_oom"], true, "{instances:?}");
    assert_eq!(instances[0]["oom_kills"], 1, "{instances:?}");
    let table = ctl(&tend, &["status"]);
    assert!(table.stdout.contains("SIGKILL (OOM)"), "{table:?}");
    // A run that tend stops is not an OOM kill: the mark goes, the count stays.
    assert_eq!(ctl(&tend, &["restart", "hog"]).code, Some(0));
    let status = ctl(&tend, &["status", "--json"]);
    let instances: Vec<serde_json::Value> = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(
        instances[0]["last_exit"]["signal"], "SIGTERM",
        "{instances:?}"
    );
    assert!(instances[0].get("last_exit_oom").is_none(), "{instances:?}");
    assert_eq!(instances[0]["oom_kills"], 1, "{instances:?}");
}

#[test]
fn without_cgroups_tend_says_so_once_and_stops_process_groups() {
    let _pids = sharing_pids();
    let is_root = fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if !is_root {
        eprintln!("skipped: the test runs tend as nobody, which needs root");
        return;
    }
    // tend as nobody cannot make cgroups under root's.
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let bin = dir.path().join("tend");
    fs::copy(tend_bin(), &bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(
        dir.path().join("tend.toml"),
        "[process.p]\ncommand = \"sleep 1000\"\nmemory_max = \"64MiB\"\n",
    )
    .unwrap();
    fs::set_permissions(
        dir.path().join("tend.toml"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let runtime = dir.path().join("run");
    fs::create_dir(&runtime).unwrap();
    fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&runtime, Some(65534), Some(65534)).unwrap();
    let mut cmd = Command::new(&bin);
    cmd.args(["-c"])
        .arg(dir.path().join("tend.toml"))
        .arg("up")
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("HOME", "/nonexistent")
        .uid(65534)
        .gid(65534);
    let holder = tempfile::tempdir().unwrap();
    let mut tend = Tend::spawn(holder, cmd);
    let notice = tend.wait_line("the cgroups notice", |l| l.contains("cgroups: "));
    assert!(
        notice.contains("cgroups: not available")
            && notice.contains("stopping reaches each process group only"),
        "{notice}"
    );
    tend.wait_line("memory_max not enforced", |l| {
        l.contains("p: memory_max not enforced")
    });
    tend.wait_line("p started", |l| l.contains("p.0 started"));
    tend.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(tend.wait_exit().success(), "{}", tend.stderr());
    let notices = tend
        .transcript()
        .iter()
        .filter(|l| l.contains("cgroups: "))
        .count();
    assert_eq!(notices, 1, "said once: {:#?}", tend.transcript());
}

/// Kills a process tend does not know about when the test ends, if it is still that process
/// (its pid with the start time it had: pids are reused, and fast while a test sets the
/// kernel's last pid).
struct KillOnDrop(i32, Option<i64>);

impl KillOnDrop {
    fn new(pid: i32) -> KillOnDrop {
        KillOnDrop(pid, start_time(pid))
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.1.is_some() && start_time(self.0) == self.1 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// When `pid` started (clock ticks after boot), if it lives.
fn start_time(pid: i32) -> Option<i64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    common::stat_field(&stat, 22)
}

#[test]
fn what_a_killed_tend_left_in_its_cgroups_is_killed_by_the_next() {
    let _pids = sharing_pids();
    let dir = common::project(
        r#"
[process.esc]
command = 'setsid sleep 1000 & echo "escaped $!"; exec sleep 1000'
shell = true
"#,
    );
    let config = dir.path().join("tend.toml");
    let mut first = Tend::up_in(dir, &[]);
    if !has_cgroups(&first) {
        return;
    }
    let line = first.wait_line("escaped", |l| l.contains("| escaped "));
    let escaped: i32 = line.rsplit(' ').next().unwrap().parse().unwrap();
    let _guard = KillOnDrop::new(escaped);
    eventually("the escaped process leads its own session", || {
        fs::read_to_string(format!("/proc/{escaped}/stat"))
            .is_ok_and(|stat| common::stat_field(&stat, 6) == Some(i64::from(escaped)))
    });
    // A crash: tend gets no chance to stop anything.
    first.signal(nix::sys::signal::Signal::SIGKILL);
    first.wait_exit();
    assert!(!gone(escaped), "the escaped process outlives a killed tend");
    let mut cmd = Command::new(tend_bin());
    cmd.arg("-c").arg(&config).arg("up");
    let mut second = Tend::spawn(tempfile::tempdir().unwrap(), cmd);
    second.wait_line("the sweep", |l| {
        l.contains("killed what a previous tend left in the cgroups of 1 run")
    });
    eventually("the escaped process to be gone", || gone(escaped));
    // The second tend's own run (which escapes too) is stopped by it, not left behind by a
    // kill at the end of the test.
    second.wait_line("esc started again", |l| l.contains("| escaped "));
    second.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(second.wait_exit().success(), "{}", second.stderr());
}

/// CPU time of `pid` (user + system), in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn cpu_max_and_pids_max_are_the_kernels_limits() {
    let _pids = sharing_pids();
    let tend = Tend::up(
        r#"
[process.spin]
command = "while :; do :; done"
shell = true
cpu_max = "20%"

[process.forks]
command = "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 1000 & done; echo forked; wait"
restart = "never"
shell = true
pids_max = 4
"#,
        &[],
    );
    if !has_cgroups(&tend) {
        return;
    }
    let notice = tend.wait_line("the cgroups notice", |l| l.contains("cgroups: "));
    if notice.contains("no cpu_max") || notice.contains("no pids_max") {
        eprintln!("skipped: {notice}");
        return;
    }
    let spin = started_pid(&tend.wait_line("spin", |l| l.contains("spin.0 started"))).unwrap();
    // Over a second of wall time, a busy loop held to 20% of a CPU gets about 0.2 s.
    let hz = 100; // USER_HZ on Linux
    let before = cpu_ticks(spin);
    let start = std::time::Instant::now();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let used = (cpu_ticks(spin) - before) as f64 / hz as f64;
    let share = used / start.elapsed().as_secs_f64();
    assert!(share < 0.35, "a 20% cap, measured {:.0}%", share * 100.0);
    // Past 4 processes, fork fails: the shell (the 1st) started 3 sleeps, and says so of
    // the 4th, as it never would with room for 11.
    tend.wait_line("the failed fork", |l| {
        l.starts_with("forks.0 ") && l.contains("Cannot fork")
    });
    assert!(
        !tend
            .transcript()
            .iter()
            .any(|l| l.contains("forks.0 | forked")),
        "{:#?}",
        tend.transcript()
    );
}

/// A process of someone else's, in its own process group, that records a SIGTERM.
struct Stranger {
    child: std::process::Child,
    marker: std::path::PathBuf,
}

impl Drop for Stranger {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a [`Stranger`] whose pid, and so process group id, is `pid`, by setting the
/// kernel's last pid just below it (root only; other processes forking meanwhile can take
/// it, so it tries a few times). `None` if it could not.
fn stranger_with_pid(pid: i32, dir: &std::path::Path) -> Option<Stranger> {
    for _ in 0..50 {
        if fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).is_err() {
            return None;
        }
        let marker = dir.join("stranger-got-term");
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "trap 'echo TERM > {}; exit 0' TERM; while :; do sleep 1 & wait $!; done",
                marker.display()
            ))
            .process_group(0)
            .spawn()
            .ok()?;
        let stranger = Stranger { child, marker };
        if stranger.child.id() as i32 == pid {
            return Some(stranger);
        }
    }
    None
}

#[test]
fn a_leftover_whose_group_emptied_is_stopped_through_its_cgroup_not_its_old_group_id() {
    let _pids = PIDS.write().unwrap_or_else(|e| e.into_inner());
    // The leader exits at once; what it started left its group (setsid) and lives on in the
    // run's cgroup: a leftover whose group id is free for anyone.
    let mut tend = Tend::up(
        r#"
[process.e]
command = ["sh", "-c", "setsid sleep 1000 & exit 0"]
restart = "never"
stop_timeout = "10s"
"#,
        &[],
    );
    if !has_cgroups(&tend) {
        return;
    }
    let leader = tend.wait_line("e started", |l| l.contains("e.0 started"));
    let leader = started_pid(&leader).unwrap();
    tend.wait_line("e's exit", |l| l.contains("e.0 exited with status 0"));
    let escaped = eventually_find_escaped(&tend);
    let _escaped_guard = KillOnDrop::new(escaped);
    let dir = tempfile::tempdir().unwrap();
    let Some(stranger) = stranger_with_pid(leader, dir.path()) else {
        eprintln!("skipped: could not start a process with pid {leader} (needs root)");
        return;
    };
    tend.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(tend.wait_exit().success(), "{}", tend.stderr());
    // Gone, or its pid someone else's by now.
    assert!(
        start_time(escaped) != _escaped_guard.1 || gone(escaped),
        "the leftover {escaped} is stopped: {:#?}",
        tend.transcript()
    );
    assert!(
        !stranger.marker.exists(),
        "the stranger in group {leader} got tend's SIGTERM"
    );
    assert!(is_running_pid(stranger.child.id() as i32));
}

/// The setsid'd sleep of the test above: tend's descendant in a session of its own.
fn eventually_find_escaped(tend: &Tend) -> i32 {
    let mut found = None;
    eventually("the escaped sleep", || {
        found = common::descendants(tend.pid()).into_iter().find(|&pid| {
            fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| common::stat_field(&stat, 6) == Some(i64::from(pid)))
        });
        found.is_some()
    });
    found.unwrap()
}

fn is_running_pid(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| proc_state(&stat) != Some('Z'))
}

#[test]
fn memory_max_can_be_raised_by_a_reload() {
    let _pids = sharing_pids();
    let tend = Tend::up(
        "[process.m]\ncommand = [\"sleep\", \"1000\"]\nmemory_max = \"100MiB\"\nstart_secs = \"0s\"\n",
        &[],
    );
    if !has_cgroups(&tend) {
        return;
    }
    let notice = tend.wait_line("the cgroups notice", |l| l.contains("cgroups: "));
    if notice.contains("no memory_max") {
        eprintln!("skipped: {notice}");
        return;
    }
    tend.wait_line("m started", |l| l.contains("m.0 started"));
    // Above the limit it had: on cgroup v1 with swap accounting, memsw must go up first.
    fs::write(
        tend.path("tend.toml"),
        "[process.m]\ncommand = [\"sleep\", \"1001\"]\nmemory_max = \"200MiB\"\nstart_secs = \"0s\"\n",
    )
    .unwrap();
    assert_eq!(ctl(&tend, &["reload"]).code, Some(0));
    let started = tend.wait_lines(2, "m started again", |l| l.contains("m.0 started"));
    let pid = started_pid(&started[1]).unwrap();
    eventually("m running its new command", || {
        fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.contains("1001"))
    });
    let status = ctl(&tend, &["status", "--json"]);
    let instances: Vec<serde_json::Value> = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(instances[0]["pid"], pid, "{instances:?}");
    assert!(
        !tend
            .transcript()
            .iter()
            .any(|l| l.contains("Invalid argument")),
        "{:#?}",
        tend.transcript()
    );
}

#[test]
fn a_cpu_max_above_what_v1_allows_tend_is_refused_with_the_reason() {
    let _pids = sharing_pids();
    // tend in a v1 cpu cgroup of its own with a quota of 2 CPUs.
    let Some(cpu_v1) = tend_os::cgroup::Hierarchies::find().cpu_v1 else {
        eprintln!("skipped: no cgroup v1 cpu hierarchy here");
        return;
    };
    let cage = cpu_v1.join(format!("tend-test-cage-{}", std::process::id()));
    if let Err(e) = fs::create_dir(&cage) {
        eprintln!("skipped: cannot make a v1 cpu cgroup: {e}");
        return;
    }
    /// Removes the cgroup tree (deepest first) once its processes are gone.
    struct Cage(std::path::PathBuf);
    fn remove_tree(dir: &std::path::Path) -> bool {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                remove_tree(&entry.path());
            }
        }
        fs::remove_dir(dir).is_ok()
    }
    impl Drop for Cage {
        fn drop(&mut self) {
            for _ in 0..500 {
                if remove_tree(&self.0) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
    let cage = Cage(cage);
    fs::write(cage.0.join("cpu.cfs_quota_us"), "200000").unwrap();
    let dir = common::project(
        "[process.spin]\ncommand = [\"sleep\", \"1000\"]\ncpu_max = \"300%\"\nrestart = \"never\"\n",
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "echo $$ > {}/cgroup.procs && exec \"$0\" -c tend.toml up",
            cage.0.display()
        ))
        .arg(tend_bin());
    let tend = Tend::spawn(dir, cmd);
    if !has_cgroups(&tend) {
        return;
    }
    let line = tend.wait_line("spin's spawn error", |l| {
        l.contains("spin.0 could not start")
    });
    assert!(
        line.contains("cpu_max 300% is above the 200%") && line.contains("set cpu_max to 200%"),
        "{line}"
    );
}

#[test]
fn a_waiting_instance_has_its_cgroup_before_its_spawn() {
    let _pids = sharing_pids();
    let tend = Tend::up(
        r#"
[process.a]
command = ["sleep", "1000"]
ready = { log_line = "never printed" }

[process.b]
command = ["sleep", "1000"]
depends_on = { a = "ready" }
"#,
        &[],
    );
    if !has_cgroups(&tend) {
        return;
    }
    // `cgroups: a cgroup per instance under <tend-id>; …`: b's cgroup is made there.
    let notice = tend.wait_line("the cgroups notice", |l| l.contains("cgroups: "));
    let base = notice
        .split_once(" under ")
        .and_then(|(_, rest)| rest.split_once(';'))
        .map(|(base, _)| std::path::PathBuf::from(base))
        .unwrap_or_else(|| panic!("{notice}"));
    tend.wait_line("b waiting", |l| l.contains("b.0 waiting for a"));
    let b_instance = base.join("b.0");
    eventually("b's cgroup, made while it waits", || b_instance.is_dir());
    // Made for its spawn, not a run of its own yet.
    assert_eq!(
        fs::read_dir(&b_instance)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .count(),
        0
    );
}

#[test]
fn under_a_seccomp_filter_that_refuses_clone3_children_still_start_in_their_cgroup() {
    let _pids = sharing_pids();
    // tend-os's helper installs the filter Docker's default profile has for clone3 (ENOSYS)
    // and executes tend; `cargo test --workspace` builds it beside tend.
    let helper = std::path::Path::new(tend_bin()).with_file_name("tend-os-probe");
    if !helper.exists() {
        eprintln!(
            "skipped: {} is not built (`cargo test --workspace` builds it)",
            helper.display()
        );
        return;
    }
    let dir = common::project(
        "[process.a]\ncommand = \"grep ^0:: /proc/self/cgroup; exec sleep 1000\"\nshell = true\n",
    );
    let config = dir.path().join("tend.toml");
    let mut cmd = Command::new(&helper);
    cmd.arg("exec-without-clone3")
        .arg(tend_bin())
        .arg("-c")
        .arg(&config)
        .arg("up");
    let tend = Tend::spawn(dir, cmd);
    if !has_cgroups(&tend) {
        return;
    }
    let notice = tend.wait_line("the cgroups notice", |l| l.contains("cgroups: "));
    assert!(
        notice.contains("each child joins its cgroup by a write before its exec (clone3 into a cgroup is refused here"),
        "{notice}"
    );
    let line = tend.wait_line("a's cgroup", |l| l.contains("a.0  | 0::"));
    assert!(line.ends_with("/a.0/run-1"), "{line}");
}
