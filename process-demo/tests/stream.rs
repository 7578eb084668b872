//! `process-demo stream`: each line comes back from the child before the next one is sent.

mod common;

use common::{assert_success, demo, run};

#[test]
fn each_answer_arrives_before_the_next_line_is_sent() {
    let finished = run(demo(&["stream"]), 20);
    assert_success(&finished);
    let exchange: Vec<&str> = finished
        .stdout
        .iter()
        .map(String::as_str)
        .filter(|l| l.starts_with("sent: ") || l.starts_with("got: "))
        .collect();
    assert_eq!(
        exchange.len(),
        10,
        "five lines and five answers: {exchange:#?}"
    );
    for pair in exchange.chunks(2) {
        let sent = pair[0]
            .strip_prefix("sent: ")
            .unwrap_or_else(|| panic!("a line is sent before each answer: {exchange:#?}"));
        let got = pair[1]
            .strip_prefix("got: ")
            .unwrap_or_else(|| panic!("an answer follows each line sent: {exchange:#?}"));
        let (answer, timing) = got
            .trim_start()
            .split_once(" (")
            .unwrap_or_else(|| panic!("no round-trip time in {got:?}"));
        assert_eq!(answer, sent.to_uppercase());
        assert!(timing.ends_with("µs round trip)"), "{got:?}");
    }
}
