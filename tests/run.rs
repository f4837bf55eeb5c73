//! Real-time tests of `run` and `wait`: deadlines of a few hundred
//! milliseconds, answers from other processes, exit codes, and the
//! non-terminal output (timestamps masked).
//!
//! Every test runs on SQLite and on PostgreSQL (`store_tests!` at the end).

use crate::cli_support;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cli_support::stores::TempStore;

/// Runs `t-minus --db DB ARGS`, real clock, no colour. DB is an SQLite file
/// path or a PostgreSQL URL.
fn t(db: &str, args: &str) -> Output {
    command(db, args).output().expect("run t-minus")
}

/// `t-minus --db DB ARGS` on the real clock, without colour.
fn command(db: &str, args: &str) -> Command {
    let mut cmd = cli_support::command(db, cli_support::Clock::Real);
    cmd.args(args.split_whitespace());
    cmd
}

/// Starts `t-minus --db DB ARGS` in the background, stdout piped.
fn spawn(db: &str, args: &str) -> std::process::Child {
    command(db, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start t-minus")
}

fn ok(db: &str, args: &str) {
    let out = t(db, args);
    assert!(
        out.status.success(),
        "t-minus {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mask(text: &str) -> String {
    let time = regex_lite::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z").unwrap();
    let short = regex_lite::Regex::new(r"\[[0-9a-f]{8}\]").unwrap();
    short
        .replace_all(&time.replace_all(text, "[TIME]"), "[SHORT]")
        .into_owned()
}

fn run_drives_a_campaign_while_other_processes_answer() {
    let _serial = crate::common::serial();
    let store = TempStore::new("t.db");
    let db = store.location().to_string();
    ok(&db, "campaign create rel");
    ok(&db, "campaign add rel checkpoint +1500ms --attendees ci");
    ok(
        &db,
        "campaign add rel review +3s --quorum 2 --attendees alice,bob,carol",
    );
    ok(&db, "campaign add rel side +3s --attendees writer");
    // `+4s` counts from this command: the deploy's fire time is anchored here.
    let deploy_added = Instant::now();
    ok(&db, "campaign add rel deploy +4s --t-minus 500ms --quorum majority --fire on-time --max-defer 1s --attendees ops-1,ops-2,ops-3");
    ok(&db, "campaign link rel checkpoint review");
    ok(&db, "campaign link rel checkpoint side");
    ok(&db, "campaign link rel review deploy");
    // A run reports transitions recorded after it started. The sentinel fires
    // at +300ms; once its line is out, the runner is watching (whether it
    // started before or after that fire time), and the agents may answer.
    ok(
        &db,
        "campaign add rel gate +300ms --name sentinel --quorum 0 --fire on-time",
    );

    let started = Instant::now();
    let mut runner = spawn(&db, "run --campaign rel --timeout 20s");
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stdout = runner.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let _ = lines_tx.send(line.unwrap());
        }
    });
    let first = lines
        .recv_timeout(Duration::from_secs(10))
        .expect("the sentinel fires");
    assert!(first.contains("fired rel/sentinel"), "{first}");

    // The agents, each a separate process, in a fixed order.
    for answer in [
        "confirm rel/checkpoint ci",
        "defer rel/review bob 200ms",
        "decline rel/side writer",
        "confirm rel/review alice",
        "decline rel/review carol",
        "confirm rel/review bob",
        "defer rel/deploy ops-2 300ms",
        "confirm rel/deploy ops-1",
        "confirm rel/deploy ops-3",
    ] {
        ok(&db, answer);
        std::thread::sleep(Duration::from_millis(60));
    }
    let output = runner.wait_with_output().unwrap();
    reader.join().unwrap();
    let elapsed = started.elapsed();
    let stdout: String = std::iter::once(first)
        .chain(lines.try_iter())
        .map(|l| l + "\n")
        .collect();
    assert_eq!(
        output.status.code(),
        Some(3),
        "side was missed: exit 3\n{stdout}"
    );
    // The deploy fires on time: 4s + 300ms deferral − 500ms countdown after
    // it was added (the setup commands before `started` take longer on a
    // server store, each a connection of its own).
    let since_deploy_added = deploy_added.elapsed();
    assert!(
        since_deploy_added >= Duration::from_millis(3750),
        "{since_deploy_added:?}"
    );
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert!(!stdout.contains('\x1b'), "no control codes off a terminal");
    insta::assert_snapshot!(mask(&stdout), @r"
    [TIME] 🚀 fired rel/sentinel [SHORT] (quorum reached)
    [TIME] 🚀 fired rel/checkpoint [SHORT] (quorum reached)
    [TIME] 🔓 opened rel/review [SHORT] (all needs fired)
    [TIME] 🔓 opened rel/side [SHORT] (all needs fired)
    [TIME] ❌ missed rel/side [SHORT] (quorum unreachable)
    [TIME] 🚀 fired rel/review [SHORT] (quorum reached)
    [TIME] 🔓 opened rel/deploy [SHORT] (all needs fired)
    [TIME] 🚀 fired rel/deploy [SHORT] (quorum reached)
    Run failed: 4 fired, 1 missed, 0 cancelled
    ");
    // Every transition is in the log exactly once.
    let log = t(&db, "log rel/deploy --json");
    let entries: serde_json::Value = serde_json::from_slice(&log.stdout).unwrap();
    let fired = entries
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "fired")
        .count();
    assert_eq!(fired, 1);
}

fn wait_exit_codes_fired_missed_timeout() {
    let _serial = crate::common::serial();
    let store = TempStore::new("t.db");
    let db = store.location().to_string();
    // Fired: confirmed by another process while waiting.
    ok(&db, "campaign create w");
    ok(&db, "campaign add w gate +5s --name go --attendees a");
    let waiter = spawn(&db, "wait w/go --timeout 10s");
    std::thread::sleep(Duration::from_millis(200));
    let confirmed_at = Instant::now();
    ok(&db, "confirm w/go a");
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        confirmed_at.elapsed() < Duration::from_secs(2),
        "noticed promptly"
    );

    // Missed: nobody confirms before the fire time.
    ok(&db, "campaign add w gate +300ms --name late --attendees a");
    let out = t(&db, "wait w/late --timeout 10s");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("missed w/late"));
    // The summary speaks of the event waited for, not of a failed run.
    assert!(stdout.trim_end().ends_with("\nw/late missed"), "{stdout}");
    assert!(!stdout.contains("Run "), "{stdout}");

    // Timeout: the fire time is far away.
    ok(&db, "campaign add w gate +1h --name far --attendees a");
    let before = Instant::now();
    let out = t(&db, "wait w/far --timeout 300ms");
    assert_eq!(out.status.code(), Some(124));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Wait timed out: w/far is not final yet"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(before.elapsed() < Duration::from_secs(3));

    // Cancelled counts as not fired.
    let canceller = std::thread::spawn({
        let db = db.clone();
        move || {
            std::thread::sleep(Duration::from_millis(200));
            ok(&db, "cancel w/far");
        }
    });
    let out = t(&db, "wait w/far --timeout 10s");
    canceller.join().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("w/far was cancelled"));
}

fn run_json_prints_one_object_per_transition_and_a_summary() {
    let _serial = crate::common::serial();
    let store = TempStore::new("t.db");
    let db = store.location().to_string();
    ok(&db, "schedule checkpoint +300ms --quorum 0 --fire on-time");
    let out = t(&db, "run --json --timeout 10s");
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["type"], "transition");
    assert_eq!(lines[0]["action"], "fired");
    assert_eq!(lines[1]["type"], "summary");
    assert_eq!(lines[1]["outcome"], "succeeded");
    assert_eq!(lines[1]["fired"], 1);
}

fn several_runners_on_one_store_all_finish_and_record_each_transition_once() {
    let _serial = crate::common::serial();
    let store = TempStore::new("t.db");
    let db = store.location().to_string();
    ok(&db, "campaign create many");
    for i in 0..20 {
        ok(
            &db,
            &format!(
                "campaign add many checkpoint +{}ms --name e{i} --quorum 0 --fire on-time",
                400 + 20 * i
            ),
        );
    }
    let runners: Vec<_> = (0..3)
        .map(|i| {
            spawn(
                &db,
                if i == 2 {
                    "wait many/e19 --timeout 20s"
                } else {
                    "run --campaign many --json --timeout 20s"
                },
            )
        })
        .collect();
    for runner in runners {
        let out = runner.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let status = t(&db, "status many --json");
    let campaign: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    for event in campaign["events"].as_array().unwrap() {
        assert_eq!(event["state"], "fired");
        let log = t(
            &db,
            &format!("log {} --json", event["id"].as_str().unwrap()),
        );
        let entries: serde_json::Value = serde_json::from_slice(&log.stdout).unwrap();
        let fired = entries
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "fired")
            .count();
        assert_eq!(fired, 1, "one fired entry per event");
    }
}

// The tests above without `#[test]` run twice, as `sqlite::NAME` and
// `postgres::NAME` (tests/common/stores.rs).
cli_support::store_tests!(
    run_drives_a_campaign_while_other_processes_answer,
    wait_exit_codes_fired_missed_timeout,
    run_json_prints_one_object_per_transition_and_a_summary,
    several_runners_on_one_store_all_finish_and_record_each_transition_once,
);
