//! The threads that feed `tend ui`'s one channel of [`Msg`]s, each blocked in a read until
//! something happens: the keyboard, the supervisor's event stream, the log stream, the
//! status worker, a thread per request sent, and the signal thread.
//!
//! Each talks to the supervisor on a connection of its own (a connection carries one request
//! at a time; `events` and `logs` with `follow` hold theirs for good). The client code is
//! blocking std I/O, so threads are the simple way to wait on several sockets and the
//! keyboard at once; none of them has a timeout, so with nothing happening none wakes.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossterm::event::{self as term_event, Event as TermEvent, KeyEvent, KeyEventKind};
use tend_core::Signal;
use tend_os::SignalWaiter;
use tend_proto::{Answer, Event, InstanceStatus, LogLine, LogsArgs, OkBody, Request, StatusArgs};

use super::super::conn::Connection;
use super::super::{error_failure, render, Failure};

/// The least time between two status requests: the events of a burst (a restart is four or
/// five) are answered by one status at its start and at most one more after it.
pub const STATUS_GAP: Duration = Duration::from_millis(150);

/// What the threads tell the UI loop.
#[derive(Debug)]
pub enum Msg {
    /// A key was pressed.
    Key(KeyEvent),
    /// The terminal changed size (the next draw takes the new size).
    Resize,
    /// The answer to a status request: the instances, or what went wrong.
    Status(Result<Vec<InstanceStatus>, String>),
    /// An event of the supervisor.
    Event(Event),
    /// The event stream lost events and was opened again: the status may have missed changes.
    Resubscribed,
    /// The event stream ended: the supervisor is gone (with the error, if it was one).
    Gone(Option<String>),
    /// A line of the log stream tagged `generation`.
    Log(u64, LogLine),
    /// The log stream tagged `generation` ended, with an error if it failed.
    LogEnded(u64, Option<String>),
    /// What became of a request sent with [`Feed::send`].
    Done(String),
    /// SIGTERM, SIGHUP or SIGINT came.
    Signal(Signal),
}

/// Where the supervisor is, and the channel to the UI loop: what every thread needs.
#[derive(Clone)]
pub struct Feed {
    config: PathBuf,
    socket: PathBuf,
    tx: SyncSender<Msg>,
}

impl Feed {
    /// A feed for the supervisor of `config` at `socket`, sending into `tx`.
    pub fn new(config: &Path, socket: &Path, tx: SyncSender<Msg>) -> Feed {
        Feed {
            config: config.to_owned(),
            socket: socket.to_owned(),
            tx,
        }
    }

    fn open(&self) -> Result<Connection, Failure> {
        Connection::open(&self.config, &self.socket)
    }

    /// Reads the keyboard (and resizes) for good.
    pub fn keyboard(&self) {
        let tx = self.tx.clone();
        thread::spawn(move || loop {
            let msg = match term_event::read() {
                Ok(TermEvent::Key(key)) if key.kind != KeyEventKind::Release => Msg::Key(key),
                Ok(TermEvent::Resize(..)) => Msg::Resize,
                Ok(_) => continue,
                // The terminal is gone: the hangup that comes with it ends the UI.
                Err(_) => return,
            };
            if tx.send(msg).is_err() {
                return;
            }
        });
    }

    /// Takes the signals `waiter` blocked, one message each, for good.
    pub fn signals(&self, waiter: SignalWaiter) {
        let tx = self.tx.clone();
        thread::spawn(move || {
            while let Ok(Some(signal)) = waiter.wait(None) {
                if tx.send(Msg::Signal(signal)).is_err() {
                    return;
                }
            }
        });
    }

    /// Forwards the event stream of `conn` (request `id`, already sent) until it ends. A
    /// stream that lost events (the UI read too slowly) is opened anew.
    pub fn events(&self, mut conn: Connection, mut id: u64) {
        let feed = self.clone();
        thread::spawn(move || loop {
            let msg = match conn.next(id) {
                Ok(Some(Answer::Event(event))) => Msg::Event(event),
                Ok(Some(Answer::Error(_))) => match feed.subscribe() {
                    Ok((again, again_id)) => {
                        (conn, id) = (again, again_id);
                        Msg::Resubscribed
                    }
                    Err(failure) => Msg::Gone(Some(message(failure))),
                },
                Ok(Some(_)) => continue,
                Ok(None) => Msg::Gone(None),
                Err(failure) => Msg::Gone(Some(message(failure))),
            };
            let gone = matches!(msg, Msg::Gone(_));
            if feed.tx.send(msg).is_err() || gone {
                return;
            }
        });
    }

    /// A connection with the `events` request sent on it, and the request's id.
    pub fn subscribe(&self) -> Result<(Connection, u64), Failure> {
        let mut conn = self.open()?;
        let id = conn.send(Request::Events(StatusArgs::default()))?;
        Ok((conn, id))
    }

    /// The status worker: for each wish on `wishes`, asks for the status on a fresh
    /// connection (an idle one would be closed by the supervisor after 10 minutes) and sends
    /// the answer; wishes that come while it asks are answered together, once
    /// [`STATUS_GAP`] has passed since the last request.
    pub fn status_worker(&self, wishes: Receiver<()>) {
        let feed = self.clone();
        thread::spawn(move || {
            while wishes.recv().is_ok() {
                let asked = Instant::now();
                while wishes.try_recv().is_ok() {}
                let answer = feed.status().map_err(message);
                if feed.tx.send(Msg::Status(answer)).is_err() {
                    return;
                }
                thread::sleep(STATUS_GAP.saturating_sub(asked.elapsed()));
            }
        });
    }

    /// The status of every instance.
    pub fn status(&self) -> Result<Vec<InstanceStatus>, Failure> {
        status_on(&mut self.open()?)
    }

    /// Sends `request` on a connection of its own, on a thread of its own (a `stop` may wait
    /// for a stop timeout; nothing else waits behind it); what became of it comes back as
    /// [`Msg::Done`], starting with `what`.
    pub fn send(&self, what: String, request: Request) {
        let feed = self.clone();
        thread::spawn(move || {
            let outcome = feed.request(request);
            let text = match outcome {
                Ok(said) => said,
                Err(failure) => format!("{what}: {}", message(failure)),
            };
            let _ = feed.tx.send(Msg::Done(text));
        });
    }

    /// One request and its answer, as a line for people.
    fn request(&self, request: Request) -> Result<String, Failure> {
        let mut conn = self.open()?;
        let signal = match &request {
            Request::Signal(args) => Some(args.signal.clone()),
            _ => None,
        };
        let id = conn.send(request)?;
        Ok(match conn.ok(id)? {
            OkBody::Instances(instances) => instances
                .instances
                .iter()
                .map(render::instance_line)
                .collect::<Vec<_>>()
                .join(", "),
            OkBody::Signalled(signalled) => {
                render::signal_summary(signal.as_deref().unwrap_or("?"), &signalled.signalled)
            }
            OkBody::Reloaded(reloaded) => render::reload_summary(&reloaded),
            OkBody::Scaled(scaled) => render::scale_summary(&scaled),
            OkBody::Done(_) | OkBody::Attached(_) => "done".to_owned(),
        })
    }
}

/// `status` on `conn`: the instances.
pub fn status_on(conn: &mut Connection) -> Result<Vec<InstanceStatus>, Failure> {
    let id = conn.send(Request::Status(StatusArgs::default()))?;
    match conn.ok(id)? {
        OkBody::Instances(instances) => Ok(instances.instances),
        _ => Err(conn.failure("the supervisor's answer to status has no instances".to_owned())),
    }
}

/// The text of a failure.
fn message(failure: Failure) -> String {
    match failure {
        Failure::Report { message, .. } => message,
        Failure::StdoutClosed => "stdout closed".to_owned(),
    }
}

/// The log stream: at most one followed at a time, each under its generation. A new one
/// shuts the previous one's socket down, which ends its thread's read at once.
pub struct LogStream {
    feed: Feed,
    slot: Arc<Mutex<Slot>>,
}

/// The generation followed now, and a handle on its socket to shut it down.
#[derive(Default)]
struct Slot {
    generation: u64,
    closer: Option<UnixStream>,
}

impl LogStream {
    /// No stream yet.
    pub fn new(feed: Feed) -> LogStream {
        LogStream {
            feed,
            slot: Arc::default(),
        }
    }

    /// Ends the stream followed now and, with `Some`, follows `args` instead, its lines tagged
    /// `generation`.
    pub fn follow(&self, generation: u64, args: Option<LogsArgs>) {
        {
            let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
            slot.generation = generation;
            if let Some(old) = slot.closer.take() {
                let _ = old.shutdown(std::net::Shutdown::Both);
            }
        }
        let Some(args) = args else { return };
        let (feed, slot) = (self.feed.clone(), Arc::clone(&self.slot));
        thread::spawn(move || {
            let ended = follow(&feed, &slot, generation, args).err().map(message);
            let _ = feed.tx.send(Msg::LogEnded(generation, ended));
        });
    }
}

/// Follows one log stream until it ends (or is shut down by a newer one).
fn follow(feed: &Feed, slot: &Mutex<Slot>, generation: u64, args: LogsArgs) -> Result<(), Failure> {
    let mut conn = feed.open()?;
    {
        // Under the lock, so that a newer follow either sees this socket or is seen here.
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot.generation != generation {
            return Ok(());
        }
        slot.closer = conn.closer().ok();
    }
    let id = conn.send(Request::Logs(args))?;
    loop {
        match conn.next(id)? {
            Some(Answer::Log(line)) => {
                if feed.tx.send(Msg::Log(generation, line)).is_err() {
                    return Ok(());
                }
            }
            Some(Answer::Error(error)) => return Err(error_failure(error)),
            Some(_) => {}
            None => return Ok(()),
        }
    }
}
