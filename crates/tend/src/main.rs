//! The `tend` command: parses the command line, then runs the verb.
//!
//! Exit codes: 0 ok, 1 a requested operation failed, 2 usage error, 78 config error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tend::config::{self, ConfigError};
use tend::daemon::{self, UpOptions};
use tend_core::Supervisor;

/// Exit code for a bad config file (sysexits' EX_CONFIG).
const EX_CONFIG: u8 = 78;
/// Exit code for a usage error.
const EX_USAGE: u8 = 2;

/// tend keeps a set of processes running: describe them in tend.toml, `tend up` starts them,
/// restarts them by policy, logs every byte they print, and stops them gracefully.
#[derive(Parser)]
#[command(name = "tend", version, about, long_about = None)]
struct Cli {
    /// The config file (default: $TEND_CONFIG, else tend.toml here or in a parent directory).
    #[arg(short = 'c', long = "config", global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Start the supervisor in the foreground with the autostart processes, or those named.
    Up {
        /// Print only tend's own notices, not the processes' output (the logs get everything).
        #[arg(short, long)]
        quiet: bool,
        /// Processes (web), instances (web.1) or `all` to start instead of the autostart ones.
        names: Vec<String>,
    },
    /// Validate the config and print what would run.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(Failure { code, message }) => {
            eprintln!("tend: {message}");
            ExitCode::from(code)
        }
    }
}

/// An error for the user and the exit code that goes with it.
struct Failure {
    code: u8,
    message: String,
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure {
            code: EX_CONFIG,
            message: e.to_string(),
        }
    }
}

fn run(cli: Cli) -> Result<u8, Failure> {
    let path = config::discover(cli.config.as_deref())?;
    let spec = config::load(&path)?;
    match cli.verb {
        Verb::Check => {
            print!("{}", config::describe(&spec, &path));
            Ok(0)
        }
        Verb::Up { quiet, names } => {
            let sup = Supervisor::new(spec);
            let targets = if names.is_empty() {
                None
            } else {
                let mut targets = Vec::new();
                for name in &names {
                    let target = sup
                        .resolve(name)
                        .ok_or_else(|| unknown_name(name, &sup, &path))?;
                    targets.push(target);
                }
                Some(targets)
            };
            daemon::run_foreground(sup, UpOptions { targets, quiet }).map_err(|e| Failure {
                code: 1,
                message: format!("{e:#}"),
            })
        }
    }
}

fn unknown_name(name: &str, sup: &Supervisor, path: &std::path::Path) -> Failure {
    let known: Vec<&str> = sup.processes().map(|(_, p)| p.name.as_str()).collect();
    Failure {
        code: EX_USAGE,
        message: format!(
            "no process or instance named {name:?} in {}; known processes: {} (an instance is NAME.N, or say `all`)",
            path.display(),
            if known.is_empty() { "none".to_owned() } else { known.join(", ") }
        ),
    }
}
