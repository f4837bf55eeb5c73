//! Checking parsed manifests and resolving them into the desired state.
//!
//! Every check runs on every document, so one run reports every problem:
//! names, values (durations, times, quorums, fire policies, agent ids),
//! references between events (`needs`), cycles, and duplicate campaigns.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::diagnostics::{DiagnosticCode, Diagnostics, ManifestDiagnostic, SourceFile};
use super::model::{
    DesiredCampaign, DesiredEvent, EventSpans, Field, GithubTemplate, Origin, ValidManifests,
};
use super::parse::Manifests;
use super::spec::{
    AgentText, AttendeesSpec, CampaignSpec, DefaultsSpec, DurationText, EventSpec, FireText,
    GithubSpec, GroupSpec, NotifySpec, QuorumSpec, QuorumText, SignersSpec, Span, Spanned,
};
use crate::agent::AgentId;
use crate::duration::{format_countdown, format_duration, parse_duration};
use crate::error::TMinusError;
use crate::event_check::{self, AgentProblem, EventProblem};
use crate::graph;
use crate::input::InputError;
use crate::kind::EventKind;
use crate::name::name_problem;
use crate::notification::spec::{check_argv, check_headers, check_url, MAX_RULES};
use crate::notification::{Hook, NotifyRule, Trigger, WebhookFormat};
use crate::policy::{FirePolicy, Quorum, QuorumGroup};
use crate::time_spec::{format_time, TimeSpec};
use crate::trust::Signers;

/// Options of [`validate`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidateOptions {
    /// When set, an event with an absolute time whose fire time is at or
    /// before this instant is an error (`t_minus::manifest::fire_time_passed`).
    /// Leave it unset to check the manifests alone; `plan` applies the check
    /// to new events only, since existing ones may well have passed.
    pub now: Option<DateTime<Utc>>,
    /// The authenticated identity applying the manifests (a token's agent
    /// on `t-minus serve`): it is the requester, so a `requested_by` naming
    /// anyone else is an error (`t_minus::manifest::requested_by`), and a
    /// four-eyes event without one is requested by it.
    pub requester: Option<AgentId>,
}

/// Checks parsed manifests. Returns the desired state, or every problem
/// found — the parse problems recorded in `manifests` included.
pub fn validate(
    manifests: &Manifests,
    options: &ValidateOptions,
) -> Result<ValidManifests, Diagnostics> {
    let mut diags = manifests.problems.clone();
    let mut campaigns = Vec::new();
    let mut templates = Vec::new();
    let mut gates: HashMap<(String, String), (usize, Span)> = HashMap::new();
    let mut seen: HashMap<String, (usize, Span)> = HashMap::new();
    for doc in &manifests.documents {
        let source = &manifests.sources[doc.file];
        let mut v = Validator {
            source,
            diags: &mut diags,
            campaign: doc.spec.campaign.value.0.clone(),
            now: options.now,
            requester: options.requester.clone(),
        };
        let campaign = v.campaign(&doc.spec, doc.file);
        let name = &doc.spec.campaign;
        if let Some((file, span)) = seen.get(&name.value.0) {
            let first = &manifests.sources[*file];
            let mut d = ManifestDiagnostic::new(
                DiagnosticCode::DuplicateCampaign,
                format!("campaign `{}` is declared twice", name.value.0),
            )
            .help("campaign names are unique across all manifests; rename one of them");
            d = d.label(first, *span, "first declared here");
            d = d.label(source, name.span, "declared again here");
            if *file != doc.file {
                // miette shows labels of one source only; say where the other is.
                d = ManifestDiagnostic::new(
                    DiagnosticCode::DuplicateCampaign,
                    format!(
                        "campaign `{}` is declared twice (first in {})",
                        name.value.0, first.name
                    ),
                )
                .help("campaign names are unique across all manifests; rename one of them")
                .label(source, name.span, "declared again here");
            }
            diags.push(d);
        } else {
            seen.insert(name.value.0.clone(), (doc.file, name.span));
        }
        let gate = doc
            .spec
            .github
            .as_ref()
            .map(|g| github_gate(source, &mut diags, &doc.spec, g));
        match (campaign, gate) {
            (Some(c), Some(Some((repository, environment, span)))) => {
                let gate = GithubTemplate {
                    repository,
                    environment,
                    span,
                    campaign: c,
                };
                let key = (
                    gate.repository.to_ascii_lowercase(),
                    gate.environment.to_ascii_lowercase(),
                );
                if let Some((file, span)) = gates.get(&key) {
                    let first = &manifests.sources[*file];
                    let mut d = ManifestDiagnostic::new(
                        DiagnosticCode::Github,
                        format!(
                            "two templates gate {} environment `{}` (the first in {})",
                            gate.repository, gate.environment, first.name
                        ),
                    )
                    .help("one template per repository and environment: remove or change one");
                    if *file == doc.file {
                        d = d.label(source, *span, "first gated here");
                    }
                    diags.push(d.label(source, gate.span, "gated again here"));
                } else {
                    gates.insert(key, (doc.file, gate.span));
                    templates.push(gate);
                }
            }
            (Some(c), None) => campaigns.push(c),
            _ => {}
        }
    }
    diags.into_result(ValidManifests {
        campaigns,
        github: templates,
        sources: Arc::new(manifests.sources.clone()),
    })
}

/// Checks a template's `github:` section: its repository, environment
/// and the section's span when valid.
fn github_gate(
    source: &SourceFile,
    diags: &mut Diagnostics,
    spec: &CampaignSpec,
    g: &Spanned<GithubSpec>,
) -> Option<(String, String, Span)> {
    let before = diags.len();
    let mut error = |message: String, span: Span, label: &str, help: &str| {
        diags.push(
            ManifestDiagnostic::new(DiagnosticCode::Github, message)
                .help(help)
                .label(source, span, label),
        );
    };
    let repository = &g.value.repository;
    if !crate::github::is_repository_name(&repository.value) {
        error(
            format!(
                "`{}` is not a GitHub repository name",
                repository.value.escape_debug()
            ),
            repository.span,
            "not owner/name",
            "write the repository as `owner/name`, e.g. `octo-org/web`",
        );
    }
    let environment = &g.value.environment;
    if environment.value.trim().is_empty() || environment.value.chars().count() > 255 {
        error(
            "an environment name is 1 to 255 characters".into(),
            environment.span,
            "not an environment name",
            "name the environment as GitHub shows it, e.g. `production`",
        );
    }
    if spec.events.0.is_empty() {
        error(
            "a GitHub template has no events: nothing would gate the deployment".into(),
            spec.campaign.span,
            "no events",
            "add the events whose quorum approves the deployment under `events:`",
        );
    }
    if diags.len() > before {
        return None;
    }
    Some((repository.value.clone(), environment.value.clone(), g.span))
}

struct Validator<'a> {
    source: &'a SourceFile,
    diags: &'a mut Diagnostics,
    campaign: String,
    now: Option<DateTime<Utc>>,
    requester: Option<AgentId>,
}

/// An event's gates as validated, with the spans that set them.
struct EventGates {
    requested_by: Option<(AgentId, Span)>,
    four_eyes: Option<(bool, Span)>,
    windows: Option<(Vec<crate::gate::Window>, Span)>,
    breakglass: Vec<AgentId>,
    breakglass_span: Option<Span>,
}

/// What [`Validator::check_gates`] checks the gates against.
struct GateInputs<'a> {
    attendees: &'a [AgentId],
    quorum: Quorum,
    groups: &'a [QuorumGroup],
    fire: Option<FirePolicy>,
    at: Option<TimeSpec>,
    t_minus: Option<Duration>,
    at_span: Span,
    quorum_span: Option<Span>,
    attendees_span: Option<Span>,
}

/// Defaults with their spans.
#[derive(Default)]
struct Defaults {
    kind: Option<(EventKind, Span)>,
    t_minus: Option<(Duration, Span)>,
    quorum: Option<(Quorum, Span)>,
    fire: Option<(FirePolicy, Span)>,
    max_defer: Option<(Duration, Span)>,
    attendees: Option<(Vec<AgentId>, Span)>,
    /// The campaign's notification rules.
    notify: Option<(Vec<NotifyRule>, Span)>,
    four_eyes: Option<(bool, Span)>,
    windows: Option<(Vec<crate::gate::Window>, Span)>,
    /// The campaign's `requested_by`.
    requested_by: Option<(AgentId, Span)>,
    /// The campaign's `breakglass` list.
    breakglass: Option<(Vec<AgentId>, Span)>,
}

impl Validator<'_> {
    fn error(
        &mut self,
        code: DiagnosticCode,
        message: String,
        span: Span,
        label: &str,
        help: &str,
    ) {
        let d = ManifestDiagnostic::new(code, message)
            .help(help)
            .label(self.source, span, label);
        self.diags.push(d);
    }

    fn campaign(&mut self, spec: &CampaignSpec, file: usize) -> Option<DesiredCampaign> {
        let before = self.diags.len();
        let name = &spec.campaign;
        if let Some(reason) = name_problem(&name.value.0) {
            self.error(
                DiagnosticCode::Name,
                format!("invalid campaign name {:?}: {reason}", name.value.0),
                name.span,
                "invalid name",
                "names match [A-Za-z_][A-Za-z0-9_-]{0,63}, e.g. `release-v2`",
            );
        }
        let mut defaults = match &spec.defaults {
            Some(d) => {
                let ctx = format!("{}/defaults", self.campaign);
                self.defaults(&ctx, &d.value)
            }
            None => Defaults::default(),
        };
        if let Some(list) = &spec.notify {
            let ctx = format!("{}/notify", self.campaign);
            defaults.notify = self.notify(&ctx, list).map(|rules| (rules, list.span));
        }
        if let Some(r) = &spec.requested_by {
            let ctx = self.campaign.clone();
            defaults.requested_by = self.requester(&ctx, r).map(|a| (a, r.span));
        }
        if let Some(list) = &spec.breakglass {
            let ctx = format!("{}/breakglass", self.campaign);
            defaults.breakglass = self.attendees(&ctx, list).map(|a| (a, list_span(list)));
        }
        let keys: HashMap<&str, Span> = spec
            .events
            .0
            .iter()
            .map(|(k, _)| (k.value.0.as_str(), k.span))
            .collect();
        let mut events = Vec::new();
        for (key, event) in &spec.events.0 {
            if let Some(e) = self.event(key, &event.value, &defaults, &keys) {
                events.push(Arc::new(e));
            }
        }
        self.cycles(spec);
        let signers = spec.signers.as_ref().and_then(|s| self.signers(s, &events));
        if let Some(d) = &spec.description {
            if d.value.len() > event_check::MAX_DESCRIPTION_BYTES {
                let ctx = format!("campaign {}", name.value.0);
                self.too_long(
                    &ctx,
                    "description",
                    d.value.len(),
                    event_check::MAX_DESCRIPTION_BYTES,
                    d.span,
                );
            }
        }
        if self.diags.len() > before {
            return None;
        }
        Some(DesiredCampaign {
            name: name.value.0.clone(),
            description: spec.description.as_ref().map(|d| d.value.clone()),
            events,
            signers: signers.map(|s| s.to_allowed_signers()),
            origin: Origin {
                file,
                name: name.span,
                description: spec.description.as_ref().map(|d| d.span),
            },
        })
    }

    /// Reads the campaign's `signers` and checks that every attendee of
    /// `events` has a key there.
    fn signers(
        &mut self,
        spec: &Spanned<SignersSpec>,
        events: &[Arc<DesiredEvent>],
    ) -> Option<Signers> {
        let read = match &spec.value {
            SignersSpec::File(path) => {
                let dir = std::path::Path::new(&self.source.name)
                    .parent()
                    .unwrap_or(std::path::Path::new(""));
                let file = dir.join(path);
                Signers::read_allowed_signers(&file)
            }
            SignersSpec::Inline(keys) => {
                for (agent, key) in keys {
                    if let Err(err) = AgentId(agent.value.clone()).validate() {
                        self.error(
                            DiagnosticCode::Signers,
                            format!("invalid agent id in `signers`: {err}"),
                            agent.span,
                            "invalid agent id",
                            "agent ids are non-empty, at most 128 characters, without whitespace",
                        );
                        return None;
                    }
                    if let Err(err) =
                        Signers::from_inline([(agent.value.as_str(), key.value.as_str())])
                    {
                        self.error(
                            DiagnosticCode::Signers,
                            err.to_string(),
                            key.span,
                            "not a usable public key or pinned passkey",
                            "give each agent one public key line as in a `.pub` file, e.g. `ssh-ed25519 AAAA… alice@laptop`, or a passkey as `webauthn:CREDENTIAL_ID` (`t-minus people list` shows the ids)",
                        );
                        return None;
                    }
                }
                Signers::from_inline(
                    keys.iter()
                        .map(|(a, k)| (a.value.as_str(), k.value.as_str())),
                )
            }
        };
        let signers = match read {
            Ok(signers) => signers,
            Err(err) => {
                self.error(
                    DiagnosticCode::Signers,
                    err.to_string(),
                    spec.span,
                    "cannot use these signers",
                    "give a readable OpenSSH allowed_signers file (relative to this manifest), e.g. `alice namespaces=\"t-minus\" ssh-ed25519 AAAA…`",
                );
                return None;
            }
        };
        if signers.is_empty() {
            self.error(
                DiagnosticCode::Signers,
                "`signers` lists no keys".into(),
                spec.span,
                "no keys",
                "list a key for every attendee, or remove `signers` to accept unsigned answers",
            );
            return None;
        }
        for event in events {
            for agent in &event.attendees {
                if !signers.may_sign(agent.as_str()) {
                    self.error(
                        DiagnosticCode::Signers,
                        format!(
                            "attendee `{agent}` of `{}/{}` has no key in `signers`",
                            self.campaign, event.key
                        ),
                        event.spans.of(Field::Attendees),
                        "this attendee cannot sign",
                        "add a key for the agent to `signers` (with `namespaces=\"t-minus\"` or no namespaces option), or remove the attendee",
                    );
                }
            }
        }
        Some(signers)
    }

    fn defaults(&mut self, ctx: &str, d: &DefaultsSpec) -> Defaults {
        Defaults {
            kind: d.kind.as_ref().map(|k| (kind(&k.value), k.span)),
            t_minus: d
                .t_minus
                .as_ref()
                .and_then(|v| self.duration("t_minus", ctx, v).map(|d| (d, v.span))),
            quorum: d
                .quorum
                .as_ref()
                .and_then(|v| self.quorum(ctx, v).map(|q| (q, v.span))),
            fire: d
                .fire
                .as_ref()
                .and_then(|v| self.fire(ctx, v).map(|f| (f, v.span))),
            max_defer: d
                .max_defer
                .as_ref()
                .and_then(|v| self.duration("max_defer", ctx, v).map(|d| (d, v.span))),
            attendees: d
                .attendees
                .as_ref()
                .and_then(|v| self.attendees(ctx, v).map(|a| (a, list_span(v)))),
            notify: None,
            four_eyes: d.four_eyes.as_ref().map(|v| (v.value, v.span)),
            windows: d
                .window
                .as_ref()
                .and_then(|v| self.windows(ctx, v).map(|w| (w, v.span))),
            requested_by: None,
            breakglass: None,
        }
    }

    /// The event's gates: its own fields, else the campaign's (and the
    /// authenticated identity as the requester); `None` when one of them
    /// is invalid (reported).
    fn gates(&mut self, ctx: &str, e: &EventSpec, defaults: &Defaults) -> Option<EventGates> {
        let before = self.diags.len();
        let requested_by = match &e.requested_by {
            Some(r) => self.requester(ctx, r).map(|a| (a, r.span)),
            None => defaults.requested_by.clone(),
        };
        let four_eyes = e
            .four_eyes
            .as_ref()
            .map(|v| (v.value, v.span))
            .or(defaults.four_eyes);
        // The authenticated identity is the requester of a four-eyes event
        // that names none.
        let requested_by = match (requested_by, &self.requester, four_eyes) {
            (None, Some(identity), Some((true, _))) => Some((identity.clone(), Span::default())),
            (r, _, _) => r,
        };
        let windows = match &e.window {
            Some(v) => self.windows(ctx, v).map(|w| (w, v.span)),
            None => defaults.windows.clone(),
        };
        let mut breakglass = defaults
            .breakglass
            .as_ref()
            .map(|(a, _)| a.clone())
            .unwrap_or_default();
        let mut breakglass_span = defaults.breakglass.as_ref().map(|(_, s)| *s);
        if let Some(list) = &e.breakglass {
            let own = format!("{ctx}/breakglass");
            if let Some(agents) = self.attendees(&own, list) {
                for agent in agents {
                    if !breakglass.contains(&agent) {
                        breakglass.push(agent);
                    }
                }
            }
            breakglass_span = Some(list_span(list));
        }
        if let (Some((true, span)), None) = (four_eyes, &requested_by) {
            self.error(
                DiagnosticCode::FourEyes,
                format!("{ctx}: four eyes needs a requester, and none is named"),
                span,
                "four eyes without a requester",
                "name the requester with `requested_by` (on the event or the campaign)",
            );
        }
        (self.diags.len() == before).then_some(EventGates {
            requested_by,
            four_eyes,
            windows,
            breakglass,
            breakglass_span,
        })
    }

    /// Four eyes against the quorum, and windows against a fire time that
    /// is known now (an absolute `at`) for an event firing at its fire time.
    fn check_gates(&mut self, ctx: &str, g: &EventGates, i: GateInputs<'_>) {
        if let (Some((true, four_span)), Some((requester, _))) = (g.four_eyes, &g.requested_by) {
            if let Some(EventProblem::FourEyesQuorum {
                group,
                needed,
                others,
                ..
            }) = event_check::four_eyes(requester, i.attendees, i.quorum, i.groups)
            {
                let whose = group
                    .as_ref()
                    .map(|g| format!("group {g}"))
                    .unwrap_or_else(|| "the event".into());
                let mut d = ManifestDiagnostic::new(
                    DiagnosticCode::FourEyes,
                    format!(
                        "{ctx}: with four eyes, {requester}'s own confirmation does not count, and {whose} needs {needed} confirmation(s) from the {others} other attendee(s)"
                    ),
                )
                .help("lower the quorum, add attendees, or let someone else request the event")
                .label(self.source, four_span, "four eyes");
                if let Some(s) = i.quorum_span {
                    d = d.label(self.source, s, format!("needs {needed}"));
                }
                if let Some(s) = i.attendees_span {
                    d = d.label(
                        self.source,
                        s,
                        format!("{others} attendee(s) besides {requester}"),
                    );
                }
                self.diags.push(d);
            }
        }
        if let (Some((windows, window_span)), Some(policy), Some(TimeSpec::Absolute(at)), Some(t)) =
            (&g.windows, i.fire, i.at, i.t_minus)
        {
            let fire = event_check::fire_of(at, t);
            if let Some(EventProblem::OutsideWindows { windows: text, .. }) =
                event_check::windows_fire(windows, policy, fire)
            {
                let d = ManifestDiagnostic::new(
                    DiagnosticCode::OutsideWindows,
                    format!(
                        "{ctx}: it fires {policy} at {}, which lies outside every window ({text}), so it could only be missed",
                        format_time(fire)
                    ),
                )
                .help("move `at` (or `t_minus`) so the fire time falls inside a window, widen the windows, or fire `early`")
                .label(self.source, i.at_span, "fire time outside the windows")
                .label(self.source, *window_span, "the windows");
                self.diags.push(d);
            }
        }
    }

    /// Reads a `requested_by`: a valid agent id, the authenticated
    /// identity's own when there is one.
    fn requester(&mut self, ctx: &str, v: &Spanned<AgentText>) -> Option<AgentId> {
        let agent = AgentId(v.value.0.clone());
        if let Err(InputError::InvalidAgentId { value, reason }) = agent.validate() {
            self.error(
                DiagnosticCode::AgentId,
                format!("{ctx}: invalid requested_by {value:?}: {reason}"),
                v.span,
                "invalid agent id",
                "agent ids are 1-128 characters without whitespace or control characters, e.g. `ops-1`",
            );
            return None;
        }
        if let Some(identity) = &self.requester {
            if *identity != agent {
                self.error(
                    DiagnosticCode::RequestedBy,
                    format!(
                        "{ctx}: requested_by names {agent}, but the manifest is applied by {identity}"
                    ),
                    v.span,
                    "not the applying identity",
                    "the authenticated identity that applies a manifest is its requester; remove `requested_by` or apply as that agent",
                );
                return None;
            }
        }
        Some(agent)
    }

    /// Reads `window`: one window or a list, each parsed.
    fn windows(
        &mut self,
        ctx: &str,
        v: &Spanned<super::spec::WindowSpec>,
    ) -> Option<Vec<crate::gate::Window>> {
        let before = self.diags.len();
        let mut windows = Vec::new();
        for (text, span) in v.value.items(v.span) {
            match text.parse::<crate::gate::Window>() {
                Ok(w) => windows.push(w),
                Err(InputError::InvalidWindow { reason, .. }) => self.error(
                    DiagnosticCode::Window,
                    format!("{ctx}: invalid window `{text}`: {reason}"),
                    span,
                    "not a window",
                    "write DAYS HH:MM-HH:MM ZONE, e.g. `Mon-Fri 09:00-17:00 Europe/Berlin`",
                ),
                Err(other) => self.error(
                    DiagnosticCode::Window,
                    format!("{ctx}: invalid window `{text}`: {other}"),
                    span,
                    "not a window",
                    "write DAYS HH:MM-HH:MM ZONE, e.g. `Mon-Fri 09:00-17:00 Europe/Berlin`",
                ),
            }
        }
        if windows.is_empty() && self.diags.len() == before {
            self.error(
                DiagnosticCode::Window,
                format!("{ctx}: an empty list of windows would never let the event fire"),
                v.span,
                "no window",
                "list at least one window, or leave `window` out to fire at any time",
            );
        }
        (self.diags.len() == before).then_some(windows)
    }

    fn event(
        &mut self,
        key: &Spanned<super::spec::NameText>,
        e: &EventSpec,
        defaults: &Defaults,
        keys: &HashMap<&str, Span>,
    ) -> Option<DesiredEvent> {
        let before = self.diags.len();
        let name = key.value.0.as_str();
        let ctx = format!("{}/{name}", self.campaign);
        if let Some(reason) = name_problem(name) {
            self.error(
                DiagnosticCode::Name,
                format!("invalid event name {name:?}: {reason}"),
                key.span,
                "invalid name",
                "event names match [A-Za-z_][A-Za-z0-9_-]{0,63}, e.g. `deploy-eu`",
            );
        }
        let (kind, kind_span) = match &e.kind {
            Some(k) => (kind(&k.value), Some(k.span)),
            None => match &defaults.kind {
                Some((k, s)) => (k.clone(), Some(*s)),
                None => (EventKind::Checkpoint, None),
            },
        };
        let at = self.time(&ctx, &e.at);
        let (t_minus, t_minus_span) = match &e.t_minus {
            Some(v) => (self.duration("t_minus", &ctx, v), Some(v.span)),
            None => match defaults.t_minus {
                Some((d, s)) => (Some(d), Some(s)),
                None => (Some(Duration::zero()), None),
            },
        };
        // One quorum is checked in field order; a quorum per group with the
        // groups.
        let one_quorum = match &e.quorum {
            Some(Spanned {
                value: QuorumSpec::One(q),
                span,
            }) => Some((self.quorum(&ctx, &Spanned::new(q.clone(), *span)), *span)),
            _ => None,
        };
        let (fire, fire_span) = match &e.fire {
            Some(v) => (self.fire(&ctx, v), Some(v.span)),
            None => match defaults.fire {
                Some((f, s)) => (Some(f), Some(s)),
                None => (Some(FirePolicy::Early), None),
            },
        };
        let (max_defer, max_defer_span) = match &e.max_defer {
            Some(v) => (self.duration("max_defer", &ctx, v).map(Some), Some(v.span)),
            None => match defaults.max_defer {
                Some((d, s)) => (Some(Some(d)), Some(s)),
                None => (Some(None), None),
            },
        };
        let default_quorum = match defaults.quorum {
            Some((q, s)) => (Some(q), Some(s)),
            None => (Some(Quorum::All), None),
        };
        let quorum_span = e.quorum.as_ref().map(|q| q.span).or(default_quorum.1);
        let (attendees, attendees_span, quorum, groups) = match &e.attendees {
            Some(Spanned {
                value: AttendeesSpec::Groups(list),
                span,
            }) => {
                let grouped =
                    self.groups(&ctx, list, e.quorum.as_ref(), one_quorum, default_quorum);
                match grouped {
                    Some((attendees, total, groups)) => (
                        Some(attendees),
                        Some(*span),
                        Some(Quorum::Count(total)),
                        groups,
                    ),
                    None => (None, Some(*span), None, Vec::new()),
                }
            }
            other => {
                let (attendees, attendees_span) = match other {
                    Some(Spanned {
                        value: AttendeesSpec::List(list),
                        span,
                    }) => {
                        let v = Spanned::new(list.clone(), *span);
                        (self.attendees(&ctx, &v), Some(list_span(&v)))
                    }
                    _ => match &defaults.attendees {
                        Some((a, s)) => (Some(a.clone()), Some(*s)),
                        None => (Some(Vec::new()), None),
                    },
                };
                let quorum = match &e.quorum {
                    Some(Spanned {
                        value: QuorumSpec::One(_),
                        ..
                    }) => one_quorum.and_then(|(q, _)| q),
                    Some(Spanned {
                        value: QuorumSpec::PerGroup(_),
                        span,
                    }) => {
                        self.error(
                            DiagnosticCode::QuorumGroups,
                            format!("{ctx}: a quorum per group needs attendees in groups"),
                            *span,
                            "a quorum per group",
                            "write `attendees` as a map of group → agents (`attendees: { ops: [ops-1, ops-2] }`), or give one quorum (`quorum: 2`)",
                        );
                        None
                    }
                    None => default_quorum.0,
                };
                (attendees, attendees_span, quorum, Vec::new())
            }
        };
        let needs = self.needs(&ctx, name, e, keys);
        let (notify, notify_span) = self.event_notify(&ctx, e, defaults);

        if let (true, Some(q), Some(a), Some(qs)) =
            (groups.is_empty(), quorum, &attendees, quorum_span)
        {
            if let Err(EventProblem::QuorumTooLarge { quorum, attendees }) =
                event_check::quorum(q, a.len())
            {
                let mut d = ManifestDiagnostic::new(
                    DiagnosticCode::QuorumTooLarge,
                    format!(
                        "{ctx}: quorum {quorum} is larger than the {attendees} attendee(s)"
                    ),
                )
                .help(format!(
                    "lower the quorum to at most {attendees}, use `all` or `majority`, or add attendees"
                ))
                .label(self.source, qs, format!("needs {quorum} confirmations"));
                if let Some(s) = attendees_span {
                    d = d.label(self.source, s, format!("only {attendees} attendee(s)"));
                }
                self.diags.push(d);
            }
        }

        if let (Some(TimeSpec::Relative(offset)), Some(t)) = (at, t_minus) {
            let quorum_n = match (quorum, &attendees) {
                (Some(q), Some(a)) => q.resolve(a.len()).unwrap_or(1),
                _ => 1,
            };
            if event_check::relative_at(offset, t, quorum_n).is_some() {
                let relation = if offset < t {
                    "shorter than"
                } else {
                    "equal to"
                };
                let mut d = ManifestDiagnostic::new(
                    DiagnosticCode::RelativeAt,
                    format!(
                        "{ctx}: relative time +{} is {relation} its t_minus of {}, so its fire time would come {} its start",
                        format_duration(offset),
                        format_duration(t),
                        if offset < t { "before" } else { "at" }
                    ),
                )
                .help("a relative `at` must be longer than `t_minus`, or the event is missed the moment it opens; lengthen `at` or shorten `t_minus`")
                .label(self.source, e.at.span, "counted from the event's start");
                if let Some(s) = t_minus_span {
                    d = d.label(self.source, s, "countdown length");
                }
                self.diags.push(d);
            }
        }
        if let (Some(now), Some(TimeSpec::Absolute(at)), Some(t)) = (self.now, at, t_minus) {
            let fire = event_check::fire_of(at, t);
            if let Some(ago) = event_check::fire_time_passed(fire, now) {
                self.error(
                    DiagnosticCode::FireTimePassed,
                    format!(
                        "{ctx}: its fire time {} has already passed ({} ago)",
                        format_time(fire),
                        format_countdown(ago)
                    ),
                    e.at.span,
                    "in the past",
                    "schedule it later, use a relative time such as `+10m`, or shorten its t_minus",
                );
            }
        }
        let gates = self.gates(&ctx, e, defaults);
        if let (Some(g), Some(a), Some(q)) = (&gates, &attendees, quorum) {
            self.check_gates(
                &ctx,
                g,
                GateInputs {
                    attendees: a,
                    quorum: q,
                    groups: &groups,
                    fire,
                    at,
                    t_minus,
                    at_span: e.at.span,
                    quorum_span,
                    attendees_span,
                },
            );
        }
        self.text_sizes(&ctx, e, &kind, kind_span, key.span);
        let escalate = self.escalate(&ctx, e, (&attendees, &groups), (at, t_minus));
        if self.diags.len() > before {
            return None;
        }
        let gates = gates?;
        let gates_spans = (
            gates.requested_by.as_ref().map(|(_, s)| *s),
            gates.four_eyes.map(|(_, s)| s),
            gates.windows.as_ref().map(|(_, s)| *s),
            gates.breakglass_span,
        );
        Some(DesiredEvent {
            key: name.to_string(),
            kind,
            description: e.description.as_ref().map(|d| d.value.clone()),
            at: at?,
            t_minus: t_minus?,
            quorum: quorum?,
            fire: fire?,
            max_defer: max_defer?,
            requested_by: gates.requested_by.map(|(a, _)| a),
            four_eyes: gates.four_eyes.is_some_and(|(f, _)| f),
            windows: gates.windows.map(|(w, _)| w).unwrap_or_default(),
            breakglass: gates.breakglass.clone(),
            attendees: attendees?,
            groups,
            needs,
            payload: e.payload.clone().unwrap_or(serde_json::Value::Null),
            notify: notify?,
            escalate,
            spans: EventSpans {
                key: key.span,
                kind: kind_span,
                description: e.description.as_ref().map(|d| d.span),
                at: e.at.span,
                t_minus: t_minus_span,
                quorum: quorum_span,
                fire: fire_span,
                max_defer: max_defer_span,
                attendees: attendees_span,
                needs: e.needs.as_ref().map(list_span),
                notify: notify_span,
                requested_by: gates_spans.0,
                four_eyes: gates_spans.1,
                window: gates_spans.2,
                breakglass: gates_spans.3,
                escalate: e.escalate.as_ref().map(|s| s.span),
            },
        })
    }

    /// The event's `escalate` steps, checked against its attendees and
    /// groups and, when it is known from the manifest, the span from its
    /// opening to its fire time (a relative `at` counts from the opening; an
    /// absolute one from now, for an event without needs); each problem is
    /// reported at its step.
    fn escalate(
        &mut self,
        ctx: &str,
        e: &EventSpec,
        (attendees, groups): (&Option<Vec<AgentId>>, &[crate::policy::QuorumGroup]),
        (at, t_minus): (Option<TimeSpec>, Option<Duration>),
    ) -> Vec<crate::escalation::EscalationStep> {
        use crate::escalation::{EscalationAdd, EscalationStep};
        let Some(list) = &e.escalate else {
            return Vec::new();
        };
        let mut steps = Vec::new();
        let mut spans = Vec::new();
        for item in &list.value {
            let after = self.duration("escalate.after", ctx, &item.value.after);
            let add = match &item.value.add.value {
                AttendeesSpec::List(agents) => {
                    let v = Spanned::new(agents.clone(), item.value.add.span);
                    self.attendees(ctx, &v).map(|agents| {
                        vec![EscalationAdd {
                            group: None,
                            agents,
                        }]
                    })
                }
                AttendeesSpec::Groups(map) => {
                    let mut adds = Some(Vec::new());
                    for (name, agents) in map {
                        let found = self.attendees(ctx, agents);
                        match (&mut adds, found) {
                            (Some(adds), Some(agents)) => adds.push(EscalationAdd {
                                group: Some(name.value.clone()),
                                agents,
                            }),
                            _ => adds = None,
                        }
                    }
                    adds
                }
            };
            if let (Some(after), Some(add)) = (after, add) {
                steps.push(EscalationStep { after, add });
                spans.push(item.span);
            }
        }
        if steps.len() != list.value.len() {
            return Vec::new();
        }
        let window = match (at, t_minus, e.needs.is_some()) {
            (Some(TimeSpec::Relative(offset)), Some(t), _) => Some(offset - t),
            (Some(TimeSpec::Absolute(at)), Some(t), false) => {
                self.now.map(|now| event_check::fire_of(at, t) - now)
            }
            _ => None,
        };
        let plain: Vec<AgentId> = attendees.clone().unwrap_or_default();
        if let Err(problem) = crate::escalation::check(&steps, &plain, groups, window) {
            self.error(
                DiagnosticCode::Escalation,
                format!("{ctx}: {problem}"),
                spans[problem.step],
                "this step",
                "order the steps by `after`, each due before the fire time, each adding agents the event does not have yet (to its groups, for attendees in groups)",
            );
            return Vec::new();
        }
        steps
    }

    /// Reports the event's kind, description or payload over its size
    /// limit ([`event_check::text_sizes`]), at the field (the payload at the
    /// event's key: a payload has no span of its own).
    fn text_sizes(
        &mut self,
        ctx: &str,
        e: &EventSpec,
        kind: &EventKind,
        kind_span: Option<Span>,
        key_span: Span,
    ) {
        let payload = e.payload.clone().unwrap_or(serde_json::Value::Null);
        let description = e.description.as_ref().map(|d| d.value.as_str());
        if let Some(event_check::EventProblem::TextTooLong { field, len }) =
            event_check::text_sizes(&kind.to_string(), description, &payload)
        {
            let span = match field {
                event_check::TextField::Kind => kind_span.unwrap_or(key_span),
                event_check::TextField::Description => {
                    e.description.as_ref().map_or(key_span, |d| d.span)
                }
                event_check::TextField::Payload => key_span,
            };
            self.too_long(ctx, field.as_str(), len, field.max(), span);
        }
    }

    /// Reports a text field `len` bytes long, over its limit `max`.
    fn too_long(&mut self, ctx: &str, field: &str, len: usize, max: usize, span: Span) {
        self.error(
            DiagnosticCode::TooLong,
            format!("{ctx}: the {field} is {len} bytes long; the limit is {max}"),
            span,
            "too long",
            "shorten it; put long material elsewhere and refer to it (a URL, a path in the payload)",
        );
    }

    /// The event's rules: the campaign's, then its own, at most
    /// [`MAX_RULES`] together.
    fn event_notify(
        &mut self,
        ctx: &str,
        e: &EventSpec,
        defaults: &Defaults,
    ) -> (Option<Vec<NotifyRule>>, Option<Span>) {
        let mut rules = defaults
            .notify
            .as_ref()
            .map(|(r, _)| r.clone())
            .unwrap_or_default();
        let Some(list) = &e.notify else {
            return (Some(rules), defaults.notify.as_ref().map(|(_, s)| *s));
        };
        let Some(own) = self.notify(&format!("{ctx}/notify"), list) else {
            return (None, Some(list.span));
        };
        rules.extend(own);
        if rules.len() > MAX_RULES {
            self.error(
                DiagnosticCode::Notify,
                format!(
                    "{ctx}: {} notification rules with the campaign's (at most {MAX_RULES})",
                    rules.len()
                ),
                list.span,
                "too many rules",
                "list fewer rules; one rule may name several triggers in `on`",
            );
            return (None, Some(list.span));
        }
        (Some(rules), Some(list.span))
    }

    /// Checks a `notify` list; every problem is reported at its node.
    fn notify(
        &mut self,
        ctx: &str,
        list: &Spanned<Vec<Spanned<NotifySpec>>>,
    ) -> Option<Vec<NotifyRule>> {
        if list.value.len() > MAX_RULES {
            self.error(
                DiagnosticCode::Notify,
                format!(
                    "{ctx}: {} notification rules (at most {MAX_RULES})",
                    list.value.len()
                ),
                list.span,
                "too many rules",
                "list fewer rules; one rule may name several triggers in `on`",
            );
            return None;
        }
        let before = self.diags.len();
        let rules: Vec<Option<NotifyRule>> = list
            .value
            .iter()
            .map(|entry| self.notify_rule(ctx, entry))
            .collect();
        if self.diags.len() > before {
            return None;
        }
        rules.into_iter().collect()
    }

    fn notify_rule(&mut self, ctx: &str, entry: &Spanned<NotifySpec>) -> Option<NotifyRule> {
        let before = self.diags.len();
        let spec = &entry.value;
        let fail = |v: &mut Self, span: Span, label: &str, e: TMinusError| {
            let (reason, help) = match e {
                TMinusError::InvalidNotify { reason, help } => (reason, help),
                other => (other.to_string(), String::new()),
            };
            v.error(
                DiagnosticCode::Notify,
                format!("{ctx}: {reason}"),
                span,
                label,
                &help,
            );
        };
        let mut on = Vec::new();
        for t in &spec.on.value {
            match t.value.0.parse::<Trigger>() {
                Ok(trigger) => on.push(trigger),
                Err(e) => fail(self, t.span, "unknown trigger", e),
            }
        }
        if spec.on.value.is_empty() {
            self.error(
                DiagnosticCode::Notify,
                format!("{ctx}: `on` lists no trigger"),
                spec.on.span,
                "empty",
                &format!("list one or more of: {}", Trigger::expected()),
            );
        }
        let hook = match (&spec.exec, &spec.webhook) {
            (Some(_), Some(url)) => {
                self.error(
                    DiagnosticCode::Notify,
                    format!("{ctx}: a rule has both `exec` and `webhook`"),
                    url.span,
                    "second target",
                    "write one target per rule; add a second rule for the other",
                );
                None
            }
            (None, None) => {
                self.error(
                    DiagnosticCode::Notify,
                    format!("{ctx}: a rule has neither `exec` nor `webhook`"),
                    spec.on.span,
                    "no target",
                    "add `exec: [program, args…]` or `webhook: https://…`",
                );
                None
            }
            (Some(argv), None) => {
                let mut args: Vec<String> = argv.value.iter().map(|a| a.value.clone()).collect();
                if let Some(program) = args.first_mut() {
                    *program = self.resolve_program(program);
                }
                match check_argv(&args) {
                    Err(e) => {
                        fail(self, argv.span, "invalid command", e);
                        None
                    }
                    Ok(()) => Some(Hook::Exec { argv: args }),
                }
            }
            (None, Some(url)) => {
                if let Err(e) = check_url(&url.value) {
                    fail(self, url.span, "invalid URL", e);
                }
                let format = match &spec.format {
                    Some(f) => match f.value.0.parse::<WebhookFormat>() {
                        Ok(f) => f,
                        Err(e) => {
                            fail(self, f.span, "unknown format", e);
                            WebhookFormat::Json
                        }
                    },
                    None => WebhookFormat::Json,
                };
                let headers = spec
                    .headers
                    .as_ref()
                    .map(|h| h.value.clone())
                    .unwrap_or_default();
                if let (Some(h), Err(e)) = (&spec.headers, check_headers(&headers)) {
                    fail(self, h.span, "invalid headers", e);
                }
                Some(Hook::Webhook {
                    url: url.value.clone(),
                    format,
                    headers,
                })
            }
        };
        if spec.exec.is_some() {
            for (field, span) in [
                ("format", spec.format.as_ref().map(|f| f.span)),
                ("headers", spec.headers.as_ref().map(|h| h.span)),
            ] {
                if let Some(span) = span {
                    self.error(
                        DiagnosticCode::Notify,
                        format!("{ctx}: `{field}` is for webhooks"),
                        span,
                        "not for exec",
                        "remove it, or use `webhook` instead of `exec`",
                    );
                }
            }
        }
        let mut before_ms = Vec::new();
        if let Some(b) = &spec.before {
            for d in b.value.items() {
                let text = Spanned::new(d.clone(), b.span);
                if let Some(d) = self.duration("before", ctx, &text) {
                    before_ms.push(u64::try_from(d.num_milliseconds()).unwrap_or(0));
                }
            }
        }
        let reminds = on.contains(&Trigger::Reminder);
        if reminds && spec.before.is_none() {
            self.error(
                DiagnosticCode::Notify,
                format!("{ctx}: `reminder` needs `before`"),
                spec.on.span,
                "reminder without before",
                "say how long before the fire time, e.g. `before: 5m` or `before: [1h, 5m]`",
            );
        }
        if let (false, Some(b)) = (reminds, &spec.before) {
            self.error(
                DiagnosticCode::Notify,
                format!("{ctx}: `before` is only for `reminder`"),
                b.span,
                "no reminder in `on`",
                "add `reminder` to `on`, or remove `before`",
            );
        }
        let timeout = spec
            .timeout
            .as_ref()
            .and_then(|t| self.duration("timeout", ctx, t).map(|d| (d, t.span)));
        let chat_defer = spec
            .defer
            .as_ref()
            .and_then(|t| self.duration("defer", ctx, t));
        if let Some(d) = &spec.defer {
            if !matches!(
                spec.format.as_ref().map(|f| f.value.0.as_str()),
                Some("slack")
            ) {
                self.error(
                    DiagnosticCode::Notify,
                    format!("{ctx}: `defer` is for `format: slack` webhooks"),
                    d.span,
                    "not a slack rule",
                    "add `format: slack` to the webhook, or remove `defer`",
                );
            }
        }
        if self.diags.len() > before {
            return None;
        }
        let mut rule = NotifyRule::new(on, hook?);
        rule.before_ms = before_ms;
        if let Some((d, _)) = timeout {
            rule.timeout_ms = u64::try_from(d.num_milliseconds()).unwrap_or(0);
        }
        if let Some(r) = &spec.retry {
            rule.attempts = r.value;
        }
        if let Some(d) = chat_defer {
            rule.chat_defer_ms = Some(u64::try_from(d.num_milliseconds()).unwrap_or(0));
        }
        if let Err(e) = rule.check() {
            fail(self, entry.span, "invalid rule", e);
            return None;
        }
        Some(rule)
    }

    /// An exec program as the runner will find it: a path with a `/` is
    /// relative to the manifest's directory; a bare name is looked up on
    /// `PATH` at delivery.
    fn resolve_program(&self, program: &str) -> String {
        let path = std::path::Path::new(program);
        if path.is_absolute() || !program.contains('/') {
            return program.to_string();
        }
        let dir = std::path::Path::new(&self.source.name)
            .parent()
            .unwrap_or(std::path::Path::new(""));
        let joined = dir.join(path);
        std::path::absolute(&joined)
            .unwrap_or(joined)
            .display()
            .to_string()
    }

    fn time(&mut self, ctx: &str, v: &Spanned<super::spec::TimeText>) -> Option<TimeSpec> {
        match TimeSpec::parse(v.value.0.as_str()) {
            Ok(t) => Some(t),
            Err(InputError::InvalidTime { value, reason }) => {
                let no_offset = reason.contains("no UTC offset");
                let (code, label, help) = if no_offset {
                    (
                        DiagnosticCode::TimeOffset,
                        "no UTC offset",
                        "add an offset: `Z` for UTC (e.g. `2025-06-06T15:00:00Z`) or `+02:00`",
                    )
                } else {
                    (
                        DiagnosticCode::Time,
                        "not a time",
                        "write an RFC 3339 time with an offset (`2025-06-06T15:00:00Z`), `now`, or `+DURATION` after the event's start (e.g. `+10m`)",
                    )
                };
                self.error(
                    code,
                    format!("{ctx}: invalid time `{value}`: {reason}"),
                    v.span,
                    label,
                    help,
                );
                None
            }
            Err(other) => {
                self.error(
                    DiagnosticCode::Time,
                    format!("{ctx}: {other}"),
                    v.span,
                    "not a time",
                    "write an RFC 3339 time with an offset, `now`, or `+10m`",
                );
                None
            }
        }
    }

    fn duration(&mut self, field: &str, ctx: &str, v: &Spanned<DurationText>) -> Option<Duration> {
        match parse_duration(v.value.0.as_str()) {
            Ok(d) => Some(d),
            Err(e) => {
                let reason = match e {
                    InputError::InvalidDuration { reason, .. } => reason,
                    other => other.to_string(),
                };
                self.error(
                    DiagnosticCode::Duration,
                    format!("{ctx}: invalid {field} `{}`: {reason}", v.value.0.as_str()),
                    v.span,
                    "not a duration",
                    "write a non-negative duration such as `90s`, `5m`, `1h 30m` or `2days`; a bare number means seconds",
                );
                None
            }
        }
    }

    fn quorum(&mut self, ctx: &str, v: &Spanned<QuorumText>) -> Option<Quorum> {
        match v.value.0.as_str().parse::<Quorum>() {
            Ok(q) => Some(q),
            Err(_) => {
                self.error(
                    DiagnosticCode::Quorum,
                    format!("{ctx}: invalid quorum `{}`", v.value.0.as_str()),
                    v.span,
                    "not a quorum",
                    "write a whole number of confirmations (e.g. `2`), `all` or `majority`",
                );
                None
            }
        }
    }

    fn fire(&mut self, ctx: &str, v: &Spanned<FireText>) -> Option<FirePolicy> {
        match v.value.0.as_str().parse::<FirePolicy>() {
            Ok(f) => Some(f),
            Err(_) => {
                self.error(
                    DiagnosticCode::FirePolicy,
                    format!("{ctx}: invalid fire policy `{}`", v.value.0.as_str()),
                    v.span,
                    "not a fire policy",
                    "use `early` (fire as soon as quorum holds), `on-time` (fire at the fire time) or `lazy` (fire at the fire time unless someone declined)",
                );
                None
            }
        }
    }

    fn attendees(
        &mut self,
        ctx: &str,
        v: &Spanned<Vec<Spanned<AgentText>>>,
    ) -> Option<Vec<AgentId>> {
        let list: Vec<AgentId> = v
            .value
            .iter()
            .map(|entry| AgentId(entry.value.0.clone()))
            .collect();
        let problems = event_check::agents(&list, None);
        let span = |index: usize| v.value.get(index).map_or(v.span, |entry| entry.span);
        for problem in &problems {
            match problem {
                AgentProblem::Invalid { at, value, reason } => self.error(
                    DiagnosticCode::AgentId,
                    format!("{ctx}: invalid agent id {value:?}: {reason}"),
                    span(at.index),
                    "invalid agent id",
                    "agent ids are 1-128 characters without whitespace or control characters, e.g. `ops-1`",
                ),
                AgentProblem::Repeated { at, first, agent } => {
                    let d = ManifestDiagnostic::new(
                        DiagnosticCode::DuplicateAttendee,
                        format!("{ctx}: attendee {:?} is listed twice", agent.as_str()),
                    )
                    .help("list each attendee once")
                    .label(self.source, span(*first), "first listed here")
                    .label(self.source, span(at.index), "listed again here");
                    self.diags.push(d);
                }
            }
        }
        problems.is_empty().then_some(list)
    }

    /// Checks grouped attendees and their quorums (`quorum` as one value for
    /// every group, or per group; a group left out takes `default`), and
    /// returns the attendees (each once, in order of first mention), the
    /// total quorum and the groups.
    fn groups(
        &mut self,
        ctx: &str,
        list: &[GroupSpec],
        quorum: Option<&Spanned<QuorumSpec>>,
        one: Option<(Option<Quorum>, Span)>,
        default: (Option<Quorum>, Option<Span>),
    ) -> Option<(Vec<AgentId>, usize, Vec<QuorumGroup>)> {
        let before = self.diags.len();
        let names: Vec<&str> = list.iter().map(|(k, _)| k.value.as_str()).collect();
        // The quorum of each group, with the span that set it.
        let mut per_group: HashMap<&str, (Option<Quorum>, Option<Span>)> = HashMap::new();
        let all = match one {
            Some((q, span)) => (q, Some(span)),
            None => default,
        };
        if let Some(Spanned {
            value: QuorumSpec::PerGroup(entries),
            ..
        }) = quorum
        {
            for (key, q) in entries {
                let parsed = self.quorum(&format!("{ctx} group `{}`", key.value), q);
                if names.contains(&key.value.as_str()) {
                    per_group.insert(key.value.as_str(), (parsed, Some(q.span)));
                    continue;
                }
                let help = match closest(&key.value, &names) {
                    Some(near) => format!(
                        "did you mean `{near}`? a quorum per group names groups of `attendees`: {}",
                        abbreviate(&names)
                    ),
                    None => format!(
                        "a quorum per group names groups of `attendees`: {}",
                        abbreviate(&names)
                    ),
                };
                self.error(
                    DiagnosticCode::UnknownGroup,
                    format!("{ctx}: quorum for unknown group `{}`", key.value),
                    key.span,
                    "no such group",
                    &help,
                );
            }
        }
        let mut groups = Vec::with_capacity(list.len());
        for (index, (key, members)) in list.iter().enumerate() {
            let gctx = format!("{ctx} group `{}`", key.value);
            if let Some(EventProblem::GroupName { reason, .. }) =
                event_check::group_name(index, &key.value)
            {
                self.error(
                    DiagnosticCode::Name,
                    format!("{ctx}: invalid group name {:?}: {reason}", key.value),
                    key.span,
                    "invalid name",
                    "group names match [A-Za-z_][A-Za-z0-9_-]{0,63}, e.g. `security`",
                );
            }
            if event_check::empty_group(index, &key.value, members.value.len()).is_some() {
                self.error(
                    DiagnosticCode::EmptyGroup,
                    format!("{gctx} has no members"),
                    members.span,
                    "empty group",
                    "list the group's agents (`ops: [ops-1, ops-2]`), or remove the group",
                );
                continue;
            }
            let members_span = list_span(members);
            let Some(agents) = self.attendees(&gctx, members) else {
                continue;
            };
            let (q, qs) = per_group.get(key.value.as_str()).copied().unwrap_or(all);
            let Some(q) = q else { continue };
            let group = QuorumGroup::new(key.value.clone(), q, agents);
            if let Err(EventProblem::GroupQuorumTooLarge {
                quorum, members, ..
            }) = event_check::group_quorum(index, &group)
            {
                let mut d = ManifestDiagnostic::new(
                    DiagnosticCode::QuorumTooLarge,
                    format!("{gctx}: quorum {quorum} is larger than the group's {members} member(s)"),
                )
                .help(format!(
                    "lower the group's quorum to at most {members}, use `all` or `majority`, or add members"
                ))
                .label(self.source, members_span, format!("only {members} member(s)"));
                if let Some(qs) = qs {
                    d = d.label(self.source, qs, format!("needs {quorum} confirmations"));
                }
                self.diags.push(d);
                continue;
            }
            groups.push(group);
        }
        if self.diags.len() > before {
            return None;
        }
        let mut seen = std::collections::HashSet::new();
        let mut attendees = Vec::new();
        for g in &groups {
            for a in &g.members {
                if seen.insert(a.clone()) {
                    attendees.push(a.clone());
                }
            }
        }
        let total = groups.iter().map(QuorumGroup::needed).sum();
        Some((attendees, total, groups))
    }

    fn needs(
        &mut self,
        ctx: &str,
        name: &str,
        e: &EventSpec,
        keys: &HashMap<&str, Span>,
    ) -> Vec<String> {
        let Some(needs) = &e.needs else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut first: HashMap<&str, Span> = HashMap::new();
        for need in &needs.value {
            let target = need.value.0.as_str();
            if target == name {
                self.error(
                    DiagnosticCode::SelfNeed,
                    format!("{ctx}: event `{name}` needs itself"),
                    need.span,
                    "this is the event itself",
                    "an event cannot wait for itself; remove this entry",
                );
                continue;
            }
            if !keys.contains_key(target) {
                let mut known: Vec<&str> = keys.keys().copied().filter(|k| *k != name).collect();
                known.sort_unstable();
                let help = match closest(target, &known) {
                    Some(near) => {
                        format!("did you mean `{near}`? `needs` names events of the same campaign")
                    }
                    None if known.is_empty() => {
                        "this campaign has no other events to need".to_string()
                    }
                    None => format!(
                        "`needs` names events of the same campaign: {}",
                        abbreviate(&known)
                    ),
                };
                self.error(
                    DiagnosticCode::UnknownNeed,
                    format!(
                        "{ctx}: needs `{target}`, which is not an event of campaign `{}`",
                        self.campaign
                    ),
                    need.span,
                    "unknown event",
                    &help,
                );
                continue;
            }
            if let Some(prev) = first.get(target) {
                let d = ManifestDiagnostic::new(
                    DiagnosticCode::DuplicateNeed,
                    format!("{ctx}: `{target}` is listed twice in needs"),
                )
                .help("list each need once")
                .label(self.source, *prev, "first listed here")
                .label(self.source, need.span, "listed again here");
                self.diags.push(d);
                continue;
            }
            first.insert(target, need.span);
            out.push(target.to_string());
        }
        out
    }

    /// Reports the dependency cycles of a campaign, each spelled out in order
    /// with every edge labelled.
    fn cycles(&mut self, spec: &CampaignSpec) {
        let keys: Vec<&str> = spec
            .events
            .0
            .iter()
            .map(|(k, _)| k.value.0.as_str())
            .collect();
        let known: HashSet<&str> = keys.iter().copied().collect();
        // Edge (from, to): `to` needs `from`; remember the span of the entry.
        let mut edges: Vec<(&str, &str)> = Vec::new();
        let mut spans: HashMap<(&str, &str), Span> = HashMap::new();
        for (key, event) in &spec.events.0 {
            let to = key.value.0.as_str();
            for need in event.value.needs.iter().flat_map(|n| &n.value) {
                let from = need.value.0.as_str();
                if from != to && known.contains(from) && !spans.contains_key(&(from, to)) {
                    edges.push((from, to));
                    spans.insert((from, to), need.span);
                }
            }
        }
        // Report up to a few independent cycles: remove one edge of each
        // cycle found and look again.
        for _ in 0..8 {
            let Some(cycle) = graph::find_cycle(&keys, &edges) else {
                break;
            };
            let spelled = if cycle.len() > MAX_CYCLE_LABELS {
                format!(
                    "{} → … ({} more) … → {}",
                    cycle[..MAX_CYCLE_LABELS / 2].join(" → "),
                    cycle.len() - MAX_CYCLE_LABELS / 2 - 2,
                    cycle[cycle.len() - 2..].join(" → ")
                )
            } else {
                cycle.join(" → ")
            };
            let mut d = ManifestDiagnostic::new(
                DiagnosticCode::Cycle,
                format!(
                    "campaign `{}` has a dependency cycle: {spelled}",
                    self.campaign
                ),
            )
            .help("campaigns are acyclic: remove one of the `needs` entries on the cycle");
            // Label every edge of a readable cycle; a huge one (thousands of
            // events) gets its first edges labelled, or rendering it takes
            // minutes.
            for pair in cycle.windows(2).take(MAX_CYCLE_LABELS) {
                let (from, to) = (pair[0], pair[1]);
                if let Some(span) = spans.get(&(from, to)) {
                    d = d.label(self.source, *span, format!("{to} needs {from}"));
                }
            }
            self.diags.push(d);
            if let [from, to, ..] = cycle.as_slice() {
                edges.retain(|e| *e != (*from, *to));
            }
        }
    }
}

/// How many edges of one dependency cycle are labelled (and spelled out in
/// full) at most.
const MAX_CYCLE_LABELS: usize = 50;

fn kind(text: &str) -> EventKind {
    text.parse()
        .unwrap_or_else(|never: std::convert::Infallible| match never {})
}

/// The span of a list: from its first entry to its last (the node itself
/// when empty).
fn list_span<T>(v: &Spanned<Vec<Spanned<T>>>) -> Span {
    match (v.value.first(), v.value.last()) {
        (Some(first), Some(last)) => first.span.join(last.span),
        _ => v.span,
    }
}

fn abbreviate(names: &[&str]) -> String {
    const MAX: usize = 8;
    let shown: Vec<String> = names.iter().take(MAX).map(|n| format!("`{n}`")).collect();
    if names.len() > MAX {
        format!("{}, … ({} in all)", shown.join(", "), names.len())
    } else {
        shown.join(", ")
    }
}

/// The known name closest to `target` by edit distance, if close enough.
fn closest<'a>(target: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (levenshtein(target, k), *k))
        .filter(|(d, k)| *d <= (k.len().max(target.len()) / 3).max(1))
        .min()
        .map(|(_, k)| k)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names() {
        assert_eq!(closest("reveiw", &["review", "deploy"]), Some("review"));
        assert_eq!(closest("zzz", &["review", "deploy"]), None);
    }
}
