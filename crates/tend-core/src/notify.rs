//! The sd_notify protocol's messages, parsed from the bytes of one datagram.
//!
//! A datagram is newline-separated `KEY=VALUE` assignments (`READY=1\nSTATUS=listening`). The
//! parse is total: it takes any bytes (what arrives on the socket is whatever a process sent),
//! converts invalid UTF-8 lossily, and skips what it does not understand (unknown keys,
//! lines without `=`, values out of range), as systemd does. The flags are matched exactly as
//! systemd matches them (`READY=1`, not `READY=yes` nor `READY=1\r`).
//!
//! A `STATUS` value is kept as sent: NULs, escape sequences and other control characters
//! included. Whoever shows it to a person must make it harmless first.

use std::time::Duration;

/// One understood assignment of a notify datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyMessage {
    /// `READY=1`: start-up is finished.
    Ready,
    /// `STATUS=...`: a free-form status text, as sent (empty clears it).
    Status(String),
    /// `STOPPING=1`: the service is stopping by itself.
    Stopping,
    /// `RELOADING=1`: the service is reloading its configuration; `READY=1` follows when done.
    Reloading,
    /// `MAINPID=N`: the main process is now this pid (a daemon that forked). Never 0 and never
    /// above `i32::MAX` (a `pid_t`).
    MainPid(u32),
    /// `WATCHDOG=1`: the keep-alive ping of the watchdog.
    Watchdog,
    /// `WATCHDOG=trigger`: the service asks to be treated as if its watchdog had expired.
    WatchdogTrigger,
    /// `EXTEND_TIMEOUT_USEC=N`: the current start (or stop) may take this much longer, counted
    /// from now.
    ExtendTimeout(Duration),
    /// `BARRIER=1`: the sender waits until the file descriptors that came with this datagram
    /// are closed; everything it sent before has then been handled.
    Barrier,
}

/// Parses one datagram: the messages it understands, in the order sent (a key sent twice
/// appears twice; the caller decides which wins, normally the last).
pub fn parse(datagram: &[u8]) -> Vec<NotifyMessage> {
    String::from_utf8_lossy(datagram)
        .split('\n')
        .filter_map(parse_line)
        .collect()
}

/// One `KEY=VALUE` line, if understood.
fn parse_line(line: &str) -> Option<NotifyMessage> {
    let (key, value) = line.split_once('=')?;
    let message = match (key, value) {
        ("READY", "1") => NotifyMessage::Ready,
        ("STATUS", status) => NotifyMessage::Status(status.to_owned()),
        ("STOPPING", "1") => NotifyMessage::Stopping,
        ("RELOADING", "1") => NotifyMessage::Reloading,
        ("MAINPID", pid) => {
            let pid = decimal(pid)?;
            if pid == 0 || pid > i32::MAX as u64 {
                return None;
            }
            NotifyMessage::MainPid(pid as u32)
        }
        ("WATCHDOG", "1") => NotifyMessage::Watchdog,
        ("WATCHDOG", "trigger") => NotifyMessage::WatchdogTrigger,
        ("EXTEND_TIMEOUT_USEC", usec) => {
            NotifyMessage::ExtendTimeout(Duration::from_micros(decimal(usec)?))
        }
        ("BARRIER", "1") => NotifyMessage::Barrier,
        _ => return None,
    };
    Some(message)
}

/// A non-empty string of ASCII digits as a `u64`; `None` for anything else (a sign, spaces,
/// an overflow).
fn decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use NotifyMessage::*;

    #[test]
    fn understands_every_documented_assignment() {
        let datagram = b"READY=1\nSTATUS=listening on :80\nSTOPPING=1\nRELOADING=1\nMAINPID=4242\n\
                         WATCHDOG=1\nWATCHDOG=trigger\nEXTEND_TIMEOUT_USEC=1500000\nBARRIER=1\n";
        assert_eq!(
            parse(datagram),
            vec![
                Ready,
                Status("listening on :80".into()),
                Stopping,
                Reloading,
                MainPid(4242),
                Watchdog,
                WatchdogTrigger,
                ExtendTimeout(Duration::from_millis(1500)),
                Barrier,
            ]
        );
    }

    #[test]
    fn ignores_unknown_keys_and_malformed_lines() {
        let datagram =
            b"FDSTORE=1\nREADY\n=1\nREADY=yes\nREADY=1\r\n ready=1\nERRNO=2\n\n\nREADY=1";
        assert_eq!(parse(datagram), vec![Ready]);
        assert_eq!(parse(b""), vec![]);
        assert_eq!(parse(b"\n\n"), vec![]);
    }

    #[test]
    fn numbers_must_be_plain_decimal_and_in_range() {
        for bad in [
            "MAINPID=0",
            "MAINPID=-1",
            "MAINPID=+5",
            "MAINPID= 5",
            "MAINPID=5 ",
            "MAINPID=0x10",
            "MAINPID=",
            "MAINPID=2147483648",
            "MAINPID=99999999999999999999999",
            "EXTEND_TIMEOUT_USEC=",
            "EXTEND_TIMEOUT_USEC=-1",
            "EXTEND_TIMEOUT_USEC=1s",
            "EXTEND_TIMEOUT_USEC=18446744073709551616",
        ] {
            assert_eq!(parse(bad.as_bytes()), vec![], "{bad}");
        }
        assert_eq!(parse(b"MAINPID=2147483647"), vec![MainPid(i32::MAX as u32)]);
        assert_eq!(
            parse(b"EXTEND_TIMEOUT_USEC=18446744073709551615"),
            vec![ExtendTimeout(Duration::from_micros(u64::MAX))]
        );
        assert_eq!(
            parse(b"EXTEND_TIMEOUT_USEC=0"),
            vec![ExtendTimeout(Duration::ZERO)]
        );
    }

    #[test]
    fn a_status_is_kept_as_sent_and_repeats_stay_in_order() {
        assert_eq!(
            parse(b"STATUS=a=b\x00\x1b[31mred\tx\rSTATUS=\nSTATUS=second"),
            vec![
                Status("a=b\0\x1b[31mred\tx\rSTATUS=".into()),
                Status("second".into())
            ]
        );
        assert_eq!(parse(b"STATUS="), vec![Status(String::new())]);
    }

    #[test]
    fn invalid_utf8_is_converted_lossily_not_dropped() {
        assert_eq!(
            parse(b"STATUS=caf\xe9 \xff\nREADY=1"),
            vec![Status("caf\u{fffd} \u{fffd}".into()), Ready]
        );
        // A key made invalid is simply unknown.
        assert_eq!(parse(b"READ\xffY=1"), vec![]);
    }

    proptest! {
        #[test]
        fn parse_is_total_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let messages = parse(&bytes);
            // At most one message per line.
            prop_assert!(messages.len() <= bytes.iter().filter(|&&b| b == b'\n').count() + 1);
        }

        #[test]
        fn a_status_without_newline_comes_back_unchanged(status in "[^\n]*") {
            let datagram = format!("READY=1\nSTATUS={status}\nWATCHDOG=1");
            prop_assert_eq!(
                parse(datagram.as_bytes()),
                vec![Ready, Status(status), Watchdog]
            );
        }

        #[test]
        fn known_lines_survive_arbitrary_neighbours(
            before in proptest::collection::vec(any::<u8>(), 0..64),
            after in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut datagram = before;
            datagram.extend_from_slice(b"\nMAINPID=77\n");
            datagram.extend_from_slice(&after);
            prop_assert!(parse(&datagram).contains(&MainPid(77)));
        }
    }
}
