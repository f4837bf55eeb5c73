//! Parsing of points in time: RFC 3339 with an offset, `now`, or `+DURATION`.

use std::fmt;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};

use crate::duration::{format_duration, parse_duration};
use crate::input::InputError;

/// A point in time as the user wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpec {
    /// An absolute instant.
    Absolute(DateTime<Utc>),
    /// A duration after a base: "now" on the command line, the event's start
    /// in a manifest. `now` is `Relative(0)`.
    Relative(Duration),
}

impl TimeSpec {
    /// Parses `2025-06-06T15:00:00Z`, `now` or `+10m`.
    pub fn parse(value: &str) -> Result<Self, InputError> {
        let text = value.trim();
        if text.eq_ignore_ascii_case("now") {
            return Ok(TimeSpec::Relative(Duration::zero()));
        }
        if let Some(rest) = text.strip_prefix('+') {
            return parse_duration(rest).map(TimeSpec::Relative).map_err(|e| {
                InputError::InvalidTime {
                    value: value.to_string(),
                    reason: match e {
                        InputError::InvalidDuration { reason, .. } => {
                            format!("the relative offset is not a duration: {reason}")
                        }
                        other => other.to_string(),
                    },
                }
            });
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(text) {
            return Ok(TimeSpec::Absolute(t.with_timezone(&Utc)));
        }
        let reason = if looks_like_naive(text) {
            "it has no UTC offset; add one, e.g. `Z` for UTC or `+02:00`".to_string()
        } else {
            "it is not an RFC 3339 time, `now` or `+DURATION`".to_string()
        };
        Err(InputError::InvalidTime {
            value: value.to_string(),
            reason,
        })
    }

    /// The instant this spec names when relative times count from `base`.
    pub fn resolve(self, base: DateTime<Utc>) -> Result<DateTime<Utc>, InputError> {
        match self {
            TimeSpec::Absolute(t) => Ok(t),
            TimeSpec::Relative(d) => {
                base.checked_add_signed(d)
                    .ok_or_else(|| InputError::InvalidTime {
                        value: self.to_string(),
                        reason: "it is out of the supported range of times".into(),
                    })
            }
        }
    }
}

fn looks_like_naive(text: &str) -> bool {
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .any(|fmt| NaiveDateTime::parse_from_str(text, fmt).is_ok())
        || chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
}

impl fmt::Display for TimeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeSpec::Absolute(t) => f.write_str(&format_time(*t)),
            TimeSpec::Relative(d) => write!(f, "+{}", format_duration(*d)),
        }
    }
}

/// Formats an instant as RFC 3339 in UTC with a `Z` suffix, with
/// milliseconds only when they are not zero.
pub fn format_time(t: DateTime<Utc>) -> String {
    with_time_text(t, str::to_string)
}

/// Hands [`format_time`]'s text to `f` without allocating it: written
/// digit by digit for the years 0 to 9999, by chrono otherwise.
pub fn with_time_text<R>(t: DateTime<Utc>, f: impl FnOnce(&str) -> R) -> R {
    use chrono::{Datelike, SecondsFormat, Timelike};
    let nanos = t.nanosecond();
    if let (Ok(year @ 0..=9999), true) = (u32::try_from(t.year()), nanos < 1_000_000_000) {
        let mut buf = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut n: u32| {
            for i in (at..at + width).rev() {
                buf[i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, t.month());
        put(8, 2, t.day());
        put(11, 2, t.hour());
        put(14, 2, t.minute());
        put(17, 2, t.second());
        let millis = nanos / 1_000_000;
        let len = if millis == 0 {
            buf[19] = b'Z';
            20
        } else {
            put(20, 3, millis);
            24
        };
        if let Ok(text) = std::str::from_utf8(&buf[..len]) {
            return f(text);
        }
    }
    let format = if t.timestamp_subsec_millis() == 0 {
        SecondsFormat::Secs
    } else {
        SecondsFormat::Millis
    };
    f(&t.to_rfc3339_opts(format, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_chrono_writes_them() {
        use chrono::SecondsFormat;
        let chrono_text = |t: DateTime<Utc>| {
            if t.timestamp_subsec_millis() == 0 {
                t.to_rfc3339_opts(SecondsFormat::Secs, true)
            } else {
                t.to_rfc3339_opts(SecondsFormat::Millis, true)
            }
        };
        let mut ms: i64 = -62_167_219_200_000 - 86_400_000; // before year 0
        let mut step: i64 = 1;
        while ms < 253_402_300_800_000 + 86_400_000 {
            // past year 9999
            for t in [
                DateTime::from_timestamp_millis(ms),
                DateTime::from_timestamp(ms.div_euclid(1000), 999_999),
            ]
            .into_iter()
            .flatten()
            {
                assert_eq!(format_time(t), chrono_text(t), "{ms}");
            }
            ms += step;
            step = step * 7 / 3 + 1;
            if step > 86_400_000 * 4000 {
                step = 1;
            }
        }
    }

    #[test]
    fn parses_the_three_forms() {
        let t = TimeSpec::parse("2025-06-06T15:00:00Z").unwrap();
        assert_eq!(format!("{t}"), "2025-06-06T15:00:00Z");
        let t = TimeSpec::parse("2025-06-06T17:00:00+02:00").unwrap();
        assert_eq!(format!("{t}"), "2025-06-06T15:00:00Z");
        assert_eq!(
            TimeSpec::parse("+10m").unwrap(),
            TimeSpec::Relative(Duration::minutes(10))
        );
        assert_eq!(
            TimeSpec::parse("NOW").unwrap(),
            TimeSpec::Relative(Duration::zero())
        );
    }

    #[test]
    fn explains_missing_offset() {
        let err = TimeSpec::parse("2025-06-06T15:00:00")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`2025-06-06T15:00:00`"), "{err}");
        assert!(err.contains("no UTC offset"), "{err}");
        let err = TimeSpec::parse("tomorrow").unwrap_err().to_string();
        assert!(err.contains("RFC 3339"), "{err}");
        let err = TimeSpec::parse("+abc").unwrap_err().to_string();
        assert!(err.contains("`+abc`"), "{err}");
    }
}
