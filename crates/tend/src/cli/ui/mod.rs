//! `tend ui`: a terminal UI over a running supervisor: its processes (the columns of `tend
//! status`, with what the selected one waits for, its health and sd_notify status), the logs
//! of the selected instance or of all, live, with a filter, and keys to start, stop, restart
//! and signal (the keymap: [`view::KEYMAP`], docs/ui.md).
//!
//! # Design
//!
//! - **A pure state and a thin terminal layer.** [`app::App`] holds everything shown and
//!   turns each key and message into [`app::Action`]s; [`view`] draws it with ratatui;
//!   [`term`] owns raw mode and the alternate screen. Only this module and [`feed`] do I/O.
//! - **Threads feeding one channel.** The client code is blocking std I/O, so each source
//!   gets a thread blocked in its read: the keyboard (crossterm), the `events` stream, the
//!   `logs` stream with `follow`, a status worker, a thread per request the keys send, and a
//!   thread taking SIGTERM, SIGHUP and SIGINT (blocked in every thread, see [`term`]). They
//!   send [`feed::Msg`]s into one bounded channel; the loop here takes them, updates the app,
//!   carries out its actions and draws. Each stream and each request has a connection of
//!   its own, since a connection carries one request at a time.
//! - **It follows the supervisor, it does not poll.** Every change of an instance's state is
//!   an event on the `events` stream; each event asks the status worker for a status, and
//!   the worker coalesces: it asks at once, and what comes while it asks (or within
//!   [`feed::STATUS_GAP`], 150 ms, of the last request) is answered by one more request. So
//!   a restart's four or five events cost two status requests, and with nothing happening
//!   nothing runs: no thread has a timeout, and the loop draws only after a message, at most
//!   once per [`FRAME`]. Measured: 0 context switches in 10 s of an idle `tend ui`
//!   (`bench/ui-idle`). The price: uptimes go on counting only when something is drawn (they
//!   are computed at each draw from the last status), and CPU and memory are those of the
//!   last status (each event, or Ctrl+L, asks again).
//! - **Terminal text is made safe.** Log lines, names, notices: every text from the
//!   supervisor or a child goes through [`app::terminal_safe`] (control characters and
//!   escape sequences shown as `^[`…, as `tend up` shows them), so no child can set the
//!   title or clear the screen.
//! - **Endings.** `q` or Ctrl+C: exit 0. SIGTERM, SIGHUP, SIGINT: the terminal is restored and
//!   the exit code is 128 + the signal's number, as for the other verbs. The supervisor
//!   going away (`tend down`, a crash): its event stream ends; the UI restores the terminal,
//!   says so on stderr and exits 0, as `tend events` and `tend logs -f` do when the
//!   supervisor ends. No supervisor at the start: the same message and exit code 3 as every
//!   client verb, before the terminal is touched.

use std::io::{self, IsTerminal};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

use tend_core::Signal;
use tend_os::SignalWaiter;
use tend_proto::InstanceStatus;

use super::{Failure, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use app::{Action, App};
use feed::{Feed, LogStream, Msg};
use term::Screen;

pub mod app;
pub mod feed;
pub mod term;
pub mod view;

/// The least time between two frames: a burst of log lines is drawn once per frame.
pub const FRAME: Duration = Duration::from_millis(33);
/// Room in the channel: a thread that gets ahead of the loop waits.
const CHANNEL: usize = 4096;
/// The most messages taken between two frames once a frame is due, so that a flood of log
/// lines cannot keep the screen from being drawn.
const BATCH: usize = 4096;

/// How the UI ended.
enum End {
    /// `q` or Ctrl+C.
    Quit,
    /// A signal asked it to end.
    Signal(Signal),
    /// The supervisor went away (with the error that said so, if any).
    Gone(Option<String>),
}

/// Runs `tend ui` against the supervisor of `config` at `socket`; returns the exit code.
pub fn run(config: &Path, socket: &Path) -> Result<u8, Failure> {
    // No supervisor: exit 3 like every verb, before anything else.
    let mut first = super::conn::Connection::open(config, socket)?;
    let hello = first
        .hello()
        .cloned()
        .ok_or_else(|| first.failure("the supervisor did not say hello".to_owned()))?;
    if !(io::stdin().is_terminal() && io::stdout().is_terminal()) {
        return Err(Failure::report(
            EXIT_USAGE,
            "tend ui needs a terminal on stdin and stdout; scripts can use `tend status --json`, \
             `tend logs -f` and `tend events --json`",
        ));
    }
    let (tx, rx) = mpsc::sync_channel(CHANNEL);
    let feed = Feed::new(config, socket, tx);
    // Subscribed before the first status, so that no change after it goes unseen.
    let (events, events_id) = feed.subscribe()?;
    let instances = feed::status_on(&mut first)?;
    drop(first);
    // Before any thread exists, so that every thread inherits the mask (see `term`).
    let waiter = SignalWaiter::block(&[Signal::Term, Signal::Hup, Signal::Int])
        .map_err(|e| Failure::report(EXIT_FAILED, format!("cannot block signals: {e}")))?;
    let screen = Screen::enter()
        .map_err(|e| Failure::report(EXIT_FAILED, format!("cannot set up the terminal: {e}")))?;
    feed.signals(waiter);
    feed.keyboard();
    feed.events(events, events_id);
    let (wishes, wished) = mpsc::channel();
    feed.status_worker(wished);
    let mut ui = Ui {
        app: App::new(hello.clone()),
        screen,
        logs: LogStream::new(feed.clone()),
        feed,
        wishes,
        colour: crate::style::colour_wanted(),
    };
    let end = ui.run(&rx, instances);
    drop(ui);
    Ok(match end {
        End::Quit => EXIT_OK,
        End::Signal(signal) => 128 + tend_os::signal_number(signal) as u8,
        End::Gone(why) => {
            let why = why.map(|why| format!(" ({why})")).unwrap_or_default();
            eprintln!(
                "tend: the supervisor of {} (pid {}) has exited{why}; tend ui ends",
                config.display(),
                hello.pid
            );
            EXIT_OK
        }
    })
}

/// The loop's state: the app, the screen, and the ways to reach the threads.
struct Ui {
    app: App,
    screen: Screen,
    feed: Feed,
    logs: LogStream,
    /// To the status worker: one `()` per wish for a status.
    wishes: Sender<()>,
    colour: bool,
}

impl Ui {
    /// Draws, waits for a message, takes it and whatever else comes before the next frame is
    /// due, draws again; until the UI ends.
    fn run(&mut self, rx: &Receiver<Msg>, first: Vec<InstanceStatus>) -> End {
        let actions = self.app.on_status(first, Instant::now());
        if let Some(end) = self.act(actions) {
            return end;
        }
        loop {
            self.draw();
            let drawn = Instant::now();
            // Every thread holds a sender until it ends; the keyboard and signal ones never do.
            let Ok(msg) = rx.recv() else {
                return End::Gone(None);
            };
            if let Some(end) = self.handle(msg) {
                return end;
            }
            let due = drawn + FRAME;
            let mut taken = 0;
            while taken < BATCH {
                let left = due.saturating_duration_since(Instant::now());
                let msg = match rx.recv_timeout(left) {
                    Ok(msg) => msg,
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                };
                if let Some(end) = self.handle(msg) {
                    return end;
                }
                taken += 1;
            }
        }
    }

    fn draw(&mut self) {
        let now = Instant::now();
        let now_ms = tend_core::time::unix_millis(SystemTime::now());
        let (app, colour) = (&self.app, self.colour);
        let mut shown = 0;
        // A terminal that cannot be written to has hung up; SIGHUP ends the UI.
        let _ = self
            .screen
            .terminal
            .draw(|frame| shown = view::draw(frame, app, now, now_ms, colour));
        self.app.set_page(shown);
    }

    /// Takes one message; `Some` when the UI is to end.
    fn handle(&mut self, msg: Msg) -> Option<End> {
        match msg {
            Msg::Key(key) => {
                let actions = self.app.on_key(key);
                return self.act(actions);
            }
            Msg::Resize => {}
            Msg::Status(Ok(instances)) => {
                let actions = self.app.on_status(instances, Instant::now());
                return self.act(actions);
            }
            Msg::Status(Err(why)) => self.app.on_status_failed(&why),
            Msg::Event(event) => {
                let actions = self.app.on_event(&event);
                return self.act(actions);
            }
            Msg::Resubscribed => return self.act(vec![Action::RefreshStatus]),
            Msg::Gone(why) => return Some(End::Gone(why)),
            Msg::Log(generation, line) => self.app.on_log(generation, line),
            Msg::LogEnded(generation, why) => self.app.on_log_ended(generation, why),
            Msg::Done(text) => self.app.on_news(text),
            Msg::Signal(signal) => return Some(End::Signal(signal)),
        }
        None
    }

    /// Carries out the app's actions; `Some` when one ends the UI.
    fn act(&mut self, actions: Vec<Action>) -> Option<End> {
        for action in actions {
            match action {
                Action::RefreshStatus => {
                    let _ = self.wishes.send(());
                }
                Action::FollowLogs { generation, args } => self.logs.follow(generation, args),
                Action::Send { what, request } => self.feed.send(what, request),
                Action::Redraw => {
                    let _ = self.screen.terminal.clear();
                }
                Action::Quit => return Some(End::Quit),
            }
        }
        None
    }
}
