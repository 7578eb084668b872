//! End to end: `tend reload` reads the config off the driver's thread and refuses files that
//! could block it, so tend keeps supervising and answering whatever the config names.

mod common;

use std::time::Duration;

use common::daemon::{try_run, Daemon};
use common::*;

const SLEEPER: &str = "[process.sleeper]\ncommand = [\"sleep\", \"1000\"]\n";

#[test]
fn a_reload_naming_a_fifo_as_env_file_is_refused_and_tend_keeps_answering() {
    let d = Daemon::start(SLEEPER);
    d.wait_state("sleeper.0", "running");
    let fifo = d.path("fifo.env");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    std::fs::write(d.config(), format!("{SLEEPER}env_file = \"fifo.env\"\n")).unwrap();
    // Before the fix, the driver opened the FIFO and waited for a writer forever: this reload
    // never answered, and neither did anything after it.
    let reload = try_run(d.command(&["reload"]), Duration::from_secs(10))
        .expect("reload answers within 10 s");
    assert_eq!(reload.code, Some(78), "{reload:?}");
    assert!(
        reload
            .stderr
            .contains("tend.toml:3:12: process.sleeper.env_file")
            && reload.stderr.contains("it is a FIFO, not a regular file"),
        "{reload:?}"
    );
    let status = try_run(d.command(&["status", "--json"]), Duration::from_secs(5))
        .expect("status answers within 5 s");
    assert_eq!(status.code, Some(0), "{status:?}");
    // And it still supervises: a killed child is reaped and restarted.
    let pid = d.instance("sleeper.0")["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    eventually("sleeper.0 restarts in a new run", || {
        let i = d.instance("sleeper.0");
        i["state"] == "running" && i["pid"].as_i64() != Some(i64::from(pid))
    });
}

#[test]
fn reloads_asked_at_once_are_each_answered() {
    let d = Daemon::start(SLEEPER);
    d.wait_state("sleeper.0", "running");
    std::fs::write(
        d.config(),
        format!("{SLEEPER}\n[process.extra]\ncommand = [\"sleep\", \"1000\"]\n"),
    )
    .unwrap();
    let reloads: Vec<_> = (0..4)
        .map(|_| {
            let cmd = d.command(&["reload"]);
            std::thread::spawn(move || daemon::run_with_deadline(cmd))
        })
        .collect();
    for reload in reloads {
        let reload = reload.join().unwrap();
        assert_eq!(reload.code, Some(0), "{reload:?}");
    }
    d.wait_state("extra.0", "running");
}
