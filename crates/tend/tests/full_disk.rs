//! End to end: log_dir on a full disk (a 1 MiB tmpfs). Children wait on their full pipes and
//! nothing is lost once space returns; `status` shows the log error while it lasts; tend's
//! own log resumes and says what it could not write; a stop with the disk full says what it
//! could not write, and where. Mounting needs root: the tests are `#[ignore]`d in a normal run
//! and run as root with `cargo test -- --ignored needs_root::`, as CI does.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::daemon::Daemon;
use common::*;

/// A tmpfs mounted for one test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a 1 MiB tmpfs at `dir` (created). Needs root: the tests that call it are in
    /// `needs_root`, ignored in a normal run.
    fn mount(dir: &Path, test: &str) -> Option<Tmpfs> {
        assert!(
            nix::unistd::getuid().is_root(),
            "{test}: mounting a tmpfs needs root"
        );
        fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs"])
            .arg(dir)
            .status()
            .expect("running mount");
        assert!(status.success(), "mount failed: {status}");
        Some(Tmpfs(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.0).status();
        if !ok.is_ok_and(|s| s.success()) {
            // Still busy (a test failed with tend alive): detach it now, gone when unused.
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// `seq 1 N` as bytes.
fn seq(n: u32) -> Vec<u8> {
    (1..=n)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect()
}

const LINES: u32 = 500_000;

fn flood_config() -> String {
    format!(
        r#"
[supervisor]
log_dir = "logs"

[process.flood]
command = ["sh", "-c", "seq 1 {LINES}; exec sleep 600"]
restart = "never"
"#
    )
}

/// Tests that mount a tmpfs, which needs root.
mod needs_root {
    use super::*;

    #[test]
    #[ignore = "needs root to mount a tmpfs: run with --ignored needs_root:: (CI does)"]
    fn a_full_disk_shows_in_status_and_loses_nothing() {
        let dir = project(&flood_config());
        let logs = dir.path().join("logs");
        let Some(mount) = Tmpfs::mount(&logs, "a_full_disk_shows_in_status_and_loses_nothing")
        else {
            return;
        };
        let daemon = Daemon::start_in(dir);
        let log = logs.join("flood.0.log");
        let expected = seq(LINES);
        let mut saved = Vec::new();
        let mut full_seen = 0;
        loop {
            // Wait until the disk is full (status says so) or everything got written.
            let mut status = serde_json::Value::Null;
            eventually("the disk fills up, or the output is all written", || {
                status = daemon.instance("flood.0");
                !status["log_error"].is_null()
                    || fs::read(&log).is_ok_and(|b| saved.len() + b.len() == expected.len())
            });
            if status["log_error"].is_null() {
                break;
            }
            full_seen += 1;
            let error = &status["log_error"];
            assert_eq!(error["file"], log.display().to_string(), "{status}");
            assert!(
                error["error"].as_str().unwrap().contains("No space left"),
                "{status}"
            );
            assert!(error["failing_ms"].is_u64(), "{status}");
            let table = daemon.tend(&["status"]).stdout;
            assert!(
                table.contains(&format!("log error: writing {}", log.display())),
                "{table}"
            );
            // The disk is full, so nothing lands between the read and the truncation.
            saved.extend(fs::read(&log).unwrap());
            fs::File::create(&log).unwrap();
            // The retry writes into the room made: from then on, an error is a fresh one.
            eventually("the write is retried", || {
                fs::metadata(&log).is_ok_and(|m| m.len() > 0)
            });
        }
        saved.extend(fs::read(&log).unwrap());
        assert!(full_seen >= 2, "the disk filled up {full_seen} times");
        assert!(saved == expected, "every byte once, in order");
        assert!(
            daemon.instance("flood.0")["log_error"].is_null(),
            "the error is cleared once writes succeed"
        );
        let tend_log = fs::read_to_string(logs.join("tend.log")).unwrap();
        assert!(
            tend_log.contains("works again; nothing was lost"),
            "{tend_log}"
        );
        assert_eq!(daemon.tend(&["down"]).code, Some(0));
        daemon.wait_gone();
        drop(mount);
    }

    #[test]
    #[ignore = "needs root to mount a tmpfs: run with --ignored needs_root:: (CI does)"]
    fn a_stop_with_the_disk_full_says_what_it_could_not_write() {
        let dir = project(&flood_config());
        let logs = dir.path().join("logs");
        let Some(_mount) = Tmpfs::mount(
            &logs,
            "a_stop_with_the_disk_full_says_what_it_could_not_write",
        ) else {
            return;
        };
        let mut tend = Tend::up_in(dir, &["--quiet"]);
        tend.wait_line("the disk is full", |l| {
            l.contains("No space left on device")
        });
        tend.signal(nix::sys::signal::Signal::SIGTERM);
        tend.wait_exit();
        let log = logs.join("flood.0.log");
        let line = tend.wait_line("what could not be written", |l| {
            l.contains("could not write")
        });
        assert!(line.contains(&log.display().to_string()), "{line}");
        let bytes: u64 = line
            .split("could not write ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a byte count in {line:?}"));
        assert!(bytes > 0, "{line}");
        assert!(
            tend.stderr().contains("could not write"),
            "{}",
            tend.stderr()
        );
    }

    #[test]
    #[ignore = "needs root to mount a tmpfs: run with --ignored needs_root:: (CI does)"]
    fn tend_log_resumes_after_a_full_disk_and_counts_what_it_lost() {
        let dir = project(
            r#"
    [supervisor]
    log_dir = "logs"

    [process.web]
    command = ["sleep", "600"]
    "#,
        );
        let logs = dir.path().join("logs");
        let Some(mount) = Tmpfs::mount(
            &logs,
            "tend_log_resumes_after_a_full_disk_and_counts_what_it_lost",
        ) else {
            return;
        };
        let daemon = Daemon::start_in(dir);
        daemon.wait_state("web.0", "running");
        // Fill the disk through tend.log itself, to its last byte: its next write fails.
        let tend_log = logs.join("tend.log");
        {
            use std::io::Write;
            let mut file = fs::OpenOptions::new().append(true).open(&tend_log).unwrap();
            for size in [65536, 4096, 1] {
                let filler = vec![b'x'; size];
                while file.write(&filler).is_ok_and(|n| n == size) {}
            }
        }
        let filled = fs::metadata(&tend_log).unwrap().len();
        // Notices tend cannot write: a stop of web.0, then a start.
        assert_eq!(daemon.tend(&["stop", "web"]).code, Some(0));
        assert_eq!(daemon.tend(&["start", "web"]).code, Some(0));
        assert_eq!(
            fs::metadata(&tend_log).unwrap().len(),
            filled,
            "the disk was full"
        );
        fs::File::create(&tend_log).unwrap();
        eventually("tend.log resumes and says what it could not write", || {
            fs::read_to_string(&tend_log).is_ok_and(|t| {
                t.contains("writing tend's output failed for") && t.contains("web.0 started")
            })
        });
        assert_eq!(daemon.tend(&["down"]).code, Some(0));
        daemon.wait_gone();
        drop(mount);
    }
}
