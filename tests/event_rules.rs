//! One set of rules for a new event: the same event, scheduled ad hoc
//! (`schedule`, `campaign add`) and written in a manifest (`validate`,
//! `plan`), is refused by the same rule — the engine's error code
//! `t_minus::input::X` and the manifest's `t_minus::manifest::Y` name the
//! same problem, and the store stays empty.

use crate::cli_support;
use crate::common::*;

use chrono::{DateTime, Duration, Utc};
use miette::Diagnostic;
use t_minus::manifest::{self, ValidateOptions};
use t_minus::plan::{ManifestError, Plan, PlanOptions};
use t_minus::{EventKind, NewEvent, Quorum, QuorumGroup, TMinusError};

/// An event at `at_min(10)` (15:00), to be varied per case.
fn base() -> NewEvent {
    NewEvent::new(EventKind::Checkpoint, at_min(10))
}

/// A manifest of one campaign `rules` with one event `e` made of `fields`
/// (YAML lines indented four spaces), at 15:00 unless they give `at`.
fn manifest(fields: &str) -> String {
    let at = if fields.contains("    at: ") {
        ""
    } else {
        "    at: 2025-06-06T15:00:00Z\n"
    };
    format!("campaign: rules\nevents:\n  e:\n{at}{fields}")
}

/// The code of an engine error.
fn code(err: &TMinusError) -> String {
    err.code().map(|c| c.to_string()).unwrap_or_default()
}

/// The codes `validate` (checking against `t0`) reports for `text`.
fn manifest_codes(text: &str) -> Vec<String> {
    let parsed = manifest::parse_str("rules.yaml", text);
    let options = ValidateOptions {
        now: Some(t0()),
        ..Default::default()
    };
    match manifest::validate(&parsed, &options) {
        Ok(_) => Vec::new(),
        Err(diags) => diags.iter().map(|d| d.code_str().to_string()).collect(),
    }
}

/// Schedules `new` standalone and inside a campaign: both are refused with
/// the same error, and nothing is written. Returns the error's code.
#[track_caller]
fn engine_code(new: NewEvent) -> String {
    let (mut engine, _clock) = engine();
    let campaign = engine.create_campaign("adhoc".into()).unwrap();
    let alone = engine.schedule(new.clone()).unwrap_err();
    let inside = engine.campaign_add(campaign.id, new, None).unwrap_err();
    assert_eq!(alone.to_string(), inside.to_string());
    assert_eq!(code(&alone), code(&inside));
    assert!(engine.list_events().unwrap().is_empty());
    code(&alone)
}

/// The same event refused by the engine with `input` and by `validate`
/// with `manifest_code`.
#[track_caller]
fn refused_alike(new: NewEvent, yaml: &str, input: &str, manifest_code: &str) {
    assert_eq!(engine_code(new), format!("t_minus::input::{input}"));
    assert_eq!(
        manifest_codes(&manifest(yaml)),
        vec![format!("t_minus::manifest::{manifest_code}")],
        "{yaml}"
    );
}

fn group(name: &str, quorum: Quorum, members: &[&str]) -> QuorumGroup {
    QuorumGroup::new(name, quorum, agents(members))
}

#[test]
fn an_invalid_attendee_id() {
    refused_alike(
        NewEvent {
            attendees: agents(&["ok", "has space"]),
            ..base()
        },
        "    attendees: [ok, \"has space\"]\n",
        "agent_id",
        "agent_id",
    );
}

#[test]
fn an_attendee_listed_twice() {
    refused_alike(
        NewEvent {
            attendees: agents(&["a", "b", "a"]),
            ..base()
        },
        "    attendees: [a, b, a]\n",
        "duplicate_attendee",
        "duplicate_attendee",
    );
}

#[test]
fn a_quorum_larger_than_the_attendees() {
    refused_alike(
        NewEvent {
            attendees: agents(&["a", "b"]),
            quorum: Quorum::Count(3),
            ..base()
        },
        "    attendees: [a, b]\n    quorum: 3\n",
        "quorum_too_large",
        "quorum_too_large",
    );
}

#[test]
fn a_group_quorum_larger_than_its_members() {
    refused_alike(
        NewEvent {
            groups: vec![group("ops", Quorum::Count(3), &["a", "b"])],
            ..base()
        },
        "    attendees: { ops: [a, b] }\n    quorum: { ops: 3 }\n",
        "group",
        "quorum_too_large",
    );
}

#[test]
fn a_group_without_members() {
    refused_alike(
        NewEvent {
            groups: vec![group("ops", Quorum::All, &[])],
            ..base()
        },
        "    attendees: { ops: [] }\n",
        "group",
        "empty_group",
    );
}

#[test]
fn a_group_with_an_invalid_name() {
    refused_alike(
        NewEvent {
            groups: vec![group("9ops", Quorum::All, &["a"])],
            ..base()
        },
        "    attendees: { 9ops: [a] }\n",
        "group",
        "name",
    );
}

#[test]
fn a_member_listed_twice_in_a_group() {
    refused_alike(
        NewEvent {
            groups: vec![group("ops", Quorum::All, &["a", "a"])],
            ..base()
        },
        "    attendees: { ops: [a, a] }\n",
        "duplicate_attendee",
        "duplicate_attendee",
    );
}

#[test]
fn a_countdown_past_the_duration_limit() {
    let days = t_minus::duration::MAX_DURATION_DAYS + 1;
    refused_alike(
        NewEvent {
            t_minus: Duration::days(days),
            ..base()
        },
        &format!("    t_minus: {days}days\n"),
        "duration",
        "duration",
    );
    refused_alike(
        NewEvent {
            max_defer: Some(Duration::days(days)),
            ..base()
        },
        &format!("    max_defer: {days}days\n"),
        "duration",
        "duration",
    );
}

#[test]
fn a_negative_countdown() {
    refused_alike(
        NewEvent {
            t_minus: -mins(5),
            ..base()
        },
        "    t_minus: -5m\n",
        "duration",
        "duration",
    );
}

/// A new event whose fire time is `fire`: refused by `schedule`,
/// `campaign add`, `validate` and `plan` alike.
#[track_caller]
fn fire_time_refused_everywhere(at: DateTime<Utc>, t_minus: Duration, yaml: &str) {
    refused_alike(
        NewEvent {
            t_minus,
            ..NewEvent::new(EventKind::Checkpoint, at)
        },
        yaml,
        "fire_time_passed",
        "fire_time_passed",
    );
    // `plan` checks the manifest against the store's clock.
    let (engine, _clock) = engine();
    let desired = manifest::validate(
        &manifest::parse_str("rules.yaml", &manifest(yaml)),
        &ValidateOptions::default(),
    )
    .unwrap();
    match engine.plan(&desired, &PlanOptions::default()) {
        Err(ManifestError::Invalid(diags)) => {
            let codes: Vec<&str> = diags.iter().map(|d| d.code_str()).collect();
            assert_eq!(codes, ["t_minus::manifest::fire_time_passed"]);
        }
        other => panic!("plan: {other:?}"),
    }
}

#[test]
fn a_fire_time_of_exactly_now() {
    // 14:50 is the clock's time: an event firing now could only be missed.
    fire_time_refused_everywhere(t0(), Duration::zero(), "    at: 2025-06-06T14:50:00Z\n");
    // The same through its countdown: 15:00 less 10 minutes.
    fire_time_refused_everywhere(
        at_min(10),
        mins(10),
        "    at: 2025-06-06T15:00:00Z\n    t_minus: 10m\n",
    );
    // One millisecond later is accepted by both.
    let (mut engine, _clock) = engine();
    let soon = t0() + Duration::milliseconds(1);
    engine
        .schedule(NewEvent::new(EventKind::Checkpoint, soon))
        .unwrap();
    assert!(manifest_codes(&manifest("    t_minus: 599999ms\n")).is_empty());
}

#[test]
fn a_fire_time_in_the_past() {
    fire_time_refused_everywhere(
        at_min(-1),
        Duration::zero(),
        "    at: 2025-06-06T14:49:00Z\n",
    );
}

#[test]
fn the_command_line_refuses_a_fire_time_of_now() {
    let t = cli_support::T::new();
    let stderr = t.fail("schedule checkpoint now");
    assert!(
        stderr.contains("t_minus::input::fire_time_passed"),
        "{stderr}"
    );
    assert!(stderr.contains("has already passed (0s ago)"), "{stderr}");
    assert!(t.events().is_empty());
}

#[test]
fn a_saved_plan_edited_past_the_rules_is_refused() {
    let (engine, _clock) = engine();
    let desired = desired(&manifest(
        "    attendees: { ops: [a, b] }\n    quorum: { ops: 1 }\n",
    ));
    let text = engine
        .plan(&desired, &PlanOptions::default())
        .unwrap()
        .to_json();
    assert!(Plan::from_json(&text).is_ok());
    // The group's quorum (the last one written) raised by hand past its
    // members.
    let quorum = "\"quorum\": \"1\"";
    let at = text.rfind(quorum).unwrap();
    let edited = format!(
        "{}\"quorum\": \"3\"{}",
        &text[..at],
        &text[at + quorum.len()..]
    );
    match Plan::from_json(&edited) {
        Err(ManifestError::PlanFile { reason }) => {
            assert!(reason.contains("invalid group `ops`"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_reminder_without_before() {
    use t_minus::notify::{Hook, NotifyRule, Trigger};
    let rule = NotifyRule::new(
        vec![Trigger::Reminder],
        Hook::Exec {
            argv: vec!["echo".into()],
        },
    );
    refused_alike(
        NewEvent {
            notify: vec![rule],
            ..base()
        },
        "    notify:\n      - on: [reminder]\n        exec: [echo]\n",
        "notify",
        "notify",
    );
}

#[test]
fn a_saved_plan_whose_relative_time_is_within_its_countdown_is_refused() {
    let (engine, _clock) = engine();
    let text =
        "campaign: rules\nevents:\n  e:\n    at: +10m\n    t_minus: 5m\n    attendees: [a]\n";
    let plan = engine
        .plan(&desired(text), &PlanOptions::default())
        .unwrap()
        .to_json();
    assert!(plan.contains("\"t_minus\": 300000"), "{plan}");
    // The countdown lengthened by hand to the whole relative time: the
    // event would open at its fire time, as `validate` refuses.
    let edited = plan.replace("\"t_minus\": 300000", "\"t_minus\": 600000");
    match Plan::from_json(&edited) {
        Err(ManifestError::PlanFile { reason }) => {
            assert!(
                reason.contains("longer than its t_minus of 10m"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        manifest_codes(&text.replace("5m", "10m")),
        ["t_minus::manifest::relative_at"]
    );
}

#[test]
fn a_majority_of_no_attendees() {
    // ⌊0/2⌋+1 = 1 confirmation, more than the (empty) attendee list.
    refused_alike(
        NewEvent {
            attendees: Vec::new(),
            quorum: Quorum::Majority,
            ..base()
        },
        "    attendees: []\n    quorum: majority\n",
        "quorum_too_large",
        "quorum_too_large",
    );
}

#[test]
fn a_relative_time_equal_to_its_countdown_is_for_quorum_zero_only() {
    let text = "campaign: rules\nevents:\n  e:\n    at: +5m\n    t_minus: 5m\n    quorum: 0\n";
    assert!(manifest_codes(text).is_empty(), "a gate at its start");
    let asked = text.replace("quorum: 0", "attendees: [a]\n    quorum: 1");
    assert_eq!(manifest_codes(&asked), ["t_minus::manifest::relative_at"]);
}

#[test]
fn look_alike_attendee_ids() {
    for (id, yaml) in [
        ("bob\u{200B}", "bob\\u200B"),
        ("\u{0430}lice", "\\u0430lice"),
        ("x\u{202E}y", "x\\u202Ey"),
    ] {
        refused_alike(
            NewEvent {
                attendees: vec![t_minus::AgentId(id.to_string())],
                ..base()
            },
            &format!("    attendees: [\"{yaml}\"]\n"),
            "agent_id",
            "agent_id",
        );
    }
}

#[test]
fn campaign_names_that_are_uuids() {
    let uuid = "deadbeef-0000-4000-8000-000000000000";
    let (mut engine, _clock) = engine();
    let err = engine.create_campaign(uuid.into()).unwrap_err();
    assert_eq!(code(&err), "t_minus::input::name", "{err}");
    assert!(engine.list_campaigns().unwrap().is_empty());
    let text = format!("campaign: {uuid}\nevents:\n  e:\n    at: 2025-06-06T15:00:00Z\n");
    assert_eq!(manifest_codes(&text), ["t_minus::manifest::name"]);
    // An event name that is a UUID, too.
    let text = format!("campaign: rules\nevents:\n  {uuid}:\n    at: 2025-06-06T15:00:00Z\n");
    assert_eq!(manifest_codes(&text), ["t_minus::manifest::name"]);
}
