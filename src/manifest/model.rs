//! The desired state a valid manifest describes: campaigns and events with
//! every default applied and every value parsed.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::diagnostics::SourceFile;
use super::spec::Span;
use crate::agent::AgentId;
use crate::kind::EventKind;
use crate::policy::{FirePolicy, Quorum, QuorumGroup};
use crate::time_spec::TimeSpec;

/// Validated manifests: the desired state. Build one with
/// [`super::validate()`] (or [`super::check`]).
#[derive(Debug, Clone)]
pub struct ValidManifests {
    /// The campaigns, in file and document order.
    pub campaigns: Vec<DesiredCampaign>,
    /// The templates of GitHub deployments (documents with a `github:`
    /// section), which are not campaigns: `plan` and `apply` leave them
    /// out, `t-minus serve` makes a campaign of one per deployment.
    pub github: Vec<GithubTemplate>,
    /// The source files, for diagnostics that `plan` reports.
    pub sources: Arc<Vec<SourceFile>>,
}

impl ValidManifests {
    /// Counts of campaigns, events and dependency edges.
    pub fn summary(&self) -> Summary {
        Summary {
            campaigns: self.campaigns.len(),
            events: self.campaigns.iter().map(|c| c.events.len()).sum(),
            edges: self
                .campaigns
                .iter()
                .flat_map(|c| &c.events)
                .map(|e| e.needs.len())
                .sum(),
        }
    }

    /// The campaign named `name`.
    pub fn campaign(&self, name: &str) -> Option<&DesiredCampaign> {
        self.campaigns.iter().find(|c| c.name == name)
    }
}

/// A template of GitHub deployments: the campaign made for every
/// deployment to `environment` of `repository` (see docs/github.md).
#[derive(Debug, Clone, PartialEq)]
pub struct GithubTemplate {
    /// The repository, `owner/name`, as written.
    pub repository: String,
    /// The environment, as written.
    pub environment: String,
    /// The campaign each deployment gets (named after the template).
    pub campaign: DesiredCampaign,
    /// The `github:` section.
    pub span: Span,
}

impl GithubTemplate {
    /// Whether it gates `environment` of `repository` (both compared
    /// without regard to ASCII case, as GitHub compares them).
    pub fn gates(&self, repository: &str, environment: &str) -> bool {
        self.repository.eq_ignore_ascii_case(repository)
            && self.environment.eq_ignore_ascii_case(environment)
    }
}

/// What a valid set of manifests holds; displays as
/// `3 campaigns, 12 events, 11 edges`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Campaigns.
    pub campaigns: usize,
    /// Events.
    pub events: usize,
    /// Dependency edges (`needs` entries).
    pub edges: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: usize, word: &str| {
            if n == 1 {
                format!("{n} {word}")
            } else {
                format!("{n} {word}s")
            }
        };
        write!(
            f,
            "{}, {}, {}",
            plural(self.campaigns, "campaign"),
            plural(self.events, "event"),
            plural(self.edges, "edge")
        )
    }
}

/// A campaign as the manifest wants it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredCampaign {
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Events in manifest order, shared with the plans made of them.
    pub events: Vec<Arc<DesiredEvent>>,
    /// The keys that must sign answers, as canonical `allowed_signers`
    /// text; `None`: answers need no signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signers: Option<String>,
    /// Where it was written (not serialized).
    #[serde(skip)]
    pub origin: Origin,
}

/// Where a campaign was written: its file and the span of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Origin {
    /// Index into [`ValidManifests::sources`].
    pub file: usize,
    /// The `campaign:` value.
    pub name: Span,
    /// The `description:` value, if written.
    pub description: Option<Span>,
}

/// An event as the manifest wants it, defaults applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredEvent {
    /// Its key in `events:` (its name in the campaign).
    pub key: String,
    /// Kind.
    pub kind: EventKind,
    /// Free text.
    pub description: Option<String>,
    /// When: absolute, or relative to the event's start.
    #[serde(with = "time_spec_text")]
    pub at: TimeSpec,
    /// Countdown length.
    #[serde(with = "duration_ms")]
    pub t_minus: Duration,
    /// Quorum as spelled; for an event with groups, the total they need.
    #[serde(with = "crate::policy::quorum_text")]
    pub quorum: Quorum,
    /// Fire policy.
    pub fire: FirePolicy,
    /// Cap on the total of all deferrals.
    #[serde(with = "opt_duration_ms")]
    pub max_defer: Option<Duration>,
    /// Who requested it (its organizer); `None`: `t-minus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<AgentId>,
    /// Four eyes: the requester's own answer is refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub four_eyes: bool,
    /// The windows it may fire in (none: at any time).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<crate::gate::Window>,
    /// Who may break the glass: the campaign's list, then the event's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breakglass: Vec<AgentId>,
    /// Attendees in order; for an event with groups, every member once in
    /// order of first mention.
    pub attendees: Vec<AgentId>,
    /// Quorum groups (`attendees` written as a map), in manifest order;
    /// empty for a plain event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<QuorumGroup>,
    /// Keys of the events it needs, in manifest order.
    pub needs: Vec<String>,
    /// Arbitrary JSON (`null` when not given).
    pub payload: serde_json::Value,
    /// Notification rules: the campaign's, then the event's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<crate::notification::NotifyRule>,
    /// Escalation steps, soonest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalate: Vec<crate::escalation::EscalationStep>,
    /// Where each field was written (not serialized).
    #[serde(skip)]
    pub spans: EventSpans,
}

impl DesiredEvent {
    /// The organizer the event is stored with: its requester, or `t-minus`.
    pub fn organizer(&self) -> AgentId {
        self.requested_by
            .clone()
            .unwrap_or_else(|| AgentId("t-minus".into()))
    }

    /// Its gates as stored on the event (no break-glass used yet).
    pub fn gates(&self) -> crate::gate::Gates {
        crate::gate::Gates {
            four_eyes: self.four_eyes,
            windows: self.windows.clone(),
            breakglass: self.breakglass.clone(),
            broken: None,
        }
    }

    /// The resolved quorum for its attendees (validation guarantees it fits);
    /// for an event with groups, the total the groups need.
    pub fn quorum_count(&self) -> usize {
        self.quorum_count_checked().unwrap_or(self.attendees.len())
    }

    /// The event as the rules of [`crate::event_check`] see it: its own
    /// attendees (none when it has groups), quorum, groups, durations and
    /// notification rules, with its fire time and the instant it must come
    /// after when both are known.
    pub fn draft(
        &self,
        fire: Option<(DateTime<Utc>, DateTime<Utc>)>,
    ) -> crate::event_check::EventDraft<'_> {
        crate::event_check::EventDraft {
            attendees: if self.groups.is_empty() {
                &self.attendees
            } else {
                &[]
            },
            quorum: self.quorum,
            groups: &self.groups,
            t_minus: self.t_minus,
            max_defer: self.max_defer,
            relative_at: match self.at {
                TimeSpec::Relative(offset) => Some(offset),
                TimeSpec::Absolute(_) => None,
            },
            notify: &self.notify,
            organizer: None,
            fire,
        }
    }

    /// The resolved quorum, or the error of a count larger than its
    /// attendees (or group).
    pub fn quorum_count_checked(&self) -> Result<usize, crate::input::InputError> {
        if self.groups.is_empty() {
            return self.quorum.resolve(self.attendees.len());
        }
        self.groups
            .iter()
            .map(|g| g.quorum.resolve(g.members.len()))
            .sum()
    }
}

/// Where each field of an event was written — in the event, or in the
/// campaign's `defaults` when it came from there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventSpans {
    /// The key.
    pub key: Span,
    /// `kind`.
    pub kind: Option<Span>,
    /// `description`.
    pub description: Option<Span>,
    /// `at`.
    pub at: Span,
    /// `t_minus`.
    pub t_minus: Option<Span>,
    /// `quorum`.
    pub quorum: Option<Span>,
    /// `fire`.
    pub fire: Option<Span>,
    /// `max_defer`.
    pub max_defer: Option<Span>,
    /// `attendees` (the whole list).
    pub attendees: Option<Span>,
    /// `needs` (the whole list).
    pub needs: Option<Span>,
    /// `notify` (the event's list, or the campaign's).
    pub notify: Option<Span>,
    /// `requested_by` (the event's, or the campaign's).
    pub requested_by: Option<Span>,
    /// `four_eyes`.
    pub four_eyes: Option<Span>,
    /// `window`.
    pub window: Option<Span>,
    /// `breakglass` (the event's, or the campaign's).
    pub breakglass: Option<Span>,
    /// `escalate` (the whole list).
    pub escalate: Option<Span>,
}

impl EventSpans {
    /// The span of a field, falling back to the key.
    pub fn of(&self, field: Field) -> Span {
        let span = match field {
            Field::Kind => self.kind,
            Field::Description => self.description,
            Field::At => Some(self.at),
            Field::TMinus => self.t_minus,
            Field::Quorum => self.quorum,
            Field::Fire => self.fire,
            Field::MaxDefer => self.max_defer,
            Field::Attendees => self.attendees,
            Field::Needs => self.needs,
            Field::Notify => self.notify,
            Field::RequestedBy => self.requested_by,
            Field::FourEyes => self.four_eyes,
            Field::Window => self.window,
            Field::Breakglass => self.breakglass,
            Field::Escalate => self.escalate,
            Field::Payload | Field::Managed | Field::Signers => None,
        };
        span.unwrap_or(self.key)
    }
}

/// A field of a manifest's event or campaign, as plans name what changes.
/// Ordered as a plan lists an event's changes; serialised as its manifest
/// name (`t_minus`, `max_defer`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// `kind`.
    Kind,
    /// `description` (of an event or a campaign).
    Description,
    /// `at`.
    At,
    /// `t_minus`.
    TMinus,
    /// `quorum`.
    Quorum,
    /// `fire`.
    Fire,
    /// `max_defer`.
    MaxDefer,
    /// `attendees`.
    Attendees,
    /// `needs`.
    Needs,
    /// `payload`.
    Payload,
    /// `notify`.
    Notify,
    /// `escalate`.
    Escalate,
    /// Whether a manifest manages the campaign.
    Managed,
    /// `signers` (of a campaign): the key set, by digest.
    Signers,
    /// `requested_by`.
    RequestedBy,
    /// `four_eyes`.
    FourEyes,
    /// `window`.
    Window,
    /// `breakglass`.
    Breakglass,
}

impl Field {
    /// The manifest name.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Kind => "kind",
            Field::Description => "description",
            Field::At => "at",
            Field::TMinus => "t_minus",
            Field::Quorum => "quorum",
            Field::Fire => "fire",
            Field::MaxDefer => "max_defer",
            Field::Attendees => "attendees",
            Field::Needs => "needs",
            Field::Payload => "payload",
            Field::Notify => "notify",
            Field::Escalate => "escalate",
            Field::Managed => "managed",
            Field::Signers => "signers",
            Field::RequestedBy => "requested_by",
            Field::FourEyes => "four_eyes",
            Field::Window => "window",
            Field::Breakglass => "breakglass",
        }
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

mod time_spec_text {
    use super::*;
    pub fn serialize<S: serde::Serializer>(t: &TimeSpec, s: S) -> Result<S::Ok, S::Error> {
        match t {
            TimeSpec::Absolute(_) => s.collect_str(t),
            TimeSpec::Relative(d) => s.serialize_str(&format!("+{}ms", d.num_milliseconds())),
        }
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<TimeSpec, D::Error> {
        let text = String::deserialize(d)?;
        TimeSpec::parse(&text).map_err(serde::de::Error::custom)
    }
}

mod duration_ms {
    use super::*;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(d.num_milliseconds())
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::milliseconds(i64::deserialize(d)?))
    }
}

mod opt_duration_ms {
    use super::*;
    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.num_milliseconds()),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<i64>::deserialize(d)?.map(Duration::milliseconds))
    }
}
