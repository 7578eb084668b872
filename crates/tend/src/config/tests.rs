//! Tests of the whole layer: config text in, `Spec` or `ConfigError` out.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tend_core::{
    Backoff, Condition, Dependency, HealthSpec, LogSpec, MaxRestarts, Probe, ProbeSpec,
    ProcessSpec, ReadyCheck, ReadySpec, RestartPolicy, Signal, Spec,
};

use super::{describe, load, ConfigError};

/// A temporary directory holding `tend.toml` (and whatever else a test writes).
struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> PathBuf {
        self.tmp.path().to_path_buf()
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.tmp.path().join(name);
        fs::write(&path, text).unwrap();
        path
    }

    fn load(&self, text: &str) -> Result<Spec, ConfigError> {
        load(&self.write("tend.toml", text))
    }

    /// The error of `text`, displayed with the file name relative to the directory.
    fn error(&self, text: &str) -> String {
        let err = self.load(text).unwrap_err();
        let file = err.file.as_deref().unwrap();
        assert_eq!(file.parent(), Some(self.tmp.path()));
        err.to_string()
            .replacen(&format!("{}/", self.tmp.path().display()), "", 1)
    }

    fn process(&self, text: &str) -> ProcessSpec {
        let spec = self.load(text).unwrap();
        assert_eq!(spec.processes.len(), 1);
        (*spec.processes[0]).clone()
    }
}

#[test]
fn port_gives_each_instance_its_own_and_must_fit() {
    let f = Dir::new();
    let p = f.process("[process.p]\ncommand = \"x\"\nport = 5000\nreplicas = 3\n");
    assert_eq!(p.port, Some(5000));
    assert_eq!(f.process("[process.p]\ncommand = \"x\"\n").port, None);
    assert_eq!(
        f.error("[process.p]\ncommand = \"x\"\nport = 65535\nreplicas = 2\n"),
        "tend.toml:3:8: process.p.port: instance 1 would get PORT 65536, beyond 65535; lower \
         port or replicas"
    );
    assert_eq!(
        f.error("[process.p]\ncommand = \"x\"\nport = 0\n"),
        "tend.toml:3:8: process.p.port: 0 is out of range; expected 1 to 65535"
    );
}

#[test]
fn a_formation_sets_counts_and_leaves_out_zeros() {
    let f = Dir::new();
    let path = f.write(
        "tend.toml",
        "[process.a]\ncommand = \"x\"\n[process.b]\ncommand = \"x\"\nport = 65000\n\
         [process.c]\ncommand = \"x\"\n",
    );
    let formation = super::Formation::parse("a=3,all=0").unwrap();
    let (spec, _) = super::load_with(&path, &formation).unwrap();
    let counts: Vec<(u32, bool)> = spec
        .processes
        .iter()
        .map(|p| (p.replicas, p.autostart))
        .collect();
    assert_eq!(counts, [(3, true), (1, false), (1, false)]);
    let unknown = super::Formation::parse("web=2").unwrap();
    let err = super::load_with(&path, &unknown).unwrap_err().to_string();
    assert!(
        err.ends_with("--formation names \"web\", which is not a process here; known: a, b, c"),
        "{err}"
    );
    // A formation gets the checks replicas gets: the longest log name must fit.
    let long = "n".repeat(238);
    let long_path = f.write("long.toml", &format!("[process.{long}]\ncommand = \"x\"\n"));
    assert!(super::load(&long_path).is_ok());
    let err = super::load_with(&long_path, &super::Formation::parse("all=1000").unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("the name is too long"), "{err}");
    let too_many = super::Formation::parse("b=1000").unwrap();
    let err = super::load_with(&path, &too_many).unwrap_err().to_string();
    assert!(err.contains("PORT 65999, beyond 65535"), "{err}");
}

#[test]
fn interactive_is_off_unless_asked_for() {
    let f = Dir::new();
    assert!(!f.process("[process.p]\ncommand = \"x\"\n").interactive);
    assert!(
        f.process("[process.p]\ncommand = \"x\"\ninteractive = true\n")
            .interactive
    );
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn var(key: &str, value: &str) -> (String, String) {
    (key.to_owned(), value.to_owned())
}

const FULL: &str = r#"
[supervisor]
log_dir = "logs"
stop_timeout = "20s"

[process.web]
command = ["python3", "-m", "http.server", "8000"]
cwd = "./web"
env = { PORT = "8000", FROM_FILE = "overridden" }
env_file = ".env"
replicas = 2
autostart = false
restart = "on-failure"
success_codes = [0, 3]
start_secs = "1.5s"
backoff = { initial = "0s", max = "1m", factor = 1.5 }
max_restarts = { count = 3, within = "1m30s" }
stop_signal = "int"
stop_timeout = "250ms"
log = { max_size = "1MB", keep = 0, timestamps = true }

[process.worker]
command = "./worker --queue 'high prio'"

[process.cron]
command = "sleep 60 && ./job"
shell = true
log.max_size = 4096
"#;

#[test]
fn a_full_config_maps_to_the_expected_spec() {
    let dir = Dir::new();
    dir.write(".env", "FROM_FILE=file\nexport ONLY_FILE='x y'\n");
    let spec = dir.load(FULL).unwrap();
    let root = dir.path();

    let mut web = ProcessSpec::new("web", strings(&["python3", "-m", "http.server", "8000"]));
    web.cwd = Some(root.join("web"));
    web.env = vec![
        var("FROM_FILE", "overridden"),
        var("ONLY_FILE", "x y"),
        var("PORT", "8000"),
    ];
    web.env_file = Some(root.join(".env"));
    web.env_table = vec![var("PORT", "8000"), var("FROM_FILE", "overridden")];
    web.replicas = 2;
    web.autostart = false;
    web.restart = RestartPolicy::OnFailure;
    web.success_codes = vec![0, 3];
    web.start_secs = Duration::from_millis(1500);
    web.backoff = Backoff {
        initial: Duration::ZERO,
        max: Duration::from_secs(60),
        factor: 1.5,
    };
    web.max_restarts = MaxRestarts {
        count: 3,
        within: Duration::from_secs(90),
    };
    web.stop_signal = Signal::Int;
    web.stop_timeout = Duration::from_millis(250);
    web.log = LogSpec {
        max_size: 1_000_000,
        keep: 0,
        timestamps: true,
        mode: 0o600,
    };

    let mut worker = ProcessSpec::new("worker", strings(&["./worker", "--queue", "high prio"]));
    worker.stop_timeout = Duration::from_secs(20);

    let mut cron = ProcessSpec::new("cron", strings(&["/bin/sh", "-c", "sleep 60 && ./job"]));
    cron.stop_timeout = Duration::from_secs(20);
    cron.log.max_size = 4096;

    assert_eq!(spec.supervisor.log_dir, root.join("logs"));
    assert_eq!(spec.supervisor.stop_timeout, Duration::from_secs(20));
    let processes: Vec<&ProcessSpec> = spec.processes.iter().map(Arc::as_ref).collect();
    assert_eq!(processes, [&web, &worker, &cron]);
}

#[test]
fn retry_after_is_a_duration_longer_than_zero() {
    let dir = Dir::new();
    let spec = dir
        .load("[process.a]\ncommand = \"x\"\nretry_after = \"5m\"\n")
        .unwrap();
    assert_eq!(
        spec.processes[0].retry_after,
        Some(Duration::from_secs(300))
    );
    let spec = dir.load("[process.a]\ncommand = \"x\"\n").unwrap();
    assert_eq!(spec.processes[0].retry_after, None);
    let err = dir
        .load("[process.a]\ncommand = \"x\"\nretry_after = \"0s\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tend.toml:3:15: process.a.retry_after: retry_after must be longer than 0s"),
        "{err}"
    );
}

#[test]
fn an_env_file_read_again_gives_what_a_load_would_and_env_still_wins() {
    let dir = Dir::new();
    dir.write(".env", "A=1\nB=2\n");
    let spec = dir
        .load("[process.a]\ncommand = \"x\"\nenv_file = \".env\"\nenv = { B = \"table\" }\n")
        .unwrap();
    let p = &spec.processes[0];
    assert_eq!(p.env, vec![var("A", "1"), var("B", "table")]);
    dir.write(".env", "B=3\nC=new\n");
    let again = super::read_env(p).unwrap();
    assert_eq!(again, vec![var("B", "table"), var("C", "new")]);
    let reloaded = dir
        .load("[process.a]\ncommand = \"x\"\nenv_file = \".env\"\nenv = { B = \"table\" }\n")
        .unwrap();
    assert_eq!(
        reloaded.processes[0].env, again,
        "as a reload would read it"
    );
    dir.write(".env", "B=3\nnot a line\n");
    let err = super::read_env(p).unwrap_err();
    assert!(
        err.ends_with(".env:2: expected KEY=VALUE, found \"not a line\""),
        "{err}"
    );
    let without = ProcessSpec::new("b", strings(&["x"]));
    assert_eq!(super::read_env(&without).unwrap(), Vec::new());
}

#[test]
fn an_empty_config_is_valid_with_defaults() {
    let dir = Dir::new();
    let spec = dir.load("").unwrap();
    assert!(spec.processes.is_empty());
    assert_eq!(spec.supervisor.log_dir, dir.path().join(".tend/logs"));
    assert_eq!(spec.supervisor.stop_timeout, Duration::from_secs(10));
    let text = describe(&spec, Path::new("tend.toml"));
    assert!(text.contains("0 processes"), "{text}");
    assert!(text.contains("nothing to run"), "{text}");
}

#[test]
fn defaults_match_process_spec_new() {
    let p = Dir::new().process("[process.a]\ncommand = \"run\"\n");
    assert_eq!(p, ProcessSpec::new("a", strings(&["run"])));
}

#[test]
fn absolute_paths_stay_and_relative_paths_resolve_against_the_config() {
    let dir = Dir::new();
    let sub = dir.path().join("sub");
    fs::create_dir(&sub).unwrap();
    fs::write(
        sub.join("tend.toml"),
        "[process.a]\ncommand = \"x\"\ncwd = \"../w\"\n",
    )
    .unwrap();
    let spec = load(&sub.join("tend.toml")).unwrap();
    assert_eq!(spec.processes[0].cwd, Some(sub.join("../w")));
    assert_eq!(spec.supervisor.log_dir, sub.join(".tend/logs"));

    let p = dir.process("[process.a]\ncommand = \"x\"\ncwd = \"/srv/./app\"\n");
    assert_eq!(p.cwd, Some(PathBuf::from("/srv/app")));
}

#[test]
fn log_mode_is_0600_by_default_and_0640_on_request_only() {
    let dir = Dir::new();
    let spec = dir.load("[process.a]\ncommand = \"x\"\n").unwrap();
    assert_eq!(spec.processes[0].log.mode, 0o600);
    let spec = dir
        .load("[process.a]\ncommand = \"x\"\nlog.mode = \"0640\"\n")
        .unwrap();
    assert_eq!(spec.processes[0].log.mode, 0o640);
    for bad in ["\"0644\"", "\"0666\"", "640", "\"rw\""] {
        let err = dir.error(&format!("[process.a]\ncommand = \"x\"\nlog.mode = {bad}\n"));
        assert!(err.contains("process.a.log.mode"), "{err}");
    }
}

#[test]
fn the_process_order_is_the_file_order() {
    let text = "[process.zeta]\ncommand = \"z\"\n[process.alpha]\ncommand = \"a\"\n\
                [process]\nmid.command = \"m\"\n";
    let spec = Dir::new().load(text).unwrap();
    let names: Vec<&str> = spec.processes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["zeta", "alpha", "mid"]);
}

#[test]
fn command_strings_split_like_a_shell_without_one() {
    let argv = |command: &str| {
        let text = format!("[process.a]\ncommand = '''{command}'''\n");
        Dir::new().process(&text).argv
    };
    assert_eq!(argv("a  b\tc"), strings(&["a", "b", "c"]));
    assert_eq!(
        argv(r#"echo "a b" 'c d' e\ f"#),
        strings(&["echo", "a b", "c d", "e f"])
    );
    assert_eq!(
        argv("grep 'a|b' \"x > y\""),
        strings(&["grep", "a|b", "x > y"])
    );
    assert_eq!(argv("app $HOME"), strings(&["app", "$HOME"]));
    assert_eq!(argv("app # a comment"), strings(&["app"]));
    assert_eq!(
        argv("\n  ./server\n  --port 80\n"),
        strings(&["./server", "--port", "80"])
    );
}

#[test]
fn shell_true_runs_sh_and_execs_a_simple_command() {
    let argv = |command: &str| {
        let text = format!("[process.a]\nshell = true\ncommand = '''{command}'''\n");
        Dir::new().process(&text).argv
    };
    let sh = |script: &str| strings(&["/bin/sh", "-c", script]);
    assert_eq!(argv("./server > out.log"), sh("exec ./server > out.log"));
    assert_eq!(argv("exec ./server"), sh("exec ./server"));
    assert_eq!(argv("echo 'a;b'"), sh("exec echo 'a;b'"));
    // The shell must stay to run the rest, or to set the variable.
    assert_eq!(argv("cd web && ./server"), sh("cd web && ./server"));
    assert_eq!(argv("a | b"), sh("a | b"));
    assert_eq!(argv("a; b"), sh("a; b"));
    assert_eq!(argv("PORT=1 ./server"), sh("PORT=1 ./server"));
    assert_eq!(argv("while true; do x; done"), sh("while true; do x; done"));
    // Builtins are no programs: `exec exit 3` would fail with 127.
    assert_eq!(argv("exit 3"), sh("exit 3"));
    assert_eq!(argv("trap '' TERM"), sh("trap '' TERM"));
}

#[test]
fn env_file_comes_first_and_env_overrides_it() {
    let dir = Dir::new();
    dir.write(
        "vars",
        "# defaults\nA=file\nB=file\n\nexport C=\"file c\"\n",
    );
    let text =
        "[process.a]\ncommand = \"x\"\nenv_file = \"vars\"\nenv = { B = \"env\", D = \"env\" }\n";
    let p = dir.process(text);
    assert_eq!(
        p.env,
        [
            var("A", "file"),
            var("B", "env"),
            var("C", "file c"),
            var("D", "env")
        ]
    );
}

/// Each case: the config text, and the exact error message.
#[test]
fn errors_name_file_line_column_and_key() {
    let cases: &[(&str, &str)] = &[
        (
            "[process.web]\ncommand = \"x\"\nstop_signal = \"SIGFOO\"\n",
            "tend.toml:3:15: process.web.stop_signal: unknown signal \"SIGFOO\"; expected one of \
             SIGHUP, SIGINT, SIGQUIT, SIGABRT, SIGKILL, SIGUSR1, SIGSEGV, SIGUSR2, SIGPIPE, \
             SIGALRM, SIGTERM, SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGWINCH",
        ),
        (
            "[process.web]\ncommand = \"x\"\ncomand = \"y\"\n",
            "tend.toml:3:1: process.web.comand: unknown key \"comand\"; expected one of command, \
             shell, cwd, env, env_file, replicas, autostart, restart, success_codes, start_secs, \
             backoff, max_restarts, stop_signal, stop_timeout, log, on_exit, ready, health, \
             depends_on, restart_with, interactive, port, retry_after, user, group, groups, \
             umask, rlimits, nice, oom_score_adj, memory_limit, memory_limit_for, memory_max, cpu_max, pids_max",
        ),
        (
            "[process.web]\ncommand = \"x\"\ninteractive = \"yes\"\n",
            "tend.toml:3:15: process.web.interactive: expected true or false, found a string",
        ),
        (
            "[supervisor]\nlogdir = \"x\"\n",
            "tend.toml:2:1: supervisor.logdir: unknown key \"logdir\"; expected one of log_dir, \
             stop_timeout, umask, cgroups",
        ),
        (
            "[supervisor]\numask = \"0999\"\n",
            "tend.toml:2:9: supervisor.umask: invalid umask \"0999\": write it in octal as a \
             string, e.g. \"022\" or \"077\"",
        ),
        (
            "[http]\nlisten = \"0.0.0.0:9100\"\n",
            "tend.toml:2:10: http.listen: 0.0.0.0:9100 is not a loopback address: anyone who \
             can reach it could try to guess the token; listen on 127.0.0.1 (or [::1]), or set \
             allow_remote = true in [http] if you mean it",
        ),
        (
            "[http]\nlisten = \"my box\"\n",
            "tend.toml:2:10: http.listen: \"my box\" is not an address to listen on; write an IP \
             address and a port, such as \"127.0.0.1:9100\" or \"[::1]:9100\"",
        ),
        (
            "[http]\nlisten = \"127.0.0.1:9100\"\nport = 1\n",
            "tend.toml:3:1: http.port: unknown key \"port\"; expected one of listen, allow_remote, \
             token_file, metrics_public",
        ),
        (
            "[http]\nallow_remote = true\n",
            "tend.toml:1:2: http: missing key \"listen\"; add the address, e.g. listen = \
             \"127.0.0.1:9100\"",
        ),
        (
            "[processes.web]\n",
            "tend.toml:1:2: processes: unknown key \"processes\"; expected one of supervisor, \
             process, http",
        ),
        (
            "[process.web]\ncommand = \"x\"\nbackoff = { initial = \"1s\", grow = 2 }\n",
            "tend.toml:3:29: process.web.backoff.grow: unknown key \"grow\"; expected one of \
             initial, max, factor",
        ),
        (
            "\n[process.web]\nreplicas = 2\n",
            "tend.toml:2:10: process.web: missing key \"command\"; add the program to run, \
             e.g. command = [\"python3\", \"-m\", \"http.server\"]",
        ),
        (
            "[process.web]\ncommand = \"x\"\nreplicas = 0\n",
            "tend.toml:3:12: process.web.replicas: 0 is out of range; expected 1 to 10000",
        ),
        (
            "[process.web]\ncommand = \"x\"\nreplicas = \"2\"\n",
            "tend.toml:3:12: process.web.replicas: expected an integer, found a string",
        ),
        (
            "[process.web]\ncommand = \"x\"\nstop_timeout = 10\n",
            "tend.toml:3:16: process.web.stop_timeout: expected a duration string such as \"10s\" \
             or \"250ms\", found an integer",
        ),
        (
            "[supervisor]\nstop_timeout = \"10\"\n",
            "tend.toml:2:16: supervisor.stop_timeout: invalid duration \"10\": a number has no \
             unit; write e.g. \"10s\", \"250ms\" or \"1m30s\" (units: ns, us, ms, s, m, h)",
        ),
        (
            "[process.web]\ncommand = \"x\"\nlog = { max_size = \"10 parsecs\" }\n",
            "tend.toml:3:20: process.web.log.max_size: invalid size \"10 parsecs\": unknown unit \
             \" parsecs\"; write e.g. \"10MiB\", \"512KiB\" or \"100B\", or an integer number of \
             bytes",
        ),
        (
            "[process.web]\ncommand = \"x\"\nsuccess_codes = [0, 256]\n",
            "tend.toml:3:21: process.web.success_codes[1]: 256 is out of range; expected 0 to 255",
        ),
        (
            "[process.web]\ncommand = \"x\"\nrestart = \"sometimes\"\n",
            "tend.toml:3:11: process.web.restart: unknown restart policy \"sometimes\"; expected \
             one of always, on-failure, never",
        ),
        (
            "[process.web]\ncommand = \"x\nreplicas = 1\n",
            "tend.toml:2:13: invalid TOML: invalid basic string",
        ),
        (
            "[process.web]\ncommand = 'say \"hi'\n",
            "tend.toml:2:11: process.web.command: unbalanced quote or trailing backslash; close \
             the quote, or write command as an array of strings",
        ),
        (
            "[process.\"web app\"]\ncommand = \"x\"\n",
            "tend.toml:1:10: process.\"web app\": invalid process name: use letters, digits, _ \
             and -, starting with a letter or digit (it names the log files and is typed on the \
             command line), and not \"all\" (it means every process on the command line)",
        ),
        (
            "[process.-web]\ncommand = \"x\"\n",
            "tend.toml:1:10: process.-web: invalid process name: use letters, digits, _ \
             and -, starting with a letter or digit (it names the log files and is typed on the \
             command line), and not \"all\" (it means every process on the command line)",
        ),
        (
            "[process.web]\ncommand = \"x\"\nreplicas = 4294967295\n",
            "tend.toml:3:12: process.web.replicas: 4294967295 is out of range; expected 1 to 10000",
        ),
        (
            "[supervisor]\numask = \"+22\"\n",
            "tend.toml:2:9: supervisor.umask: invalid umask \"+22\": write it in octal as a \
             string, e.g. \"022\" or \"077\"",
        ),
    ];
    let dir = Dir::new();
    for (text, expected) in cases {
        assert_eq!(&dir.error(text), expected, "config:\n{text}");
    }
}

/// Each case: a `[process.p]` body, the expected "line:column: key" and a part of the message.
#[rustfmt::skip]
const CHECKS: &[(&str, &str, &str)] = &[
    ("command = []", "4:11: process.p.command", "the command is empty"),
    ("command = \"\"", "4:11: process.p.command", "the command is empty"),
    ("command = \" \"\nshell = true", "4:11: process.p.command", "the command is empty"),
    ("command = 5", "4:11: process.p.command", "expected an array of strings or a string"),
    ("command = [\"a\", 1]", "4:17: process.p.command[1]", "expected a string"),
    ("command = \"a && b\"", "4:11: process.p.command", "'&' is shell syntax"),
    ("command = \"PORT=1 app\"", "4:11: process.p.command", "variable assignment"),
    ("command = [\"x\"]\nshell = true", "4:11: process.p.command", "must be a string"),
    ("command = \"x\"\nshell = \"yes\"", "5:9: process.p.shell", "expected true or false"),
    ("command = \"x\"\ncwd = \"\"", "5:7: process.p.cwd", "the path is empty"),
    ("command = \"x\"\nenv = { PORT = 80 }", "5:16: process.p.env.PORT", "put the value"),
    ("command = \"x\"\nenv = { 1X = \"a\" }", "5:9: process.p.env.1X", "not a variable"),
    ("command = \"x\"\nenv = [\"A=1\"]", "5:7: process.p.env", "expected a table"),
    ("command = \"x\"\nbackoff = { factor = 0.5 }", "5:22: process.p.backoff.factor", "less than 1.0"),
    ("command = \"x\"\nbackoff = { factor = inf }", "5:22: process.p.backoff.factor", "not a finite number"),
    ("command = \"x\"\nbackoff = { initial = \"40s\" }", "5:23: process.p.backoff.initial", "initial (40s) is longer than max (30s)"),
    ("command = \"x\"\nbackoff = { max = \"50ms\" }", "5:19: process.p.backoff.max", "initial (100ms) is longer than max (50ms)"),
    ("command = \"x\"\nbackoff = \"fast\"", "5:11: process.p.backoff", "expected a table"),
    ("command = \"x\"\nmax_restarts = { count = -1 }", "5:26: process.p.max_restarts.count", "out of range"),
    ("command = \"x\"\nmax_restarts = { within = \"0s\" }", "5:27: process.p.max_restarts.within", "longer than 0s"),
    ("command = \"x\"\nlog = { max_size = 0 }", "5:20: process.p.log.max_size", "larger than 0"),
    ("command = \"x\"\nlog = { max_size = -5 }", "5:20: process.p.log.max_size", "negative"),
    ("command = \"x\"\nlog = { keep = 1.5 }", "5:16: process.p.log.keep", "expected an integer"),
    ("command = \"x\"\nlog.timestamps = 1", "5:18: process.p.log.timestamps", "expected true or false"),
    ("command = \"x\"\nstart_secs = \"1.5.3s\"", "5:14: process.p.start_secs", "not a valid number"),
    ("command = \"x\"\nautostart = 1979-05-27", "5:13: process.p.autostart", "found a datetime"),
    ("command = \"x\"\nenv_file = \"missing.env\"", "5:12: process.p.env_file", "cannot read env file"),
    ("command = \"x\\u0000\"", "4:11: process.p.command", "NUL"),
    ("command = \"x\"\nlog = { max_size = 200, keep = 1000000 }", "5:32: process.p.log.keep", "expected 0 to 1000 rotated files"),
    ("command = \"x\"\nmax_restarts = { count = 4294967295 }", "5:26: process.p.max_restarts.count", "expected 0 to 1000000"),
    ("command = \"x\"\nenv_file = \"/dev/zero\"", "5:12: process.p.env_file", "/dev/zero: it is a character device, not a regular file; name a regular file"),
    ("command = \"x\"\nenv_file = \"/\"", "5:12: process.p.env_file", "it is a directory, not a regular file"),
    ("command = \"x\"\nstop_timeout = \"1000000000000000000s\"", "5:16: process.p.stop_timeout", "too long"),
    ("command = \"x\"\nlog.max_size = \"20000000TiB\"", "5:16: process.p.log.max_size", "too large"),
];

#[test]
fn every_check_reports_its_key() {
    let dir = Dir::new();
    for (body, position, part) in CHECKS {
        let text = format!("# comment\n\n[process.p]\n{body}\n");
        let message = dir.error(&text);
        let prefix = format!("tend.toml:{position}: ");
        assert!(message.starts_with(&prefix), "{message}\nexpected {prefix}");
        assert!(message.contains(part), "{message}\nexpected {part:?}");
    }
}

#[test]
fn top_level_shapes_are_checked() {
    let dir = Dir::new();
    assert_eq!(
        dir.error("process = 5\n"),
        "tend.toml:1:11: process: expected a table, found an integer"
    );
    assert_eq!(
        dir.error("[[process]]\ncommand = \"x\"\n"),
        "tend.toml:1:1: process: expected a table, found an array"
    );
    assert_eq!(
        dir.error("[process]\nweb.replicas = 2\n"),
        "tend.toml:2:1: process.web: missing key \"command\"; add the program to run, \
         e.g. command = [\"python3\", \"-m\", \"http.server\"]"
    );
    assert!(dir
        .error("[process]\nall.command = \"x\"\n")
        .contains("process.all: invalid process name"));
}

#[test]
fn a_bad_env_file_line_names_the_env_file_and_its_line() {
    let dir = Dir::new();
    let env = dir.write("app.env", "A=1\n# ok\nnot a pair\n");
    let message = dir.error("[process.a]\ncommand = \"x\"\nenv_file = \"app.env\"\n");
    assert_eq!(
        message,
        format!(
            "tend.toml:3:12: process.a.env_file: {}:3: expected KEY=VALUE, found \"not a pair\"",
            env.display()
        )
    );
}

#[test]
fn env_files_that_are_fifos_or_too_large_are_refused_without_blocking() {
    let dir = Dir::new();
    let fifo = dir.path().join("fifo.env");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    // Before the fix, this load waited for a writer to open the FIFO, forever.
    let message = dir.error("[process.a]\ncommand = \"x\"\nenv_file = \"fifo.env\"\n");
    assert_eq!(
        message,
        format!(
            "tend.toml:3:12: process.a.env_file: cannot read env file {}: it is a FIFO, not a \
             regular file; name a regular file",
            fifo.display()
        )
    );
    let big = "A=1\n".repeat((super::MAX_ENV_FILE_BYTES / 4 + 1) as usize);
    dir.write("big.env", &big);
    let message = dir.error("[process.a]\ncommand = \"x\"\nenv_file = \"big.env\"\n");
    assert!(
        message.starts_with("tend.toml:3:12: process.a.env_file: cannot read env file ")
            && message.ends_with("big.env: it is larger than 1MiB (the limit)"),
        "{message}"
    );
    dir.write("latin1.env", "A=caf\u{e9}\n");
    fs::write(dir.path().join("latin1.env"), b"A=caf\xe9\n").unwrap();
    let message = dir.error("[process.a]\ncommand = \"x\"\nenv_file = \"latin1.env\"\n");
    assert!(
        message.ends_with("not UTF-8 text (invalid byte at offset 5)"),
        "{message}"
    );
}

#[test]
fn a_config_file_that_is_not_a_regular_file_or_too_large_is_refused() {
    let dir = Dir::new();
    let fifo = dir.path().join("fifo.toml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let err = load(&fifo).unwrap_err();
    assert!(
        err.to_string().ends_with(
            "cannot read the config file: it is a FIFO, not a regular file; name a regular file"
        ),
        "{err}"
    );
    let err = load(Path::new("/dev/zero")).unwrap_err();
    assert!(err.to_string().contains("a character device"), "{err}");
    let mut big = String::from("# padding\n");
    big.push_str(&"#".repeat(super::MAX_CONFIG_BYTES as usize));
    let err = load(&dir.write("big.toml", &big)).unwrap_err();
    assert!(
        err.to_string().ends_with("larger than 16MiB (the limit)"),
        "{err}"
    );
}

#[test]
fn a_name_whose_log_file_name_exceeds_name_max_is_refused_at_its_key() {
    let dir = Dir::new();
    // NAME.0.err.log.5.idx with a 245-byte name: 261 bytes.
    let name = "w".repeat(245);
    let message = dir.error(&format!("[process.{name}]\ncommand = \"x\"\n"));
    assert!(
        message.starts_with(&format!(
            "tend.toml:1:10: process.{name}: the name is too long"
        )),
        "{message}"
    );
    assert!(
        message.contains("would have 261 bytes, more than the 255"),
        "{message}"
    );
    // The same name fits with few enough replicas and kept files...
    let fits = "w".repeat(255 - ".0.err.log.idx".len());
    dir.load(&format!(
        "[process.{fits}]\ncommand = \"x\"\nlog.keep = 0\n"
    ))
    .unwrap();
    // ...and not with more replicas: the largest instance number counts.
    let message = dir.error(&format!(
        "[process.{fits}]\ncommand = \"x\"\nlog.keep = 0\nreplicas = 11\n"
    ));
    assert!(message.contains("would have 256 bytes"), "{message}");
}

#[test]
fn the_largest_accepted_numbers_are_accepted() {
    // Durations up to what a u64 of nanoseconds holds, sizes up to what a u64 of bytes holds,
    // and any finite factor: the supervisor saturates what it computes from them (a deadline
    // beyond what an Instant holds is no deadline), tested in tend-core and end to end.
    let p = Dir::new().process(
        "[process.a]\ncommand = \"x\"\nstop_timeout = \"5124095h\"\nstart_secs = \"5124095h\"\n\
         backoff = { initial = \"5124095h\", max = \"5124095h\", factor = 1e308 }\n\
         max_restarts = { count = 1000000, within = \"5124095h\" }\n\
         log = { max_size = \"16000000TiB\", keep = 1000 }\n",
    );
    assert_eq!(p.stop_timeout, Duration::from_secs(5_124_095 * 3600));
    assert_eq!(p.backoff.factor, 1e308);
    assert_eq!(p.log.keep, 1000);
}

#[test]
fn an_unreadable_file_names_the_path_and_the_os_error() {
    let err = load(Path::new("/nonexistent/tend.toml")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/nonexistent/tend.toml: cannot read the config file: No such file or directory (os error 2)"
    );
}

#[test]
fn describe_says_what_would_run() {
    let dir = Dir::new();
    dir.write(".env", "FROM_FILE=1\n");
    let spec = dir.load(FULL).unwrap();
    let text = describe(&spec, Path::new("/srv/tend.toml"));
    let root = dir.path();
    let expected = format!(
        "/srv/tend.toml: 3 processes, logs in {root}/logs, default stop timeout 20s

web (2 replicas: web.0, web.1): python3 -m http.server 8000
  cwd        {root}/web
  env        FROM_FILE, PORT
  env file   {root}/.env
  autostart  no (start it with: tend start web)
  restart    on-failure (success: exit 0, 3)
  backoff    0s, x1.5 up to 1m; reset after 1.5s up; fail after 3 restarts within 1m30s
  stop       SIGINT, then SIGKILL after 250ms
  log        rotate at 1MB, keep 0 rotated files, timestamps

worker: ./worker --queue 'high prio'
  restart    always
  backoff    100ms, x2 up to 30s; reset after 1s up; fail after 5 restarts within 1m
  stop       SIGTERM, then SIGKILL after 20s
  log        rotate at 10MiB, keep 5 rotated files

cron: /bin/sh -c 'sleep 60 && ./job'
  restart    always
  backoff    100ms, x2 up to 30s; reset after 1s up; fail after 5 restarts within 1m
  stop       SIGTERM, then SIGKILL after 20s
  log        rotate at 4KiB, keep 5 rotated files
",
        root = root.display()
    );
    assert_eq!(text, expected);
}

#[test]
fn describe_escapes_newlines_and_control_characters_in_arguments() {
    let text = "[process.lines]\ncommand = [\"sh\", \"-c\", \"echo a\\necho 'b'\\tc\\\\d\"]\n\
                [process.script]\ncommand = '''\nset -e\necho hi\n'''\nshell = true\n\
                [process.colour]\ncommand = [\"printf\", \"\\u001b[31mred\\u001b[0m\\r\\u0085\"]\n\
                ready = { exec = [\"test\", \"-e\", \"a\\nb\"] }\n";
    let spec = Dir::new().load(text).unwrap();
    let text = describe(&spec, Path::new("tend.toml"));
    for line in [
        "lines: sh -c $'echo a\\necho \\'b\\'\\tc\\\\d'\n",
        "script: /bin/sh -c $'set -e\\necho hi\\n'\n",
        "colour: printf $'\\x1b[31mred\\x1b[0m\\r\\u0085'\n",
        "  ready      exec test -e $'a\\nb' every 500ms",
    ] {
        assert!(text.contains(line), "{text}\nlacks {line:?}");
    }
    // Nothing raw reaches the terminal: the only control characters are the line ends.
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{text:?}"
    );
    // A word without one is quoted as before.
    let spec = Dir::new()
        .load("[process.a]\ncommand = [\"echo\", \"it's\", \"a b\", \"plain\"]\n")
        .unwrap();
    let text = describe(&spec, Path::new("tend.toml"));
    assert!(text.contains("a: echo \"it's\" 'a b' plain\n"), "{text}");
}

#[test]
fn the_example_config_of_the_repository_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tend.toml");
    let spec = load(&path).unwrap();
    assert!(!spec.processes.is_empty());
}

#[test]
fn syntax_errors_point_at_the_place_with_the_message_on_one_line() {
    let dir = Dir::new();
    assert_eq!(
        dir.error("[process.web]\ncommand = \"x\"\n\n[process.web]\n"),
        "tend.toml:4:1: invalid TOML: invalid table header; duplicate key `web` in table `process`"
    );
    assert_eq!(
        dir.error("[process.web]\ncommand = [\"a\",, \"b\"]\n"),
        "tend.toml:2:16: invalid TOML: invalid array; expected `]`"
    );
}

#[test]
fn an_array_of_process_tables_is_refused_where_it_starts() {
    assert_eq!(
        Dir::new().error("# web\n[[process.web]]\ncommand = \"x\"\n"),
        "tend.toml:2:1: process.web: expected a table, found an array"
    );
}

/// The `ready` of a process `a` whose table ends with `ready = READY`.
fn ready(ready: &str) -> ReadySpec {
    let text = format!("[process.a]\ncommand = \"x\"\nready = {ready}\n");
    Dir::new().process(&text).ready.expect("a ready spec")
}

fn probe(kind: Probe, period_ms: u64, timeout_ms: u64) -> ProbeSpec {
    ProbeSpec {
        kind,
        period: Duration::from_millis(period_ms),
        timeout: Duration::from_millis(timeout_ms),
    }
}

#[test]
fn every_readiness_check_maps_to_its_spec_with_the_defaults() {
    let with_defaults = |check| ReadySpec {
        check,
        start_timeout: Some(Duration::from_secs(90)),
        watchdog: None,
    };
    let probed = |kind| with_defaults(ReadyCheck::Probe(probe(kind, 500, 1000)));
    for (text, expected) in [
        ("{ notify = true }", with_defaults(ReadyCheck::Notify)),
        ("{ notify_fd = 3 }", with_defaults(ReadyCheck::NotifyFd(3))),
        (
            "{ notify_fd = 1023 }",
            with_defaults(ReadyCheck::NotifyFd(1023)),
        ),
        (
            r"{ log_line = 'listening on :\d+$' }",
            with_defaults(ReadyCheck::LogLine(r"listening on :\d+$".into())),
        ),
        (
            "{ tcp = \"127.0.0.1:5432\" }",
            probed(Probe::Tcp("127.0.0.1:5432".into())),
        ),
        (
            "{ tcp = \"[::1]:80\" }",
            probed(Probe::Tcp("[::1]:80".into())),
        ),
        ("{ tcp = \"db:1\" }", probed(Probe::Tcp("db:1".into()))),
        (
            "{ http = \"http://localhost\" }",
            probed(Probe::Http("http://localhost".into())),
        ),
        (
            "{ http = \"http://[::1]:8000/health?full=1\" }",
            probed(Probe::Http("http://[::1]:8000/health?full=1".into())),
        ),
        (
            "{ exec = [\"pg_isready\", \"-q\"] }",
            probed(Probe::Exec(strings(&["pg_isready", "-q"]))),
        ),
        (
            "{ exec = \"redis-cli -h 'my host' ping\" }",
            probed(Probe::Exec(strings(&[
                "redis-cli",
                "-h",
                "my host",
                "ping",
            ]))),
        ),
    ] {
        assert_eq!(ready(text), expected, "{text}");
    }
}

#[test]
fn ready_takes_period_timeout_start_timeout_and_watchdog() {
    assert_eq!(
        ready(
            "{ http = \"http://127.0.0.1:8000/\", period = \"250ms\", timeout = \"2s\", \
             start_timeout = \"5m\" }"
        ),
        ReadySpec {
            check: ReadyCheck::Probe(probe(
                Probe::Http("http://127.0.0.1:8000/".into()),
                250,
                2000
            )),
            start_timeout: Some(Duration::from_secs(300)),
            watchdog: None,
        }
    );
    assert_eq!(
        ready("{ notify = true, watchdog = \"30s\", start_timeout = \"none\" }"),
        ReadySpec {
            check: ReadyCheck::Notify,
            start_timeout: None,
            watchdog: Some(Duration::from_secs(30)),
        }
    );
    // A section of its own, and the largest durations.
    let p = Dir::new().process(
        "[process.a]\ncommand = \"x\"\n[process.a.ready]\nlog_line = \"up\"\n\
         start_timeout = \"5124095h\"\n",
    );
    assert_eq!(
        p.ready,
        Some(ReadySpec {
            check: ReadyCheck::LogLine("up".into()),
            start_timeout: Some(Duration::from_secs(5_124_095 * 3600)),
            watchdog: None,
        })
    );
}

#[test]
fn health_maps_to_its_spec_with_the_defaults() {
    let health = |text: &str| {
        let text = format!("[process.a]\ncommand = \"x\"\nhealth = {text}\n");
        Dir::new().process(&text).health.expect("a health spec")
    };
    assert_eq!(
        health("{ http = \"http://127.0.0.1:8000/health\" }"),
        HealthSpec {
            probe: probe(
                Probe::Http("http://127.0.0.1:8000/health".into()),
                10_000,
                5_000
            ),
            failures: 3,
        }
    );
    assert_eq!(
        health("{ exec = [\"check\"], period = \"1m\", timeout = \"3s\", failures = 1 }"),
        HealthSpec {
            probe: probe(Probe::Exec(strings(&["check"])), 60_000, 3_000),
            failures: 1,
        }
    );
    assert_eq!(
        health("{ tcp = \"localhost:6379\", failures = 1000000 }"),
        HealthSpec {
            probe: probe(Probe::Tcp("localhost:6379".into()), 10_000, 5_000),
            failures: 1_000_000,
        }
    );
}

#[test]
fn depends_on_keeps_the_file_order_and_restart_with_its_names() {
    let text = "[process.web]\ncommand = \"x\"\n\
                depends_on = { migrate = \"completed\", db = \"ready\", cache = \"started\" }\n\
                restart_with = [\"db\", \"cache\"]\n\
                [process.worker]\ncommand = \"x\"\ndepends_on = [\"db\", \"cache\"]\n\
                [process.db]\ncommand = \"x\"\nreplicas = 3\non_exit = \"shutdown\"\n\
                [process.cache]\ncommand = \"x\"\ndepends_on = []\n\
                [process.migrate]\ncommand = \"x\"\nrestart = \"on-failure\"\n\
                depends_on = { db = \"ready\" }\n";
    let spec = Dir::new().load(text).unwrap();
    let dependency = |name: &str, condition| Dependency {
        name: name.into(),
        condition,
    };
    let web = &spec.processes[0];
    assert_eq!(
        web.depends_on,
        [
            dependency("migrate", Condition::Completed),
            dependency("db", Condition::Ready),
            dependency("cache", Condition::Started),
        ]
    );
    assert_eq!(web.restart_with, strings(&["db", "cache"]));
    let worker = &spec.processes[1];
    assert_eq!(
        worker.depends_on,
        [
            dependency("db", Condition::Started),
            dependency("cache", Condition::Started),
        ]
    );
    assert!(worker.restart_with.is_empty());
    assert!(spec.processes[2].depends_on.is_empty());
    assert!(spec.processes[3].depends_on.is_empty());
    let migrate = &spec.processes[4];
    assert_eq!(migrate.depends_on, [dependency("db", Condition::Ready)]);
    // restart = "never" completes too.
    let text = "[process.a]\ncommand = \"x\"\ndepends_on = { b = \"completed\" }\n\
                [process.b]\ncommand = \"x\"\nrestart = \"never\"\n";
    Dir::new().load(text).unwrap();
}

/// Each case: a `[process.p]` body (after `command = "x"`, at line 5), the expected
/// "line:column: key" and a part of the message.
#[rustfmt::skip]
const READY_AND_HEALTH_CHECKS: &[(&str, &str, &str)] = &[
    ("ready = \"notify\"", "5:9: process.p.ready", "expected a table such as ready = { notify = true } or ready = { tcp = \"127.0.0.1:8000\" }, found a string"),
    ("ready = {}", "5:9: process.p.ready", "no readiness check: give one of notify, notify_fd, log_line, tcp, http, exec"),
    ("ready = { period = \"1s\" }", "5:9: process.p.ready", "no readiness check"),
    ("ready = { tcp = \"a:1\", http = \"http://a/\" }", "5:24: process.p.ready.http", "tcp and http are two readiness checks; keep one"),
    ("ready = { notify = true, log_line = \"x\", exec = \"y\" }", "5:26: process.p.ready.log_line", "notify, log_line and exec are three readiness checks; keep one"),
    ("ready = { notify = true, wait = \"1s\" }", "5:26: process.p.ready.wait", "unknown key \"wait\"; expected one of notify, notify_fd, log_line, tcp, http, exec, period, timeout, start_timeout, watchdog"),
    ("ready = { notify = false }", "5:20: process.p.ready.notify", "notify = false asks for no check; remove the key, or set notify = true"),
    ("ready = { notify = \"yes\" }", "5:20: process.p.ready.notify", "expected true or false"),
    ("ready = { notify_fd = 1 }", "5:23: process.p.ready.notify_fd", "fd 1 is the process's stdout; use a number from 3 to 1023"),
    ("ready = { notify_fd = 0 }", "5:23: process.p.ready.notify_fd", "fd 0 is the process's stdin"),
    ("ready = { notify_fd = 1024 }", "5:23: process.p.ready.notify_fd", "1024 is out of range; expected 3 to 1023"),
    ("ready = { notify_fd = -1 }", "5:23: process.p.ready.notify_fd", "-1 is out of range; expected 3 to 1023"),
    ("ready = { notify_fd = \"3\" }", "5:23: process.p.ready.notify_fd", "expected an integer, found a string"),
    ("ready = { log_line = \"(ready\" }", "5:22: process.p.ready.log_line", "invalid regular expression: unclosed group: \"(\" at character 1 of the pattern"),
    ("ready = { log_line = 'port \\d{5' }", "5:22: process.p.ready.log_line", "invalid regular expression: unclosed counted repetition"),
    ("ready = { log_line = \"\" }", "5:22: process.p.ready.log_line", "the pattern is empty"),
    ("ready = { log_line = 5 }", "5:22: process.p.ready.log_line", "expected a string, found an integer"),
    ("ready = { tcp = \"127.0.0.1\" }", "5:17: process.p.ready.tcp", "invalid address \"127.0.0.1\": the port is missing; write host:port, e.g. \"127.0.0.1:5432\" or \"[::1]:5432\""),
    ("ready = { tcp = \"db:0\" }", "5:17: process.p.ready.tcp", "port 0 is out of range; expected 1 to 65535"),
    ("ready = { tcp = \"db:70000\" }", "5:17: process.p.ready.tcp", "port 70000 is out of range"),
    ("ready = { tcp = \"::1:80\" }", "5:17: process.p.ready.tcp", "an IPv6 address goes in brackets"),
    ("ready = { tcp = \"http://db:80\" }", "5:17: process.p.ready.tcp", "tcp takes host:port, not a URL"),
    ("ready = { http = \"https://localhost/\" }", "5:18: process.p.ready.http", "invalid URL \"https://localhost/\": tend's probe speaks plain HTTP; point it at a local http:// address"),
    ("ready = { http = \"localhost:8000\" }", "5:18: process.p.ready.http", "not a URL; write http://host[:port][/path]"),
    ("ready = { http = \"ftp://localhost\" }", "5:18: process.p.ready.http", "it must start with http://"),
    ("ready = { http = \"http:///health\" }", "5:18: process.p.ready.http", "the host is missing"),
    ("ready = { http = \"http://localhost:0/\" }", "5:18: process.p.ready.http", "port 0 is out of range"),
    ("ready = { http = \"http://localhost/a b\" }", "5:18: process.p.ready.http", "it contains ' ', which a URL cannot"),
    ("ready = { http = \"http://localhost/#top\" }", "5:18: process.p.ready.http", "a #fragment is never sent"),
    ("ready = { http = \"http://localhost/caf\u{e9}\" }", "5:18: process.p.ready.http", "the path must be percent-encoded"),
    ("ready = { exec = [] }", "5:18: process.p.ready.exec", "the command is empty"),
    ("ready = { exec = \"\" }", "5:18: process.p.ready.exec", "the command is empty"),
    ("ready = { exec = [\"a\", 1] }", "5:24: process.p.ready.exec[1]", "expected a string"),
    ("ready = { exec = \"a | b\" }", "5:18: process.p.ready.exec", "'|' is shell syntax, but no shell runs the command; run one: exec = [\"/bin/sh\", \"-c\", \"...\"], or quote"),
    ("ready = { exec = \"say 'hi\" }", "5:18: process.p.ready.exec", "write exec as an array of strings"),
    ("ready = { exec = \"A=1 check\" }", "5:18: process.p.ready.exec", "variable assignment \"A=1\""),
    ("ready = { exec = 5 }", "5:18: process.p.ready.exec", "expected an array of strings or a string"),
    ("ready = { tcp = \"a:1\", period = \"0s\" }", "5:33: process.p.ready.period", "must be longer than 0s, e.g. \"500ms\" (the default)"),
    ("ready = { tcp = \"a:1\", timeout = \"0s\" }", "5:34: process.p.ready.timeout", "must be longer than 0s"),
    ("ready = { tcp = \"a:1\", period = 5 }", "5:33: process.p.ready.period", "expected a duration string"),
    ("ready = { tcp = \"a:1\", period = \"1000000000000000000s\" }", "5:33: process.p.ready.period", "too long"),
    ("ready = { notify = true, period = \"1s\" }", "5:26: process.p.ready.period", "period applies to the checks tend runs itself (tcp, http, exec), not to notify; remove it"),
    ("ready = { log_line = \"x\", timeout = \"1s\" }", "5:27: process.p.ready.timeout", "timeout applies to the checks tend runs itself (tcp, http, exec), not to log_line"),
    ("ready = { notify_fd = 3, period = \"1s\" }", "5:26: process.p.ready.period", "not to notify_fd"),
    ("ready = { notify = true, start_timeout = \"0s\" }", "5:42: process.p.ready.start_timeout", "must be longer than 0s, e.g. \"90s\", or \"none\" to wait for ever"),
    ("ready = { notify = true, start_timeout = \"never\" }", "5:42: process.p.ready.start_timeout", "invalid duration \"never\": expected a number; write e.g. \"10s\", \"250ms\" or \"1m30s\" (units: ns, us, ms, s, m, h); or \"none\" to wait for ever"),
    ("ready = { notify = true, start_timeout = 90 }", "5:42: process.p.ready.start_timeout", "expected a duration string such as \"10s\" or \"250ms\", found an integer; or \"none\""),
    ("ready = { tcp = \"a:1\", watchdog = \"10s\" }", "5:24: process.p.ready.watchdog", "watchdog needs notify = true: the process pings it with WATCHDOG=1 on the notify socket; remove it, or use notify"),
    ("ready = { notify_fd = 3, watchdog = \"10s\" }", "5:26: process.p.ready.watchdog", "watchdog needs notify = true"),
    ("ready = { notify = true, watchdog = \"0s\" }", "5:37: process.p.ready.watchdog", "watchdog must be at least 1ms"),
    ("ready = { notify = true, watchdog = \"500us\" }", "5:37: process.p.ready.watchdog", "watchdog must be at least 1ms"),
    ("ready = { notify = true, watchdog = \"1\" }", "5:37: process.p.ready.watchdog", "a number has no unit"),
    ("health = \"http://x/\"", "5:10: process.p.health", "expected a table such as health = { http = \"http://127.0.0.1:8000/health\" }, found a string"),
    ("health = { notify = true }", "5:12: process.p.health.notify", "health checks are probes: tcp, http or exec; notify, notify_fd and log_line are for ready = { ... }"),
    ("health = { tcp = \"a:1\", log_line = \"x\" }", "5:25: process.p.health.log_line", "health checks are probes: tcp, http or exec"),
    ("health = { notify_fd = 3 }", "5:12: process.p.health.notify_fd", "health checks are probes"),
    ("health = {}", "5:10: process.p.health", "no health check: give one of tcp, http, exec"),
    ("health = { failures = 2 }", "5:10: process.p.health", "no health check"),
    ("health = { tcp = \"a:1\", exec = \"check\" }", "5:25: process.p.health.exec", "tcp and exec are two health checks; keep one"),
    ("health = { tcp = \"a:1\", start_timeout = \"1s\" }", "5:25: process.p.health.start_timeout", "unknown key \"start_timeout\"; expected one of tcp, http, exec, period, timeout, failures"),
    ("health = { tcp = \"a:1\", failures = 0 }", "5:36: process.p.health.failures", "0 is out of range; expected 1 to 1000000"),
    ("health = { tcp = \"a:1\", failures = 1000001 }", "5:36: process.p.health.failures", "1000001 is out of range; expected 1 to 1000000"),
    ("health = { tcp = \"a:1\", period = \"0s\" }", "5:34: process.p.health.period", "must be longer than 0s, e.g. \"10s\" (the default)"),
    ("health = { http = \"https://a/\" }", "5:19: process.p.health.http", "tend's probe speaks plain HTTP"),
];

#[test]
fn every_ready_and_health_check_reports_its_key() {
    let dir = Dir::new();
    for (body, position, part) in READY_AND_HEALTH_CHECKS {
        let text = format!("# comment\n\n[process.p]\ncommand = \"x\"\n{body}\n");
        let message = dir.error(&text);
        let prefix = format!("tend.toml:{position}: ");
        assert!(message.starts_with(&prefix), "{message}\nexpected {prefix}");
        assert!(message.contains(part), "{message}\nexpected {part:?}");
    }
}

/// Each case: the config text, and the exact error message.
#[test]
fn dependency_errors_name_the_entry_and_what_to_do() {
    let cases: &[(&str, &str)] = &[
        (
            "[process.web]\ncommand = \"x\"\ndepends_on = { dbb = \"ready\" }\n\
             [process.db]\ncommand = \"x\"\n[process.cache]\ncommand = \"x\"\n",
            "tend.toml:3:16: process.web.depends_on.dbb: \"dbb\" is not a process in this \
             file; processes: db, cache",
        ),
        (
            "[process.web]\ncommand = \"x\"\ndepends_on = [\"db\", \"dbb\"]\n\
             [process.db]\ncommand = \"x\"\n",
            "tend.toml:3:21: process.web.depends_on[1]: \"dbb\" is not a process in this \
             file; processes: db",
        ),
        (
            "[process.web]\ncommand = \"x\"\ndepends_on = [\"db\"]\n",
            "tend.toml:3:15: process.web.depends_on[0]: \"db\" is not a process in this \
             file; it has no other process",
        ),
        (
            "[process.web]\ncommand = \"x\"\ndepends_on = { web = \"started\" }\n",
            "tend.toml:3:16: process.web.depends_on.web: a process cannot depend on itself; \
             remove \"web\" from depends_on",
        ),
        (
            "[process.web]\ncommand = \"x\"\ndepends_on = { db = \"up\" }\n\
             [process.db]\ncommand = \"x\"\n",
            "tend.toml:3:21: process.web.depends_on.db: unknown condition \"up\"; expected one \
             of started (its program runs), ready (its readiness check passed, or it is \
             running without one), completed (it exited with a success code)",
        ),
        (
            "[process.web]\ncommand = \"x\"\ndepends_on = { db = true }\n\
             [process.db]\ncommand = \"x\"\n",
            "tend.toml:3:21: process.web.depends_on.db: expected a string: \"started\", \
             \"ready\" or \"completed\", found a boolean",
        ),
        (
            "[process.web]\ncommand = \"x\"\ndepends_on = \"db\"\n\
             [process.db]\ncommand = \"x\"\n",
            "tend.toml:3:14: process.web.depends_on: expected a table of process name → \
             condition, e.g. depends_on = { db = \"ready\" }, or an array of process names, \
             found a string",
        ),
        (
            "[process.web]\ncommand = \"x\"\ndepends_on = [\"db\", 1]\n\
             [process.db]\ncommand = \"x\"\n",
            "tend.toml:3:21: process.web.depends_on[1]: expected a string, found an integer",
        ),
        (
            "[process.web]\ncommand = \"x\"\ndepends_on = [\"db\", \"db\"]\n\
             [process.db]\ncommand = \"x\"\n",
            "tend.toml:3:21: process.web.depends_on[1]: \"db\" is listed twice; remove one",
        ),
        (
            "[process.web]\ncommand = \"x\"\ndepends_on = { migrate = \"completed\" }\n\
             [process.migrate]\ncommand = \"x\"\n",
            "tend.toml:3:26: process.web.depends_on.migrate: \"migrate\" has restart = \
             \"always\", so it never completes; give it restart = \"on-failure\" or \"never\"",
        ),
        (
            "[process.web]\ncommand = \"x\"\ndepends_on = { db = \"ready\" }\n\
             restart_with = [\"db\", \"cache\"]\n\
             [process.db]\ncommand = \"x\"\n[process.cache]\ncommand = \"x\"\n",
            "tend.toml:4:23: process.web.restart_with[1]: \"cache\" is in restart_with but not \
             in depends_on; restart_with names dependencies whose restart restarts this \
             process: add \"cache\" to depends_on, or remove it here",
        ),
        (
            "[process.web]\ncommand = \"x\"\nrestart_with = [\"db\"]\n\
             [process.db]\ncommand = \"x\"\n",
            "tend.toml:3:17: process.web.restart_with[0]: \"db\" is in restart_with but not \
             in depends_on; restart_with names dependencies whose restart restarts this \
             process: add \"db\" to depends_on, or remove it here",
        ),
        (
            "[process.web]\ncommand = \"x\"\ndepends_on = [\"db\"]\nrestart_with = \"db\"\n\
             [process.db]\ncommand = \"x\"\n",
            "tend.toml:4:16: process.web.restart_with: expected an array, found a string",
        ),
        (
            "[process.web]\ncommand = \"x\"\ndepends_on = [\"db\"]\n\
             restart_with = [\"db\", \"db\"]\n[process.db]\ncommand = \"x\"\n",
            "tend.toml:4:23: process.web.restart_with[1]: \"db\" is listed twice; remove one",
        ),
        (
            "[process.web]\ncommand = \"x\"\ndepends_on = { worker = \"ready\" }\n\
             [process.worker]\ncommand = \"x\"\ndepends_on = [\"web\"]\n",
            "tend.toml:6:15: process.worker.depends_on[0]: dependency cycle: web → worker → \
             web (each waits for the next); remove one of these dependencies",
        ),
        (
            // Searched in file order: the cycle is found from `a`, the first process on it,
            // and reported at the dependency that closes it.
            "[process.log]\ncommand = \"x\"\n\
             [process.a]\ncommand = \"x\"\ndepends_on = [\"log\", \"b\"]\n\
             [process.c]\ncommand = \"x\"\ndepends_on = { log = \"started\", a = \"ready\" }\n\
             [process.b]\ncommand = \"x\"\ndepends_on = [\"c\"]\n",
            "tend.toml:8:33: process.c.depends_on.a: dependency cycle: a → b → c → a (each \
             waits for the next); remove one of these dependencies",
        ),
    ];
    let dir = Dir::new();
    for (text, expected) in cases {
        assert_eq!(&dir.error(text), expected, "config:\n{text}");
    }
}

#[test]
fn a_chain_of_a_thousand_dependencies_checks_fast_and_its_cycle_is_named_whole() {
    let chain = |close: bool| {
        let mut text = String::new();
        for i in 0..1000 {
            let next = if i < 999 { i + 1 } else { 0 };
            text.push_str(&format!("[process.p{i}]\ncommand = \"x\"\n"));
            if i < 999 || close {
                text.push_str(&format!("depends_on = {{ p{next} = \"ready\" }}\n"));
            }
        }
        text
    };
    let dir = Dir::new();
    let started = std::time::Instant::now();
    let spec = dir.load(&chain(false)).unwrap();
    assert_eq!(spec.processes.len(), 1000);
    assert_eq!(spec.processes[998].depends_on[0].name, "p999");
    let message = dir.error(&chain(true));
    let names: Vec<String> = (0..1000).chain([0]).map(|i| format!("p{i}")).collect();
    assert_eq!(
        message,
        format!(
            "tend.toml:3000:16: process.p999.depends_on.p0: dependency cycle: {} (each waits \
             for the next); remove one of these dependencies",
            names.join(" → ")
        )
    );
    // Both loads, in a debug build, on a slow machine: far less than this. A search that
    // is quadratic in the processes (a name looked up in a list for each edge) stays fast
    // at a thousand too; `depends::tests` searches a chain of 200 000.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn an_error_lists_at_most_twenty_other_processes() {
    let mut text = String::from("[process.web]\ncommand = \"x\"\ndepends_on = [\"dbb\"]\n");
    for i in 0..25 {
        text.push_str(&format!("[process.p{i}]\ncommand = \"x\"\n"));
    }
    let message = Dir::new().error(&text);
    let listed: Vec<String> = (0..20).map(|i| format!("p{i}")).collect();
    assert_eq!(
        message,
        format!(
            "tend.toml:3:15: process.web.depends_on[0]: \"dbb\" is not a process in this \
             file; processes: {}, … (5 more)",
            listed.join(", ")
        )
    );
}

#[test]
fn describe_says_how_readiness_health_and_dependencies_are_checked() {
    let text = "[process.web]\ncommand = \"x\"\n\
                depends_on = { db = \"ready\", migrate = \"completed\" }\n\
                restart_with = [\"db\"]\n\
                ready = { notify = true, watchdog = \"30s\" }\n\
                health = { http = \"http://127.0.0.1:8000/health\", failures = 1 }\n\
                [process.db]\ncommand = \"x\"\n\
                ready = { exec = \"pg_isready -q\", start_timeout = \"none\" }\n\
                health = { tcp = \"127.0.0.1:5432\" }\n\
                [process.migrate]\ncommand = \"x\"\nrestart = \"never\"\n\
                ready = { log_line = \"^done\" }\n";
    let spec = Dir::new().load(text).unwrap();
    let text = describe(&spec, Path::new("tend.toml"));
    for line in [
        "  depends on db (ready, restarts with it), migrate (completed)\n",
        "  ready      notify (READY=1 on $NOTIFY_SOCKET), watchdog 30s; a failed start if not \
         ready within 1m30s\n",
        "  health     http http://127.0.0.1:8000/health every 10s, timeout 5s; a failure \
         stops it\n",
        "  ready      exec pg_isready -q every 500ms, timeout 1s; may take for ever\n",
        "  health     tcp 127.0.0.1:5432 every 10s, timeout 5s; 3 failures in a row stop it\n",
        "  ready      a log line matching \"^done\"; a failed start if not ready within 1m30s\n",
    ] {
        assert!(text.contains(line), "{text}\nlacks {line:?}");
    }
}

#[test]
fn a_nofile_limit_linux_never_grants_is_refused_at_its_place() {
    let Some(most) = fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|n| n.trim().parse::<u64>().ok())
    else {
        eprintln!("skipped: /proc/sys/fs/nr_open cannot be read here");
        return;
    };
    let f = Dir::new();
    let advice = format!(
        "Linux allows a process at most {most} open files (/proc/sys/fs/nr_open), even to \
         root, so every spawn would fail; use {most} or less"
    );
    assert_eq!(
        f.error("[process.p]\ncommand = \"x\"\nrlimits = { nofile = \"unlimited\" }\n"),
        format!("tend.toml:3:22: process.p.rlimits.nofile: \"unlimited\" cannot be set: {advice}")
    );
    let over = most + 1;
    assert_eq!(
        f.error(&format!(
            "[process.p]\ncommand = \"x\"\nrlimits = {{ nofile = {{ soft = 1024, hard = {over} }} }}\n"
        )),
        format!("tend.toml:3:22: process.p.rlimits.nofile: the limit {over} is too high: {advice}")
    );
    // What the kernel allows is accepted (a hard limit above tend's own still needs root).
    if tend_os::users::effective_uid() == 0 {
        let p = f.process(&format!(
            "[process.p]\ncommand = \"x\"\nrlimits = {{ nofile = {most} }}\n"
        ));
        assert_eq!(p.rlimits.len(), 1);
        assert_eq!((p.rlimits[0].soft, p.rlimits[0].hard), (most, most));
    }
}
