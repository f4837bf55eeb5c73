//! Declarative campaigns: YAML manifests (docs/manifest.md).
//!
//! The pipeline, one step per module:
//!
//! 1. [`load`] ([`parse`]) reads files and directories (every `*.yaml` /
//!    `*.yml` in name order; several `---` documents per file, one campaign
//!    each) into [`spec`] types, within input [`Limits`].
//! 2. [`validate()`] checks everything and resolves defaults into the desired
//!    state ([`ValidManifests`]), or returns every problem as [`Diagnostics`]:
//!    miette reports with a stable code (`t_minus::manifest::…`), a help line
//!    and labels at the exact YAML nodes.
//! 3. [`crate::Engine::plan`] compares the desired state with the store and
//!    [`crate::Engine::apply_plan`] / [`crate::Engine::apply_manifests`] write
//!    it, in one transaction (see [`crate::plan`]).
//!
//! ```
//! use t_minus::manifest::{self, ValidateOptions};
//! use t_minus::plan::PlanOptions;
//! use t_minus::Engine;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let yaml = r#"
//! campaign: release-v2
//! events:
//!   checkpoint:
//!     at: +10m
//!     attendees: [ci-bot]
//!   review:
//!     needs: [checkpoint]
//!     at: +20m
//!     quorum: 2
//!     attendees: [alice, bob, carol]
//! "#;
//! let parsed = manifest::parse_str("release.yaml", yaml);
//! let desired = manifest::validate(&parsed, &ValidateOptions::default())?;
//! assert_eq!(desired.summary().to_string(), "1 campaign, 2 events, 1 edge");
//!
//! let mut engine = Engine::in_memory()?;
//! let plan = engine.plan(&desired, &PlanOptions::default())?;
//! assert_eq!(plan.summary_line(), "Plan: 3 to add, 0 to change, 0 to destroy.");
//! engine.apply_plan(&plan)?;
//!
//! // Applying again changes nothing.
//! let again = engine.plan(&desired, &PlanOptions::default())?;
//! assert!(again.is_empty());
//! # Ok(()) }
//! ```

pub mod diagnostics;
pub mod model;
pub mod parse;
mod recover;
pub mod schema;
pub mod spec;
pub mod validate;

use std::path::Path;

pub use diagnostics::{DiagnosticCode, Diagnostics, ManifestDiagnostic, SourceFile};
pub use model::{DesiredCampaign, DesiredEvent, Field, GithubTemplate, Summary, ValidManifests};
pub use parse::{Limits, Manifests, DEFAULT_MAX_FILE_BYTES, NODES_PER_BYTE};
pub use validate::{validate, ValidateOptions};

/// Reads manifest paths (files, or directories meaning their `*.yaml` and
/// `*.yml` files in name order) with the default [`Limits`]. Never fails:
/// unreadable files and parse errors are recorded in
/// [`Manifests::problems`], which [`validate()`] reports together with every
/// other problem.
pub fn load<P: AsRef<Path>>(paths: &[P]) -> Manifests {
    load_with_limits(paths, &Limits::default())
}

/// [`load`] with explicit limits.
pub fn load_with_limits<P: AsRef<Path>>(paths: &[P], limits: &Limits) -> Manifests {
    let mut manifests = Manifests::default();
    for path in paths {
        manifests.add_path(path.as_ref(), limits);
    }
    manifests
}

/// Parses manifest text held in memory, named `name` in diagnostics.
pub fn parse_str(name: &str, text: &str) -> Manifests {
    let mut manifests = Manifests::default();
    manifests.add_str(name, text, &Limits::default());
    manifests
}

/// [`load`] then [`validate()`]: the desired state, or every problem found.
pub fn check<P: AsRef<Path>>(
    paths: &[P],
    options: &ValidateOptions,
) -> Result<ValidManifests, Diagnostics> {
    validate(&load(paths), options)
}
