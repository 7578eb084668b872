//! A Procfile run as is: the real binary on Procfiles of the kinds real projects have (Rails,
//! Node, Django with a real gunicorn), the ports foreman would give, `.env`, the formation,
//! `release` first, errors with file:line:col, and `tend import` of a Procfile running the
//! very same commands.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{eventually, have, run_with_deadline, tend_bin, Tend};
use nix::sys::signal::Signal;

/// A program that records how it was run (instance, PORT, directory, GREETING and its
/// arguments) as one line in `$RECORDS`, says so on stdout, then stays up, unless its first
/// argument is a one-shot task (a migration), which exits 0.
const RECORDER: &str = r#"#!/bin/sh
echo "$TEND_PROCESS.$TEND_INSTANCE port=$PORT cwd=$(pwd) greeting=$GREETING run=$(basename "$0") $*" >> "$RECORDS"
echo "booted $(basename "$0") $*"
case "$*" in
  *migrate*) exit 0 ;;
esac
exec sleep 1000
"#;

/// A project directory holding `procfile` as Procfile, `dotenv` as .env (if any), and the
/// recorder installed as each of `programs` in `stubs/` (put on PATH) or, for a path with a
/// slash, at that path in the project.
fn project(procfile: &str, dotenv: Option<&str>, programs: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("Procfile"), procfile).unwrap();
    if let Some(text) = dotenv {
        fs::write(dir.path().join(".env"), text).unwrap();
    }
    for program in programs {
        let path = if program.contains('/') {
            dir.path().join(program)
        } else {
            dir.path().join("stubs").join(program)
        };
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, RECORDER).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

/// `tend ARGS…` in `dir` (no -c: the Procfile is found as a user's would be), with the stubs
/// on PATH, records going to `dir/records` (or `records`), and no PORT of the test's own.
fn tend_in(dir: &Path, records: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(tend_bin());
    let path = format!(
        "{}:{}",
        dir.join("stubs").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.args(args)
        .current_dir(dir)
        .env("PATH", path)
        .env("RECORDS", dir.join(records))
        .env("NO_COLOR", "1")
        .env_remove("PORT")
        .env_remove("TEND_CONFIG");
    cmd
}

/// The recorded lines once there are `n` of them, in the order they were written.
fn records(dir: &Path, name: &str, n: usize) -> Vec<String> {
    let path = dir.join(name);
    let mut lines = Vec::new();
    eventually(&format!("{n} lines in {name}"), || {
        let text = fs::read_to_string(&path).unwrap_or_default();
        lines = text.lines().map(str::to_owned).collect();
        lines.len() >= n
    });
    lines
}

/// Stops tend with SIGINT, as Ctrl+C does, and checks that it ends well.
fn stop(mut tend: Tend) {
    tend.signal(Signal::SIGINT);
    let status = tend.wait_exit();
    assert!(
        status.success(),
        "tend ended with {status:?}: {}",
        tend.stderr()
    );
}

#[test]
fn a_rails_procfile_runs_as_foreman_runs_it() {
    let dir = project(
        "# Procfile of a Rails app\r\n\
         web: bundle exec puma -C config/puma.rb\r\n\
         worker: bundle exec sidekiq -C config/sidekiq.yml\r\n\
         \r\n\
         clock: bundle exec clockwork config/clock.rb\r\n\
         release: bin/rails db:migrate\r\n",
        Some("# local settings\nRAILS_ENV=development\nGREETING=\"hello world\"\n"),
        &["bundle", "bin/rails"],
    );
    let root = dir.path().canonicalize().unwrap();
    let cmd = tend_in(&root, "records", &["up", "--formation", "web=2,worker=1"]);
    let tend = Tend::spawn(dir, cmd);
    let lines = records(&root, "records", 5);
    let cwd = root.display();
    // release runs first, alone; then the others, each with foreman's PORT: 5000, +100 per
    // line before it, +1 per instance.
    assert_eq!(
        lines[0],
        format!("release.0 port=5300 cwd={cwd} greeting=hello world run=rails db:migrate")
    );
    let mut rest = lines[1..].to_vec();
    rest.sort();
    let expected = [
        "clock.0 port=5200 cwd={cwd} greeting=hello world run=bundle exec clockwork config/clock.rb",
        "web.0 port=5000 cwd={cwd} greeting=hello world run=bundle exec puma -C config/puma.rb",
        "web.1 port=5001 cwd={cwd} greeting=hello world run=bundle exec puma -C config/puma.rb",
        "worker.0 port=5100 cwd={cwd} greeting=hello world run=bundle exec sidekiq -C config/sidekiq.yml",
    ]
    .map(|line| line.replace("{cwd}", &cwd.to_string()));
    assert_eq!(rest, expected);
    // The processes' output, each line behind its instance's name, as foreman shows it.
    tend.wait_line("web.1's output", |l| {
        l.starts_with("web.1 ") && l.contains("| booted bundle exec puma")
    });
    // release exited 0 and stays exited; the others run.
    let states = || {
        let status = run_with_deadline(tend_in(&root, "records", &["status", "--json"]));
        let status: Vec<serde_json::Value> = serde_json::from_str(&status.stdout).unwrap();
        let states = status
            .iter()
            .map(|i| format!("{} {}", i["name"], i["state"]));
        states.collect::<Vec<_>>().join(", ")
    };
    let expected = "\"web.0\" \"running\", \"web.1\" \"running\", \"worker.0\" \"running\", \
                    \"clock.0\" \"running\", \"release.0\" \"exited\"";
    eventually("every process but release running", || states() == expected);
    // A reload keeps the formation tend was started with: web.1 stays.
    let reload = run_with_deadline(tend_in(&root, "records", &["reload"]));
    assert_eq!(reload.code, Some(0), "{reload:?}");
    assert_eq!(states(), expected);
    stop(tend);
}

#[test]
fn the_base_port_comes_from_dotenv_and_a_formation_of_zero_leaves_a_process_out() {
    let dir = project(
        "web: node server.js\nworker: node worker.js --queue default\n\
         release: node scripts/migrate.js\n",
        Some("PORT=3000\nGREETING=node\n"),
        &["node"],
    );
    let root = dir.path().canonicalize().unwrap();
    // Without release, nothing waits for it.
    let cmd = tend_in(&root, "records", &["up", "-m", "all=1,release=0"]);
    let tend = Tend::spawn(dir, cmd);
    let mut lines = records(&root, "records", 2);
    lines.sort();
    let cwd = root.display();
    assert_eq!(
        lines,
        [
            format!("web.0 port=3000 cwd={cwd} greeting=node run=node server.js"),
            format!(
                "worker.0 port=3100 cwd={cwd} greeting=node run=node worker.js --queue default"
            ),
        ]
    );
    let status = run_with_deadline(tend_in(&root, "records", &["status", "release"]));
    assert!(status.stdout.contains("stopped"), "{status:?}");
    stop(tend);
}

#[test]
fn tend_import_of_a_procfile_runs_the_same_commands() {
    let dir = project(
        "web: node server.js\nworker: node worker.js --queue 'low prio'\n\
         release: node scripts/migrate.js\nclock: node clock.js\n",
        Some("GREETING='from .env'\n"),
        &["node"],
    );
    let root = dir.path().canonicalize().unwrap();
    // (Tend::spawn runs tend in a directory of its own: the config is named in full.)
    let procfile = root.join("Procfile").display().to_string();
    let as_is = Tend::spawn(
        tempfile::tempdir().unwrap(),
        tend_in(&root, "as-is", &["-c", &procfile, "up", "-m", "web=2"]),
    );
    let mut ran_as_is = records(&root, "as-is", 5);
    stop(as_is);

    let imported = run_with_deadline(tend_in(&root, "x", &["import", "Procfile"]));
    assert_eq!(imported.code, Some(0), "{imported:?}");
    fs::write(root.join("tend.toml"), &imported.stdout).unwrap();
    let check = run_with_deadline(tend_in(&root, "x", &["check"]));
    assert_eq!(check.code, Some(0), "{check:?}");
    assert!(check
        .stdout
        .starts_with(&format!("{}/tend.toml: 4 processes", root.display())));

    // tend.toml runs the same commands, ports, directories and variables.
    let toml = root.join("tend.toml").display().to_string();
    let translated = Tend::spawn(
        tempfile::tempdir().unwrap(),
        tend_in(&root, "translated", &["-c", &toml, "up", "-m", "web=2"]),
    );
    let mut ran_translated = records(&root, "translated", 5);
    stop(translated);
    // release first in both; the rest in any order.
    assert!(
        ran_as_is[0].starts_with("release.0 port=5200 "),
        "{ran_as_is:?}"
    );
    assert_eq!(ran_as_is[0], ran_translated[0]);
    ran_as_is.sort();
    ran_translated.sort();
    assert_eq!(ran_as_is, ran_translated);
    assert!(ran_as_is.contains(&format!(
        "worker.0 port=5100 cwd={} greeting=from .env run=node worker.js --queue low prio",
        root.display()
    )));
}

#[test]
fn a_django_procfile_serves_with_a_real_gunicorn_on_foremans_port() {
    if !have("gunicorn (PyPI)", "gunicorn", &["--version"]) {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let dir = project(
        "release: python3 manage.py migrate\n\
         web: gunicorn hello.wsgi --bind 127.0.0.1:$PORT --workers 1 --log-file -\n\
         worker: python3 -u -c 'import os, time; print(\"worker on\", os.environ[\"PORT\"]); time.sleep(1000)'\n",
        Some(&format!("PORT={}\n", port - 100)),
        &[],
    );
    let root = dir.path().canonicalize().unwrap();
    fs::write(
        root.join("manage.py"),
        "import sys\nprint('Applying migrations:', ' '.join(sys.argv[1:]), 'OK')\n",
    )
    .unwrap();
    fs::create_dir(root.join("hello")).unwrap();
    fs::write(root.join("hello/__init__.py"), "").unwrap();
    fs::write(
        root.join("hello/wsgi.py"),
        "import os\n\
         def application(environ, start_response):\n\
         \x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
         \x20   return [('hello from ' + os.environ['TEND_PROCESS']).encode()]\n",
    )
    .unwrap();
    let tend = Tend::spawn(dir, tend_in(&root, "records", &["up"]));
    tend.wait_line("the migration", |l| {
        l.contains("| Applying migrations: migrate OK")
    });
    tend.wait_line("the worker", |l| {
        l.contains(&format!("| worker on {}", port + 100))
    });
    let mut body = String::new();
    eventually("gunicorn to answer on web's PORT", || {
        body = http_get(port).unwrap_or_default();
        body.contains("hello from web")
    });
    stop(tend);
}

/// The body of `GET /` on 127.0.0.1:`port`, if it answers.
fn http_get(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    Some(text)
}

#[test]
fn a_bad_procfile_or_env_is_refused_with_its_place_and_nothing_starts() {
    let dir = project("web: sleep 1000\nworker sleep 1000\n", None, &[]);
    let root = dir.path().canonicalize().unwrap();
    for verb in ["check", "up"] {
        let ran = run_with_deadline(tend_in(&root, "x", &[verb]));
        assert_eq!(ran.code, Some(78), "{verb}: {ran:?}");
        assert_eq!(
            ran.stderr,
            format!(
                "tend: {}/Procfile:2:1: expected `name: command`, found \"worker sleep 1000\"; \
                 a Procfile line is a process name, a colon and the command (a # starts a \
                 comment)\n",
                root.display()
            )
        );
    }
    assert!(!root.join(".tend").exists(), "nothing was started");

    fs::write(root.join("Procfile"), "web: sleep 1000\n").unwrap();
    fs::write(root.join(".env"), "A=1\nnot a variable\n").unwrap();
    let ran = run_with_deadline(tend_in(&root, "x", &["up"]));
    assert_eq!(ran.code, Some(78), "{ran:?}");
    assert_eq!(
        ran.stderr,
        format!(
            "tend: {}/.env:2:1: expected KEY=VALUE, found \"not a variable\"\n",
            root.display()
        )
    );
    fs::remove_file(root.join(".env")).unwrap();
    let ran = run_with_deadline(tend_in(&root, "x", &["up", "-m", "wbe=2"]));
    assert_eq!(ran.code, Some(78), "{ran:?}");
    assert!(
        ran.stderr
            .contains("--formation names \"wbe\", which is not a process here; known: web"),
        "{ran:?}"
    );
}

#[test]
fn a_failed_release_is_reported_by_the_processes_waiting_for_it() {
    let dir = project("web: sleep 1000\nrelease: echo nope; exit 3\n", None, &[]);
    let root = dir.path().canonicalize().unwrap();
    let tend = Tend::spawn(dir, tend_in(&root, "x", &["up"]));
    tend.wait_line("web's report", |l| {
        l.contains("web.0 waits for release to be completed, but release is exited")
    });
    stop(tend);
}
