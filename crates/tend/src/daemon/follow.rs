//! `logs -f`: following the children's log files as they grow, so that a client gets every
//! line, however fast the children print and however slowly it reads.
//!
//! Nothing a child prints is copied for followers: the log files hold every byte already. The
//! drainers only say that a log grew ([`FollowHub::grew`], a `watch` channel that holds no
//! lines, so a slow follower can fall behind but never lose anything, and the children never
//! wait for it). Each follower ([`Follower`]) keeps, per followed file, an open read-only
//! descriptor and an offset, and on each wake reads what was appended since, a bounded amount
//! per pass, on the driver's thread between two awaits: the drainers write on that thread too,
//! so a follower never sees half a write, and the index records of what it reads are written
//! (drainers flush the index after each write while someone follows), giving each line the
//! time its drainer read it, as past lines get it.
//!
//! Rotation: when the descriptor is at its end and the log's path names another file, the one
//! read was rotated away (to `.1`, or unlinked with `keep = 0`; the descriptor still reads
//! it). Each log file records here which file followed which ([`FollowHub::rotated`], by
//! device and inode), so the follower finds the file that came next among the log's path and
//! its numbered files, wherever rotations since moved it. A follower further behind than the
//! files `keep` keeps on disk goes on with the first one left, and says that lines were lost:
//! no follower holds rotated files on disk beyond what `keep` says.
//!
//! A run that ends in the middle of a line (its last bytes had no newline) is recorded here
//! ([`FollowHub::run_ended`]): a follower ends the line there, as the drainer did for the
//! terminal, rather than joining it with what the next run prints.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::num::NonZeroU64;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tend_proto::Stream;
use tokio::sync::watch;

use super::control::{Tail, LINE_PIECE};
use super::logindex::{self, IndexReader};

/// The most bytes one pass of a follower reads, shared among the files that grew (each may
/// read at least [`MIN_READ`]): what a follower holds at once, whatever the children print.
const PASS_BYTES: usize = 1 << 20;
/// The least one file may read in a pass.
const MIN_READ: usize = 2 * LINE_PIECE;
/// How many ends of runs in the middle of a line are remembered.
const MAX_ENDS: usize = 256;
/// How many rotations (of all logs) are remembered.
const MAX_ROTATIONS: usize = 1024;
/// `2026-11-29T21:44:09.512Z ` (with its space): the stamp `log.timestamps` puts before each
/// line in the file, which followers leave out, as the drainers show lines.
const STAMP_LEN: usize = 25;

/// A file's identity: device and inode.
type FileId = (u64, u64);

/// What the drainers and the driver share with the followers of the logs.
#[derive(Debug)]
pub struct FollowHub {
    /// Wakes the followers when a log grew. Its value: the log files the driver opened, for
    /// followers of all instances to find those a reload adds.
    opened: watch::Sender<Opened>,
    /// Where runs ended in the middle of a line: (file, offset), the last [`MAX_ENDS`].
    ends: Mutex<VecDeque<(FileId, u64)>>,
    /// Which file followed which: (rotated, fresh), the last [`MAX_ROTATIONS`].
    rotations: Mutex<VecDeque<(FileId, FileId)>>,
}

/// The log files the driver has opened, by instance and stream.
#[derive(Debug, Default)]
pub struct Opened {
    /// Bumped each time a log file is opened or forgotten.
    generation: u64,
    logs: HashMap<(Arc<str>, Stream), OpenedLog>,
}

/// A log file as the driver opened it.
#[derive(Debug, Clone)]
pub struct OpenedLog {
    /// Its path.
    pub path: PathBuf,
    /// Whether each line in it begins with a stamp (`log.timestamps`).
    pub stamped: bool,
    /// Its identity and size when opened: a follower that finds it there begins there.
    pub id: FileId,
    /// Its size when it was opened.
    pub size: u64,
}

impl Default for FollowHub {
    fn default() -> Self {
        FollowHub {
            opened: watch::channel(Opened::default()).0,
            ends: Mutex::new(VecDeque::new()),
            rotations: Mutex::new(VecDeque::new()),
        }
    }
}

impl FollowHub {
    /// Whether anyone follows the logs now.
    pub fn following(&self) -> bool {
        self.opened.receiver_count() > 0
    }

    /// A log grew: wakes the followers, if any.
    pub fn grew(&self) {
        if self.following() {
            self.opened.send_modify(|_| {});
        }
    }

    /// The driver opened `log` for `instance`'s `stream`.
    pub fn opened(&self, instance: Arc<str>, stream: Stream, log: OpenedLog) {
        self.opened.send_modify(|opened| {
            opened.generation += 1;
            opened.logs.insert((instance, stream), log);
        });
    }

    /// Forgets the logs of the instances for which `keep` is false (a reload removed them).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.opened.send_modify(|opened| {
            opened.generation += 1;
            opened.logs.retain(|(instance, _), _| keep(instance));
        });
    }

    /// A run's output ended at `offset` of the file `id`, in the middle of a line.
    pub fn run_ended(&self, id: FileId, offset: u64) {
        let mut ends = self.ends.lock().expect("ends lock");
        if ends.len() == MAX_ENDS {
            ends.pop_front();
        }
        ends.push_back((id, offset));
        drop(ends);
        self.grew();
    }

    /// A log rotated: the file `old` was renamed away (or removed), and `new` took its place.
    pub fn rotated(&self, old: FileId, new: FileId) {
        let mut rotations = self.rotations.lock().expect("rotations lock");
        if rotations.len() == MAX_ROTATIONS {
            rotations.pop_front();
        }
        rotations.push_back((old, new));
    }

    /// The files that took the place of `old` (which must be open, so that its inode is not
    /// reused) and of each other since, in order, as far as remembered.
    fn files_after(&self, old: FileId) -> Vec<FileId> {
        let rotations = self.rotations.lock().expect("rotations lock");
        // Its own rotation is the last of its inode: an earlier one was of a file removed
        // before it was created.
        let Some(first) = rotations.iter().rposition(|(rotated, _)| *rotated == old) else {
            return Vec::new();
        };
        let mut files = vec![rotations[first].1];
        // Each file rotates once, after the one before it.
        for &(rotated, new) in rotations.range(first + 1..) {
            if Some(&rotated) == files.last() {
                files.push(new);
            }
        }
        files
    }

    /// A receiver that is told of every growth.
    pub fn subscribe(&self) -> watch::Receiver<Opened> {
        self.opened.subscribe()
    }

    /// The first offset after `from` of the file `id` where a run ended in a line, and
    /// whether one ended right at `from`.
    fn ends_after(&self, id: FileId, from: u64) -> (bool, Option<u64>) {
        let ends = self.ends.lock().expect("ends lock");
        let of_file = ends.iter().filter(|(file, _)| *file == id);
        let at = of_file.clone().any(|&(_, offset)| offset == from);
        let next = of_file
            .map(|&(_, offset)| offset)
            .filter(|&offset| offset > from)
            .min();
        (at, next)
    }
}

/// The identity of the file `meta` describes.
pub fn file_id(meta: &std::fs::Metadata) -> FileId {
    (meta.dev(), meta.ino())
}

/// One file to follow, as a `logs` request found it.
#[derive(Debug)]
pub struct Start {
    /// The instance, such as `web.0`.
    pub instance: String,
    /// Which of its streams.
    pub stream: Stream,
    /// The current log file's path.
    pub path: PathBuf,
    /// Whether lines in it begin with a stamp.
    pub stamped: bool,
    /// The file at `path` when the request came, if there was one, and where to begin in it.
    pub file: Option<File>,
    /// Where to begin in `file` (the start of a line).
    pub offset: u64,
    /// The line at `offset` continues one whose start was shown already, cut.
    pub cut: bool,
}

/// One followed log file.
struct Followed {
    instance: String,
    stream: Stream,
    path: PathBuf,
    stamped: bool,
    /// The file being read, once there is one.
    open: Option<OpenFile>,
    /// The next byte to read.
    offset: u64,
    /// The start of the line being read, not yet shown (shorter than a piece).
    partial: Vec<u8>,
    /// Pieces of the line being read were shown already.
    cut: bool,
    /// The next byte begins a line.
    at_line_start: bool,
}

struct OpenFile {
    file: File,
    id: FileId,
    /// Its index, once there is one (it is created by its first write).
    index: Option<IndexReader>,
}

/// What one pass of a follower read: each file's new pieces, and whether any file has more.
pub struct Pass {
    /// For each followed file, its new pieces with their times.
    pub tails: Vec<Tail>,
    /// The instance and stream of each of `tails`.
    pub names: Vec<(String, Stream)>,
    /// Some file had more than this pass read: pass again.
    pub more: bool,
    /// Lines were lost to rotation: this many files were removed before the follower read
    /// them.
    pub lost_files: u64,
}

/// A `logs -f` client's reading of the log files.
pub struct Follower {
    files: Vec<Followed>,
    /// The instances to follow; `None`: all, including those a reload adds.
    only: Option<HashSet<String>>,
    hub: Arc<FollowHub>,
    wake: watch::Receiver<Opened>,
    /// The generation of [`Opened`] last looked at.
    generation: u64,
    /// Only lines read at or after this time (ns since the epoch).
    since: u64,
}

impl Follower {
    /// A follower of `starts`, woken by `wake`, keeping lines read at or after `since`.
    pub fn new(
        starts: Vec<Start>,
        only: Option<HashSet<String>>,
        hub: Arc<FollowHub>,
        wake: watch::Receiver<Opened>,
        since: u64,
    ) -> Follower {
        let files = starts
            .into_iter()
            .map(|start| {
                let open = start.file.and_then(|file| {
                    let id = file_id(&file.metadata().ok()?);
                    let index = IndexReader::open(&start.path);
                    Some(OpenFile { file, id, index })
                });
                Followed {
                    instance: start.instance,
                    stream: start.stream,
                    path: start.path,
                    stamped: start.stamped,
                    open,
                    offset: start.offset,
                    partial: Vec::new(),
                    cut: start.cut,
                    at_line_start: true,
                }
            })
            .collect();
        Follower {
            files,
            only,
            hub,
            wake,
            generation: 0,
            since,
        }
    }

    /// Waits until a log grew; `false` once tend is exiting (no log will grow any more).
    pub async fn wait(&mut self) -> bool {
        self.wake.changed().await.is_ok()
    }

    /// Reads what the logs gained since the last pass, at most [`PASS_BYTES`] in all.
    pub fn pass(&mut self) -> Pass {
        self.find_new_logs();
        let now = logindex::unix_nanos(SystemTime::now());
        let share = (PASS_BYTES / self.files.len().max(1)).max(MIN_READ);
        let mut pass = Pass {
            tails: Vec::with_capacity(self.files.len()),
            names: Vec::with_capacity(self.files.len()),
            more: false,
            lost_files: 0,
        };
        let mut buf = Vec::new();
        for file in &mut self.files {
            let mut tail = Tail::default();
            let (more, lost) = file.read(&self.hub, share, &mut buf, now, &mut tail);
            pass.more |= more;
            pass.lost_files += lost;
            if self.since > 0 {
                tail.retain_since(self.since);
            }
            pass.tails.push(tail);
            pass.names.push((file.instance.clone(), file.stream));
        }
        pass
    }

    /// With no names asked for, begins following the logs the driver opened for instances
    /// not followed yet (a reload added them).
    fn find_new_logs(&mut self) {
        let opened = self.wake.borrow_and_update();
        if self.only.is_some() || opened.generation == self.generation {
            return;
        }
        self.generation = opened.generation;
        let known: HashSet<(&str, Stream)> = self
            .files
            .iter()
            .map(|f| (f.instance.as_str(), f.stream))
            .collect();
        let mut new: Vec<((Arc<str>, Stream), OpenedLog)> = opened
            .logs
            .iter()
            .filter(|((instance, stream), _)| !known.contains(&(&**instance, *stream)))
            .map(|(key, log)| (key.clone(), log.clone()))
            .collect();
        drop(opened);
        new.sort_by_key(|((instance, stream), _)| {
            (Arc::clone(instance), *stream == Stream::Stderr)
        });
        for ((instance, stream), log) in new {
            // The file the driver opened, from where it was then; if it rotated since, the
            // current one from its start.
            let file = tend_os::open_read_nofollow(&log.path).ok();
            let id = file
                .as_ref()
                .and_then(|f| f.metadata().ok())
                .map(|m| file_id(&m));
            let offset = if id == Some(log.id) { log.size } else { 0 };
            let open = file.zip(id).map(|(file, id)| OpenFile {
                file,
                id,
                index: IndexReader::open(&log.path),
            });
            self.files.push(Followed {
                instance: instance.to_string(),
                stream,
                path: log.path,
                stamped: log.stamped,
                open,
                offset,
                partial: Vec::new(),
                cut: false,
                at_line_start: true,
            });
        }
    }
}

impl Followed {
    /// Reads at most `budget` new bytes into `tail`, following rotations. Returns whether
    /// there is more to read, and how many rotated files were gone before they were read.
    fn read(
        &mut self,
        hub: &FollowHub,
        budget: usize,
        buf: &mut Vec<u8>,
        now: u64,
        tail: &mut Tail,
    ) -> (bool, u64) {
        let mut left = budget;
        let mut lost = 0;
        loop {
            let Some(id) = self.open.as_ref().map(|open| open.id) else {
                // No file yet: it is created by the first write of its instance.
                match tend_os::open_read_nofollow(&self.path) {
                    Ok(file) => {
                        let Ok(meta) = file.metadata() else {
                            return (false, lost);
                        };
                        self.open = Some(OpenFile {
                            file,
                            id: file_id(&meta),
                            index: IndexReader::open(&self.path),
                        });
                        self.offset = 0;
                        continue;
                    }
                    Err(_) => return (false, lost),
                }
            };
            let (ends_here, next_end) = hub.ends_after(id, self.offset);
            if ends_here {
                self.end_line(now, tail);
            }
            if left == 0 {
                return (true, lost);
            }
            let mut want = left;
            if let Some(end) = next_end {
                want = want.min(usize::try_from(end - self.offset).unwrap_or(usize::MAX));
            }
            buf.resize(want, 0);
            let Some(open) = &self.open else {
                return (false, lost);
            };
            let n = match open.file.read_at(buf, self.offset) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => 0,
            };
            if n > 0 {
                let used = self.take(&buf[..n], now, tail);
                self.offset += used as u64;
                left = left.saturating_sub(n);
                if used == 0 {
                    // Only the start of a stamp: the rest comes with the next write.
                    return (false, lost);
                }
                continue;
            }
            // At the end of the file: is it still the current one?
            match self.successor(hub, id) {
                Successor::Same => return (false, lost),
                Successor::Next(path, gone) => {
                    let Ok(file) = tend_os::open_read_nofollow(&path) else {
                        return (false, lost);
                    };
                    let Ok(meta) = file.metadata() else {
                        return (false, lost);
                    };
                    lost += gone;
                    self.open = Some(OpenFile {
                        file,
                        id: file_id(&meta),
                        index: IndexReader::open(&path),
                    });
                    self.offset = 0;
                }
            }
        }
    }

    /// Which file comes after the file `id`, read to its end: none yet if it is still the one
    /// at the log's path. Otherwise the file that took its place when it rotated, now one
    /// number lower for each rotation after it (the last one is the current file), checked
    /// by inode; when that one was dropped (past `keep`), the next, and so on, counting those
    /// gone. A rotation not remembered (another tend's): the file one number below the one
    /// read, if it is still there, else the current one, counted as one file gone.
    fn successor(&self, hub: &FollowHub, id: FileId) -> Successor {
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if file_id(&meta) == id => return Successor::Same,
            Ok(_) => {}
            // The log was removed and not written since: nothing new.
            Err(_) => return Successor::Same,
        }
        // The log's files on disk, current first: numbers stop at the first missing one.
        let mut on_disk = Vec::new();
        while let Ok(meta) = std::fs::symlink_metadata(numbered(&self.path, on_disk.len() as u32)) {
            on_disk.push(file_id(&meta));
        }
        let after = hub.files_after(id);
        if after
            .last()
            .is_some_and(|&last| Some(&last) == on_disk.first())
        {
            for (gone, file) in after.iter().enumerate() {
                let k = after.len() - 1 - gone;
                if on_disk.get(k) == Some(file) {
                    return Successor::Next(numbered(&self.path, k as u32), gone as u64);
                }
            }
        }
        match on_disk.iter().position(|&f| f == id) {
            Some(k) if k > 0 => Successor::Next(numbered(&self.path, k as u32 - 1), 0),
            _ => Successor::Next(self.path.clone(), 1),
        }
    }

    /// Takes the new bytes `data` (read at the current offset) into pieces in `tail`; returns
    /// how many were used (all, but for the start of a stamp cut by the end of the data).
    fn take(&mut self, data: &[u8], now: u64, tail: &mut Tail) -> usize {
        let base = self.offset;
        // Out of `self` while its index is read, put back at the end.
        let mut open = self.open.take();
        let index = open.as_mut().and_then(|open| {
            if let Some(index) = &mut open.index {
                index.refresh();
            } else if std::fs::symlink_metadata(&self.path).is_ok_and(|m| file_id(&m) == open.id) {
                // The index is created by its first write; while the file is current, its
                // index is beside it.
                open.index = IndexReader::open(&self.path);
            }
            open.index.as_ref()
        });
        let mut cursor = index.map(|index| index.cursor(base));
        let mut time_at = |offset: u64| {
            let known = cursor.as_mut().and_then(|cursor| cursor.time_at(offset));
            known.or(NonZeroU64::new(now))
        };
        let mut i = 0;
        while i < data.len() {
            if self.at_line_start && self.stamped {
                let rest = &data[i..];
                if rest.len() < STAMP_LEN && !rest.contains(&b'\n') {
                    break;
                }
                if rest.len() >= STAMP_LEN && is_stamp(&rest[..STAMP_LEN]) {
                    i += STAMP_LEN;
                }
            }
            self.at_line_start = false;
            let rest = &data[i..];
            match memchr::memchr(b'\n', rest) {
                Some(newline) => {
                    let end = base + (i + newline) as u64;
                    self.line_ends(&rest[..newline], end, &mut time_at, tail);
                    i += newline + 1;
                    self.at_line_start = true;
                }
                None => {
                    self.line_goes_on(rest, base + i as u64, &mut time_at, tail);
                    i = data.len();
                }
            }
        }
        self.open = open;
        i
    }

    /// The line being read ends with `text`, whose newline is at `newline`: its pieces go to
    /// `tail` (a newline right after a cut piece ends no new line).
    fn line_ends(
        &mut self,
        text: &[u8],
        newline: u64,
        time_at: &mut impl FnMut(u64) -> Option<NonZeroU64>,
        tail: &mut Tail,
    ) {
        if self.partial.is_empty() && self.cut && text.is_empty() {
            self.cut = false;
            return;
        }
        let mut line = std::mem::take(&mut self.partial);
        line.extend_from_slice(text);
        let cut = self.cut || line.len() > LINE_PIECE;
        if line.is_empty() {
            tail.push(&line, time_at(newline), cut);
        }
        let first = newline - line.len() as u64;
        let pieces = line.len().div_ceil(LINE_PIECE);
        for (n, piece) in line.chunks(LINE_PIECE).enumerate() {
            // A piece was read with its last byte; the line's last piece with its newline.
            let at = if n + 1 == pieces {
                newline
            } else {
                first + ((n + 1) * LINE_PIECE) as u64 - 1
            };
            tail.push(piece, time_at(at), cut);
        }
        line.clear();
        self.partial = line;
        self.cut = false;
    }

    /// The line being read goes on with `text` (no newline), which starts at `offset`: whole
    /// pieces go to `tail`, the rest waits.
    fn line_goes_on(
        &mut self,
        mut text: &[u8],
        mut offset: u64,
        time_at: &mut impl FnMut(u64) -> Option<NonZeroU64>,
        tail: &mut Tail,
    ) {
        while self.partial.len() + text.len() >= LINE_PIECE {
            let take = LINE_PIECE - self.partial.len();
            self.partial.extend_from_slice(&text[..take]);
            offset += take as u64;
            tail.push(&self.partial, time_at(offset - 1), true);
            self.partial.clear();
            self.cut = true;
            text = &text[take..];
        }
        self.partial.extend_from_slice(text);
    }

    /// A run ended at the current offset, in the middle of a line: what is left of it is shown
    /// as a last line without newline, as the drainer showed it.
    fn end_line(&mut self, now: u64, tail: &mut Tail) {
        if !self.partial.is_empty() {
            let time = self
                .open
                .as_ref()
                .and_then(|open| open.index.as_ref())
                .and_then(|index| index.cursor(self.offset - 1).time_at(self.offset - 1))
                .or(NonZeroU64::new(now));
            tail.push(&self.partial, time, self.cut);
        }
        self.partial.clear();
        self.cut = false;
        self.at_line_start = true;
    }
}

/// Where a follower goes on after a file it read to its end.
enum Successor {
    /// The file is still the current one.
    Same,
    /// The file at this path, and how many files (at least) were gone before they were read.
    Next(PathBuf, u64),
}

/// `path`, or with `.k` appended for `k` above 0.
fn numbered(path: &Path, k: u32) -> PathBuf {
    if k == 0 {
        return path.to_owned();
    }
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{k}"));
    PathBuf::from(name)
}

/// Whether `bytes` is a stamp of `log.timestamps`: `2026-11-29T21:44:09.512Z `.
fn is_stamp(bytes: &[u8]) -> bool {
    bytes.len() == STAMP_LEN
        && bytes.iter().enumerate().all(|(i, &b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'.',
            23 => b == b'Z',
            24 => b == b' ',
            _ => b.is_ascii_digit(),
        })
}

/// Where a follower of the file read so far up to `limit` begins: at the start of the line
/// that holds `limit`, if it is within a piece before it (that line was not complete and is
/// left to the follower, which shows it whole); otherwise at `limit`, the line's start shown
/// cut. Returns the offset and whether the line there was cut.
pub fn line_start(file: &File, limit: u64) -> (u64, bool) {
    let from = limit.saturating_sub(LINE_PIECE as u64);
    let mut buf = vec![0; (limit - from) as usize];
    if file.read_exact_at(&mut buf, from).is_err() {
        return (limit, false);
    }
    match memchr::memrchr(b'\n', &buf) {
        Some(newline) => (from + newline as u64 + 1, false),
        None if from == 0 => (0, false),
        None => (limit, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn hub() -> Arc<FollowHub> {
        Arc::new(FollowHub::default())
    }

    fn start(path: &Path, stamped: bool) -> Start {
        let file = tend_os::open_read_nofollow(path).ok();
        Start {
            instance: "x.0".into(),
            stream: Stream::Stdout,
            path: path.to_owned(),
            stamped,
            file,
            offset: 0,
            cut: false,
        }
    }

    fn lines(follower: &mut Follower) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        loop {
            let pass = follower.pass();
            for tail in &pass.tails {
                for (text, cut) in tail.pieces() {
                    out.push((String::from_utf8_lossy(text).into_owned(), cut));
                }
            }
            if !pass.more {
                return out;
            }
        }
    }

    fn append(path: &Path, bytes: &[u8]) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .unwrap();
        f.write_all(bytes).unwrap();
    }

    fn texts(lines: &[(String, bool)]) -> Vec<&str> {
        lines.iter().map(|(t, _)| t.as_str()).collect()
    }

    #[test]
    fn complete_lines_come_once_and_a_partial_one_waits_for_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.0.log");
        append(&path, b"a\nb");
        let hub = hub();
        let mut f = Follower::new(
            vec![start(&path, false)],
            None,
            hub.clone(),
            hub.subscribe(),
            0,
        );
        assert_eq!(texts(&lines(&mut f)), ["a"]);
        append(&path, b"c\n\nd");
        assert_eq!(texts(&lines(&mut f)), ["bc", ""]);
        assert!(lines(&mut f).is_empty());
        // The run ended after `d`: it comes as a last line, and the next run's bytes begin
        // a new one.
        let meta = std::fs::metadata(&path).unwrap();
        hub.run_ended(file_id(&meta), meta.len());
        append(&path, b"e\n");
        assert_eq!(texts(&lines(&mut f)), ["d", "e"]);
    }

    #[test]
    fn long_lines_come_in_cut_pieces_as_the_drainer_cuts_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.0.log");
        let hub = hub();
        std::fs::write(&path, b"").unwrap();
        let mut f = Follower::new(
            vec![start(&path, false)],
            None,
            hub.clone(),
            hub.subscribe(),
            0,
        );
        let long: Vec<u8> = (0..LINE_PIECE * 5 / 2)
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        // In two writes, the second beginning mid-piece.
        append(&path, &long[..100]);
        assert!(lines(&mut f).is_empty());
        append(&path, &long[100..]);
        append(&path, b"\nshort\n");
        let got = lines(&mut f);
        let want: Vec<(String, bool)> = long
            .chunks(LINE_PIECE)
            .map(|c| (String::from_utf8(c.to_vec()).unwrap(), true))
            .chain([("short".to_owned(), false)])
            .collect();
        assert_eq!(got, want);
        // A line of exactly one piece, read before its newline: the newline ends no empty
        // line.
        append(&path, &vec![b'z'; LINE_PIECE]);
        let got = lines(&mut f);
        assert!(got.len() == 1 && got[0].1 && got[0].0.len() == LINE_PIECE);
        append(&path, b"\nnext\n");
        assert_eq!(lines(&mut f), [("next".to_owned(), false)]);
    }

    #[test]
    fn stamps_are_left_out_even_when_a_read_ends_inside_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.0.log");
        let hub = hub();
        std::fs::write(&path, b"").unwrap();
        let mut f = Follower::new(
            vec![start(&path, true)],
            None,
            hub.clone(),
            hub.subscribe(),
            0,
        );
        append(&path, b"2026-11-29T21:44:09.512Z one\n2026-11-29T21:44");
        assert_eq!(texts(&lines(&mut f)), ["one"]);
        append(&path, b":09.513Z two\nnot stamped\n");
        assert_eq!(texts(&lines(&mut f)), ["two", "not stamped"]);
    }

    /// Rotates the log at `path` as [`super::super::logfile::LogFile`] does with `keep`,
    /// telling `hub`.
    fn rotate(hub: &FollowHub, path: &Path, keep: u32) {
        let old = file_id(&std::fs::metadata(path).unwrap());
        if keep == 0 {
            std::fs::remove_file(path).unwrap();
        } else {
            for k in (1..keep).rev() {
                let _ = std::fs::rename(numbered(path, k), numbered(path, k + 1));
            }
            std::fs::rename(path, numbered(path, 1)).unwrap();
        }
        std::fs::write(path, b"").unwrap();
        hub.rotated(old, file_id(&std::fs::metadata(path).unwrap()));
    }

    #[test]
    fn rotation_is_followed_to_the_next_file_and_nothing_comes_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.0.log");
        let hub = hub();
        append(&path, b"1\n");
        let mut f = Follower::new(
            vec![start(&path, false)],
            None,
            hub.clone(),
            hub.subscribe(),
            0,
        );
        assert_eq!(texts(&lines(&mut f)), ["1"]);
        // Two rotations (keep = 2) before the follower looks again.
        append(&path, b"2\n");
        rotate(&hub, &path, 2);
        append(&path, b"3\n");
        rotate(&hub, &path, 2);
        append(&path, b"4\n");
        assert_eq!(texts(&lines(&mut f)), ["2", "3", "4"]);
        // keep = 0: the file is unlinked; the open one is read to its end. The numbered
        // files left from before are not the next ones.
        append(&path, b"5\n");
        rotate(&hub, &path, 0);
        append(&path, b"6\n");
        assert_eq!(texts(&lines(&mut f)), ["5", "6"]);
        // keep = 1, three rotations: the file after the one read is gone, and said so.
        append(&path, b"7\n");
        for n in [8, 9, 10] {
            rotate(&hub, &path, 1);
            append(&path, format!("{n}\n").as_bytes());
        }
        let pass = f.pass();
        assert_eq!(pass.lost_files, 1);
        let mut got: Vec<String> = pass.tails[0]
            .pieces()
            .map(|(t, _)| String::from_utf8_lossy(t).into_owned())
            .collect();
        got.extend(lines(&mut f).into_iter().map(|(t, _)| t));
        assert_eq!(got, ["7", "9", "10"]);
    }

    #[test]
    fn a_follower_begins_at_the_start_of_an_unfinished_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.0.log");
        std::fs::write(&path, b"ab\ncd").unwrap();
        let file = File::open(&path).unwrap();
        assert_eq!(line_start(&file, 5), (3, false));
        assert_eq!(line_start(&file, 3), (3, false));
        assert_eq!(line_start(&file, 0), (0, false));
        std::fs::write(&path, vec![b'x'; LINE_PIECE + 10]).unwrap();
        let file = File::open(&path).unwrap();
        assert_eq!(
            line_start(&file, LINE_PIECE as u64 + 10),
            (LINE_PIECE as u64 + 10, true)
        );
        assert_eq!(line_start(&file, 100), (0, false));
    }
}
