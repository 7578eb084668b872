//! A supervisord config as tend.toml: `tend import supervisord.conf`.
//!
//! This module owns reading supervisord's dialect as supervisord 4 reads it: the INI syntax of
//! Python's `RawConfigParser` (as supervisord sets it up: `;` and `#` comments, inline ones
//! after whitespace, keys lowercased, indented continuation lines, sections merged across
//! files), the `[include]` of the main file (supervisord does not follow an `[include]` of an
//! included file), the `%(name)s` expansions with Python's `%` formats, the command split by
//! `shlex.split` and the `environment` read by `shlex.shlex` as supervisord does. It then maps
//! each program to a `[process.NAME]` table, and writes each setting that tend cannot carry
//! over as a comment where it would go, saying why.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use super::{comment, toml_array, toml_string};

/// Whether `text` looks like a supervisord config: it has a `[program:NAME]` or an `[include]`
/// section.
pub fn looks_like(text: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim();
        line.starts_with("[program:") || line.starts_with("[include]")
    })
}

/// The tend.toml equivalent of the supervisord config at `path` (and the files its `[include]`
/// names). An error names the file and line, what is wrong and what to do.
pub fn import(path: &Path) -> Result<String, String> {
    let environ: Vec<(String, String)> = std::env::vars().collect();
    Importer::read(path, &environ, &host_node_name())?.write()
}

/// `platform.node()`: the host name, as supervisord's `%(host_node_name)s` has it.
fn host_node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The INI files.

/// One value, and where it was written.
#[derive(Clone, Debug)]
struct Value {
    text: String,
    /// Index into [`Ini::files`].
    file: usize,
    line: usize,
}

/// One section: the keys of every `[NAME]` of that name, in the order first written (a key
/// written again keeps its place and takes the new value, as ConfigParser does).
#[derive(Debug)]
struct Section {
    name: String,
    file: usize,
    line: usize,
    keys: Vec<(String, Value)>,
}

impl Section {
    fn own(&self, key: &str) -> Option<&Value> {
        self.keys.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// The sections of the main file and of the files it includes, merged as supervisord merges
/// them (one ConfigParser reads them all).
#[derive(Debug, Default)]
struct Ini {
    /// The files read, the main one first.
    files: Vec<PathBuf>,
    /// The `%(here)s` of each file: its directory, absolute.
    heres: Vec<PathBuf>,
    sections: Vec<Section>,
    /// `[DEFAULT]`: what every section has unless it sets it.
    defaults: Vec<(String, Value)>,
}

/// Where keys go while a file is read.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    Defaults,
    Section(usize),
}

impl Ini {
    fn at(&self, file: usize, line: usize, what: &str) -> String {
        format!("{}:{line}: {what}", self.files[file].display())
    }

    fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// A key of `section`, or else of `[DEFAULT]`.
    fn get<'a>(&'a self, section: &'a Section, key: &str) -> Option<&'a Value> {
        section
            .own(key)
            .or_else(|| self.defaults.iter().find(|(k, _)| k == key).map(|(_, v)| v))
    }

    /// Reads `text`, the file `path`, into the sections. Returns the names of the sections it
    /// has. Follows Python's `RawConfigParser._read` with supervisord's settings.
    fn read(&mut self, path: &Path, here: PathBuf, text: &str) -> Result<Vec<String>, String> {
        let file = self.files.len();
        self.files.push(path.to_owned());
        self.heres.push(here);
        let mut seen = Vec::new();
        let mut target: Option<Target> = None;
        // The key whose value continues on indented lines, and its lines.
        let mut option: Option<String> = None;
        let mut lines: Vec<String> = Vec::new();
        let mut option_line = 0;
        let mut indent_level = 0;
        for (index, line) in text.lines().enumerate() {
            let lineno = index + 1;
            if line.contains('\0') {
                return Err(self.at(
                    file,
                    lineno,
                    "a NUL character, which no program, path or variable can hold; remove it",
                ));
            }
            let comment_start = comment_start(line);
            let value = line[..comment_start.unwrap_or(line.len())].trim();
            if value.is_empty() {
                // A blank line (not a comment) inside a value is kept in it.
                if comment_start.is_none() && target.is_some() && option.is_some() {
                    lines.push(String::new());
                }
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            if target.is_some() && option.is_some() && indent > indent_level {
                lines.push(value.to_owned());
                continue;
            }
            indent_level = indent;
            if let Some(header) = section_header(value) {
                self.finish(target, &mut option, &mut lines, file, option_line);
                if header == "DEFAULT" {
                    target = Some(Target::Defaults);
                } else {
                    let at = match self.sections.iter().position(|s| s.name == header) {
                        Some(at) => at,
                        None => {
                            self.sections.push(Section {
                                name: header.to_owned(),
                                file,
                                line: lineno,
                                keys: Vec::new(),
                            });
                            self.sections.len() - 1
                        }
                    };
                    seen.push(header.to_owned());
                    target = Some(Target::Section(at));
                }
                continue;
            }
            if target.is_none() {
                return Err(self.at(
                    file,
                    lineno,
                    "a key before any [section]; begin the file with a section header such as \
                     [program:NAME]",
                ));
            }
            let Some(delim) = value.find(['=', ':']) else {
                return Err(self.at(
                    file,
                    lineno,
                    &format!(
                        "{value:?} is not a [section], a `key = value` line or a comment; \
                         fix the line (supervisord refuses it too), or indent it to continue \
                         the value above"
                    ),
                ));
            };
            let key = value[..delim].trim_end();
            if key.is_empty() {
                return Err(self.at(
                    file,
                    lineno,
                    &format!(
                        "{value:?} has no key before the {:?}; write `key = value`",
                        &value[delim..=delim]
                    ),
                ));
            }
            self.finish(target, &mut option, &mut lines, file, option_line);
            option = Some(key.to_lowercase());
            option_line = lineno;
            lines.push(value[delim + 1..].trim().to_owned());
        }
        self.finish(target, &mut option, &mut lines, file, option_line);
        Ok(seen)
    }

    /// Stores the value being read, its lines joined as ConfigParser joins them.
    fn finish(
        &mut self,
        target: Option<Target>,
        option: &mut Option<String>,
        lines: &mut Vec<String>,
        file: usize,
        line: usize,
    ) {
        let (Some(target), Some(key)) = (target, option.take()) else {
            lines.clear();
            return;
        };
        let value = Value {
            text: lines.join("\n").trim_end().to_owned(),
            file,
            line,
        };
        lines.clear();
        let keys = match target {
            Target::Defaults => &mut self.defaults,
            Target::Section(at) => &mut self.sections[at].keys,
        };
        match keys.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => keys.push((key, value)),
        }
    }
}

/// Where a comment starts in `line`, if it has one: a line whose first non-blank is `;` or
/// `#`, or an inline `;` or `#` at the start or after whitespace (found the way Python's
/// ConfigParser looks: a round at a time over both prefixes).
fn comment_start(line: &str) -> Option<usize> {
    let trimmed = line.trim();
    if trimmed.starts_with(';') || trimmed.starts_with('#') {
        return Some(0);
    }
    let mut from = [0usize, 0usize];
    let mut live = [true, true];
    while live.iter().any(|&l| l) {
        let mut found: Option<usize> = None;
        for (i, prefix) in [';', '#'].into_iter().enumerate() {
            if !live[i] {
                continue;
            }
            match line[from[i]..].find(prefix) {
                None => live[i] = false,
                Some(offset) => {
                    let index = from[i] + offset;
                    from[i] = index + 1;
                    let after_space = line[..index]
                        .chars()
                        .next_back()
                        .is_none_or(char::is_whitespace);
                    if after_space {
                        found = Some(found.map_or(index, |f| f.min(index)));
                    }
                }
            }
        }
        if found.is_some() {
            return found;
        }
    }
    None
}

/// The name in a `[NAME]` line (ConfigParser's `\[(?P<header>.+)\]`, greedy).
fn section_header(value: &str) -> Option<&str> {
    let rest = value.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    (end > 0).then(|| &rest[..end])
}

// ---------------------------------------------------------------------------------------------
// Expansions: Python's `%` with a mapping.

/// A value a `%(name)s` can take.
#[derive(Clone, Debug)]
enum Exp {
    Str(String),
    Int(i64),
}

type Exps = BTreeMap<String, Exp>;

/// `text % exps`, as supervisord's `expand` does it. The error says what is wrong.
fn expand(text: &str, exps: &Exps) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('%') {
            out.push('%');
            rest = after;
            continue;
        }
        if !rest.starts_with('(') {
            return Err(format!(
                "a % that is not %(name)s in {text:?}; write %% for a literal %"
            ));
        }
        // The name runs to the matching parenthesis.
        let mut depth = 0;
        let mut end = None;
        for (i, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(end) = end else {
            return Err(format!(
                "an unclosed %( in {text:?}; write %(name)s, or %% for a literal %"
            ));
        };
        let name = &rest[1..end];
        rest = &rest[end + 1..];
        let flags_len = rest
            .find(|c: char| !"#0- +".contains(c))
            .unwrap_or(rest.len());
        let flags = &rest[..flags_len];
        rest = &rest[flags_len..];
        let width_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let width = format_number(&rest[..width_len], name, text)?;
        rest = &rest[width_len..];
        let mut precision = None;
        if let Some(after) = rest.strip_prefix('.') {
            let len = after
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after.len());
            precision = Some(format_number(&after[..len], name, text)?);
            rest = &after[len..];
        }
        rest = rest.trim_start_matches(['h', 'l', 'L']);
        let Some(conversion) = rest.chars().next() else {
            return Err(format!(
                "an incomplete format %({name}) at the end of {text:?}; end it with s or d, \
                 as in %({name})s"
            ));
        };
        rest = &rest[conversion.len_utf8()..];
        let Some(value) = exps.get(name) else {
            if let Some(var) = name.strip_prefix("ENV_") {
                return Err(format!(
                    "%({name})s names the environment variable {var}, which is not set \
                     (supervisord would refuse the file too); set {var} and import again"
                ));
            }
            let known: Vec<&str> = exps
                .keys()
                .filter(|k| !k.starts_with("ENV_"))
                .map(String::as_str)
                .collect();
            return Err(format!(
                "%({name}) cannot be expanded here; known names: {}, and ENV_X for the \
                 environment variable X",
                known.join(", ")
            ));
        };
        let left = flags.contains('-');
        let formatted = match (conversion, value) {
            ('s', value) => {
                let mut s = match value {
                    Exp::Str(s) => s.clone(),
                    Exp::Int(n) => n.to_string(),
                };
                if let Some(p) = precision {
                    s = s.chars().take(p).collect();
                }
                pad(s, width, left, ' ')
            }
            ('d' | 'i' | 'u' | 'x' | 'X' | 'o', Exp::Int(n)) => {
                format_int(*n, conversion, flags, width, precision)
            }
            ('d' | 'i' | 'u' | 'x' | 'X' | 'o', Exp::Str(_)) => {
                return Err(format!(
                    "%({name}){conversion} needs a number, but {name} is text; write %({name})s"
                ));
            }
            (c, _) => {
                return Err(format!(
                    "%({name}){c}: the format {c:?} is not supported here; use s or d"
                ));
            }
        };
        out.push_str(&formatted);
    }
    out.push_str(rest);
    Ok(out)
}

fn pad(s: String, width: usize, left: bool, fill: char) -> String {
    let len = s.chars().count();
    if len >= width {
        return s;
    }
    let padding: String = std::iter::repeat_n(fill, width - len).collect();
    if left {
        s + &padding
    } else {
        padding + &s
    }
}

/// An integer as Python's `%d`, `%x`, `%X` or `%o` writes it with these flags, width and
/// precision.
fn format_int(
    n: i64,
    conversion: char,
    flags: &str,
    width: usize,
    precision: Option<usize>,
) -> String {
    let magnitude = n.unsigned_abs();
    let mut digits = match conversion {
        'x' => format!("{magnitude:x}"),
        'X' => format!("{magnitude:X}"),
        'o' => format!("{magnitude:o}"),
        _ => magnitude.to_string(),
    };
    if let Some(p) = precision {
        digits = pad(digits, p, false, '0');
    }
    let mut prefix = if n < 0 {
        "-".to_owned()
    } else if flags.contains('+') {
        "+".to_owned()
    } else if flags.contains(' ') {
        " ".to_owned()
    } else {
        String::new()
    };
    if flags.contains('#') {
        prefix.push_str(match conversion {
            'x' => "0x",
            'X' => "0X",
            'o' => "0o",
            _ => "",
        });
    }
    let left = flags.contains('-');
    if flags.contains('0') && !left {
        let fill = width.saturating_sub(prefix.len());
        prefix + &pad(digits, fill, false, '0')
    } else {
        pad(prefix + &digits, width, left, ' ')
    }
}

// ---------------------------------------------------------------------------------------------
// Python's shlex, in the two modes supervisord uses.

/// A port of Python's `shlex.shlex.read_token` for the settings supervisord uses:
/// `shlex.split` (POSIX, split at whitespace only, no comments) for `command`, and
/// `shlex.shlex` (not POSIX, `#` comments, more word characters) for `environment`.
struct Lexer {
    chars: Vec<char>,
    at: usize,
    posix: bool,
    whitespace_split: bool,
    commenters: &'static str,
    wordchars: String,
    pushback: Option<char>,
}

const WHITESPACE: &str = " \t\r\n";
const QUOTES: &str = "'\"";

impl Lexer {
    fn new(text: &str, posix: bool) -> Lexer {
        let mut wordchars =
            "abcdfeghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_".to_owned();
        if posix {
            wordchars.push_str("ßàáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞ");
        }
        Lexer {
            chars: text.chars().collect(),
            at: 0,
            posix,
            whitespace_split: false,
            commenters: "#",
            wordchars,
            pushback: None,
        }
    }

    fn next_char(&mut self) -> Option<char> {
        let c = self.chars.get(self.at).copied();
        self.at += 1;
        c
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.next_char() {
            if c == '\n' {
                break;
            }
        }
    }

    /// The next token: `None` at the end (an empty string ends a non-POSIX lexer, as in
    /// Python).
    fn token(&mut self) -> Result<Option<String>, String> {
        if let Some(c) = self.pushback.take() {
            return Ok(Some(c.to_string()));
        }
        let mut state: Option<char> = Some(' ');
        let mut token = String::new();
        let mut quoted = false;
        let mut escaped_state = ' ';
        loop {
            let next = self.next_char();
            match state {
                None => break,
                Some(' ') => match next {
                    None => break,
                    Some(c) if WHITESPACE.contains(c) => {
                        if !token.is_empty() || (self.posix && quoted) {
                            break;
                        }
                    }
                    Some(c) if self.commenters.contains(c) => self.skip_line(),
                    Some('\\') if self.posix => {
                        escaped_state = 'a';
                        state = Some('\\');
                    }
                    Some(c) if self.wordchars.contains(c) => {
                        token.push(c);
                        state = Some('a');
                    }
                    Some(c) if QUOTES.contains(c) => {
                        if !self.posix {
                            token.push(c);
                        }
                        state = Some(c);
                    }
                    Some(c) if self.whitespace_split => {
                        token.push(c);
                        state = Some('a');
                    }
                    Some(c) => {
                        token.push(c);
                        break;
                    }
                },
                Some(q) if QUOTES.contains(q) => {
                    quoted = true;
                    match next {
                        None => return Err("no closing quotation".to_owned()),
                        Some(c) if c == q => {
                            if !self.posix {
                                token.push(c);
                                break;
                            }
                            state = Some('a');
                        }
                        Some('\\') if self.posix && q == '"' => {
                            escaped_state = q;
                            state = Some('\\');
                        }
                        Some(c) => token.push(c),
                    }
                }
                Some('\\') => {
                    let Some(c) = next else {
                        return Err("no escaped character after the last \\".to_owned());
                    };
                    // In quotes, only the quote itself or \ can be escaped.
                    if QUOTES.contains(escaped_state) && c != '\\' && c != escaped_state {
                        token.push('\\');
                    }
                    token.push(c);
                    state = Some(escaped_state);
                }
                Some(_) => match next {
                    None => break,
                    Some(c) if WHITESPACE.contains(c) => {
                        state = Some(' ');
                        if !token.is_empty() || (self.posix && quoted) {
                            break;
                        }
                    }
                    Some(c) if self.commenters.contains(c) => {
                        self.skip_line();
                        if self.posix {
                            state = Some(' ');
                            if !token.is_empty() || quoted {
                                break;
                            }
                        }
                    }
                    Some(c) if self.posix && QUOTES.contains(c) => state = Some(c),
                    Some('\\') if self.posix => {
                        escaped_state = 'a';
                        state = Some('\\');
                    }
                    Some(c)
                        if self.wordchars.contains(c)
                            || QUOTES.contains(c)
                            || self.whitespace_split =>
                    {
                        token.push(c)
                    }
                    Some(c) => {
                        self.pushback = Some(c);
                        state = Some(' ');
                        if !token.is_empty() || (self.posix && quoted) {
                            break;
                        }
                    }
                },
            }
        }
        if token.is_empty() && !(self.posix && quoted) {
            return Ok(None);
        }
        Ok(Some(token))
    }
}

/// `shlex.split(text)`: the argv supervisord runs for `command`.
fn shlex_split(text: &str) -> Result<Vec<String>, String> {
    let mut lexer = Lexer::new(text, true);
    lexer.whitespace_split = true;
    lexer.commenters = "";
    let mut words = Vec::new();
    while let Some(word) = lexer.token()? {
        words.push(word);
    }
    Ok(words)
}

/// supervisord's `dict_of_key_value_pairs`: `KEY="val",KEY2=val2` read by a non-POSIX
/// `shlex.shlex` whose words may also have `/.+-():`.
fn key_value_pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut lexer = Lexer::new(text, false);
    lexer.wordchars.push_str("/.+-():");
    let mut tokens = Vec::new();
    while let Some(token) = lexer.token()? {
        tokens.push(token);
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens.len() - i < 3 || tokens[i + 1] != "=" {
            return Err(format!(
                "{text:?} is not KEY=value pairs separated by commas (the part from {:?} \
                 on); quote a value that has characters other than letters, digits and \
                 _/.+-():, as in KEY=\"a value\"",
                tokens[i]
            ));
        }
        let value = tokens[i + 2].trim_matches(['\'', '"']).to_owned();
        match pairs.iter_mut().find(|(k, _)| *k == tokens[i]) {
            Some(slot) => slot.1 = value,
            None => pairs.push((tokens[i].clone(), value)),
        }
        i += 4;
    }
    Ok(pairs)
}

// ---------------------------------------------------------------------------------------------
// [include]: glob in the file name, sorted.

/// Python's `glob.glob(pattern)`, for wildcards (`*`, `?`, `[...]`) in the last component:
/// the paths that exist, sorted as supervisord sorts them.
fn glob(pattern: &Path) -> Result<Vec<PathBuf>, String> {
    let magic = |s: &str| s.contains(['*', '?', '[']);
    let name = pattern
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parent = pattern.parent().unwrap_or(Path::new("/"));
    if magic(&parent.to_string_lossy()) {
        return Err(format!(
            "{}: tend import takes wildcards only in the file name, not in a directory; \
             name the directories",
            pattern.display()
        ));
    }
    if !magic(&name) {
        return Ok(if pattern.symlink_metadata().is_ok() {
            vec![pattern.to_owned()]
        } else {
            Vec::new()
        });
    }
    let pattern_chars: Vec<char> = name.chars().collect();
    let mut found: Vec<PathBuf> = std::fs::read_dir(parent)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| !n.starts_with('.') || name.starts_with('.'))
                .filter(|n| fnmatch(&n.chars().collect::<Vec<_>>(), &pattern_chars))
                .map(|n| parent.join(n))
                .collect()
        })
        .unwrap_or_default();
    found.sort_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
    Ok(found)
}

/// The widest a `%` format may pad: far more than any real config, small enough that a typo
/// cannot ask for gigabytes.
const MAX_FORMAT_WIDTH: usize = 10_000;

/// A width or precision of a `%(name)` format: empty is 0; at most [`MAX_FORMAT_WIDTH`].
fn format_number(digits: &str, name: &str, text: &str) -> Result<usize, String> {
    if digits.is_empty() {
        return Ok(0);
    }
    digits
        .parse::<usize>()
        .ok()
        .filter(|&n| n <= MAX_FORMAT_WIDTH)
        .ok_or_else(|| {
            format!(
                "the format of %({name}) in {text:?} pads to {digits} characters; at most \
                 {MAX_FORMAT_WIDTH}"
            )
        })
}

/// Python's `fnmatch.fnmatchcase`: `*`, `?`, `[seq]`, `[!seq]`. Greedy, going back only to
/// the last `*`: linear in practice, and never exponential (`*****a` against `aaaa…b`).
fn fnmatch(name: &[char], pattern: &[char]) -> bool {
    let (mut n, mut p) = (0, 0);
    // Where to resume after the last `*`: the pattern after it, and the name position it
    // has swallowed up to.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if pattern.get(p) == Some(&'*') {
            star = Some((p + 1, n));
            p += 1;
            continue;
        }
        if let Some(len) = (p < pattern.len())
            .then(|| match_one(&pattern[p..], name[n]))
            .flatten()
        {
            p += len;
            n += 1;
            continue;
        }
        match star {
            Some((after, swallowed)) => {
                star = Some((after, swallowed + 1));
                p = after;
                n = swallowed + 1;
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Whether the first element of `pattern` (not `*`) matches `c`: the length of that element
/// in the pattern if it does.
fn match_one(pattern: &[char], c: char) -> Option<usize> {
    match pattern[0] {
        '?' => Some(1),
        '[' => {
            // The set runs to the next ], a ] first in it being a member; without one, [ is
            // itself.
            let mut j = 1;
            if pattern.get(j) == Some(&'!') {
                j += 1;
            }
            if pattern.get(j) == Some(&']') {
                j += 1;
            }
            while j < pattern.len() && pattern[j] != ']' {
                j += 1;
            }
            if j >= pattern.len() {
                return (c == '[').then_some(1);
            }
            let (negate, set) = match &pattern[1..j] {
                ['!', rest @ ..] => (true, rest),
                set => (false, set),
            };
            let mut member = false;
            let mut k = 0;
            while k < set.len() {
                if k + 2 < set.len() && set[k + 1] == '-' {
                    member |= set[k] <= c && c <= set[k + 2];
                    k += 3;
                } else {
                    member |= set[k] == c;
                    k += 1;
                }
            }
            (member != negate).then_some(j + 1)
        }
        literal => (literal == c).then_some(1),
    }
}

/// `os.path.abspath`: absolute, with `.` and `..` resolved by the text alone.
fn abspath(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut out = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The conversions supervisord applies to values (supervisor/datatypes.py).

fn integer(text: &str) -> Result<i64, String> {
    text.trim()
        .replace('_', "")
        .parse()
        .map_err(|_| format!("{text:?} is not an integer"))
}

fn boolean(text: &str) -> Result<bool, String> {
    match text.to_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Ok(true),
        "no" | "false" | "off" | "0" => Ok(false),
        _ => Err(format!(
            "{text:?} is not a boolean; write true or false (or yes/no, on/off, 1/0)"
        )),
    }
}

/// `autorestart`: tend's `restart`.
fn auto_restart(text: &str) -> Result<&'static str, String> {
    match text.to_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Ok("always"),
        "no" | "false" | "off" | "0" => Ok("never"),
        "unexpected" => Ok("on-failure"),
        _ => Err(format!(
            "{text:?} is not an autorestart value; write true, false or unexpected"
        )),
    }
}

fn exit_codes(text: &str) -> Result<Vec<i64>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|code| match integer(code) {
            Ok(n @ 0..=255) => Ok(n),
            _ => Err(format!(
                "{text:?} is not a list of exit codes (0 to 255, separated by commas)"
            )),
        })
        .collect()
}

/// `byte_size`: an integer with an optional KB, MB or GB (powers of 1024).
fn byte_size(text: &str) -> Result<i64, String> {
    let lower = text.to_lowercase();
    let (number, unit) = match lower.len().checked_sub(2).map(|at| lower.split_at(at)) {
        Some((number, "kb")) => (number, 1024),
        Some((number, "mb")) => (number, 1024 * 1024),
        Some((number, "gb")) => (number, 1024 * 1024 * 1024),
        _ => (lower.as_str(), 1),
    };
    integer(number)
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| format!("{text:?} is not a size such as 50MB, 10KB or 1024"))
}

/// `stopsignal`: the name tend gives it, or why tend cannot send it.
fn stop_signal(text: &str) -> Result<Result<&'static str, String>, String> {
    const NUMBERS: [(i64, &str); 18] = [
        (1, "SIGHUP"),
        (2, "SIGINT"),
        (3, "SIGQUIT"),
        (6, "SIGABRT"),
        (9, "SIGKILL"),
        (10, "SIGUSR1"),
        (11, "SIGSEGV"),
        (12, "SIGUSR2"),
        (13, "SIGPIPE"),
        (14, "SIGALRM"),
        (15, "SIGTERM"),
        (17, "SIGCHLD"),
        (18, "SIGCONT"),
        (19, "SIGSTOP"),
        (20, "SIGTSTP"),
        (21, "SIGTTIN"),
        (22, "SIGTTOU"),
        (28, "SIGWINCH"),
    ];
    let name = match integer(text) {
        Ok(n) => match NUMBERS.iter().find(|(k, _)| *k == n) {
            Some((_, name)) => (*name).to_owned(),
            None if (1..=64).contains(&n) => {
                return Ok(Err(format!("signal number {n} is not one tend can send")));
            }
            None => return Err(format!("{text:?} is not a signal number")),
        },
        Err(_) => {
            let upper = text.trim().to_uppercase();
            if upper.starts_with("SIG") {
                upper
            } else {
                format!("SIG{upper}")
            }
        }
    };
    match tend_core::Signal::ALL.iter().find(|s| s.name() == name) {
        Some(signal) => Ok(Ok(signal.name())),
        None => Ok(Err(format!("{name} is not a signal tend can send"))),
    }
}

/// `process_or_group_name`: stripped, without space, `:` or `/`.
fn supervisor_name(text: &str) -> Result<String, String> {
    let name = text.trim();
    match name.chars().find(|c| " :/".contains(*c)) {
        Some(c) => Err(format!(
            "invalid name {name:?} because of the character {c:?} (supervisord refuses it \
             too); rename it"
        )),
        None => Ok(name.to_owned()),
    }
}

/// A tend process name for the supervisord name `name`: other characters than letters,
/// digits, `_` and `-` become `_`, and it starts with a letter or digit.
fn tend_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        out.insert(0, 'p');
    }
    if out == "all" {
        out.push('_');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The translation.

/// The program keys supervisord knows; any other is a comment saying supervisord ignores it.
const PROGRAM_KEYS: &[&str] = &[
    "command",
    "process_name",
    "numprocs",
    "numprocs_start",
    "priority",
    "autostart",
    "startsecs",
    "startretries",
    "autorestart",
    "exitcodes",
    "stopsignal",
    "stopwaitsecs",
    "stopasgroup",
    "killasgroup",
    "user",
    "redirect_stderr",
    "stdout_logfile",
    "stdout_logfile_maxbytes",
    "stdout_logfile_backups",
    "stdout_capture_maxbytes",
    "stdout_events_enabled",
    "stdout_syslog",
    "stderr_logfile",
    "stderr_logfile_maxbytes",
    "stderr_logfile_backups",
    "stderr_capture_maxbytes",
    "stderr_events_enabled",
    "stderr_syslog",
    "environment",
    "directory",
    "umask",
    "serverurl",
];

/// Why a program key that tend has no equivalent for is not carried over.
fn why_not(key: &str) -> Option<&'static str> {
    Some(match key {
        "redirect_stderr" | "stdout_logfile" | "stderr_logfile" => {
            "tend keeps its own logs of each instance in log_dir (NAME.N.log and \
             NAME.N.err.log); read them with `tend logs`"
        }
        "stdout_capture_maxbytes"
        | "stderr_capture_maxbytes"
        | "stdout_events_enabled"
        | "stderr_events_enabled" => "tend has no event listeners",
        "stdout_syslog" | "stderr_syslog" => "tend does not write to syslog",
        "serverurl" => {
            "tend sets no SUPERVISOR_SERVER_URL; a process talks to tend with the tend command"
        }
        _ => return None,
    })
}

/// Why a whole section is not carried over.
fn why_section(name: &str) -> &'static str {
    let kind = name.split(':').next().unwrap_or(name);
    match kind {
        "unix_http_server" => {
            "tend's control socket is made for each config file, without settings"
        }
        "inet_http_server" => {
            "tend has its own HTTP API: add an [http] table with listen = \"127.0.0.1:PORT\" \
             (see docs/http.md)"
        }
        "supervisorctl" => "the tend command talks to tend without settings",
        "rpcinterface" => "tend has no XML-RPC interface; it has an HTTP API ([http])",
        "ctlplugin" => "tend has no supervisorctl plugins",
        "eventlistener" => "tend has no event listeners",
        "fcgi-program" => {
            "tend does not open FastCGI sockets for a program; run it with a socket of its own"
        }
        "include" => "its files are read above",
        _ => "supervisord does not know this section either, and ignores it",
    }
}

/// The priority of a program's group and its own: supervisord starts groups by the first,
/// then the programs of a group by the second.
type Tier = (i64, i64);

/// One `[process.NAME]` table to write.
struct Table {
    /// Empty for a program that has no process (numprocs = 0): its body is a comment.
    name: String,
    /// The supervisord program it comes from.
    program: String,
    /// Everything but `depends_on`.
    body: String,
    tier: Tier,
    autostart: bool,
}

/// A read config, and what the translation needs of it.
struct Importer {
    ini: Ini,
    /// `ENV_X` for the environment, and `host_node_name`.
    base: Exps,
    /// `[supervisord] environment`: set in every program.
    global_env: Vec<(String, String)>,
    /// Notes for the top of the output.
    notes: Vec<String>,
    /// Comments where the `[include]` section was.
    include_notes: Vec<String>,
}

impl Importer {
    fn read(path: &Path, environ: &[(String, String)], host: &str) -> Result<Importer, String> {
        let text = super::read(path)?;
        let mut ini = Ini::default();
        let main = abspath(path);
        let here = main.parent().unwrap_or(Path::new("/")).to_owned();
        ini.read(path, here.clone(), &text)?;
        let mut base: Exps = environ
            .iter()
            .map(|(k, v)| (format!("ENV_{k}"), Exp::Str(v.clone())))
            .collect();
        base.insert("host_node_name".into(), Exp::Str(host.to_owned()));
        let mut notes = Vec::new();
        let mut include_notes = Vec::new();
        if let Some(include) = ini.section("include") {
            let Some(files) = include.own("files").cloned() else {
                return Err(ini.at(
                    include.file,
                    include.line,
                    "[include] has no files = ...; name the files to include (supervisord \
                     refuses it too)",
                ));
            };
            let mut exps = base.clone();
            exps.insert("here".into(), Exp::Str(here.to_string_lossy().into_owned()));
            let patterns = expand(&files.text, &exps)
                .map_err(|e| ini.at(files.file, files.line, &format!("include.files: {e}")))?;
            for pattern in patterns.split_whitespace() {
                let joined = here.join(pattern);
                let found = glob(&joined).map_err(|e| ini.at(files.file, files.line, &e))?;
                if found.is_empty() {
                    if !pattern.contains(['*', '?', '[']) {
                        return Err(ini.at(
                            files.file,
                            files.line,
                            &format!(
                                "include.files: {} does not exist; create it, or take it out \
                                 of files (supervisord only warns, and goes on without it)",
                                joined.display()
                            ),
                        ));
                    }
                    include_notes.push(format!(
                        "[include] {pattern}: no file matches it (supervisord only warns)"
                    ));
                    continue;
                }
                for file in found {
                    let text = super::read(&file).map_err(|e| {
                        ini.at(files.file, files.line, &format!("include.files: {e}"))
                    })?;
                    let here = abspath(&file).parent().unwrap_or(Path::new("/")).to_owned();
                    let seen = ini.read(&file, here, &text)?;
                    if seen.iter().any(|s| s == "include") {
                        include_notes.push(format!(
                            "{}: its [include] is not followed: supervisord 4 reads [include] \
                             only in the main file",
                            file.display()
                        ));
                    }
                }
            }
            if ini.files.len() > 1 {
                notes.push(format!(
                    "It includes {}.",
                    ini.files[1..]
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        let mut importer = Importer {
            ini,
            base,
            global_env: Vec::new(),
            notes,
            include_notes,
        };
        if let Some(sup) = importer.ini.section("supervisord") {
            if let Some(env) = importer.ini.get(sup, "environment") {
                // supervisord expands it twice: once when it reads it, once more after.
                let exps = importer.exps_for(env, &[]);
                let pairs = expand(&env.text, &exps)
                    .and_then(|once| expand(&once, &exps))
                    .and_then(|text| key_value_pairs(&text))
                    .map_err(|e| importer.at(env, &format!("supervisord.environment: {e}")))?;
                for (k, v) in &pairs {
                    importer
                        .base
                        .insert(format!("ENV_{k}"), Exp::Str(v.clone()));
                }
                importer.global_env = pairs;
            }
        }
        if importer
            .ini
            .sections
            .iter()
            .flat_map(|s| &s.keys)
            .any(|(_, v)| v.text.contains("%(ENV_"))
        {
            importer.notes.push(
                "%(ENV_X)s were expanded with the environment of `tend import`, where \
                 supervisord expands them with its own when it starts."
                    .into(),
            );
        }
        Ok(importer)
    }

    fn at(&self, value: &Value, what: &str) -> String {
        self.ini.at(value.file, value.line, what)
    }

    /// The expansions every value has (`here` is its file's directory), and `extra`.
    fn exps_for(&self, value: &Value, extra: &[(String, Exp)]) -> Exps {
        let mut exps = self.base.clone();
        exps.insert(
            "here".into(),
            Exp::Str(self.ini.heres[value.file].to_string_lossy().into_owned()),
        );
        for (k, v) in extra {
            exps.insert(k.clone(), v.clone());
        }
        exps
    }

    /// The tend.toml.
    fn write(&self) -> Result<String, String> {
        let main = &self.ini.files[0];
        let mut out = comment(&format!(
            "Imported from {} by `tend import`; save it as tend.toml beside it.\n\
             A program's processes are [process.NAME] tables (a group's programs too: tend has\n\
             no groups). supervisord restarts a program that ran startsecs at once, and waits\n\
             1s, 2s, 3s… after each failed start; tend waits as `backoff` says (100ms, doubling\n\
             up to 30s). Each process gets TEND_PROCESS and TEND_INSTANCE in its environment\n\
             where supervisord sets SUPERVISOR_ENABLED, SUPERVISOR_PROCESS_NAME and\n\
             SUPERVISOR_GROUP_NAME.",
            main.display()
        ));
        for note in &self.notes {
            out.push_str(&comment(note));
        }
        let groups = self.groups()?;
        let mut used: HashSet<String> = HashSet::new();
        let mut tables: Vec<Table> = Vec::new();
        // Where each section's text goes: tables are written once all are known (for
        // depends_on), so sections are kept as pieces in their order.
        enum Piece {
            Text(String),
            Tables(std::ops::Range<usize>),
        }
        let mut pieces = Vec::new();
        for section in &self.ini.sections {
            let name = section.name.as_str();
            if let Some(program) = name.strip_prefix("program:") {
                let group = groups
                    .iter()
                    .find(|g| g.programs.iter().any(|p| p == program));
                let from = tables.len();
                tables.extend(self.program(section, program, group, &mut used)?);
                pieces.push(Piece::Tables(from..tables.len()));
            } else if name == "supervisord" {
                pieces.push(Piece::Text(self.supervisord(section)?));
            } else if name.starts_with("group:") {
                // Written with the names tend gives the programs, below.
                pieces.push(Piece::Text(String::new()));
            } else {
                let mut text = format!("\n{}", self.section_comment(section));
                if name == "include" {
                    for note in &self.include_notes {
                        text.push_str(&comment(note));
                    }
                }
                pieces.push(Piece::Text(text));
            }
        }
        // The group comments, now that the programs have their tend names.
        let mut group_texts = groups.iter().map(|g| {
            let members: Vec<String> = tables
                .iter()
                .filter(|t| !t.name.is_empty() && g.programs.contains(&t.program))
                .map(|t| t.name.clone())
                .collect();
            let mut text = format!(
                "\n{}",
                comment(&format!(
                    "[group:{}] programs = {}: tend has no groups; start them together with \
                     `tend start {}`{}",
                    g.name,
                    g.programs.join(","),
                    members.join(" "),
                    if g.priority_set {
                        format!(
                            " (its priority = {} orders them among the other programs: see \
                             depends_on)",
                            g.priority
                        )
                    } else {
                        String::new()
                    }
                ))
            );
            if members.is_empty() {
                text = format!(
                    "\n{}",
                    comment(&format!("[group:{}] has no programs", g.name))
                );
            }
            text
        });
        for (section, piece) in self.ini.sections.iter().zip(pieces.iter_mut()) {
            if section.name.starts_with("group:") {
                if let Some(text) = group_texts.next() {
                    *piece = Piece::Text(text);
                }
            }
        }
        let depends = depends_on(&tables);
        for piece in pieces {
            match piece {
                Piece::Text(text) => out.push_str(&text),
                Piece::Tables(range) => {
                    for (table, deps) in tables[range.clone()].iter().zip(&depends[range]) {
                        out.push('\n');
                        out.push_str(&table.body);
                        out.push_str(deps);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The `[group:x]` sections, with supervisord's checks.
    fn groups(&self) -> Result<Vec<Group>, String> {
        let mut groups: Vec<Group> = Vec::new();
        for section in &self.ini.sections {
            let Some(name) = section.name.strip_prefix("group:") else {
                continue;
            };
            let name =
                supervisor_name(name).map_err(|e| self.ini.at(section.file, section.line, &e))?;
            let (priority, priority_set) = match self.ini.get(section, "priority") {
                Some(v) => (self.integer(v, "priority", &[])?, true),
                None => (999, false),
            };
            let mut programs = Vec::new();
            if let Some(v) = self.ini.get(section, "programs") {
                let text = self.expanded(v, "programs", &[])?;
                if !text.is_empty() {
                    for program in text.split(',').map(str::trim) {
                        let plain = self.ini.section(&format!("program:{program}")).is_some();
                        let fcgi = self
                            .ini
                            .section(&format!("fcgi-program:{program}"))
                            .is_some();
                        if !plain && !fcgi {
                            return Err(self.at(
                                v,
                                &format!(
                                    "[{}] names the unknown program {program:?}; add \
                                     [program:{program}] or take it out of programs \
                                     (supervisord refuses it too)",
                                    section.name
                                ),
                            ));
                        }
                        if let Some(other) = groups
                            .iter()
                            .find(|g| g.programs.iter().any(|p| p == program))
                        {
                            return Err(self.at(
                                v,
                                &format!(
                                    "program {program:?} is in [group:{}] and [{}]: supervisord \
                                     runs it once in each, tend would need two names; list it \
                                     in one group only",
                                    other.name, section.name
                                ),
                            ));
                        }
                        programs.push(program.to_owned());
                    }
                }
            }
            groups.push(Group {
                name,
                programs,
                priority,
                priority_set,
            });
        }
        Ok(groups)
    }

    /// A value of a key expanded with the expansions every value has and `extra`, or the
    /// error at its place.
    fn expanded(&self, v: &Value, key: &str, extra: &[(String, Exp)]) -> Result<String, String> {
        expand(&v.text, &self.exps_for(v, extra)).map_err(|e| self.at(v, &format!("{key}: {e}")))
    }

    /// A key of `section`, expanded with `extra` and converted by `convert`, if it is there;
    /// an error at its place.
    fn typed<T>(
        &self,
        section: &Section,
        key: &str,
        extra: &[(String, Exp)],
        convert: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        let Some(v) = self.ini.get(section, key) else {
            return Ok(None);
        };
        let text = self.expanded(v, key, extra)?;
        convert(&text)
            .map(Some)
            .map_err(|e| self.at(v, &format!("{key}: {e}")))
    }

    fn integer(&self, v: &Value, key: &str, extra: &[(String, Exp)]) -> Result<i64, String> {
        integer(&self.expanded(v, key, extra)?).map_err(|e| self.at(v, &format!("{key}: {e}")))
    }

    /// One comment for a section tend does not carry over, listing its keys.
    fn section_comment(&self, section: &Section) -> String {
        let keys: Vec<String> = section
            .keys
            .iter()
            .map(|(k, v)| format!("{k} = {}", v.text.replace('\n', " ")))
            .collect();
        let mut text = format!(
            "[{}] is not carried over: {}.",
            section.name,
            why_section(&section.name)
        );
        if !keys.is_empty() {
            let _ = write!(text, "\nIt had: {}", keys.join("; "));
        }
        comment(&text)
    }

    /// `[supervisord]`: its umask as `[supervisor] umask`, the rest as comments.
    fn supervisord(&self, section: &Section) -> Result<String, String> {
        let mut table = String::new();
        let mut notes = Vec::new();
        for (key, v) in &section.keys {
            match key.as_str() {
                "umask" => {
                    let text = self.expanded(v, "umask", &[])?;
                    let mask = u32::from_str_radix(text.trim(), 8).map_err(|_| {
                        self.at(
                            v,
                            &format!("umask: {text:?} is not an octal number such as 022"),
                        )
                    })?;
                    if mask > 0o777 {
                        notes.push(format!("umask = {text}: more than 777, not carried over"));
                    } else {
                        let _ = writeln!(table, "umask = \"{mask:03o}\"");
                    }
                }
                "environment" => notes.push(format!(
                    "environment = {}: set in the env of every process below",
                    v.text
                )),
                "directory" => notes.push(format!(
                    "directory = {}: supervisord changes to it when it daemonizes; a program \
                     without a directory runs in tend's working directory",
                    v.text
                )),
                "logfile" | "logfile_maxbytes" | "logfile_backups" | "loglevel" | "silent" => notes
                    .push(format!(
                        "{key} = {}: tend writes its own log, tend.log in log_dir",
                        v.text
                    )),
                "childlogdir" => notes.push(format!(
                    "childlogdir = {}: tend keeps the processes' logs in log_dir (default \
                     .tend/logs beside this file)",
                    v.text
                )),
                "nodaemon" => notes.push(format!(
                    "nodaemon = {}: `tend up` runs in the foreground; `tend up -d` daemonizes",
                    v.text
                )),
                "user" => notes.push(format!(
                    "user = {}: tend does not switch users; run tend as that user",
                    v.text
                )),
                _ => notes.push(format!("{key} = {}: tend has no such setting", v.text)),
            }
        }
        let mut out = String::new();
        if !table.is_empty() {
            out.push_str("\n[supervisor]\n");
            out.push_str(&table);
        }
        if !notes.is_empty() {
            out.push('\n');
            out.push_str(&comment(&format!(
                "[supervisord] is not carried over but for its umask:\n{}",
                notes.join("\n")
            )));
        }
        Ok(out)
    }

    /// The `[process.NAME]` tables of `[program:NAME]`.
    fn program(
        &self,
        section: &Section,
        program: &str,
        group: Option<&Group>,
        used: &mut HashSet<String>,
    ) -> Result<Vec<Table>, String> {
        let sec_err = |what: &str| self.ini.at(section.file, section.line, what);
        let program_name = supervisor_name(program).map_err(|e| sec_err(&e))?;
        let group_name = group.map_or(program_name.clone(), |g| g.name.clone());
        let common = vec![
            ("program_name".to_owned(), Exp::Str(program_name.clone())),
            ("group_name".to_owned(), Exp::Str(group_name.clone())),
        ];
        let get = |key: &str| self.ini.get(section, key);
        let priority = self
            .typed(section, "priority", &common, integer)?
            .unwrap_or(999);
        let tier = (group.map_or(priority, |g| g.priority), priority);
        let autostart = self
            .typed(section, "autostart", &common, boolean)?
            .unwrap_or(true);
        let numprocs = self
            .typed(section, "numprocs", &common, integer)?
            .unwrap_or(1);
        let numprocs_start = self
            .typed(section, "numprocs_start", &common, integer)?
            .unwrap_or(0);
        let stopasgroup = self
            .typed(section, "stopasgroup", &common, boolean)?
            .unwrap_or(false);
        let killasgroup = self
            .typed(section, "killasgroup", &common, boolean)?
            .unwrap_or(stopasgroup);
        if stopasgroup && !killasgroup {
            return Err(self.at(
                get("killasgroup").expect("set"),
                "killasgroup = false with stopasgroup = true; supervisord refuses it: set \
                 killasgroup = true",
            ));
        }
        let process_name_raw =
            get("process_name").map_or("%(program_name)s".to_owned(), |v| v.text.clone());
        let process_name = supervisor_name(&process_name_raw)
            .map_err(|e| get("process_name").map_or_else(|| sec_err(&e), |v| self.at(v, &e)))?;
        if numprocs > 1 && !process_name.contains("%(process_num)") {
            return Err(get("numprocs").map_or_else(
                || sec_err("numprocs"),
                |v| {
                    self.at(
                        v,
                        "numprocs > 1 needs %(process_num) in process_name (supervisord \
                         refuses it too); add process_name = %(program_name)s_%(process_num)02d",
                    )
                },
            ));
        }
        if numprocs > 10000 {
            return Err(self.at(
                get("numprocs").expect("set"),
                &format!("numprocs = {numprocs}: tend runs at most 10000 instances of a process; lower it"),
            ));
        }
        let Some(command_value) = get("command") else {
            return Err(sec_err(&format!(
                "[{}] has no command; add command = the program and its arguments \
                 (supervisord refuses it too)",
                section.name
            )));
        };
        if numprocs < 1 {
            return Ok(vec![Table {
                name: String::new(),
                program: program_name,
                body: comment(&format!(
                    "[{}] numprocs = {numprocs}: supervisord runs no process of it",
                    section.name
                )),
                tier,
                autostart: false,
            }]);
        }
        let Some(numprocs_end) = numprocs_start.checked_add(numprocs) else {
            return Err(self.at(
                get("numprocs_start").expect("set, since numprocs is at most 10000"),
                &format!(
                    "numprocs_start = {numprocs_start}: the process numbers would not fit in \
                     a 64-bit integer; lower it"
                ),
            ));
        };
        let per_process = ["command", "directory", "environment"]
            .iter()
            .any(|k| get(k).is_some_and(|v| v.text.contains("%(process_num)")));
        let nums: Vec<i64> = if per_process {
            (numprocs_start..numprocs_end).collect()
        } else {
            vec![numprocs_start]
        };
        // The settings all its processes share.
        let shared = self.shared_keys(section, &common, stopasgroup, killasgroup)?;
        let mut tables = Vec::new();
        for num in nums {
            let mut extra = common.clone();
            extra.push(("process_num".to_owned(), Exp::Int(num)));
            extra.push(("numprocs".to_owned(), Exp::Int(numprocs)));
            let mut env = self.global_env.clone();
            if let Some(v) = get("environment") {
                let text = expand(&v.text, &self.exps_for(v, &extra))
                    .and_then(|t| key_value_pairs(&t))
                    .map_err(|e| self.at(v, &format!("environment: {e}")))?;
                for (k, val) in text {
                    extra.push((format!("ENV_{k}"), Exp::Str(val.clone())));
                    match env.iter_mut().find(|(key, _)| *key == k) {
                        Some(slot) => slot.1 = val,
                        None => env.push((k, val)),
                    }
                }
            }
            let directory = get("directory")
                .map(|v| self.expanded(v, "directory", &extra))
                .transpose()?;
            let command_text = self.expanded(command_value, "command", &extra)?;
            let argv = shlex_split(&command_text).map_err(|e| {
                self.at(
                    command_value,
                    &format!(
                        "command: {e} in {command_text:?}; supervisord could not run it either: \
                         fix its quoting (a ; or # after a space starts a comment in \
                         supervisord's files, even in quotes)"
                    ),
                )
            })?;
            if argv.is_empty() {
                return Err(self.at(command_value, "command is empty; name the program to run"));
            }
            let sup_name = expand(
                &process_name,
                &self.exps_for(get("process_name").unwrap_or(command_value), &extra),
            )
            .map_err(|e| sec_err(&format!("process_name: {e}")))?;
            let wanted = if per_process || numprocs == 1 {
                tend_name(&sup_name)
            } else {
                tend_name(&program_name)
            };
            let mut name = wanted.clone();
            let mut n = 2;
            while !used.insert(name.clone()) {
                name = format!("{wanted}_{n}");
                n += 1;
            }
            let mut body = String::new();
            let mut head = format!("[{}]", section.name);
            if group.is_some() {
                let _ = write!(head, " in [group:{group_name}]");
            }
            if per_process || numprocs == 1 {
                if sup_name != name {
                    let _ = write!(head, ": supervisord's process {sup_name}");
                }
            } else {
                let names: Vec<String> = (numprocs_start..numprocs_end)
                    .map(|num| {
                        let mut e = extra.clone();
                        e.retain(|(k, _)| k != "process_num");
                        e.push(("process_num".to_owned(), Exp::Int(num)));
                        expand(&process_name, &self.exps_for(command_value, &e)).unwrap_or_default()
                    })
                    .collect();
                let _ = write!(
                    head,
                    ": numprocs = {numprocs}, as replicas {name}.0 … {name}.{} (supervisord's {})",
                    numprocs - 1,
                    names.join(", ")
                );
            }
            body.push_str(&comment(&head));
            let _ = writeln!(body, "[process.{name}]");
            let _ = writeln!(body, "command = {}", toml_array(&argv));
            match &directory {
                Some(dir) if Path::new(dir).is_absolute() => {
                    let _ = writeln!(body, "cwd = {}", toml_string(dir));
                }
                Some(dir) => {
                    body.push_str(&comment(&format!(
                        "directory = {dir}: supervisord resolves it against its own working \
                         directory, tend against this file's directory"
                    )));
                    let _ = writeln!(body, "cwd = {}", toml_string(dir));
                }
                None => {}
            }
            let (good, bad): (Vec<_>, Vec<_>) = env.iter().partition(|(k, _)| valid_env_name(k));
            if !good.is_empty() {
                let entries: Vec<String> = good
                    .iter()
                    .map(|(k, v)| format!("{k} = {}", toml_string(v)))
                    .collect();
                let _ = writeln!(body, "env = {{ {} }}", entries.join(", "));
            }
            for (k, v) in bad {
                body.push_str(&comment(&format!(
                    "environment {k}={v}: not carried over: tend takes variable names of \
                     letters, digits and _, not starting with a digit"
                )));
            }
            if numprocs > 1 && !per_process {
                let _ = writeln!(body, "replicas = {numprocs}");
            }
            body.push_str(&shared);
            tables.push(Table {
                name,
                program: program_name.clone(),
                body,
                tier,
                autostart,
            });
        }
        Ok(tables)
    }

    /// The lines of a program's table that do not depend on its process number.
    fn shared_keys(
        &self,
        section: &Section,
        common: &[(String, Exp)],
        stopasgroup: bool,
        killasgroup: bool,
    ) -> Result<String, String> {
        let mut body = String::new();
        let get = |key: &str| self.ini.get(section, key);
        let typed = |key: &str, convert: fn(&str) -> Result<i64, String>| {
            self.typed(section, key, common, convert)
        };
        let text_of = |key: &str| self.typed(section, key, common, |t| Ok(t.to_owned()));
        if let Some(autostart) = self.typed(section, "autostart", common, boolean)? {
            let _ = writeln!(body, "autostart = {autostart}");
        }
        let restart = match self.typed(section, "autorestart", common, auto_restart)? {
            Some(restart) => restart,
            None => {
                body.push_str(&comment("autorestart = unexpected (supervisord's default)"));
                "on-failure"
            }
        };
        if restart == "never" {
            body.push_str(&comment(
                "autorestart = false: supervisord still retries a start that fails before \
                 startsecs (startretries times); tend does not restart it at all",
            ));
        }
        let _ = writeln!(body, "restart = \"{restart}\"");
        if let Some(codes) = self.typed(section, "exitcodes", common, exit_codes)? {
            let list: Vec<String> = codes.iter().map(i64::to_string).collect();
            let _ = writeln!(body, "success_codes = [{}]", list.join(", "));
        }
        match typed("startsecs", integer)? {
            Some(n) if n >= 0 => {
                let _ = writeln!(body, "start_secs = \"{n}s\"");
            }
            Some(n) => body.push_str(&comment(&format!(
                "startsecs = {n}: negative, not carried over"
            ))),
            None => {}
        }
        let retries = typed("startretries", integer)?.unwrap_or(3);
        if (0..=1_000_000).contains(&retries) {
            body.push_str(&comment(&format!(
                "startretries = {retries}{}: supervisord gives up after {retries} failed starts \
                 in a row (runs shorter than startsecs), and restarts a program that ran longer \
                 for ever; tend gives up after {retries} restarts within max_restarts.within, \
                 however long the runs were",
                if get("startretries").is_none() {
                    " (supervisord's default)"
                } else {
                    ""
                }
            )));
            let _ = writeln!(
                body,
                "max_restarts = {{ count = {retries}, within = \"60s\" }}"
            );
        } else {
            body.push_str(&comment(&format!(
                "startretries = {retries}: out of tend's range (0 to 1000000), not carried over"
            )));
        }
        if let Some(t) = text_of("stopsignal")? {
            match self.typed(section, "stopsignal", common, stop_signal)? {
                Some(Ok(name)) => {
                    let _ = writeln!(body, "stop_signal = \"{name}\"");
                }
                Some(Err(why)) => body.push_str(&comment(&format!(
                    "stopsignal = {t}: {why}; tend sends SIGTERM"
                ))),
                None => {}
            }
        }
        match typed("stopwaitsecs", integer)? {
            Some(n) if n >= 0 => {
                let _ = writeln!(body, "stop_timeout = \"{n}s\"");
            }
            Some(n) => body.push_str(&comment(&format!(
                "stopwaitsecs = {n}: negative, not carried over"
            ))),
            None => {}
        }
        if !stopasgroup || !killasgroup {
            body.push_str(&comment(&format!(
                "stopasgroup = {stopasgroup}, killasgroup = {killasgroup}: supervisord signals \
                 only the program's own process{}; tend always signals its whole process group",
                if killasgroup { " to stop it" } else { "" }
            )));
        }
        // The log: tend's size and count of rotated files are for both streams.
        let mut log_notes = Vec::new();
        match typed("stdout_logfile_maxbytes", byte_size)? {
            Some(n) if n > 0 => {
                let _ = writeln!(body, "log.max_size = {n}");
            }
            Some(_) => log_notes.push(
                "stdout_logfile_maxbytes = 0: supervisord never rotates; tend always does"
                    .to_owned(),
            ),
            None => {}
        }
        match typed("stdout_logfile_backups", integer)? {
            Some(n @ 0..=1000) => {
                let _ = writeln!(body, "log.keep = {n}");
            }
            Some(n) => log_notes.push(format!(
                "stdout_logfile_backups = {n}: out of tend's range (0 to 1000)"
            )),
            None => {}
        }
        for key in ["stderr_logfile_maxbytes", "stderr_logfile_backups"] {
            if let Some(v) = get(key) {
                log_notes.push(format!(
                    "{key} = {}: tend's log.max_size and log.keep are for stdout and stderr \
                     alike (from stdout_logfile_*)",
                    v.text
                ));
            }
        }
        for note in log_notes {
            body.push_str(&comment(&note));
        }
        if let Some(user) = get("user") {
            let name = self.expanded(user, "user", common)?;
            let usable = tend_os::users::effective_uid() == 0
                && tend_os::users::user_by_name(&name).is_ok_and(|u| u.is_some());
            let line = format!("user = {}\n", super::toml_string(&name));
            if usable {
                body.push_str(&line);
            } else {
                // The output must pass `tend check` here, where it cannot run as that user.
                body.push_str(&comment(&format!(
                    "{line}(uncomment where tend runs as root and the user exists: not here)"
                )));
            }
        }
        if let Some(v) = get("umask") {
            let text = self.expanded(v, "umask", common)?;
            match u32::from_str_radix(text.trim(), 8) {
                Ok(mask) if mask <= 0o777 => {
                    let _ = writeln!(body, "umask = \"{mask:03o}\"");
                }
                _ => body.push_str(&comment(&format!(
                    "umask = {text}: not an octal mask of at most 777, not carried over"
                ))),
            }
        }
        for (key, v) in &section.keys {
            if let Some(why) = why_not(key) {
                body.push_str(&comment(&format!("{key} = {}: {why}", v.text)));
            } else if !PROGRAM_KEYS.contains(&key.as_str()) {
                body.push_str(&comment(&format!(
                    "{key} = {}: not a supervisord program key; supervisord ignores it",
                    v.text
                )));
            }
        }
        Ok(body)
    }
}

/// A `[group:x]`.
struct Group {
    name: String,
    /// The supervisord names of its programs.
    programs: Vec<String>,
    priority: i64,
    priority_set: bool,
}

/// Whether tend takes `name` as an environment variable name.
fn valid_env_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The `depends_on` line of each table: the order supervisord starts programs in, by priority.
/// A table that starts by itself depends on every one of the next lower tier that does (so
/// tend starts them first and stops them last); when every tier is the same, nothing.
fn depends_on(tables: &[Table]) -> Vec<String> {
    let mut tiers: Vec<Tier> = tables
        .iter()
        .filter(|t| t.autostart)
        .map(|t| t.tier)
        .collect();
    tiers.sort_unstable();
    tiers.dedup();
    tables
        .iter()
        .map(|table| {
            if !table.autostart || tiers.len() < 2 {
                return String::new();
            }
            let Some(lower) = tiers.iter().rev().find(|t| **t < table.tier) else {
                return String::new();
            };
            let names: Vec<String> = tables
                .iter()
                .filter(|t| t.autostart && t.tier == *lower)
                .map(|t| format!("{} = \"started\"", t.name))
                .collect();
            let describe = |(group, own): Tier| {
                if group == own {
                    format!("priority {own}")
                } else {
                    format!("group priority {group}, priority {own}")
                }
            };
            format!(
                "{}depends_on = {{ {} }}\n",
                comment(&format!(
                    "{}: supervisord starts it after the programs of {}, and stops it before them",
                    describe(table.tier),
                    describe(*lower)
                )),
                names.join(", ")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Imports `files` (the first is the main one) written in a temp dir, with `HOME=/home/u`
    /// as the environment; returns the output and the dir.
    fn import_files(files: &[(&str, &str)]) -> (Result<String, String>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let environ = [("HOME".to_owned(), "/home/u".to_owned())];
        let main = dir.path().join(files[0].0);
        let out = Importer::read(&main, &environ, "box").and_then(|i| i.write());
        (out, dir)
    }

    /// The output for `text` as the main file, checked by tend's own loader.
    fn import_ok(text: &str) -> String {
        let (out, dir) = import_files(&[("supervisord.conf", text)]);
        let out = out.unwrap();
        let path = dir.path().join("tend.toml");
        std::fs::write(&path, &out).unwrap();
        if let Err(e) = crate::config::load(&path) {
            panic!("{e}\n{out}");
        }
        out
    }

    fn import_err(text: &str) -> String {
        import_files(&[("supervisord.conf", text)]).0.unwrap_err()
    }

    fn ini(text: &str) -> Ini {
        let mut ini = Ini::default();
        ini.read(Path::new("s.conf"), PathBuf::from("/"), text)
            .unwrap();
        ini
    }

    fn value<'a>(ini: &'a Ini, section: &str, key: &str) -> &'a str {
        &ini.section(section).unwrap().own(key).unwrap().text
    }

    #[test]
    fn ini_reads_as_configparser_does() {
        let ini = ini("; comment\n# comment\n[program:a]\nCommand = x ; inline\n\
             Dir: /a;b #c\n  more #not\n\n  after-blank\nk=v\n[program:a]\nk = w\n");
        assert_eq!(value(&ini, "program:a", "command"), "x");
        assert_eq!(value(&ini, "program:a", "dir"), "/a;b\nmore\n\nafter-blank");
        // A section written again is merged into the first; the key takes the last value.
        assert_eq!(ini.sections.len(), 1);
        assert_eq!(value(&ini, "program:a", "k"), "w");
        assert_eq!(ini.section("program:a").unwrap().keys.len(), 3);
    }

    #[test]
    fn ini_comment_rounds_follow_python() {
        assert_eq!(comment_start("a = b ; c"), Some(6));
        assert_eq!(comment_start("a = b;c #d"), Some(8));
        assert_eq!(comment_start("   ; all"), Some(0));
        assert_eq!(comment_start("a = 'x #y'"), Some(7));
        assert_eq!(comment_start("a = b#c"), None);
    }

    #[test]
    fn ini_errors_name_file_and_line() {
        let mut ini = Ini::default();
        let e = ini
            .read(
                Path::new("s.conf"),
                PathBuf::from("/"),
                "[a]\nk = v\nnonsense\n",
            )
            .unwrap_err();
        assert!(e.starts_with("s.conf:3: \"nonsense\" is not"), "{e}");
        let e = Ini::default()
            .read(Path::new("s.conf"), PathBuf::from("/"), "k = v\n")
            .unwrap_err();
        assert!(e.starts_with("s.conf:1: a key before any [section]"), "{e}");
    }

    #[test]
    fn expansions_are_python_percent_formats() {
        let mut exps = Exps::new();
        exps.insert("process_num".into(), Exp::Int(3));
        exps.insert("program_name".into(), Exp::Str("web".into()));
        let x = |t: &str| expand(t, &exps);
        assert_eq!(x("%(program_name)s_%(process_num)02d").unwrap(), "web_03");
        assert_eq!(
            x("%(process_num)s %(process_num)d %(process_num)3d|").unwrap(),
            "3 3   3|"
        );
        assert_eq!(x("%(process_num)-3d|%(process_num)+d").unwrap(), "3  |+3");
        assert_eq!(x("100%% %(program_name).2s").unwrap(), "100% we");
        assert!(x("%(nope)s")
            .unwrap_err()
            .contains("%(nope) cannot be expanded"));
        assert!(x("%(ENV_NOPE)s")
            .unwrap_err()
            .contains("NOPE, which is not set"));
        assert!(x("%(program_name)d")
            .unwrap_err()
            .contains("needs a number"));
        assert!(x("50%").unwrap_err().contains("write %%"));
        assert!(x("%(program_name)").unwrap_err().contains("incomplete"));
    }

    #[test]
    fn commands_split_as_shlex_split() {
        let s = |t: &str| shlex_split(t).unwrap();
        assert_eq!(
            s("/bin/sh -c 'echo $0; x' a"),
            ["/bin/sh", "-c", "echo $0; x", "a"]
        );
        assert_eq!(
            s(r#"a"b c"d '' "x\"y\$z" e\ f"#),
            ["ab cd", "", "x\"y\\$z", "e f"]
        );
        assert_eq!(s("a\n  b # c"), ["a", "b", "#", "c"]);
        assert!(shlex_split("'open").is_err());
        assert!(shlex_split("end\\").is_err());
    }

    #[test]
    fn environment_reads_as_supervisord_does() {
        let kv = |t: &str| key_value_pairs(t).unwrap();
        assert_eq!(
            kv(r#"A="x, y",B=/usr/bin:/bin,C='q',A2=1.5"#),
            [
                ("A".to_owned(), "x, y".to_owned()),
                ("B".to_owned(), "/usr/bin:/bin".to_owned()),
                ("C".to_owned(), "q".to_owned()),
                ("A2".to_owned(), "1.5".to_owned()),
            ]
        );
        assert_eq!(kv("A=1,A=2"), [("A".to_owned(), "2".to_owned())]);
        assert!(key_value_pairs("A=b@c").is_err());
        assert!(key_value_pairs("A=").is_err());
    }

    #[test]
    fn globs_match_as_fnmatch() {
        let m = |n: &str, p: &str| {
            fnmatch(
                &n.chars().collect::<Vec<_>>(),
                &p.chars().collect::<Vec<_>>(),
            )
        };
        assert!(m("a.conf", "*.conf"));
        assert!(!m("a.ini", "*.conf"));
        assert!(m("a1", "a?"));
        assert!(m("b", "[a-c]"));
        assert!(!m("b", "[!a-c]"));
        assert!(m("]", "[]]"));
        assert!(m("[x", "[x"));
        assert!(m("web.conf", "*e*.c*f"));
        assert!(!m("web.conf", "*e*.c*x"));
        assert!(m("", "**"));
        // Going back only to the last `*`: this took minutes when every `*` tried every split.
        let name = format!("{}b", "a".repeat(60));
        assert!(!m(&name, &format!("{}a", "*".repeat(30))));
        assert!(m(&name, &format!("{}b", "*a".repeat(30))));
    }

    #[test]
    fn absurd_numbers_and_bytes_are_errors_not_crashes() {
        let e = import_err(
            "[program:q]\ncommand = x %(process_num)d\nprocess_name = q%(process_num)d\n\
             numprocs = 2\nnumprocs_start = 9223372036854775807\n",
        );
        assert!(e.contains("supervisord.conf:5: numprocs_start"), "{e}");
        let e = import_err("[program:q]\ncommand = x %(program_name)0999999999999s\n");
        assert!(e.contains("at most 10000"), "{e}");
        let e = import_err("[program:q]\ncommand = x\0y\n");
        assert!(e.contains("supervisord.conf:2: a NUL character"), "{e}");
    }

    #[test]
    fn a_program_maps_to_a_process() {
        let out = import_ok(
            "[program:web]\ncommand = /bin/sh -c 'exec \"$0\"' %(program_name)s\n\
             directory = %(here)s/app\nenvironment = HOME_DIR=\"%(ENV_HOME)s\",HOST=%(host_node_name)s\n\
             autostart = false\nautorestart = true\nexitcodes = 0,2\nstartsecs = 5\n\
             startretries = 7\nstopsignal = INT\nstopwaitsecs = 30\nstopasgroup = true\n\
             user = nobody\nstdout_logfile_maxbytes = 1KB\nstdout_logfile_backups = 2\nbogus = 1\n",
        );
        assert!(
            out.contains(r#"command = ["/bin/sh", "-c", "exec \"$0\"", "web"]"#),
            "{out}"
        );
        assert!(out.contains("/app\"\n"), "{out}");
        assert!(
            out.contains(r#"env = { HOME_DIR = "/home/u", HOST = "box" }"#),
            "{out}"
        );
        for line in [
            "autostart = false",
            "restart = \"always\"",
            "success_codes = [0, 2]",
            "start_secs = \"5s\"",
            "max_restarts = { count = 7, within = \"60s\" }",
            "stop_signal = \"SIGINT\"",
            "stop_timeout = \"30s\"",
            "log.max_size = 1024",
            "log.keep = 2",
            // nobody is on every system: carried over as is where tend is root, else as a
            // comment (the output must pass `tend check` here).
            if tend_os::users::effective_uid() == 0 {
                "\nuser = \"nobody\"\n"
            } else {
                "# user = \"nobody\"\n"
            },
            "# bogus = 1: not a supervisord program key",
        ] {
            assert!(out.contains(line), "{line}: {out}");
        }
        assert!(!out.contains("stopasgroup = false"), "{out}");
    }

    #[test]
    fn defaults_are_supervisords() {
        let out = import_ok("[program:a]\ncommand = sleep 1\n");
        assert!(out.contains("restart = \"on-failure\""), "{out}");
        assert!(out.contains("max_restarts = { count = 3,"), "{out}");
        assert!(
            out.contains("# stopasgroup = false, killasgroup = false"),
            "{out}"
        );
        assert!(!out.contains("depends_on"), "{out}");
    }

    #[test]
    fn numprocs_use_replicas_unless_the_number_is_used() {
        let out = import_ok(
            "[program:celery]\ncommand = celery worker\nnumprocs = 3\n\
             process_name = %(program_name)s_%(process_num)02d\n",
        );
        assert!(out.contains("[process.celery]\n"), "{out}");
        assert!(out.contains("replicas = 3"), "{out}");
        assert!(out.contains("celery_00, celery_01, celery_02"), "{out}");
    }

    #[test]
    fn numprocs_per_process_names() {
        let out = import_ok(
            "[program:q]\ncommand = worker --n %(process_num)d of %(numprocs)d\nnumprocs = 2\n\
             numprocs_start = 5\nprocess_name = q.%(process_num)d\n",
        );
        assert!(
            out.contains("[process.q_5]\ncommand = [\"worker\", \"--n\", \"5\", \"of\", \"2\"]"),
            "{out}"
        );
        assert!(
            out.contains("[process.q_6]\ncommand = [\"worker\", \"--n\", \"6\", \"of\", \"2\"]"),
            "{out}"
        );
        assert!(out.contains("supervisord's process q.5"), "{out}");
        let e = import_err("[program:q]\ncommand = w\nnumprocs = 2\n");
        assert!(
            e.contains("supervisord.conf:3: numprocs > 1 needs %(process_num)"),
            "{e}"
        );
        let e = import_err("[program:q]\ncommand = w\nprocess_name = a:b\n");
        assert!(
            e.contains("supervisord.conf:3:") && e.contains("':'"),
            "{e}"
        );
    }

    #[test]
    fn priorities_become_depends_on() {
        let out = import_ok(
            "[program:db]\ncommand = db\npriority = 1\n[program:cache]\ncommand = c\npriority = 1\n\
             [program:web]\ncommand = w\n[program:manual]\ncommand = m\nautostart = false\n\
             priority = 0\n[program:late]\ncommand = l\npriority = 2000\n",
        );
        let web = out.split("[process.web]").nth(1).unwrap();
        assert!(
            web.contains("depends_on = { db = \"started\", cache = \"started\" }"),
            "{out}"
        );
        let late = out.split("[process.late]").nth(1).unwrap();
        assert!(late.contains("depends_on = { web = \"started\" }"), "{out}");
        let db = out.split("[process.db]").nth(1).unwrap();
        assert!(
            !db.split("[process.").next().unwrap().contains("depends_on"),
            "{out}"
        );
        let manual = out.split("[process.manual]").nth(1).unwrap();
        assert!(
            !manual
                .split("[process.")
                .next()
                .unwrap()
                .contains("depends_on"),
            "{out}"
        );
    }

    #[test]
    fn groups_are_comments_and_their_priority_counts() {
        let out = import_ok(
            "[group:app]\nprograms = web, worker\npriority = 10\n[program:web]\ncommand = w\n\
             priority = 500\n[program:worker]\ncommand = k\npriority = 600\n\
             [program:other]\ncommand = o\npriority = 100\n",
        );
        assert!(
            out.contains("start them together with `tend start web worker`"),
            "{out}"
        );
        // The group's 10 puts web and worker before other (100), worker after web.
        let other = out.split("[process.other]").nth(1).unwrap();
        assert!(
            other.contains("depends_on = { worker = \"started\" }"),
            "{out}"
        );
        let worker = out.split("[process.worker]").nth(1).unwrap();
        assert!(
            worker.contains("depends_on = { web = \"started\" }"),
            "{out}"
        );
        let e = import_err("[group:g]\nprograms = nope\n");
        assert!(
            e.contains("supervisord.conf:2: [group:g] names the unknown program"),
            "{e}"
        );
    }

    #[test]
    fn sections_tend_has_not_are_one_comment_each() {
        let out = import_ok(
            "[supervisord]\nlogfile = /x.log\numask = 027\n[unix_http_server]\nfile = /s\n\
             [inet_http_server]\nport = 127.0.0.1:9001\n[supervisorctl]\nserverurl = unix:///s\n\
             [rpcinterface:supervisor]\nx = y\n[eventlistener:e]\ncommand = e\n\
             [fcgi-program:f]\ncommand = f\n[program:a]\ncommand = a\n",
        );
        assert!(out.contains("[supervisor]\numask = \"027\"\n"), "{out}");
        for section in [
            "[supervisord] is not carried over but for its umask",
            "[unix_http_server] is not carried over",
            "[inet_http_server] is not carried over",
            "[supervisorctl] is not carried over",
            "[rpcinterface:supervisor] is not carried over",
            "[eventlistener:e] is not carried over",
            "[fcgi-program:f] is not carried over",
        ] {
            assert_eq!(out.matches(section).count(), 1, "{section}: {out}");
        }
    }

    #[test]
    fn includes_are_read_in_order_with_their_here() {
        let (out, dir) = import_files(&[
            (
                "supervisord.conf",
                "[include]\nfiles = conf.d/*.conf extra.ini none/*.conf\n",
            ),
            ("conf.d/b.conf", "[program:b]\ncommand = b %(here)s\n"),
            (
                "conf.d/a.conf",
                "[program:a]\ncommand = a\n[include]\nfiles = ../x.conf\n",
            ),
            ("conf.d/.hidden.conf", "[program:h]\ncommand = h\n"),
            ("extra.ini", "[program:c]\ncommand = c %(here)s\n"),
            ("x.conf", "[program:x]\ncommand = x\n"),
        ]);
        let out = out.unwrap();
        let d = dir.path().display().to_string();
        let order: Vec<usize> = ["[process.a]", "[process.b]", "[process.c]"]
            .iter()
            .map(|p| out.find(p).unwrap_or_else(|| panic!("{p}: {out}")))
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{out}");
        assert!(out.contains(&format!("[\"b\", \"{d}/conf.d\"]")), "{out}");
        assert!(out.contains(&format!("[\"c\", \"{d}\"]")), "{out}");
        assert!(
            !out.contains("[process.h]") && !out.contains("[process.x]"),
            "{out}"
        );
        assert!(out.contains("its [include] is not followed"), "{out}");
        assert!(out.contains("none/*.conf: no file matches it"), "{out}");
        let (e, _) = import_files(&[(
            "s.conf",
            "[program:a]\ncommand = a\n[include]\nfiles = missing.conf\n",
        )]);
        let e = e.unwrap_err();
        assert!(
            e.contains("s.conf:4: include.files:") && e.contains("missing.conf does not exist"),
            "{e}"
        );
        let (e, _) = import_files(&[
            ("s.conf", "[include]\nfiles = a.conf\n"),
            ("a.conf", "[program:a]\ncommand = a %(nope)s\n"),
        ]);
        let e = e.unwrap_err();
        assert!(
            e.contains("a.conf:2: command: %(nope) cannot be expanded"),
            "{e}"
        );
    }

    #[test]
    fn names_are_made_valid_and_unique() {
        let out = import_ok(
            "[program:web.api]\ncommand = a\n[program:web_api]\ncommand = b\n\
             [program:all]\ncommand = c\n[program:_x]\ncommand = d\n",
        );
        for name in [
            "[process.web_api]",
            "[process.web_api_2]",
            "[process.all_]",
            "[process.p_x]",
        ] {
            assert!(out.contains(name), "{name}: {out}");
        }
    }

    #[test]
    fn errors_say_where_and_what_to_do() {
        let e = import_err("[program:a]\ncommand = a\nautostart = maybe\n");
        assert!(
            e.contains("supervisord.conf:3: autostart: \"maybe\" is not a boolean"),
            "{e}"
        );
        let e = import_err("[program:a]\ncommand = sh -c 'open\n");
        assert!(
            e.contains("supervisord.conf:2: command: no closing quotation"),
            "{e}"
        );
        let e = import_err("[program:a]\ndirectory = /\n");
        assert!(
            e.contains("supervisord.conf:1: [program:a] has no command"),
            "{e}"
        );
        let e = import_err("[program:a]\ncommand = %(ENV_TEND_SURELY_UNSET)s\n");
        assert!(e.contains("TEND_SURELY_UNSET, which is not set"), "{e}");
    }

    #[test]
    fn dispatch_names_the_formats() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.conf");
        std::fs::write(&path, "[supervisord]\n").unwrap();
        let e = super::super::import(&path).unwrap_err();
        assert!(e.contains("Procfile") && e.contains("supervisord"), "{e}");
        std::fs::write(&path, "[program:a]\ncommand = a\n").unwrap();
        assert!(super::super::import(&path).unwrap().contains("[process.a]"));
    }
}
