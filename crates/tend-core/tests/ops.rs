//! Runtime operations: `retry_after` for a failed instance, the plan of a reload without
//! applying it, `tend scale`, and an environment read again for `tend restart`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use tend_core::*;

fn id(process: usize, replica: u32) -> InstanceId {
    InstanceId { process, replica }
}

/// A process that gives up after one restart within a minute, then is tried again after
/// `retry` (if any).
fn crasher(retry: Option<Duration>) -> ProcessSpec {
    let mut p = ProcessSpec::new("job", vec!["false".into()]);
    p.backoff.initial = ms(100);
    p.max_restarts = MaxRestarts {
        count: 1,
        within: Duration::from_secs(60),
    };
    p.retry_after = retry;
    p
}

/// Spawns what `effects` ask for, and lets each new run exit with 1 at once, until the
/// instance stops restarting; returns the effects of the last exit.
fn crash_until_it_stays(h: &mut Harness, mut effects: Vec<Effect>) -> Vec<Effect> {
    for _ in 0..10 {
        let (runs, _) = h.spawn_all(&effects);
        let [run] = runs[..] else {
            panic!("one spawn expected: {effects:?}")
        };
        let ended = h.feed(Input::Exited {
            run,
            status: ExitStatus::Code(1),
            group_left: false,
        });
        match restart_delays(&ended)[..] {
            [] => return ended,
            [delay] => effects = h.advance(delay),
            _ => unreachable!(),
        }
    }
    panic!("it never stopped restarting")
}

fn retrying(effects: &[Effect]) -> Option<Duration> {
    effects.iter().find_map(|e| match e {
        Effect::Notify(Notice::Retrying { after, .. }) => Some(*after),
        _ => None,
    })
}

#[test]
fn a_failed_instance_is_tried_again_after_retry_after_with_a_fresh_budget() {
    let retry = Duration::from_secs(300);
    let mut h = Harness::new(vec![crasher(Some(retry))]);
    let first = h.feed(Input::Up(None));
    crash_until_it_stays(&mut h, first);
    let failed_at = h.now;
    let view = h.sup.instance(id(0, 0)).unwrap();
    assert_eq!(view.state, State::Failed);
    assert_eq!(view.deadline, Some(failed_at + retry), "status shows when");
    assert_eq!(view.restarts, 1);

    // Nothing before the cool-down is over.
    assert!(h.advance(retry - ms(1)).is_empty());
    assert_eq!(h.state(0, 0), State::Failed);
    let e = h.advance(ms(1));
    assert_eq!(retrying(&e), Some(retry), "the event says why: {e:?}");
    assert_eq!(spawns(&e).len(), 1);
    let view = h.sup.instance(id(0, 0)).unwrap();
    assert!(view.want_up);
    assert_eq!(view.restarts, 2, "a retry counts as a restart");

    // A fresh budget: it restarts once more (max_restarts.count = 1) before it fails again,
    // though the first failures were within the window; and the first delay is `initial`.
    let (runs, _) = h.spawn_all(&e);
    let ended = h.feed(Input::Exited {
        run: runs[0],
        status: ExitStatus::Code(1),
        group_left: false,
    });
    assert_eq!(restart_delays(&ended), vec![ms(100)]);
    let again = h.advance(ms(100));
    crash_until_it_stays(&mut h, again);
    assert_eq!(h.state(0, 0), State::Failed);
    assert_eq!(
        h.sup.instance(id(0, 0)).unwrap().deadline,
        Some(h.now + retry),
        "armed again at each give-up"
    );
}

#[test]
fn a_retry_restarts_the_dependents_that_restart_with_it() {
    let retry = Duration::from_secs(300);
    let mut db = crasher(Some(retry));
    db.name = "db".into();
    db.max_restarts.count = 0; // fails at its first exit
    let mut web = sleeper("web");
    web.depends_on.push(Dependency {
        name: "db".into(),
        condition: Condition::Started,
    });
    web.restart_with = vec!["db".into()];
    let mut h = Harness::new(vec![db, web]);
    let e = h.feed(Input::Up(None));
    let (db_runs, more) = h.spawn_all(&e);
    let (web_runs, _) = h.spawn_all(&more);
    let (&[db_run], &[web_run]) = (&db_runs[..], &web_runs[..]) else {
        panic!("db, then web: {e:?} {more:?}")
    };
    let e = h.feed(Input::Exited {
        run: db_run,
        status: ExitStatus::Code(1),
        group_left: false,
    });
    assert_eq!(h.state(0, 0), State::Failed);
    assert!(signals(&e).is_empty(), "web runs on while db is failed");
    let e = h.advance(retry);
    assert_eq!(retrying(&e), Some(retry));
    assert_eq!(spawns(&e).len(), 1, "db again");
    assert_eq!(
        signals(&e),
        vec![(web_run, Signal::Term)],
        "web restarts with db, as when db restarts by its policy"
    );
}

#[test]
fn without_retry_after_a_failed_instance_stays_failed() {
    let mut h = Harness::new(vec![crasher(None)]);
    let first = h.feed(Input::Up(None));
    crash_until_it_stays(&mut h, first);
    assert_eq!(h.state(0, 0), State::Failed);
    assert_eq!(h.sup.instance(id(0, 0)).unwrap().deadline, None);
    assert_eq!(h.sup.next_deadline(), None);
}

#[test]
fn a_stop_takes_the_retry_back_and_a_start_starts_at_once() {
    let retry = Duration::from_secs(60);
    let mut h = Harness::new(vec![crasher(Some(retry))]);
    let first = h.feed(Input::Up(None));
    crash_until_it_stays(&mut h, first);
    assert!(h.feed(Input::StopRequested(Target::All)).is_empty());
    assert_eq!(h.state(0, 0), State::Failed, "stays failed, not retried");
    assert_eq!(h.sup.next_deadline(), None);
    assert!(h.advance(retry * 2).is_empty());

    // Failed again; a start before the retry is due starts at once and disarms the retry.
    let e = h.feed(Input::StartRequested(Target::All));
    assert_eq!(spawns(&e).len(), 1);
    crash_until_it_stays(&mut h, e);
    let e = h.feed(Input::StartRequested(Target::All));
    assert_eq!(spawns(&e).len(), 1);
    let (runs, _) = h.spawn_all(&e);
    assert!(h
        .advance(retry * 2)
        .iter()
        .all(|e| retrying(std::slice::from_ref(e)).is_none()));
    assert!(h.sup.instance(id(0, 0)).unwrap().run == Some(runs[0]));
}

#[test]
fn a_shutdown_takes_the_retry_back() {
    let mut h = Harness::new(vec![crasher(Some(ms(500)))]);
    let first = h.feed(Input::Up(None));
    crash_until_it_stays(&mut h, first);
    let e = h.feed(Input::ShutdownRequested { force: false });
    assert!(has_exit(&e), "nothing lives: {e:?}");
    assert!(h.advance(ms(1000)).is_empty());
}

#[test]
fn an_essential_process_with_retry_after_does_not_end_tend_when_it_fails() {
    let mut p = crasher(Some(ms(500)));
    p.on_exit = OnExit::Shutdown;
    let mut h = Harness::new(vec![p]);
    let first = h.feed(Input::Up(None));
    let e = crash_until_it_stays(&mut h, first);
    assert!(
        !e.iter()
            .any(|e| matches!(e, Effect::Notify(Notice::EssentialEnded { .. }))),
        "{e:?}"
    );
    assert_eq!(h.sup.phase(), Phase::Running);

    // Without retry_after it does.
    let mut p = crasher(None);
    p.on_exit = OnExit::Shutdown;
    let mut h = Harness::new(vec![p]);
    let first = h.feed(Input::Up(None));
    crash_until_it_stays(&mut h, first);
    assert_ne!(h.sup.phase(), Phase::Running);
}

#[test]
fn a_dependency_that_will_be_retried_has_not_given_up() {
    let db = {
        let mut p = crasher(Some(Duration::from_secs(5)));
        p.name = "db".into();
        p
    };
    let mut web = proc("web");
    web.depends_on.push(Dependency {
        name: "db".into(),
        condition: Condition::Ready,
    });
    let mut h = Harness::new(vec![db, web]);
    let first = h.feed(Input::Up(None));
    crash_until_it_stays(&mut h, first);
    // db crashed before it was up (start_secs), and db is failed now: web still waits.
    assert_eq!(h.state(1, 0), State::Waiting);
    let unmet = h.sup.waiting_for(id(1, 0));
    assert_eq!(unmet.len(), 1);
    assert_eq!(unmet[0].state, State::Failed);
    assert!(!unmet[0].gave_up, "it will be tried again: {unmet:?}");
    // Once db is tried again and is up, web starts.
    let e = h.advance(Duration::from_secs(5));
    assert_eq!(spawns(&e).len(), 1);
    h.spawn_all(&e);
    let e = h.advance(Duration::from_secs(1));
    assert_eq!(spawns(&e).len(), 1, "web spawned once db is up: {e:?}");
}

fn sleeper(name: &str) -> ProcessSpec {
    ProcessSpec::new(name, vec!["sleep".into(), "1000".into()])
}

#[test]
fn the_plan_of_a_reload_is_what_the_reload_does_and_changes_nothing() {
    let mut web = sleeper("web");
    web.env = vec![
        ("PORT".into(), "8000".into()),
        ("TOKEN".into(), "s3cret".into()),
    ];
    let mut h = Harness::new(vec![web.clone(), sleeper("worker"), sleeper("old")]);
    let runs = h.up();

    let mut new_web = web.clone();
    new_web.env = vec![
        ("PORT".into(), "8000".into()),
        ("TOKEN".into(), "other".into()),
        ("DEBUG".into(), "1".into()),
    ];
    new_web.argv.push("--flag".into());
    new_web.stop_timeout = Duration::from_secs(3);
    let mut new_worker = sleeper("worker");
    new_worker.replicas = 4;
    let new = spec_of(vec![new_web, new_worker, sleeper("cache")]);

    let deadline = h.sup.next_deadline();
    let before: Vec<(InstanceId, State, Option<u32>)> =
        h.sup.instances().map(|v| (v.id, v.state, v.pid)).collect();
    let plan = h.sup.plan_reload(&new);
    let after: Vec<(InstanceId, State, Option<u32>)> =
        h.sup.instances().map(|v| (v.id, v.state, v.pid)).collect();
    assert_eq!(before, after, "planning changes nothing");
    assert_eq!(h.sup.next_deadline(), deadline);

    assert_eq!(plan.added, vec!["cache"]);
    assert_eq!(plan.removed, vec!["old"]);
    assert_eq!(plan.changed, vec!["web", "worker"]);
    assert!(plan.unchanged.is_empty());
    assert_eq!(
        plan.keys["web"],
        vec!["command", "env (DEBUG, TOKEN)", "stop_timeout"],
        "variable names only, never values"
    );
    assert!(!format!("{plan:?}").contains("s3cret") && !format!("{plan:?}").contains("other"));
    assert_eq!(plan.keys["worker"], vec!["replicas 1 → 4"]);

    // The reload does what the plan said, and says so.
    let e = h.feed(Input::ReloadRequested(new));
    let summary = e
        .iter()
        .find_map(|e| match e {
            Effect::Reloaded(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(summary, plan);
    let stopped: Vec<RunId> = signals(&e).into_iter().map(|(r, _)| r).collect();
    assert_eq!(stopped, vec![runs[0], runs[2]], "web restarts, old stops");
}

#[test]
fn changed_keys_name_every_key_and_fall_back_to_other_settings() {
    let old = sleeper("p");
    assert!(changed_keys(&old, &old).is_empty());
    let mut new = old.clone();
    new.retry_after = Some(ms(5));
    new.replicas = 2;
    new.env_file = Some("/srv/.env".into());
    assert_eq!(
        changed_keys(&old, &new),
        vec!["env_file", "replicas 1 → 2", "retry_after"]
    );
    // The same variables from another source: still a change of env.
    let mut a = old.clone();
    a.env = vec![("A".into(), "1".into())];
    let mut b = a.clone();
    b.env_table = a.env.clone();
    assert_eq!(changed_keys(&a, &b), vec!["env"]);
    // An unset variable is named too.
    assert_eq!(changed_keys(&a, &old), vec!["env (A)"]);
}

#[test]
fn scale_adds_instances_and_stops_the_highest_first() {
    let mut web = sleeper("web");
    web.replicas = 2;
    let mut h = Harness::new(vec![web]);
    h.up();
    let e = h.feed(Input::ScaleRequested {
        process: 0,
        replicas: 4,
    });
    assert_eq!(spawns(&e).len(), 2, "web.2 and web.3 start, since web runs");
    let (new_runs, _) = h.spawn_all(&e);
    let ids: Vec<InstanceId> = h.sup.instances().map(|v| v.id).collect();
    assert_eq!(ids, (0..4).map(|r| id(0, r)).collect::<Vec<_>>());
    assert_eq!(h.sup.process(0).unwrap().replicas, 4);

    let e = h.feed(Input::ScaleRequested {
        process: 0,
        replicas: 1,
    });
    let stopped: Vec<InstanceId> = e
        .iter()
        .filter_map(|e| match e {
            Effect::Notify(Notice::Stopping { instance, .. }) => Some(*instance),
            _ => None,
        })
        .collect();
    assert_eq!(stopped, vec![id(0, 3), id(0, 2), id(0, 1)], "highest first");
    assert!(h.sup.resolve("web.3").is_none(), "retired at once");
    for run in new_runs {
        h.feed(Input::Exited {
            run,
            status: ExitStatus::Signaled(15),
            group_left: false,
        });
    }
    assert!(h.sup.instance(id(0, 3)).is_none(), "forgotten once stopped");

    // The next reload applies the config's replicas again.
    let mut config = sleeper("web");
    config.replicas = 2;
    let plan = h.sup.plan_reload(&spec_of(vec![config]));
    assert_eq!(plan.keys["web"], vec!["replicas 1 → 2"]);
}

#[test]
fn scale_of_a_stopped_process_adds_stopped_instances() {
    let mut web = sleeper("web");
    web.autostart = false;
    let mut h = Harness::new(vec![web]);
    h.up();
    let e = h.feed(Input::ScaleRequested {
        process: 0,
        replicas: 3,
    });
    assert!(spawns(&e).is_empty());
    assert_eq!(h.sup.instances().count(), 3);
    assert!(h.sup.instances().all(|v| v.state == State::Stopped));
}

/// A one-shot `migrate` (restart never) that ran and exited 0.
fn completed_one_shot() -> Harness {
    let mut job = proc("migrate");
    job.restart = RestartPolicy::Never;
    let mut h = Harness::new(vec![job]);
    let [run] = h.up()[..] else { panic!() };
    h.feed(Input::Exited {
        run,
        status: ExitStatus::Code(0),
        group_left: false,
    });
    h
}

#[test]
fn scale_up_of_a_failed_or_completed_process_starts_the_new_instances_but_not_of_a_stopped_one() {
    // Failed, with a retry pending, and failed for good.
    for retry in [Some(Duration::from_secs(300)), None] {
        let mut h = Harness::new(vec![crasher(retry)]);
        let e = h.feed(Input::Up(None));
        crash_until_it_stays(&mut h, e);
        assert_eq!(h.sup.instance(id(0, 0)).unwrap().state, State::Failed);
        let e = h.feed(Input::ScaleRequested {
            process: 0,
            replicas: 3,
        });
        assert_eq!(spawns(&e).len(), 2, "job.1 and job.2 start ({retry:?})");
        assert_eq!(
            h.sup.instance(id(0, 0)).unwrap().state,
            State::Failed,
            "the failed one waits for its retry, or for the user"
        );
    }
    // A one-shot that completed.
    let mut h = completed_one_shot();
    assert_eq!(h.sup.instance(id(0, 0)).unwrap().state, State::Exited);
    let e = h.feed(Input::ScaleRequested {
        process: 0,
        replicas: 2,
    });
    assert_eq!(spawns(&e).len(), 1, "migrate.1 runs");
    // Failed, or completed, then stopped by the user (it stays failed or exited): the new
    // instances stay down with it; a start lifts that.
    let mut h = Harness::new(vec![crasher(Some(Duration::from_secs(300)))]);
    let e = h.feed(Input::Up(None));
    crash_until_it_stays(&mut h, e);
    h.feed(Input::StopRequested(Target::All));
    assert_eq!(h.sup.instance(id(0, 0)).unwrap().state, State::Failed);
    let e = h.feed(Input::ScaleRequested {
        process: 0,
        replicas: 2,
    });
    assert!(spawns(&e).is_empty(), "the user stopped it: {e:?}");
    let e = h.feed(Input::StartRequested(Target::Instance(id(0, 0))));
    h.spawn_all(&e);
    let e = h.feed(Input::ScaleRequested {
        process: 0,
        replicas: 3,
    });
    assert_eq!(spawns(&e).len(), 1, "started again: job.2 starts");
    let mut h = completed_one_shot();
    h.feed(Input::StopRequested(Target::All));
    let e = h.feed(Input::ScaleRequested {
        process: 0,
        replicas: 2,
    });
    assert!(spawns(&e).is_empty(), "the user stopped it: {e:?}");
    // Stopped by the user while running: the new instances stay stopped with it.
    let mut h = Harness::new(vec![sleeper("web")]);
    let [run] = h.up()[..] else { panic!() };
    let e = h.feed(Input::StopRequested(Target::All));
    assert_eq!(signals(&e), vec![(run, Signal::Term)]);
    h.feed(Input::Exited {
        run,
        status: ExitStatus::Signaled(15),
        group_left: false,
    });
    let e = h.feed(Input::ScaleRequested {
        process: 0,
        replicas: 2,
    });
    assert!(spawns(&e).is_empty(), "{e:?}");
}

#[test]
fn scale_to_zero_keeps_the_process_and_its_dependents_wait() {
    let mut web = proc("web");
    web.depends_on.push(Dependency {
        name: "db".into(),
        condition: Condition::Started,
    });
    let mut h = Harness::new(vec![sleeper("db"), web]);
    let (runs, more) = {
        let e = h.feed(Input::Up(None));
        h.spawn_all(&e)
    };
    h.spawn_all(&more);
    assert_eq!(h.state(1, 0), State::Starting);
    // web must stop before db? No: db alone goes (web keeps running: a stop of db alone).
    let e = h.feed(Input::ScaleRequested {
        process: 0,
        replicas: 0,
    });
    assert_eq!(signals(&e), vec![(runs[0], Signal::Term)]);
    h.feed(Input::Exited {
        run: runs[0],
        status: ExitStatus::Signaled(15),
        group_left: false,
    });
    assert_eq!(h.sup.instances().filter(|v| v.id.process == 0).count(), 0);
    assert_eq!(h.sup.resolve("db"), Some(Target::Process(0)), "still known");

    // A start of web now waits for db, which gave up (it has no instance).
    let e = h.feed(Input::RestartRequested(Target::Process(1)));
    let web_run = h.sup.instance(id(1, 0)).unwrap().run.unwrap();
    assert_eq!(signals(&e), vec![(web_run, Signal::Term)]);
    let e = h.feed(Input::Exited {
        run: web_run,
        status: ExitStatus::Signaled(15),
        group_left: false,
    });
    assert_eq!(h.state(1, 0), State::Waiting);
    let unmet = h.sup.waiting_for(id(1, 0));
    assert_eq!(
        (unmet[0].state, unmet[0].gave_up, unmet[0].no_instances),
        (State::Stopped, true, true),
        "{unmet:?}"
    );
    // Told as a dependency with no instance: it takes a scale, not a start.
    let told: Vec<_> = e
        .iter()
        .filter_map(|e| match e {
            Effect::Notify(Notice::DependencyGaveUp {
                dependency,
                no_instances,
                ..
            }) => Some((dependency.clone(), *no_instances)),
            _ => None,
        })
        .collect();
    assert_eq!(told, [("db".to_owned(), true)]);

    // Scaled back up: db (autostart) starts, and web follows.
    let e = h.feed(Input::ScaleRequested {
        process: 0,
        replicas: 1,
    });
    assert_eq!(spawns(&e).len(), 1);
    let (_, more) = h.spawn_all(&e);
    assert_eq!(spawns(&more).len(), 1, "web spawned: {more:?}");
}

#[test]
fn an_environment_read_again_is_for_the_next_spawns_only() {
    let mut h = Harness::new(vec![sleeper("web")]);
    let runs = h.up();
    let env = vec![("GREETING".to_owned(), "hi".to_owned())];
    assert!(h
        .feed(Input::EnvRead {
            process: 0,
            env: env.clone(),
            read_from: Arc::new(sleeper("web")),
        })
        .is_empty());
    assert_eq!(h.sup.instance(id(0, 0)).unwrap().run, Some(runs[0]));
    let e = h.feed(Input::RestartRequested(Target::Process(0)));
    assert_eq!(signals(&e), vec![(runs[0], Signal::Term)]);
    let e = h.feed(Input::Exited {
        run: runs[0],
        status: ExitStatus::Signaled(15),
        group_left: false,
    });
    let spec = e
        .iter()
        .find_map(|e| match e {
            Effect::Spawn { spec, .. } => Some(spec.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(spec.env, env);
}

#[test]
fn instances_left_on_the_env_they_were_started_with_restart_at_the_next_reload() {
    let mut web = sleeper("web");
    web.replicas = 2;
    let mut h = Harness::new(vec![web.clone()]);
    let runs = h.up();
    let env = vec![("GREETING".to_owned(), "hi".to_owned())];
    // `tend restart web.1` read the env file again: web.1 gets it, web.0 keeps its own.
    h.feed(Input::EnvRead {
        process: 0,
        env: env.clone(),
        read_from: Arc::new(web.clone()),
    });
    h.feed(Input::RestartRequested(Target::Instance(id(0, 1))));
    let e = h.feed(Input::Exited {
        run: runs[1],
        status: ExitStatus::Signaled(15),
        group_left: false,
    });
    h.spawn_all(&e);
    // The config now says what the env file said: web.0 is the one that differs.
    let mut edited = web.clone();
    edited.env = env;
    let plan = h.sup.plan_reload(&spec_of(vec![edited.clone()]));
    assert_eq!(plan.changed, ["web"]);
    assert_eq!(plan.keys["web"], ["env (GREETING)"]);
    let e = h.feed(Input::ReloadRequested(spec_of(vec![edited])));
    let stopped: Vec<RunId> = signals(&e).into_iter().map(|(run, _)| run).collect();
    assert!(stopped.contains(&runs[0]), "web.0 restarts: {e:?}");
}

#[test]
fn an_environment_read_before_a_reload_changed_its_sources_is_dropped() {
    let mut h = Harness::new(vec![sleeper("web")]);
    h.up();
    let mut reloaded = sleeper("web");
    reloaded.env_table = vec![("A".to_owned(), "3".to_owned())];
    reloaded.env = reloaded.env_table.clone();
    h.feed(Input::ReloadRequested(spec_of(vec![reloaded.clone()])));
    // A restart read the env with the old sources, and its read comes after the reload.
    h.feed(Input::EnvRead {
        process: 0,
        env: vec![("A".to_owned(), "2".to_owned())],
        read_from: Arc::new(sleeper("web")),
    });
    assert_eq!(
        h.sup.process(0).unwrap().env,
        reloaded.env,
        "what the reload set stands"
    );
}
