//! Code written against the prototype's library, in its style: the seed
//! README's example unchanged, a second engine on the same file that is not
//! `mut` and reads through `&self`, and every prototype item the engine
//! keeps (`mark_missed`, the deprecated `remove_event` and
//! `apply_deferral_cascade`, `is_fired`/`is_missed`, `Campaign::new`,
//! `Campaign::execution_order`, `AgentId` from strings).
//!
//! The engine-level rules of those items also run on PostgreSQL
//! (`store_tests!` at the end).

use crate::common;

use std::error::Error;
use std::sync::Arc;

use chrono::{Duration, Utc};
use common::*;
use t_minus::manifest::{self, ValidateOptions};
use t_minus::plan::PlanOptions;
use t_minus::{
    AgentId, AuditAction, Campaign, Engine, EventKind, EventState, FixedClock, Quorum,
    ResponseStatus, TMinusError, Target,
};
use uuid::Uuid;

type TestResult = Result<(), Box<dyn Error>>;

/// The seed README's library example, unchanged but for the store's path.
#[test]
fn the_seed_readme_example_runs_unchanged() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db_path = dir.path().join("coordination.db");

    let mut engine = Engine::new(db_path.as_ref())?;
    // Schedule a meeting
    let event = engine.schedule_event(
        EventKind::Meeting,
        Utc::now() + Duration::minutes(10), // scheduled time
        Duration::minutes(5),               // T-minus countdown
        AgentId("coordinator".into()),
        vec![AgentId("agent-1".into()), AgentId("agent-2".into())],
        2, // quorum: both must confirm
        serde_json::json!({"topic": "sprint planning"}),
    )?;
    // Agents confirm
    engine.confirm(event.id, &AgentId("agent-1".into()))?;
    engine.confirm(event.id, &AgentId("agent-2".into()))?;
    // Process: fires events that reached quorum
    let result = engine.tick(Utc::now())?;
    for id in &result.fired {
        println!("Event {} fired!", id);
    }

    assert_eq!(result.fired, vec![event.id]);
    let stored = engine.get_event(event.id)?.expect("kept after firing");
    assert_eq!(stored.state, EventState::Fired);
    assert_eq!(stored.payload["topic"], "sprint planning");
    Ok(())
}

/// A second handle on the same file, not `mut`, reads everything the first
/// one wrote: every read-only method takes `&self`.
#[test]
fn a_second_engine_that_is_not_mut_reads_through_shared_references() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db_path = dir.path().join("coordination.db");
    let clock = FixedClock::new(t0());

    let mut engine = Engine::new(&db_path)?.with_clock(Arc::new(clock.clone()));
    let campaign = engine.create_campaign("release".to_string())?;
    let checkpoint = engine.campaign_add(campaign.id, spec(10, &["ci"], Quorum::All), None)?;
    let review = engine.campaign_add_with_needs(
        campaign.id,
        spec(20, &["alice", "bob"], Quorum::Count(2)),
        Some("review".into()),
        &[checkpoint.id],
    )?;
    let meeting = engine.schedule_event(
        EventKind::Meeting,
        at_min(30),
        mins(5),
        AgentId::from("coordinator"),
        vec![AgentId::from("agent-1")],
        1,
        serde_json::json!({}),
    )?;
    engine.confirm(meeting.id, &AgentId::from("agent-1"))?;

    let engine2 = Engine::new(&db_path)?; // not `mut`
    let ev = engine2.get_event(review.id)?.expect("review");
    assert_eq!(ev.state, EventState::Blocked);
    assert_eq!(ev.name.as_deref(), Some("review"));
    assert_eq!(engine2.list_events()?.len(), 3);
    let unfinished: Vec<Uuid> = engine2.list_unfinished()?.iter().map(|e| e.id).collect();
    assert_eq!(unfinished, vec![checkpoint.id, review.id]);
    assert_eq!(engine2.next_fire_time(None)?, Some(at_min(10)));
    assert_eq!(engine2.next_fire_time(Some(campaign.id))?, Some(at_min(10)));

    let stored = engine2.get_campaign(campaign.id)?.expect("campaign");
    assert_eq!(stored.events, vec![checkpoint.id, review.id]);
    assert_eq!(stored.dependencies, vec![(checkpoint.id, review.id)]);
    assert_eq!(engine2.list_campaigns()?.len(), 1);
    assert_eq!(
        engine2.campaign_execution_order(campaign.id)?,
        vec![checkpoint.id, review.id]
    );
    assert_eq!(
        engine2.campaign_levels(campaign.id)?,
        vec![vec![checkpoint.id], vec![review.id]]
    );
    let actions: Vec<AuditAction> = engine2.log(meeting.id)?.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::Scheduled,
            AuditAction::Confirmed,
            AuditAction::Fired
        ]
    );

    assert_eq!(engine2.resolve_event("release/review")?, review.id);
    assert_eq!(engine2.resolve_campaign("release")?, campaign.id);
    assert_eq!(
        engine2.resolve_target(&meeting.id.to_string())?,
        Target::Event(meeting.id)
    );

    let desired = manifest::validate(
        &manifest::parse_str(
            "other.yaml",
            "campaign: other\nevents:\n  gate:\n    at: 2030-01-01T00:00:00Z\n",
        ),
        &ValidateOptions::default(),
    )
    .map_err(|d| format!("{d:?}"))?;
    let plan = engine2.plan(&desired, &PlanOptions::default())?;
    assert_eq!(
        plan.summary_line(),
        "Plan: 2 to add, 0 to change, 0 to destroy."
    );
    // Planning through `&self` wrote nothing.
    assert!(engine2
        .get_campaign(engine2.resolve_campaign("release")?)?
        .is_some());
    assert!(matches!(
        engine2.resolve_campaign("other"),
        Err(TMinusError::CampaignNotFound { .. })
    ));
    Ok(())
}

#[test]
fn agent_ids_convert_from_strings() {
    let from_str: AgentId = "alice".into();
    let from_string: AgentId = String::from("bob").into();
    assert_eq!(from_str, AgentId("alice".into()));
    assert_eq!(AgentId::from("alice"), AgentId("alice".to_string()));
    assert_eq!(from_string, AgentId("bob".into()));
    assert_eq!(AgentId::from(String::from("bob")).as_str(), "bob");
}

#[test]
fn campaign_new_is_empty_and_orders_its_events_topologically() {
    // The prototype's call: `Campaign::new(name: String)`, so `.into()`.
    let mut campaign = Campaign::new("pipeline".into());
    assert_eq!(campaign.name, "pipeline");
    assert!(!campaign.id.is_nil());
    assert_ne!(
        campaign.id,
        Campaign::new(String::from("pipeline")).id,
        "a fresh id each"
    );
    assert!(campaign.events.is_empty() && campaign.dependencies.is_empty());
    assert_eq!(campaign.execution_order(), Ok(vec![]));

    // A ──→ B ──→ D, A ──→ C ──→ D: order A → B, C → D.
    let [a, b, c, d] = [(); 4].map(|_| Uuid::new_v4());
    campaign.events = vec![d, c, b, a];
    campaign.dependencies = vec![(a, b), (a, c), (b, d), (c, d)];
    assert_eq!(campaign.execution_order(), Ok(vec![a, c, b, d]));
    assert_eq!(campaign.levels(), Ok(vec![vec![a], vec![c, b], vec![d]]));

    campaign.dependencies.push((d, a));
    let cycle = campaign.execution_order().expect_err("a cycle");
    for id in [a, d] {
        assert!(
            cycle.contains(&id),
            "{cycle:?} holds the events on the cycle"
        );
    }
    assert!(
        !cycle.contains(&b) || !cycle.contains(&c),
        "only one path of the diamond is on the reported cycle: {cycle:?}"
    );
}

#[test]
fn is_fired_and_is_missed_follow_the_state_and_the_clock() -> TestResult {
    let clock = FixedClock::new(t0());
    let mut engine = Engine::in_memory()?.with_clock(Arc::new(clock.clone()));
    let unanswered = engine.schedule(spec(10, &["alice"], Quorum::All))?;
    let confirmed_on_time = engine.schedule(on_time(10, &["bob"], Quorum::All))?;
    engine.confirm(confirmed_on_time.id, &agent("bob"))?;
    let early = engine.schedule(spec(10, &["carol"], Quorum::All))?;
    engine.confirm(early.id, &agent("carol"))?;

    // Read without any tick: the stored state is still pending.
    let unanswered = engine.get_event(unanswered.id)?.expect("event");
    let on_time_event = engine.get_event(confirmed_on_time.id)?.expect("event");
    assert_eq!(unanswered.state, EventState::Pending);
    assert_eq!(on_time_event.state, EventState::Pending);
    for now in [at_min(0), at_min(9)] {
        assert!(!unanswered.is_missed(now) && !unanswered.is_fired(now));
        assert!(!on_time_event.is_fired(now) && !on_time_event.is_missed(now));
    }
    // At the fire time, what the clock implies.
    assert!(unanswered.is_missed(at_min(10)) && !unanswered.is_fired(at_min(10)));
    assert!(on_time_event.is_fired(at_min(10)) && !on_time_event.is_missed(at_min(10)));

    // Stored outcomes hold at any time.
    let early = engine.get_event(early.id)?.expect("event");
    assert_eq!(early.state, EventState::Fired);
    assert!(early.is_fired(at_min(0)) && !early.is_missed(at_min(60)));
    engine.tick(at_min(10))?;
    let missed = engine.get_event(unanswered.id)?.expect("event");
    assert!(missed.is_missed(at_min(0)) && !missed.is_fired(at_min(60)));

    // A blocked event has no outcome yet, whatever the time.
    let c = engine.create_campaign("chain".into())?;
    clock.set(at_min(20));
    let first = engine.campaign_add(c.id, spec(30, &["x"], Quorum::All), None)?;
    let second =
        engine.campaign_add_with_needs(c.id, spec(40, &["y"], Quorum::All), None, &[first.id])?;
    assert_eq!(second.state, EventState::Blocked);
    assert!(!second.is_fired(at_min(100)) && !second.is_missed(at_min(100)));
    Ok(())
}

#[test]
#[allow(deprecated)]
fn apply_deferral_cascade_returns_the_event_and_changes_nothing() -> TestResult {
    let clock = FixedClock::new(t0());
    let mut engine = Engine::in_memory()?.with_clock(Arc::new(clock.clone()));
    let event = engine.schedule(spec(10, &["alice", "bob"], Quorum::All))?;
    engine.defer(event.id, &agent("bob"), mins(5))?;
    let before = engine.get_event(event.id)?.expect("event");
    let log_before = engine.log(event.id)?;
    assert_eq!(
        before.fire_time(),
        at_min(15),
        "the deferral moved it at once"
    );

    let cascaded = engine.apply_deferral_cascade(event.id)?;
    assert_eq!(cascaded.as_ref(), Some(&before));
    assert_eq!(engine.get_event(event.id)?.as_ref(), Some(&before));
    assert_eq!(engine.log(event.id)?, log_before);
    assert_eq!(engine.apply_deferral_cascade(Uuid::new_v4())?, None);
    Ok(())
}

// ------------------------------------------- on both stores: mark_missed

/// A campaign `gate → deploy` where `gate` has attendees in every state
/// that matters: confirmed, deferred, pending.
fn gate_and_deploy(engine: &mut Engine) -> (Uuid, Uuid) {
    let c = engine.create_campaign("release".into()).unwrap();
    let gate = engine
        .campaign_add(
            c.id,
            spec(30, &["alice", "bob", "carol"], Quorum::All),
            Some("gate".into()),
        )
        .unwrap();
    let deploy = engine
        .campaign_add_with_needs(
            c.id,
            spec(60, &["ops"], Quorum::All),
            Some("deploy".into()),
            &[gate.id],
        )
        .unwrap();
    engine.confirm(gate.id, &agent("alice")).unwrap();
    engine.defer(gate.id, &agent("bob"), mins(5)).unwrap();
    (gate.id, deploy.id)
}

fn mark_missed_records_an_operator_miss_and_cancels_dependents() {
    let (mut engine, clock) = engine();
    let (gate, deploy) = gate_and_deploy(&mut engine);
    clock.set(at_min(7));

    let marked = engine.mark_missed(gate).unwrap();
    assert_eq!(marked.state, EventState::Missed);
    assert_eq!(marked.finished_at, Some(at_min(7)), "at the engine clock");
    assert_eq!(
        marked.attendees,
        vec![
            (agent("alice"), ResponseStatus::Confirmed),
            (agent("bob"), ResponseStatus::Missed),
            (agent("carol"), ResponseStatus::Missed),
        ]
    );
    let stored = get(&engine, gate);
    assert_eq!(stored.state, EventState::Missed);
    assert_eq!(stored.attendees, marked.attendees);

    let last = engine.log(gate).unwrap().pop().expect("an entry");
    assert_eq!(last.action, AuditAction::Missed);
    assert_eq!(last.at, at_min(7));
    assert_eq!(last.detail["reason"], "marked missed");
    assert_eq!(last.detail["confirmed"], 1);

    let dependent = get(&engine, deploy);
    assert_eq!(dependent.state, EventState::Cancelled);
    assert_eq!(dependent.finished_at, Some(at_min(7)));

    // The next tick reports both transitions, once.
    let result = engine.tick(at_min(8)).unwrap();
    assert_eq!(result.missed, vec![gate]);
    assert_eq!(result.cancelled, vec![deploy]);
    assert!(engine.tick(at_min(9)).unwrap().is_empty());
}

fn mark_missed_is_refused_on_final_events_and_unknown_ids() {
    let (mut engine, clock) = engine();
    let (gate, deploy) = gate_and_deploy(&mut engine);
    engine.mark_missed(gate).unwrap();
    let log = engine.log(gate).unwrap();
    for id in [gate, deploy] {
        let err = engine.mark_missed(id).unwrap_err();
        assert!(matches!(err, TMinusError::EventFinal { .. }), "{err:?}");
    }
    assert_eq!(engine.log(gate).unwrap(), log, "a refusal writes nothing");

    let fired = engine.schedule(spec(10, &[], Quorum::All)).unwrap();
    assert_eq!(fired.state, EventState::Fired);
    assert!(matches!(
        engine.mark_missed(fired.id),
        Err(TMinusError::EventFinal { .. })
    ));

    // Past its fire time an unanswered event has already missed: marking it
    // is refused, and the outcome keeps its own time and reason.
    let late = engine.schedule(spec(20, &["dave"], Quorum::All)).unwrap();
    clock.set(at_min(25));
    assert!(matches!(
        engine.mark_missed(late.id),
        Err(TMinusError::EventFinal { .. })
    ));
    // The refusal wrote nothing; the tick records the miss at the fire time.
    engine.tick(at_min(25)).unwrap();
    let late = get(&engine, late.id);
    assert_eq!(late.finished_at, Some(at_min(20)));

    assert!(matches!(
        engine.mark_missed(Uuid::new_v4()),
        Err(TMinusError::EventNotFound { .. })
    ));
}

fn mark_missed_works_on_a_blocked_event() {
    let (mut engine, clock) = engine();
    let (gate, deploy) = gate_and_deploy(&mut engine);
    clock.set(at_min(3));
    let marked = engine.mark_missed(deploy).unwrap();
    assert_eq!(marked.state, EventState::Missed);
    assert_eq!(
        marked.attendees,
        vec![(agent("ops"), ResponseStatus::Missed)]
    );
    assert_eq!(
        state(&engine, gate),
        EventState::Pending,
        "its need is untouched"
    );
}

#[allow(deprecated)]
fn remove_event_cancels_and_keeps_history() {
    let (mut engine, clock) = engine();
    let (gate, deploy) = gate_and_deploy(&mut engine);
    clock.set(at_min(4));
    assert!(engine.remove_event(gate).unwrap());
    let removed = get(&engine, gate);
    assert_eq!(removed.state, EventState::Cancelled, "kept, cancelled");
    assert_eq!(removed.finished_at, Some(at_min(4)));
    assert_eq!(state(&engine, deploy), EventState::Cancelled);
    assert_eq!(actions(&engine, gate).last(), Some(&AuditAction::Cancelled));

    // Removing a final event again leaves it as it is.
    let log = engine.log(gate).unwrap();
    assert!(engine.remove_event(gate).unwrap());
    assert_eq!(engine.log(gate).unwrap(), log);
    assert!(!engine.remove_event(Uuid::new_v4()).unwrap());
    assert_eq!(engine.list_events().unwrap().len(), 2, "nothing deleted");
}

/// The store reads through `&self`; a second transaction begun while one
/// is open on the same connection is an error, not a panic or a nested
/// transaction, and the store is usable again once the first one ends.
fn a_store_reads_through_a_shared_reference_one_transaction_at_a_time() {
    let (_guard, location) = store();
    let mut writer = open_engine(&location, &FixedClock::new(t0()));
    let event = writer.schedule(spec(10, &["x"], Quorum::All)).unwrap();

    let store = t_minus::store::open(&location).unwrap();
    let shared: &dyn t_minus::store::Store = &*store;
    let mut first = shared.read().unwrap();
    assert_eq!(first.event(event.id).unwrap().map(|e| e.id), Some(event.id));
    let second = shared.read();
    assert!(second.is_err(), "a second open transaction is refused");
    drop(second);
    drop(first);
    let mut again = shared.read().unwrap();
    assert_eq!(again.count_events().unwrap(), 1);
}

common::store_tests!(
    a_store_reads_through_a_shared_reference_one_transaction_at_a_time,
    mark_missed_records_an_operator_miss_and_cancels_dependents,
    mark_missed_is_refused_on_final_events_and_unknown_ids,
    mark_missed_works_on_a_blocked_event,
    remove_event_cancels_and_keeps_history,
);
