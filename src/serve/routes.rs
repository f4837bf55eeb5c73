//! The routes of the API: each one engine operation on a pooled store
//! connection, on a blocking thread (answers on SQLite through the
//! [`super::writer`]), its reply one of the [`crate::output`] types.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, Method, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::auth::{self, Need};
use super::error::{ApiError, ServeError};
use super::limits::{ANSWER_BODY_LIMIT, MANIFEST_BODY_LIMIT};
use super::Shared;
use crate::delegation::DelegationState;
use crate::duration::parse_duration;
use crate::engine::EventViews;
use crate::output::{
    ApplyResult, CampaignStatus, Delegation, Event, EventSigners, Health, Inbox, LogEntry,
    Verification,
};
use crate::plan::{Plan, PlanOptions};
use crate::state::EventState;
use crate::store::EventFilter;
use crate::token::{TokenError, TokenInfo};
use crate::trust::ChainHash;
use crate::{AgentId, Engine, Response, TMinusError, TimeSpec};

/// A route's reply.
type Reply<T> = Result<Json<T>, ApiError>;

/// The router of every route, over `shared`.
pub fn router(shared: Arc<Shared>) -> Router {
    let answer_limit = DefaultBodyLimit::max(ANSWER_BODY_LIMIT);
    let manifest_limit = DefaultBodyLimit::max(MANIFEST_BODY_LIMIT);
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route("/v1/health", get(health))
        .route("/v1/events", get(list_events))
        .route("/v1/events/{event}", get(get_event))
        .route("/v1/events/{event}/log", get(event_log))
        .route("/v1/events/{event}/signers", get(event_signers))
        .route(
            "/v1/events/{event}/confirm",
            post(confirm).layer(answer_limit),
        )
        .route("/v1/events/{event}/defer", post(defer).layer(answer_limit))
        .route(
            "/v1/events/{event}/decline",
            post(decline).layer(answer_limit),
        )
        .route(
            "/v1/events/{event}/breakglass",
            post(breakglass).layer(answer_limit),
        )
        .route(
            "/v1/events/{event}/cancel",
            post(cancel).layer(answer_limit),
        )
        .route("/v1/campaigns/{campaign}", get(get_campaign))
        .route("/v1/inbox", get(inbox))
        .route("/v1/verify", get(verify))
        .route("/v1/stream", get(stream))
        .route("/v1/answers", post(signed_answer).layer(answer_limit))
        .route(
            "/v1/delegations",
            get(list_delegations).post(delegate).layer(answer_limit),
        )
        .route(
            "/v1/delegations/{delegation}/revoke",
            post(undelegate).layer(answer_limit),
        )
        .route("/v1/plan", post(plan).layer(manifest_limit))
        .route("/v1/apply", post(apply).layer(manifest_limit))
        .route(
            "/v1/slack/interactions",
            post(super::slack::interactions).layer(DefaultBodyLimit::max(super::slack::BODY_LIMIT)),
        )
        .route(
            "/v1/github/webhook",
            post(super::github::webhook)
                .layer(DefaultBodyLimit::max(super::github::WEBHOOK_BODY_LIMIT)),
        )
        .merge(super::mcp::router(shared.clone()))
        .merge(super::web::router())
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            rate_limit,
        ))
        .layer(axum::middleware::from_fn(deadline))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), track))
        .with_state(shared)
}

/// Counts every request, by route pattern and status, and its duration.
async fn track(
    State(shared): State<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let response = next.run(request).await;
    shared.metrics.request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// `GET /metrics`: the counters in the Prometheus text format.
async fn metrics(State(shared): State<Arc<Shared>>) -> impl axum::response::IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        shared.metrics.render(),
    )
}

/// Refuses a request over its client's rate (`429` with `Retry-After`).
/// The client is the bearer token (by its hash) when one is sent, else the
/// connection's address.
async fn rate_limit(
    State(shared): State<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if let Some(limiter) = &shared.rate {
        let client = match auth::bearer(request.headers()) {
            Some(secret) => format!("token {}", crate::token::TokenHash::of(&secret).0),
            None => match request
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            {
                Some(info) => format!("address {}", info.0.ip()),
                None => "address unknown".to_string(),
            },
        };
        if let Err(wait) = limiter.check(&client) {
            return super::error::rate_limited(wait);
        }
    }
    next.run(request).await
}

/// Runs `f` on a blocking thread with an engine on the store: a read.
pub(super) async fn blocking<T: Send + 'static>(
    shared: &Arc<Shared>,
    f: impl FnOnce(&mut Engine) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    run_blocking(shared, false, f).await
}

/// Runs `f` on a blocking thread with an engine on the store, within the
/// bound of operations at once and, for a `write` on SQLite, one writer at
/// a time (SQLite runs one writer anyway; waiting here, in order, is
/// cheaper than in its busy handler).
pub(super) async fn run_blocking<T: Send + 'static>(
    shared: &Arc<Shared>,
    write: bool,
    f: impl FnOnce(&mut Engine) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let shared = shared.clone();
    let internal = |e: tokio::sync::AcquireError| ServeError::Internal {
        reason: e.to_string(),
    };
    let writer = match (&shared.writer, write) {
        (Some(writer), true) => Some(writer.clone().acquire_owned().await.map_err(internal)?),
        _ => None,
    };
    // Held by the operation itself, so a request given up by its client
    // still counts until its operation ends.
    let permit = shared
        .operations
        .clone()
        .acquire_owned()
        .await
        .map_err(internal)?;
    tokio::task::spawn_blocking(move || {
        // The engine goes back to the pool before the permits are given
        // up, so the pool never holds more than the operations at once.
        let result = shared
            .engine()
            .map_err(ApiError::from)
            .and_then(|mut engine| f(&mut engine));
        drop((permit, writer));
        result
    })
    .await
    .map_err(|e| ServeError::Internal {
        reason: e.to_string(),
    })?
}

/// Runs `f` on a blocking thread for the caller of `headers`, once its
/// token is checked and its role allows `need`.
async fn as_caller<T: Send + 'static>(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    need: Need,
    action: &'static str,
    f: impl FnOnce(&mut Engine, &TokenInfo) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let secret = auth::bearer(headers);
    run_blocking(shared, need != Need::Read, move |engine| {
        let token = auth::authenticate(engine, secret.as_deref())?;
        need.check(&token, action)?;
        f(engine, &token)
    })
    .await
}

/// The body, or the error for one over the limit or cut short.
pub(super) fn body_bytes(
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<Bytes, ServeError> {
    body.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ServeError::TooLarge { limit }
        } else {
            ServeError::Body {
                reason: rejection.body_text(),
            }
        }
    })
}

/// The JSON body as `T`; an empty body is `T`'s default.
fn json_body<T: DeserializeOwned + Default>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ServeError> {
    let bytes = body_bytes(body, ANSWER_BODY_LIMIT)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes).map_err(|e| ServeError::Json {
        reason: e.to_string(),
    })
}

/// The query, or the error naming what is wrong with it.
fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ServeError> {
    query.map(|Query(q)| q).map_err(|e| ServeError::Query {
        name: "query".into(),
        reason: e.body_text(),
    })
}

/// Answers `408` when a request takes longer than
/// [`super::limits::REQUEST_TIMEOUT`] to be answered (a stream's body is
/// not limited).
async fn deadline(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let limit = super::limits::REQUEST_TIMEOUT;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::from(ServeError::Timeout {
            seconds: limit.as_secs(),
        })
        .into_response(),
    }
}

/// A route asked with a method it does not take.
async fn no_method(method: Method, uri: Uri) -> ApiError {
    ServeError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
    .into()
}

/// Anything without a route: a page for a browser (one that accepts HTML
/// and not JSON), the JSON error otherwise.
async fn no_route(method: Method, uri: Uri, headers: HeaderMap) -> axum::response::Response {
    let error = ApiError::from(ServeError::NoRoute {
        method: method.to_string(),
        path: uri.path().to_string(),
    });
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("text/html") && !uri.path().starts_with("/v1/") {
        super::web::error_page(None, &error)
    } else {
        error.into_response()
    }
}

/// `GET /openapi.json`.
async fn openapi(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(shared.openapi.clone())
}

/// `GET /v1/health`: the store answers.
async fn health(State(shared): State<Arc<Shared>>) -> Reply<Health> {
    blocking(&shared, |engine| {
        engine.read(|tx| tx.latest_audit_seq())?;
        Ok(Health {
            status: "ok".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            schema_version: crate::store::sqlite::SCHEMA_VERSION,
        })
    })
    .await
    .map(Json)
}

/// `GET /v1/events` parameters.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `unfinished` (the default: blocked and pending), `all`, or one state:
    /// `blocked`, `pending`, `fired`, `missed`, `cancelled`.
    pub state: Option<String>,
    /// Only the events of this campaign (name, id or id prefix).
    pub campaign: Option<String>,
    /// Only the events this agent attends.
    pub agent: Option<String>,
}

/// `GET /v1/events`: soonest fire time first.
async fn list_events(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Reply<Vec<Event>> {
    let q = query(q)?;
    as_caller(&shared, &headers, Need::Read, "read", move |engine, _| {
        let state = match q.state.as_deref() {
            None | Some("unfinished") => None,
            Some("all") => Some(None),
            Some(word) => Some(Some(word.parse::<EventState>().map_err(|_| {
                ServeError::Query {
                    name: "state".into(),
                    reason: format!(
                        "`{word}` is not unfinished, all, blocked, pending, fired, missed or cancelled"
                    ),
                }
            })?)),
        };
        let filter = match &q.campaign {
            Some(c) => EventFilter::Campaign(engine.resolve_campaign(c)?),
            None if state.is_none() => EventFilter::Unfinished,
            None => EventFilter::All,
        };
        let agent = q.agent.as_deref().map(AgentId::parse).transpose()?;
        let now = engine.now();
        let mut events = Vec::new();
        engine.scan_events(filter, |listed| {
            let e = &listed.event;
            let state_fits = match state {
                None => !e.state.is_final(),
                Some(None) => true,
                Some(Some(s)) => e.state == s,
            };
            let agent_fits = agent
                .as_ref()
                .is_none_or(|a| e.attendees.iter().any(|(x, _)| x == a));
            if state_fits && agent_fits {
                events.push(Event::new(e, listed.campaign.as_deref()).at_time(e, now));
            }
            Ok(())
        })?;
        Ok(events)
    })
    .await
    .map(Json)
}

/// The event `reference` names, as the API shows it.
fn event_output(engine: &Engine, reference: &str) -> Result<Event, ApiError> {
    let id = engine.resolve_event(reference)?;
    let e = engine
        .get_event(id)?
        .ok_or_else(|| TMinusError::EventNotFound {
            reference: reference.to_string(),
        })?;
    Ok(Event::read_one(engine, &mut EventViews::default(), &e)?)
}

/// `GET /v1/events/{event}`.
async fn get_event(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(event): Path<String>,
) -> Reply<Event> {
    as_caller(&shared, &headers, Need::Read, "read", move |engine, _| {
        event_output(engine, &event)
    })
    .await
    .map(Json)
}

/// `GET /v1/events/{event}/log`: its audit entries with their chain links.
async fn event_log(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(event): Path<String>,
) -> Reply<Vec<LogEntry>> {
    as_caller(&shared, &headers, Need::Read, "read", move |engine, _| {
        let id = engine.resolve_event(&event)?;
        let links = engine.log_links(id)?;
        Ok(links.iter().map(LogEntry::from).collect())
    })
    .await
    .map(Json)
}

/// `GET /v1/events/{event}/signers`: the keys that may sign its answers.
async fn event_signers(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(event): Path<String>,
) -> Reply<EventSigners> {
    as_caller(&shared, &headers, Need::Read, "read", move |engine, _| {
        let id = engine.resolve_event(&event)?;
        let signers = engine.signers_of(id)?;
        Ok(EventSigners {
            event: id,
            digest: signers.as_ref().map(|s| s.digest()),
            allowed_signers: signers.map(|s| s.to_allowed_signers()),
        })
    })
    .await
    .map(Json)
}

/// `GET /v1/campaigns/{campaign}`: its events in execution order.
async fn get_campaign(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(campaign): Path<String>,
) -> Reply<CampaignStatus> {
    as_caller(&shared, &headers, Need::Read, "read", move |engine, _| {
        let id = engine.resolve_campaign(&campaign)?;
        let c = engine
            .get_campaign(id)?
            .ok_or_else(|| TMinusError::CampaignNotFound {
                reference: campaign.clone(),
            })?;
        let mut events = Vec::new();
        for id in engine.campaign_execution_order(id)? {
            events.extend(engine.get_event(id)?);
        }
        Ok(CampaignStatus::new(&c, &events))
    })
    .await
    .map(Json)
}

/// `GET /v1/inbox` parameters.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    /// Also the unfinished events the agent already confirmed or declined.
    pub all: Option<bool>,
}

/// `GET /v1/inbox`: the events waiting for the token's agent.
async fn inbox(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    q: Result<Query<InboxQuery>, QueryRejection>,
) -> Reply<Inbox> {
    let q = query(q)?;
    as_caller(
        &shared,
        &headers,
        Need::Read,
        "read",
        move |engine, token| {
            let agent = token.agent_id();
            let events = if q.all.unwrap_or(false) {
                engine.inbox_all(&agent)?
            } else {
                engine.inbox(&agent)?
            };
            let mut views = EventViews::default();
            let events = events
                .iter()
                .map(|e| Event::read(engine, &mut views, e))
                .collect::<crate::Result<Vec<_>>>()?;
            Ok(Inbox {
                agent: token.agent.clone(),
                events,
            })
        },
    )
    .await
    .map(Json)
}

/// `GET /v1/verify` parameters.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyQuery {
    /// A head printed by an earlier verification: also prove that the log
    /// was only appended to since.
    pub since: Option<String>,
}

/// `GET /v1/verify`: the whole audit log checked.
async fn verify(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    q: Result<Query<VerifyQuery>, QueryRejection>,
) -> Reply<Verification> {
    let q = query(q)?;
    as_caller(&shared, &headers, Need::Read, "read", move |engine, _| {
        let since = q
            .since
            .as_deref()
            .map(str::parse::<ChainHash>)
            .transpose()?;
        let report = engine.verify_report(since, None)?;
        Ok(Verification::from(&report))
    })
    .await
    .map(Json)
}

/// `GET /v1/stream` parameters.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// Only the entries of this campaign's events (name, id or prefix).
    pub campaign: Option<String>,
    /// Only the entries of this event.
    pub event: Option<String>,
}

/// `GET /v1/stream`: the audit log as Server-Sent Events; `Last-Event-ID`
/// (an entry's `seq`) resumes after that entry. A bearer token, or the
/// session cookie of a signed-in person (the pages' scripts follow it);
/// with `--public-dashboard`, anyone, who gets the entries about events
/// only (no tokens or delegations).
async fn stream(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    q: Result<Query<StreamQuery>, QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    let q = query(q)?;
    let resume = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|t| t.trim().parse::<i64>().ok())
                .ok_or_else(|| ServeError::Query {
                    name: "Last-Event-ID".into(),
                    reason: "it must be the `id` (a number) of an event of an earlier stream"
                        .into(),
                })?,
        ),
    };
    // Subscribed before the log is read back, so nothing falls between.
    let live = shared.tail.subscribe();
    let secret = auth::bearer(&headers);
    let (public, headers) = (shared.public_dashboard, headers.clone());
    let (filter, backlog, last) = blocking(&shared, move |engine| {
        // A token, else a browser's session, else (on a public
        // dashboard) anyone, who sees the entries of events only.
        let anonymous = match secret {
            Some(secret) => {
                auth::authenticate(engine, Some(&secret))?;
                false
            }
            None => match super::web::session::current(engine, &headers)? {
                Some(_) => false,
                None if public => true,
                None => return Err(TokenError::Missing.into()),
            },
        };
        let campaign = match &q.campaign {
            Some(c) => {
                let id = engine.resolve_campaign(c)?;
                engine.campaign_name(id)?
            }
            None => None,
        };
        let event = q
            .event
            .as_deref()
            .map(|e| engine.resolve_event(e))
            .transpose()?;
        let filter = super::stream::Filter {
            campaign,
            event,
            events_only: anonymous,
        };
        Ok(match resume {
            Some(after) => (filter, super::stream::replay(engine, after)?, after),
            None => (filter, Vec::new(), engine.read(|tx| tx.latest_audit_seq())?),
        })
    })
    .await?;
    let body = super::stream::body(backlog, live, filter, last, shared.stopping.clone());
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response())
}

/// `POST /v1/events/{event}/confirm` body (may be empty).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    /// The agent answering: when given, it must be the token's.
    pub agent: Option<String>,
    /// The attendee the token's agent answers for, under that attendee's
    /// delegation to it (`confirm EVENT TO --for FROM`).
    #[serde(rename = "for")]
    pub for_agent: Option<String>,
}

/// `POST /v1/events/{event}/defer` body.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeferBody {
    /// How much more time, e.g. `10m`, `1h 30m`.
    pub by: String,
    /// The agent answering: when given, it must be the token's.
    pub agent: Option<String>,
    /// The attendee the token's agent answers for, under that attendee's
    /// delegation to it (`confirm EVENT TO --for FROM`).
    #[serde(rename = "for")]
    pub for_agent: Option<String>,
}

/// `POST /v1/events/{event}/decline` body (may be empty).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclineBody {
    /// Why, recorded in the event's log.
    pub reason: Option<String>,
    /// The agent answering: when given, it must be the token's.
    pub agent: Option<String>,
    /// The attendee the token's agent answers for, under that attendee's
    /// delegation to it (`confirm EVENT TO --for FROM`).
    #[serde(rename = "for")]
    pub for_agent: Option<String>,
}

/// `POST /v1/events/{event}/cancel` body (may be empty).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    /// Why, recorded in the event's log.
    pub reason: Option<String>,
}

/// The token's agent, refusing a different `agent` named in the body.
fn answering_agent(token: &TokenInfo, named: Option<&str>) -> Result<AgentId, ApiError> {
    match named {
        Some(agent) if agent != token.agent => Err(TokenError::OtherAgent {
            token: token.agent.clone(),
            agent: agent.to_string(),
        }
        .into()),
        _ => Ok(token.agent_id()),
    }
}

/// Records `response` of the token's agent to `event`; the reply is the
/// event. On SQLite the answer goes to the service's answer writer, which
/// commits it together with the answers that arrive meanwhile; on
/// PostgreSQL it is one transaction of its own.
async fn answer(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    (event, kind): (String, &'static str),
    (named, principal): (Option<String>, Option<String>),
    response: impl FnOnce() -> Result<Response, ApiError> + Send + 'static,
) -> Reply<Event> {
    let need = Need::Answer;
    let event = match (&shared.answers, principal) {
        (Some(writer), None) => {
            let secret = auth::bearer(headers);
            let (agent, response) = blocking(shared, move |engine| {
                let token = auth::authenticate(engine, secret.as_deref())?;
                need.check(&token, "answer")?;
                Ok((answering_agent(&token, named.as_deref())?, response()?))
            })
            .await?;
            let (updated, campaign) = writer.answer(event, agent, response).await?;
            let now = shared.clock_for_tests.unwrap_or_else(chrono::Utc::now);
            Event::new(&updated, campaign.as_deref()).at_time(&updated, now)
        }
        (_, principal) => {
            as_caller(shared, headers, need, "answer", move |engine, token| {
                let agent = answering_agent(token, named.as_deref())?;
                let principal = principal.as_deref().map(AgentId::parse).transpose()?;
                let response = response()?;
                // Resolved, answered and read back in one write transaction.
                let (updated, campaign) =
                    engine.respond_to_for(&event, &agent, principal.as_ref(), response)?;
                Ok(Event::new(&updated, campaign.as_deref()).at_time(&updated, engine.now()))
            })
            .await?
        }
    };
    shared.metrics.answer(kind);
    Ok(Json(event))
}

/// `POST /v1/events/{event}/confirm`.
async fn confirm(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(event): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Reply<Event> {
    let body: ConfirmBody = json_body(body)?;
    let who = (body.agent, body.for_agent);
    answer(&shared, &headers, (event, "confirm"), who, || {
        Ok(Response::Confirm)
    })
    .await
}

/// `POST /v1/events/{event}/defer`.
async fn defer(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(event): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Reply<Event> {
    let body: Option<DeferBody> = json_body(body)?;
    let Some(body) = body else {
        return Err(ServeError::Json {
            reason: "the body must say how long: {\"by\": \"10m\"}".into(),
        }
        .into());
    };
    let by = body.by;
    let who = (body.agent, body.for_agent);
    answer(&shared, &headers, (event, "defer"), who, move || {
        let d = parse_duration(&by)?;
        if d.is_zero() {
            return Err(TMinusError::NonPositiveDeferral {
                value: crate::error::DeferralValue::Written(by),
            }
            .into());
        }
        Ok(Response::Defer(d))
    })
    .await
}

/// `POST /v1/events/{event}/decline`.
async fn decline(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(event): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Reply<Event> {
    let body: DeclineBody = json_body(body)?;
    let reason = body.reason;
    answer(
        &shared,
        &headers,
        (event, "decline"),
        (body.agent, body.for_agent),
        move || Ok(Response::Decline(reason)),
    )
    .await
}

/// `POST /v1/events/{event}/cancel` (operator).
async fn cancel(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(event): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Reply<Event> {
    let body: CancelBody = json_body(body)?;
    as_caller(
        &shared,
        &headers,
        Need::Operate,
        "cancel",
        move |engine, _| {
            let id = engine.resolve_event(&event)?;
            let cancelled = engine.cancel_event(id, body.reason)?;
            Ok(Event::read(engine, &mut EventViews::default(), &cancelled)?)
        },
    )
    .await
    .map(Json)
}

/// `POST /v1/events/{event}/breakglass` body.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakglassBody {
    /// Why the event must fire now (required, not empty).
    pub reason: String,
    /// The agent breaking the glass: when given, it must be the token's.
    pub agent: Option<String>,
}

/// `POST /v1/events/{event}/breakglass`: the token's agent, listed in the
/// event's `breakglass`, fires it at once (an operator's token too, for
/// its own agent; nobody breaks the glass as another agent). Where answers
/// must be signed, submit a signed `confirm` with `break-glass:` to
/// `/v1/answers` instead.
async fn breakglass(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(event): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Reply<Event> {
    let body: Option<BreakglassBody> = json_body(body)?;
    let Some(body) = body else {
        return Err(ServeError::Json {
            reason: "the body must say why: {\"reason\": \"sev1: …\"}".into(),
        }
        .into());
    };
    as_caller(
        &shared,
        &headers,
        Need::Answer,
        "breakglass",
        move |engine, token| {
            let agent = answering_agent(token, body.agent.as_deref())?;
            let id = engine.resolve_event(&event)?;
            let fired = engine.break_glass(id, &agent, &body.reason)?;
            Ok(Event::read(engine, &mut EventViews::default(), &fired)?)
        },
    )
    .await
    .map(Json)
}

/// `POST /v1/answers` body: a signed answer.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedAnswerBody {
    /// The answer message, exactly as `answer-message` printed it.
    pub message: String,
    /// Its armored `sshsig` signature (`ssh-keygen -Y sign -n t-minus`).
    pub signature: String,
}

/// `POST /v1/answers`: a signed answer, its signature the authentication.
async fn signed_answer(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> Reply<Event> {
    let body: Option<SignedAnswerBody> = json_body(body)?;
    let Some(body) = body else {
        return Err(ServeError::Json {
            reason: "the body must hold {\"message\", \"signature\"}".into(),
        }
        .into());
    };
    let event = run_blocking(&shared, true, move |engine| {
        let updated = engine.respond_signed(body.message.as_bytes(), &body.signature)?;
        Ok(Event::read(engine, &mut EventViews::default(), &updated)?)
    })
    .await?;
    shared.metrics.answer("signed");
    Ok(Json(event))
}

/// `GET /v1/delegations` parameters.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DelegationsQuery {
    /// Also the expired and revoked delegations.
    pub all: Option<bool>,
}

/// `GET /v1/delegations`: the delegations in force (every one with
/// `all=true`), oldest first.
async fn list_delegations(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    q: Result<Query<DelegationsQuery>, QueryRejection>,
) -> Reply<Vec<Delegation>> {
    let q = query(q)?;
    as_caller(&shared, &headers, Need::Read, "read", move |engine, _| {
        let now = engine.now();
        let all = q.all.unwrap_or(false);
        Ok(engine
            .delegations()?
            .iter()
            .filter(|d| all || d.state(now) == DelegationState::Active)
            .map(|d| Delegation::new(d, now))
            .collect())
    })
    .await
    .map(Json)
}

/// `POST /v1/delegations` body: a delegation of the token's agent's
/// answers, unsigned (`to`, and optionally `from`, `until`, `campaign`) or
/// signed (`message` and `signature`, nothing else).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DelegateBody {
    /// The agent whose answers may be given: when given, it must be the
    /// token's.
    pub from: Option<String>,
    /// The agent who may give them (unsigned form).
    pub to: Option<String>,
    /// When it ends (exclusive): RFC 3339, or `+DURATION` from now;
    /// default: until revoked (unsigned form).
    pub until: Option<String>,
    /// The campaign it covers (name, id or id prefix); default: every
    /// event (unsigned form).
    pub campaign: Option<String>,
    /// A `t-minus delegation v1` message signed by FROM, exactly as signed
    /// (signed form; FROM is the token's agent).
    pub message: Option<String>,
    /// Its armored `sshsig` signature in the `t-minus` namespace (signed
    /// form).
    pub signature: Option<String>,
}

/// The token's agent as the delegating agent, refusing another one.
fn delegating_agent(token: &TokenInfo, named: &AgentId) -> Result<(), ApiError> {
    if named.as_str() == token.agent {
        Ok(())
    } else {
        Err(TokenError::OtherDelegator {
            token: token.agent.clone(),
            agent: named.to_string(),
        }
        .into())
    }
}

/// `POST /v1/delegations`: the token's agent lets another answer for it;
/// the reply is the delegation. Where its answers must be signed, the body
/// carries the delegation message it signed (`delegate --sign` makes it).
async fn delegate(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Reply<Delegation> {
    let body: DelegateBody = json_body(body)?;
    as_caller(
        &shared,
        &headers,
        Need::Answer,
        "delegate",
        move |engine, token| {
            let made = match (body.message, body.signature) {
                (Some(message), Some(signature)) => {
                    if body.from.is_some()
                        || body.to.is_some()
                        || body.until.is_some()
                        || body.campaign.is_some()
                    {
                        return Err(ServeError::Json {
                            reason: "a signed delegation is its `message` and `signature` only: the message says from, to, campaign and until".into(),
                        }
                        .into());
                    }
                    let parsed = crate::trust::grant::DelegationMessage::parse(message.as_bytes())?;
                    delegating_agent(token, &parsed.from)?;
                    engine.delegate_signed(message.as_bytes(), &signature)?
                }
                (None, None) => {
                    let Some(to) = body.to else {
                        return Err(ServeError::Json {
                            reason: "the body must name the delegate: {\"to\": \"bob\"} (or hold a signed {\"message\", \"signature\"})".into(),
                        }
                        .into());
                    };
                    let from = match body.from {
                        Some(from) => AgentId::parse(&from)?,
                        None => token.agent_id(),
                    };
                    delegating_agent(token, &from)?;
                    let to = AgentId::parse(&to)?;
                    let until = match &body.until {
                        Some(text) => Some(TimeSpec::parse(text)?.resolve(engine.now())?),
                        None => None,
                    };
                    engine.delegate(&from, &to, until, body.campaign.as_deref())?
                }
                _ => {
                    return Err(ServeError::Json {
                        reason: "a signed delegation needs both `message` and `signature`".into(),
                    }
                    .into())
                }
            };
            Ok(Delegation::new(&made, engine.now()))
        },
    )
    .await
    .map(Json)
}

/// `POST /v1/delegations/{delegation}/revoke`: the token's agent revokes a
/// delegation of its own answers; the reply is the delegation, revoked.
async fn undelegate(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(delegation): Path<String>,
) -> Reply<Delegation> {
    as_caller(
        &shared,
        &headers,
        Need::Answer,
        "undelegate",
        move |engine, token| {
            let found = engine.resolve_delegation(&delegation)?;
            delegating_agent(token, &found.from)?;
            let revoked = engine.undelegate(&found.id.to_string())?;
            Ok(Delegation::new(&revoked, engine.now()))
        },
    )
    .await
    .map(Json)
}

/// `POST /v1/plan` and `/v1/apply` parameters.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestQuery {
    /// Also destroy the events and campaigns the manifests no longer
    /// declare.
    pub prune: Option<bool>,
}

/// The media types a manifest body may have.
const YAML_TYPES: [&str; 4] = [
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "text/x-yaml",
];

/// The manifest text of a request: YAML, within the manifest limit.
fn manifest_text(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<String, ServeError> {
    let found = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let essence = found
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !YAML_TYPES.contains(&essence.as_str()) {
        return Err(ServeError::MediaType {
            expected: "application/yaml".into(),
            found,
        });
    }
    let bytes = body_bytes(body, MANIFEST_BODY_LIMIT)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| ServeError::Body {
        reason: "a manifest must be UTF-8 text".into(),
    })
}

/// `POST /v1/plan` (operator): what applying the manifests would do.
async fn plan(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    q: Result<Query<ManifestQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Reply<Plan> {
    let q = query(q)?;
    let text = manifest_text(&headers, body)?;
    let policy = shared.exec.clone();
    as_caller(
        &shared,
        &headers,
        Need::Operate,
        "plan",
        move |engine, token| {
            let valid = super::remote::load(&text, &policy, token.agent_id())?;
            let options = PlanOptions {
                prune: q.prune.unwrap_or(false),
                now: None,
            };
            Ok(engine.plan(&valid, &options)?)
        },
    )
    .await
    .map(Json)
}

/// `POST /v1/apply` (operator): plans and applies in one transaction.
async fn apply(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    q: Result<Query<ManifestQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Reply<ApplyResult> {
    let q = query(q)?;
    let text = manifest_text(&headers, body)?;
    let policy = shared.exec.clone();
    as_caller(
        &shared,
        &headers,
        Need::Operate,
        "apply",
        move |engine, token| {
            let valid = super::remote::load(&text, &policy, token.agent_id())?;
            let options = PlanOptions {
                prune: q.prune.unwrap_or(false),
                now: None,
            };
            let (plan, report) = engine.apply_manifests(&valid, &options)?;
            Ok(ApplyResult { plan, report })
        },
    )
    .await
    .map(Json)
}
