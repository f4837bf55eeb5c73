//! Building the views renderers show: campaign names for labels like
//! `release-v2/review`, each read once by one indexed lookup of the
//! campaign's row, and a blocked event's needs by the edges' index.

use std::collections::HashMap;

use uuid::Uuid;

use super::Engine;
use crate::agent::AgentId;
use crate::audit::{AuditAction, AuditEntry};
use crate::display::{label, EventView};
use crate::error::Result;
use crate::event::TMinusEvent;
use crate::state::ResponseStatus;

/// Builds [`EventView`]s through engine reads of a row or a few by index
/// (O(log n) each), caching the names of the campaigns seen: one per
/// command, or one per run.
#[derive(Debug, Default)]
pub struct EventViews {
    campaigns: HashMap<Uuid, Option<String>>,
}

impl EventViews {
    /// The name of campaign `id`, read on first use.
    pub fn campaign(&mut self, engine: &Engine, id: Uuid) -> Result<Option<String>> {
        if let Some(name) = self.campaigns.get(&id) {
            return Ok(name.clone());
        }
        let name = engine.campaign_name(id)?;
        self.campaigns.insert(id, name.clone());
        Ok(name)
    }

    /// Remembers the name of campaign `id`, read already (so a view of
    /// its events looks nothing up).
    pub fn know_campaign(&mut self, id: Uuid, name: Option<String>) {
        self.campaigns.insert(id, name);
    }

    /// The campaign's name, if the event is in one.
    pub fn campaign_name(
        &mut self,
        engine: &Engine,
        event: &TMinusEvent,
    ) -> Result<Option<String>> {
        match event.campaign {
            Some(id) => self.campaign(engine, id),
            None => Ok(None),
        }
    }

    /// `campaign/name` for a campaign event, the name of a named standalone
    /// event, the kind otherwise.
    pub fn label(&mut self, engine: &Engine, event: &TMinusEvent) -> Result<String> {
        let campaign = self.campaign_name(engine, event)?;
        Ok(label(campaign.as_deref(), event))
    }

    /// The view of `event`: its campaign's name and, when it is blocked,
    /// the names of its needs.
    pub fn view<'a>(&mut self, engine: &Engine, event: &'a TMinusEvent) -> Result<EventView<'a>> {
        let campaign = self.campaign_name(engine, event)?;
        let needs = if event.state == crate::EventState::Blocked && event.campaign.is_some() {
            engine.need_names(event.id)?
        } else {
            Vec::new()
        };
        Ok(EventView::new(event, campaign, needs))
    }

    /// The view of `event` with its campaign's name only, for lines that
    /// do not show needs (an inbox line): one lookup at most.
    pub fn named<'a>(&mut self, engine: &Engine, event: &'a TMinusEvent) -> Result<EventView<'a>> {
        let campaign = self.campaign_name(engine, event)?;
        Ok(EventView::new(event, campaign, Vec::new()))
    }

    /// The label of event `id` (empty when it no longer exists).
    pub fn label_of(&mut self, engine: &Engine, id: Uuid) -> Result<String> {
        match engine.get_event(id)? {
            Some(e) => self.label(engine, &e),
            None => Ok(String::new()),
        }
    }

    /// Each level's events by name (or short id), for
    /// [`crate::display::Renderer::order`].
    pub fn levels(&mut self, engine: &Engine, levels: &[Vec<Uuid>]) -> Result<Vec<Vec<String>>> {
        let mut out = Vec::with_capacity(levels.len());
        for level in levels {
            let mut names = Vec::with_capacity(level.len());
            for id in level {
                names.push(match engine.get_event(*id)? {
                    Some(e) => e.display_name(),
                    None => id.to_string(),
                });
            }
            out.push(names);
        }
        Ok(out)
    }
}

/// The attendees of `event` whose standing answer (confirmed, deferred or
/// declined) a delegate gave, read from the event's log `log`: (attendee,
/// delegate) pairs in attendee order. An attendee's latest answer entry
/// decides; an answer sent back to `pending` since shows no delegate.
pub fn delegated_answers(event: &TMinusEvent, log: &[AuditEntry]) -> Vec<(AgentId, AgentId)> {
    event
        .attendees
        .iter()
        .filter(|(_, status)| {
            matches!(
                status,
                ResponseStatus::Confirmed | ResponseStatus::Declined | ResponseStatus::Deferred(_)
            )
        })
        .filter_map(|(attendee, _)| {
            let latest = log.iter().rev().find(|e| {
                matches!(
                    e.action,
                    AuditAction::Confirmed | AuditAction::Declined | AuditAction::Deferred
                ) && match &e.on_behalf_of {
                    Some(principal) => principal == attendee,
                    None => e.agent.as_ref() == Some(attendee),
                }
            })?;
            let principal = latest.on_behalf_of.as_ref()?;
            let delegate = latest.agent.clone()?;
            Some((principal.clone(), delegate))
        })
        .collect()
}
