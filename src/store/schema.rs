//! The schema migrations of both stores: one list of names, in order.
//!
//! Each migration has a name and a script per dialect,
//! `migrations/sqlite/NAME.sql` and `migrations/postgres/NAME.sql`.
//! A store records how many it has applied (SQLite's `PRAGMA
//! user_version`, PostgreSQL's `tm_meta.version`: the schema version) and,
//! from the ninth on, their names (a `migrations` table, `tm_migrations`
//! on PostgreSQL, created with the first of them). The first eight were
//! written before names were recorded: their count alone says which.
//!
//! Opening a store checks that what it applied is the start of this list,
//! name by name: a store that some other build migrated (a newer build, or
//! one of another branch whose migration took the same place in the list)
//! is refused untouched, never migrated on a wrong assumption.
//!
//! **Adding a migration:** write both scripts under a new descriptive name
//! (no number: its place in [`MIGRATIONS`] orders it) and append one
//! [`migration!`] line at the end of the list. Two branches that each add
//! one conflict on that line when merged, and whoever merges decides their
//! order; a store a branch's build has already migrated then opens only if
//! that order keeps its migrations first.

use super::sql::{baseline_existing, chain_existing, Backend, Value};
use super::{Location, StoreError};
use crate::error::Result;

/// One schema migration: its name and its script in each dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Migration {
    /// Its name, recorded in the store once applied.
    pub name: &'static str,
    /// The SQLite script.
    pub sqlite: &'static str,
    /// The PostgreSQL script.
    pub postgres: &'static str,
}

/// The migration named `$name`, with the scripts of that name.
macro_rules! migration {
    ($name:literal) => {
        Migration {
            name: $name,
            sqlite: include_str!(concat!("migrations/sqlite/", $name, ".sql")),
            postgres: include_str!(concat!("migrations/postgres/", $name, ".sql")),
        }
    };
}

/// Every migration, in the order they are applied. Append new ones at the
/// end (see the module documentation); never reorder, rename or remove one
/// that a released build has applied.
pub(crate) const MIGRATIONS: &[Migration] = &[
    migration!("0001_initial"),
    migration!("0002_campaign_due"),
    migration!("0003_quorum_groups"),
    migration!("0004_notify"),
    migration!("0005_inbox"),
    migration!("0006_audit_chain"),
    migration!("0007_signers"),
    migration!("0008_listing_order"),
    migration!("compact_ids"),
    migration!("tokens"),
    migration!("gate_rules"),
    migration!("delegations"),
    migration!("log_baseline"),
    migration!("chat_links"),
    migration!("github_deployments"),
    migration!("passkeys"),
];

/// How many migrations stores record by their count alone: those written
/// before names were recorded.
pub(crate) const UNNAMED: usize = 8;

/// The schema version this build writes: the number of migrations.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The migration that adds the audit chain; the entries of a store older
/// than it are chained after migrating.
pub(crate) const CHAIN: &str = "0006_audit_chain";

/// The migration after which every event and campaign has a baseline entry
/// in the log: the rows of a store older than it are recorded after
/// migrating.
pub(crate) const BASELINE: &str = "log_baseline";

/// The table that records migration names (`tm_migrations`; SQLite's
/// `migrations`), in the statements' dialect-neutral form.
pub(crate) const LEDGER: &str = "CREATE TABLE IF NOT EXISTS tm_migrations \
     (position BIGINT PRIMARY KEY, name TEXT NOT NULL UNIQUE)";

/// Records that the migration at `position` (0-based), named `name`, was
/// applied.
pub(crate) const RECORD: &str = "INSERT INTO tm_migrations (position, name) VALUES ($1, $2)";

/// How many of [`MIGRATIONS`] a store has applied, from its schema version
/// and the names it recorded (in position order): refuses a store with a
/// migration this build does not know, one written by a newer build, and
/// one whose migrations are not the start of this build's list.
pub(crate) fn applied(location: &Location, version: i64, recorded: &[String]) -> Result<usize> {
    let known: Vec<&str> = MIGRATIONS.iter().map(|m| m.name).collect();
    check(&known, location, version, recorded)
}

/// [`applied`] against the list of names `known`.
fn check(known: &[&str], location: &Location, version: i64, recorded: &[String]) -> Result<usize> {
    let supported = known.len() as i64;
    let unnamed = known[..UNNAMED.min(version.max(0) as usize).min(known.len())].iter();
    let applied: Vec<&str> = unnamed
        .copied()
        .chain(recorded.iter().map(String::as_str))
        .collect();
    if let Some(name) = applied.iter().find(|name| !known.contains(name)) {
        return Err(StoreError::UnknownMigration {
            location: location.clone(),
            name: name.to_string(),
        }
        .into());
    }
    if version > supported {
        return Err(StoreError::TooNew {
            location: location.clone(),
            found: version,
            supported,
        }
        .into());
    }
    for (position, (name, expected)) in applied.iter().zip(known).enumerate() {
        if name != expected {
            return Err(StoreError::MigrationOrder {
                location: location.clone(),
                position: position + 1,
                found: name.to_string(),
                expected: expected.to_string(),
            }
            .into());
        }
    }
    if applied.len() as i64 != version {
        return Err(StoreError::Corrupt {
            location: location.clone(),
            reason: format!(
                "its schema version is {version} but it records {} applied migrations",
                applied.len()
            ),
        }
        .into());
    }
    Ok(applied.len())
}

/// Applies the migrations after the first `from` in the open write
/// transaction `b`, recording the names of those that are named; the
/// caller records the new schema version and commits.
pub(crate) fn migrate<B: Backend>(b: &mut B, from: usize) -> Result<()> {
    for (position, migration) in MIGRATIONS.iter().enumerate().skip(from) {
        b.migrate_script(migration)?;
        if position >= UNNAMED {
            b.execute(LEDGER, &[])?;
            b.execute(
                RECORD,
                &[Value::Int(position as i64), Value::from(migration.name)],
            )?;
        }
    }
    let chained = MIGRATIONS.iter().position(|m| m.name == CHAIN);
    if chained.is_some_and(|chained| from <= chained) {
        chain_existing(b)?;
    }
    let baseline = MIGRATIONS.iter().position(|m| m.name == BASELINE);
    if baseline.is_some_and(|baseline| from <= baseline) {
        baseline_existing(b, chrono::Utc::now())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::TMinusError;

    fn at() -> Location {
        Location::File("t.db".into())
    }

    fn names(range: std::ops::Range<usize>) -> Vec<String> {
        MIGRATIONS[range]
            .iter()
            .map(|m| m.name.to_string())
            .collect()
    }

    #[test]
    fn names_are_unique_and_the_unnamed_ones_come_first() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert!(
                MIGRATIONS[..i].iter().all(|other| other.name != m.name),
                "{} twice",
                m.name
            );
        }
        assert!(UNNAMED <= MIGRATIONS.len());
        assert!(MIGRATIONS.iter().any(|m| m.name == CHAIN));
    }

    #[test]
    fn a_store_counted_by_version_alone_has_applied_that_many() {
        assert_eq!(applied(&at(), 0, &[]).unwrap(), 0);
        assert_eq!(applied(&at(), 5, &[]).unwrap(), 5);
        assert_eq!(
            applied(&at(), SCHEMA_VERSION, &names(UNNAMED..MIGRATIONS.len())).unwrap(),
            MIGRATIONS.len()
        );
    }

    #[test]
    fn an_unknown_name_is_refused() {
        let mut recorded = names(UNNAMED..MIGRATIONS.len());
        recorded.push("from_another_branch".into());
        let err = applied(&at(), SCHEMA_VERSION, &recorded).unwrap_err();
        assert!(
            matches!(&err, TMinusError::Store(StoreError::UnknownMigration { name, .. }) if name == "from_another_branch"),
            "{err:?}"
        );
    }

    #[test]
    fn a_newer_version_is_too_new_unless_it_names_what_is_unknown() {
        let err = applied(&at(), SCHEMA_VERSION + 1, &[]).unwrap_err();
        assert!(
            matches!(err, TMinusError::Store(StoreError::TooNew { .. })),
            "{err:?}"
        );
        let mut recorded = names(UNNAMED..MIGRATIONS.len());
        recorded.push("later".into());
        let err = applied(&at(), SCHEMA_VERSION + 1, &recorded).unwrap_err();
        assert!(
            matches!(&err, TMinusError::Store(StoreError::UnknownMigration { name, .. }) if name == "later"),
            "{err:?}"
        );
    }

    #[test]
    fn migrations_merged_in_another_order_are_refused() {
        let known = [
            "0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "ours", "theirs",
        ];
        let theirs_first = ["theirs".to_string()];
        let err = check(&known, &at(), 9, &theirs_first).unwrap_err();
        assert!(
            matches!(&err, TMinusError::Store(StoreError::MigrationOrder { position: 9, found, expected, .. })
                if found == "theirs" && expected == "ours"),
            "{err:?}"
        );
        let ours_first = ["ours".to_string()];
        assert_eq!(check(&known, &at(), 9, &ours_first).unwrap(), 9);
    }

    #[test]
    fn a_count_that_disagrees_with_the_names_is_corrupt() {
        let err = applied(&at(), 3, &names(3..4)).unwrap_err();
        assert!(
            matches!(err, TMinusError::Store(StoreError::Corrupt { .. })),
            "{err:?}"
        );
    }
}
