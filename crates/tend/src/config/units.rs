//! Durations ("250ms", "1m30s") and sizes ("10MiB", "512KiB"): parsing and printing.

use std::time::Duration;

/// The duration units and their length in nanoseconds.
const DURATION_UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// The size units above a byte, largest first, and their length in bytes. Like "B" they
/// are matched without regard to case.
const BINARY_UNITS: &[(&str, u64)] = &[
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
];
const DECIMAL_UNITS: &[(&str, u64)] = &[
    ("TB", 1_000_000_000_000),
    ("GB", 1_000_000_000),
    ("MB", 1_000_000),
    ("KB", 1_000),
];

/// Parses a duration: one or more `NUMBER UNIT` pairs with no space, such as "10s", "1.5s",
/// "250ms" or "1m30s"; units ns, us, ms, s, m, h. The error is a complete message.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| {
        format!(
            "invalid duration {text:?}: {why}; write e.g. \"10s\", \"250ms\" or \"1m30s\" \
             (units: ns, us, ms, s, m, h)"
        )
    };
    if text.is_empty() {
        return Err(bad("it is empty"));
    }
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let (number, tail) = split_where(rest, |c| !(c.is_ascii_digit() || c == '.'));
        let (unit, tail) = split_where(tail, |c| c.is_ascii_digit() || c == '.');
        rest = tail;
        if number.is_empty() {
            return Err(bad("expected a number"));
        }
        if unit.is_empty() {
            return Err(bad("a number has no unit"));
        }
        let Some(&(_, per_unit)) = DURATION_UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(bad(&format!("unknown unit {unit:?}")));
        };
        let nanos = decimal_times(number, per_unit).map_err(bad)?;
        total = total.checked_add(nanos).ok_or_else(|| bad("too long"))?;
    }
    let nanos = u64::try_from(total).map_err(|_| bad("too long"))?;
    Ok(Duration::from_nanos(nanos))
}

/// Splits `text` before the first character matching `at`.
fn split_where(text: &str, at: impl Fn(char) -> bool) -> (&str, &str) {
    text.split_at(text.find(at).unwrap_or(text.len()))
}

/// `number` (digits, optionally `.` and more digits) times `unit`, truncated to an integer.
fn decimal_times(number: &str, unit: u128) -> Result<u128, &'static str> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (number.contains('.') && !digits(fraction)) {
        return Err("not a valid number");
    }
    // Beyond 18 decimals nothing changes at nanosecond precision for units up to an hour.
    let fraction = &fraction[..fraction.len().min(18)];
    let scale = 10u128.pow(fraction.len() as u32);
    let fraction: u128 = fraction.parse().unwrap_or(0);
    whole
        .parse::<u128>()
        .ok()
        .and_then(|whole| whole.checked_mul(unit))
        .and_then(|nanos| nanos.checked_add(fraction * unit / scale))
        .ok_or("too long")
}

/// Parses a size: an integer and a unit, such as "10MiB", "512KiB" or "100B". Decimal units
/// KB, MB, GB, TB are powers of 1000, binary units KiB, MiB, GiB, TiB powers of 1024; case does
/// not matter. The error is a complete message.
pub(super) fn parse_size(text: &str) -> Result<u64, String> {
    let bad = |why: &str| {
        format!(
            "invalid size {text:?}: {why}; write e.g. \"10MiB\", \"512KiB\" or \"100B\", \
             or an integer number of bytes"
        )
    };
    let (number, unit) = split_where(text, |c| !c.is_ascii_digit());
    if number.is_empty() {
        return Err(bad("expected a number"));
    }
    if unit.is_empty() {
        return Err(bad("the number has no unit"));
    }
    let mut units = BINARY_UNITS.iter().chain(DECIMAL_UNITS).chain(&[("B", 1)]);
    let Some(&(_, per_unit)) = units.find(|(name, _)| name.eq_ignore_ascii_case(unit)) else {
        return Err(bad(&format!("unknown unit {unit:?}")));
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(per_unit))
        .ok_or_else(|| bad("too large"))
}

/// Prints a duration the way the config writes it (see [`tend_core::time::format_duration`]).
pub use tend_core::time::format_duration;

/// Prints a size with the largest unit that divides it exactly: "10MiB", "10MB", "1234B".
pub fn format_size(bytes: u64) -> String {
    let mut units = BINARY_UNITS.iter().chain(DECIMAL_UNITS);
    match units.find(|(_, per)| bytes.checked_rem(*per) == Some(0)) {
        Some((name, per)) if bytes > 0 => format!("{}{name}", bytes / per),
        _ => format!("{bytes}B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("250ms"), Ok(ms(250)));
        assert_eq!(parse_duration("10s"), Ok(ms(10_000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1_500)));
        assert_eq!(parse_duration("2m"), Ok(ms(120_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("1m30s"), Ok(ms(90_000)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration("3us"), Ok(Duration::from_micros(3)));
        assert_eq!(parse_duration("0.001ms"), Ok(Duration::from_micros(1)));
        assert_eq!(parse_duration("1h1m1s1ms"), Ok(ms(3_661_001)));
    }

    #[test]
    fn rejects_bad_durations_with_a_reason_and_an_example() {
        for (text, why) in [
            ("10", "a number has no unit"),
            ("10x", "unknown unit \"x\""),
            ("", "it is empty"),
            ("-1s", "expected a number"),
            ("1.5.3s", "not a valid number"),
            (".5s", "not a valid number"),
            ("1.s", "not a valid number"),
            ("s", "expected a number"),
            ("1 s", "unknown unit \" s\""),
            ("10S", "unknown unit \"S\""),
            ("99999999999999999999999999h", "too long"),
            ("6000000h", "too long"),
        ] {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
            assert!(err.contains("write e.g. \"10s\""), "{err}");
        }
        let huge = format!("{}h", u128::MAX);
        assert!(parse_duration(&huge).unwrap_err().contains("too long"));
    }

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_size("10MiB"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_size("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("10kb"), Ok(10_000));
        assert_eq!(parse_size("2TiB"), Ok(2 << 40));
    }

    #[test]
    fn rejects_bad_sizes() {
        for (text, why) in [
            ("10", "no unit"),
            ("", "expected a number"),
            ("MiB", "expected a number"),
            ("-1MiB", "expected a number"),
            ("10XB", "unknown unit \"XB\""),
            ("1.5MiB", "unknown unit \".5MiB\""),
            ("99999999999999999999B", "too large"),
            ("17000000TiB", "too large"),
        ] {
            let err = parse_size(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }

    #[test]
    fn prints_what_it_parses() {
        for text in [
            "0s", "250ms", "1.5s", "1m30s", "2h", "10s", "7ns", "3us", "1h0m1s",
        ] {
            let printed = format_duration(parse_duration(text).unwrap());
            assert_eq!(parse_duration(&printed), parse_duration(text), "{text}");
        }
        assert_eq!(format_duration(Duration::from_secs(3601)), "1h1s");
        assert_eq!(format_size(10 << 20), "10MiB");
        assert_eq!(format_size(10_000_000), "10MB");
        assert_eq!(format_size(1234), "1234B");
        assert_eq!(format_size(0), "0B");
    }
}
