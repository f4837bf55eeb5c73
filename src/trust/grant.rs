//! The signed delegation message: what an agent signs to let another answer
//! for it.
//!
//! ```text
//! t-minus delegation v1
//! from: alice
//! to: bob
//! campaign: 6f1c0e2a-5b7d-4c1e-9a3f-2d8e4b6a7c10    (optional)
//! until: 2026-11-29T00:00:00.000Z                   (optional)
//! time: 2026-11-28T09:00:00.000Z
//! nonce: 0b7e9f1c-2d3a-4b5c-8d6e-7f8091a2b3c4
//! ```
//!
//! Each line ends with `\n` (the last one too); the fields come in this
//! order, optional ones left out when absent; times are RFC 3339 in UTC
//! with milliseconds and `Z`, exactly as [`DelegationMessage::render`]
//! writes them: a message is accepted only in that canonical form. `campaign` is the campaign's id (lowercase,
//! hyphenated), so a campaign made later under the same name is not
//! covered. It is signed in the `t-minus` `sshsig` namespace like an answer
//! message; its first line differs from every answer message's, so neither
//! can pass for the other.

use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

use crate::agent::AgentId;
use crate::trust::TrustError;

/// The first line of a delegation message.
pub const HEADER: &str = "t-minus delegation v1";

/// A delegation as FROM signs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegationMessage {
    /// The agent whose answers may be given by another (the signer).
    pub from: AgentId,
    /// The agent who may give them.
    pub to: AgentId,
    /// The campaign it covers (`None`: every event).
    pub campaign: Option<Uuid>,
    /// When it ends (exclusive), if ever.
    pub until: Option<DateTime<Utc>>,
    /// When it was signed.
    pub time: DateTime<Utc>,
    /// A fresh random id.
    pub nonce: Uuid,
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl DelegationMessage {
    /// The canonical text.
    pub fn render(&self) -> String {
        let mut out = format!("{HEADER}\nfrom: {}\nto: {}\n", self.from, self.to);
        if let Some(campaign) = self.campaign {
            out.push_str(&format!("campaign: {}\n", campaign.hyphenated()));
        }
        if let Some(until) = self.until {
            out.push_str(&format!("until: {}\n", stamp(until)));
        }
        out.push_str(&format!(
            "time: {}\nnonce: {}\n",
            stamp(self.time),
            self.nonce.hyphenated()
        ));
        out
    }

    /// The canonical text as the bytes to sign.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.render().into_bytes()
    }

    /// Reads a message, accepting only its canonical form.
    pub fn parse(bytes: &[u8]) -> Result<Self, TrustError> {
        let bad = |line: usize, reason: &str| TrustError::InvalidMessage {
            line,
            reason: reason.to_string(),
        };
        let text = std::str::from_utf8(bytes).map_err(|_| bad(1, "it is not valid UTF-8"))?;
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad(1, "the last line must end with a newline"))?;
        let mut lines = body.split('\n').enumerate().peekable();
        match lines.next() {
            Some((_, HEADER)) => {}
            _ => return Err(bad(1, "the first line must be `t-minus delegation v1`")),
        }
        let mut field = |key: &str, optional: bool| -> Result<Option<(usize, &str)>, TrustError> {
            let prefix = format!("{key}: ");
            match lines.peek() {
                Some((i, line)) if line.starts_with(&prefix) => {
                    let (i, line) = (*i, *line);
                    lines.next();
                    Ok(Some((i + 1, &line[prefix.len()..])))
                }
                _ if optional => Ok(None),
                Some((i, _)) => Err(bad(i + 1, &format!("expected the line `{key}: …`"))),
                None => Err(bad(1, &format!("the line `{key}: …` is missing"))),
            }
        };
        let agent = |(line, value): (usize, &str)| {
            AgentId::parse(value).map_err(|e| bad(line, &e.to_string()))
        };
        let id = |(line, value): (usize, &str)| {
            Uuid::parse_str(value).map_err(|_| bad(line, "not a UUID"))
        };
        let time = |(line, value): (usize, &str)| {
            DateTime::parse_from_rfc3339(value)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| bad(line, "not an RFC 3339 time"))
        };
        let from = agent(field("from", false)?.unwrap_or_default())?;
        let to = agent(field("to", false)?.unwrap_or_default())?;
        let campaign = field("campaign", true)?.map(id).transpose()?;
        let until = field("until", true)?.map(time).transpose()?;
        let at = time(field("time", false)?.unwrap_or_default())?;
        let nonce = id(field("nonce", false)?.unwrap_or_default())?;
        if let Some((i, _)) = lines.next() {
            return Err(bad(i + 1, "unexpected line after `nonce`"));
        }
        let message = DelegationMessage {
            from,
            to,
            campaign,
            until,
            time: at,
            nonce,
        };
        if message.render() != text {
            return Err(bad(
                1,
                "it is not in the canonical form (`delegate --sign` writes it)",
            ));
        }
        if message.from == message.to {
            return Err(bad(3, "`to` names the same agent as `from`"));
        }
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DelegationMessage {
        DelegationMessage {
            from: AgentId("alice".into()),
            to: AgentId("bob".into()),
            campaign: Some(Uuid::parse_str("6f1c0e2a-5b7d-4c1e-9a3f-2d8e4b6a7c10").unwrap()),
            until: Some("2026-11-29T00:00:00Z".parse().unwrap()),
            time: "2026-11-28T09:00:00.250Z".parse().unwrap(),
            nonce: Uuid::parse_str("0b7e9f1c-2d3a-4b5c-8d6e-7f8091a2b3c4").unwrap(),
        }
    }

    #[test]
    fn a_delegation_message_reads_back_in_its_canonical_form_only() {
        let text = sample().render();
        assert_eq!(
            text,
            "t-minus delegation v1\nfrom: alice\nto: bob\ncampaign: 6f1c0e2a-5b7d-4c1e-9a3f-2d8e4b6a7c10\nuntil: 2026-11-29T00:00:00.000Z\ntime: 2026-11-28T09:00:00.250Z\nnonce: 0b7e9f1c-2d3a-4b5c-8d6e-7f8091a2b3c4\n"
        );
        assert_eq!(DelegationMessage::parse(text.as_bytes()).unwrap(), sample());
        let bare = DelegationMessage {
            campaign: None,
            until: None,
            ..sample()
        };
        assert_eq!(
            DelegationMessage::parse(bare.render().as_bytes()).unwrap(),
            bare
        );
        for bad in [
            text.replace(
                "until: 2026-11-29T00:00:00.000Z",
                "until: 2026-11-29T00:00:00Z",
            ),
            text.replace("to: bob", "to: alice"),
            text.trim_end().to_string(),
            text.replace("t-minus delegation v1", "t-minus answer v2"),
            format!("{text}extra: 1\n"),
        ] {
            assert!(DelegationMessage::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
