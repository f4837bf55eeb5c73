//! Escalation: steps due after the event opened add attendees (or group
//! members) who may answer from then on; while steps are still to come an
//! event is not missed for an unreachable quorum the added agents could
//! still reach; after the last step the usual rule applies. Steps are
//! checked when the event is made.
//!
//! Every test runs on SQLite and on PostgreSQL (`store_tests!` at the end),
//! with a pinned clock.

use miette::Diagnostic;
use t_minus::escalation::{EscalationAdd, EscalationStep};
use t_minus::{
    AuditAction, EventState, NewEvent, Quorum, QuorumGroup, ResponseStatus, TMinusError,
};

use crate::common::*;

fn step(after_min: i64, add: &[&str]) -> EscalationStep {
    EscalationStep {
        after: mins(after_min),
        add: vec![EscalationAdd {
            group: None,
            agents: agents(add),
        }],
    }
}

fn group_step(after_min: i64, group: &str, add: &[&str]) -> EscalationStep {
    let mut step = step(after_min, add);
    step.add[0].group = Some(group.into());
    step
}

/// An event at minute 60 for `attendees` with `quorum`, escalated to carol
/// at minute 10 and dave at minute 20.
fn carol_then_dave(attendees: &[&str], quorum: Quorum) -> NewEvent {
    NewEvent {
        escalate: vec![step(10, &["carol"]), step(20, &["dave"])],
        ..spec(60, attendees, quorum)
    }
}

fn names(event: &t_minus::TMinusEvent) -> Vec<String> {
    event
        .attendees
        .iter()
        .map(|(a, _)| a.as_str().to_string())
        .collect()
}

fn a_due_step_adds_attendees_who_may_answer_from_then_on() {
    let (mut engine, clock) = engine();
    let e = engine
        .schedule(carol_then_dave(&["alice", "bob"], Quorum::Count(2)))
        .unwrap();
    // Before the step carol is no attendee.
    let err = engine.confirm(e.id, &agent("carol")).unwrap_err();
    assert!(matches!(err, TMinusError::NotAnAttendee { .. }), "{err:?}");

    // The tick at minute 10 applies the first step, and only it.
    let tick = engine.tick(at_min(10)).unwrap();
    assert!(tick.fired.is_empty() && tick.missed.is_empty(), "{tick:?}");
    clock.set(at_min(10));
    let event = get(&engine, e.id);
    assert_eq!(names(&event), ["alice", "bob", "carol"]);
    assert_eq!(event.escalation.applied, 1);
    let log = engine.log(e.id).unwrap();
    let last = log.last().unwrap();
    assert_eq!(last.action, AuditAction::Escalated);
    assert_eq!(last.at, at_min(10));
    assert_eq!(last.detail["added"], serde_json::json!(["carol"]));
    assert_eq!(last.detail["step"], 1);

    // carol answers; with alice the quorum of 2 is met and it fires.
    engine.confirm(e.id, &agent("carol")).unwrap();
    let fired = engine.confirm(e.id, &agent("alice")).unwrap();
    assert_eq!(fired.state, EventState::Fired);
    // A final event applies no more steps.
    engine.tick(at_min(30)).unwrap();
    assert_eq!(names(&get(&engine, e.id)), ["alice", "bob", "carol"]);
    engine.verify_log(None).unwrap();
}

fn a_late_settlement_applies_every_due_step_at_its_own_time() {
    let (mut engine, clock) = engine();
    let e = engine
        .schedule(carol_then_dave(&["alice"], Quorum::All))
        .unwrap();
    // No tick ran; an answer at minute 25 settles the event first.
    clock.set(at_min(25));
    let err = engine.confirm(e.id, &agent("erin")).unwrap_err();
    assert!(matches!(err, TMinusError::NotAnAttendee { .. }));
    let updated = engine.confirm(e.id, &agent("dave")).unwrap();
    assert_eq!(names(&updated), ["alice", "carol", "dave"]);
    let times: Vec<_> = engine
        .log(e.id)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == AuditAction::Escalated)
        .map(|e| (e.at, e.recorded_at))
        .collect();
    assert_eq!(times, [(at_min(10), at_min(25)), (at_min(20), at_min(25))]);
    // `all` is the count fixed when the event was made (1): dave's confirm
    // meets it.
    assert_eq!(updated.state, EventState::Fired);
}

fn an_unreachable_quorum_waits_for_the_steps_to_come_then_the_usual_rule_applies() {
    let (mut engine, clock) = engine();
    let e = engine
        .schedule(carol_then_dave(&["alice", "bob"], Quorum::Count(2)))
        .unwrap();
    // Both decline: without escalation the event would be missed now.
    engine.decline(e.id, &agent("alice"), None).unwrap();
    let after = engine.decline(e.id, &agent("bob"), None).unwrap();
    assert_eq!(after.state, EventState::Pending, "carol and dave may come");
    // carol joins and declines: dave alone cannot make 2.
    engine.tick(at_min(10)).unwrap();
    clock.set(at_min(12));
    let missed = engine.decline(e.id, &agent("carol"), None).unwrap();
    assert_eq!(missed.state, EventState::Missed);
    assert_eq!(missed.finished_at, Some(at_min(12)));
    let reason = engine.log(e.id).unwrap().last().unwrap().detail["reason"].clone();
    assert_eq!(reason, "quorum unreachable");
}

fn after_the_last_step_the_usual_rule_applies() {
    let (mut engine, clock) = engine();
    let e = engine
        .schedule(NewEvent {
            escalate: vec![step(10, &["carol"])],
            ..spec(60, &["alice", "bob"], Quorum::Count(2))
        })
        .unwrap();
    engine.decline(e.id, &agent("alice"), None).unwrap();
    assert_eq!(state(&engine, e.id), EventState::Pending, "carol may come");
    let tick = engine.tick(at_min(10)).unwrap();
    assert!(tick.missed.is_empty(), "{tick:?}");
    // No step is left: bob's decline makes 2 unreachable, missed at once.
    clock.set(at_min(15));
    let missed = engine.decline(e.id, &agent("bob"), None).unwrap();
    assert_eq!(missed.state, EventState::Missed);
    assert_eq!(missed.finished_at, Some(at_min(15)));
    assert_eq!(response(&missed, "carol"), ResponseStatus::Missed);
}

fn a_step_due_after_the_fire_time_never_applies_and_groups_gain_members() {
    let (mut engine, clock) = engine();
    let e = engine
        .schedule(NewEvent {
            groups: vec![
                QuorumGroup::new("ops", Quorum::Count(1), agents(&["alice"])),
                QuorumGroup::new("sec", Quorum::Count(1), agents(&["bob"])),
            ],
            escalate: vec![group_step(5, "sec", &["carol"])],
            ..spec(30, &[], Quorum::All)
        })
        .unwrap();
    engine.decline(e.id, &agent("bob"), None).unwrap();
    assert_eq!(state(&engine, e.id), EventState::Pending);
    clock.set(at_min(6));
    engine.confirm(e.id, &agent("alice")).unwrap();
    let fired = engine.confirm(e.id, &agent("carol")).unwrap();
    assert_eq!(fired.state, EventState::Fired);
    let sec = fired.groups.iter().find(|g| g.name == "sec").unwrap();
    assert_eq!(sec.members, agents(&["bob", "carol"]));
    // Reloaded from the store, the groups keep the added member.
    let stored = get(&engine, e.id);
    assert_eq!(stored.groups, fired.groups);
    engine.verify_log(None).unwrap();
}

fn bad_steps_are_refused_when_the_event_is_made() {
    let (mut engine, _clock) = engine();
    let cases = [
        (vec![step(30, &["carol"])], "due at or after the fire time"),
        (vec![step(40, &["carol"])], "due at or after the fire time"),
        (vec![step(5, &["alice"])], "alice is already an attendee"),
        (
            vec![step(5, &["carol"]), step(5, &["dave"])],
            "not after the step before it",
        ),
        (
            vec![step(5, &["carol"]), step(10, &["carol"])],
            "carol is added twice",
        ),
        (vec![step(5, &[])], "adds nobody"),
        (vec![group_step(5, "ops", &["carol"])], "has no groups"),
    ];
    for (steps, why) in cases {
        let err = engine
            .schedule(NewEvent {
                escalate: steps,
                ..spec(30, &["alice"], Quorum::All)
            })
            .unwrap_err();
        let code = err.code().map(|c| c.to_string()).unwrap_or_default();
        assert_eq!(code, "t_minus::input::escalation", "{err}");
        assert!(err.to_string().contains(why), "{err}");
    }
    assert!(engine.list_events().unwrap().is_empty());
}

const MANIFEST: &str = r#"
campaign: release
events:
  review:
    kind: review
    at: +1h
    quorum: 2
    attendees: [alice, bob]
    escalate:
      - after: 10m
        add: [carol]
      - after: 20m
        add: [dave]
"#;

fn escalation_in_a_manifest_is_applied_and_is_no_drift() {
    let (mut engine, clock) = engine();
    let options = t_minus::plan::PlanOptions::default();
    engine
        .apply_manifests(&desired(MANIFEST), &options)
        .unwrap();
    let id = engine.resolve_event("release/review").unwrap();
    engine.tick(at_min(15)).unwrap();
    clock.set(at_min(15));
    assert_eq!(names(&get(&engine, id)), ["alice", "bob", "carol"]);
    // carol answered; the same manifest plans no change, and applying it
    // keeps carol and her answer.
    engine.confirm(id, &agent("carol")).unwrap();
    let again = engine.plan(&desired(MANIFEST), &options).unwrap();
    assert!(again.is_empty(), "{again:?}");
    engine
        .apply_manifests(&desired(MANIFEST), &options)
        .unwrap();
    let event = get(&engine, id);
    assert_eq!(names(&event), ["alice", "bob", "carol"]);
    assert_eq!(response(&event, "carol"), ResponseStatus::Confirmed);
    assert_eq!(event.escalation.applied, 1);

    // A change of the steps is a plan line; steps already applied that
    // stay unchanged keep their agents.
    let changed = MANIFEST.replace("add: [dave]", "add: [erin]");
    let plan = engine.plan(&desired(&changed), &options).unwrap();
    let text = plan.render();
    assert!(
        text.contains("~ escalate: 10m: carol; 20m: dave → 10m: carol; 20m: erin"),
        "{text}"
    );
    engine
        .apply_manifests(&desired(&changed), &options)
        .unwrap();
    engine.tick(at_min(25)).unwrap();
    assert_eq!(names(&get(&engine, id)), ["alice", "bob", "carol", "erin"]);
    assert!(engine
        .plan(&desired(&changed), &options)
        .unwrap()
        .is_empty());
    engine.verify_log(None).unwrap();
}

fn an_applied_step_notifies_the_rules_on_escalated_with_the_added_agents() {
    use t_minus::notification::{payload, Hook, NotifyRule, Trigger};
    let (mut engine, clock) = engine();
    let hook = || Hook::Exec {
        argv: vec!["/bin/true".into()],
    };
    let e = engine
        .schedule(NewEvent {
            escalate: vec![step(10, &["carol"]), step(20, &["dave", "erin"])],
            notify: vec![
                NotifyRule::new(vec![Trigger::Escalated], hook()),
                NotifyRule::new(vec![Trigger::Fired], hook()),
            ],
            ..spec(60, &["alice", "bob"], Quorum::Count(2))
        })
        .unwrap();
    engine.tick(at_min(9)).unwrap();
    assert!(engine.deliveries(e.id).unwrap().is_empty());

    engine.tick(at_min(10)).unwrap();
    clock.set(at_min(10));
    let deliveries = engine.deliveries(e.id).unwrap();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    let d = &deliveries[0];
    assert_eq!(d.on, Trigger::Escalated);
    assert_eq!(d.rule.on, vec![Trigger::Escalated]);
    assert_eq!(d.payload["on"], "escalated");
    assert_eq!(d.payload["at"], t_minus::time_spec::format_time(at_min(10)));
    assert_eq!(d.payload["detail"]["added"], serde_json::json!(["carol"]));
    assert_eq!(d.payload["detail"]["step"], 1);
    let attendees: Vec<&str> = d.payload["event"]["attendees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["agent"].as_str().unwrap())
        .collect();
    assert_eq!(
        attendees,
        ["alice", "bob", "carol"],
        "the event as escalated"
    );
    assert!(
        payload::text(&d.payload).contains("escalated: added carol"),
        "{}",
        payload::text(&d.payload)
    );

    // A late tick applies the second step: one more delivery, naming both.
    engine.tick(at_min(25)).unwrap();
    let deliveries = engine.deliveries(e.id).unwrap();
    assert_eq!(deliveries.len(), 2, "{deliveries:?}");
    let added: Vec<&serde_json::Value> = deliveries
        .iter()
        .map(|d| &d.payload["detail"]["added"])
        .collect();
    assert!(
        added.contains(&&serde_json::json!(["dave", "erin"])),
        "{added:?}"
    );
    assert!(deliveries.iter().all(|d| d.on == Trigger::Escalated));
}

crate::common::store_tests!(
    an_applied_step_notifies_the_rules_on_escalated_with_the_added_agents,
    escalation_in_a_manifest_is_applied_and_is_no_drift,
    a_due_step_adds_attendees_who_may_answer_from_then_on,
    a_late_settlement_applies_every_due_step_at_its_own_time,
    an_unreachable_quorum_waits_for_the_steps_to_come_then_the_usual_rule_applies,
    after_the_last_step_the_usual_rule_applies,
    a_step_due_after_the_fire_time_never_applies_and_groups_gain_members,
    bad_steps_are_refused_when_the_event_is_made,
);

/// Validation refuses a step due after the fire time, or one that adds an
/// existing attendee, with the step's span.
#[test]
fn bad_steps_in_a_manifest_are_refused_with_their_span() {
    use t_minus::manifest::{self, ValidateOptions};
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor());
    for (step, why) in [
        (
            "{ after: 2h, add: [carol] }",
            "due at or after the fire time",
        ),
        ("{ after: 15m, add: [bob] }", "bob is already an attendee"),
        ("{ after: 15m, add: { ops: [erin] } }", "has no groups"),
    ] {
        let text = MANIFEST.replace(
            "      - after: 20m\n        add: [dave]\n",
            &format!("      - {step}\n"),
        );
        let diags = manifest::validate(
            &manifest::parse_str("release.yaml", &text),
            &ValidateOptions::default(),
        )
        .expect_err(step);
        let codes: Vec<&str> = diags.iter().map(|d| d.code_str()).collect();
        assert_eq!(codes, ["t_minus::manifest::escalation"], "{step}");
        let rendered = diags.render(&handler);
        assert!(rendered.contains(why), "{rendered}");
        assert!(
            rendered.contains(step),
            "the span shows the step: {rendered}"
        );
        assert!(rendered.contains("this step"), "{rendered}");
    }
}
