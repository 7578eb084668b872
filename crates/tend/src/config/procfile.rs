//! A Procfile run as foreman runs it (docs/procfile.md): each `name: command` line a process
//! whose command a shell runs in the Procfile's directory, `.env` beside it loaded, and `PORT`
//! given as foreman gives it: the base port (`PORT` of `.env`, else of tend's environment,
//! else 5000), plus 100 for each process type before this one, plus the instance's index.
//!
//! Where tend differs from foreman, it is on purpose and documented: a process that exits
//! with a failure is restarted (foreman stops everything when any process exits); one that
//! exits 0 stays exited; a `release` line runs once, before the others (as Heroku runs it).

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use tend_core::{Condition, Dependency, ProcessSpec, RestartPolicy, Spec, SupervisorSpec};

use super::env_file;
use super::error::ConfigError;

/// foreman's base port when neither `.env` nor the environment sets `PORT`.
pub const DEFAULT_BASE_PORT: u16 = 5000;
/// The port step between process types.
const PORT_STEP: u32 = 100;
/// The process that Heroku runs once, before the new release's other processes.
const RELEASE: &str = "release";

/// Whether `path` names a Procfile (`Procfile`, `Procfile.dev`, …) rather than a tend.toml.
pub fn is_procfile(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == "Procfile" || (n.starts_with("Procfile.") && !n.ends_with(".toml")))
}

/// One `name: command` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The process name.
    pub name: String,
    /// The command, for a shell.
    pub command: String,
    /// Where the line is in the file.
    pub span: Range<usize>,
}

/// What a Procfile and its `.env` describe, before tend's meaning is given to it.
#[derive(Debug, Clone)]
pub struct Procfile {
    /// The lines, in file order.
    pub entries: Vec<Entry>,
    /// The `.env` beside it, if there is one, and its variables.
    pub dotenv: Option<(std::path::PathBuf, Vec<(String, String)>)>,
    /// The base port.
    pub base_port: u16,
}

impl Procfile {
    /// The `PORT` of the first instance of entry `index`, if it fits.
    pub fn port(&self, index: usize) -> Option<u16> {
        let port = u32::from(self.base_port) + u32::try_from(index).ok()? * PORT_STEP;
        u16::try_from(port).ok()
    }

    /// Whether the processes other than `release` wait for it to complete: when there is
    /// one and it runs.
    pub fn release_first(&self, runs: impl Fn(&str) -> bool) -> bool {
        self.entries.iter().any(|e| e.name == RELEASE) && runs(RELEASE)
    }
}

/// Reads the Procfile `text` of `file` (and the `.env` beside it).
pub fn parse(file: &Path, text: &str) -> Result<Procfile, ConfigError> {
    let mut entries: Vec<Entry> = Vec::new();
    // A byte order mark, which some Windows editors write, is not part of the first name.
    let mut offset = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let text_after_bom = &text[offset..];
    for raw in text_after_bom.split_inclusive('\n') {
        let start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        let content = line.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let at = |column: usize, message: String| {
            ConfigError::at(
                file,
                text,
                Some(start + column..start + column),
                "",
                message,
            )
        };
        let indent = line.len() - line.trim_start().len();
        let Some((name, command)) = content.split_once(':') else {
            return Err(at(
                indent,
                format!(
                    "expected `name: command`, found {content:?}; a Procfile line is a \
                     process name, a colon and the command (a # starts a comment)"
                ),
            ));
        };
        if !valid_name(name) {
            return Err(at(
                indent,
                format!(
                    "invalid process name {name:?}: use letters, digits, _ and -, starting \
                     with a letter or digit, and not \"all\""
                ),
            ));
        }
        let command = command.trim();
        if command.is_empty() {
            return Err(at(
                indent + name.len() + 1,
                format!("{name} has no command; write it after the colon"),
            ));
        }
        if command.contains('\0') {
            return Err(at(
                indent,
                "contains a NUL character, which no program can be given".into(),
            ));
        }
        if let Some(first) = entries.iter().find(|e| e.name == name) {
            let (line, _) = super::error::line_col(text, first.span.start);
            return Err(at(
                indent,
                format!("{name} is defined twice (first on line {line}); rename one"),
            ));
        }
        entries.push(Entry {
            name: name.to_owned(),
            command: command.to_owned(),
            span: start + indent..start + line.len(),
        });
    }
    let dir = file.parent().unwrap_or(Path::new("/"));
    let dotenv = read_dotenv(&dir.join(".env"))?;
    let base_port = base_port(dotenv.as_ref(), file)?;
    let procfile = Procfile {
        entries,
        dotenv,
        base_port,
    };
    if let Some((index, entry)) = procfile
        .entries
        .iter()
        .enumerate()
        .find(|(i, _)| procfile.port(*i).is_none())
    {
        return Err(ConfigError::at(
            file,
            text,
            Some(entry.span.clone()),
            "",
            format!(
                "{} would get PORT {}, beyond 65535 (base {} + {PORT_STEP} per line before it); \
                 set a lower PORT in .env",
                entry.name,
                u32::from(base_port) + index as u32 * PORT_STEP,
                base_port
            ),
        ));
    }
    Ok(procfile)
}

/// Builds the spec of a Procfile; `formation` says how many of each run.
pub(super) fn build(
    file: &Path,
    text: &str,
    formation: &super::Formation,
) -> Result<Spec, ConfigError> {
    let procfile = parse(file, text)?;
    let dir = file.parent().unwrap_or(Path::new("/"));
    let release_first = procfile.release_first(|name| formation.count(name) != Some(0));
    let mut processes = Vec::new();
    for (index, entry) in procfile.entries.iter().enumerate() {
        let mut spec = ProcessSpec::new(&entry.name, super::spec::shell_argv(&entry.command));
        spec.cwd = Some(dir.to_path_buf());
        if let Some((path, vars)) = &procfile.dotenv {
            spec.env.clone_from(vars);
            spec.env_file = Some(path.clone());
        }
        spec.port = procfile.port(index);
        super::spec::log_names_fit(&spec)
            .map_err(|why| ConfigError::at(file, text, Some(entry.span.clone()), "", why))?;
        if entry.name == RELEASE {
            spec.restart = RestartPolicy::Never;
        } else {
            spec.restart = RestartPolicy::OnFailure;
            if release_first {
                spec.depends_on.push(Dependency {
                    name: RELEASE.into(),
                    condition: Condition::Completed,
                });
            }
        }
        processes.push(Arc::new(spec));
    }
    let mut spec = Spec {
        supervisor: SupervisorSpec {
            log_dir: dir.join(".tend/logs"),
            stop_timeout: std::time::Duration::from_secs(10),
            umask: 0o022,
            cgroups: true,
        },
        processes,
    };
    formation.apply(&mut spec, file)?;
    Ok(spec)
}

/// A process name of a Procfile that tend can take.
fn valid_name(name: &str) -> bool {
    name != "all"
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The variables of `path`, if it exists.
type DotEnv = Option<(std::path::PathBuf, Vec<(String, String)>)>;

fn read_dotenv(path: &Path) -> Result<DotEnv, ConfigError> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(None);
    }
    let text = super::read_text(path, super::MAX_ENV_FILE_BYTES)
        .map_err(|e| ConfigError::file(path, format!("cannot read the .env file: {e}")))?;
    let vars = env_file::parse(&text).map_err(|(line, why)| ConfigError {
        line_col: Some((line, 1)),
        ..ConfigError::file(path, why)
    })?;
    Ok(Some((path.to_path_buf(), vars)))
}

/// foreman's base port: `PORT` of `.env`, else of tend's environment, else 5000.
fn base_port(
    dotenv: Option<&(std::path::PathBuf, Vec<(String, String)>)>,
    file: &Path,
) -> Result<u16, ConfigError> {
    // An empty PORT is no PORT, in .env as in the environment.
    let from_file = dotenv.and_then(|(path, vars)| {
        let value = vars.iter().rev().find(|(k, _)| k == "PORT")?;
        let value = Some(value.1.clone()).filter(|v| !v.trim().is_empty())?;
        Some((path.display().to_string(), value))
    });
    let from_env = || {
        let value = std::env::var("PORT")
            .ok()
            .filter(|v| !v.trim().is_empty())?;
        Some(("the environment".to_owned(), value))
    };
    let Some((origin, value)) = from_file.or_else(from_env) else {
        return Ok(DEFAULT_BASE_PORT);
    };
    value.trim().parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(|| {
        ConfigError::file(
            file,
            format!("PORT of {origin} is {value:?}, not a port (1 to 65535); it is the base port of the Procfile's processes"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Vec<(String, String)> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("Procfile");
        let procfile = parse(&file, text).unwrap();
        let pairs = procfile.entries.into_iter().map(|e| (e.name, e.command));
        pairs.collect()
    }

    fn error(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("Procfile");
        let message = parse(&file, text).unwrap_err().to_string();
        message.replace(&format!("{}/", dir.path().display()), "")
    }

    #[test]
    fn reads_lines_comments_and_crlf() {
        let text = "# a comment\r\nweb: bundle exec puma -C config/puma.rb\r\n\n  \
                    worker:bundle exec sidekiq  \nrelease: rails db:migrate\n";
        assert_eq!(
            entries(text),
            [
                ("web", "bundle exec puma -C config/puma.rb"),
                ("worker", "bundle exec sidekiq"),
                ("release", "rails db:migrate"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        // A colon in the command is the command's: only the first one ends the name.
        assert_eq!(entries("clock: run --at 12:00")[0].1, "run --at 12:00");
        // A byte order mark is not part of the first name.
        assert_eq!(entries("\u{feff}web: x\n")[0].0, "web");
    }

    #[test]
    fn errors_say_where_and_what_to_do() {
        assert_eq!(
            error("web: a\nworker b\n"),
            "Procfile:2:1: expected `name: command`, found \"worker b\"; a Procfile line is a \
             process name, a colon and the command (a # starts a comment)"
        );
        assert_eq!(
            error("web:\n"),
            "Procfile:1:5: web has no command; write it after the colon"
        );
        assert!(error("web: a\n\nweb: b\n")
            .starts_with("Procfile:3:1: web is defined twice (first on line 1)"));
        assert!(error("my app: x\n").starts_with("Procfile:1:1: invalid process name \"my app\""));
        assert!(error("all: x\n").contains("invalid process name \"all\""));
    }

    #[test]
    fn recognises_procfile_names() {
        for name in ["Procfile", "Procfile.dev", "/app/Procfile.windows"] {
            assert!(is_procfile(Path::new(name)), "{name}");
        }
        for name in ["tend.toml", "Procfile.toml", "procfile", "MyProcfile"] {
            assert!(!is_procfile(Path::new(name)), "{name}");
        }
    }
}
