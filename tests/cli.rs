//! The `t-minus` commands and their output, driven through the binary with
//! the clock pinned (`T_MINUS_NOW`). Human output is snapshotted; JSON is
//! parsed and checked field by field, and snapshotted where it documents
//! the shape.
//!
//! Every test without `#[test]` runs on SQLite and on PostgreSQL
//! (`store_tests!` at the end); the others are about SQLite files or open no
//! store.

use crate::cli_support;

use cli_support::{short, T};
use insta::assert_snapshot;
use serde_json::{json, Value};

/// `(agent, status)` of every attendee of an event's JSON.
fn attendees(event: &Value) -> Vec<(String, String)> {
    event["attendees"]
        .as_array()
        .expect("attendees")
        .iter()
        .map(|a| (str_of(&a["agent"]), str_of(&a["status"])))
        .collect()
}

fn str_of(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(str_of)
        .collect()
}

// ───────────────────────────── schedule ─────────────────────────────

fn schedule_prints_the_event_and_its_countdown() {
    let t = T::new();
    let out = t.ok("schedule review +15m --t-minus 5m --quorum 2 --attendees alice,bob,carol");
    assert_snapshot!("schedule_review", out);
}

fn schedule_with_every_option() {
    let t = T::new();
    let stdout = t.ok(
        "schedule deploy 2025-06-06T17:30:00+02:00 --quorum majority \
         --attendees ops-1,ops-2,ops-3,ops-4 --t-minus 10m --fire on-time --max-defer 1h \
         --payload '{\"version\": \"2.0.0\", \"region\": \"eu-west-1\"}' \
         --organizer release-bot --json",
    );
    let e: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(e["kind"], "deploy");
    assert_eq!(e["state"], "pending");
    assert_eq!(e["scheduled_at"], "2025-06-06T15:30:00Z", "offset → UTC");
    assert_eq!(e["fire_time"], "2025-06-06T15:20:00Z", "at − t-minus");
    assert_eq!(e["t_minus_ms"], 600_000);
    assert_eq!(e["quorum"], 3, "majority of 4 is 3");
    assert_eq!(e["quorum_spec"], "majority");
    assert_eq!(e["fire_policy"], "on-time");
    assert_eq!(e["max_defer_ms"], 3_600_000);
    assert_eq!(e["organizer"], "release-bot");
    assert_eq!(
        e["payload"],
        json!({"version": "2.0.0", "region": "eu-west-1"})
    );
    assert_eq!(
        attendees(&e),
        pairs(&[
            ("ops-1", "pending"),
            ("ops-2", "pending"),
            ("ops-3", "pending"),
            ("ops-4", "pending")
        ])
    );
    assert_snapshot!("event_json", stdout);

    // `status EVENT` shows every detail.
    let id = str_of(&e["id"]);
    assert_snapshot!("event_detail", t.ok(&format!("status {id}")));
}

fn schedule_quorum_spellings() {
    let t = T::new();
    let quorum =
        |args: &str| t.json(&format!("schedule meeting +1h {args} --json"))["quorum"].clone();
    assert_eq!(quorum("--attendees a,b,c"), 3, "default is all");
    assert_eq!(quorum("--quorum all --attendees a,b,c"), 3);
    assert_eq!(
        quorum("--quorum ALL --attendees a,b"),
        2,
        "case-insensitive"
    );
    assert_eq!(quorum("--quorum majority --attendees a,b,c,d"), 3);
    assert_eq!(quorum("--quorum majority --attendees a,b,c,d,e"), 3);
    assert_eq!(quorum("--quorum majority --attendees a"), 1);
    assert_eq!(quorum("--quorum 2 --attendees a,b,c"), 2);
    assert_eq!(quorum("--quorum 3 --attendees a,b,c"), 3);
}

fn schedule_defaults_and_quorum_zero_fires_at_once() {
    let t = T::new();
    let out = t.ok("schedule checkpoint +5m");
    assert_snapshot!("schedule_quorum_zero", out);
    let e = &t.events()[0];
    assert_eq!(e["state"], "fired");
    assert_eq!(e["quorum"], 0);
    assert_eq!(e["quorum_spec"], "all");
    assert_eq!(e["fire_policy"], "early");
    assert_eq!(e["organizer"], "t-minus");
    assert_eq!(e["t_minus_ms"], 0);
    assert_eq!(e["payload"], Value::Null);
    assert_eq!(e["max_defer_ms"], Value::Null);
    // Unknown kinds are kept (as a custom kind), known ones are case-insensitive.
    let custom = t.json("schedule Standup +1h --attendees a --json");
    assert_eq!(custom["kind"], "Standup");
    let known = t.json("schedule REVIEW +1h --attendees a --json");
    assert_eq!(known["kind"], "review");
    // A one-second countdown is fine.
    let soon = t.json("schedule meeting +1s --attendees a --json");
    assert_eq!(soon["fire_time"], "2025-06-06T14:50:01Z");
}

// ───────────────────────────── responses ─────────────────────────────

fn confirm_defer_decline_until_it_fires() {
    let t = T::new();
    let id = t.schedule("review +15m --t-minus 5m --quorum 2 --attendees alice,bob,carol");

    let mut transcript = String::new();
    // Every kind of reference: a 4-digit prefix, 8 digits, the full UUID.
    transcript += &t.ok(&format!("confirm {} alice", &id[..4]));
    transcript += &t.ok(&format!("defer {} bob 5m", short(&id)));
    transcript += &t.ok(&format!("decline {id} carol --reason 'on leave'"));
    assert_snapshot!("responses", transcript);

    let e = t.event(&id);
    assert_eq!(e["state"], "pending");
    assert_eq!(e["confirmed"], 1);
    assert_eq!(
        attendees(&e),
        pairs(&[
            ("alice", "confirmed"),
            ("bob", "deferred"),
            ("carol", "declined")
        ])
    );
    assert_eq!(e["attendees"][1]["deferred_ms"], 300_000);
    assert_eq!(e["deferred_ms"], 300_000);
    assert_eq!(e["scheduled_at"], "2025-06-06T15:10:00Z", "moved by 5m");
    assert_eq!(e["fire_time"], "2025-06-06T15:05:00Z", "moved by 5m");
    assert_snapshot!("responses_status", t.ok(&format!("status {id}")));

    // Deferrals add up.
    t.ok(&format!("defer {id} bob 90s"));
    let e = t.event(&id);
    assert_eq!(e["deferred_ms"], 390_000);
    assert_eq!(e["fire_time"], "2025-06-06T15:06:30Z");

    // Bob changes his mind: the second confirmation reaches quorum, it fires.
    let fired = t.ok(&format!("confirm {id} bob"));
    assert_snapshot!("responses_fired", fired);
    let e = t.event(&id);
    assert_eq!(e["state"], "fired");
    assert_eq!(e["confirmed"], 2);
    assert_eq!(e["finished_at"], "2025-06-06T14:50:00Z");
}

fn declines_that_make_quorum_unreachable_miss_at_once() {
    let t = T::new();
    let id = t.schedule("deploy +1h --quorum 2 --attendees ops-1,ops-2,ops-3");
    let first = t.ok(&format!("decline {id} ops-1"));
    assert_eq!(
        t.event(&id)["state"],
        "pending",
        "2 of 2 remaining can still confirm"
    );
    let second = t.ok(&format!("decline {id} ops-2 --reason 'no capacity'"));
    assert_snapshot!("unreachable_quorum", format!("{first}{second}"));
    let e = t.event(&id);
    assert_eq!(e["state"], "missed");
    assert_eq!(
        attendees(&e),
        pairs(&[
            ("ops-1", "declined"),
            ("ops-2", "declined"),
            ("ops-3", "missed")
        ])
    );
}

fn responses_and_json_output() {
    let t = T::new();
    let id = t.schedule("meeting +1h --quorum all --attendees a,b");
    let e = t.json(&format!("confirm {id} a --json"));
    assert_eq!(e["id"], id.as_str());
    assert_eq!(e["confirmed"], 1);
    let e = t.json(&format!("defer {id} b 10m --json"));
    assert_eq!(e["attendees"][1]["status"], "deferred");
    assert_eq!(e["fire_time"], "2025-06-06T16:00:00Z");
    let e = t.json(&format!("decline {id} a --json"));
    assert_eq!(e["attendees"][0]["status"], "declined");
    assert_eq!(
        e["state"], "missed",
        "quorum all cannot be reached any more"
    );
}

// ───────────────────────────── status ─────────────────────────────

fn status_lists_unfinished_events_soonest_first() {
    let t = T::new();
    assert_snapshot!("status_empty", t.ok("status"));
    // Scheduled out of order; sorted by fire time (review's is 14:55).
    let meeting = t.schedule("meeting +30m --attendees a");
    let deploy = t.schedule("deploy +10m --attendees b");
    let review = t.schedule("review +20m --t-minus 15m --attendees c");
    let done = t.schedule("checkpoint +6m"); // quorum 0: fired at once

    let out = t.ok("status");
    assert_snapshot!("status_soonest_first", out);
    let kinds: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with(' '))
        .map(|l| l.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(kinds, ["review", "deploy", "meeting"]);

    let listed: Vec<String> = match t.json("status --json") {
        Value::Array(list) => list.iter().map(|e| str_of(&e["id"])).collect(),
        other => panic!("{other}"),
    };
    assert_eq!(listed, [review.clone(), deploy.clone(), meeting.clone()]);

    // --all includes finished events.
    let all = t.ids();
    assert_eq!(all.len(), 4);
    assert!(all.contains(&done));
    assert_snapshot!("status_all", t.ok("status --all"));
}

fn status_counts_down_and_shows_due_events() {
    let mut t = T::new();
    t.schedule("review +15m --t-minus 5m --quorum 2 --attendees alice,bob,carol");
    t.schedule("deploy +2h --attendees ops");
    t.set_now("2025-06-06T14:55:28Z");
    let mid = t.ok("status");
    t.set_now("2025-06-06T15:00:00Z");
    let due = t.ok("status");
    assert_snapshot!("status_countdown", format!("{mid}---\n{due}"));
}

// ───────────────────────────── tick ─────────────────────────────

/// One on-time event with its quorum (fires at 15:00), one without (misses at
/// 15:10), one far away.
fn tick_setup(t: &T) -> (String, String, String) {
    let review = t.schedule("review +10m --quorum 1 --attendees alice --fire on-time");
    t.ok(&format!("confirm {review} alice"));
    let meeting = t.schedule("meeting +20m --attendees bob,carol");
    t.ok(&format!("confirm {meeting} bob"));
    let deploy = t.schedule("deploy +1h --attendees dave");
    (review, meeting, deploy)
}

fn tick_reports_each_transition_exactly_once() {
    let mut t = T::new();
    let (review, meeting, deploy) = tick_setup(&t);
    assert_eq!(
        t.event(&review)["state"],
        "pending",
        "on-time waits for 15:00"
    );
    assert_snapshot!("tick_nothing", t.ok("tick"));

    t.set_now("2025-06-06T15:15:00Z");
    let first = t.ok("tick");
    assert_snapshot!("tick_fired_and_missed", first);
    assert!(first.contains(&format!("🚀 Event {review} fired!")));
    assert!(first.contains(&format!("❌ Event {meeting} missed")));
    assert_eq!(
        t.ok("tick"),
        "Nothing changed.\n",
        "reported once, never again"
    );

    assert_eq!(t.event(&review)["state"], "fired");
    assert_eq!(t.event(&review)["finished_at"], "2025-06-06T15:00:00Z");
    let m = t.event(&meeting);
    assert_eq!(m["state"], "missed");
    assert_eq!(m["finished_at"], "2025-06-06T15:10:00Z");
    assert_eq!(
        attendees(&m),
        pairs(&[("bob", "confirmed"), ("carol", "missed")])
    );
    assert_eq!(t.event(&deploy)["state"], "pending");
    assert_snapshot!("tick_status_after", t.ok("status --all"));
}

fn tick_json() {
    let mut t = T::new();
    let (review, meeting, _) = tick_setup(&t);
    t.set_now("2025-06-06T15:15:00Z");
    let stdout = t.ok("tick --json");
    let r: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(strings(&r["fired"]), vec![review.clone()]);
    assert_eq!(strings(&r["missed"]), vec![meeting.clone()]);
    assert_eq!(strings(&r["cancelled"]), Vec::<String>::new());
    assert_eq!(strings(&r["opened"]), Vec::<String>::new());
    let transitions: Vec<(String, String)> = r["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (str_of(&e["event"]), str_of(&e["action"])))
        .collect();
    assert_eq!(
        transitions,
        [
            (review, "fired".to_string()),
            (meeting, "missed".to_string())
        ]
    );
    assert_snapshot!("tick_json", stdout);

    let again = t.json("tick --json");
    assert_eq!(
        again,
        json!({"fired": [], "missed": [], "cancelled": [], "opened": [], "transitions": [], "escalations": [], "notifications": []})
    );
}

// ───────────────────────────── log ─────────────────────────────

fn log_shows_the_audit_trail() {
    let mut t = T::new();
    let id = t.schedule(
        "review +15m --t-minus 5m --quorum 2 --attendees alice,bob,carol --organizer lead",
    );
    t.ok(&format!("confirm {id} alice"));
    t.set_now("2025-06-06T14:52:00Z");
    t.ok(&format!("defer {id} bob 5m"));
    t.ok(&format!("decline {id} carol --reason 'on leave'"));
    t.set_now("2025-06-06T15:30:00Z");
    t.ok("tick");

    assert_snapshot!("log", t.ok(&format!("log {id}")));

    let stdout = t.ok(&format!("log {id} --json"));
    let entries: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    let actions: Vec<String> = entries.iter().map(|e| str_of(&e["action"])).collect();
    assert_eq!(
        actions,
        ["scheduled", "confirmed", "deferred", "declined", "missed"]
    );
    let agents: Vec<Value> = entries.iter().map(|e| e["agent"].clone()).collect();
    assert_eq!(
        agents,
        [
            json!("lead"),
            json!("alice"),
            json!("bob"),
            json!("carol"),
            Value::Null
        ]
    );
    assert_eq!(entries[3]["detail"]["reason"], "on leave");
    // The miss happened at the (deferred) fire time, recorded by the later tick.
    assert_eq!(entries[4]["at"], "2025-06-06T15:05:00Z");
    assert_eq!(entries[4]["recorded_at"], "2025-06-06T15:30:00Z");
    assert!(entries.iter().all(|e| e["event"] == id.as_str()));
    assert_snapshot!("log_json", stdout);
}

// ───────────────────────────── cancel ─────────────────────────────

fn cancel_an_event() {
    let t = T::new();
    let id = t.schedule("deploy +1h --attendees ops");
    let other = t.schedule("review +1h --attendees ops");
    let out = t.ok(&format!("cancel {} --reason 'rolled back'", &id[..6]));
    assert_snapshot!("cancel_event", out);
    assert_eq!(t.event(&id)["state"], "cancelled");
    assert_eq!(t.event(&other)["state"], "pending", "only that one");
    let log = t.json(&format!("log {id} --json"));
    let last = log.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "cancelled");
    assert_eq!(last["detail"]["reason"], "rolled back");
    // It is gone from the default status, kept in --all.
    assert!(!t.ok("status").contains(short(&id)));
    assert!(t.ok("status --all").contains(short(&id)));

    let e = t.json(&format!("cancel {other} --json"));
    assert_eq!(e["state"], "cancelled");
}

// ───────────────────────────── campaigns ─────────────────────────────

/// `release`: checkpoint → review, lint → deploy.
fn release_campaign(t: &T) -> String {
    let mut transcript = String::new();
    for line in [
        "campaign create release",
        "campaign add release checkpoint +10m --attendees ci-bot",
        "campaign add release review +20m --quorum 2 --attendees alice,bob,carol",
        "campaign add release checkpoint +20m --name lint --attendees lint-bot",
        "campaign add release deploy +30m --t-minus 5m --attendees ops-1,ops-2 --quorum majority",
        "campaign link release checkpoint review",
        "campaign link release checkpoint lint",
        "campaign link release review deploy",
        "campaign link release lint deploy",
    ] {
        transcript += &t.ok(line);
    }
    transcript
}

fn campaign_create_add_link_order() {
    let t = T::new();
    assert_snapshot!("campaign_list_empty", t.ok("campaign list"));
    assert_snapshot!("campaign_build", release_campaign(&t));

    assert_eq!(
        t.ok("campaign order release"),
        "checkpoint → review, lint → deploy\n"
    );

    let stdout = t.ok("campaign order release --json");
    let order: Value = serde_json::from_str(&stdout).unwrap();
    let levels: Vec<Vec<String>> = order["levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|level| {
            level
                .as_array()
                .unwrap()
                .iter()
                .map(|e| str_of(&e["name"]))
                .collect()
        })
        .collect();
    assert_eq!(
        levels,
        [vec!["checkpoint"], vec!["review", "lint"], vec!["deploy"]]
    );
    assert_snapshot!("campaign_order_json", stdout);

    assert_snapshot!("campaign_list", t.ok("campaign list"));
    let stdout = t.ok("campaign list --json");
    let list: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], "release");
    assert_eq!(list[0]["state"], "running");
    assert_eq!(list[0]["events"].as_array().unwrap().len(), 4);
    assert_eq!(list[0]["dependencies"].as_array().unwrap().len(), 4);
    assert_eq!(order["campaign"], list[0]["id"]);
    assert_snapshot!("campaign_list_json", stdout);
}

fn campaign_add_with_needs() {
    let t = T::new();
    let mut transcript = String::new();
    for line in [
        "campaign create release",
        "campaign add release checkpoint +10m --attendees ci-bot",
        "campaign add release review +20m --needs checkpoint --quorum 2 --attendees alice,bob,carol",
        "campaign add release checkpoint +20m --name lint --needs release/checkpoint --attendees lint-bot",
        "campaign add release deploy +30m --needs review,lint --t-minus 5m --attendees ops-1",
    ] {
        transcript += &t.ok(line);
    }
    assert_snapshot!("campaign_add_needs", transcript);
    assert_eq!(
        t.ok("campaign order release"),
        "checkpoint → review, lint → deploy\n"
    );
    let deploy = t.json("status release/deploy --json");
    assert_eq!(deploy["state"], "blocked");
    let list = t.json("campaign list --json");
    assert_eq!(list[0]["dependencies"].as_array().unwrap().len(), 4);

    // An id prefix works too.
    let checkpoint = t.json("status release/checkpoint --json");
    let prefix = &str_of(&checkpoint["id"])[..8];
    t.ok(&format!(
        "campaign add release review +25m --name docs --needs {prefix} --attendees writer"
    ));

    // Refusals write nothing.
    let before = t.json("campaign list --json");
    let unknown = t.fail("campaign add release deploy +40m --needs review,nope");
    assert!(unknown.contains("t_minus::refused::link"), "{unknown}");
    assert!(
        unknown.contains("campaign `release` has no such event"),
        "{unknown}"
    );
    assert_snapshot!("campaign_add_needs_unknown", unknown);
    let cycle = t.fail("campaign add release deploy +40m --name again --needs review,again");
    assert!(cycle.contains("t_minus::refused::cycle"), "{cycle}");
    assert!(cycle.contains("again → again"), "{cycle}");
    let empty = t.fail("campaign add release deploy +40m --needs review,,lint");
    assert!(empty.contains("empty entry"), "{empty}");
    t.ok("campaign create other");
    t.ok("campaign add other checkpoint +10m --attendees x");
    let foreign = t.fail("campaign add release deploy +40m --needs other/checkpoint");
    assert!(foreign.contains("it is not in campaign"), "{foreign}");
    let after = t.json("campaign list --json");
    assert_eq!(
        before.as_array().unwrap()[0],
        after
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "release")
            .unwrap()
            .clone(),
        "the refused adds changed nothing"
    );

    // The chain runs: each opens when its needs fired.
    t.ok("confirm release/checkpoint ci-bot");
    t.ok("confirm release/lint lint-bot");
    t.ok("confirm release/review alice");
    t.ok("confirm release/review bob");
    let ticked = t.json("tick --json");
    let opened: Vec<String> = ticked["opened"]
        .as_array()
        .unwrap()
        .iter()
        .map(str_of)
        .collect();
    assert!(opened.contains(&str_of(&deploy["id"])), "{ticked}");
    assert_eq!(t.json("status release/deploy --json")["state"], "pending");
}

fn campaign_add_names_events_after_their_kind() {
    let t = T::new();
    t.ok("campaign create ci");
    let mut out = String::new();
    for _ in 0..3 {
        out += &t.ok("campaign add ci checkpoint +1h --attendees bot");
    }
    out += &t.ok("campaign add ci checkpoint +1h --attendees bot --name smoke");
    assert_snapshot!("campaign_auto_names", out);
    let names: Vec<String> = t.events().iter().map(|e| str_of(&e["name"])).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["checkpoint", "checkpoint-2", "checkpoint-3", "smoke"]
    );
    // `campaign/name` refers to them.
    let e = t.event("ci/checkpoint-2");
    assert_eq!(e["name"], "checkpoint-2");
    assert_eq!(e["campaign"], "ci");
}

fn campaign_status_cascade_and_cancel() {
    let t = T::new();
    release_campaign(&t);
    assert_snapshot!("campaign_status_blocked", t.ok("status release"));

    // The checkpoint fires; review and lint open.
    let fired = t.ok("confirm release/checkpoint ci-bot");
    assert_snapshot!("campaign_checkpoint_fired", fired);
    let s = t.json("status release --json");
    assert_eq!(s["name"], "release");
    assert_eq!(s["state"], "running");
    let states: Vec<(String, String)> = s["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (str_of(&e["name"]), str_of(&e["state"])))
        .collect();
    assert_eq!(
        states,
        pairs(&[
            ("checkpoint", "fired"),
            ("review", "pending"),
            ("lint", "pending"),
            ("deploy", "blocked")
        ])
    );
    assert_snapshot!("campaign_status_running", t.ok("status release"));

    // Cancelling the campaign cancels every unfinished event, keeps the fired one.
    let out = t.ok("cancel release --reason 'release postponed'");
    assert_snapshot!("campaign_cancel", out);
    let list = t.json("campaign list --json");
    assert_eq!(list[0]["state"], "failed");
    let states: Vec<String> = t.json("status release --json")["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| str_of(&e["state"]))
        .collect();
    assert_eq!(states, ["fired", "cancelled", "cancelled", "cancelled"]);
    assert_eq!(
        t.ok("status"),
        "No unfinished events. (`t-minus status --all` shows finished ones.)\n"
    );
}

fn campaign_cancel_json() {
    let t = T::new();
    release_campaign(&t);
    let r = t.json("cancel release --json");
    assert_eq!(r["campaign"], "release");
    assert_eq!(r["cancelled"].as_array().unwrap().len(), 4);
}

fn a_missed_need_cancels_its_dependents_in_the_same_tick() {
    let mut t = T::new();
    release_campaign(&t);
    t.set_now("2025-06-06T15:01:00Z");
    let out = t.ok("tick");
    assert_snapshot!("campaign_missed_need", out);
    let r = t.json("campaign list --json");
    assert_eq!(r[0]["state"], "failed");
    assert_eq!(t.ok("tick"), "Nothing changed.\n");
}

// ───────────────────────────── references ─────────────────────────────

fn references_uuid_prefix_path_and_campaign_name() {
    let t = T::new();
    release_campaign(&t);
    let review = t.event("release/review");
    let id = str_of(&review["id"]);
    assert_eq!(review["name"], "review");
    for reference in [
        id.clone(),
        id.to_uppercase(),
        id[..4].to_string(),
        id[..8].to_string(),
        id[..13].to_string(), // with the first hyphen
        "release/review".to_string(),
    ] {
        assert_eq!(
            t.event(&reference)["id"],
            id.as_str(),
            "reference {reference}"
        );
    }

    let campaign = t.json("campaign list --json")[0].clone();
    let cid = str_of(&campaign["id"]);
    for reference in [cid.clone(), cid[..6].to_string(), "release".to_string()] {
        let s = t.json(&format!("status {reference} --json"));
        assert_eq!(s["id"], cid.as_str(), "reference {reference}");
        assert_eq!(s["events"].as_array().unwrap().len(), 4);
    }
    // Campaign references work for campaign subcommands, too.
    assert_eq!(
        t.ok(&format!("campaign order {}", &cid[..8])),
        "checkpoint → review, lint → deploy\n"
    );
    // Links accept any event reference as well as names.
    t.ok("campaign add release checkpoint +40m --name smoke --attendees qa");
    let smoke = str_of(&t.event("release/smoke")["id"]);
    t.ok(&format!(
        "campaign link release {} {}",
        &id[..8],
        &smoke[..8]
    ));
    t.ok("campaign link release release/deploy smoke");
    assert_eq!(
        t.ok("campaign order release"),
        "checkpoint → review, lint → deploy → smoke\n"
    );
}

// ───────────────────────────── store, colour, clock ─────────────────────────────

#[test]
fn store_from_flag_env_or_default() {
    let t = T::new().without_db_flag();
    let dir = t.dir().to_path_buf();

    // Default: tminus.db in the working directory.
    t.ok("schedule review +1h --attendees a");
    assert!(dir.join("tminus.db").is_file());

    // T_MINUS_DB picks another store.
    let mut cmd = t.command();
    cmd.env("T_MINUS_DB", "from-env.db")
        .args(["schedule", "deploy", "+1h", "--attendees", "a"]);
    assert_eq!(cli_support::output(cmd).code, 0);
    assert!(dir.join("from-env.db").is_file());

    // --db wins over T_MINUS_DB.
    let mut cmd = t.command();
    cmd.env("T_MINUS_DB", "from-env.db").args([
        "--db",
        "from-flag.db",
        "schedule",
        "meeting",
        "+1h",
        "--attendees",
        "a",
    ]);
    assert_eq!(cli_support::output(cmd).code, 0);

    let kinds = |db: &str| -> Vec<String> {
        let out = t.run(&format!("--db {db} status --all --json"));
        assert_eq!(out.code, 0, "{out:?}");
        let list: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
        list.iter().map(|e| str_of(&e["kind"])).collect()
    };
    assert_eq!(kinds("tminus.db"), ["review"]);
    assert_eq!(kinds("from-env.db"), ["deploy"]);
    assert_eq!(kinds("from-flag.db"), ["meeting"]);
    // An absolute path works as well.
    let abs = dir.join("from-flag.db");
    assert_eq!(kinds(abs.to_str().unwrap()), ["meeting"]);
}

fn colour_always_never_and_no_color() {
    let t = T::new();
    t.schedule("review +15m --quorum 1 --attendees alice,bob");
    const ESC: &str = "\x1b[";

    // The harness sets NO_COLOR=1; output is piped, so `auto` is plain anyway.
    assert!(!t.ok("status").contains(ESC));
    assert!(!t.ok("--color never status").contains(ESC));
    assert!(!t.ok("--color auto status").contains(ESC));
    let coloured = t.ok("--color always status");
    assert!(coloured.contains(ESC), "{coloured:?}");
    assert!(
        coloured.contains("\x1b[33mT-15m00s"),
        "countdown in yellow: {coloured:?}"
    );

    // Without NO_COLOR, auto on a pipe is still plain.
    let mut cmd = t.command();
    cmd.env_remove("NO_COLOR").arg("status");
    assert!(!cli_support::output(cmd).stdout.contains(ESC));

    // Diagnostics follow the same choice.
    let plain = t.fail("confirm ffff alice");
    assert!(!plain.contains(ESC));
    let out = t.run("--color always confirm ffff alice");
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains(ESC), "{:?}", out.stderr);
    // JSON is never coloured.
    assert!(!t.ok("--color always status --json").contains(ESC));
}

fn moving_the_clock_makes_events_due() {
    let mut t = T::new();
    let id = t.schedule("review +15m --t-minus 5m --quorum 2 --attendees alice,bob,carol");
    let late = t.schedule("deploy +10m --attendees ops");
    t.ok(&format!("confirm {id} alice"));
    t.set_now("2025-06-06T14:59:59Z");
    t.ok(&format!("confirm {id} bob")); // one second to spare: fires
    assert_eq!(t.event(&id)["state"], "fired");

    t.set_now("2025-06-06T15:00:00Z");
    // The deadline is inclusive: at the fire time itself responses are refused.
    let err = t.fail(&format!("confirm {late} ops"));
    assert!(err.contains("2025-06-06T15:00:00Z"), "{err}");
    // A command that exits 1 has changed nothing: the miss is the tick's to
    // record, and it reports it once.
    let e = t.event(&late);
    assert_eq!(e["state"], "pending");
    let out = t.ok("tick");
    let e = t.event(&late);
    assert_eq!(e["state"], "missed");
    assert_eq!(e["attendees"][0]["status"], "missed");
    assert!(out.contains(&format!("❌ Event {late} missed")), "{out}");
    assert_eq!(t.ok("tick"), "Nothing changed.\n");
}

#[test]
fn help_and_version_exit_zero() {
    let t = T::new();
    let help = t.ok("--help");
    assert!(help.contains("Exit codes: 0 success, 1 error"), "{help}");
    assert!(help.contains("T_MINUS_NOW"));
    for cmd in [
        "schedule", "confirm", "defer", "decline", "cancel", "status", "tick", "log", "campaign",
    ] {
        assert!(help.contains(cmd), "help lists {cmd}");
    }
    let schedule = t.ok("schedule --help");
    assert!(schedule.contains("--quorum <N|all|majority>"), "{schedule}");
    assert!(t.ok("--version").starts_with("t-minus "));
}

// The tests above without `#[test]` run twice, as `sqlite::NAME` and
// `postgres::NAME` (tests/common/stores.rs).
fn groups_schedule_status_confirm_and_json() {
    let t = T::new();
    let scheduled = t.ok(
        "schedule deploy +30m --group ops=2:ops-1,ops-2,ops-3 --group security=1:sec-1,sec-2,ops-1",
    );
    let id = t.ids()[0].clone();
    let first = t.ok(&format!("confirm {id} ops-1"));
    let status = t.ok(&format!("status {id}"));
    assert_snapshot!("groups_status", format!("{scheduled}{first}{status}"));
    let e = t.event(&id);
    assert_eq!(e["state"], "pending", "ops has 1 of 2");
    assert_eq!(e["quorum"], 3);
    assert_eq!(e["confirmed"], 1);
    assert_eq!(
        e["groups"],
        json!([
            {"name": "ops", "quorum_spec": "2", "quorum": 2, "confirmed": 1,
             "members": ["ops-1", "ops-2", "ops-3"]},
            {"name": "security", "quorum_spec": "1", "quorum": 1, "confirmed": 1,
             "members": ["sec-1", "sec-2", "ops-1"]},
        ])
    );
    assert_eq!(e["attendees"][0]["groups"], json!(["ops", "security"]));
    let fired = t.ok(&format!("confirm {id} ops-2"));
    assert!(fired.contains("quorum ops 2/2 · security 1/1"), "{fired}");
    assert_eq!(t.event(&id)["state"], "fired");
}

fn groups_refuse_mixing_and_bad_groups() {
    let t = T::new();
    for line in [
        "schedule deploy +30m --group ops=2:a,b --attendees c",
        "schedule deploy +30m --group ops=2:a,b --quorum 1",
        "schedule deploy +30m --group ops=3:a,b",
        "schedule deploy +30m --group ops",
        "schedule deploy +30m --group 9ops=1:a",
        "schedule deploy +30m --group ops=1:a,a",
    ] {
        let err = t.fail(line);
        assert!(!err.is_empty(), "{line}");
    }
    let out = t.fail("schedule deploy +30m --group ops=3:a,b");
    assert!(
        out.contains("quorum 3 is larger than its 2 member(s)"),
        "{out}"
    );
    assert!(out.contains("t_minus::input::group"), "{out}");
    let out = t.fail("schedule deploy +30m --group ops=2:a,b --attendees c");
    assert!(out.contains("cannot be used with"), "{out}");
    assert!(t.ids().is_empty(), "nothing stored");
}

cli_support::store_tests!(
    campaign_add_with_needs,
    groups_schedule_status_confirm_and_json,
    groups_refuse_mixing_and_bad_groups,
    schedule_prints_the_event_and_its_countdown,
    schedule_with_every_option,
    schedule_quorum_spellings,
    schedule_defaults_and_quorum_zero_fires_at_once,
    confirm_defer_decline_until_it_fires,
    declines_that_make_quorum_unreachable_miss_at_once,
    responses_and_json_output,
    status_lists_unfinished_events_soonest_first,
    status_counts_down_and_shows_due_events,
    tick_reports_each_transition_exactly_once,
    tick_json,
    log_shows_the_audit_trail,
    cancel_an_event,
    campaign_create_add_link_order,
    campaign_add_names_events_after_their_kind,
    campaign_status_cascade_and_cancel,
    campaign_cancel_json,
    a_missed_need_cancels_its_dependents_in_the_same_tick,
    references_uuid_prefix_path_and_campaign_name,
    colour_always_never_and_no_color,
    moving_the_clock_makes_events_due,
);
