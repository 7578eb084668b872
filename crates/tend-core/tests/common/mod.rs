//! A harness that drives a `Supervisor` with explicit time, standing in for the driver.

#![allow(dead_code, missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tend_core::*;

/// A spec of one process `name` with the given tweaks.
pub fn spec_of(procs: Vec<ProcessSpec>) -> Spec {
    Spec {
        supervisor: SupervisorSpec {
            log_dir: PathBuf::from("/tmp/tend-test-logs"),
            stop_timeout: Duration::from_secs(10),
            umask: 0o022,
            cgroups: true,
        },
        processes: procs.into_iter().map(Arc::new).collect(),
    }
}

pub fn proc(name: &str) -> ProcessSpec {
    ProcessSpec::new(name, vec!["true".to_owned()])
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub struct Harness {
    pub sup: Supervisor,
    pub now: Instant,
    pub start: Instant,
    next_pid: u32,
}

impl Harness {
    pub fn new(procs: Vec<ProcessSpec>) -> Self {
        let now = Instant::now();
        Harness {
            sup: Supervisor::new(spec_of(procs)),
            now,
            start: now,
            next_pid: 100,
        }
    }

    pub fn feed(&mut self, input: Input) -> Vec<Effect> {
        self.sup.handle(self.now, input)
    }

    /// Advances time by `d` and ticks if a deadline has passed.
    pub fn advance(&mut self, d: Duration) -> Vec<Effect> {
        self.now += d;
        if self.sup.next_deadline().is_some_and(|t| t <= self.now) {
            self.feed(Input::Tick)
        } else {
            Vec::new()
        }
    }

    /// `tend up`: starts the autostart processes and answers their spawns; returns the runs.
    pub fn up(&mut self) -> Vec<RunId> {
        let effects = self.feed(Input::Up(None));
        self.spawn_all(&effects).0
    }

    /// Answers every `Spawn` in `effects` with `Spawned`, returning the runs and the follow-up effects.
    pub fn spawn_all(&mut self, effects: &[Effect]) -> (Vec<RunId>, Vec<Effect>) {
        let mut runs = Vec::new();
        let mut more = Vec::new();
        for run in spawns(effects) {
            self.next_pid += 1;
            more.extend(self.feed(Input::Spawned {
                run,
                pid: self.next_pid,
            }));
            runs.push(run);
        }
        (runs, more)
    }

    pub fn state(&self, process: usize, replica: u32) -> State {
        self.sup
            .instance(InstanceId { process, replica })
            .unwrap()
            .state
    }
}

pub fn spawns(effects: &[Effect]) -> Vec<RunId> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Spawn { run, .. } => Some(*run),
            _ => None,
        })
        .collect()
}

/// The signals sent, but the SIGCONT that follows every stop signal (the state table shows
/// those).
pub fn signals(effects: &[Effect]) -> Vec<(RunId, Signal)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Signal {
                signal: Signal::Cont,
                ..
            } => None,
            Effect::Signal { run, signal, .. } => Some((*run, *signal)),
            _ => None,
        })
        .collect()
}

pub fn restart_delays(effects: &[Effect]) -> Vec<Duration> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Notify(Notice::Ended {
                next: Next::Restart(d),
                ..
            }) => Some(*d),
            _ => None,
        })
        .collect()
}

pub fn has_exit(effects: &[Effect]) -> bool {
    effects.iter().any(|e| matches!(e, Effect::Exit))
}
