//! The service's own runner: ticks the store and delivers notifications in
//! the background, so that no one needs to keep `t-minus run` open.
//!
//! On the live clock it is the runner of `run` over every unfinished event
//! ([`crate::runner::run`] with [`Scope::All`]): it wakes at fire times and
//! when another process commits. When every event is final the run ends;
//! the ticker looks again every [`IDLE_LOOK`]. On a pinned clock (tests)
//! it ticks at that instant every [`IDLE_LOOK`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};

use super::metrics::Metrics;
use crate::notify::{DeliverOptions, Deliverer};
use crate::runner::{run, RunObserver, RunOptions, Scope};
use crate::{AuditEntry, Engine, FixedClock, Result, TMinusEvent};

/// How often the ticker looks for new events when none is unfinished.
pub const IDLE_LOOK: StdDuration = StdDuration::from_millis(250);

/// The background runner and deliverer of a service.
#[derive(Debug)]
pub struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    delivery: Option<JoinHandle<()>>,
}

/// A run observer that counts the transitions (the store's log is the
/// report).
struct Counting(Option<Arc<Metrics>>);

impl RunObserver for Counting {
    fn transition(&mut self, _: &Engine, entry: &AuditEntry, _: &TMinusEvent) -> Result<()> {
        if let Some(m) = &self.0 {
            m.transition(entry.action.as_str());
        }
        Ok(())
    }
    fn refresh(&mut self, _: &Engine, _: &[TMinusEvent], _: DateTime<Utc>) -> Result<()> {
        Ok(())
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
                    crate::store::open(location)?,
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
            match crate::store::open(location) {
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
fn drive(mut engine: Engine, pinned: bool, stop: &AtomicBool, mut counting: Counting) {
    let options = RunOptions::new(Scope::All);
    while !stop.load(Ordering::SeqCst) {
        let result = if pinned {
            let now = engine.now();
            engine.tick(now).map(|ticked| {
                if let Some(m) = &counting.0 {
                    for entry in &ticked.transitions {
                        m.transition(entry.action.as_str());
                    }
                }
            })
        } else {
            run(&mut engine, &options, &mut counting, stop).map(|_| ())
        };
        if let Err(e) = result {
            eprintln!("t-minus serve: ticking: {e}");
            nap(StdDuration::from_secs(1), stop);
        } else {
            nap(IDLE_LOOK, stop);
        }
    }
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
