//! What `verify` checks of passkeys: the passkeys the log enrolled and
//! revoked (replayed from `person-enrolled` and `person-revoked` entries and
//! compared with the stored rows), and each answer signed by a passkey,
//! checked offline with the public key the log recorded.

use std::collections::HashMap;

use uuid::Uuid;

use super::verify::RowMismatch;
use crate::agent::AgentId;
use crate::audit::{AuditAction, AuditEntry};
use crate::error::Result;
use crate::people::{Invitation, PasskeyInfo};
use crate::store::Tx;
use crate::trust::message::AnswerMessage;
use crate::trust::signers::Signers;
use crate::trust::webauthn::{
    answer_challenge, from_b64url, verify_assertion, Assertion, CoseKey, Party,
};

/// A passkey as its log made it.
#[derive(Debug, Clone)]
struct Logged {
    /// The enrolment's id (the subject of its entries).
    id: Uuid,
    agent: Option<AgentId>,
    public_key: String,
    algorithm: String,
    /// The `seq` of the `person-enrolled` entry.
    enrolled: i64,
    /// The `seq` of the `person-revoked` entry, once revoked.
    revoked: Option<i64>,
}

/// An invitation as its log made it.
#[derive(Debug, Clone)]
struct LoggedInvite {
    agent: Option<AgentId>,
    expires_at: Option<String>,
    used: bool,
}

/// The passkeys a log has enrolled, by credential id, and the invitations
/// it made, by id, read in chain order.
#[derive(Debug, Default)]
pub(super) struct LoggedPasskeys {
    by_credential: HashMap<String, Logged>,
    invites: HashMap<Uuid, LoggedInvite>,
}

impl LoggedPasskeys {
    /// Takes in the next entry of the chain.
    pub(super) fn follow(&mut self, e: &AuditEntry) {
        let credential = e.detail["credential"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match e.action {
            AuditAction::PersonInvited => {
                self.invites.insert(
                    e.event,
                    LoggedInvite {
                        agent: e.agent.clone(),
                        expires_at: e.detail["expires_at"].as_str().map(String::from),
                        used: false,
                    },
                );
            }
            AuditAction::PersonEnrolled => {
                if let Some(invite) = self.invites.get_mut(&e.event) {
                    invite.used = true;
                }
                let text = |field: &str| e.detail[field].as_str().unwrap_or_default().to_string();
                self.by_credential.insert(
                    credential,
                    Logged {
                        id: e.event,
                        agent: e.agent.clone(),
                        public_key: text("public_key"),
                        algorithm: text("algorithm"),
                        enrolled: e.seq,
                        revoked: None,
                    },
                );
            }
            AuditAction::PersonRevoked => {
                if let Some(logged) = self.by_credential.get_mut(&credential) {
                    logged.revoked.get_or_insert(e.seq);
                }
            }
            _ => {}
        }
    }

    /// Every stored passkey field that disagrees with the log, and every
    /// passkey row the log does not explain (or that is gone).
    pub(super) fn compare(&self, stored: &[PasskeyInfo]) -> Vec<RowMismatch> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for row in stored {
            let mismatch =
                |field: &str, stored: serde_json::Value, logged: serde_json::Value| RowMismatch {
                    subject: "passkey",
                    id: row.id,
                    field: field.to_string(),
                    stored,
                    logged,
                };
            let Some(logged) = self.by_credential.get(&row.credential) else {
                out.push(mismatch("row", "present".into(), "absent".into()));
                continue;
            };
            seen.insert(row.credential.as_str());
            let agent = logged.agent.as_ref().map(|a| a.as_str().to_string());
            let pairs = [
                ("id", row.id.to_string(), logged.id.to_string()),
                ("agent", row.agent.clone(), agent.unwrap_or_default()),
                (
                    "public_key",
                    row.public_key.clone(),
                    logged.public_key.clone(),
                ),
                ("algorithm", row.algorithm.clone(), logged.algorithm.clone()),
            ];
            for (field, stored, logged) in pairs {
                if stored != logged {
                    out.push(mismatch(field, stored.into(), logged.into()));
                }
            }
            if row.revoked_at.is_some() != logged.revoked.is_some() {
                out.push(mismatch(
                    "revoked",
                    row.revoked_at.is_some().into(),
                    logged.revoked.is_some().into(),
                ));
            }
        }
        for (credential, logged) in &self.by_credential {
            if !seen.contains(credential.as_str()) {
                out.push(RowMismatch {
                    subject: "passkey",
                    id: logged.id,
                    field: "row".into(),
                    stored: "absent".into(),
                    logged: "present".into(),
                });
            }
        }
        out
    }

    /// Checks an answer signed by a passkey (entry `seq` of event `id`),
    /// offline: the credential was enrolled for the message's agent before
    /// the entry and not revoked before it; the stored assertion checks out
    /// with the public key the log recorded (challenge = SHA-256 of the
    /// message, the message's origin and relying party, UP and UV); where a
    /// key set was in force, it pins the credential for the agent. The
    /// refusal's reason, when it does not hold.
    pub(super) fn check_answer(
        &self,
        seq: i64,
        message: &AnswerMessage,
        bytes: &[u8],
        signature: &str,
        signers: Option<&Signers>,
    ) -> std::result::Result<(), String> {
        let Some(passkey) = message.passkey_fields() else {
            return Err("its message names no passkey".into());
        };
        let Some(logged) = self.by_credential.get(&passkey.credential) else {
            return Err(format!(
                "its passkey {} was never enrolled in the log",
                passkey.credential
            ));
        };
        if logged.enrolled > seq || logged.agent.as_ref() != Some(message.agent()) {
            return Err(format!(
                "its passkey {} was not enrolled for agent {} before the answer",
                passkey.credential,
                message.agent()
            ));
        }
        if logged.revoked.is_some_and(|revoked| revoked < seq) {
            return Err(format!(
                "its passkey {} was revoked before the answer",
                passkey.credential
            ));
        }
        let key = from_b64url(&logged.public_key, "the logged public key")
            .and_then(|b| CoseKey::parse(&b))?;
        let assertion = Assertion::parse(signature)?;
        let party = Party {
            origin: &passkey.origin,
            rp_id: &passkey.rp_id,
        };
        verify_assertion(&assertion, &answer_challenge(bytes), &party, &key)?;
        if let Some(signers) = signers {
            if !signers.pins_passkey(message.agent().as_str(), &passkey.credential) {
                return Err(format!(
                    "its passkey {} is not one the key set in force pins for {}",
                    passkey.credential,
                    message.agent()
                ));
            }
        }
        Ok(())
    }
}

impl LoggedPasskeys {
    /// Every stored invitation field (agent, expiry, used) that disagrees
    /// with the log, and every invitation row the log does not explain.
    pub(super) fn compare_invites(&self, stored: &[Invitation]) -> Vec<RowMismatch> {
        let mut out = Vec::new();
        for row in stored {
            let mismatch =
                |field: &str, stored: serde_json::Value, logged: serde_json::Value| RowMismatch {
                    subject: "invitation",
                    id: row.id,
                    field: field.to_string(),
                    stored,
                    logged,
                };
            let Some(logged) = self.invites.get(&row.id) else {
                out.push(mismatch("row", "present".into(), "absent".into()));
                continue;
            };
            let agent = logged.agent.as_ref().map(|a| a.as_str().to_string());
            if agent.as_deref() != Some(row.agent.as_str()) {
                out.push(mismatch("agent", row.agent.clone().into(), agent.into()));
            }
            let expires = crate::time_spec::format_time(row.expires_at);
            if logged.expires_at.as_deref() != Some(expires.as_str()) {
                out.push(mismatch(
                    "expires_at",
                    expires.into(),
                    logged.expires_at.clone().into(),
                ));
            }
            if row.used_at.is_some() != logged.used {
                out.push(mismatch(
                    "used",
                    row.used_at.is_some().into(),
                    logged.used.into(),
                ));
            }
        }
        out
    }
}

/// What `verify` compares with the log: the stored passkeys and invitations.
pub(super) fn stored_rows(tx: &mut dyn Tx) -> Result<(Vec<PasskeyInfo>, Vec<Invitation>)> {
    Ok((tx.passkeys()?, tx.invites()?))
}
