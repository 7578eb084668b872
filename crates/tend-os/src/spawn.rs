//! Spawning a child into a clean, known state, whatever state tend itself is in.
//!
//! The child gets: stdin from `/dev/null` ([`spawn`], what tend uses) or from a pipe whose write
//! end the caller keeps ([`spawn_with_stdin`]); stdout and stderr each on its own pipe; its own
//! process group (its pid is the pgid); an empty signal mask and the default disposition for
//! every signal; no fd other than 0, 1 and 2; and the `RLIMIT_NOFILE` tend was started with.
//! On top of that, [`Command::actions`] lists what else the child does before its exec (keep
//! an fd at a given number, change directory, set a limit, the umask, the nice value, drop to
//! a user and group, put its own pid in a variable), as data: a new need is a new
//! [`ChildAction`], not a new `unsafe` block.
//! tend owns reaping: nothing here waits for a child that started.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::fmt::Write as _;
use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::OnceLock;

pub use nix::sys::resource::Resource;

use crate::limits::original_nofile_limit;
use crate::{OsError, Pid};

/// What to run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Command<'a> {
    /// The program and its arguments; a program without `/` is looked up in `PATH` (the child's
    /// `PATH`, if `env` sets one).
    pub argv: &'a [String],
    /// The working directory of the child; tend's own when `None`. A relative program path is
    /// resolved from it (or from the last [`ChildAction::Chdir`], which comes after it).
    pub cwd: Option<&'a Path>,
    /// Variables set on top of the environment tend inherited.
    pub env: &'a [(String, String)],
    /// What the child does, in this order, after its reset, stdio and `cwd` and before its
    /// exec. Empty for a plain spawn.
    pub actions: &'a [ChildAction<'a>],
}

/// One thing the child does between the clone and the exec.
///
/// Actions run in the order given, after the child's reset (signals, process group, fds
/// marked close-on-exec, `RLIMIT_NOFILE`), after stdio is in place and after `cwd`. The first
/// that fails ends the spawn with an [`OsError`] naming it (`setuid 65534: Operation not
/// permitted`, `dup2 fd 7 to 3: Bad file descriptor`). Whatever an action needs is prepared
/// before the clone; the child only makes system calls.
#[derive(Debug, Clone, Copy)]
pub enum ChildAction<'a> {
    /// Makes fd `to` of the child a copy of `from`, kept across the exec (`FD_CLOEXEC`
    /// cleared, also when `from` already is `to`): stdio, or an extra fd at a given number
    /// (`LISTEN_FDS` at 3 and up). `from` is the fd as it is in tend: an earlier action that
    /// puts another file at that number does not change what `from` names.
    Dup2 {
        /// The open fd of tend's to copy.
        from: BorrowedFd<'a>,
        /// The fd number it gets in the child.
        to: RawFd,
    },
    /// Changes the working directory.
    Chdir(&'a Path),
    /// Sets a resource limit (`setrlimit`); raising a hard limit needs privilege.
    SetRlimit {
        /// Which limit.
        resource: Resource,
        /// The soft limit (`libc::RLIM_INFINITY` for none).
        soft: u64,
        /// The hard limit (`libc::RLIM_INFINITY` for none).
        hard: u64,
    },
    /// Sets the supplementary groups. Must come before [`ChildAction::SetUid`].
    SetGroups(&'a [u32]),
    /// Sets the real, effective and saved group id. Must come before [`ChildAction::SetUid`].
    SetGid(u32),
    /// Sets the real, effective and saved user id: the drop of privilege, so after the group
    /// actions (setgroups, then setgid, then setuid).
    SetUid(u32),
    /// Sets the file mode creation mask.
    Umask(u32),
    /// Sets the nice value (lowering it needs privilege).
    Nice(i32),
    /// Writes the OOM killer's adjustment (-1000 to 1000) to `/proc/self/oom_score_adj`
    /// (lowering it needs `CAP_SYS_RESOURCE`).
    OomScoreAdj(i32),
    /// Joins a cgroup: writes `0` (this process) to its `cgroup.procs`, open for writing in
    /// tend ([`crate::cgroup::Cgroup::procs_for_joining`]). Before the exec, so everything
    /// the program starts is in it.
    JoinCgroup(BorrowedFd<'a>),
    /// Starts the child in a cgroup2 cgroup: `dir` is an open fd of its directory (`O_PATH`
    /// is enough). Where the kernel allows (Linux 5.7, on x86-64), the child is made there
    /// (`clone3` with `CLONE_INTO_CGROUP`), so it never runs anywhere else and nothing moves
    /// it: a move (a write to `cgroup.procs`) waits for an RCU grace period, 10–20 ms, unless
    /// another happened just before. Elsewhere (an older kernel, a seccomp filter that
    /// refuses `clone3`, as container runtimes' default ones do) the child joins it first
    /// thing after the clone, as [`ChildAction::JoinCgroup`] does, through its
    /// `cgroup.procs`, at this action's place in the list: put it first, so that the
    /// other actions run in the cgroup either way. At most one per spawn. The directory must
    /// be a cgroup2 one: `clone3` fails the spawn with `EBADF` for another (the write would
    /// join whatever cgroup it is).
    StartInCgroup(BorrowedFd<'a>),
    /// Puts `name=<the child's own pid>` in the child's environment, replacing any inherited
    /// or `env` value (systemd's `LISTEN_PID`). The name must not be empty nor contain `=`.
    SetEnvPid {
        /// The variable's name.
        name: &'a str,
    },
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
/// `ENOENT`, `EACCES`), op `"chdir"` and the directory when `cwd` is not one, `EINVAL` for an
/// empty `argv`, and for a failed [`ChildAction`] with the action's own op and what it was
/// about as path (`setuid` and `65534`). Group actions after [`ChildAction::SetUid`] and an
/// invalid [`ChildAction::SetEnvPid`] name are refused before anything starts (`EINVAL`).
pub fn spawn(cmd: &Command<'_>) -> Result<Child, OsError> {
    let spawned = spawn_inner(cmd, Stdio::NullStdin)?;
    Ok(spawned.child())
}

/// Spawns `cmd` like [`spawn`], but with stdin on a pipe: returns the child and the pipe's write
/// end (blocking, `O_CLOEXEC`, so no later child inherits it). Closing the write end is the
/// child's end of input (EOF).
///
/// Fails like [`spawn`].
pub fn spawn_with_stdin(cmd: &Command<'_>) -> Result<(Child, OwnedFd), OsError> {
    let mut spawned = spawn_inner(cmd, Stdio::PipedStdin)?;
    let stdin = spawned.stdin.take().expect("stdin is piped");
    Ok((spawned.child(), stdin))
}

/// Spawns `cmd` like [`spawn`], but on a terminal: `terminal` (the terminal side of a
/// [`Pty`](crate::Pty)) is its stdin, stdout and stderr, and its controlling terminal. The
/// child leads a new session (`setsid`), whose only process group is its own (its pid is
/// the pgid, as with [`spawn`]), and that group is the terminal's foreground group: Ctrl+C
/// typed into the terminal interrupts it, a change of size sends it `SIGWINCH`.
///
/// Returns the child's pid; its output is read from the pty's master. Fails like [`spawn`].
pub fn spawn_on_terminal(cmd: &Command<'_>, terminal: BorrowedFd<'_>) -> Result<Pid, OsError> {
    spawn_inner(cmd, Stdio::Terminal(terminal)).map(|spawned| spawned.pid)
}

/// Where the child's stdio goes.
#[derive(Clone, Copy)]
enum Stdio<'a> {
    /// stdin from `/dev/null`, stdout and stderr on pipes.
    NullStdin,
    /// stdin, stdout and stderr on pipes.
    PipedStdin,
    /// All three on this terminal, which becomes the controlling terminal of a new session.
    Terminal(BorrowedFd<'a>),
}

/// A child that started, and tend's ends of its pipes (none for a terminal).
struct Spawned {
    pid: Pid,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    stdin: Option<OwnedFd>,
}

impl Spawned {
    /// The [`Child`] of a spawn on pipes.
    fn child(self) -> Child {
        Child {
            pid: self.pid,
            stdout: self.stdout.expect("stdout is piped"),
            stderr: self.stderr.expect("stderr is piped"),
        }
    }
}

/// [`spawn`] with the given stdio.
///
/// The child is made with `clone(CLONE_VM | CLONE_VFORK)`, as glibc's `posix_spawn` does: it
/// runs on its own stack in tend's memory until it executes the program, and this thread waits
/// until then. A `fork` would copy tend's page tables and turn tend's next writes to every page
/// into copy-on-write faults; that cost grows with tend, which grows with what it supervises
/// (docs/architecture.md has the figures). std's `Command` forks as soon as there is a
/// `pre_exec`, and ours is needed: posix_spawn cannot restore `RLIMIT_NOFILE`.
fn spawn_inner(cmd: &Command<'_>, stdio: Stdio<'_>) -> Result<Spawned, OsError> {
    let Some(program) = cmd.argv.first() else {
        return Err(OsError::new(
            "spawn",
            io::Error::from_raw_os_error(libc::EINVAL),
        ));
    };
    let spawn_error = |err: io::Error| OsError::with_path("spawn", program, err);

    // Everything the child reads is made here, before the clone: the child must not allocate.
    let mut parent_ends = Spawned {
        pid: 0,
        stdout: None,
        stderr: None,
        stdin: None,
    };
    // The child's ends, closed in tend when the spawn returns.
    let mut child_ends: Vec<OwnedFd> = Vec::with_capacity(3);
    let mut actions = Vec::with_capacity(4 + cmd.actions.len());
    let terminal = match stdio {
        Stdio::Terminal(terminal) => {
            for to in 0..3 {
                actions.push(ChildAction::Dup2 { from: terminal, to });
            }
            true
        }
        Stdio::NullStdin | Stdio::PipedStdin => {
            let stdin_child = if matches!(stdio, Stdio::PipedStdin) {
                let (read, write) = pipe_cloexec().map_err(spawn_error)?;
                parent_ends.stdin = Some(write);
                read
            } else {
                OwnedFd::from(
                    std::fs::File::open("/dev/null")
                        .map_err(|e| OsError::with_path("open", "/dev/null", e))?,
                )
            };
            let (stdout, stdout_child) = pipe_cloexec().map_err(spawn_error)?;
            let (stderr, stderr_child) = pipe_cloexec().map_err(spawn_error)?;
            parent_ends.stdout = Some(stdout);
            parent_ends.stderr = Some(stderr);
            child_ends.extend([stdin_child, stdout_child, stderr_child]);
            false
        }
    };
    // The whole list the child runs: stdio, the working directory, then the caller's actions.
    for (to, from) in child_ends.iter().enumerate() {
        actions.push(ChildAction::Dup2 {
            from: from.as_fd(),
            to: to as RawFd,
        });
    }
    if let Some(dir) = cmd.cwd {
        actions.push(ChildAction::Chdir(dir));
    }
    actions.extend_from_slice(cmd.actions);
    let mut plan = Plan::new(&actions)?;
    let image = ExecImage::new(cmd, &mut plan).map_err(spawn_error)?;
    let reset = ChildReset::prepare();
    let mut shell_argv = image.shell_argv.clone();
    let mut job = VforkJob {
        reset: &reset,
        steps: &plan.steps,
        candidates: &image.candidate_ptrs,
        argv: image.argv_ptrs.as_ptr(),
        envp: image.envp_ptrs.as_ptr(),
        shell_argv: shell_argv.as_mut_ptr(),
        terminal,
        failed_at: Stage::None,
        failed_step: 0,
        errno: 0,
    };
    let mut stack = vec![0u8; VFORK_STACK_SIZE];
    // The stack grows down on every architecture tend builds for; 16-byte aligned top.
    let stack_top = (stack.as_mut_ptr() as usize + stack.len()) & !15;

    // Signals blocked across the clone: until the child has set every disposition to the
    // default, a signal must not run one of tend's handlers on the child's side (in tend's
    // memory). The child unblocks just before its exec. (glibc's pthread_sigmask leaves its
    // two internal signals unblocked; glibc sends them only to tend's own threads.)
    let blocked = SignalsBlocked::new();
    let (pid, clone_error) = match plan.start_in {
        None => {
            // SAFETY: `vfork_child` matches clone's callback type. It reads `job` and the
            // memory it points to, and writes only `job.failed_at`, `job.failed_step`,
            // `job.errno`, slot 1 of `shell_argv`, the digits of the plan's pid variables and
            // this thread's errno (it shares our TLS; `clone_error` below is read only when no
            // child ran). All of it is alive until clone returns: with CLONE_VFORK, this
            // thread is suspended until the child has called execve or _exit, and nothing is
            // freed before that. The stack is VFORK_STACK_SIZE bytes we own, `stack_top` is
            // its 16-byte aligned end. SIGCHLD as the exit signal makes the child an ordinary
            // child for the reaper.
            let pid = unsafe {
                libc::clone(
                    vfork_child,
                    stack_top as *mut libc::c_void,
                    libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                    ptr::addr_of_mut!(job).cast(),
                )
            };
            (pid, io::Error::last_os_error())
        }
        // SAFETY: as for clone above: the same callback, job, stack and flags (and
        // CLONE_INTO_CGROUP), and `dir` is an fd the caller's action borrows.
        Some(dir) => unsafe {
            into_cgroup::clone_vfork(
                vfork_child,
                stack.as_mut_ptr(),
                stack_top,
                ptr::addr_of_mut!(job).cast(),
                dir,
            )
        },
    };
    drop(blocked);
    drop(stack);
    if pid < 0 {
        if plan.start_in.is_some() && into_cgroup::refused(&clone_error) {
            // This kernel (or a seccomp filter) has no clone3 or no CLONE_INTO_CGROUP: from
            // now on the child joins its cgroup by itself.
            drop(child_ends);
            drop(parent_ends);
            return spawn_inner(cmd, stdio);
        }
        return Err(match plan.start_in {
            Some(_) => OsError::new("clone3 into a cgroup", clone_error),
            None => OsError::new("clone", clone_error),
        });
    }
    if plan.start_in.is_some() {
        into_cgroup::worked();
    }
    // SAFETY: the child wrote these fields, if at all, before it exited; it is gone from our
    // memory now (CLONE_VFORK). Volatile: the compiler did not see the write.
    let (failed_at, failed_step, errno) = unsafe {
        (
            ptr::read_volatile(ptr::addr_of!(job.failed_at)),
            ptr::read_volatile(ptr::addr_of!(job.failed_step)),
            ptr::read_volatile(ptr::addr_of!(job.errno)),
        )
    };
    if failed_at != Stage::None {
        // It called _exit(127): reap it here, at once, so the reaper never sees a pid it was
        // not told about.
        reap_failed(pid);
        let err = io::Error::from_raw_os_error(errno);
        return Err(match actions.get(failed_step) {
            Some(action) if failed_at == Stage::Action => action_error(action, err),
            _ => spawn_error(err),
        });
    }
    // The child's ends (`child_ends`) close here, in tend.
    drop(child_ends);
    parent_ends.pid = pid;
    Ok(parent_ends)
}

/// The error of a failed action: its system call as op, what it was about as path.
fn action_error(action: &ChildAction<'_>, err: io::Error) -> OsError {
    let (op, about): (&'static str, PathBuf) = match *action {
        ChildAction::Dup2 { from, to } => {
            ("dup2", format!("fd {} to {to}", from.as_raw_fd()).into())
        }
        ChildAction::Chdir(dir) => ("chdir", dir.into()),
        ChildAction::SetRlimit {
            resource,
            soft,
            hard,
        } => (
            "setrlimit",
            format!("{resource:?} soft {soft} hard {hard}").into(),
        ),
        ChildAction::SetGroups(groups) => {
            let mut list = String::new();
            for gid in groups {
                let sep = if list.is_empty() { "" } else { "," };
                let _ = write!(list, "{sep}{gid}");
            }
            ("setgroups", list.into())
        }
        ChildAction::SetGid(gid) => ("setgid", gid.to_string().into()),
        ChildAction::SetUid(uid) => ("setuid", uid.to_string().into()),
        ChildAction::Umask(mask) => ("umask", format!("{mask:04o}").into()),
        ChildAction::Nice(nice) => ("setpriority", format!("nice {nice}").into()),
        ChildAction::OomScoreAdj(adj) => (
            "write /proc/self/oom_score_adj",
            format!("oom_score_adj {adj}").into(),
        ),
        ChildAction::JoinCgroup(fd) => (
            "join a cgroup",
            format!("cgroup.procs at fd {}", fd.as_raw_fd()).into(),
        ),
        ChildAction::SetEnvPid { name } => ("setenv", name.into()),
        ChildAction::StartInCgroup(fd) => (
            "start in a cgroup",
            format!("the cgroup directory at fd {}", fd.as_raw_fd()).into(),
        ),
    };
    OsError::with_path(op, about, err)
}

/// The child's stack: it calls a few libc wrappers and nothing deep.
const VFORK_STACK_SIZE: usize = 64 * 1024;

/// Where the child gave up, if it did.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C)]
enum Stage {
    None,
    Reset,
    /// At `VforkJob::failed_step`.
    Action,
    Exec,
}

/// A [`ChildAction`] as the child runs it: numbers and pointers into a [`Plan`] and the
/// [`ExecImage`], nothing to allocate or look up.
#[derive(Clone, Copy)]
enum Step {
    Dup2 {
        from: libc::c_int,
        to: libc::c_int,
    },
    /// A NUL-terminated path.
    Chdir(*const libc::c_char),
    SetRlimit {
        resource: libc::c_int,
        limit: libc::rlimit,
    },
    SetGroups {
        list: *const libc::gid_t,
        len: usize,
    },
    SetGid(libc::gid_t),
    SetUid(libc::uid_t),
    Umask(libc::mode_t),
    Nice(libc::c_int),
    /// Writes `len` bytes at `text` to the open `fd`.
    WriteFd {
        fd: libc::c_int,
        text: *const u8,
        len: usize,
    },
    /// Writes `len` bytes at `text` to the NUL-terminated `path`.
    WriteFile {
        path: *const libc::c_char,
        text: *const u8,
        len: usize,
    },
    /// The pid's digits go at `buf + at`, then a NUL; the buffer has room for
    /// [`PID_DIGITS`] + 1 bytes there.
    EnvPid {
        buf: *mut u8,
        at: usize,
    },
    /// Nothing for the child to do: the clone did it ([`ChildAction::StartInCgroup`]).
    Nothing,
}

/// The most digits of a pid (`pid_t` is 32 bits).
const PID_DIGITS: usize = 10;

/// The child's actions, prepared: the steps and everything they point to.
struct Plan {
    steps: Vec<Step>,
    /// The paths the `Chdir` steps point into.
    _paths: Vec<CString>,
    /// The group lists the `SetGroups` steps point into.
    _groups: Vec<Vec<libc::gid_t>>,
    /// The texts the `WriteFile` steps write.
    _texts: Vec<Vec<u8>>,
    /// Copies of `Dup2` sources that an earlier `Dup2` would have replaced in the child,
    /// above every target (`O_CLOEXEC`, closed when the spawn returns).
    _moved: Vec<OwnedFd>,
    /// The names of the `SetEnvPid` variables and the index of their step, which
    /// [`ExecImage::new`] fills in (it makes the buffers, in the environment).
    env_pids: Vec<(OsString, usize)>,
    /// The cgroup2 directory the clone puts the child in ([`ChildAction::StartInCgroup`]
    /// with `clone3`), if any.
    start_in: Option<RawFd>,
    /// The `cgroup.procs` a [`ChildAction::StartInCgroup`] writes to when the clone cannot
    /// start the child there (above every `Dup2` target).
    _joins: Vec<OwnedFd>,
}

impl Plan {
    fn new(actions: &[ChildAction<'_>]) -> Result<Self, OsError> {
        let invalid =
            |op: &'static str| OsError::new(op, io::Error::from_raw_os_error(libc::EINVAL));
        let highest_target = actions
            .iter()
            .filter_map(|a| match a {
                ChildAction::Dup2 { to, .. } => Some(*to),
                _ => None,
            })
            .max()
            .unwrap_or(2);
        let mut plan = Plan {
            steps: Vec::with_capacity(actions.len()),
            _paths: Vec::new(),
            _groups: Vec::new(),
            _texts: Vec::new(),
            _moved: Vec::new(),
            env_pids: Vec::new(),
            start_in: None,
            _joins: Vec::new(),
        };
        let mut uid_set = false;
        let mut targets_so_far: Vec<RawFd> = Vec::new();
        for (index, action) in actions.iter().enumerate() {
            let step = match *action {
                ChildAction::Dup2 { from, to } => {
                    if to < 0 {
                        return Err(action_error(
                            action,
                            io::Error::from_raw_os_error(libc::EBADF),
                        ));
                    }
                    let mut source = from.as_raw_fd();
                    if targets_so_far.contains(&source) {
                        // An earlier dup2 puts another file at this number in the child:
                        // copy ours out of the way, above every target.
                        let moved = dup_above(from, highest_target + 1)
                            .map_err(|err| action_error(action, err))?;
                        source = moved.as_raw_fd();
                        plan._moved.push(moved);
                    }
                    if source != to {
                        targets_so_far.push(to);
                    }
                    Step::Dup2 { from: source, to }
                }
                ChildAction::Chdir(dir) => {
                    let path = CString::new(dir.as_os_str().as_bytes()).map_err(|_| {
                        action_error(action, io::Error::from_raw_os_error(libc::EINVAL))
                    })?;
                    let step = Step::Chdir(path.as_ptr());
                    plan._paths.push(path);
                    step
                }
                ChildAction::SetRlimit {
                    resource,
                    soft,
                    hard,
                } => Step::SetRlimit {
                    resource: resource as libc::c_int,
                    limit: libc::rlimit {
                        rlim_cur: soft as libc::rlim_t,
                        rlim_max: hard as libc::rlim_t,
                    },
                },
                ChildAction::SetGroups(groups) => {
                    if uid_set {
                        return Err(invalid("setgroups after setuid"));
                    }
                    let list: Vec<libc::gid_t> = groups.to_vec();
                    let step = Step::SetGroups {
                        list: list.as_ptr(),
                        len: list.len(),
                    };
                    plan._groups.push(list);
                    step
                }
                ChildAction::SetGid(gid) => {
                    if uid_set {
                        return Err(invalid("setgid after setuid"));
                    }
                    Step::SetGid(gid)
                }
                ChildAction::SetUid(uid) => {
                    uid_set = true;
                    Step::SetUid(uid)
                }
                ChildAction::Umask(mask) => Step::Umask(mask as libc::mode_t),
                ChildAction::Nice(nice) => Step::Nice(nice),
                ChildAction::JoinCgroup(fd) => Step::WriteFd {
                    fd: fd.as_raw_fd(),
                    text: b"0".as_ptr(),
                    len: 1,
                },
                ChildAction::OomScoreAdj(adj) => {
                    if !(-1000..=1000).contains(&adj) {
                        return Err(invalid("oom_score_adj: -1000 to 1000"));
                    }
                    let path = CString::new("/proc/self/oom_score_adj").expect("no NUL");
                    let text = adj.to_string().into_bytes();
                    let step = Step::WriteFile {
                        path: path.as_ptr(),
                        text: text.as_ptr(),
                        len: text.len(),
                    };
                    plan._paths.push(path);
                    plan._texts.push(text);
                    step
                }
                ChildAction::StartInCgroup(dir) => {
                    if plan.start_in.is_some() || !plan._joins.is_empty() {
                        return Err(invalid("start in a cgroup: at most one"));
                    }
                    if into_cgroup::usable() {
                        plan.start_in = Some(dir.as_raw_fd());
                        Step::Nothing
                    } else {
                        let procs = open_procs_above(dir, highest_target + 1)
                            .map_err(|err| action_error(action, err))?;
                        let step = Step::WriteFd {
                            fd: procs.as_raw_fd(),
                            text: b"0".as_ptr(),
                            len: 1,
                        };
                        plan._joins.push(procs);
                        step
                    }
                }
                ChildAction::SetEnvPid { name } => {
                    if name.is_empty() || name.contains('=') || name.contains('\0') {
                        return Err(invalid("setenv: a variable name"));
                    }
                    plan.env_pids.push((name.into(), index));
                    // Filled in by ExecImage::new, which makes the buffer.
                    Step::EnvPid {
                        buf: ptr::null_mut(),
                        at: 0,
                    }
                }
            };
            plan.steps.push(step);
        }
        Ok(plan)
    }
}

/// A copy of `fd` at the lowest free number at or above `min`, `O_CLOEXEC`.
fn dup_above(fd: BorrowedFd<'_>, min: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on an fd the borrow keeps open; it returns a new fd or -1.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// The `cgroup.procs` of the cgroup directory `dir`, open for writing, at a number at or above
/// `min` (`O_CLOEXEC`).
fn open_procs_above(dir: BorrowedFd<'_>, min: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: openat on a directory fd the borrow keeps open and a NUL-terminated name; it
    // returns a new fd or -1.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c"cgroup.procs".as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    let procs = unsafe { OwnedFd::from_raw_fd(fd) };
    if fd >= min {
        return Ok(procs);
    }
    dup_above(procs.as_fd(), min)
}

/// What the child of [`spawn_inner`] reads, and where it writes how it failed.
struct VforkJob<'a> {
    reset: &'a ChildReset,
    /// What to do after the reset, in order: stdio, cwd, the caller's actions.
    steps: &'a [Step],
    /// The paths to try, in order (one, or one per `PATH` entry); null-terminated.
    candidates: &'a [*const libc::c_char],
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    /// `["/bin/sh", <candidate>, args…, null]`, for a program the kernel cannot execute
    /// (ENOEXEC) that execvp would run with the shell; slot 1 is filled in by the child.
    shell_argv: *mut *const libc::c_char,
    /// Whether the child leads a new session whose controlling terminal is its stdin
    /// ([`spawn_on_terminal`]), rather than a new process group only.
    terminal: bool,
    failed_at: Stage,
    failed_step: usize,
    errno: libc::c_int,
}

/// The child's side of [`spawn_inner`]: reset, run the steps, execute.
extern "C" fn vfork_child(job: *mut libc::c_void) -> libc::c_int {
    // SAFETY: clone passes the `VforkJob` spawn_inner gave it, alive while the parent waits.
    let job = unsafe { &mut *job.cast::<VforkJob<'_>>() };
    if let Err(err) = job.reset.apply() {
        fail(
            job,
            Stage::Reset,
            err.raw_os_error().unwrap_or(libc::EINVAL),
        );
    }
    if job.terminal {
        // SAFETY: setsid is async-signal-safe; the child is no group leader yet (its pid is
        // new), so it gets a new session and a new group, both of its own.
        if unsafe { libc::setsid() } < 0 {
            fail(job, Stage::Reset, last_errno());
        }
    } else {
        // SAFETY: setpgid is async-signal-safe; (0, 0) puts this process in a new group of
        // its own.
        if unsafe { libc::setpgid(0, 0) } != 0 {
            fail(job, Stage::Reset, last_errno());
        }
    }
    let steps = job.steps;
    for (index, step) in steps.iter().enumerate() {
        if let Err(errno) = step.run() {
            job.failed_step = index;
            fail(job, Stage::Action, errno);
        }
        // The terminal is on fd 0 after the first three steps (stdio): make it the session's
        // controlling terminal, and so its group the terminal's foreground group.
        // SAFETY: ioctl is async-signal-safe; TIOCSCTTY takes an int argument (0: do not
        // steal it from another session).
        if job.terminal && index == 2 && unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } != 0 {
            fail(job, Stage::Reset, last_errno());
        }
    }
    // Last before the exec, as posix_spawn does: until now the child was still in tend's
    // process group, where a stop signal would freeze it, and tend waiting for it.
    if let Err(err) = job.reset.unblock_signals() {
        fail(
            job,
            Stage::Reset,
            err.raw_os_error().unwrap_or(libc::EINVAL),
        );
    }
    // execvp's search, without its allocations: a path that is not there (or not a directory)
    // tries the next; one that is there but not executable is remembered as EACCES; any other
    // error ends the search with that error.
    let mut errno = libc::ENOENT;
    let mut denied = false;
    for &path in job.candidates.iter().take_while(|p| !p.is_null()) {
        // SAFETY: `path`, `argv` and `envp` are NUL-terminated strings and null-terminated
        // arrays that spawn_inner built and keeps alive; execve only returns on failure.
        unsafe { libc::execve(path, job.argv, job.envp) };
        errno = last_errno();
        if errno == libc::ENOEXEC {
            // No format the kernel knows: execvp runs it with the shell, so do we.
            // SAFETY: slot 1 of `shell_argv` exists (the array has at least 3 slots) and is
            // ours to fill; the strings it points to are alive as above.
            unsafe {
                *job.shell_argv.add(1) = path;
                libc::execve(*job.shell_argv, job.shell_argv, job.envp);
            }
            errno = last_errno();
        }
        match errno {
            libc::EACCES => denied = true,
            libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
            _ => fail(job, Stage::Exec, errno),
        }
    }
    fail(job, Stage::Exec, if denied { libc::EACCES } else { errno })
}

// The 32-bit id calls: on 32-bit x86 and Arm the plain numbers take 16-bit ids.
#[cfg(not(any(target_arch = "x86", target_arch = "arm")))]
use libc::{SYS_setgid as SYS_SETGID, SYS_setgroups as SYS_SETGROUPS, SYS_setuid as SYS_SETUID};
#[cfg(any(target_arch = "x86", target_arch = "arm"))]
use libc::{
    SYS_setgid32 as SYS_SETGID, SYS_setgroups32 as SYS_SETGROUPS, SYS_setuid32 as SYS_SETUID,
};

impl Step {
    /// Runs in the child: one system call or two, async-signal-safe, no allocation. Returns
    /// the errno of a failure.
    ///
    /// The id changes are raw system calls, as in glibc's posix_spawn: in a process glibc
    /// thinks has threads, its `setuid` and friends take a lock, mark every thread in glibc's
    /// list and signal each to change its ids too (the setxid broadcast). This child shares
    /// tend's memory, so that list, those marks and that lock are tend's: a lock held by one
    /// of tend's threads at the clone would never be released. A raw call touches nothing of
    /// glibc's and changes this process (a single thread) only.
    fn run(&self) -> Result<(), libc::c_int> {
        // Each arm is one async-signal-safe call on numbers, or on pointers into a Plan or
        // an ExecImage that spawn_inner keeps alive until the child has exec'd or exited.
        let rc: libc::c_long = match *self {
            Step::Dup2 { from, to } if from == to => {
                // SAFETY: F_SETFD on an fd number; on a closed one it fails with EBADF.
                unsafe { libc::fcntl(to, libc::F_SETFD, 0) }.into()
            }
            // SAFETY: dup2 is async-signal-safe; the copy at `to` is without FD_CLOEXEC.
            Step::Dup2 { from, to } => unsafe { libc::dup2(from, to) }.into(),
            // SAFETY: `dir` is a NUL-terminated string the Plan owns.
            Step::Chdir(dir) => unsafe { libc::chdir(dir) }.into(),
            Step::SetRlimit { resource, limit } => {
                // SAFETY: `limit` is a valid rlimit on our stack; setrlimit is a syscall.
                unsafe { libc::setrlimit(resource as _, &limit) }.into()
            }
            Step::SetGroups { list, len } => {
                // SAFETY: `list` points to `len` gids the Plan owns; a raw syscall.
                unsafe { libc::syscall(SYS_SETGROUPS, len, list) }
            }
            // SAFETY: a raw syscall on a number.
            Step::SetGid(gid) => unsafe { libc::syscall(SYS_SETGID, gid) },
            // SAFETY: a raw syscall on a number.
            Step::SetUid(uid) => unsafe { libc::syscall(SYS_SETUID, uid) },
            Step::Umask(mask) => {
                // SAFETY: umask cannot fail.
                unsafe { libc::umask(mask) };
                0
            }
            Step::Nice(nice) => {
                // SAFETY: setpriority on this process (0); a syscall.
                unsafe { libc::setpriority(libc::PRIO_PROCESS as _, 0, nice) }.into()
            }
            Step::WriteFd { fd, text, len } => {
                // SAFETY: `text` points to `len` bytes of a static; `fd` is open in the child
                // (a copy of tend's, until the exec).
                unsafe { libc::write(fd, text.cast(), len) }
                    .try_into()
                    .unwrap_or(-1)
            }
            Step::WriteFile { path, text, len } => {
                // SAFETY: `path` is a NUL-terminated string the Plan owns; open is a syscall.
                let fd = unsafe { libc::open(path, libc::O_WRONLY | libc::O_CLOEXEC) };
                if fd < 0 {
                    return Err(last_errno());
                }
                // SAFETY: `text` points to `len` bytes the Plan owns; `fd` is ours.
                let written = unsafe { libc::write(fd, text.cast(), len) };
                let errno = last_errno();
                // SAFETY: closing the fd this step opened.
                unsafe { libc::close(fd) };
                if written < 0 {
                    return Err(errno);
                }
                0
            }
            Step::Nothing => 0,
            Step::EnvPid { buf, at } => {
                // SAFETY: getpid cannot fail; raw, since this child shares glibc's memory.
                let pid = unsafe { libc::syscall(libc::SYS_getpid) };
                // SAFETY: ExecImage made `buf` with PID_DIGITS + 1 bytes from `at`; nothing
                // else reads or writes them until the child has exec'd or exited.
                let digits = unsafe { std::slice::from_raw_parts_mut(buf.add(at), PID_DIGITS + 1) };
                let len = format_decimal(pid as u32, &mut digits[..PID_DIGITS]);
                digits[len] = 0;
                0
            }
        };
        if rc < 0 {
            return Err(last_errno());
        }
        Ok(())
    }
}

/// Writes `n` in decimal at the start of `out` and returns how many digits it took. `out`
/// must have room for them (10 for any `u32`). Async-signal-safe: no allocation.
fn format_decimal(mut n: u32, out: &mut [u8]) -> usize {
    let mut len = 0;
    let mut m = n;
    loop {
        len += 1;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    for slot in out[..len].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    len
}

/// This thread's errno (in the child: the errno of the thread that cloned it, which waits).
fn last_errno() -> libc::c_int {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EINVAL)
}

/// Records why the child gives up and exits it without running any of tend's exit code.
fn fail(job: &mut VforkJob<'_>, stage: Stage, errno: libc::c_int) -> ! {
    job.failed_at = stage;
    job.errno = errno;
    // SAFETY: _exit is async-signal-safe and ends only this child: no atexit handler, no
    // destructor, no flush of tend's buffers from the child's side.
    unsafe { libc::_exit(127) }
}

/// Waits for a child that failed before its exec and is exiting.
fn reap_failed(pid: Pid) {
    loop {
        // SAFETY: waitpid on our own child's pid, with a null status pointer.
        let rc = unsafe { libc::waitpid(pid, ptr::null_mut(), 0) };
        if rc >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// `clone3(CLONE_VM | CLONE_VFORK | CLONE_INTO_CGROUP)`: the vfork-style clone of
/// [`spawn_inner`], with the child made in a cgroup2 directory ([`ChildAction::StartInCgroup`]),
/// and whether this kernel allows it. glibc has no public wrapper for a `clone3` that runs a
/// function on a new stack (posix_spawn uses a private one), so the system call is made here,
/// in a few instructions that do what glibc's do: in the child, call the function on the new
/// stack and `_exit` with what it returns, never returning into the caller's frames.
mod into_cgroup {
    use std::io;
    use std::os::fd::RawFd;
    use std::sync::atomic::{AtomicU8, Ordering};

    /// Not tried yet, works, refused (no clone3, no CLONE_INTO_CGROUP, or not on this
    /// architecture).
    const UNKNOWN: u8 = 0;
    const WORKS: u8 = 1;
    const REFUSED: u8 = 2;
    static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);

    /// Whether tend-os makes the clone3 itself here: x86-64 (not x32), the one architecture
    /// [`clone_vfork`] has instructions for.
    const CLONES_ITSELF: bool = cfg!(all(target_arch = "x86_64", target_pointer_width = "64"));

    /// `CLONE_INTO_CGROUP` (Linux 5.7), not in every libc.
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

    /// `struct clone_args` up to `cgroup` (`CLONE_ARGS_SIZE_VER2`, 88 bytes).
    #[repr(C)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }

    /// Whether a spawn should try the clone into the cgroup (it has not been refused).
    pub(super) fn usable() -> bool {
        CLONES_ITSELF && STATE.load(Ordering::Relaxed) != REFUSED
    }

    /// Whether a failed clone3 says the kernel (or a seccomp filter) does not do it at all,
    /// rather than that this spawn cannot: then it is not tried again.
    pub(super) fn refused(err: &io::Error) -> bool {
        // ENOSYS: no clone3 (before 5.3, or a filter: Docker's default returns ENOSYS for
        // it); EINVAL: a flag it does not know (5.3 to 5.6); E2BIG: the args' size.
        let refused = matches!(
            err.raw_os_error(),
            Some(libc::ENOSYS | libc::EINVAL | libc::E2BIG | libc::EPERM)
        ) && STATE.load(Ordering::Relaxed) != WORKS;
        if refused {
            STATE.store(REFUSED, Ordering::Relaxed);
        }
        refused
    }

    /// A clone into a cgroup worked: failures from now on are this spawn's own.
    pub(super) fn worked() {
        STATE.store(WORKS, Ordering::Relaxed);
    }

    /// Asks the kernel, without making a process, whether a spawn with
    /// [`super::ChildAction::StartInCgroup`] can make its child in the cgroup: `clone3` is
    /// there and not filtered (a `clone3` of no arguments is refused for its size, `EINVAL`,
    /// where a seccomp filter or a kernel before 5.3 answers `ENOSYS` or `EPERM`), the kernel
    /// is 5.7 or later (`CLONE_INTO_CGROUP`), and tend-os makes the clone itself on this
    /// architecture. When it cannot, spawns join their cgroup by a write from the start.
    pub fn probe_start_in_cgroup() -> bool {
        if !CLONES_ITSELF {
            return false;
        }
        // SAFETY: clone3 with a null argument pointer and a size of 0: the kernel refuses the
        // size before it reads anything or makes a process.
        let rc = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<CloneArgs>(), 0usize) };
        let clone3 = rc == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL);
        let usable = clone3 && kernel_at_least(5, 7);
        if !usable {
            STATE.store(REFUSED, Ordering::Relaxed);
        }
        usable
    }

    /// Whether the running kernel's release is `major.minor` or later.
    fn kernel_at_least(major: u32, minor: u32) -> bool {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut numbers = release
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse::<u32>().ok());
        (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0)) >= (major, minor)
    }

    /// Whether a spawn with [`super::ChildAction::StartInCgroup`] makes its child in the
    /// cgroup (`Some(true)`), or the child moves itself (`Some(false)`); `None` until one
    /// has been tried (or [`probe_start_in_cgroup`] asked).
    pub fn starts_in_cgroup() -> Option<bool> {
        match STATE.load(Ordering::Relaxed) {
            WORKS => Some(true),
            REFUSED => Some(false),
            _ if !CLONES_ITSELF => Some(false),
            _ => None,
        }
    }

    /// Runs `child(arg)` in a new process made by `clone3` with `CLONE_VM | CLONE_VFORK |
    /// CLONE_INTO_CGROUP` and SIGCHLD as its exit signal, on the stack from `stack` to
    /// `stack_top` (16-byte aligned), in the cgroup2 directory `cgroup`. Returns the child's
    /// pid, or -1 and the error; with CLONE_VFORK, once the child has exec'd or exited.
    ///
    /// # Safety
    ///
    /// As for `libc::clone` with CLONE_VM: `child` must never return into this thread's
    /// frames (it runs on its own stack and this function `_exit`s with what it returns),
    /// and everything it reads must stay alive until this returns.
    #[cfg(all(target_arch = "x86_64", target_pointer_width = "64"))]
    pub(super) unsafe fn clone_vfork(
        child: extern "C" fn(*mut libc::c_void) -> libc::c_int,
        stack: *mut u8,
        stack_top: usize,
        arg: *mut libc::c_void,
        cgroup: RawFd,
    ) -> (libc::c_int, io::Error) {
        let args = CloneArgs {
            flags: (libc::CLONE_VM | libc::CLONE_VFORK) as u64 | CLONE_INTO_CGROUP,
            pidfd: 0,
            child_tid: 0,
            parent_tid: 0,
            exit_signal: libc::SIGCHLD as u64,
            stack: stack as u64,
            stack_size: (stack_top - stack as usize) as u64,
            tls: 0,
            set_tid: 0,
            set_tid_size: 0,
            cgroup: cgroup as u64,
        };
        let ret: libc::c_long;
        // SAFETY: the clone3 system call. The parent comes back from it with the pid (or
        // -errno) in rax, having lost only rcx and r11 (and rax), and jumps over the child's
        // part. The child comes back with 0 in rax and its stack pointer at `stack_top`, the
        // other registers as the parent's: it clears the frame pointer, calls `child(arg)`
        // (the stack is 16-byte aligned at the call, as the ABI wants) and exits with its
        // result, so it never runs the code after this block nor touches the parent's stack.
        // As in glibc's clone3.S, the child's code says its return address is unknown, so
        // that an unwinder (a debugger, a profiler) stops there instead of walking into the
        // parent's frames from the child's stack; the parent's unwind state is restored at
        // the label.
        unsafe {
            std::arch::asm!(
                "syscall",
                "test rax, rax",
                "jnz 2f",
                ".cfi_remember_state",
                ".cfi_undefined rip",
                "xor ebp, ebp",
                "mov rdi, r12",
                "call r13",
                "mov edi, eax",
                "mov eax, {exit}",
                "syscall",
                "ud2",
                "2:",
                ".cfi_restore_state",
                exit = const libc::SYS_exit,
                inlateout("rax") libc::SYS_clone3 => ret,
                in("rdi") &args as *const CloneArgs,
                in("rsi") std::mem::size_of::<CloneArgs>(),
                in("r12") arg,
                in("r13") child,
                lateout("rcx") _,
                lateout("r11") _,
            );
        }
        if ret < 0 {
            return (-1, io::Error::from_raw_os_error(-ret as i32));
        }
        (ret as libc::c_int, io::Error::from_raw_os_error(0))
    }

    /// Never called: [`usable`] is false on other architectures.
    #[cfg(not(all(target_arch = "x86_64", target_pointer_width = "64")))]
    pub(super) unsafe fn clone_vfork(
        _child: extern "C" fn(*mut libc::c_void) -> libc::c_int,
        _stack: *mut u8,
        _stack_top: usize,
        _arg: *mut libc::c_void,
        _cgroup: RawFd,
    ) -> (libc::c_int, io::Error) {
        (-1, io::Error::from_raw_os_error(libc::ENOSYS))
    }
}

pub use into_cgroup::{probe_start_in_cgroup, starts_in_cgroup};

/// Blocks every signal in this thread until dropped, then restores the previous mask.
struct SignalsBlocked {
    previous: libc::sigset_t,
}

impl SignalsBlocked {
    fn new() -> Self {
        // SAFETY: all-zero bytes are a valid sigset_t; sigfillset and pthread_sigmask get valid
        // pointers to owned sets.
        unsafe {
            let mut all: libc::sigset_t = mem::zeroed();
            let mut previous: libc::sigset_t = mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut previous);
            SignalsBlocked { previous }
        }
    }
}

impl Drop for SignalsBlocked {
    fn drop(&mut self) {
        // SAFETY: restores a mask pthread_sigmask itself returned.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.previous, ptr::null_mut()) };
    }
}

/// A pipe, both ends `O_CLOEXEC`: (read, write).
fn pipe_cloexec() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two fds into the array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just opened and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The program, arguments and environment as C strings, and the null-terminated pointer
/// arrays over them that execve takes. The pointers point into the `CString`s' heap buffers,
/// which do not move when this struct does.
struct ExecImage {
    _strings: Vec<CString>,
    /// The `NAME=` entries whose pid digits the child writes ([`Step::EnvPid`]).
    _pid_vars: Vec<Vec<u8>>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
    candidate_ptrs: Vec<*const libc::c_char>,
    shell_argv: Vec<*const libc::c_char>,
}

impl ExecImage {
    /// Builds the image of `cmd`, with the variables of `plan`'s `SetEnvPid` actions, and
    /// points those steps at their buffers.
    fn new(cmd: &Command<'_>, plan: &mut Plan) -> io::Result<Self> {
        let c_string = |bytes: &[u8]| {
            CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
        };
        let mut strings = Vec::new();
        let mut keep = |s: CString| {
            let p = s.as_ptr();
            strings.push(s);
            p
        };

        let argv: Vec<CString> = cmd
            .argv
            .iter()
            .map(|a| c_string(a.as_bytes()))
            .collect::<io::Result<_>>()?;
        let program = cmd.argv[0].as_bytes();

        // The environment tend inherited, with `env` on top (a later entry wins).
        let mut env: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
        for (key, value) in cmd.env {
            env.insert(key.into(), value.into());
        }
        for (name, _) in &plan.env_pids {
            env.remove(name);
        }
        let mut envp_ptrs = Vec::with_capacity(env.len() + plan.env_pids.len() + 1);
        for (key, value) in &env {
            let mut entry = key.as_bytes().to_vec();
            entry.push(b'=');
            entry.extend_from_slice(value.as_bytes());
            envp_ptrs.push(keep(c_string(&entry)?));
        }
        // `NAME=` and room for the digits and their NUL, which the child writes.
        let mut pid_vars = Vec::with_capacity(plan.env_pids.len());
        for (name, index) in &plan.env_pids {
            let mut entry = name.as_bytes().to_vec();
            entry.push(b'=');
            let at = entry.len();
            entry.resize(at + PID_DIGITS + 1, 0);
            let buf = entry.as_mut_ptr();
            plan.steps[*index] = Step::EnvPid { buf, at };
            envp_ptrs.push(buf.cast_const().cast());
            // Moving the Vec does not move its heap buffer.
            pid_vars.push(entry);
        }
        envp_ptrs.push(ptr::null());

        // execvp's rule: a name with a slash is a path; else each `PATH` entry in turn (the
        // child's PATH), an empty entry meaning the current directory.
        let mut candidate_ptrs = Vec::new();
        if program.contains(&b'/') {
            candidate_ptrs.push(keep(c_string(program)?));
        } else if !program.is_empty() {
            let path = env
                .get(OsStr::new("PATH"))
                .map(|p| p.as_bytes().to_vec())
                .unwrap_or_else(|| b"/bin:/usr/bin".to_vec());
            for dir in path.split(|&b| b == b':') {
                let mut candidate = if dir.is_empty() {
                    b".".to_vec()
                } else {
                    dir.to_vec()
                };
                candidate.push(b'/');
                candidate.extend_from_slice(program);
                candidate_ptrs.push(keep(c_string(&candidate)?));
            }
        }
        candidate_ptrs.push(ptr::null());

        let argv_ptrs: Vec<_> = argv
            .into_iter()
            .map(&mut keep)
            .chain(std::iter::once(ptr::null()))
            .collect();
        let shell = keep(c_string(b"/bin/sh")?);
        let mut shell_argv = vec![shell, ptr::null()];
        shell_argv.extend_from_slice(&argv_ptrs[1..]);
        Ok(ExecImage {
            _strings: strings,
            _pid_vars: pid_vars,
            argv_ptrs,
            envp_ptrs,
            candidate_ptrs,
            shell_argv,
        })
    }
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

/// Everything the child needs to reset itself, computed before the clone.
struct ChildReset {
    /// A `sigaction` with `SIG_DFL`, no flags and an empty mask.
    default_action: libc::sigaction,
    /// The empty signal set.
    empty_mask: libc::sigset_t,
    /// The highest signal number (`SIGRTMAX`).
    max_signal: libc::c_int,
    /// The limits to restore, if tend raised its own.
    nofile: Option<libc::rlimit>,
    /// One past the highest fd open at the clone, for kernels without `close_range` (0 when
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

    /// Runs in the child between clone and exec: only async-signal-safe calls, no allocation.
    /// Errors are OS errors: their errno becomes the spawn error.
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
        if let Some(limit) = &self.nofile {
            // SAFETY: setrlimit is async-signal-safe; `limit` is a valid rlimit.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, limit) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // Marked, not closed: the exec closes them all in one pass (the child's fd table is its
        // own copy: CLONE_FILES is not set).
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

    /// Runs in the child right before the exec, once every disposition is the default: the
    /// child starts with the signals blocked (spawn_inner blocks them around the clone) and
    /// the program with an empty mask.
    fn unblock_signals(&self) -> io::Result<()> {
        // SAFETY: pthread_sigmask is async-signal-safe; `empty_mask` is initialised.
        let rc =
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.empty_mask, ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_decimal_writes_every_digit_and_no_more() {
        for (n, text) in [
            (0, "0"),
            (7, "7"),
            (10, "10"),
            (4_194_304, "4194304"),
            (u32::MAX, "4294967295"),
        ] {
            let mut out = [b'x'; PID_DIGITS + 1];
            let len = format_decimal(n, &mut out[..PID_DIGITS]);
            assert_eq!(&out[..len], text.as_bytes());
            assert!(
                out[len..].iter().all(|&b| b == b'x'),
                "{n}: wrote past the digits"
            );
        }
    }
}
