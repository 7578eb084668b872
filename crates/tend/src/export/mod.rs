//! `tend export FORMAT DIR`: the config as another tool's files, for production where that
//! tool supervises. Today one format, [`systemd`] units.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

pub mod systemd;

/// A file to write: its path relative to the export directory, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Relative to the export directory (`app-web.service`, `app-web@0.service.d/port.conf`).
    pub path: PathBuf,
    /// The whole text.
    pub text: String,
}

/// Writes `files` under `dir` (created if missing), replacing files of the same names but
/// never following a symbolic link planted where one of them goes. Returns the paths
/// written, in order.
pub fn write(dir: &Path, files: &[File]) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    for file in files {
        let path = dir.join(&file.path);
        let parent = path.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        out.write_all(file.text.as_bytes())
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
