//! `status [EVENT|CAMPAIGN] [--all] [--json]`.

use std::io::Write;
use std::process::ExitCode;

use t_minus::display::{EventView, Renderer};
use t_minus::engine::EventViews;
use t_minus::store::EventFilter;
use t_minus::{Engine, Result, TMinusError, Target};

use t_minus::output::{CampaignStatus, DeliveryStatus, Event, EventStatus};

use super::args::StatusArgs;
use super::context::Context;
use super::error::CliError;
use super::remote::{encode, Campaigns, Client, ClientError};
use super::{done, json};

impl StatusArgs {
    /// `status [EVENT|CAMPAIGN] [--all]`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        if let Some(client) = cx.remote()? {
            return remote_status(cx, &client, self);
        }
        let mut s = cx.open()?;
        let target = self.target.as_deref();
        done(status(
            &mut s.engine,
            &mut s.out,
            target,
            self.all,
            cx.json(),
        ))
    }
}

/// `status [EVENT|CAMPAIGN] [--all]`: a listing of every unfinished event
/// (every event with `--all`), one event in detail, or a campaign's events
/// in execution order.
fn status(
    engine: &mut Engine,
    out: &mut Renderer,
    target: Option<&str>,
    all: bool,
    as_json: bool,
) -> Result<()> {
    let mut views = EventViews::default();
    let Some(text) = target else {
        let filter = if all {
            EventFilter::All
        } else {
            EventFilter::Unfinished
        };
        return listing(engine, out, filter, as_json);
    };
    match engine.resolve_target(text)? {
        Target::Event(id) => {
            let event = engine
                .get_event(id)?
                .ok_or_else(|| TMinusError::EventNotFound {
                    reference: text.to_string(),
                })?;
            let answered_by = t_minus::engine::delegated_answers(&event, &engine.log(event.id)?);
            let view = views.view(engine, &event)?.with_answered_by(answered_by);
            let deliveries = super::notify::open_deliveries(engine, event.id)?;
            if as_json {
                json::print(&EventStatus {
                    event: Event::new(&event, view.campaign.as_deref())
                        .at_time(&event, engine.now())
                        .with_answered_by(&view.answered_by),
                    notifications: deliveries.iter().map(DeliveryStatus::from).collect(),
                });
                return Ok(());
            }
            println!("{}", out.event_detail(&view));
            for d in &deliveries {
                println!("{}", super::notify::delivery_line(d));
            }
        }
        Target::Campaign(id) => {
            let campaign =
                engine
                    .get_campaign(id)?
                    .ok_or_else(|| TMinusError::CampaignNotFound {
                        reference: text.to_string(),
                    })?;
            // A campaign's view shows every event, finished ones too, in
            // execution order.
            let mut events = Vec::new();
            for id in engine.campaign_execution_order(id)? {
                events.extend(engine.get_event(id)?);
            }
            if as_json {
                json::print(&CampaignStatus::new(&campaign, &events));
                return Ok(());
            }
            println!("{}", out.campaign_line(&campaign));
            if events.is_empty() {
                println!("No events.");
            }
            for event in &events {
                let view = views.view(engine, event)?;
                println!("{}", out.event_block(&view));
            }
        }
    }
    Ok(())
}

/// A listing, written as it is read: the store hands the events on in
/// chunks with their names, so memory stays flat however many there are.
fn listing(engine: &Engine, out: &Renderer, filter: EventFilter, as_json: bool) -> Result<()> {
    let stdout = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    if as_json {
        let mut array = json::ArrayStream::new(stdout);
        engine.scan_events(filter, |listed| {
            let now = engine.now();
            array.push(
                &Event::new(&listed.event, listed.campaign.as_deref()).at_time(&listed.event, now),
            );
            Ok(())
        })?;
        array.finish();
        return Ok(());
    }
    let mut stdout = stdout;
    // A reader that went away (`t-minus status | head`) ends the output,
    // not the command.
    let mut writing = true;
    let mut count = 0usize;
    let mut block = String::new();
    engine.scan_events(filter, |listed| {
        count += 1;
        if writing {
            block.clear();
            out.write_event_block(&mut block, &EventView::from(&listed));
            block.push('\n');
            writing = stdout.write_all(block.as_bytes()).is_ok();
        }
        Ok(())
    })?;
    if count == 0 && writing {
        let empty = match filter {
            EventFilter::Unfinished => {
                "No unfinished events. (`t-minus status --all` shows finished ones.)"
            }
            _ => "No events.",
        };
        writing = writeln!(stdout, "{empty}").is_ok();
    }
    if writing {
        let _ = stdout.flush();
    }
    Ok(())
}

/// `status [EVENT|CAMPAIGN] [--all]` through a t-minus service: the listing
/// from `GET /v1/events`, one event from `GET /v1/events/{event}`, else the
/// campaign of that name from `GET /v1/campaigns/{campaign}` (also read
/// for a blocked event's needs and a campaign event's digest).
fn remote_status(cx: &Context, client: &Client, args: &StatusArgs) -> Result<ExitCode, CliError> {
    let out = cx.renderer()?;
    let Some(target) = args.target.as_deref() else {
        let query = if args.all { "?state=all" } else { "" };
        let events = client.get::<Vec<Event>>(&format!("/v1/events{query}"))?;
        if cx.json() {
            json::print(&events.json);
            return Ok(ExitCode::SUCCESS);
        }
        let mut campaigns = Campaigns::default();
        let mut text = String::new();
        for shown in &events.value {
            let e = shown.to_event()?;
            let needs = campaigns.needs(client, shown)?;
            out.write_event_block(
                &mut text,
                &EventView::new(&e, shown.campaign.clone(), needs),
            );
            text.push('\n');
        }
        if events.value.is_empty() {
            text.push_str(if args.all {
                "No events.\n"
            } else {
                "No unfinished events. (`t-minus status --all` shows finished ones.)\n"
            });
        }
        print!("{text}");
        return Ok(ExitCode::SUCCESS);
    };
    let reference = encode(target);
    let shown = match client.get::<Event>(&format!("/v1/events/{reference}")) {
        Err(ClientError::Server { body, .. }) if not_an_event(&body.code) => {
            return remote_campaign(cx, client, &out, target);
        }
        other => other?,
    };
    if cx.json() {
        json::print(&shown.json);
        return Ok(ExitCode::SUCCESS);
    }
    let mut e = shown.value.to_event()?;
    let mut campaigns = Campaigns::default();
    let needs = campaigns.needs(client, &shown.value)?;
    if let Some(name) = &shown.value.campaign {
        e.campaign = Some(campaigns.get(client, name)?.campaign.id);
    }
    let view = EventView::new(&e, shown.value.campaign.clone(), needs)
        .with_answered_by(shown.value.answered_by());
    println!("{}", out.event_detail(&view));
    Ok(ExitCode::SUCCESS)
}

/// Whether the service's error `code` for an event reference leaves a
/// campaign of that name possible.
fn not_an_event(code: &str) -> bool {
    matches!(
        code,
        "t_minus::not_found::event" | "t_minus::input::reference"
    )
}

/// `status CAMPAIGN` through a t-minus service.
fn remote_campaign(
    cx: &Context,
    client: &Client,
    out: &Renderer,
    target: &str,
) -> Result<ExitCode, CliError> {
    let path = format!("/v1/campaigns/{}", encode(target));
    let shown = match client.get::<CampaignStatus>(&path) {
        Err(ClientError::Server { body, .. }) if body.code == "t_minus::not_found::campaign" => {
            return Err(TMinusError::TargetNotFound {
                reference: target.to_string(),
            }
            .into())
        }
        other => other?,
    };
    if cx.json() {
        json::print(&shown.json);
        return Ok(ExitCode::SUCCESS);
    }
    let c = &shown.value;
    println!("{}", out.campaign_line(&c.to_campaign()));
    if c.events.is_empty() {
        println!("No events.");
    }
    for shown in &c.events {
        let e = shown.to_event()?;
        let needs = if e.state == t_minus::EventState::Blocked {
            c.need_names(e.id)
        } else {
            Vec::new()
        };
        let view = EventView::new(&e, shown.campaign.clone(), needs);
        println!("{}", out.event_block(&view));
    }
    Ok(ExitCode::SUCCESS)
}
