//! What the PostgreSQL store does beyond the suites shared with SQLite
//! migrations on a server, connection errors, LISTEN/NOTIFY
//! wake-ups, a connection dropped while `run` waits, and several `run`
//! processes on one server, as if on different hosts.
//!
//! Every test needs the server of `T_MINUS_TEST_PG`: it is ignored when the
//! variable is unset at build time (see `common::stores`), and fails when
//! the server cannot be reached. Each works in a schema of its own.

use crate::cli_support;
use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::Value;
use t_minus::store::postgres::{PgStore, SCHEMA_VERSION};
use t_minus::store::StoreError;
use t_minus::{AgentId, Engine, EventKind, NewEvent, Quorum, TMinusError};

use cli_support::{output, Out};
use common::stores::{run, Backend, TempStore};

/// Runs `body` as a PostgreSQL test named `name`.
fn pg(name: &str, body: impl FnOnce()) {
    run(Backend::Postgres, name, body)
}

/// A plain connection to the store's schema, for looking behind its back.
fn sql(store: &TempStore) -> postgres::Client {
    postgres::Client::connect(store.location(), postgres::NoTls).expect("connect")
}

/// `url` with one more query parameter.
fn with_param(url: &str, param: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{param}")
}

/// The binary with the store at `db`, on the real clock.
fn cli(db: &str) -> Command {
    cli_support::command(db, cli_support::Clock::Real)
}

fn run_cli(db: &str, args: &[&str]) -> Out {
    let mut cmd = cli(db);
    cmd.args(args);
    output(cmd)
}

fn event(at_secs: i64, attendees: &[&str], quorum: usize) -> NewEvent {
    NewEvent {
        attendees: attendees.iter().map(|a| AgentId(a.to_string())).collect(),
        quorum: Quorum::Count(quorum),
        ..NewEvent::new(
            EventKind::Checkpoint,
            Utc::now() + chrono::Duration::seconds(at_secs),
        )
    }
}

#[test]
#[cfg_attr(not(t_minus_test_pg), ignore = "needs T_MINUS_TEST_PG")]
fn a_store_with_a_newer_schema_is_refused_and_left_untouched() {
    pg(
        "a_store_with_a_newer_schema_is_refused_and_left_untouched",
        || {
            let store = TempStore::new("store.db");
            let mut before = Engine::open(store.location()).expect("create the store");
            let mut client = sql(&store);
            client
                .batch_execute("UPDATE tm_meta SET version = 99")
                .expect("pretend a newer t-minus migrated it");

            let err = Engine::open(store.location()).expect_err("a newer schema is refused");
            assert!(
                matches!(
                    err,
                    TMinusError::Store(StoreError::TooNew {
                        found: 99,
                        supported: SCHEMA_VERSION,
                        ..
                    })
                ),
                "{err:?}"
            );
            // An engine opened before the upgrade re-checks under the write lock.
            let err = before
                .schedule(event(600, &["a"], 1))
                .expect_err("a write after the upgrade is refused");
            assert!(
                matches!(err, TMinusError::Store(StoreError::TooNew { .. })),
                "{err:?}"
            );

            let out = run_cli(store.location(), &["status"]);
            assert_eq!(out.code, 1, "{out:?}");
            assert!(
                out.stderr.contains("t_minus::store::newer_version")
                    && out.stderr.contains("schema version 99"),
                "{}",
                out.stderr
            );
            let row = client
                .query_one(
                    "SELECT version, (SELECT count(*) FROM tm_events) FROM tm_meta",
                    &[],
                )
                .expect("still readable");
            assert_eq!(
                (row.get::<_, i64>(0), row.get::<_, i64>(1)),
                (99, 0),
                "nothing changed"
            );
        },
    );
}

#[test]
#[cfg_attr(not(t_minus_test_pg), ignore = "needs T_MINUS_TEST_PG")]
fn a_store_with_a_migration_this_build_does_not_know_is_refused_and_left_untouched() {
    pg(
        "a_store_with_a_migration_this_build_does_not_know_is_refused_and_left_untouched",
        || {
            let store = TempStore::new("store.db");
            drop(Engine::open(store.location()).expect("create the store"));
            let mut client = sql(&store);
            let tables = |client: &mut postgres::Client| -> i64 {
                client
                    .query_one(
                        "SELECT count(*) FROM information_schema.tables \
                         WHERE table_schema = current_schema() AND table_name = 'tm_migrations'",
                        &[],
                    )
                    .expect("inspect")
                    .get(0)
            };
            assert_eq!(
                tables(&mut client),
                1,
                "the first eight are known by number, the later ones by name"
            );
            // What a build with one more migration, of another branch or
            // newer, would have written.
            client
                .batch_execute(&format!(
                    "INSERT INTO tm_migrations VALUES ({}, 'from_another_branch'); \
                     UPDATE tm_meta SET version = {};",
                    SCHEMA_VERSION,
                    SCHEMA_VERSION + 1
                ))
                .expect("pretend another build migrated it");

            let err = Engine::open(store.location()).expect_err("an unknown migration is refused");
            assert!(
                matches!(&err, TMinusError::Store(StoreError::UnknownMigration { name, .. })
                    if name == "from_another_branch"),
                "{err:?}"
            );
            let out = run_cli(store.location(), &["status"]);
            assert_eq!(out.code, 1, "{out:?}");
            assert!(
                out.stderr.contains("t_minus::store::unknown_migration")
                    && out.stderr.contains("from_another_branch"),
                "{}",
                out.stderr
            );
            let version: i64 = client
                .query_one("SELECT version FROM tm_meta", &[])
                .expect("still readable")
                .get(0);
            assert_eq!(version, SCHEMA_VERSION + 1, "nothing changed");
        },
    );
}

#[test]
#[cfg_attr(not(t_minus_test_pg), ignore = "needs T_MINUS_TEST_PG")]
fn a_version_1_store_is_migrated_to_the_current_schema_keeping_its_events() {
    pg(
        "a_version_1_store_is_migrated_to_the_current_schema_keeping_its_events",
        || {
            let store = TempStore::new("store.db");
            let id = Engine::open(store.location())
                .expect("create")
                .schedule(event(600, &["alice"], 1))
                .expect("schedule")
                .id;
            let mut client = sql(&store);
            // What version 1 had: no per-campaign due index, no groups, no
            // notification tables.
            client
                .batch_execute(&common::stores::downgrade_sql(Backend::Postgres, 1))
                .expect("back to version 1");

            let engine = Engine::open(store.location()).expect("migrate");
            let event = engine.get_event(id).expect("read").expect("kept");
            assert_eq!(event.state, t_minus::EventState::Pending);
            let row = client
                .query_one(
                    "SELECT (SELECT version FROM tm_meta), (SELECT count(*) FROM pg_indexes \
                     WHERE schemaname = current_schema() AND indexname = 'tm_events_campaign_due')",
                    &[],
                )
                .expect("inspect");
            assert_eq!(
                (row.get::<_, i64>(0), row.get::<_, i64>(1)),
                (SCHEMA_VERSION, 1)
            );
        },
    );
}

#[test]
#[cfg_attr(not(t_minus_test_pg), ignore = "needs T_MINUS_TEST_PG")]
fn a_version_2_store_is_migrated_to_quorum_groups_keeping_its_events_and_answers() {
    pg(
        "a_version_2_store_is_migrated_to_quorum_groups_keeping_its_events_and_answers",
        || {
            let store = TempStore::new("store.db");
            let mut engine = Engine::open(store.location()).expect("create");
            let id = engine
                .schedule(event(600, &["alice", "bob"], 2))
                .expect("schedule")
                .id;
            let alice = t_minus::AgentId("alice".into());
            engine.confirm(id, &alice).expect("confirm");
            drop(engine);
            let mut client = sql(&store);
            // What version 2 had: no groups column.
            client
                .batch_execute(&common::stores::downgrade_sql(Backend::Postgres, 2))
                .expect("back to version 2");

            let mut engine = Engine::open(store.location()).expect("migrate");
            let event = engine.get_event(id).expect("read").expect("kept");
            assert_eq!(event.state, t_minus::EventState::Pending);
            assert!(event.groups.is_empty());
            assert_eq!(
                event.response_of(&alice),
                Some(t_minus::ResponseStatus::Confirmed)
            );
            let bob = t_minus::AgentId("bob".into());
            assert_eq!(
                engine.confirm(id, &bob).expect("confirm").state,
                t_minus::EventState::Fired
            );
            let row = client
                .query_one("SELECT version FROM tm_meta", &[])
                .expect("inspect");
            assert_eq!((row.get::<_, i64>(0), SCHEMA_VERSION), (16, 16));
        },
    );
}

/// docs/postgres.md lists every table a store has (for backups and grants).
#[test]
#[cfg_attr(not(t_minus_test_pg), ignore = "needs T_MINUS_TEST_PG")]
fn the_docs_list_every_table() {
    pg("the_docs_list_every_table", || {
        let store = TempStore::new("store.db");
        drop(Engine::open(store.location()).expect("create the store"));
        let mut tables: Vec<String> = sql(&store)
            .query(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = current_schema() ORDER BY 1",
                &[],
            )
            .expect("list the tables")
            .iter()
            .map(|row| row.get(0))
            .collect();
        tables.sort();
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/postgres.md"))
            .expect("read docs/postgres.md");
        let start = doc.find("The tables are ").expect("the table list");
        let sentence =
            &doc[start..start + doc[start..].find(" in the connection").expect("its end")];
        let mut listed: Vec<String> = regex_lite::Regex::new(r"`(tm_[a-z_]+)`")
            .unwrap()
            .captures_iter(sentence)
            .map(|c| c[1].to_string())
            .collect();
        listed.sort();
        assert_eq!(listed, tables, "docs/postgres.md's table list");
    });
}

#[test]
#[cfg_attr(not(t_minus_test_pg), ignore = "needs T_MINUS_TEST_PG")]
fn tables_of_another_application_are_refused() {
    pg("tables_of_another_application_are_refused", || {
        let store = TempStore::new("store.db");
        sql(&store)
            .batch_execute(
                "CREATE TABLE tm_meta (id INTEGER PRIMARY KEY, application TEXT NOT NULL, \
                 version BIGINT NOT NULL); INSERT INTO tm_meta VALUES (1, 'tag-manager', 3)",
            )
            .expect("a foreign table");
        let err = Engine::open(store.location()).expect_err("foreign tm_meta");
        assert!(
            matches!(&err, TMinusError::Store(StoreError::NotAStore { reason, .. }) if reason.contains("tag-manager")),
            "{err:?}"
        );

        let other = TempStore::new("store.db");
        sql(&other)
            .batch_execute("CREATE TABLE tm_events (id TEXT)")
            .expect("a foreign table");
        let err = Engine::open(other.location()).expect_err("tm_events without tm_meta");
        assert!(
            matches!(err, TMinusError::Store(StoreError::NotAStore { .. })),
            "{err:?}"
        );
        let tables: i64 = sql(&other)
            .query_one(
                "SELECT count(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema()",
                &[],
            )
            .expect("count")
            .get(0);
        assert_eq!(tables, 1, "no table was added");
    });
}

#[test]
#[cfg_attr(not(t_minus_test_pg), ignore = "needs T_MINUS_TEST_PG")]
fn eight_hosts_creating_one_store_at_once_all_succeed() {
    pg("eight_hosts_creating_one_store_at_once_all_succeed", || {
        let store = TempStore::new("store.db");
        let location = store.location().to_string();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (location, barrier) = (location.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut engine = Engine::open(&location)?;
                    engine.schedule(event(600, &[&format!("agent-{i}")], 1))?;
                    Ok::<_, TMinusError>(())
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread").expect("open and schedule");
        }
        let row = sql(&store)
            .query_one(
                "SELECT (SELECT count(*) FROM tm_meta), (SELECT max(version) FROM tm_meta), \
                 (SELECT count(*) FROM tm_events)",
                &[],
            )
            .expect("inspect");
        assert_eq!(
            (
                row.get::<_, i64>(0),
                row.get::<_, i64>(1),
                row.get::<_, i64>(2)
            ),
            (1, SCHEMA_VERSION, 8)
        );
    });
}

#[test]
#[cfg_attr(not(t_minus_test_pg), ignore = "needs T_MINUS_TEST_PG")]
fn connection_problems_are_reported_with_what_to_do() {
    pg("connection_problems_are_reported_with_what_to_do", || {
        let store = TempStore::new("store.db");
        let config: postgres::Config = store.location().parse().expect("url");
        let host = match config.get_hosts().first() {
            Some(postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".to_string(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let db = config.get_dbname().unwrap_or("postgres").to_string();
        let cases = [
            // Nothing listens on port 1.
            format!("postgres://postgres@{host}:1/{db}"),
            format!("postgres://t_minus_no_such_role@{host}:{port}/{db}"),
            format!("postgres://postgres@{host}:{port}/t_minus_no_such_db"),
            format!(
                "postgres://postgres@{host}:{port}/{db}?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"
            ),
            "postgres://postgres:s3cret@[::1:5432/x".to_string(),
        ];
        let mut report = String::new();
        for url in &cases {
            let out = run_cli(url, &["status"]);
            assert_eq!(out.code, 1, "{url}: {out:?}");
            assert_eq!(out.stdout, "");
            assert!(!out.stderr.contains("s3cret"), "the password leaked");
            report.push_str(&format!("$ t-minus --db {url} status\n{}\n", out.stderr));
        }
        let mut settings = insta::Settings::clone_current();
        settings.add_filter(&regex_escape(&format!("{host}:{port}")), "[SERVER]");
        settings.add_filter(&regex_escape(&format!("{host}:1/")), "[HOST]:1/");
        settings.add_filter(&format!("/{}\\b", regex_escape(&db)), "/[DB]");
        settings.bind(|| insta::assert_snapshot!(report));
    });
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

#[test]
#[cfg_attr(not(t_minus_test_pg), ignore = "needs T_MINUS_TEST_PG")]
fn a_waiting_store_wakes_on_another_hosts_commit_not_its_own() {
    pg(
        "a_waiting_store_wakes_on_another_hosts_commit_not_its_own",
        || {
            let store = TempStore::new("store.db");
            let mut engine =
                Engine::with_store(Box::new(PgStore::connect(store.location()).expect("open")));
            let v0 = engine.store_mut().data_version().expect("version");
            engine.schedule(event(600, &["a"], 1)).expect("own write");
            assert_eq!(
                engine.store_mut().data_version().expect("version"),
                v0,
                "its own commit is not news"
            );

            let location = store.location().to_string();
            let writer = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                let mut other = Engine::open(&location).expect("open");
                other.schedule(event(600, &["b"], 1)).expect("schedule");
            });
            let start = Instant::now();
            let limit = Duration::from_secs(20);
            while engine.store_mut().data_version().expect("version") == v0 {
                assert!(start.elapsed() < limit, "no notification arrived");
                engine
                    .store_mut()
                    .wait_for_change(limit)
                    .expect("wait for a notification");
            }
            writer.join().expect("writer");
            // It woke on the notification, not at the end of its wait.
            assert!(
                start.elapsed() < limit / 2,
                "woke after {:?}",
                start.elapsed()
            );
        },
    );
}

/// A `run --json` process and its output lines as they come.
struct Runner {
    child: Child,
    lines: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl Runner {
    fn spawn(db: &str) -> Self {
        let mut cmd = cli(db);
        cmd.args(["run", "--json", "--timeout", "60s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn run");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        Runner {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (at most 30 s) for a line that `matches`.
    fn expect(&mut self, what: &str, matches: impl Fn(&Value) -> bool) {
        if !self.saw(Duration::from_secs(30), matches) {
            panic!("run never printed {what}; saw {:?}", self.seen);
        }
    }

    /// Whether a line that `matches` comes within `within` (or came
    /// already).
    fn saw(&mut self, within: Duration, matches: impl Fn(&Value) -> bool) -> bool {
        if self.seen.iter().any(&matches) {
            return true;
        }
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                return false;
            };
            self.seen.push(line.clone());
            if matches(&line) {
                return true;
            }
        }
    }

    /// Waits for the process to end; its exit code and every line it printed.
    fn finish(mut self) -> (i32, Vec<Value>, String) {
        let status = self.child.wait().expect("wait");
        self.seen.extend(self.lines.iter());
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            std::io::Read::read_to_string(&mut e, &mut stderr).ok();
        }
        (status.code().unwrap_or(-1), self.seen, stderr)
    }
}

/// Events confirmed only to learn that runners have taken their starting
/// position: a runner that reports one firing had read where the log ended
/// before it.
fn schedule_sentinels(engine: &mut Engine) -> Vec<String> {
    (0..20)
        .map(|_| {
            let e = engine.schedule(event(60, &["s"], 1)).expect("schedule");
            e.id.to_string()
        })
        .collect()
}

fn is_sentinel(sentinels: &[String], line: &Value) -> bool {
    line["type"] == "transition" && sentinels.iter().any(|s| line["event"] == s.as_str())
}

/// Confirms sentinels one at a time until every runner has reported one,
/// then the rest at once, so that none is left open.
fn wait_until_started(db: &str, runners: &mut [Runner], sentinels: &[String]) {
    let mut left = sentinels.iter();
    let mut ready = false;
    for sentinel in left.by_ref() {
        assert_eq!(run_cli(db, &["confirm", sentinel, "s"]).code, 0);
        if runners
            .iter_mut()
            .all(|r| r.saw(Duration::from_millis(500), |l| is_sentinel(sentinels, l)))
        {
            ready = true;
            break;
        }
    }
    assert!(ready, "the runners never started");
    for sentinel in left {
        assert_eq!(run_cli(db, &["confirm", sentinel, "s"]).code, 0);
    }
}

fn is_transition(line: &Value, event: &str, action: &str) -> bool {
    line["type"] == "transition" && line["event"] == event && line["action"] == action
}

#[test]
#[cfg_attr(not(t_minus_test_pg), ignore = "needs T_MINUS_TEST_PG")]
fn run_reconnects_after_its_connection_is_dropped_and_says_so() {
    let _serial = crate::common::serial();
    pg(
        "run_reconnects_after_its_connection_is_dropped_and_says_so",
        || {
            let store = TempStore::new("store.db");
            let tag = format!("t_minus_drop_{}", std::process::id());
            let db = with_param(store.location(), &format!("application_name={tag}"));
            let mut engine = Engine::open(&db).expect("open");
            let sentinels = schedule_sentinels(&mut engine);
            let first = engine.schedule(event(60, &["alice"], 1)).expect("schedule");
            let second = engine.schedule(event(60, &["bob"], 1)).expect("schedule");
            drop(engine);

            let mut runner = Runner::spawn(&db);
            wait_until_started(&db, std::slice::from_mut(&mut runner), &sentinels);
            let (first, second) = (first.id.to_string(), second.id.to_string());
            assert_eq!(run_cli(&db, &["confirm", &first, "alice"]).code, 0);
            runner.expect("the first fired", |l| is_transition(l, &first, "fired"));

            // The server ends the runner's session, as a failover or a
            // restart would.
            let killed: i64 = sql(&store)
                .query_one(
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE application_name = $1 AND pid <> pg_backend_pid()) AS t",
                    &[&tag],
                )
                .expect("terminate")
                .get(0);
            // The runner's connection and its notification deliverer's.
            assert_eq!(killed, 2, "the runner's connections were found");
            runner.expect("a retry", |l| l["type"] == "store-retry");
            runner.expect("the recovery", |l| l["type"] == "store-recovered");

            assert_eq!(run_cli(&db, &["confirm", &second, "bob"]).code, 0);
            let (code, lines, stderr) = runner.finish();
            assert_eq!(code, 0, "{lines:?}\n{stderr}");
            let fired: Vec<&Value> = lines
                .iter()
                .filter(|l| l["action"] == "fired" && !is_sentinel(&sentinels, l))
                .collect();
            assert_eq!(fired.len(), 2, "{lines:?}");
            let retry = lines
                .iter()
                .find(|l| l["type"] == "store-retry")
                .expect("retry line");
            assert_eq!(retry["attempt"], 1);
            assert!(
                retry["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("cannot reach the PostgreSQL server")),
                "{retry}"
            );
        },
    );
}

/// Three `run` processes (as on three hosts) and 24 answering
/// processes on one server. No answer is lost, every transition is
/// recorded once, and every runner reports each exactly once.
#[test]
#[cfg_attr(not(t_minus_test_pg), ignore = "needs T_MINUS_TEST_PG")]
fn three_runners_and_many_answering_hosts_record_each_transition_once() {
    let _serial = crate::common::serial();
    pg(
        "three_runners_and_many_answering_hosts_record_each_transition_once",
        || {
            let store = TempStore::new("store.db");
            let db = store.location().to_string();
            let mut engine = Engine::open(&db).expect("open");
            let sentinels = schedule_sentinels(&mut engine);
            let answered: Vec<String> = (0..12)
                .map(|_| {
                    let e = engine
                        .schedule(event(30, &["a", "b"], 2))
                        .expect("schedule");
                    e.id.to_string()
                })
                .collect();
            let unanswered: Vec<String> = (0..4)
                .map(|_| {
                    let e = engine
                        .schedule(event(10, &["nobody"], 1))
                        .expect("schedule");
                    e.id.to_string()
                })
                .collect();
            drop(engine);

            let mut runners: Vec<Runner> = (0..3).map(|_| Runner::spawn(&db)).collect();
            wait_until_started(&db, &mut runners, &sentinels);

            let answers: Vec<_> = answered
                .iter()
                .flat_map(|id| ["a", "b"].map(|agent| (id.clone(), agent)))
                .map(|(id, agent)| {
                    let db = db.clone();
                    std::thread::spawn(move || run_cli(&db, &["confirm", &id, agent]))
                })
                .collect();
            for a in answers {
                let out = a.join().expect("answer");
                assert_eq!(out.code, 0, "an answer was refused: {out:?}");
            }

            let mut expected: BTreeMap<String, &str> = BTreeMap::new();
            expected.extend(answered.iter().map(|id| (id.clone(), "fired")));
            expected.extend(unanswered.iter().map(|id| (id.clone(), "missed")));
            for r in runners {
                let (code, lines, stderr) = r.finish();
                assert_eq!(code, 3, "some events missed: {stderr}");
                let mut reported: HashMap<String, Vec<String>> = HashMap::new();
                for l in lines.iter().filter(|l| l["type"] == "transition") {
                    if is_sentinel(&sentinels, l) {
                        continue;
                    }
                    reported
                        .entry(l["event"].as_str().unwrap_or_default().to_string())
                        .or_default()
                        .push(l["action"].as_str().unwrap_or_default().to_string());
                }
                for (id, action) in &expected {
                    assert_eq!(
                        reported.get(id),
                        Some(&vec![action.to_string()]),
                        "event {id} in {lines:?}"
                    );
                }
            }

            let mut client = sql(&store);
            let rows = client
                .query(
                    "SELECT event_id::text, action, count(*) FROM tm_audit \
                     WHERE action IN ('fired', 'missed', 'confirmed') GROUP BY 1, 2",
                    &[],
                )
                .expect("audit");
            let mut outcomes = BTreeMap::new();
            let mut confirmations = 0;
            for row in rows {
                let (id, action, n): (String, String, i64) = (row.get(0), row.get(1), row.get(2));
                if sentinels.contains(&id) {
                    assert_eq!(n, 1, "{action} of sentinel {id} recorded {n} times");
                } else if action == "confirmed" {
                    confirmations += n;
                } else {
                    assert_eq!(n, 1, "{action} of {id} recorded {n} times");
                    outcomes.insert(id, action);
                }
            }
            let expected: BTreeMap<String, String> = expected
                .into_iter()
                .map(|(k, v)| (k, v.to_string()))
                .collect();
            assert_eq!(outcomes, expected);
            assert_eq!(confirmations, 24, "every answer is in the log");
            let unreported: i64 = client
                .query_one("SELECT count(*) FROM tm_audit WHERE unreported", &[])
                .expect("count")
                .get(0);
            assert_eq!(unreported, 0, "every transition was claimed by a tick");
        },
    );
}

/// TLS with libpq's `sslmode` meanings: `prefer` (the default) encrypts when
/// the server offers TLS, `disable` does not, `verify-full` refuses a
/// certificate that does not name the host.
#[test]
#[cfg_attr(not(t_minus_test_pg), ignore = "needs T_MINUS_TEST_PG")]
fn tls_follows_sslmode() {
    pg("tls_follows_sslmode", || {
        let store = TempStore::new("store.db");
        let mut admin = sql(&store);
        let server_has_tls = admin
            .query_one("SHOW ssl", &[])
            .map(|r| r.get::<_, String>(0) == "on")
            .expect("show ssl");
        let encrypted = |admin: &mut postgres::Client, tag: &str| -> bool {
            admin
                .query_one(
                    "SELECT coalesce(bool_or(s.ssl), false) FROM pg_stat_ssl s \
                     JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1",
                    &[&tag],
                )
                .expect("pg_stat_ssl")
                .get(0)
        };
        for (mode, expect_tls) in [("", server_has_tls), ("&sslmode=disable", false)] {
            let tag = format!("t_minus_tls_{}", uuid::Uuid::new_v4().simple());
            let url = with_param(store.location(), &format!("application_name={tag}{mode}"));
            let engine = Engine::open(&url).expect("open");
            assert_eq!(encrypted(&mut admin, &tag), expect_tls, "sslmode {mode:?}");
            drop(engine);
        }
        if server_has_tls {
            let url = with_param(store.location(), "sslmode=require");
            Engine::open(&url).expect("require: encrypted, certificate not checked");
        }

        // The server's certificate names a host, not the address 127.0.0.1.
        let config: postgres::Config = store.location().parse().expect("url");
        let on_loopback_ip = matches!(
            config.get_hosts().first(),
            Some(postgres::config::Host::Tcp(h)) if h == "127.0.0.1"
        );
        let cert: Option<String> = admin
            .query_one("SHOW ssl_cert_file", &[])
            .ok()
            .map(|r| r.get(0));
        if let (true, true, Some(cert)) = (server_has_tls, on_loopback_ip, cert) {
            if std::fs::metadata(&cert).is_ok() {
                let url = with_param(
                    store.location(),
                    &format!("sslmode=verify-full&sslrootcert={cert}"),
                );
                let err = Engine::open(&url).expect_err("the name does not match");
                assert!(
                    matches!(&err, TMinusError::Store(StoreError::Tls { reason, .. }) if reason.contains("127.0.0.1")),
                    "{err:?}"
                );
            }
        }

        let err = Engine::open(&with_param(store.location(), "sslmode=sometimes"))
            .expect_err("unknown sslmode");
        assert!(
            matches!(err, TMinusError::Store(StoreError::Open { .. })),
            "{err:?}"
        );
    });
}

#[test]
#[cfg_attr(not(t_minus_test_pg), ignore = "needs T_MINUS_TEST_PG")]
fn a_writer_holding_one_event_holds_up_answers_to_it_but_not_to_another_event() {
    pg(
        "postgres::a_writer_holding_one_event_holds_up_answers_to_it_but_not_to_another_event",
        || {
            let store = TempStore::new("store.db");
            let mut setup = Engine::open(store.location()).expect("create the store");
            let held = setup.schedule(event(600, &["a", "b"], 2)).unwrap().id;
            let other = setup.schedule(event(600, &["a", "b"], 2)).unwrap().id;
            drop(setup);

            // A write transaction that has loaded `held` (and so locked its
            // row) and stays open.
            let mut holder = PgStore::connect(store.location()).expect("connect");
            let mut tx = t_minus::store::Store::write(&mut holder).expect("begin");
            assert!(tx.event(held).unwrap().is_some());

            // An answer to another event goes through meanwhile.
            let (sent, other_done) = mpsc::channel();
            let location = store.location().to_string();
            std::thread::spawn(move || {
                let mut engine = Engine::open(&location).expect("open");
                sent.send(engine.confirm(other, &AgentId("a".into())).map(|e| e.id))
                    .ok();
            });
            let answered = other_done
                .recv_timeout(Duration::from_secs(20))
                .expect("the answer to the other event does not wait for the holder");
            assert_eq!(answered.expect("accepted"), other);

            // An answer to the held event waits until the holder is done.
            let (sent, held_done) = mpsc::channel();
            let location = store.location().to_string();
            let waiter = std::thread::spawn(move || {
                let mut engine = Engine::open(&location).expect("open");
                let answer = engine.confirm(held, &AgentId("b".into()));
                sent.send(()).ok();
                answer.map(|e| e.confirmed_count())
            });
            assert!(
                held_done.recv_timeout(Duration::from_millis(500)).is_err(),
                "the answer to the held event waited for the holder"
            );
            drop(tx);
            assert_eq!(waiter.join().expect("no panic").expect("accepted"), 1);

            let engine = Engine::open(store.location()).expect("open");
            assert_eq!(engine.verify_log(None).expect("verifies").entries, 4);
            let seqs: Vec<i64> = sql(&store)
                .query("SELECT seq FROM tm_audit ORDER BY seq", &[])
                .expect("read")
                .iter()
                .map(|r| r.get(0))
                .collect();
            assert_eq!(seqs, vec![1, 2, 3, 4]);
        },
    );
}
