//! Computing a plan: the desired state against the store, inside one
//! transaction.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    Action, CampaignPlan, CampaignVersion, EventPlan, FieldChange, Fingerprint, ManifestError,
    Plan, PlanCounts, PlanField, PlanOptions, PLAN_FORMAT,
};
use crate::duration::{format_countdown, format_duration};
use crate::error::Result;
use crate::event::TMinusEvent;
use crate::event_check::fire_time_passed;
use crate::lifecycle::decide;
use crate::manifest::{
    DesiredCampaign, DesiredEvent, DiagnosticCode, Diagnostics, ManifestDiagnostic, ValidManifests,
};
use crate::policy::{Quorum, QuorumGroup};
use crate::state::{EventState, ResponseStatus};
use crate::store::{CampaignRow, Tx};
use crate::time_spec::{format_time, TimeSpec};
use crate::trust::signers::digest_of_text;

/// The fingerprint of the campaigns named `names` (and, when pruning, of
/// every manifest-managed campaign).
pub(crate) fn fingerprint(tx: &mut dyn Tx, names: &[String], prune: bool) -> Result<Fingerprint> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut campaigns = Vec::new();
    for name in names {
        if !seen.insert(name) {
            continue;
        }
        let row = tx.campaign_by_name(name)?;
        campaigns.push(CampaignVersion {
            name: name.clone(),
            id: row.as_ref().map(|r| r.id),
            revision: row.as_ref().map(|r| r.revision),
            declared: true,
        });
    }
    if prune {
        for row in tx.list_campaigns()? {
            if row.managed && !seen.contains(row.name.as_str()) {
                campaigns.push(CampaignVersion {
                    name: row.name,
                    id: Some(row.id),
                    revision: Some(row.revision),
                    declared: false,
                });
            }
        }
    }
    let digest = digest(&campaigns);
    Ok(Fingerprint { campaigns, digest })
}

/// FNV-1a over the JSON form: stable across builds and platforms.
fn digest(campaigns: &[CampaignVersion]) -> String {
    let text = serde_json::to_string(campaigns).unwrap_or_default();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Computes the plan inside `tx`.
pub(crate) fn compute(
    tx: &mut dyn Tx,
    desired: &ValidManifests,
    options: &PlanOptions,
    now: DateTime<Utc>,
) -> std::result::Result<Plan, ManifestError> {
    let mut diags = Diagnostics::new();
    let mut campaigns = Vec::new();
    let mut counts = PlanCounts::default();
    let names: Vec<String> = desired.campaigns.iter().map(|c| c.name.clone()).collect();
    for campaign in &desired.campaigns {
        let row = tx.campaign_by_name(&campaign.name)?;
        let plan = match row {
            None => create_campaign(campaign, desired, now, &mut diags),
            Some(row) => update_campaign(tx, campaign, row, desired, now, &mut diags)?,
        };
        if let Some(plan) = plan {
            count(&plan, &mut counts);
            campaigns.push(plan);
        }
    }
    if options.prune {
        let wanted: HashSet<&str> = names.iter().map(String::as_str).collect();
        for row in tx.list_campaigns()? {
            if !row.managed || wanted.contains(row.name.as_str()) {
                continue;
            }
            let members = tx.campaign_events(row.id)?;
            if tx.scope_signers(row.id)?.is_some() {
                refuse_unsigned_delete(
                    &row.name,
                    members.iter().map(|(_, name, state)| (name, *state)),
                )?;
            }
            let events = members
                .into_iter()
                .map(|(id, name, _)| EventPlan {
                    key: name,
                    id: Some(id),
                    action: Action::Delete,
                    changes: Vec::new(),
                    resets: 0,
                    notes: Vec::new(),
                    desired: None,
                })
                .collect();
            let plan = CampaignPlan {
                name: row.name,
                id: Some(row.id),
                action: Action::Delete,
                changes: Vec::new(),
                description: None,
                signers: None,
                events,
                notes: vec!["no manifest declares it (--prune)".into()],
            };
            count(&plan, &mut counts);
            campaigns.push(plan);
        }
    }
    if !diags.is_empty() {
        return Err(ManifestError::Invalid(diags));
    }
    Ok(Plan {
        t_minus_plan: PLAN_FORMAT,
        created_at: now,
        prune: options.prune,
        fingerprint: fingerprint(tx, &names, options.prune)?,
        counts,
        campaigns,
    })
}

/// Refuses to delete unfinished events of campaign `name`, which has
/// signers: deleting one is cancelling it, which needs a signed cancel.
/// `events` are the events to delete with their stored states.
fn refuse_unsigned_delete<'a>(
    name: &str,
    events: impl Iterator<Item = (&'a String, EventState)>,
) -> Result<()> {
    let unfinished: Vec<String> = events
        .filter(|(_, state)| !state.is_final())
        .map(|(name, _)| name.clone())
        .collect();
    if unfinished.is_empty() {
        return Ok(());
    }
    Err(crate::trust::TrustError::UnsignedDelete {
        campaign: format!("campaign {name}"),
        events: unfinished,
    }
    .into())
}

fn count(plan: &CampaignPlan, counts: &mut PlanCounts) {
    let mut add = |action: Action| match action {
        Action::Create => counts.add += 1,
        Action::Update => counts.change += 1,
        Action::Delete => counts.destroy += 1,
        Action::Keep => {}
    };
    add(plan.action);
    for e in &plan.events {
        add(e.action);
    }
}

fn create_campaign(
    campaign: &DesiredCampaign,
    desired: &ValidManifests,
    now: DateTime<Utc>,
    diags: &mut Diagnostics,
) -> Option<CampaignPlan> {
    let events = campaign
        .events
        .iter()
        .map(|e| {
            check_new_fire_time(campaign, e, now, now, desired, diags);
            new_event(e)
        })
        .collect();
    let notes = campaign
        .signers
        .as_deref()
        .map(|text| {
            format!(
                "answers must be signed by the keys of signers {} ({} keys)",
                digest_of_text(text),
                text.lines().count()
            )
        })
        .into_iter()
        .collect();
    Some(CampaignPlan {
        name: campaign.name.clone(),
        id: None,
        action: Action::Create,
        changes: Vec::new(),
        description: campaign.description.clone(),
        signers: campaign.signers.clone(),
        events,
        notes,
    })
}

fn new_event(e: &Arc<DesiredEvent>) -> EventPlan {
    EventPlan {
        key: e.key.clone(),
        id: None,
        action: Action::Create,
        changes: Vec::new(),
        resets: 0,
        notes: Vec::new(),
        desired: Some(Arc::clone(e)),
    }
}

/// A new event whose fire time is known now (absolute, or relative without
/// needs) must not have passed. `anchor` is the campaign's first apply.
fn check_new_fire_time(
    campaign: &DesiredCampaign,
    e: &DesiredEvent,
    anchor: DateTime<Utc>,
    now: DateTime<Utc>,
    desired: &ValidManifests,
    diags: &mut Diagnostics,
) {
    let fire = match e.at {
        TimeSpec::Absolute(at) => at - e.t_minus,
        TimeSpec::Relative(offset) if e.needs.is_empty() => anchor + offset - e.t_minus,
        TimeSpec::Relative(_) => return,
    };
    let Some(ago) = fire_time_passed(fire, now) else {
        return;
    };
    let Some(source) = desired.sources.get(campaign.origin.file) else {
        return;
    };
    let relative = matches!(e.at, TimeSpec::Relative(_));
    let help = if relative {
        "relative times count from the campaign's first apply; a new event added later must reach past now — lengthen `at` or use an absolute time"
    } else {
        "schedule it later, use a relative time such as `+10m`, or shorten its t_minus"
    };
    diags.push(
        ManifestDiagnostic::new(
            DiagnosticCode::FireTimePassed,
            format!(
                "{}/{}: the new event's fire time {} has already passed ({} ago)",
                campaign.name,
                e.key,
                format_time(fire),
                format_countdown(ago)
            ),
        )
        .help(help)
        .label(source, e.spans.at, "in the past"),
    );
}

/// Stored events a plan loads together.
const PLAN_CHUNK: usize = 1000;

fn update_campaign(
    tx: &mut dyn Tx,
    campaign: &DesiredCampaign,
    row: CampaignRow,
    desired: &ValidManifests,
    now: DateTime<Utc>,
    diags: &mut Diagnostics,
) -> Result<Option<CampaignPlan>> {
    let members = tx.campaign_events(row.id)?;
    let name_of: HashMap<Uuid, String> = members
        .iter()
        .map(|(id, name, _)| (*id, name.clone()))
        .collect();
    let mut needs_of: HashMap<Uuid, Vec<String>> = HashMap::new();
    for (from, to) in tx.campaign_edges(row.id)? {
        if let Some(name) = name_of.get(&from) {
            needs_of.entry(to).or_default().push(name.clone());
        }
    }
    let by_name: HashMap<&str, Uuid> = members
        .iter()
        .map(|(id, name, _)| (name.as_str(), *id))
        .collect();
    let anchor = row.anchor_at.unwrap_or(now);
    let mut events = Vec::new();
    let mut notes = Vec::new();
    let mut changes = Vec::new();
    if row.description != campaign.description {
        changes.push(FieldChange {
            field: PlanField::Description,
            old: row.description.clone(),
            new: campaign.description.clone(),
        });
    }
    let stored_signers = tx.scope_signers(row.id)?.map(|s| s.digest);
    let signed = stored_signers.is_some();
    let wanted_signers = campaign.signers.as_deref().map(digest_of_text);
    if stored_signers != wanted_signers {
        changes.push(FieldChange {
            field: PlanField::Signers,
            old: stored_signers,
            new: wanted_signers,
        });
    }
    if !row.managed {
        changes.push(FieldChange {
            field: PlanField::Managed,
            old: Some("false".into()),
            new: Some("true".into()),
        });
        notes
            .push("the campaign was created by hand; applying makes the manifest manage it".into());
    }
    let wanted: HashSet<&str> = campaign.events.iter().map(|e| e.key.as_str()).collect();
    // The stored events and their rules, loaded a chunk at a time: together
    // (two or three queries a chunk on PostgreSQL, not three per event), and
    // never the whole of a large campaign in memory at once.
    let mut stored_events: HashMap<Uuid, TMinusEvent> = HashMap::new();
    let mut stored_rules: HashMap<Uuid, Vec<crate::notification::NotifyRule>> = HashMap::new();
    for (i, e) in campaign.events.iter().enumerate() {
        if i % PLAN_CHUNK == 0 {
            let ids: Vec<Uuid> = campaign.events[i..]
                .iter()
                .take(PLAN_CHUNK)
                .filter_map(|e| by_name.get(e.key.as_str()).copied())
                .collect();
            stored_events = tx
                .events_by_id(&ids)?
                .into_iter()
                .map(|e| (e.id, e))
                .collect();
            stored_rules = tx.notify_rules_by_id(&ids)?.into_iter().collect();
        }
        match by_name.get(e.key.as_str()) {
            None => {
                check_new_fire_time(campaign, e, anchor, now, desired, diags);
                events.push(new_event(e));
            }
            Some(id) => {
                let Some(stored) = stored_events.remove(id) else {
                    continue;
                };
                let needs = needs_of.remove(id).unwrap_or_default();
                // What applying would store: the manifest's attendees and
                // groups with the agents of the escalation steps that stay
                // applied, which are no drift.
                let rebased = stored.escalation.rebase(&e.escalate);
                let effective = DesiredEvent {
                    attendees: rebased.attendees_with_added(&e.attendees),
                    groups: rebased.groups_with_added(&e.groups),
                    ..(**e).clone()
                };
                let mut change_list = diff(&stored, &needs, &effective);
                if stored.escalation.steps != e.escalate {
                    change_list.push(FieldChange {
                        field: PlanField::Escalate,
                        old: crate::escalation::Escalation::summary(&stored.escalation.steps),
                        new: crate::escalation::Escalation::summary(&e.escalate),
                    });
                }
                let stored_rules = stored_rules.remove(id).unwrap_or_default();
                if stored_rules != e.notify {
                    change_list.push(FieldChange {
                        field: PlanField::Notify,
                        old: rules_summary(&stored_rules),
                        new: rules_summary(&e.notify),
                    });
                }
                if change_list.is_empty() {
                    continue;
                }
                let state = effective_state(&stored, now);
                if state.is_final() {
                    if let Some(source) = desired.sources.get(campaign.origin.file) {
                        let mut d = ManifestDiagnostic::new(
                            DiagnosticCode::FinalEvent,
                            format!(
                                "{}/{}: the event already {state}, so it cannot change ({})",
                                campaign.name,
                                e.key,
                                change_list
                                    .iter()
                                    .map(|c| c.field.field().as_str())
                                    .fold(Vec::new(), |mut seen, f| {
                                        if !seen.contains(&f) {
                                            seen.push(f);
                                        }
                                        seen
                                    })
                                    .join(", ")
                            ),
                        )
                        .help("a final event never changes; revert the change, or add a new event under another name");
                        for c in &change_list {
                            d = d.label(
                                source,
                                e.spans.of(c.field.field()),
                                format!("{} {c}", c.symbol()),
                            );
                        }
                        diags.push(d);
                    }
                    continue;
                }
                let mut event_notes = Vec::new();
                for (agent, status) in &stored.attendees {
                    if *status != ResponseStatus::Pending && !effective.attendees.contains(agent) {
                        event_notes.push(format!(
                            "attendee {agent} already answered ({status}); removing it drops the answer"
                        ));
                    }
                }
                change_list.sort_by_key(|c| c.field.field());
                let mut updated = stored.clone();
                updated.kind = e.kind.clone();
                updated.description = e.description.clone();
                updated.payload = e.payload.clone();
                updated.rules_digest = crate::notification::spec::bound_rules_digest(&e.notify);
                let resets = if crate::lifecycle::lazy_changed(stored.fire_policy, e.fire) {
                    stored
                        .attendees
                        .iter()
                        .filter(|(a, s)| {
                            matches!(s, ResponseStatus::Confirmed | ResponseStatus::Declined)
                                && effective.attendees.contains(a)
                        })
                        .count()
                } else {
                    crate::lifecycle::resets(&stored, &updated, &effective.attendees)
                };
                events.push(EventPlan {
                    key: e.key.clone(),
                    id: Some(*id),
                    action: Action::Update,
                    changes: change_list,
                    resets,
                    notes: event_notes,
                    desired: Some(e.clone()),
                });
            }
        }
    }
    if signed {
        refuse_unsigned_delete(
            &row.name,
            members
                .iter()
                .filter(|(_, name, _)| !wanted.contains(name.as_str()))
                .map(|(_, name, state)| (name, *state)),
        )?;
    }
    for (id, name, state) in &members {
        if wanted.contains(name.as_str()) {
            continue;
        }
        if state.is_final() {
            notes.push(format!(
                "event {name} is {state} and no longer in the manifest; it stays in the store as history"
            ));
            continue;
        }
        events.push(EventPlan {
            key: name.clone(),
            id: Some(*id),
            action: Action::Delete,
            changes: Vec::new(),
            resets: 0,
            notes: Vec::new(),
            desired: None,
        });
    }
    let action = if changes.is_empty() {
        Action::Keep
    } else {
        Action::Update
    };
    if events.is_empty() && changes.is_empty() && notes.is_empty() {
        return Ok(None);
    }
    Ok(Some(CampaignPlan {
        name: campaign.name.clone(),
        id: Some(row.id),
        action,
        changes,
        description: campaign.description.clone(),
        signers: campaign.signers.clone(),
        events,
        notes,
    }))
}

/// The state the event has at `now`, also when no tick recorded it yet.
fn effective_state(event: &TMinusEvent, now: DateTime<Utc>) -> EventState {
    match decide(event, now) {
        Some(decision) => decision.state,
        None => event.state,
    }
}

/// Notification rules in one line: `fired,missed → exec ./x; …`.
fn rules_summary(rules: &[crate::notification::NotifyRule]) -> Option<String> {
    if rules.is_empty() {
        return None;
    }
    let parts: Vec<String> = rules
        .iter()
        .map(|r| {
            let on: Vec<&str> = r.on.iter().map(|t| t.as_str()).collect();
            format!("{} → {}", on.join(","), r.hook.describe())
        })
        .collect();
    Some(format!("[{}]", parts.join("; ")))
}

/// Quorum and attendees as text: `ops 2, security 1` and
/// `ops: [a, b]; security: [c]` for groups, the quorum and the list otherwise.
fn spelled_groups<'a>(
    groups: &[QuorumGroup],
    quorum: &Quorum,
    plain: impl FnOnce() -> Vec<&'a str>,
) -> (String, String) {
    if groups.is_empty() {
        return (quorum.to_string(), list(plain()));
    }
    let q: Vec<String> = groups
        .iter()
        .map(|g| format!("{} {}", g.name, g.quorum))
        .collect();
    let a: Vec<String> = groups
        .iter()
        .map(|g| format!("{}: {}", g.name, list(g.members.iter().map(|m| m.as_str()))))
        .collect();
    (q.join(", "), a.join("; "))
}

pub(crate) fn show(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "(none)".into())
}

/// The stored `at` as the manifest would spell it.
fn stored_at(e: &TMinusEvent) -> String {
    match e.relative_at {
        Some(offset) => TimeSpec::Relative(offset).to_string(),
        None => format_time(e.scheduled_at - e.deferred),
    }
}

pub(crate) fn list(items: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let items: Vec<String> = items.into_iter().map(|s| s.as_ref().to_string()).collect();
    format!("[{}]", items.join(", "))
}

/// One attendee change per member: `new` alone for a member who joins
/// (`+ attendees.security: sec-3`), `old` alone for one who leaves, removals
/// first, each side in its list's order.
fn member_changes(
    field: &mut impl FnMut(PlanField, Option<String>, Option<String>),
    group: Option<&str>,
    old: &[&str],
    new: &[&str],
) {
    let (old_set, new_set): (HashSet<&str>, HashSet<&str>) =
        (old.iter().copied().collect(), new.iter().copied().collect());
    for gone in old.iter().filter(|a| !new_set.contains(*a)) {
        field(
            PlanField::Attendees(group.map(str::to_string)),
            Some((*gone).to_string()),
            None,
        );
    }
    for added in new.iter().filter(|a| !old_set.contains(*a)) {
        field(
            PlanField::Attendees(group.map(str::to_string)),
            None,
            Some((*added).to_string()),
        );
    }
}

/// The fields that differ between the stored event and the manifest.
fn diff(stored: &TMinusEvent, stored_needs: &[String], e: &DesiredEvent) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let mut field = |name: PlanField, old: Option<String>, new: Option<String>| {
        if old != new {
            out.push(FieldChange {
                field: name,
                old,
                new,
            });
        }
    };
    field(
        PlanField::Kind,
        Some(stored.kind.to_string()),
        Some(e.kind.to_string()),
    );
    field(
        PlanField::Description,
        stored.description.clone(),
        e.description.clone(),
    );
    field(
        PlanField::At,
        Some(stored_at(stored)),
        Some(e.at.to_string()),
    );
    field(
        PlanField::TMinus,
        Some(format_duration(stored.t_minus)),
        Some(format_duration(e.t_minus)),
    );
    field(
        PlanField::Fire,
        Some(stored.fire_policy.to_string()),
        Some(e.fire.to_string()),
    );
    field(
        PlanField::MaxDefer,
        stored.max_defer.map(format_duration),
        e.max_defer.map(format_duration),
    );
    if stored.groups.is_empty() && e.groups.is_empty() {
        field(
            PlanField::Quorum(None),
            Some(stored.quorum_spec.to_string()),
            Some(e.quorum.to_string()),
        );
        let old_attendees: Vec<&str> = stored.attendees.iter().map(|(a, _)| a.as_str()).collect();
        let new_attendees: Vec<&str> = e.attendees.iter().map(|a| a.as_str()).collect();
        member_changes(&mut field, None, &old_attendees, &new_attendees);
    } else if stored.groups.is_empty() || e.groups.is_empty() {
        // From one list to groups or back: the whole spelling changes.
        let (old_q, old_a) = spelled_groups(&stored.groups, &stored.quorum_spec, || {
            stored.attendees.iter().map(|(a, _)| a.as_str()).collect()
        });
        let (new_q, new_a) = spelled_groups(&e.groups, &e.quorum, || {
            e.attendees.iter().map(|a| a.as_str()).collect()
        });
        field(PlanField::Quorum(None), Some(old_q), Some(new_q));
        field(PlanField::Attendees(None), Some(old_a), Some(new_a));
    } else {
        // Group by group: `quorum.ops: 2 → 3`, `attendees.security: … → …`.
        let find = |groups: &'_ [QuorumGroup], name: &str| -> Option<QuorumGroup> {
            groups.iter().find(|g| g.name == name).cloned()
        };
        let mut names: Vec<&str> = stored.groups.iter().map(|g| g.name.as_str()).collect();
        for g in &e.groups {
            if !names.contains(&g.name.as_str()) {
                names.push(g.name.as_str());
            }
        }
        for name in names {
            let old = find(&stored.groups, name);
            let new = find(&e.groups, name);
            field(
                PlanField::Quorum(Some(name.to_string())),
                old.as_ref().map(|g| g.quorum.to_string()),
                new.as_ref().map(|g| g.quorum.to_string()),
            );
            fn members(g: &Option<QuorumGroup>) -> Vec<&str> {
                g.as_ref()
                    .map(|g| g.members.iter().map(|a| a.as_str()).collect())
                    .unwrap_or_default()
            }
            member_changes(&mut field, Some(name), &members(&old), &members(&new));
        }
    }
    let old_needs: HashSet<&str> = stored_needs.iter().map(String::as_str).collect();
    let new_needs: HashSet<&str> = e.needs.iter().map(String::as_str).collect();
    if old_needs != new_needs {
        let mut old: Vec<&str> = stored_needs.iter().map(String::as_str).collect();
        old.sort_unstable();
        field(PlanField::Needs, Some(list(&old)), Some(list(&e.needs)));
    }
    let requested = |a: &crate::agent::AgentId| (a.as_str() != "t-minus").then(|| a.to_string());
    field(
        PlanField::RequestedBy,
        requested(&stored.organizer),
        e.requested_by.as_ref().and_then(requested),
    );
    field(
        PlanField::FourEyes,
        Some(stored.gates.four_eyes.to_string()),
        Some(e.four_eyes.to_string()),
    );
    field(
        PlanField::Window,
        crate::gate::windows_text(&stored.gates.windows),
        crate::gate::windows_text(&e.windows),
    );
    field(
        PlanField::Breakglass,
        (!stored.gates.breakglass.is_empty())
            .then(|| list(stored.gates.breakglass.iter().map(|a| a.as_str()))),
        (!e.breakglass.is_empty()).then(|| list(e.breakglass.iter().map(|a| a.as_str()))),
    );
    if stored.payload != e.payload {
        let text = |v: &serde_json::Value| (!v.is_null()).then(|| v.to_string());
        field(PlanField::Payload, text(&stored.payload), text(&e.payload));
    }
    out
}
