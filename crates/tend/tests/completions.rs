//! End to end: `tend completions bash` loads in bash and completes verbs and the process
//! names of the config at hand; `tend man` renders with `man -l -`.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

const CONFIG: &str = r#"
[process.web]
command = ["sleep", "1000"]
replicas = 2

[process.worker]
command = ["sleep", "1000"]
"#;

/// `bash -c script` in `dir`, with this build's tend first on PATH (the script calls `tend`).
fn bash(dir: &Path, script: &str) -> Ran {
    let bin_dir = Path::new(tend_bin()).parent().expect("a directory");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("TEND_CONFIG");
    run_with_deadline(cmd)
}

/// What bash's completion of `words` (the last one being typed) offers, one per line.
fn complete(dir: &Path, words: &[&str]) -> Vec<String> {
    let script = format!(
        "source <(tend completions bash) || exit 9\n\
         COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_TYPE=9\n\
         _clap_complete_tend tend '{current}' '{previous}'\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        words = words.join(" "),
        cword = words.len() - 1,
        current = words[words.len() - 1],
        previous = words[words.len() - 2],
    );
    let ran = bash(dir, &script);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stderr.is_empty(), "completion printed errors: {ran:?}");
    ran.stdout
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completions_load_and_complete_verbs_and_process_names() {
    let dir = project(CONFIG);
    let ran = bash(
        dir.path(),
        "source <(tend completions bash) && complete -p tend",
    );
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stderr.is_empty(), "{ran:?}");
    assert!(
        ran.stdout.contains("-F _clap_complete_tend tend"),
        "{ran:?}"
    );
    assert_eq!(complete(dir.path(), &["tend", "re"]), ["restart", "reload"]);
    assert_eq!(
        complete(dir.path(), &["tend", "restart", "w"]),
        ["web", "web.0", "web.1", "worker", "worker.0"]
    );
    assert_eq!(
        complete(dir.path(), &["tend", "attach", "web."]),
        ["web.0", "web.1"]
    );
    // A bad config: no names, and no error on the user's prompt.
    std::fs::write(dir.path().join("tend.toml"), "[process.web\n").unwrap();
    assert!(complete(dir.path(), &["tend", "stop", "w"]).is_empty());
    // zsh and fish scripts come from the same definition.
    for shell in ["zsh", "fish"] {
        let mut cmd = Command::new(tend_bin());
        cmd.args(["completions", shell]);
        let ran = run_with_deadline(cmd);
        assert_eq!(ran.code, Some(0), "{ran:?}");
        assert!(ran.stdout.contains("TEND_COMPLETE"), "{shell}: {ran:?}");
    }
}

#[test]
fn the_man_page_renders() {
    if !have("man", "man", &["--version"]) {
        return;
    }
    let dir = project(CONFIG);
    let ran = bash(dir.path(), "tend man | MANPAGER=cat MANWIDTH=80 man -l -");
    assert_eq!(ran.code, Some(0), "{ran:?}");
    for text in [
        "tend(1)",
        "SYNOPSIS",
        "--config",
        "SUBCOMMANDS",
        "tend-attach(1)",
    ] {
        assert!(ran.stdout.contains(text), "no {text:?} in:\n{}", ran.stdout);
    }
}
