//! `tend import FILE`: the tend.toml equivalent of another tool's config, printed for the user
//! to read and save. A Procfile ([`procfile`]) or a supervisord.conf ([`supervisord`]): which
//! one this module decides, and it owns the TOML helpers both write with.
//!
//! The output is meant to be kept: it names paths relative to the imported file's directory
//! (save it there), it passes `tend check`, and each setting that tend cannot carry over is a
//! comment saying what it was and why it is not there.

use std::fmt::Write as _;
use std::path::Path;

pub mod procfile;
pub mod supervisord;

/// The tend.toml equivalent of the file at `path`: a Procfile (by its name), or else a
/// supervisord config (a file with a `[program:NAME]` or an `[include]` section).
pub fn import(path: &Path) -> Result<String, String> {
    if crate::config::procfile::is_procfile(path) {
        return procfile::import(path);
    }
    let text = read(path)?;
    if supervisord::looks_like(&text) {
        return supervisord::import(path);
    }
    Err(format!(
        "{}: not a file tend imports; tend imports a Procfile (a file named Procfile or \
         Procfile.NAME) or a supervisord config (a file with a [program:NAME] or an [include] \
         section)",
        path.display()
    ))
}

/// The text of the file at `path`: a regular file (a FIFO or a device is refused without
/// blocking) of UTF-8 text, at most as large as a config may be.
pub(crate) fn read(path: &Path) -> Result<String, String> {
    crate::config::read_text(path, crate::config::MAX_CONFIG_BYTES)
        .map_err(|e| format!("{}: {e}", path.display()))
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

/// `items` as a TOML array of basic strings, on one line.
pub(crate) fn toml_array(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| toml_string(item)).collect();
    format!("[{}]", quoted.join(", "))
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
