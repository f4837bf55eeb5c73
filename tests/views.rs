//! Views: listings stream their events in chunks with the names they show,
//! and every view names an event `campaign/name` from its campaign's row,
//! on both stores.

use std::sync::Arc;

use t_minus::display::{EventView, Renderer, Styles};
use t_minus::engine::EventViews;
use t_minus::store::{EventFilter, ListedEvent, LISTING_CHUNK};
use t_minus::{Engine, EventState, FixedClock, Quorum, TMinusError};
use uuid::Uuid;

use crate::cli_support::{self, T};
use crate::common::{self, engine, spec};

/// Events for a listing longer than two chunks: standalone events with one
/// to four attendees, some of them answered, and a campaign `rel` where
/// `build` is pending, `test` needs it and `ship` needs both. Returns the
/// ids of `build`, `test` and `ship`.
fn fill(engine: &mut Engine) -> [Uuid; 3] {
    let who = ["alice", "bob", "carol", "dave"];
    for i in 0..(2 * LISTING_CHUNK + 40) {
        let attendees = &who[..1 + i % 4];
        // Fire times out of insertion order, some equal.
        let minute = 10 + ((i * 37) % 500) as i64;
        let e = engine
            .schedule(spec(minute, attendees, Quorum::All))
            .unwrap();
        if i % 5 == 0 {
            engine
                .defer(e.id, &common::agent("alice"), common::mins(3))
                .unwrap();
        }
    }
    let rel = engine.create_campaign("rel".into()).unwrap();
    let add = |engine: &mut Engine, name: &str, needs: &[Uuid]| {
        engine
            .campaign_add_with_needs(
                rel.id,
                spec(30, &["bob", "carol"], Quorum::Count(1)),
                Some(name.into()),
                needs,
            )
            .unwrap()
            .id
    };
    let build = add(engine, "build", &[]);
    let test = add(engine, "test", &[build]);
    let ship = add(engine, "ship", &[test, build]);
    [build, test, ship]
}

/// The whole listing `filter` selects, through the streaming scan.
fn scan(engine: &Engine, filter: EventFilter) -> Vec<ListedEvent> {
    let mut listed = Vec::new();
    engine
        .scan_events(filter, |e| {
            listed.push(e);
            Ok(())
        })
        .unwrap();
    listed
}

fn a_listing_streams_every_event_with_its_attendees_and_names() {
    let (mut engine, _clock) = engine();
    let [build, test, ship] = fill(&mut engine);
    let listed = scan(&engine, EventFilter::Unfinished);
    assert_eq!(listed.len(), 2 * LISTING_CHUNK + 43, "every event, once");

    // Soonest fire time first.
    let deadlines: Vec<_> = listed.iter().map(|l| l.event.fire_deadline()).collect();
    assert!(deadlines.iter().all(Option::is_some), "every time is known");
    assert!(deadlines.windows(2).all(|w| w[0] <= w[1]), "by fire time");

    // Each event as loaded alone: attendees in order, answers included.
    let mut names = EventViews::default();
    for l in &listed {
        let alone = common::get(&engine, l.event.id);
        assert_eq!(l.event, alone, "the listed event is the stored one");
        let view = names.view(&engine, &alone).unwrap();
        assert_eq!(EventView::from(l), view, "same names as one event's view");
    }
    let by_id = |id: Uuid| listed.iter().find(|l| l.event.id == id).unwrap();
    assert_eq!(by_id(build).campaign.as_deref(), Some("rel"));
    assert!(by_id(build).needs.is_empty(), "pending: needs not shown");
    assert_eq!(by_id(test).event.state, EventState::Blocked);
    assert_eq!(by_id(test).needs, ["build"]);
    assert_eq!(by_id(ship).needs, ["test", "build"], "in the order added");
    assert_eq!(EventView::from(by_id(ship)).label(), "rel/ship");
    let solo = listed.iter().find(|l| l.event.campaign.is_none()).unwrap();
    assert_eq!((solo.campaign.as_ref(), solo.needs.len()), (None, 0));
    assert_eq!(EventView::from(solo).label(), "checkpoint");

    // A campaign's listing, and every event once it is final.
    let rel = engine.resolve_campaign("rel").unwrap();
    let mut ids: Vec<_> = scan(&engine, EventFilter::Campaign(rel))
        .iter()
        .map(|l| l.event.id)
        .collect();
    let mut members = vec![build, test, ship];
    ids.sort();
    members.sort();
    assert_eq!(ids, members, "the campaign's events, and only them");
    engine.cancel_event(build, None).unwrap();
    assert_eq!(
        scan(&engine, EventFilter::Unfinished).len(),
        2 * LISTING_CHUNK + 40,
        "the cancelled event and the two that needed it are final"
    );
    assert_eq!(
        scan(&engine, EventFilter::All).len(),
        2 * LISTING_CHUNK + 43
    );
    assert_eq!(engine.list_events().unwrap().len(), 2 * LISTING_CHUNK + 43);
}

fn a_visitor_error_stops_the_listing_and_the_store_keeps_serving() {
    let (mut engine, _clock) = engine();
    fill(&mut engine);
    let mut seen = 0;
    let err = engine
        .scan_events(EventFilter::All, |_| {
            seen += 1;
            if seen == LISTING_CHUNK + 1 {
                return Err(TMinusError::EventNotFound {
                    reference: "stop".into(),
                });
            }
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(err, TMinusError::EventNotFound { .. }), "{err:?}");
    assert_eq!(seen, LISTING_CHUNK + 1, "nothing after the error");
    assert_eq!(
        scan(&engine, EventFilter::All).len(),
        2 * LISTING_CHUNK + 43,
        "a new listing runs from the start"
    );
}

fn views_render_without_looking_anything_up() {
    let (mut engine, _clock) = engine();
    let [_, test, _] = fill(&mut engine);
    let event = common::get(&engine, test);
    let view = EventViews::default().view(&engine, &event).unwrap();
    assert_eq!(view.campaign.as_deref(), Some("rel"));
    assert_eq!(view.needs, ["build"]);
    // The renderer needs no engine: the view carries every name.
    drop(engine);
    let out = Renderer::new(Styles::new(false), common::t0());
    let headline = out.headline(&view);
    assert!(
        headline.starts_with("blocked rel/test [") && headline.ends_with(" needs:build"),
        "{headline}"
    );
}

fn a_listing_keeps_each_events_attendees_in_their_order() {
    let (mut engine, _clock) = engine();
    let order = ["dave", "alice", "carol", "bob"];
    let ids: Vec<Uuid> = (1..=order.len())
        .map(|n| {
            engine
                .schedule(spec(10 + n as i64, &order[..n], Quorum::All))
                .unwrap()
                .id
        })
        .collect();
    for filter in [EventFilter::Unfinished, EventFilter::All] {
        let listed = scan(&engine, filter);
        assert_eq!(listed.len(), ids.len());
        for (l, n) in listed.iter().zip(1..) {
            let agents: Vec<&str> = l.event.attendees.iter().map(|(a, _)| a.as_str()).collect();
            assert_eq!(agents, order[..n], "{filter:?}: in the order given");
            assert_eq!(l.event, common::get(&engine, l.event.id));
        }
    }
}

common::store_tests!(
    a_listing_keeps_each_events_attendees_in_their_order,
    a_listing_streams_every_event_with_its_attendees_and_names,
    a_visitor_error_stops_the_listing_and_the_store_keeps_serving,
    views_render_without_looking_anything_up,
);

/// The CLI: `status` and `status --json` stream listings longer than a
/// chunk, each event as `status EVENT` shows it.
mod cli {
    use super::*;

    fn status_lists_every_event_of_a_long_listing_as_one_event_shows_it() {
        let t = T::new();
        let clock = FixedClock::new(common::t0());
        let mut engine = Engine::open(&t.db_location())
            .unwrap()
            .with_clock(Arc::new(clock));
        let [_, test, _] = fill(&mut engine);
        drop(engine);

        let list = t.json("status --json");
        let list = list.as_array().expect("an array");
        assert_eq!(list.len(), 2 * LISTING_CHUNK + 43);
        for (i, e) in list.iter().enumerate().step_by(37) {
            let mut alone = t.json(&format!("status {} --json", e["id"].as_str().unwrap()));
            alone.as_object_mut().unwrap().remove("notifications");
            assert_eq!(e, &alone, "element {i}");
        }

        let text = t.ok("status");
        let headlines = text.lines().filter(|l| !l.starts_with("   ")).count();
        assert_eq!(headlines, 2 * LISTING_CHUNK + 43, "one block per event");
        let short = &test.simple().to_string()[..8];
        assert!(
            text.contains(&format!(
                "blocked rel/test [{short}] quorum:0/1 attendees:2 needs:build\n"
            )),
            "{text}"
        );
        let attendees: usize = list
            .iter()
            .map(|e| e["attendees"].as_array().unwrap().len())
            .sum();
        assert_eq!(
            text.lines().filter(|l| l.starts_with("   ")).count(),
            attendees,
            "one line per attendee, the last block included"
        );
    }

    fn status_of_nothing_says_so() {
        let t = T::new();
        assert_eq!(
            t.ok("status"),
            "No unfinished events. (`t-minus status --all` shows finished ones.)\n"
        );
        assert_eq!(t.ok("status --all"), "No events.\n");
        assert_eq!(t.ok("status --json"), "[]\n");
    }

    cli_support::store_tests!(
        status_lists_every_event_of_a_long_listing_as_one_event_shows_it,
        status_of_nothing_says_so,
    );
}
