//! Quorum groups ("2 of ops AND 1 of security") on a pinned clock: an event
//! fires when every group meets its quorum, is missed at once when any
//! group's quorum becomes unreachable, counts one confirmation in every
//! group of its agent, and keeps deferral as for a plain event.
//!
//! Every test runs on SQLite and on PostgreSQL (`store_tests!` at the end).

use crate::common;

use common::*;
use t_minus::{AuditAction, EventState, GroupStatus, NewEvent, Quorum, QuorumGroup, TMinusError};

fn group(name: &str, quorum: Quorum, members: &[&str]) -> QuorumGroup {
    QuorumGroup::new(name, quorum, agents(members))
}

/// `deploy` at `fire_min`: ops 2 of 3 AND security 1 of 2.
fn two_key(fire_min: i64) -> NewEvent {
    NewEvent {
        groups: vec![
            group("ops", Quorum::Count(2), &["ops-1", "ops-2", "ops-3"]),
            group("security", Quorum::Count(1), &["sec-1", "sec-2"]),
        ],
        ..spec(fire_min, &[], Quorum::All)
    }
}

fn standing(status: &[GroupStatus]) -> Vec<(Option<&str>, usize, usize)> {
    status
        .iter()
        .map(|g| (g.name.as_deref(), g.confirmed, g.needed))
        .collect()
}

fn fires_only_when_every_group_meets_its_quorum() {
    let (mut engine, clock) = engine();
    let e = engine.schedule(two_key(10)).unwrap();
    assert_eq!(e.quorum, 3, "the total the groups need");
    assert_eq!(e.attendees.len(), 5);

    clock.set(at_min(1));
    engine.confirm(e.id, &agent("ops-1")).unwrap();
    engine.confirm(e.id, &agent("ops-2")).unwrap();
    // Three confirmations would be a plain quorum of 3, but security has none.
    let e2 = engine.confirm(e.id, &agent("ops-3")).unwrap();
    assert_eq!(e2.state, EventState::Pending);
    assert_eq!(e2.confirmed_count(), 3);
    assert!(!e2.has_quorum());
    assert_eq!(
        standing(&e2.quorum_status()),
        vec![(Some("ops"), 3, 2), (Some("security"), 0, 1)]
    );

    clock.set(at_min(2));
    let fired = engine.confirm(e.id, &agent("sec-2")).unwrap();
    assert_eq!(fired.state, EventState::Fired);
    assert_eq!(
        fired.finished_at,
        Some(at_min(2)),
        "the confirm that completed it"
    );
    let stored = get(&engine, e.id);
    assert_eq!(
        stored.groups,
        two_key(10).groups,
        "groups survive the store"
    );
    assert_eq!(stored.groups_of(&agent("sec-2")), vec!["security"]);
}

fn one_group_out_of_reach_misses_at_once() {
    let (mut engine, clock) = engine();
    let e = engine.schedule(two_key(10)).unwrap();
    clock.set(at_min(1));
    engine.confirm(e.id, &agent("ops-1")).unwrap();
    engine.confirm(e.id, &agent("ops-2")).unwrap();
    let after_one = engine.decline(e.id, &agent("sec-1"), None).unwrap();
    assert_eq!(
        after_one.state,
        EventState::Pending,
        "sec-2 may still confirm"
    );
    clock.set(at_min(3));
    let missed = engine.decline(e.id, &agent("sec-2"), None).unwrap();
    assert_eq!(missed.state, EventState::Missed, "security cannot reach 1");
    assert_eq!(missed.finished_at, Some(at_min(3)));
    let log = engine.log(e.id).unwrap();
    let last = log.last().unwrap();
    assert_eq!(last.action, AuditAction::Missed);
    assert_eq!(
        last.detail["reason"],
        serde_json::json!("quorum unreachable")
    );
}

fn a_plain_quorum_count_would_not_miss_where_a_group_does() {
    // Ops declining two of three leaves ops unable to reach 2, although
    // three agents (ops-3, sec-1, sec-2) could still give a total of 3.
    let (mut engine, _clock) = engine();
    let e = engine.schedule(two_key(10)).unwrap();
    engine.decline(e.id, &agent("ops-1"), None).unwrap();
    let missed = engine.decline(e.id, &agent("ops-2"), None).unwrap();
    assert_eq!(missed.state, EventState::Missed);
    let log = engine.log(e.id).unwrap();
    assert_eq!(log.last().unwrap().action, AuditAction::Missed);
}

fn an_agent_in_two_groups_counts_in_each() {
    let (mut engine, _clock) = engine();
    let new = NewEvent {
        groups: vec![
            group("ops", Quorum::Count(1), &["lead", "ops-1"]),
            group("security", Quorum::Count(1), &["sec-1", "lead"]),
        ],
        ..spec(10, &[], Quorum::All)
    };
    let e = engine.schedule(new).unwrap();
    let names: Vec<&str> = e.attendees.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(names, vec!["lead", "ops-1", "sec-1"], "each member once");
    assert_eq!(e.groups_of(&agent("lead")), vec!["ops", "security"]);
    let fired = engine.confirm(e.id, &agent("lead")).unwrap();
    assert_eq!(fired.state, EventState::Fired);
    assert_eq!(fired.confirmed_count(), 1, "distinct confirming agents");

    // Declining in one group declines in every group it belongs to.
    let e = engine
        .schedule(NewEvent {
            groups: vec![
                group("ops", Quorum::All, &["lead", "ops-1"]),
                group("security", Quorum::Count(1), &["lead"]),
            ],
            ..spec(10, &[], Quorum::All)
        })
        .unwrap();
    let missed = engine.decline(e.id, &agent("lead"), None).unwrap();
    assert_eq!(missed.state, EventState::Missed);
}

fn deferral_moves_the_event_and_keeps_the_member_counting() {
    let (mut engine, clock) = engine();
    let e = engine
        .schedule(NewEvent {
            fire_policy: t_minus::FirePolicy::OnTime,
            ..two_key(10)
        })
        .unwrap();
    engine.confirm(e.id, &agent("ops-1")).unwrap();
    engine.confirm(e.id, &agent("ops-2")).unwrap();
    engine.decline(e.id, &agent("sec-1"), None).unwrap();
    let deferred = engine.defer(e.id, &agent("sec-2"), mins(5)).unwrap();
    assert_eq!(
        deferred.state,
        EventState::Pending,
        "sec-2 may still confirm"
    );
    assert_eq!(deferred.fire_time(), at_min(15));
    // After the original fire time, the deferred member still answers.
    clock.set(at_min(12));
    let r = engine.tick(at_min(12)).unwrap();
    assert!(r.fired.is_empty() && r.missed.is_empty());
    let confirmed = engine.confirm(e.id, &agent("sec-2")).unwrap();
    assert_eq!(
        confirmed.state,
        EventState::Pending,
        "on-time waits for the fire time"
    );
    let r = engine.tick(at_min(15)).unwrap();
    assert_eq!(r.fired, vec![e.id]);
    assert_eq!(get(&engine, e.id).finished_at, Some(at_min(15)));
}

fn on_time_misses_when_one_group_is_short_at_the_fire_time() {
    let (mut engine, _clock) = engine();
    let e = engine
        .schedule(NewEvent {
            fire_policy: t_minus::FirePolicy::OnTime,
            ..two_key(10)
        })
        .unwrap();
    engine.confirm(e.id, &agent("ops-1")).unwrap();
    engine.confirm(e.id, &agent("ops-2")).unwrap();
    let r = engine.tick(at_min(10)).unwrap();
    assert_eq!(r.missed, vec![e.id]);
    let log = engine.log(e.id).unwrap();
    assert_eq!(
        log.last().unwrap().detail["reason"],
        serde_json::json!("quorum not reached")
    );
}

fn a_plain_event_is_one_unnamed_group() {
    let (mut engine, _clock) = engine();
    let e = engine
        .schedule(spec(10, &["alice", "bob", "carol"], Quorum::Majority))
        .unwrap();
    assert!(e.groups.is_empty());
    engine.confirm(e.id, &agent("alice")).unwrap();
    let e = get(&engine, e.id);
    assert_eq!(standing(&e.quorum_status()), vec![(None, 1, 2)]);
    assert!(e.groups_of(&agent("alice")).is_empty());
}

fn malformed_groups_are_refused_and_nothing_is_stored() {
    let (mut engine, _clock) = engine();
    let cases = [
        (
            vec![group("ops", Quorum::Count(4), &["a", "b", "c"])],
            "quorum 4 is larger than its 3 member(s)",
        ),
        (vec![group("ops", Quorum::All, &[])], "no members"),
        (vec![group("9ops", Quorum::All, &["a"])], "9ops"),
        (
            vec![
                group("ops", Quorum::All, &["a"]),
                group("ops", Quorum::All, &["b"]),
            ],
            "declared twice",
        ),
        (
            vec![group("ops", Quorum::All, &["a", "a"])],
            "duplicate attendee",
        ),
    ];
    for (groups, expected) in cases {
        let err = engine
            .schedule(NewEvent {
                groups,
                ..spec(10, &[], Quorum::All)
            })
            .unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
    }
    let mixed = engine
        .schedule(NewEvent {
            groups: vec![group("ops", Quorum::All, &["a"])],
            ..spec(10, &["b"], Quorum::All)
        })
        .unwrap_err();
    assert!(
        matches!(mixed, TMinusError::InvalidGroup { .. }),
        "{mixed:?}"
    );
    assert!(engine.list_events().unwrap().is_empty());
}

// The tests above without `#[test]` run twice, as `sqlite::NAME` and
// `postgres::NAME` (tests/common/stores.rs).
common::store_tests!(
    fires_only_when_every_group_meets_its_quorum,
    one_group_out_of_reach_misses_at_once,
    a_plain_quorum_count_would_not_miss_where_a_group_does,
    an_agent_in_two_groups_counts_in_each,
    deferral_moves_the_event_and_keeps_the_member_counting,
    on_time_misses_when_one_group_is_short_at_the_fire_time,
    a_plain_event_is_one_unnamed_group,
    malformed_groups_are_refused_and_nothing_is_stored,
);
