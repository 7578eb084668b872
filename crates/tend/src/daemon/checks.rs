//! The checks tend carries out for a run: its readiness check (the sd_notify socket, the
//! notify fd, a log line, a probe) and its liveness check. Each is a task on the driver's
//! thread that lives as long as the run and reports facts on the driver's channel
//! ([`Event::Readiness`], [`Event::HealthChecked`]); what they mean is the supervisor's
//! decision. Nothing here wakes tend unless a run has a probe: an idle run with a notify
//! socket costs a registered fd and no wakeup.
//!
//! Before the spawn, [`prepare`] makes what the child must inherit (the socket's name in
//! `NOTIFY_SOCKET`, the write end of the notify fd) and what the drainers look at (the log
//! line); after it, [`Checks::start`] starts the tasks. The run's checks end when it is reaped
//! ([`Checks::ended`]).

use std::collections::HashMap;
use std::io::{self, PipeReader, PipeWriter};
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use tend_core::notify::NotifyMessage;
use tend_core::{ExitStatus, ProbeSpec, ProcessSpec, ReadyCheck, ReadyFact, RunId};
use tend_os::notify::NotifySocket;
use tend_os::{ChildAction, Pid};
use tokio::io::{AsyncReadExt, Interest};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::drain::LineWatch;
use super::probe::{try_once, ProbeChildren, ProbeContext};
use super::world::Event;

/// The most bytes read from a notify fd looking for its newline.
const MAX_NOTIFY_FD_BYTES: usize = 4096;

/// What the spawn of a run needs from its checks, made before the spawn.
pub struct Prepared {
    /// Variables the child gets: `NOTIFY_SOCKET`, `WATCHDOG_USEC`.
    pub env: Vec<(String, String)>,
    /// What the drainers look at for `log_line`.
    pub watch: Option<LineWatch>,
    /// `WATCHDOG_PID` is set to the child's pid.
    watchdog_pid: bool,
    notify: Option<NotifySocket>,
    /// The pipe of `notify_fd`, and the fd number the child gets its write end at.
    fd_pipe: Option<(PipeReader, PipeWriter, RawFd)>,
}

impl Prepared {
    /// What the child does before its exec: the notify fd at its number, `WATCHDOG_PID`.
    pub fn actions(&self) -> Vec<ChildAction<'_>> {
        let mut actions = Vec::new();
        if let Some((_, writer, to)) = &self.fd_pipe {
            actions.push(ChildAction::Dup2 {
                from: writer.as_fd(),
                to: *to,
            });
        }
        if self.watchdog_pid {
            actions.push(ChildAction::SetEnvPid {
                name: "WATCHDOG_PID",
            });
        }
        actions
    }
}

/// Makes what run `run` of `spec` must inherit or have looked at.
pub fn prepare(
    run: RunId,
    spec: &ProcessSpec,
    events: &mpsc::UnboundedSender<Event>,
) -> io::Result<Prepared> {
    let mut prepared = Prepared {
        env: Vec::new(),
        watch: None,
        watchdog_pid: false,
        notify: None,
        fd_pipe: None,
    };
    let Some(ready) = &spec.ready else {
        return Ok(prepared);
    };
    match &ready.check {
        ReadyCheck::Notify => {
            // Abstract: no file to clean up after a crash, no path length to exceed; the
            // credentials of each datagram say whether its sender may speak.
            let socket = NotifySocket::bind(&format!("tend/{}/{}", std::process::id(), run.0))?;
            prepared
                .env
                .push(("NOTIFY_SOCKET".into(), socket.env_value()));
            if let Some(every) = ready.watchdog {
                prepared
                    .env
                    .push(("WATCHDOG_USEC".into(), every.as_micros().to_string()));
                prepared.watchdog_pid = true;
            }
            prepared.notify = Some(socket);
        }
        ReadyCheck::NotifyFd(fd) => {
            let (reader, writer) = io::pipe()?;
            prepared.fd_pipe = Some((reader, writer, *fd));
        }
        ReadyCheck::LogLine(pattern) => {
            let pattern = regex::bytes::Regex::new(pattern)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
            prepared.watch = Some(LineWatch {
                pattern: Arc::new(pattern),
                run,
                events: events.clone(),
                matched: Arc::new(AtomicBool::new(false)),
            });
        }
        ReadyCheck::Probe(_) => {}
    }
    Ok(prepared)
}

/// The checks of every live run, and the children of exec probes.
#[derive(Default)]
pub struct Checks {
    runs: HashMap<RunId, Vec<AbortHandle>>,
    children: ProbeChildren,
}

impl Checks {
    /// Starts the checks of `run` of `spec`, just spawned.
    pub fn start(
        &mut self,
        run: RunId,
        prepared: Prepared,
        spec: &Arc<ProcessSpec>,
        env: &[(String, String)],
        events: &mpsc::UnboundedSender<Event>,
    ) {
        let mut tasks = Vec::new();
        let ctx = || ProbeContext {
            cwd: spec.cwd.clone(),
            env: env.to_vec(),
            children: self.children.clone(),
            runs_as: Some(Arc::clone(spec)),
        };
        if let Some(socket) = prepared.notify {
            // The process's own user may speak too when it runs as another (`user`).
            let runs_as = spec
                .identity
                .as_ref()
                .and_then(|i| i.user.as_ref())
                .map(|u| u.uid);
            let task = notify(socket, run, runs_as, events.clone());
            tasks.push(tokio::spawn(task).abort_handle());
        }
        if let Some((reader, writer, _)) = prepared.fd_pipe {
            // Only the child may hold the write end, or EOF would never come.
            drop(writer);
            tasks.push(tokio::spawn(notify_fd(reader.into(), run, events.clone())).abort_handle());
        }
        if let Some(ReadyCheck::Probe(probe)) = spec.ready.as_ref().map(|r| &r.check) {
            let task = until_ready(probe.clone(), ctx(), run, events.clone());
            tasks.push(tokio::spawn(task).abort_handle());
        }
        if let Some(health) = &spec.health {
            let task = health_checks(health.probe.clone(), ctx(), run, events.clone());
            tasks.push(tokio::spawn(task).abort_handle());
        }
        if !tasks.is_empty() {
            self.runs.insert(run, tasks);
        }
    }

    /// The run ended: its checks end.
    pub fn ended(&mut self, run: RunId) {
        for task in self.runs.remove(&run).into_iter().flatten() {
            task.abort();
        }
    }

    /// For the reaper: whether `pid` was the child of an exec probe (its exit went there).
    pub fn reaped(&self, pid: Pid, status: ExitStatus) -> bool {
        !self.children.is_empty() && self.children.reaped(pid, status)
    }
}

/// Reads the run's sd_notify socket for as long as the run lives. A datagram from a user
/// other than tend's, root, or `runs_as` (the process's own, with `user`) is ignored (an
/// abstract socket can be reached by anyone on the host); the file
/// descriptors a datagram brings (systemd-notify's barrier) are closed once its messages are
/// on their way to the driver, which releases the sender.
async fn notify(
    socket: NotifySocket,
    run: RunId,
    runs_as: Option<u32>,
    events: mpsc::UnboundedSender<Event>,
) {
    let socket = std::os::unix::net::UnixDatagram::from(OwnedFd::from(socket));
    let Ok(socket) = tokio::net::UnixDatagram::from_std(socket) else {
        return;
    };
    let us = tend_os::current_uid();
    loop {
        if socket.readable().await.is_err() {
            return;
        }
        loop {
            // `try_io` clears the readiness when the read would block.
            let read = socket.try_io(Interest::READABLE, || {
                tend_os::notify::recv(socket.as_fd())?
                    .ok_or_else(|| io::ErrorKind::WouldBlock.into())
            });
            match read {
                Ok(datagram) => {
                    let allowed = datagram
                        .credentials
                        .is_some_and(|c| c.uid == us || c.uid == 0 || Some(c.uid) == runs_as);
                    if !allowed {
                        continue;
                    }
                    for message in datagram.messages() {
                        if let Some(fact) = fact_of(message) {
                            if events.send(Event::Readiness { run, fact }).is_err() {
                                return;
                            }
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return,
            }
        }
    }
}

/// What a message of the sd_notify protocol tells the supervisor.
fn fact_of(message: NotifyMessage) -> Option<ReadyFact> {
    Some(match message {
        NotifyMessage::Ready => ReadyFact::Ready,
        NotifyMessage::Status(text) => ReadyFact::Status(text),
        NotifyMessage::Stopping | NotifyMessage::Reloading => ReadyFact::NotReady,
        NotifyMessage::MainPid(pid) => ReadyFact::MainPid(pid),
        NotifyMessage::Watchdog => ReadyFact::WatchdogPing,
        NotifyMessage::WatchdogTrigger => ReadyFact::WatchdogTrigger,
        NotifyMessage::ExtendTimeout(by) => ReadyFact::ExtendTimeout(by),
        NotifyMessage::Barrier => return None,
    })
}

/// Reads the run's notify fd until a newline (ready) or EOF (it never will be).
async fn notify_fd(reader: OwnedFd, run: RunId, events: mpsc::UnboundedSender<Event>) {
    let Ok(mut pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(reader) else {
        return;
    };
    let mut buf = [0u8; 256];
    let mut seen = 0;
    while seen < MAX_NOTIFY_FD_BYTES {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) if buf[..n].contains(&b'\n') => {
                let _ = events.send(Event::Readiness {
                    run,
                    fact: ReadyFact::Ready,
                });
                return;
            }
            Ok(n) => seen += n,
        }
    }
}

/// Tries a readiness probe every period from the spawn until it succeeds.
async fn until_ready(
    probe: ProbeSpec,
    ctx: ProbeContext,
    run: RunId,
    events: mpsc::UnboundedSender<Event>,
) {
    let mut next = Instant::now();
    loop {
        if try_once(&probe.kind, probe.timeout, &ctx).await.is_ok() {
            let _ = events.send(Event::Readiness {
                run,
                fact: ReadyFact::Ready,
            });
            return;
        }
        next = later(next, probe.period);
        tokio::time::sleep_until(next).await;
    }
}

/// Tries a liveness probe every period, from one period after the spawn, and reports each
/// result.
async fn health_checks(
    probe: ProbeSpec,
    ctx: ProbeContext,
    run: RunId,
    events: mpsc::UnboundedSender<Event>,
) {
    let mut next = Instant::now();
    loop {
        next = later(next, probe.period);
        tokio::time::sleep_until(next).await;
        let result = try_once(&probe.kind, probe.timeout, &ctx).await;
        if events.send(Event::HealthChecked { run, result }).is_err() {
            return;
        }
    }
}

/// The next try: one period after the last was due, or now if a slow try ran past it (tries
/// never pile up).
fn later(last: Instant, period: Duration) -> Instant {
    let now = Instant::now();
    last.checked_add(period).map_or(now, |next| next.max(now))
}
