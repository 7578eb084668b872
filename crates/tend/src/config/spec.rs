//! The meaning of each key: from the checked tree to a [`Spec`], defaults applied.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tend_core::SupervisorSpec;
use tend_core::{Backoff, LogSpec, MaxRestarts, OnExit, ProcessSpec, RestartPolicy, Signal, Spec};
use tend_proto::Stream;

use super::depends;
use super::env_file;
use super::error::ConfigError;
use super::identity;
use super::probes;
use super::read::{Field, Source, Table};
use super::tree::{self, Kind};
use super::units::format_duration;

type Result<T> = std::result::Result<T, ConfigError>;

const TOP_KEYS: &[&str] = &["supervisor", "process", "http"];
const SUPERVISOR_KEYS: &[&str] = &["log_dir", "stop_timeout", "umask", "cgroups"];
/// The most instances one process may have: each holds two pipes and a few hundred bytes, and
/// a typo (an extra zero or three) must be an error, not an attempt to run them all.
const MAX_REPLICAS: i64 = 10_000;
/// The most rotated files kept per log: each rotation renames every one of them on the
/// driver's thread, so a million would stall it.
const MAX_KEEP: u32 = 1_000;
/// The largest `max_restarts.count`: tend remembers the time of each restart within the
/// window (16 bytes each), at most `count` of them per instance. A million covers the "never
/// give up" habit (supervisord's `startretries = 1000000`); the 4 billion of a typo does not.
const MAX_RESTART_COUNT: u32 = 1_000_000;
/// The longest file name Linux file systems accept (`NAME_MAX`), in bytes.
const NAME_MAX: usize = 255;
const PROCESS_KEYS: &[&str] = &[
    "command",
    "shell",
    "cwd",
    "env",
    "env_file",
    "replicas",
    "autostart",
    "restart",
    "success_codes",
    "start_secs",
    "backoff",
    "max_restarts",
    "stop_signal",
    "stop_timeout",
    "log",
    "on_exit",
    "ready",
    "health",
    "depends_on",
    "restart_with",
    "interactive",
    "port",
    "retry_after",
    "user",
    "group",
    "groups",
    "umask",
    "rlimits",
    "nice",
    "oom_score_adj",
    "memory_limit",
    "memory_limit_for",
    "memory_max",
    "cpu_max",
    "pids_max",
];

/// Characters with which a shell joins or groups commands.
const SHELL_CONTROL: &[char] = &[';', '&', '|', '(', ')', '\n'];
/// Characters that mean something only to a shell, so are a mistake in a command without one.
/// (A newline is fine there: it separates words, so a long command can be wrapped.)
const SHELL_SYNTAX: &[char] = &[';', '&', '|', '(', ')', '<', '>', '`'];
/// Words that `exec` cannot precede: those that start a compound command, and the builtins
/// that exist only inside a shell (`exec exit 1` fails: there is no program `exit`).
const NOT_EXECUTABLE: &[&str] = &[
    "if", "for", "while", "until", "case", "{", "!", "[[", ".", ":", "alias", "bg", "break", "cd",
    "command", "continue", "eval", "exec", "exit", "export", "fg", "getopts", "hash", "jobs",
    "local", "read", "readonly", "return", "set", "shift", "source", "times", "trap", "type",
    "ulimit", "umask", "unalias", "unset", "wait",
];

/// Builds the spec of a config file's text, and its `[http]` settings; relative paths resolve
/// against `base`.
pub(super) fn build(src: &Source<'_>, base: &Path) -> Result<(Spec, Option<super::HttpSpec>)> {
    let root = tree::parse(src.text).map_err(|e| syntax_error(src, &e))?;
    let root = Field::root(src, &root).table()?;
    root.allow(TOP_KEYS)?;
    let supervisor = supervisor(root.get("supervisor"), base)?;
    let mut processes = Vec::new();
    let mut entries = Vec::new();
    if let Some(field) = root.get("process") {
        let table = field.table()?;
        let names = depends::Names::of(&table);
        for (key, field) in table.entries() {
            let (spec, places) = process(&key.name, &field, &supervisor, base, &names)?;
            processes.push(spec);
            entries.push(places);
        }
        depends::check(&processes, &entries, &names)?;
    }
    let http = root
        .get("http")
        .map(|f| super::http::http(&f, base))
        .transpose()?;
    let spec = Spec {
        supervisor,
        processes: processes.into_iter().map(Arc::new).collect(),
    };
    Ok((spec, http))
}

/// A TOML syntax error, with the parser's message on one line.
fn syntax_error(src: &Source<'_>, error: &toml_edit::TomlError) -> ConfigError {
    let message: Vec<&str> = error.message().lines().filter(|l| !l.is_empty()).collect();
    let message = format!("invalid TOML: {}", message.join("; "));
    ConfigError::at(src.file, src.text, error.span(), "", message)
}

fn supervisor(field: Option<Field<'_>>, base: &Path) -> Result<SupervisorSpec> {
    let mut spec = SupervisorSpec {
        log_dir: base.join(".tend/logs"),
        stop_timeout: Duration::from_secs(10),
        umask: 0o022,
        cgroups: true,
    };
    if let Some(field) = field {
        let table = field.table()?;
        table.allow(SUPERVISOR_KEYS)?;
        if let Some(f) = table.get("log_dir") {
            spec.log_dir = f.path(base)?;
        }
        if let Some(f) = table.get("stop_timeout") {
            spec.stop_timeout = f.duration()?;
        }
        if let Some(f) = table.get("umask") {
            spec.umask = identity::umask(&f)?;
        }
        if let Some(f) = table.get("cgroups") {
            spec.cgroups = f.boolean()?;
        }
    }
    Ok(spec)
}

/// One `[process.NAME]` table, and the place of each of its `depends_on` entries (for the
/// checks that need every process: [`depends::check`]). `names` are the processes of the file.
fn process<'a>(
    name: &str,
    field: &Field<'a>,
    supervisor: &SupervisorSpec,
    base: &Path,
    names: &depends::Names<'_>,
) -> Result<(ProcessSpec, Vec<Field<'a>>)> {
    if name == "all"
        || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(field.key_error(
            "invalid process name: use letters, digits, _ and -, starting with a letter or \
             digit (it names the log files and is typed on the command line), and not \"all\" \
             (it means every process on the command line)",
        ));
    }
    let table = field.table()?;
    table.allow(PROCESS_KEYS)?;
    let shell = table.get("shell").map(|f| f.boolean()).transpose()?;
    let command = table.get("command").ok_or_else(|| {
        table.field().key_error(
            "missing key \"command\"; add the program to run, \
             e.g. command = [\"python3\", \"-m\", \"http.server\"]",
        )
    })?;
    let mut spec = ProcessSpec::new(name, argv(&command, shell.unwrap_or(false))?);
    let mut places = Vec::new();
    spec.stop_timeout = supervisor.stop_timeout;
    (spec.env, spec.env_file, spec.env_table) = env(&table, base)?;
    spec.identity = identity::identity(&table)?;
    for (key, f) in table.entries() {
        match key.name.as_str() {
            "cwd" => spec.cwd = Some(f.path(base)?),
            "replicas" => {
                spec.replicas = u32::try_from(f.integer(1..=MAX_REPLICAS)?).expect("in range")
            }
            "autostart" => spec.autostart = f.boolean()?,
            "interactive" => spec.interactive = f.boolean()?,
            "port" => spec.port = Some(port(&f)?),
            "umask" => spec.umask = Some(identity::umask(&f)?),
            "rlimits" => spec.rlimits = identity::rlimits(&f)?,
            "nice" => spec.nice = Some(identity::nice(&f)?),
            "oom_score_adj" => spec.oom_score_adj = Some(identity::oom_score_adj(&f)?),
            "memory_max" => {
                let bytes = f.size()?;
                if bytes < 1 << 20 {
                    return Err(f.error(
                        "memory_max below 1MiB would kill the process at its start; e.g. \"512MiB\"",
                    ));
                }
                spec.memory_max = Some(bytes);
            }
            "cpu_max" => spec.cpu_max = Some(cpu_max(&f)?),
            "pids_max" => {
                spec.pids_max = Some(u64::try_from(f.integer(1..=4_194_304)?).expect("in range"))
            }
            "restart" => spec.restart = restart(&f)?,
            "success_codes" => spec.success_codes = success_codes(&f)?,
            "start_secs" => spec.start_secs = f.duration()?,
            "backoff" => spec.backoff = backoff(&f.table()?)?,
            "max_restarts" => spec.max_restarts = max_restarts(&f.table()?)?,
            "stop_signal" => spec.stop_signal = signal(&f)?,
            "stop_timeout" => spec.stop_timeout = f.duration()?,
            "log" => spec.log = log(&f.table()?)?,
            "on_exit" => spec.on_exit = on_exit(&f)?,
            "ready" => spec.ready = Some(probes::ready(&f)?),
            "health" => spec.health = Some(probes::health(&f)?),
            "depends_on" => (spec.depends_on, places) = depends::depends_on(&f, name, names)?,
            "retry_after" => {
                let after = f.duration()?;
                if after.is_zero() {
                    return Err(f.error(
                        "retry_after must be longer than 0s, e.g. \"5m\"; leave it out to stay \
                         failed",
                    ));
                }
                spec.retry_after = Some(after);
            }
            // command, shell, env, env_file, user, group, groups: read above; restart_with:
            // below.
            _ => {}
        }
    }
    if let Some(f) = table.get("restart_with") {
        spec.restart_with = depends::restart_with(&f, &spec.depends_on)?;
    }
    spec.memory_limit = memory_limit(&table)?;
    if let (Some(first), Some(f)) = (spec.port, table.get("port")) {
        let last = u32::from(first) + spec.replicas - 1;
        if last > u32::from(u16::MAX) {
            return Err(f.error(format!(
                "instance {} would get PORT {last}, beyond 65535; lower port or replicas",
                spec.replicas - 1
            )));
        }
    }
    log_names_fit(&spec).map_err(|why| field.key_error(why))?;
    Ok((spec, places))
}

/// Whether every log file name of `spec` fits in a file name; if not, what to do.
pub(crate) fn log_names_fit(spec: &ProcessSpec) -> std::result::Result<(), String> {
    let longest = longest_log_name(spec);
    if longest.len() > NAME_MAX {
        return Err(format!(
            "the name is too long: the log file {longest:?} would have {} bytes, more than \
             the {NAME_MAX} a file name may have; shorten the name (or lower replicas or \
             log.keep)",
            longest.len()
        ));
    }
    Ok(())
}

/// The longest log file name of a process: the index of its last instance's stderr log,
/// rotated the most.
fn longest_log_name(spec: &ProcessSpec) -> String {
    let last = spec.replicas.saturating_sub(1);
    let name = crate::paths::log_file_name(&format!("{}.{last}", spec.name), Stream::Stderr);
    match spec.log.keep {
        0 => format!("{name}.idx"),
        keep => format!("{name}.{keep}.idx"),
    }
}

/// A key whose value is an argv, and how its messages tell to run a shell.
pub(super) struct ArgvKey {
    /// The key's name, for "write NAME as an array of strings".
    name: &'static str,
    /// What to do to have a shell run the command.
    run_a_shell: &'static str,
}

const COMMAND: ArgvKey = ArgvKey {
    name: "command",
    run_a_shell: "set shell = true",
};

/// A probe's `exec`, which has no `shell` key of its own.
pub(super) const EXEC: ArgvKey = ArgvKey {
    name: "exec",
    run_a_shell: "run one: exec = [\"/bin/sh\", \"-c\", \"...\"]",
};

/// The argv of `command`: an array as is, a string split into words as a shell would (but
/// no shell runs), or with `shell = true` a string given to `/bin/sh -c`.
fn argv(f: &Field<'_>, shell: bool) -> Result<Vec<String>> {
    match &f.node.kind {
        Kind::String(_) if shell => {
            let command = f.string()?;
            if command.trim().is_empty() {
                return Err(empty_argv(f));
            }
            Ok(shell_argv(command))
        }
        Kind::Array(_) if shell => Err(f.error(
            "with shell = true, command must be a string, \
             e.g. command = \"cd web && exec ./server\"",
        )),
        _ => words(f, &COMMAND),
    }
}

/// An argv without a shell: an array of strings as is, or a string split into words as a
/// shell would (but no shell runs). Not empty, and not starting with a variable assignment.
pub(super) fn words(f: &Field<'_>, key: &ArgvKey) -> Result<Vec<String>> {
    let argv: Vec<String> = match &f.node.kind {
        Kind::String(_) => split_words(f, key)?,
        Kind::Array(_) => {
            let items = f.array()?.into_iter();
            items
                .map(|item| item.string().map(str::to_owned))
                .collect::<Result<_>>()?
        }
        _ => return Err(f.expected("an array of strings or a string")),
    };
    match argv.first() {
        None => Err(empty_argv(f)),
        Some(program) if program.is_empty() => Err(f.error("the program name is empty")),
        Some(program) if is_assignment(program) => Err(f.error(format!(
            "the command starts with the variable assignment {program:?}, but no shell runs it; \
             set the variable in env = {{ ... }}, or {}",
            key.run_a_shell
        ))),
        Some(_) => Ok(argv),
    }
}

fn empty_argv(f: &Field<'_>) -> ConfigError {
    f.error("the command is empty; give the program to run and its arguments")
}

/// Splits a command string into words as a shell would, refusing what only a shell can do.
fn split_words(f: &Field<'_>, key: &ArgvKey) -> Result<Vec<String>> {
    let command = f.string()?;
    if let Some(c) = first_unquoted(command, SHELL_SYNTAX) {
        return Err(f.error(format!(
            "{c:?} is shell syntax, but no shell runs the command; \
             {}, or quote the character if it is an argument",
            key.run_a_shell
        )));
    }
    shlex::split(command).ok_or_else(|| {
        f.error(format!(
            "unbalanced quote or trailing backslash; close the quote, \
             or write {} as an array of strings",
            key.name
        ))
    })
}

/// `/bin/sh -c` running `command`, with `exec` before it when it is one simple command, so
/// that the stop signal reaches the program itself rather than a shell waiting for it.
/// A compound command (`a && b`, `a; b`, `if …`) or a builtin (`exit 3`) keeps its shell, which must run the rest;
/// the stop signal still reaches every process, as tend signals the whole process group.
pub(super) fn shell_argv(command: &str) -> Vec<String> {
    let first = command.split_whitespace().next().unwrap_or("");
    let simple = !is_assignment(first)
        && !NOT_EXECUTABLE.contains(&first)
        && first_unquoted(command, SHELL_CONTROL).is_none();
    let script = if simple {
        format!("exec {}", command.trim_start())
    } else {
        command.to_owned()
    };
    vec!["/bin/sh".into(), "-c".into(), script]
}

/// Whether `word` is a shell variable assignment such as `PORT=8000`.
fn is_assignment(word: &str) -> bool {
    word.split_once('=')
        .is_some_and(|(name, _)| env_file::valid_name(name))
}

/// The first character of `set` in `command` outside quotes and backslash escapes.
fn first_unquoted(command: &str, set: &[char]) -> Option<char> {
    let mut quote = None;
    let mut escaped = false;
    for c in command.chars() {
        match (quote, c) {
            _ if escaped => escaped = false,
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('\''), _) => {}
            (_, '\\') => escaped = true,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, c) if set.contains(&c) => return Some(c),
            (None, _) => {}
        }
    }
    None
}

/// `cpu_max = "50%"`: percent of one CPU, 1 to 100 per CPU of the machine (at most 100000).
fn cpu_max(f: &Field<'_>) -> Result<u32> {
    let text = f.string()?;
    text.strip_suffix('%')
        .and_then(|n| n.trim().parse::<u32>().ok())
        .filter(|n| (1..=100_000).contains(n))
        .ok_or_else(|| {
            f.error(format!(
                "invalid cpu_max {text:?}: write a percent of one CPU, such as \"50%\" (\"200%\" \
                 is two CPUs)"
            ))
        })
}

/// `memory_limit = "512MiB"` and `memory_limit_for` (default 10s).
fn memory_limit(table: &Table<'_>) -> Result<Option<tend_core::MemoryLimit>> {
    let for_field = table.get("memory_limit_for");
    let Some(f) = table.get("memory_limit") else {
        return match for_field {
            Some(f) => Err(
                f.key_error("memory_limit_for without memory_limit; add memory_limit = \"512MiB\"")
            ),
            None => Ok(None),
        };
    };
    let bytes = f.size()?;
    if bytes == 0 {
        return Err(f.error("memory_limit must be larger than 0, e.g. \"512MiB\""));
    }
    let for_at_least = match for_field {
        Some(f) => f.duration()?,
        None => Duration::from_secs(10),
    };
    Ok(Some(tend_core::MemoryLimit {
        bytes,
        for_at_least,
    }))
}

/// `PORT` of the first instance: 1 to 65535.
fn port(f: &Field<'_>) -> Result<u16> {
    let n = f.integer(1..=i64::from(u16::MAX))?;
    Ok(u16::try_from(n).expect("checked by the range"))
}

/// A process's variables, the env file they were read from, if any, and those of `env` alone.
type Environment = (
    Vec<(String, String)>,
    Option<PathBuf>,
    Vec<(String, String)>,
);

/// `file` entries first, then `table`; a later value replaces an earlier one in place.
pub(super) fn merge_env(
    file: Vec<(String, String)>,
    table: &[(String, String)],
) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = Vec::new();
    for (key, value) in file.into_iter().chain(table.iter().cloned()) {
        match vars.iter_mut().find(|(k, _)| *k == key) {
            Some(var) => var.1 = value,
            None => vars.push((key, value)),
        }
    }
    vars
}

/// `env_file` entries first, then `env`; a later value replaces an earlier one in place.
/// Also the env file's path, if there is one, and the variables of `env` alone.
fn env(table: &Table<'_>, base: &Path) -> Result<Environment> {
    let mut file = Vec::new();
    let mut own = Vec::new();
    let mut env_file = None;
    if let Some(f) = table.get("env_file") {
        let path = f.path(base)?;
        env_file = Some(path.clone());
        let text = super::read_text(&path, super::MAX_ENV_FILE_BYTES)
            .map_err(|e| f.error(format!("cannot read env file {}: {e}", path.display())))?;
        file = env_file::parse(&text)
            .map_err(|(line, why)| f.error(format!("{}:{line}: {why}", path.display())))?;
    }
    if let Some(f) = table.get("env") {
        for (key, value) in f.table()?.entries() {
            if !env_file::valid_name(&key.name) {
                return Err(value.key_error(
                    "not a variable name; use letters, digits and _, not starting with a digit",
                ));
            }
            if !matches!(value.node.kind, Kind::String(_)) {
                return Err(value.expected("a string (put the value in quotes)"));
            }
            let value = value.string()?.to_owned();
            match own
                .iter_mut()
                .find(|(k, _): &&mut (String, String)| *k == key.name)
            {
                Some(var) => var.1 = value,
                None => own.push((key.name.clone(), value)),
            }
        }
    }
    Ok((merge_env(file, &own), env_file, own))
}

fn restart(f: &Field<'_>) -> Result<RestartPolicy> {
    match f.string()? {
        "always" => Ok(RestartPolicy::Always),
        "on-failure" => Ok(RestartPolicy::OnFailure),
        "never" => Ok(RestartPolicy::Never),
        other => Err(f.error(format!(
            "unknown restart policy {other:?}; expected one of always, on-failure, never"
        ))),
    }
}

fn on_exit(f: &Field<'_>) -> Result<OnExit> {
    match f.string()? {
        "ignore" => Ok(OnExit::Ignore),
        "shutdown" => Ok(OnExit::Shutdown),
        other => Err(f.error(format!(
            "unknown on_exit {other:?}; expected \"ignore\" (the default) or \"shutdown\" \
             (when it ends for good, tend stops everything and exits with its code)"
        ))),
    }
}

fn success_codes(f: &Field<'_>) -> Result<Vec<i32>> {
    let codes = f.array()?.into_iter().map(|code| code.integer(0..=255));
    codes.map(|code| code.map(|c| c as i32)).collect()
}

fn signal(f: &Field<'_>) -> Result<Signal> {
    f.string()?
        .parse::<Signal>()
        .map_err(|e| f.error(e.to_string()))
}

fn backoff(table: &Table<'_>) -> Result<Backoff> {
    table.allow(&["initial", "max", "factor"])?;
    let mut backoff = Backoff::default();
    if let Some(f) = table.get("initial") {
        backoff.initial = f.duration()?;
    }
    if let Some(f) = table.get("max") {
        backoff.max = f.duration()?;
    }
    if let Some(f) = table.get("factor") {
        backoff.factor = f.float()?;
        if !(backoff.factor.is_finite() && backoff.factor >= 1.0) {
            let problem = if backoff.factor.is_finite() {
                "is less than 1.0"
            } else {
                "is not a finite number"
            };
            return Err(f.error(format!(
                "factor {} {problem}; use 1.0 for a constant delay, 2.0 to double it",
                backoff.factor
            )));
        }
    }
    if backoff.initial > backoff.max {
        let f = table.get("initial").or_else(|| table.get("max"));
        return Err(f.expect("one was set").error(format!(
            "initial ({}) is longer than max ({}); lower initial or raise max",
            format_duration(backoff.initial),
            format_duration(backoff.max)
        )));
    }
    Ok(backoff)
}

fn max_restarts(table: &Table<'_>) -> Result<MaxRestarts> {
    table.allow(&["count", "within"])?;
    let mut max = MaxRestarts::default();
    if let Some(f) = table.get("count") {
        max.count = f.count(0)?;
        if max.count > MAX_RESTART_COUNT {
            return Err(f.error(format!(
                "{} is out of range; expected 0 to {MAX_RESTART_COUNT} (tend keeps the time of \
                 each restart within the window)",
                max.count
            )));
        }
    }
    if let Some(f) = table.get("within") {
        max.within = f.duration()?;
        if max.within.is_zero() {
            return Err(f.error("within must be longer than 0s, e.g. \"60s\""));
        }
    }
    Ok(max)
}

fn log(table: &Table<'_>) -> Result<LogSpec> {
    table.allow(&["max_size", "keep", "timestamps", "mode"])?;
    let mut log = LogSpec::default();
    if let Some(f) = table.get("max_size") {
        log.max_size = f.size()?;
        if log.max_size == 0 {
            return Err(f.error("max_size must be larger than 0, e.g. \"10MiB\""));
        }
    }
    if let Some(f) = table.get("keep") {
        log.keep = f.count(0)?;
        if log.keep > MAX_KEEP {
            return Err(f.error(format!(
                "{} is out of range; expected 0 to {MAX_KEEP} rotated files (each rotation \
                 renames every one of them); raise max_size to keep more history",
                log.keep
            )));
        }
    }
    if let Some(f) = table.get("timestamps") {
        log.timestamps = f.boolean()?;
    }
    if let Some(f) = table.get("mode") {
        log.mode = match f.string()? {
            "0600" | "600" => 0o600,
            "0640" | "640" => 0o640,
            _ => {
                return Err(f.error(
                    "must be \"0600\" (only tend's user reads the logs) or \"0640\" (its group may read them too)",
                ))
            }
        };
    }
    Ok(log)
}
