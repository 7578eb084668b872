//! One rotating log file: appends every byte it is given, optionally stamps each line with
//! the time it was read, and rotates at `max_size`, keeping `keep` old files.
//!
//! Rotation renames `web.0.log` to `web.0.log.1` (and `.1` to `.2`, and so on, dropping the
//! oldest beyond `keep`), so the concatenation `.keep … .1, current` is the output in order.
//! Only the numbered files that exist are renamed: the renames stop at the first missing
//! number, so a large `keep` costs nothing until that many files exist.
//!
//! Rotation happens at a line boundary, as s6-log and multilog do: a line that does not fit
//! in what is left of the file starts a fresh file, and a line begun in a file is finished in
//! it, even when the rest arrives in a later read and takes the file past `max_size` (by less
//! than `max_size`). Only a line longer than `max_size` on its own is cut, where the file is
//! full.
//!
//! Each log file has an index beside it, `F.idx` (see [`super::logindex`]), which says when
//! each chunk was read; it is rotated and removed with its file.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use tend_core::LogSpec;

use super::follow::FollowHub;
use super::logindex::{self, IndexWriter};

/// An append-only log file that rotates itself.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    file: File,
    /// Bytes in the current file.
    size: u64,
    spec: LogSpec,
    /// Whether the next byte starts a line (and so gets a timestamp).
    at_line_start: bool,
    /// Bytes of the unfinished last line in the current file (its stamp included).
    line_len: u64,
    /// Writes are failing: since when, and the last error.
    failing: Option<Failing>,
    /// Bytes drainers hold for this file after a refused write, waiting to retry.
    held: u64,
    /// When each chunk was read: the index beside the current file.
    index: IndexWriter,
    /// Bytes of output written since tend opened this log (timestamps not counted).
    written: u64,
    /// Writes that failed since tend opened this log.
    write_errors: u64,
    /// Where `logs -f` clients learn which file followed which when it rotates.
    follow: Option<Arc<FollowHub>>,
}

/// A run of failed writes to a log file.
#[derive(Debug, Clone)]
pub struct Failing {
    /// When the first write of the run failed.
    pub since: std::time::Instant,
    /// The last error, as the OS said it.
    pub error: String,
}

impl LogFile {
    /// Opens (creating it and its directory if needed) the log at `path` for appending, with
    /// the permission bits of `spec.mode` (set again on a file that has others). A symlink at
    /// `path` is refused, never followed; so is one at the path of its index (`path.idx`),
    /// which is opened (or created) with it.
    pub fn open(path: PathBuf, spec: LogSpec) -> io::Result<Self> {
        let file = open_creating_dir(&path, spec.mode)?;
        let size = file.metadata()?.len();
        let index = IndexWriter::open(&path, spec.mode, size).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{}: {e}", logindex::index_path(&path).display()),
            )
        })?;
        Ok(LogFile {
            path,
            file,
            size,
            spec,
            at_line_start: true,
            line_len: 0,
            failing: None,
            held: 0,
            index,
            written: 0,
            write_errors: 0,
            follow: None,
        })
    }

    /// This log tells `hub` of its rotations, for `logs -f` clients.
    pub fn followed_by(mut self, hub: Arc<FollowHub>) -> Self {
        self.follow = Some(hub);
        self
    }

    /// Bytes of output written, and writes failed, since tend opened this log.
    pub fn counters(&self) -> (u64, u64) {
        (self.written, self.write_errors)
    }

    /// Bytes in the current file.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The identity (device, inode) of the current file, for followers to tell it from
    /// others once it rotated.
    pub fn id(&self) -> io::Result<(u64, u64)> {
        Ok(super::follow::file_id(&self.file.metadata()?))
    }

    /// Where the current file ends, if its last line has no newline yet: a run whose output
    /// ends there ended in the middle of a line.
    pub fn open_line_end(&self) -> Option<((u64, u64), u64)> {
        if self.at_line_start || self.size == 0 {
            return None;
        }
        Some((self.id().ok()?, self.size))
    }

    /// Writes the index records in hand, so that a reader of the index sees every byte of
    /// the file so far with its time (a `logs` request does this before reading).
    pub fn flush_index(&mut self) {
        self.index.flush(SystemTime::now());
    }

    /// Writes are failing (since when, and why), or `None` once a write succeeded again.
    pub fn failing(&self) -> Option<&Failing> {
        self.failing.as_ref()
    }

    /// How many bytes drainers hold for this file, waiting to retry a refused write.
    pub fn held(&self) -> u64 {
        self.held
    }

    /// A drainer holds `now` bytes for this file where it held `before`.
    pub fn set_held(&mut self, before: usize, now: usize) {
        self.held = (self.held + now as u64).saturating_sub(before as u64);
    }

    /// The path of the current file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `data`, read at `now`, advancing `data` past what was written. On error the
    /// caller may retry with what is left: no byte of `data` is written twice (with
    /// timestamps, a line whose stamp was cut by the error gets a whole stamp again).
    ///
    /// A failure is remembered (see [`Self::failing`]) until a write succeeds.
    pub fn write(&mut self, data: &mut &[u8], now: SystemTime) -> io::Result<()> {
        let interleaved = self.index.begin_write();
        let before = data.len();
        let result = self.write_all(data, now, interleaved);
        self.index.after_write(now);
        self.written += (before - data.len()) as u64;
        match &result {
            Ok(()) => self.failing = None,
            Err(e) => {
                self.write_errors += 1;
                let since = self
                    .failing
                    .as_ref()
                    .map_or_else(std::time::Instant::now, |f| f.since);
                self.failing = Some(Failing {
                    since,
                    error: e.to_string(),
                });
            }
        }
        result
    }

    fn write_all(
        &mut self,
        data: &mut &[u8],
        now: SystemTime,
        interleaved: bool,
    ) -> io::Result<()> {
        let stamp = self
            .spec
            .timestamps
            .then(|| format!("{} ", rfc3339_millis(now)));
        let nanos = logindex::unix_nanos(now);
        let mut interleaved = interleaved;
        while !data.is_empty() {
            let room = usize::try_from(self.max().saturating_sub(self.size)).unwrap_or(usize::MAX);
            let take = match &stamp {
                None => self.fit_plain(data, room),
                Some(stamp) => self.fit_stamped(data, room, stamp.len()),
            };
            if take > 0 {
                self.index
                    .note(self.size, nanos, std::mem::take(&mut interleaved));
            }
            match (take, &stamp) {
                // Nothing fits after what the file holds: start the line in a fresh file.
                (0, _) => self.rotate(now)?,
                (take, None) => self.append_plain(data, take)?,
                (take, Some(stamp)) => self.append_stamped(data, take, stamp)?,
            }
        }
        Ok(())
    }

    /// The rotation size, at least 1.
    fn max(&self) -> u64 {
        self.spec.max_size.max(1)
    }

    /// How many bytes of a line that continues one begun in this file (`segment`, up to and
    /// including its newline if it has one) to write now: all of it, even past `room`, while
    /// the whole line stays within `max_size`; otherwise (a line longer than a file) what
    /// fits in `room`, and 0 (rotate first) when nothing does.
    fn fit_continued(&self, segment: usize, room: usize) -> usize {
        let limit = usize::try_from(self.max().saturating_sub(self.line_len)).unwrap_or(usize::MAX);
        if segment <= limit {
            segment
        } else {
            room.min(segment)
        }
    }

    /// How many bytes of `data` go into the `room` left in this file: all, or up to the last
    /// newline that fits, or the rest of a line begun in this file (see
    /// [`Self::fit_continued`]), or (a line longer than a file) as many as fit. 0 means
    /// rotate first.
    fn fit_plain(&self, data: &[u8], room: usize) -> usize {
        if data.len() <= room {
            return data.len();
        }
        if let Some(newline) = memchr::memrchr(b'\n', &data[..room]) {
            return newline + 1;
        }
        if !self.at_line_start {
            let segment = memchr::memchr(b'\n', data).map_or(data.len(), |newline| newline + 1);
            return self.fit_continued(segment, room);
        }
        if self.size == 0 {
            room
        } else {
            0
        }
    }

    /// Like [`Self::fit_plain`], counting a stamp of `stamp_len` bytes before each line.
    fn fit_stamped(&self, data: &[u8], room: usize, stamp_len: usize) -> usize {
        let mut used = 0;
        let mut taken = 0;
        let mut at_line_start = self.at_line_start;
        for segment in data.split_inclusive(|&b| b == b'\n') {
            let stamp = if at_line_start { stamp_len } else { 0 };
            if used + stamp + segment.len() <= room {
                used += stamp + segment.len();
                taken += segment.len();
                at_line_start = segment.last() == Some(&b'\n');
                continue;
            }
            if taken == 0 && !at_line_start {
                return self.fit_continued(segment.len(), room);
            }
            if taken == 0 && self.size == 0 {
                // A line longer than a file: cut it where the file is full.
                return room.saturating_sub(stamp).clamp(1, segment.len());
            }
            break;
        }
        taken
    }

    /// Writes the first `take` bytes of `data` as they are and advances `data` past them.
    fn append_plain(&mut self, data: &mut &[u8], take: usize) -> io::Result<()> {
        let piece = &data[..take];
        let mut written = 0;
        let result = write_counting(&mut self.file, piece, &mut written);
        self.wrote(&piece[..written]);
        if written > 0 {
            self.at_line_start = piece[written - 1] == b'\n';
        }
        *data = &data[written..];
        result
    }

    /// Counts `bytes`, just written to the file, in its size and its last line's length.
    fn wrote(&mut self, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        match memchr::memrchr(b'\n', bytes) {
            Some(newline) => self.line_len = (bytes.len() - newline - 1) as u64,
            None => self.line_len += bytes.len() as u64,
        }
    }

    /// Writes the first `take` bytes of `data` with `stamp` before each line, and advances
    /// `data` past the bytes that reached the file, even when the write fails part way.
    fn append_stamped(&mut self, data: &mut &[u8], take: usize, stamp: &str) -> io::Result<()> {
        let piece = &data[..take];
        let mut out = Vec::with_capacity(piece.len() + 64);
        // For each segment: where its stamp starts in `out`, the stamp's length, where the
        // segment starts in `piece`.
        let mut segments = Vec::new();
        let mut at_line_start = self.at_line_start;
        let mut offset = 0;
        for segment in piece.split_inclusive(|&b| b == b'\n') {
            let stamp_len = if at_line_start { stamp.len() } else { 0 };
            segments.push((out.len(), stamp_len, offset));
            out.extend_from_slice(&stamp.as_bytes()[..stamp_len]);
            out.extend_from_slice(segment);
            offset += segment.len();
            at_line_start = segment.last() == Some(&b'\n');
        }
        let mut written = 0;
        let result = write_counting(&mut self.file, &out, &mut written);
        self.wrote(&out[..written]);
        if result.is_ok() {
            self.at_line_start = at_line_start;
            *data = &data[take..];
            return result;
        }
        // Map the bytes written back to input bytes: whole segments, then the part of the last
        // one after its stamp. A stamp cut short is stamped again on retry.
        let &(out_start, stamp_len, in_start) = segments
            .iter()
            .rev()
            .find(|&&(out_start, _, _)| out_start <= written)
            .expect("the first segment starts at 0");
        let into_segment = written - out_start;
        let consumed = if into_segment > stamp_len {
            in_start + (into_segment - stamp_len)
        } else {
            in_start
        };
        if consumed > 0 {
            self.at_line_start = piece[consumed - 1] == b'\n';
        }
        if into_segment > 0 && into_segment <= stamp_len {
            self.at_line_start = true;
        }
        *data = &data[consumed..];
        result
    }

    /// Starts a fresh file: the current one becomes `.1`, and each existing `.N` up to the
    /// first missing number moves to `.N+1` (the one at `.keep` is replaced, so dropped).
    /// A log directory someone removed is created again. The index goes with its file: its
    /// records in hand are written, it is renamed with it, and a fresh one is begun.
    fn rotate(&mut self, now: SystemTime) -> io::Result<()> {
        self.index.flush(now);
        let old = self.id();
        shift_numbered_with_index(&self.path, self.spec.keep)?;
        self.file = open_creating_dir(&self.path, self.spec.mode)?;
        self.size = 0;
        self.line_len = 0;
        self.index.restart(now);
        if let (Some(hub), Ok(old), Ok(new)) = (&self.follow, old, self.id()) {
            hub.rotated(old, new);
        }
        Ok(())
    }
}

/// `path` with `.n` appended.
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Renames `path` to `path.1` and the existing `path.N` (1 ≤ N < `keep`, up to the first
/// missing N) to `path.N+1`; with `keep` 0, removes `path`. Touches only files that exist:
/// one `lstat` and one rename per existing file.
pub(crate) fn shift_numbered(path: &Path, keep: u32) -> io::Result<()> {
    shift(path, keep, false)
}

/// [`shift_numbered`] for a child's log, whose files each have an index (`F.idx`): each index
/// moves (or goes) with its file. An index missing where its file moves leaves none at the
/// new number either, so that no file is ever paired with another's index.
fn shift_numbered_with_index(path: &Path, keep: u32) -> io::Result<()> {
    shift(path, keep, true)
}

fn shift(path: &Path, keep: u32, with_index: bool) -> io::Result<()> {
    let move_index = |from: &Path, to: &Path| {
        if !with_index {
            return Ok(());
        }
        let (from, to) = (logindex::index_path(from), logindex::index_path(to));
        match fs::rename(&from, &to) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::remove_file(&to).or_else(ignore_not_found)
            }
            done => done,
        }
    };
    if keep == 0 {
        fs::remove_file(path).or_else(ignore_not_found)?;
        if with_index {
            fs::remove_file(logindex::index_path(path)).or_else(ignore_not_found)?;
        }
        return Ok(());
    }
    // The first free number: the files below it move up by one; `.keep` may be replaced.
    let mut free = 1;
    while free < keep && fs::symlink_metadata(numbered(path, free)).is_ok() {
        free += 1;
    }
    for n in (1..free).rev() {
        let (from, to) = (numbered(path, n), numbered(path, n + 1));
        fs::rename(&from, &to).or_else(ignore_not_found)?;
        move_index(&from, &to)?;
    }
    let first = numbered(path, 1);
    fs::rename(path, &first).or_else(ignore_not_found)?;
    move_index(path, &first)
}

/// `write_all` that tells how much was written before an error.
pub(super) fn write_counting(
    file: &mut File,
    mut buf: &[u8],
    written: &mut usize,
) -> io::Result<()> {
    while !buf.is_empty() {
        match file.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                *written += n;
                buf = &buf[n..];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Opens `path` for appending (`O_NOFOLLOW`, `O_CLOEXEC`), creating it with `mode`, and its
/// directory when that is missing (the first open of a run, or someone removed it): the
/// directory is there but then, so it is tried first and created only when missing.
/// The file gets exactly `mode`, whatever the umask took away or an older file had.
fn open_creating_dir(path: &Path, mode: u32) -> io::Result<File> {
    let file = match tend_os::open_append_nofollow(path, mode) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                create_log_dir(dir)?;
            }
            tend_os::open_append_nofollow(path, mode)?
        }
        opened => opened?,
    };
    if file.metadata()?.permissions().mode() & 0o7777 != mode {
        file.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    Ok(file)
}

/// Creates the log directory `dir` if it is missing, then refuses it (op `"log dir"`, with
/// what is wrong and what to do) when it is not a directory of tend's user, or when group or
/// others may write in it: they could plant a symlink where a log goes, or swap the logs.
/// Others may read it: the files themselves are 0600 or 0640.
pub fn prepare_log_dir(dir: &Path) -> Result<(), tend_os::OsError> {
    create_log_dir(dir).map_err(|e| tend_os::OsError::with_path("mkdir", dir, e))?;
    let meta = fs::metadata(dir).map_err(|e| tend_os::OsError::with_path("stat", dir, e))?;
    refuse_unless_ours(dir, &meta)
}

/// What [`prepare_log_dir`] would refuse of `dir`, without creating anything: a missing
/// directory passes (it would be created, with a safe mode).
pub fn check_log_dir(dir: &Path) -> Result<(), tend_os::OsError> {
    match fs::metadata(dir) {
        Ok(meta) => refuse_unless_ours(dir, &meta),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(tend_os::OsError::with_path("stat", dir, e)),
    }
}

/// The check of [`prepare_log_dir`] on the directory `dir` whose metadata is `meta`.
fn refuse_unless_ours(dir: &Path, meta: &fs::Metadata) -> Result<(), tend_os::OsError> {
    tend_os::check_dir_is_ours(
        "log dir",
        dir,
        meta,
        tend_os::current_uid(),
        0o022,
        "whoever may write there could plant a symlink where a log goes, or swap the logs \
         (or set another log_dir)",
    )
}

/// Creates `dir` and its missing parents with mode 0755: a umask of 002 (usual where each user
/// has a group of their own) would otherwise make a directory tend then refuses as writable by
/// its group.
fn create_log_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
}

fn ignore_not_found(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

/// `2026-11-24T06:49:41.123Z` for `t` (UTC; times before 1970 print as 1970).
pub fn rfc3339_millis(t: SystemTime) -> String {
    tend_core::time::rfc3339_millis(t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn spec(max_size: u64, keep: u32, timestamps: bool) -> LogSpec {
        LogSpec {
            max_size,
            keep,
            timestamps,
            mode: 0o600,
        }
    }

    /// The rotated files oldest first, then the current one, concatenated.
    fn all_bytes(path: &Path, keep: u32) -> Vec<u8> {
        let mut out = Vec::new();
        for n in (1..=keep).rev() {
            if let Ok(b) = fs::read(format!("{}.{n}", path.display())) {
                out.extend(b);
            }
        }
        out.extend(fs::read(path).unwrap());
        out
    }

    #[test]
    fn checking_a_log_dir_creates_nothing_and_refuses_what_prepare_refuses() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("a/b");
        assert!(check_log_dir(&missing).is_ok());
        assert!(!tmp.path().join("a").exists(), "nothing is created");
        let open = tmp.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let checked = check_log_dir(&open).unwrap_err().to_string();
        let prepared = prepare_log_dir(&open).unwrap_err().to_string();
        assert_eq!(checked, prepared);
        assert!(checked.contains("chmod go-w"), "{checked}");
        fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(check_log_dir(&open).is_ok());
        let file = tmp.path().join("file");
        fs::write(&file, "").unwrap();
        assert!(check_log_dir(&file)
            .unwrap_err()
            .to_string()
            .contains("is not a directory"));
    }

    #[test]
    fn timestamps_format_as_rfc3339_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_506_581_123);
        assert_eq!(rfc3339_millis(t), "2026-11-24T07:49:41.123Z");
        assert_eq!(
            rfc3339_millis(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339_millis(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn open_creates_a_missing_directory_and_appends_to_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone/deeper/w.0.log");
        let mut log = LogFile::open(path.clone(), spec(100, 1, false)).unwrap();
        log.write(&mut &b"one\n"[..], SystemTime::now()).unwrap();
        drop(log);
        let mut log = LogFile::open(path.clone(), spec(100, 1, false)).unwrap();
        assert_eq!(
            log.size, 4,
            "the size of what is there counts toward max_size"
        );
        log.write(&mut &b"two\n"[..], SystemTime::now()).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one\ntwo\n");
    }

    #[test]
    fn rotation_keeps_every_byte_in_order_and_prefers_line_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.0.log");
        let mut log = LogFile::open(path.clone(), spec(100, 50, false)).unwrap();
        let mut expected: Vec<u8> = Vec::new();
        for i in 0..200 {
            let line = format!("line {i} {}\n", "x".repeat(i % 17));
            expected.extend(line.as_bytes());
            log.write(&mut &line.as_bytes()[..], SystemTime::now())
                .unwrap();
        }
        assert_eq!(all_bytes(&path, 50), expected);
        for n in 1..=10 {
            let old = fs::read(format!("{}.{n}", path.display())).unwrap();
            assert!(old.len() <= 100, "rotated at max_size");
            assert_eq!(old.last(), Some(&b'\n'), "cut after a newline");
        }
    }

    #[test]
    fn keep_bounds_the_number_of_old_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.0.log");
        let mut log = LogFile::open(path.clone(), spec(10, 2, false)).unwrap();
        for _ in 0..20 {
            log.write(&mut &b"0123456789\n"[..], SystemTime::now())
                .unwrap();
        }
        drop(log); // writes the current file's index
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "w.0.log",
                "w.0.log.1",
                "w.0.log.1.idx",
                "w.0.log.2",
                "w.0.log.2.idx",
                "w.0.log.idx"
            ],
            "each file with its index"
        );
    }

    #[test]
    fn a_line_longer_than_the_file_is_split_and_kept_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.0.log");
        let mut log = LogFile::open(path.clone(), spec(1000, 100, false)).unwrap();
        let long: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        log.write(&mut &b"short\n"[..], SystemTime::now()).unwrap();
        log.write(&mut &long[..], SystemTime::now()).unwrap();
        let mut expected = b"short\n".to_vec();
        expected.extend(&long);
        assert_eq!(
            all_bytes(&path, 100),
            expected,
            "binary, no newline, byte-exact"
        );
    }

    #[test]
    fn timestamps_prefix_each_line_once_even_across_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.0.log");
        let mut log = LogFile::open(path.clone(), spec(1 << 20, 1, true)).unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(86_400);
        log.write(&mut &b"hel"[..], t).unwrap();
        log.write(&mut &b"lo\nwor"[..], t).unwrap();
        log.write(&mut &b"ld\n"[..], t).unwrap();
        let text = String::from_utf8(fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            text,
            "1970-01-02T00:00:00.000Z hello\n1970-01-02T00:00:00.000Z world\n"
        );
    }

    #[test]
    fn timestamps_count_toward_max_size_and_survive_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.0.log");
        let mut log = LogFile::open(path.clone(), spec(100, 1000, true)).unwrap();
        let t = SystemTime::UNIX_EPOCH;
        let mut expected = String::new();
        for i in 0..90 {
            let line = if i % 3 == 0 {
                String::from("\n")
            } else {
                format!("l{i}\n")
            };
            expected.push_str("1970-01-01T00:00:00.000Z ");
            expected.push_str(&line);
            log.write(&mut line.as_bytes(), t).unwrap();
        }
        let all = String::from_utf8(all_bytes(&path, 1000)).unwrap();
        assert_eq!(all, expected, "each line stamped once, in order");
        for n in 1..=20 {
            let old = fs::read(format!("{}.{n}", path.display())).unwrap();
            assert!(old.len() <= 100, "file .{n} has {} bytes", old.len());
        }
    }

    #[test]
    fn a_stamped_line_longer_than_the_file_is_cut_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.0.log");
        let mut log = LogFile::open(path.clone(), spec(40, 1000, true)).unwrap();
        let t = SystemTime::UNIX_EPOCH;
        log.write(&mut &b"0123456789abcdefghijklmnopqrstuvwxyz\nok\n"[..], t)
            .unwrap();
        let all = String::from_utf8(all_bytes(&path, 1000)).unwrap();
        assert_eq!(
            all,
            "1970-01-01T00:00:00.000Z 0123456789abcde\
             fghijklmnopqrstuvwxyz\n\
             1970-01-01T00:00:00.000Z ok\n"
        );
    }

    #[test]
    fn a_failed_write_leaves_the_rest_to_retry_and_repeats_nothing() {
        // /dev/full refuses every write: nothing is consumed, the data stays for the retry.
        let dir = tempfile::tempdir().unwrap();
        let mut log = LogFile::open(dir.path().join("w.0.log"), spec(1 << 20, 1, true)).unwrap();
        log.file = fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let mut data = &b"one\ntwo\n"[..];
        assert!(log.write(&mut data, SystemTime::now()).is_err());
        assert_eq!(
            data, b"one\ntwo\n",
            "nothing was written, so nothing is consumed"
        );
        assert!(log.at_line_start, "the next try stamps the line again");
        let failing = log.failing().expect("the failure is remembered").clone();
        assert!(failing.error.contains("No space"), "{}", failing.error);
        assert!(log.write(&mut data, SystemTime::now()).is_err());
        assert_eq!(
            log.failing().unwrap().since,
            failing.since,
            "the same run of failures"
        );
        log.file = tempfile::tempfile().unwrap();
        log.write(&mut data, SystemTime::now()).unwrap();
        assert!(log.failing().is_none(), "cleared by a write that succeeds");
    }

    /// A small deterministic generator (xorshift), for arbitrary chunk and line lengths.
    fn lengths(seed: u64) -> impl FnMut(usize) -> usize {
        let mut x = seed;
        move |below| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % below as u64) as usize + 1
        }
    }

    #[test]
    fn rotation_cuts_at_a_line_end_whatever_chunks_the_lines_arrive_in() {
        for timestamps in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("w.0.log");
            let max = 1000;
            let mut log = LogFile::open(path.clone(), spec(max, 10_000, timestamps)).unwrap();
            let t = SystemTime::UNIX_EPOCH;
            let stamp = "1970-01-01T00:00:00.000Z ";
            let mut next = lengths(0x9e37_79b9_7f4a_7c15);
            let (mut input, mut expected) = (Vec::<u8>::new(), Vec::<u8>::new());
            for i in 0..1500 {
                let line = format!("{i}{}\n", "x".repeat(next(300)));
                if timestamps {
                    expected.extend(stamp.as_bytes());
                }
                expected.extend(line.as_bytes());
                input.extend(line.as_bytes());
            }
            let mut rest = &input[..];
            while !rest.is_empty() {
                let n = next(1500).min(rest.len());
                let mut chunk = &rest[..n];
                log.write(&mut chunk, t).unwrap();
                assert!(chunk.is_empty());
                rest = &rest[n..];
            }
            let all = all_bytes(&path, 10_000);
            assert!(
                all == expected,
                "every byte in order (stamps: {timestamps})"
            );
            let mut n = 1;
            while let Ok(old) = fs::read(numbered(&path, n)) {
                let text = String::from_utf8_lossy(&old);
                assert_eq!(
                    old.last(),
                    Some(&b'\n'),
                    "file .{n} ends inside a line (stamps: {timestamps}): {text}"
                );
                assert!(old.len() < 2 * max as usize, "file .{n}: {}", old.len());
                n += 1;
            }
            assert!(n > 50, "rotated {n} times");
        }
    }

    #[test]
    fn rotation_recreates_a_removed_log_directory() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        let path = logs.join("w.0.log");
        let mut log = LogFile::open(path.clone(), spec(10, 3, false)).unwrap();
        log.write(&mut &b"012345678\n"[..], SystemTime::now())
            .unwrap();
        fs::remove_dir_all(&logs).unwrap();
        log.write(&mut &b"after\n"[..], SystemTime::now())
            .expect("the rotation creates the directory again");
        assert_eq!(fs::read(&path).unwrap(), b"after\n");
    }

    #[test]
    fn rotation_touches_only_the_files_that_exist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.0.log");
        // With keep this large, renaming every number up to keep would take hours.
        let mut log = LogFile::open(path.clone(), spec(10, u32::MAX, false)).unwrap();
        let (done_tx, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for i in 0..20 {
                let line = format!("line {i:04}\n");
                log.write(&mut line.as_bytes(), SystemTime::now()).unwrap();
            }
            let _ = done_tx.send(());
        });
        done.recv_timeout(Duration::from_secs(10))
            .expect("20 rotations with a huge keep finish at once");
        assert_eq!(fs::read(&path).unwrap(), b"line 0019\n");
        assert_eq!(fs::read(numbered(&path, 19)).unwrap(), b"line 0000\n");
        assert!(!numbered(&path, 20).exists());

        // A gap: the files below it move up, the ones above it stay.
        let path = dir.path().join("g.0.log");
        for (name, text) in [
            ("g.0.log", "cur"),
            ("g.0.log.1", "one"),
            ("g.0.log.3", "three"),
        ] {
            fs::write(dir.path().join(name), text).unwrap();
        }
        shift_numbered(&path, 5).unwrap();
        let read = |n| fs::read_to_string(numbered(&path, n)).unwrap();
        assert_eq!(
            (read(1), read(2), read(3)),
            ("cur".into(), "one".into(), "three".into())
        );
        assert!(!path.exists());
    }

    /// The records of the index of `path`, as (offset, time in ms).
    fn index_of(path: &Path) -> Vec<(u64, u64)> {
        fs::read(logindex::index_path(path))
            .unwrap()
            .chunks_exact(16)
            .map(|r| {
                let word = |at: usize| u64::from_le_bytes(r[at..at + 8].try_into().unwrap());
                (word(0), word(8) / 1_000_000)
            })
            .collect()
    }

    #[test]
    fn each_chunk_is_indexed_where_it_lands_and_the_index_rotates_with_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.0.log");
        let other = dir.path().join("o.0.log");
        let mut log = LogFile::open(path.clone(), spec(20, 3, false)).unwrap();
        let mut log2 = LogFile::open(other.clone(), spec(1000, 3, false)).unwrap();
        let at = |ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
        log.write(&mut &b"aaaa\n"[..], at(1000)).unwrap();
        // Same millisecond, nothing written elsewhere in between: nothing to note.
        log.write(&mut &b"bbbb\n"[..], at(1000)).unwrap();
        // Another file was written in between: noted, even in the same millisecond.
        log2.write(&mut &b"x\n"[..], at(1000)).unwrap();
        log.write(&mut &b"cccc\n"[..], at(1000)).unwrap();
        log.write(&mut &b"dddd\n"[..], at(1001)).unwrap();
        log.flush_index();
        assert_eq!(index_of(&path), [(0, 1000), (10, 1000), (15, 1001)]);
        // The next line does not fit: the file and its index become .1, both start afresh.
        log.write(&mut &b"eeee\nff"[..], at(1002)).unwrap();
        log.write(&mut &b"ff\n"[..], at(1003)).unwrap();
        assert_eq!(
            fs::read(numbered(&path, 1)).unwrap(),
            b"aaaa\nbbbb\ncccc\ndddd\n"
        );
        assert_eq!(
            index_of(&numbered(&path, 1)),
            [(0, 1000), (10, 1000), (15, 1001)]
        );
        drop(log);
        assert_eq!(fs::read(&path).unwrap(), b"eeee\nffff\n");
        assert_eq!(index_of(&path), [(0, 1002), (7, 1003)], "written at close");
        // A log reopened (tend restarted) appends to its index.
        let mut log = LogFile::open(path.clone(), spec(20, 3, false)).unwrap();
        log.write(&mut &b"g\n"[..], at(5000)).unwrap();
        drop(log);
        assert_eq!(index_of(&path), [(0, 1002), (7, 1003), (10, 5000)]);
    }

    #[test]
    fn an_index_missing_where_its_file_moves_leaves_no_stale_one_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.0.log");
        let mut log = LogFile::open(path.clone(), spec(6, 5, false)).unwrap();
        let t = SystemTime::now();
        // One file each: "a\nxxx\n" (.2), "b\nxxx\n" (.1), then "c\nxxx\n".
        for line in ["a\n", "b\n", "c\n"] {
            log.write(&mut line.as_bytes(), t).unwrap();
            log.write(&mut &b"xxx\n"[..], t).unwrap();
        }
        assert!(logindex::index_path(&numbered(&path, 2)).exists());
        // .1 loses its index; the next rotation moves .2 to .3 and .1 to .2.
        fs::remove_file(logindex::index_path(&numbered(&path, 1))).unwrap();
        log.write(&mut &b"d\n"[..], t).unwrap();
        assert_eq!(fs::read(numbered(&path, 3)).unwrap(), b"a\nxxx\n");
        assert_eq!(fs::read(numbered(&path, 2)).unwrap(), b"b\nxxx\n");
        assert!(logindex::index_path(&numbered(&path, 3)).exists());
        assert!(
            !logindex::index_path(&numbered(&path, 2)).exists(),
            "the index .1 did not have is not replaced by an older one"
        );
    }

    #[test]
    fn a_symlink_planted_at_the_index_is_refused_and_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let path = dir.path().join("w.0.log");
        std::os::unix::fs::symlink(&victim, logindex::index_path(&path)).unwrap();
        let error = LogFile::open(path, spec(100, 1, false)).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("w.0.log.idx"), "{text}");
        assert!(text.contains("symbolic link"), "{text}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    }

    #[test]
    fn keep_zero_truncates_instead_of_renaming() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.0.log");
        let mut log = LogFile::open(path.clone(), spec(8, 0, false)).unwrap();
        log.write(&mut &b"aaaaaaa\nbbbbbbb\n"[..], SystemTime::now())
            .unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"bbbbbbb\n");
        drop(log);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            2,
            "the file and its index"
        );
    }
}
