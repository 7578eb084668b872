//! End to end: `tend ui`, the real binary in a real terminal: a tmux pane (120×30) on a tmux
//! server of the test's own (`tmux -L NAME`, killed on drop), read with `capture-pane` and
//! typed into with `send-keys`. Every wait polls the pane (every 50 ms) until what it waits
//! for shows, within [`PATIENCE`]; nothing sleeps to synchronise.
//!
//! The pane runs `sh -c 'tend … ui; echo UI-EXITED rc=$?; stty -a | …; sleep 100'`, so what
//! the terminal is left like after the UI ends shows in the pane: the exit code, and whether
//! `icanon` and `echo` are on again.
//!
//! tmux is needed: without it the tests say they are skipped, except where
//! `TEND_TEST_REQUIRE_TOOLS` is set (`.ci/run` installs tmux and sets it): there they fail.

mod common;

use std::fs;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::tmux::{self, have_tmux, quoted, Tmux};
use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The pid of `tend ui`: the child of the pane's shell called `tend`.
fn ui_pid(tmux: &Tmux) -> i32 {
    let shell: i32 = tmux.display("#{pane_pid}").parse().expect("a pane pid");
    children_of(shell)
        .into_iter()
        .map(|(pid, _)| pid)
        .find(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "tend")
        })
        .expect("tend ui runs under the pane's shell")
}

/// The shell script the pane runs: the UI against `d`, then what it left the terminal like.
fn ui_script(d: &Daemon) -> String {
    format!(
        "{} -c {} --socket {} ui{}",
        quoted(tend_bin()),
        quoted(&d.config().display().to_string()),
        quoted(&d.socket().display().to_string()),
        tmux::after("UI-EXITED"),
    )
}

/// The UI of `d` in a new pane, once it shows every instance in `names`.
fn ui(d: &Daemon, names: &[&str]) -> Tmux {
    let tmux = Tmux::start(&ui_script(d));
    tmux.wait_for("every instance", |s| {
        names.iter().all(|name| row(s, name).is_some())
    });
    tmux
}

/// The table row of instance `name` on the screen.
fn row<'a>(screen: &'a str, name: &str) -> Option<&'a str> {
    screen.lines().find(|line| {
        line.trim_start_matches(['│', '>', ' '])
            .starts_with(&format!("{name} "))
    })
}

/// The pid of `name` in `tend status --json`.
fn pid_of(d: &Daemon, name: &str) -> u64 {
    d.instance(name)["pid"].as_u64().expect("a live pid")
}

/// Asserts that the pane is back on the normal screen with a cooked terminal, the UI having
/// exited with `rc`.
fn assert_restored(tmux: &Tmux, rc: i32) {
    tmux::assert_restored(tmux, "UI-EXITED", rc);
    assert_eq!(
        tmux.display("#{alternate_on}"),
        "0",
        "still on the alternate screen"
    );
}

const TWO: &str = r#"
[process.web]
command = ["sleep", "1000"]

[process.worker]
command = ["sleep", "1000"]
replicas = 2
"#;

#[test]
fn the_list_shows_every_instance_and_follows_a_restart_from_outside() {
    if !have_tmux() {
        return;
    }
    let d = Daemon::start(TWO);
    for name in ["web.0", "worker.0", "worker.1"] {
        d.wait_state(name, "running");
    }
    let tmux = ui(&d, &["web.0", "worker.0", "worker.1"]);
    let screen = tmux.wait_for("the instances running with their pids", |s| {
        ["web.0", "worker.0", "worker.1"].iter().all(|name| {
            row(s, name).is_some_and(|r| {
                r.contains(" running ") && r.contains(&format!(" {} ", pid_of(&d, name)))
            })
        })
    });
    assert!(
        screen.starts_with(&format!("tend 0.1.0 (pid {})", d.pid)),
        "the header names tend's pid:\n{screen}"
    );
    assert!(
        screen.contains(&d.config().display().to_string()),
        "the header names the config:\n{screen}"
    );
    let before = pid_of(&d, "web.0");
    let ran = d.tend(&["restart", "web"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let after = pid_of(&d, "web.0");
    assert_ne!(before, after);
    // No key is pressed: the UI learns of the restart from the supervisor's events.
    tmux.wait_for("web.0's new pid", |s| {
        row(s, "web.0").is_some_and(|r| r.contains(&format!(" {after} ")))
    });
}

#[test]
fn a_filter_shows_only_the_matching_log_lines() {
    if !have_tmux() {
        return;
    }
    let d = Daemon::start(
        r#"
[process.fruit]
command = "for f in apple-1 banana-1 apple-2 banana-2 cherry-3; do echo $f; done; exec sleep 1000"
shell = true
"#,
    );
    let tmux = ui(&d, &["fruit.0"]);
    // fruit.0 is selected: the first row.
    tmux.wait_for("the fruit's lines", |s| {
        s.contains("apple-2") && s.contains("cherry-3")
    });
    tmux.keys(&["/"]);
    tmux.type_text("banana");
    tmux.wait_for("the filter typed", |s| s.contains("/banana"));
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("only the bananas", |s| {
        s.contains("filter: banana") && !s.contains("apple-") && !s.contains("cherry-")
    });
    assert!(
        screen.contains("banana-1") && screen.contains("banana-2"),
        "{screen}"
    );
    // Esc clears it.
    tmux.keys(&["Escape"]);
    tmux.wait_for("every line again", |s| {
        !s.contains("filter:") && s.contains("apple-1") && s.contains("cherry-3")
    });
}

#[test]
fn r_restarts_the_selected_instance() {
    if !have_tmux() {
        return;
    }
    let d = Daemon::start(TWO);
    for name in ["web.0", "worker.0", "worker.1"] {
        d.wait_state(name, "running");
    }
    let (web, worker) = (pid_of(&d, "web.0"), pid_of(&d, "worker.0"));
    let tmux = ui(&d, &["web.0", "worker.0", "worker.1"]);
    tmux.wait_for("web.0 selected", |s| s.contains("logs of web.0"));
    tmux.keys(&["j"]);
    tmux.wait_for("worker.0 selected", |s| {
        s.contains("logs of worker.0") && row(s, "worker.0").is_some_and(|r| r.contains("> "))
    });
    tmux.keys(&["r"]);
    eventually("worker.0 restarted", || {
        d.instance("worker.0")["pid"]
            .as_u64()
            .is_some_and(|pid| pid != worker)
    });
    let now = pid_of(&d, "worker.0");
    // The line of news shows the answer, or the event of the same moment that came after
    // it on its own connection ("worker.0 is running"): the last word wins.
    tmux.wait_for("worker.0's new pid and the answer", |s| {
        row(s, "worker.0").is_some_and(|r| r.contains(&format!(" {now} ")))
            && (s.contains(&format!("worker.0 running (pid {now})"))
                || s.contains("worker.0 is running"))
    });
    assert_eq!(pid_of(&d, "web.0"), web, "only the selected one restarts");
    assert_eq!(
        d.instance("worker.1")["restarts"],
        0,
        "only the selected one restarts"
    );
}

#[test]
fn q_leaves_the_terminal_as_it_found_it() {
    if !have_tmux() {
        return;
    }
    let d = Daemon::start(TWO);
    let tmux = ui(&d, &["web.0"]);
    assert_eq!(
        tmux.display("#{alternate_on}"),
        "1",
        "the UI is on the alternate screen"
    );
    tmux.keys(&["q"]);
    assert_restored(&tmux, 0);
}

#[test]
fn sigterm_leaves_the_terminal_as_it_found_it() {
    if !have_tmux() {
        return;
    }
    let d = Daemon::start(TWO);
    let tmux = ui(&d, &["web.0"]);
    assert_eq!(tmux.display("#{alternate_on}"), "1");
    kill(Pid::from_raw(ui_pid(&tmux)), Signal::SIGTERM).expect("kill");
    assert_restored(&tmux, 143);
}

#[test]
fn a_childs_escape_sequences_are_shown_not_obeyed() {
    if !have_tmux() {
        return;
    }
    // Set the title (OSC 2 and OSC 0), clear the screen, home the cursor, leave the
    // alternate screen, reset the terminal: once before the UI starts (a past line), once
    // while it runs (a live one).
    let d = Daemon::start(
        r#"
[process.evil]
command = '''
evil() { printf '%s\033]2;pwned\007\033]0;pwned\007\033[2J\033[H\033[?1049l\033cdone\n' "$1"; }
evil past-; while [ ! -e go ]; do sleep 0.05; done; evil live-; exec sleep 1000
'''
shell = true
cwd = "."
"#,
    );
    let tmux = Tmux::start("sleep 100");
    let title = tmux.display("#{pane_title}");
    drop(tmux);
    let tmux = ui(&d, &["evil.0"]);
    tmux.wait_for("the past line, as text", |s| {
        s.contains("past-^[]2;pwned^G^[]0;pwned^G^[[2J^[[H^[[?1049l^[cdone")
    });
    fs::write(d.path("go"), "").unwrap();
    let screen = tmux.wait_for("the live line, as text", |s| {
        s.contains("live-^[]2;pwned^G^[]0;pwned^G^[[2J^[[H^[[?1049l^[cdone")
    });
    assert!(
        screen.starts_with("tend 0.1.0 (pid "),
        "the screen was not cleared:\n{screen}"
    );
    assert!(row(&screen, "evil.0").is_some(), "{screen}");
    assert_eq!(tmux.display("#{pane_title}"), title, "the title changed");
    assert_eq!(
        tmux.display("#{alternate_on}"),
        "1",
        "the alternate screen was left"
    );
}

#[test]
fn the_ui_ends_when_the_supervisor_does() {
    if !have_tmux() {
        return;
    }
    let d = Daemon::start(TWO);
    let tmux = ui(&d, &["web.0"]);
    let ran = d.tend(&["down"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let screen = tmux.wait_for("the UI's last word", |s| s.contains("UI-EXITED"));
    assert!(
        screen.contains(&format!(
            "tend: the supervisor of {} (pid {}) has exited; tend ui ends",
            d.config().display(),
            d.pid
        )),
        "{screen}"
    );
    assert_restored(&tmux, 0);
}

/// The context switches of every thread of `pid`, summed.
fn switches(pid: i32) -> u64 {
    let mut n = 0;
    for task in fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let status = fs::read_to_string(task.path().join("status")).unwrap_or_default();
        n += status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    n
}

#[test]
fn an_idle_ui_wakes_no_thread() {
    if !have_tmux() {
        return;
    }
    let d = Daemon::start(
        r#"
[process.sleeper]
command = ["sleep", "1000"]
replicas = 3
start_secs = "0s"
"#,
    );
    for name in ["sleeper.0", "sleeper.1", "sleeper.2"] {
        d.wait_state(name, "running");
    }
    let tmux = ui(&d, &["sleeper.0", "sleeper.1", "sleeper.2"]);
    let pid = ui_pid(&tmux);
    // Settled: two samples 300 ms apart agree (the start's requests are answered).
    let deadline = Instant::now() + PATIENCE;
    let mut before = switches(pid);
    loop {
        thread::sleep(Duration::from_millis(300));
        let now = switches(pid);
        if now == before {
            break;
        }
        assert!(Instant::now() < deadline, "tend ui never went quiet");
        before = now;
    }
    // The measurement itself: a quiet window (bench/ui-idle measures 10 s).
    thread::sleep(Duration::from_secs(3));
    assert_eq!(
        switches(pid),
        before,
        "a thread of tend ui woke while nothing happened"
    );
}

#[test]
fn without_a_running_tend_the_ui_says_so_and_exits_3() {
    // No terminal is needed to be told: the check comes first.
    let dir = project(TWO);
    let mut cmd = Command::new(tend_bin());
    cmd.arg("-c")
        .arg(dir.path().join("tend.toml"))
        .arg("--socket")
        .arg(dir.path().join("tend.sock"))
        .arg("ui")
        .env_remove("TEND_CONFIG");
    let ran = run_with_deadline(cmd);
    assert_eq!(ran.code, Some(3), "{ran:?}");
    assert!(
        ran.stderr.starts_with("tend: no tend is running for "),
        "{ran:?}"
    );
    assert!(ran.stdout.is_empty(), "{ran:?}");
}

#[test]
fn the_foreground_console_shows_a_childs_escape_sequences_and_cannot_be_hijacked() {
    if !have_tmux() {
        return;
    }
    // `tend up` in a real terminal: a child sets the title, clears the screen, and tries to
    // overwrite another process's prefix with a bare carriage return.
    let dir = project(
        r#"
[process.evil]
command = '''
printf 'evil says hi\n'
printf '\033]2;pwned\007\033[2J\033[Hcleared?\n'
printf 'innocent\rgood.0 | forged line\n'
exec sleep 1000
'''
shell = true

[process.good]
command = "echo good says hi; exec sleep 1000"
shell = true
"#,
    );
    let config = dir.path().join("tend.toml");
    let script = format!(
        "{} -c {} up; echo TEND-EXITED rc=$?; sleep 100",
        quoted(tend_bin()),
        quoted(&config.display().to_string())
    );
    let tmux = Tmux::start(&script);
    let title_before = tmux.display("#{pane_title}");
    let screen = tmux.wait_for("the child's lines, as text", |s| {
        s.contains("^[]2;pwned^G^[[2J^[[Hcleared?") && s.contains("innocent^Mgood.0 | forged")
    });
    assert!(
        screen.contains("is up; control socket") && screen.contains("evil says hi"),
        "the screen was cleared:\n{screen}"
    );
    assert!(
        screen
            .lines()
            .all(|l| !l.trim_start().starts_with("good.0 | forged")),
        "a forged prefix:\n{screen}"
    );
    assert_eq!(
        tmux.display("#{pane_title}"),
        title_before,
        "the title changed"
    );
    tmux.keys(&["C-c"]);
    tmux.wait_for("tend to exit", |s| s.contains("TEND-EXITED rc=0"));
}
