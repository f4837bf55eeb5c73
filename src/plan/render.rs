//! The human rendering of a plan.

use std::fmt::Write;

use super::compute::list;
use super::{
    Action, ApplyReport, CampaignPlan, EventPlan, FieldChange, Plan, PlanCounts, PlanField,
};
use crate::duration::format_duration;
use crate::event::short_id;
use crate::manifest::DesiredEvent;
use crate::time_spec::TimeSpec;

pub(super) fn human(plan: &Plan) -> String {
    let mut out = String::new();
    for c in &plan.campaigns {
        campaign(&mut out, c);
        out.push('\n');
    }
    out.push_str(&plan.summary_line());
    out.push('\n');
    out
}

fn campaign(out: &mut String, c: &CampaignPlan) {
    let id =
        c.id.map(|id| format!(" [{}]", short_id(id)))
            .unwrap_or_default();
    let _ = writeln!(out, "{} campaign {}{id}", c.action.symbol(), c.name);
    if c.action == Action::Create {
        if let Some(d) = &c.description {
            let _ = writeln!(out, "      description: {d}");
        }
    }
    changes_and_notes(out, "      ", &c.changes, &c.notes);
    for e in &c.events {
        event(out, e);
    }
}

fn event(out: &mut String, e: &EventPlan) {
    let id =
        e.id.map(|id| format!(" [{}]", short_id(id)))
            .unwrap_or_default();
    match (e.action, &e.desired) {
        (Action::Create, Some(d)) => {
            let _ = writeln!(out, "    + event {}: {}", e.key, describe(d));
        }
        _ => {
            let _ = writeln!(out, "    {} event {}{id}", e.action.symbol(), e.key);
        }
    }
    let start = out.len();
    changes_and_notes(out, "        ", &e.changes, &e.notes);
    if e.resets > 0 {
        mark_resets(out, start, &e.changes, e.resets);
    }
}

/// Appends `  (resets N confirmations)` to the first line written since
/// `start` that changes the event's content (kind, description, payload),
/// or else to its `notify` line (with confirmations reset and none of
/// those changed, the rules that act when it fires or is missed did), or
/// `  (resets N answers)` to a change of fire policy into or out of `lazy`
/// (which sends confirmations and declines back to pending).
fn mark_resets(out: &mut String, start: usize, changes: &[FieldChange], resets: usize) {
    let lazy = |v: &Option<String>| v.as_deref() == Some("lazy");
    let policy = changes
        .iter()
        .position(|c| c.field == PlanField::Fire && (lazy(&c.old) != lazy(&c.new)));
    let content = || {
        changes.iter().position(|c| {
            matches!(
                c.field,
                PlanField::Kind | PlanField::Description | PlanField::Payload
            )
        })
    };
    let notify = || {
        changes
            .iter()
            .position(|c| matches!(c.field, PlanField::Notify))
    };
    let (line, what) = match policy {
        Some(line) => (line, "answer"),
        None => match content().or_else(notify) {
            Some(line) => (line, "confirmation"),
            None => return,
        },
    };
    let Some(end) = out[start..]
        .match_indices('\n')
        .nth(line)
        .map(|(i, _)| start + i)
    else {
        return;
    };
    let plural = if resets == 1 { "" } else { "s" };
    out.insert_str(end, &format!("  (resets {resets} {what}{plural})"));
}

/// `~ field: old → new` lines (`+ attendees: dave` / `- attendees: carol`
/// for one member who joins or leaves), then `! note` lines, at `indent`.
fn changes_and_notes(out: &mut String, indent: &str, changes: &[FieldChange], notes: &[String]) {
    for ch in changes {
        let _ = writeln!(out, "{indent}{} {ch}", ch.symbol());
    }
    for note in notes {
        let _ = writeln!(out, "{indent}! {note}");
    }
}

/// A one-line description of a new event:
/// `review at +20m after checkpoint fires, quorum 2 of [alice, bob, carol]`.
fn describe(d: &DesiredEvent) -> String {
    let mut s = format!("{} at {}", d.kind, d.at);
    if let TimeSpec::Relative(_) = d.at {
        if d.needs.is_empty() {
            s.push_str(" after the first apply");
        } else {
            let _ = write!(
                s,
                " after {} fire{}",
                d.needs.join(" and "),
                if d.needs.len() == 1 { "s" } else { "" }
            );
        }
    }
    if !d.t_minus.is_zero() {
        let _ = write!(s, ", t_minus {}", format_duration(d.t_minus));
    }
    if !d.groups.is_empty() {
        let groups: Vec<String> = d
            .groups
            .iter()
            .map(|g| {
                format!(
                    "{} {} of {}",
                    g.name,
                    g.quorum,
                    list(g.members.iter().map(|a| a.as_str()))
                )
            })
            .collect();
        let _ = write!(s, ", quorum {}", groups.join(" and "));
    } else if d.attendees.is_empty() {
        s.push_str(", no attendees");
    } else {
        let _ = write!(
            s,
            ", quorum {} of {}",
            d.quorum,
            list(d.attendees.iter().map(|a| a.as_str()))
        );
    }
    if d.fire != crate::policy::FirePolicy::Early {
        let _ = write!(s, ", fire {}", d.fire);
    }
    if let Some(m) = d.max_defer {
        let _ = write!(s, ", max_defer {}", format_duration(m));
    }
    if !d.needs.is_empty() && matches!(d.at, TimeSpec::Absolute(_)) {
        let _ = write!(s, ", needs {}", list(&d.needs));
    }
    if d.four_eyes {
        let _ = write!(s, ", four eyes (requested by {})", d.organizer());
    }
    if let Some(steps) = crate::escalation::Escalation::summary(&d.escalate) {
        let _ = write!(s, ", escalate {steps}");
    }
    if let Some(windows) = crate::gate::windows_text(&d.windows) {
        let _ = write!(s, ", window {windows}");
    }
    if !d.breakglass.is_empty() {
        let _ = write!(
            s,
            ", breakglass {}",
            list(d.breakglass.iter().map(|a| a.as_str()))
        );
    }
    s
}

impl ApplyReport {
    /// `Apply complete: 3 added, 1 changed, 0 destroyed.` or
    /// `No changes; nothing to apply.`
    pub fn summary_line(&self) -> String {
        if self.counts == PlanCounts::default() {
            "No changes; nothing to apply.".into()
        } else {
            format!(
                "Apply complete: {} added, {} changed, {} destroyed.",
                self.counts.add, self.counts.change, self.counts.destroy
            )
        }
    }
}
