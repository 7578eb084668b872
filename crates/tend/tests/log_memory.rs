//! End to end: `tend logs` reads back a bounded amount of each file, so a child that prints
//! one huge line cannot make tend's memory grow with it, nor make the answer too long.

mod common;

use std::time::Duration;

use common::daemon::{try_run, Daemon};
use common::*;

/// The bytes of the child's one line: 100 MB of NUL, no newline.
const LINE: u64 = 100_000_000;

/// A field of /proc/PID/status in KiB, such as `VmHWM` (the peak resident set).
fn status_kib(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn tailing_a_100_mb_line_keeps_memory_bounded_and_answers() {
    let d = Daemon::start(&format!(
        "[process.nul]\ncommand = \"head -c {LINE} /dev/zero; exec sleep 1000\"\nshell = true\n\
         log = {{ max_size = \"200MiB\" }}\n"
    ));
    let log = d.path(".tend/logs/nul.0.log");
    eventually("the 100 MB line is in the log file", || {
        std::fs::metadata(&log).is_ok_and(|m| m.len() == LINE)
    });
    // Eight clients at once: four ask for one line, four for as many as tend sends.
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let lines = if i % 2 == 0 { "1" } else { "100000" };
            let cmd = d.command(&["logs", "-n", lines, "nul"]);
            std::thread::spawn(move || (lines, try_run(cmd, Duration::from_secs(60))))
        })
        .collect();
    for client in clients {
        let (lines, ran) = client.join().unwrap();
        let ran = ran.unwrap_or_else(|| panic!("tend logs -n {lines} nul did not finish"));
        assert_eq!(ran.code, Some(0), "logs -n {lines}: {}", ran.stderr);
        let printed: Vec<&str> = ran.stdout.lines().collect();
        if lines == "1" {
            // One piece of 16 KiB, marked as cut from a longer line.
            assert_eq!(printed.len(), 1, "logs -n 1");
            let piece = printed[0]
                .strip_prefix("nul.0 | ")
                .and_then(|l| l.strip_suffix(" [cut]"))
                .expect("nul.0 | …NUL… [cut]");
            assert_eq!(piece.len(), 16 * 1024);
            assert!(piece.bytes().all(|b| b == 0));
        } else {
            // As many pieces as 4 MiB holds, each marked cut.
            assert_eq!(printed.len(), 256, "logs -n 100000");
            assert!(printed.iter().all(|l| l.ends_with(" [cut]")));
        }
    }
    let peak = status_kib(d.pid, "VmHWM");
    eprintln!("tend peak resident memory: {peak} KiB");
    assert!(
        peak < 64 * 1024,
        "tend's peak resident memory was {peak} KiB, not under 64 MiB"
    );
}
