//! Concurrent writers as users run them: answers per second from 1, 16 and
//! 64 `t-minus confirm` processes at once, each answering in a campaign of
//! its own, on SQLite and (when `T_MINUS_TEST_PG` holds a server URL) on
//! PostgreSQL, on stores of 1,000 and 100,000 events.
//!
//! Each store is built once per size by `apply` of 64 generated manifests,
//! one campaign each (`c0` … `c63`), the events spread evenly over them
//! (3 attendees, quorum all, a month away, no needs). Writer `k` runs
//! `t-minus confirm ck/e0 alice` again and again, one process after the
//! other, for the measuring time; the figure is the answers all writers
//! got accepted, divided by the wall time. The load average of the machine
//! is printed beside each figure.
//!
//! Run: `cargo bench --bench concurrency`. Settings:
//! `T_MINUS_BENCH_BINS=before=/path/to/old/t-minus,after=target/release/t-minus`
//! compares binaries on the same stores (default: this build's binary),
//! `T_MINUS_BENCH_SIZES` (default `1000,100000`), `T_MINUS_BENCH_WRITERS`
//! (default `1,16,64`), `T_MINUS_BENCH_SECS` (seconds per figure, default
//! 5), `T_MINUS_BENCH_STORES` (`sqlite,postgres` by default; PostgreSQL
//! only with `T_MINUS_TEST_PG`). The PostgreSQL stores live in schemas
//! `bench_concurrency_N` of that database, dropped at the end.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_t-minus");

/// The campaigns of a store: one per writer at most.
const CAMPAIGNS: usize = 64;

/// The manifest of campaign `c{k}` with `n` events.
fn manifest(k: usize, n: usize) -> String {
    let mut s = String::with_capacity(n * 24 + 128);
    s.push_str(&format!(
        "campaign: c{k}\ndefaults:\n  t_minus: 1m\n  quorum: all\n  attendees: [alice, bob, carol]\nevents:\n"
    ));
    for i in 0..n {
        s.push_str(&format!("  e{i}:\n    at: +30d\n"));
    }
    s
}

/// Runs `bin ARGS` on `db`; whether it exited 0.
fn run(bin: &str, db: &str, args: &[&str]) -> bool {
    Command::new(bin)
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("T_MINUS_NOW")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Builds the store at `db` with `n` events over [`CAMPAIGNS`] campaigns.
fn build(db: &str, n: usize, dir: &Path) {
    let mut files = Vec::new();
    for k in 0..CAMPAIGNS {
        let count = n / CAMPAIGNS + usize::from(k < n % CAMPAIGNS);
        let file = dir.join(format!("c{k}-{n}.yaml"));
        std::fs::write(&file, manifest(k, count)).expect("write manifest");
        files.push(file.to_str().expect("UTF-8 path").to_string());
    }
    let mut args = vec!["apply"];
    args.extend(files.iter().map(String::as_str));
    let start = Instant::now();
    assert!(run(BIN, db, &args), "apply of {n} events into {db}");
    eprintln!(
        "  built {n} events in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

/// The 1-minute load average.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// Answers per second from `writers` processes at once for `secs`, and how
/// many answers failed.
fn measure(bin: &str, db: &str, writers: usize, secs: f64) -> (f64, u64) {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let (bin, db) = (bin.to_string(), db.to_string());
            let (ok, failed) = (Arc::clone(&ok), Arc::clone(&failed));
            std::thread::spawn(move || {
                let event = format!("c{}/e0", w % CAMPAIGNS);
                while Instant::now() < until {
                    if run(&bin, &db, &["confirm", &event, "alice"]) {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer");
    }
    let wall = start.elapsed().as_secs_f64();
    (
        ok.load(Ordering::Relaxed) as f64 / wall,
        failed.load(Ordering::Relaxed),
    )
}

fn list(var: &str, default: &str) -> Vec<String> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        println!("concurrency: bench");
        return;
    }
    let bins: Vec<(String, String)> = list("T_MINUS_BENCH_BINS", &format!("this={BIN}"))
        .into_iter()
        .map(|b| match b.split_once('=') {
            Some((name, path)) => (name.to_string(), path.to_string()),
            None => (b.clone(), b),
        })
        .collect();
    let sizes: Vec<usize> = list("T_MINUS_BENCH_SIZES", "1000,100000")
        .iter()
        .map(|s| s.parse().expect("sizes are numbers"))
        .collect();
    let writers: Vec<usize> = list("T_MINUS_BENCH_WRITERS", "1,16,64")
        .iter()
        .map(|s| s.parse().expect("writer counts are numbers"))
        .collect();
    let secs: f64 = std::env::var("T_MINUS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let pg = std::env::var("T_MINUS_TEST_PG")
        .ok()
        .filter(|u| !u.is_empty());
    let stores = list("T_MINUS_BENCH_STORES", "sqlite,postgres");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut client = pg
        .as_deref()
        .filter(|_| stores.iter().any(|s| s == "postgres"))
        .map(|url| postgres::Client::connect(url, postgres::NoTls).expect("server"));

    println!("store       events  writers  binary   answers/s  failed  load");
    for &n in &sizes {
        let mut locations = Vec::new();
        if stores.iter().any(|s| s == "sqlite") {
            let db = dir.path().join(format!("conc-{n}.db"));
            locations.push(("sqlite", db.to_str().expect("UTF-8").to_string()));
        }
        if let (Some(url), Some(client)) = (pg.as_deref(), client.as_mut()) {
            let schema = format!("bench_concurrency_{n}");
            client
                .batch_execute(&format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
                ))
                .expect("create schema");
            let sep = if url.contains('?') { '&' } else { '?' };
            locations.push((
                "postgres",
                format!("{url}{sep}options=-csearch_path%3D{schema}"),
            ));
        }
        for (store, db) in &locations {
            eprintln!("{store}, {n} events:");
            build(db, n, dir.path());
            for &w in &writers {
                for (name, bin) in &bins {
                    let before = load();
                    let (rate, failed) = measure(bin, db, w, secs);
                    println!(
                        "{store:<10} {n:>7} {w:>8}  {name:<7} {rate:>10.1} {failed:>7}  {before}-{}",
                        load()
                    );
                }
            }
        }
        if let Some(client) = client.as_mut() {
            let _ = client.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS bench_concurrency_{n} CASCADE"
            ));
        }
    }
}
