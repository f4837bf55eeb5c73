//! Agent identifiers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};
use unicode_security::MixedScript;

use crate::input::InputError;

/// Longest accepted agent id, in characters.
pub const MAX_AGENT_ID_CHARS: usize = 128;

/// An agent (AI agent, bot or person) that organizes or attends events.
///
/// Valid ids are 1–128 characters with no whitespace, control, invisible
/// (format, such as zero-width and bidi controls), private-use or unassigned
/// characters, in one script (UTS #39 single-script: digits and punctuation
/// go with any script), so that look-alikes such as `bob` + U+200B or a
/// Cyrillic `а` in `alice` are refused;
/// [`AgentId::parse`] (and [`FromStr`]) enforce that. The tuple field is public
/// to keep the seed's shape, so [`AgentId::validate`] is checked again by every
/// engine operation that accepts one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AgentId(pub String);

impl AgentId {
    /// Parses and validates an agent id.
    pub fn parse(value: &str) -> Result<Self, InputError> {
        let id = AgentId(value.to_string());
        id.validate()?;
        Ok(id)
    }

    /// Checks the id against the rules above.
    pub fn validate(&self) -> Result<(), InputError> {
        let value = &self.0;
        let reason = if value.is_empty() {
            Some("it is empty".to_string())
        } else if value.chars().all(char::is_whitespace) {
            Some("it is only whitespace".to_string())
        } else if value.chars().count() > MAX_AGENT_ID_CHARS {
            Some(format!(
                "it is {} characters long; the limit is {MAX_AGENT_ID_CHARS}",
                value.chars().count()
            ))
        } else if let Some(c) = value.chars().find(|c| c.is_whitespace() || c.is_control()) {
            Some(format!("it contains the character {c:?}"))
        } else if let Some(c) = value.chars().find(|c| {
            // Format (zero-width and bidi controls), private-use, surrogate
            // and unassigned characters: invisible or undefined.
            c.general_category_group() == GeneralCategoryGroup::Other
        }) {
            Some(format!(
                "it contains the invisible or unassigned character U+{:04X}",
                u32::from(c)
            ))
        } else if !value.is_single_script() {
            Some(
                "it mixes scripts (e.g. Latin with Cyrillic look-alikes); write it in one script"
                    .to_string(),
            )
        } else {
            None
        };
        match reason {
            Some(reason) => Err(InputError::InvalidAgentId {
                value: value.clone(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Wraps the string as it is, like the tuple constructor: engine operations
/// validate it ([`AgentId::parse`] validates at once).
impl From<&str> for AgentId {
    fn from(value: &str) -> Self {
        AgentId(value.to_string())
    }
}

/// Wraps the string as it is; see `From<&str>`.
impl From<String> for AgentId {
    fn from(value: String) -> Self {
        AgentId(value)
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AgentId {
    type Err = InputError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AgentId::parse(s)
    }
}

/// Parses a comma-separated attendee list (`alice,bob,carol`), rejecting
/// invalid ids and duplicates. Surrounding spaces of each entry are trimmed;
/// an empty string gives an empty list.
pub fn parse_agent_list(value: &str) -> Result<Vec<AgentId>, InputError> {
    if value.trim().is_empty() {
        return Ok(Vec::new());
    }
    let agents = value
        .split(',')
        .map(|part| AgentId::parse(part.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    check_unique_attendees(&agents)?;
    Ok(agents)
}

/// Fails with [`InputError::DuplicateAttendee`] on the first repeated agent.
pub fn check_unique_attendees(agents: &[AgentId]) -> Result<(), InputError> {
    let mut seen = std::collections::HashSet::new();
    for agent in agents {
        if !seen.insert(agent) {
            return Err(InputError::DuplicateAttendee {
                agent: agent.0.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_ids() {
        for ok in [
            "alice",
            "ci-bot",
            "ops/1",
            "ü",
            "алиса",
            "田中さん",
            "bob@example.com",
            &"x".repeat(128),
        ] {
            assert!(AgentId::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_bad_ids_with_reason() {
        let cases = [
            ("", "empty"),
            ("   ", "whitespace"),
            ("a b", "' '"),
            ("a\tb", "'\\t'"),
            ("a\u{7}", "'\\u{7}'"),
            ("bob\u{200B}", "U+200B"),
            ("\u{202E}ecila", "U+202E"),
            ("al\u{2066}ice", "U+2066"),
            ("\u{0430}lice", "mixes scripts"),
            ("\u{E000}x", "U+E000"),
        ];
        for (bad, needle) in cases {
            let err = AgentId::parse(bad).unwrap_err().to_string();
            assert!(err.contains(needle), "{bad:?}: {err}");
        }
        let long = "x".repeat(129);
        assert!(AgentId::parse(&long)
            .unwrap_err()
            .to_string()
            .contains("129 characters"));
    }

    #[test]
    fn lists_reject_duplicates() {
        assert_eq!(parse_agent_list(" a, b ").unwrap().len(), 2);
        assert!(parse_agent_list("").unwrap().is_empty());
        let err = parse_agent_list("a,b,a").unwrap_err().to_string();
        assert!(err.contains("\"a\""), "{err}");
        assert!(parse_agent_list("a,,b").is_err());
    }
}
