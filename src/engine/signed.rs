//! Signed answers: which keys may sign for an event, and answers checked
//! against them.
//!
//! A campaign's key set is in force for all its events; a standalone event
//! may have its own (`schedule --signers`). When a set is in force, every
//! answer to the event must be signed ([`Engine::respond_signed`]) and an
//! unsigned one ([`Engine::respond`]) is refused. A signed answer is
//! accepted only when, in this order:
//!
//! 1. its message parses in the canonical form, carries none of the
//!    fields the engine does not accept yet, has a reason of at most
//!    [`super::MAX_REASON_BYTES`], and its signature is an armored `sshsig`
//!    signature;
//! 2. its time is at most [`MAX_MESSAGE_AGE`] before and at most
//!    [`MAX_MESSAGE_LEAD`] after the engine clock;
//! 3. the event exists and has a key set in force;
//! 4. the signature verifies with a key the set allows for the message's
//!    agent at the message's time, in the `t-minus` namespace;
//! 5. the message names the event's current content digest;
//! 6. the answer itself is allowed (attendee, before the deadline, not
//!    final, within `max_defer`); a `cancel` needs only an event that is not
//!    final, from any agent the key set has a key for;
//! 7. its nonce was never accepted before;
//! 8. its time is not before that of the agent's last signed answer
//!    accepted for the event.
//!
//! Messages of both versions are read; the fields of version 2 that name a
//! delegation (`on-behalf-of`) or a passkey are refused as
//! [`TrustError::Unsupported`] until the engine supports them. A `confirm`
//! carrying `break-glass` is a signed break-glass (see
//! [`Engine::break_glass`]): in step 6 the agent must be in the event's
//! break-glass list instead of attending it, and the event fires at once.
//!
//! A refusal writes nothing but the settlement every operation makes.
//! An accepted answer's log entry keeps the message and signature (both are
//! covered by the entry's chain hash) and names the key's fingerprint and
//! the key set's digest in its detail.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use super::{check_response, found, settled_event, Engine, Response};
use crate::agent::AgentId;
use crate::delegation::Delegation;
use crate::duration::format_duration;
use crate::error::{Result, TMinusError};
use crate::event::TMinusEvent;
use crate::store::{SignedAnswer, StoredSigners, Tx};
use crate::trust::digest::content_digest;
use crate::trust::grant::DelegationMessage;
use crate::trust::message::{Answer, AnswerMessage};
use crate::trust::sign::{verify_signature, SigningKey, SshSignature};
use crate::trust::signers::Signers;
use crate::trust::TrustError;

/// How long after it was signed an answer is still accepted.
pub const MAX_MESSAGE_AGE: Duration = Duration::minutes(5);

/// How far ahead of the engine clock a signed answer's time may be.
pub const MAX_MESSAGE_LEAD: Duration = Duration::minutes(1);

impl Engine {
    /// The key set in force for event `id` (its campaign's, or a standalone
    /// event's own), or `None` when its answers need no signature.
    pub fn signers_of(&self, id: Uuid) -> Result<Option<Signers>> {
        self.read(|tx| {
            let event = found(tx.event(id)?, id)?;
            match in_force(tx, &event)? {
                Some(stored) => parse_stored(&stored).map(Some),
                None => Ok(None),
            }
        })
    }

    /// The message `agent` signs to give `answer` to event `id` now: bound to
    /// the event's current content digest, at the engine clock, with a fresh
    /// nonce. It checks nothing else; the answer is checked when submitted.
    pub fn answer_message(
        &self,
        id: Uuid,
        agent: &AgentId,
        answer: Answer,
    ) -> Result<AnswerMessage> {
        agent.validate()?;
        let event = found(self.get_event(id)?, id)?;
        Ok(AnswerMessage::new(
            &event,
            agent.clone(),
            answer,
            self.now(),
        )?)
    }

    /// Records a signed answer: `message` is the canonical answer message
    /// (as [`AnswerMessage::to_bytes`] renders it) and `signature` its
    /// armored `sshsig` signature in the `t-minus` namespace, made by a key
    /// the event's signers allow for the message's agent. See the module
    /// documentation for every check and its order; each refusal is a
    /// [`TrustError`] (or the refusal [`Engine::respond`] would give) and
    /// records nothing.
    pub fn respond_signed(&mut self, message: &[u8], signature: &str) -> Result<TMinusEvent> {
        let parsed = AnswerMessage::parse(message)?;
        check_supported(&parsed)?;
        let sig = SshSignature::parse(signature)?;
        if let Some(reason) = parsed.answer().reason() {
            let field = match parsed.answer() {
                Answer::Cancel { .. } => "cancel reason",
                _ => "decline reason",
            };
            super::check_reason(field, reason)?;
        }
        let now = self.now();
        check_time(parsed.time(), now)?;
        let agent = parsed.agent().clone();
        let id = parsed.event();
        self.write_refusable(|tx| {
            let mut event = settled_event(tx, id, now)?;
            let Some(stored) = in_force(tx, &event)? else {
                return Ok(Err(TrustError::NoSigners {
                    event: event.label(),
                }
                .into()));
            };
            let signers = parse_stored(&stored)?;
            let key = match verify_signature(&signers, &agent, message, &sig, parsed.time()) {
                Ok(entry) => entry.key.fingerprint(Default::default()).to_string(),
                Err(refusal) => return Ok(Err(refusal.into())),
            };
            let current = content_digest(&event);
            if current != parsed.digest() {
                return Ok(Err(TrustError::StaleDigest {
                    event: event.label(),
                    signed: parsed.digest(),
                    current,
                }
                .into()));
            }
            if let Some(reason) = parsed.break_glass_reason() {
                if let Err(refusal) = super::breakglass::check_break_glass(&event, &agent) {
                    return Ok(Err(refusal));
                }
                if let Err(refusal) = super::breakglass::check_reason(reason) {
                    return Ok(Err(refusal));
                }
            }
            let delegation = match parsed.principal() {
                Some(principal) => {
                    match signed_delegation(tx, &event, &signers, principal, &agent, now)? {
                        Ok(id) => Some((principal, id)),
                        Err(refusal) => return Ok(Err(refusal)),
                    }
                }
                None => None,
            };
            let answerer = parsed.principal().unwrap_or(&agent);
            let change = match Response::try_from(parsed.answer()) {
                Ok(_) if parsed.break_glass_reason().is_some() => None,
                Ok(response) => match check_response(&mut event, answerer, &response, now) {
                    Ok(change) => Some(change),
                    Err(refusal) => return Ok(Err(refusal)),
                },
                Err(()) => match super::check_not_final(&event) {
                    Ok(()) => None,
                    Err(refusal) => return Ok(Err(refusal)),
                },
            };
            if let Err(refusal) = use_once(tx, &event, &agent, &parsed, now)? {
                return Ok(Err(refusal));
            }
            let signed = Signed {
                answer: SignedAnswer {
                    message: String::from_utf8_lossy(message).into_owned(),
                    signature: signature.to_string(),
                },
                key,
                signers: Some(stored.digest),
            };
            match change {
                Some(change) => super::record_response(
                    tx,
                    event,
                    &agent,
                    delegation,
                    change,
                    now,
                    Some(signed),
                    None,
                )
                .map(Ok),
                None if parsed.break_glass_reason().is_some() => {
                    let reason = parsed.break_glass_reason().unwrap_or_default().to_string();
                    super::breakglass::fire(tx, &mut event, &agent, &reason, now, Some(signed))?;
                    Ok(Ok(event))
                }
                None => {
                    let reason = parsed.answer().reason().unwrap_or("cancelled by request");
                    super::settle::cancel_signed(tx, &mut event, now, &agent, reason, signed)?;
                    let dependents = tx.dependents(id)?;
                    super::settle(tx, dependents, now)?;
                    super::load(tx, id).map(Ok)
                }
            }
        })
    }

    /// Cancels event `id` with a cancel signed by `agent` with `key`: the
    /// message is built at the engine clock ([`Engine::answer_message`]) and
    /// submitted through [`Engine::respond_signed`], so every check applies
    /// (the event must have a key set in force, with a key for `agent`).
    pub fn cancel_with_key(
        &mut self,
        id: Uuid,
        agent: &AgentId,
        reason: Option<String>,
        key: &SigningKey,
    ) -> Result<TMinusEvent> {
        agent.validate()?;
        let (event, stored) = self.read(|tx| event_and_signers(tx, id))?;
        let Some(stored) = stored else {
            return Err(TrustError::NoSigners {
                event: event.label(),
            }
            .into());
        };
        let signers = parse_stored(&stored)?;
        let message =
            AnswerMessage::new(&event, agent.clone(), Answer::Cancel { reason }, self.now())?;
        let bytes = message.to_bytes();
        let signature = key.sign(&signers, agent, &bytes, message.time())?;
        self.respond_signed(&bytes, &signature.to_armored())
    }
}

impl Engine {
    /// Records an answer signed by a passkey: `message` is a canonical
    /// answer message v2 naming the passkey (`passkey-credential`,
    /// `passkey-origin`, `passkey-rp-id`), and `assertion` the WebAuthn
    /// assertion whose challenge is the message's SHA-256 (see
    /// [`crate::trust::webauthn`]). Accepted when, in this order: the
    /// message is canonical, a confirm, defer or decline of the agent
    /// itself (no delegation, break-glass or cancel), within the time
    /// window; the credential is enrolled for the message's agent and not
    /// revoked; the assertion checks out with its public key; where a key
    /// set is in force, it pins this passkey for the agent; the message
    /// names the current content digest; the answer is allowed; the nonce
    /// is new and the time not before the agent's last signed answer. The
    /// entry keeps the message and the assertion (its canonical JSON) and
    /// names the passkey (`detail.key`: `webauthn:CREDENTIAL`).
    pub fn respond_passkey(
        &mut self,
        message: &[u8],
        assertion: &crate::trust::webauthn::Assertion,
    ) -> Result<TMinusEvent> {
        use crate::people::PeopleError;
        use crate::trust::webauthn::{
            answer_challenge, from_b64url, verify_assertion, CoseKey, Party,
        };
        let parsed = AnswerMessage::parse(message)?;
        let Some(passkey) = parsed.passkey_fields().cloned() else {
            return Err(PeopleError::Invalid {
                what: "answer",
                reason: "the message names no passkey (`passkey-credential:`)".into(),
            }
            .into());
        };
        let what = if parsed.principal().is_some() {
            Some("a delegated answer signed by a passkey")
        } else if parsed.break_glass_reason().is_some() {
            Some("a break-glass signed by a passkey")
        } else if matches!(parsed.answer(), Answer::Cancel { .. }) {
            Some("a cancel signed by a passkey")
        } else {
            None
        };
        if let Some(what) = what {
            return Err(TrustError::Unsupported { what }.into());
        }
        if let Some(reason) = parsed.answer().reason() {
            super::check_reason("decline reason", reason)?;
        }
        let now = self.now();
        check_time(parsed.time(), now)?;
        let agent = parsed.agent().clone();
        let id = parsed.event();
        let signature = assertion.to_json();
        self.write_refusable(|tx| {
            let mut event = settled_event(tx, id, now)?;
            let Some(enrolled) = tx.passkey(&passkey.credential)? else {
                return Ok(Err(PeopleError::UnknownPasskey {
                    credential: passkey.credential.clone(),
                }
                .into()));
            };
            if let Some(at) = enrolled.revoked_at {
                return Ok(Err(PeopleError::Revoked {
                    credential: passkey.credential.clone(),
                    at,
                }
                .into()));
            }
            let invalid = |reason: String| -> TMinusError {
                PeopleError::Invalid {
                    what: "answer",
                    reason,
                }
                .into()
            };
            if enrolled.agent != agent.as_str() {
                return Ok(Err(invalid(format!(
                    "the passkey is enrolled for agent {}, not {agent}",
                    enrolled.agent
                ))));
            }
            let key = match from_b64url(&enrolled.public_key, "the stored public key")
                .and_then(|bytes| CoseKey::parse(&bytes))
            {
                Ok(key) => key,
                Err(reason) => return Ok(Err(invalid(reason))),
            };
            let party = Party {
                origin: &passkey.origin,
                rp_id: &passkey.rp_id,
            };
            if let Err(reason) =
                verify_assertion(assertion, &answer_challenge(message), &party, &key)
            {
                return Ok(Err(invalid(reason)));
            }
            let stored = in_force(tx, &event)?;
            if let Some(stored) = &stored {
                let signers = parse_stored(stored)?;
                if !signers.pins_passkey(agent.as_str(), &passkey.credential) {
                    return Ok(Err(PeopleError::NotPinned {
                        event: event.label(),
                        agent: agent.to_string(),
                        credential: passkey.credential.clone(),
                    }
                    .into()));
                }
            }
            let current = content_digest(&event);
            if current != parsed.digest() {
                return Ok(Err(TrustError::StaleDigest {
                    event: event.label(),
                    signed: parsed.digest(),
                    current,
                }
                .into()));
            }
            let Ok(response) = Response::try_from(parsed.answer()) else {
                return Ok(Err(TrustError::Unsupported {
                    what: "a cancel signed by a passkey",
                }
                .into()));
            };
            let change = match check_response(&mut event, &agent, &response, now) {
                Ok(change) => change,
                Err(refusal) => return Ok(Err(refusal)),
            };
            if let Err(refusal) = use_once(tx, &event, &agent, &parsed, now)? {
                return Ok(Err(refusal));
            }
            let signed = Signed {
                answer: SignedAnswer {
                    message: String::from_utf8_lossy(message).into_owned(),
                    signature: signature.clone(),
                },
                key: format!(
                    "{}{}",
                    crate::trust::signers::WEBAUTHN_PREFIX,
                    passkey.credential
                ),
                signers: stored.map(|s| s.digest),
            };
            super::record_response(tx, event, &agent, None, change, now, Some(signed), None).map(Ok)
        })
    }
}

/// Refuses the parts of the message format the engine does not accept yet.
fn check_supported(message: &AnswerMessage) -> std::result::Result<(), TrustError> {
    let what = if message.principal().is_some() && matches!(message.answer(), Answer::Cancel { .. })
    {
        "a delegated cancel (`on-behalf-of:` with `answer: cancel`)"
    } else if message.principal().is_some() && message.break_glass_reason().is_some() {
        "a delegated break-glass (`on-behalf-of:` with `break-glass:`)"
    } else if message.break_glass_reason().is_some() && !matches!(message.answer(), Answer::Confirm)
    {
        "a break-glass field on an answer other than `confirm`"
    } else if message.passkey_fields().is_some() {
        "an answer signed by a passkey (`passkey-…:`) with an SSH signature; passkey answers come with their WebAuthn assertion (`Engine::respond_passkey`)"
    } else {
        return Ok(());
    };
    Err(TrustError::Unsupported { what })
}

/// The id of a delegation in force that lets `to` answer for `from` on
/// `event` and that `from` signed with a key `signers` (the event's key set)
/// allows for `from` at the delegation's time; the inner `Err` is the
/// refusal: no delegation in force, or none signed so.
fn signed_delegation(
    tx: &mut dyn Tx,
    event: &TMinusEvent,
    signers: &Signers,
    from: &AgentId,
    to: &AgentId,
    now: DateTime<Utc>,
) -> Result<std::result::Result<Uuid, TMinusError>> {
    let covering = match super::delegations::in_force(tx, event, from, to, now)? {
        Ok(covering) => covering,
        Err(refusal) => return Ok(Err(refusal)),
    };
    for delegation in covering {
        let Some(signed) = &delegation.signed else {
            continue;
        };
        let Ok(message) = DelegationMessage::parse(signed.message.as_bytes()) else {
            continue;
        };
        let Ok(sig) = SshSignature::parse(&signed.signature) else {
            continue;
        };
        if verify_signature(signers, from, signed.message.as_bytes(), &sig, message.time).is_ok() {
            return Ok(Ok(delegation.id));
        }
    }
    Ok(Err(crate::delegation::DelegationError::Unsigned {
        to: to.to_string(),
        from: from.to_string(),
        event: event.label(),
    }
    .into()))
}

impl Engine {
    /// Makes a delegation from `from` to `to` (see [`Engine::delegate`])
    /// signed as `from` with `key`: the delegation message
    /// ([`DelegationMessage`]) is built at the engine clock and submitted
    /// through [`Engine::delegate_signed`]. Through the ssh-agent, the key
    /// is one that the campaign's key set allows for `from` (so `--campaign`
    /// is needed there); a key file signs as it is.
    pub fn delegate_with_key(
        &mut self,
        from: &AgentId,
        to: &AgentId,
        until: Option<DateTime<Utc>>,
        campaign: Option<&str>,
        key: &SigningKey,
    ) -> Result<Delegation> {
        from.validate()?;
        to.validate()?;
        let (campaign, signers) = self.read(|tx| match campaign {
            Some(reference) => {
                let id = super::resolve::campaign_ref(tx, reference)?;
                let signers = match tx.scope_signers(id)? {
                    Some(stored) => parse_stored(&stored)?,
                    None => Signers::default(),
                };
                Ok((Some(id), signers))
            }
            None => Ok((None, Signers::default())),
        })?;
        let message = DelegationMessage {
            from: from.clone(),
            to: to.clone(),
            campaign,
            until,
            time: self.now(),
            nonce: Uuid::new_v4(),
        };
        let bytes = message.to_bytes();
        let signature = key.sign(&signers, from, &bytes, message.time)?;
        self.delegate_signed(&bytes, &signature.to_armored())
    }

    /// Records a delegation signed by its FROM agent: `message` is a
    /// canonical [`DelegationMessage`] and `signature` its armored `sshsig`
    /// signature in the `t-minus` namespace. Accepted when the message
    /// reads, was signed at most [`MAX_MESSAGE_AGE`] before (and at most
    /// [`MAX_MESSAGE_LEAD`] after) the engine clock, the signature verifies
    /// with the key it carries, its nonce is new, and, when it names a
    /// campaign with a key set, that set allows the key for FROM. Which key
    /// sets trust the key is decided again at each answer made under it
    /// (see [`crate::delegation`]).
    pub fn delegate_signed(&mut self, message: &[u8], signature: &str) -> Result<Delegation> {
        let parsed = DelegationMessage::parse(message)?;
        let sig = SshSignature::parse(signature)?;
        let now = self.now();
        check_time(parsed.time, now)?;
        let key = ssh_key::PublicKey::from(sig.sshsig().public_key().clone());
        key.verify(crate::trust::NAMESPACE, message, sig.sshsig())
            .map_err(|_| TrustError::BadSignature {
                agent: parsed.from.to_string(),
            })?;
        let campaign = parsed.campaign.map(|id| id.to_string());
        if let Some(id) = parsed.campaign {
            let stored = self.read(|tx| tx.scope_signers(id))?;
            if let Some(stored) = stored {
                let signers = parse_stored(&stored)?;
                verify_signature(&signers, &parsed.from, message, &sig, parsed.time)?;
            }
        }
        self.make_delegation(
            &parsed.from,
            &parsed.to,
            parsed.until,
            campaign.as_deref(),
            Some((
                SignedAnswer {
                    message: String::from_utf8_lossy(message).into_owned(),
                    signature: signature.to_string(),
                },
                parsed.nonce,
            )),
        )
    }
}

/// Uses up the nonce of `parsed`, a signed answer of `agent` to `event`,
/// unless it was used before; refuses an answer whose message time is
/// earlier than the agent's last accepted signed answer to the event (so a
/// withdrawn answer cannot come back). The outer error is the store's.
fn use_once(
    tx: &mut dyn Tx,
    event: &TMinusEvent,
    agent: &AgentId,
    parsed: &AnswerMessage,
    now: DateTime<Utc>,
) -> Result<std::result::Result<(), TMinusError>> {
    let id = event.id;
    if !tx.use_nonce(parsed.nonce(), id, now)? {
        return Ok(Err(TrustError::NonceReused {
            nonce: parsed.nonce(),
        }
        .into()));
    }
    if let Some(last) = last_signed_time(tx, id, agent)? {
        if parsed.time() < last {
            return Ok(Err(TrustError::AnswerOrder {
                event: event.label(),
                agent: agent.to_string(),
                time: parsed.time(),
                last,
            }
            .into()));
        }
    }
    Ok(Ok(()))
}

/// The time of `agent`'s last signed answer accepted for event `id` (the
/// latest message time among its signed entries), if any.
fn last_signed_time(tx: &mut dyn Tx, id: Uuid, agent: &AgentId) -> Result<Option<DateTime<Utc>>> {
    let mut last = None;
    for link in tx.event_audit_links(id)? {
        if link.entry.agent.as_ref() != Some(agent) {
            continue;
        }
        let Some(message) = link.message else {
            continue;
        };
        if let Ok(parsed) = AnswerMessage::parse(message.as_bytes()) {
            if parsed.agent() == agent {
                last = last.max(Some(parsed.time()));
            }
        }
    }
    Ok(last)
}

impl Engine {
    /// Breaks the glass of event `id` as `agent`, signed with `key` when the
    /// event's answers must be signed (a `confirm` answer message with the
    /// `break-glass` field, submitted through [`Engine::respond_signed`])
    /// and unsigned otherwise ([`Engine::break_glass`]).
    pub fn break_glass_with_key(
        &mut self,
        id: Uuid,
        agent: &AgentId,
        reason: &str,
        key: &SigningKey,
    ) -> Result<TMinusEvent> {
        agent.validate()?;
        super::breakglass::check_reason(reason)?;
        let (event, stored) = self.read(|tx| event_and_signers(tx, id))?;
        let Some(stored) = stored else {
            return self.break_glass(id, agent, reason);
        };
        let signers = parse_stored(&stored)?;
        let message = AnswerMessage::new(&event, agent.clone(), Answer::Confirm, self.now())?
            .break_glass(reason.to_string())?;
        let bytes = message.to_bytes();
        let signature = key.sign(&signers, agent, &bytes, message.time())?;
        self.respond_signed(&bytes, &signature.to_armored())
    }

    /// Records `agent`'s answer to event `id`, signed with `key` when the
    /// event requires signed answers and unsigned otherwise: the front ends'
    /// way to answer with a key at hand. Signing builds the message at the
    /// engine clock ([`Engine::answer_message`]) and submits it through
    /// [`Engine::respond_signed`], so every check applies.
    pub fn respond_with_key(
        &mut self,
        id: Uuid,
        agent: &AgentId,
        response: Response,
        key: &SigningKey,
    ) -> Result<TMinusEvent> {
        self.respond_with_key_for(id, agent, None, response, key)
    }

    /// [`Engine::respond_with_key`] for `principal` under a delegation
    /// when given: unsigned through [`Engine::respond_for`], or signed as a
    /// message whose `on-behalf-of:` names `principal`, signed by `agent`.
    pub fn respond_with_key_for(
        &mut self,
        id: Uuid,
        agent: &AgentId,
        principal: Option<&AgentId>,
        response: Response,
        key: &SigningKey,
    ) -> Result<TMinusEvent> {
        agent.validate()?;
        let (event, stored) = self.read(|tx| event_and_signers(tx, id))?;
        let Some(stored) = stored else {
            return match principal {
                Some(principal) => self.respond_for(id, agent, principal, response),
                None => self.respond(id, agent, response),
            };
        };
        let signers = parse_stored(&stored)?;
        let mut message =
            AnswerMessage::new(&event, agent.clone(), (&response).into(), self.now())?;
        if let Some(principal) = principal {
            message = message.on_behalf_of(principal.clone())?;
        }
        let bytes = message.to_bytes();
        let signature = key.sign(&signers, agent, &bytes, message.time())?;
        self.respond_signed(&bytes, &signature.to_armored())
    }
}

impl TryFrom<&Answer> for Response {
    type Error = ();
    /// The response an answer gives; a cancel is not a response.
    fn try_from(answer: &Answer) -> std::result::Result<Self, ()> {
        match answer {
            Answer::Confirm => Ok(Response::Confirm),
            Answer::Defer(by) => Ok(Response::Defer(*by)),
            Answer::Decline { reason } => Ok(Response::Decline(reason.clone())),
            Answer::Cancel { .. } => Err(()),
        }
    }
}

impl From<&Response> for Answer {
    fn from(response: &Response) -> Self {
        match response {
            Response::Confirm => Answer::Confirm,
            Response::Defer(by) => Answer::Defer(*by),
            Response::Decline(reason) => Answer::Decline {
                reason: reason.clone(),
            },
        }
    }
}

/// A signed answer on its way into the log.
pub(crate) struct Signed {
    /// The message and signature, kept in the entry.
    pub(crate) answer: SignedAnswer,
    /// The fingerprint of the key that signed.
    pub(crate) key: String,
    /// The digest of the key set in force (none for a passkey answer to
    /// an event without signers).
    pub(crate) signers: Option<String>,
}

/// The key set in force for `event`: its campaign's, or its own.
pub(crate) fn in_force(tx: &mut dyn Tx, event: &TMinusEvent) -> Result<Option<StoredSigners>> {
    tx.scope_signers(event.campaign.unwrap_or(event.id))
}

/// Reads a stored key set.
pub(crate) fn parse_stored(stored: &StoredSigners) -> Result<Signers> {
    Ok(Signers::parse_allowed_signers(
        &stored.text,
        &format!("signers {}", stored.digest),
    )?)
}

/// The key set as stored: its canonical text and the digest naming it.
pub(crate) fn stored(signers: &Signers) -> StoredSigners {
    let text = signers.to_allowed_signers();
    StoredSigners {
        digest: crate::trust::signers::digest_of_text(&text),
        text,
    }
}

/// Refuses a message signed more than [`MAX_MESSAGE_AGE`] before or more
/// than [`MAX_MESSAGE_LEAD`] after `now`.
fn check_time(time: DateTime<Utc>, now: DateTime<Utc>) -> std::result::Result<(), TMinusError> {
    let refuse = |skew: String, limit: &'static str| {
        Err(TrustError::MessageTime {
            time,
            now,
            skew,
            limit,
        }
        .into())
    };
    if now - time > MAX_MESSAGE_AGE {
        return refuse(
            format!("{} before", format_duration(now - time)),
            "answers are accepted for 5 minutes after they are signed",
        );
    }
    if time - now > MAX_MESSAGE_LEAD {
        return refuse(
            format!("{} after", format_duration(time - now)),
            "answers signed more than 1 minute ahead of the engine clock are refused",
        );
    }
    Ok(())
}

/// The audit detail fields of a signed answer.
pub(crate) fn signed_detail(detail: &mut serde_json::Value, signed: &Signed) {
    detail["key"] = json!(signed.key);
    if let Some(signers) = &signed.signers {
        detail["signers"] = json!(signers);
    }
}

/// Event `id` and the key set in force for it, if any.
fn event_and_signers(tx: &mut dyn Tx, id: Uuid) -> Result<(TMinusEvent, Option<StoredSigners>)> {
    let event = found(tx.event(id)?, id)?;
    let stored = in_force(tx, &event)?;
    Ok((event, stored))
}
