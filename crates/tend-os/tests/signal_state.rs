//! The child starts with an empty signal mask and every signal at its default disposition
//! (none ignored, none caught), whatever tend's are. Its own test binary: it changes the
//! dispositions of the whole test process.

mod common;

use common::{spawn_guarded, status_field};
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};

fn is_zero(mask: &str) -> bool {
    mask.chars().all(|c| c == '0')
}

/// Whether signal `sig` is in a `/proc/PID/status` mask (hex, bit `sig - 1`).
fn has(mask: &str, sig: i32) -> bool {
    u64::from_str_radix(mask, 16).expect("hex mask") & (1 << (sig - 1)) != 0
}

/// A handler that does nothing: it must never run in the child, which shares our memory
/// until its exec.
extern "C" fn ignore_it(_: libc::c_int) {}

#[test]
fn child_has_empty_mask_and_every_signal_at_its_default() {
    // What a parent of tend (nohup) or tend itself (Rust ignores SIGPIPE) may have done.
    for sig in [libc::SIGHUP, libc::SIGPIPE, libc::SIGRTMIN() + 2] {
        // SAFETY: installs SIG_IGN, no handler code; the test process has no other use for these.
        let old = unsafe { libc::signal(sig, libc::SIG_IGN) };
        assert_ne!(old, libc::SIG_ERR);
    }
    // glibc's internal signals 32 and 33 cannot be set with sigaction(), but a parent that
    // spawned us with glibc's posix_spawn (cargo does) leaves them ignored. Do it here too.
    for sig in [32, 33] {
        // Kernel struct sigaction on x86_64 and aarch64: handler, flags, restorer, mask.
        let ignore: [u64; 4] = [libc::SIG_IGN as u64, 0, 0, 0];
        // SAFETY: rt_sigaction reads `ignore`, a valid kernel sigaction, and writes nothing.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                ignore.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
        assert_eq!(rc, 0, "rt_sigaction({sig})");
    }
    // What tend has: handlers (tokio's for SIGCHLD, SIGINT, SIGTERM and SIGHUP, std's for
    // SIGSEGV and SIGBUS), here on signals whose default is to ignore, to terminate and a
    // realtime one.
    let caught = [libc::SIGWINCH, libc::SIGUSR2, libc::SIGRTMIN() + 4];
    for sig in caught {
        // SAFETY: installs a handler that does nothing, on signals nobody sends this process.
        let old = unsafe { libc::signal(sig, ignore_it as *const () as libc::sighandler_t) };
        assert_ne!(old, libc::SIG_ERR);
    }
    // The mask of the spawning thread is what fork copies.
    let mut blocked = SigSet::empty();
    blocked.add(Signal::SIGUSR1);
    blocked.add(Signal::SIGTERM);
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&blocked), None).expect("block");
    let ours = std::fs::read_to_string("/proc/thread-self/status").expect("own status");
    assert!(ours.contains("SigBlk:\t0000000000004200"), "{ours}");
    assert!(!ours.contains("SigIgn:\t0000000000000000"), "{ours}");
    let our_caught = status_field(std::process::id() as i32, "SigCgt");
    assert!(
        caught.iter().all(|&sig| has(&our_caught, sig)),
        "SigCgt {our_caught}"
    );

    let (child, _guard) = spawn_guarded(&["sleep", "30"]);
    let sig_blk = status_field(child.pid, "SigBlk");
    let sig_ign = status_field(child.pid, "SigIgn");
    let sig_cgt = status_field(child.pid, "SigCgt");
    assert!(is_zero(&sig_blk), "SigBlk {sig_blk}");
    assert!(is_zero(&sig_ign), "SigIgn {sig_ign}");
    assert!(is_zero(&sig_cgt), "SigCgt {sig_cgt}");
}
