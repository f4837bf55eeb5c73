//! The delivery queue: deliveries are written in the transaction that
//! records what they announce, so a crash cannot lose one.
//!
//! `on_audit` runs for every log entry the engine writes: when the event
//! has rules for the entry's trigger it queues one delivery per rule, with
//! the payload as of that moment; it also keeps the event's reminder times
//! in step with its fire time. `remind` runs in every tick and queues the
//! reminders whose time has come.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::audit::AuditAction;
use crate::error::Result;
use crate::event::TMinusEvent;
use crate::state::EventState;
use crate::store::{NewAuditEntry, Tx};

use super::Engine;
use crate::notification::payload::{self, Cause};
use crate::notification::{wall_now, Delivery, DeliveryState, NotifyRule, Reminder, Trigger};

/// Queues the deliveries that the log entry `entry` sets off, and keeps the
/// event's reminders in step with its fire time. Costs one indexed look-up
/// for an event without rules.
pub(crate) fn on_audit(tx: &mut dyn Tx, entry: &NewAuditEntry) -> Result<()> {
    let trigger = Trigger::of_action(entry.action);
    let moves_fire_time = matches!(
        entry.action,
        AuditAction::Scheduled
            | AuditAction::Updated
            | AuditAction::Linked
            | AuditAction::Blocked
            | AuditAction::Opened
            | AuditAction::Deferred
            | AuditAction::Fired
            | AuditAction::Missed
            | AuditAction::Cancelled
    );
    if trigger.is_none() && !moves_fire_time {
        return Ok(());
    }
    let rules = tx.notify_rules(entry.event)?;
    if rules.is_empty() {
        return Ok(());
    }
    let Some(event) = tx.event(entry.event)? else {
        return Ok(());
    };
    if moves_fire_time {
        sync_reminders(tx, &event, &rules)?;
    }
    // A break-glass sets off the rules on `breakglass`, and those on
    // `fired` that do not also listen to `breakglass` (one delivery a rule).
    let broke_glass =
        entry.action == AuditAction::Fired && entry.detail.get("breakglass").is_some();
    let mut rest = rules.clone();
    let mut triggers = Vec::new();
    if broke_glass {
        triggers.push((Trigger::Breakglass, rules.clone()));
        rest.retain(|r| !r.wants(Trigger::Breakglass));
    }
    triggers.extend(trigger.map(|t| (t, rest)));
    for (on, rules) in triggers {
        let cause = Cause {
            on,
            at: entry.at,
            agent: entry.agent.as_ref(),
            detail: &entry.detail,
            before_ms: None,
            test: false,
        };
        enqueue_matching(tx, &event, &rules, &cause)?;
    }
    Ok(())
}

/// Replaces an event's rules (an apply changed them), keeping its reminder
/// times in step.
pub(crate) fn set_rules(tx: &mut dyn Tx, id: Uuid, rules: &[NotifyRule]) -> Result<()> {
    tx.set_notify_rules(id, rules)?;
    if let Some(event) = tx.event(id)? {
        sync_reminders(tx, &event, rules)?;
    }
    Ok(())
}

/// Queues a delivery of every rule that wants `cause.on` (for a reminder,
/// the rules whose `before` lists `cause.before_ms`).
fn enqueue_matching(
    tx: &mut dyn Tx,
    event: &TMinusEvent,
    rules: &[NotifyRule],
    cause: &Cause<'_>,
) -> Result<()> {
    let matching: Vec<&NotifyRule> = rules
        .iter()
        .filter(|r| r.wants(cause.on))
        .filter(|r| cause.before_ms.is_none_or(|b| r.before_ms.contains(&b)))
        .collect();
    if matching.is_empty() {
        return Ok(());
    }
    let campaign = match event.campaign {
        Some(c) => tx.campaign(c)?.map(|c| c.name),
        None => None,
    };
    for rule in matching {
        enqueue(tx, event, campaign.as_deref(), rule, cause)?;
    }
    Ok(())
}

/// Queues one delivery of `rule` for `cause`; returns it.
pub(crate) fn enqueue(
    tx: &mut dyn Tx,
    event: &TMinusEvent,
    campaign: Option<&str>,
    rule: &NotifyRule,
    cause: &Cause<'_>,
) -> Result<Delivery> {
    let key = Uuid::new_v4();
    let now = wall_now();
    let delivery = Delivery {
        key,
        event: event.id,
        on: cause.on,
        rule: rule.clone(),
        payload: payload::build(key, cause, event, campaign).to_value(),
        state: DeliveryState::Pending,
        attempts: 0,
        next_at: now,
        created_at: now,
        finished_at: None,
        last_error: None,
    };
    tx.insert_delivery(&delivery)?;
    Ok(delivery)
}

/// Makes the event's stored reminder times those of its rules at its
/// current fire time: none unless it is pending with a known fire time. A
/// reminder already sent stays sent while its time is unchanged.
fn sync_reminders(tx: &mut dyn Tx, event: &TMinusEvent, rules: &[NotifyRule]) -> Result<()> {
    let mut befores: Vec<u64> = rules
        .iter()
        .filter(|r| r.wants(Trigger::Reminder))
        .flat_map(|r| r.before_ms.iter().copied())
        .collect();
    befores.sort_unstable();
    befores.dedup();
    let fire = event
        .fire_deadline()
        .filter(|_| event.state == EventState::Pending);
    let old = tx.reminders(event.id)?;
    let new: Vec<Reminder> = match fire {
        Some(fire) if !befores.is_empty() => befores
            .into_iter()
            .map(|before_ms| {
                let at = fire - Duration::milliseconds(before_ms.min(i64::MAX as u64) as i64);
                let sent = old
                    .iter()
                    .any(|r| r.before_ms == before_ms && r.at == at && r.sent);
                Reminder {
                    before_ms,
                    at,
                    sent,
                }
            })
            .collect(),
        _ => Vec::new(),
    };
    if new != old {
        tx.set_reminders(event.id, &new)?;
    }
    Ok(())
}

/// Queues the reminders due at `now`: for each, a delivery per rule that
/// lists its `before`, while the event is pending without quorum. At most
/// `limit` reminders per call.
pub(crate) fn remind(tx: &mut dyn Tx, now: DateTime<Utc>, limit: usize) -> Result<usize> {
    let due = tx.due_reminders(now, limit)?;
    let count = due.len();
    for (id, reminder) in due {
        tx.mark_reminder_sent(id, reminder.before_ms)?;
        let Some(event) = tx.event(id)? else {
            continue;
        };
        if event.state != EventState::Pending || event.has_quorum() {
            continue;
        }
        let rules = tx.notify_rules(id)?;
        let detail = json!({});
        let cause = Cause {
            on: Trigger::Reminder,
            at: reminder.at,
            agent: None,
            detail: &detail,
            before_ms: Some(reminder.before_ms),
            test: false,
        };
        enqueue_matching(tx, &event, &rules, &cause)?;
    }
    Ok(count)
}

impl Engine {
    /// An event's notification rules.
    pub fn notify_rules(&mut self, id: Uuid) -> Result<Vec<NotifyRule>> {
        self.read(|tx| tx.notify_rules(id))
    }

    /// Replaces an event's notification rules (checked first). When the
    /// rules that act as it fires or is missed change, so does its content
    /// digest: its confirmations go back to `pending`, as after a payload
    /// change, and an `updated` entry records the change
    /// (`detail.content`).
    pub fn set_notify_rules(&mut self, id: Uuid, rules: &[NotifyRule]) -> Result<()> {
        crate::notification::spec::check_rules(rules)?;
        let now = self.now();
        self.write(|tx| {
            let mut event = super::load(tx, id)?;
            let before = crate::trust::content_digest(&event);
            set_rules(tx, id, rules)?;
            event.rules_digest = crate::notification::spec::bound_rules_digest(rules);
            let digest = crate::trust::record::notify_digest(rules);
            let mut detail = json!({ "set": { "notify": digest } });
            if let Some(content) = super::content::reset_if_changed(tx, &mut event, before, now)? {
                detail["content"] = content;
            }
            super::settle::audit(tx, id, now, now, None, AuditAction::Updated, detail)
        })
    }

    /// An event's deliveries, oldest first.
    pub fn deliveries(&mut self, id: Uuid) -> Result<Vec<Delivery>> {
        self.read(|tx| tx.event_deliveries(id))
    }
}
