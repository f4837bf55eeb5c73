//! Engine benchmarks (issue 2, acceptance point 9).
//!
//! Measures the hot operations against file stores holding 1k, 10k and 100k
//! events, so that WAL writes and fsyncs (`synchronous = FULL`) are real:
//!
//! - `confirm`: one attendee confirms an open event (a full write transaction);
//! - `status`: resolve an 8-hex-digit id prefix as `t-minus status REF` does
//!   (event or campaign, [`Engine::resolve_target`]), then load the event;
//! - `tick_idle`: a tick with nothing due;
//! - `tick_one_due`: a tick that finds exactly one due event and fires it.
//!
//! Each store is built once per size, on first use, in one big transaction
//! through [`Engine::store_mut`] and [`Tx::insert_event`]: a mix of pending
//! events spread over the next 30 days, final (fired/missed) history, and
//! small campaign chains with blocked events and edges, every event with
//! attendees and audit entries. Before measuring, the query plans of every
//! hot query are checked with `EXPLAIN QUERY PLAN` on the 1k store: a full
//! table scan fails the run.
//!
//! Run: `cargo bench --bench engine` (a few minutes on 2 cores). See
//! `docs/performance.md` for the method and the measured table.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rusqlite::Connection;
use serde_json::json;
use t_minus::store::{CampaignRow, NewAuditEntry, Tx};
use t_minus::{
    AgentId, AuditAction, Engine, EventKind, EventState, FirePolicy, FixedClock, Quorum,
    ResponseStatus, TMinusEvent, Target,
};
use tempfile::TempDir;
use uuid::Uuid;

/// Store sizes, in events.
const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

/// Attendees of the event the `confirm` benchmark answers.
const HOT_ATTENDEES: usize = 64;

/// How many stored events the `status` benchmark cycles through.
const STATUS_SAMPLE: usize = 256;

/// The benchmark's "now": every pending event fires after it.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
}

/// Where `tick_one_due` puts its due events: far before `t0`, one per
/// millisecond, so that a tick at the k-th fire time finds exactly one.
fn due_base() -> DateTime<Utc> {
    t0() - Duration::days(60)
}

/// One store of a given size, with what the benchmarks need to find in it.
struct Fixture {
    engine: Engine,
    path: PathBuf,
    _dir: TempDir,
    /// The open event with many attendees that `confirm` answers.
    hot: Uuid,
    /// Next attendee of `hot` to confirm.
    hot_next: usize,
    /// References (id prefixes) `status` resolves, with the ids they name.
    refs: Vec<(String, Uuid)>,
    /// Next entry of `refs`.
    ref_next: usize,
    /// Offset in ms from [`due_base`] of the next due event for `tick_one_due`.
    due_next: i64,
}

fn agent(name: impl Into<String>) -> AgentId {
    AgentId(name.into())
}

/// A plain event row as the engine would store it; callers adjust it.
fn event(kind: EventKind, at: DateTime<Utc>, created: DateTime<Utc>) -> TMinusEvent {
    TMinusEvent {
        id: Uuid::new_v4(),
        kind,
        scheduled_at: at,
        t_minus: Duration::minutes(5),
        organizer: agent("coordinator"),
        attendees: Vec::new(),
        quorum: 3,
        payload: json!({ "topic": "benchmark" }),
        state: EventState::Pending,
        campaign: None,
        name: None,
        quorum_spec: Quorum::All,
        fire_policy: FirePolicy::Early,
        max_defer: None,
        deferred: Duration::zero(),
        relative_at: None,
        started_at: Some(created),
        finished_at: None,
        created_at: created,
        last_response_at: None,
        description: None,
    }
}

fn audit(
    tx: &mut dyn Tx,
    id: Uuid,
    at: DateTime<Utc>,
    agent: Option<AgentId>,
    action: AuditAction,
) -> t_minus::Result<()> {
    tx.append_audit(&NewAuditEntry {
        event: id,
        at,
        recorded_at: at,
        agent,
        action,
        detail: json!({}),
    })
    .map(drop)
}

/// Inserts an event with its `scheduled` entry and one entry per response
/// (and its transition, when final), as the engine would have left them.
fn insert(tx: &mut dyn Tx, e: &TMinusEvent) -> t_minus::Result<()> {
    tx.insert_event(e)?;
    audit(
        tx,
        e.id,
        e.created_at,
        Some(e.organizer.clone()),
        AuditAction::Scheduled,
    )?;
    for (who, status) in &e.attendees {
        let action = match status {
            ResponseStatus::Confirmed => AuditAction::Confirmed,
            ResponseStatus::Deferred(_) => AuditAction::Deferred,
            ResponseStatus::Declined => AuditAction::Declined,
            _ => continue,
        };
        let at = e.last_response_at.unwrap_or(e.created_at);
        audit(tx, e.id, at, Some(who.clone()), action)?;
    }
    match (e.state, e.finished_at) {
        (EventState::Fired, Some(at)) => audit(tx, e.id, at, None, AuditAction::Fired),
        (EventState::Missed, Some(at)) => audit(tx, e.id, at, None, AuditAction::Missed),
        _ => Ok(()),
    }
}

/// Fills a store with `n` events: 70% pending (fire times spread over the
/// next 30 days, up to 2 of 3 attendees confirmed), 25% final history
/// (fired or missed, up to 40 days ago), 5% in 5-event campaign chains
/// (first pending, the rest blocked behind it).
fn populate(tx: &mut dyn Tx, n: usize, hot: &TMinusEvent) -> t_minus::Result<Vec<Uuid>> {
    let now = t0();
    let mut ids = Vec::with_capacity(n);
    let chains = n / 100;
    let standalone = n - 1 - chains * 5;
    let spread_min = 30 * 24 * 60;
    for i in 0..standalone {
        let created = now - Duration::minutes((i % 10_000) as i64 + 60);
        let attendees = [agent("agent-1"), agent("agent-2"), agent("agent-3")];
        let e = if i % 4 == 0 {
            // Final history.
            let at = now - Duration::minutes((i % (40 * 24 * 60)) as i64 + 1);
            let created = at - Duration::hours(1);
            let mut e = event(EventKind::Checkpoint, at, created);
            let fired = i % 8 == 0;
            e.state = if fired {
                EventState::Fired
            } else {
                EventState::Missed
            };
            e.finished_at = Some(at - e.t_minus);
            e.last_response_at = Some(created + Duration::minutes(10));
            let status = |k: usize| match (fired, k) {
                (true, _) | (false, 0) => ResponseStatus::Confirmed,
                (false, _) => ResponseStatus::Missed,
            };
            e.attendees = attendees
                .into_iter()
                .enumerate()
                .map(|(k, a)| (a, status(k)))
                .collect();
            e
        } else {
            // Open: fires within the next 30 days.
            let at = now + Duration::hours(1) + Duration::minutes((i * 7919 % spread_min) as i64);
            let mut e = event(EventKind::Meeting, at, created);
            let confirmed = i % 3;
            if confirmed > 0 {
                e.last_response_at = Some(created + Duration::minutes(1));
            }
            e.attendees = attendees
                .into_iter()
                .enumerate()
                .map(|(k, a)| {
                    let s = if k < confirmed {
                        ResponseStatus::Confirmed
                    } else {
                        ResponseStatus::Pending
                    };
                    (a, s)
                })
                .collect();
            e
        };
        insert(tx, &e)?;
        ids.push(e.id);
    }
    for c in 0..chains {
        let campaign = CampaignRow {
            id: Uuid::new_v4(),
            name: format!("campaign-{c}"),
            description: None,
            created_at: now - Duration::hours(1),
            managed: false,
            anchor_at: Some(now - Duration::hours(1)),
            revision: 0,
        };
        tx.insert_campaign(&campaign)?;
        let mut prev: Option<Uuid> = None;
        for step in 0..5 {
            let at = now + Duration::days(1) + Duration::hours(step + (c % 500) as i64);
            let mut e = event(EventKind::Deploy, at, now - Duration::hours(1));
            e.campaign = Some(campaign.id);
            e.name = Some(format!("step-{step}"));
            e.attendees = vec![
                (agent("agent-1"), ResponseStatus::Pending),
                (agent("agent-2"), ResponseStatus::Pending),
            ];
            e.quorum = 2;
            if prev.is_some() {
                e.state = EventState::Blocked;
                e.started_at = None;
            }
            insert(tx, &e)?;
            if let Some(p) = prev {
                tx.insert_edge(campaign.id, p, e.id)?;
            }
            prev = Some(e.id);
            ids.push(e.id);
        }
    }
    insert(tx, hot)?;
    ids.push(hot.id);
    // The history's transitions were reported long ago.
    tx.claim_reports()?;
    Ok(ids)
}

impl Fixture {
    fn build(n: usize) -> Fixture {
        let started = Instant::now();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bench.db");
        let clock = Arc::new(FixedClock::new(t0()));
        let mut engine = Engine::new(&path).expect("open store").with_clock(clock);

        let mut hot = event(EventKind::Review, t0() + Duration::days(365), t0());
        hot.attendees = (0..HOT_ATTENDEES)
            .map(|k| (agent(format!("hot-{k:02}")), ResponseStatus::Pending))
            .collect();
        // Quorum `all` and the last attendee never answers: the event stays open.
        hot.quorum = HOT_ATTENDEES;

        let ids = {
            let mut tx = engine.store_mut().write().expect("begin");
            let ids = populate(&mut *tx, n, &hot).expect("populate");
            tx.commit().expect("commit");
            ids
        };
        // Start measuring from a checkpointed, empty WAL.
        let conn = Connection::open(&path).expect("second connection");
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("checkpoint");
        drop(conn);

        let step = (ids.len() / STATUS_SAMPLE).max(1);
        let refs = ids
            .iter()
            .step_by(step)
            .take(STATUS_SAMPLE)
            .map(|id| {
                let short = id.to_string()[..8].to_string();
                // A unique 8-digit prefix in practice; fall back to the full id.
                match engine.resolve_target(&short) {
                    Ok(Target::Event(found)) if found == *id => (short, *id),
                    _ => (id.to_string(), *id),
                }
            })
            .collect();
        let count = engine
            .store_mut()
            .read()
            .and_then(|mut tx| tx.count_events())
            .expect("count");
        assert_eq!(count as usize, n, "fixture size");
        eprintln!(
            "fixture: {n} events in {:.1?}, {} MiB",
            started.elapsed(),
            std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) >> 20
        );
        Fixture {
            engine,
            path,
            _dir: dir,
            hot: hot.id,
            hot_next: 0,
            refs,
            ref_next: 0,
            due_next: 0,
        }
    }

    /// Inserts `count` open `on-time` events whose quorum holds, due one
    /// millisecond apart from [`Fixture::due_next`]; returns their fire times.
    fn insert_due(&mut self, count: u64) -> Vec<DateTime<Utc>> {
        let mut fire_times = Vec::with_capacity(count as usize);
        let mut tx = self.engine.store_mut().write().expect("begin");
        for _ in 0..count {
            let fire = due_base() + Duration::milliseconds(self.due_next);
            self.due_next += 1;
            let mut e = event(
                EventKind::Checkpoint,
                fire + Duration::minutes(5),
                due_base() - Duration::hours(1),
            );
            e.fire_policy = FirePolicy::OnTime;
            e.quorum = 2;
            e.quorum_spec = Quorum::Count(2);
            e.last_response_at = Some(e.created_at + Duration::minutes(1));
            e.attendees = vec![
                (agent("agent-1"), ResponseStatus::Confirmed),
                (agent("agent-2"), ResponseStatus::Confirmed),
            ];
            insert(&mut *tx, &e).expect("insert due event");
            fire_times.push(fire);
        }
        tx.commit().expect("commit");
        fire_times
    }
}

/// Builds each size's store on first use only, so a filtered run
/// (`cargo bench --bench engine -- status/1000`) builds only what it needs.
struct Fixtures(Vec<Option<Fixture>>);

impl Fixtures {
    fn get(&mut self, n: usize) -> &mut Fixture {
        let i = SIZES.iter().position(|s| *s == n).expect("known size");
        self.0[i].get_or_insert_with(|| Fixture::build(n))
    }
}

/// The hot queries of `src/store/sqlite.rs`, with representative parameters.
/// Keep in step with that file.
const HOT_QUERIES: &[(&str, &str)] = &[
    (
        "due_events",
        "SELECT id FROM events WHERE state = 'pending' AND fire_ms <= 0 ORDER BY fire_ms LIMIT -1",
    ),
    (
        "next_fire_time",
        "SELECT min(fire_ms) FROM events WHERE state = 'pending'",
    ),
    (
        "next_fire_time(campaign)",
        "SELECT min(fire_ms) FROM events WHERE state = 'pending' AND campaign_id = 'c'",
    ),
    (
        "events_with_prefix",
        "SELECT id FROM events WHERE id >= 'a1b2' AND id < 'a1b2g' ORDER BY id LIMIT 10",
    ),
    ("event", "SELECT * FROM events WHERE id = 'x'"),
    (
        "attendees",
        "SELECT agent, status, defer_ms FROM attendees WHERE event_id = 'x' ORDER BY position",
    ),
    (
        "needs",
        "SELECT e.id, e.state, e.finished_ms FROM edges d JOIN events e ON e.id = d.from_id \
         WHERE d.to_id = 'x' ORDER BY d.seq",
    ),
    (
        "dependents",
        "SELECT to_id FROM edges WHERE from_id = 'x' ORDER BY seq",
    ),
    (
        "campaign_by_name",
        "SELECT id, name, description, created_ms, managed, anchor_ms, revision FROM campaigns \
         WHERE name = 'n'",
    ),
    (
        "campaigns_with_prefix",
        "SELECT id FROM campaigns WHERE id >= 'a1b2' AND id < 'a1b2g' ORDER BY id LIMIT 10",
    ),
    (
        "event_by_name",
        "SELECT id FROM events WHERE campaign_id = 'c' AND name = 'n'",
    ),
    (
        "claim_reports(select)",
        "SELECT seq, event_id, at_ms, recorded_ms, agent, action, detail FROM audit \
         WHERE unreported = 1 ORDER BY seq",
    ),
    (
        "claim_reports(update)",
        "UPDATE audit SET unreported = NULL WHERE unreported = 1",
    ),
    (
        "audit(log)",
        "SELECT seq, event_id, at_ms, recorded_ms, agent, action, detail FROM audit \
         WHERE event_id = 'x' ORDER BY seq",
    ),
    (
        "set_response",
        "UPDATE attendees SET status = 'confirmed', defer_ms = NULL, responded_ms = 0 \
         WHERE event_id = 'x' AND agent = 'a'",
    ),
    (
        "update_event",
        "UPDATE events SET campaign_id = 'c', state = 'pending', fire_ms = 0, \
         campaign_pos = CASE WHEN campaign_id IS 'c' THEN campaign_pos \
         WHEN 'c' IS NULL THEN NULL ELSE (SELECT coalesce(max(campaign_pos), 0) + 1 \
         FROM events WHERE campaign_id = 'c') END WHERE id = 'x'",
    ),
    (
        "insert_event(campaign_pos)",
        "INSERT INTO events (id, kind, at_ms, t_minus_ms, quorum, quorum_spec, fire_policy, \
         organizer, payload, state, created_ms, campaign_pos) VALUES ('x', 'meeting', 0, 0, 0, \
         '0', 'early', 'o', 'null', 'pending', 0, (SELECT coalesce(max(campaign_pos), 0) + 1 \
         FROM events WHERE campaign_id = 'c'))",
    ),
];

/// Prints the plan of every hot query and fails on a full scan of a table
/// (`SCAN events`, …): every lookup must be a `SEARCH` through an index. A
/// `SCAN` of a partial index is allowed: it holds only the rows the query
/// wants (`audit_unreported` holds only transitions no tick has reported).
fn check_query_plans(path: &Path) {
    let conn = Connection::open(path).expect("second connection");
    let partial: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("partial indexes");
    let scans_partial_index = |d: &str| {
        partial.iter().any(|i| {
            d.ends_with(&format!("USING INDEX {i}"))
                || d.ends_with(&format!("USING COVERING INDEX {i}"))
        })
    };
    let mut scans = Vec::new();
    eprintln!("query plans:");
    for (name, sql) in HOT_QUERIES {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let details: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .expect("plan")
            .collect::<Result<_, _>>()
            .expect("plan rows");
        for d in &details {
            eprintln!("  {name:<28} {d}");
            if d.starts_with("SCAN ")
                && !d.starts_with("SCAN CONSTANT ROW")
                && !scans_partial_index(d)
            {
                scans.push(format!("{name}: {d}"));
            }
        }
    }
    assert!(scans.is_empty(), "full table scans: {scans:#?}");
}

fn engine_benches(c: &mut Criterion) {
    let mut fixtures = Fixtures(SIZES.iter().map(|_| None).collect());
    check_query_plans(&fixtures.get(SIZES[0]).path);

    let mut group = c.benchmark_group("confirm");
    for n in SIZES {
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            let f = fixtures.get(n);
            b.iter(|| {
                // Cycle through every attendee but the last, who never
                // answers, so the event stays open however often we confirm.
                let who = agent(format!("hot-{:02}", f.hot_next));
                f.hot_next = (f.hot_next + 1) % (HOT_ATTENDEES - 1);
                black_box(f.engine.confirm(f.hot, &who).expect("confirm"))
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("status");
    for n in SIZES {
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            let f = fixtures.get(n);
            b.iter(|| {
                let (reference, expected) = &f.refs[f.ref_next];
                f.ref_next = (f.ref_next + 1) % f.refs.len();
                // As `t-minus status REF` does: the reference may name an
                // event or a campaign.
                let id = match f.engine.resolve_target(reference).expect("resolve") {
                    Target::Event(id) => id,
                    other => panic!("{reference} resolved to {other:?}"),
                };
                assert_eq!(id, *expected);
                black_box(f.engine.get_event(id).expect("get").expect("exists"))
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("tick_idle");
    for n in SIZES {
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            let f = fixtures.get(n);
            b.iter(|| {
                let result = f.engine.tick(t0()).expect("tick");
                assert!(result.fired.is_empty() && result.missed.is_empty());
                black_box(result)
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("tick_one_due");
    for n in SIZES {
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            let f = fixtures.get(n);
            b.iter_custom(|iters| {
                // Untimed: one transaction inserts `iters` events due 1 ms
                // apart; each timed tick then finds exactly one of them.
                let fire_times = f.insert_due(iters);
                let mut total = StdDuration::ZERO;
                for fire in fire_times {
                    let start = Instant::now();
                    let result = f.engine.tick(fire).expect("tick");
                    total += start.elapsed();
                    assert_eq!(result.fired.len(), 1, "exactly one event fires");
                    black_box(result);
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(StdDuration::from_secs(1))
        .measurement_time(StdDuration::from_secs(3));
    targets = engine_benches
}
criterion_main!(benches);
