//! Who a process runs as and within what limits (`user`, `group`, `groups`, `umask`,
//! `rlimits`, `nice`, `oom_score_adj`), read back from the kernel's own account of the running
//! process: /proc/PID/status, /proc/PID/limits, /proc/PID/stat, /proc/PID/environ. Running as
//! another user needs root (CI runs as root); without it these tests say so and skip. The
//! refusals tend owes a user who is not root are tested by running tend as `nobody`.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::Command;

use common::{run_with_deadline, started_pid, tend_bin, Tend};

fn is_root() -> bool {
    let root = fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if !root {
        eprintln!("skipped: tend must run as root to run a process as another user");
    }
    root
}

/// The value of `key:` in /proc/PID/status, its fields joined by one space.
fn status_field(pid: i32, key: &str) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in {status}"));
    let fields: Vec<&str> = line.split_whitespace().skip(1).collect();
    fields.join(" ")
}

/// The soft and hard values of a line of /proc/PID/limits (`Max open files`).
fn limit(pid: i32, name: &str) -> (String, String) {
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in {limits}"));
    let fields: Vec<&str> = line[name.len()..].split_whitespace().collect();
    (fields[0].to_owned(), fields[1].to_owned())
}

fn environ(pid: i32) -> Vec<String> {
    let raw = fs::read(format!("/proc/{pid}/environ")).unwrap();
    raw.split(|&b| b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

/// The groups the system gives `user` (`id -G`), sorted.
fn system_groups(user: &str) -> Vec<String> {
    let mut cmd = Command::new("id");
    cmd.args(["-G", user]);
    let ran = run_with_deadline(cmd);
    let mut groups: Vec<String> = ran.stdout.split_whitespace().map(str::to_owned).collect();
    groups.sort();
    groups
}

#[test]
fn a_process_runs_as_nobody_with_its_groups_and_the_limits_asked_for() {
    if !is_root() {
        return;
    }
    let tend = Tend::up(
        r#"
[process.who]
command = ["sleep", "1000"]
user = "nobody"
umask = "027"
rlimits = { nofile = 1234, core = 0, as = { soft = "4GiB", hard = "unlimited" } }
nice = 7
oom_score_adj = 321
env = { USER = "kept" }
"#,
        &[],
    );
    let line = tend.wait_line("who.0 started", |l| l.contains("who.0 started"));
    let pid = started_pid(&line).unwrap();
    let nobody = system_groups("nobody");
    let uid = status_field(pid, "Uid");
    assert_eq!(uid, "65534 65534 65534 65534", "real, effective, saved, fs");
    let primary = run_with_deadline({
        let mut cmd = Command::new("id");
        cmd.args(["-g", "nobody"]);
        cmd
    })
    .stdout
    .trim()
    .to_owned();
    assert_eq!(
        status_field(pid, "Gid"),
        format!("{primary} {primary} {primary} {primary}")
    );
    let mut groups: Vec<String> = status_field(pid, "Groups")
        .split(' ')
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect();
    groups.sort();
    assert_eq!(
        groups, nobody,
        "the user's groups, as initgroups gives them"
    );
    assert_eq!(status_field(pid, "Umask"), "0027");
    assert_eq!(limit(pid, "Max open files"), ("1234".into(), "1234".into()));
    assert_eq!(limit(pid, "Max core file size"), ("0".into(), "0".into()));
    assert_eq!(
        limit(pid, "Max address space"),
        ("4294967296".into(), "unlimited".into())
    );
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let nice: Vec<&str> = after_name.split(' ').collect();
    assert_eq!(nice[16], "7", "nice is field 19 of stat");
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
            .unwrap()
            .trim(),
        "321"
    );
    let env = environ(pid);
    assert!(env.contains(&"LOGNAME=nobody".to_owned()), "{env:?}");
    assert!(env.contains(&"USER=kept".to_owned()), "env wins: {env:?}");
    assert!(env.iter().any(|v| v.starts_with("HOME=/")), "{env:?}");
    // Its logs stay tend's: owned by root, readable by root only.
    for file in ["who.0.log", "who.0.err.log"] {
        let meta = fs::metadata(tend.path(&format!(".tend/logs/{file}"))).unwrap();
        assert_eq!(meta.uid(), 0, "{file}");
        assert_eq!(meta.mode() & 0o777, 0o600, "{file}");
    }
}

#[test]
fn explicit_group_and_groups_replace_the_users_own() {
    if !is_root() {
        return;
    }
    let tend = Tend::up(
        r#"
[process.who]
command = ["sleep", "1000"]
user = "nobody"
group = "users"
groups = ["users", 4242]
"#,
        &[],
    );
    let line = tend.wait_line("who.0 started", |l| l.contains("who.0 started"));
    let pid = started_pid(&line).unwrap();
    assert_eq!(status_field(pid, "Gid"), "100 100 100 100");
    assert_eq!(status_field(pid, "Groups"), "100 4242");
}

#[test]
fn a_cwd_the_user_may_not_enter_fails_the_spawn_and_says_so() {
    if !is_root() {
        return;
    }
    // Root may enter it; nobody may not: the directory is entered as the process's user.
    let private = tempfile::tempdir().unwrap();
    fs::set_permissions(private.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let tend = Tend::up(
        &format!(
            "[process.who]\ncommand = [\"pwd\"]\nuser = \"nobody\"\ncwd = \"{}\"\nrestart = \"never\"\n",
            private.path().display()
        ),
        &[],
    );
    let line = tend.wait_line("who.0's spawn error", |l| {
        l.contains("who.0 could not start")
    });
    assert!(
        line.contains(&format!("chdir {}", private.path().display()))
            && line.contains("Permission denied"),
        "{line}"
    );
}

#[test]
fn bad_identities_and_limits_are_config_errors_with_their_place() {
    for (config, expected) in [
        (
            "user = \"no-such-user-of-tend\"",
            "tend.toml:3:8: process.p.user: no user \"no-such-user-of-tend\" on this system",
        ),
        (
            "group = \"no-such-group-of-tend\"",
            "tend.toml:3:9: process.p.group: no group \"no-such-group-of-tend\"",
        ),
        (
            "rlimits = { nofile = { soft = 10, hard = 5 } }",
            "process.p.rlimits.nofile: the soft limit 10 is above the hard limit 5",
        ),
        (
            "rlimits = { nofiles = 5 }",
            "process.p.rlimits.nofiles: unknown key \"nofiles\"",
        ),
        (
            "rlimits = { nofile = \"5MiB\" }",
            "process.p.rlimits.nofile: expected a number or \"unlimited\"",
        ),
        (
            "rlimits = { nofile = \"unlimited\" }",
            "tend.toml:3:22: process.p.rlimits.nofile: \"unlimited\" cannot be set: Linux \
             allows a process at most",
        ),
        (
            "nice = 20",
            "process.p.nice: 20 is out of range; expected -20 to 19",
        ),
        ("umask = \"8\"", "process.p.umask: invalid umask \"8\""),
        (
            "oom_score_adj = 1001",
            "process.p.oom_score_adj: 1001 is out of range; expected -1000 to 1000",
        ),
    ] {
        let text = format!("[process.p]\ncommand = \"sleep 1\"\n{config}\n");
        let dir = common::project(&text);
        let mut cmd = Command::new(tend_bin());
        cmd.arg("check").current_dir(dir.path());
        let ran = run_with_deadline(cmd);
        assert_eq!(ran.code, Some(78), "{config}: {ran:?}");
        assert!(ran.stderr.contains(expected), "{config}: {ran:?}");
    }
}

/// A copy of tend that `nobody` can run wherever the build is (a checkout may be in a
/// directory only root can enter).
fn tend_for_nobody() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.path().join("tend");
    fs::copy(tend_bin(), &copy).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
    (dir, copy)
}

/// A `nofile` limit above the hard limit tend's user starts with (tend keeps it; only root may
/// raise it) but within what Linux allows, with its refusal; none when that hard limit is
/// already Linux's most (/proc/sys/fs/nr_open).
fn above_own_nofile_limit() -> Option<(String, String)> {
    let limits = fs::read_to_string("/proc/self/limits").unwrap();
    let own: u64 = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())?;
    let most: u64 = fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (own < most).then(|| {
        (
            format!("rlimits = {{ nofile = {} }}", own + 1),
            format!("the hard limit {} is above tend's own ({own})", own + 1),
        )
    })
}

#[test]
fn tend_not_root_refuses_what_only_root_may_do() {
    if !is_root() {
        return;
    }
    let (_bin_dir, tend_copy) = tend_for_nobody();
    for (config, expected) in [
        (
            "user = \"root\"",
            "tend runs as uid 65534, not root, so it cannot run a process as \"root\"",
        ),
        (
            "groups = [\"users\"]",
            "not root, so it cannot set supplementary groups",
        ),
        (
            "group = \"users\"",
            "not root, so it cannot set another group",
        ),
        ("nice = -5", "nice -5 is below tend's own (0)"),
        (
            "oom_score_adj = -100",
            "a negative oom_score_adj needs CAP_SYS_RESOURCE, which tend lacks",
        ),
        (
            "rlimits = { nofile = \"unlimited\" }",
            "\"unlimited\" cannot be set: Linux allows a process at most",
        ),
    ]
    .map(|(config, expected)| (config.to_owned(), expected.to_owned()))
    .into_iter()
    .chain(above_own_nofile_limit())
    {
        let text = format!("[process.p]\ncommand = \"sleep 1\"\n{config}\n");
        let dir = common::project(&text);
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(
            dir.path().join("tend.toml"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let mut cmd = Command::new(&tend_copy);
        cmd.arg("check")
            .current_dir(dir.path())
            .uid(65534)
            .gid(65534)
            .env("HOME", "/nonexistent");
        let ran = run_with_deadline(cmd);
        assert_eq!(ran.code, Some(78), "{config}: {ran:?}");
        assert!(ran.stderr.contains(&expected), "{config}: {ran:?}");
    }
    // Its own identity is fine.
    let dir = common::project("[process.p]\ncommand = \"sleep 1\"\nuser = \"nobody\"\nnice = 3\n");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(
        dir.path().join("tend.toml"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let mut cmd = Command::new(tend_bin());
    cmd.arg("check")
        .current_dir(dir.path())
        .uid(65534)
        .gid(65534);
    let ran = run_with_deadline(cmd);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    // Root without CAP_SYS_NICE (a container's default set) may not lower it either: the
    // capability decides, as in the kernel.
    let text = "[process.p]\ncommand = \"sleep 1\"\nnice = -5\n";
    fs::write(dir.path().join("tend.toml"), text).unwrap();
    if common::have("setpriv (util-linux)", "setpriv", &["--version"]) {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--inh-caps", "-sys_nice", "--bounding-set", "-sys_nice"])
            .arg(tend_bin())
            .arg("check")
            .current_dir(dir.path());
        let ran = run_with_deadline(cmd);
        assert_eq!(ran.code, Some(78), "{ran:?}");
        assert!(ran.stderr.contains("needs CAP_SYS_NICE"), "{ran:?}");
        let status = fs::read_to_string("/proc/self/status").unwrap();
        let caps = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .unwrap();
        if u64::from_str_radix(caps.trim(), 16).unwrap() >> 23 & 1 == 1 {
            let mut cmd = Command::new(tend_bin());
            cmd.arg("check").current_dir(dir.path());
            assert_eq!(
                run_with_deadline(cmd).code,
                Some(0),
                "root with CAP_SYS_NICE"
            );
        }
    }
    // A tend started with nice 5 may not give a process 3 (it passed the config before, and
    // every spawn failed with EPERM); 5 and up are fine.
    for (nice, code) in [(3, 78), (5, 0)] {
        let text = format!("[process.p]\ncommand = \"sleep 1\"\nnice = {nice}\n");
        fs::write(dir.path().join("tend.toml"), text).unwrap();
        let mut cmd = Command::new("nice");
        cmd.args(["-n", "5"])
            .arg(&tend_copy)
            .arg("check")
            .current_dir(dir.path())
            .uid(65534)
            .gid(65534)
            .env("HOME", "/nonexistent");
        let ran = run_with_deadline(cmd);
        assert_eq!(ran.code, Some(code), "nice {nice}: {ran:?}");
        if code == 78 {
            assert!(
                ran.stderr.contains("nice 3 is below tend's own (5)")
                    && ran.stderr.contains("use 5 to 19"),
                "{ran:?}"
            );
        }
    }
}

#[test]
fn a_tend_that_is_not_root_runs_its_own_user_with_its_own_group() {
    if !is_root() {
        return;
    }
    // tend as nobody, but with group 100 (as `sg users tend up` gives it), `user = "nobody"`:
    // nobody's primary group (65534) is one tend may not set; before, every spawn failed with
    // EPERM. The process runs with tend's own group.
    let (dir, tend_copy) = tend_for_nobody();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let config = dir.path().join("tend.toml");
    fs::write(
        &config,
        "[process.p]\ncommand = [\"id\", \"-g\"]\nuser = \"nobody\"\nrestart = \"never\"\n",
    )
    .unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
    let runtime = dir.path().join("run");
    fs::create_dir(&runtime).unwrap();
    fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&runtime, Some(65534), Some(100)).unwrap();
    let mut cmd = Command::new(&tend_copy);
    cmd.arg("-c")
        .arg(&config)
        .arg("up")
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("HOME", "/nonexistent")
        .uid(65534)
        .gid(100);
    let holder = tempfile::tempdir().unwrap();
    let tend = Tend::spawn(holder, cmd);
    let line = tend.wait_line("p's group", |l| l.starts_with("p.0") && l.contains("| "));
    assert!(line.ends_with("| 100"), "{line}");
    tend.wait_line("p exited", |l| l.contains("p.0 exited with status 0"));
    // What a unit exported for systemd (which starts it as root) gets is the user's group.
    let mut export = Command::new(tend_bin());
    export
        .arg("-c")
        .arg(&config)
        .args(["export", "systemd"])
        .arg(dir.path().join("units"));
    let ran = run_with_deadline(export);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let unit = fs::read_dir(dir.path().join("units"))
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with("-p.service"))
        .map(|e| fs::read_to_string(e.path()).unwrap())
        .expect("the unit of p");
    assert!(unit.contains("\nUser=nobody\nGroup=65534\n"), "{unit}");
}

#[test]
fn a_process_run_as_another_user_may_say_it_is_ready() {
    if !is_root()
        || !common::have(
            "systemd-notify (Debian systemd)",
            "systemd-notify",
            &["--version"],
        )
    {
        return;
    }
    let tend = Tend::up(
        r#"
[process.n]
command = "systemd-notify --ready --status=up-as-nobody; exec sleep 1000"
shell = true
user = "nobody"
ready = { notify = true }
"#,
        &[],
    );
    tend.wait_line("n.0 ready", |l| l.contains("n.0 is ready"));
}

#[test]
fn exec_checks_run_as_the_process_user_with_its_groups_and_limits() {
    if !is_root() {
        return;
    }
    // A directory only nobody (and root) may write in, where the checks say who they are.
    let dir = common::project("");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let out = dir.path().join("out");
    fs::create_dir(&out).unwrap();
    std::os::unix::fs::chown(&out, Some(65534), Some(65534)).unwrap();
    fs::set_permissions(&out, fs::Permissions::from_mode(0o700)).unwrap();
    // Each file is written whole, then renamed into place, so the test never reads half.
    let report = |what: &str| {
        let file = out.join(what);
        format!(
            "{{ id -u; id -G; umask; ulimit -n; printf '%s %s %s\\n' \"$HOME\" \"$USER\" \
             \"$LOGNAME\"; }} > {f}.tmp && mv {f}.tmp {f}",
            f = file.display()
        )
    };
    let config = format!(
        r#"
[process.who]
command = ["sleep", "1000"]
user = "nobody"
umask = "027"
rlimits = {{ nofile = 1234 }}
ready = {{ exec = ["sh", "-c", {ready:?}], period = "100ms" }}
health = {{ exec = ["sh", "-c", {health:?}], period = "100ms" }}
"#,
        ready = report("ready"),
        health = report("health"),
    );
    fs::write(dir.path().join("tend.toml"), config).unwrap();
    let tend = Tend::up_in(dir, &[]);
    let line = tend.wait_line("who.0 started", |l| l.contains("who.0 started"));
    let pid = started_pid(&line).unwrap();
    tend.wait_line("who.0 ready", |l| l.contains("who.0 is ready"));
    let health = out.join("health");
    common::eventually("a health check ran", || health.exists());
    let mut nobody = system_groups("nobody");
    nobody.dedup();
    let home = environ(pid)
        .into_iter()
        .find_map(|v| v.strip_prefix("HOME=").map(str::to_owned))
        .expect("the process has HOME");
    for check in ["ready", "health"] {
        let text = fs::read_to_string(out.join(check)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{check}: {text:?}");
        assert_eq!(lines[0], "65534", "{check} runs as nobody: {text:?}");
        let mut groups: Vec<String> = lines[1].split_whitespace().map(str::to_owned).collect();
        groups.sort();
        groups.dedup();
        assert_eq!(groups, nobody, "{check} has nobody's groups: {text:?}");
        assert_eq!(
            lines[2], "0027",
            "{check} has the process's umask: {text:?}"
        );
        assert_eq!(
            lines[3], "1234",
            "{check} has the process's limits: {text:?}"
        );
        assert_eq!(
            lines[4],
            format!("{home} nobody nobody"),
            "{check} has the user's HOME, USER and LOGNAME: {text:?}"
        );
        let meta = fs::metadata(out.join(check)).unwrap();
        assert_eq!(meta.uid(), 65534, "{check} wrote as nobody");
    }
}
