//! The cost of the status answer on the control socket: encoding
//! `AnswerLine::ok(id, Instances { .. })` into one NDJSON line with `tend_proto::encode`, as the
//! supervisor does for every `status` (and `start`, `stop`, `restart`), and decoding that line
//! back with `tend_proto::decode`, as `tend status` does. With 100 and 1000 instances, each
//! running with a PID, an uptime, restarts and a last exit, so every field is on the wire.
//!
//! Run it with `cargo bench -p tend-proto --bench status`. Throughput is in bytes of the line
//! and in instances; the allocation columns count the heap allocations of one iteration.

use divan::counter::{BytesCount, ItemsCount};
use divan::{black_box, AllocProfiler, Bencher};
use tend_proto::{decode, encode, AnswerLine, InstanceStatus, Instances, LastExit, State};

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

fn main() {
    divan::main();
}

/// The answer to `status` with `n` instances of one process `web`.
fn status_answer(n: u32) -> AnswerLine {
    let instances = (0..n)
        .map(|i| InstanceStatus {
            name: format!("web.{i}"),
            process: "web".to_owned(),
            instance: i,
            state: State::Running,
            pid: Some(100_000 + i),
            uptime_ms: Some(86_400_000 + u64::from(i)),
            restarts: i % 7,
            last_exit: Some(LastExit::Code(1)),
            log_error: None,
            waiting_for: Vec::new(),
            notify_status: None,
            main_pid: None,
            health: None,
            usage: None,
            log_bytes: 0,
            log_write_errors: 0,
            retry_in_ms: None,
            last_exit_oom: false,
            oom_kills: 0,
        })
        .collect();
    AnswerLine::ok(
        7,
        Instances {
            instances,
            ..Instances::default()
        },
    )
}

#[divan::bench(args = [100, 1000])]
fn encode_status(bencher: Bencher<'_, '_>, n: u32) {
    let answer = status_answer(n);
    let size = encode(&answer).len();
    bencher
        .counter(BytesCount::new(size))
        .counter(ItemsCount::new(n))
        .bench_local(|| encode(black_box(&answer)));
}

#[divan::bench(args = [100, 1000])]
fn decode_status(bencher: Bencher<'_, '_>, n: u32) {
    let answer = status_answer(n);
    let line = encode(&answer);
    assert_eq!(decode::<AnswerLine>(&line).expect("it decodes"), answer);
    bencher
        .counter(BytesCount::of_slice(&line))
        .counter(ItemsCount::new(n))
        .bench_local(|| decode::<AnswerLine>(black_box(&line)).expect("it decodes"));
}
