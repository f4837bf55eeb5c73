//! The event state machine (docs/semantics.md) as pure functions of an
//! event, its needs and the clock. The engine applies their answers inside a transaction.
//!
//! The outcome depends only on the responses and the clock, never on when a
//! tick ran: every decision carries the logical time at which it happened
//! (the confirm that completed quorum, the fire time, the moment the last
//! need fired), and that is the time recorded.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::event::TMinusEvent;
use crate::policy::FirePolicy;
use crate::state::EventState;

/// A need of an event: the event it waits for, and that event's outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NeedState {
    /// The needed event.
    pub id: Uuid,
    /// Its state.
    pub state: EventState,
    /// When it became final.
    pub finished_at: Option<DateTime<Utc>>,
}

/// What the needs of a blocked event allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeedsOutcome {
    /// Some need is not final yet.
    Wait,
    /// Every need fired; the event opens at the moment the last one fired.
    Open(DateTime<Utc>),
    /// A need missed or was cancelled; the event is cancelled at that moment.
    Cancel {
        /// The need that failed (the earliest, if several did).
        need: Uuid,
        /// When it failed.
        at: DateTime<Utc>,
        /// How it failed.
        state: EventState,
    },
}

/// Decides what the needs of a blocked event allow. Needs without a
/// recorded finish time count as finishing at `fallback`.
pub fn needs_outcome(needs: &[NeedState], fallback: DateTime<Utc>) -> NeedsOutcome {
    let failed = needs
        .iter()
        .filter(|n| matches!(n.state, EventState::Missed | EventState::Cancelled))
        .min_by_key(|n| n.finished_at.unwrap_or(fallback));
    if let Some(n) = failed {
        return NeedsOutcome::Cancel {
            need: n.id,
            at: n.finished_at.unwrap_or(fallback),
            state: n.state,
        };
    }
    if needs.iter().all(|n| n.state == EventState::Fired) {
        let at = needs
            .iter()
            .map(|n| n.finished_at.unwrap_or(fallback))
            .max()
            .unwrap_or(fallback);
        return NeedsOutcome::Open(at);
    }
    NeedsOutcome::Wait
}

/// A final state an open event reaches, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// `Fired` or `Missed`.
    pub state: EventState,
    /// The logical moment.
    pub at: DateTime<Utc>,
    /// Why, in words: `quorum reached`, `quorum not reached`, `quorum unreachable`.
    pub reason: &'static str,
}

/// Decides whether a pending event is final at `now`.
///
/// - opened after its fire time → missed at once (the deadline passed);
/// - `lazy`: a decline → missed at once; the fire time come → fired
///   (whatever the confirmations), unless the fire time lies outside every
///   window, then missed;
/// - quorum unreachable (too many declines, counting the agents that
///   escalation steps still to come before the fire time would add) →
///   missed at once;
/// - `early` and quorum holds → fired, at the moment quorum was completed,
///   or, with windows, at the first instant from then on inside a window,
///   when that comes no later than the fire time (until then it waits);
/// - the fire time has come (`now ≥ fire time`) → fired if quorum holds
///   and the fire time lies inside a window (or there are no windows),
///   missed otherwise.
///
/// Responses are accepted only before the fire time, so the responses seen
/// now are exactly those that existed at the fire time.
pub fn decide(event: &TMinusEvent, now: DateTime<Utc>) -> Option<Decision> {
    if event.state != EventState::Pending {
        return None;
    }
    let opened = event.started_at.unwrap_or(event.created_at);
    let fire = event.fire_time();
    // The fire time is the deadline for confirmations: an event that opens
    // after it (it waited on needs past its own absolute deadline) can only
    // be missed, whatever was answered while it was blocked.
    if fire < opened {
        return Some(Decision {
            state: EventState::Missed,
            at: opened,
            reason: "opened after its fire time",
        });
    }
    // Every response settles the event at once, so a decision triggered by
    // responses happened at the latest response (or at the opening, for
    // answers given while blocked).
    // An escalation step changes who may answer as a response does.
    let by_responses = event
        .last_response_at
        .max(event.escalation.applied_at)
        .map_or(opened, |r| r.max(opened));
    let windows = &event.gates.windows;
    if event.fire_policy == FirePolicy::Lazy {
        if event.declined_count() > 0 {
            return Some(Decision {
                state: EventState::Missed,
                at: by_responses,
                reason: "declined (lazy consensus)",
            });
        }
        if now < fire {
            return None;
        }
        let at = fire.max(opened);
        return Some(if crate::gate::inside(windows, fire) {
            Decision {
                state: EventState::Fired,
                at,
                reason: "no one declined (lazy consensus)",
            }
        } else {
            Decision {
                state: EventState::Missed,
                at,
                reason: "fire time outside every window",
            }
        });
    }
    if !event.quorum_reachable_escalating() {
        return Some(Decision {
            state: EventState::Missed,
            at: by_responses,
            reason: "quorum unreachable",
        });
    }
    if event.fire_policy == FirePolicy::Early && event.has_quorum() {
        match crate::gate::next_open(windows, by_responses) {
            Some(open) if open <= fire => {
                return (now >= open).then_some(Decision {
                    state: EventState::Fired,
                    at: open,
                    reason: if open > by_responses {
                        "quorum reached, window opened"
                    } else {
                        "quorum reached"
                    },
                });
            }
            // No window opens before the fire time: missed then.
            _ => {}
        }
    }
    if now >= fire {
        let at = fire.max(opened);
        return Some(if !event.has_quorum() {
            Decision {
                state: EventState::Missed,
                at,
                reason: "quorum not reached",
            }
        } else if !crate::gate::inside(windows, fire) {
            Decision {
                state: EventState::Missed,
                at,
                reason: if event.fire_policy == FirePolicy::Early {
                    "no window opened before the fire time"
                } else {
                    "fire time outside every window"
                },
            }
        } else {
            Decision {
                state: EventState::Fired,
                at,
                reason: "quorum reached",
            }
        });
    }
    None
}

/// How many confirmations an update of `stored` to the content `updated`
/// (same id, with the update's kind, description, payload, campaign and
/// name) would send back to `pending`, counting only the attendees in
/// `staying`: 0 when the digest does not change.
pub(crate) fn resets(
    stored: &TMinusEvent,
    updated: &TMinusEvent,
    staying: &[crate::agent::AgentId],
) -> usize {
    if stored.state.is_final()
        || crate::trust::content_digest(stored) == crate::trust::content_digest(updated)
    {
        return 0;
    }
    stored
        .attendees
        .iter()
        .filter(|(a, s)| *s == crate::state::ResponseStatus::Confirmed && staying.contains(a))
        .count()
}

/// Whether a change of fire policy from `old` to `new` changes what an
/// answer means: into or out of `lazy`, where a confirmation is not needed
/// and a decline vetoes.
pub fn lazy_changed(old: crate::policy::FirePolicy, new: crate::policy::FirePolicy) -> bool {
    use crate::policy::FirePolicy::Lazy;
    (old == Lazy) != (new == Lazy)
}

/// The questions the state machine answers about one event.
impl TMinusEvent {
    /// Whether the event has fired by `now`: it is stored as fired, or it is
    /// pending and what it holds at `now` makes it fire (quorum reached
    /// under `early`, or the fire time come with quorum under `on-time`)
    /// though no operation has recorded that yet.
    pub fn is_fired(&self, now: DateTime<Utc>) -> bool {
        match self.state {
            EventState::Fired => true,
            EventState::Pending => decide(self, now).is_some_and(|d| d.state == EventState::Fired),
            _ => false,
        }
    }

    /// Whether the event is missed by `now`: it is stored as missed, or it
    /// is pending and its fire time has passed without quorum (or declines
    /// made quorum unreachable) though no operation has recorded that yet.
    pub fn is_missed(&self, now: DateTime<Utc>) -> bool {
        match self.state {
            EventState::Missed => true,
            EventState::Pending => decide(self, now).is_some_and(|d| d.state == EventState::Missed),
            _ => false,
        }
    }
}
