//! `run` and `wait`: drive events to completion and show them.
//!
//! Three displays: a live view redrawn in place on a terminal; one line per
//! transition with a timestamp otherwise (CI logs, no control codes); one
//! JSON object per line with `--json`.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use serde_json::json;
use t_minus::duration::{format_countdown, parse_duration};
use t_minus::runner::{run, RunObserver, RunOptions, RunOutcome, RunReport, Scope};
use t_minus::time_spec::format_time;
use t_minus::{AuditAction, AuditEntry, Engine, EventState, ResponseStatus, Result, TMinusEvent};

use super::context::Styles;
use super::render::Renderer;

/// How often the live view redraws its countdowns.
const LIVE_REFRESH: StdDuration = StdDuration::from_millis(250);

/// A flag raised by Ctrl-C; the runner stops at its next poll.
fn stop_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let raised = flag.clone();
    // Only one handler can be installed per process; if that fails the
    // default SIGINT behaviour (immediate exit) remains, which loses nothing:
    // every step is its own committed transaction.
    let _ = ctrlc::set_handler(move || raised.store(true, Ordering::SeqCst));
    flag
}

/// Drives `scope` to completion with the display that fits stdout.
pub fn drive(
    engine: &mut Engine,
    out: Renderer,
    scope: Scope,
    timeout: Option<&str>,
    as_json: bool,
) -> Result<ExitCode> {
    let mut options = RunOptions::new(scope);
    options.timeout = timeout
        .map(parse_duration)
        .transpose()?
        .map(|d| d.to_std().unwrap_or(StdDuration::ZERO));
    let mut display = if as_json {
        Display::Json
    } else if std::io::stdout().is_terminal() {
        options.refresh = Some(LIVE_REFRESH);
        Display::Live { drawn: 0 }
    } else {
        Display::Lines
    };
    let mut observer = Observer {
        out,
        display: &mut display,
    };
    let stop = stop_flag();
    let report = run(engine, &options, &mut observer, &stop)?;
    observer.finish(&report);
    Ok(ExitCode::from(report.outcome.exit_code()))
}

enum Display {
    Lines,
    Json,
    Live { drawn: usize },
}

struct Observer<'a> {
    out: Renderer,
    display: &'a mut Display,
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

impl Observer<'_> {
    /// `2025-06-06T15:00:00Z 🚀 fired release-v2/review [a1b2c3d4] (quorum reached)`
    fn line(
        &mut self,
        engine: &mut Engine,
        entry: &AuditEntry,
        event: &TMinusEvent,
    ) -> Result<String> {
        let label = self.out.names.label(engine, event)?;
        let s = self.out.styles;
        Ok(format!(
            "{} {} {} [{}] ({})",
            Styles::paint(s.dim, format_time(entry.at)),
            action_word(entry.action),
            Styles::paint(s.bold, label),
            event.short_id(),
            reason(entry)
        ))
    }

    /// Erases the live block drawn last.
    fn clear_live(&mut self) {
        if let Display::Live { drawn } = self.display {
            if *drawn > 0 {
                print!("\x1b[{}F\x1b[J", *drawn);
                *drawn = 0;
            }
        }
    }

    fn finish(&mut self, report: &RunReport) {
        let summary = &report.summary;
        let outcome = match report.outcome {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Failed => "failed",
            RunOutcome::TimedOut => "timed out",
            RunOutcome::Interrupted => "interrupted",
        };
        if let Display::Json = self.display {
            println!(
                "{}",
                json!({
                    "type": "summary",
                    "outcome": outcome,
                    "fired": summary.fired,
                    "missed": summary.missed,
                    "cancelled": summary.cancelled,
                    "unfinished": summary.unfinished,
                })
            );
            return;
        }
        self.clear_live();
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

impl RunObserver for Observer<'_> {
    fn transition(
        &mut self,
        engine: &mut Engine,
        entry: &AuditEntry,
        event: &TMinusEvent,
    ) -> Result<()> {
        match self.display {
            Display::Json => {
                let label = self.out.names.label(engine, event)?;
                println!(
                    "{}",
                    json!({
                        "type": "transition",
                        "seq": entry.seq,
                        "at": format_time(entry.at),
                        "event": event.id,
                        "label": label,
                        "action": entry.action,
                        "state": event.state,
                        "reason": reason(entry),
                    })
                );
            }
            Display::Lines => {
                let line = self.line(engine, entry, event)?;
                println!("{line}");
            }
            Display::Live { .. } => {
                self.clear_live();
                let line = self.line(engine, entry, event)?;
                println!("{line}");
            }
        }
        std::io::stdout().flush().ok();
        Ok(())
    }

    fn refresh(
        &mut self,
        engine: &mut Engine,
        events: &[TMinusEvent],
        now: DateTime<Utc>,
    ) -> Result<()> {
        if !matches!(self.display, Display::Live { .. }) {
            return Ok(());
        }
        self.clear_live();
        let mut lines = Vec::new();
        for event in events.iter().filter(|e| !e.state.is_final()) {
            lines.push(self.live_line(engine, event, now)?);
        }
        for line in &lines {
            println!("{line}");
        }
        if let Display::Live { drawn } = self.display {
            *drawn = lines.len();
        }
        std::io::stdout().flush().ok();
        Ok(())
    }
}

impl Observer<'_> {
    /// `T-4m32s  release-v2/review  [██░] 2/3  alice ✓ bob ⏳ carol ·`
    fn live_line(
        &mut self,
        engine: &mut Engine,
        event: &TMinusEvent,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let s = self.out.styles;
        let countdown = match (event.state, event.fire_deadline()) {
            (EventState::Blocked, _) => "blocked".to_string(),
            (_, Some(fire)) if fire > now => format!("T-{}", format_countdown(fire - now)),
            (_, Some(_)) => "due".to_string(),
            (_, None) => "pending".to_string(),
        };
        let width = event.quorum.min(10);
        let filled = if event.quorum == 0 {
            0
        } else {
            (event.confirmed_count().min(event.quorum) * width).div_ceil(event.quorum.max(1))
        };
        let bar = format!("{}{}", "█".repeat(filled), "░".repeat(width - filled));
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
        let label = self.out.names.label(engine, event)?;
        Ok(format!(
            "{:>9}  {}  [{}] {}/{}  {}",
            Styles::paint(s.wait, countdown),
            Styles::paint(s.bold, label),
            bar,
            event.confirmed_count(),
            event.quorum,
            who.join(" ")
        ))
    }
}
