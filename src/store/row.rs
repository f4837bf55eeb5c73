//! The stored form of events, attendees, campaigns and audit entries,
//! shared by the SQLite and PostgreSQL stores.
//!
//! Both stores keep the same columns: times as integer milliseconds since
//! the Unix epoch (UTC), durations as integer milliseconds, ids as their 16
//! bytes (a BLOB on SQLite, a `uuid` on PostgreSQL), the log's hashes as their
//! 32 bytes, enums as their words, the payload and details as JSON text. Each store reads a result row's columns through [`Columns`];
//! the `read_*` functions here turn them into types, and [`EventRow`],
//! [`CampaignColumns`] and [`AuditColumns`] are the values written, so each
//! conversion is written once.

use std::str::FromStr;

use super::{RawLink, StoredLink};

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{CampaignRow, ListedEvent, NeedState, NewAuditEntry};
use crate::agent::AgentId;
use crate::audit::{AuditAction, AuditEntry};
use crate::event::TMinusEvent;
use crate::policy::QuorumGroup;
use crate::state::{EventState, ResponseStatus};

/// The columns of a campaign row, in [`read_campaign`] order.
pub(crate) const CAMPAIGN_COLUMNS: &str =
    "id, name, description, created_ms, managed, anchor_ms, revision";

/// The columns of an audit row, in [`read_audit`] order.
pub(crate) const AUDIT_COLUMNS: &str =
    "seq, event_id, at_ms, recorded_ms, agent, action, detail, on_behalf_of";

/// The columns of an audit entry with its chain links, in
/// [`read_audit_link`] order.
pub(crate) const AUDIT_LINK_COLUMNS: &str =
    "seq, event_id, at_ms, recorded_ms, agent, action, detail, on_behalf_of, prev, hash, message, \
     signature";

/// The columns of an attendee, in [`read_attendee`] order.
pub(crate) const ATTENDEE_COLUMNS: &str = "agent, status, defer_ms";

/// One result row of a store's driver, read by column position. A value of
/// the wrong type, or one that does not decode, is the store's error
/// ([`Columns::invalid`]).
pub(crate) trait Columns {
    /// The driver's error for this row.
    type Error;
    /// An integer column.
    fn int(&self, i: usize) -> Result<i64, Self::Error>;
    /// A nullable integer column.
    fn opt_int(&self, i: usize) -> Result<Option<i64>, Self::Error>;
    /// A text column.
    fn text(&self, i: usize) -> Result<String, Self::Error>;
    /// A nullable text column.
    fn opt_text(&self, i: usize) -> Result<Option<String>, Self::Error>;
    /// A text column, borrowed from the row.
    fn str(&self, i: usize) -> Result<&str, Self::Error>;
    /// A nullable text column, borrowed from the row.
    fn opt_str(&self, i: usize) -> Result<Option<&str>, Self::Error>;
    /// A boolean column.
    fn flag(&self, i: usize) -> Result<bool, Self::Error>;
    /// The error for a stored value that does not decode.
    fn invalid(&self, reason: String) -> Self::Error;

    /// Decodes a value read from this row.
    fn decode<T>(&self, value: Result<T, String>) -> Result<T, Self::Error> {
        value.map_err(|reason| self.invalid(reason))
    }

    /// A nullable column of bytes.
    fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, Self::Error>;
    /// An id column.
    fn id(&self, i: usize) -> Result<Uuid, Self::Error>;
    /// A nullable id column.
    fn opt_id(&self, i: usize) -> Result<Option<Uuid>, Self::Error>;
}

/// An id from its stored bytes.
pub(crate) fn uuid_bytes(bytes: &[u8]) -> Result<Uuid, String> {
    Uuid::from_slice(bytes).map_err(|_| format!("bad id: {} bytes", bytes.len()))
}

/// A hash of the log's chain from column `i` (its bytes), as hex: what the
/// chain's functions take.
pub(crate) fn opt_hash<C: Columns>(c: &C, i: usize) -> Result<Option<String>, C::Error> {
    Ok(c.opt_bytes(i)?.map(|b| base16ct::lower::encode_string(&b)))
}

/// The ids an id prefix (hex digits, hyphens where a UUID has them) spans,
/// lowest and highest; `None` when no id starts with it.
pub(crate) fn prefix_range(prefix: &str) -> Option<(Uuid, Uuid)> {
    const HYPHENS: [usize; 4] = [8, 13, 18, 23];
    let mut digits = String::with_capacity(32);
    for (i, c) in prefix.chars().enumerate() {
        if HYPHENS.contains(&i) {
            if c != '-' {
                return None;
            }
        } else if c.is_ascii_digit() || ('a'..='f').contains(&c) {
            digits.push(c);
        } else {
            return None;
        }
    }
    if digits.len() > 32 {
        return None;
    }
    let pad = |with: char| {
        let mut hex = digits.clone();
        hex.extend(std::iter::repeat_n(with, 32 - digits.len()));
        Uuid::parse_str(&hex).ok()
    };
    Some((pad('0')?, pad('f')?))
}

/// An event from the columns [`EVENT_COLUMNS`], without its attendees. The
/// texts it only parses are borrowed from the row.
pub(crate) fn read_event<C: Columns>(c: &C) -> Result<TMinusEvent, C::Error> {
    let row = EventRow {
        id: c.id(0)?,
        campaign_id: c.opt_id(1)?,
        name: c.opt_str(2)?,
        kind: c.str(3)?,
        description: c.opt_str(4)?,
        at_ms: c.opt_int(5)?,
        offset_ms: c.opt_int(6)?,
        start_ms: c.opt_int(7)?,
        t_minus_ms: c.int(8)?,
        defer_ms: c.int(9)?,
        max_defer_ms: c.opt_int(10)?,
        quorum: c.int(11)?,
        quorum_spec: c.str(12)?,
        fire_policy: c.str(13)?,
        organizer: c.str(14)?,
        payload: c.str(15)?,
        state: c.str(16)?,
        finished_ms: c.opt_int(17)?,
        created_ms: c.int(18)?,
        last_response_ms: c.opt_int(19)?,
        groups: c.opt_str(20)?,
        gates: c.opt_str(21)?,
        escalation: c.opt_str(22)?,
        fire_ms: None,
    };
    c.decode(row.into_event())
}

/// The columns of an attendee with its event's id first, in
/// [`read_event_attendee`] order: a chunk's attendees in one query.
pub(crate) const EVENT_ATTENDEE_COLUMNS: &str = "event_id, agent, status, defer_ms";

/// An attendee with its event's id from [`EVENT_ATTENDEE_COLUMNS`].
pub(crate) fn read_event_attendee<C: Columns>(
    c: &C,
) -> Result<(Uuid, (AgentId, ResponseStatus)), C::Error> {
    Ok((c.id(0)?, read_attendee(c, 1)?))
}

/// The `WHERE` condition of the events in a final state, for
/// [`read_finished`]. It names the states it leaves out, so a row whose
/// state is no state at all is read, and fails to decode.
pub(crate) const FINISHED_EVENTS: &str = "state NOT IN ('pending', 'blocked')";

/// The `WHERE` condition of the attendees with an answer the log must
/// explain, for [`read_event_attendee`]. It names the statuses it leaves
/// out, so a row whose status is no status at all is read, and fails to
/// decode.
pub(crate) const ANSWERED_ATTENDEES: &str = "status NOT IN ('pending', 'missed')";

/// An event's id and state from the columns `id, state`.
pub(crate) fn read_finished<C: Columns>(c: &C) -> Result<(Uuid, EventState), C::Error> {
    Ok((c.id(0)?, c.decode(parse(&c.text(1)?))?))
}

/// The columns a token is read from ([`read_token`]).
pub(crate) const TOKEN_COLUMNS: &str = "id, agent, role, created_ms, expires_ms, revoked_ms";

/// A token from the columns [`TOKEN_COLUMNS`].
pub(crate) fn read_token<C: Columns>(c: &C) -> Result<crate::token::TokenInfo, C::Error> {
    Ok(crate::token::TokenInfo {
        id: c.id(0)?,
        agent: c.text(1)?,
        role: c.decode(
            c.text(2)?
                .parse()
                .map_err(|e: crate::token::TokenError| e.to_string()),
        )?,
        created_at: c.decode(time(c.int(3)?))?,
        expires_at: c.decode(opt_time(c.opt_int(4)?))?,
        revoked_at: c.decode(opt_time(c.opt_int(5)?))?,
    })
}

/// The columns of a delegation, in [`read_delegation`] order (`d` is the
/// delegations table, `c` its campaign, joined on the left).
pub(crate) const DELEGATION_COLUMNS: &str =
    "d.id, d.from_agent, d.to_agent, d.campaign_id, c.name, d.created_ms, d.until_ms, \
     d.revoked_ms, d.message, d.signature";

/// A delegation from the columns [`DELEGATION_COLUMNS`].
pub(crate) fn read_delegation<C: Columns>(
    c: &C,
) -> Result<crate::delegation::Delegation, C::Error> {
    let signed = match (c.opt_text(8)?, c.opt_text(9)?) {
        (Some(message), Some(signature)) => {
            Some(crate::delegation::SignedDelegation { message, signature })
        }
        _ => None,
    };
    Ok(crate::delegation::Delegation {
        id: c.id(0)?,
        from: AgentId(c.text(1)?),
        to: AgentId(c.text(2)?),
        campaign: c.opt_id(3)?,
        campaign_name: c.opt_text(4)?,
        created_at: c.decode(time(c.int(5)?))?,
        until: c.decode(opt_time(c.opt_int(6)?))?,
        revoked_at: c.decode(opt_time(c.opt_int(7)?))?,
        signed,
    })
}

/// The columns of a chat link, in [`read_chat_link`] order.
pub(crate) const CHAT_LINK_COLUMNS: &str = "id, chat, chat_user, agent, linked_ms";

/// A chat link from the columns [`CHAT_LINK_COLUMNS`].
pub(crate) fn read_chat_link<C: Columns>(c: &C) -> Result<crate::chat::ChatLink, C::Error> {
    let chat = c.text(1)?;
    Ok(crate::chat::ChatLink {
        id: c.id(0)?,
        chat: c.decode(
            crate::chat::Chat::parse(&chat).ok_or_else(|| format!("unknown chat `{chat}`")),
        )?,
        user: c.text(2)?,
        agent: AgentId(c.text(3)?),
        linked_at: c.decode(time(c.int(4)?))?,
    })
}

/// A need's name for the event that needs it, from the columns `to_id,
/// from_id, name` (edge and needed event): its name, or its short id.
pub(crate) fn read_need_name<C: Columns>(c: &C) -> Result<(Uuid, String), C::Error> {
    let from = c.id(1)?;
    let name = c
        .opt_text(2)?
        .unwrap_or_else(|| crate::event::short_id(from));
    Ok((c.id(0)?, name))
}

/// A listing row: the event from [`EVENT_COLUMNS`] (without attendees) and
/// its campaign's name in the column after them.
pub(crate) fn read_listed<C: Columns>(c: &C) -> Result<(TMinusEvent, Option<String>), C::Error> {
    Ok((read_event(c)?, c.opt_text(23)?))
}

/// A chunk of a listing put together: each event, in the listing's order,
/// with its attendees (`attendees` in position order per event) and, when
/// it is blocked, the names of its needs (`needs` in the order they were
/// added).
pub(crate) fn listed_chunk(
    events: Vec<(TMinusEvent, Option<String>)>,
    attendees: Vec<(Uuid, (AgentId, ResponseStatus))>,
    needs: Vec<(Uuid, String)>,
) -> Vec<ListedEvent> {
    use std::collections::HashMap;
    let mut by_event: HashMap<Uuid, Vec<(AgentId, ResponseStatus)>> = HashMap::new();
    for (id, attendee) in attendees {
        by_event.entry(id).or_default().push(attendee);
    }
    let mut needs_of: HashMap<Uuid, Vec<String>> = HashMap::new();
    for (id, name) in needs {
        needs_of.entry(id).or_default().push(name);
    }
    events
        .into_iter()
        .map(|(mut event, campaign)| {
            event.attendees = by_event.remove(&event.id).unwrap_or_default();
            let needs = if event.state == crate::state::EventState::Blocked {
                needs_of.remove(&event.id).unwrap_or_default()
            } else {
                Vec::new()
            };
            ListedEvent {
                event,
                campaign,
                needs,
            }
        })
        .collect()
}

/// The ids of a chunk's events as stored, and of its blocked ones (whose
/// needs a listing shows).
pub(crate) fn chunk_ids(events: &[(TMinusEvent, Option<String>)]) -> (Vec<Uuid>, Vec<Uuid>) {
    let all = events.iter().map(|(e, _)| e.id).collect();
    let blocked = events
        .iter()
        .filter(|(e, _)| e.state == crate::state::EventState::Blocked)
        .map(|(e, _)| e.id)
        .collect();
    (all, blocked)
}

/// An attendee and its response from [`ATTENDEE_COLUMNS`] starting at
/// column `first`.
pub(crate) fn read_attendee<C: Columns>(
    c: &C,
    first: usize,
) -> Result<(AgentId, ResponseStatus), C::Error> {
    let status = c.decode(response(&c.text(first + 1)?, c.opt_int(first + 2)?))?;
    Ok((AgentId(c.text(first)?), status))
}

/// A campaign from the columns [`CAMPAIGN_COLUMNS`].
pub(crate) fn read_campaign<C: Columns>(c: &C) -> Result<CampaignRow, C::Error> {
    Ok(CampaignRow {
        id: c.id(0)?,
        name: c.text(1)?,
        description: c.opt_text(2)?,
        created_at: c.decode(time(c.int(3)?))?,
        managed: c.flag(4)?,
        anchor_at: c.decode(opt_time(c.opt_int(5)?))?,
        revision: c.int(6)?,
    })
}

/// An audit entry from the columns [`AUDIT_COLUMNS`].
pub(crate) fn read_audit<C: Columns>(c: &C) -> Result<AuditEntry, C::Error> {
    let detail = c.decode(serde_json::from_str(&c.text(6)?).map_err(|e| e.to_string()))?;
    read_audit_with(c, detail)
}

/// An audit entry from the columns [`AUDIT_COLUMNS`] but its detail, which
/// is `detail`.
fn read_audit_with<C: Columns>(c: &C, detail: serde_json::Value) -> Result<AuditEntry, C::Error> {
    Ok(AuditEntry {
        seq: c.int(0)?,
        event: c.id(1)?,
        at: c.decode(time(c.int(2)?))?,
        recorded_at: c.decode(time(c.int(3)?))?,
        agent: c.opt_text(4)?.map(AgentId),
        action: c.decode(parse::<AuditAction>(&c.text(5)?))?,
        detail,
        on_behalf_of: c.opt_text(7)?.map(AgentId),
    })
}

/// An audit entry with its links from the columns [`AUDIT_LINK_COLUMNS`].
pub(crate) fn read_audit_link<C: Columns>(c: &C) -> Result<StoredLink, C::Error> {
    let RawLink { mut link, detail } = read_raw_link(c)?;
    link.entry.detail = c.decode(serde_json::from_str(&detail).map_err(|e| e.to_string()))?;
    Ok(link)
}

/// An audit entry with its links from the columns [`AUDIT_LINK_COLUMNS`],
/// its detail left as the stored text (see [`RawLink`]).
pub(crate) fn read_raw_link<C: Columns>(c: &C) -> Result<RawLink, C::Error> {
    Ok(RawLink {
        link: StoredLink {
            entry: read_audit_with(c, serde_json::Value::Null)?,
            prev: opt_hash(c, 8)?,
            hash: opt_hash(c, 9)?,
            message: c.opt_text(10)?,
            signature: c.opt_text(11)?,
        },
        detail: c.text(6)?,
    })
}

/// A need from the columns `id, state, finished_ms` of the needed event.
pub(crate) fn read_need<C: Columns>(c: &C) -> Result<NeedState, C::Error> {
    Ok(NeedState {
        id: c.id(0)?,
        state: c.decode(parse(&c.text(1)?))?,
        finished_at: c.decode(opt_time(c.opt_int(2)?))?,
    })
}

/// A campaign member from the columns `id, name, state`.
pub(crate) fn read_member<C: Columns>(
    c: &C,
) -> Result<(Uuid, String, crate::state::EventState), C::Error> {
    Ok((
        c.id(0)?,
        c.opt_text(1)?.unwrap_or_default(),
        c.decode(parse(&c.text(2)?))?,
    ))
}

/// A campaign's row values, in [`CAMPAIGN_COLUMNS`] order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CampaignColumns {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub created_ms: i64,
    pub managed: bool,
    pub anchor_ms: Option<i64>,
    pub revision: i64,
}

impl CampaignColumns {
    /// The row that stores `c`.
    pub fn from_campaign(c: &CampaignRow) -> Self {
        CampaignColumns {
            id: c.id,
            name: c.name.clone(),
            description: c.description.clone(),
            created_ms: ms(c.created_at),
            managed: c.managed,
            anchor_ms: c.anchor_at.map(ms),
            revision: c.revision,
        }
    }
}

/// A new audit entry's row values: `event_id, at_ms, recorded_ms, agent,
/// action, detail` and whether it is a transition still to report.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AuditColumns {
    pub event_id: Uuid,
    pub at_ms: i64,
    pub recorded_ms: i64,
    pub agent: Option<String>,
    pub on_behalf_of: Option<String>,
    pub action: &'static str,
    pub detail: String,
    pub unreported: bool,
}

impl AuditColumns {
    /// The row that stores `e`.
    pub fn from_entry(e: &NewAuditEntry) -> Self {
        AuditColumns {
            event_id: e.event,
            at_ms: ms(e.at),
            recorded_ms: ms(e.recorded_at),
            agent: e.agent.as_ref().map(|a| a.0.clone()),
            on_behalf_of: e.on_behalf_of.as_ref().map(|a| a.0.clone()),
            action: e.action.as_str(),
            detail: json_text(&e.detail),
            unreported: e.action.is_reported(),
        }
    }
}

/// The columns of an event row, in [`EventRow`] field order.
pub(crate) const EVENT_COLUMNS: &str =
    "id, campaign_id, name, kind, description, at_ms, offset_ms, start_ms, \
     t_minus_ms, defer_ms, max_defer_ms, quorum, quorum_spec, fire_policy, organizer, payload, \
     state, finished_ms, created_ms, last_response_ms, groups, gates, escalation";

/// An event's own row (attendees live in their own table): its texts
/// owned (`String`, as written) or borrowed from a result row (`&str`, as
/// read).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EventRow<S = String> {
    pub id: Uuid,
    pub campaign_id: Option<Uuid>,
    pub name: Option<S>,
    pub kind: S,
    pub description: Option<S>,
    /// Absolute scheduled time before deferrals.
    pub at_ms: Option<i64>,
    /// Or: offset from the start (relative events).
    pub offset_ms: Option<i64>,
    /// When it started counting (`None` while blocked).
    pub start_ms: Option<i64>,
    pub t_minus_ms: i64,
    pub defer_ms: i64,
    pub max_defer_ms: Option<i64>,
    pub quorum: i64,
    pub quorum_spec: S,
    pub fire_policy: S,
    pub organizer: S,
    pub payload: S,
    pub state: S,
    pub finished_ms: Option<i64>,
    pub created_ms: i64,
    pub last_response_ms: Option<i64>,
    /// Quorum groups as JSON (`[{"name", "quorum", "members"}]`); `None` for
    /// a plain event (one unnamed group of all its attendees).
    pub groups: Option<S>,
    /// The gates ([`crate::gate::Gates`]) as JSON; `None` when none is set.
    pub gates: Option<S>,
    /// Escalation steps and how many were applied, as JSON (see
    /// [`crate::escalation::Escalation`]); `None` for an event without.
    pub escalation: Option<S>,
    /// When a tick has work for it: the fire time, or, for an event
    /// waiting for a window to open, that opening, or the next escalation
    /// step's due time when that comes first; written, never read back.
    pub fire_ms: Option<i64>,
}

/// Milliseconds since the epoch.
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A stored time.
pub(crate) fn time(ms: i64) -> Result<DateTime<Utc>, String> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| format!("time out of range: {ms}"))
}

/// A stored optional time.
pub(crate) fn opt_time(ms: Option<i64>) -> Result<Option<DateTime<Utc>>, String> {
    ms.map(time).transpose()
}

/// A stored word (kind, state, policy, action…).
pub(crate) fn parse<T: FromStr>(s: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e: T::Err| e.to_string())
}

/// A stored response: its status word and, for a deferral, its length.
pub(crate) fn response(word: &str, defer_ms: Option<i64>) -> Result<ResponseStatus, String> {
    ResponseStatus::from_parts(word, defer_ms)
        .ok_or_else(|| format!("unknown response status {word:?}"))
}

/// Status and deferral columns of a response.
pub(crate) fn status_columns(status: ResponseStatus) -> (&'static str, Option<i64>) {
    match status {
        ResponseStatus::Deferred(d) => ("deferred", Some(d.num_milliseconds())),
        other => (other.word(), None),
    }
}

/// `value`'s compact JSON text, as its `Display` writes it (serialized
/// straight into the string rather than through a formatter).
fn json_text(value: &serde_json::Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| value.to_string())
}

/// The stored form of quorum groups; `None` when there are none.
fn groups_text(groups: &[QuorumGroup]) -> Option<String> {
    if groups.is_empty() {
        return None;
    }
    let list: Vec<serde_json::Value> = groups
        .iter()
        .map(|g| {
            serde_json::json!({
                "name": g.name,
                "quorum": g.quorum.to_string(),
                "members": g.members,
            })
        })
        .collect();
    Some(json_text(&serde_json::Value::from(list)))
}

/// Quorum groups from their stored form.
fn parse_groups(text: &str) -> Result<Vec<QuorumGroup>, String> {
    #[derive(serde::Deserialize)]
    struct Stored {
        name: String,
        quorum: String,
        members: Vec<AgentId>,
    }
    let stored: Vec<Stored> =
        serde_json::from_str(text).map_err(|e| format!("bad groups {text:?}: {e}"))?;
    stored
        .into_iter()
        .map(|g| Ok(QuorumGroup::new(g.name, parse(&g.quorum)?, g.members)))
        .collect()
}

impl EventRow {
    /// The row that stores `e`.
    pub fn from_event(e: &TMinusEvent) -> Self {
        let (at_ms, offset_ms) = match e.relative_at {
            Some(offset) => (None, Some(offset.num_milliseconds())),
            None => (Some(ms(e.scheduled_at - e.deferred)), None),
        };
        EventRow {
            id: e.id,
            campaign_id: e.campaign,
            name: e.name.clone(),
            kind: e.kind.to_string(),
            description: e.description.clone(),
            at_ms,
            offset_ms,
            start_ms: e.started_at.map(ms),
            t_minus_ms: e.t_minus.num_milliseconds(),
            defer_ms: e.deferred.num_milliseconds(),
            max_defer_ms: e.max_defer.map(|d| d.num_milliseconds()),
            quorum: e.quorum as i64,
            quorum_spec: e.quorum_spec.to_string(),
            fire_policy: e.fire_policy.to_string(),
            organizer: e.organizer.0.clone(),
            payload: json_text(&e.payload),
            state: e.state.as_str().into(),
            finished_ms: e.finished_at.map(ms),
            created_ms: ms(e.created_at),
            last_response_ms: e.last_response_at.map(ms),
            groups: groups_text(&e.groups),
            gates: (!e.gates.is_empty())
                .then(|| serde_json::to_string(&e.gates).unwrap_or_default()),
            escalation: (!e.escalation.is_empty())
                .then(|| serde_json::to_string(&e.escalation).unwrap_or_default()),
            fire_ms: e.stored_due().map(ms),
        }
    }
}

impl<S: AsRef<str> + Into<String>> EventRow<S> {
    /// The event this row stores, without its attendees.
    pub fn into_event(self) -> Result<TMinusEvent, String> {
        // The scheduled time: absolute, or start + offset; an unstarted
        // relative event is estimated from its creation.
        let base = match (self.at_ms, self.offset_ms) {
            (Some(at), _) => at,
            (None, Some(offset)) => self.start_ms.unwrap_or(self.created_ms) + offset,
            (None, None) => return Err("event has neither at nor offset".into()),
        };
        Ok(TMinusEvent {
            rules_digest: None,
            id: self.id,
            campaign: self.campaign_id,
            name: self.name.map(Into::into),
            kind: parse(self.kind.as_ref())?,
            description: self.description.map(Into::into),
            scheduled_at: time(base + self.defer_ms)?,
            relative_at: self.offset_ms.map(Duration::milliseconds),
            started_at: opt_time(self.start_ms)?,
            t_minus: Duration::milliseconds(self.t_minus_ms),
            deferred: Duration::milliseconds(self.defer_ms),
            max_defer: self.max_defer_ms.map(Duration::milliseconds),
            quorum: usize::try_from(self.quorum).map_err(|e| e.to_string())?,
            quorum_spec: parse(self.quorum_spec.as_ref())?,
            fire_policy: parse(self.fire_policy.as_ref())?,
            organizer: AgentId(self.organizer.into()),
            payload: serde_json::from_str(self.payload.as_ref()).map_err(|e| e.to_string())?,
            state: parse(self.state.as_ref())?,
            finished_at: opt_time(self.finished_ms)?,
            created_at: time(self.created_ms)?,
            last_response_at: opt_time(self.last_response_ms)?,
            attendees: Vec::new(),
            groups: self
                .groups
                .as_ref()
                .map(AsRef::as_ref)
                .map(parse_groups)
                .transpose()?
                .unwrap_or_default(),
            gates: match self.gates.as_ref().map(AsRef::as_ref) {
                Some(text) => {
                    serde_json::from_str(text).map_err(|e| format!("bad gates {text:?}: {e}"))?
                }
                None => crate::gate::Gates::default(),
            },
            escalation: match self.escalation.as_ref().map(AsRef::as_ref) {
                Some(text) => serde_json::from_str(text)
                    .map_err(|e| format!("bad escalation {text:?}: {e}"))?,
                None => Default::default(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_prefix_spans_the_ids_that_start_with_it() {
        let id = Uuid::parse_str("e283ae30-380c-4402-ab55-b1b15e37612d").unwrap();
        for prefix in [
            "e283",
            "e283a",
            "e283ae30",
            "e283ae30-",
            "e283ae30-380c-4402-ab55-b1b15e37612d",
        ] {
            let (low, high) = prefix_range(prefix).unwrap();
            assert!(low <= id && id <= high, "{prefix}");
            assert!(low.to_string().starts_with(prefix), "{prefix}: {low}");
            assert!(high.to_string().starts_with(prefix), "{prefix}: {high}");
        }
        let (low, high) = prefix_range("e283a").unwrap();
        assert_eq!(low.to_string(), "e283a000-0000-0000-0000-000000000000");
        assert_eq!(high.to_string(), "e283afff-ffff-ffff-ffff-ffffffffffff");
        for no_id in [
            "e283ae303",
            "e283-",
            "E283",
            "g283",
            "e283ae30-380c-4402-ab55-b1b15e37612d0",
        ] {
            assert_eq!(prefix_range(no_id), None, "{no_id}");
        }
    }

    #[test]
    fn ids_sort_as_their_text() {
        let mut ids: Vec<Uuid> = (0..200).map(|_| Uuid::new_v4()).collect();
        let mut texts: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        ids.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        texts.sort();
        assert_eq!(ids.iter().map(Uuid::to_string).collect::<Vec<_>>(), texts);
    }
}
