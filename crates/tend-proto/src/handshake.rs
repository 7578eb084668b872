//! The handshake: the first exchange of every connection.
//!
//! The client sends a [`ClientHelloLine`] (`{"hello":{"protocol":2,"client":"tend 0.1.0"}}`);
//! the server answers with a [`HandshakeReply`]: its own hello, or, when the protocol versions
//! differ, a `protocol_mismatch` error, after which it closes the connection.
//!
//! Unlike requests, the hello messages tolerate fields they do not know, so that a server can
//! read the hello of a later client (and tell it that the versions differ), and the other way
//! round. Their place of `protocol` never changes.

use serde::{Deserialize, Serialize};

use crate::answer::{ErrorBody, ErrorCode};
use crate::PROTOCOL_VERSION;

/// What a client says about itself in the first line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientHello {
    /// The protocol version the client speaks ([`PROTOCOL_VERSION`]).
    pub protocol: u32,
    /// The client's name and version, such as `"tend 0.1.0"`.
    pub client: String,
}

impl ClientHello {
    /// A hello for this crate's [`PROTOCOL_VERSION`].
    pub fn new(client: impl Into<String>) -> Self {
        ClientHello {
            protocol: PROTOCOL_VERSION,
            client: client.into(),
        }
    }

    /// Checks the client's version against this crate's, as the server does: `Err` holds the
    /// `protocol_mismatch` error to send before closing. `server` names the server, such as
    /// `"tend 0.1.0"`.
    pub fn check(&self, server: &str) -> Result<(), ErrorBody> {
        if self.protocol == PROTOCOL_VERSION {
            Ok(())
        } else {
            Err(ErrorBody::protocol_mismatch(
                &self.client,
                self.protocol,
                server,
                PROTOCOL_VERSION,
            ))
        }
    }
}

/// The client's first line: `{"hello":{...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientHelloLine {
    /// The hello itself.
    pub hello: ClientHello,
}

impl From<ClientHello> for ClientHelloLine {
    fn from(hello: ClientHello) -> Self {
        ClientHelloLine { hello }
    }
}

/// What the server says about itself when the versions agree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerHello {
    /// The protocol version the server speaks ([`PROTOCOL_VERSION`]).
    pub protocol: u32,
    /// The server's name and version, such as `"tend 0.1.0"`.
    pub server: String,
    /// The supervisor's process id.
    pub pid: u32,
    /// The absolute path of the config the supervisor runs.
    pub config: String,
    /// When the supervisor started, in milliseconds since the Unix epoch (absent from older
    /// servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
}

impl ServerHello {
    /// A hello for this crate's [`PROTOCOL_VERSION`].
    pub fn new(server: impl Into<String>, pid: u32, config: impl Into<String>) -> Self {
        ServerHello {
            protocol: PROTOCOL_VERSION,
            server: server.into(),
            pid,
            config: config.into(),
            started_ms: None,
        }
    }
}

/// The server's answer to a hello: `{"hello":{...}}` or `{"error":{...}}` (an error line
/// without `id`). After an error the server closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandshakeReply {
    /// The versions agree; requests may follow.
    Hello(ServerHello),
    /// The handshake failed: `protocol_mismatch`, or `bad_request` / `line_too_long` for a
    /// first line that is not a hello.
    Error(ErrorBody),
}

impl ErrorBody {
    /// The `protocol_mismatch` error: names both sides and their versions, and what to do.
    pub fn protocol_mismatch(
        client: &str,
        client_protocol: u32,
        server: &str,
        server_protocol: u32,
    ) -> Self {
        ErrorBody::new(
            ErrorCode::ProtocolMismatch,
            format!(
                "protocol mismatch: the client ({client}) speaks protocol {client_protocol}, \
                 the running supervisor ({server}) speaks protocol {server_protocol}; \
                 use the tend binary of the same version as the supervisor, \
                 or stop the supervisor and start it with this one"
            ),
        )
    }
}
