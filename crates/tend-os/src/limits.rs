//! The open-file limit (`RLIMIT_NOFILE`): tend raises its own soft limit to the hard limit, and
//! remembers the original so that [`crate::spawn()`] gives children the limit tend was started with
//! (many programs misbehave with a huge soft limit, e.g. loops over every possible fd, or `select`).

use std::sync::OnceLock;

use nix::sys::resource::{getrlimit, setrlimit, Resource};

use crate::OsError;

/// The (soft, hard) limit before the first [`raise_nofile_limit`].
static ORIGINAL: OnceLock<(u64, u64)> = OnceLock::new();

/// Raises tend's soft `RLIMIT_NOFILE` to its hard limit, remembering the original limits for
/// children. Idempotent: later calls keep the limits seen by the first.
pub fn raise_nofile_limit() -> Result<(), OsError> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)
        .map_err(|e| OsError::from_errno("getrlimit RLIMIT_NOFILE", e))?;
    ORIGINAL.get_or_init(|| (soft, hard));
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
            .map_err(|e| OsError::from_errno("setrlimit RLIMIT_NOFILE", e))?;
    }
    Ok(())
}

/// The (soft, hard) `RLIMIT_NOFILE` tend had before [`raise_nofile_limit`], if it was called.
pub fn original_nofile_limit() -> Option<(u64, u64)> {
    ORIGINAL.get().copied()
}
