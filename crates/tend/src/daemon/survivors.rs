//! The record of tend's live process groups, kept in the runtime dir, and what the next tend
//! does with the survivors of a predecessor that died without stopping them (`kill -9`, the
//! OOM killer, a crash).
//!
//! While tend runs, the state file lists every process group it started that still has a
//! member: the group id, the kernel's start time of its leader, its session, the stop signal
//! and timeout it was started with, and the instance. It is a journal ([`StateFile`]) written
//! at the end of each turn of the driver's loop in which it changed, and removed when tend
//! exits cleanly.
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
///
/// The file is a journal: a snapshot of the live groups (`+` lines), then one line per change
/// (`+` a group started, `-` a group ended), appended once per turn of the driver loop with one
/// `write` to a file opened `O_APPEND`. A `write` is never torn by a `kill -9` (the signal
/// waits for the system call to end), so a reader sees whole lines. When the journal holds
/// more than twice the live groups it is compacted: a new snapshot written beside it and
/// renamed over it. Rewriting the whole file at every change cost 170 µs a restart (a third of
/// a core at tend's 1700 restarts a second); an append costs one system call.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    groups: BTreeMap<i32, GroupRecord>,
    /// The journal, open for appending; `None` until the first save, and after a failed write
    /// (then the next save writes a fresh snapshot).
    file: Option<File>,
    /// Lines in the journal now.
    lines: usize,
    /// Changes not yet written.
    pending: String,
}

impl StateFile {
    /// An empty record, to be written at `path`.
    pub fn new(path: PathBuf) -> Self {
        StateFile {
            path,
            groups: BTreeMap::new(),
            file: None,
            lines: 0,
            pending: String::new(),
        }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a group that was just started.
    pub fn add(&mut self, record: GroupRecord) {
        push_record(&mut self.pending, &record);
        self.groups.insert(record.pgid, record);
    }

    /// Forgets a group that has no member any more.
    pub fn remove(&mut self, pgid: i32) {
        if self.groups.remove(&pgid).is_some() {
            let _ = writeln!(self.pending, "- {pgid}");
        }
    }

    /// Writes what changed since the last save: appended to the journal, or as a fresh
    /// snapshot when there is no journal yet or it has grown past twice the live groups.
    pub fn save(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let changes = self.pending.lines().count();
        let result = match &mut self.file {
            Some(file) if self.lines + changes <= 2 * self.groups.len() + 64 => {
                file.write_all(self.pending.as_bytes())
            }
            _ => self.compact(),
        };
        match result {
            Ok(()) => {
                self.lines += changes;
                self.pending.clear();
                Ok(())
            }
            Err(e) => {
                // Whatever part of it reached the file, the next save starts afresh.
                self.file = None;
                Err(e)
            }
        }
    }

    /// Writes a snapshot of the live groups beside the journal and renames it over it.
    /// Counts its lines in `lines` less what `save` adds back for the pending changes.
    fn compact(&mut self) -> io::Result<()> {
        let mut text = format!("{HEADER} pid={}\n", std::process::id());
        for record in self.groups.values() {
            push_record(&mut text, record);
        }
        let file = write_atomically(&self.path, text.as_bytes())?;
        self.file = Some(file);
        // `save` adds the pending changes' count; the snapshot has the live groups instead.
        self.lines = self
            .groups
            .len()
            .saturating_sub(self.pending.lines().count());
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

/// Appends the journal line that records `g`.
fn push_record(text: &mut String, g: &GroupRecord) {
    let _ = writeln!(
        text,
        "+ {} {} {} {} {} {}",
        g.pgid,
        g.start_ticks,
        g.sid,
        g.stop_signal.name(),
        g.stop_timeout.as_millis(),
        g.instance
    );
}

/// Writes `data` to a temporary file beside `path`, then renames it over `path`; returns the
/// file, open for appending. Neither path is followed if it is a symlink.
fn write_atomically(path: &Path, data: &[u8]) -> io::Result<File> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    file.write_all(data)?;
    fs::rename(&tmp, path)?;
    Ok(file)
}

/// The pid of the tend that wrote a state file, and the groups it left: the journal replayed.
/// Lines that do not parse are skipped (a torn last line, after a power loss).
pub fn parse(text: &str) -> (Option<u32>, Vec<GroupRecord>) {
    // A last line without its newline was torn: not a record.
    let whole = text.rfind('\n').map_or("", |end| &text[..end]);
    let mut lines = whole.lines();
    let writer = lines
        .next()
        .and_then(|header| header.strip_prefix(HEADER))
        .and_then(|rest| rest.trim().strip_prefix("pid="))
        .and_then(|pid| pid.parse().ok());
    let mut groups = BTreeMap::new();
    for line in lines {
        if let Some(pgid) = line.strip_prefix("- ") {
            if let Ok(pgid) = pgid.parse::<i32>() {
                groups.remove(&pgid);
            }
        } else if let Some(record) = line.strip_prefix("+ ").and_then(parse_record) {
            groups.insert(record.pgid, record);
        }
    }
    (writer, groups.into_values().collect())
}

/// One `+` line's record.
fn parse_record(line: &str) -> Option<GroupRecord> {
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

/// The living members of the recorded group, or none when the group is not provably the
/// recorded one. `written` is when the state file was last written, in ticks since boot.
///
/// With the leader alive, its start time decides. Without it, the group id may have been
/// reused since: the original group emptied and an unrelated process made a group of the same
/// id in the same session. So a leaderless group counts only if one of its members started
/// at least a second before the file's last write (the boot time is known to a second):
/// such a member lived while the dead tend still recorded the group.
fn members(record: &GroupRecord, all: &[ProcStat], written: Option<u64>) -> Vec<ProcStat> {
    if record.start_ticks == 0 {
        return Vec::new(); // not verifiable
    }
    let leader = all.iter().find(|p| p.pid == record.pgid);
    if leader.is_some_and(|l| l.start_ticks != record.start_ticks) {
        // The leader's pid holds another process: the group (if any) is not ours. (While a
        // group has members, no new process can get its id as a pid.)
        return Vec::new();
    }
    let found = candidates(record, all);
    let leader_alive = leader.is_some_and(|l| !l.exited());
    let old_enough =
        |p: &ProcStat| written.is_some_and(|w| p.start_ticks.saturating_add(TICKS_MARGIN) <= w);
    if leader_alive || found.iter().any(old_enough) {
        found
    } else {
        Vec::new()
    }
}

/// The living processes of the recorded group id and session that started no earlier than
/// its leader: once [`members`] has verified the group, these are its members (a group id is
/// not reused while the group has one).
fn candidates(record: &GroupRecord, all: &[ProcStat]) -> Vec<ProcStat> {
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

/// A second in clock ticks, as Linux counts them for `/proc` (`USER_HZ`, 100 everywhere).
const TICKS_MARGIN: u64 = 100;

/// Stops the survivors recorded in the state file at `path`, if there is one, and removes the
/// file. `say` gets a line for the user before the stop and after it.
pub fn sweep(path: &Path, mut say: impl FnMut(String)) -> io::Result<Swept> {
    let Some(text) = read(path)? else {
        return Ok(Swept::default());
    };
    let (writer, records) = parse(&text);
    let written = fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(procfs::ticks_since_boot);
    let mut swept = Swept::default();
    let all = procfs::all_processes().map_err(|e| e.source)?;
    let me = std::process::id() as i32;
    // Each surviving group, its members, its kill deadline, and whether it was killed.
    let mut pending: Vec<(GroupRecord, Vec<ProcStat>, Instant, bool)> = Vec::new();
    for record in records {
        let found = members(&record, &all, written);
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
    let longest = pending
        .iter()
        .map(|(record, ..)| record.stop_timeout)
        .max()
        .unwrap_or_default();
    say(format!(
        "a tend that did not stop them{} left {} processes running in {} process groups ({}): \
         stopping them by their stop signal before anything starts (SIGKILL after at most {})",
        writer.map(|p| format!(" (pid {p})")).unwrap_or_default(),
        swept.processes,
        swept.groups,
        shorten(&names),
        tend_core::time::format_duration_rounded(longest),
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
            *found = candidates(record, &all);
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
    fn the_journal_replays_to_the_live_groups_and_stays_compact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.state");
        let mut state = StateFile::new(path.clone());
        // A thousand restarts of one instance among ten live ones, saved turn by turn.
        for pgid in 100..110 {
            state.add(record(pgid, "stable.0"));
        }
        state.save().unwrap();
        for turn in 0..1000 {
            state.remove(if turn == 0 { 109 } else { 1000 + turn - 1 });
            state.add(record(1000 + turn, "flapping.0"));
            state.save().unwrap();
            let text = fs::read_to_string(&path).unwrap();
            assert!(
                text.lines().count() <= 2 * 10 + 64 + 2,
                "{turn}: not compacted"
            );
        }
        let (_, records) = parse(&fs::read_to_string(&path).unwrap());
        let live: Vec<i32> = records.iter().map(|r| r.pgid).collect();
        let mut expected: Vec<i32> = (100..109).collect();
        expected.push(1999);
        assert_eq!(live, expected);
    }

    #[test]
    fn a_failed_write_is_followed_by_a_fresh_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.state");
        let mut state = StateFile::new(path.clone());
        state.add(record(100, "a.0"));
        state.save().unwrap();
        // The journal's fd now points at a full disk; the next save fails, the one after that
        // writes everything afresh.
        state.file = Some(OpenOptions::new().append(true).open("/dev/full").unwrap());
        state.add(record(200, "b.0"));
        assert!(state.save().is_err());
        state.add(record(300, "c.0"));
        state.save().unwrap();
        let (_, records) = parse(&fs::read_to_string(&path).unwrap());
        assert_eq!(
            records.iter().map(|r| r.pgid).collect::<Vec<_>>(),
            [100, 200, 300]
        );
    }

    #[test]
    fn bad_lines_are_skipped() {
        let text = "tend-state 1 pid=9\n+ 1 2 3 SIGTERM 10 init-is-never-a-group\n\
                    + 12 x 3 SIGTERM 10 a.0\n+ 13 2 3 SIGFOO 10 a.0\n+ 14 2 3 SIGTERM 10 a.0 extra\n\
                    15 2 3 SIGTERM 10 no-sign.0\n+ 15 2 3 SIGTERM 10 ok.0\n+ 16 2 3 SIGTERM 10 gone.0\n\
                    - 16\n- x\n+ 17 2 3 SIGTERM 10 torn";
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
            cpu_ticks: 0,
            rss_pages: 0,
            nice: 0,
        };
        let rec = record(100, "web.0");
        // The leader lives, with its start time: the group and its younger members count.
        let all = [
            stat(100, 100, 5, 77),
            stat(101, 100, 5, 90),
            stat(102, 7, 5, 90),
        ];
        let written = Some(1000);
        assert_eq!(members(&rec, &all, written).len(), 2);
        // Pid 100 is another process now: nothing is ours.
        let all = [stat(100, 100, 5, 500), stat(101, 100, 5, 600)];
        assert!(members(&rec, &all, written).is_empty());
        // The leader is gone; a member of the same group and session that lived while the
        // file was written outlived it.
        let all = [stat(101, 100, 5, 90), stat(104, 100, 5, 2000)];
        assert_eq!(members(&rec, &all, written).len(), 2);
        // The leader is gone and every member is younger than the last write: the id may
        // have been reused by another group of the session; not ours.
        let all = [stat(104, 100, 5, 950), stat(105, 100, 5, 2000)];
        assert!(members(&rec, &all, written).is_empty());
        assert!(members(&rec, &[stat(101, 100, 5, 90)], None).is_empty());
        // Same group id in another session, or older than the leader: not ours.
        let all = [stat(101, 100, 6, 90), stat(103, 100, 5, 10)];
        assert!(members(&rec, &all, written).is_empty());
        // A record without a start time cannot be verified.
        let unknown = GroupRecord {
            start_ticks: 0,
            ..record(100, "web.0")
        };
        assert!(members(&unknown, &[stat(100, 100, 5, 77)], written).is_empty());
    }
}
