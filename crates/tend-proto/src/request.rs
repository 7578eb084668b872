//! Requests: what a client asks of the supervisor after the handshake.
//!
//! Each request travels as a [`RequestLine`], `{"id":N,"request":{...}}`, where `N` is chosen
//! by the client and comes back on every line of the answer. The [`Request`] is externally
//! tagged: `{"status":{"names":["web"]}}`. Requests reject fields they do not know, so that a
//! typo is an error rather than a silently ignored option.

use serde::{de, Deserialize, Deserializer, Serialize};

use crate::answer::{AnswerLine, ErrorBody};
use crate::codec::{decode, ProtoError};

/// How many past lines `logs` shows per instance and stream when the request does not say.
pub const DEFAULT_LOG_LINES: u32 = 10;

/// One request and the id its answer lines will carry: `{"id":N,"request":{...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestLine {
    /// Chosen by the client; every answer line to this request carries it.
    pub id: u64,
    /// What is asked.
    #[serde(deserialize_with = "one_request")]
    pub request: Request,
}

/// Reads a [`Request`], first checking that it is an object with exactly one key: serde's own
/// message for a second key ("expected value") would not tell the user what is wrong.
fn one_request<'de, D: Deserializer<'de>>(d: D) -> Result<Request, D::Error> {
    let map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
    if map.len() != 1 {
        let keys: Vec<String> = map.keys().map(|k| format!("`{k}`")).collect();
        let found = if keys.is_empty() {
            "this one is empty".to_owned()
        } else {
            format!("this one has {}", keys.join(", "))
        };
        return Err(de::Error::custom(format_args!(
            "a request is an object with exactly one key, the request's name \
             (such as {{\"status\":{{}}}}); {found}"
        )));
    }
    Request::deserialize(serde_json::Value::Object(map)).map_err(de::Error::custom)
}

impl RequestLine {
    /// A request line.
    pub fn new(id: u64, request: Request) -> Self {
        RequestLine { id, request }
    }
}

/// What a client can ask. Names are processes (`web`), instances (`web.1`) or `all`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The status of the named instances, or of all when `names` is empty. Answered with
    /// [`Instances`](crate::Instances).
    Status(StatusArgs),
    /// Start the named instances. Answered with [`Instances`](crate::Instances).
    Start(TargetArgs),
    /// Stop the named instances. Answered with [`Instances`](crate::Instances).
    Stop(TargetArgs),
    /// Stop and start again the named instances. Answered with
    /// [`Instances`](crate::Instances).
    Restart(TargetArgs),
    /// Send a signal to the process group of each named instance. Answered with
    /// [`Signalled`](crate::Signalled).
    Signal(SignalArgs),
    /// Past log lines of the named instances (all when empty), then, with `follow`, new ones
    /// until the client closes the connection. Answered with [`LogLine`](crate::LogLine)s,
    /// then [`Done`](crate::Done) unless following.
    Logs(LogsArgs),
    /// Re-read the config and apply the difference (or, with `dry_run`, only say what would
    /// change). Answered with [`Reloaded`](crate::Reloaded).
    Reload(ReloadArgs),
    /// Stop everything in order and exit the supervisor. Answered with [`Done`](crate::Done)
    /// once every process has stopped.
    Down(NoArgs),
    /// The supervisor's events as they happen, about the named instances (and its own, such
    /// as a reload), until the client closes the connection. Answered with
    /// [`Event`](crate::Event) lines only.
    Events(StatusArgs),
    /// Connect to the terminal of a running interactive instance (`interactive = true`).
    /// Answered with [`Attached`](crate::Attached); after that line the connection carries
    /// raw bytes both ways: what the client sends is typed into the terminal, what it reads is
    /// the terminal's output (first the last [`ATTACH_REPLAY`](crate::ATTACH_REPLAY) bytes at
    /// most, from a line start, then live). The server closes it when the run ends; the client
    /// detaches by closing it.
    Attach(AttachArgs),
    /// Tell an interactive instance's terminal its new size (the attached terminal's), which
    /// sends the process `SIGWINCH`. Answered with [`Done`](crate::Done).
    Resize(AttachArgs),
    /// Set how many instances of each named process run, until the next reload. Answered
    /// with [`Scaled`](crate::Scaled).
    Scale(ScaleArgs),
}

/// The arguments of `reload`: `{}`, or `{"dry_run":true}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadArgs {
    /// Read the config and answer with what a reload would do, changing nothing. Defaults to
    /// `false` (and is left out of the JSON then, so that a server that does not know it
    /// still takes a plain reload).
    #[serde(default, skip_serializing_if = "is_false")]
    pub dry_run: bool,
}

/// The arguments of `scale`: `{"replicas":{"web":4,"worker":0}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleArgs {
    /// The count of instances for each process named (processes, not instances; 0 to 10000;
    /// 0 stops every instance and keeps the process). Must not be empty.
    pub replicas: std::collections::BTreeMap<String, u32>,
}

/// The arguments of `attach` and `resize`: `{"name":"web.0","rows":24,"cols":80}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachArgs {
    /// One instance (`web.0`), or a process with one instance (`web`).
    pub name: String,
    /// The terminal's lines; absent: leave the size as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u16>,
    /// The terminal's columns; absent: leave the size as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cols: Option<u16>,
}

/// The arguments of `status`: `{"names":[...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusArgs {
    /// Which instances; empty (the default) means all.
    #[serde(default)]
    pub names: Vec<String>,
}

/// The arguments of `start`, `stop` and `restart`: `{"names":[...],"wait":true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetArgs {
    /// Which instances. Must not be empty: `["all"]` names every process.
    #[serde(default)]
    pub names: Vec<String>,
    /// Answer only when every named instance has reached the wanted state (or failed);
    /// without it, answer at once. Defaults to `true`.
    #[serde(default = "yes")]
    pub wait: bool,
    /// For `start`: start only the named instances, not what they depend on (`depends_on`),
    /// which are otherwise started first. Defaults to `false`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_deps: bool,
    /// With `wait`: send the events of the named instances (each spawn, exit, restart…) as
    /// they happen, before the answer. Defaults to `false`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub progress: bool,
}

impl Default for TargetArgs {
    fn default() -> Self {
        TargetArgs {
            names: Vec::new(),
            wait: true,
            no_deps: false,
            progress: false,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The arguments of `signal`: `{"signal":"SIGUSR1","names":[...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalArgs {
    /// The signal's name, with or without `SIG`, such as `"SIGUSR1"` or `"HUP"`.
    pub signal: String,
    /// Which instances. Must not be empty: `["all"]` names every process.
    #[serde(default)]
    pub names: Vec<String>,
}

/// The arguments of `logs`: `{"names":[...],"lines":10,"follow":false,"since_ms":N}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsArgs {
    /// Which instances; empty (the default) means all.
    #[serde(default)]
    pub names: Vec<String>,
    /// How many past lines per instance and stream. When left out: [`DEFAULT_LOG_LINES`],
    /// or with `since_ms` as many as the server sends (see [`LogsArgs::past_lines`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<u32>,
    /// After the past lines, keep sending new ones until the client closes the connection;
    /// no terminal line is ever sent. Defaults to `false`.
    #[serde(default)]
    pub follow: bool,
    /// Only lines tend read at or after this time, in milliseconds since the Unix epoch (past
    /// and live ones; a line whose time is unknown is left out). Left out of the JSON when
    /// absent, so that a server that does not know it still takes the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
}

impl LogsArgs {
    /// How many past lines per instance and stream were asked for: `lines`, else
    /// [`DEFAULT_LOG_LINES`] without `since_ms` and no limit (`u32::MAX`) with it.
    pub fn past_lines(&self) -> u32 {
        self.lines.unwrap_or(if self.since_ms.is_some() {
            u32::MAX
        } else {
            DEFAULT_LOG_LINES
        })
    }
}

/// The arguments of a request that takes none: `{}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

fn yes() -> bool {
    true
}

/// A request line the server could not accept, with the id to answer it under, when the line
/// had one.
#[derive(Debug)]
pub struct BadRequestLine {
    /// The line's `id`, if it could be read: the error answer carries it.
    pub id: Option<u64>,
    /// Why the line was refused.
    pub error: ProtoError,
}

impl BadRequestLine {
    /// The error line to send back: `bad_request` (or `line_too_long`), with the id if known.
    pub fn answer(&self) -> AnswerLine {
        AnswerLine::error(self.id, ErrorBody::from(&self.error))
    }
}

/// Decodes a request line as the server does. When the line is not a valid request, the error
/// still carries the line's `id` if one could be read, so that a client learns which of its
/// requests was refused.
pub fn decode_request(line: &[u8]) -> Result<RequestLine, BadRequestLine> {
    decode::<RequestLine>(line).map_err(|error| {
        /// Only the id, ignoring everything else in the line.
        #[derive(Deserialize)]
        struct IdOnly {
            id: Option<u64>,
        }
        let id = decode::<IdOnly>(line).ok().and_then(|l| l.id);
        BadRequestLine { id, error }
    })
}
