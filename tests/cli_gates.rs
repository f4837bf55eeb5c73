//! Gates on the command line with the clock pinned (`T_MINUS_NOW`):
//! `schedule --four-eyes --organizer`, `--window`, `--fire lazy`,
//! `--breakglass` and `t-minus breakglass`, as status, log, verify and
//! attest show them; `status EVENT` with delegated answers and the next
//! escalation step.
//!
//! Every test runs on SQLite and on PostgreSQL (`store_tests!` at the end).

use crate::cli_support;

use cli_support::T;

fn four_eyes_refuses_the_organizers_answer() {
    let t = T::new();
    let id = t.schedule(
        "approval +30m --four-eyes --organizer alice --attendees alice,bob,carol --quorum 2",
    );
    let err = t.fail(&format!("confirm {id} alice"));
    assert!(err.contains("t_minus::refused::four_eyes"), "{err}");
    let status = t.ok(&format!("status {id}"));
    assert!(
        status.contains("four eyes: requested by alice; its own answer is refused"),
        "{status}"
    );
    let json = t.json(&format!("status {id} --json"));
    assert_eq!(json["four_eyes"], true);
    assert_eq!(json["organizer"], "alice");
    let err = t.fail("schedule approval +30m --four-eyes --organizer alice --attendees alice,bob");
    assert!(err.contains("t_minus::input::four_eyes"), "{err}");
    assert_eq!(t.events().len(), 1, "nothing stored");
}

fn windows_on_the_command_line() {
    let t = T::new();
    // T_MINUS_NOW is Friday 2025-06-06 14:50 UTC.
    let err = t.fail("schedule deploy +30m --window 'Mon-Fry 09:00-17:00 UTC'");
    assert!(err.contains("t_minus::input::window"), "{err}");
    let err = t.fail("schedule deploy +30m --fire on-time --window 'Mon 09:00-17:00 UTC'");
    assert!(err.contains("t_minus::input::outside_windows"), "{err}");
    let id = t.schedule(
        "deploy 2025-06-10T12:00:00Z --attendees ops-1 --window 'Mon 09:00-10:00 UTC' --window 'Sat 10:00-11:00 Europe/Berlin'",
    );
    let status = t.ok(&format!("status {id}"));
    assert!(
        status.contains("windows:   Mon 09:00-10:00 UTC; Sat 10:00-11:00 Europe/Berlin"),
        "{status}"
    );
    assert!(
        status.contains("may fire:  from 2025-06-07T08:00:00Z (next window opening)"),
        "{status}"
    );
    let out = t.ok(&format!("confirm {id} ops-1"));
    assert!(!out.contains("fired"), "waits for the window: {out}");
}

fn lazy_on_the_command_line() {
    let mut t = T::new();
    let id = t.schedule("release +10m --fire lazy --attendees alice,bob");
    let json = t.json(&format!("status {id} --json"));
    assert_eq!(json["fire_policy"], "lazy");
    t.set_now("2025-06-06T15:01:00Z");
    let out = t.ok("tick");
    assert!(out.contains("no one declined (lazy consensus)"), "{out}");
}

fn breakglass_fires_at_once_and_is_marked_everywhere() {
    let t = T::new();
    let id = t.schedule("deploy +30m --attendees ops-1,ops-2 --breakglass oncall");
    let err = t.fail(&format!("breakglass {id} ops-1 --reason 'not listed'"));
    assert!(err.contains("t_minus::refused::breakglass"), "{err}");
    let err = t.fail(&format!("breakglass {id} oncall"));
    assert!(err.contains("t_minus::input::breakglass_reason"), "{err}");
    let out = t.ok(&format!(
        "breakglass {id} oncall --reason 'sev1: rollback blocked'"
    ));
    assert!(
        out.contains("oncall broke the glass of") && out.contains("sev1: rollback blocked"),
        "{out}"
    );
    let json = t.json(&format!("status {id} --json"));
    assert_eq!(json["state"], "fired");
    assert_eq!(json["broken"]["by"], "oncall");
    assert_eq!(json["broken"]["reason"], "sev1: rollback blocked");
    let status = t.ok(&format!("status {id}"));
    assert!(status.contains("broken by:"), "{status}");
    let log = t.ok(&format!("log {id}"));
    assert!(log.contains("break-glass"), "{log}");
    let verify = t.json("verify --json");
    assert_eq!(verify["breakglass"], 1);
}

fn status_shows_delegated_answers_and_the_next_escalation_step() {
    let mut t = T::new();
    let manifest = t.dir().join("gate.yaml");
    std::fs::write(
        &manifest,
        "campaign: rel\nevents:\n  gate:\n    at: +1h\n    quorum: 2\n    attendees: [alice, bob]\n    escalate:\n      - after: 10m\n        add: [carol]\n      - after: 20m\n        add: [dave, erin]\n",
    )
    .unwrap();
    t.ok(&format!("apply {}", manifest.display()));
    // NOW is 2025-06-06T14:50:00Z: the event opened then.
    let status = t.ok("status rel/gate");
    assert!(
        status.contains("escalates: at 2025-06-06T15:00:00Z: adds carol (step 1 of 2)"),
        "{status}"
    );
    t.ok("delegate alice zoe");
    t.ok("confirm rel/gate zoe --for alice");
    let status = t.ok("status rel/gate");
    assert!(status.contains("\n   zoe for alice confirmed"), "{status}");
    assert!(status.contains("\n   bob pending"), "{status}");

    t.set_now("2025-06-06T15:00:00Z");
    t.ok("tick");
    let status = t.ok("status rel/gate");
    assert!(status.contains("\n   carol pending"), "{status}");
    assert!(
        status.contains("escalates: at 2025-06-06T15:10:00Z: adds dave, erin (step 2 of 2)"),
        "{status}"
    );
    // alice answers herself: her own answer replaces the delegate's.
    t.ok("decline rel/gate alice");
    let status = t.ok("status rel/gate");
    assert!(status.contains("\n   alice declined"), "{status}");
    assert!(!status.contains("zoe for alice"), "{status}");

    // After the last step no escalation is left to show.
    t.set_now("2025-06-06T15:10:00Z");
    t.ok("tick");
    let status = t.ok("status rel/gate");
    assert!(!status.contains("escalates:"), "{status}");
}

/// `tick` reports an escalation step it applied, in text and JSON, and
/// `--json` shows the next step, who answered for whom, and when a windowed
/// event may fire next.
fn tick_reports_escalation_steps_and_json_shows_the_gates() {
    let mut t = T::new();
    std::fs::write(
        t.dir().join("gate.yaml"),
        "campaign: rel\nevents:\n  gate:\n    at: +1h\n    quorum: 2\n    attendees: [alice, bob]\n    escalate:\n      - after: 10m\n        add: [carol]\n      - after: 20m\n        add: [dave, erin]\n",
    )
    .unwrap();
    t.ok("apply gate.yaml");
    let gate = t.json("status rel/gate --json");
    let id = gate["id"].as_str().unwrap().to_string();
    assert_eq!(
        gate["next_escalation"],
        serde_json::json!({"at": "2025-06-06T15:00:00Z", "step": 1, "of": 2, "add": [{"agents": ["carol"]}]})
    );
    assert!(gate.get("may_fire_next").is_none(), "no windows: {gate}");
    t.ok("delegate alice zoe");
    let answered = t.json("confirm rel/gate zoe --for alice --json");
    assert_eq!(answered["attendees"][0]["answered_by"], "zoe", "{answered}");
    let gate = t.json("status rel/gate --json");
    assert_eq!(gate["attendees"][0]["answered_by"], "zoe", "{gate}");
    assert!(gate["attendees"][1].get("answered_by").is_none(), "{gate}");

    // The first step: text.
    t.set_now("2025-06-06T15:00:00Z");
    let out = t.ok("tick");
    assert_eq!(
        out,
        format!("📣 Event {id} escalated (step 1 after 10m: added carol) rel/gate\n")
    );
    // Nothing more to do now.
    assert_eq!(t.ok("tick"), "Nothing changed.\n");
    let gate = t.json("status rel/gate --json");
    assert_eq!(gate["next_escalation"]["step"], 2, "{gate}");
    assert_eq!(
        gate["next_escalation"]["add"][0]["agents"],
        serde_json::json!(["dave", "erin"])
    );
    // The second step: JSON.
    t.set_now("2025-06-06T15:10:00Z");
    let tick = t.json("tick --json");
    assert_eq!(tick["transitions"], serde_json::json!([]), "{tick}");
    let step = &tick["escalations"][0];
    assert_eq!(
        (
            &step["event"],
            &step["action"],
            &step["detail"]["step"],
            &step["detail"]["added"]
        ),
        (
            &serde_json::json!(id),
            &serde_json::json!("escalated"),
            &serde_json::json!(2),
            &serde_json::json!(["dave", "erin"])
        ),
        "{tick}"
    );
    let gate = t.json("status rel/gate --json");
    assert!(gate.get("next_escalation").is_none(), "{gate}");

    // A windowed event: when it may fire next, at the command's clock.
    let deploy =
        t.schedule("deploy 2025-06-10T12:00:00Z --attendees ops-1 --window 'Mon 09:00-10:00 UTC'");
    let json = t.json(&format!("status {deploy} --json"));
    assert_eq!(json["may_fire_next"], "2025-06-09T09:00:00Z", "{json}");
    t.set_now("2025-06-09T09:30:00Z");
    let json = t.json(&format!("status {deploy} --json"));
    assert_eq!(
        json["may_fire_next"], "2025-06-09T09:30:00Z",
        "inside a window: {json}"
    );
}

/// examples/guarded-release.yaml on a pinned clock, as docs/semantics.md's
/// "Gates together" runs it on SQLite: each gate in turn, then `verify`.
fn the_guarded_release_example_exercises_every_gate() {
    let mut t = T::new();
    let manifest = t.dir().join("guarded-release.yaml");
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/guarded-release.yaml"),
        &manifest,
    )
    .unwrap();
    // Monday 06:00 in Berlin, before business hours.
    t.set_now("2025-06-09T04:00:00Z");
    let out = t.ok(&format!("apply {}", manifest.display()));
    assert!(out.contains("escalate 15m: carol"), "{out}");
    // Lazy consensus: no one declined, the changelog fires at its fire time.
    t.set_now("2025-06-09T04:25:00Z");
    let out = t.ok("tick");
    assert!(
        out.contains("fired! (no one declined (lazy consensus)) guarded-release/changelog"),
        "{out}"
    );
    assert!(
        out.contains("opened (all needs fired) guarded-release/review"),
        "{out}"
    );
    // Four eyes, then a delegated answer.
    t.set_now("2025-06-09T04:30:00Z");
    let err = t.fail("confirm guarded-release/review release-bot");
    assert!(err.contains("t_minus::refused::four_eyes"), "{err}");
    let err = t.fail("confirm guarded-release/review dave --for alice");
    assert!(err.contains("t_minus::refused::no_delegation"), "{err}");
    t.ok("delegate alice dave --campaign guarded-release --until +8h");
    let out = t.ok("confirm guarded-release/review dave --for alice");
    assert!(out.contains("dave for alice confirmed"), "{out}");
    let err = t.fail("confirm guarded-release/review carol");
    assert!(err.contains("t_minus::refused::not_attendee"), "{err}");
    // The escalation step applies on the tick at 04:40; carol completes it.
    t.set_now("2025-06-09T04:40:00Z");
    t.ok("tick");
    let review = t.json("status guarded-release/review --json");
    let names: Vec<&str> = review["attendees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["agent"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["release-bot", "alice", "bob", "carol"]);
    let out = t.ok("confirm guarded-release/review carol");
    assert!(out.contains("fired! (quorum reached)"), "{out}");
    // The deploy has its quorum outside the window: it waits.
    t.set_now("2025-06-09T04:45:00Z");
    t.ok("confirm guarded-release/deploy ops-1");
    let out = t.ok("confirm guarded-release/deploy ops-2");
    assert!(!out.contains("fired"), "{out}");
    t.set_now("2025-06-09T06:10:00Z");
    t.ok("tick");
    let deploy = t.json("status guarded-release/deploy --json");
    assert_eq!(deploy["state"], "pending", "waits for 07:00 UTC");
    // Break-glass fires it at once.
    let out =
        t.ok("breakglass guarded-release/deploy oncall-lead --reason 'sev1: the fix cannot wait'");
    assert!(out.contains("fired! (break-glass)"), "{out}");
    let deploy = t.json("status guarded-release/deploy --json");
    assert_eq!(deploy["state"], "fired");
    assert_eq!(deploy["finished_at"], "2025-06-09T06:10:00Z");
    let log = t.ok("log guarded-release/review");
    assert!(log.contains("confirmed  by dave for alice"), "{log}");
    assert!(
        log.contains("escalated  step=1 after=15m added=[\"carol\"]"),
        "{log}"
    );
    let verify = t.json("verify --json");
    assert_eq!(verify["intact"], true, "{verify}");
    assert_eq!(verify["breakglass"], 1, "{verify}");
    // The same manifest plans no change: carol is no drift.
    let plan = t.ok(&format!("plan {}", manifest.display()));
    assert!(plan.contains("No changes"), "{plan}");
}

crate::common::store_tests!(
    tick_reports_escalation_steps_and_json_shows_the_gates,
    four_eyes_refuses_the_organizers_answer,
    windows_on_the_command_line,
    lazy_on_the_command_line,
    breakglass_fires_at_once_and_is_marked_everywhere,
    status_shows_delegated_answers_and_the_next_escalation_step,
    the_guarded_release_example_exercises_every_gate,
);
