//! The result of a run: how it ended and what it saw. The runner produces
//! it; renderers and front ends read it.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use uuid::Uuid;

use crate::{AuditAction, EventState};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// Every event in scope fired (exit 0).
    Succeeded,
    /// Every event in scope is final and some missed or were cancelled (exit 3).
    Failed,
    /// The timeout passed first (exit 124).
    TimedOut,
    /// The stop flag was raised, e.g. by Ctrl-C (exit 130). All state is
    /// saved; running again resumes.
    Interrupted,
}

impl RunOutcome {
    /// The CLI's exit code for this outcome.
    pub fn exit_code(self) -> u8 {
        match self {
            RunOutcome::Succeeded => 0,
            RunOutcome::Failed => 3,
            RunOutcome::TimedOut => 124,
            RunOutcome::Interrupted => 130,
        }
    }
}

/// A summary of the events a run saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Events that fired.
    pub fired: usize,
    /// Events that were missed.
    pub missed: usize,
    /// Events that were cancelled.
    pub cancelled: usize,
    /// Events not final when the run stopped.
    pub unfinished: usize,
}

/// The result of [`crate::runner::run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// How it ended.
    pub outcome: RunOutcome,
    /// Counts over the events in scope.
    pub summary: RunSummary,
}

/// One line of `run --json` / `wait --json`: a compact JSON object, flushed
/// as it happens; `type` says which. The last line is a `summary`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum RunLine {
    /// An event in scope changed state.
    Transition {
        /// The audit entry's sequence number.
        seq: i64,
        /// When it happened.
        #[serde(serialize_with = "serialize_time")]
        at: DateTime<Utc>,
        /// The event.
        event: Uuid,
        /// `campaign/name`, or the kind for a standalone event.
        label: String,
        /// `opened`, `fired`, `missed` or `cancelled`.
        action: AuditAction,
        /// The event's state after it.
        state: EventState,
        /// Why.
        reason: String,
    },
    /// The store could not be reached; the run tries again.
    StoreRetry {
        /// What failed.
        error: String,
        /// Counts from 1 in each outage.
        attempt: u32,
        /// When the next try is.
        retry_in_ms: u64,
    },
    /// The store answers again; the run goes on where it was.
    StoreRecovered {
        /// How long it could not be reached.
        outage_ms: u64,
    },
    /// How the run ended: always the last line.
    Summary {
        /// Matches the exit code: 0, 3, 124 or 130.
        outcome: RunOutcomeWord,
        /// Events in scope that fired.
        fired: usize,
        /// Events in scope that were missed.
        missed: usize,
        /// Events in scope that were cancelled.
        cancelled: usize,
        /// Events in scope still unfinished.
        unfinished: usize,
    },
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub enum RunOutcomeWord {
    /// Every event in scope fired (exit 0).
    #[serde(rename = "succeeded")]
    Succeeded,
    /// Something was missed or cancelled (exit 3).
    #[serde(rename = "failed")]
    Failed,
    /// The timeout passed (exit 124).
    #[serde(rename = "timed out")]
    TimedOut,
    /// Interrupted (exit 130); state is saved.
    #[serde(rename = "interrupted")]
    Interrupted,
}

impl RunLine {
    /// The line as printed: compact JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Serializes a time as every output writes it (RFC 3339, UTC, `Z`).
fn serialize_time<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::time_spec::format_time(*t))
}
