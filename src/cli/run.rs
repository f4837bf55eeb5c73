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

use super::args::{RunArgs, WaitArgs};
use super::context::Context;
use super::error::CliError;

impl RunArgs {
    /// `run [PATH...] [--campaign NAME...] [--timeout DUR]`: applies the
    /// manifests first, then drives their campaigns (or the named ones, or
    /// every unfinished event).
    pub fn run(&self, cx: &Context) -> std::result::Result<ExitCode, CliError> {
        let mut s = cx.open_live()?;
        let engine = &mut s.engine;
        let mut names = self.campaigns.clone();
        if !self.paths.is_empty() {
            let (plan, report, valid) = super::manifests::apply_paths(engine, &self.paths, false)?;
            if !cx.json() {
                println!("{} {}", plan.summary_line(), report.summary_line());
            }
            if names.is_empty() {
                names.extend(
                    valid
                        .iter()
                        .flat_map(|v| v.campaigns.iter().map(|c| c.name.clone())),
                );
                names.extend(report.campaigns.iter().map(|c| c.name.clone()));
                names.sort();
                names.dedup();
            }
        }
        let scope = if names.is_empty() {
            Scope::All
        } else {
            let ids = names
                .iter()
                .map(|c| engine.resolve_campaign(c))
                .collect::<Result<Vec<_>>>()?;
            Scope::Campaigns(ids)
        };
        let timeout = self.timeout.as_deref();
        let deliverer = || super::notify::start(cx.cli, self.no_notify);
        Ok(drive(engine, s.out, scope, timeout, cx.json(), deliverer)?)
    }
}

impl WaitArgs {
    /// `wait EVENT [--timeout DUR]`; through a t-minus service, it follows
    /// the service's stream ([`super::wait_remote`]).
    pub fn run(&self, cx: &Context) -> std::result::Result<ExitCode, CliError> {
        if let Some(client) = cx.remote()? {
            return super::wait_remote::wait(cx, &client, &self.event, self.timeout.as_deref());
        }
        let mut s = cx.open_live()?;
        let id = s.engine.resolve_event(&self.event)?;
        let timeout = self.timeout.as_deref();
        let deliverer = || super::notify::start(cx.cli, self.no_notify);
        Ok(drive(
            &mut s.engine,
            s.out,
            Scope::Event(id),
            timeout,
            cx.json(),
            deliverer,
        )?)
    }
}

/// How often the live view redraws its countdowns.
pub(super) const LIVE_REFRESH: StdDuration = StdDuration::from_millis(250);

/// A flag raised by Ctrl-C; the runner stops at its next poll.
pub(super) fn stop_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let raised = flag.clone();
    // Only one handler can be installed per process; if that fails the
    // default SIGINT behaviour (immediate exit) remains, which loses nothing:
    // every step is its own committed transaction.
    let _ = ctrlc::set_handler(move || raised.store(true, Ordering::SeqCst));
    flag
}

/// Drives `scope` to completion with the display that fits stdout.
fn drive(
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
