//! Settling: bringing events to their state at `now`, cascading through the
//! dependency graph, inside the caller's transaction.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::agent::AgentId;
use crate::audit::AuditAction;
use crate::error::Result;
use crate::event::{short_id, TMinusEvent};
use crate::lifecycle::{decide, needs_outcome, NeedsOutcome};
use crate::state::{EventState, ResponseStatus};
use crate::store::{NeedState, NewAuditEntry, SignedAnswer, Tx};
use crate::time_spec::format_time;
use crate::trust::record::set_of;

/// The record members an entry that ends an event sets (a miss also turns
/// the open answers to `missed`: see
/// [`crate::trust::record::apply_event_entry`]).
const FINISH: &[&str] = &["state", "finished_at"];

/// The record members an entry that opens or blocks an event sets.
const START: &[&str] = &["state", "started_at", "at", "fire_time"];

/// The record members an entry that ends `event` sets: [`FINISH`], and the
/// time its row is due next when that depends on more than its fire time
/// (windows, escalation steps: a pending event's due time may be sooner).
pub(crate) fn finish_set(event: &TMinusEvent) -> serde_json::Value {
    if due_varies(event) {
        set_of(event, &["state", "finished_at", "fire_time"])
    } else {
        set_of(event, FINISH)
    }
}

/// Whether `event`'s row's due time ([`TMinusEvent::stored_due`]) may be
/// other than its fire time: it has time windows or escalation steps.
pub(crate) fn due_varies(event: &TMinusEvent) -> bool {
    !event.gates.windows.is_empty() || !event.escalation.is_empty()
}

/// Appends an audit entry for `event`.
pub(crate) fn audit(
    tx: &mut dyn Tx,
    event: Uuid,
    at: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
    agent: Option<&AgentId>,
    action: AuditAction,
    detail: serde_json::Value,
) -> Result<()> {
    append(
        tx,
        NewAuditEntry {
            event,
            at,
            recorded_at,
            agent: agent.cloned(),
            on_behalf_of: None,
            action,
            detail,
            signed: None,
        },
    )
}

/// The entry for what `agent` did to `subject` (an event, token or
/// delegation) at `now`, with the signed answer behind it, if any.
pub(crate) fn acted(
    subject: Uuid,
    now: DateTime<Utc>,
    agent: &AgentId,
    action: AuditAction,
    detail: serde_json::Value,
    signed: Option<SignedAnswer>,
) -> NewAuditEntry {
    NewAuditEntry {
        event: subject,
        at: now,
        recorded_at: now,
        agent: Some(agent.clone()),
        on_behalf_of: None,
        action,
        detail,
        signed,
    }
}

/// Appends `entry` to the log, with the deliveries it sets off.
pub(crate) fn append(tx: &mut dyn Tx, entry: NewAuditEntry) -> Result<()> {
    tx.append_audit(&entry)?;
    // Deliveries it sets off are queued in the same transaction.
    super::queue::on_audit(tx, &entry)
}

/// Settles `seeds` and everything their transitions affect, at `now`.
///
/// Each event is brought to its state at `now`: a blocked event opens when
/// all its needs fired or is cancelled when one failed; an open event fires
/// or is missed per [`decide`]. Every transition is written with its logical
/// time and queued for reporting, and the dependents of an event that became
/// final are settled in turn, so a chain cascades within one call.
pub(crate) fn settle(
    tx: &mut dyn Tx,
    seeds: impl IntoIterator<Item = Uuid>,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut queue: VecDeque<Uuid> = seeds.into_iter().collect();
    while let Some(id) = queue.pop_front() {
        // A blocked event whose needs still run stays as it is: known
        // without loading it (the events an `apply` just created).
        if tx.known_state(id) == Some(EventState::Blocked)
            && needs_outcome(&tx.needs(id)?, now) == NeedsOutcome::Wait
        {
            continue;
        }
        let Some(mut event) = tx.event(id)? else {
            continue;
        };
        if settle_one(tx, &mut event, now)? {
            queue.extend(tx.dependents(id)?);
        }
    }
    Ok(())
}

/// Settles one event; returns whether it became final.
fn settle_one(tx: &mut dyn Tx, event: &mut TMinusEvent, now: DateTime<Utc>) -> Result<bool> {
    if event.state == EventState::Blocked {
        let mut needs = tx.needs(event.id)?;
        // A failed need cancels the event at the earliest failure; a need not
        // settled yet may have failed earlier (its cascade has not reached it
        // in this pass), so settle the unfinished needs first.
        let failed = |n: &NeedState| matches!(n.state, EventState::Missed | EventState::Cancelled);
        if needs.iter().any(failed) && needs.iter().any(|n| !n.state.is_final()) {
            for need in needs.iter().filter(|n| !n.state.is_final()) {
                settle_with_ancestors(tx, need.id, now)?;
            }
            match tx.event(event.id)? {
                Some(e) if e.state == EventState::Blocked => *event = e,
                // Settling the needs cascaded to this event already.
                Some(e) => {
                    let finished = e.state.is_final();
                    *event = e;
                    return Ok(finished);
                }
                None => return Ok(false),
            }
            needs = tx.needs(event.id)?;
        }
        match needs_outcome(&needs, now) {
            NeedsOutcome::Wait => return Ok(false),
            NeedsOutcome::Cancel { need, at, state } => {
                let need_name = tx
                    .event(need)?
                    .map_or_else(|| short_id(need), |n| n.display_name());
                let reason = format!("need {need_name} {state}");
                cancel(tx, event, at, now, None, &reason)?;
                return Ok(true);
            }
            NeedsOutcome::Open(at) => {
                event.state = EventState::Pending;
                event.start_at(at);
                tx.update_event(event)?;
                let mut detail = match event.fire_deadline() {
                    Some(fire) => json!({ "fire_time": format_time(fire) }),
                    None => json!({}),
                };
                detail["set"] = set_of(event, START);
                audit(tx, event.id, at, now, None, AuditAction::Opened, detail)?;
            }
        }
    }
    escalate(tx, event, now)?;
    let Some(decision) = decide(event, now) else {
        return Ok(false);
    };
    event.state = decision.state;
    event.finished_at = Some(decision.at);
    if decision.state == EventState::Missed {
        miss_attendees(tx, event, decision.at)?;
    }
    tx.update_event(event)?;
    let action = AuditAction::ending_in(decision.state).unwrap_or(AuditAction::Missed);
    let detail = json!({
        "reason": decision.reason,
        "confirmed": event.confirmed_count(),
        "quorum": event.quorum,
        "set": finish_set(event),
    });
    audit(tx, event.id, decision.at, now, None, action, detail)?;
    Ok(true)
}

/// Whether settling `event`, as its row reads back, at `now` would leave
/// it as it is: it is pending, no escalation step is due and [`decide`]
/// decides nothing ([`settle_one`] would write nothing).
pub(crate) fn settles_idle(event: &TMinusEvent, now: DateTime<Utc>) -> bool {
    event.state == EventState::Pending && !step_due(event, now) && decide(event, now).is_none()
}

/// Whether the first escalation step `event` has not applied yet is due at
/// `now`: due since it opened, and before its fire time.
fn step_due(event: &TMinusEvent, now: DateTime<Utc>) -> bool {
    let (Some(opened), Some(step)) = (event.started_at, event.escalation.remaining().first())
    else {
        return false;
    };
    let due = opened + step.after;
    due <= now && due < event.fire_time()
}

/// Applies the escalation steps of a pending event that are due at or
/// before `now` and before its fire time, in order (see
/// [`crate::escalation`]): each adds its agents as pending attendees (and
/// members of their groups) and is recorded as an `escalated` entry at the
/// step's due time, which sets off the rules on `escalated`.
fn escalate(tx: &mut dyn Tx, event: &mut TMinusEvent, now: DateTime<Utc>) -> Result<()> {
    if event.state != EventState::Pending {
        return Ok(());
    }
    let Some(opened) = event.started_at else {
        return Ok(());
    };
    while let Some(step) = event.escalation.remaining().first().cloned() {
        if !step_due(event, now) {
            break;
        }
        let due = opened + step.after;
        let mut added = Vec::new();
        for add in &step.add {
            for agent in &add.agents {
                if let Some(name) = &add.group {
                    if let Some(group) = event.groups.iter_mut().find(|g| &g.name == name) {
                        if !group.members.contains(agent) {
                            group.members.push(agent.clone());
                        }
                    }
                }
                if event.response_of(agent).is_none() {
                    event
                        .attendees
                        .push((agent.clone(), crate::state::ResponseStatus::Pending));
                }
                added.push(agent.as_str().to_string());
            }
        }
        event.escalation.applied += 1;
        event.escalation.applied_at = Some(due);
        // Written before the entry, so an `escalated` delivery shows the
        // event with the agents the step added.
        tx.update_event(event)?;
        let attendees: Vec<AgentId> = event.attendees.iter().map(|(a, _)| a.clone()).collect();
        tx.set_attendees(event.id, &attendees)?;
        let groups: serde_json::Map<String, serde_json::Value> = step
            .add
            .iter()
            .filter_map(|a| a.group.as_ref().map(|g| (g.clone(), json!(a.agents))))
            .collect();
        let mut detail = json!({
            "step": event.escalation.applied,
            "after": crate::duration::format_duration(step.after),
            "added": added,
        });
        if !groups.is_empty() {
            detail["groups"] = serde_json::Value::Object(groups);
        }
        detail["set"] = set_of(event, &["attendees", "groups", "escalation", "fire_time"]);
        audit(tx, event.id, due, now, None, AuditAction::Escalated, detail)?;
    }
    Ok(())
}

/// Cancels a non-final event at `at` and records why.
pub(crate) fn cancel(
    tx: &mut dyn Tx,
    event: &mut TMinusEvent,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    agent: Option<&AgentId>,
    reason: &str,
) -> Result<()> {
    event.state = EventState::Cancelled;
    event.finished_at = Some(at);
    tx.update_event(event)?;
    audit(
        tx,
        event.id,
        at,
        now,
        agent,
        AuditAction::Cancelled,
        json!({ "reason": reason, "set": finish_set(event) }),
    )
}

/// Cancels `event` at `now` on a signed cancel by `agent`: the entry keeps
/// the message and signature, and names the key and key set.
pub(crate) fn cancel_signed(
    tx: &mut dyn Tx,
    event: &mut TMinusEvent,
    now: DateTime<Utc>,
    agent: &AgentId,
    reason: &str,
    signed: super::signed::Signed,
) -> Result<()> {
    event.state = EventState::Cancelled;
    event.finished_at = Some(now);
    tx.update_event(event)?;
    let mut detail = json!({ "reason": reason, "set": finish_set(event) });
    super::signed::signed_detail(&mut detail, &signed);
    let answer = Some(signed.answer);
    let entry = acted(event.id, now, agent, AuditAction::Cancelled, detail, answer);
    append(tx, entry)
}

/// Sends a pending event back to `blocked` (it gained a need that has not
/// fired): its countdown stops until its needs fire. `waiting_for` names
/// the needs in the audit entry.
pub(crate) fn block(
    tx: &mut dyn Tx,
    event: &mut TMinusEvent,
    now: DateTime<Utc>,
    waiting_for: serde_json::Value,
) -> Result<()> {
    event.state = EventState::Blocked;
    event.started_at = None;
    tx.update_event(event)?;
    audit(
        tx,
        event.id,
        now,
        now,
        None,
        AuditAction::Blocked,
        json!({ "waiting_for": waiting_for, "set": set_of(event, START) }),
    )
}

/// Marks a non-final event missed at `now` by an operator's decision: its
/// pending and deferred attendees become `Missed`, and the transition is
/// recorded (and queued for reporting) with the reason `marked missed`.
/// The caller settles the dependents.
pub(crate) fn mark_missed(
    tx: &mut dyn Tx,
    event: &mut TMinusEvent,
    now: DateTime<Utc>,
) -> Result<()> {
    event.state = EventState::Missed;
    event.finished_at = Some(now);
    miss_attendees(tx, event, now)?;
    tx.update_event(event)?;
    let detail = json!({
        "reason": MARKED_MISSED,
        "confirmed": event.confirmed_count(),
        "quorum": event.quorum,
        "set": finish_set(event),
    });
    audit(tx, event.id, now, now, None, AuditAction::Missed, detail)
}

/// Records `Missed` for the attendees of a missed event that had not
/// answered for good (pending or deferred), at `at`.
fn miss_attendees(tx: &mut dyn Tx, event: &mut TMinusEvent, at: DateTime<Utc>) -> Result<()> {
    for (agent, status) in event.attendees.iter_mut() {
        if status.may_still_confirm() {
            *status = ResponseStatus::Missed;
            tx.set_response(event.id, agent, ResponseStatus::Missed, at)?;
        }
    }
    Ok(())
}

/// The reason recorded when an operator marks an event missed.
pub(crate) const MARKED_MISSED: &str = "marked missed";

/// Settles every event of a campaign at `now` in one pass, needs before
/// their dependents. Every need of a member is a member, so each event is
/// settled once: O(events + edges), where settling each event with its
/// ancestors would be quadratic on a long chain.
pub(crate) fn settle_campaign(tx: &mut dyn Tx, campaign: Uuid, now: DateTime<Utc>) -> Result<()> {
    let ids: Vec<Uuid> = tx
        .campaign_events(campaign)?
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    let edges = tx.campaign_edges(campaign)?;
    let order = match crate::graph::levels(&ids, &edges) {
        Ok(levels) => levels.into_iter().flatten().collect(),
        Err(_) => ids,
    };
    settle(tx, order, now)
}

/// Settles what fell due in an event's campaign, then the event itself, so
/// that a response or a cancellation sees the event as it is at `now` even
/// when no tick has run lately.
///
/// Every write settles what it changes and cascades, so the store is settled
/// as of its last write except for pending events that have fallen due
/// since. Whatever could have happened to the event's ancestors since then
/// starts at such an event of its campaign (edges never cross campaigns):
/// settling those, soonest first with their cascades — what a tick would
/// do, restricted to the campaign — settles the ancestors. That is
/// O(log n) per due event through the `(campaign_id, fire_ms)` index, where
/// walking the ancestors was O(depth).
pub(crate) fn settle_with_ancestors(tx: &mut dyn Tx, id: Uuid, now: DateTime<Utc>) -> Result<()> {
    settled_with_ancestors(tx, id, now).map(drop)
}

/// [`settle_with_ancestors`], returning the event as settled (`None` when
/// there is no such event).
pub(crate) fn settled_with_ancestors(
    tx: &mut dyn Tx,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<TMinusEvent>> {
    let due = tx.campaign_due_events(id, now)?;
    settle(tx, due, now)?;
    settled(tx, id, now)
}

/// Settles one event and what its transition affects, like [`settle`] with
/// one seed, and returns the event as settled: one load instead of a second
/// one afterwards (each is a round trip on a server store).
pub(crate) fn settled(
    tx: &mut dyn Tx,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<TMinusEvent>> {
    let Some(mut event) = tx.event(id)? else {
        return Ok(None);
    };
    if settle_one(tx, &mut event, now)? {
        let dependents = tx.dependents(id)?;
        settle(tx, dependents, now)?;
    }
    Ok(Some(event))
}
