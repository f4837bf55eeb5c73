//! `validate`, `plan` and `apply`: manifests against the store.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use t_minus::manifest::{self, Diagnostics, ValidManifests, ValidateOptions};
use t_minus::output::{ApplyResult, Validation};
use t_minus::plan::{is_plan_file, ApplyReport, ManifestError, Plan, PlanOptions};
use t_minus::Engine;

use super::args::{ApplyArgs, PlanArgs, ValidateArgs};
use super::context::Context;
use super::error::CliError;

/// Exit code of `plan --detailed-exitcode` when there are changes.
pub const EXIT_CHANGES: u8 = 2;

/// Loads and validates manifests. `validate` checks them on their own; plan
/// and apply also check them against the store (new events already past).
pub fn load(paths: &[PathBuf]) -> Result<ValidManifests, Diagnostics> {
    manifest::check(paths, &ValidateOptions::default())
}

impl ValidateArgs {
    /// `validate PATH...`: reads only files; it neither needs nor creates a
    /// store.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        validate(&self.paths, cx.json())
    }
}

impl PlanArgs {
    /// `plan PATH... [--out FILE] [--detailed-exitcode] [--prune]`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let mut s = cx.open()?;
        if let Some(file) = &self.out {
            refuse_store_as_plan_out(&cx.cli.db, file)?;
        }
        let out = self.out.as_deref();
        let (detailed, prune) = (self.detailed_exitcode, self.prune);
        plan(&mut s.engine, &self.paths, out, detailed, prune, cx.json())
    }
}

impl ApplyArgs {
    /// `apply PATH...|PLANFILE [--prune]`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let mut s = cx.open()?;
        apply(&mut s.engine, &self.paths, self.prune, cx.json())
    }
}

/// `plan --out FILE` must not overwrite the store or its WAL files.
fn refuse_store_as_plan_out(db: &Path, out: &Path) -> Result<(), CliError> {
    let Ok(out_real) = std::fs::canonicalize(out) else {
        return Ok(()); // it does not exist yet
    };
    let mut names = vec![db.as_os_str().to_owned()];
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        names.push(name);
    }
    for name in names {
        if std::fs::canonicalize(&name).is_ok_and(|p| p == out_real) {
            return Err(ManifestError::PlanOutIsStore {
                path: out.display().to_string(),
            }
            .into());
        }
    }
    Ok(())
}

/// `validate PATH... [--json]`.
fn validate(paths: &[PathBuf], as_json: bool) -> Result<ExitCode, CliError> {
    match load(paths) {
        Ok(valid) => {
            let summary = valid.summary();
            if as_json {
                super::json::print(&Validation::valid(summary));
            } else {
                println!("✓ Valid: {summary}.");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(diagnostics) if as_json => {
            super::json::print(&Validation::invalid(diagnostics.iter()));
            Ok(ExitCode::from(super::EXIT_ERROR))
        }
        Err(diagnostics) => Err(ManifestError::Invalid(diagnostics).into()),
    }
}

/// `plan PATH... [--out FILE] [--detailed-exitcode] [--prune] [--json]`.
fn plan(
    engine: &mut Engine,
    paths: &[PathBuf],
    out: Option<&Path>,
    detailed: bool,
    prune: bool,
    as_json: bool,
) -> Result<ExitCode, CliError> {
    let valid = load(paths).map_err(ManifestError::Invalid)?;
    let plan = engine.plan(&valid, &PlanOptions { prune, now: None })?;
    if let Some(file) = out {
        std::fs::write(file, plan.to_json()).map_err(|e| ManifestError::PlanWrite {
            path: file.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    if as_json {
        println!("{}", plan.to_json());
    } else {
        print!("{}", with_newline(plan.render()));
        if let Some(file) = out {
            println!(
                "\nSaved the plan to {}. Apply exactly this plan with:\n  t-minus apply {}",
                file.display(),
                file.display()
            );
        }
    }
    Ok(if detailed && !plan.is_empty() {
        ExitCode::from(EXIT_CHANGES)
    } else {
        ExitCode::SUCCESS
    })
}

fn with_newline(mut text: String) -> String {
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// Reads `path` as a saved plan, if it is one.
fn saved_plan(paths: &[PathBuf]) -> Result<Option<Plan>, CliError> {
    let [path] = paths else {
        return Ok(None);
    };
    if !path.is_file() {
        return Ok(None);
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    if !is_plan_file(&text) {
        return Ok(None);
    }
    Ok(Some(Plan::from_json(&text)?))
}

/// Applies manifests (or a saved plan); returns the plan applied and the
/// report. Shared by `apply` and `run PATH...`.
pub fn apply_paths(
    engine: &mut Engine,
    paths: &[PathBuf],
    prune: bool,
) -> Result<(Plan, ApplyReport, Option<ValidManifests>), CliError> {
    if let Some(plan) = saved_plan(paths)? {
        let report = with_progress("Applying the saved plan", || engine.apply_plan(&plan))?;
        return Ok((plan, report, None));
    }
    let valid =
        with_progress("Validating manifests", || load(paths)).map_err(ManifestError::Invalid)?;
    let message = format!("Applying {}", valid.summary());
    let (plan, report) = with_progress(&message, || {
        engine.apply_manifests(&valid, &PlanOptions { prune, now: None })
    })?;
    Ok((plan, report, Some(valid)))
}

/// How long work may take before a spinner appears.
const PROGRESS_AFTER: Duration = Duration::from_millis(300);

/// Runs `work`, showing a spinner on stderr when it is a terminal and the
/// work takes more than a moment ([`PROGRESS_AFTER`]).
fn with_progress<T>(message: &str, work: impl FnOnce() -> T) -> T {
    if !std::io::stderr().is_terminal() {
        return work();
    }
    let bar = ProgressBar::hidden();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.to_string());
    // The flag and the bar change together under the lock, so the spinner
    // is never revealed after the work finished.
    let done = std::sync::Arc::new(std::sync::Mutex::new(false));
    let reveal = std::thread::spawn({
        let (bar, done) = (bar.clone(), done.clone());
        move || {
            std::thread::park_timeout(PROGRESS_AFTER);
            let done = done.lock().unwrap_or_else(|e| e.into_inner());
            if !*done {
                bar.set_draw_target(ProgressDrawTarget::stderr());
                bar.enable_steady_tick(Duration::from_millis(100));
            }
        }
    });
    let result = work();
    {
        let mut done = done.lock().unwrap_or_else(|e| e.into_inner());
        *done = true;
        bar.finish_and_clear();
    }
    reveal.thread().unpark();
    let _ = reveal.join();
    result
}

/// `apply PATH...|PLANFILE [--prune] [--json]`.
fn apply(
    engine: &mut Engine,
    paths: &[PathBuf],
    prune: bool,
    as_json: bool,
) -> Result<ExitCode, CliError> {
    let (plan, report, _) = apply_paths(engine, paths, prune)?;
    if as_json {
        super::json::print(&ApplyResult { plan, report });
    } else {
        if !plan.is_empty() {
            print!("{}", with_newline(plan.render()));
            println!();
        }
        println!("{}", report.summary_line());
    }
    Ok(ExitCode::SUCCESS)
}
