//! One client connection to a supervisor's control socket: connecting (and telling "nobody is
//! running" apart from other failures), the handshake, sending requests under ids counted from
//! 1, and reading answer lines that belong to them.
//!
//! Blocking std I/O only. Every way the conversation can go wrong becomes a [`Failure`] with a
//! message that names the socket; nothing here panics on what the peer sends.

use std::io::{self, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tend_proto::{
    decode, encode, Answer, AnswerLine, ClientHello, ClientHelloLine, HandshakeReply, LineReader,
    OkBody, ProtoError, Request, RequestLine, MAX_ANSWER_LINE, PROTOCOL_VERSION,
};

use super::{error_failure, Failure, EXIT_FAILED, EXIT_NOT_RUNNING};

/// How long the supervisor may take to answer the hello. Requests themselves have no deadline:
/// `stop` and `down` legitimately wait for processes' stop timeouts.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of an unexpected line a message quotes.
const QUOTE_LIMIT: usize = 200;

/// A connection after a successful handshake.
pub struct Connection {
    reader: LineReader<BufReader<UnixStream>>,
    writer: UnixStream,
    socket: PathBuf,
    next_id: u64,
    /// The supervisor's hello.
    hello: Option<tend_proto::ServerHello>,
}

impl Connection {
    /// The supervisor's hello: its version, pid, config and start time.
    pub fn hello(&self) -> Option<&tend_proto::ServerHello> {
        self.hello.as_ref()
    }

    /// Connects to the supervisor of `config` at `socket` and says hello.
    ///
    /// No socket file, or one nobody listens on (left by a tend that died), is
    /// [`EXIT_NOT_RUNNING`] with a hint to start one; a refused handshake
    /// (`protocol_mismatch`, `permission_denied`) is [`EXIT_FAILED`] with the server's message.
    pub fn open(config: &Path, socket: &Path) -> Result<Connection, Failure> {
        let stream =
            UnixStream::connect(socket).map_err(|e| connect_failure(config, socket, &e))?;
        let lost = |e: io::Error| lost(socket, &e);
        let writer = stream.try_clone().map_err(lost)?;
        let mut conn = Connection {
            reader: LineReader::with_limit(BufReader::new(stream), MAX_ANSWER_LINE),
            writer,
            socket: socket.to_owned(),
            next_id: 1,
            hello: None,
        };
        conn.writer
            .set_read_timeout(Some(HELLO_TIMEOUT))
            .map_err(lost)?;
        conn.handshake()?;
        conn.writer.set_read_timeout(None).map_err(lost)?;
        Ok(conn)
    }

    /// Sends the hello and checks the reply.
    fn handshake(&mut self) -> Result<(), Failure> {
        let hello = ClientHelloLine::from(ClientHello::new(concat!(
            "tend ",
            env!("CARGO_PKG_VERSION")
        )));
        // A server that refuses us (another uid) may answer and close before our hello is
        // written: its error is still there to read, and says more than a broken pipe.
        let sent = self.send_line(&encode(&hello));
        let line = match (sent, self.read_raw()) {
            (_, Ok(Some(line))) => Some(line),
            (Err(failure), _) => return Err(failure),
            (Ok(()), read) => read?,
        };
        let Some(line) = line else {
            return Err(self.failure(
                "the supervisor closed the connection instead of answering the hello".to_owned(),
            ));
        };
        match decode::<HandshakeReply>(&line) {
            Ok(HandshakeReply::Hello(hello)) if hello.protocol == PROTOCOL_VERSION => {
                self.hello = Some(hello);
                Ok(())
            }
            Ok(HandshakeReply::Hello(hello)) => Err(mismatch(hello.protocol, &hello.server)),
            Ok(HandshakeReply::Error(error)) => Err(error_failure(error)),
            Err(e) => match decode::<AnyHello>(&line) {
                // Another version's hello, whose other fields may differ from ours.
                Ok(any) if any.hello.protocol != PROTOCOL_VERSION => {
                    Err(mismatch(any.hello.protocol, "another version of tend"))
                }
                _ => Err(self.unexpected("a hello", &line, &e)),
            },
        }
    }

    /// Another handle on the connection's socket, to shut it down from another thread (which
    /// ends a read blocked on it there with the end of the stream).
    pub fn closer(&self) -> io::Result<UnixStream> {
        self.writer.try_clone()
    }

    /// The connection's two directions, for raw bytes after an answer (`attach`): the
    /// reader keeps what it has buffered beyond the last line.
    pub fn into_parts(self) -> (BufReader<UnixStream>, UnixStream) {
        (self.reader.into_inner(), self.writer)
    }

    /// Sends `request` under the next id, which it returns.
    pub fn send(&mut self, request: Request) -> Result<u64, Failure> {
        let id = self.next_id;
        self.next_id += 1;
        self.send_line(&encode(&RequestLine::new(id, request)))?;
        Ok(id)
    }

    /// The next line of the answer to request `id`, or `None` when the supervisor closed the
    /// connection. A line with another id, or one that is not an answer, is a failure; an
    /// `error` line without id (the server could not read our line) belongs to `id`.
    pub fn next(&mut self, id: u64) -> Result<Option<Answer>, Failure> {
        let Some(line) = self.read_raw()? else {
            return Ok(None);
        };
        let answer =
            decode::<AnswerLine>(&line).map_err(|e| self.unexpected("an answer", &line, &e))?;
        match (answer.id, answer.answer) {
            (Some(got), _) if got != id => Err(self.failure(format!(
                "the supervisor answered request {got} while request {id} was waiting: {}",
                quote(&line)
            ))),
            (None, answer @ Answer::Error(_)) | (Some(_), answer) => Ok(Some(answer)),
            (None, _) => Err(self.failure(format!(
                "the supervisor sent an answer without id: {}",
                quote(&line)
            ))),
        }
    }

    /// The terminal line of the answer to request `id`, for a request that streams nothing:
    /// the `ok` payload, or the `error` as a failure. A `log` line or the end of the
    /// connection is a failure.
    pub fn ok(&mut self, id: u64) -> Result<OkBody, Failure> {
        match self.next(id)? {
            Some(Answer::Ok(body)) => Ok(body),
            Some(Answer::Error(error)) => Err(error_failure(error)),
            Some(Answer::Log(_) | Answer::Event(_)) => Err(self.failure(format!(
                "the supervisor sent log or event lines in answer to request {id}, which asked \
                 for none"
            ))),
            None => Err(self.closed_early()),
        }
    }

    /// Reads and drops whatever comes until the supervisor closes the connection; a reset
    /// connection counts as closed.
    pub fn wait_closed(&mut self) {
        while let Ok(Some(_)) | Err(ProtoError::LineTooLong) = self.reader.read_line() {}
        // The connection closes as the supervisor exits; wait for the exit itself, so that a
        // `tend up` right after finds nothing in its way.
        if let Some(pid) = self.hello.as_ref().and_then(|h| i32::try_from(h.pid).ok()) {
            let _ = tend_os::wait_exit(pid, std::time::Duration::from_secs(10));
        }
    }

    /// The failure for a connection that ended before the terminal line.
    pub fn closed_early(&self) -> Failure {
        self.failure(
            "the supervisor closed the connection before answering; it may have exited (see its \
             log, tend.log beside the process logs)"
                .to_owned(),
        )
    }

    /// A failure ([`EXIT_FAILED`]) about this connection: the socket is named.
    pub fn failure(&self, what: String) -> Failure {
        Failure::report(
            EXIT_FAILED,
            format!("{what} (socket {})", self.socket.display()),
        )
    }

    /// The failure for a line that is not the message that was expected.
    fn unexpected(&self, expected: &str, line: &[u8], error: &ProtoError) -> Failure {
        self.failure(format!(
            "the supervisor sent a line that is not {expected} ({error}): {}",
            quote(line)
        ))
    }

    fn send_line(&mut self, line: &[u8]) -> Result<(), Failure> {
        self.writer
            .write_all(line)
            .map_err(|e| lost(&self.socket, &e))
    }

    /// The next line, copied; `None` at EOF.
    fn read_raw(&mut self) -> Result<Option<Vec<u8>>, Failure> {
        match self.reader.read_line() {
            Ok(line) => Ok(line.map(<[u8]>::to_vec)),
            Err(ProtoError::LineTooLong) => Err(self.failure(format!(
                "the supervisor sent a line longer than {MAX_ANSWER_LINE} bytes"
            ))),
            Err(ProtoError::Io(e)) if is_timeout(&e) => Err(self.failure(format!(
                "the supervisor did not answer within {} s; it may be stuck (see its log)",
                HELLO_TIMEOUT.as_secs()
            ))),
            Err(ProtoError::Io(e)) => Err(lost(&self.socket, &e)),
            Err(e @ ProtoError::Decode(_)) => Err(self.failure(e.to_string())),
        }
    }
}

/// The part of a hello that every version of the protocol keeps in place.
#[derive(Deserialize)]
struct AnyHello {
    hello: ProtocolOnly,
}

/// A hello's `protocol`, all other fields ignored.
#[derive(Deserialize)]
struct ProtocolOnly {
    protocol: u32,
}

/// The failure for a supervisor that speaks another protocol than this client.
fn mismatch(protocol: u32, server: &str) -> Failure {
    Failure::report(
        EXIT_FAILED,
        format!(
            "protocol mismatch: this tend speaks protocol {PROTOCOL_VERSION}, the running \
             supervisor ({server}) speaks protocol {protocol}; use the tend binary of the same \
             version as the supervisor, or stop the supervisor and start it with this one"
        ),
    )
}

/// Whether a read error is the hello's deadline passing.
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The failure for a connection lost mid-way.
fn lost(socket: &Path, e: &io::Error) -> Failure {
    Failure::report(
        EXIT_FAILED,
        format!(
            "lost the connection to the supervisor at {}: {e}",
            socket.display()
        ),
    )
}

/// What a failed `connect` means for the user.
fn connect_failure(config: &Path, socket: &Path, e: &io::Error) -> Failure {
    let (config, socket_text) = (config.display(), socket.display());
    let why = match e.kind() {
        io::ErrorKind::NotFound => format!("no socket at {socket_text}"),
        io::ErrorKind::ConnectionRefused => format!(
            "the socket {socket_text} refused the connection; it is left over from a tend that died"
        ),
        _ => {
            return Failure::report(
                EXIT_FAILED,
                format!(
                    "cannot connect to the supervisor of {config} at {socket_text}: {e}; check \
                     that the socket and its directory belong to you"
                ),
            )
        }
    };
    Failure::report(
        EXIT_NOT_RUNNING,
        format!("no tend is running for {config} ({why}); start one with: tend up -d -c {config}"),
    )
}

/// A line for a message: lossy UTF-8, cut after [`QUOTE_LIMIT`] characters.
fn quote(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    match text.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_cut_and_lossy() {
        assert_eq!(quote(b"abc"), "abc");
        assert_eq!(quote(b"a\xffb"), "a\u{fffd}b");
        let long = "x".repeat(QUOTE_LIMIT + 5);
        assert_eq!(quote(long.as_bytes()).chars().count(), QUOTE_LIMIT + 1);
    }

    #[test]
    fn connect_errors_tell_not_running_from_other_failures() {
        let (config, socket) = (Path::new("/p/tend.toml"), Path::new("/run/t/ab.sock"));
        let missing = connect_failure(config, socket, &io::ErrorKind::NotFound.into());
        assert_eq!(
            missing,
            Failure::report(
                EXIT_NOT_RUNNING,
                "no tend is running for /p/tend.toml (no socket at /run/t/ab.sock); start one \
                 with: tend up -d -c /p/tend.toml"
            )
        );
        let stale = connect_failure(config, socket, &io::ErrorKind::ConnectionRefused.into());
        assert!(
            matches!(stale, Failure::Report { code: EXIT_NOT_RUNNING, ref message }
            if message.contains("left over from a tend that died"))
        );
        let denied = connect_failure(config, socket, &io::ErrorKind::PermissionDenied.into());
        assert!(
            matches!(denied, Failure::Report { code: EXIT_FAILED, ref message }
            if message.contains("/run/t/ab.sock"))
        );
    }
}
