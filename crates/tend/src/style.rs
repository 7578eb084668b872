//! How tend colours what it prints for people: each process keeps one colour (the same in
//! `tend up`, `tend status` and `tend logs`, run after run), and colour is used only on a
//! terminal, and never with `NO_COLOR` set.

use std::io::{self, IsTerminal};

use crate::hash::fnv1a;

/// ANSI colours for process prefixes; a process keeps its colour for tend's whole life.
const COLOURS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

/// `text` in the ANSI colour `colour` when `on`.
pub fn paint(text: &str, colour: &str, on: bool) -> String {
    if on {
        format!("\x1b[{colour}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// The colour of a process's prefix: the same for a name in every run and every command.
pub fn colour_of(process: &str) -> &'static str {
    COLOURS[(fnv1a(process.as_bytes()) % COLOURS.len() as u64) as usize]
}

/// Whether to colour what goes to stdout: a terminal, and no `NO_COLOR`.
pub fn colour_wanted() -> bool {
    io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Whether tend's stdout is a terminal.
pub fn stdout_is_terminal() -> bool {
    io::stdout().is_terminal()
}

/// A child's line made safe for a terminal, appended to `out`: colour (SGR) sequences are kept
/// when `keep_colour` (and dropped otherwise); every other escape sequence and control
/// character is shown, not obeyed, in `cat -v`'s caret notation (`^[` for ESC, `^M` for a bare
/// carriage return, `^G` for BEL), and so are the C1 controls a terminal may obey (as `<U+9B>`).
/// A child can then neither set the terminal's title, clear the screen, nor overwrite another
/// process's prefix. Bytes that are not UTF-8 pass as they are (the terminal shows U+FFFD).
/// The log files keep every byte as printed; this is for the console only.
pub fn console_safe(line: &[u8], keep_colour: bool, out: &mut Vec<u8>) {
    let mut rest = line;
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == 0x1b {
            if let Some(len) = sgr_len(rest) {
                if keep_colour {
                    out.extend_from_slice(&rest[..len]);
                }
                rest = &rest[len..];
                continue;
            }
        }
        match byte {
            b'\t' => out.push(b'\t'),
            0x00..=0x1f => out.extend_from_slice(&[b'^', byte + 0x40]),
            0x7f => out.extend_from_slice(b"^?"),
            // U+0080..U+009F in UTF-8: C2 80..C2 9F.
            0xc2 if tail.first().is_some_and(|b| (0x80..=0x9f).contains(b)) => {
                out.extend_from_slice(format!("<U+{:X}>", tail[0]).as_bytes());
                rest = &tail[1..];
                continue;
            }
            _ => out.push(byte),
        }
        rest = tail;
    }
}

/// The length of the SGR sequence (`ESC [ params m`, params digits, `;` and `:`) at the start
/// of `bytes`, if there is one.
fn sgr_len(bytes: &[u8]) -> Option<usize> {
    let params = bytes.strip_prefix(b"\x1b[")?;
    let n = params
        .iter()
        .take_while(|&&b| b.is_ascii_digit() || b == b';' || b == b':')
        .count();
    (params.get(n) == Some(&b'm')).then_some(2 + n + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn safe(line: &[u8], keep_colour: bool) -> String {
        let mut out = Vec::new();
        console_safe(line, keep_colour, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn colour_stays_and_everything_else_is_shown_not_obeyed() {
        assert_eq!(
            safe(b"\x1b[1;31mred\x1b[0m ok", true),
            "\x1b[1;31mred\x1b[0m ok"
        );
        assert_eq!(safe(b"\x1b[1;31mred\x1b[0m ok", false), "red ok");
        assert_eq!(safe(b"\x1b]0;pwned\x07title", true), "^[]0;pwned^Gtitle");
        assert_eq!(safe(b"\x1b[2J\x1b[Hclear", true), "^[[2J^[[Hclear");
        assert_eq!(safe(b"fake\rweb.0 | forged", true), "fake^Mweb.0 | forged");
        assert_eq!(
            safe(b"nul\0bs\x08del\x7ftab\t.", true),
            "nul^@bs^Hdel^?tab\t."
        );
        assert_eq!(safe("c1 \u{9b}2J é".as_bytes(), true), "c1 <U+9B>2J é");
        assert_eq!(safe(b"\x1b[31", true), "^[[31", "an SGR cut short is shown");
        assert_eq!(safe(b"\xff\xfe", true), "\u{fffd}\u{fffd}");
    }
}
