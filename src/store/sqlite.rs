//! The embedded SQLite store.
//!
//! One file (default `tminus.db`), WAL journal, `synchronous = FULL` (a
//! committed answer survives a power loss), a busy timeout so concurrent
//! processes queue instead of failing, foreign keys on, and every write in one
//! `BEGIN IMMEDIATE` transaction. The schema version lives in
//! `PRAGMA user_version` and the file is marked with a t-minus
//! `application_id`, so foreign SQLite files are refused untouched.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{
    params, params_from_iter, Connection, ErrorCode, OpenFlags, OptionalExtension, Row,
    Transaction, TransactionBehavior,
};
use uuid::Uuid;

use super::row::{self, ms, status_columns, EventRow, EVENT_COLUMNS};
use super::{CampaignRow, EventFilter, NeedState, NewAuditEntry, Store, Tx};
use crate::agent::AgentId;
use crate::audit::{AuditAction, AuditEntry};
use crate::error::{Result, TMinusError};
use crate::event::TMinusEvent;
use crate::state::{EventState, ResponseStatus};

/// `PRAGMA application_id` of t-minus stores ("TMIN").
pub const APPLICATION_ID: i32 = 0x544D_494E;

/// How long a writer waits for another process's transaction to finish.
pub const BUSY_TIMEOUT: StdDuration = StdDuration::from_secs(30);

/// The migrations, in order; `user_version` is the number applied.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/sqlite/0001_initial.sql"),
    include_str!("migrations/sqlite/0002_campaign_due.sql"),
    include_str!("migrations/sqlite/0005_inbox.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The SQLite store.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens the store at `path`, creating it (and migrating it to the current
    /// schema) when needed.
    pub fn open(path: &Path) -> Result<Self> {
        if path.is_dir() {
            return Err(TMinusError::StoreOpen {
                path: path.into(),
                reason: "it is a directory".into(),
            });
        }
        if path.exists() {
            check_header(path)?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| map_error(path, e))?;
        let mut store = SqliteStore {
            conn,
            path: path.into(),
        };
        store.configure(true)?;
        store.migrate()?;
        Ok(store)
    }

    /// A private in-memory store, for tests.
    pub fn in_memory() -> Result<Self> {
        let conn = Connection::open_in_memory()?;
        let mut store = SqliteStore {
            conn,
            path: PathBuf::from(":memory:"),
        };
        store.configure(false)?;
        store.migrate()?;
        Ok(store)
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn configure(&mut self, file: bool) -> Result<()> {
        let path = self.path.clone();
        let err = |e| map_error(&path, e);
        self.conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        if self.conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            return Err(TMinusError::StoreReadOnly {
                path: self.path.clone(),
                reason: "the file is not writable".into(),
            });
        }
        if file {
            // Before switching to WAL, which rewrites the file header: a
            // foreign or newer file must be refused untouched.
            self.check_identity()?;
            let mode = self.switch_to_wal()?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(TMinusError::StoreOpen {
                    path: self.path.clone(),
                    reason: format!("could not switch to WAL mode (journal mode is {mode})"),
                });
            }
        }
        self.conn
            .execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(err)?;
        Ok(())
    }

    fn migrate(&mut self) -> Result<()> {
        let path = self.path.clone();
        let err = |e| map_error(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err)?;
        let app_id: i32 = tx
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(err)?;
        let tables: i64 = tx
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .map_err(err)?;
        if let Some(refusal) = identity_error(&self.path, version, app_id, tables) {
            return Err(refusal);
        }
        if version < SCHEMA_VERSION {
            for migration in &MIGRATIONS[version as usize..] {
                tx.execute_batch(migration).map_err(err)?;
            }
            tx.execute_batch(&format!(
                "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
            ))
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Sets WAL mode and returns the journal mode in effect. Switching needs
    /// an exclusive lock, and when several connections switch a new file at
    /// once SQLite reports the deadlock as busy without calling the busy
    /// handler; no transaction is open here, so waiting and retrying is safe.
    fn switch_to_wal(&self) -> Result<String> {
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match self
                .conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
            {
                Err(e)
                    if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(StdDuration::from_millis(2));
                }
                result => return result.map_err(|e| map_error(&self.path, e)),
            }
        }
    }

    /// Refuses a file that is not a t-minus store or was written by a newer
    /// version, reading only. [`SqliteStore::migrate`] checks again inside
    /// its write transaction.
    fn check_identity(&self) -> Result<()> {
        let err = |e| map_error(&self.path, e);
        // One read transaction, so that a store being created by another
        // connection right now is seen either empty or complete.
        let tx = self.conn.unchecked_transaction().map_err(err)?;
        let pragma = |name: &str| -> Result<i64> {
            tx.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
                .map_err(err)
        };
        let version = pragma("user_version")?;
        let app_id = pragma("application_id")? as i32;
        let tables: i64 = tx
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .map_err(err)?;
        match identity_error(&self.path, version, app_id, tables) {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        }
    }

    fn begin(&mut self, behavior: TransactionBehavior) -> Result<Box<dyn Tx + '_>> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(behavior)
            .map_err(|e| map_error(&path, e))?;
        Ok(Box::new(SqliteTx { tx, path }))
    }
}

impl Store for SqliteStore {
    fn write(&mut self) -> Result<Box<dyn Tx + '_>> {
        self.begin(TransactionBehavior::Immediate)
    }

    fn read(&mut self) -> Result<Box<dyn Tx + '_>> {
        self.begin(TransactionBehavior::Deferred)
    }

    fn data_version(&mut self) -> Result<i64> {
        let path = self.path.clone();
        self.conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(|e| map_error(&path, e))
    }
}

/// Why a database with this `user_version`, `application_id` and number of
/// tables cannot be opened as a t-minus store, if it cannot.
fn identity_error(path: &Path, version: i64, app_id: i32, tables: i64) -> Option<TMinusError> {
    if app_id != APPLICATION_ID && (tables > 0 || version != 0 || app_id != 0) {
        return Some(TMinusError::NotAStore {
            path: path.into(),
            reason: format!(
                "it is an SQLite database of another application ({tables} table(s), application id {app_id:#x})"
            ),
        });
    }
    if version > SCHEMA_VERSION {
        return Some(TMinusError::StoreTooNew {
            path: path.into(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    None
}

/// Refuses files that are not SQLite databases before SQLite touches them.
fn check_header(path: &Path) -> Result<()> {
    use std::io::Read;
    let mut header = [0u8; 16];
    let mut file = std::fs::File::open(path).map_err(|e| TMinusError::StoreOpen {
        path: path.into(),
        reason: e.to_string(),
    })?;
    let n = file.read(&mut header).map_err(|e| TMinusError::StoreOpen {
        path: path.into(),
        reason: e.to_string(),
    })?;
    if n == 0 {
        return Ok(()); // an empty file becomes a new store
    }
    if n < 16 || &header != b"SQLite format 3\0" {
        return Err(TMinusError::NotAStore {
            path: path.into(),
            reason: "it is not an SQLite database".into(),
        });
    }
    Ok(())
}

/// Turns an SQLite error into a t-minus error that names the file.
fn map_error(path: &Path, e: rusqlite::Error) -> TMinusError {
    let code = e.sqlite_error_code();
    let reason = e.to_string();
    let path = path.to_path_buf();
    match code {
        Some(ErrorCode::NotADatabase) => TMinusError::NotAStore {
            path,
            reason: "it is not an SQLite database".into(),
        },
        Some(ErrorCode::DatabaseCorrupt) => TMinusError::StoreCorrupt { path, reason },
        Some(ErrorCode::ReadOnly) => TMinusError::StoreReadOnly { path, reason },
        Some(ErrorCode::CannotOpen) | Some(ErrorCode::PermissionDenied) => {
            TMinusError::StoreOpen { path, reason }
        }
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
            TMinusError::Store(format!(
                "{reason} (another process held the store for more than {}s)",
                BUSY_TIMEOUT.as_secs()
            ))
        }
        _ => TMinusError::Store(format!("{}: {reason}", path.display())),
    }
}

struct SqliteTx<'c> {
    tx: Transaction<'c>,
    path: PathBuf,
}

fn time(ms: i64) -> rusqlite::Result<DateTime<Utc>> {
    row::time(ms).map_err(bad_value)
}

fn opt_time(ms: Option<i64>) -> rusqlite::Result<Option<DateTime<Utc>>> {
    row::opt_time(ms).map_err(bad_value)
}

fn bad_value(msg: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, msg.into())
}

fn uuid(s: &str) -> rusqlite::Result<Uuid> {
    row::uuid(s).map_err(bad_value)
}

fn parse<T: FromStr>(s: &str) -> rusqlite::Result<T>
where
    T::Err: std::fmt::Display,
{
    row::parse(s).map_err(bad_value)
}

/// Reads an event row; attendees are filled in separately.
fn event_from_row(row: &Row<'_>) -> rusqlite::Result<TMinusEvent> {
    EventRow {
        id: row.get(0)?,
        campaign_id: row.get(1)?,
        name: row.get(2)?,
        kind: row.get(3)?,
        description: row.get(4)?,
        at_ms: row.get(5)?,
        offset_ms: row.get(6)?,
        start_ms: row.get(7)?,
        t_minus_ms: row.get(8)?,
        defer_ms: row.get(9)?,
        max_defer_ms: row.get(10)?,
        quorum: row.get(11)?,
        quorum_spec: row.get(12)?,
        fire_policy: row.get(13)?,
        organizer: row.get(14)?,
        payload: row.get(15)?,
        state: row.get(16)?,
        finished_ms: row.get(17)?,
        created_ms: row.get(18)?,
        last_response_ms: row.get(19)?,
        fire_ms: None,
    }
    .into_event()
    .map_err(bad_value)
}

/// An event's row values in [`EVENT_COLUMNS`] order, then `fire_ms` (?21).
fn event_values(e: &TMinusEvent) -> [Value; 21] {
    let r = EventRow::from_event(e);
    let int = |v: Option<i64>| v.map_or(Value::Null, Value::Integer);
    let text = |v: Option<String>| v.map_or(Value::Null, Value::Text);
    [
        Value::Text(r.id),
        text(r.campaign_id),
        text(r.name),
        Value::Text(r.kind),
        text(r.description),
        int(r.at_ms),
        int(r.offset_ms),
        int(r.start_ms),
        Value::Integer(r.t_minus_ms),
        Value::Integer(r.defer_ms),
        int(r.max_defer_ms),
        Value::Integer(r.quorum),
        Value::Text(r.quorum_spec),
        Value::Text(r.fire_policy),
        Value::Text(r.organizer),
        Value::Text(r.payload),
        Value::Text(r.state),
        int(r.finished_ms),
        Value::Integer(r.created_ms),
        int(r.last_response_ms),
        int(r.fire_ms),
    ]
}

fn campaign_from_row(row: &Row<'_>) -> rusqlite::Result<CampaignRow> {
    Ok(CampaignRow {
        id: uuid(&row.get::<_, String>(0)?)?,
        name: row.get(1)?,
        description: row.get(2)?,
        created_at: time(row.get(3)?)?,
        managed: row.get(4)?,
        anchor_at: opt_time(row.get(5)?)?,
        revision: row.get(6)?,
    })
}

const CAMPAIGN_COLUMNS: &str = "id, name, description, created_ms, managed, anchor_ms, revision";

fn audit_from_row(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    let detail: String = row.get(6)?;
    Ok(AuditEntry {
        seq: row.get(0)?,
        event: uuid(&row.get::<_, String>(1)?)?,
        at: time(row.get(2)?)?,
        recorded_at: time(row.get(3)?)?,
        agent: row.get::<_, Option<String>>(4)?.map(AgentId),
        action: parse::<AuditAction>(&row.get::<_, String>(5)?)?,
        detail: serde_json::from_str(&detail).map_err(|e| bad_value(e.to_string()))?,
    })
}

const AUDIT_COLUMNS: &str = "seq, event_id, at_ms, recorded_ms, agent, action, detail";

impl SqliteTx<'_> {
    fn err(&self, e: rusqlite::Error) -> TMinusError {
        map_error(&self.path, e)
    }

    fn attendees(&self, id: &str) -> rusqlite::Result<Vec<(AgentId, ResponseStatus)>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT agent, status, defer_ms FROM attendees WHERE event_id = ?1 ORDER BY position",
        )?;
        let rows = stmt.query_map([id], |r| {
            let word: String = r.get(1)?;
            let status = row::response(&word, r.get(2)?).map_err(bad_value)?;
            Ok((AgentId(r.get(0)?), status))
        })?;
        rows.collect()
    }

    fn with_attendees(&self, mut event: TMinusEvent) -> rusqlite::Result<TMinusEvent> {
        event.attendees = self.attendees(&event.id.to_string())?;
        Ok(event)
    }

    fn bump_revision(&self, campaign: Option<Uuid>) -> rusqlite::Result<()> {
        if let Some(c) = campaign {
            self.tx
                .prepare_cached("UPDATE campaigns SET revision = revision + 1 WHERE id = ?1")?
                .execute([c.to_string()])?;
        }
        Ok(())
    }

    fn ids(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<Vec<Uuid>> {
        let mut stmt = self.tx.prepare_cached(sql)?;
        let rows = stmt.query_map(params, |r| uuid(&r.get::<_, String>(0)?))?;
        rows.collect()
    }
}

impl Tx for SqliteTx<'_> {
    fn insert_event(&mut self, e: &TMinusEvent) -> Result<()> {
        let run = || -> rusqlite::Result<()> {
            self.tx
                .prepare_cached(&format!(
                    "INSERT INTO events ({EVENT_COLUMNS}, fire_ms, campaign_pos) VALUES \
                     (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21, \
                     CASE WHEN ?2 IS NULL THEN NULL ELSE (SELECT coalesce(max(campaign_pos), 0) + 1 \
                     FROM events WHERE campaign_id = ?2) END)"
                ))?
                .execute(params_from_iter(event_values(e)))?;
            let mut stmt = self.tx.prepare_cached(
                "INSERT INTO attendees (event_id, position, agent, status, defer_ms, responded_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
            )?;
            for (i, (agent, status)) in e.attendees.iter().enumerate() {
                let (word, defer) = status_columns(*status);
                stmt.execute(params![e.id.to_string(), i as i64, agent.0, word, defer])?;
            }
            self.bump_revision(e.campaign)
        };
        run().map_err(|err| self.err(err))
    }

    fn event(&mut self, id: Uuid) -> Result<Option<TMinusEvent>> {
        let run = || -> rusqlite::Result<Option<TMinusEvent>> {
            let event = self
                .tx
                .prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1"))?
                .query_row([id.to_string()], event_from_row)
                .optional()?;
            event.map(|e| self.with_attendees(e)).transpose()
        };
        run().map_err(|e| self.err(e))
    }

    fn update_event(&mut self, e: &TMinusEvent) -> Result<()> {
        // Same parameters as the INSERT: ?19 (created_ms) never changes.
        let run = || -> rusqlite::Result<()> {
            self.tx
                .prepare_cached(
                    "UPDATE events SET campaign_id = ?2, name = ?3, kind = ?4, description = ?5, \
                     at_ms = ?6, offset_ms = ?7, start_ms = ?8, t_minus_ms = ?9, defer_ms = ?10, \
                     max_defer_ms = ?11, quorum = ?12, quorum_spec = ?13, fire_policy = ?14, \
                     organizer = ?15, payload = ?16, state = ?17, finished_ms = ?18, \
                     last_response_ms = ?20, fire_ms = ?21, \
                     campaign_pos = CASE WHEN campaign_id IS ?2 THEN campaign_pos \
                     WHEN ?2 IS NULL THEN NULL ELSE (SELECT coalesce(max(campaign_pos), 0) + 1 \
                     FROM events WHERE campaign_id = ?2) END WHERE id = ?1",
                )?
                .execute(params_from_iter(event_values(e)))?;
            self.bump_revision(e.campaign)
        };
        run().map_err(|err| self.err(err))
    }

    fn set_response(
        &mut self,
        id: Uuid,
        agent: &AgentId,
        status: ResponseStatus,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let (word, defer) = status_columns(status);
        self.tx
            .prepare_cached(
                "UPDATE attendees SET status = ?3, defer_ms = ?4, responded_ms = ?5 \
                 WHERE event_id = ?1 AND agent = ?2",
            )
            .and_then(|mut s| s.execute(params![id.to_string(), agent.0, word, defer, ms(at)]))
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn set_attendees(&mut self, id: Uuid, attendees: &[AgentId]) -> Result<()> {
        let run = || -> rusqlite::Result<()> {
            let id = id.to_string();
            // Park the kept rows at negative positions, drop the others, then
            // insert or move each attendee to its new position.
            self.tx
                .prepare_cached(
                    "UPDATE attendees SET position = -1 - position WHERE event_id = ?1",
                )?
                .execute([&id])?;
            let keep: std::collections::HashSet<&str> =
                attendees.iter().map(|a| a.0.as_str()).collect();
            let existing: Vec<String> = {
                let mut stmt = self
                    .tx
                    .prepare_cached("SELECT agent FROM attendees WHERE event_id = ?1")?;
                let rows = stmt.query_map([&id], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            for agent in existing.iter().filter(|a| !keep.contains(a.as_str())) {
                self.tx
                    .prepare_cached("DELETE FROM attendees WHERE event_id = ?1 AND agent = ?2")?
                    .execute([&id, agent])?;
            }
            for (i, agent) in attendees.iter().enumerate() {
                self.tx
                    .prepare_cached(
                        "INSERT INTO attendees (event_id, position, agent, status) \
                         VALUES (?1, ?2, ?3, 'pending') \
                         ON CONFLICT (event_id, agent) DO UPDATE SET position = excluded.position",
                    )?
                    .execute(params![id, i as i64, agent.0])?;
            }
            Ok(())
        };
        run().map_err(|e| self.err(e))
    }

    fn events_with_prefix(&mut self, prefix: &str, limit: usize) -> Result<Vec<Uuid>> {
        let upper = format!("{prefix}g");
        self.ids(
            "SELECT id FROM events WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT ?3",
            params![prefix, upper, limit as i64],
        )
        .map_err(|e| self.err(e))
    }

    fn event_by_name(&mut self, campaign: Uuid, name: &str) -> Result<Option<Uuid>> {
        self.ids(
            "SELECT id FROM events WHERE campaign_id = ?1 AND name = ?2",
            params![campaign.to_string(), name],
        )
        .map(|ids| ids.into_iter().next())
        .map_err(|e| self.err(e))
    }

    fn due_events(&mut self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Uuid>> {
        self.ids(
            "SELECT id FROM events WHERE state = 'pending' AND fire_ms <= ?1 \
             ORDER BY fire_ms, rowid LIMIT ?2",
            params![ms(now), limit as i64],
        )
        .map_err(|e| self.err(e))
    }

    fn campaign_due_events(&mut self, id: Uuid, now: DateTime<Utc>) -> Result<Vec<Uuid>> {
        self.ids(
            "SELECT id FROM events WHERE state = 'pending' AND fire_ms <= ?2 \
             AND campaign_id = (SELECT campaign_id FROM events WHERE id = ?1) \
             ORDER BY fire_ms, rowid",
            params![id.to_string(), ms(now)],
        )
        .map_err(|e| self.err(e))
    }

    fn next_fire_time(&mut self, campaign: Option<Uuid>) -> Result<Option<DateTime<Utc>>> {
        let run = || -> rusqlite::Result<Option<DateTime<Utc>>> {
            let ms: Option<i64> = match campaign {
                None => self
                    .tx
                    .prepare_cached("SELECT min(fire_ms) FROM events WHERE state = 'pending'")?
                    .query_row([], |r| r.get(0))?,
                Some(c) => self
                    .tx
                    .prepare_cached(
                        "SELECT min(fire_ms) FROM events WHERE state = 'pending' AND campaign_id = ?1",
                    )?
                    .query_row([c.to_string()], |r| r.get(0))?,
            };
            opt_time(ms)
        };
        run().map_err(|e| self.err(e))
    }

    fn list_events(&mut self, filter: EventFilter) -> Result<Vec<TMinusEvent>> {
        let (filter_sql, campaign) = match filter {
            EventFilter::Unfinished => ("WHERE state IN ('blocked', 'pending')", None),
            EventFilter::All => ("", None),
            EventFilter::Campaign(id) => ("WHERE campaign_id = ?1", Some(id.to_string())),
        };
        let run = || -> rusqlite::Result<Vec<TMinusEvent>> {
            let mut stmt = self.tx.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events {filter_sql} \
                 ORDER BY fire_ms IS NULL, fire_ms, created_ms, id"
            ))?;
            let rows = stmt.query_map(rusqlite::params_from_iter(campaign), event_from_row)?;
            rows.map(|e| e.and_then(|e| self.with_attendees(e)))
                .collect()
        };
        run().map_err(|e| self.err(e))
    }

    fn inbox(&mut self, agent: &AgentId) -> Result<Vec<TMinusEvent>> {
        let run = || -> rusqlite::Result<Vec<TMinusEvent>> {
            let mut stmt = self.tx.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE id IN \
                 (SELECT event_id FROM attendees WHERE agent = ?1 AND open = 1) \
                 ORDER BY fire_ms IS NULL, fire_ms, created_ms, id"
            ))?;
            let rows = stmt.query_map([agent.as_str()], event_from_row)?;
            rows.map(|e| e.and_then(|e| self.with_attendees(e)))
                .collect()
        };
        run().map_err(|e| self.err(e))
    }

    fn count_events(&mut self) -> Result<u64> {
        self.tx
            .query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    fn insert_campaign(&mut self, c: &CampaignRow) -> Result<()> {
        self.tx
            .prepare_cached(&format!(
                "INSERT INTO campaigns ({CAMPAIGN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    c.id.to_string(),
                    c.name,
                    c.description,
                    ms(c.created_at),
                    c.managed,
                    c.anchor_at.map(ms),
                    c.revision
                ])
            })
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn update_campaign(&mut self, c: &CampaignRow) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE campaigns SET name = ?2, description = ?3, managed = ?4, anchor_ms = ?5, \
                 revision = revision + 1 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    c.id.to_string(),
                    c.name,
                    c.description,
                    c.managed,
                    c.anchor_at.map(ms)
                ])
            })
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn campaign(&mut self, id: Uuid) -> Result<Option<CampaignRow>> {
        self.tx
            .prepare_cached(&format!(
                "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = ?1"
            ))
            .and_then(|mut s| s.query_row([id.to_string()], campaign_from_row).optional())
            .map_err(|e| self.err(e))
    }

    fn campaign_by_name(&mut self, name: &str) -> Result<Option<CampaignRow>> {
        self.tx
            .prepare_cached(&format!(
                "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE name = ?1"
            ))
            .and_then(|mut s| s.query_row([name], campaign_from_row).optional())
            .map_err(|e| self.err(e))
    }

    fn campaigns_with_prefix(&mut self, prefix: &str, limit: usize) -> Result<Vec<Uuid>> {
        let upper = format!("{prefix}g");
        self.ids(
            "SELECT id FROM campaigns WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT ?3",
            params![prefix, upper, limit as i64],
        )
        .map_err(|e| self.err(e))
    }

    fn list_campaigns(&mut self) -> Result<Vec<CampaignRow>> {
        let run = || -> rusqlite::Result<Vec<CampaignRow>> {
            let mut stmt = self.tx.prepare_cached(&format!(
                "SELECT {CAMPAIGN_COLUMNS} FROM campaigns ORDER BY name"
            ))?;
            let rows = stmt.query_map([], campaign_from_row)?;
            rows.collect()
        };
        run().map_err(|e| self.err(e))
    }

    fn campaign_events(&mut self, campaign: Uuid) -> Result<Vec<(Uuid, String, EventState)>> {
        let run = || -> rusqlite::Result<Vec<(Uuid, String, EventState)>> {
            let mut stmt = self.tx.prepare_cached(
                "SELECT id, name, state FROM events WHERE campaign_id = ?1 ORDER BY campaign_pos",
            )?;
            let rows = stmt.query_map([campaign.to_string()], |r| {
                Ok((
                    uuid(&r.get::<_, String>(0)?)?,
                    r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    parse(&r.get::<_, String>(2)?)?,
                ))
            })?;
            rows.collect()
        };
        run().map_err(|e| self.err(e))
    }

    fn campaign_edges(&mut self, campaign: Uuid) -> Result<Vec<(Uuid, Uuid)>> {
        let run = || -> rusqlite::Result<Vec<(Uuid, Uuid)>> {
            let mut stmt = self.tx.prepare_cached(
                "SELECT from_id, to_id FROM edges WHERE campaign_id = ?1 ORDER BY seq",
            )?;
            let rows = stmt.query_map([campaign.to_string()], |r| {
                Ok((
                    uuid(&r.get::<_, String>(0)?)?,
                    uuid(&r.get::<_, String>(1)?)?,
                ))
            })?;
            rows.collect()
        };
        run().map_err(|e| self.err(e))
    }

    fn insert_edge(&mut self, campaign: Uuid, from: Uuid, to: Uuid) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT OR IGNORE INTO edges (campaign_id, from_id, to_id) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    campaign.to_string(),
                    from.to_string(),
                    to.to_string()
                ])
            })
            .and_then(|_| self.bump_revision(Some(campaign)))
            .map_err(|e| self.err(e))
    }

    fn delete_edge(&mut self, from: Uuid, to: Uuid) -> Result<()> {
        self.tx
            .prepare_cached("DELETE FROM edges WHERE from_id = ?1 AND to_id = ?2")
            .and_then(|mut s| s.execute(params![from.to_string(), to.to_string()]))
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn needs(&mut self, id: Uuid) -> Result<Vec<NeedState>> {
        let run = || -> rusqlite::Result<Vec<NeedState>> {
            let mut stmt = self.tx.prepare_cached(
                "SELECT e.id, e.state, e.finished_ms FROM edges d JOIN events e ON e.id = d.from_id \
                 WHERE d.to_id = ?1 ORDER BY d.seq",
            )?;
            let rows = stmt.query_map([id.to_string()], |r| {
                Ok(NeedState {
                    id: uuid(&r.get::<_, String>(0)?)?,
                    state: parse(&r.get::<_, String>(1)?)?,
                    finished_at: opt_time(r.get(2)?)?,
                })
            })?;
            rows.collect()
        };
        run().map_err(|e| self.err(e))
    }

    fn dependents(&mut self, id: Uuid) -> Result<Vec<Uuid>> {
        self.ids(
            "SELECT to_id FROM edges WHERE from_id = ?1 ORDER BY seq",
            [id.to_string()],
        )
        .map_err(|e| self.err(e))
    }

    fn delete_campaign(&mut self, campaign: Uuid) -> Result<()> {
        let c = campaign.to_string();
        self.tx
            .execute(
                "DELETE FROM audit WHERE event_id IN (SELECT id FROM events WHERE campaign_id = ?1)",
                [&c],
            )
            .and_then(|_| self.tx.execute("DELETE FROM events WHERE campaign_id = ?1", [&c]))
            .and_then(|_| self.tx.execute("DELETE FROM campaigns WHERE id = ?1", [&c]))
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn delete_event(&mut self, id: Uuid) -> Result<()> {
        let campaign = self.event(id)?.and_then(|e| e.campaign);
        self.tx
            .execute("DELETE FROM events WHERE id = ?1", [id.to_string()])
            .and_then(|_| self.bump_revision(campaign))
            .map_err(|e| self.err(e))
    }

    fn append_audit(&mut self, e: &NewAuditEntry) -> Result<i64> {
        let unreported = e.action.is_transition().then_some(1);
        self.tx
            .prepare_cached(
                "INSERT INTO audit (event_id, at_ms, recorded_ms, agent, action, detail, unreported) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    e.event.to_string(),
                    ms(e.at),
                    ms(e.recorded_at),
                    e.agent.as_ref().map(|a| a.0.as_str()),
                    e.action.as_str(),
                    e.detail.to_string(),
                    unreported
                ])
            })
            .map(|_| self.tx.last_insert_rowid())
            .map_err(|e| self.err(e))
    }

    fn audit(&mut self, id: Uuid) -> Result<Vec<AuditEntry>> {
        let run = || -> rusqlite::Result<Vec<AuditEntry>> {
            let mut stmt = self.tx.prepare_cached(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audit WHERE event_id = ?1 ORDER BY seq"
            ))?;
            let rows = stmt.query_map([id.to_string()], audit_from_row)?;
            rows.collect()
        };
        run().map_err(|e| self.err(e))
    }

    fn audit_since(&mut self, seq: i64, limit: usize) -> Result<Vec<AuditEntry>> {
        let run = || -> rusqlite::Result<Vec<AuditEntry>> {
            let mut stmt = self.tx.prepare_cached(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![seq, limit as i64], audit_from_row)?;
            rows.collect()
        };
        run().map_err(|e| self.err(e))
    }

    fn latest_audit_seq(&mut self) -> Result<i64> {
        self.tx
            .query_row("SELECT coalesce(max(seq), 0) FROM audit", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    fn claim_reports(&mut self) -> Result<Vec<AuditEntry>> {
        let run = || -> rusqlite::Result<Vec<AuditEntry>> {
            let entries: Vec<AuditEntry> = {
                let mut stmt = self.tx.prepare_cached(&format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit WHERE unreported = 1 ORDER BY seq"
                ))?;
                let rows = stmt.query_map([], audit_from_row)?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            if !entries.is_empty() {
                self.tx
                    .prepare_cached("UPDATE audit SET unreported = NULL WHERE unreported = 1")?
                    .execute([])?;
            }
            Ok(entries)
        };
        run().map_err(|e| self.err(e))
    }

    fn commit(self: Box<Self>) -> Result<()> {
        let path = self.path.clone();
        self.tx.commit().map_err(|e| map_error(&path, e))
    }
}
