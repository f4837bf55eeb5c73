//! Gates in manifests against a store: `requested_by` (the organizer) with
//! `four_eyes`, the `lazy` fire policy, `window` and `breakglass` as plan
//! lines, applied and kept; a change into or out of `lazy` resets answers.
//!
//! Every test runs on SQLite and on PostgreSQL (`store_tests!` at the end).

use crate::common::{self, agent, desired, engine, mins};

use t_minus::plan::PlanOptions;
use t_minus::{Engine, EventState, FirePolicy, ResponseStatus, TMinusError};

fn manifest(fire: &str, extra: &str) -> String {
    format!(
        r#"
campaign: guarded
requested_by: alice
breakglass: [oncall]
events:
  ship:
    at: +2h
    fire: {fire}
    quorum: 2
    attendees: [alice, bob, carol]
{extra}"#
    )
}

fn plan_text(engine: &Engine, text: &str) -> String {
    engine
        .plan(&desired(text), &PlanOptions::default())
        .unwrap()
        .render()
}

fn apply(engine: &mut Engine, text: &str) {
    engine
        .apply_manifests(&desired(text), &PlanOptions::default())
        .unwrap();
}

fn ship(engine: &Engine) -> t_minus::TMinusEvent {
    let id = engine.resolve_event("guarded/ship").unwrap();
    engine.get_event(id).unwrap().unwrap()
}

fn requested_by_is_the_organizer_and_four_eyes_refuses_its_answer() {
    let (mut engine, clock) = engine();
    apply(&mut engine, &manifest("early", "    four_eyes: true\n"));
    let e = ship(&engine);
    assert_eq!(e.organizer, agent("alice"));
    assert!(e.gates.four_eyes);
    assert_eq!(e.gates.breakglass, vec![agent("oncall")]);
    let log = engine.log(e.id).unwrap();
    assert_eq!(log[0].detail["requested_by"], "alice");
    assert_eq!(log[0].detail["breakglass"], serde_json::json!(["oncall"]));
    clock.set(common::at_min(1));
    let err = engine.confirm(e.id, &agent("alice")).unwrap_err();
    assert!(matches!(err, TMinusError::FourEyes { .. }), "{err:?}");
    engine.confirm(e.id, &agent("bob")).unwrap();
    let fired = engine.confirm(e.id, &agent("carol")).unwrap();
    assert_eq!(fired.state, EventState::Fired);
    // The same manifest plans no change.
    assert!(
        plan_text(&engine, &manifest("early", "    four_eyes: true\n")).contains("No changes"),
        "{}",
        plan_text(&engine, &manifest("early", "    four_eyes: true\n"))
    );
}

fn gates_are_plan_lines_and_apply_in_place() {
    let (mut engine, _clock) = engine();
    apply(&mut engine, &manifest("early", ""));
    let changed = manifest(
        "early",
        "    requested_by: dave\n    four_eyes: true\n    window: Mon-Fri 09:00-17:00 Europe/Berlin\n    breakglass: [sre]\n",
    );
    let text = plan_text(&engine, &changed);
    for line in [
        "~ requested_by: alice → dave",
        "~ four_eyes: false → true",
        "~ window: (none) → Mon-Fri 09:00-17:00 Europe/Berlin",
        "~ breakglass: [oncall] → [oncall, sre]",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    apply(&mut engine, &changed);
    let e = ship(&engine);
    assert_eq!(e.organizer, agent("dave"));
    assert!(e.gates.four_eyes);
    assert_eq!(e.gates.windows.len(), 1);
    assert_eq!(e.gates.breakglass, vec![agent("oncall"), agent("sre")]);
    let updated = engine.log(e.id).unwrap();
    let changes = &updated.last().unwrap().detail["changes"];
    assert!(
        changes.to_string().contains("\"field\":\"window\""),
        "{changes}"
    );
    assert!(plan_text(&engine, &changed).contains("No changes"));
}

fn a_change_into_lazy_is_a_plan_line_and_resets_answers() {
    let (mut engine, clock) = engine();
    apply(&mut engine, &manifest("on-time", ""));
    let e = ship(&engine);
    clock.set(common::at_min(1));
    engine.confirm(e.id, &agent("bob")).unwrap();
    engine.decline(e.id, &agent("carol"), None).unwrap();
    engine.defer(e.id, &agent("alice"), mins(5)).unwrap();
    let lazy = manifest("lazy", "");
    let text = plan_text(&engine, &lazy);
    assert!(
        text.contains("~ fire: on-time → lazy  (resets 2 answers)"),
        "{text}"
    );
    apply(&mut engine, &lazy);
    let after = ship(&engine);
    assert_eq!(after.fire_policy, FirePolicy::Lazy);
    assert_eq!(after.state, EventState::Pending, "carol's decline reset");
    assert_eq!(common::response(&after, "bob"), ResponseStatus::Pending);
    assert_eq!(common::response(&after, "carol"), ResponseStatus::Pending);
    assert_eq!(
        common::response(&after, "alice"),
        ResponseStatus::Deferred(mins(5)),
        "a deferral stays"
    );
    let log = engine.log(e.id).unwrap();
    assert_eq!(
        log.last().unwrap().detail["policy_reset"],
        serde_json::json!(["bob", "carol"])
    );
    // Under lazy, one decline now misses it at once.
    clock.set(common::at_min(2));
    let missed = engine.decline(e.id, &agent("bob"), None).unwrap();
    assert_eq!(missed.state, EventState::Missed);
}

common::store_tests!(
    requested_by_is_the_organizer_and_four_eyes_refuses_its_answer,
    gates_are_plan_lines_and_apply_in_place,
    a_change_into_lazy_is_a_plan_line_and_resets_answers,
);
