//! The answer message: the canonical text an agent signs to confirm, defer or
//! decline an event.
//!
//! It is UTF-8 text of `KEY: VALUE` lines, each ended by a single `\n` (no
//! carriage returns, no blank lines, nothing after the last line), in exactly
//! this order:
//!
//! ```text
//! t-minus answer v1
//! event: 6f1c0e2a-5b7d-4c1e-9a3f-2d8e4b6a7c10
//! digest: sha256:<64 lowercase hex digits>
//! agent: alice
//! answer: confirm
//! time: 2026-11-28T02:34:03.123Z
//! nonce: 0b6f7a52-3c1d-4e8f-9a2b-7c5d4e3f2a1b
//! ```
//!
//! - `event`: the event id, a lowercase hyphenated UUID.
//! - `digest`: the event's [content digest](crate::trust::digest) when the
//!   answer was made.
//! - `agent`: the answering agent's id (never contains whitespace).
//! - `answer`: `confirm`, `defer DURATION` (the duration as t-minus formats
//!   it, e.g. `defer 1h 30m`), or `decline`. A decline with a reason is
//!   followed by a line `reason: "…"`, the reason as a JSON string (so it may
//!   hold any text, newlines included, on one line).
//! - `time`: when the answer was made, RFC 3339 in UTC with exactly three
//!   fractional digits and `Z`.
//! - `nonce`: a random UUID v4, lowercase hyphenated, so that no two answers
//!   are the same message.
//!
//! Parsing is strict: a message is accepted only if rendering what was read
//! gives back exactly the same bytes, so every answer has one signed form.

use std::fmt;

use chrono::{DateTime, Datelike, Duration, SecondsFormat, Utc};
use uuid::Uuid;

use crate::agent::AgentId;
use crate::duration::{format_duration, parse_duration, MAX_DURATION_DAYS};
use crate::event::TMinusEvent;
use crate::trust::digest::{content_digest, ContentDigest};
use crate::trust::error::TrustError;

/// The first line, naming the format and its version.
pub const HEADER: &str = "t-minus answer v1";

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
}

impl fmt::Display for Answer {
    /// The `answer:` value: `confirm`, `defer 1h 30m`, `decline`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Confirm => f.write_str("confirm"),
            Answer::Defer(by) => write!(f, "defer {}", format_duration(*by)),
            Answer::Decline { .. } => f.write_str("decline"),
        }
    }
}

/// A canonical answer message. Construct it with [`AnswerMessage::new`] (for
/// an event at hand) or [`AnswerMessage::from_parts`], render it with
/// [`AnswerMessage::to_bytes`], read it back with [`AnswerMessage::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerMessage {
    event: Uuid,
    digest: ContentDigest,
    agent: AgentId,
    answer: Answer,
    time: DateTime<Utc>,
    nonce: Uuid,
}

impl AnswerMessage {
    /// The message for `agent` answering `event` at `now`, bound to the
    /// event's current content digest, with a fresh random nonce. The time is
    /// truncated to milliseconds.
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

    /// A message from its parts, checked so that it renders canonically: the
    /// agent id must be valid, a deferral within t-minus's duration limit, the
    /// time within years 0000–9999, the nonce a UUID v4. The time is truncated
    /// to milliseconds.
    pub fn from_parts(
        event: Uuid,
        digest: ContentDigest,
        agent: AgentId,
        answer: Answer,
        time: DateTime<Utc>,
        nonce: Uuid,
    ) -> Result<Self, TrustError> {
        if let Err(err) = agent.validate() {
            return Err(invalid(Line::Agent, err.to_string()));
        }
        if let Answer::Defer(by) = answer {
            check_deferral(by).map_err(|reason| invalid(Line::Answer, reason))?;
        }
        if !(0..=9999).contains(&time.year()) {
            return Err(invalid(
                Line::Time,
                "the time must be within the years 0000-9999".into(),
            ));
        }
        if nonce.get_version_num() != 4 {
            return Err(invalid(Line::Nonce, "the nonce must be a UUID v4".into()));
        }
        let millis = time.timestamp_millis();
        let time = DateTime::from_timestamp_millis(millis).unwrap_or(time);
        Ok(AnswerMessage {
            event,
            digest,
            agent,
            answer,
            time,
            nonce,
        })
    }

    /// The event answered.
    pub fn event(&self) -> Uuid {
        self.event
    }

    /// The content digest the answer is bound to.
    pub fn digest(&self) -> ContentDigest {
        self.digest
    }

    /// The answering agent.
    pub fn agent(&self) -> &AgentId {
        &self.agent
    }

    /// The answer.
    pub fn answer(&self) -> &Answer {
        &self.answer
    }

    /// When the answer was made (millisecond precision).
    pub fn time(&self) -> DateTime<Utc> {
        self.time
    }

    /// The random nonce.
    pub fn nonce(&self) -> Uuid {
        self.nonce
    }

    /// The canonical text (see the module docs).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push_str(HEADER);
        out.push('\n');
        push_line(&mut out, "event", &self.event.hyphenated().to_string());
        push_line(&mut out, "digest", &self.digest.to_string());
        push_line(&mut out, "agent", self.agent.as_str());
        push_line(&mut out, "answer", &self.answer.to_string());
        if let Answer::Decline {
            reason: Some(reason),
        } = &self.answer
        {
            push_line(&mut out, "reason", &json_string(reason));
        }
        push_line(
            &mut out,
            "time",
            &self.time.to_rfc3339_opts(SecondsFormat::Millis, true),
        );
        push_line(&mut out, "nonce", &self.nonce.hyphenated().to_string());
        out
    }

    /// The canonical text as the bytes to sign.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.render().into_bytes()
    }

    /// Reads a message, accepting only its canonical form.
    pub fn parse(bytes: &[u8]) -> Result<Self, TrustError> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            TrustError::InvalidMessage {
                line,
                reason: "it is not valid UTF-8".into(),
            }
        })?;
        let mut reader = Reader::new(text)?;

        let header = reader.next_line("the header")?;
        if header.1 != HEADER {
            return Err(TrustError::InvalidMessage {
                line: header.0,
                reason: format!("the first line must be `{HEADER}`"),
            });
        }

        let (line, value) = reader.field("event")?;
        let event = parse_uuid(line, value, "event id")?;

        let (line, value) = reader.field("digest")?;
        let digest = match value.strip_prefix("sha256:") {
            Some(_) => value
                .parse::<ContentDigest>()
                .map_err(|e| at(line, e.to_string()))?,
            None => return Err(at(line, "the digest must start with `sha256:`".into())),
        };

        let (line, value) = reader.field("agent")?;
        let agent = AgentId::parse(value).map_err(|e| at(line, e.to_string()))?;

        let (answer_line, value) = reader.field("answer")?;
        let mut answer = match value {
            "confirm" => Answer::Confirm,
            "decline" => Answer::Decline { reason: None },
            other => match other.strip_prefix("defer ") {
                Some(text) => {
                    let by = parse_duration(text).map_err(|e| at(answer_line, e.to_string()))?;
                    check_deferral(by).map_err(|reason| at(answer_line, reason))?;
                    let canonical = format_duration(by);
                    if canonical != text {
                        return Err(at(
                            answer_line,
                            format!("write the duration as `{canonical}`, not `{text}`"),
                        ));
                    }
                    Answer::Defer(by)
                }
                None => {
                    return Err(at(
                        answer_line,
                        format!(
                            "`{}` is not an answer: write `confirm`, `defer DURATION` or `decline`",
                            shorten(other)
                        ),
                    ))
                }
            },
        };

        if matches!(answer, Answer::Decline { .. }) && reader.peek_key() == Some("reason") {
            let (line, value) = reader.field("reason")?;
            let reason: String = serde_json::from_str(value)
                .map_err(|_| at(line, "the reason must be one JSON string".into()))?;
            if json_string(&reason) != value {
                return Err(at(
                    line,
                    format!("write the reason as {}", json_string(&reason)),
                ));
            }
            answer = Answer::Decline {
                reason: Some(reason),
            };
        }

        let (line, value) = reader.field("time")?;
        let time = DateTime::parse_from_rfc3339(value)
            .map_err(|e| at(line, format!("the time is not RFC 3339: {e}")))?
            .with_timezone(&Utc);
        let canonical = time.to_rfc3339_opts(SecondsFormat::Millis, true);
        if canonical != value {
            return Err(at(
                line,
                format!("write the time in UTC with milliseconds: `{canonical}`"),
            ));
        }

        let (line, value) = reader.field("nonce")?;
        let nonce = parse_uuid(line, value, "nonce")?;
        if nonce.get_version_num() != 4 {
            return Err(at(line, "the nonce must be a UUID v4".into()));
        }

        reader.finish()?;
        let message = AnswerMessage::from_parts(event, digest, agent, answer, time, nonce)?;
        // Every field was checked against its canonical form above; this
        // guards the whole against any case those checks missed.
        if message.render().as_bytes() != bytes {
            return Err(TrustError::InvalidMessage {
                line: 1,
                reason: "the message is not in canonical form".into(),
            });
        }
        Ok(message)
    }
}

impl fmt::Display for AnswerMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// The lines of the format, for errors raised while building a message.
#[derive(Clone, Copy)]
enum Line {
    Agent = 4,
    Answer = 5,
    Time = 6,
    Nonce = 7,
}

fn invalid(line: Line, reason: String) -> TrustError {
    TrustError::InvalidMessage {
        line: line as usize,
        reason,
    }
}

fn at(line: usize, reason: String) -> TrustError {
    TrustError::InvalidMessage { line, reason }
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

fn push_line(out: &mut String, key: &str, value: &str) {
    out.push_str(key);
    out.push_str(": ");
    out.push_str(value);
    out.push('\n');
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

/// Walks the lines of a message, keeping line numbers.
struct Reader<'a> {
    lines: std::iter::Peekable<std::iter::Enumerate<std::str::Split<'a, char>>>,
    count: usize,
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Result<Self, TrustError> {
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
        let count = body.split('\n').count();
        Ok(Reader {
            lines: body.split('\n').enumerate().peekable(),
            count,
        })
    }

    fn next_line(&mut self, expected: &str) -> Result<(usize, &'a str), TrustError> {
        match self.lines.next() {
            Some((i, line)) => Ok((i + 1, line)),
            None => Err(at(
                self.count + 1,
                format!("the message ends before {expected}"),
            )),
        }
    }

    fn peek_key(&mut self) -> Option<&'a str> {
        self.lines
            .peek()
            .and_then(|(_, line)| line.split_once(": ").map(|(key, _)| key))
    }

    fn field(&mut self, key: &str) -> Result<(usize, &'a str), TrustError> {
        let (line, text) = self.next_line(&format!("the `{key}:` line"))?;
        match text.split_once(": ") {
            Some((found, value)) if found == key => Ok((line, value)),
            _ => Err(at(line, format!("expected the line `{key}: …` here"))),
        }
    }

    fn finish(mut self) -> Result<(), TrustError> {
        match self.lines.next() {
            None => Ok(()),
            Some((i, _)) => Err(at(i + 1, "unexpected line after `nonce:`".into())),
        }
    }
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

    #[test]
    fn renders_the_documented_text() {
        let message = sample(Answer::Decline {
            reason: Some("not \"ready\"\nyet".into()),
        });
        assert_eq!(
            message.render(),
            format!(
                "t-minus answer v1\nevent: 6f1c0e2a-5b7d-4c1e-9a3f-2d8e4b6a7c10\ndigest: sha256:{}\nagent: alice\nanswer: decline\nreason: \"not \\\"ready\\\"\\nyet\"\ntime: 2026-11-28T02:34:03.123Z\nnonce: 0b6f7a52-3c1d-4e8f-9a2b-7c5d4e3f2a1b\n",
                "ab".repeat(32)
            )
        );
        assert_eq!(AnswerMessage::parse(&message.to_bytes()).unwrap(), message);
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
