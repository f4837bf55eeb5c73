//! Manifests sent over HTTP: parsed from the request body, refused when
//! they would read the server's files or run its programs.
//!
//! A manifest on the command line may name files beside it (`signers:
//! ./allowed_signers`) and programs to run (`notify: [{exec: [...]}]`).
//! Over HTTP both would resolve on the server's host, so applying a
//! manifest would read or run whatever its sender names. The server
//! refuses every file reference, and every exec hook unless its program is
//! named by an absolute path under a directory the server's operator
//! allowed (`serve --allow-exec DIR`).

use std::path::{Path, PathBuf};

use super::error::ServeError;
use crate::manifest::spec::{NotifySpec, SignersSpec, Spanned};
use crate::manifest::{Diagnostics, Limits, Manifests, ValidManifests, ValidateOptions};
use crate::plan::ManifestError;

/// The name manifests sent over HTTP have in diagnostics.
pub const REQUEST_NAME: &str = "request.yaml";

/// What a remote manifest may use of the server's host.
#[derive(Debug, Clone, Default)]
pub struct ExecPolicy {
    /// Directories whose programs exec hooks may run (canonical paths);
    /// empty: none.
    allowed: Vec<PathBuf>,
}

impl ExecPolicy {
    /// Programs under `dirs` may run; each must exist (it is made
    /// canonical, so that `..` and links cannot lead out of it).
    pub fn allow(dirs: &[PathBuf]) -> std::io::Result<Self> {
        let allowed = dirs
            .iter()
            .map(std::fs::canonicalize)
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(ExecPolicy { allowed })
    }

    /// The allowed directories.
    pub fn allowed(&self) -> &[PathBuf] {
        &self.allowed
    }

    /// Whether `program` may run: an absolute path to an existing file
    /// whose canonical path is under an allowed directory.
    fn permits(&self, program: &str) -> bool {
        let path = Path::new(program);
        if !path.is_absolute() {
            return false;
        }
        let Ok(real) = std::fs::canonicalize(path) else {
            return false;
        };
        self.allowed.iter().any(|dir| real.starts_with(dir))
    }
}

/// Parses and validates the manifests of a request body (several YAML
/// documents allowed), after refusing file references and exec hooks the
/// policy does not allow. `requester`, the token's agent, is the requester
/// of every event: a `requested_by` naming another agent is refused.
pub fn load(
    text: &str,
    policy: &ExecPolicy,
    requester: crate::AgentId,
) -> Result<ValidManifests, super::ApiError> {
    let mut manifests = Manifests::default();
    manifests.add_str(REQUEST_NAME, text, &Limits::default());
    check_host_use(&manifests, policy)?;
    let options = ValidateOptions {
        requester: Some(requester),
        ..ValidateOptions::default()
    };
    crate::manifest::validate(&manifests, &options)
        .map_err(|d: Diagnostics| ManifestError::Invalid(d).into())
}

/// Refuses the first file reference or disallowed exec hook.
fn check_host_use(manifests: &Manifests, policy: &ExecPolicy) -> Result<(), ServeError> {
    for doc in &manifests.documents {
        let spec = &doc.spec;
        let campaign = &spec.campaign.value.0;
        if let Some(Spanned {
            value: SignersSpec::File(path),
            ..
        }) = &spec.signers
        {
            return Err(ServeError::FileReference {
                what: format!("campaign `{campaign}`'s `signers`"),
                path: path.clone(),
            });
        }
        check_rules(
            spec.notify.as_ref(),
            &format!("campaign `{campaign}`"),
            policy,
        )?;
        for (name, event) in &spec.events.0 {
            let what = format!("event `{campaign}/{}`", name.value.0);
            check_rules(event.value.notify.as_ref(), &what, policy)?;
        }
    }
    Ok(())
}

/// Refuses an exec hook among `rules` that the policy does not allow.
fn check_rules(
    rules: Option<&Spanned<Vec<Spanned<NotifySpec>>>>,
    what: &str,
    policy: &ExecPolicy,
) -> Result<(), ServeError> {
    let Some(rules) = rules else { return Ok(()) };
    for rule in &rules.value {
        let Some(exec) = &rule.value.exec else {
            continue;
        };
        let program = exec
            .value
            .first()
            .map(|p| p.value.clone())
            .unwrap_or_default();
        if !policy.permits(&program) {
            return Err(ServeError::Exec {
                what: format!("a notification rule of {what}"),
                program,
            });
        }
    }
    Ok(())
}
