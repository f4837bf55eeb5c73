//! Answering GitHub as a GitHub App: a JSON Web Token signed with the
//! app's private key (RS256; `iss` the app's id, `iat` 60 s in the past,
//! `exp` nine minutes ahead), exchanged for an installation access token
//! (`POST {api}/app/installations/{id}/access_tokens`), which authenticates
//! the review at the delivery's `deployment_callback_url`
//! (`{"environment_name", "state", "comment"}`).

use std::time::Duration as StdDuration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use super::{is_under, GithubDeployment, GithubError};

/// The public GitHub API.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// The REST API version t-minus speaks (`X-GitHub-Api-Version`).
pub const API_VERSION: &str = "2022-11-28";

/// How long one HTTP request to GitHub may take.
const REQUEST_TIMEOUT: StdDuration = StdDuration::from_secs(20);

/// A GitHub App as t-minus authenticates: its id, its private key and the
/// API it talks to.
#[derive(Clone)]
pub struct GithubApp {
    app_id: String,
    key: EncodingKey,
    api: String,
    http: ureq::Agent,
}

impl std::fmt::Debug for GithubApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubApp")
            .field("app_id", &self.app_id)
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

/// The claims of the app's token.
#[derive(Debug, Serialize, Deserialize)]
struct AppClaims {
    iat: i64,
    exp: i64,
    iss: String,
}

/// GitHub's answer to an installation token request (the fields used).
#[derive(Debug, Deserialize)]
struct InstallationToken {
    token: String,
}

/// The body of a review of a custom deployment protection rule.
#[derive(Debug, Serialize)]
struct Review<'a> {
    environment_name: &'a str,
    state: &'a str,
    comment: &'a str,
}

/// Why an attempt failed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFailure {
    /// What went wrong.
    pub message: String,
    /// Trying again cannot help (GitHub refused the request as such).
    pub permanent: bool,
}

impl GithubApp {
    /// The app `app_id` with the private key in PEM `pem` (as GitHub
    /// generates it: PKCS#1, or PKCS#8), talking to the API at `api` (e.g.
    /// [`DEFAULT_API_URL`], or `https://HOST/api/v3` for GitHub Enterprise
    /// Server). `key_name` names the key in errors.
    pub fn new(
        app_id: &str,
        pem: &[u8],
        key_name: &str,
        api: &str,
    ) -> std::result::Result<Self, GithubError> {
        let key = EncodingKey::from_rsa_pem(pem).map_err(|e| GithubError::Key {
            path: key_name.to_string(),
            reason: e.to_string(),
        })?;
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("t-minus/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(GithubApp {
            app_id: app_id.to_string(),
            key,
            api: api.trim_end_matches('/').to_string(),
            http: ureq::Agent::new_with_config(config),
        })
    }

    /// The API base URL, without a trailing slash.
    pub fn api(&self) -> &str {
        &self.api
    }

    /// The app's JSON Web Token at `now` (seconds since the epoch).
    pub fn jwt(&self, now: i64) -> std::result::Result<String, CallFailure> {
        let claims = AppClaims {
            iat: now - 60,
            exp: now + 9 * 60,
            iss: self.app_id.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key).map_err(|e| {
            CallFailure {
                message: format!("cannot sign the app's token: {e}"),
                permanent: true,
            }
        })
    }

    /// A POST to `url` with bearer `token` and a JSON `body`: the status and
    /// the body of the answer.
    fn post(
        &self,
        url: &str,
        token: &str,
        body: String,
    ) -> std::result::Result<(u16, String), CallFailure> {
        let mut response = self
            .http
            .post(url)
            .header("Accept", "application/vnd.github+json")
            .header("Authorization", format!("Bearer {token}"))
            .header("X-GitHub-Api-Version", API_VERSION)
            .header("Content-Type", "application/json")
            .send(body)
            .map_err(|e| CallFailure {
                message: format!("{url}: {e}"),
                permanent: false,
            })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .unwrap_or_default();
        Ok((status, text))
    }

    /// An installation access token for `installation`.
    pub fn installation_token(
        &self,
        installation: i64,
        now: i64,
    ) -> std::result::Result<String, CallFailure> {
        let jwt = self.jwt(now)?;
        let url = format!(
            "{}/app/installations/{installation}/access_tokens",
            self.api
        );
        let (status, body) = self.post(&url, &jwt, String::new())?;
        if status != 201 && status != 200 {
            return Err(refusal(&url, status, &body));
        }
        let token: InstallationToken = serde_json::from_str(&body).map_err(|e| CallFailure {
            message: format!("{url}: an answer without a token: {e}"),
            permanent: false,
        })?;
        Ok(token.token)
    }

    /// Sends `d`'s verdict to its callback URL, as installation
    /// `d.installation_id`. Refused without a request when the URL is not
    /// under the API base.
    pub fn review(&self, d: &GithubDeployment, now: i64) -> std::result::Result<(), CallFailure> {
        if !is_under(&self.api, &d.callback_url) {
            return Err(CallFailure {
                message: GithubError::CallbackOutsideApi {
                    url: d.callback_url.clone(),
                    api: self.api.clone(),
                }
                .to_string(),
                permanent: true,
            });
        }
        let Some(verdict) = d.verdict else {
            return Err(CallFailure {
                message: "the campaign has not decided".into(),
                permanent: false,
            });
        };
        let token = self.installation_token(d.installation_id, now)?;
        let body = serde_json::to_string(&Review {
            environment_name: &d.environment,
            state: verdict.as_str(),
            comment: d.comment.as_deref().unwrap_or(""),
        })
        .unwrap_or_default();
        let (status, text) = self.post(&d.callback_url, &token, body)?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(refusal(&d.callback_url, status, &text))
        }
    }
}

/// The failure of an answer with `status`: worth retrying for 408, 429 and
/// 5xx, permanent for other statuses.
fn refusal(url: &str, status: u16, body: &str) -> CallFailure {
    let message: String = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    CallFailure {
        message: if message.is_empty() {
            format!("HTTP {status} from {url}")
        } else {
            format!("HTTP {status} from {url}: {message}")
        },
        permanent: !matches!(status, 408 | 429 | 500..=599),
    }
}
