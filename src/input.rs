//! The errors of values that break their type's rules: an agent id, a
//! duration, a time, a quorum, a group, a fire policy, a name. The value
//! types return [`InputError`]; an operation reports it as the
//! [`crate::TMinusError`] variant of the same name, code and help.

use miette::Diagnostic;
use thiserror::Error;

/// A value that breaks its type's rules.
#[derive(Debug, Clone, PartialEq, Eq, Error, Diagnostic)]
#[non_exhaustive]
pub enum InputError {
    /// An agent id broke the rules of [`crate::AgentId`].
    #[error("invalid agent id {value:?}: {reason}")]
    #[diagnostic(
        code(t_minus::input::agent_id),
        help(
            "agent ids are 1-128 characters without whitespace or control characters, e.g. `ops-1`"
        )
    )]
    InvalidAgentId {
        /// The rejected id.
        value: String,
        /// Why it was rejected.
        reason: String,
    },

    /// An attendee appears twice.
    #[error("duplicate attendee {agent:?}")]
    #[diagnostic(
        code(t_minus::input::duplicate_attendee),
        help("list each attendee once")
    )]
    DuplicateAttendee {
        /// The repeated agent.
        agent: String,
    },

    /// A duration could not be parsed.
    #[error("invalid duration `{value}`: {reason}")]
    #[diagnostic(
        code(t_minus::input::duration),
        help("write a non-negative duration such as `90s`, `5m`, `1h 30m` or `2days`; a bare number means seconds")
    )]
    InvalidDuration {
        /// The rejected text.
        value: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A point in time could not be parsed.
    #[error("invalid time `{value}`: {reason}")]
    #[diagnostic(
        code(t_minus::input::time),
        help("write an RFC 3339 time with an offset (`2025-06-06T15:00:00Z`), `now`, or a relative time such as `+10m`")
    )]
    InvalidTime {
        /// The rejected text.
        value: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A quorum could not be parsed.
    #[error("invalid quorum `{value}`")]
    #[diagnostic(
        code(t_minus::input::quorum),
        help("write a whole number of confirmations (e.g. `2`), `all` or `majority`")
    )]
    InvalidQuorum {
        /// The rejected text.
        value: String,
    },

    /// A quorum larger than the attendee list.
    #[error("quorum {quorum} is larger than the {attendees} attendee(s)")]
    #[diagnostic(
        code(t_minus::input::quorum_too_large),
        help("lower the quorum to at most {attendees}, or add attendees")
    )]
    QuorumTooLarge {
        /// The requested quorum.
        quorum: usize,
        /// How many attendees there are.
        attendees: usize,
    },

    /// A quorum group is malformed (bad name, no members, declared twice, a
    /// quorum larger than the group…).
    #[error("invalid group `{group}`: {reason}")]
    #[diagnostic(
        code(t_minus::input::group),
        help("write groups as NAME=QUORUM:agent,agent (e.g. `ops=2:ops-1,ops-2,ops-3`); names match [A-Za-z_][A-Za-z0-9_-]{{0,63}}, each group is named once and has members, a quorum is N (at most the group's size), `all` or `majority`")
    )]
    InvalidGroup {
        /// The group's name as given.
        group: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A fire policy could not be parsed.
    #[error("invalid fire policy `{value}`")]
    #[diagnostic(
        code(t_minus::input::fire_policy),
        help("use `early`, `on-time` or `lazy`")
    )]
    InvalidFirePolicy {
        /// The rejected text.
        value: String,
    },

    /// A time window that could not be parsed.
    #[error("invalid window `{value}`: {reason}")]
    #[diagnostic(
        code(t_minus::input::window),
        help("write a window as DAYS HH:MM-HH:MM ZONE, e.g. `Mon-Fri 09:00-17:00 Europe/Berlin`")
    )]
    InvalidWindow {
        /// The rejected text.
        value: String,
        /// Why it was rejected.
        reason: String,
    },

    /// An event or campaign name that breaks the naming rule.
    #[error("invalid name {value:?}: {reason}")]
    #[diagnostic(
        code(t_minus::input::name),
        help("names match [A-Za-z_][A-Za-z0-9_-]{{0,63}}, e.g. `deploy-eu`")
    )]
    InvalidName {
        /// The rejected name.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
}
