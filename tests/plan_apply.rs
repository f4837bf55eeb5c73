//! Plan and apply against a store.
//!
//! Every test runs on SQLite and on PostgreSQL (`store_tests!` at the end).

use crate::common::{self, desired, engine, t0};

use std::sync::Arc;

use chrono::Duration;
use t_minus::plan::{Action, ManifestError, Plan, PlanOptions};
use t_minus::{AgentId, Engine, EventState, FixedClock, ResponseStatus};

const RELEASE: &str = r#"
campaign: release-v2
description: Ship v2
defaults:
  t_minus: 5m
events:
  checkpoint:
    at: +10m
    attendees: [ci-bot]
  review:
    kind: review
    needs: [checkpoint]
    at: +20m
    quorum: 2
    attendees: [alice, bob, carol]
  deploy:
    kind: deploy
    needs: [review]
    at: +30m
    t_minus: 10m
    fire: on-time
    max_defer: 1h
    attendees: [ops-1, ops-2, ops-3]
    payload: { version: 2.0.0 }
"#;

/// Snapshots with event and campaign short ids (random) masked.
macro_rules! snap {
    ($value:expr) => {
        insta::with_settings!({filters => vec![(r"\[[0-9a-f]{8}\]", "[ID]")]}, {
            insta::assert_snapshot!($value);
        })
    };
}

fn handler() -> miette::GraphicalReportHandler {
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .with_width(100)
}

fn plan(engine: &mut Engine, text: &str) -> Plan {
    engine
        .plan(&desired(text), &PlanOptions::default())
        .unwrap()
}

fn apply(engine: &mut Engine, text: &str) -> Plan {
    engine
        .apply_manifests(&desired(text), &PlanOptions::default())
        .unwrap()
        .0
}

fn event(engine: &mut Engine, campaign: &str, key: &str) -> t_minus::TMinusEvent {
    let id = engine.resolve_event(&format!("{campaign}/{key}")).unwrap();
    engine.get_event(id).unwrap().unwrap()
}

fn first_plan_creates_everything() {
    let (mut engine, _) = engine();
    let p = plan(&mut engine, RELEASE);
    snap!(p.render());
    assert_eq!(p.counts.add, 4);
}

fn apply_creates_campaign_with_anchor_and_states() {
    let (mut engine, _) = engine();
    apply(&mut engine, RELEASE);
    let campaign = engine.list_campaigns().unwrap().remove(0);
    assert!(campaign.managed);
    let checkpoint = event(&mut engine, "release-v2", "checkpoint");
    assert_eq!(checkpoint.state, EventState::Pending);
    assert_eq!(checkpoint.started_at, Some(t0()));
    assert_eq!(checkpoint.fire_time(), t0() + Duration::minutes(5));
    let review = event(&mut engine, "release-v2", "review");
    assert_eq!(review.state, EventState::Blocked);
    assert_eq!(review.started_at, None);
    assert_eq!(review.relative_at, Some(Duration::minutes(20)));
    assert_eq!(review.quorum, 2);
    let deploy = event(&mut engine, "release-v2", "deploy");
    assert_eq!(deploy.max_defer, Some(Duration::hours(1)));
    assert_eq!(deploy.payload, serde_json::json!({"version": "2.0.0"}));
    let log = engine.log(checkpoint.id).unwrap();
    assert_eq!(log[0].action, t_minus::AuditAction::Scheduled);
}

fn replanning_later_shows_no_changes_and_reapply_is_a_no_op() {
    let (mut engine, clock) = engine();
    apply(&mut engine, RELEASE);
    let ids: Vec<_> = engine.list_events().unwrap().iter().map(|e| e.id).collect();
    clock.advance(Duration::hours(1));
    let p = plan(&mut engine, RELEASE);
    assert!(p.is_empty());
    assert_eq!(p.render(), "No changes.\n");
    let again = apply(&mut engine, RELEASE);
    assert!(again.is_empty());
    let after: Vec<_> = engine.list_events().unwrap().iter().map(|e| e.id).collect();
    assert_eq!(ids, after, "event UUIDs are stable");
}

fn updates_are_field_by_field_and_answers_of_remaining_attendees_survive() {
    let (mut engine, clock) = engine();
    apply(&mut engine, RELEASE);
    // ci-bot confirms: checkpoint fires, review opens.
    let checkpoint = event(&mut engine, "release-v2", "checkpoint");
    clock.advance(Duration::minutes(1));
    engine
        .confirm(checkpoint.id, &AgentId("ci-bot".into()))
        .unwrap();
    let review = event(&mut engine, "release-v2", "review");
    assert_eq!(review.state, EventState::Pending);
    engine.confirm(review.id, &AgentId("alice".into())).unwrap();
    engine
        .decline(review.id, &AgentId("carol".into()), None)
        .unwrap();

    let changed = RELEASE
        .replace(
            "attendees: [alice, bob, carol]",
            "attendees: [alice, bob, dave]",
        )
        .replace("t_minus: 10m", "t_minus: 15m")
        .replace("description: Ship v2", "description: Ship v2 now");
    let p = plan(&mut engine, &changed);
    snap!(p.render());
    assert_eq!((p.counts.add, p.counts.change, p.counts.destroy), (0, 3, 0));
    let review_plan = p.campaigns[0]
        .events
        .iter()
        .find(|e| e.key == "review")
        .unwrap();
    assert_eq!(review_plan.action, Action::Update);
    assert!(review_plan.notes[0].contains("carol already answered (declined)"));

    engine.apply_plan(&p).unwrap();
    let review = event(&mut engine, "release-v2", "review");
    let statuses: Vec<_> = review
        .attendees
        .iter()
        .map(|(a, s)| (a.0.as_str(), *s))
        .collect();
    assert_eq!(
        statuses,
        [
            ("alice", ResponseStatus::Confirmed),
            ("bob", ResponseStatus::Pending),
            ("dave", ResponseStatus::Pending)
        ]
    );
    let deploy = event(&mut engine, "release-v2", "deploy");
    assert_eq!(deploy.t_minus, Duration::minutes(15));
    assert!(plan(&mut engine, &changed).is_empty());
    let log = engine.log(deploy.id).unwrap();
    assert!(log
        .iter()
        .any(|e| e.action == t_minus::AuditAction::Updated));
}

fn removing_and_adding_events_and_needs() {
    let (mut engine, _) = engine();
    apply(&mut engine, RELEASE);
    let deploy_id = event(&mut engine, "release-v2", "deploy").id;
    // Drop `review`; deploy now needs checkpoint directly; add `notify`.
    let changed = r#"
campaign: release-v2
description: Ship v2
defaults:
  t_minus: 5m
events:
  checkpoint:
    at: +10m
    attendees: [ci-bot]
  deploy:
    kind: deploy
    needs: [checkpoint]
    at: +30m
    t_minus: 10m
    fire: on-time
    max_defer: 1h
    attendees: [ops-1, ops-2, ops-3]
    payload: { version: 2.0.0 }
  notify:
    needs: [deploy]
    at: +1m
    t_minus: 0s
    quorum: 0
"#;
    let p = plan(&mut engine, changed);
    snap!(p.render());
    engine.apply_plan(&p).unwrap();
    let deploy = event(&mut engine, "release-v2", "deploy");
    assert_eq!(deploy.id, deploy_id);
    let campaign = engine.list_campaigns().unwrap().remove(0);
    assert_eq!(campaign.events.len(), 3);
    assert_eq!(campaign.dependencies.len(), 2);
    assert!(engine.resolve_event("release-v2/review").is_err());
    assert!(plan(&mut engine, changed).is_empty());
}

fn a_campaigns_new_events_get_ascending_ids_in_manifest_order() {
    let (mut engine, _) = engine();
    apply(&mut engine, RELEASE);
    let ids: Vec<_> = ["checkpoint", "review", "deploy"]
        .iter()
        .map(|key| event(&mut engine, "release-v2", key).id)
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(ids.iter().all(|id| id.get_version_num() == 4));
}

fn quorum_zero_events_cascade_after_apply() {
    let (mut engine, _) = engine();
    let gates = r#"
campaign: gates
events:
  a:
    at: +1m
    quorum: 0
  b:
    needs: [a]
    at: +1m
    quorum: 0
  c:
    needs: [b]
    at: +1m
    attendees: [x]
"#;
    apply(&mut engine, gates);
    assert_eq!(event(&mut engine, "gates", "a").state, EventState::Fired);
    assert_eq!(event(&mut engine, "gates", "b").state, EventState::Fired);
    let c = event(&mut engine, "gates", "c");
    assert_eq!(c.state, EventState::Pending);
    assert_eq!(c.started_at, Some(t0()));
}

fn a_change_to_a_final_event_is_a_plan_error_at_the_field() {
    let (mut engine, _) = engine();
    apply(&mut engine, RELEASE);
    let checkpoint = event(&mut engine, "release-v2", "checkpoint");
    engine
        .confirm(checkpoint.id, &AgentId("ci-bot".into()))
        .unwrap();
    let changed = RELEASE.replace("at: +10m", "at: +12m");
    let err = engine
        .plan(&desired(&changed), &PlanOptions::default())
        .unwrap_err();
    let ManifestError::Invalid(diags) = err else {
        panic!("{err:?}")
    };
    let d = diags.iter().next().unwrap();
    assert_eq!(d.code_str(), "t_minus::manifest::final_event");
    snap!(diags.render(&handler()));
}

fn a_new_event_already_past_is_a_plan_error() {
    let (engine, _) = engine();
    let past = r#"
campaign: late
events:
  x:
    at: 2025-06-06T14:00:00Z
"#;
    let err = engine
        .plan(&desired(past), &PlanOptions::default())
        .unwrap_err();
    let ManifestError::Invalid(diags) = err else {
        panic!("{err:?}")
    };
    snap!(diags.render(&handler()));
}

fn a_stale_plan_is_refused_and_changes_nothing() {
    let (mut engine, _) = engine();
    apply(&mut engine, RELEASE);
    let changed = RELEASE.replace("quorum: 2", "quorum: all");
    let p = plan(&mut engine, &changed);
    // Someone answers in between: the campaign's revision moves.
    let checkpoint = event(&mut engine, "release-v2", "checkpoint");
    engine
        .confirm(checkpoint.id, &AgentId("ci-bot".into()))
        .unwrap();
    let err = engine.apply_plan(&p).unwrap_err();
    assert!(matches!(err, ManifestError::StalePlan { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("campaign `release-v2` changed"), "{text}");
    assert_eq!(event(&mut engine, "release-v2", "review").quorum, 2);
}

fn a_saved_plan_round_trips_through_json() {
    let (mut engine, _) = engine();
    let p = plan(&mut engine, RELEASE);
    let text = p.to_json();
    assert!(t_minus::plan::is_plan_file(&text));
    assert!(!t_minus::plan::is_plan_file(RELEASE));
    let back = Plan::from_json(&text).unwrap();
    assert_eq!(
        back.to_json(),
        text,
        "spans are not saved, everything else is"
    );
    engine.apply_plan(&back).unwrap();
    assert!(plan(&mut engine, RELEASE).is_empty());
    // Applying the same plan twice: the second is stale.
    assert!(matches!(
        engine.apply_plan(&back),
        Err(ManifestError::StalePlan { .. })
    ));
    assert!(matches!(
        Plan::from_json("{\"t_minus_plan\": 99}"),
        Err(ManifestError::PlanFile { .. })
    ));
}

fn plan_json_shape() {
    let (mut engine, _) = engine();
    let p = plan(&mut engine, RELEASE);
    let json: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
    assert_eq!(json["t_minus_plan"], 1);
    assert_eq!(
        json["counts"],
        serde_json::json!({"add": 4, "change": 0, "destroy": 0})
    );
    assert_eq!(json["campaigns"][0]["action"], "create");
    assert_eq!(
        json["campaigns"][0]["events"][1]["desired"]["needs"],
        serde_json::json!(["checkpoint"])
    );
    assert_eq!(json["fingerprint"]["campaigns"][0]["name"], "release-v2");
}

fn prune_removes_only_managed_campaigns_absent_from_the_manifests() {
    let (mut engine, _) = engine();
    apply(&mut engine, RELEASE);
    engine.create_campaign("by-hand".into()).unwrap();
    let other = "campaign: other\nevents:\n  x:\n    at: +10m\n";
    // Without prune, release-v2 is left alone.
    let p = plan(&mut engine, other);
    assert_eq!(p.counts.destroy, 0);
    let p = engine
        .plan(
            &desired(other),
            &PlanOptions {
                prune: true,
                now: None,
            },
        )
        .unwrap();
    snap!(p.render());
    assert_eq!((p.counts.add, p.counts.destroy), (2, 4));
    engine.apply_plan(&p).unwrap();
    let names: Vec<String> = engine
        .list_campaigns()
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["by-hand", "other"]);
}

fn apply_is_all_or_nothing() {
    let (mut engine, _) = engine();
    apply(&mut engine, RELEASE);
    let p = plan(&mut engine, &RELEASE.replace("quorum: 2", "quorum: 1"));
    // Make the plan fail midway: a second campaign whose new event is past
    // by the time the plan is applied.
    let mut doomed = plan(
        &mut engine,
        "campaign: doomed\nevents:\n  x:\n    at: 2030-01-01T09:00:30Z\n",
    );
    doomed.campaigns.extend(p.campaigns.clone());
    doomed
        .fingerprint
        .campaigns
        .extend(p.fingerprint.campaigns.clone());
    // Move the clock past the doomed event's fire time.
    engine.set_clock(Arc::new(FixedClock::new(t0() + Duration::minutes(1))));
    assert!(engine.apply_plan(&doomed).is_err());
    assert_eq!(event(&mut engine, "release-v2", "review").quorum, 2);
    assert!(engine.resolve_campaign("doomed").is_err());
}

// The tests above without `#[test]` run twice, as `sqlite::NAME` and
// `postgres::NAME` (tests/common/stores.rs).
const TWO_KEY: &str = r#"
campaign: two-key
events:
  deploy:
    at: +30m
    attendees:
      ops: [ops-1, ops-2, ops-3]
      security: [sec-1, sec-2]
    quorum: { ops: 2, security: 1 }
"#;

fn group_changes_are_planned_per_group_and_answers_of_staying_members_survive() {
    let (mut engine, clock) = engine();
    let first = apply(&mut engine, TWO_KEY);
    assert!(first
        .render()
        .contains("quorum ops 2 of [ops-1, ops-2, ops-3] and security 1 of [sec-1, sec-2]"));
    let deploy = event(&mut engine, "two-key", "deploy");
    clock.advance(Duration::minutes(1));
    engine.confirm(deploy.id, &AgentId("ops-1".into())).unwrap();
    engine.confirm(deploy.id, &AgentId("sec-1".into())).unwrap();

    let changed = TWO_KEY
        .replace(
            "security: [sec-1, sec-2]",
            "security: [sec-1, sec-2, sec-3]",
        )
        .replace("ops: [ops-1, ops-2, ops-3]", "ops: [ops-1, ops-2, ops-4]")
        .replace("ops: 2, security: 1", "ops: 3, security: 1");
    let p = plan(&mut engine, &changed);
    let deploy_plan = &p.campaigns[0].events[0];
    let changes: Vec<(String, Option<&str>, Option<&str>)> = deploy_plan
        .changes
        .iter()
        .map(|c| (c.name(), c.old.as_deref(), c.new.as_deref()))
        .collect();
    assert_eq!(
        changes,
        [
            ("quorum.ops".to_string(), Some("2"), Some("3")),
            ("attendees.ops".to_string(), Some("ops-3"), None),
            ("attendees.ops".to_string(), None, Some("ops-4")),
            ("attendees.security".to_string(), None, Some("sec-3")),
        ]
    );
    let rendered = p.render();
    for line in [
        "        ~ quorum.ops: 2 → 3\n",
        "        - attendees.ops: ops-3\n",
        "        + attendees.ops: ops-4\n",
        "        + attendees.security: sec-3\n",
    ] {
        assert!(rendered.contains(line), "{line:?} in\n{rendered}");
    }
    // The JSON plan and plan files carry one change per member.
    let json: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
    assert_eq!(
        json["campaigns"][0]["events"][0]["changes"][3],
        serde_json::json!({ "field": "attendees.security", "old": null, "new": "sec-3" })
    );
    engine.apply_plan(&p).unwrap();

    let deploy = event(&mut engine, "two-key", "deploy");
    assert_eq!(deploy.state, EventState::Pending, "ops now needs 3");
    assert_eq!(
        deploy.response_of(&AgentId("ops-1".into())),
        Some(ResponseStatus::Confirmed)
    );
    assert_eq!(
        deploy.response_of(&AgentId("sec-1".into())),
        Some(ResponseStatus::Confirmed)
    );
    assert_eq!(deploy.response_of(&AgentId("ops-3".into())), None, "left");
    assert_eq!(deploy.groups[1].members.len(), 3);
    assert!(plan(&mut engine, &changed).is_empty(), "applied as planned");
    engine.confirm(deploy.id, &AgentId("ops-2".into())).unwrap();
    let fired = engine.confirm(deploy.id, &AgentId("ops-4".into())).unwrap();
    assert_eq!(fired.state, EventState::Fired);
}

common::store_tests!(
    group_changes_are_planned_per_group_and_answers_of_staying_members_survive,
    first_plan_creates_everything,
    apply_creates_campaign_with_anchor_and_states,
    replanning_later_shows_no_changes_and_reapply_is_a_no_op,
    updates_are_field_by_field_and_answers_of_remaining_attendees_survive,
    removing_and_adding_events_and_needs,
    quorum_zero_events_cascade_after_apply,
    a_campaigns_new_events_get_ascending_ids_in_manifest_order,
    a_change_to_a_final_event_is_a_plan_error_at_the_field,
    a_new_event_already_past_is_a_plan_error,
    a_stale_plan_is_refused_and_changes_nothing,
    a_saved_plan_round_trips_through_json,
    plan_json_shape,
    prune_removes_only_managed_campaigns_absent_from_the_manifests,
    apply_is_all_or_nothing,
);
