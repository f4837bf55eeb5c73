//! The command line: arguments → library calls → rendering.

mod args;
mod campaign;
mod context;
mod ecosystem;
mod error;
mod events;
mod inbox;
mod json;
mod manifests;
mod mcp;
mod notify;
mod run;
mod show;
mod status;
mod trust;

use std::process::ExitCode;

use clap::Parser;
use t_minus::runner::Scope;
use t_minus::Result;

pub use args::{Cli, Command};
use context::{color_enabled, open_engine};
use error::CliError;
use t_minus::display::Renderer;
use t_minus::display::Styles;

/// Exit code for an error (bad input, failed validation, refused operation).
pub const EXIT_ERROR: u8 = 1;

/// Parses the command line, runs the command, reports errors as miette
/// diagnostics on stderr, and returns the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors exit 1
            // (clap's own 2 is reserved for `plan --detailed-exitcode`).
            let code = if e.use_stderr() { EXIT_ERROR } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    install_error_hook(cli.color);
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            e.print();
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn install_error_hook(choice: args::ColorChoice) {
    use std::io::IsTerminal;
    let color = match choice {
        args::ColorChoice::Always => true,
        args::ColorChoice::Never => false,
        args::ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
        }
    };
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .color(color)
                .unicode(true)
                .terminal_links(false)
                .build(),
        )
    }));
}

fn run(cli: &Cli) -> Result<ExitCode, CliError> {
    match &cli.command {
        // `validate` reads only files: it neither needs nor creates a store.
        Command::Validate { paths, json } => manifests::validate(paths, *json),
        // Neither needs a store: they describe the command line itself.
        Command::Completions { shell } => Ok(ecosystem::completions(*shell)),
        Command::Man => Ok(ecosystem::man()),
        // The server opens the store itself, once per tool call.
        Command::Mcp { agent, sign } => mcp::serve(cli, agent, sign.as_deref()),
        _ => run_with_store(cli),
    }
}

fn run_with_store(cli: &Cli) -> Result<ExitCode, CliError> {
    let live = matches!(cli.command, Command::Run { .. } | Command::Wait { .. });
    let mut engine = open_engine(cli, live)?;
    let styles = Styles::new(color_enabled(cli.color));
    let mut out = Renderer::new(styles, engine.now());
    let engine = &mut engine;
    match &cli.command {
        Command::Validate { paths, json } => manifests::validate(paths, *json),
        Command::Completions { shell } => Ok(ecosystem::completions(*shell)),
        Command::Man => Ok(ecosystem::man()),
        Command::Plan {
            paths,
            out: file,
            detailed_exitcode,
            prune,
            json,
        } => {
            if let Some(file) = file {
                refuse_store_as_plan_out(&cli.db, file)?;
            }
            manifests::plan(
                engine,
                paths,
                file.as_deref(),
                *detailed_exitcode,
                *prune,
                *json,
            )
        }
        Command::Apply { paths, prune, json } => manifests::apply(engine, paths, *prune, *json),
        Command::Schedule(args) => done(events::schedule(engine, &mut out, args)),
        Command::Confirm {
            event,
            agent,
            sign,
            json,
        } => done(events::respond(
            engine,
            event,
            agent,
            events::Answer::Confirm,
            sign.as_deref(),
            *json,
        )),
        Command::Defer {
            event,
            agent,
            duration,
            sign,
            json,
        } => done(events::respond(
            engine,
            event,
            agent,
            events::Answer::Defer(duration),
            sign.as_deref(),
            *json,
        )),
        Command::Decline {
            event,
            agent,
            reason,
            sign,
            json,
        } => done(events::respond(
            engine,
            event,
            agent,
            events::Answer::Decline(reason.clone()),
            sign.as_deref(),
            *json,
        )),
        Command::Cancel {
            target,
            reason,
            json,
        } => done(events::cancel(engine, target, reason.clone(), *json)),
        Command::Status { target, all, json } => done(status::status(
            engine,
            &mut out,
            target.as_deref(),
            *all,
            *json,
        )),
        Command::Tick { json, no_notify } => {
            done(events::tick(engine, &mut out, *json, !*no_notify))
        }
        Command::Notify(command) => Ok(notify::command(engine, command)?),
        Command::Log { event, json } => done(events::log(engine, &mut out, event, *json)),
        Command::Verify {
            target,
            since,
            json,
        } => done(trust::verify(
            engine,
            target.as_deref(),
            since.as_deref(),
            *json,
        )),
        Command::AnswerMessage {
            event,
            agent,
            answer,
            duration,
            reason,
        } => done(trust::answer_message(
            engine,
            event,
            agent,
            answer,
            duration.as_deref(),
            reason.clone(),
        )),
        Command::Submit {
            message,
            signature,
            json,
        } => done(trust::submit(engine, message, signature, *json)),
        Command::Attest {
            campaign,
            out: file,
        } => done(trust::attest(engine, campaign, file.as_deref())),
        Command::Inbox { agent, all, json } => {
            done(inbox::inbox(engine, &mut out, agent, *all, *json))
        }
        Command::Mcp { agent, sign } => mcp::serve(cli, agent, sign.as_deref()),
        Command::Campaign(command) => done(campaign::run(engine, &mut out, command)),
        Command::Run {
            paths,
            campaigns,
            timeout,
            json,
            no_notify,
        } => {
            let mut names = campaigns.clone();
            if !paths.is_empty() {
                let (plan, report, valid) = manifests::apply_paths(engine, paths, false)?;
                if !*json {
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
            Ok(run::drive(
                engine,
                out,
                scope,
                timeout.as_deref(),
                *json,
                || notify::start(cli, *no_notify),
            )?)
        }
        Command::Wait {
            event,
            timeout,
            json,
            no_notify,
        } => {
            let id = engine.resolve_event(event)?;
            Ok(run::drive(
                engine,
                out,
                Scope::Event(id),
                timeout.as_deref(),
                *json,
                || notify::start(cli, *no_notify),
            )?)
        }
    }
}

/// `plan --out FILE` must not overwrite the store or its WAL files.
fn refuse_store_as_plan_out(db: &std::path::Path, out: &std::path::Path) -> Result<(), CliError> {
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
            return Err(t_minus::plan::ManifestError::PlanOutIsStore {
                path: out.display().to_string(),
            }
            .into());
        }
    }
    Ok(())
}

/// A command that printed its output and succeeded.
fn done(result: Result<()>) -> Result<ExitCode, CliError> {
    result.map(|()| ExitCode::SUCCESS).map_err(CliError::from)
}
