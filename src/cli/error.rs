//! Errors of the command line, rendered as miette reports on stderr.

use t_minus::output::{ErrorBody, ErrorOutput};
use t_minus::plan::ManifestError;
use t_minus::TMinusError;

/// An error a command ends with.
#[derive(Debug)]
pub enum CliError {
    /// From the engine or the store.
    Engine(TMinusError),
    /// From manifests, plans or apply.
    Manifest(ManifestError),
}

impl From<TMinusError> for CliError {
    fn from(e: TMinusError) -> Self {
        CliError::Engine(e)
    }
}

impl From<ManifestError> for CliError {
    fn from(e: ManifestError) -> Self {
        match e {
            ManifestError::Store(e) => CliError::Engine(e),
            other => CliError::Manifest(other),
        }
    }
}

impl CliError {
    /// The error as `--json` prints it: code, message, help, and for
    /// invalid manifests every problem.
    pub fn output(&self) -> ErrorOutput {
        match self {
            CliError::Manifest(ManifestError::Invalid(diagnostics)) => {
                ErrorBody::invalid_manifests(diagnostics)
            }
            CliError::Manifest(e) => ErrorBody::new(e),
            CliError::Engine(e) => ErrorBody::new(e),
        }
        .into()
    }

    /// Prints the error to stderr: every manifest problem as its own report
    /// (with its source snippet), then a count; anything else as one report.
    pub fn print(self) {
        match self {
            CliError::Manifest(ManifestError::Invalid(diagnostics)) => {
                let count = diagnostics.len();
                for d in diagnostics.iter() {
                    eprintln!("{:?}", miette::Report::new(d.clone()));
                }
                let noun = if count == 1 { "problem" } else { "problems" };
                eprintln!("error: {count} {noun} found; nothing was changed");
            }
            CliError::Manifest(e) => eprintln!("{:?}", miette::Report::new(e)),
            CliError::Engine(e) => eprintln!("{:?}", miette::Report::new(e)),
        }
    }
}
