//! `campaign` subcommands.

use t_minus::engine::EventViews;
use t_minus::error::LinkRefusal;
use t_minus::{Engine, Result, TMinusError};
use uuid::Uuid;

use super::args::CampaignCommand;
use super::events::{new_event, print_created};
use super::json;
use t_minus::display::Renderer;

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

/// Runs a `campaign` subcommand.
pub fn run(engine: &mut Engine, out: &mut Renderer, command: &CampaignCommand) -> Result<()> {
    match command {
        CampaignCommand::Create {
            name,
            json: as_json,
        } => {
            let campaign = engine.create_campaign(name.clone())?;
            if *as_json {
                json::print(&json::campaign(engine, &campaign)?);
            } else {
                println!("Created campaign {} {}", campaign.name, campaign.id);
            }
        }
        CampaignCommand::Add {
            campaign,
            kind,
            time,
            name,
            needs: need_list,
            options,
        } => {
            let id = engine.resolve_campaign(campaign)?;
            let new = new_event(engine, kind, time, options)?;
            let need_ids = match need_list {
                Some(list) => {
                    let campaign_name =
                        engine.get_campaign(id)?.map(|c| c.name).unwrap_or_default();
                    needs(engine, &campaign_name, name.as_deref(), list)?
                }
                None => Vec::new(),
            };
            let event = engine.campaign_add_with_needs(id, new, name.clone(), &need_ids)?;
            print_created(engine, out, "Added", &event, options.json)?;
        }
        CampaignCommand::Link {
            campaign,
            from,
            to,
            json: as_json,
        } => {
            let id = engine.resolve_campaign(campaign)?;
            let name = engine.get_campaign(id)?.map(|c| c.name).unwrap_or_default();
            let from = member(engine, &name, from)?;
            let to = member(engine, &name, to)?;
            let updated = engine.campaign_link(id, from, to)?;
            if *as_json {
                json::print(&json::campaign(engine, &updated)?);
            } else {
                let label = |engine: &Engine, id: Uuid| -> Result<String> {
                    Ok(engine
                        .get_event(id)?
                        .map_or_else(|| id.to_string(), |e| e.display_name()))
                };
                let (from, to) = (label(engine, from)?, label(engine, to)?);
                println!("Linked {name}: {from} → {to} ({to} needs {from})");
            }
        }
        CampaignCommand::Order {
            campaign,
            json: as_json,
        } => {
            let id = engine.resolve_campaign(campaign)?;
            let levels = engine.campaign_levels(id)?;
            if *as_json {
                let mut out_levels = Vec::new();
                for level in &levels {
                    let mut items = Vec::new();
                    for event in level {
                        let name = engine.get_event(*event)?.and_then(|e| e.name);
                        items.push(serde_json::json!({ "id": event, "name": name }));
                    }
                    out_levels.push(items);
                }
                json::print(&serde_json::json!({ "campaign": id, "levels": out_levels }));
            } else if levels.is_empty() {
                println!("The campaign has no events.");
            } else {
                let names = EventViews::default().levels(engine, &levels)?;
                println!("{}", out.order(&names));
            }
        }
        CampaignCommand::Show {
            campaign,
            json: as_json,
        } => super::show::show(engine, out, campaign, *as_json)?,
        CampaignCommand::List { json: as_json } => {
            let campaigns = engine.list_campaigns()?;
            if *as_json {
                let mut list = Vec::new();
                for c in &campaigns {
                    list.push(json::campaign(engine, c)?);
                }
                json::print(&list);
            } else if campaigns.is_empty() {
                println!("No campaigns.");
            } else {
                for c in &campaigns {
                    println!("{}", out.campaign_line(c));
                }
            }
        }
    }
    Ok(())
}
