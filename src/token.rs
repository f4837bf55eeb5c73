//! API tokens: what a client of the HTTP service holds instead of the
//! store's credentials.
//!
//! A token is a secret (`tmt_` and 64 hex digits: 32 random bytes from the
//! operating system) issued to one agent with one [`Role`]. The store keeps
//! only its SHA-256 ([`TokenHash`]); the secret is shown once, when it is
//! made. Hashes are compared in constant time ([`TokenHash::matches`]).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use miette::Diagnostic;
use schemars::JsonSchema;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;
use uuid::Uuid;

use crate::agent::AgentId;

/// The prefix of every token secret, so that one is recognised in a leak.
pub const TOKEN_PREFIX: &str = "tmt_";

/// How many random bytes a secret holds.
pub const TOKEN_BYTES: usize = 32;

/// What a token's holder may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads events, campaigns, logs and the verification of the log.
    Reader,
    /// Reads as a reader, and answers as its own agent only.
    Agent,
    /// Reads, plans, applies manifests and cancels events.
    Operator,
}

impl Role {
    /// The lowercase word used in output and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Agent => "agent",
            Role::Operator => "operator",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = TokenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reader" => Ok(Role::Reader),
            "agent" => Ok(Role::Agent),
            "operator" => Ok(Role::Operator),
            other => Err(TokenError::InvalidRole {
                value: other.to_string(),
            }),
        }
    }
}

/// A token as the store keeps it: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct TokenInfo {
    /// The token's id (`token revoke` takes it, or a unique prefix).
    pub id: Uuid,
    /// The agent it acts as.
    pub agent: String,
    /// What it may do.
    pub role: Role,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl TokenInfo {
    /// The agent it acts as.
    pub fn agent_id(&self) -> AgentId {
        AgentId(self.agent.clone())
    }

    /// Why it may not be used at `now`, if it may not.
    pub fn refusal(&self, now: DateTime<Utc>) -> Option<TokenError> {
        if let Some(at) = self.revoked_at {
            return Some(TokenError::Revoked { id: self.id, at });
        }
        match self.expires_at {
            Some(at) if at <= now => Some(TokenError::Expired { id: self.id, at }),
            _ => None,
        }
    }
}

/// A new token: its stored description and its secret, shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct NewToken {
    /// The token as stored.
    pub token: TokenInfo,
    /// The secret: give it to the client as `Authorization: Bearer SECRET`.
    pub secret: String,
}

/// The SHA-256 of a secret, 64 lowercase hex digits: what the store keeps.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash(pub String);

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(…)")
    }
}

impl TokenHash {
    /// The hash of `secret`.
    pub fn of(secret: &str) -> Self {
        let digest = Sha256::digest(secret.as_bytes());
        TokenHash(base16ct::lower::encode_string(&digest))
    }

    /// Whether `other` is the same hash, compared in constant time.
    pub fn matches(&self, other: &TokenHash) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

/// Makes a new secret from [`TOKEN_BYTES`] bytes of the operating system's
/// random source.
pub fn new_secret() -> Result<String, TokenError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random {
        reason: e.to_string(),
    })?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        base16ct::lower::encode_string(&bytes)
    ))
}

/// Whether `text` has the shape of a secret (the prefix and 64 hex digits).
pub fn looks_like_secret(text: &str) -> bool {
    text.strip_prefix(TOKEN_PREFIX).is_some_and(|hex| {
        hex.len() == 2 * TOKEN_BYTES && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// What can go wrong with a token, or with what its holder asked for.
#[derive(Debug, Clone, PartialEq, Eq, Error, Diagnostic)]
#[non_exhaustive]
pub enum TokenError {
    /// No token was given where one is needed.
    #[error("this request needs a token")]
    #[diagnostic(
        code(t_minus::auth::missing),
        help("send `Authorization: Bearer TOKEN`; an operator makes one with `token create AGENT` on the store's host")
    )]
    Missing,

    /// The token is not one the store issued.
    #[error("the token is not valid")]
    #[diagnostic(
        code(t_minus::auth::token),
        help("check the token; an operator lists tokens with `token list` and makes new ones with `token create`")
    )]
    Unknown,

    /// The token was revoked.
    #[error("token {id} was revoked at {at}")]
    #[diagnostic(code(t_minus::auth::revoked), help("ask an operator for a new token"))]
    Revoked {
        /// The token's id.
        id: Uuid,
        /// When it was revoked.
        at: DateTime<Utc>,
    },

    /// The token expired.
    #[error("token {id} expired at {at}")]
    #[diagnostic(code(t_minus::auth::expired), help("ask an operator for a new token"))]
    Expired {
        /// The token's id.
        id: Uuid,
        /// When it expired.
        at: DateTime<Utc>,
    },

    /// The token's role does not allow the request.
    #[error("a token with role {role} may not {action}")]
    #[diagnostic(code(t_minus::auth::role), help("use a token with role {needed}"))]
    Forbidden {
        /// The token's role.
        role: Role,
        /// What was asked.
        action: String,
        /// The role that may do it.
        needed: String,
    },

    /// An agent token answering for another agent.
    #[error("the token is agent {token}'s; it may not answer as {agent}")]
    #[diagnostic(
        code(t_minus::auth::other_agent),
        help("answer with the token of {agent}, or as {token}")
    )]
    OtherAgent {
        /// The token's agent.
        token: String,
        /// The agent asked for.
        agent: String,
    },

    /// An agent token making or revoking a delegation of another agent's
    /// answers.
    #[error(
        "the token is agent {token}'s; it may not make or revoke delegations of {agent}'s answers"
    )]
    #[diagnostic(
        code(t_minus::auth::other_agent),
        help(
            "an agent delegates its own answers: use the token of {agent}, or delegate {token}'s"
        )
    )]
    OtherDelegator {
        /// The token's agent.
        token: String,
        /// The agent whose answers were to be delegated.
        agent: String,
    },

    /// An unknown role name.
    #[error("unknown role `{value}`")]
    #[diagnostic(
        code(t_minus::input::role),
        help("use `reader`, `agent` or `operator`")
    )]
    InvalidRole {
        /// The name given.
        value: String,
    },

    /// No token has this id or prefix.
    #[error("no token matches `{reference}`")]
    #[diagnostic(
        code(t_minus::not_found::token),
        help("`token list` shows the tokens and their ids")
    )]
    NotFound {
        /// The id or prefix given.
        reference: String,
    },

    /// The token is already revoked.
    #[error("token {id} is already revoked")]
    #[diagnostic(
        code(t_minus::refused::token_revoked),
        help("nothing to do; `token list` shows it as revoked")
    )]
    AlreadyRevoked {
        /// The token's id.
        id: Uuid,
    },

    /// The operating system's random source failed.
    #[error("could not read random bytes for a token: {reason}")]
    #[diagnostic(code(t_minus::auth::random), help("try again"))]
    Random {
        /// The system's error.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_prefixed_and_hash_to_64_hex_digits() {
        let a = new_secret().unwrap();
        let b = new_secret().unwrap();
        assert_ne!(a, b);
        assert!(looks_like_secret(&a), "{a}");
        assert!(!looks_like_secret("tmt_short"));
        let hash = TokenHash::of(&a);
        assert_eq!(hash.0.len(), 64);
        assert!(hash.matches(&TokenHash::of(&a)));
        assert!(!hash.matches(&TokenHash::of(&b)));
        assert!(!format!("{hash:?}").contains(&hash.0));
    }

    #[test]
    fn roles_parse_and_print() {
        for role in [Role::Reader, Role::Agent, Role::Operator] {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        let e = "admin".parse::<Role>().unwrap_err();
        assert_eq!(e.code().unwrap().to_string(), "t_minus::input::role");
    }

    #[test]
    fn a_revoked_or_expired_token_is_refused() {
        let now = Utc::now();
        let mut t = TokenInfo {
            id: Uuid::new_v4(),
            agent: "alice".into(),
            role: Role::Agent,
            created_at: now,
            expires_at: Some(now + chrono::Duration::hours(1)),
            revoked_at: None,
        };
        assert_eq!(t.refusal(now), None);
        assert!(matches!(
            t.refusal(now + chrono::Duration::hours(1)),
            Some(TokenError::Expired { .. })
        ));
        t.revoked_at = Some(now);
        assert!(matches!(t.refusal(now), Some(TokenError::Revoked { .. })));
    }
}
