//! Approvals bound to content: when an update changes an event's content
//! digest, the confirmations given to the old content no longer count.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::error::Result;
use crate::event::TMinusEvent;
use crate::state::ResponseStatus;
use crate::store::Tx;
use crate::trust::{content_digest, ContentDigest};

/// Sends every `confirmed` answer of `event` back to `pending` (in the store
/// and in `event`) when its content digest is no longer `before`. Returns,
/// for the audit entry of the update, `{"old_digest", "new_digest",
/// "reset": [agents]}` when the digest changed, `None` when it did not. A
/// final event keeps its answers: they are history.
pub(crate) fn reset_if_changed(
    tx: &mut dyn Tx,
    event: &mut TMinusEvent,
    before: ContentDigest,
    now: DateTime<Utc>,
) -> Result<Option<Value>> {
    let after = content_digest(event);
    if after == before {
        return Ok(None);
    }
    let mut reset = Vec::new();
    if !event.state.is_final() {
        for (agent, status) in event.attendees.iter_mut() {
            if *status == ResponseStatus::Confirmed {
                tx.set_response(event.id, agent, ResponseStatus::Pending, now)?;
                *status = ResponseStatus::Pending;
                reset.push(agent.as_str().to_string());
            }
        }
    }
    Ok(Some(json!({
        "old_digest": before.to_string(),
        "new_digest": after.to_string(),
        "reset": reset,
    })))
}
