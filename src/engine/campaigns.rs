//! Ad-hoc campaigns: create, add events, link them, order them.

use serde_json::json;
use uuid::Uuid;

use super::settle::{audit, block, cancel, settle, settle_campaign, settle_with_ancestors};
use super::{build_event, insert_new_event, load, Engine, NewEvent};
use crate::audit::AuditAction;
use crate::campaign::{Campaign, CampaignState};
use crate::error::{LinkRefusal, Result, TMinusError};
use crate::event::TMinusEvent;
use crate::graph;
use crate::name::validate_name;
use crate::state::EventState;
use crate::store::{CampaignRow, Tx};
use crate::trust::record::needs_value;

/// Loads a campaign with its events, edges and derived state.
pub(crate) fn load_campaign(tx: &mut dyn Tx, row: CampaignRow) -> Result<Campaign> {
    let members = tx.campaign_events(row.id)?;
    let dependencies = tx.campaign_edges(row.id)?;
    Ok(Campaign {
        id: row.id,
        name: row.name,
        state: CampaignState::derive(members.iter().map(|(_, _, s)| *s)),
        events: members.into_iter().map(|(id, _, _)| id).collect(),
        dependencies,
        description: row.description,
        created_at: row.created_at,
        managed: row.managed,
    })
}

fn campaign_row(tx: &mut dyn Tx, id: Uuid) -> Result<CampaignRow> {
    tx.campaign(id)?
        .ok_or_else(|| TMinusError::CampaignNotFound {
            reference: id.to_string(),
        })
}

/// A name for an event of `kind` that is free in `campaign`: the kind
/// (made a valid name), then `kind-2`, `kind-3`, …
fn free_name(tx: &mut dyn Tx, campaign: Uuid, kind: &str) -> Result<String> {
    let mut base: String = kind
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(56)
        .collect();
    if !base.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        base.insert(0, '_');
    }
    let mut n = 1;
    loop {
        let name = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        if tx.event_by_name(campaign, &name)?.is_none() {
            return Ok(name);
        }
        n += 1;
    }
}

/// Puts `event` into `campaign` under `name` (or a name derived from its kind).
fn join(
    tx: &mut dyn Tx,
    campaign: &CampaignRow,
    event: &mut TMinusEvent,
    name: Option<String>,
) -> Result<()> {
    let name = match name {
        Some(name) => {
            validate_name(&name)?;
            if tx.event_by_name(campaign.id, &name)?.is_some() {
                return Err(TMinusError::DuplicateEventName {
                    campaign: campaign.name.clone(),
                    name,
                });
            }
            name
        }
        None => free_name(tx, campaign.id, &event.kind.to_string())?,
    };
    event.campaign = Some(campaign.id);
    event.name = Some(name);
    Ok(())
}

/// Refuses a need of the new event `event` that is outside `campaign` or
/// has already missed or been cancelled.
fn check_need(campaign: &CampaignRow, need: &TMinusEvent, event: &TMinusEvent) -> Result<()> {
    let new_label = event.name.as_deref().unwrap_or("the new event");
    if need.campaign != Some(campaign.id) {
        return Err(TMinusError::InvalidLink(LinkRefusal::ForeignNeed {
            event: new_label.to_string(),
            need: need.label(),
            campaign: campaign.name.clone(),
        }));
    }
    if matches!(need.state, EventState::Missed | EventState::Cancelled) {
        return Err(TMinusError::InvalidLink(LinkRefusal::DeadNeed {
            need: need.label(),
            state: need.state,
            event: new_label.to_string(),
        }));
    }
    Ok(())
}

impl Engine {
    /// Creates an empty campaign. Names follow `[A-Za-z_][A-Za-z0-9_-]{0,63}`
    /// and are unique.
    pub fn create_campaign(&mut self, name: String) -> Result<Campaign> {
        validate_name(&name)?;
        let now = self.now();
        self.write_whole(|tx| {
            if tx.campaign_by_name(&name)?.is_some() {
                return Err(TMinusError::DuplicateCampaign { name: name.clone() });
            }
            let row = CampaignRow {
                id: Uuid::new_v4(),
                name: name.clone(),
                description: None,
                created_at: now,
                managed: false,
                anchor_at: None,
                revision: 0,
            };
            tx.insert_campaign(&row)?;
            super::apply::audit_campaign(tx, &row, None, AuditAction::CampaignCreated, now)?;
            load_campaign(tx, row)
        })
    }

    /// Schedules a new event inside a campaign, named `name` or after its
    /// kind (`checkpoint`, `checkpoint-2`, …).
    pub fn campaign_add(
        &mut self,
        campaign_id: Uuid,
        new: NewEvent,
        name: Option<String>,
    ) -> Result<TMinusEvent> {
        self.campaign_add_with_needs(campaign_id, new, name, &[])
    }

    /// Schedules a new event inside a campaign that needs the events
    /// `needs` (members of the campaign), in one transaction: it starts
    /// `blocked` and opens when every need has fired (at once, `pending`,
    /// when they all have already). Refused, with the store unchanged, when
    /// a need is unknown, in another campaign, or has already missed or
    /// been cancelled (the event could never open). A new event cannot
    /// close a cycle: nothing needs it yet.
    pub fn campaign_add_with_needs(
        &mut self,
        campaign_id: Uuid,
        new: NewEvent,
        name: Option<String>,
        needs: &[Uuid],
    ) -> Result<TMinusEvent> {
        let now = self.now();
        let (built, rules) = build_event(new, now)?;
        let mut unique: Vec<Uuid> = Vec::with_capacity(needs.len());
        for id in needs {
            if !unique.contains(id) {
                unique.push(*id);
            }
        }
        self.write_whole(|tx| {
            let mut event = built.clone();
            let campaign = campaign_row(tx, campaign_id)?;
            join(tx, &campaign, &mut event, name.clone())?;
            let mut waiting = false;
            let mut names = Vec::with_capacity(unique.len());
            for &need in &unique {
                settle_with_ancestors(tx, need, now)?;
                let need_event = load(tx, need)?;
                check_need(&campaign, &need_event, &event)?;
                waiting |= need_event.state != EventState::Fired;
                names.push(need_event.name);
            }
            if waiting {
                event.state = EventState::Blocked;
                event.started_at = None;
            }
            let signers = tx.scope_signers(campaign_id)?;
            if let Some(stored) = &signers {
                let keys = super::signed::parse_stored(stored)?;
                for (agent, _) in &event.attendees {
                    if !keys.may_sign(agent.as_str()) {
                        return Err(crate::trust::TrustError::NoSigner {
                            agent: agent.to_string(),
                        }
                        .into());
                    }
                }
            }
            let digest = signers.map(|s| s.digest);
            insert_new_event(tx, &event, &rules, digest.as_deref(), now)?;
            for (i, (&need, need_name)) in unique.iter().zip(names).enumerate() {
                tx.insert_edge(campaign_id, need, event.id)?;
                let detail = json!({
                    "needs": need_name,
                    "need_id": need.to_string(),
                    "set": { "needs": needs_value(&unique[..=i]) },
                });
                audit(tx, event.id, now, now, None, AuditAction::Linked, detail)?;
            }
            settle(tx, [event.id], now)?;
            load(tx, event.id)
        })
    }

    /// Moves an existing standalone event into a campaign (named after its
    /// kind). Adding an event to the campaign it is already in changes nothing.
    pub fn campaign_add_event(&mut self, campaign_id: Uuid, event_id: Uuid) -> Result<Campaign> {
        let now = self.now();
        self.write_whole(|tx| {
            let campaign = campaign_row(tx, campaign_id)?;
            let mut event = load(tx, event_id)?;
            match event.campaign {
                Some(c) if c == campaign_id => return load_campaign(tx, campaign),
                Some(other) => {
                    let other = campaign_row(tx, other)?;
                    return Err(TMinusError::InvalidLink(LinkRefusal::OtherCampaign {
                        event: event.label(),
                        campaign: other.name,
                    }));
                }
                None => {}
            }
            let before = crate::trust::content_digest(&event);
            join(tx, &campaign, &mut event, None)?;
            let content = super::content::reset_if_changed(tx, &mut event, before, now)?;
            tx.update_event(&event)?;
            let mut detail = json!({ "campaign": campaign.name, "name": event.name });
            if let Some(content) = content {
                detail["content"] = content;
            }
            detail["set"] = json!({
                "campaign": campaign.id.to_string(),
                "name": event.name,
                "signers": null,
            });
            audit(tx, event_id, now, now, None, AuditAction::Linked, detail)?;
            load_campaign(tx, campaign)
        })
    }

    /// Makes `to` need `from` (both in the campaign). Refused, with the store
    /// unchanged, when it would close a cycle (the error names the events on
    /// it), when `to` is final, or when `from` already missed or was
    /// cancelled. A pending `to` whose new need has not fired goes back to
    /// `blocked`.
    pub fn campaign_link(&mut self, campaign_id: Uuid, from: Uuid, to: Uuid) -> Result<Campaign> {
        let now = self.now();
        self.write_whole(|tx| {
            let campaign = campaign_row(tx, campaign_id)?;
            for id in [from, to] {
                settle_with_ancestors(tx, id, now)?;
            }
            let from_event = load(tx, from)?;
            let mut to_event = load(tx, to)?;
            for e in [&from_event, &to_event] {
                if e.campaign != Some(campaign_id) {
                    return Err(TMinusError::InvalidLink(LinkRefusal::NotInCampaign {
                        event: e.label(),
                        campaign: campaign.name.clone(),
                    }));
                }
            }
            let members = tx.campaign_events(campaign_id)?;
            let mut edges = tx.campaign_edges(campaign_id)?;
            if edges.contains(&(from, to)) {
                return load_campaign(tx, campaign);
            }
            edges.push((from, to));
            let nodes: Vec<Uuid> = members.iter().map(|(id, _, _)| *id).collect();
            if let Some(cycle) = graph::find_cycle(&nodes, &edges) {
                let name_of = |id: Uuid| {
                    members
                        .iter()
                        .find(|(m, _, _)| *m == id)
                        .map(|(_, n, _)| n.clone())
                        .unwrap_or_else(|| id.to_string())
                };
                return Err(TMinusError::Cycle {
                    cycle: cycle.into_iter().map(name_of).collect(),
                });
            }
            if to_event.state.is_final() {
                return Err(TMinusError::InvalidLink(LinkRefusal::FinalEvent {
                    event: to_event.label(),
                    state: to_event.state,
                }));
            }
            if matches!(from_event.state, EventState::Missed | EventState::Cancelled) {
                return Err(TMinusError::InvalidLink(LinkRefusal::DeadNeed {
                    need: from_event.label(),
                    state: from_event.state,
                    event: to_event.label(),
                }));
            }
            tx.insert_edge(campaign_id, from, to)?;
            let needs: Vec<Uuid> = tx.needs(to)?.into_iter().map(|n| n.id).collect();
            let detail = json!({
                "needs": from_event.name,
                "need_id": from.to_string(),
                "set": { "needs": needs_value(&needs) },
            });
            audit(tx, to, now, now, None, AuditAction::Linked, detail)?;
            if to_event.state == EventState::Pending && from_event.state != EventState::Fired {
                block(tx, &mut to_event, now, json!(from_event.name))?;
            }
            load_campaign(tx, campaign)
        })
    }

    /// The campaign's events in topological order (needs first).
    pub fn campaign_execution_order(&self, campaign_id: Uuid) -> Result<Vec<Uuid>> {
        Ok(self
            .campaign_levels(campaign_id)?
            .into_iter()
            .flatten()
            .collect())
    }

    /// The campaign's events grouped in levels: each level's events can run
    /// in parallel once the previous levels have fired (`A → B, C → D`).
    pub fn campaign_levels(&self, campaign_id: Uuid) -> Result<Vec<Vec<Uuid>>> {
        self.read(|tx| {
            campaign_row(tx, campaign_id)?;
            let nodes: Vec<Uuid> = tx
                .campaign_events(campaign_id)?
                .into_iter()
                .map(|(id, _, _)| id)
                .collect();
            let edges = tx.campaign_edges(campaign_id)?;
            graph::levels(&nodes, &edges).map_err(|cycle| TMinusError::Cycle {
                cycle: cycle.into_iter().map(|id| id.to_string()).collect(),
            })
        })
    }

    /// Loads one campaign with its events and edges.
    pub fn get_campaign(&self, id: Uuid) -> Result<Option<Campaign>> {
        self.read(|tx| match tx.campaign(id)? {
            Some(row) => load_campaign(tx, row).map(Some),
            None => Ok(None),
        })
    }

    /// The campaign `reference` names (a name, an id or a unique prefix),
    /// its execution order (levels of event ids, each level's events
    /// independent of each other) and every event of it, finished ones too,
    /// in that order.
    pub fn campaign_in_order(
        &self,
        reference: &str,
    ) -> Result<(Campaign, Vec<Vec<Uuid>>, Vec<TMinusEvent>)> {
        let id = self.resolve_campaign(reference)?;
        let campaign = self
            .get_campaign(id)?
            .ok_or_else(|| TMinusError::CampaignNotFound {
                reference: reference.to_string(),
            })?;
        let levels = self.campaign_levels(id)?;
        let mut events = Vec::new();
        for level in &levels {
            for event in level {
                events.extend(self.get_event(*event)?);
            }
        }
        Ok((campaign, levels, events))
    }

    /// Every campaign, by name.
    pub fn list_campaigns(&self) -> Result<Vec<Campaign>> {
        self.read(|tx| {
            let rows = tx.list_campaigns()?;
            rows.into_iter().map(|row| load_campaign(tx, row)).collect()
        })
    }

    /// Cancels every unfinished event of a campaign. Returns the events that
    /// were cancelled (their dependents included). A campaign with signers
    /// that has an unfinished event is refused with
    /// [`crate::trust::TrustError::UnsignedCancel`]: its events are
    /// cancelled one by one, each with a signed cancel.
    pub fn cancel_campaign(
        &mut self,
        campaign_id: Uuid,
        reason: Option<String>,
    ) -> Result<Vec<Uuid>> {
        let now = self.now();
        self.write_whole(|tx| {
            campaign_row(tx, campaign_id)?;
            let members = tx.campaign_events(campaign_id)?;
            let reason = reason.as_deref().unwrap_or("campaign cancelled by request");
            let ids: Vec<Uuid> = members.iter().map(|(id, _, _)| *id).collect();
            // Settle first so that events already decided at `now` keep
            // their real outcome instead of being cancelled.
            settle_campaign(tx, campaign_id, now)?;
            // A campaign with signers is cancelled only by signed cancels of
            // its events: refused while any of them is unfinished.
            if tx.scope_signers(campaign_id)?.is_some() {
                for id in &ids {
                    if !load(tx, *id)?.state.is_final() {
                        let row = campaign_row(tx, campaign_id)?;
                        return Err(crate::trust::TrustError::UnsignedCancel {
                            target: format!("campaign {}", row.name),
                        }
                        .into());
                    }
                }
            }
            let mut cancelled = Vec::new();
            for id in ids {
                let mut event = load(tx, id)?;
                if !event.state.is_final() {
                    cancel(tx, &mut event, now, now, None, reason)?;
                    cancelled.push(id);
                }
            }
            Ok(cancelled)
        })
    }
}
