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
//! standard driver. TLS is built in (rustls, see [`super::tls`]): the URL's
//! `sslmode` chooses it; see `docs/postgres.md`.

use std::cell::{Cell, RefCell, RefMut};
use std::collections::HashMap;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use postgres::config::Host;
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{FromSql, ToSql};
use postgres::{Client, Config, Row, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;
use uuid::Uuid;

use super::notify_row::{self, DeliveryRow, DELIVERY_COLUMNS};
use super::row::{
    self, ms, opt_time, read_attendee, read_audit, read_audit_link, read_campaign, read_event,
    read_event_attendee, read_finished, read_listed, read_member, read_need, read_need_name,
    status_columns, AuditColumns, CampaignColumns, Columns, EventRow, ANSWERED_ATTENDEES,
    ATTENDEE_COLUMNS, AUDIT_COLUMNS, AUDIT_LINK_COLUMNS, CAMPAIGN_COLUMNS, EVENT_ATTENDEE_COLUMNS,
    EVENT_COLUMNS, FINISHED_EVENTS,
};
use super::written::Written;
use super::{
    chain_links, CampaignRow, EventFilter, ListedEvent, NeedState, NewAuditEntry, SignedAnswer,
    Store, StoredLink, StoredOutcomes, StoredSigners, Tx, LISTING_CHUNK,
};
use super::{Location, StoreError};
use crate::agent::AgentId;
use crate::audit::AuditEntry;
use crate::error::{Result, TMinusError};
use crate::event::TMinusEvent;
use crate::notify::{Delivery, NotifyRule, Reminder};
use crate::state::{EventState, ResponseStatus};

/// The migrations, in order; `tm_meta.version` is the number applied.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/postgres/0001_initial.sql"),
    include_str!("migrations/postgres/0002_campaign_due.sql"),
    include_str!("migrations/postgres/0003_quorum_groups.sql"),
    include_str!("migrations/postgres/0004_notify.sql"),
    include_str!("migrations/postgres/0005_inbox.sql"),
    include_str!("migrations/postgres/0006_audit_chain.sql"),
    include_str!("migrations/postgres/0007_signers.sql"),
    include_str!("migrations/postgres/0008_listing_order.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The schema version that adds the audit chain.
const CHAIN_VERSION: i64 = 6;

/// Chains the entries written before the audit chain existed, in `seq`
/// order, a batch at a time.
fn chain_existing(
    tx: &mut postgres::Transaction<'_>,
    server: &str,
) -> std::result::Result<(), Retry> {
    let fail = |e: postgres::Error| Retry::Fail(map_error(server, e));
    let select =
        format!("SELECT {AUDIT_COLUMNS} FROM tm_audit WHERE seq > $1 ORDER BY seq LIMIT 1000");
    let mut head: Option<String> = None;
    let mut after = 0i64;
    loop {
        let rows = tx.query(select.as_str(), &[&after]).map_err(fail)?;
        if rows.is_empty() {
            return Ok(());
        }
        for row in &rows {
            let entry = read_audit(&PgColumns { row, server }).map_err(Retry::Fail)?;
            let (prev, hash) = chain_links(head.as_deref(), &entry, None);
            tx.execute(
                "UPDATE tm_audit SET prev = $2, hash = $3 WHERE seq = $1",
                &[&entry.seq, &prev, &hash],
            )
            .map_err(fail)?;
            head = Some(hash);
            after = entry.seq;
        }
    }
}

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
        let s = &mut *session;
        let lock = if write {
            Some(prepare(&mut s.client, &mut s.statements, LOCK_SQL).map_err(|e| s.err(e))?)
        } else {
            None
        };
        let start = if write {
            "BEGIN ISOLATION LEVEL READ COMMITTED"
        } else {
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        };
        s.client.batch_execute(start).map_err(|e| s.err(e))?;
        let mut tx = PgTx {
            session,
            open: true,
            notify: write,
            dirty: false,
            bumps: HashMap::new(),
            inserted: 0,
            next_analyze: ANALYZE_AFTER,
            pending: Pending::default(),
            written: Written::keeping_events(),
        };
        if let Some(lock) = lock {
            let s = &mut *tx.session;
            let row = s.client.query_one(&lock, &[]).map_err(|e| s.err(e))?;
            let version: i64 = get(&s.server, &row, 0)?;
            check_identity(&s.server, APPLICATION, version)?;
        }
        Ok(Box::new(tx))
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
        store.set_up_session()?;
        store.migrate()?;
        Ok(store)
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
            if version < CHAIN_VERSION {
                chain_existing(&mut tx, &server)?;
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

/// The name of an event's campaign, as a column after [`EVENT_COLUMNS`].
const CAMPAIGN_NAME: &str =
    "(SELECT c.name FROM tm_campaigns c WHERE c.id = tm_events.campaign_id)";

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
    TMinusError::Store(StoreError::Corrupt {
        location: Location::Server(server.into()),
        reason,
    })
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

/// One transaction on a [`PgStore`], holding its connection: begun with
/// `BEGIN`, ended by [`Tx::commit`] or, when dropped without it, `ROLLBACK`.
struct PgTx<'c> {
    session: RefMut<'c, Session>,
    /// Whether the transaction is still open (to roll back when dropped).
    open: bool,
    /// Whether to notify the store's channel on commit (write transactions).
    notify: bool,
    /// Whether anything was written.
    dirty: bool,
    /// Revision bumps not yet written, by campaign id (see
    /// [`PgTx::bump_revision`]).
    bumps: HashMap<String, i64>,
    /// Rows inserted so far, and the count at which to refresh the
    /// planner's statistics next (see [`PgTx::inserted`]).
    inserted: u64,
    next_analyze: u64,
    /// Inserts not sent yet (see [`PgTx::flush`]).
    pending: Pending,
    /// What this transaction knows of rows it wrote itself (see
    /// [`Written`]).
    written: Written,
}

/// Rows a write transaction has inserted but not yet sent to the server.
/// They go out together, one multi-row `INSERT … SELECT FROM unnest(…)` a
/// table, before the next statement of any other kind and at commit:
/// inserting the 10,000 events of a manifest costs a few round trips
/// instead of some 70,000.
#[derive(Default)]
struct Pending {
    /// Event rows with their `campaign_pos`.
    events: Vec<(EventRow, Option<i64>)>,
    /// Attendee rows: event id, position, agent, status, deferral.
    attendees: Vec<(String, i64, String, &'static str, Option<i64>)>,
    /// Edge rows: campaign, from, to.
    edges: Vec<(String, String, String)>,
    /// Audit rows with their chain links.
    audits: Vec<(
        super::row::AuditColumns,
        String,
        String,
        Option<SignedAnswer>,
    )>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.attendees.is_empty()
            && self.edges.is_empty()
            && self.audits.is_empty()
    }

    fn rows(&self) -> usize {
        self.events.len() + self.attendees.len() + self.edges.len()
    }
}

/// Rows per multi-row insert.
const INSERT_CHUNK: usize = 2000;

/// Rows a transaction inserts before it refreshes the planner's statistics
/// (then four times as many, and so on).
const ANALYZE_AFTER: u64 = 1000;

type Params<'p> = [&'p (dyn ToSql + Sync)];

impl Drop for PgTx<'_> {
    fn drop(&mut self) {
        if self.open {
            // A failure here means the connection is gone, and the server
            // rolled the transaction back with it.
            let _ = self.session.client.batch_execute("ROLLBACK");
        }
    }
}

impl PgTx<'_> {
    fn err(&self, e: postgres::Error) -> TMinusError {
        self.session.err(e)
    }

    /// The statement for `sql`, prepared once per connection. The inserts
    /// still pending go first, so that every statement sees them.
    fn statement(&mut self, sql: &str) -> Result<Statement> {
        self.flush()?;
        let s = &mut *self.session;
        prepare(&mut s.client, &mut s.statements, sql).map_err(|e| s.err(e))
    }

    fn query(&mut self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>> {
        let stmt = self.statement(sql)?;
        let rows = self.session.client.query(&stmt, params);
        rows.map_err(|e| self.err(e))
    }

    fn query_opt(&mut self, sql: &str, params: &Params<'_>) -> Result<Option<Row>> {
        let stmt = self.statement(sql)?;
        let row = self.session.client.query_opt(&stmt, params);
        row.map_err(|e| self.err(e))
    }

    fn execute(&mut self, sql: &str, params: &Params<'_>) -> Result<u64> {
        let stmt = self.statement(sql)?;
        let changed = self.session.client.execute(&stmt, params);
        let changed = changed.map_err(|e| self.err(e))?;
        // Only a change is news for the runners listening.
        self.dirty |= changed > 0;
        Ok(changed)
    }

    fn get<'a, T: FromSql<'a>>(&self, row: &'a Row, i: usize) -> Result<T> {
        get(&self.session.server, row, i)
    }

    /// Counts an inserted row. A transaction that inserts thousands (the
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

    /// Sends the pending inserts: events, then attendees, edges and audit
    /// entries, each table in one statement per [`INSERT_CHUNK`] rows, in
    /// the order they were made (so `seq` numbers come out as if inserted
    /// one by one).
    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let rows = pending.rows();
        for chunk in pending.events.chunks(INSERT_CHUNK) {
            let col = |f: fn(&EventRow) -> Option<String>| -> Vec<Option<String>> {
                chunk.iter().map(|(r, _)| f(r)).collect()
            };
            let int = |f: fn(&EventRow) -> Option<i64>| -> Vec<Option<i64>> {
                chunk.iter().map(|(r, _)| f(r)).collect()
            };
            let id = col(|r| Some(r.id.clone()));
            let campaign = col(|r| r.campaign_id.clone());
            let name = col(|r| r.name.clone());
            let kind = col(|r| Some(r.kind.clone()));
            let description = col(|r| r.description.clone());
            let at = int(|r| r.at_ms);
            let offset = int(|r| r.offset_ms);
            let start = int(|r| r.start_ms);
            let t_minus = int(|r| Some(r.t_minus_ms));
            let defer = int(|r| Some(r.defer_ms));
            let max_defer = int(|r| r.max_defer_ms);
            let quorum = int(|r| Some(r.quorum));
            let quorum_spec = col(|r| Some(r.quorum_spec.clone()));
            let fire_policy = col(|r| Some(r.fire_policy.clone()));
            let organizer = col(|r| Some(r.organizer.clone()));
            let payload = col(|r| Some(r.payload.clone()));
            let state = col(|r| Some(r.state.clone()));
            let finished = int(|r| r.finished_ms);
            let created = int(|r| Some(r.created_ms));
            let last_response = int(|r| r.last_response_ms);
            let groups = col(|r| r.groups.clone());
            let fire = int(|r| r.fire_ms);
            let pos: Vec<Option<i64>> = chunk.iter().map(|(_, p)| *p).collect();
            self.execute(
                &format!(
                    "INSERT INTO tm_events ({EVENT_COLUMNS}, fire_ms, campaign_pos) \
                     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], \
                     $5::text[], $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[], \
                     $11::int8[], $12::int8[], $13::text[], $14::text[], $15::text[], \
                     $16::text[], $17::text[], $18::int8[], $19::int8[], $20::int8[], \
                     $21::text[], $22::int8[], $23::int8[])"
                ),
                &[
                    &id,
                    &campaign,
                    &name,
                    &kind,
                    &description,
                    &at,
                    &offset,
                    &start,
                    &t_minus,
                    &defer,
                    &max_defer,
                    &quorum,
                    &quorum_spec,
                    &fire_policy,
                    &organizer,
                    &payload,
                    &state,
                    &finished,
                    &created,
                    &last_response,
                    &groups,
                    &fire,
                    &pos,
                ],
            )?;
        }
        for chunk in pending.attendees.chunks(INSERT_CHUNK) {
            let event: Vec<&str> = chunk.iter().map(|a| a.0.as_str()).collect();
            let position: Vec<i64> = chunk.iter().map(|a| a.1).collect();
            let agent: Vec<&str> = chunk.iter().map(|a| a.2.as_str()).collect();
            let status: Vec<&str> = chunk.iter().map(|a| a.3).collect();
            let defer: Vec<Option<i64>> = chunk.iter().map(|a| a.4).collect();
            self.execute(
                "INSERT INTO tm_attendees (event_id, position, agent, status, defer_ms, responded_ms) \
                 SELECT e, p, a, s, d, NULL FROM \
                 unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::int8[]) AS t(e, p, a, s, d)",
                &[&event, &position, &agent, &status, &defer],
            )?;
        }
        for chunk in pending.edges.chunks(INSERT_CHUNK) {
            let campaign: Vec<&str> = chunk.iter().map(|e| e.0.as_str()).collect();
            let from: Vec<&str> = chunk.iter().map(|e| e.1.as_str()).collect();
            let to: Vec<&str> = chunk.iter().map(|e| e.2.as_str()).collect();
            self.execute(
                "INSERT INTO tm_edges (campaign_id, from_id, to_id) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) \
                 ON CONFLICT (from_id, to_id) DO NOTHING",
                &[&campaign, &from, &to],
            )?;
        }
        for chunk in pending.audits.chunks(INSERT_CHUNK) {
            let event: Vec<&str> = chunk.iter().map(|a| a.0.event_id.as_str()).collect();
            let at: Vec<i64> = chunk.iter().map(|a| a.0.at_ms).collect();
            let recorded: Vec<i64> = chunk.iter().map(|a| a.0.recorded_ms).collect();
            let agent: Vec<Option<&str>> = chunk.iter().map(|a| a.0.agent.as_deref()).collect();
            let action: Vec<&str> = chunk.iter().map(|a| a.0.action).collect();
            let detail: Vec<&str> = chunk.iter().map(|a| a.0.detail.as_str()).collect();
            let unreported: Vec<Option<bool>> = chunk
                .iter()
                .map(|a| a.0.unreported.then_some(true))
                .collect();
            let prev: Vec<&str> = chunk.iter().map(|a| a.1.as_str()).collect();
            let hash: Vec<&str> = chunk.iter().map(|a| a.2.as_str()).collect();
            let message: Vec<Option<&str>> = chunk
                .iter()
                .map(|a| a.3.as_ref().map(|s| s.message.as_str()))
                .collect();
            let signature: Vec<Option<&str>> = chunk
                .iter()
                .map(|a| a.3.as_ref().map(|s| s.signature.as_str()))
                .collect();
            // In the order written (ORDER BY the position), so that `seq`
            // follows the chain.
            self.execute(
                "INSERT INTO tm_audit (event_id, at_ms, recorded_ms, agent, action, detail, \
                 unreported, prev, hash, message, signature) \
                 SELECT event_id, at_ms, recorded_ms, agent, action, detail, unreported, prev, \
                 hash, message, signature \
                 FROM unnest($1::text[], $2::int8[], $3::int8[], $4::text[], $5::text[], \
                 $6::text[], $7::bool[], $8::text[], $9::text[], $10::text[], $11::text[]) \
                 WITH ORDINALITY AS t(event_id, at_ms, recorded_ms, agent, action, detail, \
                 unreported, prev, hash, message, signature, position) \
                 ORDER BY position",
                &[
                    &event,
                    &at,
                    &recorded,
                    &agent,
                    &action,
                    &detail,
                    &unreported,
                    &prev,
                    &hash,
                    &message,
                    &signature,
                ],
            )?;
        }
        self.inserted(rows)
    }

    /// The next `campaign_pos` in `campaign`.
    fn next_pos(&mut self, campaign: &str) -> Result<i64> {
        if let Some(pos) = self.written.next_pos.get_mut(campaign) {
            *pos += 1;
            return Ok(*pos - 1);
        }
        let rows = self.query(
            "SELECT coalesce(max(campaign_pos), 0) + 1 FROM tm_events WHERE campaign_id = $1",
            &[&campaign],
        )?;
        let pos: i64 = match rows.first() {
            Some(r) => self.get(r, 0)?,
            None => 1,
        };
        self.written.next_pos.insert(campaign.to_string(), pos + 1);
        Ok(pos)
    }

    /// `row`, read by column position.
    fn cols<'r>(&'r self, row: &'r Row) -> PgColumns<'r> {
        PgColumns {
            row,
            server: &self.session.server,
        }
    }

    fn ids(&mut self, sql: &str, params: &Params<'_>) -> Result<Vec<Uuid>> {
        let rows = self.query(sql, params)?;
        rows.iter().map(|r| self.cols(r).id(0)).collect()
    }

    fn with_attendees(&mut self, mut event: TMinusEvent) -> Result<TMinusEvent> {
        let id = event.id.to_string();
        let rows = self.query(
            &format!(
                "SELECT {ATTENDEE_COLUMNS} FROM tm_attendees WHERE event_id = $1 ORDER BY position"
            ),
            &[&id],
        )?;
        event.attendees = rows
            .iter()
            .map(|r| read_attendee(&self.cols(r), 0))
            .collect::<Result<_>>()?;
        Ok(event)
    }

    /// The events `sql` selects ([`EVENT_COLUMNS`] and [`CAMPAIGN_NAME`]),
    /// with their attendees: two queries however many events (a round trip
    /// per event would dominate a listing).
    fn events(&mut self, sql: &str, params: &Params<'_>) -> Result<Vec<TMinusEvent>> {
        let rows = self.query(sql, params)?;
        let events = rows
            .iter()
            .map(|r| read_listed(&self.cols(r)))
            .collect::<Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(events.len());
        self.hand_on(events, &mut |listed| {
            out.push(listed.event);
            Ok(())
        })?;
        Ok(out)
    }

    /// Streams the listing `sql` selects ([`EVENT_COLUMNS`] and
    /// [`CAMPAIGN_NAME`]) to `visit` through a server-side cursor, fetching
    /// [`LISTING_CHUNK`] rows at a time; each chunk's attendees and needs
    /// are read in one query each.
    fn scan(
        &mut self,
        sql: &str,
        params: &Params<'_>,
        visit: &mut dyn FnMut(ListedEvent) -> Result<()>,
    ) -> Result<()> {
        self.query(
            &format!("DECLARE tm_listing NO SCROLL CURSOR FOR {sql}"),
            params,
        )?;
        let fetch = format!("FETCH {LISTING_CHUNK} FROM tm_listing");
        let scanned = loop {
            let rows = match self.query(&fetch, &[]) {
                Ok(rows) => rows,
                Err(e) => break Err(e),
            };
            let chunk = rows
                .iter()
                .map(|r| read_listed(&self.cols(r)))
                .collect::<Result<Vec<_>>>();
            let last = rows.len() < LISTING_CHUNK;
            if let Err(e) = chunk.and_then(|chunk| self.hand_on(chunk, visit)) {
                break Err(e);
            }
            if last {
                break Ok(());
            }
        };
        let closed = self.session.client.batch_execute("CLOSE tm_listing");
        scanned?;
        closed.map_err(|e| self.err(e))
    }

    /// Loads the attendees and needs of a chunk of a listing and hands its
    /// events to `visit` in order.
    fn hand_on(
        &mut self,
        events: Vec<(TMinusEvent, Option<String>)>,
        visit: &mut dyn FnMut(ListedEvent) -> Result<()>,
    ) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let (ids, blocked) = row::chunk_ids(&events);
        let rows = self.query(
            &format!(
                "SELECT {EVENT_ATTENDEE_COLUMNS} FROM tm_attendees \
                 WHERE event_id = ANY($1) ORDER BY event_id, position"
            ),
            &[&ids],
        )?;
        let attendees = rows
            .iter()
            .map(|r| read_event_attendee(&self.cols(r)))
            .collect::<Result<Vec<_>>>()?;
        let needs = if blocked.is_empty() {
            Vec::new()
        } else {
            let rows = self.query(
                "SELECT d.to_id, e.id, e.name FROM tm_edges d \
                 JOIN tm_events e ON e.id = d.from_id \
                 WHERE d.to_id = ANY($1) ORDER BY d.seq",
                &[&blocked],
            )?;
            rows.iter()
                .map(|r| read_need_name(&self.cols(r)))
                .collect::<Result<Vec<_>>>()?
        };
        for listed in row::listed_chunk(events, attendees, needs) {
            visit(listed)?;
        }
        Ok(())
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

    fn audits(&mut self, sql: &str, params: &Params<'_>) -> Result<Vec<AuditEntry>> {
        let rows = self.query(sql, params)?;
        rows.iter().map(|r| read_audit(&self.cols(r))).collect()
    }

    fn deliveries(&mut self, sql: &str, params: &Params<'_>) -> Result<Vec<Delivery>> {
        let rows = self.query(sql, params)?;
        rows.iter().map(|r| self.delivery_from_row(r)).collect()
    }

    fn delivery_from_row(&self, row: &Row) -> Result<Delivery> {
        DeliveryRow {
            key: self.get(row, 0)?,
            event_id: self.get(row, 1)?,
            cause: self.get(row, 2)?,
            rule: self.get(row, 3)?,
            payload: self.get(row, 4)?,
            state: self.get(row, 5)?,
            attempts: self.get(row, 6)?,
            next_ms: self.get(row, 7)?,
            created_ms: self.get(row, 8)?,
            finished_ms: self.get(row, 9)?,
            last_error: self.get(row, 10)?,
        }
        .into_delivery()
        .map_err(|reason| corrupt(&self.session.server, reason))
    }
}

/// An event row's values in [`EVENT_COLUMNS`] order, then `fire_ms` ($22).
fn event_params(r: &EventRow) -> [&(dyn ToSql + Sync); 22] {
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
        &r.groups,
        &r.fire_ms,
    ]
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

    fn flag(&self, i: usize) -> Result<bool> {
        self.get(i)
    }

    fn invalid(&self, reason: String) -> TMinusError {
        corrupt(self.server, reason)
    }
}

/// The next position in a campaign's event order, for parameter `$2`.
const NEXT_POS: &str = "CASE WHEN $2::text IS NULL THEN NULL ELSE \
     (SELECT coalesce(max(campaign_pos), 0) + 1 FROM tm_events WHERE campaign_id = $2) END";

impl Tx for PgTx<'_> {
    fn insert_event(&mut self, e: &TMinusEvent) -> Result<()> {
        let r = EventRow::from_event(e);
        let pos = match &r.campaign_id {
            Some(c) => Some(self.next_pos(c)?),
            None => None,
        };
        for (i, (agent, status)) in e.attendees.iter().enumerate() {
            let (word, defer) = status_columns(*status);
            self.pending
                .attendees
                .push((r.id.clone(), i as i64, agent.0.clone(), word, defer));
        }
        self.pending.events.push((r, pos));
        self.dirty = true;
        self.written.inserted(e);
        if self.pending.rows() >= INSERT_CHUNK {
            self.flush()?;
        }
        self.bump_revision(e.campaign)
    }

    fn event(&mut self, id: Uuid) -> Result<Option<TMinusEvent>> {
        if let Some(e) = self.written.event(id) {
            return Ok(Some(e));
        }
        let sql = format!("SELECT {EVENT_COLUMNS} FROM tm_events WHERE id = $1");
        let Some(row) = self.query_opt(&sql, &[&id.to_string()])? else {
            return Ok(None);
        };
        let event = read_event(&self.cols(&row))?;
        self.with_attendees(event).map(Some)
    }

    fn events_by_id(&mut self, ids: &[Uuid]) -> Result<Vec<TMinusEvent>> {
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let sql =
            format!("SELECT {EVENT_COLUMNS}, {CAMPAIGN_NAME} FROM tm_events WHERE id = ANY($1)");
        self.events(&sql, &[&ids])
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
                 created_ms = $19, last_response_ms = $20, groups = $21, fire_ms = $22, \
                 campaign_pos = CASE WHEN campaign_id IS NOT DISTINCT FROM $2 THEN campaign_pos \
                 ELSE {NEXT_POS} END WHERE id = $1"
            ),
            &event_params(&r),
        )?;
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
            "UPDATE tm_attendees SET status = $3, defer_ms = $4, responded_ms = $5 \
             WHERE event_id = $1 AND agent = $2",
            &[&id.to_string(), &agent.0, &word, &defer, &ms(at)],
        )
        .map(drop)
    }

    fn set_attendees(&mut self, id: Uuid, attendees: &[AgentId]) -> Result<()> {
        self.written.events.remove(&id);
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

    fn standalone_events_named(&mut self, name: &str, limit: usize) -> Result<Vec<Uuid>> {
        self.ids(
            "SELECT id FROM tm_events WHERE campaign_id IS NULL AND name = $1 \
             ORDER BY state IN ('fired', 'missed', 'cancelled'), created_ms DESC, id LIMIT $2",
            &[&name, &sql_limit(limit)],
        )
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
            Some(row) => {
                let cols = self.cols(&row);
                cols.decode(opt_time(cols.opt_int(0)?))
            }
            None => Ok(None),
        }
    }

    fn scan_events(
        &mut self,
        filter: EventFilter,
        visit: &mut dyn FnMut(ListedEvent) -> Result<()>,
    ) -> Result<()> {
        let order = "ORDER BY fire_ms IS NULL, fire_ms, created_ms, id";
        match filter {
            EventFilter::Unfinished => self.scan(
                &format!(
                    "SELECT {EVENT_COLUMNS}, {CAMPAIGN_NAME} FROM tm_events \
                     WHERE state IN ('blocked', 'pending') {order}"
                ),
                &[],
                visit,
            ),
            EventFilter::All => self.scan(
                &format!("SELECT {EVENT_COLUMNS}, {CAMPAIGN_NAME} FROM tm_events {order}"),
                &[],
                visit,
            ),
            EventFilter::Campaign(id) => self.scan(
                &format!(
                    "SELECT {EVENT_COLUMNS}, {CAMPAIGN_NAME} FROM tm_events \
                     WHERE campaign_id = $1 {order}"
                ),
                &[&id.to_string()],
                visit,
            ),
        }
    }

    fn inbox(&mut self, agent: &AgentId) -> Result<Vec<TMinusEvent>> {
        self.events(
            &format!(
                "SELECT {EVENT_COLUMNS}, {CAMPAIGN_NAME} FROM tm_events WHERE id IN \
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
        let c = CampaignColumns::from_campaign(c);
        self.execute(
            &format!(
                "INSERT INTO tm_campaigns ({CAMPAIGN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ),
            &[
                &c.id,
                &c.name,
                &c.description,
                &c.created_ms,
                &c.managed,
                &c.anchor_ms,
                &c.revision,
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
            &[&c.id, &c.name, &c.description, &c.managed, &c.anchor_ms],
        )
        .map(drop)
    }

    fn campaign(&mut self, id: Uuid) -> Result<Option<CampaignRow>> {
        self.flush_bumps()?;
        let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM tm_campaigns WHERE id = $1");
        let row = self.query_opt(&sql, &[&id.to_string()])?;
        row.map(|r| read_campaign(&self.cols(&r))).transpose()
    }

    fn campaign_by_name(&mut self, name: &str) -> Result<Option<CampaignRow>> {
        self.flush_bumps()?;
        let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM tm_campaigns WHERE name = $1");
        let row = self.query_opt(&sql, &[&name])?;
        row.map(|r| read_campaign(&self.cols(&r))).transpose()
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
        rows.iter().map(|r| read_campaign(&self.cols(r))).collect()
    }

    fn campaign_events(&mut self, campaign: Uuid) -> Result<Vec<(Uuid, String, EventState)>> {
        let rows = self.query(
            "SELECT id, name, state FROM tm_events WHERE campaign_id = $1 ORDER BY campaign_pos",
            &[&campaign.to_string()],
        )?;
        rows.iter().map(|r| read_member(&self.cols(r))).collect()
    }

    fn campaign_edges(&mut self, campaign: Uuid) -> Result<Vec<(Uuid, Uuid)>> {
        let rows = self.query(
            "SELECT from_id, to_id FROM tm_edges WHERE campaign_id = $1 ORDER BY seq",
            &[&campaign.to_string()],
        )?;
        rows.iter()
            .map(|r| {
                let cols = self.cols(r);
                Ok((cols.id(0)?, cols.id(1)?))
            })
            .collect()
    }

    fn insert_edge(&mut self, campaign: Uuid, from: Uuid, to: Uuid) -> Result<()> {
        self.written.edge_added(from, to);
        self.pending
            .edges
            .push((campaign.to_string(), from.to_string(), to.to_string()));
        self.dirty = true;
        if self.pending.rows() >= INSERT_CHUNK {
            self.flush()?;
        }
        self.bump_revision(Some(campaign))
    }

    fn delete_edge(&mut self, from: Uuid, to: Uuid) -> Result<()> {
        self.written.edge_removed(from, to);
        self.execute(
            "DELETE FROM tm_edges WHERE from_id = $1 AND to_id = $2",
            &[&from.to_string(), &to.to_string()],
        )
        .map(drop)
    }

    fn needs(&mut self, id: Uuid) -> Result<Vec<NeedState>> {
        if let Some(known) = self.written.needs_of(id) {
            return Ok(known);
        }
        let rows = self.query(
            "SELECT e.id, e.state, e.finished_ms FROM tm_edges d JOIN tm_events e ON e.id = d.from_id \
             WHERE d.to_id = $1 ORDER BY d.seq",
            &[&id.to_string()],
        )?;
        rows.iter().map(|r| read_need(&self.cols(r))).collect()
    }

    fn known_state(&mut self, id: Uuid) -> Option<EventState> {
        self.written.state(id)
    }

    fn dependents(&mut self, id: Uuid) -> Result<Vec<Uuid>> {
        self.ids(
            "SELECT to_id FROM tm_edges WHERE from_id = $1 ORDER BY seq",
            &[&id.to_string()],
        )
    }

    fn delete_campaign(&mut self, campaign: Uuid) -> Result<()> {
        self.flush_bumps()?;
        self.written.clear();
        // The campaign's audit entries stay: the log is append-only, and the
        // chain through them must keep verifying.
        let c = campaign.to_string();
        self.execute("DELETE FROM tm_scope_signers WHERE scope_id = $1", &[&c])?;
        self.execute("DELETE FROM tm_events WHERE campaign_id = $1", &[&c])?;
        self.execute("DELETE FROM tm_campaigns WHERE id = $1", &[&c])
            .map(drop)
    }

    fn delete_event(&mut self, id: Uuid) -> Result<()> {
        let campaign = self.event(id)?.and_then(|e| e.campaign);
        self.written.clear();
        self.execute("DELETE FROM tm_events WHERE id = $1", &[&id.to_string()])?;
        self.bump_revision(campaign)
    }

    fn append_audit(&mut self, e: &NewAuditEntry) -> Result<()> {
        let a = AuditColumns::from_entry(e);
        self.dirty = true;
        // Writers hold the store's write lock, so the last entry is the head
        // and no other writer can chain from it at the same time.
        let head = match self.written.audit_head.take() {
            Some(head) => head,
            None => {
                let head =
                    self.query("SELECT hash FROM tm_audit ORDER BY seq DESC LIMIT 1", &[])?;
                match head.first() {
                    Some(r) => self.get(r, 0)?,
                    None => None,
                }
            }
        };
        let (prev, hash) = chain_links(head.as_deref(), &e.stored(0), e.signed.as_ref());
        self.written.audit_head = Some(Some(hash.clone()));
        self.pending.audits.push((a, prev, hash, e.signed.clone()));
        if self.pending.audits.len() >= INSERT_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn scope_signers(&mut self, scope: Uuid) -> Result<Option<StoredSigners>> {
        let row = self.query_opt(
            "SELECT s.digest, s.text FROM tm_scope_signers c \
             JOIN tm_signer_sets s ON s.digest = c.digest WHERE c.scope_id = $1",
            &[&scope.to_string()],
        )?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some(StoredSigners {
                digest: self.get(&r, 0)?,
                text: self.get(&r, 1)?,
            })),
        }
    }

    fn set_scope_signers(&mut self, scope: Uuid, signers: Option<&StoredSigners>) -> Result<()> {
        match signers {
            None => self.execute(
                "DELETE FROM tm_scope_signers WHERE scope_id = $1",
                &[&scope.to_string()],
            )?,
            Some(set) => {
                self.execute(
                    "INSERT INTO tm_signer_sets (digest, text) VALUES ($1, $2) \
                     ON CONFLICT (digest) DO NOTHING",
                    &[&set.digest, &set.text],
                )?;
                self.execute(
                    "INSERT INTO tm_scope_signers (scope_id, digest) VALUES ($1, $2) \
                     ON CONFLICT (scope_id) DO UPDATE SET digest = excluded.digest",
                    &[&scope.to_string(), &set.digest],
                )?
            }
        };
        Ok(())
    }

    fn signers_by_digest(&mut self, digest: &str) -> Result<Option<String>> {
        let row = self.query_opt(
            "SELECT text FROM tm_signer_sets WHERE digest = $1",
            &[&digest],
        )?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some(self.get(&r, 0)?)),
        }
    }

    fn use_nonce(&mut self, nonce: Uuid, event: Uuid, at: DateTime<Utc>) -> Result<bool> {
        let inserted = self.execute(
            "INSERT INTO tm_nonces (nonce, event_id, at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (nonce) DO NOTHING",
            &[
                &nonce.to_string(),
                &event.to_string(),
                &at.timestamp_millis(),
            ],
        )?;
        Ok(inserted == 1)
    }

    fn event_audit_links(&mut self, id: Uuid) -> Result<Vec<StoredLink>> {
        let rows = self.query(
            &format!("SELECT {AUDIT_LINK_COLUMNS} FROM tm_audit WHERE event_id = $1 ORDER BY seq"),
            &[&id.to_string()],
        )?;
        rows.iter()
            .map(|r| read_audit_link(&self.cols(r)))
            .collect()
    }

    fn stored_outcomes(&mut self) -> Result<StoredOutcomes> {
        let rows = self.query(
            &format!("SELECT id, state FROM tm_events WHERE {FINISHED_EVENTS}"),
            &[],
        )?;
        let finished = rows
            .iter()
            .map(|r| read_finished(&self.cols(r)))
            .collect::<Result<_>>()?;
        let rows = self.query(
            &format!(
                "SELECT {EVENT_ATTENDEE_COLUMNS} FROM tm_attendees WHERE {ANSWERED_ATTENDEES}"
            ),
            &[],
        )?;
        let answers = rows
            .iter()
            .map(|r| read_event_attendee(&self.cols(r)))
            .collect::<Result<_>>()?;
        Ok(StoredOutcomes::new(finished, answers))
    }

    fn audit_links(&mut self, after: i64, limit: usize) -> Result<Vec<StoredLink>> {
        let rows = self.query(
            &format!(
                "SELECT {AUDIT_LINK_COLUMNS} FROM tm_audit WHERE seq > $1 ORDER BY seq LIMIT $2"
            ),
            &[&after, &(limit as i64)],
        )?;
        rows.iter()
            .map(|r| read_audit_link(&self.cols(r)))
            .collect()
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

    fn notify_rules(&mut self, event: Uuid) -> Result<Vec<NotifyRule>> {
        if self.written.no_rules.contains(&event) {
            return Ok(Vec::new());
        }
        let row = self.query_opt(
            "SELECT rules FROM tm_notify_rules WHERE event_id = $1",
            &[&event.to_string()],
        )?;
        match row {
            Some(r) => {
                let text: String = self.get(&r, 0)?;
                notify_row::rules_from_text(&text)
                    .map_err(|reason| corrupt(&self.session.server, reason))
            }
            None => Ok(Vec::new()),
        }
    }

    fn notify_rules_by_id(&mut self, ids: &[Uuid]) -> Result<Vec<(Uuid, Vec<NotifyRule>)>> {
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let rows = self.query(
            "SELECT event_id, rules FROM tm_notify_rules WHERE event_id = ANY($1)",
            &[&ids],
        )?;
        rows.iter()
            .map(|r| {
                let cols = self.cols(r);
                let rules = notify_row::rules_from_text(&cols.text(1)?)
                    .map_err(|reason| corrupt(&self.session.server, reason))?;
                Ok((cols.id(0)?, rules))
            })
            .filter(|r| !matches!(r, Ok((_, rules)) if rules.is_empty()))
            .collect()
    }

    fn set_notify_rules(&mut self, event: Uuid, rules: &[NotifyRule]) -> Result<()> {
        self.written.no_rules.remove(&event);
        if rules.is_empty() {
            self.execute(
                "DELETE FROM tm_notify_rules WHERE event_id = $1",
                &[&event.to_string()],
            )?;
        } else {
            self.execute(
                "INSERT INTO tm_notify_rules (event_id, rules) VALUES ($1, $2) \
                 ON CONFLICT (event_id) DO UPDATE SET rules = excluded.rules",
                &[&event.to_string(), &notify_row::rules_text(rules)],
            )?;
        }
        Ok(())
    }

    fn reminders(&mut self, event: Uuid) -> Result<Vec<Reminder>> {
        let rows = self.query(
            "SELECT before_ms, remind_ms, sent FROM tm_reminders WHERE event_id = $1 \
             ORDER BY before_ms",
            &[&event.to_string()],
        )?;
        rows.iter()
            .map(|r| {
                notify_row::reminder(self.get(r, 0)?, self.get(r, 1)?, self.get(r, 2)?)
                    .map_err(|reason| corrupt(&self.session.server, reason))
            })
            .collect()
    }

    fn set_reminders(&mut self, event: Uuid, reminders: &[Reminder]) -> Result<()> {
        let id = event.to_string();
        self.execute("DELETE FROM tm_reminders WHERE event_id = $1", &[&id])?;
        for r in reminders {
            self.execute(
                "INSERT INTO tm_reminders (event_id, before_ms, remind_ms, sent) \
                 VALUES ($1, $2, $3, $4)",
                &[&id, &notify_row::before_column(r), &ms(r.at), &r.sent],
            )?;
        }
        Ok(())
    }

    fn due_reminders(&mut self, now: DateTime<Utc>, limit: usize) -> Result<Vec<(Uuid, Reminder)>> {
        let rows = self.query(
            "SELECT event_id, before_ms, remind_ms FROM tm_reminders \
             WHERE NOT sent AND remind_ms <= $1 ORDER BY remind_ms LIMIT $2",
            &[&ms(now), &sql_limit(limit)],
        )?;
        rows.iter()
            .map(|r| {
                let id: String = self.get(r, 0)?;
                let id = super::row::uuid(&id)
                    .map_err(|reason| corrupt(&self.session.server, reason))?;
                let reminder = notify_row::reminder(self.get(r, 1)?, self.get(r, 2)?, false)
                    .map_err(|reason| corrupt(&self.session.server, reason))?;
                Ok((id, reminder))
            })
            .collect()
    }

    fn mark_reminder_sent(&mut self, event: Uuid, before_ms: u64) -> Result<()> {
        self.execute(
            "UPDATE tm_reminders SET sent = TRUE WHERE event_id = $1 AND before_ms = $2",
            &[
                &event.to_string(),
                &i64::try_from(before_ms).unwrap_or(i64::MAX),
            ],
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
            &[
                &r.key,
                &r.event_id,
                &r.cause,
                &r.rule,
                &r.payload,
                &r.state,
                &r.attempts,
                &r.next_ms,
                &r.created_ms,
                &r.finished_ms,
                &r.last_error,
            ],
        )
        .map(drop)
    }

    fn update_delivery(&mut self, d: &Delivery) -> Result<()> {
        let r = DeliveryRow::from_delivery(d);
        self.execute(
            "UPDATE tm_deliveries SET state = $2, attempts = $3, next_ms = $4, finished_ms = $5, \
             last_error = $6 WHERE key = $1",
            &[
                &r.key,
                &r.state,
                &r.attempts,
                &r.next_ms,
                &r.finished_ms,
                &r.last_error,
            ],
        )
        .map(drop)
    }

    fn delivery(&mut self, key: Uuid) -> Result<Option<Delivery>> {
        let row = self.query_opt(
            &format!("SELECT {DELIVERY_COLUMNS} FROM tm_deliveries WHERE key = $1"),
            &[&key.to_string()],
        )?;
        row.map(|r| self.delivery_from_row(&r)).transpose()
    }

    fn due_deliveries(&mut self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Delivery>> {
        self.deliveries(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM tm_deliveries WHERE state = 'pending' \
                 AND next_ms <= $1 ORDER BY next_ms, seq LIMIT $2"
            ),
            &[&ms(now), &sql_limit(limit)],
        )
    }

    fn event_deliveries(&mut self, event: Uuid) -> Result<Vec<Delivery>> {
        self.deliveries(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM tm_deliveries WHERE event_id = $1 ORDER BY seq"
            ),
            &[&event.to_string()],
        )
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        self.flush()?;
        self.flush_bumps()?;
        if self.dirty && self.notify {
            let channel = self.session.channel.clone();
            self.query("SELECT pg_notify($1, '')", &[&channel])?;
        }
        self.open = false;
        let committed = self.session.client.batch_execute("COMMIT");
        committed.map_err(|e| self.err(e))
    }
}
