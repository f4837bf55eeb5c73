//! Chat links and answers given from a chat.
//!
//! Linking a chat account to an agent (and unlinking it) is recorded in the
//! audit log with the link's id as its subject (`chat-linked`,
//! `chat-unlinked`; subject kind `chat-link`): the entry's detail names the
//! chat, the account and the agent, and `verify` checks the stored links
//! against the log.
//!
//! An answer given from a chat ([`Engine::answer_from_chat`]) is the linked
//! agent's answer, recorded like any other, and its entry says where it came
//! from: `detail.via` is `{"chat": "slack", "user": "U…", "request":
//! "sha256:…"}`, the digest of the exact signed request (for Slack,
//! `v0:{timestamp}:{body}`). The request itself is not kept: its body holds
//! Slack's `response_url`, which works like a password. The digest also
//! refuses a replay: it is used once, like a signed answer's nonce.

use std::time::Duration as StdDuration;

use chrono::Duration;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::settle::append;
use super::{check_response, record_response, settled_event, signed, Engine, Response};
use crate::agent::AgentId;
use crate::audit::AuditAction;
use crate::chat::{Chat, ChatLink, ChatLinkError};
use crate::error::Result;
use crate::event::TMinusEvent;
use crate::notification::{spec::DEFAULT_CHAT_DEFER, Hook, WebhookFormat};
use crate::store::{NewAuditEntry, Tx};

/// An answer pressed in a chat: the buttons of a Slack message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatAnswer {
    /// Confirm.
    Confirm,
    /// Defer, by the duration the event's chat rule sets (see
    /// [`Engine::chat_defer`]).
    Defer,
    /// Decline, without a reason.
    Decline,
}

/// A signed chat request as the log keeps it: the SHA-256 of its exact
/// signed bytes, as `sha256:` and 64 lowercase hex digits.
pub fn request_digest(signed_bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        base16ct::lower::encode_string(&Sha256::digest(signed_bytes))
    )
}

/// The nonce a request digest uses up: the first 16 bytes of the
/// SHA-256 of its text, as a UUID.
fn request_nonce(digest: &str) -> Uuid {
    let bytes = Sha256::digest(digest.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&bytes[..16]);
    Uuid::from_bytes(first)
}

/// Appends a chat link's entry (no agent acted: the operator who has the
/// store did).
fn audit_link(
    tx: &mut dyn Tx,
    link: &ChatLink,
    now: chrono::DateTime<chrono::Utc>,
    action: AuditAction,
) -> Result<()> {
    append(
        tx,
        NewAuditEntry {
            event: link.id,
            at: now,
            recorded_at: now,
            agent: None,
            on_behalf_of: None,
            action,
            detail: json!({
                "chat": link.chat.as_str(),
                "user": link.user,
                "agent": link.agent.as_str(),
            }),
            signed: None,
        },
    )
}

impl Engine {
    /// Links account `user` of `chat` to `agent`: its answers from that
    /// chat are `agent`'s. Records a `chat-linked` entry. Refused when the
    /// account is linked already (to any agent).
    pub fn link_chat(&mut self, agent: &AgentId, chat: Chat, user: &str) -> Result<ChatLink> {
        agent.validate()?;
        chat.check_user(user)?;
        let now = self.now();
        self.write_refusable(|tx| {
            if let Some(existing) = tx.chat_link(chat, user)? {
                return Ok(Err(ChatLinkError::AlreadyLinked {
                    chat: chat.as_str(),
                    user: user.to_string(),
                    agent: existing.agent.to_string(),
                }
                .into()));
            }
            let link = ChatLink {
                id: Uuid::new_v4(),
                chat,
                user: user.to_string(),
                agent: agent.clone(),
                linked_at: now,
            };
            tx.insert_chat_link(&link)?;
            audit_link(tx, &link, now, AuditAction::ChatLinked)?;
            Ok(Ok(link))
        })
    }

    /// Removes the link of account `user` of `chat` (when `agent` is given,
    /// it must be the agent linked). Records a `chat-unlinked` entry.
    pub fn unlink_chat(
        &mut self,
        agent: Option<&AgentId>,
        chat: Chat,
        user: &str,
    ) -> Result<ChatLink> {
        chat.check_user(user)?;
        let now = self.now();
        self.write_refusable(|tx| {
            let Some(link) = tx.chat_link(chat, user)? else {
                return Ok(Err(ChatLinkError::NotLinked {
                    chat: chat.as_str(),
                    user: user.to_string(),
                }
                .into()));
            };
            if let Some(agent) = agent {
                if &link.agent != agent {
                    return Ok(Err(ChatLinkError::OtherAgent {
                        chat: chat.as_str(),
                        user: user.to_string(),
                        agent: agent.to_string(),
                        linked: link.agent.to_string(),
                    }
                    .into()));
                }
            }
            tx.delete_chat_link(link.id)?;
            audit_link(tx, &link, now, AuditAction::ChatUnlinked)?;
            Ok(Ok(link))
        })
    }

    /// Every chat link, oldest first.
    pub fn chat_links(&self) -> Result<Vec<ChatLink>> {
        self.read(|tx| tx.chat_links())
    }

    /// The link of account `user` of `chat`, if it is linked.
    pub fn chat_link(&self, chat: Chat, user: &str) -> Result<Option<ChatLink>> {
        self.read(|tx| tx.chat_link(chat, user))
    }

    /// How long a Defer pressed in `chat` defers event `id`: the `defer` of
    /// the event's first `format: slack` webhook rule that sets one, else
    /// [`DEFAULT_CHAT_DEFER`] (15 minutes).
    pub fn chat_defer(&self, id: Uuid) -> Result<StdDuration> {
        self.read(|tx| chat_defer_in(tx, id))
    }

    /// Records `answer`, pressed by account `user` of `chat`, to event `id`
    /// as the agent that account is linked to, and returns the event as
    /// settled with that agent. `request` is the digest of the signed chat
    /// request ([`request_digest`]): the entry keeps it (`detail.via`), and
    /// a request whose digest was used before is refused
    /// ([`ChatLinkError::Replayed`]). Refused with
    /// [`ChatLinkError::NotLinked`] for an account that is not linked, and
    /// like any unsigned answer when the event's answers must be signed.
    pub fn answer_from_chat(
        &mut self,
        id: Uuid,
        chat: Chat,
        user: &str,
        answer: ChatAnswer,
        request: &str,
    ) -> Result<(TMinusEvent, AgentId)> {
        chat.check_user(user)?;
        let now = self.now();
        let nonce = request_nonce(request);
        self.write_refusable(|tx| {
            let Some(link) = tx.chat_link(chat, user)? else {
                return Ok(Err(ChatLinkError::NotLinked {
                    chat: chat.as_str(),
                    user: user.to_string(),
                }
                .into()));
            };
            let agent = link.agent;
            let response = match answer {
                ChatAnswer::Confirm => Response::Confirm,
                ChatAnswer::Decline => Response::Decline(None),
                ChatAnswer::Defer => {
                    let by = chat_defer_in(tx, id)?;
                    Response::Defer(
                        Duration::from_std(by).unwrap_or_else(|_| Duration::minutes(15)),
                    )
                }
            };
            let mut event = settled_event(tx, id, now)?;
            let accepted = match check_response(&mut event, &agent, &response, now) {
                Ok(accepted) => accepted,
                Err(refusal) => return Ok(Err(refusal)),
            };
            if signed::in_force(tx, &event)?.is_some() {
                return Ok(Err(crate::trust::TrustError::Unsigned {
                    event: event.label(),
                    agent: agent.to_string(),
                }
                .into()));
            }
            if !tx.use_nonce(nonce, id, now)? {
                return Ok(Err(ChatLinkError::Replayed {
                    chat: chat.as_str(),
                    request: request.to_string(),
                }
                .into()));
            }
            let via = json!({ "chat": chat.as_str(), "user": user, "request": request });
            let event = record_response(tx, event, &agent, None, accepted, now, None, Some(via))?;
            Ok(Ok((event, agent)))
        })
    }
}

/// [`Engine::chat_defer`] inside `tx`.
fn chat_defer_in(tx: &mut dyn Tx, id: Uuid) -> Result<StdDuration> {
    let rules = tx.notify_rules(id)?;
    let set = rules.iter().find_map(|rule| match rule.hook {
        Hook::Webhook {
            format: WebhookFormat::Slack,
            ..
        } => rule.chat_defer_ms,
        _ => None,
    });
    Ok(set.map_or(DEFAULT_CHAT_DEFER, StdDuration::from_millis))
}
