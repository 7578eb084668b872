//! End to end: the largest values the config accepts run without a panic or an overflow.

mod common;

use common::daemon::Daemon;
use common::*;

#[test]
fn the_largest_accepted_durations_sizes_and_factor_run_without_panic() {
    let huge = "\"5124095h\""; // u64::MAX nanoseconds, rounded down to the hour
    let d = Daemon::start(&format!(
        "[supervisor]\nstop_timeout = {huge}\n\n\
         [process.crash]\ncommand = [\"false\"]\nstart_secs = {huge}\n\
         backoff = {{ initial = \"10ms\", max = {huge}, factor = 1e308 }}\n\
         max_restarts = {{ count = 1000000, within = {huge} }}\n\
         log = {{ max_size = \"16000000TiB\", keep = 1000 }}\n\n\
         [process.sleeper]\ncommand = [\"sleep\", \"1000\"]\nstart_secs = {huge}\n\
         stop_timeout = {huge}\n"
    ));
    // crash: exits at once, restarts after 10ms, then the backoff (10ms × 1e308) is capped at
    // max, a deadline beyond what the clock holds: it waits in backoff, and tend stays up.
    eventually("crash restarted once and waits in backoff", || {
        let i = d.instance("crash.0");
        i["state"] == "backoff" && i["restarts"] == 2
    });
    // sleeper: start_secs is beyond the clock, so it stays "starting"; it still stops.
    d.wait_state("sleeper.0", "starting");
    let stop = d.tend(&["stop", "sleeper"]);
    assert_eq!(stop.code, Some(0), "{stop:?}");
    assert_eq!(d.tend(&["reload"]).code, Some(0));
    let down = d.tend(&["down"]);
    assert_eq!(down.code, Some(0), "{down:?}");
    d.wait_gone();
}
