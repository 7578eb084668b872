//! Typed, checked reading of a [`Node`] tree.
//!
//! A [`Field`] is a value together with its key path and its place in the file, so that every
//! accessor can turn a wrong type or value into a [`ConfigError`] naming both.

use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::ConfigError;
use super::tree::{Key, Kind, Node};
use super::units;

/// The file being read: its name for messages, its text for line and column.
pub(super) struct Source<'a> {
    pub file: &'a Path,
    pub text: &'a str,
}

/// A value, its dotted key path and where it is.
#[derive(Clone)]
pub(super) struct Field<'a> {
    src: &'a Source<'a>,
    /// The dotted key path, such as `process.web.backoff.max`; empty for the document.
    path: String,
    /// The value.
    pub node: &'a Node,
    /// Where its key is: the place to point at when the value itself has no span.
    key_span: Option<Range<usize>>,
}

/// A table: a [`Field`] known to hold one, with its entries in document order.
pub(super) struct Table<'a> {
    field: Field<'a>,
    entries: &'a [(Key, Node)],
}

type Result<T> = std::result::Result<T, ConfigError>;

impl<'a> Field<'a> {
    /// The whole document.
    pub fn root(src: &'a Source<'a>, node: &'a Node) -> Field<'a> {
        Field {
            src,
            path: String::new(),
            node,
            key_span: None,
        }
    }

    /// An error about this value, pointing at it.
    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        let span = self.node.span.clone().or_else(|| self.key_span.clone());
        ConfigError::at(self.src.file, self.src.text, span, &self.path, message)
    }

    /// An error about this key (an unknown or unsupported one), pointing at the key.
    pub fn key_error(&self, message: impl Into<String>) -> ConfigError {
        let span = self.key_span.clone().or_else(|| self.node.span.clone());
        ConfigError::at(self.src.file, self.src.text, span, &self.path, message)
    }

    /// The error for a value of the wrong type.
    pub fn expected(&self, what: &str) -> ConfigError {
        self.error(format!(
            "expected {what}, found {}",
            self.node.kind.type_name()
        ))
    }

    /// A string, which may not hold a NUL character (no command or variable can).
    pub fn string(&self) -> Result<&'a str> {
        match &self.node.kind {
            Kind::String(s) if s.contains('\0') => {
                Err(self.error("contains a NUL character, which no program can be given"))
            }
            Kind::String(s) => Ok(s),
            _ => Err(self.expected("a string")),
        }
    }

    /// `true` or `false`.
    pub fn boolean(&self) -> Result<bool> {
        match self.node.kind {
            Kind::Boolean(b) => Ok(b),
            _ => Err(self.expected("true or false")),
        }
    }

    /// An integer within `range`.
    pub fn integer(&self, range: RangeInclusive<i64>) -> Result<i64> {
        match self.node.kind {
            Kind::Integer(n) if range.contains(&n) => Ok(n),
            Kind::Integer(n) => Err(self.error(format!(
                "{n} is out of range; expected {} to {}",
                range.start(),
                range.end()
            ))),
            _ => Err(self.expected("an integer")),
        }
    }

    /// A count of at least `min` that fits a `u32`.
    pub fn count(&self, min: u32) -> Result<u32> {
        let n = self.integer(min.into()..=u32::MAX.into())?;
        Ok(u32::try_from(n).expect("checked by the range"))
    }

    /// A number; an integer is taken as a float.
    pub fn float(&self) -> Result<f64> {
        match self.node.kind {
            Kind::Float(x) => Ok(x),
            Kind::Integer(n) => Ok(n as f64),
            _ => Err(self.expected("a number")),
        }
    }

    /// A duration, written as a string such as "10s" (see [`units::parse_duration`]).
    pub fn duration(&self) -> Result<Duration> {
        let Kind::String(text) = &self.node.kind else {
            return Err(self.error(format!(
                "expected a duration string such as \"10s\" or \"250ms\", found {}",
                self.node.kind.type_name()
            )));
        };
        units::parse_duration(text).map_err(|e| self.error(e))
    }

    /// A size: an integer number of bytes, or a string such as "10MiB".
    pub fn size(&self) -> Result<u64> {
        match &self.node.kind {
            Kind::Integer(n) => u64::try_from(*n)
                .map_err(|_| self.error(format!("{n} is negative; sizes are at least 0"))),
            Kind::String(text) => units::parse_size(text).map_err(|e| self.error(e)),
            _ => Err(self.expected("a size such as \"10MiB\" or an integer number of bytes")),
        }
    }

    /// A path; a relative one is resolved against `base` (the config file's directory).
    pub fn path(&self, base: &Path) -> Result<PathBuf> {
        let text = self.string()?;
        if text.is_empty() {
            return Err(self.error("the path is empty; write \".\" for the config's directory"));
        }
        // Collecting the components drops the `.` ones: `/etc/./web` becomes `/etc/web`.
        Ok(base.join(text).components().collect())
    }

    /// The items of an array, each with its index in the path (`success_codes[1]`).
    pub fn array(&self) -> Result<Vec<Field<'a>>> {
        let Kind::Array(items) = &self.node.kind else {
            return Err(self.expected("an array"));
        };
        let items = items.iter().enumerate().map(|(i, node)| Field {
            path: format!("{}[{i}]", self.path),
            node,
            key_span: None,
            ..self.clone()
        });
        Ok(items.collect())
    }

    /// The table this field holds.
    pub fn table(&self) -> Result<Table<'a>> {
        match &self.node.kind {
            Kind::Table(entries) => Ok(Table {
                field: self.clone(),
                entries,
            }),
            _ => Err(self.expected("a table")),
        }
    }
}

impl<'a> Table<'a> {
    /// The table as a field, to report errors about it as a whole.
    pub fn field(&self) -> &Field<'a> {
        &self.field
    }

    /// Fails on the first key that is not in `known`, listing the known ones.
    pub fn allow(&self, known: &[&str]) -> Result<()> {
        match self
            .entries()
            .find(|(key, _)| !known.contains(&key.name.as_str()))
        {
            Some((key, field)) => Err(field.key_error(format!(
                "unknown key {:?}; expected one of {}",
                key.name,
                known.join(", ")
            ))),
            None => Ok(()),
        }
    }

    /// The value of `key`, if the table has it.
    pub fn get(&self, key: &str) -> Option<Field<'a>> {
        self.entries().find(|(k, _)| k.name == key).map(|(_, f)| f)
    }

    /// Every key and its value, in document order.
    pub fn entries(&self) -> impl Iterator<Item = (&'a Key, Field<'a>)> + '_ {
        self.entries.iter().map(|(key, node)| {
            let field = Field {
                path: join(&self.field.path, &key.name),
                node,
                key_span: key.span.clone(),
                ..self.field.clone()
            };
            (key, field)
        })
    }
}

/// `parent.key`, quoting a key that is not a bare TOML key.
fn join(parent: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}
