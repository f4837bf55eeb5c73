//! Campaign names for labels like `release-v2/review`, loaded once per campaign.

use std::collections::HashMap;

use crate::{Campaign, Engine, Result, TMinusEvent};
use uuid::Uuid;

/// A cache of the campaigns the output mentions.
#[derive(Default)]
pub struct Names {
    campaigns: HashMap<Uuid, Option<Campaign>>,
}

impl Names {
    /// The campaign `id`, loaded on first use.
    pub fn campaign(&mut self, engine: &Engine, id: Uuid) -> Result<Option<&Campaign>> {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.campaigns.entry(id) {
            slot.insert(engine.get_campaign(id)?);
        }
        Ok(self.campaigns.get(&id).and_then(Option::as_ref))
    }

    /// The campaign's name, if the event is in one.
    pub fn campaign_name(
        &mut self,
        engine: &Engine,
        event: &TMinusEvent,
    ) -> Result<Option<String>> {
        match event.campaign {
            Some(id) => Ok(self.campaign(engine, id)?.map(|c| c.name.clone())),
            None => Ok(None),
        }
    }

    /// `campaign/name` for a campaign event, the kind otherwise.
    pub fn label(&mut self, engine: &Engine, event: &TMinusEvent) -> Result<String> {
        Ok(match (self.campaign_name(engine, event)?, &event.name) {
            (Some(c), Some(n)) => format!("{c}/{n}"),
            _ => event.kind.to_string(),
        })
    }

    /// The names of the events `event` needs (campaign events only).
    pub fn needs(&mut self, engine: &Engine, event: &TMinusEvent) -> Result<Vec<String>> {
        let Some(cid) = event.campaign else {
            return Ok(Vec::new());
        };
        let Some(campaign) = self.campaign(engine, cid)? else {
            return Ok(Vec::new());
        };
        let needs: Vec<Uuid> = campaign
            .dependencies
            .iter()
            .filter(|(_, to)| *to == event.id)
            .map(|(from, _)| *from)
            .collect();
        let mut names = Vec::new();
        for id in needs {
            names.push(match engine.get_event(id)? {
                Some(e) => e.display_name(),
                None => id.to_string(),
            });
        }
        Ok(names)
    }
}
