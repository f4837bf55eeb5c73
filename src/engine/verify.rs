//! Verifying the tamper-evident audit log.

use std::collections::HashMap;

use uuid::Uuid;

use super::Engine;
use crate::audit::{AuditAction, AuditEntry};
use crate::error::Result;
use crate::event::TMinusEvent;
use crate::state::{EventState, ResponseStatus};
use crate::store::{EventFilter, StoredLink};
use crate::trust::chain::{ChainHash, ChainLink, ChainVerifier};
use crate::trust::TrustError;

/// Entries read per store round trip while verifying.
const BATCH: usize = 10_000;

/// An intact audit log: what [`Engine::verify_log`] checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogVerification {
    /// How many entries were checked.
    pub entries: u64,
    /// The hash of the last entry (64 zeros for an empty log): keep it to
    /// prove later, with `since`, that the log was only appended to.
    pub head: ChainHash,
}

impl Engine {
    /// Recomputes the audit chain of the whole store in commit order, in one
    /// read transaction, reading the log once (its entries are kept, grouped
    /// by event, for the state check). With `since` (a head
    /// printed earlier), also requires that head to be in the chain. Then
    /// checks every event's stored state and answers against its log. Fails
    /// with [`TrustError::ChainBroken`] or [`TrustError::ChainColumn`] at
    /// the first entry that disagrees, [`TrustError::HeadNotFound`], or
    /// [`TrustError::StateMismatch`] naming the event and attendee.
    pub fn verify_log(&self, since: Option<ChainHash>) -> Result<LogVerification> {
        let mut tx = self.store().read()?;
        let mut verifier = ChainVerifier::new();
        if let Some(head) = since {
            verifier = verifier.since(head);
        }
        // The chain pass keeps each event's entries for the state check,
        // so the log is read once, not once more per event.
        let mut logs: HashMap<Uuid, Vec<AuditEntry>> = HashMap::new();
        let mut after = 0;
        loop {
            let batch = tx.audit_links(after, BATCH)?;
            let Some(last) = batch.last() else { break };
            after = last.entry.seq;
            for link in batch {
                let position = verifier.len();
                let prev = parse_column(&link, position, "prev", link.prev.as_deref())?;
                let hash = parse_column(&link, position, "hash", link.hash.as_deref())?;
                verifier.push(&ChainLink {
                    entry: &link.entry,
                    message: link.message.as_deref().map(str::as_bytes),
                    signature: link.signature.as_deref(),
                    prev,
                    hash,
                })?;
                logs.entry(link.entry.event).or_default().push(link.entry);
            }
        }
        let entries = verifier.len();
        let head = verifier.finish()?;
        for event in tx.list_events(EventFilter::All)? {
            let log = logs.get(&event.id).map_or(&[][..], Vec::as_slice);
            check_state(&event, log)?;
        }
        Ok(LogVerification { entries, head })
    }
}

fn parse_column(
    link: &StoredLink,
    position: u64,
    column: &'static str,
    value: Option<&str>,
) -> std::result::Result<ChainHash, TrustError> {
    let broken = |found: String| TrustError::ChainColumn {
        position,
        seq: link.entry.seq,
        column,
        found,
    };
    match value {
        None => Err(broken("missing".into())),
        Some(text) => text
            .parse()
            .map_err(|_| broken(format!("{:?}", text.chars().take(80).collect::<String>()))),
    }
}

/// Checks that `event`'s stored state and its attendees' confirmed,
/// deferred and declined answers are what its log `entries` imply: each such
/// answer is the agent's latest answer in the log, not reset by a later
/// content change, and a final state has its transition entry.
fn check_state(event: &TMinusEvent, entries: &[AuditEntry]) -> std::result::Result<(), TrustError> {
    let mismatch = |reason: String| TrustError::StateMismatch {
        event: event.id.to_string(),
        reason,
    };
    let outcome = match event.state {
        EventState::Fired => Some(AuditAction::Fired),
        EventState::Missed => Some(AuditAction::Missed),
        EventState::Cancelled => Some(AuditAction::Cancelled),
        EventState::Pending | EventState::Blocked => None,
    };
    if let Some(action) = outcome {
        if !entries.iter().any(|e| e.action == action) {
            return Err(mismatch(format!(
                "it is stored as {} but its log has no `{action}` entry",
                event.state
            )));
        }
    }
    for (agent, status) in &event.attendees {
        let expected = match status {
            ResponseStatus::Confirmed => AuditAction::Confirmed,
            ResponseStatus::Deferred(_) => AuditAction::Deferred,
            ResponseStatus::Declined => AuditAction::Declined,
            ResponseStatus::Pending | ResponseStatus::Missed => continue,
        };
        let mut latest: Option<AuditAction> = None;
        for e in entries {
            let reset = e
                .detail
                .get("content")
                .and_then(|c| c.get("reset"))
                .and_then(|r| r.as_array())
                .is_some_and(|r| r.iter().any(|a| a.as_str() == Some(agent.as_str())));
            if reset {
                latest = None;
            } else if e.agent.as_ref() == Some(agent)
                && matches!(
                    e.action,
                    AuditAction::Confirmed | AuditAction::Deferred | AuditAction::Declined
                )
            {
                latest = Some(e.action);
            }
        }
        if latest != Some(expected) {
            let found = latest.map_or("no answer".to_string(), |a| format!("`{a}`"));
            return Err(mismatch(format!(
                "attendee {agent} is stored as {} but its log shows {found}",
                status.word()
            )));
        }
    }
    Ok(())
}
