//! Delegations: one agent (FROM) lets another (TO) answer for it.
//!
//! A delegation is in force from when it is made until its `until` time
//! (exclusive) or until it is revoked, whichever comes first. It covers the
//! events of one campaign, or every event when it names none. While one is
//! in force, TO may confirm, defer or decline FROM's attendance: the answer
//! is FROM's (FROM's status changes), and the log records that TO gave it
//! for FROM (the entry's agent is TO, its `on_behalf_of` FROM). A
//! delegation is never passed on: TO cannot delegate FROM's answers.
//!
//! An event whose answers must be signed takes a delegated answer only when
//! it is an answer message v2 naming FROM in `on-behalf-of:`, signed by a
//! key the event's key set allows for TO, and a delegation *signed by
//! FROM* with a key that same set allows for FROM is in force: FROM's
//! signature, not the store, says that TO may answer for it (see
//! `docs/security.md`).

use chrono::{DateTime, Utc};
use miette::Diagnostic;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::agent::AgentId;

/// A delegation as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    /// Its id (`undelegate` takes it, or a unique prefix).
    pub id: Uuid,
    /// The agent whose answers may be given by another.
    pub from: AgentId,
    /// The agent who may give them.
    pub to: AgentId,
    /// The campaign it covers (`None`: every event).
    pub campaign: Option<Uuid>,
    /// The campaign's name, when it covers one that still exists.
    pub campaign_name: Option<String>,
    /// When it was made: in force from then.
    pub created_at: DateTime<Utc>,
    /// When it ends by itself (exclusive), if ever.
    pub until: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The signed delegation message and its armored signature, when FROM
    /// signed it.
    pub signed: Option<SignedDelegation>,
}

/// A signed delegation message and its armored `sshsig` signature, as
/// stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDelegation {
    /// The canonical delegation message (see [`crate::trust::grant`]).
    pub message: String,
    /// The armored signature (`-----BEGIN SSH SIGNATURE-----` …).
    pub signature: String,
}

/// Where a delegation stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DelegationState {
    /// In force.
    Active,
    /// Its `until` time has passed.
    Expired,
    /// It was revoked.
    Revoked,
}

impl DelegationState {
    /// The lowercase word used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            DelegationState::Active => "active",
            DelegationState::Expired => "expired",
            DelegationState::Revoked => "revoked",
        }
    }
}

impl Delegation {
    /// Where it stands at `now`: revoked (at or before `now`), expired (its
    /// `until` at or before `now`), or active.
    pub fn state(&self, now: DateTime<Utc>) -> DelegationState {
        if self.revoked_at.is_some_and(|at| at <= now) {
            DelegationState::Revoked
        } else if self.until.is_some_and(|until| until <= now) {
            DelegationState::Expired
        } else {
            DelegationState::Active
        }
    }

    /// Whether it lets `to` answer for `from` at `now` for an event of
    /// `campaign` (`None`: a standalone event).
    pub fn covers(
        &self,
        from: &AgentId,
        to: &AgentId,
        campaign: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> bool {
        &self.from == from
            && &self.to == to
            && self.created_at <= now
            && self.state(now) == DelegationState::Active
            && (self.campaign.is_none() || self.campaign == campaign)
    }
}

/// What can go wrong making, revoking or using a delegation.
#[derive(Debug, Clone, PartialEq, Eq, Error, Diagnostic)]
#[non_exhaustive]
pub enum DelegationError {
    /// An agent delegating to itself.
    #[error("agent {agent} cannot delegate to itself or answer for itself under a delegation")]
    #[diagnostic(
        code(t_minus::input::delegation),
        help("name two different agents: the one whose answers are given, and the one who gives them")
    )]
    ToItself {
        /// The agent.
        agent: String,
    },

    /// A delegation whose end is not after now.
    #[error("the delegation would end at {until}, which is not after now ({now})")]
    #[diagnostic(
        code(t_minus::input::delegation_until),
        help("end the delegation at a time after now, or leave the end out (until revoked)")
    )]
    UntilPassed {
        /// The end asked for.
        until: DateTime<Utc>,
        /// The engine clock.
        now: DateTime<Utc>,
    },

    /// An answer for another agent without a delegation in force.
    #[error("agent {to} may not answer for {from} on event {event}: {why}")]
    #[diagnostic(
        code(t_minus::refused::no_delegation),
        help("{from} lets {to} answer for it with `Engine::delegate` (for every event or one campaign); `Engine::delegations` lists the delegations")
    )]
    NotInForce {
        /// Who answered.
        to: String,
        /// For whom.
        from: String,
        /// The event's short label.
        event: String,
        /// What is missing: no delegation, only expired or revoked ones, or
        /// one for another campaign.
        why: String,
    },

    /// A delegated answer to an event whose answers must be signed, while
    /// no delegation signed by FROM with a key of the event's key set is in
    /// force.
    #[error("agent {to} may not answer for {from} on event {event}: its answers must be signed, and no delegation in force is signed by {from} with a key its key set allows")]
    #[diagnostic(
        code(t_minus::refused::unsigned_delegation),
        help("{from} signs a delegation to {to} (`Engine::delegate_with_key`) with a key the event's signers allow for {from}")
    )]
    Unsigned {
        /// Who answered.
        to: String,
        /// For whom.
        from: String,
        /// The event's short label.
        event: String,
    },

    /// No delegation has this id or prefix.
    #[error("no delegation matches `{reference}`")]
    #[diagnostic(
        code(t_minus::not_found::delegation),
        help("give a delegation's id or a unique prefix of 4+ hex digits; `Engine::delegations` lists them")
    )]
    NotFound {
        /// The reference as given.
        reference: String,
    },

    /// Revoking a delegation that is already revoked.
    #[error("delegation {id} was already revoked at {at}")]
    #[diagnostic(
        code(t_minus::refused::delegation_revoked),
        help("nothing to do: a revoked delegation stays revoked")
    )]
    AlreadyRevoked {
        /// Its id.
        id: Uuid,
        /// When it was revoked.
        at: DateTime<Utc>,
    },
}
