//! The config layer: finding `tend.toml`, turning it into a [`tend_core::Spec`], describing it.
//!
//! This module owns the config file format (docs/config.md is its reference): which keys
//! exist, their types, defaults and checks, how relative paths resolve, and the errors. Every
//! error is a [`ConfigError`] naming the file, the line and column, the key path, what is wrong
//! and what to do; the caller maps each to exit code 78 (`EX_CONFIG`).
//!
//! Inside: `tree` parses TOML keeping every span, `read` reads typed values out of it, `spec`
//! gives the keys their meaning, with `units` (durations and sizes), `env_file`, `probes`
//! (`ready` and `health`) and `depends` (`depends_on`, `restart_with`, and the checks across
//! processes: names, cycles); `discover` finds the file and `describe` prints what it means.

mod as_json;
mod depends;
mod describe;
mod discover;
mod env_file;
mod error;
mod formation;
mod http;
pub mod identity;
mod probes;
pub mod procfile;
mod read;
mod spec;
#[cfg(test)]
mod tests;
mod tree;
mod units;

use std::path::Path;
use std::path::PathBuf;

use tend_core::Spec;

pub use error::ConfigError;
pub use formation::{parse_count, Formation};
pub use http::{parse_listen, remote_refusal, HttpSpec};
pub use units::{format_duration, format_size, parse_duration};

/// The largest config file tend reads: far more than any real one, small enough that a
/// mistaken path (a log file, a device) is refused before it fills memory.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// The largest `env_file` tend reads.
pub const MAX_ENV_FILE_BYTES: u64 = 1 << 20;

pub(crate) use spec::log_names_fit;

/// The variables of `process` with its `env_file` read again (`tend restart`): the file's,
/// then those of its `env` key, as [`load`] builds them. A process without `env_file` keeps
/// its variables. The error names the file and, for a bad line, the line.
pub fn read_env(process: &tend_core::ProcessSpec) -> Result<Vec<(String, String)>, String> {
    let Some(path) = &process.env_file else {
        return Ok(process.env.clone());
    };
    let text = read_text(path, MAX_ENV_FILE_BYTES)
        .map_err(|e| format!("cannot read env file {}: {e}", path.display()))?;
    let file = env_file::parse(&text)
        .map_err(|(line, why)| format!("{}:{line}: {why}", path.display()))?;
    Ok(spec::merge_env(file, &process.env_table))
}

/// Finds the config file: `explicit` (`-c FILE`) if given, else `$TEND_CONFIG` if set and not
/// empty, else `tend.toml` in the current directory or its nearest parent.
///
/// Returns the canonical absolute path of an existing file, or an error saying where it looked
/// and what to do.
pub fn discover(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    let cwd = std::env::current_dir().map_err(|e| ConfigError {
        file: None,
        line_col: None,
        key: None,
        message: format!("cannot find the current directory: {e}; pass -c FILE"),
    })?;
    discover::discover_in(explicit, std::env::var_os("TEND_CONFIG"), &cwd)
}

/// The config path a client verb (`status`, `down`, …) names: as [`discover`], but a file
/// given by `-c FILE` or `$TEND_CONFIG` need not exist any more. A running tend is found by
/// the path it was started with, and its config may have been deleted or renamed since; the
/// path is then its directory's canonical path and the file name.
pub fn discover_for_client(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    let found = discover(explicit);
    let named = explicit.map(Path::to_path_buf).or_else(|| {
        std::env::var_os("TEND_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    match (found, named) {
        (Ok(path), _) => Ok(path),
        (Err(e), Some(named)) if !named.exists() => {
            let absolute = std::path::absolute(&named).map_err(|_| e.clone())?;
            let (Some(dir), Some(name)) = (absolute.parent(), absolute.file_name()) else {
                return Err(e);
            };
            dir.canonicalize().map(|dir| dir.join(name)).map_err(|_| e)
        }
        (Err(e), _) => Err(e),
    }
}

/// Reads, parses and checks the config file at `path` and builds the [`Spec`] it describes:
/// every default applied, relative paths resolved against the file's directory, `env_file`s
/// read.
///
/// The file (and each `env_file`) must be a regular file of at most [`MAX_CONFIG_BYTES`]
/// ([`MAX_ENV_FILE_BYTES`]); a FIFO or a device is refused without blocking. Reading may still
/// take as long as the file system does, so the daemon calls this off its driver thread.
pub fn load(path: &Path) -> Result<Spec, ConfigError> {
    load_with(path, &Formation::default()).map(|(spec, _)| spec)
}

/// [`load`], with the counts of `--formation` applied, and the `[http]` settings (read by
/// `tend up` only: a reload does not change them). A file named `Procfile` (or
/// `Procfile.NAME`) is read as a Procfile ([`procfile`]), which has no `[http]`.
pub fn load_with(
    path: &Path,
    formation: &Formation,
) -> Result<(Spec, Option<HttpSpec>), ConfigError> {
    let text = read_text(path, MAX_CONFIG_BYTES)
        .map_err(|e| ConfigError::file(path, format!("cannot read the config file: {e}")))?;
    let absolute = std::path::absolute(path).map_err(|e| ConfigError::file(path, e.to_string()))?;
    if procfile::is_procfile(path) {
        return Ok((procfile::build(&absolute, &text, formation)?, None));
    }
    let base = absolute.parent().unwrap_or(Path::new("/"));
    let (mut spec, http) = spec::build(
        &read::Source {
            file: path,
            text: &text,
        },
        base,
    )?;
    formation.apply(&mut spec, path)?;
    Ok((spec, http))
}

/// The text of the regular file at `path`, of at most `cap` bytes, as UTF-8. The error says
/// what is wrong with the file (the caller says which file it is).
pub(crate) fn read_text(path: &Path, cap: u64) -> Result<String, String> {
    let bytes = tend_os::read_regular(path, cap).map_err(|e| match e {
        tend_os::ReadError::TooLarge(cap) => {
            format!("it is larger than {} (the limit)", units::format_size(cap))
        }
        tend_os::ReadError::NotRegular(_) => format!("{e}; name a regular file"),
        tend_os::ReadError::Io(e) => e.to_string(),
    })?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "it is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// What `tend check` prints: the file, then one block per process saying what would run,
/// its instances, working directory, environment names, restart policy, backoff, stop
/// signal and timeout, and log settings. An empty config says there is nothing to run.
pub fn describe(spec: &Spec, path: &Path) -> String {
    describe::describe(spec, path)
}

/// A readiness check in words, as `tend check` says it.
pub fn describe_ready(ready: &tend_core::ReadySpec) -> String {
    describe::describe_ready(ready)
}

/// A probe in words, as `tend check` says it.
pub fn describe_probe(probe: &tend_core::ProbeSpec) -> String {
    describe::describe_probe(probe)
}

/// What `tend check` adds for `[http]`: where the API listens and who may reach it.
pub fn describe_http(http: &HttpSpec) -> String {
    let token = match &http.token_file {
        Some(file) => format!("the token read from {}", file.display()),
        None => "a token made at each start (`tend http-url`)".to_owned(),
    };
    let scope = if http.listen.ip().is_loopback() {
        "this machine only"
    } else {
        "beyond this machine (allow_remote)"
    };
    let metrics = if http.metrics_public {
        "; /metrics without the token"
    } else {
        ""
    };
    format!(
        "\nHTTP API: http://{}/ ({scope}), every request with {token}{metrics}\n",
        http.listen
    )
}

/// What `tend check --json` prints: the spec as one JSON document (see [`as_json`]), with
/// the `[http]` settings when there are some.
pub fn describe_json(spec: &Spec, http: Option<&HttpSpec>, path: &Path) -> Vec<u8> {
    let mut doc = serde_json::to_value(as_json::checked(spec, path)).unwrap_or_default();
    if let Some(http) = http {
        doc["http"] = serde_json::json!({
            "listen": http.listen.to_string(),
            "allow_remote": http.allow_remote,
            "token_file": http.token_file.as_ref().map(|f| f.display().to_string()),
            "metrics_public": http.metrics_public,
        });
    }
    tend_proto::encode(&doc)
}
