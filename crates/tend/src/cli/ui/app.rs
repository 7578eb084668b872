//! The state of `tend ui`, without a terminal: the instances of the last `status`, the
//! selection, the log buffer and its filter, the prompt being typed, and the line of news.
//!
//! Everything that happens comes in through one `on_*` method ([`App::on_key`],
//! [`App::on_status`], [`App::on_event`], [`App::on_log`], …), which changes the state and
//! returns the [`Action`]s the terminal layer carries out (ask for a status, follow other
//! logs, send a request, quit). Nothing here reads a clock or touches a socket, so every key
//! is tested as plain data.

use std::collections::VecDeque;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tend_core::Signal;
use tend_proto::{
    Event, InstanceStatus, LogLine, LogsArgs, Request, ScaleArgs, ServerHello, SignalArgs, Stream,
    TargetArgs,
};

use crate::style::console_safe;

/// The most log lines kept; older ones are dropped first.
pub const LOG_CAPACITY: usize = 10_000;
/// Past lines asked for (per stream) when the log pane follows one instance.
pub const PAST_LINES_ONE: u32 = 1_000;
/// Past lines asked for (per instance and stream) when the log pane follows all of them.
pub const PAST_LINES_ALL: u32 = 100;
/// The longest signal name the prompt takes (`SIGVTALRM` is 9).
const SIGNAL_NAME_MAX: usize = 12;

/// Whose lines the log pane shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The selected instance's.
    Selected,
    /// Every instance's, each line prefixed with its instance.
    All,
}

/// What the keyboard is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Keys are commands.
    Normal,
    /// Typing a filter after `/`: the text so far.
    Filter(String),
    /// Typing a signal's name after `K`: the text so far.
    Signal(String),
    /// The help is shown; any key closes it.
    Help,
}

/// What the terminal layer is to do for the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Ask for the status again (the status worker coalesces these).
    RefreshStatus,
    /// Drop the log stream and, with `Some`, follow these logs instead; lines come back
    /// tagged with `generation`.
    FollowLogs {
        /// The tag of the new stream's lines.
        generation: u64,
        /// The `logs` request, or `None` to follow nothing.
        args: Option<LogsArgs>,
    },
    /// Send a request on a connection of its own; its outcome comes back as a message.
    Send {
        /// What it is, for the line of news: `restart web.0`.
        what: String,
        /// The request.
        request: Request,
    },
    /// Clear the screen and draw everything again.
    Redraw,
    /// Leave the UI.
    Quit,
}

/// One line of the log pane, already safe to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The instance that printed it (`tend` for the supervisor's own notes).
    pub instance: String,
    /// Whether it came on stderr.
    pub stderr: bool,
    /// The text, control characters made visible; ` [cut]` after a piece of a longer line.
    pub text: String,
}

/// Which start/stop/restart a key asks for.
#[derive(Debug, Clone, Copy)]
enum Verb {
    Start,
    Stop,
    Restart,
}

/// The whole state of the UI.
#[derive(Debug)]
pub struct App {
    hello: ServerHello,
    instances: Vec<InstanceStatus>,
    /// When `instances` arrived: uptimes are shown as of now, from there.
    status_at: Option<Instant>,
    /// The selected row, if there is any row.
    selected: Option<usize>,
    scope: Scope,
    /// The tag of the log stream being followed; lines of older streams are dropped.
    generation: u64,
    /// What the log stream follows now: the instance, or `None` for all (or nothing).
    following: Option<Option<String>>,
    logs: VecDeque<LogEntry>,
    /// The applied filter: only lines containing it are shown.
    filter: Option<String>,
    /// How many matching lines from the bottom the log pane is scrolled up (0: live).
    scroll: usize,
    /// How many lines the log pane shows (for PgUp/PgDn), as last drawn.
    page: usize,
    mode: Mode,
    /// The line of news: the last event, or what became of a request.
    news: Option<String>,
}

impl App {
    /// The state before the first status arrives.
    pub fn new(hello: ServerHello) -> App {
        App {
            hello,
            instances: Vec::new(),
            status_at: None,
            selected: None,
            scope: Scope::Selected,
            generation: 0,
            following: None,
            logs: VecDeque::new(),
            filter: None,
            scroll: 0,
            page: 10,
            mode: Mode::Normal,
            news: None,
        }
    }

    /// The supervisor's hello.
    pub fn hello(&self) -> &ServerHello {
        &self.hello
    }

    /// The instances of the last status, in config order.
    pub fn instances(&self) -> &[InstanceStatus] {
        &self.instances
    }

    /// When the last status arrived.
    pub fn status_at(&self) -> Option<Instant> {
        self.status_at
    }

    /// The index of the selected row.
    pub fn selected(&self) -> Option<usize> {
        self.selected
    }

    /// The selected instance.
    pub fn selected_instance(&self) -> Option<&InstanceStatus> {
        self.instances.get(self.selected?)
    }

    /// Whose logs are shown.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// What the keyboard is doing.
    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// The applied filter.
    pub fn filter(&self) -> Option<&str> {
        self.filter.as_deref()
    }

    /// How far up the log pane is scrolled (0: it follows new lines).
    pub fn scroll(&self) -> usize {
        self.scroll
    }

    /// The line of news.
    pub fn news(&self) -> Option<&str> {
        self.news.as_deref()
    }

    /// Tells the app how many lines the log pane shows, for paging.
    pub fn set_page(&mut self, lines: usize) {
        self.page = lines.max(1);
    }

    /// The log lines the filter lets through, oldest first.
    pub fn matching_logs(&self) -> impl DoubleEndedIterator<Item = &LogEntry> {
        self.logs.iter().filter(|entry| {
            self.filter
                .as_deref()
                .is_none_or(|f| entry.text.contains(f))
        })
    }

    /// The `height` matching lines the log pane shows, oldest first: the last ones, or those
    /// `scroll` lines further up (never past the first).
    pub fn log_window(&self, height: usize) -> Vec<&LogEntry> {
        let matching: Vec<&LogEntry> = self.matching_logs().collect();
        let end = matching.len() - self.scroll.min(matching.len().saturating_sub(height));
        matching[end.saturating_sub(height)..end].to_vec()
    }

    /// A new status: the rows are replaced, the selection stays on the same instance (or the
    /// same row, when that instance is gone), and the log stream follows it.
    pub fn on_status(&mut self, instances: Vec<InstanceStatus>, at: Instant) -> Vec<Action> {
        let name = self.selected_instance().map(|i| i.name.clone());
        let row = self.selected;
        self.instances = instances;
        self.status_at = Some(at);
        self.selected = name
            .and_then(|name| self.instances.iter().position(|i| i.name == name))
            .or_else(|| row.map(|r| r.min(self.instances.len().saturating_sub(1))))
            .or(Some(0))
            .filter(|_| !self.instances.is_empty());
        self.follow()
    }

    /// An event from the supervisor: it becomes the line of news, and the status is asked for
    /// again.
    pub fn on_event(&mut self, event: &Event) -> Vec<Action> {
        let time = event.time.get(11..19).unwrap_or(&event.time);
        self.news = Some(format!("{time}  {}", crate::daemon::events::render(event)));
        vec![Action::RefreshStatus]
    }

    /// A status request failed; `why` says how.
    pub fn on_status_failed(&mut self, why: &str) {
        self.news = Some(format!("status: {why}"));
    }

    /// What became of a request sent by [`Action::Send`], or anything else worth a line.
    pub fn on_news(&mut self, text: String) {
        self.news = Some(text);
    }

    /// A line of the log stream tagged `generation`; lines of a stream no longer followed are
    /// dropped.
    pub fn on_log(&mut self, generation: u64, line: LogLine) {
        if generation != self.generation {
            return;
        }
        let mut text = terminal_safe(&line.line);
        if line.cut {
            text.push_str(" [cut]");
        }
        let entry = LogEntry {
            instance: line.instance,
            stderr: line.stream == Stream::Stderr,
            text,
        };
        // A pane scrolled up stays on the lines it shows.
        if self.scroll > 0
            && self
                .filter
                .as_deref()
                .is_none_or(|f| entry.text.contains(f))
        {
            self.scroll += 1;
        }
        self.logs.push_back(entry);
        if self.logs.len() > LOG_CAPACITY {
            self.logs.pop_front();
        }
    }

    /// The log stream tagged `generation` ended; `why` when it failed.
    pub fn on_log_ended(&mut self, generation: u64, why: Option<String>) {
        if generation == self.generation {
            self.following = None;
            if let Some(why) = why {
                self.news = Some(format!("logs: {why}"));
            }
        }
    }

    /// A key press.
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return vec![Action::Quit];
        }
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Help => Vec::new(),
            Mode::Filter(text) => {
                self.filter_key(text, key);
                Vec::new()
            }
            Mode::Signal(text) => self.signal_key(text, key),
            Mode::Normal => self.normal_key(key),
        }
    }

    fn normal_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if key.modifiers.contains(KeyModifiers::CONTROL) {
            return match key.code {
                KeyCode::Char('l') => vec![Action::Redraw, Action::RefreshStatus],
                _ => Vec::new(),
            };
        }
        match key.code {
            KeyCode::Char('q') => vec![Action::Quit],
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1),
            KeyCode::Char('s') => self.target(Verb::Start),
            KeyCode::Char('t') => self.target(Verb::Stop),
            KeyCode::Char('r') => self.target(Verb::Restart),
            KeyCode::Char('+') => self.scale_by(1),
            KeyCode::Char('-') => self.scale_by(-1),
            KeyCode::Char('K') => {
                if self.selected_instance().is_some() {
                    self.mode = Mode::Signal(String::new());
                } else {
                    self.news = Some("no process selected".to_owned());
                }
                Vec::new()
            }
            KeyCode::Char('a') => {
                self.scope = match self.scope {
                    Scope::Selected => Scope::All,
                    Scope::All => Scope::Selected,
                };
                self.follow()
            }
            KeyCode::Char('/') => {
                self.mode = Mode::Filter(self.filter.clone().unwrap_or_default());
                Vec::new()
            }
            KeyCode::Esc => {
                self.filter = None;
                self.scroll = 0;
                Vec::new()
            }
            KeyCode::PageUp => {
                self.scroll = self.scroll.saturating_add(self.page);
                // Not past the first line: scrolling back down must start from what is shown.
                let matching = self.matching_logs().count();
                self.scroll = self.scroll.min(matching.saturating_sub(self.page));
                Vec::new()
            }
            KeyCode::PageDown => {
                self.scroll = self.scroll.saturating_sub(self.page);
                Vec::new()
            }
            KeyCode::End => {
                self.scroll = 0;
                Vec::new()
            }
            KeyCode::Char('?') => {
                self.mode = Mode::Help;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// A key while typing the filter: Enter applies it (an empty one clears it), Esc clears it.
    fn filter_key(&mut self, mut text: String, key: KeyEvent) {
        match key.code {
            KeyCode::Enter => {
                self.filter = Some(text).filter(|t| !t.is_empty());
                self.scroll = 0;
            }
            KeyCode::Esc => {
                self.filter = None;
                self.scroll = 0;
            }
            KeyCode::Backspace => {
                text.pop();
                self.mode = Mode::Filter(text);
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                text.push(c);
                self.mode = Mode::Filter(text);
            }
            _ => self.mode = Mode::Filter(text),
        }
    }

    /// A key while typing a signal's name: Enter sends it to the selected instance, Esc
    /// cancels.
    fn signal_key(&mut self, mut text: String, key: KeyEvent) -> Vec<Action> {
        match key.code {
            KeyCode::Enter => {
                let Some(name) = self.selected_instance().map(|i| i.name.clone()) else {
                    return Vec::new();
                };
                match text.parse::<Signal>() {
                    Ok(signal) => {
                        let what = format!("send {} to {name}", signal.name());
                        self.news = Some(format!("{what}…"));
                        return vec![Action::Send {
                            what,
                            request: Request::Signal(SignalArgs {
                                signal: signal.name().to_owned(),
                                names: vec![name],
                            }),
                        }];
                    }
                    Err(_) => {
                        self.news = Some(format!(
                            "no signal is called {:?}; try TERM, HUP, INT, USR1, USR2, KILL",
                            terminal_safe(&text)
                        ));
                    }
                }
            }
            KeyCode::Esc => {}
            KeyCode::Backspace => {
                text.pop();
                self.mode = Mode::Signal(text);
            }
            KeyCode::Char(c) if c.is_ascii_alphanumeric() && text.len() < SIGNAL_NAME_MAX => {
                text.push(c);
                self.mode = Mode::Signal(text);
            }
            _ => self.mode = Mode::Signal(text),
        }
        Vec::new()
    }

    /// Moves the selection by `by` rows, within the list.
    fn move_selection(&mut self, by: isize) -> Vec<Action> {
        let Some(row) = self.selected else {
            return Vec::new();
        };
        let last = self.instances.len().saturating_sub(1);
        self.selected = Some(row.saturating_add_signed(by).min(last));
        self.follow()
    }

    /// The request of a start, stop or restart key for the selected instance.
    fn target(&mut self, verb: Verb) -> Vec<Action> {
        let Some(name) = self.selected_instance().map(|i| i.name.clone()) else {
            self.news = Some("no process selected".to_owned());
            return Vec::new();
        };
        let args = TargetArgs {
            names: vec![name.clone()],
            ..TargetArgs::default()
        };
        let (what, request) = match verb {
            Verb::Start => ("start", Request::Start(args)),
            Verb::Stop => ("stop", Request::Stop(args)),
            Verb::Restart => ("restart", Request::Restart(args)),
        };
        let what = format!("{what} {name}");
        self.news = Some(format!("{what}…"));
        vec![Action::Send { what, request }]
    }

    /// `+` or `-`: one instance more (`step` 1) or fewer (-1) of the selected instance's
    /// process, as `tend scale` (the highest index goes first). Down to one: the last is
    /// stopped with `t`, or `tend scale NAME=0`.
    fn scale_by(&mut self, step: i8) -> Vec<Action> {
        let Some(process) = self.selected_instance().map(|i| i.process.clone()) else {
            self.news = Some("no process selected".to_owned());
            return Vec::new();
        };
        let count = self
            .instances
            .iter()
            .filter(|i| i.process == process)
            .count();
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        let wanted = if step > 0 {
            count.saturating_add(1)
        } else if count > 1 {
            count - 1
        } else {
            self.news = Some(format!(
                "{process} has one instance: t stops it, `tend scale {process}=0` keeps it at none"
            ));
            return Vec::new();
        };
        let what = format!("scale {process}={wanted}");
        self.news = Some(format!("{what}…"));
        vec![Action::Send {
            what,
            request: Request::Scale(ScaleArgs {
                replicas: [(process, wanted)].into_iter().collect(),
            }),
        }]
    }

    /// When what the log pane should follow changed (the scope, or the selected instance in
    /// [`Scope::Selected`]): a new stream, under a new generation, and the old lines go.
    fn follow(&mut self) -> Vec<Action> {
        let wanted = match self.scope {
            Scope::All => Some(None),
            Scope::Selected => self.selected_instance().map(|i| Some(i.name.clone())),
        };
        if wanted == self.following {
            return Vec::new();
        }
        self.following = wanted.clone();
        self.generation += 1;
        self.logs.clear();
        self.scroll = 0;
        let args = wanted.map(|name| LogsArgs {
            lines: Some(if name.is_some() {
                PAST_LINES_ONE
            } else {
                PAST_LINES_ALL
            }),
            names: name.into_iter().collect(),
            follow: true,
            since_ms: None,
        });
        vec![Action::FollowLogs {
            generation: self.generation,
            args,
        }]
    }
}

/// Text from a child or the supervisor made safe to put on the screen: every control
/// character and escape sequence shown in caret notation (`^[`, `^M`, as
/// [`console_safe`] does for `tend up`), colour sequences dropped, and tabs expanded to
/// spaces (to the next multiple of 8), so that no byte a child printed reaches the terminal
/// as a command.
pub fn terminal_safe(text: &str) -> String {
    let mut safe = Vec::with_capacity(text.len());
    console_safe(text.as_bytes(), false, &mut safe);
    let safe = String::from_utf8_lossy(&safe);
    if !safe.contains('\t') {
        return safe.into_owned();
    }
    let mut out = String::with_capacity(safe.len() + 8);
    let mut column = 0;
    for c in safe.chars() {
        if c == '\t' {
            let pad = 8 - column % 8;
            out.extend(std::iter::repeat_n(' ', pad));
            column += pad;
        } else {
            out.push(c);
            column += 1;
        }
    }
    out
}

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;
