//! The gates an event may carry beyond its quorum: four eyes (the
//! requester may not answer), time windows (it fires only inside one) and
//! break-glass (listed agents may fire it at once, with a reason).
//!
//! A window is written `DAYS HH:MM-HH:MM ZONE`: `Mon-Fri 09:00-17:00
//! Europe/Berlin`. DAYS is `daily`, or a comma-separated list of days and
//! day ranges (`Mon-Fri`, `Mon,Wed,Fri`, `Fri-Mon` wraps round the week),
//! days spelled as `Mon` or `Monday` in any case. The hours are local wall
//! clock times in the IANA zone ZONE; the window holds from the start
//! (included) to the end (excluded), which must come later on the same day
//! (`24:00` is the end of the day). An instant is inside when its local
//! time in ZONE, on a listed day, lies in that range: a wall clock time
//! that a change to daylight saving time skips is never inside, one that
//! the change back repeats is inside both times.

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Timelike, Utc, Weekday,
};
use serde::{Deserialize, Serialize};

use crate::agent::AgentId;
use crate::input::InputError;

/// A time window: days of the week and hours of the day in a time zone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Window {
    /// The window as written (whitespace collapsed).
    text: String,
    /// Monday first.
    days: [bool; 7],
    /// Minutes after local midnight the window opens.
    start: u32,
    /// Minutes after local midnight it closes (up to 1440).
    end: u32,
    zone: chrono_tz::Tz,
}

/// How many days ahead [`Window::next_open`] looks: two weeks cover every
/// weekly window, also one that a change of daylight saving time removed
/// for one day.
const LOOKAHEAD_DAYS: i64 = 15;

impl Window {
    /// The IANA zone.
    pub fn zone(&self) -> chrono_tz::Tz {
        self.zone
    }

    /// Whether `at` is inside the window.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.zone);
        let day = local.weekday().num_days_from_monday() as usize;
        let minute = local.hour() * 60 + local.minute();
        self.days[day] && minute >= self.start && minute < self.end
    }

    /// The first instant at or after `from` that is inside the window, when
    /// one comes within two weeks.
    pub fn next_open(&self, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.contains(from) {
            return Some(from);
        }
        let first = from.with_timezone(&self.zone).date_naive();
        (0..LOOKAHEAD_DAYS)
            .filter_map(|n| first.checked_add_signed(Duration::days(n)))
            .filter(|date| self.days[date.weekday().num_days_from_monday() as usize])
            .filter_map(|date| self.opening_on(date))
            .find(|open| *open >= from)
    }

    /// The instant the window opens on local date `date`: its start time,
    /// the first instant of the two when a change back from daylight saving
    /// time repeats it, the end of the skipped hour when a change to
    /// daylight saving time skips it; `None` when the whole window falls in
    /// a skipped hour.
    fn opening_on(&self, date: NaiveDate) -> Option<DateTime<Utc>> {
        let start = date.and_time(NaiveTime::MIN) + Duration::minutes(i64::from(self.start));
        // A skipped start: the first existing minute after it, still before
        // the end.
        (0..i64::from(self.end - self.start))
            .map(|m| start + Duration::minutes(m))
            .find_map(|local| self.zone.from_local_datetime(&local).earliest())
            .map(|at| at.with_timezone(&Utc))
            .filter(|at| self.contains(*at))
    }
}

impl FromStr for Window {
    type Err = InputError;

    /// Reads `DAYS HH:MM-HH:MM ZONE` (see the module documentation).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: String| InputError::InvalidWindow {
            value: s.to_string(),
            reason,
        };
        let parts: Vec<&str> = s.split_whitespace().collect();
        let [days, hours, zone] = parts[..] else {
            return Err(invalid(
                "expected three parts: days, hours and a time zone (`Mon-Fri 09:00-17:00 Europe/Berlin`)"
                    .into(),
            ));
        };
        let days = parse_days(days).map_err(invalid)?;
        let (start, end) = hours
            .split_once('-')
            .ok_or_else(|| invalid(format!("hours `{hours}` must be HH:MM-HH:MM")))?;
        let start = parse_minute(start, false).map_err(invalid)?;
        let end = parse_minute(end, true).map_err(invalid)?;
        if end <= start {
            return Err(invalid(format!(
                "the window must end after it starts on the same day (`{hours}`); a window across midnight is two windows (`22:00-24:00` and `00:00-06:00` of the next days)"
            )));
        }
        let zone = chrono_tz::Tz::from_str(zone).map_err(|_| {
            invalid(format!(
                "unknown time zone `{zone}`; use an IANA name such as `Europe/Berlin` or `UTC`"
            ))
        })?;
        Ok(Window {
            text: parts.join(" "),
            days,
            start,
            end,
            zone,
        })
    }
}

fn parse_days(text: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    if text.eq_ignore_ascii_case("daily") {
        return Ok([true; 7]);
    }
    let day = |d: &str| {
        Weekday::from_str(d)
            .map(|w| w.num_days_from_monday() as usize)
            .map_err(|_| format!("`{d}` is not a day; write `Mon`, `Tue`, … `Sun` or `daily`"))
    };
    for part in text.split(',') {
        match part.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (day(from)?, day(to)?);
                let mut d = from;
                loop {
                    days[d] = true;
                    if d == to {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days[day(part)?] = true,
        }
    }
    Ok(days)
}

fn parse_minute(text: &str, end: bool) -> Result<u32, String> {
    let bad = || format!("`{text}` is not a time of day HH:MM");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if end && h == 24 && m == 0 {
        return Ok(24 * 60);
    }
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Window {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The first instant at or after `from` inside one of `windows`, when one
/// comes within two weeks; `from` itself when there are no windows.
pub fn next_open(windows: &[Window], from: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if windows.is_empty() {
        return Some(from);
    }
    windows.iter().filter_map(|w| w.next_open(from)).min()
}

/// Whether `at` is inside one of `windows` (true when there are none).
pub fn inside(windows: &[Window], at: DateTime<Utc>) -> bool {
    windows.is_empty() || windows.iter().any(|w| w.contains(at))
}

/// Windows as one line: `Mon-Fri 09:00-17:00 Europe/Berlin; Sat …`.
pub fn windows_text(windows: &[Window]) -> Option<String> {
    (!windows.is_empty()).then(|| {
        windows
            .iter()
            .map(Window::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// A break-glass: an event fired at once by an agent allowed to, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BreakGlass {
    /// Who broke the glass.
    #[schemars(with = "String")]
    pub by: AgentId,
    /// Why, as given (required).
    pub reason: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// An event's gates beyond its quorum; the default is none of them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Gates {
    /// Four eyes: the organizer (the requester) may not answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub four_eyes: bool,
    /// The event fires only inside one of these (none: at any time).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<Window>,
    /// The agents who may fire it at once with a reason (break-glass).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breakglass: Vec<AgentId>,
    /// The break-glass that fired it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broken: Option<BreakGlass>,
}

impl Gates {
    /// Whether no gate is set (stored as NULL).
    pub fn is_empty(&self) -> bool {
        *self == Gates::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn parses_and_refuses() {
        let w: Window = "Mon-Fri  09:00-17:00 Europe/Berlin".parse().unwrap();
        assert_eq!(w.to_string(), "Mon-Fri 09:00-17:00 Europe/Berlin");
        assert!("daily 00:00-24:00 UTC".parse::<Window>().is_ok());
        assert!("Fri-Mon,wed 08:00-09:30 America/New_York"
            .parse::<Window>()
            .is_ok());
        for bad in [
            "Mon-Fri 09:00-17:00",
            "Mon-Fry 09:00-17:00 UTC",
            "Mon 17:00-09:00 UTC",
            "Mon 09:00-09:00 UTC",
            "Mon 9:00-17:00 UTC",
            "Mon 09:00-24:01 UTC",
            "Mon 09:00-17:00 Europe/Atlantis",
            "Mon 0900-1700 UTC",
        ] {
            assert!(bad.parse::<Window>().is_err(), "{bad}");
        }
    }

    #[test]
    fn inside_and_next_opening() {
        let w: Window = "Mon-Fri 09:00-17:00 Europe/Berlin".parse().unwrap();
        // Friday 2026-12-04 16:59 Berlin (UTC+1) is inside; 17:00 is not.
        assert!(w.contains(utc("2026-12-04T15:59:00Z")));
        assert!(!w.contains(utc("2026-12-04T16:00:00Z")));
        // From Friday evening, the next opening is Monday 09:00 Berlin.
        assert_eq!(
            w.next_open(utc("2026-12-04T16:00:00Z")),
            Some(utc("2026-12-07T08:00:00Z"))
        );
        assert_eq!(
            w.next_open(utc("2026-12-07T09:30:00Z")),
            Some(utc("2026-12-07T09:30:00Z"))
        );
    }

    #[test]
    fn daylight_saving_changes() {
        // Berlin springs forward on Sunday 2026-03-29 at 02:00 → 03:00.
        let skipped: Window = "Sun 02:00-02:30 Europe/Berlin".parse().unwrap();
        // The window vanishes that Sunday: the next opening is a week later
        // (then UTC+2).
        assert_eq!(
            skipped.next_open(utc("2026-03-28T12:00:00Z")),
            Some(utc("2026-04-05T00:00:00Z"))
        );
        let across: Window = "Sun 02:30-04:00 Europe/Berlin".parse().unwrap();
        // Opens at the end of the skipped hour: 03:00 local, 01:00 UTC.
        assert_eq!(
            across.next_open(utc("2026-03-28T12:00:00Z")),
            Some(utc("2026-03-29T01:00:00Z"))
        );
        // Berlin falls back on Sunday 2026-10-25 at 03:00 → 02:00: 02:15
        // happens twice, and is inside both times; the opening is the first.
        let repeated: Window = "Sun 02:00-02:30 Europe/Berlin".parse().unwrap();
        assert_eq!(
            repeated.next_open(utc("2026-10-24T12:00:00Z")),
            Some(utc("2026-10-25T00:00:00Z"))
        );
        assert!(repeated.contains(utc("2026-10-25T00:15:00Z")));
        assert!(repeated.contains(utc("2026-10-25T01:15:00Z")));
        // A window in UTC does not move: Monday 09:00 UTC stays 09:00 UTC.
        let utc_window: Window = "Mon 09:00-10:00 UTC".parse().unwrap();
        assert_eq!(
            utc_window.next_open(utc("2026-03-28T12:00:00Z")),
            Some(utc("2026-03-30T09:00:00Z"))
        );
    }

    #[test]
    fn several_windows() {
        let ws: Vec<Window> = vec![
            "Mon 09:00-10:00 UTC".parse().unwrap(),
            "Sat 12:00-13:00 UTC".parse().unwrap(),
        ];
        // From Friday 2026-12-04: Saturday comes first.
        assert_eq!(
            next_open(&ws, utc("2026-12-04T00:00:00Z")),
            Some(utc("2026-12-05T12:00:00Z"))
        );
        assert!(inside(&ws, utc("2026-12-07T09:00:00Z")));
        assert!(!inside(&ws, utc("2026-12-07T10:00:00Z")));
        assert!(inside(&[], utc("2026-12-07T10:00:00Z")));
    }
}
