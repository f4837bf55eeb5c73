//! The command line: arguments → library calls → rendering.

mod args;
mod campaign;
mod context;
mod events;
mod json;
mod names;
mod render;
mod run;

use std::process::ExitCode;

use clap::Parser;
use t_minus::runner::Scope;
use t_minus::Result;

pub use args::{Cli, Command};
use context::{color_enabled, open_engine, Styles};
use render::Renderer;

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
            eprintln!("{:?}", miette::Report::new(e));
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

fn run(cli: &Cli) -> Result<ExitCode> {
    let live = matches!(cli.command, Command::Run { .. } | Command::Wait { .. });
    let mut engine = open_engine(cli, live)?;
    let styles = Styles::new(color_enabled(cli.color));
    let mut out = Renderer::new(styles, engine.now());
    match &cli.command {
        Command::Schedule(args) => events::schedule(&mut engine, &mut out, args),
        Command::Confirm { event, agent, json } => events::respond(
            &mut engine,
            &mut out,
            event,
            agent,
            events::Answer::Confirm,
            *json,
        ),
        Command::Defer {
            event,
            agent,
            duration,
            json,
        } => events::respond(
            &mut engine,
            &mut out,
            event,
            agent,
            events::Answer::Defer(duration),
            *json,
        ),
        Command::Decline {
            event,
            agent,
            reason,
            json,
        } => events::respond(
            &mut engine,
            &mut out,
            event,
            agent,
            events::Answer::Decline(reason.clone()),
            *json,
        ),
        Command::Cancel {
            target,
            reason,
            json,
        } => events::cancel(&mut engine, &mut out, target, reason.clone(), *json),
        Command::Status { target, all, json } => {
            events::status(&mut engine, &mut out, target.as_deref(), *all, *json)
        }
        Command::Tick { json } => events::tick(&mut engine, &mut out, *json),
        Command::Log { event, json } => events::log(&mut engine, &mut out, event, *json),
        Command::Campaign(command) => campaign::run(&mut engine, &mut out, command),
        Command::Run {
            campaigns,
            timeout,
            json,
        } => {
            let scope = if campaigns.is_empty() {
                Scope::All
            } else {
                let ids = campaigns
                    .iter()
                    .map(|c| engine.resolve_campaign(c))
                    .collect::<Result<Vec<_>>>()?;
                Scope::Campaigns(ids)
            };
            return run::drive(&mut engine, out, scope, timeout.as_deref(), *json);
        }
        Command::Wait {
            event,
            timeout,
            json,
        } => {
            let id = engine.resolve_event(event)?;
            return run::drive(
                &mut engine,
                out,
                Scope::Event(id),
                timeout.as_deref(),
                *json,
            );
        }
    }
    .map(|()| ExitCode::SUCCESS)
}
