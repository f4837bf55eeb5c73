//! The audit log checked.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::LogVerification;

/// `verify`: the audit log is intact. (A log that is not intact is an
/// error naming the first entry or row that disagrees.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Verification {
    /// Always `true`: a broken log is reported as an error.
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
}

impl From<&LogVerification> for Verification {
    fn from(report: &LogVerification) -> Self {
        Verification {
            intact: true,
            entries: report.entries,
            events: report.events,
            signatures: report.signatures,
            breakglass: report.breakglass,
            head: report.head.hex(),
        }
    }
}
