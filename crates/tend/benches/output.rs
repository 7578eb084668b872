//! The path of every byte a child prints: cutting a read into lines for the terminal and
//! `logs -f` (`tend::daemon::lines::LineSplitter`), and appending it to the instance's rotating
//! log file (`tend::daemon::logfile::LogFile`). One iteration handles one 64 KiB read, the
//! most a pipe holds by default; throughput is in bytes of child output.
//!
//! The splitter gets 64-byte lines, one 64 KiB line ended by a newline, and 64 KiB of a line
//! that does not end (a longer line, or binary output), with the daemon's 16 KiB cap. The log
//! file is a real file in a temporary directory with the default `LogSpec` (10 MiB, keep 5),
//! so it rotates every 160 iterations, as it would; with and without timestamps. Each write
//! also notes when its chunk was read in the file's index (`web.0.log.idx`); one file written
//! over and over notes at most a record a millisecond, so `write_64k_interleaved` writes two
//! files in turn, where every write notes a record and every 64th writes the index: the
//! index's worst case.
//!
//! Run it with `cargo bench -p tend --bench output`. The allocation columns count the heap
//! allocations of one iteration.

use std::time::SystemTime;

use divan::counter::BytesCount;
use divan::{black_box, AllocProfiler, Bencher};
use tend::daemon::lines::LineSplitter;
use tend::daemon::logfile::LogFile;
use tend_core::LogSpec;

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

fn main() {
    divan::main();
}

/// One read from a child's pipe.
const CHUNK: usize = 64 * 1024;

/// The daemon's cap on a terminal line (`TERMINAL_LINE_CAP` in `daemon/drain.rs`).
const LINE_CAP: usize = 16 * 1024;

/// 64 KiB of 64-byte lines (63 bytes of text and a newline).
fn short_lines() -> Vec<u8> {
    let line: Vec<u8> = (0..63u8).map(|i| b'a' + i % 26).chain([b'\n']).collect();
    line.repeat(CHUNK / line.len())
}

/// 64 KiB of one line, the last byte its newline.
fn one_long_line() -> Vec<u8> {
    let mut chunk = vec![b'x'; CHUNK];
    chunk[CHUNK - 1] = b'\n';
    chunk
}

/// 64 KiB without a newline.
fn no_newline() -> Vec<u8> {
    vec![b'x'; CHUNK]
}

fn split(bencher: Bencher<'_, '_>, chunk: &[u8]) {
    let mut splitter = LineSplitter::new(LINE_CAP);
    bencher
        .counter(BytesCount::of_slice(chunk))
        .bench_local(|| {
            let mut lines = 0usize;
            splitter.feed(black_box(chunk), |line, _cut| {
                black_box(line);
                lines += 1;
            });
            lines
        });
}

mod lines {
    use super::*;

    #[divan::bench]
    fn short_lines_64b(bencher: Bencher<'_, '_>) {
        split(bencher, &short_lines());
    }

    #[divan::bench]
    fn one_long_line_64k(bencher: Bencher<'_, '_>) {
        split(bencher, &one_long_line());
    }

    #[divan::bench]
    fn no_newline_64k(bencher: Bencher<'_, '_>) {
        split(bencher, &no_newline());
    }
}

fn append(bencher: Bencher<'_, '_>, timestamps: bool) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let spec = LogSpec {
        timestamps,
        ..LogSpec::default()
    };
    let mut log = LogFile::open(dir.path().join("bench.0.log"), spec).expect("open the log");
    let chunk = short_lines();
    bencher
        .counter(BytesCount::of_slice(&chunk))
        .bench_local(|| {
            let mut data = black_box(&chunk[..]);
            log.write(&mut data, SystemTime::now())
                .expect("write the log");
        });
}

/// Two logs written in turn, as many children logging at once: every write notes an index
/// record. One iteration is one 64 KiB write, alternately to each.
fn append_interleaved(bencher: Bencher<'_, '_>) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let open = |name: &str| {
        LogFile::open(dir.path().join(name), LogSpec::default()).expect("open the log")
    };
    let mut logs = [open("a.0.log"), open("b.0.log")];
    let mut turn = 0;
    let chunk = short_lines();
    bencher
        .counter(BytesCount::of_slice(&chunk))
        .bench_local(|| {
            turn ^= 1;
            let mut data = black_box(&chunk[..]);
            logs[turn]
                .write(&mut data, SystemTime::now())
                .expect("write the log");
        });
}

/// 1000 samples of one write each: 64 MiB, so the log rotates six times within the run.
mod logfile {
    use super::*;

    #[divan::bench(sample_count = 1000)]
    fn write_64k_plain(bencher: Bencher<'_, '_>) {
        append(bencher, false);
    }

    #[divan::bench(sample_count = 1000)]
    fn write_64k_timestamped(bencher: Bencher<'_, '_>) {
        append(bencher, true);
    }

    #[divan::bench(sample_count = 1000)]
    fn write_64k_interleaved(bencher: Bencher<'_, '_>) {
        append_interleaved(bencher);
    }
}
