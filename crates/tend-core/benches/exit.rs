//! How long the state machine takes over a crash loop: one child exits, the supervisor decides
//! to restart it at once (`Input::Exited` → `Effect::Spawn`, backoff 0), and the driver reports
//! the new run (`Input::Spawned`). One iteration is that whole cycle, two calls of
//! `Supervisor::handle`, so it repeats forever in a steady state; divan cannot time one half of
//! a cycle without the other.
//!
//! With 1 and with 1000 instances configured (`replicas`); with 1000, the instances exit in
//! turn. The clock moves 1 ms per cycle, so the `max_restarts` window (1 s) keeps dropping old
//! restarts as it does in a real crash loop, and never gives up (`count` is `u32::MAX`).
//!
//! Run it with `cargo bench -p tend-core --bench exit`. The allocation columns count the heap
//! allocations of one cycle.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use divan::{black_box, AllocProfiler, Bencher};
use tend_core::{
    Backoff, Effect, ExitStatus, Input, MaxRestarts, ProcessSpec, RunId, Spec, Supervisor,
    SupervisorSpec,
};

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

fn main() {
    divan::main();
}

/// A supervisor of one process with `replicas` instances that restart at once, forever, all
/// up and spawned; with the run of each instance, by replica.
fn crash_loop(replicas: u32, now: Instant) -> (Supervisor, Vec<RunId>) {
    let mut process = ProcessSpec::new("crash", vec!["false".to_owned()]);
    process.replicas = replicas;
    process.start_secs = Duration::ZERO;
    process.backoff = Backoff {
        initial: Duration::ZERO,
        max: Duration::ZERO,
        factor: 1.0,
    };
    process.max_restarts = MaxRestarts {
        count: u32::MAX,
        within: Duration::from_secs(1),
    };
    let mut sup = Supervisor::new(Spec {
        supervisor: SupervisorSpec {
            log_dir: PathBuf::from("/tmp/tend-bench-logs"),
            stop_timeout: Duration::from_secs(10),
            umask: 0o022,
            cgroups: true,
        },
        processes: vec![Arc::new(process)],
    });
    let runs: Vec<RunId> = sup
        .handle(now, Input::Up(None))
        .iter()
        .map(spawned_run)
        .collect();
    assert_eq!(runs.len(), replicas as usize);
    for &run in &runs {
        sup.handle(now, Input::Spawned { run, pid: 1000 });
    }
    (sup, runs)
}

fn spawned_run(effect: &Effect) -> RunId {
    match effect {
        Effect::Spawn { run, .. } => *run,
        other => panic!("expected a spawn, got {other:?}"),
    }
}

/// One cycle per iteration: `Exited` (answered by `Notify(Ended)` and `Spawn`), then
/// `Spawned` (answered by `Notify(Started)`). 1000 cycles a sample: far above the timer's
/// precision, and every one of 1000 instances once, so no sample sees only fresh instances.
#[divan::bench(args = [1, 1000], sample_size = 1000)]
fn exit_restart_spawned(bencher: Bencher<'_, '_>, replicas: u32) {
    let mut now = Instant::now();
    let (mut sup, mut runs) = crash_loop(replicas, now);
    let mut next = 0;
    bencher.bench_local(|| {
        now += Duration::from_millis(1);
        let slot = &mut runs[next];
        let effects = sup.handle(
            now,
            black_box(Input::Exited {
                group_left: false,
                run: *slot,
                status: ExitStatus::Code(1),
            }),
        );
        let run = effects
            .iter()
            .find_map(|e| match e {
                Effect::Spawn { run, .. } => Some(*run),
                _ => None,
            })
            .expect("backoff 0 restarts at once");
        black_box(effects);
        *slot = run;
        black_box(sup.handle(now, black_box(Input::Spawned { run, pid: 1000 })));
        next = (next + 1) % runs.len();
    });
}

/// A chain of `n` processes, each ready by notify and depending on the previous one being
/// ready: from `tend up` until the last is ready (every `Spawned` and `Ready` answered at
/// once), then a graceful stop of everything until `Exit` (each run exits as soon as it gets
/// its stop signal). What the dependency pass costs per fact, at scale.
#[divan::bench(args = [100, 1000], sample_count = 20)]
fn chain_up_and_down(bencher: Bencher<'_, '_>, n: usize) {
    use tend_core::{Condition, Dependency, ReadyCheck, ReadyFact, ReadySpec};
    let processes: Vec<Arc<ProcessSpec>> = (0..n)
        .map(|i| {
            let mut p = ProcessSpec::new(format!("p{i}"), vec!["true".to_owned()]);
            p.ready = Some(ReadySpec {
                check: ReadyCheck::Notify,
                start_timeout: None,
                watchdog: None,
            });
            if i > 0 {
                p.depends_on = vec![Dependency {
                    name: format!("p{}", i - 1),
                    condition: Condition::Ready,
                }];
            }
            Arc::new(p)
        })
        .collect();
    let spec = Spec {
        supervisor: SupervisorSpec {
            log_dir: PathBuf::from("/tmp/tend-bench-logs"),
            stop_timeout: Duration::from_secs(10),
            umask: 0o022,
            cgroups: true,
        },
        processes,
    };
    bencher
        .with_inputs(|| Supervisor::new(spec.clone()))
        .bench_local_values(|mut sup| {
            let now = Instant::now();
            let mut pending: Vec<Effect> = sup.handle(now, Input::Up(None));
            let mut pid = 1000;
            let mut ready = 0;
            while let Some(effect) = pending.pop() {
                match effect {
                    Effect::Spawn { run, .. } => {
                        pid += 1;
                        pending.extend(sup.handle(now, Input::Spawned { run, pid }));
                        pending.extend(sup.handle(
                            now,
                            Input::Readiness {
                                run,
                                fact: ReadyFact::Ready,
                            },
                        ));
                        ready += 1;
                    }
                    Effect::Signal { run, .. } => {
                        pending.extend(sup.handle(
                            now,
                            Input::Exited {
                                run,
                                status: ExitStatus::Signaled(15),
                                group_left: false,
                            },
                        ));
                    }
                    _ => {}
                }
                if pending.is_empty() && ready == n {
                    ready += 1;
                    pending.extend(sup.handle(now, Input::ShutdownRequested { force: false }));
                }
            }
            black_box(sup.phase())
        });
}
