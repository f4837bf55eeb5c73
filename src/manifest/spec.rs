//! The manifest format (docs/manifest.md) as serde types.
//!
//! One YAML document is one [`CampaignSpec`]. Every value the validator may
//! complain about is wrapped in [`Spanned`], so a diagnostic can point at the
//! exact YAML node. Values with their own syntax (durations, times, quorums,
//! fire policies) are kept as written ([`Scalar`]) and checked by
//! [`super::validate()`], which reports every problem instead of the first.
//!
//! The JSON Schema in `schemas/campaign.schema.json` is generated from these
//! types (see [`super::schema`]).

use std::borrow::Cow;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// A region of a source file, in **characters** (Unicode scalar values) from
/// the start of the file, as the YAML parser reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// Offset of the first character.
    pub offset: usize,
    /// Length in characters (0 for a mapping, whose start is all we know).
    pub len: usize,
}

impl Span {
    /// The smallest span covering both.
    pub fn join(self, other: Span) -> Span {
        let start = self.offset.min(other.offset);
        let end = (self.offset + self.len).max(other.offset + other.len);
        Span {
            offset: start,
            len: end - start,
        }
    }
}

/// A value with the span of the YAML node it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it was written (for an alias: where the alias was used).
    pub span: Span,
}

impl<T> Spanned<T> {
    /// Wraps a value with a span.
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The YAML library passes the newtype through and spans the value
        // itself; the recovering pass's deserializer answers the name with
        // `(offset, len, value)`.
        struct SpannedVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for SpannedVisitor<T> {
            type Value = Spanned<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Spanned<T>, D::Error> {
                let inner = serde_saphyr::Spanned::<T>::deserialize(d)?;
                let span = inner.referenced.span();
                Ok(Spanned {
                    value: inner.value,
                    span: Span {
                        offset: usize::try_from(span.offset()).unwrap_or(usize::MAX),
                        len: usize::try_from(span.len()).unwrap_or(0),
                    },
                })
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Spanned<T>, A::Error> {
                let missing = || de::Error::custom("a span without its value");
                let offset: u64 = seq.next_element()?.ok_or_else(missing)?;
                let len: u64 = seq.next_element()?.ok_or_else(missing)?;
                let value: T = seq.next_element()?.ok_or_else(missing)?;
                Ok(Spanned {
                    value,
                    span: Span {
                        offset: usize::try_from(offset).unwrap_or(usize::MAX),
                        len: usize::try_from(len).unwrap_or(0),
                    },
                })
            }
        }
        d.deserialize_newtype_struct(
            super::recover::SPANNED,
            SpannedVisitor(std::marker::PhantomData),
        )
    }
}

impl<T: JsonSchema> JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// A scalar kept as written: a string, or a number or boolean in its
/// canonical text (`300` for `t_minus: 300`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar(pub String);

impl Scalar {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(ScalarVisitor)
    }
}

/// Declares a transparent text newtype and its JSON Schema (named
/// `$schema_name`, given as `json_schema!` input).
macro_rules! text_newtype {
    ($(#[$attr:meta])* $name:ident($inner:ty), $schema_name:literal, $schema:tt) => {
        $(#[$attr])*
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                $schema_name.into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

text_newtype!(
    /// A duration: humantime text (`90s`, `1h 30m`) or whole seconds.
    #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
    DurationText(Scalar),
    "Duration",
    {
        "description": "A non-negative duration in humantime syntax (`90s`, `5m`, `1h 30m`, `2days`); a bare integer means seconds.",
        "anyOf": [
            { "type": "string", "pattern": "^\\s*[0-9]", "examples": ["90s", "5m", "1h 30m"] },
            { "type": "integer", "minimum": 0 }
        ]
    }
);

text_newtype!(
    /// A point in time: RFC 3339 with an offset, `now`, or `+DURATION` (relative
    /// to the event's start).
    #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
    TimeText(Scalar),
    "Time",
    {
        "description": "When the event is scheduled: an RFC 3339 time with an offset (`2025-06-06T15:00:00Z`), `now`, or `+DURATION` after the event's start (the campaign's first apply for an event without `needs`, the moment its last need fired otherwise).",
        "type": "string",
        "examples": ["+10m", "2025-06-06T15:00:00Z", "now"]
    }
);

text_newtype!(
    /// A quorum: a whole number of confirmations, `all` or `majority`.
    #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
    QuorumText(Scalar),
    "Quorum",
    {
        "description": "Confirmations needed: a number from 0 to the number of attendees, `all` (default) or `majority` (more than half).",
        "anyOf": [
            { "type": "integer", "minimum": 0 },
            { "type": "string", "enum": ["all", "majority"] }
        ]
    }
);

text_newtype!(
    /// A fire policy: `early`, `on-time` or `lazy`.
    #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
    FireText(Scalar),
    "FirePolicy",
    {
        "description": "`early` (default) fires as soon as quorum holds; `on-time` fires at the fire time if quorum holds then; `lazy` (lazy consensus) fires at the fire time unless someone declined, one decline missing it at once.",
        "type": "string",
        "enum": ["early", "on-time", "lazy"]
    }
);

text_newtype!(
    /// A name (campaign name or event key): `[A-Za-z_][A-Za-z0-9_-]{0,63}`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
    NameText(String),
    "Name",
    {
        "type": "string",
        "pattern": NAME_PATTERN
    }
);

text_newtype!(
    /// An agent id: 1–128 characters without whitespace or control characters.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
    AgentText(String),
    "AgentId",
    {
        "description": "An agent id: 1-128 characters without whitespace or control characters.",
        "type": "string",
        "minLength": 1,
        "maxLength": 128,
        "pattern": "^[^\\s\\p{Cc}]+$"
    }
);

text_newtype!(
    /// A notification trigger.
    #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
    TriggerText(String),
    "NotifyTrigger",
    {
        "description": "What sets a notification off: a transition (`opened`, `fired`, `missed`, `cancelled`), an answer (`confirmed`, `deferred`, `declined`), `reminder` (needs `before`), `breakglass` (the event was fired by a break-glass; rules on `fired` go off too), or `escalated` (an escalation step added attendees).",
        "type": "string",
        "enum": ["opened", "fired", "missed", "cancelled", "confirmed", "deferred", "declined", "reminder", "breakglass", "escalated"]
    }
);

text_newtype!(
    /// A webhook body format: `json` or `slack`.
    #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
    FormatText(String),
    "NotifyFormat",
    {
        "description": "`json` (default): the delivery's JSON payload; `slack`: a Slack message (`text` and Block Kit `blocks` with Confirm, Defer and Decline buttons and the event's link).",
        "type": "string",
        "enum": ["json", "slack"]
    }
);

/// `before`: one duration or a list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum BeforeText {
    /// One duration.
    One(DurationText),
    /// Several.
    Many(Vec<DurationText>),
}

impl BeforeText {
    /// The durations as written.
    pub fn items(&self) -> Vec<&DurationText> {
        match self {
            BeforeText::One(d) => vec![d],
            BeforeText::Many(list) => list.iter().collect(),
        }
    }
}

/// A notification rule: when (`on`) and where (`exec` or `webhook`).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifySpec {
    /// What sets it off.
    pub on: Spanned<Vec<Spanned<TriggerText>>>,
    /// A command to run: the program (relative to the manifest's directory
    /// when it holds a `/`) and its arguments. The delivery's JSON comes on
    /// stdin.
    #[serde(default)]
    pub exec: Option<Spanned<Vec<Spanned<String>>>>,
    /// An `http://` or `https://` URL to POST to; no `${VAR}` (put secrets
    /// in `headers`).
    #[serde(default)]
    pub webhook: Option<Spanned<String>>,
    /// The webhook's body (default `json`).
    #[serde(default)]
    pub format: Option<Spanned<FormatText>>,
    /// Extra webhook headers; `${VAR}` in a value is read from the
    /// environment at delivery.
    #[serde(default)]
    pub headers: Option<Spanned<std::collections::BTreeMap<String, String>>>,
    /// For `reminder`: how long before the fire time (one or a list).
    #[serde(default)]
    pub before: Option<Spanned<BeforeText>>,
    /// How long one attempt may take (default 30s for exec, 10s for webhooks).
    #[serde(default)]
    pub timeout: Option<Spanned<DurationText>>,
    /// Attempts before giving up (default 8), with exponential backoff from
    /// 1 s capped at 10 min.
    #[serde(default)]
    pub retry: Option<Spanned<u32>>,
    /// For `format: slack`: how long the message's Defer button defers the
    /// event (default 15m; within the event's `max_defer`).
    #[serde(default)]
    pub defer: Option<Spanned<DurationText>>,
}

/// The naming rule as a regular expression.
pub const NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_-]{0,63}$";

/// One campaign: one YAML document of a manifest file.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "t-minus campaign manifest",
    description = "A campaign of countdown events chained by `needs`. One YAML document per campaign; the format is described in docs/manifest.md."
)]
pub struct CampaignSpec {
    /// The campaign's unique name.
    pub campaign: Spanned<NameText>,
    /// Free text.
    #[serde(default)]
    pub description: Option<Spanned<String>>,
    /// Values applied to every event that does not set its own.
    #[serde(default)]
    pub defaults: Option<Spanned<DefaultsSpec>>,
    /// Notification rules for every event of the campaign.
    #[serde(default)]
    pub notify: Option<Spanned<Vec<Spanned<NotifySpec>>>>,
    /// The keys that must sign every answer to the campaign's events.
    #[serde(default)]
    pub signers: Option<Spanned<SignersSpec>>,
    /// Who requests the campaign's events (their organizer), unless an
    /// event names its own. Where the applying identity is authenticated
    /// (a token of `t-minus serve`), it is the requester of a four-eyes
    /// event that names none, and naming another agent is refused.
    #[serde(default)]
    pub requested_by: Option<Spanned<AgentText>>,
    /// Agents who may fire any of the campaign's events at once with a
    /// reason (`t-minus breakglass`); an event's own list adds to it.
    #[serde(default)]
    pub breakglass: Option<Spanned<Vec<Spanned<AgentText>>>>,
    /// Makes this document a template for GitHub deployments (see
    /// docs/github.md): it is not applied as a campaign; `t-minus serve`
    /// instantiates it, as a campaign of its own, for every deployment to
    /// this repository and environment that asks for a review.
    #[serde(default)]
    pub github: Option<Spanned<GithubSpec>>,
    /// The events, by name; the order of the keys is kept.
    #[serde(default)]
    pub events: EventMap,
}

/// Which GitHub deployments a template gates.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GithubSpec {
    /// The repository, `owner/name` (compared without regard to case).
    #[schemars(regex(pattern = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"))]
    pub repository: Spanned<String>,
    /// The environment whose custom deployment protection rule is this
    /// GitHub App (compared without regard to case, as GitHub does).
    #[schemars(length(min = 1, max = 255))]
    pub environment: Spanned<String>,
}

/// Defaults for the events of a campaign.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DefaultsSpec {
    /// Default kind.
    #[serde(default)]
    pub kind: Option<Spanned<String>>,
    /// Default countdown length.
    #[serde(default)]
    pub t_minus: Option<Spanned<DurationText>>,
    /// Default quorum.
    #[serde(default)]
    pub quorum: Option<Spanned<QuorumText>>,
    /// Default fire policy.
    #[serde(default)]
    pub fire: Option<Spanned<FireText>>,
    /// Default cap on the total of all deferrals.
    #[serde(default)]
    pub max_defer: Option<Spanned<DurationText>>,
    /// Default attendees.
    #[serde(default)]
    pub attendees: Option<Spanned<Vec<Spanned<AgentText>>>>,
    /// Default four eyes.
    #[serde(default)]
    pub four_eyes: Option<Spanned<bool>>,
    /// Default windows.
    #[serde(default)]
    pub window: Option<Spanned<WindowSpec>>,
}

/// One event of a campaign.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// `meeting`, `checkpoint` (default), `review`, `deploy`, or any other word.
    #[serde(default)]
    pub kind: Option<Spanned<String>>,
    /// Free text.
    #[serde(default)]
    pub description: Option<Spanned<String>>,
    /// When the event is scheduled (required).
    pub at: Spanned<TimeText>,
    /// Countdown length: confirmations are due `t_minus` before `at` (default `0s`).
    #[serde(default)]
    pub t_minus: Option<Spanned<DurationText>>,
    /// Confirmations needed (default `all`): one quorum, or with grouped
    /// attendees a map of group → quorum.
    #[serde(default)]
    pub quorum: Option<Spanned<QuorumSpec>>,
    /// When it fires once quorum holds (default `early`).
    #[serde(default)]
    pub fire: Option<Spanned<FireText>>,
    /// Cap on the total of all deferrals.
    #[serde(default)]
    pub max_defer: Option<Spanned<DurationText>>,
    /// The agents who answer: a list, or a map of group → list.
    #[serde(default)]
    pub attendees: Option<Spanned<AttendeesSpec>>,
    /// Events of this campaign that must fire before this one opens.
    #[serde(default)]
    pub needs: Option<Spanned<Vec<Spanned<NameText>>>>,
    /// Arbitrary data, returned untouched.
    #[serde(default)]
    pub payload: Option<serde_json::Value>,
    /// Notification rules, added to the campaign's.
    #[serde(default)]
    pub notify: Option<Spanned<Vec<Spanned<NotifySpec>>>>,
    /// Who requests the event (its organizer; default: the campaign's
    /// `requested_by`).
    #[serde(default)]
    pub requested_by: Option<Spanned<AgentText>>,
    /// Four eyes (default `false`): the requester's own answer is refused,
    /// and the quorum must be reachable without it.
    #[serde(default)]
    pub four_eyes: Option<Spanned<bool>>,
    /// The event fires only inside one of these windows.
    #[serde(default)]
    pub window: Option<Spanned<WindowSpec>>,
    /// Agents who may fire the event at once with a reason, added to the
    /// campaign's list.
    #[serde(default)]
    pub breakglass: Option<Spanned<Vec<Spanned<AgentText>>>>,
    /// Attendees added while the event waits for quorum: steps, each due
    /// `after` the event opened.
    #[serde(default)]
    pub escalate: Option<Spanned<Vec<Spanned<EscalateStepSpec>>>>,
}

text_newtype!(
    /// A time window: `DAYS HH:MM-HH:MM ZONE`.
    #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
    WindowText(String),
    "Window",
    {
        "description": "A time window: days (`Mon-Fri`, `Mon,Wed`, `daily`), local hours `HH:MM-HH:MM` (the end after the start; `24:00` is the end of the day) and an IANA time zone, e.g. `Mon-Fri 09:00-17:00 Europe/Berlin`.",
        "type": "string",
        "examples": ["Mon-Fri 09:00-17:00 Europe/Berlin", "daily 00:00-06:00 UTC"]
    }
);

/// `window`: one window or a list.
#[derive(Debug, Clone, PartialEq)]
pub enum WindowSpec {
    /// One window (its span is the field's).
    One(String),
    /// Several: the event fires inside any of them.
    Many(Vec<Spanned<WindowText>>),
}

impl WindowSpec {
    /// The windows as written, each with its span (`span`, the field's,
    /// for a single window).
    pub fn items(&self, span: Span) -> Vec<(&str, Span)> {
        match self {
            WindowSpec::One(w) => vec![(w.as_str(), span)],
            WindowSpec::Many(list) => list.iter().map(|w| (w.value.0.as_str(), w.span)).collect(),
        }
    }
}

impl<'de> Deserialize<'de> for WindowSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct WindowVisitor;
        impl<'de> Visitor<'de> for WindowVisitor {
            type Value = WindowSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a window (`Mon-Fri 09:00-17:00 Europe/Berlin`) or a list of windows")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<WindowSpec, E> {
                Ok(WindowSpec::One(v.to_string()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<WindowSpec, A::Error> {
                let mut windows = Vec::new();
                while let Some(w) = seq.next_element::<Spanned<WindowText>>()? {
                    windows.push(w);
                }
                Ok(WindowSpec::Many(windows))
            }
        }
        d.deserialize_any(WindowVisitor)
    }
}

impl JsonSchema for WindowSpec {
    fn schema_name() -> Cow<'static, str> {
        "Windows".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let one = generator.subschema_for::<WindowText>();
        json_schema!({
            "description": "When the event may fire: one time window or a list (it fires only inside one of them). An early event whose quorum holds outside every window waits for the next opening before its fire time; an on-time or lazy event's fire time must lie inside one.",
            "anyOf": [
                one.clone(),
                { "type": "array", "items": one }
            ]
        })
    }
}

/// One step of an event's `escalate`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalateStepSpec {
    /// How long after the event opened (without quorum) the step is due.
    pub after: Spanned<DurationText>,
    /// Who joins: a list of agents, or, for attendees in groups, a map of
    /// group → agents.
    pub add: Spanned<AttendeesSpec>,
}

/// An event's `quorum`: one value, or one per group.
#[derive(Debug, Clone, PartialEq)]
pub enum QuorumSpec {
    /// `quorum: 2` (with groups: applied to every group).
    One(QuorumText),
    /// `quorum: { ops: 2, security: 1 }`, in the order written.
    PerGroup(Vec<(Spanned<String>, Spanned<QuorumText>)>),
}

impl<'de> Deserialize<'de> for QuorumSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct QuorumVisitor;
        impl<'de> Visitor<'de> for QuorumVisitor {
            type Value = QuorumSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quorum (a number, `all` or `majority`) or a mapping from group names to quorums")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<QuorumSpec, E> {
                Ok(QuorumSpec::One(QuorumText(Scalar(v.to_string()))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<QuorumSpec, E> {
                Ok(QuorumSpec::One(QuorumText(Scalar(v.to_string()))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<QuorumSpec, E> {
                Ok(QuorumSpec::One(QuorumText(Scalar(v.to_string()))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<QuorumSpec, E> {
                Ok(QuorumSpec::One(QuorumText(Scalar(v.to_string()))))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<QuorumSpec, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    entries.push((key, map.next_value::<Spanned<QuorumText>>()?));
                }
                Ok(QuorumSpec::PerGroup(entries))
            }
        }
        d.deserialize_any(QuorumVisitor)
    }
}

impl JsonSchema for QuorumSpec {
    fn schema_name() -> Cow<'static, str> {
        "EventQuorum".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let quorum = generator.subschema_for::<QuorumText>();
        json_schema!({
            "description": "Confirmations needed (default `all`): one quorum, or, with attendees in groups, a map from group names to quorums (a group left out takes the default quorum). One quorum with groups applies to every group.",
            "anyOf": [
                quorum.clone(),
                {
                    "type": "object",
                    "propertyNames": { "pattern": NAME_PATTERN },
                    "additionalProperties": quorum
                }
            ]
        })
    }
}

/// One group of `attendees`: its name and its members, as written.
pub type GroupSpec = (Spanned<String>, Spanned<Vec<Spanned<AgentText>>>);

/// An event's `attendees`: a list, or groups.
#[derive(Debug, Clone, PartialEq)]
pub enum AttendeesSpec {
    /// `attendees: [alice, bob]`.
    List(Vec<Spanned<AgentText>>),
    /// `attendees: { ops: [ops-1, ops-2], security: [sec-1] }`, in the order
    /// written: the event fires when every group meets its quorum.
    Groups(Vec<GroupSpec>),
}

impl<'de> Deserialize<'de> for AttendeesSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AttendeesVisitor;
        impl<'de> Visitor<'de> for AttendeesVisitor {
            type Value = AttendeesSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a list of agent ids or a mapping from group names to lists of agent ids",
                )
            }
            fn visit_unit<E: de::Error>(self) -> Result<AttendeesSpec, E> {
                Ok(AttendeesSpec::List(Vec::new()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<AttendeesSpec, A::Error> {
                let mut agents = Vec::new();
                while let Some(agent) = seq.next_element::<Spanned<AgentText>>()? {
                    agents.push(agent);
                }
                Ok(AttendeesSpec::List(agents))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AttendeesSpec, A::Error> {
                let mut groups = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    groups.push((key, map.next_value::<Spanned<Vec<Spanned<AgentText>>>>()?));
                }
                Ok(AttendeesSpec::Groups(groups))
            }
        }
        d.deserialize_any(AttendeesVisitor)
    }
}

impl AttendeesSpec {
    /// How many agent entries it holds (over all groups).
    pub fn len(&self) -> usize {
        match self {
            AttendeesSpec::List(l) => l.len(),
            AttendeesSpec::Groups(g) => g.iter().map(|(_, l)| 1 + l.value.len()).sum(),
        }
    }

    /// Whether it holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl JsonSchema for AttendeesSpec {
    fn schema_name() -> Cow<'static, str> {
        "Attendees".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let list = generator.subschema_for::<Vec<AgentText>>();
        json_schema!({
            "description": "The agents who answer, each once: a list, or a map from group names to lists (the event fires when every group meets its quorum; an agent may be in several groups).",
            "anyOf": [
                list.clone(),
                {
                    "type": "object",
                    "propertyNames": { "pattern": NAME_PATTERN },
                    "additionalProperties": list
                }
            ]
        })
    }
}

/// A campaign's `signers`: a path to an OpenSSH `allowed_signers` file
/// (relative to the manifest), or a map from agents to public keys.
#[derive(Debug, Clone, PartialEq)]
pub enum SignersSpec {
    /// `signers: ./allowed_signers`.
    File(String),
    /// `signers: { alice: "ssh-ed25519 AAAA… alice@laptop" }`, in the order
    /// written.
    Inline(Vec<(Spanned<String>, Spanned<String>)>),
}

impl<'de> Deserialize<'de> for SignersSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SignersVisitor;
        impl<'de> Visitor<'de> for SignersVisitor {
            type Value = SignersSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a path to an allowed_signers file or a mapping from agent ids to public keys",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SignersSpec, E> {
                Ok(SignersSpec::File(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SignersSpec, A::Error> {
                let mut keys = Vec::new();
                while let Some(agent) = map.next_key::<Spanned<String>>()? {
                    keys.push((agent, map.next_value::<Spanned<String>>()?));
                }
                Ok(SignersSpec::Inline(keys))
            }
        }
        d.deserialize_any(SignersVisitor)
    }
}

impl JsonSchema for SignersSpec {
    fn schema_name() -> Cow<'static, str> {
        "Signers".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "The keys that must sign every answer: a path to an OpenSSH allowed_signers file (relative to the manifest), or a map from agent ids to public key lines (`ssh-ed25519 AAAA… comment`) or pinned passkeys (`webauthn:CREDENTIAL_ID`, the credential id in base64url).",
            "anyOf": [
                { "type": "string" },
                {
                    "type": "object",
                    "additionalProperties": { "type": "string" }
                }
            ]
        })
    }
}

/// The `events` mapping, in the order written. Duplicate keys are refused by
/// the parser.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventMap(pub Vec<(Spanned<NameText>, Spanned<EventSpec>)>);

impl<'de> Deserialize<'de> for EventMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = EventMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping from event names to events")
            }
            fn visit_unit<E: de::Error>(self) -> Result<EventMap, E> {
                Ok(EventMap::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EventMap, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<NameText>>()? {
                    let value = map.next_value::<Spanned<EventSpec>>()?;
                    entries.push((key, value));
                }
                Ok(EventMap(entries))
            }
        }
        d.deserialize_map(MapVisitor)
    }
}

impl JsonSchema for EventMap {
    fn schema_name() -> Cow<'static, str> {
        "Events".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let event = generator.subschema_for::<EventSpec>();
        json_schema!({
            "description": "The events, by name (`[A-Za-z_][A-Za-z0-9_-]{0,63}`); the order of the keys is kept.",
            "type": "object",
            "propertyNames": { "pattern": NAME_PATTERN },
            "additionalProperties": event
        })
    }
}
