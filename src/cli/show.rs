//! `campaign show CAMPAIGN [--json]`: one campaign, everything about it.

use serde_json::{json, Value};
use t_minus::display::Renderer;
use t_minus::{Engine, Result, TMinusError};

use super::json;

/// Prints the campaign `reference`: its summary line, description,
/// execution order and every event (finished ones too) in execution order.
/// With `--json`: the campaign object of `status CAMPAIGN --json` plus
/// `levels` (docs/json.md).
pub fn show(engine: &Engine, out: &mut Renderer, reference: &str, as_json: bool) -> Result<()> {
    let id = engine.resolve_campaign(reference)?;
    let campaign = engine
        .get_campaign(id)?
        .ok_or_else(|| TMinusError::CampaignNotFound {
            reference: reference.to_string(),
        })?;
    let levels = engine.campaign_levels(id)?;
    let mut events = Vec::new();
    for level in &levels {
        for event in level {
            events.extend(engine.get_event(*event)?);
        }
    }
    if as_json {
        let mut value = json::campaign(engine, &campaign)?;
        let mut list = Vec::new();
        for e in &events {
            list.push(json::event(engine, &mut out.names, e)?);
        }
        value["events"] = Value::Array(list);
        let mut out_levels = Vec::new();
        for level in &levels {
            let mut items = Vec::new();
            for event in level {
                let name = engine.get_event(*event)?.and_then(|e| e.name);
                items.push(json!({ "id": event, "name": name }));
            }
            out_levels.push(Value::Array(items));
        }
        value["levels"] = Value::Array(out_levels);
        json::print(&value);
        return Ok(());
    }
    println!("{}", out.campaign_line(&campaign));
    if let Some(description) = &campaign.description {
        println!("{description}");
    }
    if levels.is_empty() {
        println!("The campaign has no events.");
        return Ok(());
    }
    println!("order: {}", out.order(engine, &levels)?);
    for event in &events {
        println!("{}", out.event_block(engine, event)?);
    }
    Ok(())
}
