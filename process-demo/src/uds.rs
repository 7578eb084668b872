//! Exercise 3 (练习 3): two processes talk over a Unix domain socket
//! (`std::os::unix::net::UnixStream`), and the same measurement runs over a pair of pipes, for
//! comparison: the median round-trip time of small messages, and the throughput of a large
//! transfer in 64 KiB chunks. In both cases the other process is this binary re-executed as an
//! echo peer, which sends back every byte it receives.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use tend_os::SignalWaiter;

use crate::child::{spawn_piped, this_binary, EXIT_WITHIN};

/// The size of a latency message.
const MESSAGE: usize = 64;
/// The size of a throughput chunk.
const CHUNK: usize = 64 * 1024;
/// How long the socket peer may take to connect.
const CONNECT_WITHIN: Duration = Duration::from_secs(10);

/// What one transport measured.
struct Figures {
    /// Median round trip of a `MESSAGE`-byte message, in microseconds.
    median_us: f64,
    /// MiB sent per second, while the same bytes came back.
    mib_per_s: f64,
}

/// Runs the exercise: `messages` round trips and `mib` MiB over each transport.
pub fn run(sigchld: &SignalWaiter, messages: usize, mib: usize) -> anyhow::Result<()> {
    println!("== Exercise 3: Unix domain socket vs pipe (练习 3: Unix Domain Socket) ==");
    if messages == 0 || mib == 0 {
        bail!("--messages and --mib must be at least 1");
    }
    println!(
        "Each side: {messages} round trips of a {MESSAGE}-byte message, then {mib} MiB sent in \
         {} KiB chunks and echoed back.",
        CHUNK / 1024
    );
    let uds = over_socket(sigchld, messages, mib)?;
    let pipe = over_pipes(sigchld, messages, mib)?;
    println!();
    println!("{:<26}{:>14}{:>14}", "", "Unix socket", "pipes");
    println!(
        "{:<26}{:>14.1}{:>14.1}",
        "round trip, median (µs)", uds.median_us, pipe.median_us
    );
    println!(
        "{:<26}{:>14.1}{:>14.1}",
        "throughput (MiB/s)", uds.mib_per_s, pipe.mib_per_s
    );
    Ok(())
}

/// Measures over a Unix domain socket to `process-demo echo-uds PATH`.
fn over_socket(sigchld: &SignalWaiter, messages: usize, mib: usize) -> anyhow::Result<Figures> {
    let path = SocketPath::new();
    let listener =
        UnixListener::bind(&path.0).with_context(|| format!("binding {}", path.0.display()))?;
    let path_arg = path.0.to_str().context("the socket path is not UTF-8")?;
    let peer = spawn_piped(&this_binary(&["echo-uds", path_arg])?, sigchld)?;
    println!(
        "Unix socket: the peer (PID {}) connects to {}",
        peer.child.pid(),
        path.0.display()
    );
    let ready = poll(
        &mut [PollFd::new(listener.as_fd(), PollFlags::POLLIN)],
        PollTimeout::try_from(CONNECT_WITHIN).unwrap_or(PollTimeout::MAX),
    )
    .context("waiting for the peer to connect")?;
    if ready == 0 {
        bail!("the socket peer did not connect within {CONNECT_WITHIN:?}");
    }
    let (stream, _) = listener.accept().context("accepting the peer")?;
    // Only one connection is expected: close the listener and its file.
    drop(listener);
    drop(path);
    let writer = stream.try_clone().context("cloning the socket")?;
    let figures = measure(stream, writer, messages, mib)?;
    // Both ends are closed now: the peer reads EOF and exits.
    drop(peer.stdin);
    peer.child.wait(EXIT_WITHIN, peer.stderr)?;
    Ok(figures)
}

/// Measures over the stdin and stdout pipes of `process-demo echo`.
fn over_pipes(sigchld: &SignalWaiter, messages: usize, mib: usize) -> anyhow::Result<Figures> {
    let peer = spawn_piped(&this_binary(&["echo"])?, sigchld)?;
    println!(
        "pipes: the peer (PID {}) echoes stdin to stdout",
        peer.child.pid()
    );
    let figures = measure(peer.stdout, peer.stdin, messages, mib)?;
    peer.child.wait(EXIT_WITHIN, peer.stderr)?;
    Ok(figures)
}

/// Times the round trips, then the transfer, through an echo peer; closes both ends at the end.
fn measure(
    mut reader: impl Read,
    mut writer: impl Write + Send,
    messages: usize,
    mib: usize,
) -> anyhow::Result<Figures> {
    let message = [b'm'; MESSAGE];
    let mut back = [0u8; MESSAGE];
    let mut round_trips = Vec::with_capacity(messages);
    for _ in 0..messages {
        let start = Instant::now();
        writer.write_all(&message).context("sending a message")?;
        reader.read_exact(&mut back).context("reading the echo")?;
        round_trips.push(start.elapsed());
    }
    round_trips.sort_unstable();
    let median = round_trips[round_trips.len() / 2];

    // A writer thread keeps the peer busy while this one reads the echo: one at a time, both
    // would fill their buffers and wait for each other for ever.
    let total = mib * 1024 * 1024;
    let start = Instant::now();
    thread::scope(|scope| -> anyhow::Result<()> {
        let sending = scope.spawn(move || -> io::Result<()> {
            let chunk = vec![b'd'; CHUNK];
            let mut left = total;
            while left > 0 {
                let n = left.min(CHUNK);
                writer.write_all(&chunk[..n])?;
                left -= n;
            }
            // Dropping the writer here: for a pipe that is the peer's EOF.
            Ok(())
        });
        let mut buf = vec![0u8; CHUNK];
        let mut received = 0;
        while received < total {
            let n = reader.read(&mut buf).context("reading the echo")?;
            if n == 0 {
                bail!("the peer closed after {received} of {total} bytes");
            }
            received += n;
        }
        sending
            .join()
            .map_err(|_| anyhow::anyhow!("the sending thread panicked"))?
            .context("sending the data")
    })?;
    let took = start.elapsed();
    Ok(Figures {
        median_us: median.as_secs_f64() * 1e6,
        mib_per_s: mib as f64 / took.as_secs_f64(),
    })
}

/// A socket path in the temp directory, removed on drop.
struct SocketPath(PathBuf);

impl SocketPath {
    fn new() -> SocketPath {
        let path = std::env::temp_dir().join(format!("process-demo-{}.sock", std::process::id()));
        // A leftover of an earlier run with the same pid.
        let _ = std::fs::remove_file(&path);
        SocketPath(path)
    }
}

impl Drop for SocketPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The pipe peer: copies stdin to stdout until EOF, unbuffered (std's stdout would wait for
/// newlines, which the data does not have).
pub fn echo_stdio() -> anyhow::Result<()> {
    let input = File::from(io::stdin().as_fd().try_clone_to_owned()?);
    let output = File::from(io::stdout().as_fd().try_clone_to_owned()?);
    echo(input, output)
}

/// The socket peer: connects to `path` and echoes until EOF.
pub fn echo_socket(path: &Path) -> anyhow::Result<()> {
    let stream =
        UnixStream::connect(path).with_context(|| format!("connecting to {}", path.display()))?;
    let writer = stream.try_clone()?;
    echo(stream, writer)
}

fn echo(mut input: impl Read, mut output: impl Write) -> anyhow::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        output.write_all(&buf[..n])?;
    }
}
