//! Escalation: attendees an event adds while it waits for quorum.
//!
//! An event's `escalate:` steps each say how long after the event opened
//! (`after`) which agents join it (`add`: attendees, or members of named
//! quorum groups). A step is due at `opened + after`; the engine applies due
//! steps, in order, whenever it settles the event (a tick, an answer): the
//! agents join as `pending` attendees and may answer from then on. Steps
//! apply only while the event is pending; a final event applies none.
//!
//! While steps are still to come, quorum counts as reachable when the
//! attendees those steps add (the steps due before the fire time) could
//! still complete it; after the last step the usual rule applies. The
//! quorum itself is the count fixed when the event was made: escalation
//! adds agents who may meet it, never raises it.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::agent::AgentId;

/// Who one step adds: attendees of a plain event, or members of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationAdd {
    /// The quorum group they join (`None`: a plain event's attendees).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The agents, in order.
    pub agents: Vec<AgentId>,
}

/// One step of an event's escalation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationStep {
    /// How long after the event opened it is due.
    #[serde(with = "after_ms")]
    pub after: Duration,
    /// Who it adds.
    pub add: Vec<EscalationAdd>,
}

impl EscalationStep {
    /// Every agent it adds, in order.
    pub fn agents(&self) -> impl Iterator<Item = &AgentId> {
        self.add.iter().flat_map(|a| a.agents.iter())
    }
}

/// An event's escalation: its steps and how many of them were applied.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Escalation {
    /// The steps, soonest first.
    pub steps: Vec<EscalationStep>,
    /// How many steps were applied (the first `applied`).
    #[serde(default)]
    pub applied: usize,
    /// When the last applied step was applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_at: Option<DateTime<Utc>>,
}

impl Escalation {
    /// Whether it has no steps.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The steps not applied yet.
    pub fn remaining(&self) -> &[EscalationStep] {
        &self.steps[self.applied.min(self.steps.len())..]
    }

    /// When the next step is due for an event that opened at `opened`.
    pub fn next_due(&self, opened: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        let step = self.remaining().first()?;
        Some(opened? + step.after)
    }

    /// The agents every applied step added, in order.
    pub fn added(&self) -> impl Iterator<Item = &AgentId> {
        self.steps[..self.applied.min(self.steps.len())]
            .iter()
            .flat_map(EscalationStep::agents)
    }
}

/// A duration as whole milliseconds.
mod after_ms {
    use chrono::Duration;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(d.num_milliseconds())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::milliseconds(i64::deserialize(d)?))
    }
}

/// Why escalation steps are refused, with the step (0-based) at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("escalation step {} (after {after}): {reason}", .step + 1)]
#[diagnostic(
    code(t_minus::input::escalation),
    help("order the steps by `after`, each due before the fire time, each adding agents the event does not have yet (to groups it has, for an event with groups)")
)]
pub struct EscalationError {
    /// The step at fault, 0-based.
    pub step: usize,
    /// Its `after`, as written back.
    pub after: String,
    /// What is wrong.
    pub reason: String,
}

/// Checks steps against an event's attendees and groups: each step is due
/// after the one before it (`after` at least zero, strictly increasing),
/// before the fire time when the event's open-to-fire span `window` is
/// known, adds at least one agent, and adds only agents the event does not
/// have and no earlier step adds; a plain event's steps add attendees, a
/// grouped event's steps add members to groups it has.
pub fn check(
    steps: &[EscalationStep],
    attendees: &[AgentId],
    groups: &[crate::policy::QuorumGroup],
    window: Option<Duration>,
) -> Result<(), EscalationError> {
    let mut previous: Option<Duration> = None;
    let mut seen: Vec<(Option<&str>, &AgentId)> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let refuse = |reason: String| EscalationError {
            step: i,
            after: crate::duration::format_duration(step.after),
            reason,
        };
        if step.after < Duration::zero() {
            return Err(refuse("`after` is negative".into()));
        }
        if let Some(before) = previous {
            if step.after <= before {
                return Err(refuse(format!(
                    "it is not after the step before it (after {})",
                    crate::duration::format_duration(before)
                )));
            }
        }
        if let Some(window) = window {
            if step.after >= window {
                return Err(refuse(format!(
                    "it would be due at or after the fire time, {} after the event opens",
                    crate::duration::format_duration(window)
                )));
            }
        }
        if step.agents().next().is_none() {
            return Err(refuse("it adds nobody".into()));
        }
        for add in &step.add {
            let members: Vec<&AgentId> = match &add.group {
                None if groups.is_empty() => attendees.iter().collect(),
                None => {
                    return Err(refuse(
                        "the event's attendees are in groups: add agents to a group (`add: {GROUP: [...]}`)"
                            .into(),
                    ))
                }
                Some(name) => match groups.iter().find(|g| &g.name == name) {
                    Some(group) => group.members.iter().collect(),
                    None if groups.is_empty() => {
                        return Err(refuse(format!(
                            "the event has no groups, so it cannot add to group `{name}`: add a list of agents"
                        )))
                    }
                    None => return Err(refuse(format!("the event has no group `{name}`"))),
                },
            };
            for agent in &add.agents {
                agent.validate().map_err(|e| refuse(e.to_string()))?;
                if members.contains(&agent) {
                    return Err(refuse(format!("{agent} is already an attendee")));
                }
                let key = (add.group.as_deref(), agent);
                if seen.contains(&key) {
                    return Err(refuse(format!("{agent} is added twice")));
                }
                seen.push(key);
            }
        }
        previous = Some(step.after);
    }
    Ok(())
}

impl Escalation {
    /// The escalation an event gets when `steps` replace its steps (a
    /// manifest's apply): the applied steps that lead the new list unchanged
    /// stay applied; the others are not (their agents leave with them).
    pub fn rebase(&self, steps: &[EscalationStep]) -> Escalation {
        let kept = self
            .steps
            .iter()
            .zip(steps)
            .take(self.applied)
            .take_while(|(old, new)| old == new)
            .count();
        Escalation {
            steps: steps.to_vec(),
            applied: kept,
            applied_at: if kept > 0 { self.applied_at } else { None },
        }
    }

    /// `attendees` followed by the agents the applied steps added (each
    /// once): the attendees an event has once its applied steps are taken
    /// into account.
    pub fn attendees_with_added(&self, attendees: &[AgentId]) -> Vec<AgentId> {
        let mut out = attendees.to_vec();
        for agent in self.added() {
            if !out.contains(agent) {
                out.push(agent.clone());
            }
        }
        out
    }

    /// `groups` with the members the applied steps added to them.
    pub fn groups_with_added(
        &self,
        groups: &[crate::policy::QuorumGroup],
    ) -> Vec<crate::policy::QuorumGroup> {
        let mut out = groups.to_vec();
        for step in &self.steps[..self.applied.min(self.steps.len())] {
            for add in &step.add {
                let Some(name) = &add.group else { continue };
                if let Some(group) = out.iter_mut().find(|g| &g.name == name) {
                    for agent in &add.agents {
                        if !group.members.contains(agent) {
                            group.members.push(agent.clone());
                        }
                    }
                }
            }
        }
        out
    }

    /// The steps as one line of text, for plans: `10m: carol, dave; 30m:
    /// ops: erin` (`None` without steps).
    pub fn summary(steps: &[EscalationStep]) -> Option<String> {
        if steps.is_empty() {
            return None;
        }
        let parts: Vec<String> = steps
            .iter()
            .map(|step| {
                let adds: Vec<String> = step
                    .add
                    .iter()
                    .map(|a| {
                        let names: Vec<&str> = a.agents.iter().map(AgentId::as_str).collect();
                        match &a.group {
                            Some(g) => format!("{g}: {}", names.join(", ")),
                            None => names.join(", "),
                        }
                    })
                    .collect();
                format!(
                    "{}: {}",
                    crate::duration::format_duration(step.after),
                    adds.join(" + ")
                )
            })
            .collect();
        Some(parts.join("; "))
    }
}
