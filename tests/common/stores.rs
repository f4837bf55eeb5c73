//! Running one test on both stores: SQLite always, PostgreSQL when
//! `T_MINUS_TEST_PG` holds a server URL (`.ci/run` sets it).
//!
//! A test that runs on both stores is a plain function (no `#[test]`) at the
//! root of its test binary, listed in `common::store_tests!(a, b, …)` or
//! `cli_support::store_tests!(…)`, which emits the tests `sqlite::NAME` and
//! `postgres::NAME`. Each calls the function through
//! [`run`], which makes that store *the current store* of the test's thread;
//! the constructors of the harness (`common::engine()`, `common::store()`,
//! `cli_support::T::new()`, [`TempStore::new`]) read it, so test bodies and
//! helpers are the same for both stores. Threads a test spawns do not
//! inherit it: hand them a location ([`TempStore::location`]) instead. A
//! function left out of the list is dead code, which clippy refuses.
//!
//! On PostgreSQL every store is a fresh schema (`tmt_<unix-seconds>_<hex>`)
//! on the server, reached through a URL whose `options` set `search_path`
//! to it; all SQL of the PostgreSQL store is unqualified, so tests running
//! at once never see each other. A schema is dropped when the test that
//! made it ends; schemas older than an hour (left by a killed run) are
//! dropped once per test binary. When `T_MINUS_TEST_PG` is unset (a
//! machine without a server), the PostgreSQL copies are ignored: the build
//! script sets `cfg(t_minus_test_pg)` only when the variable is set at
//! build time, and `cargo test` lists them as `ignored, needs
//! T_MINUS_TEST_PG`. When it is set but the server cannot be reached, the
//! PostgreSQL copy fails with the connection error: a CI run whose server
//! is down must not pass with half its tests unrun. (Run with
//! `--include-ignored` and the variable unset, they fail too.)
//!
//! Both copies run the same function, so insta names their snapshots alike
//! (`cli__NAME.snap`: module path and function name) and both assert
//! against the same file. [`run`] runs the body in insta's
//! `allow_duplicates!`, which lets the second copy assert the same snapshot
//! again instead of numbering it `NAME-2` — so a function run on both
//! stores may take at most one unnamed snapshot; name any others.
//!
//! `cli_support` re-exports this module, so both harnesses share one current store.

#![allow(dead_code)] // each test binary uses a different part of it

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use postgres::error::SqlState;
use postgres::{Client, Config, NoTls};

/// The environment variable holding the PostgreSQL server's URL.
pub const PG_ENV: &str = "T_MINUS_TEST_PG";

/// Prefix of the schemas the tests create (followed by `<unix-seconds>_`).
const SCHEMA_PREFIX: &str = "tmt_";

/// Test schemas older than this are dropped when a test binary starts.
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// How long to wait for the server before calling it unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file (or an in-memory SQLite database).
    Sqlite,
    /// A schema on the PostgreSQL server of `T_MINUS_TEST_PG`.
    Postgres,
}

/// What each migration added, undone, on (SQLite, PostgreSQL): entry `i`
/// takes a store from version `i + 2` back to `i + 1`.
const UNDO: &[(&str, &str)] = &[
    // 2: the per-campaign due index.
    (
        "DROP INDEX events_campaign_due;",
        "DROP INDEX tm_events_campaign_due;",
    ),
    // 3: quorum groups.
    (
        "ALTER TABLE events DROP COLUMN groups;",
        "ALTER TABLE tm_events DROP COLUMN groups;",
    ),
    // 4: notifications.
    (
        "DROP TABLE notify_rules; DROP TABLE reminders; DROP TABLE deliveries;",
        "DROP TABLE tm_notify_rules; DROP TABLE tm_reminders; DROP TABLE tm_deliveries;",
    ),
    // 5: the inbox index of open attendees.
    (
        "DROP TRIGGER attendees_open_on_state; DROP TRIGGER attendees_open_on_insert; \
         DROP INDEX attendees_inbox; ALTER TABLE attendees DROP COLUMN open;",
        "DROP TRIGGER tm_attendees_open_on_state ON tm_events; \
         DROP TRIGGER tm_attendees_open_on_insert ON tm_attendees; \
         DROP FUNCTION tm_attendees_open_on_state(); DROP FUNCTION tm_attendees_open_on_insert(); \
         ALTER TABLE tm_attendees DROP COLUMN open;",
    ),
    // 6: the audit chain.
    (
        "ALTER TABLE audit DROP COLUMN prev; ALTER TABLE audit DROP COLUMN hash; \
         ALTER TABLE audit DROP COLUMN message; ALTER TABLE audit DROP COLUMN signature;",
        "ALTER TABLE tm_audit DROP COLUMN prev, DROP COLUMN hash, \
         DROP COLUMN message, DROP COLUMN signature;",
    ),
    // 7: signed answers.
    (
        "DROP TABLE scope_signers; DROP TABLE signer_sets; DROP TABLE nonces;",
        "DROP TABLE tm_scope_signers; DROP TABLE tm_signer_sets; DROP TABLE tm_nonces;",
    ),
    // 8: the listing-order index.
    (
        "DROP INDEX events_listing;",
        "DROP INDEX tm_events_listing;",
    ),
];

/// The SQLite columns holding ids, by table, as the compact-id migration
/// found them (text) and left them (16 bytes).
const ID_COLUMNS: &[(&str, &[&str])] = &[
    ("campaigns", &["id"]),
    ("events", &["id", "campaign_id"]),
    ("attendees", &["event_id"]),
    ("edges", &["campaign_id", "from_id", "to_id"]),
    ("audit", &["event_id"]),
    ("notify_rules", &["event_id"]),
    ("reminders", &["event_id"]),
    ("deliveries", &["key", "event_id"]),
    ("scope_signers", &["scope_id"]),
    ("nonces", &["nonce", "event_id"]),
];

/// The foreign keys among id columns on PostgreSQL: (table, column,
/// referenced table).
const PG_FOREIGN_KEYS: &[(&str, &str, &str)] = &[
    ("tm_events", "campaign_id", "tm_campaigns"),
    ("tm_attendees", "event_id", "tm_events"),
    ("tm_edges", "campaign_id", "tm_campaigns"),
    ("tm_edges", "from_id", "tm_events"),
    ("tm_edges", "to_id", "tm_events"),
    ("tm_notify_rules", "event_id", "tm_events"),
    ("tm_reminders", "event_id", "tm_events"),
];

/// What each named migration after `compact_ids` added, undone, on
/// (SQLite, PostgreSQL), oldest first: they are undone, newest first, before
/// [`undo_compact_ids`].
const UNDO_NAMED: &[(&str, &str)] = &[
    // tokens: the API tokens of `serve`.
    (
        "DROP TABLE tokens; DELETE FROM migrations WHERE name = 'tokens';",
        "DROP TABLE tm_tokens; DELETE FROM tm_migrations WHERE name = 'tokens';",
    ),
    // gate_rules: the gates of an event (four eyes, windows, break-glass).
    (
        "ALTER TABLE events DROP COLUMN gates; DELETE FROM migrations WHERE name = 'gate_rules';",
        "ALTER TABLE tm_events DROP COLUMN gates; \
         DELETE FROM tm_migrations WHERE name = 'gate_rules';",
    ),
    // delegations: who may answer for whom, and the agent acted for.
    (
        "DROP TABLE delegations; ALTER TABLE audit DROP COLUMN on_behalf_of; \
         ALTER TABLE events DROP COLUMN escalation; \
         DELETE FROM migrations WHERE name = 'delegations';",
        "DROP TABLE tm_delegations; ALTER TABLE tm_audit DROP COLUMN on_behalf_of; \
         ALTER TABLE tm_events DROP COLUMN escalation; \
         DELETE FROM tm_migrations WHERE name = 'delegations';",
    ),
    // log_baseline: no table; its baseline entries stay in the log (a
    // store migrated again gets a second baseline, chained after them).
    (
        "DELETE FROM migrations WHERE name = 'log_baseline';",
        "DELETE FROM tm_migrations WHERE name = 'log_baseline';",
    ),
    // chat_links: which chat accounts answer as which agents.
    (
        "DROP TABLE chat_links; DELETE FROM migrations WHERE name = 'chat_links';",
        "DROP TABLE tm_chat_links; DELETE FROM tm_migrations WHERE name = 'chat_links';",
    ),
    // github_deployments: the GitHub deployments `serve` gates.
    (
        "DROP TABLE github_deployments; \
         DELETE FROM migrations WHERE name = 'github_deployments';",
        "DROP TABLE tm_github_deployments; \
         DELETE FROM tm_migrations WHERE name = 'github_deployments';",
    ),
    // passkeys: invitations, passkeys, ceremonies and browser sessions.
    (
        "DROP TABLE invites; DROP TABLE passkeys; DROP TABLE ceremonies; DROP TABLE sessions; \
         DELETE FROM migrations WHERE name = 'passkeys';",
        "DROP TABLE tm_invites; DROP TABLE tm_passkeys; DROP TABLE tm_ceremonies; \
         DROP TABLE tm_sessions; DELETE FROM tm_migrations WHERE name = 'passkeys';",
    ),
];

/// Undoes the compact-id migration (version 9 back to 8): ids as
/// lowercase hyphenated text, the log's hashes as hex, the
/// unfinished-events index and the attendee insert trigger back, no
/// migration ledger. The SQLite tables
/// keep their declared types (SQLite stores text in them as it is).
fn undo_compact_ids(backend: Backend) -> String {
    let mut sql = Vec::new();
    match backend {
        Backend::Sqlite => {
            sql.push("PRAGMA foreign_keys = OFF; DROP TABLE migrations;".to_string());
            let text = |c: &str| {
                let part = |from: usize, len: usize| format!("substr(hex({c}), {from}, {len})");
                format!(
                    "CASE WHEN {c} IS NULL THEN NULL ELSE lower({} || '-' || {} || '-' || {} \
                     || '-' || {} || '-' || {}) END",
                    part(1, 8),
                    part(9, 4),
                    part(13, 4),
                    part(17, 4),
                    part(21, 12)
                )
            };
            for (table, columns) in ID_COLUMNS {
                let set: Vec<String> = columns
                    .iter()
                    .map(|c| format!("{c} = {}", text(c)))
                    .collect();
                sql.push(format!("UPDATE {table} SET {};", set.join(", ")));
            }
            sql.push(
                "CREATE TRIGGER attendees_open_on_insert AFTER INSERT ON attendees BEGIN \
                 UPDATE attendees SET open = coalesce((SELECT state IN ('blocked', 'pending') \
                 FROM events WHERE id = NEW.event_id), 0) \
                 WHERE event_id = NEW.event_id AND agent = NEW.agent; END;"
                    .to_string(),
            );
            sql.push(
                "UPDATE audit SET prev = nullif(lower(hex(prev)), ''), \
                 hash = nullif(lower(hex(hash)), ''); \
                 CREATE INDEX events_unfinished ON events (fire_ms) \
                 WHERE state IN ('blocked', 'pending');"
                    .to_string(),
            );
        }
        Backend::Postgres => {
            sql.push("DROP TABLE tm_migrations;".to_string());
            for (table, column, _) in PG_FOREIGN_KEYS {
                sql.push(format!(
                    "ALTER TABLE {table} DROP CONSTRAINT {table}_{column}_fkey;"
                ));
            }
            for (table, columns) in ID_COLUMNS {
                let alter: Vec<String> = columns
                    .iter()
                    .map(|c| format!("ALTER COLUMN {c} TYPE text COLLATE \"C\" USING {c}::text"))
                    .collect();
                sql.push(format!("ALTER TABLE tm_{table} {};", alter.join(", ")));
            }
            for (table, column, parent) in PG_FOREIGN_KEYS {
                sql.push(format!(
                    "ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_fkey FOREIGN KEY \
                     ({column}) REFERENCES {parent} (id) ON DELETE CASCADE;"
                ));
            }
            sql.push(
                "CREATE FUNCTION tm_attendees_open_on_insert() RETURNS trigger \
                 LANGUAGE plpgsql AS $$ BEGIN NEW.open := coalesce((SELECT e.state IN \
                 ('blocked', 'pending') FROM tm_events e WHERE e.id = NEW.event_id), FALSE); \
                 RETURN NEW; END $$; CREATE TRIGGER tm_attendees_open_on_insert BEFORE INSERT \
                 ON tm_attendees FOR EACH ROW EXECUTE FUNCTION tm_attendees_open_on_insert();"
                    .to_string(),
            );
            sql.push(
                "ALTER TABLE tm_audit ALTER COLUMN prev TYPE text USING encode(prev, 'hex'), \
                 ALTER COLUMN hash TYPE text USING encode(hash, 'hex'); \
                 CREATE INDEX tm_events_unfinished ON tm_events (fire_ms) \
                 WHERE state IN ('blocked', 'pending');"
                    .to_string(),
            );
        }
    }
    sql.join(" ")
}

/// SQL that takes a current store on `backend` back to schema version
/// `version` (at least 1): every later migration undone, newest first, and
/// the version stamped, as a store written by that version would read.
pub fn downgrade_sql(backend: Backend, version: usize) -> String {
    assert!(
        (1..=UNDO.len() + 1).contains(&version),
        "no version {version}"
    );
    let compact = undo_compact_ids(backend);
    let mut sql: Vec<&str> = UNDO_NAMED
        .iter()
        .rev()
        .map(|(sqlite, postgres)| match backend {
            Backend::Sqlite => *sqlite,
            Backend::Postgres => *postgres,
        })
        .collect();
    sql.push(&compact);
    sql.extend(
        UNDO[version - 1..]
            .iter()
            .rev()
            .map(|(sqlite, postgres)| match backend {
                Backend::Sqlite => *sqlite,
                Backend::Postgres => *postgres,
            }),
    );
    let stamp = match backend {
        Backend::Sqlite => format!("PRAGMA user_version = {version};"),
        Backend::Postgres => format!("UPDATE tm_meta SET version = {version};"),
    };
    sql.push(&stamp);
    sql.join(" ")
}

/// What [`run`] set for the test running on this thread.
struct Current {
    backend: Backend,
    /// Stores kept until the test ends (made by constructors that cannot
    /// hand out a guard, such as `common::engine()`).
    kept: Vec<TempStore>,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// The store of the test running on this thread: the one [`run`] was
/// given, SQLite outside [`run`] (the SQLite-only tests).
pub fn current() -> Backend {
    CURRENT.with(|c| c.borrow().as_ref().map_or(Backend::Sqlite, |c| c.backend))
}

/// Runs `sql` directly on the store at `location`, behind the engine's
/// back: `{table}` names a table of the current backend (`audit` on SQLite,
/// `tm_audit` on PostgreSQL).
pub fn tamper(location: &str, sql: &str) {
    let prefix = match current() {
        Backend::Sqlite => "",
        Backend::Postgres => "tm_",
    };
    let sql = regex_lite::Regex::new(r"\{([a-z_]+)\}")
        .unwrap()
        .replace_all(sql, |c: &regex_lite::Captures<'_>| {
            format!("{prefix}{}", &c[1])
        });
    match current() {
        Backend::Sqlite => rusqlite::Connection::open(location)
            .unwrap()
            .execute_batch(&sql)
            .unwrap(),
        Backend::Postgres => ::postgres::Client::connect(location, ::postgres::NoTls)
            .unwrap()
            .batch_execute(&sql)
            .unwrap(),
    }
}

/// `id` as an SQL literal of the current store's id columns: 16 bytes on
/// SQLite, a `uuid` on PostgreSQL.
pub fn id_sql(id: impl std::fmt::Display) -> String {
    let id: uuid::Uuid = id.to_string().parse().expect("an id");
    match current() {
        Backend::Sqlite => format!("x'{}'", id.simple()),
        Backend::Postgres => format!("'{id}'"),
    }
}

/// A chain hash given as 64 hex digits as an SQL literal of the current
/// store's hash columns: 32 bytes (`BLOB`, `bytea`).
pub fn hash_sql(hex: &str) -> String {
    match current() {
        Backend::Sqlite => format!("x'{hex}'"),
        Backend::Postgres => format!("'\\x{hex}'::bytea"),
    }
}

/// Keeps `store` until the current test ends (or drops it at once when no
/// test is running through [`run`]).
pub fn keep_until_the_test_ends(store: TempStore) {
    CURRENT.with(|c| {
        if let Some(current) = c.borrow_mut().as_mut() {
            current.kept.push(store);
        }
    });
}

/// Ends the current test's scope when dropped, dropping what it kept.
struct Scope;

impl Drop for Scope {
    fn drop(&mut self) {
        // Take first, drop outside the borrow: a store's drop may print.
        let current = CURRENT.with(|c| c.borrow_mut().take());
        drop(current);
    }
}

/// Runs the body of test `name` on `backend`: sets the current store, lets
/// snapshots repeat (see the module docs), and drops the stores it kept
/// when it returns or panics. On PostgreSQL it panics when there is no
/// server: `T_MINUS_TEST_PG` unset (the test is ignored then, unless run
/// with `--include-ignored`) or the server unreachable.
pub fn run(backend: Backend, name: &str, body: impl FnOnce()) {
    if backend == Backend::Postgres {
        match server() {
            Ok(_) => {}
            Err(Unavailable::Unset) => panic!(
                "{name}: {PG_ENV} is not set: the PostgreSQL tests need a server URL \
                 (e.g. {PG_ENV}=postgres://postgres@127.0.0.1:5432/test)"
            ),
            Err(Unavailable::Unreachable(reason)) => panic!(
                "{name}: {reason}\n\
                 {PG_ENV} is set, so the PostgreSQL tests must run: start the server, \
                 or unset {PG_ENV} to run the SQLite tests only"
            ),
        }
    }
    CURRENT.with(|c| {
        *c.borrow_mut() = Some(Current {
            backend,
            kept: Vec::new(),
        })
    });
    let _scope = Scope;
    insta::allow_duplicates! { body() }
}

/// A fresh, empty store of the current test's backend, removed when
/// dropped: a file (not yet created) in a temporary directory for SQLite, a
/// new schema for PostgreSQL.
pub struct TempStore {
    location: String,
    /// The temporary directory of an SQLite store.
    dir: Option<tempfile::TempDir>,
    /// The schema of a PostgreSQL store.
    schema: Option<Schema>,
}

impl TempStore {
    /// A new store for [`current`]`()`, named `file` inside its temporary
    /// directory on SQLite.
    pub fn new(file: &str) -> Self {
        match current() {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let location = dir.path().join(file).to_string_lossy().into_owned();
                TempStore {
                    location,
                    dir: Some(dir),
                    schema: None,
                }
            }
            Backend::Postgres => {
                let schema = Schema::create();
                TempStore {
                    location: schema.url.clone(),
                    dir: None,
                    schema: Some(schema),
                }
            }
        }
    }

    /// Where the store is, for `Engine::open` and `t-minus --db`: an SQLite
    /// file path or a PostgreSQL URL.
    pub fn location(&self) -> &str {
        &self.location
    }
}

// ───────────────────────────── PostgreSQL ─────────────────────────────

/// The server every PostgreSQL test of this binary uses.
struct Server {
    /// `T_MINUS_TEST_PG`.
    url: String,
    /// A connection for creating and dropping schemas.
    admin: Mutex<Client>,
}

/// Why there is no server for the PostgreSQL tests.
#[derive(Debug)]
enum Unavailable {
    /// `T_MINUS_TEST_PG` is unset or empty (the tests are ignored then).
    Unset,
    /// It is set, but connecting failed (the reason, with the URL): fail them.
    Unreachable(String),
}

/// The server of `T_MINUS_TEST_PG`, checked (and cleaned of stale test
/// schemas) once per test binary; why there is none otherwise.
fn server() -> Result<&'static Server, &'static Unavailable> {
    static SERVER: OnceLock<Result<Server, Unavailable>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            let url = match std::env::var(PG_ENV) {
                Ok(url) if !url.trim().is_empty() => url,
                _ => return Err(Unavailable::Unset),
            };
            let unreachable = |e: String| {
                Unavailable::Unreachable(format!(
                    "cannot reach the PostgreSQL server at {}: {e}",
                    redact(&url)
                ))
            };
            let mut admin = connect_creating_db(&url).map_err(unreachable)?;
            drop_stale_schemas(&mut admin);
            Ok(Server {
                url,
                admin: Mutex::new(admin),
            })
        })
        .as_ref()
}

/// Connects to `url`, creating its database first when the server has none
/// by that name (a fresh server has only `postgres`).
fn connect_creating_db(url: &str) -> Result<Client, String> {
    let mut config: Config = url.parse().map_err(|e| format!("bad URL: {}", chain(&e)))?;
    config.connect_timeout(CONNECT_TIMEOUT);
    match config.connect(NoTls) {
        Err(e) if e.code() == Some(&SqlState::INVALID_CATALOG_NAME) => {
            let db = config.get_dbname().unwrap_or_default().to_string();
            let mut maintenance = config.clone();
            maintenance.dbname("postgres");
            let mut client = maintenance.connect(NoTls).map_err(|e| chain(&e))?;
            if let Err(e) = client.batch_execute(&format!("CREATE DATABASE {}", quote(&db))) {
                // Another test binary may have created it meanwhile.
                if e.code() != Some(&SqlState::DUPLICATE_DATABASE) {
                    return Err(format!("cannot create database {db}: {}", chain(&e)));
                }
            }
            config.connect(NoTls).map_err(|e| chain(&e))
        }
        other => other.map_err(|e| chain(&e)),
    }
}

/// An error with its sources: `error connecting to server: Connection
/// refused (os error 111)`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let message = s.to_string();
        if !text.contains(&message) {
            text = format!("{text}: {message}");
        }
        source = s.source();
    }
    text
}

/// Drops the test schemas created more than [`STALE_AFTER`] ago: a run that
/// was killed leaves its schemas behind.
fn drop_stale_schemas(admin: &mut Client) {
    let cutoff = unix_seconds().saturating_sub(STALE_AFTER.as_secs());
    let Ok(rows) = admin.query(
        "SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1)",
        &[&SCHEMA_PREFIX],
    ) else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let created = name[SCHEMA_PREFIX.len()..]
            .split('_')
            .next()
            .and_then(|s| s.parse::<u64>().ok());
        if created.is_some_and(|t| t < cutoff) {
            drop_schema(admin, &name);
        }
    }
}

/// `DROP SCHEMA … CASCADE`, giving up after a few seconds if another
/// connection still holds a lock in it (the stale-schema sweep of a later
/// run gets it then).
fn drop_schema(admin: &mut Client, name: &str) {
    let sql = format!(
        "SET lock_timeout = '5s'; DROP SCHEMA IF EXISTS {} CASCADE; RESET lock_timeout",
        quote(name)
    );
    if let Err(e) = admin.batch_execute(&sql) {
        let _ = admin.batch_execute("RESET lock_timeout");
        let line = format!("note: cannot drop schema {name}: {e}\n");
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// A schema of its own for one store; dropped (with everything in it) when
/// this is.
struct Schema {
    name: String,
    /// The server's URL with `search_path` set to this schema.
    url: String,
}

impl Schema {
    /// Creates a fresh schema on the server. Panics outside a PostgreSQL
    /// test (there is no server to use).
    fn create() -> Self {
        let server = server().expect("a PostgreSQL store outside a PostgreSQL test");
        let name = format!(
            "{SCHEMA_PREFIX}{}_{}",
            unix_seconds(),
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        admin(server)
            .batch_execute(&format!("CREATE SCHEMA {}", quote(&name)))
            .unwrap_or_else(|e| panic!("cannot create schema {name}: {e}"));
        let separator = if server.url.contains('?') { '&' } else { '?' };
        let url = format!("{}{separator}options=-csearch_path%3D{name}", server.url);
        Schema { name, url }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(server) = server() {
            drop_schema(&mut admin(server), &self.name);
        }
    }
}

/// The admin connection (still usable after a test panicked holding it).
fn admin(server: &Server) -> std::sync::MutexGuard<'_, Client> {
    server.admin.lock().unwrap_or_else(|e| e.into_inner())
}

/// An SQL identifier, quoted.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// `url` without its password (`user:***@host`, `password=***`), for
/// messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{user}:***@{host}")
        }
        _ => authority.to_string(),
    };
    let path = match path.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some(("password", _)) => "password=***".to_string(),
                    _ => p.to_string(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => path.to_string(),
    };
    format!("{scheme}://{authority}{path}")
}

// ───────────────────────────── the macro ─────────────────────────────

/// The implementation of `store_tests!`: `[PATH] NAME, …`, where PATH is
/// this module's path in the test binary (`common::stores` or
/// `cli_support::stores`) and each NAME a test function (without
/// `#[test]`) in the suite module that invokes it. Emits `sqlite::NAME` and
/// `postgres::NAME`, each calling the function through [`run`].
#[doc(hidden)]
#[allow(unused_macros)] // not every test binary runs on both stores
macro_rules! __store_tests {
    ([$($stores:tt)*] $($name:ident),* $(,)?) => {
        /// The tests on SQLite.
        mod sqlite {
            use $($stores)*::{run as run_on, Backend};
            $(
                #[test]
                fn $name() {
                    run_on(Backend::Sqlite, concat!("sqlite::", stringify!($name)), super::$name);
                }
            )*
        }
        /// The same tests on PostgreSQL (ignored without `T_MINUS_TEST_PG`).
        mod postgres {
            use $($stores)*::{run as run_on, Backend};
            $(
                #[test]
                #[cfg_attr(not(t_minus_test_pg), ignore = "needs T_MINUS_TEST_PG")]
                fn $name() {
                    run_on(Backend::Postgres, concat!("postgres::", stringify!($name)), super::$name);
                }
            )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use __store_tests;
