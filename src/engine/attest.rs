//! Attesting a campaign's outcome (see [`crate::trust::attest`]).

use std::collections::BTreeMap;

use serde_json::Value;
use uuid::Uuid;

use super::Engine;
use crate::audit::AuditAction;
use crate::campaign::CampaignState;
use crate::error::{Result, TMinusError};
use crate::store::StoredLink;
use crate::trust::attest::{
    campaign_digest, AnswerRecord, AttendeeOutcome, CampaignInfo, CampaignPredicate, EventOutcome,
    GroupOutcome, KeyChange, LogInfo, Statement, Subject, PREDICATE_TYPE, STATEMENT_TYPE,
};
use crate::trust::content_digest;
use crate::trust::error::TrustError;

impl Engine {
    /// An in-toto Statement v1 of campaign `id`'s outcome, checkable alone
    /// with [`crate::trust::attest::verify_statement`]. The log is verified
    /// first (the whole chain, and the campaign's events' states, answers
    /// and signatures); a log that is not intact is refused with the error
    /// [`Engine::verify_log_of`] gives. The events are read in a later read
    /// transaction, so the statement's head may be older than answers
    /// recorded in between; it is never newer.
    pub fn attest(&self, id: Uuid) -> Result<Statement> {
        let campaign = self
            .get_campaign(id)?
            .ok_or_else(|| TMinusError::CampaignNotFound {
                reference: id.to_string(),
            })?;
        let log = self.verify_log_of(None, Some(&campaign.events))?;
        self.read(|tx| {
            let signers = tx.scope_signers(id)?;
            let mut key_sets = BTreeMap::new();
            if let Some(s) = &signers {
                key_sets.insert(s.digest.clone(), s.text.clone());
            }
            let mut events = Vec::with_capacity(campaign.events.len());
            let mut passkeys = BTreeMap::new();
            let mut states = Vec::with_capacity(campaign.events.len());
            for &event_id in &campaign.events {
                let Some(event) = tx.event(event_id)? else {
                    continue;
                };
                states.push(event.state);
                let links = tx.event_audit_links(event_id)?;
                let key_history: Vec<KeyChange> = links.iter().filter_map(key_change).collect();
                let answers: Vec<AnswerRecord> = links
                    .into_iter()
                    .filter(|link| {
                        matches!(
                            link.entry.action,
                            AuditAction::Confirmed | AuditAction::Deferred | AuditAction::Declined
                        ) || is_break_glass(&link.entry)
                            || (link.entry.action == AuditAction::Cancelled
                                && link.message.is_some())
                    })
                    .map(|link| AnswerRecord {
                        seq: link.entry.seq,
                        agent: link.entry.agent.clone().map(|a| a.to_string()),
                        answer: if is_break_glass(&link.entry) {
                            "breakglass".to_string()
                        } else {
                            link.entry.action.to_string()
                        },
                        on_behalf_of: link.entry.on_behalf_of.clone().map(|a| a.to_string()),
                        at: link.entry.at,
                        detail: link.entry.detail,
                        message: link.message,
                        signature: link.signature,
                        hash: link.hash,
                    })
                    .collect();
                let named = key_history.iter().filter_map(|k| k.signers.clone()).chain(
                    answers.iter().filter_map(|a| {
                        a.detail
                            .get("signers")
                            .and_then(Value::as_str)
                            .map(String::from)
                    }),
                );
                for digest in named {
                    if key_sets.contains_key(&digest) {
                        continue;
                    }
                    let text =
                        tx.signers_by_digest(&digest)?
                            .ok_or_else(|| TrustError::SignedEntry {
                                event: event_id.to_string(),
                                reason: format!(
                                    "the key set {digest} its log names is not in the store"
                                ),
                            })?;
                    key_sets.insert(digest, text);
                }
                for answer in &answers {
                    let credential = answer
                        .detail
                        .get("key")
                        .and_then(Value::as_str)
                        .and_then(|key| key.strip_prefix(crate::trust::signers::WEBAUTHN_PREFIX));
                    if let Some(credential) = credential {
                        if !passkeys.contains_key(credential) {
                            if let Some(record) = logged_passkey(tx, credential)? {
                                passkeys.insert(credential.to_string(), record);
                            }
                        }
                    }
                }
                events.push(EventOutcome {
                    id: event.id,
                    name: event.name.clone(),
                    kind: event.kind.to_string(),
                    description: event.description.clone(),
                    state: event.state.to_string(),
                    content_digest: content_digest(&event).to_string(),
                    rules_digest: event
                        .rules_digest
                        .map(|d| format!("sha256:{}", base16ct::lower::encode_string(&d))),
                    payload: event.payload.clone(),
                    finished_at: event.finished_at,
                    fire: event.fire_policy.to_string(),
                    quorum: event.quorum,
                    quorum_spec: event.quorum_spec.to_string(),
                    groups: event
                        .groups
                        .iter()
                        .map(|g| GroupOutcome {
                            name: g.name.clone(),
                            quorum: g.quorum.to_string(),
                            needed: g.needed(),
                            members: g.members.iter().map(|m| m.to_string()).collect(),
                        })
                        .collect(),
                    attendees: event
                        .attendees
                        .iter()
                        .map(|(agent, status)| AttendeeOutcome {
                            agent: agent.to_string(),
                            status: status.word().to_string(),
                        })
                        .collect(),
                    key_history,
                    answers,
                    breakglass: event.gates.broken.clone(),
                });
            }
            let digest = campaign_digest(events.iter().map(|e| {
                (
                    e.name.as_deref().unwrap_or_default(),
                    e.content_digest.as_str(),
                )
            }));
            Ok(Statement {
                statement_type: STATEMENT_TYPE.to_string(),
                subject: vec![Subject {
                    name: format!("t-minus:campaign/{}", campaign.name),
                    digest: BTreeMap::from([("sha256".to_string(), digest)]),
                }],
                predicate_type: PREDICATE_TYPE.to_string(),
                predicate: CampaignPredicate {
                    campaign: CampaignInfo {
                        id,
                        name: campaign.name.clone(),
                        state: CampaignState::derive(states).to_string(),
                    },
                    signers: signers.as_ref().map(|s| s.digest.clone()),
                    signers_text: signers.map(|s| s.text),
                    key_sets,
                    log: LogInfo {
                        head: log.head.hex(),
                        entries: log.entries,
                    },
                    attested_at: self.now(),
                    events,
                    passkeys,
                },
            })
        })
    }
}

/// The passkey `credential` as its log enrolled it (the entries whose
/// subject is its enrolment), if the store has it.
fn logged_passkey(
    tx: &mut dyn crate::store::Tx,
    credential: &str,
) -> Result<Option<crate::trust::attest::PasskeyRecord>> {
    let Some(row) = tx.passkey(credential)? else {
        return Ok(None);
    };
    let mut record = None;
    for link in tx.event_audit_links(row.id)? {
        let e = &link.entry;
        if e.detail.get("credential").and_then(Value::as_str) != Some(credential) {
            continue;
        }
        match e.action {
            AuditAction::PersonEnrolled => {
                let text = |field: &str| {
                    e.detail
                        .get(field)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                record = Some(crate::trust::attest::PasskeyRecord {
                    agent: e.agent.as_ref().map(|a| a.to_string()).unwrap_or_default(),
                    public_key: text("public_key"),
                    algorithm: text("algorithm"),
                    enrolled_seq: e.seq,
                    revoked_seq: None,
                });
            }
            AuditAction::PersonRevoked => {
                if let Some(record) = record.as_mut() {
                    record.revoked_seq.get_or_insert(e.seq);
                }
            }
            _ => {}
        }
    }
    Ok(record)
}

/// Whether `entry` is the `fired` entry of a break-glass.
fn is_break_glass(entry: &crate::audit::AuditEntry) -> bool {
    entry.action == AuditAction::Fired && entry.detail.get("breakglass").is_some()
}

/// The key set an entry puts in force, as `verify` reads it: a `scheduled`
/// entry names the set in force from its creation (`detail.signers`, none
/// when absent), an `updated` entry that changed the keys the new one
/// (`detail.signers.new`).
fn key_change(link: &StoredLink) -> Option<KeyChange> {
    let e = &link.entry;
    let signers = match e.action {
        AuditAction::Scheduled => e
            .detail
            .get("signers")
            .and_then(Value::as_str)
            .map(String::from),
        AuditAction::Updated => e
            .detail
            .get("signers")?
            .get("new")
            .and_then(Value::as_str)
            .map(String::from),
        _ => return None,
    };
    Some(KeyChange {
        seq: e.seq,
        signers,
    })
}
