//! Engine benchmarks.
//!
//! Measures the hot operations against stores holding 1k, 10k and 100k
//! events, so that commits and their fsyncs are real:
//!
//! - `confirm`: one attendee confirms an open event (a full write transaction);
//! - `status`: resolve an 8-hex-digit id prefix as `t-minus status REF` does
//!   (event or campaign, [`Engine::resolve_target`]), then load the event;
//! - `tick_idle`: a tick with nothing due;
//! - `tick_one_due`: a tick that finds exactly one due event and fires it;
//! - `inbox`: the inbox of an agent with one open event among n
//!   ([`Engine::inbox`], as `t-minus inbox AGENT` does);
//! - `confirm_signed`: `confirm` of an event whose answers must be signed,
//!   as `t-minus confirm EVENT AGENT --sign KEYFILE` does it
//!   ([`Engine::respond_with_key`]): read the Ed25519 key file, build the
//!   answer message, sign it, then check and record it (signature
//!   verification, digest, time, nonce) in one write transaction;
//! - `verify`: [`Engine::verify_log`] of the whole store (every chain link,
//!   every event's state and answers, every signature).
//!
//! Every benchmark runs on SQLite file stores (WAL, `synchronous = FULL`),
//! as `confirm/1000`, and, when `T_MINUS_TEST_PG` holds a server URL, on
//! PostgreSQL stores too, as `confirm/postgres/1000`: each in a fresh schema
//! `bench_<size>_<pid>`, dropped at the end.
//!
//! Each store is built once per size, on first use, in one big transaction
//! through [`Engine::store_mut`] and [`Tx::insert_event`]: a mix of pending
//! events spread over the next 30 days, final (fired/missed) history, and
//! small campaign chains with blocked events and edges, every event with
//! attendees and audit entries. Before measuring, the query plans of every
//! hot query are checked: with `EXPLAIN QUERY PLAN` on the 1k SQLite store,
//! with `EXPLAIN` on the 100k PostgreSQL store (after `VACUUM (ANALYZE)`);
//! a full table scan fails the run.
//!
//! Run: `cargo bench --bench engine` (a few minutes on 2 cores), or
//! `T_MINUS_TEST_PG=postgres://postgres@127.0.0.1:5432/test cargo bench
//! --bench engine` for both stores. See `docs/performance.md` for the method
//! and the measured tables.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Bencher, BenchmarkId, Criterion};
use rusqlite::Connection;
use serde_json::json;
use t_minus::store::{CampaignRow, NewAuditEntry, Tx};
use t_minus::trust::{Signers, SigningKey};
use t_minus::{
    AgentId, AuditAction, Engine, EventKind, EventState, FirePolicy, FixedClock, NewEvent, Quorum,
    Response, ResponseStatus, TMinusEvent, Target,
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

/// Which store the benchmarks measure.
enum Backend {
    /// A file in a temporary directory.
    Sqlite,
    /// A fresh schema on the PostgreSQL server at this URL.
    Postgres(String),
}

impl Backend {
    /// The criterion id: `1000` on SQLite (as before PostgreSQL existed),
    /// `postgres/1000` on PostgreSQL.
    fn id(&self, n: usize) -> BenchmarkId {
        match self {
            Backend::Sqlite => BenchmarkId::from_parameter(n),
            Backend::Postgres(_) => BenchmarkId::new("postgres", n),
        }
    }
}

/// Where a fixture's store lives; removed with the fixture.
enum Location {
    Sqlite { path: PathBuf, _dir: TempDir },
    Postgres(PgSchema),
}

/// A schema of the benchmark's own on the PostgreSQL server, dropped (with
/// the store in it) when this is.
struct PgSchema {
    /// The server's URL, as given in `T_MINUS_TEST_PG`.
    server: String,
    name: String,
}

impl PgSchema {
    /// Creates `bench_<n>_<pid>` afresh.
    fn create(server: &str, n: usize) -> PgSchema {
        let name = format!("bench_{n}_{}", std::process::id());
        pg_client(server)
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
            ))
            .unwrap_or_else(|e| panic!("cannot create schema {name}: {e}"));
        PgSchema {
            server: server.to_string(),
            name,
        }
    }

    /// The store's location: the server's URL with `search_path` set to
    /// this schema.
    fn url(&self) -> String {
        let sep = if self.server.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-csearch_path%3D{}", self.server, self.name)
    }

    /// A connection of the benchmark's own, working in this schema.
    fn client(&self) -> postgres::Client {
        let mut client = pg_client(&self.server);
        client
            .batch_execute(&format!("SET search_path = {}", self.name))
            .expect("set search_path");
        client
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        let dropped = postgres::Client::connect(&self.server, postgres::NoTls)
            .and_then(|mut client| client.batch_execute(&sql));
        if let Err(e) = dropped {
            eprintln!("note: cannot drop schema {}: {e}", self.name);
        }
    }
}

fn pg_client(server: &str) -> postgres::Client {
    postgres::Client::connect(server, postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to T_MINUS_TEST_PG: {e}"))
}

/// One store of a given size, with what the benchmarks need to find in it.
struct Fixture {
    /// Declared first, so that it is dropped (its connection closed) before
    /// the schema it works in.
    engine: Engine,
    location: Location,
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
    /// An open event like `hot` whose answers must be signed.
    signed: Uuid,
    /// The key every attendee of `signed` signs with (`hot-*`).
    key: SigningKey,
    /// Holds the key files.
    _keys: TempDir,
}

fn agent(name: impl Into<String>) -> AgentId {
    AgentId(name.into())
}

/// A plain event row as the engine would store it; callers adjust it.
fn event(kind: EventKind, at: DateTime<Utc>, created: DateTime<Utc>) -> TMinusEvent {
    TMinusEvent {
        rules_digest: None,
        id: Uuid::new_v4(),
        kind,
        scheduled_at: at,
        t_minus: Duration::minutes(5),
        organizer: agent("coordinator"),
        attendees: Vec::new(),
        quorum: 3,
        groups: Vec::new(),
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
        gates: Default::default(),
        description: None,
        escalation: Default::default(),
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
        on_behalf_of: None,
        action,
        detail: json!({}),
        signed: None,
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

/// Schedules an open event like `hot` whose answers must be signed: one
/// Ed25519 key (made by `ssh-keygen`) for the principals `hot-*`.
fn signed_event(engine: &mut Engine) -> (TempDir, SigningKey, Uuid) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hot");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "hot", "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen runs");
    assert!(made.success(), "ssh-keygen failed");
    let public = std::fs::read_to_string(path.with_extension("pub")).expect("public key");
    let signers =
        Signers::parse_allowed_signers(&format!("hot-* {public}"), "bench").expect("signers");
    let event = engine
        .schedule(NewEvent {
            attendees: (0..HOT_ATTENDEES)
                .map(|k| agent(format!("hot-{k:02}")))
                .collect(),
            signers: Some(signers),
            ..NewEvent::new(EventKind::Review, t0() + Duration::days(365))
        })
        .expect("schedule the signed event");
    (dir, SigningKey::File(path), event.id)
}

impl Fixture {
    fn build(backend: &Backend, n: usize) -> Fixture {
        let started = Instant::now();
        let (engine, location) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path = dir.path().join("bench.db");
                let engine = Engine::new(&path).expect("open store");
                (engine, Location::Sqlite { path, _dir: dir })
            }
            Backend::Postgres(server) => {
                let schema = PgSchema::create(server, n);
                let engine = Engine::open(&schema.url()).expect("open store");
                (engine, Location::Postgres(schema))
            }
        };
        let clock = Arc::new(FixedClock::new(t0()));
        let mut engine = engine.with_clock(clock);

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
        let populated = started.elapsed();
        let (store, bytes) = match &location {
            Location::Sqlite { path, .. } => {
                // Start measuring from a checkpointed, empty WAL.
                let conn = Connection::open(path).expect("second connection");
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                    .expect("checkpoint");
                drop(conn);
                let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                ("sqlite", bytes)
            }
            Location::Postgres(schema) => {
                // Statistics for the planner, and a vacuumed start, so that
                // autovacuum does not take up the bulk insert in the middle
                // of a measurement.
                let mut client = schema.client();
                client
                    .batch_execute(&format!("VACUUM (ANALYZE) {PG_TABLES}"))
                    .expect("vacuum analyze");
                let bytes: i64 = client
                    .query_one(
                        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint \
                         FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace \
                         WHERE s.nspname = $1 AND c.relkind = 'r'",
                        &[&schema.name],
                    )
                    .and_then(|row| row.try_get(0))
                    .expect("schema size");
                ("postgres", bytes as u64)
            }
        };

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
            "fixture: {store} {n} events in {:.1?} (populated in {populated:.1?}), {} MiB",
            started.elapsed(),
            bytes >> 20
        );
        if let (Location::Postgres(schema), Some(&largest)) = (&location, SIZES.last()) {
            if n == largest {
                check_pg_query_plans(schema);
            }
        }
        let (keys, key, signed) = signed_event(&mut engine);
        Fixture {
            engine,
            location,
            hot: hot.id,
            hot_next: 0,
            refs,
            ref_next: 0,
            due_next: 0,
            signed,
            key,
            _keys: keys,
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

/// Builds each store's fixture of each size on first use only, so a
/// filtered run (`cargo bench --bench engine -- status/1000`) builds only
/// what it needs.
struct Fixtures(Vec<(Backend, Vec<Option<Fixture>>)>);

impl Fixtures {
    fn new(backends: Vec<Backend>) -> Fixtures {
        Fixtures(
            backends
                .into_iter()
                .map(|b| (b, SIZES.iter().map(|_| None).collect()))
                .collect(),
        )
    }

    fn get(&mut self, backend: usize, n: usize) -> &mut Fixture {
        let i = SIZES.iter().position(|s| *s == n).expect("known size");
        let (b, fixtures) = &mut self.0[backend];
        fixtures[i].get_or_insert_with(|| Fixture::build(b, n))
    }
}

/// The hot queries of `src/store/sqlite.rs`, with representative parameters.
/// Keep in step with that file.
const HOT_QUERIES: &[(&str, &str)] = &[
    (
        "due_events",
        "SELECT id FROM events WHERE state = 'pending' AND fire_ms <= 0 ORDER BY fire_ms, rowid LIMIT -1",
    ),
    (
        "campaign_due_events",
        "SELECT id FROM events WHERE state = 'pending' AND fire_ms <= 0 \
         AND campaign_id = (SELECT campaign_id FROM events WHERE id = 'a') ORDER BY fire_ms, rowid",
    ),
    (
        "next_fire_time",
        "SELECT min(fire_ms) FROM events WHERE state = 'pending'",
    ),
    (
        "next_fire_time(campaign)",
        "SELECT fire_ms FROM events WHERE state = 'pending' AND campaign_id = 'c' \
         ORDER BY fire_ms LIMIT 1",
    ),
    (
        "events_with_prefix",
        "SELECT id FROM events WHERE id >= 'a1b2' AND id < 'a1b2g' ORDER BY id LIMIT 10",
    ),
    ("event", "SELECT * FROM events WHERE id = 'x'"),
    (
        "inbox",
        "SELECT id FROM events WHERE id IN \
         (SELECT event_id FROM attendees WHERE agent = 'a' AND open = 1) \
         ORDER BY fire_ms IS NULL, fire_ms, created_ms, id",
    ),
    (
        "unfinished listing",
        "SELECT events.id, r.rules, a.position, a.agent, a.status, a.defer_ms \
         FROM events LEFT JOIN notify_rules r ON r.event_id = events.id \
         LEFT JOIN attendees a ON a.event_id = events.id \
         WHERE state IN ('blocked', 'pending') \
         ORDER BY fire_ms IS NULL, fire_ms, created_ms, id",
    ),
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
        "claim_reports",
        "UPDATE audit SET unreported = NULL WHERE unreported = 1 \
         RETURNING seq, event_id, at_ms, recorded_ms, agent, action, detail",
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
         campaign_pos = CASE WHEN campaign_id IS NOT DISTINCT FROM 'c' THEN campaign_pos \
         WHEN CAST('c' AS TEXT) IS NULL THEN NULL ELSE (SELECT coalesce(max(campaign_pos), 0) + 1 \
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
    eprintln!("query plans (SQLite):");
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

/// The store's tables on PostgreSQL.
const PG_TABLES: &str = "tm_meta, tm_campaigns, tm_events, tm_attendees, tm_edges, tm_audit";

/// The hot queries of `src/store/postgres.rs` as the store prepares them
/// (`$n` parameters; `SELECT *` for the column lists), with arguments for
/// `EXECUTE`. Keep in step with that file. The write lock's
/// `SELECT … FROM tm_meta … FOR UPDATE` is left out: that table has one row.
const PG_HOT_QUERIES: &[(&str, &str, &str)] = &[
    (
        "inbox",
        "SELECT id FROM tm_events WHERE id IN \
         (SELECT event_id FROM tm_attendees WHERE agent = $1 AND open) \
         ORDER BY fire_ms IS NULL, fire_ms, created_ms, id",
        "('hot-63')",
    ),
    (
        "due_events",
        "SELECT id FROM tm_events WHERE state = 'pending' AND fire_ms <= $1 \
         ORDER BY fire_ms, seq LIMIT $2",
        "(1893456000000, 9223372036854775807)",
    ),
    (
        "next_fire_time",
        "SELECT min(fire_ms) FROM tm_events WHERE state = 'pending'",
        "",
    ),
    (
        "next_fire_time(campaign)",
        "SELECT fire_ms FROM tm_events WHERE state = 'pending' AND campaign_id = $1 \
         ORDER BY fire_ms LIMIT 1",
        "('c')",
    ),
    (
        "campaign_due_events",
        "SELECT id FROM tm_events WHERE state = 'pending' AND fire_ms <= $2 \
         AND campaign_id = (SELECT campaign_id FROM tm_events WHERE id = $1) \
         ORDER BY fire_ms, seq",
        "('a1b2c3d4', 1750000000000)",
    ),
    (
        "events_with_prefix",
        "SELECT id FROM tm_events WHERE id >= $1 AND id < $2 ORDER BY id LIMIT $3",
        "('a1b2c3d4', 'a1b2c3d4g', 10)",
    ),
    ("event", "SELECT * FROM tm_events WHERE id = $1", "('x')"),
    (
        "attendees",
        "SELECT agent, status, defer_ms FROM tm_attendees WHERE event_id = $1 ORDER BY position",
        "('x')",
    ),
    (
        "needs",
        "SELECT e.id, e.state, e.finished_ms FROM tm_edges d JOIN tm_events e ON e.id = d.from_id \
         WHERE d.to_id = $1 ORDER BY d.seq",
        "('x')",
    ),
    (
        "dependents",
        "SELECT to_id FROM tm_edges WHERE from_id = $1 ORDER BY seq",
        "('x')",
    ),
    (
        "campaign",
        "SELECT * FROM tm_campaigns WHERE id = $1",
        "('c')",
    ),
    (
        "campaign_by_name",
        "SELECT * FROM tm_campaigns WHERE name = $1",
        "('n')",
    ),
    (
        "campaigns_with_prefix",
        "SELECT id FROM tm_campaigns WHERE id >= $1 AND id < $2 ORDER BY id LIMIT $3",
        "('a1b2c3d4', 'a1b2c3d4g', 10)",
    ),
    (
        "event_by_name",
        "SELECT id FROM tm_events WHERE campaign_id = $1 AND name = $2",
        "('c', 'n')",
    ),
    (
        "claim_reports",
        "UPDATE tm_audit SET unreported = NULL WHERE unreported RETURNING *",
        "",
    ),
    (
        "audit(log)",
        "SELECT * FROM tm_audit WHERE event_id = $1 ORDER BY seq",
        "('x')",
    ),
    (
        "audit_since",
        "SELECT * FROM tm_audit WHERE seq > $1 ORDER BY seq LIMIT $2",
        "(1000000000, 1000)",
    ),
    (
        "latest_audit_seq",
        "SELECT coalesce(max(seq), 0)::bigint FROM tm_audit",
        "",
    ),
    (
        "set_response",
        "UPDATE tm_attendees SET status = $3, defer_ms = $4, responded_ms = $5 \
         WHERE event_id = $1 AND agent = $2",
        "('x', 'a', 'confirmed', NULL, 0)",
    ),
    (
        "update_event",
        "UPDATE tm_events SET state = $3, fire_ms = $4, \
         campaign_pos = CASE WHEN campaign_id IS NOT DISTINCT FROM $2 THEN campaign_pos \
         WHEN CAST($2 AS TEXT) IS NULL THEN NULL ELSE \
         (SELECT coalesce(max(campaign_pos), 0) + 1 FROM tm_events WHERE campaign_id = $2) END \
         WHERE id = $1",
        "('x', 'c', 'pending', 0)",
    ),
    (
        "bump_revision",
        "UPDATE tm_campaigns SET revision = revision + 1 WHERE id = $1",
        "('c')",
    ),
    (
        "insert_event(campaign_pos)",
        "SELECT coalesce(max(campaign_pos), 0) + 1 FROM tm_events WHERE campaign_id = $1",
        "('c')",
    ),
];

/// Prints the plan of every hot query on a (large, analyzed) PostgreSQL
/// store and fails on a sequential scan. Each query is prepared as the store
/// prepares it and explained twice: with a custom plan for the arguments
/// given, and with the generic plan PostgreSQL may switch to after five
/// executions of a prepared statement (printed only when it differs).
fn check_pg_query_plans(schema: &PgSchema) {
    let mut client = schema.client();
    let mut scans = Vec::new();
    eprintln!("query plans (PostgreSQL, schema {}):", schema.name);
    for (i, (name, sql, args)) in PG_HOT_QUERIES.iter().enumerate() {
        client
            .batch_execute(&format!("PREPARE q{i} AS {sql}"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut shown: Option<Vec<String>> = None;
        for mode in ["custom", "generic"] {
            client
                .batch_execute(&format!("SET plan_cache_mode = force_{mode}_plan"))
                .expect("plan_cache_mode");
            let plan: Vec<String> = client
                .query(&format!("EXPLAIN (COSTS OFF) EXECUTE q{i}{args}"), &[])
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .iter()
                .map(|r| r.get(0))
                .collect();
            if shown.as_ref() == Some(&plan) {
                continue;
            }
            eprintln!("  {name} ({mode}):");
            for line in &plan {
                eprintln!("    {line}");
                if line.contains("Seq Scan on ") {
                    scans.push(format!("{name} ({mode}): {}", line.trim()));
                }
            }
            shown = Some(plan);
        }
    }
    client
        .batch_execute("DEALLOCATE ALL; RESET plan_cache_mode")
        .expect("deallocate");
    assert!(scans.is_empty(), "sequential scans: {scans:#?}");
}

/// Runs `body` as benchmark group `name`: on each store, at each size.
fn bench_group(
    c: &mut Criterion,
    fixtures: &mut Fixtures,
    name: &str,
    mut body: impl FnMut(&mut Bencher<'_>, &mut Fixture),
) {
    let mut group = c.benchmark_group(name);
    for b in 0..fixtures.0.len() {
        for n in SIZES {
            let id = fixtures.0[b].0.id(n);
            group.bench_function(id, |bencher| body(bencher, fixtures.get(b, n)));
        }
    }
    group.finish();
}

fn engine_benches(c: &mut Criterion) {
    let mut backends = vec![Backend::Sqlite];
    match std::env::var("T_MINUS_TEST_PG") {
        Ok(url) if !url.trim().is_empty() => backends.push(Backend::Postgres(url)),
        _ => eprintln!("(PostgreSQL skipped: T_MINUS_TEST_PG is not set)"),
    }
    let mut fixtures = Fixtures::new(backends);
    // SQLite's plans do not depend on the size (it keeps no statistics);
    // PostgreSQL's are checked on its 100k store, when that is built.
    if let Location::Sqlite { path, .. } = &fixtures.get(0, SIZES[0]).location {
        check_query_plans(path);
    }

    bench_group(c, &mut fixtures, "confirm", |b, f| {
        b.iter(|| {
            // Cycle through every attendee but the last, who never
            // answers, so the event stays open however often we confirm.
            let who = agent(format!("hot-{:02}", f.hot_next));
            f.hot_next = (f.hot_next + 1) % (HOT_ATTENDEES - 1);
            black_box(f.engine.confirm(f.hot, &who).expect("confirm"))
        })
    });

    bench_group(c, &mut fixtures, "confirm_signed", |b, f| {
        b.iter(|| {
            let who = agent(format!("hot-{:02}", f.hot_next));
            f.hot_next = (f.hot_next + 1) % (HOT_ATTENDEES - 1);
            black_box(
                f.engine
                    .respond_with_key(f.signed, &who, Response::Confirm, &f.key)
                    .expect("signed confirm"),
            )
        })
    });

    bench_group(c, &mut fixtures, "verify", |b, f| {
        let mut said = false;
        b.iter(|| {
            let report = f.engine.verify_log(None).expect("the log is intact");
            if !said {
                eprintln!(
                    "verify: {} entries, {} events, {} signatures",
                    report.entries, report.events, report.signatures
                );
                said = true;
            }
            black_box(report)
        })
    });

    bench_group(c, &mut fixtures, "status", |b, f| {
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

    bench_group(c, &mut fixtures, "tick_idle", |b, f| {
        b.iter(|| {
            let result = f.engine.tick(t0()).expect("tick");
            assert!(result.fired.is_empty() && result.missed.is_empty());
            black_box(result)
        })
    });

    bench_group(c, &mut fixtures, "tick_one_due", |b, f| {
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
    bench_group(c, &mut fixtures, "inbox", |b, f| {
        // The last attendee of the hot event never answers: one open event
        // waits for it, among n events (most of them attended by others).
        let who = agent(format!("hot-{:02}", HOT_ATTENDEES - 1));
        b.iter(|| {
            let inbox = f.engine.inbox(&who).expect("inbox");
            assert_eq!(inbox.len(), 1);
            black_box(inbox)
        })
    });
    // Dropping the fixtures closes their stores and drops the PostgreSQL
    // schemas.
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
