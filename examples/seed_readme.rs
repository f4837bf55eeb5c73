//! The library example from the prototype's README, unchanged: code written
//! against the prototype keeps compiling.
//! Run with `cargo run --example seed_readme`; it writes `coordination.db`
//! in the current directory.

use chrono::{Duration, Utc};
use t_minus::{AgentId, Engine, EventKind};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut engine = Engine::new("coordination.db".as_ref())?;
    // Schedule a meeting
    let event = engine.schedule_event(
        EventKind::Meeting,
        Utc::now() + Duration::minutes(10), // scheduled time
        Duration::minutes(5),               // T-minus countdown
        AgentId("coordinator".into()),
        vec![AgentId("agent-1".into()), AgentId("agent-2".into())],
        2, // quorum: both must confirm
        serde_json::json!({"topic": "sprint planning"}),
    )?;
    // Agents confirm
    engine.confirm(event.id, &AgentId("agent-1".into()))?;
    engine.confirm(event.id, &AgentId("agent-2".into()))?;
    // Process: fires events that reached quorum
    let result = engine.tick(Utc::now())?;
    for id in &result.fired {
        println!("Event {} fired!", id);
    }
    Ok(())
}
