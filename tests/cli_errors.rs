//! Bad input: every case exits 1, prints nothing on stdout, and explains on
//! stderr what was wrong (naming the value) and how to fix it. The
//! diagnostics are snapshotted as transcripts: `$ t-minus ARGS` then stderr.
//!
//! Every test without `#[test]` runs on SQLite and on PostgreSQL
//! (`store_tests!` below them); the ones with it are about the SQLite file.

use crate::cli_support;

use cli_support::{settings, short, T};
use insta::assert_snapshot;

/// Runs each line, which must fail, and returns the transcript.
#[track_caller]
fn transcript(t: &T, lines: &[String]) -> String {
    let mut out = String::new();
    for line in lines {
        let stderr = t.fail(line);
        out += &format!("$ t-minus {line}\n{stderr}\n");
    }
    out
}

macro_rules! lines {
    ($($e:expr),* $(,)?) => { [$(String::from($e)),*] };
}

/// An event with three attendees, confirmations due at 15:00.
fn review(t: &T) -> String {
    t.schedule("review +15m --t-minus 5m --quorum 2 --attendees alice,bob,carol")
}

fn malformed_references() {
    let t = T::new();
    review(&t);
    let out = transcript(
        &t,
        &lines![
            "confirm zzzz alice",
            "confirm ab alice",
            "confirm 00000000-0000-4000-8000-00000000000g alice",
            "log a1b2-",
        ],
    );
    assert_snapshot!(out);
}

fn unknown_event_or_campaign() {
    let t = T::new();
    review(&t);
    t.ok("campaign create release");
    let out = transcript(
        &t,
        &lines![
            "confirm 00000000-0000-4000-8000-000000000000 alice",
            "log release/deploy",
            "confirm nope/review alice",
            "status nope",
            "cancel nope",
            "campaign order nope",
            "campaign add nope review +10m",
            "campaign link release checkpoint review",
        ],
    );
    assert_snapshot!(out);
}

fn ambiguous_prefix_lists_the_candidates() {
    let t = T::new();
    // Schedule until two events share their first 4 hex digits (birthday
    // bound: a few hundred events).
    let mut seen = std::collections::HashMap::new();
    let (a, b) = loop {
        let id = t.schedule("meeting +1h --attendees alice");
        let prefix = id[..4].to_string();
        if let Some(other) = seen.insert(prefix, id.clone()) {
            break (other, id);
        }
        assert!(seen.len() < 5000, "no shared prefix after 5000 events");
    };
    let prefix = &a[..4];
    let stderr = t.fail(&format!("confirm {prefix} alice"));
    assert!(
        stderr.contains(&a) || stderr.contains(short(&a)),
        "{stderr}"
    );
    assert!(
        stderr.contains(&b) || stderr.contains(short(&b)),
        "{stderr}"
    );
    let mut s = settings();
    s.add_filter(&format!(r"`{prefix}`"), "`[PREFIX]`");
    s.bind(|| assert_snapshot!(format!("$ t-minus confirm [PREFIX] alice\n{stderr}")));
    // A longer prefix that is unique works.
    let common = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    let unique = &a[..(common + 1).max(4)];
    assert_eq!(t.event(unique)["id"], a.as_str());
}

fn responses_that_are_refused() {
    let mut t = T::new();
    let id = review(&t);
    let capped = t.schedule("deploy +1h --attendees ops --max-defer 10m");
    t.ok(&format!("defer {capped} ops 6m"));
    let fired = t.schedule("checkpoint +1h --quorum 1 --attendees ci");
    t.ok(&format!("confirm {fired} ci"));
    let cancelled = t.schedule("meeting +1h --attendees a");
    t.ok(&format!("cancel {cancelled}"));
    let out = transcript(
        &t,
        &lines![
            format!("confirm {id} dave"),
            format!("defer {capped} ops 5m"),
            format!("confirm {fired} ci"),
            format!("decline {fired} ci"),
            format!("defer {cancelled} a 5m"),
            format!("cancel {fired}"),
        ],
    );
    assert_snapshot!("refused", out);

    // After the deadline (no tick has run yet): refused, with the deadline.
    t.set_now("2025-06-06T15:04:32Z");
    let late = t.fail(&format!("confirm {id} alice"));
    assert!(late.contains("2025-06-06T15:00:00Z"), "{late}");
    let late_defer = t.fail(&format!("defer {} bob 10m", &id[..4]));
    assert_snapshot!(
        "after_deadline",
        format!("$ t-minus confirm ID alice\n{late}\n$ t-minus defer ID bob 10m\n{late_defer}")
    );
    // Nothing was recorded for the refused responses; the next tick records
    // the miss.
    let actions = |t: &T| -> Vec<String> {
        let log = t.json(&format!("log {id} --json"));
        log.as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(actions(&t), ["scheduled"]);
    t.ok("tick");
    assert_eq!(actions(&t), ["scheduled", "missed"]);
}

fn bad_durations() {
    let t = T::new();
    let id = review(&t);
    let out = transcript(
        &t,
        &lines![
            format!("defer {id} alice abc"),
            format!("defer {id} alice -5m"),
            format!("defer {id} alice 0s"),
            format!("defer {id} alice 0"),
            "schedule review +10m --t-minus abc",
            "schedule review +10m --t-minus -5m",
            "schedule review +10m --max-defer=-1h",
            "schedule review +10m --max-defer '5 parsecs'",
        ],
    );
    assert_snapshot!(out);
    // The deferrals were not recorded.
    assert_eq!(t.event(&id)["deferred_ms"], 0);
}

fn bad_times() {
    let t = T::new();
    let out = transcript(
        &t,
        &lines![
            "schedule review 2025-06-06T15:00:00 --attendees a",
            "schedule review 2025-06-06 --attendees a",
            "schedule review tomorrow --attendees a",
            "schedule review +abc --attendees a",
            "schedule review -5m --attendees a",
            "schedule review 2025-06-06T14:00:00Z --attendees a",
            "schedule review +5m --t-minus 10m --attendees a",
        ],
    );
    assert_snapshot!(out);

    // A bad pinned clock is reported too.
    let mut cmd = t.command();
    cmd.env("T_MINUS_NOW", "2025-06-06 15:00").arg("status");
    let out = cli_support::output(cmd);
    assert_eq!(out.code, 1);
    assert_snapshot!("bad_t_minus_now", out.stderr);
}

fn bad_quorum_and_attendees() {
    let t = T::new();
    let out = transcript(
        &t,
        &lines![
            "schedule review +10m --quorum 3 --attendees alice,bob",
            "schedule review +10m --quorum 1",
            "schedule review +10m --quorum lots --attendees alice",
            "schedule review +10m --quorum -1 --attendees alice",
            "schedule review +10m --attendees alice,bob,alice",
            "schedule review +10m --attendees alice,,bob",
            "schedule review +10m --attendees 'alice, ,bob'",
            "schedule review +10m --attendees 'bob smith'",
            "schedule review +10m --attendees alice --organizer ''",
            "schedule review +10m --fire sometime --attendees alice",
        ],
    );
    assert_snapshot!(out);
}

fn empty_or_whitespace_agent_id_in_a_response() {
    let t = T::new();
    let id = review(&t);
    let out = transcript(
        &t,
        &lines![
            format!("confirm {id} ''"),
            format!("decline {id} '   '"),
            format!("defer {id} '\t' 5m"),
        ],
    );
    assert_snapshot!(out);
}

fn payload_that_is_not_json() {
    let t = T::new();
    let out = transcript(
        &t,
        &lines![
            "schedule deploy +10m --attendees ops --payload '{version: 2}'",
            "schedule deploy +10m --attendees ops --payload 'eu-west-1'",
        ],
    );
    assert_snapshot!(out);
    assert_eq!(t.events().len(), 0, "nothing was scheduled");
}

fn campaign_mistakes() {
    let t = T::new();
    t.ok("campaign create release");
    for line in [
        "campaign add release checkpoint +10m --attendees ci",
        "campaign add release review +20m --attendees alice",
        "campaign add release deploy +30m --attendees ops",
        "campaign link release checkpoint review",
        "campaign link release review deploy",
    ] {
        t.ok(line);
    }
    let before = t.json("campaign list --json");
    let out = transcript(
        &t,
        &lines![
            "campaign link release deploy checkpoint",
            "campaign link release review review",
            "campaign create release",
            "campaign create 'bad name'",
            "campaign create 9lives",
            "campaign add release review +20m --name review --attendees bob",
            "campaign add release review +20m --name 'no spaces' --attendees bob",
        ],
    );
    assert_snapshot!(out);
    // The refused links left the campaign unchanged.
    assert_eq!(t.json("campaign list --json"), before);
    assert_eq!(
        t.ok("campaign order release"),
        "checkpoint → review → deploy\n"
    );
}

fn usage_errors_exit_1() {
    let t = T::new();
    let out = transcript(
        &t,
        &lines![
            "--bogus status",
            "frobnicate",
            "schedule review",
            "confirm",
            "--color sometimes status",
            "status --json --json",
        ],
    );
    assert_snapshot!(out);
    // No subcommand at all: usage on stderr, exit 1.
    let out = t.run("");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("Usage: t-minus"), "{}", out.stderr);
}

// The tests above without `#[test]` run twice, as `sqlite::NAME` and
// `postgres::NAME` (tests/common/stores.rs).
cli_support::store_tests!(
    malformed_references,
    unknown_event_or_campaign,
    ambiguous_prefix_lists_the_candidates,
    responses_that_are_refused,
    bad_durations,
    bad_times,
    bad_quorum_and_attendees,
    empty_or_whitespace_agent_id_in_a_response,
    payload_that_is_not_json,
    campaign_mistakes,
    usage_errors_exit_1,
);

// ───────────────────────────── stores (SQLite only) ─────────────────────────────
// The store file itself: what is not a t-minus store, a newer schema, a
// read-only file.

/// Runs `status` and `schedule` on the store file at `t.db_path()` (which
/// the caller prepared), asserts that both exit 1 with the same diagnostic
/// and that the file is byte-for-byte what it was; returns the diagnostic.
#[track_caller]
fn refused_store(t: &T) -> String {
    let before = std::fs::read(t.db_path()).unwrap();
    let stderr = t.fail("status");
    let stderr2 = t.fail("schedule review +10m --attendees a");
    assert_eq!(stderr, stderr2);
    let after = std::fs::read(t.db_path()).unwrap();
    let changed: Vec<usize> = (0..before.len().max(after.len()))
        .filter(|&i| before.get(i) != after.get(i))
        .take(10)
        .collect();
    assert!(
        changed.is_empty(),
        "the refused store was modified: {} → {} bytes, first differing offsets {changed:?}",
        before.len(),
        after.len()
    );
    stderr
}

/// A foreign SQLite database with one table and one row.
fn foreign_db(t: &T) {
    let db = rusqlite::Connection::open(t.db_path()).unwrap();
    db.execute_batch(
        "CREATE TABLE recipes (id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO recipes (name) VALUES ('pancakes');",
    )
    .unwrap();
}

#[test]
fn a_text_file_is_not_a_store() {
    let t = T::new();
    std::fs::write(t.db_path(), "shopping list:\n- milk\n- eggs\n").unwrap();
    assert_snapshot!(refused_store(&t));
}

#[test]
fn a_foreign_sqlite_database_is_not_a_store() {
    let t = T::new();
    foreign_db(&t);
    assert_snapshot!(refused_store(&t));
    // Its data is intact and no t-minus table was added.
    let db = rusqlite::Connection::open(t.db_path()).unwrap();
    let name: String = db
        .query_row("SELECT name FROM recipes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(name, "pancakes");
    let tables: i64 = db
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 1);
}

#[test]
fn a_store_from_a_newer_version_is_refused() {
    let t = T::new();
    t.schedule("review +1h --attendees a");
    {
        let db = rusqlite::Connection::open(t.db_path()).unwrap();
        let version: i64 = db
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert!(version >= 1);
        db.execute_batch("PRAGMA user_version = 999;").unwrap();
    }
    assert_snapshot!(refused_store(&t));
    let db = rusqlite::Connection::open(t.db_path()).unwrap();
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 999);
}

#[test]
fn a_directory_is_not_a_store() {
    let t = T::new();
    std::fs::create_dir(t.db_path()).unwrap();
    let stderr = t.fail("status");
    assert_snapshot!(stderr);
}

/// Root ignores file permissions, so a read-only store is opened read-only
/// through SQLite's URI form, which SQLite enforces for everyone.
#[test]
fn a_read_only_store_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let ok = cli_support::command(&db.display().to_string(), cli_support::Clock::Real)
        .args(["schedule", "review", "+1h", "--attendees", "a"])
        .output()
        .unwrap();
    assert!(ok.status.success());
    let before = std::fs::read(&db).unwrap();
    let uri = format!("file:{}?mode=ro", db.display());
    for args in [&["status"][..], &["tick"], &["schedule", "review", "+1h"]] {
        let out = cli_support::command(&uri, cli_support::Clock::Real)
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("t_minus::store::read_only"), "{stderr}");
        assert!(stderr.contains("needs write access"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the store is unchanged"
    );
}
