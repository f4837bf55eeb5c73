//! Quorum specifications and fire policies.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::agent::AgentId;
use crate::input::InputError;

/// How many confirmations an event needs, as the user spelled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Quorum {
    /// An exact number of confirmations (`0..=attendees`).
    Count(usize),
    /// Every attendee (the default).
    #[default]
    All,
    /// More than half of the attendees: ⌊n/2⌋ + 1.
    Majority,
}

impl Quorum {
    /// The number of confirmations this spelling requires for `attendees`
    /// attendees, or an error when a count exceeds the attendee list.
    pub fn resolve(self, attendees: usize) -> Result<usize, InputError> {
        match self {
            Quorum::Count(n) if n > attendees => Err(InputError::QuorumTooLarge {
                quorum: n,
                attendees,
            }),
            Quorum::Count(n) => Ok(n),
            Quorum::All => Ok(attendees),
            // More than half of nobody is one, which no one can give.
            Quorum::Majority if attendees == 0 => Err(InputError::QuorumTooLarge {
                quorum: 1,
                attendees,
            }),
            Quorum::Majority => Ok(attendees / 2 + 1),
        }
    }
}

impl Quorum {
    /// The confirmations this spelling asks of `size` attendees, without
    /// checking a count against the size (see [`Quorum::resolve`]).
    pub fn needed(self, size: usize) -> usize {
        match self {
            Quorum::Count(n) => n,
            other => other.resolve(size).unwrap_or(size),
        }
    }
}

/// A named group of attendees with its own quorum: an event with groups
/// fires when every group meets its quorum. An agent may belong to several
/// groups of one event; its confirmation counts in each.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QuorumGroup {
    /// The group's name (the event-name rule: letters, digits, `-`, `_`).
    pub name: String,
    /// The group's quorum, as spelled.
    #[serde(with = "quorum_text")]
    pub quorum: Quorum,
    /// The group's members, unique, in order.
    pub members: Vec<AgentId>,
}

impl QuorumGroup {
    /// A group named `name` of `members` needing `quorum` of them.
    pub fn new(name: impl Into<String>, quorum: Quorum, members: Vec<AgentId>) -> Self {
        QuorumGroup {
            name: name.into(),
            quorum,
            members,
        }
    }

    /// Confirmations the group needs.
    pub fn needed(&self) -> usize {
        self.quorum.needed(self.members.len())
    }
}

impl FromStr for QuorumGroup {
    type Err = InputError;
    /// Parses `NAME=QUORUM:agent,agent,…` (`ops=2:ops-1,ops-2,ops-3`); QUORUM
    /// is N, `all` or `majority`. Members are checked as agent ids and for
    /// repeats; the name and the quorum's size are checked when the event is
    /// built.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |group: &str, reason: &str| InputError::InvalidGroup {
            group: group.to_string(),
            reason: reason.to_string(),
        };
        let (name, rest) = s
            .split_once('=')
            .ok_or_else(|| invalid(s, "expected NAME=QUORUM:agent,agent"))?;
        let name = name.trim();
        let (quorum, members) = rest
            .split_once(':')
            .ok_or_else(|| invalid(name, "expected QUORUM:agent,agent after `=`"))?;
        let quorum: Quorum = quorum.parse()?;
        let members = crate::agent::parse_agent_list(members)?;
        Ok(QuorumGroup::new(name, quorum, members))
    }
}

impl FromStr for Quorum {
    type Err = InputError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        match t.to_ascii_lowercase().as_str() {
            "all" => Ok(Quorum::All),
            "majority" => Ok(Quorum::Majority),
            _ => t
                .parse::<usize>()
                .map(Quorum::Count)
                .map_err(|_| InputError::InvalidQuorum {
                    value: s.to_string(),
                }),
        }
    }
}

impl fmt::Display for Quorum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quorum::Count(n) => write!(f, "{n}"),
            Quorum::All => f.write_str("all"),
            Quorum::Majority => f.write_str("majority"),
        }
    }
}

/// A quorum serialized as its spelling (`2`, `all`, `majority`), for
/// `#[serde(with = "crate::policy::quorum_text")]`.
pub(crate) mod quorum_text {
    use super::*;
    pub fn serialize<S: serde::Serializer>(q: &Quorum, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(q)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Quorum, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// When an event with quorum fires.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum FirePolicy {
    /// Fire as soon as quorum holds (the default).
    #[default]
    Early,
    /// Fire at the fire time, if quorum holds then.
    OnTime,
    /// Lazy consensus: fire at the fire time unless someone declined; one
    /// decline misses the event at once, and confirmations are recorded but
    /// not needed.
    Lazy,
}

impl FromStr for FirePolicy {
    type Err = InputError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "early" => Ok(FirePolicy::Early),
            "on-time" | "on_time" | "ontime" => Ok(FirePolicy::OnTime),
            "lazy" => Ok(FirePolicy::Lazy),
            _ => Err(InputError::InvalidFirePolicy {
                value: s.to_string(),
            }),
        }
    }
}

impl fmt::Display for FirePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FirePolicy::Early => "early",
            FirePolicy::OnTime => "on-time",
            FirePolicy::Lazy => "lazy",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_resolution() {
        assert_eq!(Quorum::All.resolve(3).unwrap(), 3);
        assert_eq!(Quorum::Majority.resolve(3).unwrap(), 2);
        assert_eq!(Quorum::Majority.resolve(4).unwrap(), 3);
        assert_eq!(Quorum::Majority.resolve(1).unwrap(), 1);
        assert!(Quorum::Majority.resolve(0).is_err());
        assert_eq!(Quorum::Count(0).resolve(0).unwrap(), 0);
        let err = Quorum::Count(4).resolve(3).unwrap_err().to_string();
        assert!(err.contains('4') && err.contains('3'), "{err}");
    }

    #[test]
    fn quorum_parsing() {
        assert_eq!("ALL".parse::<Quorum>().unwrap(), Quorum::All);
        assert_eq!("majority".parse::<Quorum>().unwrap(), Quorum::Majority);
        assert_eq!("2".parse::<Quorum>().unwrap(), Quorum::Count(2));
        assert!("-1".parse::<Quorum>().is_err());
        assert!("most".parse::<Quorum>().is_err());
    }

    #[test]
    fn group_parsing() {
        let g: QuorumGroup = "ops=2:ops-1, ops-2,ops-3".parse().unwrap();
        assert_eq!(g.name, "ops");
        assert_eq!(g.quorum, Quorum::Count(2));
        assert_eq!(g.members.len(), 3);
        assert_eq!(g.needed(), 2);
        let g: QuorumGroup = "sec=majority:a,b,c,d".parse().unwrap();
        assert_eq!(g.needed(), 3);
        for bad in ["ops", "ops=2", "ops=most:a", "ops=1:a,a", "ops=1:a,,b"] {
            assert!(bad.parse::<QuorumGroup>().is_err(), "{bad}");
        }
    }

    #[test]
    fn fire_policy_parsing() {
        assert_eq!("on-time".parse::<FirePolicy>().unwrap(), FirePolicy::OnTime);
        assert_eq!("Early".parse::<FirePolicy>().unwrap(), FirePolicy::Early);
        assert_eq!("lazy".parse::<FirePolicy>().unwrap(), FirePolicy::Lazy);
        assert!("late".parse::<FirePolicy>().is_err());
    }
}
