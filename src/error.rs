//! The error type of every operation.
//!
//! Each variant says what was wrong and carries a stable diagnostic code
//! (`t_minus::…`) and a help line that says how to fix it; the CLI renders
//! them as miette reports.

use std::path::PathBuf;

use miette::Diagnostic;
use thiserror::Error;

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

    /// A fire policy could not be parsed.
    #[error("invalid fire policy `{value}`")]
    #[diagnostic(code(t_minus::input::fire_policy), help("use `early` or `on-time`"))]
    InvalidFirePolicy {
        /// The rejected text.
        value: String,
    },

    /// A payload that is not JSON.
    #[error("payload is not valid JSON: {reason}")]
    #[diagnostic(
        code(t_minus::input::payload),
        help("pass a JSON value, e.g. --payload '{{\"version\": \"2.0.0\"}}'")
    )]
    InvalidPayload {
        /// The parser's message.
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

    /// No event matches the reference.
    #[error("no event matches `{reference}`")]
    #[diagnostic(
        code(t_minus::not_found::event),
        help("list events with `t-minus status --all`")
    )]
    EventNotFound {
        /// What the user gave.
        reference: String,
    },

    /// No campaign matches the reference.
    #[error("no campaign matches `{reference}`")]
    #[diagnostic(
        code(t_minus::not_found::campaign),
        help("list campaigns with `t-minus campaign list`")
    )]
    CampaignNotFound {
        /// What the user gave.
        reference: String,
    },

    /// A response from an agent that is not an attendee.
    #[error("{agent} is not an attendee of event {event}")]
    #[diagnostic(
        code(t_minus::refused::not_attendee),
        help("only attendees may respond; the attendees are: {attendees}")
    )]
    NotAnAttendee {
        /// The agent.
        agent: String,
        /// The event's short label.
        event: String,
        /// The attendee list, comma-separated (or `none`).
        attendees: String,
    },

    /// A response after the event's fire time.
    #[error("the deadline of event {event} passed at {deadline} ({ago} ago); responses are no longer accepted")]
    #[diagnostic(
        code(t_minus::refused::deadline_passed),
        help(
            "responses must arrive before the fire time; run `t-minus tick` to record the outcome"
        )
    )]
    DeadlinePassed {
        /// The event's short label.
        event: String,
        /// The fire time, RFC 3339.
        deadline: String,
        /// How long ago, e.g. `4m32s`.
        ago: String,
    },

    /// An operation on an event that is already final.
    #[error("event {event} is already {state} (since {at}); a final event never changes")]
    #[diagnostic(
        code(t_minus::refused::final_event),
        help("schedule a new event instead; `t-minus log {id}` shows its history")
    )]
    EventFinal {
        /// The event's short label.
        event: String,
        /// The event's short id, for the hint.
        id: String,
        /// `fired`, `missed` or `cancelled`.
        state: String,
        /// When it became final, RFC 3339.
        at: String,
    },

    /// A new event whose fire time has already passed.
    #[error("the fire time {fire_time} has already passed ({ago} ago)")]
    #[diagnostic(
        code(t_minus::input::fire_time_passed),
        help("schedule it later (e.g. `+10m`) or shorten its t_minus so that the fire time is in the future")
    )]
    FireTimePassed {
        /// The fire time, RFC 3339.
        fire_time: String,
        /// How long ago.
        ago: String,
    },

    /// Neither an event nor a campaign matches.
    #[error("no event or campaign matches `{reference}`")]
    #[diagnostic(
        code(t_minus::not_found::target),
        help("list events with `t-minus status --all` and campaigns with `t-minus campaign list`")
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
        value: String,
    },

    /// A deferral past the event's `max_defer`.
    #[error("deferring event {event} by {requested} would make its total deferral {total}, more than its max_defer of {max}")]
    #[diagnostic(
        code(t_minus::refused::max_defer),
        help("defer by at most {remaining}, or confirm or decline instead")
    )]
    MaxDeferExceeded {
        /// The event's short label.
        event: String,
        /// The requested deferral.
        requested: String,
        /// The total it would reach.
        total: String,
        /// The cap.
        max: String,
        /// What is still allowed.
        remaining: String,
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
        help("choose another name with --name")
    )]
    DuplicateEventName {
        /// The campaign's name.
        campaign: String,
        /// The event name.
        name: String,
    },

    /// A link or campaign operation that does not make sense.
    #[error("{message}")]
    #[diagnostic(code(t_minus::refused::link))]
    InvalidLink {
        /// What is wrong.
        message: String,
        /// How to fix it.
        #[help]
        help: String,
    },

    /// A store file that is not a t-minus store.
    #[error("{} is not a t-minus store: {reason}", path.display())]
    #[diagnostic(
        code(t_minus::store::not_a_store),
        help("point --db (or T_MINUS_DB) at a t-minus store, or at a path that does not exist yet to create one")
    )]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },

    /// A store written by a newer t-minus.
    #[error("{} was written by a newer t-minus (schema version {found}; this build supports up to {supported})", path.display())]
    #[diagnostic(
        code(t_minus::store::newer_version),
        help("upgrade t-minus to open this store; it was left untouched")
    )]
    StoreTooNew {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },

    /// A damaged store.
    #[error("the store {} is corrupt: {reason}", path.display())]
    #[diagnostic(
        code(t_minus::store::corrupt),
        help("restore it from a backup; `sqlite3 FILE 'PRAGMA integrity_check'` shows the damage")
    )]
    StoreCorrupt {
        /// The file.
        path: PathBuf,
        /// What SQLite reported.
        reason: String,
    },

    /// A store that cannot be written.
    #[error("the store {} is read-only: {reason}", path.display())]
    #[diagnostic(
        code(t_minus::store::read_only),
        help("t-minus needs write access to the store file and its directory (for the -wal and -shm files)")
    )]
    StoreReadOnly {
        /// The file.
        path: PathBuf,
        /// What SQLite reported.
        reason: String,
    },

    /// A store that cannot be opened at all.
    #[error("cannot open the store {}: {reason}", path.display())]
    #[diagnostic(
        code(t_minus::store::open),
        help("point --db (or T_MINUS_DB) at an SQLite file in a writable directory, or at a PostgreSQL URL such as postgres://user@host:5432/db")
    )]
    StoreOpen {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// A database server that cannot be reached, or a connection that broke.
    #[error("cannot reach the PostgreSQL server {server}: {reason}")]
    #[diagnostic(
        code(t_minus::store::unreachable),
        help("check that the server is running and accepts connections at that host and port (`pg_isready -h HOST -p PORT`); `run` and `wait` keep retrying with backoff")
    )]
    StoreUnreachable {
        /// The server, without the password.
        server: String,
        /// What the driver reported.
        reason: String,
    },

    /// A database server that refused the credentials.
    #[error("the PostgreSQL server {server} refused the login: {reason}")]
    #[diagnostic(
        code(t_minus::store::auth),
        help("check the user and password: postgres://USER:PASSWORD@HOST/DB in --db or T_MINUS_DB, or PGUSER and PGPASSWORD")
    )]
    StoreAuth {
        /// The server, without the password.
        server: String,
        /// What the server said.
        reason: String,
    },

    /// TLS to a database server failed: a refused certificate, or a server
    /// without TLS when the URL requires it.
    #[error("TLS with the PostgreSQL server {server} failed: {reason}")]
    #[diagnostic(
        code(t_minus::store::tls),
        help("with sslmode=verify-full (or verify-ca) the certificate must chain to a root in sslrootcert=FILE (or the system's) and name the host of the URL; sslmode=require encrypts without checking it; sslmode=disable turns TLS off")
    )]
    StoreTls {
        /// The server, without the password.
        server: String,
        /// What failed.
        reason: String,
    },

    /// A database server without the database named in the URL.
    #[error("the PostgreSQL server {server} has no such database: {reason}")]
    #[diagnostic(
        code(t_minus::store::no_database),
        help("create it first (`createdb -h HOST -U USER DB`, or `CREATE DATABASE db;` in psql), or fix the database name at the end of the URL; t-minus creates its tables itself")
    )]
    StoreDatabaseMissing {
        /// The server, without the password.
        server: String,
        /// What the server said.
        reason: String,
    },

    /// Any other storage failure.
    #[error("storage error: {0}")]
    #[diagnostic(
        code(t_minus::store::error),
        help("nothing was changed; retry the command, and if it fails again check the store: for an SQLite file the disk and `sqlite3 FILE 'PRAGMA integrity_check'`, for PostgreSQL the server's log")
    )]
    Store(String),
}

impl TMinusError {
    /// Whether the error may pass by itself (a database server that cannot
    /// be reached right now, a connection that broke), so retrying later is
    /// worthwhile. `run` and `wait` retry these with backoff.
    pub fn is_transient(&self) -> bool {
        matches!(self, TMinusError::StoreUnreachable { .. })
    }
}

impl From<rusqlite::Error> for TMinusError {
    fn from(e: rusqlite::Error) -> Self {
        TMinusError::Store(e.to_string())
    }
}
