//! The event state machine through the engine, on a pinned clock:
//! fire policies, quorum spellings, misses, final states, cancellation,
//! laziness (the outcome does not depend on when a tick runs) and
//! exactly-once reporting.
//!
//! Every test runs on SQLite and on PostgreSQL (`store_tests!` at the end).

use crate::common;

use std::collections::HashMap;

use chrono::Duration;
use common::*;
use t_minus::{
    AuditAction, Engine, EventKind, EventState, NewEvent, Quorum, ResponseStatus, TMinusError,
    TickResult,
};
use uuid::Uuid;

// ---------------------------------------------------------------- seed

fn seed_example_confirm_confirm_tick_reports_fired() {
    let (mut engine, clock) = engine();
    let event = engine
        .schedule_event(
            EventKind::Meeting,
            at_min(10),
            mins(5),
            agent("coordinator"),
            agents(&["agent-1", "agent-2"]),
            2,
            serde_json::json!({"topic": "sprint planning"}),
        )
        .unwrap();
    assert_eq!(event.state, EventState::Pending);
    assert_eq!(event.fire_time(), at_min(5));
    assert_eq!(event.quorum, 2);

    clock.set(at_min(1));
    engine.confirm(event.id, &agent("agent-1")).unwrap();
    clock.set(at_min(2));
    engine.confirm(event.id, &agent("agent-2")).unwrap();
    let result = engine.tick(at_min(2)).unwrap();
    assert_eq!(result.fired, vec![event.id]);
    assert!(result.missed.is_empty() && result.cancelled.is_empty());

    let stored = get(&engine, event.id);
    assert_eq!(stored.state, EventState::Fired);
    assert_eq!(stored.finished_at, Some(at_min(2)));
    assert_eq!(
        stored.payload,
        serde_json::json!({"topic": "sprint planning"})
    );
    assert_eq!(stored.organizer, agent("coordinator"));
}

fn seed_example_on_a_file_store_with_the_system_clock() {
    // Exactly the README's program, against a temporary store (a file on
    // SQLite): real timestamps, with their sub-millisecond digits.
    use chrono::Utc;
    let (_store, db) = store();
    let mut engine = Engine::open(&db).unwrap();
    let event = engine
        .schedule_event(
            EventKind::Meeting,
            Utc::now() + Duration::minutes(10),
            Duration::minutes(5),
            agent("coordinator"),
            vec![agent("agent-1"), agent("agent-2")],
            2,
            serde_json::json!({"topic": "sprint planning"}),
        )
        .unwrap();
    engine.confirm(event.id, &agent("agent-1")).unwrap();
    engine.confirm(event.id, &agent("agent-2")).unwrap();
    let result = engine.tick(Utc::now()).unwrap();
    assert_eq!(result.fired, vec![event.id]);
}

// ---------------------------------------------------------------- early

fn early_fires_at_the_confirm_that_completes_quorum() {
    let (mut engine, clock) = engine();
    let e = engine
        .schedule(spec(10, &["a", "b", "c"], Quorum::Count(2)))
        .unwrap();
    clock.set(at_min(1));
    let after_a = engine.confirm(e.id, &agent("a")).unwrap();
    assert_eq!(after_a.state, EventState::Pending);
    assert_eq!(after_a.confirmed_count(), 1);
    assert_eq!(after_a.finished_at, None);

    clock.set(at_min(3));
    let after_b = engine.confirm(e.id, &agent("b")).unwrap();
    assert_eq!(after_b.state, EventState::Fired, "fires without a tick");
    assert_eq!(after_b.finished_at, Some(at_min(3)));
    assert_eq!(response(&after_b, "c"), ResponseStatus::Pending);

    // The next tick (any time later) reports it, with the confirm's time.
    let result = engine.tick(at_min(4)).unwrap();
    assert_eq!(result.fired, vec![e.id]);
    assert_eq!(result.transitions.len(), 1);
    assert_eq!(result.transitions[0].at, at_min(3));
    assert_eq!(result.transitions[0].action, AuditAction::Fired);
}

fn early_is_the_default_fire_policy() {
    let new = NewEvent::new(EventKind::Checkpoint, at_min(10));
    assert_eq!(new.fire_policy, t_minus::FirePolicy::Early);
    assert_eq!(new.quorum, Quorum::All);
}

// ---------------------------------------------------------------- on-time

fn on_time_fires_at_the_fire_time_only() {
    let (mut engine, clock) = engine();
    let e = engine
        .schedule(NewEvent {
            t_minus: mins(5),
            ..on_time(15, &["a", "b"], Quorum::All)
        })
        .unwrap();
    assert_eq!(e.fire_time(), at_min(10));
    clock.set(at_min(1));
    engine.confirm(e.id, &agent("a")).unwrap();
    clock.set(at_min(2));
    let both = engine.confirm(e.id, &agent("b")).unwrap();
    assert!(both.has_quorum());
    assert_eq!(both.state, EventState::Pending, "on-time waits with quorum");

    // Ticks before the fire time do nothing.
    for m in [2, 5, 9] {
        let result = engine.tick(at_min(m)).unwrap();
        assert!(result.is_empty(), "tick at +{m}m: {result:?}");
        assert_eq!(state(&engine, e.id), EventState::Pending);
    }
    let result = engine.tick(at_min(10) - Duration::milliseconds(1)).unwrap();
    assert!(result.is_empty());

    let result = engine.tick(at_min(10)).unwrap();
    assert_eq!(result.fired, vec![e.id]);
    let fired = get(&engine, e.id);
    assert_eq!(fired.state, EventState::Fired);
    assert_eq!(fired.finished_at, Some(at_min(10)));
}

fn on_time_without_quorum_at_the_fire_time_is_missed() {
    let (mut engine, clock) = engine();
    let e = engine
        .schedule(on_time(10, &["a", "b", "c"], Quorum::Count(2)))
        .unwrap();
    clock.set(at_min(1));
    engine.confirm(e.id, &agent("a")).unwrap();
    let result = engine.tick(at_min(10)).unwrap();
    assert_eq!(result.missed, vec![e.id]);
    let missed = get(&engine, e.id);
    assert_eq!(missed.state, EventState::Missed);
    assert_eq!(missed.finished_at, Some(at_min(10)));
    assert_eq!(response(&missed, "a"), ResponseStatus::Confirmed);
    assert_eq!(response(&missed, "b"), ResponseStatus::Missed);
    assert_eq!(response(&missed, "c"), ResponseStatus::Missed);
}

// ---------------------------------------------------------------- quorum

fn quorum_all_needs_every_attendee() {
    let (mut engine, clock) = engine();
    let e = engine
        .schedule(spec(10, &["a", "b", "c"], Quorum::All))
        .unwrap();
    assert_eq!(e.quorum, 3);
    assert_eq!(e.quorum_spec, Quorum::All);
    clock.set(at_min(1));
    engine.confirm(e.id, &agent("a")).unwrap();
    assert_eq!(
        engine.confirm(e.id, &agent("b")).unwrap().state,
        EventState::Pending
    );
    let done = engine.confirm(e.id, &agent("c")).unwrap();
    assert_eq!(done.state, EventState::Fired);
}

fn quorum_majority_is_floor_half_plus_one() {
    let (mut engine, _clock) = engine();
    for (n, expected) in [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4)] {
        let names: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let e = engine.schedule(spec(10, &refs, Quorum::Majority)).unwrap();
        assert_eq!(e.quorum, expected, "majority of {n}");
        assert_eq!(e.quorum_spec, Quorum::Majority);
        // It fires exactly at the `expected`-th confirmation.
        for (i, who) in refs.iter().enumerate().take(expected) {
            let after = engine.confirm(e.id, &agent(who)).unwrap();
            let want = if i + 1 == expected {
                EventState::Fired
            } else {
                EventState::Pending
            };
            assert_eq!(after.state, want, "majority of {n}, confirm #{}", i + 1);
        }
    }
}

fn quorum_integer_fires_at_that_count() {
    let (mut engine, _clock) = engine();
    let e = engine
        .schedule(spec(10, &["a", "b", "c", "d"], Quorum::Count(1)))
        .unwrap();
    assert_eq!(e.quorum, 1);
    let after = engine.confirm(e.id, &agent("c")).unwrap();
    assert_eq!(after.state, EventState::Fired);
    assert_eq!(after.finished_at, Some(t0()));
}

fn quorum_larger_than_attendees_is_refused_and_nothing_stored() {
    let (mut engine, _clock) = engine();
    let err = engine
        .schedule(spec(10, &["a", "b", "c"], Quorum::Count(4)))
        .unwrap_err();
    assert!(
        matches!(
            err,
            TMinusError::QuorumTooLarge {
                quorum: 4,
                attendees: 3
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("quorum 4"), "{err}");
    assert!(engine.list_events().unwrap().is_empty());
}

fn duplicate_attendee_and_bad_agent_ids_are_refused() {
    let (mut engine, _clock) = engine();
    let err = engine
        .schedule(spec(10, &["a", "b", "a"], Quorum::All))
        .unwrap_err();
    assert!(
        matches!(err, TMinusError::DuplicateAttendee { ref agent } if agent == "a"),
        "{err:?}"
    );
    for bad in ["", "   ", "has space", "tab\there"] {
        let err = engine
            .schedule(spec(10, &["ok", bad], Quorum::All))
            .unwrap_err();
        assert!(
            matches!(err, TMinusError::InvalidAgentId { .. }),
            "{bad:?}: {err:?}"
        );
    }
    let long = "x".repeat(129);
    let err = engine
        .schedule(spec(10, &[long.as_str()], Quorum::All))
        .unwrap_err();
    assert!(matches!(err, TMinusError::InvalidAgentId { .. }), "{err:?}");
    assert!(engine.list_events().unwrap().is_empty());
}

fn a_fire_time_in_the_past_is_refused() {
    let (mut engine, clock) = engine();
    clock.set(at_min(30));
    let err = engine.schedule(spec(20, &["a"], Quorum::All)).unwrap_err();
    assert!(matches!(err, TMinusError::FireTimePassed { .. }), "{err:?}");
    assert!(err.to_string().contains("2025-06-06T15:10:00Z"), "{err}");
    // `at` in the future but `at - t_minus` in the past: also refused.
    let err = engine
        .schedule(NewEvent {
            t_minus: mins(15),
            ..spec(40, &["a"], Quorum::All)
        })
        .unwrap_err();
    assert!(matches!(err, TMinusError::FireTimePassed { .. }), "{err:?}");
    assert!(engine.list_events().unwrap().is_empty());
}

// ---------------------------------------------------------------- quorum 0

fn quorum_zero_early_fires_on_schedule_and_the_next_tick_reports_it() {
    let (mut engine, _clock) = engine();
    let e = engine.schedule(spec(10, &["a"], Quorum::Count(0))).unwrap();
    assert_eq!(e.state, EventState::Fired);
    assert_eq!(e.finished_at, Some(t0()));
    // No attendees + quorum all resolves to 0 as well.
    let gate = engine
        .schedule(NewEvent::new(EventKind::Checkpoint, at_min(10)))
        .unwrap();
    assert_eq!(gate.quorum, 0);
    assert_eq!(gate.state, EventState::Fired);

    let result = engine.tick(t0()).unwrap();
    let mut fired = result.fired.clone();
    fired.sort();
    let mut want = vec![e.id, gate.id];
    want.sort();
    assert_eq!(fired, want);
    assert!(engine.tick(at_min(20)).unwrap().is_empty());
}

fn quorum_zero_on_time_is_a_timer() {
    let (mut engine, _clock) = engine();
    let e = engine
        .schedule(on_time(10, &["a", "b"], Quorum::Count(0)))
        .unwrap();
    assert_eq!(e.state, EventState::Pending);
    assert!(engine.tick(at_min(9)).unwrap().is_empty());
    assert_eq!(state(&engine, e.id), EventState::Pending);
    let result = engine.tick(at_min(25)).unwrap();
    assert_eq!(result.fired, vec![e.id]);
    let fired = get(&engine, e.id);
    assert_eq!(fired.state, EventState::Fired);
    assert_eq!(
        fired.finished_at,
        Some(at_min(10)),
        "fires at its fire time"
    );
}

// ---------------------------------------------------------------- misses

fn fire_time_passing_without_quorum_misses_and_marks_open_attendees() {
    let (mut engine, clock) = engine();
    let e = engine
        .schedule(spec(10, &["a", "b", "c", "d"], Quorum::Count(3)))
        .unwrap();
    clock.set(at_min(1));
    engine.confirm(e.id, &agent("a")).unwrap();
    engine.defer(e.id, &agent("b"), mins(2)).unwrap();
    engine.decline(e.id, &agent("c"), None).unwrap();
    // Fire time is now +12m.
    assert!(engine.tick(at_min(11)).unwrap().is_empty());
    let result = engine.tick(at_min(12)).unwrap();
    assert_eq!(result.missed, vec![e.id]);
    let missed = get(&engine, e.id);
    assert_eq!(missed.state, EventState::Missed);
    assert_eq!(missed.finished_at, Some(at_min(12)));
    assert_eq!(response(&missed, "a"), ResponseStatus::Confirmed);
    assert_eq!(response(&missed, "b"), ResponseStatus::Missed);
    assert_eq!(response(&missed, "c"), ResponseStatus::Declined);
    assert_eq!(response(&missed, "d"), ResponseStatus::Missed);
}

fn declines_that_make_quorum_unreachable_miss_at_once() {
    let (mut engine, clock) = engine();
    let e = engine
        .schedule(spec(60, &["a", "b", "c", "d"], Quorum::Count(3)))
        .unwrap();
    clock.set(at_min(1));
    engine.confirm(e.id, &agent("a")).unwrap();
    clock.set(at_min(2));
    let one = engine
        .decline(e.id, &agent("b"), Some("busy".into()))
        .unwrap();
    assert_eq!(one.state, EventState::Pending, "1 + 2 may still reach 3");
    clock.set(at_min(4));
    let two = engine.decline(e.id, &agent("c"), None).unwrap();
    assert_eq!(
        two.state,
        EventState::Missed,
        "1 + 1 < 3: missed without waiting"
    );
    assert_eq!(two.finished_at, Some(at_min(4)));
    assert_eq!(response(&two, "a"), ResponseStatus::Confirmed);
    assert_eq!(response(&two, "b"), ResponseStatus::Declined);
    assert_eq!(response(&two, "c"), ResponseStatus::Declined);
    assert_eq!(response(&two, "d"), ResponseStatus::Missed);

    // Reported by the very next tick, long before the fire time, once.
    let result = engine.tick(at_min(5)).unwrap();
    assert_eq!(result.missed, vec![e.id]);
    assert_eq!(result.transitions[0].at, at_min(4));
    assert_eq!(
        result.transitions[0].detail["reason"],
        serde_json::json!("quorum unreachable")
    );
    assert!(engine.tick(at_min(61)).unwrap().is_empty());
    assert_eq!(get(&engine, e.id).finished_at, Some(at_min(4)));
}

fn a_deferred_attendee_still_counts_as_able_to_confirm() {
    let (mut engine, clock) = engine();
    let e = engine.schedule(spec(60, &["a", "b"], Quorum::All)).unwrap();
    clock.set(at_min(1));
    let deferred = engine.defer(e.id, &agent("a"), mins(5)).unwrap();
    assert_eq!(deferred.state, EventState::Pending);
    assert!(deferred.quorum_reachable());
    // b declines: quorum 2 is now unreachable.
    let missed = engine.decline(e.id, &agent("b"), None).unwrap();
    assert_eq!(missed.state, EventState::Missed);
    assert_eq!(response(&missed, "a"), ResponseStatus::Missed);
}

// ---------------------------------------------------------------- final states

/// Three final events: fired, missed and cancelled.
fn finals(engine: &mut Engine, clock: &t_minus::FixedClock) -> [Uuid; 3] {
    let fired = engine.schedule(spec(30, &["a"], Quorum::All)).unwrap();
    let missed = engine.schedule(spec(30, &["a"], Quorum::All)).unwrap();
    let cancelled = engine.schedule(spec(30, &["a"], Quorum::All)).unwrap();
    clock.set(at_min(1));
    engine.confirm(fired.id, &agent("a")).unwrap();
    engine.decline(missed.id, &agent("a"), None).unwrap();
    engine
        .cancel_event(cancelled.id, Some("not needed".into()))
        .unwrap();
    [fired.id, missed.id, cancelled.id]
}

fn final_events_refuse_every_change() {
    let (mut engine, clock) = engine();
    let ids = finals(&mut engine, &clock);
    clock.set(at_min(2));
    for (id, word) in ids.iter().zip(["fired", "missed", "cancelled"]) {
        let before = get(&engine, *id);
        let log_before = engine.log(*id).unwrap();
        let attempts: Vec<Result<_, TMinusError>> = vec![
            engine.confirm(*id, &agent("a")),
            engine.defer(*id, &agent("a"), mins(5)),
            engine.decline(*id, &agent("a"), None),
            engine.cancel_event(*id, None),
        ];
        for (i, attempt) in attempts.into_iter().enumerate() {
            let err = attempt.unwrap_err();
            match &err {
                TMinusError::EventFinal { state, at, .. } => {
                    assert_eq!(state.as_str(), word);
                    assert_eq!(*at, Some(at_min(1)));
                }
                other => panic!("{word}, attempt {i}: expected EventFinal, got {other:?}"),
            }
            let msg = err.to_string();
            assert!(msg.contains(word) && msg.contains("never changes"), "{msg}");
        }
        assert_eq!(get(&engine, *id), before, "{word} event changed");
        assert_eq!(engine.log(*id).unwrap(), log_before, "{word} log changed");
    }
}

fn final_events_are_kept_as_history() {
    let (mut engine, clock) = engine();
    let ids = finals(&mut engine, &clock);
    engine.tick(at_min(100)).unwrap();
    engine.tick(at_min(10_000)).unwrap();
    let listed = engine.list_events().unwrap();
    assert_eq!(listed.len(), 3);
    let states: HashMap<Uuid, EventState> = listed.iter().map(|e| (e.id, e.state)).collect();
    assert_eq!(states[&ids[0]], EventState::Fired);
    assert_eq!(states[&ids[1]], EventState::Missed);
    assert_eq!(states[&ids[2]], EventState::Cancelled);
    assert!(engine.list_unfinished().unwrap().is_empty());
    for id in ids {
        assert!(engine.get_event(id).unwrap().is_some());
    }
}

// ---------------------------------------------------------------- cancel

fn cancel_takes_a_pending_event_to_cancelled_once() {
    let (mut engine, clock) = engine();
    let e = engine.schedule(spec(10, &["a", "b"], Quorum::All)).unwrap();
    clock.set(at_min(1));
    engine.confirm(e.id, &agent("a")).unwrap();
    clock.set(at_min(3));
    let cancelled = engine
        .cancel_event(e.id, Some("plans changed".into()))
        .unwrap();
    assert_eq!(cancelled.state, EventState::Cancelled);
    assert_eq!(cancelled.finished_at, Some(at_min(3)));
    // Responses stay as they were: cancellation is not a miss.
    assert_eq!(response(&cancelled, "a"), ResponseStatus::Confirmed);
    assert_eq!(response(&cancelled, "b"), ResponseStatus::Pending);

    let result = engine.tick(at_min(4)).unwrap();
    assert_eq!(result.cancelled, vec![e.id]);
    assert!(result.fired.is_empty() && result.missed.is_empty());
    // The fire time passing changes nothing.
    assert!(engine.tick(at_min(20)).unwrap().is_empty());
    assert_eq!(state(&engine, e.id), EventState::Cancelled);

    let log = engine.log(e.id).unwrap();
    let last = log.last().unwrap();
    assert_eq!(last.action, AuditAction::Cancelled);
    assert_eq!(last.at, at_min(3));
    assert_eq!(last.detail["reason"], serde_json::json!("plans changed"));
}

fn cancelling_after_the_fire_time_records_the_real_outcome_instead() {
    // The event was already decided by the clock: cancel is refused because
    // the event is final (missed at its fire time), even without a tick.
    let (mut engine, clock) = engine();
    let e = engine.schedule(spec(10, &["a"], Quorum::All)).unwrap();
    clock.set(at_min(15));
    let err = engine.cancel_event(e.id, None).unwrap_err();
    assert!(
        matches!(err, TMinusError::EventFinal { ref state, .. } if *state == EventState::Missed),
        "{err:?}"
    );
    // The refusal wrote nothing: the miss is recorded by the next tick, at
    // the fire time.
    assert_eq!(get(&engine, e.id).state, EventState::Pending);
    assert_eq!(actions(&engine, e.id), vec![AuditAction::Scheduled]);
    assert_eq!(engine.tick(at_min(16)).unwrap().missed, vec![e.id]);
    let missed = get(&engine, e.id);
    assert_eq!(missed.state, EventState::Missed);
    assert_eq!(missed.finished_at, Some(at_min(10)));
}

fn a_response_refused_after_an_unrecorded_deadline_writes_nothing() {
    let (mut engine, clock) = engine();
    let e = engine.schedule(spec(10, &["a", "b"], Quorum::All)).unwrap();
    clock.set(at_min(1));
    engine.confirm(e.id, &agent("a")).unwrap();
    let before = (get(&engine, e.id), engine.log(e.id).unwrap().len());
    clock.set(at_min(12));
    for err in [
        engine.confirm(e.id, &agent("b")).unwrap_err(),
        engine.decline(e.id, &agent("b"), None).unwrap_err(),
    ] {
        assert!(matches!(err, TMinusError::DeadlinePassed { .. }), "{err:?}");
    }
    assert_eq!(get(&engine, e.id), before.0, "the event is as it was");
    assert_eq!(engine.log(e.id).unwrap().len(), before.1, "no entry");
    let r = engine.tick(at_min(12)).unwrap();
    assert_eq!(r.missed, vec![e.id]);
    assert_eq!(get(&engine, e.id).finished_at, Some(at_min(10)));
}

fn an_event_that_opens_exactly_at_its_fire_time_is_decided_with_its_answers() {
    // `b` (quorum 1, fire time +10m) needs `a`, a timer at exactly +10m; y
    // pre-approved `b`. `b` opens at its own fire time and is decided then,
    // as at any fire time: fired on its pre-approval.
    let scenario = |b_fire: chrono::DateTime<chrono::Utc>, approve: bool| {
        let (mut engine, clock) = engine();
        let c = engine.create_campaign("edge".into()).unwrap();
        let a = engine
            .campaign_add(c.id, on_time(10, &[], Quorum::Count(0)), Some("a".into()))
            .unwrap();
        let b_spec = NewEvent {
            at: b_fire,
            ..spec(0, &["y"], Quorum::All)
        };
        let b = engine.campaign_add(c.id, b_spec, Some("b".into())).unwrap();
        engine.campaign_link(c.id, a.id, b.id).unwrap();
        clock.set(at_min(1));
        if approve {
            engine.confirm(b.id, &agent("y")).unwrap();
        }
        let r = engine.tick(at_min(10)).unwrap();
        assert_eq!(r.fired.first(), Some(&a.id));
        assert_eq!(r.opened, vec![b.id]);
        let b = get(&engine, b.id);
        let log = engine.log(b.id).unwrap();
        (
            b.state,
            b.finished_at,
            log.last().unwrap().detail["reason"].clone(),
        )
    };
    assert_eq!(
        scenario(at_min(10), true),
        (EventState::Fired, Some(at_min(10)), "quorum reached".into())
    );
    assert_eq!(
        scenario(at_min(10), false),
        (
            EventState::Missed,
            Some(at_min(10)),
            "quorum not reached".into()
        )
    );
    // Its fire time one millisecond earlier: it opens after its deadline.
    assert_eq!(
        scenario(at_min(10) - Duration::milliseconds(1), true),
        (
            EventState::Missed,
            Some(at_min(10)),
            "opened after its fire time".into()
        )
    );
}

fn unknown_event_is_an_error() {
    let (mut engine, _clock) = engine();
    let ghost = Uuid::new_v4();
    assert!(engine.get_event(ghost).unwrap().is_none());
    for err in [
        engine.confirm(ghost, &agent("a")).unwrap_err(),
        engine.cancel_event(ghost, None).unwrap_err(),
    ] {
        assert!(
            matches!(err, TMinusError::EventNotFound { ref reference } if *reference == ghost.to_string()),
            "{err:?}"
        );
    }
}

fn reasons_longer_than_their_limit_are_refused_and_nothing_stored() {
    let (mut engine, clock) = engine();
    let e = engine.schedule(spec(10, &["a"], Quorum::All)).unwrap();
    clock.set(at_min(1));
    let huge = "x".repeat(5 * 1024 * 1024);
    let err = engine
        .decline(e.id, &agent("a"), Some(huge.clone()))
        .unwrap_err();
    assert!(
        matches!(err, TMinusError::TextTooLong { max: 4096, .. }),
        "{err:?}"
    );
    let err = engine.cancel_event(e.id, Some(huge)).unwrap_err();
    assert!(matches!(err, TMinusError::TextTooLong { .. }), "{err:?}");
    assert_eq!(actions(&engine, e.id), vec![AuditAction::Scheduled]);
    assert_eq!(get(&engine, e.id).state, EventState::Pending);
    // At the limit it is accepted.
    engine
        .decline(e.id, &agent("a"), Some("x".repeat(4096)))
        .unwrap();
}

fn text_fields_over_their_limits_are_refused_and_nothing_stored() {
    use t_minus::event_check::{MAX_DESCRIPTION_BYTES, MAX_KIND_BYTES, MAX_PAYLOAD_BYTES};
    let (mut engine, _clock) = engine();
    let long_kind = NewEvent {
        kind: EventKind::Custom("k".repeat(MAX_KIND_BYTES + 1)),
        ..spec(10, &["a"], Quorum::All)
    };
    let long_description = NewEvent {
        description: Some("d".repeat(MAX_DESCRIPTION_BYTES + 1)),
        ..spec(10, &["a"], Quorum::All)
    };
    // A string of n bytes is n + 2 bytes of JSON.
    let big_payload = NewEvent {
        payload: serde_json::json!("p".repeat(MAX_PAYLOAD_BYTES - 1)),
        ..spec(10, &["a"], Quorum::All)
    };
    for (new, field, len, max) in [
        (long_kind, "kind", MAX_KIND_BYTES + 1, MAX_KIND_BYTES),
        (
            long_description,
            "description",
            MAX_DESCRIPTION_BYTES + 1,
            MAX_DESCRIPTION_BYTES,
        ),
        (
            big_payload,
            "payload",
            MAX_PAYLOAD_BYTES + 1,
            MAX_PAYLOAD_BYTES,
        ),
    ] {
        let err = engine.schedule(new).unwrap_err();
        assert!(
            matches!(err, TMinusError::TextTooLong { field: f, len: l, max: m } if f == field && l == len && m == max),
            "{field}: {err:?}"
        );
        assert_eq!(
            miette::Diagnostic::code(&err).unwrap().to_string(),
            "t_minus::input::too_long"
        );
    }
    assert_eq!(engine.list_events().unwrap().len(), 0);
    // At the limits they are accepted.
    engine
        .schedule(NewEvent {
            kind: EventKind::Custom("k".repeat(MAX_KIND_BYTES)),
            description: Some("d".repeat(MAX_DESCRIPTION_BYTES)),
            payload: serde_json::json!("p".repeat(MAX_PAYLOAD_BYTES - 2)),
            ..spec(10, &["a"], Quorum::All)
        })
        .unwrap();
}

// ---------------------------------------------------------------- laziness

type Time = chrono::DateTime<chrono::Utc>;
/// An event's outcome: state, finished_at and responses.
type Outcome = (EventState, Option<Time>, Vec<ResponseStatus>);

/// Runs one scenario and ticks once at `tick_at`; returns every event's
/// outcome and the transitions reported.
fn scenario(tick_at: Time) -> (Vec<Outcome>, Vec<(AuditAction, Time)>) {
    let (mut engine, clock) = engine();
    let ids = [
        // on-time with quorum → fired at +10m
        engine
            .schedule(on_time(10, &["a", "b"], Quorum::Count(1)))
            .unwrap()
            .id,
        // early without quorum → missed at +10m
        engine
            .schedule(spec(10, &["a", "b"], Quorum::All))
            .unwrap()
            .id,
        // on-time quorum 0 timer → fired at +10m
        engine
            .schedule(on_time(10, &["a"], Quorum::Count(0)))
            .unwrap()
            .id,
        // early with quorum at +2m → fired at +2m
        engine
            .schedule(spec(10, &["a", "b"], Quorum::Count(1)))
            .unwrap()
            .id,
        // deferred to +15m, not confirmed → missed at +15m
        engine.schedule(spec(10, &["a"], Quorum::All)).unwrap().id,
    ];
    clock.set(at_min(2));
    engine.confirm(ids[0], &agent("a")).unwrap();
    engine.confirm(ids[1], &agent("a")).unwrap();
    engine.confirm(ids[3], &agent("b")).unwrap();
    engine.defer(ids[4], &agent("a"), mins(5)).unwrap();
    let result = engine.tick(tick_at).unwrap();
    let reported = result
        .transitions
        .iter()
        .map(|t| (t.action, t.at))
        .collect();
    let outcome = ids
        .iter()
        .map(|id| {
            let e = get(&engine, *id);
            (
                e.state,
                e.finished_at,
                e.attendees.iter().map(|(_, s)| *s).collect(),
            )
        })
        .collect();
    (outcome, reported)
}

fn outcome_does_not_depend_on_when_the_tick_runs() {
    let on_time_tick = scenario(at_min(15));
    let late_tick = scenario(at_min(75));
    let much_later = scenario(at_min(60 * 24 * 30));
    assert_eq!(on_time_tick, late_tick);
    assert_eq!(on_time_tick, much_later);
    let states: Vec<_> = on_time_tick.0.iter().map(|(s, f, _)| (*s, *f)).collect();
    assert_eq!(
        states,
        vec![
            (EventState::Fired, Some(at_min(10))),
            (EventState::Missed, Some(at_min(10))),
            (EventState::Fired, Some(at_min(10))),
            (EventState::Fired, Some(at_min(2))),
            (EventState::Missed, Some(at_min(15))),
        ]
    );
}

fn tick_at_fire_time_and_an_hour_later_agree() {
    for policy_on_time in [false, true] {
        let run = |tick_at| {
            let (mut engine, clock) = engine();
            let new = if policy_on_time {
                on_time(10, &["a", "b", "c"], Quorum::Majority)
            } else {
                spec(10, &["a", "b", "c"], Quorum::All)
            };
            let e = engine.schedule(new).unwrap();
            clock.set(at_min(3));
            engine.confirm(e.id, &agent("a")).unwrap();
            engine.confirm(e.id, &agent("b")).unwrap();
            let result = engine.tick(tick_at).unwrap();
            let stored = get(&engine, e.id);
            (
                stored.state,
                stored.finished_at,
                stored.attendees,
                result.fired.len(),
                result.missed.len(),
            )
        };
        let punctual = run(at_min(10));
        let late = run(at_min(70));
        assert_eq!(punctual, late, "on_time={policy_on_time}");
        if policy_on_time {
            assert_eq!(
                (punctual.0, punctual.1),
                (EventState::Fired, Some(at_min(10)))
            );
        } else {
            assert_eq!(
                (punctual.0, punctual.1),
                (EventState::Missed, Some(at_min(10)))
            );
        }
    }
}

// ---------------------------------------------------------------- exactly once

fn every_transition_is_reported_by_exactly_one_tick() {
    let (mut engine, clock) = engine();
    let mut ids = Vec::new();
    for i in 0..30i64 {
        let new = match i % 3 {
            0 => on_time(5 + i, &["a", "b"], Quorum::Count(1)),
            1 => spec(5 + i, &["a", "b"], Quorum::All),
            _ => on_time(5 + i, &["a"], Quorum::Count(0)),
        };
        ids.push(engine.schedule(new).unwrap().id);
    }
    clock.set(at_min(1));
    for (i, id) in ids.iter().enumerate() {
        if i % 3 == 0 {
            engine.confirm(*id, &agent("a")).unwrap();
        }
    }
    let mut seen: HashMap<(Uuid, AuditAction), usize> = HashMap::new();
    let mut record = |r: &TickResult| {
        for t in &r.transitions {
            *seen.entry((t.event, t.action)).or_default() += 1;
        }
        // The id lists and the transitions agree.
        assert_eq!(
            r.fired.len() + r.missed.len() + r.cancelled.len() + r.opened.len(),
            r.transitions.len()
        );
    };
    // Ticks at every minute, some repeated at the same instant, and beyond.
    for m in [
        0, 4, 5, 5, 6, 10, 10, 20, 21, 34, 35, 35, 36, 100, 100, 1000,
    ] {
        record(&engine.tick(at_min(m)).unwrap());
    }
    assert_eq!(seen.len(), 30, "{seen:?}");
    for (i, id) in ids.iter().enumerate() {
        let want = if i % 3 == 1 {
            AuditAction::Missed
        } else {
            AuditAction::Fired
        };
        assert_eq!(seen.get(&(*id, want)), Some(&1), "event #{i}");
    }
    assert!(seen.values().all(|n| *n == 1));
}

fn a_missed_event_is_reported_once_never_again() {
    let (mut engine, _clock) = engine();
    let e = engine.schedule(spec(10, &["a"], Quorum::All)).unwrap();
    let first = engine.tick(at_min(10)).unwrap();
    assert_eq!(first.missed, vec![e.id]);
    for m in [10, 11, 60, 600] {
        let again = engine.tick(at_min(m)).unwrap();
        assert!(
            again.missed.is_empty() && again.is_empty(),
            "+{m}m: {again:?}"
        );
    }
    // The audit log holds one miss.
    let misses = actions(&engine, e.id)
        .into_iter()
        .filter(|a| *a == AuditAction::Missed)
        .count();
    assert_eq!(misses, 1);
}

fn a_transition_recorded_by_a_response_is_reported_by_the_next_tick_only() {
    let (mut engine, clock) = engine();
    let e = engine.schedule(spec(10, &["a"], Quorum::All)).unwrap();
    clock.set(at_min(1));
    engine.confirm(e.id, &agent("a")).unwrap();
    assert_eq!(engine.tick(at_min(1)).unwrap().fired, vec![e.id]);
    assert!(engine.tick(at_min(1)).unwrap().is_empty());
    assert!(engine.tick(at_min(10)).unwrap().is_empty());
}

// The tests above without `#[test]` run twice, as `sqlite::NAME` and
// `postgres::NAME` (tests/common/stores.rs).
common::store_tests!(
    text_fields_over_their_limits_are_refused_and_nothing_stored,
    seed_example_confirm_confirm_tick_reports_fired,
    seed_example_on_a_file_store_with_the_system_clock,
    early_fires_at_the_confirm_that_completes_quorum,
    early_is_the_default_fire_policy,
    on_time_fires_at_the_fire_time_only,
    on_time_without_quorum_at_the_fire_time_is_missed,
    quorum_all_needs_every_attendee,
    quorum_majority_is_floor_half_plus_one,
    quorum_integer_fires_at_that_count,
    quorum_larger_than_attendees_is_refused_and_nothing_stored,
    duplicate_attendee_and_bad_agent_ids_are_refused,
    a_fire_time_in_the_past_is_refused,
    quorum_zero_early_fires_on_schedule_and_the_next_tick_reports_it,
    quorum_zero_on_time_is_a_timer,
    fire_time_passing_without_quorum_misses_and_marks_open_attendees,
    declines_that_make_quorum_unreachable_miss_at_once,
    a_deferred_attendee_still_counts_as_able_to_confirm,
    final_events_refuse_every_change,
    final_events_are_kept_as_history,
    cancel_takes_a_pending_event_to_cancelled_once,
    cancelling_after_the_fire_time_records_the_real_outcome_instead,
    a_response_refused_after_an_unrecorded_deadline_writes_nothing,
    an_event_that_opens_exactly_at_its_fire_time_is_decided_with_its_answers,
    reasons_longer_than_their_limit_are_refused_and_nothing_stored,
    unknown_event_is_an_error,
    outcome_does_not_depend_on_when_the_tick_runs,
    tick_at_fire_time_and_an_hour_later_agree,
    every_transition_is_reported_by_exactly_one_tick,
    a_missed_event_is_reported_once_never_again,
    a_transition_recorded_by_a_response_is_reported_by_the_next_tick_only,
);
