//! Manifest events through their lifecycle: relative times count from the
//! moment an event opens, with the clock pinned.
//!
//! Every test runs on SQLite and on PostgreSQL (`store_tests!` at the end).

use crate::common::{self, t0};

use chrono::Duration;
use t_minus::manifest::{self, ValidateOptions};
use t_minus::plan::PlanOptions;
use t_minus::{AgentId, Engine, EventState, FixedClock};

const MANIFEST: &str = r#"
campaign: chain
events:
  first:
    at: +10m
    attendees: [a]
  second:
    needs: [first]
    at: +20m
    t_minus: 5m
    attendees: [b]
  third:
    needs: [second]
    at: +1m
    quorum: 0
    fire: on-time
"#;

/// `MANIFEST` applied to a fresh store of the test's backend, at `t0`.
fn applied() -> (Engine, FixedClock) {
    let (mut engine, clock) = common::engine_at(t0());
    let valid = manifest::validate(
        &manifest::parse_str("chain.yaml", MANIFEST),
        &ValidateOptions::default(),
    )
    .expect("valid manifest");
    engine
        .apply_manifests(&valid, &PlanOptions::default())
        .expect("apply");
    (engine, clock)
}

fn a_relative_time_counts_from_the_moment_the_event_opens() {
    let (mut engine, clock) = applied();
    let first = engine.resolve_event("chain/first").unwrap();
    let second = engine.resolve_event("chain/second").unwrap();
    let e = engine.get_event(first).unwrap().unwrap();
    assert_eq!(e.fire_deadline(), Some(t0() + Duration::minutes(10)));
    let e = engine.get_event(second).unwrap().unwrap();
    assert_eq!(e.state, EventState::Blocked);
    assert_eq!(e.fire_deadline(), None, "unknown while blocked");

    // `first` fires at 12:03, so `second` opens then: at 12:23, fire 12:18.
    clock.set(t0() + Duration::minutes(3));
    engine.confirm(first, &AgentId("a".into())).unwrap();
    let e = engine.get_event(second).unwrap().unwrap();
    assert_eq!(e.state, EventState::Pending);
    assert_eq!(e.started_at, Some(t0() + Duration::minutes(3)));
    assert_eq!(e.scheduled_at, t0() + Duration::minutes(23));
    assert_eq!(e.fire_deadline(), Some(t0() + Duration::minutes(18)));
    assert_eq!(
        engine.next_fire_time(None).unwrap(),
        Some(t0() + Duration::minutes(18))
    );

    // Nothing happens before the fire time …
    let r = engine.tick(t0() + Duration::minutes(17)).unwrap();
    assert!(r.missed.is_empty());
    // … and a late tick records the miss at the fire time, cancelling `third`.
    let r = engine.tick(t0() + Duration::hours(2)).unwrap();
    assert_eq!(r.missed, vec![second]);
    assert_eq!(r.cancelled.len(), 1);
    let e = engine.get_event(second).unwrap().unwrap();
    assert_eq!(e.finished_at, Some(t0() + Duration::minutes(18)));
}

fn a_deferral_of_a_blocked_relative_event_counts_after_it_opens() {
    let (mut engine, clock) = applied();
    let first = engine.resolve_event("chain/first").unwrap();
    let second = engine.resolve_event("chain/second").unwrap();
    engine
        .defer(second, &AgentId("b".into()), Duration::minutes(7))
        .unwrap();
    clock.set(t0() + Duration::minutes(1));
    engine.confirm(first, &AgentId("a".into())).unwrap();
    let e = engine.get_event(second).unwrap().unwrap();
    // opened 12:01 + 20m + 7m deferral = 12:28; fire 12:23.
    assert_eq!(e.scheduled_at, t0() + Duration::minutes(28));
    assert_eq!(e.fire_deadline(), Some(t0() + Duration::minutes(23)));
}

fn an_on_time_quorum_zero_timer_fires_at_its_relative_fire_time() {
    let (mut engine, clock) = applied();
    let first = engine.resolve_event("chain/first").unwrap();
    let second = engine.resolve_event("chain/second").unwrap();
    let third = engine.resolve_event("chain/third").unwrap();
    clock.set(t0() + Duration::minutes(1));
    engine.confirm(first, &AgentId("a".into())).unwrap();
    clock.set(t0() + Duration::minutes(2));
    engine.confirm(second, &AgentId("b".into())).unwrap();
    // `third` opened at 12:02: +1m, no countdown → fires at 12:03 exactly.
    let r = engine
        .tick(t0() + Duration::minutes(2) + Duration::seconds(59))
        .unwrap();
    assert!(!r.fired.contains(&third));
    let r = engine.tick(t0() + Duration::minutes(3)).unwrap();
    assert_eq!(r.fired, vec![third]);
    let e = engine.get_event(third).unwrap().unwrap();
    assert_eq!(e.finished_at, Some(t0() + Duration::minutes(3)));
}

// The tests above without `#[test]` run twice, as `sqlite::NAME` and
// `postgres::NAME` (tests/common/stores.rs).
common::store_tests!(
    a_relative_time_counts_from_the_moment_the_event_opens,
    a_deferral_of_a_blocked_relative_event_counts_after_it_opens,
    an_on_time_quorum_zero_timer_fires_at_its_relative_fire_time,
);
