//! The driver against a fake world, under tokio's paused clock: backoff, stop timeouts and
//! the shutdown of leftover groups are checked to the millisecond without waiting for them,
//! and without a process. (The end-to-end tests in `tests/` do the same with real ones.)

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tend_core::{
    Backoff, ExitStatus, MaxRestarts, ProcessSpec, RestartPolicy, Signal, Spec, Supervisor,
    SupervisorSpec,
};
use tend_os::{Child, Command, OsError, Pid};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::output::Terminal;
use super::survivors::StateFile;
use super::world::{Event, World};
use super::{Driver, Hangup};

/// How a fake process behaves.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Exits with this code as soon as it is spawned.
    ExitAtOnce(i32),
    /// Runs until a signal ends it; with `ignore_term`, only SIGKILL does.
    RunUntilSignalled { ignore_term: bool },
    /// Prints this line on its stdout, then runs until a signal ends it.
    PrintThenRun(&'static str),
    /// Exits with code 0 at once, leaving a member of its group behind that only SIGKILL
    /// ends.
    LeaveMember,
    /// As `LeaveMember`, but the member's parent left the group and reaps it: tend reaps
    /// nothing when the group empties.
    LeaveMemberReapedElsewhere,
}

/// The fake world's state, shared between the driver (through [`Fake`]) and the test.
struct FakeState {
    behaviour: Behaviour,
    next_pid: Pid,
    /// Live groups by pgid (the leader's pid): whether the leader is alive, and members.
    groups: HashMap<Pid, (bool, u32)>,
    /// Exits waiting to be reaped.
    exited: VecDeque<(Pid, ExitStatus)>,
    /// Write ends of the live leaders' pipes, closed when they exit.
    pipes: HashMap<Pid, Vec<std::io::PipeWriter>>,
    events: mpsc::UnboundedSender<Event>,
    /// What happened, when: "spawn 1001", "SIGTERM 1001", ...
    log: Vec<(Duration, String)>,
    start: Instant,
    /// After this many spawns, the fake sends tend SIGTERM (as a user would).
    stop_after_spawns: usize,
    spawns: usize,
}

impl FakeState {
    fn note(&mut self, what: String) {
        self.log.push((self.start.elapsed(), what));
    }

    /// The leader of `pgid` exits with `status`; tend learns it as from SIGCHLD.
    fn leader_exits(&mut self, pgid: Pid, status: ExitStatus) {
        if let Some(group) = self.groups.get_mut(&pgid) {
            group.0 = false;
            self.pipes.remove(&pgid);
            self.exited.push_back((pgid, status));
            if group.1 == 0 {
                self.groups.remove(&pgid);
            }
            let _ = self.events.send(Event::ChildExited);
        }
    }
}

#[derive(Clone)]
struct Fake(Rc<RefCell<FakeState>>);

impl World for Fake {
    fn spawn(&mut self, _cmd: &Command<'_>) -> Result<Child, OsError> {
        let mut s = self.0.borrow_mut();
        let pid = s.next_pid;
        s.next_pid += 1;
        s.note(format!("spawn {pid}"));
        let (out_r, out_w) = std::io::pipe().expect("a pipe");
        let (err_r, err_w) = std::io::pipe().expect("a pipe");
        let members = u32::from(matches!(
            s.behaviour,
            Behaviour::LeaveMember | Behaviour::LeaveMemberReapedElsewhere
        ));
        s.groups.insert(pid, (true, members));
        if let Behaviour::PrintThenRun(line) = s.behaviour {
            use std::io::Write as _;
            writeln!(&out_w, "{line}").expect("a line to the pipe");
        }
        s.pipes.insert(pid, vec![out_w, err_w]);
        match s.behaviour {
            Behaviour::ExitAtOnce(code) => s.leader_exits(pid, ExitStatus::Code(code)),
            Behaviour::LeaveMember | Behaviour::LeaveMemberReapedElsewhere => {
                s.leader_exits(pid, ExitStatus::Code(0))
            }
            Behaviour::RunUntilSignalled { .. } | Behaviour::PrintThenRun(_) => {}
        }
        s.spawns += 1;
        if s.spawns == s.stop_after_spawns {
            let _ = s.events.send(Event::Signal(Signal::Term));
        }
        Ok(Child {
            pid,
            stdout: out_r.into(),
            stderr: err_r.into(),
        })
    }

    /// The fake has no terminals: an interactive spawn is recorded as any other, and its
    /// output is none.
    fn spawn_on_terminal(
        &mut self,
        cmd: &Command<'_>,
        _terminal: std::os::fd::BorrowedFd<'_>,
    ) -> Result<tend_os::Pid, OsError> {
        self.spawn(cmd).map(|child| child.pid)
    }

    fn signal_group(&mut self, pgid: Pid, signal: Signal) -> Result<bool, OsError> {
        let mut s = self.0.borrow_mut();
        if signal != Signal::Cont {
            s.note(format!("{} {pgid}", signal.name()));
        }
        let Some(&(leader, members)) = s.groups.get(&pgid) else {
            return Ok(false);
        };
        let ignore_term = matches!(
            s.behaviour,
            Behaviour::RunUntilSignalled { ignore_term: true }
                | Behaviour::LeaveMember
                | Behaviour::LeaveMemberReapedElsewhere
        );
        let reaped_elsewhere = matches!(s.behaviour, Behaviour::LeaveMemberReapedElsewhere);
        let dies = signal == Signal::Kill || (signal == Signal::Term && !ignore_term);
        if dies {
            if members > 0 {
                // The members die too: orphans of tend (the subreaper), reaped by it.
                s.groups.get_mut(&pgid).expect("looked up").1 = 0;
                if !leader {
                    s.groups.remove(&pgid);
                }
                if !reaped_elsewhere {
                    s.exited.push_back((pgid + 10_000, ExitStatus::Signaled(9)));
                    let _ = s.events.send(Event::ChildExited);
                }
            }
            if leader {
                let status = ExitStatus::Signaled(if signal == Signal::Kill { 9 } else { 15 });
                s.leader_exits(pgid, status);
            }
        }
        Ok(true)
    }

    fn group_alive(&self, pgid: Pid) -> bool {
        self.0.borrow().groups.contains_key(&pgid)
    }

    fn reap_one(&mut self) -> Result<Option<(Pid, ExitStatus)>, OsError> {
        Ok(self.0.borrow_mut().exited.pop_front())
    }
}

/// One process `p` with quick, exact settings.
fn spec(stop_timeout: Duration, restart: RestartPolicy) -> Spec {
    let mut p = ProcessSpec::new("p", vec!["fake".into()]);
    p.restart = restart;
    p.start_secs = Duration::ZERO;
    p.backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
        factor: 2.0,
    };
    p.max_restarts = MaxRestarts {
        count: 1000,
        within: Duration::from_secs(60),
    };
    p.stop_timeout = stop_timeout;
    Spec {
        supervisor: SupervisorSpec {
            log_dir: std::env::temp_dir().join(format!("tend-driver-test-{}", std::process::id())),
            stop_timeout: Duration::from_secs(5),
            umask: 0o022,
            cgroups: true,
        },
        processes: vec![Arc::new(p)],
    }
}

/// Runs a driver over the fake world until tend exits; returns the fake's log and what tend
/// printed.
async fn run(
    spec: Spec,
    behaviour: Behaviour,
    stop_after_spawns: usize,
) -> (Vec<(Duration, String)>, String) {
    let (log, printed, _) = run_with_events(spec, behaviour, stop_after_spawns).await;
    (log, printed)
}

/// [`run`], also returning the events the driver published.
async fn run_with_events(
    spec: Spec,
    behaviour: Behaviour,
    stop_after_spawns: usize,
) -> (Vec<(Duration, String)>, String, Vec<tend_proto::Event>) {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec;
    spec.supervisor.log_dir = dir.path().join("logs");
    let (events_tx, events) = mpsc::unbounded_channel();
    let state = Rc::new(RefCell::new(FakeState {
        behaviour,
        next_pid: 1001,
        groups: HashMap::new(),
        exited: VecDeque::new(),
        pipes: HashMap::new(),
        events: events_tx.clone(),
        log: Vec::new(),
        start: Instant::now(),
        stop_after_spawns,
        spawns: 0,
    }));
    let printed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = SharedSink(Arc::clone(&printed));
    let (terminal, writer) = Terminal::start_with(4, true, None, false, false, move || {
        Box::new(sink) as Box<dyn std::io::Write>
    });
    let mut driver = Driver::new(
        Supervisor::new(spec),
        Box::new(Fake(Rc::clone(&state))),
        events_tx,
        terminal,
        Hangup::Stop,
        dir.path().join("tend.toml"),
        StateFile::new(dir.path().join("state")),
    );
    let mut published = driver.published.subscribe();
    // In paused time an idle runtime jumps to the next timer: a driver that never exits
    // fails here at once instead of hanging the suite.
    let code = tokio::time::timeout(Duration::from_secs(3600), driver.run(None, false, events))
        .await
        .expect("tend exits")
        .unwrap();
    assert_eq!(code, 0);
    drop(driver);
    writer.finish();
    let log = state.borrow().log.clone();
    let text = String::from_utf8(printed.lock().unwrap().clone()).unwrap();
    let mut seen = Vec::new();
    while let Ok(event) = published.try_recv() {
        seen.push((*event).clone());
    }
    (log, text, seen)
}

/// A `Write` into a shared buffer.
struct SharedSink(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(start_paused = true)]
async fn backoff_doubles_to_its_cap_in_paused_time() {
    // A run that exits before start_secs failed to start: the next delay doubles. (One that
    // stayed up start_secs starts the backoff from its initial value again.)
    let mut spec = spec(Duration::from_secs(1), RestartPolicy::Always);
    Arc::make_mut(&mut spec.processes[0]).start_secs = Duration::from_secs(1);
    let (log, printed) = run(spec, Behaviour::ExitAtOnce(1), 7).await;
    let spawns: Vec<Duration> = log
        .iter()
        .filter(|(_, what)| what.starts_with("spawn"))
        .map(|&(at, _)| at)
        .collect();
    let gaps: Vec<Duration> = spawns.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(
        gaps,
        [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)],
        "{printed}"
    );
    assert!(
        printed.contains("p.0 exited with status 1; restarting in 800ms"),
        "{printed}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stop_escalates_to_sigkill_at_the_stop_timeout_exactly() {
    let (log, printed) = run(
        spec(Duration::from_secs(3), RestartPolicy::Always),
        Behaviour::RunUntilSignalled { ignore_term: true },
        1,
    )
    .await;
    assert_eq!(
        log,
        [
            (ms(0), "spawn 1001".to_owned()),
            (ms(0), "SIGTERM 1001".to_owned()),
            (ms(3000), "SIGKILL 1001".to_owned()),
        ],
        "{printed}"
    );
    assert!(
        printed.contains("p.0 still running 3s after the stop signal"),
        "{printed}"
    );
    assert!(
        printed.contains("all processes stopped; exiting"),
        "{printed}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_group_left_behind_is_stopped_with_everything_and_killed_at_its_deadline() {
    // The leader exits at once (restart = never), a member of its group lives on and ignores
    // SIGTERM: at the shutdown it gets SIGTERM, and SIGKILL after its process's stop timeout
    // (1 s; the supervisor's, 5 s, is for groups whose instance is gone); tend exits once the group is empty, whether tend reaps the last member
    // (it is the subreaper) or a parent that left the group does, and no event says so.
    for behaviour in [
        Behaviour::LeaveMember,
        Behaviour::LeaveMemberReapedElsewhere,
    ] {
        let (log, printed) = run(
            spec(Duration::from_secs(1), RestartPolicy::Never),
            behaviour,
            1,
        )
        .await;
        assert_eq!(
            log,
            [
                (ms(0), "spawn 1001".to_owned()),
                (ms(0), "SIGTERM 1001".to_owned()),
                (ms(1000), "SIGKILL 1001".to_owned()),
            ],
            "{printed}"
        );
        assert!(
            printed.contains("all processes stopped; exiting"),
            "{printed}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn every_notice_is_a_structured_event_and_the_terminal_shows_its_rendering() {
    use tend_proto::{EventKind, LastExit, NextStep};
    let mut spec = spec(Duration::from_secs(1), RestartPolicy::OnFailure);
    Arc::make_mut(&mut spec.processes[0]).max_restarts.count = 1;
    let (_, printed, events) = run_with_events(spec, Behaviour::ExitAtOnce(3), 2).await;
    let kinds: Vec<(Option<&str>, &EventKind)> = events
        .iter()
        .map(|e| (e.instance.as_deref(), &e.kind))
        .collect();
    let p0 = Some("p.0");
    assert_eq!(
        kinds,
        [
            (p0, &EventKind::Spawned { pid: 1001 }),
            (
                p0,
                &EventKind::Exited {
                    how: LastExit::Code(3),
                    next: NextStep::RestartInMs(100),
                    oom_kills: 0,
                }
            ),
            (p0, &EventKind::Spawned { pid: 1002 }),
            (
                p0,
                &EventKind::GaveUp {
                    how: LastExit::Code(3),
                    process: "p".into(),
                    restarts: 1,
                    within_ms: 60_000,
                    retry_in_ms: None,
                    oom_kills: 0,
                }
            ),
        ],
        "{printed}"
    );
    for event in &events {
        assert!(
            printed.contains(&super::events::render(event)),
            "{event:?} not shown: {printed}"
        );
    }
    assert!(printed.contains(
        "p.0 exited with status 3; giving up: 1 restarts within 1m (state failed; `tend start p` tries again)"
    ));
}

#[tokio::test(start_paused = true)]
async fn a_dependent_spawns_when_a_line_makes_its_dependency_ready_and_stops_first() {
    // `a` is ready once it prints "accepting connections"; `b` needs it ready. Every fake
    // process prints that line at once: `b` must still wait for `a`'s, not its own.
    let mut spec = spec(Duration::from_secs(1), RestartPolicy::Always);
    let mut a = (*spec.processes[0]).clone();
    a.name = "a".into();
    a.ready = Some(tend_core::ReadySpec {
        check: tend_core::ReadyCheck::LogLine("accepting connections".into()),
        start_timeout: None,
        watchdog: None,
    });
    let mut b = (*spec.processes[0]).clone();
    b.name = "b".into();
    b.depends_on = vec![tend_core::Dependency {
        name: "a".into(),
        condition: tend_core::Condition::Ready,
    }];
    spec.processes = vec![Arc::new(b), Arc::new(a)];
    let (log, printed, events) =
        run_with_events(spec, Behaviour::PrintThenRun("accepting connections"), 2).await;
    let what: Vec<&str> = log.iter().map(|(_, what)| what.as_str()).collect();
    // a is 1001 (spawned first though listed second), b 1002; b stops before a.
    assert_eq!(
        what,
        ["spawn 1001", "spawn 1002", "SIGTERM 1002", "SIGTERM 1001"],
        "{printed}"
    );
    let kinds: Vec<(Option<&str>, &tend_proto::EventKind)> = events
        .iter()
        .map(|e| (e.instance.as_deref(), &e.kind))
        .collect();
    let waiting = kinds
        .iter()
        .position(|k| matches!(k, (Some("b.0"), tend_proto::EventKind::Waiting { .. })));
    let ready = kinds
        .iter()
        .position(|k| matches!(k, (Some("a.0"), tend_proto::EventKind::Ready)));
    let spawned_b = kinds
        .iter()
        .position(|k| matches!(k, (Some("b.0"), tend_proto::EventKind::Spawned { .. })));
    assert!(
        waiting < ready && ready < spawned_b && spawned_b.is_some(),
        "{printed}"
    );
}
