//! Delegations: made, listed, revoked, and checked when an agent answers
//! for another. Making and revoking one is recorded in the audit log with
//! the delegation's id as its subject (`delegated`, `undelegated`); an
//! answer given under one names the agent answered for in its entry
//! (`on_behalf_of`).

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::settle::{acted, append};
use super::Engine;
use crate::agent::AgentId;
use crate::audit::AuditAction;
use crate::delegation::{Delegation, DelegationError, DelegationState};
use crate::error::{Result, TMinusError};
use crate::event::TMinusEvent;
use crate::store::{SignedAnswer, Tx};
use crate::time_spec::format_time;

/// Appends a delegation's audit entry, by its FROM agent.
fn audit_delegation(
    tx: &mut dyn Tx,
    delegation: &Delegation,
    now: DateTime<Utc>,
    action: AuditAction,
    detail: serde_json::Value,
    signed: Option<SignedAnswer>,
) -> Result<()> {
    let entry = acted(delegation.id, now, &delegation.from, action, detail, signed);
    append(tx, entry)
}

impl Engine {
    /// Lets `to` answer for `from` from now until `until` (exclusive;
    /// `None`: until revoked), for the events of campaign `campaign` (a
    /// reference [`Engine::resolve_campaign`] reads) or every event. Records
    /// a `delegated` entry. Refused when `from` and `to` are the same agent
    /// or `until` is not after now.
    ///
    /// The delegation is unsigned: it covers only events whose answers need
    /// no signature (see [`crate::delegation`]).
    pub fn delegate(
        &mut self,
        from: &AgentId,
        to: &AgentId,
        until: Option<DateTime<Utc>>,
        campaign: Option<&str>,
    ) -> Result<Delegation> {
        self.make_delegation(from, to, until, campaign, None)
    }

    /// [`Engine::delegate`], with the delegation's signed message and
    /// signature and the message's nonce when there is one (checked by the
    /// caller but for the nonce, refused here when used before).
    pub(crate) fn make_delegation(
        &mut self,
        from: &AgentId,
        to: &AgentId,
        until: Option<DateTime<Utc>>,
        campaign: Option<&str>,
        signed: Option<(SignedAnswer, Uuid)>,
    ) -> Result<Delegation> {
        from.validate()?;
        to.validate()?;
        if from == to {
            return Err(DelegationError::ToItself {
                agent: from.to_string(),
            }
            .into());
        }
        let now = self.now();
        if let Some(until) = until {
            if until <= now {
                return Err(DelegationError::UntilPassed { until, now }.into());
            }
        }
        let id = Uuid::new_v4();
        let (signed, nonce) = match signed {
            Some((signed, nonce)) => (Some(signed), Some(nonce)),
            None => (None, None),
        };
        self.write_refusable(|tx| {
            let (campaign_id, campaign_name) = match campaign {
                Some(reference) => {
                    let cid = match super::resolve::campaign_ref(tx, reference) {
                        Ok(cid) => cid,
                        Err(refusal) => return Ok(Err(refusal)),
                    };
                    let name = tx.campaign(cid)?.map(|c| c.name);
                    (Some(cid), name)
                }
                None => (None, None),
            };
            if let Some(nonce) = nonce {
                if !tx.use_nonce(nonce, id, now)? {
                    return Ok(Err(crate::trust::TrustError::NonceReused { nonce }.into()));
                }
            }
            let delegation = Delegation {
                signed: signed
                    .as_ref()
                    .map(|s| crate::delegation::SignedDelegation {
                        message: s.message.clone(),
                        signature: s.signature.clone(),
                    }),
                id,
                from: from.clone(),
                to: to.clone(),
                campaign: campaign_id,
                campaign_name,
                created_at: now,
                until,
                revoked_at: None,
            };
            tx.insert_delegation(&delegation)?;
            let detail = json!({
                "to": to.as_str(),
                "campaign": delegation.campaign_name,
                "campaign_id": delegation.campaign.map(|c| c.to_string()),
                "until": until.map(format_time),
                "signed": signed.is_some(),
            });
            audit_delegation(
                tx,
                &delegation,
                now,
                AuditAction::Delegated,
                detail,
                signed.clone(),
            )?;
            Ok(Ok(delegation))
        })
    }

    /// Every delegation, oldest first, whatever its state.
    pub fn delegations(&self) -> Result<Vec<Delegation>> {
        self.read(|tx| tx.delegations())
    }

    /// The delegation named by `reference`: its full id, or a unique prefix
    /// of at least 4 hex digits.
    pub fn resolve_delegation(&self, reference: &str) -> Result<Delegation> {
        let not_found = || DelegationError::NotFound {
            reference: reference.to_string(),
        };
        let wanted = reference.trim().to_ascii_lowercase();
        if wanted.len() < 4 {
            return Err(not_found().into());
        }
        let mut matching: Vec<Delegation> = self
            .delegations()?
            .into_iter()
            .filter(|d| d.id.to_string().starts_with(&wanted))
            .collect();
        match matching.len() {
            0 => Err(not_found().into()),
            1 => Ok(matching.remove(0)),
            _ => Err(TMinusError::AmbiguousReference {
                value: reference.to_string(),
                candidates: matching.iter().map(|d| d.id.to_string()).collect(),
            }),
        }
    }

    /// Revokes the delegation named by `reference` (see
    /// [`Engine::resolve_delegation`]) and records an `undelegated` entry.
    /// Answers given under it stay. Refused when it is already revoked.
    pub fn undelegate(&mut self, reference: &str) -> Result<Delegation> {
        let delegation = self.resolve_delegation(reference)?;
        let now = self.now();
        self.write_refusable(|tx| {
            if !tx.revoke_delegation(delegation.id, now)? {
                return Ok(Err(DelegationError::AlreadyRevoked {
                    id: delegation.id,
                    at: delegation.revoked_at.unwrap_or(now),
                }
                .into()));
            }
            let revoked = Delegation {
                revoked_at: Some(now),
                ..delegation.clone()
            };
            let detail = json!({ "to": revoked.to.as_str() });
            audit_delegation(tx, &revoked, now, AuditAction::Undelegated, detail, None)?;
            Ok(Ok(revoked))
        })
    }
}

/// The delegations in force at `now` that let `to` answer for `from` on
/// `event`; refused with [`DelegationError::NotInForce`] (saying why) when
/// there is none.
pub(crate) fn in_force(
    tx: &mut dyn Tx,
    event: &TMinusEvent,
    from: &AgentId,
    to: &AgentId,
    now: DateTime<Utc>,
) -> Result<std::result::Result<Vec<Delegation>, TMinusError>> {
    let all = tx.delegations_between(from, to)?;
    let covering: Vec<Delegation> = all
        .iter()
        .filter(|d| d.covers(from, to, event.campaign, now))
        .cloned()
        .collect();
    if !covering.is_empty() {
        return Ok(Ok(covering));
    }
    // Every reason, one per delegation, in a fixed order: those for another
    // campaign, then the expired ones, then the revoked ones.
    let mut reasons: Vec<(u8, String)> = all
        .iter()
        .map(|d| match d.state(now) {
            DelegationState::Active => (
                0,
                format!(
                    "the delegation {} covers campaign `{}` only",
                    crate::event::short_id(d.id),
                    d.campaign_name
                        .clone()
                        .or(d.campaign.map(|c| c.to_string()))
                        .unwrap_or_default()
                ),
            ),
            DelegationState::Expired => (
                1,
                format!(
                    "the delegation {} expired at {}",
                    crate::event::short_id(d.id),
                    d.until.map(format_time).unwrap_or_default()
                ),
            ),
            DelegationState::Revoked => (
                2,
                format!(
                    "the delegation {} was revoked at {}",
                    crate::event::short_id(d.id),
                    d.revoked_at.map(format_time).unwrap_or_default()
                ),
            ),
        })
        .collect();
    reasons.sort();
    let why = if reasons.is_empty() {
        format!("{from} has not delegated to {to}")
    } else {
        let texts: Vec<String> = reasons.into_iter().map(|(_, text)| text).collect();
        texts.join("; ")
    };
    Ok(Err(DelegationError::NotInForce {
        to: to.to_string(),
        from: from.to_string(),
        event: event.label(),
        why,
    }
    .into()))
}
