//! `people …`: the people who answer, and the chat accounts they answer
//! from (`people link AGENT --slack USER_ID`, `people unlink`, `people
//! links`).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use t_minus::chat::{Chat, ChatLink};
use t_minus::time_spec::format_time;
use t_minus::AgentId;

use super::context::Context;
use super::error::CliError;
use super::json;

/// `people` subcommands.
#[derive(Debug, Subcommand)]
pub enum PeopleCommand {
    /// Link a Slack account to AGENT: its presses on Slack messages'
    /// buttons answer as AGENT (recorded in the log).
    #[command(after_help = "Example:
  t-minus people link alice --slack U024BE7LH

The Slack user id is in the person's Slack profile (⋮ → Copy member ID).
A Slack account answers as one agent; unlink it first to move it.
Exit codes: 0 linked, 1 error (bad agent or user id, already linked).")]
    Link(LinkArgs),
    /// Remove a Slack account's link (recorded in the log).
    #[command(after_help = "Examples:
  t-minus people unlink --slack U024BE7LH
  t-minus people unlink alice --slack U024BE7LH   (refused unless linked to alice)

Exit codes: 0 unlinked, 1 error (not linked, linked to another agent).")]
    Unlink(UnlinkArgs),
    /// List the linked chat accounts.
    #[command(after_help = "Example:
  t-minus people links --json

Exit codes: 0 success, 1 error (store).")]
    Links,
}

/// `people link`'s arguments.
#[derive(Debug, Args)]
pub struct LinkArgs {
    /// The agent the account answers as.
    pub agent: String,
    /// The Slack user id (`U…` or `W…`).
    #[arg(long, value_name = "USER_ID", required = true)]
    pub slack: String,
}

/// `people unlink`'s arguments.
#[derive(Debug, Args)]
pub struct UnlinkArgs {
    /// The agent it must be linked to (optional: a check).
    pub agent: Option<String>,
    /// The Slack user id.
    #[arg(long, value_name = "USER_ID", required = true)]
    pub slack: String,
}

impl PeopleCommand {
    /// `people …`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        match self {
            PeopleCommand::Link(args) => {
                let agent = AgentId::parse(&args.agent)?;
                let mut s = cx.open()?;
                let link = s.engine.link_chat(&agent, Chat::Slack, &args.slack)?;
                print(cx, &link, "🔗 Linked Slack user {user} to agent {agent}.");
            }
            PeopleCommand::Unlink(args) => {
                let agent = args.agent.as_deref().map(AgentId::parse).transpose()?;
                let mut s = cx.open()?;
                let link = s
                    .engine
                    .unlink_chat(agent.as_ref(), Chat::Slack, &args.slack)?;
                print(cx, &link, "Unlinked Slack user {user} from agent {agent}.");
            }
            PeopleCommand::Links => {
                let s = cx.open()?;
                let links = s.engine.chat_links()?;
                if cx.json() {
                    let all: Vec<serde_json::Value> = links.iter().map(as_json).collect();
                    json::print(&all);
                } else if links.is_empty() {
                    println!("No linked chat accounts. (`t-minus people link AGENT --slack USER_ID` links one.)");
                } else {
                    for l in &links {
                        println!(
                            "{}  {:<6}  {:<12}  {}  linked {}",
                            l.id,
                            l.chat,
                            l.user,
                            l.agent,
                            format_time(l.linked_at)
                        );
                    }
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// A link as `--json` prints it: `{id, chat, user, agent, linked_at}`.
fn as_json(link: &ChatLink) -> serde_json::Value {
    serde_json::json!({
        "id": link.id,
        "chat": link.chat.as_str(),
        "user": link.user,
        "agent": link.agent.as_str(),
        "linked_at": format_time(link.linked_at),
    })
}

/// Prints `link` as JSON, or `text` with `{user}` and `{agent}` filled in.
fn print(cx: &Context, link: &ChatLink, text: &str) {
    if cx.json() {
        json::print(&as_json(link));
    } else {
        println!(
            "{}",
            text.replace("{user}", &link.user)
                .replace("{agent}", link.agent.as_str())
        );
    }
}
