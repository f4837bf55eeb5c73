//! Who is asking: the bearer token of a request, checked against the
//! store, and what its role allows.

use axum::http::{header, HeaderMap};

use crate::token::{looks_like_secret, Role, TokenError, TokenInfo};
use crate::Engine;

/// The secret of `Authorization: Bearer SECRET`, if the header is there.
/// A header of another scheme counts as no token.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, secret) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| secret.trim().to_string())
}

/// The token whose secret is `secret`, if it may be used now (see
/// [`Engine::authenticate`]). No secret is [`TokenError::Missing`]; text
/// that is not shaped like one is refused without a look-up.
pub fn authenticate(engine: &mut Engine, secret: Option<&str>) -> crate::Result<TokenInfo> {
    let Some(secret) = secret else {
        return Err(TokenError::Missing.into());
    };
    if !looks_like_secret(secret) {
        return Err(TokenError::Unknown.into());
    }
    engine.authenticate(secret)
}

/// What a route needs of the caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Any token: reading.
    Read,
    /// An agent token: answering as its agent.
    Answer,
    /// An operator token: planning, applying, cancelling.
    Operate,
}

impl Need {
    /// Refuses `token` when its role does not allow `action`.
    pub fn check(self, token: &TokenInfo, action: &str) -> Result<(), TokenError> {
        let (allowed, needed) = match self {
            Need::Read => return Ok(()),
            Need::Answer => (token.role == Role::Agent, "agent"),
            Need::Operate => (token.role == Role::Operator, "operator"),
        };
        if allowed {
            Ok(())
        } else {
            Err(TokenError::Forbidden {
                role: token.role,
                action: action.to_string(),
                needed: needed.to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_bearer_scheme_is_read_and_others_ignored() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer tmt_x"),
        );
        assert_eq!(bearer(&headers).as_deref(), Some("tmt_x"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  tmt_y "),
        );
        assert_eq!(bearer(&headers).as_deref(), Some("tmt_y"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
    }

    #[test]
    fn roles_allow_what_they_should() {
        let token = |role| TokenInfo {
            id: uuid::Uuid::new_v4(),
            agent: "a".into(),
            role,
            created_at: chrono::Utc::now(),
            expires_at: None,
            revoked_at: None,
        };
        for role in [Role::Reader, Role::Agent, Role::Operator] {
            assert!(Need::Read.check(&token(role), "read").is_ok());
            assert_eq!(
                Need::Answer.check(&token(role), "answer").is_ok(),
                role == Role::Agent
            );
            assert_eq!(
                Need::Operate.check(&token(role), "apply").is_ok(),
                role == Role::Operator
            );
        }
    }
}
