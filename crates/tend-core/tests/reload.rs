//! Reload: the supervisor applies a new spec, touching only what changed.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use tend_core::*;

fn reload(h: &mut Harness, procs: Vec<ProcessSpec>) -> (ReloadSummary, Vec<Effect>) {
    let effects = h.feed(Input::ReloadRequested(spec_of(procs)));
    let summary = effects
        .iter()
        .find_map(|e| match e {
            Effect::Reloaded(s) => Some(s.clone()),
            _ => None,
        })
        .expect("a reload is answered");
    (summary, effects)
}

fn sleeper(name: &str) -> ProcessSpec {
    ProcessSpec::new(name, vec!["sleep".into(), "1000".into()])
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn unchanged_stays_changed_restarts_added_starts_removed_stops() {
    let mut h = Harness::new(vec![sleeper("keep"), sleeper("edit"), sleeper("drop")]);
    let runs = h.up();
    let mut edited = sleeper("edit");
    edited.argv.push("--new".into());
    let (summary, e) = reload(&mut h, vec![sleeper("keep"), edited, sleeper("new")]);
    assert_eq!(summary.unchanged, names(&["keep"]));
    assert_eq!(summary.changed, names(&["edit"]));
    assert_eq!(summary.added, names(&["new"]));
    assert_eq!(summary.removed, names(&["drop"]));
    // keep: untouched. edit and drop: stop signal. new: spawned.
    let signalled: Vec<RunId> = signals(&e).into_iter().map(|(r, _)| r).collect();
    assert_eq!(signalled, vec![runs[1], runs[2]]);
    let spawned: Vec<_> = e
        .iter()
        .filter_map(|e| match e {
            Effect::Spawn { spec, .. } => Some(spec.name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(spawned, names(&["new"]));

    // The edited process comes back with the new argv once its old run ended.
    let e = h.feed(Input::Exited {
        group_left: false,
        run: runs[1],
        status: ExitStatus::Signaled(15),
    });
    let respawn = e.iter().find_map(|e| match e {
        Effect::Spawn { spec, .. } => Some(Arc::clone(spec)),
        _ => None,
    });
    assert_eq!(
        respawn
            .expect("edit restarts")
            .argv
            .last()
            .map(String::as_str),
        Some("--new")
    );

    // The dropped process is forgotten once its run ended.
    assert!(
        h.sup.resolve("drop").is_none(),
        "a removed name no longer resolves"
    );
    let e = h.feed(Input::Exited {
        group_left: false,
        run: runs[2],
        status: ExitStatus::Signaled(15),
    });
    assert!(spawns(&e).is_empty());
    let listed: Vec<String> = h
        .sup
        .instances()
        .map(|v| h.sup.instance_name(v.id))
        .collect();
    assert_eq!(
        listed,
        names(&["keep.0", "edit.0", "new.0"]),
        "config order"
    );
}

#[test]
fn replicas_only_scales_without_touching_the_others() {
    let mut web = sleeper("web");
    web.replicas = 2;
    let mut h = Harness::new(vec![web.clone()]);
    let runs = h.up();
    web.replicas = 4;
    let (summary, e) = reload(&mut h, vec![web.clone()]);
    assert_eq!(summary.changed, names(&["web"]));
    assert!(
        signals(&e).is_empty(),
        "web.0 and web.1 keep running: {e:?}"
    );
    assert_eq!(spawns(&e).len(), 2, "web.2 and web.3 start");
    h.spawn_all(&e);

    web.replicas = 1;
    let (_, e) = reload(&mut h, vec![web]);
    assert_eq!(signals(&e).len(), 3, "web.1..web.3 stop: {e:?}");
    assert!(
        !signals(&e).iter().any(|(r, _)| *r == runs[0]),
        "web.0 stays"
    );
    assert!(h.sup.resolve("web.1").is_none());
}

#[test]
fn a_stopped_process_stays_stopped_when_changed() {
    let mut h = Harness::new(vec![sleeper("web")]);
    let runs = h.up();
    h.feed(Input::StopRequested(Target::All));
    h.feed(Input::Exited {
        group_left: false,
        run: runs[0],
        status: ExitStatus::Signaled(15),
    });
    let mut edited = sleeper("web");
    edited.stop_timeout = ms(1);
    let (summary, e) = reload(&mut h, vec![edited]);
    assert_eq!(summary.changed, names(&["web"]));
    assert!(spawns(&e).is_empty(), "{e:?}");
    assert_eq!(h.state(0, 0), State::Stopped);
}

#[test]
fn a_failed_process_is_started_again_when_changed() {
    let mut bad = proc("job");
    bad.max_restarts.count = 0;
    let mut h = Harness::new(vec![bad]);
    let runs = h.up();
    h.feed(Input::Exited {
        group_left: false,
        run: runs[0],
        status: ExitStatus::Code(1),
    });
    assert_eq!(h.state(0, 0), State::Failed);
    let mut fixed = proc("job");
    fixed.argv = vec!["sleep".into(), "1".into()];
    let (_, e) = reload(&mut h, vec![fixed]);
    assert_eq!(
        spawns(&e).len(),
        1,
        "the fixed config gets its chance: {e:?}"
    );
}

#[test]
fn reload_while_shutting_down_starts_nothing() {
    let mut h = Harness::new(vec![sleeper("a")]);
    let _runs = h.up();
    h.feed(Input::ShutdownRequested { force: false });
    let (summary, e) = reload(&mut h, vec![sleeper("a"), sleeper("b")]);
    assert_eq!(summary.added, names(&["b"]));
    assert!(spawns(&e).is_empty(), "{e:?}");
}

#[test]
fn a_name_removed_then_added_again_starts_once_its_old_run_ended() {
    let mut h = Harness::new(vec![sleeper("a")]);
    let runs = h.up();
    reload(&mut h, vec![]);
    let mut again = sleeper("a");
    again.argv.push("--new".into());
    let (summary, e) = reload(&mut h, vec![again]);
    assert_eq!(summary.added, names(&["a"]));
    // Not two `a.0` at once: the new one waits for the old run to end.
    assert!(spawns(&e).is_empty(), "{e:?}");
    assert!(h.sup.resolve("a.0").is_some());
    let e = h.feed(Input::Exited {
        group_left: false,
        run: runs[0],
        status: ExitStatus::Signaled(15),
    });
    let respawn = e.iter().find_map(|e| match e {
        Effect::Spawn { spec, .. } => Some(Arc::clone(spec)),
        _ => None,
    });
    assert_eq!(
        respawn
            .expect("a starts again")
            .argv
            .last()
            .map(String::as_str),
        Some("--new")
    );
    let listed: Vec<String> = h
        .sup
        .instances()
        .map(|v| h.sup.instance_name(v.id))
        .collect();
    assert_eq!(listed, names(&["a.0"]));
}

#[test]
fn the_last_notices_of_a_removed_process_still_name_it() {
    let mut h = Harness::new(vec![sleeper("keep"), sleeper("drop")]);
    let runs = h.up();
    reload(&mut h, vec![sleeper("keep")]);
    let e = h.feed(Input::Exited {
        group_left: false,
        run: runs[1],
        status: ExitStatus::Signaled(15),
    });
    let ended = e
        .iter()
        .find_map(|e| match e {
            Effect::Notify(Notice::Ended { instance, .. }) => Some(*instance),
            _ => None,
        })
        .expect("its end is told");
    assert!(h.sup.instance(ended).is_none(), "forgotten by now");
    assert_eq!(h.sup.instance_name(ended), "drop.0");
}

#[test]
fn a_replica_retired_and_wanted_again_comes_back() {
    let mut slow = sleeper("slow");
    slow.replicas = 3;
    let mut h = Harness::new(vec![slow.clone()]);
    let runs = h.up();
    slow.replicas = 1;
    reload(&mut h, vec![slow.clone()]);
    // Back to 3 while slow.1 and slow.2 are still stopping.
    slow.replicas = 3;
    let (summary, _) = reload(&mut h, vec![slow]);
    assert_eq!(summary.changed, names(&["slow"]));
    assert!(h.sup.resolve("slow.2").is_some(), "slow.2 is wanted again");
    // Once the old run ends, the instance starts again.
    let e = h.feed(Input::Exited {
        group_left: false,
        run: runs[2],
        status: ExitStatus::Signaled(15),
    });
    assert_eq!(spawns(&e).len(), 1, "{e:?}");
    let listed: Vec<String> = h
        .sup
        .instances()
        .map(|v| h.sup.instance_name(v.id))
        .collect();
    assert_eq!(listed, names(&["slow.0", "slow.1", "slow.2"]));
}

#[test]
fn a_reload_does_not_undo_a_stop() {
    let mut h = Harness::new(vec![sleeper("web")]);
    let runs = h.up();
    h.feed(Input::StopRequested(Target::All));
    assert_eq!(h.state(0, 0), State::Stopping);
    let mut edited = sleeper("web");
    edited.stop_timeout = ms(5);
    reload(&mut h, vec![edited]);
    let e = h.feed(Input::Exited {
        group_left: false,
        run: runs[0],
        status: ExitStatus::Signaled(15),
    });
    assert!(spawns(&e).is_empty(), "the user's stop stands: {e:?}");
    assert_eq!(h.state(0, 0), State::Stopped);
}

#[test]
fn old_runs_stop_with_the_settings_they_started_with_new_runs_get_the_new_spec() {
    let mut old = sleeper("web");
    old.stop_signal = Signal::Int;
    let mut h = Harness::new(vec![old]);
    let runs = h.up();
    let mut new = sleeper("web");
    new.stop_signal = Signal::Quit;
    let (_, e) = reload(&mut h, vec![new]);
    assert_eq!(
        signals(&e),
        vec![(runs[0], Signal::Int)],
        "the old run gets the old signal"
    );
    let e = h.feed(Input::Exited {
        group_left: false,
        run: runs[0],
        status: ExitStatus::Signaled(2),
    });
    let spec = e.iter().find_map(|e| match e {
        Effect::Spawn { spec, .. } => Some(Arc::clone(spec)),
        _ => None,
    });
    assert_eq!(spec.expect("restarted").stop_signal, Signal::Quit);
}

#[test]
fn a_process_in_backoff_restarts_with_the_new_spec() {
    let mut h = Harness::new(vec![proc("job")]);
    let runs = h.up();
    h.feed(Input::Exited {
        group_left: false,
        run: runs[0],
        status: ExitStatus::Code(1),
    });
    assert_eq!(h.state(0, 0), State::Backoff);
    let mut fixed = proc("job");
    fixed.argv = vec!["fixed".into()];
    let (_, e) = reload(&mut h, vec![fixed]);
    let spec = e.iter().find_map(|e| match e {
        Effect::Spawn { spec, .. } => Some(Arc::clone(spec)),
        _ => None,
    });
    assert_eq!(
        spec.expect("spawned at once").argv,
        vec!["fixed".to_owned()]
    );
}

#[test]
fn a_kill_after_a_reload_names_the_timeout_the_run_was_stopped_with() {
    let mut p = sleeper("p");
    p.start_secs = Duration::ZERO;
    p.stop_timeout = Duration::from_secs(10);
    let mut h = Harness::new(vec![p.clone()]);
    h.up();
    let mut changed = p.clone();
    changed.stop_timeout = Duration::from_secs(30);
    h.feed(Input::ReloadRequested(spec_of(vec![changed])));
    let effects = h.advance(Duration::from_secs(10));
    let after: Vec<Duration> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Notify(Notice::Killed { after, .. }) => Some(*after),
            _ => None,
        })
        .collect();
    assert_eq!(after, [Duration::from_secs(10)]);
}

#[test]
fn the_plan_tells_processes_it_restarts_from_those_whose_change_waits_for_their_next_start() {
    let mut job = proc("job");
    job.restart = RestartPolicy::Never;
    let mut off = sleeper("off");
    off.autostart = false;
    let mut bad = proc("bad");
    bad.max_restarts.count = 0;
    let all = [sleeper("run"), sleeper("stopped"), job, off, bad];
    let mut h = Harness::new(all.to_vec());
    let runs = h.up();
    // stopped: stopped by the user; job: a one-shot that exited 0; bad: failed.
    h.feed(Input::StopRequested(Target::Process(1)));
    for (run, status) in [
        (runs[1], ExitStatus::Signaled(15)),
        (runs[2], ExitStatus::Code(0)),
        (runs[3], ExitStatus::Code(1)),
    ] {
        h.feed(Input::Exited {
            group_left: false,
            run,
            status,
        });
    }
    let states: Vec<State> = (0..5).map(|p| h.state(p, 0)).collect();
    use State::*;
    assert_eq!(states, [Starting, Stopped, Exited, Stopped, Failed]);

    let edited: Vec<ProcessSpec> = all
        .iter()
        .map(|p| {
            let mut p = p.clone();
            p.argv.push("--edited".into());
            p
        })
        .collect();
    let plan = h.sup.plan_reload(&spec_of(edited.clone()));
    assert_eq!(
        plan.changed,
        names(&["run", "stopped", "job", "off", "bad"])
    );
    assert_eq!(plan.not_running, names(&["stopped", "job", "off"]));
    let (summary, e) = reload(&mut h, edited);
    assert_eq!(summary, plan, "a reload does what its plan says");
    // run restarts (its run is stopped first), bad is started again; the others wait.
    assert_eq!(signals(&e), vec![(runs[0], Signal::Term)]);
    assert_eq!(spawns(&e).len(), 1, "bad: {e:?}");
    assert_eq!(h.state(1, 0), Stopped);
    assert_eq!(h.state(2, 0), Exited);
    assert_eq!(h.state(3, 0), Stopped);
}

#[test]
fn a_stopped_process_is_not_running_for_the_plan_unless_the_change_starts_an_instance() {
    let mut web = sleeper("web");
    web.autostart = false;
    let mut h = Harness::new(vec![web.clone()]);
    h.up();
    // Only replicas: a scale, not a restart; nothing to say.
    let mut more = web.clone();
    more.replicas = 2;
    let plan = h.sup.plan_reload(&spec_of(vec![more.clone()]));
    assert_eq!(plan.keys["web"], vec!["replicas 1 → 2"]);
    assert!(plan.not_running.is_empty(), "{plan:?}");
    // A command and replicas: the change waits for the next start.
    more.argv.push("--edited".into());
    let plan = h.sup.plan_reload(&spec_of(vec![more.clone()]));
    assert_eq!(plan.not_running, names(&["web"]));
    // Turned autostart on with a new instance: web.1 starts now, with the new settings.
    more.autostart = true;
    let plan = h.sup.plan_reload(&spec_of(vec![more.clone()]));
    assert!(plan.not_running.is_empty(), "{plan:?}");
    let (summary, e) = reload(&mut h, vec![more]);
    assert_eq!(summary, plan);
    assert_eq!(spawns(&e).len(), 1, "web.1: {e:?}");
}
