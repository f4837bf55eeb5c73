//! The stored form of deliveries and reminders, shared by both stores.

use super::row::{ms, opt_time, parse, time};
use crate::notification::{Delivery, NotifyRule, Reminder};

/// The columns of a delivery row, in [`DeliveryRow`] field order.
pub(crate) const DELIVERY_COLUMNS: &str =
    "key, event_id, cause, rule, payload, state, attempts, next_ms, created_ms, finished_ms, last_error";

/// A delivery's row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeliveryRow {
    pub key: uuid::Uuid,
    pub event_id: uuid::Uuid,
    pub cause: String,
    pub rule: String,
    pub payload: String,
    pub state: String,
    pub attempts: i64,
    pub next_ms: i64,
    pub created_ms: i64,
    pub finished_ms: Option<i64>,
    pub last_error: Option<String>,
}

impl DeliveryRow {
    /// The row that stores `d`.
    pub fn from_delivery(d: &Delivery) -> Self {
        DeliveryRow {
            key: d.key,
            event_id: d.event,
            cause: d.on.as_str().to_string(),
            rule: serde_json::to_string(&d.rule).unwrap_or_default(),
            payload: d.payload.to_string(),
            state: d.state.as_str().to_string(),
            attempts: i64::from(d.attempts),
            next_ms: ms(d.next_at),
            created_ms: ms(d.created_at),
            finished_ms: d.finished_at.map(ms),
            last_error: d.last_error.clone(),
        }
    }

    /// The delivery this row stores.
    pub fn into_delivery(self) -> Result<Delivery, String> {
        Ok(Delivery {
            key: self.key,
            event: self.event_id,
            on: parse(&self.cause)?,
            rule: serde_json::from_str(&self.rule).map_err(|e| format!("bad rule: {e}"))?,
            payload: serde_json::from_str(&self.payload)
                .map_err(|e| format!("bad payload: {e}"))?,
            state: parse(&self.state)?,
            attempts: u32::try_from(self.attempts).map_err(|e| e.to_string())?,
            next_at: time(self.next_ms)?,
            created_at: time(self.created_ms)?,
            finished_at: opt_time(self.finished_ms)?,
            last_error: self.last_error,
        })
    }
}

/// An event's rules as stored: a JSON array.
pub(crate) fn rules_text(rules: &[NotifyRule]) -> String {
    serde_json::to_string(rules).unwrap_or_else(|_| "[]".into())
}

/// Stored rules.
pub(crate) fn rules_from_text(text: &str) -> Result<Vec<NotifyRule>, String> {
    serde_json::from_str(text).map_err(|e| format!("bad notification rules: {e}"))
}

/// A stored reminder.
pub(crate) fn reminder(before_ms: i64, remind_ms: i64, sent: bool) -> Result<Reminder, String> {
    Ok(Reminder {
        before_ms: u64::try_from(before_ms).map_err(|e| e.to_string())?,
        at: time(remind_ms)?,
        sent,
    })
}

/// A reminder's `before_ms` column.
pub(crate) fn before_column(r: &Reminder) -> i64 {
    i64::try_from(r.before_ms).unwrap_or(i64::MAX)
}
