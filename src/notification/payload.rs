//! What a delivery says: the JSON payload (exec's stdin, a webhook's body)
//! and the one-line text of Slack's format.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::agent::AgentId;
use crate::event::TMinusEvent;
use crate::state::{EventState, ResponseStatus};
use crate::time_spec::format_time;

use super::spec::Trigger;

/// The event as a delivery shows it: the fields of `--json` event output
/// that a receiver needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeliveryEvent {
    /// The event's id.
    pub id: Uuid,
    /// Its campaign's name; `null` for a standalone event.
    pub campaign: Option<String>,
    /// Its name in the campaign, or the name given to `schedule --name`.
    pub name: Option<String>,
    /// Its kind (`review`, `deploy`, …).
    pub kind: String,
    /// Its state when the delivery was queued.
    pub state: EventState,
    /// When it is scheduled (RFC 3339); `null` while a blocked event's time
    /// is not known yet.
    pub scheduled_at: Option<String>,
    /// When it fires at the latest (RFC 3339); `null` while not known.
    pub fire_time: Option<String>,
    /// Confirmations it needs.
    pub quorum: usize,
    /// Confirmations it has.
    pub confirmed: usize,
    /// Who scheduled it.
    pub organizer: String,
    /// Every attendee and their answer.
    pub attendees: Vec<DeliveryAttendee>,
    /// The event's payload, as given.
    pub payload: Value,
    /// Its description.
    pub description: Option<String>,
    /// When it became final (RFC 3339).
    pub finished_at: Option<String>,
}

/// One attendee of a [`DeliveryEvent`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeliveryAttendee {
    /// The agent.
    pub agent: String,
    /// `pending`, `confirmed`, `deferred` or `declined`.
    pub status: String,
}

/// The event `e` of campaign `campaign` as a delivery shows it.
pub fn event_json(e: &TMinusEvent, campaign: Option<&str>) -> DeliveryEvent {
    DeliveryEvent {
        id: e.id,
        campaign: campaign.map(str::to_string),
        name: e.name.clone(),
        kind: e.kind.to_string(),
        state: e.state,
        scheduled_at: e.at_known().then(|| format_time(e.scheduled_at)),
        fire_time: e.fire_deadline().map(format_time),
        quorum: e.quorum,
        confirmed: e.confirmed_count(),
        organizer: e.organizer.as_str().to_string(),
        attendees: e
            .attendees
            .iter()
            .map(|(agent, status)| DeliveryAttendee {
                agent: agent.as_str().to_string(),
                status: status.word().to_string(),
            })
            .collect(),
        payload: e.payload.clone(),
        description: e.description.clone(),
        finished_at: e.finished_at.map(format_time),
    }
}

/// The attendees who have not answered yet.
pub fn waiting_for(e: &TMinusEvent) -> Vec<&str> {
    e.attendees
        .iter()
        .filter(|(_, s)| *s == ResponseStatus::Pending)
        .map(|(a, _)| a.as_str())
        .collect()
}

/// What set a delivery off.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause<'a> {
    /// The trigger.
    pub on: Trigger,
    /// When it happened (logical time).
    pub at: DateTime<Utc>,
    /// Who acted, for a response.
    pub agent: Option<&'a AgentId>,
    /// The log entry's details (reason, deferral, …); `{}` for a reminder.
    pub detail: &'a Value,
    /// For a reminder: how long before the fire time it was due.
    pub before_ms: Option<u64>,
    /// Whether this is a `notify test` delivery.
    pub test: bool,
}

/// What a delivery sends: an exec hook's stdin, a webhook's JSON body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeliveryPayload {
    /// The delivery's key, the same on every attempt (the
    /// `T-Minus-Delivery` header, `T_MINUS_DELIVERY`): drop repeats by it.
    pub delivery: Uuid,
    /// The transition: `opened`, `fired`, `missed`, `cancelled`,
    /// `confirmed`, `deferred`, `declined`, `reminder`, `breakglass` or
    /// `escalated`.
    pub on: String,
    /// When it happened (RFC 3339).
    pub at: String,
    /// Who answered, for `confirmed`, `deferred` and `declined`.
    pub agent: Option<String>,
    /// The log entry's details (reason, deferral, …); `{}` for a reminder.
    pub detail: Value,
    /// The attendees who have not answered yet.
    pub waiting_for: Vec<String>,
    /// The event as it was when the transition happened.
    pub event: DeliveryEvent,
    /// For a reminder: how long before the fire time it was due, in
    /// milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_ms: Option<u64>,
    /// `true` for a `notify test` delivery (absent otherwise).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

impl DeliveryPayload {
    /// As a JSON value, as the delivery queue stores it.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The payload of delivery `key` for `cause` on `event`.
pub fn build(
    key: Uuid,
    cause: &Cause<'_>,
    event: &TMinusEvent,
    campaign: Option<&str>,
) -> DeliveryPayload {
    DeliveryPayload {
        delivery: key,
        on: cause.on.as_str().to_string(),
        at: format_time(cause.at),
        agent: cause.agent.map(|a| a.as_str().to_string()),
        detail: without_record(cause.detail),
        waiting_for: waiting_for(event).into_iter().map(str::to_string).collect(),
        event: event_json(event, campaign),
        before_ms: cause.before_ms,
        test: cause.test,
    }
}

/// An entry's detail without what it records for `verify` (`set`,
/// `record`): receivers get what happened, not the event's record.
fn without_record(detail: &Value) -> Value {
    match detail {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != "set" && k.as_str() != "record")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Slack's incoming-webhook body: one line of text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SlackMessage {
    /// The line [`text`] makes of the payload.
    pub text: String,
}

/// One line for humans (Slack's `text`): what happened to which event.
pub fn text(payload: &Value) -> String {
    let event = &payload["event"];
    let name = match (event["campaign"].as_str(), event["name"].as_str()) {
        (Some(c), Some(n)) => format!("{c}/{n}"),
        (None, Some(n)) => n.to_string(),
        _ => {
            let id = event["id"].as_str().unwrap_or_default();
            let kind = event["kind"].as_str().unwrap_or("event");
            format!("{kind} {}", id.get(..8).unwrap_or(id))
        }
    };
    let on = payload["on"].as_str().unwrap_or_default();
    let mut line = match on {
        "reminder" => {
            let fire = event["fire_time"].as_str().unwrap_or("unknown");
            format!("⏰ {name} fires at {fire} without quorum yet")
        }
        "confirmed" | "deferred" | "declined" => {
            let agent = payload["agent"].as_str().unwrap_or("someone");
            format!("{name}: {agent} {on}")
        }
        "fired" => format!("🚀 {name} fired"),
        "missed" => format!("❌ {name} missed"),
        "cancelled" => format!("🛑 {name} cancelled"),
        "opened" => format!("🔓 {name} opened"),
        "escalated" => {
            let added: Vec<&str> = payload["detail"]["added"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            format!("⏫ {name} escalated: added {}", added.join(", "))
        }
        other => format!("{name}: {other}"),
    };
    let waiting: Vec<&str> = payload["waiting_for"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !waiting.is_empty() && !matches!(on, "fired" | "missed" | "cancelled") {
        line.push_str(&format!(" (waiting for {})", waiting.join(", ")));
    }
    if let Some(reason) = payload["detail"]["reason"].as_str() {
        line.push_str(&format!(": {reason}"));
    }
    if payload["test"] == Value::Bool(true) {
        line.push_str(" [test]");
    }
    line
}
