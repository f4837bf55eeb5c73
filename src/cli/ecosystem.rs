//! `completions` and `man`: what a shell and `man` need. Neither opens a
//! store, so they work anywhere (packaging scripts, fresh machines).

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

use super::args::{Cli, CompletionsArgs};
use super::error::CliError;

impl CompletionsArgs {
    /// `completions SHELL`: needs no store.
    pub fn run(&self) -> Result<ExitCode, CliError> {
        Ok(completions(self.shell))
    }
}

/// The command tree with every subcommand's `bin_name` filled in
/// (`t-minus campaign add`), as `--help` shows it.
fn command() -> clap::Command {
    let mut cmd = Cli::command().bin_name("t-minus");
    cmd.build();
    cmd
}

/// `completions SHELL`: the completion script on stdout.
fn completions(shell: Shell) -> ExitCode {
    let mut cmd = command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "t-minus", &mut out);
    write_stdout(&out)
}

/// `man`: the man page (roff) on stdout.
pub fn man() -> ExitCode {
    match man_page() {
        Ok(page) => write_stdout(&page),
        Err(e) => {
            eprintln!("error: cannot render the man page: {e}");
            ExitCode::from(super::EXIT_ERROR)
        }
    }
}

/// Writes `bytes` to stdout; a closed pipe (`t-minus man | head`) is not an error.
fn write_stdout(bytes: &[u8]) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            ExitCode::from(super::EXIT_ERROR)
        }
    }
}

/// The man page: clap_mangen's page for `t-minus` (NAME, SYNOPSIS,
/// DESCRIPTION, OPTIONS), then a COMMANDS section with every subcommand's
/// usage, options, examples and exit codes (in place of clap_mangen's list of
/// `t-minus-SUBCOMMAND(1)` pages, which are not installed), then NOTES (the
/// top-level examples and exit codes) and VERSION.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    let cmd = command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    let page = String::from_utf8_lossy(&page).into_owned();
    let mut commands = String::from(".SH COMMANDS\n");
    for sub in cmd.get_subcommands() {
        command_section(&mut commands, sub);
    }
    // Cut the SUBCOMMANDS section (up to the next heading) and put the
    // COMMANDS section there.
    let page = match page.find(".SH SUBCOMMANDS\n") {
        Some(start) => {
            let rest = &page[start + 1..];
            let end = rest
                .find("\n.SH ")
                .map_or(page.len(), |i| start + 1 + i + 1);
            format!("{}{commands}{}", &page[..start], &page[end..])
        }
        None => format!("{page}{commands}"),
    };
    let page = page.replace(".SH EXTRA\n", ".SH NOTES\n");
    Ok(ascii_roff(&page).into_bytes())
}

/// Writes every non-ASCII character as a roff escape (`→` as `\[u2192]`),
/// so that troff renders it without a preprocessor.
fn ascii_roff(page: &str) -> String {
    let mut out = String::with_capacity(page.len());
    for c in page.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", u32::from(c)));
        }
    }
    out
}

/// One subcommand (and, recursively, its own subcommands) as a `.SS` block.
fn command_section(text: &mut String, cmd: &clap::Command) {
    if cmd.is_hide_set() || cmd.get_name() == "help" {
        return;
    }
    let name = cmd.get_bin_name().unwrap_or(cmd.get_name()).to_string();
    text.push_str(&format!(".SS \"{}\"\n", escape(&name)));
    if let Some(about) = cmd.get_long_about().or(cmd.get_about()) {
        text.push_str(&format!("{}\n", paragraph(&about.to_string())));
    }
    let usage = cmd.clone().render_usage().to_string();
    let usage = usage.trim_start_matches("Usage:").trim();
    text.push_str(&format!(".PP\n\\fB{}\\fR\n", escape(usage)));
    for arg in cmd.get_arguments() {
        if arg.is_hide_set() || matches!(arg.get_id().as_str(), "help" | "version") {
            continue;
        }
        if arg.is_global_set() {
            continue;
        }
        let mut head = match (arg.get_long(), arg.get_short()) {
            (Some(long), Some(short)) => format!("\\fB\\-{short}\\fR, \\fB\\-\\-{long}\\fR"),
            (Some(long), None) => format!("\\fB\\-\\-{}\\fR", escape(long)),
            (None, Some(short)) => format!("\\fB\\-{short}\\fR"),
            (None, None) => String::new(),
        };
        let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
        if takes_value {
            let value = arg
                .get_value_names()
                .map(|names| {
                    names
                        .iter()
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
            if !head.is_empty() {
                head.push(' ');
            }
            head.push_str(&format!("\\fI{}\\fR", escape(&value)));
        }
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        text.push_str(&format!(".TP\n{head}\n{}\n", paragraph(&help)));
    }
    if let Some(after) = cmd.get_after_long_help().or(cmd.get_after_help()) {
        text.push_str(&format!(
            ".PP\n.nf\n{}\n.fi\n",
            escape_lines(&after.to_string())
        ));
    }
    for sub in cmd.get_subcommands() {
        command_section(text, sub);
    }
}

/// Escapes text for roff: backslashes, and hyphens so they stay hyphens.
fn escape(text: &str) -> String {
    text.replace('\\', "\\e").replace('-', "\\-")
}

/// Escapes every line, guarding lines that would start a roff request.
fn escape_lines(text: &str) -> String {
    text.lines()
        .map(|line| {
            let line = escape(line);
            if line.starts_with('.') || line.starts_with('\'') {
                format!("\\&{line}")
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Free text as one filled paragraph.
fn paragraph(text: &str) -> String {
    escape_lines(&text.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_clap_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn the_man_page_is_ascii() {
        let page = super::man_page().unwrap();
        assert!(page.is_ascii());
        let text = String::from_utf8(page).unwrap();
        assert!(text.contains("\\[u2192]"), "→ is escaped");
    }
}
