//! The transaction methods of both stores, written once.
//!
//! [`SqlTx`] implements [`Tx`] over a [`Backend`]: one open transaction of
//! SQLite or PostgreSQL. Every query is written here once, in one text both
//! databases are given: PostgreSQL's own (`$1` placeholders, the `tm_`
//! table names, `= ANY($1)` for a list parameter, `TRUE` and `FALSE`), which
//! the SQLite backend rewrites to its dialect (`?1`, bare table names, an
//! `IN (…)` list, `1` and `0`) once per text. What truly differs stays in
//! the backend: connecting and transactions, statement caching, bulk
//! inserts, streaming a listing, the write lock, error mapping, migrations,
//! and change notification.
//!
//! The layer keeps what a write transaction knows of its own rows
//! ([`Written`]), holds inserted rows back to hand them to the backend in
//! bulk ([`Pending`]), and counts campaign revision bumps to write them once.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::notify_row::{self, DeliveryRow, DELIVERY_COLUMNS};
use super::row::{
    self, ms, read_attendee, read_audit, read_audit_link, read_campaign, read_chat_link,
    read_delegation, read_event, read_event_attendee, read_finished, read_listed, read_member,
    read_need, read_need_name, read_raw_link, read_token, status_columns, AuditColumns,
    CampaignColumns, Columns, EventRow, ANSWERED_ATTENDEES, ATTENDEE_COLUMNS, AUDIT_COLUMNS,
    AUDIT_LINK_COLUMNS, CAMPAIGN_COLUMNS, CHAT_LINK_COLUMNS, DELEGATION_COLUMNS,
    EVENT_ATTENDEE_COLUMNS, EVENT_COLUMNS, FINISHED_EVENTS, TOKEN_COLUMNS,
};
use super::schema::Migration;
use super::written::Written;
use super::{
    chain_links, new_entry_links, CampaignRow, EventFilter, ListedEvent, NeedState, NewAuditEntry,
    RawLink, StoredEvent, StoredLink, StoredOutcomes, StoredSigners, StoredState, Tx,
    LISTING_CHUNK,
};
use crate::agent::AgentId;
use crate::audit::AuditEntry;
use crate::chat::{Chat, ChatLink};
use crate::delegation::Delegation;
use crate::error::{Result, TMinusError};
use crate::event::TMinusEvent;
use crate::github::GithubDeployment;
use crate::notification::{Delivery, NotifyRule, Reminder};
use crate::people::{Ceremony, Invitation, PasskeyInfo, SessionRow};
use crate::state::{EventState, ResponseStatus};
use crate::token::{TokenHash, TokenInfo};

/// The columns of an invitation, in [`read_invite`] order.
const INVITE_COLUMNS: &str = "id, agent, created_ms, expires_ms, used_ms";

/// An invitation from the columns [`INVITE_COLUMNS`].
fn read_invite<C: Columns>(c: &C) -> std::result::Result<Invitation, C::Error> {
    Ok(Invitation {
        id: c.id(0)?,
        agent: c.text(1)?,
        created_at: c.decode(row::time(c.int(2)?))?,
        expires_at: c.decode(row::time(c.int(3)?))?,
        used_at: c.decode(row::opt_time(c.opt_int(4)?))?,
    })
}

/// The columns of a passkey, in [`read_passkey`] order.
const PASSKEY_COLUMNS: &str =
    "id, credential, agent, public_key, algorithm, created_ms, revoked_ms";

/// A passkey from the columns [`PASSKEY_COLUMNS`].
fn read_passkey<C: Columns>(c: &C) -> std::result::Result<PasskeyInfo, C::Error> {
    Ok(PasskeyInfo {
        id: c.id(0)?,
        credential: c.text(1)?,
        agent: c.text(2)?,
        public_key: c.text(3)?,
        algorithm: c.text(4)?,
        created_at: c.decode(row::time(c.int(5)?))?,
        revoked_at: c.decode(row::opt_time(c.opt_int(6)?))?,
    })
}

/// A statement parameter, bound by each backend in its driver's types.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// SQL `NULL`.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
    /// A boolean (an integer 0 or 1 on SQLite).
    Bool(bool),
    /// A list of texts, for `= ANY($n)`; it must be the last parameter.
    Texts(Vec<String>),
    /// An id: 16 bytes on SQLite, a `uuid` on PostgreSQL.
    Id(Uuid),
    /// A list of ids, for `= ANY($n)`; it must be the last parameter.
    Ids(Vec<Uuid>),
    /// Bytes (a hash of the log's chain): a BLOB, a `bytea`.
    Bytes(Vec<u8>),
}

impl Value {
    /// A hash of the log's chain, given as hex, as stored: its bytes. Text
    /// that is not hex (never written by the chain) is stored as it is.
    pub(crate) fn hash(hex: &str) -> Value {
        match base16ct::lower::decode_vec(hex) {
            Ok(bytes) => Value::Bytes(bytes),
            Err(_) => Value::Text(hex.to_string()),
        }
    }
}

/// `From` each type for the [`Value`] variant that holds it.
macro_rules! value_from {
    ($($t:ty => $v:expr),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Self {
                $v(v)
            }
        })*
    };
}

value_from! {
    i64 => Value::Int,
    bool => Value::Bool,
    String => Value::Text,
    &String => |v: &String| Value::Text(v.clone()),
    &str => |v: &str| Value::Text(v.to_string()),
    Uuid => Value::Id,
    Vec<String> => Value::Texts,
    Vec<Uuid> => Value::Ids,
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// A row of values, each turned into a [`Value`].
macro_rules! row {
    ($($v:expr),* $(,)?) => { [$($crate::store::sql::Value::from($v)),*] };
}

/// The parameters of a statement, each turned into a [`Value`].
macro_rules! values {
    ($($v:expr),* $(,)?) => { &row![$($v),*] };
}

/// An event of a listing as its row reads, with its campaign's name.
pub(crate) type Listed = (TMinusEvent, Option<String>);

/// A table that rows are inserted into in bulk ([`Backend::insert`]).
#[derive(Debug)]
pub(crate) struct Table {
    /// Its name, as statements write it (`tm_events`).
    pub name: &'static str,
    /// The columns inserted, as SQL lists them.
    pub columns: &'static str,
    /// The kind of each column's values, a letter each: `i`nteger,
    /// `t`ext, `b`oolean, `u`uid, `x` bytes (for a backend that types
    /// them).
    pub kinds: &'static str,
    /// Whether a row that is already stored (same key) is skipped.
    pub skip_existing: bool,
}

/// Event rows: [`EVENT_COLUMNS`], `fire_ms` and `campaign_pos`.
pub(crate) const EVENTS: Table = Table {
    name: "tm_events",
    columns: "id, campaign_id, name, kind, description, at_ms, offset_ms, start_ms, \
              t_minus_ms, defer_ms, max_defer_ms, quorum, quorum_spec, fire_policy, organizer, \
              payload, state, finished_ms, created_ms, last_response_ms, groups, gates, escalation, \
              fire_ms, campaign_pos",
    kinds: "uutttiiiiiiitttttiiitttii",
    skip_existing: false,
};

/// Attendee rows.
pub(crate) const ATTENDEES: Table = Table {
    name: "tm_attendees",
    columns: "event_id, position, agent, status, defer_ms, open",
    kinds: "uittib",
    skip_existing: false,
};

/// Edge rows (an edge already stored is skipped).
pub(crate) const EDGES: Table = Table {
    name: "tm_edges",
    columns: "campaign_id, from_id, to_id",
    kinds: "uuu",
    skip_existing: true,
};

/// Audit rows, in chain order.
pub(crate) const AUDIT: Table = Table {
    name: "tm_audit",
    columns: "event_id, at_ms, recorded_ms, agent, action, detail, unreported, prev, hash, \
              message, signature, on_behalf_of",
    kinds: "uiitttbxxttt",
    skip_existing: false,
};

/// Rows a write transaction has inserted but not yet handed to its
/// backend, each table's values row after row. They go together, in bulk
/// ([`Backend::insert`]), before the next statement of any other kind and
/// at commit: a statement's set-up (and on a server, its round trip) is
/// paid once for many rows.
#[derive(Default)]
pub(crate) struct Pending {
    /// [`EVENTS`] rows.
    pub events: Vec<Value>,
    /// [`ATTENDEES`] rows.
    pub attendees: Vec<Value>,
    /// [`EDGES`] rows.
    pub edges: Vec<Value>,
    /// [`AUDIT`] rows.
    pub audits: Vec<Value>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.attendees.is_empty()
            && self.edges.is_empty()
            && self.audits.is_empty()
    }

    /// Each table with its rows, in the order they are inserted: events
    /// first, so that the attendees, edges and audit entries find them.
    fn tables(self) -> [(&'static Table, Vec<Value>); 4] {
        [
            (&EVENTS, self.events),
            (&ATTENDEES, self.attendees),
            (&EDGES, self.edges),
            (&AUDIT, self.audits),
        ]
    }
}

/// One open transaction of a database: what differs between SQLite and
/// PostgreSQL. Statements arrive in PostgreSQL's text (see the module
/// documentation); a backend translates them to its dialect, caches its
/// prepared statements, and maps its driver's errors to store errors.
///
/// Dropping a backend without [`Backend::commit`] rolls its transaction
/// back.
pub(crate) trait Backend {
    /// A result row, read by column position; a value that does not decode
    /// is this backend's store error.
    type Row<'r>: Columns<Error = TMinusError>;

    /// Whether [`Written`] keeps whole events: worth their memory (about a
    /// kilobyte an event) where a read is a round trip.
    const KEEP_EVENTS: bool;

    /// The column that orders events by insertion (ties in fire time).
    const EVENT_SEQ: &'static str;

    /// Runs `sql`, handing each result row to `each`.
    fn query(
        &mut self,
        sql: &str,
        params: &[Value],
        each: impl FnMut(&Self::Row<'_>) -> Result<()>,
    ) -> Result<()>;

    /// Runs a statement; the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64>;

    /// Streams the rows `sql` selects through one cursor, handing each to
    /// `each` with the backend, free for other queries while the cursor
    /// stays open: a listing of any length in bounded memory.
    fn scan(
        &mut self,
        sql: &str,
        params: &[Value],
        each: impl FnMut(&mut Self, &Self::Row<'_>) -> Result<()>,
    ) -> Result<()>;

    /// Whether `pending` holds enough rows to insert them now.
    fn is_full(pending: &Pending) -> bool;

    /// Inserts rows into `table`, its columns' values row after row, in
    /// their order (so that `seq` follows the audit chain).
    fn insert(&mut self, table: &Table, values: Vec<Value>) -> Result<()>;

    /// Whether the store's write lock, taken when a write transaction
    /// begins, already keeps every other writer out (SQLite's `BEGIN
    /// IMMEDIATE`): audit entries then go out as they are appended. When
    /// false, writers run side by side, each event's rows locked as it is
    /// loaded ([`Backend::locks_rows`]), and the entries wait until the
    /// transaction's other rows are written; then [`Backend::lock_chain`]
    /// is taken and they are chained and inserted just before the commit.
    const WRITER_ALONE: bool;

    /// Whether loading an event for a write takes its row's lock (`SELECT
    /// … FOR UPDATE`) until the transaction ends. False where a
    /// transaction holds the whole store ([`Backend::WRITER_ALONE`]) and in
    /// read transactions.
    fn locks_rows(&self) -> bool {
        false
    }

    /// Takes the audit chain's lock, held until the transaction ends:
    /// called before the chain's head is read to extend the chain, and by
    /// [`Tx::lock_store`]. A backend whose writers are alone takes nothing.
    fn lock_chain(&mut self) -> Result<()> {
        Ok(())
    }

    /// Takes the chain's lock ([`Backend::lock_chain`]) and reads the
    /// chain's head: the newest entry's hash as hex, `None` for an empty
    /// log. A server backend does both in one round trip.
    fn chain_head(&mut self) -> Result<Option<String>> {
        self.lock_chain()?;
        let mut head = None;
        self.query(HEAD_SQL, &[], |r| {
            head = row::opt_hash(r, 0)?;
            Ok(())
        })?;
        Ok(head)
    }

    /// Runs a migration's script, in this backend's dialect.
    fn migrate_script(&mut self, migration: &Migration) -> Result<()>;

    /// Commits; `changed` when the transaction wrote anything (a server
    /// store tells its listeners).
    fn commit(self, changed: bool) -> Result<()>;
}

/// The savepoint of [`Tx::mark`], and returning to it and dropping it.
const MARK_SQL: &str = "SAVEPOINT tm_mark";
const ROLLBACK_TO_MARK_SQL: &str = "ROLLBACK TO SAVEPOINT tm_mark";
const RELEASE_MARK_SQL: &str = "RELEASE SAVEPOINT tm_mark";

/// The statement that reads the audit chain's head.
pub(crate) const HEAD_SQL: &str = "SELECT hash FROM tm_audit ORDER BY seq DESC LIMIT 1";

/// Every row `sql` selects, read by `read`.
fn rows<B: Backend, T>(
    b: &mut B,
    sql: &str,
    params: &[Value],
    read: impl Fn(&B::Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    b.query(sql, params, |r| {
        out.push(read(r)?);
        Ok(())
    })?;
    Ok(out)
}

/// Hands a chunk of a listing to `visit` in order, with the chunk's
/// attendees and its blocked events' needs, read in one query each.
fn hand_on<B: Backend>(
    b: &mut B,
    events: Vec<Listed>,
    visit: &mut dyn FnMut(ListedEvent) -> Result<()>,
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let (ids, blocked) = row::chunk_ids(&events);
    let attendees = rows(
        b,
        &format!(
            "SELECT {EVENT_ATTENDEE_COLUMNS} FROM tm_attendees WHERE event_id = ANY($1) \
             ORDER BY event_id, position"
        ),
        values![ids.clone()],
        |r| read_event_attendee(r),
    )?;
    let needs = if blocked.is_empty() {
        Vec::new()
    } else {
        rows(b, NEED_NAMES_SQL, values![blocked], |r| read_need_name(r))?
    };
    // Events of one campaign mostly share their rules: each distinct text
    // is parsed and digested once.
    let mut digests: HashMap<String, Option<[u8; 32]>> = HashMap::new();
    let mut rules: HashMap<Uuid, [u8; 32]> = HashMap::new();
    b.query(
        "SELECT event_id, rules FROM tm_notify_rules WHERE event_id = ANY($1)",
        values![ids],
        |r| {
            let text = r.text(1)?;
            let digest = match digests.get(&text) {
                Some(known) => *known,
                None => {
                    let digest = bound_rules_digest(r, Some(text.clone()))?;
                    digests.insert(text, digest);
                    digest
                }
            };
            if let Some(digest) = digest {
                rules.insert(r.id(0)?, digest);
            }
            Ok(())
        },
    )?;
    for mut listed in row::listed_chunk(events, attendees, needs) {
        listed.event.rules_digest = rules.get(&listed.event.id).copied();
        visit(listed)?;
    }
    Ok(())
}

/// The columns of a listing's rows: [`EVENT_COLUMNS`] of `tm_events`, its
/// stored notification rules (`r`), then one of its attendees (`a`: its
/// position, then [`ATTENDEE_COLUMNS`]). An event has a row per attendee
/// (one row of `NULL` attendee columns when it has none), its own columns
/// repeated on each; [`Listing`] reads them from its first.
const LISTING_COLUMNS: &str = "tm_events.id, tm_events.campaign_id, tm_events.name, \
     tm_events.kind, tm_events.description, tm_events.at_ms, tm_events.offset_ms, \
     tm_events.start_ms, tm_events.t_minus_ms, tm_events.defer_ms, tm_events.max_defer_ms, \
     tm_events.quorum, tm_events.quorum_spec, tm_events.fire_policy, tm_events.organizer, \
     tm_events.payload, tm_events.state, tm_events.finished_ms, tm_events.created_ms, \
     tm_events.last_response_ms, tm_events.groups, tm_events.gates, tm_events.escalation, \
     r.rules, a.position, a.agent, a.status, a.defer_ms";

/// The tables of a listing's rows ([`LISTING_COLUMNS`]): each event joined
/// to its rules and its attendees by their keys.
const LISTING_TABLES: &str = "tm_events \
     LEFT JOIN tm_notify_rules r ON r.event_id = tm_events.id \
     LEFT JOIN tm_attendees a ON a.event_id = tm_events.id";

/// Where [`LISTING_COLUMNS`] has the rules, and the attendee's position
/// (its other columns follow).
const LISTING_RULES: usize = 23;
const LISTING_POSITION: usize = 24;

/// A listing put together from its rows ([`LISTING_COLUMNS`] in listing
/// order, so that each event's rows are adjacent) and handed to `visit` in
/// chunks of [`LISTING_CHUNK`] events: each chunk's blocked events' needs
/// are read in one query before its events are handed on. An event's
/// columns are decoded from its first row; its attendees arrive in the
/// store's key order and are put in position order here. The chunk's
/// campaign names are read in one query, and each distinct rules text is
/// digested once a chunk.
struct Listing<'v> {
    visit: &'v mut dyn FnMut(ListedEvent) -> Result<()>,
    /// Complete events not handed on yet.
    chunk: Vec<ListedEvent>,
    /// The event whose rows are being read, with its attendees' positions.
    current: Option<(ListedEvent, Vec<i64>)>,
    /// The digest of each distinct rules text of the chunk: events of one
    /// campaign mostly share their rules, parsed and digested once.
    digests: HashMap<String, Option<[u8; 32]>>,
}

impl<'v> Listing<'v> {
    fn new(visit: &'v mut dyn FnMut(ListedEvent) -> Result<()>) -> Self {
        Listing {
            visit,
            chunk: Vec::with_capacity(LISTING_CHUNK),
            current: None,
            digests: HashMap::new(),
        }
    }

    /// Reads one row: a new event's first, or another attendee of the
    /// current one.
    fn row<B: Backend>(&mut self, b: &mut B, r: &B::Row<'_>) -> Result<()> {
        let id = r.id(0)?;
        if self.current.as_ref().is_none_or(|(l, _)| l.event.id != id) {
            self.complete();
            if self.chunk.len() >= LISTING_CHUNK {
                self.hand_on(b)?;
            }
            let mut event = read_event(r)?;
            event.rules_digest = match r.opt_str(LISTING_RULES)? {
                None => None,
                Some(text) => match self.digests.get(text) {
                    Some(known) => *known,
                    None => {
                        let digest = bound_rules_digest(r, Some(text.to_string()))?;
                        self.digests.insert(text.to_string(), digest);
                        digest
                    }
                },
            };
            let listed = ListedEvent {
                event,
                campaign: None,
                needs: Vec::new(),
            };
            self.current = Some((listed, Vec::new()));
        }
        if let (Some(position), Some((listed, positions))) =
            (r.opt_int(LISTING_POSITION)?, self.current.as_mut())
        {
            let status = r.decode(row::response(
                r.str(LISTING_POSITION + 2)?,
                r.opt_int(LISTING_POSITION + 3)?,
            ))?;
            let agent = AgentId(r.str(LISTING_POSITION + 1)?.to_string());
            listed.event.attendees.push((agent, status));
            positions.push(position);
        }
        Ok(())
    }

    /// Moves the current event, its attendees in position order, to the
    /// chunk.
    fn complete(&mut self) {
        let Some((mut listed, positions)) = self.current.take() else {
            return;
        };
        if !positions.is_sorted() {
            let mut order: Vec<(i64, (AgentId, ResponseStatus))> = positions
                .into_iter()
                .zip(std::mem::take(&mut listed.event.attendees))
                .collect();
            order.sort_by_key(|(position, _)| *position);
            listed.event.attendees = order.into_iter().map(|(_, a)| a).collect();
        }
        self.chunk.push(listed);
    }

    /// Reads the chunk's campaign names and needs and hands its events on.
    fn hand_on<B: Backend>(&mut self, b: &mut B) -> Result<()> {
        let mut campaigns: Vec<Uuid> = self.chunk.iter().filter_map(|l| l.event.campaign).collect();
        campaigns.sort_unstable();
        campaigns.dedup();
        if !campaigns.is_empty() {
            let mut names: HashMap<Uuid, String> = HashMap::new();
            b.query(
                "SELECT id, name FROM tm_campaigns WHERE id = ANY($1)",
                values![campaigns],
                |r| {
                    names.insert(r.id(0)?, r.text(1)?);
                    Ok(())
                },
            )?;
            for listed in &mut self.chunk {
                if let Some(c) = listed.event.campaign {
                    listed.campaign = names.get(&c).cloned();
                }
            }
        }
        let blocked: Vec<Uuid> = self
            .chunk
            .iter()
            .filter(|l| l.event.state == EventState::Blocked)
            .map(|l| l.event.id)
            .collect();
        if !blocked.is_empty() {
            let mut needs: HashMap<Uuid, Vec<String>> = HashMap::new();
            b.query(NEED_NAMES_SQL, values![blocked], |r| {
                let (id, name) = read_need_name(r)?;
                needs.entry(id).or_default().push(name);
                Ok(())
            })?;
            for listed in &mut self.chunk {
                if listed.event.state == EventState::Blocked {
                    listed.needs = needs.remove(&listed.event.id).unwrap_or_default();
                }
            }
        }
        self.digests.clear();
        for listed in self.chunk.drain(..) {
            (self.visit)(listed)?;
        }
        Ok(())
    }

    /// Hands on what is left after the last row.
    fn finish<B: Backend>(mut self, b: &mut B) -> Result<()> {
        self.complete();
        self.hand_on(b)
    }
}

/// The names of the needs of the events `$1` (ids): `to_id, from_id,
/// name` ([`read_need_name`]), in the order the needs were added.
const NEED_NAMES_SQL: &str =
    "SELECT d.to_id, e.id, e.name FROM tm_edges d JOIN tm_events e ON e.id = d.from_id \
     WHERE d.to_id = ANY($1) ORDER BY d.seq";

/// An event's stored notification rules, as a column after
/// [`EVENT_COLUMNS`] (`NULL` when it has none).
const NOTIFY_RULES: &str =
    "(SELECT r.rules FROM tm_notify_rules r WHERE r.event_id = tm_events.id)";

/// The digest of the bound rules among an event's stored rules (`text`,
/// `None` when it has none): what [`TMinusEvent::rules_digest`] holds.
fn bound_rules_digest<C: Columns>(
    c: &C,
    text: Option<String>,
) -> Result<Option<[u8; 32]>, C::Error> {
    let Some(text) = text else {
        return Ok(None);
    };
    let rules = c.decode(notify_row::rules_from_text(&text))?;
    Ok(crate::notification::spec::bound_rules_digest(&rules))
}

/// A `LIMIT` as SQL text. Written into the statement rather than bound:
/// SQLite plans a statement whose `LIMIT` is a parameter again once the
/// value is bound, and each call site asks for one fixed limit, so the
/// statement caches keep the prepared form.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// The name of an event's campaign, as a column after [`EVENT_COLUMNS`].
const CAMPAIGN_NAME: &str =
    "(SELECT c.name FROM tm_campaigns c WHERE c.id = tm_events.campaign_id)";

/// The order of listings: soonest fire time first, unknown last.
const LISTING_ORDER: &str = "ORDER BY fire_ms IS NULL, fire_ms, created_ms, id";

/// An event's row values in [`EVENT_COLUMNS`] order, then `fire_ms` ($24).
pub(crate) fn event_values(r: EventRow) -> Vec<Value> {
    vec![
        r.id.into(),
        r.campaign_id.into(),
        r.name.into(),
        r.kind.into(),
        r.description.into(),
        r.at_ms.into(),
        r.offset_ms.into(),
        r.start_ms.into(),
        r.t_minus_ms.into(),
        r.defer_ms.into(),
        r.max_defer_ms.into(),
        r.quorum.into(),
        r.quorum_spec.into(),
        r.fire_policy.into(),
        r.organizer.into(),
        r.payload.into(),
        r.state.into(),
        r.finished_ms.into(),
        r.created_ms.into(),
        r.last_response_ms.into(),
        r.groups.into(),
        r.gates.into(),
        r.escalation.into(),
        r.fire_ms.into(),
    ]
}

/// A delivery from the columns [`DELIVERY_COLUMNS`].
fn read_delivery<C: Columns<Error = TMinusError>>(c: &C) -> Result<Delivery> {
    c.decode(
        DeliveryRow {
            key: c.id(0)?,
            event_id: c.id(1)?,
            cause: c.text(2)?,
            rule: c.text(3)?,
            payload: c.text(4)?,
            state: c.text(5)?,
            attempts: c.int(6)?,
            next_ms: c.int(7)?,
            created_ms: c.int(8)?,
            finished_ms: c.opt_int(9)?,
            last_error: c.opt_text(10)?,
        }
        .into_delivery(),
    )
}

/// The columns of a GitHub deployment, in [`read_github_deployment`] order.
const GITHUB_COLUMNS: &str = "id, delivery, campaign_id, template, repository, environment, \
     deployment_id, git_ref, sha, run_url, installation_id, callback_url, received_ms, state, \
     verdict, comment, attempts, next_ms, finished_ms, last_error";

/// A GitHub deployment from the columns [`GITHUB_COLUMNS`].
fn read_github_deployment<C: Columns<Error = TMinusError>>(c: &C) -> Result<GithubDeployment> {
    Ok(GithubDeployment {
        id: c.id(0)?,
        delivery: c.text(1)?,
        campaign: c.id(2)?,
        template: c.text(3)?,
        repository: c.text(4)?,
        environment: c.text(5)?,
        deployment_id: c.opt_int(6)?,
        git_ref: c.opt_text(7)?,
        sha: c.opt_text(8)?,
        run_url: c.opt_text(9)?,
        installation_id: c.int(10)?,
        callback_url: c.text(11)?,
        received_at: c.decode(row::time(c.int(12)?))?,
        state: c.decode(c.text(13)?.parse())?,
        verdict: c.decode(c.opt_text(14)?.map(|v| v.parse()).transpose())?,
        comment: c.opt_text(15)?,
        attempts: u32::try_from(c.int(16)?).unwrap_or(u32::MAX),
        next_at: c.decode(row::time(c.int(17)?))?,
        finished_at: c.decode(c.opt_int(18)?.map(row::time).transpose())?,
        last_error: c.opt_text(19)?,
    })
}

/// One transaction on a store, over its database's [`Backend`].
pub(crate) struct SqlTx<B> {
    b: B,
    /// Revision bumps not yet written, by campaign id (see
    /// [`SqlTx::bump_revision`]).
    bumps: HashMap<Uuid, i64>,
    /// What this transaction knows of rows it wrote itself.
    written: Written,
    /// Inserts not handed to the backend yet.
    pending: Pending,
    /// Audit entries appended but not chained yet (see
    /// [`Backend::WRITER_ALONE`]), in order.
    chain: Vec<NewAuditEntry>,
    /// Whether anything was written.
    changed: bool,
}

impl<B: Backend> SqlTx<B> {
    /// A transaction over the open transaction `b`.
    pub(crate) fn new(b: B) -> Self {
        SqlTx {
            b,
            bumps: HashMap::new(),
            written: if B::KEEP_EVENTS {
                Written::keeping_events()
            } else {
                Written::default()
            },
            pending: Pending::default(),
            chain: Vec::new(),
            changed: false,
        }
    }

    /// The audit chain's head, its lock taken: the hash of the newest
    /// entry (`None`: the log is empty). The first call writes every row
    /// and revision bump still held back, so that nothing after the lock
    /// waits for another lock, then takes the chain's lock and reads the
    /// head; later calls know it.
    fn chain_head(&mut self) -> Result<Option<String>> {
        if let Some(head) = self.written.audit_head.take() {
            return Ok(head);
        }
        self.flush()?;
        if !B::WRITER_ALONE {
            self.flush_bumps()?;
        }
        self.b.chain_head()
    }

    /// Chains `e` after the head and queues its row.
    fn chain_entry(&mut self, e: &NewAuditEntry) -> Result<()> {
        let head = self.chain_head()?;
        let (prev, hash) = new_entry_links(head.as_deref(), e);
        self.written.audit_head = Some(Some(hash.clone()));
        let a = AuditColumns::from_entry(e);
        let signed = e.signed.as_ref();
        let row = row![
            a.event_id,
            a.at_ms,
            a.recorded_ms,
            a.agent,
            a.action,
            a.detail,
            a.unreported.then_some(true),
            Value::hash(&prev),
            Value::hash(&hash),
            signed.map(|s| s.message.as_str()),
            signed.map(|s| s.signature.as_str()),
            a.on_behalf_of,
        ];
        self.pending.audits.extend(row);
        self.flush_if_full()
    }

    /// Extends the chain with the entries held back, and writes
    /// everything: after it, the transaction holds the chain's lock (if it
    /// appended anything) and has nothing left to write but the commit.
    fn seal(&mut self) -> Result<()> {
        self.flush()?;
        self.flush_bumps()?;
        for e in std::mem::take(&mut self.chain) {
            self.chain_entry(&e)?;
        }
        self.flush()
    }

    /// Hands the pending inserts to the backend, so that every statement
    /// after sees them.
    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.changed = true;
        for (table, values) in std::mem::take(&mut self.pending).tables() {
            if !values.is_empty() {
                self.b.insert(table, values)?;
            }
        }
        Ok(())
    }

    /// Hands the pending inserts on once they are many.
    fn flush_if_full(&mut self) -> Result<()> {
        self.changed = true;
        if B::is_full(&self.pending) {
            self.flush()?;
        }
        Ok(())
    }

    fn rows<T>(
        &mut self,
        sql: &str,
        params: &[Value],
        read: impl Fn(&B::Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.flush()?;
        rows(&mut self.b, sql, params, read)
    }

    fn row<T>(
        &mut self,
        sql: &str,
        params: &[Value],
        read: impl Fn(&B::Row<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        Ok(self.rows(sql, params, read)?.into_iter().next())
    }

    fn ids(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Uuid>> {
        self.rows(sql, params, |r| r.id(0))
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        self.flush()?;
        let changed = self.b.execute(sql, params)?;
        self.changed |= changed > 0;
        Ok(changed)
    }

    /// The events `sql` selects ([`EVENT_COLUMNS`] and [`CAMPAIGN_NAME`]),
    /// with their attendees, in chunks: a few queries however many events.
    fn events(&mut self, sql: &str, params: &[Value]) -> Result<Vec<TMinusEvent>> {
        let listed = self.rows(sql, params, |r| read_listed(r))?;
        let mut out = Vec::with_capacity(listed.len());
        let mut listed = listed.into_iter().peekable();
        while listed.peek().is_some() {
            let chunk: Vec<Listed> = listed.by_ref().take(LISTING_CHUNK).collect();
            hand_on(&mut self.b, chunk, &mut |l| {
                out.push(l.event);
                Ok(())
            })?;
        }
        Ok(out)
    }

    /// Streams the listing `sql` selects ([`LISTING_COLUMNS`], in listing
    /// order) to `visit` (see [`Backend::scan`] and [`Listing`]).
    fn scan(
        &mut self,
        sql: &str,
        params: &[Value],
        visit: &mut dyn FnMut(ListedEvent) -> Result<()>,
    ) -> Result<()> {
        self.flush()?;
        let mut listing = Listing::new(visit);
        self.b.scan(sql, params, |b, r| listing.row(b, r))?;
        listing.finish(&mut self.b)
    }

    /// Counts a change to `campaign`. The bumps are written at once before
    /// the campaign is next read and at commit: one statement for the
    /// thousands of changes an `apply` makes to a campaign (updating one row
    /// thousands of times is quadratic on PostgreSQL, whose every update
    /// walks the row's versions).
    fn bump_revision(&mut self, campaign: Option<Uuid>) {
        if let Some(c) = campaign {
            *self.bumps.entry(c).or_default() += 1;
        }
    }

    /// Writes the pending revision bumps.
    fn flush_bumps(&mut self) -> Result<()> {
        for (id, n) in std::mem::take(&mut self.bumps) {
            self.execute(
                "UPDATE tm_campaigns SET revision = revision + $2 WHERE id = $1",
                values![id, n],
            )?;
        }
        Ok(())
    }

    /// The next `campaign_pos` in `campaign`.
    fn next_pos(&mut self, campaign: Uuid) -> Result<i64> {
        if let Some(pos) = self.written.next_pos.get_mut(&campaign) {
            *pos += 1;
            return Ok(*pos - 1);
        }
        let pos = self
            .row(
                "SELECT coalesce(max(campaign_pos), 0) + 1 FROM tm_events WHERE campaign_id = $1",
                values![campaign],
                |r| r.int(0),
            )?
            .unwrap_or(1);
        self.written.next_pos.insert(campaign, pos + 1);
        Ok(pos)
    }

    /// What a query of rows this transaction reads to change appends to
    /// lock them: `FOR UPDATE` where writers run side by side
    /// ([`Backend::locks_rows`]), nothing otherwise.
    fn row_lock(&self) -> &'static str {
        if self.b.locks_rows() {
            " FOR UPDATE"
        } else {
            ""
        }
    }

    fn audits(&mut self, sql: &str, params: &[Value]) -> Result<Vec<AuditEntry>> {
        self.rows(sql, params, |r| read_audit(r))
    }

    fn deliveries(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Delivery>> {
        self.rows(sql, params, |r| read_delivery(r))
    }
}

impl<B: Backend> Tx for SqlTx<B> {
    fn insert_event(&mut self, e: &TMinusEvent) -> Result<()> {
        let r = EventRow::from_event(e);
        let pos = match r.campaign_id {
            Some(c) => Some(self.next_pos(c)?),
            None => None,
        };
        let open = !e.state.is_final();
        for (i, (agent, status)) in e.attendees.iter().enumerate() {
            let (word, defer) = status_columns(*status);
            let row = row![r.id, i as i64, agent.as_str(), word, defer, open];
            self.pending.attendees.extend(row);
        }
        self.pending.events.extend(event_values(r));
        self.pending.events.push(pos.into());
        self.flush_if_full()?;
        self.written.inserted(e);
        self.bump_revision(e.campaign);
        Ok(())
    }

    fn event(&mut self, id: Uuid) -> Result<Option<TMinusEvent>> {
        if let Some(e) = self.written.event(id) {
            return Ok(Some(e));
        }
        let lock = if self.b.locks_rows() {
            " FOR UPDATE"
        } else {
            ""
        };
        let Some((mut event, has_rules)) = self.row(
            &format!("SELECT {EVENT_COLUMNS}, {NOTIFY_RULES} FROM tm_events WHERE id = $1{lock}"),
            values![id],
            |r| {
                let mut event = read_event(r)?;
                let rules = r.opt_text(23)?;
                let has_rules = rules.is_some();
                event.rules_digest = bound_rules_digest(r, rules)?;
                Ok((event, has_rules))
            },
        )?
        else {
            return Ok(None);
        };
        event.attendees = self.rows(
            &format!(
                "SELECT {ATTENDEE_COLUMNS} FROM tm_attendees WHERE event_id = $1 ORDER BY position"
            ),
            values![id],
            |r| read_attendee(r, 0),
        )?;
        if self.b.locks_rows() {
            self.written.loaded(&event);
            // Its rules were read with its row locked: none stay none
            // until this transaction sets some.
            if !has_rules {
                self.written.no_rules.insert(id);
            }
        }
        Ok(Some(event))
    }

    fn events_by_id(&mut self, ids: &[Uuid]) -> Result<Vec<TMinusEvent>> {
        let mut events = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(LISTING_CHUNK) {
            let ids = chunk.to_vec();
            let lock = if self.b.locks_rows() {
                " ORDER BY id FOR UPDATE OF tm_events"
            } else {
                ""
            };
            events.extend(self.events(
                &format!(
                    "SELECT {EVENT_COLUMNS}, {CAMPAIGN_NAME} FROM tm_events WHERE id = ANY($1){lock}"
                ),
                values![ids],
            )?);
        }
        Ok(events)
    }

    fn update_event(&mut self, e: &TMinusEvent) -> Result<()> {
        // The parameters of the INSERT; created_ms ($19) never changes.
        self.execute(
            "UPDATE tm_events SET campaign_id = $2, name = $3, kind = $4, description = $5, \
             at_ms = $6, offset_ms = $7, start_ms = $8, t_minus_ms = $9, defer_ms = $10, \
             max_defer_ms = $11, quorum = $12, quorum_spec = $13, fire_policy = $14, \
             organizer = $15, payload = $16, state = $17, finished_ms = $18, \
             created_ms = $19, last_response_ms = $20, groups = $21, gates = $22, \
             escalation = $23, \
             fire_ms = $24, \
             campaign_pos = CASE WHEN campaign_id IS NOT DISTINCT FROM $2 THEN campaign_pos \
             WHEN CAST($2 AS UUID) IS NULL THEN NULL ELSE (SELECT coalesce(max(campaign_pos), 0) \
             + 1 FROM tm_events WHERE campaign_id = $2) END WHERE id = $1",
            &event_values(EventRow::from_event(e)),
        )?;
        // The row changed, its attendees did not.
        self.written.updated(e);
        self.bump_revision(e.campaign);
        Ok(())
    }

    fn set_response(
        &mut self,
        id: Uuid,
        agent: &AgentId,
        status: ResponseStatus,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let (word, defer) = status_columns(status);
        // A kept event reads back with the new answer; one whose attendee
        // is not listed is forgotten (the update changes no row).
        let kept = self.written.events.get_mut(&id).and_then(|e| {
            let slot = e.attendees.iter_mut().find(|(a, _)| a == agent)?;
            slot.1 = status;
            Some(())
        });
        if kept.is_none() {
            self.written.events.remove(&id);
        }
        self.execute(
            "UPDATE tm_attendees SET status = $3, defer_ms = $4, responded_ms = $5 \
             WHERE event_id = $1 AND agent = $2",
            values![id, agent.as_str(), word, defer, ms(at)],
        )
        .map(drop)
    }

    fn set_attendees(&mut self, id: Uuid, attendees: &[AgentId]) -> Result<()> {
        self.written.events.remove(&id);
        // Park the kept rows at negative positions, drop the others, then
        // insert or move each attendee to its new position.
        self.execute(
            "UPDATE tm_attendees SET position = -1 - position WHERE event_id = $1",
            values![id],
        )?;
        let names: Vec<String> = attendees.iter().map(|a| a.0.clone()).collect();
        self.execute(
            "DELETE FROM tm_attendees WHERE event_id = $1 AND NOT (agent = ANY($2))",
            values![id, names],
        )?;
        for (i, agent) in attendees.iter().enumerate() {
            self.execute(
                "INSERT INTO tm_attendees (event_id, position, agent, status, open) \
                 VALUES ($1, $2, $3, 'pending', \
                 (SELECT state IN ('blocked', 'pending') FROM tm_events WHERE id = $1)) \
                 ON CONFLICT (event_id, agent) DO UPDATE SET position = excluded.position",
                values![id, i as i64, agent.as_str()],
            )?;
        }
        Ok(())
    }

    fn events_with_prefix(&mut self, prefix: &str, limit: usize) -> Result<Vec<Uuid>> {
        let Some((lower, upper)) = row::prefix_range(prefix) else {
            return Ok(Vec::new());
        };
        self.ids(
            &format!(
                "SELECT id FROM tm_events WHERE id >= $1 AND id <= $2 ORDER BY id LIMIT {}",
                sql_limit(limit)
            ),
            values![lower, upper],
        )
    }

    fn event_by_name(&mut self, campaign: Uuid, name: &str) -> Result<Option<Uuid>> {
        self.ids(
            "SELECT id FROM tm_events WHERE campaign_id = $1 AND name = $2",
            values![campaign, name],
        )
        .map(|ids| ids.into_iter().next())
    }

    fn event_by_names(&mut self, campaign: &str, name: &str) -> Result<Option<Uuid>> {
        self.ids(
            "SELECT e.id FROM tm_events e JOIN tm_campaigns c ON c.id = e.campaign_id \
             WHERE c.name = $1 AND e.name = $2",
            values![campaign, name],
        )
        .map(|ids| ids.into_iter().next())
    }

    fn standalone_events_named(&mut self, name: &str, limit: usize) -> Result<Vec<Uuid>> {
        self.ids(
            &format!(
                "SELECT id FROM tm_events WHERE campaign_id IS NULL AND name = $1 \
                 ORDER BY state IN ('fired', 'missed', 'cancelled'), created_ms DESC, id LIMIT {}",
                sql_limit(limit)
            ),
            values![name],
        )
    }

    fn due_events(&mut self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Uuid>> {
        self.ids(
            &format!(
                "SELECT id FROM tm_events WHERE state = 'pending' AND fire_ms <= $1 \
                 ORDER BY fire_ms, {} LIMIT {}",
                B::EVENT_SEQ,
                sql_limit(limit)
            ),
            values![ms(now)],
        )
    }

    fn campaign_due_events(&mut self, id: Uuid, now: DateTime<Utc>) -> Result<Vec<Uuid>> {
        self.ids(
            &format!(
                "SELECT id FROM tm_events WHERE state = 'pending' AND fire_ms <= $2 \
                 AND campaign_id = (SELECT campaign_id FROM tm_events WHERE id = $1) \
                 ORDER BY fire_ms, {}",
                B::EVENT_SEQ
            ),
            values![id, ms(now)],
        )
    }

    fn next_fire_time(&mut self, campaign: Option<Uuid>) -> Result<Option<DateTime<Utc>>> {
        let time = match campaign {
            None => self.row(
                "SELECT min(fire_ms) FROM tm_events WHERE state = 'pending'",
                &[],
                |r| r.decode(row::opt_time(r.opt_int(0)?)),
            )?,
            // The first entry of the campaign's due index, however many
            // pending events the campaign has.
            Some(c) => self.row(
                "SELECT fire_ms FROM tm_events WHERE state = 'pending' AND campaign_id = $1 \
                 ORDER BY fire_ms LIMIT 1",
                values![c],
                |r| r.decode(row::opt_time(r.opt_int(0)?)),
            )?,
        };
        Ok(time.flatten())
    }

    fn scan_events(
        &mut self,
        filter: EventFilter,
        visit: &mut dyn FnMut(ListedEvent) -> Result<()>,
    ) -> Result<()> {
        let (filter_sql, params) = match filter {
            // The listing's index gives its order: the joined rows stream.
            EventFilter::Unfinished => {
                return self.scan(
                    &format!(
                        "SELECT {LISTING_COLUMNS} FROM {LISTING_TABLES} \
                         WHERE state IN ('blocked', 'pending') {LISTING_ORDER}"
                    ),
                    &[],
                    visit,
                );
            }
            EventFilter::All => ("", Vec::new()),
            EventFilter::Campaign(id) => ("WHERE campaign_id = $1", vec![Value::from(id)]),
        };
        // No index gives this order, so the events are sorted: alone, their
        // attendees and rules read a chunk at a time, not sorted with them.
        self.flush()?;
        let mut chunk = Vec::with_capacity(LISTING_CHUNK);
        self.b.scan(
            &format!(
                "SELECT {EVENT_COLUMNS}, {CAMPAIGN_NAME} FROM tm_events {filter_sql} \
                 {LISTING_ORDER}"
            ),
            &params,
            |b, r| {
                chunk.push(read_listed(r)?);
                if chunk.len() == LISTING_CHUNK {
                    hand_on(b, std::mem::take(&mut chunk), visit)?;
                }
                Ok(())
            },
        )?;
        hand_on(&mut self.b, chunk, visit)
    }

    fn inbox(&mut self, agent: &AgentId) -> Result<Vec<TMinusEvent>> {
        self.events(
            &format!(
                "SELECT {EVENT_COLUMNS}, {CAMPAIGN_NAME} FROM tm_events WHERE id IN \
                 (SELECT event_id FROM tm_attendees WHERE agent = $1 AND open = TRUE) \
                 {LISTING_ORDER}"
            ),
            values![agent.as_str()],
        )
    }

    fn count_events(&mut self) -> Result<u64> {
        let n = self.row("SELECT count(*) FROM tm_events", &[], |r| r.int(0))?;
        Ok(n.unwrap_or(0) as u64)
    }

    fn insert_campaign(&mut self, c: &CampaignRow) -> Result<()> {
        let c = CampaignColumns::from_campaign(c);
        self.execute(
            &format!(
                "INSERT INTO tm_campaigns ({CAMPAIGN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ),
            values![
                c.id,
                c.name,
                c.description,
                c.created_ms,
                c.managed,
                c.anchor_ms,
                c.revision
            ],
        )
        .map(drop)
    }

    fn update_campaign(&mut self, c: &CampaignRow) -> Result<()> {
        self.flush_bumps()?;
        let c = CampaignColumns::from_campaign(c);
        self.execute(
            "UPDATE tm_campaigns SET name = $2, description = $3, managed = $4, anchor_ms = $5, \
             revision = revision + 1 WHERE id = $1",
            values![c.id, c.name, c.description, c.managed, c.anchor_ms],
        )
        .map(drop)
    }

    fn campaign(&mut self, id: Uuid) -> Result<Option<CampaignRow>> {
        if let Some(n) = self.bumps.remove(&id) {
            // The campaign's own bump and its read in one statement.
            self.flush_bumps()?;
            let campaign = self.row(
                &format!(
                    "UPDATE tm_campaigns SET revision = revision + $2 WHERE id = $1 \
                     RETURNING {CAMPAIGN_COLUMNS}"
                ),
                values![id, n],
                |r| read_campaign(r),
            )?;
            self.changed |= campaign.is_some();
            return Ok(campaign);
        }
        self.flush_bumps()?;
        self.row(
            &format!("SELECT {CAMPAIGN_COLUMNS} FROM tm_campaigns WHERE id = $1"),
            values![id],
            |r| read_campaign(r),
        )
    }

    fn campaign_by_name(&mut self, name: &str) -> Result<Option<CampaignRow>> {
        self.flush_bumps()?;
        self.row(
            &format!("SELECT {CAMPAIGN_COLUMNS} FROM tm_campaigns WHERE name = $1"),
            values![name],
            |r| read_campaign(r),
        )
    }

    fn campaigns_with_prefix(&mut self, prefix: &str, limit: usize) -> Result<Vec<Uuid>> {
        let Some((lower, upper)) = row::prefix_range(prefix) else {
            return Ok(Vec::new());
        };
        self.ids(
            &format!(
                "SELECT id FROM tm_campaigns WHERE id >= $1 AND id <= $2 ORDER BY id LIMIT {}",
                sql_limit(limit)
            ),
            values![lower, upper],
        )
    }

    fn list_campaigns(&mut self) -> Result<Vec<CampaignRow>> {
        self.flush_bumps()?;
        self.rows(
            &format!("SELECT {CAMPAIGN_COLUMNS} FROM tm_campaigns ORDER BY name"),
            &[],
            |r| read_campaign(r),
        )
    }

    fn campaign_events(&mut self, campaign: Uuid) -> Result<Vec<(Uuid, String, EventState)>> {
        self.rows(
            "SELECT id, name, state FROM tm_events WHERE campaign_id = $1 ORDER BY campaign_pos",
            values![campaign],
            |r| read_member(r),
        )
    }

    fn campaign_edges(&mut self, campaign: Uuid) -> Result<Vec<(Uuid, Uuid)>> {
        self.rows(
            "SELECT from_id, to_id FROM tm_edges WHERE campaign_id = $1 ORDER BY seq",
            values![campaign],
            |r| Ok((r.id(0)?, r.id(1)?)),
        )
    }

    fn insert_edge(&mut self, campaign: Uuid, from: Uuid, to: Uuid) -> Result<()> {
        self.written.edge_added(from, to);
        self.pending.edges.extend(row![campaign, from, to]);
        self.flush_if_full()?;
        self.bump_revision(Some(campaign));
        Ok(())
    }

    fn delete_edge(&mut self, from: Uuid, to: Uuid) -> Result<()> {
        self.written.edge_removed(from, to);
        self.execute(
            "DELETE FROM tm_edges WHERE from_id = $1 AND to_id = $2",
            values![from, to],
        )
        .map(drop)
    }

    fn needs(&mut self, id: Uuid) -> Result<Vec<NeedState>> {
        if let Some(known) = self.written.needs_of(id) {
            return Ok(known);
        }
        self.rows(
            "SELECT e.id, e.state, e.finished_ms FROM tm_edges d \
             JOIN tm_events e ON e.id = d.from_id WHERE d.to_id = $1 ORDER BY d.seq",
            values![id],
            |r| read_need(r),
        )
    }

    fn known_state(&mut self, id: Uuid) -> Option<EventState> {
        self.written.state(id)
    }

    fn dependents(&mut self, id: Uuid) -> Result<Vec<Uuid>> {
        self.ids(
            "SELECT to_id FROM tm_edges WHERE from_id = $1 ORDER BY seq",
            values![id],
        )
    }

    fn delete_campaign(&mut self, campaign: Uuid) -> Result<()> {
        self.flush_bumps()?;
        self.written.clear();
        // The campaign's audit entries stay: the log is append-only, and the
        // chain through them must keep verifying.
        let c = values![campaign];
        self.execute("DELETE FROM tm_scope_signers WHERE scope_id = $1", c)?;
        self.execute("DELETE FROM tm_events WHERE campaign_id = $1", c)?;
        self.execute("DELETE FROM tm_campaigns WHERE id = $1", c)
            .map(drop)
    }

    fn delete_event(&mut self, id: Uuid) -> Result<()> {
        let campaign = self.event(id)?.and_then(|e| e.campaign);
        self.written.clear();
        self.execute("DELETE FROM tm_events WHERE id = $1", values![id])?;
        self.bump_revision(campaign);
        Ok(())
    }

    fn append_audit(&mut self, e: &NewAuditEntry) -> Result<()> {
        // Alone in the store, or holding the chain's lock already: chain it
        // now. Otherwise hold it back until the transaction's other rows
        // are written (see `seal`), so the chain's lock is held only while
        // the chain is extended and the transaction commits.
        if B::WRITER_ALONE || self.written.audit_head.is_some() {
            return self.chain_entry(e);
        }
        self.chain.push(e.clone());
        self.changed = true;
        Ok(())
    }

    fn lock_store(&mut self) -> Result<()> {
        self.seal()?;
        let head = self.chain_head()?;
        self.written.audit_head = Some(head);
        Ok(())
    }

    fn scope_signers(&mut self, scope: Uuid) -> Result<Option<StoredSigners>> {
        self.row(
            "SELECT s.digest, s.text FROM tm_scope_signers c \
             JOIN tm_signer_sets s ON s.digest = c.digest WHERE c.scope_id = $1",
            values![scope],
            |r| {
                Ok(StoredSigners {
                    digest: r.text(0)?,
                    text: r.text(1)?,
                })
            },
        )
    }

    fn set_scope_signers(&mut self, scope: Uuid, signers: Option<&StoredSigners>) -> Result<()> {
        match signers {
            None => self.execute(
                "DELETE FROM tm_scope_signers WHERE scope_id = $1",
                values![scope],
            )?,
            Some(set) => {
                self.execute(
                    "INSERT INTO tm_signer_sets (digest, text) VALUES ($1, $2) \
                     ON CONFLICT (digest) DO NOTHING",
                    values![&set.digest, &set.text],
                )?;
                self.execute(
                    "INSERT INTO tm_scope_signers (scope_id, digest) VALUES ($1, $2) \
                     ON CONFLICT (scope_id) DO UPDATE SET digest = excluded.digest",
                    values![scope, &set.digest],
                )?
            }
        };
        Ok(())
    }

    fn signers_by_digest(&mut self, digest: &str) -> Result<Option<String>> {
        self.row(
            "SELECT text FROM tm_signer_sets WHERE digest = $1",
            values![digest],
            |r| r.text(0),
        )
    }

    fn use_nonce(&mut self, nonce: Uuid, event: Uuid, at: DateTime<Utc>) -> Result<bool> {
        let inserted = self.execute(
            "INSERT INTO tm_nonces (nonce, event_id, at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (nonce) DO NOTHING",
            values![nonce, event, at.timestamp_millis()],
        )?;
        Ok(inserted == 1)
    }

    fn stored_outcomes(&mut self) -> Result<StoredOutcomes> {
        let finished = self.rows(
            &format!("SELECT id, state FROM tm_events WHERE {FINISHED_EVENTS}"),
            &[],
            |r| read_finished(r),
        )?;
        let answers = self.rows(
            &format!(
                "SELECT {EVENT_ATTENDEE_COLUMNS} FROM tm_attendees WHERE {ANSWERED_ATTENDEES}"
            ),
            &[],
            |r| read_event_attendee(r),
        )?;
        Ok(StoredOutcomes::new(finished, answers))
    }

    fn stored_state(&mut self, scope: Option<&[Uuid]>) -> Result<StoredState> {
        self.flush()?;
        stored_state(&mut self.b, scope)
    }

    fn audit_links(&mut self, after: i64, limit: usize) -> Result<Vec<StoredLink>> {
        self.seal()?;
        self.rows(&audit_links_after(limit), values![after], |r| {
            read_audit_link(r)
        })
    }

    fn raw_audit_links(&mut self, after: i64, limit: usize) -> Result<Vec<RawLink>> {
        self.seal()?;
        self.rows(&audit_links_after(limit), values![after], |r| {
            read_raw_link(r)
        })
    }

    fn event_audit_links(&mut self, id: Uuid) -> Result<Vec<StoredLink>> {
        self.seal()?;
        self.rows(
            &format!("SELECT {AUDIT_LINK_COLUMNS} FROM tm_audit WHERE event_id = $1 ORDER BY seq"),
            values![id],
            |r| read_audit_link(r),
        )
    }

    fn insert_token(&mut self, t: &TokenInfo, hash: &TokenHash) -> Result<()> {
        self.execute(
            "INSERT INTO tm_tokens (id, hash, agent, role, created_ms, expires_ms, revoked_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            values![
                t.id,
                &hash.0,
                &t.agent,
                t.role.as_str(),
                ms(t.created_at),
                t.expires_at.map(ms),
                t.revoked_at.map(ms),
            ],
        )?;
        Ok(())
    }

    fn token_by_hash(&mut self, hash: &TokenHash) -> Result<Option<(TokenInfo, TokenHash)>> {
        self.row(
            &format!("SELECT {TOKEN_COLUMNS}, hash FROM tm_tokens WHERE hash = $1"),
            values![&hash.0],
            |r| Ok((read_token(r)?, TokenHash(r.text(6)?))),
        )
    }

    fn tokens(&mut self) -> Result<Vec<TokenInfo>> {
        self.rows(
            &format!("SELECT {TOKEN_COLUMNS} FROM tm_tokens ORDER BY created_ms, id"),
            &[],
            |r| read_token(r),
        )
    }

    fn stored_tokens(&mut self) -> Result<Vec<(TokenInfo, TokenHash)>> {
        self.rows(
            &format!("SELECT {TOKEN_COLUMNS}, hash FROM tm_tokens ORDER BY id"),
            &[],
            |r| Ok((read_token(r)?, TokenHash(r.text(6)?))),
        )
    }

    fn revoke_token(&mut self, id: Uuid, at: DateTime<Utc>) -> Result<bool> {
        let changed = self.execute(
            "UPDATE tm_tokens SET revoked_ms = $2 WHERE id = $1 AND revoked_ms IS NULL",
            values![id, ms(at)],
        )?;
        Ok(changed == 1)
    }

    fn insert_delegation(&mut self, d: &Delegation) -> Result<()> {
        let signed = d.signed.as_ref();
        self.execute(
            "INSERT INTO tm_delegations (id, from_agent, to_agent, campaign_id, created_ms, \
             until_ms, revoked_ms, message, signature) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            values![
                d.id,
                d.from.as_str(),
                d.to.as_str(),
                d.campaign,
                ms(d.created_at),
                d.until.map(ms),
                d.revoked_at.map(ms),
                signed.map(|s| s.message.as_str()),
                signed.map(|s| s.signature.as_str()),
            ],
        )?;
        Ok(())
    }

    fn delegations(&mut self) -> Result<Vec<Delegation>> {
        self.rows(
            &format!(
                "SELECT {DELEGATION_COLUMNS} FROM tm_delegations d \
                 LEFT JOIN tm_campaigns c ON c.id = d.campaign_id ORDER BY d.created_ms, d.id"
            ),
            &[],
            |r| read_delegation(r),
        )
    }

    fn delegations_between(&mut self, from: &AgentId, to: &AgentId) -> Result<Vec<Delegation>> {
        self.rows(
            &format!(
                "SELECT {DELEGATION_COLUMNS} FROM tm_delegations d \
                 LEFT JOIN tm_campaigns c ON c.id = d.campaign_id \
                 WHERE d.from_agent = $1 AND d.to_agent = $2 ORDER BY d.created_ms, d.id"
            ),
            values![from.as_str(), to.as_str()],
            |r| read_delegation(r),
        )
    }

    fn revoke_delegation(&mut self, id: Uuid, at: DateTime<Utc>) -> Result<bool> {
        let changed = self.execute(
            "UPDATE tm_delegations SET revoked_ms = $2 WHERE id = $1 AND revoked_ms IS NULL",
            values![id, ms(at)],
        )?;
        Ok(changed == 1)
    }

    fn insert_chat_link(&mut self, link: &ChatLink) -> Result<()> {
        self.execute(
            "INSERT INTO tm_chat_links (id, chat, chat_user, agent, linked_ms) \
             VALUES ($1, $2, $3, $4, $5)",
            values![
                link.id,
                link.chat.as_str(),
                link.user.as_str(),
                link.agent.as_str(),
                ms(link.linked_at),
            ],
        )?;
        Ok(())
    }

    fn chat_link(&mut self, chat: Chat, user: &str) -> Result<Option<ChatLink>> {
        self.row(
            &format!(
                "SELECT {CHAT_LINK_COLUMNS} FROM tm_chat_links WHERE chat = $1 AND chat_user = $2"
            ),
            values![chat.as_str(), user],
            |r| read_chat_link(r),
        )
    }

    fn chat_links(&mut self) -> Result<Vec<ChatLink>> {
        self.rows(
            &format!(
                "SELECT {CHAT_LINK_COLUMNS} FROM tm_chat_links ORDER BY linked_ms, chat, chat_user"
            ),
            &[],
            |r| read_chat_link(r),
        )
    }

    fn delete_chat_link(&mut self, id: Uuid) -> Result<bool> {
        let changed = self.execute("DELETE FROM tm_chat_links WHERE id = $1", values![id])?;
        Ok(changed == 1)
    }

    fn insert_github_deployment(&mut self, d: &GithubDeployment) -> Result<()> {
        self.execute(
            &format!(
                "INSERT INTO tm_github_deployments ({GITHUB_COLUMNS}) VALUES ($1, $2, $3, $4, \
                 $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
            ),
            values![
                d.id,
                d.delivery.as_str(),
                d.campaign,
                d.template.as_str(),
                d.repository.as_str(),
                d.environment.as_str(),
                d.deployment_id,
                d.git_ref.as_deref(),
                d.sha.as_deref(),
                d.run_url.as_deref(),
                d.installation_id,
                d.callback_url.as_str(),
                ms(d.received_at),
                d.state.as_str(),
                d.verdict.map(|v| v.as_str()),
                d.comment.as_deref(),
                i64::from(d.attempts),
                ms(d.next_at),
                d.finished_at.map(ms),
                d.last_error.as_deref(),
            ],
        )
        .map(drop)
    }

    fn github_deployment_by_delivery(
        &mut self,
        delivery: &str,
    ) -> Result<Option<GithubDeployment>> {
        self.row(
            &format!("SELECT {GITHUB_COLUMNS} FROM tm_github_deployments WHERE delivery = $1"),
            values![delivery],
            |r| read_github_deployment(r),
        )
    }

    fn github_deployment(&mut self, id: Uuid) -> Result<Option<GithubDeployment>> {
        let lock = self.row_lock();
        self.row(
            &format!("SELECT {GITHUB_COLUMNS} FROM tm_github_deployments WHERE id = $1{lock}"),
            values![id],
            |r| read_github_deployment(r),
        )
    }

    fn due_github_deployments(
        &mut self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<GithubDeployment>> {
        let lock = self.row_lock();
        self.rows(
            &format!(
                "SELECT {GITHUB_COLUMNS} FROM tm_github_deployments WHERE state = 'waiting' \
                 AND next_ms <= $1 ORDER BY next_ms, id LIMIT {}{lock}",
                sql_limit(limit)
            ),
            values![ms(now)],
            |r| read_github_deployment(r),
        )
    }

    fn update_github_deployment(&mut self, d: &GithubDeployment) -> Result<()> {
        self.execute(
            "UPDATE tm_github_deployments SET state = $2, verdict = $3, comment = $4, \
             attempts = $5, next_ms = $6, finished_ms = $7, last_error = $8 WHERE id = $1",
            values![
                d.id,
                d.state.as_str(),
                d.verdict.map(|v| v.as_str()),
                d.comment.as_deref(),
                i64::from(d.attempts),
                ms(d.next_at),
                d.finished_at.map(ms),
                d.last_error.as_deref(),
            ],
        )
        .map(drop)
    }

    fn insert_invite(&mut self, i: &Invitation, hash: &str) -> Result<()> {
        self.execute(
            "INSERT INTO tm_invites (id, hash, agent, created_ms, expires_ms, used_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            values![
                i.id,
                hash,
                &i.agent,
                ms(i.created_at),
                ms(i.expires_at),
                i.used_at.map(ms),
            ],
        )?;
        Ok(())
    }

    fn invite_by_hash(&mut self, hash: &str) -> Result<Option<Invitation>> {
        self.row(
            &format!("SELECT {INVITE_COLUMNS} FROM tm_invites WHERE hash = $1"),
            values![hash],
            |r| read_invite(r),
        )
    }

    fn invites(&mut self) -> Result<Vec<Invitation>> {
        self.rows(
            &format!("SELECT {INVITE_COLUMNS} FROM tm_invites ORDER BY created_ms, id"),
            &[],
            |r| read_invite(r),
        )
    }

    fn use_invite(&mut self, id: Uuid, at: DateTime<Utc>) -> Result<bool> {
        let changed = self.execute(
            "UPDATE tm_invites SET used_ms = $2 WHERE id = $1 AND used_ms IS NULL",
            values![id, ms(at)],
        )?;
        Ok(changed == 1)
    }

    fn insert_passkey(&mut self, p: &PasskeyInfo) -> Result<()> {
        self.execute(
            "INSERT INTO tm_passkeys (credential, id, agent, public_key, algorithm, created_ms, \
             revoked_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            values![
                &p.credential,
                p.id,
                &p.agent,
                &p.public_key,
                &p.algorithm,
                ms(p.created_at),
                p.revoked_at.map(ms),
            ],
        )?;
        Ok(())
    }

    fn passkey(&mut self, credential: &str) -> Result<Option<PasskeyInfo>> {
        self.row(
            &format!("SELECT {PASSKEY_COLUMNS} FROM tm_passkeys WHERE credential = $1"),
            values![credential],
            |r| read_passkey(r),
        )
    }

    fn passkeys(&mut self) -> Result<Vec<PasskeyInfo>> {
        self.rows(
            &format!("SELECT {PASSKEY_COLUMNS} FROM tm_passkeys ORDER BY created_ms, credential"),
            &[],
            |r| read_passkey(r),
        )
    }

    fn revoke_passkey(&mut self, credential: &str, at: DateTime<Utc>) -> Result<bool> {
        let changed = self.execute(
            "UPDATE tm_passkeys SET revoked_ms = $2 WHERE credential = $1 AND revoked_ms IS NULL",
            values![credential, ms(at)],
        )?;
        self.execute(
            "UPDATE tm_sessions SET ended_ms = $2 WHERE credential = $1 AND ended_ms IS NULL",
            values![credential, ms(at)],
        )?;
        Ok(changed == 1)
    }

    fn insert_ceremony(&mut self, c: &Ceremony) -> Result<()> {
        self.execute(
            "INSERT INTO tm_ceremonies (id, kind, challenge, agent, data, expires_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            values![
                c.id,
                &c.kind,
                &c.challenge,
                c.agent.as_deref(),
                c.data.as_deref(),
                ms(c.expires_at),
            ],
        )?;
        Ok(())
    }

    fn take_ceremony(&mut self, id: Uuid) -> Result<Option<Ceremony>> {
        let found = self.row(
            "SELECT id, kind, challenge, agent, data, expires_ms FROM tm_ceremonies WHERE id = $1",
            values![id],
            |r| {
                Ok(Ceremony {
                    id: r.id(0)?,
                    kind: r.text(1)?,
                    challenge: r.text(2)?,
                    agent: r.opt_text(3)?,
                    data: r.opt_text(4)?,
                    expires_at: r.decode(row::time(r.int(5)?))?,
                })
            },
        )?;
        // Taken only by the one transaction that deletes it.
        if found.is_some()
            && self.execute("DELETE FROM tm_ceremonies WHERE id = $1", values![id])? != 1
        {
            return Ok(None);
        }
        Ok(found)
    }

    fn insert_session(&mut self, s: &SessionRow) -> Result<()> {
        self.execute(
            "INSERT INTO tm_sessions (hash, agent, credential, csrf, created_ms, expires_ms, \
             ended_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            values![
                &s.hash,
                &s.agent,
                &s.credential,
                &s.csrf,
                ms(s.created_at),
                ms(s.expires_at),
                s.ended_at.map(ms),
            ],
        )?;
        Ok(())
    }

    fn session_by_hash(&mut self, hash: &str) -> Result<Option<SessionRow>> {
        self.row(
            "SELECT s.hash, s.agent, s.credential, s.csrf, s.created_ms, s.expires_ms, s.ended_ms \
             FROM tm_sessions s JOIN tm_passkeys p ON p.credential = s.credential \
             WHERE s.hash = $1 AND s.ended_ms IS NULL AND p.revoked_ms IS NULL",
            values![hash],
            |r| {
                Ok(SessionRow {
                    hash: r.text(0)?,
                    agent: r.text(1)?,
                    credential: r.text(2)?,
                    csrf: r.text(3)?,
                    created_at: r.decode(row::time(r.int(4)?))?,
                    expires_at: r.decode(row::time(r.int(5)?))?,
                    ended_at: r.decode(row::opt_time(r.opt_int(6)?))?,
                })
            },
        )
    }

    fn end_session(&mut self, hash: &str, at: DateTime<Utc>) -> Result<bool> {
        let changed = self.execute(
            "UPDATE tm_sessions SET ended_ms = $2 WHERE hash = $1 AND ended_ms IS NULL",
            values![hash, ms(at)],
        )?;
        Ok(changed == 1)
    }

    fn audit(&mut self, id: Uuid) -> Result<Vec<AuditEntry>> {
        self.seal()?;
        self.audits(
            &format!("SELECT {AUDIT_COLUMNS} FROM tm_audit WHERE event_id = $1 ORDER BY seq"),
            values![id],
        )
    }

    fn audit_since(&mut self, seq: i64, limit: usize) -> Result<Vec<AuditEntry>> {
        self.seal()?;
        self.audits(
            &format!(
                "SELECT {AUDIT_COLUMNS} FROM tm_audit WHERE seq > $1 ORDER BY seq LIMIT {}",
                sql_limit(limit)
            ),
            values![seq],
        )
    }

    fn latest_audit_seq(&mut self) -> Result<i64> {
        self.seal()?;
        let seq = self.row("SELECT coalesce(max(seq), 0) FROM tm_audit", &[], |r| {
            r.int(0)
        })?;
        Ok(seq.unwrap_or(0))
    }

    fn claim_reports(&mut self) -> Result<Vec<AuditEntry>> {
        // A conditional update: of two ticks claiming at once, the second
        // finds the rows no longer unreported. Everything is written
        // first, this transaction's own transitions included, so that after
        // the claim the transaction waits for no lock before it commits.
        self.seal()?;
        let mut entries = self.audits(
            &format!(
                "UPDATE tm_audit SET unreported = NULL WHERE unreported = TRUE \
                 RETURNING {AUDIT_COLUMNS}"
            ),
            &[],
        )?;
        entries.sort_by_key(|e| e.seq);
        self.changed |= !entries.is_empty();
        Ok(entries)
    }

    fn notify_rules(&mut self, event: Uuid) -> Result<Vec<NotifyRule>> {
        if self.written.no_rules.contains(&event) {
            return Ok(Vec::new());
        }
        let rules = self.row(
            "SELECT rules FROM tm_notify_rules WHERE event_id = $1",
            values![event],
            |r| r.decode(notify_row::rules_from_text(&r.text(0)?)),
        )?;
        Ok(rules.unwrap_or_default())
    }

    fn notify_rules_by_id(&mut self, ids: &[Uuid]) -> Result<Vec<(Uuid, Vec<NotifyRule>)>> {
        let mut rules = Vec::new();
        for chunk in ids.chunks(LISTING_CHUNK) {
            let ids = chunk.to_vec();
            rules.extend(
                self.rows(
                    "SELECT event_id, rules FROM tm_notify_rules WHERE event_id = ANY($1)",
                    values![ids],
                    |r| {
                        Ok((
                            r.id(0)?,
                            r.decode(notify_row::rules_from_text(&r.text(1)?))?,
                        ))
                    },
                )?
                .into_iter()
                .filter(|(_, rules)| !rules.is_empty()),
            );
        }
        Ok(rules)
    }

    fn set_notify_rules(&mut self, event: Uuid, rules: &[NotifyRule]) -> Result<()> {
        self.written.no_rules.remove(&event);
        if let Some(known) = self.written.events.get_mut(&event) {
            known.rules_digest = crate::notification::spec::bound_rules_digest(rules);
        }
        if rules.is_empty() {
            self.execute(
                "DELETE FROM tm_notify_rules WHERE event_id = $1",
                values![event],
            )?;
        } else {
            self.execute(
                "INSERT INTO tm_notify_rules (event_id, rules) VALUES ($1, $2) \
                 ON CONFLICT (event_id) DO UPDATE SET rules = excluded.rules",
                values![event, notify_row::rules_text(rules)],
            )?;
        }
        Ok(())
    }

    fn reminders(&mut self, event: Uuid) -> Result<Vec<Reminder>> {
        self.rows(
            "SELECT before_ms, remind_ms, sent FROM tm_reminders WHERE event_id = $1 \
             ORDER BY before_ms",
            values![event],
            |r| r.decode(notify_row::reminder(r.int(0)?, r.int(1)?, r.flag(2)?)),
        )
    }

    fn set_reminders(&mut self, event: Uuid, reminders: &[Reminder]) -> Result<()> {
        self.execute(
            "DELETE FROM tm_reminders WHERE event_id = $1",
            values![event],
        )?;
        for r in reminders {
            self.execute(
                "INSERT INTO tm_reminders (event_id, before_ms, remind_ms, sent) \
                 VALUES ($1, $2, $3, $4)",
                values![event, notify_row::before_column(r), ms(r.at), r.sent],
            )?;
        }
        Ok(())
    }

    fn due_reminders(&mut self, now: DateTime<Utc>, limit: usize) -> Result<Vec<(Uuid, Reminder)>> {
        // Locked, where writers run side by side: of two ticks, the second
        // waits and then finds the reminders sent.
        let lock = self.row_lock();
        self.rows(
            &format!(
                "SELECT event_id, before_ms, remind_ms FROM tm_reminders \
                 WHERE sent = FALSE AND remind_ms <= $1 ORDER BY remind_ms LIMIT {}{lock}",
                sql_limit(limit)
            ),
            values![ms(now)],
            |r| {
                let reminder = notify_row::reminder(r.int(1)?, r.int(2)?, false);
                Ok((r.id(0)?, r.decode(reminder)?))
            },
        )
    }

    fn mark_reminder_sent(&mut self, event: Uuid, before_ms: u64) -> Result<()> {
        self.execute(
            "UPDATE tm_reminders SET sent = TRUE WHERE event_id = $1 AND before_ms = $2",
            values![event, i64::try_from(before_ms).unwrap_or(i64::MAX)],
        )
        .map(drop)
    }

    fn insert_delivery(&mut self, d: &Delivery) -> Result<()> {
        let r = DeliveryRow::from_delivery(d);
        self.execute(
            &format!(
                "INSERT INTO tm_deliveries ({DELIVERY_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ),
            values![
                r.key,
                r.event_id,
                r.cause,
                r.rule,
                r.payload,
                r.state,
                r.attempts,
                r.next_ms,
                r.created_ms,
                r.finished_ms,
                r.last_error
            ],
        )
        .map(drop)
    }

    fn update_delivery(&mut self, d: &Delivery) -> Result<()> {
        let r = DeliveryRow::from_delivery(d);
        self.execute(
            "UPDATE tm_deliveries SET state = $2, attempts = $3, next_ms = $4, \
             finished_ms = $5, last_error = $6 WHERE key = $1",
            values![
                r.key,
                r.state,
                r.attempts,
                r.next_ms,
                r.finished_ms,
                r.last_error
            ],
        )
        .map(drop)
    }

    fn delivery(&mut self, key: Uuid) -> Result<Option<Delivery>> {
        let lock = self.row_lock();
        self.row(
            &format!("SELECT {DELIVERY_COLUMNS} FROM tm_deliveries WHERE key = $1{lock}"),
            values![key],
            |r| read_delivery(r),
        )
    }

    fn due_deliveries(&mut self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Delivery>> {
        // Locked, where writers run side by side: of two runners claiming
        // at once, the second waits and then finds the deliveries leased.
        let lock = self.row_lock();
        self.deliveries(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM tm_deliveries WHERE state = 'pending' \
                 AND next_ms <= $1 ORDER BY next_ms, seq LIMIT {}{lock}",
                sql_limit(limit)
            ),
            values![ms(now)],
        )
    }

    fn event_deliveries(&mut self, event: Uuid) -> Result<Vec<Delivery>> {
        self.deliveries(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM tm_deliveries WHERE event_id = $1 ORDER BY seq"
            ),
            values![event],
        )
    }

    fn mark(&mut self) -> Result<()> {
        self.seal()?;
        self.b.execute(MARK_SQL, &[])?;
        Ok(())
    }

    fn rollback_to_mark(&mut self) -> Result<()> {
        // Nothing was held back at the mark (it sealed): what is held back
        // now was written after it.
        self.pending = Pending::default();
        self.chain.clear();
        self.bumps.clear();
        self.written.clear();
        self.b.execute(ROLLBACK_TO_MARK_SQL, &[])?;
        self.b.execute(RELEASE_MARK_SQL, &[])?;
        Ok(())
    }

    fn release_mark(&mut self) -> Result<()> {
        self.b.execute(RELEASE_MARK_SQL, &[])?;
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        self.seal()?;
        let changed = self.changed;
        self.b.commit(changed)
    }
}

/// Up to `limit` entries with their links after the entry `$1`, in `seq`
/// order.
fn audit_links_after(limit: usize) -> String {
    format!(
        "SELECT {AUDIT_LINK_COLUMNS} FROM tm_audit WHERE seq > $1 ORDER BY seq LIMIT {}",
        sql_limit(limit)
    )
}

/// Chains the audit entries written before the audit chain existed, in
/// `seq` order, a batch at a time (a step of the migration that adds the
/// chain's columns).
/// Every event and campaign as stored (see [`Tx::stored_state`]).
pub(crate) fn stored_state<B: Backend>(b: &mut B, scope: Option<&[Uuid]>) -> Result<StoredState> {
    use std::collections::HashSet;
    let wanted: Option<HashSet<Uuid>> = scope.map(|ids| ids.iter().copied().collect());
    let keep = |id: &Uuid| wanted.as_ref().is_none_or(|w| w.contains(id));
    // Both tables are read in their own order, without a sort or an index
    // walk; each event's attendees are put in position order below.
    let events = rows(
        b,
        &format!("SELECT {EVENT_COLUMNS}, fire_ms FROM tm_events"),
        &[],
        |r| Ok((read_event(r)?, r.decode(row::opt_time(r.opt_int(23)?))?)),
    )?;
    // Each event's attendees with their positions.
    type Positioned = Vec<(i64, (AgentId, ResponseStatus))>;
    let mut attendees: HashMap<Uuid, Positioned> = HashMap::new();
    b.query(
        &format!("SELECT {EVENT_ATTENDEE_COLUMNS}, position FROM tm_attendees"),
        &[],
        |r| {
            let (id, attendee) = read_event_attendee(r)?;
            attendees.entry(id).or_default().push((r.int(4)?, attendee));
            Ok(())
        },
    )?;
    let mut rules: HashMap<Uuid, Vec<NotifyRule>> = HashMap::new();
    b.query("SELECT event_id, rules FROM tm_notify_rules", &[], |r| {
        let list = r.decode(notify_row::rules_from_text(&r.text(1)?))?;
        rules.insert(r.id(0)?, list);
        Ok(())
    })?;
    let mut needs: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    b.query("SELECT to_id, from_id FROM tm_edges", &[], |r| {
        needs.entry(r.id(0)?).or_default().push(r.id(1)?);
        Ok(())
    })?;
    let mut signers: HashMap<Uuid, String> = HashMap::new();
    b.query("SELECT scope_id, digest FROM tm_scope_signers", &[], |r| {
        signers.insert(r.id(0)?, r.text(1)?);
        Ok(())
    })?;
    let mut state = StoredState::default();
    for (mut event, fire_time) in events {
        if !keep(&event.id) {
            continue;
        }
        let id = event.id;
        let mut listed = attendees.remove(&id).unwrap_or_default();
        listed.sort_by_key(|(position, _)| *position);
        event.attendees = listed.into_iter().map(|(_, a)| a).collect();
        state.events.push(StoredEvent {
            fire_time,
            rules: rules.remove(&id).unwrap_or_default(),
            needs: needs.remove(&id).unwrap_or_default(),
            signers: match event.campaign {
                None => signers.get(&id).cloned(),
                Some(_) => None,
            },
            event,
        });
    }
    let campaigns = rows(
        b,
        &format!("SELECT {CAMPAIGN_COLUMNS} FROM tm_campaigns ORDER BY id"),
        &[],
        |r| read_campaign(r),
    )?;
    for row in campaigns {
        if keep(&row.id) {
            let digest = signers.get(&row.id).cloned();
            state.campaigns.push((row, digest));
        }
    }
    Ok(state)
}

/// Appends one `baseline` entry per event and one `campaign-baseline` entry
/// per campaign, each with its whole record as stored, chained after the
/// log's last entry, at `now`: from these on, the log explains every row.
pub(crate) fn baseline_existing<B: Backend>(b: &mut B, now: DateTime<Utc>) -> Result<()> {
    use crate::audit::AuditAction;
    let mut state = stored_state(b, None)?;
    state.events.sort_by_key(|e| e.event.id);
    let mut head = rows(
        b,
        "SELECT hash FROM tm_audit ORDER BY seq DESC LIMIT 1",
        &[],
        |r| row::opt_hash(r, 0),
    )?
    .into_iter()
    .next()
    .flatten();
    let mut entries: Vec<NewAuditEntry> = Vec::new();
    for (row, signers) in &state.campaigns {
        let record = super::campaign_record(row, signers.as_deref());
        entries.push(baseline_entry(
            row.id,
            AuditAction::CampaignBaseline,
            record,
            now,
        ));
    }
    for event in &state.events {
        entries.push(baseline_entry(
            event.event.id,
            AuditAction::Baseline,
            event.record(),
            now,
        ));
    }
    for entry in entries {
        let (prev, hash) = chain_links(head.as_deref(), &entry.stored(0), None);
        let columns = AuditColumns::from_entry(&entry);
        b.execute(
            "INSERT INTO tm_audit (event_id, at_ms, recorded_ms, agent, action, detail, \
             unreported, prev, hash) VALUES ($1, $2, $3, NULL, $4, $5, NULL, $6, $7)",
            values![
                columns.event_id,
                columns.at_ms,
                columns.recorded_ms,
                columns.action,
                columns.detail,
                Value::hash(&prev),
                Value::hash(&hash),
            ],
        )?;
        head = Some(hash);
    }
    Ok(())
}

/// A baseline entry about `subject` recording `record`.
fn baseline_entry(
    subject: Uuid,
    action: crate::audit::AuditAction,
    record: crate::trust::record::Record,
    now: DateTime<Utc>,
) -> NewAuditEntry {
    NewAuditEntry {
        event: subject,
        at: now,
        recorded_at: now,
        agent: None,
        on_behalf_of: None,
        action,
        detail: serde_json::json!({ "record": record }),
        signed: None,
    }
}

pub(crate) fn chain_existing<B: Backend>(b: &mut B) -> Result<()> {
    let mut head: Option<String> = None;
    let mut after = 0i64;
    loop {
        let batch = rows(
            b,
            // The entries of a store this old name no agent acted for, and
            // the column that would is added by a later migration.
            "SELECT seq, event_id, at_ms, recorded_ms, agent, action, detail, \
             CAST(NULL AS TEXT) FROM tm_audit WHERE seq > $1 ORDER BY seq LIMIT 1000",
            values![after],
            |r| read_audit(r),
        )?;
        let Some(last) = batch.last() else {
            return Ok(());
        };
        after = last.seq;
        for entry in &batch {
            let (prev, hash) = chain_links(head.as_deref(), entry, None);
            b.execute(
                "UPDATE tm_audit SET prev = $2, hash = $3 WHERE seq = $1",
                values![entry.seq, Value::hash(&prev), Value::hash(&hash)],
            )?;
            head = Some(hash);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_row_starts_with_the_event_columns() {
        let words = |text: &str| -> Vec<String> {
            text.split(',')
                .map(|c| c.trim().trim_start_matches("tm_events.").to_string())
                .collect()
        };
        let listing = words(LISTING_COLUMNS);
        let event = words(EVENT_COLUMNS);
        assert_eq!(listing[..event.len()], event[..]);
        assert_eq!(listing[LISTING_RULES], "r.rules");
        assert_eq!(listing[LISTING_POSITION], "a.position");
        assert_eq!(
            listing[LISTING_POSITION + 1..].join(", "),
            ATTENDEE_COLUMNS
                .replace("agent", "a.agent")
                .replace("status", "a.status")
                .replace("defer_ms", "a.defer_ms")
        );
    }

    #[test]
    fn every_bulk_column_has_a_kind() {
        for table in [&EVENTS, &ATTENDEES, &EDGES, &AUDIT] {
            let columns = table.columns.split(", ").count();
            assert_eq!(columns, table.kinds.len(), "{}", table.name);
        }
        assert!(EVENTS.columns.starts_with(EVENT_COLUMNS));
    }

    #[test]
    fn a_chain_hash_is_stored_as_its_bytes() {
        let hex = "86bedf3f6c2b5f2a88df44b6e8aa04a655a711608c98cfa9c67e0b0e059a18df";
        let Value::Bytes(bytes) = Value::hash(hex) else {
            panic!("not bytes")
        };
        assert_eq!(bytes.len(), 32);
        assert_eq!(base16ct::lower::encode_string(&bytes), hex);
        assert_eq!(Value::hash("not hex"), Value::Text("not hex".into()));
    }
}
