//! Property tests: random sequences of facts keep the supervisor's promises.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::*;
use proptest::prelude::*;
use tend_core::*;

#[derive(Debug, Clone)]
enum Step {
    Advance(u64),
    ExitOne(usize, i32),
    SpawnFailOne(usize),
    Start(usize),
    Stop(usize),
    Restart(usize),
    Shutdown(bool),
    Reload(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u64..3000).prop_map(Step::Advance),
        4 => (0usize..8, 0i32..3).prop_map(|(i, c)| Step::ExitOne(i, c)),
        1 => (0usize..8).prop_map(Step::SpawnFailOne),
        1 => (0usize..6).prop_map(Step::Start),
        1 => (0usize..6).prop_map(Step::Stop),
        1 => (0usize..6).prop_map(Step::Restart),
        1 => any::<bool>().prop_map(Step::Shutdown),
        1 => (0u8..4).prop_map(Step::Reload),
    ]
}

fn procs() -> Vec<ProcessSpec> {
    let mut a = proc("a");
    a.backoff = Backoff {
        initial: ms(0),
        max: ms(400),
        factor: 3.0,
    };
    a.start_secs = ms(0);
    let mut b = proc("b");
    b.replicas = 2;
    b.restart = RestartPolicy::OnFailure;
    b.backoff = Backoff {
        initial: ms(50),
        max: ms(1000),
        factor: 2.0,
    };
    b.stop_timeout = ms(700);
    let mut c = proc("c");
    c.restart = RestartPolicy::Never;
    c.stop_timeout = ms(0);
    vec![a, b, c]
}

/// Variations of `procs()` for reloads: unchanged, `a` edited, `b` scaled, `c` removed and
/// `d` added.
fn variant(v: u8) -> Vec<ProcessSpec> {
    let mut list = procs();
    match v {
        1 => list[0].argv.push("--edited".into()),
        2 => list[1].replicas = if list[1].replicas == 2 { 3 } else { 1 },
        3 => {
            list.pop();
            list.push(proc("d"));
        }
        _ => {}
    }
    list
}

/// The fake OS: which runs exist, which are spawned, and since when each is stopping.
#[derive(Default)]
struct World {
    pending: Vec<RunId>,
    alive: Vec<RunId>,
    ever: HashSet<RunId>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn promises_hold(steps in proptest::collection::vec(step(), 1..80)) {
        let mut h = Harness::new(procs());
        let mut world = World::default();
        let mut stopping_since: HashMap<InstanceId, Instant> = HashMap::new();
        let mut exited = false;
        let mut killed: HashSet<RunId> = HashSet::new();
        let mut effects = h.feed(Input::Up(None));
        for step in steps {
            // Carry out the effects like a driver would, checking each one.
            loop {
                let mut follow = Vec::new();
                for e in &effects {
                    match e {
                        Effect::Spawn { run, .. } => {
                            prop_assert!(world.ever.insert(*run), "run ids are never reused");
                            world.pending.push(*run);
                        }
                        Effect::Signal { run, signal } => {
                            if *signal == Signal::Kill {
                                killed.insert(*run);
                            }
                            prop_assert!(world.alive.contains(run) || world.pending.contains(run),
                                "signal only runs that were spawned and not reported ended: {:?}", run);
                        }
                        Effect::Notify(Notice::Ended { instance, next: Next::Restart(d), .. }) => {
                            let max = h.sup.process(instance.process).map_or(ms(1000), |p| p.backoff.max);
                            prop_assert!(*d <= max, "backoff bounded");
                        }
                        Effect::Exit => {
                            prop_assert!(!exited, "exit once");
                            exited = true;
                        }
                        _ => {}
                    }
                }
                for run in std::mem::take(&mut world.pending) {
                    world.alive.push(run);
                    follow.extend(h.feed(Input::Spawned { run, pid: 1000 + run.0 as u32 }));
                }
                if follow.is_empty() { break; }
                effects = follow;
            }
            // At most one live run per instance, and only in the states that have one.
            let mut live = 0;
            for v in h.sup.instances() {
                let has_run = matches!(v.state, State::Starting | State::Running | State::Stopping);
                prop_assert_eq!(v.pid.is_some(), has_run, "{:?}", v);
                if has_run { live += 1; }
                if v.state == State::Stopping {
                    let since = *stopping_since.entry(v.id).or_insert(h.now);
                    let run = RunId(u64::from(v.pid.unwrap()) - 1000);
                    prop_assert!(h.now <= since + v.spec.stop_timeout || killed.contains(&run),
                        "a stop escalates to SIGKILL by stop_timeout: {:?}", v);
                } else {
                    stopping_since.remove(&v.id);
                }
            }
            prop_assert_eq!(live, world.alive.len());
            if exited {
                prop_assert_eq!(live, 0, "exit only when nothing runs");
            }
            effects = match step {
                Step::Advance(n) => {
                    // Deliver the next deadline on time, as the driver does, or let time pass.
                    let target = h.now + ms(n);
                    match h.sup.next_deadline().filter(|&d| d <= target) {
                        Some(due) => {
                            h.now = due.max(h.now);
                            h.feed(Input::Tick)
                        }
                        None => {
                            h.now = target;
                            Vec::new()
                        }
                    }
                }
                Step::ExitOne(i, code) if !world.alive.is_empty() => {
                    let run = world.alive.remove(i % world.alive.len());
                    h.feed(Input::Exited { run, status: ExitStatus::Code(code) })
                }
                Step::SpawnFailOne(i) if !world.alive.is_empty() => {
                    // Stands in for a run whose exec failed: reported as a spawn failure.
                    let run = world.alive.remove(i % world.alive.len());
                    h.feed(Input::SpawnFailed { run, error: "exec failed".into() })
                }
                Step::SpawnFailOne(_) => Vec::new(),
                Step::ExitOne(..) => Vec::new(),
                Step::Start(p) => h.feed(Input::StartRequested(Target::Process(p))),
                Step::Stop(p) => h.feed(Input::StopRequested(Target::Process(p))),
                Step::Restart(p) => h.feed(Input::RestartRequested(Target::Process(p))),
                Step::Shutdown(force) => h.feed(Input::ShutdownRequested { force }),
                Step::Reload(v) => h.feed(Input::ReloadRequested(spec_of(variant(v)))),
            };
        }
    }
}

#[test]
fn backoff_grows_monotonically_to_its_cap() {
    let mut p = proc("p");
    p.backoff = Backoff {
        initial: ms(10),
        max: ms(1000),
        factor: 1.5,
    };
    p.max_restarts = MaxRestarts {
        count: 1000,
        within: Duration::from_secs(1),
    };
    let mut h = Harness::new(vec![p]);
    let mut e = h.feed(Input::Up(None));
    let mut delays = Vec::new();
    for _ in 0..40 {
        let (runs, _) = h.spawn_all(&e);
        let ended = h.feed(Input::Exited {
            run: runs[0],
            status: ExitStatus::Code(1),
        });
        let d = restart_delays(&ended)[0];
        delays.push(d);
        e = h.advance(d);
    }
    assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
    assert_eq!(*delays.last().unwrap(), ms(1000));
    assert_eq!(delays[0], ms(10));
}
