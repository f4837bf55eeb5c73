//! The service's own runner: ticks the store and delivers notifications in
//! the background, so that no one needs to keep `t-minus run` open.
//!
//! On the live clock it ticks at the soonest fire time of a pending event,
//! after another connection's write (this service's answers, another
//! process's), and at least every [`LOOK_EVERY`]. Writes that come in a
//! burst are ticked for together: after a tick, a write makes the next one
//! wait until [`CHANGE_GAP`] has passed. Between ticks it reads only the
//! next fire time (one index probe), never the events themselves, so its
//! cost does not grow with the store. On a pinned clock (tests) it ticks at
//! that instant every [`IDLE_LOOK`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};

use super::metrics::Metrics;
use crate::notify::{DeliverOptions, Deliverer};
use crate::{Engine, FixedClock, Result, TickResult};

/// How often the ticker ticks on a pinned clock.
pub const IDLE_LOOK: StdDuration = StdDuration::from_millis(250);

/// The longest the ticker goes without a tick on the live clock (a lost
/// change notification, a reminder coming due).
pub const LOOK_EVERY: StdDuration = StdDuration::from_secs(1);

/// How long after a tick a write by another connection makes the ticker
/// tick again at the soonest: the answers of a busy service are ticked for
/// (their transitions reported) together, not one tick each.
pub const CHANGE_GAP: StdDuration = StdDuration::from_millis(100);

/// How long the ticker waits for a change notification before it looks at
/// its stop flag again.
const STOP_POLL: StdDuration = StdDuration::from_millis(250);

/// The background runner and deliverer of a service.
#[derive(Debug)]
pub struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    delivery: Option<JoinHandle<()>>,
}

/// Counts the transitions a tick reported (the store's log is the report).
struct Counting(Option<Arc<Metrics>>);

impl Counting {
    fn ticked(&self, ticked: &TickResult) {
        if let Some(m) = &self.0 {
            for entry in &ticked.transitions {
                m.transition(entry.action.as_str());
            }
        }
    }
}

impl Ticker {
    /// Starts ticking the store at `location` (on its own connection) and,
    /// with `deliver`, delivering its notifications (on another); counts
    /// the transitions it reports in `metrics`.
    pub fn start(
        location: &str,
        pinned: Option<DateTime<Utc>>,
        deliver: Option<DeliverOptions>,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Self> {
        let mut engine = Engine::open(location)?;
        if let Some(now) = pinned {
            engine.set_clock(Arc::new(FixedClock::new(now)));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let delivery = match deliver {
            Some(options) => {
                let deliverer = Deliverer::start(
                    crate::store::open_again(location)?,
                    DeliverOptions {
                        keep_outcomes: false,
                        ..options.clone()
                    },
                );
                let (location, flag) = (location.to_string(), stop.clone());
                std::thread::Builder::new()
                    .name("t-minus-delivery".into())
                    .spawn(move || supervise(deliverer, &location, options, &flag))
                    .ok()
            }
            None => None,
        };
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("t-minus-ticker".into())
            .spawn(move || drive(engine, pinned.is_some(), &flag, Counting(metrics)))
            .ok();
        Ok(Ticker {
            stop,
            thread,
            delivery,
        })
    }

    /// Stops ticking and delivering once the steps under way end.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(delivery) = self.delivery.take() {
            let _ = delivery.join();
        }
    }
}

/// Keeps a deliverer running until `stop`: one that stopped on an error
/// (the store out of reach) is replaced by a new one on a new connection,
/// after a pause.
fn supervise(mut deliverer: Deliverer, location: &str, options: DeliverOptions, stop: &AtomicBool) {
    let options = DeliverOptions {
        keep_outcomes: false,
        ..options
    };
    loop {
        nap(StdDuration::from_millis(250), stop);
        if stop.load(Ordering::SeqCst) {
            if let Err(e) = deliverer.stop() {
                eprintln!("t-minus serve: notification delivery: {e}");
            }
            return;
        }
        if deliverer.is_running() {
            continue;
        }
        if let Err(e) = deliverer.stop() {
            eprintln!("t-minus serve: notification delivery stopped: {e}; restarting");
        }
        loop {
            match crate::store::open_again(location) {
                Ok(store) => {
                    deliverer = Deliverer::start(store, options.clone());
                    break;
                }
                Err(e) => {
                    eprintln!("t-minus serve: notification delivery: {e}");
                    nap(StdDuration::from_secs(1), stop);
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                }
            }
        }
    }
}

/// Ticks until `stop` is raised.
fn drive(mut engine: Engine, pinned: bool, stop: &AtomicBool, counting: Counting) {
    while !stop.load(Ordering::SeqCst) {
        let result = if pinned {
            let now = engine.now();
            engine.tick(now).map(|ticked| counting.ticked(&ticked))
        } else {
            tick_live(&mut engine, stop, &counting)
        };
        if let Err(e) = result {
            eprintln!("t-minus serve: ticking: {e}");
            nap(StdDuration::from_secs(1), stop);
        } else if pinned {
            nap(IDLE_LOOK, stop);
        }
    }
}

/// Ticks on the live clock until `stop` is raised (`Ok`) or the store
/// fails: at the next fire time, after another connection's write (at the
/// soonest [`CHANGE_GAP`] after the last tick), and every [`LOOK_EVERY`].
fn tick_live(engine: &mut Engine, stop: &AtomicBool, counting: &Counting) -> Result<()> {
    while !stop.load(Ordering::SeqCst) {
        // Read before the tick: a write after this point changes it, so no
        // write between the tick and the sleep goes unnoticed.
        let version = engine.store_mut().data_version()?;
        let now = engine.now();
        let ticked = engine.tick(now)?;
        counting.ticked(&ticked);
        let ticked_at = std::time::Instant::now();
        let next_fire = engine.next_fire_time(None)?;
        let mut maybe_changed = true;
        loop {
            if stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let now = engine.now();
            if next_fire.is_some_and(|f| now >= f) {
                break;
            }
            let waited = ticked_at.elapsed();
            if waited >= LOOK_EVERY {
                break;
            }
            if maybe_changed && engine.store_mut().data_version()? != version {
                if let Some(rest) = CHANGE_GAP.checked_sub(waited) {
                    nap(rest, stop);
                }
                break;
            }
            let mut wait = STOP_POLL.min(LOOK_EVERY - waited);
            if let Some(until) = next_fire.and_then(|f| (f - now).to_std().ok()) {
                wait = wait.min(until);
            }
            maybe_changed = engine
                .store_mut()
                .wait_for_change(wait.max(StdDuration::from_millis(1)))?;
        }
    }
    Ok(())
}

/// Sleeps `d` in short naps, ending early when `stop` is raised.
fn nap(d: StdDuration, stop: &AtomicBool) {
    let step = StdDuration::from_millis(25);
    let mut left = d;
    while !left.is_zero() && !stop.load(Ordering::SeqCst) {
        let s = left.min(step);
        std::thread::sleep(s);
        left -= s;
    }
}
