//! An agent's inbox: the unfinished events that wait for its answer.

use crate::agent::AgentId;
use crate::error::Result;
use crate::event::TMinusEvent;

use super::Engine;

impl Engine {
    /// The events that wait for `agent`: it attends them, they are `pending`
    /// or `blocked`, and it has neither confirmed nor declined (a deferral
    /// still waits for its confirmation). Soonest fire time first, unknown
    /// fire times last. One index range over the agent's open events:
    /// O(log n + k).
    pub fn inbox(&mut self, agent: &AgentId) -> Result<Vec<TMinusEvent>> {
        agent.validate()?;
        let mut events = self.read(|tx| tx.inbox(agent))?;
        events.retain(|e| e.response_of(agent).is_some_and(|s| s.may_still_confirm()));
        Ok(events)
    }

    /// [`Engine::inbox`] with the events `agent` already answered that are
    /// not final: every unfinished event it attends.
    pub fn inbox_all(&mut self, agent: &AgentId) -> Result<Vec<TMinusEvent>> {
        agent.validate()?;
        self.read(|tx| tx.inbox(agent))
    }
}
