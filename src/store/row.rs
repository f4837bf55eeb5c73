//! The stored form of an event, shared by the SQLite and PostgreSQL stores.
//!
//! Both stores keep the same columns: times as integer milliseconds since
//! the Unix epoch (UTC), durations as integer milliseconds, ids as lowercase
//! hyphenated UUID text, enums as their words, the payload as JSON text.
//! [`EventRow`] is that row in Rust, so the conversion to and from
//! [`TMinusEvent`] is written once.

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::agent::AgentId;
use crate::event::TMinusEvent;
use crate::policy::QuorumGroup;
use crate::state::ResponseStatus;

/// The columns of an event row, in [`EventRow`] field order.
pub(crate) const EVENT_COLUMNS: &str =
    "id, campaign_id, name, kind, description, at_ms, offset_ms, start_ms, \
     t_minus_ms, defer_ms, max_defer_ms, quorum, quorum_spec, fire_policy, organizer, payload, \
     state, finished_ms, created_ms, last_response_ms, groups";

/// An event's own row (attendees live in their own table).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EventRow {
    pub id: String,
    pub campaign_id: Option<String>,
    pub name: Option<String>,
    pub kind: String,
    pub description: Option<String>,
    /// Absolute scheduled time before deferrals.
    pub at_ms: Option<i64>,
    /// Or: offset from the start (relative events).
    pub offset_ms: Option<i64>,
    /// When it started counting (`None` while blocked).
    pub start_ms: Option<i64>,
    pub t_minus_ms: i64,
    pub defer_ms: i64,
    pub max_defer_ms: Option<i64>,
    pub quorum: i64,
    pub quorum_spec: String,
    pub fire_policy: String,
    pub organizer: String,
    pub payload: String,
    pub state: String,
    pub finished_ms: Option<i64>,
    pub created_ms: i64,
    pub last_response_ms: Option<i64>,
    /// Quorum groups as JSON (`[{"name", "quorum", "members"}]`); `None` for
    /// a plain event (one unnamed group of all its attendees).
    pub groups: Option<String>,
    /// The effective fire time, when known; written, never read back.
    pub fire_ms: Option<i64>,
}

/// Milliseconds since the epoch.
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A stored time.
pub(crate) fn time(ms: i64) -> Result<DateTime<Utc>, String> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| format!("time out of range: {ms}"))
}

/// A stored optional time.
pub(crate) fn opt_time(ms: Option<i64>) -> Result<Option<DateTime<Utc>>, String> {
    ms.map(time).transpose()
}

/// A stored id.
pub(crate) fn uuid(s: &str) -> Result<Uuid, String> {
    Uuid::parse_str(s).map_err(|e| format!("bad uuid {s:?}: {e}"))
}

/// A stored word (kind, state, policy, action…).
pub(crate) fn parse<T: FromStr>(s: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e: T::Err| e.to_string())
}

/// A stored response: its status word and, for a deferral, its length.
pub(crate) fn response(word: &str, defer_ms: Option<i64>) -> Result<ResponseStatus, String> {
    ResponseStatus::from_parts(word, defer_ms)
        .ok_or_else(|| format!("unknown response status {word:?}"))
}

/// Status and deferral columns of a response.
pub(crate) fn status_columns(status: ResponseStatus) -> (&'static str, Option<i64>) {
    match status {
        ResponseStatus::Deferred(d) => ("deferred", Some(d.num_milliseconds())),
        other => (other.word(), None),
    }
}

/// The stored form of quorum groups; `None` when there are none.
fn groups_text(groups: &[QuorumGroup]) -> Option<String> {
    if groups.is_empty() {
        return None;
    }
    let list: Vec<serde_json::Value> = groups
        .iter()
        .map(|g| {
            serde_json::json!({
                "name": g.name,
                "quorum": g.quorum.to_string(),
                "members": g.members,
            })
        })
        .collect();
    Some(serde_json::Value::from(list).to_string())
}

/// Quorum groups from their stored form.
fn parse_groups(text: &str) -> Result<Vec<QuorumGroup>, String> {
    #[derive(serde::Deserialize)]
    struct Stored {
        name: String,
        quorum: String,
        members: Vec<AgentId>,
    }
    let stored: Vec<Stored> =
        serde_json::from_str(text).map_err(|e| format!("bad groups {text:?}: {e}"))?;
    stored
        .into_iter()
        .map(|g| Ok(QuorumGroup::new(g.name, parse(&g.quorum)?, g.members)))
        .collect()
}

impl EventRow {
    /// The row that stores `e`.
    pub fn from_event(e: &TMinusEvent) -> Self {
        let (at_ms, offset_ms) = match e.relative_at {
            Some(offset) => (None, Some(offset.num_milliseconds())),
            None => (Some(ms(e.scheduled_at - e.deferred)), None),
        };
        EventRow {
            id: e.id.to_string(),
            campaign_id: e.campaign.map(|c| c.to_string()),
            name: e.name.clone(),
            kind: e.kind.to_string(),
            description: e.description.clone(),
            at_ms,
            offset_ms,
            start_ms: e.started_at.map(ms),
            t_minus_ms: e.t_minus.num_milliseconds(),
            defer_ms: e.deferred.num_milliseconds(),
            max_defer_ms: e.max_defer.map(|d| d.num_milliseconds()),
            quorum: e.quorum as i64,
            quorum_spec: e.quorum_spec.to_string(),
            fire_policy: e.fire_policy.to_string(),
            organizer: e.organizer.0.clone(),
            payload: e.payload.to_string(),
            state: e.state.as_str().into(),
            finished_ms: e.finished_at.map(ms),
            created_ms: ms(e.created_at),
            last_response_ms: e.last_response_at.map(ms),
            groups: groups_text(&e.groups),
            fire_ms: e.fire_deadline().map(ms),
        }
    }

    /// The event this row stores, without its attendees.
    pub fn into_event(self) -> Result<TMinusEvent, String> {
        // The scheduled time: absolute, or start + offset; an unstarted
        // relative event is estimated from its creation.
        let base = match (self.at_ms, self.offset_ms) {
            (Some(at), _) => at,
            (None, Some(offset)) => self.start_ms.unwrap_or(self.created_ms) + offset,
            (None, None) => return Err("event has neither at nor offset".into()),
        };
        Ok(TMinusEvent {
            id: uuid(&self.id)?,
            campaign: self.campaign_id.as_deref().map(uuid).transpose()?,
            name: self.name,
            kind: parse(&self.kind)?,
            description: self.description,
            scheduled_at: time(base + self.defer_ms)?,
            relative_at: self.offset_ms.map(Duration::milliseconds),
            started_at: opt_time(self.start_ms)?,
            t_minus: Duration::milliseconds(self.t_minus_ms),
            deferred: Duration::milliseconds(self.defer_ms),
            max_defer: self.max_defer_ms.map(Duration::milliseconds),
            quorum: usize::try_from(self.quorum).map_err(|e| e.to_string())?,
            quorum_spec: parse(&self.quorum_spec)?,
            fire_policy: parse(&self.fire_policy)?,
            organizer: AgentId(self.organizer),
            payload: serde_json::from_str(&self.payload).map_err(|e| e.to_string())?,
            state: parse(&self.state)?,
            finished_at: opt_time(self.finished_ms)?,
            created_at: time(self.created_ms)?,
            last_response_at: opt_time(self.last_response_ms)?,
            attendees: Vec::new(),
            groups: self
                .groups
                .as_deref()
                .map(parse_groups)
                .transpose()?
                .unwrap_or_default(),
        })
    }
}
