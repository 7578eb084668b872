//! The record of tend's live process groups, kept in the runtime dir, and what the next tend
//! does with the survivors of a predecessor that died without stopping them (`kill -9`, the
//! OOM killer, a crash).
//!
//! While tend runs, the state file lists every process group it started that still has a
//! member: the group id, the kernel's start time of its leader, its session, the stop signal
//! and timeout it was started with, and the instance. It is rewritten (to a temporary file,
//! then renamed over the old one, so a reader never sees half of it) at the end of each turn
//! of the driver's loop in which it changed, and removed when tend exits cleanly.
//!
//! The lock guarantees that a tend that finds the file at start is the only one of its config,
//! so the file was left by one that died. Before it starts anything, the new tend finds the
//! groups still alive, verified against the record (the leader's start time, or members of the
//! same group and session that started after it: a reused pid never matches), and stops each
//! by its group: its stop signal and SIGCONT, then SIGKILL after its stop timeout.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tend_core::Signal;
use tend_os::procfs::{self, ProcStat};

/// The first line of a state file.
const HEADER: &str = "tend-state 1";
/// The largest state file read back: 10 000 replicas of many processes fit.
const MAX_STATE_FILE: u64 = 64 << 20;
/// How long SIGKILLed survivors may take to be gone before tend gives up waiting for them.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// One process group tend started, as the state file records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    /// The group id, which is also the pid of its leader.
    pub pgid: i32,
    /// The leader's start time in clock ticks since boot (0: unknown).
    pub start_ticks: u64,
    /// The session the group belongs to.
    pub sid: i32,
    /// The signal that stops it.
    pub stop_signal: Signal,
    /// How long it may take to stop before SIGKILL.
    pub stop_timeout: Duration,
    /// The instance it runs, such as `web.0`.
    pub instance: String,
}

impl GroupRecord {
    /// The record of a child tend just spawned (not yet reaped, so its /proc entry is there).
    pub fn of_child(
        pgid: i32,
        stop_signal: Signal,
        stop_timeout: Duration,
        instance: &str,
    ) -> Self {
        let stat = procfs::stat(pgid);
        GroupRecord {
            pgid,
            start_ticks: stat.map_or(0, |s| s.start_ticks),
            sid: stat.map_or(0, |s| s.sid),
            stop_signal,
            stop_timeout,
            instance: instance.to_owned(),
        }
    }
}

/// The live groups of this tend and the file that records them.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    groups: BTreeMap<i32, GroupRecord>,
    dirty: bool,
}

impl StateFile {
    /// An empty record, to be written at `path`.
    pub fn new(path: PathBuf) -> Self {
        StateFile {
            path,
            groups: BTreeMap::new(),
            dirty: false,
        }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a group that was just started.
    pub fn add(&mut self, record: GroupRecord) {
        self.groups.insert(record.pgid, record);
        self.dirty = true;
    }

    /// Forgets a group that has no member any more.
    pub fn remove(&mut self, pgid: i32) {
        self.dirty |= self.groups.remove(&pgid).is_some();
    }

    /// Writes the file if it changed since the last save.
    pub fn save(&mut self) -> io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let mut text = format!("{HEADER} pid={}\n", std::process::id());
        for g in self.groups.values() {
            let _ = writeln!(
                text,
                "{} {} {} {} {} {}",
                g.pgid,
                g.start_ticks,
                g.sid,
                g.stop_signal.name(),
                g.stop_timeout.as_millis(),
                g.instance
            );
        }
        write_atomically(&self.path, text.as_bytes())?;
        self.dirty = false;
        Ok(())
    }

    /// Removes the file: tend is exiting with every group it started gone.
    pub fn remove_file(&self) -> io::Result<()> {
        match fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Writes `data` to a temporary file beside `path`, then renames it over `path`. Neither is
/// followed if it is a symlink.
fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    file.write_all(data)?;
    drop(file);
    fs::rename(&tmp, path)
}

/// The pid of the tend that wrote a state file, and its records. Lines that do not parse are
/// skipped (a record cannot be half written: the file is replaced whole).
pub fn parse(text: &str) -> (Option<u32>, Vec<GroupRecord>) {
    let mut lines = text.lines();
    let writer = lines
        .next()
        .and_then(|header| header.strip_prefix(HEADER))
        .and_then(|rest| rest.trim().strip_prefix("pid="))
        .and_then(|pid| pid.parse().ok());
    let records = lines
        .filter_map(|line| {
            let mut f = line.split(' ');
            let record = GroupRecord {
                pgid: f.next()?.parse().ok().filter(|&p: &i32| p > 1)?,
                start_ticks: f.next()?.parse().ok()?,
                sid: f.next()?.parse().ok()?,
                stop_signal: f.next()?.parse().ok()?,
                stop_timeout: Duration::from_millis(f.next()?.parse().ok()?),
                instance: f.next()?.to_owned(),
            };
            f.next().is_none().then_some(record)
        })
        .collect();
    (writer, records)
}

/// Reads the state file at `path`: `Ok(None)` when there is none.
fn read(path: &Path) -> io::Result<Option<String>> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    let mut text = String::new();
    File::take(file, MAX_STATE_FILE).read_to_string(&mut text)?;
    Ok(Some(text))
}

/// What [`sweep`] found and did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Groups of the dead tend that still had members.
    pub groups: usize,
    /// Their processes, when first found.
    pub processes: usize,
    /// Groups that needed SIGKILL.
    pub killed: usize,
    /// Processes still there when tend gave up waiting (stuck in the kernel, say).
    pub left: Vec<i32>,
}

/// The living members of the recorded group, or none when the group is not the recorded one
/// any more.
fn members(record: &GroupRecord, all: &[ProcStat]) -> Vec<ProcStat> {
    // The leader's pid holds another process: the group (if any) is not ours. (While a group
    // has members, no new process can get its id as a pid.)
    if let Some(leader) = all.iter().find(|p| p.pid == record.pgid) {
        if record.start_ticks != 0 && leader.start_ticks != record.start_ticks {
            return Vec::new();
        }
    }
    all.iter()
        .filter(|p| {
            p.pgid == record.pgid
                && p.sid == record.sid
                && p.start_ticks >= record.start_ticks
                && !p.exited()
        })
        .copied()
        .collect()
}

/// Stops the survivors recorded in the state file at `path`, if there is one, and removes the
/// file. `say` gets a line for the user before the stop and after it.
pub fn sweep(path: &Path, mut say: impl FnMut(String)) -> io::Result<Swept> {
    let Some(text) = read(path)? else {
        return Ok(Swept::default());
    };
    let (writer, records) = parse(&text);
    let mut swept = Swept::default();
    let all = procfs::all_processes().map_err(|e| e.source)?;
    let me = std::process::id() as i32;
    // Each surviving group, its members, its kill deadline, and whether it was killed.
    let mut pending: Vec<(GroupRecord, Vec<ProcStat>, Instant, bool)> = Vec::new();
    for record in records {
        let found = members(&record, &all);
        if found.is_empty() || found.iter().any(|p| p.pid == me) {
            continue;
        }
        swept.processes += found.len();
        pending.push((record, found, Instant::now(), false));
    }
    swept.groups = pending.len();
    if pending.is_empty() {
        fs::remove_file(path)?;
        return Ok(swept);
    }
    let names: Vec<&str> = pending.iter().map(|(r, ..)| r.instance.as_str()).collect();
    say(format!(
        "a tend that did not stop them{} left {} processes running in {} process groups ({}): \
         stopping them by their stop signal before anything starts",
        writer.map(|p| format!(" (pid {p})")).unwrap_or_default(),
        swept.processes,
        swept.groups,
        shorten(&names),
    ));
    let start = Instant::now();
    for (record, _, kill_at, _) in &mut pending {
        *kill_at = start + record.stop_timeout;
        let _ = tend_os::signal_group(record.pgid, record.stop_signal);
        let _ = tend_os::signal_group(record.pgid, Signal::Cont);
    }
    let mut give_up = None;
    loop {
        let all = procfs::all_processes().map_err(|e| e.source)?;
        for (record, found, ..) in &mut pending {
            *found = members(record, &all);
        }
        pending.retain(|(_, found, ..)| !found.is_empty());
        let now = Instant::now();
        for (record, _, kill_at, killed) in &mut pending {
            if !*killed && *kill_at <= now {
                let _ = tend_os::signal_group(record.pgid, Signal::Kill);
                *killed = true;
                swept.killed += 1;
                give_up = Some(now + KILL_GRACE);
            }
        }
        if pending.is_empty() {
            break;
        }
        let next = pending
            .iter()
            .filter(|(.., killed)| !killed)
            .map(|&(_, _, kill_at, _)| kill_at)
            .chain(give_up)
            .min()
            .expect("a pending group has a deadline or was killed");
        if pending.iter().all(|(.., killed)| *killed) && give_up.is_some_and(|g| g <= now) {
            swept.left = pending
                .iter()
                .flat_map(|(_, found, ..)| found.iter().map(|p| p.pid))
                .collect();
            break;
        }
        let pids: Vec<i32> = pending
            .iter()
            .flat_map(|(_, found, ..)| found.iter().map(|p| p.pid))
            .collect();
        tend_os::procfs::wait_all_exit(&pids, next.saturating_duration_since(now))
            .map_err(|e| e.source)?;
    }
    say(if swept.left.is_empty() {
        format!(
            "stopped the {} process groups left behind ({} needed SIGKILL)",
            swept.groups, swept.killed
        )
    } else {
        format!(
            "could not stop {} processes left behind (pids {:?}); starting anyway",
            swept.left.len(),
            swept.left
        )
    });
    fs::remove_file(path)?;
    Ok(swept)
}

/// `a, b, c` or `a, b, … (12 in all)`.
fn shorten(names: &[&str]) -> String {
    const SHOWN: usize = 8;
    if names.len() <= SHOWN {
        names.join(", ")
    } else {
        format!("{}, … ({} in all)", names[..SHOWN].join(", "), names.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pgid: i32, instance: &str) -> GroupRecord {
        GroupRecord {
            pgid,
            start_ticks: 77,
            sid: 5,
            stop_signal: Signal::Int,
            stop_timeout: Duration::from_millis(2500),
            instance: instance.into(),
        }
    }

    #[test]
    fn the_state_file_round_trips_and_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.state");
        let mut state = StateFile::new(path.clone());
        state.save().unwrap();
        assert!(!path.exists(), "nothing written while nothing changed");
        state.add(record(100, "web.0"));
        state.add(record(200, "web.1"));
        state.remove(100);
        state.save().unwrap();
        let (writer, records) = parse(&fs::read_to_string(&path).unwrap());
        assert_eq!(writer, Some(std::process::id()));
        assert_eq!(records, vec![record(200, "web.1")]);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
        state.remove_file().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn bad_lines_are_skipped() {
        let text = "tend-state 1 pid=9\n1 2 3 SIGTERM 10 init-is-never-a-group\n\
                    12 x 3 SIGTERM 10 a.0\n13 2 3 SIGFOO 10 a.0\n14 2 3 SIGTERM 10 a.0 extra\n\
                    15 2 3 SIGTERM 10 ok.0\n";
        let (writer, records) = parse(text);
        assert_eq!(writer, Some(9));
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].instance, "ok.0");
    }

    #[test]
    fn a_planted_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let path = dir.path().join("x.state");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        assert!(read(&path).is_err(), "reading through a symlink");
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        let mut state = StateFile::new(path.clone());
        state.add(record(100, "web.0"));
        state.save().unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert!(fs::symlink_metadata(&path).unwrap().is_file());
    }

    #[test]
    fn a_reused_pid_is_not_taken_for_the_recorded_group() {
        let stat = |pid, pgid, sid, start_ticks| ProcStat {
            pid,
            state: 'S',
            pgid,
            sid,
            start_ticks,
        };
        let rec = record(100, "web.0");
        // The leader lives, with its start time: the group and its younger members count.
        let all = [
            stat(100, 100, 5, 77),
            stat(101, 100, 5, 90),
            stat(102, 7, 5, 90),
        ];
        assert_eq!(members(&rec, &all).len(), 2);
        // Pid 100 is another process now: nothing is ours.
        let all = [stat(100, 100, 5, 500), stat(101, 100, 5, 600)];
        assert!(members(&rec, &all).is_empty());
        // The leader is gone; a member of the same group and session outlived it.
        let all = [stat(101, 100, 5, 90)];
        assert_eq!(members(&rec, &all).len(), 1);
        // Same group id in another session, or older than the leader: not ours.
        let all = [stat(101, 100, 6, 90), stat(103, 100, 5, 10)];
        assert!(members(&rec, &all).is_empty());
    }
}
