//! Gates beyond the quorum on a pinned clock: four eyes (the requester may
//! not answer), lazy consensus (fires at the fire time unless someone
//! declined) and time windows (fires only inside one).
//!
//! Every test runs on SQLite and on PostgreSQL (`store_tests!` at the end).

use crate::common;

use chrono::{DateTime, TimeZone, Utc};
use common::*;
use t_minus::gate::{Gates, Window};
use t_minus::{AuditAction, EventState, FirePolicy, NewEvent, Quorum, QuorumGroup, TMinusError};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn windows(list: &[&str]) -> Vec<Window> {
    list.iter().map(|w| w.parse().unwrap()).collect()
}

/// `event` gated to fire only inside `list`'s windows.
fn in_windows(list: &[&str], event: NewEvent) -> NewEvent {
    NewEvent {
        gates: Gates {
            windows: windows(list),
            ..Gates::default()
        },
        ..event
    }
}

/// A four-eyes event requested by alice, attended by alice, bob and carol.
fn four_eyes(quorum: Quorum) -> NewEvent {
    NewEvent {
        organizer: agent("alice"),
        gates: Gates {
            four_eyes: true,
            ..Gates::default()
        },
        ..spec(10, &["alice", "bob", "carol"], quorum)
    }
}

fn four_eyes_refuses_the_requesters_own_answer() {
    let (mut engine, clock) = engine();
    let e = engine.schedule(four_eyes(Quorum::Count(2))).unwrap();
    clock.set(at_min(1));
    for answer in [
        engine.confirm(e.id, &agent("alice")),
        engine.decline(e.id, &agent("alice"), None),
        engine.defer(e.id, &agent("alice"), mins(5)),
    ] {
        let err = answer.unwrap_err();
        assert!(matches!(err, TMinusError::FourEyes { .. }), "{err:?}");
        assert!(err.to_string().contains("alice requested event"), "{err}");
    }
    let stored = get(&engine, e.id);
    assert_eq!(stored.last_response_at, None, "nothing recorded");
    assert_eq!(actions(&engine, e.id), vec![AuditAction::Scheduled]);
    engine.confirm(e.id, &agent("bob")).unwrap();
    let fired = engine.confirm(e.id, &agent("carol")).unwrap();
    assert_eq!(fired.state, EventState::Fired);
    let log = engine.log(e.id).unwrap();
    assert_eq!(log[0].detail["four_eyes"], true);
    assert_eq!(log[0].detail["requested_by"], "alice");
    assert!(get(&engine, e.id).gates.four_eyes, "kept in the store");
}

fn a_four_eyes_quorum_needing_the_requester_is_refused() {
    let (mut engine, _clock) = engine();
    let err = engine.schedule(four_eyes(Quorum::All)).unwrap_err();
    assert!(
        matches!(
            err,
            TMinusError::FourEyesQuorum {
                needed: 3,
                others: 2,
                ..
            }
        ),
        "{err:?}"
    );
    // Groups: alice is the only member of `security`.
    let err = engine
        .schedule(NewEvent {
            groups: vec![
                QuorumGroup::new("ops", Quorum::Count(1), agents(&["bob", "carol"])),
                QuorumGroup::new("security", Quorum::Count(1), agents(&["alice"])),
            ],
            attendees: Vec::new(),
            ..four_eyes(Quorum::All)
        })
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(&err, TMinusError::FourEyesQuorum { group: Some(g), .. } if g == "security"),
        "{err:?}"
    );
    assert!(engine.list_events().unwrap().is_empty(), "nothing stored");
    // A requester who does not attend leaves the quorum as it is.
    let ok = engine
        .schedule(NewEvent {
            organizer: agent("dave"),
            ..four_eyes(Quorum::All)
        })
        .unwrap();
    assert_eq!(ok.quorum, 3);
}

fn lazy(fire_min: i64, attendees: &[&str]) -> NewEvent {
    NewEvent {
        fire_policy: FirePolicy::Lazy,
        ..spec(fire_min, attendees, Quorum::All)
    }
}

fn lazy_fires_at_the_fire_time_without_confirmations() {
    let (mut engine, clock) = engine();
    let e = engine.schedule(lazy(10, &["alice", "bob"])).unwrap();
    clock.set(at_min(2));
    // A confirmation is recorded, not needed.
    let after = engine.confirm(e.id, &agent("alice")).unwrap();
    assert_eq!(after.state, EventState::Pending);
    assert!(engine.tick(at_min(9)).unwrap().fired.is_empty());
    let tick = engine.tick(at_min(12)).unwrap();
    assert_eq!(tick.fired, vec![e.id]);
    let fired = get(&engine, e.id);
    assert_eq!(fired.state, EventState::Fired);
    assert_eq!(fired.finished_at, Some(at_min(10)), "at the fire time");
    let log = engine.log(e.id).unwrap();
    assert_eq!(log[0].detail["fire"], "lazy");
    assert_eq!(
        log.last().unwrap().detail["reason"],
        "no one declined (lazy consensus)"
    );
}

fn lazy_one_decline_misses_at_once() {
    let (mut engine, clock) = engine();
    let e = engine
        .schedule(lazy(10, &["alice", "bob", "carol"]))
        .unwrap();
    clock.set(at_min(1));
    engine.confirm(e.id, &agent("alice")).unwrap();
    engine.confirm(e.id, &agent("bob")).unwrap();
    clock.set(at_min(3));
    let missed = engine
        .decline(e.id, &agent("carol"), Some("not yet".into()))
        .unwrap();
    assert_eq!(missed.state, EventState::Missed);
    assert_eq!(missed.finished_at, Some(at_min(3)), "at the decline");
    let log = engine.log(e.id).unwrap();
    assert_eq!(
        log.last().unwrap().detail["reason"],
        "declined (lazy consensus)"
    );
}

/// An early event with quorum outside its windows waits for the next
/// opening before its fire time, and fires then.
fn early_with_quorum_waits_for_the_next_window() {
    // t0 is Friday 2025-06-06 14:50 UTC; the window opens Monday 09:00 UTC.
    let (mut engine, clock) = engine();
    let monday = utc("2025-06-09T09:00:00Z");
    let e = engine
        .schedule(in_windows(
            &["Mon 09:00-10:00 UTC"],
            NewEvent {
                at: utc("2025-06-10T12:00:00Z"),
                ..spec(0, &["alice", "bob"], Quorum::All)
            },
        ))
        .unwrap();
    assert_eq!(e.may_fire_next(at_min(0)), Some(monday));
    clock.set(at_min(1));
    engine.confirm(e.id, &agent("alice")).unwrap();
    let held = engine.confirm(e.id, &agent("bob")).unwrap();
    assert_eq!(held.state, EventState::Pending, "quorum, but no window");
    assert!(held.has_quorum());
    assert_eq!(
        engine.next_fire_time(None).unwrap(),
        Some(monday),
        "the next tick has work at the opening"
    );
    assert!(engine
        .tick(monday - chrono::Duration::minutes(1))
        .unwrap()
        .fired
        .is_empty());
    let tick = engine.tick(monday + chrono::Duration::hours(2)).unwrap();
    assert_eq!(tick.fired, vec![e.id]);
    let fired = get(&engine, e.id);
    assert_eq!(fired.finished_at, Some(monday), "at the opening");
    assert_eq!(
        engine.log(e.id).unwrap().last().unwrap().detail["reason"],
        "quorum reached, window opened"
    );
    assert_eq!(
        engine.log(e.id).unwrap()[0].detail["windows"],
        serde_json::json!(["Mon 09:00-10:00 UTC"])
    );
}

fn early_without_an_opening_before_the_fire_time_is_missed_then() {
    let (mut engine, clock) = engine();
    // Fire time Saturday noon; the window opens only on Mondays.
    let saturday = utc("2025-06-07T12:00:00Z");
    let e = engine
        .schedule(in_windows(
            &["Mon 09:00-10:00 UTC"],
            NewEvent {
                at: saturday,
                ..spec(0, &["alice"], Quorum::All)
            },
        ))
        .unwrap();
    assert_eq!(e.may_fire_next(at_min(0)), None);
    clock.set(at_min(1));
    let held = engine.confirm(e.id, &agent("alice")).unwrap();
    assert_eq!(held.state, EventState::Pending);
    let tick = engine.tick(saturday).unwrap();
    assert_eq!(tick.missed, vec![e.id]);
    let missed = get(&engine, e.id);
    assert_eq!(missed.finished_at, Some(saturday));
    assert_eq!(
        engine.log(e.id).unwrap().last().unwrap().detail["reason"],
        "no window opened before the fire time"
    );
}

fn an_early_event_inside_its_window_fires_at_once() {
    let (mut engine, clock) = engine();
    // Friday 14:50 UTC is 16:50 in Berlin (summer time): inside.
    let e = engine
        .schedule(in_windows(
            &["Mon-Fri 09:00-17:00 Europe/Berlin"],
            spec(60, &["alice"], Quorum::All),
        ))
        .unwrap();
    clock.set(at_min(5));
    let fired = engine.confirm(e.id, &agent("alice")).unwrap();
    assert_eq!(fired.state, EventState::Fired);
    assert_eq!(fired.finished_at, Some(at_min(5)));
}

fn on_time_or_lazy_outside_every_window_is_refused() {
    let (mut engine, _clock) = engine();
    for policy in [FirePolicy::OnTime, FirePolicy::Lazy] {
        // The fire time, Friday 15:50 UTC, is 17:50 in Berlin: outside.
        let err = engine
            .schedule(in_windows(
                &["Mon-Fri 09:00-17:00 Europe/Berlin"],
                NewEvent {
                    fire_policy: policy,
                    ..spec(60, &["alice"], Quorum::All)
                },
            ))
            .unwrap_err();
        assert!(
            matches!(err, TMinusError::OutsideWindows { .. }),
            "{policy}: {err:?}"
        );
    }
    assert!(engine.list_events().unwrap().is_empty(), "nothing stored");
    // Inside the window (16:00 Berlin), the same event is accepted and
    // fires on time.
    let e = engine
        .schedule(in_windows(
            &["Mon-Fri 09:00-17:00 Europe/Berlin"],
            NewEvent {
                fire_policy: FirePolicy::OnTime,
                ..spec(0, &[], Quorum::All)
            },
        ))
        .map(|_| ());
    // A fire time of now is refused as passed, not for the window.
    assert!(
        matches!(e, Err(TMinusError::FireTimePassed { .. })),
        "{e:?}"
    );
    let ok = engine
        .schedule(in_windows(
            &["Mon-Fri 09:00-17:00 Europe/Berlin"],
            NewEvent {
                fire_policy: FirePolicy::OnTime,
                ..spec(5, &["alice"], Quorum::All)
            },
        ))
        .unwrap();
    assert_eq!(ok.may_fire_next(at_min(0)), Some(at_min(5)));
}

/// A window across the change to summer time opens at the end of the
/// skipped hour, in the store as in the library.
fn a_window_across_the_change_to_summer_time_opens_after_the_skipped_hour() {
    // Berlin skips 02:00-03:00 on Sunday 2026-03-29.
    let saturday = Utc.with_ymd_and_hms(2026, 3, 28, 12, 0, 0).unwrap();
    let (mut engine, clock) = engine_at(saturday);
    let e = engine
        .schedule(in_windows(
            &["Sun 02:30-04:00 Europe/Berlin"],
            NewEvent::new(
                t_minus::EventKind::Deploy,
                Utc.with_ymd_and_hms(2026, 3, 30, 0, 0, 0).unwrap(),
            ),
        ))
        .unwrap();
    clock.set(saturday + mins(1));
    // No attendees, quorum all of none: quorum holds from the start.
    let opening = utc("2026-03-29T01:00:00Z");
    assert_eq!(engine.next_fire_time(None).unwrap(), Some(opening));
    let tick = engine.tick(opening + mins(30)).unwrap();
    assert_eq!(tick.fired, vec![e.id]);
    assert_eq!(get(&engine, e.id).finished_at, Some(opening));
}

// The tests above without `#[test]` run twice, as `sqlite::NAME` and
// `postgres::NAME` (tests/common/stores.rs).
common::store_tests!(
    four_eyes_refuses_the_requesters_own_answer,
    a_four_eyes_quorum_needing_the_requester_is_refused,
    lazy_fires_at_the_fire_time_without_confirmations,
    lazy_one_decline_misses_at_once,
    early_with_quorum_waits_for_the_next_window,
    early_without_an_opening_before_the_fire_time_is_missed_then,
    an_early_event_inside_its_window_fires_at_once,
    on_time_or_lazy_outside_every_window_is_refused,
    a_window_across_the_change_to_summer_time_opens_after_the_skipped_hour,
);
