//! GitHub deployments gated by the service (docs/github.md):
//! `POST /v1/github/webhook` takes the app's deliveries, and a background
//! thread answers GitHub when a deployment's campaign decides.
//!
//! A delivery is checked in this order: the service gates deployments at
//! all (else `404`, `t_minus::github::not_configured`); its
//! `X-Hub-Signature-256` matches the raw body (else `401`,
//! `t_minus::github::signature`); `ping` is answered `200`; an event other
//! than `deployment_protection_rule` is acknowledged `202` and ignored; a
//! review request makes the deployment's campaign (`201`), unless its
//! delivery GUID was seen (`409`, `t_minus::github::replayed`), no template
//! gates its repository and environment (`422`,
//! `t_minus::github::unknown_gate`) or its callback URL is not under the
//! API base URL (`422`, `t_minus::github::callback_outside_api`).
//!
//! The templates are read from their files on every delivery, so an edited
//! template applies to the next deployment without a restart, and several
//! services given the same files agree.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration as StdDuration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::error::{ApiError, ServeError};
use super::routes::run_blocking;
use super::Shared;
use crate::github::{
    verify_signature, CallFailure, DeploymentRequest, GithubApp, GithubDeployment, GithubError,
};
use crate::manifest::{self, ValidManifests, ValidateOptions};
use crate::plan::ManifestError;
use crate::{Engine, FixedClock};

/// The largest delivery body taken (GitHub's payloads for this event are a
/// few tens of kilobytes).
pub const WEBHOOK_BODY_LIMIT: usize = 1 << 20;

/// How often the reporter looks for deployments to answer.
const REPORT_EVERY: StdDuration = StdDuration::from_millis(250);

/// How the service gates GitHub deployments.
#[derive(Debug, Clone)]
pub struct GithubOptions {
    /// The app's webhook secret (`T_MINUS_GITHUB_WEBHOOK_SECRET`).
    pub webhook_secret: String,
    /// The manifest files and directories holding the templates.
    pub templates: Vec<PathBuf>,
    /// The app, which answers GitHub.
    pub app: GithubApp,
}

impl GithubOptions {
    /// The templates, read and checked now.
    pub fn load_templates(
        &self,
        now: DateTime<Utc>,
    ) -> std::result::Result<ValidManifests, ManifestError> {
        let loaded = manifest::load(&self.templates);
        let options = ValidateOptions {
            now: Some(now),
            requester: None,
        };
        manifest::validate(&loaded, &options).map_err(ManifestError::Invalid)
    }
}

/// A header's text, if present and visible ASCII.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `POST /v1/github/webhook`.
pub(super) async fn webhook(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let Some(github) = shared.github.clone() else {
        return Err(ApiError::from(crate::TMinusError::from(
            GithubError::NotConfigured {
                reason: "no webhook secret and app were given".into(),
            },
        )));
    };
    let body = body.map_err(|e| {
        ApiError::from(ServeError::Body {
            reason: e.body_text(),
        })
    })?;
    verify_signature(
        github.webhook_secret.as_bytes(),
        &body,
        header(&headers, "x-hub-signature-256"),
    )
    .map_err(|e| ApiError::from(crate::TMinusError::from(e)))?;
    let event = header(&headers, "x-github-event").unwrap_or("").to_string();
    match event.as_str() {
        "ping" => {
            return Ok((
                StatusCode::OK,
                Json(json!({
                    "event": "ping",
                    "message": "pong: t-minus gates deployment_protection_rule deliveries",
                })),
            )
                .into_response())
        }
        crate::github::PROTECTION_RULE_EVENT => {}
        other => {
            return Ok((
                StatusCode::ACCEPTED,
                Json(json!({
                    "event": other,
                    "ignored": true,
                    "message": format!(
                        "t-minus acts on deployment_protection_rule deliveries only; `{other}` is ignored (unsubscribe the app from it)"
                    ),
                })),
            )
                .into_response())
        }
    }
    let to_api = |e: GithubError| ApiError::from(crate::TMinusError::from(e));
    let delivery = header(&headers, "x-github-delivery")
        .filter(|d| !d.is_empty() && d.len() <= 128)
        .ok_or_else(|| {
            to_api(GithubError::Payload {
                reason: "no X-GitHub-Delivery header".into(),
            })
        })?
        .to_string();
    let request = DeploymentRequest::parse(&body).map_err(to_api)?;
    let (deployment, campaign) = run_blocking(&shared, true, move |engine| {
        let templates = github.load_templates(engine.now())?;
        let deployment = engine
            .gate_github_deployment(&delivery, &request, &templates, github.app.api())
            .map_err(ApiError::from)?;
        let id = deployment.campaign;
        let name = engine.read(|tx| tx.campaign(id))?.map(|c| c.name);
        Ok((deployment, name))
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "deployment": deployment,
            "campaign": campaign,
        })),
    )
        .into_response())
}

/// Answers GitHub in the background: every quarter second (`REPORT_EVERY`), the
/// deployments whose campaign decided (`report_due`).
#[derive(Debug)]
pub struct Reporter {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Reporter {
    /// Starts answering for the store at `location`, on a connection of
    /// its own; log entries are written at `pinned` when set (tests).
    pub fn start(location: &str, pinned: Option<DateTime<Utc>>, app: GithubApp) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let location = location.to_string();
        let thread = std::thread::Builder::new()
            .name("t-minus-github".into())
            .spawn(move || run(&location, pinned, &app, &flag))
            .ok();
        Reporter { stop, thread }
    }

    /// Stops once the pass under way ends.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The reporter's loop: reconnects after a store error.
fn run(location: &str, pinned: Option<DateTime<Utc>>, app: &GithubApp, stop: &AtomicBool) {
    let mut engine: Option<Engine> = None;
    while !stop.load(Ordering::SeqCst) {
        if engine.is_none() {
            match crate::store::open_again(location) {
                Ok(store) => {
                    let mut e = Engine::with_store(store);
                    if let Some(now) = pinned {
                        e.set_clock(Arc::new(FixedClock::new(now)));
                    }
                    engine = Some(e);
                }
                Err(e) => eprintln!("t-minus serve: GitHub answers: {e}"),
            }
        }
        if let Some(e) = engine.as_mut() {
            match report_due(e, app) {
                Ok(done) => {
                    for r in done {
                        if let Some(f) = &r.failure {
                            eprintln!(
                                "t-minus serve: GitHub answer for {} {} (attempt {}): {}",
                                r.deployment.repository,
                                r.deployment.environment,
                                r.deployment.attempts,
                                f.message
                            );
                        }
                    }
                }
                Err(err) => {
                    eprintln!("t-minus serve: GitHub answers: {err}");
                    engine = None;
                }
            }
        }
        let mut left = REPORT_EVERY;
        while !left.is_zero() && !stop.load(Ordering::SeqCst) {
            let step = left.min(StdDuration::from_millis(25));
            std::thread::sleep(step);
            left -= step;
        }
    }
}

/// How many deployments one pass claims at most.
const CLAIM_LIMIT: usize = 32;

/// One answer attempted by [`report_due`]: the deployment as recorded
/// after the attempt, and the failure if it failed.
#[derive(Debug, Clone)]
struct Reported {
    /// The deployment, its state after the attempt.
    deployment: GithubDeployment,
    /// Why the attempt failed, if it did.
    failure: Option<CallFailure>,
}

/// Answers GitHub for every deployment whose campaign has decided and whose
/// answer is due: claims them ([`Engine::claim_github_reports`]), sends each
/// and records the outcome ([`Engine::record_github_report`]). Blocks for
/// the requests.
fn report_due(engine: &mut Engine, app: &GithubApp) -> crate::Result<Vec<Reported>> {
    let mut done = Vec::new();
    for d in engine.claim_github_reports(CLAIM_LIMIT)? {
        let now = chrono::Utc::now().timestamp();
        let failure = app.review(&d, now).err();
        let recorded = engine.record_github_report(
            &d,
            failure.as_ref().map(|f| (f.message.as_str(), f.permanent)),
        )?;
        done.push(Reported {
            deployment: recorded,
            failure,
        });
    }
    Ok(done)
}
