//! Signal numbers and sending signals to process groups. Every child of tend leads its own
//! process group, so tend signals the group (reaching grandchildren), never a single pid.

use std::ptr;

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal as Nix};
use nix::unistd::Pid as NixPid;
use tend_core::Signal;

use crate::{OsError, Pid};

pub(crate) fn to_nix(sig: Signal) -> Nix {
    match sig {
        Signal::Hup => Nix::SIGHUP,
        Signal::Int => Nix::SIGINT,
        Signal::Quit => Nix::SIGQUIT,
        Signal::Abrt => Nix::SIGABRT,
        Signal::Kill => Nix::SIGKILL,
        Signal::Usr1 => Nix::SIGUSR1,
        Signal::Segv => Nix::SIGSEGV,
        Signal::Usr2 => Nix::SIGUSR2,
        Signal::Pipe => Nix::SIGPIPE,
        Signal::Alrm => Nix::SIGALRM,
        Signal::Term => Nix::SIGTERM,
        Signal::Chld => Nix::SIGCHLD,
        Signal::Cont => Nix::SIGCONT,
        Signal::Stop => Nix::SIGSTOP,
        Signal::Tstp => Nix::SIGTSTP,
        Signal::Ttin => Nix::SIGTTIN,
        Signal::Ttou => Nix::SIGTTOU,
        Signal::Winch => Nix::SIGWINCH,
    }
}

/// The kernel's number for `sig`.
pub fn signal_number(sig: Signal) -> i32 {
    to_nix(sig) as i32
}

/// The signal with kernel number `n`, if tend knows it by name.
pub fn signal_from_number(n: i32) -> Option<Signal> {
    Signal::ALL.iter().copied().find(|&s| signal_number(s) == n)
}

/// A name for display: `"SIGKILL"` for a known number, `"signal 42"` otherwise.
pub fn signal_name(n: i32) -> String {
    match Nix::try_from(n) {
        Ok(sig) => sig.as_str().to_owned(),
        Err(_) => format!("signal {n}"),
    }
}

/// A pgid tend may signal. `killpg(0)` would hit tend's own group and `killpg(1)` is `kill(-1)`:
/// every process tend may signal.
fn checked(pgid: Pid) -> Result<NixPid, OsError> {
    if pgid > 1 {
        Ok(NixPid::from_raw(pgid))
    } else {
        Err(OsError::from_errno("killpg", Errno::EINVAL))
    }
}

/// Sends `sig` to every process in the group `pgid`. `Ok(false)` when the group no longer
/// exists (`ESRCH`). A pgid below 2 is refused with `EINVAL`.
pub fn signal_group(pgid: Pid, sig: Signal) -> Result<bool, OsError> {
    match killpg(checked(pgid)?, to_nix(sig)) {
        Ok(()) => Ok(true),
        Err(Errno::ESRCH) => Ok(false),
        Err(e) => Err(OsError::from_errno("killpg", e)),
    }
}

/// Sends `sig` to the one process `pid`: `Ok(false)` when it is gone.
pub fn signal_process(pid: Pid, sig: Signal) -> Result<bool, OsError> {
    match nix::sys::signal::kill(checked(pid)?, to_nix(sig)) {
        Ok(()) => Ok(true),
        Err(Errno::ESRCH) => Ok(false),
        Err(e) => Err(OsError::from_errno("kill", e)),
    }
}

/// Sends `sig` to the one process `pid` if `still_ours()` holds once that process is pinned:
/// a pidfd is opened first, so the process `still_ours` vouches for (say, by finding `pid` in
/// a cgroup again) is the one signalled, even if `pid` was reused between the caller's listing
/// and this call. `Ok(false)` when it is gone or no longer ours.
pub fn signal_process_if(
    pid: Pid,
    sig: Signal,
    still_ours: impl FnOnce() -> bool,
) -> Result<bool, OsError> {
    checked(pid)?;
    let Some(fd) = crate::procfs::pidfd_open(pid)? else {
        return Ok(false);
    };
    if !still_ours() {
        return Ok(false);
    }
    // SAFETY: pidfd_send_signal takes a pidfd we own, a signal number, a null siginfo (as
    // kill(2) would fill it) and no flags; no memory is written.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            signal_number(sig),
            ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if sent < 0 {
        let err = std::io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ESRCH) => Ok(false),
            _ => Err(OsError::new("pidfd_send_signal", err)),
        };
    }
    Ok(true)
}

/// Whether any process (zombies included) is left in the group `pgid`; `EPERM` counts as alive.
pub fn group_alive(pgid: Pid) -> bool {
    match checked(pgid) {
        Ok(pgid) => matches!(killpg(pgid, None), Ok(()) | Err(Errno::EPERM)),
        Err(_) => false,
    }
}

/// What tend inherited about signals from whoever started it, as [`reset_signals`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InheritedSignals {
    /// How many signals were blocked in the inherited signal mask.
    pub blocked: u32,
    /// How many signals had their disposition set to `SIG_IGN` (SIGPIPE aside).
    pub ignored: u32,
    /// Whether SIGHUP was ignored: tend was started under `nohup`.
    pub hup_ignored: bool,
}

/// Puts the calling process's signal state back to a clean start, as systemd and s6-svscan do
/// before anything else: every ignored signal back to its default disposition (but SIGPIPE,
/// which stays ignored as Rust programs expect), then an empty signal mask. A parent that
/// blocked SIGCHLD or SIGTERM, or ignored SIGCHLD (whose children the kernel then reaps
/// itself), would otherwise leave tend unable to reap or to be stopped.
///
/// Call it first thing in `main`, while the process has one thread: the mask is per thread,
/// and threads started earlier keep theirs. Returns what was inherited, so the caller can tell
/// (and honour `nohup`). Fails with op `"sigaction"` or `"sigprocmask"`.
pub fn reset_signals() -> Result<InheritedSignals, OsError> {
    let mut inherited = InheritedSignals::default();
    // SAFETY: an all-zero sigaction is a valid value (SIG_DFL, no flags, empty mask).
    let mut default_action: libc::sigaction = unsafe { std::mem::zeroed() };
    default_action.sa_sigaction = libc::SIG_DFL;
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || sig == libc::SIGPIPE {
            continue;
        }
        // SAFETY: as above.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a null new action only reads the current one into `old`, which we own. glibc
        // refuses the two realtime signals it keeps for itself with EINVAL: left alone.
        if unsafe { libc::sigaction(sig, ptr::null(), &mut old) } != 0 {
            continue;
        }
        // Handlers do not survive an exec: at the start of `main` a disposition is the
        // default, an inherited SIG_IGN, or a handler std installed (SIGSEGV and SIGBUS, for
        // its stack overflow message), which stays.
        if old.sa_sigaction != libc::SIG_IGN {
            continue;
        }
        inherited.ignored += 1;
        inherited.hup_ignored |= sig == libc::SIGHUP;
        // SAFETY: a pointer to a valid, initialised sigaction we own.
        if unsafe { libc::sigaction(sig, &default_action, ptr::null_mut()) } != 0 {
            return Err(OsError::new("sigaction", std::io::Error::last_os_error()));
        }
    }
    // SAFETY: an empty sigset is made by sigemptyset below before any use.
    let mut empty: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: sigemptyset and pthread_sigmask write only to the sigsets we own.
    let rc = unsafe {
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, &mut old)
    };
    if rc != 0 {
        return Err(OsError::new(
            "sigprocmask",
            std::io::Error::from_raw_os_error(rc),
        ));
    }
    for sig in 1..=libc::SIGRTMAX() {
        // SAFETY: sigismember reads the sigset we own.
        if unsafe { libc::sigismember(&old, sig) } == 1 {
            inherited.blocked += 1;
        }
    }
    Ok(inherited)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signal_round_trips_through_its_number() {
        for &sig in Signal::ALL {
            assert_eq!(signal_from_number(signal_number(sig)), Some(sig), "{sig}");
            assert_eq!(signal_name(signal_number(sig)), sig.name());
        }
        assert_eq!(signal_number(Signal::Kill), libc::SIGKILL);
        assert_eq!(signal_number(Signal::Term), libc::SIGTERM);
    }

    #[test]
    fn unknown_numbers_have_no_signal_but_a_name() {
        assert_eq!(signal_from_number(0), None);
        assert_eq!(signal_from_number(libc::SIGRTMIN()), None);
        assert_eq!(signal_name(42), "signal 42");
        assert_eq!(signal_name(libc::SIGKILL), "SIGKILL");
    }

    #[test]
    fn refuses_own_group_and_broadcast() {
        for pgid in [-5, 0, 1] {
            let err = signal_group(pgid, Signal::Term).unwrap_err();
            assert_eq!(err.errno(), Some(libc::EINVAL));
            assert!(!group_alive(pgid));
        }
    }
}
