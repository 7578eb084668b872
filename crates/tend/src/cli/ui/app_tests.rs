//! The app's keys and messages, as data: no terminal, no socket.

use super::*;
use crossterm::event::KeyEventState;
use tend_proto::{EventKind, State};

fn hello() -> ServerHello {
    ServerHello::new("tend 0.1.0", 4242, "/srv/app/tend.toml")
}

fn instance(name: &str, pid: Option<u32>) -> InstanceStatus {
    InstanceStatus {
        name: name.to_owned(),
        process: crate::cli::render::process_of(name).to_owned(),
        instance: 0,
        state: if pid.is_some() {
            State::Running
        } else {
            State::Stopped
        },
        pid,
        uptime_ms: pid.map(|_| 1000),
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

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent {
        code,
        modifiers: KeyModifiers::NONE,
        kind: crossterm::event::KeyEventKind::Press,
        state: KeyEventState::NONE,
    }
}

fn ch(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent {
        modifiers: KeyModifiers::CONTROL,
        ..ch(c)
    }
}

fn typed(app: &mut App, text: &str) -> Vec<Action> {
    text.chars().flat_map(|c| app.on_key(ch(c))).collect()
}

fn line(instance: &str, text: &str) -> LogLine {
    LogLine {
        instance: instance.to_owned(),
        stream: Stream::Stdout,
        line: text.to_owned(),
        cut: false,
        time: None,
    }
}

/// An app with web.0, web.1 and worker.0, after its first status.
fn app() -> (App, Vec<Action>) {
    let mut app = App::new(hello());
    let actions = app.on_status(
        vec![
            instance("web.0", Some(100)),
            instance("web.1", Some(101)),
            instance("worker.0", None),
        ],
        Instant::now(),
    );
    (app, actions)
}

fn texts(app: &App, height: usize) -> Vec<String> {
    app.log_window(height)
        .iter()
        .map(|e| e.text.clone())
        .collect()
}

#[test]
fn the_first_status_selects_the_first_row_and_follows_its_logs() {
    let (app, actions) = app();
    assert_eq!(app.selected(), Some(0));
    assert_eq!(
        actions,
        vec![Action::FollowLogs {
            generation: 1,
            args: Some(LogsArgs {
                names: vec!["web.0".into()],
                lines: Some(PAST_LINES_ONE),
                follow: true,
                since_ms: None,
            })
        }]
    );
}

#[test]
fn moving_the_selection_follows_the_new_instance_and_stops_at_the_ends() {
    let (mut app, _) = app();
    assert_eq!(app.on_key(key(KeyCode::Up)), vec![], "already at the top");
    let actions = app.on_key(ch('j'));
    assert_eq!(app.selected_instance().unwrap().name, "web.1");
    assert!(
        matches!(&actions[..], [Action::FollowLogs { generation: 2, args: Some(a) }]
        if a.names == ["web.1"])
    );
    app.on_key(key(KeyCode::Down));
    assert_eq!(app.on_key(ch('j')), vec![], "already at the bottom");
    assert_eq!(app.selected_instance().unwrap().name, "worker.0");
    app.on_key(ch('k'));
    assert_eq!(app.selected_instance().unwrap().name, "web.1");
}

#[test]
fn a_new_status_keeps_the_selected_instance_wherever_its_row_went() {
    let (mut app, _) = app();
    app.on_key(ch('j'));
    // web.0 went away (a reload): web.1 is now the first row, and stays selected.
    let actions = app.on_status(
        vec![instance("web.1", Some(201)), instance("worker.0", None)],
        Instant::now(),
    );
    assert_eq!(app.selected(), Some(0));
    assert_eq!(actions, vec![], "the same instance: the same log stream");
    // The selected one is gone too: the same row, within the list.
    let actions = app.on_status(vec![instance("db.0", None)], Instant::now());
    assert_eq!(app.selected_instance().unwrap().name, "db.0");
    assert_eq!(actions.len(), 1);
    app.on_status(vec![], Instant::now());
    assert_eq!(app.selected(), None);
}

#[test]
fn start_stop_restart_and_signal_go_to_the_selected_instance() {
    let (mut app, _) = app();
    app.on_key(ch('j'));
    let names = vec!["web.1".to_owned()];
    let args = TargetArgs {
        names: names.clone(),
        ..TargetArgs::default()
    };
    assert_eq!(
        app.on_key(ch('r')),
        vec![Action::Send {
            what: "restart web.1".into(),
            request: Request::Restart(args.clone())
        }]
    );
    assert_eq!(app.news(), Some("restart web.1…"));
    assert!(
        matches!(&app.on_key(ch('s'))[..], [Action::Send { request: Request::Start(a), .. }] if a == &args)
    );
    assert!(
        matches!(&app.on_key(ch('t'))[..], [Action::Send { request: Request::Stop(a), .. }] if a == &args)
    );
    assert_eq!(app.on_key(ch('K')), vec![]);
    assert_eq!(app.mode(), &Mode::Signal(String::new()));
    assert_eq!(typed(&mut app, "usr1"), vec![]);
    assert_eq!(
        app.on_key(key(KeyCode::Enter)),
        vec![Action::Send {
            what: "send SIGUSR1 to web.1".into(),
            request: Request::Signal(SignalArgs {
                signal: "SIGUSR1".into(),
                names
            })
        }]
    );
    assert_eq!(app.mode(), &Mode::Normal);
}

#[test]
fn plus_and_minus_scale_the_selected_process_by_one() {
    let (mut app, _) = app();
    let scale = |name: &str, n: u32| Action::Send {
        what: format!("scale {name}={n}"),
        request: Request::Scale(ScaleArgs {
            replicas: [(name.to_owned(), n)].into_iter().collect(),
        }),
    };
    // web.0 is selected; web has two instances.
    assert_eq!(app.on_key(ch('+')), vec![scale("web", 3)]);
    assert_eq!(app.news(), Some("scale web=3…"));
    assert_eq!(app.on_key(ch('-')), vec![scale("web", 1)]);
    // worker has one: `-` says how to stop it instead.
    app.on_key(ch('j'));
    app.on_key(ch('j'));
    assert_eq!(app.on_key(ch('-')), vec![]);
    assert!(
        app.news().unwrap().contains("tend scale worker=0"),
        "{:?}",
        app.news()
    );
    assert_eq!(app.on_key(ch('+')), vec![scale("worker", 2)]);
    let mut empty = App::new(hello());
    assert_eq!(empty.on_key(ch('+')), vec![]);
    assert_eq!(empty.news(), Some("no process selected"));
}

#[test]
fn an_unknown_signal_is_refused_here_and_esc_cancels_the_prompt() {
    let (mut app, _) = app();
    app.on_key(ch('K'));
    typed(&mut app, "NOPE");
    assert_eq!(app.on_key(key(KeyCode::Enter)), vec![]);
    assert!(app.news().unwrap().contains("no signal is called \"NOPE\""));
    app.on_key(ch('K'));
    typed(&mut app, "TERM");
    app.on_key(key(KeyCode::Backspace));
    assert_eq!(app.mode(), &Mode::Signal("TER".into()));
    assert_eq!(app.on_key(key(KeyCode::Esc)), vec![]);
    assert_eq!(app.mode(), &Mode::Normal);
}

#[test]
fn keys_need_a_selection_and_say_so() {
    let mut app = App::new(hello());
    assert_eq!(app.on_key(ch('r')), vec![]);
    assert_eq!(app.news(), Some("no process selected"));
    assert_eq!(app.on_key(ch('K')), vec![]);
    assert_eq!(app.mode(), &Mode::Normal);
}

#[test]
fn the_filter_applies_on_enter_and_esc_clears_it() {
    let (mut app, _) = app();
    for text in ["apple 1", "banana 1", "apple 2", "banana 2"] {
        app.on_log(1, line("web.0", text));
    }
    app.on_key(ch('/'));
    typed(&mut app, "banana");
    assert_eq!(app.filter(), None, "not applied while typing");
    assert_eq!(texts(&app, 10).len(), 4);
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.filter(), Some("banana"));
    assert_eq!(texts(&app, 10), ["banana 1", "banana 2"]);
    // `/` again starts from the filter in force; Esc there clears it.
    app.on_key(ch('/'));
    assert_eq!(app.mode(), &Mode::Filter("banana".into()));
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.filter(), None);
    assert_eq!(texts(&app, 10).len(), 4);
    // Esc in normal mode clears an applied filter too; an empty filter is none.
    app.on_key(ch('/'));
    typed(&mut app, "apple");
    app.on_key(key(KeyCode::Enter));
    assert_eq!(texts(&app, 10), ["apple 1", "apple 2"]);
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.filter(), None);
    app.on_key(ch('/'));
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.filter(), None);
    // Keys typed into the filter are text, not commands.
    app.on_key(ch('/'));
    assert_eq!(typed(&mut app, "qrs"), vec![]);
    assert_eq!(app.mode(), &Mode::Filter("qrs".into()));
}

#[test]
fn log_lines_are_made_safe_kept_in_order_and_bounded() {
    let (mut app, _) = app();
    app.on_log(1, line("web.0", "\x1b]0;pwned\x07\x1b[2Jcleared\ttab\r"));
    assert_eq!(texts(&app, 1), ["^[]0;pwned^G^[[2Jcleared        tab^M"]);
    app.on_log(
        1,
        LogLine {
            cut: true,
            ..line("web.0", "piece")
        },
    );
    assert_eq!(texts(&app, 1), ["piece [cut]"]);
    for n in 0..LOG_CAPACITY + 5 {
        app.on_log(1, line("web.0", &n.to_string()));
    }
    let all: Vec<&LogEntry> = app.matching_logs().collect();
    assert_eq!(all.len(), LOG_CAPACITY);
    assert_eq!(all[0].text, "5");
    assert_eq!(all.last().unwrap().text, (LOG_CAPACITY + 4).to_string());
}

#[test]
fn lines_of_a_stream_no_longer_followed_are_dropped() {
    let (mut app, _) = app();
    app.on_log(1, line("web.0", "from web.0"));
    app.on_key(ch('j'));
    assert_eq!(
        texts(&app, 10),
        Vec::<String>::new(),
        "a new stream starts empty"
    );
    app.on_log(1, line("web.0", "late line of the old stream"));
    app.on_log(2, line("web.1", "from web.1"));
    assert_eq!(texts(&app, 10), ["from web.1"]);
}

#[test]
fn a_toggles_between_the_selected_instance_and_all() {
    let (mut app, _) = app();
    let actions = app.on_key(ch('a'));
    assert_eq!(app.scope(), Scope::All);
    assert_eq!(
        actions,
        vec![Action::FollowLogs {
            generation: 2,
            args: Some(LogsArgs {
                names: vec![],
                lines: Some(PAST_LINES_ALL),
                follow: true,
                since_ms: None,
            })
        }]
    );
    assert_eq!(
        app.on_key(ch('j')),
        vec![],
        "all: moving does not change the stream"
    );
    let actions = app.on_key(ch('a'));
    assert!(
        matches!(&actions[..], [Action::FollowLogs { generation: 3, args: Some(a) }]
        if a.names == ["web.1"])
    );
}

#[test]
fn a_stream_that_ended_is_followed_again_at_the_next_status() {
    let (mut app, _) = app();
    app.on_log_ended(1, Some("lost the connection".into()));
    assert_eq!(app.news(), Some("logs: lost the connection"));
    let actions = app.on_status(vec![instance("web.0", Some(100))], Instant::now());
    assert!(matches!(
        &actions[..],
        [Action::FollowLogs { generation: 2, .. }]
    ));
    // The end of an older stream changes nothing.
    app.on_log_ended(1, None);
    assert_eq!(
        app.on_status(vec![instance("web.0", Some(100))], Instant::now()),
        vec![]
    );
}

#[test]
fn paging_scrolls_within_the_lines_and_new_lines_keep_a_scrolled_pane_still() {
    let (mut app, _) = app();
    app.set_page(3);
    for n in 1..=10 {
        app.on_log(1, line("web.0", &n.to_string()));
    }
    assert_eq!(texts(&app, 3), ["8", "9", "10"]);
    app.on_key(key(KeyCode::PageUp));
    assert_eq!(texts(&app, 3), ["5", "6", "7"]);
    app.on_log(1, line("web.0", "11"));
    assert_eq!(
        texts(&app, 3),
        ["5", "6", "7"],
        "the pane stays on what it shows"
    );
    for _ in 0..5 {
        app.on_key(key(KeyCode::PageUp));
    }
    assert_eq!(texts(&app, 3), ["1", "2", "3"], "not past the first line");
    app.on_key(key(KeyCode::PageDown));
    assert_eq!(texts(&app, 3), ["4", "5", "6"]);
    app.on_key(key(KeyCode::End));
    assert_eq!(texts(&app, 3), ["9", "10", "11"]);
}

#[test]
fn events_make_news_and_ask_for_a_status() {
    let (mut app, _) = app();
    let event = Event {
        time: "2026-11-29T21:44:09.512Z".into(),
        instance: Some("web.0".into()),
        kind: EventKind::Spawned { pid: 4250 },
    };
    assert_eq!(app.on_event(&event), vec![Action::RefreshStatus]);
    assert_eq!(app.news(), Some("21:44:09  web.0 started (pid 4250)"));
}

#[test]
fn quit_help_and_redraw_keys() {
    let (mut app, _) = app();
    assert_eq!(app.on_key(ch('?')), vec![]);
    assert_eq!(app.mode(), &Mode::Help);
    assert_eq!(app.on_key(ch('q')), vec![], "any key closes the help");
    assert_eq!(app.mode(), &Mode::Normal);
    assert_eq!(
        app.on_key(ctrl('l')),
        vec![Action::Redraw, Action::RefreshStatus]
    );
    assert_eq!(app.on_key(ch('q')), vec![Action::Quit]);
    app.on_key(ch('/'));
    assert_eq!(
        app.on_key(ctrl('c')),
        vec![Action::Quit],
        "Ctrl+C quits from anywhere"
    );
}

#[test]
fn terminal_safe_shows_controls_and_expands_tabs() {
    assert_eq!(terminal_safe("plain"), "plain");
    assert_eq!(terminal_safe("\x1b[31mred\x1b[0m"), "red");
    assert_eq!(terminal_safe("a\tb"), "a       b");
    assert_eq!(terminal_safe("\x1b]2;title\x07"), "^[]2;title^G");
    assert_eq!(terminal_safe("c1 \u{9b}2J"), "c1 <U+9B>2J");
}
