//! Persistence behind a small trait.
//!
//! The engine speaks only to [`Store`] and [`Tx`]: every operation opens one
//! transaction, reads and writes single rows through indexed lookups, and
//! commits. [`sqlite::SqliteStore`] is the embedded default;
//! [`postgres::PgStore`] shares one store among hosts with the same
//! behaviour ([`open`] picks one by the location: a `postgres://` URL or a
//! file path). Both keep the same rows (`store/row.rs`), run the same
//! statements (`store/sql.rs`, over a small backend per database: connection
//! and transactions, dialect, bulk inserts, locking, error mapping), apply
//! the same named migrations in order (`store/schema.rs`), and allow one
//! writer at a time.

mod notify_row;
pub mod postgres;
mod row;
mod schema;
mod sql;
pub mod sqlite;
pub mod tls;
mod watch;
mod written;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::agent::AgentId;
use crate::audit::{AuditAction, AuditEntry};
use crate::error::Result;
use crate::event::TMinusEvent;
use crate::notification::{Delivery, NotifyRule, Reminder};
use crate::state::{EventState, ResponseStatus};

pub use crate::error::{Location, StoreError};
pub use crate::lifecycle::NeedState;
pub(crate) use written::as_stored;

/// Whether `e` is a write transaction that failed only because it ran into
/// another writer (the server broke a deadlock by aborting it): it was
/// rolled back, and running it again may succeed.
pub fn is_conflict(e: &crate::error::TMinusError) -> bool {
    postgres::is_conflict(e)
}

/// Whether `location` names a PostgreSQL server (`postgres://…` or
/// `postgresql://…`) rather than an SQLite file.
pub fn is_server_url(location: &str) -> bool {
    let lower = location.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// Opens the store at `location`: a PostgreSQL connection URL
/// (`postgres://user@host/db`), or else the path of an SQLite file (created
/// when missing).
pub fn open(location: &str) -> Result<Box<dyn Store>> {
    if is_server_url(location) {
        Ok(Box::new(postgres::PgStore::connect(location)?))
    } else {
        Ok(Box::new(sqlite::SqliteStore::open(std::path::Path::new(
            location,
        ))?))
    }
}

/// [`open`] for a store this process already has open on another
/// connection: an SQLite file is opened without being read outside SQLite
/// first ([`sqlite::SqliteStore::open_again`]), which would drop the
/// process's other connections' file locks.
pub fn open_again(location: &str) -> Result<Box<dyn Store>> {
    if is_server_url(location) {
        Ok(Box::new(postgres::PgStore::connect(location)?))
    } else {
        Ok(Box::new(sqlite::SqliteStore::open_again(
            std::path::Path::new(location),
        )?))
    }
}

/// A store of events, campaigns and the audit trail.
pub trait Store: Send {
    /// Starts a write transaction. Read-modify-write sequences inside it see
    /// no interleaved writer on what they touch: SQLite holds the whole
    /// store from the start (`BEGIN IMMEDIATE`); PostgreSQL locks each
    /// event's row as the transaction loads it, and the audit chain only
    /// while the transaction extends it and commits, so writers on
    /// different events run side by side ([`Tx::lock_store`] holds the
    /// chain from the start instead). Dropping it without [`Tx::commit`]
    /// rolls back.
    fn write(&mut self) -> Result<Box<dyn Tx + '_>>;

    /// Starts a read transaction: a consistent snapshot, no lock held against
    /// writers. It needs only a shared borrow, so an engine reads through
    /// `&self`; one transaction at a time per store (a second one begun
    /// while the first is open is an error, not a nested transaction).
    fn read(&self) -> Result<Box<dyn Tx + '_>>;

    /// A number that changes whenever another connection commits a write;
    /// runners poll it to notice answers promptly.
    fn data_version(&mut self) -> Result<i64>;

    /// Blocks for at most `timeout`, returning early when another connection
    /// may have committed a write (then [`Store::data_version`] has changed
    /// or will change). The default sleeps the whole time. SQLite returns on
    /// file change notification of the database (and sleeps the whole time
    /// where there is none); PostgreSQL as soon as a `NOTIFY` arrives.
    ///
    /// True when the data version may have changed since this connection
    /// last read it; false only when the store knows it has not (a watched
    /// SQLite file that sent no notification), so a waiter can skip the
    /// look.
    fn wait_for_change(&mut self, timeout: std::time::Duration) -> Result<bool> {
        std::thread::sleep(timeout);
        Ok(true)
    }

    /// True when [`Store::wait_for_change`] returns as soon as another
    /// process writes (file change notification of an SQLite file), so a
    /// waiter need not poll often. The default: false.
    fn notifies_changes(&mut self) -> bool {
        false
    }

    /// Calls `wake`, from a background thread and for as long as this store
    /// lives, whenever another connection may have committed a write (it may
    /// also be called for this connection's own writes). False when the
    /// store cannot tell (the default): the caller then polls.
    fn watch_changes(&mut self, wake: Box<dyn Fn() + Send>) -> bool {
        let _ = wake;
        false
    }
}

/// Which events [`Tx::list_events`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFilter {
    /// Blocked and pending events, soonest fire time first (unknown last).
    Unfinished,
    /// Every event, soonest fire time first (unknown last).
    All,
    /// Every event of one campaign, soonest fire time first (unknown last).
    Campaign(Uuid),
}

/// An event of a listing with the names its views show, read in the same
/// pass: its campaign's name and, for a blocked event, the names of the
/// events it needs (each its name, or its short id when it has none).
#[derive(Debug, Clone, PartialEq)]
pub struct ListedEvent {
    /// The event with its attendees.
    pub event: TMinusEvent,
    /// Its campaign's name (`None` for a standalone event).
    pub campaign: Option<String>,
    /// What a blocked event needs, in the order the needs were added;
    /// empty for every other state.
    pub needs: Vec<String>,
}

/// How many events a listing holds before it reads the blocked ones' needs
/// (one query a chunk) and hands them on; also the rows a server-side
/// cursor fetches at once.
pub const LISTING_CHUNK: usize = 256;

/// A campaign row, without its events.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignRow {
    /// Id.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Whether a manifest manages it.
    pub managed: bool,
    /// When a manifest first applied it: the anchor of its relative times.
    pub anchor_at: Option<DateTime<Utc>>,
    /// Bumped by every change to the campaign or its events.
    pub revision: i64,
}

/// An audit entry before the store numbers it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    /// The event.
    pub event: Uuid,
    /// Logical time.
    pub at: DateTime<Utc>,
    /// Wall-clock time of writing.
    pub recorded_at: DateTime<Utc>,
    /// Who acted.
    pub agent: Option<AgentId>,
    /// The agent `agent` acted for (an answer under a delegation).
    pub on_behalf_of: Option<AgentId>,
    /// What happened.
    pub action: AuditAction,
    /// Details.
    pub detail: serde_json::Value,
    /// The signed answer message and its signature, for a signed answer.
    pub signed: Option<SignedAnswer>,
}

/// A signed answer as the log keeps it: the exact message text and the
/// armored `sshsig` signature over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedAnswer {
    /// The canonical answer message (see [`crate::trust::message`]).
    pub message: String,
    /// The armored signature (`-----BEGIN SSH SIGNATURE-----` …).
    pub signature: String,
}

/// A key set as stored: its digest (`sha256:` and 64 hex digits of its
/// text) and its text, in t-minus's canonical `allowed_signers` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSigners {
    /// `sha256:` and the SHA-256 of `text`, in hex.
    pub digest: String,
    /// The `allowed_signers` text.
    pub text: String,
}

/// An audit entry as stored, with its chain links (hex text, as the
/// columns hold them: a tampered row may hold anything).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredLink {
    /// The entry.
    pub entry: AuditEntry,
    /// The stored `prev`: the hash of the entry before it.
    pub prev: Option<String>,
    /// The stored `hash` of the entry.
    pub hash: Option<String>,
    /// The signed answer message, when the answer was signed.
    pub message: Option<String>,
    /// The armored signature of `message`.
    pub signature: Option<String>,
}

/// A stored entry with its chain links as `verify` reads the whole log: the
/// entry's detail is its stored JSON text, parsed by the reader where it
/// needs the value (`link.entry.detail` is `null`).
#[derive(Debug, Clone, PartialEq)]
pub struct RawLink {
    /// The entry and its links, its detail `null`.
    pub link: StoredLink,
    /// The entry's detail as stored: a JSON object's text.
    pub detail: String,
}

/// What an audit log must account for, as `verify` reads it from the
/// store: the events in a final state and the attendees whose stored answer
/// is confirmed, deferred or declined. Every event and attendee not listed
/// is unfinished or unanswered, which any log accounts for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredOutcomes {
    /// Each event that is fired, missed or cancelled, with that state.
    pub finished: Vec<(Uuid, EventState)>,
    /// Each attendee with a confirmed, deferred or declined answer: the
    /// event, the agent and the answer.
    pub answers: Vec<(Uuid, AgentId, ResponseStatus)>,
}

impl StoredOutcomes {
    /// The outcomes from the finished events' rows and the answered
    /// attendees' rows (each with its event's id).
    pub(crate) fn new(
        finished: Vec<(Uuid, EventState)>,
        answers: Vec<(Uuid, (AgentId, ResponseStatus))>,
    ) -> Self {
        StoredOutcomes {
            finished,
            answers: answers
                .into_iter()
                .map(|(event, (agent, status))| (event, agent, status))
                .collect(),
        }
    }
}

/// Every event and campaign as stored, with what their records need: what
/// `verify` compares with the log, and what the baseline migration records.
#[derive(Debug, Clone, Default)]
pub struct StoredState {
    /// Every event, in the order the store reads them fastest (not sorted).
    pub events: Vec<StoredEvent>,
    /// Every campaign with the digest of its key set in force, by id.
    pub campaigns: Vec<(CampaignRow, Option<String>)>,
}

/// One event of [`StoredState`].
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// The event with its attendees, as its rows read.
    pub event: TMinusEvent,
    /// The fire time column.
    pub fire_time: Option<DateTime<Utc>>,
    /// Its notification rules.
    pub rules: Vec<NotifyRule>,
    /// The ids of the events it needs.
    pub needs: Vec<Uuid>,
    /// The digest of the key set in force for it as a standalone event.
    pub signers: Option<String>,
}

impl StoredEvent {
    /// What its record is computed from besides the event.
    fn extras(&self) -> crate::trust::record::EventExtras<'_> {
        crate::trust::record::EventExtras {
            fire_time: self.fire_time,
            notify: crate::trust::record::notify_digest(&self.rules),
            needs: &self.needs,
            signers: self.signers.as_deref(),
        }
    }

    /// Its record (see [`crate::trust::record`]).
    pub fn record(&self) -> crate::trust::record::Record {
        crate::trust::record::event_record(&self.event, self.extras())
    }

    /// Its record's canonical text, the same as
    /// [`record_text`](crate::trust::record::record_text) of
    /// [`StoredEvent::record`], written without building the record.
    pub fn record_text(&self) -> String {
        crate::trust::record::event_record_text(&self.event, &self.extras())
    }
}

/// The record of a stored campaign with key set `signers`.
pub fn campaign_record(row: &CampaignRow, signers: Option<&str>) -> crate::trust::record::Record {
    crate::trust::record::campaign_record(
        &row.name,
        row.description.as_deref(),
        row.managed,
        row.anchor_at,
        signers,
    )
}

/// The `prev` and `hash` of a new entry written after the entry whose
/// stored hash is `head` (`None`: the log is empty), as hex. A head that is
/// not a hash (a tampered row) is chained from as the genesis; `verify`
/// reports that row.
pub(crate) fn chain_links(
    head: Option<&str>,
    entry: &AuditEntry,
    signed: Option<&SignedAnswer>,
) -> (String, String) {
    use crate::trust::chain::{entry_hash, ChainHash};
    let prev = head
        .and_then(|h| h.parse::<ChainHash>().ok())
        .unwrap_or(ChainHash::GENESIS);
    let hash = entry_hash(
        &prev,
        entry,
        signed.map(|s| s.message.as_bytes()),
        signed.map(|s| s.signature.as_str()),
    );
    (prev.hex(), hash.hex())
}

/// The `prev` and `hash` of the new entry `e` written after the entry whose
/// stored hash is `head`, as [`chain_links`] gives them for the entry as it
/// reads back (`e.stored(…)`), without copying it.
pub(crate) fn new_entry_links(head: Option<&str>, e: &NewAuditEntry) -> (String, String) {
    use crate::trust::chain::{entry_bytes_v2_of, link_hash, ChainHash, EntryParts, Subject};
    let prev = head
        .and_then(|h| h.parse::<ChainHash>().ok())
        .unwrap_or(ChainHash::GENESIS);
    let bytes = entry_bytes_v2_of(
        &Subject::of_action(e.action, e.event),
        EntryParts {
            at_ms: e.at.timestamp_millis(),
            recorded_ms: e.recorded_at.timestamp_millis(),
            agent: e.agent.as_ref().map(AgentId::as_str),
            on_behalf_of: e.on_behalf_of.as_ref().map(AgentId::as_str),
            action: e.action.as_str(),
            detail: &crate::trust::framing::canonical_json(&e.detail),
            message: e.signed.as_ref().map(|s| s.message.as_bytes()),
            signature: e.signed.as_ref().map(|s| s.signature.as_str()),
        },
    );
    (prev.hex(), link_hash(&prev, &bytes).hex())
}

impl NewAuditEntry {
    /// The entry as it reads back from a store (times in whole milliseconds),
    /// numbered `seq`.
    pub(crate) fn stored(&self, seq: i64) -> AuditEntry {
        let ms =
            |t: DateTime<Utc>| DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t);
        AuditEntry {
            seq,
            event: self.event,
            at: ms(self.at),
            recorded_at: ms(self.recorded_at),
            agent: self.agent.clone(),
            on_behalf_of: self.on_behalf_of.clone(),
            action: self.action,
            detail: self.detail.clone(),
        }
    }
}

/// One transaction on a [`Store`]. All lookups are by primary key or index.
pub trait Tx {
    /// Inserts a new event with its attendees.
    fn insert_event(&mut self, event: &TMinusEvent) -> Result<()>;
    /// Loads one event with its attendees.
    fn event(&mut self, id: Uuid) -> Result<Option<TMinusEvent>>;
    /// Loads several events with their attendees, in no particular order;
    /// ids of no event are left out. A store with costly round trips loads
    /// them together.
    fn events_by_id(&mut self, ids: &[Uuid]) -> Result<Vec<TMinusEvent>> {
        let mut events = Vec::with_capacity(ids.len());
        for id in ids {
            events.extend(self.event(*id)?);
        }
        Ok(events)
    }
    /// Writes an event's own row (state, times, quorum, …); attendees are
    /// written with [`Tx::set_response`] and [`Tx::set_attendees`].
    fn update_event(&mut self, event: &TMinusEvent) -> Result<()>;
    /// Records one attendee's response.
    fn set_response(
        &mut self,
        id: Uuid,
        agent: &AgentId,
        status: ResponseStatus,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// Replaces the attendee list, keeping the responses of attendees that stay.
    fn set_attendees(&mut self, id: Uuid, attendees: &[AgentId]) -> Result<()>;
    /// Ids starting with `prefix` (lowercase, hyphenated form), at most `limit`.
    fn events_with_prefix(&mut self, prefix: &str, limit: usize) -> Result<Vec<Uuid>>;
    /// The event named `name` in campaign `campaign`.
    fn event_by_name(&mut self, campaign: Uuid, name: &str) -> Result<Option<Uuid>>;
    /// The event named `name` in the campaign named `campaign`, in one
    /// look-up; `None` when there is none (the campaign may still be meant
    /// by its id or a prefix of it).
    fn event_by_names(&mut self, campaign: &str, name: &str) -> Result<Option<Uuid>>;
    /// Standalone events named `name`, at most `limit`: unfinished ones
    /// first, then the newest first.
    fn standalone_events_named(&mut self, name: &str, limit: usize) -> Result<Vec<Uuid>>;
    /// Pending events whose fire time is at or before `now`, soonest first.
    fn due_events(&mut self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Uuid>>;
    /// Pending events of `id`'s campaign whose fire time is at or before
    /// `now`, soonest first (none for a standalone event).
    fn campaign_due_events(&mut self, id: Uuid, now: DateTime<Utc>) -> Result<Vec<Uuid>>;
    /// The soonest fire time of a pending event (of `campaign`, if given).
    fn next_fire_time(&mut self, campaign: Option<Uuid>) -> Result<Option<DateTime<Utc>>>;
    /// Events for listings, soonest fire time first.
    fn list_events(&mut self, filter: EventFilter) -> Result<Vec<TMinusEvent>> {
        let mut events = Vec::new();
        self.scan_events(filter, &mut |listed| {
            events.push(listed.event);
            Ok(())
        })?;
        Ok(events)
    }
    /// Hands each event of a listing to `visit`, soonest fire time first
    /// (unknown last), with the names its views show. The events are read
    /// through one cursor in listing order, each joined to its attendees
    /// and notification rules by their keys; the needs of the blocked ones
    /// in one query per chunk of [`LISTING_CHUNK`] events: memory stays
    /// bounded by the chunk, whatever the listing's length. An error from
    /// `visit` stops the scan.
    fn scan_events(
        &mut self,
        filter: EventFilter,
        visit: &mut dyn FnMut(ListedEvent) -> Result<()>,
    ) -> Result<()>;
    /// The unfinished (blocked or pending) events `agent` attends, whatever
    /// its answer, soonest fire time first (unknown last); through the
    /// attendees' index on (agent) of open events: O(log n + k).
    fn inbox(&mut self, agent: &AgentId) -> Result<Vec<TMinusEvent>>;
    /// Total number of stored events.
    fn count_events(&mut self) -> Result<u64>;

    /// Inserts a campaign.
    fn insert_campaign(&mut self, campaign: &CampaignRow) -> Result<()>;
    /// Writes a campaign's row.
    fn update_campaign(&mut self, campaign: &CampaignRow) -> Result<()>;
    /// Loads a campaign row by id.
    fn campaign(&mut self, id: Uuid) -> Result<Option<CampaignRow>>;
    /// Loads a campaign row by name.
    fn campaign_by_name(&mut self, name: &str) -> Result<Option<CampaignRow>>;
    /// Campaign ids starting with `prefix`, at most `limit`.
    fn campaigns_with_prefix(&mut self, prefix: &str, limit: usize) -> Result<Vec<Uuid>>;
    /// Every campaign, by name.
    fn list_campaigns(&mut self) -> Result<Vec<CampaignRow>>;
    /// A campaign's events in the order they were added: id, name and state.
    fn campaign_events(&mut self, campaign: Uuid) -> Result<Vec<(Uuid, String, EventState)>>;
    /// A campaign's edges `(from, to)`.
    fn campaign_edges(&mut self, campaign: Uuid) -> Result<Vec<(Uuid, Uuid)>>;
    /// Adds the edge `to` needs `from`.
    fn insert_edge(&mut self, campaign: Uuid, from: Uuid, to: Uuid) -> Result<()>;
    /// Removes the edge `to` needs `from`.
    fn delete_edge(&mut self, from: Uuid, to: Uuid) -> Result<()>;
    /// What `id` needs, with each need's outcome.
    fn needs(&mut self, id: Uuid) -> Result<Vec<NeedState>>;
    /// The state of event `id` when this transaction knows it without a
    /// query (an event it inserted itself), `None` otherwise.
    fn known_state(&mut self, _id: Uuid) -> Option<EventState> {
        None
    }
    /// The events that need `id`.
    fn dependents(&mut self, id: Uuid) -> Result<Vec<Uuid>>;
    /// Deletes a campaign with its events, edges and their audit entries
    /// (only `apply --prune` does this).
    fn delete_campaign(&mut self, campaign: Uuid) -> Result<()>;
    /// Deletes one event (only `apply` of a manifest that drops a non-final
    /// event does this), with its attendees and edges.
    fn delete_event(&mut self, id: Uuid) -> Result<()>;

    /// Appends to the audit trail. Transitions are also queued for reporting.
    /// A store may send the entry to its server with a later statement of
    /// the same transaction (every read sees it).
    fn append_audit(&mut self, entry: &NewAuditEntry) -> Result<()>;
    /// The final states and answers the whole store holds (see
    /// [`StoredOutcomes`]): two scans of the event and attendee rows, with
    /// no sort, keeping only the rows the log must explain.
    fn stored_outcomes(&mut self) -> Result<StoredOutcomes>;
    /// Every event and campaign with what their records need, read in a
    /// few queries (`scope`: only these events and campaigns).
    fn stored_state(&mut self, scope: Option<&[Uuid]>) -> Result<StoredState>;
    /// Up to `limit` entries with their chain links, `seq > after` in `seq`
    /// (commit) order.
    fn audit_links(&mut self, after: i64, limit: usize) -> Result<Vec<StoredLink>>;
    /// [`Tx::audit_links`] with each detail as its stored text, for a reader
    /// that parses only what it needs.
    fn raw_audit_links(&mut self, after: i64, limit: usize) -> Result<Vec<RawLink>>;
    /// The entries of one event with their chain links, in `seq` order.
    fn event_audit_links(&mut self, id: Uuid) -> Result<Vec<StoredLink>>;
    /// The key set in force for `scope` (a campaign id, or a standalone
    /// event's id), if any.
    fn scope_signers(&mut self, scope: Uuid) -> Result<Option<StoredSigners>>;
    /// Puts `signers` in force for `scope` (storing the set once under its
    /// digest), or none.
    fn set_scope_signers(&mut self, scope: Uuid, signers: Option<&StoredSigners>) -> Result<()>;
    /// The text of the key set with this digest, if stored.
    fn signers_by_digest(&mut self, digest: &str) -> Result<Option<String>>;
    /// Records a signed answer's nonce; false when it was recorded before.
    fn use_nonce(&mut self, nonce: Uuid, event: Uuid, at: DateTime<Utc>) -> Result<bool>;
    /// Stores a new token: its description and the hash of its secret.
    fn insert_token(
        &mut self,
        token: &crate::token::TokenInfo,
        hash: &crate::token::TokenHash,
    ) -> Result<()>;
    /// The token whose secret has this hash, with the hash stored.
    fn token_by_hash(
        &mut self,
        hash: &crate::token::TokenHash,
    ) -> Result<Option<(crate::token::TokenInfo, crate::token::TokenHash)>>;
    /// Every token, oldest first.
    fn tokens(&mut self) -> Result<Vec<crate::token::TokenInfo>>;
    /// Every token with the stored hash of its secret, by id (what
    /// `verify` compares with the log).
    fn stored_tokens(&mut self) -> Result<Vec<(crate::token::TokenInfo, crate::token::TokenHash)>>;
    /// Marks a token revoked at `at`; false when it was already revoked.
    fn revoke_token(&mut self, id: Uuid, at: DateTime<Utc>) -> Result<bool>;
    /// Stores a new delegation.
    fn insert_delegation(&mut self, delegation: &crate::delegation::Delegation) -> Result<()>;
    /// Every delegation (with its campaign's name), oldest first.
    fn delegations(&mut self) -> Result<Vec<crate::delegation::Delegation>>;
    /// The delegations from `from` to `to`, oldest first; through the
    /// index on (from, to).
    fn delegations_between(
        &mut self,
        from: &AgentId,
        to: &AgentId,
    ) -> Result<Vec<crate::delegation::Delegation>>;
    /// Marks a delegation revoked at `at`; false when it was already revoked.
    fn revoke_delegation(&mut self, id: Uuid, at: DateTime<Utc>) -> Result<bool>;
    /// Stores a new chat link (refused by the store when the account is
    /// linked already: check with [`Tx::chat_link`] first).
    fn insert_chat_link(&mut self, link: &crate::chat::ChatLink) -> Result<()>;
    /// The link of account `user` of `chat`, if it is linked.
    fn chat_link(
        &mut self,
        chat: crate::chat::Chat,
        user: &str,
    ) -> Result<Option<crate::chat::ChatLink>>;
    /// Every chat link, oldest first (then by chat and account).
    fn chat_links(&mut self) -> Result<Vec<crate::chat::ChatLink>>;
    /// Removes a chat link; false when there was none with this id.
    fn delete_chat_link(&mut self, id: Uuid) -> Result<bool>;
    /// Stores a GitHub deployment that a delivery asked t-minus to gate.
    fn insert_github_deployment(&mut self, d: &crate::github::GithubDeployment) -> Result<()>;
    /// The GitHub deployment recorded for the delivery with this GUID.
    fn github_deployment_by_delivery(
        &mut self,
        delivery: &str,
    ) -> Result<Option<crate::github::GithubDeployment>>;
    /// The GitHub deployment with this id (its row locked where writers
    /// run side by side).
    fn github_deployment(&mut self, id: Uuid) -> Result<Option<crate::github::GithubDeployment>>;
    /// Waiting GitHub deployments whose next attempt is due by `now`
    /// (wall clock), soonest first, at most `limit` (locked likewise).
    fn due_github_deployments(
        &mut self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<crate::github::GithubDeployment>>;
    /// Writes a GitHub deployment's report state (state, verdict, comment,
    /// attempts, next attempt, end, last error).
    fn update_github_deployment(&mut self, d: &crate::github::GithubDeployment) -> Result<()>;
    /// Stores an invitation and the hash of its secret.
    fn insert_invite(&mut self, invite: &crate::people::Invitation, hash: &str) -> Result<()>;
    /// The invitation whose secret has this hash.
    fn invite_by_hash(&mut self, hash: &str) -> Result<Option<crate::people::Invitation>>;
    /// Every invitation, oldest first.
    fn invites(&mut self) -> Result<Vec<crate::people::Invitation>>;
    /// Marks an invitation used at `at`; false when it was used already.
    fn use_invite(&mut self, id: Uuid, at: DateTime<Utc>) -> Result<bool>;
    /// Stores an enrolled passkey.
    fn insert_passkey(&mut self, passkey: &crate::people::PasskeyInfo) -> Result<()>;
    /// The passkey with this credential id.
    fn passkey(&mut self, credential: &str) -> Result<Option<crate::people::PasskeyInfo>>;
    /// Every passkey, oldest first.
    fn passkeys(&mut self) -> Result<Vec<crate::people::PasskeyInfo>>;
    /// Marks a passkey revoked at `at` and ends the sessions it signed in;
    /// false when it was revoked already.
    fn revoke_passkey(&mut self, credential: &str, at: DateTime<Utc>) -> Result<bool>;
    /// Stores a ceremony under way.
    fn insert_ceremony(&mut self, ceremony: &crate::people::Ceremony) -> Result<()>;
    /// Takes (reads and deletes) a ceremony: each is finished once.
    fn take_ceremony(&mut self, id: Uuid) -> Result<Option<crate::people::Ceremony>>;
    /// Stores a browser session.
    fn insert_session(&mut self, session: &crate::people::SessionRow) -> Result<()>;
    /// The session whose cookie secret has this hash, if it is not ended
    /// and its passkey is not revoked (expiry is the caller's to check).
    fn session_by_hash(&mut self, hash: &str) -> Result<Option<crate::people::SessionRow>>;
    /// Ends a session at `at`; false when it was ended already.
    fn end_session(&mut self, hash: &str, at: DateTime<Utc>) -> Result<bool>;
    /// An event's audit trail, oldest first.
    fn audit(&mut self, id: Uuid) -> Result<Vec<AuditEntry>>;
    /// Audit entries after `seq`, oldest first, at most `limit`.
    fn audit_since(&mut self, seq: i64, limit: usize) -> Result<Vec<AuditEntry>>;
    /// The newest audit entry's `seq` (0 when the log is empty).
    fn latest_audit_seq(&mut self) -> Result<i64>;
    /// Takes every transition not yet reported, marking it reported.
    fn claim_reports(&mut self) -> Result<Vec<AuditEntry>>;

    /// An event's notification rules (empty when it has none).
    fn notify_rules(&mut self, event: Uuid) -> Result<Vec<NotifyRule>>;
    /// The notification rules of several events, by event; events without
    /// rules are left out.
    fn notify_rules_by_id(&mut self, ids: &[Uuid]) -> Result<Vec<(Uuid, Vec<NotifyRule>)>> {
        let mut rules = Vec::new();
        for id in ids {
            let r = self.notify_rules(*id)?;
            if !r.is_empty() {
                rules.push((*id, r));
            }
        }
        Ok(rules)
    }
    /// Replaces an event's notification rules; an empty list removes them.
    fn set_notify_rules(&mut self, event: Uuid, rules: &[NotifyRule]) -> Result<()>;
    /// An event's reminder times, soonest `before` first.
    fn reminders(&mut self, event: Uuid) -> Result<Vec<Reminder>>;
    /// Replaces an event's reminder times.
    fn set_reminders(&mut self, event: Uuid, reminders: &[Reminder]) -> Result<()>;
    /// Reminders not yet sent whose time is at or before `now`, soonest
    /// first, at most `limit`.
    fn due_reminders(&mut self, now: DateTime<Utc>, limit: usize) -> Result<Vec<(Uuid, Reminder)>>;
    /// Marks a reminder sent.
    fn mark_reminder_sent(&mut self, event: Uuid, before_ms: u64) -> Result<()>;
    /// Queues a delivery.
    fn insert_delivery(&mut self, delivery: &Delivery) -> Result<()>;
    /// Writes a delivery's state, attempts, next time, finish time and error.
    fn update_delivery(&mut self, delivery: &Delivery) -> Result<()>;
    /// One delivery by its key.
    fn delivery(&mut self, key: Uuid) -> Result<Option<Delivery>>;
    /// Pending deliveries whose next time is at or before `now`, soonest
    /// first, at most `limit`.
    fn due_deliveries(&mut self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Delivery>>;
    /// An event's deliveries, oldest first.
    fn event_deliveries(&mut self, event: Uuid) -> Result<Vec<Delivery>>;

    /// Takes the lock of the audit chain now and holds it to the end, so
    /// that no other transaction extends the log meanwhile: for writes
    /// whose checks span more than the events they load (unique names,
    /// positions in a campaign, the dependency graph). A store whose
    /// writers are alone from the start does nothing.
    fn lock_store(&mut self) -> Result<()>;

    /// Marks the point [`Tx::rollback_to_mark`] returns to: what the
    /// transaction wrote so far is sent to the store first. One mark at a
    /// time; a new one replaces the last. Lets one transaction carry
    /// several independent writes, each undone alone when it fails.
    fn mark(&mut self) -> Result<()>;

    /// Undoes everything written since [`Tx::mark`] and drops the mark;
    /// the transaction goes on, with what it wrote before the mark.
    fn rollback_to_mark(&mut self) -> Result<()>;

    /// Keeps what was written since [`Tx::mark`] and drops the mark.
    fn release_mark(&mut self) -> Result<()>;

    /// Commits.
    fn commit(self: Box<Self>) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_entry_chains_as_it_reads_back() {
        let at = DateTime::parse_from_rfc3339("2026-12-06T15:00:00.123456789Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let head = "ab".repeat(32);
        for (action, agent, signed) in [
            (AuditAction::Scheduled, None, None),
            (AuditAction::CampaignCreated, None, None),
            (
                AuditAction::Confirmed,
                Some(AgentId("alice".into())),
                Some(SignedAnswer {
                    message: "message\n".into(),
                    signature: "signature".into(),
                }),
            ),
        ] {
            let entry = NewAuditEntry {
                event: Uuid::new_v4(),
                at,
                recorded_at: at + chrono::Duration::nanoseconds(1_500_000),
                agent,
                on_behalf_of: Some(AgentId("bob".into())),
                action,
                detail: serde_json::json!({"z": 1, "a": {"y": [true, null], "b": "é\n"}}),
                signed,
            };
            for head in [None, Some(head.as_str())] {
                assert_eq!(
                    new_entry_links(head, &entry),
                    chain_links(head, &entry.stored(0), entry.signed.as_ref()),
                    "{action:?}"
                );
            }
        }
    }
}
