//! The PostgreSQL store: one shared store for agents on many hosts.
//!
//! Chosen by a connection URL in `--db` or `T_MINUS_DB`
//! (`postgres://user@host:5432/db`). It keeps the same tables as the SQLite
//! store (prefixed `tm_`, in the connection's current schema) and gives the
//! same guarantees:
//!
//! - **One writer at a time.** Every write transaction starts by locking the
//!   single row of `tm_meta` (`SELECT … FOR UPDATE`), the counterpart of
//!   SQLite's `BEGIN IMMEDIATE`. Writers on different hosts queue on that row
//!   lock, so the engine's read-modify-write steps see no interleaved writer,
//!   no answer is lost, and audit sequence numbers are assigned in commit
//!   order (a runner reading "entries after N" never skips one). Claiming
//!   reports is also a conditional update (`… WHERE unreported RETURNING`),
//!   so a transition is reported exactly once even without the lock.
//!   A writer waits at most [`LOCK_TIMEOUT`] for the lock.
//! - **Reads** are `REPEATABLE READ READ ONLY` snapshots and take no lock.
//! - **Wake-ups.** A committed write sends `NOTIFY` on a channel named after
//!   the schema; a runner `LISTEN`s on it and wakes at once
//!   ([`Store::wait_for_change`]), ignoring its own notifications.
//! - **Migrations** are versioned in `tm_meta.version`, applied in one
//!   transaction; a database with a newer schema is refused untouched, and
//!   every write re-checks the version under the lock.
//! - **Lost connections** are reconnected on the next transaction; `run` and
//!   `wait` retry with backoff (see [`crate::runner`]).
//!
//! Built on the synchronous [`postgres`] crate: the engine is synchronous
//! (one transaction per operation, no async runtime in the library's API),
//! and the crate is the blocking face of `tokio-postgres`, the ecosystem's
//! standard driver. TLS is not built in yet; see `docs/postgres.md`.

use std::cell::Cell;
use std::collections::HashMap;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use postgres::config::Host;
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{FromSql, ToSql};
use postgres::{Client, Config, IsolationLevel, Row, Statement, Transaction};
use tokio_postgres_rustls::MakeRustlsConnect;
use uuid::Uuid;

use super::row::{
    ms, opt_time, parse, response, status_columns, time, uuid, EventRow, EVENT_COLUMNS,
};
use super::{CampaignRow, EventFilter, NeedState, NewAuditEntry, Store, Tx};
use crate::agent::AgentId;
use crate::audit::{AuditAction, AuditEntry};
use crate::error::{Result, TMinusError};
use crate::event::TMinusEvent;
use crate::state::{EventState, ResponseStatus};

/// The migrations, in order; `tm_meta.version` is the number applied.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/postgres/0001_initial.sql"),
    include_str!("migrations/postgres/0002_campaign_due.sql"),
    include_str!("migrations/postgres/0005_inbox.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// What `tm_meta.application` holds in a t-minus store.
const APPLICATION: &str = "t-minus";

/// How long a writer waits for another's transaction (as SQLite's busy
/// timeout).
pub const LOCK_TIMEOUT: StdDuration = StdDuration::from_secs(30);

/// How long connecting may take when the URL sets no `connect_timeout`.
pub const CONNECT_TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// The statement that takes the store's write lock and reads the schema
/// version.
const LOCK_SQL: &str = "SELECT version FROM tm_meta WHERE id = 1 FOR UPDATE";

/// The PostgreSQL store.
pub struct PgStore {
    client: Client,
    config: Config,
    /// TLS as the URL's `sslmode` asks (see [`super::tls`]).
    tls: MakeRustlsConnect,
    /// The server, for messages: `postgres://user@host:port/db`, no password.
    server: String,
    /// Prepared statements of this connection, by SQL text.
    statements: HashMap<String, Statement>,
    /// The NOTIFY channel of this store's schema.
    channel: String,
    /// This connection's backend process id: its own notifications are not
    /// news.
    pid: i32,
    /// Whether this connection has run `LISTEN`.
    listening: bool,
    /// Counts notifications from other connections (and reconnections).
    version: i64,
    /// Whether the caller has been told the connection is lost: the next
    /// use reconnects (see [`PgStore::ensure_connected`]).
    lost: Cell<bool>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the server at `url`, creating (or migrating) the store's
    /// tables in the connection's current schema when needed.
    ///
    /// A user missing from the URL comes from `PGUSER` or the login name, a
    /// password from `PGPASSWORD`.
    pub fn connect(url: &str) -> Result<Self> {
        let (config, tls) = parse_config(url)?;
        let server = describe(&config);
        let client = open_client(&config, &tls, &server)?;
        let mut store = PgStore {
            client,
            config,
            tls,
            server,
            statements: HashMap::new(),
            channel: String::new(),
            pid: 0,
            listening: false,
            version: 0,
            lost: Cell::new(false),
        };
        store.set_up_session()?;
        store.migrate()?;
        Ok(store)
    }

    /// The server and database, without the password.
    pub fn server(&self) -> &str {
        &self.server
    }

    fn err(&self, e: postgres::Error) -> TMinusError {
        note(&self.lost, map_error(&self.server, e))
    }

    /// Session settings, this connection's process id, and the NOTIFY channel.
    fn set_up_session(&mut self) -> Result<()> {
        self.client
            .batch_execute(&format!(
                "SET lock_timeout = '{}s'; SET idle_in_transaction_session_timeout = 0",
                LOCK_TIMEOUT.as_secs()
            ))
            .map_err(|e| self.err(e))?;
        let row = self
            .client
            .query_one("SELECT current_schema(), pg_backend_pid()", &[])
            .map_err(|e| self.err(e))?;
        let schema: Option<String> = get(&self.server, &row, 0)?;
        let Some(schema) = schema else {
            return Err(TMinusError::StoreOpen {
                path: self.server.clone().into(),
                reason:
                    "no schema of the search_path exists, so there is nowhere to keep the tables"
                        .into(),
            });
        };
        self.pid = get(&self.server, &row, 1)?;
        self.channel = channel_name(&schema);
        Ok(())
    }

    /// Refuses a foreign or newer store; creates or upgrades the tables.
    /// Two processes creating the same store at once race on the catalog;
    /// the loser sees the winner's tables on a retry.
    fn migrate(&mut self) -> Result<()> {
        let mut attempt = 0;
        loop {
            match self.try_migrate() {
                Err(Retry::Race(_)) if attempt < 5 => attempt += 1,
                Err(Retry::Race(e)) => return Err(self.err(e)),
                Err(Retry::Fail(e)) => return Err(e),
                Ok(()) => return Ok(()),
            }
        }
    }

    fn try_migrate(&mut self) -> std::result::Result<(), Retry> {
        let server = self.server.clone();
        let fail = |e: postgres::Error| {
            if is_race(&e) {
                Retry::Race(e)
            } else {
                Retry::Fail(map_error(&server, e))
            }
        };
        let found = self.identity().map_err(Retry::Fail)?;
        if found == Some(SCHEMA_VERSION) {
            return Ok(());
        }
        let mut tx = self.client.transaction().map_err(fail)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS tm_meta (\
                 id INTEGER PRIMARY KEY CHECK (id = 1), \
                 application TEXT NOT NULL, \
                 version BIGINT NOT NULL); \
             INSERT INTO tm_meta (id, application, version) VALUES (1, 't-minus', 0) \
                 ON CONFLICT (id) DO NOTHING",
        )
        .map_err(fail)?;
        let row = tx
            .query_one(
                "SELECT application, version FROM tm_meta WHERE id = 1 FOR UPDATE",
                &[],
            )
            .map_err(fail)?;
        let application: String = get(&server, &row, 0).map_err(Retry::Fail)?;
        let version: i64 = get(&server, &row, 1).map_err(Retry::Fail)?;
        check_identity(&server, &application, version).map_err(Retry::Fail)?;
        if version < SCHEMA_VERSION {
            for migration in &MIGRATIONS[version as usize..] {
                tx.batch_execute(migration).map_err(fail)?;
            }
            tx.execute(
                "UPDATE tm_meta SET version = $1 WHERE id = 1",
                &[&SCHEMA_VERSION],
            )
            .map_err(fail)?;
        }
        tx.commit().map_err(fail)
    }

    /// The schema version of an existing t-minus store here, `None` when
    /// there is none yet. Refuses foreign and newer stores, reading only.
    fn identity(&mut self) -> Result<Option<i64>> {
        let server = self.server.clone();
        let err = |e| map_error(&server, e);
        let tables: Vec<String> = self
            .client
            .query(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name LIKE 'tm\\_%'",
                &[],
            )
            .map_err(err)?
            .iter()
            .map(|r| get(&server, r, 0))
            .collect::<Result<_>>()?;
        if !tables.iter().any(|t| t == "tm_meta") {
            if tables.iter().any(|t| t == "tm_events") {
                return Err(TMinusError::NotAStore {
                    path: server.clone().into(),
                    reason: "its schema has a tm_events table but no tm_meta".into(),
                });
            }
            return Ok(None);
        }
        let row = self
            .client
            .query_opt("SELECT application, version FROM tm_meta WHERE id = 1", &[])
            .map_err(err)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let application: String = get(&server, &row, 0)?;
        let version: i64 = get(&server, &row, 1)?;
        check_identity(&server, &application, version)?;
        Ok(Some(version))
    }

    /// Reconnects when the connection was lost. A loss nobody has been told
    /// of yet (the server ended the session while this one waited idle) is
    /// first reported as [`TMinusError::StoreUnreachable`], so that `run`
    /// says so; the next use reconnects. What was in flight is gone with the
    /// connection (rolled back, or committed before the loss); notifications
    /// sent meanwhile were missed, so the version moves on to make a runner
    /// look again.
    fn ensure_connected(&mut self) -> Result<()> {
        if !self.client.is_closed() {
            self.lost.set(false);
            return Ok(());
        }
        if !self.lost.replace(true) {
            return Err(TMinusError::StoreUnreachable {
                server: self.server.clone(),
                reason: "the connection to the server was lost".into(),
            });
        }
        self.client = open_client(&self.config, &self.tls, &self.server)?;
        self.lost.set(false);
        self.statements.clear();
        self.listening = false;
        self.version += 1;
        self.set_up_session()
    }

    /// Starts listening on the store's channel, once per connection.
    fn listen(&mut self) -> Result<()> {
        if !self.listening {
            let sql = format!("LISTEN {}", quote_ident(&self.channel));
            self.client.batch_execute(&sql).map_err(|e| self.err(e))?;
            self.listening = true;
        }
        Ok(())
    }

    fn begin(&mut self, write: bool) -> Result<Box<dyn Tx + '_>> {
        self.ensure_connected()?;
        let (server, lost) = (self.server.as_str(), &self.lost);
        let err = |e| note(lost, map_error(server, e));
        let statements = &mut self.statements;
        let lock = if write {
            Some(prepare(&mut self.client, statements, LOCK_SQL).map_err(err)?)
        } else {
            None
        };
        let builder = self.client.build_transaction();
        let mut tx = if write {
            builder.isolation_level(IsolationLevel::ReadCommitted)
        } else {
            builder
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
        }
        .start()
        .map_err(err)?;
        if let Some(lock) = lock {
            let row = tx.query_one(&lock, &[]).map_err(err)?;
            let version: i64 = get(server, &row, 0)?;
            check_identity(server, APPLICATION, version)?;
        }
        Ok(Box::new(PgTx {
            tx,
            statements,
            server,
            lost,
            notify: write.then_some(self.channel.as_str()),
            dirty: false,
            bumps: HashMap::new(),
            inserted: 0,
            next_analyze: ANALYZE_AFTER,
        }))
    }
}

impl Store for PgStore {
    fn write(&mut self) -> Result<Box<dyn Tx + '_>> {
        self.begin(true)
    }

    fn read(&mut self) -> Result<Box<dyn Tx + '_>> {
        self.begin(false)
    }

    fn data_version(&mut self) -> Result<i64> {
        self.ensure_connected()?;
        self.listen()?;
        let (pid, server, lost) = (self.pid, self.server.as_str(), &self.lost);
        let mut news = 0;
        let mut notifications = self.client.notifications();
        let mut pending = notifications.iter();
        while let Some(n) = pending
            .next()
            .map_err(|e| note(lost, map_error(server, e)))?
        {
            if n.process_id() != pid {
                news += 1;
            }
        }
        self.version += news;
        Ok(self.version)
    }

    fn wait_for_change(&mut self, timeout: StdDuration) -> Result<()> {
        self.ensure_connected()?;
        self.listen()?;
        let (pid, server, lost) = (self.pid, self.server.as_str(), &self.lost);
        let mut notifications = self.client.notifications();
        let mut waiting = notifications.timeout_iter(timeout);
        let news = match waiting
            .next()
            .map_err(|e| note(lost, map_error(server, e)))?
        {
            Some(n) => n.process_id() != pid,
            None => false,
        };
        if news {
            self.version += 1;
        }
        Ok(())
    }
}

/// Why a migration attempt failed.
enum Retry {
    /// Another connection was creating the tables at the same moment.
    Race(postgres::Error),
    /// Anything else.
    Fail(TMinusError),
}

/// Whether `e` is the catalog race of two connections creating the same
/// tables (or a serialization failure): worth one more try.
fn is_race(e: &postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::UNIQUE_VIOLATION
            || *c == SqlState::DUPLICATE_TABLE
            || *c == SqlState::DUPLICATE_OBJECT
            || *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// Refuses a `tm_meta` row that is not a t-minus store's, or is newer.
fn check_identity(server: &str, application: &str, version: i64) -> Result<()> {
    if application != APPLICATION {
        return Err(TMinusError::NotAStore {
            path: server.into(),
            reason: format!("its tm_meta table belongs to {application:?}"),
        });
    }
    if version > SCHEMA_VERSION {
        return Err(TMinusError::StoreTooNew {
            path: server.into(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Parses the URL and fills in what libpq users expect from the
/// environment; builds the TLS connector its `sslmode` asks for.
fn parse_config(url: &str) -> Result<(Config, MakeRustlsConnect)> {
    let invalid = |reason: String| TMinusError::StoreOpen {
        path: redact(url).into(),
        reason: format!("not a valid PostgreSQL URL: {reason}"),
    };
    let (rest, tls) = super::tls::split_url(url.trim()).map_err(invalid)?;
    let mut config: Config = rest.parse().map_err(|e| invalid(format!("{e}")))?;
    if let Some(mode) = tls.mode {
        config.ssl_mode(mode);
    }
    if config.get_hosts().is_empty() {
        config.host("localhost");
    }
    if config.get_user().is_none() {
        let user = std::env::var("PGUSER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "postgres".into());
        config.user(&user);
    }
    if config.get_password().is_none() {
        if let Ok(password) = std::env::var("PGPASSWORD") {
            config.password(password);
        }
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("t-minus");
    }
    // Notice a dead peer while waiting idle for notifications.
    config
        .keepalives(true)
        .keepalives_idle(StdDuration::from_secs(10));
    let connector = super::tls::connector(&tls).map_err(|reason| TMinusError::StoreTls {
        server: describe(&config),
        reason,
    })?;
    Ok((config, connector))
}

fn open_client(config: &Config, tls: &MakeRustlsConnect, server: &str) -> Result<Client> {
    config
        .connect(tls.clone())
        .map_err(|e| map_error(server, e))
}

/// `postgres://user@host:port/db`, without the password.
fn describe(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) if h.contains(':') => format!("[{h}]"),
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("");
    let db = config.get_dbname().unwrap_or(user);
    format!("postgres://{user}@{host}:{port}/{db}")
}

/// The URL with any password replaced by `***`, for messages about a URL
/// that did not parse.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!(
                "{}{}:***{}",
                &url[..scheme_end],
                &rest[..colon],
                &rest[at..]
            ),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// The NOTIFY channel of a schema (identifiers hold at most 63 bytes).
fn channel_name(schema: &str) -> String {
    let mut name = format!("t_minus.{schema}");
    while name.len() > 63 {
        name.pop();
    }
    name
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Turns a driver error into a t-minus error that names the server.
fn map_error(server: &str, e: postgres::Error) -> TMinusError {
    let server_string = server.to_string();
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let reason = match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        };
        return if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            TMinusError::StoreAuth {
                server: server_string,
                reason,
            }
        } else if *code == SqlState::INVALID_CATALOG_NAME {
            TMinusError::StoreDatabaseMissing {
                server: server_string,
                reason,
            }
        } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION
            || *code == SqlState::INSUFFICIENT_PRIVILEGE
        {
            TMinusError::StoreReadOnly {
                path: server.into(),
                reason,
            }
        } else if *code == SqlState::LOCK_NOT_AVAILABLE {
            TMinusError::Store(format!(
                "{reason} (another process held the store for more than {}s)",
                LOCK_TIMEOUT.as_secs()
            ))
        } else if code.code().starts_with("08")
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::TOO_MANY_CONNECTIONS
        {
            TMinusError::StoreUnreachable {
                server: server_string,
                reason,
            }
        } else {
            TMinusError::Store(format!("{server}: {reason} [SQLSTATE {}]", code.code()))
        };
    }
    let reason = describe_error(&e);
    // A refused certificate comes wrapped in an I/O error: tell it apart
    // from a network failure, which is worth retrying and this is not.
    if reason.contains("TLS") {
        return TMinusError::StoreTls {
            server: server_string,
            reason,
        };
    }
    if reason.starts_with("invalid configuration") {
        return TMinusError::StoreOpen {
            path: server.into(),
            reason,
        };
    }
    let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
    if e.is_closed() || io || reason.contains("connect") || reason.contains("timeout") {
        TMinusError::StoreUnreachable {
            server: server_string,
            reason,
        }
    } else {
        TMinusError::Store(format!("{server}: {reason}"))
    }
}

/// Remembers in `lost` that the caller is told of a lost connection (so
/// that [`PgStore::ensure_connected`] reconnects rather than tells again).
fn note(lost: &Cell<bool>, e: TMinusError) -> TMinusError {
    if matches!(e, TMinusError::StoreUnreachable { .. }) {
        lost.set(true);
    }
    e
}

/// The error with its causes, `outer: inner`.
fn describe_error(e: &postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// A row limit as SQL wants it (`usize::MAX` means no limit).
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Reads column `i`, mapping a type mismatch to a corrupt-store error.
fn get<'a, T: FromSql<'a>>(server: &str, row: &'a Row, i: usize) -> Result<T> {
    row.try_get(i)
        .map_err(|e| corrupt(server, describe_error(&e)))
}

fn corrupt(server: &str, reason: String) -> TMinusError {
    TMinusError::StoreCorrupt {
        path: server.into(),
        reason,
    }
}

/// A prepared statement of this connection, prepared once.
fn prepare(
    client: &mut impl postgres::GenericClient,
    cache: &mut HashMap<String, Statement>,
    sql: &str,
) -> std::result::Result<Statement, postgres::Error> {
    if let Some(stmt) = cache.get(sql) {
        return Ok(stmt.clone());
    }
    let stmt = client.prepare(sql)?;
    cache.insert(sql.to_string(), stmt.clone());
    Ok(stmt)
}

/// One transaction on a [`PgStore`].
struct PgTx<'c> {
    tx: Transaction<'c>,
    statements: &'c mut HashMap<String, Statement>,
    server: &'c str,
    /// The store's [`PgStore::lost`].
    lost: &'c Cell<bool>,
    /// The channel to notify on commit (write transactions).
    notify: Option<&'c str>,
    /// Whether anything was written.
    dirty: bool,
    /// Revision bumps not yet written, by campaign id (see
    /// [`PgTx::bump_revision`]).
    bumps: HashMap<String, i64>,
    /// Rows inserted so far, and the count at which to refresh the
    /// planner's statistics next (see [`PgTx::inserted`]).
    inserted: u64,
    next_analyze: u64,
}

/// Rows a transaction inserts before it refreshes the planner's statistics
/// (then four times as many, and so on).
const ANALYZE_AFTER: u64 = 1000;

type Params<'p> = [&'p (dyn ToSql + Sync)];

impl PgTx<'_> {
    fn err(&self, e: postgres::Error) -> TMinusError {
        note(self.lost, map_error(self.server, e))
    }

    fn query(&mut self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>> {
        let stmt = prepare(&mut self.tx, self.statements, sql).map_err(|e| self.err(e))?;
        self.tx.query(&stmt, params).map_err(|e| self.err(e))
    }

    fn query_opt(&mut self, sql: &str, params: &Params<'_>) -> Result<Option<Row>> {
        let stmt = prepare(&mut self.tx, self.statements, sql).map_err(|e| self.err(e))?;
        self.tx.query_opt(&stmt, params).map_err(|e| self.err(e))
    }

    fn execute(&mut self, sql: &str, params: &Params<'_>) -> Result<u64> {
        let stmt = prepare(&mut self.tx, self.statements, sql).map_err(|e| self.err(e))?;
        let changed = self.tx.execute(&stmt, params).map_err(|e| self.err(e))?;
        // Only a change is news for the runners listening.
        self.dirty |= changed > 0;
        Ok(changed)
    }

    fn get<'a, T: FromSql<'a>>(&self, row: &'a Row, i: usize) -> Result<T> {
        get(self.server, row, i)
    }

    /// Counts an inserted row. A transaction that inserts thousands (the
    /// first `apply` of a large manifest) refreshes the statistics of the
    /// tables it fills as it goes: planned from a store that was empty when
    /// it began, every `needs` lookup would scan the whole growing table,
    /// making the apply quadratic. `ANALYZE` counts the transaction's own
    /// rows and makes the cached plans be planned again; it runs at 1,000
    /// rows, 4,000, 16,000…, so O(log n) times.
    fn inserted(&mut self) -> Result<()> {
        self.inserted += 1;
        if self.inserted == self.next_analyze {
            self.next_analyze *= 4;
            self.tx
                .batch_execute("ANALYZE tm_events, tm_attendees, tm_edges")
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    fn decode<T>(&self, value: std::result::Result<T, String>) -> Result<T> {
        value.map_err(|reason| corrupt(self.server, reason))
    }

    fn id(&self, row: &Row, i: usize) -> Result<Uuid> {
        let text: String = self.get(row, i)?;
        self.decode(uuid(&text))
    }

    fn ids(&mut self, sql: &str, params: &Params<'_>) -> Result<Vec<Uuid>> {
        let rows = self.query(sql, params)?;
        rows.iter().map(|r| self.id(r, 0)).collect()
    }

    fn time(&self, row: &Row, i: usize) -> Result<DateTime<Utc>> {
        let value: i64 = self.get(row, i)?;
        self.decode(time(value))
    }

    fn opt_time(&self, row: &Row, i: usize) -> Result<Option<DateTime<Utc>>> {
        let value: Option<i64> = self.get(row, i)?;
        self.decode(opt_time(value))
    }

    fn event_from_row(&self, row: &Row) -> Result<TMinusEvent> {
        let g = |i| -> Result<Option<i64>> { self.get(row, i) };
        let event = EventRow {
            id: self.get(row, 0)?,
            campaign_id: self.get(row, 1)?,
            name: self.get(row, 2)?,
            kind: self.get(row, 3)?,
            description: self.get(row, 4)?,
            at_ms: g(5)?,
            offset_ms: g(6)?,
            start_ms: g(7)?,
            t_minus_ms: self.get(row, 8)?,
            defer_ms: self.get(row, 9)?,
            max_defer_ms: g(10)?,
            quorum: self.get(row, 11)?,
            quorum_spec: self.get(row, 12)?,
            fire_policy: self.get(row, 13)?,
            organizer: self.get(row, 14)?,
            payload: self.get(row, 15)?,
            state: self.get(row, 16)?,
            finished_ms: g(17)?,
            created_ms: self.get(row, 18)?,
            last_response_ms: g(19)?,
            fire_ms: None,
        };
        self.decode(event.into_event())
    }

    fn with_attendees(&mut self, mut event: TMinusEvent) -> Result<TMinusEvent> {
        let id = event.id.to_string();
        let rows = self.query(
            "SELECT agent, status, defer_ms FROM tm_attendees WHERE event_id = $1 ORDER BY position",
            &[&id],
        )?;
        event.attendees = rows
            .iter()
            .map(|r| self.attendee(r, 0))
            .collect::<Result<_>>()?;
        Ok(event)
    }

    /// An attendee from the columns `agent, status, defer_ms` at `first`.
    fn attendee(&self, row: &Row, first: usize) -> Result<(AgentId, ResponseStatus)> {
        let word: String = self.get(row, first + 1)?;
        let status = self.decode(response(&word, self.get(row, first + 2)?))?;
        Ok((AgentId(self.get(row, first)?), status))
    }

    /// The events `sql` selects, with their attendees: two queries however
    /// many events (a round trip per event would dominate a listing).
    fn events(&mut self, sql: &str, params: &Params<'_>) -> Result<Vec<TMinusEvent>> {
        let rows = self.query(sql, params)?;
        let mut events = rows
            .iter()
            .map(|r| self.event_from_row(r))
            .collect::<Result<Vec<_>>>()?;
        match events.len() {
            0 => {}
            1 => {
                let event = events.pop().expect("one event");
                events.push(self.with_attendees(event)?);
            }
            _ => {
                let ids: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
                let rows = self.query(
                    "SELECT event_id, agent, status, defer_ms FROM tm_attendees \
                     WHERE event_id = ANY($1) ORDER BY event_id, position",
                    &[&ids],
                )?;
                let mut by_event: HashMap<String, Vec<(AgentId, ResponseStatus)>> = HashMap::new();
                for r in &rows {
                    let attendee = self.attendee(r, 1)?;
                    by_event.entry(self.get(r, 0)?).or_default().push(attendee);
                }
                for (event, id) in events.iter_mut().zip(ids) {
                    event.attendees = by_event.remove(&id).unwrap_or_default();
                }
            }
        }
        Ok(events)
    }

    /// Counts a change to `campaign`. The bumps are written at once before
    /// the campaign is next read and at commit: updating one row thousands
    /// of times in one transaction (an `apply`) leaves a chain of row
    /// versions that each update walks, which is quadratic on PostgreSQL.
    /// The revisions come out the same as on SQLite.
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
                "UPDATE tm_campaigns SET revision = revision + $2 WHERE id = $1",
                &[&id, &n],
            )?;
        }
        Ok(())
    }

    fn campaign_from_row(&self, row: &Row) -> Result<CampaignRow> {
        Ok(CampaignRow {
            id: self.id(row, 0)?,
            name: self.get(row, 1)?,
            description: self.get(row, 2)?,
            created_at: self.time(row, 3)?,
            managed: self.get(row, 4)?,
            anchor_at: self.opt_time(row, 5)?,
            revision: self.get(row, 6)?,
        })
    }

    fn audit_from_row(&self, row: &Row) -> Result<AuditEntry> {
        let action: String = self.get(row, 5)?;
        let detail: String = self.get(row, 6)?;
        Ok(AuditEntry {
            seq: self.get(row, 0)?,
            event: self.id(row, 1)?,
            at: self.time(row, 2)?,
            recorded_at: self.time(row, 3)?,
            agent: self.get::<Option<String>>(row, 4)?.map(AgentId),
            action: self.decode(parse::<AuditAction>(&action))?,
            detail: self.decode(serde_json::from_str(&detail).map_err(|e| e.to_string()))?,
        })
    }

    fn audits(&mut self, sql: &str, params: &Params<'_>) -> Result<Vec<AuditEntry>> {
        let rows = self.query(sql, params)?;
        rows.iter().map(|r| self.audit_from_row(r)).collect()
    }
}

/// An event row's values in [`EVENT_COLUMNS`] order, then `fire_ms` ($21).
fn event_params(r: &EventRow) -> [&(dyn ToSql + Sync); 21] {
    [
        &r.id,
        &r.campaign_id,
        &r.name,
        &r.kind,
        &r.description,
        &r.at_ms,
        &r.offset_ms,
        &r.start_ms,
        &r.t_minus_ms,
        &r.defer_ms,
        &r.max_defer_ms,
        &r.quorum,
        &r.quorum_spec,
        &r.fire_policy,
        &r.organizer,
        &r.payload,
        &r.state,
        &r.finished_ms,
        &r.created_ms,
        &r.last_response_ms,
        &r.fire_ms,
    ]
}

const CAMPAIGN_COLUMNS: &str = "id, name, description, created_ms, managed, anchor_ms, revision";

const AUDIT_COLUMNS: &str = "seq, event_id, at_ms, recorded_ms, agent, action, detail";

/// The next position in a campaign's event order, for parameter `$2`.
const NEXT_POS: &str = "CASE WHEN $2::text IS NULL THEN NULL ELSE \
     (SELECT coalesce(max(campaign_pos), 0) + 1 FROM tm_events WHERE campaign_id = $2) END";

impl Tx for PgTx<'_> {
    fn insert_event(&mut self, e: &TMinusEvent) -> Result<()> {
        let r = EventRow::from_event(e);
        self.execute(
            &format!(
                "INSERT INTO tm_events ({EVENT_COLUMNS}, fire_ms, campaign_pos) VALUES \
                 ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21, \
                 {NEXT_POS})"
            ),
            &event_params(&r),
        )?;
        self.inserted()?;
        for (i, (agent, status)) in e.attendees.iter().enumerate() {
            let (word, defer) = status_columns(*status);
            self.execute(
                "INSERT INTO tm_attendees (event_id, position, agent, status, defer_ms, responded_ms) \
                 VALUES ($1, $2, $3, $4, $5, NULL)",
                &[&r.id, &(i as i64), &agent.0, &word, &defer],
            )?;
        }
        self.bump_revision(e.campaign)
    }

    fn event(&mut self, id: Uuid) -> Result<Option<TMinusEvent>> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM tm_events WHERE id = $1");
        Ok(self.events(&sql, &[&id.to_string()])?.pop())
    }

    fn update_event(&mut self, e: &TMinusEvent) -> Result<()> {
        let r = EventRow::from_event(e);
        // The same parameters as the INSERT; created_ms ($19) never changes.
        self.execute(
            &format!(
                "UPDATE tm_events SET campaign_id = $2, name = $3, kind = $4, description = $5, \
                 at_ms = $6, offset_ms = $7, start_ms = $8, t_minus_ms = $9, defer_ms = $10, \
                 max_defer_ms = $11, quorum = $12, quorum_spec = $13, fire_policy = $14, \
                 organizer = $15, payload = $16, state = $17, finished_ms = $18, \
                 created_ms = $19, last_response_ms = $20, fire_ms = $21, \
                 campaign_pos = CASE WHEN campaign_id IS NOT DISTINCT FROM $2 THEN campaign_pos \
                 ELSE {NEXT_POS} END WHERE id = $1"
            ),
            &event_params(&r),
        )?;
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
        self.execute(
            "UPDATE tm_attendees SET status = $3, defer_ms = $4, responded_ms = $5 \
             WHERE event_id = $1 AND agent = $2",
            &[&id.to_string(), &agent.0, &word, &defer, &ms(at)],
        )
        .map(drop)
    }

    fn set_attendees(&mut self, id: Uuid, attendees: &[AgentId]) -> Result<()> {
        let id = id.to_string();
        // Park the kept rows at negative positions, drop the others, then
        // insert or move each attendee to its new position.
        self.execute(
            "UPDATE tm_attendees SET position = -1 - position WHERE event_id = $1",
            &[&id],
        )?;
        let names: Vec<String> = attendees.iter().map(|a| a.0.clone()).collect();
        self.execute(
            "DELETE FROM tm_attendees WHERE event_id = $1 AND NOT (agent = ANY($2))",
            &[&id, &names],
        )?;
        for (i, agent) in attendees.iter().enumerate() {
            self.execute(
                "INSERT INTO tm_attendees (event_id, position, agent, status) \
                 VALUES ($1, $2, $3, 'pending') \
                 ON CONFLICT (event_id, agent) DO UPDATE SET position = excluded.position",
                &[&id, &(i as i64), &agent.0],
            )?;
        }
        Ok(())
    }

    fn events_with_prefix(&mut self, prefix: &str, limit: usize) -> Result<Vec<Uuid>> {
        let upper = format!("{prefix}g");
        self.ids(
            "SELECT id FROM tm_events WHERE id >= $1 AND id < $2 ORDER BY id LIMIT $3",
            &[&prefix, &upper, &sql_limit(limit)],
        )
    }

    fn event_by_name(&mut self, campaign: Uuid, name: &str) -> Result<Option<Uuid>> {
        Ok(self
            .ids(
                "SELECT id FROM tm_events WHERE campaign_id = $1 AND name = $2",
                &[&campaign.to_string(), &name],
            )?
            .into_iter()
            .next())
    }

    fn due_events(&mut self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Uuid>> {
        self.ids(
            "SELECT id FROM tm_events WHERE state = 'pending' AND fire_ms <= $1 \
             ORDER BY fire_ms, seq LIMIT $2",
            &[&ms(now), &sql_limit(limit)],
        )
    }

    fn campaign_due_events(&mut self, id: Uuid, now: DateTime<Utc>) -> Result<Vec<Uuid>> {
        self.ids(
            "SELECT id FROM tm_events WHERE state = 'pending' AND fire_ms <= $2 \
             AND campaign_id = (SELECT campaign_id FROM tm_events WHERE id = $1) \
             ORDER BY fire_ms, seq",
            &[&id.to_string(), &ms(now)],
        )
    }

    fn next_fire_time(&mut self, campaign: Option<Uuid>) -> Result<Option<DateTime<Utc>>> {
        let row = match campaign {
            None => self.query_opt(
                "SELECT min(fire_ms) FROM tm_events WHERE state = 'pending'",
                &[],
            )?,
            // The first entry of the campaign's due index, however many
            // pending events the campaign has.
            Some(c) => self.query_opt(
                "SELECT fire_ms FROM tm_events WHERE state = 'pending' AND campaign_id = $1 \
                 ORDER BY fire_ms LIMIT 1",
                &[&c.to_string()],
            )?,
        };
        match row {
            Some(row) => self.opt_time(&row, 0),
            None => Ok(None),
        }
    }

    fn list_events(&mut self, filter: EventFilter) -> Result<Vec<TMinusEvent>> {
        let order = "ORDER BY fire_ms IS NULL, fire_ms, created_ms, id";
        match filter {
            EventFilter::Unfinished => self.events(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM tm_events \
                     WHERE state IN ('blocked', 'pending') {order}"
                ),
                &[],
            ),
            EventFilter::All => self.events(
                &format!("SELECT {EVENT_COLUMNS} FROM tm_events {order}"),
                &[],
            ),
            EventFilter::Campaign(id) => self.events(
                &format!("SELECT {EVENT_COLUMNS} FROM tm_events WHERE campaign_id = $1 {order}"),
                &[&id.to_string()],
            ),
        }
    }

    fn inbox(&mut self, agent: &AgentId) -> Result<Vec<TMinusEvent>> {
        self.events(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM tm_events WHERE id IN \
                 (SELECT event_id FROM tm_attendees WHERE agent = $1 AND open) \
                 ORDER BY fire_ms IS NULL, fire_ms, created_ms, id"
            ),
            &[&agent.as_str()],
        )
    }

    fn count_events(&mut self) -> Result<u64> {
        let row = self.query("SELECT count(*) FROM tm_events", &[])?;
        let n: i64 = match row.first() {
            Some(r) => self.get(r, 0)?,
            None => 0,
        };
        Ok(n as u64)
    }

    fn insert_campaign(&mut self, c: &CampaignRow) -> Result<()> {
        self.execute(
            &format!(
                "INSERT INTO tm_campaigns ({CAMPAIGN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ),
            &[
                &c.id.to_string(),
                &c.name,
                &c.description,
                &ms(c.created_at),
                &c.managed,
                &c.anchor_at.map(ms),
                &c.revision,
            ],
        )
        .map(drop)
    }

    fn update_campaign(&mut self, c: &CampaignRow) -> Result<()> {
        self.flush_bumps()?;
        self.execute(
            "UPDATE tm_campaigns SET name = $2, description = $3, managed = $4, anchor_ms = $5, \
             revision = revision + 1 WHERE id = $1",
            &[
                &c.id.to_string(),
                &c.name,
                &c.description,
                &c.managed,
                &c.anchor_at.map(ms),
            ],
        )
        .map(drop)
    }

    fn campaign(&mut self, id: Uuid) -> Result<Option<CampaignRow>> {
        self.flush_bumps()?;
        let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM tm_campaigns WHERE id = $1");
        let row = self.query_opt(&sql, &[&id.to_string()])?;
        row.map(|r| self.campaign_from_row(&r)).transpose()
    }

    fn campaign_by_name(&mut self, name: &str) -> Result<Option<CampaignRow>> {
        self.flush_bumps()?;
        let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM tm_campaigns WHERE name = $1");
        let row = self.query_opt(&sql, &[&name])?;
        row.map(|r| self.campaign_from_row(&r)).transpose()
    }

    fn campaigns_with_prefix(&mut self, prefix: &str, limit: usize) -> Result<Vec<Uuid>> {
        let upper = format!("{prefix}g");
        self.ids(
            "SELECT id FROM tm_campaigns WHERE id >= $1 AND id < $2 ORDER BY id LIMIT $3",
            &[&prefix, &upper, &sql_limit(limit)],
        )
    }

    fn list_campaigns(&mut self) -> Result<Vec<CampaignRow>> {
        self.flush_bumps()?;
        let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM tm_campaigns ORDER BY name");
        let rows = self.query(&sql, &[])?;
        rows.iter().map(|r| self.campaign_from_row(r)).collect()
    }

    fn campaign_events(&mut self, campaign: Uuid) -> Result<Vec<(Uuid, String, EventState)>> {
        let rows = self.query(
            "SELECT id, name, state FROM tm_events WHERE campaign_id = $1 ORDER BY campaign_pos",
            &[&campaign.to_string()],
        )?;
        rows.iter()
            .map(|r| {
                let name: Option<String> = self.get(r, 1)?;
                let state: String = self.get(r, 2)?;
                Ok((
                    self.id(r, 0)?,
                    name.unwrap_or_default(),
                    self.decode(parse(&state))?,
                ))
            })
            .collect()
    }

    fn campaign_edges(&mut self, campaign: Uuid) -> Result<Vec<(Uuid, Uuid)>> {
        let rows = self.query(
            "SELECT from_id, to_id FROM tm_edges WHERE campaign_id = $1 ORDER BY seq",
            &[&campaign.to_string()],
        )?;
        rows.iter()
            .map(|r| Ok((self.id(r, 0)?, self.id(r, 1)?)))
            .collect()
    }

    fn insert_edge(&mut self, campaign: Uuid, from: Uuid, to: Uuid) -> Result<()> {
        self.execute(
            "INSERT INTO tm_edges (campaign_id, from_id, to_id) VALUES ($1, $2, $3) \
             ON CONFLICT (from_id, to_id) DO NOTHING",
            &[&campaign.to_string(), &from.to_string(), &to.to_string()],
        )?;
        self.inserted()?;
        self.bump_revision(Some(campaign))
    }

    fn delete_edge(&mut self, from: Uuid, to: Uuid) -> Result<()> {
        self.execute(
            "DELETE FROM tm_edges WHERE from_id = $1 AND to_id = $2",
            &[&from.to_string(), &to.to_string()],
        )
        .map(drop)
    }

    fn needs(&mut self, id: Uuid) -> Result<Vec<NeedState>> {
        let rows = self.query(
            "SELECT e.id, e.state, e.finished_ms FROM tm_edges d JOIN tm_events e ON e.id = d.from_id \
             WHERE d.to_id = $1 ORDER BY d.seq",
            &[&id.to_string()],
        )?;
        rows.iter()
            .map(|r| {
                let state: String = self.get(r, 1)?;
                Ok(NeedState {
                    id: self.id(r, 0)?,
                    state: self.decode(parse(&state))?,
                    finished_at: self.opt_time(r, 2)?,
                })
            })
            .collect()
    }

    fn dependents(&mut self, id: Uuid) -> Result<Vec<Uuid>> {
        self.ids(
            "SELECT to_id FROM tm_edges WHERE from_id = $1 ORDER BY seq",
            &[&id.to_string()],
        )
    }

    fn delete_campaign(&mut self, campaign: Uuid) -> Result<()> {
        self.flush_bumps()?;
        let c = campaign.to_string();
        self.execute(
            "DELETE FROM tm_audit WHERE event_id IN (SELECT id FROM tm_events WHERE campaign_id = $1)",
            &[&c],
        )?;
        self.execute("DELETE FROM tm_events WHERE campaign_id = $1", &[&c])?;
        self.execute("DELETE FROM tm_campaigns WHERE id = $1", &[&c])
            .map(drop)
    }

    fn delete_event(&mut self, id: Uuid) -> Result<()> {
        let campaign = self.event(id)?.and_then(|e| e.campaign);
        self.execute("DELETE FROM tm_events WHERE id = $1", &[&id.to_string()])?;
        self.bump_revision(campaign)
    }

    fn append_audit(&mut self, e: &NewAuditEntry) -> Result<i64> {
        let unreported = e.action.is_transition().then_some(true);
        self.dirty = true;
        let rows = self.query(
            "INSERT INTO tm_audit (event_id, at_ms, recorded_ms, agent, action, detail, unreported) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq",
            &[
                &e.event.to_string(),
                &ms(e.at),
                &ms(e.recorded_at),
                &e.agent.as_ref().map(|a| a.0.as_str()),
                &e.action.as_str(),
                &e.detail.to_string(),
                &unreported,
            ],
        )?;
        match rows.first() {
            Some(r) => self.get(r, 0),
            None => Err(TMinusError::Store(format!(
                "{}: the audit insert returned no sequence number",
                self.server
            ))),
        }
    }

    fn audit(&mut self, id: Uuid) -> Result<Vec<AuditEntry>> {
        self.audits(
            &format!("SELECT {AUDIT_COLUMNS} FROM tm_audit WHERE event_id = $1 ORDER BY seq"),
            &[&id.to_string()],
        )
    }

    fn audit_since(&mut self, seq: i64, limit: usize) -> Result<Vec<AuditEntry>> {
        self.audits(
            &format!("SELECT {AUDIT_COLUMNS} FROM tm_audit WHERE seq > $1 ORDER BY seq LIMIT $2"),
            &[&seq, &sql_limit(limit)],
        )
    }

    fn latest_audit_seq(&mut self) -> Result<i64> {
        let rows = self.query("SELECT coalesce(max(seq), 0)::bigint FROM tm_audit", &[])?;
        match rows.first() {
            Some(r) => self.get(r, 0),
            None => Ok(0),
        }
    }

    fn claim_reports(&mut self) -> Result<Vec<AuditEntry>> {
        // A conditional update: of two ticks claiming at once, the second
        // finds the rows no longer unreported.
        let mut entries = self.audits(
            &format!(
                "UPDATE tm_audit SET unreported = NULL WHERE unreported RETURNING {AUDIT_COLUMNS}"
            ),
            &[],
        )?;
        entries.sort_by_key(|e| e.seq);
        self.dirty |= !entries.is_empty();
        Ok(entries)
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        self.flush_bumps()?;
        if let (true, Some(channel)) = (self.dirty, self.notify) {
            let channel = channel.to_string();
            self.query("SELECT pg_notify($1, '')", &[&channel])?;
        }
        let (server, lost) = (self.server, self.lost);
        self.tx
            .commit()
            .map_err(|e| note(lost, map_error(server, e)))
    }
}
