//! An agent's inbox: `Engine::inbox` / `Engine::inbox_all` and `t-minus
//! inbox AGENT`, on both stores.

use insta::assert_snapshot;
use t_minus::{EventKind, NewEvent, Quorum};

use crate::cli_support::{self, T};
use crate::common::{self, agent, agents, at_min, engine, mins, spec};

/// The ids of a list of events, in order.
fn ids(events: &[t_minus::TMinusEvent]) -> Vec<uuid::Uuid> {
    events.iter().map(|e| e.id).collect()
}

fn engine_inbox_lists_what_waits_soonest_first() {
    let (mut engine, _clock) = engine();
    let alice = agent("alice");
    let late = engine
        .schedule(spec(50, &["alice", "bob"], Quorum::All))
        .unwrap();
    let soon = engine
        .schedule(spec(10, &["bob", "alice"], Quorum::All))
        .unwrap();
    let middle = engine.schedule(spec(30, &["alice"], Quorum::All)).unwrap();
    let not_hers = engine.schedule(spec(5, &["bob"], Quorum::All)).unwrap();
    assert_eq!(
        ids(&engine.inbox(&alice).unwrap()),
        [soon.id, middle.id, late.id]
    );

    // A deferral still waits for her confirmation; it moves the event later.
    engine.defer(soon.id, &alice, mins(60)).unwrap();
    assert_eq!(
        ids(&engine.inbox(&alice).unwrap()),
        [middle.id, late.id, soon.id]
    );
    let deferred = engine.inbox(&alice).unwrap().pop().unwrap();
    assert_eq!(common::response(&deferred, "alice").word(), "deferred");

    // Confirmed and declined events leave the inbox but stay in `all`
    // while they are not final.
    engine.confirm(late.id, &alice).unwrap();
    assert_eq!(
        engine.get_event(late.id).unwrap().unwrap().state.as_str(),
        "pending"
    );
    assert_eq!(ids(&engine.inbox(&alice).unwrap()), [middle.id, soon.id]);
    assert_eq!(
        ids(&engine.inbox_all(&alice).unwrap()),
        [middle.id, late.id, soon.id]
    );

    // Final events leave both: this confirm fires `middle`.
    engine.confirm(middle.id, &alice).unwrap();
    assert_eq!(ids(&engine.inbox(&alice).unwrap()), [soon.id]);
    assert_eq!(ids(&engine.inbox_all(&alice).unwrap()), [late.id, soon.id]);
    engine.cancel_event(late.id, None).unwrap();
    assert_eq!(ids(&engine.inbox_all(&alice).unwrap()), [soon.id]);

    // Bob's inbox is his own.
    assert_eq!(
        ids(&engine.inbox(&agent("bob")).unwrap()),
        [not_hers.id, soon.id]
    );
    assert!(engine.inbox(&agent("nobody")).unwrap().is_empty());
}

fn engine_inbox_drops_missed_events_and_keeps_blocked_ones() {
    let (mut engine, clock) = engine();
    let alice = agent("alice");
    let missed = engine.schedule(spec(5, &["alice"], Quorum::All)).unwrap();
    // A campaign: `deploy` is blocked behind `review` and waits for alice too.
    let campaign = engine.create_campaign("release".into()).unwrap();
    let review = engine
        .campaign_add(
            campaign.id,
            spec(20, &["bob"], Quorum::All),
            Some("review".into()),
        )
        .unwrap();
    let deploy = engine
        .campaign_add(
            campaign.id,
            NewEvent {
                attendees: agents(&["alice"]),
                ..NewEvent::new(EventKind::Deploy, at_min(40))
            },
            Some("deploy".into()),
        )
        .unwrap();
    engine
        .campaign_link(campaign.id, review.id, deploy.id)
        .unwrap();
    let blocked = engine.get_event(deploy.id).unwrap().unwrap();
    assert_eq!(blocked.state.as_str(), "blocked");
    assert_eq!(ids(&engine.inbox(&alice).unwrap()), [missed.id, deploy.id]);

    // The tick past its fire time misses the first one.
    clock.set(at_min(6));
    engine.tick(at_min(6)).unwrap();
    assert_eq!(ids(&engine.inbox(&alice).unwrap()), [deploy.id]);
    assert_eq!(ids(&engine.inbox_all(&alice).unwrap()), [deploy.id]);
    // The review is missed too, so the deploy is cancelled: nothing waits.
    clock.set(at_min(21));
    engine.tick(at_min(21)).unwrap();
    assert!(engine.inbox_all(&alice).unwrap().is_empty());
}

fn engine_inbox_refuses_an_invalid_agent() {
    let (mut engine, _clock) = engine();
    let err = engine.inbox(&agent("two words")).unwrap_err();
    assert!(
        matches!(err, t_minus::TMinusError::InvalidAgentId { .. }),
        "{err:?}"
    );
}

common::store_tests!(
    engine_inbox_lists_what_waits_soonest_first,
    engine_inbox_drops_missed_events_and_keeps_blocked_ones,
    engine_inbox_refuses_an_invalid_agent,
);

/// The CLI: `inbox AGENT`, `--all`, `--json`, on both stores.
mod cli {
    use super::*;

    fn inbox_prints_countdown_name_quorum_and_answer() {
        let t = T::new();
        t.ok("campaign create release");
        t.ok("campaign add release review +20m --quorum 2 --attendees alice,bob,carol --json");
        let standup = t.schedule("meeting +10m --attendees alice,bob");
        let retro = t.schedule("meeting +1h --attendees bob,alice");
        t.schedule("deploy +5m --attendees bob");
        t.ok(&format!("defer {retro} alice 15m"));
        t.ok(&format!("confirm {standup} alice"));

        let mut transcript = String::new();
        for line in [
            "inbox alice",
            "inbox alice --all",
            "inbox bob",
            "inbox nobody",
        ] {
            transcript += &format!("$ t-minus {line}\n{}", t.ok(line));
        }
        assert_snapshot!("inbox", transcript);

        let json = t.json("inbox alice --json");
        let list = json.as_array().expect("an array of events");
        let names: Vec<_> = list.iter().map(|e| e["kind"].as_str().unwrap()).collect();
        assert_eq!(names, ["review", "meeting"], "soonest deadline first");
        assert_eq!(list[0]["campaign"], "release");
        assert_eq!(list[0]["name"], "review");
        assert_eq!(list[1]["id"], retro.as_str());
        assert_eq!(list[1]["attendees"][1]["status"], "deferred");
        let all = t.json("inbox alice --all --json");
        assert_eq!(all.as_array().unwrap().len(), 3);
        assert_eq!(all[0]["id"], standup.as_str());
    }

    fn inbox_refuses_an_invalid_agent() {
        let stderr = T::new().fail("inbox ''");
        assert!(stderr.contains("t_minus::input::agent_id"), "{stderr}");
    }

    cli_support::store_tests!(
        inbox_prints_countdown_name_quorum_and_answer,
        inbox_refuses_an_invalid_agent,
    );
}
