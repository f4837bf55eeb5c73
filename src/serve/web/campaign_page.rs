//! `/campaigns/{campaign}` (name, id or unique prefix): the campaign's
//! graph in execution order — its levels, the events of one level able to
//! run in parallel — each event with its state, countdown and needs.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use uuid::Uuid;

use super::layout::{frame, Live};
use super::parts;
use super::session::WebSession;
use crate::output::{CampaignStatus, Event};
use crate::serve::error::ApiError;
use crate::serve::Shared;
use crate::{Engine, EventState};

/// What the campaign page shows.
struct CampaignPage {
    now: DateTime<Utc>,
    status: CampaignStatus,
    levels: Vec<Vec<Uuid>>,
}

/// `GET /campaigns/{campaign}`.
pub(super) async fn show(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    Path(campaign): Path<String>,
) -> Response {
    let seen = super::seen(&shared, &headers, move |engine, _| {
        read(engine, &campaign).map_err(ApiError::from)
    })
    .await;
    super::respond(&uri, seen, render)
}

fn read(engine: &mut Engine, reference: &str) -> crate::Result<CampaignPage> {
    let (campaign, levels, events) = engine.campaign_in_order(reference)?;
    Ok(CampaignPage {
        now: engine.now(),
        status: CampaignStatus::new(&campaign, &events),
        levels,
    })
}

fn render(session: Option<&WebSession>, p: CampaignPage) -> Markup {
    let c = &p.status.campaign;
    let live = Live {
        now: Some(p.now),
        stream: Some(format!(
            "/v1/stream?campaign={}",
            parts::encode_component(&c.name)
        )),
    };
    let by_id: HashMap<Uuid, &Event> = p.status.events.iter().map(|e| (e.id, e)).collect();
    let fired = p
        .status
        .events
        .iter()
        .filter(|e| e.state == EventState::Fired)
        .count();
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/" { "Dashboard" } }
        h1 { (c.name) " " span.kind { "campaign" } }
        @if let Some(text) = &c.description {
            p.description { (text) }
        }
        div #live-campaign data-live {
            p.headline.big {
                (parts::campaign_badge(c.state)) " "
                span.count { (fired) " of " (p.status.events.len()) " events fired" }
            }
            @if p.levels.is_empty() {
                p.empty { "The campaign has no events." }
            } @else {
                p.order {
                    "Order: "
                    @for (i, level) in p.levels.iter().enumerate() {
                        @if i > 0 { " → " }
                        @for (j, id) in level.iter().enumerate() {
                            @if j > 0 { ", " }
                            (by_id.get(id).map_or_else(|| id.to_string(), |e| parts::label_in_campaign(e)))
                        }
                    }
                }
                ol.levels {
                    @for (i, level) in p.levels.iter().enumerate() {
                        li.level {
                            h2 { "Step " (i + 1)
                                @if level.len() > 1 { " " span.count { "(" (level.len()) " in parallel)" } }
                            }
                            div.cards {
                                @for id in level {
                                    @if let Some(e) = by_id.get(id) {
                                        (parts::event_card(e, p.now, &p.status.need_names(*id)))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    frame(&c.name, session, &live, body)
}
