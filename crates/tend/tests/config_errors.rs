//! End to end: a bad config is reported with file:line:column and key, exits 78, starts nothing.

mod common;

use std::process::Command;

use common::*;

fn run(dir: &tempfile::TempDir, verb: &str) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(tend_bin());
    cmd.arg("-c")
        .arg(dir.path().join("tend.toml"))
        .args(verb.split_whitespace())
        .current_dir(dir.path());
    let ran = run_with_deadline(cmd);
    (ran.code, ran.stdout, ran.stderr)
}

/// Each case: a config whose first process would leave a marker file if it ran, and what the
/// error must say.
const CASES: &[(&str, &[&str])] = &[
    (
        "[process.a]\ncommand = \"touch started\"\nshell = true\n\n[process.b]\ncommnd = [\"true\"]\n",
        &["tend.toml:6:1", "commnd"],
    ),
    (
        "[process.a]\ncommand = \"touch started\"\nshell = true\nstop_signal = \"SIGFOO\"\n",
        &["tend.toml:4:15", "stop_signal", "SIGFOO"],
    ),
    (
        "[process.a]\ncommand = \"touch started\"\nshell = true\nreplicas = 0\n",
        &["tend.toml:4:12", "replicas"],
    ),
    (
        "[process.a]\ncommand = \"touch started\"\nshell = true\n\n[process.b]\nrestart = \"never\"\n",
        &["tend.toml:5:", "command"],
    ),
    (
        "[process.a]\ncommand = \"touch started\"\nshell = true\nstart_secs = 5\n",
        &["tend.toml:4:14", "start_secs"],
    ),
    (
        "[process.a]\ncommand = \"touch started\"\nshell = \"yes\"\n",
        &["tend.toml:3:9", "shell"],
    ),
    ("[process.a\ncommand = \"touch started\"\n", &["tend.toml:1:"]),
    (
        "[process.a]\ncommand = \"touch started\"\nshell = true\nlog = { max_size = 200, keep = 1000000 }\n",
        &["tend.toml:4:32", "log.keep", "expected 0 to 1000"],
    ),
    (
        "[process.a]\ncommand = \"touch started\"\nshell = true\nmax_restarts.count = 4294967295\n",
        &["tend.toml:4:22", "max_restarts.count", "expected 0 to 1000000"],
    ),
    (
        "[process.a]\ncommand = \"touch started\"\nshell = true\nenv_file = \"/dev/zero\"\n",
        &["tend.toml:4:12", "env_file", "a character device, not a regular file"],
    ),
    (
        "[process.a]\ncommand = \"touch started\"\nshell = true\nstop_timeout = \"1000000000000000000s\"\n",
        &["tend.toml:4:16", "stop_timeout", "too long"],
    ),
    (
        "[process.a]\ncommand = \"touch started\"\nshell = true\non_exit = \"explode\"\n",
        &["tend.toml:4:11", "on_exit", "\"shutdown\""],
    ),
    (
        "[process.a]\ncommand = \"touch started\"\nshell = true\n\n\
         [process.web]\ncommand = \"true\"\ndepends_on = { worker = \"ready\" }\n\n\
         [process.worker]\ncommand = \"true\"\ndepends_on = [\"web\"]\n",
        &[
            "tend.toml:11:15: process.worker.depends_on[0]: ",
            "dependency cycle: web → worker → web",
        ],
    ),
    (
        "[process.a]\ncommand = \"touch started\"\nshell = true\n\n\
         [process.web]\ncommand = \"true\"\ndepends_on = { dbb = \"ready\" }\n",
        &[
            "tend.toml:7:16: process.web.depends_on.dbb: ",
            "\"dbb\" is not a process in this file; processes: a",
        ],
    ),
];

/// A process name whose log file name (`NAME.0.err.log.5`) is longer than NAME_MAX.
#[test]
fn a_name_too_long_for_its_log_files_exits_78_at_its_key() {
    let name = "n".repeat(250);
    let dir = project(&format!(
        "[process.{name}]\ncommand = \"touch started\"\nshell = true\n"
    ));
    for verb in ["check", "up"] {
        let (code, _, stderr) = run(&dir, verb);
        assert_eq!(code, Some(78), "{verb}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "tend.toml:1:10: process.{name}: the name is too long"
            )),
            "{verb}: {stderr}"
        );
        assert!(!dir.path().join("started").exists(), "nothing started");
    }
}

#[test]
fn bad_configs_exit_78_with_position_and_key_and_start_nothing() {
    for (config, wanted) in CASES {
        for verb in ["check", "up"] {
            let dir = project(config);
            let (code, _, stderr) = run(&dir, verb);
            assert_eq!(code, Some(78), "{verb} on {config:?}: {stderr}");
            for w in *wanted {
                assert!(
                    stderr.contains(w),
                    "{verb} on {config:?}: {stderr:?} lacks {w:?}"
                );
            }
            assert!(!dir.path().join("started").exists(), "nothing started");
            assert!(!dir.path().join(".tend").exists(), "nothing created");
        }
    }
}

#[test]
fn more_groups_than_a_process_may_have_exit_78_at_groups() {
    let most: usize = std::fs::read_to_string("/proc/sys/kernel/ngroups_max")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(65536);
    let groups = vec!["\"root\""; most + 1].join(",");
    let dir = project(&format!(
        "[process.a]\ncommand = \"touch started\"\nshell = true\ngroups = [{groups}]\n"
    ));
    for verb in ["check", "up"] {
        let (code, _, stderr) = run(&dir, verb);
        assert_eq!(code, Some(78), "{verb}: {stderr}");
        let said = format!(
            "{} groups, more than a process may have here ({most}",
            most + 1
        );
        assert!(stderr.contains("tend.toml:4:10"), "{verb}: {stderr}");
        assert!(stderr.contains(&said), "{verb}: {stderr}");
        assert!(!dir.path().join("started").exists(), "nothing started");
    }
}

#[test]
fn missing_config_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(tend_bin());
    cmd.arg("check")
        .current_dir(dir.path())
        .env_remove("TEND_CONFIG");
    let ran = run_with_deadline(cmd);
    assert_eq!(ran.code, Some(78), "{ran:?}");
    assert!(ran.stderr.contains("tend.toml"), "{ran:?}");
}

#[test]
fn check_prints_what_would_run() {
    let dir = project("[process.web]\ncommand = [\"sleep\", \"5\"]\nreplicas = 2\n");
    let (code, stdout, stderr) = run(&dir, "check");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("web.0") && stdout.contains("web.1"),
        "{stdout}"
    );
    assert!(stdout.contains("sleep 5"), "{stdout}");
}

#[test]
fn the_example_config_of_the_readme_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tend.toml");
    let mut cmd = Command::new(tend_bin());
    cmd.args(["-c", example, "check"]);
    let ran = run_with_deadline(cmd);
    assert_eq!(ran.code, Some(0), "{ran:?}");
}

#[test]
fn unknown_name_on_the_command_line_is_a_usage_error() {
    let dir = project("[process.web]\ncommand = \"touch started\"\nshell = true\n");
    let mut cmd = Command::new(tend_bin());
    cmd.arg("-c")
        .arg(dir.path().join("tend.toml"))
        .args(["up", "wbe"])
        .current_dir(dir.path());
    let ran = run_with_deadline(cmd);
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(
        ran.stderr.contains("\"wbe\"") && ran.stderr.contains("web"),
        "{ran:?}"
    );
    assert!(!dir.path().join("started").exists());
}

#[test]
fn check_json_prints_the_validated_spec_with_every_default() {
    let dir = project(
        r#"
[process.db]
command = "exec sleep 100"
shell = true
env = { PASSWORD = "secret" }
ready = { tcp = "127.0.0.1:5432" }

[process.web]
command = ["python3", "-m", "http.server"]
replicas = 2
depends_on = { db = "ready" }
health = { http = "http://127.0.0.1:8000/", failures = 2 }
"#,
    );
    let (code, stdout, stderr) = run(&dir, "check --json");
    assert_eq!(code, Some(0), "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let db = &doc["processes"][0];
    assert_eq!(db["name"], "db");
    assert_eq!(db["argv"][0], "/bin/sh");
    assert_eq!(db["env"], serde_json::json!(["PASSWORD"]));
    assert!(!stdout.contains("secret"), "values are left out: {stdout}");
    assert_eq!(db["ready"]["tcp"], "127.0.0.1:5432");
    assert_eq!(db["ready"]["period_ms"], 500);
    assert_eq!(db["ready"]["start_timeout_ms"], 90_000);
    assert_eq!(db["stop_timeout_ms"], 10_000);
    let web = &doc["processes"][1];
    assert_eq!(web["replicas"], 2);
    assert_eq!(web["depends_on"]["db"], "ready");
    assert_eq!(web["health"]["failures"], 2);
    assert_eq!(web["health"]["period_ms"], 10_000);
    assert_eq!(web["ready"], serde_json::Value::Null);
    assert_eq!(
        doc["config"],
        dir.path().join("tend.toml").display().to_string()
    );
}

#[test]
fn init_writes_a_starter_that_checks_and_never_overwrites_or_follows_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let tend = |args: &[&str]| {
        let mut cmd = std::process::Command::new(tend_bin());
        cmd.args(args)
            .current_dir(dir.path())
            .env_remove("TEND_CONFIG");
        run_with_deadline(cmd)
    };
    let missing = tend(&["check"]);
    assert_eq!(missing.code, Some(78), "{missing:?}");
    assert!(
        missing
            .stderr
            .contains("`tend init` writes a starter tend.toml"),
        "{missing:?}"
    );
    let init = tend(&["init"]);
    assert_eq!(init.code, Some(0), "{init:?}");
    let written = std::fs::read_to_string(dir.path().join("tend.toml")).unwrap();
    assert!(written.contains("[process.web]"), "{written}");
    let check = tend(&["check"]);
    assert_eq!(check.code, Some(0), "the starter checks: {check:?}");
    assert!(
        check.stdout.contains("web: python3 -m http.server 8000"),
        "{check:?}"
    );
    // Every commented line is a key that would check too: uncommented, the file is valid.
    let uncommented: String = written
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if rest.starts_with('[') || rest.contains(" = ") => rest,
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.path().join("all.toml"), uncommented).unwrap();
    std::fs::write(dir.path().join(".env"), "A=1\n").unwrap(); // what env_file names
    let all = tend(&["-c", "all.toml", "check"]);
    assert_eq!(
        all.code,
        Some(0),
        "the commented settings are valid too: {all:?}"
    );
    // A second init keeps the file.
    std::fs::write(dir.path().join("tend.toml"), "# mine\n").unwrap();
    let again = tend(&["init"]);
    assert_eq!(again.code, Some(1), "{again:?}");
    assert!(
        again.stderr.contains("exists already; nothing was written"),
        "{again:?}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("tend.toml")).unwrap(),
        "# mine\n"
    );
    // A link planted where it goes is not followed.
    let target = dir.path().join("elsewhere.toml");
    std::os::unix::fs::symlink(&target, dir.path().join("linked.toml")).unwrap();
    let linked = tend(&["-c", "linked.toml", "init"]);
    assert_eq!(linked.code, Some(1), "{linked:?}");
    assert!(!target.exists(), "init wrote through a symlink");
}

#[test]
fn init_beside_a_procfile_writes_its_processes() {
    let dir = tempfile::tempdir().unwrap();
    let procfile = "web: python3 -m http.server $PORT\nworker: sleep 1000\n";
    std::fs::write(dir.path().join("Procfile"), procfile).unwrap();
    let tend = |args: &[&str]| {
        let mut cmd = std::process::Command::new(tend_bin());
        cmd.args(args)
            .current_dir(dir.path())
            .env_remove("TEND_CONFIG")
            .env_remove("PORT");
        run_with_deadline(cmd)
    };
    let init = tend(&["init"]);
    assert_eq!(init.code, Some(0), "{init:?}");
    assert!(
        init.stdout
            .starts_with("wrote tend.toml: the processes of Procfile;"),
        "{init:?}"
    );
    let written = std::fs::read_to_string(dir.path().join("tend.toml")).unwrap();
    assert!(
        written.contains("[process.web]\ncommand = \"python3 -m http.server $PORT\"\n"),
        "{written}"
    );
    // tend.toml is found before the Procfile now, and means the same.
    let check = tend(&["check"]);
    assert_eq!(check.code, Some(0), "{check:?}");
    assert!(
        check.stdout.contains("/tend.toml: 2 processes"),
        "{check:?}"
    );
    assert!(check.stdout.contains("port       PORT=5100"), "{check:?}");
}
