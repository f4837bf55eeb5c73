//! Library-level concurrency: several engines (each its own connection, as
//! separate processes would have) on one store at the same moment — one
//! file on SQLite; one database on PostgreSQL, as engines on several hosts
//! would share it.
//!
//! Every test runs on SQLite and on PostgreSQL (`store_tests!` at the end).

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Barrier};
use std::thread;

use common::*;
use t_minus::{AuditAction, EventState, FixedClock, Quorum, ResponseStatus, TickResult};
use uuid::Uuid;

const THREADS: usize = 8;

fn eight_engines_confirm_different_attendees_of_one_event_at_once() {
    let (_store, db) = store();
    let names: Vec<String> = (0..THREADS).map(|i| format!("agent-{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    // A few rounds, each on a fresh event in the same store.
    for round in 0..3 {
        let id = {
            let clock = FixedClock::new(t0());
            let mut engine = open_engine(&db, &clock);
            engine.schedule(spec(10, &refs, Quorum::All)).unwrap().id
        };
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = names
            .iter()
            .cloned()
            .map(|name| {
                let db = db.clone();
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    let clock = FixedClock::new(at_min(1));
                    let mut engine = open_engine(&db, &clock);
                    barrier.wait();
                    engine.confirm(id, &agent(&name)).map(|e| e.state)
                })
            })
            .collect();
        let states: Vec<EventState> = handles
            .into_iter()
            .map(|h| h.join().expect("no panic").expect("confirm succeeds"))
            .collect();
        // Exactly one confirmation completed the quorum.
        assert_eq!(
            states.iter().filter(|s| **s == EventState::Fired).count(),
            1,
            "round {round}: {states:?}"
        );

        let clock = FixedClock::new(t0());
        let mut engine = open_engine(&db, &clock);
        let event = get(&engine, id);
        assert_eq!(event.state, EventState::Fired);
        assert_eq!(event.confirmed_count(), THREADS, "no confirmation lost");
        for name in &names {
            assert_eq!(response(&event, name), ResponseStatus::Confirmed);
        }
        let log = actions(&engine, id);
        assert_eq!(
            log.iter().filter(|a| **a == AuditAction::Confirmed).count(),
            THREADS
        );
        assert_eq!(log.iter().filter(|a| **a == AuditAction::Fired).count(), 1);
        assert_eq!(log.last(), Some(&AuditAction::Fired));
        assert_eq!(engine.tick(at_min(2)).unwrap().fired, vec![id]);
    }
}

fn eight_engines_creating_one_new_store_at_once_all_succeed() {
    let (_store, db) = store();
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let db = db.clone();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                let clock = FixedClock::new(t0());
                let mut engine = open_engine(&db, &clock);
                engine
                    .schedule(spec(10, &[&format!("a{i}")], Quorum::All))
                    .map(|e| e.id)
            })
        })
        .collect();
    let ids: Vec<Uuid> = handles
        .into_iter()
        .map(|h| h.join().expect("no panic").expect("schedule succeeds"))
        .collect();
    let clock = FixedClock::new(t0());
    let engine = open_engine(&db, &clock);
    let stored: Vec<Uuid> = engine.list_events().unwrap().iter().map(|e| e.id).collect();
    assert_eq!(stored.len(), THREADS);
    for id in ids {
        assert!(stored.contains(&id));
    }
}

/// Counts every (event, transition) over all results.
fn tally(results: &[TickResult]) -> HashMap<(Uuid, AuditAction), usize> {
    let mut seen = HashMap::new();
    for r in results {
        for (list, action) in [
            (&r.fired, AuditAction::Fired),
            (&r.missed, AuditAction::Missed),
            (&r.cancelled, AuditAction::Cancelled),
            (&r.opened, AuditAction::Opened),
        ] {
            for id in list {
                *seen.entry((*id, action)).or_insert(0) += 1;
            }
        }
    }
    seen
}

fn engines_ticking_one_store_at_once_report_each_transition_exactly_once() {
    let (_store, db) = store();
    let clock = FixedClock::new(t0());
    let mut setup = open_engine(&db, &clock);
    // 300 standalone events due at +10m (a third fire, a third miss, a
    // third are timers) and 20 campaign chains a → b → c where a misses.
    let mut expected: HashMap<(Uuid, AuditAction), usize> = HashMap::new();
    for i in 0..300 {
        let (new, action) = match i % 3 {
            0 => (
                on_time(10, &["a", "b"], Quorum::Count(1)),
                AuditAction::Fired,
            ),
            1 => (spec(10, &["a", "b"], Quorum::All), AuditAction::Missed),
            _ => (on_time(10, &[], Quorum::Count(0)), AuditAction::Fired),
        };
        let e = setup.schedule(new).unwrap();
        if i % 3 == 0 {
            clock.set(at_min(1));
            setup.confirm(e.id, &agent("a")).unwrap();
            clock.set(t0());
        }
        expected.insert((e.id, action), 1);
    }
    for k in 0..20 {
        let c = setup.create_campaign(format!("chain-{k}")).unwrap();
        let a = setup
            .campaign_add(c.id, spec(10, &["x"], Quorum::All), None)
            .unwrap();
        let b = setup
            .campaign_add(c.id, on_time(20, &["y"], Quorum::Count(0)), None)
            .unwrap();
        let cc = setup
            .campaign_add(c.id, spec(30, &["z"], Quorum::All), None)
            .unwrap();
        setup.campaign_link(c.id, a.id, b.id).unwrap();
        setup.campaign_link(c.id, b.id, cc.id).unwrap();
        expected.insert((a.id, AuditAction::Missed), 1);
        expected.insert((b.id, AuditAction::Cancelled), 1);
        expected.insert((cc.id, AuditAction::Cancelled), 1);
    }
    // The confirms above recorded no transition (on-time waits).
    drop(setup);

    let mut all = Vec::new();
    for now in [at_min(10), at_min(10), at_min(11), at_min(40)] {
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let db = db.clone();
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    let clock = FixedClock::new(now);
                    let mut engine = open_engine(&db, &clock);
                    barrier.wait();
                    engine.tick(now)
                })
            })
            .collect();
        for h in handles {
            all.push(h.join().expect("no panic").expect("tick succeeds"));
        }
    }
    let seen = tally(&all);
    let duplicates: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicates.is_empty(), "reported twice: {duplicates:?}");
    assert_eq!(seen, expected);
    // Every reported transition is also listed in `transitions`, once.
    let transitions: usize = all.iter().map(|r| r.transitions.len()).sum();
    assert_eq!(transitions, expected.len());

    let clock = FixedClock::new(t0());
    let mut engine = open_engine(&db, &clock);
    assert!(engine.tick(at_min(100)).unwrap().is_empty());
    assert!(engine.list_unfinished().unwrap().is_empty());
}

fn responses_and_ticks_interleaving_lose_nothing_and_report_once() {
    // Half the engines confirm, half tick, at the same instant.
    let (_store, db) = store();
    let clock = FixedClock::new(t0());
    let mut setup = open_engine(&db, &clock);
    let ids: Vec<Uuid> = (0..40)
        .map(|_| {
            setup
                .schedule(spec(10, &["p", "q", "r", "s"], Quorum::All))
                .unwrap()
                .id
        })
        .collect();
    drop(setup);
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let db = db.clone();
            let ids = ids.clone();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let clock = FixedClock::new(at_min(1));
                let mut engine = open_engine(&db, &clock);
                barrier.wait();
                let mut results = Vec::new();
                if i < 4 {
                    let who = ["p", "q", "r", "s"][i];
                    for id in &ids {
                        engine.confirm(*id, &agent(who)).unwrap();
                    }
                } else {
                    for _ in 0..20 {
                        results.push(engine.tick(at_min(1)).unwrap());
                    }
                }
                results
            })
        })
        .collect();
    let mut all: Vec<TickResult> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("no panic"))
        .collect();
    let clock = FixedClock::new(t0());
    let mut engine = open_engine(&db, &clock);
    all.push(engine.tick(at_min(1)).unwrap());
    let seen = tally(&all);
    assert_eq!(seen.len(), ids.len());
    for id in &ids {
        assert_eq!(seen.get(&(*id, AuditAction::Fired)), Some(&1));
        let e = get(&engine, *id);
        assert_eq!(e.state, EventState::Fired);
        assert_eq!(e.confirmed_count(), 4);
    }
}

/// Sixteen engines answer at once: each its own event (two attendees,
/// quorum all: the second answer fires it) and one shared event (sixteen
/// attendees, quorum all), while a reader follows the log as `run` does,
/// by "entries after the last one I saw". Every answer is kept, the shared
/// event fires once, the log's sequence numbers run 1, 2, 3… without a gap
/// in the order the reader saw them committed, and the chain verifies.
fn writers_on_different_events_and_on_one_event_keep_every_answer_in_one_chain() {
    const WRITERS: usize = 16;
    let (_store, db) = store();
    let clock = FixedClock::new(t0());
    let mut setup = open_engine(&db, &clock);
    let names: Vec<String> = (0..WRITERS).map(|i| format!("agent-{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let shared = setup.schedule(spec(10, &refs, Quorum::All)).unwrap().id;
    let own: Vec<Uuid> = (0..WRITERS)
        .map(|_| {
            setup
                .schedule(spec(10, &["x", "y"], Quorum::All))
                .unwrap()
                .id
        })
        .collect();
    let before = setup.store().read().unwrap().latest_audit_seq().unwrap();
    drop(setup);

    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (db, done) = (db.clone(), Arc::clone(&done));
        thread::spawn(move || {
            let clock = FixedClock::new(t0());
            let engine = open_engine(&db, &clock);
            let mut seen = Vec::new();
            let mut last = before;
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let batch = engine
                    .store()
                    .read()
                    .unwrap()
                    .audit_since(last, 1000)
                    .unwrap();
                if let Some(e) = batch.last() {
                    last = e.seq;
                }
                seen.extend(batch.into_iter().map(|e| e.seq));
                if finished {
                    return seen;
                }
                thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    let barrier = Arc::new(Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (db, barrier) = (db.clone(), Arc::clone(&barrier));
            let (mine, name) = (own[i], names[i].clone());
            thread::spawn(move || {
                let clock = FixedClock::new(at_min(1));
                let mut engine = open_engine(&db, &clock);
                barrier.wait();
                engine.confirm(mine, &agent("x")).unwrap();
                engine.confirm(shared, &agent(&name)).unwrap();
                engine.confirm(mine, &agent("y")).unwrap().state
            })
        })
        .collect();
    for w in writers {
        assert_eq!(w.join().expect("no panic"), EventState::Fired);
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = reader.join().expect("no panic");

    let clock = FixedClock::new(t0());
    let engine = open_engine(&db, &clock);
    for id in &own {
        let e = get(&engine, *id);
        assert_eq!((e.state, e.confirmed_count()), (EventState::Fired, 2));
    }
    let e = get(&engine, shared);
    assert_eq!((e.state, e.confirmed_count()), (EventState::Fired, WRITERS));
    let log = actions(&engine, shared);
    assert_eq!(log.iter().filter(|a| **a == AuditAction::Fired).count(), 1);
    assert_eq!(log.last(), Some(&AuditAction::Fired));
    // 3 answers per writer, a `fired` per own event, one for the shared.
    let total = (3 * WRITERS + WRITERS + 1) as i64;
    let expected: Vec<i64> = (before + 1..=before + total).collect();
    assert_eq!(
        seen, expected,
        "the reader saw every entry once, in seq order"
    );
    let all = engine
        .store()
        .read()
        .unwrap()
        .audit_since(0, 10_000)
        .unwrap();
    let seqs: Vec<i64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=before + total).collect::<Vec<_>>(), "no gap");
    let verified = engine.verify_log(None).unwrap();
    assert_eq!(verified.entries, (before + total) as u64);
}

// The tests above without `#[test]` run twice, as `sqlite::NAME` and
// `postgres::NAME` (tests/common/stores.rs).
common::store_tests!(
    eight_engines_confirm_different_attendees_of_one_event_at_once,
    eight_engines_creating_one_new_store_at_once_all_succeed,
    engines_ticking_one_store_at_once_report_each_transition_exactly_once,
    responses_and_ticks_interleaving_lose_nothing_and_report_once,
    writers_on_different_events_and_on_one_event_keep_every_answer_in_one_chain,
);
