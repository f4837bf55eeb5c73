//! Attesting a campaign's outcome (see [`crate::trust::attest`]).

use std::collections::BTreeMap;

use uuid::Uuid;

use super::Engine;
use crate::audit::AuditAction;
use crate::campaign::CampaignState;
use crate::error::{Result, TMinusError};
use crate::trust::attest::{
    campaign_digest, AnswerRecord, CampaignInfo, CampaignPredicate, EventOutcome, LogInfo,
    Statement, Subject, PREDICATE_TYPE, STATEMENT_TYPE,
};
use crate::trust::content_digest;

impl Engine {
    /// An in-toto Statement v1 of campaign `id`'s outcome. The log is
    /// verified first (the whole chain, and the campaign's events' states,
    /// answers and signatures); a log that is not intact is refused with
    /// the error [`Engine::verify_log_of`] gives. The events are read in a
    /// later read transaction, so the statement's head may be older than
    /// answers recorded in between; it is never newer.
    pub fn attest(&self, id: Uuid) -> Result<Statement> {
        let campaign = self
            .get_campaign(id)?
            .ok_or_else(|| TMinusError::CampaignNotFound {
                reference: id.to_string(),
            })?;
        let log = self.verify_log_of(None, Some(&campaign.events))?;
        self.read(|tx| {
            let signers = tx.scope_signers(id)?;
            let mut events = Vec::with_capacity(campaign.events.len());
            let mut states = Vec::with_capacity(campaign.events.len());
            for &event_id in &campaign.events {
                let Some(event) = tx.event(event_id)? else {
                    continue;
                };
                states.push(event.state);
                let answers = tx
                    .event_audit_links(event_id)?
                    .into_iter()
                    .filter(|link| {
                        matches!(
                            link.entry.action,
                            AuditAction::Confirmed | AuditAction::Deferred | AuditAction::Declined
                        )
                    })
                    .map(|link| AnswerRecord {
                        seq: link.entry.seq,
                        agent: link.entry.agent.map(|a| a.to_string()),
                        on_behalf_of: link.entry.on_behalf_of.map(|a| a.to_string()),
                        answer: link.entry.action.to_string(),
                        at: link.entry.at,
                        detail: link.entry.detail,
                        message: link.message,
                        signature: link.signature,
                        hash: link.hash,
                    })
                    .collect();
                events.push(EventOutcome {
                    id: event.id,
                    name: event.name.clone(),
                    kind: event.kind.to_string(),
                    state: event.state.to_string(),
                    content_digest: content_digest(&event).to_string(),
                    payload: event.payload.clone(),
                    finished_at: event.finished_at,
                    answers,
                });
            }
            let digest = campaign_digest(events.iter().map(|e| {
                (
                    e.name.as_deref().unwrap_or_default(),
                    e.content_digest.as_str(),
                )
            }));
            Ok(Statement {
                statement_type: STATEMENT_TYPE,
                subject: vec![Subject {
                    name: format!("t-minus:campaign/{}", campaign.name),
                    digest: BTreeMap::from([("sha256".to_string(), digest)]),
                }],
                predicate_type: PREDICATE_TYPE,
                predicate: CampaignPredicate {
                    campaign: CampaignInfo {
                        id,
                        name: campaign.name.clone(),
                        state: CampaignState::derive(states).to_string(),
                    },
                    signers: signers.as_ref().map(|s| s.digest.clone()),
                    signers_text: signers.map(|s| s.text),
                    log: LogInfo {
                        head: log.head.hex(),
                        entries: log.entries,
                    },
                    attested_at: self.now(),
                    events,
                },
            })
        })
    }
}
