//! Human-readable output.

use crate::duration::format_duration;
use crate::time_spec::format_time;
use crate::{AuditAction, AuditEntry, Campaign, EventState, ResponseStatus, TMinusEvent};
use chrono::{DateTime, Utc};
use std::fmt::Write as _;

use super::styles::Styles;
use super::view::EventView;

/// Renders events, transitions and logs in the seed's format, from views
/// whose names are already resolved: rendering looks nothing up.
pub struct Renderer {
    /// Styles in use.
    pub styles: Styles,
    /// The time countdowns count to.
    pub now: DateTime<Utc>,
}

fn paint(style: anstyle::Style, text: impl std::fmt::Display) -> String {
    Styles::paint(style, text)
}

/// `text` between `style`'s escape codes, as [`paint`] makes it, formatted
/// straight into the output instead of into a string of its own.
struct Painted<T>(anstyle::Style, T);

impl<T: std::fmt::Display> std::fmt::Display for Painted<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{:#}", self.0, self.1, self.0)
    }
}

/// Appends what `text` writes between `style`'s escape codes, the bytes
/// [`Painted`] formats; a plain style adds nothing.
fn paint_into(out: &mut String, style: anstyle::Style, text: impl FnOnce(&mut String)) {
    let plain = style.is_plain();
    if !plain {
        let _ = write!(out, "{style}");
    }
    text(out);
    if !plain {
        let _ = write!(out, "{style:#}");
    }
}

impl Renderer {
    /// A renderer at `now`.
    pub fn new(styles: Styles, now: DateTime<Utc>) -> Self {
        Renderer { styles, now }
    }

    /// The first column: `T-4m32s`, `due`, `blocked`, or the final state.
    fn countdown(&self, event: &TMinusEvent) -> String {
        let mut out = String::new();
        self.write_countdown(&mut out, event);
        out
    }

    /// [`Renderer::countdown`], written to `out`.
    fn write_countdown(&self, out: &mut String, event: &TMinusEvent) {
        let s = &self.styles;
        let (style, word) = match event.state {
            EventState::Pending => match event.fire_deadline() {
                Some(fire) if fire > self.now => {
                    paint_into(out, s.wait, |out| {
                        out.push_str("T-");
                        crate::duration::write_countdown(out, fire - self.now);
                    });
                    return;
                }
                Some(_) => (s.bad, "due"),
                None => (s.wait, "pending"),
            },
            EventState::Blocked => (s.wait, "blocked"),
            EventState::Fired => (s.good, "fired"),
            EventState::Missed => (s.bad, "missed"),
            EventState::Cancelled => (s.bad, "cancelled"),
        };
        paint_into(out, style, |out| out.push_str(word));
    }

    /// [`Renderer::headline`], written to `out`.
    fn write_headline(&self, out: &mut String, view: &EventView<'_>) {
        let event = view.event;
        let s = self.styles;
        self.write_countdown(out, event);
        out.push(' ');
        paint_into(out, s.bold, |out| {
            match (view.campaign.as_deref(), &event.name) {
                (Some(c), Some(n)) => {
                    out.push_str(c);
                    out.push('/');
                    out.push_str(n);
                }
                (None, Some(n)) => out.push_str(n),
                _ => {
                    let _ = write!(out, "{}", event.kind);
                }
            }
        });
        out.push_str(" [");
        paint_into(out, s.dim, |out| {
            let _ = write!(out, "{}", crate::event::ShortId(event.id));
        });
        out.push_str("] ");
        let _ = if event.groups.is_empty() {
            write!(out, "quorum:{}/{}", event.confirmed_count(), event.quorum)
        } else {
            write!(out, "quorum: {}", super::quorum_progress(event))
        };
        let _ = write!(out, " attendees:{}", event.attendees.len());
        match event.state {
            EventState::Blocked if !view.needs.is_empty() => {
                out.push_str(" needs:");
                for (i, need) in view.needs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(need);
                }
            }
            state if state.is_final() => {
                if let Some(at) = event.finished_at {
                    let _ = write!(out, " at {}", Painted(s.dim, format_time(at)));
                }
            }
            _ => {}
        }
    }

    /// The headline: `T-4m32s review [a1b2c3d4] quorum:2/3 attendees:3`;
    /// with groups, `quorum: ops 1/2 · security 0/1 attendees:5`.
    pub fn headline(&self, view: &EventView<'_>) -> String {
        let mut out = String::new();
        self.write_headline(&mut out, view);
        out
    }

    /// One line of `agent`'s inbox: `T-4m32s release/review [a1b2c3d4]
    /// quorum:1/2 alice:deferred:5m`.
    pub fn inbox_line(&self, view: &EventView<'_>, agent: &crate::AgentId) -> String {
        let event = view.event;
        let label = view.label();
        let s = self.styles;
        let answer = match event.response_of(agent) {
            Some(status) => {
                let style = match status {
                    ResponseStatus::Confirmed => s.good,
                    ResponseStatus::Declined | ResponseStatus::Missed => s.bad,
                    ResponseStatus::Pending | ResponseStatus::Deferred(_) => s.wait,
                };
                paint(style, status)
            }
            None => paint(s.dim, "-"),
        };
        format!(
            "{} {} [{}] quorum:{}/{} {agent}:{answer}",
            self.countdown(event),
            paint(s.bold, label),
            paint(s.dim, event.short_id()),
            event.confirmed_count(),
            event.quorum,
        )
    }

    /// [`Renderer::event_block`], appended to `out`: a listing renders
    /// every event into one reused buffer.
    pub fn write_event_block(&self, out: &mut String, view: &EventView<'_>) {
        let event = view.event;
        self.write_headline(out, view);
        for (agent, status) in &event.attendees {
            let style = match status {
                ResponseStatus::Confirmed => self.styles.good,
                ResponseStatus::Declined | ResponseStatus::Missed => self.styles.bad,
                ResponseStatus::Pending | ResponseStatus::Deferred(_) => self.styles.wait,
            };
            out.push_str("\n   ");
            if let Some(delegate) = view.delegate_of(agent) {
                out.push_str(delegate.as_str());
                out.push_str(" for ");
            }
            out.push_str(agent.as_str());
            out.push(' ');
            paint_into(out, style, |out| match status {
                ResponseStatus::Deferred(_) => {
                    let _ = write!(out, "{status}");
                }
                other => out.push_str(other.word()),
            });
            if event.groups.iter().any(|g| g.members.contains(agent)) {
                let groups = event.groups_of(agent);
                let _ = write!(out, " {}", Painted(self.styles.dim, groups.join(", ")));
            }
        }
    }

    /// The headline followed by one line per attendee.
    pub fn event_block(&self, view: &EventView<'_>) -> String {
        let mut out = String::new();
        self.write_event_block(&mut out, view);
        out
    }

    /// The block with every detail, for `status EVENT`.
    pub fn event_detail(&self, view: &EventView<'_>) -> String {
        let event = view.event;
        let mut out = self.event_block(view);
        let mut field = |name: &str, value: String| {
            out.push_str(&format!("\n   {:<10} {value}", format!("{name}:")));
        };
        field("id", event.id.to_string());
        field("state", event.state.to_string());
        field("kind", event.kind.to_string());
        match (event.at_known(), event.relative_at) {
            (true, _) => {
                field("at", format_time(event.scheduled_at));
                field("fire time", format_time(event.fire_time()));
            }
            (false, Some(offset)) => {
                field(
                    "at",
                    format!(
                        "+{} after its needs fire",
                        format_duration(offset + event.deferred)
                    ),
                );
            }
            (false, None) => {}
        }
        // The spelling only when it says more than the number: `quorum 2
        // (majority)`; each group's for an event with groups.
        let spec = if event.groups.is_empty() {
            event.quorum_spec.to_string()
        } else {
            let groups: Vec<String> = event
                .groups
                .iter()
                .map(|g| format!("{} {} of {}", g.name, g.quorum, g.members.len()))
                .collect();
            groups.join(", ")
        };
        let spelling = if spec == event.quorum.to_string() {
            String::new()
        } else {
            format!(" ({spec})")
        };
        field(
            "policy",
            format!(
                "quorum {}{spelling}, fire {}, t-minus {}",
                event.quorum,
                event.fire_policy,
                format_duration(event.t_minus)
            ),
        );
        if !event.deferred.is_zero() || event.max_defer.is_some() {
            let max = event
                .max_defer
                .map(|m| format!(" of max {}", format_duration(m)));
            field(
                "deferred",
                format!(
                    "{}{}",
                    format_duration(event.deferred),
                    max.unwrap_or_default()
                ),
            );
        }
        field("organizer", event.organizer.to_string());
        let gates = &event.gates;
        if gates.four_eyes {
            field(
                "four eyes",
                format!(
                    "requested by {}; its own answer is refused",
                    event.organizer
                ),
            );
        }
        if let Some(windows) = crate::gate::windows_text(&gates.windows) {
            field("windows", windows);
            if event.state == crate::EventState::Pending {
                field(
                    "may fire",
                    match event.may_fire_next(self.now) {
                        Some(at) if at <= self.now => "now (inside a window)".to_string(),
                        Some(at) => format!("from {} (next window opening)", format_time(at)),
                        None => "no window opens before the fire time".to_string(),
                    },
                );
            }
        }
        if let Some(next) = next_escalation(event) {
            field("escalates", next);
        }
        if !gates.breakglass.is_empty() {
            let names: Vec<&str> = gates.breakglass.iter().map(|a| a.as_str()).collect();
            field("may break", names.join(", "));
        }
        if let Some(broken) = &gates.broken {
            field(
                "broken by",
                format!(
                    "{} at {}: {}",
                    broken.by,
                    format_time(broken.at),
                    broken.reason
                ),
            );
        }
        if !event.payload.is_null() {
            field("payload", event.payload.to_string());
        }
        if let Some(d) = &event.description {
            field("about", d.clone());
        }
        field("digest", crate::trust::content_digest(event).short());
        out
    }

    /// One line per transition, in the seed's words:
    /// `🚀 Event … fired! (quorum reached)`, ending with the event's label.
    pub fn transition(&self, entry: &AuditEntry, label: &str) -> String {
        let reason = entry.detail.get("reason").and_then(|r| r.as_str());
        let s = self.styles;
        let (icon, verb, default_reason) = match entry.action {
            AuditAction::Fired => ("🚀", paint(s.good, "fired!"), "quorum reached"),
            AuditAction::Missed => ("❌", paint(s.bad, "missed"), "quorum not reached"),
            AuditAction::Cancelled => ("🛑", paint(s.bad, "cancelled"), "cancelled"),
            AuditAction::Opened => ("🔓", paint(s.wait, "opened"), "all needs fired"),
            other => ("•", other.to_string(), ""),
        };
        format!(
            "{icon} Event {} {verb} ({}) {}",
            entry.event,
            reason.unwrap_or(default_reason),
            paint(s.bold, label)
        )
    }

    /// An escalation step a tick applied:
    /// `📣 Event ID escalated (step 1 after 30m: added dave) LABEL`, with
    /// `added erin to ops` for the members of a group.
    pub fn escalation(&self, entry: &AuditEntry, label: &str) -> String {
        let d = &entry.detail;
        let names = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut added = Vec::new();
        let mut grouped = Vec::new();
        if let Some(groups) = d["groups"].as_object() {
            for (group, agents) in groups {
                let agents = names(agents);
                grouped.extend(agents.iter().cloned());
                added.push(format!("{} to {group}", agents.join(", ")));
            }
        }
        let plain: Vec<String> = names(&d["added"])
            .into_iter()
            .filter(|a| !grouped.contains(a))
            .collect();
        if !plain.is_empty() {
            added.insert(0, plain.join(", "));
        }
        let s = self.styles;
        format!(
            "📣 Event {} {} (step {} after {}: added {}) {}",
            entry.event,
            paint(s.wait, "escalated"),
            d["step"],
            d["after"].as_str().unwrap_or_default(),
            added.join("; "),
            paint(s.bold, label)
        )
    }

    /// One audit line: `2025-06-06T14:50:00Z  confirmed  by alice`; an
    /// answer under a delegation reads `by carol for alice`.
    pub fn log_line(&self, entry: &AuditEntry) -> String {
        let mut line = format!(
            "{}  {:<10}",
            paint(self.styles.dim, format_time(entry.at)),
            entry.action.as_str()
        );
        if let Some(agent) = &entry.agent {
            line.push_str(&format!(" by {}", paint(self.styles.bold, agent)));
        }
        if let Some(principal) = &entry.on_behalf_of {
            line.push_str(&format!(" for {}", paint(self.styles.bold, principal)));
        }
        if let Some(map) = entry.detail.as_object() {
            for (key, value) in map {
                // What the entry records for `verify` is shown by `log --json`.
                if key == "record" || key == "set" {
                    continue;
                }
                let text = match value {
                    serde_json::Value::Null => continue,
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                line.push_str(&format!(" {key}={text}"));
            }
        }
        line
    }

    /// `checkpoint → review, lint → deploy` from levels of event names.
    pub fn order(&self, levels: &[Vec<String>]) -> String {
        let parts: Vec<String> = levels.iter().map(|level| level.join(", ")).collect();
        parts.join(" → ")
    }

    /// One line per campaign: name, state, event count, id.
    pub fn campaign_line(&self, campaign: &Campaign) -> String {
        let s = self.styles;
        let state = match campaign.state {
            crate::CampaignState::Running => paint(s.wait, "running"),
            crate::CampaignState::Succeeded => paint(s.good, "succeeded"),
            crate::CampaignState::Failed => paint(s.bad, "failed"),
        };
        format!(
            "{} {} events:{} links:{} [{}]",
            paint(s.bold, &campaign.name),
            state,
            campaign.events.len(),
            campaign.dependencies.len(),
            paint(s.dim, campaign.id)
        )
    }
}

/// `at TIME: adds carol, dave (step 1 of 2)` for a pending
/// event whose next escalation step is still to apply before its fire time
/// (`ops: erin` for agents a step adds to a group); `None` otherwise.
fn next_escalation(event: &crate::TMinusEvent) -> Option<String> {
    let (due, step) = event.next_escalation()?;
    let adds: Vec<String> = step
        .add
        .iter()
        .map(|add| {
            let names: Vec<&str> = add.agents.iter().map(|a| a.as_str()).collect();
            match &add.group {
                Some(group) => format!("{group}: {}", names.join(", ")),
                None => names.join(", "),
            }
        })
        .collect();
    Some(format!(
        "at {}: adds {} (step {} of {})",
        format_time(due),
        adds.join("; "),
        event.escalation.applied + 1,
        event.escalation.steps.len()
    ))
}
