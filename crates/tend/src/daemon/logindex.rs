//! The sidecar index of a child's log file: when tend read each chunk it wrote there, so that
//! `tend logs` can give each line its time and merge the lines of several files in the order
//! the children printed them.
//!
//! Beside each log file `F` (`web.0.log`, `web.0.err.log.3`, …) is `F.idx`: an array of
//! 16-byte records, each two little-endian `u64`s, `(offset, time)`: the bytes of `F` from
//! `offset` on were read from the child's pipe at `time`, in nanoseconds since the Unix epoch.
//! Nanoseconds, not milliseconds, because the order is what matters most: two processes that
//! answer each other within a millisecond must still come out in order, and every drainer runs
//! on the driver's one thread, so two reads never get the same clock reading. Times are shown
//! and sent in milliseconds.
//!
//! A line's time is that of the last record at or before its last byte (its newline): when the
//! drainer read the chunk that completed it, the time `logs -f` gives it too. A line with no
//! record at or before it has no known time.
//!
//! Writing costs no system call per chunk. A record is noted for each write of a chunk, but
//! only when it tells something: a write to the same file as the previous write of any log
//! file, in the same millisecond as this file's last record, adds nothing to the order nor to
//! the time shown, so it is skipped (one writer at full speed notes at most a record per
//! millisecond). Records wait in memory and are written with one `write` when 64 have
//! accumulated, when a write comes a second or more after the index was last written (there
//! is no timer: an idle child costs no wakeup), before the log rotates, when a `logs` request
//! reads the file, and when the log file is closed. A crash loses at most the last second
//! (or 64 records) of the index: those lines get the time of the record before them.
//!
//! The index file is created by its first write, so a child that prints nothing costs no file
//! and no descriptor (creating files is most of what an index costs a spawn). When the log
//! already holds bytes as it is opened (tend restarted), the first write is written at once,
//! so that the first lines of a run never borrow the time of an earlier run's last record
//! after a crash; a fresh file (a new log, or after a rotation) has no earlier record to
//! borrow, so its first records wait like any others (a crash then leaves their lines with no
//! time, not a wrong one), and a burst of new children creates no index files meanwhile.
//!
//! The index is best effort: a write that fails drops the records in hand (a line then gets
//! the time of an earlier record), and a missing, truncated or garbled index gives lines an
//! unknown or wrong time, never an error. Only the check when the log file is opened counts:
//! a symlink planted at the index's path is refused as one at the log's path is.

use std::cell::Cell;
use std::fs::File;
use std::io;
use std::num::NonZeroU64;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// The size of a record: offset and time, 8 bytes each.
pub const RECORD: u64 = 16;
/// Records written at once, at most.
const FLUSH_RECORDS: usize = 64;
/// A write at least this long after the index was last written writes it.
const FLUSH_AFTER: Duration = Duration::from_secs(1);
/// Records read at once when walking the index forward.
const READ_RECORDS: usize = 1024;

/// Ids for [`IndexWriter`]s, to tell whether another log file was written in between.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The id of the index whose log file this thread wrote last. Per thread, because every
    /// drainer runs on the driver's one thread: that is where the order of reads is decided.
    static LAST_WRITER: Cell<u64> = const { Cell::new(0) };
}

/// The index of the log file at `log`: `log` with `.idx` appended.
pub fn index_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".idx");
    PathBuf::from(name)
}

/// Nanoseconds since the Unix epoch (0 before it, the largest `u64` after 2554).
pub fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// One record: bytes from `offset` on were read at `time` (ns since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Where the bytes begin in the log file.
    pub offset: u64,
    /// When they were read, in nanoseconds since the Unix epoch.
    pub time: u64,
}

impl Record {
    fn encode(self) -> [u8; RECORD as usize] {
        let mut out = [0; RECORD as usize];
        out[..8].copy_from_slice(&self.offset.to_le_bytes());
        out[8..].copy_from_slice(&self.time.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Record {
        let word = |at: usize| {
            u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes of a record"))
        };
        Record {
            offset: word(0),
            time: word(8),
        }
    }
}

/// The writing side of a log file's index, owned by its [`LogFile`](super::logfile::LogFile).
#[derive(Debug)]
pub struct IndexWriter {
    path: PathBuf,
    mode: u32,
    /// `None` until the first flush creates it (when there was none at open, or after a
    /// rotation), or when creating it failed: tried again at the next flush.
    file: Option<File>,
    /// Encoded records not written yet.
    pending: Vec<u8>,
    /// Bytes of the index file written (whole records).
    len: u64,
    /// The millisecond of the last record noted for the current log file; `None` for a file
    /// that has none yet.
    last_ms: Option<u64>,
    /// When the index was last written, or its file opened fresh; `None`: write at the next
    /// write.
    flushed_at: Option<SystemTime>,
    id: u64,
}

impl IndexWriter {
    /// Opens the index of the log file at `log`, which holds `log_size` bytes, if it exists
    /// (it is created, with `mode`, by its first write). A symlink is refused, never followed.
    /// An index that does not fit its log is cut back: a torn last record is dropped, and an
    /// index whose last record points past the end of the log (the log was replaced) is
    /// emptied.
    pub fn open(log: &Path, mode: u32, log_size: u64) -> io::Result<Self> {
        let path = index_path(log);
        let (file, len) = match open_index(&path, mode, false) {
            Ok((file, len)) => {
                let len = fit(&file, len, log_size)?;
                (Some(file), len)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (None, 0),
            Err(e) => return Err(e),
        };
        Ok(IndexWriter {
            path,
            mode,
            file,
            pending: Vec::new(),
            len,
            last_ms: None,
            // A log with bytes in it may have records its first lines must not borrow.
            flushed_at: (log_size == 0).then(SystemTime::now),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The path of the index of the current log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Called once for each write to the log file: whether another log file was written since
    /// this one was last (on this thread, the drainers' one).
    pub fn begin_write(&self) -> bool {
        LAST_WRITER.replace(self.id) != self.id
    }

    /// Notes that the bytes from `offset` on, about to be written, were read at `now` (ns).
    /// With `interleaved` false and a record of the same millisecond already noted for this
    /// file, nothing is noted: the record would change neither order nor time shown.
    pub fn note(&mut self, offset: u64, now: u64, interleaved: bool) {
        let ms = now / 1_000_000;
        if !interleaved && self.last_ms == Some(ms) {
            return;
        }
        self.last_ms = Some(ms);
        self.pending
            .extend_from_slice(&Record { offset, time: now }.encode());
    }

    /// After a write to the log at `now`: writes the records in hand if 64 have accumulated or
    /// the index was last written a second or more ago (or never).
    pub fn after_write(&mut self, now: SystemTime) {
        if self.pending.is_empty() {
            return;
        }
        let due = self.pending.len() >= FLUSH_RECORDS * RECORD as usize
            || self.flushed_at.is_none_or(|at| {
                now.duration_since(at)
                    .map_or(true, |since| since >= FLUSH_AFTER)
            });
        if due {
            self.flush(now);
        }
    }

    /// Writes the records in hand, with one `write`. A failure drops them (the index is best
    /// effort) and cuts a torn record off, so that later records stay aligned.
    pub fn flush(&mut self, now: SystemTime) {
        if self.pending.is_empty() {
            return;
        }
        self.flushed_at = Some(now);
        if self.file.is_none() {
            // A fresh index: whatever is at its path now is not about this file's bytes.
            self.file = open_index(&self.path, self.mode, true)
                .and_then(|(file, len)| {
                    if len > 0 {
                        file.set_len(0)?;
                    }
                    Ok(file)
                })
                .ok();
            self.len = 0;
        }
        if let Some(file) = &mut self.file {
            let mut written = 0;
            let result = super::logfile::write_counting(file, &self.pending, &mut written);
            let whole = written as u64 / RECORD * RECORD;
            if result.is_err() && whole != written as u64 {
                let _ = file.set_len(self.len + whole);
            }
            self.len += whole;
        }
        self.pending.clear();
    }

    /// The log file was renamed away (with this index, already flushed) at `now` and a fresh
    /// one opened: a fresh index begins, created by its first flush.
    pub fn restart(&mut self, now: SystemTime) {
        self.file = None;
        self.len = 0;
        self.last_ms = None;
        self.flushed_at = Some(now);
    }
}

impl Drop for IndexWriter {
    /// The log file is closed (its instance removed, or tend exits): what is in hand is
    /// written.
    fn drop(&mut self) {
        self.flush(SystemTime::now());
    }
}

/// Opens the index at `path` for reading and appending, with exactly `mode`; with `create`,
/// creating it if it is missing. Returns it and its length.
fn open_index(path: &Path, mode: u32, create: bool) -> io::Result<(File, u64)> {
    let file = tend_os::open_read_append_nofollow(path, create.then_some(mode))?;
    let meta = file.metadata()?;
    if meta.permissions().mode() & 0o7777 != mode {
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    Ok((file, meta.len()))
}

/// Cuts the index `file` (of `len` bytes) back to what fits a log of `log_size` bytes;
/// returns its new length.
fn fit(file: &File, len: u64, log_size: u64) -> io::Result<u64> {
    let mut keep = len / RECORD * RECORD;
    if keep >= RECORD {
        let mut last = [0; RECORD as usize];
        file.read_exact_at(&mut last, keep - RECORD)?;
        if Record::decode(&last).offset > log_size {
            keep = 0;
        }
    }
    if keep != len {
        file.set_len(keep)?;
    }
    Ok(keep)
}

/// A log file's index, read back for `tend logs`. Lookups are binary searches of a few
/// 16-byte reads, and walking forward reads blocks: the cost follows the part of the log that
/// is read, not the size of the index.
#[derive(Debug)]
pub struct IndexReader {
    file: File,
    count: u64,
}

impl IndexReader {
    /// The index of the log file at `log`, if it has any whole record. A symlink is not
    /// followed.
    pub fn open(log: &Path) -> Option<IndexReader> {
        let file = tend_os::open_read_nofollow(&index_path(log)).ok()?;
        let count = file.metadata().ok()?.len() / RECORD;
        (count > 0).then_some(IndexReader { file, count })
    }

    /// Counts the records written since it was opened (a follower reads an index that grows).
    pub fn refresh(&mut self) {
        if let Ok(meta) = self.file.metadata() {
            self.count = meta.len() / RECORD;
        }
    }

    fn record(&self, i: u64) -> Option<Record> {
        let mut bytes = [0; RECORD as usize];
        self.file.read_exact_at(&mut bytes, i * RECORD).ok()?;
        Some(Record::decode(&bytes))
    }

    /// The number of leading records for which `before` holds (records are in file order, so
    /// offsets and, unless the clock stepped back, times ascend). A record that cannot be read
    /// counts as not before.
    fn partition_point(&self, before: impl Fn(Record) -> bool) -> u64 {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.record(mid) {
                Some(r) if before(r) => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo
    }

    /// The offset from which the log's bytes were read at or after `since` (ns): lines whose
    /// last byte lies before it are older. `None` when no record is that recent.
    pub fn offset_since(&self, since: u64) -> Option<u64> {
        let first = self.partition_point(|r| r.time < since);
        self.record(first).map(|r| r.offset)
    }

    /// A cursor that gives the time of offsets from `from` on.
    pub fn cursor(&self, from: u64) -> Cursor<'_> {
        let next = self.partition_point(|r| r.offset <= from);
        Cursor {
            index: self,
            current: next.checked_sub(1).and_then(|i| self.record(i)),
            next,
            block: Vec::new(),
            block_start: next,
        }
    }
}

/// Walks an index forward: the time of each offset asked for, in ascending order.
#[derive(Debug)]
pub struct Cursor<'a> {
    index: &'a IndexReader,
    /// The last record at or before the last offset asked for.
    current: Option<Record>,
    /// The record after it.
    next: u64,
    /// Records read ahead, from record `block_start` on.
    block: Vec<u8>,
    block_start: u64,
}

impl Cursor<'_> {
    /// The time (ns since the epoch) the byte at `offset` was read, if known: that of the
    /// last record at or before it. Offsets asked for must not decrease.
    pub fn time_at(&mut self, offset: u64) -> Option<NonZeroU64> {
        while let Some(record) = self.peek() {
            if record.offset > offset {
                break;
            }
            self.current = Some(record);
            self.next += 1;
        }
        self.current.and_then(|r| NonZeroU64::new(r.time))
    }

    /// The record at `next`, reading a block ahead when needed.
    fn peek(&mut self) -> Option<Record> {
        if self.next >= self.index.count {
            return None;
        }
        let end = self.block_start + self.block.len() as u64 / RECORD;
        if self.next < self.block_start || self.next >= end {
            let records = (self.index.count - self.next).min(READ_RECORDS as u64);
            self.block.resize((records * RECORD) as usize, 0);
            self.block_start = self.next;
            if self
                .index
                .file
                .read_exact_at(&mut self.block, self.next * RECORD)
                .is_err()
            {
                self.block.clear();
                return None;
            }
        }
        let at = ((self.next - self.block_start) * RECORD) as usize;
        Some(Record::decode(&self.block[at..at + RECORD as usize]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(path: &Path) -> Vec<Record> {
        std::fs::read(index_path(path))
            .unwrap()
            .chunks_exact(RECORD as usize)
            .map(Record::decode)
            .collect()
    }

    fn at_ms(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
    }

    /// An index at `dir/x.log.idx` holding `records`.
    fn planted(dir: &Path, records: &[(u64, u64)]) -> PathBuf {
        let log = dir.join("x.log");
        let bytes: Vec<u8> = records
            .iter()
            .flat_map(|&(offset, time)| Record { offset, time }.encode())
            .collect();
        std::fs::write(index_path(&log), bytes).unwrap();
        log
    }

    #[test]
    fn records_wait_for_64_or_a_second_and_same_millisecond_writes_note_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        std::fs::write(&log, "x").unwrap();
        let mut index = IndexWriter::open(&log, 0o600, 1).unwrap();
        assert!(!index_path(&log).exists(), "created by its first write");
        let ms = |n: u64| n * 1_000_000;
        // A log that holds bytes already: its first write is written at once.
        index.note(1, ms(1_000), false);
        index.after_write(at_ms(1_000));
        assert_eq!(records(&log).len(), 1);
        // Same millisecond, not interleaved: nothing noted. Interleaved: noted.
        index.note(10, ms(1_000) + 5, false);
        index.note(20, ms(1_000) + 7, true);
        index.after_write(at_ms(1_000));
        assert_eq!(index.pending.len(), RECORD as usize, "one record in hand");
        assert_eq!(records(&log).len(), 1, "not yet written");
        // 64 in hand: written.
        for i in 0..63 {
            index.note(30 + i, ms(1_001 + i), false);
        }
        index.after_write(at_ms(1_100));
        assert_eq!(records(&log).len(), 65);
        // One more, then a write a second after the last flush writes it.
        index.note(200, ms(1_200), false);
        index.after_write(at_ms(1_200));
        assert_eq!(
            records(&log).len(),
            65,
            "less than a second after the flush"
        );
        index.note(300, ms(2_100), false);
        index.after_write(at_ms(2_100));
        assert_eq!(records(&log).len(), 67);
        // Closing writes what is in hand.
        index.note(400, ms(2_200), false);
        drop(index);
        let all = records(&log);
        assert_eq!(all.len(), 68);
        assert_eq!(
            all[1],
            Record {
                offset: 20,
                time: ms(1_000) + 7
            }
        );
        assert_eq!(all.last().unwrap().offset, 400);

        // A fresh log: its first records wait for the second to pass (or 64 of them).
        let fresh = dir.path().join("y.log");
        let mut index = IndexWriter::open(&fresh, 0o600, 0).unwrap();
        let opened = SystemTime::now();
        index.note(0, unix_nanos(opened), false);
        index.after_write(opened);
        assert!(!index_path(&fresh).exists(), "nothing written yet");
        index.note(5, unix_nanos(opened) + 1_000_000_000, false);
        index.after_write(opened + FLUSH_AFTER);
        assert_eq!(records(&fresh).len(), 2);
    }

    #[test]
    fn opening_cuts_a_torn_record_and_empties_an_index_past_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = planted(dir.path(), &[(0, 5), (10, 6)]);
        let idx = index_path(&log);
        let mut bytes = std::fs::read(&idx).unwrap();
        bytes.extend([1, 2, 3]);
        std::fs::write(&idx, &bytes).unwrap();
        drop(IndexWriter::open(&log, 0o600, 20).unwrap());
        assert_eq!(std::fs::metadata(&idx).unwrap().len(), 2 * RECORD);
        drop(IndexWriter::open(&log, 0o600, 5).unwrap());
        assert_eq!(
            std::fs::metadata(&idx).unwrap().len(),
            0,
            "the log was replaced"
        );
    }

    #[test]
    fn a_cursor_gives_each_offset_the_last_record_at_or_before_it() {
        let dir = tempfile::tempdir().unwrap();
        // Equal offsets (a write retried): the later record counts.
        let log = planted(dir.path(), &[(5, 100), (20, 200), (20, 250), (40, 300)]);
        let index = IndexReader::open(&log).unwrap();
        let mut cursor = index.cursor(0);
        let times: Vec<Option<u64>> = [0, 4, 5, 19, 20, 39, 40, 1000]
            .into_iter()
            .map(|o| cursor.time_at(o).map(NonZeroU64::get))
            .collect();
        assert_eq!(
            times,
            [
                None,
                None,
                Some(100),
                Some(100),
                Some(250),
                Some(250),
                Some(300),
                Some(300)
            ]
        );
        let mut cursor = index.cursor(25);
        assert_eq!(cursor.time_at(25).map(NonZeroU64::get), Some(250));
        assert_eq!(index.offset_since(0), Some(5));
        assert_eq!(index.offset_since(201), Some(20));
        assert_eq!(index.offset_since(300), Some(40));
        assert_eq!(index.offset_since(301), None);
    }

    #[test]
    fn a_large_index_is_walked_in_blocks_and_searched() {
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<(u64, u64)> = (0..10_000).map(|i| (i * 3, 1_000 + i)).collect();
        let log = planted(dir.path(), &records);
        let index = IndexReader::open(&log).unwrap();
        let mut cursor = index.cursor(2_999);
        for offset in 2_999..30_000 {
            assert_eq!(
                cursor.time_at(offset).map(NonZeroU64::get),
                Some(1_000 + offset / 3)
            );
        }
        assert_eq!(index.offset_since(5_000), Some(12_000));
    }

    #[test]
    fn a_missing_empty_or_garbled_index_gives_no_times_and_no_error() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        assert!(IndexReader::open(&log).is_none(), "missing");
        std::fs::write(index_path(&log), [7; 10]).unwrap();
        assert!(IndexReader::open(&log).is_none(), "no whole record");
        // Offsets that do not ascend, and zero times: answers, whatever they are.
        let log = planted(dir.path(), &[(50, 0), (10, 9), (30, 0), (0, 4)]);
        let index = IndexReader::open(&log).unwrap();
        let mut cursor = index.cursor(0);
        for offset in 0..100 {
            let _ = cursor.time_at(offset);
        }
        let _ = index.offset_since(5);
    }
}
