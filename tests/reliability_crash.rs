//! Crash safety (issue 5, acceptance 3): `kill -9` at random moments.
//!
//! - `apply` of a 10,000-event manifest (2,000 on PostgreSQL: see
//!   [`POSTGRES_LEVELS`]) killed at a random moment: the store holds all of
//!   the apply or none of it (0 or 10,000 events; the campaign present iff
//!   its events are); what was there before is untouched; applying again
//!   completes it.
//! - `run` killed while events fire (2,000 events falling due over about a
//!   second, with cascades): every event's state agrees with its audit log
//!   (a final event has exactly one final entry, of its state; a non-final
//!   event none), and a fresh `run` finishes the job.
//!
//! Both run on SQLite and on PostgreSQL (`store_tests!` at the end), and
//! read the store through the library (`Engine::open`), in one snapshot per
//! check. On SQLite the killed process wrote the store's file itself, so
//! each check also runs `PRAGMA integrity_check` on it. On PostgreSQL the killed
//! process is a client: the server rolls back its open transaction when the
//! connection drops and its files are not the client's to tear, so there is
//! no counterpart; what a killed client can break — a half-applied
//! manifest, a transition without its log entry, a lock never released —
//! is what the other checks look for (the re-apply and the fresh `run`
//! must get the write lock the killed process held).
//!
//! CI runs 8 apply kills and 4 run kills; `T_MINUS_CRASH_ITERATIONS=30`
//! runs 30 of each. The kill moments come from a seeded generator
//! (`T_MINUS_CRASH_SEED` to vary it); each iteration prints what it saw.

use crate::common;

use std::collections::HashMap;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::stores::{current, Backend};
use common::Rng;
use t_minus::store::EventFilter;
use t_minus::{Engine, EventState};

/// Events of the big manifest on SQLite: 100 levels of 100.
const SQLITE_LEVELS: usize = 100;

/// On PostgreSQL, 20 levels of 100 (2,000 events, 1,900 edges). Every
/// statement is a round trip to the server, so applying the 10,000 events
/// takes ~8 s there (release build; ~1 s on SQLite), and nine applies or
/// part-applies per run would take minutes. 2,000 events take ~1.5 s:
/// still one long transaction for the kills to land in.
const POSTGRES_LEVELS: usize = 20;

/// The binary on the store at `db` (a file or a server URL), on the real
/// clock.
fn cmd(db: &str) -> Command {
    let mut c = crate::cli_support::command(db, crate::cli_support::Clock::Real);
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

fn ok(db: &str, args: &[&str]) -> Output {
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

/// The generator of the kill moments, seeded by `T_MINUS_CRASH_SEED`.
fn rng(salt: u64) -> Rng {
    let seed = std::env::var("T_MINUS_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0xC0FF_EE00);
    Rng(seed ^ salt)
}

/// `PRAGMA integrity_check` of an SQLite store (a missing file counts as
/// sound); nothing to check on PostgreSQL (see the module docs).
fn integrity(db: &str) -> String {
    if current() != Backend::Sqlite || !std::path::Path::new(db).exists() {
        return "ok".into();
    }
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// The store at `db` through the library (an SQLite store killed before
/// its file or tables were made is created empty).
fn open(db: &str) -> Engine {
    Engine::open(db).unwrap_or_else(|e| panic!("open {db}: {e}"))
}

/// What the apply test looks at, read in one snapshot.
#[derive(Debug)]
struct Applied {
    /// Events of all campaigns.
    events: u64,
    /// Whether campaign `big` exists.
    big: bool,
    /// Its events and edges.
    big_events: usize,
    big_edges: usize,
    /// Whether campaign `before` exists.
    before: bool,
}

fn applied(db: &str) -> Applied {
    let mut engine = open(db);
    let mut tx = engine.store_mut().read().unwrap();
    let big = tx.campaign_by_name("big").unwrap();
    let (big_events, big_edges) = match &big {
        Some(c) => (
            tx.campaign_events(c.id).unwrap().len(),
            tx.campaign_edges(c.id).unwrap().len(),
        ),
        None => (0, 0),
    };
    Applied {
        events: tx.count_events().unwrap(),
        big: big.is_some(),
        big_events,
        big_edges,
        before: tx.campaign_by_name("before").unwrap().is_some(),
    }
}

/// How many levels of 100 events the big manifest has on this store.
fn levels() -> usize {
    match current() {
        Backend::Sqlite => SQLITE_LEVELS,
        Backend::Postgres => POSTGRES_LEVELS,
    }
}

/// The big manifest: `levels` levels of 100 (10,000 events on SQLite), each
/// event of levels 1 and up needing one of the level before (as
/// `benches/manifest.rs`).
fn big_manifest(levels: usize) -> String {
    let mut s = String::from("campaign: big\ndefaults:\n  t_minus: 1m\n  quorum: 1\nevents:\n");
    for level in 0..levels {
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

fn apply_killed_at_random_moments_lands_whole_or_not_at_all() {
    let _serial = crate::common::serial();
    let levels = levels();
    let events_total = levels * 100;
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("big.yaml");
    std::fs::write(&manifest, big_manifest(levels)).unwrap();
    let manifest = manifest.to_str().unwrap();
    let small = dir.path().join("small.yaml");
    std::fs::write(&small, SMALL).unwrap();
    let small = small.to_str().unwrap();

    // One undisturbed apply, to know how long one takes.
    let (_timing, db) = common::store();
    let started = Instant::now();
    ok(&db, &["apply", manifest]);
    let full = started.elapsed();
    assert_eq!(applied(&db).big_events, events_total);

    let mut rng = rng(1);
    let n = iterations(8);
    let (mut none, mut all) = (0, 0);
    for it in 0..n {
        let (_store, db) = common::store();
        // Every other store already holds another campaign.
        let before = it % 2 == 1;
        if before {
            ok(&db, &["apply", small]);
        }
        let mut child = cmd(&db).args(["apply", manifest]).spawn().unwrap();
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
        let got = applied(&db);
        eprintln!(
            "apply kill {it}: after {wait:?} of ~{full:?} ({status}): {} events, {} campaign",
            got.big_events, got.big as u8
        );
        assert!(
            got.big_events == 0 || got.big_events == events_total,
            "iteration {it}: partial apply: {got:?}"
        );
        assert_eq!(
            got.big,
            got.big_events > 0,
            "iteration {it}: campaign iff events: {got:?}"
        );
        assert_eq!(
            got.events,
            (got.big_events + before as usize) as u64,
            "iteration {it}: no events outside the campaigns: {got:?}"
        );
        if got.big {
            all += 1;
            assert_eq!(
                got.big_edges,
                events_total - 100,
                "iteration {it}: all edges"
            );
        } else {
            none += 1;
        }
        assert_eq!(
            got.before, before,
            "iteration {it}: the earlier campaign is intact"
        );
        // The store stays usable; applying again completes the job.
        if it % 4 == 0 {
            ok(&db, &["apply", manifest]);
            assert_eq!(applied(&db).big_events, events_total);
            let plan = cmd(&db)
                .args(["plan", manifest, "--detailed-exitcode"])
                .status()
                .unwrap();
            assert_eq!(plan.code(), Some(0), "iteration {it}: no changes left");
        }
    }
    eprintln!("apply kills: {n} iterations, {none} with nothing applied, {all} complete");
}

/// When the firing starts, after the apply's anchor (its start): on
/// PostgreSQL the apply of the 2,000 events takes ~1.1 s rather than
/// ~0.2 s, so the firing starts later there, leaving the runner time to be
/// up and waiting before the first event falls due, as on SQLite.
fn firing_start() -> Duration {
    match current() {
        Backend::Sqlite => Duration::from_millis(1500),
        Backend::Postgres => Duration::from_millis(3000),
    }
}

/// 2,000 events falling due over about a second from `start` after the
/// anchor: 1,500 roots (timers that fire, and every fifth one an unanswered
/// gate that misses) and 500 dependents opening 300 ms after their need
/// fired (or cancelled when it missed).
fn firing_manifest(start: Duration) -> String {
    let start = start.as_millis() as usize;
    let mut s = String::from("campaign: fire\nevents:\n");
    for i in 0..1500 {
        let at = start + (i * 1000) / 1500;
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

/// What the run test looks at, read in one snapshot: every event's state,
/// and the final entries (fired, missed, cancelled) of the whole audit log
/// by event, in log order.
fn states_and_finals(db: &str) -> (HashMap<String, EventState>, HashMap<String, Vec<String>>) {
    let mut engine = open(db);
    let mut tx = engine.store_mut().read().unwrap();
    let states = tx
        .list_events(EventFilter::All)
        .unwrap()
        .into_iter()
        .map(|e| (e.id.to_string(), e.state))
        .collect();
    let mut finals: HashMap<String, Vec<String>> = HashMap::new();
    for entry in tx.audit_since(0, 10_000_000).unwrap() {
        let action = entry.action.as_str();
        if matches!(action, "fired" | "missed" | "cancelled") {
            finals
                .entry(entry.event.to_string())
                .or_default()
                .push(action.to_string());
        }
    }
    (states, finals)
}

/// Checks every event's state against its audit log; returns the number of
/// final events and the number of events in each state.
fn consistent(db: &str, label: &str) -> (usize, HashMap<&'static str, usize>) {
    let (states, finals) = states_and_finals(db);
    let mut n_final = 0;
    let mut by_state: HashMap<&'static str, usize> = HashMap::new();
    for (id, state) in &states {
        *by_state.entry(state.as_str()).or_default() += 1;
        let entries = finals.get(id).cloned().unwrap_or_default();
        if state.is_final() {
            n_final += 1;
            assert_eq!(entries, [state.as_str()], "{label}: event {id} is {state}");
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
    (n_final, by_state)
}

fn run_killed_while_firing_keeps_states_and_logs_consistent_and_a_new_run_finishes() {
    let _serial = crate::common::serial();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("fire.yaml");
    let start = firing_start();
    std::fs::write(&manifest, firing_manifest(start)).unwrap();
    let manifest = manifest.to_str().unwrap();
    let mut rng = rng(2);
    let n = iterations(4);
    let mut partial = 0;
    for it in 0..n {
        let (_store, db) = common::store();
        let anchor = Instant::now();
        ok(&db, &["apply", manifest]);
        let apply = anchor.elapsed();
        let mut child = cmd(&db).args(["run", "--json"]).spawn().unwrap();
        // Kill somewhere in the firing window: from just before the first
        // event falls due to about when the last root does (timed from
        // the anchor, the start of the apply).
        let at = start - Duration::from_millis(100) + Duration::from_millis(rng.below(1000));
        std::thread::sleep(at.saturating_sub(anchor.elapsed()));
        child.kill().unwrap();
        child.wait().unwrap();

        assert_eq!(integrity(&db), "ok", "iteration {it}");
        let label = format!("iteration {it} after kill");
        let (finals, by_state) = consistent(&db, &label);
        assert_eq!(by_state.values().sum::<usize>(), 2000);
        if finals > 0 && finals < 2000 {
            partial += 1;
        }
        eprintln!("run kill {it}: at {at:?} (apply took {apply:?}): {finals} of 2000 events final");

        // A fresh run finishes the job: every root fires or misses, every
        // dependent follows (fires 300 ms after its need, or is cancelled).
        let out = cmd(&db)
            .args(["run", "--campaign", "fire", "--timeout", "60s"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(3),
            "some gates miss: exit 3\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (finals, by_state) = consistent(&db, &format!("iteration {it} after rerun"));
        assert_eq!(finals, 2000);
        assert_eq!(by_state.get("missed"), Some(&300));
        assert_eq!(
            by_state.get("cancelled"),
            Some(&100),
            "dependents of missed gates (every fifth of r0, r3, r6, …)"
        );
        assert_eq!(integrity(&db), "ok");
    }
    eprintln!("run kills: {n} iterations, {partial} killed with some but not all events final");
}

common::store_tests!(
    apply_killed_at_random_moments_lands_whole_or_not_at_all,
    run_killed_while_firing_keeps_states_and_logs_consistent_and_a_new_run_finishes,
);
