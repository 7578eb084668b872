//! A Procfile as tend.toml: what `tend up` does with the Procfile itself (config::procfile),
//! written out so that it can be edited.

use std::fmt::Write as _;
use std::path::Path;

use super::{comment, toml_string};
use crate::config::procfile;

/// The tend.toml of the Procfile at `path`.
pub fn import(path: &Path) -> Result<String, String> {
    let text = super::read(path)?;
    let procfile = procfile::parse(path, &text).map_err(|e| e.to_string())?;
    let mut out = comment(&format!(
        "Imported from {} by `tend import`; save it as tend.toml beside it.\n\
         As foreman does, each command runs through a shell in this directory, with .env\n\
         loaded, and PORT = base + 100 per line before it + the instance's index (port).\n\
         Unlike foreman, a process that fails is restarted, one that exits 0 stays exited,\n\
         and release (if any) runs once, before the others.",
        path.display()
    ));
    let release_first = procfile.release_first(|_| true);
    for (index, entry) in procfile.entries.iter().enumerate() {
        let _ = writeln!(out, "\n[process.{}]", entry.name);
        let _ = writeln!(out, "command = {}", toml_string(&entry.command));
        out.push_str("shell = true\ncwd = \".\"\n");
        if procfile.dotenv.is_some() {
            out.push_str("env_file = \".env\"\n");
        }
        if let Some(port) = procfile.port(index) {
            let _ = writeln!(out, "port = {port}");
        }
        if entry.name == "release" {
            out.push_str("restart = \"never\"\n");
        } else {
            out.push_str("restart = \"on-failure\"\n");
            if release_first {
                out.push_str("depends_on = { release = \"completed\" }\n");
            }
        }
    }
    Ok(out)
}
