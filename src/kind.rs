//! Event kinds.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What an event is. Parsing is case-insensitive; unknown words become
/// [`EventKind::Custom`], kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A gathering of agents.
    Meeting,
    /// A gate in a pipeline (the default kind in manifests).
    Checkpoint,
    /// A review needing approvals.
    Review,
    /// A deployment.
    Deploy,
    /// Any other kind.
    Custom(String),
}

impl FromStr for EventKind {
    type Err = Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let is = |word: &str| s.eq_ignore_ascii_case(word);
        Ok(if is("meeting") {
            EventKind::Meeting
        } else if is("checkpoint") {
            EventKind::Checkpoint
        } else if is("review") {
            EventKind::Review
        } else if is("deploy") {
            EventKind::Deploy
        } else {
            EventKind::Custom(s.to_string())
        })
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EventKind::Meeting => "meeting",
            EventKind::Checkpoint => "checkpoint",
            EventKind::Review => "review",
            EventKind::Deploy => "deploy",
            EventKind::Custom(s) => s,
        })
    }
}

impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(s.parse().unwrap_or_else(|never: Infallible| match never {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_case_insensitively() {
        assert_eq!("DePloy".parse::<EventKind>().unwrap(), EventKind::Deploy);
        assert_eq!("meeting".parse::<EventKind>().unwrap(), EventKind::Meeting);
        assert_eq!(
            "Launch".parse::<EventKind>().unwrap(),
            EventKind::Custom("Launch".into())
        );
        assert_eq!(EventKind::Custom("Launch".into()).to_string(), "Launch");
        assert_eq!(EventKind::Review.to_string(), "review");
    }
}
