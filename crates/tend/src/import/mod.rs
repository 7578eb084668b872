//! `tend import FILE`: the tend.toml equivalent of another tool's config, printed for the user
//! to read and save. A Procfile ([`procfile`]) or a supervisord.conf ([`supervisord`]).
//!
//! The output is meant to be kept: it names paths relative to the imported file's directory
//! (save it there), it passes `tend check`, and each setting that tend cannot carry over is a
//! comment saying what it was and why it is not there.

use std::fmt::Write as _;
use std::path::Path;

pub mod procfile;

/// The tend.toml equivalent of the file at `path` (a Procfile, or else a supervisord.conf).
pub fn import(path: &Path) -> Result<String, String> {
    if crate::config::procfile::is_procfile(path) {
        return procfile::import(path);
    }
    Err(format!(
        "{}: tend imports a Procfile (a file named Procfile or Procfile.NAME)",
        path.display()
    ))
}

/// `text` as a TOML basic string, quoted and escaped.
pub(crate) fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `text` as TOML comment lines, each starting with `# `.
pub(crate) fn comment(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let _ = writeln!(out, "# {line}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_through_toml() {
        for text in [
            "plain",
            "a \"quoted\" \\ path",
            "tab\tnew\nline",
            "\u{1b}[31m",
            "é",
        ] {
            let doc = format!("k = {}\n", toml_string(text));
            let parsed: toml_edit::DocumentMut = doc.parse().unwrap();
            assert_eq!(parsed["k"].as_str(), Some(text), "{doc}");
        }
    }
}
