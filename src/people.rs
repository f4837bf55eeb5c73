//! People who answer from a browser: invitations, their passkeys, the
//! WebAuthn ceremonies under way and their browser sessions.
//!
//! An operator invites an agent's person (`t-minus people invite AGENT`):
//! a single-use link holding a secret (`tmi_` and 64 hex digits) whose
//! SHA-256 alone is stored. Opening it lets the person register a passkey
//! (a WebAuthn discoverable credential, user verification required), bound
//! to the agent and recorded in the log (a `person-enrolled` entry with the
//! credential id and the COSE public key). A person holds as many passkeys
//! as invitations they used; `people revoke` ends one, and the sessions it
//! signed in.
//!
//! Sessions are a cookie secret (`tms_…`) whose SHA-256 is stored, with an
//! expiry and a CSRF token; see [`crate::serve::web::session`] for the
//! cookie.

use chrono::{DateTime, Utc};
use miette::Diagnostic;
use schemars::JsonSchema;
use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;
use uuid::Uuid;

/// The prefix of an invitation's secret.
pub const INVITE_PREFIX: &str = "tmi_";
/// The prefix of a session cookie's secret.
pub const SESSION_PREFIX: &str = "tms_";

/// How long an invitation is valid by default.
pub const DEFAULT_INVITE_EXPIRY: chrono::Duration = chrono::Duration::days(7);
/// How long a browser session lasts.
pub const SESSION_LIFETIME: chrono::Duration = chrono::Duration::hours(12);
/// How long a WebAuthn ceremony may take.
pub const CEREMONY_LIFETIME: chrono::Duration = chrono::Duration::minutes(5);

/// An invitation to enrol a passkey for an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Invitation {
    /// Its id; the passkey it enrols has the same id.
    pub id: Uuid,
    /// The agent the passkey will answer as.
    pub agent: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops being valid.
    pub expires_at: DateTime<Utc>,
    /// When a passkey was enrolled with it (it is then used up).
    pub used_at: Option<DateTime<Utc>>,
}

/// An invitation as made: with its secret, shown once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInvitation {
    /// What is stored.
    pub invitation: Invitation,
    /// The secret of the link (`tmi_…`); only its hash is stored.
    pub secret: String,
}

/// An enrolled passkey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct PasskeyInfo {
    /// The enrolment's id (the invitation's): the subject of its log
    /// entries.
    pub id: Uuid,
    /// The WebAuthn credential id, base64url without padding.
    pub credential: String,
    /// The agent it answers as.
    pub agent: String,
    /// The COSE public key, base64url without padding.
    pub public_key: String,
    /// `ES256` or `EdDSA`.
    pub algorithm: String,
    /// When it was enrolled.
    pub created_at: DateTime<Utc>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A WebAuthn ceremony under way, kept in the store so that any `serve`
/// process sharing it can finish it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ceremony {
    /// Its id, which the browser sends back.
    pub id: Uuid,
    /// `enrol`, `signin` or `answer`.
    pub kind: String,
    /// The challenge issued, base64url.
    pub challenge: String,
    /// The agent it is for (enrolment, answer).
    pub agent: Option<String>,
    /// What it is bound to: the invitation id, or the answer message.
    pub data: Option<String>,
    /// When it stops being valid.
    pub expires_at: DateTime<Utc>,
}

/// A browser session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// The SHA-256 of the cookie's secret, hex.
    pub hash: String,
    /// The agent signed in.
    pub agent: String,
    /// The passkey that signed in.
    pub credential: String,
    /// The CSRF token.
    pub csrf: String,
    /// When it began.
    pub created_at: DateTime<Utc>,
    /// When it ends by itself.
    pub expires_at: DateTime<Utc>,
    /// When it was ended (sign-out).
    pub ended_at: Option<DateTime<Utc>>,
}

/// The SHA-256 of a secret, as stored (64 lowercase hex digits).
pub fn secret_hash(secret: &str) -> String {
    base16ct::lower::encode_string(&Sha256::digest(secret.as_bytes()))
}

/// A new secret: `prefix` and 64 hex digits of 32 random bytes.
pub fn new_secret(prefix: &str) -> Result<String, PeopleError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| PeopleError::Random {
        reason: e.to_string(),
    })?;
    Ok(format!(
        "{prefix}{}",
        base16ct::lower::encode_string(&bytes)
    ))
}

/// Why a person, passkey, session or ceremony was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error, Diagnostic)]
#[non_exhaustive]
pub enum PeopleError {
    /// The operating system gave no random bytes.
    #[error("cannot make a secret: {reason}")]
    #[diagnostic(code(t_minus::auth::random))]
    Random {
        /// Why.
        reason: String,
    },

    /// The enrolment link is not one the store issued.
    #[error("this enrolment link is not valid")]
    #[diagnostic(
        code(t_minus::passkey::invite),
        help("ask an operator for a new link: `t-minus people invite AGENT`")
    )]
    UnknownInvite,

    /// The enrolment link was used already.
    #[error("this enrolment link was used at {at}; each link enrols one passkey")]
    #[diagnostic(
        code(t_minus::passkey::invite_used),
        help("sign in with the passkey it enrolled, or ask an operator for a new link")
    )]
    InviteUsed {
        /// When it was used.
        at: DateTime<Utc>,
    },

    /// The enrolment link expired.
    #[error("this enrolment link expired at {at}")]
    #[diagnostic(
        code(t_minus::passkey::invite_expired),
        help("ask an operator for a new link: `t-minus people invite AGENT --expires DUR`")
    )]
    InviteExpired {
        /// When it expired.
        at: DateTime<Utc>,
    },

    /// A ceremony that is unknown, finished, expired or of another kind.
    #[error("the passkey ceremony {id} is unknown, finished or expired")]
    #[diagnostic(
        code(t_minus::passkey::ceremony),
        help("start again: each ceremony is used once, within 5 minutes")
    )]
    Ceremony {
        /// The ceremony's id as sent.
        id: String,
    },

    /// The browser's answer to a ceremony does not check out.
    #[error("the passkey {what} does not check out: {reason}")]
    #[diagnostic(
        code(t_minus::passkey::invalid),
        help("use the passkey on the page of this service; a passkey made for another site, or without user verification, is refused")
    )]
    Invalid {
        /// `registration`, `sign-in` or `answer`.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },

    /// The credential is not an enrolled passkey.
    #[error("the passkey {credential} is not enrolled here")]
    #[diagnostic(
        code(t_minus::passkey::unknown),
        help("enrol it with a link from `t-minus people invite AGENT`")
    )]
    UnknownPasskey {
        /// The credential id.
        credential: String,
    },

    /// The credential was revoked.
    #[error("the passkey {credential} was revoked at {at}")]
    #[diagnostic(
        code(t_minus::passkey::revoked),
        help("sign in with another passkey, or ask an operator for a new enrolment link")
    )]
    Revoked {
        /// The credential id.
        credential: String,
        /// When.
        at: DateTime<Utc>,
    },

    /// The credential id is already enrolled.
    #[error("the passkey {credential} is already enrolled")]
    #[diagnostic(code(t_minus::passkey::enrolled), help("sign in with it at /signin"))]
    AlreadyEnrolled {
        /// The credential id.
        credential: String,
    },

    /// No passkey matches a `people revoke` reference.
    #[error("no passkey matches `{reference}`")]
    #[diagnostic(
        code(t_minus::not_found::passkey),
        help("`t-minus people list` shows each passkey's id and credential")
    )]
    NotFound {
        /// What was given.
        reference: String,
    },

    /// A relying party id that cannot be one.
    #[error("the public URL {url} cannot name a passkey relying party: {reason}")]
    #[diagnostic(
        code(t_minus::passkey::relying_party),
        help("passkeys are bound to a domain name: give `--public-url https://HOST` (or http://localhost:PORT for local use); browsers refuse WebAuthn on an IP address")
    )]
    RelyingParty {
        /// The URL given.
        url: String,
        /// Why it cannot.
        reason: String,
    },

    /// A browser request without a session where one is needed.
    #[error("sign in first: this needs a session")]
    #[diagnostic(
        code(t_minus::passkey::session),
        help("sign in with your passkey at /signin")
    )]
    NoSession,

    /// A state-changing browser request without the session's CSRF token,
    /// or from another origin.
    #[error("the request was refused: {reason}")]
    #[diagnostic(
        code(t_minus::passkey::csrf),
        help("send the request from this service's pages: they carry the X-CSRF-Token header and the Origin of the service")
    )]
    Csrf {
        /// What was missing or wrong.
        reason: String,
    },

    /// The event pins passkeys, and not this one for the agent.
    #[error(
        "event {event} accepts only the passkeys its signers pin for {agent}, not {credential}"
    )]
    #[diagnostic(
        code(t_minus::trust::passkey_not_pinned),
        help("answer with a passkey the manifest pins (`signers: {{AGENT: \"webauthn:CREDENTIAL\"}}`), or sign with the agent's SSH key")
    )]
    NotPinned {
        /// The event's label.
        event: String,
        /// The agent.
        agent: String,
        /// The credential id used.
        credential: String,
    },
}

/// The relying party of a public URL: its origin (scheme, host, port;
/// lowercase) and relying party id (the host). Refuses an IP address, a
/// URL with a path, and plain `http` except on `localhost`.
pub fn relying_party(url: &str) -> Result<(String, String), PeopleError> {
    let refuse = |reason: &str| PeopleError::RelyingParty {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let lower = url.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, rest) = lower
        .split_once("://")
        .ok_or_else(|| refuse("it is not a URL (`https://HOST[:PORT]`)"))?;
    if rest.contains(['/', '?', '#', '@']) {
        return Err(refuse("it has a path, query or user; give the origin only"));
    }
    let host = if let Some(v6) = rest.strip_prefix('[') {
        let _ = v6;
        return Err(refuse(
            "its host is an IP address, and a relying party id must be a domain name",
        ));
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => host,
            Some(_) => return Err(refuse("its port is not a number")),
            None => rest,
        }
    };
    if host.is_empty() {
        return Err(refuse("it has no host"));
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Err(refuse(
            "its host is an IP address, and a relying party id must be a domain name",
        ));
    }
    match scheme {
        "https" => {}
        "http" if host == "localhost" => {}
        "http" => {
            return Err(refuse(
                "plain http is allowed for localhost only; browsers need https for passkeys",
            ))
        }
        _ => return Err(refuse("its scheme is not https")),
    }
    Ok((lower.clone(), host.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_host_and_an_ip_address_is_refused() {
        assert_eq!(
            relying_party("https://Approve.Example.com/").unwrap(),
            (
                "https://approve.example.com".to_string(),
                "approve.example.com".to_string()
            )
        );
        assert_eq!(
            relying_party("http://localhost:8470").unwrap().1,
            "localhost"
        );
        for bad in [
            "http://127.0.0.1:8470",
            "https://[::1]:8470",
            "https://10.0.0.2",
        ] {
            let err = relying_party(bad).unwrap_err().to_string();
            assert!(err.contains("IP address"), "{bad}: {err}");
        }
        assert!(relying_party("http://example.com").is_err());
        assert!(relying_party("https://example.com/app").is_err());
    }
}
