//! The tamper-evident audit chain.
//!
//! Every audit entry carries `prev`, the hash of the entry before it in the
//! store's commit order (for the first entry, 32 zero bytes), and
//!
//! ```text
//! hash = SHA-256(prev || entry_bytes(entry))
//! ```
//!
//! where `prev` is its 32 raw bytes and `entry_bytes` is, in format v2 (what
//! t-minus writes; a *field* is a u64 big-endian length and the bytes; an
//! *optional field* is `0x00` when absent, `0x01` and a field when present;
//! a *time* is the signed 64-bit big-endian count of whole milliseconds
//! since 1970-01-01T00:00:00Z, the precision the stores keep):
//!
//! ```text
//! field("t-minus audit entry v2")
//! field(subject_kind)  `event`, `campaign`, `token`, `person`, `delegation` or `chat-link`
//! field(subject)       the subject's id: a UUID lowercase hyphenated for an event or campaign
//! time(at)
//! time(recorded_at)
//! optional(agent)         the agent who acted, UTF-8
//! optional(on_behalf_of)  the agent it acted for, for a delegated act
//! field(action)        the action word (`confirmed`, `fired`, …)
//! field(detail)        canonical JSON (compact, keys sorted by UTF-8 bytes)
//! optional(message)    the signed answer message, its exact bytes
//! optional(signature)  the signature text, exactly as stored
//! ```
//!
//! Format v1, written before, is still verified:
//!
//! ```text
//! field("t-minus audit entry v1")
//! field(event)         the event UUID, lowercase hyphenated
//! time(at)
//! time(recorded_at)
//! optional(agent)
//! field(action)
//! field(detail)
//! optional(message)
//! optional(signature)
//! ```
//!
//! An entry's format is the one whose hash it stores (the first field
//! differs, so no entry hashes the same in both); once an entry in v2 is
//! chained, every later one must be v2 too ([`BreakKind::Downgrade`]).
//!
//! The entry's `seq` is not hashed: the order is bound by `prev`, and `seq`
//! is only where the store keeps the entry.
//!
//! Editing an entry changes its hash; deleting, inserting or reordering
//! entries breaks a `prev` link. A head (the last hash) kept elsewhere
//! proves later that the log up to it was only appended to.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::agent::AgentId;
use crate::audit::AuditEntry;
use crate::trust::digest::parse_hex32;
use crate::trust::error::TrustError;
use crate::trust::framing::{canonical_json, put_field, put_optional};

const DOMAIN_V1: &[u8] = b"t-minus audit entry v1";
const DOMAIN_V2: &[u8] = b"t-minus audit entry v2";

/// The byte format of an audit entry's hash (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryFormat {
    /// `t-minus audit entry v1`: every entry is about an event.
    V1,
    /// `t-minus audit entry v2`: a subject of any kind, and the agent acted
    /// for; what t-minus writes.
    V2,
}

/// What kind of thing an entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubjectKind {
    /// An event (the id is its UUID).
    Event,
    /// A campaign (the id is its UUID).
    Campaign,
    /// An access token.
    Token,
    /// An enrolled person.
    Person,
    /// A delegation from one agent to another.
    Delegation,
    /// A link to a chat channel.
    ChatLink,
    /// A GitHub deployment gated by a campaign.
    GithubDeployment,
}

impl SubjectKind {
    /// The word hashed and shown: `event`, `campaign`, `token`, `person`,
    /// `delegation`, `chat-link`, `github-deployment`.
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Event => "event",
            SubjectKind::Campaign => "campaign",
            SubjectKind::Token => "token",
            SubjectKind::Person => "person",
            SubjectKind::Delegation => "delegation",
            SubjectKind::ChatLink => "chat-link",
            SubjectKind::GithubDeployment => "github-deployment",
        }
    }
}

/// What an entry is about: a kind and an id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject {
    /// The kind.
    pub kind: SubjectKind,
    /// The id, as hashed (a UUID lowercase hyphenated for events and
    /// campaigns).
    pub id: String,
}

impl Subject {
    /// The subject of `entry`, which its action implies: the token its
    /// `event` column names for the token actions (`token-created`,
    /// `token-revoked`, `token-refused`), the delegation for `delegated` and
    /// `undelegated`, the chat link for `chat-linked` and `chat-unlinked`,
    /// the GitHub deployment for the `github-…` actions, the person's
    /// enrolment (the invitation's id) for `person-invited`,
    /// `person-enrolled` and `person-revoked`, the campaign for the campaign
    /// actions
    /// (`campaign-created`, `campaign-updated`, `campaign-removed`,
    /// `campaign-baseline`), the event otherwise.
    pub fn of(entry: &AuditEntry) -> Self {
        Subject::of_action(entry.action, entry.event)
    }

    /// The subject of an entry of `action` whose `event` column is `id`
    /// (see [`Subject::of`]).
    pub fn of_action(action: crate::audit::AuditAction, id: uuid::Uuid) -> Self {
        use crate::audit::AuditAction::{
            ChatLinked, ChatUnlinked, Delegated, GithubReportFailed, GithubReported,
            GithubRequested, PersonEnrolled, PersonInvited, PersonRevoked, TokenCreated,
            TokenRefused, TokenRevoked, Undelegated,
        };
        let kind = match action {
            TokenCreated | TokenRevoked | TokenRefused => SubjectKind::Token,
            GithubRequested | GithubReported | GithubReportFailed => SubjectKind::GithubDeployment,
            Delegated | Undelegated => SubjectKind::Delegation,
            ChatLinked | ChatUnlinked => SubjectKind::ChatLink,
            PersonInvited | PersonEnrolled | PersonRevoked => SubjectKind::Person,
            action if action.is_about_campaign() => SubjectKind::Campaign,
            _ => SubjectKind::Event,
        };
        Subject {
            kind,
            id: id.hyphenated().to_string(),
        }
    }

    /// The subject of an entry about event `id`.
    pub fn event(id: uuid::Uuid) -> Self {
        Subject {
            kind: SubjectKind::Event,
            id: id.hyphenated().to_string(),
        }
    }
}

/// A link of the chain: 32 bytes, written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainHash([u8; 32]);

impl ChainHash {
    /// The `prev` of the first entry: 32 zero bytes.
    pub const GENESIS: ChainHash = ChainHash([0; 32]);

    /// Wraps raw hash bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ChainHash(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 lowercase hex digits.
    pub fn hex(&self) -> String {
        base16ct::lower::encode_string(&self.0)
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({})", self.hex())
    }
}

impl FromStr for ChainHash {
    type Err = TrustError;
    /// Reads 64 lowercase hex digits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex32(s, s).map(ChainHash)
    }
}

/// The exact bytes an entry contributes to its hash in format `format`
/// (see the module docs); in v2 its subject is [`Subject::of`] the entry
/// and the agent acted for is its `on_behalf_of`.
pub fn entry_bytes_in(
    format: EntryFormat,
    entry: &AuditEntry,
    message: Option<&[u8]>,
    signature: Option<&str>,
) -> Vec<u8> {
    entry_bytes_with(
        format,
        entry,
        &canonical_json(&entry.detail),
        message,
        signature,
    )
}

/// [`entry_bytes_in`] with the entry's detail given as its canonical JSON
/// text (`entry.detail` is not read).
fn entry_bytes_with(
    format: EntryFormat,
    entry: &AuditEntry,
    detail: &str,
    message: Option<&[u8]>,
    signature: Option<&str>,
) -> Vec<u8> {
    match format {
        EntryFormat::V1 => entry_bytes_v1(entry, detail, message, signature),
        EntryFormat::V2 => entry_bytes_v2_with(
            &Subject::of(entry),
            entry.on_behalf_of.as_ref().map(AgentId::as_str),
            entry,
            detail,
            message,
            signature,
        ),
    }
}

/// The bytes of an entry in format v1 (`entry.event` is the event) whose
/// detail's canonical JSON is `detail`.
fn entry_bytes_v1(
    entry: &AuditEntry,
    detail: &str,
    message: Option<&[u8]>,
    signature: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + detail.len() + message.map_or(0, <[u8]>::len));
    put_field(&mut out, DOMAIN_V1);
    put_field(&mut out, entry.event.hyphenated().to_string().as_bytes());
    out.extend_from_slice(&entry.at.timestamp_millis().to_be_bytes());
    out.extend_from_slice(&entry.recorded_at.timestamp_millis().to_be_bytes());
    put_optional(
        &mut out,
        entry.agent.as_ref().map(|a| a.as_str().as_bytes()),
    );
    put_field(&mut out, entry.action.as_str().as_bytes());
    put_field(&mut out, detail.as_bytes());
    put_optional(&mut out, message);
    put_optional(&mut out, signature.map(str::as_bytes));
    out
}

/// The bytes of an entry in format v2 about `subject` (`entry.event` is not
/// used), by `entry.agent` acting for `on_behalf_of` when given.
pub fn entry_bytes_v2(
    subject: &Subject,
    on_behalf_of: Option<&str>,
    entry: &AuditEntry,
    message: Option<&[u8]>,
    signature: Option<&str>,
) -> Vec<u8> {
    entry_bytes_v2_with(
        subject,
        on_behalf_of,
        entry,
        &canonical_json(&entry.detail),
        message,
        signature,
    )
}

/// [`entry_bytes_v2`] with the detail given as its canonical JSON text.
fn entry_bytes_v2_with(
    subject: &Subject,
    on_behalf_of: Option<&str>,
    entry: &AuditEntry,
    detail: &str,
    message: Option<&[u8]>,
    signature: Option<&str>,
) -> Vec<u8> {
    entry_bytes_v2_of(
        subject,
        EntryParts {
            at_ms: entry.at.timestamp_millis(),
            recorded_ms: entry.recorded_at.timestamp_millis(),
            agent: entry.agent.as_ref().map(AgentId::as_str),
            on_behalf_of,
            action: entry.action.as_str(),
            detail,
            message,
            signature,
        },
    )
}

/// The fields of an entry that its bytes (format v2) hold besides its
/// subject, borrowed from wherever the entry is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EntryParts<'a> {
    /// Its logical time, in whole milliseconds.
    pub at_ms: i64,
    /// When it was written, in whole milliseconds.
    pub recorded_ms: i64,
    /// The agent who acted.
    pub agent: Option<&'a str>,
    /// The agent it acted for.
    pub on_behalf_of: Option<&'a str>,
    /// The action word.
    pub action: &'a str,
    /// The detail's canonical JSON text.
    pub detail: &'a str,
    /// The signed answer message.
    pub message: Option<&'a [u8]>,
    /// The signature text.
    pub signature: Option<&'a str>,
}

/// The bytes of an entry about `subject` in format v2 (see
/// [`entry_bytes_v2`]).
pub(crate) fn entry_bytes_v2_of(subject: &Subject, e: EntryParts<'_>) -> Vec<u8> {
    let detail = e.detail;
    let mut out = Vec::with_capacity(200 + detail.len() + e.message.map_or(0, <[u8]>::len));
    put_field(&mut out, DOMAIN_V2);
    put_field(&mut out, subject.kind.as_str().as_bytes());
    put_field(&mut out, subject.id.as_bytes());
    out.extend_from_slice(&e.at_ms.to_be_bytes());
    out.extend_from_slice(&e.recorded_ms.to_be_bytes());
    put_optional(&mut out, e.agent.map(str::as_bytes));
    put_optional(&mut out, e.on_behalf_of.map(str::as_bytes));
    put_field(&mut out, e.action.as_bytes());
    put_field(&mut out, detail.as_bytes());
    put_optional(&mut out, e.message);
    put_optional(&mut out, e.signature.map(str::as_bytes));
    out
}

/// The exact bytes an entry contributes to its hash in the current format
/// (v2).
pub fn entry_bytes(entry: &AuditEntry, message: Option<&[u8]>, signature: Option<&str>) -> Vec<u8> {
    entry_bytes_in(EntryFormat::V2, entry, message, signature)
}

/// The hash of `bytes` following `prev`.
pub fn link_hash(prev: &ChainHash, bytes: &[u8]) -> ChainHash {
    let mut hasher = Sha256::new();
    hasher.update(prev.0);
    hasher.update(bytes);
    ChainHash(hasher.finalize().into())
}

/// The hash of an entry that follows `prev`, in format `format`.
pub fn entry_hash_in(
    format: EntryFormat,
    prev: &ChainHash,
    entry: &AuditEntry,
    message: Option<&[u8]>,
    signature: Option<&str>,
) -> ChainHash {
    link_hash(prev, &entry_bytes_in(format, entry, message, signature))
}

/// The hash of an entry that follows `prev`, in the current format (v2):
/// what a new entry stores.
pub fn entry_hash(
    prev: &ChainHash,
    entry: &AuditEntry,
    message: Option<&[u8]>,
    signature: Option<&str>,
) -> ChainHash {
    entry_hash_in(EntryFormat::V2, prev, entry, message, signature)
}

/// A stored entry with its stored links, as read back for verification.
#[derive(Debug, Clone, Copy)]
pub struct ChainLink<'a> {
    /// The entry.
    pub entry: &'a AuditEntry,
    /// The signed answer message stored with it, if any.
    pub message: Option<&'a [u8]>,
    /// The armored signature stored with it, if any.
    pub signature: Option<&'a str>,
    /// The stored `prev`.
    pub prev: ChainHash,
    /// The stored `hash`.
    pub hash: ChainHash,
}

/// How an entry disagrees with the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakKind {
    /// Its `prev` is not the hash of the entry before it: an entry before it
    /// was deleted, inserted or moved.
    Prev {
        /// The hash of the entry before it.
        expected: ChainHash,
        /// The `prev` it stores.
        found: ChainHash,
    },
    /// Its `hash` is its content's hash in format v1, but an entry before
    /// it is in v2: an old-format entry was added after the change.
    Downgrade {
        /// The hash its content gives in the current format.
        expected: ChainHash,
    },
    /// Its `hash` is not the hash of its content: the entry was edited.
    Hash {
        /// The hash its content gives.
        expected: ChainHash,
        /// The hash it stores.
        found: ChainHash,
    },
}

impl fmt::Display for BreakKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakKind::Prev { expected, found } => write!(
                f,
                "its prev {found} is not the hash {expected} of the entry before it (an entry was removed, inserted or moved)"
            ),
            BreakKind::Downgrade { expected } => write!(
                f,
                "it is hashed in the audit entry format v1, after an entry in v2 (its hash in v2 would be {expected})"
            ),
            BreakKind::Hash { expected, found } => write!(
                f,
                "its stored hash {found} is not the hash {expected} of its content (the entry was edited)"
            ),
        }
    }
}

/// Verifies a chain one entry at a time, in commit order, in constant
/// memory.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    head: ChainHash,
    position: u64,
    since: Option<ChainHash>,
    since_seen: bool,
    v2_seen: bool,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    /// A verifier for a chain that starts at the first entry.
    pub fn new() -> Self {
        ChainVerifier {
            head: ChainHash::GENESIS,
            position: 0,
            since: None,
            since_seen: false,
            v2_seen: false,
        }
    }

    /// Also requires that `head` (printed earlier) is the genesis or the hash
    /// of some entry, which proves the log up to it was only appended to.
    pub fn since(mut self, head: ChainHash) -> Self {
        self.since_seen = head == ChainHash::GENESIS;
        self.since = Some(head);
        self
    }

    /// Checks the next entry; on success returns its hash, the new head.
    pub fn push(&mut self, link: &ChainLink<'_>) -> Result<ChainHash, TrustError> {
        self.push_with_detail(link, &canonical_json(&link.entry.detail))
    }

    /// [`ChainVerifier::push`] with the entry's detail given as its
    /// canonical JSON text (`link.entry.detail` is not read): for a caller
    /// that has the text already, without parsing it into a value.
    pub fn push_with_detail(
        &mut self,
        link: &ChainLink<'_>,
        detail: &str,
    ) -> Result<ChainHash, TrustError> {
        let broken = |kind| TrustError::ChainBroken {
            position: self.position,
            seq: link.entry.seq,
            kind,
        };
        if link.prev != self.head {
            return Err(broken(BreakKind::Prev {
                expected: self.head,
                found: link.prev,
            }));
        }
        let bytes =
            |format| entry_bytes_with(format, link.entry, detail, link.message, link.signature);
        let expected = link_hash(&self.head, &bytes(EntryFormat::V2));
        if link.hash == expected {
            self.v2_seen = true;
        } else {
            let v1 = link_hash(&self.head, &bytes(EntryFormat::V1));
            if link.hash != v1 {
                return Err(broken(BreakKind::Hash {
                    expected,
                    found: link.hash,
                }));
            }
            if self.v2_seen {
                return Err(broken(BreakKind::Downgrade { expected }));
            }
        }
        let expected = link.hash;
        self.head = expected;
        self.position += 1;
        if self.since == Some(expected) {
            self.since_seen = true;
        }
        Ok(expected)
    }

    /// The hash of the last entry checked (the genesis before any).
    pub fn head(&self) -> ChainHash {
        self.head
    }

    /// How many entries were checked.
    pub fn len(&self) -> u64 {
        self.position
    }

    /// Whether no entry was checked yet.
    pub fn is_empty(&self) -> bool {
        self.position == 0
    }

    /// Ends verification: the head, or an error if a `since` head was never
    /// reached.
    pub fn finish(self) -> Result<ChainHash, TrustError> {
        match self.since {
            Some(since) if !self.since_seen => Err(TrustError::HeadNotFound { head: since.hex() }),
            _ => Ok(self.head),
        }
    }
}

/// Verifies a whole chain in commit order; returns its head, or the first
/// entry that disagrees.
pub fn verify_chain<'a, I>(links: I) -> Result<ChainHash, TrustError>
where
    I: IntoIterator<Item = ChainLink<'a>>,
{
    let mut verifier = ChainVerifier::new();
    for link in links {
        verifier.push(&link)?;
    }
    verifier.finish()
}
