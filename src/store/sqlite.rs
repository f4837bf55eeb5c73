//! The embedded SQLite store.
//!
//! One file (default `tminus.db`), WAL journal, `synchronous = FULL` (a
//! committed answer survives a power loss), a busy timeout so concurrent
//! processes queue instead of failing, foreign keys on, and every write in one
//! `BEGIN IMMEDIATE` transaction. The schema version lives in
//! `PRAGMA user_version` and the file is marked with a t-minus
//! `application_id`, so foreign SQLite files are refused untouched.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration as StdDuration;

use rusqlite::types::{ToSqlOutput, Value as SqlValue, ValueRef};
use rusqlite::{
    params_from_iter, Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior,
};

use super::row::Columns;
use super::schema::{self, Migration, MIGRATIONS};
use super::sql::{Backend, Pending, SqlTx, Table, Value};
use super::{Location, Store, StoreError, Tx};
use crate::error::{Result, TMinusError};

/// `PRAGMA application_id` of t-minus stores ("TMIN").
pub const APPLICATION_ID: i32 = 0x544D_494E;

/// How long a writer waits for another process's transaction to finish.
pub const BUSY_TIMEOUT: StdDuration = StdDuration::from_secs(30);

pub use super::schema::SCHEMA_VERSION;

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
    /// Statements in SQLite's dialect, by their text as written (see
    /// [`translate`]): translated once per connection, not per transaction.
    dialect: Dialect,
}

/// Statement texts translated to SQLite's dialect, kept for a connection.
type Dialect = std::cell::RefCell<HashMap<String, std::sync::Arc<str>>>;

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
        } else if let Some(dir) = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty() && !is_uri(path))
        {
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
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let mut store = SqliteStore {
            conn,
            path: path.into(),
            watch: Watch::Unset,
            hooks: Vec::new(),
            seen_version: None,
            dialect: Dialect::default(),
        };
        // A store already at this version needs no migration, and no write
        // transaction to find that out.
        if store.configure(true)? != Some(MIGRATIONS.len()) {
            store.migrate()?;
        }
        Ok(store)
    }

    /// A private in-memory store, for tests.
    pub fn in_memory() -> Result<Self> {
        let conn = Connection::open_in_memory().map_err(|e| map_error(Path::new(":memory:"), e))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let mut store = SqliteStore {
            conn,
            path: PathBuf::from(":memory:"),
            watch: Watch::Unavailable,
            hooks: Vec::new(),
            seen_version: None,
            dialect: Dialect::default(),
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
    /// t-minus store, returns how many migrations it has applied.
    fn configure(&mut self, file: bool) -> Result<Option<usize>> {
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
        let err = |e| map_error(&self.path, e);
        let tx =
            Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate).map_err(err)?;
        let applied = identity(&self.path, &tx)?;
        if applied == MIGRATIONS.len() {
            return tx.commit().map_err(err);
        }
        let mut b = SqliteTx::new(&self.conn, tx, &self.path, &self.dialect);
        schema::migrate(&mut b, applied)?;
        b.conn
            .execute_batch(&format!(
                "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
            ))
            .map_err(err)?;
        b.commit(true)
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

    /// Refuses a file that is not a t-minus store or was migrated by
    /// another build, reading only; returns how many migrations it has
    /// applied. [`SqliteStore::migrate`] checks again inside its write
    /// transaction.
    fn check_identity(&self) -> Result<usize> {
        // One read transaction, so that a store being created by another
        // connection right now is seen either empty or complete.
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|e| map_error(&self.path, e))?;
        identity(&self.path, &tx)
    }

    /// Starts a transaction through a shared borrow: SQLite's connection
    /// handle serialises its own use, and a second transaction begun while
    /// one is open on this connection fails with SQLite's "cannot start a
    /// transaction within a transaction" instead of nesting.
    fn begin(&self, behavior: TransactionBehavior) -> Result<Box<dyn Tx + '_>> {
        let tx = Transaction::new_unchecked(&self.conn, behavior)
            .map_err(|e| map_error(&self.path, e))?;
        Ok(Box::new(SqlTx::new(SqliteTx::new(
            &self.conn,
            tx,
            &self.path,
            &self.dialect,
        ))))
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

/// How many migrations the store open in `tx` has applied; refuses a
/// foreign database and a store another build migrated.
fn identity(path: &Path, tx: &Transaction<'_>) -> Result<usize> {
    let err = |e| map_error(path, e);
    let pragma = |name: &str| -> Result<i64> {
        tx.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .map_err(err)
    };
    let version = pragma("user_version")?;
    let app_id = pragma("application_id")? as i32;
    let (tables, ledger): (i64, i64) = tx
        .query_row(
            "SELECT count(*), count(*) FILTER (WHERE name = 'migrations') FROM sqlite_master \
             WHERE type = 'table'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(err)?;
    if let Some(refusal) = identity_error(path, version, app_id, tables) {
        return Err(refusal);
    }
    let recorded = if ledger > 0 {
        tx.prepare("SELECT name FROM migrations ORDER BY position")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(err)?
    } else {
        Vec::new()
    };
    schema::applied(&file(path), version, &recorded)
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

/// An open transaction of an SQLite store: the SQLite [`Backend`].
struct SqliteTx<'c> {
    conn: &'c Connection,
    tx: Transaction<'c>,
    path: &'c Path,
    /// The connection's statements in SQLite's dialect.
    dialect: &'c Dialect,
}

impl<'c> SqliteTx<'c> {
    fn new(
        conn: &'c Connection,
        tx: Transaction<'c>,
        path: &'c Path,
        dialect: &'c Dialect,
    ) -> Self {
        SqliteTx {
            conn,
            tx,
            path,
            dialect,
        }
    }

    fn err(&self, e: rusqlite::Error) -> TMinusError {
        map_error(self.path, e)
    }

    /// `sql` in SQLite's dialect, for `params`.
    fn sql(&mut self, sql: &str, params: &[Value]) -> std::sync::Arc<str> {
        if params
            .iter()
            .any(|p| matches!(p, Value::Texts(_) | Value::Ids(_)))
        {
            return translate(sql, params).into();
        }
        if let Some(done) = self.dialect.borrow().get(sql) {
            return done.clone();
        }
        let done: std::sync::Arc<str> = translate(sql, params).into();
        self.dialect
            .borrow_mut()
            .insert(sql.to_string(), done.clone());
        done
    }
}

/// Rows per multi-row `INSERT`.
const INSERT_ROWS: usize = 100;

/// Rows per `INSERT` of the rows left over from statements of
/// [`INSERT_ROWS`].
const INSERT_ROWS_FEW: usize = 10;

/// Prepared statements a connection keeps (rusqlite keeps 16 by default):
/// the store's statements and three sizes of multi-row `INSERT` for each
/// table an operation inserts into.
const STATEMENT_CACHE: usize = 64;

/// Parameters held in [`Pending`] before they are written.
const PENDING_PARAMS: usize = 20_000;

/// A statement's text in SQLite's dialect: `$n` placeholders become `?n`,
/// `= ANY($n)` of a list an `IN (…)` of its items (each a parameter of its
/// own, so later placeholders move up), the `tm_` prefix of table names
/// goes, and `TRUE` and `FALSE` become `1` and `0` (as the partial indexes
/// are written), and `CAST(… AS UUID)` a `CAST(… AS BLOB)`.
fn translate(sql: &str, params: &[Value]) -> String {
    let mut first = Vec::with_capacity(params.len());
    let mut next = 1;
    for p in params {
        first.push(next);
        next += list_len(p).unwrap_or(1);
    }
    let placeholder = |n: usize| first.get(n.wrapping_sub(1)).copied().unwrap_or(n);
    let bytes = sql.as_bytes();
    let word_start =
        |i: usize| i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
    let word = |i: usize, w: &str| {
        sql[i..].starts_with(w)
            && word_start(i)
            && !bytes
                .get(i + w.len())
                .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
    };
    let number = |i: usize| {
        let digits = sql[i..].bytes().take_while(u8::is_ascii_digit).count();
        (sql[i..i + digits].parse::<usize>().unwrap_or(0), i + digits)
    };
    let mut out = String::with_capacity(sql.len() + 16);
    let mut i = 0;
    while i < sql.len() {
        if sql[i..].starts_with("= ANY($") {
            let (n, end) = number(i + 7);
            let len = params
                .get(n.wrapping_sub(1))
                .and_then(list_len)
                .unwrap_or(1);
            let list: Vec<String> = (0..len)
                .map(|k| format!("?{}", placeholder(n) + k))
                .collect();
            out.push_str(&format!("IN ({})", list.join(", ")));
            i = end + 1; // the closing parenthesis
        } else if bytes[i] == b'$' {
            let (n, end) = number(i + 1);
            out.push_str(&format!("?{}", placeholder(n)));
            i = end;
        } else if word_start(i) && sql[i..].starts_with("tm_") {
            i += 3;
        } else if word(i, "TRUE") {
            out.push('1');
            i += 4;
        } else if word(i, "FALSE") {
            out.push('0');
            i += 5;
        } else if word(i, "UUID") {
            out.push_str("BLOB");
            i += 4;
        } else {
            let c = sql[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The length of a list parameter; `None` for one value.
fn list_len(p: &Value) -> Option<usize> {
    match p {
        Value::Texts(list) => Some(list.len()),
        Value::Ids(list) => Some(list.len()),
        _ => None,
    }
}

/// The parameters as bound, lists spread out (see [`translate`]).
fn bind(params: &[Value]) -> Vec<ToSqlOutput<'_>> {
    let mut out = Vec::with_capacity(params.len());
    for p in params {
        match p {
            Value::Null => out.push(ToSqlOutput::Owned(SqlValue::Null)),
            Value::Int(v) => out.push(ToSqlOutput::Owned(SqlValue::Integer(*v))),
            Value::Bool(v) => out.push(ToSqlOutput::Owned(SqlValue::Integer(i64::from(*v)))),
            Value::Text(s) => out.push(ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes()))),
            Value::Texts(list) => out.extend(
                list.iter()
                    .map(|s| ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes()))),
            ),
            Value::Id(id) => out.push(ToSqlOutput::Borrowed(ValueRef::Blob(id.as_bytes()))),
            Value::Ids(list) => out.extend(
                list.iter()
                    .map(|id| ToSqlOutput::Borrowed(ValueRef::Blob(id.as_bytes()))),
            ),
            Value::Bytes(b) => out.push(ToSqlOutput::Borrowed(ValueRef::Blob(b))),
        }
    }
    out
}

/// A value as SQLite stores it.
fn owned(v: Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Int(v) => SqlValue::Integer(v),
        Value::Bool(v) => SqlValue::Integer(i64::from(v)),
        Value::Text(s) => SqlValue::Text(s),
        Value::Texts(list) => SqlValue::Text(list.join(", ")),
        Value::Id(id) => SqlValue::Blob(id.as_bytes().to_vec()),
        Value::Ids(list) => SqlValue::Blob(list.iter().flat_map(|id| *id.as_bytes()).collect()),
        Value::Bytes(b) => SqlValue::Blob(b),
    }
}

/// A result row of the SQLite store.
struct SqliteRow<'r> {
    row: &'r rusqlite::Row<'r>,
    path: &'r Path,
}

impl SqliteRow<'_> {
    fn get<T: rusqlite::types::FromSql>(&self, i: usize) -> Result<T> {
        self.row.get(i).map_err(|e| map_error(self.path, e))
    }

    /// Column `i` as the row holds it.
    fn value(&self, i: usize) -> Result<ValueRef<'_>> {
        self.row.get_ref(i).map_err(|e| map_error(self.path, e))
    }
}

impl Columns for SqliteRow<'_> {
    type Error = TMinusError;

    fn int(&self, i: usize) -> Result<i64> {
        self.get(i)
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        self.get(i)
    }

    fn text(&self, i: usize) -> Result<String> {
        self.get(i)
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>> {
        self.get(i)
    }

    fn str(&self, i: usize) -> Result<&str> {
        match self.opt_str(i)? {
            Some(text) => Ok(text),
            None => Err(self.invalid(format!("column {i} is NULL"))),
        }
    }

    fn opt_str(&self, i: usize) -> Result<Option<&str>> {
        self.value(i)?
            .as_str_or_null()
            .map_err(|e| self.invalid(format!("column {i}: {e}")))
    }

    fn flag(&self, i: usize) -> Result<bool> {
        self.get(i)
    }

    fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>> {
        // A hash stored as text (by hand) reads as its bytes, and fails to
        // match as any other wrong value would.
        match self.row.get_ref(i).map_err(|e| map_error(self.path, e))? {
            ValueRef::Null => Ok(None),
            ValueRef::Blob(b) | ValueRef::Text(b) => Ok(Some(b.to_vec())),
            _ => self.get(i),
        }
    }

    fn id(&self, i: usize) -> Result<uuid::Uuid> {
        match self.opt_id(i)? {
            Some(id) => Ok(id),
            None => Err(self.invalid(format!("column {i} is NULL"))),
        }
    }

    fn opt_id(&self, i: usize) -> Result<Option<uuid::Uuid>> {
        let bytes = self
            .value(i)?
            .as_blob_or_null()
            .map_err(|e| self.invalid(format!("column {i}: {e}")))?;
        bytes
            .map(|b| self.decode(super::row::uuid_bytes(b)))
            .transpose()
    }

    fn invalid(&self, reason: String) -> TMinusError {
        let e = rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            reason.into(),
        );
        map_error(self.path, e)
    }
}

impl Backend for SqliteTx<'_> {
    type Row<'r> = SqliteRow<'r>;

    const KEEP_EVENTS: bool = false;

    const WRITER_ALONE: bool = true;

    const EVENT_SEQ: &'static str = "rowid";

    fn query(
        &mut self,
        sql: &str,
        params: &[Value],
        mut each: impl FnMut(&SqliteRow<'_>) -> Result<()>,
    ) -> Result<()> {
        let sql = self.sql(sql, params);
        let conn = self.conn;
        let mut stmt = conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let mut rows = stmt
            .query(params_from_iter(bind(params)))
            .map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            each(&SqliteRow {
                row,
                path: self.path,
            })?;
        }
        Ok(())
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let sql = self.sql(sql, params);
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut s| s.execute(params_from_iter(bind(params))))
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    /// Reads the rows through one statement; other queries run while it
    /// stays open.
    fn scan(
        &mut self,
        sql: &str,
        params: &[Value],
        mut each: impl FnMut(&mut Self, &SqliteRow<'_>) -> Result<()>,
    ) -> Result<()> {
        let sql = self.sql(sql, params);
        let (conn, path) = (self.conn, self.path);
        let fail = |e| map_error(path, e);
        let mut stmt = conn.prepare_cached(&sql).map_err(fail)?;
        let mut rows = stmt.query(params_from_iter(bind(params))).map_err(fail)?;
        while let Some(row) = rows.next().map_err(fail)? {
            each(self, &SqliteRow { row, path })?;
        }
        Ok(())
    }

    fn is_full(p: &Pending) -> bool {
        p.events.len() + p.attendees.len() + p.edges.len() + p.audits.len() >= PENDING_PARAMS
    }

    /// Multi-row `INSERT`s of [`INSERT_ROWS`] rows: a statement's set-up (its
    /// checks, its triggers' programs, its statement journal) is paid once
    /// for many rows.
    fn insert(&mut self, table: &Table, values: Vec<Value>) -> Result<()> {
        let width = table.kinds.len();
        let into = format!(
            "{}INTO {} ({})",
            if table.skip_existing {
                "OR IGNORE "
            } else {
                ""
            },
            table.name.trim_start_matches("tm_"),
            table.columns
        );
        let values: Vec<SqlValue> = values.into_iter().map(owned).collect();
        let row = format!("({})", vec!["?"; width].join(", "));
        let mut rest = values.as_slice();
        // Statements of a few sizes only, each prepared once per connection:
        // the rows that do not fill a statement of `INSERT_ROWS` go in
        // statements of `INSERT_ROWS_FEW` and then of one row.
        for rows in [INSERT_ROWS, INSERT_ROWS_FEW, 1] {
            if rest.len() < width * rows {
                continue;
            }
            let sql = format!(
                "INSERT {into} VALUES {}",
                vec![row.as_str(); rows].join(", ")
            );
            let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
            let chunks = rest.chunks_exact(width * rows);
            let left = chunks.remainder();
            for chunk in chunks {
                stmt.execute(params_from_iter(chunk))
                    .map_err(|e| self.err(e))?;
            }
            rest = left;
        }
        Ok(())
    }

    fn migrate_script(&mut self, migration: &Migration) -> Result<()> {
        self.conn
            .execute_batch(migration.sqlite)
            .map_err(|e| self.err(e))
    }

    fn commit(self, _changed: bool) -> Result<()> {
        let path = self.path;
        self.tx.commit().map_err(|e| map_error(path, e))
    }
}

/// Whether `path` is an SQLite URI (`file:…`), whose directory is not a
/// path on its own.
fn is_uri(path: &Path) -> bool {
    path.to_str().is_some_and(|p| p.starts_with("file:"))
}
