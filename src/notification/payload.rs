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
    /// The event's page, `PUBLIC_URL/events/{event id}`, where a person
    /// signs in and answers: one link per event, with no login token in it.
    /// Added when the delivering process knows its public URL (`serve
    /// --public-url`, or `T_MINUS_PUBLIC_URL` for `run`, `wait` and `tick`);
    /// absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_url: Option<String>,
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
        answer_url: None,
    }
}

/// The page of event `event` under `public_url`: `PUBLIC_URL/events/{id}`
/// (a trailing `/` of the public URL is dropped).
pub fn answer_url(public_url: &str, event: Uuid) -> String {
    format!("{}/events/{event}", public_url.trim_end_matches('/'))
}

/// The queued `payload` as delivered: with its `answer_url` when the
/// delivering process knows its public URL.
pub fn as_delivered(payload: &Value, public_url: Option<&str>) -> Value {
    let mut payload = payload.clone();
    let id = payload["event"]["id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok());
    if let (Some(base), Some(id), Value::Object(map)) = (public_url, id, &mut payload) {
        map.insert("answer_url".into(), Value::String(answer_url(base, id)));
    }
    payload
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

/// The body of a `format: slack` webhook: Slack's message JSON.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SlackMessage {
    /// The line [`text`] makes of the payload (what Slack shows in
    /// notifications).
    pub text: String,
    /// Block Kit blocks: the line, the quorum, and the answer buttons (see
    /// [`slack_message`]).
    pub blocks: Value,
}

/// The `action_id` of the Confirm button of a Slack message.
pub const SLACK_CONFIRM: &str = "t-minus.confirm";
/// The `action_id` of the Defer button.
pub const SLACK_DEFER: &str = "t-minus.defer";
/// The `action_id` of the Decline button.
pub const SLACK_DECLINE: &str = "t-minus.decline";
/// The `action_id` of the button that opens the event's page (a link
/// button: Slack opens the URL, and t-minus ignores its interaction).
pub const SLACK_OPEN: &str = "t-minus.open";

/// The body of a `format: slack` webhook for `payload` (as delivered, see
/// [`as_delivered`]).
/// `text` is the line [`text`] makes (Slack shows it in notifications);
/// `blocks` are that line (with the event's name linked to its
/// `answer_url`, when there is one) and its quorum, then — while the event
/// is not final and the delivery is not about its end — an `actions` block
/// with the buttons Confirm, Defer and Decline (`action_id`
/// [`SLACK_CONFIRM`], [`SLACK_DEFER`], [`SLACK_DECLINE`], each with the
/// event's id as `value`) and Open ([`SLACK_OPEN`], the link).
pub fn slack_message(payload: &Value) -> SlackMessage {
    let line = text(payload);
    let on = payload["on"].as_str().unwrap_or_default();
    let ended = matches!(on, "fired" | "missed" | "cancelled");
    let answer_url = payload["answer_url"].as_str();
    SlackMessage {
        blocks: slack_blocks(&line, &payload["event"], answer_url, !ended),
        text: line,
    }
}

/// The Block Kit blocks of a message about `event` (a [`DeliveryEvent`] as
/// JSON): `line`, the event's quorum and state, and — when `buttons` and
/// the event is not final — the answer buttons and the link to
/// `answer_url` (see [`slack_message`]).
pub fn slack_blocks(line: &str, event: &Value, answer_url: Option<&str>, buttons: bool) -> Value {
    let mut shown = slack_escape(line);
    if let Some(url) = answer_url {
        shown.push_str(&format!(" — <{}|open>", slack_escape(url)));
    }
    let state = event["state"].as_str().unwrap_or("pending");
    let mut context = format!(
        "quorum {}/{} · {state}",
        event["confirmed"].as_u64().unwrap_or(0),
        event["quorum"].as_u64().unwrap_or(0)
    );
    if let (false, Some(fire)) = (
        matches!(state, "fired" | "missed" | "cancelled"),
        event["fire_time"].as_str(),
    ) {
        context.push_str(&format!(" · fires at {fire}"));
    }
    let mut blocks = vec![
        serde_json::json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": shown },
        }),
        serde_json::json!({
            "type": "context",
            "elements": [{ "type": "mrkdwn", "text": slack_escape(&context) }],
        }),
    ];
    let id = event["id"].as_str().unwrap_or_default();
    let open = matches!(state, "pending" | "blocked");
    if buttons && open && !id.is_empty() {
        let button = |action: &str, label: &str, style: Option<&str>| {
            let mut b = serde_json::json!({
                "type": "button",
                "action_id": action,
                "text": { "type": "plain_text", "text": label },
                "value": id,
            });
            if let Some(style) = style {
                b["style"] = Value::String(style.into());
            }
            b
        };
        let mut elements = vec![
            button(SLACK_CONFIRM, "Confirm", Some("primary")),
            button(SLACK_DEFER, "Defer", None),
            button(SLACK_DECLINE, "Decline", Some("danger")),
        ];
        if let Some(url) = answer_url {
            elements.push(serde_json::json!({
                "type": "button",
                "action_id": SLACK_OPEN,
                "text": { "type": "plain_text", "text": "Open" },
                "url": url,
            }));
        }
        blocks.push(serde_json::json!({
            "type": "actions",
            "block_id": format!("t-minus:{id}"),
            "elements": elements,
        }));
    }
    Value::Array(blocks)
}

/// `text` with Slack's control characters escaped (`&`, `<`, `>`), as
/// Slack's message formatting asks.
pub fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
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
