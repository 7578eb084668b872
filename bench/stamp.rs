//! A child for restart-latency measurements: appends "<start_ns> <exit_ns>\n" (wall clock, in
//! nanoseconds: fine over the seconds a run lasts) to the file named by $STAMP_FILE, then
//! exits at once. bench/core-figures builds it as a static binary, so the dynamic loader does
//! not count as tend's latency.
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

fn main() {
    let start = now_ns();
    let path = std::env::var_os("STAMP_FILE").expect("STAMP_FILE");
    let mut f = std::fs::OpenOptions::new().append(true).create(true).open(path).unwrap();
    let line = format!("{start} {}\n", now_ns());
    f.write_all(line.as_bytes()).unwrap();
}
