//! Showing a run: the live view on a terminal, timestamped lines for logs,
//! or JSON lines for scripts.

use std::io::Write;

use chrono::{DateTime, Utc};

use super::render::Renderer;
use super::styles::Styles;
use crate::duration::format_countdown;
use crate::error::TMinusError;
use crate::run_report::{RunLine, RunOutcomeWord};
use crate::run_report::{RunOutcome, RunReport};
use crate::time_spec::format_time;
use crate::{AuditAction, AuditEntry, EventState, ResponseStatus, TMinusEvent};

/// How a run is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewMode {
    /// One line per transition with a timestamp, no control codes (CI logs).
    Lines,
    /// One JSON object per line per transition, then a summary object.
    Json,
    /// A block of countdowns redrawn in place, transitions printed above it.
    Live,
}

/// Prints a run to stdout: transitions, the live block, store outages and
/// the closing summary, from events whose labels its caller resolved (the
/// binary's run observer builds them through
/// [`crate::engine::EventViews`]).
pub struct RunView {
    out: Renderer,
    mode: ViewMode,
    /// Lines of the live block currently on screen.
    drawn: usize,
    /// The most lines the live block may take.
    max_lines: usize,
    /// The label of the one event a `wait` drives: its summary speaks of
    /// the event, not of a run.
    waiting_for: Option<String>,
}

/// The events the live block shows within `max_lines` lines: unfinished
/// ones, open events by deadline and then blocked ones; when they do not all
/// fit, one line is kept for "… and N more". Returns them and how many are
/// left out.
fn live_selection(events: &[TMinusEvent], max_lines: usize) -> (Vec<&TMinusEvent>, usize) {
    let mut open: Vec<&TMinusEvent> = events.iter().filter(|e| !e.state.is_final()).collect();
    open.sort_by_key(|e| (e.state == EventState::Blocked, e.fire_deadline()));
    if open.len() <= max_lines {
        return (open, 0);
    }
    let shown = max_lines.saturating_sub(1);
    let hidden = open.len() - shown;
    open.truncate(shown);
    (open, hidden)
}

/// Lines of the live block when the terminal's height is unknown.
const DEFAULT_LIVE_LINES: usize = 20;

/// Lines the live block may take on a terminal of `rows` rows: its height
/// less room for the transition lines above it, at least 3.
fn live_lines(rows: Option<u16>) -> usize {
    rows.map_or(DEFAULT_LIVE_LINES, |rows| {
        (rows as usize).saturating_sub(4).max(3)
    })
}

fn action_word(action: AuditAction) -> &'static str {
    match action {
        AuditAction::Fired => "🚀 fired",
        AuditAction::Missed => "❌ missed",
        AuditAction::Cancelled => "🛑 cancelled",
        AuditAction::Opened => "🔓 opened",
        _ => "•",
    }
}

fn reason(entry: &AuditEntry) -> &str {
    entry
        .detail
        .get("reason")
        .and_then(|r| r.as_str())
        .unwrap_or(match entry.action {
            AuditAction::Opened => "all needs fired",
            _ => "",
        })
}

impl RunView {
    /// A view in `mode`, rendering with `out`. A live block takes at most
    /// 20 lines until [`RunView::with_terminal_rows`] says how tall the
    /// terminal is.
    pub fn new(out: Renderer, mode: ViewMode) -> Self {
        RunView {
            out,
            mode,
            max_lines: if mode == ViewMode::Live {
                live_lines(None)
            } else {
                0
            },
            drawn: 0,
            waiting_for: None,
        }
    }

    /// Makes the closing summary speak of the one event labelled `label`
    /// (`release-v2/deploy fired`) instead of a run.
    pub fn waiting_for(mut self, label: impl Into<String>) -> Self {
        self.waiting_for = Some(label.into());
        self
    }

    /// Fits the live block to a terminal of `rows` rows (`None`: unknown).
    pub fn with_terminal_rows(mut self, rows: Option<u16>) -> Self {
        if self.mode == ViewMode::Live {
            self.max_lines = live_lines(rows);
        }
        self
    }

    /// `2025-06-06T15:00:00Z 🚀 fired release-v2/review [a1b2c3d4] (quorum reached)`
    fn line(&self, entry: &AuditEntry, event: &TMinusEvent, label: &str) -> String {
        let s = self.out.styles;
        format!(
            "{} {} {} [{}] ({})",
            Styles::paint(s.dim, format_time(entry.at)),
            action_word(entry.action),
            Styles::paint(s.bold, label),
            event.short_id(),
            reason(entry)
        )
    }

    /// Erases the live block drawn last.
    fn clear_live(&mut self) {
        if self.mode == ViewMode::Live && self.drawn > 0 {
            print!("\x1b[{}F\x1b[J", self.drawn);
            self.drawn = 0;
        }
    }

    /// Prints the closing summary (`Run succeeded: 3 fired, …`, or the JSON
    /// summary object), clearing the live block first.
    pub fn finish(&mut self, report: &RunReport) {
        let summary = &report.summary;
        let outcome = match report.outcome {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Failed => "failed",
            RunOutcome::TimedOut => "timed out",
            RunOutcome::Interrupted => "interrupted",
        };
        if self.mode == ViewMode::Json {
            let outcome = match report.outcome {
                RunOutcome::Succeeded => RunOutcomeWord::Succeeded,
                RunOutcome::Failed => RunOutcomeWord::Failed,
                RunOutcome::TimedOut => RunOutcomeWord::TimedOut,
                RunOutcome::Interrupted => RunOutcomeWord::Interrupted,
            };
            let line = RunLine::Summary {
                outcome,
                fired: summary.fired,
                missed: summary.missed,
                cancelled: summary.cancelled,
                unfinished: summary.unfinished,
            };
            println!("{}", line.to_json());
            return;
        }
        self.clear_live();
        if let Some(label) = &self.waiting_for {
            println!("{}", wait_summary(label, report));
            std::io::stdout().flush().ok();
            return;
        }
        let mut line = format!(
            "Run {outcome}: {} fired, {} missed, {} cancelled",
            summary.fired, summary.missed, summary.cancelled
        );
        if summary.unfinished > 0 {
            line.push_str(&format!(", {} unfinished", summary.unfinished));
        }
        println!("{line}");
        if report.outcome == RunOutcome::Interrupted {
            println!("State is saved; run again to resume.");
        }
        std::io::stdout().flush().ok();
    }
}

/// The closing line of a `wait` for the event labelled `label`: what became
/// of it (`release-v2/deploy fired`, `… missed`, `… was cancelled`), or why
/// the wait ended first.
fn wait_summary(label: &str, report: &RunReport) -> String {
    match report.outcome {
        RunOutcome::Succeeded => format!("{label} fired"),
        RunOutcome::Failed if report.summary.cancelled > 0 => format!("{label} was cancelled"),
        RunOutcome::Failed => format!("{label} missed"),
        RunOutcome::TimedOut => format!("Wait timed out: {label} is not final yet"),
        RunOutcome::Interrupted => format!("Wait interrupted: {label} is not final yet"),
    }
}

/// A wall-clock span to the millisecond: `250ms`, `7s 345ms`.
fn millis(d: std::time::Duration) -> String {
    let ms = std::time::Duration::from_millis(d.as_millis() as u64);
    humantime::format_duration(ms).to_string()
}

impl RunView {
    /// Reports a failed store call that will be retried in `delay`.
    pub fn store_retry(&mut self, error: &TMinusError, attempt: u32, delay: std::time::Duration) {
        if self.mode == ViewMode::Json {
            let line = RunLine::StoreRetry {
                error: error.to_string(),
                attempt,
                retry_in_ms: delay.as_millis() as u64,
            };
            println!("{}", line.to_json());
            std::io::stdout().flush().ok();
        } else {
            self.clear_live();
            std::io::stdout().flush().ok();
            eprintln!(
                "warning: {error}; retrying in {} (attempt {attempt})",
                millis(delay)
            );
        }
    }

    /// Reports that the store answers again after `outage`.
    pub fn store_recovered(&mut self, outage: std::time::Duration) {
        if self.mode == ViewMode::Json {
            let line = RunLine::StoreRecovered {
                outage_ms: outage.as_millis() as u64,
            };
            println!("{}", line.to_json());
            std::io::stdout().flush().ok();
        } else {
            eprintln!("the store answers again after {}; resuming", millis(outage));
        }
    }

    /// Prints `event`'s transition `entry`; `label` is the event's label
    /// (`campaign/name`, or its kind).
    pub fn transition(&mut self, entry: &AuditEntry, event: &TMinusEvent, label: &str) {
        match self.mode {
            ViewMode::Json => {
                let line = RunLine::Transition {
                    seq: entry.seq,
                    at: entry.at,
                    event: event.id,
                    label: label.to_string(),
                    action: entry.action,
                    state: event.state,
                    reason: reason(entry).to_string(),
                };
                println!("{}", line.to_json());
            }
            ViewMode::Lines => {
                println!("{}", self.line(entry, event, label));
            }
            ViewMode::Live => {
                self.clear_live();
                println!("{}", self.line(entry, event, label));
            }
        }
        std::io::stdout().flush().ok();
    }

    /// Whether the view redraws a live block (only then does
    /// [`RunView::refresh`] draw anything).
    pub fn is_live(&self) -> bool {
        self.mode == ViewMode::Live
    }

    /// The events the live block shows of `events`, and how many it leaves
    /// out: label these and hand them to [`RunView::refresh`].
    pub fn live_selection<'a>(&self, events: &'a [TMinusEvent]) -> (Vec<&'a TMinusEvent>, usize) {
        live_selection(events, self.max_lines)
    }

    /// Redraws the live block at `now`: `shown` are the events
    /// [`RunView::live_selection`] chose with their labels, `hidden` how
    /// many it left out. Draws nothing unless the view is live.
    pub fn refresh(&mut self, shown: &[(&TMinusEvent, String)], hidden: usize, now: DateTime<Utc>) {
        if self.mode != ViewMode::Live {
            return;
        }
        self.clear_live();
        let mut lines: Vec<String> = shown
            .iter()
            .map(|(event, label)| self.live_line(event, label, now))
            .collect();
        if hidden > 0 {
            lines.push(format!("  … and {hidden} more unfinished events"));
        }
        for line in &lines {
            println!("{line}");
        }
        self.drawn = lines.len();
        std::io::stdout().flush().ok();
    }
}

impl RunView {
    /// `T-4m32s  release-v2/review  [██░] 2/3  alice ✓ bob ⏳ carol ·`
    fn live_line(&self, event: &TMinusEvent, label: &str, now: DateTime<Utc>) -> String {
        let s = self.out.styles;
        let countdown = match (event.state, event.fire_deadline()) {
            (EventState::Blocked, _) => "blocked".to_string(),
            (_, Some(fire)) if fire > now => format!("T-{}", format_countdown(fire - now)),
            (_, Some(_)) => "due".to_string(),
            (_, None) => "pending".to_string(),
        };
        // One bar per group (a plain event is one unnamed group).
        let bars: Vec<String> = event
            .quorum_status()
            .iter()
            .map(|g| {
                let width = g.needed.min(10);
                let filled = if g.needed == 0 {
                    0
                } else {
                    (g.confirmed.min(g.needed) * width).div_ceil(g.needed)
                };
                let bar = format!(
                    "[{}{}] {}/{}",
                    "█".repeat(filled),
                    "░".repeat(width - filled),
                    g.confirmed,
                    g.needed
                );
                match &g.name {
                    Some(name) => format!("{name} {bar}"),
                    None => bar,
                }
            })
            .collect();
        let mut who = Vec::new();
        for (agent, status) in &event.attendees {
            let mark = match status {
                ResponseStatus::Confirmed => Styles::paint(s.good, "✓"),
                ResponseStatus::Declined | ResponseStatus::Missed => Styles::paint(s.bad, "✗"),
                ResponseStatus::Deferred(_) => Styles::paint(s.wait, "⏳"),
                ResponseStatus::Pending => "·".to_string(),
            };
            who.push(format!("{agent} {mark}"));
        }
        format!(
            "{}  {}  {}  {}",
            // Pad before painting: escape codes must not count as width.
            Styles::paint(s.wait, format!("{countdown:>9}")),
            Styles::paint(s.bold, label),
            bars.join(" · "),
            who.join(" ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventKind, FirePolicy, Quorum};
    use chrono::Duration;

    fn event(minutes: i64, state: EventState) -> TMinusEvent {
        let at = DateTime::<Utc>::UNIX_EPOCH + Duration::minutes(minutes);
        TMinusEvent {
            rules_digest: None,
            id: uuid::Uuid::new_v4(),
            kind: EventKind::Checkpoint,
            scheduled_at: at,
            t_minus: Duration::zero(),
            organizer: crate::AgentId("o".into()),
            attendees: Vec::new(),
            quorum: 0,
            groups: Vec::new(),
            payload: serde_json::Value::Null,
            state,
            campaign: None,
            name: Some(format!("e{minutes}")),
            quorum_spec: Quorum::Count(0),
            fire_policy: FirePolicy::OnTime,
            max_defer: None,
            deferred: Duration::zero(),
            relative_at: None,
            started_at: Some(at),
            finished_at: None,
            created_at: at,
            last_response_at: None,
            gates: Default::default(),
            description: None,
            escalation: Default::default(),
        }
    }

    fn names(events: &[&TMinusEvent]) -> Vec<String> {
        events.iter().map(|e| e.display_name()).collect()
    }

    #[test]
    fn the_live_block_shows_open_events_by_deadline_then_blocked_ones() {
        let events = vec![
            event(3, EventState::Blocked),
            event(9, EventState::Pending),
            event(1, EventState::Fired),
            event(5, EventState::Pending),
        ];
        let (shown, hidden) = live_selection(&events, 10);
        assert_eq!(names(&shown), ["e5", "e9", "e3"]);
        assert_eq!(hidden, 0);
    }

    #[test]
    fn the_live_block_fits_its_lines_with_a_line_for_the_rest() {
        let events: Vec<_> = (0..100)
            .rev()
            .map(|m| event(m, EventState::Pending))
            .collect();
        let (shown, hidden) = live_selection(&events, 5);
        assert_eq!(names(&shown), ["e0", "e1", "e2", "e3"]);
        assert_eq!(
            hidden, 96,
            "4 events and the `… and 96 more` line fill 5 lines"
        );
        let (shown, hidden) = live_selection(&events[..5], 5);
        assert_eq!(
            (shown.len(), hidden),
            (5, 0),
            "exactly full: no summary line"
        );
    }
}
