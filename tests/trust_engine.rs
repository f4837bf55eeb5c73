//! Trusted answers wired into the engine, the stores and the CLI: content
//! digests that reset confirmations, the hash-chained audit log and
//! `verify`.
//!
//! Every test runs on SQLite and on PostgreSQL (`store_tests!`).

use crate::cli_support::{self, T};
use crate::common::{self, desired, engine, t0};

use t_minus::plan::{Plan, PlanOptions};
use t_minus::trust::content_digest;
use t_minus::{AgentId, AuditAction, Engine, EventState, FixedClock, ResponseStatus};

const RELEASE: &str = r#"
campaign: release
events:
  deploy:
    kind: deploy
    at: +1h
    quorum: 3
    attendees: [alice, bob, carol]
    payload: { version: 2.0.0 }
"#;

fn plan(engine: &mut Engine, text: &str) -> Plan {
    engine
        .plan(&desired(text), &PlanOptions::default())
        .unwrap()
}

fn agent(name: &str) -> AgentId {
    AgentId(name.into())
}

fn deploy(engine: &Engine) -> t_minus::TMinusEvent {
    let id = engine.resolve_event("release/deploy").unwrap();
    engine.get_event(id).unwrap().unwrap()
}

fn statuses(event: &t_minus::TMinusEvent) -> Vec<(&str, ResponseStatus)> {
    event
        .attendees
        .iter()
        .map(|(a, s)| (a.as_str(), *s))
        .collect()
}

/// Applies RELEASE; alice and bob confirm, carol defers.
fn answered() -> (Engine, FixedClock) {
    let (mut engine, clock) = engine();
    engine
        .apply_manifests(&desired(RELEASE), &PlanOptions::default())
        .unwrap();
    let id = deploy(&engine).id;
    engine.confirm(id, &agent("alice")).unwrap();
    engine.confirm(id, &agent("bob")).unwrap();
    engine
        .defer(id, &agent("carol"), chrono::Duration::minutes(5))
        .unwrap();
    (engine, clock)
}

fn a_payload_change_resets_confirmations_in_plan_state_and_log() {
    let (mut engine, _) = answered();
    let old = deploy(&engine);
    let old_digest = content_digest(&old);
    let changed = RELEASE.replace("version: 2.0.0", "version: 2.0.1");

    let p = plan(&mut engine, &changed);
    let text = p.render();
    assert!(
        text.contains(
            r#"payload: {"version":"2.0.0"} → {"version":"2.0.1"}  (resets 2 confirmations)"#
        ),
        "{text}"
    );
    assert_eq!(p.campaigns[0].events[0].resets, 2);
    assert!(p.to_json().contains(r#""resets": 2"#), "{}", p.to_json());
    let reread = Plan::from_json(&p.to_json()).unwrap();
    assert_eq!(reread.campaigns[0].events[0].resets, 2);

    engine.apply_plan(&p).unwrap();
    let new = deploy(&engine);
    assert_eq!(new.state, EventState::Pending);
    assert_eq!(
        statuses(&new),
        [
            ("alice", ResponseStatus::Pending),
            ("bob", ResponseStatus::Pending),
            (
                "carol",
                ResponseStatus::Deferred(chrono::Duration::minutes(5))
            ),
        ],
        "confirmations reset, the deferral stays"
    );
    let new_digest = content_digest(&new);
    assert_ne!(old_digest, new_digest);
    let log = engine.log(new.id).unwrap();
    let update = log
        .iter()
        .rfind(|e| e.action == AuditAction::Updated)
        .expect("an update entry");
    assert_eq!(
        update.detail["content"],
        serde_json::json!({
            "old_digest": old_digest.to_string(),
            "new_digest": new_digest.to_string(),
            "reset": ["alice", "bob"],
        })
    );
    // Confirming the new content counts again.
    engine.confirm(new.id, &agent("alice")).unwrap();
    assert_eq!(deploy(&engine).confirmed_count(), 1);
    // The state the log implies is the stored one.
    engine.verify_log(None).unwrap();
}

fn a_change_outside_the_content_keeps_confirmations() {
    let (mut engine, _) = answered();
    let before = content_digest(&deploy(&engine));
    let changed = RELEASE.replace("at: +1h", "at: +2h");
    let p = plan(&mut engine, &changed);
    assert_eq!(p.counts.change, 1);
    assert_eq!(p.campaigns[0].events[0].resets, 0);
    assert!(!p.render().contains("resets"), "{}", p.render());
    engine.apply_plan(&p).unwrap();
    let after = deploy(&engine);
    assert_eq!(content_digest(&after), before);
    assert_eq!(after.confirmed_count(), 2);
    let log = engine.log(after.id).unwrap();
    let update = log
        .iter()
        .rfind(|e| e.action == AuditAction::Updated)
        .unwrap();
    assert!(
        update.detail.get("content").is_none(),
        "{:?}",
        update.detail
    );
}

fn a_description_change_resets_only_attendees_who_stay() {
    let (mut engine, _) = answered();
    let changed = RELEASE
        .replace("attendees: [alice, bob, carol]", "attendees: [bob, carol]")
        .replace("quorum: 3", "quorum: 2")
        .replace(
            "kind: deploy",
            "kind: deploy\n    description: the new build",
        );
    let p = plan(&mut engine, &changed);
    assert_eq!(p.campaigns[0].events[0].resets, 1, "{}", p.render());
    assert!(
        p.render()
            .contains("description: (none) → the new build  (resets 1 confirmation)\n"),
        "{}",
        p.render()
    );
    engine.apply_plan(&p).unwrap();
    let after = deploy(&engine);
    assert_eq!(after.confirmed_count(), 0);
    let update = engine
        .log(after.id)
        .unwrap()
        .into_iter()
        .rfind(|e| e.action == AuditAction::Updated)
        .unwrap();
    assert_eq!(
        update.detail["content"]["reset"],
        serde_json::json!(["bob"])
    );
}

fn joining_a_campaign_changes_the_digest_and_resets_confirmations() {
    let (mut engine, _) = engine();
    let e = engine
        .schedule(t_minus::NewEvent {
            attendees: vec![agent("alice"), agent("bob")],
            ..t_minus::NewEvent::new(
                t_minus::EventKind::Deploy,
                t0() + chrono::Duration::hours(1),
            )
        })
        .unwrap();
    engine.confirm(e.id, &agent("alice")).unwrap();
    let before = content_digest(&engine.get_event(e.id).unwrap().unwrap());
    let campaign = engine.create_campaign("ship".into()).unwrap();
    engine.campaign_add_event(campaign.id, e.id).unwrap();
    let after = engine.get_event(e.id).unwrap().unwrap();
    assert_ne!(content_digest(&after), before);
    assert_eq!(after.confirmed_count(), 0);
    let linked = engine
        .log(e.id)
        .unwrap()
        .into_iter()
        .rfind(|x| x.action == AuditAction::Linked)
        .unwrap();
    assert_eq!(linked.detail["content"]["old_digest"], before.to_string());
    assert_eq!(
        linked.detail["content"]["reset"],
        serde_json::json!(["alice"])
    );
}

/// A store at a location other connections can reach, with a few entries:
/// an event scheduled, confirmed by alice, deferred by bob.
fn logged() -> (common::stores::TempStore, String, Engine, uuid::Uuid) {
    let (guard, location) = common::store();
    let clock = FixedClock::new(t0());
    let mut engine = common::open_engine(&location, &clock);
    let e = engine
        .schedule(t_minus::NewEvent {
            attendees: vec![agent("alice"), agent("bob"), agent("carol")],
            ..t_minus::NewEvent::new(
                t_minus::EventKind::Deploy,
                t0() + chrono::Duration::hours(1),
            )
        })
        .unwrap();
    engine.confirm(e.id, &agent("alice")).unwrap();
    engine
        .defer(e.id, &agent("bob"), chrono::Duration::minutes(5))
        .unwrap();
    (guard, location, engine, e.id)
}

fn chain_break(err: t_minus::TMinusError) -> (i64, String) {
    match err {
        t_minus::TMinusError::Trust(t_minus::trust::TrustError::ChainBroken {
            seq, kind, ..
        }) => (seq, kind.to_string()),
        t_minus::TMinusError::Trust(t_minus::trust::TrustError::ChainColumn {
            seq,
            column,
            ..
        }) => (seq, column.to_string()),
        other => panic!("not a chain break: {other:?}"),
    }
}

fn every_entry_is_chained_and_verify_returns_the_head() {
    let (_guard, _location, mut engine, id) = logged();
    let links = engine.log_links(id).unwrap();
    assert_eq!(links.len(), 3, "scheduled, confirmed, deferred");
    assert_eq!(links[0].prev.as_deref(), Some("0".repeat(64).as_str()));
    for pair in links.windows(2) {
        assert_eq!(
            pair[1].prev, pair[0].hash,
            "each entry links to the one before"
        );
    }
    let report = engine.verify_log(None).unwrap();
    assert_eq!(report.entries, 3);
    assert_eq!(Some(report.head.hex()), links[2].hash);

    // Later entries extend the chain; the earlier head is still in it.
    engine
        .decline(id, &agent("carol"), Some("no".into()))
        .unwrap();
    let later = engine.verify_log(Some(report.head)).unwrap();
    assert_eq!(later.entries, engine.log(id).unwrap().len() as u64);
    assert!(later.entries >= 4, "the decline was logged");
    assert_ne!(later.head, report.head);
    let stranger: t_minus::trust::ChainHash = "ab".repeat(32).parse().unwrap();
    let err = engine.verify_log(Some(stranger)).unwrap_err();
    assert!(
        matches!(
            err,
            t_minus::TMinusError::Trust(t_minus::trust::TrustError::HeadNotFound { .. })
        ),
        "{err:?}"
    );
}

fn editing_an_audit_entry_breaks_the_chain_at_that_entry() {
    let (_guard, location, engine, _) = logged();
    let seq = engine.log_links(deploy_id(&engine)).unwrap()[1].entry.seq;
    common::stores::tamper(
        &location,
        &format!("UPDATE {{audit}} SET agent = 'mallory' WHERE seq = {seq}"),
    );
    let (at, why) = chain_break(engine.verify_log(None).unwrap_err());
    assert_eq!(at, seq);
    assert!(why.contains("the entry was edited"), "{why}");
}

fn deleting_an_audit_entry_breaks_the_chain_at_the_next() {
    let (_guard, location, engine, id) = logged();
    let links = engine.log_links(id).unwrap();
    common::stores::tamper(
        &location,
        &format!("DELETE FROM {{audit}} WHERE seq = {}", links[1].entry.seq),
    );
    let (at, why) = chain_break(engine.verify_log(None).unwrap_err());
    assert_eq!(at, links[2].entry.seq);
    assert!(why.contains("removed, inserted or moved"), "{why}");
}

fn clearing_a_stored_hash_is_reported_at_that_entry() {
    let (_guard, location, engine, id) = logged();
    let seq = engine.log_links(id).unwrap()[2].entry.seq;
    common::stores::tamper(
        &location,
        &format!("UPDATE {{audit}} SET hash = NULL WHERE seq = {seq}"),
    );
    assert_eq!(
        chain_break(engine.verify_log(None).unwrap_err()),
        (seq, "hash".to_string())
    );
}

fn the_migration_chains_existing_entries_in_order() {
    let (_guard, location, engine, _) = logged();
    let head = engine.verify_log(None).unwrap().head;
    drop(engine);
    // Back to version 5: no chain columns.
    common::stores::tamper(
        &location,
        &common::stores::downgrade_sql(common::stores::current(), 5),
    );
    let engine = common::open_engine(&location, &FixedClock::new(t0()));
    // The same chain as when written, and the event's baseline after it.
    let report = engine.verify_log(Some(head)).unwrap();
    assert_eq!(report.entries, 4);
}

fn the_compact_id_migration_keeps_the_chain_and_the_answers() {
    let (_guard, location, engine, id) = logged();
    let head = engine.verify_log(None).unwrap().head;
    let before = engine.get_event(id).unwrap().unwrap();
    drop(engine);
    // Back to version 8: ids as text, hashes as hex.
    common::stores::tamper(
        &location,
        &common::stores::downgrade_sql(common::stores::current(), 8),
    );
    let mut engine = common::open_engine(&location, &FixedClock::new(t0()));
    // The same chain, and the event's baseline after it.
    let report = engine.verify_log(Some(head)).unwrap();
    assert_eq!(report.entries, 4);
    assert_eq!(engine.get_event(id).unwrap().unwrap(), before);
    engine.confirm(id, &AgentId("carol".into())).unwrap();
    assert_eq!(engine.verify_log(None).unwrap().entries, 5);
}

fn an_answer_without_a_log_entry_is_reported_at_its_attendee() {
    let (_guard, location, engine, id) = logged();
    engine.verify_log(None).unwrap();
    common::stores::tamper(
        &location,
        &format!(
            "UPDATE {{attendees}} SET status = 'confirmed' WHERE event_id = {} AND agent = 'carol'",
            common::stores::id_sql(id)
        ),
    );
    let err = engine.verify_log(None).unwrap_err();
    match err {
        t_minus::TMinusError::Trust(t_minus::trust::TrustError::StateMismatch {
            event,
            reason,
        }) => {
            assert_eq!(event, id.to_string());
            assert_eq!(
                reason,
                "answers.carol is stored as \"confirmed\" but the log says \"pending\""
            );
        }
        other => panic!("{other:?}"),
    }
}

fn deploy_id(engine: &Engine) -> uuid::Uuid {
    engine.list_events().unwrap()[0].id
}

common::store_tests!(
    every_entry_is_chained_and_verify_returns_the_head,
    editing_an_audit_entry_breaks_the_chain_at_that_entry,
    deleting_an_audit_entry_breaks_the_chain_at_the_next,
    clearing_a_stored_hash_is_reported_at_that_entry,
    the_migration_chains_existing_entries_in_order,
    the_compact_id_migration_keeps_the_chain_and_the_answers,
    an_answer_without_a_log_entry_is_reported_at_its_attendee,
    a_payload_change_resets_confirmations_in_plan_state_and_log,
    a_change_outside_the_content_keeps_confirmations,
    a_description_change_resets_only_attendees_who_stay,
    joining_a_campaign_changes_the_digest_and_resets_confirmations,
);

/// The CLI: the digest in `status EVENT` and `--json`, the plan line.
mod cli {
    use super::*;

    fn status_shows_the_short_digest_and_json_the_full_one() {
        let t = T::new();
        std::fs::write(t.dir().join("release.yaml"), RELEASE).unwrap();
        t.ok("apply release.yaml");
        let json = t.json("status release/deploy --json");
        let full = json["content_digest"].as_str().unwrap().to_string();
        let hex = full.strip_prefix("sha256:").expect("sha256: prefix");
        assert_eq!(hex.len(), 64);
        let id = json["id"].as_str().unwrap().to_string();
        let human = t.ok(&format!("status {id}"));
        assert!(
            human.contains(&format!("\n   digest:    {}", &hex[..12])),
            "{human}"
        );

        // The library's digest of the same event is the one shown.
        let engine = Engine::open(&t.db_location()).unwrap();
        let event = engine.get_event(id.parse().unwrap()).unwrap().unwrap();
        assert_eq!(content_digest(&event).to_string(), full);

        t.ok(&format!("confirm {id} alice"));
        std::fs::write(
            t.dir().join("release.yaml"),
            RELEASE.replace("version: 2.0.0", "version: 3.0.0"),
        )
        .unwrap();
        let out = t.ok("apply release.yaml");
        assert!(out.contains("(resets 1 confirmation)"), "{out}");
        let after = t.json("status release/deploy --json");
        assert_ne!(after["content_digest"], json["content_digest"]);
        assert_eq!(after["confirmed"], 0);
        assert_eq!(after["attendees"][0]["status"], "pending");
    }

    fn verify_prints_the_head_and_fails_at_a_tampered_entry() {
        let t = T::new();
        let id = t.schedule("deploy +1h --attendees alice,bob");
        t.ok(&format!("confirm {id} alice"));
        let report = t.json("verify --json");
        assert_eq!(report["intact"], true);
        assert_eq!(report["entries"], 2);
        let head = report["head"].as_str().unwrap().to_string();
        let log = t.json(&format!("log {id} --json"));
        assert_eq!(log[1]["hash"], head.as_str());
        assert_eq!(log[1]["prev"], log[0]["hash"]);
        assert!(log[1]["message"].is_null() && log[1]["signature"].is_null());
        let human = t.ok(&format!("verify --since {head}"));
        assert_eq!(
            human,
            format!(
                "The audit log is intact: 2 entries, 1 event checked, 0 signatures verified, head {head}\n"
            )
        );

        let seq = log[1]["seq"].as_i64().unwrap();
        common::stores::tamper(
            &t.db_location(),
            &format!("UPDATE {{audit}} SET detail = '{{\"by\":\"mallory\"}}' WHERE seq = {seq}"),
        );
        let stderr = t.fail("verify");
        assert!(stderr.contains("t_minus::trust::chain"), "{stderr}");
        assert!(stderr.contains(&format!("(seq {seq})")), "{stderr}");
        assert!(stderr.contains("the entry was edited"), "{stderr}");
        common::stores::tamper(
            &t.db_location(),
            &format!(
                "UPDATE {{audit}} SET detail = '{}' WHERE seq = {seq}",
                log[1]["detail"]
            ),
        );
        t.ok("verify");
        common::stores::tamper(
            &t.db_location(),
            &format!("UPDATE {{attendees}} SET status = 'declined' WHERE event_id = {} AND agent = 'bob'", common::stores::id_sql(id)),
        );
        let stderr = t.fail("verify");
        assert!(stderr.contains("t_minus::trust::state"), "{stderr}");
        assert!(
            stderr.contains(r#"answers.bob is stored as "declined" but the log says "pending""#),
            "{stderr}"
        );
        let bad = t.fail("verify --since nothex");
        assert!(bad.contains("64 hex digits"), "{bad}");
    }

    cli_support::store_tests!(
        status_shows_the_short_digest_and_json_the_full_one,
        verify_prints_the_head_and_fails_at_a_tampered_entry,
    );
}
