//! Who may ask what of the HTTP API: the checks every request passes before it reaches the
//! supervisor. Pure functions of the request's head, so each refusal is tested without a
//! server.
//!
//! In order: the `Host` header must name this server (a page on another site that renamed
//! itself to 127.0.0.1 by DNS rebinding still sends its own name); an `Origin`, when the
//! browser sends one, must be this server; the bearer token must be there, in the
//! `Authorization` header (or, for a read, in `?token=`: a browser's `EventSource` and address
//! bar cannot set headers); and a state change must be a POST carrying the token in the header,
//! so neither a link, a form, nor a cookie can make one (tend reads no cookie at all).

use std::net::SocketAddr;

use hyper::header::{AUTHORIZATION, HOST, ORIGIN};
use hyper::{Method, StatusCode};

/// What the checks need to know of the server.
#[derive(Debug, Clone)]
pub struct Guard {
    /// The address the server listens on (with its real port).
    pub listen: SocketAddr,
    /// Whether it listens beyond loopback (`allow_remote`): then any host name with the right
    /// port is accepted, since tend cannot know the names it is reached by.
    pub remote: bool,
    /// The bearer token.
    pub token: String,
    /// Whether `/metrics` needs no token.
    pub metrics_public: bool,
}

/// How a request is let in: which routes need what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads: GET, the token in the header or in `?token=`.
    Read,
    /// Prometheus's scrape: a read, without the token when `metrics_public`.
    Metrics,
    /// State changes: POST, the token in the header only.
    Change,
}

/// A refused request: the status and what to tell the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 401, 403 or 405.
    pub status: StatusCode,
    /// For people: what is wrong and what to do.
    pub message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Refusal {
            status,
            message: message.into(),
        }
    }
}

impl Guard {
    /// The names this server answers to in `Host`: its address, and `localhost` on loopback.
    pub fn hosts(&self) -> Vec<String> {
        let port = self.listen.port();
        let mut hosts = vec![self.listen.to_string()];
        if self.listen.ip().is_loopback() {
            hosts.push(format!("localhost:{port}"));
        }
        hosts
    }

    /// Checks a request for a route of `access`; `query` is its query string.
    pub fn check(
        &self,
        method: &Method,
        headers: &hyper::HeaderMap,
        query: Option<&str>,
        access: Access,
    ) -> Result<(), Refusal> {
        let host = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !self.host_ok(host) {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                format!(
                    "the Host header {host:?} does not name this server ({}); tend answers only \
                     requests addressed to it, so that no web page can reach it by renaming \
                     itself (DNS rebinding)",
                    self.hosts().join(" or ")
                ),
            ));
        }
        if let Some(origin) = headers.get(ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            let ours = origin
                .strip_prefix("http://")
                .is_some_and(|o| self.host_ok(o));
            if !ours {
                return Err(Refusal::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "requests from the page of {origin:?} are refused: only tend's own \
                         dashboard (http://{}) may use the API from a browser",
                        self.listen
                    ),
                ));
            }
        }
        let header_token = headers
            .get(AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim);
        let query_token = query.and_then(|q| query_value(q, "token"));
        if access == Access::Change {
            if *method != Method::POST {
                return Err(Refusal::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "this changes state: send it as POST, with the token in an \
                     `Authorization: Bearer` header",
                ));
            }
            return match header_token {
                Some(token) if same(token, &self.token) => Ok(()),
                Some(_) => Err(wrong_token()),
                None if query_token.is_some() => Err(Refusal::new(
                    StatusCode::UNAUTHORIZED,
                    "a state change needs the token in an `Authorization: Bearer` header; one \
                     in the address is not enough (a link could carry it)",
                )),
                None => Err(no_token()),
            };
        }
        if *method != Method::GET && *method != Method::HEAD {
            return Err(Refusal::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "this is read with GET",
            ));
        }
        if access == Access::Metrics && self.metrics_public {
            return Ok(());
        }
        match header_token.or(query_token.as_deref()) {
            Some(token) if same(token, &self.token) => Ok(()),
            Some(_) => Err(wrong_token()),
            None => Err(no_token()),
        }
    }

    fn host_ok(&self, host: &str) -> bool {
        if self.remote {
            return host
                .rsplit_once(':')
                .is_some_and(|(_, port)| port == self.listen.port().to_string());
        }
        self.hosts().iter().any(|h| h.eq_ignore_ascii_case(host))
    }
}

fn no_token() -> Refusal {
    Refusal::new(
        StatusCode::UNAUTHORIZED,
        "no token: send `Authorization: Bearer TOKEN`; `tend http-url` prints the dashboard's \
         address with it, and the token is in the runtime directory",
    )
}

fn wrong_token() -> Refusal {
    Refusal::new(
        StatusCode::UNAUTHORIZED,
        "wrong token; `tend http-url` prints the address with the right one (a new one is made \
         at each start of tend)",
    )
}

/// Compares two tokens in time that does not depend on where they differ.
fn same(given: &str, token: &str) -> bool {
    let (a, b) = (given.as_bytes(), token.as_bytes());
    let mut diff = u8::from(a.len() != b.len());
    for (i, &byte) in b.iter().enumerate() {
        diff |= byte ^ a.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// The value of `key` in a query string (`a=1&token=x`), percent-decoded.
pub fn query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| percent_decode(v))
    })
}

/// `%XX` escapes and `+` as a space, as forms and `URLSearchParams` write them; a bad escape
/// stays as it is.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(|&b| hex(b)),
                bytes.get(i + 2).and_then(|&b| hex(b)),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn guard() -> Guard {
        Guard {
            listen: "127.0.0.1:9100".parse().unwrap(),
            remote: false,
            token: "s3cret".into(),
            metrics_public: false,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> hyper::HeaderMap {
        let mut map = hyper::HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    const HOST_OK: (&str, &str) = ("host", "127.0.0.1:9100");
    const AUTH_OK: (&str, &str) = ("authorization", "Bearer s3cret");

    fn status(result: Result<(), Refusal>) -> u16 {
        result.map_or_else(|r| r.status.as_u16(), |()| 200)
    }

    #[test]
    fn a_read_needs_our_host_and_the_token_in_the_header_or_the_query() {
        let g = guard();
        let get =
            |h: &[(&str, &str)], q| status(g.check(&Method::GET, &headers(h), q, Access::Read));
        assert_eq!(get(&[HOST_OK, AUTH_OK], None), 200);
        assert_eq!(get(&[("host", "localhost:9100"), AUTH_OK], None), 200);
        assert_eq!(get(&[HOST_OK], Some("a=1&token=s3cret")), 200);
        assert_eq!(
            get(&[HOST_OK], Some("token=s3cre%74")),
            200,
            "percent-decoded"
        );
        assert_eq!(get(&[HOST_OK], None), 401);
        assert_eq!(get(&[HOST_OK, ("authorization", "Bearer nope")], None), 401);
        assert_eq!(get(&[HOST_OK], Some("token=s3cret2")), 401);
        assert_eq!(
            get(&[HOST_OK, ("authorization", "Basic s3cret")], None),
            401
        );
        // DNS rebinding: the browser sends the attacker's name, or a name with another port.
        assert_eq!(get(&[("host", "evil.example:9100"), AUTH_OK], None), 403);
        assert_eq!(get(&[("host", "127.0.0.1:9101"), AUTH_OK], None), 403);
        assert_eq!(get(&[AUTH_OK], None), 403, "no Host at all");
        // A page of another site, even with the token.
        assert_eq!(
            get(&[HOST_OK, AUTH_OK, ("origin", "http://evil.example")], None),
            403
        );
        assert_eq!(get(&[HOST_OK, AUTH_OK, ("origin", "null")], None), 403);
        assert_eq!(
            get(
                &[HOST_OK, AUTH_OK, ("origin", "http://127.0.0.1:9100")],
                None
            ),
            200
        );
    }

    #[test]
    fn a_change_needs_post_and_the_token_in_the_header_only() {
        let g = guard();
        let check =
            |m: Method, h: &[(&str, &str)], q| status(g.check(&m, &headers(h), q, Access::Change));
        assert_eq!(check(Method::POST, &[HOST_OK, AUTH_OK], None), 200);
        assert_eq!(check(Method::GET, &[HOST_OK, AUTH_OK], None), 405);
        assert_eq!(check(Method::POST, &[HOST_OK], Some("token=s3cret")), 401);
        assert_eq!(
            check(Method::POST, &[HOST_OK, ("cookie", "token=s3cret")], None),
            401
        );
        assert_eq!(
            check(
                Method::POST,
                &[HOST_OK, ("authorization", "Bearer s3cre")],
                None
            ),
            401
        );
        assert_eq!(
            check(
                Method::POST,
                &[HOST_OK, AUTH_OK, ("origin", "http://evil.example")],
                None
            ),
            403
        );
    }

    #[test]
    fn metrics_may_be_public_and_remote_servers_take_any_name_with_their_port() {
        let mut g = guard();
        let scrape =
            |g: &Guard| status(g.check(&Method::GET, &headers(&[HOST_OK]), None, Access::Metrics));
        assert_eq!(scrape(&g), 401);
        g.metrics_public = true;
        assert_eq!(scrape(&g), 200);
        assert_eq!(
            status(g.check(&Method::GET, &headers(&[HOST_OK]), None, Access::Read)),
            401,
            "only /metrics is public"
        );
        let g = Guard {
            listen: "0.0.0.0:9100".parse().unwrap(),
            remote: true,
            ..guard()
        };
        let get = |host| {
            status(g.check(
                &Method::GET,
                &headers(&[("host", host), AUTH_OK]),
                None,
                Access::Read,
            ))
        };
        assert_eq!(get("box.lan:9100"), 200);
        assert_eq!(get("box.lan:80"), 403);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abd", "abc"));
        assert!(!same("ab", "abc"));
        assert!(!same("abcd", "abc"));
        assert!(!same("", "abc"));
    }
}
