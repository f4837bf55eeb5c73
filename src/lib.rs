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
//! Modules depend downward only, layer by layer: value types → rules →
//! errors → notification values and event rules → store → manifests, plans
//! and display → engine → delivery and the runner → front ends. Nothing
//! below the engine names [`Engine`]. Each module uses only the modules
//! listed in its row, all of them above it.
//!
//! | layer | module | role | uses |
//! | --- | --- | --- | --- |
//! | values | [`kind`], [`state`], [`clock`], [`graph`], [`input`], [`run_report`] | event kinds, states, clocks, the dependency graph, the errors of values ([`input::InputError`]), a run's result | nothing |
//! | values | [`agent`], [`name`], [`duration`], [`time_spec`], [`policy`], [`gate`], [`campaign`], [`audit`], [`event`], [`tick`], [`token`], [`chat`] | the value types, each checking its own rules | values above |
//! | rules | [`trust`] | content digests, answer messages, signers, `sshsig` signing and verification, the audit chain, attestation types; its own [`trust::TrustError`] | values |
//! | rules | [`lifecycle`] | the state machine as pure functions | values, [`trust`] digests |
//! | errors | [`error`] | [`TMinusError`], the error of every operation, and the store's [`error::StoreError`] | values, [`trust`] |
//! | rules | [`notification`] | notification rules, payloads and delivery records as values | values, [`error`] |
//! | rules | [`event_check`] | the rules of a new event (attendees, quorum and groups, durations, notification rules, fire time) as typed problems | values, [`notification`], [`error`] |
//! | store | [`store`] | persistence behind [`store::Store`] / [`store::Tx`]; rows mapped once | values, [`lifecycle`], [`trust`] chain, [`notification`], [`error`] |
//! | | [`manifest`] | parses and validates YAML into desired campaigns | values, [`event_check`], [`notification`], [`trust`] signers, [`error`] |
//! | | [`display`] | renders events, campaigns and run output as text from views whose names are resolved ([`display::EventView`]); renderers look nothing up and never write | values, [`trust`] digests, the store's listing rows (no queries), [`error`] |
//! | | [`plan`] | the plan's data, its computation against a read transaction, rendering, plan files, what an apply did | [`manifest`], [`event_check`], [`lifecycle`], [`store::Tx`] reads, [`error`] |
//! | engine | [`engine`] | every operation that writes, one transaction each, applying a plan and queueing notifications included; the reads views are built from ([`engine::EventViews`]) | everything above |
//! | above the engine | [`notify`] | delivers queued notifications, writing outcomes to the log; adds [`Engine::deliver_due`] and [`Engine::notify_test`] | [`engine`], [`store`], [`notification`] |
//! | above the engine | [`runner`] | `run` and `wait`: drives the engine over time; [`runner::RunPrinter`] prints a run | [`engine`], [`display`], [`store::EventFilter`] |
//! | front end | [`output`] | every JSON shape the program prints (`--json`, MCP results, HTTP bodies) as `Serialize` + `JsonSchema` types, built from the engine's reads | values, [`engine`] reads, [`plan`], [`trust`] types |
//! | front end | `mcp` (feature `mcp`) | the MCP server: one agent's tools, one engine operation per call | [`engine`], [`display`], [`runner`], [`trust`] keys |
//! | front end | `serve` (feature `serve`) | the HTTP service: the API under `/v1`, tokens and roles, limits, ticking and delivering in the background | [`engine`], [`output`], [`runner`], [`notify`], [`manifest`], [`plan`], [`token`] |
//! | front end | `cli` (the binary) | the thin front end: parses arguments, calls the engine (or, with `--db http(s)://…`, a `t-minus serve` over HTTP, reading its replies as [`output`] types), prints with [`display`] and [`plan`] rendering, adds its hints to errors | everything public |

#![warn(missing_docs)]

pub mod agent;
pub mod audit;
pub mod campaign;
pub mod chat;
pub mod clock;
pub mod delegation;
pub mod display;
pub mod duration;
pub mod engine;
pub mod error;
pub mod escalation;
pub mod event;
pub mod event_check;
pub mod gate;
pub mod github;
pub mod graph;
pub mod input;
pub mod kind;
pub mod lifecycle;
pub mod manifest;
#[cfg(feature = "mcp")]
pub mod mcp;
pub mod name;
pub mod notification;
pub mod notify;
pub mod output;
pub mod people;
pub mod plan;
pub mod policy;
pub mod run_report;
pub mod runner;
#[cfg(feature = "serve")]
pub mod serve;
pub mod state;
pub mod store;
pub mod tick;
pub mod time_spec;
pub mod token;
pub mod trust;

pub use agent::AgentId;
pub use audit::{AuditAction, AuditEntry};
pub use campaign::{Campaign, CampaignState};
pub use clock::{Clock, FixedClock, SystemClock};
pub use engine::{Engine, LogVerification, NewEvent, Response, RowMismatch, Target};
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
