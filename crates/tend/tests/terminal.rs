//! End to end: what `tend up` shows on the terminal: colour only on a terminal and without
//! NO_COLOR, and no child output with --quiet.

mod common;

use std::process::Command;

use common::*;
use nix::sys::signal::Signal;

const CONFIG: &str = r#"
[process.hello]
command = "echo hello-line; exec sleep 1000"
shell = true
"#;

/// Runs tend under a pseudo-terminal (util-linux `script`), so its stdout is a tty; `env` is
/// put before the command, e.g. `NO_COLOR=1`.
fn up_on_a_tty(env: &str) -> Tend {
    let dir = project(CONFIG);
    let config = dir.path().join("tend.toml");
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c"])
        .arg(format!(
            "{env} exec {} -c {} up",
            tend_bin(),
            config.display()
        ))
        .arg("/dev/null");
    Tend::spawn(dir, cmd)
}

#[test]
fn colour_on_a_terminal() {
    let tend = up_on_a_tty("");
    let line = tend.wait_line("hello line", |l| l.contains("hello-line"));
    assert!(line.contains("\x1b["), "coloured prefix: {line:?}");
}

#[test]
fn no_colour_with_no_color_even_on_a_terminal() {
    let tend = up_on_a_tty("NO_COLOR=1");
    let line = tend.wait_line("hello line", |l| l.contains("hello-line"));
    assert!(!line.contains('\x1b'), "{line:?}");
    assert!(line.starts_with("hello.0 | hello-line"), "{line:?}");
}

#[test]
fn quiet_shows_notices_but_no_child_output() {
    let mut tend = Tend::up(CONFIG, &["--quiet"]);
    tend.wait_line("started", |l| l.contains("hello.0 started"));
    // The line reaches the log even though the terminal does not show it.
    let log = tend.path(".tend/logs/hello.0.log");
    eventually("the line is logged", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t == "hello-line\n")
    });
    tend.signal(Signal::SIGTERM);
    assert_eq!(tend.wait_exit().code(), Some(0));
    let t = tend.transcript();
    assert!(
        t.iter().all(|l| l.starts_with("tend ")),
        "only tend's notices: {t:#?}"
    );
}

#[test]
fn a_child_cannot_hijack_the_terminal_and_its_log_keeps_every_byte() {
    let dir = project(
        r#"
[process.evil]
command = '''printf '\033]0;pwned\007title\n\033[2Jcleared\n\033[31mcrimson\033[0m\nfake\rtend | forged\n'; exec sleep 1000'''
shell = true
"#,
    );
    let config = dir.path().join("tend.toml");
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c"])
        .arg(format!("exec {} -c {} up", tend_bin(), config.display()))
        .arg("/dev/null");
    let tend = Tend::spawn(dir, cmd);
    let title = tend.wait_line("the title line", |l| l.contains("title"));
    assert!(title.contains("^[]0;pwned^Gtitle"), "{title:?}");
    assert!(!title.contains('\x07'), "{title:?}");
    let cleared = tend.wait_line("the clear line", |l| l.contains("cleared"));
    assert!(cleared.contains("^[[2J"), "{cleared:?}");
    let red = tend.wait_line("the crimson line", |l| l.contains("crimson"));
    assert!(
        red.contains("\x1b[31mcrimson\x1b[0m"),
        "colour is kept: {red:?}"
    );
    let forged = tend.wait_line("the forged line", |l| l.contains("forged"));
    assert!(forged.contains("fake^Mtend | forged"), "{forged:?}");
    // The log has exactly what the child printed.
    let log = tend.path(".tend/logs/evil.0.log");
    let expected: &[u8] =
        b"\x1b]0;pwned\x07title\n\x1b[2Jcleared\n\x1b[31mcrimson\x1b[0m\nfake\rtend | forged\n";
    eventually("the log has every byte", || {
        std::fs::read(&log).is_ok_and(|b| b == expected)
    });
}
