//! The wire types of tend's control socket and their codec.
//!
//! This crate owns the language that `tend` (the client verbs) and the supervisor speak over
//! the control socket, and that the HTTP API will reuse: the handshake ([`handshake`]), the
//! requests ([`request`]), the answers ([`answer`]), the instance status that is also
//! `tend status --json`'s format ([`status`]), the structured events of the supervisor
//! ([`event`]), and the framing of messages into lines ([`codec`]). It holds no logic of the supervisor and depends on no other crate of tend.
//!
//! The protocol is newline-delimited JSON: one JSON object per line, UTF-8, ended by `\n`, so a
//! user can talk to a running tend with `socat - UNIX-CONNECT:path`. `docs/protocol.md` in the
//! repository describes it for users; the types here are its reference.
//!
//! Dependencies: `serde` derives the mapping between these types and their JSON shape, and
//! `serde_json` is the JSON codec of a newline-delimited JSON protocol.

#![forbid(unsafe_code)]

pub mod answer;
pub mod codec;
pub mod event;
pub mod handshake;
pub mod request;
pub mod status;

pub use answer::{
    Answer, AnswerLine, Attached, AttachedTo, Done, ErrorBody, ErrorCode, Instances, LogLine,
    OkBody, Reloaded, Scaled, ScaledProcess, Signalled, Stream, ATTACH_REPLAY,
};
pub use codec::{decode, encode, LineFramer, LineReader, ProtoError, Pushed};
pub use event::{Event, EventKind, NextStep};
pub use handshake::{ClientHello, ClientHelloLine, HandshakeReply, ServerHello};
pub use request::{
    decode_request, AttachArgs, BadRequestLine, LogsArgs, NoArgs, ReloadArgs, Request, RequestLine,
    ScaleArgs, SignalArgs, StatusArgs, TargetArgs, DEFAULT_LOG_LINES,
};
pub use status::{Health, InstanceStatus, LastExit, LogError, Percent, State, Usage, WaitingFor};

/// The version of the protocol this crate speaks. Client and server must agree on it exactly;
/// see the versioning rules in `docs/protocol.md`.
pub const PROTOCOL_VERSION: u32 = 2;

/// The longest line, in bytes without its `\n`, that the supervisor reads from a client. A
/// longer line is answered with [`ErrorCode::LineTooLong`] and the client is dropped.
pub const MAX_LINE: usize = 64 * 1024;

/// The longest answer line, in bytes without its `\n`, that a client should be prepared to
/// read. Answers are not bounded by [`MAX_LINE`]: the status of hundreds of instances, or one
/// long line a child printed, is larger. This bound only keeps a client's memory in check.
/// 256 MiB holds the status of about a million instances.
pub const MAX_ANSWER_LINE: usize = 256 * 1024 * 1024;
