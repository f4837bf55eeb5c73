//! `run` and `wait`: drive events to completion and show them.
//!
//! Three displays: a live view redrawn in place on a terminal; one line per
//! transition with a timestamp otherwise (CI logs, no control codes); one
//! JSON object per line with `--json`.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use t_minus::display::{Renderer, RunView, ViewMode};
use t_minus::duration::parse_duration;
use t_minus::engine::EventViews;
use t_minus::notify::Deliverer;
use t_minus::runner::{run, RunOptions, RunOutcome, RunPrinter, Scope};
use t_minus::{Engine, Result};

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
    start_deliverer: impl FnOnce() -> Result<Option<Deliverer>>,
) -> Result<ExitCode> {
    let mut options = RunOptions::new(scope);
    options.timeout = timeout
        .map(parse_duration)
        .transpose()?
        .map(|d| d.to_std().unwrap_or(StdDuration::ZERO));
    let mode = if as_json {
        ViewMode::Json
    } else if std::io::stdout().is_terminal() {
        options.refresh = Some(LIVE_REFRESH);
        ViewMode::Live
    } else {
        ViewMode::Lines
    };
    let rows = console::Term::stdout().size_checked().map(|(rows, _)| rows);
    let mut view = RunView::new(out, mode).with_terminal_rows(rows);
    if let Scope::Event(id) = &options.scope {
        view = view.waiting_for(EventViews::default().label_of(engine, *id)?);
    }
    let mut observer = RunPrinter::new(view);
    let stop = stop_flag();
    // Started once the arguments are known to be good: bad input leaves
    // the store untouched.
    let deliverer = start_deliverer()?;
    let report = run(engine, &options, &mut observer, &stop)?;
    // What the last transitions queued goes out before the run ends;
    // retries due later stay queued for the next run.
    if let Some(deliverer) = deliverer {
        if report.outcome == RunOutcome::Interrupted {
            deliverer.stop()?;
        } else {
            deliverer.finish()?;
        }
    }
    observer.finish(&report);
    Ok(ExitCode::from(report.outcome.exit_code()))
}
