//! API tokens: made, listed, revoked and checked, each step that changes
//! something recorded in the audit log with the token's id as its subject.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use super::settle::{acted, append};
use super::Engine;
use crate::agent::AgentId;
use crate::audit::AuditAction;
use crate::error::Result;
use crate::store::Tx;
use crate::token::{new_secret, NewToken, Role, TokenError, TokenHash, TokenInfo};

/// Appends a token's audit entry.
fn audit_token(
    tx: &mut dyn Tx,
    token: &TokenInfo,
    now: DateTime<Utc>,
    action: AuditAction,
    detail: serde_json::Value,
) -> Result<()> {
    let agent = token.agent_id();
    append(tx, acted(token.id, now, &agent, action, detail, None))
}

impl Engine {
    /// Makes a token for `agent` with `role`, valid for `expires` from now
    /// (or until revoked): stores its hash, records a `token-created` entry,
    /// and returns it with its secret, which is not kept anywhere.
    pub fn create_token(
        &mut self,
        agent: &AgentId,
        role: Role,
        expires: Option<Duration>,
    ) -> Result<NewToken> {
        agent.validate()?;
        let now = self.now();
        let secret = new_secret()?;
        let token = TokenInfo {
            id: Uuid::new_v4(),
            agent: agent.as_str().to_string(),
            role,
            created_at: now,
            expires_at: expires.map(|d| now + d),
            revoked_at: None,
        };
        let hash = TokenHash::of(&secret);
        self.write(|tx| {
            tx.insert_token(&token, &hash)?;
            let detail = json!({
                "role": role.as_str(),
                "expires_at": token.expires_at.map(crate::time_spec::format_time),
                "hash_digest": super::verify::token_hash_digest(&hash),
            });
            audit_token(tx, &token, now, AuditAction::TokenCreated, detail)
        })?;
        Ok(NewToken { token, secret })
    }

    /// Every token, oldest first (never their secrets: the store has none).
    pub fn tokens(&self) -> Result<Vec<TokenInfo>> {
        self.read(|tx| tx.tokens())
    }

    /// The token named by `reference`: its full id, or a unique prefix of at
    /// least 4 hex digits.
    pub fn resolve_token(&self, reference: &str) -> Result<TokenInfo> {
        let not_found = || TokenError::NotFound {
            reference: reference.to_string(),
        };
        let wanted = reference.trim().to_ascii_lowercase();
        if wanted.len() < 4 {
            return Err(not_found().into());
        }
        let mut matching: Vec<TokenInfo> = self
            .tokens()?
            .into_iter()
            .filter(|t| t.id.to_string().starts_with(&wanted))
            .collect();
        match matching.len() {
            0 => Err(not_found().into()),
            1 => Ok(matching.remove(0)),
            _ => Err(crate::TMinusError::AmbiguousReference {
                value: reference.to_string(),
                candidates: matching.iter().map(|t| t.id.to_string()).collect(),
            }),
        }
    }

    /// Revokes the token named by `reference` (see
    /// [`Engine::resolve_token`]) and records a `token-revoked` entry.
    /// Refused when it is already revoked.
    pub fn revoke_token(&mut self, reference: &str) -> Result<TokenInfo> {
        let token = self.resolve_token(reference)?;
        let now = self.now();
        self.write_refusable(|tx| {
            if !tx.revoke_token(token.id, now)? {
                return Ok(Err(TokenError::AlreadyRevoked { id: token.id }.into()));
            }
            let revoked = TokenInfo {
                revoked_at: Some(now),
                ..token.clone()
            };
            audit_token(tx, &revoked, now, AuditAction::TokenRevoked, json!({}))?;
            Ok(Ok(revoked))
        })
    }

    /// The token whose secret is `secret`, if it may be used now. The
    /// stored hash is compared with the secret's in constant time. A revoked
    /// or expired token is refused, and its use recorded as a
    /// `token-refused` entry; an unknown one is refused without an entry
    /// (there is no token to name).
    pub fn authenticate(&mut self, secret: &str) -> Result<TokenInfo> {
        let hash = TokenHash::of(secret);
        let found = self.read(|tx| tx.token_by_hash(&hash))?;
        let Some((token, stored)) = found else {
            return Err(TokenError::Unknown.into());
        };
        if !stored.matches(&hash) {
            return Err(TokenError::Unknown.into());
        }
        let now = self.now();
        let Some(refusal) = token.refusal(now) else {
            return Ok(token);
        };
        let reason = match refusal {
            TokenError::Revoked { .. } => "revoked",
            _ => "expired",
        };
        self.write(|tx| {
            audit_token(
                tx,
                &token,
                now,
                AuditAction::TokenRefused,
                json!({ "reason": reason }),
            )
        })?;
        Err(refusal.into())
    }
}
