//! Notifications and ticks: deliveries as they stand, test deliveries, and
//! what a tick changed.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use uuid::Uuid;

use super::audit::AuditEntry;
use super::time;
use crate::notify::{Delivery, DeliveryState, Failure};
use crate::TickResult;

/// One notification delivery and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct DeliveryStatus {
    /// The idempotency key: the same for every attempt.
    pub delivery: Uuid,
    /// The transition that set it off (`fired`, `missed`, `reminder`, …).
    pub on: String,
    /// The hook: `exec …` or `webhook URL`.
    pub hook: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts started so far.
    pub attempts: u32,
    /// Attempts before it is given up.
    pub max_attempts: u32,
    /// While pending: when the next attempt is due.
    #[serde(serialize_with = "time::opt")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it was delivered or given up.
    #[serde(serialize_with = "time::opt")]
    pub finished_at: Option<DateTime<Utc>>,
    /// The last attempt's error.
    pub error: Option<String>,
}

impl From<&Delivery> for DeliveryStatus {
    fn from(d: &Delivery) -> Self {
        DeliveryStatus {
            delivery: d.key,
            on: d.on.as_str().to_string(),
            hook: d.rule.hook.describe(),
            state: d.state.as_str().to_string(),
            attempts: d.attempts,
            max_attempts: d.rule.attempts,
            next_attempt_at: (d.state == DeliveryState::Pending).then_some(d.next_at),
            finished_at: d.finished_at,
            error: d.last_error.clone(),
        }
    }
}

/// One test delivery of `notify test`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct NotifyTestResult {
    /// The delivery's idempotency key.
    pub delivery: Uuid,
    /// The transition it pretended happened.
    pub on: String,
    /// The hook.
    pub hook: String,
    /// Whether the hook accepted it.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
}

impl NotifyTestResult {
    /// The result of delivering `d`: `failure` is `None` when it succeeded.
    pub fn new(d: &Delivery, failure: Option<&Failure>) -> Self {
        NotifyTestResult {
            delivery: d.key,
            on: d.on.as_str().to_string(),
            hook: d.rule.hook.describe(),
            ok: failure.is_none(),
            error: failure.map(|f| f.message().to_string()),
        }
    }
}

/// What `tick` changed: the events per outcome, the transitions as audit
/// entries in the order they happened, and the deliveries it attempted.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct TickReport {
    /// Events that fired.
    pub fired: Vec<Uuid>,
    /// Events that were missed.
    pub missed: Vec<Uuid>,
    /// Events that were cancelled.
    pub cancelled: Vec<Uuid>,
    /// Events that opened (blocked → pending).
    pub opened: Vec<Uuid>,
    /// The same transitions as audit entries, in the order they happened.
    pub transitions: Vec<AuditEntry>,
    /// The escalation steps applied since the last report, as their
    /// `escalated` entries (`detail.added`: the agents the step added;
    /// `detail.groups`: to which groups), in the order they applied.
    pub escalations: Vec<AuditEntry>,
    /// The deliveries attempted after the tick.
    pub notifications: Vec<DeliveryStatus>,
}

impl TickReport {
    /// A tick's result and the deliveries attempted after it.
    pub fn new(result: &TickResult, notifications: Vec<DeliveryStatus>) -> Self {
        TickReport {
            fired: result.fired.clone(),
            missed: result.missed.clone(),
            cancelled: result.cancelled.clone(),
            opened: result.opened.clone(),
            transitions: result.transitions.iter().map(AuditEntry::from).collect(),
            escalations: result.escalations.iter().map(AuditEntry::from).collect(),
            notifications,
        }
    }
}
