//! An answer message to sign elsewhere.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::time;

/// The exact message an agent signs to answer an event whose answers must
/// be signed (the MCP `answer_message` tool; the command line's
/// `answer-message` prints `message` alone). Signed with `ssh-keygen -Y
/// sign -n t-minus` and submitted with its signature within five minutes of
/// `time`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AnswerToSign {
    /// The event answered.
    pub event: Uuid,
    /// The answering agent.
    pub agent: String,
    /// `confirm`, `defer DURATION` or `decline`.
    pub answer: String,
    /// When the answer is made: the message is accepted until five minutes
    /// after it.
    #[serde(serialize_with = "time::at")]
    pub time: DateTime<Utc>,
    /// The message, byte for byte (lines ending in `\n`): sign exactly this
    /// text.
    pub message: String,
    /// The signature namespace: always `t-minus`.
    pub namespace: String,
}

/// The keys that may sign an event's answers (`GET
/// /v1/events/{event}/signers`): what a client signing through its
/// ssh-agent needs to pick the agent's key. Public keys only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventSigners {
    /// The event.
    pub event: Uuid,
    /// The key set in force for it (its campaign's, or its own) in the
    /// `allowed_signers` format of `ssh-keygen`, one `AGENT KEY` line each;
    /// `null` when its answers need no signature.
    pub allowed_signers: Option<String>,
    /// `sha256:` and 64 hex digits: the digest of that key set, as the log
    /// names it; `null` with `allowed_signers`.
    pub digest: Option<String>,
}
