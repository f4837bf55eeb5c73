//! What can go wrong with a GitHub delivery or an answer to GitHub.

use miette::Diagnostic;
use thiserror::Error;

/// A GitHub delivery refused, or an answer that cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, Error, Diagnostic)]
#[non_exhaustive]
pub enum GithubError {
    /// The service was not given a webhook secret (or templates).
    #[error("this service gates no GitHub deployments: {reason}")]
    #[diagnostic(
        code(t_minus::github::not_configured),
        help("give all of T_MINUS_GITHUB_WEBHOOK_SECRET, --github-templates, --github-app-id and --github-private-key, or none (docs/github.md)")
    )]
    NotConfigured {
        /// What is missing.
        reason: String,
    },

    /// `X-Hub-Signature-256` is missing or does not match.
    #[error("the delivery's signature does not check out: {reason}")]
    #[diagnostic(
        code(t_minus::github::signature),
        help("the app's webhook secret and T_MINUS_GITHUB_WEBHOOK_SECRET must be the same")
    )]
    Signature {
        /// Why.
        reason: String,
    },

    /// A delivery whose GUID was seen before.
    #[error("delivery {delivery} was received before (deployment campaign {campaign})")]
    #[diagnostic(
        code(t_minus::github::replayed),
        help("each delivery is acted on once; its campaign already gates the deployment")
    )]
    Replayed {
        /// The `X-GitHub-Delivery` GUID.
        delivery: String,
        /// The campaign made the first time.
        campaign: String,
    },

    /// The delivery's body is not a `deployment_protection_rule` request.
    #[error("the delivery is not a deployment review request: {reason}")]
    #[diagnostic(
        code(t_minus::github::payload),
        help("t-minus acts on `deployment_protection_rule` deliveries with action `requested`")
    )]
    Payload {
        /// Why.
        reason: String,
    },

    /// No template gates this repository and environment.
    #[error("no template gates environment `{environment}` of {repository}")]
    #[diagnostic(
        code(t_minus::github::unknown_gate),
        help("add a manifest document with `github: {{repository: {repository}, environment: {environment}}}` to the templates the service reads (docs/github.md)")
    )]
    UnknownGate {
        /// The repository.
        repository: String,
        /// The environment.
        environment: String,
    },

    /// The callback URL is not under the configured API base URL.
    #[error("the callback URL {url} is not under the GitHub API at {api}")]
    #[diagnostic(
        code(t_minus::github::callback_outside_api),
        help("t-minus calls only URLs under --github-api-url; for GitHub Enterprise set it to https://HOST/api/v3")
    )]
    CallbackOutsideApi {
        /// The URL refused.
        url: String,
        /// The API base URL.
        api: String,
    },

    /// The app's private key cannot sign.
    #[error("the GitHub App's private key {path} cannot be used: {reason}")]
    #[diagnostic(
        code(t_minus::github::key),
        help("give the PEM file GitHub generated for the app (Settings → Developer settings → GitHub Apps → Private keys)")
    )]
    Key {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}
