//! The audit log checked.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::LogVerification;

/// `verify`: the audit log checked. A broken chain or signature is an
/// error naming the first entry that disagrees; stored rows that disagree
/// with the log are listed in `mismatches`, with `intact` false (and exit
/// status 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Verification {
    /// Whether every stored row is what the log implies (`mismatches` is
    /// empty).
    pub intact: bool,
    /// Entries in the whole chain.
    pub entries: u64,
    /// Events whose state and answers were checked.
    pub events: u64,
    /// Signatures verified.
    pub signatures: u64,
    /// Events fired by a break-glass.
    pub breakglass: u64,
    /// The hash of the last entry (64 hex digits): keep it, and
    /// `verify --since HEAD` later proves the log was only appended to.
    pub head: String,
    /// Every stored field that disagrees with the log.
    #[serde(default)]
    pub mismatches: Vec<Mismatch>,
}

/// A stored field of an event, campaign, chat link, delegation or token
/// that disagrees with its log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Mismatch {
    /// `event`, `campaign`, `chat-link`, `delegation` or `token`.
    pub subject: String,
    /// Its id.
    pub id: String,
    /// The field (`state`, `quorum`, `answers.bob`, `payload`, …; `row` when
    /// the row exists without a log or is gone while its log says it exists).
    pub field: String,
    /// The stored value.
    pub stored: serde_json::Value,
    /// The value the log implies.
    pub logged: serde_json::Value,
}

impl From<&LogVerification> for Verification {
    fn from(report: &LogVerification) -> Self {
        Verification {
            intact: report.mismatches.is_empty(),
            entries: report.entries,
            events: report.events,
            signatures: report.signatures,
            breakglass: report.breakglass,
            head: report.head.hex(),
            mismatches: report
                .mismatches
                .iter()
                .map(|m| Mismatch {
                    subject: m.subject.to_string(),
                    id: m.id.to_string(),
                    field: m.field.clone(),
                    stored: m.stored.clone(),
                    logged: m.logged.clone(),
                })
                .collect(),
        }
    }
}
