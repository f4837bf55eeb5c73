//! `campaign show CAMPAIGN [--json]`: one campaign, everything about it.

use t_minus::display::Renderer;
use t_minus::engine::EventViews;
use t_minus::output::{CampaignDetail, CampaignStatus, EventName};
use t_minus::{Engine, Result};

use super::json;

/// Prints the campaign `reference`: its summary line, description,
/// execution order and every event (finished ones too) in execution order.
/// With `--json`: the campaign object of `status CAMPAIGN --json` plus
/// `levels` (docs/json.md).
pub fn show(engine: &Engine, out: &mut Renderer, reference: &str, as_json: bool) -> Result<()> {
    let mut views = EventViews::default();
    let (campaign, levels, events) = engine.campaign_in_order(reference)?;
    // Each event is read once; the levels name them from what was read.
    let by_id: std::collections::HashMap<uuid::Uuid, &t_minus::TMinusEvent> =
        events.iter().map(|e| (e.id, e)).collect();
    let name_of = |id: &uuid::Uuid| by_id.get(id).and_then(|e| e.name.clone());
    if as_json {
        let levels = levels
            .iter()
            .map(|level| {
                level
                    .iter()
                    .map(|id| EventName {
                        id: *id,
                        name: name_of(id),
                    })
                    .collect()
            })
            .collect();
        json::print(&CampaignDetail {
            status: CampaignStatus::new(&campaign, &events),
            levels,
        });
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
    let names: Vec<Vec<String>> = levels
        .iter()
        .map(|level| {
            level
                .iter()
                .map(|id| match by_id.get(id) {
                    Some(e) => e.display_name(),
                    None => id.to_string(),
                })
                .collect()
        })
        .collect();
    println!("order: {}", out.order(&names));
    for event in &events {
        let view = views.view(engine, event)?;
        println!("{}", out.event_block(&view));
    }
    Ok(())
}
