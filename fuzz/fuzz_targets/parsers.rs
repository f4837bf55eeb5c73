//! The command line's parsers on arbitrary text: durations, times, agent
//! lists, quorums, and event / campaign / target references resolved against
//! a small in-memory store.
#![no_main]

use std::cell::RefCell;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use libfuzzer_sys::fuzz_target;
use t_minus::agent::parse_agent_list;
use t_minus::duration::{format_duration, parse_duration, MAX_DURATION_DAYS};
use t_minus::{AgentId, Engine, EventKind, FixedClock, NewEvent, Quorum, Target, TimeSpec};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-06-06T14:50:00Z")
        .expect("valid time")
        .with_timezone(&Utc)
}

/// A store with a campaign `release` (events `build`, `deploy`), a standalone
/// event, and a campaign whose name looks like a hex prefix (`abcd`).
fn engine() -> Engine {
    let mut engine = Engine::in_memory()
        .expect("in-memory store")
        .with_clock(Arc::new(FixedClock::new(now())));
    let release = engine.create_campaign("release".into()).expect("campaign");
    for name in ["build", "deploy"] {
        let mut new = NewEvent::new(EventKind::Checkpoint, now() + Duration::minutes(10));
        new.attendees = vec![AgentId("alice".into())];
        engine
            .campaign_add(release.id, new, Some(name.into()))
            .expect("event");
    }
    engine.create_campaign("abcd".into()).expect("campaign");
    engine
        .schedule(NewEvent::new(
            EventKind::Meeting,
            now() + Duration::hours(1),
        ))
        .expect("event");
    engine
}

thread_local! {
    static ENGINE: RefCell<Engine> = RefCell::new(engine());
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok(d) = parse_duration(text) {
        assert!(d >= Duration::zero(), "negative duration from {text:?}");
        assert!(
            d <= Duration::days(MAX_DURATION_DAYS),
            "over the limit: {text:?}"
        );
        // What we print must read back as the same duration.
        let shown = format_duration(d);
        assert_eq!(parse_duration(&shown).ok(), Some(d), "{text:?} → {shown:?}");
    }

    if let Ok(t) = TimeSpec::parse(text) {
        let _ = t.to_string();
        let _ = t.resolve(now());
        let _ = t.resolve(DateTime::<Utc>::MAX_UTC);
        let _ = t.resolve(DateTime::<Utc>::MIN_UTC);
    }

    if let Ok(agents) = parse_agent_list(text) {
        for a in &agents {
            assert!(a.validate().is_ok(), "{a:?}");
        }
    }
    if let Ok(a) = text.parse::<AgentId>() {
        assert!(a.validate().is_ok());
    }

    if let Ok(q) = text.parse::<Quorum>() {
        for n in [0, 1, 3, usize::MAX] {
            if let Ok(k) = q.resolve(n) {
                assert!(k <= n, "{q:?} of {n} = {k}");
            }
        }
        let _ = q.to_string();
    }

    let _ = text.parse::<EventKind>().map(|k| k.to_string());

    ENGINE.with(|cell| {
        let mut engine = cell.borrow_mut();
        let _ = engine.resolve_event(text);
        let _ = engine.resolve_campaign(text);
        match engine.resolve_target(text) {
            Ok(Target::Event(id)) => assert!(engine.get_event(id).expect("read").is_some()),
            Ok(Target::Campaign(id)) => assert!(engine.get_campaign(id).expect("read").is_some()),
            Err(_) => {}
        }
    });
});
