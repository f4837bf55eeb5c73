//! The countdown event.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::agent::AgentId;
use crate::kind::EventKind;
use crate::policy::{FirePolicy, Quorum, QuorumGroup};
use crate::state::{EventState, ResponseStatus};

/// A countdown event: scheduled at `scheduled_at`, it collects responses
/// until its fire time (`scheduled_at − t_minus`) and fires when `quorum`
/// attendees have confirmed (see [`FirePolicy`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TMinusEvent {
    /// Assigned on creation; never changes.
    pub id: Uuid,
    /// What the event is.
    pub kind: EventKind,
    /// The scheduled time, including every deferral. For an event whose time
    /// is relative to its start and that has not started yet (a blocked
    /// campaign event), this is only an estimate: see [`TMinusEvent::at_known`].
    pub scheduled_at: DateTime<Utc>,
    /// The countdown length: confirmations are due `t_minus` before `scheduled_at`.
    pub t_minus: Duration,
    /// Who scheduled it.
    pub organizer: AgentId,
    /// The attendees in order, each with its response. For an event with
    /// groups: every member of every group once, in order of first mention.
    pub attendees: Vec<(AgentId, ResponseStatus)>,
    /// Confirmations needed, resolved from [`TMinusEvent::quorum_spec`]; for
    /// an event with groups, the total the groups need.
    pub quorum: usize,
    /// The quorum groups, each with its members and quorum; empty for a
    /// plain event, which is one unnamed group of all its attendees needing
    /// `quorum`.
    pub groups: Vec<QuorumGroup>,
    /// Arbitrary JSON, returned untouched.
    pub payload: serde_json::Value,
    /// The stored state.
    pub state: EventState,
    /// The campaign it belongs to, if any.
    pub campaign: Option<Uuid>,
    /// Its name within the campaign (unique there).
    pub name: Option<String>,
    /// The quorum as spelled (`2`, `all`, `majority`); for an event with
    /// groups, the total count (each group keeps its own spelling).
    pub quorum_spec: Quorum,
    /// When it fires once quorum holds.
    pub fire_policy: FirePolicy,
    /// Cap on the total of all deferrals, if any.
    pub max_defer: Option<Duration>,
    /// The total of all deferrals so far.
    pub deferred: Duration,
    /// For a time relative to the event's start: the offset (`+20m`).
    pub relative_at: Option<Duration>,
    /// When the event started counting: its creation (or a campaign's first
    /// apply) for an event without needs, the moment its last need fired
    /// otherwise. `None` while blocked.
    pub started_at: Option<DateTime<Utc>>,
    /// When it became final (the logical time: the confirm that completed
    /// quorum, the fire time, the cancellation).
    pub finished_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When the latest response arrived.
    pub last_response_at: Option<DateTime<Utc>>,
    /// Free text from the manifest or the organizer.
    pub description: Option<String>,
    /// Four eyes, time windows and break-glass (none by default).
    pub gates: crate::gate::Gates,
    /// The SHA-256 of its notification rules that act when it fires or is
    /// missed (`t_minus::trust::digest::rules_digest`), `None` when it has
    /// none. Part of its content digest; the store fills it in from the
    /// stored rules whenever it reads an event.
    pub rules_digest: Option<[u8; 32]>,
    /// Attendees it adds while it waits for quorum (none by default).
    pub escalation: crate::escalation::Escalation,
}

impl TMinusEvent {
    /// Whether quorum can still be met, counting the agents that the
    /// escalation steps still to come, due before the fire time, would add
    /// (see [`crate::escalation`]); without such steps, exactly
    /// [`TMinusEvent::quorum_reachable`].
    pub fn quorum_reachable_escalating(&self) -> bool {
        if self.quorum_reachable() {
            return true;
        }
        let Some(opened) = self.started_at else {
            return false;
        };
        let fire = self.fire_time();
        let coming: Vec<&crate::escalation::EscalationAdd> = self
            .escalation
            .remaining()
            .iter()
            .filter(|step| opened + step.after < fire)
            .flat_map(|step| step.add.iter())
            .collect();
        if coming.is_empty() {
            return false;
        }
        let new = |group: Option<&str>| -> usize {
            let mut seen: Vec<&AgentId> = Vec::new();
            for add in coming.iter().filter(|a| a.group.as_deref() == group) {
                for agent in &add.agents {
                    let member = match group {
                        None => self.response_of(agent).is_some(),
                        Some(name) => self
                            .groups
                            .iter()
                            .any(|g| g.name == name && g.members.contains(agent)),
                    };
                    if !member && !seen.contains(&agent) {
                        seen.push(agent);
                    }
                }
            }
            seen.len()
        };
        if self.groups.is_empty() {
            return self.confirmed_count() + self.pending_count() + new(None) >= self.quorum;
        }
        self.quorum_status().iter().all(|status| {
            status.confirmed + status.open + new(status.name.as_deref()) >= status.needed
        })
    }

    /// The fire time, `scheduled_at − t_minus`: the deadline for confirmations.
    /// See [`TMinusEvent::at_known`] for blocked relative events.
    pub fn fire_time(&self) -> DateTime<Utc> {
        self.scheduled_at - self.t_minus
    }

    /// Starts the countdown at `at` (when the event opens): records the start
    /// and, for a time relative to the start, fixes `scheduled_at` as
    /// `at + offset + deferrals`.
    pub fn start_at(&mut self, at: DateTime<Utc>) {
        self.started_at = Some(at);
        if let Some(offset) = self.relative_at {
            self.scheduled_at = at + offset + self.deferred;
        }
    }

    /// When the event next needs a look, when known: its fire time, or,
    /// for an `early` event with windows that holds its quorum, the first
    /// instant inside a window when that comes before the fire time (see
    /// [`crate::lifecycle::decide`]). Ticks pick events up by this time.
    pub fn due_at(&self) -> Option<DateTime<Utc>> {
        let fire = self.fire_deadline()?;
        if self.state == EventState::Pending
            && self.fire_policy == FirePolicy::Early
            && !self.gates.windows.is_empty()
            && self.has_quorum()
        {
            let opened = self.started_at.unwrap_or(self.created_at);
            let from = self.last_response_at.map_or(opened, |r| r.max(opened));
            if let Some(open) = crate::gate::next_open(&self.gates.windows, from) {
                return Some(open.min(fire));
            }
        }
        Some(fire)
    }

    /// When the store next has to look at it, as its row keeps it (the
    /// `fire_ms` column): the sooner of [`TMinusEvent::due_at`] and the next
    /// escalation step's due time.
    pub fn stored_due(&self) -> Option<DateTime<Utc>> {
        match (self.due_at(), self.escalation.next_due(self.started_at)) {
            (Some(fire), Some(step)) if step < fire => Some(step),
            (fire, _) => fire,
        }
    }

    /// The next escalation step of a pending event, with when it is due,
    /// while it is due before the fire time (a step due later never
    /// applies); `None` otherwise.
    pub fn next_escalation(&self) -> Option<(DateTime<Utc>, &crate::escalation::EscalationStep)> {
        if self.state != EventState::Pending {
            return None;
        }
        let due = self.escalation.next_due(self.started_at)?;
        if due >= self.fire_time() {
            return None;
        }
        Some((due, self.escalation.remaining().first()?))
    }

    /// When a pending event may fire next, at the earliest, as `status`
    /// shows it for an event with windows: now when inside a window, the
    /// next opening otherwise, when one comes no later than the fire time.
    pub fn may_fire_next(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let fire = self.fire_deadline()?;
        match self.fire_policy {
            FirePolicy::Early => {
                crate::gate::next_open(&self.gates.windows, now).filter(|open| *open <= fire)
            }
            FirePolicy::OnTime | FirePolicy::Lazy => {
                crate::gate::inside(&self.gates.windows, fire).then_some(fire)
            }
        }
    }

    /// Whether `scheduled_at` (and so the fire time) is fixed: false only for
    /// an event with a relative time that has not started yet.
    pub fn at_known(&self) -> bool {
        self.relative_at.is_none() || self.started_at.is_some()
    }

    /// The fire time when it is known.
    pub fn fire_deadline(&self) -> Option<DateTime<Utc>> {
        self.at_known().then(|| self.fire_time())
    }

    /// Whether quorum holds: every group has its quorum of confirmations
    /// (for a plain event: at least `quorum` attendees have confirmed).
    pub fn has_quorum(&self) -> bool {
        if self.groups.is_empty() {
            return self.confirmed_count() >= self.quorum;
        }
        self.quorum_status().iter().all(GroupStatus::met)
    }

    /// How many distinct attendees have confirmed.
    pub fn confirmed_count(&self) -> usize {
        self.count(|s| s == ResponseStatus::Confirmed)
    }

    /// How many attendees have not answered for good yet (pending or deferred):
    /// the ones that may still confirm.
    pub fn pending_count(&self) -> usize {
        self.count(ResponseStatus::may_still_confirm)
    }

    /// How many attendees declined.
    pub fn declined_count(&self) -> usize {
        self.count(|s| s == ResponseStatus::Declined)
    }

    /// Whether quorum can still be reached: in every group, confirmed +
    /// may-still-confirm ≥ the group's quorum.
    pub fn quorum_reachable(&self) -> bool {
        if self.groups.is_empty() {
            return self.confirmed_count() + self.pending_count() >= self.quorum;
        }
        self.quorum_status().iter().all(GroupStatus::reachable)
    }

    /// Each group's confirmations against its quorum, in the groups' order;
    /// a plain event gives one unnamed group of all its attendees.
    pub fn quorum_status(&self) -> Vec<GroupStatus> {
        if self.groups.is_empty() {
            return vec![GroupStatus {
                name: None,
                needed: self.quorum,
                size: self.attendees.len(),
                confirmed: self.confirmed_count(),
                open: self.pending_count(),
            }];
        }
        let responses: std::collections::HashMap<&AgentId, ResponseStatus> =
            self.attendees.iter().map(|(a, s)| (a, *s)).collect();
        self.groups
            .iter()
            .map(|g| {
                let (mut confirmed, mut open) = (0, 0);
                for member in &g.members {
                    match responses.get(member).copied() {
                        Some(ResponseStatus::Confirmed) => confirmed += 1,
                        Some(s) if s.may_still_confirm() => open += 1,
                        _ => {}
                    }
                }
                GroupStatus {
                    name: Some(g.name.clone()),
                    needed: g.needed(),
                    size: g.members.len(),
                    confirmed,
                    open,
                }
            })
            .collect()
    }

    /// The names of the groups `agent` belongs to, in the groups' order
    /// (empty for a plain event).
    pub fn groups_of(&self, agent: &AgentId) -> Vec<&str> {
        self.groups
            .iter()
            .filter(|g| g.members.contains(agent))
            .map(|g| g.name.as_str())
            .collect()
    }

    /// Time left until the fire time (negative once it has passed).
    pub fn time_remaining(&self, now: DateTime<Utc>) -> Duration {
        self.fire_time() - now
    }

    /// The response of `agent`, if it is an attendee.
    pub fn response_of(&self, agent: &AgentId) -> Option<ResponseStatus> {
        self.attendees
            .iter()
            .find(|(a, _)| a == agent)
            .map(|(_, s)| *s)
    }

    /// The first 8 hex digits of the id.
    pub fn short_id(&self) -> String {
        short_id(self.id)
    }

    /// The event's name in its campaign, or its short id when it has none.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.short_id())
    }

    /// A short human label: `campaign-name/event-name` is not known here, so
    /// this is the event name with the short id (`review [a1b2c3d4]`), or the
    /// kind with the short id for an unnamed event.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("{name} [{}]", self.short_id()),
            None => format!("{} [{}]", self.kind, self.short_id()),
        }
    }

    fn count(&self, pred: impl Fn(ResponseStatus) -> bool) -> usize {
        self.attendees.iter().filter(|(_, s)| pred(*s)).count()
    }
}

/// One group's standing: see [`TMinusEvent::quorum_status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStatus {
    /// The group's name; `None` for the single group of a plain event.
    pub name: Option<String>,
    /// Confirmations the group needs.
    pub needed: usize,
    /// How many members it has.
    pub size: usize,
    /// How many of its members have confirmed.
    pub confirmed: usize,
    /// How many of its members may still confirm (pending or deferred).
    pub open: usize,
}

impl GroupStatus {
    /// Whether the group has its quorum.
    pub fn met(&self) -> bool {
        self.confirmed >= self.needed
    }

    /// Whether the group can still reach its quorum.
    pub fn reachable(&self) -> bool {
        self.confirmed + self.open >= self.needed
    }
}

/// The first 8 hex digits of a UUID.
pub fn short_id(id: Uuid) -> String {
    ShortId(id).to_string()
}

/// An id's first 8 hex digits, as [`short_id`] gives them, formatted without
/// a string of its own.
#[derive(Debug, Clone, Copy)]
pub struct ShortId(pub Uuid);

impl std::fmt::Display for ShortId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut buf = [0u8; uuid::fmt::Simple::LENGTH];
        let hex = self.0.simple().encode_lower(&mut buf);
        f.write_str(&hex[..8])
    }
}
