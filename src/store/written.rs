//! What a write transaction knows of the rows it wrote itself, shared by
//! both stores.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::row::{self, status_columns, EventRow};
use super::NeedState;
use crate::event::TMinusEvent;
use crate::state::EventState;

/// What a write transaction knows of the rows it wrote itself. It holds the
/// store's write lock, so no one else changes them: reading them back
/// (settling the events an `apply` just created, one by one) is a query
/// each that tells nothing new. Every statement that changes these rows in
/// another way forgets what it touches.
#[derive(Default)]
pub(super) struct Written {
    /// Whether to keep whole events in [`Written::events`]: worth their
    /// memory (about a kilobyte an event) where a read is a round trip.
    keep_events: bool,
    /// Events inserted or updated here, as they read back (when kept).
    pub(super) events: HashMap<Uuid, TMinusEvent>,
    /// The state of the events inserted here, as they read back.
    states: HashMap<Uuid, NeedState>,
    /// Events inserted here: every edge to them was added here, in order.
    pub(super) needs: HashMap<Uuid, Vec<Uuid>>,
    /// Events inserted here that have no notification rules.
    pub(super) no_rules: HashSet<Uuid>,
    /// The audit chain's head (the newest entry's hash), once read.
    pub(super) audit_head: Option<Option<String>>,
    /// The next `campaign_pos` of each campaign, once read.
    pub(super) next_pos: HashMap<Uuid, i64>,
}

impl Written {
    /// Knowledge that also keeps whole events, for [`Written::event`].
    pub(super) fn keeping_events() -> Self {
        Written {
            keep_events: true,
            ..Written::default()
        }
    }

    /// Forgets everything (a deletion may have cascaded anywhere).
    pub(super) fn clear(&mut self) {
        *self = Written {
            keep_events: self.keep_events,
            ..Written::default()
        };
    }

    /// Remembers an event this transaction inserted, with no needs and no
    /// notification rules yet.
    pub(super) fn inserted(&mut self, e: &TMinusEvent) {
        if let Some(stored) = as_stored(e) {
            self.states.insert(e.id, state_of(&stored));
            if self.keep_events {
                self.events.insert(e.id, stored);
            }
        }
        self.needs.insert(e.id, Vec::new());
        self.no_rules.insert(e.id);
    }

    /// Remembers an event loaded with its row locked (when events are
    /// kept): no other writer changes it until this transaction ends.
    pub(super) fn loaded(&mut self, e: &TMinusEvent) {
        if self.keep_events {
            self.events.insert(e.id, e.clone());
        }
    }

    /// An event inserted or updated here, as it reads back, when kept.
    pub(super) fn event(&self, id: Uuid) -> Option<TMinusEvent> {
        self.events.get(&id).cloned()
    }

    /// The state of an event inserted here, when known.
    pub(super) fn state(&self, id: Uuid) -> Option<EventState> {
        self.states.get(&id).map(|n| n.state)
    }

    /// Takes note of an update of an event's own row (its attendees did not
    /// change); the update may have moved it to another campaign.
    pub(super) fn updated(&mut self, e: &TMinusEvent) {
        self.next_pos.clear();
        if let Entry::Occupied(mut known) = self.states.entry(e.id) {
            match as_stored(e) {
                Some(stored) => {
                    known.insert(state_of(&stored));
                }
                None => {
                    known.remove();
                }
            }
        }
        if let Some(known) = self.events.remove(&e.id) {
            if let Some(mut stored) = as_stored(e) {
                stored.attendees = known.attendees;
                self.events.insert(e.id, stored);
            }
        }
    }

    /// Takes note of a new edge `from → to`.
    pub(super) fn edge_added(&mut self, from: Uuid, to: Uuid) {
        if let Some(needs) = self.needs.get_mut(&to) {
            if !needs.contains(&from) {
                needs.push(from);
            }
        }
    }

    /// Takes note of a removed edge `from → to`.
    pub(super) fn edge_removed(&mut self, from: Uuid, to: Uuid) {
        if let Some(needs) = self.needs.get_mut(&to) {
            needs.retain(|n| *n != from);
        }
    }

    /// The needs of an event inserted here, when every one of them is known.
    pub(super) fn needs_of(&self, id: Uuid) -> Option<Vec<NeedState>> {
        self.needs
            .get(&id)?
            .iter()
            .map(|n| self.states.get(n).cloned())
            .collect()
    }
}

/// What the needs of other events read of `e`.
fn state_of(e: &TMinusEvent) -> NeedState {
    NeedState {
        id: e.id,
        state: e.state,
        finished_at: e.finished_at,
    }
}

/// An event as it reads back from its row: times in whole milliseconds,
/// attendees' statuses as stored.
pub(crate) fn as_stored(e: &TMinusEvent) -> Option<TMinusEvent> {
    let mut event = EventRow::from_event(e).into_event().ok()?;
    event.rules_digest = e.rules_digest;
    event.attendees = e
        .attendees
        .iter()
        .map(|(agent, status)| {
            let (word, defer) = status_columns(*status);
            row::response(word, defer).map(|s| (agent.clone(), s))
        })
        .collect::<std::result::Result<_, _>>()
        .ok()?;
    Some(event)
}
