//! Wall-clock times as text, for log lines and notices: RFC 3339 in UTC.
//!
//! Pure: the caller reads the clock and passes the time since the Unix epoch.

use std::time::Duration;

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
