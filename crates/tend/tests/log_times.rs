//! End to end: `tend logs` gives each line the time tend read it (from the index beside each
//! log file) and prints the lines of several instances and streams in the order they were
//! printed; `--since`, `--timestamps`, `--json`; the index through rotation, a restart of tend,
//! and its loss.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use common::daemon::Daemon;
use common::*;

/// Lines the two processes of the ordering test print between them.
const TURNS: usize = 24;

/// Prints its share of `line 1` … `line TURNS`: odd lines are `p`'s, even ones `q`'s; lines
/// 1, 2, 5, 6, … go to stdout, 3, 4, 7, 8, … to stderr. Before each of its lines a process
/// waits until the previous line (the other's) is in tend's log file, so the order in which
/// tend read them is known; it gives up after about 20 s.
const TURN_TAKER: &str = r#"
me=$1
owner() { if [ $(($1 % 2)) -eq 1 ]; then echo p; else echo q; fi; }
file() { case $(($1 % 4)) in 1|2) echo log;; *) echo err.log;; esac; }
k=1
while [ $k -le TURNS ]; do
  if [ "$(owner $k)" = "$me" ]; then
    prev=$((k - 1))
    if [ $prev -ge 1 ]; then
      log=.tend/logs/$(owner $prev).0.$(file $prev)
      n=0
      until grep -qx "line $prev" "$log" 2>/dev/null; do
        n=$((n + 1))
        if [ $n -gt 2000 ]; then echo "gave up waiting for line $prev" >&2; exit 1; fi
        sleep 0.01
      done
    fi
    if [ "$(file $k)" = log ]; then echo "line $k"; else echo "line $k" >&2; fi
  fi
  k=$((k + 1))
done
exec sleep 1000
"#;

/// Whether the log file at `path` has the line `line`.
fn logged(path: &Path, line: &str) -> bool {
    fs::read_to_string(path).is_ok_and(|text| text.lines().any(|l| l == line))
}

/// `tend logs --json ARGS…`, parsed, one object per line.
fn json_logs(d: &Daemon, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["logs", "--json"];
    all.extend_from_slice(args);
    let ran = d.tend(&all);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    ran.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The time of a JSON log line, in ms since the epoch.
fn time_ms(line: &serde_json::Value) -> u64 {
    let text = line["time"]
        .as_str()
        .unwrap_or_else(|| panic!("no time: {line}"));
    let at = tend_core::time::parse_rfc3339(text).unwrap_or_else(|| panic!("{text}"));
    at.as_millis() as u64
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn lines_of_two_processes_and_both_streams_come_in_the_order_they_were_printed() {
    let dir = project(
        "[process.p]\ncommand = [\"sh\", \"turns.sh\", \"p\"]\ncwd = \".\"\n\
         [process.q]\ncommand = [\"sh\", \"turns.sh\", \"q\"]\ncwd = \".\"\n",
    );
    fs::write(
        dir.path().join("turns.sh"),
        TURN_TAKER.replace("TURNS", &TURNS.to_string()),
    )
    .unwrap();
    let d = Daemon::start_in(dir);
    let last = d.path(".tend/logs/q.0.err.log");
    eventually("the last line is logged", || {
        logged(&last, &format!("line {TURNS}"))
    });
    let expected: Vec<String> = (1..=TURNS)
        .map(|k| format!("{}.0 | line {k}", if k % 2 == 1 { "p" } else { "q" }))
        .collect();
    let ran = d.tend(&["logs", "-n", "100"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert_eq!(ran.stdout.lines().collect::<Vec<_>>(), expected, "{ran:?}");
    // The same for the named processes, the other way round: the order is the time's.
    let ran = d.tend(&["logs", "-n", "100", "q", "p"]);
    assert_eq!(ran.stdout.lines().collect::<Vec<_>>(), expected, "{ran:?}");
    // As JSON: every line has its time, in order, and its stream.
    let lines = json_logs(&d, &["-n", "100"]);
    assert_eq!(lines.len(), TURNS);
    let before = now_ms();
    for (k, line) in (1..=TURNS).zip(&lines) {
        let stream = if k % 4 == 1 || k % 4 == 2 {
            "stdout"
        } else {
            "stderr"
        };
        assert_eq!(line["line"], format!("line {k}"), "{line}");
        assert_eq!(line["stream"], stream, "{line}");
        assert!(time_ms(line) <= before, "{line}");
    }
    let times: Vec<u64> = lines.iter().map(time_ms).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(
        before - times[0] < 120_000,
        "the times are those of this test: {times:?}"
    );
    // Fewer lines: the last N of each file, still merged.
    let ran = d.tend(&["logs", "-n", "1"]);
    let tail: Vec<String> = [21, 22, 23, 24]
        .iter()
        .map(|k| format!("{}.0 | line {k}", if k % 2 == 1 { "p" } else { "q" }))
        .collect();
    assert_eq!(ran.stdout.lines().collect::<Vec<_>>(), tail, "{ran:?}");
}

/// A process that prints `old`, then `new` 10 ms after the file `go` exists in its directory
/// (it gives up after about 20 s). The test makes `go` once `old` is in the log, so tend reads
/// the two lines at least 10 ms apart: read in the same millisecond, `new` would rightly get no
/// record of its own (the index notes a file's first write of each millisecond only), which a
/// test that counts records would take for a lost one.
const OLD_THEN_NEW: &str =
    "[process.s]\ncommand = \"echo old; n=0; until [ -e go ]; do n=$((n+1)); \
    [ $n -gt 2000 ] && exit 1; sleep 0.01; done; sleep 0.01; echo new; exec sleep 1000\"\n\
    shell = true\ncwd = \".\"\n";

#[test]
fn since_leaves_out_older_lines_and_timestamps_print_each_lines_time() {
    let d = Daemon::start(OLD_THEN_NEW);
    let log = d.path(".tend/logs/s.0.log");
    eventually("old is logged", || logged(&log, "old"));
    // `old` was read before now; everything after `go` is later.
    let mid_ms = now_ms() + 1;
    let follow = Running::start(d.command(&["logs", "-f", "-n", "0", "--json", "s"]));
    std::thread::sleep(Duration::from_millis(1200));
    let go = Instant::now();
    fs::write(d.path("go"), "").unwrap();
    eventually("new is logged", || logged(&log, "new"));
    let since = d.tend(&["logs", "--since", "1s", "s"]);
    let took = go.elapsed();
    assert_eq!(since.code, Some(0), "{since:?}");
    assert!(!since.stdout.contains("old"), "{since:?}");
    if took < Duration::from_secs(1) {
        assert_eq!(since.stdout, "s.0 | new\n", "{since:?}");
    } else {
        eprintln!("the machine took {took:?} to log a line and answer: `new` not checked");
    }
    // An RFC 3339 time between the two: exactly the second line.
    let mid = tend_core::time::rfc3339_millis(Duration::from_millis(mid_ms));
    let since = d.tend(&["logs", "--since", &mid, "s"]);
    assert_eq!(since.stdout, "s.0 | new\n", "--since {mid}: {since:?}");
    let since = d.tend(&["logs", "--since", &mid, "-n", "5", "--json", "s"]);
    let line: serde_json::Value = serde_json::from_str(since.stdout.trim()).unwrap();
    assert!(time_ms(&line) >= mid_ms, "{line}");
    // Nothing at all since a time to come; a bad time is a usage error.
    let future = tend_core::time::rfc3339_millis(Duration::from_millis(now_ms() + 3_600_000));
    assert_eq!(d.tend(&["logs", "--since", &future]).stdout, "");
    let bad = d.tend(&["logs", "--since", "yesterday"]);
    assert_eq!(bad.code, Some(2), "{bad:?}");
    assert!(bad.stderr.contains("neither a duration"), "{bad:?}");

    // --timestamps: the time, then the line as usual.
    let stamped = d.tend(&["logs", "--timestamps", "s"]);
    let lines: Vec<&str> = stamped.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stamped:?}");
    let mut times = Vec::new();
    for (line, text) in lines.iter().zip(["s.0 | old", "s.0 | new"]) {
        let (time, rest) = line.split_once(' ').unwrap();
        assert_eq!(rest, text, "{line}");
        assert_eq!(time.len(), "2026-11-29T21:44:09.512Z".len(), "{line}");
        let at = tend_core::time::parse_rfc3339(time).unwrap_or_else(|| panic!("{line}"));
        times.push(at.as_millis() as u64);
    }
    assert!(times[0] < mid_ms && times[1] >= mid_ms + 1000, "{times:?}");
    let bare = d.tend(&["logs", "--timestamps", "--no-prefix", "s"]);
    assert!(bare.stdout.lines().all(|l| l.len() == 24 + 4), "{bare:?}");

    // The follower got `new` live, with its time.
    eventually("the follower shows new", || {
        follow.printed().stdout.contains("\"new\"")
    });
    let live: serde_json::Value =
        serde_json::from_str(follow.printed().stdout.lines().next().unwrap()).unwrap();
    assert_eq!(live["line"], "new");
    assert_eq!(time_ms(&live), times[1], "the time the past line has too");
}

#[test]
fn a_deleted_or_truncated_index_gives_lines_without_times_and_never_an_error() {
    let d = Daemon::start(OLD_THEN_NEW);
    let log = d.path(".tend/logs/s.0.log");
    let index = d.path(".tend/logs/s.0.log.idx");
    eventually("old is logged", || logged(&log, "old"));
    fs::write(d.path("go"), "").unwrap();
    eventually("new is logged", || logged(&log, "new"));
    let lines = json_logs(&d, &["s"]);
    assert!(lines.iter().all(|l| l["time"].is_string()), "{lines:?}");
    let records = fs::read(&index).unwrap();
    assert_eq!(records.len(), 32, "one record per line");

    // Truncated within the second record: the first counts, and `new` gets its time.
    fs::write(&index, &records[..20]).unwrap();
    let lines = json_logs(&d, &["s"]);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["time"], lines[1]["time"], "{lines:?}");
    // No whole record: no time; --timestamps shows the placeholder.
    fs::write(&index, &records[..10]).unwrap();
    let lines = json_logs(&d, &["s"]);
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l.get("time").is_none()), "{lines:?}");
    let stamped = d.tend(&["logs", "--timestamps", "s"]);
    assert_eq!(
        stamped.stdout,
        "????-??-??T??:??:??.???Z s.0 | old\n????-??-??T??:??:??.???Z s.0 | new\n"
    );
    // Garbage: answers all the same.
    fs::write(&index, [0xffu8; 48]).unwrap();
    assert_eq!(json_logs(&d, &["s"]).len(), 2);
    // Deleted: the lines, no times; `--since` shows none of them (their time is unknown).
    fs::remove_file(&index).unwrap();
    let lines = json_logs(&d, &["s"]);
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l.get("time").is_none()), "{lines:?}");
    assert_eq!(d.tend(&["logs", "--since", "1h", "s"]).stdout, "");
    assert!(d.alive(), "tend is still there");
    assert_eq!(d.instance("s.0")["restarts"], 0, "and so is its process");
}

#[test]
fn lines_in_the_current_file_after_a_rotation_have_their_times() {
    let dir = project(
        "[process.r]\ncommand = [\"sh\", \"lines.sh\"]\ncwd = \".\"\n\
         log = { max_size = \"1KiB\", keep = 5 }\n",
    );
    fs::write(
        dir.path().join("lines.sh"),
        "for i in $(seq 1 60); do echo \"line $i ........................................\"; done\n\
         echo last\nexec sleep 1000\n",
    )
    .unwrap();
    let d = Daemon::start_in(dir);
    let log = d.path(".tend/logs/r.0.log");
    eventually("the last line is logged", || logged(&log, "last"));
    assert!(d.path(".tend/logs/r.0.log.1").exists(), "rotated");
    assert!(
        d.path(".tend/logs/r.0.log.1.idx").exists(),
        "the index rotated with its file"
    );
    // The current file's lines only (rotated files are not read), each with its time.
    let current = fs::read_to_string(&log).unwrap();
    let lines = json_logs(&d, &["-n", "1000", "r"]);
    assert_eq!(lines.len(), current.lines().count(), "{lines:?}");
    assert!(lines.len() > 1);
    assert!(lines.iter().all(|l| l["time"].is_string()), "{lines:?}");
}

#[test]
fn lines_keep_their_times_across_a_restart_of_tend() {
    let mut d = Daemon::start(
        "[process.once]\ncommand = \"echo a; sleep 0.1; echo b; exec sleep 1000\"\nshell = true\n",
    );
    let log = d.path(".tend/logs/once.0.log");
    let index = d.path(".tend/logs/once.0.log.idx");
    eventually("b is logged", || logged(&log, "b"));
    // tend stops: what its index held in memory is on disk, a record per line.
    assert_eq!(d.tend(&["down"]).code, Some(0));
    d.wait_gone();
    assert_eq!(fs::metadata(&index).unwrap().len(), 32);
    let up = d.tend(&["up", "-d"]);
    assert_eq!(up.code, Some(0), "{up:?}");
    d.pid = fs::read_to_string(d.path("tend.sock.lock"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    eventually("the second run's b is logged", || {
        fs::read_to_string(&log).is_ok_and(|t| t == "a\nb\na\nb\n")
    });
    let lines = json_logs(&d, &["once"]);
    let texts: Vec<&str> = lines.iter().map(|l| l["line"].as_str().unwrap()).collect();
    assert_eq!(texts, ["a", "b", "a", "b"]);
    let times: Vec<u64> = lines.iter().map(time_ms).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    // b was printed 0.1 s after a; each time is when tend read the line, so a read of a that
    // came late narrows the gap (under load, by a few ms): each line has its own time, not
    // one for both.
    assert!(
        times[1] >= times[0] + 50 && times[3] >= times[2] + 50,
        "b came 0.1 s after a: {times:?}"
    );
}
