//! `/events/{event}` (any reference `/v1/events/{event}` takes) and
//! `/events/{campaign}/{name}`: one event — kind, description, payload,
//! content digest, what changed since an earlier version, needs,
//! attendees with their answers and signatures, and the log — with the
//! answer buttons for a signed-in attendee while it is not final.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use super::layout::{frame, Live};
use super::parts;
use super::session::WebSession;
use crate::engine::EventViews;
use crate::output::{AnswerStatus, Event, LogEntry};
use crate::serve::error::{ApiError, ServeError};
use crate::serve::Shared;
use crate::{AuditAction, Engine, TMinusError};

/// The event page's parameters.
#[derive(Debug, Default, Deserialize)]
pub struct EventQuery {
    /// Show what changed after the log entry of this `seq` (a version:
    /// the `scheduled` entry or an `updated` one).
    pub since: Option<i64>,
}

/// What the event page shows.
struct EventPage {
    now: DateTime<Utc>,
    event: Event,
    needs: Vec<String>,
    log: Vec<LogEntry>,
    /// Whether its answers must be signed by pinned keys.
    signed: bool,
    since: Option<i64>,
}

/// `GET /events/{event}`.
pub(super) async fn show(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    Path(event): Path<String>,
    query: Result<Query<EventQuery>, QueryRejection>,
) -> Response {
    page(shared, headers, uri, event, query).await
}

/// `GET /events/{campaign}/{name}`.
pub(super) async fn show_in_campaign(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    Path((campaign, name)): Path<(String, String)>,
    query: Result<Query<EventQuery>, QueryRejection>,
) -> Response {
    page(shared, headers, uri, format!("{campaign}/{name}"), query).await
}

async fn page(
    shared: Arc<Shared>,
    headers: HeaderMap,
    uri: Uri,
    reference: String,
    query: Result<Query<EventQuery>, QueryRejection>,
) -> Response {
    let since = match query {
        Ok(Query(q)) => q.since,
        Err(e) => {
            let error = ServeError::Query {
                name: "since".into(),
                reason: e.body_text(),
            };
            return super::error_page(None, &ApiError::from(error));
        }
    };
    let seen = super::seen(&shared, &headers, move |engine, _| {
        read(engine, &reference, since).map_err(ApiError::from)
    })
    .await;
    super::respond(&uri, seen, render)
}

fn read(engine: &mut Engine, reference: &str, since: Option<i64>) -> crate::Result<EventPage> {
    let id = engine.resolve_event(reference)?;
    let e = engine
        .get_event(id)?
        .ok_or_else(|| TMinusError::EventNotFound {
            reference: reference.to_string(),
        })?;
    let event = Event::read(engine, &mut EventViews::default(), &e)?;
    let needs = engine.need_names(id)?;
    let log = engine.log_links(id)?.iter().map(LogEntry::from).collect();
    let signed = engine.signers_of(id)?.is_some();
    Ok(EventPage {
        now: engine.now(),
        event,
        needs,
        log,
        signed,
        since,
    })
}

fn render(session: Option<&WebSession>, p: EventPage) -> Markup {
    let e = &p.event;
    let label = parts::label(e);
    let live = Live {
        now: Some(p.now),
        stream: Some(format!("/v1/stream?event={}", e.id)),
    };
    let attends = session.is_some_and(|s| e.attendees.iter().any(|a| a.agent == s.agent.as_str()));
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" {
            a href="/" { "Dashboard" }
            @if let Some(c) = &e.campaign {
                " › " a href=(parts::campaign_href(c)) { (c) }
            }
        }
        h1 { (label) " " span.kind { (e.kind) } }
        div #live-summary data-live {
            div.headline.big {
                (parts::countdown(e, p.now)) " " (parts::state_badge(e.state))
            }
            div.progress { (parts::quorum(e)) }
        }
        @if let Some(text) = &e.description {
            p.description { (text) }
        }
        (facts(&p))
        @if attends && !e.state.is_final() {
            (answer_forms(e))
        } @else if session.is_none() && !e.state.is_final() {
            p.hint { "Attendees " a href="/signin" { "sign in" } " to answer." }
        }
        div #live-attendees data-live { (attendees(&p)) }
        section aria-labelledby="payload-heading" {
            h2 #payload-heading { "Payload" }
            pre.payload tabindex="0" aria-label="Payload (JSON)" {
                code { (serde_json::to_string_pretty(&e.payload).unwrap_or_default()) }
            }
            p { "Content digest " code.digest { (e.content_digest) } }
        }
        div #live-changes data-live { (changes(&p)) }
        div #live-log data-live { (log(&p)) }
    };
    frame(&label, session, &live, body)
}

/// The facts: id, times, quorum rule, policy, organizer, needs, gates.
fn facts(p: &EventPage) -> Markup {
    let e = &p.event;
    html! {
        section aria-labelledby="facts-heading" {
            h2 #facts-heading { "Details" }
            dl.facts {
                dt { "Id" } dd { code { (e.id) } }
                dt { "Organizer" } dd { (e.organizer) }
                dt { "Scheduled at" } dd {
                    @if let Some(at) = e.scheduled_at { (parts::time(at)) } @else { "when its needs fire" }
                }
                dt { "Confirmations due" } dd {
                    @if let Some(at) = e.fire_time { (parts::time(at)) } @else { "not yet known" }
                    " (T-minus " (crate::duration::format_duration(chrono::Duration::milliseconds(e.t_minus_ms))) ")"
                }
                dt { "Quorum" } dd { (e.quorum_spec) " (" (e.quorum) " needed)" }
                dt { "Fires" } dd { (e.fire_policy.to_string()) }
                @if let Some(ms) = e.max_defer_ms {
                    dt { "Deferral cap" } dd {
                        (crate::duration::format_duration(chrono::Duration::milliseconds(ms)))
                        " (used " (crate::duration::format_duration(chrono::Duration::milliseconds(e.deferred_ms))) ")"
                    }
                }
                dt { "Needs" } dd {
                    @if p.needs.is_empty() { "nothing" } @else {
                        @for (i, need) in p.needs.iter().enumerate() {
                            @if i > 0 { ", " }
                            @if let Some(c) = &e.campaign {
                                a href={ "/events/" (parts::encode_component(c)) "/" (parts::encode_component(need)) } { (need) }
                            } @else { (need) }
                        }
                    }
                }
                dt { "Signatures" } dd {
                    @if p.signed { "answers must be signed by the keys the manifest pins" }
                    @else { "no keys pinned" }
                }
                @if e.four_eyes {
                    dt { "Four eyes" } dd { "the organizer may not answer" }
                }
                @if !e.windows.is_empty() {
                    dt { "Fires only in" } dd { (e.windows.join("; ")) }
                }
                @if let Some(at) = e.finished_at {
                    dt { "Finished" } dd { (parts::time(at)) }
                }
            }
        }
    }
}

/// Confirm, Defer (with a duration) and Decline (with a reason): each
/// signs the answer with the person's passkey (`/assets/passkey.js`), so
/// they need JavaScript; the script enables them.
fn answer_forms(e: &Event) -> Markup {
    html! {
        section.answer aria-labelledby="answer-heading" data-event=(e.id) {
            h2 #answer-heading { "Your answer" }
            noscript { p { "Answering signs with your passkey, which needs JavaScript." } }
            fieldset.answers disabled data-needs-script {
                legend.visually-hidden { "Answer this event" }
                form data-answer="confirm" {
                    button.primary type="submit" { "Confirm" }
                }
                form data-answer="defer" {
                    label for="defer-duration" { "Defer by" }
                    input #defer-duration name="duration" type="text" required
                        value="30m" autocomplete="off" aria-describedby="defer-help";
                    button type="submit" { "Defer" }
                    small #defer-help { "A duration such as 30m or 1h 30m." }
                }
                form data-answer="decline" {
                    label for="decline-reason" { "Reason" }
                    input #decline-reason name="reason" type="text" autocomplete="off";
                    button.danger type="submit" { "Decline" }
                }
            }
            p #answer-status role="status" aria-live="polite" {}
        }
    }
}

/// Whether `entry` is an answer of `agent` (its own or given for it).
fn answers_for(entry: &LogEntry, agent: &str) -> bool {
    let e = &entry.entry;
    matches!(
        e.action,
        AuditAction::Confirmed | AuditAction::Deferred | AuditAction::Declined
    ) && match &e.on_behalf_of {
        Some(principal) => principal == agent,
        None => e.agent.as_deref() == Some(agent),
    }
}

/// What signed an answer entry, if anything: the key or credential its
/// detail names.
fn signature_of(entry: &LogEntry) -> Option<String> {
    let detail = &entry.entry.detail;
    let named = ["key", "credential", "credential_id"]
        .iter()
        .find_map(|k| detail.get(*k).and_then(Value::as_str));
    match (named, &entry.signature) {
        (Some(k), _) => Some(k.to_string()),
        (None, Some(_)) => Some("signed".to_string()),
        (None, None) => None,
    }
}

/// Every attendee, its answer, when and by whom it was given, and its
/// signature.
fn attendees(p: &EventPage) -> Markup {
    let e = &p.event;
    html! {
        section aria-labelledby="attendees-heading" {
            h2 #attendees-heading { "Attendees" }
            @if e.attendees.is_empty() {
                p.empty { "No attendees." }
            } @else {
                ul.attendees {
                    @for a in &e.attendees {
                        @let answered = !matches!(a.status, AnswerStatus::Pending | AnswerStatus::Missed);
                        @let latest = answered.then(|| p.log.iter().rev().find(|l| answers_for(l, &a.agent))).flatten();
                        li.card {
                            span.agent { (a.agent) } " " (parts::answer_badge(a.status, a.deferred_ms))
                            @if let Some(groups) = &a.groups {
                                " " span.groups { "(" (groups.join(", ")) ")" }
                            }
                            @if let Some(l) = latest {
                                div.answered {
                                    (parts::time(l.entry.at))
                                    @if l.entry.on_behalf_of.is_some() {
                                        @if let Some(by) = &l.entry.agent { " by " (by) " (delegate)" }
                                    }
                                    @if let Some(reason) = l.entry.detail.get("reason").and_then(Value::as_str) {
                                        " · reason: " q { (reason) }
                                    }
                                    @match signature_of(l) {
                                        Some(key) => {
                                            " · " span.signed {
                                                @if key.starts_with("webauthn:") { "signed with a passkey" } @else { "signed" }
                                            }
                                            " " code.key { (key) }
                                        }
                                        None => { " · " span.unsigned { "not signed" } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A version of the event: the entry that made it, and its number.
struct Version<'a> {
    number: usize,
    entry: &'a LogEntry,
}

/// What changed since a version, from the log: the `scheduled` entry is
/// version 1, every `updated` entry with changes the next.
fn changes(p: &EventPage) -> Markup {
    let mut versions: Vec<Version<'_>> = Vec::new();
    for l in &p.log {
        let is_version = match l.entry.action {
            AuditAction::Scheduled | AuditAction::Baseline => versions.is_empty(),
            AuditAction::Updated => {
                l.entry
                    .detail
                    .get("changes")
                    .and_then(Value::as_array)
                    .is_some_and(|c| !c.is_empty())
                    || l.entry.detail.get("content").is_some()
            }
            _ => false,
        };
        if is_version {
            versions.push(Version {
                number: versions.len() + 1,
                entry: l,
            });
        }
    }
    let since = p
        .since
        .or_else(|| versions.first().map(|v| v.entry.entry.seq));
    // Each field once: its value before the first change after `since`,
    // and after the last.
    let mut fields: Vec<(String, Value, Value)> = Vec::new();
    let mut digests: Option<(Value, Value)> = None;
    for v in versions
        .iter()
        .filter(|v| since.is_some_and(|s| v.entry.entry.seq > s))
    {
        let detail = &v.entry.entry.detail;
        for c in detail
            .get("changes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let field = c.get("field").and_then(Value::as_str).unwrap_or("?");
            let (old, new) = (
                c.get("old").cloned().unwrap_or(Value::Null),
                c.get("new").cloned().unwrap_or(Value::Null),
            );
            match fields.iter_mut().find(|(f, _, _)| f == field) {
                Some(seen) => seen.2 = new,
                None => fields.push((field.to_string(), old, new)),
            }
        }
        if let Some(content) = detail.get("content") {
            let old = content.get("old_digest").cloned().unwrap_or(Value::Null);
            let new = content.get("new_digest").cloned().unwrap_or(Value::Null);
            digests = Some(match digests {
                Some((first, _)) => (first, new),
                None => (old, new),
            });
        }
    }
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".to_string(),
        other => other.to_string(),
    };
    html! {
        section aria-labelledby="changes-heading" {
            h2 #changes-heading { "Changes" }
            @if versions.len() <= 1 {
                p.empty { "Unchanged since it was created (version 1)." }
            } @else {
                form.filter method="get" {
                    label for="since" { "Changes since" }
                    select #since name="since" {
                        @for v in &versions {
                            option value=(v.entry.entry.seq) selected[Some(v.entry.entry.seq) == since] {
                                "version " (v.number) " (" (crate::time_spec::format_time(v.entry.entry.at)) ")"
                            }
                        }
                    }
                    button type="submit" { "Compare" }
                }
                @if fields.is_empty() && digests.is_none() {
                    p.empty { "Nothing changed since that version." }
                } @else {
                    ul.changes {
                        @for (field, old, new) in &fields {
                            li {
                                strong { (field) } ": "
                                del { (text(old)) } " → " ins { (text(new)) }
                            }
                        }
                        @if let Some((old, new)) = &digests {
                            li {
                                strong { "content digest" } ": "
                                del { code.digest { (text(old)) } } " → " ins { code.digest { (text(new)) } }
                                " (confirmations given before were reset)"
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The event's log, oldest first: when, what, who, its details, its
/// signature and its link in the chain.
fn log(p: &EventPage) -> Markup {
    html! {
        section aria-labelledby="log-heading" {
            h2 #log-heading { "Log" }
            ol.log {
                @for l in &p.log {
                    @let e = &l.entry;
                    li {
                        (parts::time(e.at)) " "
                        strong.action { (e.action.as_str()) }
                        @if let Some(agent) = &e.agent { " by " span.agent { (agent) } }
                        @if let Some(principal) = &e.on_behalf_of { " for " span.agent { (principal) } }
                        @let details = detail_text(&e.detail);
                        @if !details.is_empty() {
                            div.detail { (details) }
                        }
                        @if let (Some(message), Some(signature)) = (&l.message, &l.signature) {
                            details {
                                summary { "Signed answer message and signature" }
                                pre tabindex="0" aria-label="Answer message" { code { (message) } }
                                pre tabindex="0" aria-label="Signature" { code { (signature) } }
                            }
                        }
                        @if let Some(hash) = &l.hash {
                            div.hash { "entry " code { (hash) } }
                        }
                    }
                }
            }
        }
    }
}

/// An entry's detail as `key=value` pairs, as `t-minus log` prints it
/// (without what it records for `verify`).
fn detail_text(detail: &Value) -> String {
    let Some(map) = detail.as_object() else {
        return String::new();
    };
    map.iter()
        .filter(|(k, v)| *k != "record" && *k != "set" && !v.is_null())
        .map(|(k, v)| match (k.as_str(), v) {
            // An update's fields are shown whole under Changes.
            ("changes", Value::Array(changes)) => {
                let fields: Vec<&str> = changes
                    .iter()
                    .filter_map(|c| c.get("field").and_then(Value::as_str))
                    .collect();
                format!("changed={}", fields.join(","))
            }
            ("content", Value::Object(content)) => {
                let digest = |key: &str| {
                    content
                        .get(key)
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_string()
                };
                format!(
                    "content={} → {}",
                    digest("old_digest"),
                    digest("new_digest")
                )
            }
            (_, Value::String(s)) => format!("{k}={s}"),
            (_, other) => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}
