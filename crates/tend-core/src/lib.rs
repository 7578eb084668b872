//! The pure supervision model of tend.
//!
//! This crate owns every decision tend makes about its processes: when to spawn, when to
//! restart and after how long, when to give up, how to stop. It does no I/O, reads no clock
//! and holds no `unsafe`: the driver feeds it past-tense facts ([`Input`]) together with the
//! current time, and carries out the imperatives it returns ([`Effect`]). Every behaviour can
//! therefore be tested without a process.

#![forbid(unsafe_code)]

pub mod notify;
pub mod signal;
pub mod spec;
pub mod supervisor;
pub mod time;

pub use notify::NotifyMessage;
pub use signal::Signal;
pub use spec::{
    Backoff, Condition, Dependency, HealthSpec, Identity, LogSpec, MaxRestarts, MemoryLimit,
    OnExit, Probe, ProbeSpec, ProcessSpec, ReadyCheck, ReadySpec, RestartPolicy, Rlimit,
    RlimitKind, Spec, SupervisorSpec, UserIdentity,
};
pub use supervisor::{
    changed_keys, Effect, ExitStatus, Failure, HealthView, Input, InstanceId, InstanceView, Next,
    Notice, Phase, ReadyFact, ReloadSummary, RunId, State, Supervisor, Target, Unmet,
};
