//! Finding the config file: `-c FILE`, else `$TEND_CONFIG`, else `tend.toml` in the current
//! directory or its nearest parent, else a `Procfile` there.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::error::ConfigError;

/// The file name looked for in the current directory and its parents.
pub(super) const FILE_NAME: &str = "tend.toml";
/// The file used in a directory that has no [`FILE_NAME`].
pub(super) const PROCFILE: &str = "Procfile";

/// [`super::discover`] with the environment and the current directory passed in.
pub(super) fn discover_in(
    explicit: Option<&Path>,
    env_value: Option<OsString>,
    cwd: &Path,
) -> Result<PathBuf, ConfigError> {
    let env_value = env_value.filter(|value| !value.is_empty());
    if let Some(path) = explicit {
        return existing_file(&cwd.join(path), "given by -c");
    }
    if let Some(path) = env_value {
        return existing_file(&cwd.join(path), "given by $TEND_CONFIG");
    }
    // tend.toml wins wherever it is, so that a project's tend is found from any of its
    // directories, even one with a Procfile of its own; then the nearest Procfile.
    let nearest = |name: &str| {
        cwd.ancestors()
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    };
    match nearest(FILE_NAME).or_else(|| nearest(PROCFILE)) {
        Some(found) => existing_file(&found, "found"),
        None => Err(ConfigError {
            file: None,
            line_col: None,
            key: None,
            message: format!(
                "no {FILE_NAME} (or {PROCFILE}) found in {} or any parent directory, and \
                 $TEND_CONFIG is not set; `tend init` writes a starter {FILE_NAME} here, or \
                 pass -c FILE",
                cwd.display()
            ),
        }),
    }
}

/// The canonical path of `path`, which must be a file; `origin` says where it came from.
fn existing_file(path: &Path, origin: &str) -> Result<PathBuf, ConfigError> {
    let bad = |why: String| ConfigError::file(path, format!("config file {origin}: {why}"));
    let canonical = path.canonicalize().map_err(|e| bad(e.to_string()))?;
    if !canonical.is_file() {
        return Err(bad("not a regular file".into()));
    }
    Ok(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    struct Dirs {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        deep: PathBuf,
    }

    /// `root/tend.toml`, `root/other.toml` and an empty `root/a/b`.
    fn dirs() -> Dirs {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let deep = root.join("a/b");
        fs::create_dir_all(&deep).unwrap();
        fs::write(root.join(FILE_NAME), "").unwrap();
        fs::write(root.join("other.toml"), "").unwrap();
        Dirs {
            _tmp: tmp,
            root,
            deep,
        }
    }

    #[test]
    fn explicit_path_wins_and_is_made_absolute() {
        let d = dirs();
        let env = Some(OsString::from("/nowhere.toml"));
        let found = discover_in(Some(Path::new("../../other.toml")), env, &d.deep).unwrap();
        assert_eq!(found, d.root.join("other.toml"));
    }

    #[test]
    fn env_var_comes_next_unless_empty() {
        let d = dirs();
        let env = Some(d.root.join("other.toml").into_os_string());
        assert_eq!(
            discover_in(None, env, &d.deep).unwrap(),
            d.root.join("other.toml")
        );
        let empty = Some(OsString::new());
        assert_eq!(
            discover_in(None, empty, &d.deep).unwrap(),
            d.root.join(FILE_NAME)
        );
    }

    #[test]
    fn finds_the_nearest_tend_toml_upwards() {
        let d = dirs();
        assert_eq!(
            discover_in(None, None, &d.deep).unwrap(),
            d.root.join(FILE_NAME)
        );
        fs::write(d.deep.join(FILE_NAME), "").unwrap();
        assert_eq!(
            discover_in(None, None, &d.deep).unwrap(),
            d.deep.join(FILE_NAME)
        );
    }

    #[test]
    fn a_procfile_serves_where_there_is_no_tend_toml() {
        let d = dirs();
        fs::write(d.deep.join(PROCFILE), "web: x\n").unwrap();
        // A tend.toml above wins over a Procfile here: the project's tend is found the same
        // from every directory.
        assert_eq!(
            discover_in(None, None, &d.deep).unwrap(),
            d.root.join(FILE_NAME)
        );
        fs::remove_file(d.root.join(FILE_NAME)).unwrap();
        assert_eq!(
            discover_in(None, None, &d.deep).unwrap(),
            d.deep.join(PROCFILE)
        );
        fs::write(d.deep.join(FILE_NAME), "").unwrap();
        assert_eq!(
            discover_in(None, None, &d.deep).unwrap(),
            d.deep.join(FILE_NAME)
        );
    }

    #[test]
    fn errors_say_where_and_what_to_do() {
        let d = dirs();
        let err = discover_in(Some(Path::new("missing.toml")), None, &d.deep).unwrap_err();
        assert_eq!(err.file, Some(d.deep.join("missing.toml")));
        assert!(
            err.to_string()
                .contains("config file given by -c: No such file"),
            "{err}"
        );

        let env = Some(OsString::from("a"));
        let err = discover_in(None, env, &d.root).unwrap_err();
        assert!(err
            .to_string()
            .ends_with("given by $TEND_CONFIG: not a regular file"));

        let empty = tempfile::tempdir().unwrap();
        let err = discover_in(None, None, empty.path()).unwrap_err();
        assert_eq!(err.file, None);
        assert!(
            err.message
                .starts_with("no tend.toml (or Procfile) found in "),
            "{err}"
        );
        assert!(
            err.message
                .ends_with("`tend init` writes a starter tend.toml here, or pass -c FILE"),
            "{err}"
        );
    }
}
