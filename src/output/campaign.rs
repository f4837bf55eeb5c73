//! Campaigns: their own fields, their events, their order.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::event::Event;
use super::time;
use crate::{CampaignState, Engine, EventState, Result};

/// A campaign's own fields, shared by every campaign shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CampaignFields {
    /// The campaign's id.
    pub id: Uuid,
    /// Its unique name.
    pub name: String,
    /// Derived from its events: `running` while some event is not final.
    pub state: CampaignState,
    /// Whether `apply` wrote it (only those can be removed by `--prune`).
    pub managed: bool,
    /// Free text.
    pub description: Option<String>,
    /// When it was created.
    #[serde(serialize_with = "time::at")]
    pub created_at: DateTime<Utc>,
}

/// A campaign with its events named, as `campaign list`, `campaign create`
/// and `campaign link` print it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Campaign {
    /// The campaign's own fields.
    #[serde(flatten)]
    pub campaign: CampaignFields,
    /// Its events.
    pub events: Vec<CampaignEvent>,
    /// Its dependency edges, each once.
    pub dependencies: Vec<Dependency>,
}

/// A campaign with its full events in execution order, as `status CAMPAIGN`
/// prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CampaignStatus {
    /// The campaign's own fields.
    #[serde(flatten)]
    pub campaign: CampaignFields,
    /// Every event, finished ones too, in execution order.
    pub events: Vec<Event>,
    /// Its dependency edges, each once.
    pub dependencies: Vec<Dependency>,
}

/// A [`CampaignStatus`] with its execution order in levels, as
/// `campaign show` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct CampaignDetail {
    /// The campaign and its events.
    #[serde(flatten)]
    pub status: CampaignStatus,
    /// The execution order in levels, as in [`CampaignOrder`].
    pub levels: Vec<Vec<EventName>>,
}

/// An event of a [`Campaign`], named.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct CampaignEvent {
    /// The event's id.
    pub id: Uuid,
    /// Its name in the campaign.
    pub name: Option<String>,
    /// Its state.
    pub state: EventState,
}

/// A dependency edge: `to` needs `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Dependency {
    /// The event that must fire first.
    pub from: Uuid,
    /// The event that waits for it.
    pub to: Uuid,
}

/// An event of a level: its id and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct EventName {
    /// The event's id.
    pub id: Uuid,
    /// Its name in the campaign.
    pub name: Option<String>,
}

/// `campaign order`: the topological order in levels; the events of one
/// level can run in parallel.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct CampaignOrder {
    /// The campaign's **id**.
    pub campaign: Uuid,
    /// The levels, first to last.
    pub levels: Vec<Vec<EventName>>,
}

/// `cancel CAMPAIGN`: the events this command cancelled (events that were
/// already final are left as they were).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct CampaignCancel {
    /// The campaign's **name**.
    pub campaign: String,
    /// The ids of the events cancelled.
    pub cancelled: Vec<Uuid>,
}

impl CampaignFields {
    /// The fields of `c`.
    pub fn new(c: &crate::Campaign) -> Self {
        CampaignFields {
            id: c.id,
            name: c.name.clone(),
            state: c.state,
            managed: c.managed,
            description: c.description.clone(),
            created_at: c.created_at,
        }
    }
}

/// The dependency edges of `c`.
fn dependencies(c: &crate::Campaign) -> Vec<Dependency> {
    c.dependencies
        .iter()
        .map(|&(from, to)| Dependency { from, to })
        .collect()
}

impl Campaign {
    /// The campaign `c`, its events' names and states read from `engine`.
    pub fn read(engine: &Engine, c: &crate::Campaign) -> Result<Self> {
        let mut events = Vec::with_capacity(c.events.len());
        for id in &c.events {
            if let Some(e) = engine.get_event(*id)? {
                events.push(CampaignEvent {
                    id: e.id,
                    name: e.name,
                    state: e.state,
                });
            }
        }
        Ok(Campaign {
            campaign: CampaignFields::new(c),
            events,
            dependencies: dependencies(c),
        })
    }
}

impl CampaignStatus {
    /// The campaign this output describes, for the renderers of
    /// [`crate::display`].
    pub fn to_campaign(&self) -> crate::Campaign {
        let c = &self.campaign;
        crate::Campaign {
            id: c.id,
            name: c.name.clone(),
            events: self.events.iter().map(|e| e.id).collect(),
            dependencies: self.dependencies.iter().map(|d| (d.from, d.to)).collect(),
            description: c.description.clone(),
            created_at: c.created_at,
            managed: c.managed,
            state: c.state,
        }
    }

    /// What the event `id` needs, each by its name (or id), as a blocked
    /// event's block shows it.
    pub fn need_names(&self, id: Uuid) -> Vec<String> {
        self.dependencies
            .iter()
            .filter(|d| d.to == id)
            .map(|d| {
                self.events
                    .iter()
                    .find(|e| e.id == d.from)
                    .and_then(|e| e.name.clone())
                    .unwrap_or_else(|| crate::event::short_id(d.from))
            })
            .collect()
    }

    /// The campaign `c` with `events` (its events, in the order to show).
    pub fn new(c: &crate::Campaign, events: &[crate::TMinusEvent]) -> Self {
        CampaignStatus {
            campaign: CampaignFields::new(c),
            events: events
                .iter()
                .map(|e| Event::new(e, Some(&c.name)))
                .collect(),
            dependencies: dependencies(c),
        }
    }
}
