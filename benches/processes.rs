//! Whole-process benchmarks: the `t-minus` binary as a user runs it.
//!
//! Each store is built by `apply` of a generated single-campaign manifest of
//! N events (3 attendees, quorum 2, chains of 100 events: N − N/100 `needs`
//! edges), plus one store of 100,000 standalone pending events. Every
//! measurement spawns the release binary, waits for it with `wait4` and
//! reports the median wall time and the median peak RSS (`ru_maxrss`) of the
//! child:
//!
//! - `--version`: process start-up, the floor of every command;
//! - `apply` into a fresh store (first apply) and `plan` of the unchanged
//!   manifest (re-plan);
//! - `confirm` of one event and `status EVENT` of one event;
//! - `status` (every unfinished event) and `status --json`;
//! - `tick` with nothing due.
//!
//! It also reports the store's size per event after the first apply.
//!
//! Run: `cargo bench --bench processes`. `T_MINUS_BENCH_SIZES` picks the
//! campaign sizes (default `1000,10000,100000`), `T_MINUS_BENCH_RUNS` the
//! runs per measurement (default 5; first apply runs at most 3 times). When
//! `T_MINUS_TEST_PG` holds a server URL, first apply and re-plan of 10,000
//! events are measured on PostgreSQL too (one fresh schema per run).
//! The bench process stays small (the standalone store is built by a child
//! of its own), so a child's `ru_maxrss` (which Linux carries over from the
//! process that forked it) is the child's own.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use chrono::{Duration, Utc};
use t_minus::{AgentId, EventKind, NewEvent, Quorum};

const CHAIN: usize = 100;
const BIN: &str = env!("CARGO_BIN_EXE_t-minus");

/// One finished child: wall time and peak resident set.
#[derive(Debug, Clone, Copy)]
struct Sample {
    ms: f64,
    rss_kib: i64,
}

/// Runs `t-minus ARGS` on `db` to completion; panics on a non-zero exit
/// (the benchmark measures working commands only).
#[allow(
    clippy::zombie_processes,
    reason = "the child is reaped by wait4, which also reports its peak RSS"
)]
fn run(db: &str, args: &[&str]) -> Sample {
    let start = Instant::now();
    let child = Command::new(BIN)
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("T_MINUS_NOW")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn t-minus");
    let pid = i32::try_from(child.id()).expect("pid fits in pid_t");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet reaped; both pointers are valid
    // for the call.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let ms = start.elapsed().as_secs_f64() * 1e3;
    assert_eq!(reaped, pid, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "t-minus {args:?} failed (status {status})"
    );
    Sample {
        ms,
        rss_kib: usage.ru_maxrss,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Prints the medians of `samples` as one table row.
fn report(what: &str, size: &str, samples: &[Sample]) {
    let ms = median(samples.iter().map(|s| s.ms).collect());
    let rss = median(samples.iter().map(|s| s.rss_kib as f64).collect()) / 1024.0;
    println!(
        "| {what:<28} | {size:>8} | {ms:>9.1} ms | {rss:>7.1} MiB | n={} |",
        samples.len()
    );
}

/// The manifest text: one campaign `big` of `n` events in chains of 100.
fn manifest(n: usize) -> String {
    let mut s = String::with_capacity(n * 80);
    s.push_str(
        "campaign: big\ndefaults:\n  t_minus: 1m\n  quorum: 2\n  attendees: [alice, bob, carol]\nevents:\n",
    );
    for i in 0..n {
        s.push_str(&format!("  e{i}:\n    at: +30d\n"));
        if i % CHAIN != 0 {
            s.push_str(&format!("    needs: [e{}]\n", i - 1));
        }
    }
    s
}

/// Bytes of the SQLite store (database file and its WAL).
fn store_bytes(db: &str) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{db}{suffix}")).ok())
        .map(|m| m.len())
        .sum()
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// A store of `n` standalone pending events: one scheduled through the
/// engine, the rest copies of it (new ids, one second apart) written in one
/// transaction (scheduling them one process each would take an hour).
fn standalone_store(db: &Path, n: usize) {
    let mut engine = t_minus::Engine::new(db).expect("store");
    let at = Utc::now() + Duration::days(30);
    let template = engine
        .schedule(NewEvent {
            t_minus: Duration::minutes(1),
            attendees: ["alice", "bob", "carol"]
                .iter()
                .map(|a| AgentId::parse(a).expect("agent"))
                .collect(),
            quorum: Quorum::Count(2),
            ..NewEvent::new(EventKind::Checkpoint, at)
        })
        .expect("schedule");
    let mut tx = engine.store_mut().write().expect("write");
    for i in 1..n {
        let mut event = template.clone();
        event.id = uuid::Uuid::new_v4();
        event.scheduled_at = at + Duration::seconds(i as i64);
        tx.insert_event(&event).expect("insert");
    }
    tx.commit().expect("commit");
}

fn campaign_sizes(runs: usize, dir: &Path) {
    let sizes: Vec<usize> = std::env::var("T_MINUS_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000]);
    for n in sizes {
        let file = dir.join(format!("big-{n}.yaml"));
        std::fs::write(&file, manifest(n)).expect("write manifest");
        let file = path_str(&file);
        let size = n.to_string();

        // First apply, each run into a fresh store; the last store stays.
        let mut applies = Vec::new();
        let mut db = String::new();
        for r in 0..runs.min(3) {
            db = path_str(&dir.join(format!("big-{n}-{r}.db")));
            applies.push(run(&db, &["apply", &file]));
        }
        report("apply (first)", &size, &applies);
        println!(
            "|   store size per event     | {size:>8} | {:>9.0} B  |",
            store_bytes(&db) as f64 / n as f64
        );
        let replans: Vec<_> = (0..runs).map(|_| run(&db, &["plan", &file])).collect();
        report("plan (unchanged)", &size, &replans);

        // Confirm the first event of a different chain each run (roots are
        // pending; the rest are blocked), by one attendee: quorum 2 stays
        // unmet, so the store keeps its shape.
        let chains = n / CHAIN;
        let confirms: Vec<_> = (0..runs)
            .map(|r| {
                let event = format!("big/e{}", (r % chains) * CHAIN);
                run(&db, &["confirm", &event, "alice"])
            })
            .collect();
        report("confirm EVENT", &size, &confirms);
        let event = format!("big/e{}", (chains / 2) * CHAIN + CHAIN / 2);
        let shows: Vec<_> = (0..runs).map(|_| run(&db, &["status", &event])).collect();
        report("status EVENT", &size, &shows);
        let listings: Vec<_> = (0..runs).map(|_| run(&db, &["status"])).collect();
        report("status", &size, &listings);
        let json: Vec<_> = (0..runs).map(|_| run(&db, &["status", "--json"])).collect();
        report("status --json", &size, &json);
        let ticks: Vec<_> = (0..runs).map(|_| run(&db, &["tick"])).collect();
        report("tick (nothing due)", &size, &ticks);
    }
}

/// Argument that makes this program build the standalone store and exit:
/// it runs in a child, so that the store's page cache does not grow this
/// process (whose peak RSS the children it forks would start from).
const BUILD_STANDALONE: &str = "--build-standalone-store";

fn standalone(runs: usize, dir: &Path) {
    let n = 100_000;
    let db = path_str(&dir.join("standalone.db"));
    let built = Command::new(std::env::current_exe().expect("this program"))
        .args([BUILD_STANDALONE, &db, &n.to_string()])
        .status()
        .expect("spawn the store builder");
    assert!(built.success(), "building the standalone store failed");
    let size = "100k solo";
    println!(
        "|   store size per event     | {size:>8} | {:>9.0} B  |",
        store_bytes(&db) as f64 / n as f64
    );
    for (what, args) in [
        ("status", &["status"][..]),
        ("status --json", &["status", "--json"][..]),
        ("tick (nothing due)", &["tick"][..]),
    ] {
        let samples: Vec<_> = (0..runs).map(|_| run(&db, args)).collect();
        report(what, size, &samples);
    }
}

/// First apply and re-plan of 10,000 events on the PostgreSQL server `url`.
fn postgres(url: &str, runs: usize, dir: &Path) {
    let n = 10_000;
    let file = dir.join("pg-10000.yaml");
    std::fs::write(&file, manifest(n)).expect("write manifest");
    let file = path_str(&file);
    let mut client = postgres::Client::connect(url, postgres::NoTls).expect("server");
    let mut location = String::new();
    let mut applies = Vec::new();
    for r in 0..runs.min(3) {
        let schema = format!("bench_processes_{}_{r}", std::process::id());
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
            ))
            .expect("create schema");
        let sep = if url.contains('?') { '&' } else { '?' };
        location = format!("{url}{sep}options=-csearch_path%3D{schema}");
        applies.push(run(&location, &["apply", &file]));
    }
    report("PostgreSQL apply (first)", "10000", &applies);
    let replans: Vec<_> = (0..runs)
        .map(|_| run(&location, &["plan", &file]))
        .collect();
    report("PostgreSQL plan (unchanged)", "10000", &replans);
    for r in 0..runs.min(3) {
        let schema = format!("bench_processes_{}_{r}", std::process::id());
        let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, db, n] = args.as_slice() {
        if flag == BUILD_STANDALONE {
            standalone_store(Path::new(db), n.parse().expect("event count"));
            return;
        }
    }
    // `cargo test --benches` runs this without `--bench`; only measure under
    // `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runs: usize = std::env::var("T_MINUS_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|r| *r > 0)
        .unwrap_or(5);
    let temp = tempfile::tempdir().expect("temp dir");
    let dir: PathBuf = temp.path().to_path_buf();
    println!("| command                      |   events |  wall (median) | peak RSS    | runs |");
    println!("|---|---|---|---|---|");
    let startup: Vec<_> = (0..runs)
        .map(|_| run("unused.db", &["--version"]))
        .collect();
    report("--version", "-", &startup);
    campaign_sizes(runs, &dir);
    standalone(runs, &dir);
    match std::env::var("T_MINUS_TEST_PG") {
        Ok(url) if !url.is_empty() => postgres(&url, runs, &dir),
        _ => println!("(PostgreSQL skipped: T_MINUS_TEST_PG is not set)"),
    }
}
