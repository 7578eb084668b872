//! Where a supervisor's control socket, lock file and state file live, derived from its
//! config's path, so that every `tend` command finds the supervisor of the config it was given;
//! and how its log files are named.
//!
//! All three live in [`tend_os::runtime_dir`] (`$XDG_RUNTIME_DIR/tend/`, or a private directory in
//! the temp dir), named by a hash of the config's absolute path: two projects never collide,
//! and the socket path stays far below the 108-byte limit of a socket address.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use tend_os::OsError;

use crate::hash::fnv1a;

/// The control socket and lock file of one supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimePaths {
    /// The control socket.
    pub socket: PathBuf,
    /// The lock file held by the running supervisor, beside the socket.
    pub lock: PathBuf,
    /// The record of the supervisor's live process groups, beside the socket: what the next
    /// supervisor stops if this one dies without stopping them.
    pub state: PathBuf,
    /// The HTTP API's address and token (0600), beside the socket, while it serves.
    pub http: PathBuf,
}

impl RuntimePaths {
    /// The paths for the supervisor of `config` (an absolute path), or around `socket` when
    /// given (`--socket PATH`).
    ///
    /// A relative `socket` is made absolute against the current directory now, before a daemon
    /// changes its directory to `/`.
    pub fn for_config(config: &Path, socket: Option<&Path>) -> Result<RuntimePaths, OsError> {
        if let Some(socket) = socket {
            let socket = &std::path::absolute(socket)
                .map_err(|e| OsError::with_path("resolving the socket path", socket, e))?;
            let beside = |suffix: &str| {
                let mut path = OsString::from(socket.as_os_str());
                path.push(suffix);
                PathBuf::from(path)
            };
            return Ok(RuntimePaths {
                socket: socket.to_owned(),
                lock: beside(".lock"),
                state: beside(".state"),
                http: beside(".http"),
            });
        }
        let dir = tend_os::runtime_dir()?;
        let key = format!("{:016x}", fnv1a(config.as_os_str().as_encoded_bytes()));
        Ok(RuntimePaths {
            socket: dir.join(format!("{key}.sock")),
            lock: dir.join(format!("{key}.lock")),
            state: dir.join(format!("{key}.state")),
            http: dir.join(format!("{key}.http")),
        })
    }
}

/// The name of the log file of one stream of an instance: `web.0.log` for stdout,
/// `web.0.err.log` for stderr (rotated ones add `.1`, `.2`, …). The one place of this scheme.
pub fn log_file_name(instance: &str, stream: tend_proto::Stream) -> String {
    match stream {
        tend_proto::Stream::Stdout => format!("{instance}.log"),
        tend_proto::Stream::Stderr => format!("{instance}.err.log"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_get_distinct_stable_short_paths() {
        let a = RuntimePaths::for_config(Path::new("/srv/a/tend.toml"), None).unwrap();
        let b = RuntimePaths::for_config(Path::new("/srv/b/tend.toml"), None).unwrap();
        assert_ne!(a.socket, b.socket);
        assert_eq!(
            a,
            RuntimePaths::for_config(Path::new("/srv/a/tend.toml"), None).unwrap()
        );
        assert_eq!(a.socket.parent(), a.lock.parent());
        assert!(a.socket.as_os_str().len() < 108);
    }

    #[test]
    fn an_explicit_socket_keeps_its_lock_beside_it() {
        let p =
            RuntimePaths::for_config(Path::new("/x/tend.toml"), Some(Path::new("/tmp/s"))).unwrap();
        assert_eq!(p.socket, PathBuf::from("/tmp/s"));
        assert_eq!(p.lock, PathBuf::from("/tmp/s.lock"));
        assert_eq!(p.state, PathBuf::from("/tmp/s.state"));
    }
}
