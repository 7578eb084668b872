//! `memory_limit`: a process whose tree grows past its limit is stopped and restarted by its
//! policy, measured on the whole tree (a child of the process counts), and one under its limit
//! is left alone.

mod common;

use common::{started_pid, Tend};

/// A shell whose child (not the process itself) takes `mib` MiB, touched so it is resident,
/// then sleeps: the tree holds the memory, the leader almost none.
fn hog(mib: u32) -> String {
    format!(
        "python3 -c 'import time; x = b\"x\" * ({mib} << 20); print(\"holding\", flush=True); \
         time.sleep(1000)' & wait"
    )
}

#[test]
fn a_tree_above_its_memory_limit_is_restarted_and_one_below_is_not() {
    // Measured over each run's cgroup where tend makes them (root here), and over /proc by
    // process group without.
    for supervisor in ["", "[supervisor]\ncgroups = false\n"] {
        tree_above_its_memory_limit(supervisor);
    }
}

fn tree_above_its_memory_limit(supervisor: &str) {
    let config = format!(
        r#"{supervisor}
[process.hog]
command = '''{}'''
shell = true
memory_limit = "64MiB"
memory_limit_for = "1s"

[process.modest]
command = '''{}'''
shell = true
memory_limit = "512MiB"
memory_limit_for = "0s"
"#,
        hog(160),
        hog(16)
    );
    let tend = Tend::up(&config, &[]);
    let first = tend.wait_line("hog started", |l| l.contains("hog.0 started"));
    let first = started_pid(&first).unwrap();
    let failed = tend.wait_line("the memory limit", |l| {
        l.contains("hog.0 failed a check") && l.contains("above its memory_limit of 64MiB")
    });
    // The child's 160 MiB count: the whole tree is measured.
    let used: f64 = failed
        .split("its processes used ")
        .nth(1)
        .and_then(|rest| rest.split("MiB").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{failed}"));
    assert!(used >= 160.0, "{failed}");
    let lines = tend.wait_lines(2, "hog started again", |l| l.contains("hog.0 started"));
    let second = started_pid(&lines[1]).unwrap();
    assert_ne!(first, second);
    assert!(
        !tend
            .transcript()
            .iter()
            .any(|l| l.contains("modest.0 failed a check")),
        "{:#?}",
        tend.transcript()
    );
}
