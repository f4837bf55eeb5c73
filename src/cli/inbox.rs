//! `inbox AGENT`: the events waiting for an agent's answer.

use std::process::ExitCode;

use t_minus::display::{EventView, Renderer};
use t_minus::engine::EventViews;
use t_minus::output::{Event, Inbox};
use t_minus::{AgentId, Engine, Result};

use super::args::InboxArgs;
use super::context::Context;
use super::error::CliError;
use super::remote::{Client, ClientError};
use super::{done, json};

impl InboxArgs {
    /// `inbox AGENT [--all]`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        if let Some(client) = cx.remote()? {
            return remote_inbox(cx, &client, &self.agent, self.all);
        }
        let mut s = cx.open()?;
        done(inbox(
            &mut s.engine,
            &mut s.out,
            &self.agent,
            self.all,
            cx.json(),
        ))
    }
}

/// `inbox AGENT [--all] [--json]`.
fn inbox(
    engine: &mut Engine,
    out: &mut Renderer,
    agent: &str,
    all: bool,
    as_json: bool,
) -> Result<()> {
    let mut views = EventViews::default();
    let agent = AgentId::parse(agent)?;
    let events = if all {
        engine.inbox_all(&agent)?
    } else {
        engine.inbox(&agent)?
    };
    if as_json {
        let mut list = Vec::with_capacity(events.len());
        for e in &events {
            list.push(Event::read(engine, &mut views, e)?);
        }
        json::print(&list);
        return Ok(());
    }
    let shown = events
        .iter()
        .map(|event| views.named(engine, event))
        .collect::<Result<Vec<_>>>()?;
    print_inbox(out, &agent, &shown, all);
    Ok(())
}

/// The inbox as text: one line per event, or what to do when it is empty.
fn print_inbox(out: &Renderer, agent: &AgentId, views: &[EventView<'_>], all: bool) {
    if views.is_empty() {
        if all {
            println!("Nothing waits for {agent}.");
        } else {
            println!(
                "Nothing waits for {agent}. (`t-minus inbox {agent} --all` shows what it answered.)"
            );
        }
    }
    for view in views {
        println!("{}", out.inbox_line(view, agent));
    }
}

/// `inbox AGENT [--all]` through a t-minus service: the inbox of the
/// token's agent, which must be `AGENT`.
fn remote_inbox(
    cx: &Context,
    client: &Client,
    agent: &str,
    all: bool,
) -> Result<ExitCode, CliError> {
    let agent = AgentId::parse(agent)?;
    let query = if all { "?all=true" } else { "" };
    let inbox = client.get::<Inbox>(&format!("/v1/inbox{query}"))?;
    if inbox.value.agent != agent.as_str() {
        return Err(ClientError::Refused {
            code: "t_minus::auth::other_agent",
            message: format!(
                "the token is {}'s: it cannot read the inbox of {agent}",
                inbox.value.agent
            ),
            help: format!(
                "read {agent}'s inbox with a token of {agent}'s (`t-minus token create {agent}` where the store is)"
            ),
        }
        .into());
    }
    if cx.json() {
        json::print(&inbox.json["events"]);
        return Ok(ExitCode::SUCCESS);
    }
    let events = inbox
        .value
        .events
        .iter()
        .map(|e| e.to_event().map(|event| (event, e.campaign.clone())))
        .collect::<Result<Vec<_>>>()?;
    let views: Vec<EventView<'_>> = events
        .iter()
        .map(|(event, campaign)| EventView::new(event, campaign.clone(), Vec::new()))
        .collect();
    print_inbox(&cx.renderer()?, &agent, &views, all);
    Ok(ExitCode::SUCCESS)
}
