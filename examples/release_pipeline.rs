//! The main job: a release campaign driven end to end on the embedded SQLite
//! store.
//!
//! `release-v2`: a CI checkpoint gates a review (2 of 3 reviewers) and a docs
//! sign-off; the deploy needs the review and waits for 2 of 3 operators. The
//! simulated agents answer as the clock advances: bob defers the review,
//! carol declines it, the docs writer declines the side branch (so that
//! branch is missed), and the operators confirm the deploy.
//!
//! Run with `cargo run --release --example release_pipeline`. It prints every
//! transition as it happens and where the store is, so you can inspect it
//! with `t-minus --db PATH status release-v2` and `t-minus --db PATH log …`.

use std::sync::Arc;

use chrono::{Duration, SubsecRound, Utc};
use t_minus::{AgentId, Engine, EventKind, FirePolicy, FixedClock, NewEvent, Quorum, TMinusEvent};

fn agents(names: &[&str]) -> Vec<AgentId> {
    names.iter().map(|n| AgentId(n.to_string())).collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("t-minus-release-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("release.db");
    let clock = FixedClock::new(Utc::now().trunc_subsecs(0));
    let mut engine = Engine::new(&db)?.with_clock(Arc::new(clock.clone()));
    let start = engine.now();

    let campaign = engine.create_campaign("release-v2".into())?;
    let add = |engine: &mut Engine, name: &str, kind: EventKind, at_min: i64, new: NewEvent| {
        let new = NewEvent {
            organizer: AgentId("release-manager".into()),
            ..NewEvent {
                kind,
                at: start + Duration::minutes(at_min),
                ..new
            }
        };
        engine.campaign_add(campaign.id, new, Some(name.to_string()))
    };
    let base = NewEvent::new(EventKind::Checkpoint, start);
    let checkpoint = add(
        &mut engine,
        "checkpoint",
        EventKind::Checkpoint,
        10,
        NewEvent {
            attendees: agents(&["ci-bot"]),
            ..base.clone()
        },
    )?;
    let review = add(
        &mut engine,
        "review",
        EventKind::Review,
        30,
        NewEvent {
            t_minus: Duration::minutes(5),
            attendees: agents(&["alice", "bob", "carol"]),
            quorum: Quorum::Count(2),
            ..base.clone()
        },
    )?;
    let docs = add(
        &mut engine,
        "docs",
        EventKind::Custom("sign-off".into()),
        30,
        NewEvent {
            attendees: agents(&["writer"]),
            ..base.clone()
        },
    )?;
    let deploy = add(
        &mut engine,
        "deploy",
        EventKind::Deploy,
        60,
        NewEvent {
            t_minus: Duration::minutes(10),
            attendees: agents(&["ops-1", "ops-2", "ops-3"]),
            quorum: Quorum::Majority,
            fire_policy: FirePolicy::OnTime,
            max_defer: Some(Duration::hours(1)),
            payload: serde_json::json!({ "version": "2.0.0", "region": "eu-west-1" }),
            ..base
        },
    )?;
    for (from, to) in [
        (&checkpoint, &review),
        (&checkpoint, &docs),
        (&review, &deploy),
    ] {
        engine.campaign_link(campaign.id, from.id, to.id)?;
    }
    let order = engine.campaign_levels(campaign.id)?;
    let names: Vec<String> = order
        .iter()
        .map(|level| {
            level
                .iter()
                .map(|id| name_of(&mut engine, *id))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    println!("Campaign release-v2: {}", names.join(" → "));
    println!("Store: {}\n", db.display());

    // (minutes after start, agent, event, answer)
    let script: &[(i64, &str, &TMinusEvent, &str)] = &[
        (2, "ci-bot", &checkpoint, "confirm"),
        (4, "bob", &review, "defer 10m"),
        (6, "alice", &review, "confirm"),
        (7, "carol", &review, "decline"),
        (8, "writer", &docs, "decline"),
        (20, "bob", &review, "confirm"),
        (25, "ops-1", &deploy, "confirm"),
        (26, "ops-2", &deploy, "defer 5m"),
        (28, "ops-3", &deploy, "confirm"),
    ];
    for (minute, agent, event, answer) in script {
        clock.set(start + Duration::minutes(*minute));
        report(&mut engine, start)?;
        let who = AgentId(agent.to_string());
        let name = name_of(&mut engine, event.id);
        let result = match answer.split_once(' ') {
            Some(("defer", by)) => {
                let by = t_minus::duration::parse_duration(by)?;
                engine.defer(event.id, &who, by)
            }
            _ if *answer == "decline" => {
                engine.decline(event.id, &who, Some("not this time".into()))
            }
            _ => engine.confirm(event.id, &who),
        };
        match result {
            Ok(e) => println!(
                "T+{:>2}m  {agent:<7} {answer:<9} {name:<10} quorum {}/{}",
                minute,
                e.confirmed_count(),
                e.quorum
            ),
            Err(err) => println!(
                "T+{:>2}m  {agent:<7} {answer:<9} {name:<10} refused: {err}",
                minute
            ),
        }
    }
    // Let the clock run until every event is final.
    while let Some(next) = engine.next_fire_time(Some(campaign.id))? {
        clock.set(next);
        report(&mut engine, start)?;
    }

    let done = engine
        .get_campaign(campaign.id)?
        .ok_or("campaign vanished")?;
    println!("\nCampaign release-v2 {}", done.state);
    for id in &done.events {
        if let Some(e) = engine.get_event(*id)? {
            println!(
                "  {:<10} {:<9} quorum {}/{}",
                e.display_name(),
                e.state,
                e.confirmed_count(),
                e.quorum
            );
        }
    }
    println!("\nInspect it:\n  cargo run -- --db {} status release-v2\n  cargo run -- --db {} log release-v2/deploy", db.display(), db.display());
    Ok(())
}

/// Ticks at the clock's time and prints what changed, each transition at
/// the moment it happened (minutes after `start`).
fn report(
    engine: &mut Engine,
    start: chrono::DateTime<Utc>,
) -> Result<(), Box<dyn std::error::Error>> {
    let now = engine.now();
    let result = engine.tick(now)?;
    for entry in &result.transitions {
        let (icon, default_reason) = match entry.action {
            t_minus::AuditAction::Fired => ("🚀 fired", "quorum reached"),
            t_minus::AuditAction::Missed => ("❌ missed", "quorum not reached"),
            t_minus::AuditAction::Cancelled => ("🛑 cancelled", "a need failed"),
            _ => ("🔓 opened", "all needs fired"),
        };
        let reason = entry
            .detail
            .get("reason")
            .and_then(|r| r.as_str())
            .unwrap_or(default_reason);
        let minute = (entry.at - start).num_minutes();
        println!(
            "T+{minute:>2}m  {icon} {} ({reason})",
            name_of(engine, entry.event)
        );
    }
    Ok(())
}

fn name_of(engine: &mut Engine, id: uuid::Uuid) -> String {
    match engine.get_event(id) {
        Ok(Some(e)) => e.display_name(),
        _ => id.to_string(),
    }
}
