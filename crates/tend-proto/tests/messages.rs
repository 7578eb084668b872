//! Every message round-trips through the codec, and a few have their exact JSON pinned.

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tend_proto::*;

/// Encodes, checks the framing, decodes, and compares.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(msg: T) -> String {
    let line = encode(&msg);
    assert_eq!(line.last(), Some(&b'\n'), "a line ends with \\n");
    assert_eq!(
        line.iter().filter(|&&b| b == b'\n').count(),
        1,
        "exactly one newline"
    );
    let back: T = decode(&line).unwrap();
    assert_eq!(back, msg);
    String::from_utf8(line[..line.len() - 1].to_vec()).unwrap()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn web0() -> InstanceStatus {
    InstanceStatus {
        name: "web.0".into(),
        process: "web".into(),
        instance: 0,
        state: State::Running,
        pid: Some(1234),
        uptime_ms: Some(5021),
        restarts: 2,
        last_exit: Some(LastExit::Code(1)),
        log_error: None,
        waiting_for: Vec::new(),
        notify_status: None,
        main_pid: None,
        health: None,
        usage: None,
        log_bytes: 0,
        log_write_errors: 0,
        retry_in_ms: None,
        last_exit_oom: false,
        oom_kills: 0,
    }
}

fn stopped_worker() -> InstanceStatus {
    InstanceStatus {
        name: "worker.1".into(),
        process: "worker".into(),
        instance: 1,
        state: State::Stopped,
        pid: None,
        uptime_ms: None,
        restarts: 0,
        last_exit: None,
        log_error: None,
        waiting_for: Vec::new(),
        notify_status: None,
        main_pid: None,
        health: None,
        usage: None,
        log_bytes: 0,
        log_write_errors: 0,
        retry_in_ms: None,
        last_exit_oom: false,
        oom_kills: 0,
    }
}

#[test]
fn handshake_round_trips() {
    let hello = round_trip(ClientHelloLine::from(ClientHello::new("tend 0.1.0")));
    assert_eq!(hello, r#"{"hello":{"protocol":2,"client":"tend 0.1.0"}}"#);
    let server = round_trip(HandshakeReply::Hello(ServerHello::new(
        "tend 0.1.0",
        1234,
        "/abs/tend.toml",
    )));
    assert_eq!(
        server,
        r#"{"hello":{"protocol":2,"server":"tend 0.1.0","pid":1234,"config":"/abs/tend.toml"}}"#
    );
    let mismatch = ErrorBody::protocol_mismatch("tend 0.2.0", 2, "tend 0.1.0", 1);
    let json = round_trip(HandshakeReply::Error(mismatch.clone()));
    assert!(json.starts_with(r#"{"error":{"code":"protocol_mismatch","message":"#));
    // The error line of the handshake is an answer line without id.
    let as_answer: AnswerLine = decode(json.as_bytes()).unwrap();
    assert_eq!(as_answer, AnswerLine::error(None, mismatch));
}

#[test]
fn hellos_tolerate_fields_of_later_versions() {
    let hello: ClientHelloLine =
        decode(br#"{"hello":{"protocol":3,"client":"tend 0.9.0","token":"x"},"extra":true}"#)
            .unwrap();
    assert_eq!(hello.hello.protocol, 3);
    let err = hello.hello.check("tend 0.1.0").unwrap_err();
    assert_eq!(err.code, ErrorCode::ProtocolMismatch);
    for needle in [
        "tend 0.9.0",
        "protocol 3",
        "tend 0.1.0",
        "protocol 2",
        "same version",
    ] {
        assert!(
            err.message.contains(needle),
            "{needle:?} in {:?}",
            err.message
        );
    }
    assert!(ClientHello::new("tend 0.1.0").check("tend 0.1.0").is_ok());

    let reply: HandshakeReply = decode(
        br#"{"hello":{"protocol":2,"server":"tend 0.1.0","pid":1,"config":"/t.toml","http":"x"}}"#,
    )
    .unwrap();
    assert!(matches!(reply, HandshakeReply::Hello(h) if h.pid == 1));
}

#[test]
fn every_request_round_trips() {
    let requests = [
        Request::Status(StatusArgs::default()),
        Request::Status(StatusArgs {
            names: names(&["web", "worker.1"]),
        }),
        Request::Start(TargetArgs {
            names: names(&["all"]),
            wait: true,
            no_deps: false,
            progress: false,
        }),
        Request::Stop(TargetArgs {
            names: names(&["web.1"]),
            wait: false,
            no_deps: false,
            progress: false,
        }),
        Request::Restart(TargetArgs::default()),
        Request::Signal(SignalArgs {
            signal: "SIGUSR1".into(),
            names: names(&["web"]),
        }),
        Request::Logs(LogsArgs::default()),
        Request::Logs(LogsArgs {
            names: names(&["web"]),
            lines: Some(100),
            follow: true,
            since_ms: None,
        }),
        Request::Logs(LogsArgs {
            names: vec![],
            lines: None,
            follow: false,
            since_ms: Some(1_795_900_000_000),
        }),
        Request::Reload(ReloadArgs::default()),
        Request::Reload(ReloadArgs { dry_run: true }),
        Request::Scale(ScaleArgs {
            replicas: [("web".to_owned(), 4), ("worker".to_owned(), 0)].into(),
        }),
        Request::Down(NoArgs {}),
    ];
    for (id, request) in requests.into_iter().enumerate() {
        round_trip(RequestLine::new(id as u64, request));
    }
}

#[test]
fn exact_request_json() {
    let status = RequestLine::new(
        1,
        Request::Status(StatusArgs {
            names: names(&["web", "worker.1"]),
        }),
    );
    assert_eq!(
        round_trip(status),
        r#"{"id":1,"request":{"status":{"names":["web","worker.1"]}}}"#
    );
    let start = RequestLine::new(
        2,
        Request::Start(TargetArgs {
            names: names(&["web"]),
            wait: true,
            no_deps: false,
            progress: false,
        }),
    );
    assert_eq!(
        round_trip(start),
        r#"{"id":2,"request":{"start":{"names":["web"],"wait":true}}}"#
    );
    assert_eq!(
        round_trip(RequestLine::new(3, Request::Reload(ReloadArgs::default()))),
        r#"{"id":3,"request":{"reload":{}}}"#
    );
    assert_eq!(
        round_trip(RequestLine::new(
            3,
            Request::Reload(ReloadArgs { dry_run: true })
        )),
        r#"{"id":3,"request":{"reload":{"dry_run":true}}}"#
    );
    assert_eq!(
        round_trip(RequestLine::new(
            5,
            Request::Scale(ScaleArgs {
                replicas: [("web".to_owned(), 4)].into(),
            })
        )),
        r#"{"id":5,"request":{"scale":{"replicas":{"web":4}}}}"#
    );
    let scaled: AnswerLine =
        serde_json::from_str(r#"{"id":5,"ok":{"scaled":[{"process":"web","from":2,"to":4}]}}"#)
            .unwrap();
    assert_eq!(
        scaled,
        AnswerLine::ok(
            5,
            Scaled {
                scaled: vec![ScaledProcess {
                    process: "web".into(),
                    from: 2,
                    to: 4
                }]
            }
        )
    );
    let plan: AnswerLine = serde_json::from_str(
        r#"{"id":3,"ok":{"added":[],"removed":[],"changed":["web"],"unchanged":[],"keys":{"web":["env (PORT)"]},"dry_run":true}}"#,
    )
    .unwrap();
    let Answer::Ok(OkBody::Reloaded(plan)) = plan.answer else {
        panic!("a plan is a Reloaded: {plan:?}")
    };
    assert!(plan.dry_run);
    assert_eq!(plan.keys["web"], vec!["env (PORT)"]);
    assert_eq!(
        round_trip(RequestLine::new(4, Request::Logs(LogsArgs::default()))),
        r#"{"id":4,"request":{"logs":{"names":[],"follow":false}}}"#
    );
    let since = LogsArgs {
        lines: Some(5),
        since_ms: Some(1_795_900_000_000),
        ..LogsArgs::default()
    };
    assert_eq!(
        round_trip(RequestLine::new(6, Request::Logs(since))),
        r#"{"id":6,"request":{"logs":{"names":[],"lines":5,"follow":false,"since_ms":1795900000000}}}"#
    );
    assert_eq!(
        round_trip(RequestLine::new(
            5,
            Request::Signal(SignalArgs {
                signal: "SIGUSR1".into(),
                names: names(&["web"]),
            })
        )),
        r#"{"id":5,"request":{"signal":{"signal":"SIGUSR1","names":["web"]}}}"#
    );
}

#[test]
fn request_defaults() {
    let line: RequestLine = decode(br#"{"id":1,"request":{"status":{}}}"#).unwrap();
    assert_eq!(line.request, Request::Status(StatusArgs { names: vec![] }));
    let line: RequestLine = decode(br#"{"id":1,"request":{"stop":{"names":["web"]}}}"#).unwrap();
    assert_eq!(
        line.request,
        Request::Stop(TargetArgs {
            names: names(&["web"]),
            wait: true,
            no_deps: false,
            progress: false,
        })
    );
    let line: RequestLine = decode(br#"{"id":1,"request":{"logs":{"follow":true}}}"#).unwrap();
    assert_eq!(
        line.request,
        Request::Logs(LogsArgs {
            names: vec![],
            lines: None,
            follow: true,
            since_ms: None,
        })
    );
    let Request::Logs(args) = line.request else {
        unreachable!()
    };
    assert_eq!(args.past_lines(), 10, "lines default to 10");
    let line: RequestLine =
        decode(br#"{"id":1,"request":{"logs":{"lines":3,"since_ms":5}}}"#).unwrap();
    let Request::Logs(args) = line.request else {
        panic!("{line:?}")
    };
    assert_eq!((args.past_lines(), args.since_ms), (3, Some(5)));
    let line: RequestLine = decode(br#"{"id":1,"request":{"logs":{"since_ms":5}}}"#).unwrap();
    let Request::Logs(args) = line.request else {
        panic!("{line:?}")
    };
    assert_eq!(
        args.past_lines(),
        u32::MAX,
        "with since_ms, as many as the server sends"
    );
    let line: RequestLine = decode(b"{\"id\":1,\"request\":{\"down\":{}}}\n").unwrap();
    assert_eq!(line.request, Request::Down(NoArgs {}));
    // A terminal that sends \r\n: the \r is JSON whitespace.
    let line: RequestLine = decode(b"{\"id\":1,\"request\":{\"down\":{}}}\r").unwrap();
    assert_eq!(line.request, Request::Down(NoArgs {}));
}

#[test]
fn every_answer_round_trips() {
    let answers = [
        AnswerLine::ok(
            1,
            Instances {
                instances: vec![web0(), stopped_worker()],
                ..Instances::default()
            },
        ),
        AnswerLine::ok(1, Instances::default()),
        AnswerLine::ok(
            1,
            Instances {
                instances: vec![web0()],
                no_instances: names(&["db"]),
            },
        ),
        AnswerLine::ok(
            2,
            Signalled {
                signalled: names(&["web.0", "web.1"]),
            },
        ),
        AnswerLine::ok(
            3,
            Reloaded {
                added: names(&["db"]),
                removed: names(&[]),
                changed: names(&["web"]),
                unchanged: names(&["worker"]),
                ..Reloaded::default()
            },
        ),
        AnswerLine::ok(3, Reloaded::default()),
        AnswerLine::ok(4, Done {}),
        AnswerLine::log(
            5,
            LogLine::from_bytes("web.0", Stream::Stderr, b"listening on :8000\n"),
        ),
        AnswerLine::error(
            Some(6),
            ErrorBody::unknown_name("no process 'wbe'", names(&["web"])),
        ),
        AnswerLine::error(None, ErrorBody::new(ErrorCode::BadRequest, "garbage")),
    ];
    for answer in answers {
        round_trip(answer);
    }
    for &code in ErrorCode::ALL {
        round_trip(AnswerLine::error(Some(9), ErrorBody::new(code, "why")));
        let json = String::from_utf8(encode(&code)).unwrap();
        assert_eq!(json.trim(), format!("\"{code}\""));
    }
    for &state in State::ALL {
        round_trip(InstanceStatus { state, ..web0() });
        let json = String::from_utf8(encode(&state)).unwrap();
        assert_eq!(json.trim(), format!("\"{state}\""));
    }
    for exit in [
        LastExit::Code(0),
        LastExit::Code(-1),
        LastExit::Signal("SIGKILL".into()),
        LastExit::SpawnError("No such file or directory".into()),
    ] {
        round_trip(InstanceStatus {
            last_exit: Some(exit),
            ..web0()
        });
    }
}

#[test]
fn exact_instance_status_json() {
    assert_eq!(
        round_trip(web0()),
        r#"{"name":"web.0","process":"web","instance":0,"state":"running","pid":1234,"uptime_ms":5021,"restarts":2,"last_exit":{"code":1}}"#
    );
    assert_eq!(
        round_trip(stopped_worker()),
        r#"{"name":"worker.1","process":"worker","instance":1,"state":"stopped","pid":null,"uptime_ms":null,"restarts":0,"last_exit":null}"#
    );
    let killed = InstanceStatus {
        last_exit: Some(LastExit::Signal("SIGKILL".into())),
        ..stopped_worker()
    };
    assert!(round_trip(killed).ends_with(r#""last_exit":{"signal":"SIGKILL"}}"#));
    let unspawnable = InstanceStatus {
        state: State::Failed,
        last_exit: Some(LastExit::SpawnError("No such file or directory".into())),
        ..stopped_worker()
    };
    assert!(round_trip(unspawnable)
        .ends_with(r#""state":"failed","pid":null,"uptime_ms":null,"restarts":0,"last_exit":{"spawn_error":"No such file or directory"}}"#));
}

#[test]
fn a_log_error_is_sent_only_while_there_is_one_and_old_answers_still_parse() {
    let failing = InstanceStatus {
        log_error: Some(tend_proto::LogError {
            file: "/l/web.0.log".into(),
            error: "No space left on device (os error 28)".into(),
            failing_ms: 1500,
        }),
        ..web0()
    };
    assert!(round_trip(failing).ends_with(
        r#""last_exit":{"code":1},"log_error":{"file":"/l/web.0.log","error":"No space left on device (os error 28)","failing_ms":1500}}"#
    ));
    let old = r#"{"name":"web.0","process":"web","instance":0,"state":"running","pid":1234,"uptime_ms":5021,"restarts":2,"last_exit":{"code":1}}"#;
    let parsed: InstanceStatus = serde_json::from_str(old).unwrap();
    assert_eq!(parsed, web0());
}

#[test]
fn readiness_fields_are_sent_only_when_they_say_something() {
    let waiting = InstanceStatus {
        state: State::Waiting,
        waiting_for: vec![tend_proto::WaitingFor {
            process: "db".into(),
            condition: "ready".into(),
            state: State::Failed,
            gave_up: true,
            no_instances: false,
        }],
        ..stopped_worker()
    };
    assert!(round_trip(waiting).ends_with(
        r#""state":"waiting","pid":null,"uptime_ms":null,"restarts":0,"last_exit":null,"waiting_for":[{"process":"db","condition":"ready","state":"failed","gave_up":true}]}"#
    ));
    // A dependency scaled to 0 says so; a reader that does not know the field still reads it.
    let scaled_away = InstanceStatus {
        state: State::Waiting,
        waiting_for: vec![tend_proto::WaitingFor {
            process: "db".into(),
            condition: "ready".into(),
            state: State::Stopped,
            gave_up: true,
            no_instances: true,
        }],
        ..stopped_worker()
    };
    assert!(round_trip(scaled_away).ends_with(
        r#""waiting_for":[{"process":"db","condition":"ready","state":"stopped","gave_up":true,"no_instances":true}]}"#
    ));
    let ready = InstanceStatus {
        state: State::Ready,
        notify_status: Some("accepting connections".into()),
        main_pid: Some(1240),
        health: Some(tend_proto::Health {
            healthy: false,
            failures_in_row: 2,
            last_failure: Some("HTTP 503".into()),
        }),
        ..web0()
    };
    assert!(round_trip(ready).ends_with(
        r#""last_exit":{"code":1},"notify_status":"accepting connections","main_pid":1240,"health":{"healthy":false,"failures_in_row":2,"last_failure":"HTTP 503"}}"#
    ));
}

#[test]
fn instance_status_tolerates_added_fields() {
    let status: InstanceStatus = decode(
        br#"{"name":"web.0","process":"web","instance":0,"state":"running","pid":1,"uptime_ms":2,"restarts":0,"last_exit":null,"memory_bytes":1024}"#,
    )
    .unwrap();
    assert_eq!(status.pid, Some(1));
}

#[test]
fn exact_answer_json() {
    let unknown = AnswerLine::error(
        Some(7),
        ErrorBody::unknown_name(
            "no process or instance named 'wbe'",
            names(&["web", "worker"]),
        ),
    );
    assert_eq!(
        round_trip(unknown),
        r#"{"id":7,"error":{"code":"unknown_name","message":"no process or instance named 'wbe'","known":["web","worker"]}}"#
    );
    assert_eq!(
        round_trip(AnswerLine::error(
            Some(8),
            ErrorBody::new(ErrorCode::ShuttingDown, "tend is shutting down")
        )),
        r#"{"id":8,"error":{"code":"shutting_down","message":"tend is shutting down"}}"#
    );
    assert_eq!(
        round_trip(AnswerLine::ok(9, Done {})),
        r#"{"id":9,"ok":{}}"#
    );
    assert_eq!(
        round_trip(AnswerLine::ok(
            10,
            Signalled {
                signalled: names(&["web.0"])
            }
        )),
        r#"{"id":10,"ok":{"signalled":["web.0"]}}"#
    );
    assert_eq!(
        round_trip(AnswerLine::ok(11, Reloaded::default())),
        r#"{"id":11,"ok":{"added":[],"removed":[],"changed":[],"unchanged":[]}}"#
    );
    assert_eq!(
        round_trip(AnswerLine::ok(
            11,
            Reloaded {
                changed: names(&["job"]),
                keys: [("job".to_owned(), names(&["command"]))].into(),
                not_running: names(&["job"]),
                ..Reloaded::default()
            }
        )),
        r#"{"id":11,"ok":{"added":[],"removed":[],"changed":["job"],"unchanged":[],"keys":{"job":["command"]},"not_running":["job"]}}"#
    );
    assert_eq!(
        round_trip(AnswerLine::ok(12, Instances::default())),
        r#"{"id":12,"ok":{"instances":[]}}"#
    );
    assert_eq!(
        round_trip(AnswerLine::ok(
            12,
            Instances {
                instances: Vec::new(),
                no_instances: names(&["db"]),
            }
        )),
        r#"{"id":12,"ok":{"instances":[],"no_instances":["db"]}}"#
    );
    assert_eq!(
        round_trip(AnswerLine::log(
            13,
            LogLine::from_bytes("web.0", Stream::Stdout, b"hello\n")
        )),
        r#"{"id":13,"log":{"instance":"web.0","stream":"stdout","line":"hello"}}"#
    );
}

#[test]
fn ok_payloads_are_told_apart_by_their_fields() {
    let decode_ok = |json: &str| match decode::<AnswerLine>(json.as_bytes()).unwrap().answer {
        Answer::Ok(body) => body,
        other => panic!("not ok: {other:?}"),
    };
    assert!(matches!(decode_ok(r#"{"id":1,"ok":{}}"#), OkBody::Done(_)));
    assert!(matches!(
        decode_ok(r#"{"id":1,"ok":{"instances":[]}}"#),
        OkBody::Instances(_)
    ));
    assert!(matches!(
        decode_ok(r#"{"id":1,"ok":{"signalled":[]}}"#),
        OkBody::Signalled(_)
    ));
    assert!(matches!(
        decode_ok(r#"{"id":1,"ok":{"added":[],"removed":[],"changed":[],"unchanged":[]}}"#),
        OkBody::Reloaded(_)
    ));
    // Answers tolerate fields added later, at every level.
    let line: AnswerLine =
        decode(br#"{"id":1,"ok":{"signalled":["web.0"],"skipped":[]},"elapsed_ms":3}"#).unwrap();
    assert_eq!(
        line,
        AnswerLine::ok(
            1,
            Signalled {
                signalled: names(&["web.0"])
            }
        )
    );
    assert!(line.answer.is_terminal());
    assert!(
        !AnswerLine::log(1, LogLine::from_bytes("a.0", Stream::Stdout, b""))
            .answer
            .is_terminal()
    );
}

#[test]
fn log_lines_are_lossy_and_lose_their_newline() {
    let line = LogLine::from_bytes("web.0", Stream::Stdout, b"caf\xc3\xa9 \xff\xfe end\n");
    assert_eq!(line.line, "café \u{fffd}\u{fffd} end");
    let no_newline = LogLine::from_bytes("web.0", Stream::Stdout, b"partial");
    assert_eq!(no_newline.line, "partial");
    // Only one newline goes; a line that is itself a newline stays empty, not negative.
    assert_eq!(LogLine::from_bytes("w.0", Stream::Stdout, b"\n").line, "");
    // Control characters and newlines inside the text are escaped: still one line.
    let odd = LogLine::from_bytes("w.0", Stream::Stderr, b"a\rb\x1b[31mc\x00");
    let json = round_trip(AnswerLine::log(1, odd));
    assert!(json.contains(r#""line":"a\rb\u001b[31mc\u0000""#), "{json}");
}

#[test]
fn a_line_has_its_time_when_known_and_readers_without_the_field_still_parse() {
    let line = LogLine::from_bytes("w.0", Stream::Stderr, b"abc")
        .at(Some("2026-11-29T21:44:09.512Z".into()));
    let json = round_trip(AnswerLine::log(1, line));
    assert_eq!(
        json,
        r#"{"id":1,"log":{"time":"2026-11-29T21:44:09.512Z","instance":"w.0","stream":"stderr","line":"abc"}}"#
    );
    let unknown = round_trip(AnswerLine::log(
        1,
        LogLine::from_bytes("w.0", Stream::Stdout, b"x"),
    ));
    assert!(!unknown.contains("time"), "absent when unknown: {unknown}");
    #[derive(serde::Deserialize)]
    struct OldLogLine {
        line: String,
    }
    #[derive(serde::Deserialize)]
    struct OldAnswer {
        log: OldLogLine,
    }
    let old: OldAnswer = serde_json::from_str(&json).unwrap();
    assert_eq!(old.log.line, "abc");
}

#[test]
fn a_cut_line_says_so_and_readers_without_the_field_still_parse() {
    let piece = LogLine::from_bytes("w.0", Stream::Stdout, b"abc").cut(true);
    let json = round_trip(AnswerLine::log(1, piece));
    assert_eq!(
        json,
        r#"{"id":1,"log":{"instance":"w.0","stream":"stdout","line":"abc","cut":true}}"#
    );
    // A line without the field (an older server) is a whole line.
    let old: AnswerLine =
        decode(br#"{"id":1,"log":{"instance":"w.0","stream":"stdout","line":"abc"}}"#).unwrap();
    assert!(matches!(
        old.answer,
        Answer::Log(LogLine { cut: false, .. })
    ));
    // A reader that does not know the field (an older client) ignores it.
    #[derive(serde::Deserialize)]
    struct OldLogLine {
        line: String,
    }
    #[derive(serde::Deserialize)]
    struct OldAnswer {
        log: OldLogLine,
    }
    let old: OldAnswer = serde_json::from_str(&json).unwrap();
    assert_eq!(old.log.line, "abc");
}

fn bad_request<T: DeserializeOwned + Debug>(line: &[u8]) -> String {
    let err = decode::<T>(line).unwrap_err();
    assert!(matches!(err, ProtoError::Decode(_)), "{err:?}");
    assert_eq!(err.code(), Some(ErrorCode::BadRequest));
    let body = ErrorBody::from(&err);
    assert_eq!(body.code, ErrorCode::BadRequest);
    body.message
}

#[test]
fn bad_lines_are_bad_requests() {
    // Not JSON, not UTF-8, empty, two objects on a line, not an object.
    for garbage in [
        &b"hello"[..],
        b"{\"id\":1,",
        b"\xff\xfe{}",
        b"{\"id\":1,\"request\":{\"status\":{\"names\":[\"\xff\"]}}}",
        b"",
        b"{}{}",
        b"[1,2]",
    ] {
        bad_request::<RequestLine>(garbage);
    }
    // An unknown request names the known ones.
    let msg = bad_request::<RequestLine>(br#"{"id":1,"request":{"statsu":{}}}"#);
    assert!(msg.contains("statsu") && msg.contains("status"), "{msg}");
    // Missing fields.
    let msg = bad_request::<RequestLine>(br#"{"request":{"status":{}}}"#);
    assert!(msg.contains("id"), "{msg}");
    bad_request::<RequestLine>(br#"{"id":1}"#);
    let msg = bad_request::<RequestLine>(br#"{"id":1,"request":{"signal":{"names":["web"]}}}"#);
    assert!(msg.contains("signal"), "{msg}");
    // Unknown fields are typos, at every level of a request.
    let msg = bad_request::<RequestLine>(br#"{"id":1,"request":{"logs":{"folow":true}}}"#);
    assert!(msg.contains("folow"), "{msg}");
    bad_request::<RequestLine>(br#"{"id":1,"request":{"status":{}},"x":1}"#);
    let msg = bad_request::<RequestLine>(br#"{"id":1,"request":{"status":{},"stop":{}}}"#);
    assert!(
        msg.contains("exactly one key") && msg.contains("`stop`"),
        "{msg}"
    );
    let msg = bad_request::<RequestLine>(br#"{"id":1,"request":{}}"#);
    assert!(
        msg.contains("exactly one key") && msg.contains("empty"),
        "{msg}"
    );
    bad_request::<RequestLine>(br#"{"id":1,"request":{"reload":{"force":true}}}"#);
    // Wrong types.
    bad_request::<RequestLine>(br#"{"id":-1,"request":{"status":{}}}"#);
    bad_request::<RequestLine>(br#"{"id":1,"request":{"logs":{"lines":"ten"}}}"#);
    bad_request::<RequestLine>(br#"{"id":1,"request":"status"}"#);
    // A hello must have a protocol number.
    bad_request::<ClientHelloLine>(br#"{"hello":{"client":"x"}}"#);
    bad_request::<ClientHelloLine>(br#"{"id":1,"request":{"status":{}}}"#);
}

#[test]
fn decode_request_keeps_the_id_of_a_bad_request() {
    let ok = decode_request(br#"{"id":3,"request":{"down":{}}}"#).unwrap();
    assert_eq!(ok, RequestLine::new(3, Request::Down(NoArgs {})));

    let bad = decode_request(br#"{"id":42,"request":{"explode":{}}}"#).unwrap_err();
    assert_eq!(bad.id, Some(42));
    let answer = bad.answer();
    assert_eq!(answer.id, Some(42));
    assert!(matches!(&answer.answer, Answer::Error(e) if e.code == ErrorCode::BadRequest));

    let bad = decode_request(b"not json").unwrap_err();
    assert_eq!(bad.id, None);
    let json = String::from_utf8(encode(&bad.answer())).unwrap();
    assert!(
        json.starts_with(r#"{"error":{"code":"bad_request","message":"bad request: "#),
        "{json}"
    );
}

#[test]
fn line_too_long_maps_to_its_code() {
    let err = ProtoError::LineTooLong;
    assert_eq!(err.code(), Some(ErrorCode::LineTooLong));
    let body = ErrorBody::from(&err);
    assert_eq!(body.code, ErrorCode::LineTooLong);
    assert!(body.message.contains(&MAX_LINE.to_string()));
    let io = ProtoError::from(std::io::Error::other("boom"));
    assert_eq!(io.code(), None);
}
