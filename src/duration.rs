//! Parsing and formatting of durations.
//!
//! Durations use humantime syntax (`90s`, `5m`, `1h 30m`, `2days`); a bare
//! integer means seconds. They are non-negative and at most
//! [`MAX_DURATION_DAYS`] days, so every time computed from them stays in range.

use chrono::Duration;

use crate::input::InputError;

/// The longest duration accepted anywhere (about 100 years).
pub const MAX_DURATION_DAYS: i64 = 36_525;

/// Parses a duration: humantime syntax, or a bare integer of seconds.
///
/// ```
/// use t_minus::duration::parse_duration;
/// assert_eq!(parse_duration("1h 30m").unwrap(), chrono::Duration::minutes(90));
/// assert_eq!(parse_duration("90").unwrap(), chrono::Duration::seconds(90));
/// assert!(parse_duration("-5m").is_err());
/// ```
pub fn parse_duration(value: &str) -> Result<Duration, InputError> {
    let text = value.trim();
    let invalid = |reason: String| InputError::InvalidDuration {
        value: value.to_string(),
        reason,
    };
    if text.is_empty() {
        return Err(invalid("it is empty".into()));
    }
    if text.starts_with('-') {
        return Err(invalid("durations cannot be negative".into()));
    }
    let std = if text.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = text
            .parse()
            .map_err(|_| invalid("the number is too large".into()))?;
        std::time::Duration::from_secs(secs)
    } else {
        humantime::parse_duration(text).map_err(|e| invalid(humantime_reason(e)))?
    };
    from_std(std).ok_or_else(|| {
        invalid(format!(
            "it is longer than the limit of {MAX_DURATION_DAYS} days"
        ))
    })
}

fn humantime_reason(err: humantime::DurationError) -> String {
    use humantime::DurationError as E;
    match err {
        E::InvalidCharacter(_) => "it contains a character that is not part of a duration".into(),
        E::NumberExpected(_) => "a number is missing".into(),
        E::UnknownUnit { unit, .. } => format!("`{unit}` is not a time unit"),
        E::NumberOverflow => "the number is too large".into(),
        E::Empty => "it is empty".into(),
    }
}

/// Converts a std duration into a chrono one, if it is within the limit.
pub fn from_std(d: std::time::Duration) -> Option<Duration> {
    if d.as_secs() > (MAX_DURATION_DAYS as u64) * 86_400 {
        return None;
    }
    Duration::from_std(d).ok()
}

/// Formats a duration compactly for countdowns: `0s`, `45s`, `4m32s`,
/// `1h02m03s`, `3d04h05m`. Negative durations are formatted by magnitude.
pub fn format_countdown(d: Duration) -> String {
    let mut out = String::new();
    write_countdown(&mut out, d);
    out
}

/// [`format_countdown`], appended to `out`.
pub fn write_countdown(out: &mut String, d: Duration) {
    let total = d.num_seconds().unsigned_abs();
    let (days, rem) = (total / 86_400, total % 86_400);
    let (hours, rem) = (rem / 3600, rem % 3600);
    let (mins, secs) = (rem / 60, rem % 60);
    // Two digits, for the parts after the first.
    let two = |out: &mut String, n: u64| {
        out.push(char::from(b'0' + (n / 10) as u8));
        out.push(char::from(b'0' + (n % 10) as u8));
    };
    use std::fmt::Write as _;
    if days > 0 {
        let _ = write!(out, "{days}d");
        two(out, hours);
        out.push('h');
        two(out, mins);
        out.push('m');
    } else if hours > 0 {
        let _ = write!(out, "{hours}h");
        two(out, mins);
        out.push('m');
        two(out, secs);
        out.push('s');
    } else if mins > 0 {
        let _ = write!(out, "{mins}m");
        two(out, secs);
        out.push('s');
    } else {
        let _ = write!(out, "{secs}s");
    }
}

/// Formats a duration in humantime style (`1h 30m`, `300ms`), the same syntax
/// [`parse_duration`] accepts.
pub fn format_duration(d: Duration) -> String {
    match d.to_std() {
        Ok(std) if std.is_zero() => "0s".to_string(),
        Ok(std) => humantime::format_duration(std).to_string(),
        Err(_) => format!("-{}", format_duration(-d)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_humantime_and_bare_seconds() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::seconds(90));
        assert_eq!(parse_duration("5m").unwrap(), Duration::minutes(5));
        assert_eq!(parse_duration("2days").unwrap(), Duration::days(2));
        assert_eq!(parse_duration("0").unwrap(), Duration::zero());
        assert_eq!(parse_duration(" 0s ").unwrap(), Duration::zero());
        assert_eq!(
            parse_duration("250ms").unwrap(),
            Duration::milliseconds(250)
        );
    }

    #[test]
    fn rejects_bad_durations_naming_the_value() {
        for bad in [
            "abc",
            "-5m",
            "",
            "5 parsecs",
            "99999999999999999999",
            "1000000years",
        ] {
            let err = parse_duration(bad).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(&format!("`{bad}`")), "{text}");
        }
    }

    #[test]
    fn formats_countdowns() {
        assert_eq!(format_countdown(Duration::seconds(272)), "4m32s");
        assert_eq!(format_countdown(Duration::seconds(0)), "0s");
        assert_eq!(format_countdown(Duration::seconds(3723)), "1h02m03s");
        assert_eq!(format_countdown(Duration::seconds(273_900)), "3d04h05m");
        assert_eq!(format_countdown(Duration::seconds(-5)), "5s");
        assert_eq!(format_duration(Duration::minutes(90)), "1h 30m");
        assert_eq!(format_duration(Duration::zero()), "0s");
    }
}
