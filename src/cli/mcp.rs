//! `mcp --agent AGENT [--sign KEYFILE|agent]`: the Model Context Protocol
//! server on stdio.

use std::process::ExitCode;

use t_minus::mcp::{serve_stdio, McpServer};
use t_minus::AgentId;

use super::args::McpArgs;
use super::context::{pinned_now, signing_key, Context};
use super::error::CliError;

impl McpArgs {
    /// `mcp --agent AGENT [--sign KEYFILE|agent]`. The server opens the
    /// store itself, once per tool call.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        serve(cx, &self.agent, self.sign.as_deref())
    }
}

/// Serves AGENT's tools on stdin/stdout until the client closes the
/// connection. The store is opened once first, so a bad `--db` fails here
/// (exit 1) rather than in every call; each call opens it again. Nothing but
/// protocol messages goes to stdout; problems go to stderr.
fn serve(cx: &Context, agent: &str, sign: Option<&str>) -> Result<ExitCode, CliError> {
    let cli = cx.cli;
    let agent = AgentId::parse(agent)?;
    let pinned = pinned_now()?;
    // A service's URL (`--db http(s)://…`) is refused, not opened as a file.
    drop(cx.open()?);
    let location = cli.db.to_string_lossy().into_owned();
    let mut server = McpServer::new(location, agent, pinned);
    if let Some(key) = signing_key(sign) {
        server = server.with_signing_key(key);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: could not start the MCP server's runtime: {e}");
            return Ok(ExitCode::from(super::EXIT_ERROR));
        }
    };
    match runtime.block_on(serve_stdio(server)) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(message) => {
            eprintln!("error: {message}");
            Ok(ExitCode::from(super::EXIT_ERROR))
        }
    }
}
