//! Driving events to completion: the engine behind `run` and `wait`.
//!
//! The runner ticks, reports new transitions in its scope, and sleeps until
//! the next fire time in scope. While asleep on SQLite it waits for file
//! change notification of the database (another process's commit writes its
//! WAL file) and then compares the store's data version (`PRAGMA
//! data_version`), so answers written by other processes are noticed at
//! once; it looks again every [`WATCHED_LOOK`] in case a notification was
//! lost, and every [`RunOptions::poll`] where the file system offers none.
//! On PostgreSQL it waits on `LISTEN` and wakes as soon as another host
//! commits. It wakes exactly at fire times, so misses are recorded on
//! time, and never spins. When the store cannot be reached (a database
//! server restarting) it retries with backoff for [`RunOptions::retry_for`],
//! telling the observer each time.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::AuditEntry;
use crate::display::RunView;
use crate::engine::{Engine, EventViews};
use crate::error::Result;
use crate::event::TMinusEvent;
pub use crate::run_report::{RunOutcome, RunReport, RunSummary};
use crate::state::EventState;
use crate::store::EventFilter;

/// How often a runner on a store with file change notification wakes to
/// check for a stop request and the timeout.
pub const WATCHED_POLL: StdDuration = StdDuration::from_millis(250);

/// How often a runner on a store with file change notification looks at the
/// data version without having been notified (a lost notification).
pub const WATCHED_LOOK: StdDuration = StdDuration::from_secs(1);

/// Which events a run drives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every unfinished event in the store (events scheduled during the run
    /// join it).
    All,
    /// The events of these campaigns.
    Campaigns(Vec<Uuid>),
    /// One event (`wait`).
    Event(Uuid),
}

/// Run settings.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// What to drive.
    pub scope: Scope,
    /// Give up after this long (wall clock).
    pub timeout: Option<StdDuration>,
    /// How often to look for writes by other processes while asleep, on a
    /// store that is not told of them ([`crate::store::Store::notifies_changes`]);
    /// one that is looks every [`WATCHED_POLL`] (or this, if longer).
    pub poll: StdDuration,
    /// How often to call [`RunObserver::refresh`] while nothing happens
    /// (a live countdown wants about a second; `None` only on changes).
    pub refresh: Option<StdDuration>,
    /// How long to keep retrying while the store cannot be reached (a
    /// database server restarting, a network outage) before failing with
    /// its error. Retries back off from 250 ms to 10 s between attempts.
    pub retry_for: StdDuration,
}

impl RunOptions {
    /// Defaults for `scope`: 25 ms polling, no timeout, no periodic refresh.
    pub fn new(scope: Scope) -> Self {
        RunOptions {
            scope,
            timeout: None,
            poll: StdDuration::from_millis(25),
            refresh: None,
            retry_for: StdDuration::from_secs(300),
        }
    }
}

/// What a run reports as it goes. Each call gets the engine, for look-ups
/// such as campaign names.
pub trait RunObserver {
    /// A transition of an event in scope, once, in the order recorded.
    fn transition(
        &mut self,
        engine: &Engine,
        entry: &AuditEntry,
        event: &TMinusEvent,
    ) -> Result<()>;
    /// The events in scope after every step (a change, a fire time, or the
    /// refresh interval).
    fn refresh(
        &mut self,
        engine: &Engine,
        events: &[TMinusEvent],
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// The store could not be reached (`error`, a transient one); the run
    /// tries again after `delay`. `attempt` counts from 1 in each outage.
    fn store_retry(
        &mut self,
        _error: &crate::error::TMinusError,
        _attempt: u32,
        _delay: StdDuration,
    ) -> Result<()> {
        Ok(())
    }

    /// The store answers again after an outage that lasted `outage`.
    fn store_recovered(&mut self, _outage: StdDuration) -> Result<()> {
        Ok(())
    }
}

/// A [`RunObserver`] that prints the run with a [`RunView`]: it labels each
/// event it reports through the engine (each campaign's name read once) and
/// hands the view what to print.
pub struct RunPrinter {
    view: RunView,
    views: EventViews,
}

impl RunPrinter {
    /// Prints with `view`.
    pub fn new(view: RunView) -> Self {
        RunPrinter {
            view,
            views: EventViews::default(),
        }
    }

    /// Prints the closing summary of `report` (see [`RunView::finish`]).
    pub fn finish(&mut self, report: &RunReport) {
        self.view.finish(report);
    }
}

impl RunObserver for RunPrinter {
    fn transition(
        &mut self,
        engine: &Engine,
        entry: &AuditEntry,
        event: &TMinusEvent,
    ) -> Result<()> {
        let label = self.views.label(engine, event)?;
        self.view.transition(entry, event, &label);
        Ok(())
    }

    fn refresh(
        &mut self,
        engine: &Engine,
        events: &[TMinusEvent],
        now: DateTime<Utc>,
    ) -> Result<()> {
        if !self.view.is_live() {
            return Ok(());
        }
        let (shown, hidden) = self.view.live_selection(events);
        let shown = shown
            .into_iter()
            .map(|event| Ok((event, self.views.label(engine, event)?)))
            .collect::<Result<Vec<_>>>()?;
        self.view.refresh(&shown, hidden, now);
        Ok(())
    }

    fn store_retry(
        &mut self,
        error: &crate::error::TMinusError,
        attempt: u32,
        delay: StdDuration,
    ) -> Result<()> {
        self.view.store_retry(error, attempt, delay);
        Ok(())
    }

    fn store_recovered(&mut self, outage: StdDuration) -> Result<()> {
        self.view.store_recovered(outage);
        Ok(())
    }
}

/// The pause before retry `attempt` (from 1) of an unreachable store:
/// 250 ms, doubling, at most 10 s.
pub fn retry_delay(attempt: u32) -> StdDuration {
    let ms = 250u64.saturating_mul(1 << attempt.saturating_sub(1).min(6));
    StdDuration::from_millis(ms.min(10_000))
}

/// Drives the events in `options.scope` until all are final, the timeout
/// passes, or `stop` is raised.
pub fn run(
    engine: &mut Engine,
    options: &RunOptions,
    observer: &mut dyn RunObserver,
    stop: &AtomicBool,
) -> Result<RunReport> {
    let started = Instant::now();
    let deadline = options.timeout.map(|t| started + t);
    let mut run = RunState {
        last_seq: None,
        seen: HashMap::new(),
    };
    let mut outage: Option<Outage> = None;
    // Set up before the first look at the data version, so that no write
    // between that look and the first sleep goes unnoticed.
    let poll = if engine.store_mut().notifies_changes() {
        options.poll.max(WATCHED_POLL)
    } else {
        options.poll
    };
    let options = &RunOptions {
        poll,
        ..options.clone()
    };
    loop {
        match step(
            engine,
            options,
            observer,
            stop,
            deadline,
            &mut run,
            &mut outage,
        ) {
            Ok(Some(report)) => return Ok(report),
            Ok(None) => {}
            Err(e) if e.is_transient() => {
                let o = outage.get_or_insert_with(|| Outage {
                    since: Instant::now(),
                    attempt: 0,
                });
                o.attempt += 1;
                if o.since.elapsed() >= options.retry_for {
                    return Err(e);
                }
                let delay = retry_delay(o.attempt);
                observer.store_retry(&e, o.attempt, delay)?;
                if nap(delay, stop, deadline) {
                    return Ok(report(&run.seen, stopped_outcome(stop)));
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Interrupted when `stop` is raised, else timed out.
fn stopped_outcome(stop: &AtomicBool) -> RunOutcome {
    if stop.load(Ordering::SeqCst) {
        RunOutcome::Interrupted
    } else {
        RunOutcome::TimedOut
    }
}

/// What a run carries from step to step.
struct RunState {
    /// The newest audit entry reported; `None` until the first step reads
    /// where the log ends.
    last_seq: Option<i64>,
    /// Every event ever in scope, with its latest state, for the outcome.
    seen: HashMap<Uuid, EventState>,
}

/// An ongoing failure to reach the store.
struct Outage {
    since: Instant,
    attempt: u32,
}

/// Sleeps `delay` in short naps; true when a stop or the deadline cut it
/// short.
fn nap(delay: StdDuration, stop: &AtomicBool, deadline: Option<Instant>) -> bool {
    let end = Instant::now() + delay;
    loop {
        if stop.load(Ordering::SeqCst) || deadline.is_some_and(|d| Instant::now() >= d) {
            return true;
        }
        let now = Instant::now();
        if now >= end {
            return false;
        }
        std::thread::sleep((end - now).min(StdDuration::from_millis(25)));
    }
}

/// One step: tick, report, look at the scope, and sleep until something
/// changes. `Some` when the run is over.
fn step(
    engine: &mut Engine,
    options: &RunOptions,
    observer: &mut dyn RunObserver,
    stop: &AtomicBool,
    deadline: Option<Instant>,
    run: &mut RunState,
    outage: &mut Option<Outage>,
) -> Result<Option<RunReport>> {
    let RunState { last_seq, seen } = run;
    // Transitions recorded before the run started are history, not news.
    let last_seq = match last_seq {
        Some(seq) => seq,
        None => last_seq.insert(engine.read(|tx| tx.latest_audit_seq())?),
    };
    // Taken before this step reads anything: a commit by another process
    // after this point changes it and wakes the sleep below, so no answer
    // slips in unnoticed between the reads and the sleep.
    let version = engine.store_mut().data_version()?;
    let now = engine.now();
    engine.tick(now)?;
    if let Some(o) = outage.take() {
        observer.store_recovered(o.since.elapsed())?;
    }
    report_new(engine, &options.scope, last_seq, seen, observer)?;
    let events = scope_events(engine, &options.scope)?;
    for e in &events {
        seen.insert(e.id, e.state);
    }
    observer.refresh(engine, &events, now)?;
    if events.iter().all(|e| e.state.is_final()) {
        // The scope was read after the log: a transition another process
        // committed in between is final in `events` but not yet reported.
        report_new(engine, &options.scope, last_seq, seen, observer)?;
        return Ok(Some(report(seen, finished_outcome(seen))));
    }
    // Before stopping, report what other processes committed since the
    // look above: every transition committed before the interrupt (or the
    // timeout) is reported.
    if stop.load(Ordering::SeqCst) {
        report_new(engine, &options.scope, last_seq, seen, observer)?;
        return Ok(Some(report(seen, RunOutcome::Interrupted)));
    }
    if deadline.is_some_and(|d| Instant::now() >= d) {
        report_new(engine, &options.scope, last_seq, seen, observer)?;
        return Ok(Some(report(seen, RunOutcome::TimedOut)));
    }
    let next_fire = events
        .iter()
        .filter(|e| e.state == EventState::Pending)
        .filter_map(TMinusEvent::fire_deadline)
        .min();
    // A wake for the refresh interval only redraws the countdowns from the
    // events already loaded; anything else starts a new step.
    while sleep_until_change(engine, options, version, next_fire, deadline, stop)? == Wake::Refresh
    {
        observer.refresh(engine, &events, engine.now())?;
    }
    Ok(None)
}

/// Why [`sleep_until_change`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    /// The refresh interval passed and nothing else happened.
    Refresh,
    /// Another process wrote, a fire time came, the timeout passed, or a
    /// stop was requested: time for a new step.
    Step,
}

fn finished_outcome(seen: &HashMap<Uuid, EventState>) -> RunOutcome {
    if seen.values().all(|s| *s == EventState::Fired) {
        RunOutcome::Succeeded
    } else {
        RunOutcome::Failed
    }
}

fn report(seen: &HashMap<Uuid, EventState>, outcome: RunOutcome) -> RunReport {
    let mut summary = RunSummary::default();
    for state in seen.values() {
        match state {
            EventState::Fired => summary.fired += 1,
            EventState::Missed => summary.missed += 1,
            EventState::Cancelled => summary.cancelled += 1,
            _ => summary.unfinished += 1,
        }
    }
    RunReport { outcome, summary }
}

/// The events in scope, as stored now, soonest fire time first per campaign.
pub fn scope_events(engine: &Engine, scope: &Scope) -> Result<Vec<TMinusEvent>> {
    match scope {
        Scope::All => engine.read(|tx| tx.list_events(EventFilter::Unfinished)),
        Scope::Event(id) => Ok(engine.get_event(*id)?.into_iter().collect()),
        // One read transaction for the whole scope: a runner reloads it at
        // every step (and the live view four times a second).
        Scope::Campaigns(ids) => engine.read(|tx| {
            let mut events = Vec::new();
            for id in ids {
                events.extend(tx.list_events(EventFilter::Campaign(*id))?);
            }
            Ok(events)
        }),
    }
}

/// Reports transitions recorded since `last_seq` that concern the scope.
fn report_new(
    engine: &mut Engine,
    scope: &Scope,
    last_seq: &mut i64,
    seen: &mut HashMap<Uuid, EventState>,
    observer: &mut dyn RunObserver,
) -> Result<()> {
    let campaigns: HashSet<Uuid> = match scope {
        Scope::Campaigns(ids) => ids.iter().copied().collect(),
        _ => HashSet::new(),
    };
    loop {
        let entries = engine.read(|tx| tx.audit_since(*last_seq, 1000))?;
        let Some(last) = entries.last() else {
            return Ok(());
        };
        *last_seq = last.seq;
        for entry in entries.iter().filter(|e| e.action.is_transition()) {
            let Some(event) = engine.get_event(entry.event)? else {
                continue;
            };
            let in_scope = match scope {
                Scope::All => true,
                Scope::Event(id) => *id == event.id,
                Scope::Campaigns(_) => event.campaign.is_some_and(|c| campaigns.contains(&c)),
            };
            if in_scope {
                seen.insert(event.id, event.state);
                observer.transition(engine, entry, &event)?;
            }
        }
    }
}

/// Sleeps until the next fire time, a write by another process since
/// `version` was read, the refresh interval, the timeout, or a stop request —
/// whichever is first — and says which.
fn sleep_until_change(
    engine: &mut Engine,
    options: &RunOptions,
    version: i64,
    next_fire: Option<DateTime<Utc>>,
    deadline: Option<Instant>,
    stop: &AtomicBool,
) -> Result<Wake> {
    let start = Instant::now();
    // Whether the store may have changed since the last look, and when that
    // look was: a wake that the store says saw no write reads nothing, except
    // every `WATCHED_LOOK`.
    let mut maybe_changed = true;
    let mut looked = start;
    loop {
        if stop.load(Ordering::SeqCst) || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(Wake::Step);
        }
        let now = engine.now();
        if next_fire.is_some_and(|f| now >= f) {
            return Ok(Wake::Step);
        }
        if maybe_changed || looked.elapsed() >= WATCHED_LOOK {
            looked = Instant::now();
            if engine.store_mut().data_version()? != version {
                return Ok(Wake::Step);
            }
        }
        if options.refresh.is_some_and(|r| start.elapsed() >= r) {
            return Ok(Wake::Refresh);
        }
        // Wait one poll interval, or less when a fire time, the refresh or
        // the deadline comes sooner; a store that is told of writes (LISTEN
        // on PostgreSQL) returns as soon as one lands.
        let mut nap = options.poll;
        if let Some(fire) = next_fire {
            if let Ok(until) = (fire - now).to_std() {
                nap = nap.min(until);
            }
        }
        if let Some(d) = deadline {
            nap = nap.min(d.saturating_duration_since(Instant::now()));
        }
        maybe_changed = engine
            .store_mut()
            .wait_for_change(nap.max(StdDuration::from_millis(1)))?;
    }
}
