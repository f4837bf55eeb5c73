//! Exactly once (issue 5, acceptance 2): four `t-minus tick --json`
//! processes race over 1,000 events that fall due over twelve clock steps.
//! Every transition (fired, missed, opened, cancelled) appears exactly once
//! across all their outputs and exactly once in the audit log, with the
//! logical time the reference model computes, whichever process recorded it.
//!
//! Runs on SQLite (four processes on one file) and on PostgreSQL (four
//! processes on one server, as if on four hosts; issue 7, acceptance 2):
//! `store_tests!` at the end.

use crate::common;
use crate::model;

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::thread;

use chrono::Duration;
use serde_json::Value;
use t_minus::time_spec::format_time;
use t_minus::{FixedClock, NewEvent, Quorum, TMinusEvent};
use uuid::Uuid;

use common::{agent, at_min, on_time, open_engine, spec, store, t0};
use model::{Model, Spec, Tr};

/// The same counts on both stores: the test takes ~4–5 s on PostgreSQL,
/// ~1 s on SQLite.
const TICKERS: usize = 4;
const STEPS: i64 = 12;

/// The binary on the store at `db`, its clock pinned at `now`.
fn cli(db: &str, now: &str) -> Command {
    crate::cli_support::command(db, crate::cli_support::Clock::Pinned(now))
}

/// What one `tick --json` process did.
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn output(mut cmd: Command) -> Out {
    let out = cmd.output().expect("run t-minus");
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The model's view of a new event.
fn model_spec(e: &TMinusEvent) -> Spec {
    Spec {
        attendees: e.attendees.iter().map(|(a, _)| a.0.clone()).collect(),
        quorum: e.quorum,
        on_time: e.fire_policy == t_minus::FirePolicy::OnTime,
        fire: e.fire_time().timestamp_millis(),
        max_defer: e.max_defer.map(|d| d.num_milliseconds()),
    }
}

/// `spec`/`on_time` with the fire time `secs` seconds after t0.
fn at_secs(mut new: NewEvent, secs: i64) -> NewEvent {
    new.at = t0() + Duration::seconds(secs);
    new
}

fn four_tickers_over_1000_due_events_report_each_transition_exactly_once() {
    let _serial = crate::common::serial();
    let (_store, db) = store();
    let clock = FixedClock::new(t0());
    let mut engine = open_engine(&db, &clock);
    let mut model = Model::new();
    let now = t0().timestamp_millis();
    let mut ids: Vec<Uuid> = Vec::new();
    let add = |engine: &mut t_minus::Engine,
               model: &mut Model,
               ids: &mut Vec<Uuid>,
               new: NewEvent,
               campaign: Option<(Uuid, usize)>| {
        let e = match campaign {
            Some((c, _)) => engine.campaign_add(c, new, None).unwrap(),
            None => engine.schedule(new).unwrap(),
        };
        let i = model
            .schedule(now, &model_spec(&e), campaign.map(|(_, m)| m))
            .unwrap();
        assert_eq!(i, ids.len());
        ids.push(e.id);
        i
    };

    // 700 standalone events due between +1m and +11m: on-time with quorum
    // (fire), quorum all unanswered (miss), and timers (quorum 0).
    let mut confirm = Vec::new();
    for k in 0..700i64 {
        let secs = 60 + (k * 7) % 600;
        let new = match k % 3 {
            0 => at_secs(on_time(0, &["a", "b"], Quorum::Count(1)), secs),
            1 => at_secs(spec(0, &["a", "b"], Quorum::All), secs),
            _ => at_secs(on_time(0, &[], Quorum::Count(0)), secs),
        };
        let i = add(&mut engine, &mut model, &mut ids, new, None);
        if k % 3 == 0 {
            confirm.push(i);
        }
    }
    // 100 chains x → y → z (300 events): half start with a timer (y opens,
    // fires on time, z opens and misses), half with a miss (y and z are
    // cancelled).
    for k in 0..100i64 {
        let c = engine.create_campaign(format!("chain-{k}")).unwrap().id;
        let mc = model.create_campaign();
        let base = 60 + (k * 13) % 300;
        let first = if k % 2 == 0 {
            at_secs(on_time(0, &[], Quorum::Count(0)), base)
        } else {
            at_secs(spec(0, &["x"], Quorum::All), base)
        };
        let x = add(&mut engine, &mut model, &mut ids, first, Some((c, mc)));
        let y = add(
            &mut engine,
            &mut model,
            &mut ids,
            at_secs(on_time(0, &[], Quorum::Count(0)), base + 120),
            Some((c, mc)),
        );
        let z = add(
            &mut engine,
            &mut model,
            &mut ids,
            at_secs(spec(0, &["z"], Quorum::All), base + 240),
            Some((c, mc)),
        );
        for (from, to) in [(x, y), (y, z)] {
            engine.campaign_link(c, ids[from], ids[to]).unwrap();
            model.link(now, mc, from, to).unwrap();
        }
    }
    assert_eq!(ids.len(), 1000);
    clock.set(at_min(0) + Duration::seconds(30));
    for i in confirm {
        engine.confirm(ids[i], &agent("a")).unwrap();
        model
            .respond(now + 30_000, i, "a", model::Answer::Confirm)
            .unwrap();
    }
    drop(engine);

    // Four processes, each ticking at +1m, +2m, … +12m; all four start each
    // step together.
    let barrier = Arc::new(Barrier::new(TICKERS));
    let handles: Vec<_> = (0..TICKERS)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            let commands: Vec<_> = (1..=STEPS)
                .map(|step| {
                    let mut cmd = cli(&db, &format_time(at_min(step)));
                    cmd.args(["tick", "--json"]);
                    cmd
                })
                .collect();
            thread::spawn(move || {
                commands
                    .into_iter()
                    .map(|cmd| {
                        barrier.wait();
                        output(cmd)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let outs: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("ticker thread"))
        .collect();
    model.tick(at_min(STEPS).timestamp_millis());

    // Every transition in the outputs, by audit seq.
    let mut reported: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
    let mut busy_outputs = 0;
    for out in &outs {
        assert_eq!(
            out.code,
            Some(0),
            "tick failed\nstdout:\n{}\nstderr:\n{}",
            out.stdout,
            out.stderr
        );
        let r: Value = serde_json::from_str(&out.stdout).expect("tick --json");
        let transitions = r["transitions"].as_array().unwrap();
        let listed: usize = ["fired", "missed", "cancelled", "opened"]
            .iter()
            .map(|k| r[k].as_array().unwrap().len())
            .sum();
        assert_eq!(listed, transitions.len(), "id lists agree with transitions");
        if !transitions.is_empty() {
            busy_outputs += 1;
        }
        for tr in transitions {
            reported
                .entry(tr["seq"].as_i64().unwrap())
                .or_default()
                .push(tr.clone());
        }
    }
    let twice: Vec<_> = reported.values().filter(|v| v.len() > 1).collect();
    assert!(twice.is_empty(), "reported more than once: {twice:#?}");
    assert!(
        busy_outputs >= 10,
        "transitions spread over the steps: {busy_outputs}"
    );

    // The expected transitions (event, action, time), from the model.
    let mut expected: HashMap<(Uuid, &str, String), usize> = HashMap::new();
    for (i, e) in model.events.iter().enumerate() {
        assert!(e.state.is_final(), "model: #{i} final at +12m");
        for (tr, at) in &e.log {
            let at = chrono::DateTime::from_timestamp_millis(*at).unwrap();
            *expected
                .entry((ids[i], tr.word(), format_time(at)))
                .or_default() += 1;
        }
    }
    let mut got: HashMap<(Uuid, &str, String), usize> = HashMap::new();
    for v in reported.values() {
        let tr = &v[0];
        let action = match tr["action"].as_str().unwrap() {
            "fired" => Tr::Fired.word(),
            "missed" => Tr::Missed.word(),
            "cancelled" => Tr::Cancelled.word(),
            "opened" => Tr::Opened.word(),
            other => panic!("not a transition: {other}"),
        };
        let id: Uuid = tr["event"].as_str().unwrap().parse().unwrap();
        *got.entry((id, action, tr["at"].as_str().unwrap().to_string()))
            .or_default() += 1;
    }
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected, "reported transitions = the model's");

    // The log holds each transition once, and each is one that was reported.
    let clock = FixedClock::new(at_min(STEPS));
    let mut engine = open_engine(&db, &clock);
    let mut logged = 0;
    for (i, id) in ids.iter().enumerate() {
        let event = engine.get_event(*id).unwrap().unwrap();
        assert_eq!(
            event.state.to_string(),
            model.events[i].state.word(),
            "#{i}"
        );
        for entry in engine.log(*id).unwrap() {
            if entry.action.is_transition() {
                logged += 1;
                assert!(reported.contains_key(&entry.seq), "{entry:?} not reported");
            }
        }
    }
    assert_eq!(logged, reported.len());
    assert!(engine.tick(at_min(STEPS)).unwrap().is_empty());
}

common::store_tests!(four_tickers_over_1000_due_events_report_each_transition_exactly_once);
