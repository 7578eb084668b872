//! Times and durations as text: wall-clock times for log lines and notices (RFC 3339 in UTC),
//! and durations as the config writes them.
//!
//! Pure: the caller reads the clock and passes the time since the Unix epoch.

use std::time::Duration;

/// Prints a duration the way the config writes it: "0s", "250ms", "1.5s", "1m30s", "2h".
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if duration.subsec_nanos() == 0 {
        let secs = duration.as_secs();
        let parts = [(secs / 3600, "h"), (secs / 60 % 60, "m"), (secs % 60, "s")];
        let text: String = parts
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, unit)| format!("{n}{unit}"))
            .collect();
        return if text.is_empty() { "0s".into() } else { text };
    }
    match nanos {
        n if n >= 1_000_000_000 => format!("{}s", duration.as_secs_f64()),
        n if n.checked_rem(1_000_000) == Some(0) => format!("{}ms", n / 1_000_000),
        n if n.checked_rem(1_000) == Some(0) => format!("{}us", n / 1_000),
        n => format!("{n}ns"),
    }
}

/// A duration for people to read, in the config's syntax, rounded to three significant digits
/// (at least a millisecond): "250ms", "338ms", "1.3s", "1m30s". A computed delay (a backoff
/// grown by a factor of 1.5) need not print as "337500us".
pub fn format_duration_rounded(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    let mut step: u128 = 1_000_000;
    while nanos >= step * 1000 && step < 1_000_000_000 {
        step *= 10;
    }
    let longest = u128::from(u64::MAX) / step * step;
    let rounded = (nanos.saturating_add(step / 2) / step * step).min(longest);
    format_duration(Duration::from_nanos(rounded as u64))
}

/// Milliseconds since the Unix epoch of `t` (0 before it, the largest `u64` far after).
pub fn unix_millis(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `2026-11-24T06:49:41.123Z` for `since_epoch` after 1970-01-01T00:00:00Z.
pub fn rfc3339_millis(since_epoch: Duration) -> String {
    format!(
        "{}.{:03}Z",
        date_time(since_epoch.as_secs()),
        since_epoch.subsec_millis()
    )
}

/// `2026-11-24T06:49:41Z`: whole seconds.
pub fn rfc3339_seconds(since_epoch: Duration) -> String {
    format!("{}Z", date_time(since_epoch.as_secs()))
}

fn date_time(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Reads an RFC 3339 time, such as `2026-11-29T21:44:09.512Z` or `2026-11-29T22:44:09+01:00`
/// (`T` may be `t` or a space, `Z` may be `z`; up to nanoseconds): the time since
/// 1970-01-01T00:00:00Z. `None` when `text` is not such a time, or one before 1970.
pub fn parse_rfc3339(text: &str) -> Option<Duration> {
    let b = text.as_bytes();
    let number = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from + len)?;
        digits
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let at = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt ") && at(13, b":") && at(16, b":")) {
        return None;
    }
    let (year, month, day) = (number(0, 4)?, number(5, 2)?, number(8, 2)?);
    let (hour, minute, second) = (number(11, 2)?, number(14, 2)?, number(17, 2)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if at(i, b".") {
        i += 1;
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        for k in 0..9 {
            let digit = if k < digits {
                u32::from(b[i + k] - b'0')
            } else {
                0
            };
            nanos = nanos * 10 + digit;
        }
        i += digits;
    }
    let offset = match b.get(i..)? {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), ..] if b.len() == i + 6 && at(i + 3, b":") => {
            let (h, m) = (number(i + 1, 2)?, number(i + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if *sign == b'+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month as u32, day as u32) * 86_400
        + hour * 3600
        + minute * 60
        + second
        - offset;
    u64::try_from(secs)
        .ok()
        .map(|secs| Duration::new(secs, nanos))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's civil-to-days: the days from 1970-01-01 to a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's days-to-civil: the proleptic Gregorian date `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounded_durations_read_like_the_config() {
        let f = |ms: u64| format_duration_rounded(Duration::from_micros(ms));
        assert_eq!(f(250_000), "250ms");
        assert_eq!(f(337_500), "338ms");
        assert_eq!(f(1_250_000), "1.25s");
        assert_eq!(f(1_234_567), "1.23s");
        assert_eq!(f(60_000_000), "1m");
        assert_eq!(f(90_000_000), "1m30s");
        assert_eq!(f(90_400_000), "90.4s");
        assert_eq!(f(3_600_400_000), "1h");
        assert_eq!(f(400), "0s");
        assert!(
            format_duration_rounded(Duration::MAX).starts_with("5124095h"),
            "no overflow: a delay beyond 64 bits of nanoseconds prints as the longest"
        );
    }

    #[test]
    fn reads_rfc3339_times_back() {
        let ms = |ms: u64| Some(Duration::from_millis(ms));
        assert_eq!(
            parse_rfc3339("2026-11-24T07:49:41.123Z"),
            ms(1_795_506_581_123)
        );
        assert_eq!(
            parse_rfc3339("2026-11-24t08:49:41.123+01:00"),
            ms(1_795_506_581_123)
        );
        assert_eq!(
            parse_rfc3339("2026-11-24 02:19:41.123-05:30"),
            ms(1_795_506_581_123)
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), ms(0));
        assert_eq!(
            parse_rfc3339("2000-02-29T01:02:03.5z"),
            ms((951_782_400 + 3_723) * 1000 + 500)
        );
        assert_eq!(
            parse_rfc3339("2026-11-24T07:49:41.000000001Z"),
            Some(Duration::new(1_795_506_581, 1))
        );
        for t in [0u64, 951_782_400_000, 1_767_225_599_999, 4_102_444_800_123] {
            let text = rfc3339_millis(Duration::from_millis(t));
            assert_eq!(parse_rfc3339(&text), ms(t), "{text}");
        }
        for bad in [
            "",
            "2026-11-24",
            "2026-11-24T07:49:41",
            "2026-11-24T07:49:41.Z",
            "2026-13-24T07:49:41Z",
            "2026-02-29T07:49:41Z",
            "2026-11-24T24:00:00Z",
            "2026-11-24T07:49:41+0100",
            "1969-12-31T23:59:59Z",
            "10m",
            "2026-11-24T07:49:41Zjunk",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn formats_utc_dates_including_leap_days() {
        let at = |secs| rfc3339_seconds(Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400 + 3_723), "2000-02-29T01:02:03Z");
        assert_eq!(at(1_767_225_599), "2025-12-31T23:59:59Z");
        assert_eq!(
            rfc3339_millis(Duration::from_millis(1_795_506_581_123)),
            "2026-11-24T07:49:41.123Z"
        );
    }
}
