//! Contract tests of `wait_exit`: it returns when a process exits, or when the time is up.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn returns_when_the_process_exits_or_the_time_is_up() {
    let spawned = Instant::now();
    let mut sleeper = Command::new("sleep")
        .arg("0.3")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = sleeper.id() as i32;
    let asked = Instant::now();
    let gone = tend_os::wait_exit(pid, Duration::from_millis(50)).unwrap();
    assert!(!gone, "still sleeping");
    assert!(
        asked.elapsed() >= Duration::from_millis(50),
        "not before the time is up"
    );
    assert!(
        tend_os::wait_exit(pid, Duration::from_secs(20)).unwrap(),
        "it exited"
    );
    assert!(
        spawned.elapsed() >= Duration::from_millis(300),
        "not before it exited"
    );
    // A zombie counts as gone; so does a process reaped and gone from the table.
    assert!(tend_os::wait_exit(pid, Duration::ZERO).unwrap());
    sleeper.wait().unwrap();
    assert!(tend_os::wait_exit(pid, Duration::ZERO).unwrap());
}
