//! A test helper of tend-os, not part of tend: the contract tests run it because daemonizing
//! forks, which a multi-threaded test harness must not do in its own process.
//!
//! ```text
//! tend-os-probe daemon REPORT [--umask OCTAL] [--lock PATH] [--log PATH] [--spawn-sleep]
//!                             [--fail MESSAGE | --die]
//! tend-os-probe hold-lock PATH
//! ```
//!
//! `daemon` daemonizes. The parent prints `daemon <pid>`, `children <n>` (its children left, in
//! any state) and `tty <yes|none>` (whether it has a controlling terminal) and exits 0 once the
//! daemon is ready, or prints the failure on stderr and exits 1. The daemon writes `key=value`
//! lines about itself to REPORT (pid, sid, pgid, ppid, tty, cwd, umask, fd0..fd2,
//! sender_cloexec, and lock, sleep_pid, log_fd1 when asked), then reports ready, or failed with
//! MESSAGE (`--fail`), or exits without a word (`--die`); a ready daemon waits for SIGTERM, at
//! most 60 s so that a crashed test leaves nothing running.
//!
//! `hold-lock` acquires a `LockFile`, prints `locked` and waits to be killed (at most 60 s);
//! when the lock is held it prints `held <pid or ->` and exits 2.
//!
//! `start-in-cgroup DIR [--no-clone3]` spawns `cat /proc/self/cgroup` with
//! `ChildAction::StartInCgroup(DIR)` and prints what the child printed, then `probe
//! <true|false>` (`tend_os::probe_start_in_cgroup`, asked after the spawn) and `starts_in
//! <true|false|unknown>` (`tend_os::starts_in_cgroup`). `--no-clone3` first installs a
//! seccomp filter that answers `clone3` with ENOSYS, as container runtimes' default filters
//! do.
//!
//! `exec-without-clone3 PROGRAM [ARGS...]` installs that filter and executes PROGRAM: tend
//! itself as it runs in a container whose seccomp profile refuses `clone3`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{exit, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
use nix::sys::stat::Mode;
use std::os::fd::{AsFd, AsRawFd};
use tend_os::{Daemon, LockError, LockFile};

/// How long a probe lives at most, whatever the test does.
const WATCHDOG: Duration = Duration::from_secs(60);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("daemon") => daemon(&args[1..]),
        Some("hold-lock") if args.len() == 2 => hold_lock(&args[1]),
        Some("start-in-cgroup") if args.len() == 2 => start_in_cgroup(&args[1], false),
        Some("start-in-cgroup") if args.len() == 3 && args[2] == "--no-clone3" => {
            start_in_cgroup(&args[1], true)
        }
        Some("exec-without-clone3") if args.len() >= 2 => exec_without_clone3(&args[1..]),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: tend-os-probe daemon REPORT [options] | tend-os-probe hold-lock PATH | \
         tend-os-probe start-in-cgroup DIR [--no-clone3] | \
         tend-os-probe exec-without-clone3 PROGRAM [ARGS...]"
    );
    exit(64);
}

#[derive(Default)]
struct Options {
    report: PathBuf,
    umask: u32,
    lock: Option<PathBuf>,
    log: Option<PathBuf>,
    spawn_sleep: bool,
    fail: Option<String>,
    die: bool,
}

fn parse(args: &[String]) -> Options {
    let mut args = args.iter();
    let mut opts = Options {
        report: args.next().unwrap_or_else(|| usage()).into(),
        umask: 0o022,
        ..Options::default()
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage()).clone();
        match arg.as_str() {
            "--umask" => opts.umask = u32::from_str_radix(&value(), 8).unwrap_or_else(|_| usage()),
            "--lock" => opts.lock = Some(value().into()),
            "--log" => opts.log = Some(value().into()),
            "--fail" => opts.fail = Some(value()),
            "--spawn-sleep" => opts.spawn_sleep = true,
            "--die" => opts.die = true,
            _ => usage(),
        }
    }
    opts
}

fn daemon(args: &[String]) -> ! {
    let opts = parse(args);
    let sender = match tend_os::daemonize(opts.umask) {
        Err(e) => {
            eprintln!("tend-os-probe: {e}");
            exit(1);
        }
        Ok(Daemon::Parent(parent)) => match parent.wait() {
            Ok(pid) => {
                println!(
                    "daemon {pid}\nchildren {}\ntty {}",
                    my_children(),
                    tty_state()
                );
                exit(0);
            }
            Err(e) => {
                eprintln!("tend-os-probe: {e}");
                exit(1);
            }
        },
        Ok(Daemon::Child(sender)) => sender,
    };

    let mut report = String::new();
    let mut line = |key: &str, value: &dyn std::fmt::Display| {
        let _ = writeln!(report, "{key}={value}");
    };
    line("pid", &std::process::id());
    line("sid", &nix::unistd::getsid(None).map_or(-1, |p| p.as_raw()));
    line("pgid", &nix::unistd::getpgrp());
    line("ppid", &nix::unistd::getppid());
    line("tty", &tty_state());
    let cwd = std::env::current_dir().map_or_else(|e| e.to_string(), |p| p.display().to_string());
    line("cwd", &cwd);
    let umask = nix::sys::stat::umask(Mode::empty());
    nix::sys::stat::umask(umask);
    line("umask", &format_args!("{:03o}", umask.bits()));
    for fd in 0..=2 {
        let target = std::fs::read_link(format!("/proc/self/fd/{fd}"))
            .map_or_else(|e| e.to_string(), |p| p.display().to_string());
        line(&format!("fd{fd}"), &target);
    }
    let flags = fcntl(sender.as_fd().as_raw_fd(), FcntlArg::F_GETFD).unwrap_or(0);
    line("sender_cloexec", &(flags & libc::FD_CLOEXEC != 0));
    let _lock = opts
        .lock
        .as_ref()
        .map(|path| match LockFile::acquire(path) {
            Ok(lock) => {
                line("lock", &"acquired");
                Some(lock)
            }
            Err(e) => {
                line("lock", &e);
                None
            }
        });
    if opts.spawn_sleep {
        let pid = std::process::Command::new("sleep")
            .arg(WATCHDOG.as_secs().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_or(-1, |child| child.id() as i64);
        line("sleep_pid", &pid);
    }
    if let Some(log) = &opts.log {
        match tend_os::redirect_stdio_to(log) {
            Ok(()) => {
                println!("to stdout");
                eprintln!("to stderr");
                let _ = std::io::stdout().flush();
                let target = std::fs::read_link("/proc/self/fd/1")
                    .map_or_else(|e| e.to_string(), |p| p.display().to_string());
                line("log_fd1", &target);
            }
            Err(e) => line("log_fd1", &e),
        }
    }
    if let Err(e) = std::fs::write(&opts.report, report) {
        let _ = sender.failed(&format!("writing the report: {e}"));
        exit(2);
    }

    if opts.die {
        exit(3);
    }
    if let Some(message) = &opts.fail {
        let _ = sender.failed(message);
        exit(2);
    }
    let _ = sender.ready();
    std::thread::sleep(WATCHDOG);
    exit(0);
}

/// Whether this process has a controlling terminal: `yes`, or `none` when opening `/dev/tty`
/// fails with `ENXIO`.
fn tty_state() -> String {
    match open("/dev/tty", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()) {
        Ok(fd) => {
            let _ = nix::unistd::close(fd);
            "yes".to_owned()
        }
        Err(Errno::ENXIO) => "none".to_owned(),
        Err(e) => format!("{e}"),
    }
}

/// The children of this process, in any state, from /proc.
fn my_children() -> usize {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| {
                let stat = std::fs::read_to_string(e.ok()?.path().join("stat")).ok()?;
                // Fields after the command name, which may contain spaces: state, ppid, ...
                let rest = &stat[stat.rfind(')')? + 2..];
                (rest.split(' ').nth(1)? == me).then_some(())
            })
            .count()
        })
        .unwrap_or(0)
}

fn hold_lock(path: &str) -> ! {
    match LockFile::acquire(path.as_ref()) {
        Ok(_lock) => {
            println!("locked");
            let _ = std::io::stdout().flush();
            std::thread::sleep(WATCHDOG);
            exit(0);
        }
        Err(LockError::Held { pid }) => {
            println!("held {}", pid.map_or("-".to_owned(), |p| p.to_string()));
            exit(2);
        }
        Err(e) => {
            eprintln!("tend-os-probe: {e}");
            exit(1);
        }
    }
}

fn start_in_cgroup(dir: &str, no_clone3: bool) -> ! {
    if no_clone3 {
        refuse_clone3();
    }
    let dir = std::fs::File::open(dir).unwrap_or_else(|e| {
        eprintln!("tend-os-probe: {dir}: {e}");
        exit(1)
    });
    let argv = ["cat".to_owned(), "/proc/self/cgroup".to_owned()];
    let child = tend_os::spawn(&tend_os::Command {
        argv: &argv,
        cwd: None,
        env: &[],
        actions: &[tend_os::ChildAction::StartInCgroup(dir.as_fd())],
    })
    .unwrap_or_else(|e| {
        eprintln!("tend-os-probe: {e}");
        exit(1)
    });
    let mut out = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(child.stdout), &mut out)
        .expect("the child's output");
    let _ = tend_os::wait_exit(child.pid, WATCHDOG);
    let starts_in = match tend_os::starts_in_cgroup() {
        Some(true) => "true",
        Some(false) => "false",
        None => "unknown",
    };
    // After the spawn, so that a refused clone3 was met by the spawn itself (and fell back).
    let probed = tend_os::probe_start_in_cgroup();
    println!("{out}probe {probed}\nstarts_in {starts_in}");
    exit(0)
}

fn exec_without_clone3(argv: &[String]) -> ! {
    refuse_clone3();
    let err = std::os::unix::process::CommandExt::exec(
        std::process::Command::new(&argv[0]).args(&argv[1..]),
    );
    eprintln!("tend-os-probe: {}: {err}", argv[0]);
    exit(127)
}

/// A seccomp filter on this process (and what it spawns) that fails `clone3` with ENOSYS and
/// allows every other system call, as Docker's default profile does.
fn refuse_clone3() {
    let op = |code: u32, k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let filter = [
        // The system call's number (offset 0 of seccomp_data).
        op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
        op(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            libc::SYS_clone3 as u32,
            0,
            1,
        ),
        op(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
            0,
            0,
        ),
        op(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW, 0, 0),
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: prctl with integer arguments; the seccomp call reads `program`, which points to
    // `filter`, both alive for the call (the kernel copies the program).
    let rc = unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            -1
        } else {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &program as *const libc::sock_fprog,
            ) as i32
        }
    };
    if rc != 0 {
        eprintln!(
            "tend-os-probe: installing the seccomp filter: {}",
            std::io::Error::last_os_error()
        );
        exit(1);
    }
}
