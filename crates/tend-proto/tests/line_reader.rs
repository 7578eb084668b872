//! The line framing: lines of bounded length from a byte stream, without unbounded buffering.

use std::io::{BufRead, BufReader, Cursor, Read};

use tend_proto::*;

fn reader(bytes: &[u8]) -> LineReader<Cursor<Vec<u8>>> {
    LineReader::new(Cursor::new(bytes.to_vec()))
}

fn next(r: &mut LineReader<impl BufRead>) -> Option<Vec<u8>> {
    r.read_line().unwrap().map(<[u8]>::to_vec)
}

#[test]
fn several_lines_then_eof() {
    let mut r = reader(b"one\ntwo\n\nfour\n");
    assert_eq!(next(&mut r).as_deref(), Some(&b"one"[..]));
    assert_eq!(next(&mut r).as_deref(), Some(&b"two"[..]));
    assert_eq!(next(&mut r).as_deref(), Some(&b""[..]));
    assert_eq!(next(&mut r).as_deref(), Some(&b"four"[..]));
    assert_eq!(next(&mut r), None);
    assert_eq!(next(&mut r), None, "EOF stays EOF");
}

#[test]
fn empty_input_is_eof() {
    assert_eq!(next(&mut reader(b"")), None);
}

#[test]
fn last_line_without_newline() {
    let mut r = reader(b"one\nlast");
    assert_eq!(next(&mut r).as_deref(), Some(&b"one"[..]));
    assert_eq!(next(&mut r).as_deref(), Some(&b"last"[..]));
    assert_eq!(next(&mut r), None);
}

/// Hands out its bytes a few at a time, as a socket would.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
    chunk: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.chunk.min(buf.len()).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn lines_split_across_reads() {
    let data = b"{\"id\":1,\"request\":{\"status\":{}}}\n{\"id\":2,\"request\":{\"down\":{}}}\n";
    for chunk in 1..8 {
        let trickle = Trickle {
            data: data.to_vec(),
            pos: 0,
            chunk,
        };
        let mut r = LineReader::new(BufReader::with_capacity(3, trickle));
        let first: RequestLine = r.read_message().unwrap().unwrap();
        assert_eq!(first.id, 1);
        let second: RequestLine = r.read_message().unwrap().unwrap();
        assert_eq!(second.request, Request::Down(NoArgs {}));
        assert!(r.read_message::<RequestLine>().unwrap().is_none());
    }
}

#[test]
fn a_line_of_exactly_the_limit_is_accepted() {
    let mut data = vec![b'x'; MAX_LINE];
    data.push(b'\n');
    data.extend_from_slice(&vec![b'y'; MAX_LINE]); // the last line, without newline
    let mut r = LineReader::new(BufReader::new(Cursor::new(data)));
    assert_eq!(r.read_line().unwrap().unwrap().len(), MAX_LINE);
    assert_eq!(r.read_line().unwrap().unwrap().len(), MAX_LINE);
    assert!(r.read_line().unwrap().is_none());
    assert!(r.capacity() <= MAX_LINE);
}

#[test]
fn an_endless_line_is_too_long_and_buffers_no_more_than_the_limit() {
    // `repeat` never ends and never sends a newline: the reader must give up by itself.
    let mut r = LineReader::new(BufReader::new(std::io::repeat(b'a')));
    assert!(matches!(r.read_line(), Err(ProtoError::LineTooLong)));
    assert!(
        r.capacity() <= MAX_LINE,
        "line buffer grew to {} bytes",
        r.capacity()
    );
}

#[test]
fn after_a_too_long_line_the_next_line_is_read() {
    for over in [1, 5000, 3 * MAX_LINE] {
        let mut data = b"first\n".to_vec();
        data.extend_from_slice(&vec![b'z'; MAX_LINE + over]);
        data.extend_from_slice(b"\nafter\n");
        data.extend_from_slice(&vec![b'z'; MAX_LINE + over]); // over-long, and at EOF
        let mut r = LineReader::new(BufReader::new(Cursor::new(data)));
        assert_eq!(next(&mut r).as_deref(), Some(&b"first"[..]));
        assert!(matches!(r.read_line(), Err(ProtoError::LineTooLong)));
        assert_eq!(next(&mut r).as_deref(), Some(&b"after"[..]));
        assert!(matches!(r.read_line(), Err(ProtoError::LineTooLong)));
        assert_eq!(next(&mut r), None);
        assert!(r.capacity() <= MAX_LINE, "capacity {}", r.capacity());
    }
}

#[test]
fn a_too_long_line_in_one_buffer_is_caught_too() {
    // The whole line, newline included, arrives in one fill_buf.
    let mut data = vec![b'q'; MAX_LINE + 1];
    data.extend_from_slice(b"\nok\n");
    let mut r = LineReader::new(Cursor::new(data));
    assert!(matches!(r.read_line(), Err(ProtoError::LineTooLong)));
    assert_eq!(next(&mut r).as_deref(), Some(&b"ok"[..]));
    assert!(r.capacity() <= MAX_LINE);
}

#[test]
fn a_client_reads_long_answers_with_its_own_limit() {
    let mut big = vec![b'a'; MAX_LINE * 2];
    big.push(b'\n');
    let mut r = LineReader::with_limit(Cursor::new(big.clone()), MAX_ANSWER_LINE);
    assert_eq!(r.read_line().unwrap().unwrap().len(), MAX_LINE * 2);
    let mut r = LineReader::with_limit(Cursor::new(big), 16);
    assert!(matches!(r.read_line(), Err(ProtoError::LineTooLong)));
    assert!(r.capacity() <= 16);
}

#[test]
fn io_errors_are_reported() {
    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
        }
    }
    let mut r = LineReader::new(BufReader::new(Broken));
    assert!(
        matches!(r.read_line(), Err(ProtoError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset)
    );
}

#[test]
fn the_framer_works_without_io() {
    let mut f = LineFramer::with_limit(8);
    assert_eq!(f.push(b"ab"), (2, Pushed::NeedMore));
    assert_eq!(f.push(b"c\nrest"), (2, Pushed::Line));
    assert_eq!(f.line(), b"abc");
    assert_eq!(f.push(b"rest"), (4, Pushed::NeedMore));
    assert_eq!(f.line(), b"", "no line until one completes");
    assert_eq!(f.push(b"12345"), (5, Pushed::TooLong));
    assert_eq!(
        f.push(b"678"),
        (3, Pushed::NeedMore),
        "skipping the long line"
    );
    assert_eq!(
        f.push(b"9\nxy\n"),
        (5, Pushed::Line),
        "skip, then the next line"
    );
    assert_eq!(f.line(), b"xy");
    assert_eq!(f.push(b"tail"), (4, Pushed::NeedMore));
    assert_eq!(f.finish(), Some(&b"tail"[..]));
    assert_eq!(f.finish(), None);
    assert!(f.capacity() <= 8);
}

#[test]
fn a_session_through_the_reader() {
    // What a client reads after asking for logs: log lines, then the terminal ok.
    let mut wire = Vec::new();
    wire.extend(encode(&HandshakeReply::Hello(ServerHello::new(
        "tend 0.1.0",
        99,
        "/p/tend.toml",
    ))));
    for text in ["a", "b"] {
        wire.extend(encode(&AnswerLine::log(
            1,
            LogLine::from_bytes("web.0", Stream::Stdout, text.as_bytes()),
        )));
    }
    wire.extend(encode(&AnswerLine::ok(1, Done {})));
    let mut r = LineReader::with_limit(Cursor::new(wire), MAX_ANSWER_LINE);
    let hello: HandshakeReply = r.read_message().unwrap().unwrap();
    assert!(matches!(hello, HandshakeReply::Hello(h) if h.pid == 99));
    let mut lines = Vec::new();
    loop {
        let answer: AnswerLine = r.read_message().unwrap().unwrap();
        assert_eq!(answer.id, Some(1));
        match answer.answer {
            Answer::Log(l) => lines.push(l.line),
            Answer::Ok(OkBody::Done(_)) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(lines, ["a", "b"]);
    assert!(r.read_message::<AnswerLine>().unwrap().is_none());
}
