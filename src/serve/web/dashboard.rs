//! `/`: the campaigns and the unfinished events, soonest deadline first,
//! each with its countdown, quorum progress and state; finished ones
//! behind the `state` filter (`?state=all`, `?state=fired`, …).

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{frame, Live};
use super::parts;
use super::session::WebSession;
use crate::output::{Campaign, Event};
use crate::serve::error::{ApiError, ServeError};
use crate::serve::Shared;
use crate::state::EventState;
use crate::store::EventFilter;
use crate::{CampaignState, Engine};

/// The dashboard's filter.
#[derive(Debug, Default, Deserialize)]
pub struct DashboardQuery {
    /// `unfinished` (the default), `all`, or one state.
    pub state: Option<String>,
}

/// Which events and campaigns the dashboard lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Show {
    /// Blocked and pending events; running campaigns.
    Unfinished,
    /// Everything.
    All,
    /// The events in this state; every campaign.
    Only(EventState),
}

impl Show {
    fn parse(text: Option<&str>) -> Result<Show, ServeError> {
        Ok(match text {
            None | Some("" | "unfinished") => Show::Unfinished,
            Some("all") => Show::All,
            Some(word) => Show::Only(word.parse::<EventState>().map_err(|_| {
                ServeError::Query {
                    name: "state".into(),
                    reason: format!(
                        "`{word}` is not unfinished, all, blocked, pending, fired, missed or cancelled"
                    ),
                }
            })?),
        })
    }

    fn word(self) -> &'static str {
        match self {
            Show::Unfinished => "unfinished",
            Show::All => "all",
            Show::Only(s) => parts::state_word(s),
        }
    }
}

/// What the dashboard shows.
struct Dashboard {
    now: DateTime<Utc>,
    show: Show,
    /// Soonest fire time first, each with a blocked event's needs.
    events: Vec<(Event, Vec<String>)>,
    campaigns: Vec<Campaign>,
}

/// `GET /`.
pub(super) async fn show(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    query: Result<Query<DashboardQuery>, QueryRejection>,
) -> Response {
    let show = query
        .map_err(|e| ServeError::Query {
            name: "query".into(),
            reason: e.body_text(),
        })
        .and_then(|Query(q)| Show::parse(q.state.as_deref()));
    let show = match show {
        Ok(show) => show,
        Err(e) => return super::error_page(None, &ApiError::from(e)),
    };
    let seen = super::seen(&shared, &headers, move |engine, _| {
        read(engine, show).map_err(ApiError::from)
    })
    .await;
    super::respond(&uri, seen, render)
}

/// Reads the listing `show` asks for.
fn read(engine: &mut Engine, show: Show) -> crate::Result<Dashboard> {
    let filter = match show {
        Show::Unfinished => EventFilter::Unfinished,
        Show::All | Show::Only(_) => EventFilter::All,
    };
    let mut events = Vec::new();
    engine.scan_events(filter, |listed| {
        let e = &listed.event;
        let fits = match show {
            Show::Unfinished => !e.state.is_final(),
            Show::All => true,
            Show::Only(s) => e.state == s,
        };
        if fits {
            events.push((Event::new(e, listed.campaign.as_deref()), listed.needs));
        }
        Ok(())
    })?;
    let mut campaigns = Vec::new();
    for c in engine.list_campaigns()? {
        if show != Show::Unfinished || c.state == CampaignState::Running {
            campaigns.push(Campaign::read(engine, &c)?);
        }
    }
    Ok(Dashboard {
        now: engine.now(),
        show,
        events,
        campaigns,
    })
}

/// The choices of the filter.
const CHOICES: [(&str, &str); 7] = [
    ("unfinished", "Unfinished (blocked and pending)"),
    ("all", "All, with history"),
    ("pending", "Pending"),
    ("blocked", "Blocked"),
    ("fired", "Fired"),
    ("missed", "Missed"),
    ("cancelled", "Cancelled"),
];

/// Whether `agent` attends the pending event `e` and has not confirmed or
/// declined (a deferral still waits for an answer).
fn waits_for(e: &Event, agent: &str) -> bool {
    use crate::output::AnswerStatus;
    e.state == EventState::Pending
        && e.attendees.iter().any(|a| {
            a.agent == agent && matches!(a.status, AnswerStatus::Pending | AnswerStatus::Deferred)
        })
}

fn render(session: Option<&WebSession>, d: Dashboard) -> Markup {
    let live = Live {
        now: Some(d.now),
        stream: Some("/v1/stream".into()),
    };
    let heading = match d.show {
        Show::Unfinished => "Unfinished events".to_string(),
        Show::All => "All events".to_string(),
        Show::Only(s) => format!("Events {}", parts::state_word(s)),
    };
    let body = html! {
        h1 { "Dashboard" }
        form.filter method="get" action="/" {
            label for="state" { "Show" }
            select #state name="state" {
                @for (value, text) in CHOICES {
                    option value=(value) selected[value == d.show.word()] { (text) }
                }
            }
            button type="submit" { "Show" }
        }
        div #live-dashboard data-live {
            @if let Some(session) = session {
                @let yours: Vec<&(Event, Vec<String>)> = d.events.iter().filter(|(e, _)| waits_for(e, session.agent.as_str())).collect();
                section aria-labelledby="yours-heading" {
                    h2 #yours-heading { "Waiting for your answer " span.count { "(" (yours.len()) ")" } }
                    @if yours.is_empty() {
                        p.empty { "Nothing waits for you, " (session.agent.as_str()) "." }
                    } @else {
                        div.cards {
                            @for (e, needs) in yours {
                                (parts::event_card(e, d.now, needs))
                            }
                        }
                    }
                }
            }
            section aria-labelledby="events-heading" {
                h2 #events-heading { (heading) " " span.count { "(" (d.events.len()) ")" } }
                @if d.events.is_empty() {
                    p.empty { "No events to show." }
                } @else {
                    p.hint { "Soonest deadline first." }
                    div.cards {
                        @for (e, needs) in &d.events {
                            (parts::event_card(e, d.now, needs))
                        }
                    }
                }
            }
            section aria-labelledby="campaigns-heading" {
                h2 #campaigns-heading {
                    @if d.show == Show::Unfinished { "Running campaigns" } @else { "Campaigns" }
                    " " span.count { "(" (d.campaigns.len()) ")" }
                }
                @if d.campaigns.is_empty() {
                    p.empty { "No campaigns to show." }
                } @else {
                    ul.campaigns {
                        @for c in &d.campaigns {
                            li.card {
                                a.name href=(parts::campaign_href(&c.campaign.name)) { (c.campaign.name) }
                                " " (parts::campaign_badge(c.campaign.state)) " "
                                span.count {
                                    (c.events.iter().filter(|e| e.state == EventState::Fired).count())
                                    " of " (c.events.len()) " events fired"
                                }
                                @if let Some(text) = &c.campaign.description {
                                    p.description { (text) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    frame("Dashboard", session, &live, body)
}
