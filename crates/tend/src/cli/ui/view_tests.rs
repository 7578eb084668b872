//! What the screen shows, drawn into ratatui's test backend.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use tend_proto::{Health, InstanceStatus, LogLine, ServerHello, State, Stream};

use super::*;

fn instance(name: &str, state: State, pid: Option<u32>) -> InstanceStatus {
    InstanceStatus {
        name: name.to_owned(),
        process: render::process_of(name).to_owned(),
        instance: 0,
        state,
        pid,
        uptime_ms: pid.map(|_| 5_000),
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

/// The screen's rows as text.
fn screen(app: &mut App, now: Instant) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(100, 24)).unwrap();
    let mut shown = 0;
    terminal
        .draw(|frame| shown = draw(frame, app, now, 1_000_000, true))
        .unwrap();
    app.set_page(shown);
    let buffer = terminal.backend().buffer();
    (0..buffer.area.height)
        .map(|y| {
            (0..buffer.area.width)
                .map(|x| buffer[(x, y)].symbol())
                .collect::<String>()
        })
        .collect()
}

fn has(rows: &[String], text: &str) -> bool {
    rows.iter().any(|row| row.contains(text))
}

fn app() -> (App, Instant) {
    let mut hello = ServerHello::new("tend 0.1.0", 4242, "/srv/app/tend.toml");
    hello.started_ms = Some(1_000_000 - 65_000);
    let mut app = App::new(hello);
    let at = Instant::now();
    let mut web = instance("web.0", State::Running, Some(1234));
    web.health = Some(Health {
        healthy: false,
        failures_in_row: 2,
        last_failure: Some("HTTP 503".into()),
    });
    let db = instance("db.0", State::Failed, None);
    app.on_status(vec![web, db], at);
    (app, at)
}

#[test]
fn the_screen_has_the_header_the_table_details_logs_and_keys() {
    let (mut app, at) = app();
    app.on_log(
        1,
        LogLine {
            instance: "web.0".into(),
            stream: Stream::Stdout,
            line: "listening on :8000".into(),
            cut: false,
            time: None,
        },
    );
    let rows = screen(&mut app, at + Duration::from_secs(60));
    assert!(
        rows[0].starts_with("tend 0.1.0 (pid 4242), up 1m05s: /srv/app/tend.toml"),
        "{rows:#?}"
    );
    assert!(has(&rows, "NAME"), "{rows:#?}");
    assert!(has(&rows, "LAST EXIT"), "{rows:#?}");
    // The uptime goes on from the status: 5 s then, a minute later now.
    let web = rows.iter().find(|r| r.contains("web.0  ")).unwrap();
    assert!(
        web.contains("running") && web.contains("1234") && web.contains("1m05s"),
        "{web}"
    );
    assert!(has(&rows, "db.0") && has(&rows, "failed"), "{rows:#?}");
    assert!(
        has(&rows, " web.0: health: failing, 2 in a row; last: HTTP 503"),
        "{rows:#?}"
    );
    assert!(has(&rows, "logs of web.0"), "{rows:#?}");
    assert!(has(&rows, "listening on :8000"), "{rows:#?}");
    assert!(rows[23].trim_end() == HELP_LINE, "{rows:#?}");
}

#[test]
fn all_logs_carry_their_instance_and_the_filter_and_prompt_show() {
    let (mut app, at) = app();
    app.on_key(KeyEvent::new(KeyCode::Char('a'), KeyModifiers::NONE));
    for (instance, text) in [("web.0", "apple"), ("db.0", "banana")] {
        app.on_log(
            2,
            LogLine {
                instance: instance.into(),
                stream: Stream::Stderr,
                line: text.into(),
                cut: false,
                time: None,
            },
        );
    }
    let rows = screen(&mut app, at);
    assert!(has(&rows, "logs of all"), "{rows:#?}");
    assert!(has(&rows, "│web.0 | apple"), "{rows:#?}");
    assert!(has(&rows, "│db.0 | banana"), "{rows:#?}");
    app.on_key(KeyEvent::new(KeyCode::Char('/'), KeyModifiers::NONE));
    app.on_key(KeyEvent::new(KeyCode::Char('b'), KeyModifiers::NONE));
    let rows = screen(&mut app, at);
    assert!(rows[22].starts_with("/b "), "{rows:#?}");
    app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    let rows = screen(&mut app, at);
    assert!(has(&rows, "logs of all | filter: b "), "{rows:#?}");
    assert!(!has(&rows, "apple") && has(&rows, "banana"), "{rows:#?}");
}

#[test]
fn control_characters_never_reach_the_screen() {
    let (mut app, at) = app();
    app.on_log(
        1,
        LogLine {
            instance: "web.0".into(),
            stream: Stream::Stdout,
            line: "\x1b]0;pwned\x07\x1b[2J\x1b[Hgone".into(),
            cut: false,
            time: None,
        },
    );
    app.on_news("news \x1b[2J".into());
    let rows = screen(&mut app, at);
    assert!(has(&rows, "^[]0;pwned^G^[[2J^[[Hgone"), "{rows:#?}");
    assert!(has(&rows, "news ^[[2J"), "{rows:#?}");
    assert!(
        rows.iter().all(|r| !r.chars().any(char::is_control)),
        "{rows:#?}"
    );
}

#[test]
fn the_line_of_keys_fits_80_columns() {
    assert!(
        HELP_LINE.chars().count() <= 80,
        "{}",
        HELP_LINE.chars().count()
    );
}

#[test]
fn question_mark_shows_every_key() {
    let (mut app, at) = app();
    app.on_key(KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE));
    let rows = screen(&mut app, at);
    assert!(has(&rows, "tend ui: keys"), "{rows:#?}");
    for (keys, what) in KEYMAP {
        assert!(
            has(&rows, &format!("{keys}  {what}")) || has(&rows, what),
            "{keys}: {rows:#?}"
        );
    }
}

#[test]
fn a_small_terminal_does_not_panic() {
    let (mut app, at) = app();
    for (w, h) in [(1, 1), (10, 3), (20, 6), (200, 2)] {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        app.on_key(KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE));
        terminal
            .draw(|frame| {
                draw(frame, &app, at, 0, true);
            })
            .unwrap();
        app.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
        terminal
            .draw(|frame| {
                draw(frame, &app, at, 0, false);
            })
            .unwrap();
    }
}
