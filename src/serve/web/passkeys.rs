//! Passkeys in the browser: the enrolment page an invitation links to, the
//! sign-in page, the JSON endpoints their script calls, and answers signed
//! by a passkey.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /enrol/{token}` | the enrolment page of an invitation |
//! | `GET /signin` | the sign-in page |
//! | `GET /assets/passkey.js` | `window.tMinusPasskey` |
//! | `POST /web/enrol/begin`, `…/finish` | registration: a discoverable credential, user verification required; signs the person in |
//! | `POST /web/signin/begin`, `…/finish` | sign-in with a discoverable credential |
//! | `GET /web/session` | the signed-in person and CSRF token (401 without a session) |
//! | `POST /web/signout` | ends the session |
//! | `POST /web/events/{event}/answer/begin` | the answer message v2 and WebAuthn request options whose challenge is its SHA-256 |
//! | `POST /web/events/{event}/answer/finish` | the assertion: the answer recorded through the engine |
//!
//! Ceremonies live in the store (any `serve` process sharing it finishes
//! one another began) and are used once. The `POST`s that need a session
//! (sign-out, answers) need its CSRF token in `X-CSRF-Token` and this
//! service's `Origin`; without a session nobody answers.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use maud::html;
use serde::Deserialize;
use serde_json::{json, Value};

use super::layout::page;
use super::session::{self, check_csrf, WebSession};
use crate::engine::EventViews;
use crate::output::Event;
use crate::people::PeopleError;
use crate::serve::error::{ApiError, ServeError};
use crate::serve::routes::run_blocking;
use crate::serve::Shared;
use crate::trust::message::{Answer, Passkey};
use crate::trust::webauthn::{
    answer_challenge, b64url, from_b64url, verify_assertion, verify_registration, Assertion,
    CoseKey, Party,
};
use crate::Engine;

/// The script the pages load: `window.tMinusPasskey`.
const PASSKEY_JS: &str = include_str!("passkey.js");

/// How long the browser may take over a ceremony, in milliseconds.
const TIMEOUT_MS: i64 = 300_000;

/// The routes of this module.
pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/enrol/{token}", get(enrol_page))
        .route("/signin", get(signin_page))
        .route("/assets/passkey.js", get(script))
        .route("/web/enrol/begin", post(enrol_begin))
        .route("/web/enrol/finish", post(enrol_finish))
        .route("/web/signin/begin", post(signin_begin))
        .route("/web/signin/finish", post(signin_finish))
        .route("/web/session", get(session_info))
        .route("/web/signout", post(signout))
        .route("/web/events/{event}/answer/begin", post(answer_begin))
        .route("/web/events/{event}/answer/finish", post(answer_finish))
}

/// The origin and relying party id, or why there are none.
fn party(shared: &Shared) -> Result<(String, String), ApiError> {
    shared.web.party.clone().map_err(ApiError::from)
}

/// The JSON body as `T`.
fn body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = body.map_err(|rejection| ServeError::Body {
        reason: rejection.body_text(),
    })?;
    Ok(
        serde_json::from_slice(&bytes).map_err(|e| ServeError::Json {
            reason: e.to_string(),
        })?,
    )
}

/// The session of the request, required, with its CSRF token and Origin
/// checked.
fn signed_in(
    engine: &mut Engine,
    headers: &HeaderMap,
    origin: &str,
) -> Result<WebSession, ApiError> {
    let session = session::current(engine, headers)?.ok_or(PeopleError::NoSession)?;
    check_csrf(&session, headers, origin)?;
    Ok(session)
}

/// A JSON reply that also sets (or clears) the session cookie.
fn with_cookie(cookie: String, body: Value) -> Response {
    let mut response = Json(body).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// A fresh random challenge of 32 bytes.
fn challenge() -> Result<Vec<u8>, ApiError> {
    let mut bytes = vec![0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| PeopleError::Random {
        reason: e.to_string(),
    })?;
    Ok(bytes)
}

/// `GET /assets/passkey.js`.
async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PASSKEY_JS,
    )
}

/// `GET /enrol/{token}`: the page that creates a passkey with the
/// invitation, or says why it cannot.
async fn enrol_page(State(shared): State<Arc<Shared>>, Path(token): Path<String>) -> Response {
    let party = shared.web.party.clone();
    let result = run_blocking(&shared, false, move |engine| {
        party?;
        Ok(engine.invitation(&token)?)
    })
    .await;
    let body = match &result {
        Ok(invite) => html! {
            h1 { "Create your passkey" }
            p { "This link enrols a passkey for " strong { (invite.agent) } ". "
                "Your device asks you to confirm with your fingerprint, face or PIN; "
                "the passkey then signs the answers you give on these pages." }
            p { "The link works once, until " (crate::time_spec::format_time(invite.expires_at)) "." }
            button type="button" data-passkey-enrol { "Create passkey" }
            p role="status" aria-live="polite" data-passkey-status {}
            noscript { p { "Creating a passkey needs JavaScript." } }
        },
        Err(error) => html! {
            h1 { "This enrolment link cannot be used" }
            p role="alert" { (error.body.message) }
            @if let Some(help) = &error.body.help { p { (help) } }
        },
    };
    let status = match &result {
        Ok(_) => StatusCode::OK,
        Err(error) => error.status,
    };
    let markup = page("Create your passkey", None, body);
    (status, Html(markup.into_string())).into_response()
}

/// `GET /signin`: the sign-in page (and sign-out, when signed in).
async fn signin_page(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let result = run_blocking(&shared, false, move |engine| {
        Ok(session::current(engine, &headers)?)
    })
    .await;
    let current = result.ok().flatten();
    let body = html! {
        @match &current {
            Some(session) => {
                h1 { "Signed in" }
                p { "You answer as " strong { (session.agent.as_str()) } "." }
                button type="button" data-passkey-signout { "Sign out" }
            }
            None => {
                h1 { "Sign in" }
                p { "Sign in with the passkey you enrolled for t-minus." }
                button type="button" data-passkey-signin { "Sign in with a passkey" }
            }
        }
        p role="status" aria-live="polite" data-passkey-status {}
        noscript { p { "Signing in with a passkey needs JavaScript." } }
    };
    Html(page("Sign in", current.as_ref(), body).into_string()).into_response()
}

/// `POST /web/enrol/begin` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrolBegin {
    /// The invitation's secret, from the link.
    token: String,
}

/// `POST /web/enrol/begin`: the creation options of a discoverable
/// credential with user verification required, for the invitation's agent.
async fn enrol_begin(
    State(shared): State<Arc<Shared>>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let (_, rp_id) = party(&shared)?;
    let request: EnrolBegin = body(raw)?;
    let challenge = challenge()?;
    run_blocking(&shared, true, move |engine| {
        let invite = engine.invitation(&request.token)?;
        let ceremony = engine.begin_ceremony(
            "enrol",
            b64url(&challenge),
            Some(&invite.agent),
            Some(invite.id.to_string()),
        )?;
        Ok(Json(json!({
            "ceremony": ceremony.id,
            "publicKey": {
                "challenge": ceremony.challenge,
                "rp": { "id": rp_id, "name": "t-minus" },
                "user": {
                    "id": b64url(invite.id.as_bytes()),
                    "name": invite.agent,
                    "displayName": invite.agent,
                },
                "pubKeyCredParams": [
                    { "type": "public-key", "alg": -7 },
                    { "type": "public-key", "alg": -8 },
                ],
                "authenticatorSelection": {
                    "residentKey": "required",
                    "requireResidentKey": true,
                    "userVerification": "required",
                },
                "attestation": "none",
                "timeout": TIMEOUT_MS,
            },
        })))
    })
    .await
}

/// A registration as `PublicKeyCredential` gives it, binary in base64url.
#[derive(Debug, Deserialize)]
struct Registration {
    response: RegistrationResponse,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegistrationResponse {
    #[serde(rename = "clientDataJSON")]
    client_data_json: String,
    attestation_object: String,
}

/// `POST /web/enrol/finish` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrolFinish {
    ceremony: String,
    token: String,
    credential: Registration,
}

/// `POST /web/enrol/finish`: checks the registration, enrols the passkey
/// (logged) and signs the person in.
async fn enrol_finish(
    State(shared): State<Arc<Shared>>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (origin, rp_id) = party(&shared)?;
    let request: EnrolFinish = body(raw)?;
    let secure = shared.web.secure;
    run_blocking(&shared, true, move |engine| {
        let ceremony = engine.take_ceremony(&request.ceremony, "enrol")?;
        let invite = engine.invitation(&request.token)?;
        if ceremony.data.as_deref() != Some(invite.id.to_string().as_str()) {
            return Err(PeopleError::Ceremony {
                id: request.ceremony.clone(),
            }
            .into());
        }
        let invalid = |reason: String| PeopleError::Invalid {
            what: "registration",
            reason,
        };
        let client = from_b64url(
            &request.credential.response.client_data_json,
            "clientDataJSON",
        )
        .map_err(invalid)?;
        let attestation = from_b64url(
            &request.credential.response.attestation_object,
            "attestationObject",
        )
        .map_err(invalid)?;
        let challenge = from_b64url(&ceremony.challenge, "the challenge").map_err(invalid)?;
        let party = Party {
            origin: &origin,
            rp_id: &rp_id,
        };
        let registered =
            verify_registration(&client, &attestation, &challenge, &party).map_err(invalid)?;
        let passkey =
            engine.enrol_passkey(&request.token, &registered.credential, &registered.key)?;
        let started = engine.start_session(&passkey)?;
        Ok(with_cookie(
            session::set_cookie(&started.secret, secure),
            json!({
                "agent": passkey.agent,
                "credential": passkey.credential,
                "csrf": started.session.csrf,
            }),
        ))
    })
    .await
}

/// `POST /web/signin/begin`: request options for a discoverable
/// credential (no credential listed), user verification required.
async fn signin_begin(State(shared): State<Arc<Shared>>) -> Result<Json<Value>, ApiError> {
    let (_, rp_id) = party(&shared)?;
    let challenge = challenge()?;
    run_blocking(&shared, true, move |engine| {
        let ceremony = engine.begin_ceremony("signin", b64url(&challenge), None, None)?;
        Ok(Json(json!({
            "ceremony": ceremony.id,
            "publicKey": {
                "challenge": ceremony.challenge,
                "rpId": rp_id,
                "allowCredentials": [],
                "userVerification": "required",
                "timeout": TIMEOUT_MS,
            },
        })))
    })
    .await
}

/// An assertion as `PublicKeyCredential` gives it, binary in base64url.
#[derive(Debug, Deserialize)]
struct AssertionCredential {
    /// The credential id, base64url.
    id: String,
    response: AssertionResponse,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssertionResponse {
    #[serde(rename = "clientDataJSON")]
    client_data_json: String,
    authenticator_data: String,
    signature: String,
    #[allow(dead_code)]
    user_handle: Option<String>,
}

impl AssertionCredential {
    /// The assertion as the log keeps it (base64url without padding).
    fn assertion(&self) -> Result<Assertion, PeopleError> {
        let canonical = |text: &str, what: &str| {
            from_b64url(text, what)
                .map(|bytes| b64url(&bytes))
                .map_err(|reason| PeopleError::Invalid {
                    what: "assertion",
                    reason,
                })
        };
        Ok(Assertion {
            authenticator_data: canonical(&self.response.authenticator_data, "authenticatorData")?,
            client_data_json: canonical(&self.response.client_data_json, "clientDataJSON")?,
            signature: canonical(&self.response.signature, "signature")?,
        })
    }

    /// The credential id in canonical base64url.
    fn credential(&self) -> Result<String, PeopleError> {
        from_b64url(&self.id, "the credential id")
            .map(|bytes| b64url(&bytes))
            .map_err(|reason| PeopleError::Invalid {
                what: "assertion",
                reason,
            })
    }
}

/// `POST /web/signin/finish` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SigninFinish {
    ceremony: String,
    credential: AssertionCredential,
}

/// `POST /web/signin/finish`: checks the assertion with the enrolled
/// passkey's public key and begins a session.
async fn signin_finish(
    State(shared): State<Arc<Shared>>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (origin, rp_id) = party(&shared)?;
    let request: SigninFinish = body(raw)?;
    let secure = shared.web.secure;
    run_blocking(&shared, true, move |engine| {
        let ceremony = engine.take_ceremony(&request.ceremony, "signin")?;
        let credential = request.credential.credential()?;
        let assertion = request.credential.assertion()?;
        let passkey = engine.usable_passkey(&credential)?;
        let invalid = |reason: String| PeopleError::Invalid {
            what: "sign-in",
            reason,
        };
        let key = from_b64url(&passkey.public_key, "the stored public key")
            .and_then(|bytes| CoseKey::parse(&bytes))
            .map_err(invalid)?;
        let challenge = from_b64url(&ceremony.challenge, "the challenge").map_err(invalid)?;
        let party = Party {
            origin: &origin,
            rp_id: &rp_id,
        };
        verify_assertion(&assertion, &challenge, &party, &key).map_err(invalid)?;
        let started = engine.start_session(&passkey)?;
        Ok(with_cookie(
            session::set_cookie(&started.secret, secure),
            json!({
                "agent": passkey.agent,
                "credential": passkey.credential,
                "csrf": started.session.csrf,
            }),
        ))
    })
    .await
}

/// `GET /web/session`: the signed-in person and the CSRF token.
async fn session_info(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    run_blocking(&shared, false, move |engine| {
        let session = session::current(engine, &headers)?.ok_or(PeopleError::NoSession)?;
        Ok(Json(json!({
            "agent": session.agent.as_str(),
            "credential": session.credential,
            "csrf": session.csrf,
        })))
    })
    .await
}

/// `POST /web/signout`: ends the session and clears the cookie.
async fn signout(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (origin, _) = party(&shared)?;
    let secure = shared.web.secure;
    run_blocking(&shared, true, move |engine| {
        signed_in(engine, &headers, &origin)?;
        if let Some(secret) = session::cookie_secret(&headers) {
            engine.end_session(&secret)?;
        }
        Ok(with_cookie(
            session::clear_cookie(secure),
            json!({ "signed_out": true }),
        ))
    })
    .await
}

/// `POST /web/events/{event}/answer/begin` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerBegin {
    /// `confirm`, `defer` or `decline`.
    answer: String,
    /// How long, for `defer` (`15m`).
    duration: Option<String>,
    /// Why, for `decline`.
    reason: Option<String>,
}

impl AnswerBegin {
    fn to_answer(&self) -> Result<Answer, ApiError> {
        let refuse = |reason: &str| -> ApiError {
            ServeError::Json {
                reason: reason.to_string(),
            }
            .into()
        };
        match self.answer.as_str() {
            "confirm" => Ok(Answer::Confirm),
            "defer" => {
                let Some(text) = &self.duration else {
                    return Err(refuse("a defer needs a duration: {\"answer\": \"defer\", \"duration\": \"15m\"}"));
                };
                let by = crate::duration::parse_duration(text)?;
                if by.is_zero() {
                    return Err(crate::TMinusError::NonPositiveDeferral {
                        value: crate::error::DeferralValue::Written(text.clone()),
                    }
                    .into());
                }
                Ok(Answer::Defer(by))
            }
            "decline" => Ok(Answer::Decline {
                reason: self.reason.clone().filter(|r| !r.trim().is_empty()),
            }),
            _ => Err(refuse(
                "`answer` is `confirm`, `defer` (with `duration`) or `decline` (with an optional `reason`)",
            )),
        }
    }
}

/// `POST /web/events/{event}/answer/begin`: the answer message v2 naming
/// the session's passkey, this origin and relying party, and the request
/// options whose challenge is the message's SHA-256.
async fn answer_begin(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(event): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let (origin, rp_id) = party(&shared)?;
    run_blocking(&shared, true, move |engine| {
        let session = signed_in(engine, &headers, &origin)?;
        let request: AnswerBegin = body(raw)?;
        let answer = request.to_answer()?;
        let id = engine.resolve_event(&event)?;
        let message = engine
            .answer_message(id, &session.agent, answer)?
            .passkey(Passkey {
                credential: session.credential.clone(),
                origin: origin.clone(),
                rp_id: rp_id.clone(),
            })?;
        let text = message.render();
        let challenge = b64url(&answer_challenge(text.as_bytes()));
        let ceremony = engine.begin_ceremony(
            "answer",
            challenge.clone(),
            Some(session.agent.as_str()),
            Some(text.clone()),
        )?;
        Ok(Json(json!({
            "ceremony": ceremony.id,
            "message": text,
            "publicKey": {
                "challenge": challenge,
                "rpId": rp_id,
                "allowCredentials": [{ "type": "public-key", "id": session.credential }],
                "userVerification": "required",
                "timeout": TIMEOUT_MS,
            },
        })))
    })
    .await
}

/// `POST /web/events/{event}/answer/finish` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerFinish {
    ceremony: String,
    credential: AssertionCredential,
}

/// `POST /web/events/{event}/answer/finish`: records the answer the
/// assertion signs, through [`Engine::respond_passkey`]; replies with the
/// event as the API shows it.
async fn answer_finish(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(event): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Event>, ApiError> {
    let (origin, _) = party(&shared)?;
    let reply = run_blocking(&shared, true, move |engine| {
        let session = signed_in(engine, &headers, &origin)?;
        let request: AnswerFinish = body(raw)?;
        let ceremony = engine.take_ceremony(&request.ceremony, "answer")?;
        let id = engine.resolve_event(&event)?;
        let message = ceremony.data.unwrap_or_default();
        let parsed = crate::trust::AnswerMessage::parse(message.as_bytes())?;
        if ceremony.agent.as_deref() != Some(session.agent.as_str()) || parsed.event() != id {
            return Err(PeopleError::Ceremony {
                id: request.ceremony.clone(),
            }
            .into());
        }
        if request.credential.credential()? != session.credential {
            return Err(PeopleError::Invalid {
                what: "answer",
                reason: "the assertion is by another passkey than the session's".into(),
            }
            .into());
        }
        let assertion = request.credential.assertion()?;
        let updated = engine.respond_passkey(message.as_bytes(), &assertion)?;
        Ok(Event::read(engine, &mut EventViews::default(), &updated)?)
    })
    .await?;
    shared.metrics.answer("passkey");
    Ok(Json(reply))
}
