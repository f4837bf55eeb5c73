//! Event states and attendee responses.

use std::fmt;
use std::str::FromStr;

use chrono::Duration;
use serde::{Deserialize, Serialize};

/// The stored state of an event:
///
/// ```text
/// blocked ──(all needs fired)──▶ pending ──(quorum, per fire policy)──▶ fired
///    │                              ├──(fire time passed without quorum)──▶ missed
///    │                              └──(quorum no longer reachable)───────▶ missed
///    └──(a need missed or was cancelled)──▶ cancelled
/// ```
/// `cancel` takes any non-final event to `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventState {
    /// Waiting for the events it needs to fire.
    Blocked,
    /// Open: counting down and collecting responses.
    Pending,
    /// Quorum was reached (final).
    Fired,
    /// The fire time passed without quorum, or quorum became unreachable (final).
    Missed,
    /// Cancelled by a user or because a need did not fire (final).
    Cancelled,
}

impl EventState {
    /// Whether the state is final: `fired`, `missed` or `cancelled`.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            EventState::Fired | EventState::Missed | EventState::Cancelled
        )
    }

    /// The lowercase name used in output and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Blocked => "blocked",
            EventState::Pending => "pending",
            EventState::Fired => "fired",
            EventState::Missed => "missed",
            EventState::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for EventState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "blocked" => EventState::Blocked,
            "pending" => EventState::Pending,
            "fired" => EventState::Fired,
            "missed" => EventState::Missed,
            "cancelled" => EventState::Cancelled,
            other => return Err(format!("unknown event state `{other}`")),
        })
    }
}

/// An attendee's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseStatus {
    /// No answer yet.
    Pending,
    /// Ready.
    Confirmed,
    /// Needs more time; the event moved later by this much.
    Deferred(Duration),
    /// Will not take part.
    Declined,
    /// Had not confirmed when the event was missed.
    Missed,
}

impl ResponseStatus {
    /// Whether this attendee could still confirm (pending or deferred).
    pub fn may_still_confirm(self) -> bool {
        matches!(self, ResponseStatus::Pending | ResponseStatus::Deferred(_))
    }

    /// The status word without the deferral: `pending`, `confirmed`, …
    pub fn word(self) -> &'static str {
        match self {
            ResponseStatus::Pending => "pending",
            ResponseStatus::Confirmed => "confirmed",
            ResponseStatus::Deferred(_) => "deferred",
            ResponseStatus::Declined => "declined",
            ResponseStatus::Missed => "missed",
        }
    }

    /// Rebuilds a status from its word and, for `deferred`, milliseconds.
    pub fn from_parts(word: &str, defer_ms: Option<i64>) -> Option<Self> {
        Some(match word {
            "pending" => ResponseStatus::Pending,
            "confirmed" => ResponseStatus::Confirmed,
            "deferred" => ResponseStatus::Deferred(Duration::milliseconds(defer_ms.unwrap_or(0))),
            "declined" => ResponseStatus::Declined,
            "missed" => ResponseStatus::Missed,
            _ => return None,
        })
    }
}

/// `pending`, `confirmed`, `deferred:300s`, `declined`, `missed`.
impl fmt::Display for ResponseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseStatus::Deferred(d) if d.subsec_nanos() == 0 => {
                write!(f, "deferred:{}s", d.num_seconds())
            }
            ResponseStatus::Deferred(d) => write!(f, "deferred:{}ms", d.num_milliseconds()),
            other => f.write_str(other.word()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_seed() {
        assert_eq!(
            ResponseStatus::Deferred(Duration::minutes(5)).to_string(),
            "deferred:300s"
        );
        assert_eq!(ResponseStatus::Confirmed.to_string(), "confirmed");
        assert_eq!(
            ResponseStatus::from_parts("deferred", Some(1500))
                .unwrap()
                .to_string(),
            "deferred:1500ms"
        );
        assert!(EventState::Missed.is_final() && !EventState::Blocked.is_final());
        assert_eq!("fired".parse::<EventState>().unwrap(), EventState::Fired);
    }
}
