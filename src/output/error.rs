//! A failure, in the shape every front end reports it.

use miette::Diagnostic;
use schemars::JsonSchema;
use serde::Serialize;

use super::manifest::Problem;
use crate::manifest::Diagnostics;

/// What a command prints with `--json` when it fails (exit code 1), and the
/// body of an HTTP error response: `{"error": {"code", "message", "help"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ErrorOutput {
    /// The error.
    pub error: ErrorBody,
}

/// An error: its stable code, what went wrong, and what to do about it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ErrorBody {
    /// The stable code, `t_minus::…` (listed in `docs/exit-codes.md`).
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// What to do about it, when there is something to say.
    pub help: Option<String>,
    /// For invalid manifests: every problem, as `validate --json` lists
    /// them; only present then.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

/// The code of an error that has none of its own.
const UNCODED: &str = "t_minus::error";

impl ErrorBody {
    /// The code, message and help of `error`.
    pub fn new(error: &dyn Diagnostic) -> Self {
        ErrorBody {
            code: error
                .code()
                .map_or_else(|| UNCODED.to_string(), |c| c.to_string()),
            message: error.to_string(),
            help: error.help().map(|h| h.to_string()),
            problems: Vec::new(),
        }
    }

    /// Invalid manifests: the code, message and help of the whole, and
    /// every problem.
    pub fn invalid_manifests(diagnostics: &Diagnostics) -> Self {
        ErrorBody {
            problems: diagnostics.iter().map(Problem::from).collect(),
            ..ErrorBody::new(diagnostics)
        }
    }
}

impl From<ErrorBody> for ErrorOutput {
    fn from(error: ErrorBody) -> Self {
        ErrorOutput { error }
    }
}
