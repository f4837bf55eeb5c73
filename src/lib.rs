//! # t-minus
//!
//! Countdown events for multi-agent systems. An event is scheduled; agents
//! confirm, defer or decline; when a quorum confirms, the event **fires**; if
//! its fire time passes first, it is **missed**. Campaigns chain events into
//! a dependency graph.
//!
//! ```no_run
//! use t_minus::{Engine, AgentId, EventKind};
//! use chrono::{Duration, Utc};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut engine = Engine::new("coordination.db".as_ref())?;
//! let event = engine.schedule_event(EventKind::Meeting, Utc::now() + Duration::minutes(10),
//!     Duration::minutes(5), AgentId("coordinator".into()),
//!     vec![AgentId("agent-1".into()), AgentId("agent-2".into())], 2,
//!     serde_json::json!({"topic": "sprint planning"}))?;
//! engine.confirm(event.id, &AgentId("agent-1".into()))?;
//! engine.confirm(event.id, &AgentId("agent-2".into()))?;
//! let result = engine.tick(Utc::now())?;
//! for id in &result.fired { println!("Event {} fired!", id); }
//! # Ok(()) }
//! ```
//!
//! The pieces, following the data: [`Engine`] (operations, each one store
//! transaction) over a [`store::Store`] (SQLite by default), applying the
//! rules of [`lifecycle`] to [`TMinusEvent`]s.

#![warn(missing_docs)]

pub mod agent;
pub mod audit;
pub mod campaign;
pub mod clock;
pub mod display;
pub mod duration;
pub mod engine;
pub mod error;
pub mod event;
pub mod graph;
pub mod kind;
pub mod lifecycle;
pub mod manifest;
#[cfg(feature = "mcp")]
pub mod mcp;
// The MCP server shares the command line's JSON shapes (src/cli/json.rs),
// which name this crate `t_minus`.
#[cfg(feature = "mcp")]
extern crate self as t_minus;
pub mod name;
pub mod plan;
pub mod policy;
pub mod runner;
pub mod state;
pub mod store;
pub mod tick;
pub mod time_spec;

pub use agent::AgentId;
pub use audit::{AuditAction, AuditEntry};
pub use campaign::{Campaign, CampaignState};
pub use clock::{Clock, FixedClock, SystemClock};
pub use engine::{Engine, NewEvent, Response, Target};
pub use error::{Result, TMinusError};
pub use event::TMinusEvent;
pub use kind::EventKind;
pub use policy::{FirePolicy, Quorum};
pub use state::{EventState, ResponseStatus};
pub use tick::TickResult;
pub use time_spec::TimeSpec;

/// The code examples of docs/library.md, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/library.md")]
pub struct LibraryGuide;
