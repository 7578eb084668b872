//! A tend daemon for a test: `tend up -d` in a temp dir with its own socket, driven by the
//! real CLI. On drop, it is stopped (`tend down`) or, failing that, killed with everything
//! below it.

use std::fs;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{descendants, tend_bin, PATIENCE};
pub use super::{run_with_deadline, try_run, Ran};

/// A daemon started with `tend up -d` for one test.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub pid: i32,
    /// With `Some`, the daemon finds its socket as users' do, in `$XDG_RUNTIME_DIR/tend`
    /// (this directory), instead of `--socket`.
    pub runtime_dir: Option<PathBuf>,
}

impl Daemon {
    /// Writes `config` to tend.toml in a temp dir and runs `tend up -d` on it.
    pub fn start(config: &str) -> Daemon {
        let dir = super::project(config);
        Daemon::start_in(dir)
    }

    pub fn start_in(dir: tempfile::TempDir) -> Daemon {
        let mut daemon = Daemon {
            dir,
            pid: 0,
            runtime_dir: None,
        };
        let up = daemon.tend(&["up", "-d"]);
        assert_eq!(up.code, Some(0), "tend up -d failed: {up:?}");
        daemon.pid = daemon.read_pid().expect("the lock file names the daemon");
        daemon
    }

    /// Writes `config` to tend.toml in a temp dir and runs `tend up -d` on it with
    /// `XDG_RUNTIME_DIR` set to `runtime_dir` and no `--socket`, as a user would.
    pub fn start_with_runtime_dir(config: &str, runtime_dir: &Path) -> Daemon {
        let mut daemon = Daemon {
            dir: super::project(config),
            pid: 0,
            runtime_dir: Some(runtime_dir.to_owned()),
        };
        let up = daemon.tend(&["up", "-d"]);
        assert_eq!(up.code, Some(0), "tend up -d failed: {up:?}");
        // "tend is running in the background (pid N); …"
        daemon.pid = up
            .stdout
            .split("(pid ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .and_then(|pid| pid.parse().ok())
            .expect("tend up -d names the daemon's pid");
        daemon
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("tend.toml")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("tend.sock")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn read_pid(&self) -> Option<i32> {
        let lock = self.dir.path().join("tend.sock.lock");
        fs::read_to_string(lock).ok()?.trim().parse().ok()
    }

    /// Runs `tend -c CONFIG --socket SOCKET ARGS…` and waits for it, within the deadline.
    pub fn tend(&self, args: &[&str]) -> Ran {
        run_with_deadline(self.command(args))
    }

    /// The command for `tend ARGS…` against this daemon, to run as the test likes.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(tend_bin());
        cmd.arg("-c").arg(self.config());
        match &self.runtime_dir {
            Some(dir) => {
                cmd.env("XDG_RUNTIME_DIR", dir);
            }
            None => {
                cmd.arg("--socket").arg(self.socket());
            }
        }
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("TEND_CONFIG")
            .env("NO_COLOR", "1");
        cmd
    }

    /// `tend status --json`, parsed.
    pub fn status(&self) -> Vec<serde_json::Value> {
        let ran = self.tend(&["status", "--json"]);
        assert_eq!(ran.code, Some(0), "{ran:?}");
        serde_json::from_str(&ran.stdout).unwrap_or_else(|e| panic!("{e}: {:?}", ran.stdout))
    }

    /// The status entry of one instance.
    pub fn instance(&self, name: &str) -> serde_json::Value {
        self.status()
            .into_iter()
            .find(|i| i["name"] == name)
            .unwrap_or_else(|| panic!("no instance {name} in status"))
    }

    /// Waits until `name` is in `state`, within the deadline.
    pub fn wait_state(&self, name: &str, state: &str) -> serde_json::Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let i = self.instance(name);
            if i["state"] == state {
                return i;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never became {state}: {i}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A raw connection to the control socket, for protocol-level tests.
    pub fn connect(&self) -> UnixStream {
        let stream = UnixStream::connect(self.socket()).expect("connecting to the socket");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream
    }

    /// Whether the daemon process still exists (a zombie counts as gone).
    pub fn alive(&self) -> bool {
        super::is_running(self.pid)
    }

    /// Waits until the daemon is gone.
    pub fn wait_gone(&self) {
        super::eventually("the daemon exits", || !self.alive());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.pid == 0 || !self.alive() {
            return;
        }
        let below = descendants(self.pid);
        // Ask nicely, briefly; a test may have left a process that takes long to stop.
        let _ = try_run(self.command(&["down"]), Duration::from_secs(5));
        if self.alive() {
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
        }
        for pid in below.into_iter().chain(descendants(self.pid)) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Whether a path exists (for sockets and lock files).
pub fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}
