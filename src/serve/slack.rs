//! `POST /v1/slack/interactions`: answers pressed on the buttons of Slack
//! messages (`format: slack` notifications).
//!
//! Slack sends an interaction as `application/x-www-form-urlencoded` with
//! one field, `payload`, a JSON object of `type` `block_actions`: the user
//! who pressed (`user.id`), the button (`actions[0].action_id` and its
//! `value`, the event's id) and a `response_url` that updates the message.
//! Every request is signed: `X-Slack-Signature` is `v0=` and the hex
//! HMAC-SHA256, keyed with the app's signing secret
//! ([`SIGNING_SECRET_VAR`]), of `v0:{X-Slack-Request-Timestamp}:{body}`.
//!
//! A request is refused (401) when its signature does not verify (checked
//! in constant time), when its timestamp is more than [`MAX_AGE`] away from
//! now, and when the same signed request comes again (its digest is kept
//! for [`MAX_AGE`] in memory, and an answer's digest is used up in the
//! store like a signed answer's nonce). Then the Slack user is mapped to
//! the agent linked to it (`t-minus people link AGENT --slack USER_ID`),
//! and the answer is recorded through the engine, the log entry naming
//! Slack, the user and the request's digest (never the `response_url`,
//! which works like a password). Slack gets `200` at once; the message is
//! updated through `response_url` (who answered, quorum progress), or the
//! user gets an ephemeral reply: for an account that is not linked (what
//! to ask the operator), for an event whose answers must be signed (its
//! page, where the passkey signs), for a refused answer (why). Only
//! `response_url`s under the configured base ([`RESPONSE_BASE_VAR`],
//! `https://hooks.slack.com/` by default) are called.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use miette::Diagnostic;
use serde_json::{json, Value};
use sha2::Sha256;
use thiserror::Error;
use uuid::Uuid;

use super::error::ApiError;
use super::Shared;
use crate::chat::{Chat, ChatLinkError};
use crate::engine::ChatAnswer;
use crate::notification::payload::{self, SLACK_CONFIRM, SLACK_DECLINE, SLACK_DEFER};
use crate::TMinusError;

/// The variable holding the Slack app's signing secret; without it the
/// route refuses every request.
pub const SIGNING_SECRET_VAR: &str = "T_MINUS_SLACK_SIGNING_SECRET";

/// The variable naming the base every `response_url` must start with
/// (default [`DEFAULT_RESPONSE_BASE`]): for GovSlack, Enterprise Grid
/// set-ups behind a proxy, and tests.
pub const RESPONSE_BASE_VAR: &str = "T_MINUS_SLACK_RESPONSE_BASE";

/// Where Slack's `response_url`s live.
pub const DEFAULT_RESPONSE_BASE: &str = "https://hooks.slack.com/";

/// How far a request's timestamp may be from now: 5 minutes.
pub const MAX_AGE: StdDuration = StdDuration::from_secs(300);

/// The largest interaction body taken (Slack's payload repeats the whole
/// message).
pub const BODY_LIMIT: usize = 512 * 1024;

/// How the service takes Slack's interactions.
#[derive(Clone)]
pub struct SlackOptions {
    /// The app's signing secret.
    pub signing_secret: String,
    /// The base every `response_url` must start with (ends with `/`).
    pub response_base: String,
}

impl std::fmt::Debug for SlackOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackOptions")
            .field("signing_secret", &"[secret]")
            .field("response_base", &self.response_base)
            .finish()
    }
}

impl SlackOptions {
    /// The options the environment gives: `None` without
    /// [`SIGNING_SECRET_VAR`]; refused when [`RESPONSE_BASE_VAR`] is not an
    /// `http(s)://` URL.
    pub fn from_env() -> Result<Option<SlackOptions>, SlackError> {
        let secret = std::env::var(SIGNING_SECRET_VAR).unwrap_or_default();
        if secret.trim().is_empty() {
            return Ok(None);
        }
        let base = std::env::var(RESPONSE_BASE_VAR).unwrap_or_default();
        let base = if base.trim().is_empty() {
            DEFAULT_RESPONSE_BASE.to_string()
        } else {
            response_base(base.trim())?
        };
        Ok(Some(SlackOptions {
            signing_secret: secret.trim().to_string(),
            response_base: base,
        }))
    }
}

/// `base` as a response base: an `http(s)://host…` URL, ending with `/`.
fn response_base(base: &str) -> Result<String, SlackError> {
    let lower = base.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !base.chars().any(char::is_whitespace) => {
            Ok(if base.ends_with('/') {
                base.to_string()
            } else {
                format!("{base}/")
            })
        }
        _ => Err(SlackError::BadBase {
            base: base.to_string(),
        }),
    }
}

/// Why a Slack request is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error, Diagnostic)]
#[non_exhaustive]
pub enum SlackError {
    /// The route without a signing secret.
    #[error("Slack interactions are not enabled on this server")]
    #[diagnostic(
        code(t_minus::slack::not_configured),
        help("set T_MINUS_SLACK_SIGNING_SECRET to the Slack app's signing secret (Basic Information → App Credentials) and restart `t-minus serve`; see docs/slack.md")
    )]
    NotConfigured,

    /// A signature that is missing or does not verify.
    #[error("the request's X-Slack-Signature is missing or does not verify")]
    #[diagnostic(
        code(t_minus::slack::signature),
        help("Slack signs `v0:{{X-Slack-Request-Timestamp}}:{{body}}` with the app's signing secret: check that T_MINUS_SLACK_SIGNING_SECRET is this app's secret and that no proxy changes the body")
    )]
    Signature,

    /// A timestamp that is missing, or too far from now.
    #[error("the request's X-Slack-Request-Timestamp {timestamp} is missing or more than 5 minutes from now ({now})")]
    #[diagnostic(
        code(t_minus::slack::stale),
        help("a request is accepted within 5 minutes of being sent; check the server's clock")
    )]
    Stale {
        /// The header as sent (at most 32 characters).
        timestamp: String,
        /// The server's time, in Unix seconds.
        now: i64,
    },

    /// The same signed request, again.
    #[error("this signed request was received before ({digest}); a request is accepted once")]
    #[diagnostic(
        code(t_minus::slack::replay),
        help("press the button again in Slack: every press is a new request")
    )]
    Replayed {
        /// The request's digest.
        digest: String,
    },

    /// A body that is not Slack's interaction payload.
    #[error("the request is not a Slack interaction: {reason}")]
    #[diagnostic(
        code(t_minus::slack::payload),
        help("Slack sends `payload=` and a JSON object, form-encoded")
    )]
    Payload {
        /// What is wrong.
        reason: String,
    },

    /// A `response_url` outside the configured base.
    #[error("the interaction's response_url is not under {base}")]
    #[diagnostic(
        code(t_minus::slack::response_url),
        help("t-minus only calls Slack's hosts; for another one, set T_MINUS_SLACK_RESPONSE_BASE")
    )]
    ResponseUrl {
        /// The base it must start with.
        base: String,
    },

    /// A response base that is not a URL.
    #[error("T_MINUS_SLACK_RESPONSE_BASE={base:?} is not an http(s) URL")]
    #[diagnostic(
        code(t_minus::slack::base),
        help("set it to the start of Slack's response URLs, e.g. https://hooks.slack.com/")
    )]
    BadBase {
        /// The value.
        base: String,
    },
}

/// The digests of the signed requests received lately, with their
/// timestamps: a replay within [`MAX_AGE`] is refused.
#[derive(Debug, Default)]
pub(crate) struct Seen(Mutex<HashMap<String, i64>>);

impl Seen {
    /// Records `digest` of a request sent at `timestamp`; false when it was
    /// recorded before. Forgets those older than [`MAX_AGE`] at `now`.
    fn first(&self, digest: &str, timestamp: i64, now: i64) -> bool {
        let Ok(mut seen) = self.0.lock() else {
            return false;
        };
        let horizon = now - MAX_AGE.as_secs() as i64 - 1;
        seen.retain(|_, at| *at >= horizon);
        seen.insert(digest.to_string(), timestamp).is_none()
    }
}

/// Checks a request's signature and age at `now`: Slack's `v0` scheme.
/// Returns the timestamp and the digest of the signed bytes
/// (`v0:{timestamp}:{body}`).
pub fn verify_request(
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(i64, String), SlackError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let raw_timestamp = header("x-slack-request-timestamp").unwrap_or_default();
    let stale = || SlackError::Stale {
        timestamp: raw_timestamp.chars().take(32).collect(),
        now: now.timestamp(),
    };
    let timestamp: i64 = raw_timestamp.trim().parse().map_err(|_| stale())?;
    let signature = header("x-slack-signature")
        .and_then(|s| s.strip_prefix("v0="))
        .and_then(|hex| base16ct::mixed::decode_vec(hex).ok())
        .ok_or(SlackError::Signature)?;
    let mut signed = format!("v0:{raw_timestamp}:").into_bytes();
    signed.extend_from_slice(body);
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| SlackError::Signature)?;
    mac.update(&signed);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&signature)
        .map_err(|_| SlackError::Signature)?;
    if (now.timestamp() - timestamp).unsigned_abs() > MAX_AGE.as_secs() {
        return Err(stale());
    }
    Ok((timestamp, crate::engine::chat_request_digest(&signed)))
}

/// What a `block_actions` interaction asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interaction {
    /// The Slack user who pressed.
    pub user: String,
    /// The button's `action_id`.
    pub action: String,
    /// The button's `value` (the event's id for t-minus's buttons).
    pub value: Option<String>,
    /// Where the message is updated.
    pub response_url: Option<String>,
}

/// Reads Slack's form body: `payload` as JSON, of type `block_actions`.
/// `None` for another type (nothing to do).
pub fn parse_interaction(body: &[u8]) -> Result<Option<Interaction>, SlackError> {
    let bad = |reason: &str| SlackError::Payload {
        reason: reason.to_string(),
    };
    let text = form_urlencoded::parse(body)
        .find(|(name, _)| name == "payload")
        .map(|(_, value)| value.into_owned())
        .ok_or_else(|| bad("no `payload` field"))?;
    let payload: Value = serde_json::from_str(&text).map_err(|_| bad("`payload` is not JSON"))?;
    if payload["type"] != "block_actions" {
        return Ok(None);
    }
    let user = payload["user"]["id"]
        .as_str()
        .ok_or_else(|| bad("no `user.id`"))?;
    let action = payload["actions"]
        .get(0)
        .ok_or_else(|| bad("no `actions`"))?;
    Ok(Some(Interaction {
        user: user.to_string(),
        action: action["action_id"].as_str().unwrap_or_default().to_string(),
        value: action["value"].as_str().map(str::to_string),
        response_url: payload["response_url"].as_str().map(str::to_string),
    }))
}

/// What to send back through `response_url`.
#[derive(Debug, Clone, PartialEq)]
enum Reply {
    /// Replace the message (`replace_original`).
    Update(Value),
    /// An ephemeral message to the user who pressed.
    Ephemeral(String),
}

impl Reply {
    fn body(&self) -> Value {
        match self {
            Reply::Update(message) => {
                let mut body = message.clone();
                body["replace_original"] = json!(true);
                body
            }
            Reply::Ephemeral(text) => json!({
                "response_type": "ephemeral",
                "replace_original": false,
                "text": text,
            }),
        }
    }
}

/// `POST /v1/slack/interactions`.
pub(super) async fn interactions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match handle(shared, headers, body).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn handle(
    shared: Arc<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(), ApiError> {
    let Some(options) = shared.slack.clone() else {
        return Err(slack_error(&SlackError::NotConfigured));
    };
    let body = super::routes::body_bytes(body, BODY_LIMIT)?;
    let now = shared.clock_for_tests.unwrap_or_else(Utc::now);
    let (timestamp, digest) = verify_request(&options.signing_secret, &headers, &body, now)
        .map_err(|e| slack_error(&e))?;
    if !shared.slack_seen.first(&digest, timestamp, now.timestamp()) {
        return Err(slack_error(&SlackError::Replayed { digest }));
    }
    let Some(interaction) = parse_interaction(&body).map_err(|e| slack_error(&e))? else {
        return Ok(());
    };
    let answer = match interaction.action.as_str() {
        SLACK_CONFIRM => ChatAnswer::Confirm,
        SLACK_DEFER => ChatAnswer::Defer,
        SLACK_DECLINE => ChatAnswer::Decline,
        // The Open button, and buttons t-minus did not make.
        _ => return Ok(()),
    };
    let response_url = match interaction.response_url.clone() {
        Some(url) if url.starts_with(&options.response_base) => url,
        _ => {
            return Err(slack_error(&SlackError::ResponseUrl {
                base: options.response_base.clone(),
            }))
        }
    };
    let public_url = shared.public_url.clone();
    let reply = super::routes::run_blocking(&shared, true, move |engine| {
        answer_and_reply(engine, &interaction, answer, &digest, public_url.as_deref())
    })
    .await?;
    // Slack wants its 200 within 3 seconds: the message is updated after.
    tokio::task::spawn_blocking(move || post_reply(&response_url, &reply));
    Ok(())
}

/// The error response of `e` (401 for a refused request).
fn slack_error(e: &SlackError) -> ApiError {
    ApiError::new(e)
}

/// Records the answer of `interaction` and says what to send back; a
/// replayed request is the `Err`.
fn answer_and_reply(
    engine: &mut crate::Engine,
    interaction: &Interaction,
    answer: ChatAnswer,
    digest: &str,
    public_url: Option<&str>,
) -> Result<Reply, ApiError> {
    let user = interaction.user.as_str();
    let linked = match engine.chat_link(Chat::Slack, user) {
        Ok(linked) => linked,
        Err(e) => return Ok(Reply::Ephemeral(format!("t-minus could not answer: {e}"))),
    };
    if linked.is_none() {
        return Ok(Reply::Ephemeral(format!(
            "Your Slack account ({user}) is not linked to a t-minus agent. Ask the t-minus operator to run `t-minus people link YOUR-AGENT --slack {user}`, then press the button again."
        )));
    }
    let Some(id) = interaction
        .value
        .as_deref()
        .and_then(|v| Uuid::parse_str(v).ok())
    else {
        return Ok(Reply::Ephemeral(
            "This button names no t-minus event.".into(),
        ));
    };
    let link = public_url.map(|base| payload::answer_url(base, id));
    match engine.signers_of(id) {
        Ok(Some(_)) => {
            let text = match &link {
                Some(url) => format!(
                    "Answers to this event must be signed: open {url} and answer there, where your passkey signs."
                ),
                None => "Answers to this event must be signed: answer on its page in t-minus, where your passkey signs (this server has no --public-url to link to).".into(),
            };
            return Ok(Reply::Ephemeral(text));
        }
        Ok(None) => {}
        Err(e) => return Ok(Reply::Ephemeral(format!("t-minus could not answer: {e}"))),
    }
    match engine.answer_from_chat(id, Chat::Slack, user, answer, digest) {
        Ok((event, agent)) => {
            let campaign = event
                .campaign
                .and_then(|c| engine.campaign_name(c).ok().flatten());
            let shown = payload::event_json(&event, campaign.as_deref());
            let name = match (&shown.campaign, &shown.name) {
                (Some(c), Some(n)) => format!("{c}/{n}"),
                (None, Some(n)) => n.clone(),
                _ => event.label(),
            };
            let (mark, word) = match answer {
                ChatAnswer::Confirm => ("✅", "confirmed"),
                ChatAnswer::Defer => ("⏳", "deferred"),
                ChatAnswer::Decline => ("❌", "declined"),
            };
            let line = format!("{mark} {agent} {word} {name} from Slack (<@{user}>)");
            let event_value = serde_json::to_value(&shown).unwrap_or(Value::Null);
            Ok(Reply::Update(json!({
                "text": line,
                "blocks": payload::slack_blocks(&line, &event_value, link.as_deref(), true),
            })))
        }
        Err(TMinusError::ChatLink(ChatLinkError::Replayed { .. })) => {
            Err(slack_error(&SlackError::Replayed {
                digest: digest.to_string(),
            }))
        }
        Err(e) => Ok(Reply::Ephemeral(format!(
            "t-minus did not record your answer: {e}"
        ))),
    }
}

/// POSTs `reply` to `response_url` (checked to be under the base before);
/// a failure is logged on stderr, never with the URL (it works like a
/// password).
fn post_reply(response_url: &str, reply: &Reply) {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(StdDuration::from_secs(10)))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("t-minus/", env!("CARGO_PKG_VERSION")))
        .build();
    let agent: ureq::Agent = config.into();
    let result = agent
        .post(response_url)
        .header("Content-Type", "application/json")
        .send(reply.body().to_string());
    match result {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => eprintln!(
            "t-minus serve: Slack's response_url answered HTTP {}",
            r.status().as_u16()
        ),
        Err(e) => eprintln!(
            "t-minus serve: Slack's response_url could not be reached: {}",
            e.to_string().replace(response_url, "[response_url]")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(secret: &str, timestamp: &str, body: &[u8]) -> HeaderMap {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("v0:{timestamp}:").as_bytes());
        mac.update(body);
        let hex = base16ct::lower::encode_string(&mac.finalize().into_bytes());
        let mut headers = HeaderMap::new();
        headers.insert("x-slack-request-timestamp", timestamp.parse().unwrap());
        headers.insert("x-slack-signature", format!("v0={hex}").parse().unwrap());
        headers
    }

    fn at(unix: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(unix, 0).unwrap()
    }

    #[test]
    fn slacks_own_example_verifies() {
        // The example of Slack's "Verifying requests from Slack" guide.
        let secret = "8f742231b10e8888abcd99yyyzzz85a5";
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let mut headers = HeaderMap::new();
        headers.insert("x-slack-request-timestamp", "1531420618".parse().unwrap());
        headers.insert(
            "x-slack-signature",
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
                .parse()
                .unwrap(),
        );
        let (timestamp, digest) =
            verify_request(secret, &headers, body, at(1_531_420_618 + 60)).unwrap();
        assert_eq!(timestamp, 1_531_420_618);
        assert!(digest.starts_with("sha256:") && digest.len() == 71);
    }

    #[test]
    fn a_wrong_secret_a_changed_body_and_an_old_timestamp_are_refused() {
        let body = b"payload=%7B%7D";
        let headers = signed("secret", "1700000000", body);
        let now = at(1_700_000_000);
        assert!(verify_request("secret", &headers, body, now).is_ok());
        assert_eq!(
            verify_request("other", &headers, body, now),
            Err(SlackError::Signature)
        );
        assert_eq!(
            verify_request("secret", &headers, b"payload=%7B%7C", now),
            Err(SlackError::Signature)
        );
        assert!(matches!(
            verify_request("secret", &headers, body, at(1_700_000_000 + 301)),
            Err(SlackError::Stale { .. })
        ));
        assert!(verify_request("secret", &headers, body, at(1_700_000_000 + 300)).is_ok());
        assert!(matches!(
            verify_request("secret", &HeaderMap::new(), body, now),
            Err(SlackError::Stale { .. })
        ));
    }

    #[test]
    fn a_digest_is_taken_once_within_the_window() {
        let seen = Seen::default();
        assert!(seen.first("sha256:a", 100, 100));
        assert!(!seen.first("sha256:a", 100, 200));
        // Long gone: forgotten, but its timestamp would be refused anyway.
        assert!(seen.first("sha256:a", 100, 100 + 302));
    }

    #[test]
    fn block_actions_are_read_and_other_types_ignored() {
        let payload = json!({
            "type": "block_actions",
            "user": {"id": "U024BE7LH", "username": "alice", "team_id": "T1"},
            "response_url": "https://hooks.slack.com/actions/T1/1/abc",
            "actions": [{"type": "button", "action_id": "t-minus.confirm", "block_id": "b",
                         "value": "7b484ddc-75aa-41a5-981a-1797278f2a2a", "action_ts": "1.2"}],
        });
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish();
        let read = parse_interaction(body.as_bytes()).unwrap().unwrap();
        assert_eq!(read.user, "U024BE7LH");
        assert_eq!(read.action, "t-minus.confirm");
        assert_eq!(
            read.value.as_deref(),
            Some("7b484ddc-75aa-41a5-981a-1797278f2a2a")
        );
        let other: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", r#"{"type":"view_closed"}"#)
            .finish();
        assert_eq!(parse_interaction(other.as_bytes()), Ok(None));
        assert!(parse_interaction(b"text=hi").is_err());
    }

    #[test]
    fn the_response_base_is_a_url_ending_with_a_slash() {
        assert_eq!(
            response_base("http://127.0.0.1:9/").unwrap(),
            "http://127.0.0.1:9/"
        );
        assert_eq!(
            response_base("https://hooks.slack-gov.com").unwrap(),
            "https://hooks.slack-gov.com/"
        );
        assert!(response_base("hooks.slack.com").is_err());
    }
}
