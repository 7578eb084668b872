//! The control socket's server side: accepts connections, checks the peer's uid, speaks the
//! handshake and reads requests (newline-delimited JSON, see docs/protocol.md), hands each to
//! the driver, and writes the answers back.
//!
//! Connections hold no supervisor state and make no decision: a request goes to the driver
//! over a channel with a one-shot reply. A slow, silent or malformed client costs its own task
//! only: the handshake has a deadline, a line longer than the limit closes the connection, and
//! nothing a client does blocks the driver.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::io;
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tend_proto::{
    decode, encode, AnswerLine, ClientHelloLine, Done, ErrorBody, ErrorCode, HandshakeReply,
    LineFramer, LogLine, Pushed, Request, ServerHello, Stream, MAX_LINE, PROTOCOL_VERSION,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::follow::{self, FollowHub, Follower};
use super::logindex::IndexReader;
use super::world::Event;

/// How long a client may take to say hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request may take to arrive whole, once its first byte did.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may sit between requests, sending nothing.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a client may take to read what tend writes to it before tend gives up on it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// The most past lines `logs` sends per file, whatever was asked.
pub const MAX_PAST_LINES: usize = 100_000;
/// The most past lines one `logs` request holds, shared among its files (each gets at least
/// one): they are all read before they are merged and sent.
const MAX_REQUEST_LINES: usize = 1_000_000;
/// The most bytes one `logs` request reads back, shared among its files (each gets at least
/// [`LINE_PIECE`]).
const MAX_REQUEST_BYTES: usize = 32 << 20;
/// Answer lines are written in batches of about this size.
const WRITE_BATCH: usize = 64 * 1024;

/// A request for the driver, with the way back to its connection.
pub struct ControlRequest {
    /// The client's id for the request.
    pub id: u64,
    /// What the client asked.
    pub request: Request,
    /// Where the driver sends its reply; dropped unanswered if the driver exits first.
    pub reply: oneshot::Sender<Reply>,
}

/// The driver's reply to one request.
pub enum Reply {
    /// One terminal answer line.
    Answer(tend_proto::Answer),
    /// The answer to `down`: `ok` is written, then `written` is told so, and the driver may exit.
    Final {
        /// The answer.
        answer: tend_proto::Answer,
        /// Told once the answer is on the socket (or the client is gone).
        written: oneshot::Sender<()>,
    },
    /// Log lines: past ones from files, then live ones.
    Logs(LogPlan),
    /// Events as they happen, until the client goes away (`events`).
    Events(EventStream),
    /// The terminal of an interactive run (`attach`): the answer, then raw bytes both ways.
    Attach {
        /// The instance, such as `web.0`.
        instance: String,
        /// The pid of its run.
        pid: u32,
        /// Its terminal.
        attachable: Arc<super::attach::Attachable>,
    },
    /// Events as they happen until the answer comes (a waiting `start` or `restart` that
    /// asked for its progress), then the answer.
    Progress {
        /// The events to send meanwhile.
        events: EventStream,
        /// The answer, when it comes.
        answer: oneshot::Receiver<Reply>,
    },
}

/// The supervisor's events for one client.
pub struct EventStream {
    /// Every event the driver publishes.
    pub live: broadcast::Receiver<Arc<tend_proto::Event>>,
    /// The instances whose events to send (tend's own, about no instance, always go);
    /// `None`: all.
    pub only: Option<HashSet<String>>,
}

impl EventStream {
    /// Whether `event` is for this client.
    pub fn wants(&self, event: &tend_proto::Event) -> bool {
        match (&self.only, &event.instance) {
            (Some(only), Some(instance)) => only.contains(instance),
            _ => true,
        }
    }
}

/// Where the lines of a `logs` request come from.
pub struct LogPlan {
    /// Log files to show the last lines of, in the order that breaks ties between lines of
    /// the same time (instance, then stream).
    pub files: Vec<PlanFile>,
    /// How many past lines per file (at most [`MAX_PAST_LINES`] are sent).
    pub lines: usize,
    /// Only lines read at or after this time, in nanoseconds since the Unix epoch.
    pub since: Option<u64>,
    /// With `follow`: where the live lines come from.
    pub follow: Option<Follow>,
}

/// One log file of a `logs` request.
pub struct PlanFile {
    /// The instance, such as `web.0`.
    pub instance: String,
    /// Which of its streams.
    pub stream: Stream,
    /// The current log file.
    pub path: PathBuf,
    /// For a file this tend writes: its size when the request came, its index written up to
    /// there. The past lines end there; what comes after is live (`follow`).
    pub limit: Option<u64>,
    /// With `follow`: each line in the file begins with a stamp (`log.timestamps`).
    pub stamped: bool,
    /// With `follow`: the file at `path` when the request came (where `limit` was taken), if
    /// there was one; it is read on from there, through rotations.
    pub file: Option<std::fs::File>,
}

/// The live part of `logs -f`: the log files are read as they grow (see [`super::follow`]).
pub struct Follow {
    /// Says when a log grew, and which logs the driver opened.
    pub hub: Arc<FollowHub>,
    /// Subscribed when the request came: no growth after it is missed.
    pub wake: watch::Receiver<follow::Opened>,
    /// The instances to show; `None`: all, including those a reload adds.
    pub only: Option<HashSet<String>>,
}

/// A time in nanoseconds since the epoch as the protocol writes it:
/// `2026-11-29T21:44:09.512Z`.
pub fn time_text(nanos: u64) -> String {
    tend_core::time::rfc3339_millis(Duration::from_nanos(nanos))
}

/// Accepts connections until the runtime ends; each gets a task of its own.
pub async fn serve(
    listener: UnixListener,
    hello: ServerHello,
    driver: mpsc::UnboundedSender<Event>,
) {
    let own_uid = tend_os::current_uid();
    let hello = Arc::new(hello);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // EMFILE and friends: the connection stays queued; try again shortly rather than
            // spinning on the same error.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let hello = Arc::clone(&hello);
        let driver = driver.clone();
        tokio::spawn(async move {
            let _ = connection(stream, own_uid, &hello, driver).await;
        });
    }
}

async fn connection(
    stream: UnixStream,
    own_uid: u32,
    hello: &ServerHello,
    driver: mpsc::UnboundedSender<Event>,
) -> io::Result<()> {
    let peer = tend_os::peer_uid(&stream).map_err(|e| e.source)?;
    let (read, mut write) = stream.into_split();
    let mut reader = Lines::new(read);
    let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, reader.next()).await;
    if peer != own_uid && peer != 0 {
        // Refused after its hello (or the deadline), so the client reads this error rather
        // than a broken pipe; nothing it sent is looked at.
        let error = ErrorBody::new(
            ErrorCode::PermissionDenied,
            format!("this tend runs as uid {own_uid} and serves only that user and root; you are uid {peer}"),
        );
        return write_line(&mut write, &AnswerLine::error(None, error)).await;
    }
    match first {
        Err(_) => {
            let error = ErrorBody::new(ErrorCode::BadRequest, "no hello within 10 s; closing");
            return write_line(&mut write, &AnswerLine::error(None, error)).await;
        }
        Ok(Next::Line(line)) => {
            let reply = match decode::<ClientHelloLine>(&line) {
                Ok(client) => match client.hello.check(&hello.server) {
                    Ok(()) => HandshakeReply::Hello(hello.clone()),
                    Err(error) => HandshakeReply::Error(error),
                },
                Err(e) => HandshakeReply::Error(ErrorBody::new(
                    ErrorCode::BadRequest,
                    format!("the first line must be a hello, such as {{\"hello\":{{\"protocol\":{PROTOCOL_VERSION},\"client\":\"me\"}}}}: {e}"),
                )),
            };
            let refused = matches!(reply, HandshakeReply::Error(_));
            write_line(&mut write, &reply).await?;
            if refused {
                return Ok(());
            }
        }
        Ok(Next::TooLong) => return too_long(&mut write).await,
        Ok(Next::Eof) => return Ok(()),
    }
    loop {
        let line = match next_request(&mut reader).await {
            Ok(Next::Line(line)) => line,
            Ok(Next::TooLong) => return too_long(&mut write).await,
            Ok(Next::Eof) => return Ok(()),
            Err(why) => {
                let error = ErrorBody::new(ErrorCode::BadRequest, format!("{why}; closing"));
                return write_line(&mut write, &AnswerLine::error(None, error)).await;
            }
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue; // kind to people typing into socat
        }
        let request = match tend_proto::decode_request(&line) {
            Ok(request) => request,
            Err(bad) => {
                write_line(&mut write, &bad.answer()).await?;
                continue;
            }
        };
        let id = request.id;
        let (reply, answer) = oneshot::channel();
        let sent = driver.send(Event::Control(ControlRequest {
            id,
            request: request.request,
            reply,
        }));
        let answer = match (sent, answer.await) {
            (Ok(()), Ok(answer)) => answer,
            _ => {
                let error = ErrorBody::new(ErrorCode::ShuttingDown, "tend is exiting");
                return write_line(&mut write, &AnswerLine::error(Some(id), error)).await;
            }
        };
        match answer {
            Reply::Answer(answer) => {
                write_line(
                    &mut write,
                    &AnswerLine {
                        id: Some(id),
                        answer,
                    },
                )
                .await?
            }
            Reply::Final { answer, written } => {
                let result = write_line(
                    &mut write,
                    &AnswerLine {
                        id: Some(id),
                        answer,
                    },
                )
                .await;
                let _ = written.send(());
                result?;
                // Keep the connection open until the process exits: the client reads EOF
                // only once the socket is removed and the lock released.
                return std::future::pending().await;
            }
            Reply::Logs(plan) => return logs(id, plan, &mut reader, &mut write).await,
            Reply::Attach {
                instance,
                pid,
                attachable,
            } => {
                // Subscribed before the answer, so that nothing printed after it is missed.
                let Some((replay, live)) = attachable.output.subscribe() else {
                    let error = ErrorBody::new(
                        ErrorCode::Failed,
                        format!("{instance} ended while attaching"),
                    );
                    return write_line(&mut write, &AnswerLine::error(Some(id), error)).await;
                };
                let attached = tend_proto::Attached {
                    attached: tend_proto::AttachedTo { instance, pid },
                };
                write_line(&mut write, &AnswerLine::ok(id, attached)).await?;
                return super::attach::session(
                    attachable,
                    replay,
                    live,
                    &mut reader.reader,
                    &mut write,
                )
                .await;
            }
            Reply::Events(events) => {
                return stream_events(id, events, &mut reader, &mut write).await
            }
            Reply::Progress { events, answer } => {
                let answer = progress(id, events, answer, &mut write).await?;
                write_line(
                    &mut write,
                    &AnswerLine {
                        id: Some(id),
                        answer,
                    },
                )
                .await?;
            }
        }
    }
}

/// Sends the events of `events` until the client goes away.
async fn stream_events(
    id: u64,
    mut events: EventStream,
    reader: &mut Lines,
    write: &mut OwnedWriteHalf,
) -> io::Result<()> {
    loop {
        tokio::select! {
            event = events.live.recv() => match event {
                Ok(event) if events.wants(&event) => {
                    write_line(write, &AnswerLine::event(id, (*event).clone())).await?;
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let error = ErrorBody::new(
                        ErrorCode::Failed,
                        format!("{n} events were lost: this client read too slowly"),
                    );
                    return write_line(write, &AnswerLine::error(Some(id), error)).await;
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            // The client closed its side (or sent something): the stream ends.
            () = reader.closed() => return Ok(()),
        }
    }
}

/// Sends the events of `events` until `answer` comes, and returns the answer.
async fn progress(
    id: u64,
    mut events: EventStream,
    answer: oneshot::Receiver<Reply>,
    write: &mut OwnedWriteHalf,
) -> io::Result<tend_proto::Answer> {
    tokio::pin!(answer);
    let reply = loop {
        tokio::select! {
            reply = &mut answer => break reply,
            event = events.live.recv() => match event {
                Ok(event) if events.wants(&event) => {
                    write_line(write, &AnswerLine::event(id, (*event).clone())).await?;
                }
                // Missing some progress lines is no reason to fail the request.
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break (&mut answer).await,
            },
        }
    };
    // What happened up to the answer was published before it: send it first.
    while let Ok(event) = events.live.try_recv() {
        if events.wants(&event) {
            write_line(write, &AnswerLine::event(id, (*event).clone())).await?;
        }
    }
    Ok(match reply {
        Ok(Reply::Answer(answer)) => answer,
        _ => tend_proto::Answer::Error(ErrorBody::new(ErrorCode::ShuttingDown, "tend is exiting")),
    })
}

/// The next request line, within the deadlines: [`IDLE_TIMEOUT`] for its first byte to come,
/// then [`REQUEST_TIMEOUT`] for the rest of it. A client that stalls costs nothing for long.
async fn next_request(reader: &mut Lines) -> Result<Next, String> {
    if !reader.has_partial_line() {
        tokio::time::timeout(IDLE_TIMEOUT, reader.wait_for_data())
            .await
            .map_err(|_| format!("no request for {} s", IDLE_TIMEOUT.as_secs()))?;
    }
    tokio::time::timeout(REQUEST_TIMEOUT, reader.next())
        .await
        .map_err(|_| {
            format!(
                "a request was begun but not finished (no newline) within {} s",
                REQUEST_TIMEOUT.as_secs()
            )
        })
}

async fn too_long(write: &mut OwnedWriteHalf) -> io::Result<()> {
    let error = ErrorBody::new(
        ErrorCode::LineTooLong,
        format!("a line is longer than {MAX_LINE} bytes; closing"),
    );
    write_line(write, &AnswerLine::error(None, error)).await
}

async fn write_line<T: serde::Serialize>(write: &mut OwnedWriteHalf, msg: &T) -> io::Result<()> {
    write_all(write, &encode(msg)).await
}

/// Writes `bytes` to the client within [`WRITE_TIMEOUT`]: a client that stops reading does
/// not keep its connection, and the answer it holds, for ever.
pub(super) async fn write_all(write: &mut OwnedWriteHalf, bytes: &[u8]) -> io::Result<()> {
    tokio::time::timeout(WRITE_TIMEOUT, write.write_all(bytes))
        .await
        .unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing for a minute",
            ))
        })
}

/// Where the lines of a `logs` request go: the socket (answer lines) or HTTP (a JSON array,
/// or Server-Sent Events).
pub(super) trait LogSink {
    /// Appends `line`, encoded, to `out`.
    fn encode(&mut self, line: LogLine, out: &mut Vec<u8>);
    /// Sends what was encoded.
    async fn send(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Resolves when the client is gone, which ends a follow.
    async fn closed(&mut self);
}

/// The lines of a `logs` request: the last lines of each file, merged in the order they were
/// read, then with `follow` the lines appended to the files since, until the client goes away
/// or tend exits. Returns whether the past lines were all there was to send (no `follow`).
pub(super) async fn send_logs(plan: LogPlan, sink: &mut impl LogSink) -> io::Result<bool> {
    let LogPlan {
        files,
        lines,
        since,
        follow,
    } = plan;
    let ask = TailAsk::shared(files.len(), lines, since);
    let following = follow.is_some();
    // File reads go to the blocking pool: this task shares the driver's thread.
    let (names, tails, starts) = tokio::task::spawn_blocking(move || {
        let mut names = Vec::with_capacity(files.len());
        let mut tails = Vec::with_capacity(files.len());
        let mut starts = Vec::new();
        for file in files {
            names.push((file.instance.clone(), file.stream));
            if !following {
                tails.push(tail_lines(&file.path, ask.up_to(file.limit)));
                continue;
            }
            // The past lines end where the follower begins: at the start of the last line if
            // it is not complete yet, so that it comes whole. A file this tend does not write
            // yet ends where it did when it was opened for this request.
            let (offset, cut) = match &file.file {
                Some(f) => {
                    let limit = file
                        .limit
                        .unwrap_or_else(|| f.metadata().map_or(0, |m| m.len()));
                    follow::line_start(f, limit)
                }
                None => (0, false),
            };
            tails.push(match file.file {
                Some(_) => tail_lines(&file.path, ask.up_to(Some(offset))),
                None => Tail::default(),
            });
            starts.push(follow::Start {
                instance: file.instance,
                stream: file.stream,
                path: file.path,
                stamped: file.stamped,
                file: file.file,
                offset,
                cut,
            });
        }
        (names, tails, starts)
    })
    .await
    .unwrap_or_default();
    let mut out = Vec::with_capacity(WRITE_BATCH);
    send_merged(&tails, &names, sink, &mut out).await?;
    drop(tails);
    let Some(Follow { hub, wake, only }) = follow else {
        return Ok(true);
    };
    let mut follower = Follower::new(starts, only, hub, wake, since.unwrap_or(0));
    loop {
        // A pass reads a bounded amount; a client that reads slowly holds the next one back,
        // never the children.
        loop {
            let pass = follower.pass();
            if pass.lost_files > 0 {
                let note =
                    "(lines not shown: the log files rotated away before this client read them)";
                sink.encode(
                    LogLine::from_bytes("tend", Stream::Stderr, note.as_bytes()),
                    &mut out,
                );
            }
            send_merged(&pass.tails, &pass.names, sink, &mut out).await?;
            if !pass.more {
                break;
            }
            tokio::task::consume_budget().await;
        }
        let grew = tokio::select! {
            grew = follower.wait() => grew,
            // The client closed its side (or sent something): the follow ends.
            () = sink.closed() => return Ok(false),
        };
        if !grew {
            // tend is exiting: what the last pass did not see was written before.
            let pass = follower.pass();
            send_merged(&pass.tails, &pass.names, sink, &mut out).await?;
            return Ok(false);
        }
    }
}

/// Sends the pieces of `tails` (those of the file `names[i]` in `tails[i]`) merged by time,
/// after what `out` holds already, in batches of about [`WRITE_BATCH`].
async fn send_merged(
    tails: &[Tail],
    names: &[(String, Stream)],
    sink: &mut impl LogSink,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    for (file, piece) in merged(tails) {
        let (instance, stream) = &names[file];
        let log = LogLine::from_bytes(instance.clone(), *stream, tails[file].text(piece))
            .cut(piece.cut)
            .at(piece.time.map(|t| time_text(t.get())));
        sink.encode(log, out);
        if out.len() >= WRITE_BATCH {
            sink.send(out).await?;
            out.clear();
        }
    }
    if !out.is_empty() {
        sink.send(out).await?;
        out.clear();
    }
    Ok(())
}

/// A `logs` request's lines as answer lines on the control socket.
struct SocketLogs<'a> {
    id: u64,
    reader: &'a mut Lines,
    write: &'a mut OwnedWriteHalf,
}

impl LogSink for SocketLogs<'_> {
    fn encode(&mut self, line: LogLine, out: &mut Vec<u8>) {
        out.extend(encode(&AnswerLine::log(self.id, line)));
    }

    async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        write_all(self.write, bytes).await
    }

    async fn closed(&mut self) {
        self.reader.closed().await
    }
}

/// Answers a `logs` request on the socket: the lines, then `ok` unless following.
async fn logs(
    id: u64,
    plan: LogPlan,
    reader: &mut Lines,
    write: &mut OwnedWriteHalf,
) -> io::Result<()> {
    let mut sink = SocketLogs { id, reader, write };
    if send_logs(plan, &mut sink).await? {
        write_line(write, &AnswerLine::ok(id, Done {})).await?;
    }
    Ok(())
}

/// The pieces of `tails`, merged by time: a k-way merge, so the lines of one file keep their
/// order whatever the times say (a clock set back); a piece of unknown time comes before every
/// known one, and of equal times the file that comes first in `tails` goes first.
pub fn merged(tails: &[Tail]) -> impl Iterator<Item = (usize, &Piece)> + '_ {
    let key = |file: usize, i: usize| tails[file].pieces[i].time.map_or(0, NonZeroU64::get);
    let mut heads: BinaryHeap<Reverse<(u64, usize, usize)>> = tails
        .iter()
        .enumerate()
        .filter(|(_, tail)| !tail.pieces.is_empty())
        .map(|(file, _)| Reverse((key(file, 0), file, 0)))
        .collect();
    std::iter::from_fn(move || {
        let Reverse((_, file, i)) = heads.pop()?;
        if i + 1 < tails[file].pieces.len() {
            heads.push(Reverse((key(file, i + 1), file, i + 1)));
        }
        Some((file, &tails[file].pieces[i]))
    })
}

/// The longest piece of a line `tend logs` sends, as the terminal and `logs -f` cut them: a
/// longer line goes in pieces, each marked [`LogLine::cut`].
pub const LINE_PIECE: usize = super::lines::LINE_CAP;
/// The most bytes `tend logs` reads back from one file, however many lines were asked for, so
/// that the memory of a request is bounded whatever the file holds.
pub const MAX_TAIL_BYTES: usize = 4 << 20;

/// What to read back of one log file.
#[derive(Debug, Clone, Copy)]
pub struct TailAsk {
    /// At most this many pieces (a line longer than [`LINE_PIECE`] counts once per piece).
    pub lines: usize,
    /// At most this many bytes, from the end.
    pub bytes: usize,
    /// Only lines read at or after this time (ns since the epoch); lines of unknown time are
    /// left out then.
    pub since: Option<u64>,
    /// The file ends here for this read (bytes written later are not read).
    pub limit: Option<u64>,
}

impl TailAsk {
    /// The last `lines` lines of a file, in at most `min(lines × LINE_PIECE, MAX_TAIL_BYTES)`.
    pub fn lines(lines: usize) -> TailAsk {
        TailAsk::shared(1, lines, None)
    }

    /// What each of `files` files of one request gets of `lines` lines: at most
    /// [`MAX_PAST_LINES`] lines and `min(lines × LINE_PIECE, MAX_TAIL_BYTES)` bytes, and the
    /// request as a whole at most [`MAX_REQUEST_LINES`] and [`MAX_REQUEST_BYTES`] (each file
    /// still gets one line and one [`LINE_PIECE`]): every tail is held until they are merged.
    pub fn shared(files: usize, lines: usize, since: Option<u64>) -> TailAsk {
        let files = files.max(1);
        let lines = lines
            .min(MAX_PAST_LINES)
            .min((MAX_REQUEST_LINES / files).max(1));
        let bytes = lines
            .saturating_mul(LINE_PIECE)
            .min(MAX_TAIL_BYTES)
            .min((MAX_REQUEST_BYTES / files).max(LINE_PIECE));
        TailAsk {
            lines,
            bytes,
            since,
            limit: None,
        }
    }

    /// This ask for a file that ends at `limit`, if given.
    pub fn up_to(self, limit: Option<u64>) -> TailAsk {
        TailAsk { limit, ..self }
    }
}

/// The end of a log file, read back for `tend logs`: the bytes, and the pieces to send.
#[derive(Debug, Default)]
pub struct Tail {
    buf: Vec<u8>,
    pieces: Vec<Piece>,
}

/// One piece of a [`Tail`]: a line, or a part of a long one.
#[derive(Debug, Clone, Copy)]
pub struct Piece {
    /// Its bytes in the tail's buffer (at most [`MAX_TAIL_BYTES`]).
    start: u32,
    end: u32,
    /// When it was read (its last byte), in nanoseconds since the epoch, if the index says.
    pub time: Option<NonZeroU64>,
    /// Only a part of its line.
    pub cut: bool,
}

impl Tail {
    /// The pieces in file order: the bytes (without newline) and whether each was cut.
    pub fn pieces(&self) -> impl Iterator<Item = (&[u8], bool)> + '_ {
        self.pieces
            .iter()
            .map(|piece| (self.text(piece), piece.cut))
    }

    /// The pieces in file order, with their times.
    pub fn timed(&self) -> impl Iterator<Item = (&[u8], Option<NonZeroU64>)> + '_ {
        self.pieces
            .iter()
            .map(|piece| (self.text(piece), piece.time))
    }

    /// The bytes of `piece`, one of this tail's.
    pub fn text(&self, piece: &Piece) -> &[u8] {
        &self.buf[piece.start as usize..piece.end as usize]
    }

    /// How many pieces there are.
    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Adds a piece: `text` (at most [`LINE_PIECE`] bytes), read at `time`.
    pub fn push(&mut self, text: &[u8], time: Option<NonZeroU64>, cut: bool) {
        let start = self.buf.len() as u32;
        self.buf.extend_from_slice(text);
        self.pieces.push(Piece {
            start,
            end: self.buf.len() as u32,
            time,
            cut,
        });
    }

    /// Keeps only the pieces read at or after `since` (ns since the epoch).
    pub fn retain_since(&mut self, since: u64) {
        self.pieces
            .retain(|piece| piece.time.is_some_and(|t| t.get() >= since));
    }
}

/// The end of the file at `path` as `ask` says: its last lines (fewer if it has fewer; none if
/// it is missing), each with the time its index gives it.
///
/// A line longer than [`LINE_PIECE`] counts as one line per piece of it. At most `ask.bytes`
/// are read back, so a file that is one huge line costs only its end: the line at the start of
/// what was read is then shown from where the read began, marked cut. The file is first
/// scanned backwards in blocks to find where the wanted lines start, then that much is read
/// once. With `since`, the index says from which offset the bytes are recent enough, and the
/// scan stops at the newline before it.
///
/// A piece's time is that of the index's last record at or before its last byte (or its
/// newline): the lines' records are read by a binary search for the first, then forward.
/// Without an index (or a record that early) it is unknown.
pub fn tail_lines(path: &std::path::Path, ask: TailAsk) -> Tail {
    use std::io::{Read, Seek, SeekFrom};
    const BLOCK: usize = 64 * 1024;
    let n = ask.lines;
    let Ok(mut file) = std::fs::File::open(path) else {
        return Tail::default();
    };
    let Ok(end) = file.seek(SeekFrom::End(0)) else {
        return Tail::default();
    };
    let len = ask.limit.map_or(end, |limit| limit.min(end));
    if n == 0 || len == 0 {
        return Tail::default();
    }
    let index = IndexReader::open(path);
    // Lines that end before this offset were read before `since`.
    let since_offset = match ask.since {
        None => 0,
        Some(since) => match index.as_ref().and_then(|index| index.offset_since(since)) {
            Some(offset) if offset < len => offset,
            _ => return Tail::default(),
        },
    };
    let budget = ask.bytes.min(MAX_TAIL_BYTES) as u64;
    let floor = len.saturating_sub(budget);
    // Scan backwards for the newline that ends the line before the wanted ones (one more
    // newline than lines wanted: the file's last newline ends the last line), or that ends a
    // line older than `since`, no further than the budget.
    let mut start = floor;
    let mut newlines = 0;
    let mut block = vec![0; BLOCK];
    let mut pos = len;
    'scan: while pos > floor {
        let from = pos.saturating_sub(BLOCK as u64).max(floor);
        let block = &mut block[..(pos - from) as usize];
        if file.seek(SeekFrom::Start(from)).is_err() || file.read_exact(block).is_err() {
            return Tail::default();
        }
        for (i, &b) in block.iter().enumerate().rev() {
            if b == b'\n' {
                let at = from + i as u64;
                newlines += 1;
                if newlines > n || at < since_offset {
                    start = at + 1;
                    break 'scan;
                }
            }
        }
        pos = from;
    }
    // Whether the first line read begins before `start`: then only its end is shown.
    let mut cut_start = false;
    if start == floor && start > 0 {
        let mut before = [0u8; 1];
        if file.seek(SeekFrom::Start(start - 1)).is_err() || file.read_exact(&mut before).is_err() {
            return Tail::default();
        }
        cut_start = before[0] != b'\n';
    }
    let mut buf = vec![0; (len - start) as usize];
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_exact(&mut buf).is_err() {
        return Tail::default();
    }
    let body = buf.strip_suffix(b"\n").unwrap_or(&buf).len();
    let mut pieces = Vec::new();
    let mut line_start = 0;
    let piece = |from: usize, to: usize, cut: bool| Piece {
        start: from as u32,
        end: to as u32,
        time: None,
        cut,
    };
    for line in buf[..body].split(|&b| b == b'\n') {
        let cut = line.len() > LINE_PIECE || (cut_start && line_start == 0);
        if line.is_empty() {
            pieces.push(piece(line_start, line_start, cut));
        }
        for (i, part) in line.chunks(LINE_PIECE).enumerate() {
            let from = line_start + i * LINE_PIECE;
            pieces.push(piece(from, from + part.len(), cut));
        }
        line_start += line.len() + 1;
    }
    let skip = pieces.len().saturating_sub(n);
    pieces.drain(..skip);
    if let (Some(index), Some(first)) = (&index, pieces.first()) {
        // A piece was read when its last byte was, or its newline for the end of a line.
        let last_byte = |piece: &Piece| {
            let end = piece.end as usize;
            let at = if buf.get(end) == Some(&b'\n') {
                end
            } else {
                end.saturating_sub(1)
            };
            start + at as u64
        };
        let mut cursor = index.cursor(last_byte(first));
        for piece in &mut pieces {
            piece.time = cursor.time_at(last_byte(piece));
        }
    }
    if let Some(since) = ask.since {
        pieces.retain(|piece| piece.time.is_some_and(|t| t.get() >= since));
    }
    Tail { buf, pieces }
}

/// What the next read from a client brought.
enum Next {
    Line(Vec<u8>),
    TooLong,
    Eof,
}

/// A client's lines, at most [`MAX_LINE`] bytes each.
struct Lines {
    reader: BufReader<OwnedReadHalf>,
    framer: LineFramer,
}

impl Lines {
    fn new(read: OwnedReadHalf) -> Self {
        Lines {
            reader: BufReader::new(read),
            framer: LineFramer::with_limit(MAX_LINE),
        }
    }

    async fn next(&mut self) -> Next {
        loop {
            let buf = match self.reader.fill_buf().await {
                Ok(buf) => buf,
                Err(_) => return Next::Eof,
            };
            if buf.is_empty() {
                return match self.framer.finish() {
                    Some(line) => Next::Line(line.to_vec()),
                    None => Next::Eof,
                };
            }
            let (used, found) = self.framer.push(buf);
            self.reader.consume(used);
            match found {
                Pushed::NeedMore => {}
                Pushed::Line => return Next::Line(self.framer.line().to_vec()),
                Pushed::TooLong => return Next::TooLong,
            }
        }
    }

    /// Whether part of a line has been read but not its newline.
    fn has_partial_line(&self) -> bool {
        self.framer.has_partial() || !self.reader.buffer().is_empty()
    }

    /// Resolves when there are bytes to read, or the client closed its side. Reads into the
    /// buffer only; nothing is consumed.
    async fn wait_for_data(&mut self) {
        let _ = self.reader.fill_buf().await;
    }

    /// Resolves when the client closes its side or sends anything more.
    async fn closed(&mut self) {
        let mut byte = [0u8; 1];
        let _ = self.reader.read(&mut byte).await;
    }
}

#[cfg(test)]
mod tests {
    use super::super::logindex;
    use super::*;

    /// The pieces of the tail of `path`, as owned lines; panics if one is cut.
    fn tail(path: &std::path::Path, n: usize) -> Vec<Vec<u8>> {
        let tail = tail_lines(path, TailAsk::lines(n));
        tail.pieces()
            .map(|(line, cut)| {
                assert!(!cut);
                line.to_vec()
            })
            .collect()
    }

    #[test]
    fn tail_gives_the_last_lines_across_block_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let text: String = (0..30_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, &text).unwrap();
        let last: Vec<Vec<u8>> = (29_997..30_000)
            .map(|i| format!("line {i}").into_bytes())
            .collect();
        assert_eq!(tail(&path, 3), last);
        assert_eq!(tail(&path, 20_000).len(), 20_000);
        assert_eq!(tail(&path, 20_000)[0], b"line 10000");
        assert_eq!(tail(&path, 100_000).len(), 30_000);
        assert_eq!(tail(&path, 0), Vec::<Vec<u8>>::new());
        assert_eq!(tail(&dir.path().join("missing"), 5), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn tail_keeps_a_last_line_without_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        std::fs::write(&path, "a\nb\nc").unwrap();
        assert_eq!(tail(&path, 2), vec![b"b".to_vec(), b"c".to_vec()]);
        std::fs::write(&path, "\n\n").unwrap();
        assert_eq!(tail(&path, 5), vec![Vec::<u8>::new(), Vec::new()]);
    }

    #[test]
    fn a_long_line_comes_in_marked_pieces_and_a_huge_one_costs_only_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        // A line of 2.5 pieces between two short ones.
        let long: Vec<u8> = (0..LINE_PIECE * 5 / 2)
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        let mut text = b"first\n".to_vec();
        text.extend_from_slice(&long);
        text.extend_from_slice(b"\nlast\n");
        std::fs::write(&path, &text).unwrap();
        let t = tail_lines(&path, TailAsk::lines(10));
        let got: Vec<(Vec<u8>, bool)> = t.pieces().map(|(l, c)| (l.to_vec(), c)).collect();
        assert_eq!(got.len(), 5, "first, three pieces, last");
        assert_eq!(got[0], (b"first".to_vec(), false));
        assert_eq!(got[1], (long[..LINE_PIECE].to_vec(), true));
        assert_eq!(got[3], (long[2 * LINE_PIECE..].to_vec(), true));
        assert_eq!(got[4], (b"last".to_vec(), false));
        // The last two: the line's last piece, then `last`.
        let t = tail_lines(&path, TailAsk::lines(2));
        let got: Vec<bool> = t.pieces().map(|(_, c)| c).collect();
        assert_eq!(got, [true, false]);

        // 10 MB without a newline: one line asked, one piece read back.
        std::fs::write(&path, vec![0u8; 10_000_000]).unwrap();
        let t = tail_lines(&path, TailAsk::lines(1));
        assert_eq!(t.len(), 1);
        let (piece, cut) = t.pieces().next().unwrap();
        assert!(cut && piece.len() == LINE_PIECE && piece.iter().all(|&b| b == 0));
        assert!(t.buf.len() <= LINE_PIECE, "read {} bytes", t.buf.len());
        // However many lines are asked for, at most MAX_TAIL_BYTES are read.
        let t = tail_lines(&path, TailAsk::lines(100_000));
        assert_eq!(t.buf.len(), MAX_TAIL_BYTES);
        assert_eq!(t.len(), MAX_TAIL_BYTES / LINE_PIECE);
        assert!(t.pieces().all(|(_, cut)| cut));
    }

    /// Writes an index for the log at `path` holding `records` (offset, time in ns).
    fn index(path: &std::path::Path, records: &[(u64, u64)]) {
        let bytes: Vec<u8> = records
            .iter()
            .flat_map(|&(offset, time)| [offset.to_le_bytes(), time.to_le_bytes()].concat())
            .collect();
        std::fs::write(logindex::index_path(path), bytes).unwrap();
    }

    fn timed(tail: &Tail) -> Vec<(String, Option<u64>)> {
        tail.timed()
            .map(|(line, time)| {
                (
                    String::from_utf8_lossy(line).into_owned(),
                    time.map(NonZeroU64::get),
                )
            })
            .collect()
    }

    #[test]
    fn each_line_gets_the_time_of_the_read_that_completed_it_and_since_keeps_recent_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        // a\n b\n c\n dd: offsets 0, 2, 4, 6; a read at 3 (b's newline) and one at 6.
        std::fs::write(&path, "a\nb\nc\ndd").unwrap();
        let ask = TailAsk::lines(10);
        let line = |text: &str, time| (text.to_owned(), time);
        assert_eq!(
            timed(&tail_lines(&path, ask)),
            [
                line("a", None),
                line("b", None),
                line("c", None),
                line("dd", None)
            ],
            "no index: no times"
        );
        index(&path, &[(0, 100), (3, 200), (6, 300)]);
        assert_eq!(
            timed(&tail_lines(&path, ask)),
            [
                line("a", Some(100)),
                line("b", Some(200)),
                line("c", Some(200)),
                line("dd", Some(300))
            ]
        );
        let since = |ns| {
            timed(&tail_lines(
                &path,
                TailAsk {
                    since: Some(ns),
                    ..ask
                },
            ))
        };
        assert_eq!(
            since(200),
            [
                line("b", Some(200)),
                line("c", Some(200)),
                line("dd", Some(300))
            ]
        );
        assert_eq!(since(201), [line("dd", Some(300))]);
        assert_eq!(since(301), []);
        assert_eq!(since(0).len(), 4);
        // The file as it was when the request came: later bytes are left to `follow`.
        let upto = tail_lines(&path, ask.up_to(Some(6)));
        assert_eq!(timed(&upto).len(), 3);
        assert_eq!(
            timed(&tail_lines(
                &path,
                TailAsk {
                    since: Some(300),
                    ..ask.up_to(Some(6))
                }
            )),
            [],
            "the recent read lies beyond the limit"
        );
        // An index that starts late: the lines before its first record have no time, and
        // `since` leaves them out.
        index(&path, &[(4, 500)]);
        assert_eq!(
            timed(&tail_lines(&path, ask)),
            [
                line("a", None),
                line("b", None),
                line("c", Some(500)),
                line("dd", Some(500))
            ]
        );
        assert_eq!(since(1).len(), 2);
        // A torn index: its whole records count.
        let mut bytes = std::fs::read(logindex::index_path(&path)).unwrap();
        bytes.truncate(20);
        std::fs::write(logindex::index_path(&path), &bytes).unwrap();
        assert_eq!(timed(&tail_lines(&path, ask)).len(), 4);
        bytes.truncate(10);
        std::fs::write(logindex::index_path(&path), &bytes).unwrap();
        assert!(timed(&tail_lines(&path, ask))
            .iter()
            .all(|(_, t)| t.is_none()));
    }

    #[test]
    fn the_pieces_of_a_long_line_get_the_times_of_their_last_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let mut text = vec![b'x'; LINE_PIECE + 10];
        text.push(b'\n');
        std::fs::write(&path, &text).unwrap();
        // The first piece was read at 1, its last 10 bytes at 2, the newline at 3.
        let newline = LINE_PIECE as u64 + 10;
        index(&path, &[(0, 1), (LINE_PIECE as u64, 2), (newline, 3)]);
        let times: Vec<Option<u64>> = timed(&tail_lines(&path, TailAsk::lines(10)))
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        assert_eq!(times, [Some(1), Some(3)]);
    }

    fn tail_of(lines: &[(&str, Option<u64>)]) -> Tail {
        let mut buf = Vec::new();
        let mut pieces = Vec::new();
        for &(text, time) in lines {
            let start = buf.len() as u32;
            buf.extend_from_slice(text.as_bytes());
            pieces.push(Piece {
                start,
                end: buf.len() as u32,
                time: time.and_then(NonZeroU64::new),
                cut: false,
            });
            buf.push(b'\n');
        }
        Tail { buf, pieces }
    }

    #[test]
    fn tails_merge_by_time_unknown_first_ties_in_file_order_and_each_file_in_its_order() {
        let tails = [
            tail_of(&[("a1", Some(10)), ("a2", Some(30)), ("a3", Some(30))]),
            tail_of(&[("b0", None), ("b1", Some(20)), ("b2", Some(30))]),
            tail_of(&[]),
            // A clock set back: this file's order stands.
            tail_of(&[("c1", Some(40)), ("c2", Some(5))]),
        ];
        let order: Vec<String> = merged(&tails)
            .map(|(file, piece)| String::from_utf8_lossy(tails[file].text(piece)).into_owned())
            .collect();
        assert_eq!(order, ["b0", "a1", "b1", "a2", "a3", "b2", "c1", "c2"]);
    }

    #[test]
    fn a_request_shares_its_budget_among_its_files() {
        let one = TailAsk::shared(2, 100_000, None);
        assert_eq!((one.lines, one.bytes), (MAX_PAST_LINES, MAX_TAIL_BYTES));
        let ten = TailAsk::shared(200, 10, None);
        assert_eq!(
            (ten.lines, ten.bytes),
            (10, 10 * LINE_PIECE),
            "the usual ask is whole"
        );
        let many = TailAsk::shared(20_000, 100_000, None);
        assert_eq!(
            (many.lines, many.bytes),
            (50, LINE_PIECE),
            "at least a piece each"
        );
        let all = TailAsk::shared(2_000, 100_000, None);
        assert!(all.lines * 2_000 <= MAX_REQUEST_LINES && all.bytes * 2_000 <= MAX_REQUEST_BYTES);
    }

    #[test]
    fn a_read_that_begins_at_a_line_start_does_not_mark_it_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        // Two lines of exactly one piece: asking for one reads one piece and sees the newline
        // before it.
        let mut text = vec![b'x'; LINE_PIECE];
        text.push(b'\n');
        text.extend(vec![b'y'; LINE_PIECE - 1]);
        text.push(b'\n');
        std::fs::write(&path, &text).unwrap();
        let t = tail_lines(&path, TailAsk::lines(1));
        let got: Vec<(usize, bool)> = t.pieces().map(|(l, c)| (l.len(), c)).collect();
        assert_eq!(got, [(LINE_PIECE - 1, false)]);
    }
}
