//! The `tend` command: parses the command line, then runs the verb, as the supervisor
//! (`up`), as a client of a running one (`status`, `start`, …), or on its own (`check`).
//!
//! Exit codes: 0 ok, 1 a requested operation failed, 2 usage error, 3 no supervisor running,
//! 78 config error.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use clap_complete::ArgValueCandidates;
use tend::cli::{self, ClientVerb, Failure, LogsView, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use tend::config;
use tend::daemon::{self, UpOptions};
use tend::paths::RuntimePaths;
use tend_core::Supervisor;
use tend_os::{Daemon, InheritedSignals};
use tend_proto::Stream;

/// tend keeps a set of processes running: describe them in tend.toml, `tend up` starts them,
/// restarts them by policy, logs every byte they print, and stops them gracefully.
#[derive(Parser)]
#[command(name = "tend", version, about, long_about = None)]
struct Cli {
    /// The config file (default: $TEND_CONFIG, else tend.toml here or in a parent directory).
    #[arg(short = 'c', long = "config", global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The control socket, instead of the one derived from the config's path.
    #[arg(long = "socket", global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Start the supervisor with the autostart processes, or those named.
    Up {
        /// Run in the background; return once it is ready (or say why it failed).
        #[arg(short = 'd', long = "daemon")]
        daemon: bool,
        /// Print only tend's own notices, not the processes' output (the logs get everything).
        #[arg(short, long)]
        quiet: bool,
        /// Start only the named processes, not what they depend on.
        #[arg(long, requires = "names")]
        no_deps: bool,
        /// Serve the HTTP API on this address (127.0.0.1:9100), as [http] listen does.
        #[arg(long, value_name = "ADDR", value_parser = config::parse_listen)]
        http: Option<std::net::SocketAddr>,
        /// How many instances of each process: web=2,worker=1 (all=N for the others; 0 leaves
        /// one out), over the config's replicas, as foreman's -m.
        #[arg(short = 'm', long, value_name = "NAME=N,...", value_parser = config::Formation::parse)]
        formation: Option<config::Formation>,
        /// Processes (web), instances (web.1) or `all` to start instead of the autostart ones
        /// (and what they depend on).
        #[arg(add = ArgValueCandidates::new(process_names))]
        names: Vec<String>,
    },
    /// One row per instance: name, state, pid, uptime, restarts, last exit.
    Status {
        /// Print the stable JSON format (docs/protocol.md) instead of a table.
        #[arg(long)]
        json: bool,
        /// Processes or instances to show (default: all).
        #[arg(add = ArgValueCandidates::new(process_names))]
        names: Vec<String>,
    },
    /// Start processes (web), instances (web.1) or `all`, and what they depend on; return once
    /// they run (or are ready, with a readiness check).
    Start {
        /// Return at once instead of waiting until they run.
        #[arg(long)]
        no_wait: bool,
        /// Start only the named processes, not what they depend on.
        #[arg(long)]
        no_deps: bool,
        /// What to start.
        #[arg(required = true)]
        #[arg(add = ArgValueCandidates::new(process_names))]
        names: Vec<String>,
    },
    /// Stop processes, instances or `all`; return once they stopped.
    Stop {
        /// Return at once instead of waiting until they stopped.
        #[arg(long)]
        no_wait: bool,
        /// What to stop.
        #[arg(required = true)]
        #[arg(add = ArgValueCandidates::new(process_names))]
        names: Vec<String>,
    },
    /// Stop and start again processes, instances or `all`; return once they run again.
    Restart {
        /// Return at once instead of waiting until they run again.
        #[arg(long)]
        no_wait: bool,
        /// What to restart.
        #[arg(required = true)]
        #[arg(add = ArgValueCandidates::new(process_names))]
        names: Vec<String>,
    },
    /// Send a signal (SIGHUP, HUP, usr1, …) to the process group of each named instance.
    Signal {
        /// The signal.
        signal: String,
        /// Who gets it.
        #[arg(required = true)]
        #[arg(add = ArgValueCandidates::new(process_names))]
        names: Vec<String>,
    },
    /// Past lines of the logs, in the order they were printed, then with -f new ones as they
    /// come.
    Logs {
        /// Keep printing new lines.
        #[arg(short = 'f', long)]
        follow: bool,
        /// How many past lines per instance and stream [default: 10, or with --since all of
        /// them (up to 100000)].
        #[arg(short = 'n', long = "lines")]
        lines: Option<u32>,
        /// Only lines printed since then: a duration back from now (90s, 10m, 1h30m) or an RFC
        /// 3339 time (2026-11-29T21:44:09Z).
        #[arg(long, value_name = "WHEN", value_parser = cli::Since::parse)]
        since: Option<cli::Since>,
        /// The time tend read each line before it (2026-11-29T21:44:09.512Z; question marks
        /// when it is not known).
        #[arg(long)]
        timestamps: bool,
        /// One JSON object per line (time, instance, stream, line, and cut for a piece of a
        /// longer line), for scripts.
        #[arg(long)]
        json: bool,
        /// Only what the processes wrote to stdout.
        #[arg(long, conflicts_with = "stderr")]
        stdout: bool,
        /// Only what the processes wrote to stderr.
        #[arg(long)]
        stderr: bool,
        /// Only the text, without the `name.N |` prefix.
        #[arg(long)]
        no_prefix: bool,
        /// Processes or instances (default: all).
        #[arg(add = ArgValueCandidates::new(process_names))]
        names: Vec<String>,
    },
    /// Re-read the config: start added processes, stop removed ones, restart changed ones;
    /// print the plan (what changed in each process).
    Reload {
        /// Only print what a reload would do (start, stop, restart with the keys that
        /// changed, unchanged); change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Set how many instances of processes run (web=4 worker=0), until the next reload:
    /// instances are added (started if the process runs) or stopped, highest index first.
    Scale {
        /// NAME=COUNT pairs, COUNT from 0 to 10000.
        #[arg(required = true, value_name = "NAME=COUNT", value_parser = scale_pair)]
        counts: Vec<(String, u32)>,
    },
    /// Stop everything and exit the supervisor; return once it is gone.
    Down,
    /// The supervisor's events as they happen (spawned, exited, ready, …), until it exits.
    Events {
        /// One JSON object per event (docs/protocol.md).
        #[arg(long)]
        json: bool,
        /// Processes or instances (default: all).
        #[arg(add = ArgValueCandidates::new(process_names))]
        names: Vec<String>,
    },
    /// Print the address of the HTTP API's dashboard, with its token.
    HttpUrl,
    /// Write a commented starter tend.toml here (or at -c FILE); an existing file is kept.
    Init,
    /// Print the completion script of a shell (bash, zsh or fish); see README.md.
    Completions {
        /// The shell.
        #[arg(value_parser = ["bash", "zsh", "fish"])]
        shell: String,
    },
    /// Print the tend.toml equivalent of a Procfile or a supervisord.conf.
    Import {
        /// The file to translate.
        file: PathBuf,
    },
    /// Write the config as systemd units (one per process, a template for replicas, and a
    /// target) into DIR, such as /etc/systemd/system.
    Export {
        /// The format: systemd.
        #[arg(value_parser = ["systemd"])]
        format: String,
        /// Where to write the files (created if missing).
        dir: PathBuf,
        /// The prefix of the unit names and the target's name [default: the config's
        /// directory name].
        #[arg(long, value_name = "NAME")]
        app: Option<String>,
        /// Run every service as this user (User=).
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// The instance counts, as `tend up -m` takes them.
        #[arg(short = 'm', long, value_name = "NAME=N,...", value_parser = config::Formation::parse)]
        formation: Option<config::Formation>,
    },
    /// Print tend's man page (roff): `tend man | man -l -`.
    Man,
    /// Connect this terminal to an interactive process (interactive = true) until Ctrl+].
    Attach {
        /// The instance (web.0), or a process with one instance (web).
        #[arg(add = ArgValueCandidates::new(process_names))]
        name: String,
    },
    /// A terminal UI: the processes and their logs, live; keys to start, stop, restart and
    /// signal them (? shows them all).
    Ui,
    /// Validate the config (a tend.toml or a Procfile) and print what would run.
    Check {
        /// Print the validated spec as one JSON document (defaults applied, durations in ms).
        #[arg(long)]
        json: bool,
        /// The instance counts `tend up -m` would be given (web=2,worker=1).
        #[arg(short = 'm', long, value_name = "NAME=N,...", value_parser = config::Formation::parse)]
        formation: Option<config::Formation>,
    },
    /// List every tend this user runs: pid, uptime, instances by state, config.
    Ls {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// The variable that asks tend for completions (`tend completions SHELL` registers it).
const COMPLETE_VAR: &str = "TEND_COMPLETE";

/// `tend completions SHELL`: the script that has the shell ask tend for completions, so that
/// they follow this very binary's options, and process names come from the config at hand.
fn completions(shell: &str) -> Result<u8, Failure> {
    let shells: [&dyn clap_complete::env::EnvCompleter; 3] = [
        &clap_complete::env::Bash,
        &clap_complete::env::Zsh,
        &clap_complete::env::Fish,
    ];
    let completer = shells
        .into_iter()
        .find(|s| s.is(shell))
        .ok_or_else(|| Failure::report(cli::EXIT_USAGE, format!("no completions for {shell}")))?;
    let mut script = Vec::new();
    completer
        .write_registration(COMPLETE_VAR, "tend", "tend", "tend", &mut script)
        .and_then(|()| std::io::Write::write_all(&mut std::io::stdout(), &script))
        .map_err(|e| Failure::report(cli::EXIT_FAILED, format!("writing the script: {e}")))?;
    Ok(0)
}

/// The names a shell completes where tend takes processes: those of the config found from
/// here (as `tend` itself finds it), each process, its instances, and `all`. Nothing when
/// there is no config or it is bad: completion must never print errors.
fn process_names() -> Vec<clap_complete::CompletionCandidate> {
    let Ok(path) = config::discover(None) else {
        return Vec::new();
    };
    let Ok(spec) = config::load(&path) else {
        return Vec::new();
    };
    let mut names = vec![clap_complete::CompletionCandidate::new("all")];
    for process in &spec.processes {
        names.push(clap_complete::CompletionCandidate::new(&process.name));
        for i in 0..process.replicas.min(100) {
            names.push(clap_complete::CompletionCandidate::new(format!(
                "{}.{i}",
                process.name
            )));
        }
    }
    names
}

fn main() -> ExitCode {
    // A shell asking for completions (see `completions`): answered, and exit.
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(COMPLETE_VAR)
        .complete();
    // Before anything else, and before any thread exists: a parent that blocked or ignored
    // signals must not leave tend deaf to SIGCHLD or SIGTERM.
    let inherited = match tend_os::reset_signals() {
        Ok(inherited) => inherited,
        Err(e) => {
            eprintln!("tend: resetting the signal state it inherited: {e}");
            return ExitCode::from(1);
        }
    };
    let cli = Cli::parse();
    match run(cli, inherited) {
        Ok(code) => ExitCode::from(code),
        Err(Failure::Report { code, message }) => {
            eprintln!("tend: {message}");
            ExitCode::from(code)
        }
        Err(Failure::StdoutClosed) => ExitCode::from(EXIT_OK),
    }
}

/// A failed operation (exit code 1) saying `message`.
fn failed(message: impl std::fmt::Display) -> Failure {
    Failure::report(EXIT_FAILED, message.to_string())
}

fn run(cli: Cli, inherited: InheritedSignals) -> Result<u8, Failure> {
    let client = |verb: ClientVerb| -> Result<u8, Failure> {
        // A running tend is found even if its config was deleted or renamed since it started.
        let path = config::discover_for_client(cli.config.as_deref())?;
        let paths = RuntimePaths::for_config(&path, cli.socket.as_deref()).map_err(failed)?;
        Ok(cli::run(verb, &path, &paths))
    };
    match cli.verb {
        Verb::Ls { json } => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            match cli::ls::run(json, &mut out) {
                Ok(()) | Err(Failure::StdoutClosed) => Ok(0),
                Err(e) => Err(e),
            }
        }
        Verb::Check { json, formation } => {
            let path = config::discover(cli.config.as_deref())?;
            let (spec, http) = config::load_with(&path, &formation.unwrap_or_default())?;
            // Valid, but too big for this shell's limits: said, and still exit 0 (tend may be
            // started elsewhere, under another limit).
            let processes = spec.processes.iter().map(|p| &**p);
            if let Some(why) = daemon::open_files_beyond_hard_limit(processes) {
                eprintln!("tend: warning: {why}");
            }
            if json {
                use std::io::Write as _;
                let _ = std::io::stdout().write_all(&config::describe_json(
                    &spec,
                    http.as_ref(),
                    &path,
                ));
            } else {
                print!("{}", config::describe(&spec, &path));
                if let Some(http) = &http {
                    print!("{}", config::describe_http(http));
                }
            }
            Ok(0)
        }
        Verb::Up {
            daemon,
            quiet,
            no_deps,
            http,
            formation,
            names,
        } => up(
            &config::discover(cli.config.as_deref())?,
            cli.socket.as_deref(),
            UpFlags {
                daemon,
                quiet,
                no_deps,
                nohup: inherited.hup_ignored,
                http,
                formation: formation.unwrap_or_default(),
            },
            &names,
        ),
        Verb::Status { json, names } => client(ClientVerb::Status { json, names }),
        Verb::Start {
            no_wait,
            no_deps,
            names,
        } => client(ClientVerb::Start {
            names,
            wait: !no_wait,
            no_deps,
        }),
        Verb::Stop { no_wait, names } => client(ClientVerb::Stop {
            names,
            wait: !no_wait,
        }),
        Verb::Restart { no_wait, names } => client(ClientVerb::Restart {
            names,
            wait: !no_wait,
        }),
        Verb::Signal { signal, names } => client(ClientVerb::Signal { signal, names }),
        Verb::Logs {
            follow,
            lines,
            since,
            timestamps,
            json,
            stdout,
            stderr,
            no_prefix,
            names,
        } => client(ClientVerb::Logs {
            follow,
            lines,
            since,
            names,
            view: LogsView {
                json,
                only: match (stdout, stderr) {
                    (true, _) => Some(Stream::Stdout),
                    (_, true) => Some(Stream::Stderr),
                    _ => None,
                },
                prefix: !no_prefix,
                timestamps,
            },
        }),
        Verb::Events { json, names } => client(ClientVerb::Events { json, names }),
        Verb::Ui => {
            let path = config::discover_for_client(cli.config.as_deref())?;
            let paths = RuntimePaths::for_config(&path, cli.socket.as_deref()).map_err(failed)?;
            cli::ui::run(&path, &paths.socket)
        }
        Verb::Completions { shell } => completions(&shell),
        Verb::Init => cli::init(cli.config.as_deref()),
        Verb::Export {
            format: _,
            dir,
            app,
            user,
            formation,
        } => {
            let path = config::discover(cli.config.as_deref())?;
            let (spec, _) = config::load_with(&path, &formation.unwrap_or_default())?;
            export_systemd(&spec, &path, &dir, app, user)
        }
        Verb::Import { file } => {
            let toml =
                tend::import::import(&file).map_err(|e| Failure::report(cli::EXIT_CONFIG, e))?;
            print!("{toml}");
            Ok(0)
        }
        Verb::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut page)
                .and_then(|()| std::io::Write::write_all(&mut std::io::stdout(), &page))
                .map_err(|e| {
                    Failure::report(cli::EXIT_FAILED, format!("writing the man page: {e}"))
                })?;
            Ok(0)
        }
        Verb::HttpUrl => {
            let path = config::discover_for_client(cli.config.as_deref())?;
            let paths = RuntimePaths::for_config(&path, cli.socket.as_deref()).map_err(failed)?;
            cli::http_url(&path, &paths)
        }
        Verb::Attach { name } => {
            let path = config::discover_for_client(cli.config.as_deref())?;
            let paths = RuntimePaths::for_config(&path, cli.socket.as_deref()).map_err(failed)?;
            cli::attach::run(&path, &paths.socket, &name)
        }
        Verb::Reload { dry_run } => client(ClientVerb::Reload { dry_run }),
        Verb::Scale { counts } => {
            once_each(&counts).map_err(|e| Failure::report(EXIT_USAGE, e))?;
            client(ClientVerb::Scale { counts })
        }
        Verb::Down => client(ClientVerb::Down),
    }
}

/// One `NAME=COUNT` of `tend scale`.
fn scale_pair(text: &str) -> Result<(String, u32), String> {
    let (name, count) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=COUNT, such as web=4"))?;
    let count = config::parse_count(text, count.trim())?;
    Ok((name.trim().to_owned(), count))
}

/// `tend scale web=2 web=4` names web twice: which count was meant is not for tend to guess.
fn once_each(counts: &[(String, u32)]) -> Result<(), String> {
    for (i, (name, _)) in counts.iter().enumerate() {
        if counts[..i].iter().any(|(earlier, _)| earlier == name) {
            let given: Vec<String> = counts
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(n, count)| format!("{n}={count}"))
                .collect();
            return Err(format!(
                "{name} is given twice ({}); give each process once",
                given.join(", ")
            ));
        }
    }
    Ok(())
}

/// `tend up`: everything that can be wrong with the config or the names is reported here,
/// on the terminal, before anything starts or forks.
/// The flags of `tend up`.
struct UpFlags {
    daemon: bool,
    quiet: bool,
    no_deps: bool,
    /// tend was started with SIGHUP ignored.
    nohup: bool,
    /// `--http ADDR`.
    http: Option<std::net::SocketAddr>,
    /// `--formation`.
    formation: config::Formation,
}

fn up(path: &Path, socket: Option<&Path>, flags: UpFlags, names: &[String]) -> Result<u8, Failure> {
    let UpFlags {
        daemon,
        quiet,
        no_deps,
        nohup,
        http: http_flag,
        formation,
    } = flags;
    let (spec, mut http) = config::load_with(path, &formation)?;
    if let Some(listen) = http_flag {
        let allow_remote = http.as_ref().is_some_and(|h| h.allow_remote);
        if let Some(why) = config::remote_refusal(listen, allow_remote) {
            return Err(Failure::report(cli::EXIT_USAGE, format!("--http {why}")));
        }
        http.get_or_insert_with(|| config::HttpSpec::at(listen))
            .listen = listen;
    }
    let sup = Supervisor::new(spec);
    let targets = if names.is_empty() {
        None
    } else {
        let targets = names
            .iter()
            .map(|name| {
                sup.resolve(name)
                    .ok_or_else(|| unknown_name(name, &sup, path))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Some(targets)
    };
    let paths = RuntimePaths::for_config(path, socket).map_err(failed)?;
    let mut options = UpOptions {
        targets,
        no_deps,
        quiet,
        config: path.to_owned(),
        paths,
        ready: None,
        nohup,
        http,
        formation,
    };
    if daemon {
        let log_dir = sup.settings().log_dir.clone();
        daemon::logfile::prepare_log_dir(&log_dir).map_err(failed)?;
        // Before any thread or runtime exists: fork, and let the parent wait for the word.
        match tend_os::daemonize(sup.settings().umask).map_err(failed)? {
            Daemon::Parent(parent) => {
                return match parent.wait_with_notes(|note| eprintln!("tend: {note}")) {
                    Ok(pid) => {
                        println!(
                            "tend is running in the background (pid {pid}); its log is {}\n\
                             see it with `tend status`, stop it with `tend down`",
                            log_dir.join("tend.log").display()
                        );
                        Ok(0)
                    }
                    Err(e) => Err(failed(format!("the daemon did not start: {e}"))),
                };
            }
            // Its stdio is on /dev/null until it holds the lock (daemon::up): a daemon refused
            // because another runs must not write into that one's tend.log.
            Daemon::Child(ready) => options.ready = Some(ready),
        }
    }
    daemon::up(sup, options).map_err(|e| failed(format!("{e:#}")))
}

/// `tend export systemd DIR`: writes the units and says what it wrote and what to do next.
fn export_systemd(
    spec: &tend_core::Spec,
    config: &Path,
    dir: &Path,
    app: Option<String>,
    user: Option<String>,
) -> Result<u8, Failure> {
    let base = config.parent().unwrap_or(Path::new("/")).to_owned();
    // --app is taken as given (the export checks it); the directory's name is made one.
    let app = app.unwrap_or_else(|| {
        let name = base.file_name().map(|n| n.to_string_lossy().into_owned());
        let name: String = name
            .unwrap_or_default()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        match name.trim_start_matches(['-', '.']) {
            "" => "tend".to_owned(),
            name => name.to_owned(),
        }
    });
    let options = tend::export::systemd::Options {
        app: app.clone(),
        user,
        base,
        path: std::env::var_os("PATH"),
    };
    let files = tend::export::systemd::export(spec, &options)
        .map_err(|e| Failure::report(cli::EXIT_USAGE, e))?;
    let written = tend::export::write(dir, &files).map_err(failed)?;
    for path in &written {
        println!("wrote {}", path.display());
    }
    println!(
        "then: systemctl daemon-reload && systemctl enable --now {app}.target \
         (journalctl -u '{app}-*' shows the logs)"
    );
    Ok(EXIT_OK)
}

fn unknown_name(name: &str, sup: &Supervisor, path: &Path) -> Failure {
    let known: Vec<&str> = sup.processes().map(|(_, p)| p.name.as_str()).collect();
    Failure::report(
        EXIT_USAGE,
        format!(
            "no process or instance named {name:?} in {}; known processes: {} (an instance is NAME.N, or say `all`)",
            path.display(),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ),
    )
}
