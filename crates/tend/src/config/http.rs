//! `[http]`: where the HTTP API listens, and who may reach it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use super::error::ConfigError;
use super::read::Field;

type Result<T> = std::result::Result<T, ConfigError>;

const HTTP_KEYS: &[&str] = &["listen", "allow_remote", "token_file", "metrics_public"];

/// The HTTP API's settings (`[http]`, or `tend up --http ADDR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSpec {
    /// The address to listen on; port 0 takes a free one (`tend http-url` says which).
    pub listen: SocketAddr,
    /// Whether an address other than loopback was asked for on purpose.
    pub allow_remote: bool,
    /// A file holding the bearer token; `None`: tend makes one at each start.
    pub token_file: Option<PathBuf>,
    /// Whether `/metrics` is served without the token.
    pub metrics_public: bool,
}

impl HttpSpec {
    /// Settings for `listen`, the rest at their defaults.
    pub fn at(listen: SocketAddr) -> Self {
        HttpSpec {
            listen,
            allow_remote: false,
            token_file: None,
            metrics_public: false,
        }
    }
}

/// An address as `listen` takes it: `127.0.0.1:9100`, `[::1]:9100`, or `localhost:9100`.
pub fn parse_listen(text: &str) -> std::result::Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Some(port) = text.strip_prefix("localhost:") {
        if let Ok(port) = port.parse::<u16>() {
            return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
        }
    }
    Err(format!(
        "{text:?} is not an address to listen on; write an IP address and a port, such as \
         \"127.0.0.1:9100\" or \"[::1]:9100\""
    ))
}

/// Why a non-loopback address is refused without `allow_remote`; `None` when it is fine.
pub fn remote_refusal(listen: SocketAddr, allow_remote: bool) -> Option<String> {
    (!listen.ip().is_loopback() && !allow_remote).then(|| {
        format!(
            "{listen} is not a loopback address: anyone who can reach it could try to guess \
             the token; listen on 127.0.0.1 (or [::1]), or set allow_remote = true in [http] \
             if you mean it"
        )
    })
}

/// The `[http]` table.
pub(super) fn http(field: &Field<'_>, base: &Path) -> Result<HttpSpec> {
    let table = field.table()?;
    table.allow(HTTP_KEYS)?;
    let listen = table.get("listen").ok_or_else(|| {
        table
            .field()
            .key_error("missing key \"listen\"; add the address, e.g. listen = \"127.0.0.1:9100\"")
    })?;
    let mut spec = HttpSpec::at(parse_listen(listen.string()?).map_err(|e| listen.error(e))?);
    if let Some(f) = table.get("allow_remote") {
        spec.allow_remote = f.boolean()?;
    }
    if let Some(f) = table.get("token_file") {
        spec.token_file = Some(f.path(base)?);
    }
    if let Some(f) = table.get("metrics_public") {
        spec.metrics_public = f.boolean()?;
    }
    if let Some(why) = remote_refusal(spec.listen, spec.allow_remote) {
        return Err(listen.error(why));
    }
    Ok(spec)
}
