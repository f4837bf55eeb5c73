//! The person a browser request comes from: the session its cookie names.
//!
//! Signing in with a passkey (or enrolling one) begins a session: a secret
//! (`tms_` and 64 hex digits) in a cookie, whose SHA-256 alone the store
//! keeps, with the passkey that signed in, a CSRF token and an expiry
//! ([`crate::people::SESSION_LIFETIME`]). The cookie is
//!
//! ```text
//! __Host-tminus_session=SECRET; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=43200   (https)
//! tminus_session=SECRET; Path=/; HttpOnly; SameSite=Lax; Max-Age=43200                  (http://localhost)
//! ```
//!
//! `HttpOnly`: scripts never read it. `SameSite=Lax` rather than `Strict`:
//! the link in a notification (Slack, e-mail) opens the event page signed
//! in; a cross-site request never carries the cookie on a `POST`, and every
//! state-changing request must also carry the session's CSRF token in
//! `X-CSRF-Token` and the service's own `Origin` ([`check_csrf`]). The
//! `__Host-` prefix (over https) makes the browser refuse a cookie of that
//! name set by another host or for a wider path.
//!
//! A session ends at its expiry, on sign-out, and when the passkey that
//! signed it in is revoked (`t-minus people revoke`).

use axum::http::{header, HeaderMap};
use subtle::ConstantTimeEq;

use crate::people::PeopleError;
use crate::{AgentId, Engine};

/// The session cookie's name over plain http (`http://localhost`).
pub const COOKIE: &str = "tminus_session";

/// The session cookie's name over https.
pub const SECURE_COOKIE: &str = "__Host-tminus_session";

/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A signed-in person: the agent their passkey is bound to, and the CSRF
/// token every state-changing request of theirs must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// The agent the person answers as.
    pub agent: AgentId,
    /// The token state-changing requests send back (`X-CSRF-Token`).
    pub csrf: String,
    /// The passkey that signed in (its credential id, base64url): the one
    /// that signs the person's answers in this session.
    pub credential: String,
}

/// The session cookie's secret in `headers`, if any (the `__Host-` name
/// first).
pub fn cookie_secret(headers: &HeaderMap) -> Option<String> {
    let mut plain = None;
    for value in headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for pair in text.split(';') {
            let Some((name, value)) = pair.trim().split_once('=') else {
                continue;
            };
            match name {
                SECURE_COOKIE => return Some(value.to_string()),
                COOKIE => plain = Some(value.to_string()),
                _ => {}
            }
        }
    }
    plain
}

/// The session the request's cookie names, if it is one in force now: not
/// expired, not signed out, its passkey not revoked.
pub fn current(engine: &mut Engine, headers: &HeaderMap) -> crate::Result<Option<WebSession>> {
    let Some(secret) = cookie_secret(headers) else {
        return Ok(None);
    };
    let Some(row) = engine.session(&secret)? else {
        return Ok(None);
    };
    Ok(Some(WebSession {
        agent: AgentId::parse(&row.agent)?,
        csrf: row.csrf,
        credential: row.credential,
    }))
}

/// The `Set-Cookie` value that stores `secret` (`secure`: over https).
pub fn set_cookie(secret: &str, secure: bool) -> String {
    let max_age = crate::people::SESSION_LIFETIME.num_seconds();
    if secure {
        format!(
            "{SECURE_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age={max_age}"
        )
    } else {
        format!("{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}")
    }
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    if secure {
        format!("{SECURE_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=0")
    } else {
        format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
    }
}

/// Refuses a state-changing request that does not carry `session`'s CSRF
/// token in `X-CSRF-Token` (compared in constant time) or whose `Origin`
/// is not `origin`, the service's own.
pub fn check_csrf(
    session: &WebSession,
    headers: &HeaderMap,
    origin: &str,
) -> Result<(), PeopleError> {
    let refuse = |reason: &str| PeopleError::Csrf {
        reason: reason.to_string(),
    };
    match headers.get(header::ORIGIN).map(|o| o.to_str()) {
        Some(Ok(sent)) if sent.eq_ignore_ascii_case(origin) => {}
        Some(_) => {
            return Err(refuse(&format!(
                "its Origin is not {origin}, this service's"
            )))
        }
        None => return Err(refuse("it carries no Origin header")),
    }
    let Some(token) = headers.get(CSRF_HEADER).and_then(|t| t.to_str().ok()) else {
        return Err(refuse("it carries no X-CSRF-Token header"));
    };
    if !bool::from(token.as_bytes().ct_eq(session.csrf.as_bytes())) {
        return Err(refuse("its X-CSRF-Token is not the session's"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secure_cookie_is_preferred_and_csrf_needs_token_and_origin() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=b; tminus_session=plain; __Host-tminus_session=secure"
                .parse()
                .unwrap(),
        );
        assert_eq!(cookie_secret(&headers).as_deref(), Some("secure"));
        let session = WebSession {
            agent: AgentId::parse("alice").unwrap(),
            csrf: "token".into(),
            credential: "AAAA".into(),
        };
        let origin = "https://approve.example.com";
        let mut headers = HeaderMap::new();
        assert!(check_csrf(&session, &headers, origin).is_err());
        headers.insert(header::ORIGIN, origin.parse().unwrap());
        assert!(check_csrf(&session, &headers, origin).is_err());
        headers.insert(CSRF_HEADER, "wrong".parse().unwrap());
        assert!(check_csrf(&session, &headers, origin).is_err());
        headers.insert(CSRF_HEADER, "token".parse().unwrap());
        check_csrf(&session, &headers, origin).unwrap();
        headers.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(check_csrf(&session, &headers, origin).is_err());
        assert!(set_cookie("s", true).starts_with("__Host-tminus_session=s; Path=/; HttpOnly"));
    }
}
