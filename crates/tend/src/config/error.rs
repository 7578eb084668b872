//! The one error type of the config layer, and the byte offset → line:column conversion.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Why a config file could not be found, read or accepted.
///
/// Displays as `FILE:LINE:COLUMN: KEY: MESSAGE`, leaving out what is unknown, for example
/// `tend.toml:12:15: process.web.stop_signal: unknown signal "SIGFOO"; expected one of …`.
/// The message says what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file concerned; `None` when none was found.
    pub file: Option<PathBuf>,
    /// Line and column (1-based, columns in characters) of the offending key or value.
    pub line_col: Option<(usize, usize)>,
    /// The dotted key path, such as `process.web.stop_signal`.
    pub key: Option<String>,
    /// What is wrong and what to do.
    pub message: String,
}

impl ConfigError {
    /// An error about a whole file, such as one that cannot be read.
    pub(super) fn file(file: &Path, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: Some(file.to_path_buf()),
            line_col: None,
            key: None,
            message: message.into(),
        }
    }

    /// An error at a place in a file's text, about a key.
    pub(super) fn at(
        file: &Path,
        text: &str,
        span: Option<Range<usize>>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            line_col: span.map(|span| line_col(text, span.start)),
            key: (!key.is_empty()).then(|| key.to_owned()),
            ..ConfigError::file(file, message)
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some((line, column)) = self.line_col {
                write!(f, ":{line}:{column}")?;
            }
            f.write_str(": ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The 1-based line and column (in characters) of a byte offset in `text`.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 4), (1, 5));
        assert_eq!(line_col(text, 6), (2, 1));
        let x = text.find('"').unwrap();
        assert_eq!(line_col(text, x), (2, 6));
        assert_eq!(line_col(text, text.len()), (3, 1));
    }

    #[test]
    fn display_leaves_out_what_is_unknown() {
        let full = ConfigError::at(Path::new("tend.toml"), "ab\ncd", Some(4..5), "k.x", "bad");
        assert_eq!(full.to_string(), "tend.toml:2:2: k.x: bad");
        let file_only = ConfigError::file(Path::new("/t/tend.toml"), "cannot read");
        assert_eq!(file_only.to_string(), "/t/tend.toml: cannot read");
        let bare = ConfigError {
            file: None,
            line_col: None,
            key: None,
            message: "no tend.toml found".into(),
        };
        assert_eq!(bare.to_string(), "no tend.toml found");
    }
}
