//! process-demo: the demos and exercises of the lesson on process management (进程管理与信号处理),
//! built on tend's OS layer ([`tend_os`]) rather than on a second copy of it.
//!
//! `process-demo` alone runs the lesson's two demos in order: a child process fed and read through
//! pipes ([`ipc`]) and a 5-second wait in which Ctrl+C is caught ([`signals`]). The subcommands are
//! the daemon ([`daemon`]) and the three exercises: streaming lines through a child ([`stream`]),
//! a web server that shuts down gracefully ([`server`]) and a Unix domain socket measured against
//! a pipe ([`uds`]). The hidden subcommands are the children some demos start of this same binary.
//!
//! No `unsafe` here: everything that needs it is in tend-os.

#![forbid(unsafe_code)]

mod child;
mod daemon;
mod ipc;
mod server;
mod signals;
mod stream;
mod uds;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tend_core::Signal;
use tend_os::SignalWaiter;

/// The lesson's demos: child processes and pipes, signals, a daemon, and the three exercises.
///
/// Without a subcommand: the IPC demo (`tr a-z A-Z` through pipes), then the signal demo (a wait
/// in which Ctrl+C is caught).
#[derive(Debug, Parser)]
#[command(name = "process-demo")]
struct Cli {
    /// How long the signal demo waits for a signal, in seconds.
    #[arg(long, value_name = "N", default_value_t = 5)]
    wait_secs: u64,

    #[command(subcommand)]
    demo: Option<Demo>,
}

#[derive(Debug, Subcommand)]
enum Demo {
    /// Go to the background as a daemon that writes its PID and a heartbeat every second.
    Daemon {
        /// The daemon's status file (appended to).
        #[arg(long, value_name = "PATH", default_value = "/tmp/daemon.out")]
        out: PathBuf,
        /// Stop by itself after this many seconds (for tests: nothing outlives them).
        #[arg(long, value_name = "N", hide = true)]
        lifetime_secs: Option<u64>,
    },
    /// Exercise 1: send lines one by one to a child and print each answer as it comes back.
    Stream,
    /// Exercise 2: an HTTP server that shuts down gracefully on SIGTERM or SIGINT.
    Server {
        /// The address to listen on (port 0: any free port, printed on start).
        #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:3000")]
        addr: SocketAddr,
        /// How long `/slow` takes to answer, in seconds.
        #[arg(long, value_name = "N", default_value_t = 3)]
        slow_secs: u64,
    },
    /// Exercise 3: round-trip latency and throughput over a Unix domain socket and over pipes.
    Uds {
        /// How many small messages to time, one round trip each.
        #[arg(long, value_name = "N", default_value_t = 10_000)]
        messages: usize,
        /// How many MiB to send (and get back) for the throughput.
        #[arg(long, value_name = "N", default_value_t = 256)]
        mib: usize,
    },
    /// (The `stream` child.) Uppercase each line of stdin to stdout, flushing every line.
    #[command(hide = true)]
    Upper,
    /// (The `uds` pipe peer.) Copy stdin to stdout unchanged until EOF.
    #[command(hide = true)]
    Echo,
    /// (The `uds` socket peer.) Connect to the socket at PATH and echo until EOF.
    #[command(hide = true)]
    EchoUds {
        /// The listening socket of the parent.
        path: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("process-demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Before anything can start a thread, so that every thread inherits the mask: the demos that
    // start children wait for them as tend does, woken by SIGCHLD (see `child`). SIGCHLD is
    // ignored by default, so blocking it changes nothing else.
    let sigchld = SignalWaiter::block(&[Signal::Chld])?;
    match cli.demo {
        None => {
            ipc::run(&sigchld)?;
            println!();
            signals::run(Duration::from_secs(cli.wait_secs))?;
        }
        Some(Demo::Daemon { out, lifetime_secs }) => {
            return daemon::run(&out, lifetime_secs.map(Duration::from_secs));
        }
        Some(Demo::Stream) => stream::run(&sigchld)?,
        Some(Demo::Server { addr, slow_secs }) => {
            server::run(addr, Duration::from_secs(slow_secs))?
        }
        Some(Demo::Uds { messages, mib }) => uds::run(&sigchld, messages, mib)?,
        Some(Demo::Upper) => stream::upper()?,
        Some(Demo::Echo) => uds::echo_stdio()?,
        Some(Demo::EchoUds { path }) => uds::echo_socket(&path)?,
    }
    Ok(ExitCode::SUCCESS)
}
