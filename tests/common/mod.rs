//! Shared helpers for the in-process engine tests: a pinned clock, engines
//! over an in-memory or temporary-file store, and short constructors.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use t_minus::{
    AgentId, AuditAction, Engine, EventKind, EventState, FirePolicy, FixedClock, NewEvent, Quorum,
    TMinusEvent,
};
use uuid::Uuid;

/// The pinned start of every test: 2025-06-06T12:00:00Z.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 6, 12, 0, 0).unwrap()
}

/// `t0` plus `m` minutes.
pub fn at_min(m: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(m)
}

/// Minutes as a duration.
pub fn mins(m: i64) -> Duration {
    Duration::minutes(m)
}

/// An agent id.
pub fn agent(s: &str) -> AgentId {
    AgentId(s.to_string())
}

/// Several agent ids.
pub fn agents(names: &[&str]) -> Vec<AgentId> {
    names.iter().map(|n| agent(n)).collect()
}

/// An in-memory engine and the clock it reads, pinned at `t0`.
pub fn engine() -> (Engine, FixedClock) {
    let clock = FixedClock::new(t0());
    let engine = Engine::in_memory()
        .expect("in-memory engine")
        .with_clock(Arc::new(clock.clone()));
    (engine, clock)
}

/// An engine over the store file at `path`, on `clock`.
pub fn file_engine(path: &Path, clock: &FixedClock) -> Engine {
    Engine::new(path)
        .expect("open store")
        .with_clock(Arc::new(clock.clone()))
}

/// A temporary directory with a store path inside it (the file does not
/// exist yet).
pub fn temp_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tminus.db");
    (dir, path)
}

/// A standalone event spec: `kind` checkpoint, fire time `fire_min` minutes
/// after `t0` (no countdown), the given attendees and quorum, fire `early`.
pub fn spec(fire_min: i64, attendees: &[&str], quorum: Quorum) -> NewEvent {
    NewEvent {
        attendees: agents(attendees),
        quorum,
        ..NewEvent::new(EventKind::Checkpoint, at_min(fire_min))
    }
}

/// Like [`spec`] with fire policy `on-time`.
pub fn on_time(fire_min: i64, attendees: &[&str], quorum: Quorum) -> NewEvent {
    NewEvent {
        fire_policy: FirePolicy::OnTime,
        ..spec(fire_min, attendees, quorum)
    }
}

/// Loads an event that must exist.
pub fn get(engine: &mut Engine, id: Uuid) -> TMinusEvent {
    engine
        .get_event(id)
        .expect("get_event")
        .expect("event exists")
}

/// The stored state of an event.
pub fn state(engine: &mut Engine, id: Uuid) -> EventState {
    get(engine, id).state
}

/// The audit actions of an event, oldest first.
pub fn actions(engine: &mut Engine, id: Uuid) -> Vec<AuditAction> {
    engine
        .log(id)
        .expect("log")
        .into_iter()
        .map(|e| e.action)
        .collect()
}

/// The response recorded for `who` on `event`.
pub fn response(event: &TMinusEvent, who: &str) -> t_minus::ResponseStatus {
    event
        .response_of(&agent(who))
        .unwrap_or_else(|| panic!("{who} is not an attendee"))
}
