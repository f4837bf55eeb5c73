//! The answer message: the canonical text an agent signs to confirm, defer,
//! decline or cancel an event.
//!
//! It is UTF-8 text of `KEY: VALUE` lines, each ended by a single `\n` (no
//! carriage returns, no blank lines, nothing after the last line, no value
//! containing a newline), after a header line naming the version. Version 2
//! (what t-minus writes) has these fields, in exactly this order; the
//! optional ones are left out when absent:
//!
//! ```text
//! t-minus answer v2
//! event: 6f1c0e2a-5b7d-4c1e-9a3f-2d8e4b6a7c10
//! digest: sha256:<64 lowercase hex digits>
//! agent: alice
//! on-behalf-of: bob                          (optional)
//! answer: confirm
//! reason: "…"                                (optional)
//! break-glass: "…"                           (optional)
//! time: 2026-11-28T02:34:03.123Z
//! nonce: 0b6f7a52-3c1d-4e8f-9a2b-7c5d4e3f2a1b
//! passkey-credential: <base64url>            (optional, the three together)
//! passkey-origin: https://example.com
//! passkey-rp-id: example.com
//! ```
//!
//! - `event`: the event id, a lowercase hyphenated UUID.
//! - `digest`: the event's [content digest](crate::trust::digest) when the
//!   answer was made.
//! - `agent`: the agent who answers and signs (never contains whitespace).
//! - `on-behalf-of`: the agent whose answer this is, when `agent` answers for
//!   another (delegation); never the same as `agent`.
//! - `answer`: `confirm`, `defer DURATION` (the duration as t-minus formats
//!   it, e.g. `defer 1h 30m`), `decline` or `cancel` (cancel the event).
//! - `reason`: why, as a JSON string (so any text fits on one line); only
//!   after `decline` or `cancel`.
//! - `break-glass`: present only on a break-glass answer, the reason for
//!   breaking the glass as a non-empty JSON string.
//! - `time`: when the answer was made, RFC 3339 in UTC with exactly three
//!   fractional digits and `Z`.
//! - `nonce`: a random UUID v4, lowercase hyphenated, so that no two answers
//!   are the same message.
//! - `passkey-credential`, `passkey-origin`, `passkey-rp-id`: present only on
//!   an answer signed by a passkey (WebAuthn): the credential id (base64url,
//!   no padding), the origin (`https://HOST[:PORT]`, or
//!   `http://localhost[:PORT]`) and the relying party id (a lowercase domain
//!   that is the origin's host or a parent of it).
//!
//! Version 1 (`t-minus answer v1`) has only `event`, `digest`, `agent`,
//! `answer` (`confirm`, `defer` or `decline`), `reason` (after `decline`),
//! `time` and `nonce`, in that order; it is still read.
//!
//! Parsing is strict: an unknown key, a repeated key, a key out of order or
//! a version 2 field in a version 1 message is refused with its own error,
//! and a message is accepted only if rendering what was read gives back
//! exactly the same bytes, so every answer has one signed form.

use std::fmt;

use chrono::{DateTime, Datelike, Duration, SecondsFormat, Utc};
use uuid::Uuid;

use crate::agent::AgentId;
use crate::duration::{format_duration, parse_duration, MAX_DURATION_DAYS};
use crate::event::TMinusEvent;
use crate::trust::digest::{content_digest, ContentDigest};
use crate::trust::error::TrustError;

/// The first line of a version 2 message, what t-minus writes.
pub const HEADER: &str = "t-minus answer v2";

/// The first line of a version 1 message, still read.
pub const HEADER_V1: &str = "t-minus answer v1";

/// The version of an answer message's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageVersion {
    /// `t-minus answer v1`: confirm, defer or decline by the agent itself.
    V1,
    /// `t-minus answer v2`: adds cancel, delegation, break-glass and
    /// passkey fields.
    V2,
}

impl MessageVersion {
    /// The header line of this version.
    pub fn header(self) -> &'static str {
        match self {
            MessageVersion::V1 => HEADER_V1,
            MessageVersion::V2 => HEADER,
        }
    }
}

/// The keys of the fields, in their order; the `bool` says whether version 1
/// has the field.
const FIELDS: [(&str, bool); 12] = [
    ("event", true),
    ("digest", true),
    ("agent", true),
    ("on-behalf-of", false),
    ("answer", true),
    ("reason", true),
    ("break-glass", false),
    ("time", true),
    ("nonce", true),
    ("passkey-credential", false),
    ("passkey-origin", false),
    ("passkey-rp-id", false),
];

/// What the agent answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Confirm the event.
    Confirm,
    /// Defer the event by this long.
    Defer(Duration),
    /// Decline the event, optionally saying why.
    Decline {
        /// Why, if given.
        reason: Option<String>,
    },
    /// Cancel the event (version 2 only), optionally saying why.
    Cancel {
        /// Why, if given.
        reason: Option<String>,
    },
}

impl Answer {
    /// The reason given with a decline or a cancel.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Answer::Decline { reason } | Answer::Cancel { reason } => reason.as_deref(),
            Answer::Confirm | Answer::Defer(_) => None,
        }
    }
}

impl fmt::Display for Answer {
    /// The `answer:` value: `confirm`, `defer 1h 30m`, `decline`, `cancel`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Confirm => f.write_str("confirm"),
            Answer::Defer(by) => write!(f, "defer {}", format_duration(*by)),
            Answer::Decline { .. } => f.write_str("decline"),
            Answer::Cancel { .. } => f.write_str("cancel"),
        }
    }
}

/// The passkey (WebAuthn credential) that signs an answer, as the message
/// names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passkey {
    /// The credential id, base64url without padding.
    pub credential: String,
    /// The origin the assertion was made for: `https://HOST[:PORT]` (or
    /// `http://localhost[:PORT]`).
    pub origin: String,
    /// The relying party id: the origin's host or a parent domain of it.
    pub rp_id: String,
}

/// A canonical answer message. Construct it with [`AnswerMessage::new`] (for
/// an event at hand) or [`AnswerMessage::from_parts`] (both version 2), add
/// the optional fields with [`AnswerMessage::on_behalf_of`],
/// [`AnswerMessage::break_glass`] and [`AnswerMessage::passkey`], render it
/// with [`AnswerMessage::to_bytes`], read it back with
/// [`AnswerMessage::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerMessage {
    version: MessageVersion,
    event: Uuid,
    digest: ContentDigest,
    agent: AgentId,
    on_behalf_of: Option<AgentId>,
    answer: Answer,
    break_glass: Option<String>,
    time: DateTime<Utc>,
    nonce: Uuid,
    passkey: Option<Passkey>,
}

impl AnswerMessage {
    /// The version 2 message for `agent` answering `event` at `now`, bound to
    /// the event's current content digest, with a fresh random nonce. The
    /// time is truncated to milliseconds.
    pub fn new(
        event: &TMinusEvent,
        agent: AgentId,
        answer: Answer,
        now: DateTime<Utc>,
    ) -> Result<Self, TrustError> {
        Self::from_parts(
            event.id,
            content_digest(event),
            agent,
            answer,
            now,
            Uuid::new_v4(),
        )
    }

    /// A version 2 message from its parts, checked so that it renders
    /// canonically: the agent id must be valid, a deferral within t-minus's
    /// duration limit, the time within years 0000–9999, the nonce a UUID v4.
    /// The time is truncated to milliseconds.
    pub fn from_parts(
        event: Uuid,
        digest: ContentDigest,
        agent: AgentId,
        answer: Answer,
        time: DateTime<Utc>,
        nonce: Uuid,
    ) -> Result<Self, TrustError> {
        if let Err(err) = agent.validate() {
            return Err(at(4, err.to_string()));
        }
        if let Answer::Defer(by) = answer {
            check_deferral(by).map_err(|reason| at(5, reason))?;
        }
        if !(0..=9999).contains(&time.year()) {
            return Err(at(6, "the time must be within the years 0000-9999".into()));
        }
        if nonce.get_version_num() != 4 {
            return Err(at(7, "the nonce must be a UUID v4".into()));
        }
        let millis = time.timestamp_millis();
        let time = DateTime::from_timestamp_millis(millis).unwrap_or(time);
        Ok(AnswerMessage {
            version: MessageVersion::V2,
            event,
            digest,
            agent,
            on_behalf_of: None,
            answer,
            break_glass: None,
            time,
            nonce,
            passkey: None,
        })
    }

    /// The same message in format `version`. Version 1 cannot hold a cancel
    /// or any of the fields version 2 added.
    pub fn in_version(mut self, version: MessageVersion) -> Result<Self, TrustError> {
        if version == MessageVersion::V1 {
            let v2_only = if matches!(self.answer, Answer::Cancel { .. }) {
                Some("the answer `cancel`")
            } else if self.on_behalf_of.is_some() {
                Some("the field `on-behalf-of`")
            } else if self.break_glass.is_some() {
                Some("the field `break-glass`")
            } else if self.passkey.is_some() {
                Some("the passkey fields")
            } else {
                None
            };
            if let Some(what) = v2_only {
                return Err(TrustError::MessageVersion {
                    line: 1,
                    what: what.into(),
                });
            }
        }
        self.version = version;
        Ok(self)
    }

    /// The same message answered by `self.agent()` on behalf of `principal`
    /// (version 2). The principal must be a valid agent id other than the
    /// answering agent.
    pub fn on_behalf_of(mut self, principal: AgentId) -> Result<Self, TrustError> {
        check_principal(&self.agent, &principal).map_err(|reason| at(5, reason))?;
        self.require_v2("the field `on-behalf-of`")?;
        self.on_behalf_of = Some(principal);
        Ok(self)
    }

    /// The same message as a break-glass answer (version 2), `reason` saying
    /// why; the reason must not be empty.
    pub fn break_glass(mut self, reason: String) -> Result<Self, TrustError> {
        if reason.is_empty() {
            return Err(at(
                self.line_of("break-glass"),
                "a break-glass answer must say why".into(),
            ));
        }
        self.require_v2("the field `break-glass`")?;
        self.break_glass = Some(reason);
        Ok(self)
    }

    /// The same message signed by `passkey` (version 2); its credential id,
    /// origin and relying party id are checked.
    pub fn passkey(mut self, passkey: Passkey) -> Result<Self, TrustError> {
        self.require_v2("the passkey fields")?;
        let base = self.line_of("passkey-credential");
        check_credential(&passkey.credential).map_err(|r| at(base, r))?;
        let host = check_origin(&passkey.origin).map_err(|r| at(base + 1, r))?;
        check_rp_id(&passkey.rp_id, host).map_err(|r| at(base + 2, r))?;
        self.passkey = Some(passkey);
        Ok(self)
    }

    fn require_v2(&self, what: &str) -> Result<(), TrustError> {
        match self.version {
            MessageVersion::V2 => Ok(()),
            MessageVersion::V1 => Err(TrustError::MessageVersion {
                line: 1,
                what: what.into(),
            }),
        }
    }

    /// The 1-based line `key` has (or would have) in the rendered message.
    fn line_of(&self, key: &str) -> usize {
        let mut line = 1;
        for (name, value) in self.fields() {
            if name == key {
                return line + 1;
            }
            if value.is_some() {
                line += 1;
            }
        }
        line + 1
    }

    /// The format's version.
    pub fn version(&self) -> MessageVersion {
        self.version
    }

    /// The event answered.
    pub fn event(&self) -> Uuid {
        self.event
    }

    /// The content digest the answer is bound to.
    pub fn digest(&self) -> ContentDigest {
        self.digest
    }

    /// The answering (signing) agent.
    pub fn agent(&self) -> &AgentId {
        &self.agent
    }

    /// The agent on whose behalf the answer is given, for a delegated
    /// answer.
    pub fn principal(&self) -> Option<&AgentId> {
        self.on_behalf_of.as_ref()
    }

    /// The answer.
    pub fn answer(&self) -> &Answer {
        &self.answer
    }

    /// The break-glass reason, for a break-glass answer.
    pub fn break_glass_reason(&self) -> Option<&str> {
        self.break_glass.as_deref()
    }

    /// When the answer was made (millisecond precision).
    pub fn time(&self) -> DateTime<Utc> {
        self.time
    }

    /// The random nonce.
    pub fn nonce(&self) -> Uuid {
        self.nonce
    }

    /// The passkey that signs the answer, for a passkey-signed answer.
    pub fn passkey_fields(&self) -> Option<&Passkey> {
        self.passkey.as_ref()
    }

    /// Every field in the format's order with its value (`None`: absent).
    fn fields(&self) -> [(&'static str, Option<String>); 12] {
        let passkey = self.passkey.as_ref();
        [
            ("event", Some(self.event.hyphenated().to_string())),
            ("digest", Some(self.digest.to_string())),
            ("agent", Some(self.agent.as_str().to_string())),
            (
                "on-behalf-of",
                self.on_behalf_of.as_ref().map(|a| a.as_str().to_string()),
            ),
            ("answer", Some(self.answer.to_string())),
            ("reason", self.answer.reason().map(json_string)),
            ("break-glass", self.break_glass.as_deref().map(json_string)),
            (
                "time",
                Some(self.time.to_rfc3339_opts(SecondsFormat::Millis, true)),
            ),
            ("nonce", Some(self.nonce.hyphenated().to_string())),
            ("passkey-credential", passkey.map(|p| p.credential.clone())),
            ("passkey-origin", passkey.map(|p| p.origin.clone())),
            ("passkey-rp-id", passkey.map(|p| p.rp_id.clone())),
        ]
    }

    /// The canonical text (see the module docs).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push_str(self.version.header());
        out.push('\n');
        for (key, value) in self.fields() {
            if let Some(value) = value {
                out.push_str(key);
                out.push_str(": ");
                out.push_str(&value);
                out.push('\n');
            }
        }
        out
    }

    /// The canonical text as the bytes to sign.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.render().into_bytes()
    }

    /// Reads a message of either version, accepting only its canonical
    /// form.
    pub fn parse(bytes: &[u8]) -> Result<Self, TrustError> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            at(line, "it is not valid UTF-8".into())
        })?;
        let lines = split_lines(text)?;
        let version = match lines.first().copied() {
            Some(HEADER) => MessageVersion::V2,
            Some(HEADER_V1) => MessageVersion::V1,
            _ => {
                return Err(at(
                    1,
                    format!("the first line must be `{HEADER}` (or `{HEADER_V1}`)"),
                ))
            }
        };
        let fields = read_fields(version, &lines[1..])?;
        let get = |key: &str| fields.iter().find(|f| f.key == key);
        let require = |key: &str| -> Result<&Field<'_>, TrustError> {
            get(key).ok_or_else(|| missing(key, &fields, lines.len()))
        };

        let field = require("event")?;
        let event = parse_uuid(field.line, field.value, "event id")?;

        let field = require("digest")?;
        let digest = match field.value.strip_prefix("sha256:") {
            Some(_) => field
                .value
                .parse::<ContentDigest>()
                .map_err(|e| at(field.line, e.to_string()))?,
            None => {
                return Err(at(
                    field.line,
                    "the digest must start with `sha256:`".into(),
                ))
            }
        };

        let field = require("agent")?;
        let agent = AgentId::parse(field.value).map_err(|e| at(field.line, e.to_string()))?;

        let on_behalf_of = match get("on-behalf-of") {
            Some(field) => {
                let principal =
                    AgentId::parse(field.value).map_err(|e| at(field.line, e.to_string()))?;
                check_principal(&agent, &principal).map_err(|r| at(field.line, r))?;
                Some(principal)
            }
            None => None,
        };

        let field = require("answer")?;
        let mut answer = parse_answer(field.line, field.value, version)?;

        if let Some(field) = get("reason") {
            let reason = parse_json_string(field.line, field.value, "reason")?;
            answer = match answer {
                Answer::Decline { .. } => Answer::Decline {
                    reason: Some(reason),
                },
                Answer::Cancel { .. } => Answer::Cancel {
                    reason: Some(reason),
                },
                _ => {
                    return Err(at(
                        field.line,
                        "a `reason:` line follows only `answer: decline` or `answer: cancel`"
                            .into(),
                    ))
                }
            };
        }

        let break_glass = match get("break-glass") {
            Some(field) => {
                let reason = parse_json_string(field.line, field.value, "break-glass reason")?;
                if reason.is_empty() {
                    return Err(at(field.line, "a break-glass answer must say why".into()));
                }
                Some(reason)
            }
            None => None,
        };

        let field = require("time")?;
        let time = DateTime::parse_from_rfc3339(field.value)
            .map_err(|e| at(field.line, format!("the time is not RFC 3339: {e}")))?
            .with_timezone(&Utc);
        let canonical = time.to_rfc3339_opts(SecondsFormat::Millis, true);
        if canonical != field.value {
            return Err(at(
                field.line,
                format!("write the time in UTC with milliseconds: `{canonical}`"),
            ));
        }

        let field = require("nonce")?;
        let nonce = parse_uuid(field.line, field.value, "nonce")?;
        if nonce.get_version_num() != 4 {
            return Err(at(field.line, "the nonce must be a UUID v4".into()));
        }

        let passkey = match (
            get("passkey-credential"),
            get("passkey-origin"),
            get("passkey-rp-id"),
        ) {
            (None, None, None) => None,
            (Some(credential), Some(origin), Some(rp_id)) => {
                check_credential(credential.value).map_err(|r| at(credential.line, r))?;
                let host = check_origin(origin.value).map_err(|r| at(origin.line, r))?;
                check_rp_id(rp_id.value, host).map_err(|r| at(rp_id.line, r))?;
                Some(Passkey {
                    credential: credential.value.to_string(),
                    origin: origin.value.to_string(),
                    rp_id: rp_id.value.to_string(),
                })
            }
            (credential, origin, rp_id) => {
                let line = [credential, origin, rp_id]
                    .into_iter()
                    .flatten()
                    .map(|f| f.line)
                    .min()
                    .unwrap_or(1);
                return Err(at(
                    line,
                    "`passkey-credential:`, `passkey-origin:` and `passkey-rp-id:` come together"
                        .into(),
                ));
            }
        };

        let mut message = AnswerMessage::from_parts(event, digest, agent, answer, time, nonce)?;
        message.version = version;
        message.on_behalf_of = on_behalf_of;
        message.break_glass = break_glass;
        message.passkey = passkey;
        // Every field was checked against its canonical form above; this
        // guards the whole against any case those checks missed.
        if message.render().as_bytes() != bytes {
            return Err(at(1, "the message is not in canonical form".into()));
        }
        Ok(message)
    }
}

impl fmt::Display for AnswerMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// One `KEY: VALUE` line of a message.
struct Field<'a> {
    line: usize,
    key: &'static str,
    value: &'a str,
}

/// The lines of `text` (without their `\n`), refusing carriage returns and a
/// missing final newline.
fn split_lines(text: &str) -> Result<Vec<&str>, TrustError> {
    if let Some(pos) = text.find('\r') {
        let line = 1 + text[..pos].matches('\n').count();
        return Err(at(
            line,
            "carriage returns are not allowed; end lines with `\\n` only".into(),
        ));
    }
    let Some(body) = text.strip_suffix('\n') else {
        return Err(at(
            text.matches('\n').count() + 1,
            "the message must end with one newline".into(),
        ));
    };
    Ok(body.split('\n').collect())
}

/// Reads the field lines after the header (`lines`, the first of which is
/// line 2): each must be `KEY: VALUE` with a key of `version`, at most once,
/// in the format's order.
fn read_fields<'a>(
    version: MessageVersion,
    lines: &[&'a str],
) -> Result<Vec<Field<'a>>, TrustError> {
    let mut fields: Vec<Field<'a>> = Vec::with_capacity(lines.len());
    let mut last: Option<usize> = None;
    for (i, text) in lines.iter().enumerate() {
        let line = i + 2;
        let Some((key, value)) = text.split_once(": ") else {
            return Err(at(
                line,
                "every line after the first is `KEY: VALUE`; blank lines are not allowed".into(),
            ));
        };
        let Some(position) = FIELDS.iter().position(|(name, _)| *name == key) else {
            return Err(TrustError::MessageUnknownField {
                line,
                key: shorten(key),
                version: version.header(),
            });
        };
        let (name, in_v1) = FIELDS[position];
        if version == MessageVersion::V1 && !in_v1 {
            return Err(TrustError::MessageVersion {
                line,
                what: format!("the field `{name}`"),
            });
        }
        if let Some(first) = fields.iter().find(|f| f.key == name) {
            return Err(TrustError::MessageRepeatedField {
                line,
                key: name,
                first: first.line,
            });
        }
        if let Some(last) = last.filter(|&last| last > position) {
            return Err(TrustError::MessageFieldOrder {
                line,
                key: name,
                after: FIELDS[last].0,
            });
        }
        last = Some(position);
        fields.push(Field {
            line,
            key: name,
            value,
        });
    }
    Ok(fields)
}

/// The error for a required field that is absent: at the line where it
/// belongs (that of the next field present, or after the last line).
fn missing(key: &str, fields: &[Field<'_>], lines: usize) -> TrustError {
    let position = FIELDS.iter().position(|(name, _)| *name == key);
    let next = fields
        .iter()
        .find(|f| FIELDS.iter().position(|(name, _)| *name == f.key) > position);
    match next {
        Some(field) => at(
            field.line,
            format!("expected the line `{key}: …` before this one"),
        ),
        None => at(
            lines + 1,
            format!("the message ends before the `{key}:` line"),
        ),
    }
}

fn parse_answer(line: usize, value: &str, version: MessageVersion) -> Result<Answer, TrustError> {
    Ok(match value {
        "confirm" => Answer::Confirm,
        "decline" => Answer::Decline { reason: None },
        "cancel" if version == MessageVersion::V2 => Answer::Cancel { reason: None },
        "cancel" => {
            return Err(TrustError::MessageVersion {
                line,
                what: "the answer `cancel`".into(),
            })
        }
        other => match other.strip_prefix("defer ") {
            Some(text) => {
                let by = parse_duration(text).map_err(|e| at(line, e.to_string()))?;
                check_deferral(by).map_err(|reason| at(line, reason))?;
                let canonical = format_duration(by);
                if canonical != text {
                    return Err(at(
                        line,
                        format!("write the duration as `{canonical}`, not `{text}`"),
                    ));
                }
                Answer::Defer(by)
            }
            None => {
                let answers = match version {
                    MessageVersion::V1 => "`confirm`, `defer DURATION` or `decline`",
                    MessageVersion::V2 => "`confirm`, `defer DURATION`, `decline` or `cancel`",
                };
                return Err(at(
                    line,
                    format!("`{}` is not an answer: write {answers}", shorten(other)),
                ));
            }
        },
    })
}

fn parse_json_string(line: usize, value: &str, what: &str) -> Result<String, TrustError> {
    let text: String = serde_json::from_str(value)
        .map_err(|_| at(line, format!("the {what} must be one JSON string")))?;
    if json_string(&text) != value {
        return Err(at(
            line,
            format!("write the {what} as {}", json_string(&text)),
        ));
    }
    Ok(text)
}

fn at(line: usize, reason: String) -> TrustError {
    TrustError::InvalidMessage { line, reason }
}

fn check_principal(agent: &AgentId, principal: &AgentId) -> Result<(), String> {
    principal.validate().map_err(|e| e.to_string())?;
    if principal == agent {
        return Err("`on-behalf-of` names another agent than `agent`".into());
    }
    Ok(())
}

/// The longest credential id WebAuthn allows is 1023 bytes: 1364 base64url
/// characters.
const MAX_CREDENTIAL_CHARS: usize = 1364;

fn check_credential(credential: &str) -> Result<(), String> {
    let valid = !credential.is_empty()
        && credential.len() <= MAX_CREDENTIAL_CHARS
        && credential.len() % 4 != 1
        && credential
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err("the credential id must be base64url without padding (A-Z a-z 0-9 - _), at most 1023 bytes".into())
    }
}

/// Checks an origin and returns its host.
fn check_origin(origin: &str) -> Result<&str, String> {
    let bad = || {
        format!(
            "the origin must be `https://HOST[:PORT]` or `http://localhost[:PORT]` in lowercase, without a path: `{}`",
            shorten(origin)
        )
    };
    let (scheme, rest) = origin.split_once("://").ok_or_else(bad)?;
    let (host, port) = match rest.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    };
    if let Some(port) = port {
        let canonical = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .map(|p| p.to_string());
        if canonical.as_deref() != Some(port) {
            return Err(bad());
        }
    }
    check_domain(host).map_err(|_| bad())?;
    match scheme {
        "https" => Ok(host),
        "http" if host == "localhost" => Ok(host),
        _ => Err(bad()),
    }
}

fn check_rp_id<'a>(rp_id: &'a str, host: &str) -> Result<&'a str, String> {
    check_domain(rp_id)?;
    let covers = host == rp_id
        || host
            .strip_suffix(rp_id)
            .is_some_and(|prefix| prefix.ends_with('.'));
    if covers {
        Ok(rp_id)
    } else {
        Err(format!(
            "the relying party id `{rp_id}` must be the origin's host `{host}` or a parent domain of it"
        ))
    }
}

fn check_domain(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a lowercase domain name",
            shorten(name)
        ))
    }
}

fn check_deferral(by: Duration) -> Result<(), String> {
    if by < Duration::zero() {
        return Err("a deferral cannot be negative".into());
    }
    if by > Duration::days(MAX_DURATION_DAYS) {
        return Err(format!(
            "a deferral cannot be longer than {MAX_DURATION_DAYS} days"
        ));
    }
    Ok(())
}

fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

fn shorten(text: &str) -> String {
    let short: String = text.chars().take(40).collect();
    if short.len() < text.len() {
        format!("{short}…")
    } else {
        short
    }
}

fn parse_uuid(line: usize, value: &str, what: &str) -> Result<Uuid, TrustError> {
    let uuid = Uuid::try_parse(value).map_err(|_| {
        at(
            line,
            format!("the {what} is not a UUID: `{}`", shorten(value)),
        )
    })?;
    let canonical = uuid.hyphenated().to_string();
    if canonical != value {
        return Err(at(
            line,
            format!("write the {what} as lowercase hyphenated `{canonical}`"),
        ));
    }
    Ok(uuid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(answer: Answer) -> AnswerMessage {
        AnswerMessage::from_parts(
            Uuid::parse_str("6f1c0e2a-5b7d-4c1e-9a3f-2d8e4b6a7c10").unwrap(),
            ContentDigest::from_bytes([0xab; 32]),
            AgentId("alice".into()),
            answer,
            DateTime::parse_from_rfc3339("2026-11-28T02:34:03.123456Z")
                .unwrap()
                .with_timezone(&Utc),
            Uuid::parse_str("0b6f7a52-3c1d-4e8f-9a2b-7c5d4e3f2a1b").unwrap(),
        )
        .unwrap()
    }

    fn passkey() -> Passkey {
        Passkey {
            credential: "AAECAwQFBgcICQ".into(),
            origin: "https://approve.example.com".into(),
            rp_id: "example.com".into(),
        }
    }

    #[test]
    fn renders_the_documented_text() {
        let message = sample(Answer::Decline {
            reason: Some("not \"ready\"\nyet".into()),
        });
        let body = format!(
            "event: 6f1c0e2a-5b7d-4c1e-9a3f-2d8e4b6a7c10\ndigest: sha256:{}\nagent: alice\nanswer: decline\nreason: \"not \\\"ready\\\"\\nyet\"\ntime: 2026-11-28T02:34:03.123Z\nnonce: 0b6f7a52-3c1d-4e8f-9a2b-7c5d4e3f2a1b\n",
            "ab".repeat(32)
        );
        assert_eq!(message.render(), format!("t-minus answer v2\n{body}"));
        assert_eq!(AnswerMessage::parse(&message.to_bytes()).unwrap(), message);
        let v1 = message.in_version(MessageVersion::V1).unwrap();
        assert_eq!(v1.render(), format!("t-minus answer v1\n{body}"));
        assert_eq!(AnswerMessage::parse(&v1.to_bytes()).unwrap(), v1);
    }

    #[test]
    fn renders_every_v2_field_in_order() {
        let message = sample(Answer::Cancel {
            reason: Some("rollback".into()),
        })
        .on_behalf_of(AgentId("bob".into()))
        .unwrap()
        .break_glass("pager: sev1".into())
        .unwrap()
        .passkey(passkey())
        .unwrap();
        let text = message.render();
        let keys: Vec<&str> = text
            .lines()
            .skip(1)
            .map(|l| l.split_once(": ").unwrap().0)
            .collect();
        let all: Vec<&str> = FIELDS.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, all);
        assert!(text.contains("\non-behalf-of: bob\nanswer: cancel\nreason: \"rollback\"\nbreak-glass: \"pager: sev1\"\n"));
        assert!(text.ends_with("passkey-credential: AAECAwQFBgcICQ\npasskey-origin: https://approve.example.com\npasskey-rp-id: example.com\n"));
        let parsed = AnswerMessage::parse(text.as_bytes()).unwrap();
        assert_eq!(parsed, message);
        assert_eq!(parsed.principal(), Some(&AgentId("bob".into())));
        assert_eq!(parsed.break_glass_reason(), Some("pager: sev1"));
        assert_eq!(parsed.passkey_fields(), Some(&passkey()));
        assert!(message.in_version(MessageVersion::V1).is_err());
    }

    #[test]
    fn strict_parsing_names_the_kind_of_problem() {
        let confirm = sample(Answer::Confirm).render();
        let unknown = confirm.replacen("time: ", "extra: 1\ntime: ", 1);
        assert!(matches!(
            AnswerMessage::parse(unknown.as_bytes()),
            Err(TrustError::MessageUnknownField { line: 6, .. })
        ));
        let repeated = confirm.replacen("agent: alice\n", "agent: alice\nagent: alice\n", 1);
        assert!(matches!(
            AnswerMessage::parse(repeated.as_bytes()),
            Err(TrustError::MessageRepeatedField {
                line: 5,
                key: "agent",
                first: 4
            })
        ));
        let swapped = confirm.replacen(
            "agent: alice\nanswer: confirm\n",
            "answer: confirm\nagent: alice\n",
            1,
        );
        assert!(matches!(
            AnswerMessage::parse(swapped.as_bytes()),
            Err(TrustError::MessageFieldOrder {
                line: 5,
                key: "agent",
                after: "answer"
            })
        ));
        let v1 = confirm.replacen(HEADER, HEADER_V1, 1).replacen(
            "agent: alice\n",
            "agent: alice\non-behalf-of: bob\n",
            1,
        );
        assert!(matches!(
            AnswerMessage::parse(v1.as_bytes()),
            Err(TrustError::MessageVersion { line: 5, .. })
        ));
        let v1_cancel =
            confirm
                .replacen(HEADER, HEADER_V1, 1)
                .replacen("answer: confirm", "answer: cancel", 1);
        assert!(matches!(
            AnswerMessage::parse(v1_cancel.as_bytes()),
            Err(TrustError::MessageVersion { line: 5, .. })
        ));
        let self_delegated =
            confirm.replacen("agent: alice\n", "agent: alice\non-behalf-of: alice\n", 1);
        assert!(matches!(
            AnswerMessage::parse(self_delegated.as_bytes()),
            Err(TrustError::InvalidMessage { line: 5, .. })
        ));
        let empty_glass = confirm.replacen("time: ", "break-glass: \"\"\ntime: ", 1);
        assert!(matches!(
            AnswerMessage::parse(empty_glass.as_bytes()),
            Err(TrustError::InvalidMessage { line: 6, .. })
        ));
        let half_passkey = format!("{confirm}passkey-credential: AAEC\n");
        assert!(matches!(
            AnswerMessage::parse(half_passkey.as_bytes()),
            Err(TrustError::InvalidMessage { line: 8, .. })
        ));
    }

    #[test]
    fn passkey_fields_are_checked() {
        let with = |credential: &str, origin: &str, rp_id: &str| {
            sample(Answer::Confirm).passkey(Passkey {
                credential: credential.into(),
                origin: origin.into(),
                rp_id: rp_id.into(),
            })
        };
        assert!(with("AAEC", "https://example.com", "example.com").is_ok());
        assert!(with("AAEC", "https://a.example.com:8443", "example.com").is_ok());
        assert!(with("AAEC", "http://localhost:3000", "localhost").is_ok());
        let line = |r: Result<AnswerMessage, TrustError>| match r {
            Err(TrustError::InvalidMessage { line, .. }) => line,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert_eq!(line(with("AA==", "https://example.com", "example.com")), 8);
        assert_eq!(line(with("", "https://example.com", "example.com")), 8);
        assert_eq!(line(with("AAEC", "http://example.com", "example.com")), 9);
        assert_eq!(line(with("AAEC", "https://example.com/", "example.com")), 9);
        assert_eq!(line(with("AAEC", "https://Example.com", "example.com")), 9);
        assert_eq!(
            line(with("AAEC", "https://example.com:080", "example.com")),
            9
        );
        assert_eq!(line(with("AAEC", "https://example.com", "other.com")), 10);
        assert_eq!(
            line(with("AAEC", "https://badexample.com", "example.com")),
            10
        );
    }

    #[test]
    fn defer_uses_the_canonical_duration() {
        let message = sample(Answer::Defer(Duration::seconds(5400)));
        assert!(message.render().contains("\nanswer: defer 1h 30m\n"));
        let loose = message.render().replace("defer 1h 30m", "defer 90m");
        let err = AnswerMessage::parse(loose.as_bytes()).unwrap_err();
        assert_eq!(
            err,
            TrustError::InvalidMessage {
                line: 5,
                reason: "write the duration as `1h 30m`, not `90m`".into()
            }
        );
    }
}
