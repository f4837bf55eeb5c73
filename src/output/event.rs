//! An event as every front end shows it.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::delivery::DeliveryStatus;
use super::time;
use crate::engine::EventViews;
use crate::{Engine, EventState, FirePolicy, ResponseStatus, Result, TMinusEvent};

/// An event: what it is, when it fires, who must answer and how they
/// answered. Printed by `schedule`, `campaign add`, `confirm`, `defer`,
/// `decline`, `cancel EVENT`, `submit`, `status` and `inbox`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// The event's id; never changes.
    pub id: Uuid,
    /// The name of its campaign (`null` for a standalone event).
    pub campaign: Option<String>,
    /// Its name in the campaign (`null` for a standalone event).
    pub name: Option<String>,
    /// `meeting`, `checkpoint`, `review`, `deploy` or a custom word
    /// (lowercase).
    pub kind: String,
    /// Where it is in its lifecycle.
    pub state: EventState,
    /// `at`, including every deferral; `null` while a relative time is not
    /// anchored yet (a blocked event whose `at` counts from its start).
    #[serde(serialize_with = "time::opt")]
    pub scheduled_at: Option<DateTime<Utc>>,
    /// `at − t_minus`: the deadline for confirmations; `null` when
    /// `scheduled_at` is.
    #[serde(serialize_with = "time::opt")]
    pub fire_time: Option<DateTime<Utc>>,
    /// For a manifest event with a relative `at`: the offset from its start.
    pub relative_at_ms: Option<i64>,
    /// The countdown: confirmations are due this long before `scheduled_at`.
    pub t_minus_ms: i64,
    /// Confirmations needed, resolved; for an event with groups, the total
    /// the groups need.
    pub quorum: usize,
    /// The quorum as written: `"2"`, `"all"`, `"majority"`.
    pub quorum_spec: String,
    /// Confirmations so far (distinct agents).
    pub confirmed: usize,
    /// `early` fires as soon as the quorum holds; `on-time` at the fire time;
    /// `lazy` at the fire time unless someone declined.
    pub fire_policy: FirePolicy,
    /// The total of all deferrals so far.
    pub deferred_ms: i64,
    /// The cap on that total.
    pub max_defer_ms: Option<i64>,
    /// Who scheduled it.
    pub organizer: String,
    /// The attendees in order, with their answers.
    pub attendees: Vec<Attendee>,
    /// Arbitrary JSON given when it was scheduled, returned untouched
    /// (`null` when none was given).
    pub payload: serde_json::Value,
    /// `sha256:` and 64 hex digits: the digest of the event's id, campaign,
    /// name, kind, description and payload that approvals are bound to.
    pub content_digest: String,
    /// Free text.
    pub description: Option<String>,
    /// When it was scheduled or applied.
    #[serde(serialize_with = "time::at")]
    pub created_at: DateTime<Utc>,
    /// When it opened (became `pending`).
    #[serde(serialize_with = "time::opt")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it became final: the moment the outcome became true, not when a
    /// tick noticed.
    #[serde(serialize_with = "time::opt")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Each quorum group in order; only an event with groups has this key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupProgress>,
    /// Four eyes: the organizer (the requester) may not answer; only a
    /// four-eyes event has this key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub four_eyes: bool,
    /// The time windows it may fire in (`DAYS HH:MM-HH:MM ZONE`); only an
    /// event with windows has this key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<String>,
    /// The agents who may break the glass; only an event with some has
    /// this key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breakglass: Vec<String>,
    /// The break-glass that fired it; only such an event has this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broken: Option<crate::gate::BreakGlass>,
    /// For a pending event with windows: when it may fire next, at the
    /// earliest, at the instant of the output — that instant when it is
    /// inside a window, else the next window opening. Absent when no window
    /// opens before its fire time (an early event is then missed at its
    /// fire time), for an event without windows, and where the output has
    /// no clock (`status CAMPAIGN`, a campaign's events).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "time::opt"
    )]
    pub may_fire_next: Option<DateTime<Utc>>,
    /// The next escalation step of a pending event, while one is due before
    /// its fire time; only such an event has this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_escalation: Option<NextEscalation>,
}

/// The next escalation step of an [`Event`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NextEscalation {
    /// When it is due: the event's opening plus the step's `after`.
    #[serde(serialize_with = "time::at")]
    pub at: DateTime<Utc>,
    /// Its number, from 1.
    pub step: usize,
    /// How many steps the event has.
    pub of: usize,
    /// Who it adds: attendees (`group` absent), or members of a group.
    pub add: Vec<EscalationAdd>,
}

/// Agents an escalation step adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EscalationAdd {
    /// The quorum group they join; absent for a plain event's attendees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The agents, in order.
    pub agents: Vec<String>,
}

/// One attendee of an [`Event`] and its answer so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Attendee {
    /// The agent.
    pub agent: String,
    /// Its answer so far.
    pub status: AnswerStatus,
    /// For `deferred`: how much later it asked for, in its latest request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deferred_ms: Option<i64>,
    /// For an event with groups: the groups the agent is in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// The delegate who gave this attendee's standing answer for it
    /// (`answered_by` for `agent`, under `agent`'s delegation); only such
    /// an attendee has this key, and only in the output of one event read
    /// with its log (`status EVENT`, an answer, `GET /v1/events/{event}`,
    /// the MCP `get_event` and answer tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<String>,
}

/// An attendee's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AnswerStatus {
    /// No answer yet.
    Pending,
    /// Ready.
    Confirmed,
    /// Asked for more time.
    Deferred,
    /// Will not take part.
    Declined,
    /// Had not confirmed when the event was missed.
    Missed,
}

impl From<ResponseStatus> for AnswerStatus {
    fn from(status: ResponseStatus) -> Self {
        match status {
            ResponseStatus::Pending => AnswerStatus::Pending,
            ResponseStatus::Confirmed => AnswerStatus::Confirmed,
            ResponseStatus::Deferred(_) => AnswerStatus::Deferred,
            ResponseStatus::Declined => AnswerStatus::Declined,
            ResponseStatus::Missed => AnswerStatus::Missed,
        }
    }
}

/// One quorum group of an [`Event`] and its progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GroupProgress {
    /// The group's name.
    pub name: String,
    /// Its quorum as written.
    pub quorum_spec: String,
    /// Confirmations it needs, resolved.
    pub quorum: usize,
    /// Its members who confirmed.
    pub confirmed: usize,
    /// Its members in order.
    pub members: Vec<String>,
}

impl Event {
    /// The event `e` of the campaign named `campaign` (`None`: standalone).
    pub fn new(e: &TMinusEvent, campaign: Option<&str>) -> Self {
        let grouped = !e.groups.is_empty();
        let attendees = e
            .attendees
            .iter()
            .map(|(agent, status)| Attendee {
                agent: agent.as_str().to_string(),
                status: (*status).into(),
                deferred_ms: match status {
                    ResponseStatus::Deferred(d) => Some(d.num_milliseconds()),
                    _ => None,
                },
                groups: grouped
                    .then(|| e.groups_of(agent).into_iter().map(str::to_string).collect()),
                answered_by: None,
            })
            .collect();
        let groups = e
            .groups
            .iter()
            .zip(e.quorum_status())
            .map(|(g, status)| GroupProgress {
                name: g.name.clone(),
                quorum_spec: g.quorum.to_string(),
                quorum: status.needed,
                confirmed: status.confirmed,
                members: g.members.iter().map(|m| m.as_str().to_string()).collect(),
            })
            .collect();
        Event {
            id: e.id,
            campaign: campaign.map(str::to_string),
            name: e.name.clone(),
            kind: e.kind.to_string(),
            state: e.state,
            scheduled_at: e.at_known().then_some(e.scheduled_at),
            fire_time: e.fire_deadline(),
            relative_at_ms: e.relative_at.map(|d| d.num_milliseconds()),
            t_minus_ms: e.t_minus.num_milliseconds(),
            quorum: e.quorum,
            quorum_spec: e.quorum_spec.to_string(),
            confirmed: e.confirmed_count(),
            fire_policy: e.fire_policy,
            deferred_ms: e.deferred.num_milliseconds(),
            max_defer_ms: e.max_defer.map(|d| d.num_milliseconds()),
            organizer: e.organizer.as_str().to_string(),
            attendees,
            payload: e.payload.clone(),
            content_digest: crate::trust::content_digest(e).to_string(),
            description: e.description.clone(),
            created_at: e.created_at,
            started_at: e.started_at,
            finished_at: e.finished_at,
            groups,
            four_eyes: e.gates.four_eyes,
            windows: e.gates.windows.iter().map(ToString::to_string).collect(),
            breakglass: e
                .gates
                .breakglass
                .iter()
                .map(|a| a.as_str().to_string())
                .collect(),
            broken: e.gates.broken.clone(),
            may_fire_next: None,
            next_escalation: e.next_escalation().map(|(at, step)| NextEscalation {
                at,
                step: e.escalation.applied + 1,
                of: e.escalation.steps.len(),
                add: step
                    .add
                    .iter()
                    .map(|add| EscalationAdd {
                        group: add.group.clone(),
                        agents: add.agents.iter().map(|a| a.as_str().to_string()).collect(),
                    })
                    .collect(),
            }),
        }
    }

    /// The output with what depends on the clock, at `now`: when the event
    /// `e` it describes may fire next (`may_fire_next`), for a pending
    /// event with windows.
    pub fn at_time(mut self, e: &TMinusEvent, now: DateTime<Utc>) -> Self {
        if e.state == EventState::Pending && !e.gates.windows.is_empty() {
            self.may_fire_next = e.may_fire_next(now);
        }
        self
    }

    /// The output with the delegates who gave standing answers:
    /// (attendee, delegate) pairs as [`crate::engine::delegated_answers`]
    /// reads them from the event's log.
    pub fn with_answered_by(mut self, answered_by: &[(crate::AgentId, crate::AgentId)]) -> Self {
        for attendee in &mut self.attendees {
            attendee.answered_by = answered_by
                .iter()
                .find(|(a, _)| a.as_str() == attendee.agent)
                .map(|(_, delegate)| delegate.as_str().to_string());
        }
        self
    }

    /// The event this output describes, rebuilt for the renderers of
    /// [`crate::display`] (a client of the HTTP service shows a reply as the
    /// local command shows the event). The campaign's id is not part of the
    /// output: a campaign event gets the nil id, its name being this
    /// output's `campaign`. Fails on a value the output types would never
    /// hold (an invalid agent id or quorum).
    pub fn to_event(&self) -> Result<TMinusEvent> {
        use crate::{AgentId, EventKind, Quorum, QuorumGroup};
        use chrono::Duration;
        let attendees = self
            .attendees
            .iter()
            .map(|a| {
                let status = match a.status {
                    AnswerStatus::Pending => ResponseStatus::Pending,
                    AnswerStatus::Confirmed => ResponseStatus::Confirmed,
                    AnswerStatus::Deferred => {
                        ResponseStatus::Deferred(Duration::milliseconds(a.deferred_ms.unwrap_or(0)))
                    }
                    AnswerStatus::Declined => ResponseStatus::Declined,
                    AnswerStatus::Missed => ResponseStatus::Missed,
                };
                Ok((AgentId::parse(&a.agent)?, status))
            })
            .collect::<Result<Vec<_>>>()?;
        let groups = self
            .groups
            .iter()
            .map(|g| {
                let members = g
                    .members
                    .iter()
                    .map(|m| AgentId::parse(m).map_err(Into::into))
                    .collect::<Result<Vec<_>>>()?;
                Ok(QuorumGroup::new(
                    g.name.clone(),
                    g.quorum_spec.parse::<Quorum>()?,
                    members,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let t_minus = Duration::milliseconds(self.t_minus_ms);
        Ok(TMinusEvent {
            rules_digest: None,
            id: self.id,
            kind: self
                .kind
                .parse::<EventKind>()
                .unwrap_or_else(|never| match never {}),
            scheduled_at: self.scheduled_at.unwrap_or(self.created_at),
            t_minus,
            organizer: AgentId::parse(&self.organizer)?,
            attendees,
            quorum: self.quorum,
            groups,
            payload: self.payload.clone(),
            state: self.state,
            campaign: self.campaign.as_ref().map(|_| Uuid::nil()),
            name: self.name.clone(),
            quorum_spec: self.quorum_spec.parse::<Quorum>()?,
            fire_policy: self.fire_policy,
            max_defer: self.max_defer_ms.map(Duration::milliseconds),
            deferred: Duration::milliseconds(self.deferred_ms),
            relative_at: self.relative_at_ms.map(Duration::milliseconds),
            started_at: self.started_at,
            finished_at: self.finished_at,
            created_at: self.created_at,
            last_response_at: None,
            gates: crate::gate::Gates {
                four_eyes: self.four_eyes,
                windows: self
                    .windows
                    .iter()
                    .map(|w| w.parse())
                    .collect::<std::result::Result<_, _>>()?,
                breakglass: self
                    .breakglass
                    .iter()
                    .map(|a| AgentId::parse(a))
                    .collect::<std::result::Result<_, _>>()?,
                broken: self.broken.clone(),
            },
            description: self.description.clone(),
            escalation: Default::default(),
        })
    }

    /// The (attendee, delegate) pairs of the attendees whose standing
    /// answer a delegate gave, as `answered_by` shows them; invalid agent
    /// ids are left out.
    pub fn answered_by(&self) -> Vec<(crate::AgentId, crate::AgentId)> {
        self.attendees
            .iter()
            .filter_map(|a| {
                let delegate = a.answered_by.as_deref()?;
                Some((
                    crate::AgentId::parse(&a.agent).ok()?,
                    crate::AgentId::parse(delegate).ok()?,
                ))
            })
            .collect()
    }

    /// The event `e` at the engine's clock, its campaign's name looked up
    /// through `views`.
    pub fn read(engine: &Engine, views: &mut EventViews, e: &TMinusEvent) -> Result<Self> {
        let campaign = views.campaign_name(engine, e)?;
        Ok(Event::new(e, campaign.as_deref()).at_time(e, engine.now()))
    }

    /// [`Event::read`] with the delegates who gave standing answers, read
    /// from the event's log: the output of one event.
    pub fn read_one(engine: &Engine, views: &mut EventViews, e: &TMinusEvent) -> Result<Self> {
        let answered_by = crate::engine::delegated_answers(e, &engine.log(e.id)?);
        Ok(Event::read(engine, views, e)?.with_answered_by(&answered_by))
    }
}

/// `status EVENT`: the [`Event`] and its notifications that are still
/// pending or have failed.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct EventStatus {
    /// The event.
    #[serde(flatten)]
    pub event: Event,
    /// Its pending and failed deliveries.
    pub notifications: Vec<DeliveryStatus>,
}
