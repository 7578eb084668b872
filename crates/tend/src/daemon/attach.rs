//! The terminals of interactive processes (`interactive = true`) on tend's side: what an
//! `attach` client gets, and the connection's life once it is attached.
//!
//! A run's output is read from its pty's master by an ordinary drainer (logged as stdout,
//! shown on the console, `logs -f`), which also hands each read to the run's [`OutputTap`]:
//! the last [`ATTACH_REPLAY`] bytes, and a channel of live chunks for whoever is attached.
//! Input comes only from attached clients, written to the master as they send it; several
//! clients may be attached at once, and all see the same output. A client that reads too
//! slowly misses chunks (it is told how many); it never slows the process or the log.

use std::collections::VecDeque;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use tend_proto::ATTACH_REPLAY;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::broadcast;

/// The size of a new interactive run's terminal, until a client attaches with its own.
pub const DEFAULT_SIZE: tend_os::WindowSize = tend_os::WindowSize { rows: 24, cols: 80 };
/// Room in a tap's channel, in chunks (one read of the master each).
const LIVE_CHUNKS: usize = 256;

/// The live output of a run, chunk by chunk (one read of the master each).
pub type LiveOutput = broadcast::Receiver<Arc<[u8]>>;

/// The output of one interactive run, for the clients attached to it.
#[derive(Default)]
pub struct OutputTap {
    inner: Mutex<TapInner>,
}

#[derive(Default)]
struct TapInner {
    /// The last bytes read, at most [`ATTACH_REPLAY`].
    recent: VecDeque<u8>,
    /// Whether bytes before `recent` were dropped (so its first line may be a part).
    trimmed: bool,
    /// The live chunks; `None` once the run's output ended and the run was reaped.
    live: Option<broadcast::Sender<Arc<[u8]>>>,
    /// Of those two ends, how many have not come yet.
    ends_left: u8,
}

impl OutputTap {
    /// A tap for a run that has not printed anything yet.
    pub fn new() -> Arc<Self> {
        let tap = OutputTap::default();
        {
            let mut inner = tap.inner.lock().expect("tap lock");
            inner.live = Some(broadcast::channel(LIVE_CHUNKS).0);
            inner.ends_left = 2;
        }
        Arc::new(tap)
    }

    /// Takes one read of the run's output.
    pub fn push(&self, data: &[u8]) {
        let mut inner = self.inner.lock().expect("tap lock");
        let keep = &data[data.len().saturating_sub(ATTACH_REPLAY)..];
        let over = (inner.recent.len() + keep.len()).saturating_sub(ATTACH_REPLAY);
        if over > 0 || keep.len() < data.len() {
            inner.trimmed = true;
        }
        inner.recent.drain(..over);
        inner.recent.extend(keep);
        if let Some(live) = &inner.live {
            if live.receiver_count() > 0 {
                let _ = live.send(data.into());
            }
        }
    }

    /// One of the two ends of a run: its output ended (the drainer), or it was reaped (the
    /// driver). At the second, attached clients are told (their channel closes): so when a
    /// client hears of the end, the supervisor knows how the run ended, and all its output
    /// was sent.
    pub fn end(&self) {
        let mut inner = self.inner.lock().expect("tap lock");
        inner.ends_left = inner.ends_left.saturating_sub(1);
        if inner.ends_left == 0 {
            inner.live = None;
        }
    }

    /// What a new client gets: the recent output, from a line start when older bytes were
    /// dropped, and the live chunks after it, with nothing lost or repeated between them.
    /// `None` once the output ended.
    pub fn subscribe(&self) -> Option<(Vec<u8>, LiveOutput)> {
        let inner = self.inner.lock().expect("tap lock");
        let live = inner.live.as_ref()?.subscribe();
        let mut recent: Vec<u8> = inner.recent.iter().copied().collect();
        if inner.trimmed {
            let start = recent.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
            recent.drain(..start);
        }
        Some((recent, live))
    }
}

/// A live interactive run, as `attach` and `resize` find it.
pub struct Attachable {
    /// Its output.
    pub output: Arc<OutputTap>,
    /// tend's side of its pty (non-blocking): input is written here, the size set here.
    pub master: OwnedFd,
}

/// Carries an attached client's bytes until the run's output ends or the client goes:
/// what it sends is typed into the terminal, what the terminal prints is sent to it,
/// beginning with `replay`.
pub async fn session(
    attachable: Arc<Attachable>,
    replay: Vec<u8>,
    mut live: LiveOutput,
    reader: &mut BufReader<OwnedReadHalf>,
    write: &mut OwnedWriteHalf,
) -> io::Result<()> {
    let input = attachable.master.try_clone()?;
    let mut input = tokio::net::unix::pipe::Sender::from_owned_fd_unchecked(input)?;
    // What the client sent right behind its request is input already.
    let early = reader.buffer().to_vec();
    reader.consume(early.len());
    let typing = async {
        input.write_all(&early).await?;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                return io::Result::Ok(()); // detached
            }
            input.write_all(&buf[..n]).await?;
        }
    };
    let printing = async {
        send(write, &replay).await?;
        loop {
            match live.recv().await {
                Ok(chunk) => send(write, &chunk).await?,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let note = format!(
                        "\r\n[tend: {n} pieces of output skipped: this terminal read too slowly]\r\n"
                    );
                    send(write, note.as_bytes()).await?;
                }
                Err(broadcast::error::RecvError::Closed) => return io::Result::Ok(()),
            }
        }
    };
    // Whichever ends first ends the session: the run's end, the client's, or an error.
    tokio::select! {
        result = typing => result,
        result = printing => {
            let _ = write.shutdown().await;
            result
        }
    }
}

async fn send(write: &mut OwnedWriteHalf, bytes: &[u8]) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    super::control::write_all(write, bytes).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_client_gets_the_recent_output_then_only_what_comes_after() {
        let tap = OutputTap::new();
        tap.push(b"prompt> ");
        let (recent, mut live) = tap.subscribe().expect("open");
        assert_eq!(recent, b"prompt> ");
        tap.push(b"more");
        assert_eq!(&*live.try_recv().expect("a chunk"), b"more");
        assert!(live.try_recv().is_err(), "nothing repeated");
        tap.end();
        assert!(live.try_recv().is_err(), "one end is not the end");
        tap.end();
        assert!(matches!(
            live.try_recv(),
            Err(broadcast::error::TryRecvError::Closed)
        ));
        assert!(tap.subscribe().is_none(), "no attaching after the end");
    }

    #[test]
    fn the_replay_is_bounded_and_begins_at_a_line_start_once_trimmed() {
        let tap = OutputTap::new();
        let mut line = vec![b'x'; 1000];
        line.push(b'\n');
        for _ in 0..40 {
            tap.push(&line);
        }
        tap.push(b"(Pdb) ");
        let (recent, _live) = tap.subscribe().expect("open");
        assert!(recent.len() <= ATTACH_REPLAY);
        assert!(recent.ends_with(b"(Pdb) "));
        assert_eq!(recent[0], b'x');
        assert_eq!((recent.len() - 6) % 1001, 0, "whole lines only");
        // One read larger than the replay keeps its end.
        let tap = OutputTap::new();
        let mut big = vec![b'y'; 3 * ATTACH_REPLAY];
        big.extend_from_slice(b"\nend");
        tap.push(&big);
        let (recent, _live) = tap.subscribe().expect("open");
        assert_eq!(recent, b"end");
    }
}
