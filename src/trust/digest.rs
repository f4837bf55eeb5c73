//! The content digest of an event: what an approval is bound to.
//!
//! The digest is SHA-256 over one of two byte strings (framing as in the
//! crate's shared rules: a *field* is a u64 big-endian length and the bytes;
//! an *optional field* is `0x00` when absent, `0x01` and a field when
//! present). An event without bound notification rules is digested in
//! **version 1**:
//!
//! ```text
//! field("t-minus event content v1")
//! field(id)            the UUID, lowercase hyphenated (36 characters)
//! optional(campaign)   the campaign UUID, lowercase hyphenated
//! optional(name)       the event's name within its campaign, UTF-8
//! field(kind)          the kind as displayed (`deploy`, `review`, or the custom word as written)
//! optional(description) UTF-8
//! field(payload)       canonical JSON: compact, object keys sorted by UTF-8 bytes
//!                      at every level, strings and numbers as serde_json writes them
//! ```
//!
//! An event with at least one bound rule (a rule that acts when the event
//! fires or is missed, see [`crate::notification::NotifyRule::is_bound`])
//! in **version 2**: the same fields
//! after the tag `t-minus event content v2`, then `field(rules)`, the 32
//! bytes of its [`rules_digest`]. The rules themselves never enter the
//! digest: URLs and headers may be secrets.
//!
//! The rules digest is SHA-256 over `field("t-minus notification rules
//! v1")` followed by one `field(canonical JSON)` per bound rule, in the
//! event's order, of the object
//! [`crate::notification::NotifyRule::digest_json`] builds.
//!
//! Times, the quorum, the attendees and their answers, and informational
//! rules (reminders, rules on answers) are not part of it: rescheduling or
//! changing who attends does not invalidate an approval, changing what is
//! approved, or what runs when the event fires or is missed, does.
//!
//! The digest is written as `sha256:` followed by 64 lowercase hex digits;
//! the short form is the first 12 hex digits.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use serde_json::Value;
use uuid::Uuid;

use crate::event::TMinusEvent;
use crate::trust::error::TrustError;
use crate::trust::framing::{canonical_json, put_field, put_optional};

/// The domain tag that starts the digested bytes of version 1.
const DOMAIN_V1: &[u8] = b"t-minus event content v1";

/// The domain tag that starts the digested bytes of version 2.
const DOMAIN_V2: &[u8] = b"t-minus event content v2";

/// The domain tag that starts the digested bytes of a rules digest.
const RULES_DOMAIN: &[u8] = b"t-minus notification rules v1";

/// Hex digits in [`ContentDigest::short`].
pub const SHORT_HEX_DIGITS: usize = 12;

/// The SHA-256 content digest of an event.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentDigest([u8; 32]);

impl ContentDigest {
    /// Wraps raw digest bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ContentDigest(bytes)
    }

    /// The raw digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 lowercase hex digits, without prefix.
    pub fn hex(&self) -> String {
        base16ct::lower::encode_string(&self.0)
    }

    /// The short form for human output: the first 12 hex digits.
    pub fn short(&self) -> String {
        let mut hex = self.hex();
        hex.truncate(SHORT_HEX_DIGITS);
        hex
    }
}

impl fmt::Display for ContentDigest {
    /// `sha256:` and the full hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for ContentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentDigest({self})")
    }
}

impl FromStr for ContentDigest {
    type Err = TrustError;

    /// Reads `sha256:HEX` or bare `HEX` (64 lowercase hex digits).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        parse_hex32(s, hex).map(ContentDigest)
    }
}

/// Reads 64 lowercase hex digits; `original` is quoted in the error.
pub(crate) fn parse_hex32(original: &str, hex: &str) -> Result<[u8; 32], TrustError> {
    let invalid = |reason: &str| TrustError::InvalidHash {
        value: original.chars().take(80).collect(),
        reason: reason.to_string(),
    };
    if hex.len() != 64 {
        return Err(invalid("it must be 64 hex digits"));
    }
    if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(invalid("it must contain only lowercase hex digits 0-9 a-f"));
    }
    let mut out = [0u8; 32];
    base16ct::lower::decode(hex, &mut out).map_err(|_| invalid("it is not hex"))?;
    Ok(out)
}

/// What an event's content digest covers, borrowed from an event
/// ([`Content::of`]) or from an attestation that carries these fields.
#[derive(Debug, Clone, Copy)]
pub struct Content<'a> {
    /// The event id.
    pub id: Uuid,
    /// Its campaign's id.
    pub campaign: Option<Uuid>,
    /// Its name within the campaign.
    pub name: Option<&'a str>,
    /// Its kind as displayed.
    pub kind: &'a str,
    /// Its description.
    pub description: Option<&'a str>,
    /// Its payload.
    pub payload: &'a Value,
    /// The digest of its bound notification rules ([`rules_digest`]),
    /// `None` when it has none.
    pub rules: Option<[u8; 32]>,
}

impl<'a> Content<'a> {
    /// What `event`'s digest covers (its bound rules as the digest it
    /// carries in [`TMinusEvent::rules_digest`]). `kind` is the kind as
    /// displayed, which the caller keeps alive.
    pub fn of(event: &'a TMinusEvent, kind: &'a str) -> Self {
        Content {
            id: event.id,
            campaign: event.campaign,
            name: event.name.as_deref(),
            kind,
            description: event.description.as_deref(),
            payload: &event.payload,
            rules: event.rules_digest,
        }
    }

    /// The digest version these fields are digested in: 2 with bound
    /// rules, 1 without.
    pub fn version(&self) -> u8 {
        if self.rules.is_some() {
            2
        } else {
            1
        }
    }

    /// The exact bytes the digest is computed over (see the module docs).
    pub fn bytes(&self) -> Vec<u8> {
        let payload = canonical_json(self.payload);
        let mut out = Vec::with_capacity(160 + payload.len());
        put_field(
            &mut out,
            if self.rules.is_some() {
                DOMAIN_V2
            } else {
                DOMAIN_V1
            },
        );
        put_field(&mut out, self.id.hyphenated().to_string().as_bytes());
        let campaign = self.campaign.map(|c| c.hyphenated().to_string());
        put_optional(&mut out, campaign.as_deref().map(str::as_bytes));
        put_optional(&mut out, self.name.map(str::as_bytes));
        put_field(&mut out, self.kind.as_bytes());
        put_optional(&mut out, self.description.map(str::as_bytes));
        put_field(&mut out, payload.as_bytes());
        if let Some(rules) = &self.rules {
            put_field(&mut out, rules);
        }
        out
    }

    /// The content digest.
    pub fn digest(&self) -> ContentDigest {
        ContentDigest(Sha256::digest(self.bytes()).into())
    }
}

/// The exact bytes the digest of `event` is computed over (see the module
/// docs).
pub fn content_bytes(event: &TMinusEvent) -> Vec<u8> {
    let kind = event.kind.to_string();
    Content::of(event, &kind).bytes()
}

/// The content digest of `event`: the one function every digest shown,
/// signed and checked comes from. Its bound rules enter through the digest
/// the event carries ([`TMinusEvent::rules_digest`]), which the store fills
/// in whenever it reads an event.
pub fn content_digest(event: &TMinusEvent) -> ContentDigest {
    let kind = event.kind.to_string();
    Content::of(event, &kind).digest()
}

/// The exact bytes the rules digest is computed over, from the JSON
/// objects of an event's bound rules in its order
/// ([`crate::notification::NotifyRule::digest_json`]); `None` when there
/// are none.
pub fn rules_bytes<'a>(bound: impl IntoIterator<Item = &'a Value>) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    put_field(&mut out, RULES_DOMAIN);
    let mut any = false;
    for rule in bound {
        put_field(&mut out, canonical_json(rule).as_bytes());
        any = true;
    }
    any.then_some(out)
}

/// The digest of an event's bound rules, given as their JSON objects
/// (see [`rules_bytes`]); `None` when there are none. Callers use
/// [`crate::notification::spec::bound_rules_digest`].
pub fn rules_digest<'a>(bound: impl IntoIterator<Item = &'a Value>) -> Option<[u8; 32]> {
    rules_bytes(bound).map(|bytes| Sha256::digest(bytes).into())
}
