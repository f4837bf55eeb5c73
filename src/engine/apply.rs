//! Planning and applying manifests as engine operations: a plan is
//! computed by [`crate::plan`] inside a store transaction, and applied in
//! one write transaction, all or nothing, then settled.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use super::content::reset_if_changed;
use super::settle::{audit, block, settle, settle_campaign, settles_idle};
use super::{check_not_final, insert_new_event, load, Engine};
use crate::audit::AuditAction;
use crate::error::{Result, TMinusError};
use crate::event::TMinusEvent;
use crate::event_check::{self, fire_of};
use crate::manifest::{DesiredEvent, ValidManifests};
use crate::plan::{
    compute, fingerprint, Action, AppliedCampaign, ApplyReport, CampaignPlan, EventPlan,
    ManifestError, Plan, PlanOptions,
};
use crate::state::{EventState, ResponseStatus};
use crate::store::{CampaignRow, StoredSigners, Tx};
use crate::time_spec::TimeSpec;
use crate::trust::content_digest;
use crate::trust::record::{campaign_record, needs_value, notify_digest, set_of};
use crate::trust::signers::digest_of_text;

/// The record members a manifest sets on an existing event, as `event`
/// now has them (its rules and needs read from `tx`): what its `updated`
/// entry records. Its state, answers, start and deferrals are the log's.
fn updated_set(tx: &mut dyn Tx, event: &TMinusEvent) -> Result<serde_json::Value> {
    let mut set = set_of(
        event,
        &[
            "kind",
            "description",
            "at",
            "relative_at",
            "t_minus",
            "max_defer",
            "fire_time",
            "quorum",
            "quorum_spec",
            "groups",
            "fire_policy",
            "attendees",
            "payload",
            "organizer",
            "gates",
            "escalation",
        ],
    );
    set["notify"] = notify_digest(&tx.notify_rules(event.id)?);
    let needs: Vec<Uuid> = tx.needs(event.id)?.into_iter().map(|n| n.id).collect();
    set["needs"] = needs_value(&needs);
    Ok(set)
}

/// Appends the entry `action` about campaign `row`, with its whole record
/// (key set `signers`).
pub(crate) fn audit_campaign(
    tx: &mut dyn Tx,
    row: &CampaignRow,
    signers: Option<&str>,
    action: AuditAction,
    now: DateTime<Utc>,
) -> Result<()> {
    let record = campaign_record(
        &row.name,
        row.description.as_deref(),
        row.managed,
        row.anchor_at,
        signers,
    );
    let detail = json!({ "name": row.name, "record": record });
    audit(tx, row.id, now, now, None, action, detail)
}

impl Engine {
    /// Compares the desired state with the store and returns what
    /// [`Engine::apply_plan`] would do. Fails with every problem the store
    /// reveals (a change to a final event, a new event whose fire time has
    /// passed) as diagnostics pointing at the manifest.
    pub fn plan(
        &self,
        desired: &ValidManifests,
        options: &PlanOptions,
    ) -> std::result::Result<Plan, ManifestError> {
        let now = options.now.unwrap_or_else(|| self.now());
        let mut tx = self.store().read()?;
        compute(&mut *tx, desired, options, now)
    }

    /// Applies a plan computed by [`Engine::plan`] (possibly saved and read
    /// back), in one transaction. Refused with [`ManifestError::StalePlan`],
    /// changing nothing, when the store changed since the plan was computed.
    pub fn apply_plan(&mut self, plan: &Plan) -> std::result::Result<ApplyReport, ManifestError> {
        retried(|| self.try_apply_plan(plan))
    }

    /// One attempt of [`Engine::apply_plan`].
    fn try_apply_plan(&mut self, plan: &Plan) -> std::result::Result<ApplyReport, ManifestError> {
        let now = self.now();
        let mut tx = self.store_mut().write()?;
        tx.lock_store()?;
        let declared: Vec<String> = plan
            .fingerprint
            .campaigns
            .iter()
            .filter(|c| c.declared)
            .map(|c| c.name.clone())
            .collect();
        let current = fingerprint(&mut *tx, &declared, plan.prune)?;
        if current != plan.fingerprint {
            return Err(ManifestError::StalePlan {
                changes: current.changes_since(&plan.fingerprint),
            });
        }
        let report = apply_in(&mut *tx, plan, now)?;
        tx.commit()?;
        Ok(report)
    }

    /// Plans and applies in one transaction (`apply PATH…`): returns the plan
    /// that was applied and what it did. Applying an unchanged manifest is a
    /// no-op.
    pub fn apply_manifests(
        &mut self,
        desired: &ValidManifests,
        options: &PlanOptions,
    ) -> std::result::Result<(Plan, ApplyReport), ManifestError> {
        retried(|| self.try_apply_manifests(desired, options))
    }

    /// One attempt of [`Engine::apply_manifests`].
    fn try_apply_manifests(
        &mut self,
        desired: &ValidManifests,
        options: &PlanOptions,
    ) -> std::result::Result<(Plan, ApplyReport), ManifestError> {
        let now = options.now.unwrap_or_else(|| self.now());
        let mut tx = self.store_mut().write()?;
        tx.lock_store()?;
        let plan = compute(&mut *tx, desired, options, now)?;
        let report = apply_in(&mut *tx, &plan, now)?;
        tx.commit()?;
        Ok((plan, report))
    }
}

/// Runs `attempt` again when the server aborted it to break a deadlock
/// with another writer, up to [`super::MAX_ATTEMPTS`] times.
fn retried<T>(
    mut attempt: impl FnMut() -> std::result::Result<T, ManifestError>,
) -> std::result::Result<T, ManifestError> {
    let mut tries = 1;
    loop {
        match attempt() {
            Err(ManifestError::Store(e))
                if tries < super::MAX_ATTEMPTS && crate::store::is_conflict(&e) =>
            {
                tries += 1
            }
            done => return done,
        }
    }
}

/// Writes the plan inside `tx`, then settles what it touched.
pub(super) fn apply_in(
    tx: &mut dyn Tx,
    plan: &Plan,
    now: DateTime<Utc>,
) -> std::result::Result<ApplyReport, ManifestError> {
    let mut report = ApplyReport {
        counts: plan.counts,
        campaigns: Vec::new(),
    };
    let mut touched: Vec<Uuid> = Vec::new();
    for c in &plan.campaigns {
        if c.action == Action::Delete {
            if let Some(id) = c.id {
                let detail = json!({ "name": c.name });
                audit(tx, id, now, now, None, AuditAction::CampaignRemoved, detail)?;
                tx.delete_campaign(id)?;
            }
            continue;
        }
        report
            .campaigns
            .push(apply_campaign(tx, c, now, &mut touched)?);
    }
    settle(tx, touched, now)?;
    Ok(report)
}

fn apply_campaign(
    tx: &mut dyn Tx,
    c: &CampaignPlan,
    now: DateTime<Utc>,
    touched: &mut Vec<Uuid>,
) -> Result<AppliedCampaign> {
    let row = match c.id {
        None => {
            let row = CampaignRow {
                id: Uuid::new_v4(),
                name: c.name.clone(),
                description: c.description.clone(),
                created_at: now,
                managed: true,
                anchor_at: Some(now),
                revision: 0,
            };
            tx.insert_campaign(&row)?;
            audit_campaign(tx, &row, None, AuditAction::CampaignCreated, now)?;
            row
        }
        Some(id) => {
            let mut row = tx
                .campaign(id)?
                .ok_or_else(|| TMinusError::CampaignNotFound {
                    reference: c.name.clone(),
                })?;
            let before = row.clone();
            row.description = c.description.clone();
            row.managed = true;
            row.anchor_at.get_or_insert(now);
            if row != before {
                tx.update_campaign(&row)?;
                let signers = tx.scope_signers(id)?.map(|s| s.digest);
                let action = AuditAction::CampaignUpdated;
                audit_campaign(tx, &row, signers.as_deref(), action, now)?;
            }
            row
        }
    };
    let signers = put_signers(tx, row.id, c, now)?;
    let anchor = row.anchor_at.unwrap_or(now);
    let mut ids: HashMap<String, Uuid> = match c.id {
        None => HashMap::new(),
        Some(_) => tx
            .campaign_events(row.id)?
            .into_iter()
            .map(|(id, name, _)| (name, id))
            .collect(),
    };
    // Bring the stored campaign to `now` once, so that the updates below see
    // each event as it is (a final one cannot change).
    if c.id.is_some() {
        settle_campaign(tx, row.id, now)?;
    }
    // Removals first, remembering who needed the removed events.
    for e in c.events.iter().filter(|e| e.action == Action::Delete) {
        if let Some(id) = e.id {
            let event = load(tx, id)?;
            if event.state.is_final() {
                continue;
            }
            touched.extend(tx.dependents(id)?);
            let detail = json!({ "name": e.key });
            audit(tx, id, now, now, None, AuditAction::Removed, detail)?;
            tx.delete_event(id)?;
            ids.remove(&e.key);
        }
    }
    let mut created = Vec::new();
    let mut fresh = fresh_ids(
        c.events
            .iter()
            .filter(|e| e.action == Action::Create)
            .count(),
    );
    for e in c.events.iter().filter(|e| e.action == Action::Create) {
        let Some(d) = &e.desired else { continue };
        let id = fresh.next().unwrap_or_else(Uuid::new_v4);
        let event = new_event(id, row.id, d, anchor, now)?;
        insert_new_event(tx, &event, &d.notify, signers.as_deref(), now)?;
        ids.insert(d.key.clone(), event.id);
        created.push((d.key.clone(), event.id));
        // A pending event that settling would leave as it is (nothing due)
        // is not handed to settling; a blocked one settles by its needs.
        let idle = event.state == EventState::Pending
            && crate::store::as_stored(&event).is_some_and(|e| settles_idle(&e, now));
        if !idle {
            touched.push(event.id);
        }
    }
    for e in c.events.iter().filter(|e| e.action == Action::Update) {
        if let (Some(id), Some(d)) = (e.id, &e.desired) {
            update_event(tx, row.id, id, d, e, &ids, now)?;
            touched.push(id);
        }
    }
    for e in c.events.iter().filter(|e| e.action == Action::Create) {
        let Some(d) = &e.desired else { continue };
        let to = ids[&d.key];
        let mut needs = Vec::with_capacity(d.needs.len());
        for need in &d.needs {
            let from = need_id(&ids, need, &c.name)?;
            tx.insert_edge(row.id, from, to)?;
            needs.push(from);
        }
        if !needs.is_empty() {
            let detail = json!({ "needs": d.needs, "set": { "needs": needs_value(&needs) } });
            audit(tx, to, now, now, None, AuditAction::Linked, detail)?;
        }
    }
    Ok(AppliedCampaign {
        name: row.name,
        id: row.id,
        created,
    })
}

/// Puts the plan's key set in force for campaign `id` when it differs from
/// the stored one, recording the change (old and new digests) in the log of
/// each of the campaign's unfinished events. Returns the digest in force.
fn put_signers(
    tx: &mut dyn Tx,
    id: Uuid,
    c: &CampaignPlan,
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    let wanted = c.signers.as_ref().map(|text| StoredSigners {
        digest: digest_of_text(text),
        text: text.clone(),
    });
    let old = tx.scope_signers(id)?.map(|s| s.digest);
    let new = wanted.as_ref().map(|s| s.digest.clone());
    if old == new {
        return Ok(new);
    }
    tx.set_scope_signers(id, wanted.as_ref())?;
    let detail = json!({ "signers": { "old": old, "new": new }, "set": { "signers": new } });
    audit(tx, id, now, now, None, AuditAction::CampaignUpdated, detail)?;
    if c.id.is_some() {
        for (event, _, state) in tx.campaign_events(id)? {
            if !state.is_final() {
                let detail = json!({ "signers": { "old": old, "new": new } });
                audit(tx, event, now, now, None, AuditAction::Updated, detail)?;
            }
        }
    }
    Ok(new)
}

fn need_id(ids: &HashMap<String, Uuid>, need: &str, campaign: &str) -> Result<Uuid> {
    ids.get(need)
        .copied()
        .ok_or_else(|| TMinusError::EventNotFound {
            reference: format!("{campaign}/{need}"),
        })
}

/// The scheduled time and relative offset of a desired event that started at
/// `started` (or has not started yet).
fn timing(
    d: &DesiredEvent,
    started: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, Option<Duration>) {
    match d.at {
        TimeSpec::Absolute(t) => (t, None),
        TimeSpec::Relative(offset) => (started.unwrap_or(now) + offset, Some(offset)),
    }
}

/// `n` new random (version 4) event ids in ascending order: the events a
/// campaign creates get them in manifest order, so that their rows go into
/// every index keyed by event id at its end instead of at random places
/// (which, once the indexes outgrow the page cache, makes every insert
/// read and write back pages all over the file).
fn fresh_ids(n: usize) -> std::vec::IntoIter<Uuid> {
    let mut ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    ids.sort_unstable();
    ids.into_iter()
}

/// A new campaign event `id`: `pending` from the anchor when it needs
/// nothing, `blocked` otherwise.
fn new_event(
    id: Uuid,
    campaign: Uuid,
    d: &DesiredEvent,
    anchor: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<TMinusEvent> {
    let started_at = d.needs.is_empty().then_some(anchor);
    let (scheduled_at, relative_at) = timing(d, started_at, now);
    // The fire time is known unless the event starts relative to needs that
    // have not fired yet.
    let fire = match (relative_at, started_at) {
        (Some(_), None) => None,
        _ => Some((fire_of(scheduled_at, d.t_minus), now)),
    };
    let resolved = event_check::check(&d.draft(fire))?;
    super::check_gates(
        &d.gates(),
        &d.organizer(),
        &resolved.attendees,
        d.quorum,
        &d.groups,
        d.fire,
        fire.map(|(f, _)| f),
    )?;
    let event = TMinusEvent {
        rules_digest: crate::notification::spec::bound_rules_digest(&d.notify),
        id,
        kind: d.kind.clone(),
        scheduled_at,
        t_minus: d.t_minus,
        organizer: d.organizer(),
        attendees: resolved
            .attendees
            .into_iter()
            .map(|a| (a, ResponseStatus::Pending))
            .collect(),
        quorum: resolved.quorum,
        groups: d.groups.clone(),
        payload: d.payload.clone(),
        state: if started_at.is_some() {
            EventState::Pending
        } else {
            EventState::Blocked
        },
        campaign: Some(campaign),
        name: Some(d.key.clone()),
        quorum_spec: d.quorum,
        fire_policy: d.fire,
        max_defer: d.max_defer,
        deferred: Duration::zero(),
        relative_at,
        started_at,
        finished_at: None,
        created_at: now,
        last_response_at: None,
        description: d.description.clone(),
        gates: d.gates(),
        escalation: crate::escalation::Escalation {
            steps: d.escalate.clone(),
            applied: 0,
            applied_at: None,
        },
    };
    Ok(event)
}

fn update_event(
    tx: &mut dyn Tx,
    campaign: Uuid,
    id: Uuid,
    d: &DesiredEvent,
    plan: &EventPlan,
    ids: &HashMap<String, Uuid>,
    now: DateTime<Utc>,
) -> Result<()> {
    // Settled with its campaign by `apply_campaign`.
    let mut event = load(tx, id)?;
    check_not_final(&event)?;
    let before = content_digest(&event);
    // The attendees the applied escalation steps added stay (they are not
    // the manifest's to remove) as long as those steps stay.
    let escalation = event.escalation.rebase(&d.escalate);
    let wanted = escalation.attendees_with_added(&d.attendees);
    let current: Vec<_> = event.attendees.iter().map(|(a, _)| a.clone()).collect();
    if current != wanted {
        tx.set_attendees(id, &wanted)?;
        event.attendees = load(tx, id)?.attendees;
    }
    event.kind = d.kind.clone();
    event.description = d.description.clone();
    event.t_minus = d.t_minus;
    event.quorum_spec = d.quorum;
    event.quorum = event_check::check(&d.draft(None))?.quorum;
    event.groups = escalation.groups_with_added(&d.groups);
    let policy_reset = crate::lifecycle::lazy_changed(event.fire_policy, d.fire);
    event.escalation = escalation;
    event.fire_policy = d.fire;
    event.max_defer = d.max_defer;
    event.payload = d.payload.clone();
    event.organizer = d.organizer();
    let broken = event.gates.broken.take();
    event.gates = d.gates();
    event.gates.broken = broken;
    if tx.notify_rules(id)? != d.notify {
        tx.set_notify_rules(id, &d.notify)?;
        event.rules_digest = crate::notification::spec::bound_rules_digest(&d.notify);
    }
    let content = reset_if_changed(tx, &mut event, before, now)?;
    let answers_reset = if policy_reset {
        reset_answers(tx, &mut event, now)?
    } else {
        Vec::new()
    };
    let (at, relative_at) = timing(d, event.started_at, now);
    event.scheduled_at = at + event.deferred;
    event.relative_at = relative_at;

    // Needs: drop the edges no longer wanted, add the new ones.
    let wanted: HashSet<Uuid> = d
        .needs
        .iter()
        .map(|n| need_id(ids, n, &d.key))
        .collect::<Result<_>>()?;
    let current_needs = tx.needs(id)?;
    for need in &current_needs {
        if !wanted.contains(&need.id) {
            tx.delete_edge(need.id, id)?;
        }
    }
    let have: HashSet<Uuid> = current_needs.iter().map(|n| n.id).collect();
    let mut waits = false;
    for need in &d.needs {
        let from = need_id(ids, need, &d.key)?;
        if !have.contains(&from) {
            tx.insert_edge(campaign, from, id)?;
        }
        let fired = load(tx, from)?.state == EventState::Fired;
        waits |= !fired;
    }
    let changes: Vec<_> = plan
        .changes
        .iter()
        .map(|c| json!({ "field": c.name(), "old": c.old, "new": c.new }))
        .collect();
    let mut detail = json!({ "changes": changes });
    if let Some(content) = content {
        detail["content"] = content;
    }
    detail["set"] = updated_set(tx, &event)?;
    if policy_reset {
        detail["policy_reset"] = json!(answers_reset);
    }
    audit(tx, id, now, now, None, AuditAction::Updated, detail)?;
    // One write of the row: the update, and the way back to `blocked` when
    // a new need has not fired.
    if event.state == EventState::Pending && waits {
        block(tx, &mut event, now, json!(d.needs))
    } else {
        tx.update_event(&event)
    }
}

/// Sends every confirmation and decline of an unfinished event back to
/// `pending` (in the store and in `event`); returns the agents reset.
/// Deferrals stay: the time they moved stays moved.
fn reset_answers(
    tx: &mut dyn Tx,
    event: &mut TMinusEvent,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    let mut reset = Vec::new();
    if event.state.is_final() {
        return Ok(reset);
    }
    for (agent, status) in event.attendees.iter_mut() {
        if matches!(
            *status,
            ResponseStatus::Confirmed | ResponseStatus::Declined
        ) {
            tx.set_response(event.id, agent, ResponseStatus::Pending, now)?;
            *status = ResponseStatus::Pending;
            reset.push(agent.as_str().to_string());
        }
    }
    Ok(reset)
}
