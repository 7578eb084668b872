//! The framing and encoding of messages: one JSON object per line, `\n`-terminated.
//!
//! [`encode`] and [`decode`] turn one message into one line and back; they do no I/O, so
//! async code uses them as they are. [`LineFramer`] cuts a byte stream into lines with a bound
//! on the line length, also without I/O: [`LineReader`] drives it over a blocking
//! [`BufRead`], and async code drives it the same way over its own buffered reader
//! (`fill_buf`, `push`, `consume`). Neither ever buffers more than its limit, whatever a peer
//! sends.

use std::fmt;
use std::io::{self, BufRead};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::answer::{ErrorBody, ErrorCode};
use crate::MAX_LINE;

/// Encodes one message as one line: compact JSON followed by `\n`. The JSON never contains a
/// raw newline (serde_json escapes them inside strings).
///
/// # Panics
///
/// If `msg`'s `Serialize` implementation fails, which none of this crate's types does.
pub fn encode<T: Serialize + ?Sized>(msg: &T) -> Vec<u8> {
    let mut line = serde_json::to_vec(msg).expect("tend-proto messages always serialize");
    line.push(b'\n');
    line
}

/// Decodes one line, with or without its `\n`, into a message.
pub fn decode<T: DeserializeOwned>(line: &[u8]) -> Result<T, ProtoError> {
    serde_json::from_slice(line).map_err(ProtoError::Decode)
}

/// What can go wrong reading or decoding a line.
#[derive(Debug)]
pub enum ProtoError {
    /// Reading from the connection failed.
    Io(io::Error),
    /// A line was longer than the reader's limit ([`MAX_LINE`] unless chosen otherwise).
    LineTooLong,
    /// A line is not the JSON of the expected message: not JSON at all, not valid UTF-8, an
    /// unknown request, a missing or unknown field, a value of the wrong type.
    Decode(serde_json::Error),
}

impl ProtoError {
    /// The error code to answer with, or `None` for an I/O error (nobody is left to tell).
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ProtoError::Io(_) => None,
            ProtoError::LineTooLong => Some(ErrorCode::LineTooLong),
            ProtoError::Decode(_) => Some(ErrorCode::BadRequest),
        }
    }
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::Io(e) => write!(f, "cannot read from the connection: {e}"),
            ProtoError::LineTooLong => f.write_str("line longer than the limit"),
            ProtoError::Decode(e) => write!(f, "cannot decode the line: {e}"),
        }
    }
}

/// No `source()`: the message includes the cause already, and an error reporter that prints
/// the chain (anyhow's `{:#}`) would show it twice.
impl std::error::Error for ProtoError {}

impl From<io::Error> for ProtoError {
    fn from(e: io::Error) -> Self {
        ProtoError::Io(e)
    }
}

impl From<&ProtoError> for ErrorBody {
    /// The error a server sends for a line it could not accept: `bad_request` for a line that
    /// does not decode, `line_too_long` for one over [`MAX_LINE`]. (An I/O error becomes
    /// `bad_request` too, though usually nobody is left to read it.)
    fn from(e: &ProtoError) -> Self {
        match e {
            ProtoError::LineTooLong => ErrorBody::new(
                ErrorCode::LineTooLong,
                format!(
                    "line longer than {MAX_LINE} bytes; the connection is closed \
                     (one request per line, see docs/protocol.md)"
                ),
            ),
            ProtoError::Decode(e) => ErrorBody::new(
                ErrorCode::BadRequest,
                format!(
                    "bad request: {e}; a request line looks like \
                     {{\"id\":1,\"request\":{{\"status\":{{\"names\":[]}}}}}} \
                     (see docs/protocol.md)"
                ),
            ),
            ProtoError::Io(e) => ErrorBody::new(ErrorCode::BadRequest, e.to_string()),
        }
    }
}

/// What [`LineFramer::push`] found in the bytes it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// No complete line yet: push more bytes (or call [`LineFramer::finish`] at EOF).
    NeedMore,
    /// A line is complete: read it with [`LineFramer::line`] before the next push.
    Line,
    /// The current line is longer than the limit. Its bytes are dropped: the next line
    /// returned is the one after it.
    TooLong,
}

/// Cuts a byte stream into lines of at most `limit` bytes (without the `\n`), without I/O.
///
/// It holds at most `limit` bytes, whatever it is fed: an over-long line is reported as soon
/// as it passes the limit, and the rest of it is skipped as it arrives.
///
/// Reading one line, here from a blocking [`BufRead`]; with a tokio `AsyncBufRead` the same
/// code reads `reader.fill_buf().await?`:
///
/// ```
/// use std::io::BufRead;
/// use tend_proto::{LineFramer, ProtoError, Pushed};
///
/// fn read_line<'a>(
///     reader: &mut impl BufRead,
///     framer: &'a mut LineFramer,
/// ) -> Result<Option<&'a [u8]>, ProtoError> {
///     loop {
///         let input = reader.fill_buf()?;
///         if input.is_empty() {
///             return Ok(framer.finish()); // EOF
///         }
///         let (used, pushed) = framer.push(input);
///         reader.consume(used);
///         match pushed {
///             Pushed::NeedMore => {}
///             Pushed::Line => return Ok(Some(framer.line())),
///             Pushed::TooLong => return Err(ProtoError::LineTooLong),
///         }
///     }
/// }
///
/// let mut input = &b"{\"id\":1}\nlast"[..];
/// let mut framer = LineFramer::new();
/// assert_eq!(read_line(&mut input, &mut framer)?, Some(&b"{\"id\":1}"[..]));
/// assert_eq!(read_line(&mut input, &mut framer)?, Some(&b"last"[..]));
/// assert_eq!(read_line(&mut input, &mut framer)?, None);
/// # Ok::<(), ProtoError>(())
/// ```
#[derive(Debug, Clone)]
pub struct LineFramer {
    buf: Vec<u8>,
    limit: usize,
    /// Inside an over-long line that was already reported: drop bytes up to its `\n`.
    skipping: bool,
    /// `buf` holds a complete line handed out; clear it before taking more bytes.
    complete: bool,
}

impl Default for LineFramer {
    fn default() -> Self {
        LineFramer::new()
    }
}

impl LineFramer {
    /// A framer with the server's limit, [`MAX_LINE`].
    pub fn new() -> Self {
        LineFramer::with_limit(MAX_LINE)
    }

    /// A framer for lines of at most `limit` bytes (such as
    /// [`MAX_ANSWER_LINE`](crate::MAX_ANSWER_LINE) for a client reading answers).
    pub fn with_limit(limit: usize) -> Self {
        LineFramer {
            buf: Vec::new(),
            limit,
            skipping: false,
            complete: false,
        }
    }

    /// The longest line accepted, in bytes without the `\n`.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Takes bytes from the front of `input`, up to and including the first `\n` that ends a
    /// line. Returns how many bytes it took (the caller drops them from its buffer) and what
    /// it found.
    pub fn push(&mut self, input: &[u8]) -> (usize, Pushed) {
        if self.complete {
            self.buf.clear();
            self.complete = false;
        }
        let mut start = 0;
        if self.skipping {
            match find_newline(input) {
                Some(i) => {
                    self.skipping = false;
                    start = i + 1;
                }
                None => return (input.len(), Pushed::NeedMore),
            }
        }
        let rest = &input[start..];
        match find_newline(rest) {
            Some(i) if self.buf.len() + i > self.limit => {
                self.buf.clear();
                (start + i + 1, Pushed::TooLong)
            }
            Some(i) => {
                self.append(&rest[..i]);
                self.complete = true;
                (start + i + 1, Pushed::Line)
            }
            None if self.buf.len() + rest.len() > self.limit => {
                self.buf.clear();
                self.skipping = true;
                (input.len(), Pushed::TooLong)
            }
            None => {
                self.append(rest);
                (input.len(), Pushed::NeedMore)
            }
        }
    }

    /// Whether bytes of a line not yet ended by its `\n` have been taken (a line handed out
    /// whole does not count).
    pub fn has_partial(&self) -> bool {
        !self.complete && (self.skipping || !self.buf.is_empty())
    }

    /// The line completed by the last [`push`](Self::push) that returned [`Pushed::Line`],
    /// without its `\n` (empty otherwise).
    pub fn line(&self) -> &[u8] {
        if self.complete {
            &self.buf
        } else {
            &[]
        }
    }

    /// At the end of the stream: the last line if it had no `\n`, else `None`. The rest of an
    /// over-long line, already reported, is not returned.
    pub fn finish(&mut self) -> Option<&[u8]> {
        if self.complete {
            self.buf.clear();
            self.complete = false;
        }
        if self.skipping {
            self.skipping = false;
            return None;
        }
        if self.buf.is_empty() {
            return None;
        }
        self.complete = true;
        Some(&self.buf)
    }

    /// The capacity of the line buffer: never more than the limit.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Appends bytes known to fit within the limit, growing the buffer no further than it.
    fn append(&mut self, bytes: &[u8]) {
        let needed = self.buf.len() + bytes.len();
        if needed > self.buf.capacity() {
            let target = (self.buf.capacity() * 2)
                .max(256)
                .min(self.limit)
                .max(needed);
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(bytes);
    }
}

fn find_newline(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', bytes)
}

/// Reads lines from a blocking [`BufRead`] (such as a `BufReader<UnixStream>`), each at most
/// a limit long, buffering no more than that limit besides the reader's own buffer.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    framer: LineFramer,
}

impl<R: BufRead> LineReader<R> {
    /// A reader with the server's limit, [`MAX_LINE`].
    pub fn new(inner: R) -> Self {
        LineReader::with_limit(inner, MAX_LINE)
    }

    /// A reader for lines of at most `limit` bytes, such as
    /// [`MAX_ANSWER_LINE`](crate::MAX_ANSWER_LINE) for a client reading answers.
    pub fn with_limit(inner: R, limit: usize) -> Self {
        LineReader {
            inner,
            framer: LineFramer::with_limit(limit),
        }
    }

    /// The next line without its `\n`; `Ok(None)` at EOF. A last line without `\n` is
    /// returned too. A line over the limit gives [`ProtoError::LineTooLong`] as soon as it
    /// passes the limit; a further call skips the rest of it and reads the line after it.
    pub fn read_line(&mut self) -> Result<Option<&[u8]>, ProtoError> {
        loop {
            let input = match self.inner.fill_buf() {
                Ok(input) => input,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ProtoError::Io(e)),
            };
            if input.is_empty() {
                return Ok(self.framer.finish());
            }
            let (used, pushed) = self.framer.push(input);
            self.inner.consume(used);
            match pushed {
                Pushed::NeedMore => {}
                Pushed::Line => return Ok(Some(self.framer.line())),
                Pushed::TooLong => return Err(ProtoError::LineTooLong),
            }
        }
    }

    /// The next line decoded as a `T`; `Ok(None)` at EOF.
    pub fn read_message<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ProtoError> {
        match self.read_line()? {
            Some(line) => decode(line).map(Some),
            None => Ok(None),
        }
    }

    /// The capacity of the line buffer: never more than the limit.
    pub fn capacity(&self) -> usize {
        self.framer.capacity()
    }

    /// The underlying reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The underlying reader, mutably (to write to the same stream, for instance).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The underlying reader. Bytes still in its buffer stay there; a partial line already
    /// taken into the line buffer is lost.
    pub fn into_inner(self) -> R {
        self.inner
    }
}
