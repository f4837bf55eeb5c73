//! The error type of every operation.
//!
//! Each variant says what was wrong and carries a stable diagnostic code
//! (`t_minus::…`) and a help line that says how to fix it; the CLI renders
//! them as miette reports.

use chrono::{DateTime, Duration, Utc};
use miette::Diagnostic;
use thiserror::Error;
use uuid::Uuid;

use crate::agent::AgentId;
use crate::duration::{format_countdown, format_duration};
use crate::event::short_id;
use crate::input::InputError;
use crate::state::EventState;
use crate::time_spec::format_time;

mod store;

pub use store::{Location, StoreError};

/// Result alias used throughout the crate.
pub type Result<T, E = TMinusError> = std::result::Result<T, E>;

/// Everything that can go wrong in t-minus.
#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum TMinusError {
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

    /// A notification rule that breaks the rules (unknown trigger, both or
    /// neither of exec and webhook, a URL that is not http(s), …).
    #[error("invalid notification: {reason}")]
    #[diagnostic(code(t_minus::input::notify), help("{help}"))]
    InvalidNotify {
        /// What is wrong.
        reason: String,
        /// How to fix it.
        help: String,
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

    /// A payload that is not JSON.
    #[error("payload is not valid JSON: {reason}")]
    #[diagnostic(
        code(t_minus::input::payload),
        help("pass a JSON value, e.g. `{{\"version\": \"2.0.0\"}}`")
    )]
    InvalidPayload {
        /// The parser's message.
        reason: String,
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

    /// A text field longer than its limit.
    #[error("the {field} is {len} bytes long; the limit is {max}")]
    #[diagnostic(
        code(t_minus::input::too_long),
        help("shorten it; put long material elsewhere and refer to it (a URL, a path in the payload)")
    )]
    TextTooLong {
        /// Which field (`decline reason`, `cancel reason`).
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },

    /// A reference that is not a UUID, prefix or `campaign/event` path.
    #[error("`{value}` is not a valid {what} reference: {reason}")]
    #[diagnostic(
        code(t_minus::input::reference),
        help("refer to an event by its UUID, a unique prefix of at least 4 hex digits (e.g. `a1b2`), or `campaign/event`")
    )]
    InvalidReference {
        /// The rejected text.
        value: String,
        /// `event` or `campaign`.
        what: &'static str,
        /// Why it was rejected.
        reason: String,
    },

    /// A prefix that matches several ids.
    #[error("`{value}` is ambiguous: it matches {}", candidates.join(", "))]
    #[diagnostic(
        code(t_minus::input::ambiguous),
        help("give more digits of the UUID so that only one matches")
    )]
    AmbiguousReference {
        /// The prefix.
        value: String,
        /// The matching ids (and names, where known).
        candidates: Vec<String>,
    },

    /// A tool call's arguments do not fit the tool (MCP server).
    #[error("invalid arguments for tool `{tool}`: {reason}")]
    #[diagnostic(
        code(t_minus::input::arguments),
        help("see the tool's input schema in tools/list")
    )]
    InvalidArguments {
        /// The tool.
        tool: String,
        /// What is wrong with them.
        reason: String,
    },

    /// An answer on the command line that is not `confirm`, `defer
    /// DURATION` or `decline`.
    #[error("invalid answer: {reason}")]
    #[diagnostic(
        code(t_minus::input::answer),
        help("answer `confirm`, `defer DURATION` (e.g. `defer 30m`) or `decline` (optionally with a reason); `answer-message` also takes `cancel`")
    )]
    InvalidAnswer {
        /// What is wrong.
        reason: String,
    },

    /// An output file could not be written.
    #[error("cannot write {path}: {reason}")]
    #[diagnostic(
        code(t_minus::io::write),
        help("check that the directory exists and is writable by this user")
    )]
    WriteFile {
        /// The file.
        path: std::path::PathBuf,
        /// The operating system's reason.
        reason: String,
    },

    /// No event matches the reference.
    #[error("no event matches `{reference}`")]
    #[diagnostic(
        code(t_minus::not_found::event),
        help("list the events, finished ones included, to find its id or name")
    )]
    EventNotFound {
        /// What the user gave.
        reference: String,
    },

    /// No campaign matches the reference.
    #[error("no campaign matches `{reference}`")]
    #[diagnostic(
        code(t_minus::not_found::campaign),
        help("list the campaigns to find its name or id")
    )]
    CampaignNotFound {
        /// What the user gave.
        reference: String,
    },

    /// A response from an agent that is not an attendee.
    #[error("{agent} is not an attendee of event {event}")]
    #[diagnostic(
        code(t_minus::refused::not_attendee),
        help("only attendees may respond; the attendees are: {}", agent_list(.attendees))
    )]
    NotAnAttendee {
        /// The agent.
        agent: AgentId,
        /// The event's short label.
        event: String,
        /// The event's attendees.
        attendees: Vec<AgentId>,
    },

    /// A response after the event's fire time.
    #[error("the deadline of event {event} passed at {} ({} ago); responses are no longer accepted", format_time(*.deadline), format_countdown(*.ago))]
    #[diagnostic(
        code(t_minus::refused::deadline_passed),
        help("responses must arrive before the fire time; a tick records the outcome")
    )]
    DeadlinePassed {
        /// The event's short label.
        event: String,
        /// The fire time.
        deadline: DateTime<Utc>,
        /// How long ago it passed.
        ago: Duration,
    },

    /// An operation on an event that is already final.
    #[error("event {event} is already {state} (since {}); a final event never changes", .at.map(format_time).unwrap_or_default())]
    #[diagnostic(
        code(t_minus::refused::final_event),
        help("schedule a new event instead; the log of event {} shows its history", short_id(*.id))
    )]
    EventFinal {
        /// The event's short label.
        event: String,
        /// The event's id, for the hint.
        id: Uuid,
        /// `fired`, `missed` or `cancelled`.
        state: EventState,
        /// When it became final.
        at: Option<DateTime<Utc>>,
    },

    /// A new event whose fire time has already passed.
    #[error("the fire time {} has already passed ({} ago)", format_time(*.fire_time), format_countdown(*.ago))]
    #[diagnostic(
        code(t_minus::input::fire_time_passed),
        help("schedule it later (e.g. `+10m`) or shorten its t_minus so that the fire time is in the future")
    )]
    FireTimePassed {
        /// The fire time.
        fire_time: DateTime<Utc>,
        /// How long ago it passed.
        ago: Duration,
    },

    /// Neither an event nor a campaign matches.
    #[error("no event or campaign matches `{reference}`")]
    #[diagnostic(
        code(t_minus::not_found::target),
        help("list the events, finished ones included, and the campaigns to find its id or name")
    )]
    TargetNotFound {
        /// What the user gave.
        reference: String,
    },

    /// A deferral of zero.
    #[error("a deferral must be longer than zero (got `{value}`)")]
    #[diagnostic(
        code(t_minus::input::deferral),
        help("defer by a positive duration, e.g. `5m`")
    )]
    NonPositiveDeferral {
        /// The rejected duration.
        value: DeferralValue,
    },

    /// An answer from the requester of a four-eyes event.
    #[error("{agent} requested event {event}, which needs four eyes: the requester's own answer is refused")]
    #[diagnostic(
        code(t_minus::refused::four_eyes),
        help("another attendee must answer; the requester only asks")
    )]
    FourEyes {
        /// The requester.
        agent: AgentId,
        /// The event's short label.
        event: String,
    },

    /// A four-eyes event whose quorum needs its requester's confirmation.
    #[error("with four eyes, {requester}'s own confirmation does not count, and {} needs {needed} confirmation(s) from the {others} other attendee(s)", .group.as_ref().map(|g| format!("group {g}")).unwrap_or_else(|| "the event".into()))]
    #[diagnostic(
        code(t_minus::input::four_eyes),
        help("lower the quorum, add attendees, or let someone else request the event")
    )]
    FourEyesQuorum {
        /// The requester.
        requester: AgentId,
        /// The group short of members, if any.
        group: Option<String>,
        /// The confirmations needed.
        needed: usize,
        /// The attendees other than the requester.
        others: usize,
    },

    /// An event firing at its fire time whose fire time is outside every
    /// window.
    #[error("the fire time {} lies outside every window ({windows}), so the event could only be missed", format_time(*.fire_time))]
    #[diagnostic(
        code(t_minus::input::outside_windows),
        help("move `at` (or `t_minus`) so the fire time falls inside a window, widen the windows, or fire `early`")
    )]
    OutsideWindows {
        /// The fire time.
        fire_time: DateTime<Utc>,
        /// The windows, in one line.
        windows: String,
    },

    /// A break-glass by an agent the event does not list.
    #[error("{agent} may not break the glass of event {event}")]
    #[diagnostic(
        code(t_minus::refused::breakglass),
        help("only the agents of the event's (or its campaign's) `breakglass` list may: {}", agent_list(.allowed))
    )]
    BreakGlassRefused {
        /// The agent.
        agent: AgentId,
        /// The event's short label.
        event: String,
        /// Who may.
        allowed: Vec<AgentId>,
    },

    /// A break-glass on an event still waiting for its needs.
    #[error("event {event} is blocked: it waits for the events it needs, and the glass cannot be broken before it opens")]
    #[diagnostic(
        code(t_minus::refused::breakglass_blocked),
        help("break the glass of the events it needs first, or wait until they fire")
    )]
    BreakGlassBlocked {
        /// The event's short label.
        event: String,
    },

    /// A break-glass without a reason.
    #[error("a break-glass needs a reason")]
    #[diagnostic(
        code(t_minus::input::breakglass_reason),
        help("say why the event must fire now, e.g. \"sev1: rollback blocked\"")
    )]
    BreakGlassReason,

    /// A deferral past the event's `max_defer`.
    #[error("deferring event {event} by {} would make its total deferral {}, more than its max_defer of {}", format_duration(*.requested), format_duration(*.already + *.requested), format_duration(*.max))]
    #[diagnostic(
        code(t_minus::refused::max_defer),
        help("defer by at most {}, or confirm or decline instead", format_duration((*.max - *.already).max(Duration::zero())))
    )]
    MaxDeferExceeded {
        /// The event's short label.
        event: String,
        /// The requested deferral.
        requested: Duration,
        /// The deferral so far.
        already: Duration,
        /// The cap.
        max: Duration,
    },

    /// A link that would close a dependency cycle.
    #[error("linking would create a dependency cycle: {}", cycle.join(" → "))]
    #[diagnostic(
        code(t_minus::refused::cycle),
        help("campaigns are acyclic; remove one of the links on the cycle")
    )]
    Cycle {
        /// The events on the cycle, first repeated at the end.
        cycle: Vec<String>,
    },

    /// A campaign name that is taken.
    #[error("a campaign named `{name}` already exists")]
    #[diagnostic(
        code(t_minus::refused::duplicate_campaign),
        help("choose another name, or use the existing campaign")
    )]
    DuplicateCampaign {
        /// The name.
        name: String,
    },

    /// An event name that is taken within its campaign.
    #[error("campaign `{campaign}` already has an event named `{name}`")]
    #[diagnostic(
        code(t_minus::refused::duplicate_event_name),
        help("choose another name for the event")
    )]
    DuplicateEventName {
        /// The campaign's name.
        campaign: String,
        /// The event name.
        name: String,
    },

    /// A standalone event name that an unfinished standalone event holds.
    #[error("an unfinished standalone event is already named `{name}` ({event})")]
    #[diagnostic(
        code(t_minus::refused::duplicate_standalone_name),
        help("choose another name, or reuse this one once that event is final (fired, missed or cancelled)")
    )]
    DuplicateStandaloneName {
        /// The name.
        name: String,
        /// The event that holds it.
        event: uuid::Uuid,
    },

    /// A link or campaign operation that does not make sense.
    #[error("{0}")]
    #[diagnostic(code(t_minus::refused::link), help("{}", .0.help()))]
    InvalidLink(LinkRefusal),

    /// A problem with the store, naming where it lives.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),

    /// A signature, key or audit chain that does not check out.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Trust(#[from] crate::trust::TrustError),

    /// An API token that is missing, unknown, revoked or expired, or not
    /// allowed what was asked.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Token(#[from] crate::token::TokenError),

    /// A delegation that cannot be made, revoked or used.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Delegation(#[from] crate::delegation::DelegationError),

    /// A chat link that cannot be made or removed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    ChatLink(#[from] crate::chat::ChatLinkError),
    /// A person, passkey, browser session or WebAuthn ceremony that is
    /// refused.
    #[error(transparent)]
    #[diagnostic(transparent)]
    People(#[from] crate::people::PeopleError),

    /// Escalation steps that break the rules.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Escalation(#[from] crate::escalation::EscalationError),

    /// A GitHub delivery refused, or an answer to GitHub that cannot be
    /// sent.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Github(#[from] crate::github::GithubError),
}

/// A rejected deferral: as the user wrote it (command line, MCP), or as the
/// duration a library caller passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeferralValue {
    /// The text as written (`0`, `0s`).
    Written(String),
    /// A duration, shown as t-minus formats durations.
    Duration(chrono::Duration),
}

impl std::fmt::Display for DeferralValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeferralValue::Written(text) => f.write_str(text),
            DeferralValue::Duration(by) => f.write_str(&crate::duration::format_duration(*by)),
        }
    }
}

/// Why a campaign operation on an event was refused.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum LinkRefusal {
    /// The event belongs to another campaign.
    #[error("event {event} already belongs to campaign `{campaign}`")]
    OtherCampaign {
        /// The event's short label.
        event: String,
        /// The campaign it belongs to.
        campaign: String,
    },
    /// The event is not in the campaign.
    #[error("event {event} is not in campaign `{campaign}`")]
    NotInCampaign {
        /// The event's short label.
        event: String,
        /// The campaign named in the operation.
        campaign: String,
    },
    /// The event that would gain a need is final.
    #[error("event {event} is already {state}; a final event cannot gain needs")]
    FinalEvent {
        /// The event's short label.
        event: String,
        /// Its final state.
        state: EventState,
    },
    /// The need already missed or was cancelled.
    #[error("event {need} already {state}, so {event} could never open")]
    DeadNeed {
        /// The needed event's short label.
        need: String,
        /// Its final state.
        state: EventState,
        /// The label of the event that would need it.
        event: String,
    },
    /// A new event would need an event of another campaign.
    #[error("{event} cannot need event {need}: it is not in campaign `{campaign}`")]
    ForeignNeed {
        /// The label of the new event.
        event: String,
        /// The needed event's short label.
        need: String,
        /// The new event's campaign.
        campaign: String,
    },
    /// A list of needs has an empty entry.
    #[error("the needs `{list}` have an empty entry")]
    EmptyNeed {
        /// The list as given.
        list: String,
    },
    /// A need names no event of the campaign.
    #[error("a need names `{need}`, but campaign `{campaign}` has no such event")]
    UnknownNeed {
        /// The need as given.
        need: String,
        /// The campaign searched.
        campaign: String,
    },
}

impl LinkRefusal {
    /// How to fix it.
    pub fn help(&self) -> String {
        match self {
            LinkRefusal::OtherCampaign { .. } => "an event belongs to at most one campaign; schedule a new event in this campaign instead".into(),
            LinkRefusal::NotInCampaign { campaign, .. } => {
                format!("add it to campaign `{campaign}` first")
            }
            LinkRefusal::FinalEvent { .. } => "link events that have not finished".into(),
            LinkRefusal::DeadNeed { .. } => "link only needs that can still fire".into(),
            LinkRefusal::ForeignNeed { .. } => {
                "an event needs only events of its own campaign; name them as they are named there"
                    .into()
            }
            LinkRefusal::EmptyNeed { .. } => {
                "separate the events it needs with single commas, e.g. `build,test`".into()
            }
            LinkRefusal::UnknownNeed { campaign, .. } => format!(
                "name events of campaign `{campaign}` (its listing shows them), as `campaign/name`, or by id; add a need before the events that need it"
            ),
        }
    }
}

/// Agent ids comma-separated, or `none`.
fn agent_list(agents: &[AgentId]) -> String {
    if agents.is_empty() {
        return "none".into();
    }
    let names: Vec<&str> = agents.iter().map(|a| a.as_str()).collect();
    names.join(", ")
}

impl TMinusError {
    /// Whether the error may pass by itself (a database server that cannot
    /// be reached right now, a connection that broke), so retrying later is
    /// worthwhile. `run` and `wait` retry these with backoff.
    pub fn is_transient(&self) -> bool {
        matches!(self, TMinusError::Store(e) if e.is_transient())
    }
}

/// A value's error, reported as the operation error of the same name, code
/// and help.
impl From<InputError> for TMinusError {
    fn from(e: InputError) -> Self {
        match e {
            InputError::InvalidAgentId { value, reason } => {
                TMinusError::InvalidAgentId { value, reason }
            }
            InputError::DuplicateAttendee { agent } => TMinusError::DuplicateAttendee { agent },
            InputError::InvalidDuration { value, reason } => {
                TMinusError::InvalidDuration { value, reason }
            }
            InputError::InvalidTime { value, reason } => TMinusError::InvalidTime { value, reason },
            InputError::InvalidQuorum { value } => TMinusError::InvalidQuorum { value },
            InputError::QuorumTooLarge { quorum, attendees } => {
                TMinusError::QuorumTooLarge { quorum, attendees }
            }
            InputError::InvalidGroup { group, reason } => {
                TMinusError::InvalidGroup { group, reason }
            }
            InputError::InvalidFirePolicy { value } => TMinusError::InvalidFirePolicy { value },
            InputError::InvalidName { value, reason } => TMinusError::InvalidName { value, reason },
            InputError::InvalidWindow { value, reason } => {
                TMinusError::InvalidWindow { value, reason }
            }
        }
    }
}
