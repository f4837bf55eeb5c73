//! Attestations: a campaign's outcome as an in-toto Statement v1, evidence a
//! release pipeline can archive.
//!
//! The statement's single subject is the campaign: its name
//! (`t-minus:campaign/NAME`) and the SHA-256 of its events' contents,
//! computed by [`campaign_digest`]. The predicate ([`CampaignPredicate`],
//! type [`PREDICATE_TYPE`]) lists every event's outcome with every answer in
//! its log (and the signed message and signature of each signed answer),
//! the key set in force, and the audit log's head when it was made. The
//! format is documented in `docs/json.md`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The in-toto Statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// The predicate type of a t-minus campaign attestation.
pub const PREDICATE_TYPE: &str = "https://t-minus.dev/attestation/campaign/v1";

/// An in-toto Statement v1 about one campaign.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Statement {
    /// [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub statement_type: &'static str,
    /// The campaign.
    pub subject: Vec<Subject>,
    /// [`PREDICATE_TYPE`].
    #[serde(rename = "predicateType")]
    pub predicate_type: &'static str,
    /// The campaign's outcome.
    pub predicate: CampaignPredicate,
}

/// A statement's subject: a name and its digests.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Subject {
    /// `t-minus:campaign/NAME`.
    pub name: String,
    /// `{"sha256": "<64 hex digits>"}`: the [`campaign_digest`].
    pub digest: std::collections::BTreeMap<String, String>,
}

/// What a campaign attestation says.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct CampaignPredicate {
    /// The campaign's id, name and derived state.
    pub campaign: CampaignInfo,
    /// The digest of the key set in force (`sha256:…`), or `None` when
    /// answers need no signature.
    pub signers: Option<String>,
    /// The key set's `allowed_signers` text, when there is one.
    pub signers_text: Option<String>,
    /// The audit log when the attestation was made.
    pub log: LogInfo,
    /// When it was made (the engine clock).
    pub attested_at: DateTime<Utc>,
    /// Every event of the campaign, in campaign order.
    pub events: Vec<EventOutcome>,
}

/// The campaign in a predicate.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct CampaignInfo {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// `pending`, `complete`, `failed`, … as `status` shows it.
    pub state: String,
}

/// The audit log in a predicate.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct LogInfo {
    /// The hash of the last entry (64 hex digits): `t-minus verify --since
    /// HEAD` later proves the log was only appended to.
    pub head: String,
    /// How many entries the whole log had.
    pub entries: u64,
}

/// One event's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct EventOutcome {
    /// Its id.
    pub id: Uuid,
    /// Its name in the campaign.
    pub name: Option<String>,
    /// Its kind.
    pub kind: String,
    /// Its state: `fired`, `missed`, `cancelled`, or still `pending`/`blocked`.
    pub state: String,
    /// Its content digest, `sha256:…` (what the answers are bound to).
    pub content_digest: String,
    /// Its payload.
    pub payload: Value,
    /// When it became final, if it has.
    pub finished_at: Option<DateTime<Utc>>,
    /// Every answer in its log, oldest first.
    pub answers: Vec<AnswerRecord>,
}

/// One answer from an event's log.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct AnswerRecord {
    /// The audit entry's sequence number.
    pub seq: i64,
    /// Who answered.
    pub agent: Option<String>,
    /// The attendee `agent` answered for, under its delegation (absent for
    /// an attendee's own answer): the answer is this attendee's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    /// `confirmed`, `deferred` or `declined`.
    pub answer: String,
    /// When the engine recorded it.
    pub at: DateTime<Utc>,
    /// The entry's detail (deferral, reason, signing key, key set).
    pub detail: Value,
    /// The signed message, for a signed answer.
    pub message: Option<String>,
    /// Its armored signature.
    pub signature: Option<String>,
    /// The entry's chain hash.
    pub hash: Option<String>,
}

/// The digest of a campaign's contents: SHA-256 over one line per event,
/// sorted by event name, each
/// `NAME SP sha256:HEX LF` with the event's content digest.
pub fn campaign_digest<'a>(events: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut lines: Vec<(&str, &str)> = events.into_iter().collect();
    lines.sort();
    let mut hasher = Sha256::new();
    for (name, digest) in lines {
        hasher.update(name.as_bytes());
        hasher.update(b" ");
        hasher.update(digest.as_bytes());
        hasher.update(b"\n");
    }
    base16ct::lower::encode_string(&hasher.finalize())
}
