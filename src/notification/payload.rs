//! What a delivery says: the JSON payload (exec's stdin, a webhook's body)
//! and the one-line text of Slack's format.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::agent::AgentId;
use crate::event::TMinusEvent;
use crate::state::ResponseStatus;
use crate::time_spec::format_time;

use super::spec::Trigger;

/// The event as a delivery shows it: the fields of `--json` event output
/// that a receiver needs.
pub fn event_json(e: &TMinusEvent, campaign: Option<&str>) -> Value {
    let attendees: Vec<Value> = e
        .attendees
        .iter()
        .map(|(agent, status)| json!({ "agent": agent.as_str(), "status": status.word() }))
        .collect();
    json!({
        "id": e.id,
        "campaign": campaign,
        "name": e.name,
        "kind": e.kind.to_string(),
        "state": e.state,
        "scheduled_at": e.at_known().then(|| format_time(e.scheduled_at)),
        "fire_time": e.fire_deadline().map(format_time),
        "quorum": e.quorum,
        "confirmed": e.confirmed_count(),
        "organizer": e.organizer.as_str(),
        "attendees": attendees,
        "payload": e.payload,
        "description": e.description,
        "finished_at": e.finished_at.map(format_time),
    })
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

/// The payload of delivery `key` for `cause` on `event`.
pub fn build(key: Uuid, cause: &Cause<'_>, event: &TMinusEvent, campaign: Option<&str>) -> Value {
    let mut payload = json!({
        "delivery": key,
        "on": cause.on.as_str(),
        "at": format_time(cause.at),
        "agent": cause.agent.map(AgentId::as_str),
        "detail": cause.detail,
        "waiting_for": waiting_for(event),
        "event": event_json(event, campaign),
    });
    if let Some(before) = cause.before_ms {
        payload["before_ms"] = json!(before);
    }
    if cause.test {
        payload["test"] = json!(true);
    }
    payload
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
    if payload["test"] == json!(true) {
        line.push_str(" [test]");
    }
    line
}
