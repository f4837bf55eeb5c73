//! `campaign` subcommands.

use std::process::ExitCode;

use t_minus::engine::EventViews;
use t_minus::error::LinkRefusal;
use t_minus::output::{Campaign, CampaignOrder, EventName};
use t_minus::{Engine, Result, TMinusError};
use uuid::Uuid;

use super::args::{
    CampaignAddArgs, CampaignCommand, CampaignCreateArgs, CampaignLinkArgs, CampaignListArgs,
    CampaignOrderArgs, CampaignShowArgs,
};
use super::context::Context;
use super::error::CliError;
use super::events::{new_event, print_created};
use super::{done, json};

/// Resolves an event named inside `campaign`: a bare name first, then any
/// event reference.
fn member(engine: &Engine, campaign_name: &str, text: &str) -> Result<Uuid> {
    if t_minus::name::name_problem(text).is_none() {
        match engine.resolve_event(&format!("{campaign_name}/{text}")) {
            Ok(id) => return Ok(id),
            // A name that cannot be a UUID prefix: say that no such event
            // is in the campaign, not that it is a bad UUID prefix.
            // (A UUID with hyphens, such as `bc038dae-cce5-…`, is a valid
            // name too: it falls through to the UUID lookup.)
            Err(e) if !text.chars().all(|c| c.is_ascii_hexdigit() || c == '-') => return Err(e),
            Err(_) => {}
        }
    }
    engine.resolve_event(text)
}

/// Resolves the `--needs` list of `campaign add`. A need naming the new
/// event itself (`name`) would be a cycle; an unknown one says which
/// campaign was searched.
fn needs(
    engine: &Engine,
    campaign_name: &str,
    name: Option<&str>,
    list: &str,
) -> Result<Vec<Uuid>> {
    let mut ids = Vec::new();
    for text in list.split(',').map(str::trim) {
        if text.is_empty() {
            return Err(TMinusError::InvalidLink(LinkRefusal::EmptyNeed {
                list: list.to_string(),
            }));
        }
        let own = format!("{campaign_name}/{}", name.unwrap_or_default());
        match member(engine, campaign_name, text) {
            Ok(id) => ids.push(id),
            Err(TMinusError::EventNotFound { .. }) if Some(text) == name || text == own => {
                let name = name.unwrap_or_default().to_string();
                return Err(TMinusError::Cycle {
                    cycle: vec![name.clone(), name],
                });
            }
            Err(TMinusError::EventNotFound { .. }) => {
                return Err(TMinusError::InvalidLink(LinkRefusal::UnknownNeed {
                    need: text.to_string(),
                    campaign: campaign_name.to_string(),
                }));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(ids)
}

impl CampaignCommand {
    /// Runs a `campaign` subcommand.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        match self {
            CampaignCommand::Create(args) => args.run(cx),
            CampaignCommand::Add(args) => args.run(cx),
            CampaignCommand::Link(args) => args.run(cx),
            CampaignCommand::Order(args) => args.run(cx),
            CampaignCommand::Show(args) => args.run(cx),
            CampaignCommand::List(args) => args.run(cx),
        }
    }
}

impl CampaignCreateArgs {
    /// `campaign create NAME`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let mut s = cx.open()?;
        let engine = &mut s.engine;
        let campaign = engine.create_campaign(self.name.clone())?;
        if cx.json() {
            json::print(&Campaign::read(engine, &campaign)?);
        } else {
            println!("Created campaign {} {}", campaign.name, campaign.id);
        }
        Ok(ExitCode::SUCCESS)
    }
}

impl CampaignAddArgs {
    /// `campaign add CAMPAIGN KIND TIME`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let mut s = cx.open()?;
        let engine = &mut s.engine;
        let id = engine.resolve_campaign(&self.campaign)?;
        let new = new_event(engine, &self.kind, &self.time, &self.options)?;
        let need_ids = match &self.needs {
            Some(list) => {
                let campaign_name = engine.get_campaign(id)?.map(|c| c.name).unwrap_or_default();
                needs(engine, &campaign_name, self.name.as_deref(), list)?
            }
            None => Vec::new(),
        };
        let event = engine.campaign_add_with_needs(id, new, self.name.clone(), &need_ids)?;
        done(print_created(
            engine,
            &mut s.out,
            "Added",
            &event,
            cx.json(),
        ))
    }
}

impl CampaignLinkArgs {
    /// `campaign link CAMPAIGN FROM TO`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let mut s = cx.open()?;
        let engine = &mut s.engine;
        let id = engine.resolve_campaign(&self.campaign)?;
        let name = engine.get_campaign(id)?.map(|c| c.name).unwrap_or_default();
        let from = member(engine, &name, &self.from)?;
        let to = member(engine, &name, &self.to)?;
        let updated = engine.campaign_link(id, from, to)?;
        if cx.json() {
            json::print(&Campaign::read(engine, &updated)?);
        } else {
            let label = |engine: &Engine, id: Uuid| -> Result<String> {
                Ok(engine
                    .get_event(id)?
                    .map_or_else(|| id.to_string(), |e| e.display_name()))
            };
            let (from, to) = (label(engine, from)?, label(engine, to)?);
            println!("Linked {name}: {from} → {to} ({to} needs {from})");
        }
        Ok(ExitCode::SUCCESS)
    }
}

impl CampaignOrderArgs {
    /// `campaign order CAMPAIGN`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let s = cx.open()?;
        let engine = &s.engine;
        let id = engine.resolve_campaign(&self.campaign)?;
        let levels = engine.campaign_levels(id)?;
        if cx.json() {
            let mut out_levels = Vec::new();
            for level in &levels {
                let mut items = Vec::new();
                for event in level {
                    let name = engine.get_event(*event)?.and_then(|e| e.name);
                    items.push(EventName { id: *event, name });
                }
                out_levels.push(items);
            }
            json::print(&CampaignOrder {
                campaign: id,
                levels: out_levels,
            });
        } else if levels.is_empty() {
            println!("The campaign has no events.");
        } else {
            let names = EventViews::default().levels(engine, &levels)?;
            println!("{}", s.out.order(&names));
        }
        Ok(ExitCode::SUCCESS)
    }
}

impl CampaignShowArgs {
    /// `campaign show CAMPAIGN`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let mut s = cx.open()?;
        done(super::show::show(
            &s.engine,
            &mut s.out,
            &self.campaign,
            cx.json(),
        ))
    }
}

impl CampaignListArgs {
    /// `campaign list`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let s = cx.open()?;
        let engine = &s.engine;
        let campaigns = engine.list_campaigns()?;
        if cx.json() {
            let mut list = Vec::new();
            for c in &campaigns {
                list.push(Campaign::read(engine, c)?);
            }
            json::print(&list);
        } else if campaigns.is_empty() {
            println!("No campaigns.");
        } else {
            for c in &campaigns {
                println!("{}", s.out.campaign_line(c));
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
