//! An agent that answers t-minus events from its own health check: it
//! confirms when healthy, defers when not, and declines when it may defer no
//! longer. See docs/library.md.
//!
//! `cargo run --example health_agent`
//!
//! The run is simulated on a pinned clock ([`FixedClock`]) and an in-memory
//! store, so it is instant and prints the same every time: a deploy gate
//! needs two agents; the web agent is healthy, the database agent's replica
//! lags for two checks, so it defers twice, then recovers and confirms, and
//! the deploy fires.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use t_minus::{
    AgentId, Engine, EventKind, EventState, FixedClock, NewEvent, Quorum, ResponseStatus,
    TMinusError, TMinusEvent,
};

/// What a health check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Ready to go.
    Healthy,
    /// Not ready, and why.
    Unhealthy(String),
}

/// What the agent did about one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Confirmed.
    Confirmed,
    /// Deferred by this much.
    Deferred(Duration),
    /// Declined, and why.
    Declined(String),
    /// The deadline had passed; nothing to do.
    TooLate,
}

/// An agent with a health check.
pub struct HealthAgent<F: FnMut() -> Health> {
    /// Its id, as listed in the events' attendees.
    pub id: AgentId,
    /// How much more time to ask for when unhealthy.
    pub defer_by: Duration,
    /// The health check.
    pub check: F,
}

impl<F: FnMut() -> Health> HealthAgent<F> {
    /// Answers every open event that waits for this agent: confirm when the
    /// health check passes; defer when it fails; decline when the event's
    /// `max_defer` allows no more deferral.
    pub fn answer(
        &mut self,
        engine: &mut Engine,
    ) -> Result<Vec<(TMinusEvent, Action)>, TMinusError> {
        let mut done = Vec::new();
        for event in engine.list_unfinished()? {
            let waiting = matches!(
                event.response_of(&self.id),
                Some(ResponseStatus::Pending | ResponseStatus::Deferred(_))
            );
            if event.state != EventState::Pending || !waiting {
                continue;
            }
            let action = match (self.check)() {
                Health::Healthy => match engine.confirm(event.id, &self.id) {
                    Ok(_) => Action::Confirmed,
                    Err(TMinusError::DeadlinePassed { .. }) => Action::TooLate,
                    Err(e) => return Err(e),
                },
                Health::Unhealthy(why) => match engine.defer(event.id, &self.id, self.defer_by) {
                    Ok(_) => Action::Deferred(self.defer_by),
                    Err(TMinusError::MaxDeferExceeded { .. }) => {
                        let reason = format!("still unhealthy: {why}");
                        engine.decline(event.id, &self.id, Some(reason.clone()))?;
                        Action::Declined(reason)
                    }
                    Err(TMinusError::DeadlinePassed { .. }) => Action::TooLate,
                    Err(e) => return Err(e),
                },
            };
            let updated = engine.get_event(event.id)?.unwrap_or(event);
            done.push((updated, action));
        }
        Ok(done)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start: DateTime<Utc> = "2025-06-06T14:50:00Z".parse()?;
    let clock = Arc::new(FixedClock::new(start));
    let mut engine = Engine::in_memory()?.with_clock(clock.clone());

    let deploy = engine.schedule(NewEvent {
        t_minus: Duration::minutes(5),
        attendees: vec![AgentId("web".into()), AgentId("db".into())],
        quorum: Quorum::All,
        max_defer: Some(Duration::minutes(20)),
        payload: serde_json::json!({ "version": "2.0.0" }),
        ..NewEvent::new(EventKind::Deploy, start + Duration::minutes(15))
    })?;
    println!(
        "scheduled deploy [{}], confirmations due by {}",
        deploy.short_id(),
        deploy.fire_time().format("%H:%M")
    );

    let mut web = HealthAgent {
        id: AgentId("web".into()),
        defer_by: Duration::minutes(10),
        check: || Health::Healthy,
    };
    let mut lagging_checks = 2;
    let mut db = HealthAgent {
        id: AgentId("db".into()),
        defer_by: Duration::minutes(10),
        check: move || {
            if lagging_checks > 0 {
                lagging_checks -= 1;
                Health::Unhealthy("replica lag 45s".into())
            } else {
                Health::Healthy
            }
        },
    };

    // Each round: the agents check their health and answer, then a tick
    // records what the clock decided. The agents poll every 5 minutes.
    for _ in 0..12 {
        let now = engine.now();
        let answers = [
            (web.id.clone(), web.answer(&mut engine)?),
            (db.id.clone(), db.answer(&mut engine)?),
        ];
        for (agent, done) in answers {
            for (event, action) in done {
                println!(
                    "{} {:<4} {:<18} quorum {}/{}, due by {}",
                    now.format("%H:%M"),
                    agent.as_str(),
                    describe(&action),
                    event.confirmed_count(),
                    event.quorum,
                    event.fire_time().format("%H:%M")
                );
            }
        }
        let result = engine.tick(now)?;
        for id in &result.fired {
            println!(
                "{} 🚀 event {} fired",
                now.format("%H:%M"),
                &id.to_string()[..8]
            );
        }
        for id in &result.missed {
            println!(
                "{} ❌ event {} missed",
                now.format("%H:%M"),
                &id.to_string()[..8]
            );
        }
        let event = engine.get_event(deploy.id)?.ok_or("the event vanished")?;
        if event.state.is_final() {
            println!("deploy is {}", event.state);
            return Ok(());
        }
        clock.advance(Duration::minutes(5));
    }
    Err("the deploy did not finish".into())
}

fn describe(action: &Action) -> String {
    match action {
        Action::Confirmed => "confirmed".into(),
        Action::Deferred(by) => format!("deferred by {}m", by.num_minutes()),
        Action::Declined(why) => format!("declined ({why})"),
        Action::TooLate => "too late to answer".into(),
    }
}
