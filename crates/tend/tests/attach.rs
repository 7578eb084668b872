//! End to end: interactive processes (`interactive = true`) and `tend attach`, the real
//! binary against a real daemon. The attaching terminal is a tmux pane (see
//! `common::tmux`): keys typed there reach the process, its answers show there, the size of
//! the pane is the size of the process's terminal, Ctrl+] detaches and leaves the terminal as
//! it was. pdb, the debugger of the issue's story, is driven through it too.

mod common;

use common::daemon::Daemon;
use common::tmux::{self, have_tmux, quoted, Tmux};
use common::*;

/// The shell script a pane runs: `tend attach NAME` against `d`, then how it ended.
fn attach_script(d: &Daemon, name: &str) -> String {
    format!(
        "{} -c {} --socket {} attach {name}{}",
        quoted(tend_bin()),
        quoted(&d.config().display().to_string()),
        quoted(&d.socket().display().to_string()),
        tmux::after(MARKER),
    )
}

/// What the pane says once `tend attach` ended.
const MARKER: &str = "ATTACH-EXITED";

/// Asserts that `tend attach` exited with `rc` and left the terminal cooked and echoing.
fn assert_restored(tmux: &Tmux, rc: i32) -> String {
    tmux::assert_restored(tmux, MARKER, rc)
}

const REPL: &str = r#"
[process.repl]
command = ["sh", "-c", "echo 'repl ready'; while IFS= read -r line; do echo \"got:$line\"; done"]
interactive = true
"#;

#[test]
fn attach_types_into_a_child_reading_its_stdin_and_ctrl_close_bracket_detaches() {
    if !have_tmux() {
        return;
    }
    let d = Daemon::start(REPL);
    let pid = d.wait_state("repl.0", "running")["pid"].as_u64().unwrap();
    let log = d.path(".tend/logs/repl.0.log");
    eventually("the first line in the log", || {
        read_or_empty(&log).contains("repl ready")
    });
    let tmux = Tmux::start(&attach_script(&d, "repl"));
    // What it printed before anyone attached is shown first.
    tmux.wait_for("the attach notice and the past output", |s| {
        s.contains(&format!(
            "attached to repl.0 (pid {pid}); detach with Ctrl+]"
        )) && s.contains("repl ready")
    });
    tmux.type_text("hello, world");
    tmux.keys(&["Enter"]);
    tmux.wait_for("the child's answer", |s| s.contains("got:hello, world"));
    tmux.keys(&["C-]"]);
    let screen = assert_restored(&tmux, 0);
    assert!(
        screen.contains("detached from repl.0; it goes on running"),
        "{screen}"
    );
    // Still the same run, and everything is in its log: what was typed (the terminal's
    // echo) and what it answered; nothing in a separate stderr.
    assert_eq!(d.instance("repl.0")["pid"].as_u64(), Some(pid));
    let text = read_or_empty(&log);
    assert!(text.contains("hello, world\n"), "{text:?}");
    assert!(text.contains("got:hello, world\n"), "{text:?}");
    assert!(
        read_or_empty(&d.path(".tend/logs/repl.0.err.log")).is_empty(),
        "an interactive process has one stream"
    );
    let logs = d.tend(&["logs", "repl"]);
    assert!(
        logs.stdout.contains("repl.0 | got:hello, world"),
        "{logs:?}"
    );
}

#[test]
fn the_panes_size_reaches_the_process_and_ctrl_c_interrupts_the_process_not_attach() {
    if !have_tmux() {
        return;
    }
    let d = Daemon::start(
        r#"
[process.sizes]
command = '''
trap 'echo "size $(stty size)"' WINCH
trap 'echo interrupted' INT
echo "start $(stty size)"
while :; do sleep 0.05; done
'''
shell = true
interactive = true
"#,
    );
    let pid = d.wait_state("sizes.0", "running")["pid"].as_u64().unwrap();
    let log = d.path(".tend/logs/sizes.0.log");
    eventually("the start line", || read_or_empty(&log).contains("start"));
    // A terminal nobody attached to is 24×80.
    assert!(
        read_or_empty(&log).contains("start 24 80"),
        "{}",
        read_or_empty(&log)
    );
    let tmux = Tmux::start(&attach_script(&d, "sizes.0"));
    // Attaching gives it the pane's size (120×30): SIGWINCH.
    tmux.wait_for("the pane's size", |s| s.contains("size 30 120"));
    let ran = tmux.run(&["resize-window", "-t", "ui", "-x", "100", "-y", "25"]);
    assert_eq!(ran.code, Some(0), "tmux resize-window: {ran:?}");
    tmux.wait_for("the new size", |s| s.contains("size 25 100"));
    tmux.keys(&["C-c"]);
    tmux.wait_for("the process's own trap", |s| s.contains("interrupted"));
    // Ctrl+C went to the process (which caught it), not to `tend attach`.
    assert!(!tmux.screen().contains("ATTACH-EXITED"));
    assert_eq!(d.instance("sizes.0")["pid"].as_u64(), Some(pid));
    tmux.keys(&["C-]"]);
    assert_restored(&tmux, 0);
}

#[test]
fn pdb_at_a_breakpoint_can_be_used_through_attach_and_attach_ends_with_the_run() {
    if !have_tmux() {
        return;
    }
    let d = Daemon::start(
        r#"
[process.app]
command = ["python3", "-c", "import pdb\nanswer = 6 * 7\npdb.set_trace()\nprint('after the breakpoint', answer)"]
interactive = true
restart = "never"
"#,
    );
    let log = d.path(".tend/logs/app.0.log");
    // The prompt has no newline: it is there for whoever attaches later.
    eventually("pdb's prompt", || read_or_empty(&log).contains("(Pdb) "));
    let tmux = Tmux::start(&attach_script(&d, "app"));
    tmux.wait_for("the prompt, replayed", |s| s.contains("(Pdb)"));
    tmux.type_text("p answer");
    tmux.keys(&["Enter"]);
    tmux.wait_for("pdb's answer", |s| s.lines().any(|l| l.trim() == "42"));
    tmux.type_text("c");
    tmux.keys(&["Enter"]);
    let screen = assert_restored(&tmux, 0);
    assert!(screen.contains("after the breakpoint 42"), "{screen}");
    assert!(
        screen.contains("app.0's terminal closed: now app.0 exited"),
        "{screen}"
    );
    assert_eq!(d.wait_state("app.0", "exited")["last_exit"]["code"], 0);
}

#[test]
fn a_child_on_its_terminal_sees_one_and_piped_input_is_typed_then_detaches_at_its_end() {
    let d = Daemon::start(
        r#"
[process.repl]
command = '''
for fd in 0 1 2; do test -t $fd && echo "fd $fd is a terminal"; done
echo "its terminal: $(tty)"
while IFS= read -r line; do echo "got:$line"; done
'''
shell = true
interactive = true
"#,
    );
    d.wait_state("repl.0", "running");
    let log = d.path(".tend/logs/repl.0.log");
    eventually("its first lines", || {
        read_or_empty(&log).contains("its terminal")
    });
    let text = read_or_empty(&log);
    for fd in 0..3 {
        assert!(text.contains(&format!("fd {fd} is a terminal")), "{text}");
    }
    assert!(text.contains("its terminal: /dev/pts/"), "{text}");
    assert!(
        !text.contains('\r'),
        "the log has the bytes the process wrote: {text:?}"
    );
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(format!(
        "printf 'one\\ntwo\\n' | {} -c {} --socket {} attach repl",
        quoted(tend_bin()),
        quoted(&d.config().display().to_string()),
        quoted(&d.socket().display().to_string()),
    ));
    let ran = run_with_deadline(cmd);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    eventually("both lines answered", || {
        let text = read_or_empty(&log);
        text.contains("got:one\n") && text.contains("got:two\n")
    });
    // `tend check` says it is interactive.
    let check = d.tend(&["check"]);
    assert!(check.stdout.contains("interactive"), "{check:?}");
}

#[test]
fn attach_refuses_what_has_no_terminal_with_a_reason_and_what_to_do() {
    let d = Daemon::start(
        r#"
[process.plain]
command = ["sleep", "1000"]

[process.many]
command = ["sleep", "1000"]
replicas = 2
interactive = true

[process.later]
command = ["sleep", "1000"]
interactive = true
autostart = false
"#,
    );
    d.wait_state("plain.0", "running");
    let cases = [
        (
            "plain",
            1,
            "plain.0 is not interactive: it has no terminal to attach to",
        ),
        (
            "many",
            2,
            "many has 2 instances: name one of them (many.0, many.1)",
        ),
        (
            "later",
            1,
            "later.0 is not running (it is stopped); start it with `tend start later.0`",
        ),
        ("nope", 2, "no process or instance named \"nope\""),
    ];
    for (name, code, message) in cases {
        let ran = d.tend(&["attach", name]);
        assert_eq!(ran.code, Some(code), "attach {name}: {ran:?}");
        assert!(ran.stderr.contains(message), "attach {name}: {ran:?}");
    }
    // Without a supervisor: exit 3, as every verb.
    let dir = project(REPL);
    let mut cmd = std::process::Command::new(tend_bin());
    cmd.args(["attach", "repl"])
        .current_dir(dir.path())
        .arg("--socket")
        .arg(dir.path().join("tend.sock"));
    let ran = run_with_deadline(cmd);
    assert_eq!(ran.code, Some(3), "{ran:?}");
}

/// The text of `path`, or empty when it is not there yet.
fn read_or_empty(path: &std::path::Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// Kills a process group when dropped: the child of a tend the test killed has nobody else.
struct GroupGuard(i32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[test]
fn when_tend_is_killed_an_interactive_process_hangs_up_as_in_a_closed_terminal() {
    let d = Daemon::start(
        r#"
[process.term]
command = "trap 'echo hung-up > hup-seen; exit 0' HUP; echo up; while :; do sleep 0.05; done"
shell = true
interactive = true
cwd = "."
"#,
    );
    let pid = d.wait_state("term.0", "running")["pid"].as_u64().unwrap() as i32;
    let _group = GroupGuard(pid);
    eventually("its first line", || {
        read_or_empty(&d.path(".tend/logs/term.0.log")).contains("up")
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9 tend");
    eventually("the process's SIGHUP trap", || {
        read_or_empty(&d.path("hup-seen")) == "hung-up\n"
    });
    eventually("the process gone", || !is_running(pid));
}
