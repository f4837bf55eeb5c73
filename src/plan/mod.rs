//! Plan and apply: compare the desired state of the manifests with
//! the store, Terraform style, and write the difference in one transaction.
//!
//! - A campaign is identified by name, an event by (campaign, key); event
//!   UUIDs never change.
//! - [`crate::Engine::plan`] computes a [`Plan`]: `+` create, `~` update
//!   (field by field, old → new), `-` remove. Changing an event that is
//!   already final is an error pointing at the field. Removing an attendee
//!   who already answered is allowed and called out in the plan's notes.
//! - Campaigns in the store but absent from the manifests are left alone
//!   unless [`PlanOptions::prune`] is set; then the manifest-managed ones are
//!   removed.
//! - A plan carries a [`Fingerprint`] of the state it was computed against;
//!   [`crate::Engine::apply_plan`] refuses a stale one. Plans serialize to
//!   JSON ([`Plan::to_json`], [`Plan::from_json`]) for `plan --out FILE`.
//! - [`crate::Engine::apply_manifests`] plans and applies in one transaction
//!   (`apply PATH…`).
//!
//! Counting: the summary line counts the `+`, `~` and `-` lines — each
//! campaign created or removed (or whose own fields change) and each event.

mod compute;
mod render;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use miette::Diagnostic;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::error::TMinusError;
pub use crate::manifest::Field;
use crate::manifest::{DesiredEvent, Diagnostics};

pub(crate) use compute::{compute, fingerprint};

/// The version of the plan file format written by this build.
pub const PLAN_FORMAT: u32 = 1;

/// What an apply did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApplyReport {
    /// The counts of the plan that was applied.
    pub counts: PlanCounts,
    /// The campaigns written (created or updated), with their ids.
    pub campaigns: Vec<AppliedCampaign>,
}

/// A campaign an apply wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AppliedCampaign {
    /// Name.
    pub name: String,
    /// Id.
    pub id: Uuid,
    /// Ids of its events created by this apply, by key.
    pub created: Vec<(String, Uuid)>,
}

/// Options of [`crate::Engine::plan`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Also remove manifest-managed campaigns that no manifest declares.
    pub prune: bool,
    /// The time to plan at; the engine's clock when `None`.
    pub now: Option<DateTime<Utc>>,
}

/// What happens to a campaign or an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// `+` create.
    Create,
    /// `~` update in place.
    Update,
    /// `-` remove.
    Delete,
    /// Nothing to do for the thing itself (a campaign whose events change).
    Keep,
}

impl Action {
    /// `+`, `~`, `-` or a space.
    pub fn symbol(self) -> char {
        match self {
            Action::Create => '+',
            Action::Update => '~',
            Action::Delete => '-',
            Action::Keep => ' ',
        }
    }
}

/// What one plan line changes: a field of an event or a campaign, with the
/// group for one group's quorum or members. Displays (and is saved) as its
/// manifest name: `t_minus`, `quorum`, `quorum.ops`, `attendees.security`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PlanField {
    /// `kind`.
    Kind,
    /// `description` (of an event or a campaign).
    Description,
    /// `at`.
    At,
    /// `t_minus`.
    TMinus,
    /// `quorum`, or one group's (`quorum.ops`).
    Quorum(Option<String>),
    /// `fire`.
    Fire,
    /// `max_defer`.
    MaxDefer,
    /// `attendees`, or one group's members (`attendees.ops`).
    Attendees(Option<String>),
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
    /// A campaign's `signers`: its key set, by digest.
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

impl PlanField {
    /// The manifest field it changes (where it is written, and the order of
    /// an event's changes).
    pub fn field(&self) -> Field {
        match self {
            PlanField::Kind => Field::Kind,
            PlanField::Description => Field::Description,
            PlanField::At => Field::At,
            PlanField::TMinus => Field::TMinus,
            PlanField::Quorum(_) => Field::Quorum,
            PlanField::Fire => Field::Fire,
            PlanField::MaxDefer => Field::MaxDefer,
            PlanField::Attendees(_) => Field::Attendees,
            PlanField::Needs => Field::Needs,
            PlanField::Payload => Field::Payload,
            PlanField::Notify => Field::Notify,
            PlanField::Escalate => Field::Escalate,
            PlanField::Managed => Field::Managed,
            PlanField::Signers => Field::Signers,
            PlanField::RequestedBy => Field::RequestedBy,
            PlanField::FourEyes => Field::FourEyes,
            PlanField::Window => Field::Window,
            PlanField::Breakglass => Field::Breakglass,
        }
    }

    /// The group of a group's quorum or members.
    pub fn group(&self) -> Option<&str> {
        match self {
            PlanField::Quorum(group) | PlanField::Attendees(group) => group.as_deref(),
            _ => None,
        }
    }

    /// Reads a name as [`PlanField`]'s `Display` writes it; `None` for an
    /// unknown field, or a group on a field that has none.
    pub fn parse(name: &str) -> Option<PlanField> {
        let (field, group) = match name.split_once('.') {
            Some((field, group)) => (field, Some(group.to_string())),
            None => (name, None),
        };
        let plain = |f: PlanField| group.is_none().then_some(f);
        match field {
            "quorum" => Some(PlanField::Quorum(group)),
            "attendees" => Some(PlanField::Attendees(group)),
            "kind" => plain(PlanField::Kind),
            "description" => plain(PlanField::Description),
            "at" => plain(PlanField::At),
            "t_minus" => plain(PlanField::TMinus),
            "fire" => plain(PlanField::Fire),
            "max_defer" => plain(PlanField::MaxDefer),
            "needs" => plain(PlanField::Needs),
            "payload" => plain(PlanField::Payload),
            "notify" => plain(PlanField::Notify),
            "escalate" => plain(PlanField::Escalate),
            "managed" => plain(PlanField::Managed),
            "signers" => plain(PlanField::Signers),
            "requested_by" => plain(PlanField::RequestedBy),
            "four_eyes" => plain(PlanField::FourEyes),
            "window" => plain(PlanField::Window),
            "breakglass" => plain(PlanField::Breakglass),
            _ => None,
        }
    }
}

impl std::fmt::Display for PlanField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.group() {
            Some(group) => write!(f, "{}.{group}", self.field()),
            None => f.write_str(self.field().as_str()),
        }
    }
}

/// One changed field and its old and new values as text (`None`: not set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(into = "FieldChangeRepr", try_from = "FieldChangeRepr")]
pub struct FieldChange {
    /// What changes: `at`, `quorum`, `quorum.ops`, `attendees.security`, …
    pub field: PlanField,
    /// The stored value.
    pub old: Option<String>,
    /// The manifest's value.
    pub new: Option<String>,
}

impl FieldChange {
    /// The changed field's name as plans show it: `quorum`, or `quorum.ops`
    /// for one group's.
    pub fn name(&self) -> String {
        self.field.to_string()
    }
}

impl std::fmt::Display for FieldChange {
    /// `quorum.ops: 2 → 3`, or `attendees.security: sec-3` for one member
    /// who joins or leaves (the side that is set says which).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use compute::show;
        match (&self.field, &self.old, &self.new) {
            (PlanField::Attendees(_), None, Some(member))
            | (PlanField::Attendees(_), Some(member), None) => {
                write!(f, "{}: {member}", self.field)
            }
            _ => write!(
                f,
                "{}: {} → {}",
                self.field,
                show(&self.old),
                show(&self.new)
            ),
        }
    }
}

impl FieldChange {
    /// `+` for a member who joins, `-` for one who leaves, `~` for any
    /// other change.
    pub fn symbol(&self) -> char {
        match (&self.field, &self.old, &self.new) {
            (PlanField::Attendees(_), None, Some(_)) => '+',
            (PlanField::Attendees(_), Some(_), None) => '-',
            _ => '~',
        }
    }
}

/// A [`FieldChange`] as plan files and JSON spell it: `field` holds the
/// name with its group (`quorum.ops`).
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
struct FieldChangeRepr {
    field: String,
    old: Option<String>,
    new: Option<String>,
}

impl From<FieldChange> for FieldChangeRepr {
    fn from(c: FieldChange) -> Self {
        FieldChangeRepr {
            field: c.name(),
            old: c.old,
            new: c.new,
        }
    }
}

impl TryFrom<FieldChangeRepr> for FieldChange {
    type Error = String;
    fn try_from(r: FieldChangeRepr) -> Result<Self, String> {
        let field = PlanField::parse(&r.field)
            .ok_or_else(|| format!("unknown plan field `{}`", r.field))?;
        Ok(FieldChange {
            field,
            old: r.old,
            new: r.new,
        })
    }
}

/// What happens to one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EventPlan {
    /// Its key in the campaign.
    pub key: String,
    /// Its id, for existing events.
    pub id: Option<Uuid>,
    /// What happens.
    pub action: Action,
    /// The changed fields (updates only).
    pub changes: Vec<FieldChange>,
    /// How many confirmations the update sends back to `pending` because it
    /// changes the event's content digest (kind, description, payload, or
    /// the notification rules that act when it fires or is missed).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resets: usize,
    /// Things worth knowing, e.g. an answered attendee being removed.
    pub notes: Vec<String>,
    /// The event as the manifest wants it (creates and updates), shared
    /// with the validated manifests it came from.
    pub desired: Option<Arc<DesiredEvent>>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What happens to one campaign and its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CampaignPlan {
    /// Its name.
    pub name: String,
    /// Its id, for an existing campaign.
    pub id: Option<Uuid>,
    /// What happens to the campaign itself.
    pub action: Action,
    /// Its own changed fields (`description`, `managed`).
    pub changes: Vec<FieldChange>,
    /// The description the manifest wants.
    pub description: Option<String>,
    /// The key set the manifest wants, as canonical `allowed_signers` text
    /// (`None`: answers need no signature).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signers: Option<String>,
    /// The changed events, in manifest order, removals last.
    pub events: Vec<EventPlan>,
    /// Things worth knowing about the campaign.
    pub notes: Vec<String>,
}

/// The state a plan was computed against: for every campaign the plan looks
/// at, its id and revision (bumped by every change to it or its events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Fingerprint {
    /// Campaign name, id and revision; id and revision are `None` for a
    /// campaign that did not exist.
    pub campaigns: Vec<CampaignVersion>,
    /// A digest of `campaigns`, for a quick look.
    pub digest: String,
}

/// One campaign's identity and revision in a [`Fingerprint`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CampaignVersion {
    /// Name.
    pub name: String,
    /// Id, if it exists.
    pub id: Option<Uuid>,
    /// Revision, if it exists.
    pub revision: Option<i64>,
    /// Whether a manifest declares it (`false`: a managed campaign looked at
    /// only because of `--prune`).
    pub declared: bool,
}

/// Counts of the plan's `+`, `~` and `-` lines.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct PlanCounts {
    /// Campaigns and events created.
    pub add: usize,
    /// Campaigns and events updated.
    pub change: usize,
    /// Campaigns and events removed.
    pub destroy: usize,
}

/// A plan: what `apply` would do. Serialize it with [`Plan::to_json`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Marks a plan file and its format version ([`PLAN_FORMAT`]).
    pub t_minus_plan: u32,
    /// When it was computed.
    pub created_at: DateTime<Utc>,
    /// Whether it prunes campaigns no manifest declares.
    pub prune: bool,
    /// The state it was computed against.
    pub fingerprint: Fingerprint,
    /// The counts of the summary line.
    pub counts: PlanCounts,
    /// The campaigns with something to do or to say, in manifest order,
    /// pruned ones last.
    pub campaigns: Vec<CampaignPlan>,
}

impl Plan {
    /// Whether applying it would change nothing.
    pub fn is_empty(&self) -> bool {
        self.counts == PlanCounts::default()
    }

    /// `Plan: 2 to add, 1 to change, 0 to destroy.` or `No changes.`
    pub fn summary_line(&self) -> String {
        if self.is_empty() {
            "No changes.".into()
        } else {
            format!(
                "Plan: {} to add, {} to change, {} to destroy.",
                self.counts.add, self.counts.change, self.counts.destroy
            )
        }
    }

    /// The human rendering: one `+`/`~`/`-` line per campaign and event, each
    /// changed field as `old → new`, notes, then the summary line.
    pub fn render(&self) -> String {
        render::human(self)
    }

    /// The plan as pretty JSON: the `plan --json` output and the `plan --out`
    /// file format.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads a plan saved with [`Plan::to_json`]: a JSON object whose first
    /// member is the `t_minus_plan` format version.
    ///
    /// The version is checked before anything else is read, and the rest is
    /// read straight into the plan's types (unknown members are errors), so a
    /// huge file that is not a plan is refused at once, without building it
    /// up in memory.
    pub fn from_json(text: &str) -> Result<Plan, ManifestError> {
        match leading_version(text) {
            Some(Some(v)) if v == u64::from(PLAN_FORMAT) => {}
            Some(Some(v)) => {
                return Err(ManifestError::PlanFile {
                    reason: format!(
                        "it has format version {v}; this build reads version {PLAN_FORMAT}"
                    ),
                })
            }
            Some(None) => {
                return Err(ManifestError::PlanFile {
                    reason: "its `t_minus_plan` format version is not a whole number".into(),
                })
            }
            None => {
                return Err(ManifestError::PlanFile {
                    reason: "it does not start with a `t_minus_plan` version field".into(),
                })
            }
        }
        let plan: Plan = serde_json::from_str(text).map_err(|e| ManifestError::PlanFile {
            reason: e.to_string(),
        })?;
        plan.check_contents()
            .map_err(|reason| ManifestError::PlanFile { reason })?;
        Ok(plan)
    }

    /// Checks what a plan file says it will write against the rules
    /// `validate` enforces for manifests, since a file may have been edited
    /// by hand: names, needs, and the rules of every new event
    /// ([`crate::event_check`]).
    fn check_contents(&self) -> Result<(), String> {
        use crate::name::name_problem;
        for c in &self.campaigns {
            if let Some(reason) = name_problem(&c.name) {
                return Err(format!("invalid campaign name {:?}: {reason}", c.name));
            }
            for e in &c.events {
                let at = format!("{}/{}", c.name, e.key);
                if let Some(reason) = name_problem(&e.key) {
                    return Err(format!("invalid event name {:?}: {reason}", e.key));
                }
                let Some(d) = &e.desired else { continue };
                if d.key != e.key {
                    return Err(format!("{at}: its desired event is named {:?}", d.key));
                }
                let resolved = crate::event_check::check(&d.draft(None))
                    .map_err(|problem| format!("{at}: {}", TMinusError::from(problem)))?;
                if resolved.attendees != d.attendees {
                    return Err(format!(
                        "{at}: its attendees are not the members of its groups"
                    ));
                }
                for need in &d.needs {
                    if name_problem(need).is_some() || need == &e.key {
                        return Err(format!("{at}: invalid need {need:?}"));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether `text` looks like a saved plan (a JSON object whose first member
/// is `t_minus_plan`, as [`Plan::to_json`] writes it) rather than a
/// manifest: what `apply PATH|PLANFILE` uses to tell them apart. Looks at
/// the start of the text only.
pub fn is_plan_file(text: &str) -> bool {
    leading_version(text).is_some()
}

/// The value of `t_minus_plan` when it is the first member of the JSON
/// object `text` (`Some(None)`: not a whole number), read without looking
/// any further; `None` when the text does not start that way.
fn leading_version(text: &str) -> Option<Option<u64>> {
    let rest = text.trim_start().strip_prefix('{')?.trim_start();
    let rest = rest
        .strip_prefix("\"t_minus_plan\"")?
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.')))
        .unwrap_or(rest.len());
    Some(rest[..end].parse::<u64>().ok())
}

/// Why planning or applying failed.
#[derive(Debug, Error, Diagnostic)]
pub enum ManifestError {
    /// Invalid manifests, or changes the store cannot take (a final event
    /// changed, a new event already past): every problem, with spans.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(Diagnostics),

    /// The store failed, or refused an operation.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] TMinusError),

    /// The state changed since the plan was computed.
    #[error("the plan is stale: the store changed since it was computed ({})", changes.join("; "))]
    #[diagnostic(
        code(t_minus::plan::stale),
        help("nothing was applied; plan again and review the new plan")
    )]
    StalePlan {
        /// What changed, per campaign.
        changes: Vec<String>,
    },

    /// `plan --out FILE` names the store itself (or one of its WAL files):
    /// writing the plan there would destroy the store.
    #[error("cannot save the plan to {path}: it is the store")]
    #[diagnostic(
        code(t_minus::plan::out),
        help("nothing was written; save the plan to another file, e.g. `plan.json`")
    )]
    PlanOutIsStore {
        /// The path given to `--out`.
        path: String,
    },

    /// A file that is not a readable plan.
    #[error("not a t-minus plan file: {reason}")]
    #[diagnostic(
        code(t_minus::plan::file),
        help("give a plan file saved from a computed plan")
    )]
    PlanFile {
        /// What is wrong.
        reason: String,
    },

    /// `plan --out FILE` could not write the file.
    #[error("cannot write the plan to {}: {reason}", path.display())]
    #[diagnostic(
        code(t_minus::plan::write),
        help("check that the directory exists and is writable, or choose another path")
    )]
    PlanWrite {
        /// The file.
        path: std::path::PathBuf,
        /// What the operating system reported.
        reason: String,
    },
}

impl From<Diagnostics> for ManifestError {
    fn from(d: Diagnostics) -> Self {
        ManifestError::Invalid(d)
    }
}

impl Fingerprint {
    /// What changed in the store between `old` (when a plan was computed)
    /// and `self` (now), one line per campaign.
    pub fn changes_since(&self, old: &Fingerprint) -> Vec<String> {
        let new = self;
        let mut out = Vec::new();
        let find =
            |f: &Fingerprint, name: &str| f.campaigns.iter().find(|c| c.name == name).cloned();
        for o in &old.campaigns {
            match find(new, &o.name) {
                None => out.push(format!("campaign `{}` was removed", o.name)),
                Some(n) if n.id != o.id => match (o.id, n.id) {
                    (None, Some(_)) => out.push(format!("campaign `{}` was created", o.name)),
                    (Some(_), None) => out.push(format!("campaign `{}` was removed", o.name)),
                    _ => out.push(format!("campaign `{}` was replaced", o.name)),
                },
                Some(n) if n.revision != o.revision => out.push(format!(
                    "campaign `{}` changed (revision {} → {})",
                    o.name,
                    o.revision.unwrap_or(0),
                    n.revision.unwrap_or(0)
                )),
                Some(_) => {}
            }
        }
        for n in &new.campaigns {
            if find(old, &n.name).is_none() {
                out.push(format!("managed campaign `{}` appeared", n.name));
            }
        }
        if out.is_empty() {
            out.push("the set of campaigns differs".into());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_field_names_round_trip() {
        for field in [
            PlanField::Kind,
            PlanField::TMinus,
            PlanField::MaxDefer,
            PlanField::Quorum(None),
            PlanField::Quorum(Some("ops".into())),
            PlanField::Attendees(Some("security".into())),
            PlanField::Managed,
            PlanField::Signers,
        ] {
            assert_eq!(PlanField::parse(&field.to_string()), Some(field));
        }
        assert_eq!(
            PlanField::Quorum(Some("ops".into())).to_string(),
            "quorum.ops"
        );
        assert_eq!(
            PlanField::parse("kind.ops"),
            None,
            "only quorum and attendees have groups"
        );
        assert_eq!(PlanField::parse("colour"), None);
    }
}
