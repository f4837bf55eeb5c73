//! Campaigns: named groups of events with dependency edges.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// A campaign: its events and the edges between them. An edge `(from, to)`
/// means `to` needs `from`: `to` opens only after `from` has fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    /// Assigned on creation; never changes.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// Member events, in the order they were added.
    pub events: Vec<Uuid>,
    /// Dependency edges `(from, to)`: `to` needs `from`.
    pub dependencies: Vec<(Uuid, Uuid)>,
    /// Free text.
    pub description: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Whether a manifest manages it (`apply`), as opposed to ad-hoc commands.
    pub managed: bool,
    /// Derived from its events' states.
    pub state: CampaignState,
}

impl Campaign {
    /// A new, empty ad-hoc campaign named `name`, in memory only: a fresh
    /// id, created now. [`crate::Engine::create_campaign`] creates one in
    /// the store (and checks the name). Takes a `String`, as the
    /// prototype's did, so its callers' `Campaign::new("name".into())`
    /// stays unambiguous.
    pub fn new(name: String) -> Self {
        Campaign {
            id: Uuid::new_v4(),
            name,
            events: Vec::new(),
            dependencies: Vec::new(),
            description: None,
            created_at: Utc::now(),
            managed: false,
            state: CampaignState::derive([]),
        }
    }

    /// The events in topological order, needs first (events of one level in
    /// the order they were added); `Err` holds the events on a cycle.
    pub fn execution_order(&self) -> Result<Vec<Uuid>, Vec<Uuid>> {
        crate::graph::levels(&self.events, &self.dependencies)
            .map(|levels| levels.into_iter().flatten().collect())
    }

    /// The events grouped in levels (`A → B, C → D`): the events of a level
    /// can run in parallel once the previous levels have fired. `Err` holds
    /// the events on a cycle.
    pub fn levels(&self) -> Result<Vec<Vec<Uuid>>, Vec<Uuid>> {
        crate::graph::levels(&self.events, &self.dependencies)
    }
}

/// A campaign's derived state.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum CampaignState {
    /// Some event is not final yet.
    Running,
    /// Every event fired (also true of a campaign with no events).
    Succeeded,
    /// Every event is final and at least one missed or was cancelled.
    Failed,
}

impl CampaignState {
    /// Derives the state from the member events' states.
    pub fn derive(states: impl IntoIterator<Item = crate::EventState>) -> Self {
        let mut failed = false;
        for state in states {
            if !state.is_final() {
                return CampaignState::Running;
            }
            failed |= state != crate::EventState::Fired;
        }
        if failed {
            CampaignState::Failed
        } else {
            CampaignState::Succeeded
        }
    }
}

impl fmt::Display for CampaignState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CampaignState::Running => "running",
            CampaignState::Succeeded => "succeeded",
            CampaignState::Failed => "failed",
        })
    }
}
