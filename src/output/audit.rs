//! Audit entries: what happened to an event, and the chain that proves the
//! log was only appended to.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::time;
use crate::store::StoredLink;
use crate::AuditAction;

/// One entry of the audit log: a transition or an answer. `tick` reports
/// transitions in this shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuditEntry {
    /// Its position in the store-wide log; increases with every entry.
    pub seq: i64,
    /// The event it concerns.
    pub event: Uuid,
    /// When it happened.
    #[serde(serialize_with = "time::at")]
    pub at: DateTime<Utc>,
    /// When it was written (later than `at` for an outcome a tick recorded
    /// after the fact).
    #[serde(serialize_with = "time::at")]
    pub recorded_at: DateTime<Utc>,
    /// Who did it; `null` for the clock.
    pub agent: Option<String>,
    /// The agent `agent` answered for, under a delegation (absent
    /// otherwise): the answer is this agent's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    /// What happened.
    pub action: AuditAction,
    /// An object whose keys depend on the action (reason, deferral, new
    /// fire time, signing key, …); unknown keys are informational.
    pub detail: serde_json::Value,
}

impl From<&crate::AuditEntry> for AuditEntry {
    fn from(entry: &crate::AuditEntry) -> Self {
        AuditEntry {
            seq: entry.seq,
            event: entry.event,
            at: entry.at,
            recorded_at: entry.recorded_at,
            agent: entry.agent.as_ref().map(|a| a.as_str().to_string()),
            on_behalf_of: entry.on_behalf_of.as_ref().map(|a| a.as_str().to_string()),
            action: entry.action,
            detail: entry.detail.clone(),
        }
    }
}

impl AuditEntry {
    /// The library's entry this output describes, for the renderers of
    /// [`crate::display`]. Fails on an invalid agent id.
    pub fn to_entry(&self) -> crate::Result<crate::AuditEntry> {
        Ok(crate::AuditEntry {
            seq: self.seq,
            event: self.event,
            at: self.at,
            recorded_at: self.recorded_at,
            agent: self
                .agent
                .as_deref()
                .map(crate::AgentId::parse)
                .transpose()?,
            on_behalf_of: self
                .on_behalf_of
                .as_deref()
                .map(crate::AgentId::parse)
                .transpose()?,
            action: self.action,
            detail: self.detail.clone(),
        })
    }
}

/// An [`AuditEntry`] with its chain links, as `log` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LogEntry {
    /// The entry.
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// The `hash` of the entry before it in the store's commit order (64
    /// zeros for the first entry).
    pub prev: Option<String>,
    /// SHA-256 over `prev` and the entry's canonical bytes (64 hex digits).
    pub hash: Option<String>,
    /// The signed answer message, for a signed answer.
    pub message: Option<String>,
    /// The armored `sshsig` signature of `message`.
    pub signature: Option<String>,
}

impl From<&StoredLink> for LogEntry {
    fn from(link: &StoredLink) -> Self {
        LogEntry {
            entry: (&link.entry).into(),
            prev: link.prev.clone(),
            hash: link.hash.clone(),
            message: link.message.clone(),
            signature: link.signature.clone(),
        }
    }
}
