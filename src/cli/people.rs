//! `people …`: the people who answer from outside a terminal: the passkeys
//! they answer with from a browser (`people invite|list|revoke`) and the
//! chat accounts they answer from (`people link AGENT --slack USER_ID`,
//! `people unlink`, `people links`).

use std::process::ExitCode;

use t_minus::chat::{Chat, ChatLink};
use t_minus::duration::parse_duration;
use t_minus::people::relying_party;
use t_minus::time_spec::format_time;
use t_minus::{AgentId, TMinusError};

use super::args::{PeopleCommand, PeopleInviteArgs, PeopleRevokeArgs};
use super::context::Context;
use super::error::CliError;
use super::json;

impl PeopleCommand {
    /// `people …`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        match self {
            PeopleCommand::Invite(args) => return args.run(cx),
            PeopleCommand::List => return list(cx),
            PeopleCommand::Revoke(args) => return args.run(cx),
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

impl PeopleInviteArgs {
    /// `people invite AGENT [--expires DUR] --public-url URL`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let agent = AgentId::parse(&self.agent)?;
        let expires = self.expires.as_deref().map(parse_duration).transpose()?;
        let (origin, _) = relying_party(&self.public_url).map_err(TMinusError::from)?;
        let mut s = cx.open()?;
        let new = s.engine.invite_person(&agent, expires)?;
        let link = format!("{origin}/enrol/{}", new.secret);
        if cx.json() {
            json::print(&serde_json::json!({
                "invitation": new.invitation,
                "link": link,
            }));
        } else {
            println!(
                "Invited {} to enrol a passkey (invitation {}, valid until {}).",
                new.invitation.agent,
                new.invitation.id,
                format_time(new.invitation.expires_at)
            );
            println!("Send them this link; it works once and is not shown again:");
            println!("{link}");
        }
        Ok(ExitCode::SUCCESS)
    }
}

impl PeopleRevokeArgs {
    /// `people revoke PASSKEY`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let mut s = cx.open()?;
        let passkey = s.engine.revoke_passkey(&self.passkey)?;
        if cx.json() {
            json::print(&passkey);
        } else {
            println!(
                "Revoked passkey {} of {}; its sessions are ended.",
                passkey.credential, passkey.agent
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// `people list`.
fn list(cx: &Context) -> Result<ExitCode, CliError> {
    let s = cx.open()?;
    let passkeys = s.engine.passkeys()?;
    let now = s.engine.now();
    let open: Vec<_> = s
        .engine
        .invitations()?
        .into_iter()
        .filter(|i| i.used_at.is_none() && now < i.expires_at)
        .collect();
    if cx.json() {
        json::print(&serde_json::json!({ "passkeys": passkeys, "invitations": open }));
        return Ok(ExitCode::SUCCESS);
    }
    if passkeys.is_empty() && open.is_empty() {
        println!("No passkeys. (`t-minus people invite AGENT` makes an enrolment link.)");
    }
    for p in &passkeys {
        let state = match p.revoked_at {
            Some(at) => format!("revoked {}", format_time(at)),
            None => "active".to_string(),
        };
        println!(
            "{}  {}  {}  {}  enrolled {}  {state}",
            p.id,
            p.agent,
            p.algorithm,
            p.credential,
            format_time(p.created_at)
        );
    }
    for i in &open {
        println!(
            "{}  {}  invited, not enrolled yet  until {}",
            i.id,
            i.agent,
            format_time(i.expires_at)
        );
    }
    Ok(ExitCode::SUCCESS)
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
