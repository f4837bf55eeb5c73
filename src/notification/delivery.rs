//! The delivery queue's records: one queued notification and its state,
//! and an event's reminder times.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::spec::{NotifyRule, Trigger};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its next attempt (or being attempted under a lease).
    Pending,
    /// The hook accepted it.
    Delivered,
    /// Given up: a permanent failure, or every attempt failed.
    Failed,
}

impl DeliveryState {
    /// The word used in storage and output.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeliveryState {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "pending" => Ok(DeliveryState::Pending),
            "delivered" => Ok(DeliveryState::Delivered),
            "failed" => Ok(DeliveryState::Failed),
            other => Err(format!("unknown delivery state {other:?}")),
        }
    }
}

/// One queued notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The idempotency key: the same for every attempt.
    pub key: Uuid,
    /// The event it is about.
    pub event: Uuid,
    /// What set it off.
    pub on: Trigger,
    /// The rule it follows, as it was when queued.
    pub rule: NotifyRule,
    /// The JSON it sends.
    pub payload: serde_json::Value,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts started so far.
    pub attempts: u32,
    /// While pending: the wall-clock time of the next attempt, or when the
    /// lease of the attempt under way runs out.
    pub next_at: DateTime<Utc>,
    /// When it was queued (wall clock).
    pub created_at: DateTime<Utc>,
    /// When it was delivered or given up (wall clock).
    pub finished_at: Option<DateTime<Utc>>,
    /// The last attempt's error.
    pub last_error: Option<String>,
}

/// A reminder time of an event: `before_ms` ahead of its fire time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reminder {
    /// How long before the fire time.
    pub before_ms: u64,
    /// When it is due (the fire time minus `before_ms`).
    pub at: DateTime<Utc>,
    /// Whether it was queued for this fire time already.
    pub sent: bool,
}

/// The wall clock, for queue times (attempts and leases are real time even
/// when the engine runs on a pinned clock).
pub(crate) fn wall_now() -> DateTime<Utc> {
    Utc::now()
}
