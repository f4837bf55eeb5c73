//! Break-glass: an agent the event lists fires it at once, whatever its
//! quorum, windows or fire policy, saying why.
//!
//! The event must be pending (a blocked event waits for its needs; a final
//! one never changes), the agent must be in its `breakglass` list (the
//! campaign's and the event's own), the reason must not be empty. Where the
//! event's answers must be signed, so must a break-glass: a signed `confirm`
//! answer message carrying the `break-glass` field
//! ([`Engine::respond_signed`]). The event fires at the moment of the
//! break-glass; its `fired` log entry names the agent and carries
//! `{"reason": "break-glass", "breakglass": {"by", "reason"}}`, the event
//! keeps it ([`crate::gate::Gates::broken`]), and notification rules on
//! `breakglass` (as well as those on `fired`) are set off.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::{check_not_final, load, settle, settled_event, Engine};
use crate::agent::AgentId;
use crate::audit::AuditAction;
use crate::error::{Result, TMinusError};
use crate::event::TMinusEvent;
use crate::gate::BreakGlass;
use crate::state::EventState;
use crate::store::Tx;

impl Engine {
    /// Breaks the glass of event `id` as `agent`, for `reason`: see the
    /// module documentation. Refused with
    /// [`TMinusError::BreakGlassReason`] (an empty reason),
    /// [`TMinusError::BreakGlassRefused`] (an agent not listed),
    /// [`TMinusError::BreakGlassBlocked`], a final event's refusal, or
    /// [`crate::trust::TrustError::Unsigned`] where answers must be signed.
    pub fn break_glass(&mut self, id: Uuid, agent: &AgentId, reason: &str) -> Result<TMinusEvent> {
        agent.validate()?;
        check_reason(reason)?;
        let now = self.now();
        self.write_refusable(|tx| {
            let mut event = settled_event(tx, id, now)?;
            if let Err(refusal) = check_break_glass(&event, agent) {
                return Ok(Err(refusal));
            }
            if super::signed::in_force(tx, &event)?.is_some() {
                return Ok(Err(crate::trust::TrustError::Unsigned {
                    event: event.label(),
                    agent: agent.to_string(),
                }
                .into()));
            }
            fire(tx, &mut event, agent, reason, now, None)?;
            Ok(Ok(event))
        })
    }
}

/// Refuses an empty (or blank) reason, or one longer than
/// [`super::MAX_REASON_BYTES`].
pub(crate) fn check_reason(reason: &str) -> Result<()> {
    if reason.trim().is_empty() {
        return Err(TMinusError::BreakGlassReason);
    }
    super::check_reason("break-glass reason", reason)
}

/// Whether `agent` may break the glass of `event` now.
pub(crate) fn check_break_glass(event: &TMinusEvent, agent: &AgentId) -> Result<()> {
    check_not_final(event)?;
    if event.state == EventState::Blocked {
        return Err(TMinusError::BreakGlassBlocked {
            event: event.label(),
        });
    }
    if !event.gates.breakglass.contains(agent) {
        return Err(TMinusError::BreakGlassRefused {
            agent: agent.clone(),
            event: event.label(),
            allowed: event.gates.breakglass.clone(),
        });
    }
    Ok(())
}

/// Fires `event` at `now` by `agent`'s break-glass, records it (with the
/// signed message, for a signed one) and settles the events that need it.
pub(crate) fn fire(
    tx: &mut dyn Tx,
    event: &mut TMinusEvent,
    agent: &AgentId,
    reason: &str,
    now: DateTime<Utc>,
    signed: Option<super::signed::Signed>,
) -> Result<()> {
    event.state = EventState::Fired;
    event.finished_at = Some(now);
    event.gates.broken = Some(BreakGlass {
        by: agent.clone(),
        reason: reason.to_string(),
        at: now,
    });
    tx.update_event(event)?;
    let mut detail = json!({
        "reason": BREAK_GLASS,
        "breakglass": { "by": agent, "reason": reason },
        "confirmed": event.confirmed_count(),
        "quorum": event.quorum,
        "set": crate::trust::record::set_of(
            event,
            &["state", "finished_at", "gates", "fire_time"],
        ),
    });
    if let Some(signed) = &signed {
        super::signed::signed_detail(&mut detail, signed);
    }
    let answer = signed.map(|s| s.answer);
    let entry = settle::acted(event.id, now, agent, AuditAction::Fired, detail, answer);
    settle::append(tx, entry)?;
    let dependents = tx.dependents(event.id)?;
    settle(tx, dependents, now)?;
    *event = load(tx, event.id)?;
    Ok(())
}

/// The reason of a `fired` entry written by a break-glass.
pub const BREAK_GLASS: &str = "break-glass";
