//! The data a renderer shows: an event with the names it mentions already
//! resolved, so rendering looks nothing up.

use crate::store::ListedEvent;
use crate::{AgentId, TMinusEvent};

/// An event with the names its views show.
#[derive(Debug, Clone, PartialEq)]
pub struct EventView<'a> {
    /// The event with its attendees.
    pub event: &'a TMinusEvent,
    /// Its campaign's name (`None` for a standalone event).
    pub campaign: Option<String>,
    /// What a blocked event needs, each by name (or short id); empty for
    /// every other state.
    pub needs: Vec<String>,
    /// Attendees whose standing answer a delegate gave: (attendee,
    /// delegate), shown as `DELEGATE for ATTENDEE`; empty where the log was
    /// not read.
    pub answered_by: Vec<(AgentId, AgentId)>,
}

impl<'a> EventView<'a> {
    /// A view of `event` in campaign `campaign` with the names of its needs.
    pub fn new(event: &'a TMinusEvent, campaign: Option<String>, needs: Vec<String>) -> Self {
        EventView {
            event,
            campaign,
            needs,
            answered_by: Vec::new(),
        }
    }

    /// The view with the delegates who gave standing answers:
    /// (attendee, delegate) pairs.
    pub fn with_answered_by(mut self, answered_by: Vec<(AgentId, AgentId)>) -> Self {
        self.answered_by = answered_by;
        self
    }

    /// The delegate who gave `attendee`'s standing answer, if one did.
    pub fn delegate_of(&self, attendee: &AgentId) -> Option<&AgentId> {
        self.answered_by
            .iter()
            .find(|(a, _)| a == attendee)
            .map(|(_, d)| d)
    }

    /// `campaign/name` for a campaign event, the name of a named standalone
    /// event, the kind otherwise.
    pub fn label(&self) -> String {
        label(self.campaign.as_deref(), self.event)
    }
}

impl<'a> From<&'a ListedEvent> for EventView<'a> {
    fn from(listed: &'a ListedEvent) -> Self {
        EventView {
            event: &listed.event,
            campaign: listed.campaign.clone(),
            needs: listed.needs.clone(),
            answered_by: Vec::new(),
        }
    }
}

/// `campaign/name` for an event named in campaign `campaign`, the name of a
/// named standalone event (`schedule --name`), the kind otherwise.
pub fn label(campaign: Option<&str>, event: &TMinusEvent) -> String {
    match (campaign, &event.name) {
        (Some(c), Some(n)) => format!("{c}/{n}"),
        (None, Some(n)) => n.clone(),
        _ => event.kind.to_string(),
    }
}
