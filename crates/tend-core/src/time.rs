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
