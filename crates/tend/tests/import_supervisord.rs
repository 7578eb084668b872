//! `tend import supervisord.conf` end to end: a Django/celery deployment's supervisord config
//! (a group, numprocs with process_name, an [include] of conf.d/*.conf, %(here)s, %(ENV_HOME)s,
//! priorities), its programs replaced by shell scripts that record their argv, working
//! directory and environment. The real supervisord runs it, then `tend up` runs the import of
//! it, and both must have run the same commands in the same directories with the same
//! environment.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::{have, run_with_deadline, tend_bin, Running, Tend, PATIENCE};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// What each program does instead of its real work: write its argv, working directory and
/// some variables to `$RECORDS/rec.PID`, then sleep (the pid is the sleep's: it execs).
/// `%%` is supervisord's `%`; the second line is a continuation line, joined with a newline.
const RECORD: &str = "/bin/sh -c 'printf \"%%s\\n\" \"$0 $*\" \"cwd=$(pwd -P)\" \
    \"DJANGO_SETTINGS_MODULE=$DJANGO_SETTINGS_MODULE\" \"APP_ENV=$APP_ENV\" \
    \"HOME_DIR=$HOME_DIR\" \"QUEUE=$QUEUE\" > \"$RECORDS/rec.$$\"\n  exec sleep 60'";

fn main_conf() -> String {
    format!(
        "; supervisord for mysite: gunicorn, celery workers and beat
[unix_http_server]
file=%(here)s/supervisor.sock   ; the socket

[supervisord]
logfile=%(here)s/supervisord.log
pidfile=%(here)s/supervisord.pid
childlogdir=%(here)s
nodaemon=true
environment=APP_ENV=\"production\",RECORDS=\"%(here)s/../records\"

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://%(here)s/supervisor.sock

[program:web]
command={RECORD} gunicorn mysite.wsgi:application --bind 127.0.0.1:0
  --workers 2
directory=%(here)s/../app
environment=DJANGO_SETTINGS_MODULE=\"mysite.settings.production\",HOME_DIR=\"%(ENV_HOME)s\"
priority=100
stopasgroup=true
stdout_logfile=%(here)s/web.log
redirect_stderr=true

[program:celery]
command={RECORD} celery -A mysite worker -n worker%(process_num)d@%(host_node_name)s
process_name=%(program_name)s_%(process_num)02d
numprocs=2
directory=%(here)s
environment=QUEUE=\"default\",DJANGO_SETTINGS_MODULE=mysite.settings.production
priority=200
stopwaitsecs=5
stopasgroup=true

[group:mysite]
programs=web,celery
priority=10

[include]
files = conf.d/*.conf
"
    )
}

fn beat_conf() -> String {
    format!(
        "[program:beat]
command={RECORD} celery -A mysite beat --schedule %(here)s/celerybeat-schedule
environment=QUEUE=\"beat\"
priority=300
startsecs=0
killasgroup=true
"
    )
}

const FLOWER_CONF: &str = "[program:flower]
command=/bin/sh -c 'echo flower > \"$RECORDS/rec.flower\"'
autostart=false
";

/// The deployment: `etc/supervisord.conf`, `etc/conf.d/*.conf`, `app/`, `records/`, in a temp
/// dir that is also the working directory of both supervisors.
fn deployment() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for sub in ["etc/conf.d", "app", "records"] {
        fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    fs::write(dir.path().join("etc/supervisord.conf"), main_conf()).unwrap();
    fs::write(dir.path().join("etc/conf.d/beat.conf"), beat_conf()).unwrap();
    fs::write(dir.path().join("etc/conf.d/flower.conf"), FLOWER_CONF).unwrap();
    dir
}

/// Kills whatever recorded itself in `records` (each `rec.PID` is a sleeping program), even
/// when the test fails: supervisord puts its children in process groups of their own.
struct Recorded(PathBuf);

impl Recorded {
    fn pids(&self) -> Vec<i32> {
        fs::read_dir(&self.0)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().to_str()?.strip_prefix("rec.")?.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn kill_all(&self) {
        for pid in self.pids() {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }

    /// Waits until `n` records are written in full (each ends with its last line); returns
    /// them sorted.
    fn wait_for(&self, n: usize, what: &str) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let records = self.read();
            let complete = records.iter().filter(|r| r.contains("QUEUE=")).count();
            if complete >= n {
                return records;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: waited for {n} records, have {records:#?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn read(&self) -> Vec<String> {
        let mut records: Vec<String> = fs::read_dir(&self.0)
            .unwrap()
            .flatten()
            .filter_map(|e| fs::read_to_string(e.path()).ok())
            .collect();
        records.sort();
        records
    }

    fn clear(&self) {
        for entry in fs::read_dir(&self.0).unwrap().flatten() {
            fs::remove_file(entry.path()).unwrap();
        }
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// `tend import FILE` with `HOME=/home/mysite`; the output, after checking it exits 0.
fn import(file: &Path) -> String {
    let mut cmd = Command::new(tend_bin());
    cmd.arg("import").arg(file).env("HOME", "/home/mysite");
    let ran = run_with_deadline(cmd);
    assert_eq!(ran.code, Some(0), "tend import failed: {}", ran.stderr);
    ran.stdout
}

/// `tend check -c FILE` exits 0.
fn assert_checks(file: &Path) {
    let mut cmd = Command::new(tend_bin());
    cmd.arg("check")
        .arg("-c")
        .arg(file)
        .env_remove("TEND_CONFIG");
    let ran = run_with_deadline(cmd);
    assert_eq!(
        ran.code,
        Some(0),
        "tend check refused the import:\n{}\n{}",
        ran.stdout,
        ran.stderr
    );
}

/// What the records should say, by the config alone.
fn expected(dir: &Path, host: &str) -> Vec<String> {
    let etc = dir.join("etc");
    let record = |argv: &str, cwd: &Path, dj: &str, home: &str, queue: &str| {
        format!(
            "{argv}\ncwd={}\nDJANGO_SETTINGS_MODULE={dj}\nAPP_ENV=production\nHOME_DIR={home}\n\
             QUEUE={queue}\n",
            cwd.display()
        )
    };
    let prod = "mysite.settings.production";
    let mut records = vec![
        record(
            "gunicorn mysite.wsgi:application --bind 127.0.0.1:0 --workers 2",
            &dir.join("app"),
            prod,
            "/home/mysite",
            "",
        ),
        record(
            &format!("celery -A mysite worker -n worker0@{host}"),
            &etc,
            prod,
            "",
            "default",
        ),
        record(
            &format!("celery -A mysite worker -n worker1@{host}"),
            &etc,
            prod,
            "",
            "default",
        ),
        record(
            &format!(
                "celery -A mysite beat --schedule {}/conf.d/celerybeat-schedule",
                etc.display()
            ),
            dir,
            "",
            "",
            "beat",
        ),
    ];
    records.sort();
    records
}

#[test]
fn the_import_runs_what_supervisord_runs() {
    let dir = deployment();
    let root = fs::canonicalize(dir.path()).unwrap();
    let conf = root.join("etc/supervisord.conf");
    let records = Recorded(root.join("records"));
    let host = fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned();

    // The import passes tend check.
    let toml = import(&conf);
    let tend_toml = root.join("etc/tend.toml");
    fs::write(&tend_toml, &toml).unwrap();
    assert_checks(&tend_toml);
    for piece in [
        "[process.web]",
        "[process.celery_00]",
        "[process.celery_01]",
        "[process.beat]",
        "[process.flower]",
        "autostart = false",
        "# [group:mysite] programs = web,celery: tend has no groups",
        "# [unix_http_server] is not carried over",
        "# [rpcinterface:supervisor] is not carried over",
        "# [supervisorctl] is not carried over",
        "# stdout_logfile = %(here)s/web.log: tend keeps its own logs",
        "depends_on = { web = \"started\" }",
        "depends_on = { celery_00 = \"started\", celery_01 = \"started\" }",
    ] {
        assert!(toml.contains(piece), "no {piece:?} in:\n{toml}");
    }

    let want = expected(&root, &host);

    // What supervisord runs, if it is here.
    if have("supervisord", "supervisord", &["--version"]) {
        let mut cmd = Command::new("supervisord");
        cmd.args(["-n", "-c"])
            .arg(&conf)
            .current_dir(&root)
            .env("HOME", "/home/mysite");
        let supervisord = Running::start(cmd);
        let got = records.wait_for(4, "supervisord");
        let _ = kill(Pid::from_raw(supervisord.pid()), Signal::SIGTERM);
        let stopped = supervisord.finish_within(PATIENCE);
        records.kill_all();
        assert!(stopped.is_ok(), "supervisord did not stop: {stopped:?}");
        assert_eq!(got, want, "supervisord ran something else than expected");
        records.clear();
    }

    // What tend runs: the same.
    let mut cmd = Command::new(tend_bin());
    cmd.arg("-c")
        .arg(&tend_toml)
        .arg("up")
        .env("HOME", "/elsewhere");
    let mut tend = Tend::spawn(dir, cmd);
    let got = records.wait_for(4, "tend");
    assert_eq!(got, want, "tend ran something else than supervisord");
    // Nothing more runs: flower (autostart = false) is stopped, by tend's own account.
    let mut status = Command::new(tend_bin());
    status.arg("-c").arg(&tend_toml).args(["status", "--json"]);
    let status = run_with_deadline(status);
    let instances: Vec<serde_json::Value> = serde_json::from_str(&status.stdout).unwrap();
    let flower = instances.iter().find(|i| i["name"] == "flower.0").unwrap();
    assert_eq!(flower["state"], "stopped", "{instances:#?}");
    assert_eq!(instances.len(), 5, "{instances:#?}");
    tend.signal(Signal::SIGTERM);
    let status = tend.wait_exit();
    assert!(
        status.success(),
        "tend up exited {status:?}: {}",
        tend.stderr()
    );
}

#[test]
fn a_bad_config_is_refused_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("supervisord.conf");
    fs::write(&conf, "[program:web]\ncommand=/bin/true %(no_such_name)s\n").unwrap();
    let mut cmd = Command::new(tend_bin());
    cmd.arg("import").arg(&conf);
    let ran = run_with_deadline(cmd);
    assert_eq!(ran.code, Some(78), "{ran:?}");
    assert!(
        ran.stderr.contains(&format!(
            "{}:2: command: %(no_such_name) cannot be expanded",
            conf.display()
        )),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_fifo_or_a_device_where_a_config_was_expected_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("conf.d.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let main = dir.path().join("supervisord.conf");
    fs::write(
        &main,
        "[program:a]\ncommand = sleep 1\n[include]\nfiles = conf.d.fifo /dev/zero\n",
    )
    .unwrap();
    for (file, expected) in [
        (&main, "supervisord.conf:4: include.files: "),
        (&fifo, "it is a FIFO, not a regular file"),
    ] {
        let mut cmd = Command::new(tend_bin());
        cmd.arg("import").arg(file);
        let ran = run_with_deadline(cmd);
        assert_eq!(ran.code, Some(78), "{ran:?}");
        assert!(ran.stderr.contains(expected), "{ran:?}");
    }
}
