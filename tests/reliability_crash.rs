//! Crash safety (issue 5, acceptance 3): `kill -9` at random moments.
//!
//! - `apply` of a 10,000-event manifest killed at a random moment: the store
//!   passes `PRAGMA integrity_check` and holds all of the apply or none of
//!   it (0 or 10,000 events; the campaign present iff its events are); what
//!   was there before is untouched; applying again completes it.
//! - `run` killed while events fire (2,000 events falling due over about a
//!   second, with cascades): integrity holds, every event's state agrees with
//!   its audit log (a final event has exactly one final entry, of its state;
//!   a non-final event none), and a fresh `run` finishes the job.
//!
//! CI runs 8 apply kills and 4 run kills; `T_MINUS_CRASH_ITERATIONS=30`
//! runs 30 of each. The kill moments come from a seeded generator
//! (`T_MINUS_CRASH_SEED` to vary it); each iteration prints what it saw.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rusqlite::Connection;

const EVENTS: usize = 10_000;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_t-minus"))
}

fn cmd(db: &Path) -> Command {
    let mut c = Command::new(bin());
    c.arg("--db")
        .arg(db)
        .env("NO_COLOR", "1")
        .env_remove("T_MINUS_NOW")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn ok(db: &Path, args: &[&str]) -> Output {
    let out = cmd(db).stdout(Stdio::piped()).args(args).output().unwrap();
    assert!(
        out.status.success() || out.status.code() == Some(3),
        "t-minus {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn iterations(ci: usize) -> usize {
    std::env::var("T_MINUS_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ci)
}

/// splitmix64, seeded.
struct Rng(u64);

impl Rng {
    fn new(salt: u64) -> Self {
        let seed = std::env::var("T_MINUS_CRASH_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0xC0FF_EE00);
        Rng(seed ^ salt)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// `PRAGMA integrity_check` of the store (a missing file counts as empty).
fn integrity(db: &Path) -> String {
    if !db.exists() {
        return "ok".into();
    }
    let conn = Connection::open(db).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

fn count(db: &Path, sql: &str) -> i64 {
    if !db.exists() {
        return 0;
    }
    let conn = Connection::open(db).unwrap();
    // A store killed before its tables were created has none.
    conn.query_row(sql, [], |r| r.get(0)).unwrap_or(0)
}

/// The 10,000-event manifest: 100 levels of 100, each event of levels
/// 1–99 needing one of the level before (as `benches/manifest.rs`).
fn big_manifest() -> String {
    let mut s = String::from("campaign: big\ndefaults:\n  t_minus: 1m\n  quorum: 1\nevents:\n");
    for level in 0..100 {
        for i in 0..100 {
            s.push_str(&format!(
                "  e{level}-{i}:\n    at: +10m\n    attendees: [agent-{i}, agent-{}]\n",
                i + 1
            ));
            if level > 0 {
                s.push_str(&format!("    needs: [e{}-{i}]\n", level - 1));
            }
        }
    }
    s
}

const SMALL: &str = "campaign: before\nevents:\n  gate:\n    at: +1h\n    attendees: [a]\n";

#[test]
fn apply_killed_at_random_moments_lands_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("big.yaml");
    std::fs::write(&manifest, big_manifest()).unwrap();
    let small = dir.path().join("small.yaml");
    std::fs::write(&small, SMALL).unwrap();
    let big_events = "SELECT count(*) FROM events WHERE campaign_id IN (SELECT id FROM campaigns WHERE name = 'big')";

    // One undisturbed apply, to know how long one takes.
    let db = dir.path().join("timing.db");
    let started = Instant::now();
    ok(&db, &["apply", manifest.to_str().unwrap()]);
    let full = started.elapsed();
    assert_eq!(count(&db, big_events), EVENTS as i64);

    let mut rng = Rng::new(1);
    let n = iterations(8);
    let (mut none, mut all) = (0, 0);
    for it in 0..n {
        let db = dir.path().join(format!("apply-{it}.db"));
        // Every other store already holds another campaign.
        let before = it % 2 == 1;
        if before {
            ok(&db, &["apply", small.to_str().unwrap()]);
        }
        let mut child = cmd(&db)
            .args(["apply", manifest.to_str().unwrap()])
            .spawn()
            .unwrap();
        // Anywhere in the apply, and half the time in its last stretch,
        // where the transaction writes and commits.
        let span = full.as_micros() as u64;
        let wait = Duration::from_micros(if it % 2 == 0 {
            rng.below(span * 11 / 10)
        } else {
            span * 6 / 10 + rng.below(span / 2)
        });
        std::thread::sleep(wait);
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();

        assert_eq!(integrity(&db), "ok", "iteration {it}");
        let events = count(&db, big_events);
        let campaigns = count(&db, "SELECT count(*) FROM campaigns WHERE name = 'big'");
        eprintln!(
            "apply kill {it}: after {wait:?} of ~{full:?} ({status}): {events} events, {campaigns} campaign"
        );
        assert!(
            events == 0 || events == EVENTS as i64,
            "iteration {it}: partial apply: {events} events"
        );
        assert_eq!(
            campaigns,
            (events > 0) as i64,
            "iteration {it}: campaign iff events"
        );
        if events > 0 {
            all += 1;
            let edges = count(&db, "SELECT count(*) FROM edges");
            assert_eq!(edges, 9_900, "iteration {it}: all edges");
        } else {
            none += 1;
        }
        if before {
            assert_eq!(
                count(&db, "SELECT count(*) FROM campaigns WHERE name = 'before'"),
                1,
                "iteration {it}: the earlier campaign is intact"
            );
        }
        // The store stays usable; applying again completes the job.
        if it % 4 == 0 {
            ok(&db, &["apply", manifest.to_str().unwrap()]);
            assert_eq!(count(&db, big_events), EVENTS as i64);
            let plan = cmd(&db)
                .args(["plan", manifest.to_str().unwrap(), "--detailed-exitcode"])
                .status()
                .unwrap();
            assert_eq!(plan.code(), Some(0), "iteration {it}: no changes left");
        }
    }
    eprintln!("apply kills: {n} iterations, {none} with nothing applied, {all} complete");
}

/// 2,000 events falling due over about a second: 1,500 roots (timers that
/// fire, and every fifth one an unanswered gate that misses) and 500
/// dependents opening 300 ms after their need fired (or cancelled when it
/// missed).
fn firing_manifest() -> String {
    let mut s = String::from("campaign: fire\nevents:\n");
    for i in 0..1500 {
        let at = 1500 + (i * 1000) / 1500;
        if i % 5 == 0 {
            s.push_str(&format!(
                "  r{i}:\n    at: +{at}ms\n    attendees: [nobody]\n"
            ));
        } else {
            s.push_str(&format!(
                "  r{i}:\n    at: +{at}ms\n    quorum: 0\n    fire: on-time\n"
            ));
        }
    }
    for i in 0..500 {
        s.push_str(&format!(
            "  d{i}:\n    needs: [r{}]\n    at: +300ms\n    quorum: 0\n    fire: on-time\n",
            i * 3
        ));
    }
    s
}

/// Checks every event's state against its audit log; returns the number of
/// final events.
fn consistent(db: &Path, label: &str) -> usize {
    let conn = Connection::open(db).unwrap();
    let states: HashMap<String, String> = conn
        .prepare("SELECT id, state FROM events")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut finals: HashMap<String, Vec<String>> = HashMap::new();
    let mut stmt = conn
        .prepare(
            "SELECT event_id, action FROM audit \
             WHERE action IN ('fired', 'missed', 'cancelled') ORDER BY seq",
        )
        .unwrap();
    for row in stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
    {
        let (id, action) = row.unwrap();
        finals.entry(id).or_default().push(action);
    }
    let mut n_final = 0;
    for (id, state) in &states {
        let entries = finals.get(id).cloned().unwrap_or_default();
        if matches!(state.as_str(), "fired" | "missed" | "cancelled") {
            n_final += 1;
            assert_eq!(
                entries.as_slice(),
                std::slice::from_ref(state),
                "{label}: event {id} is {state}"
            );
        } else {
            assert!(
                entries.is_empty(),
                "{label}: event {id} is {state} but logged {entries:?}"
            );
        }
    }
    for id in finals.keys() {
        assert!(
            states.contains_key(id),
            "{label}: audit of unknown event {id}"
        );
    }
    n_final
}

#[test]
fn run_killed_while_firing_keeps_states_and_logs_consistent_and_a_new_run_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("fire.yaml");
    std::fs::write(&manifest, firing_manifest()).unwrap();
    let mut rng = Rng::new(2);
    let n = iterations(4);
    let mut partial = 0;
    for it in 0..n {
        let db = dir.path().join(format!("run-{it}.db"));
        ok(&db, &["apply", manifest.to_str().unwrap()]);
        let applied = Instant::now();
        let mut child = cmd(&db).args(["run", "--json"]).spawn().unwrap();
        // Kill somewhere in the firing window (the anchor is the start of
        // the apply, which itself takes a moment).
        let at = Duration::from_millis(1200 + rng.below(1000));
        std::thread::sleep(at.saturating_sub(applied.elapsed()));
        child.kill().unwrap();
        child.wait().unwrap();

        assert_eq!(integrity(&db), "ok", "iteration {it}");
        let label = format!("iteration {it} after kill");
        let finals = consistent(&db, &label);
        assert_eq!(count(&db, "SELECT count(*) FROM events"), 2000);
        if finals > 0 && finals < 2000 {
            partial += 1;
        }
        eprintln!("run kill {it}: at {at:?}: {finals} of 2000 events final");

        // A fresh run finishes the job: every root fires or misses, every
        // dependent follows (fires 300 ms after its need, or is cancelled).
        let out = cmd(&db)
            .args(["run", "--campaign", "fire", "--timeout", "60s"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "some gates miss: exit 3");
        assert_eq!(
            consistent(&db, &format!("iteration {it} after rerun")),
            2000
        );
        assert_eq!(
            count(&db, "SELECT count(*) FROM events WHERE state = 'missed'"),
            300
        );
        assert_eq!(
            count(&db, "SELECT count(*) FROM events WHERE state = 'cancelled'"),
            100,
            "dependents of missed gates (every fifth of r0, r3, r6, …)"
        );
        assert_eq!(integrity(&db), "ok");
    }
    eprintln!("run kills: {n} iterations, {partial} killed with some but not all events final");
}
