//! `inbox AGENT`: the events waiting for an agent's answer.

use std::process::ExitCode;

use t_minus::display::Renderer;
use t_minus::engine::EventViews;
use t_minus::output::Event;
use t_minus::{AgentId, Engine, Result};

use super::args::InboxArgs;
use super::context::Context;
use super::error::CliError;
use super::{done, json};

impl InboxArgs {
    /// `inbox AGENT [--all]`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
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
    if events.is_empty() {
        if all {
            println!("Nothing waits for {agent}.");
        } else {
            println!(
                "Nothing waits for {agent}. (`t-minus inbox {agent} --all` shows what it answered.)"
            );
        }
    }
    for event in &events {
        let view = views.named(engine, event)?;
        println!("{}", out.inbox_line(&view, &agent));
    }
    Ok(())
}
