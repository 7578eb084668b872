//! The lesson's first demo, child processes and pipes (进程创建与管道通信): start `tr a-z A-Z`
//! with its stdin and stdout on pipes, write a line into it, close its stdin so that it sees the
//! end of its input, and read what it wrote back.

use std::io::{Read, Write};

use anyhow::Context;
use tend_os::SignalWaiter;

use crate::child::{spawn_piped, EXIT_WITHIN};

/// What the demo sends through `tr`.
const INPUT: &str = "hello process world";

/// Runs the demo: prints `Output: HELLO PROCESS WORLD`.
pub fn run(sigchld: &SignalWaiter) -> anyhow::Result<()> {
    println!("== IPC: child processes and pipes (进程创建与管道通信) ==");
    let argv: Vec<String> = ["tr", "a-z", "A-Z"].map(String::from).into();
    let mut tr = spawn_piped(&argv, sigchld)?;
    println!(
        "Started `{}` (PID {}) with stdin and stdout piped; writing {INPUT:?}",
        argv.join(" "),
        tr.child.pid()
    );
    tr.stdin
        .write_all(INPUT.as_bytes())
        .context("writing to tr")?;
    // Closing the write end is the end of tr's input: only then does it finish and exit.
    drop(tr.stdin);
    let mut output = String::new();
    tr.stdout
        .read_to_string(&mut output)
        .context("reading from tr")?;
    tr.child.wait(EXIT_WITHIN, tr.stderr)?;
    println!("Output: {output}");
    Ok(())
}
