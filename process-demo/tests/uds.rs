//! `process-demo uds`: round-trip latency and throughput over a Unix domain socket and over pipes.

mod common;

use common::{assert_success, demo, run};

/// The two numbers of the table row that starts with `label`.
fn row(stdout: &[String], label: &str) -> (f64, f64) {
    let line = stdout
        .iter()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} row in {stdout:#?}"));
    let numbers: Vec<f64> = line[label.len()..]
        .split_whitespace()
        .map(|n| n.parse().unwrap_or_else(|_| panic!("{n:?} in {line:?}")))
        .collect();
    assert_eq!(numbers.len(), 2, "{line:?}");
    (numbers[0], numbers[1])
}

#[test]
fn prints_latency_and_throughput_for_the_socket_and_the_pipes() {
    // Small sizes: the test checks the figures exist, not how fast this machine is.
    let finished = run(demo(&["uds", "--messages", "200", "--mib", "4"]), 60);
    assert_success(&finished);
    let header: Vec<&str> = finished
        .stdout
        .iter()
        .find(|l| l.starts_with(' ') && l.contains("Unix socket"))
        .unwrap_or_else(|| panic!("no table header in {:#?}", finished.stdout))
        .split_whitespace()
        .collect();
    assert_eq!(header, ["Unix", "socket", "pipes"]);
    for label in ["round trip, median (µs)", "throughput (MiB/s)"] {
        let (uds, pipe) = row(&finished.stdout, label);
        assert!(uds > 0.0 && pipe > 0.0, "{label}: {uds} {pipe}");
    }
}
