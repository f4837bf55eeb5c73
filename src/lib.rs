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
//!
//! ## Module boundaries
//!
//! Data flows `manifest → plan → engine → store`; each module calls only
//! those to its right, and the value types ([`event`], [`state`],
//! [`policy`], [`audit`], [`agent`], [`name`], [`duration`], [`time_spec`],
//! [`error`]) are shared by all.
//!
//! | module | role | may call |
//! | --- | --- | --- |
//! | [`manifest`] | parses and validates YAML into desired campaigns | [`event_check`] rules |
//! | [`plan`] | the plan's data, its computation against a read transaction, rendering, plan files | [`manifest`] types, [`event_check`], [`lifecycle`], [`store::Tx`] reads |
//! | [`engine`] | every operation that writes, applying a plan included; one transaction each; the reads views are built from ([`engine::EventViews`]) | [`plan`], [`event_check`], [`lifecycle`], [`store`] |
//! | [`store`] | persistence behind [`store::Store`] / [`store::Tx`]; rows mapped once; its own [`store::StoreError`] | nothing above it |
//! | [`event_check`] | the rules of a new event (attendees, quorum and groups, durations, notification rules, fire time) as typed problems, for `schedule`, `campaign add`, manifests and plan files | value types, `notify::spec` rules |
//! | [`lifecycle`] | the state machine as pure functions | value types and [`trust`] digests only (no store, no engine) |
//! | [`trust`] | content digests, answer messages, signers, `sshsig` signing and verification, the audit chain, attestation types: pure functions and types | value types only (no store, no engine) |
//! | [`display`] | renders events, campaigns and run output as text from views whose names are resolved ([`display::EventView`]); renderers look nothing up and never write | value types only, the store's listing rows among them (no queries, no engine) |
//! | [`runner`] | `run` and `wait`: drives the engine over time; [`runner::RunPrinter`] prints a run | [`engine`], [`store::EventFilter`], [`display`] |
//! | [`output`] | every JSON shape the program prints (`--json`, MCP results, HTTP bodies) as `Serialize` + `JsonSchema` types, built from the engine's reads | value types, [`engine`] reads, [`plan`], [`trust`] types |
//! | `mcp` (feature `mcp`) | the MCP server: one agent's tools, one engine operation per call | [`engine`], [`display`], [`runner`], [`output`], [`trust`] keys |
//! | `cli` (the binary) | the thin front end: parses arguments, calls the engine, prints with [`display`], [`plan`] rendering and [`output`] | everything public |

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
pub mod event_check;
pub mod graph;
pub mod kind;
pub mod lifecycle;
pub mod manifest;
#[cfg(feature = "mcp")]
pub mod mcp;
pub mod name;
pub mod notify;
pub mod output;
pub mod plan;
pub mod policy;
pub mod runner;
pub mod state;
pub mod store;
pub mod tick;
pub mod time_spec;
pub mod trust;

pub use agent::AgentId;
pub use audit::{AuditAction, AuditEntry};
pub use campaign::{Campaign, CampaignState};
pub use clock::{Clock, FixedClock, SystemClock};
pub use engine::{Engine, LogVerification, NewEvent, Response, Target};
pub use error::{Result, TMinusError};
pub use event::{GroupStatus, TMinusEvent};
pub use kind::EventKind;
pub use policy::{FirePolicy, Quorum, QuorumGroup};
pub use state::{EventState, ResponseStatus};
pub use tick::TickResult;
pub use time_spec::TimeSpec;

/// The code examples of docs/library.md, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/library.md")]
pub struct LibraryGuide;
