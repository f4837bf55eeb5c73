//! The command line: arguments → library calls → rendering. Each
//! subcommand's arguments are a struct (`args.rs`) whose `run` (in the
//! command's module) does all of it.

mod args;
mod campaign;
mod context;
mod delegations;
mod ecosystem;
mod error;
mod events;
mod inbox;
mod json;
mod manifests;
mod mcp;
mod notify;
mod people;
mod remote;
mod run;
mod serve;
mod show;
mod status;
mod trust;
mod wait_remote;

use std::process::ExitCode;

use clap::Parser;
use t_minus::Result;

pub use args::{Cli, Command};
use context::Context;
use error::CliError;

/// Exit code for an error (bad input, failed validation, refused operation).
pub const EXIT_ERROR: u8 = 1;

/// Parses the command line, runs the command, reports errors (as miette
/// diagnostics on stderr, or with `--json` as an error object on stdout),
/// and returns the exit code.
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
            // With --json, a service's error object is printed as it was sent.
            let sent = match &e {
                CliError::Remote(remote) if cli.json => match remote.as_ref() {
                    remote::ClientError::Server { raw, .. } => Some(raw.as_ref().clone()),
                    _ => None,
                },
                _ => None,
            };
            if let Some(raw) = sent {
                json::print(&raw);
            } else if cli.json {
                let lines = matches!(cli.command, Command::Run(_) | Command::Wait(_));
                json::print_error(&e.output(), lines);
            } else {
                e.print();
            }
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

/// Runs the command: one line per subcommand.
fn run(cli: &Cli) -> Result<ExitCode, CliError> {
    let cx = &Context::new(cli);
    match &cli.command {
        Command::Validate(args) => args.run(cx),
        Command::Plan(args) => args.run(cx),
        Command::Apply(args) => args.run(cx),
        Command::Schedule(args) => args.run(cx),
        Command::Confirm(args) => args.run(cx),
        Command::Defer(args) => args.run(cx),
        Command::Decline(args) => args.run(cx),
        Command::Cancel(args) => args.run(cx),
        Command::Breakglass(args) => args.run(cx),
        Command::Status(args) => args.run(cx),
        Command::Tick(args) => args.run(cx),
        Command::Log(args) => args.run(cx),
        Command::Verify(args) => args.run(cx),
        Command::AnswerMessage(args) => args.run(cx),
        Command::Submit(args) => args.run(cx),
        Command::Attest(args) => args.run(cx),
        Command::Run(args) => args.run(cx),
        Command::Inbox(args) => args.run(cx),
        Command::Mcp(args) => args.run(cx),
        Command::Serve(args) => args.run(cx),
        Command::Token(command) => command.run(cx),
        Command::People(command) => command.run(cx),
        Command::Delegate(args) => args.run(cx),
        Command::Delegations(args) => args.run(cx),
        Command::Undelegate(args) => args.run(cx),
        Command::Wait(args) => args.run(cx),
        Command::Campaign(command) => command.run(cx),
        Command::Notify(command) => command.run(cx),
        Command::Completions(args) => args.run(),
        Command::Man => Ok(ecosystem::man()),
    }
}

/// A command that printed its output and succeeded.
fn done(result: Result<()>) -> Result<ExitCode, CliError> {
    result.map(|()| ExitCode::SUCCESS).map_err(CliError::from)
}
