//! Answers: what the supervisor sends back for a request.
//!
//! Every request gets exactly one terminal line, `{"id":N,"ok":{...}}` or
//! `{"id":N,"error":{...}}`, possibly preceded by streaming lines `{"id":N,"log":{...}}`
//! (`logs` with `follow` streams until the client closes, and never ends). An [`AnswerLine`]
//! is one such line; its `id` is absent only when the server answers a line whose id it could
//! not read (garbage, an over-long line) or the handshake.
//!
//! The `ok` payload's shape depends on the request ([`OkBody`]). Answers tolerate fields they
//! do not know, so that fields can be added without a new protocol version.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::status::InstanceStatus;

/// One line of an answer: the request's id and what it says.
///
/// Serialized flat: `{"id":7,"ok":{...}}`, `{"id":7,"error":{...}}`, `{"id":7,"log":{...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerLine {
    /// The id of the request this line answers; absent when it answers a line whose id could
    /// not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// What the line says.
    #[serde(flatten)]
    pub answer: Answer,
}

impl AnswerLine {
    /// A terminal `ok` line.
    pub fn ok(id: u64, body: impl Into<OkBody>) -> Self {
        AnswerLine {
            id: Some(id),
            answer: Answer::Ok(body.into()),
        }
    }

    /// A terminal `error` line; `id` is `None` only when the request's id is unknown.
    pub fn error(id: Option<u64>, error: ErrorBody) -> Self {
        AnswerLine {
            id,
            answer: Answer::Error(error),
        }
    }

    /// A streaming `log` line.
    pub fn log(id: u64, line: LogLine) -> Self {
        AnswerLine {
            id: Some(id),
            answer: Answer::Log(line),
        }
    }

    /// A streaming `event` line.
    pub fn event(id: u64, event: crate::Event) -> Self {
        AnswerLine {
            id: Some(id),
            answer: Answer::Event(event),
        }
    }
}

/// What an answer line says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// The request succeeded (terminal).
    Ok(OkBody),
    /// The request failed (terminal).
    Error(ErrorBody),
    /// One log line of a `logs` request (streaming; more lines follow).
    Log(LogLine),
    /// One event of an `events` request, or of a `start` or `restart` that asked for its
    /// `progress` (streaming; more lines follow).
    Event(crate::Event),
}

impl Answer {
    /// Whether this is the last line of its request's answer (`ok` or `error`).
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Answer::Log(_) | Answer::Event(_))
    }
}

/// The payload of an `ok` line. Which one comes is decided by the request; on the wire the
/// payload carries no tag of its own, and a reader tells them apart by their fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OkBody {
    /// For `reload`.
    Reloaded(Reloaded),
    /// For `status`, `start`, `stop` and `restart`.
    Instances(Instances),
    /// For `signal`.
    Signalled(Signalled),
    /// For `attach`.
    Attached(Attached),
    /// For `scale`.
    Scaled(Scaled),
    /// For `down` and for `logs` without `follow`: `{}`.
    Done(Done),
}

/// The answer to `status`, `start`, `stop` and `restart`: `{"instances":[...]}`, the state of
/// each named instance (every instance for `status` without names) at reply time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instances {
    /// One entry per instance, in config order.
    pub instances: Vec<InstanceStatus>,
    /// For `status`: the processes asked about (every process, without names) that have no
    /// instance, scaled to 0 by `tend scale NAME=0`, in config order. Absent when none (and
    /// in the answers of `start`, `stop` and `restart`); added without a new protocol
    /// version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub no_instances: Vec<String>,
}

/// The answer to `signal`: `{"signalled":["web.0",...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signalled {
    /// The instances whose process group was sent the signal (those with a live run).
    pub signalled: Vec<String>,
}

/// The answer to `attach`: `{"attached":{"instance":"web.0","pid":4242}}`. The bytes of the
/// terminal follow this line on the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attached {
    /// The terminal attached to.
    pub attached: AttachedTo,
}

/// The run whose terminal a client is attached to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedTo {
    /// The instance, such as `web.0`.
    pub instance: String,
    /// The pid of its run.
    pub pid: u32,
}

/// The most bytes of a terminal's past output an `attach` sends before the live output, so
/// that the prompt a process printed before anyone attached is seen.
pub const ATTACH_REPLAY: usize = 16 * 1024;

/// The answer to `reload`, by process name:
/// `{"added":[...],"removed":[...],"changed":[...],"unchanged":[...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reloaded {
    /// Processes new in the config (started if autostart).
    pub added: Vec<String>,
    /// Processes gone from the config (stopped).
    pub removed: Vec<String>,
    /// Processes whose settings changed (restarted, or scaled when only `replicas` changed).
    pub changed: Vec<String>,
    /// Processes left alone, with the same PIDs.
    pub unchanged: Vec<String>,
    /// What changed in each process of `changed`, by config key, in the config reference's
    /// order: `command`, `env (PORT, TOKEN)` (the names of the variables set, changed or
    /// unset, never their values), `replicas 2 → 4`, … Absent when nothing changed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub keys: BTreeMap<String, Vec<String>>,
    /// `true` when this is the plan of `reload` with `dry_run`: nothing was changed. Absent
    /// for a reload that was applied.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// The processes of `changed` that are not restarted, since none of their instances is
    /// wanted up or failed (stopped, or one-shots that exited): the new settings take effect
    /// at their next start. Absent when none; added without a new protocol version (an older
    /// server never sends it, and its answers mean every changed process restarted or scaled).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_running: Vec<String>,
}

/// The answer to `scale`: `{"scaled":[{"process":"web","from":2,"to":4}]}`. The counts last
/// until the next reload, which applies the config's `replicas` again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scaled {
    /// Each process named, in the order named.
    pub scaled: Vec<ScaledProcess>,
}

/// One process of a `scale` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaledProcess {
    /// The process.
    pub process: String,
    /// How many instances it had.
    pub from: u32,
    /// How many it has now (those above are stopping, then forgotten).
    pub to: u32,
}

/// An empty `ok` payload, `{}`: for `down` (sent when everything has stopped, just before the
/// supervisor exits) and for `logs` without `follow` (after the log lines).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {}

macro_rules! ok_body_from {
    ($($ty:ident),*) => {$(
        impl From<$ty> for OkBody {
            fn from(body: $ty) -> Self {
                OkBody::$ty(body)
            }
        }
    )*};
}
ok_body_from!(Reloaded, Instances, Signalled, Attached, Scaled, Done);

/// Why a request failed: `{"code":"unknown_name","message":"...","known":["web"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The kind of failure, for programs.
    pub code: ErrorCode,
    /// For people: what went wrong, where, and what to do next.
    pub message: String,
    /// For `unknown_name` only: the names that exist. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known: Option<Vec<String>>,
}

impl ErrorBody {
    /// An error without `known`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
            known: None,
        }
    }

    /// An `unknown_name` error listing the names that exist.
    pub fn unknown_name(message: impl Into<String>, known: Vec<String>) -> Self {
        ErrorBody {
            code: ErrorCode::UnknownName,
            message: message.into(),
            known: Some(known),
        }
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ErrorBody {}

/// The kind of an error, on the wire in snake_case (`"unknown_name"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The client's protocol version is not the server's (handshake only; the server closes).
    ProtocolMismatch,
    /// The line is not JSON, not a known request, or misses or misspells a field.
    BadRequest,
    /// The line is longer than [`MAX_LINE`](crate::MAX_LINE); the server closes.
    LineTooLong,
    /// A name is neither a process, an instance nor `all`; `known` lists the names.
    UnknownName,
    /// A reload found a bad config and changed nothing; the message is the full config error.
    Config,
    /// An operation failed, such as an instance that went to `failed` while waited for.
    Failed,
    /// The supervisor is shutting down and takes no more requests of this kind.
    ShuttingDown,
    /// The peer's uid is neither the supervisor's own nor root (handshake only; the server
    /// closes).
    PermissionDenied,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::ProtocolMismatch,
        ErrorCode::BadRequest,
        ErrorCode::LineTooLong,
        ErrorCode::UnknownName,
        ErrorCode::Config,
        ErrorCode::Failed,
        ErrorCode::ShuttingDown,
        ErrorCode::PermissionDenied,
    ];

    /// The name on the wire, such as `"unknown_name"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ProtocolMismatch => "protocol_mismatch",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::LineTooLong => "line_too_long",
            ErrorCode::UnknownName => "unknown_name",
            ErrorCode::Config => "config",
            ErrorCode::Failed => "failed",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::PermissionDenied => "permission_denied",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which output of a child a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// The name on the wire, `"stdout"` or `"stderr"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line a child printed:
/// `{"time":"2026-11-29T21:44:09.512Z","instance":"web.0","stream":"stdout","line":"text"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// When tend read it from the child (for a line that came in several reads, the read that
    /// completed it), in RFC 3339 UTC with milliseconds, as events have it. Absent when tend
    /// does not know (a line logged before tend kept an index, or whose index is gone); read
    /// as `None` when missing, so lines of an older tend still parse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// The instance that printed it, such as `"web.0"`.
    pub instance: String,
    /// The stream it came from.
    pub stream: Stream,
    /// The text, without its newline; bytes that were not UTF-8 are replaced by U+FFFD.
    pub line: String,
    /// The text is a piece of a longer line, not a whole one: a line over 16 KiB is sent in
    /// pieces of at most 16 KiB, each marked so. Left out of the JSON when `false` (and read as
    /// `false` when missing), so readers that do not know it still parse every line.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cut: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl LogLine {
    /// A log line from the bytes a child printed: one trailing `\n`, if any, is dropped, and
    /// bytes that are not UTF-8 are replaced (lossy).
    pub fn from_bytes(instance: impl Into<String>, stream: Stream, bytes: &[u8]) -> Self {
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        LogLine {
            time: None,
            instance: instance.into(),
            stream,
            line: String::from_utf8_lossy(bytes).into_owned(),
            cut: false,
        }
    }

    /// Gives the line its time ([`LogLine::time`]), if known.
    pub fn at(mut self, time: Option<String>) -> Self {
        self.time = time;
        self
    }

    /// Marks the line as a piece of a longer line ([`LogLine::cut`]) when `cut`.
    pub fn cut(mut self, cut: bool) -> Self {
        self.cut = cut;
        self
    }
}
