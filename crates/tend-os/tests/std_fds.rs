//! `ensure_std_fds_open` fills a closed standard fd with /dev/null and leaves open ones alone.
//! Its own test binary: it closes the test process's stdin.

mod common;

use common::readlink;

#[test]
fn closed_stdin_is_reopened_on_dev_null() {
    let stdout_before = readlink("/proc/self/fd/1");
    let stderr_before = readlink("/proc/self/fd/2");
    // SAFETY: nothing in this test process reads stdin.
    assert_eq!(unsafe { libc::close(0) }, 0);

    tend_os::ensure_std_fds_open().expect("ensure");
    assert_eq!(readlink("/proc/self/fd/0"), "/dev/null");
    assert_eq!(readlink("/proc/self/fd/1"), stdout_before);
    assert_eq!(readlink("/proc/self/fd/2"), stderr_before);

    // With all three open, nothing changes.
    let fds_before = common::fds_of(std::process::id() as i32);
    tend_os::ensure_std_fds_open().expect("ensure again");
    assert_eq!(common::fds_of(std::process::id() as i32), fds_before);
}
