//! Splits a byte stream into lines for the terminal, with a cap so that a huge line without a
//! newline cannot grow memory without bound.

/// The longest piece of a line shown at once, on the terminal, to `logs -f` and by
/// `tend logs`: a longer line is cut into pieces of this size. journald splits at 48 KiB;
/// 16 KiB keeps a piece of the worst bytes (a control character takes 6 bytes in JSON) far
/// below the protocol's answer limit.
pub const LINE_CAP: usize = 16 * 1024;

/// Collects bytes and hands out complete lines (without their newline), each with whether it
/// is a piece of a line longer than the cap (`cut`: every piece of such a line is).
#[derive(Debug)]
pub struct LineSplitter {
    partial: Vec<u8>,
    cap: usize,
    /// A capped piece of the current line was already emitted: its newline ends no new line.
    cut: bool,
    /// The start of the current line was skipped: drop the rest of it.
    skipping: bool,
}

impl LineSplitter {
    /// A splitter that emits a piece of at most `cap` bytes when a line grows longer.
    pub fn new(cap: usize) -> Self {
        LineSplitter {
            partial: Vec::new(),
            cap: cap.max(1),
            cut: false,
            skipping: false,
        }
    }

    /// Passes over `data` without emitting anything (nobody wants lines now); a line that it
    /// starts but does not end is dropped whole when feeding resumes, never half shown.
    pub fn skip(&mut self, data: &[u8]) {
        if let Some(&last) = data.last() {
            self.partial.clear();
            self.cut = false;
            self.skipping = last != b'\n';
        }
    }

    /// Feeds `data`, calling `emit` with each line it completes and whether it was cut.
    pub fn feed(&mut self, mut data: &[u8], mut emit: impl FnMut(&[u8], bool)) {
        if self.skipping {
            match memchr::memchr(b'\n', data) {
                Some(newline) => {
                    self.skipping = false;
                    data = &data[newline + 1..];
                }
                None => return,
            }
        }
        while let Some(newline) = memchr::memchr(b'\n', data) {
            let (line, rest) = (&data[..newline], &data[newline + 1..]);
            if self.partial.is_empty() {
                if !(self.cut && line.is_empty()) {
                    emit_capped(self.cap, line, self.cut, &mut emit);
                }
            } else {
                self.partial.extend_from_slice(line);
                emit_capped(self.cap, &self.partial, self.cut, &mut emit);
                self.partial.clear();
            }
            self.cut = false;
            data = rest;
        }
        // What is left has no newline. The partial line is shorter than the cap: fill it up to
        // the cap, then emit whole pieces straight from `data`, keeping only the tail. Nothing
        // is copied twice, however long the line.
        if !self.partial.is_empty() {
            let room = self.cap - self.partial.len();
            if data.len() < room {
                self.partial.extend_from_slice(data);
                return;
            }
            self.partial.extend_from_slice(&data[..room]);
            emit(&self.partial, true);
            self.partial.clear();
            self.cut = true;
            data = &data[room..];
        }
        while data.len() >= self.cap {
            emit(&data[..self.cap], true);
            self.cut = true;
            data = &data[self.cap..];
        }
        self.partial.extend_from_slice(data);
    }

    /// The stream ended: emits what is left of a last line without newline.
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8], bool)) {
        if !self.partial.is_empty() && !self.skipping {
            emit(&std::mem::take(&mut self.partial), self.cut);
        }
    }
}

/// Emits `line` in pieces of at most `cap` bytes (an empty line as itself), all marked cut
/// when there is more than one or `cut` says earlier pieces of it went out already.
fn emit_capped(cap: usize, line: &[u8], cut: bool, emit: &mut impl FnMut(&[u8], bool)) {
    if line.is_empty() {
        emit(line, cut);
    }
    let cut = cut || line.len() > cap;
    for piece in line.chunks(cap) {
        emit(piece, cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(cap: usize, chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = LineSplitter::new(cap);
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, |l, _| out.push(l.to_vec()));
        }
        s.finish(|l, _| out.push(l.to_vec()));
        out
    }

    #[test]
    fn joins_lines_across_chunks_and_keeps_the_last_partial_line() {
        let out = split(100, &[b"a\nb", b"c\n\nd"]);
        assert_eq!(
            out,
            vec![b"a".to_vec(), b"bc".to_vec(), b"".to_vec(), b"d".to_vec()]
        );
    }

    #[test]
    fn a_line_begun_while_skipping_is_dropped_whole() {
        let mut s = LineSplitter::new(100);
        let mut out = Vec::new();
        s.feed(b"seen\nhalf-", |l, _| out.push(l.to_vec()));
        s.skip(b"skipped-middle");
        s.feed(b"-rest\nnext\nlast", |l, _| out.push(l.to_vec()));
        s.finish(|l, _| out.push(l.to_vec()));
        assert_eq!(
            out,
            vec![b"seen".to_vec(), b"next".to_vec(), b"last".to_vec()]
        );
        s.skip(b"whole line\n");
        s.feed(b"after\n", |l, _| out.push(l.to_vec()));
        assert_eq!(
            out.last(),
            Some(&b"after".to_vec()),
            "a skipped whole line leaves no trace"
        );
    }

    #[test]
    fn pieces_of_a_long_line_are_the_same_however_it_arrives() {
        let line: Vec<u8> = (0..1000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let whole = split(64, &[&line, b"\n"]);
        assert_eq!(whole.len(), 16, "15 full pieces and one of 40 bytes");
        assert_eq!(whole.concat(), line);
        for size in [1, 7, 63, 64, 65, 200, 999] {
            let mut chunks: Vec<&[u8]> = line.chunks(size).collect();
            chunks.push(b"\n");
            assert_eq!(split(64, &chunks), whole, "in chunks of {size}");
        }
    }

    #[test]
    fn every_piece_of_a_long_line_is_marked_cut_and_no_other_line() {
        for chunks in [
            &[&b"short\n0123456789ab\nx"[..]][..],
            &[b"short\n0123", b"4567", b"89ab\n", b"x"],
            &[b"short\n01", b"23456789a", b"b\nx"],
        ] {
            let mut s = LineSplitter::new(4);
            let mut out = Vec::new();
            for c in chunks {
                s.feed(c, |l, cut| out.push((l.to_vec(), cut)));
            }
            s.finish(|l, cut| out.push((l.to_vec(), cut)));
            let marks: Vec<(&[u8], bool)> = out.iter().map(|(l, c)| (&l[..], *c)).collect();
            assert_eq!(
                marks,
                [
                    (&b"shor"[..], true),
                    (b"t", true),
                    (b"0123", true),
                    (b"4567", true),
                    (b"89ab", true),
                    (b"x", false)
                ],
                "{chunks:?}"
            );
        }
    }

    #[test]
    fn caps_long_lines() {
        let out = split(4, &[b"0123456789", b"ab\n"]);
        assert_eq!(
            out,
            vec![b"0123".to_vec(), b"4567".to_vec(), b"89ab".to_vec()]
        );
        assert!(out.iter().all(|l| l.len() <= 4));
        let out = split(4, &[b"0123", b"\n", b"x\n"]);
        assert_eq!(
            out,
            vec![b"0123".to_vec(), b"x".to_vec()],
            "no empty line after a cut"
        );
    }
}
