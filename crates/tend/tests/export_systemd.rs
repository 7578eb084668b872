//! `tend export systemd DIR`: the real binary writes units that systemd's own checker,
//! `systemd-analyze verify` (Debian's systemd), accepts without a warning, and that say in
//! systemd's words what tend would do.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{have, run_with_deadline, tend_bin, Ran};

const CONFIG: &str = r#"
[process.db]
command = ["python3", "-c", "import time; time.sleep(1000)"]
ready = { notify = true, watchdog = "10s", start_timeout = "30s" }

[process.migrate]
command = "echo 'migrating 50% of $TABLES'; exit 0"
shell = true
restart = "on-failure"
depends_on = { db = "ready" }

[process.web]
command = ["./bin/server", "--name", "a \"quoted\" word", "100%"]
cwd = "app"
replicas = 2
port = 8000
env = { GREETING = "hello world", RATIO = "50%", PASS = "p$w" }
env_file = ".env"
success_codes = [0, 3]
stop_signal = "SIGINT"
stop_timeout = "5s"
max_restarts = { count = 3, within = "2m" }
backoff = { initial = "1500ms", max = "10s", factor = 1.0 }
depends_on = { db = "ready", migrate = "completed" }
restart_with = ["db"]

[process.worker]
command = "sleep 1000"
user = "daemon"
group = "users"
umask = "027"
rlimits = { nofile = 1024, as = { soft = "1GiB", hard = "unlimited" } }
nice = 5
oom_score_adj = 100
memory_max = "256MiB"
cpu_max = "50%"
pids_max = 64
restart = "never"
autostart = false
ready = { exec = ["true"] }
health = { tcp = "127.0.0.1:9", failures = 2 }
"#;

/// A project holding CONFIG, its env file and the program `app/bin/server`.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("tend.toml"), CONFIG).unwrap();
    fs::write(dir.path().join(".env"), "SECRET=s3cr3t\n").unwrap();
    let server = dir.path().join("app/bin/server");
    fs::create_dir_all(server.parent().unwrap()).unwrap();
    fs::write(&server, "#!/bin/sh\nexec sleep 1000\n").unwrap();
    fs::set_permissions(&server, fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn tend(dir: &Path, args: &[&str]) -> Ran {
    let mut cmd = Command::new(tend_bin());
    cmd.args(args)
        .current_dir(dir)
        .env_remove("TEND_CONFIG")
        .env_remove("PORT")
        .env("PATH", "/usr/bin:/bin");
    run_with_deadline(cmd)
}

/// `systemd-analyze verify` of every unit under `dir` (instances of templates by name):
/// accepted, and not a word of warning.
fn verify(dir: &Path, units: &[&str]) {
    let mut cmd = Command::new("systemd-analyze");
    cmd.arg("verify").args(units.iter().map(|u| dir.join(u)));
    let ran = run_with_deadline(cmd);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert_eq!(ran.stderr, "", "systemd-analyze warned");
}

fn read(dir: &Path, name: &str) -> String {
    fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Whether `unit` has each of `lines`.
fn assert_lines(unit: &str, lines: &[&str]) {
    for line in lines {
        assert!(
            unit.lines().any(|l| l == *line),
            "missing {line:?} in:\n{unit}"
        );
    }
}

#[test]
fn exported_units_pass_systemd_analyze_verify_and_say_what_tend_does() {
    if !have(
        "systemd-analyze (Debian systemd)",
        "systemd-analyze",
        &["--version"],
    ) {
        return;
    }
    let dir = project();
    let root = dir.path().canonicalize().unwrap();
    let out = root.join("units");
    let ran = tend(&root, &["export", "systemd", "units", "--app", "shop"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(
        ran.stdout.contains("systemctl enable --now shop.target"),
        "{ran:?}"
    );

    let mut names: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "shop-db.service",
            "shop-migrate.service",
            "shop-web@.service",
            "shop-web@0.service.d",
            "shop-web@1.service.d",
            "shop-worker.service",
            "shop.target",
        ]
    );
    verify(
        &out,
        &[
            "shop-db.service",
            "shop-migrate.service",
            "shop-web@0.service",
            "shop-web@1.service",
            "shop-worker.service",
            "shop.target",
        ],
    );

    let db = read(&out, "shop-db.service");
    assert_lines(
        &db,
        &[
            "Type=notify",
            "NotifyAccess=all",
            "WatchdogSec=10s",
            "TimeoutStartSec=30s",
            "KillMode=control-group",
            "Restart=always",
            "WantedBy=shop.target",
        ],
    );
    let migrate = read(&out, "shop-migrate.service");
    assert_lines(
        &migrate,
        &[
            "Requires=shop-db.service",
            "After=shop-db.service",
            "Type=oneshot",
            "RemainAfterExit=yes",
            "Restart=on-failure",
            // The shell gets `$` and `%` as written.
            "ExecStart=/bin/sh \"-c\" \"echo 'migrating 50%% of $$TABLES'; exit 0\"",
        ],
    );
    let web = read(&out, "shop-web@.service");
    let root_text = root.display().to_string();
    assert_lines(
        &web,
        &[
            "Description=shop: web (instance %i)",
            "Requires=shop-db.service",
            "Requires=shop-migrate.service",
            "After=shop-migrate.service",
            "PartOf=shop-db.service",
            "StartLimitIntervalSec=120s",
            "StartLimitBurst=4",
            "Type=exec",
            &format!(
                "ExecStart={root_text}/app/bin/server \"--name\" \"a \\\"quoted\\\" word\" \"100%%\""
            ),
            &format!("WorkingDirectory={root_text}/app"),
            "Environment=SECRET=s3cr3t",
            "Environment=\"GREETING=hello world\"",
            "Environment=\"RATIO=50%%\"",
            // Environment= does not expand variables: a `$` is itself.
            "Environment=PASS=p$w",
            "Environment=PATH=/usr/bin:/bin",
            "Environment=TEND_PROCESS=web",
            "Environment=TEND_INSTANCE=%i",
            "Restart=always",
            "RestartSec=1500ms",
            "SuccessExitStatus=3",
            "KillSignal=SIGINT",
            "TimeoutStopSec=5s",
        ],
    );
    assert!(!web.contains("PORT"), "the port is each instance's: {web}");
    assert_eq!(
        read(&out, "shop-web@1.service.d/port.conf"),
        "# The PORT of web.1 (tend export).\n[Service]\nEnvironment=PORT=8001\n"
    );
    let worker = read(&out, "shop-worker.service");
    assert_lines(
        &worker,
        &[
            "Restart=no",
            // (systemd warns of nobody: "not safe")
            "User=daemon",
            "Group=100",
            "UMask=0027",
            "LimitNOFILE=1024:1024",
            "LimitAS=1073741824:infinity",
            "Nice=5",
            "OOMScoreAdjust=100",
            "MemoryMax=268435456",
            "CPUQuota=50%",
            "TasksMax=64",
            // The default period, in seconds as sleep(1) takes them.
            "ExecStartPost=/bin/sh \"-c\" \"until true >/dev/null 2>&1; do sleep 0.5; done\"",
        ],
    );
    assert!(worker.contains("# health: tcp 127.0.0.1:9"), "{worker}");
    assert!(!worker.contains("[Install]"), "autostart = false: {worker}");
    let target = read(&out, "shop.target");
    assert_lines(
        &target,
        &["Wants=shop-db.service shop-migrate.service shop-web@0.service shop-web@1.service"],
    );
}

#[test]
fn a_procfile_exports_with_foremans_ports() {
    if !have(
        "systemd-analyze (Debian systemd)",
        "systemd-analyze",
        &["--version"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    fs::write(
        root.join("Procfile"),
        "web: python3 -m http.server $PORT\nworker: sleep 1000\nrelease: echo migrated\n",
    )
    .unwrap();
    let ran = tend(&root, &["export", "systemd", "out", "-m", "web=2"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let out = root.join("out");
    // The directory's name (.tmpXXXX) made a unit name: tmpXXXX.
    let app = root.file_name().unwrap().to_string_lossy().replace('.', "");
    let unit = |name: &str| format!("{app}-{name}");
    verify(
        &out,
        &[
            &unit("web@0.service"),
            &unit("web@1.service"),
            &unit("worker.service"),
            &unit("release.service"),
            &format!("{app}.target"),
        ],
    );
    let port = |i: u32| read(&out, &unit(&format!("web@{i}.service.d/port.conf")));
    assert!(port(0).ends_with("Environment=PORT=5000\n"));
    assert!(port(1).ends_with("Environment=PORT=5001\n"));
    assert_lines(
        &read(&out, &unit("worker.service")),
        &[
            "Environment=PORT=5100",
            "Restart=on-failure",
            &format!("Requires={}", unit("release.service")),
        ],
    );
    assert_lines(
        &read(&out, &unit("release.service")),
        &["Type=oneshot", "Restart=no"],
    );
}

#[test]
fn what_a_unit_cannot_hold_is_refused() {
    let dir = project();
    let root = dir.path().canonicalize().unwrap();
    fs::create_dir(root.join("a\nExecStartPre=x")).unwrap();
    fs::write(
        root.join("tend.toml"),
        "[process.web]\ncommand = \"sleep 1\"\ncwd = \"a\\nExecStartPre=x\"\n",
    )
    .unwrap();
    let ran = tend(&root, &["export", "systemd", "units", "--app", "shop"]);
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(ran.stderr.contains("process web: the cwd"), "{ran:?}");
    assert!(!root.join("units").exists(), "nothing written");
    fs::write(root.join("tend.toml"), CONFIG).unwrap();
    for app in ["", "-x", "a b"] {
        let flag = format!("--app={app}");
        let ran = tend(&root, &["export", "systemd", "units", &flag]);
        assert_eq!(ran.code, Some(2), "{app:?}: {ran:?}");
        assert!(ran.stderr.contains("--app"), "{ran:?}");
    }
}

#[test]
fn a_planted_link_is_not_followed() {
    let dir = project();
    let root = dir.path().canonicalize().unwrap();
    let out = root.join("units");
    fs::create_dir(&out).unwrap();
    let victim = root.join("victim");
    fs::write(&victim, "keep me").unwrap();
    std::os::unix::fs::symlink(&victim, out.join("shop-db.service")).unwrap();
    let ran = tend(&root, &["export", "systemd", "units", "--app", "shop"]);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(
        ran.stderr.contains("cannot write") && ran.stderr.contains("shop-db.service"),
        "{ran:?}"
    );
    assert_eq!(fs::read_to_string(&victim).unwrap(), "keep me");
}
