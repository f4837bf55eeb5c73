//! Hostile input corpus.
//!
//! Every case is one line of the tables below: a hostile manifest (run
//! through `validate`, `plan`, `apply` and `run PATH`) or a hostile command
//! line. Each invocation must
//!
//! - exit 1 with a diagnostic on stderr and no panic,
//! - finish within [`TIME_LIMIT`] of CPU time (user + system, from `wait4`:
//!   the child's own work, whatever else the machine is running) and stay
//!   under [`MEMORY_LIMIT_KB`] of resident memory (the child's own peak,
//!   its `VmHWM` sampled while it runs: `wait4`'s `ru_maxrss` would carry
//!   over the forking test process's peak, which exec does not reset),
//! - leave the pre-populated store exactly as it was: the same bytes, and
//!   the same logical content (every row of every table).
//!
//! Large inputs (a 60 MB file, 100,000-deep nesting, 10,000 attendees, …)
//! are generated into a temporary directory; nothing big is committed. The
//! test runs every case and reports all failures together.
#![cfg(target_os = "linux")]

use crate::cli_support;

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cli_support::T;

/// Most CPU time (user + system) an invocation may take.
const TIME_LIMIT: Duration = Duration::from_secs(5);
/// Largest peak resident memory of an invocation, in KiB.
const MEMORY_LIMIT_KB: i64 = 200 * 1024;
/// A child still running after this long is killed (and fails).
const HARD_KILL: Duration = Duration::from_secs(30);

const SQL: &str = "'); DROP TABLE events;--";

// ---------------------------------------------------------------------------
// Running one invocation and measuring it.

struct Measured {
    code: Option<i32>,
    signal: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    elapsed: Duration,
    /// User + system CPU time of the child.
    cpu: Duration,
    max_rss_kb: i64,
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

/// The peak resident memory (KiB) of process `pid` since its last exec,
/// once it runs the t-minus binary; `None` before that or once it is gone.
fn t_minus_peak_kb(pid: libc::pid_t) -> Option<i64> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    if comm.trim_end() != "t-minus" {
        return None;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `cmd`, reaping it with `wait4` for its CPU time, and sampling its
/// peak memory while it runs.
#[allow(clippy::zombie_processes)] // reaped by wait4, which std cannot see
fn run_measured(mut cmd: Command) -> Measured {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn t-minus");
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut killed = false;
    let mut peak_kb = 0;
    loop {
        if let Some(kb) = t_minus_peak_kb(pid) {
            peak_kb = peak_kb.max(kb);
        }
        // SAFETY: pid is our own child, not yet reaped; the pointers are valid.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            panic!("wait4: {}", std::io::Error::last_os_error());
        }
        if !killed && start.elapsed() > HARD_KILL {
            let _ = child.kill();
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let elapsed = start.elapsed();
    let (code, signal) = if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else if libc::WIFSIGNALED(status) {
        (None, Some(libc::WTERMSIG(status)))
    } else {
        (None, None)
    };
    Measured {
        code,
        signal,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        elapsed,
        cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
        max_rss_kb: peak_kb,
    }
}

// ---------------------------------------------------------------------------
// The store: populated once, copied for every case, compared after each run.

const STORE_MANIFEST: &str = "\
campaign: release
description: the store every hostile case runs against
events:
  build:
    at: +10m
    attendees: [alice, bob]
  deploy:
    needs: [build]
    at: +20m
    quorum: majority
    attendees: [alice, bob, carol]
    payload: {version: 2.0.0}
";

/// A store with a campaign, standalone events, answers, a fired event and
/// its audit trail.
fn populated_store() -> T {
    let mut t = T::new();
    std::fs::write(t.dir().join("release.yaml"), STORE_MANIFEST).unwrap();
    t.ok("apply release.yaml");
    t.ok("confirm release/build alice");
    t.ok("defer release/build bob 1m");
    let gate = t.schedule("checkpoint +5m --attendees ci --quorum 1");
    t.ok(&format!("confirm {gate} ci"));
    t.schedule("meeting +1h --attendees x,y --quorum majority");
    t.ok("campaign create empty");
    t.set_now("2025-06-06T15:30:00Z");
    t.ok("tick");
    t
}

const STORE_FILES: [&str; 3] = ["store.db", "store.db-wal", "store.db-shm"];

fn copy_store(from: &Path, to: &Path) {
    for name in STORE_FILES {
        let src = from.join(name);
        if src.exists() {
            std::fs::copy(&src, to.join(name)).unwrap();
        }
    }
}

/// The store as bytes and as rows: every table's rows (sorted) and
/// `user_version`, read from a copy so the original is not touched.
#[derive(PartialEq, Eq)]
struct Snapshot {
    bytes: Vec<Option<Vec<u8>>>,
    rows: Vec<String>,
}

fn snapshot(dir: &Path) -> Snapshot {
    let bytes = STORE_FILES[..2]
        .iter()
        .map(|n| std::fs::read(dir.join(n)).ok())
        .collect();
    let copy = tempfile::tempdir().unwrap();
    copy_store(dir, copy.path());
    let db = rusqlite::Connection::open_with_flags(
        copy.path().join("store.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the store copy");
    let mut rows = Vec::new();
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    rows.push(format!("user_version={version}"));
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for table in tables {
        let mut stmt = db.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let n = stmt.column_count();
        let mut found: Vec<String> = stmt
            .query_map([], |r| {
                let cells: Vec<String> = (0..n)
                    .map(|i| format!("{:?}", r.get::<_, rusqlite::types::Value>(i).unwrap()))
                    .collect();
                Ok(cells.join("|"))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        found.sort();
        rows.push(format!("{table}: {} rows", found.len()));
        rows.extend(found.into_iter().map(|r| format!("{table}: {r}")));
    }
    Snapshot { bytes, rows }
}

// ---------------------------------------------------------------------------
// The corpus.

/// One hostile invocation: a name, the arguments after `t-minus --db
/// store.db`, and extra environment.
struct Case {
    name: String,
    args: Vec<OsString>,
    env: Vec<(&'static str, OsString)>,
}

fn case(name: impl Into<String>, args: &[&dyn AsRef<OsStr>]) -> Case {
    Case {
        name: name.into(),
        args: args.iter().map(|a| a.as_ref().to_owned()).collect(),
        env: Vec::new(),
    }
}

/// Where the generated inputs live.
struct Inputs {
    dir: tempfile::TempDir,
}

impl Inputs {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

/// `n` times `unit`.
fn rep(unit: &str, n: usize) -> String {
    unit.repeat(n)
}

/// An event whose one bad part is `field: value` (YAML text).
fn event_with(field: &str, value: &str) -> String {
    format!("campaign: hostile\nevents:\n  a:\n    at: +10m\n    attendees: [x]\n    {field}: {value}\n")
}

/// Seeded xorshift bytes.
fn random_bytes(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

fn billion_laughs() -> String {
    let mut s = String::from(
        "campaign: lol\nevents:\n  x:\n    at: +1m\n    payload:\n      l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..10 {
        let refs = vec![format!("*l{}", i - 1); 9].join(", ");
        s.push_str(&format!("      l{i}: &l{i} [{refs}]\n"));
    }
    s
}

fn merge_key_bomb() -> String {
    let mut s = String::from("campaign: merge\nbase:\n  m0: &m0 {a: 1, b: 2, c: 3, d: 4}\n");
    for i in 1..12 {
        let refs = (0..8)
            .map(|_| format!("*m{}", i - 1))
            .collect::<Vec<_>>()
            .join(", ");
        s.push_str(&format!("  m{i}: &m{i} {{<<: [{refs}], k{i}: {i}}}\n"));
    }
    s.push_str("events:\n  a:\n    <<: *m11\n    at: +1m\n");
    s
}

/// A 60 MB manifest, written in chunks.
fn sixty_megabytes(path: &Path) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(b"campaign: huge\nevents:\n").unwrap();
    let mut n = 0usize;
    let mut written = 0usize;
    while written < 60 * 1024 * 1024 {
        let chunk = format!("  e{n}:\n    at: +1m\n    attendees: [a, b]\n");
        f.write_all(chunk.as_bytes()).unwrap();
        written += chunk.len();
        n += 1;
    }
}

/// Manifest cases: (name, file name, contents). Each runs through
/// validate, plan, apply and run.
fn manifest_cases(inputs: &Inputs) -> Vec<(String, PathBuf)> {
    let attendees_10k = (0..10_000)
        .map(|i| format!("agent-{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let cycle_10k: String = (0..10_000)
        .map(|i| format!("  e{i}:\n    at: +1m\n    needs: [e{}]\n", (i + 1) % 10_000))
        .collect();
    let sql_everywhere = format!(
        "campaign: \"{SQL}\"\ndescription: \"{SQL}\"\ndefaults:\n  kind: \"{SQL}\"\n  quorum: \"{SQL}\"\nevents:\n  \"{SQL}\":\n    kind: \"{SQL}\"\n    description: \"{SQL}\"\n    at: \"{SQL}\"\n    t_minus: \"{SQL}\"\n    fire: \"{SQL}\"\n    max_defer: \"{SQL}\"\n    attendees: [\"{SQL}\"]\n    needs: [\"{SQL}\"]\n    payload: {{\"{SQL}\": \"{SQL}\"}}\n"
    );
    let many_documents: String = (0..1_001)
        .map(|i| format!("---\ncampaign: c{i}\n"))
        .collect();
    let block_mappings: String = (0..2_000)
        .map(|i| format!("{}k:\n", " ".repeat(6 + i)))
        .collect();

    let text: Vec<(&str, String)> = vec![
        ("alias bomb (billion laughs)", billion_laughs()),
        ("merge-key bomb", merge_key_bomb()),
        (
            "100k-deep flow sequences",
            format!("campaign: deep\nevents: {}{}\n", rep("[", 100_000), rep("]", 100_000)),
        ),
        (
            "100k-deep flow mappings in a payload",
            format!(
                "campaign: deep\nevents:\n  a:\n    at: +1m\n    payload: {}1{}\n",
                rep("{a: ", 100_000),
                rep("}", 100_000)
            ),
        ),
        (
            "100k unclosed brackets",
            format!("campaign: deep\nevents:\n  a:\n    at: +1m\n    payload: {}\n", rep("[", 100_000)),
        ),
        (
            "100k-deep block sequences",
            format!("campaign: deep\nevents:\n  a:\n    at: +1m\n    payload: {}x\n", rep("- ", 100_000)),
        ),
        (
            "2,000-deep block mappings",
            format!("campaign: deep\nevents:\n  a:\n    at: +1m\n    payload:\n{block_mappings}"),
        ),
        (
            "events just over the 16 MiB size limit",
            {
                let mut s = String::from("campaign: big\nevents:\n");
                let mut i = 0;
                while s.len() <= 16 * 1024 * 1024 + 64 * 1024 {
                    s.push_str(&format!("  e{i}:\n    at: +1m\n"));
                    i += 1;
                }
                s
            },
        ),
        (
            "7 MB description then an error",
            format!(
                "campaign: big\ndescription: '{}'\nevents:\n  a:\n    at: never\n",
                rep("x", 7 * 1024 * 1024)
            ),
        ),
        ("empty file", String::new()),
        ("whitespace and comments only", "\n   \n# nothing\n\t\n".into()),
        ("only a document marker", "---\n...\n".into()),
        ("null root", "~\n".into()),
        ("YAML list at the root", "- campaign: a\n- campaign: b\n".into()),
        ("scalar root", "just a string\n".into()),
        ("number root", "18446744073709551616\n".into()),
        ("duplicate top-level keys", "campaign: a\ncampaign: b\nevents: {}\n".into()),
        (
            "duplicate event keys",
            "campaign: a\nevents:\n  x:\n    at: +1m\n  x:\n    at: +2m\n".into(),
        ),
        ("duplicate keys in a payload", event_with("payload", "{k: 1, k: 2}")),
        (
            "BOM then an error",
            "\u{feff}campaign: bom\nevents:\n  a:\n    at: +1m\n    quorum: 5\n".into(),
        ),
        (
            "CRLF then an error",
            "campaign: crlf\r\nevents:\r\n  a:\r\n    at: +1m\r\n    quorum: 7\r\n".into(),
        ),
        ("tab indentation", "campaign: tabs\nevents:\n\ta:\n\t\tat: +1m\n".into()),
        (
            "1 MB key",
            format!("campaign: k\nevents:\n  {}:\n    at: +1m\n", rep("k", 1 << 20)),
        ),
        (
            "1 MB agent id",
            event_with("attendees", &format!("[{}]", rep("a", 1 << 20))),
        ),
        (
            "NUL escape in an event name",
            "campaign: nul\nevents:\n  \"a\\0b\":\n    at: +1m\n".into(),
        ),
        ("NUL escape in an attendee", event_with("needs", "[\"x\\0y\"]")),
        ("quorum of 2^64", event_with("quorum", "18446744073709551616")),
        ("quorum of 10^30", event_with("quorum", "999999999999999999999999999999")),
        ("negative quorum beyond 64 bits", event_with("quorum", "-99999999999999999999")),
        ("float quorum", event_with("quorum", "1e308")),
        ("t_minus of 2^64 seconds", event_with("t_minus", "18446744073709551616")),
        ("max_defer of 2^64 seconds", event_with("max_defer", "'18446744073709551616s'")),
        (
            "at of 2^64 seconds",
            "campaign: far\nevents:\n  a:\n    at: '+18446744073709551616s'\n".into(),
        ),
        (
            "at in millions of years",
            "campaign: far\nevents:\n  a:\n    at: +5000000years\n".into(),
        ),
        ("t_minus of a million years", event_with("t_minus", "1000000years")),
        ("max_defer of 3 million years", event_with("max_defer", "3000000years")),
        ("infinite t_minus", event_with("t_minus", ".inf")),
        ("NaN in a payload", event_with("payload", ".nan")),
        (
            "year 262143",
            "campaign: far\nevents:\n  a:\n    at: '+262143-12-31T23:59:59Z'\n".into(),
        ),
        (
            "10,000 attendees, quorum 10,001",
            format!("campaign: crowd\nevents:\n  a:\n    at: +1m\n    quorum: 10001\n    attendees: [{attendees_10k}]\n"),
        ),
        (
            "10,000 attendees, one repeated",
            format!("campaign: crowd\nevents:\n  a:\n    at: +1m\n    attendees: [{attendees_10k}, agent-0]\n"),
        ),
        ("10,000-event dependency cycle", format!("campaign: ring\nevents:\n{cycle_10k}")),
        ("SQL in every string field", sql_everywhere),
        ("SQL as campaign name", format!("campaign: \"{SQL}\"\nevents: {{}}\n")),
        (
            "SQL as event key",
            format!("campaign: sql\nevents:\n  \"{SQL}\":\n    at: +1m\n"),
        ),
        ("SQL as attendee", event_with("attendees", &format!("[\"{SQL}\"]"))),
        ("SQL as need", event_with("needs", &format!("[\"{SQL}\"]"))),
        ("SQL as quorum", event_with("quorum", &format!("\"{SQL}\""))),
        ("SQL as fire policy", event_with("fire", &format!("\"{SQL}\""))),
        (
            "SQL as time",
            format!("campaign: sql\nevents:\n  a:\n    at: \"{SQL}\"\n"),
        ),
        (
            "SQL in description and payload, bad quorum",
            format!(
                "campaign: sql\ndescription: \"{SQL}\"\nevents:\n  a:\n    at: +1m\n    description: \"{SQL}\"\n    payload: {{q: \"{SQL}\"}}\n    quorum: 3\n"
            ),
        ),
        (
            "unknown tags",
            "campaign: !!python/object:os.system tag\nevents:\n  a:\n    at: !custom +1m\n".into(),
        ),
        ("binary tag that is not base64", "campaign: !!binary '%%%'\nevents: {}\n".into()),
        (
            "merge key bringing an unknown field",
            "campaign: m\nevents:\n  a:\n    <<: {at: +1m, bogus: 1}\n".into(),
        ),
        (
            "anchor on the campaign name used as an event and need",
            "campaign: &c m\nevents:\n  *c :\n    at: +1m\n    needs: [*c]\n".into(),
        ),
        ("alias to an undefined anchor", "campaign: *nope\nevents: {}\n".into()),
        (
            "anchor on a mapping used as the campaign name",
            "campaign: &m {a: 1}\nevents:\n  a:\n    at: +1m\n    payload: *m\n".into(),
        ),
        ("1,001 documents", many_documents),
        (
            "a valid document then a broken one",
            "campaign: ok\nevents:\n  a:\n    at: +1m\n---\ncampaign: [\n".into(),
        ),
        (
            "[store] absolute time in year 0 (fire time long past)",
            "campaign: past\nevents:\n  a:\n    at: '0000-01-01T00:00:00Z'\n    t_minus: 36525days\n".into(),
        ),
        (
            "200,000 one-line documents",
            (0..200_000).map(|i| format!("---\ncampaign: c{i}\n")).collect(),
        ),
    ];
    let mut out: Vec<(String, PathBuf)> = text
        .into_iter()
        .enumerate()
        .map(|(i, (name, body))| {
            (
                name.to_string(),
                inputs.write(&format!("m{i:02}.yaml"), body),
            )
        })
        .collect();

    let bytes: Vec<(&str, Vec<u8>)> = vec![
        ("64 KiB of random bytes", random_bytes(64 * 1024, 0x5eed)),
        ("invalid UTF-8", b"campaign: caf\xe9\nevents: {}\n".to_vec()),
        (
            "raw NUL byte in the campaign name",
            b"campaign: a\x00b\nevents: {}\n".to_vec(),
        ),
        ("UTF-16 manifest", {
            let mut v = vec![0xff, 0xfe];
            v.extend(
                "campaign: u\nevents: {}\n"
                    .encode_utf16()
                    .flat_map(|u| u.to_le_bytes()),
            );
            v
        }),
    ];
    for (i, (name, body)) in bytes.into_iter().enumerate() {
        out.push((
            name.to_string(),
            inputs.write(&format!("b{i:02}.yaml"), body),
        ));
    }

    let big = inputs.path("sixty.yaml");
    sixty_megabytes(&big);
    out.push(("60 MB file".into(), big));

    // A directory whose only entries are symlink loops.
    let loops = inputs.path("loops");
    std::fs::create_dir(&loops).unwrap();
    std::os::unix::fs::symlink(".", loops.join("self")).unwrap();
    std::os::unix::fs::symlink("loop.yaml", loops.join("loop.yaml")).unwrap();
    std::os::unix::fs::symlink("b.yaml", loops.join("a.yaml")).unwrap();
    std::os::unix::fs::symlink("a.yaml", loops.join("b.yaml")).unwrap();
    out.push(("directory of symlink loops".into(), loops.clone()));
    out.push((
        "a symlink that points at itself".into(),
        loops.join("loop.yaml"),
    ));
    out.push((
        "directory reached through a loop".into(),
        loops.join("self/self/self"),
    ));
    out.push(("/dev/zero as a manifest".into(), "/dev/zero".into()));
    out.push(("/dev/urandom as a manifest".into(), "/dev/urandom".into()));
    out.push((
        "a path that does not exist".into(),
        inputs.path("nope/../../x.yaml"),
    ));
    out
}

/// Saved-plan cases for `apply PLANFILE`.
fn plan_cases(inputs: &Inputs, real_plan: &str, other_store_plan: &str) -> Vec<Case> {
    let garbage = inputs.write("garbage-plan.json", "{\"t_minus_plan\": 1, garbage");
    let truncated = inputs.write("truncated-plan.json", &real_plan[..real_plan.len() / 2]);
    let other = inputs.write("other-store-plan.json", other_store_plan);
    let future = inputs.write(
        "future-plan.json",
        real_plan.replacen("\"t_minus_plan\": 1", "\"t_minus_plan\": 99", 1),
    );
    let huge_version = inputs.write(
        "huge-version-plan.json",
        real_plan.replacen(
            "\"t_minus_plan\": 1",
            "\"t_minus_plan\": 18446744073709551616",
            1,
        ),
    );
    let deep = inputs.write(
        "deep-plan.json",
        format!(
            "{{\"t_minus_plan\": 1, \"campaigns\": {}",
            rep("[", 100_000)
        ),
    );
    let sixty = inputs.path("sixty-plan.json");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&sixty).unwrap());
        f.write_all(b"{\"t_minus_plan\": 1, \"junk\": [").unwrap();
        for _ in 0..2_500_000 {
            f.write_all(b"{\"a\":[1,2,3,{\"b\":null}]},").unwrap();
        }
        f.write_all(b"0]}").unwrap();
    }
    let sql = inputs.write(
        "sql-plan.json",
        real_plan.replace(
            "\"fresh\"",
            &format!("\"{}\"", SQL.replace('\'', "\\u0027")),
        ),
    );
    vec![
        case("garbage plan file", &[&"apply", &garbage]),
        case("truncated plan file", &[&"apply", &truncated]),
        case("plan for another store", &[&"apply", &other]),
        case("plan from a future format", &[&"apply", &future]),
        case("plan version beyond 64 bits", &[&"apply", &huge_version]),
        case("100k-deep plan JSON", &[&"apply", &deep]),
        case("60 MB junk plan file", &[&"apply", &sixty]),
        case("plan with SQL as campaign name", &[&"apply", &sql]),
        case("garbage plan file given to run", &[&"run", &garbage]),
    ]
}

/// Hostile command lines against the populated store.
fn cli_cases(inputs: &Inputs) -> Vec<Case> {
    let big_id = rep("a", 120_000); // argv strings are capped at 128 KiB
    let attendees_10k = (0..10_000)
        .map(|i| format!("a{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let deep_json = rep("[", 100_000);
    let ok_manifest = inputs.write(
        "ok.yaml",
        "campaign: fresh\nevents:\n  a:\n    at: +1m\n    attendees: [z]\n",
    );
    let not_utf8 = OsString::from_vec(vec![b'a', 0xff, 0xfe, b'z']);
    let mut cases = vec![
        case("120 KB agent id", &[&"confirm", &"release/build", &big_id]),
        case("120 KB event reference", &[&"confirm", &big_id, &"alice"]),
        case("120 KB status target", &[&"status", &big_id]),
        case("120 KB campaign name", &[&"campaign", &"create", &big_id]),
        case("120 KB kind, bad time", &[&"schedule", &big_id, &"soon"]),
        case(
            "escape sequence in an agent id",
            &[&"confirm", &"release/build", &"ali\x1b[31mce"],
        ),
        case(
            "newline in an agent id",
            &[&"confirm", &"release/build", &"alice\n"],
        ),
        case(
            "control characters in a reference",
            &[&"status", &"\x1b[2J\x07\r"],
        ),
        case(
            "control characters in a duration",
            &[&"defer", &"release/build", &"alice", &"5m\x08"],
        ),
        case(
            "non-UTF-8 agent id",
            &[&"confirm", &"release/build", &not_utf8],
        ),
        case("non-UTF-8 reference", &[&"status", &not_utf8]),
        case("reference %", &[&"confirm", &"%", &"alice"]),
        case("reference '", &[&"confirm", &"'", &"alice"]),
        case("reference ../..", &[&"confirm", &"../..", &"alice"]),
        case("reference _ (LIKE wildcard)", &[&"status", &"_"]),
        case("reference release/%", &[&"log", &"release/%"]),
        case("reference release/", &[&"log", &"release/"]),
        case("reference /", &[&"cancel", &"/"]),
        case(
            "reference of 33 hex digits",
            &[&"status", &"0123456789abcdef0123456789abcdef0"],
        ),
        case("reference that is a path", &[&"wait", &"../../etc/passwd"]),
        case("SQL as reference", &[&"cancel", &SQL]),
        case("SQL as agent", &[&"confirm", &"release/build", &SQL]),
        case("SQL as campaign name", &[&"campaign", &"create", &SQL]),
        case(
            "SQL as decline reason of a non-attendee",
            &[&"decline", &"release/build", &"mallory", &"--reason", &SQL],
        ),
        case("SQL as campaign in run", &[&"run", &"--campaign", &SQL]),
        case("SQL as time", &[&"schedule", &"meeting", &SQL]),
        case(
            "SQL as event name",
            &[
                &"campaign",
                &"add",
                &"release",
                &"review",
                &"+1h",
                &"--name",
                &SQL,
            ],
        ),
        case(
            "defer by 2^64 seconds",
            &[
                &"defer",
                &"release/build",
                &"alice",
                &"18446744073709551616",
            ],
        ),
        case(
            "defer by 5 million years",
            &[&"defer", &"release/build", &"alice", &"5000000years"],
        ),
        case(
            "defer by a negative duration",
            &[&"defer", &"release/build", &"alice", &"-1s"],
        ),
        case(
            "defer by zero",
            &[&"defer", &"release/build", &"alice", &"0"],
        ),
        case(
            "quorum of 2^64",
            &[
                &"schedule",
                &"meeting",
                &"+1m",
                &"--quorum",
                &"18446744073709551616",
            ],
        ),
        case(
            "quorum of -2^63",
            &[
                &"schedule",
                &"meeting",
                &"+1m",
                &"--quorum",
                &"-9223372036854775808",
            ],
        ),
        case(
            "10,000 attendees, quorum 10,001",
            &[
                &"schedule",
                &"meeting",
                &"+1m",
                &"--attendees",
                &attendees_10k,
                &"--quorum",
                &"10001",
            ],
        ),
        case(
            "schedule in 5 million years",
            &[&"schedule", &"meeting", &"+5000000years"],
        ),
        case(
            "t-minus of 100 years from now",
            &[&"schedule", &"meeting", &"now", &"--t-minus", &"36525days"],
        ),
        case(
            "max-defer of 2^64 seconds",
            &[
                &"schedule",
                &"meeting",
                &"+1m",
                &"--max-defer",
                &"18446744073709551616",
            ],
        ),
        case(
            "100k-deep JSON payload",
            &[&"schedule", &"meeting", &"+1m", &"--payload", &deep_json],
        ),
        case(
            "payload that is not JSON",
            &[&"schedule", &"meeting", &"+1m", &"--payload", &"{'a':"],
        ),
        case(
            "run --timeout of 5 million years",
            &[
                &"run",
                &"--campaign",
                &"release",
                &"--timeout",
                &"5000000years",
            ],
        ),
        case(
            "wait --timeout beyond 64 bits",
            &[
                &"wait",
                &"release/build",
                &"--timeout",
                &"99999999999999999999999",
            ],
        ),
        case(
            "--color with an escape",
            &[&"--color", &"\x1b[0m", &"status"],
        ),
        case("unknown 120 KB subcommand", &[&big_id]),
        case(
            "plan --out onto the store",
            &[&"plan", &ok_manifest, &"--out", &"store.db"],
        ),
        case(
            "plan --out onto the store's WAL",
            &[&"plan", &ok_manifest, &"--out", &"store.db-wal"],
        ),
    ];
    let mut garbage_now = case("T_MINUS_NOW is garbage", &[&"tick"]);
    garbage_now
        .env
        .push(("T_MINUS_NOW", "'); DROP TABLE events;--".into()));
    cases.push(garbage_now);
    let mut relative_now = case("T_MINUS_NOW is 5 million years ahead", &[&"tick"]);
    relative_now
        .env
        .push(("T_MINUS_NOW", "+5000000years".into()));
    cases.push(relative_now);
    let mut far_now = case("T_MINUS_NOW out of range", &[&"status"]);
    far_now
        .env
        .push(("T_MINUS_NOW", "+262144-01-01T00:00:00Z".into()));
    cases.push(far_now);
    cases
}

// ---------------------------------------------------------------------------
// The test.

#[test]
fn hostile_inputs_are_refused_cleanly_and_change_nothing() {
    let _serial = crate::common::serial();
    let started = Instant::now();
    let template = populated_store();
    let before = snapshot(template.dir());
    assert!(
        before.rows.iter().any(|r| r.starts_with("audit")) || before.rows.len() > 10,
        "the store is populated"
    );

    let inputs = Inputs {
        dir: tempfile::tempdir().unwrap(),
    };
    // A real saved plan for this store, and one for another store.
    let fresh = inputs.write(
        "fresh.yaml",
        "campaign: fresh\nevents:\n  a:\n    at: +1m\n    attendees: [z]\n",
    );
    let real_plan = inputs.path("real-plan.json");
    let work = T::new();
    copy_store(template.dir(), work.dir());
    let out = work.run_args(&[
        OsStr::new("plan"),
        fresh.as_os_str(),
        OsStr::new("--out"),
        real_plan.as_os_str(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Another store where `fresh` exists: a plan changing it there is
    // stale here, where it does not.
    let other = T::new();
    std::fs::write(other.dir().join("release.yaml"), STORE_MANIFEST).unwrap();
    other.ok("apply release.yaml");
    let out = other.run_args(&[OsStr::new("apply"), fresh.as_os_str()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let changed = inputs.write(
        "fresh-changed.yaml",
        "campaign: fresh\nevents:\n  a:\n    at: +2m\n    attendees: [z]\n",
    );
    let other_plan = inputs.path("other-plan.json");
    let out = other.run_args(&[
        OsStr::new("plan"),
        changed.as_os_str(),
        OsStr::new("--out"),
        other_plan.as_os_str(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let real_plan = std::fs::read_to_string(&real_plan).unwrap();
    let other_plan = std::fs::read_to_string(&other_plan).unwrap();

    let mut cases = Vec::new();
    let manifests = manifest_cases(&inputs);
    let manifest_count = manifests.len();
    for (name, path) in manifests {
        // `[store]` cases are only wrong against the store (and its clock).
        let commands: &[&str] = if name.starts_with("[store]") {
            &["plan", "apply", "run"]
        } else {
            &["validate", "plan", "apply", "run"]
        };
        for command in commands {
            cases.push(case(format!("{name} [{command}]"), &[command, &path]));
        }
    }
    let plans = plan_cases(&inputs, &real_plan, &other_plan);
    let plan_count = plans.len();
    cases.extend(plans);
    let cli = cli_cases(&inputs);
    let cli_count = cli.len();
    cases.extend(cli);

    let mut failures = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    let mut hungriest = (0i64, String::new());
    for c in &cases {
        let t = T::new();
        copy_store(template.dir(), t.dir());
        let mut cmd = t.command();
        cmd.env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE");
        for (k, v) in &c.env {
            cmd.env(k, v);
        }
        cmd.args(&c.args);
        let m = run_measured(cmd);
        let stderr = String::from_utf8_lossy(&m.stderr);
        let mut problems = Vec::new();
        match (m.code, m.signal) {
            (Some(1), _) => {}
            (Some(code), _) => problems.push(format!("exit code {code}, not 1")),
            (None, Some(sig)) => problems.push(format!("killed by signal {sig}")),
            (None, None) => problems.push("no exit status".to_string()),
        }
        if stderr.trim().is_empty() {
            problems.push("no diagnostic on stderr".into());
        }
        if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
            problems.push("panicked".into());
        }
        if m.cpu > TIME_LIMIT {
            problems.push(format!(
                "took {:.2?} of CPU time, {:.2?} in all (limit {TIME_LIMIT:?} of CPU time)",
                m.cpu, m.elapsed
            ));
        }
        if m.max_rss_kb > MEMORY_LIMIT_KB {
            problems.push(format!(
                "peak memory {} MB (limit 200 MB)",
                m.max_rss_kb / 1024
            ));
        }
        let after = snapshot(t.dir());
        if after.rows != before.rows {
            let changed: Vec<&String> = after
                .rows
                .iter()
                .filter(|r| !before.rows.contains(r))
                .chain(before.rows.iter().filter(|r| !after.rows.contains(r)))
                .take(5)
                .collect();
            problems.push(format!("store content changed: {changed:?}"));
        } else if after.bytes != before.bytes {
            problems.push("store bytes changed".into());
        }
        if m.cpu > slowest.0 {
            slowest = (m.cpu, c.name.clone());
        }
        if m.max_rss_kb > hungriest.0 {
            hungriest = (m.max_rss_kb, c.name.clone());
        }
        if !problems.is_empty() {
            let excerpt: String = stderr.chars().take(400).collect();
            failures.push(format!(
                "{}: {}\n    stdout: {}\n    stderr: {excerpt}",
                c.name,
                problems.join("; "),
                String::from_utf8_lossy(&m.stdout)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ));
        }
    }
    eprintln!(
        "hostile corpus: {} manifests ×4 commands, {plan_count} plan files, {cli_count} command lines = {} invocations in {:.1?}; most CPU time {:.2?} ({}), peak memory {} MB ({})",
        manifest_count,
        cases.len(),
        started.elapsed(),
        slowest.0,
        slowest.1,
        hungriest.0 / 1024,
        hungriest.1
    );
    assert!(manifest_count + plan_count + cli_count >= 40);
    assert!(
        failures.is_empty(),
        "{} of {} hostile invocations misbehaved:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// SQL-looking text where the format allows any text (descriptions, kinds,
/// payloads, decline reasons) is stored and returned verbatim, and the
/// store's tables are intact afterwards.
#[test]
fn sql_looking_text_is_only_data() {
    let t = T::new();
    let manifest = format!(
        "campaign: sql\ndescription: \"{SQL}\"\nevents:\n  a:\n    kind: \"{SQL}\"\n    description: \"{SQL}\"\n    at: +10m\n    attendees: [\"bobby');DROP\"]\n    payload: {{\"{SQL}\": \"{SQL}\"}}\n"
    );
    std::fs::write(t.dir().join("sql.yaml"), manifest).unwrap();
    t.ok("apply sql.yaml");
    let event = t.json("status sql/a --json");
    assert_eq!(event["kind"], SQL, "{event}");
    assert_eq!(event["payload"][SQL], SQL, "{event}");
    let out = t.run_args(&["decline", "sql/a", "bobby');DROP", "--reason", SQL]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let log = t.ok("log sql/a --json");
    assert!(log.contains("DROP TABLE events"), "{log}");
    assert_eq!(t.events().len(), 1);
    let db = rusqlite::Connection::open(t.db_path()).unwrap();
    let n: i64 = db
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}
