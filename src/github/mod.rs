//! GitHub deployments gated by quorum: t-minus as a GitHub App's custom
//! deployment protection rule (docs/github.md).
//!
//! 1. GitHub sends a `deployment_protection_rule` webhook when a workflow
//!    job wants to deploy to an environment whose protection rules name the
//!    app. [`verify_signature`] checks its `X-Hub-Signature-256`;
//!    [`DeploymentRequest::parse`] reads the payload.
//! 2. [`crate::Engine::gate_github_deployment`] makes a campaign of the
//!    template (a manifest document with a `github:` section,
//!    [`crate::manifest::model::GithubTemplate`]) for that repository and
//!    environment, in one transaction with the deployment's row (its
//!    delivery GUID unique, so a replayed delivery is refused) and its
//!    `github-requested` log entry.
//! 3. When the campaign decides (every event fired: approved; an event
//!    missed or cancelled: rejected), `t-minus serve`'s reporter
//!    ([`crate::serve::github::Reporter`]) answers GitHub at the
//!    request's `deployment_callback_url`, authenticated as the app
//!    ([`GithubApp`]: a JSON Web Token exchanged for an installation
//!    token), retried with backoff and recorded in the store, so it is done
//!    once across restarts and several services (`github-reported`, or
//!    `github-report-failed` when given up).

mod client;
mod error;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

pub use client::{CallFailure, GithubApp, API_VERSION, DEFAULT_API_URL};
pub use error::GithubError;

/// The webhook event this integration acts on.
pub const PROTECTION_RULE_EVENT: &str = "deployment_protection_rule";

/// How often a callback is attempted before it is given up.
pub const MAX_ATTEMPTS: u32 = 10;

/// Where a deployment's answer to GitHub stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportState {
    /// The campaign has not decided, or the answer is not sent yet.
    Waiting,
    /// GitHub accepted the answer.
    Reported,
    /// The answer was given up (a permanent refusal, or every attempt
    /// failed).
    Failed,
}

impl ReportState {
    /// The word stored: `waiting`, `reported`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportState::Waiting => "waiting",
            ReportState::Reported => "reported",
            ReportState::Failed => "failed",
        }
    }
}

impl FromStr for ReportState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "waiting" => Ok(ReportState::Waiting),
            "reported" => Ok(ReportState::Reported),
            "failed" => Ok(ReportState::Failed),
            other => Err(format!("unknown report state `{other}`")),
        }
    }
}

/// What t-minus answers GitHub: the `state` of the review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every event of the deployment's campaign fired.
    Approved,
    /// An event of the campaign was missed or cancelled.
    Rejected,
}

impl Verdict {
    /// `approved` or `rejected`, as GitHub takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approved => "approved",
            Verdict::Rejected => "rejected",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Verdict {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "approved" => Ok(Verdict::Approved),
            "rejected" => Ok(Verdict::Rejected),
            other => Err(format!("unknown verdict `{other}`")),
        }
    }
}

/// A GitHub deployment that t-minus gates: one accepted
/// `deployment_protection_rule` delivery and where its answer stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GithubDeployment {
    /// Its id (the subject of its log entries).
    pub id: Uuid,
    /// GitHub's `X-GitHub-Delivery` GUID.
    pub delivery: String,
    /// The campaign made for it.
    pub campaign: Uuid,
    /// The template it was made of.
    pub template: String,
    /// The repository, `owner/name`.
    pub repository: String,
    /// The environment.
    pub environment: String,
    /// GitHub's id of the deployment.
    pub deployment_id: Option<i64>,
    /// The ref deployed.
    pub git_ref: Option<String>,
    /// The commit deployed.
    pub sha: Option<String>,
    /// The workflow run's page.
    pub run_url: Option<String>,
    /// The app installation the answer is sent as.
    pub installation_id: i64,
    /// Where the answer goes.
    pub callback_url: String,
    /// When the delivery was accepted.
    pub received_at: DateTime<Utc>,
    /// Where the answer stands.
    pub state: ReportState,
    /// The answer, once the campaign decided.
    pub verdict: Option<Verdict>,
    /// The comment sent with it.
    pub comment: Option<String>,
    /// Attempts made to send it.
    pub attempts: u32,
    /// When the next attempt may run (wall clock), or when the lease of
    /// the attempt under way ends.
    pub next_at: DateTime<Utc>,
    /// When it was reported or given up.
    pub finished_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// Whether `name` is a repository's full name, `owner/name`.
pub fn is_repository_name(name: &str) -> bool {
    let ok = |part: &str| {
        !part.is_empty()
            && part.len() <= 100
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match name.split_once('/') {
        Some((owner, repo)) => ok(owner) && ok(repo),
        None => false,
    }
}

/// Checks `X-Hub-Signature-256` (`sha256=` and the hex HMAC-SHA256 of the
/// raw body keyed with the webhook secret), comparing in constant time.
pub fn verify_signature(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), GithubError> {
    use hmac::{Hmac, Mac};
    let bad = |why: &str| GithubError::Signature {
        reason: why.to_string(),
    };
    let header = header.ok_or_else(|| bad("no X-Hub-Signature-256 header"))?;
    let hex = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or_else(|| bad("X-Hub-Signature-256 does not start with `sha256=`"))?;
    let mut expected = [0u8; 32];
    let decoded = base16ct::mixed::decode(hex, &mut expected)
        .map_err(|_| bad("X-Hub-Signature-256 is not 64 hex digits"))?;
    if decoded.len() != 32 {
        return Err(bad("X-Hub-Signature-256 is not 64 hex digits"));
    }
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret)
        .map_err(|_| bad("the webhook secret cannot key HMAC-SHA256"))?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| bad("the signature does not match the body and the webhook secret"))
}

/// The `X-Hub-Signature-256` value of `body` under `secret`, as GitHub
/// computes it (for tests and fakes).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    // HMAC takes a key of any length.
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!(
        "sha256={}",
        base16ct::lower::encode_string(&mac.finalize().into_bytes())
    )
}

/// What a `deployment_protection_rule` delivery asks (its `requested`
/// action): the fields t-minus uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentRequest {
    /// The repository, `owner/name` (`repository.full_name`).
    pub repository: String,
    /// The environment (`environment`).
    pub environment: String,
    /// What triggered it (`event`, e.g. `push`).
    pub event: Option<String>,
    /// Where to answer (`deployment_callback_url`).
    pub callback_url: String,
    /// The app installation (`installation.id`).
    pub installation_id: i64,
    /// The deployment's id (`deployment.id`).
    pub deployment_id: Option<i64>,
    /// The ref (`deployment.ref`, else `ref`).
    pub git_ref: Option<String>,
    /// The commit (`deployment.sha`, else `sha`).
    pub sha: Option<String>,
    /// The workflow run's page: the repository's page and the run id of the
    /// callback URL (`…/actions/runs/{run_id}/…`).
    pub run_url: Option<String>,
    /// Who triggered it (`sender.login`).
    pub sender: Option<String>,
}

impl DeploymentRequest {
    /// Reads a delivery's JSON body. Refused when it is not JSON, its
    /// `action` is not `requested`, or a field t-minus needs is missing.
    pub fn parse(body: &[u8]) -> Result<Self, GithubError> {
        let bad = |reason: String| GithubError::Payload { reason };
        let v: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| bad(format!("not JSON: {e}")))?;
        let text = |path: &[&str]| -> Option<String> {
            let mut at = &v;
            for key in path {
                at = at.get(key)?;
            }
            at.as_str().map(str::to_string)
        };
        let int = |path: &[&str]| -> Option<i64> {
            let mut at = &v;
            for key in path {
                at = at.get(key)?;
            }
            at.as_i64()
        };
        let action = text(&["action"]).unwrap_or_default();
        if action != "requested" {
            return Err(bad(format!(
                "the action is `{action}`; t-minus acts on `requested`"
            )));
        }
        let need = |path: &[&str]| {
            text(path).ok_or_else(|| bad(format!("`{}` is missing", path.join("."))))
        };
        let repository = need(&["repository", "full_name"])?;
        let environment = need(&["environment"])?;
        let callback_url = need(&["deployment_callback_url"])?;
        let installation_id = int(&["installation", "id"])
            .ok_or_else(|| bad("`installation.id` is missing".into()))?;
        let run_url = match (text(&["repository", "html_url"]), run_id(&callback_url)) {
            (Some(page), Some(run)) => {
                Some(format!("{}/actions/runs/{run}", page.trim_end_matches('/')))
            }
            _ => None,
        };
        Ok(DeploymentRequest {
            repository,
            environment,
            event: text(&["event"]),
            callback_url,
            installation_id,
            deployment_id: int(&["deployment", "id"]),
            git_ref: text(&["deployment", "ref"]).or_else(|| text(&["ref"])),
            sha: text(&["deployment", "sha"]).or_else(|| text(&["sha"])),
            run_url,
            sender: text(&["sender", "login"]),
        })
    }

    /// What the deployment's events carry in their payload, under
    /// `github`.
    pub fn payload(&self, delivery: &str) -> serde_json::Value {
        serde_json::json!({
            "repository": self.repository,
            "environment": self.environment,
            "ref": self.git_ref,
            "sha": self.sha,
            "run_url": self.run_url,
            "deployment_id": self.deployment_id,
            "event": self.event,
            "sender": self.sender,
            "delivery": delivery,
        })
    }
}

/// The run id in a callback URL `…/actions/runs/{run_id}/deployment_protection_rule`.
fn run_id(url: &str) -> Option<u64> {
    let (_, rest) = url.split_once("/actions/runs/")?;
    rest.split('/').next()?.parse().ok()
}

/// Whether `url` lies under the API base `api`: the same scheme, host and
/// port, and a path under the base's path. Query strings, fragments,
/// user names and `..` segments are refused outright.
pub fn is_under(api: &str, url: &str) -> bool {
    let split = |u: &str| -> Option<(String, String)> {
        let (scheme, rest) = u.split_once("://")?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        Some((
            format!(
                "{}://{}",
                scheme.to_ascii_lowercase(),
                authority.to_ascii_lowercase()
            ),
            path.to_string(),
        ))
    };
    if url.contains(['?', '#', '\\']) || url.split('/').any(|s| s == ".." || s == ".") {
        return false;
    }
    let (Some((base_origin, base_path)), Some((origin, path))) = (split(api), split(url)) else {
        return false;
    };
    if base_origin != origin {
        return false;
    }
    let base_path = base_path.trim_end_matches('/');
    path.starts_with(&format!("{base_path}/"))
}

/// The name of the campaign made for a deployment: the template's name and
/// the deployment's id (or the delivery's first characters), within the
/// 64 characters a name may have.
pub fn campaign_name(template: &str, request: &DeploymentRequest, delivery: &str) -> String {
    let suffix = match request.deployment_id {
        Some(id) => id.to_string(),
        None => delivery
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(12)
            .collect(),
    };
    let room = 63usize.saturating_sub(suffix.len());
    let head: String = template.chars().take(room).collect();
    format!("{head}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_checked_against_the_body() {
        let body = br#"{"action":"requested"}"#;
        let good = sign(b"s3cret", body);
        assert!(verify_signature(b"s3cret", body, Some(&good)).is_ok());
        assert!(verify_signature(b"other", body, Some(&good)).is_err());
        assert!(verify_signature(b"s3cret", b"{}", Some(&good)).is_err());
        assert!(verify_signature(b"s3cret", body, None).is_err());
        assert!(verify_signature(b"s3cret", body, Some("sha1=abc")).is_err());
        assert!(verify_signature(b"s3cret", body, Some("sha256=zz")).is_err());
    }

    #[test]
    fn callback_urls_must_lie_under_the_api_base() {
        let api = "https://api.github.com";
        assert!(is_under(
            api,
            "https://api.github.com/repos/o/r/actions/runs/1/deployment_protection_rule"
        ));
        assert!(!is_under(api, "https://evil.example/repos/o/r"));
        assert!(!is_under(api, "https://api.github.com.evil.example/repos"));
        assert!(!is_under(api, "http://api.github.com/repos/o/r"));
        assert!(!is_under(api, "https://user@api.github.com/repos/o/r"));
        assert!(!is_under(api, "https://api.github.com/repos/../x"));
        let ghe = "https://ghe.example.com/api/v3/";
        assert!(is_under(ghe, "https://ghe.example.com/api/v3/repos/o/r"));
        assert!(!is_under(ghe, "https://ghe.example.com/api/v30/repos"));
        assert!(!is_under(ghe, "https://ghe.example.com/repos/o/r"));
    }

    #[test]
    fn repository_names_are_owner_slash_name() {
        assert!(is_repository_name("octo-org/web.site"));
        assert!(!is_repository_name("octo-org"));
        assert!(!is_repository_name("a/b/c"));
        assert!(!is_repository_name("/web"));
    }

    #[test]
    fn the_run_page_comes_from_the_callback_url() {
        let body = serde_json::json!({
            "action": "requested",
            "environment": "production",
            "event": "push",
            "deployment_callback_url": "https://api.github.com/repos/o/r/actions/runs/42/deployment_protection_rule",
            "deployment": {"id": 7, "ref": "main", "sha": "abc"},
            "repository": {"full_name": "o/r", "html_url": "https://github.com/o/r"},
            "installation": {"id": 9},
        });
        let r = DeploymentRequest::parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            r.run_url.as_deref(),
            Some("https://github.com/o/r/actions/runs/42")
        );
        assert_eq!((r.deployment_id, r.installation_id), (Some(7), 9));
        assert_eq!(campaign_name("web-prod", &r, "d"), "web-prod-7");
    }
}
