//! A real terminal for end-to-end tests: a tmux pane (120×30) on a tmux server of the
//! test's own (`tmux -L NAME`, killed on drop), read with `capture-pane` and typed into with
//! `send-keys`. Waits poll the pane (every 50 ms) within [`PATIENCE`].
//!
//! tmux is needed: without it the tests say they are skipped, except where
//! `TEND_TEST_REQUIRE_TOOLS` is set (`.ci/run` installs tmux and sets it): there they fail.

use std::fs;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::{run_with_deadline, try_run, Ran, PATIENCE};

/// A tmux server of one test, with one session `ui` (its pane is named so for every user); killed on drop, with what runs in it,
/// and its socket file removed (tmux leaves it behind).
pub struct Tmux {
    name: String,
    socket: Option<String>,
}

impl Tmux {
    /// A new server running `script` (a shell command) in a 120×30 pane.
    pub fn start(script: &str) -> Tmux {
        static SERVERS: AtomicUsize = AtomicUsize::new(0);
        let mut tmux = Tmux {
            name: format!(
                "tend-ui-test-{}-{}",
                std::process::id(),
                SERVERS.fetch_add(1, Ordering::Relaxed)
            ),
            socket: None,
        };
        let ran = tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "ui",
            "-x",
            "120",
            "-y",
            "30",
            script,
        ]);
        assert_eq!(ran.code, Some(0), "tmux new-session: {ran:?}");
        tmux.socket = Some(tmux.display("#{socket_path}"));
        tmux
    }

    /// `tmux -L NAME -f /dev/null ARGS…`, within the deadline.
    pub fn run(&self, args: &[&str]) -> Ran {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.name, "-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX");
        run_with_deadline(cmd)
    }

    /// The pane's text, row by row.
    pub fn screen(&self) -> String {
        let ran = self.run(&["capture-pane", "-p", "-t", "ui"]);
        assert_eq!(ran.code, Some(0), "tmux capture-pane: {ran:?}");
        ran.stdout
    }

    /// A tmux format about the pane, such as `#{alternate_on}`.
    pub fn display(&self, format: &str) -> String {
        let ran = self.run(&["display-message", "-p", "-t", "ui", format]);
        assert_eq!(ran.code, Some(0), "tmux display-message: {ran:?}");
        ran.stdout.trim_end().to_owned()
    }

    /// Keys by tmux's names (`j`, `Enter`, `Escape`, `/`).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "ui"];
        args.extend(keys);
        let ran = self.run(&args);
        assert_eq!(ran.code, Some(0), "tmux send-keys: {ran:?}");
    }

    /// Text typed as it is.
    pub fn type_text(&self, text: &str) {
        let ran = self.run(&["send-keys", "-t", "ui", "-l", text]);
        assert_eq!(ran.code, Some(0), "tmux send-keys -l: {ran:?}");
    }

    /// Polls the pane until `pred` holds for its text; returns that text. Panics with the
    /// last screen at the deadline.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the pane never showed {what}; it shows:\n{screen}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.name, "kill-server"])
            .env_remove("TMUX");
        let _ = try_run(cmd, Duration::from_secs(10));
        if let Some(socket) = &self.socket {
            let _ = fs::remove_file(socket);
        }
    }
}

/// Whether tmux is there; see the module doc for what happens when it is not.
pub fn have_tmux() -> bool {
    super::have("tmux", "tmux", &["-V"])
}

/// `text` single-quoted for sh.
pub fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// What a pane's script runs after the command under test, so that the pane shows how it
/// ended and what it left the terminal like: `MARKER rc=N`, then whether `icanon` and `echo`
/// are on (`-icanon`, `-echo` when off); then it sleeps, keeping the pane.
pub fn after(marker: &str) -> String {
    format!(
        "; echo {marker} rc=$?; stty -a | tr ' ;' '\\n\\n' | \
         grep -x -e icanon -e -icanon -e echo -e -echo; sleep 100"
    )
}

/// Asserts that the command of a pane whose script ends with [`after`]`(marker)` exited with
/// `rc` and left the terminal cooked and echoing; returns the screen.
pub fn assert_restored(tmux: &Tmux, marker: &str, rc: i32) -> String {
    let screen = tmux.wait_for("the end and the terminal's modes", |s| {
        s.contains(marker) && s.lines().any(|l| l.trim() == "echo" || l.trim() == "-echo")
    });
    assert!(
        screen.contains(&format!("{marker} rc={rc}")),
        "exit code {rc} expected:\n{screen}"
    );
    let modes: Vec<&str> = screen
        .lines()
        .map(str::trim)
        .filter(|l| ["icanon", "-icanon", "echo", "-echo"].contains(l))
        .collect();
    assert_eq!(modes, ["icanon", "echo"], "stty after it:\n{screen}");
    screen
}
