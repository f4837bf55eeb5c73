//! The embedded SQLite store.
//!
//! One file (default `tminus.db`), WAL journal, `synchronous = FULL` (a
//! committed answer survives a power loss), a busy timeout so concurrent
//! processes queue instead of failing, foreign keys on, and every write in one
//! `BEGIN IMMEDIATE` transaction. The schema version lives in
//! `PRAGMA user_version` and the file is marked with a t-minus
//! `application_id`, so foreign SQLite files are refused untouched.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{
    params, params_from_iter, Connection, ErrorCode, OpenFlags, OptionalExtension, Row,
    Transaction, TransactionBehavior,
};
use uuid::Uuid;

use super::notify_row::{self, DeliveryRow, DELIVERY_COLUMNS};
use super::row::{
    self, ms, read_attendee, read_audit, read_audit_link, read_campaign, read_event,
    read_event_attendee, read_finished, read_listed, read_member, read_need, read_need_name,
    status_columns, AuditColumns, CampaignColumns, Columns, EventRow, ANSWERED_ATTENDEES,
    ATTENDEE_COLUMNS, AUDIT_COLUMNS, AUDIT_LINK_COLUMNS, CAMPAIGN_COLUMNS, EVENT_ATTENDEE_COLUMNS,
    EVENT_COLUMNS, FINISHED_EVENTS,
};
use super::written::Written;
use super::{
    chain_links, CampaignRow, EventFilter, ListedEvent, NeedState, NewAuditEntry, Store,
    StoredLink, StoredOutcomes, StoredSigners, Tx, LISTING_CHUNK,
};
use super::{Location, StoreError};
use crate::agent::AgentId;
use crate::audit::AuditEntry;
use crate::error::{Result, TMinusError};
use crate::event::TMinusEvent;
use crate::notify::{Delivery, NotifyRule, Reminder};
use crate::state::{EventState, ResponseStatus};

/// `PRAGMA application_id` of t-minus stores ("TMIN").
pub const APPLICATION_ID: i32 = 0x544D_494E;

/// How long a writer waits for another process's transaction to finish.
pub const BUSY_TIMEOUT: StdDuration = StdDuration::from_secs(30);

/// The migrations, in order; `user_version` is the number applied.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/sqlite/0001_initial.sql"),
    include_str!("migrations/sqlite/0002_campaign_due.sql"),
    include_str!("migrations/sqlite/0003_quorum_groups.sql"),
    include_str!("migrations/sqlite/0004_notify.sql"),
    include_str!("migrations/sqlite/0005_inbox.sql"),
    include_str!("migrations/sqlite/0006_audit_chain.sql"),
    include_str!("migrations/sqlite/0007_signers.sql"),
    include_str!("migrations/sqlite/0008_listing_order.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The schema version that adds the audit chain.
const CHAIN_VERSION: i64 = 6;

/// Chains the entries written before the audit chain existed, in `seq`
/// order, a batch at a time.
fn chain_existing(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let mut head: Option<String> = None;
    let mut after = 0i64;
    let mut select = tx.prepare(&format!(
        "SELECT {AUDIT_COLUMNS} FROM audit WHERE seq > ?1 ORDER BY seq LIMIT 1000"
    ))?;
    let mut update = tx.prepare("UPDATE audit SET prev = ?2, hash = ?3 WHERE seq = ?1")?;
    loop {
        let batch = select
            .query_map([after], |r| read_audit(r))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let Some(last) = batch.last() else {
            return Ok(());
        };
        after = last.seq;
        for entry in &batch {
            let (prev, hash) = chain_links(head.as_deref(), entry, None);
            update.execute(params![entry.seq, prev, hash])?;
            head = Some(hash);
        }
    }
}

/// After a file change notification, how many times (a millisecond apart)
/// [`Store::wait_for_change`] looks for the commit that caused it to become
/// visible before it gives up (a write of this process, a checkpoint).
const COMMIT_GRACE_POLLS: usize = 20;

/// The SQLite store.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// The file change watch [`Store::wait_for_change`] sleeps on, set up
    /// on its first call.
    watch: Watch,
    /// The hooks [`Store::watch_changes`] set up; each ends with the store.
    hooks: Vec<super::watch::ChangeHook>,
    /// The data version this connection read last: what a change
    /// notification is compared against.
    seen_version: Option<i64>,
}

/// The state of a store's file change watch.
enum Watch {
    /// Not needed yet.
    Unset,
    /// Notification works: waits end on the first change.
    Active(super::watch::FileWatch),
    /// No notification here (in-memory store, file system without it):
    /// waits sleep their whole timeout and the caller polls.
    Unavailable,
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
            return Err(StoreError::Open {
                location: file(path),
                reason: "it is a directory".into(),
            }
            .into());
        }
        if path.exists() {
            check_header(path)?;
        } else if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                return Err(StoreError::NoDirectory {
                    path: path.into(),
                    dir: dir.into(),
                }
                .into());
            }
        }
        Self::open_unchecked(path)
    }

    /// Opens another connection to a store this process already has open
    /// (a background deliverer's): like [`SqliteStore::open`] without
    /// reading the file outside SQLite first. Closing a descriptor of the
    /// file that SQLite did not open would drop the POSIX locks of the
    /// process's other connections.
    pub fn open_again(path: &Path) -> Result<Self> {
        Self::open_unchecked(path)
    }

    fn open_unchecked(path: &Path) -> Result<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| map_error(path, e))?;
        let mut store = SqliteStore {
            conn,
            path: path.into(),
            watch: Watch::Unset,
            hooks: Vec::new(),
            seen_version: None,
        };
        // A store already at this version needs no migration, and no write
        // transaction to find that out.
        if store.configure(true)? != Some(SCHEMA_VERSION) {
            store.migrate()?;
        }
        Ok(store)
    }

    /// A private in-memory store, for tests.
    pub fn in_memory() -> Result<Self> {
        let conn = Connection::open_in_memory().map_err(|e| map_error(Path::new(":memory:"), e))?;
        let mut store = SqliteStore {
            conn,
            path: PathBuf::from(":memory:"),
            watch: Watch::Unavailable,
            hooks: Vec::new(),
            seen_version: None,
        };
        store.configure(false)?;
        store.migrate()?;
        Ok(store)
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sets the connection up; for a file, after checking that it is a
    /// t-minus store, returns the schema version it found.
    fn configure(&mut self, file: bool) -> Result<Option<i64>> {
        let path = self.path.clone();
        let err = |e| map_error(&path, e);
        self.conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        if self.conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            return Err(StoreError::ReadOnly {
                location: Location::File(self.path.clone()),
                reason: "the file is not writable".into(),
            }
            .into());
        }
        let mut version = None;
        if file {
            // Before switching to WAL, which rewrites the file header: a
            // foreign or newer file must be refused untouched.
            version = Some(self.check_identity()?);
            let mode = self.switch_to_wal()?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Open {
                    location: Location::File(self.path.clone()),
                    reason: format!("could not switch to WAL mode (journal mode is {mode})"),
                }
                .into());
            }
            self.keep_wal_files();
        }
        // A page cache of up to 32 MiB (SQLite's default is 2,000 pages,
        // 8 MiB): a transaction that inserts 100,000 events writes their
        // rows into indexes keyed by random ids, and with a small cache each
        // insert reads back a page spilled to the WAL file. Pages are
        // cached only as they are read, so a small command stays small.
        // Statement journals (what a multi-row insert would undo if it
        // failed half-way) and other temporary files are kept in memory:
        // they live for one statement and never need to survive a crash.
        self.conn
            .execute_batch(
                "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
                 PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY;",
            )
            .map_err(err)?;
        Ok(version)
    }

    /// Keeps the `-wal` and `-shm` files when the last connection closes
    /// (truncating the checkpointed WAL to nothing), instead of deleting
    /// them: each command would otherwise create both files on opening the
    /// store and delete them on closing it, file system metadata writes that
    /// wait for the journal of a busy disk. Durability is unchanged: the
    /// last connection still checkpoints the WAL into the database file on
    /// closing.
    fn keep_wal_files(&self) {
        let mut persist: std::ffi::c_int = 1;
        // SAFETY: the handle is this open connection's; `main` names its
        // database; SQLITE_FCNTL_PERSIST_WAL reads and writes one int through
        // the pointer, which lives across the call.
        unsafe {
            rusqlite::ffi::sqlite3_file_control(
                self.conn.handle(),
                c"main".as_ptr(),
                rusqlite::ffi::SQLITE_FCNTL_PERSIST_WAL,
                (&raw mut persist).cast(),
            );
        }
        // With a journal size limit set, the last connection truncates the
        // WAL file to nothing on closing; a checkpoint that resets the WAL
        // truncates it to this limit (16 MiB, four times the size at which
        // SQLite checkpoints on its own).
        let _ = self
            .conn
            .execute_batch("PRAGMA journal_size_limit = 16777216;");
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
            if version < CHAIN_VERSION {
                chain_existing(&tx).map_err(err)?;
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
    fn check_identity(&self) -> Result<i64> {
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
            None => Ok(version),
        }
    }

    /// Starts a transaction through a shared borrow: SQLite's connection
    /// handle serialises its own use, and a second transaction begun while
    /// one is open on this connection fails with SQLite's "cannot start a
    /// transaction within a transaction" instead of nesting.
    fn begin(&self, behavior: TransactionBehavior) -> Result<Box<dyn Tx + '_>> {
        let path = self.path.clone();
        let tx =
            Transaction::new_unchecked(&self.conn, behavior).map_err(|e| map_error(&path, e))?;
        Ok(Box::new(SqliteTx {
            tx,
            path,
            bumps: HashMap::new(),
            written: Written::default(),
            pending: RefCell::default(),
        }))
    }
}

impl Store for SqliteStore {
    fn write(&mut self) -> Result<Box<dyn Tx + '_>> {
        self.begin(TransactionBehavior::Immediate)
    }

    fn read(&self) -> Result<Box<dyn Tx + '_>> {
        self.begin(TransactionBehavior::Deferred)
    }

    fn data_version(&mut self) -> Result<i64> {
        let version = self
            .conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
            .map_err(|e| map_error(&self.path, e))?;
        self.seen_version = Some(version);
        Ok(version)
    }

    /// Waits on file change notification of the database's directory
    /// (inotify on Linux): another process's commit writes the WAL file and
    /// ends the wait. This process's own writes end a wait too, which is
    /// harmless: the caller compares [`Store::data_version`], which only
    /// other connections' commits change, and waits again.
    fn wait_for_change(&mut self, timeout: StdDuration) -> Result<bool> {
        if let Watch::Unset = self.watch {
            self.watch = match super::watch::FileWatch::new(&self.path) {
                Some(watch) => Watch::Active(watch),
                None => Watch::Unavailable,
            };
            // A commit between the caller's last look at the data version
            // and the watch's start would go unnoticed: return so that the
            // caller looks again, now under the watch.
            if let Watch::Active(_) = self.watch {
                return Ok(true);
            }
        }
        // Compared against what the caller saw last (it looks just before
        // it waits), so a wait that times out reads nothing.
        let before = match self.seen_version {
            Some(version) => version,
            None => self.data_version()?,
        };
        let notified = match &self.watch {
            Watch::Active(watch) => watch.wait(timeout),
            Watch::Unset | Watch::Unavailable => {
                std::thread::sleep(timeout);
                return Ok(true);
            }
        };
        if notified {
            // A commit writes its WAL frames (which is what wakes the watch)
            // before it makes them visible in the shared-memory index (which
            // sends no notification): look again for a short while.
            for _ in 0..COMMIT_GRACE_POLLS {
                if self.data_version()? != before {
                    break;
                }
                std::thread::sleep(StdDuration::from_millis(1));
            }
        }
        Ok(notified)
    }

    fn notifies_changes(&mut self) -> bool {
        if let Watch::Unset = self.watch {
            self.watch = match super::watch::FileWatch::new(&self.path) {
                Some(watch) => Watch::Active(watch),
                None => Watch::Unavailable,
            };
        }
        matches!(self.watch, Watch::Active(_))
    }

    fn watch_changes(&mut self, wake: Box<dyn Fn() + Send>) -> bool {
        if let Watch::Unavailable = self.watch {
            return false;
        }
        match super::watch::ChangeHook::new(&self.path, wake) {
            Some(hook) => {
                self.hooks.push(hook);
                true
            }
            None => false,
        }
    }
}

/// Why a database with this `user_version`, `application_id` and number of
/// tables cannot be opened as a t-minus store, if it cannot.
fn identity_error(path: &Path, version: i64, app_id: i32, tables: i64) -> Option<TMinusError> {
    if app_id != APPLICATION_ID && (tables > 0 || version != 0 || app_id != 0) {
        return Some(TMinusError::Store(StoreError::NotAStore {
            location: file(path),
            reason: format!(
                "it is an SQLite database of another application ({tables} table(s), application id {app_id:#x})"
            ),
        }));
    }
    if version > SCHEMA_VERSION {
        return Some(TMinusError::Store(StoreError::TooNew {
            location: file(path),
            found: version,
            supported: SCHEMA_VERSION,
        }));
    }
    None
}

/// Refuses files that are not SQLite databases before SQLite touches them.
fn check_header(path: &Path) -> Result<()> {
    use std::io::Read;
    let mut header = [0u8; 16];
    let cannot_open = |e: std::io::Error| StoreError::Open {
        location: file(path),
        reason: e.to_string(),
    };
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut header))
        .map_err(cannot_open)?;
    if n == 0 {
        return Ok(()); // an empty file becomes a new store
    }
    if n < 16 || &header != b"SQLite format 3\0" {
        return Err(StoreError::NotAStore {
            location: file(path),
            reason: "it is not an SQLite database".into(),
        }
        .into());
    }
    Ok(())
}

/// The location of an SQLite file.
fn file(path: &Path) -> Location {
    Location::File(path.to_path_buf())
}

/// Turns an SQLite error into a store error that names the file.
fn map_error(path: &Path, e: rusqlite::Error) -> TMinusError {
    let code = e.sqlite_error_code();
    let reason = e.to_string();
    let location = file(path);
    TMinusError::Store(match code {
        Some(ErrorCode::NotADatabase) => StoreError::NotAStore {
            location,
            reason: "it is not an SQLite database".into(),
        },
        Some(ErrorCode::DatabaseCorrupt) => StoreError::Corrupt { location, reason },
        Some(ErrorCode::ReadOnly) => StoreError::ReadOnly { location, reason },
        Some(ErrorCode::CannotOpen) | Some(ErrorCode::PermissionDenied) => {
            StoreError::Open { location, reason }
        }
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => StoreError::Busy {
            location,
            reason,
            waited: BUSY_TIMEOUT,
        },
        _ => StoreError::Failed { location, reason },
    })
}

struct SqliteTx<'c> {
    tx: Transaction<'c>,
    path: PathBuf,
    /// Revision bumps not yet written, by campaign id (see
    /// [`SqliteTx::bump_revision`]).
    bumps: HashMap<String, i64>,
    /// What this transaction knows of rows it wrote itself (see
    /// [`Written`]).
    written: Written,
    /// Inserts not written yet (see [`SqliteTx::flush`]).
    pending: RefCell<Pending>,
}

/// Rows a write transaction has inserted but not yet written, each table's
/// parameters one row after the other. They are written together, as
/// multi-row `INSERT`s, before the next statement of any other kind and at
/// commit: a statement's set-up (its checks, its triggers' programs, its
/// statement journal) is paid once for many rows.
#[derive(Default)]
struct Pending {
    /// Event rows: [`EVENT_COLUMNS`], `fire_ms`, `campaign_pos`.
    events: Vec<Value>,
    /// Attendee rows: event id, position, agent, status, deferral.
    attendees: Vec<Value>,
    /// Edge rows: campaign, from, to.
    edges: Vec<Value>,
    /// Audit rows, as [`AUDIT_INSERT`] lists them.
    audits: Vec<Value>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.attendees.is_empty()
            && self.edges.is_empty()
            && self.audits.is_empty()
    }

    /// Parameters held, all tables together.
    fn len(&self) -> usize {
        self.events.len() + self.attendees.len() + self.edges.len() + self.audits.len()
    }
}

/// Parameters held in [`Pending`] before they are written.
const PENDING_PARAMS: usize = 20_000;

/// Rows per multi-row `INSERT`.
const INSERT_ROWS: usize = 100;

/// The columns of an audit row as inserted, in [`Pending::audits`] order.
const AUDIT_INSERT: &str = "audit (event_id, at_ms, recorded_ms, agent, action, detail, \
     unreported, prev, hash, message, signature)";

impl Columns for Row<'_> {
    type Error = rusqlite::Error;

    fn int(&self, i: usize) -> rusqlite::Result<i64> {
        self.get(i)
    }

    fn opt_int(&self, i: usize) -> rusqlite::Result<Option<i64>> {
        self.get(i)
    }

    fn text(&self, i: usize) -> rusqlite::Result<String> {
        self.get(i)
    }

    fn opt_text(&self, i: usize) -> rusqlite::Result<Option<String>> {
        self.get(i)
    }

    fn flag(&self, i: usize) -> rusqlite::Result<bool> {
        self.get(i)
    }

    fn invalid(&self, reason: String) -> rusqlite::Error {
        bad_value(reason)
    }
}

/// The driver's error for a stored value that does not decode.
fn bad_value(reason: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, reason.into())
}

/// The name of an event's campaign, as a column after [`EVENT_COLUMNS`].
const CAMPAIGN_NAME: &str = "(SELECT c.name FROM campaigns c WHERE c.id = events.campaign_id)";

/// A `LIMIT` as SQL text. Written into the statement rather than bound:
/// SQLite plans a statement whose `LIMIT` is a parameter again once the
/// value is bound (a second compilation on the statement's first run), and
/// each call site asks for one fixed limit, so the statement cache keeps the
/// compiled form.
fn sql_limit(limit: usize) -> i64 {
    limit.min(i64::MAX as usize) as i64
}

/// `?, ?, …`: `n` placeholders.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// An event's row values in [`EVENT_COLUMNS`] order, then `fire_ms` (?22).
fn event_values(e: &TMinusEvent) -> [Value; 22] {
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
        text(r.groups),
        int(r.fire_ms),
    ]
}

fn delivery_from_row(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    DeliveryRow {
        key: row.get(0)?,
        event_id: row.get(1)?,
        cause: row.get(2)?,
        rule: row.get(3)?,
        payload: row.get(4)?,
        state: row.get(5)?,
        attempts: row.get(6)?,
        next_ms: row.get(7)?,
        created_ms: row.get(8)?,
        finished_ms: row.get(9)?,
        last_error: row.get(10)?,
    }
    .into_delivery()
    .map_err(bad_value)
}

impl SqliteTx<'_> {
    /// Runs `f` on the transaction, turning an SQLite error into a store
    /// error that names the file.
    fn run<T>(&self, f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>) -> Result<T> {
        self.flush()?;
        f(&self.tx).map_err(|e| map_error(&self.path, e))
    }

    /// Writes the pending inserts: events first, so that the attendees,
    /// edges and audit entries after them find them.
    fn flush(&self) -> Result<()> {
        if self.pending.borrow().is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        let tables = [
            (
                format!("events ({EVENT_COLUMNS}, fire_ms, campaign_pos)"),
                23,
                &pending.events,
            ),
            (
                "attendees (event_id, position, agent, status, defer_ms)".to_string(),
                5,
                &pending.attendees,
            ),
            (
                "edges (campaign_id, from_id, to_id)".to_string(),
                3,
                &pending.edges,
            ),
            (AUDIT_INSERT.to_string(), 11, &pending.audits),
        ];
        for (table, width, values) in tables {
            let or_ignore = if table.starts_with("edges") {
                " OR IGNORE"
            } else {
                ""
            };
            for chunk in values.chunks(width * INSERT_ROWS) {
                let rows = chunk.len() / width;
                let row = format!("({})", placeholders(width));
                let sql = format!(
                    "INSERT{or_ignore} INTO {table} VALUES {}",
                    vec![row.as_str(); rows].join(", ")
                );
                let done = if rows == INSERT_ROWS {
                    self.tx
                        .prepare_cached(&sql)
                        .and_then(|mut s| s.execute(params_from_iter(chunk)))
                } else {
                    self.tx
                        .prepare(&sql)
                        .and_then(|mut s| s.execute(params_from_iter(chunk)))
                };
                done.map_err(|e| map_error(&self.path, e))?;
            }
        }
        Ok(())
    }

    /// Writes the pending inserts once they are many.
    fn flush_if_full(&self) -> Result<()> {
        if self.pending.borrow().len() >= PENDING_PARAMS {
            self.flush()?;
        }
        Ok(())
    }

    /// Every row `sql` selects, read by `read`.
    fn rows<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        read: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        self.run(|tx| {
            let mut stmt = tx.prepare_cached(sql)?;
            let rows = stmt.query_map(params, read)?;
            rows.collect()
        })
    }

    /// The row `sql` selects, if any, read by `read`.
    fn row<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        read: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>> {
        self.run(|tx| tx.prepare_cached(sql)?.query_row(params, read).optional())
    }

    /// Runs one statement.
    fn execute(&self, sql: &str, params: impl rusqlite::Params) -> Result<usize> {
        self.run(|tx| tx.prepare_cached(sql)?.execute(params))
    }

    /// The ids `sql` selects.
    fn ids(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Uuid>> {
        self.rows(sql, params, |r| r.id(0))
    }

    fn attendees(&self, id: &str) -> Result<Vec<(AgentId, ResponseStatus)>> {
        self.rows(
            &format!(
                "SELECT {ATTENDEE_COLUMNS} FROM attendees WHERE event_id = ?1 ORDER BY position"
            ),
            [id],
            |r| read_attendee(r, 0),
        )
    }

    fn with_attendees(&self, mut event: TMinusEvent) -> Result<TMinusEvent> {
        event.attendees = self.attendees(&event.id.to_string())?;
        Ok(event)
    }

    /// Streams the listing `sql` selects ([`EVENT_COLUMNS`] and
    /// [`CAMPAIGN_NAME`]) to `visit` in chunks of [`LISTING_CHUNK`], each
    /// chunk's attendees and needs read in one query each.
    fn scan(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        visit: &mut dyn FnMut(ListedEvent) -> Result<()>,
    ) -> Result<()> {
        self.flush()?;
        let fail = |e| map_error(&self.path, e);
        let mut stmt = self.tx.prepare_cached(sql).map_err(fail)?;
        let mut rows = stmt.query(params).map_err(fail)?;
        let mut chunk = Vec::with_capacity(LISTING_CHUNK);
        while let Some(r) = rows.next().map_err(fail)? {
            chunk.push(read_listed(r).map_err(fail)?);
            if chunk.len() == LISTING_CHUNK {
                self.hand_on(std::mem::take(&mut chunk), visit)?;
            }
        }
        self.hand_on(chunk, visit)
    }

    /// Loads the attendees and needs of a chunk of a listing and hands its
    /// events to `visit` in order.
    fn hand_on(
        &self,
        events: Vec<(TMinusEvent, Option<String>)>,
        visit: &mut dyn FnMut(ListedEvent) -> Result<()>,
    ) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let (ids, blocked) = row::chunk_ids(&events);
        let attendees = self.rows(
            &format!(
                "SELECT {EVENT_ATTENDEE_COLUMNS} FROM attendees WHERE event_id IN ({}) \
                 ORDER BY event_id, position",
                placeholders(ids.len())
            ),
            params_from_iter(&ids),
            |r| read_event_attendee(r),
        )?;
        let needs = if blocked.is_empty() {
            Vec::new()
        } else {
            self.rows(
                &format!(
                    "SELECT d.to_id, e.id, e.name FROM edges d JOIN events e ON e.id = d.from_id \
                     WHERE d.to_id IN ({}) ORDER BY d.seq",
                    placeholders(blocked.len())
                ),
                params_from_iter(&blocked),
                |r| read_need_name(r),
            )?
        };
        for listed in row::listed_chunk(events, attendees, needs) {
            visit(listed)?;
        }
        Ok(())
    }

    /// Counts a change to `campaign`. The bumps are written at once before
    /// the campaign is next read and at commit: one statement for the
    /// thousands of changes an `apply` makes to a campaign.
    fn bump_revision(&mut self, campaign: Option<Uuid>) -> Result<()> {
        if let Some(c) = campaign {
            *self.bumps.entry(c.to_string()).or_default() += 1;
        }
        Ok(())
    }

    /// Writes the pending revision bumps.
    fn flush_bumps(&mut self) -> Result<()> {
        for (id, n) in std::mem::take(&mut self.bumps) {
            self.execute(
                "UPDATE campaigns SET revision = revision + ?2 WHERE id = ?1",
                params![id, n],
            )?;
        }
        Ok(())
    }

    /// The next `campaign_pos` in `campaign`.
    fn next_pos(&mut self, campaign: &str) -> Result<i64> {
        if let Some(pos) = self.written.next_pos.get_mut(campaign) {
            *pos += 1;
            return Ok(*pos - 1);
        }
        let pos = self
            .row(
                "SELECT coalesce(max(campaign_pos), 0) + 1 FROM events WHERE campaign_id = ?1",
                [campaign],
                |r| r.int(0),
            )?
            .unwrap_or(1);
        self.written.next_pos.insert(campaign.to_string(), pos + 1);
        Ok(pos)
    }

    fn audits(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<AuditEntry>> {
        self.rows(sql, params, |r| read_audit(r))
    }
}

impl Tx for SqliteTx<'_> {
    fn insert_event(&mut self, e: &TMinusEvent) -> Result<()> {
        let pos = match e.campaign {
            Some(c) => Value::Integer(self.next_pos(&c.to_string())?),
            None => Value::Null,
        };
        {
            let mut pending = self.pending.borrow_mut();
            pending
                .events
                .extend(event_values(e).into_iter().chain([pos]));
            let id = e.id.to_string();
            for (i, (agent, status)) in e.attendees.iter().enumerate() {
                let (word, defer) = status_columns(*status);
                pending.attendees.extend([
                    Value::Text(id.clone()),
                    Value::Integer(i as i64),
                    Value::Text(agent.0.clone()),
                    Value::Text(word.into()),
                    defer.map_or(Value::Null, Value::Integer),
                ]);
            }
        }
        self.flush_if_full()?;
        self.written.inserted(e);
        self.bump_revision(e.campaign)
    }

    fn event(&mut self, id: Uuid) -> Result<Option<TMinusEvent>> {
        let event = self.row(
            &format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1"),
            [id.to_string()],
            |r| read_event(r),
        )?;
        event.map(|e| self.with_attendees(e)).transpose()
    }

    fn update_event(&mut self, e: &TMinusEvent) -> Result<()> {
        // Same parameters as the INSERT: ?19 (created_ms) never changes.
        self.execute(
            "UPDATE events SET campaign_id = ?2, name = ?3, kind = ?4, description = ?5, \
             at_ms = ?6, offset_ms = ?7, start_ms = ?8, t_minus_ms = ?9, defer_ms = ?10, \
             max_defer_ms = ?11, quorum = ?12, quorum_spec = ?13, fire_policy = ?14, \
             organizer = ?15, payload = ?16, state = ?17, finished_ms = ?18, \
             last_response_ms = ?20, groups = ?21, fire_ms = ?22, \
             campaign_pos = CASE WHEN campaign_id IS ?2 THEN campaign_pos \
             WHEN ?2 IS NULL THEN NULL ELSE (SELECT coalesce(max(campaign_pos), 0) + 1 \
             FROM events WHERE campaign_id = ?2) END WHERE id = ?1",
            params_from_iter(event_values(e)),
        )?;
        // The row changed, its attendees did not.
        self.written.updated(e);
        self.bump_revision(e.campaign)
    }

    fn set_response(
        &mut self,
        id: Uuid,
        agent: &AgentId,
        status: ResponseStatus,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let (word, defer) = status_columns(status);
        self.written.events.remove(&id);
        self.execute(
            "UPDATE attendees SET status = ?3, defer_ms = ?4, responded_ms = ?5 \
             WHERE event_id = ?1 AND agent = ?2",
            params![id.to_string(), agent.0, word, defer, ms(at)],
        )
        .map(drop)
    }

    fn set_attendees(&mut self, id: Uuid, attendees: &[AgentId]) -> Result<()> {
        self.written.events.remove(&id);
        let id = id.to_string();
        // Park the kept rows at negative positions, drop the others, then
        // insert or move each attendee to its new position.
        self.execute(
            "UPDATE attendees SET position = -1 - position WHERE event_id = ?1",
            [&id],
        )?;
        let keep: std::collections::HashSet<&str> =
            attendees.iter().map(|a| a.0.as_str()).collect();
        let existing = self.rows(
            "SELECT agent FROM attendees WHERE event_id = ?1",
            [&id],
            |r| r.text(0),
        )?;
        for agent in existing.iter().filter(|a| !keep.contains(a.as_str())) {
            self.execute(
                "DELETE FROM attendees WHERE event_id = ?1 AND agent = ?2",
                [&id, agent],
            )?;
        }
        for (i, agent) in attendees.iter().enumerate() {
            self.execute(
                "INSERT INTO attendees (event_id, position, agent, status) \
                 VALUES (?1, ?2, ?3, 'pending') \
                 ON CONFLICT (event_id, agent) DO UPDATE SET position = excluded.position",
                params![id, i as i64, agent.0],
            )?;
        }
        Ok(())
    }

    fn events_with_prefix(&mut self, prefix: &str, limit: usize) -> Result<Vec<Uuid>> {
        let upper = format!("{prefix}g");
        self.ids(
            &format!(
                "SELECT id FROM events WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT {}",
                sql_limit(limit)
            ),
            params![prefix, upper],
        )
    }

    fn event_by_name(&mut self, campaign: Uuid, name: &str) -> Result<Option<Uuid>> {
        self.ids(
            "SELECT id FROM events WHERE campaign_id = ?1 AND name = ?2",
            params![campaign.to_string(), name],
        )
        .map(|ids| ids.into_iter().next())
    }

    fn standalone_events_named(&mut self, name: &str, limit: usize) -> Result<Vec<Uuid>> {
        self.ids(
            &format!(
                "SELECT id FROM events WHERE campaign_id IS NULL AND name = ?1 \
                 ORDER BY state IN ('fired', 'missed', 'cancelled'), created_ms DESC, id LIMIT {}",
                sql_limit(limit)
            ),
            params![name],
        )
    }

    fn due_events(&mut self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Uuid>> {
        self.ids(
            &format!(
                "SELECT id FROM events WHERE state = 'pending' AND fire_ms <= ?1 \
                 ORDER BY fire_ms, rowid LIMIT {}",
                sql_limit(limit)
            ),
            params![ms(now)],
        )
    }

    fn campaign_due_events(&mut self, id: Uuid, now: DateTime<Utc>) -> Result<Vec<Uuid>> {
        self.ids(
            "SELECT id FROM events WHERE state = 'pending' AND fire_ms <= ?2 \
             AND campaign_id = (SELECT campaign_id FROM events WHERE id = ?1) \
             ORDER BY fire_ms, rowid",
            params![id.to_string(), ms(now)],
        )
    }

    fn next_fire_time(&mut self, campaign: Option<Uuid>) -> Result<Option<DateTime<Utc>>> {
        let first = |r: &Row<'_>| r.decode(row::opt_time(r.opt_int(0)?));
        let time = match campaign {
            None => self.row(
                "SELECT min(fire_ms) FROM events WHERE state = 'pending'",
                [],
                first,
            )?,
            Some(c) => self.row(
                "SELECT min(fire_ms) FROM events WHERE state = 'pending' AND campaign_id = ?1",
                [c.to_string()],
                first,
            )?,
        };
        Ok(time.flatten())
    }

    fn scan_events(
        &mut self,
        filter: EventFilter,
        visit: &mut dyn FnMut(ListedEvent) -> Result<()>,
    ) -> Result<()> {
        let (filter_sql, campaign) = match filter {
            EventFilter::Unfinished => ("WHERE state IN ('blocked', 'pending')", None),
            EventFilter::All => ("", None),
            EventFilter::Campaign(id) => ("WHERE campaign_id = ?1", Some(id.to_string())),
        };
        self.scan(
            &format!(
                "SELECT {EVENT_COLUMNS}, {CAMPAIGN_NAME} FROM events {filter_sql} \
                 ORDER BY fire_ms IS NULL, fire_ms, created_ms, id"
            ),
            rusqlite::params_from_iter(campaign),
            visit,
        )
    }

    fn inbox(&mut self, agent: &AgentId) -> Result<Vec<TMinusEvent>> {
        let mut events = Vec::new();
        self.scan(
            &format!(
                "SELECT {EVENT_COLUMNS}, {CAMPAIGN_NAME} FROM events WHERE id IN \
                 (SELECT event_id FROM attendees WHERE agent = ?1 AND open = 1) \
                 ORDER BY fire_ms IS NULL, fire_ms, created_ms, id"
            ),
            [agent.as_str()],
            &mut |listed| {
                events.push(listed.event);
                Ok(())
            },
        )?;
        Ok(events)
    }

    fn count_events(&mut self) -> Result<u64> {
        self.run(|tx| tx.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0)))
            .map(|n| n as u64)
    }

    fn insert_campaign(&mut self, c: &CampaignRow) -> Result<()> {
        let c = CampaignColumns::from_campaign(c);
        self.execute(
            &format!(
                "INSERT INTO campaigns ({CAMPAIGN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            ),
            params![
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
            "UPDATE campaigns SET name = ?2, description = ?3, managed = ?4, anchor_ms = ?5, \
             revision = revision + 1 WHERE id = ?1",
            params![c.id, c.name, c.description, c.managed, c.anchor_ms],
        )
        .map(drop)
    }

    fn campaign(&mut self, id: Uuid) -> Result<Option<CampaignRow>> {
        self.flush_bumps()?;
        self.row(
            &format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = ?1"),
            [id.to_string()],
            |r| read_campaign(r),
        )
    }

    fn campaign_by_name(&mut self, name: &str) -> Result<Option<CampaignRow>> {
        self.flush_bumps()?;
        self.row(
            &format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE name = ?1"),
            [name],
            |r| read_campaign(r),
        )
    }

    fn campaigns_with_prefix(&mut self, prefix: &str, limit: usize) -> Result<Vec<Uuid>> {
        let upper = format!("{prefix}g");
        self.ids(
            &format!(
                "SELECT id FROM campaigns WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT {}",
                sql_limit(limit)
            ),
            params![prefix, upper],
        )
    }

    fn list_campaigns(&mut self) -> Result<Vec<CampaignRow>> {
        self.flush_bumps()?;
        self.rows(
            &format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns ORDER BY name"),
            [],
            |r| read_campaign(r),
        )
    }

    fn campaign_events(&mut self, campaign: Uuid) -> Result<Vec<(Uuid, String, EventState)>> {
        self.rows(
            "SELECT id, name, state FROM events WHERE campaign_id = ?1 ORDER BY campaign_pos",
            [campaign.to_string()],
            |r| read_member(r),
        )
    }

    fn campaign_edges(&mut self, campaign: Uuid) -> Result<Vec<(Uuid, Uuid)>> {
        self.rows(
            "SELECT from_id, to_id FROM edges WHERE campaign_id = ?1 ORDER BY seq",
            [campaign.to_string()],
            |r| Ok((r.id(0)?, r.id(1)?)),
        )
    }

    fn insert_edge(&mut self, campaign: Uuid, from: Uuid, to: Uuid) -> Result<()> {
        self.written.edge_added(from, to);
        self.pending.borrow_mut().edges.extend([
            Value::Text(campaign.to_string()),
            Value::Text(from.to_string()),
            Value::Text(to.to_string()),
        ]);
        self.flush_if_full()?;
        self.bump_revision(Some(campaign))
    }

    fn delete_edge(&mut self, from: Uuid, to: Uuid) -> Result<()> {
        self.written.edge_removed(from, to);
        self.execute(
            "DELETE FROM edges WHERE from_id = ?1 AND to_id = ?2",
            params![from.to_string(), to.to_string()],
        )
        .map(drop)
    }

    fn needs(&mut self, id: Uuid) -> Result<Vec<NeedState>> {
        if let Some(known) = self.written.needs_of(id) {
            return Ok(known);
        }
        self.rows(
            "SELECT e.id, e.state, e.finished_ms FROM edges d JOIN events e ON e.id = d.from_id \
             WHERE d.to_id = ?1 ORDER BY d.seq",
            [id.to_string()],
            |r| read_need(r),
        )
    }

    fn known_state(&mut self, id: Uuid) -> Option<EventState> {
        self.written.state(id)
    }

    fn dependents(&mut self, id: Uuid) -> Result<Vec<Uuid>> {
        self.ids(
            "SELECT to_id FROM edges WHERE from_id = ?1 ORDER BY seq",
            [id.to_string()],
        )
    }

    fn delete_campaign(&mut self, campaign: Uuid) -> Result<()> {
        self.flush_bumps()?;
        self.written.clear();
        // The campaign's audit entries stay: the log is append-only, and the
        // chain through them must keep verifying.
        let c = campaign.to_string();
        self.execute("DELETE FROM scope_signers WHERE scope_id = ?1", [&c])?;
        self.execute("DELETE FROM events WHERE campaign_id = ?1", [&c])?;
        self.execute("DELETE FROM campaigns WHERE id = ?1", [&c])
            .map(drop)
    }

    fn delete_event(&mut self, id: Uuid) -> Result<()> {
        let campaign = self.event(id)?.and_then(|e| e.campaign);
        self.written.clear();
        self.execute("DELETE FROM events WHERE id = ?1", [id.to_string()])?;
        self.bump_revision(campaign)
    }

    fn append_audit(&mut self, e: &NewAuditEntry) -> Result<()> {
        let a = AuditColumns::from_entry(e);
        // Writers hold the store's write lock, so the last entry is the head
        // and no other writer can chain from it at the same time.
        let head = match self.written.audit_head.take() {
            Some(head) => head,
            None => self
                .row(
                    "SELECT hash FROM audit ORDER BY seq DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )?
                .flatten(),
        };
        let (prev, hash) = chain_links(head.as_deref(), &e.stored(0), e.signed.as_ref());
        let text = |v: Option<String>| v.map_or(Value::Null, Value::Text);
        self.pending.borrow_mut().audits.extend([
            Value::Text(a.event_id),
            Value::Integer(a.at_ms),
            Value::Integer(a.recorded_ms),
            text(a.agent),
            Value::Text(a.action.into()),
            Value::Text(a.detail),
            if a.unreported {
                Value::Integer(1)
            } else {
                Value::Null
            },
            Value::Text(prev),
            Value::Text(hash.clone()),
            text(e.signed.as_ref().map(|s| s.message.clone())),
            text(e.signed.as_ref().map(|s| s.signature.clone())),
        ]);
        self.flush_if_full()?;
        self.written.audit_head = Some(Some(hash));
        Ok(())
    }

    fn scope_signers(&mut self, scope: Uuid) -> Result<Option<StoredSigners>> {
        self.row(
            "SELECT s.digest, s.text FROM scope_signers c \
             JOIN signer_sets s ON s.digest = c.digest WHERE c.scope_id = ?1",
            [scope.to_string()],
            |r| {
                Ok(StoredSigners {
                    digest: r.get(0)?,
                    text: r.get(1)?,
                })
            },
        )
    }

    fn set_scope_signers(&mut self, scope: Uuid, signers: Option<&StoredSigners>) -> Result<()> {
        match signers {
            None => self.execute(
                "DELETE FROM scope_signers WHERE scope_id = ?1",
                [scope.to_string()],
            )?,
            Some(set) => {
                self.execute(
                    "INSERT INTO signer_sets (digest, text) VALUES (?1, ?2) \
                     ON CONFLICT (digest) DO NOTHING",
                    params![set.digest, set.text],
                )?;
                self.execute(
                    "INSERT INTO scope_signers (scope_id, digest) VALUES (?1, ?2) \
                     ON CONFLICT (scope_id) DO UPDATE SET digest = excluded.digest",
                    params![scope.to_string(), set.digest],
                )?
            }
        };
        Ok(())
    }

    fn signers_by_digest(&mut self, digest: &str) -> Result<Option<String>> {
        self.row(
            "SELECT text FROM signer_sets WHERE digest = ?1",
            [digest],
            |r| r.get(0),
        )
    }

    fn use_nonce(&mut self, nonce: Uuid, event: Uuid, at: DateTime<Utc>) -> Result<bool> {
        let inserted = self.execute(
            "INSERT INTO nonces (nonce, event_id, at_ms) VALUES (?1, ?2, ?3) \
             ON CONFLICT (nonce) DO NOTHING",
            params![nonce.to_string(), event.to_string(), at.timestamp_millis()],
        )?;
        Ok(inserted == 1)
    }

    fn event_audit_links(&mut self, id: Uuid) -> Result<Vec<StoredLink>> {
        self.rows(
            &format!("SELECT {AUDIT_LINK_COLUMNS} FROM audit WHERE event_id = ?1 ORDER BY seq"),
            [id.to_string()],
            |r| read_audit_link(r),
        )
    }

    fn stored_outcomes(&mut self) -> Result<StoredOutcomes> {
        let finished = self.rows(
            &format!("SELECT id, state FROM events WHERE {FINISHED_EVENTS}"),
            [],
            |r| read_finished(r),
        )?;
        let answers = self.rows(
            &format!("SELECT {EVENT_ATTENDEE_COLUMNS} FROM attendees WHERE {ANSWERED_ATTENDEES}"),
            [],
            |r| read_event_attendee(r),
        )?;
        Ok(StoredOutcomes::new(finished, answers))
    }

    fn audit_links(&mut self, after: i64, limit: usize) -> Result<Vec<StoredLink>> {
        self.rows(
            &format!(
                "SELECT {AUDIT_LINK_COLUMNS} FROM audit WHERE seq > ?1 ORDER BY seq LIMIT {}",
                sql_limit(limit)
            ),
            [after],
            |r| read_audit_link(r),
        )
    }

    fn audit(&mut self, id: Uuid) -> Result<Vec<AuditEntry>> {
        self.audits(
            &format!("SELECT {AUDIT_COLUMNS} FROM audit WHERE event_id = ?1 ORDER BY seq"),
            [id.to_string()],
        )
    }

    fn audit_since(&mut self, seq: i64, limit: usize) -> Result<Vec<AuditEntry>> {
        self.audits(
            &format!(
                "SELECT {AUDIT_COLUMNS} FROM audit WHERE seq > ?1 ORDER BY seq LIMIT {}",
                sql_limit(limit)
            ),
            [seq],
        )
    }

    fn latest_audit_seq(&mut self) -> Result<i64> {
        self.run(|tx| tx.query_row("SELECT coalesce(max(seq), 0) FROM audit", [], |r| r.get(0)))
    }

    fn claim_reports(&mut self) -> Result<Vec<AuditEntry>> {
        let entries = self.audits(
            &format!("SELECT {AUDIT_COLUMNS} FROM audit WHERE unreported = 1 ORDER BY seq"),
            [],
        )?;
        if !entries.is_empty() {
            self.execute(
                "UPDATE audit SET unreported = NULL WHERE unreported = 1",
                [],
            )?;
        }
        Ok(entries)
    }

    fn notify_rules(&mut self, event: Uuid) -> Result<Vec<NotifyRule>> {
        if self.written.no_rules.contains(&event) {
            return Ok(Vec::new());
        }
        self.run(|tx| -> rusqlite::Result<Vec<NotifyRule>> {
            let text: Option<String> = tx
                .prepare_cached("SELECT rules FROM notify_rules WHERE event_id = ?1")?
                .query_row([event.to_string()], |r| r.get(0))
                .optional()?;
            match text {
                Some(t) => notify_row::rules_from_text(&t).map_err(bad_value),
                None => Ok(Vec::new()),
            }
        })
    }

    fn set_notify_rules(&mut self, event: Uuid, rules: &[NotifyRule]) -> Result<()> {
        self.written.no_rules.remove(&event);
        self.run(|tx| -> rusqlite::Result<()> {
            if rules.is_empty() {
                tx.prepare_cached("DELETE FROM notify_rules WHERE event_id = ?1")?
                    .execute([event.to_string()])?;
            } else {
                tx.prepare_cached(
                    "INSERT INTO notify_rules (event_id, rules) VALUES (?1, ?2) \
                         ON CONFLICT (event_id) DO UPDATE SET rules = excluded.rules",
                )?
                .execute(params![event.to_string(), notify_row::rules_text(rules)])?;
            }
            Ok(())
        })
    }

    fn reminders(&mut self, event: Uuid) -> Result<Vec<Reminder>> {
        self.run(|tx| -> rusqlite::Result<Vec<Reminder>> {
            let mut stmt = tx.prepare_cached(
                "SELECT before_ms, remind_ms, sent FROM reminders WHERE event_id = ?1 \
                 ORDER BY before_ms",
            )?;
            let rows = stmt.query_map([event.to_string()], |r| {
                notify_row::reminder(r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0)
                    .map_err(bad_value)
            })?;
            rows.collect()
        })
    }

    fn set_reminders(&mut self, event: Uuid, reminders: &[Reminder]) -> Result<()> {
        self.run(|tx| -> rusqlite::Result<()> {
            let id = event.to_string();
            tx
                .prepare_cached("DELETE FROM reminders WHERE event_id = ?1")?
                .execute([&id])?;
            let mut stmt = tx.prepare_cached(
                "INSERT INTO reminders (event_id, before_ms, remind_ms, sent) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for r in reminders {
                stmt.execute(params![
                    id,
                    notify_row::before_column(r),
                    ms(r.at),
                    i64::from(r.sent)
                ])?;
            }
            Ok(())
        })
    }

    fn due_reminders(&mut self, now: DateTime<Utc>, limit: usize) -> Result<Vec<(Uuid, Reminder)>> {
        self.run(|tx| -> rusqlite::Result<Vec<(Uuid, Reminder)>> {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT event_id, before_ms, remind_ms FROM reminders \
                 WHERE sent = 0 AND remind_ms <= ?1 ORDER BY remind_ms LIMIT {}",
                sql_limit(limit)
            ))?;
            let rows = stmt.query_map([ms(now)], |r| {
                let id = row::uuid(&r.get::<_, String>(0)?).map_err(bad_value)?;
                let reminder =
                    notify_row::reminder(r.get(1)?, r.get(2)?, false).map_err(bad_value)?;
                Ok((id, reminder))
            })?;
            rows.collect()
        })
    }

    fn mark_reminder_sent(&mut self, event: Uuid, before_ms: u64) -> Result<()> {
        self.flush()?;
        self.tx
            .prepare_cached("UPDATE reminders SET sent = 1 WHERE event_id = ?1 AND before_ms = ?2")
            .and_then(|mut s| {
                s.execute(params![
                    event.to_string(),
                    i64::try_from(before_ms).unwrap_or(i64::MAX)
                ])
            })
            .map(drop)
            .map_err(|e| map_error(&self.path, e))
    }

    fn insert_delivery(&mut self, d: &Delivery) -> Result<()> {
        self.flush()?;
        let r = DeliveryRow::from_delivery(d);
        self.tx
            .prepare_cached(&format!(
                "INSERT INTO deliveries ({DELIVERY_COLUMNS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ))
            .and_then(|mut s| {
                s.execute(params![
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
                ])
            })
            .map(drop)
            .map_err(|e| map_error(&self.path, e))
    }

    fn update_delivery(&mut self, d: &Delivery) -> Result<()> {
        self.flush()?;
        let r = DeliveryRow::from_delivery(d);
        self.tx
            .prepare_cached(
                "UPDATE deliveries SET state = ?2, attempts = ?3, next_ms = ?4, finished_ms = ?5, \
                 last_error = ?6 WHERE key = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    r.key,
                    r.state,
                    r.attempts,
                    r.next_ms,
                    r.finished_ms,
                    r.last_error
                ])
            })
            .map(drop)
            .map_err(|e| map_error(&self.path, e))
    }

    fn delivery(&mut self, key: Uuid) -> Result<Option<Delivery>> {
        self.flush()?;
        self.tx
            .prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE key = ?1"
            ))
            .and_then(|mut s| s.query_row([key.to_string()], delivery_from_row).optional())
            .map_err(|e| map_error(&self.path, e))
    }

    fn due_deliveries(&mut self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Delivery>> {
        self.run(|tx| -> rusqlite::Result<Vec<Delivery>> {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE state = 'pending' \
                 AND next_ms <= ?1 ORDER BY next_ms, seq LIMIT {}",
                sql_limit(limit)
            ))?;
            let rows = stmt.query_map([ms(now)], delivery_from_row)?;
            rows.collect()
        })
    }

    fn event_deliveries(&mut self, event: Uuid) -> Result<Vec<Delivery>> {
        self.run(|tx| -> rusqlite::Result<Vec<Delivery>> {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE event_id = ?1 ORDER BY seq"
            ))?;
            let rows = stmt.query_map([event.to_string()], delivery_from_row)?;
            rows.collect()
        })
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        self.flush()?;
        self.flush_bumps()?;
        let path = self.path.clone();
        self.tx.commit().map_err(|e| map_error(&path, e))
    }
}
