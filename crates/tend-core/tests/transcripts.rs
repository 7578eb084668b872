//! Scenario transcripts: a sequence of facts at explicit times, and what the supervisor does.

mod common;

use common::*;
use std::time::Duration;
use tend_core::*;

fn crashing(initial: u64, max: u64, count: u32) -> ProcessSpec {
    let mut p = proc("crash");
    p.backoff = Backoff {
        initial: ms(initial),
        max: ms(max),
        factor: 2.0,
    };
    p.max_restarts = MaxRestarts {
        count,
        within: Duration::from_secs(60),
    };
    p
}

#[test]
fn crashing_process_backs_off_with_growing_delay_then_fails_after_max_restarts() {
    let mut h = Harness::new(vec![crashing(100, 1000, 5)]);
    let mut effects = h.feed(Input::Up(None));
    let mut starts = 0;
    let mut delays = Vec::new();
    loop {
        let (runs, _) = h.spawn_all(&effects);
        if runs.is_empty() {
            break;
        }
        assert_eq!(runs.len(), 1);
        starts += 1;
        h.now += ms(10);
        let ended = h.feed(Input::Exited {
            group_left: false,
            run: runs[0],
            status: ExitStatus::Code(1),
        });
        delays.extend(restart_delays(&ended));
        effects = ended;
        if let Some(&d) = delays.last() {
            if h.state(0, 0) == State::Backoff {
                assert!(
                    spawns(&h.advance(d - ms(1))).is_empty(),
                    "no spawn before the delay"
                );
                effects = h.advance(ms(1));
            }
        }
    }
    assert_eq!(starts, 6, "the first start and 5 restarts");
    assert_eq!(delays, vec![ms(100), ms(200), ms(400), ms(800), ms(1000)]);
    assert_eq!(h.state(0, 0), State::Failed);
    assert_eq!(h.sup.next_deadline(), None, "nothing left to do");
}

#[test]
fn backoff_resets_after_a_run_that_stayed_up_start_secs() {
    let mut p = crashing(100, 10_000, 100);
    p.start_secs = Duration::from_secs(1);
    let mut h = Harness::new(vec![p]);
    let runs = h.up();
    let e = h.feed(Input::Exited {
        group_left: false,
        run: runs[0],
        status: ExitStatus::Code(1),
    });
    assert_eq!(restart_delays(&e), vec![ms(100)]);
    let (runs, _) = {
        let e = h.advance(ms(100));
        h.spawn_all(&e)
    };
    let e = h.feed(Input::Exited {
        group_left: false,
        run: runs[0],
        status: ExitStatus::Code(1),
    });
    assert_eq!(restart_delays(&e), vec![ms(200)]);
    let (runs, _) = {
        let e = h.advance(ms(200));
        h.spawn_all(&e)
    };
    // This run stays up past start_secs: it becomes Running, and its exit restarts the backoff.
    let e = h.advance(Duration::from_secs(1));
    assert!(e.contains(&Effect::Notify(Notice::Running {
        instance: InstanceId {
            process: 0,
            replica: 0
        }
    })));
    assert_eq!(h.state(0, 0), State::Running);
    let e = h.feed(Input::Exited {
        group_left: false,
        run: runs[0],
        status: ExitStatus::Code(1),
    });
    assert_eq!(restart_delays(&e), vec![ms(100)]);
}

#[test]
fn zero_backoff_restarts_in_the_same_step() {
    let mut p = crashing(0, 0, 1000);
    p.start_secs = Duration::ZERO;
    let mut h = Harness::new(vec![p]);
    let runs = h.up();
    assert_eq!(
        h.state(0, 0),
        State::Running,
        "start_secs = 0: running at once"
    );
    let e = h.feed(Input::Exited {
        group_left: false,
        run: runs[0],
        status: ExitStatus::Code(0),
    });
    let again = spawns(&e);
    assert_eq!(again.len(), 1, "respawned without a timer: {e:?}");
    assert_ne!(again[0], runs[0], "a new run id");
}

#[test]
fn restart_window_forgets_old_restarts() {
    let mut p = crashing(0, 0, 2);
    p.max_restarts.within = Duration::from_secs(10);
    let mut h = Harness::new(vec![p]);
    let mut e = h.feed(Input::Up(None));
    for _ in 0..10 {
        // Each crash comes 6 s after the previous one: never more than 2 within 10 s.
        let (runs, _) = h.spawn_all(&e);
        h.now += Duration::from_secs(6);
        e = h.feed(Input::Exited {
            group_left: false,
            run: runs[0],
            status: ExitStatus::Code(1),
        });
        assert_eq!(spawns(&e).len(), 1, "still restarting");
    }
    // Restarts were decided 6 s and 0 s ago: a third within 10 s is one too many.
    let (runs, _) = h.spawn_all(&e);
    h.now += ms(1);
    let e = h.feed(Input::Exited {
        group_left: false,
        run: runs[0],
        status: ExitStatus::Code(1),
    });
    assert!(spawns(&e).is_empty());
    assert_eq!(h.state(0, 0), State::Failed, "a third restart within 10 s");
}

#[test]
fn stop_sends_stop_signal_then_sigkill_after_timeout() {
    let mut p = proc("stubborn");
    p.stop_signal = Signal::Int;
    p.stop_timeout = Duration::from_secs(3);
    let mut h = Harness::new(vec![p]);
    let runs = h.up();
    let e = h.feed(Input::StopRequested(Target::All));
    assert_eq!(signals(&e), vec![(runs[0], Signal::Int)]);
    assert_eq!(h.state(0, 0), State::Stopping);
    assert!(signals(&h.advance(ms(2999))).is_empty());
    assert_eq!(signals(&h.advance(ms(1))), vec![(runs[0], Signal::Kill)]);
    let e = h.feed(Input::Exited {
        group_left: false,
        run: runs[0],
        status: ExitStatus::Signaled(9),
    });
    assert!(spawns(&e).is_empty(), "a stopped process is not restarted");
    assert_eq!(h.state(0, 0), State::Stopped);
}

#[test]
fn shutdown_stops_everything_and_exits_once_all_runs_ended() {
    let mut h = Harness::new(vec![proc("a"), {
        let mut b = proc("b");
        b.replicas = 2;
        b
    }]);
    let runs = h.up();
    assert_eq!(runs.len(), 3);
    let e = h.feed(Input::ShutdownRequested { force: false });
    assert_eq!(signals(&e).len(), 3);
    assert!(!has_exit(&e));
    assert!(!has_exit(&h.feed(Input::Exited {
        group_left: false,
        run: runs[0],
        status: ExitStatus::Code(0)
    })));
    assert!(!has_exit(&h.feed(Input::Exited {
        group_left: false,
        run: runs[1],
        status: ExitStatus::Signaled(15)
    })));
    let e = h.feed(Input::Exited {
        group_left: false,
        run: runs[2],
        status: ExitStatus::Code(143),
    });
    assert!(has_exit(&e), "{e:?}");
    assert!(spawns(&e).is_empty());
}

#[test]
fn second_shutdown_with_force_kills_every_group_at_once() {
    let mut h = Harness::new(vec![proc("a"), proc("b")]);
    let runs = h.up();
    h.feed(Input::ShutdownRequested { force: false });
    let e = h.feed(Input::ShutdownRequested { force: true });
    assert_eq!(
        signals(&e),
        vec![(runs[0], Signal::Kill), (runs[1], Signal::Kill)]
    );
}

#[test]
fn shutdown_with_nothing_running_exits_at_once() {
    let mut h = Harness::new(vec![{
        let mut p = proc("manual");
        p.autostart = false;
        p
    }]);
    assert!(
        spawns(&h.feed(Input::Up(None))).is_empty(),
        "autostart = false"
    );
    assert!(has_exit(&h.feed(Input::ShutdownRequested { force: false })));
}

#[test]
fn shutdown_during_backoff_cancels_the_restart() {
    let mut h = Harness::new(vec![crashing(500, 500, 5)]);
    let runs = h.up();
    h.feed(Input::Exited {
        group_left: false,
        run: runs[0],
        status: ExitStatus::Code(1),
    });
    assert_eq!(h.state(0, 0), State::Backoff);
    let e = h.feed(Input::ShutdownRequested { force: false });
    assert!(has_exit(&e));
    assert_eq!(h.state(0, 0), State::Stopped);
    assert!(
        spawns(&h.advance(ms(1000))).is_empty(),
        "no restart after shutdown"
    );
}

#[test]
fn stale_exit_of_an_earlier_run_is_ignored() {
    let mut h = Harness::new(vec![proc("web")]);
    let first = h.up();
    let e = h.feed(Input::RestartRequested(Target::All));
    assert_eq!(signals(&e), vec![(first[0], Signal::Term)]);
    let (second, _) = {
        let e = h.feed(Input::Exited {
            group_left: false,
            run: first[0],
            status: ExitStatus::Signaled(15),
        });
        h.spawn_all(&e)
    };
    assert_eq!(second.len(), 1, "restart spawns at once");
    // A duplicate, late report about the first run changes nothing.
    let e = h.feed(Input::Exited {
        group_left: false,
        run: first[0],
        status: ExitStatus::Code(1),
    });
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(h.state(0, 0), State::Starting);
    assert_eq!(
        h.sup
            .instance(InstanceId {
                process: 0,
                replica: 0
            })
            .unwrap()
            .restarts,
        1
    );
}

#[test]
fn stop_before_the_pid_is_known_signals_once_spawned() {
    let mut h = Harness::new(vec![proc("web")]);
    let e = h.feed(Input::Up(None));
    let run = spawns(&e)[0];
    assert!(signals(&h.feed(Input::StopRequested(Target::All))).is_empty());
    let e = h.feed(Input::Spawned { run, pid: 42 });
    assert_eq!(signals(&e), vec![(run, Signal::Term)]);
    assert_eq!(h.state(0, 0), State::Stopping);
}

#[test]
fn spawn_failure_is_a_failed_start_that_backs_off() {
    let mut h = Harness::new(vec![crashing(100, 100, 1)]);
    let run = spawns(&h.feed(Input::Up(None)))[0];
    let e = h.feed(Input::SpawnFailed {
        run,
        error: "No such file or directory".into(),
    });
    assert_eq!(restart_delays(&e), vec![ms(100)]);
    let run = spawns(&h.advance(ms(100)))[0];
    h.feed(Input::SpawnFailed {
        run,
        error: "No such file or directory".into(),
    });
    assert_eq!(h.state(0, 0), State::Failed);
    let view = h
        .sup
        .instance(InstanceId {
            process: 0,
            replica: 0,
        })
        .unwrap();
    assert_eq!(
        view.last_exit,
        Some(&Err("No such file or directory".to_owned()))
    );
}

#[test]
fn start_of_a_failed_process_gets_a_fresh_budget() {
    let mut h = Harness::new(vec![crashing(0, 0, 0)]);
    let runs = h.up();
    h.feed(Input::Exited {
        group_left: false,
        run: runs[0],
        status: ExitStatus::Code(1),
    });
    assert_eq!(h.state(0, 0), State::Failed, "count = 0: never restarted");
    let e = h.feed(Input::StartRequested(Target::Process(0)));
    assert_eq!(spawns(&e).len(), 1);
}

#[test]
fn resolve_names() {
    let h = Harness::new(vec![proc("web"), {
        let mut w = proc("worker");
        w.replicas = 3;
        w
    }]);
    assert_eq!(h.sup.resolve("all"), Some(Target::All));
    assert_eq!(h.sup.resolve("worker"), Some(Target::Process(1)));
    assert_eq!(
        h.sup.resolve("worker.2"),
        Some(Target::Instance(InstanceId {
            process: 1,
            replica: 2
        }))
    );
    assert_eq!(h.sup.resolve("worker.3"), None);
    assert_eq!(h.sup.resolve("web.x"), None);
    assert_eq!(h.sup.resolve("nope"), None);
    assert_eq!(
        h.sup.instance_name(InstanceId {
            process: 1,
            replica: 2
        }),
        "worker.2"
    );
}

#[test]
fn an_essential_process_that_ends_for_good_stops_everything_with_its_code() {
    let mut essential = proc("job");
    essential.restart = RestartPolicy::Never;
    essential.on_exit = OnExit::Shutdown;
    let other = proc("web");
    let mut h = Harness::new(vec![essential, other]);
    let runs = h.up();
    let e = h.feed(Input::Exited {
        run: runs[0],
        status: ExitStatus::Code(7),
        group_left: false,
    });
    assert!(
        e.iter().any(|e| matches!(
            e,
            Effect::Notify(Notice::EssentialEnded { exit_code: 7, .. })
        )),
        "{e:?}"
    );
    assert_eq!(signals(&e), vec![(runs[1], Signal::Term)], "web is stopped");
    assert_eq!(h.sup.phase(), Phase::StoppingAll);
    let e = h.feed(Input::Exited {
        run: runs[1],
        status: ExitStatus::Signaled(15),
        group_left: false,
    });
    assert!(has_exit(&e));
    assert_eq!(h.sup.exit_code(), 7);
}

#[test]
fn an_essential_process_killed_or_failing_gives_a_shells_code_and_a_restart_does_not_count() {
    let mut essential = proc("job");
    essential.restart = RestartPolicy::OnFailure;
    essential.backoff.initial = ms(0);
    essential.start_secs = ms(0);
    essential.max_restarts.count = 1;
    essential.on_exit = OnExit::Shutdown;
    let mut h = Harness::new(vec![essential]);
    let runs = h.up();
    // Restarted: not the end.
    let e = h.feed(Input::Exited {
        run: runs[0],
        status: ExitStatus::Signaled(9),
        group_left: false,
    });
    assert_eq!(h.sup.phase(), Phase::Running);
    let (runs, _) = h.spawn_all(&e);
    // Gave up: the end, with 128 + SIGKILL.
    let e = h.feed(Input::Exited {
        run: runs[0],
        status: ExitStatus::Signaled(9),
        group_left: false,
    });
    assert!(has_exit(&e), "{e:?}");
    assert_eq!(h.sup.exit_code(), 137);
    assert_eq!(h.state(0, 0), State::Failed);
}

#[test]
fn a_stop_also_stops_what_earlier_runs_left_in_their_groups() {
    let mut p = proc("web");
    p.restart = RestartPolicy::Never;
    p.stop_timeout = ms(500);
    let mut h = Harness::new(vec![p]);
    let run = h.up()[0];
    // The leader exits by itself; a background member lives on: left alone while supervising.
    let effects = h.feed(Input::Exited {
        run,
        status: ExitStatus::Code(0),
        group_left: true,
    });
    assert!(signals(&effects).is_empty());
    let web = InstanceId {
        process: 0,
        replica: 0,
    };
    assert!(h.sup.has_leftovers(web));
    // `tend stop web` stops it too, with the process's stop timeout.
    let effects = h.feed(Input::StopRequested(Target::All));
    assert_eq!(signals(&effects), [(run, Signal::Term)]);
    assert_eq!(signals(&h.advance(ms(500))), [(run, Signal::Kill)]);
    assert!(
        h.sup.has_leftovers(web),
        "until the group is reported empty"
    );
    h.feed(Input::GroupEmpty { run });
    assert!(!h.sup.has_leftovers(web));
}
