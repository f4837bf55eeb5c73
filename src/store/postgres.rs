//! The PostgreSQL store: one shared store for agents on many hosts.
//!
//! Chosen by a connection URL in `--db` or `T_MINUS_DB`
//! (`postgres://user@host:5432/db`). It keeps the same tables as the SQLite
//! store (prefixed `tm_`, in the connection's current schema) and gives the
//! same guarantees:
//!
//! - **Writers side by side, one chain.** A write transaction begins by
//!   reading the schema version under a key-share lock of `tm_meta`'s row
//!   (in `BEGIN`'s round trip), which writers do not contend for. It locks
//!   each event it loads by its row (`SELECT … FOR UPDATE`), so the
//!   engine's read-modify-write of an event sees no interleaved writer and
//!   no answer is lost, while writers on different events run side by
//!   side. Its audit entries wait until its other rows are written; then
//!   it takes the chain's lock (`tm_meta`'s row `FOR NO KEY UPDATE`),
//!   chains them after the head and commits, so sequence numbers are
//!   assigned in commit order (a runner reading "entries after N" never
//!   skips one). Claiming reports is a conditional update (`… WHERE
//!   unreported RETURNING`), so a transition is reported exactly once. A
//!   writer waits at most [`LOCK_TIMEOUT`] for a lock; one the server
//!   aborts to break a deadlock is run again by the engine.
//! - **Reads** are `REPEATABLE READ READ ONLY` snapshots and take no lock.
//! - **Wake-ups.** A committed write sends `NOTIFY` on a channel named after
//!   the schema; a runner `LISTEN`s on it and wakes at once
//!   ([`Store::wait_for_change`]), ignoring its own notifications.
//! - **Migrations** are versioned in `tm_meta.version`, applied in one
//!   transaction that locks `tm_meta`'s row for update (waiting for the
//!   writers in flight); a database with a newer schema is refused
//!   untouched, and every write re-checks the version as it begins.
//! - **Lost connections** are reconnected on the next transaction; `run` and
//!   `wait` retry with backoff (see [`crate::runner`]).
//!
//! Built on the synchronous [`postgres`] crate: the engine is synchronous
//! (one transaction per operation, no async runtime in the library's API),
//! and the crate is the blocking face of `tokio-postgres`, the ecosystem's
//! standard driver. TLS is built in (rustls, see [`super::tls`]): the URL's
//! `sslmode` chooses it; see `docs/postgres.md`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ops::DerefMut;
use std::time::Duration as StdDuration;

use postgres::config::Host;
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{FromSql, IsNull, ToSql, Type};
use postgres::{Client, Config, Row, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::row::Columns;
use super::schema::{self, Migration, MIGRATIONS};
use super::sql::{
    Backend, Pending, SqlTx, Table, Value, ATTENDEES, AUDIT, EDGES, EVENTS, HEAD_SQL,
};
use super::{Location, Store, StoreError, Tx, LISTING_CHUNK};
use crate::error::{Result, TMinusError};

pub use super::schema::SCHEMA_VERSION;

/// What `tm_meta.application` holds in a t-minus store.
const APPLICATION: &str = "t-minus";

/// How long a writer waits for another's transaction (as SQLite's busy
/// timeout).
pub const LOCK_TIMEOUT: StdDuration = StdDuration::from_secs(30);

/// How long connecting may take when the URL sets no `connect_timeout`.
pub const CONNECT_TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// What a write transaction begins with, in one round trip: the
/// transaction, and the schema version read under a key-share lock of
/// `tm_meta`'s row. Writers' key-share locks do not conflict with each
/// other nor with the chain's lock ([`CHAIN_LOCK_SQL`]), but a migration's
/// `FOR UPDATE` waits for every writer in flight and holds off new ones,
/// so a writer sees one schema from start to end.
const BEGIN_WRITE_SQL: &str = "BEGIN ISOLATION LEVEL READ COMMITTED; \
     SELECT application, version FROM tm_meta WHERE id = 1 FOR KEY SHARE";

/// The lock of the audit chain: `tm_meta`'s row, for no-key update. One
/// transaction at a time holds it, from reading the chain's head to its
/// commit, so the log's entries are numbered in commit order.
const CHAIN_LOCK_SQL: &str = "SELECT version FROM tm_meta WHERE id = 1 FOR NO KEY UPDATE";

/// The SQLSTATE of a deadlock the server broke by aborting a transaction.
const DEADLOCK: &str = "40P01";

/// The SQLSTATE of a serialization failure.
const SERIALIZATION: &str = "40001";

/// The PostgreSQL store. Its connection sits in a [`RefCell`], so a read
/// transaction needs only `&self`; one transaction is open at a time.
pub struct PgStore {
    session: RefCell<Session>,
    /// The server, for messages: `postgres://user@host:port/db`, no password.
    server: String,
}

/// The connection of a [`PgStore`] and what belongs to it.
struct Session {
    client: Client,
    config: Config,
    /// TLS as the URL's `sslmode` asks (see [`super::tls`]).
    tls: MakeRustlsConnect,
    /// The server, for messages: `postgres://user@host:port/db`, no password.
    server: String,
    /// Statements this connection has run, by SQL text: prepared
    /// (`Some`) from their second use on, sent unprepared (`None`) the
    /// first time (see [`PgTx::statement`]).
    statements: HashMap<String, Option<Statement>>,
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
    /// use reconnects (see [`Session::ensure_connected`]).
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
        let session = Session::connect(url)?;
        Ok(PgStore {
            server: session.server.clone(),
            session: RefCell::new(session),
        })
    }

    /// The server and database, without the password.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Starts a transaction: a write one takes the store's lock (see the
    /// module documentation), a read one is a read-only snapshot.
    fn begin(&self, write: bool) -> Result<Box<dyn Tx + '_>> {
        let mut session = self.session.try_borrow_mut().map_err(|_| {
            TMinusError::from(StoreError::Failed {
                location: Location::Server(self.server.clone()),
                reason: "a transaction is already open on this connection; finish it before starting another".into(),
            })
        })?;
        session.ensure_connected()?;
        if !write {
            let s = &mut *session;
            s.client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .map_err(|e| s.err(e))?;
            return Ok(Box::new(SqlTx::new(PgTx::new(session, false))));
        }
        let s = &mut *session;
        let begun = s.client.simple_query(BEGIN_WRITE_SQL);
        let messages = begun.map_err(|e| s.err(e))?;
        let mut tx = PgTx::new(session, true);
        tx.write = true;
        let server = tx.session.server.clone();
        let row = messages.iter().find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        });
        let Some(row) = row else {
            return Err(corrupt(&server, "tm_meta has no row".into()));
        };
        let application = row.get(0).unwrap_or_default();
        let version = row.get(1).and_then(|v| v.parse::<i64>().ok());
        let Some(version) = version else {
            return Err(corrupt(&server, "tm_meta has no schema version".into()));
        };
        check_identity(&server, application, version)?;
        Ok(Box::new(SqlTx::new(tx)))
    }
}

impl Session {
    fn connect(url: &str) -> Result<Self> {
        let (config, tls) = parse_config(url)?;
        let server = describe(&config);
        let client = open_client(&config, &tls, &server)?;
        let mut store = Session {
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
        if !store.open_current()? {
            store.set_up_session()?;
            store.migrate()?;
        }
        Ok(store)
    }

    /// Sets the session up and checks that the store is a t-minus store at
    /// this build's migrations, in one round trip; true when it is. False
    /// when anything differs (no tables yet, an older or foreign store):
    /// the caller then takes the long way, which also says what is wrong.
    fn open_current(&mut self) -> Result<bool> {
        let sql = format!(
            "SET lock_timeout = '{}s'; SET idle_in_transaction_session_timeout = 0; \
             SELECT current_schema(), pg_backend_pid(), m.application, m.version, \
             (SELECT string_agg(name, ',' ORDER BY position) FROM tm_migrations) \
             FROM tm_meta m WHERE m.id = 1",
            LOCK_TIMEOUT.as_secs()
        );
        let messages = match self.client.simple_query(&sql) {
            Ok(messages) => messages,
            Err(e) if e.as_db_error().is_some() => return Ok(false),
            Err(e) => return Err(self.err(e)),
        };
        let Some(row) = messages.iter().find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        }) else {
            return Ok(false);
        };
        let (Some(schema), Some(pid), Some(APPLICATION), Some(version)) = (
            row.get(0),
            row.get(1).and_then(|p| p.parse::<i32>().ok()),
            row.get(2),
            row.get(3).and_then(|v| v.parse::<i64>().ok()),
        ) else {
            return Ok(false);
        };
        let recorded: Vec<String> = row
            .get(4)
            .map(|names| names.split(',').map(str::to_string).collect())
            .unwrap_or_default();
        let location = Location::Server(self.server.clone());
        if !matches!(schema::applied(&location, version, &recorded), Ok(n) if n == MIGRATIONS.len())
        {
            return Ok(false);
        }
        self.pid = pid;
        self.channel = channel_name(schema);
        Ok(true)
    }

    /// The error for a failed statement, noting a lost connection.
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
            return Err(StoreError::Open {
                location: Location::Server(self.server.clone()),
                reason:
                    "no schema of the search_path exists, so there is nowhere to keep the tables"
                        .into(),
            }
            .into());
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
        // A store already at this version needs no write transaction.
        if self.identity().map_err(Retry::Fail)? == Some(MIGRATIONS.len()) {
            return Ok(());
        }
        self.client
            .batch_execute(
                "BEGIN; \
                 CREATE TABLE IF NOT EXISTS tm_meta (\
                 id INTEGER PRIMARY KEY CHECK (id = 1), \
                 application TEXT NOT NULL, \
                 version BIGINT NOT NULL); \
                 INSERT INTO tm_meta (id, application, version) VALUES (1, 't-minus', 0) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .map_err(|e| {
                let _ = self.client.batch_execute("ROLLBACK");
                fail(e)
            })?;
        let mut tx = PgTx::new(&mut *self, false);
        let applied = tx.applied().map_err(Retry::Fail)?;
        if applied < MIGRATIONS.len() {
            schema::migrate(&mut tx, applied).map_err(Retry::Fail)?;
            tx.execute(
                "UPDATE tm_meta SET version = $1 WHERE id = 1",
                &[Value::Int(SCHEMA_VERSION)],
            )
            .map_err(Retry::Fail)?;
        }
        tx.commit(true).map_err(Retry::Fail)
    }

    /// How many migrations an existing t-minus store here has applied,
    /// `None` when there is none yet. Refuses foreign stores and stores
    /// another build migrated, reading only.
    fn identity(&mut self) -> Result<Option<usize>> {
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
                return Err(StoreError::NotAStore {
                    location: Location::Server(server.clone()),
                    reason: "its schema has a tm_events table but no tm_meta".into(),
                }
                .into());
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
        // The version is checked with the migration names, below.
        check_identity(&server, &application, 0)?;
        let recorded = if tables.iter().any(|t| t == "tm_migrations") {
            recorded(&mut self.client, &server)?
        } else {
            Vec::new()
        };
        schema::applied(&Location::Server(server.clone()), version, &recorded).map(Some)
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
            return Err(StoreError::Unreachable {
                server: self.server.clone(),
                reason: "the connection to the server was lost".into(),
            }
            .into());
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
}

impl Store for PgStore {
    fn write(&mut self) -> Result<Box<dyn Tx + '_>> {
        self.begin(true)
    }

    fn read(&self) -> Result<Box<dyn Tx + '_>> {
        self.begin(false)
    }

    fn data_version(&mut self) -> Result<i64> {
        self.session.get_mut().data_version()
    }

    fn wait_for_change(&mut self, timeout: StdDuration) -> Result<bool> {
        self.session.get_mut().wait_for_change(timeout)?;
        Ok(true)
    }
}

impl Session {
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

/// Whether `e` is a write the server aborted to break a deadlock between
/// transactions (or a serialization failure): the transaction was rolled
/// back, and running it again may succeed.
pub(crate) fn is_conflict(e: &TMinusError) -> bool {
    match e {
        TMinusError::Store(StoreError::Failed { reason, .. }) => [DEADLOCK, SERIALIZATION]
            .iter()
            .any(|code| reason.ends_with(&format!("[SQLSTATE {code}]"))),
        _ => false,
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

/// The migration names the store recorded, in order.
fn recorded(client: &mut Client, server: &str) -> Result<Vec<String>> {
    let rows = client
        .query("SELECT name FROM tm_migrations ORDER BY position", &[])
        .map_err(|e| map_error(server, e))?;
    rows.iter().map(|r| get(server, r, 0)).collect()
}

/// Refuses a `tm_meta` row that is not a t-minus store's, or is newer.
fn check_identity(server: &str, application: &str, version: i64) -> Result<()> {
    if application != APPLICATION {
        return Err(StoreError::NotAStore {
            location: Location::Server(server.into()),
            reason: format!("its tm_meta table belongs to {application:?}"),
        }
        .into());
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            location: Location::Server(server.into()),
            found: version,
            supported: SCHEMA_VERSION,
        }
        .into());
    }
    Ok(())
}

/// Parses the URL and fills in what libpq users expect from the
/// environment; builds the TLS connector its `sslmode` asks for.
fn parse_config(url: &str) -> Result<(Config, MakeRustlsConnect)> {
    let invalid = |reason: String| StoreError::Open {
        location: Location::Server(redact(url)),
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
    let connector = super::tls::connector(&tls).map_err(|reason| StoreError::Tls {
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

/// Turns a driver error into a store error that names the server.
fn map_error(server: &str, e: postgres::Error) -> TMinusError {
    TMinusError::Store(store_error(server, e))
}

fn store_error(server: &str, e: postgres::Error) -> StoreError {
    let location = || Location::Server(server.to_string());
    let server = server.to_string();
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let reason = match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        };
        return if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            StoreError::Auth { server, reason }
        } else if *code == SqlState::INVALID_CATALOG_NAME {
            StoreError::DatabaseMissing { server, reason }
        } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION
            || *code == SqlState::INSUFFICIENT_PRIVILEGE
        {
            StoreError::ReadOnly {
                location: location(),
                reason,
            }
        } else if *code == SqlState::LOCK_NOT_AVAILABLE {
            StoreError::Busy {
                location: location(),
                reason,
                waited: LOCK_TIMEOUT,
            }
        } else if code.code().starts_with("08")
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::TOO_MANY_CONNECTIONS
        {
            StoreError::Unreachable { server, reason }
        } else {
            StoreError::Failed {
                location: location(),
                reason: format!("{reason} [SQLSTATE {}]", code.code()),
            }
        };
    }
    let reason = describe_error(&e);
    // A refused certificate comes wrapped in an I/O error: tell it apart
    // from a network failure, which is worth retrying and this is not.
    if reason.contains("TLS") {
        return StoreError::Tls { server, reason };
    }
    if reason.starts_with("invalid configuration") {
        return StoreError::Open {
            location: location(),
            reason,
        };
    }
    let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
    if e.is_closed() || io || reason.contains("connect") || reason.contains("timeout") {
        StoreError::Unreachable { server, reason }
    } else {
        StoreError::Failed {
            location: location(),
            reason,
        }
    }
}

/// Remembers in `lost` that the caller is told of a lost connection (so
/// that [`Session::ensure_connected`] reconnects rather than tells again).
fn note(lost: &Cell<bool>, e: TMinusError) -> TMinusError {
    if e.is_transient() {
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

/// Reads column `i`, mapping a type mismatch to a corrupt-store error.
fn get<'a, T: FromSql<'a>>(server: &str, row: &'a Row, i: usize) -> Result<T> {
    row.try_get(i)
        .map_err(|e| corrupt(server, describe_error(&e)))
}

fn corrupt(server: &str, reason: String) -> TMinusError {
    TMinusError::Store(StoreError::Corrupt {
        location: Location::Server(server.into()),
        reason,
    })
}

/// The prepared statement of `sql` on this connection, prepared at its
/// second use; `None` at its first, which is then sent unprepared with
/// its parameters' types ([`Client::query_typed`]): one round trip instead
/// of two, and nothing for a short-lived process to prepare that it runs
/// once. A statement run again (a long-lived service, a bulk `apply`) is
/// parsed and planned once.
fn prepare(
    client: &mut impl postgres::GenericClient,
    cache: &mut HashMap<String, Option<Statement>>,
    sql: &str,
) -> std::result::Result<Option<Statement>, postgres::Error> {
    match cache.get_mut(sql) {
        Some(Some(stmt)) => Ok(Some(stmt.clone())),
        Some(slot) => {
            let stmt = client.prepare(sql)?;
            *slot = Some(stmt.clone());
            Ok(Some(stmt))
        }
        None => {
            cache.insert(sql.to_string(), None);
            Ok(None)
        }
    }
}

/// An open transaction of a PostgreSQL store, holding its connection: the
/// PostgreSQL [`Backend`]. Begun with `BEGIN`, ended by
/// [`Backend::commit`] or, when dropped without it, `ROLLBACK`.
struct PgTx<S: DerefMut<Target = Session>> {
    session: S,
    /// Whether the transaction is still open (to roll back when dropped).
    open: bool,
    /// Whether to notify the store's channel on commit (write transactions).
    notify: bool,
    /// Whether this is a write transaction, which locks the rows of the
    /// events it loads and takes the chain's lock to append to the log.
    write: bool,
    /// Rows inserted so far, and the count at which to refresh the
    /// planner's statistics next (see [`PgTx::inserted`]).
    inserted: u64,
    next_analyze: u64,
}

/// Rows per multi-row insert.
const INSERT_CHUNK: usize = 2000;

/// Rows a transaction inserts before it refreshes the planner's statistics
/// (then four times as many, and so on).
const ANALYZE_AFTER: u64 = 1000;

impl<S: DerefMut<Target = Session>> Drop for PgTx<S> {
    fn drop(&mut self) {
        if self.open {
            // A failure here means the connection is gone, and the server
            // rolled the transaction back with it.
            let _ = self.session.client.batch_execute("ROLLBACK");
        }
    }
}

impl<S: DerefMut<Target = Session>> PgTx<S> {
    /// The transaction begun on `session`; `notify`: tell listeners of
    /// its writes.
    fn new(session: S, notify: bool) -> Self {
        PgTx {
            session,
            open: true,
            notify,
            write: false,
            inserted: 0,
            next_analyze: ANALYZE_AFTER,
        }
    }

    fn err(&self, e: postgres::Error) -> TMinusError {
        self.session.err(e)
    }

    /// The statement for `sql`, prepared from its second use on this
    /// connection (see [`prepare`]).
    fn statement(&mut self, sql: &str) -> Result<Option<Statement>> {
        let s = &mut *self.session;
        prepare(&mut s.client, &mut s.statements, sql).map_err(|e| s.err(e))
    }

    fn rows(&mut self, sql: &str, params: &[(&(dyn ToSql + Sync), Type)]) -> Result<Vec<Row>> {
        let rows = match self.statement(sql)? {
            Some(stmt) => {
                let values: Vec<_> = params.iter().map(|(v, _)| *v).collect();
                self.session.client.query(&stmt, &values)
            }
            None => self.session.client.query_typed(sql, params),
        };
        rows.map_err(|e| self.err(e))
    }

    fn run(&mut self, sql: &str, params: &[(&(dyn ToSql + Sync), Type)]) -> Result<u64> {
        let changed = match self.statement(sql)? {
            Some(stmt) => {
                let values: Vec<_> = params.iter().map(|(v, _)| *v).collect();
                self.session.client.execute(&stmt, &values)
            }
            None => self.session.client.execute_typed(sql, params),
        };
        changed.map_err(|e| self.err(e))
    }

    /// Counts inserted rows. A transaction that inserts thousands (the
    /// first `apply` of a large manifest) refreshes the statistics of the
    /// tables it fills as it goes: planned from a store that was empty when
    /// it began, every `needs` lookup would scan the whole growing table,
    /// making the apply quadratic. `ANALYZE` counts the transaction's own
    /// rows and makes the cached plans be planned again; it runs at 1,000
    /// rows, 4,000, 16,000…, so O(log n) times.
    fn inserted(&mut self, rows: usize) -> Result<()> {
        self.inserted += rows as u64;
        if self.inserted >= self.next_analyze {
            while self.next_analyze <= self.inserted {
                self.next_analyze *= 4;
            }
            let analyzed = self
                .session
                .client
                .batch_execute("ANALYZE tm_events, tm_attendees, tm_edges");
            analyzed.map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Takes the store's write lock (the row of `tm_meta`) and returns how
    /// many migrations the store has applied, refusing one another build
    /// migrated.
    fn applied(&mut self) -> Result<usize> {
        let server = self.session.server.clone();
        let row = self.rows(
            "SELECT application, version, to_regclass('tm_migrations') IS NOT NULL \
             FROM tm_meta WHERE id = 1 FOR UPDATE",
            &[],
        )?;
        let row = row
            .first()
            .ok_or_else(|| corrupt(&server, "tm_meta has no row".into()))?;
        let application: String = get(&server, row, 0)?;
        let version: i64 = get(&server, row, 1)?;
        // The version is checked with the migration names, below.
        check_identity(&server, &application, 0)?;
        let recorded = if get(&server, row, 2)? {
            recorded(&mut self.session.client, &server)?
        } else {
            Vec::new()
        };
        schema::applied(&Location::Server(server), version, &recorded)
    }
}

/// A column of rows to insert, as a typed array.
#[derive(Debug)]
enum Column<'a> {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<&'a str>>),
    Bool(Vec<Option<bool>>),
    Uuid(Vec<Option<uuid::Uuid>>),
    Bytes(Vec<Option<&'a [u8]>>),
}

impl<'a> Column<'a> {
    /// The column of `kind` (as [`Table::kinds`] says it) holding `cells`.
    fn new(kind: char, cells: impl Iterator<Item = &'a Value>) -> Self {
        match kind {
            'i' => Column::Int(
                cells
                    .map(|v| {
                        if let Value::Int(n) = v {
                            Some(*n)
                        } else {
                            None
                        }
                    })
                    .collect(),
            ),
            'b' => Column::Bool(
                cells
                    .map(|v| {
                        if let Value::Bool(b) = v {
                            Some(*b)
                        } else {
                            None
                        }
                    })
                    .collect(),
            ),
            'u' => Column::Uuid(
                cells
                    .map(|v| {
                        if let Value::Id(id) = v {
                            Some(*id)
                        } else {
                            None
                        }
                    })
                    .collect(),
            ),
            'x' => Column::Bytes(
                cells
                    .map(|v| match v {
                        Value::Bytes(b) => Some(b.as_slice()),
                        Value::Text(s) => Some(s.as_bytes()),
                        _ => None,
                    })
                    .collect(),
            ),
            _ => Column::Text(
                cells
                    .map(|v| {
                        if let Value::Text(s) = v {
                            Some(s.as_str())
                        } else {
                            None
                        }
                    })
                    .collect(),
            ),
        }
    }
}

impl Column<'_> {
    /// The array type the column is sent as.
    fn pg_type(&self) -> Type {
        match self {
            Column::Int(_) => Type::INT8_ARRAY,
            Column::Text(_) => Type::TEXT_ARRAY,
            Column::Bool(_) => Type::BOOL_ARRAY,
            Column::Uuid(_) => Type::UUID_ARRAY,
            Column::Bytes(_) => Type::BYTEA_ARRAY,
        }
    }
}

impl ToSql for Column<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Column::Int(v) => v.to_sql_checked(ty, out),
            Column::Text(v) => v.to_sql_checked(ty, out),
            Column::Bool(v) => v.to_sql_checked(ty, out),
            Column::Uuid(v) => v.to_sql_checked(ty, out),
            Column::Bytes(v) => v.to_sql_checked(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) => v.to_sql_checked(ty, out),
            Value::Text(v) => v.to_sql_checked(ty, out),
            Value::Bool(v) => v.to_sql_checked(ty, out),
            Value::Texts(v) => v.to_sql_checked(ty, out),
            Value::Id(v) => v.to_sql_checked(ty, out),
            Value::Ids(v) => v.to_sql_checked(ty, out),
            Value::Bytes(v) => v.to_sql_checked(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

impl Value {
    /// The type a parameter holding this value is declared with when its
    /// statement is sent unprepared: the only type its value encodes to
    /// (see the [`ToSql`] impls of its contents), so the statement means
    /// what it means prepared; `unknown` for `NULL`, which the server then
    /// infers from the statement as it does when preparing.
    fn pg_type(&self) -> Type {
        match self {
            Value::Null => Type::UNKNOWN,
            Value::Int(_) => Type::INT8,
            Value::Text(_) => Type::TEXT,
            Value::Bool(_) => Type::BOOL,
            Value::Texts(_) => Type::TEXT_ARRAY,
            Value::Id(_) => Type::UUID,
            Value::Ids(_) => Type::UUID_ARRAY,
            Value::Bytes(_) => Type::BYTEA,
        }
    }
}

/// The parameters as the driver takes them, with their types.
fn bind(params: &[Value]) -> Vec<(&(dyn ToSql + Sync), Type)> {
    params
        .iter()
        .map(|p| (p as &(dyn ToSql + Sync), p.pg_type()))
        .collect()
}

/// A result row of the PostgreSQL store, read by column position; a
/// column of the wrong type, or a value that does not decode, is a corrupt
/// store.
struct PgColumns<'r> {
    row: &'r Row,
    server: &'r str,
}

impl PgColumns<'_> {
    fn get<'a, T: FromSql<'a>>(&'a self, i: usize) -> Result<T> {
        get(self.server, self.row, i)
    }
}

impl Columns for PgColumns<'_> {
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
        self.get(i)
    }

    fn opt_str(&self, i: usize) -> Result<Option<&str>> {
        self.get(i)
    }

    fn flag(&self, i: usize) -> Result<bool> {
        self.get(i)
    }

    fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>> {
        self.get(i)
    }

    fn id(&self, i: usize) -> Result<uuid::Uuid> {
        self.get(i)
    }

    fn opt_id(&self, i: usize) -> Result<Option<uuid::Uuid>> {
        self.get(i)
    }

    fn invalid(&self, reason: String) -> TMinusError {
        corrupt(self.server, reason)
    }
}

impl<S: DerefMut<Target = Session>> Backend for PgTx<S> {
    type Row<'r> = PgColumns<'r>;

    const KEEP_EVENTS: bool = true;

    const EVENT_SEQ: &'static str = "seq";

    const WRITER_ALONE: bool = false;

    fn locks_rows(&self) -> bool {
        self.write
    }

    fn lock_chain(&mut self) -> Result<()> {
        if self.write {
            self.run(CHAIN_LOCK_SQL, &[])?;
        }
        Ok(())
    }

    /// The lock and the head in one round trip: two statements of one
    /// simple query, the second with a snapshot taken after the first
    /// has the lock (each statement of a `READ COMMITTED` transaction
    /// takes its own), so it sees the entries of the lock's last holder.
    fn chain_head(&mut self) -> Result<Option<String>> {
        if !self.write {
            let mut head = None;
            self.query(HEAD_SQL, &[], |r| {
                head = super::row::opt_hash(r, 0)?;
                Ok(())
            })?;
            return Ok(head);
        }
        let s = &mut *self.session;
        let messages = s
            .client
            .simple_query(&format!(
                "{CHAIN_LOCK_SQL}; SELECT encode(hash, 'hex') FROM tm_audit \
                 ORDER BY seq DESC LIMIT 1"
            ))
            .map_err(|e| s.err(e))?;
        // The rows after the first statement's completion are the head's.
        let head = messages
            .iter()
            .skip_while(|m| !matches!(m, postgres::SimpleQueryMessage::CommandComplete(_)))
            .find_map(|m| match m {
                postgres::SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_string)),
                _ => None,
            });
        Ok(head.flatten())
    }

    fn query(
        &mut self,
        sql: &str,
        params: &[Value],
        mut each: impl FnMut(&PgColumns<'_>) -> Result<()>,
    ) -> Result<()> {
        let rows = self.rows(sql, &bind(params))?;
        let server = &self.session.server;
        for row in &rows {
            each(&PgColumns { row, server })?;
        }
        Ok(())
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        self.run(sql, &bind(params))
    }

    /// Reads the rows through a server-side cursor, [`LISTING_CHUNK`] rows
    /// a fetch.
    fn scan(
        &mut self,
        sql: &str,
        params: &[Value],
        mut each: impl FnMut(&mut Self, &PgColumns<'_>) -> Result<()>,
    ) -> Result<()> {
        self.rows(
            &format!("DECLARE tm_listing NO SCROLL CURSOR FOR {sql}"),
            &bind(params),
        )?;
        let fetch = format!("FETCH {LISTING_CHUNK} FROM tm_listing");
        let server = self.session.server.clone();
        let scanned = (|| -> Result<()> {
            loop {
                // Never prepared: a prepared `FETCH` keeps the columns of the
                // cursor it was first prepared for, and the next listing's
                // cursor, of the same name, may have others.
                let rows = self
                    .session
                    .client
                    .query_typed(&fetch, &[])
                    .map_err(|e| self.err(e))?;
                for row in &rows {
                    each(
                        self,
                        &PgColumns {
                            row,
                            server: &server,
                        },
                    )?;
                }
                if rows.len() < LISTING_CHUNK {
                    return Ok(());
                }
            }
        })();
        let closed = self.session.client.batch_execute("CLOSE tm_listing");
        scanned?;
        closed.map_err(|e| self.err(e))
    }

    fn is_full(p: &Pending) -> bool {
        let rows = |values: &Vec<Value>, table: &Table| values.len() / table.kinds.len();
        rows(&p.events, &EVENTS) + rows(&p.attendees, &ATTENDEES) + rows(&p.edges, &EDGES)
            >= INSERT_CHUNK
            || rows(&p.audits, &AUDIT) >= INSERT_CHUNK
    }

    /// One `INSERT … SELECT FROM unnest(…)` per [`INSERT_CHUNK`] rows, a
    /// typed array a column: inserting the 10,000 events of a manifest
    /// costs a few round trips instead of some 70,000. `WITH ORDINALITY`
    /// keeps the rows' order, so that `seq` follows the audit chain.
    fn insert(&mut self, table: &Table, values: Vec<Value>) -> Result<()> {
        let width = table.kinds.len();
        let arrays: Vec<String> = (table.kinds.chars().enumerate())
            .map(|(i, kind)| match kind {
                'i' => format!("${}::int8[]", i + 1),
                'b' => format!("${}::bool[]", i + 1),
                'u' => format!("${}::uuid[]", i + 1),
                'x' => format!("${}::bytea[]", i + 1),
                _ => format!("${}::text[]", i + 1),
            })
            .collect();
        let sql = format!(
            "INSERT INTO {name} ({columns}) SELECT {columns} FROM unnest({arrays}) \
             WITH ORDINALITY AS t({columns}, bulk_order) ORDER BY bulk_order{skip}",
            name = table.name,
            columns = table.columns,
            arrays = arrays.join(", "),
            skip = if table.skip_existing {
                " ON CONFLICT DO NOTHING"
            } else {
                ""
            }
        );
        for chunk in values.chunks(width * INSERT_CHUNK) {
            let columns: Vec<Column<'_>> = (table.kinds.chars().enumerate())
                .map(|(i, kind)| Column::new(kind, chunk.iter().skip(i).step_by(width)))
                .collect();
            let params: Vec<(&(dyn ToSql + Sync), Type)> = columns
                .iter()
                .map(|c| (c as &(dyn ToSql + Sync), c.pg_type()))
                .collect();
            self.run(&sql, &params)?;
        }
        if table.name != AUDIT.name {
            self.inserted(values.len() / width)?;
        }
        Ok(())
    }

    fn migrate_script(&mut self, migration: &Migration) -> Result<()> {
        let s = &mut *self.session;
        s.client
            .batch_execute(migration.postgres)
            .map_err(|e| s.err(e))
    }

    /// Notifies the store's channel (when the transaction wrote) and
    /// commits, in one round trip.
    fn commit(mut self, changed: bool) -> Result<()> {
        let channel = &self.session.channel;
        let sql = if changed && self.notify && !channel.contains('\\') {
            format!(
                "SELECT pg_notify('{}', ''); COMMIT",
                channel.replace('\'', "''")
            )
        } else if changed && self.notify {
            let channel = channel.clone();
            self.run("SELECT pg_notify($1, '')", &[(&channel, Type::TEXT)])?;
            "COMMIT".to_string()
        } else {
            "COMMIT".to_string()
        };
        self.open = false;
        let committed = self.session.client.batch_execute(&sql);
        committed.map_err(|e| {
            // A failed notification leaves the transaction open: end it.
            let _ = self.session.client.batch_execute("ROLLBACK");
            self.err(e)
        })
    }
}
