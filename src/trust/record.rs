//! What the log says an event or a campaign is: its *record*.
//!
//! A record is a JSON object with one member per stored field that the audit
//! log explains. Every log entry that creates or changes an event or a
//! campaign carries, in its detail, either its whole record after the
//! change (`"record": {…}`: `scheduled`, `updated`, a `linked` that moved an
//! event into a campaign, `baseline`, `campaign-created`,
//! `campaign-baseline`) or the members it changed (`"set": {…}`: answers,
//! deferrals, transitions, new needs, signers and rules changes, escalation
//! steps, break-glass). An entry may also imply a change of the answers the
//! log holds (a miss, a content change, a change of fire policy into or out
//! of `lazy`: see [`apply_event_entry`]).
//! Replaying a log applies them in order ([`apply_set`]); `verify` then
//! compares every member with the same record computed from the stored rows
//! ([`event_record`], [`campaign_record`]), member by member.
//!
//! **Adding a stored field** is a member in [`event_record`] (or
//! [`campaign_record`]), written by the entries that change it (a full
//! record carries it by itself), and for an event the same member in
//! [`event_record_text`], the text `verify` compares without building the
//! record (test builds assert the two agree for every event verified, and
//! `trust_replay` checks it for every kind of event). A log written before the member existed
//! does not explain it, so a field added later also needs a migration that
//! records a new baseline, as the first one did.
//!
//! Large or secret fields are recorded as their digest (`sha256:` and 64
//! lowercase hex digits of the canonical JSON): the payload and the
//! notification rules (their URLs and headers may hold secrets).
//!
//! The members of an event's record:
//!
//! | member | value |
//! |---|---|
//! | `state` | `blocked`, `pending`, `fired`, `missed`, `cancelled` |
//! | `campaign` | the campaign's id, or `null` |
//! | `name` | its name, or `null` |
//! | `kind`, `description`, `organizer` | as stored |
//! | `at` | the scheduled time with every deferral, `null` while not known |
//! | `relative_at` | the offset from its start in ms, or `null` |
//! | `started_at` | when it started counting, or `null` |
//! | `t_minus`, `deferred`, `max_defer` | durations in ms (`max_defer` may be `null`) |
//! | `fire_time` | when the store next looks at it (the fire time, or sooner: an opening window once quorum holds, the next escalation step), `null` while not known |
//! | `quorum`, `quorum_spec`, `groups`, `fire_policy` | resolved quorum, as spelled, the groups, the policy |
//! | `attendees` | the attendees in order |
//! | `answers` | each attendee's answer: `pending`, `confirmed`, `deferred:300s`, `declined`, `missed` |
//! | `payload` | the payload's digest |
//! | `finished_at` | when it became final, or `null` |
//! | `notify` | the notification rules' digest, `null` without rules |
//! | `needs` | the ids of the events it needs, sorted |
//! | `signers` | a standalone event's key set digest, or `null` (a campaign event's is its campaign's) |
//! | `gates` | `four_eyes`, `windows`, `breakglass` (who may) and `broken` (the break-glass that fired it), each only when set |
//! | `escalation` | its `steps`, how many were `applied` and when the last was (`applied_at`) |
//!
//! A campaign's: `name`, `description`, `managed`, `anchor_at`, `signers`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::event::TMinusEvent;
use crate::trust::framing::{canonical_json, ObjectWriter};

/// A record: field name → value.
pub type Record = Map<String, Value>;

/// The member of a record whose value is an object merged member by member
/// by a `set` (one attendee's answer), where every other member is replaced.
pub const ANSWERS: &str = "answers";

/// What an event's record is computed from besides its row and attendees.
#[derive(Debug, Clone)]
pub struct EventExtras<'a> {
    /// The effective fire time as stored (the row's fire time column); for
    /// an event being written, [`TMinusEvent::stored_due`].
    pub fire_time: Option<DateTime<Utc>>,
    /// Its notification rules' digest ([`notify_digest`]).
    pub notify: Value,
    /// The ids of the events it needs, in any order.
    pub needs: &'a [Uuid],
    /// For a standalone event, the digest of the key set in force.
    pub signers: Option<&'a str>,
}

/// A time as recorded: RFC 3339 in UTC with milliseconds.
pub fn time_value(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| {
        Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true))
    })
}

/// `sha256:` and the hex SHA-256 of `value`'s canonical JSON.
pub fn json_digest(value: &Value) -> String {
    let bytes = Sha256::digest(canonical_json(value).as_bytes());
    format!("sha256:{}", base16ct::lower::encode_string(&bytes))
}

/// The digest of notification rules as recorded: `null` without rules.
pub fn notify_digest<R: serde::Serialize>(rules: &[R]) -> Value {
    if rules.is_empty() {
        return Value::Null;
    }
    match serde_json::to_value(rules) {
        Ok(value) => Value::String(json_digest(&value)),
        Err(_) => Value::Null,
    }
}

/// The members of an event's record that its row and attendees give (all
/// but `notify`, `needs` and `signers`), with the fire time `fire_time`.
pub fn row_record(event: &TMinusEvent, fire_time: Option<DateTime<Utc>>) -> Record {
    // Room for every member of a whole record (`event_record` adds three).
    let mut r = Record::with_capacity(28);
    let ms = |d: chrono::Duration| Value::from(d.num_milliseconds());
    r.insert("state".into(), json!(event.state.as_str()));
    r.insert(
        "campaign".into(),
        event
            .campaign
            .map_or(Value::Null, |c| Value::String(c.to_string())),
    );
    r.insert("name".into(), json!(event.name));
    r.insert("kind".into(), json!(event.kind.to_string()));
    r.insert("description".into(), json!(event.description));
    r.insert("organizer".into(), json!(event.organizer.as_str()));
    r.insert(
        "at".into(),
        time_value(event.at_known().then_some(event.scheduled_at)),
    );
    r.insert(
        "relative_at".into(),
        event.relative_at.map_or(Value::Null, ms),
    );
    r.insert("started_at".into(), time_value(event.started_at));
    r.insert("t_minus".into(), ms(event.t_minus));
    r.insert("deferred".into(), ms(event.deferred));
    r.insert("max_defer".into(), event.max_defer.map_or(Value::Null, ms));
    r.insert("fire_time".into(), time_value(fire_time));
    r.insert("quorum".into(), json!(event.quorum));
    r.insert("quorum_spec".into(), json!(event.quorum_spec.to_string()));
    let groups: Vec<Value> = event
        .groups
        .iter()
        .map(|g| json!({ "name": g.name, "quorum": g.quorum.to_string(), "members": g.members }))
        .collect();
    r.insert("groups".into(), Value::Array(groups));
    r.insert("fire_policy".into(), json!(event.fire_policy.to_string()));
    r.insert(
        "attendees".into(),
        event
            .attendees
            .iter()
            .map(|(a, _)| Value::String(a.to_string()))
            .collect(),
    );
    r.insert(ANSWERS.into(), answers(event));
    r.insert("payload".into(), json!(json_digest(&event.payload)));
    r.insert("finished_at".into(), time_value(event.finished_at));
    r.insert(
        "gates".into(),
        serde_json::to_value(&event.gates).unwrap_or(Value::Null),
    );
    r.insert(
        "escalation".into(),
        serde_json::to_value(&event.escalation).unwrap_or(Value::Null),
    );
    r
}

/// Every attendee's answer, as the `answers` member.
pub fn answers(event: &TMinusEvent) -> Value {
    Value::Object(
        event
            .attendees
            .iter()
            .map(|(a, s)| (a.to_string(), Value::String(s.to_string())))
            .collect(),
    )
}

/// An event's whole record.
pub fn event_record(event: &TMinusEvent, extras: EventExtras<'_>) -> Record {
    let mut r = row_record(event, extras.fire_time);
    r.insert("notify".into(), extras.notify);
    r.insert("needs".into(), needs_value(extras.needs));
    if event.campaign.is_none() {
        r.insert("signers".into(), json!(extras.signers));
    }
    r
}

/// An event's whole record's canonical text, written member by member
/// without building the record: the same text as
/// `record_text(&event_record(event, extras))`.
pub fn event_record_text(event: &TMinusEvent, extras: &EventExtras<'_>) -> String {
    let ms = |d: chrono::Duration| d.num_milliseconds();
    let time = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true));
    let mut w = ObjectWriter::new(1024);
    w.member_object(ANSWERS, |w| {
        let mut answers: Vec<(&str, String)> = event
            .attendees
            .iter()
            .map(|(a, s)| (a.as_str(), s.to_string()))
            .collect();
        answers.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        for (i, (agent, answer)) in answers.iter().enumerate() {
            // An agent listed twice keeps its last answer, as a map does.
            if answers.get(i + 1).is_none_or(|next| next.0 != *agent) {
                w.member(agent, answer);
            }
        }
    });
    w.member("at", &time(event.at_known().then_some(event.scheduled_at)));
    let attendees: Vec<&str> = event.attendees.iter().map(|(a, _)| a.as_str()).collect();
    w.member("attendees", &attendees);
    w.member("campaign", &event.campaign.map(|c| c.to_string()));
    w.member("deferred", &ms(event.deferred));
    w.member("description", &event.description);
    if event.escalation == Default::default() {
        w.member_object("escalation", |w| {
            w.member("applied", &0);
            w.member::<[u8]>("steps", &[]);
        });
    } else {
        w.member_value(
            "escalation",
            &serde_json::to_value(&event.escalation).unwrap_or(Value::Null),
        );
    }
    w.member("finished_at", &time(event.finished_at));
    w.member("fire_policy", &event.fire_policy.to_string());
    w.member("fire_time", &time(extras.fire_time));
    if event.gates.is_empty() {
        w.member_object("gates", |_| {});
    } else {
        w.member_value(
            "gates",
            &serde_json::to_value(&event.gates).unwrap_or(Value::Null),
        );
    }
    w.member_objects("groups", &event.groups, |w, g| {
        w.member("members", &g.members);
        w.member("name", &g.name);
        w.member("quorum", &g.quorum.to_string());
    });
    w.member("kind", &event.kind.to_string());
    w.member("max_defer", &event.max_defer.map(ms));
    w.member("name", &event.name);
    w.member_value("needs", &needs_value(extras.needs));
    w.member_value("notify", &extras.notify);
    w.member("organizer", event.organizer.as_str());
    w.member("payload", &json_digest(&event.payload));
    w.member("quorum", &event.quorum);
    w.member("quorum_spec", &event.quorum_spec.to_string());
    w.member("relative_at", &event.relative_at.map(ms));
    if event.campaign.is_none() {
        w.member("signers", &extras.signers);
    }
    w.member("started_at", &time(event.started_at));
    w.member("state", event.state.as_str());
    w.member("t_minus", &ms(event.t_minus));
    w.finish()
}

/// Needs as recorded: their ids, sorted.
pub fn needs_value(needs: &[Uuid]) -> Value {
    let mut ids: Vec<String> = needs.iter().map(Uuid::to_string).collect();
    ids.sort();
    ids.dedup();
    ids.into_iter().map(Value::String).collect()
}

/// The members `keys` of `event`'s row record (fire time: as its row
/// keeps it, [`TMinusEvent::stored_due`]): what an entry that changed only
/// those sets.
pub fn set_of(event: &TMinusEvent, keys: &[&str]) -> Value {
    let mut all = row_record(event, event.stored_due());
    let mut out = Record::new();
    for key in keys {
        if let Some(value) = all.remove(*key) {
            out.insert((*key).to_string(), value);
        }
    }
    Value::Object(out)
}

/// A campaign's whole record.
pub fn campaign_record(
    name: &str,
    description: Option<&str>,
    managed: bool,
    anchor_at: Option<DateTime<Utc>>,
    signers: Option<&str>,
) -> Record {
    let mut r = Record::new();
    r.insert("name".into(), json!(name));
    r.insert("description".into(), json!(description));
    r.insert("managed".into(), json!(managed));
    r.insert("anchor_at".into(), time_value(anchor_at));
    r.insert("signers".into(), json!(signers));
    r
}

/// The member of a `set` that is a deferral's length in ms: added to
/// `deferred`, `at` and `fire_time` (a change, not a value, so that a
/// stored total edited before the deferral stays a difference).
pub const DEFERRED_BY: &str = "deferred_by";

/// Applies an entry's `set` to `record`: each member replaces the
/// record's, except [`ANSWERS`], merged agent by agent; `attendees`, which
/// also drops the answers of attendees no longer listed and adds a
/// `pending` one for each new attendee; and [`DEFERRED_BY`] (see there).
pub fn apply_set(record: &mut Record, set: &Map<String, Value>) {
    for (key, value) in set {
        match (key.as_str(), value) {
            (ANSWERS, Value::Object(changes)) => {
                let answers = record
                    .entry(ANSWERS)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(current) = answers {
                    for (agent, answer) in changes {
                        current.insert(agent.clone(), answer.clone());
                    }
                }
            }
            ("attendees", Value::Array(list)) => {
                let old = match record.remove(ANSWERS) {
                    Some(Value::Object(old)) => old,
                    _ => Map::new(),
                };
                let answers: Map<String, Value> = list
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|a| {
                        let answer = old.get(a).cloned().unwrap_or_else(|| json!("pending"));
                        (a.to_string(), answer)
                    })
                    .collect();
                record.insert(ANSWERS.into(), Value::Object(answers));
                record.insert(key.clone(), value.clone());
            }
            (DEFERRED_BY, Value::Number(by)) => {
                let by = by.as_i64().unwrap_or(0);
                if let Some(total) = record.get("deferred").and_then(Value::as_i64) {
                    record.insert("deferred".into(), json!(total + by));
                }
                for member in ["at", "fire_time"] {
                    let moved = record
                        .get(member)
                        .and_then(Value::as_str)
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.with_timezone(&Utc) + chrono::Duration::milliseconds(by));
                    if let Some(moved) = moved {
                        record.insert(member.into(), time_value(Some(moved)));
                    }
                }
            }
            _ => {
                record.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Applies one entry about an event to its `record`: its `set`
/// ([`apply_set`]), then what the entry's action implies of the answers the
/// log already holds, so that an answer edited in the store before the
/// entry stays a difference after it:
///
/// - `missed`: every `pending` or deferred answer becomes `missed`;
/// - an entry with a `content` change (`updated`, `linked`) of an event the
///   log has unfinished: every `confirmed` answer becomes `pending`;
/// - an `updated` entry with `policy_reset` (a change of fire policy into or
///   out of `lazy`): each listed agent's `confirmed` or `declined` answer
///   becomes `pending` (after the content change's reset).
///
/// A whole `record` in the detail replaces the record first.
pub fn apply_event_entry(record: &mut Record, action: crate::audit::AuditAction, detail: &Value) {
    use crate::audit::AuditAction;
    if let Some(Value::Object(whole)) = detail.get("record") {
        *record = whole.clone();
    }
    if let Some(Value::Object(set)) = detail.get("set") {
        apply_set(record, set);
    }
    let turn = |record: &mut Record, from: &dyn Fn(&str) -> bool, to: &str| {
        if let Some(Value::Object(answers)) = record.get_mut(ANSWERS) {
            for answer in answers.values_mut() {
                if answer.as_str().is_some_and(from) {
                    *answer = json!(to);
                }
            }
        }
    };
    match action {
        AuditAction::Missed => turn(
            record,
            &|a| a == "pending" || a.starts_with("deferred"),
            "missed",
        ),
        AuditAction::Updated | AuditAction::Linked => {
            let open = record
                .get("state")
                .and_then(Value::as_str)
                .is_some_and(|s| s == "pending" || s == "blocked");
            if open && detail.get("content").is_some() {
                turn(record, &|a| a == "confirmed", "pending");
            }
            if let (true, Some(Value::Array(agents)), Some(Value::Object(answers))) =
                (open, detail.get("policy_reset"), record.get_mut(ANSWERS))
            {
                for agent in agents.iter().filter_map(Value::as_str) {
                    if let Some(answer) = answers.get_mut(agent) {
                        if matches!(answer.as_str(), Some("confirmed" | "declined")) {
                            *answer = json!("pending");
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// A record's canonical JSON (members sorted): two records are equal when
/// their texts are.
pub fn record_text(record: &Record) -> String {
    let mut out = String::with_capacity(1024);
    crate::trust::framing::write_canonical_map(&mut out, record);
    out
}

/// A record from its [`record_text`].
pub fn parse_record(text: &str) -> Record {
    serde_json::from_str(text).unwrap_or_default()
}

/// Whether an entry with `detail`, of `action`, changes a record it does
/// not replace (see [`apply_event_entry`]).
pub fn changes_record(action: crate::audit::AuditAction, detail: &Value) -> bool {
    use crate::audit::AuditAction;
    detail.get("set").is_some()
        || action == AuditAction::Missed
        || (matches!(action, AuditAction::Updated | AuditAction::Linked)
            && (detail.get("content").is_some() || detail.get("policy_reset").is_some()))
}

/// A member where a stored record and a logged one disagree.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// The member (`answers.bob` for one attendee's answer).
    pub field: String,
    /// The stored value (`null` when absent).
    pub stored: Value,
    /// The logged value (`null` when absent).
    pub logged: Value,
}

/// Every member where `stored` and `logged` disagree, in member order; the
/// answers are compared attendee by attendee. A member absent on one side
/// compares as `null`.
pub fn differences(stored: &Record, logged: &Record) -> Vec<Difference> {
    let mut keys: Vec<&String> = stored.keys().chain(logged.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        let s = stored.get(key).unwrap_or(&Value::Null);
        let l = logged.get(key).unwrap_or(&Value::Null);
        if s == l {
            continue;
        }
        if let (Value::Object(so), Value::Object(lo)) = (s, l) {
            out.extend(differences(so, lo).into_iter().map(|d| Difference {
                field: format!("{key}.{}", d.field),
                ..d
            }));
            continue;
        }
        out.push(Difference {
            field: key.clone(),
            stored: s.clone(),
            logged: l.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(v: Value) -> Record {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn a_deferral_moves_the_logged_times_and_a_miss_the_open_answers() {
        use crate::audit::AuditAction;
        let mut r = rec(json!({
            "deferred": 1000, "at": "2026-01-01T00:10:00.000Z", "fire_time": null,
            "answers": {"a": "pending", "b": "declined", "c": "confirmed"}
        }));
        apply_event_entry(
            &mut r,
            AuditAction::Deferred,
            &json!({"set": {"answers": {"a": "deferred:60s"}, "deferred_by": 60000}}),
        );
        assert_eq!(r["deferred"], json!(61000));
        assert_eq!(r["at"], json!("2026-01-01T00:11:00.000Z"));
        assert_eq!(r["fire_time"], Value::Null);
        apply_event_entry(
            &mut r,
            AuditAction::Missed,
            &json!({"set": {"state": "missed"}}),
        );
        assert_eq!(
            r[ANSWERS],
            json!({"a": "missed", "b": "declined", "c": "confirmed"})
        );
    }

    #[test]
    fn new_attendees_start_pending_and_a_content_change_resets_confirmations() {
        use crate::audit::AuditAction;
        let mut r = rec(json!({
            "state": "pending", "attendees": ["a", "b"],
            "answers": {"a": "confirmed", "b": "declined"}
        }));
        apply_event_entry(
            &mut r,
            AuditAction::Updated,
            &json!({"set": {"attendees": ["a", "c"]}, "content": {"reset": []}}),
        );
        assert_eq!(r[ANSWERS], json!({"a": "pending", "c": "pending"}));
    }

    #[test]
    fn a_set_replaces_members_and_merges_answers() {
        let mut r = rec(json!({"state": "pending", "answers": {"a": "pending", "b": "pending"}}));
        apply_set(
            &mut r,
            &rec(json!({"state": "fired", "answers": {"b": "confirmed"}})),
        );
        assert_eq!(
            Value::Object(r),
            json!({"state": "fired", "answers": {"a": "pending", "b": "confirmed"}})
        );
    }

    #[test]
    fn differences_name_the_member_and_each_answer() {
        let stored = rec(json!({"quorum": 1, "answers": {"a": "pending"}, "x": 1}));
        let logged = rec(json!({"quorum": 2, "answers": {"a": "declined"}, "x": 1}));
        let d = differences(&stored, &logged);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].field, "answers.a");
        assert_eq!(d[0].stored, json!("pending"));
        assert_eq!(d[0].logged, json!("declined"));
        assert_eq!(d[1].field, "quorum");
    }

    #[test]
    fn the_digest_is_of_the_canonical_json() {
        assert_eq!(
            json_digest(&json!({"b": 1, "a": 2})),
            json_digest(&json!({"a": 2, "b": 1}))
        );
        assert!(json_digest(&json!(null)).starts_with("sha256:"));
        assert_eq!(notify_digest::<u8>(&[]), Value::Null);
    }
}
