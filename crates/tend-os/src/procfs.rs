//! What `/proc` says about processes that are not (or no longer) tend's children: their
//! process group, session and start time, so that a process can be told from a later one that
//! got the same pid; and waiting, without polling, for such processes to exit.
//!
//! tend uses it to find the survivors of a predecessor that was killed (`kill -9 tend`): they
//! are no longer its children, so it can neither reap them nor trust a bare pid.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::{OsError, Pid};

/// A process as `/proc/PID/stat` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// The process id.
    pub pid: Pid,
    /// Its state letter (`R`, `S`, `T`, `Z`, …).
    pub state: char,
    /// Its process group.
    pub pgid: Pid,
    /// Its session.
    pub sid: Pid,
    /// When it started, in clock ticks since boot: with the pid, this names one process for
    /// the life of the system, even after the pid is reused.
    pub start_ticks: u64,
    /// The CPU time it used, user and system, in clock ticks, with that of the children it
    /// reaped (so a group's sum does not drop when a member reaps another).
    pub cpu_ticks: u64,
    /// Its resident set, in pages.
    pub rss_pages: u64,
    /// Its nice value (-20 to 19).
    pub nice: i32,
}

/// What the processes of one process group use, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupUsage {
    /// How many live processes (zombies not counted) are in the group.
    pub processes: u32,
    /// Their CPU time, in clock ticks.
    pub cpu_ticks: u64,
    /// Their resident memory, in bytes.
    pub rss_bytes: u64,
}

/// What the process `pid` alone uses now (tend's own, for its metrics): CPU time in clock
/// ticks (with that of the children it reaped, as in [`ProcStat::cpu_ticks`]) and resident
/// memory in bytes.
pub fn process_usage(pid: Pid) -> Option<(u64, u64)> {
    let stat = stat(pid)?;
    Some((stat.cpu_ticks, stat.rss_pages * page_size()))
}

/// What each of `groups` uses now, by process group: one pass over `/proc`. A group with no
/// live process is left out.
pub fn group_usage(
    groups: &std::collections::HashSet<Pid>,
) -> std::collections::HashMap<Pid, GroupUsage> {
    let mut usage = std::collections::HashMap::new();
    if groups.is_empty() {
        return usage;
    }
    let page = page_size();
    let Ok(dir) = fs::read_dir("/proc") else {
        return usage;
    };
    for pid in dir
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<Pid>().ok())
    {
        let Some(stat) = stat(pid) else { continue };
        if stat.exited() || !groups.contains(&stat.pgid) {
            continue;
        }
        let group: &mut GroupUsage = usage.entry(stat.pgid).or_default();
        group.processes += 1;
        group.cpu_ticks += stat.cpu_ticks;
        group.rss_bytes += stat.rss_pages * page;
    }
    usage
}

/// What the processes `pids` use now, together (a cgroup's members): those that are gone or
/// have exited are left out.
pub fn pids_usage(pids: &[Pid]) -> GroupUsage {
    let page = page_size();
    let mut usage = GroupUsage::default();
    for &pid in pids {
        let Some(stat) = stat(pid) else { continue };
        if stat.exited() {
            continue;
        }
        usage.processes += 1;
        usage.cpu_ticks += stat.cpu_ticks;
        usage.rss_bytes += stat.rss_pages * page;
    }
    usage
}

/// Clock ticks per second, the unit of [`ProcStat::cpu_ticks`] and `start_ticks`.
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a system setting; no memory is passed.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(100)
}

/// The size of a memory page, the unit of [`ProcStat::rss_pages`].
fn page_size() -> u64 {
    // SAFETY: sysconf only reads a system setting; no memory is passed.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

impl ProcStat {
    /// Whether the process has exited (a zombie waiting for its parent counts as exited).
    pub fn exited(&self) -> bool {
        self.state == 'Z' || self.state == 'X'
    }
}

/// `/proc/PID/stat` of `pid`, or `None` when there is no such process (or /proc cannot say).
///
/// Read with one `read` into a buffer on the stack: open, read, close. (`read_to_string`
/// adds a `statx` and reads in growing steps, 32 bytes first: eight system calls a process,
/// and tend reads one after each spawn and one per process of `/proc` for `status`.)
pub fn stat(pid: Pid) -> Option<ProcStat> {
    use std::io::Read;
    let path = format!("/proc/{pid}/stat");
    let mut file = fs::File::open(&path).ok()?;
    // A stat line is 52 fields after a command name of at most 64 bytes: under 1.2 KiB.
    let mut buf = [0u8; 2048];
    let mut len = 0;
    // The kernel gives the whole line, newline included, to the first read that has room
    // for it; read on only if it did not (then until EOF).
    while len == 0 || buf[len - 1] != b'\n' {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
        if len == buf.len() {
            // Longer than any stat line: let the general path read it.
            return parse_stat(pid, &fs::read_to_string(&path).ok()?);
        }
    }
    parse_stat(pid, std::str::from_utf8(&buf[..len]).ok()?)
}

/// Every process `/proc` lists now.
pub fn all_processes() -> Result<Vec<ProcStat>, OsError> {
    let dir = fs::read_dir("/proc").map_err(|e| OsError::with_path("read_dir", "/proc", e))?;
    Ok(dir
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<Pid>().ok())
        .filter_map(stat)
        .collect())
}

/// Parses a stat line. The command name (field 2) is in parentheses and may hold anything,
/// spaces and parentheses included, so the fields after it are found from its last `)`.
fn parse_stat(pid: Pid, line: &str) -> Option<ProcStat> {
    let fields: Vec<&str> = line.rsplit_once(')')?.1.split_whitespace().collect();
    // `fields[0]` is field 3 of proc(5), the state: field N is `fields[N - 3]`.
    let field = |n: usize| -> Option<i64> { fields.get(n - 3)?.parse().ok() };
    let ticks = |n: usize| field(n).and_then(|v| u64::try_from(v).ok());
    Some(ProcStat {
        pid,
        state: fields.first()?.chars().next()?,
        pgid: Pid::try_from(field(5)?).ok()?,
        sid: Pid::try_from(field(6)?).ok()?,
        start_ticks: ticks(22)?,
        cpu_ticks: [14, 15, 16, 17]
            .into_iter()
            .map(|n| ticks(n).unwrap_or(0))
            .fold(0u64, u64::saturating_add),
        rss_pages: ticks(24).unwrap_or(0),
        nice: field(19).and_then(|v| i32::try_from(v).ok()).unwrap_or(0),
    })
}

/// The time `t` in clock ticks since boot, the unit of [`ProcStat::start_ticks`]; `None`
/// when `/proc/stat` does not say when the system booted, or `t` is before that. Exact to a
/// second (the kernel gives the boot time in whole seconds).
pub fn ticks_since_boot(t: std::time::SystemTime) -> Option<u64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let boot: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let since_epoch = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    let since_boot = since_epoch.checked_sub(Duration::from_secs(boot))?;
    let per_second = ticks_per_second();
    u64::try_from(since_boot.as_millis() * u128::from(per_second) / 1000).ok()
}

/// A pidfd of process `pid`: `Ok(None)` when there is no such process. It stays that
/// process's even if the pid is reused once it is gone.
pub(crate) fn pidfd_open(pid: Pid) -> Result<Option<OwnedFd>, OsError> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is
    // passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ESRCH) => Ok(None),
            _ => Err(OsError::new("pidfd_open", err)),
        };
    }
    // SAFETY: the syscall returned a new fd that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }))
}

/// Waits until every process of `pids` has exited (or was never there), for at most
/// `timeout`: `Ok(true)` when all are gone, `Ok(false)` at the deadline. Each gets a pidfd,
/// which becomes readable when its process exits: no polling. A pid that exits and is reused
/// before its pidfd is opened would be waited for in vain, until the deadline: the caller
/// checks start times after this returns.
pub fn wait_all_exit(pids: &[Pid], timeout: Duration) -> Result<bool, OsError> {
    let deadline = Instant::now() + timeout;
    let mut fds = Vec::with_capacity(pids.len());
    for &pid in pids.iter().filter(|&&pid| pid > 0) {
        fds.extend(pidfd_open(pid)?);
    }
    let mut polled: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    while !polled.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        // Rounded up: poll must not give up before the deadline.
        let millis = i32::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX);
        // SAFETY: `polled` is a valid array of pollfds for fds we own, for the whole call.
        let ready =
            unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, millis) };
        match ready {
            1.. => polled.retain(|p| p.revents == 0),
            0 if Instant::now() >= deadline => return Ok(false),
            0 => {}
            _ => {
                let err = io::Error::last_os_error();
                if err.raw_os_error() != Some(libc::EINTR) {
                    return Err(OsError::new("poll", err));
                }
            }
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_with_a_hostile_command_name_parses() {
        let line = "4242 (a) b (c)) S 1 4242 4200 0 -1 4194560 100 0 0 0 1 2 0 0 25 5 1 0 \
                    987654 1000 100 18446744073709551615";
        let stat = parse_stat(4242, line).unwrap();
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.pgid, 4242);
        assert_eq!(stat.sid, 4200);
        assert_eq!(stat.start_ticks, 987654);
        assert_eq!(stat.cpu_ticks, 1 + 2, "utime + stime");
        assert_eq!(stat.rss_pages, 100);
        assert_eq!(stat.nice, 5);
        assert!(!stat.exited());
        assert_eq!(parse_stat(1, "garbage"), None);
    }

    #[test]
    fn our_own_stat_matches_what_the_kernel_says() {
        let me = std::process::id() as Pid;
        let stat = stat(me).unwrap();
        assert_eq!(stat.pgid, nix::unistd::getpgrp().as_raw());
        assert_eq!(stat.sid, nix::unistd::getsid(None).unwrap().as_raw());
        assert!(stat.start_ticks > 0);
        assert!(all_processes().unwrap().iter().any(|p| p.pid == me));
        assert_eq!(super::stat(i32::MAX), None);
    }

    #[test]
    fn a_group_s_usage_counts_its_live_processes_and_their_memory() {
        let me = std::process::id() as Pid;
        let group = nix::unistd::getpgrp().as_raw();
        let usage = group_usage(&[group].into_iter().collect());
        let ours = usage[&group];
        assert!(ours.processes >= 1);
        assert!(ours.rss_bytes >= stat(me).unwrap().rss_pages * page_size());
        assert!(ours.rss_bytes > 0);
        assert!(group_usage(&[i32::MAX].into_iter().collect()).is_empty());
    }

    #[test]
    fn a_process_started_now_started_about_now_in_ticks() {
        let me = stat(std::process::id() as Pid).unwrap();
        let now = ticks_since_boot(std::time::SystemTime::now()).unwrap();
        // This test process started before now, and not long before (a test run's length).
        assert!(me.start_ticks <= now + 100, "{} > {now}", me.start_ticks);
        assert!(
            now - me.start_ticks.min(now) < 100 * 3600,
            "{now} {}",
            me.start_ticks
        );
    }

    #[test]
    fn waiting_for_exits_ends_when_all_are_gone_or_at_the_deadline() {
        let mut a = std::process::Command::new("sleep")
            .arg("0")
            .spawn()
            .unwrap();
        let mut b = std::process::Command::new("sleep")
            .arg("1000")
            .spawn()
            .unwrap();
        let pids = [a.id() as Pid, b.id() as Pid];
        assert!(!wait_all_exit(&pids, Duration::from_millis(50)).unwrap());
        b.kill().unwrap();
        // A zombie has exited: its pidfd is readable before anyone reaps it.
        assert!(wait_all_exit(&pids, Duration::from_secs(20)).unwrap());
        a.wait().unwrap();
        b.wait().unwrap();
        assert!(wait_all_exit(&pids, Duration::ZERO).unwrap(), "reaped pids");
    }
}
