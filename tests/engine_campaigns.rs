//! Campaigns (blocked until needs fire, transitive cancellation, cascading
//! ticks, levels, cycles, naming) and references (UUID, prefix, ambiguous
//! prefix, `campaign/event`, errors).
//!
//! Every test runs on SQLite and on PostgreSQL (`store_tests!` at the end).

use crate::common;

use std::collections::HashMap;

use chrono::Duration;
use common::*;
use t_minus::{
    AuditAction, CampaignState, Engine, EventKind, EventState, NewEvent, Quorum, ResponseStatus,
    TMinusError, TMinusEvent,
};
use uuid::Uuid;

/// Adds a named event to a campaign.
fn add(engine: &mut Engine, campaign: Uuid, name: &str, new: NewEvent) -> TMinusEvent {
    engine
        .campaign_add(campaign, new, Some(name.to_string()))
        .unwrap_or_else(|e| panic!("add {name}: {e}"))
}

/// A diamond `A → B, A → C, B → D, C → D`, each event needing one confirm
/// from `x`, fire times at +10/+20/+20/+30 minutes.
fn diamond(engine: &mut Engine) -> (Uuid, [Uuid; 4]) {
    let c = engine.create_campaign("diamond".into()).unwrap();
    let a = add(engine, c.id, "A", spec(10, &["x"], Quorum::All));
    let b = add(engine, c.id, "B", spec(20, &["x"], Quorum::All));
    let cc = add(engine, c.id, "C", spec(20, &["x"], Quorum::All));
    let d = add(engine, c.id, "D", spec(30, &["x"], Quorum::All));
    for (from, to) in [(&a, &b), (&a, &cc), (&b, &d), (&cc, &d)] {
        engine.campaign_link(c.id, from.id, to.id).unwrap();
    }
    (c.id, [a.id, b.id, cc.id, d.id])
}

// ---------------------------------------------------------------- blocked

fn events_stay_blocked_until_every_need_fired() {
    let (mut engine, clock) = engine();
    let (campaign, [a, b, c, d]) = diamond(&mut engine);
    for id in [b, c, d] {
        assert_eq!(state(&engine, id), EventState::Blocked);
        assert_eq!(get(&engine, id).started_at, None);
    }
    assert_eq!(state(&engine, a), EventState::Pending);
    assert!(
        engine.tick(at_min(5)).unwrap().is_empty(),
        "nothing due yet"
    );

    clock.set(at_min(2));
    engine.confirm(a, &agent("x")).unwrap();
    assert_eq!(state(&engine, a), EventState::Fired);
    for id in [b, c] {
        let opened = get(&engine, id);
        assert_eq!(opened.state, EventState::Pending);
        assert_eq!(opened.started_at, Some(at_min(2)), "opens when A fired");
    }
    assert_eq!(state(&engine, d), EventState::Blocked);

    clock.set(at_min(3));
    engine.confirm(b, &agent("x")).unwrap();
    assert_eq!(state(&engine, d), EventState::Blocked, "D still needs C");
    clock.set(at_min(4));
    engine.confirm(c, &agent("x")).unwrap();
    let open = get(&engine, d);
    assert_eq!(open.state, EventState::Pending);
    assert_eq!(open.started_at, Some(at_min(4)));

    let result = engine.tick(at_min(4)).unwrap();
    assert_eq!(result.fired, vec![a, b, c]);
    assert_eq!(result.opened, vec![b, c, d]);

    assert_eq!(
        engine.get_campaign(campaign).unwrap().unwrap().state,
        CampaignState::Running
    );
    clock.set(at_min(5));
    engine.confirm(d, &agent("x")).unwrap();
    assert_eq!(
        engine.get_campaign(campaign).unwrap().unwrap().state,
        CampaignState::Succeeded
    );
}

fn linking_puts_a_pending_event_back_to_blocked() {
    let (mut engine, _clock) = engine();
    let c = engine.create_campaign("relink".into()).unwrap();
    let a = add(&mut engine, c.id, "a", spec(10, &["x"], Quorum::All));
    let b = add(&mut engine, c.id, "b", spec(20, &["y"], Quorum::All));
    assert_eq!(b.state, EventState::Pending);
    let campaign = engine.campaign_link(c.id, a.id, b.id).unwrap();
    assert_eq!(campaign.dependencies, vec![(a.id, b.id)]);
    assert_eq!(state(&engine, b.id), EventState::Blocked);
    assert_eq!(
        actions(&engine, b.id),
        vec![
            AuditAction::Scheduled,
            AuditAction::Linked,
            AuditAction::Blocked
        ]
    );
    // A blocked event's fire time does not make it due.
    assert!(engine.tick(at_min(5)).unwrap().is_empty());
}

fn a_blocked_event_opens_and_misses_when_its_own_deadline_already_passed() {
    let (mut engine, clock) = engine();
    let c = engine.create_campaign("late".into()).unwrap();
    let a = add(&mut engine, c.id, "a", on_time(30, &["x"], Quorum::All));
    let b = add(&mut engine, c.id, "b", spec(20, &["y"], Quorum::All));
    engine.campaign_link(c.id, a.id, b.id).unwrap();
    clock.set(at_min(1));
    engine.confirm(a.id, &agent("x")).unwrap();
    // b's fire time (+20m) passes while it waits: it stays blocked.
    let r = engine.tick(at_min(25)).unwrap();
    assert!(r.is_empty(), "{r:?}");
    assert_eq!(state(&engine, b.id), EventState::Blocked);
    // A responding to a blocked event past its deadline is refused.
    clock.set(at_min(25));
    let err = engine.confirm(b.id, &agent("y")).unwrap_err();
    assert!(matches!(err, TMinusError::DeadlinePassed { .. }), "{err:?}");
    // a fires at +30m; b opens and is missed in the same step.
    let r = engine.tick(at_min(30)).unwrap();
    assert_eq!(r.fired, vec![a.id]);
    assert_eq!(r.opened, vec![b.id]);
    assert_eq!(r.missed, vec![b.id]);
    let missed = get(&engine, b.id);
    assert_eq!(missed.finished_at, Some(at_min(30)));
    assert_eq!(response(&missed, "y"), ResponseStatus::Missed);
}

fn answers_given_while_blocked_count_when_the_event_opens() {
    let (mut engine, clock) = engine();
    let c = engine.create_campaign("preapproved".into()).unwrap();
    let a = add(&mut engine, c.id, "a", spec(10, &["x"], Quorum::All));
    let b = add(&mut engine, c.id, "b", spec(20, &["y"], Quorum::All));
    engine.campaign_link(c.id, a.id, b.id).unwrap();
    clock.set(at_min(1));
    let pre = engine.confirm(b.id, &agent("y")).unwrap();
    assert_eq!(
        pre.state,
        EventState::Blocked,
        "a pre-approval does not fire it"
    );
    clock.set(at_min(3));
    engine.confirm(a.id, &agent("x")).unwrap();
    let fired = get(&engine, b.id);
    assert_eq!(fired.state, EventState::Fired);
    assert_eq!(
        fired.finished_at,
        Some(at_min(3)),
        "fires the moment it opens"
    );
}

fn a_pre_approved_event_that_opens_after_its_fire_time_is_missed() {
    let (mut engine, clock) = engine();
    let c = engine.create_campaign("too-late".into()).unwrap();
    let a = add(&mut engine, c.id, "a", on_time(30, &["x"], Quorum::All));
    let b = add(&mut engine, c.id, "b", spec(20, &["y"], Quorum::All));
    engine.campaign_link(c.id, a.id, b.id).unwrap();
    clock.set(at_min(1));
    engine.confirm(b.id, &agent("y")).unwrap();
    engine.confirm(a.id, &agent("x")).unwrap();
    // a fires on time at +30m, ten minutes after b's deadline: b's quorum
    // came from answers before that deadline, but b could not open before
    // it, so it is missed the moment it opens.
    let r = engine.tick(at_min(30)).unwrap();
    assert_eq!(r.fired, vec![a.id]);
    assert_eq!(r.opened, vec![b.id]);
    assert_eq!(r.missed, vec![b.id]);
    let missed = get(&engine, b.id);
    assert_eq!(missed.finished_at, Some(at_min(30)));
    let log = engine.log(b.id).unwrap();
    let last = log.last().unwrap();
    assert_eq!(last.detail["reason"], "opened after its fire time");
}

// ---------------------------------------------------------------- cancellation

fn a_missed_need_cancels_its_dependents_transitively_in_one_tick() {
    let (mut engine, clock) = engine();
    let c = engine.create_campaign("chain".into()).unwrap();
    let a = add(&mut engine, c.id, "a", spec(10, &["x"], Quorum::All));
    let b = add(&mut engine, c.id, "b", spec(20, &["x"], Quorum::All));
    let cc = add(&mut engine, c.id, "c", spec(30, &["x"], Quorum::All));
    let side = add(&mut engine, c.id, "side", spec(30, &["x"], Quorum::All));
    engine.campaign_link(c.id, a.id, b.id).unwrap();
    engine.campaign_link(c.id, b.id, cc.id).unwrap();
    clock.set(at_min(1));
    engine.confirm(side.id, &agent("x")).unwrap();

    let r = engine.tick(at_min(12)).unwrap();
    assert_eq!(r.missed, vec![a.id]);
    assert_eq!(r.cancelled, vec![b.id, cc.id]);
    assert_eq!(r.fired, vec![side.id]);
    for id in [b.id, cc.id] {
        let e = get(&engine, id);
        assert_eq!(e.state, EventState::Cancelled);
        assert_eq!(e.finished_at, Some(at_min(10)), "cancelled when a missed");
        let log = engine.log(id).unwrap();
        let last = log.last().unwrap();
        assert_eq!(last.action, AuditAction::Cancelled);
        assert!(
            last.detail["reason"].as_str().unwrap().contains("missed")
                || last.detail["reason"]
                    .as_str()
                    .unwrap()
                    .contains("cancelled"),
            "{last:?}"
        );
    }
    assert!(engine.tick(at_min(40)).unwrap().is_empty());
    assert_eq!(
        engine.get_campaign(c.id).unwrap().unwrap().state,
        CampaignState::Failed
    );
}

fn a_cancelled_need_cancels_its_dependents_transitively() {
    let (mut engine, clock) = engine();
    let (campaign, [a, b, c, d]) = diamond(&mut engine);
    clock.set(at_min(2));
    engine.confirm(a, &agent("x")).unwrap();
    clock.set(at_min(3));
    engine.cancel_event(b, Some("not needed".into())).unwrap();
    assert_eq!(state(&engine, b), EventState::Cancelled);
    assert_eq!(state(&engine, c), EventState::Pending, "C needs only A");
    let d_event = get(&engine, d);
    assert_eq!(d_event.state, EventState::Cancelled);
    assert_eq!(d_event.finished_at, Some(at_min(3)));

    let r = engine.tick(at_min(3)).unwrap();
    assert_eq!(r.cancelled, vec![b, d]);
    assert_eq!(r.fired, vec![a]);
    // C fires later; the campaign still fails.
    clock.set(at_min(4));
    engine.confirm(c, &agent("x")).unwrap();
    assert_eq!(
        engine.get_campaign(campaign).unwrap().unwrap().state,
        CampaignState::Failed
    );
}

fn cancel_campaign_cancels_every_unfinished_event() {
    let (mut engine, clock) = engine();
    let (campaign, [a, b, c, d]) = diamond(&mut engine);
    clock.set(at_min(2));
    engine.confirm(a, &agent("x")).unwrap();
    let mut cancelled = engine.cancel_campaign(campaign, None).unwrap();
    cancelled.sort();
    let mut want = vec![b, c, d];
    want.sort();
    assert_eq!(cancelled, want);
    assert_eq!(state(&engine, a), EventState::Fired);
    assert_eq!(
        engine.get_campaign(campaign).unwrap().unwrap().state,
        CampaignState::Failed
    );
}

// ---------------------------------------------------------------- cascade

fn a_tick_cascades_a_chain_in_dependency_order() {
    let (mut engine, clock) = engine();
    let c = engine.create_campaign("cascade".into()).unwrap();
    // a: a timer at +10m. b: a timer at +10m too, waiting for a.
    // c: pre-approved, early. d: waits for c, its fire time later.
    let a = add(&mut engine, c.id, "a", on_time(10, &[], Quorum::Count(0)));
    let b = add(
        &mut engine,
        c.id,
        "b",
        on_time(10, &["x"], Quorum::Count(0)),
    );
    let cc = add(&mut engine, c.id, "c", spec(40, &["y"], Quorum::All));
    let d = add(
        &mut engine,
        c.id,
        "d",
        on_time(50, &["z"], Quorum::Count(0)),
    );
    engine.campaign_link(c.id, a.id, b.id).unwrap();
    engine.campaign_link(c.id, b.id, cc.id).unwrap();
    engine.campaign_link(c.id, cc.id, d.id).unwrap();
    clock.set(at_min(1));
    engine.confirm(cc.id, &agent("y")).unwrap();

    let r = engine.tick(at_min(10)).unwrap();
    assert_eq!(r.fired, vec![a.id, b.id, cc.id]);
    assert_eq!(r.opened, vec![b.id, cc.id, d.id]);
    for id in [a.id, b.id, cc.id] {
        assert_eq!(get(&engine, id).finished_at, Some(at_min(10)));
    }
    assert_eq!(state(&engine, d.id), EventState::Pending);
    // The transitions come in causal order.
    let order: Vec<(String, AuditAction)> = r
        .transitions
        .iter()
        .map(|t| (get(&engine, t.event).name.unwrap(), t.action))
        .collect();
    let pos = |name: &str, action| {
        order
            .iter()
            .position(|x| x == &(name.to_string(), action))
            .unwrap()
    };
    assert!(pos("a", AuditAction::Fired) < pos("b", AuditAction::Opened));
    assert!(pos("b", AuditAction::Opened) < pos("b", AuditAction::Fired));
    assert!(pos("b", AuditAction::Fired) < pos("c", AuditAction::Opened));
    assert!(pos("c", AuditAction::Fired) < pos("d", AuditAction::Opened));
}

fn a_blocked_quorum_zero_early_event_fires_the_moment_it_opens() {
    // The instant gate a manifest declares: quorum 0, `early`, with a need.
    // Ad-hoc `campaign add` would fire it before it can be linked, so it is
    // written through the store trait, as the manifest layer does.
    let (mut engine, _clock) = engine();
    let c = engine.create_campaign("gate".into()).unwrap();
    let a = add(&mut engine, c.id, "a", on_time(10, &[], Quorum::Count(0)));
    let gate_id = Uuid::new_v4();
    {
        let gate = TMinusEvent {
            rules_digest: None,
            id: gate_id,
            kind: EventKind::Checkpoint,
            scheduled_at: at_min(60),
            t_minus: Duration::zero(),
            organizer: agent("t-minus"),
            attendees: vec![(agent("x"), ResponseStatus::Pending)],
            quorum: 0,
            groups: Vec::new(),
            payload: serde_json::Value::Null,
            state: EventState::Blocked,
            campaign: Some(c.id),
            name: Some("gate".into()),
            quorum_spec: Quorum::Count(0),
            fire_policy: t_minus::FirePolicy::Early,
            max_defer: None,
            deferred: Duration::zero(),
            relative_at: None,
            started_at: None,
            finished_at: None,
            created_at: t0(),
            last_response_at: None,
            gates: Default::default(),
            description: None,
            escalation: Default::default(),
        };
        let store = engine.store_mut();
        let mut tx = store.write().unwrap();
        tx.insert_event(&gate).unwrap();
        tx.insert_edge(c.id, a.id, gate_id).unwrap();
        tx.commit().unwrap();
    }
    assert_eq!(state(&engine, gate_id), EventState::Blocked);
    assert!(engine.tick(at_min(9)).unwrap().is_empty());

    let r = engine.tick(at_min(10)).unwrap();
    assert_eq!(
        r.fired,
        vec![a.id, gate_id],
        "one tick: a fires, gate opens and fires"
    );
    assert_eq!(r.opened, vec![gate_id]);
    let gate = get(&engine, gate_id);
    assert_eq!(gate.finished_at, Some(at_min(10)));
    assert_eq!(gate.started_at, Some(at_min(10)));
}

fn a_cascade_records_the_same_times_whenever_the_tick_runs() {
    let run = |tick_at| {
        let (mut engine, _clock) = engine();
        let c = engine.create_campaign("lazy".into()).unwrap();
        let a = add(&mut engine, c.id, "a", on_time(10, &[], Quorum::Count(0)));
        let b = add(
            &mut engine,
            c.id,
            "b",
            on_time(20, &["x"], Quorum::Count(0)),
        );
        let cc = add(&mut engine, c.id, "c", spec(30, &["y"], Quorum::All));
        engine.campaign_link(c.id, a.id, b.id).unwrap();
        engine.campaign_link(c.id, b.id, cc.id).unwrap();
        engine.tick(tick_at).unwrap();
        [a.id, b.id, cc.id].map(|id| {
            let e = get(&engine, id);
            (e.state, e.started_at, e.finished_at)
        })
    };
    let punctual = run(at_min(30));
    assert_eq!(punctual, run(at_min(300)));
    assert_eq!(
        punctual,
        [
            (EventState::Fired, Some(t0()), Some(at_min(10))),
            (EventState::Fired, Some(at_min(10)), Some(at_min(20))),
            (EventState::Missed, Some(at_min(20)), Some(at_min(30))),
        ]
    );
}

// ---------------------------------------------------------------- order & cycles

fn campaign_levels_of_a_diamond() {
    let (mut engine, _clock) = engine();
    let (campaign, [a, b, c, d]) = diamond(&mut engine);
    assert_eq!(
        engine.campaign_levels(campaign).unwrap(),
        vec![vec![a], vec![b, c], vec![d]]
    );
    assert_eq!(
        engine.campaign_execution_order(campaign).unwrap(),
        vec![a, b, c, d]
    );
    let stored = engine.get_campaign(campaign).unwrap().unwrap();
    assert_eq!(stored.events, vec![a, b, c, d]);
    assert_eq!(stored.dependencies.len(), 4);
}

fn a_link_closing_a_cycle_is_refused_and_changes_nothing() {
    let (mut engine, _clock) = engine();
    let (campaign, [a, b, c, d]) = diamond(&mut engine);
    let before = engine.get_campaign(campaign).unwrap().unwrap();
    let events_before: Vec<TMinusEvent> = engine.list_events().unwrap();
    let logs_before: Vec<_> = before
        .events
        .iter()
        .map(|id| engine.log(*id).unwrap())
        .collect();

    let err = engine.campaign_link(campaign, d, a).unwrap_err();
    let cycle = match &err {
        TMinusError::Cycle { cycle } => cycle.clone(),
        other => panic!("expected Cycle, got {other:?}"),
    };
    // Spelled in dependency order, first repeated last, through real edges.
    assert_eq!(cycle.first(), cycle.last());
    assert!(cycle.contains(&"A".to_string()) && cycle.contains(&"D".to_string()));
    let names: HashMap<&str, Uuid> = [("A", a), ("B", b), ("C", c), ("D", d)].into();
    let mut edges = before.dependencies.clone();
    edges.push((d, a));
    for pair in cycle.windows(2) {
        assert!(
            edges.contains(&(names[pair[0].as_str()], names[pair[1].as_str()])),
            "{cycle:?}"
        );
    }
    let msg = err.to_string();
    assert!(msg.contains("cycle"), "{msg}");
    assert!(msg.contains(&cycle.join(" → ")), "{msg}");

    let after = engine.get_campaign(campaign).unwrap().unwrap();
    assert_eq!(after.dependencies, before.dependencies, "edges identical");
    assert_eq!(after, before);
    assert_eq!(engine.list_events().unwrap(), events_before);
    let logs_after: Vec<_> = after
        .events
        .iter()
        .map(|id| engine.log(*id).unwrap())
        .collect();
    assert_eq!(logs_after, logs_before);
    assert_eq!(
        engine.campaign_levels(campaign).unwrap(),
        vec![vec![a], vec![b, c], vec![d]]
    );

    // A two-cycle and a self-link are refused too.
    let err = engine.campaign_link(campaign, b, a).unwrap_err();
    assert!(
        matches!(&err, TMinusError::Cycle { cycle } if cycle == &["A", "B", "A"] || cycle == &["B", "A", "B"]),
        "{err:?}"
    );
    let err = engine.campaign_link(campaign, a, a).unwrap_err();
    assert!(
        matches!(&err, TMinusError::Cycle { cycle } if cycle == &["A", "A"]),
        "{err:?}"
    );
    assert_eq!(
        engine.get_campaign(campaign).unwrap().unwrap().dependencies,
        before.dependencies
    );
}

fn linking_the_same_edge_twice_is_a_no_op() {
    let (mut engine, _clock) = engine();
    let (campaign, [a, b, _, _]) = diamond(&mut engine);
    let before = engine.get_campaign(campaign).unwrap().unwrap();
    let log_before = engine.log(b).unwrap();
    let again = engine.campaign_link(campaign, a, b).unwrap();
    assert_eq!(again.dependencies, before.dependencies);
    assert_eq!(engine.log(b).unwrap(), log_before);
}

fn links_outside_the_campaign_or_to_final_events_are_refused() {
    let (mut engine, clock) = engine();
    let c = engine.create_campaign("one".into()).unwrap();
    let a = add(&mut engine, c.id, "a", spec(10, &["x"], Quorum::All));
    let b = add(&mut engine, c.id, "b", spec(20, &["x"], Quorum::All));
    let loose = engine.schedule(spec(10, &["x"], Quorum::All)).unwrap();
    let err = engine.campaign_link(c.id, a.id, loose.id).unwrap_err();
    assert!(matches!(err, TMinusError::InvalidLink { .. }), "{err:?}");
    assert!(err.to_string().contains("not in campaign"), "{err}");

    clock.set(at_min(1));
    engine.decline(a.id, &agent("x"), None).unwrap(); // a missed
    let err = engine.campaign_link(c.id, a.id, b.id).unwrap_err();
    assert!(matches!(err, TMinusError::InvalidLink { .. }), "{err:?}");
    engine.confirm(b.id, &agent("x")).unwrap(); // b fired
    let d = add(&mut engine, c.id, "d", spec(20, &["x"], Quorum::All));
    let err = engine.campaign_link(c.id, d.id, b.id).unwrap_err();
    assert!(matches!(err, TMinusError::InvalidLink { .. }), "{err:?}");
    assert!(err.to_string().contains("final event"), "{err}");
    assert!(engine
        .get_campaign(c.id)
        .unwrap()
        .unwrap()
        .dependencies
        .is_empty());
}

// ---------------------------------------------------------------- add with needs

fn campaign_add_with_needs_starts_blocked_and_opens_when_they_fire() {
    let (mut engine, clock) = engine();
    let c = engine.create_campaign("adhoc".into()).unwrap();
    let a = add(&mut engine, c.id, "a", spec(10, &["x"], Quorum::All));
    let b = add(&mut engine, c.id, "b", spec(10, &["y"], Quorum::All));
    let d = engine
        .campaign_add_with_needs(
            c.id,
            spec(30, &["z"], Quorum::All),
            Some("d".into()),
            &[a.id, b.id, a.id],
        )
        .unwrap();
    assert_eq!(d.state, EventState::Blocked);
    assert_eq!(d.started_at, None);
    let campaign = engine.get_campaign(c.id).unwrap().unwrap();
    assert_eq!(
        campaign.dependencies,
        vec![(a.id, d.id), (b.id, d.id)],
        "one edge per need, duplicates dropped"
    );
    assert_eq!(
        actions(&engine, d.id),
        [
            AuditAction::Scheduled,
            AuditAction::Linked,
            AuditAction::Linked
        ]
    );
    assert_eq!(
        engine.campaign_levels(c.id).unwrap(),
        vec![vec![a.id, b.id], vec![d.id]]
    );

    clock.set(at_min(2));
    engine.confirm(a.id, &agent("x")).unwrap();
    assert_eq!(state(&engine, d.id), EventState::Blocked, "still needs b");
    clock.set(at_min(3));
    engine.confirm(b.id, &agent("y")).unwrap();
    let open = get(&engine, d.id);
    assert_eq!(open.state, EventState::Pending);
    assert_eq!(open.started_at, Some(at_min(3)));
    let result = engine.tick(at_min(3)).unwrap();
    assert_eq!(result.opened, vec![d.id]);
}

fn campaign_add_with_needs_that_already_fired_starts_pending() {
    let (mut engine, clock) = engine();
    let c = engine.create_campaign("adhoc".into()).unwrap();
    let a = add(&mut engine, c.id, "a", spec(10, &["x"], Quorum::All));
    clock.set(at_min(1));
    engine.confirm(a.id, &agent("x")).unwrap();
    clock.set(at_min(2));
    let b = engine
        .campaign_add_with_needs(c.id, spec(20, &["y"], Quorum::All), None, &[a.id])
        .unwrap();
    assert_eq!(b.state, EventState::Pending);
    assert_eq!(b.started_at, Some(at_min(2)), "opens when it is added");
    assert_eq!(
        engine.get_campaign(c.id).unwrap().unwrap().dependencies,
        vec![(a.id, b.id)]
    );
    // A quorum-0 event whose need fired is an instant gate, as always.
    let gate = engine
        .campaign_add_with_needs(c.id, spec(20, &[], Quorum::All), None, &[a.id])
        .unwrap();
    assert_eq!(gate.state, EventState::Fired);
}

fn campaign_add_with_bad_needs_is_refused_and_writes_nothing() {
    let (mut engine, clock) = engine();
    let c = engine.create_campaign("adhoc".into()).unwrap();
    let other = engine.create_campaign("other".into()).unwrap();
    let a = add(&mut engine, c.id, "a", spec(10, &["x"], Quorum::All));
    let foreign = add(&mut engine, other.id, "f", spec(10, &["x"], Quorum::All));
    let loose = engine.schedule(spec(10, &["x"], Quorum::All)).unwrap();
    let before = engine.list_events().unwrap().len();
    let try_add = |engine: &mut Engine, needs: &[Uuid]| {
        engine
            .campaign_add_with_needs(
                c.id,
                spec(30, &["z"], Quorum::All),
                Some("new".into()),
                needs,
            )
            .unwrap_err()
    };

    let err = try_add(&mut engine, &[a.id, Uuid::new_v4()]);
    assert!(matches!(err, TMinusError::EventNotFound { .. }), "{err:?}");
    for id in [foreign.id, loose.id] {
        let err = try_add(&mut engine, &[id]);
        assert!(matches!(err, TMinusError::InvalidLink { .. }), "{err:?}");
        assert!(err.to_string().contains("not in campaign `adhoc`"), "{err}");
    }
    clock.set(at_min(1));
    engine.decline(a.id, &agent("x"), None).unwrap(); // a missed
    let err = try_add(&mut engine, &[a.id]);
    assert!(matches!(err, TMinusError::InvalidLink { .. }), "{err:?}");
    assert!(err.to_string().contains("could never open"), "{err}");

    assert_eq!(
        engine.list_events().unwrap().len(),
        before,
        "nothing written"
    );
    assert!(engine.resolve_event("adhoc/new").is_err());
    assert!(engine
        .get_campaign(c.id)
        .unwrap()
        .unwrap()
        .dependencies
        .is_empty());
}

// ---------------------------------------------------------------- names

fn duplicate_or_invalid_campaign_names_are_refused() {
    let (mut engine, _clock) = engine();
    let first = engine.create_campaign("release-v2".into()).unwrap();
    assert_eq!(first.state, CampaignState::Succeeded, "empty campaign");
    let err = engine.create_campaign("release-v2".into()).unwrap_err();
    assert!(
        matches!(&err, TMinusError::DuplicateCampaign { name } if name == "release-v2"),
        "{err:?}"
    );
    assert!(err.to_string().contains("release-v2"), "{err}");
    for bad in ["", "9lives", "has space", "a/b"] {
        let err = engine.create_campaign(bad.into()).unwrap_err();
        assert!(
            matches!(err, TMinusError::InvalidName { .. }),
            "{bad:?}: {err:?}"
        );
    }
    let all = engine.list_campaigns().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].id, first.id);
}

fn campaign_add_names_events_after_their_kind() {
    let (mut engine, _clock) = engine();
    let c = engine.create_campaign("names".into()).unwrap();
    let base = spec(10, &["x"], Quorum::All);
    let mut names = Vec::new();
    let mut ids = Vec::new();
    for kind in [
        EventKind::Checkpoint,
        EventKind::Checkpoint,
        EventKind::Review,
        EventKind::Checkpoint,
        EventKind::Custom("sign-off".into()),
    ] {
        let e = engine
            .campaign_add(
                c.id,
                NewEvent {
                    kind,
                    ..base.clone()
                },
                None,
            )
            .unwrap();
        assert_eq!(e.campaign, Some(c.id));
        names.push(e.name.clone().unwrap());
        ids.push(e.id);
    }
    assert_eq!(
        names,
        [
            "checkpoint",
            "checkpoint-2",
            "review",
            "checkpoint-3",
            "sign-off"
        ]
    );
    // campaign/event references resolve.
    for (name, id) in names.iter().zip(&ids) {
        assert_eq!(engine.resolve_event(&format!("names/{name}")).unwrap(), *id);
    }
    // An explicit name, and a duplicate one.
    let gate = engine
        .campaign_add(c.id, base.clone(), Some("gate".into()))
        .unwrap();
    assert_eq!(engine.resolve_event("names/gate").unwrap(), gate.id);
    let err = engine
        .campaign_add(c.id, base.clone(), Some("gate".into()))
        .unwrap_err();
    assert!(
        matches!(err, TMinusError::DuplicateEventName { .. }),
        "{err:?}"
    );
    let err = engine
        .campaign_add(c.id, base, Some("bad name".into()))
        .unwrap_err();
    assert!(matches!(err, TMinusError::InvalidName { .. }), "{err:?}");
    assert_eq!(engine.get_campaign(c.id).unwrap().unwrap().events.len(), 6);
}

fn campaign_add_event_moves_a_standalone_event_in() {
    let (mut engine, _clock) = engine();
    let c = engine.create_campaign("adopt".into()).unwrap();
    add(&mut engine, c.id, "deploy", spec(10, &["x"], Quorum::All));
    let loose = engine
        .schedule(NewEvent {
            kind: EventKind::Deploy,
            ..spec(10, &["x"], Quorum::All)
        })
        .unwrap();
    let campaign = engine.campaign_add_event(c.id, loose.id).unwrap();
    assert_eq!(campaign.events.len(), 2);
    assert_eq!(campaign.events[1], loose.id);
    let moved = get(&engine, loose.id);
    assert_eq!(moved.name.as_deref(), Some("deploy-2"));
    assert_eq!(engine.resolve_event("adopt/deploy-2").unwrap(), loose.id);
    // Idempotent; and an event belongs to one campaign only.
    assert_eq!(engine.campaign_add_event(c.id, loose.id).unwrap(), campaign);
    let other = engine.create_campaign("other".into()).unwrap();
    let err = engine.campaign_add_event(other.id, loose.id).unwrap_err();
    assert!(matches!(err, TMinusError::InvalidLink { .. }), "{err:?}");
}

// ---------------------------------------------------------------- references

fn events_resolve_by_uuid_and_unique_prefix() {
    let (mut engine, _clock) = engine();
    let e = engine.schedule(spec(10, &["x"], Quorum::All)).unwrap();
    let full = e.id.to_string();
    assert_eq!(engine.resolve_event(&full).unwrap(), e.id);
    assert_eq!(engine.resolve_event(&full.to_uppercase()).unwrap(), e.id);
    assert_eq!(
        engine.resolve_event(&e.id.simple().to_string()).unwrap(),
        e.id
    );
    assert_eq!(engine.resolve_event(&full[..4]).unwrap(), e.id);
    assert_eq!(engine.resolve_event(&full[..8]).unwrap(), e.id);
    assert_eq!(
        engine.resolve_event(&full[..13]).unwrap(),
        e.id,
        "with a hyphen"
    );
    assert_eq!(
        engine.resolve_event(&format!(" {} ", &full[..6])).unwrap(),
        e.id
    );
}

fn an_ambiguous_prefix_lists_the_candidates() {
    let (mut engine, _clock) = engine();
    // Schedule events until two share their first 4 hex digits (expected
    // after ~300; 20,000 makes a failure to find one astronomically unlikely).
    let mut by_prefix: HashMap<String, Uuid> = HashMap::new();
    let (prefix, first, second) = loop {
        assert!(by_prefix.len() < 20_000, "no shared prefix found");
        let e = engine.schedule(spec(10, &["x"], Quorum::All)).unwrap();
        let p = e.id.to_string()[..4].to_string();
        if let Some(other) = by_prefix.insert(p.clone(), e.id) {
            break (p, other, e.id);
        }
    };
    let err = engine.resolve_event(&prefix).unwrap_err();
    match &err {
        TMinusError::AmbiguousReference { value, candidates } => {
            assert_eq!(value, &prefix);
            assert_eq!(candidates.len(), 2, "{candidates:?}");
            for id in [first, second] {
                assert!(
                    candidates.iter().any(|c| c.starts_with(&id.to_string())),
                    "{candidates:?}"
                );
            }
        }
        other => panic!("expected AmbiguousReference, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("ambiguous"), "{msg}");
    assert!(
        msg.contains(&first.to_string()) && msg.contains(&second.to_string()),
        "{msg}"
    );
    // Enough digits to tell them apart resolve each one.
    let (a, b) = (first.simple().to_string(), second.simple().to_string());
    let n = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count() + 1;
    assert_eq!(engine.resolve_event(&a[..n]).unwrap(), first);
    assert_eq!(engine.resolve_event(&b[..n]).unwrap(), second);
}

fn malformed_and_unknown_event_references_are_errors() {
    let (mut engine, _clock) = engine();
    let c = engine.create_campaign("known".into()).unwrap();
    add(&mut engine, c.id, "gate", spec(10, &["x"], Quorum::All));
    for (bad, why) in [
        ("abc", "at least 4"),
        ("zzzz", "not a hex digit"),
        ("a1b2!", "not a hex digit"),
        ("", "at least 4"),
    ] {
        let err = engine.resolve_event(bad).unwrap_err();
        match &err {
            TMinusError::InvalidReference { reason, what, .. } => {
                assert_eq!(*what, "event");
                assert!(reason.contains(why), "{bad:?}: {reason}");
            }
            other => panic!("{bad:?}: expected InvalidReference, got {other:?}"),
        }
    }
    let ghost = Uuid::new_v4().to_string();
    let err = engine.resolve_event(&ghost).unwrap_err();
    assert!(
        matches!(&err, TMinusError::EventNotFound { reference } if *reference == ghost),
        "{err:?}"
    );
    // A well-formed prefix no event has.
    let stored = engine.list_events().unwrap()[0].id.to_string();
    let unused = if stored.starts_with("0000") {
        "ffff"
    } else {
        "0000"
    };
    assert!(matches!(
        engine.resolve_event(unused).unwrap_err(),
        TMinusError::EventNotFound { .. }
    ));
    assert!(matches!(
        engine.resolve_event("known/nope").unwrap_err(),
        TMinusError::EventNotFound { .. }
    ));
    let err = engine.resolve_event("unknown/gate").unwrap_err();
    assert!(
        matches!(&err, TMinusError::CampaignNotFound { reference } if reference == "unknown"),
        "{err:?}"
    );
}

fn campaigns_resolve_by_name_uuid_and_prefix() {
    let (mut engine, _clock) = engine();
    let c = engine.create_campaign("release".into()).unwrap();
    let id = c.id.to_string();
    assert_eq!(engine.resolve_campaign("release").unwrap(), c.id);
    assert_eq!(engine.resolve_campaign(&id).unwrap(), c.id);
    assert_eq!(engine.resolve_campaign(&id[..6]).unwrap(), c.id);
    for unknown in ["nope", &Uuid::new_v4().to_string()] {
        let err = engine.resolve_campaign(unknown).unwrap_err();
        assert!(
            matches!(&err, TMinusError::CampaignNotFound { reference } if reference == unknown),
            "{err:?}"
        );
        assert!(err.to_string().contains(unknown), "{err}");
    }
    let ghost = Uuid::new_v4();
    assert!(engine.get_campaign(ghost).unwrap().is_none());
    assert!(matches!(
        engine.campaign_levels(ghost).unwrap_err(),
        TMinusError::CampaignNotFound { .. }
    ));
    assert!(matches!(
        engine
            .campaign_add(ghost, spec(10, &["x"], Quorum::All), None)
            .unwrap_err(),
        TMinusError::CampaignNotFound { .. }
    ));
}

fn targets_tell_events_from_campaigns() {
    let (mut engine, _clock) = engine();
    let c = engine.create_campaign("ops".into()).unwrap();
    let e = add(&mut engine, c.id, "gate", spec(10, &["x"], Quorum::All));
    assert_eq!(
        engine.resolve_target("ops").unwrap(),
        t_minus::Target::Campaign(c.id)
    );
    assert_eq!(
        engine.resolve_target("ops/gate").unwrap(),
        t_minus::Target::Event(e.id)
    );
    assert_eq!(
        engine.resolve_target(&e.id.to_string()).unwrap(),
        t_minus::Target::Event(e.id)
    );
    assert!(matches!(
        engine.resolve_target("nothing-here").unwrap_err(),
        TMinusError::TargetNotFound { .. }
    ));
}

// The tests above without `#[test]` run twice, as `sqlite::NAME` and
// `postgres::NAME` (tests/common/stores.rs).
/// An answer names its event as `CAMPAIGN/EVENT`, the campaign by name
/// (campaign and event found in one look-up), by id or by a prefix of its
/// id (resolved in turn); a missing event or campaign is refused as such.
fn an_answer_names_its_campaign_by_name_id_or_prefix() {
    let (mut engine, _clock) = engine();
    let c = engine.create_campaign("rel".into()).unwrap();
    let e = add(
        &mut engine,
        c.id,
        "go",
        spec(10, &["x", "y", "z", "w"], Quorum::All),
    );
    for (reference, who) in [
        ("rel/go".to_string(), "x"),
        (format!("{}/go", c.id), "y"),
        (" rel /go".to_string(), "z"),
        (format!("{}/go", &c.id.to_string()[..8]), "w"),
    ] {
        let (event, campaign) = engine
            .respond_to(&reference, &agent(who), t_minus::Response::Confirm)
            .unwrap_or_else(|err| panic!("{reference}: {err}"));
        assert_eq!(event.id, e.id, "{reference}");
        assert_eq!(campaign.as_deref(), Some("rel"), "{reference}");
        assert_eq!(
            event.response_of(&agent(who)),
            Some(ResponseStatus::Confirmed)
        );
    }
    let err = engine
        .respond_to("rel/gone", &agent("x"), t_minus::Response::Confirm)
        .unwrap_err();
    assert!(
        matches!(&err, TMinusError::EventNotFound { reference } if reference == "rel/gone"),
        "{err:?}"
    );
    let err = engine
        .respond_to("nowhere/go", &agent("x"), t_minus::Response::Confirm)
        .unwrap_err();
    assert!(
        matches!(&err, TMinusError::CampaignNotFound { .. }),
        "{err:?}"
    );
}

common::store_tests!(
    an_answer_names_its_campaign_by_name_id_or_prefix,
    events_stay_blocked_until_every_need_fired,
    linking_puts_a_pending_event_back_to_blocked,
    a_blocked_event_opens_and_misses_when_its_own_deadline_already_passed,
    answers_given_while_blocked_count_when_the_event_opens,
    a_pre_approved_event_that_opens_after_its_fire_time_is_missed,
    a_missed_need_cancels_its_dependents_transitively_in_one_tick,
    a_cancelled_need_cancels_its_dependents_transitively,
    cancel_campaign_cancels_every_unfinished_event,
    a_tick_cascades_a_chain_in_dependency_order,
    a_blocked_quorum_zero_early_event_fires_the_moment_it_opens,
    a_cascade_records_the_same_times_whenever_the_tick_runs,
    campaign_levels_of_a_diamond,
    a_link_closing_a_cycle_is_refused_and_changes_nothing,
    linking_the_same_edge_twice_is_a_no_op,
    links_outside_the_campaign_or_to_final_events_are_refused,
    campaign_add_with_needs_starts_blocked_and_opens_when_they_fire,
    campaign_add_with_needs_that_already_fired_starts_pending,
    campaign_add_with_bad_needs_is_refused_and_writes_nothing,
    duplicate_or_invalid_campaign_names_are_refused,
    campaign_add_names_events_after_their_kind,
    campaign_add_event_moves_a_standalone_event_in,
    events_resolve_by_uuid_and_unique_prefix,
    an_ambiguous_prefix_lists_the_candidates,
    malformed_and_unknown_event_references_are_errors,
    campaigns_resolve_by_name_uuid_and_prefix,
    targets_tell_events_from_campaigns,
);
