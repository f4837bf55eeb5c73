//! Manifests validated, and plans applied.

use schemars::JsonSchema;
use serde::Serialize;

use crate::engine::ApplyReport;
use crate::manifest::{ManifestDiagnostic, Summary};
use crate::plan::Plan;

/// `validate`: the manifests are valid (with what they declare), or every
/// problem of every file.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Validation {
    /// Every file is valid.
    Valid {
        /// `true`.
        #[schemars(extend("const" = true))]
        valid: bool,
        /// What the manifests declare.
        summary: ManifestSummary,
    },
    /// Some file has problems (exit code 1).
    Invalid {
        /// `false`.
        #[schemars(extend("const" = false))]
        valid: bool,
        /// Every problem of every file.
        errors: Vec<Problem>,
    },
}

/// What valid manifests declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ManifestSummary {
    /// Campaigns.
    pub campaigns: usize,
    /// Events.
    pub events: usize,
    /// Dependency edges (`needs` entries).
    pub edges: usize,
}

impl From<Summary> for ManifestSummary {
    fn from(s: Summary) -> Self {
        ManifestSummary {
            campaigns: s.campaigns,
            events: s.events,
            edges: s.edges,
        }
    }
}

/// One problem of a manifest, with where it is.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Problem {
    /// One of the `t_minus::manifest::…` codes.
    pub code: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
    /// The file, as given on the command line.
    pub file: Option<String>,
    /// The places in the file the problem points at.
    pub labels: Vec<ProblemLabel>,
}

/// A labelled place in a manifest file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ProblemLabel {
    /// The **byte** offset into the file.
    pub offset: usize,
    /// The length in bytes.
    pub length: usize,
    /// What is there.
    pub label: Option<String>,
}

impl From<&ManifestDiagnostic> for Problem {
    fn from(d: &ManifestDiagnostic) -> Self {
        Problem {
            code: d.code_str().to_string(),
            message: d.message().to_string(),
            help: d.help_str().map(str::to_string),
            file: d.file().map(str::to_string),
            labels: d
                .labels()
                .iter()
                .map(|l| ProblemLabel {
                    offset: l.offset(),
                    length: l.len(),
                    label: l.label().map(str::to_string),
                })
                .collect(),
        }
    }
}

impl Validation {
    /// Valid manifests declaring `summary`.
    pub fn valid(summary: Summary) -> Self {
        Validation::Valid {
            valid: true,
            summary: summary.into(),
        }
    }

    /// Manifests with these problems.
    pub fn invalid<'a>(problems: impl IntoIterator<Item = &'a ManifestDiagnostic>) -> Self {
        Validation::Invalid {
            valid: false,
            errors: problems.into_iter().map(Problem::from).collect(),
        }
    }
}

/// `apply`: the plan that was applied and what it did.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, JsonSchema)]
pub struct ApplyResult {
    /// The plan applied (the document `plan --json` prints).
    pub plan: Plan,
    /// What was written.
    pub report: ApplyReport,
}

/// The schema of a planned event's `desired` state (the plan-file format):
/// the event as the manifest wants it, every default applied.
#[derive(JsonSchema)]
#[schemars(rename = "DesiredEvent")]
#[allow(dead_code)] // describes `DesiredEvent`'s serialization only
struct DesiredEventShape {
    /// Its key in `events:` (its name in the campaign).
    key: String,
    /// Its kind.
    kind: String,
    /// Free text.
    description: Option<String>,
    /// When: an RFC 3339 time, or `+<ms>ms` relative to the event's start.
    at: String,
    /// The countdown in milliseconds.
    t_minus: i64,
    /// The quorum as written (`"2"`, `"all"`, `"majority"`); for an event
    /// with groups, the total they need.
    quorum: String,
    /// The fire policy.
    fire: crate::FirePolicy,
    /// The cap on the total of all deferrals, in milliseconds.
    max_defer: Option<i64>,
    /// Attendees in order; for an event with groups, every member once.
    attendees: Vec<String>,
    /// Quorum groups in manifest order; only an event with groups has
    /// this key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    groups: Vec<DesiredGroupShape>,
    /// Keys of the events it needs, in manifest order.
    needs: Vec<String>,
    /// Arbitrary JSON (`null` when not given).
    payload: serde_json::Value,
    /// Notification rules (as in manifests); only present when there are
    /// some.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    notify: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// A quorum group of a [`DesiredEventShape`].
#[derive(JsonSchema)]
#[schemars(rename = "DesiredGroup")]
#[allow(dead_code)] // describes `QuorumGroup`'s serialization only
struct DesiredGroupShape {
    /// The group's name.
    name: String,
    /// Its quorum as written.
    quorum: String,
    /// Its members.
    members: Vec<String>,
}

/// The manifest's event as plans serialize it; its shape is checked by the
/// test that validates `plan --json` against [`crate::output::schema`].
impl JsonSchema for crate::manifest::DesiredEvent {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        DesiredEventShape::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        DesiredEventShape::json_schema(generator)
    }
}
