//! The command line as a client of `t-minus serve`: with `--db
//! http(s)://HOST:PORT` (or `T_MINUS_DB`) and a token in `T_MINUS_TOKEN`,
//! the agent and operator commands send their request to the service
//! instead of opening a store, and print its reply with the same renderers
//! as the local command (`--json`: the reply itself, which is the same
//! output type).
//!
//! The token is read from the environment only (never a flag, so it is in
//! no shell history and no process listing) and never printed.

use std::fmt;
use std::time::Duration;

use miette::Diagnostic;
use serde::de::DeserializeOwned;
use t_minus::output::ErrorBody;

/// The variable holding the token sent to the service.
pub const TOKEN_VAR: &str = "T_MINUS_TOKEN";

/// The variable naming a PEM file of the certificates to trust for an
/// `https://` service instead of the bundled public roots (a private CA, a
/// self-signed certificate).
pub const CA_VAR: &str = "T_MINUS_CA_CERT";

/// Whether `--db` names a t-minus service (`http://` or `https://`).
pub fn is_service_url(location: &str) -> bool {
    let lower = location.trim_start().to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// A failure of a request to the service.
#[derive(Debug)]
pub enum ClientError {
    /// The service refused the request: its error, with its code.
    Server {
        /// The error as the service sent it (`{code, message, help, …}`).
        body: Box<ErrorBody>,
        /// The whole reply, printed as it is with `--json`.
        raw: Box<serde_json::Value>,
    },
    /// The service could not be reached.
    Unreachable {
        /// The service's URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// `T_MINUS_TOKEN` is not set.
    NoToken,
    /// The reply is not what the route answers.
    Reply {
        /// The request's URL.
        url: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The command needs the store itself.
    Unsupported {
        /// What cannot be done through the service.
        what: String,
    },
    /// The client refused the request before sending it.
    Refused {
        /// The code.
        code: &'static str,
        /// Why.
        message: String,
        /// What to do.
        help: String,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Server { body, .. } => f.write_str(&body.message),
            ClientError::Unreachable { url, reason } => {
                write!(f, "cannot reach the t-minus service at {url}: {reason}")
            }
            ClientError::NoToken => write!(
                f,
                "--db names a t-minus service, but {TOKEN_VAR} holds no token"
            ),
            ClientError::Reply { url, reason } => {
                write!(f, "the reply of {url} is not a t-minus reply: {reason}")
            }
            ClientError::Unsupported { what } => {
                write!(f, "{what} does not run through a t-minus service")
            }
            ClientError::Refused { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for ClientError {}

impl Diagnostic for ClientError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let code: &'a str = match self {
            ClientError::Server { body, .. } => &body.code,
            ClientError::Unreachable { .. } => "t_minus::client::unreachable",
            ClientError::NoToken => "t_minus::client::token",
            ClientError::Reply { .. } => "t_minus::client::reply",
            ClientError::Unsupported { .. } => "t_minus::client::unsupported",
            ClientError::Refused { code, .. } => code,
        };
        Some(Box::new(code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let help = match self {
            ClientError::Server { body, raw, .. } => {
                let mut help = body.help.clone().unwrap_or_default();
                let problems = raw["error"]["problems"].as_array().cloned();
                for p in problems.unwrap_or_default() {
                    if !help.is_empty() {
                        help.push('\n');
                    }
                    let field = |k: &str| p[k].as_str().unwrap_or_default().to_string();
                    help.push_str(&format!("{}: {}", field("code"), field("message")));
                }
                help
            }
            ClientError::Unreachable { .. } => {
                "check the URL in --db or T_MINUS_DB and that `t-minus serve` runs there".into()
            }
            ClientError::NoToken => format!(
                "set {TOKEN_VAR} to a token made with `t-minus token create AGENT` where the store is"
            ),
            ClientError::Reply { .. } => {
                "check that --db names a t-minus service of this version".into()
            }
            ClientError::Unsupported { .. } => "through a service run confirm, defer, decline, breakglass, cancel EVENT, delegate, delegations, undelegate, status, inbox, log, wait, verify, plan, apply, answer-message and submit; run the others where the store is".into(),
            ClientError::Refused { help, .. } => help.clone(),
        };
        (!help.is_empty()).then(|| Box::new(help) as Box<dyn fmt::Display + 'a>)
    }
}

/// A reply: the output type, and the JSON it came as (printed unchanged by
/// `--json`).
pub struct Reply<T> {
    /// The reply, typed.
    pub value: T,
    /// The reply as sent.
    pub json: serde_json::Value,
}

/// A connection to a t-minus service.
pub struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
    /// For streams: no overall timeout.
    streams: ureq::Agent,
}

/// The largest reply read.
const REPLY_LIMIT: u64 = 256 * 1024 * 1024;

impl Client {
    /// A client of the service at `url`, with the token of `T_MINUS_TOKEN`.
    pub fn from_env(url: &str) -> Result<Self, ClientError> {
        let token = std::env::var(TOKEN_VAR)
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .ok_or(ClientError::NoToken)?;
        let tls = tls_config()?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(90)))
            .user_agent(concat!("t-minus/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.clone())
            .build();
        let streams = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(90)))
            .user_agent(concat!("t-minus/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build();
        Ok(Client {
            base: url.trim().trim_end_matches('/').to_string(),
            token,
            agent: config.new_agent(),
            streams: streams.new_agent(),
        })
    }

    /// `GET path` as a stream of Server-Sent Events; with `last_event_id`,
    /// resumed after that event. An error reply is read as [`Client::get`]
    /// reads it.
    pub fn stream(
        &self,
        path: &str,
        last_event_id: Option<i64>,
    ) -> Result<EventStream, ClientError> {
        let url = self.url(path);
        let mut request = self
            .streams
            .get(&url)
            .header("Authorization", self.bearer())
            .header("Accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.call().map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            reason: e.to_string(),
        })?;
        if !(200..300).contains(&response.status().as_u16()) {
            return match self.reply::<serde_json::Value>(url, Ok(response)) {
                Err(e) => Err(e),
                Ok(_) => Err(ClientError::Reply {
                    url: self.url(path),
                    reason: "a stream answered with an error status".into(),
                }),
            };
        }
        Ok(EventStream {
            reader: std::io::BufReader::new(response.into_body().into_reader()),
        })
    }

    /// `GET path`.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Reply<T>, ClientError> {
        let url = self.url(path);
        let reply = self
            .agent
            .get(&url)
            .header("Authorization", self.bearer())
            .call();
        self.reply(url, reply)
    }

    /// `POST path` with a JSON body.
    pub fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<Reply<T>, ClientError> {
        self.post(path, "application/json", body.to_string())
    }

    /// `POST path` with a body of `content_type`.
    pub fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        content_type: &str,
        body: String,
    ) -> Result<Reply<T>, ClientError> {
        let url = self.url(path);
        let reply = self
            .agent
            .post(&url)
            .header("Authorization", self.bearer())
            .header("Content-Type", content_type)
            .send(body.as_bytes());
        self.reply(url, reply)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    fn reply<T: DeserializeOwned>(
        &self,
        url: String,
        reply: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply<T>, ClientError> {
        let mut response = reply.map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            reason: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(REPLY_LIMIT)
            .read_to_string()
            .map_err(|e| ClientError::Unreachable {
                url: self.base.clone(),
                reason: e.to_string(),
            })?;
        let bad = |reason: String| ClientError::Reply {
            url: url.clone(),
            reason,
        };
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| bad(format!("HTTP {status}, not JSON ({e})")))?;
        if !(200..300).contains(&status) {
            let body = error_body(&json)
                .ok_or_else(|| bad(format!("HTTP {status} without an error object")))?;
            return Err(ClientError::Server {
                body: Box::new(body),
                raw: Box::new(json),
            });
        }
        let value = serde_json::from_value(json.clone()).map_err(|e| bad(e.to_string()))?;
        Ok(Reply { value, json })
    }
}

/// What a stream of Server-Sent Events brings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    /// An event: its `id`, `event` name and `data` (lines joined by `\n`).
    Event {
        /// `id:`, if any.
        id: Option<String>,
        /// `event:` (`message` when absent).
        name: String,
        /// `data:`.
        data: String,
    },
    /// A comment (a keep-alive).
    Comment,
}

/// The longest line of a stream read.
const STREAM_LINE_LIMIT: u64 = 4 * 1024 * 1024;

/// An open stream of Server-Sent Events.
pub struct EventStream {
    reader: std::io::BufReader<ureq::BodyReader<'static>>,
}

impl EventStream {
    /// The next event or comment; `None` when the stream ends.
    pub fn next_item(&mut self) -> std::io::Result<Option<StreamItem>> {
        read_item(&mut self.reader)
    }
}

/// Reads one event (or comment) of the Server-Sent Events format.
fn read_item(reader: &mut impl std::io::BufRead) -> std::io::Result<Option<StreamItem>> {
    use std::io::{BufRead, Read};
    let (mut id, mut name, mut data, mut comment) = (None, None, None::<String>, false);
    loop {
        let mut line = String::new();
        let n = (&mut *reader)
            .take(STREAM_LINE_LIMIT)
            .read_line(&mut line)?;
        if n == 0 {
            return Ok(None);
        }
        if !line.ends_with('\n') && n as u64 == STREAM_LINE_LIMIT {
            return Err(std::io::Error::other("a line of the stream is too long"));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if data.is_some() || id.is_some() || name.is_some() {
                return Ok(Some(StreamItem::Event {
                    id,
                    name: name.unwrap_or_else(|| "message".into()),
                    data: data.unwrap_or_default(),
                }));
            }
            if comment {
                return Ok(Some(StreamItem::Comment));
            }
            continue;
        }
        if line.starts_with(':') {
            comment = true;
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value).to_string();
        match field {
            "id" => id = Some(value),
            "event" => name = Some(value),
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(&value);
                }
                None => data = Some(value),
            },
            _ => {}
        }
    }
}

/// The campaigns read from a service, each once.
#[derive(Default)]
pub struct Campaigns(Vec<t_minus::output::CampaignStatus>);

impl Campaigns {
    /// The campaign named `name`.
    pub fn get(
        &mut self,
        client: &Client,
        name: &str,
    ) -> Result<&t_minus::output::CampaignStatus, ClientError> {
        let index = match self.0.iter().position(|c| c.campaign.name == name) {
            Some(index) => index,
            None => {
                let path = format!("/v1/campaigns/{}", encode(name));
                self.0
                    .push(client.get::<t_minus::output::CampaignStatus>(&path)?.value);
                self.0.len() - 1
            }
        };
        Ok(&self.0[index])
    }

    /// What `shown` needs when it is a blocked campaign event, by name.
    pub fn needs(
        &mut self,
        client: &Client,
        shown: &t_minus::output::Event,
    ) -> Result<Vec<String>, ClientError> {
        match &shown.campaign {
            Some(name) if shown.state == t_minus::EventState::Blocked => {
                Ok(self.get(client, name)?.need_names(shown.id))
            }
            _ => Ok(Vec::new()),
        }
    }
}

/// The answer message of `agent` answering `event` (as the service shows
/// it) at `now`, bound to the event's content digest as the service sent
/// it, with a fresh nonce: what `answer-message` prints and `--sign` signs.
pub fn answer_message(
    event: &t_minus::output::Event,
    agent: &t_minus::AgentId,
    answer: t_minus::trust::Answer,
    now: chrono::DateTime<chrono::Utc>,
) -> t_minus::Result<t_minus::trust::AnswerMessage> {
    let digest = event
        .content_digest
        .parse::<t_minus::trust::ContentDigest>()?;
    Ok(t_minus::trust::AnswerMessage::from_parts(
        event.id,
        digest,
        agent.clone(),
        answer,
        now,
        uuid::Uuid::new_v4(),
    )?)
}

/// The key set in force for event `id`, as the service shows it
/// (`GET /v1/events/{id}/signers`); `None` when its answers need no
/// signature.
pub fn signers(
    client: &Client,
    id: uuid::Uuid,
) -> Result<Option<t_minus::trust::Signers>, super::error::CliError> {
    let path = format!("/v1/events/{id}/signers");
    let reply = client.get::<t_minus::output::EventSigners>(&path)?;
    let Some(text) = reply.value.allowed_signers else {
        return Ok(None);
    };
    let signers = t_minus::trust::Signers::parse_allowed_signers(&text, &path)
        .map_err(t_minus::TMinusError::from)?;
    Ok(Some(signers))
}

/// Posts a signed answer to `/v1/answers` (the signature authenticates it;
/// the token is sent too, and not needed). `message` was parsed as an
/// answer message, which is text.
pub fn submit(
    client: &Client,
    message: &[u8],
    signature: &str,
) -> Result<Reply<t_minus::output::Event>, ClientError> {
    let message = String::from_utf8_lossy(message);
    let body = serde_json::json!({ "message": message, "signature": signature });
    client.post_json("/v1/answers", &body)
}

/// The TLS settings: the public roots, or the certificates of `CA_VAR`.
fn tls_config() -> Result<ureq::tls::TlsConfig, ClientError> {
    let builder = ureq::tls::TlsConfig::builder();
    let Some(path) = std::env::var_os(CA_VAR).filter(|p| !p.is_empty()) else {
        return Ok(builder.build());
    };
    let name = std::path::Path::new(&path).display().to_string();
    let refused = |reason: String| ClientError::Refused {
        code: "t_minus::client::ca_cert",
        message: format!("cannot use {CA_VAR}={name}: {reason}"),
        help: format!("point {CA_VAR} at a PEM file of the certificates to trust, or unset it"),
    };
    let pem = std::fs::read(&path).map_err(|e| refused(e.to_string()))?;
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(refused("it holds no PEM certificate".into()));
    }
    Ok(builder
        .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
        .build())
}

/// The `{"error": {code, message, help}}` of an error reply (its
/// `problems` stay in the raw reply).
fn error_body(json: &serde_json::Value) -> Option<ErrorBody> {
    let e = json.get("error")?;
    let text = |key: &str| e.get(key).and_then(|v| v.as_str()).map(str::to_string);
    Some(ErrorBody {
        code: text("code")?,
        message: text("message").unwrap_or_default(),
        help: text("help"),
        problems: Vec::new(),
    })
}

/// `segment` percent-encoded for a URL path (`release/deploy` →
/// `release%2Fdeploy`).
pub fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_sent_events_are_read_with_their_ids() {
        let text =
            ": keep-alive\n\nid: 7\nevent: fired\ndata: {\"a\":\ndata: 1}\n\ndata: x\r\n\r\n";
        let mut reader = std::io::BufReader::new(text.as_bytes());
        assert_eq!(read_item(&mut reader).unwrap(), Some(StreamItem::Comment));
        assert_eq!(
            read_item(&mut reader).unwrap(),
            Some(StreamItem::Event {
                id: Some("7".into()),
                name: "fired".into(),
                data: "{\"a\":\n1}".into()
            })
        );
        assert_eq!(
            read_item(&mut reader).unwrap(),
            Some(StreamItem::Event {
                id: None,
                name: "message".into(),
                data: "x".into()
            })
        );
        assert_eq!(read_item(&mut reader).unwrap(), None);
    }

    #[test]
    fn refs_are_encoded_as_one_segment() {
        assert_eq!(encode("release-v2/deploy"), "release-v2%2Fdeploy");
        assert_eq!(encode("a b?#"), "a%20b%3F%23");
        assert_eq!(encode("e283"), "e283");
    }

    #[test]
    fn service_urls_are_told_from_stores() {
        assert!(is_service_url("http://127.0.0.1:8470"));
        assert!(is_service_url("HTTPS://tminus.example.com"));
        assert!(!is_service_url("postgres://db/t"));
        assert!(!is_service_url("tminus.db"));
    }

    #[test]
    fn an_error_reply_keeps_its_code() {
        let json = serde_json::json!({"error": {"code": "t_minus::auth::other_agent",
            "message": "no", "help": null}});
        let body = error_body(&json).unwrap();
        assert_eq!(body.code, "t_minus::auth::other_agent");
        assert!(error_body(&serde_json::json!({"x": 1})).is_none());
    }
}
