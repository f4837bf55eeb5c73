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
use super::remote::{Client, ClientError};

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
        if let Some(client) = cx.remote()? {
            return remote_plan(cx, &client, self);
        }
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
        if let Some(client) = cx.remote()? {
            return remote_apply(cx, &client, &self.paths, self.prune);
        }
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
                match valid.github.len() {
                    0 => println!("✓ Valid: {summary}."),
                    1 => println!("✓ Valid: {summary}; 1 GitHub deployment template."),
                    n => println!("✓ Valid: {summary}; {n} GitHub deployment templates."),
                }
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
        print_applied(&plan, &report);
    }
    Ok(ExitCode::SUCCESS)
}

/// What an apply did, as text.
fn print_applied(plan: &Plan, report: &ApplyReport) {
    if !plan.is_empty() {
        print!("{}", with_newline(plan.render()));
        println!();
    }
    println!("{}", report.summary_line());
}

/// `plan PATH... [--prune] [--detailed-exitcode]` through a t-minus
/// service: the manifests are checked here, their `signers:` files
/// inlined, and the service plans them against its store.
fn remote_plan(cx: &Context, client: &Client, args: &PlanArgs) -> Result<ExitCode, CliError> {
    if args.out.is_some() {
        return Err(ClientError::Unsupported {
            what: "`plan --out` (a service applies manifests, not saved plans)".into(),
        }
        .into());
    }
    let body = request_body(&args.paths)?;
    let path = format!("/v1/plan?prune={}", args.prune);
    let plan = client.post::<Plan>(&path, YAML, body)?.value;
    if cx.json() {
        println!("{}", plan.to_json());
    } else {
        print!("{}", with_newline(plan.render()));
    }
    Ok(if args.detailed_exitcode && !plan.is_empty() {
        ExitCode::from(EXIT_CHANGES)
    } else {
        ExitCode::SUCCESS
    })
}

/// `apply PATH... [--prune]` through a t-minus service, as
/// [`remote_plan`] sends them.
fn remote_apply(
    cx: &Context,
    client: &Client,
    paths: &[PathBuf],
    prune: bool,
) -> Result<ExitCode, CliError> {
    if saved_plan(paths)?.is_some() {
        return Err(ClientError::Unsupported {
            what: "applying a saved plan (a service applies manifests)".into(),
        }
        .into());
    }
    let body = request_body(paths)?;
    let reply = client.post::<ApplyResult>(&format!("/v1/apply?prune={prune}"), YAML, body)?;
    if cx.json() {
        super::json::print(&reply.json);
    } else {
        print_applied(&reply.value.plan, &reply.value.report);
    }
    Ok(ExitCode::SUCCESS)
}

/// The media type of a manifest body.
const YAML: &str = "application/yaml";

/// The manifests of `paths` as one YAML request body: checked here first
/// (so their problems point into the files), each `signers:` file replaced
/// by the map of its keys (a service never reads files a manifest names).
fn request_body(paths: &[PathBuf]) -> Result<String, CliError> {
    load(paths).map_err(ManifestError::Invalid)?;
    let limits = manifest::Limits::default();
    let mut manifests = manifest::Manifests::default();
    for path in paths {
        manifests.add_path(path, &limits);
    }
    let mut body = String::new();
    for (index, source) in manifests.sources.iter().enumerate() {
        let mut text = source.text.as_str().to_string();
        let mut inlined = Vec::new();
        for doc in manifests.documents.iter().filter(|d| d.file == index) {
            if let Some(signers) = &doc.spec.signers {
                if let manifest::spec::SignersSpec::File(file) = &signers.value {
                    let span = source.byte_span(signers.span);
                    let (offset, len) = quoted(&text, span.offset(), span.len());
                    inlined.push((offset, len, file.clone()));
                }
            }
        }
        inlined.sort_by_key(|(offset, _, _)| std::cmp::Reverse(*offset));
        let dir = Path::new(&source.name).parent().unwrap_or(Path::new(""));
        for (offset, len, file) in inlined {
            let written = text.get(offset..offset + len).unwrap_or_default();
            if written.trim_matches(['"', '\'']) != file {
                return Err(signers_refusal(
                    &source.name,
                    format!("its `signers: {file}` could not be found in the text to inline it"),
                ));
            }
            let keys = signers_map(&dir.join(&file))?;
            text.replace_range(offset..offset + len, &keys);
        }
        if !body.is_empty() {
            body.push_str("\n---\n");
        }
        body.push_str(text.trim_start_matches("---\n"));
    }
    Ok(body)
}

/// The span `offset..offset + len` of `text`, widened to the quotes
/// around it when the scalar was quoted.
fn quoted(text: &str, offset: usize, len: usize) -> (usize, usize) {
    let bytes = text.as_bytes();
    let end = offset + len;
    match (
        offset.checked_sub(1).and_then(|i| bytes.get(i)),
        bytes.get(end),
    ) {
        (Some(&open), Some(&close)) if open == close && (open == b'"' || open == b'\'') => {
            (offset - 1, len + 2)
        }
        _ => (offset, len),
    }
}

/// The keys of an `allowed_signers` file as a YAML flow map from agents to
/// key lines (`{"alice": "ssh-ed25519 AAAA… alice@laptop"}`). A line with
/// options or patterns, or an agent with several keys, has no such form
/// and is refused.
fn signers_map(path: &Path) -> Result<String, CliError> {
    let name = path.display().to_string();
    // The file's own checks first, with their messages.
    t_minus::trust::Signers::read_allowed_signers(path).map_err(t_minus::TMinusError::from)?;
    let text = std::fs::read_to_string(path).map_err(|e| signers_refusal(&name, e.to_string()))?;
    let mut keys: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let principals = words.next().unwrap_or_default();
        let key: Vec<&str> = words.collect();
        let plain = key.first().is_some_and(|w| {
            w.starts_with("ssh-") || w.starts_with("ecdsa-") || w.starts_with("sk-")
        });
        if !plain || principals.contains(['*', '?', '!', '"']) {
            return Err(signers_refusal(
                &name,
                format!("the line `{principals} …` has options or patterns, which a manifest's inline `signers:` cannot hold"),
            ));
        }
        for agent in principals.split(',') {
            if keys.iter().any(|(a, _)| a == agent) {
                return Err(signers_refusal(
                    &name,
                    format!("{agent} has several keys, and a manifest's inline `signers:` holds one per agent"),
                ));
            }
            keys.push((agent.to_string(), key.join(" ")));
        }
    }
    let entries: Vec<String> = keys
        .iter()
        .map(|(agent, key)| format!("{}: {}", serde_json::json!(agent), serde_json::json!(key)))
        .collect();
    Ok(format!("{{{}}}", entries.join(", ")))
}

/// A `signers:` file that cannot be sent inline.
fn signers_refusal(name: &str, reason: String) -> CliError {
    ClientError::Refused {
        code: "t_minus::client::signers",
        message: format!("cannot send the signers of {name} to the service: {reason}"),
        help: "write the campaign's `signers:` inline, as a map from agent ids to one public key line each, or apply where the store is".into(),
    }
    .into()
}
