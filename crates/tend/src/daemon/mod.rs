//! The supervisor at run time: one loop that owns the [`Supervisor`], turns signals, exits and
//! timers into its inputs, and carries out its effects.
//!
//! Everything runs on one thread (a tokio `current_thread` runtime): the loop, the reaper and
//! the pipe drainers. Only file reads whose time the user's files decide (the config and env
//! files of a reload, the tails of `tend logs`) go to tokio's blocking pool; their results
//! come back to the loop. The reaper is the only caller of `waitpid` in tend; because it runs on
//! the same thread as spawning, a PID is always registered before its exit can be reaped, and
//! a group is signalled through its run only while the leader is unreaped. What to do with a
//! group that outlives its leader is the supervisor's decision (a leftover); the driver only
//! tells it, on this same thread, when tend has reaped the orphan that was its last member.

pub mod attach;
pub mod cgroups;
mod checks;
pub mod control;
pub mod drain;
pub mod events;
pub mod follow;
pub mod http;
pub mod lines;
pub mod logfile;
pub mod logindex;
pub mod output;
pub mod probe;
mod requests;
pub use requests::open_files_beyond_hard_limit;
pub mod survivors;
#[cfg(test)]
mod tests;
pub mod world;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use tend_core::{Effect, Input, InstanceId, Phase, RunId, Signal, Supervisor, Target};
use tend_os::{LockError, LockFile, ReadySender};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use self::control::Reply;
use self::drain::{drain, Sink};
use self::follow::FollowHub;
use self::logfile::LogFile;
use self::output::Terminal;
use self::requests::Waiter;
use self::survivors::{GroupRecord, StateFile};
use self::world::{Event, Os, World};
use crate::paths::{log_file_name, RuntimePaths};

/// How long tend waits, once every run has ended, for pipes still held open by processes that
/// left their group, before it exits anyway.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// How often, while everything stops, tend looks whether groups left behind are empty.
const GROUP_RECHECK: Duration = Duration::from_millis(100);
/// How often the memory of a run with a `memory_limit` is sampled (one pass over /proc for
/// all of them).
const MEMORY_SAMPLE_PERIOD: Duration = Duration::from_secs(1);

/// How many events may wait for a slow `events` client before it misses some.
const LIVE_BACKLOG: usize = 1024;

/// What `tend up` was asked to do.
#[derive(Debug)]
pub struct UpOptions {
    /// Instances to start; `None` starts the autostart processes.
    pub targets: Option<Vec<Target>>,
    /// Start only `targets`, not what they depend on.
    pub no_deps: bool,
    /// Print only tend's own notices, not the children's lines.
    pub quiet: bool,
    /// The config file, absolute: re-read by `reload`.
    pub config: PathBuf,
    /// The control socket and lock file.
    pub paths: RuntimePaths,
    /// In daemon mode: where to report that the daemon is ready, or why it failed.
    pub ready: Option<ReadySender>,
    /// tend was started with SIGHUP ignored (`nohup`): in the foreground, a hangup of the
    /// terminal is then ignored rather than a stop.
    pub nohup: bool,
    /// The HTTP API's settings, when it is on.
    pub http: Option<crate::config::HttpSpec>,
    /// `--formation`: applied again at each reload.
    pub formation: crate::config::Formation,
}

/// What the child does to become who `spec` says, within its limits: the limits, umask,
/// nice value and OOM score first (lowering some needs the privilege about to be dropped),
/// then the groups, the group id, and last the user id.
fn identity_actions(spec: &tend_core::ProcessSpec) -> Vec<tend_os::ChildAction<'_>> {
    use tend_os::ChildAction;
    let mut actions = Vec::new();
    for limit in &spec.rlimits {
        actions.push(ChildAction::SetRlimit {
            resource: crate::config::identity::os_resource(limit.kind),
            soft: limit.soft,
            hard: limit.hard,
        });
    }
    if let Some(mask) = spec.umask {
        actions.push(ChildAction::Umask(mask));
    }
    if let Some(nice) = spec.nice {
        actions.push(ChildAction::Nice(nice));
    }
    if let Some(adj) = spec.oom_score_adj {
        actions.push(ChildAction::OomScoreAdj(adj));
    }
    if let Some(identity) = &spec.identity {
        // Only root may set groups and ids; the config refuses groups to anyone else, and
        // lets a user or group through only when it is tend's own. So a tend that is not
        // root runs the process as itself, with its own group: the user's primary group is
        // another only when tend was started with another (by `sg`, or set-gid), and it could
        // not set that one (EPERM at every spawn).
        let root = tend_os::users::effective_uid() == 0;
        if root {
            actions.push(ChildAction::SetGroups(&identity.groups));
            actions.push(ChildAction::SetGid(identity.gid));
        }
        if let Some(user) = &identity.user {
            actions.push(ChildAction::SetUid(user.uid));
        }
    }
    actions
}

/// With `user`, the user's `HOME`, `USER` and `LOGNAME` in `env`, as login and su set them,
/// unless the process's own `env` sets them.
fn user_env(spec: &tend_core::ProcessSpec, env: &mut Vec<(String, String)>) {
    let Some(user) = spec.identity.as_ref().and_then(|id| id.user.as_ref()) else {
        return;
    };
    for (key, value) in [
        ("HOME", user.home.display().to_string()),
        ("USER", user.name.clone()),
        ("LOGNAME", user.name.clone()),
    ] {
        if !spec.env.iter().any(|(k, _)| k == key) {
            env.retain(|(k, _)| k != key);
            env.push((key.into(), value));
        }
    }
}

/// A child reaped, with what tend knew of its run.
struct Reaped {
    pid: i32,
    status: tend_core::ExitStatus,
    live: LiveRun,
    /// Whether anything of its group (or cgroup) lived on when it was reaped.
    group_left: bool,
}

/// The longest a reaped run's exit waits for its output to be read to its end: a pipe that a
/// process outside the run holds open never ends.
const DRAIN_WAIT: Duration = Duration::from_millis(50);

/// What a spawn gives the driver to read.
enum Output {
    /// stdout and stderr on pipes.
    Pipes(tend_os::Child),
    /// An interactive run: its pty's master.
    Terminal {
        pid: tend_os::Pid,
        master: std::os::fd::OwnedFd,
    },
}

impl Output {
    fn pid(&self) -> tend_os::Pid {
        match self {
            Output::Pipes(child) => child.pid,
            Output::Terminal { pid, .. } => *pid,
        }
    }
}

/// A run the driver has spawned and not yet reaped.
struct LiveRun {
    run: RunId,
    instance: InstanceId,
}

/// A group spawned this turn whose record waits for [`Driver::record_spawned`].
struct Unrecorded {
    pid: i32,
    stop_signal: Signal,
    stop_timeout: Duration,
    instance: Arc<str>,
}

/// The two log files of an instance, shared by the drainers of all its runs (a grandchild of
/// an earlier run may still write while a later run does).
#[derive(Clone)]
struct InstanceLogs {
    stdout: Arc<Mutex<LogFile>>,
    stderr: Arc<Mutex<LogFile>>,
    prefix: Arc<str>,
    /// The instance's name, for `logs -f`.
    name: Arc<str>,
    /// The log settings and directory the files were opened with; a reload that changes
    /// either reopens them.
    log: tend_core::LogSpec,
    dir: PathBuf,
}

impl InstanceLogs {
    /// What `status` reports of the two log files, each locked once: the one that has been
    /// failing longer, if any; and the bytes written and writes failed over both since tend
    /// opened them.
    fn report(&self, now: std::time::Instant) -> (Option<tend_proto::LogError>, u64, u64) {
        let (mut error, mut bytes, mut errors) = (None, 0, 0);
        for log in [&self.stdout, &self.stderr] {
            let log = log.lock().expect("log lock");
            let (written, failed) = log.counters();
            bytes += written;
            errors += failed;
            let Some(failing) = log.failing() else {
                continue;
            };
            if error
                .as_ref()
                .is_some_and(|(since, _)| *since <= failing.since)
            {
                continue;
            }
            let failing_ms =
                u64::try_from(now.saturating_duration_since(failing.since).as_millis())
                    .unwrap_or(u64::MAX);
            error = Some((
                failing.since,
                tend_proto::LogError {
                    file: log.path().display().to_string(),
                    error: failing.error.clone(),
                    failing_ms,
                },
            ));
        }
        (error.map(|(_, e)| e), bytes, errors)
    }
}

/// What SIGHUP means to this tend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hangup {
    /// A daemon has no terminal: SIGHUP asks it to re-read its config, as for most daemons.
    Reload,
    /// In the foreground, SIGHUP means the terminal closed: stop everything, as any job of a
    /// terminal does (foreman and overmind stop too).
    Stop,
    /// In the foreground under `nohup`, which asked for hangups to be ignored.
    Ignore,
}

struct Driver {
    sup: Supervisor,
    /// What the driver does to the world: tend-os, or a fake in tests.
    world: Box<dyn World>,
    /// Where every input of the driver arrives; the sender side is handed to the sources.
    events: mpsc::UnboundedSender<Event>,
    hangup: Hangup,
    terminal: Terminal,
    /// Live runs by PID (= process group).
    by_pid: HashMap<i32, LiveRun>,
    /// PID of each live run.
    by_run: HashMap<RunId, i32>,
    /// Runs whose leader was reaped while something of them lived on (the supervisor's
    /// leftovers), with their group id: watched until empty, which tend notices when it reaps
    /// an orphan, and reports with [`Input::GroupEmpty`].
    groups_left: HashMap<RunId, i32>,
    logs: HashMap<InstanceId, InstanceLogs>,
    drainers: JoinSet<()>,
    effects: VecDeque<Effect>,
    /// The supervisor's events, for whoever subscribes (the event stream of later issues).
    published: broadcast::Sender<Arc<tend_proto::Event>>,
    /// Where `logs -f` clients hear that a log grew, and of the logs opened.
    follow: Arc<FollowHub>,
    /// The config file, re-read by `reload` and SIGHUP.
    config: PathBuf,
    /// `--formation`, applied to each re-read.
    formation: crate::config::Formation,
    /// When the memory of the runs with a `memory_limit` was last sampled.
    memory_sampled_at: Option<Instant>,
    /// A cgroup per instance, where tend may make them.
    cgroups: cgroups::Cgroups,
    /// Told when each output stream of a live run has been read to its end.
    drain_done: HashMap<RunId, Vec<oneshot::Receiver<()>>>,
    /// The processes whose cgroup limits were said to be unenforceable here.
    limits_warned: HashSet<String>,
    /// Requests waiting for their instances to reach the wanted state.
    waiters: Vec<Waiter>,
    /// `stop` requests so far: a `restart` that read env files meanwhile does not undo one.
    stops_asked: u64,
    /// The `reload` requests being applied, answered by `Effect::Reloaded`.
    reload_replies: Vec<oneshot::Sender<Reply>>,
    /// Reloads whose config is being read off this thread, and those asked for meanwhile.
    reloads: requests::Reloads,
    /// `down` requests, answered just before tend exits.
    down_replies: Vec<oneshot::Sender<Reply>>,
    /// The readiness and liveness checks of the live runs.
    checks: checks::Checks,
    /// The signal whose second arrival killed everything, if one did.
    killed_by: Option<Signal>,
    /// The CPU time of each live run's group when a status last looked, for its percent.
    cpu_samples: std::cell::RefCell<HashMap<RunId, (std::time::Instant, u64)>>,
    /// The last reading of the groups' use, reused by status requests for a moment.
    usage_snapshot: std::cell::RefCell<Option<requests::UsageSnapshot>>,
    /// The record of live groups, for the next tend if this one dies without stopping them.
    state: StateFile,
    /// Groups spawned this turn, not yet in `state`: [`Driver::record_spawned`] reads their
    /// leaders' start times from /proc before the state file is saved and before any reap.
    unrecorded: Vec<Unrecorded>,
    /// Saving the state file failed last time (said once, until it works again).
    state_failing: bool,
    /// The terminals of live interactive runs, for `attach`.
    terminals: HashMap<RunId, Arc<attach::Attachable>>,
    /// Told `true` when tend begins to stop, for the HTTP API to drain.
    stopping: Option<tokio::sync::watch::Sender<bool>>,
    /// A stop waits for the HTTP API to drain.
    http_draining: bool,
}

/// Runs the supervisor until it is told to stop, serving the control socket; returns tend's
/// exit code. In daemon mode (`options.ready`), success or failure of the start is reported
/// to the waiting parent; every error before that is reported there too.
pub fn up(sup: Supervisor, mut options: UpOptions) -> Result<u8> {
    let mut ready = options.ready.take();
    let daemon = ready.is_some();
    // While tend has one thread (the terminal's starts below): the whole open-files limit, and
    // a descriptor table big enough for every child's pipes, log files, indexes and notify
    // socket, so that it never grows while shared (each growth then waits for the kernel).
    // The errors of raising the limit are reported by `start`, which raises it again.
    let _ = tend_os::raise_nofile_limit();
    let instances: u32 = sup.processes().map(|(_, p)| p.replicas).sum();
    tend_os::reserve_fds(instances.saturating_mul(8).saturating_add(64));
    let width = sup
        .processes()
        .map(|(_, p)| p.name.len() + 1 + (p.replicas - 1).to_string().len())
        .max()
        .unwrap_or(0)
        .max(4);
    // A daemon's stdout is tend.log: tend's notices with timestamps, no children's lines.
    let tend_log = daemon.then(|| sup.settings().log_dir.join("tend.log"));
    let (terminal, writer) = Terminal::start(width, options.quiet || daemon, tend_log.clone());
    // What the start has to say goes to the terminal (tend.log for a daemon) and, for a daemon,
    // to the waiting `tend up -d` too.
    let mut say = |line: String| {
        if let Some(ready) = ready.as_mut() {
            let _ = ready.note(&line);
        }
        terminal.notice(line);
    };
    let started = start(&sup, &options, tend_log.as_deref(), &mut say).and_then(|started| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the runtime")?;
        Ok((started, runtime))
    });
    let ((lock, listener, http_listener), runtime) = match started {
        Ok(started) => started,
        Err(e) => {
            if let Some(ready) = ready {
                let _ = ready.failed(&format!("{e:#}"));
            }
            drop(terminal);
            writer.finish();
            return Err(e);
        }
    };
    let socket = options.paths.socket.clone();
    let code = runtime.block_on(async {
        let listener =
            tokio::net::UnixListener::from_std(listener).context("serving the control socket")?;
        let (events_tx, events) = mpsc::unbounded_channel();
        // Signal streams first: an exit or a Ctrl+C from now on is never missed.
        forward_signals(&events_tx)?;
        let mut hello = tend_proto::ServerHello::new(
            format!("tend {}", env!("CARGO_PKG_VERSION")),
            std::process::id(),
            options.config.display().to_string(),
        );
        let started = std::time::SystemTime::now();
        hello.started_ms = Some(tend_core::time::unix_millis(started));
        tokio::spawn(control::serve(listener, hello, events_tx.clone()));
        let (stopping, stopping_rx) = tokio::sync::watch::channel(false);
        let http_server = match http_listener {
            Some((listener, guard)) => {
                let listener =
                    tokio::net::TcpListener::from_std(listener).context("serving the HTTP API")?;
                let server = Arc::new(http::Server {
                    guard,
                    driver: events_tx.clone(),
                    stopping: stopping_rx,
                    started: Some(started),
                });
                Some(tokio::spawn(http::serve(listener, server)))
            }
            None => None,
        };
        let hangup = match (daemon, options.nohup) {
            (true, _) => Hangup::Reload,
            (false, false) => Hangup::Stop,
            (false, true) => Hangup::Ignore,
        };
        let mut driver = Driver::new(
            sup,
            Box::new(Os),
            events_tx,
            terminal,
            hangup,
            options.config.clone(),
            StateFile::new(options.paths.state.clone()),
        );
        driver.formation = options.formation.clone();
        let daemon = ready.is_some();
        if let Some(ready) = ready {
            ready
                .ready()
                .context("telling the parent the daemon is ready")?;
        }
        driver.terminal.notice(format!(
            "tend {} (pid {}) is up; control socket {}",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            socket.display()
        ));
        // Before anything starts: tend's cgroups, and whatever a predecessor that died left
        // in them (processes that escaped its process groups, which the state file misses).
        // A daemon's parent (`tend up -d`, told it is ready) may still be in tend's cgroup
        // for a moment, and the cgroup must hold no other process to hand controllers down.
        let id = format!(
            "{:016x}",
            crate::hash::fnv1a(socket.as_os_str().as_encoded_bytes())
        );
        let (cgroups, notice) = if driver.sup.settings().cgroups {
            let patience = if daemon {
                cgroups::PARENT_PATIENCE
            } else {
                std::time::Duration::ZERO
            };
            cgroups::Cgroups::setup(&id, patience)
        } else {
            (
                cgroups::Cgroups::default(),
                "cgroups: off ([supervisor] cgroups = false); stopping reaches each process \
                 group only"
                    .to_owned(),
            )
        };
        driver.terminal.notice(notice);
        cgroups.sweep_strangers();
        let swept = cgroups.sweep();
        if swept > 0 {
            let runs = if swept == 1 { "run" } else { "runs" };
            driver.terminal.notice(format!(
                "killed what a previous tend left in the cgroups of {swept} {runs}"
            ));
        }
        driver.cgroups = cgroups;
        if driver.sup.processes().next().is_none() {
            driver.terminal.notice(format!(
                "{} defines no process, so nothing runs; add a [process.NAME] table with a \
                 command, then `tend reload` (or stop tend with Ctrl+C or `tend down`)",
                options.config.display()
            ));
        }
        if http_server.is_some() {
            driver.stopping = Some(stopping);
        }
        let code = driver.run(options.targets, options.no_deps, events).await;
        // Reap what the last kills left (a process that had escaped its group, now a zombie
        // of tend's), so that the cgroups are empty, then remove them.
        while let Ok(Some(_)) = tend_os::reap_one() {}
        driver.cgroups.remove_all();
        // Requests still in flight finish (each connection within http::DRAIN).
        if let Some(server) = http_server {
            let _ = tokio::time::timeout(http::DRAIN, server).await;
        }
        code
    });
    // A blocking task still running (a config or log file on a hung file system) must not keep
    // tend from exiting: its thread dies with the process.
    runtime.shutdown_background();
    // The socket goes first, so that no client connects to a tend that is gone; then the lock
    // file, removed while still held (the next tend checks it locked the file the path names),
    // and released.
    let _ = std::fs::remove_file(&socket);
    if options.http.is_some() {
        let _ = std::fs::remove_file(&options.paths.http);
    }
    let _ = lock.remove();
    writer.finish();
    code
}

/// What [`start`] gives the runtime: the lock held, the control socket, the HTTP API's listener
/// and checks (when it is on).
type Started = (
    LockFile,
    std::os::unix::net::UnixListener,
    Option<(std::net::TcpListener, http::guard::Guard)>,
);

/// Everything before the runtime: process-wide settings, the log directory, the lock that
/// makes this the only tend of its config, a daemon's stdout and stderr on `tend_log`, the
/// survivors of a predecessor that died, and the control socket.
fn start(
    sup: &Supervisor,
    options: &UpOptions,
    tend_log: Option<&std::path::Path>,
    say: &mut dyn FnMut(String),
) -> Result<Started> {
    tend_os::ensure_std_fds_open().context("checking tend's standard file descriptors")?;
    tend_os::raise_nofile_limit().context("raising the open-files limit")?;
    // All or nothing: not some instances running and the others failing their spawns.
    let processes = sup.processes().map(|(_, p)| &**p);
    if let Some(why) = requests::beyond_open_files_limit(processes, "start this config", 0) {
        anyhow::bail!("{why}");
    }
    tend_os::set_child_subreaper().context("becoming a child subreaper")?;
    logfile::prepare_log_dir(&sup.settings().log_dir)?;
    check_socket_dir(&options.paths.socket)?;
    let lock = match LockFile::acquire(&options.paths.lock) {
        Ok(lock) => lock,
        Err(LockError::Held { pid }) => anyhow::bail!(
            "tend is already running for {}{}; see it with `tend status -c {0}`, stop it with `tend down -c {0}`",
            options.config.display(),
            pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
        ),
        Err(LockError::Os(e)) => return Err(e).context("taking the lock file"),
    };
    // Only the holder of the lock writes to tend.log: a daemon refused above (another tend of
    // this config runs, and owns tend.log) tells only the waiting `tend up -d`.
    if let Some(tend_log) = tend_log {
        tend_os::redirect_stdio_to(tend_log)?;
    }
    // Holding the lock, tend is the only one of its config: a state file was left by one that
    // died. Its processes are stopped before anything starts, so none runs twice.
    survivors::sweep(&options.paths.state, &mut *say).with_context(|| {
        format!(
            "stopping what a previous tend left running (recorded in {})",
            options.paths.state.display()
        )
    })?;
    // The HTTP listener before the control socket: a start that fails leaves no socket behind.
    let http = match &options.http {
        Some(spec) => Some(open_http(spec, &options.paths.http, say)?),
        None => None,
    };
    let listener = tend_os::bind_listener(&options.paths.socket)
        .context("opening the control socket")
        .and_then(|listener| {
            listener
                .set_nonblocking(true)
                .context("making the control socket non-blocking")?;
            Ok(listener)
        })
        .inspect_err(|_| {
            if http.is_some() {
                let _ = std::fs::remove_file(&options.paths.http);
            }
        })?;
    Ok((lock, listener, http))
}

/// The HTTP API's listener and checks: bound now, so that an address in use stops the start
/// before anything runs; its address (with the port it got) and token are written 0600 beside
/// the socket, for `tend http-url`.
fn open_http(
    spec: &crate::config::HttpSpec,
    file: &std::path::Path,
    say: &mut dyn FnMut(String),
) -> Result<(std::net::TcpListener, http::guard::Guard)> {
    let listener = std::net::TcpListener::bind(spec.listen).with_context(|| {
        format!(
            "listening for HTTP on {} ([http] listen, or --http); another program may use it: \
             choose another port",
            spec.listen
        )
    })?;
    listener
        .set_nonblocking(true)
        .context("making the HTTP listener non-blocking")?;
    let listen = listener
        .local_addr()
        .context("the HTTP listener's address")?;
    let token = http::token(spec.token_file.as_deref())?;
    write_private(file, &http::runtime_record(listen, &token))
        .with_context(|| format!("writing the HTTP API's token to {}", file.display()))?;
    if !listen.ip().is_loopback() {
        say(format!(
            "warning: the HTTP API listens on {listen}, beyond this machine (allow_remote): \
             anyone who can reach it may try tokens, and it is plain HTTP"
        ));
    }
    say(format!(
        "HTTP API on http://{listen}/ (`tend http-url` prints the address with its token)"
    ));
    Ok((
        listener,
        http::guard::Guard {
            listen,
            remote: spec.allow_remote,
            token,
            metrics_public: spec.metrics_public,
        },
    ))
}

/// Writes `bytes` to `path` readable by tend's user only, refusing to follow a symlink.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)
}

impl Driver {
    async fn run(
        &mut self,
        targets: Option<Vec<Target>>,
        no_deps: bool,
        mut events: mpsc::UnboundedReceiver<Event>,
    ) -> Result<u8> {
        match targets {
            Some(targets) if no_deps => {
                for target in targets {
                    self.feed(Input::StartOnlyRequested(target));
                }
            }
            targets => self.feed(Input::Up(targets)),
        }
        self.save_state();
        while self.sup.phase() != Phase::Done {
            let deadline = self.next_wake();
            tokio::select! {
                Some(event) = events.recv() => {
                    if matches!(event, Event::ChildExited) {
                        // What a child printed before it exited is in its pipes: the
                        // drainers take it first, so its last lines come before the notice
                        // that it ended.
                        self.reap_after_output().await;
                    } else {
                        self.event(event)
                    }
                }
                () = sleep_until(deadline) => self.tick(),
            }
            // A group left behind may have emptied without tend reaping anything (its last
            // member's parent left the group and reaped it): look once per turn.
            if !self.groups_left.is_empty() {
                self.forget_empty_groups();
            }
            self.check_waiters();
            self.save_state();
            if self.stopping_all() {
                if let Some(stopping) = &self.stopping {
                    stopping.send_if_modified(|s| !std::mem::replace(s, true));
                }
            }
        }
        self.finish_output().await;
        if let Err(e) = self.state.remove_file() {
            self.terminal.notice(format!(
                "removing the state file {} failed: {e}",
                self.state.path().display()
            ));
        }
        self.answer_down().await;
        Ok(match (self.sup.exit_code(), self.killed_by) {
            (0, Some(signal)) => 128u8.saturating_add(tend_os::signal_number(signal) as u8),
            (code, _) => code,
        })
    }

    /// A driver around `sup` that acts on the world through `world` and hands `events` to the
    /// sources it starts itself (reloads).
    fn new(
        sup: Supervisor,
        world: Box<dyn World>,
        events: mpsc::UnboundedSender<Event>,
        terminal: Terminal,
        hangup: Hangup,
        config: PathBuf,
        state: StateFile,
    ) -> Driver {
        Driver {
            sup,
            world,
            events,
            hangup,
            terminal,
            by_pid: HashMap::new(),
            by_run: HashMap::new(),
            groups_left: HashMap::new(),
            logs: HashMap::new(),
            drainers: JoinSet::new(),
            effects: VecDeque::new(),
            follow: Arc::new(FollowHub::default()),
            published: broadcast::channel(LIVE_BACKLOG).0,
            config,
            formation: crate::config::Formation::default(),
            memory_sampled_at: None,
            cgroups: cgroups::Cgroups::default(),
            drain_done: HashMap::new(),
            limits_warned: HashSet::new(),
            waiters: Vec::new(),
            stops_asked: 0,
            reload_replies: Vec::new(),
            reloads: requests::Reloads::default(),
            down_replies: Vec::new(),
            checks: checks::Checks::default(),
            killed_by: None,
            cpu_samples: Default::default(),
            usage_snapshot: Default::default(),
            state,
            unrecorded: Vec::new(),
            state_failing: false,
            terminals: HashMap::new(),
            stopping: None,
            http_draining: false,
        }
    }

    /// Acts on one event.
    fn event(&mut self, event: Event) {
        match event {
            Event::ChildExited => self.reap(),
            Event::Signal(Signal::Int) => self.shutdown("SIGINT", Some(Signal::Int)),
            Event::Signal(Signal::Term) => self.shutdown("SIGTERM", Some(Signal::Term)),
            Event::Signal(Signal::Hup) => match self.hangup {
                Hangup::Reload => {
                    self.terminal
                        .notice("SIGHUP received: reloading the config".into());
                    self.reload(None, false);
                }
                Hangup::Stop => self.shutdown("SIGHUP", Some(Signal::Hup)),
                Hangup::Ignore => self.terminal.notice(
                    "SIGHUP ignored (tend was started under nohup); `tend reload` re-reads the config"
                        .into(),
                ),
            },
            Event::Signal(_) => {}
            Event::Control(command) => self.command(command),
            Event::Loaded(result) => self.loaded(result),
            Event::EnvRead {
                args,
                stops_asked,
                reply,
                read,
            } => self.env_read(args, stops_asked, reply, read),
            Event::Readiness { run, fact } => self.feed(Input::Readiness { run, fact }),
            Event::HealthChecked { run, result } => self.feed(Input::HealthChecked { run, result }),
            Event::HttpDrained => {
                // A stop asked for while the HTTP API drained goes on now.
                if std::mem::take(&mut self.http_draining) && !self.stopping_all() {
                    self.feed(Input::ShutdownRequested { force: false });
                }
            }
        }
    }

    /// Answers every `down` request now that everything has stopped, and gives the
    /// connections a moment to write the answers before the process exits.
    async fn answer_down(&mut self) {
        let mut written = Vec::new();
        for reply in self.down_replies.drain(..) {
            let (tx, rx) = oneshot::channel();
            let answer = tend_proto::Answer::Ok(tend_proto::Done {}.into());
            if reply
                .send(Reply::Final {
                    answer,
                    written: tx,
                })
                .is_ok()
            {
                written.push(rx);
            }
        }
        for rx in written {
            let _ = tokio::time::timeout(Duration::from_secs(1), rx).await;
        }
    }

    /// Whether everything is being stopped (a stop of everything was asked for).
    fn stopping_all(&self) -> bool {
        self.sup.phase() != Phase::Running
    }

    /// Stops everything, asked by `name` (a signal, or `tend down`). A second request while
    /// everything stops kills at once; if a signal asked for that, tend's exit code says so
    /// (128 + the signal, as a shell's: 130 after a second Ctrl+C).
    fn shutdown(&mut self, name: &str, signal: Option<Signal>) {
        let force = self.stopping_all() || self.http_draining;
        if force && self.killed_by.is_none() {
            self.killed_by = signal;
        }
        if force {
            self.terminal
                .notice(format!("{name} again: killing every process group now"));
            self.http_draining = false;
            self.feed(Input::ShutdownRequested { force });
            return;
        }
        // With the HTTP API on, it drains first: no new connection, the requests in flight
        // answered, the streams ended; then everything stops (Event::HttpDrained).
        if let Some(stopping) = &self.stopping {
            if !*stopping.borrow() {
                stopping.send_replace(true);
                self.http_draining = true;
                self.terminal.notice(format!(
                    "{name} received: the HTTP API finishes the requests in flight, then \
                     everything stops ({name} again to kill at once)"
                ));
                return;
            }
        }
        self.terminal.notice(format!(
            "{name} received: stopping everything ({name} again to kill at once)"
        ));
        self.feed(Input::ShutdownRequested { force });
    }

    /// When the memory of the runs with a `memory_limit` is to be sampled next: a period
    /// after the last sample (at once if there was none) while such a run lives, else never
    /// (no limit, no wakeup).
    fn memory_sample_due(&self) -> Option<Instant> {
        // Most configs set no limit: one look at the processes, not every instance.
        let limited = self.sup.processes().any(|(_, p)| p.memory_limit.is_some())
            && self
                .sup
                .instances()
                .any(|view| view.spec.memory_limit.is_some() && view.pid.is_some());
        limited.then(|| {
            self.memory_sampled_at
                .map_or_else(Instant::now, |at| at + MEMORY_SAMPLE_PERIOD)
        })
    }

    /// Samples the whole tree (process group) of each live run with a `memory_limit`, and
    /// tells the supervisor.
    fn sample_memory(&mut self) {
        self.memory_sampled_at = Some(Instant::now());
        let limited: Vec<(RunId, i32)> = self
            .sup
            .instances()
            .filter(|view| view.spec.memory_limit.is_some())
            .filter_map(|view| Some((view.run?, i32::try_from(view.pid?).ok()?)))
            .collect();
        // A run with a cgroup is summed over its cgroup's processes; only the others need a
        // pass over every process of /proc, and with none of those there is none.
        let mut usage = HashMap::new();
        let mut by_group = HashSet::new();
        for &(run, pgid) in &limited {
            match self.cgroups.usage(run) {
                Some(tree) => {
                    usage.insert(pgid, tree);
                }
                None => {
                    by_group.insert(pgid);
                }
            }
        }
        if !by_group.is_empty() {
            usage.extend(tend_os::procfs::group_usage(&by_group));
        }
        for (run, pgid) in limited {
            if let Some(group) = usage.get(&pgid) {
                self.feed(Input::MemoryUsed {
                    run,
                    bytes: group.rss_bytes,
                });
            }
        }
    }

    /// Whether anything of `run`, whose leader (`pgid`) was reaped, lives: a process of its
    /// cgroup where it has one (in the group or not: the group's id may be someone else's
    /// once the group emptied), else a member of its process group (whose id is not free
    /// while it has one).
    fn group_alive(&self, run: RunId, pgid: i32) -> bool {
        if self.cgroups.has(run) {
            self.cgroups.populated(run)
        } else {
            self.world.group_alive(pgid)
        }
    }

    /// When the loop must wake: the supervisor's next deadline.
    ///
    /// While everything stops (or a request waits, for a stop) and groups left behind still
    /// live, also every [`GROUP_RECHECK`]: their last member may be reaped by a parent outside
    /// tend (it left the group), and then no event would tell tend the group is empty.
    fn next_wake(&self) -> Option<Instant> {
        let someone_waits = self.stopping_all() || !self.waiters.is_empty();
        let recheck =
            (someone_waits && !self.groups_left.is_empty()).then(|| Instant::now() + GROUP_RECHECK);
        self.sup
            .next_deadline()
            .map(Instant::from_std)
            .into_iter()
            .chain(recheck)
            .chain(self.memory_sample_due())
            .min()
    }

    fn tick(&mut self) {
        if self
            .memory_sample_due()
            .is_some_and(|due| due <= Instant::now())
        {
            self.sample_memory();
        }
        if self
            .sup
            .next_deadline()
            .is_some_and(|d| d <= Instant::now().into_std())
        {
            self.feed(Input::Tick);
        }
    }

    /// Reports the leftover groups that have no member any more. Runs on the thread that
    /// spawns, so no new group can take a group id between the check and the report.
    fn forget_empty_groups(&mut self) {
        let empty: Vec<(i32, RunId)> = self
            .groups_left
            .iter()
            .filter(|(&run, &pgid)| !self.group_alive(run, pgid))
            .map(|(&run, &pgid)| (pgid, run))
            .collect();
        for (pgid, run) in empty {
            self.groups_left.remove(&run);
            self.cgroups.forget(run);
            self.state.remove(pgid);
            self.feed(Input::GroupEmpty { run });
        }
    }

    /// Adds the groups spawned since the last call to the state record. Reading a leader's
    /// start time in /proc can wait for the end of its exec (the kernel holds a lock of the
    /// process while it runs one), so it is not done at the spawn: a turn that spawns many
    /// (a start, a restart of many) does not wait for each exec before the next spawn. It
    /// must be done before the leader is reaped, while its /proc entry is there, and before
    /// the state file is written, which is all a crash could lose: the file is written once a
    /// turn, after this.
    fn record_spawned(&mut self) {
        for spawned in self.unrecorded.drain(..) {
            self.state.add(GroupRecord::of_child(
                spawned.pid,
                spawned.stop_signal,
                spawned.stop_timeout,
                &spawned.instance,
            ));
        }
    }

    /// Writes the state file if a group started or ended this turn; a failure is said once.
    fn save_state(&mut self) {
        self.record_spawned();
        match self.state.save() {
            Ok(()) => self.state_failing = false,
            Err(e) if !self.state_failing => {
                self.state_failing = true;
                self.terminal.notice(format!(
                    "writing the state file {} failed: {e}; if tend dies now, the next `tend up` \
                     cannot stop what it leaves running",
                    self.state.path().display()
                ));
            }
            Err(_) => {}
        }
    }

    /// Reaps every exited child: SIGCHLD is coalesced, so one signal may stand for many exits.
    fn reap(&mut self) {
        for exit in self.reap_exits() {
            self.exited(exit);
        }
    }

    /// [`Self::reap`], but each run's output is read to its end (or for at most
    /// [`DRAIN_WAIT`], for a pipe that a process outside the run still holds) before the
    /// supervisor hears of its exit: so a run's last lines come before the notice that it
    /// ended, however many children ended at once.
    async fn reap_after_output(&mut self) {
        let exits = self.reap_exits();
        let pending: Vec<oneshot::Receiver<()>> = exits
            .iter()
            .filter_map(|exit| self.drain_done.remove(&exit.live.run))
            .flatten()
            .collect();
        if !pending.is_empty() {
            let all = async {
                for done in pending {
                    let _ = done.await;
                }
            };
            let _ = tokio::time::timeout(DRAIN_WAIT, all).await;
        }
        for exit in exits {
            self.exited(exit);
        }
    }

    /// Reaps the exited children, and takes what tend knew of each live run among them (before
    /// anything spawns again and could be given one of their PIDs).
    fn reap_exits(&mut self) -> Vec<Reaped> {
        // Drainers of earlier runs that reached EOF: collect them, so the set stays small.
        while self.drainers.try_join_next().is_some() {}
        let mut exits = Vec::new();
        loop {
            // Before a reap takes the /proc entry of a leader spawned this turn.
            self.record_spawned();
            let (pid, status) = match self.world.reap_one() {
                Ok(Some(exit)) => exit,
                Ok(None) => return exits,
                Err(e) => {
                    self.terminal
                        .notice(format!("reaping children failed: {e}"));
                    return exits;
                }
            };
            if self.checks.reaped(pid, status) {
                continue;
            }
            // An unknown PID is an orphaned grandchild that was re-parented to tend: reaped,
            // and perhaps the last member of a leftover group.
            let Some(live) = self.by_pid.remove(&pid) else {
                if !self.groups_left.is_empty() {
                    self.forget_empty_groups();
                }
                continue;
            };
            self.by_run.remove(&live.run);
            let group_left = self.group_alive(live.run, pid);
            exits.push(Reaped {
                pid,
                status,
                live,
                group_left,
            });
        }
    }

    /// What follows a reaped run's exit: its leftovers recorded, the supervisor told.
    fn exited(&mut self, exit: Reaped) {
        let Reaped {
            pid,
            status,
            live,
            group_left,
        } = exit;
        self.drain_done.remove(&live.run);
        let terminal = self.terminals.remove(&live.run);
        self.checks.ended(live.run);
        self.cpu_samples.get_mut().remove(&live.run);
        let oom_kills = self.cgroups.oom_kills(live.run);
        if oom_kills > 0 {
            self.feed(Input::OomKilled {
                run: live.run,
                kills: oom_kills,
            });
        }
        if group_left {
            self.groups_left.insert(live.run, pid);
        } else {
            self.state.remove(pid);
            self.cgroups.forget(live.run);
        }
        self.feed(Input::Exited {
            run: live.run,
            status,
            group_left,
        });
        // Told after the supervisor knows of the exit: an attached client that asks
        // how the run ended hears it.
        if let Some(terminal) = terminal {
            terminal.output.end();
        }
        // The last run of an instance a reload removed: close its log files.
        if self.sup.instance(live.instance).is_none() {
            self.logs.remove(&live.instance);
        }
    }

    /// Signals a leftover with a cgroup: its group may have emptied while what left it
    /// lives on, and then the group's id is free for anyone: its cgroup alone is signalled.
    fn signal_leftover_cgroup(&self, run: RunId, signal: Signal) {
        if signal == Signal::Kill {
            self.cgroups.kill(run);
        } else {
            self.cgroups.signal_all(run, signal);
        }
    }

    /// Signals a live run's group (its leader unreaped, so the id is not reused) or a
    /// leftover group without a cgroup (not yet reported empty: it has a member, so the id
    /// is not free). Whatever left the group (setsid, a double fork) is asked too, and dies
    /// with it.
    fn signal_group(&mut self, run: RunId, pgid: u32, signal: Signal) {
        if signal == Signal::Kill {
            self.cgroups.kill(run);
        } else {
            self.cgroups.signal_escaped(run, pgid as i32, signal);
        }
        if let Err(e) = self.world.signal_group(pgid as i32, signal) {
            let name = self
                .by_run
                .get(&run)
                .and_then(|pid| self.by_pid.get(pid))
                .map_or_else(
                    || "a leftover group".to_owned(),
                    |live| self.sup.instance_name(live.instance),
                );
            self.terminal.notice(format!(
                "sending {signal} to {name} (group {pgid}) failed: {e}"
            ));
        }
    }

    /// Closes the log files of instances the supervisor forgot (a reload removed them, or
    /// a scale down retired them); their drainers keep what they still need.
    fn close_forgotten_logs(&mut self) {
        self.logs.retain(|&id, _| self.sup.instance(id).is_some());
        let names: HashSet<&str> = self.logs.values().map(|l| &*l.name).collect();
        self.follow.retain(|name| names.contains(name));
    }

    /// Gives one input to the supervisor and carries out everything that follows from it.
    fn feed(&mut self, input: Input) {
        let now = Instant::now().into_std();
        self.effects.extend(self.sup.handle(now, input));
        while let Some(effect) = self.effects.pop_front() {
            match effect {
                Effect::Spawn {
                    run,
                    instance,
                    spec,
                } => {
                    let input = self.spawn(run, instance, &spec);
                    let now = Instant::now().into_std();
                    self.effects.extend(self.sup.handle(now, input));
                }
                Effect::Signal { run, pgid, signal } => {
                    if self.cgroups.has(run) && !self.by_run.contains_key(&run) {
                        self.signal_leftover_cgroup(run, signal);
                    } else {
                        self.signal_group(run, pgid, signal);
                    }
                }
                Effect::Notify(notice) => {
                    let event = events::of_notice(&self.sup, &notice, std::time::SystemTime::now());
                    self.publish(event);
                    if let tend_core::Notice::Waiting { instance, .. } = notice {
                        self.prepare_waiting(instance);
                    }
                }
                Effect::Reloaded(summary) => {
                    self.close_forgotten_logs();
                    self.reloaded(summary)
                }
                // Every run and every leftover group is gone: the loop ends (phase Done).
                Effect::Exit => {}
            }
        }
    }

    fn spawn(
        &mut self,
        run: RunId,
        instance: InstanceId,
        spec: &Arc<tend_core::ProcessSpec>,
    ) -> Input {
        let logs = match self.instance_logs(instance, spec) {
            Ok(logs) => logs,
            Err(e) => {
                return Input::SpawnFailed {
                    run,
                    error: format!("{e:#}"),
                }
            }
        };
        let mut env = spec.env.clone();
        env.push(("TEND_PROCESS".into(), spec.name.clone()));
        env.push(("TEND_INSTANCE".into(), instance.replica.to_string()));
        if let Some(first) = spec.port {
            let port = u32::from(first) + instance.replica;
            env.retain(|(key, _)| key != "PORT");
            env.push(("PORT".into(), port.to_string()));
        }
        let prepared = match checks::prepare(run, spec, &self.events) {
            Ok(prepared) => prepared,
            Err(e) => {
                return Input::SpawnFailed {
                    run,
                    error: format!("preparing its readiness check: {e}"),
                }
            }
        };
        // Exec checks run as the process does: its user, and that user's variables.
        let mut probe_env = env.clone();
        user_env(spec, &mut probe_env);
        env.extend(prepared.env.iter().cloned());
        user_env(spec, &mut env);
        let limits = cgroups::Limits {
            memory_max: spec.memory_max,
            cpu_max: spec.cpu_max,
            pids_max: spec.pids_max,
        };
        let unenforceable = self.cgroups.unenforceable(&limits);
        if !unenforceable.is_empty() && self.limits_warned.insert(spec.name.clone()) {
            self.terminal.notice(format!(
                "{}: {} not enforced: tend has no cgroup controller for it here (see its \
                 cgroups notice); memory_limit works without one",
                spec.name,
                unenforceable.join(", ")
            ));
        }
        let joining = match self.cgroups.prepare(&logs.name, run.0, &limits) {
            Ok(joining) => joining,
            Err(e) => {
                return Input::SpawnFailed {
                    run,
                    error: format!("making its cgroup: {e}"),
                }
            }
        };
        // The leaf from the clone on; the v1 cgroups joined first: before an action puts
        // another file at the number of their fd.
        let mut actions: Vec<tend_os::ChildAction<'_>> = joining
            .leaf
            .iter()
            .map(|dir| tend_os::ChildAction::StartInCgroup(std::os::fd::AsFd::as_fd(dir)))
            .chain(
                joining
                    .procs
                    .iter()
                    .map(|fd| tend_os::ChildAction::JoinCgroup(std::os::fd::AsFd::as_fd(fd))),
            )
            .collect();
        actions.extend(prepared.actions());
        actions.extend(identity_actions(spec));
        // The working directory last, as the process's user: one it may not enter fails the
        // spawn, rather than a process running where it cannot look.
        actions.extend(spec.cwd.as_deref().map(tend_os::ChildAction::Chdir));
        let command = tend_os::Command {
            argv: &spec.argv,
            cwd: None,
            env: &env,
            actions: &actions,
        };
        let spawned = if spec.interactive {
            self.spawn_on_terminal(&command)
        } else {
            self.world.spawn(&command).map(Output::Pipes)
        };
        drop(actions);
        self.cgroups.spawned(run, spawned.is_ok(), joining);
        let output = match spawned {
            Ok(output) => output,
            Err(e) => {
                return Input::SpawnFailed {
                    run,
                    error: e.to_string(),
                }
            }
        };
        let watch = prepared.watch.clone();
        self.checks
            .start(run, prepared, spec, &probe_env, &self.events);
        let pid = output.pid();
        self.unrecorded.push(Unrecorded {
            pid,
            stop_signal: spec.stop_signal,
            stop_timeout: spec.stop_timeout,
            instance: Arc::clone(&logs.name),
        });
        self.by_pid.insert(pid, LiveRun { run, instance });
        self.by_run.insert(run, pid);
        let sink = |file: &Arc<Mutex<LogFile>>| {
            Sink::new(
                Arc::clone(file),
                self.terminal.clone(),
                Arc::clone(&logs.prefix),
                Arc::clone(&self.follow),
                watch.clone(),
            )
        };
        let mut drained = Vec::with_capacity(2);
        match output {
            Output::Pipes(child) => {
                for (fd, file) in [(child.stdout, &logs.stdout), (child.stderr, &logs.stderr)] {
                    let pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(fd);
                    drained.push((pipe, sink(file)));
                }
            }
            Output::Terminal { master, .. } => {
                let tap = attach::OutputTap::new();
                let reader = master
                    .try_clone()
                    .and_then(tokio::net::unix::pipe::Receiver::from_owned_fd_unchecked);
                let sink = sink(&logs.stdout).with_tap(Arc::clone(&tap));
                drained.push((reader, sink));
                self.terminals.insert(
                    run,
                    Arc::new(attach::Attachable {
                        output: tap,
                        master,
                    }),
                );
            }
        }
        for (pipe, sink) in drained {
            match pipe {
                Ok(pipe) => {
                    let (done, drained) = oneshot::channel();
                    self.drainers.spawn(async move {
                        drain(pipe, sink).await;
                        let _ = done.send(());
                    });
                    self.drain_done.entry(run).or_default().push(drained);
                }
                Err(e) => self.terminal.notice(format!(
                    "cannot read the output of {}: {e}",
                    self.sup.instance_name(instance)
                )),
            }
        }
        Input::Spawned {
            run,
            pid: pid as u32,
        }
    }

    /// Spawns `command` on a new pseudo-terminal (`interactive = true`); tend keeps the
    /// master, the child has the terminal side.
    fn spawn_on_terminal(
        &mut self,
        command: &tend_os::Command<'_>,
    ) -> Result<Output, tend_os::OsError> {
        let pty = tend_os::Pty::open(attach::DEFAULT_SIZE)?;
        let pid = self
            .world
            .spawn_on_terminal(command, std::os::fd::AsFd::as_fd(&pty.terminal))?;
        // The terminal side closes here: once the child's processes close theirs, reading the
        // master ends.
        Ok(Output::Terminal {
            pid,
            master: pty.master,
        })
    }

    /// Opens (creates) the log files and makes the cgroup of an instance that waits for its
    /// dependencies, so that its spawn, when they are ready, does not wait for the file
    /// systems. A failure is left for the spawn to report.
    fn prepare_waiting(&mut self, instance: InstanceId) {
        if let Some(spec) = self.sup.process(instance.process).cloned() {
            if let Ok(logs) = self.instance_logs(instance, &spec) {
                self.cgroups.prepare_instance(&logs.name);
            }
        }
    }

    fn instance_logs(
        &mut self,
        instance: InstanceId,
        spec: &tend_core::ProcessSpec,
    ) -> Result<InstanceLogs> {
        let dir = &self.sup.settings().log_dir;
        if let Some(logs) = self.logs.get(&instance) {
            // Kept across changes of other settings (a scale, an env read, a reload of the
            // command): the counters go on, and no second writer of the same files is made.
            if logs.log == spec.log && logs.dir == *dir {
                return Ok(logs.clone());
            }
        }
        let name = self.sup.instance_name(instance);
        let open = |file: PathBuf| {
            LogFile::open(file.clone(), spec.log)
                .map(|f| Arc::new(Mutex::new(f.followed_by(Arc::clone(&self.follow)))))
                .with_context(|| format!("opening the log file {}", file.display()))
        };
        let logs = InstanceLogs {
            stdout: open(dir.join(log_file_name(&name, tend_proto::Stream::Stdout)))?,
            stderr: open(dir.join(log_file_name(&name, tend_proto::Stream::Stderr)))?,
            prefix: self.terminal.prefix(&spec.name, &name),
            name: name.as_str().into(),
            log: spec.log,
            dir: dir.clone(),
        };
        for (log, stream) in [
            (&logs.stdout, tend_proto::Stream::Stdout),
            (&logs.stderr, tend_proto::Stream::Stderr),
        ] {
            let log = log.lock().expect("log lock");
            if let Ok(id) = log.id() {
                let opened = follow::OpenedLog {
                    path: log.path().to_owned(),
                    stamped: spec.log.timestamps,
                    id,
                    size: log.size(),
                };
                self.follow.opened(Arc::clone(&logs.name), stream, opened);
            }
        }
        self.logs.insert(instance, logs.clone());
        Ok(logs)
    }

    /// Publishes an event to whoever listens, and shows it on the terminal (tend.log).
    fn publish(&mut self, event: tend_proto::Event) {
        self.terminal.notice(events::render(&event));
        if self.published.receiver_count() > 0 {
            let _ = self.published.send(Arc::new(event));
        }
    }

    /// Waits until every pipe is drained, or for [`DRAIN_GRACE`] when something outside the
    /// supervised groups still holds one open.
    async fn finish_output(&mut self) {
        let drained = async { while self.drainers.join_next().await.is_some() {} };
        if tokio::time::timeout(DRAIN_GRACE, drained).await.is_err() {
            self.terminal.notice(format!(
                "{} output pipes are still held open by processes that left their group; not waiting for them",
                self.drainers.len()
            ));
            self.drainers.abort_all();
            // Aborting only asks: wait until they are gone, so their handles on the terminal
            // are dropped and its thread can finish.
            while self.drainers.join_next().await.is_some() {}
            // A drainer still retrying a refused write (a full disk) held bytes it could not
            // write: never drop them silently.
            for logs in self.logs.values() {
                for log in [&logs.stdout, &logs.stderr] {
                    let log = log.lock().expect("log lock");
                    if log.held() == 0 {
                        continue;
                    }
                    let why = log
                        .failing()
                        .map_or_else(String::new, |f| format!(" ({})", f.error));
                    let text = format!(
                        "could not write {} bytes of {}'s output to {}{why}: tend is exiting, so they are lost",
                        log.held(),
                        logs.name,
                        log.path().display()
                    );
                    // On tend's own log (or terminal), and on stderr when that is elsewhere.
                    if !stdout_is_stderr() {
                        eprintln!("tend: {text}");
                    }
                    self.terminal.notice(text);
                }
            }
        }
        // The index records still in memory go to disk: the next tend's `logs` reads them.
        for logs in self.logs.values() {
            for log in [&logs.stdout, &logs.stderr] {
                log.lock().expect("log lock").flush_index();
            }
        }
        self.terminal
            .notice("all processes stopped; exiting".into());
    }
}

/// Refuses to serve from a directory others may write in or that is not ours (`--socket` in
/// /tmp, say): they could plant a symlink where the lock or state file goes, or swap the socket.
/// The default runtime dir passes (it is checked to be 0700 and ours).
fn check_socket_dir(socket: &std::path::Path) -> Result<()> {
    let dir = socket.parent().unwrap_or(std::path::Path::new("/"));
    let meta = std::fs::metadata(dir)
        .with_context(|| format!("the socket's directory {}", dir.display()))?;
    tend_os::check_dir_is_ours(
        "socket dir",
        dir,
        &meta,
        tend_os::current_uid(),
        0o022,
        "whoever may write there could swap tend's socket or plant a symlink where its lock \
         or state file goes; give --socket a path in a directory only you may write in, or \
         leave it out",
    )
    .map_err(Into::into)
}

/// Forwards SIGCHLD, SIGINT, SIGTERM and SIGHUP to the driver's channel. The streams exist
/// from this call on, so no signal after it is missed.
fn forward_signals(events: &mpsc::UnboundedSender<Event>) -> Result<()> {
    let kinds = [
        (SignalKind::child(), None, "SIGCHLD"),
        (SignalKind::interrupt(), Some(Signal::Int), "SIGINT"),
        (SignalKind::terminate(), Some(Signal::Term), "SIGTERM"),
        (SignalKind::hangup(), Some(Signal::Hup), "SIGHUP"),
    ];
    for (kind, as_signal, name) in kinds {
        let mut stream = signal(kind).with_context(|| format!("listening for {name}"))?;
        let events = events.clone();
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                let event = as_signal.map_or(Event::ChildExited, Event::Signal);
                if events.send(event).is_err() {
                    break;
                }
            }
        });
    }
    Ok(())
}

/// Whether fds 1 and 2 are the same file (tend.log, or one terminal).
fn stdout_is_stderr() -> bool {
    use std::os::unix::fs::MetadataExt;
    let id = |fd: u8| {
        std::fs::metadata(format!("/proc/self/fd/{fd}"))
            .ok()
            .map(|m| (m.dev(), m.ino()))
    };
    id(1).is_some() && id(1) == id(2)
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
