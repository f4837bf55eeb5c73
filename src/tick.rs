//! What a tick reports.

use uuid::Uuid;

use crate::audit::{AuditAction, AuditEntry};

/// The transitions a tick recorded or claimed, each reported exactly once
/// across every process that ticks the store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TickResult {
    /// Events that fired.
    pub fired: Vec<Uuid>,
    /// Events that were missed.
    pub missed: Vec<Uuid>,
    /// Events that were cancelled (a need failed, or a user cancelled them).
    pub cancelled: Vec<Uuid>,
    /// Events that opened (blocked → pending).
    pub opened: Vec<Uuid>,
    /// The same transitions as audit entries, in the order they happened.
    pub transitions: Vec<AuditEntry>,
    /// The escalation steps applied (`escalated` entries: the agents each
    /// added to its event), in the order they applied.
    pub escalations: Vec<AuditEntry>,
}

impl TickResult {
    /// Builds a result from claimed entries: transitions and escalation
    /// steps.
    pub fn from_entries(entries: Vec<AuditEntry>) -> Self {
        let mut result = TickResult::default();
        let (escalations, entries): (Vec<AuditEntry>, Vec<AuditEntry>) = entries
            .into_iter()
            .partition(|e| e.action == AuditAction::Escalated);
        result.escalations = escalations;
        for entry in &entries {
            let list = match entry.action {
                AuditAction::Fired => &mut result.fired,
                AuditAction::Missed => &mut result.missed,
                AuditAction::Cancelled => &mut result.cancelled,
                AuditAction::Opened => &mut result.opened,
                _ => continue,
            };
            list.push(entry.event);
        }
        result.transitions = entries;
        result
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.transitions.is_empty() && self.escalations.is_empty()
    }
}
