//! The child gets the RLIMIT_NOFILE tend had before raising its own.
//! Its own test binary: it changes the limit of the whole test process.

mod common;

use common::spawn_guarded;
use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// (soft, hard) from the "Max open files" line of /proc/<pid>/limits.
fn max_open_files(pid: i32) -> (String, String) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("read limits");
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files line");
    let mut words = line["Max open files".len()..].split_whitespace();
    (
        words.next().unwrap().to_owned(),
        words.next().unwrap().to_owned(),
    )
}

#[test]
fn child_gets_the_original_nofile_limit() {
    let (mut soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft == hard {
        let lowered = (hard / 2).min(1024);
        println!("soft == hard == {hard}: lowering our soft limit to {lowered} first");
        setrlimit(Resource::RLIMIT_NOFILE, lowered, hard).expect("lower soft limit");
        soft = lowered;
    }

    tend_os::raise_nofile_limit().expect("raise");
    tend_os::raise_nofile_limit().expect("raise again");
    assert_eq!(
        getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit"),
        (hard, hard)
    );
    assert_eq!(tend_os::original_nofile_limit(), Some((soft, hard)));

    let (child, _guard) = spawn_guarded(&["sleep", "30"]);
    assert_eq!(
        max_open_files(child.pid),
        (soft.to_string(), hard.to_string())
    );
}
