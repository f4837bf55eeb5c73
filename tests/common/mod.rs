//! Shared helpers for the in-process engine tests: a pinned clock, engines
//! over an in-memory or temporary-file store, and short constructors.
//!
//! Tests listed in [`store_tests!`] run on SQLite and on PostgreSQL; [`engine`],
//! [`engine_at`] and [`store`] give a store of the test's backend (see
//! [`stores`]). [`file_engine`] and [`temp_store`] are SQLite files always.

#![allow(dead_code)]

pub mod stores;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use t_minus::{
    AgentId, AuditAction, Engine, EventKind, EventState, FirePolicy, FixedClock, NewEvent, Quorum,
    TMinusEvent,
};
use uuid::Uuid;

/// The one pinned instant of the tests, as `T_MINUS_NOW` takes it: the
/// engine suites start their clocks here and the binary runs at it.
pub const NOW: &str = "2025-06-06T14:50:00Z";

/// [`NOW`] as a time: the pinned start of every in-process test.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 6, 14, 50, 0).unwrap()
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

/// Runs each listed test function (plain functions, without `#[test]`) on
/// both stores, as the tests `sqlite::NAME` and `postgres::NAME`, with
/// the constructors of this module on that store:
/// `common::store_tests!(a, b, c);`. See [`stores`].
#[allow(unused_macros)] // not every test binary runs on both stores
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        $crate::common::stores::__store_tests!([$crate::common::stores] $($name),*);
    };
}
#[allow(unused_imports)]
pub(crate) use store_tests;

/// A fresh engine and the clock it reads, pinned at `t0`: a private
/// in-memory store on SQLite, a new schema (kept until the test ends) on
/// PostgreSQL.
pub fn engine() -> (Engine, FixedClock) {
    engine_at(t0())
}

/// `text`, a manifest named `release.yaml`, parsed and validated; panics
/// with the diagnostics unless it is valid.
pub fn desired(text: &str) -> t_minus::manifest::ValidManifests {
    use t_minus::manifest::{self, ValidateOptions};
    manifest::validate(
        &manifest::parse_str("release.yaml", text),
        &ValidateOptions::default(),
    )
    .unwrap_or_else(|d| {
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor());
        panic!("{}", d.render(&handler))
    })
}

/// Like [`engine`], with the clock pinned at `now`.
pub fn engine_at(now: DateTime<Utc>) -> (Engine, FixedClock) {
    let clock = FixedClock::new(now);
    let engine = match stores::current() {
        stores::Backend::Sqlite => Engine::in_memory().expect("in-memory engine"),
        stores::Backend::Postgres => {
            let store = stores::TempStore::new("tminus.db");
            let engine = Engine::open(store.location()).expect("open the PostgreSQL store");
            stores::keep_until_the_test_ends(store);
            engine
        }
    };
    (engine.with_clock(Arc::new(clock.clone())), clock)
}

/// A fresh, empty store of the test's backend (see [`stores::TempStore`]):
/// the guard that removes it when dropped, and its location for [`open_engine`].
pub fn store() -> (stores::TempStore, String) {
    let store = stores::TempStore::new("tminus.db");
    let location = store.location().to_string();
    (store, location)
}

/// A new engine (its own connection) on the store at `location`, on `clock`.
pub fn open_engine(location: &str, clock: &FixedClock) -> Engine {
    Engine::open(location)
        .expect("open store")
        .with_clock(Arc::new(clock.clone()))
}

/// An engine over the SQLite store file at `path`, on `clock`.
pub fn file_engine(path: &Path, clock: &FixedClock) -> Engine {
    Engine::new(path)
        .expect("open store")
        .with_clock(Arc::new(clock.clone()))
}

/// A temporary directory with an SQLite store path inside it (the file does
/// not exist yet).
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
pub fn get(engine: &Engine, id: Uuid) -> TMinusEvent {
    engine
        .get_event(id)
        .expect("get_event")
        .expect("event exists")
}

/// The stored state of an event.
pub fn state(engine: &Engine, id: Uuid) -> EventState {
    get(engine, id).state
}

/// The audit actions of an event, oldest first.
pub fn actions(engine: &Engine, id: Uuid) -> Vec<AuditAction> {
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

/// Serialises the suites that race real processes against the real clock or
/// start many processes at once (runners, answering processes, kill -9,
/// the hostile corpus): one of them runs at a time, beside the light tests,
/// so none misses a deadline because another one took the machine. Hold
/// the guard for the whole test.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A failed test poisons the lock; the next one may still run.
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// splitmix64: a small deterministic generator for test scripts.
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
