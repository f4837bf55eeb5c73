//! The content digest of an event: what an approval is bound to.
//!
//! The digest is SHA-256 over this byte string (framing as in the crate's
//! shared rules: a *field* is a u64 big-endian length and the bytes; an
//! *optional field* is `0x00` when absent, `0x01` and a field when present):
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
//! Times, the quorum, the attendees and their answers are not part of it:
//! rescheduling or changing who attends does not invalidate an approval,
//! changing what is approved does.
//!
//! The digest is written as `sha256:` followed by 64 lowercase hex digits;
//! the short form is the first 12 hex digits.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::event::TMinusEvent;
use crate::trust::error::TrustError;
use crate::trust::framing::{canonical_json, put_field, put_optional};

/// The domain tag that starts the digested bytes.
const DOMAIN: &[u8] = b"t-minus event content v1";

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

/// The exact bytes the digest is computed over (see the module docs).
pub fn content_bytes(event: &TMinusEvent) -> Vec<u8> {
    let payload = canonical_json(&event.payload);
    let mut out = Vec::with_capacity(128 + payload.len());
    put_field(&mut out, DOMAIN);
    put_field(&mut out, event.id.hyphenated().to_string().as_bytes());
    let campaign = event.campaign.map(|c| c.hyphenated().to_string());
    put_optional(&mut out, campaign.as_deref().map(str::as_bytes));
    put_optional(&mut out, event.name.as_deref().map(str::as_bytes));
    put_field(&mut out, event.kind.to_string().as_bytes());
    put_optional(&mut out, event.description.as_deref().map(str::as_bytes));
    put_field(&mut out, payload.as_bytes());
    out
}

/// The content digest of `event`.
pub fn content_digest(event: &TMinusEvent) -> ContentDigest {
    ContentDigest(Sha256::digest(content_bytes(event)).into())
}
