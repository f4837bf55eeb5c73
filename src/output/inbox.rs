//! What waits for one agent.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::event::Event;

/// The events waiting for an agent's answer, soonest deadline first (the
/// MCP `inbox` tool; `inbox --json` prints the `events` array alone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Inbox {
    /// The agent.
    pub agent: String,
    /// Its events.
    pub events: Vec<Event>,
}
