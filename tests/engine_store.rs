//! The SQLite store through the engine: persistence across reopenings, the
//! schema version, and clear errors (never a panic) for files that are not
//! t-minus stores, are too new, corrupt, truncated or read-only.

use crate::common;

use std::path::Path;

use common::*;
use rusqlite::Connection;
use t_minus::store::sqlite::{APPLICATION_ID, SCHEMA_VERSION};
use t_minus::store::{Location, StoreError};
use t_minus::{AuditAction, Engine, EventState, NewEvent, Quorum, ResponseStatus, TMinusError};

fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// Asserts that the file still holds `before`, naming the first difference.
fn assert_untouched(path: &Path, before: &[u8]) {
    let now = bytes(path);
    if now != before {
        let at = now
            .iter()
            .zip(before)
            .position(|(a, b)| a != b)
            .unwrap_or(now.len().min(before.len()));
        panic!(
            "{} was modified: {} bytes before, {} now, first difference at byte {at}",
            path.display(),
            before.len(),
            now.len()
        );
    }
}

/// Opens `path` and, if that works, reads every event: the first error.
fn open_and_read(path: &Path) -> Result<usize, TMinusError> {
    let mut engine = Engine::new(path)?;
    let events = engine.list_events()?;
    let _ = engine.tick(at_min(0))?;
    Ok(events.len())
}

/// A store file with `n` events, closed (so its WAL is checkpointed away).
fn populated_store(path: &Path, n: usize) {
    let (_, clock) = engine();
    let mut engine = file_engine(path, &clock);
    for i in 0..n {
        engine
            .schedule(NewEvent {
                payload: serde_json::json!({ "filler": "x".repeat(200), "i": i }),
                ..spec(10, &["a", "b", "c"], Quorum::All)
            })
            .unwrap();
    }
    drop(engine);
    assert!(
        !path.with_extension("db-wal").exists()
            || std::fs::metadata(path.with_extension("db-wal"))
                .unwrap()
                .len()
                == 0,
        "the WAL was checkpointed on close"
    );
}

#[test]
fn a_reopened_store_keeps_everything() {
    let (_dir, path) = temp_store();
    let (_, clock) = engine();
    let (event, campaign, a, b);
    {
        let mut engine = file_engine(&path, &clock);
        event = engine
            .schedule(NewEvent {
                max_defer: Some(mins(30)),
                payload: serde_json::json!({"version": "2.0.0", "n": [1, 2]}),
                ..on_time(20, &["x", "y", "z"], Quorum::Majority)
            })
            .unwrap();
        clock.set(at_min(1));
        engine.confirm(event.id, &agent("x")).unwrap();
        engine.defer(event.id, &agent("y"), mins(5)).unwrap();
        engine
            .decline(event.id, &agent("z"), Some("away".into()))
            .unwrap();
        campaign = engine.create_campaign("persist".into()).unwrap();
        a = engine
            .campaign_add(campaign.id, spec(10, &["q"], Quorum::All), None)
            .unwrap();
        b = engine
            .campaign_add(campaign.id, spec(20, &["q"], Quorum::All), None)
            .unwrap();
        engine.campaign_link(campaign.id, a.id, b.id).unwrap();
    }
    let mut engine = file_engine(&path, &clock);
    let stored = get(&engine, event.id);
    assert_eq!(stored.state, EventState::Pending);
    assert_eq!(stored.quorum, 2);
    assert_eq!(stored.quorum_spec, Quorum::Majority);
    assert_eq!(stored.fire_policy, t_minus::FirePolicy::OnTime);
    assert_eq!(stored.max_defer, Some(mins(30)));
    assert_eq!(stored.deferred, mins(5));
    assert_eq!(stored.scheduled_at, at_min(25));
    assert_eq!(
        stored.payload,
        serde_json::json!({"version": "2.0.0", "n": [1, 2]})
    );
    assert_eq!(
        stored.attendees,
        vec![
            (agent("x"), ResponseStatus::Confirmed),
            (agent("y"), ResponseStatus::Deferred(mins(5))),
            (agent("z"), ResponseStatus::Declined),
        ]
    );
    assert_eq!(
        actions(&engine, event.id),
        vec![
            AuditAction::Scheduled,
            AuditAction::Confirmed,
            AuditAction::Deferred,
            AuditAction::Declined
        ]
    );
    let c = engine.get_campaign(campaign.id).unwrap().unwrap();
    assert_eq!(c.name, "persist");
    assert_eq!(c.events, vec![a.id, b.id]);
    assert_eq!(c.dependencies, vec![(a.id, b.id)]);
    assert_eq!(engine.resolve_event("persist/checkpoint-2").unwrap(), b.id);
    assert_eq!(state(&engine, b.id), EventState::Blocked);

    // The state machine continues where it stopped.
    clock.set(at_min(2));
    engine.confirm(event.id, &agent("y")).unwrap();
    drop(engine);
    let mut engine = file_engine(&path, &clock);
    let r = engine.tick(at_min(25)).unwrap();
    assert!(r.fired.contains(&event.id), "{r:?}");
    drop(engine);
    let mut engine = file_engine(&path, &clock);
    assert_eq!(state(&engine, event.id), EventState::Fired);
    assert!(
        engine.tick(at_min(26)).unwrap().fired.is_empty(),
        "reported once, across reopenings"
    );
}

#[test]
fn a_version_1_store_is_migrated_to_the_current_schema_keeping_its_events() {
    let (_dir, path) = temp_store();
    let clock = t_minus::FixedClock::new(t0());
    let id = file_engine(&path, &clock)
        .schedule(spec(10, &["alice"], Quorum::Count(1)))
        .unwrap()
        .id;
    // What version 1 had: no per-campaign due index, no groups, no
    // notification tables, no inbox index, no audit chain.
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(&stores::downgrade_sql(stores::Backend::Sqlite, 1))
        .unwrap();
    drop(conn);

    let engine = file_engine(&path, &clock);
    assert_eq!(get(&engine, id).state, EventState::Pending);
    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let index: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'events_campaign_due'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!((version, index), (SCHEMA_VERSION, 1));
}

#[test]
fn a_version_2_store_is_migrated_to_quorum_groups_keeping_its_events_and_answers() {
    let (_dir, path) = temp_store();
    let clock = t_minus::FixedClock::new(t0());
    let mut engine = file_engine(&path, &clock);
    let id = engine
        .schedule(spec(10, &["alice", "bob"], Quorum::All))
        .unwrap()
        .id;
    engine.confirm(id, &agent("alice")).unwrap();
    drop(engine);
    // What version 2 had: no groups column.
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(&stores::downgrade_sql(stores::Backend::Sqlite, 2))
        .unwrap();
    drop(conn);

    let mut engine = file_engine(&path, &clock);
    let event = get(&engine, id);
    assert_eq!(event.state, EventState::Pending);
    assert!(event.groups.is_empty(), "an old row is one unnamed group");
    assert_eq!(
        response(&event, "alice"),
        t_minus::ResponseStatus::Confirmed
    );
    assert_eq!(
        engine.confirm(id, &agent("bob")).unwrap().state,
        EventState::Fired,
        "its quorum still counts"
    );
    let grouped = engine
        .schedule(NewEvent {
            groups: vec![t_minus::QuorumGroup::new(
                "ops",
                Quorum::Count(1),
                vec![agent("carol")],
            )],
            ..spec(10, &[], Quorum::All)
        })
        .unwrap();
    assert_eq!(get(&engine, grouped.id).groups, grouped.groups);
    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!((version, SCHEMA_VERSION), (16, 16));
}

#[test]
fn a_new_store_has_the_schema_version_wal_and_application_id() {
    let (_dir, path) = temp_store();
    drop(Engine::new(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let app: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(app, APPLICATION_ID);
    assert_eq!(mode, "wal");
    drop(conn);
    // Reopening an up-to-date store is fine and changes nothing.
    let engine = Engine::new(&path).unwrap();
    assert!(engine.list_events().unwrap().is_empty());
}

#[test]
fn an_empty_file_becomes_a_store() {
    let (_dir, path) = temp_store();
    std::fs::write(&path, b"").unwrap();
    let (_, clock) = engine();
    let mut engine = file_engine(&path, &clock);
    engine.schedule(spec(10, &["a"], Quorum::All)).unwrap();
    assert_eq!(engine.list_events().unwrap().len(), 1);
    assert!(bytes(&path).starts_with(b"SQLite format 3\0"));
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_untouched() {
    let (_dir, path) = temp_store();
    for content in [
        &b"name,age\nalice,30\nbob,41\n"[..],
        &b"x"[..],
        &[0u8; 4096][..],
        &b"SQLite format 2\0 but not really a database, just text"[..],
    ] {
        std::fs::write(&path, content).unwrap();
        let err = Engine::new(&path).unwrap_err();
        match &err {
            TMinusError::Store(StoreError::NotAStore {
                location: Location::File(p),
                reason,
            }) => {
                assert_eq!(p, &path);
                assert!(reason.contains("not an SQLite database"), "{reason}");
            }
            other => panic!("expected NotAStore, got {other:?}"),
        }
        assert!(err.to_string().contains("is not a t-minus store"), "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert_untouched(&path, content);
    }
}

#[test]
fn an_sqlite_database_of_another_application_is_refused_untouched() {
    let (_dir, path) = temp_store();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE recipes (id INTEGER PRIMARY KEY, name TEXT);
             INSERT INTO recipes (name) VALUES ('soup'), ('bread');",
        )
        .unwrap();
    }
    let before = bytes(&path);
    let err = Engine::new(&path).unwrap_err();
    match &err {
        TMinusError::Store(StoreError::NotAStore { reason, .. }) => {
            assert!(reason.contains("another application"), "{reason}")
        }
        other => panic!("expected NotAStore, got {other:?}"),
    }
    assert_untouched(&path, &before);
    assert!(!path.with_extension("db-wal").exists());
    // Its data is intact and its journal mode unchanged.
    let conn = Connection::open(&path).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM recipes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
}

#[test]
fn an_empty_sqlite_database_with_a_foreign_application_id_is_refused() {
    let (_dir, path) = temp_store();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA application_id = 1234; CREATE TABLE t (x); DROP TABLE t;")
            .unwrap();
    }
    let before = bytes(&path);
    let err = Engine::new(&path).unwrap_err();
    assert!(
        matches!(err, TMinusError::Store(StoreError::NotAStore { .. })),
        "{err:?}"
    );
    assert_untouched(&path, &before);
}

#[test]
fn a_store_from_a_newer_version_is_refused_untouched() {
    let (_dir, path) = temp_store();
    populated_store(&path, 3);
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!("PRAGMA user_version = {};", SCHEMA_VERSION + 7))
            .unwrap();
    }
    let before = bytes(&path);
    let err = Engine::new(&path).unwrap_err();
    match &err {
        TMinusError::Store(StoreError::TooNew {
            found, supported, ..
        }) => {
            assert_eq!(*found, SCHEMA_VERSION + 7);
            assert_eq!(*supported, SCHEMA_VERSION);
        }
        other => panic!("expected StoreTooNew, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("newer t-minus"), "{msg}");
    assert!(
        msg.contains(&format!("schema version {}", SCHEMA_VERSION + 7)),
        "{msg}"
    );
    assert_untouched(&path, &before);
    let version: i64 = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION + 7);
}

#[test]
fn a_newer_store_in_rollback_journal_mode_is_also_left_untouched() {
    // A newer t-minus might not use WAL; refusing it must not convert it.
    let (_dir, path) = temp_store();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {};
             CREATE TABLE future (x);",
            SCHEMA_VERSION + 1
        ))
        .unwrap();
    }
    let before = bytes(&path);
    let err = Engine::new(&path).unwrap_err();
    assert!(
        matches!(err, TMinusError::Store(StoreError::TooNew { .. })),
        "{err:?}"
    );
    assert_untouched(&path, &before);
}

#[test]
fn a_truncated_store_gives_a_clear_error_not_a_panic() {
    let (_dir, path) = temp_store();
    populated_store(&path, 200);
    let full = bytes(&path);
    assert!(full.len() > 8 * 4096, "several pages: {}", full.len());
    for keep in [full.len() / 2, 4096 + 100, 100, 17] {
        std::fs::write(&path, &full[..keep]).unwrap();
        let _ = std::fs::remove_file(path.with_extension("db-wal"));
        let _ = std::fs::remove_file(path.with_extension("db-shm"));
        let err = open_and_read(&path).expect_err(&format!("truncated to {keep} bytes"));
        assert!(
            matches!(
                err,
                TMinusError::Store(StoreError::Corrupt { .. })
                    | TMinusError::Store(StoreError::NotAStore { .. })
            ),
            "truncated to {keep}: {err:?}"
        );
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
}

#[test]
fn a_corrupt_store_gives_a_clear_error_not_a_panic() {
    let (_dir, path) = temp_store();
    populated_store(&path, 200);
    let full = bytes(&path);
    let page = 4096;
    assert!(full.len() / page > 2, "several pages to corrupt");
    // Overwrite every page after the first with garbage: the schema page
    // survives, the tables do not.
    let mut bad = full.clone();
    for (i, b) in bad.iter_mut().enumerate().skip(page) {
        *b = (i as u8).wrapping_mul(31).wrapping_add(7);
    }
    std::fs::write(&path, &bad).unwrap();
    let err = open_and_read(&path).expect_err("corrupt pages");
    assert!(
        matches!(err, TMinusError::Store(StoreError::Corrupt { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("corrupt"), "{err}");

    // A damaged header page (schema) is refused as well.
    let mut bad = full.clone();
    for b in bad.iter_mut().take(page).skip(100) {
        *b = 0xA5;
    }
    std::fs::write(&path, &bad).unwrap();
    let err = open_and_read(&path).expect_err("corrupt schema page");
    assert!(
        matches!(
            err,
            TMinusError::Store(StoreError::Corrupt { .. })
                | TMinusError::Store(StoreError::NotAStore { .. })
        ),
        "{err:?}"
    );
}

#[test]
fn a_directory_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let err = Engine::new(dir.path()).unwrap_err();
    assert!(
        matches!(err, TMinusError::Store(StoreError::Open { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("directory"), "{err}");
}

#[test]
fn a_store_in_a_missing_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Engine::new(&dir.path().join("no/such/dir/tminus.db")).unwrap_err();
    assert!(
        matches!(err, TMinusError::Store(StoreError::NoDirectory { .. })),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("tminus.db") || err.to_string().contains("open"),
        "{err}"
    );
}

#[test]
fn a_read_only_store_gives_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, path) = temp_store();
    populated_store(&path, 1);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    // Root ignores permissions: nothing to test then.
    let probe = dir.path().join("probe");
    if std::fs::write(&probe, b"x").is_ok() {
        let _ = std::fs::remove_file(&probe);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        eprintln!("skipped: permissions are not enforced for this user");
        return;
    }
    let result = open_and_read(&path).and_then(|_| {
        let (_, clock) = engine();
        let mut engine = file_engine(&path, &clock);
        engine.schedule(spec(10, &["a"], Quorum::All)).map(|_| 0)
    });
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = result.expect_err("read-only store");
    assert!(
        matches!(
            err,
            TMinusError::Store(StoreError::ReadOnly { .. })
                | TMinusError::Store(StoreError::Open { .. })
        ),
        "{err:?}"
    );
}

#[test]
fn a_store_at_the_current_version_opens_without_writing() {
    // The first eight migrations are known by the schema version alone,
    // the later ones by the names in the ledger: a current store opens as
    // it is.
    let (_dir, path) = temp_store();
    populated_store(&path, 3);
    let before = bytes(&path);
    assert_eq!(open_and_read(&path).unwrap(), 3);
    let conn = Connection::open(&path).unwrap();
    let (version, ledger): (i64, String) = conn
        .query_row(
            "SELECT (SELECT user_version FROM pragma_user_version), \
             (SELECT group_concat(name) FROM (SELECT name FROM migrations ORDER BY position))",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (version, ledger.as_str()),
        (
            SCHEMA_VERSION,
            "compact_ids,tokens,gate_rules,delegations,log_baseline,chat_links,github_deployments,passkeys"
        )
    );
    drop(conn);
    assert_untouched(&path, &before);
}

#[test]
fn a_store_with_a_migration_this_build_does_not_know_is_refused_untouched() {
    let (_dir, path) = temp_store();
    populated_store(&path, 3);
    {
        // What a build with one more migration, of another branch or newer,
        // would have written.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS migrations (position BIGINT PRIMARY KEY, name TEXT NOT NULL UNIQUE);
             INSERT INTO migrations VALUES ({}, 'from_another_branch');
             PRAGMA user_version = {};",
            SCHEMA_VERSION,
            SCHEMA_VERSION + 1
        ))
        .unwrap();
    }
    let before = bytes(&path);
    let err = Engine::new(&path).unwrap_err();
    match &err {
        TMinusError::Store(StoreError::UnknownMigration { name, .. }) => {
            assert_eq!(name, "from_another_branch");
        }
        other => panic!("expected UnknownMigration, got {other:?}"),
    }
    let code = miette::Diagnostic::code(&err).map(|c| c.to_string());
    assert_eq!(code.as_deref(), Some("t_minus::store::unknown_migration"));
    assert!(err.to_string().contains("from_another_branch"), "{err}");
    assert_untouched(&path, &before);
}

/// The store `tests/fixtures/stores/schema-8.db`, written by the build
/// before compact ids (schema version 8), at 2026-01-01T00:45:00Z: campaign
/// `release` (notification rules, a reminder, build fired, review open
/// with alice confirmed and bob deferred 10m, deploy blocked), campaign
/// `signed` (signers; gate fired on alice's signed answer, after open) and
/// the standalone `standup` event b6917e98, missed. Its log, as `verify` read it then.
const SCHEMA_8_HEAD: &str = "86bedf3f6c2b5f2a88df44b6e8aa04a655a711608c98cfa9c67e0b0e059a18df";

#[test]
fn a_schema_8_store_is_migrated_to_compact_ids_in_place_and_its_log_still_verifies() {
    let (_dir, path) = temp_store();
    std::fs::copy("tests/fixtures/stores/schema-8.db", &path).unwrap();
    let at = |min: i64| {
        chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc)
            + chrono::Duration::minutes(min)
    };
    let clock = t_minus::FixedClock::new(at(50));
    let mut engine = file_engine(&path, &clock);

    // The same chain, then a baseline entry for each of the 6 events and 2
    // campaigns, which explains every row.
    let head = SCHEMA_8_HEAD.parse().unwrap();
    let report = engine.verify_log(Some(head)).unwrap();
    assert_eq!(
        (report.entries, report.events, report.signatures),
        (23, 6, 1)
    );
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);

    let review = engine.resolve_event("release/review").unwrap();
    let event = get(&engine, review);
    assert_eq!(event.state, EventState::Pending);
    assert_eq!(response(&event, "alice"), ResponseStatus::Confirmed);
    assert_eq!(
        response(&event, "bob"),
        ResponseStatus::Deferred(chrono::Duration::minutes(10))
    );
    assert_eq!(
        engine
            .campaign_name(event.campaign.expect("in a campaign"))
            .unwrap()
            .as_deref(),
        Some("release")
    );
    let deploy = engine.resolve_event("release/deploy").unwrap();
    assert_eq!(get(&engine, deploy).state, EventState::Blocked);
    assert_eq!(engine.notify_rules(review).unwrap().len(), 2);
    let build = engine.resolve_event("release/build").unwrap();
    assert!(
        !engine.deliveries(build).unwrap().is_empty(),
        "queued deliveries kept"
    );
    let standup = engine.resolve_event("b6917e98").unwrap();
    assert_eq!(get(&engine, standup).state, EventState::Missed);
    let after = engine.resolve_event("signed/after").unwrap();
    assert!(engine.signers_of(after).unwrap().is_some(), "signers kept");
    assert!(
        engine.confirm(after, &agent("alice")).is_err(),
        "an unsigned answer is still refused"
    );
    assert_eq!(
        engine.resolve_event(&review.to_string()[..8]).unwrap(),
        review
    );

    // The chain goes on from the migrated head.
    assert_eq!(
        engine.confirm(review, &agent("carol")).unwrap().state,
        EventState::Fired
    );
    let report = engine.verify_log(None).unwrap();
    assert!(report.entries > 23, "{report:?}");
    assert_eq!(get(&engine, deploy).state, EventState::Pending);
    drop(engine);

    // An edit after the baseline is reported.
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("UPDATE events SET state = 'pending' WHERE state = 'missed'")
        .unwrap();
    drop(conn);
    let engine = file_engine(&path, &clock);
    let report = engine.verify_report(Some(head), None).unwrap();
    let fields: Vec<(&str, String)> = report
        .mismatches
        .iter()
        .map(|m| (m.field.as_str(), m.id.to_string()))
        .collect();
    assert_eq!(fields, [("state", standup.to_string())]);
    drop(engine);

    let conn = Connection::open(&path).unwrap();
    let (version, id_type, hash_len, ledger): (i64, String, i64, String) = conn
        .query_row(
            "SELECT (SELECT user_version FROM pragma_user_version), \
             (SELECT DISTINCT typeof(id) FROM events), \
             (SELECT DISTINCT length(hash) FROM audit), \
             (SELECT group_concat(name) FROM (SELECT name FROM migrations ORDER BY position))",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        (version, id_type.as_str(), hash_len, ledger.as_str()),
        (
            SCHEMA_VERSION,
            "blob",
            32,
            "compact_ids,tokens,gate_rules,delegations,log_baseline,chat_links,github_deployments,passkeys"
        )
    );
    let integrity: String = conn
        .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
        .unwrap_or_else(|_| "ok".into());
    assert_eq!(integrity, "ok", "no dangling references");
}
