//! Break-glass on a pinned clock: an agent the event's (or campaign's)
//! `breakglass` list names fires it at once with a reason, whatever its
//! quorum, windows or fire policy; refused for anyone else, without a
//! reason, on a blocked or final event, and unsigned where answers must be
//! signed; marked in the log, the event, `verify` and `attest`; the
//! `breakglass` notification trigger.
//!
//! Every test runs on SQLite and on PostgreSQL (`store_tests!` at the end).

use crate::common::{self, agent, at_min, desired, engine, get, spec};
use crate::trust::keygen;

use t_minus::gate::Gates;
use t_minus::notification::{Hook, NotifyRule, Trigger};
use t_minus::plan::PlanOptions;
use t_minus::{AuditAction, EventState, NewEvent, Quorum, TMinusError};

fn guarded(fire_min: i64) -> NewEvent {
    NewEvent {
        gates: Gates {
            breakglass: vec![agent("oncall")],
            windows: vec!["Sun 03:00-04:00 UTC".parse().unwrap()],
            ..Gates::default()
        },
        ..spec(fire_min, &["ops-1", "ops-2"], Quorum::All)
    }
}

fn a_listed_agent_fires_the_event_at_once() {
    let (mut engine, clock) = engine();
    let e = engine.schedule(guarded(30)).unwrap();
    clock.set(at_min(3));
    for (who, reason) in [("ops-1", "not listed"), ("mallory", "not listed")] {
        let err = engine.break_glass(e.id, &agent(who), reason).unwrap_err();
        assert!(
            matches!(err, TMinusError::BreakGlassRefused { .. }),
            "{err:?}"
        );
    }
    for blank in ["", "   "] {
        let err = engine
            .break_glass(e.id, &agent("oncall"), blank)
            .unwrap_err();
        assert!(matches!(err, TMinusError::BreakGlassReason), "{err:?}");
    }
    assert_eq!(common::actions(&engine, e.id), vec![AuditAction::Scheduled]);
    let fired = engine
        .break_glass(e.id, &agent("oncall"), "sev1: rollback blocked")
        .unwrap();
    assert_eq!(fired.state, EventState::Fired);
    assert_eq!(
        fired.finished_at,
        Some(at_min(3)),
        "at once, outside the window"
    );
    let broken = fired.gates.broken.clone().unwrap();
    assert_eq!(
        (broken.by.as_str(), broken.reason.as_str(), broken.at),
        ("oncall", "sev1: rollback blocked", at_min(3))
    );
    assert_eq!(get(&engine, e.id).gates.broken, Some(broken), "stored");
    let last = engine.log(e.id).unwrap().pop().unwrap();
    assert_eq!(last.action, AuditAction::Fired);
    assert_eq!(last.agent, Some(agent("oncall")));
    assert_eq!(last.detail["reason"], "break-glass");
    assert_eq!(last.detail["breakglass"]["by"], "oncall");
    assert_eq!(
        last.detail["breakglass"]["reason"],
        "sev1: rollback blocked"
    );
    let tick = engine.tick(at_min(4)).unwrap();
    assert_eq!(tick.fired, vec![e.id], "reported once by the next tick");
    let verified = engine.verify_log(None).unwrap();
    assert_eq!(verified.breakglass, 1);
    // Final now: a second break-glass is refused.
    let err = engine
        .break_glass(e.id, &agent("oncall"), "again")
        .unwrap_err();
    assert!(matches!(err, TMinusError::EventFinal { .. }), "{err:?}");
}

fn a_campaign_list_applies_to_every_event_and_dependents_open() {
    let (mut engine, clock) = engine();
    let manifest = r#"
campaign: release
breakglass: [oncall]
events:
  review:
    at: +1h
    attendees: [alice, bob]
  deploy:
    at: +2h
    needs: [review]
    attendees: [ops-1]
    breakglass: [sre]
    notify:
      - on: [breakglass]
        exec: [/bin/true]
"#;
    engine
        .apply_manifests(&desired(manifest), &PlanOptions::default())
        .unwrap();
    let review = engine.resolve_event("release/review").unwrap();
    let deploy = engine.resolve_event("release/deploy").unwrap();
    assert_eq!(
        get(&engine, deploy).gates.breakglass,
        vec![agent("oncall"), agent("sre")]
    );
    clock.set(at_min(5));
    let err = engine
        .break_glass(deploy, &agent("oncall"), "early")
        .unwrap_err();
    assert!(
        matches!(err, TMinusError::BreakGlassBlocked { .. }),
        "{err:?}"
    );
    let err = engine
        .break_glass(review, &agent("sre"), "not listed")
        .unwrap_err();
    assert!(
        matches!(err, TMinusError::BreakGlassRefused { .. }),
        "{err:?}"
    );
    engine
        .break_glass(review, &agent("oncall"), "sev2")
        .unwrap();
    let opened = get(&engine, deploy);
    assert_eq!(opened.state, EventState::Pending, "its need fired");
    assert_eq!(opened.started_at, Some(at_min(5)));
    engine
        .break_glass(deploy, &agent("sre"), "sev2 too")
        .unwrap();
    let deliveries = engine.deliveries(deploy).unwrap();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0].on, Trigger::Breakglass);
    let statement = engine
        .attest(engine.resolve_campaign("release").unwrap())
        .unwrap();
    let value = serde_json::to_value(&statement).unwrap();
    let events = value["predicate"]["events"].as_array().unwrap();
    assert!(
        events.iter().all(|e| e["breakglass"]["by"].is_string()),
        "{value}"
    );
    assert!(
        events.iter().all(|e| e["answers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["answer"] == "breakglass")),
        "{value}"
    );
}

fn a_rule_on_fired_and_breakglass_is_delivered_once() {
    let (mut engine, clock) = engine();
    let rule = NotifyRule::new(
        vec![Trigger::Fired, Trigger::Breakglass],
        Hook::Exec {
            argv: vec!["/bin/true".into()],
        },
    );
    let e = engine
        .schedule(NewEvent {
            notify: vec![rule],
            ..guarded(30)
        })
        .unwrap();
    clock.set(at_min(1));
    engine.break_glass(e.id, &agent("oncall"), "sev1").unwrap();
    let deliveries = engine.deliveries(e.id).unwrap();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0].on, Trigger::Breakglass);
}

fn where_answers_are_signed_so_is_a_break_glass() {
    let dir = tempfile::tempdir().unwrap();
    let oncall = keygen(dir.path(), "oncall", "ed25519");
    let ops = keygen(dir.path(), "ops-1", "ed25519");
    let manifest = format!(
        r#"
campaign: signed
signers:
  oncall: "{}"
  ops-1: "{}"
breakglass: [oncall]
events:
  deploy:
    at: +1h
    attendees: [ops-1]
"#,
        oncall.1, ops.1
    );
    let (mut engine, clock) = engine();
    engine
        .apply_manifests(&desired(&manifest), &PlanOptions::default())
        .unwrap();
    let id = engine.resolve_event("signed/deploy").unwrap();
    clock.set(at_min(2));
    let err = engine
        .break_glass(id, &agent("oncall"), "sev1")
        .unwrap_err();
    assert!(
        err.to_string().contains("requires signed answers") || matches!(err, TMinusError::Trust(_)),
        "{err:?}"
    );
    let fired = engine
        .break_glass_with_key(
            id,
            &agent("oncall"),
            "sev1: signed",
            &t_minus::trust::SigningKey::File(oncall.0.clone()),
        )
        .unwrap();
    assert_eq!(fired.state, EventState::Fired);
    let links = engine.log_links(id).unwrap();
    let last = links.last().unwrap();
    let message = last.message.as_deref().unwrap();
    assert!(
        message.contains("break-glass: \"sev1: signed\""),
        "{message}"
    );
    let verified = engine.verify_log(None).unwrap();
    assert_eq!((verified.signatures, verified.breakglass), (1, 1));
}

common::store_tests!(
    a_listed_agent_fires_the_event_at_once,
    a_campaign_list_applies_to_every_event_and_dependents_open,
    a_rule_on_fired_and_breakglass_is_delivered_once,
    where_answers_are_signed_so_is_a_break_glass,
);
