//! Spawning a child into a clean, known state, whatever state tend itself is in.
//!
//! The child gets: stdin from `/dev/null` ([`spawn`], what tend uses) or from a pipe whose write
//! end the caller keeps ([`spawn_with_stdin`]); stdout and stderr each on its own pipe; its own
//! process group (its pid is the pgid); an empty signal mask and the default disposition for
//! every signal; no fd other than 0, 1 and 2; and the `RLIMIT_NOFILE` tend was started with.
//! tend owns reaping: the std child handle is dropped without waiting.

use std::io;
use std::mem;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::ptr;
use std::sync::OnceLock;

use crate::limits::original_nofile_limit;
use crate::{OsError, Pid};

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct Command<'a> {
    /// The program and its arguments; a program without `/` is looked up in `PATH` (the child's
    /// `PATH`, if `env` sets one).
    pub argv: &'a [String],
    /// The working directory of the child; tend's own when `None`. A relative program path is
    /// resolved from it.
    pub cwd: Option<&'a Path>,
    /// Variables set on top of the environment tend inherited.
    pub env: &'a [(String, String)],
}

/// A running child. Nobody has waited on it: the reaper must.
#[derive(Debug)]
pub struct Child {
    /// The child's pid, which is also its process group id.
    pub pid: Pid,
    /// The read end of the child's stdout pipe (blocking, `O_CLOEXEC`).
    pub stdout: OwnedFd,
    /// The read end of the child's stderr pipe (blocking, `O_CLOEXEC`).
    pub stderr: OwnedFd,
}

/// Spawns `cmd` as described in the module doc.
///
/// Fails with op `"spawn"` and the program as path when the program cannot be executed (e.g.
/// `ENOENT`, `EACCES`), op `"chdir"` and the directory when `cwd` is not one, and `EINVAL` for an
/// empty `argv`.
pub fn spawn(cmd: &Command<'_>) -> Result<Child, OsError> {
    spawn_inner(cmd, Stdio::null()).map(|(child, _)| child)
}

/// Spawns `cmd` like [`spawn`], but with stdin on a pipe: returns the child and the pipe's write
/// end (blocking, `O_CLOEXEC`, so no later child inherits it). Closing the write end is the
/// child's end of input (EOF).
///
/// Fails like [`spawn`].
pub fn spawn_with_stdin(cmd: &Command<'_>) -> Result<(Child, OwnedFd), OsError> {
    let (child, stdin) = spawn_inner(cmd, Stdio::piped())?;
    Ok((child, stdin.expect("stdin is piped")))
}

/// [`spawn`] with `stdin` as the child's stdin; returns the write end when it is a pipe.
fn spawn_inner(cmd: &Command<'_>, stdin: Stdio) -> Result<(Child, Option<OwnedFd>), OsError> {
    let Some((program, args)) = cmd.argv.split_first() else {
        return Err(OsError::new(
            "spawn",
            io::Error::from_raw_os_error(libc::EINVAL),
        ));
    };
    if let Some(dir) = cmd.cwd {
        // std reports a failed chdir in the child like a failed exec; check first to say which.
        match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                let err = io::Error::from_raw_os_error(libc::ENOTDIR);
                return Err(OsError::with_path("chdir", dir, err));
            }
            Err(err) => return Err(OsError::with_path("chdir", dir, err)),
        }
    }

    let mut command = std::process::Command::new(program);
    command
        .args(args)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(dir) = cmd.cwd {
        command.current_dir(dir);
    }
    let reset = ChildReset::prepare();
    // SAFETY: the closure runs in the child between fork and exec. It only reads `reset`, which
    // was fully computed before the fork, and makes async-signal-safe system calls: no
    // allocation, no lock, no logging.
    unsafe {
        command.pre_exec(move || reset.apply());
    }
    let mut child = command
        .spawn()
        .map_err(|e| OsError::with_path("spawn", program, e))?;
    let pid = child.id() as Pid;
    // std creates its pipes with O_CLOEXEC.
    let stdin = child.stdin.take().map(OwnedFd::from);
    let stdout = child.stdout.take().expect("stdout is piped").into();
    let stderr = child.stderr.take().expect("stderr is piped").into();
    // Dropping std's handle neither waits nor kills; tend's reaper owns waitpid.
    drop(child);
    Ok((
        Child {
            pid,
            stdout,
            stderr,
        },
        stdin,
    ))
}

/// A kernel `struct sigaction` (not glibc's) of all zeros: `SIG_DFL`, no flags, an empty mask,
/// whatever the architecture's field order. Larger than the struct on every architecture.
static KERNEL_DEFAULT: [u64; 8] = [0; 8];

/// The kernel's `sizeof(sigset_t)`, `_NSIG / 8`: 8 except on MIPS, where the fallback it serves
/// then fails harmlessly.
const KERNEL_SIGSET_SIZE: usize = 8;

/// Whether this kernel has `close_range` with `CLOSE_RANGE_CLOEXEC` (Linux 5.11), asked once.
fn close_range_works() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| {
        // An empty range above every fd: a no-op where supported, ENOSYS or EINVAL where not.
        // SAFETY: close_range on a range with no open fd changes nothing.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                libc::c_uint::MAX - 1,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            )
        };
        rc == 0
    })
}

/// The highest fd open in this process, from `/proc/self/fd` (2 if that cannot be read).
fn highest_open_fd() -> libc::c_int {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::c_int>().ok())
                .max()
                .unwrap_or(2)
        })
        .unwrap_or(2)
}

/// Everything the child needs to reset itself, computed before the fork.
struct ChildReset {
    /// A `sigaction` with `SIG_DFL`, no flags and an empty mask.
    default_action: libc::sigaction,
    /// The empty signal set.
    empty_mask: libc::sigset_t,
    /// The highest signal number (`SIGRTMAX`).
    max_signal: libc::c_int,
    /// The limits to restore, if tend raised its own.
    nofile: Option<libc::rlimit>,
    /// One past the highest fd open at the fork, for kernels without `close_range` (0 when
    /// `close_range` works). Not the fd limit: after `raise_nofile_limit` that can be 10^9.
    fd_limit: libc::c_int,
}

impl ChildReset {
    fn prepare() -> Self {
        // SAFETY: both are plain C structs for which all-zero bytes are a valid value;
        // sigemptyset then initialises the sets properly through valid pointers.
        let (mut default_action, mut empty_mask): (libc::sigaction, libc::sigset_t) =
            unsafe { (mem::zeroed(), mem::zeroed()) };
        default_action.sa_sigaction = libc::SIG_DFL;
        // SAFETY: valid pointers to owned sigset_t values.
        unsafe {
            libc::sigemptyset(&mut default_action.sa_mask);
            libc::sigemptyset(&mut empty_mask);
        }
        ChildReset {
            default_action,
            empty_mask,
            max_signal: libc::SIGRTMAX(),
            nofile: original_nofile_limit().map(|(soft, hard)| libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            }),
            fd_limit: if close_range_works() {
                0
            } else {
                highest_open_fd() + 1
            },
        }
    }

    /// Runs in the child between fork and exec: only async-signal-safe calls, no allocation.
    /// Errors must be OS errors: std sends their errno to the parent as the spawn error.
    fn apply(&self) -> io::Result<()> {
        for sig in 1..=self.max_signal {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            // SAFETY: sigaction is async-signal-safe and `default_action` is initialised.
            if unsafe { libc::sigaction(sig, &self.default_action, ptr::null_mut()) } != 0 {
                // glibc refuses its internal signals 32 and 33, yet they can arrive ignored:
                // glibc's posix_spawn sets them to SIG_IGN in its children. Ask the kernel.
                // SAFETY: a raw rt_sigaction is async-signal-safe; it reads `KERNEL_DEFAULT`,
                // which is larger than the kernel's struct, and writes nothing.
                unsafe {
                    libc::syscall(
                        libc::SYS_rt_sigaction,
                        sig,
                        KERNEL_DEFAULT.as_ptr(),
                        ptr::null_mut::<u64>(),
                        KERNEL_SIGSET_SIZE,
                    )
                };
            }
        }
        // std leaves the mask of the spawning thread in place (Rust 1.95). Unblock only now that
        // the dispositions are default: a signal arriving must not run a handler of tend here.
        // SAFETY: pthread_sigmask is async-signal-safe; `empty_mask` is initialised.
        let rc =
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.empty_mask, ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        if let Some(limit) = &self.nofile {
            // SAFETY: setrlimit is async-signal-safe; `limit` is a valid rlimit.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, limit) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // Mark, not close: std still needs its own CLOEXEC pipe to report a failed exec.
        // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets fd flags; a raw syscall is
        // async-signal-safe.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            )
        };
        if rc != 0 {
            // Kernels before 5.11: mark them one by one.
            for fd in 3..self.fd_limit {
                // SAFETY: fcntl(F_SETFD) is async-signal-safe; on a closed fd it fails harmlessly.
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
        }
        Ok(())
    }
}
