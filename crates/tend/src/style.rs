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
