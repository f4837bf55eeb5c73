//! What can go wrong with a store, and where.
//!
//! A [`StoreError`] names its [`Location`] (an SQLite file, or a PostgreSQL
//! server without its password) and says how to fix the problem for that
//! kind of store. The backends turn their drivers' errors into it
//! (`store/sqlite.rs`, `store/postgres.rs`); [`crate::TMinusError::Store`]
//! carries it unchanged to the user.

use std::fmt;
use std::path::PathBuf;

use miette::Diagnostic;
use thiserror::Error;

/// Where a store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite file.
    File(PathBuf),
    /// A PostgreSQL server and database, `postgres://user@host:port/db`,
    /// never with the password.
    Server(String),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Server(server) => f.write_str(server),
        }
    }
}

impl Location {
    /// Where to look for the cause of damage or a failure, for this kind of
    /// store.
    fn inspect_hint(&self) -> &'static str {
        match self {
            Location::File(_) => "`sqlite3 FILE 'PRAGMA integrity_check'` shows the damage",
            Location::Server(_) => "the PostgreSQL server's log says more",
        }
    }

    /// What to check when a store refuses writes.
    fn write_access_hint(&self) -> &'static str {
        match self {
            Location::File(_) => {
                "t-minus needs write access to the store file and its directory (for the -wal and -shm files)"
            }
            Location::Server(_) => {
                "t-minus needs a PostgreSQL user allowed to write the store's tables, on a server that accepts writes (a primary, not a standby)"
            }
        }
    }

    /// What to check when an operation failed for no known reason.
    fn failure_hint(&self) -> &'static str {
        match self {
            Location::File(_) => {
                "nothing was changed; retry the command, and if it fails again check the disk and `sqlite3 FILE 'PRAGMA integrity_check'`"
            }
            Location::Server(_) => {
                "nothing was changed; retry the command, and if it fails again check the PostgreSQL server's log"
            }
        }
    }
}

/// A problem with the store: it cannot be opened, reached or written, or
/// it holds something other than a t-minus store.
#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum StoreError {
    /// A file or schema that is not a t-minus store.
    #[error("{location} is not a t-minus store: {reason}")]
    #[diagnostic(
        code(t_minus::store::not_a_store),
        help("open a t-minus store, or a path that does not exist yet to create one")
    )]
    NotAStore {
        /// The store.
        location: Location,
        /// What was found instead.
        reason: String,
    },

    /// A store written by a newer t-minus.
    #[error("{location} was written by a newer t-minus (schema version {found}; this build supports up to {supported})")]
    #[diagnostic(
        code(t_minus::store::newer_version),
        help("upgrade t-minus to open this store; it was left untouched")
    )]
    TooNew {
        /// The store.
        location: Location,
        /// The version it holds.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },

    /// A store with a schema migration applied that this build does not
    /// know: a newer build, or a build of another branch, migrated it.
    #[error("{location} has the schema migration {name:?} applied, which this build of t-minus does not know")]
    #[diagnostic(
        code(t_minus::store::unknown_migration),
        help("open it with the t-minus build that migrated it (or a newer one); it was left untouched")
    )]
    UnknownMigration {
        /// The store.
        location: Location,
        /// The migration's name.
        name: String,
    },

    /// A store whose applied migrations are this build's, in another order
    /// (builds of two branches that each added a migration).
    #[error("{location} has the schema migration {found:?} applied in place {position}, where this build has {expected:?}")]
    #[diagnostic(
        code(t_minus::store::migration_order),
        help("open it with the t-minus build that migrated it; this build would migrate it wrongly, so it was left untouched")
    )]
    MigrationOrder {
        /// The store.
        location: Location,
        /// The place in the order (1 is the first migration).
        position: usize,
        /// What the store applied there.
        found: String,
        /// What this build has there.
        expected: String,
    },

    /// A damaged store.
    #[error("the store {location} is corrupt: {reason}")]
    #[diagnostic(
        code(t_minus::store::corrupt),
        help("restore it from a backup; {}", .location.inspect_hint())
    )]
    Corrupt {
        /// The store.
        location: Location,
        /// What the database reported.
        reason: String,
    },

    /// A store that cannot be written.
    #[error("the store {location} is read-only: {reason}")]
    #[diagnostic(
        code(t_minus::store::read_only),
        help("{}", .location.write_access_hint())
    )]
    ReadOnly {
        /// The store.
        location: Location,
        /// What the database reported.
        reason: String,
    },

    /// A store that cannot be opened at all.
    #[error("cannot open the store {location}: {reason}")]
    #[diagnostic(
        code(t_minus::store::open),
        help("open an SQLite file in a writable directory, or a PostgreSQL URL such as postgres://user@host:5432/db")
    )]
    Open {
        /// The store.
        location: Location,
        /// What went wrong.
        reason: String,
    },

    /// A database server that cannot be reached, or a connection that broke.
    #[error("cannot reach the PostgreSQL server {server}: {reason}")]
    #[diagnostic(
        code(t_minus::store::unreachable),
        help("check that the server is running and accepts connections at that host and port (`pg_isready -h HOST -p PORT`); `run` and `wait` keep retrying with backoff")
    )]
    Unreachable {
        /// The server, without the password.
        server: String,
        /// What the driver reported.
        reason: String,
    },

    /// A database server that refused the credentials.
    #[error("the PostgreSQL server {server} refused the login: {reason}")]
    #[diagnostic(
        code(t_minus::store::auth),
        help("check the user and password: postgres://USER:PASSWORD@HOST/DB in the store's URL, or PGUSER and PGPASSWORD")
    )]
    Auth {
        /// The server, without the password.
        server: String,
        /// What the server said.
        reason: String,
    },

    /// TLS to a database server failed: a refused certificate, or a server
    /// without TLS when the URL requires it.
    #[error("TLS with the PostgreSQL server {server} failed: {reason}")]
    #[diagnostic(
        code(t_minus::store::tls),
        help("with sslmode=verify-full (or verify-ca) the certificate must chain to a root in sslrootcert=FILE (or the system's) and name the host of the URL; sslmode=require encrypts without checking it; sslmode=disable turns TLS off")
    )]
    Tls {
        /// The server, without the password.
        server: String,
        /// What failed.
        reason: String,
    },

    /// No store at the path, for a command that reads evidence and must not
    /// create an empty store (`verify`, `attest`).
    #[error("there is no store at {path}")]
    #[diagnostic(
        code(t_minus::store::missing),
        help("check the store's path; verification and attestation read an existing store and never create one")
    )]
    Missing {
        /// The path.
        path: std::path::PathBuf,
    },

    /// A new SQLite store in a directory that does not exist: nothing is
    /// created, not even the directory.
    #[error("cannot create the store {path}: the directory {dir} does not exist")]
    #[diagnostic(
        code(t_minus::store::no_directory),
        help("create the directory first, or give a path in an existing directory")
    )]
    NoDirectory {
        /// The store's path.
        path: std::path::PathBuf,
        /// The directory that is missing (or is not a directory).
        dir: std::path::PathBuf,
    },

    /// A database server without the database named in the URL.
    #[error("the PostgreSQL server {server} has no such database: {reason}")]
    #[diagnostic(
        code(t_minus::store::no_database),
        help("create it first (`createdb -h HOST -U USER DB`, or `CREATE DATABASE db;` in psql), or fix the database name at the end of the URL; t-minus creates its tables itself")
    )]
    DatabaseMissing {
        /// The server, without the password.
        server: String,
        /// What the server said.
        reason: String,
    },

    /// Another process held the store's write lock longer than a writer
    /// waits.
    #[error("storage error: {reason} (another process held the store for more than {}s)", .waited.as_secs())]
    #[diagnostic(
        code(t_minus::store::error),
        help("{}", .location.failure_hint())
    )]
    Busy {
        /// The store.
        location: Location,
        /// What the database reported.
        reason: String,
        /// How long the writer waited.
        waited: std::time::Duration,
    },

    /// Any other storage failure.
    #[error("storage error: {location}: {reason}")]
    #[diagnostic(
        code(t_minus::store::error),
        help("{}", .location.failure_hint())
    )]
    Failed {
        /// The store.
        location: Location,
        /// What the database reported.
        reason: String,
    },
}

impl StoreError {
    /// Whether the problem may pass by itself (a database server that
    /// cannot be reached right now, a connection that broke).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unreachable { .. })
    }
}
