//! The audit trail: every response, deferral, cancellation and transition.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::agent::AgentId;

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuditAction {
    /// The event was created.
    Scheduled,
    /// A manifest apply changed the event.
    Updated,
    /// The event joined a campaign or got a new need.
    Linked,
    /// An attendee confirmed.
    Confirmed,
    /// An attendee deferred.
    Deferred,
    /// An attendee declined.
    Declined,
    /// Transition blocked → pending (or a link made it blocked again: `blocked`).
    Opened,
    /// A link made a pending event wait for a need.
    Blocked,
    /// Transition → fired.
    Fired,
    /// Transition → missed.
    Missed,
    /// Transition → cancelled.
    Cancelled,
    /// A notification was delivered.
    Notified,
    /// A notification was given up after its last attempt (or a permanent
    /// failure).
    #[serde(rename = "notify-failed")]
    NotifyFailed,
    /// An API token was made (the entry's subject is the token's id).
    #[serde(rename = "token-created")]
    TokenCreated,
    /// An API token was revoked (the subject is the token's id).
    #[serde(rename = "token-revoked")]
    TokenRevoked,
    /// A revoked or expired API token was presented and refused (the
    /// subject is the token's id).
    #[serde(rename = "token-refused")]
    TokenRefused,
    /// A manifest apply removed the unfinished event (its row is gone).
    Removed,
    /// The event's whole record, written once by the migration that made
    /// the log explain every row (for events created before it).
    Baseline,
    /// A campaign was created (the subject is the campaign's id).
    #[serde(rename = "campaign-created")]
    CampaignCreated,
    /// A campaign's own fields changed (the subject is the campaign's id).
    #[serde(rename = "campaign-updated")]
    CampaignUpdated,
    /// A campaign was removed with its events (the subject is the
    /// campaign's id).
    #[serde(rename = "campaign-removed")]
    CampaignRemoved,
    /// A campaign's whole record, written once by the migration that made
    /// the log explain every row.
    #[serde(rename = "campaign-baseline")]
    CampaignBaseline,
    /// An agent let another answer for it (the subject is the
    /// delegation's id).
    Delegated,
    /// A delegation was revoked (the subject is the delegation's id).
    Undelegated,
    /// An escalation step added attendees.
    Escalated,
    /// A chat account (a Slack user) was linked to an agent: its answers
    /// from that chat are the agent's (the subject is the link's id).
    #[serde(rename = "chat-linked")]
    ChatLinked,
    /// A chat account's link to an agent was removed (the subject is the
    /// link's id).
    #[serde(rename = "chat-unlinked")]
    ChatUnlinked,
    /// A GitHub deployment asked for a review and got a campaign (the
    /// subject is the deployment's id; the detail is its row as received).
    #[serde(rename = "github-requested")]
    GithubRequested,
    /// GitHub accepted the deployment's review (`approved` or `rejected`).
    #[serde(rename = "github-reported")]
    GithubReported,
    /// The deployment's review was given up after its last attempt (or a
    /// permanent refusal).
    #[serde(rename = "github-report-failed")]
    GithubReportFailed,
    /// A person was invited to enrol a passkey for an agent (the subject
    /// is the invitation's id).
    #[serde(rename = "person-invited")]
    PersonInvited,
    /// A person enrolled a passkey with an invitation (the subject is the
    /// invitation's id; the detail records the credential id and its
    /// public key).
    #[serde(rename = "person-enrolled")]
    PersonEnrolled,
    /// A passkey was revoked (the subject is the id of the invitation that
    /// enrolled it).
    #[serde(rename = "person-revoked")]
    PersonRevoked,
}

impl AuditAction {
    /// The entry that records an event ending in `state`: `fired`, `missed`
    /// or `cancelled`; `None` for a state that is not final.
    pub fn ending_in(state: crate::state::EventState) -> Option<AuditAction> {
        use crate::state::EventState;
        match state {
            EventState::Fired => Some(AuditAction::Fired),
            EventState::Missed => Some(AuditAction::Missed),
            EventState::Cancelled => Some(AuditAction::Cancelled),
            EventState::Pending | EventState::Blocked => None,
        }
    }

    /// Whether the entry is about a campaign (its subject is the campaign's
    /// id).
    pub fn is_about_campaign(self) -> bool {
        matches!(
            self,
            AuditAction::CampaignCreated
                | AuditAction::CampaignUpdated
                | AuditAction::CampaignRemoved
                | AuditAction::CampaignBaseline
        )
    }

    /// Whether this is a state transition that a tick reports.
    pub fn is_transition(self) -> bool {
        matches!(
            self,
            AuditAction::Opened | AuditAction::Fired | AuditAction::Missed | AuditAction::Cancelled
        )
    }

    /// Whether a tick reports it: a state transition, or an escalation
    /// step applied ([`crate::tick::TickResult::escalations`]).
    pub fn is_reported(self) -> bool {
        self.is_transition() || self == AuditAction::Escalated
    }

    /// The lowercase word used in output and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Scheduled => "scheduled",
            AuditAction::Updated => "updated",
            AuditAction::Linked => "linked",
            AuditAction::Confirmed => "confirmed",
            AuditAction::Deferred => "deferred",
            AuditAction::Declined => "declined",
            AuditAction::Opened => "opened",
            AuditAction::Blocked => "blocked",
            AuditAction::Fired => "fired",
            AuditAction::Missed => "missed",
            AuditAction::Cancelled => "cancelled",
            AuditAction::Notified => "notified",
            AuditAction::NotifyFailed => "notify-failed",
            AuditAction::TokenCreated => "token-created",
            AuditAction::TokenRevoked => "token-revoked",
            AuditAction::TokenRefused => "token-refused",
            AuditAction::Removed => "removed",
            AuditAction::Baseline => "baseline",
            AuditAction::CampaignCreated => "campaign-created",
            AuditAction::CampaignUpdated => "campaign-updated",
            AuditAction::CampaignRemoved => "campaign-removed",
            AuditAction::CampaignBaseline => "campaign-baseline",
            AuditAction::Delegated => "delegated",
            AuditAction::Undelegated => "undelegated",
            AuditAction::Escalated => "escalated",
            AuditAction::ChatLinked => "chat-linked",
            AuditAction::ChatUnlinked => "chat-unlinked",
            AuditAction::GithubRequested => "github-requested",
            AuditAction::GithubReported => "github-reported",
            AuditAction::GithubReportFailed => "github-report-failed",
            AuditAction::PersonInvited => "person-invited",
            AuditAction::PersonEnrolled => "person-enrolled",
            AuditAction::PersonRevoked => "person-revoked",
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuditAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use AuditAction::*;
        Ok(match s {
            "scheduled" => Scheduled,
            "updated" => Updated,
            "linked" => Linked,
            "confirmed" => Confirmed,
            "deferred" => Deferred,
            "declined" => Declined,
            "opened" => Opened,
            "blocked" => Blocked,
            "fired" => Fired,
            "missed" => Missed,
            "cancelled" => Cancelled,
            "notified" => Notified,
            "notify-failed" => NotifyFailed,
            "token-created" => TokenCreated,
            "token-revoked" => TokenRevoked,
            "token-refused" => TokenRefused,
            "removed" => Removed,
            "baseline" => Baseline,
            "campaign-created" => CampaignCreated,
            "campaign-updated" => CampaignUpdated,
            "campaign-removed" => CampaignRemoved,
            "campaign-baseline" => CampaignBaseline,
            "delegated" => Delegated,
            "undelegated" => Undelegated,
            "escalated" => Escalated,
            "chat-linked" => ChatLinked,
            "chat-unlinked" => ChatUnlinked,
            "github-requested" => GithubRequested,
            "github-reported" => GithubReported,
            "github-report-failed" => GithubReportFailed,
            "person-invited" => PersonInvited,
            "person-enrolled" => PersonEnrolled,
            "person-revoked" => PersonRevoked,
            other => return Err(format!("unknown audit action `{other}`")),
        })
    }
}

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Position in the store-wide log; increases with every entry.
    pub seq: i64,
    /// The event it concerns (for the `token-…` actions, the token's id;
    /// for `delegated` and `undelegated`, the delegation's; for
    /// `chat-linked` and `chat-unlinked`, the chat link's; for the
    /// `github-…` actions, the GitHub deployment's).
    pub event: Uuid,
    /// When it happened (for a transition, the logical time: e.g. the fire
    /// time of a miss recorded by a later tick).
    pub at: DateTime<Utc>,
    /// When it was written.
    pub recorded_at: DateTime<Utc>,
    /// The agent who acted, if any.
    pub agent: Option<AgentId>,
    /// The agent `agent` acted for, for an answer given under a delegation.
    pub on_behalf_of: Option<AgentId>,
    /// What happened.
    pub action: AuditAction,
    /// Details (reason, deferral, new fire time, …).
    pub detail: serde_json::Value,
}
