//! The config layer: finding `tend.toml`, turning it into a [`tend_core::Spec`], describing it.
//!
//! This module owns the config file format (docs/config.md is its reference): which keys
//! exist, their types, defaults and checks, how relative paths resolve, and the errors. Every
//! error is a [`ConfigError`] naming the file, the line and column, the key path, what is wrong
//! and what to do; the caller maps each to exit code 78 (`EX_CONFIG`).
//!
//! Inside: `tree` parses TOML keeping every span, `read` reads typed values out of it, `spec`
//! gives the keys their meaning, with `units` (durations and sizes) and `env_file`;
//! `discover` finds the file and `describe` prints what it means.

mod describe;
mod discover;
mod env_file;
mod error;
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

/// Reads, parses and checks the config file at `path` and builds the [`Spec`] it describes:
/// every default applied, relative paths resolved against the file's directory, `env_file`s
/// read.
pub fn load(path: &Path) -> Result<Spec, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::file(path, format!("cannot read the config file: {e}")))?;
    let absolute = std::path::absolute(path).map_err(|e| ConfigError::file(path, e.to_string()))?;
    let base = absolute.parent().unwrap_or(Path::new("/"));
    spec::build(
        &read::Source {
            file: path,
            text: &text,
        },
        base,
    )
}

/// What `tend check` prints: the file, then one block per process saying what would run,
/// its instances, working directory, environment names, restart policy, backoff, stop
/// signal and timeout, and log settings. An empty config says there is nothing to run.
pub fn describe(spec: &Spec, path: &Path) -> String {
    describe::describe(spec, path)
}
