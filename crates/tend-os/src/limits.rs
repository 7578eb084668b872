//! The open-file limit (`RLIMIT_NOFILE`): tend raises its own soft limit to the hard limit, and
//! remembers the original so that [`crate::spawn()`] gives children the limit tend was started with
//! (many programs misbehave with a huge soft limit, e.g. loops over every possible fd, or `select`).
//! And the size of tend's descriptor table, grown once while tend has one thread.

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

/// Grows this process's descriptor table to at least `n` entries now (within the soft
/// `RLIMIT_NOFILE`), best effort. Call it while the process has one thread: the kernel grows a
/// table that threads share only after an RCU grace period, and tend, which opens pipes, log
/// files and sockets for each child, would otherwise wait one (10–27 ms measured) at every
/// doubling of its table during a start (bench/RESULTS.md, the chain of 100).
pub fn reserve_fds(n: u32) {
    let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let highest = u64::from(n).min(soft).saturating_sub(1);
    let Ok(highest) = i32::try_from(highest) else {
        return;
    };
    if highest < 3 {
        return;
    }
    // A copy of stderr (or of whichever standard fd is open) at `highest` or above makes the
    // kernel grow the table to hold it; closing it leaves the table grown.
    for fd in 0..3 {
        let copy = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(highest));
        if let Ok(copy) = copy {
            let _ = nix::unistd::close(copy);
            return;
        }
    }
}

/// The (soft, hard) `RLIMIT_NOFILE` tend had before [`raise_nofile_limit`], if it was called.
pub fn original_nofile_limit() -> Option<(u64, u64)> {
    ORIGINAL.get().copied()
}

/// tend's own soft and hard limit of `resource` (`RLIM_INFINITY` as `u64::MAX`), if it can
/// be read. A process that is not root cannot raise a hard limit above its own.
pub fn current_limit(resource: Resource) -> Option<(u64, u64)> {
    getrlimit(resource).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `FDSize` of /proc/self/status: how many entries the descriptor table has now.
    fn table_size() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("FDSize:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    #[test]
    fn the_descriptor_table_is_grown_at_once_and_no_descriptor_is_left() {
        raise_nofile_limit().unwrap();
        let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let want = 3000u32.min(u32::try_from(soft).unwrap_or(u32::MAX));
        reserve_fds(want);
        assert!(table_size() >= u64::from(want), "FDSize {}", table_size());
        // The copy that grew it is closed (other tests of this binary open only low ones).
        let highest_open = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .max()
            .unwrap();
        assert!(highest_open < want - 1, "fd {highest_open} is still open");
    }
}
