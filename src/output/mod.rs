//! What the program prints: every JSON shape of the command line's `--json`,
//! of the MCP server's structured results and of the HTTP API, as
//! types deriving [`serde::Serialize`] and [`schemars::JsonSchema`].
//!
//! One contract: a front end builds one of these values from the engine's
//! reads and serializes it; its JSON Schema comes from the same type
//! ([`schema`]), so the MCP output schemas and an OpenAPI document are
//! derived, never written by hand. `docs/json.md` lists the types with the
//! commands and tools that print them.
//!
//! Conventions: times are RFC 3339 strings in UTC (milliseconds only when
//! not zero); durations are integer milliseconds in fields ending in `_ms`;
//! absent values are `null`, never missing (the few keys that appear only in
//! some cases say so).
//!
//! | type | what |
//! | --- | --- |
//! | [`Event`], [`EventStatus`] | one event (with its open deliveries) |
//! | [`Campaign`], [`CampaignStatus`], [`CampaignDetail`], [`CampaignOrder`], [`CampaignCancel`] | campaigns |
//! | [`AuditEntry`], [`LogEntry`] | audit entries, with their chain links |
//! | [`TickReport`], [`DeliveryStatus`], [`NotifyTestResult`] | ticks and notifications |
//! | [`Inbox`] | what waits for one agent |
//! | [`AnswerToSign`], [`EventSigners`] | an answer message to sign elsewhere; the keys that may sign |
//! | [`Delegation`], [`AgentDelegations`] | who may answer for whom |
//! | [`Verification`], [`crate::trust::attest::Statement`] | the audit log checked; an attestation |
//! | [`Validation`], [`crate::plan::Plan`], [`ApplyResult`] | manifests validated, planned, applied |
//! | [`RunLine`] | one line of `run --json` / `wait --json` |
//! | [`Health`] | the HTTP service's health |
//! | [`ErrorOutput`] | a failure |

mod answer;
mod audit;
mod campaign;
mod delegation;
mod delivery;
mod error;
mod event;
mod inbox;
mod manifest;
mod run;
mod server;
mod time;
mod verify;

pub use answer::{AnswerToSign, EventSigners};
pub use audit::{AuditEntry, LogEntry};
pub use campaign::{
    Campaign, CampaignCancel, CampaignDetail, CampaignEvent, CampaignFields, CampaignOrder,
    CampaignStatus, Dependency, EventName,
};
pub use delegation::{AgentDelegations, Delegation};
pub use delivery::{DeliveryStatus, NotifyTestResult, TickReport};
pub use error::{ErrorBody, ErrorOutput};
pub use event::{
    AnswerStatus, Attendee, EscalationAdd, Event, EventStatus, GroupProgress, NextEscalation,
};
pub use inbox::Inbox;
pub use manifest::{ApplyResult, ManifestSummary, Problem, ProblemLabel, Validation};
pub use run::{RunLine, RunOutcomeWord};
pub use server::Health;
pub use verify::{Mismatch, Verification};

/// The JSON Schema (draft 2020-12) of what `T` serializes to: the schema of
/// a `--json` output, an MCP tool's output schema, a component of the HTTP
/// API's OpenAPI document.
pub fn schema<T: schemars::JsonSchema>() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    generator.into_root_schema_for::<T>().to_value()
}
