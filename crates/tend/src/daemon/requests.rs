//! The driver's side of the control socket: what each request does to the supervisor, and the
//! requests that wait (`start`, `stop`, `restart` with `wait`, `reload`, `down`) until the
//! supervisor has done it. `reload` and `restart` read files (the config, env files) on the
//! blocking pool first, never on the driver's thread.

use std::collections::HashSet;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Instant as StdInstant;

use tend_core::{Input, InstanceId, InstanceView, RunId, Signal, State, Target};
use tend_proto::{
    Answer, AttachArgs, Done, ErrorBody, ErrorCode, InstanceStatus, Instances, Reloaded, Request,
    ScaleArgs, Scaled, ScaledProcess, Signalled, Stream, TargetArgs,
};
use tokio::sync::oneshot;

use super::attach::Attachable;
use super::control::{ControlRequest, EventStream, Follow, LogPlan, PlanFile, Reply};
use super::world::Event;
use super::Driver;

/// The most instances `scale` gives a process, as `replicas` in the config.
const MAX_SCALE: u32 = 10_000;

/// How long a reading of the process groups' use in /proc answers status requests.
pub(super) const USAGE_FRESH: std::time::Duration = std::time::Duration::from_millis(500);

/// The process groups' use, as last read from /proc.
pub(super) struct UsageSnapshot {
    /// When.
    taken: StdInstant,
    /// The runs it was read for (a run whose group had no live process has no usage).
    covered: HashSet<RunId>,
    /// By run.
    usage: std::rc::Rc<std::collections::HashMap<RunId, tend_proto::Usage>>,
}

/// What a waiting request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    Up,
    Down,
    /// Up again, in a run other than the one live when the request came.
    Restarted,
}

/// What a read of the env files of a `restart` gives back: the variables of each process by
/// slot, or which file could not be read, and why.
pub(super) type EnvsRead =
    Result<Vec<(usize, Vec<(String, String)>, Arc<tend_core::ProcessSpec>)>, String>;

/// What a read of the config file off the driver's thread gives back.
pub(super) type Loaded = Result<tend_core::Spec, crate::config::ConfigError>;

/// Reloads in progress: at most one read of the config file runs (on tokio's blocking pool,
/// so a slow or hung file system never stalls the driver); reloads asked for while it runs
/// wait for it and then read the file again, since it may have changed after the read began.
#[derive(Default)]
pub(super) struct Reloads {
    /// A read is running.
    reading: bool,
    /// The requests the running read answers.
    current: ReloadBatch,
    /// Reloads asked for while a read runs: another read follows it.
    next: Option<ReloadBatch>,
}

/// The reloads one read of the config answers.
#[derive(Default)]
pub(super) struct ReloadBatch {
    /// Some reload is to be applied (a `reload` request, or SIGHUP, which has no reply).
    apply: bool,
    /// The `reload` requests to answer with what was applied.
    applied: Vec<oneshot::Sender<Reply>>,
    /// The `reload` requests with `dry_run`, to answer with the plan only.
    plans: Vec<oneshot::Sender<Reply>>,
}

impl ReloadBatch {
    fn add(&mut self, reply: Option<oneshot::Sender<Reply>>, dry_run: bool) {
        match reply {
            Some(reply) if dry_run => self.plans.push(reply),
            Some(reply) => {
                self.apply = true;
                self.applied.push(reply);
            }
            None => self.apply = true,
        }
    }

    fn replies(self) -> impl Iterator<Item = oneshot::Sender<Reply>> {
        self.applied.into_iter().chain(self.plans)
    }
}

/// A request that is answered once its instances reached the goal, or one failed.
pub(super) struct Waiter {
    goal: Goal,
    /// Each instance, with the run that was live when the request came.
    instances: Vec<(InstanceId, Option<RunId>)>,
    /// For `Restarted`: the instances seen in a new run already.
    renewed: HashSet<InstanceId>,
    reply: oneshot::Sender<Reply>,
}

impl Driver {
    /// Carries out one control request; the reply is sent now or once it is done.
    pub(super) fn command(&mut self, command: ControlRequest) {
        let ControlRequest { request, reply, .. } = command;
        let answer = match request {
            Request::Status(args) => self.status(&args.names),
            Request::Start(args) => return self.change(Goal::Up, &args, reply),
            Request::Stop(args) => {
                self.stops_asked += 1;
                return self.change(Goal::Down, &args, reply);
            }
            Request::Restart(args) => return self.restart(args, reply),
            Request::Scale(args) => self.scale(&args),
            Request::Signal(args) => self.signal(&args.signal, &args.names),
            Request::Logs(args) => match self.resolve(&args.names, true) {
                Ok(ids) => {
                    let _ = reply.send(Reply::Logs(self.log_plan(&ids, &args)));
                    return;
                }
                Err(e) => Err(e),
            },
            Request::Events(args) => match self.resolve(&args.names, true) {
                Ok(ids) => {
                    let only = (!args.names.is_empty()).then(|| self.names_of(&ids));
                    let _ = reply.send(Reply::Events(EventStream {
                        live: self.published.subscribe(),
                        only,
                    }));
                    return;
                }
                Err(e) => Err(e),
            },
            Request::Attach(args) => match self.attachable(&args) {
                Ok((instance, pid, attachable)) => {
                    let _ = reply.send(Reply::Attach {
                        instance,
                        pid,
                        attachable,
                    });
                    return;
                }
                Err(e) => Err(e),
            },
            Request::Resize(args) => {
                if args.rows.is_none() || args.cols.is_none() {
                    Err(ErrorBody::new(
                        ErrorCode::BadRequest,
                        "resize needs rows and cols, such as {\"name\":\"web.0\",\"rows\":24,\"cols\":80}",
                    ))
                } else {
                    self.attachable(&args).map(|_| Answer::Ok(Done {}.into()))
                }
            }
            Request::Reload(args) => return self.reload(Some(reply), args.dry_run),
            Request::Down(_) => {
                self.down_replies.push(reply);
                // A second `down` while everything stops kills at once, as its notice says.
                self.shutdown("tend down", None);
                return;
            }
        };
        let _ = reply.send(Reply::Answer(answer.unwrap_or_else(Answer::Error)));
    }

    /// Re-reads the config and applies it; answers `reply` (a `reload` request) or only tells
    /// the terminal (SIGHUP). A bad file changes nothing.
    ///
    /// The file is read on the blocking pool and applied by [`Driver::loaded`] when the read
    /// is done; meanwhile the driver goes on supervising and answering. A reload asked for
    /// while a read runs waits for it, then the file is read once more for all that waited.
    /// With `dry_run`, the reload only answers with its plan (what it would start, stop and
    /// restart, and which keys changed) and changes nothing.
    pub(super) fn reload(&mut self, reply: Option<oneshot::Sender<Reply>>, dry_run: bool) {
        if self.stopping_all() {
            if let Some(reply) = reply {
                let _ = reply.send(Reply::Answer(Answer::Error(nothing_to_reload())));
            }
            return;
        }
        if self.reloads.reading {
            self.reloads
                .next
                .get_or_insert_default()
                .add(reply, dry_run);
            return;
        }
        let mut batch = ReloadBatch::default();
        batch.add(reply, dry_run);
        self.read_config(batch);
    }

    /// Starts a read of the config file off the driver's thread, for `batch`.
    fn read_config(&mut self, batch: ReloadBatch) {
        let events = self.events.clone();
        self.reloads.reading = true;
        self.reloads.current = batch;
        let path = self.config.clone();
        let formation = self.formation.clone();
        // What the new config is compared with: reads are one at a time, and only applying
        // one changes the settings, so these are still tend's when the read is done.
        let settings = self.sup.settings().clone();
        let (needed_now, _) = open_files_at_up(self.sup.processes().map(|(_, p)| &**p));
        tokio::task::spawn_blocking(move || {
            let loaded = crate::config::load_with(&path, &formation).and_then(|(spec, _)| {
                start_only_settings(&settings, &spec.supervisor, &path)?;
                let processes = spec.processes.iter().map(|p| &**p);
                if let Some(why) =
                    beyond_open_files_limit(processes, "reload this config", needed_now)
                {
                    return Err(crate::config::ConfigError {
                        file: Some(path.clone()),
                        line_col: None,
                        key: None,
                        message: why,
                    });
                }
                Ok(spec)
            });
            let _ = events.send(Event::Loaded(loaded));
        });
    }

    /// A read of the config file finished: applies it (or says why not) and answers the
    /// reloads it was for; starts the next read if more reloads were asked for meanwhile.
    pub(super) fn loaded(&mut self, result: Loaded) {
        self.reloads.reading = false;
        let batch = std::mem::take(&mut self.reloads.current);
        if self.stopping_all() {
            let waiting = self.reloads.next.take().unwrap_or_default();
            for reply in batch.replies().chain(waiting.replies()) {
                let _ = reply.send(Reply::Answer(Answer::Error(nothing_to_reload())));
            }
            return;
        }
        match result {
            Err(e) => {
                if batch.apply {
                    self.terminal
                        .notice(format!("reload refused, nothing changed: {e}"));
                }
                for reply in batch.replies() {
                    let error = ErrorBody::new(ErrorCode::Config, e.to_string());
                    let _ = reply.send(Reply::Answer(Answer::Error(error)));
                }
            }
            Ok(spec) => {
                // The plan, from the state before this reload is applied.
                if !batch.plans.is_empty() {
                    let body = Reloaded {
                        dry_run: true,
                        ..reloaded_body(self.sup.plan_reload(&spec))
                    };
                    for reply in batch.plans {
                        let _ = reply.send(Reply::Answer(Answer::Ok(body.clone().into())));
                    }
                }
                if batch.apply {
                    self.reload_replies = batch.applied;
                    self.feed(Input::ReloadRequested(spec));
                }
            }
        }
        if let Some(next) = self.reloads.next.take() {
            self.read_config(next);
        }
    }

    /// The supervisor applied a reload: tell the terminal and the requester.
    pub(super) fn reloaded(&mut self, summary: tend_core::ReloadSummary) {
        self.publish(super::events::of_reload(
            &summary,
            std::time::SystemTime::now(),
        ));
        let body = reloaded_body(summary);
        for reply in std::mem::take(&mut self.reload_replies) {
            let _ = reply.send(Reply::Answer(Answer::Ok(body.clone().into())));
        }
    }

    /// Answers the waiting requests whose instances have all settled; forgets those whose
    /// client went away.
    pub(super) fn check_waiters(&mut self) {
        if self.waiters.is_empty() {
            return;
        }
        let waiters = std::mem::take(&mut self.waiters);
        for mut waiter in waiters {
            if waiter.reply.is_closed() {
                continue;
            }
            match self.progress(&mut waiter) {
                None => self.waiters.push(waiter),
                Some(answer) => {
                    let _ = waiter.reply.send(Reply::Answer(answer));
                }
            }
        }
    }

    /// `None` while some instance is on its way; else the answer: the instances, or what
    /// went wrong with those that will not reach the goal.
    fn progress(&self, waiter: &mut Waiter) -> Option<Answer> {
        if self.stopping_all() && waiter.goal != Goal::Down {
            let error = ErrorBody::new(ErrorCode::ShuttingDown, "tend is stopping everything");
            return Some(Answer::Error(error));
        }
        let mut problems = Vec::new();
        for &(id, before) in &waiter.instances {
            // An instance a reload removed has nothing left to wait for.
            let Some(view) = self.sup.instance(id) else {
                continue;
            };
            if waiter.goal == Goal::Restarted && view.run.is_some() && view.run != before {
                waiter.renewed.insert(id);
            }
            let fresh = waiter.goal == Goal::Up || waiter.renewed.contains(&id);
            match settled(waiter.goal, fresh, &view, &self.sup) {
                None => return None,
                Some(Ok(())) => {}
                Some(Err(problem)) => {
                    problems.push(format!("{} {problem}", self.sup.instance_name(id)))
                }
            }
        }
        if !problems.is_empty() {
            return Some(Answer::Error(ErrorBody::new(
                ErrorCode::Failed,
                problems.join("; "),
            )));
        }
        let ids: Vec<InstanceId> = waiter.instances.iter().map(|&(id, _)| id).collect();
        Some(Answer::Ok(self.instances_of(&ids).into()))
    }

    /// `restart`: the env files of the named processes are read again first (on the blocking
    /// pool), so that the new runs get what they say now ([`Driver::env_read`] goes on);
    /// processes without `env_file` restart at once.
    fn restart(&mut self, args: TargetArgs, reply: oneshot::Sender<Reply>) {
        let ids = match self.targets(&args.names, false) {
            Ok(targets) => self.instances_in(&targets),
            Err(e) => {
                let _ = reply.send(Reply::Answer(Answer::Error(e)));
                return;
            }
        };
        let mut seen = HashSet::new();
        let specs: Vec<(usize, Arc<tend_core::ProcessSpec>)> = ids
            .iter()
            .filter(|id| seen.insert(id.process))
            .filter_map(|id| Some((id.process, Arc::clone(self.sup.process(id.process)?))))
            .filter(|(_, spec)| spec.env_file.is_some())
            .collect();
        if specs.is_empty() || self.stopping_all() {
            return self.change(Goal::Restarted, &args, reply);
        }
        let events = self.events.clone();
        let stops_asked = self.stops_asked;
        tokio::task::spawn_blocking(move || {
            let read = specs
                .into_iter()
                .map(|(process, spec)| match crate::config::read_env(&spec) {
                    Ok(env) => Ok((process, env, spec)),
                    Err(e) => Err(format!("{}: {e}", spec.name)),
                })
                .collect();
            let _ = events.send(Event::EnvRead {
                args,
                stops_asked,
                reply,
                read,
            });
        });
    }

    /// The env files of a `restart` were read: the processes get their variables, then
    /// restart; a file that could not be read fails the request, and nothing changes.
    pub(super) fn env_read(
        &mut self,
        args: TargetArgs,
        stops_asked: u64,
        reply: oneshot::Sender<Reply>,
        read: EnvsRead,
    ) {
        let refused = |reply: oneshot::Sender<Reply>, why: String| {
            let error = ErrorBody::new(ErrorCode::Failed, why);
            let _ = reply.send(Reply::Answer(Answer::Error(error)));
        };
        if stops_asked != self.stops_asked {
            return refused(
                reply,
                "a stop came while the env files were read; nothing was restarted, so that \
                 the stop stands (ask again to restart)"
                    .to_owned(),
            );
        }
        match read {
            Err(e) => refused(
                reply,
                format!("reading the env file of {e}; nothing was restarted"),
            ),
            Ok(envs) => {
                if !self.stopping_all() {
                    for (process, env, read_from) in envs {
                        self.feed(Input::EnvRead {
                            process,
                            env,
                            read_from,
                        });
                    }
                }
                self.change(Goal::Restarted, &args, reply);
            }
        }
    }

    /// `scale`: each named process gets its count of instances, until the next reload. Every
    /// name and count is checked before anything changes.
    fn scale(&mut self, args: &ScaleArgs) -> Result<Answer, ErrorBody> {
        if args.replicas.is_empty() {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                "name the processes and their counts, such as {\"replicas\":{\"web\":4}}",
            ));
        }
        if self.stopping_all() {
            return Err(ErrorBody::new(
                ErrorCode::ShuttingDown,
                "tend is stopping everything",
            ));
        }
        let mut plan = Vec::new();
        for (name, &to) in &args.replicas {
            let process = match self.targets(std::slice::from_ref(name), false)?[..] {
                [Target::Process(process)] => process,
                _ => {
                    return Err(ErrorBody::new(
                        ErrorCode::BadRequest,
                        format!("scale takes processes (web), not {name:?}"),
                    ))
                }
            };
            let spec = self.sup.process(process).expect("resolved");
            let bad =
                |why: String| ErrorBody::new(ErrorCode::BadRequest, format!("{name}={to}: {why}"));
            if to > MAX_SCALE {
                return Err(bad(format!("the count must be 0 to {MAX_SCALE}")));
            }
            let scaled = tend_core::ProcessSpec {
                replicas: to,
                ..(**spec).clone()
            };
            crate::config::log_names_fit(&scaled).map_err(bad)?;
            if let Some(first) = spec.port {
                let last = u32::from(first) + to.saturating_sub(1);
                if last > u32::from(u16::MAX) {
                    return Err(bad(format!(
                        "its last instance would get PORT {last}, beyond 65535"
                    )));
                }
            }
            plan.push((process, name.clone(), spec.replicas, to));
        }
        if let Some(why) = self.beyond_open_files(&plan) {
            return Err(ErrorBody::new(ErrorCode::BadRequest, why));
        }
        let mut scaled = Vec::new();
        for (process, name, from, to) in plan {
            // On the terminal and in tend.log, as a reload's plan is.
            if from != to {
                self.terminal.notice(format!(
                    "scale: {name} {from} → {to} instance{} (until the next reload)",
                    if to == 1 { "" } else { "s" }
                ));
            }
            self.feed(Input::ScaleRequested {
                process,
                replicas: to,
            });
            scaled.push(ScaledProcess {
                process: name,
                from,
                to,
            });
        }
        // The instances it retired without a run are forgotten at once: their log files close
        // now (those with a run close theirs when it ends).
        self.close_forgotten_logs();
        Ok(Answer::Ok(Scaled { scaled }.into()))
    }

    /// Start, stop or restart the named instances; answer now or once done.
    fn change(&mut self, goal: Goal, args: &TargetArgs, reply: oneshot::Sender<Reply>) {
        let (names, wait, no_deps) = (&args.names, args.wait, args.no_deps);
        let targets = match self.targets(names, false) {
            Ok(targets) => targets,
            Err(e) => {
                let _ = reply.send(Reply::Answer(Answer::Error(e)));
                return;
            }
        };
        if self.stopping_all() {
            let error = ErrorBody::new(ErrorCode::ShuttingDown, "tend is stopping everything");
            let _ = reply.send(Reply::Answer(Answer::Error(error)));
            return;
        }
        let ids = self.instances_in(&targets);
        if matches!(goal, Goal::Up | Goal::Restarted) {
            // A restart starts what is not up (without what it depends on) as a start does.
            let no_deps = no_deps || goal == Goal::Restarted;
            if let Some(why) = self.start_beyond_open_files(&ids, no_deps) {
                let error = ErrorBody::new(ErrorCode::BadRequest, why);
                let _ = reply.send(Reply::Answer(Answer::Error(error)));
                return;
            }
        }
        let instances = ids
            .iter()
            .map(|&id| (id, self.sup.instance(id).and_then(|v| v.run)))
            .collect();
        // Subscribed before anything happens, so the events of this very request are seen.
        let progress = (wait && args.progress && goal != Goal::Down).then(|| {
            let mut only = self.names_of(&ids);
            if goal == Goal::Up && !no_deps {
                only.extend(self.dependencies_of(&ids));
            }
            (self.published.subscribe(), only)
        });
        // One input for every name, so that the order of the names does not matter.
        let target = match <[Target; 1]>::try_from(targets) {
            Ok([one]) => one,
            Err(_) => Target::Instances(ids.clone()),
        };
        self.feed(match goal {
            Goal::Up if no_deps => Input::StartOnlyRequested(target),
            Goal::Up => Input::StartRequested(target),
            Goal::Down => Input::StopRequested(target),
            Goal::Restarted => Input::RestartRequested(target),
        });
        if wait {
            let reply = match progress {
                Some((live, only)) => {
                    let (answer, answered) = oneshot::channel();
                    let _ = reply.send(Reply::Progress {
                        events: EventStream {
                            live,
                            only: Some(only),
                        },
                        answer: answered,
                    });
                    answer
                }
                None => reply,
            };
            self.waiters.push(Waiter {
                goal,
                instances,
                renewed: HashSet::new(),
                reply,
            });
        } else {
            let _ = reply.send(Reply::Answer(Answer::Ok(self.instances_of(&ids).into())));
        }
    }

    fn signal(&mut self, signal: &str, names: &[String]) -> Result<Answer, ErrorBody> {
        let signal: Signal = signal
            .parse()
            .map_err(|e: tend_core::signal::UnknownSignal| {
                ErrorBody::new(ErrorCode::BadRequest, e.to_string())
            })?;
        let ids = self.instances_in(&self.targets(names, false)?);
        let mut signalled = Vec::new();
        for id in ids {
            // A PID in the view belongs to a run not yet reaped: it cannot have been reused.
            let Some(pid) = self.sup.instance(id).and_then(|v| v.pid) else {
                continue;
            };
            if let Ok(true) = tend_os::signal_group(pid as i32, signal) {
                signalled.push(self.sup.instance_name(id));
            }
        }
        Ok(Answer::Ok(Signalled { signalled }.into()))
    }

    /// The files of a `logs` request, in order (instance, then stdout before stderr). For a
    /// file this tend writes, the index records in hand are written first and its size is
    /// taken: the past lines end there with their times known, and what comes after is live.
    fn log_plan(&self, ids: &[InstanceId], args: &tend_proto::LogsArgs) -> LogPlan {
        let dir = &self.sup.settings().log_dir;
        let mut files = Vec::new();
        for &id in ids {
            let name = self.sup.instance_name(id);
            for stream in [Stream::Stdout, Stream::Stderr] {
                let path = dir.join(crate::paths::log_file_name(&name, stream));
                let limit = self.logs.get(&id).and_then(|logs| {
                    let log = match stream {
                        Stream::Stdout => &logs.stdout,
                        Stream::Stderr => &logs.stderr,
                    };
                    let mut log = log.lock().expect("log lock");
                    (log.path() == path).then(|| {
                        log.flush_index();
                        log.size()
                    })
                });
                // Opened now, on the drainers' thread: the file `limit` is of, whatever
                // rotates before the follower reads on.
                let file = args
                    .follow
                    .then(|| tend_os::open_read_nofollow(&path).ok())
                    .flatten();
                let stamped = self
                    .sup
                    .process(id.process)
                    .is_some_and(|spec| spec.log.timestamps);
                files.push(PlanFile {
                    instance: name.clone(),
                    stream,
                    path,
                    limit,
                    stamped,
                    file,
                });
            }
        }
        let follow = args.follow.then(|| Follow {
            hub: Arc::clone(&self.follow),
            wake: self.follow.subscribe(),
            only: (!args.names.is_empty())
                .then(|| ids.iter().map(|&id| self.sup.instance_name(id)).collect()),
        });
        LogPlan {
            files,
            lines: args.past_lines() as usize,
            since: args.since_ms.map(|ms| ms.saturating_mul(1_000_000)),
            follow,
        }
    }

    /// The instances named, in config order without repeats; all when `names` is empty and
    /// `empty_means_all`.
    fn resolve(
        &self,
        names: &[String],
        empty_means_all: bool,
    ) -> Result<Vec<InstanceId>, ErrorBody> {
        let targets = if names.is_empty() && empty_means_all {
            vec![Target::All]
        } else {
            self.targets(names, empty_means_all)?
        };
        Ok(self.instances_in(&targets))
    }

    /// The names of `ids`, such as `web.0`.
    fn names_of(&self, ids: &[InstanceId]) -> HashSet<String> {
        ids.iter().map(|&id| self.sup.instance_name(id)).collect()
    }

    /// The names of the instances of every process the processes of `ids` depend on,
    /// transitively.
    fn dependencies_of(&self, ids: &[InstanceId]) -> HashSet<String> {
        let mut todo: Vec<String> = ids
            .iter()
            .filter_map(|id| self.sup.process(id.process).map(|p| p.name.clone()))
            .collect();
        let mut seen: HashSet<String> = todo.iter().cloned().collect();
        let mut names = HashSet::new();
        while let Some(process) = todo.pop() {
            let Some(Target::Process(p)) = self.sup.resolve(&process) else {
                continue;
            };
            for dep in &self.sup.process(p).expect("resolved").depends_on {
                if seen.insert(dep.name.clone()) {
                    todo.push(dep.name.clone());
                    if let Some(target) = self.sup.resolve(&dep.name) {
                        let ids = self.sup.targets(&target);
                        names.extend(self.names_of(&ids));
                    }
                }
            }
        }
        names
    }

    /// The instances of `targets`, in the order named, each once.
    /// The terminal `attach` and `resize` name: one live run of an interactive process; its
    /// size is set first when `args` gives one.
    fn attachable(&self, args: &AttachArgs) -> Result<(String, u32, Arc<Attachable>), ErrorBody> {
        let ids = self.instances_in(&self.targets(std::slice::from_ref(&args.name), false)?);
        let id = match ids[..] {
            [id] => id,
            _ => {
                let names: Vec<String> = ids.iter().map(|&id| self.sup.instance_name(id)).collect();
                return Err(ErrorBody::new(
                    ErrorCode::BadRequest,
                    format!(
                        "{} has {} instances: name one of them ({})",
                        args.name,
                        names.len(),
                        names.join(", ")
                    ),
                ));
            }
        };
        let name = self.sup.instance_name(id);
        let view = self
            .sup
            .instance(id)
            .ok_or_else(|| ErrorBody::new(ErrorCode::Failed, format!("{name} is gone")))?;
        if !view.spec.interactive {
            return Err(ErrorBody::new(
                ErrorCode::Failed,
                format!(
                    "{name} is not interactive: it has no terminal to attach to (its stdin is \
                     /dev/null, its output goes through pipes); set interactive = true in \
                     [process.{}] and restart it, or read its output with `tend logs -f {name}`",
                    view.spec.name
                ),
            ));
        }
        let attachable = match (view.run, view.pid) {
            (Some(run), Some(pid)) => self.terminals.get(&run).map(|t| (pid, t)),
            _ => None,
        };
        let Some((pid, attachable)) = attachable else {
            return Err(ErrorBody::new(
                ErrorCode::Failed,
                format!(
                    "{name} is not running (it is {}); start it with `tend start {name}`",
                    super::events::proto_state(view.state)
                ),
            ));
        };
        if let (Some(rows), Some(cols)) = (args.rows, args.cols) {
            tend_os::set_window_size(
                attachable.master.as_fd(),
                tend_os::WindowSize { rows, cols },
            )
            .map_err(|e| {
                ErrorBody::new(
                    ErrorCode::Failed,
                    format!("setting the size of {name}'s terminal: {e}"),
                )
            })?;
        }
        Ok((name, pid, Arc::clone(attachable)))
    }

    fn instances_in(&self, targets: &[Target]) -> Vec<InstanceId> {
        let mut seen = HashSet::new();
        targets
            .iter()
            .flat_map(|t| self.sup.targets(t))
            .filter(|id| seen.insert(*id))
            .collect()
    }

    fn targets(&self, names: &[String], empty_ok: bool) -> Result<Vec<Target>, ErrorBody> {
        if names.is_empty() && !empty_ok {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                "name the processes (web), instances (web.1), or say all",
            ));
        }
        names
            .iter()
            .map(|name| {
                self.sup.resolve(name).ok_or_else(|| {
                    let known: Vec<String> =
                        self.sup.processes().map(|(_, p)| p.name.clone()).collect();
                    ErrorBody::unknown_name(
                        format!(
                            "no process or instance named {name:?}; known processes: {}",
                            if known.is_empty() {
                                "none".to_owned()
                            } else {
                                known.join(", ")
                            }
                        ),
                        known,
                    )
                })
            })
            .collect()
    }

    fn instances_of(&self, ids: &[InstanceId]) -> Instances {
        let now = StdInstant::now();
        let usages = self.usages(ids, now);
        let instances = ids
            .iter()
            .filter_map(|&id| self.sup.instance(id))
            .map(|view| {
                let mut status = status_of(&self.sup.instance_name(view.id), &view, now);
                status.usage = view.run.and_then(|run| usages.get(&run).cloned());
                // OOM kills of the live run so far (the supervisor hears of them at its end).
                if let Some(run) = view.run {
                    status.oom_kills += u64::from(self.cgroups.oom_kills(run));
                }
                if view.state == State::Waiting {
                    status.waiting_for = self
                        .sup
                        .waiting_for(view.id)
                        .into_iter()
                        .map(|unmet| tend_proto::WaitingFor {
                            process: unmet.dependency,
                            condition: unmet.condition.name().to_owned(),
                            state: super::events::proto_state(unmet.state),
                            gave_up: unmet.gave_up,
                            no_instances: unmet.no_instances,
                        })
                        .collect();
                }
                if let Some(logs) = self.logs.get(&view.id) {
                    (status.log_error, status.log_bytes, status.log_write_errors) =
                        logs.report(now);
                }
                status
            })
            .collect();
        Instances {
            instances,
            ..Instances::default()
        }
    }
}

impl Driver {
    /// What the process groups of the live runs of `ids` use: read from /proc, or the reading
    /// of less than [`USAGE_FRESH`] ago when it covered them all, so that a burst of status
    /// requests (a dashboard, a scrape, a load test) walks /proc once, not once each. Nothing
    /// is read between requests.
    fn usages(
        &self,
        ids: &[InstanceId],
        now: StdInstant,
    ) -> std::rc::Rc<std::collections::HashMap<RunId, tend_proto::Usage>> {
        let live: Vec<RunId> = ids
            .iter()
            .filter_map(|&id| self.sup.instance(id)?.run)
            .collect();
        let mut snapshot = self.usage_snapshot.borrow_mut();
        if let Some(last) = snapshot.as_ref() {
            if now.saturating_duration_since(last.taken) < USAGE_FRESH
                && live.iter().all(|run| last.covered.contains(run))
            {
                return std::rc::Rc::clone(&last.usage);
            }
        }
        let groups: HashSet<i32> = ids
            .iter()
            .filter_map(|&id| self.sup.instance(id)?.pid)
            .map(|pid| pid as i32)
            .collect();
        let mut read = tend_os::procfs::group_usage(&groups);
        // A run with a cgroup is counted over it: the processes that left its group too.
        for view in ids.iter().filter_map(|&id| self.sup.instance(id)) {
            let (Some(run), Some(pgid)) = (view.run, view.pid) else {
                continue;
            };
            if let Some(usage) = self.cgroups.usage(run) {
                read.insert(pgid as i32, usage);
            }
        }
        let usage: std::rc::Rc<std::collections::HashMap<_, _>> = std::rc::Rc::new(
            ids.iter()
                .filter_map(|&id| self.sup.instance(id))
                .filter_map(|view| Some((view.run?, self.usage_of(&view, &read, now)?)))
                .collect(),
        );
        *snapshot = Some(UsageSnapshot {
            taken: now,
            covered: live.into_iter().collect(),
            usage: std::rc::Rc::clone(&usage),
        });
        usage
    }

    /// What the process group of the live run of `view` uses, from `usage`; its CPU percent
    /// over the time since the last status that saw this run (or since its spawn).
    fn usage_of(
        &self,
        view: &InstanceView<'_>,
        usage: &std::collections::HashMap<i32, tend_os::procfs::GroupUsage>,
        now: StdInstant,
    ) -> Option<tend_proto::Usage> {
        let (run, pid, since) = (view.run?, view.pid?, view.since?);
        let group = usage.get(&(pid as i32))?;
        let cpu_ms = group.cpu_ticks.saturating_mul(1000) / tend_os::procfs::ticks_per_second();
        let mut samples = self.cpu_samples.borrow_mut();
        let (from, before) = samples.get(&run).copied().unwrap_or((since, 0));
        samples.insert(run, (now, cpu_ms));
        let elapsed = now.saturating_duration_since(from).as_secs_f64();
        let percent = if elapsed > 0.0 {
            cpu_ms.saturating_sub(before) as f64 / 1000.0 / elapsed * 100.0
        } else {
            0.0
        };
        Some(tend_proto::Usage {
            processes: group.processes,
            cpu_ms,
            cpu_percent: tend_proto::Percent((percent * 10.0).round() / 10.0),
            rss_bytes: group.rss_bytes,
        })
    }
}

/// The answer to a reload: what it did (or would do).
fn reloaded_body(summary: tend_core::ReloadSummary) -> Reloaded {
    Reloaded {
        added: summary.added,
        removed: summary.removed,
        changed: summary.changed,
        unchanged: summary.unchanged,
        keys: summary.keys,
        dry_run: false,
        not_running: summary.not_running,
    }
}

/// The answer to a reload while tend stops everything.
fn nothing_to_reload() -> ErrorBody {
    ErrorBody::new(
        ErrorCode::ShuttingDown,
        "tend is stopping everything; nothing to reload",
    )
}

/// Refuses a reload that changes a `[supervisor]` setting tend uses only as it starts:
/// `log_dir` (tend.log and the running processes' log files stay where they were opened, and
/// `tend logs` would look in the new directory; nor would the new one have had the check of
/// `tend up`), `umask` (set when the daemon starts) and `cgroups` (set up at start). The error
/// says what changed and to restart tend, or to set it back to reload the rest; for a
/// `log_dir`, also what `tend up` would refuse of the new directory. (`stop_timeout` reaches
/// the processes' own settings, which a reload applies.) Runs off the driver's thread: it
/// looks at the new directory.
fn start_only_settings(
    old: &tend_core::SupervisorSpec,
    new: &tend_core::SupervisorSpec,
    config: &std::path::Path,
) -> Result<(), crate::config::ConfigError> {
    let refuse = |key: &str, message: String| crate::config::ConfigError {
        file: Some(config.to_owned()),
        line_col: None,
        key: Some(format!("supervisor.{key}")),
        message,
    };
    let restart = |key: &str, old: &str| {
        format!(
            "restart tend to change {key} (`tend down`, then `tend up`), or set it back to \
             {old} to reload the rest"
        )
    };
    if new.log_dir != old.log_dir {
        let (from, to) = (old.log_dir.display(), new.log_dir.display());
        let refused = match super::logfile::check_log_dir(&new.log_dir) {
            Ok(()) => String::new(),
            Err(e) => format!("; before that, fix what `tend up` would refuse: {e}"),
        };
        return Err(refuse(
            "log_dir",
            format!(
                "changed from {from} to {to}, which tend reads only as it starts (tend.log and \
                 the running processes keep their log files in {from}, and `tend logs` would \
                 look in {to}): {}{refused}",
                restart("log_dir", &format!("{from:?}"))
            ),
        ));
    }
    if new.umask != old.umask {
        return Err(refuse(
            "umask",
            format!(
                "changed from \"{:03o}\" to \"{:03o}\", which tend sets as it starts (the \
                 daemon's, and so its processes'): {}",
                old.umask,
                new.umask,
                restart("umask", &format!("\"{:03o}\"", old.umask))
            ),
        ));
    }
    if new.cgroups != old.cgroups {
        return Err(refuse(
            "cgroups",
            format!(
                "changed from {} to {}, which tend sets up as it starts: {}",
                old.cgroups,
                new.cgroups,
                restart("cgroups", &old.cgroups.to_string())
            ),
        ));
    }
    Ok(())
}

/// Whether an instance has settled for a waiting request: `None` while on its way, `Ok` at
/// the goal (running; ready, for a process with a readiness check), `Err` with what keeps it
/// from the goal. `fresh`: for a restart, a new run was seen (a start needs none).
fn settled(
    goal: Goal,
    fresh: bool,
    view: &InstanceView<'_>,
    sup: &tend_core::Supervisor,
) -> Option<Result<(), String>> {
    match goal {
        Goal::Down => match view.state {
            // Stopped once the members of its groups are gone too, not only its leader.
            State::Stopped | State::Exited | State::Failed if sup.has_leftovers(view.id) => None,
            State::Stopped | State::Exited | State::Failed => Some(Ok(())),
            _ if view.want_up => Some(Err("was started again by another request".into())),
            _ => None,
        },
        Goal::Up | Goal::Restarted => match view.state {
            State::Ready if fresh => Some(Ok(())),
            State::Running if fresh && view.spec.ready.is_none() => Some(Ok(())),
            State::Waiting => {
                let unmet = sup.waiting_for(view.id);
                let gave_up = unmet.iter().find(|u| u.gave_up)?;
                if gave_up.no_instances {
                    return Some(Err(format!(
                        "waits for {} to be {}, but {0} has no instances (`tend scale {0}=N`, \
                         or stop this one)",
                        gave_up.dependency,
                        gave_up.condition.name(),
                    )));
                }
                Some(Err(format!(
                    "waits for {} to be {}, but {0} is {} (start it, or stop this one)",
                    gave_up.dependency,
                    gave_up.condition.name(),
                    gave_up.state
                )))
            }
            State::Failed => Some(Err(format!("failed{}", last_exit_text(view)))),
            // A run that ended by policy: fine if it ended well (a one-shot job), else not.
            State::Exited if fresh || matches!(view.last_exit, Some(Err(_))) => {
                Some(match view.last_exit {
                    _ if view.ended_well() => Ok(()),
                    // "could not start: No such file or directory", said once.
                    Some(Err(error)) => Err(format!("could not start: {error}")),
                    _ => Err(format!("did not start{}", last_exit_text(view))),
                })
            }
            State::Stopped if !view.want_up => Some(Err("was stopped by another request".into())),
            _ => None,
        },
    }
}

/// One instance as the protocol reports it.
fn status_of(name: &str, view: &InstanceView<'_>, now: StdInstant) -> InstanceStatus {
    InstanceStatus {
        name: name.to_owned(),
        process: view.spec.name.clone(),
        instance: view.id.replica,
        state: super::events::proto_state(view.state),
        pid: view.pid,
        uptime_ms: view.pid.and(view.since).map(|since| {
            u64::try_from(now.saturating_duration_since(since).as_millis()).unwrap_or(u64::MAX)
        }),
        restarts: u32::try_from(view.restarts).unwrap_or(u32::MAX),
        last_exit: view.last_exit.map(super::events::last_exit),
        log_error: None,
        waiting_for: Vec::new(),
        notify_status: view.status_text.map(console_safe_line),
        main_pid: view.main_pid,
        health: view.health.map(|h| tend_proto::Health {
            healthy: h.healthy,
            failures_in_row: h.failures_in_row,
            last_failure: h.last_failure.map(console_safe_line),
        }),
        usage: None,
        log_bytes: 0,
        log_write_errors: 0,
        retry_in_ms: view
            .deadline
            .filter(|_| view.state == State::Failed)
            .map(|at| {
                u64::try_from(at.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX)
            }),
        last_exit_oom: view.last_exit_oom,
        oom_kills: view.oom_kills,
    }
}

/// A line a child sent (`STATUS=`, a probe's reason) with every escape sequence and control
/// character made visible, so that printing it can do nothing to a terminal.
fn console_safe_line(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    crate::style::console_safe(text.as_bytes(), false, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// ": exited with status 1" for a failure message, or nothing.
fn last_exit_text(view: &InstanceView<'_>) -> String {
    view.last_exit.map_or_else(String::new, |exit| {
        format!(
            ": {}",
            super::events::describe(&super::events::last_exit(exit))
        )
    })
}

/// Descriptors tend keeps besides those of its instances: its control socket and clients, its
/// log, lock and state files, its event loop, and what a spawn holds for a moment (the
/// children's ends of their pipes, the cgroup files they join by).
const FDS_OWN: u64 = 64;

/// The open files tend needs for every instance of `processes` at once, and for itself; and
/// how many instances that is.
fn open_files_needed<'a>(
    processes: impl IntoIterator<Item = &'a tend_core::ProcessSpec>,
) -> (u64, u64) {
    processes
        .into_iter()
        .fold((FDS_OWN, 0), |(fds, instances), spec| {
            let n = u64::from(spec.replicas);
            (fds + fds_per_instance(spec) * n, instances + n)
        })
}

/// Of `processes`, those `tend up` starts: the `autostart` ones and what they depend on,
/// transitively.
fn started_by_up<'a>(processes: &[&'a tend_core::ProcessSpec]) -> Vec<&'a tend_core::ProcessSpec> {
    let mut wanted: std::collections::HashSet<&str> = processes
        .iter()
        .filter(|p| p.autostart)
        .map(|p| p.name.as_str())
        .collect();
    let mut todo: Vec<&str> = wanted.iter().copied().collect();
    while let Some(name) = todo.pop() {
        let Some(p) = processes.iter().find(|p| p.name == name) else {
            continue;
        };
        for dep in &p.depends_on {
            if wanted.insert(dep.name.as_str()) {
                todo.push(dep.name.as_str());
            }
        }
    }
    processes
        .iter()
        .copied()
        .filter(|p| wanted.contains(p.name.as_str()))
        .collect()
}

/// The open files the instances that `tend up` starts of `processes` need, with tend's own;
/// and how many instances that is.
fn open_files_at_up<'a>(
    processes: impl IntoIterator<Item = &'a tend_core::ProcessSpec>,
) -> (u64, u64) {
    let processes: Vec<&tend_core::ProcessSpec> = processes.into_iter().collect();
    open_files_needed(started_by_up(&processes))
}

/// What to do about an open-files limit that is too low, in every refusal that meets one.
const RAISE_NOFILE: &str =
    "raise the limit (`ulimit -n` before `tend up`, or LimitNOFILE= in its systemd unit)";

/// Why a config of `processes` cannot start under tend's open-files limit, if it cannot: what
/// the instances `tend up` starts need, the limit, and what to do. `doing` is the action
/// refused (`start this config`, `reload this config`); a config that needs no more than
/// `needed_now` (what the one it replaces needs) is never refused, as a scale down is not.
pub(super) fn beyond_open_files_limit<'a>(
    processes: impl IntoIterator<Item = &'a tend_core::ProcessSpec>,
    doing: &str,
    needed_now: u64,
) -> Option<String> {
    let (limit, _) = tend_os::current_limit(tend_os::Resource::RLIMIT_NOFILE)?;
    let (needed, instances) = open_files_at_up(processes);
    (needed > limit && needed > needed_now).then(|| {
        format!(
            "cannot {doing}: the {instances} instances it starts would need about {needed} \
             open files (the pipes and log files of each, and tend's own), more than tend's \
             limit of {limit} (RLIMIT_NOFILE); lower their replicas (at most about {} \
             instances fit at 4 files each, fewer with readiness or health probes), or \
             {RAISE_NOFILE}",
            limit.saturating_sub(FDS_OWN) / 4
        )
    })
}

/// For `tend check`: why `tend up` of `processes` from this shell would be refused for open
/// files, if it would (against the hard `RLIMIT_NOFILE`, which `tend up` raises its soft one
/// to).
pub fn open_files_beyond_hard_limit<'a>(
    processes: impl IntoIterator<Item = &'a tend_core::ProcessSpec>,
) -> Option<String> {
    let (_, hard) = tend_os::current_limit(tend_os::Resource::RLIMIT_NOFILE)?;
    let (needed, instances) = open_files_at_up(processes);
    (needed > hard).then(|| {
        format!(
            "the {instances} instances `tend up` starts would need about {needed} open files, \
             more than the hard RLIMIT_NOFILE here ({hard}): `tend up` from this shell would \
             refuse to start; lower their replicas, or raise the limit (`ulimit -Hn`, or \
             LimitNOFILE= in tend's systemd unit)"
        )
    })
}

/// The descriptors tend holds for each instance of `spec` while it runs: the reading ends of
/// its stdout and stderr pipes (or its terminal) and its two log files, and one more for a
/// notify socket, a notify fd's pipe or a readiness probe's connection, and for a health
/// probe's. (An instance that printed also has log indexes, but tend opens those only to
/// write them.)
fn fds_per_instance(spec: &tend_core::ProcessSpec) -> u64 {
    let ready = spec
        .ready
        .as_ref()
        .is_some_and(|ready| !matches!(ready.check, tend_core::ReadyCheck::LogLine(_)));
    4 + u64::from(ready) + u64::from(spec.health.is_some())
}

impl Driver {
    /// Why starting `ids` (and what they depend on, unless `no_deps`) would take tend past
    /// its open-files limit, if it would: the instances up or wanted up, with those, against
    /// the limit. A start that needs no more than tend holds now is never refused.
    fn start_beyond_open_files(&self, ids: &[InstanceId], no_deps: bool) -> Option<String> {
        let (limit, _) = tend_os::current_limit(tend_os::Resource::RLIMIT_NOFILE)?;
        let mut starting: HashSet<InstanceId> = ids.iter().copied().collect();
        if !no_deps {
            for name in self.dependencies_of(ids) {
                if let Some(target) = self.sup.resolve(&name) {
                    starting.extend(self.sup.targets(&target));
                }
            }
        }
        let (mut now, mut after, mut instances) = (FDS_OWN, FDS_OWN, 0u64);
        for view in self.sup.instances() {
            let per = fds_per_instance(view.spec);
            let up = view.run.is_some() || view.want_up;
            if up {
                now += per;
            }
            if up || starting.contains(&view.id) {
                after += per;
                instances += 1;
            }
        }
        (after > limit && after > now).then(|| {
            let mut named: Vec<String> = ids
                .iter()
                .take(3)
                .map(|&id| self.sup.instance_name(id))
                .collect();
            if ids.len() > 3 {
                named.push(format!("and {} more", ids.len() - 3));
            }
            format!(
                "starting {} would make {instances} instances run, which need about {after} \
                 open files (the pipes and log files of each, and tend's own), more than tend's \
                 limit of {limit} (RLIMIT_NOFILE); start fewer, stop others, or {RAISE_NOFILE} \
                 and start tend again",
                named.join(" ")
            )
        })
    }

    /// Why the counts of `plan` (slot, name, from, to) must be refused for want of open
    /// files, if they must: every instance of every process, after the scale, could not have
    /// its descriptors under tend's `RLIMIT_NOFILE` (its soft limit, which tend raised to the
    /// hard one at start). Spawns beyond it fail with EMFILE, one by one, each instance
    /// restarted and failing again. A scale that needs no more than now is never refused, so
    /// that a tend with too many instances can always be scaled down.
    fn beyond_open_files(&self, plan: &[(usize, String, u32, u32)]) -> Option<String> {
        let (limit, _) = tend_os::current_limit(tend_os::Resource::RLIMIT_NOFILE)?;
        let (mut now, mut after, mut instances) = (FDS_OWN, FDS_OWN, 0u64);
        for (process, spec) in self.sup.processes() {
            let per = fds_per_instance(spec);
            let to = plan
                .iter()
                .find(|step| step.0 == process)
                .map_or(spec.replicas, |step| step.3);
            now += per * u64::from(spec.replicas);
            after += per * u64::from(to);
            instances += u64::from(to);
        }
        if after <= limit || after <= now {
            return None;
        }
        let pairs: Vec<String> = plan
            .iter()
            .map(|(_, name, _, to)| format!("{name}={to}"))
            .collect();
        // With one process named, the most it may have with the others as they are.
        let fit = match plan {
            [(process, name, _, to)] => {
                let per = fds_per_instance(self.sup.process(*process)?);
                let others = after - per * u64::from(*to);
                let room = limit.checked_sub(others).map(|room| room / per);
                room.map(|most| format!("scale to at most {name}={most}, or "))
            }
            _ => None,
        };
        Some(format!(
            "{}: {instances} instances in all would need about {after} open files (the pipes \
             and log files of each, and tend's own), more than tend's limit of {limit} \
             (RLIMIT_NOFILE); {}{RAISE_NOFILE} and start tend again",
            pairs.join(" "),
            fit.unwrap_or_else(|| "ask for fewer instances, or ".to_owned()),
        ))
    }
}

impl Driver {
    /// `status`: the named instances (every one, without names), and the processes named
    /// (every one, without names) that have no instance: scaled to 0, they have no row.
    fn status(&self, names: &[String]) -> Result<Answer, ErrorBody> {
        let targets = if names.is_empty() {
            vec![Target::All]
        } else {
            self.targets(names, true)?
        };
        let mut body = self.instances_of(&self.instances_in(&targets));
        body.no_instances = self
            .sup
            .processes()
            .filter(|&(process, spec)| {
                let asked = targets
                    .iter()
                    .any(|t| *t == Target::All || *t == Target::Process(process));
                // A process a reload removed no longer resolves to its slot.
                let current = self.sup.resolve(&spec.name) == Some(Target::Process(process));
                spec.replicas == 0 && asked && current
            })
            .map(|(_, spec)| spec.name.clone())
            .collect();
        Ok(Answer::Ok(body.into()))
    }
}
