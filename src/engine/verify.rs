//! Verifying the tamper-evident audit log.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::Engine;
use crate::audit::AuditAction;
use crate::error::Result;
use crate::event::TMinusEvent;
use crate::state::{EventState, ResponseStatus};
use crate::store::{EventFilter, StoredLink, Tx};
use crate::trust::chain::{ChainHash, ChainLink, ChainVerifier};
use crate::trust::message::{Answer, AnswerMessage};
use crate::trust::sign::{verify_signature, SshSignature};
use crate::trust::signers::{digest_of_text, Signers};
use crate::trust::TrustError;

/// Entries read per store round trip while verifying.
const BATCH: usize = 10_000;

/// An intact audit log: what [`Engine::verify_log`] checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogVerification {
    /// How many entries were checked.
    pub entries: u64,
    /// How many events' states, answers and signatures were checked.
    pub events: u64,
    /// How many signed answers were verified.
    pub signatures: u64,
    /// The hash of the last entry (64 zeros for an empty log): keep it to
    /// prove later, with `since`, that the log was only appended to.
    pub head: ChainHash,
}

impl Engine {
    /// Verifies the whole store: see [`Engine::verify_log_of`].
    pub fn verify_log(&self, since: Option<ChainHash>) -> Result<LogVerification> {
        self.verify_log_of(since, None)
    }

    /// Recomputes the audit chain of the whole store in commit order, in one
    /// read transaction, reading the log once (its entries are kept, grouped
    /// by event, for the later checks). With `since` (a head printed
    /// earlier), also requires that head to be in the chain. Then, for every
    /// event (or only the events in `scope`), checks its stored state and
    /// answers against its log, and every signed answer's signature against
    /// the key set its log says was in force. Fails with
    /// [`TrustError::ChainBroken`] or [`TrustError::ChainColumn`] at the first
    /// entry that disagrees, [`TrustError::HeadNotFound`],
    /// [`TrustError::StateMismatch`] naming the event and attendee, or
    /// [`TrustError::SignedEntry`] naming the event and entry.
    ///
    /// The chain is always checked whole: an entry's hash covers every entry
    /// before it, whatever event they belong to.
    pub fn verify_log_of(
        &self,
        since: Option<ChainHash>,
        scope: Option<&[Uuid]>,
    ) -> Result<LogVerification> {
        let mut tx = self.store().read()?;
        let mut verifier = ChainVerifier::new();
        if let Some(head) = since {
            verifier = verifier.since(head);
        }
        let wanted: Option<HashSet<Uuid>> = scope.map(|ids| ids.iter().copied().collect());
        // The chain pass keeps each event's entries for the later checks, so
        // the log is read once, not once more per event.
        let mut logs: HashMap<Uuid, Vec<StoredLink>> = HashMap::new();
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
                if wanted
                    .as_ref()
                    .is_none_or(|w| w.contains(&link.entry.event))
                {
                    // The links are checked; the later checks need the
                    // entry and its signed answer only.
                    let kept = StoredLink {
                        prev: None,
                        hash: None,
                        ..link
                    };
                    logs.entry(kept.entry.event).or_default().push(kept);
                }
            }
        }
        let entries = verifier.len();
        let head = verifier.finish()?;
        let mut keys = KeySets::default();
        let mut events = 0;
        let mut signatures = 0;
        match scope {
            None => tx.scan_events(EventFilter::All, &mut |listed| {
                let log = logs.get(&listed.event.id).map_or(&[][..], Vec::as_slice);
                check_state(&listed.event, log)?;
                events += 1;
                Ok(())
            })?,
            Some(ids) => {
                for id in ids {
                    if let Some(event) = tx.event(*id)? {
                        let log = logs.get(id).map_or(&[][..], Vec::as_slice);
                        check_state(&event, log)?;
                        events += 1;
                    }
                }
            }
        }
        // Signed answers are checked for every event that has a log, rows
        // removed from the store (`apply` removing an unfinished event)
        // included.
        let mut ids: Vec<&Uuid> = logs.keys().collect();
        ids.sort();
        for id in ids {
            signatures += check_signatures(&mut *tx, *id, &logs[id], &mut keys)?;
        }
        Ok(LogVerification {
            entries,
            events,
            signatures,
            head,
        })
    }
}

/// Key sets read while verifying, by digest.
#[derive(Default)]
struct KeySets(HashMap<String, Signers>);

impl KeySets {
    /// The key set named `digest`, read from the store once; it must hash to
    /// its name.
    fn get(&mut self, tx: &mut dyn Tx, event: Uuid, seq: i64, digest: &str) -> Result<&Signers> {
        if !self.0.contains_key(digest) {
            let broken = |reason: String| TrustError::SignedEntry {
                event: event.to_string(),
                reason: format!("entry seq {seq}: {reason}"),
            };
            let text = tx.signers_by_digest(digest)?.ok_or_else(|| {
                broken(format!("the key set {digest} in force is not in the store"))
            })?;
            if digest_of_text(&text) != digest {
                return Err(broken(format!(
                    "the stored key set {digest} does not hash to its digest (it was edited)"
                ))
                .into());
            }
            let signers = Signers::parse_allowed_signers(&text, digest)?;
            self.0.insert(digest.to_string(), signers);
        }
        Ok(&self.0[digest])
    }
}

/// Checks the answers in event `id`'s log against the key sets its log says
/// were in force: an answer made while a set was in force must carry a
/// message and signature that verify with one of the set's keys for the
/// answering agent, and the message must name this event, agent and
/// answer; an answer made while none was in force must carry none. Returns
/// how many signatures were verified.
fn check_signatures(
    tx: &mut dyn Tx,
    id: Uuid,
    log: &[StoredLink],
    keys: &mut KeySets,
) -> Result<u64> {
    let mut in_force: Option<String> = None;
    let mut verified = 0;
    for link in log {
        let e = &link.entry;
        let broken = |reason: String| TrustError::SignedEntry {
            event: id.to_string(),
            reason: format!("entry seq {} ({}): {reason}", e.seq, e.action),
        };
        match e.action {
            AuditAction::Scheduled => {
                in_force = e
                    .detail
                    .get("signers")
                    .and_then(|s| s.as_str())
                    .map(String::from);
            }
            AuditAction::Updated => {
                if let Some(change) = e.detail.get("signers") {
                    in_force = change.get("new").and_then(|s| s.as_str()).map(String::from);
                }
            }
            AuditAction::Confirmed | AuditAction::Deferred | AuditAction::Declined => {}
            _ => continue,
        }
        if !matches!(
            e.action,
            AuditAction::Confirmed | AuditAction::Deferred | AuditAction::Declined
        ) {
            continue;
        }
        let (digest, message, signature) = match (&in_force, &link.message, &link.signature) {
            (None, None, None) => continue,
            (Some(digest), Some(message), Some(signature)) => (digest, message, signature),
            (Some(digest), _, _) => {
                return Err(broken(format!(
                    "the answer is not signed, but the key set {digest} was in force"
                ))
                .into())
            }
            (None, _, _) => {
                return Err(broken(
                    "the answer carries a signature, but no key set was in force".into(),
                )
                .into())
            }
        };
        let parsed = AnswerMessage::parse(message.as_bytes())
            .map_err(|err| broken(format!("its signed message is not canonical: {err}")))?;
        let answered = match parsed.answer() {
            Answer::Confirm => AuditAction::Confirmed,
            Answer::Defer(_) => AuditAction::Deferred,
            Answer::Decline { .. } => AuditAction::Declined,
        };
        if parsed.event() != id || Some(parsed.agent()) != e.agent.as_ref() || answered != e.action
        {
            return Err(broken(format!(
                "its signed message is agent {} answering {} to event {}, not this entry",
                parsed.agent(),
                parsed.answer(),
                parsed.event()
            ))
            .into());
        }
        let signers = keys.get(tx, id, e.seq, digest)?;
        let sig = SshSignature::parse(signature)
            .map_err(|err| broken(format!("its signature cannot be read: {err}")))?;
        verify_signature(
            signers,
            parsed.agent(),
            message.as_bytes(),
            &sig,
            parsed.time(),
        )
        .map_err(|err| broken(format!("its signature does not verify: {err}")))?;
        verified += 1;
    }
    Ok(verified)
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
fn check_state(event: &TMinusEvent, entries: &[StoredLink]) -> std::result::Result<(), TrustError> {
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
        if !entries.iter().any(|link| link.entry.action == action) {
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
        for e in entries.iter().map(|link| &link.entry) {
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
