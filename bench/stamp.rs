//! A tiny child for the benchmarks that stamps times itself, on CLOCK_MONOTONIC in nanoseconds
//! (the clock of Python's `time.monotonic()`, so `bench/run` can compare them with its own).
//! bench/run and bench/core-figures build it as a static binary, so the dynamic loader does
//! not count as tend's latency. Modes:
//!
//! - `stamp`: appends "<start_ns> <exit_ns>\n" to the file named by $STAMP_FILE, then exits at
//!   once (the restart-latency child; the child a dependency spawns).
//! - `stamp notify [FIFO]`: an sd_notify child. Waits until FIFO (if given) is opened for
//!   writing and closed again (the bench's trigger), sends `READY=1` to $NOTIFY_SOCKET (if set;
//!   `@name` is an abstract address) and appends "<start_ns> <sent_ns>\n" to $STAMP_FILE (opened
//!   before the wait), where sent_ns is read just before the send; then sleeps until killed, or
//!   exits after $STAMP_HOLD_MS milliseconds if that is set.
//! - `stamp floor N [IDLE_MS]`: the floor under "READY=1 → the dependent runs", without a
//!   supervisor: N times, a helper (`stamp send NAME IDLE_MS`) waits IDLE_MS (default 5) and
//!   stamps and sends a datagram to this process, which is
//!   blocked in recv; on receipt it spawns `stamp` (std's spawn: glibc's posix_spawn, a vfork)
//!   and waits for its stamp. Prints "<sent_ns> <received_ns> <child_start_ns>" per sample.
use std::io::Write;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

const CLOCK_MONOTONIC: i32 = 1;

fn now_ns() -> u128 {
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec (64-bit time_t on x86_64 and aarch64) to ts.
    unsafe { clock_gettime(CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

fn append(path: &std::ffi::OsStr, line: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(line.as_bytes()).unwrap();
}

/// `@name` is the abstract `name`, as systemd spells it; anything else a path.
fn address(spec: &str) -> SocketAddr {
    match spec.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes()).unwrap(),
        None => SocketAddr::from_pathname(spec).unwrap(),
    }
}

fn sleep_forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(1 << 30));
    }
}

fn main() {
    let start = now_ns();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {
            let path = std::env::var_os("STAMP_FILE").expect("STAMP_FILE");
            append(&path, &format!("{start} {}\n", now_ns()));
        }
        Some("notify") => {
            // Opened (created) before the trigger, so that once READY=1 is sent only a write
            // remains, and the sender takes the CPU from tend as little as it can.
            let mut file = std::env::var_os("STAMP_FILE").map(|path| {
                std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(path)
                    .unwrap()
            });
            if let Some(fifo) = args.get(1) {
                // Blocks in open until the bench opens it for writing, then until it closes it.
                std::fs::read(fifo).unwrap();
            }
            let sent = match std::env::var("NOTIFY_SOCKET") {
                Ok(spec) => {
                    let socket = UnixDatagram::unbound().unwrap();
                    let addr = address(&spec);
                    let sent = now_ns();
                    socket.send_to_addr(b"READY=1", &addr).unwrap();
                    sent
                }
                Err(_) => now_ns(),
            };
            if let Some(f) = &mut file {
                f.write_all(format!("{start} {sent}\n").as_bytes()).unwrap();
            }
            if let Some(ms) = std::env::var_os("STAMP_HOLD_MS") {
                let ms: u64 = ms.to_str().unwrap().parse().unwrap();
                std::thread::sleep(Duration::from_millis(ms));
                return;
            }
            sleep_forever();
        }
        Some("send") => {
            // The floor's helper: let the receiver block in recv (and the machine idle, as
            // before the bench's trigger), then stamp and send the stamp.
            let idle_ms = args.get(2).map_or(5, |ms| ms.parse().unwrap());
            std::thread::sleep(Duration::from_millis(idle_ms));
            let socket = UnixDatagram::unbound().unwrap();
            let addr = address(&args[1]);
            let sent = now_ns();
            socket
                .send_to_addr(sent.to_string().as_bytes(), &addr)
                .unwrap();
        }
        Some("floor") => {
            let n: usize = args[1].parse().unwrap();
            let idle_ms = args.get(2).map_or("5", String::as_str);
            let me = std::env::current_exe().unwrap();
            let name = format!("@tend-bench-floor/{}", std::process::id());
            let socket = UnixDatagram::bind_addr(&address(&name)).unwrap();
            let dir = std::env::temp_dir().join(format!("tend-bench-floor-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let stamps = dir.join("stamps");
            let mut buf = [0u8; 64];
            for _ in 0..n {
                let mut helper = std::process::Command::new(&me)
                    .args(["send", &name, idle_ms])
                    .spawn()
                    .unwrap();
                let len = socket.recv(&mut buf).unwrap();
                let received = now_ns();
                let mut child = std::process::Command::new(&me)
                    .env("STAMP_FILE", &stamps)
                    .spawn()
                    .unwrap();
                child.wait().unwrap();
                helper.wait().unwrap();
                let sent: u128 = std::str::from_utf8(&buf[..len]).unwrap().parse().unwrap();
                // One file for all samples: deleting files makes ext4's next file creations
                // slower (`recently_deleted`), and the bench creates files next.
                let lines = std::fs::read_to_string(&stamps).unwrap();
                let last = lines.lines().last().unwrap();
                let child_start: u128 = last.split_whitespace().next().unwrap().parse().unwrap();
                println!("{sent} {received} {child_start}");
            }
            std::fs::remove_file(&stamps).unwrap();
            std::fs::remove_dir(&dir).unwrap();
        }
        Some(other) => panic!("stamp: unknown mode {:?}", other),
    }
}
