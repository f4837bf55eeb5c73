//! People and their passkeys: invitations, enrolment, revocation (each
//! recorded in the log with the enrolment as its subject), and the
//! WebAuthn ceremonies and browser sessions the web pages keep in the
//! store.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use super::settle::{acted, append};
use super::Engine;
use crate::agent::AgentId;
use crate::audit::AuditAction;
use crate::error::Result;
use crate::people::{
    new_secret, secret_hash, Ceremony, Invitation, NewInvitation, PasskeyInfo, PeopleError,
    SessionRow, CEREMONY_LIFETIME, DEFAULT_INVITE_EXPIRY, INVITE_PREFIX, SESSION_LIFETIME,
    SESSION_PREFIX,
};
use crate::trust::webauthn::{b64url, CoseKey};

/// A session as begun: the cookie's secret (shown once) and what is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The cookie's secret (`tms_…`); only its hash is stored.
    pub secret: String,
    /// The stored session.
    pub session: SessionRow,
}

impl Engine {
    /// Invites a person to enrol a passkey for `agent`: stores the
    /// invitation (the hash of its secret) valid for `expires` (default
    /// [`DEFAULT_INVITE_EXPIRY`]) and records a `person-invited` entry.
    pub fn invite_person(
        &mut self,
        agent: &AgentId,
        expires: Option<Duration>,
    ) -> Result<NewInvitation> {
        agent.validate()?;
        let now = self.now();
        let secret = new_secret(INVITE_PREFIX)?;
        let invitation = Invitation {
            id: Uuid::new_v4(),
            agent: agent.as_str().to_string(),
            created_at: now,
            expires_at: now + expires.unwrap_or(DEFAULT_INVITE_EXPIRY),
            used_at: None,
        };
        let hash = secret_hash(&secret);
        self.write(|tx| {
            tx.insert_invite(&invitation, &hash)?;
            let detail = json!({
                "expires_at": crate::time_spec::format_time(invitation.expires_at),
            });
            append(
                tx,
                acted(
                    invitation.id,
                    now,
                    agent,
                    AuditAction::PersonInvited,
                    detail,
                    None,
                ),
            )
        })?;
        Ok(NewInvitation { invitation, secret })
    }

    /// Every invitation, oldest first (never their secrets).
    pub fn invitations(&self) -> Result<Vec<Invitation>> {
        self.read(|tx| tx.invites())
    }

    /// The invitation whose secret is `secret`, if it can still enrol a
    /// passkey: refused when unknown, used or expired.
    pub fn invitation(&self, secret: &str) -> Result<Invitation> {
        let hash = secret_hash(secret);
        let invite = self
            .read(|tx| tx.invite_by_hash(&hash))?
            .ok_or(PeopleError::UnknownInvite)?;
        if let Some(at) = invite.used_at {
            return Err(PeopleError::InviteUsed { at }.into());
        }
        if self.now() >= invite.expires_at {
            return Err(PeopleError::InviteExpired {
                at: invite.expires_at,
            }
            .into());
        }
        Ok(invite)
    }

    /// Enrols the passkey `credential` with public key `key` through the
    /// invitation whose secret is `secret`: uses the invitation up, stores
    /// the passkey bound to its agent, and records a `person-enrolled`
    /// entry with the credential id, the COSE public key and its algorithm.
    pub fn enrol_passkey(
        &mut self,
        secret: &str,
        credential: &[u8],
        key: &CoseKey,
    ) -> Result<PasskeyInfo> {
        let invite = self.invitation(secret)?;
        let now = self.now();
        let agent = AgentId::parse(&invite.agent)?;
        let passkey = PasskeyInfo {
            id: invite.id,
            credential: b64url(credential),
            agent: invite.agent.clone(),
            public_key: key.to_b64url(),
            algorithm: key.key.algorithm().to_string(),
            created_at: now,
            revoked_at: None,
        };
        self.write_refusable(|tx| {
            if tx.passkey(&passkey.credential)?.is_some() {
                return Ok(Err(PeopleError::AlreadyEnrolled {
                    credential: passkey.credential.clone(),
                }
                .into()));
            }
            if !tx.use_invite(invite.id, now)? {
                return Ok(Err(PeopleError::InviteUsed { at: now }.into()));
            }
            tx.insert_passkey(&passkey)?;
            let detail = json!({
                "credential": passkey.credential,
                "public_key": passkey.public_key,
                "algorithm": passkey.algorithm,
            });
            append(
                tx,
                acted(
                    invite.id,
                    now,
                    &agent,
                    AuditAction::PersonEnrolled,
                    detail,
                    None,
                ),
            )?;
            Ok(Ok(passkey.clone()))
        })
    }

    /// Every passkey, oldest first.
    pub fn passkeys(&self) -> Result<Vec<PasskeyInfo>> {
        self.read(|tx| tx.passkeys())
    }

    /// The passkey with credential id `credential` (base64url), if it is
    /// enrolled and not revoked.
    pub fn usable_passkey(&self, credential: &str) -> Result<PasskeyInfo> {
        let found =
            self.read(|tx| tx.passkey(credential))?
                .ok_or_else(|| PeopleError::UnknownPasskey {
                    credential: credential.to_string(),
                })?;
        if let Some(at) = found.revoked_at {
            return Err(PeopleError::Revoked {
                credential: credential.to_string(),
                at,
            }
            .into());
        }
        Ok(found)
    }

    /// Revokes the passkey named by `reference` (its credential id, or a
    /// unique prefix of at least 4 characters of its id or credential id),
    /// ends the sessions it signed in, and records a `person-revoked`
    /// entry. Refused when it is revoked already.
    pub fn revoke_passkey(&mut self, reference: &str) -> Result<PasskeyInfo> {
        let wanted = reference.trim();
        let not_found = || PeopleError::NotFound {
            reference: reference.to_string(),
        };
        if wanted.len() < 4 {
            return Err(not_found().into());
        }
        let all = self.passkeys()?;
        let mut matching: Vec<&PasskeyInfo> = all
            .iter()
            .filter(|p| {
                p.credential == wanted
                    || p.credential.starts_with(wanted)
                    || p.id.to_string().starts_with(&wanted.to_ascii_lowercase())
            })
            .collect();
        if let Some(exact) = all.iter().find(|p| p.credential == wanted) {
            matching = vec![exact];
        }
        let passkey = match matching.as_slice() {
            [] => return Err(not_found().into()),
            [one] => (*one).clone(),
            many => {
                return Err(crate::TMinusError::AmbiguousReference {
                    value: reference.to_string(),
                    candidates: many.iter().map(|p| p.credential.clone()).collect(),
                })
            }
        };
        let now = self.now();
        let agent = AgentId::parse(&passkey.agent)?;
        self.write_refusable(|tx| {
            if !tx.revoke_passkey(&passkey.credential, now)? {
                return Ok(Err(PeopleError::Revoked {
                    credential: passkey.credential.clone(),
                    at: passkey.revoked_at.unwrap_or(now),
                }
                .into()));
            }
            let detail = json!({ "credential": passkey.credential });
            append(
                tx,
                acted(
                    passkey.id,
                    now,
                    &agent,
                    AuditAction::PersonRevoked,
                    detail,
                    None,
                ),
            )?;
            Ok(Ok(PasskeyInfo {
                revoked_at: Some(now),
                ..passkey.clone()
            }))
        })
    }

    /// Begins a WebAuthn ceremony of `kind` with `challenge` (base64url),
    /// bound to `agent` and `data`, valid for [`CEREMONY_LIFETIME`].
    pub fn begin_ceremony(
        &mut self,
        kind: &str,
        challenge: String,
        agent: Option<&str>,
        data: Option<String>,
    ) -> Result<Ceremony> {
        let ceremony = Ceremony {
            id: Uuid::new_v4(),
            kind: kind.to_string(),
            challenge,
            agent: agent.map(String::from),
            data,
            expires_at: self.now() + CEREMONY_LIFETIME,
        };
        self.write(|tx| tx.insert_ceremony(&ceremony))?;
        Ok(ceremony)
    }

    /// Takes the ceremony `id` of `kind`: each is finished once (also when
    /// it fails), within [`CEREMONY_LIFETIME`] of its beginning.
    pub fn take_ceremony(&mut self, id: &str, kind: &str) -> Result<Ceremony> {
        let refused = || PeopleError::Ceremony { id: id.to_string() };
        let uuid = Uuid::parse_str(id).map_err(|_| refused())?;
        let now = self.now();
        let ceremony = self
            .write(|tx| tx.take_ceremony(uuid))?
            .ok_or_else(refused)?;
        if ceremony.kind != kind || now >= ceremony.expires_at {
            return Err(refused().into());
        }
        Ok(ceremony)
    }

    /// Begins a browser session for the person of `passkey`, for
    /// [`SESSION_LIFETIME`]: a new cookie secret and CSRF token.
    pub fn start_session(&mut self, passkey: &PasskeyInfo) -> Result<NewSession> {
        let secret = new_secret(SESSION_PREFIX)?;
        let csrf = new_secret("")?;
        let now = self.now();
        let session = SessionRow {
            hash: secret_hash(&secret),
            agent: passkey.agent.clone(),
            credential: passkey.credential.clone(),
            csrf,
            created_at: now,
            expires_at: now + SESSION_LIFETIME,
            ended_at: None,
        };
        self.write(|tx| tx.insert_session(&session))?;
        Ok(NewSession { secret, session })
    }

    /// The session whose cookie secret is `secret`, if it is in force now:
    /// not ended, not expired, its passkey not revoked.
    pub fn session(&self, secret: &str) -> Result<Option<SessionRow>> {
        let hash = secret_hash(secret);
        let now: DateTime<Utc> = self.now();
        Ok(self
            .read(|tx| tx.session_by_hash(&hash))?
            .filter(|s| now < s.expires_at))
    }

    /// Ends the session whose cookie secret is `secret` (sign-out); false
    /// when there was none in force.
    pub fn end_session(&mut self, secret: &str) -> Result<bool> {
        let hash = secret_hash(secret);
        let now = self.now();
        self.write(|tx| tx.end_session(&hash, now))
    }
}
