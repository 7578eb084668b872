//! The HTTP API (`[http] listen`, or `tend up --http ADDR`): the control socket's requests as
//! JSON over HTTP, and the event stream and log follow as Server-Sent Events.
//!
//! # Design
//!
//! - **One request layer.** A handler turns the HTTP request into the same
//!   [`tend_proto::Request`] a socket client sends, hands it to the driver on the same channel
//!   ([`ControlRequest`]), and turns the [`Reply`] into a response. Logs go through the same
//!   [`send_logs`] as the socket's, with another encoding. No logic lives here that the socket
//!   lacks, except the HTTP-only checks ([`guard`]).
//! - **Our own accept loop on hyper's HTTP/1 connections.** At most [`MAX_CONNECTIONS`] at once
//!   (the next waits in the listen queue), [`HEADER_TIMEOUT`] to send a request's head, bodies
//!   of at most [`MAX_BODY`], keep-alive. The server shares the driver's thread: a request
//!   costs a task, an idle server costs nothing (no timer runs without a request).
//! - **Draining.** When tend begins to stop (SIGTERM, SIGINT, `tend down`, an essential process
//!   ending), the listener closes (new connections are refused), each connection finishes the
//!   request it is serving and then closes, and event and log streams end cleanly (their last
//!   chunk sent). tend stops its processes meanwhile, and before it exits waits up to
//!   [`DRAIN`] for the connections to finish.

pub mod guard;
pub mod metrics;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::de::DeserializeOwned;
use tend_proto::{
    Answer, ErrorBody, ErrorCode, LogLine, LogsArgs, NoArgs, Request, SignalArgs, StatusArgs,
    TargetArgs,
};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinSet;

use super::control::{send_logs, ControlRequest, EventStream, LogSink, Reply};
use super::world::Event;
use guard::{query_value, Access, Guard, Refusal};

/// The most connections served at once.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a client may take to send a request's head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request body (a request's arguments are a few names).
pub const MAX_BODY: usize = 64 * 1024;
/// How long tend waits, as it exits, for connections to finish what they serve.
pub const DRAIN: Duration = Duration::from_secs(10);
/// Chunks a stream's task may get ahead of a slow client before it waits.
const STREAM_BUFFER: usize = 64;

/// What every connection's requests need.
pub struct Server {
    /// Who may ask what.
    pub guard: Guard,
    /// Where requests go: the driver.
    pub driver: mpsc::UnboundedSender<Event>,
    /// Becomes `true` when tend begins to stop.
    pub stopping: watch::Receiver<bool>,
    /// When tend started, for its metrics.
    pub started: Option<std::time::SystemTime>,
}

/// Accepts connections until tend begins to stop, then lets them finish (each within
/// [`DRAIN`]) and returns.
pub async fn serve(listener: TcpListener, server: Arc<Server>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut stopping = server.stopping.clone();
    let mut connections = JoinSet::new();
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
            () = stopped(&mut stopping) => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // EMFILE and friends: the connection stays queued; try again shortly rather
                // than spinning on the same error.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stopped(&mut stopping) => break,
        };
        let _ = stream.set_nodelay(true);
        let server = Arc::clone(&server);
        connections.spawn(async move {
            let _slot = slot;
            let mut stopping = server.stopping.clone();
            let service = {
                let server = Arc::clone(&server);
                service_fn(move |request| handle(Arc::clone(&server), request))
            };
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                () = stopped(&mut stopping) => connection.as_mut().graceful_shutdown(),
            }
            let _ = tokio::time::timeout(DRAIN, connection).await;
        });
        while connections.try_join_next().is_some() {}
    }
    // New connections are refused from here on.
    drop(listener);
    while connections.join_next().await.is_some() {}
    let _ = server.driver.send(Event::HttpDrained);
}

/// A response body: all at once, or chunks as a stream's task makes them.
pub enum Body {
    /// The whole body (taken when sent).
    Full(Option<Bytes>),
    /// Chunks until the task drops its sender.
    Stream(mpsc::Receiver<Bytes>),
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(chunks) => chunks.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }
}

/// The routes, and how each is let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Status,
    Start,
    Stop,
    Restart,
    Signal,
    Reload,
    Scale,
    Down,
    Logs,
    Events,
    Metrics,
    Dashboard,
    OpenApi,
}

impl Route {
    fn of(path: &str) -> Option<Route> {
        Some(match path {
            "/api/status" => Route::Status,
            "/api/start" => Route::Start,
            "/api/stop" => Route::Stop,
            "/api/restart" => Route::Restart,
            "/api/signal" => Route::Signal,
            "/api/reload" => Route::Reload,
            "/api/scale" => Route::Scale,
            "/api/down" => Route::Down,
            "/api/logs" => Route::Logs,
            "/api/events" => Route::Events,
            "/metrics" => Route::Metrics,
            "/" => Route::Dashboard,
            "/openapi.json" => Route::OpenApi,
            _ => return None,
        })
    }

    fn access(self) -> Access {
        match self {
            Route::Status | Route::Logs | Route::Events | Route::Dashboard | Route::OpenApi => {
                Access::Read
            }
            Route::Metrics => Access::Metrics,
            _ => Access::Change,
        }
    }
}

/// One request: checked, carried out, answered.
async fn handle(
    server: Arc<Server>,
    request: hyper::Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let Some(route) = Route::of(&path) else {
        return Ok(error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no endpoint {path}; see /openapi.json in docs/ for the API"),
        ));
    };
    if let Err(refusal) = server.guard.check(
        request.method(),
        request.headers(),
        Some(&query),
        route.access(),
    ) {
        return Ok(refused(refusal));
    }
    match route {
        Route::Dashboard => return Ok(dashboard()),
        Route::OpenApi => {
            let mut response =
                Response::new(Body::Full(Some(Bytes::from_static(OPENAPI.as_bytes()))));
            *response.status_mut() = StatusCode::OK;
            return Ok(with_type(response, JSON));
        }
        _ => {}
    }
    let names = || names_of(&query);
    let ask = match route {
        Route::Status | Route::Dashboard | Route::OpenApi => {
            Request::Status(StatusArgs { names: names() })
        }
        Route::Metrics => Request::Status(StatusArgs::default()),
        Route::Logs => match logs_args(&query) {
            Ok(args) => Request::Logs(args),
            Err(why) => return Ok(error(StatusCode::BAD_REQUEST, "bad_request", why)),
        },
        Route::Events => Request::Events(StatusArgs { names: names() }),
        change => match read_args(change, request).await {
            Ok(request) => request,
            Err(rejection) => return Ok(rejection.response()),
        },
    };
    let head = request_head(route, &query);
    if route == Route::Down {
        // The stop begins with the HTTP API's drain, which waits for this very request: it
        // is answered once the driver has it, not once everything stopped.
        let (reply, _answer) = oneshot::channel();
        let sent = server.driver.send(Event::Control(ControlRequest {
            id: 0,
            request: ask,
            reply,
        }));
        return Ok(match sent {
            Ok(()) => json_response(
                StatusCode::ACCEPTED,
                &serde_json::json!({ "stopping": true }),
            ),
            Err(_) => Rejection::exiting().response(),
        });
    }
    Ok(match server.ask(ask).await {
        Ok(Reply::Answer(Answer::Ok(tend_proto::OkBody::Instances(found))))
            if route == Route::Metrics =>
        {
            let own = metrics::Own::now(server.started);
            let text = metrics::render(&found.instances, &own, std::time::SystemTime::now());
            let mut response = Response::new(Body::Full(Some(text.into())));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        Ok(reply) => server.respond(reply, head),
        Err(rejection) => rejection.response(),
    })
}

/// What shapes a response besides the reply: a log request's form.
#[derive(Clone, Copy)]
struct Head {
    /// Logs as Server-Sent Events (`follow`), rather than one JSON document.
    sse: bool,
}

fn request_head(route: Route, query: &str) -> Head {
    Head {
        sse: route == Route::Logs && flag(query, "follow"),
    }
}

impl Server {
    /// Hands `request` to the driver and waits for its reply.
    async fn ask(&self, request: Request) -> Result<Reply, Rejection> {
        let (reply, answer) = oneshot::channel();
        let exiting = Rejection::exiting;
        self.driver
            .send(Event::Control(ControlRequest {
                id: 0,
                request,
                reply,
            }))
            .map_err(|_| exiting())?;
        answer.await.map_err(|_| exiting())
    }

    /// The response for the driver's reply.
    fn respond(&self, reply: Reply, head: Head) -> Response<Body> {
        match reply {
            Reply::Answer(answer) => answered(answer),
            Reply::Final { answer, written } => {
                // The response is written before tend exits: it waits for its connections.
                let _ = written.send(());
                answered(answer)
            }
            Reply::Logs(plan) => {
                let (tx, rx) = mpsc::channel(STREAM_BUFFER);
                let mut sink = HttpLogs {
                    tx,
                    sse: head.sse,
                    first: true,
                    stopping: self.stopping.clone(),
                };
                tokio::spawn(async move {
                    if !sink.sse && sink.send(b"{\"lines\":[").await.is_err() {
                        return;
                    }
                    if let Ok(true) = send_logs(plan, &mut sink).await {
                        let _ = sink.send(b"]}\n").await;
                    }
                });
                let kind = if head.sse { SSE } else { JSON };
                with_type(Response::new(Body::Stream(rx)), kind)
            }
            Reply::Events(events) => with_type(Response::new(self.event_stream(events)), SSE),
            // Neither is asked for over HTTP (no attach route; progress is turned off).
            Reply::Progress { .. } | Reply::Attach { .. } => error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "not available over HTTP".to_owned(),
            ),
        }
    }

    /// The supervisor's events as Server-Sent Events, one `data:` line of JSON each, until the
    /// client goes or tend stops.
    fn event_stream(&self, mut events: EventStream) -> Body {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let mut stopping = self.stopping.clone();
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    event = events.live.recv() => event,
                    () = tx.closed() => return,
                    () = stopped(&mut stopping) => return,
                };
                let chunk = match event {
                    Ok(event) if events.wants(&event) => sse_data(&*event),
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        format!("event: lagged\ndata: {{\"lost\":{n}}}\n\n").into_bytes()
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if tx.send(chunk.into()).await.is_err() {
                    return;
                }
            }
        });
        Body::Stream(rx)
    }
}

/// A `logs` request's lines over HTTP: a JSON document `{"lines":[...]}`, or with `follow`
/// Server-Sent Events, one line each.
struct HttpLogs {
    tx: mpsc::Sender<Bytes>,
    sse: bool,
    first: bool,
    stopping: watch::Receiver<bool>,
}

impl LogSink for HttpLogs {
    fn encode(&mut self, line: LogLine, out: &mut Vec<u8>) {
        if self.sse {
            out.extend(sse_data(&line));
        } else {
            if !self.first {
                out.push(b',');
            }
            self.first = false;
            let _ = serde_json::to_writer(&mut *out, &line);
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.tx
            .send(Bytes::copy_from_slice(bytes))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }

    async fn closed(&mut self) {
        tokio::select! {
            () = self.tx.closed() => {}
            () = stopped(&mut self.stopping) => {}
        }
    }
}

/// Resolves once tend begins to stop.
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    // An error means the driver is gone: stopped too.
    let _ = stopping.wait_for(|s| *s).await;
}

/// The dashboard: one page, its script and style inline, nothing from elsewhere.
const DASHBOARD: &str = include_str!("dashboard.html");
/// The API's OpenAPI 3 document, as checked in (`docs/openapi.json`).
pub const OPENAPI: &str = include_str!("../../../../../docs/openapi.json");

/// The dashboard, with headers that keep it to itself: nothing loads from elsewhere, it
/// cannot be framed, and it sends no referrer (its address carries the token).
fn dashboard() -> Response<Body> {
    let mut response = Response::new(Body::Full(Some(Bytes::from_static(DASHBOARD.as_bytes()))));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'",
        ),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

const JSON: &str = "application/json";
const SSE: &str = "text/event-stream";

/// One Server-Sent Event carrying `value` as JSON.
fn sse_data<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut out = b"data: ".to_vec();
    // JSON has no raw newline, so it is one data line.
    let _ = serde_json::to_writer(&mut out, value);
    out.extend(b"\n\n");
    out
}

fn with_type(mut response: Response<Body>, kind: &'static str) -> Response<Body> {
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn json_response<T: serde::Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let mut body = serde_json::to_vec(value).unwrap_or_default();
    body.push(b'\n');
    let mut response = Response::new(Body::Full(Some(body.into())));
    *response.status_mut() = status;
    with_type(response, JSON)
}

/// An error response: `{"error":{"code":"...","message":"..."}}`, as the socket's.
fn error(status: StatusCode, code: &str, message: String) -> Response<Body> {
    json_response(
        status,
        &serde_json::json!({ "error": { "code": code, "message": message } }),
    )
}

/// A request turned down before it reached the supervisor: what [`error`] makes a response of.
struct Rejection {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Rejection {
    fn bad_request(message: String) -> Self {
        Rejection {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message,
        }
    }

    fn exiting() -> Self {
        Rejection {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: ErrorCode::ShuttingDown.as_str(),
            message: "tend is exiting".to_owned(),
        }
    }

    fn response(self) -> Response<Body> {
        error(self.status, self.code, self.message)
    }
}

fn refused(refusal: Refusal) -> Response<Body> {
    let code = match refusal.status {
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        _ => "forbidden",
    };
    let unauthorized = refusal.status == StatusCode::UNAUTHORIZED;
    let mut response = error(refusal.status, code, refusal.message);
    if unauthorized {
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// The response of a terminal answer: its `ok` payload, or its error with a status that says
/// the same.
fn answered(answer: Answer) -> Response<Body> {
    match answer {
        Answer::Ok(body) => json_response(StatusCode::OK, &body),
        Answer::Error(e) => error_response(e),
        Answer::Log(_) | Answer::Event(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed",
            "a stream where an answer was expected".to_owned(),
        ),
    }
}

fn error_response(e: ErrorBody) -> Response<Body> {
    let status = match e.code {
        ErrorCode::BadRequest | ErrorCode::LineTooLong | ErrorCode::ProtocolMismatch => {
            StatusCode::BAD_REQUEST
        }
        ErrorCode::UnknownName => StatusCode::NOT_FOUND,
        ErrorCode::Config => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::Failed => StatusCode::CONFLICT,
        ErrorCode::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
    };
    json_response(status, &serde_json::json!({ "error": e }))
}

/// The request of a state change, from its JSON body (empty for `reload` and `down`).
async fn read_args(route: Route, request: hyper::Request<Incoming>) -> Result<Request, Rejection> {
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return Err(Rejection {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: "bad_request",
                message: format!("the body is larger than {MAX_BODY} bytes, or was cut off"),
            })
        }
    };
    fn parse<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, Rejection> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(T::default());
        }
        serde_json::from_slice(body).map_err(|e| {
            Rejection::bad_request(format!("the body is not the request's JSON arguments: {e}"))
        })
    }
    let target = |body: &[u8]| {
        parse::<TargetArgs>(body).map(|mut args| {
            // Progress lines are for the socket's streaming answers.
            args.progress = false;
            args
        })
    };
    Ok(match route {
        Route::Start => Request::Start(target(&body)?),
        Route::Stop => Request::Stop(target(&body)?),
        Route::Restart => Request::Restart(target(&body)?),
        Route::Signal => {
            Request::Signal(serde_json::from_slice::<SignalArgs>(&body).map_err(|e| {
                Rejection::bad_request(format!(
                    "the body must be {{\"signal\":\"SIGUSR1\",\"names\":[\"web\"]}}: {e}"
                ))
            })?)
        }
        Route::Reload => Request::Reload(parse::<tend_proto::ReloadArgs>(&body)?),
        Route::Scale => Request::Scale(
            serde_json::from_slice::<tend_proto::ScaleArgs>(&body).map_err(|e| {
                Rejection::bad_request(format!(
                    "the body must be {{\"replicas\":{{\"web\":4}}}}: {e}"
                ))
            })?,
        ),
        _ => Request::Down(parse::<NoArgs>(&body)?),
    })
}

/// `names=web,worker.1` (or `names=web&names=worker.1`) of a query string.
fn names_of(query: &str) -> Vec<String> {
    query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("names="))
        .flat_map(|list| {
            guard::percent_decode(list)
                .split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Whether a query flag is on: `follow`, `follow=1`, `follow=true`.
fn flag(query: &str, key: &str) -> bool {
    query
        .split('&')
        .any(|pair| pair == key || query_value(pair, key).is_some_and(|v| v == "1" || v == "true"))
}

/// The arguments of `GET /api/logs?names=&lines=&since_ms=&follow=`.
fn logs_args(query: &str) -> Result<LogsArgs, String> {
    let number = |key: &str| -> Result<Option<u64>, String> {
        query_value(query, key)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("{key}={v:?} is not a whole number"))
            })
            .transpose()
    };
    Ok(LogsArgs {
        names: names_of(query),
        lines: number("lines")?.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        follow: flag(query, "follow"),
        since_ms: number("since_ms")?,
    })
}

/// The bearer token: read from `token_file` (its first line, without surrounding white
/// space), or 32 random bytes in hex, new at each start.
pub fn token(token_file: Option<&Path>) -> anyhow::Result<String> {
    use anyhow::Context as _;
    if let Some(path) = token_file {
        let bytes = tend_os::read_regular(path, 4096)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("reading the token file {}", path.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        let token = text.lines().next().unwrap_or("").trim().to_owned();
        if token.len() < 16 || token.chars().any(|c| c.is_control() || c == ' ') {
            anyhow::bail!(
                "the token file {} must hold a token of at least 16 characters without spaces \
                 on its first line",
                path.display()
            );
        }
        return Ok(token);
    }
    let mut random = [0u8; 32];
    let mut urandom =
        std::fs::File::open("/dev/urandom").context("opening /dev/urandom for a token")?;
    io::Read::read_exact(&mut urandom, &mut random).context("reading /dev/urandom for a token")?;
    Ok(random.iter().map(|b| format!("{b:02x}")).collect())
}

/// What tend writes beside its socket for `tend http-url`: `{"listen":"…","token":"…"}`.
pub fn runtime_record(listen: SocketAddr, token: &str) -> Vec<u8> {
    let mut record =
        serde_json::to_vec(&serde_json::json!({ "listen": listen.to_string(), "token": token }))
            .unwrap_or_default();
    record.push(b'\n');
    record
}

/// The dashboard's address with the token, as `tend http-url` prints it.
pub fn url_with_token(listen: SocketAddr, token: &str) -> String {
    format!("http://{listen}/?token={token}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_give_names_flags_and_numbers() {
        assert_eq!(
            names_of("names=web,worker.1&names=db"),
            ["web", "worker.1", "db"]
        );
        assert_eq!(names_of("names=web%2Cdb"), ["web", "db"]);
        assert!(names_of("token=x").is_empty());
        assert!(flag("follow", "follow"));
        assert!(flag("a=b&follow=1", "follow"));
        assert!(flag("follow=true", "follow"));
        assert!(!flag("follow=0", "follow"));
        assert!(!flag("unfollow=1", "follow"));
        let args = logs_args("names=web&lines=5&since_ms=12&follow=1").unwrap();
        assert_eq!(
            (args.names, args.lines, args.since_ms, args.follow),
            (vec!["web".to_owned()], Some(5), Some(12), true)
        );
        assert!(logs_args("lines=many")
            .unwrap_err()
            .contains("lines=\"many\""));
    }

    #[test]
    fn the_openapi_document_names_every_route_and_only_those() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("valid JSON");
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
        for path in &paths {
            let route = Route::of(path).unwrap_or_else(|| panic!("{path} is no route"));
            let methods: Vec<&String> = doc["paths"][path.as_str()]
                .as_object()
                .unwrap()
                .keys()
                .collect();
            let want = if route.access() == Access::Change {
                "post"
            } else {
                "get"
            };
            assert_eq!(methods, [want], "{path}");
        }
        for path in [
            "/api/status",
            "/api/start",
            "/api/stop",
            "/api/restart",
            "/api/signal",
            "/api/reload",
            "/api/scale",
            "/api/down",
            "/api/logs",
            "/api/events",
            "/metrics",
            "/",
            "/openapi.json",
        ] {
            assert!(Route::of(path).is_some(), "{path}");
            assert!(
                paths.iter().any(|p| p.as_str() == path),
                "{path} is not documented"
            );
        }
    }

    #[test]
    fn a_made_token_is_64_hex_digits_and_new_each_time() {
        let (a, b) = (token(None).unwrap(), token(None).unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
