//! Several `t-minus` processes on one store at the same moment: nothing is
//! lost and no transition is reported twice. On PostgreSQL this is the
//! shared store of agents on several hosts.
//!
//! Every test runs on SQLite and on PostgreSQL (`store_tests!` at the end).

use crate::cli_support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Barrier};
use std::thread;

use cli_support::{output, Out, T};
use serde_json::Value;

/// Runs `args` in `n` processes started as close together as possible
/// (all threads wait at a barrier, then spawn); returns their outputs.
fn at_once(t: &T, runs: Vec<Vec<String>>, env: &[(&str, &str)]) -> Vec<Out> {
    let barrier = Arc::new(Barrier::new(runs.len()));
    let handles: Vec<_> = runs
        .into_iter()
        .map(|args| {
            let mut cmd = t.command();
            cmd.args(&args);
            for (k, v) in env {
                cmd.env(k, v);
            }
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                output(cmd)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn eight_processes_confirm_eight_attendees_and_none_is_lost() {
    let _serial = crate::common::serial();
    let t = T::new();
    let agents: Vec<String> = (1..=8).map(|i| format!("agent-{i}")).collect();
    // Quorum all, so the event stays open until the last confirmation.
    let id = t.schedule(&format!("meeting +1h --attendees {}", agents.join(",")));

    let outs = at_once(
        &t,
        agents
            .iter()
            .map(|a| vec!["confirm".into(), id.clone(), a.clone()])
            .collect(),
        &[],
    );
    for (agent, out) in agents.iter().zip(&outs) {
        assert_eq!(out.code, 0, "{agent}: {out:?}");
        assert!(
            out.stdout
                .starts_with(&format!("✅ {agent} confirmed meeting")),
            "{agent}: {}",
            out.stdout
        );
    }
    // Exactly one of them saw the quorum complete and the event fire.
    let fired = outs.iter().filter(|o| o.stdout.contains("fired!")).count();
    assert_eq!(fired, 1, "{outs:#?}");

    let e = t.event(&id);
    assert_eq!(e["state"], "fired");
    assert_eq!(e["confirmed"], 8);
    for a in e["attendees"].as_array().unwrap() {
        assert_eq!(a["status"], "confirmed", "{a}");
    }
    // The log has every confirmation once, and one fired entry.
    let log = t.json(&format!("log {id} --json"));
    let mut confirmed: Vec<String> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "confirmed")
        .map(|e| e["agent"].as_str().unwrap().to_string())
        .collect();
    confirmed.sort();
    assert_eq!(confirmed, agents);
    let fired_entries = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "fired")
        .count();
    assert_eq!(fired_entries, 1);
}

fn two_processes_tick_at_once_and_report_each_transition_once() {
    let _serial = crate::common::serial();
    const EVENTS: usize = 200;
    let t = T::new();
    // 200 events due within the next 10 minutes; every third one has its
    // quorum (on-time, so it fires at its fire time), the rest miss.
    let mut expected: HashMap<String, &str> = HashMap::new();
    for i in 0..EVENTS {
        let secs = 60 + i * 3;
        if i % 3 == 0 {
            let id = t.schedule(&format!(
                "review +{secs}s --quorum 1 --attendees alice,bob --fire on-time"
            ));
            t.ok(&format!("confirm {id} alice"));
            expected.insert(id, "fired");
        } else {
            let id = t.schedule(&format!("meeting +{secs}s --attendees alice"));
            expected.insert(id, "missed");
        }
    }

    let later = [("T_MINUS_NOW", "2025-06-06T16:00:00Z")];
    let tick = vec!["tick".to_string(), "--json".to_string()];
    let outs = at_once(&t, vec![tick.clone(), tick], &later);

    let mut reported: HashMap<String, Vec<String>> = HashMap::new();
    for out in &outs {
        assert_eq!(out.code, 0, "{out:?}");
        let r: Value = serde_json::from_str(&out.stdout).unwrap();
        for (kind, list) in [("fired", &r["fired"]), ("missed", &r["missed"])] {
            for id in list.as_array().unwrap() {
                reported
                    .entry(id.as_str().unwrap().to_string())
                    .or_default()
                    .push(kind.to_string());
            }
        }
        // The transitions list agrees with the id lists.
        let n = r["fired"].as_array().unwrap().len() + r["missed"].as_array().unwrap().len();
        assert_eq!(r["transitions"].as_array().unwrap().len(), n);
    }
    let twice: Vec<_> = reported.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(twice.is_empty(), "reported more than once: {twice:?}");
    assert_eq!(reported.len(), EVENTS, "every event reported");
    for (id, kinds) in &reported {
        assert_eq!(kinds[0], expected[id], "event {id}");
    }

    // A third tick has nothing left to report.
    let mut cmd = t.command();
    cmd.env("T_MINUS_NOW", later[0].1).args(["tick", "--json"]);
    let again: Value = serde_json::from_str(&output(cmd).stdout).unwrap();
    assert_eq!(again["transitions"].as_array().unwrap().len(), 0);

    // The store agrees: one final entry per event in its log.
    let events = t.events();
    assert_eq!(events.len(), EVENTS);
    for e in &events {
        let id = e["id"].as_str().unwrap();
        assert_eq!(e["state"], expected[id], "{id}");
    }
    for id in expected.keys().take(40) {
        let log = t.json(&format!("log {id} --json"));
        let finals: Vec<&str> = log
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .filter(|a| *a == "fired" || *a == "missed")
            .collect();
        assert_eq!(finals, [expected[id]], "log of {id}");
    }
    let unique: HashSet<&String> = reported.keys().collect();
    assert_eq!(unique.len(), EVENTS);
}

// The tests above without `#[test]` run twice, as `sqlite::NAME` and
// `postgres::NAME` (tests/common/stores.rs).
cli_support::store_tests!(
    eight_processes_confirm_eight_attendees_and_none_is_lost,
    two_processes_tick_at_once_and_report_each_transition_once,
);
