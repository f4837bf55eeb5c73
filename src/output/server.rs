//! What the HTTP service says about itself.

use schemars::JsonSchema;
use serde::Serialize;

/// `GET /v1/health`: the service runs and its store answers.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Health {
    /// Always `ok` (a service that cannot reach its store answers 503 with
    /// an error instead).
    pub status: String,
    /// The t-minus version serving.
    pub version: String,
    /// The store's schema version this build writes.
    pub schema_version: i64,
}
