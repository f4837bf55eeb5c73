//! Measures `t-minus run` against the targets of its design:
//!
//! 1. a transition completed by another process's confirm is reported within
//!    10 ms (p99);
//! 2. a miss is recorded within 100 ms of the fire time (p99);
//! 3. waiting for a deadline an hour away costs at most 0.05% of one core
//!    (measured over 60 s).
//!
//! Run with `cargo bench --bench runner_latency`. It spawns the real binary
//! (`run --json`) and answers through the library from this process. It
//! measures the SQLite store, then the PostgreSQL store when
//! `T_MINUS_TEST_PG` holds a server URL (each measurement in a fresh schema,
//! dropped afterwards), where the runner wakes on LISTEN/NOTIFY.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::Utc;
use t_minus::{AgentId, Engine, EventKind, NewEvent, Quorum};

/// Where a measurement keeps its store: a file in a temporary directory, or
/// a fresh schema on the PostgreSQL server.
enum Stores {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Stores {
    /// A store location named `name`.
    fn location(&self, name: &str) -> String {
        match self {
            Stores::Sqlite(dir) => dir.path().join(format!("{name}.db")).display().to_string(),
            Stores::Postgres(url) => {
                let schema = format!("bench_{name}_{}", std::process::id());
                let mut client = postgres::Client::connect(url, postgres::NoTls).expect("server");
                client
                    .batch_execute(&format!(
                        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
                    ))
                    .expect("create schema");
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}options=-csearch_path%3D{schema}")
            }
        }
    }

    /// Drops the schemas made on the server.
    fn clean_up(&self) {
        if let Stores::Postgres(url) = self {
            let mut client = postgres::Client::connect(url, postgres::NoTls).expect("server");
            for name in ["confirm", "miss", "idle"] {
                let schema = format!("bench_{name}_{}", std::process::id());
                let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
    }
}

fn spawn_runner(
    db: &str,
) -> (
    Child,
    mpsc::Receiver<(Instant, chrono::DateTime<Utc>, serde_json::Value)>,
) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_t-minus"))
        .arg("--db")
        .arg(db)
        .args(["run", "--json", "--timeout", "10m"])
        .env_remove("T_MINUS_NOW")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn t-minus run");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let (at, wall) = (Instant::now(), Utc::now());
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) {
                if tx.send((at, wall, value)).is_err() {
                    break;
                }
            }
        }
    });
    (child, rx)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn summarize(name: &str, mut ms: Vec<f64>, target: f64) {
    ms.sort_by(|a, b| a.total_cmp(b));
    let (p50, p99, max) = (
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms[ms.len() - 1],
    );
    let verdict = if p99 <= target { "meets" } else { "MISSES" };
    println!(
        "{name:<40} n={:<4} p50={p50:>6.1} ms  p99={p99:>6.1} ms  max={max:>6.1} ms  ({verdict} the {target} ms target)",
        ms.len()
    );
}

fn new_event(at: chrono::DateTime<Utc>, attendees: &[&str], quorum: usize) -> NewEvent {
    NewEvent {
        attendees: attendees.iter().map(|a| AgentId(a.to_string())).collect(),
        quorum: Quorum::Count(quorum),
        ..NewEvent::new(EventKind::Checkpoint, at)
    }
}

fn confirm_latency(stores: &Stores) {
    let db = stores.location("confirm");
    let mut engine = Engine::open(&db).expect("store");
    let n = 100;
    let ids: Vec<_> = (0..n)
        .map(|_| {
            engine
                .schedule(new_event(
                    Utc::now() + chrono::Duration::hours(1),
                    &["a"],
                    1,
                ))
                .expect("schedule")
                .id
        })
        .collect();
    let (mut child, rx) = spawn_runner(&db);
    std::thread::sleep(Duration::from_millis(300));
    let agent = AgentId("a".into());
    let mut latencies = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        // Vary the phase against the runner's poll interval.
        std::thread::sleep(Duration::from_millis(5 + (i as u64 * 7) % 40));
        engine.confirm(*id, &agent).expect("confirm");
        let committed = Instant::now();
        loop {
            let (at, _, value) = rx
                .recv_timeout(Duration::from_secs(5))
                .expect("runner reports the transition");
            if value["event"] == id.to_string() && value["action"] == "fired" {
                latencies.push(at.duration_since(committed).as_secs_f64() * 1000.0);
                break;
            }
        }
    }
    let _ = child.kill();
    summarize("confirm (other process) → reported", latencies, 10.0);
}

fn miss_latency(stores: &Stores) {
    let db = stores.location("miss");
    let mut engine = Engine::open(&db).expect("store");
    let start = Utc::now() + chrono::Duration::milliseconds(1500);
    let n = 50;
    let mut fire_times = std::collections::HashMap::new();
    for i in 0..n {
        let at = start + chrono::Duration::milliseconds(i * 73);
        let e = engine
            .schedule(new_event(at, &["nobody"], 1))
            .expect("schedule");
        fire_times.insert(e.id.to_string(), e.fire_time());
    }
    let (mut child, rx) = spawn_runner(&db);
    let mut lags = Vec::new();
    while lags.len() < n as usize {
        let (_, wall, value) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("runner reports misses");
        if value["action"] == "missed" {
            let fire = fire_times[value["event"].as_str().unwrap_or_default()];
            lags.push((wall - fire).num_microseconds().unwrap_or(0) as f64 / 1000.0);
        }
    }
    let _ = child.kill();
    summarize("fire time → miss reported", lags, 100.0);
}

fn idle_cpu(stores: &Stores) {
    let db = stores.location("idle");
    let mut engine = Engine::open(&db).expect("store");
    engine
        .schedule(new_event(
            Utc::now() + chrono::Duration::hours(1),
            &["a"],
            1,
        ))
        .expect("schedule");
    let (mut child, _rx) = spawn_runner(&db);
    std::thread::sleep(Duration::from_secs(1));
    let before = cpu_ticks(child.id());
    // 60 s: CPU time comes in 10 ms ticks, and the target (0.05 % of a
    // core) is 30 ms over the window.
    let window = Duration::from_secs(60);
    std::thread::sleep(window);
    let after = cpu_ticks(child.id());
    let _ = child.kill();
    match (before, after) {
        (Some(b), Some(a)) => {
            // Linux reports CPU time in clock ticks of 10 ms (USER_HZ = 100).
            let cpu = (a - b) as f64 * 0.01;
            let percent = cpu / window.as_secs_f64() * 100.0;
            let verdict = if percent <= 0.05 { "meets" } else { "MISSES" };
            println!(
                "{:<40} {cpu:.2} s CPU over {} s = {percent:.3}% of one core ({verdict} the 0.05% target)",
                "waiting for a deadline 1 h away",
                window.as_secs()
            );
        }
        _ => println!("idle CPU: /proc not available on this platform"),
    }
}

/// utime + stime of a process, in clock ticks, from /proc/PID/stat.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn main() {
    // `cargo test --benches` runs this with `--bench`-less args; only measure
    // under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let mut all = vec![(
        "SQLite",
        Stores::Sqlite(tempfile::tempdir().expect("temp dir")),
    )];
    match std::env::var("T_MINUS_TEST_PG") {
        Ok(url) if !url.is_empty() => all.push(("PostgreSQL", Stores::Postgres(url))),
        _ => println!("(PostgreSQL skipped: T_MINUS_TEST_PG is not set)"),
    }
    for (name, stores) in &all {
        println!("== {name}");
        confirm_latency(stores);
        miss_latency(stores);
        idle_cpu(stores);
        stores.clean_up();
    }
}
