//! Exercise 1 (练习 1): the parent sends several lines one by one to a child, which transforms
//! each at once; the parent prints each answer as soon as it comes back, before it sends the next
//! line, with the round-trip time.
//!
//! The child is this same binary (`process-demo upper`), not `tr`: `tr`, like most programs
//! built on C's stdio, fully buffers its output when it is not a terminal, so it would keep the
//! answers in a 4 KiB buffer until its input ends, and the parent, waiting for the first answer
//! before sending the second line, would wait for ever. `upper` flushes after every line.

use std::io::{self, BufRead, BufReader, Write};
use std::time::Instant;

use anyhow::{bail, Context};
use tend_os::SignalWaiter;

use crate::child::{spawn_piped, this_binary, EXIT_WITHIN};

/// What the parent sends, one line at a time.
const LINES: [&str; 5] = [
    "hello process world",
    "pipes carry bytes",
    "one line at a time",
    "each answer comes back",
    "before the next line goes",
];

/// Runs the exercise: a `sent: …` line, then its `got: …` line, for each line.
pub fn run(sigchld: &SignalWaiter) -> anyhow::Result<()> {
    println!("== Exercise 1: a child that answers line by line (练习 1: 连续发送多行数据) ==");
    let mut upper = spawn_piped(&this_binary(&["upper"])?, sigchld)?;
    println!(
        "Started `process-demo upper` (PID {}): it uppercases each line and flushes it at once.",
        upper.child.pid()
    );
    let mut answers = BufReader::new(upper.stdout);
    let mut answer = String::new();
    for line in LINES {
        println!("sent: {line}");
        let start = Instant::now();
        // `File` has no buffer: the line is in the pipe when write_all returns.
        upper
            .stdin
            .write_all(format!("{line}\n").as_bytes())
            .context("writing to the child")?;
        answer.clear();
        if answers
            .read_line(&mut answer)
            .context("reading from the child")?
            == 0
        {
            bail!("the child closed its output");
        }
        let took = start.elapsed();
        println!(
            "got:  {} ({:.1} µs round trip)",
            answer.trim_end(),
            took.as_secs_f64() * 1e6
        );
    }
    // The child's end of input: it exits.
    drop(upper.stdin);
    upper.child.wait(EXIT_WITHIN, upper.stderr)?;
    println!("The child answered each line before the next was sent.");
    Ok(())
}

/// The child: uppercases each line of stdin onto stdout, flushing after every line.
pub fn upper() -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    for line in io::stdin().lock().lines() {
        writeln!(out, "{}", line?.to_uppercase())?;
        // Rust's stdout flushes at each newline anyway; say it, since it is the whole point.
        out.flush()?;
    }
    Ok(())
}
