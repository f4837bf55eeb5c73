//! GitHub deployments gated by `t-minus serve` (docs/github.md), end to
//! end: the real binary receives deliveries signed as GitHub signs them and
//! answers a local fake of GitHub's API that follows its documented formats:
//! it checks the app's JSON Web Token (RS256, with the app's public key;
//! `iss` the app id, `iat` in the past, `exp` at most ten minutes ahead),
//! issues installation tokens (`POST /app/installations/{id}/access_tokens`,
//! `201` with `token`), and records reviews at the callback URL
//! (`POST /repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule`
//! with `environment_name`, `state` and `comment`, `204`); it can fail a
//! review once. Every test runs on SQLite and on PostgreSQL.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};

use crate::cli_support::{self, T};
use crate::serve::Server;

const SECRET: &str = "webhook-secret-for-tests";
const APP_ID: &str = "424242";
const INSTALLATION: i64 = 77;
const KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/github/app.pem");
const PUBLIC_KEY: &[u8] = include_bytes!("fixtures/github/app.pub.pem");

/// The template every test uses: quorum 2 of three, an hour to decide.
const TEMPLATE: &str = r#"campaign: web-prod
github:
  repository: octo-org/web
  environment: production
events:
  approve:
    kind: deploy
    at: +1h
    quorum: 2
    attendees: [alice, bob, carol]
    payload: {team: web}
"#;

/// A review GitHub's fake received.
#[derive(Debug, Clone)]
struct Review {
    path: String,
    body: Value,
}

#[derive(Default)]
struct FakeState {
    tokens: HashSet<String>,
    issued: u32,
    reviews: Vec<Review>,
    refused: Vec<String>,
    fail_next_reviews: u32,
    failed_reviews: u32,
}

/// A local GitHub API.
struct FakeGithub {
    base: String,
    state: Arc<Mutex<FakeState>>,
    _runtime: tokio::runtime::Runtime,
}

fn api_error(status: StatusCode, message: &str) -> axum::response::Response {
    (
        status,
        Json(json!({
            "message": message,
            "documentation_url": "https://docs.github.com/rest",
        })),
    )
        .into_response()
}

/// The headers GitHub asks REST clients to send.
fn rest_headers_problem(headers: &HeaderMap) -> Option<&'static str> {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if value("accept") != Some("application/vnd.github+json") {
        return Some("Accept is not application/vnd.github+json");
    }
    if value("x-github-api-version") != Some("2022-11-28") {
        return Some("X-GitHub-Api-Version is not 2022-11-28");
    }
    None
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string)
}

/// `POST /app/installations/{installation_id}/access_tokens`: the app's
/// JWT checked with its public key.
async fn access_tokens(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path(installation): Path<i64>,
    headers: HeaderMap,
) -> axum::response::Response {
    let refuse = |why: String| {
        state.lock().unwrap().refused.push(why.clone());
        api_error(StatusCode::UNAUTHORIZED, &why)
    };
    if let Some(problem) = rest_headers_problem(&headers) {
        return refuse(problem.into());
    }
    let Some(jwt) = bearer(&headers) else {
        return refuse("no bearer token".into());
    };
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(PUBLIC_KEY).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[APP_ID]);
    validation.set_required_spec_claims(&["exp", "iat", "iss"]);
    validation.leeway = 0;
    let claims = match jsonwebtoken::decode::<Value>(&jwt, &key, &validation) {
        Ok(data) => data.claims,
        Err(e) => return refuse(format!("A JSON web token could not be decoded: {e}")),
    };
    let now = chrono::Utc::now().timestamp();
    let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
    match (iat, exp) {
        (Some(iat), Some(exp)) if iat <= now && exp > now && exp <= now + 600 => {}
        _ => return refuse(format!("'Expiration time' claim ('exp') is too far in the future, or 'Issued at' ('iat') is in the future: {claims}")),
    }
    if installation != INSTALLATION {
        return api_error(StatusCode::NOT_FOUND, "Not Found");
    }
    let token = format!("ghs_{}", uuid::Uuid::new_v4().simple());
    let mut s = state.lock().unwrap();
    s.tokens.insert(token.clone());
    s.issued += 1;
    (
        StatusCode::CREATED,
        Json(json!({
            "token": token,
            "expires_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
            "permissions": {"deployments": "write", "actions": "read"},
            "repository_selection": "selected",
        })),
    )
        .into_response()
}

/// `POST /repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule`.
async fn review(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path((owner, repo, run)): Path<(String, String, u64)>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    let mut s = state.lock().unwrap();
    if let Some(problem) = rest_headers_problem(&headers) {
        s.refused.push(problem.into());
        return api_error(StatusCode::BAD_REQUEST, problem);
    }
    if !bearer(&headers).is_some_and(|t| s.tokens.contains(&t)) {
        s.refused
            .push("review without an installation token".into());
        return api_error(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let body: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(_) => return api_error(StatusCode::BAD_REQUEST, "Problems parsing JSON"),
    };
    let fields_ok = body["environment_name"].is_string()
        && matches!(body["state"].as_str(), Some("approved" | "rejected"))
        && (body.get("comment").is_none() || body["comment"].is_string())
        && body.as_object().is_some_and(|o| o.len() <= 3);
    if !fields_ok {
        s.refused.push(format!("invalid review {body}"));
        return api_error(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request.");
    }
    if s.fail_next_reviews > 0 {
        s.fail_next_reviews -= 1;
        s.failed_reviews += 1;
        return api_error(StatusCode::BAD_GATEWAY, "Server Error");
    }
    s.reviews.push(Review {
        path: format!("/repos/{owner}/{repo}/actions/runs/{run}/deployment_protection_rule"),
        body,
    });
    StatusCode::NO_CONTENT.into_response()
}

impl FakeGithub {
    fn start() -> FakeGithub {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(Mutex::new(FakeState::default()));
        let app = Router::new()
            .route(
                "/app/installations/{installation}/access_tokens",
                post(access_tokens),
            )
            .route(
                "/repos/{owner}/{repo}/actions/runs/{run}/deployment_protection_rule",
                post(review),
            )
            .with_state(state.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeGithub {
            base,
            state,
            _runtime: runtime,
        }
    }

    fn fail_next_reviews(&self, n: u32) {
        self.state.lock().unwrap().fail_next_reviews = n;
    }

    /// The reviews received, waiting (at most 20 s) until there are `n`.
    fn wait_reviews(&self, n: usize) -> Vec<Review> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let reviews = self.state.lock().unwrap().reviews.clone();
            if reviews.len() >= n || Instant::now() > deadline {
                return reviews;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn refused(&self) -> Vec<String> {
        self.state.lock().unwrap().refused.clone()
    }
}

/// `serve` on `t`'s store gating deployments with [`TEMPLATE`], answering
/// the fake at `api`.
fn serve(t: &T, api: &str) -> Server {
    std::fs::write(t.dir().join("gates.yaml"), TEMPLATE).unwrap();
    let mut cmd = t.command();
    cmd.env_remove("T_MINUS_NOW")
        .env("T_MINUS_GITHUB_WEBHOOK_SECRET", SECRET)
        .args(["serve", "--listen", "127.0.0.1:0", "--clock-for-tests"])
        .arg(t.now())
        .arg("--github-templates")
        .arg(t.dir().join("gates.yaml"))
        .args(["--github-app-id", APP_ID, "--github-private-key", KEY])
        .args(["--github-api-url", api]);
    Server::spawn(cmd, t)
}

/// A `deployment_protection_rule` delivery's body, as GitHub documents
/// it, for `repository` and `environment` with its callback under `api`.
fn request(api: &str, repository: &str, environment: &str, run: u64) -> Value {
    let (owner, _) = repository.split_once('/').unwrap();
    json!({
        "action": "requested",
        "environment": environment,
        "event": "push",
        "ref": "refs/heads/main",
        "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e",
        "deployment_callback_url": format!("{api}/repos/{repository}/actions/runs/{run}/deployment_protection_rule"),
        "deployment": {
            "url": format!("{api}/repos/{repository}/deployments/{}", run + 1000),
            "id": run + 1000,
            "node_id": "MDEwOkRlcGxveW1lbnQx",
            "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e",
            "ref": "main",
            "task": "deploy",
            "payload": {},
            "original_environment": environment,
            "environment": environment,
            "description": null,
            "creator": {"login": "octocat", "id": 1, "type": "User"},
            "created_at": "2025-06-06T14:49:00Z",
            "updated_at": "2025-06-06T14:49:00Z",
            "statuses_url": format!("{api}/repos/{repository}/deployments/{}/statuses", run + 1000),
            "repository_url": format!("{api}/repos/{repository}"),
        },
        "pull_requests": [],
        "repository": {
            "id": 1296269,
            "name": repository.split_once('/').unwrap().1,
            "full_name": repository,
            "private": false,
            "owner": {"login": owner, "id": 2, "type": "Organization"},
            "html_url": format!("https://github.com/{repository}"),
        },
        "organization": {"login": owner, "id": 2},
        "installation": {"id": INSTALLATION, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNzc="},
        "sender": {"login": "octocat", "id": 1, "type": "User"},
    })
}

/// `sha256=` and the hex HMAC-SHA256 of `body` keyed with `secret`, as
/// GitHub signs deliveries (computed here independently of t-minus).
fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// A delivery: its status and JSON reply.
fn deliver(
    server: &Server,
    event: &str,
    delivery: &str,
    body: &Value,
    signed: Option<&str>,
) -> (u16, Value) {
    let text = body.to_string();
    let http: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = http
        .post(format!("{}/v1/github/webhook", server.base))
        .header("Content-Type", "application/json")
        .header("User-Agent", "GitHub-Hookshot/044aadd")
        .header("X-GitHub-Event", event)
        .header("X-GitHub-Delivery", delivery)
        .header("X-GitHub-Hook-ID", "292430182");
    let sig = signed.map_or_else(|| signature(SECRET, text.as_bytes()), str::to_string);
    if !sig.is_empty() {
        req = req.header("X-Hub-Signature-256", sig);
    }
    let mut response = req.send(text).unwrap();
    let status = response.status().as_u16();
    let reply = response.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&reply).unwrap_or(Value::Null))
}

fn campaigns(t: &T) -> Vec<String> {
    let list = t.json("campaign list --json");
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn a_deployment_whose_quorum_confirms_is_approved() {
    let t = T::new();
    let github = FakeGithub::start();
    let server = serve(&t, &github.base);

    let (status, pong) = deliver(
        &server,
        "ping",
        "d-ping",
        &json!({"zen": "Keep it simple."}),
        None,
    );
    assert_eq!(status, 200, "{pong}");
    let body = request(&github.base, "Octo-Org/web", "Production", 11);
    let (status, reply) = deliver(&server, "deployment_protection_rule", "d-1", &body, None);
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["campaign"], "web-prod-1011");
    assert_eq!(reply["deployment"]["state"], "waiting");

    // The event carries the deployment; the campaign is not managed by the
    // template's manifest, so applying another one with --prune keeps it.
    let event = t.json("status web-prod-1011/approve --json");
    let gh = &event["payload"]["github"];
    assert_eq!(gh["sha"], "6dcb09b5b57875f334f61aebed695e2e4193db5e");
    assert_eq!(gh["ref"], "main");
    assert_eq!(
        gh["run_url"],
        "https://github.com/Octo-Org/web/actions/runs/11"
    );
    assert_eq!(event["payload"]["team"], "web");
    std::fs::write(
        t.dir().join("other.yaml"),
        "campaign: other\nevents:\n  x:\n    at: +1h\n    attendees: [alice]\n",
    )
    .unwrap();
    t.ok("apply other.yaml gates.yaml --prune");
    assert!(campaigns(&t).contains(&"web-prod-1011".to_string()));

    // Nothing is sent while the campaign is undecided.
    t.ok("confirm web-prod-1011/approve alice");
    std::thread::sleep(Duration::from_millis(700));
    assert!(github.wait_reviews(0).is_empty());
    t.ok("confirm web-prod-1011/approve bob");
    let reviews = github.wait_reviews(1);
    assert_eq!(reviews.len(), 1, "refused: {:?}", github.refused());
    assert_eq!(
        reviews[0].path,
        "/repos/Octo-Org/web/actions/runs/11/deployment_protection_rule"
    );
    assert_eq!(reviews[0].body["environment_name"], "Production");
    assert_eq!(reviews[0].body["state"], "approved");
    let comment = reviews[0].body["comment"].as_str().unwrap();
    assert!(
        comment.contains("alice") && comment.contains("bob"),
        "{comment}"
    );
    // Once only.
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(github.wait_reviews(2).len(), 1);
    assert!(github.refused().is_empty(), "{:?}", github.refused());
    assert!(t.ok("verify").contains("intact"));
}

fn a_deployment_whose_quorum_fails_is_rejected() {
    let t = T::new();
    let github = FakeGithub::start();
    let server = serve(&t, &github.base);
    let body = request(&github.base, "octo-org/web", "production", 12);
    let (status, reply) = deliver(&server, "deployment_protection_rule", "d-2", &body, None);
    assert_eq!(status, 201, "{reply}");
    t.ok("decline web-prod-1012/approve alice --reason no");
    t.ok("decline web-prod-1012/approve carol");
    let reviews = github.wait_reviews(1);
    assert_eq!(reviews.len(), 1, "refused: {:?}", github.refused());
    assert_eq!(reviews[0].body["state"], "rejected");
    assert!(reviews[0].body["comment"]
        .as_str()
        .unwrap()
        .contains("approve was missed"));
    assert_eq!(
        t.json("status web-prod-1012/approve --json")["state"],
        "missed"
    );
}

fn bad_signatures_replays_unknown_gates_and_foreign_callbacks_are_refused() {
    let t = T::new();
    let github = FakeGithub::start();
    let server = serve(&t, &github.base);
    let body = request(&github.base, "octo-org/web", "production", 13);

    let forged = signature("not-the-secret", body.to_string().as_bytes());
    let (status, reply) = deliver(
        &server,
        "deployment_protection_rule",
        "d-3",
        &body,
        Some(&forged),
    );
    assert_eq!(
        (status, &reply["error"]["code"]),
        (401, &json!("t_minus::github::signature"))
    );
    let (status, _) = deliver(
        &server,
        "deployment_protection_rule",
        "d-3",
        &body,
        Some(""),
    );
    assert_eq!(status, 401);
    let (status, reply) = deliver(&server, "push", "d-push", &json!({"ref": "x"}), None);
    assert_eq!((status, &reply["ignored"]), (202, &json!(true)));

    let (status, reply) = deliver(&server, "deployment_protection_rule", "d-3", &body, None);
    assert_eq!(status, 201, "{reply}");
    let (status, reply) = deliver(&server, "deployment_protection_rule", "d-3", &body, None);
    assert_eq!(
        (status, &reply["error"]["code"]),
        (409, &json!("t_minus::github::replayed"))
    );

    let unknown = request(&github.base, "octo-org/api", "production", 14);
    let (status, reply) = deliver(&server, "deployment_protection_rule", "d-4", &unknown, None);
    assert_eq!(
        (status, &reply["error"]["code"]),
        (422, &json!("t_minus::github::unknown_gate"))
    );
    let staging = request(&github.base, "octo-org/web", "staging", 15);
    let (status, _) = deliver(&server, "deployment_protection_rule", "d-5", &staging, None);
    assert_eq!(status, 422);

    let foreign = request("https://evil.example", "octo-org/web", "production", 16);
    let (status, reply) = deliver(&server, "deployment_protection_rule", "d-6", &foreign, None);
    assert_eq!(
        (status, &reply["error"]["code"]),
        (422, &json!("t_minus::github::callback_outside_api"))
    );
    // Only the one accepted delivery made a campaign.
    assert_eq!(campaigns(&t), ["web-prod-1013"]);
}

fn a_review_that_fails_once_is_sent_again() {
    let t = T::new();
    let github = FakeGithub::start();
    github.fail_next_reviews(1);
    let server = serve(&t, &github.base);
    let body = request(&github.base, "octo-org/web", "production", 17);
    let (status, reply) = deliver(&server, "deployment_protection_rule", "d-7", &body, None);
    assert_eq!(status, 201, "{reply}");
    t.ok("confirm web-prod-1017/approve alice");
    t.ok("confirm web-prod-1017/approve carol");
    let reviews = github.wait_reviews(1);
    assert_eq!(reviews.len(), 1, "refused: {:?}", github.refused());
    assert_eq!(reviews[0].body["state"], "approved");
    let s = github.state.lock().unwrap();
    assert_eq!((s.failed_reviews, s.issued), (1, 2));
    drop(s);
    // A restarted service does not send it again.
    drop(server);
    let _server = serve(&t, &github.base);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(github.wait_reviews(2).len(), 1);
}

/// In process: the engine gates a deployment, decides it when the
/// campaign does, retries a failed answer after its backoff and records the
/// answer once, every step in the (intact) log.
fn the_engine_claims_each_answer_once_and_logs_it() {
    use t_minus::github::{DeploymentRequest, ReportState, Verdict};
    let (mut engine, _clock) = crate::common::engine();
    let templates = crate::common::desired(TEMPLATE);
    assert!(templates.campaigns.is_empty());
    let api = "https://api.github.com";
    let body = request(api, "octo-org/web", "production", 21);
    let req = DeploymentRequest::parse(body.to_string().as_bytes()).unwrap();
    let d = engine
        .gate_github_deployment("g-1", &req, &templates, api)
        .unwrap();
    assert_eq!(d.state, ReportState::Waiting);
    assert!(engine
        .gate_github_deployment("g-1", &req, &templates, api)
        .is_err());
    assert!(engine.claim_github_reports(10).unwrap().is_empty());
    let event = engine.resolve_event("web-prod-1021/approve").unwrap();
    for who in ["alice", "bob"] {
        engine.confirm(event, &crate::common::agent(who)).unwrap();
    }
    let claimed = engine.claim_github_reports(10).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].verdict, Some(Verdict::Approved));
    assert_eq!(claimed[0].attempts, 1);
    // Leased: not claimed again while the attempt runs.
    assert!(engine.claim_github_reports(10).unwrap().is_empty());
    let retried = engine
        .record_github_report(&claimed[0], Some(("HTTP 502", false)))
        .unwrap();
    assert_eq!(retried.state, ReportState::Waiting);
    assert!(engine.claim_github_reports(10).unwrap().is_empty());
    std::thread::sleep(Duration::from_millis(1100));
    let again = engine.claim_github_reports(10).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    let done = engine.record_github_report(&again[0], None).unwrap();
    assert_eq!(done.state, ReportState::Reported);
    std::thread::sleep(Duration::from_millis(1100));
    assert!(engine.claim_github_reports(10).unwrap().is_empty());
    let actions: Vec<String> = engine
        .log(d.id)
        .unwrap()
        .iter()
        .map(|e| e.action.to_string())
        .collect();
    assert_eq!(actions, ["github-requested", "github-reported"]);
    let reported = engine.log(d.id).unwrap().pop().unwrap();
    assert_eq!(reported.detail["state"], "approved");
    assert_eq!(reported.detail["attempts"], 2);
    assert!(engine.verify_log(None).unwrap().mismatches.is_empty());
}

/// A template's `github:` section is checked with the rest of the
/// manifest, every problem at its YAML node.
#[test]
fn template_errors_point_at_the_github_section() {
    use t_minus::manifest::{self, ValidateOptions};
    let text = r#"campaign: web-prod
github:
  repository: octo-org
  environment: production
events:
  approve: {at: +1h, attendees: [alice]}
---
campaign: empty
github: {repository: octo-org/web, environment: ""}
---
campaign: twice-a
github: {repository: octo-org/api, environment: prod}
events:
  approve: {at: +1h, attendees: [alice]}
---
campaign: twice-b
github: {repository: OCTO-ORG/API, environment: Prod}
events:
  approve: {at: +1h, attendees: [alice]}
"#;
    let diags = manifest::validate(
        &manifest::parse_str("gates.yaml", text),
        &ValidateOptions::default(),
    )
    .unwrap_err();
    let found: Vec<(String, String, String)> = diags
        .iter()
        .map(|d| {
            let label = &d.labels()[d.labels().len() - 1];
            let at = &text[label.offset()..label.offset() + label.len()];
            (d.code_str().to_string(), d.to_string(), at.to_string())
        })
        .collect();
    let codes: Vec<&str> = found.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(codes, ["t_minus::manifest::github"; 4], "{found:?}");
    assert!(found[0]
        .1
        .contains("`octo-org` is not a GitHub repository name"));
    assert_eq!(found[0].2, "octo-org");
    assert!(found[1].1.contains("environment name"), "{found:?}");
    assert!(found[2].1.contains("no events"), "{found:?}");
    assert_eq!(found[2].2, "empty");
    assert!(
        found[3].1.contains("two templates gate OCTO-ORG/API"),
        "{found:?}"
    );
    assert_eq!(diags.len(), 4);
}

/// `serve` with part of the GitHub settings refuses to start, naming what
/// is missing.
#[test]
fn serve_with_half_the_github_settings_does_not_start() {
    let t = T::new();
    let out = t
        .command()
        .env("T_MINUS_GITHUB_WEBHOOK_SECRET", SECRET)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--github-app-id",
            APP_ID,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("t_minus::github::not_configured"), "{err}");
    // The message (its lines wrapped) names what is missing.
    let message = err.split("help:").next().unwrap_or_default();
    assert!(message.contains("--github-templates, --github-"), "{err}");
    assert!(!message.contains("--github-app-id"), "{err}");
}

fn an_answer_decided_while_no_service_ran_is_sent_by_the_next() {
    let t = T::new();
    let github = FakeGithub::start();
    let server = serve(&t, &github.base);
    let body = request(&github.base, "octo-org/web", "production", 18);
    let (status, reply) = deliver(&server, "deployment_protection_rule", "d-8", &body, None);
    assert_eq!(status, 201, "{reply}");
    drop(server);
    t.ok("confirm web-prod-1018/approve alice");
    t.ok("confirm web-prod-1018/approve bob");
    std::thread::sleep(Duration::from_millis(300));
    assert!(github.wait_reviews(0).is_empty());
    let _server = serve(&t, &github.base);
    let reviews = github.wait_reviews(1);
    assert_eq!(reviews.len(), 1, "refused: {:?}", github.refused());
    assert_eq!(reviews[0].body["state"], "approved");
}

cli_support::store_tests!(
    the_engine_claims_each_answer_once_and_logs_it,
    an_answer_decided_while_no_service_ran_is_sent_by_the_next,
    a_deployment_whose_quorum_confirms_is_approved,
    a_deployment_whose_quorum_fails_is_rejected,
    bad_signatures_replays_unknown_gates_and_foreign_callbacks_are_refused,
    a_review_that_fails_once_is_sent_again,
);
