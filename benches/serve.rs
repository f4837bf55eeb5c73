//! The HTTP service as its clients use it: `t-minus serve` (the release
//! binary) on a free port, driven from this process over real HTTP.
//!
//! - **Answers.** 1, 16 and 64 clients at once, each on one kept-alive
//!   connection with an agent token of its own, post `POST
//!   /v1/events/c{k}/e0/confirm` again and again for the measuring time
//!   (client `k` answers in campaign `c{k mod 64}`); against the same
//!   answers made by as many threads each running `t-minus confirm c{k}/e0
//!   alice` processes one after the other, on the same store. The store is
//!   the one of `benches/concurrency.rs`: 64 campaigns (`c0` … `c63`) of
//!   1,000 events in all (3 attendees `alice`, `bob`, `carol`, quorum all,
//!   a month away), so every answer is accepted, writes its attendee row,
//!   its event and one log entry, and leaves the event pending. Answers per
//!   second, p50 and p99 of each answer's latency (request sent to reply
//!   read, or process spawned to process reaped), and the 1-minute load
//!   average before–after are printed per figure.
//! - **Idle CPU.** `serve` with its ticker and deliverer running on the
//!   same store (events pending a month away, nobody asking): CPU time
//!   from `/proc/PID/stat` over the idle window.
//! - **Streams.** Resident memory (`VmRSS`) of `serve` before and with N
//!   open `GET /v1/stream` connections (default 10,000; the soft limit of
//!   open files is raised to the hard one first, and `serve` inherits it),
//!   and how long one answer takes to reach every stream.
//!
//! Run: `cargo bench --bench serve`. Settings: `T_MINUS_BENCH_CLIENTS`
//! (default `1,16,64`), `T_MINUS_BENCH_SECS` (seconds per figure, default
//! 5), `T_MINUS_BENCH_STORES` (`sqlite,postgres` by default; PostgreSQL
//! only with `T_MINUS_TEST_PG`, in a schema `bench_serve_PID` dropped at the
//! end), `T_MINUS_BENCH_PARTS` (`answers,idle,streams`),
//! `T_MINUS_BENCH_MODES` (`http,cli`), `T_MINUS_BENCH_IDLE_SECS` (default
//! 20), `T_MINUS_BENCH_STREAMS` (default 10000), and
//! `T_MINUS_BENCH_BINS=before=/path/to/old/t-minus,after=target/release/t-minus`
//! to compare binaries on the same stores (default: this build's binary).
//! `serve` runs with `--rate-limit 0`: the default limit (100 requests a
//! second per token) would cap one client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_t-minus");

/// The campaigns of the store: one per client, the 64th client's the last.
const CAMPAIGNS: usize = 64;

/// Events in the store, spread over the campaigns.
const EVENTS: usize = 1000;

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

/// A `t-minus` command on `db`, quiet.
fn command(bin: &str, db: &str) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("--db")
        .arg(db)
        .env_remove("T_MINUS_NOW")
        .env_remove("T_MINUS_TOKEN")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

/// Runs `bin ARGS` on `db`; whether it exited 0.
fn run(bin: &str, db: &str, args: &[&str]) -> bool {
    command(bin, db)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Builds the store at `db`: [`EVENTS`] events over [`CAMPAIGNS`]
/// campaigns.
fn build(db: &str, dir: &std::path::Path) {
    let mut files = Vec::new();
    for k in 0..CAMPAIGNS {
        let count = EVENTS / CAMPAIGNS + usize::from(k < EVENTS % CAMPAIGNS);
        let file = dir.join(format!("c{k}.yaml"));
        std::fs::write(&file, manifest(k, count)).expect("write manifest");
        files.push(file.to_str().expect("UTF-8 path").to_string());
    }
    let mut args = vec!["apply"];
    args.extend(files.iter().map(String::as_str));
    assert!(run(BIN, db, &args), "apply into {db}");
}

/// A new token for `agent` with `role` (the last line `token create`
/// prints).
fn token(db: &str, agent: &str, role: &str) -> String {
    let out = command(BIN, db)
        .args(["token", "create", agent, "--role", role])
        .stderr(Stdio::inherit())
        .output()
        .expect("token create");
    assert!(out.status.success(), "token create {agent}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .expect("a token")
        .trim()
        .to_string()
}

/// The 1-minute load average.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// A running `t-minus serve`, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    /// `bin serve` on `db`, on a free port, without a rate limit.
    fn start(bin: &str, db: &str) -> Server {
        let mut child = command(bin, db)
            .args(["serve", "--listen", "127.0.0.1:0", "--rate-limit", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start t-minus serve");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("serve's first line");
        let addr = line
            .trim()
            .strip_prefix("t-minus serve: listening on http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("serve did not start: {line:?}"));
        Server {
            child,
            addr,
            _stdout: stdout,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Answers per second, latencies and failures of one figure.
struct Figure {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    failed: u64,
}

/// The `q` quantile (0–1) of sorted `v`, in milliseconds.
fn quantile(v: &[Duration], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].as_secs_f64() * 1e3
}

/// Runs `clients` threads for `secs`, each calling `answer(k)` (true: the
/// answer was accepted) again and again; the figure.
fn measure(
    clients: usize,
    secs: f64,
    answer: impl Fn(usize) -> Box<dyn FnMut() -> bool + Send> + Sync,
) -> Figure {
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    let mut latencies: Vec<Duration> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..clients)
            .map(|k| {
                let mut call = answer(k);
                let failed = Arc::clone(&failed);
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    while Instant::now() < until {
                        let sent = Instant::now();
                        if call() {
                            mine.push(sent.elapsed());
                        } else {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    mine
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().expect("client"))
            .collect()
    });
    let wall = start.elapsed().as_secs_f64();
    latencies.sort();
    Figure {
        rate: latencies.len() as f64 / wall,
        p50_ms: quantile(&latencies, 0.50),
        p99_ms: quantile(&latencies, 0.99),
        failed: failed.load(Ordering::Relaxed),
    }
}

/// An HTTP client of one kept-alive connection answering `c{k}/e0` with
/// `token`.
fn http_client(base: &str, k: usize, token: &str) -> Box<dyn FnMut() -> bool + Send> {
    let http: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let url = format!("{base}/v1/events/c{}%2Fe0/confirm", k % CAMPAIGNS);
    let bearer = format!("Bearer {token}");
    Box::new(move || {
        match http
            .post(&url)
            .header("Authorization", &bearer)
            .send_empty()
        {
            Ok(mut reply) => {
                // Read the whole reply, so the connection is reused.
                let body = reply.body_mut().read_to_vec();
                reply.status() == 200 && body.is_ok()
            }
            Err(_) => false,
        }
    })
}

/// A client running `bin confirm c{k}/e0 alice` processes.
fn cli_client(bin: &str, db: &str, k: usize) -> Box<dyn FnMut() -> bool + Send> {
    let (bin, db) = (bin.to_string(), db.to_string());
    let event = format!("c{}/e0", k % CAMPAIGNS);
    Box::new(move || run(&bin, &db, &["confirm", &event, "alice"]))
}

fn print_figure(store: &str, clients: usize, mode: &str, name: &str, f: &Figure, before: &str) {
    println!(
        "| {store:<10} | {clients:>3} | {mode:<4} | {name:<7} | {:>9.1} | {:>8.2} | {:>8.2} | {:>4} | {before}–{} |",
        f.rate,
        f.p50_ms,
        f.p99_ms,
        f.failed,
        load()
    );
}

/// Answers per second over HTTP and from processes, on the store at `db`.
#[allow(clippy::too_many_arguments)]
fn answers(
    store: &str,
    db: &str,
    bins: &[(String, String)],
    clients: &[usize],
    modes: &[String],
    tokens: &[String],
    secs: f64,
) {
    for (name, bin) in bins {
        let server = modes
            .iter()
            .any(|m| m == "http")
            .then(|| Server::start(bin, db));
        for &n in clients {
            if let Some(server) = &server {
                let base = server.base();
                // Warm-up: connections made, statements prepared.
                measure(n, 0.5, |k| http_client(&base, k, &tokens[k]));
                let before = load();
                let f = measure(n, secs, |k| http_client(&base, k, &tokens[k]));
                print_figure(store, n, "http", name, &f, &before);
            }
            if modes.iter().any(|m| m == "cli") {
                let before = load();
                let f = measure(n, secs, |k| cli_client(bin, db, k));
                print_figure(store, n, "cli", name, &f, &before);
            }
        }
    }
}

/// User and system CPU time of process `pid` so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // The fields after the command name (which is in parentheses and may
    // hold spaces): state is field 3, utime 14, stime 15.
    let after = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Duration::from_secs_f64(ticks as f64 / hz)
}

/// A line of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix(key)?
                    .trim_start_matches(':')
                    .split_whitespace()
                    .next()
                    .map(str::to_string)
            })
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The number of threads of process `pid`.
fn threads(pid: u32) -> u64 {
    status_kib(pid, "Threads")
}

/// CPU used by an idle `serve` on `db` over `secs`.
fn idle(store: &str, db: &str, bins: &[(String, String)], secs: f64) {
    for (name, bin) in bins {
        let server = Server::start(bin, db);
        // Start-up and the first ticks are not idle.
        std::thread::sleep(Duration::from_secs(2));
        let before = load();
        let cpu0 = cpu_time(server.pid());
        let start = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(secs));
        let cpu = cpu_time(server.pid()) - cpu0;
        let wall = start.elapsed();
        println!(
            "| {store:<10} | {name:<7} | {:>6.0} ms over {:.0} s | {:>6.3} % | {} threads | {before}–{} |",
            cpu.as_secs_f64() * 1e3,
            wall.as_secs_f64(),
            cpu.as_secs_f64() / wall.as_secs_f64() * 100.0,
            threads(server.pid()),
            load()
        );
    }
}

/// Raises the soft limit of open files to the hard one; the limit now.
fn raise_fd_limit() -> u64 {
    // SAFETY: an all-zero rlimit is a valid value of the plain C struct.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is valid for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: the pointer is valid for the call.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    // SAFETY: as above.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    limit.rlim_cur as u64
}

/// Opens one stream: the request sent and the reply's head read (200).
fn open_stream(addr: SocketAddr, token: &str) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        s,
        "GET /v1/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    )?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            return Err(std::io::Error::other("closed before the reply's head"));
        }
        head.push(byte[0]);
    }
    if !head.starts_with(b"HTTP/1.1 200") {
        return Err(std::io::Error::other(
            String::from_utf8_lossy(&head).into_owned(),
        ));
    }
    Ok(s)
}

/// Reads `s` until `needle` arrives.
fn read_until(s: &mut TcpStream, needle: &[u8]) -> bool {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => {
                seen.extend_from_slice(&buf[..n]);
                if seen.windows(needle.len()).any(|w| w == needle) {
                    return true;
                }
            }
        }
    }
}

/// Memory of `serve` with `n` open streams on `db`, and the time one
/// answer takes to reach them all.
fn streams(store: &str, db: &str, bins: &[(String, String)], n: usize, answer_token: &str) {
    let limit = raise_fd_limit();
    let n = n.min(usize::try_from(limit.saturating_sub(64)).unwrap_or(usize::MAX));
    let reader = token(db, "watcher", "reader");
    for (name, bin) in bins {
        let server = Server::start(bin, db);
        let pid = server.pid();
        std::thread::sleep(Duration::from_secs(1));
        let rss0 = status_kib(pid, "VmRSS");
        let before = load();
        let start = Instant::now();
        let workers = 4;
        let opened: Vec<TcpStream> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|w| {
                    let reader = reader.as_str();
                    let addr = server.addr;
                    scope.spawn(move || {
                        (w..n)
                            .step_by(workers)
                            .map(|_| open_stream(addr, reader).expect("open a stream"))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("opener"))
                .collect()
        });
        let opening = start.elapsed();
        std::thread::sleep(Duration::from_secs(2));
        let rss = status_kib(pid, "VmRSS");
        let hwm = status_kib(pid, "VmHWM");
        // One answer, then every stream reads until it has it.
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let sent = Instant::now();
        let reply = http
            .post(format!("{}/v1/events/c0%2Fe1/confirm", server.base()))
            .header("Authorization", format!("Bearer {answer_token}"))
            .send_empty()
            .expect("answer");
        assert_eq!(reply.status(), 200, "the answer");
        let mut reached = 0;
        for mut s in opened {
            if read_until(&mut s, b"event: confirmed") {
                reached += 1;
            }
        }
        let fan_out = sent.elapsed();
        println!(
            "| {store:<10} | {name:<7} | {n:>6} | {:>7.1} MiB | {:>7.1} MiB | {:>5.1} KiB | {:>7.1} MiB | {:>5.1} s | {reached:>6} in {:>6.0} ms | {} threads | {before}–{} |",
            rss0 as f64 / 1024.0,
            rss as f64 / 1024.0,
            (rss.saturating_sub(rss0)) as f64 / n.max(1) as f64,
            hwm as f64 / 1024.0,
            opening.as_secs_f64(),
            fan_out.as_secs_f64() * 1e3,
            threads(pid),
            load()
        );
    }
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
    // `cargo test --benches` runs this without `--bench`; only measure under
    // `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let bins: Vec<(String, String)> = list("T_MINUS_BENCH_BINS", &format!("this={BIN}"))
        .into_iter()
        .map(|b| match b.split_once('=') {
            Some((name, path)) => (name.to_string(), path.to_string()),
            None => (b.clone(), b),
        })
        .collect();
    let clients: Vec<usize> = list("T_MINUS_BENCH_CLIENTS", "1,16,64")
        .iter()
        .map(|s| s.parse().expect("client counts are numbers"))
        .collect();
    let secs: f64 = std::env::var("T_MINUS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let idle_secs: f64 = std::env::var("T_MINUS_BENCH_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20.0);
    let stream_count: usize = std::env::var("T_MINUS_BENCH_STREAMS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let parts = list("T_MINUS_BENCH_PARTS", "answers,idle,streams");
    let modes = list("T_MINUS_BENCH_MODES", "http,cli");
    let stores = list("T_MINUS_BENCH_STORES", "sqlite,postgres");
    let pg = std::env::var("T_MINUS_TEST_PG")
        .ok()
        .filter(|u| !u.is_empty() && stores.iter().any(|s| s == "postgres"));
    let dir = tempfile::tempdir().expect("temp dir");
    let schema = format!("bench_serve_{}", std::process::id());

    let mut locations = Vec::new();
    if stores.iter().any(|s| s == "sqlite") {
        let db = dir.path().join("serve.db");
        locations.push(("sqlite", db.to_str().expect("UTF-8").to_string()));
    }
    let mut client = pg
        .as_deref()
        .map(|url| postgres::Client::connect(url, postgres::NoTls).expect("server"));
    if let (Some(url), Some(client)) = (pg.as_deref(), client.as_mut()) {
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
    } else if stores.iter().any(|s| s == "postgres") {
        eprintln!("(PostgreSQL skipped: T_MINUS_TEST_PG is not set)");
    }

    let clients_max = clients.iter().copied().max().unwrap_or(1);
    let mut prepared = Vec::new();
    for (store, db) in &locations {
        build(db, dir.path());
        let tokens: Vec<String> = (0..clients_max.max(1))
            .map(|_| token(db, "alice", "agent"))
            .collect();
        prepared.push((*store, db.clone(), tokens));
    }

    if parts.iter().any(|p| p == "answers") {
        println!(
            "| store | clients | via | binary | answers/s | p50 ms | p99 ms | failed | load |"
        );
        println!("|---|---:|---|---|---:|---:|---:|---:|---|");
        for (store, db, tokens) in &prepared {
            answers(store, db, &bins, &clients, &modes, tokens, secs);
        }
    }
    if parts.iter().any(|p| p == "idle") {
        println!();
        println!("| store | binary | CPU time | CPU | threads | load |");
        println!("|---|---|---:|---:|---:|---|");
        for (store, db, _) in &prepared {
            idle(store, db, &bins, idle_secs);
        }
    }
    if parts.iter().any(|p| p == "streams") {
        println!();
        println!("| store | binary | streams | RSS before | RSS with streams | per stream | peak RSS | opening | answer reached | threads | load |");
        println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        for (store, db, tokens) in &prepared {
            streams(store, db, &bins, stream_count, &tokens[0]);
        }
    }
    if let Some(client) = client.as_mut() {
        let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
    }
}
