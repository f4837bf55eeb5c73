//! The rules every new event obeys, however it is described: `schedule` and
//! `campaign add` ([`crate::engine::NewEvent`]), a manifest (`validate`,
//! `plan`, `apply`) and a saved plan file.
//!
//! Each rule is one function returning typed [`EventProblem`]s that say
//! where in the event the problem sits (which attendee, which group), so
//! the manifest layer can point at the spot in the YAML, while the engine
//! turns the first problem into a [`TMinusError`] ([`check`]). Nothing here
//! formats text: the problems format themselves when they become errors.
//!
//! The rules:
//!
//! - attendees (and each group's members) are valid agent ids, each listed
//!   once;
//! - a quorum is at most the attendees (or the group's members) it counts;
//! - groups have valid, unique names and at least one member, and an event
//!   with groups takes its attendees from them (its own list stays empty);
//! - durations (`t_minus`, `max_defer`, a relative `at`) are between zero
//!   and [`MAX_DURATION_DAYS`] days;
//! - notification rules follow the rules of [`crate::notification`], at most
//!   [`crate::notification::spec::MAX_RULES`] of them;
//! - a relative `at` is longer than `t_minus` (or equal, for quorum 0), so
//!   the event does not open past its fire time;
//! - a new event's fire time is after now: an event whose fire time is now
//!   or earlier could only be missed ([`fire_time_passed`]);
//! - its text fits the size limits ([`text_sizes`]): a kind of at most
//!   [`MAX_KIND_BYTES`], a description of at most [`MAX_DESCRIPTION_BYTES`],
//!   a payload of at most [`MAX_PAYLOAD_BYTES`] as compact JSON (names and
//!   agent ids have limits of their own: 64 bytes and 128 characters).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use crate::agent::AgentId;
use crate::duration::{format_duration, MAX_DURATION_DAYS};
use crate::error::TMinusError;
use crate::name::name_problem;
use crate::notification::spec::check_rules;
use crate::notification::NotifyRule;
use crate::policy::{Quorum, QuorumGroup};

/// Where an agent sits in an event: in its attendee list, or in one of its
/// groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The group's index, for a group member.
    pub group: Option<usize>,
    /// The agent's index in its list.
    pub index: usize,
}

/// A duration field of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationField {
    /// The countdown length.
    TMinus,
    /// The cap on the total of all deferrals.
    MaxDefer,
    /// A relative `at`.
    At,
}

impl DurationField {
    /// The field's manifest name.
    pub fn as_str(self) -> &'static str {
        match self {
            DurationField::TMinus => "t_minus",
            DurationField::MaxDefer => "max_defer",
            DurationField::At => "at",
        }
    }
}

impl std::fmt::Display for DurationField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest kind, in bytes.
pub const MAX_KIND_BYTES: usize = 64;

/// The longest description (of an event or a campaign), in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 4096;

/// The largest payload, as compact JSON, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 65_536;

/// A text field of an event with a size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextField {
    /// The kind.
    Kind,
    /// The description.
    Description,
    /// The payload, as compact JSON.
    Payload,
}

impl TextField {
    /// The field's name in errors: `kind`, `description`, `payload`.
    pub fn as_str(self) -> &'static str {
        match self {
            TextField::Kind => "kind",
            TextField::Description => "description",
            TextField::Payload => "payload",
        }
    }

    /// Its limit in bytes.
    pub fn max(self) -> usize {
        match self {
            TextField::Kind => MAX_KIND_BYTES,
            TextField::Description => MAX_DESCRIPTION_BYTES,
            TextField::Payload => MAX_PAYLOAD_BYTES,
        }
    }
}

/// The first of an event's kind, description and payload (as compact
/// JSON) that is over its limit.
pub fn text_sizes(
    kind: &str,
    description: Option<&str>,
    payload: &serde_json::Value,
) -> Option<EventProblem> {
    let too_long = |field: TextField, len: usize| {
        (len > field.max()).then_some(EventProblem::TextTooLong { field, len })
    };
    too_long(TextField::Kind, kind.len())
        .or_else(|| too_long(TextField::Description, description.map_or(0, str::len)))
        .or_else(|| too_long(TextField::Payload, payload_len(payload)))
}

/// The length of `payload` as compact JSON, counted without building the
/// text.
pub fn payload_len(payload: &serde_json::Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, payload);
    count.0
}

/// A problem with one agent of a list of attendees or group members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentProblem {
    /// An agent id that breaks the agent-id rules.
    Invalid {
        /// Where it is.
        at: Slot,
        /// The id.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// An agent listed a second time in the same list.
    Repeated {
        /// Where the repeat is.
        at: Slot,
        /// The index of its first mention in the same list.
        first: usize,
        /// The agent.
        agent: AgentId,
    },
}

/// One broken rule of a new event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventProblem {
    /// An attendee or group member that is invalid or repeated.
    Agent(AgentProblem),
    /// A quorum larger than the attendee list.
    QuorumTooLarge {
        /// The quorum.
        quorum: usize,
        /// How many attendees there are.
        attendees: usize,
    },
    /// A group's quorum larger than its members.
    GroupQuorumTooLarge {
        /// The group's index.
        group: usize,
        /// The group's name.
        name: String,
        /// The group's quorum.
        quorum: Quorum,
        /// How many members it has.
        members: usize,
    },
    /// A group name that breaks the naming rules.
    GroupName {
        /// The group's index.
        group: usize,
        /// The name.
        name: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A group name used twice.
    DuplicateGroup {
        /// The index of the second group of that name.
        group: usize,
        /// The name.
        name: String,
    },
    /// A group without members.
    EmptyGroup {
        /// The group's index.
        group: usize,
        /// The name.
        name: String,
    },
    /// An event with groups that also lists attendees of its own.
    AttendeesBesideGroups {
        /// The first group's name.
        group: String,
    },
    /// A negative duration.
    NegativeDuration {
        /// The field.
        field: DurationField,
        /// Its value.
        value: Duration,
    },
    /// A duration longer than [`MAX_DURATION_DAYS`] days.
    DurationTooLong {
        /// The field.
        field: DurationField,
        /// Its value.
        value: Duration,
    },
    /// A relative `at` no longer than the countdown: the fire time would
    /// come before the event's start (or at it, for an event that needs
    /// confirmations), so it would be missed the moment it opens.
    RelativeAtTooShort {
        /// The relative `at`.
        offset: Duration,
        /// The countdown length.
        t_minus: Duration,
    },
    /// A notification rule that breaks the rules of [`crate::notification`], or
    /// too many rules.
    Notify {
        /// What is wrong.
        reason: String,
        /// How to fix it.
        help: String,
    },
    /// A text field over its size limit.
    TextTooLong {
        /// The field.
        field: TextField,
        /// Its length in bytes.
        len: usize,
    },
    /// A four-eyes event whose quorum (or a group's) cannot be met without
    /// its requester's confirmation.
    FourEyesQuorum {
        /// The requester.
        requester: AgentId,
        /// The group that cannot meet its quorum (none for a plain event).
        group: Option<String>,
        /// The confirmations needed.
        needed: usize,
        /// The attendees (or members) other than the requester.
        others: usize,
    },
    /// An event firing at its fire time (`on-time`, `lazy`) whose fire time
    /// lies outside every window.
    OutsideWindows {
        /// The fire time.
        fire_time: DateTime<Utc>,
        /// The windows, in one line.
        windows: String,
    },
    /// A fire time that is not after now.
    FireTimePassed {
        /// The fire time.
        fire_time: DateTime<Utc>,
        /// How long before now it is (zero when it is now).
        ago: Duration,
    },
}

impl From<EventProblem> for TMinusError {
    fn from(problem: EventProblem) -> Self {
        match problem {
            EventProblem::Agent(AgentProblem::Invalid { value, reason, .. }) => {
                TMinusError::InvalidAgentId { value, reason }
            }
            EventProblem::Agent(AgentProblem::Repeated { agent, .. }) => {
                TMinusError::DuplicateAttendee { agent: agent.0 }
            }
            EventProblem::QuorumTooLarge { quorum, attendees } => {
                TMinusError::QuorumTooLarge { quorum, attendees }
            }
            EventProblem::GroupQuorumTooLarge {
                name,
                quorum,
                members,
                ..
            } => TMinusError::InvalidGroup {
                group: name,
                reason: format!("quorum {quorum} is larger than its {members} member(s)"),
            },
            EventProblem::GroupName { name, reason, .. } => TMinusError::InvalidGroup {
                group: name,
                reason,
            },
            EventProblem::DuplicateGroup { name, .. } => TMinusError::InvalidGroup {
                group: name,
                reason: "the group is declared twice".into(),
            },
            EventProblem::EmptyGroup { name, .. } => TMinusError::InvalidGroup {
                group: name,
                reason: "the group has no members".into(),
            },
            EventProblem::AttendeesBesideGroups { group } => TMinusError::InvalidGroup {
                group,
                reason: "an event with groups takes its attendees from the groups; \
                         leave the attendee list empty"
                    .into(),
            },
            EventProblem::NegativeDuration { field, value } => TMinusError::InvalidDuration {
                value: format!("{field} = -{}", format_duration(-value)),
                reason: "durations cannot be negative".into(),
            },
            EventProblem::DurationTooLong { field, value } => TMinusError::InvalidDuration {
                value: format!("{field} = {}", format_duration(value)),
                reason: format!("it is longer than the limit of {MAX_DURATION_DAYS} days"),
            },
            EventProblem::RelativeAtTooShort { offset, t_minus } => TMinusError::InvalidDuration {
                value: format!("at = +{}", format_duration(offset)),
                reason: format!(
                    "a relative time must be longer than its t_minus of {}",
                    format_duration(t_minus)
                ),
            },
            EventProblem::Notify { reason, help } => TMinusError::InvalidNotify { reason, help },
            EventProblem::FourEyesQuorum {
                requester,
                group,
                needed,
                others,
            } => TMinusError::FourEyesQuorum {
                requester,
                group,
                needed,
                others,
            },
            EventProblem::OutsideWindows { fire_time, windows } => {
                TMinusError::OutsideWindows { fire_time, windows }
            }
            EventProblem::FireTimePassed { fire_time, ago } => {
                TMinusError::FireTimePassed { fire_time, ago }
            }
            EventProblem::TextTooLong { field, len } => TMinusError::TextTooLong {
                field: field.as_str(),
                len,
                max: field.max(),
            },
        }
    }
}

/// The agent-id and repeat problems of one list of agents (`group`: the
/// group it belongs to), in list order. A repeat is counted against the
/// valid agents before it.
pub fn agents(list: &[AgentId], group: Option<usize>) -> Vec<AgentProblem> {
    let mut problems = Vec::new();
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (index, agent) in list.iter().enumerate() {
        let at = Slot { group, index };
        if let Err(crate::input::InputError::InvalidAgentId { value, reason }) = agent.validate() {
            problems.push(AgentProblem::Invalid { at, value, reason });
            continue;
        }
        match first.get(agent.as_str()) {
            Some(&first) => problems.push(AgentProblem::Repeated {
                at,
                first,
                agent: agent.clone(),
            }),
            None => {
                first.insert(agent.as_str(), index);
            }
        }
    }
    problems
}

/// The confirmations `quorum` asks of `attendees` attendees, or the problem
/// of a count larger than the list.
pub fn quorum(quorum: Quorum, attendees: usize) -> Result<usize, EventProblem> {
    quorum
        .resolve(attendees)
        .map_err(|_| EventProblem::QuorumTooLarge {
            quorum: quorum.needed(attendees),
            attendees,
        })
}

/// The confirmations group `index` needs, or the problem of a quorum larger
/// than its members.
pub fn group_quorum(index: usize, group: &QuorumGroup) -> Result<usize, EventProblem> {
    group
        .quorum
        .resolve(group.members.len())
        .map_err(|_| EventProblem::GroupQuorumTooLarge {
            group: index,
            name: group.name.clone(),
            quorum: group.quorum,
            members: group.members.len(),
        })
}

/// The problem with group `index`'s name, if any.
pub fn group_name(index: usize, name: &str) -> Option<EventProblem> {
    name_problem(name).map(|reason| EventProblem::GroupName {
        group: index,
        name: name.to_string(),
        reason,
    })
}

/// The problem of group `index` having no members (`members` of them).
pub fn empty_group(index: usize, name: &str, members: usize) -> Option<EventProblem> {
    (members == 0).then(|| EventProblem::EmptyGroup {
        group: index,
        name: name.to_string(),
    })
}

/// Checks quorum groups, group by group (name, repeat, members, quorum),
/// and returns the attendees (every member once, in order of first
/// mention) and the total quorum, or the first problem.
pub fn groups(groups: &[QuorumGroup]) -> Result<(Vec<AgentId>, usize), EventProblem> {
    let mut names = std::collections::HashSet::new();
    let mut seen = std::collections::HashSet::new();
    let mut attendees = Vec::new();
    let mut total = 0;
    for (index, g) in groups.iter().enumerate() {
        if let Some(problem) = group_name(index, &g.name) {
            return Err(problem);
        }
        if !names.insert(g.name.as_str()) {
            return Err(EventProblem::DuplicateGroup {
                group: index,
                name: g.name.clone(),
            });
        }
        if let Some(problem) = empty_group(index, &g.name, g.members.len()) {
            return Err(problem);
        }
        if let Some(problem) = first_invalid(agents(&g.members, Some(index))) {
            return Err(problem);
        }
        total += group_quorum(index, g)?;
        for agent in &g.members {
            if seen.insert(agent) {
                attendees.push(agent.clone());
            }
        }
    }
    Ok((attendees, total))
}

/// The first problem of a list of notification rules: too many, or one
/// that breaks the rules of [`crate::notification`].
pub fn notify(rules: &[NotifyRule]) -> Option<EventProblem> {
    match check_rules(rules) {
        Ok(()) => None,
        Err(TMinusError::InvalidNotify { reason, help }) => {
            Some(EventProblem::Notify { reason, help })
        }
        Err(other) => Some(EventProblem::Notify {
            reason: other.to_string(),
            help: "fix the notification rule".into(),
        }),
    }
}

/// The problem with a duration field, if any.
pub fn duration(field: DurationField, value: Duration) -> Option<EventProblem> {
    if value < Duration::zero() {
        Some(EventProblem::NegativeDuration { field, value })
    } else if value > Duration::days(MAX_DURATION_DAYS) {
        Some(EventProblem::DurationTooLong { field, value })
    } else {
        None
    }
}

/// The problem of a relative `at` of `offset` with a countdown of
/// `t_minus`, for an event needing `quorum` confirmations: its fire time
/// must come after its start (a quorum-0 event may fire at its start).
pub fn relative_at(offset: Duration, t_minus: Duration, quorum: usize) -> Option<EventProblem> {
    (offset < t_minus || (offset == t_minus && quorum > 0))
        .then_some(EventProblem::RelativeAtTooShort { offset, t_minus })
}

/// How long before `now` the fire time of a new event is, when it is not
/// after `now`: such an event could only be missed, so it is refused.
pub fn fire_time_passed(fire: DateTime<Utc>, now: DateTime<Utc>) -> Option<Duration> {
    (fire <= now).then(|| now.signed_duration_since(fire))
}

/// Refuses a new event whose fire time is not after `now`
/// ([`fire_time_passed`]).
pub fn fire_time(fire: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), EventProblem> {
    match fire_time_passed(fire, now) {
        Some(ago) => Err(EventProblem::FireTimePassed {
            fire_time: fire,
            ago,
        }),
        None => Ok(()),
    }
}

/// The fire time of an event at `at` with a countdown of `t_minus`, or the
/// earliest time chrono represents when `at − t_minus` falls out of its
/// range (an absurd countdown, refused by [`duration`] anyway).
pub fn fire_of(at: DateTime<Utc>, t_minus: Duration) -> DateTime<Utc> {
    at.checked_sub_signed(t_minus)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A new event as the rules see it.
#[derive(Debug, Clone, Copy)]
pub struct EventDraft<'a> {
    /// Its own attendees (empty when it has groups).
    pub attendees: &'a [AgentId],
    /// Its quorum (ignored when it has groups).
    pub quorum: Quorum,
    /// Its quorum groups.
    pub groups: &'a [QuorumGroup],
    /// Its countdown length.
    pub t_minus: Duration,
    /// Its cap on deferrals.
    pub max_defer: Option<Duration>,
    /// Its relative `at`, when it starts relative to its opening.
    pub relative_at: Option<Duration>,
    /// Its notification rules.
    pub notify: &'a [NotifyRule],
    /// Who schedules it, when given.
    pub organizer: Option<&'a AgentId>,
    /// Its fire time and the instant it must come after, when both are
    /// known.
    pub fire: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// What a valid draft resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The attendees: its own, or every group member once, in order of
    /// first mention.
    pub attendees: Vec<AgentId>,
    /// The confirmations needed (the groups' total, for groups).
    pub quorum: usize,
}

/// Checks a new event against every rule, in this order: notification
/// rules, organizer, attendees, durations, quorum or groups, relative `at`,
/// fire time. Returns what it resolves to, or the first problem.
pub fn check(draft: &EventDraft<'_>) -> Result<Resolved, EventProblem> {
    if let Some(problem) = notify(draft.notify) {
        return Err(problem);
    }
    if let Some(organizer) = draft.organizer {
        if let Some(problem) = first_invalid(agents(std::slice::from_ref(organizer), None)) {
            return Err(problem);
        }
    }
    if let Some(problem) = first_invalid(agents(draft.attendees, None)) {
        return Err(problem);
    }
    let durations = [
        Some((DurationField::TMinus, draft.t_minus)),
        draft.max_defer.map(|d| (DurationField::MaxDefer, d)),
        draft.relative_at.map(|d| (DurationField::At, d)),
    ];
    for (field, value) in durations.into_iter().flatten() {
        if let Some(problem) = duration(field, value) {
            return Err(problem);
        }
    }
    let resolved = if draft.groups.is_empty() {
        Resolved {
            attendees: draft.attendees.to_vec(),
            quorum: quorum(draft.quorum, draft.attendees.len())?,
        }
    } else {
        if !draft.attendees.is_empty() {
            return Err(EventProblem::AttendeesBesideGroups {
                group: draft.groups[0].name.clone(),
            });
        }
        let (attendees, quorum) = groups(draft.groups)?;
        Resolved { attendees, quorum }
    };
    if let Some(offset) = draft.relative_at {
        if let Some(problem) = relative_at(offset, draft.t_minus, resolved.quorum) {
            return Err(problem);
        }
    }
    if let Some((fire, now)) = draft.fire {
        fire_time(fire, now)?;
    }
    Ok(resolved)
}

/// The first problem of one list: an invalid id before any repeat.
fn first_invalid(problems: Vec<AgentProblem>) -> Option<EventProblem> {
    let invalid = problems
        .iter()
        .position(|p| matches!(p, AgentProblem::Invalid { .. }));
    problems
        .into_iter()
        .nth(invalid.unwrap_or(0))
        .map(EventProblem::Agent)
}

/// The problem of a four-eyes event whose quorum cannot be met without
/// `requester`: the requester's own answer is refused, so every group it
/// belongs to (the attendee list, for a plain event) needs its quorum from
/// the other members.
pub fn four_eyes(
    requester: &AgentId,
    attendees: &[AgentId],
    quorum: Quorum,
    groups: &[QuorumGroup],
) -> Option<EventProblem> {
    if groups.is_empty() {
        let needed = quorum.needed(attendees.len());
        let others = attendees.iter().filter(|a| *a != requester).count();
        return (needed > others).then(|| EventProblem::FourEyesQuorum {
            requester: requester.clone(),
            group: None,
            needed,
            others,
        });
    }
    groups.iter().find_map(|g| {
        let others = g.members.iter().filter(|a| *a != requester).count();
        (g.needed() > others).then(|| EventProblem::FourEyesQuorum {
            requester: requester.clone(),
            group: Some(g.name.clone()),
            needed: g.needed(),
            others,
        })
    })
}

/// The problem of an event that fires at its fire time (`on-time`,
/// `lazy`) while that time lies outside every one of its windows: it could
/// only be missed.
pub fn windows_fire(
    windows: &[crate::gate::Window],
    policy: crate::policy::FirePolicy,
    fire_time: DateTime<Utc>,
) -> Option<EventProblem> {
    let at_fire_time = policy != crate::policy::FirePolicy::Early;
    (at_fire_time && !crate::gate::inside(windows, fire_time)).then(|| {
        EventProblem::OutsideWindows {
            fire_time,
            windows: crate::gate::windows_text(windows).unwrap_or_default(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<AgentId> {
        names.iter().map(|n| AgentId((*n).to_string())).collect()
    }

    #[test]
    fn repeats_count_against_valid_agents_and_keep_list_order() {
        let problems = agents(&ids(&["a", "", "a", "b", "b"]), None);
        assert!(matches!(
            problems[0],
            AgentProblem::Invalid {
                at: Slot { index: 1, .. },
                ..
            }
        ));
        assert!(matches!(
            problems[1],
            AgentProblem::Repeated {
                at: Slot { index: 2, .. },
                first: 0,
                ..
            }
        ));
        assert!(matches!(
            problems[2],
            AgentProblem::Repeated {
                at: Slot { index: 4, .. },
                first: 3,
                ..
            }
        ));
    }

    #[test]
    fn a_fire_time_of_now_has_passed() {
        let now = DateTime::<Utc>::UNIX_EPOCH + Duration::days(1);
        assert_eq!(fire_time_passed(now, now), Some(Duration::zero()));
        assert_eq!(fire_time_passed(now + Duration::milliseconds(1), now), None);
    }

    #[test]
    fn durations_are_bounded_both_ways() {
        assert!(duration(DurationField::TMinus, Duration::zero()).is_none());
        assert!(duration(DurationField::TMinus, Duration::days(MAX_DURATION_DAYS)).is_none());
        assert!(matches!(
            duration(DurationField::MaxDefer, Duration::seconds(-1)),
            Some(EventProblem::NegativeDuration { .. })
        ));
        assert!(matches!(
            duration(DurationField::At, Duration::days(MAX_DURATION_DAYS + 1)),
            Some(EventProblem::DurationTooLong { .. })
        ));
    }

    #[test]
    fn fire_of_never_overflows() {
        let early = DateTime::<Utc>::MIN_UTC;
        assert_eq!(fire_of(early, Duration::days(1)), DateTime::<Utc>::MIN_UTC);
    }
}
