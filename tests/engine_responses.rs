//! Responses: who may answer, changing an answer, deferral (cumulative,
//! capped, positive), the deadline (refused after the fire time even when no
//! tick ran, with lazy settlement) and the audit trail.
//!
//! Every test runs on SQLite and on PostgreSQL (`store_tests!` at the end).

use crate::common;

use chrono::Duration;
use common::*;
use miette::Diagnostic;
use t_minus::{AuditAction, EventState, NewEvent, Quorum, ResponseStatus, TMinusError};

// ---------------------------------------------------------------- attendees

fn only_attendees_may_respond() {
    let (mut engine, _clock) = engine();
    let e = engine
        .schedule(spec(10, &["alice", "bob"], Quorum::All))
        .unwrap();
    let log_before = engine.log(e.id).unwrap();
    let attempts = [
        engine.confirm(e.id, &agent("mallory")).unwrap_err(),
        engine.defer(e.id, &agent("mallory"), mins(1)).unwrap_err(),
        engine.decline(e.id, &agent("mallory"), None).unwrap_err(),
        // The organizer is not an attendee either.
        engine.confirm(e.id, &agent("t-minus")).unwrap_err(),
    ];
    for err in attempts {
        match &err {
            TMinusError::NotAnAttendee {
                agent, attendees, ..
            } => {
                assert!(
                    agent.as_str() == "mallory" || agent.as_str() == "t-minus",
                    "{agent}"
                );
                assert_eq!(attendees, &agents(&["alice", "bob"]));
            }
            other => panic!("expected NotAnAttendee, got {other:?}"),
        }
        assert!(err.to_string().contains("is not an attendee"), "{err}");
        let help = err.help().map(|h| h.to_string()).unwrap_or_default();
        assert!(
            help.contains("alice, bob"),
            "help lists the attendees: {help}"
        );
    }
    let stored = get(&engine, e.id);
    assert_eq!(stored.state, EventState::Pending);
    assert_eq!(
        stored.scheduled_at,
        at_min(10),
        "refused defer moved nothing"
    );
    assert_eq!(engine.log(e.id).unwrap(), log_before);
}

fn an_event_without_attendees_says_so() {
    let (mut engine, _clock) = engine();
    let e = engine.schedule(on_time(10, &[], Quorum::Count(0))).unwrap();
    let err = engine.confirm(e.id, &agent("x")).unwrap_err();
    assert!(
        matches!(err, TMinusError::NotAnAttendee { ref attendees, .. } if attendees.is_empty()),
        "{err:?}"
    );
}

fn invalid_agent_ids_are_refused_before_anything_else() {
    let (mut engine, _clock) = engine();
    let e = engine.schedule(spec(10, &["a"], Quorum::All)).unwrap();
    for bad in ["", " ", "a b", "nl\n"] {
        let err = engine.confirm(e.id, &agent(bad)).unwrap_err();
        assert!(
            matches!(err, TMinusError::InvalidAgentId { .. }),
            "{bad:?}: {err:?}"
        );
    }
}

fn an_agent_may_change_its_answer_while_open() {
    let (mut engine, clock) = engine();
    let e = engine
        .schedule(spec(10, &["a", "b", "c"], Quorum::Count(2)))
        .unwrap();
    clock.set(at_min(1));
    let s = engine.confirm(e.id, &agent("a")).unwrap();
    assert_eq!(response(&s, "a"), ResponseStatus::Confirmed);
    assert_eq!(s.confirmed_count(), 1);
    clock.set(at_min(2));
    let s = engine.decline(e.id, &agent("a"), None).unwrap();
    assert_eq!(response(&s, "a"), ResponseStatus::Declined);
    assert_eq!(s.confirmed_count(), 0);
    assert_eq!(s.state, EventState::Pending);
    clock.set(at_min(3));
    let s = engine.confirm(e.id, &agent("a")).unwrap();
    assert_eq!(response(&s, "a"), ResponseStatus::Confirmed);
    assert_eq!(s.state, EventState::Pending);
    clock.set(at_min(4));
    let s = engine.defer(e.id, &agent("a"), mins(1)).unwrap();
    assert_eq!(response(&s, "a"), ResponseStatus::Deferred(mins(1)));
    assert_eq!(s.confirmed_count(), 0, "a deferral is not a confirmation");
    clock.set(at_min(5));
    engine.confirm(e.id, &agent("a")).unwrap();
    clock.set(at_min(6));
    let s = engine.confirm(e.id, &agent("b")).unwrap();
    assert_eq!(s.state, EventState::Fired);
    assert_eq!(s.finished_at, Some(at_min(6)));
    assert_eq!(
        actions(&engine, e.id),
        vec![
            AuditAction::Scheduled,
            AuditAction::Confirmed,
            AuditAction::Declined,
            AuditAction::Confirmed,
            AuditAction::Deferred,
            AuditAction::Confirmed,
            AuditAction::Confirmed,
            AuditAction::Fired,
        ]
    );
}

fn confirming_twice_is_harmless() {
    let (mut engine, _clock) = engine();
    let e = engine.schedule(spec(10, &["a", "b"], Quorum::All)).unwrap();
    engine.confirm(e.id, &agent("a")).unwrap();
    let again = engine.confirm(e.id, &agent("a")).unwrap();
    assert_eq!(again.confirmed_count(), 1);
    assert_eq!(again.state, EventState::Pending);
}

// ---------------------------------------------------------------- deferral

fn deferral_moves_at_and_fire_time_later_cumulatively() {
    let (mut engine, clock) = engine();
    let e = engine
        .schedule(NewEvent {
            t_minus: mins(5),
            ..spec(20, &["a", "b"], Quorum::All)
        })
        .unwrap();
    assert_eq!(e.fire_time(), at_min(15));
    clock.set(at_min(1));
    let once = engine.defer(e.id, &agent("a"), mins(5)).unwrap();
    assert_eq!(once.scheduled_at, at_min(25));
    assert_eq!(once.fire_time(), at_min(20));
    assert_eq!(once.deferred, mins(5));
    assert_eq!(response(&once, "a"), ResponseStatus::Deferred(mins(5)));
    clock.set(at_min(2));
    let twice = engine.defer(e.id, &agent("b"), mins(3)).unwrap();
    assert_eq!(twice.scheduled_at, at_min(28));
    assert_eq!(twice.fire_time(), at_min(23));
    assert_eq!(twice.deferred, mins(8));
    let thrice = engine.defer(e.id, &agent("a"), mins(2)).unwrap();
    assert_eq!(thrice.scheduled_at, at_min(30));
    assert_eq!(thrice.fire_time(), at_min(25));
    assert_eq!(
        response(&thrice, "a"),
        ResponseStatus::Deferred(mins(2)),
        "the latest request's deferral"
    );
    // The stored event agrees, and the old fire times are not due.
    assert_eq!(get(&engine, e.id), thrice);
    for m in [15, 20, 23] {
        assert!(engine.tick(at_min(m)).unwrap().is_empty(), "+{m}m");
    }
    assert_eq!(state(&engine, e.id), EventState::Pending);
    assert_eq!(engine.next_fire_time(None).unwrap(), Some(at_min(25)));
    let result = engine.tick(at_min(25)).unwrap();
    assert_eq!(result.missed, vec![e.id]);
    assert_eq!(get(&engine, e.id).finished_at, Some(at_min(25)));
}

fn a_deferred_attendee_can_confirm_after_the_original_deadline() {
    let (mut engine, clock) = engine();
    let e = engine.schedule(spec(10, &["a", "b"], Quorum::All)).unwrap();
    clock.set(at_min(1));
    engine.confirm(e.id, &agent("b")).unwrap();
    engine.defer(e.id, &agent("a"), mins(10)).unwrap();
    clock.set(at_min(15)); // past the original +10m, before the new +20m
    let fired = engine.confirm(e.id, &agent("a")).unwrap();
    assert_eq!(response(&fired, "a"), ResponseStatus::Confirmed);
    assert_eq!(fired.state, EventState::Fired);
    assert_eq!(fired.finished_at, Some(at_min(15)));
}

fn deferral_past_max_defer_is_refused_and_changes_nothing() {
    let (mut engine, clock) = engine();
    let e = engine
        .schedule(NewEvent {
            max_defer: Some(mins(10)),
            ..spec(30, &["a", "b"], Quorum::All)
        })
        .unwrap();
    clock.set(at_min(1));
    engine.defer(e.id, &agent("a"), mins(6)).unwrap();
    let before = get(&engine, e.id);
    let log_before = engine.log(e.id).unwrap();

    let err = engine.defer(e.id, &agent("b"), mins(5)).unwrap_err();
    match &err {
        TMinusError::MaxDeferExceeded {
            requested,
            already,
            max,
            ..
        } => {
            assert_eq!(*requested, mins(5));
            assert_eq!(*already + *requested, mins(11));
            assert_eq!(*max, mins(10));
            assert_eq!(*max - *already, mins(4));
        }
        other => panic!("expected MaxDeferExceeded, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("max_defer") && msg.contains("10m"), "{msg}");
    assert_eq!(get(&engine, e.id), before, "store unchanged");
    assert_eq!(engine.log(e.id).unwrap(), log_before, "log unchanged");
    assert_eq!(before.scheduled_at, at_min(36));
    assert_eq!(response(&before, "b"), ResponseStatus::Pending);

    // Exactly up to the cap is allowed.
    let capped = engine.defer(e.id, &agent("b"), mins(4)).unwrap();
    assert_eq!(capped.deferred, mins(10));
    assert_eq!(capped.scheduled_at, at_min(40));
    let err = engine
        .defer(e.id, &agent("a"), Duration::seconds(1))
        .unwrap_err();
    assert!(
        matches!(err, TMinusError::MaxDeferExceeded { .. }),
        "{err:?}"
    );
}

fn zero_or_negative_deferral_is_refused() {
    let (mut engine, _clock) = engine();
    let e = engine.schedule(spec(10, &["a"], Quorum::All)).unwrap();
    let before = get(&engine, e.id);
    for by in [Duration::zero(), -mins(5)] {
        let err = engine.defer(e.id, &agent("a"), by).unwrap_err();
        assert!(
            matches!(err, TMinusError::NonPositiveDeferral { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("longer than zero"), "{err}");
    }
    assert_eq!(get(&engine, e.id), before);
    assert_eq!(actions(&engine, e.id), vec![AuditAction::Scheduled]);
}

// ---------------------------------------------------------------- deadline

fn a_response_after_the_fire_time_is_refused_with_the_deadline_even_without_a_tick() {
    let (mut engine, clock) = engine();
    let e = engine.schedule(spec(10, &["a", "b"], Quorum::All)).unwrap();
    clock.set(at_min(1));
    engine.confirm(e.id, &agent("a")).unwrap();
    clock.set(at_min(14));
    let err = engine.confirm(e.id, &agent("b")).unwrap_err();
    match &err {
        TMinusError::DeadlinePassed { deadline, ago, .. } => {
            assert_eq!(*deadline, at_min(10));
            assert_eq!(*ago, mins(4));
        }
        other => panic!("expected DeadlinePassed, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("2025-06-06T15:00:00Z"), "{msg}");
    assert!(msg.contains("deadline"), "{msg}");

    // A refused command writes nothing: the event is still stored as it was.
    let unchanged = get(&engine, e.id);
    assert_eq!(unchanged.state, EventState::Pending);
    assert_eq!(unchanged.finished_at, None);
    assert_eq!(response(&unchanged, "b"), ResponseStatus::Pending);
    // The next tick records it missed at its fire time and reports it, once.
    assert_eq!(engine.tick(at_min(14)).unwrap().missed, vec![e.id]);
    let missed = get(&engine, e.id);
    assert_eq!(missed.state, EventState::Missed);
    assert_eq!(missed.finished_at, Some(at_min(10)));
    assert_eq!(response(&missed, "a"), ResponseStatus::Confirmed);
    assert_eq!(response(&missed, "b"), ResponseStatus::Missed);
    assert!(engine.tick(at_min(15)).unwrap().is_empty());

    // Later responses of any kind get the same answer.
    for err in [
        engine.confirm(e.id, &agent("b")).unwrap_err(),
        engine.defer(e.id, &agent("b"), mins(5)).unwrap_err(),
        engine.decline(e.id, &agent("b"), None).unwrap_err(),
    ] {
        assert!(
            matches!(err, TMinusError::DeadlinePassed { ref deadline, .. } if *deadline == at_min(10)),
            "{err:?}"
        );
    }
}

fn the_deadline_is_the_fire_time_itself() {
    let (mut engine, clock) = engine();
    let e = engine
        .schedule(NewEvent {
            t_minus: mins(5),
            ..on_time(15, &["a", "b"], Quorum::Count(1))
        })
        .unwrap();
    clock.set(at_min(10) - Duration::milliseconds(1));
    engine.confirm(e.id, &agent("a")).unwrap();
    clock.set(at_min(10));
    let err = engine.confirm(e.id, &agent("b")).unwrap_err();
    assert!(
        matches!(err, TMinusError::DeadlinePassed { ref deadline, .. } if *deadline == at_min(10)),
        "{err:?}"
    );
    // The refusal wrote nothing; on-time with quorum, the next tick records
    // it fired at its fire time.
    assert_eq!(get(&engine, e.id).state, EventState::Pending);
    assert_eq!(engine.tick(at_min(11)).unwrap().fired, vec![e.id]);
    let fired = get(&engine, e.id);
    assert_eq!(fired.state, EventState::Fired);
    assert_eq!(fired.finished_at, Some(at_min(10)));
    assert_eq!(
        response(&fired, "b"),
        ResponseStatus::Pending,
        "not missed: it fired"
    );
}

fn the_refusal_does_not_depend_on_a_tick_having_run() {
    // Same late response, once with no tick and once after the tick that
    // recorded the miss: the same error, and once a tick has run, the same
    // stored outcome.
    let run = |tick_first: bool| {
        let (mut engine, clock) = engine();
        let e = engine.schedule(spec(10, &["a"], Quorum::All)).unwrap();
        if tick_first {
            engine.tick(at_min(12)).unwrap();
        }
        clock.set(at_min(13));
        let err = engine.confirm(e.id, &agent("a")).unwrap_err();
        engine.tick(at_min(13)).unwrap();
        let stored = get(&engine, e.id);
        (
            std::mem::discriminant(&err),
            err.to_string(),
            stored.state,
            stored.finished_at,
        )
    };
    let lazy = run(false);
    let ticked = run(true);
    assert_eq!(lazy.2, EventState::Missed);
    assert_eq!(lazy.3, Some(at_min(10)));
    assert_eq!(lazy.0, ticked.0);
    assert_eq!(lazy.2, ticked.2);
    assert_eq!(lazy.3, ticked.3);
}

// ---------------------------------------------------------------- audit log

fn the_audit_log_records_every_response_deferral_cancellation_and_transition_in_order() {
    let (mut engine, clock) = engine();
    let e = engine
        .schedule(NewEvent {
            organizer: agent("boss"),
            ..spec(30, &["a", "b", "c"], Quorum::Count(2))
        })
        .unwrap();
    clock.set(at_min(1));
    engine.confirm(e.id, &agent("a")).unwrap();
    clock.set(at_min(2));
    engine.defer(e.id, &agent("b"), mins(5)).unwrap();
    clock.set(at_min(3));
    engine
        .decline(e.id, &agent("c"), Some("on leave".into()))
        .unwrap();
    clock.set(at_min(4));
    engine.confirm(e.id, &agent("b")).unwrap();
    engine.tick(at_min(5)).unwrap();

    let log = engine.log(e.id).unwrap();
    let summary: Vec<(AuditAction, Option<String>, chrono::DateTime<chrono::Utc>)> = log
        .iter()
        .map(|x| (x.action, x.agent.as_ref().map(|a| a.0.clone()), x.at))
        .collect();
    assert_eq!(
        summary,
        vec![
            (AuditAction::Scheduled, Some("boss".into()), t0()),
            (AuditAction::Confirmed, Some("a".into()), at_min(1)),
            (AuditAction::Deferred, Some("b".into()), at_min(2)),
            (AuditAction::Declined, Some("c".into()), at_min(3)),
            (AuditAction::Confirmed, Some("b".into()), at_min(4)),
            (AuditAction::Fired, None, at_min(4)),
        ]
    );
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq), "seq increases");
    assert!(log.iter().all(|x| x.event == e.id));
    assert_eq!(log[2].detail["by"], serde_json::json!("5m"));
    assert_eq!(log[2].detail["total"], serde_json::json!("5m"));
    assert_eq!(
        log[2].detail["fire_time"],
        serde_json::json!("2025-06-06T15:25:00Z")
    );
    assert_eq!(log[3].detail["reason"], serde_json::json!("on leave"));
    assert_eq!(log[5].detail["reason"], serde_json::json!("quorum reached"));

    // Reading the log, ticking and refused operations never rewrite it.
    engine.tick(at_min(100)).unwrap();
    let _ = engine.confirm(e.id, &agent("a"));
    assert_eq!(engine.log(e.id).unwrap(), log);
}

fn the_audit_log_records_misses_and_cancellations() {
    let (mut engine, clock) = engine();
    let missed = engine.schedule(spec(10, &["a", "b"], Quorum::All)).unwrap();
    let cancelled = engine.schedule(spec(10, &["a"], Quorum::All)).unwrap();
    clock.set(at_min(2));
    engine
        .cancel_event(cancelled.id, Some("scrapped".into()))
        .unwrap();
    engine.tick(at_min(30)).unwrap();

    let log = engine.log(missed.id).unwrap();
    assert_eq!(
        log.iter().map(|x| x.action).collect::<Vec<_>>(),
        vec![AuditAction::Scheduled, AuditAction::Missed]
    );
    assert_eq!(log[1].at, at_min(10), "logical time: the fire time");
    assert_eq!(log[1].recorded_at, at_min(30), "written by the late tick");
    assert_eq!(
        log[1].detail["reason"],
        serde_json::json!("quorum not reached")
    );

    let log = engine.log(cancelled.id).unwrap();
    assert_eq!(
        log.iter().map(|x| x.action).collect::<Vec<_>>(),
        vec![AuditAction::Scheduled, AuditAction::Cancelled]
    );
    assert_eq!(log[1].at, at_min(2));
    assert_eq!(log[1].detail["reason"], serde_json::json!("scrapped"));
}

// ------------------------------------------------------------------ batches

fn a_batch_of_answers_commits_together_and_undoes_each_refusal_alone() {
    use t_minus::Response;
    let (mut engine, _clock) = engine();
    let e = engine
        .schedule(spec(10, &["alice", "bob", "carol"], Quorum::All))
        .unwrap();
    let other = engine
        .schedule(spec(20, &["alice", "bob"], Quorum::Count(1)))
        .unwrap();
    let (id, other_id) = (e.id.to_string(), other.id.to_string());
    let results = engine
        .respond_batch(&[
            (id.clone(), agent("alice"), Response::Confirm),
            // Refused: not an attendee.
            (id.clone(), agent("mallory"), Response::Confirm),
            (id.clone(), agent("bob"), Response::Defer(mins(2))),
            // Refused: no such event.
            ("0000dead".into(), agent("alice"), Response::Confirm),
            // Fires `other` (quorum 1, early) in the same transaction.
            (other_id.clone(), agent("bob"), Response::Confirm),
            // Refused after the settlement above: `other` is final.
            (other_id.clone(), agent("alice"), Response::Decline(None)),
            // Refused before the transaction: a zero deferral.
            (id.clone(), agent("carol"), Response::Defer(mins(0))),
            (id.clone(), agent("carol"), Response::Confirm),
        ])
        .unwrap();
    assert_eq!(results.len(), 8);
    let codes: Vec<String> = results
        .iter()
        .map(|r| match r {
            Ok(_) => "ok".to_string(),
            Err(e) => e.code().map(|c| c.to_string()).unwrap_or_default(),
        })
        .collect();
    assert_eq!(codes[0], "ok");
    assert_eq!(codes[1], "t_minus::refused::not_attendee", "{codes:?}");
    assert_eq!(codes[2], "ok");
    assert_ne!(codes[3], "ok");
    assert_eq!(codes[4], "ok");
    assert_ne!(codes[5], "ok");
    assert_ne!(codes[6], "ok");
    assert_eq!(codes[7], "ok");
    let (fired, _) = results[4].as_ref().unwrap();
    assert_eq!(fired.state, EventState::Fired);

    let stored = get(&engine, e.id);
    assert_eq!(
        stored.response_of(&agent("alice")),
        Some(ResponseStatus::Confirmed)
    );
    assert_eq!(
        stored.response_of(&agent("bob")),
        Some(ResponseStatus::Deferred(mins(2)))
    );
    assert_eq!(
        stored.response_of(&agent("carol")),
        Some(ResponseStatus::Confirmed)
    );
    assert_eq!(
        stored.scheduled_at,
        at_min(12),
        "the deferral moved it once"
    );
    // One entry per accepted answer, none for the refused ones.
    let actions = |id| {
        engine
            .log(id)
            .unwrap()
            .iter()
            .map(|x| (x.action, x.agent.as_ref().map(|a| a.to_string())))
            .collect::<Vec<_>>()
    };
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        actions(e.id),
        vec![
            (AuditAction::Scheduled, some("t-minus")),
            (AuditAction::Confirmed, some("alice")),
            (AuditAction::Deferred, some("bob")),
            (AuditAction::Confirmed, some("carol")),
        ]
    );
    let other_log = actions(other.id);
    assert_eq!(
        other_log[..2],
        [
            (AuditAction::Scheduled, some("t-minus")),
            (AuditAction::Confirmed, some("bob"))
        ]
    );
    assert_eq!(other_log[2].0, AuditAction::Fired);
    assert_eq!(other_log.len(), 3);
    // The chain holds: every entry chained after the one before it.
    let verified = engine.verify_log(None).unwrap();
    assert_eq!(verified.entries, 7, "2 scheduled, 4 answers, 1 fired");
}

// The tests above without `#[test]` run twice, as `sqlite::NAME` and
// `postgres::NAME` (tests/common/stores.rs).
common::store_tests!(
    only_attendees_may_respond,
    an_event_without_attendees_says_so,
    invalid_agent_ids_are_refused_before_anything_else,
    an_agent_may_change_its_answer_while_open,
    confirming_twice_is_harmless,
    deferral_moves_at_and_fire_time_later_cumulatively,
    a_deferred_attendee_can_confirm_after_the_original_deadline,
    deferral_past_max_defer_is_refused_and_changes_nothing,
    zero_or_negative_deferral_is_refused,
    a_response_after_the_fire_time_is_refused_with_the_deadline_even_without_a_tick,
    the_deadline_is_the_fire_time_itself,
    the_refusal_does_not_depend_on_a_tick_having_run,
    the_audit_log_records_every_response_deferral_cancellation_and_transition_in_order,
    the_audit_log_records_misses_and_cancellations,
    a_batch_of_answers_commits_together_and_undoes_each_refusal_alone,
);
