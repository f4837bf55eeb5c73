//! Delegations: who may answer for whom, as `delegations --json` lists them.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::time;
use crate::delegation::DelegationState;

/// One delegation: `from` lets `to` answer for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Delegation {
    /// Its id (`undelegate` takes it, or a unique prefix of 4+ hex digits).
    pub id: Uuid,
    /// The agent whose answers `to` may give.
    pub from: String,
    /// The agent who may give them (`confirm EVENT TO --for FROM`).
    pub to: String,
    /// The campaign it covers, by name (its id when the campaign is gone);
    /// `null`: every event.
    pub campaign: Option<String>,
    /// When it was made: in force from then.
    #[serde(serialize_with = "time::at")]
    pub created_at: DateTime<Utc>,
    /// When it ends by itself (exclusive); `null`: until revoked.
    #[serde(serialize_with = "time::opt")]
    pub until: Option<DateTime<Utc>>,
    /// When it was revoked; `null` if it was not.
    #[serde(serialize_with = "time::opt")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Where it stands at the engine clock.
    pub state: DelegationState,
    /// Whether `from` signed it (only a signed delegation covers events
    /// whose answers must be signed).
    pub signed: bool,
}

impl Delegation {
    /// The output of `d` as it stands at `now`.
    pub fn new(d: &crate::delegation::Delegation, now: DateTime<Utc>) -> Self {
        Delegation {
            id: d.id,
            from: d.from.as_str().to_string(),
            to: d.to.as_str().to_string(),
            campaign: d
                .campaign_name
                .clone()
                .or_else(|| d.campaign.map(|c| c.to_string())),
            created_at: d.created_at,
            until: d.until,
            revoked_at: d.revoked_at,
            state: d.state(now),
            signed: d.signed.is_some(),
        }
    }
}

/// The delegations an agent gave or received, as the MCP tool
/// `delegations` returns them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AgentDelegations {
    /// The agent.
    pub agent: String,
    /// Its delegations, oldest first: those in force, or every one when
    /// asked for all.
    pub delegations: Vec<Delegation>,
}
