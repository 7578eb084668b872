//! The whole client flow against a fake supervisor: a `UnixListener` in a temp dir, served by a
//! thread that speaks the protocol with canned answers.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tend_proto::{decode_request, Request, RequestLine};

use super::*;

const CONFIG: &str = "/p/tend.toml";
const HELLO: &str =
    r#"{"hello":{"protocol":2,"server":"tend 0.1.0","pid":42,"config":"/p/tend.toml"}}"#;

/// The supervisor's side of one connection.
struct Peer {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Peer {
    /// The next line from the client, without its newline; empty at EOF.
    fn read(&mut self) -> String {
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .expect("reading from the client");
        line.trim_end().to_owned()
    }

    /// Sends one line.
    fn send(&mut self, line: &str) {
        // The client may have gone already, after an answer it found wrong.
        let _ = writeln!(self.writer, "{line}");
    }

    /// Reads the client's hello and answers it.
    fn hello(&mut self) {
        let hello = self.read();
        assert!(
            hello.starts_with(r#"{"hello":{"protocol":2,"client":"tend "#),
            "{hello}"
        );
        self.send(HELLO);
    }

    /// Reads one request line.
    fn request(&mut self) -> RequestLine {
        let line = self.read();
        decode_request(line.as_bytes())
            .unwrap_or_else(|e| panic!("bad request {line}: {:?}", e.error))
    }
}

/// A fake supervisor serving one connection with `script`.
struct Fake {
    _dir: tempfile::TempDir,
    paths: RuntimePaths,
    server: JoinHandle<()>,
}

fn serve(script: impl FnOnce(&mut Peer) + Send + 'static) -> Fake {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("fake.sock");
    let listener = UnixListener::bind(&socket).expect("bind");
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let writer = stream.try_clone().expect("clone");
        script(&mut Peer {
            reader: BufReader::new(stream),
            writer,
        });
    });
    Fake {
        paths: paths_at(socket),
        _dir: dir,
        server,
    }
}

fn paths_at(socket: PathBuf) -> RuntimePaths {
    let lock = socket.with_extension("lock");
    let state = socket.with_extension("state");
    let http = socket.with_extension("http");
    RuntimePaths {
        socket,
        lock,
        state,
        http,
    }
}

/// What a run printed and returned.
struct Ran {
    code: u8,
    out: String,
    err: String,
}

fn run_against(paths: &RuntimePaths, verb: ClientVerb) -> Ran {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_with(verb, Path::new(CONFIG), paths, &mut out, &mut err, false);
    Ran {
        code,
        out: String::from_utf8(out).expect("utf-8 stdout"),
        err: String::from_utf8(err).expect("utf-8 stderr"),
    }
}

/// Runs `verb` against a fake serving `script`, and checks the fake finished cleanly.
fn exchange(verb: ClientVerb, script: impl FnOnce(&mut Peer) + Send + 'static) -> Ran {
    let fake = serve(script);
    let ran = run_against(&fake.paths, verb);
    fake.server.join().expect("the fake server panicked");
    ran
}

/// A fake that answers the hello, reads one request and sends `answer` lines, then closes.
fn answers(
    expected: Request,
    answer: &'static [&'static str],
) -> impl FnOnce(&mut Peer) + Send + 'static {
    move |peer| {
        peer.hello();
        let request = peer.request();
        assert_eq!(request, RequestLine::new(1, expected));
        for line in answer {
            peer.send(line);
        }
    }
}

const TWO_INSTANCES: &str = r#"{"id":1,"ok":{"instances":[{"name":"web.0","process":"web","instance":0,"state":"running","pid":4250,"uptime_ms":302000,"restarts":0,"last_exit":null},{"name":"worker.0","process":"worker","instance":0,"state":"failed","pid":null,"uptime_ms":null,"restarts":5,"last_exit":{"code":1}}]}}"#;

fn status_all() -> Request {
    Request::Status(tend_proto::StatusArgs { names: vec![] })
}

#[test]
fn status_prints_a_table() {
    let ran = exchange(
        ClientVerb::Status {
            json: false,
            names: vec![],
        },
        answers(status_all(), &[TWO_INSTANCES]),
    );
    assert_eq!((ran.code, ran.err.as_str()), (0, ""));
    assert_eq!(
        ran.out,
        "\
tend 0.1.0 (pid 42): /p/tend.toml
NAME      STATE    PID   UPTIME  CPU  MEM  PROCS  RESTARTS  LAST EXIT
web.0     running  4250  5m02s   -    -    -      0         -
worker.0  failed   -     -       -    -    -      5         1
"
    );
}

#[test]
fn status_json_prints_the_instances_array() {
    let ran = exchange(
        ClientVerb::Status {
            json: true,
            names: vec!["web".into()],
        },
        answers(
            Request::Status(tend_proto::StatusArgs {
                names: vec!["web".into()],
            }),
            &[TWO_INSTANCES],
        ),
    );
    assert_eq!(ran.code, 0, "{}", ran.err);
    let array = TWO_INSTANCES
        .strip_prefix(r#"{"id":1,"ok":{"instances":"#)
        .and_then(|s| s.strip_suffix("}}"))
        .expect("the canned answer's array");
    assert_eq!(ran.out, format!("{array}\n"));
}

#[test]
fn status_without_processes_says_so() {
    const EMPTY: &str = r#"{"id":1,"ok":{"instances":[]}}"#;
    let table = exchange(
        ClientVerb::Status {
            json: false,
            names: vec![],
        },
        answers(status_all(), &[EMPTY]),
    );
    assert_eq!(
        (table.code, table.out.as_str()),
        (
            0,
            "tend 0.1.0 (pid 42): /p/tend.toml\nno processes in /p/tend.toml\n"
        )
    );
    let json = exchange(
        ClientVerb::Status {
            json: true,
            names: vec![],
        },
        answers(status_all(), &[EMPTY]),
    );
    assert_eq!((json.code, json.out.as_str()), (0, "[]\n"));
}

#[test]
fn a_waiting_start_shows_progress_on_stderr_and_the_result_on_stdout() {
    const EVENT: &str = r#"{"id":1,"event":{"time":"2026-11-29T21:44:09.512Z","instance":"web.0","event":"spawned","pid":4250}}"#;
    let ran = exchange(
        ClientVerb::Start {
            names: vec!["web".into()],
            wait: true,
            no_deps: false,
        },
        answers(
            Request::Start(tend_proto::TargetArgs {
                names: vec!["web".into()],
                wait: true,
                no_deps: false,
                progress: true,
            }),
            &[EVENT, TWO_INSTANCES],
        ),
    );
    assert_eq!(ran.code, 0, "{}", ran.err);
    assert_eq!(ran.err, "web.0 started (pid 4250)\n");
    assert_eq!(
        ran.out,
        "web.0 running (pid 4250)\nworker.0 failed (last exit 1)\n"
    );
}

#[test]
fn start_prints_each_instance() {
    let ran = exchange(
        ClientVerb::Start {
            names: vec!["all".into()],
            wait: false,
            no_deps: false,
        },
        answers(
            Request::Start(tend_proto::TargetArgs {
                names: vec!["all".into()],
                wait: false,
                no_deps: false,
                progress: false,
            }),
            &[TWO_INSTANCES],
        ),
    );
    assert_eq!(ran.code, 0, "{}", ran.err);
    assert_eq!(
        ran.out,
        "web.0 running (pid 4250)\nworker.0 failed (last exit 1)\n"
    );
}

#[test]
fn an_unknown_name_is_a_usage_error_listing_the_known_ones() {
    let ran = exchange(
        ClientVerb::Stop {
            names: vec!["wbe".into()],
            wait: true,
        },
        answers(
            Request::Stop(tend_proto::TargetArgs {
                names: vec!["wbe".into()],
                wait: true,
                no_deps: false,
                progress: false,
            }),
            &[
                r#"{"id":1,"error":{"code":"unknown_name","message":"no process or instance named 'wbe'","known":["web","worker"]}}"#,
            ],
        ),
    );
    assert_eq!(ran.code, EXIT_USAGE);
    assert_eq!(ran.out, "");
    assert_eq!(
        ran.err,
        "tend: no process or instance named 'wbe'; known: web, worker\n"
    );
}

#[test]
fn a_failed_operation_exits_1() {
    let ran = exchange(
        ClientVerb::Restart {
            names: vec!["web".into()],
            wait: true,
        },
        answers(
            Request::Restart(tend_proto::TargetArgs {
                names: vec!["web".into()],
                wait: true,
                no_deps: false,
                progress: true,
            }),
            &[
                r#"{"id":1,"error":{"code":"failed","message":"web.0 failed: exited with 1 during start_secs"}}"#,
            ],
        ),
    );
    assert_eq!(ran.code, EXIT_FAILED);
    assert_eq!(
        ran.err,
        "tend: web.0 failed: exited with 1 during start_secs\n"
    );
}

#[test]
fn signal_names_the_signalled_instances() {
    let ran = exchange(
        ClientVerb::Signal {
            signal: "usr1".into(),
            names: vec!["web".into()],
        },
        answers(
            Request::Signal(tend_proto::SignalArgs {
                signal: "usr1".into(),
                names: vec!["web".into()],
            }),
            &[r#"{"id":1,"ok":{"signalled":["web.0","web.1"]}}"#],
        ),
    );
    assert_eq!(ran.code, 0, "{}", ran.err);
    assert_eq!(ran.out, "sent SIGUSR1 to web.0, web.1\n");
}

const TWO_LOG_LINES: [&str; 2] = [
    r#"{"id":1,"log":{"instance":"web.0","stream":"stdout","line":"Serving HTTP"}}"#,
    r#"{"id":1,"log":{"instance":"worker.1","stream":"stderr","line":"tick"}}"#,
];

#[test]
fn logs_print_lines_until_the_ok() {
    let ran = exchange(
        ClientVerb::Logs {
            follow: false,
            lines: Some(2),
            since: None,
            names: vec![],
            view: LogsView::default(),
        },
        answers(
            Request::Logs(tend_proto::LogsArgs {
                names: vec![],
                lines: Some(2),
                follow: false,
                since_ms: None,
            }),
            &[TWO_LOG_LINES[0], TWO_LOG_LINES[1], r#"{"id":1,"ok":{}}"#],
        ),
    );
    assert_eq!(ran.code, 0, "{}", ran.err);
    assert_eq!(ran.out, "web.0 | Serving HTTP\nworker.1 | tick\n");
}

#[test]
fn followed_logs_end_when_the_supervisor_closes() {
    let ran = exchange(
        ClientVerb::Logs {
            follow: true,
            lines: Some(10),
            since: None,
            names: vec!["web".into()],
            view: LogsView::default(),
        },
        answers(
            Request::Logs(tend_proto::LogsArgs {
                names: vec!["web".into()],
                lines: Some(10),
                follow: true,
                since_ms: None,
            }),
            &TWO_LOG_LINES,
        ),
    );
    assert_eq!(ran.code, 0, "{}", ran.err);
    assert_eq!(ran.out, "web.0 | Serving HTTP\nworker.1 | tick\n");
}

#[test]
fn logs_cut_short_without_follow_are_a_failure() {
    let ran = exchange(
        ClientVerb::Logs {
            follow: false,
            lines: None,
            since: None,
            names: vec![],
            view: LogsView::default(),
        },
        answers(
            Request::Logs(tend_proto::LogsArgs::default()),
            &TWO_LOG_LINES,
        ),
    );
    assert_eq!(ran.code, EXIT_FAILED);
    assert!(
        ran.err.contains("closed the connection before answering"),
        "{}",
        ran.err
    );
}

#[test]
fn logs_with_timestamps_print_each_lines_time_and_a_placeholder_when_unknown() {
    const TIMED: [&str; 3] = [
        r#"{"id":1,"log":{"time":"2026-11-29T21:44:09.512Z","instance":"web.0","stream":"stdout","line":"Serving HTTP"}}"#,
        r#"{"id":1,"log":{"instance":"worker.1","stream":"stderr","line":"tick"}}"#,
        r#"{"id":1,"ok":{}}"#,
    ];
    let since = Some(1_795_900_000_000);
    let verb = |prefix| ClientVerb::Logs {
        follow: false,
        lines: None,
        since: since.map(Since::At),
        names: vec![],
        view: LogsView {
            timestamps: true,
            prefix,
            ..LogsView::default()
        },
    };
    let request = || {
        Request::Logs(tend_proto::LogsArgs {
            names: vec![],
            lines: None,
            follow: false,
            since_ms: since,
        })
    };
    let ran = exchange(verb(true), answers(request(), &TIMED));
    assert_eq!(ran.code, 0, "{}", ran.err);
    assert_eq!(
        ran.out,
        "2026-11-29T21:44:09.512Z web.0 | Serving HTTP\n\
         ????-??-??T??:??:??.???Z worker.1 | tick\n"
    );
    let ran = exchange(verb(false), answers(request(), &TIMED));
    assert_eq!(
        ran.out,
        "2026-11-29T21:44:09.512Z Serving HTTP\n????-??-??T??:??:??.???Z tick\n"
    );
}

#[test]
fn since_takes_durations_and_rfc3339_times() {
    use std::time::UNIX_EPOCH;
    let now = UNIX_EPOCH + Duration::from_millis(1_795_900_000_000);
    let ago = |text: &str| Since::parse(text).unwrap().unix_ms(now);
    assert_eq!(ago("90s"), 1_795_900_000_000 - 90_000);
    assert_eq!(ago("10m"), 1_795_900_000_000 - 600_000);
    assert_eq!(ago("1h30m"), 1_795_900_000_000 - 5_400_000);
    assert_eq!(ago("250ms"), 1_795_900_000_000 - 250);
    assert_eq!(ago("2026-11-24T07:49:41.123Z"), 1_795_506_581_123);
    assert_eq!(ago("2026-11-24T08:49:41.123+01:00"), 1_795_506_581_123);
    assert_eq!(
        Since::parse("1000000h").unwrap().unix_ms(now),
        0,
        "before the epoch is the epoch"
    );
    for bad in ["", "10", "yesterday", "2026-11-24", "2026-11-24T07:49:41"] {
        let error = Since::parse(bad).unwrap_err();
        assert!(error.contains("neither a duration"), "{bad:?}: {error}");
    }
}

/// A stdout whose reader is gone, like `tend logs | head` after head exits.
struct ClosedPipe;

impl Write for ClosedPipe {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::BrokenPipe.into())
    }

    fn flush(&mut self) -> io::Result<()> {
        Err(io::ErrorKind::BrokenPipe.into())
    }
}

#[test]
fn a_closed_stdout_ends_logs_quietly() {
    let fake = serve(answers(
        Request::Logs(tend_proto::LogsArgs {
            names: vec![],
            lines: Some(10),
            follow: true,
            since_ms: None,
        }),
        &TWO_LOG_LINES,
    ));
    let mut err = Vec::new();
    let verb = ClientVerb::Logs {
        follow: true,
        lines: Some(10),
        since: None,
        names: vec![],
        view: LogsView::default(),
    };
    let code = run_with(
        verb,
        Path::new(CONFIG),
        &fake.paths,
        &mut ClosedPipe,
        &mut err,
        false,
    );
    fake.server.join().expect("the fake server panicked");
    assert_eq!(code, 0);
    assert!(err.is_empty(), "{}", String::from_utf8_lossy(&err));
}

#[test]
fn reload_summarises_the_difference() {
    let ran = exchange(
        ClientVerb::Reload { dry_run: false },
        answers(
            Request::Reload(tend_proto::ReloadArgs::default()),
            &[
                r#"{"id":1,"ok":{"added":["db"],"removed":[],"changed":["web"],"unchanged":["a","b"]}}"#,
            ],
        ),
    );
    assert_eq!(ran.code, 0, "{}", ran.err);
    assert_eq!(
        ran.out,
        "reloaded: 1 added (db), 1 changed (web), 0 removed, 2 unchanged\n  \
         start      db\n  \
         restart    web\n  \
         unchanged  a, b\n"
    );
}

#[test]
fn a_bad_config_on_reload_exits_78_with_the_servers_message() {
    let ran = exchange(
        ClientVerb::Reload { dry_run: false },
        answers(
            Request::Reload(tend_proto::ReloadArgs::default()),
            &[
                r#"{"id":1,"error":{"code":"config","message":"/p/tend.toml:4:1: unknown key `comand` in [process.web]"}}"#,
            ],
        ),
    );
    assert_eq!(ran.code, EXIT_CONFIG);
    assert_eq!(
        ran.err,
        "tend: /p/tend.toml:4:1: unknown key `comand` in [process.web]\n"
    );
}

#[test]
fn down_returns_once_the_supervisor_is_gone() {
    let linger = Duration::from_millis(300);
    let fake = serve(move |peer| {
        peer.hello();
        assert_eq!(
            peer.request(),
            RequestLine::new(1, Request::Down(tend_proto::NoArgs {}))
        );
        peer.send(r#"{"id":1,"ok":{}}"#);
        thread::sleep(linger);
    });
    let started = Instant::now();
    let ran = run_against(&fake.paths, ClientVerb::Down);
    assert!(
        started.elapsed() >= linger,
        "returned before the socket closed"
    );
    fake.server.join().expect("the fake server panicked");
    assert_eq!(
        (ran.code, ran.out.as_str(), ran.err.as_str()),
        (0, "tend stopped\n", "")
    );
}

#[test]
fn down_while_shutting_down_fails() {
    let ran = exchange(
        ClientVerb::Down,
        answers(
            Request::Down(tend_proto::NoArgs {}),
            &[r#"{"id":1,"error":{"code":"shutting_down","message":"tend is already stopping"}}"#],
        ),
    );
    assert_eq!(
        (ran.code, ran.err.as_str()),
        (EXIT_FAILED, "tend: tend is already stopping\n")
    );
}

#[test]
fn a_refused_handshake_exits_1_with_the_servers_message() {
    for (code, message) in [
        ("protocol_mismatch", "protocol mismatch: the client (tend 0.1.0) speaks protocol 1, the running supervisor (tend 0.2.0) speaks protocol 2"),
        ("permission_denied", "this tend runs as uid 1000 and serves only that user and root; you are uid 1001"),
    ] {
        let line = format!(r#"{{"error":{{"code":"{code}","message":"{message}"}}}}"#);
        let ran = exchange(ClientVerb::Reload { dry_run: false }, move |peer| {
            let _ = peer.read();
            peer.send(&line);
        });
        assert_eq!(ran.code, EXIT_FAILED, "{code}");
        assert_eq!(ran.err, format!("tend: {message}\n"));
    }
}

#[test]
fn unexpected_lines_are_failures_not_panics() {
    let cases: [(&str, &str); 5] = [
        ("garbage", "is not an answer"),
        (
            r#"{"id":2,"ok":{"instances":[]}}"#,
            "answered request 2 while request 1",
        ),
        (
            r#"{"id":1,"log":{"instance":"web.0","stream":"stdout","line":"x"}}"#,
            "log or event lines",
        ),
        (r#"{"id":1,"ok":{}}"#, "not the expected one"),
        (r#"{"ok":{"instances":[]}}"#, "without id"),
    ];
    for (answer, expected) in cases {
        let ran = exchange(
            ClientVerb::Status {
                json: false,
                names: vec![],
            },
            move |peer| {
                peer.hello();
                let _ = peer.request();
                peer.send(answer);
            },
        );
        assert_eq!(ran.code, EXIT_FAILED, "{answer}");
        assert!(ran.err.contains(expected), "{answer}: {}", ran.err);
        assert!(ran.err.contains("fake.sock"), "{}", ran.err);
    }
}

#[test]
fn a_later_protocols_hello_is_a_mismatch() {
    let ran = exchange(ClientVerb::Reload { dry_run: false }, |peer| {
        let _ = peer.read();
        peer.send(r#"{"hello":{"protocol":3,"name":"tend 9.0.0","features":[]}}"#);
    });
    assert_eq!(ran.code, EXIT_FAILED);
    assert!(
        ran.err
            .starts_with("tend: protocol mismatch: this tend speaks protocol 2"),
        "{}",
        ran.err
    );
    assert!(ran.err.contains("speaks protocol 3"), "{}", ran.err);
}

#[test]
fn a_bad_hello_reply_is_a_failure() {
    let ran = exchange(ClientVerb::Reload { dry_run: false }, |peer| {
        let _ = peer.read();
        peer.send(r#"{"hello":{"protocol":2}}"#);
    });
    assert_eq!(ran.code, EXIT_FAILED);
    assert!(ran.err.contains("is not a hello"), "{}", ran.err);
}

#[test]
fn a_connection_closed_before_the_answer_is_a_failure() {
    let ran = exchange(ClientVerb::Reload { dry_run: false }, |peer| {
        peer.hello();
        let _ = peer.request();
    });
    assert_eq!(ran.code, EXIT_FAILED);
    assert!(
        ran.err.contains("closed the connection before answering"),
        "{}",
        ran.err
    );
}

#[test]
fn requests_on_one_connection_count_ids_from_1() {
    let fake = serve(|peer| {
        peer.hello();
        for id in 1..=2 {
            assert_eq!(peer.request(), RequestLine::new(id, status_all()));
            peer.send(&format!(r#"{{"id":{id},"ok":{{"instances":[]}}}}"#));
        }
    });
    let mut conn = conn::Connection::open(Path::new(CONFIG), &fake.paths.socket).expect("connect");
    for expected in 1..=2 {
        let id = conn.send(status_all()).expect("send");
        assert_eq!(id, expected);
        assert!(conn.ok(id).is_ok());
    }
    fake.server.join().expect("the fake server panicked");
}

#[test]
fn no_socket_means_no_supervisor() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("none.sock");
    let ran = run_against(
        &paths_at(socket.clone()),
        ClientVerb::Reload { dry_run: false },
    );
    assert_eq!(ran.code, EXIT_NOT_RUNNING);
    assert_eq!(
        ran.err,
        format!(
            "tend: no tend is running for /p/tend.toml (no socket at {}); start one with: tend up -d -c /p/tend.toml\n",
            socket.display()
        )
    );
}

#[test]
fn a_stale_socket_means_no_supervisor() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("stale.sock");
    drop(UnixListener::bind(&socket).expect("bind"));
    assert!(socket.exists());
    let ran = run_against(
        &paths_at(socket.clone()),
        ClientVerb::Status {
            json: false,
            names: vec![],
        },
    );
    assert_eq!(ran.code, EXIT_NOT_RUNNING);
    assert!(
        ran.err.contains(&socket.display().to_string()),
        "{}",
        ran.err
    );
    assert!(
        ran.err.contains("left over from a tend that died"),
        "{}",
        ran.err
    );
    assert!(
        ran.err.contains("tend up -d -c /p/tend.toml"),
        "{}",
        ran.err
    );
}
