//! The log is the source of truth: every entry that creates or changes an
//! event or campaign records what it set, `verify` replays the log into the
//! record of every event and campaign and compares every stored field with
//! it (plain, scoped to an event or campaign, and `--since`), and an older
//! store gets a baseline entry per event and campaign when it is migrated.
//!
//! Every test runs on SQLite and on PostgreSQL; rows are edited with SQL as
//! a store writer would.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use t_minus::plan::PlanOptions;
use t_minus::trust::Answer;
use t_minus::{AgentId, AuditAction, Engine, EventState, FixedClock, LogVerification};
use uuid::Uuid;

use crate::cli_support::{self, T};
use crate::common::stores::{id_sql, tamper};
use crate::common::{self, desired, t0};
use crate::trust::keygen;

fn agent(name: &str) -> AgentId {
    AgentId(name.into())
}

/// Keys for alice and bob, in a temp dir.
struct Keys {
    _dir: tempfile::TempDir,
    alice: (PathBuf, String),
    bob: (PathBuf, String),
}

impl Keys {
    fn new() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        let alice = keygen(dir.path(), "alice", "ed25519");
        let bob = keygen(dir.path(), "bob", "ed25519");
        Keys {
            _dir: dir,
            alice,
            bob,
        }
    }
}

/// A signed answer of `who` to `id`, made with the key at `with`, accepted.
fn answer_signed(engine: &mut Engine, id: Uuid, who: &str, answer: Answer, with: &Path) {
    let message = engine.answer_message(id, &agent(who), answer).unwrap();
    let bytes = message.to_bytes();
    let sig = t_minus::trust::sign_with_key_file(with, &bytes).unwrap();
    engine.respond_signed(&bytes, &sig.to_armored()).unwrap();
}

/// The fields `report` lists for `id`, as `(field, stored, logged)`.
fn fields(report: &LogVerification, id: Uuid) -> Vec<(String, Value, Value)> {
    report
        .mismatches
        .iter()
        .filter(|m| m.id == id)
        .map(|m| (m.field.clone(), m.stored.clone(), m.logged.clone()))
        .collect()
}

/// The names of the fields `report` lists for `id`.
fn names(report: &LogVerification, id: Uuid) -> Vec<String> {
    fields(report, id).into_iter().map(|f| f.0).collect()
}

/// The campaign `release` of one event `deploy` (alice and bob, quorum
/// all), whose answers alice and bob must sign.
fn signed_manifest(keys: &Keys) -> String {
    format!(
        r#"
campaign: release
signers:
  alice: "{}"
  bob: "{}"
events:
  deploy:
    kind: deploy
    at: +1h
    quorum: all
    attendees: [alice, bob]
    payload: {{ version: "2.0.0" }}
"#,
        keys.alice.1, keys.bob.1
    )
}

/// The attack of a store writer on a signed veto: bob declined (signed),
/// so the event missed; two UPDATEs set it back to `pending` with quorum 1
/// and every attendee `pending`. `verify` (whole, of the event, and since
/// the head before) names the state, quorum and bob's answer, and still
/// does after alice's signed confirm fired the event on the edited rows.
fn a_missed_event_set_back_to_pending_overturning_a_signed_veto_is_reported() {
    let keys = Keys::new();
    let (_guard, location) = common::store();
    let clock = FixedClock::new(t0());
    let mut engine = common::open_engine(&location, &clock);
    engine
        .apply_manifests(&desired(&signed_manifest(&keys)), &PlanOptions::default())
        .unwrap();
    let id = engine.resolve_event("release/deploy").unwrap();
    answer_signed(
        &mut engine,
        id,
        "bob",
        Answer::Decline { reason: None },
        &keys.bob.0,
    );
    assert_eq!(
        engine.get_event(id).unwrap().unwrap().state,
        EventState::Missed
    );
    let before = engine.verify_log(None).unwrap();
    assert!(before.mismatches.is_empty(), "{:?}", before.mismatches);
    let head = before.head;

    tamper(
        &location,
        &format!(
            "UPDATE {{events}} SET state = 'pending', quorum = 1, quorum_spec = '1', \
             finished_ms = NULL WHERE id = {id}; \
             UPDATE {{attendees}} SET status = 'pending', open = TRUE WHERE event_id = {id};",
            id = id_sql(id)
        ),
    );
    let expected = |report: &LogVerification| {
        let f = fields(report, id);
        assert!(
            f.contains(&("state".into(), json!("pending"), json!("missed"))),
            "{f:?}"
        );
        assert!(f.contains(&("quorum".into(), json!(1), json!(2))), "{f:?}");
        assert!(
            f.contains(&("answers.bob".into(), json!("pending"), json!("declined"))),
            "{f:?}"
        );
        assert!(
            f.contains(&("answers.alice".into(), json!("pending"), json!("missed"))),
            "{f:?}"
        );
    };
    expected(&engine.verify_report(None, None).unwrap());
    expected(&engine.verify_report(None, Some(&[id])).unwrap());
    expected(&engine.verify_report(Some(head), None).unwrap());
    let err = engine.verify_log(Some(head)).unwrap_err();
    assert!(
        matches!(
            &err,
            t_minus::TMinusError::Trust(t_minus::trust::TrustError::StateMismatch { event, .. })
                if *event == id.to_string()
        ),
        "{err:?}"
    );

    // The edited rows let alice's signed confirm fire the event; the log
    // still says quorum 2 and bob declined.
    answer_signed(&mut engine, id, "alice", Answer::Confirm, &keys.alice.0);
    assert_eq!(
        engine.get_event(id).unwrap().unwrap().state,
        EventState::Fired
    );
    for report in [
        engine.verify_report(None, None).unwrap(),
        engine.verify_report(None, Some(&[id])).unwrap(),
        engine.verify_report(Some(head), None).unwrap(),
    ] {
        let f = fields(&report, id);
        assert!(f.contains(&("quorum".into(), json!(1), json!(2))), "{f:?}");
        assert!(
            f.contains(&("answers.bob".into(), json!("pending"), json!("declined"))),
            "{f:?}"
        );
        assert_eq!(report.signatures, 2, "the signatures themselves are valid");
    }
}

/// The campaign `release`: `build` (ci), `deploy` needing it (alice, bob,
/// carol, quorum 2, a payload, a `fired` exec hook), and the campaign's
/// description.
const RELEASE: &str = r#"
campaign: release
description: Ship it
events:
  build:
    kind: checkpoint
    at: +30m
    attendees: [ci]
  deploy:
    kind: deploy
    description: to production
    needs: [build]
    at: +1h
    quorum: 2
    attendees: [alice, bob, carol]
    payload: { version: 2.0.0 }
    notify:
      - on: [fired]
        exec: [/bin/true, deploy]
"#;

/// RELEASE applied; ci confirmed (build fired, deploy open), alice
/// confirmed and bob declined deploy.
fn release() -> (common::stores::TempStore, String, Engine, Uuid, Uuid) {
    let (guard, location) = common::store();
    let clock = FixedClock::new(t0());
    let mut engine = common::open_engine(&location, &clock);
    engine
        .apply_manifests(&desired(RELEASE), &PlanOptions::default())
        .unwrap();
    let build = engine.resolve_event("release/build").unwrap();
    let deploy = engine.resolve_event("release/deploy").unwrap();
    engine.confirm(build, &agent("ci")).unwrap();
    engine.confirm(deploy, &agent("alice")).unwrap();
    engine.decline(deploy, &agent("bob"), None).unwrap();
    let report = engine.verify_log(None).unwrap();
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
    (guard, location, engine, build, deploy)
}

/// The payload of a fired event swapped by an UPDATE is reported as its
/// digest, stored and logged.
fn a_swapped_payload_of_a_fired_event_is_reported() {
    let (_guard, location, mut engine, _, deploy) = release();
    engine.confirm(deploy, &agent("carol")).unwrap();
    assert_eq!(
        engine.get_event(deploy).unwrap().unwrap().state,
        EventState::Fired
    );
    let logged = engine.verify_log(None).unwrap();
    assert!(logged.mismatches.is_empty(), "{:?}", logged.mismatches);
    tamper(
        &location,
        &format!(
            "UPDATE {{events}} SET payload = '{{\"version\":\"6.6.6\"}}' WHERE id = {}",
            id_sql(deploy)
        ),
    );
    for report in [
        engine.verify_report(None, None).unwrap(),
        engine.verify_report(None, Some(&[deploy])).unwrap(),
        engine.verify_report(Some(logged.head), None).unwrap(),
    ] {
        let f = fields(&report, deploy);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].0, "payload");
        let digest = |v: &Value| t_minus::trust::record::json_digest(v);
        assert_eq!(f[0].1, json!(digest(&json!({"version": "6.6.6"}))));
        assert_eq!(f[0].2, json!(digest(&json!({"version": "2.0.0"}))));
    }
    assert!(engine.verify_log(None).is_err());
}

/// One UPDATE (or DELETE) per class of stored field, each on a fresh store:
/// `verify` names that field of that event or campaign.
fn every_class_of_stored_field_edited_is_reported() {
    let cases: &[(&str, &str, &str)] = &[
        // (what is edited, the SQL, the field reported)
        (
            "deploy",
            "UPDATE {events} SET quorum = 1 WHERE id = DEPLOY",
            "quorum",
        ),
        (
            "deploy",
            "UPDATE {events} SET quorum_spec = 'all' WHERE id = DEPLOY",
            "quorum_spec",
        ),
        (
            "deploy",
            "UPDATE {events} SET fire_ms = fire_ms + 3600000 WHERE id = DEPLOY",
            "fire_time",
        ),
        (
            "deploy",
            "UPDATE {events} SET offset_ms = offset_ms + 60000 WHERE id = DEPLOY",
            "relative_at",
        ),
        (
            "deploy",
            "UPDATE {attendees} SET status = 'confirmed' WHERE event_id = DEPLOY AND agent = 'bob'",
            "answers.bob",
        ),
        (
            "deploy",
            "UPDATE {attendees} SET agent = 'mallory' WHERE event_id = DEPLOY AND agent = 'carol'",
            "attendees",
        ),
        (
            "deploy",
            "UPDATE {events} SET description = 'to staging' WHERE id = DEPLOY",
            "description",
        ),
        (
            "deploy",
            "UPDATE {events} SET kind = 'meeting' WHERE id = DEPLOY",
            "kind",
        ),
        (
            "deploy",
            "DELETE FROM {edges} WHERE to_id = DEPLOY",
            "needs",
        ),
        (
            "deploy",
            "UPDATE {notify_rules} SET rules = replace(rules, 'deploy', 'rm -rf') WHERE event_id = DEPLOY",
            "notify",
        ),
        (
            "deploy",
            "UPDATE {events} SET groups = '[{\"name\":\"ops\",\"quorum\":\"1\",\"members\":[\"alice\"]}]' WHERE id = DEPLOY",
            "groups",
        ),
        (
            "deploy",
            "UPDATE {events} SET defer_ms = 600000 WHERE id = DEPLOY",
            "deferred",
        ),
        (
            "build",
            "UPDATE {events} SET state = 'pending', finished_ms = NULL WHERE id = BUILD",
            "state",
        ),
        (
            "campaign",
            "UPDATE {campaigns} SET description = 'Ship anything' WHERE id = CAMPAIGN",
            "description",
        ),
        (
            "campaign",
            "UPDATE {campaigns} SET managed = FALSE WHERE id = CAMPAIGN",
            "managed",
        ),
        ("deploy", "DELETE FROM {events} WHERE id = DEPLOY", "row"),
    ];
    for (subject, sql, field) in cases {
        let (_guard, location, engine, build, deploy) = release();
        let campaign = engine.get_event(deploy).unwrap().unwrap().campaign.unwrap();
        let sql = sql
            .replace("DEPLOY", &id_sql(deploy))
            .replace("BUILD", &id_sql(build))
            .replace("CAMPAIGN", &id_sql(campaign));
        tamper(&location, &sql);
        let id = match *subject {
            "deploy" => deploy,
            "build" => build,
            _ => campaign,
        };
        let report = engine.verify_report(None, None).unwrap();
        let found = names(&report, id);
        assert!(
            found.iter().any(|f| f == field),
            "{sql}: expected {field}, found {found:?}"
        );
        // Scoped to the event (or the campaign with its events) alike.
        let scope = match *subject {
            "campaign" => vec![campaign, build, deploy],
            _ => vec![id],
        };
        let scoped = engine.verify_report(None, Some(&scope)).unwrap();
        assert!(
            names(&scoped, id).iter().any(|f| f == field),
            "{sql} (scoped): {:?}",
            scoped.mismatches
        );
    }
}

/// The key set in force for a campaign, swapped by a store writer for
/// another stored set (bob's key alone), is reported as the campaign's
/// `signers`.
fn a_swapped_key_set_is_reported_at_its_campaign() {
    let keys = Keys::new();
    let (_guard, location) = common::store();
    let clock = FixedClock::new(t0());
    let mut engine = common::open_engine(&location, &clock);
    engine
        .apply_manifests(&desired(&signed_manifest(&keys)), &PlanOptions::default())
        .unwrap();
    let id = engine.resolve_event("release/deploy").unwrap();
    let campaign = engine.get_event(id).unwrap().unwrap().campaign.unwrap();
    let logged = engine.signers_of(id).unwrap().unwrap().digest();
    // A second campaign puts another set in the store.
    let other = signed_manifest(&keys)
        .replace("campaign: release", "campaign: other")
        .replace(&format!("  alice: \"{}\"\n", keys.alice.1), "")
        .replace("[alice, bob]", "[bob]");
    engine
        .apply_manifests(&desired(&other), &PlanOptions::default())
        .unwrap_or_else(|e| panic!("{e:?}"));
    let other_id = engine.resolve_event("other/deploy").unwrap();
    let swapped = engine.signers_of(other_id).unwrap().unwrap().digest();
    assert_ne!(logged, swapped);
    tamper(
        &location,
        &format!(
            "UPDATE {{scope_signers}} SET digest = '{swapped}' WHERE scope_id = {}",
            id_sql(campaign)
        ),
    );
    let report = engine.verify_report(None, None).unwrap();
    assert_eq!(
        fields(&report, campaign),
        vec![("signers".to_string(), json!(swapped), json!(logged))]
    );
}

/// An event that needs `deploy`, added to RELEASE.
const SMOKE: &str =
    "  smoke:\n    kind: check\n    needs: [deploy]\n    at: +10m\n    attendees: [qa]\n";

/// Every manifest and campaign operation records what it set: after
/// updates (attendees, payload: a reset), a new need, removing an event,
/// removing a campaign, moving a standalone event into a campaign, rules
/// changed, mark-missed and ticks, the log explains every row.
fn every_operation_leaves_every_row_explained() {
    let (_guard, _location, mut engine, _, deploy) = release();
    let changed = RELEASE
        .replace("version: 2.0.0", "version: 2.0.1")
        .replace("[alice, bob, carol]", "[alice, bob, dave]")
        .replace("quorum: 2", "quorum: 1")
        + SMOKE;
    let without_smoke = changed.replace(SMOKE, "");
    engine
        .apply_manifests(&desired(&changed), &PlanOptions::default())
        .unwrap();
    let intact = |engine: &Engine| {
        let report = engine.verify_log(None).unwrap();
        assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
    };
    intact(&engine);
    engine
        .defer(deploy, &agent("dave"), chrono::Duration::minutes(5))
        .unwrap();
    intact(&engine);
    engine
        .set_notify_rules(deploy, &[])
        .expect("rules replaced");
    intact(&engine);
    let standalone = engine
        .schedule(t_minus::NewEvent {
            attendees: vec![agent("erin")],
            ..t_minus::NewEvent::new(
                t_minus::EventKind::Meeting,
                t0() + chrono::Duration::hours(2),
            )
        })
        .unwrap();
    engine
        .confirm(standalone.id, &agent("erin"))
        .unwrap_or_else(|e| panic!("{e:?}"));
    let adhoc = engine.create_campaign("adhoc".into()).unwrap();
    let late = engine
        .schedule(t_minus::NewEvent {
            attendees: vec![agent("fred"), agent("gina")],
            ..t_minus::NewEvent::new(
                t_minus::EventKind::Meeting,
                t0() + chrono::Duration::hours(3),
            )
        })
        .unwrap();
    engine.confirm(late.id, &agent("fred")).unwrap();
    engine.campaign_add_event(adhoc.id, late.id).unwrap();
    intact(&engine);
    engine.mark_missed(late.id).unwrap();
    intact(&engine);
    // `smoke` removed from the manifest (an unfinished event: its row goes).
    engine
        .apply_manifests(&desired(&without_smoke), &PlanOptions::default())
        .unwrap();
    intact(&engine);
    engine.tick(t0() + chrono::Duration::hours(5)).unwrap();
    intact(&engine);
    // The whole `release` campaign pruned: its rows go with it.
    let options = PlanOptions {
        prune: true,
        ..PlanOptions::default()
    };
    engine
        .apply_manifests(
            &desired("campaign: other\nevents:\n  x:\n    at: +1h\n"),
            &options,
        )
        .unwrap();
    assert!(engine.get_event(deploy).unwrap().is_none(), "pruned");
    intact(&engine);
}

/// A store from before the log recorded rows (schema 8, downgraded) is
/// migrated: one baseline entry per event and campaign, chained after the
/// old head (which stays in the chain), the log then explains every row,
/// and an edit after the migration is reported.
fn an_older_store_gets_a_baseline_and_edits_after_it_are_reported() {
    let (_guard, location, engine, build, deploy) = release();
    let old = engine.verify_log(None).unwrap();
    drop(engine);
    tamper(
        &location,
        &common::stores::downgrade_sql(common::stores::current(), 8),
    );
    let engine = common::open_engine(&location, &FixedClock::new(t0()));
    let report = engine.verify_log(Some(old.head)).unwrap();
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
    // 2 events and 1 campaign: three baseline entries after the old head.
    assert_eq!(report.entries, old.entries + 3);
    let links = engine.log_links(deploy).unwrap();
    let last = &links.last().unwrap().entry;
    assert_eq!(last.action, AuditAction::Baseline);
    assert_eq!(last.detail["record"]["answers"]["bob"], "declined");
    assert_eq!(last.detail["record"]["quorum"], 2);

    tamper(
        &location,
        &format!(
            "UPDATE {{events}} SET state = 'pending', finished_ms = NULL WHERE id = {}",
            id_sql(build)
        ),
    );
    let report = engine.verify_report(Some(old.head), None).unwrap();
    assert_eq!(
        fields(&report, build),
        vec![
            (
                "finished_at".to_string(),
                Value::Null,
                json!("2025-06-06T14:50:00.000Z")
            ),
            ("state".to_string(), json!("pending"), json!("fired")),
        ]
    );
}

/// The campaign `guarded` (t0 is a Friday, 14:50 UTC): `notes` under lazy
/// consensus with a rule on `fired`; `review` under four eyes (requested by
/// `bot`) with an escalation step after 30 minutes; `deploy` inside a
/// window, which `oncall` may fire by breaking the glass; `ship`, which
/// fires early only inside Monday's window.
const GUARDED: &str = r#"
campaign: guarded
requested_by: bot
breakglass: [oncall]
events:
  notes:
    at: +2h
    fire: lazy
    attendees: [docs, pm, qa]
    notify:
      - on: [fired]
        webhook: https://hooks.example.com/notes
  review:
    at: +3h
    four_eyes: true
    quorum: 2
    attendees: [bot, alice, bob, carol]
    escalate:
      - after: 30m
        add: [dave]
  deploy:
    at: +4h
    window: Mon-Fri 09:00-17:00 UTC
    attendees: [ops1, ops2]
  ship:
    at: +4d
    window: Mon 09:00-10:00 UTC
    attendees: [qa1, qa2]
"#;

/// Every gate together: four eyes, lazy consensus (and a change out of it
/// that resets the answers), a time window, an escalation step, an answer
/// given under a delegation, a rules change that resets confirmations, and
/// a break-glass. After each step the log explains every row; then an SQL
/// edit of the `gates` and `escalation` columns is reported, field by
/// field.
fn every_gate_leaves_every_row_explained_and_their_columns_edited_are_reported() {
    let (_guard, location) = common::store();
    let clock = FixedClock::new(t0());
    let mut engine = common::open_engine(&location, &clock);
    let intact = |engine: &Engine| {
        let report = engine.verify_log(None).unwrap();
        assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
        report
    };
    engine
        .apply_manifests(&desired(GUARDED), &PlanOptions::default())
        .unwrap();
    let notes = engine.resolve_event("guarded/notes").unwrap();
    let review = engine.resolve_event("guarded/review").unwrap();
    let deploy = engine.resolve_event("guarded/deploy").unwrap();
    intact(&engine);

    // Lazy: docs agrees; the fire policy changed to early resets it.
    engine.confirm(notes, &agent("docs")).unwrap();
    intact(&engine);
    engine
        .apply_manifests(
            &desired(&GUARDED.replace("fire: lazy", "fire: early")),
            &PlanOptions::default(),
        )
        .unwrap();
    let reset = engine.log(notes).unwrap();
    let updated = reset.last().unwrap();
    assert_eq!(updated.detail["policy_reset"], json!(["docs"]));
    assert_eq!(
        engine.get_event(notes).unwrap().unwrap().attendees[0].1,
        t_minus::ResponseStatus::Pending
    );
    intact(&engine);
    // The rule on `fired` removed: a content change that resets pm's
    // confirmation.
    engine.confirm(notes, &agent("pm")).unwrap();
    engine.set_notify_rules(notes, &[]).unwrap();
    assert!(engine.log(notes).unwrap().last().unwrap().detail["content"].is_object());
    intact(&engine);

    // Four eyes: the requester's own answer is refused.
    assert!(engine.confirm(review, &agent("bot")).is_err());
    // The escalation step adds dave after 30 minutes.
    clock.set(t0() + chrono::Duration::minutes(31));
    engine.tick(t0() + chrono::Duration::minutes(31)).unwrap();
    let escalated = engine.get_event(review).unwrap().unwrap();
    assert_eq!(escalated.escalation.applied, 1);
    assert!(escalated
        .attendees
        .iter()
        .any(|(a, _)| a.as_str() == "dave"));
    intact(&engine);
    // bob lets erin answer for him; alice and erin (for bob) make quorum.
    engine
        .delegate(&agent("bob"), &agent("erin"), None, Some("guarded"))
        .unwrap();
    engine.confirm(review, &agent("alice")).unwrap();
    let fired = engine
        .respond_for(
            review,
            &agent("erin"),
            &agent("bob"),
            t_minus::Response::Confirm,
        )
        .unwrap();
    assert_eq!(fired.state, EventState::Fired);
    intact(&engine);

    // The window: one answer of two, then the glass broken.
    engine.confirm(deploy, &agent("ops1")).unwrap();
    intact(&engine);
    let broken = engine
        .break_glass(deploy, &agent("oncall"), "hotfix")
        .unwrap();
    assert_eq!(broken.state, EventState::Fired);
    assert!(broken.gates.broken.is_some());
    let report = intact(&engine);
    assert_eq!(report.breakglass, 1);

    // Quorum outside the window: the row is due at Monday's opening, and
    // fires then.
    let ship = engine.resolve_event("guarded/ship").unwrap();
    engine.confirm(ship, &agent("qa1")).unwrap();
    engine.confirm(ship, &agent("qa2")).unwrap();
    intact(&engine);
    let monday = chrono::DateTime::parse_from_rfc3339("2025-06-09T09:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    clock.set(monday);
    engine.tick(monday).unwrap();
    assert_eq!(
        engine.get_event(ship).unwrap().unwrap().state,
        EventState::Fired
    );
    intact(&engine);

    // The columns edited: the break-glass erased (its list and window
    // kept), the escalation step and the review's gates (four eyes, the
    // campaign's break-glass list) erased.
    let mut unbroken = broken.gates.clone();
    unbroken.broken = None;
    tamper(
        &location,
        &format!(
            "UPDATE {{events}} SET gates = '{gates}' WHERE id = {deploy}; \
             UPDATE {{events}} SET escalation = NULL, gates = NULL WHERE id = {review};",
            gates = serde_json::to_string(&unbroken).unwrap(),
            deploy = id_sql(deploy),
            review = id_sql(review),
        ),
    );
    let report = engine.verify_report(None, None).unwrap();
    assert_eq!(names(&report, deploy), ["gates.broken"]);
    assert_eq!(
        names(&report, review),
        [
            "escalation.applied",
            "escalation.applied_at",
            "escalation.steps",
            "gates.breakglass",
            "gates.four_eyes",
        ]
    );
    let f = fields(&report, deploy);
    assert_eq!(f[0].1, Value::Null);
    assert_eq!(f[0].2["by"], json!("oncall"));
    assert!(engine.verify_log(None).is_err());
}

/// The delegations and tokens tables are replayed from their entries like
/// events: a release store with a delegation for the campaign (until a
/// time), one everywhere (revoked), a token and a revoked token, all
/// explained; then each edited column is named with the delegation or
/// token, a forged row is `row` present, and a deleted one `row` absent.
fn delegation_and_token_rows_edited_are_reported() {
    let (_guard, location, mut engine, _, deploy) = release();
    let until = t0() + chrono::Duration::days(1);
    let scoped = engine
        .delegate(&agent("alice"), &agent("bob"), Some(until), Some("release"))
        .unwrap();
    let everywhere = engine
        .delegate(&agent("carol"), &agent("dave"), None, None)
        .unwrap();
    engine.undelegate(&everywhere.id.to_string()).unwrap();
    let kept = engine
        .create_token(&agent("alice"), t_minus::token::Role::Agent, None)
        .unwrap()
        .token;
    let revoked = engine
        .create_token(&agent("ops"), t_minus::token::Role::Operator, None)
        .unwrap()
        .token;
    engine.revoke_token(&revoked.id.to_string()).unwrap();
    let before = engine.verify_log(None).unwrap();
    assert!(before.mismatches.is_empty(), "{:?}", before.mismatches);

    let forged = Uuid::new_v4();
    tamper(
        &location,
        &format!(
            "UPDATE {{delegations}} SET to_agent = 'mallory', until_ms = NULL, \
             campaign_id = NULL WHERE id = {scoped}; \
             UPDATE {{delegations}} SET revoked_ms = NULL, message = 'x', signature = 'y' WHERE id = {everywhere}; \
             INSERT INTO {{delegations}} (id, from_agent, to_agent, created_ms) \
             VALUES ({forged}, 'alice', 'mallory', 0); \
             UPDATE {{tokens}} SET role = 'operator', hash = 'f00d' WHERE id = {kept}; \
             DELETE FROM {{tokens}} WHERE id = {revoked};",
            scoped = id_sql(scoped.id),
            everywhere = id_sql(everywhere.id),
            forged = id_sql(forged),
            kept = id_sql(kept.id),
            revoked = id_sql(revoked.id),
        ),
    );
    let time = |t: chrono::DateTime<chrono::Utc>| {
        json!(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    };
    let expected = |report: &LogVerification| {
        let subject = |id: Uuid| {
            report
                .mismatches
                .iter()
                .filter(|m| m.id == id)
                .map(|m| m.subject)
                .collect::<Vec<_>>()
        };
        let f = fields(report, scoped.id);
        assert!(
            f.contains(&("to".into(), json!("mallory"), json!("bob"))),
            "{f:?}"
        );
        assert!(
            f.contains(&("until".into(), Value::Null, time(until))),
            "{f:?}"
        );
        assert!(
            f.contains(&(
                "campaign".into(),
                Value::Null,
                json!(scoped.campaign.unwrap().to_string())
            )),
            "{f:?}"
        );
        assert_eq!(f.len(), 3, "{f:?}");
        assert_eq!(subject(scoped.id), ["delegation"; 3]);
        let f = fields(report, everywhere.id);
        assert_eq!(
            names(report, everywhere.id),
            ["message", "revoked_at", "signature"],
            "{f:?}"
        );
        assert_eq!(f[1].1, Value::Null);
        assert_eq!(f[1].2, time(t0()));
        assert_eq!(
            fields(report, forged),
            [("row".into(), json!("present"), json!("absent"))]
        );
        assert_eq!(names(report, kept.id), ["hash", "role"]);
        assert_eq!(subject(kept.id), ["token"; 2]);
        assert!(fields(report, kept.id).contains(&(
            "role".into(),
            json!("operator"),
            json!("agent")
        )));
        assert_eq!(
            fields(report, revoked.id),
            [("row".into(), json!("absent"), json!("present"))]
        );
        assert!(fields(report, deploy).is_empty());
    };
    expected(&engine.verify_report(None, None).unwrap());
    expected(&engine.verify_report(Some(before.head), None).unwrap());
    let err = engine.verify_log(None).unwrap_err();
    assert!(
        matches!(
            &err,
            t_minus::TMinusError::Trust(t_minus::trust::TrustError::StateMismatch { event, .. })
                if event.starts_with("delegation ")
        ),
        "{err:?}"
    );
    // A verify scoped to an event or campaign compares only those.
    let scoped_report = engine.verify_report(None, Some(&[deploy])).unwrap();
    assert!(
        scoped_report.mismatches.is_empty(),
        "{:?}",
        scoped_report.mismatches
    );
}

common::store_tests!(
    a_missed_event_set_back_to_pending_overturning_a_signed_veto_is_reported,
    a_swapped_payload_of_a_fired_event_is_reported,
    every_class_of_stored_field_edited_is_reported,
    a_swapped_key_set_is_reported_at_its_campaign,
    every_operation_leaves_every_row_explained,
    an_older_store_gets_a_baseline_and_edits_after_it_are_reported,
    every_gate_leaves_every_row_explained_and_their_columns_edited_are_reported,
    delegation_and_token_rows_edited_are_reported,
);

/// `verify` in the CLI: each field that disagrees with the stored and the
/// logged value, on stderr in text and in `--json`'s `mismatches`, exit 1;
/// `verify EVENT` and `verify CAMPAIGN` alike.
mod cli {
    use super::*;

    fn verify_lists_every_field_that_disagrees_and_exits_1() {
        let t = T::new();
        std::fs::write(t.dir().join("release.yaml"), RELEASE).unwrap();
        t.ok("apply release.yaml");
        let deploy = t.json("status release/deploy --json")["id"]
            .as_str()
            .unwrap()
            .to_string();
        t.ok("confirm release/deploy alice");
        let intact = t.json("verify --json");
        assert_eq!(intact["intact"], true);
        assert_eq!(intact["mismatches"], json!([]));
        common::stores::tamper(
            &t.db_location(),
            &format!(
                "UPDATE {{events}} SET quorum = 1 WHERE id = {}; \
                 UPDATE {{campaigns}} SET description = 'x'",
                id_sql(&deploy)
            ),
        );
        let out = t.run("verify --json");
        assert_eq!(out.code, 1, "{out:?}");
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["intact"], false);
        let m = v["mismatches"].as_array().unwrap();
        assert!(
            m.contains(&json!({
                "subject": "event", "id": deploy, "field": "quorum", "stored": 1, "logged": 2
            })),
            "{m:?}"
        );
        assert!(
            m.iter()
                .any(|m| m["subject"] == "campaign" && m["field"] == "description"),
            "{m:?}"
        );
        let stderr = t.fail("verify");
        assert!(
            stderr.contains(&format!(
                "event {deploy}: quorum is stored as 1 but the log says 2"
            )),
            "{stderr}"
        );
        assert!(stderr.contains("t_minus::trust::state"), "{stderr}");
        let stderr = t.fail("verify release/deploy");
        assert!(stderr.contains("quorum is stored as 1"), "{stderr}");
        let stderr = t.fail("verify release");
        assert!(
            stderr.contains("description is stored as \"x\""),
            "{stderr}"
        );
        let head = v["head"].as_str().unwrap();
        let stderr = t.fail(&format!("verify --since {head}"));
        assert!(stderr.contains("quorum is stored as 1"), "{stderr}");
    }

    /// bob lets erin answer for him in campaign `a` only, and erin does, in
    /// `a`. A store writer then rewrites the delegation's entry to name
    /// campaign `b` and chains the log again: every hash holds, but the
    /// answer on `a/review` is outside the campaign the delegation was
    /// limited to, and `verify` says so (exit 1).
    fn a_delegated_answer_outside_the_delegations_campaign_is_reported() {
        use t_minus::trust::chain::{entry_hash, ChainHash};
        let t = T::new();
        for c in ["a", "b"] {
            std::fs::write(
                t.dir().join(format!("{c}.yaml")),
                format!(
                    "campaign: {c}\nevents:\n  review:\n    at: +1h\n    attendees: [bob, carol]\n"
                ),
            )
            .unwrap();
            t.ok(&format!("apply {c}.yaml"));
        }
        t.ok("delegate bob erin --campaign a");
        t.ok("confirm a/review erin --for bob");
        assert_eq!(t.json("verify --json")["intact"], true);
        // Answering for bob in `b` is refused by the engine.
        let refused = t.fail("confirm b/review erin --for bob");
        assert!(refused.contains("covers campaign `a` only"), "{refused}");

        let b = t.json("campaign show b --json")["id"]
            .as_str()
            .unwrap()
            .to_string();
        let engine = t_minus::Engine::open(&t.db_location()).unwrap();
        let links = {
            let mut tx = engine.store().read().unwrap();
            tx.audit_links(0, 100_000).unwrap()
        };
        drop(engine);
        let quoted = |text: &str| format!("'{}'", text.replace('\'', "''"));
        let mut prev = ChainHash::GENESIS;
        let mut sql = String::new();
        let mut rewritten = false;
        for mut link in links {
            if link.entry.action == AuditAction::Delegated {
                link.entry.detail["campaign"] = json!("b");
                link.entry.detail["campaign_id"] = json!(b);
                rewritten = true;
                sql.push_str(&format!(
                    "UPDATE {{audit}} SET detail = {} WHERE seq = {};\n",
                    quoted(&link.entry.detail.to_string()),
                    link.entry.seq
                ));
            }
            let hash = entry_hash(
                &prev,
                &link.entry,
                link.message.as_deref().map(str::as_bytes),
                link.signature.as_deref(),
            );
            sql.push_str(&format!(
                "UPDATE {{audit}} SET prev = {}, hash = {} WHERE seq = {};\n",
                common::stores::hash_sql(&prev.hex()),
                common::stores::hash_sql(&hash.hex()),
                link.entry.seq
            ));
            prev = hash;
        }
        assert!(rewritten);
        common::stores::tamper(&t.db_location(), &sql);
        let out = t.run("verify --json");
        assert_eq!(out.code, 1, "{out:?}");
        let error: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(error["error"]["code"], "t_minus::trust::state", "{error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("erin answered for bob under delegation")
                && message.contains("which covers campaign `b` only, and this event is not in it"),
            "{message}"
        );
        assert!(t.fail("verify").contains("t_minus::trust::state"));
        let out = t.run("verify a/review");
        assert_eq!(out.code, 1, "{out:?}");
        // `verify b` does not look at a's events.
        let out = t.run("verify b");
        assert_eq!(out.code, 0, "{out:?}");
    }

    /// A delegation row edited with SQL: `verify` names the delegation and
    /// the field and exits 1.
    fn verify_names_an_edited_delegation() {
        let t = T::new();
        t.ok("delegate alice bob --until +8h");
        let id = t.json("delegations --json")[0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(t.json("verify --json")["intact"], true);
        common::stores::tamper(
            &t.db_location(),
            &format!(
                "UPDATE {{delegations}} SET to_agent = 'mallory' WHERE id = {}",
                id_sql(&id)
            ),
        );
        let stderr = t.fail("verify");
        assert!(
            stderr.contains(&format!(
                "delegation {id}: to is stored as \"mallory\" but the log says \"bob\""
            )),
            "{stderr}"
        );
        let out = t.run("verify --json");
        assert_eq!(out.code, 1, "{out:?}");
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(
            v["mismatches"],
            json!([{"subject": "delegation", "id": id, "field": "to",
                    "stored": "mallory", "logged": "bob"}])
        );
    }

    /// `verify` writes each stored event's record text member by member
    /// instead of building the record: for events with groups, four eyes,
    /// escalation, a window, break-glass, notification rules, a
    /// standalone event, answers, a deferral and a time advanced past
    /// escalation steps, that text is the built record's.
    fn stored_record_texts_are_the_built_records() {
        let mut t = T::new();
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        for example in ["guarded-release.yaml", "two-key-deploy.yaml"] {
            std::fs::copy(examples.join(example), t.dir().join(example)).unwrap();
            t.ok(&format!("apply {example}"));
        }
        t.ok("schedule review +2h --t-minus 5m --quorum 2 --attendees alice,bob,carol --notify-exec /bin/true");
        t.ok("confirm two-key-deploy/build ci-bot");
        t.ok("defer two-key-deploy/deploy ops-1 5m");
        t.set_now("2025-06-06T16:00:00Z");
        t.ok("tick");
        let engine = Engine::open(&t.db_location()).unwrap();
        let stored = {
            let mut tx = engine.store().read().unwrap();
            tx.stored_state(None).unwrap()
        };
        assert!(stored.events.len() >= 6, "{}", stored.events.len());
        for event in &stored.events {
            assert_eq!(
                event.record_text(),
                t_minus::trust::record::record_text(&event.record()),
                "{}",
                event.event.id
            );
        }
        drop(engine);
        assert_eq!(t.json("verify --json")["intact"], true);
    }

    cli_support::store_tests!(
        verify_lists_every_field_that_disagrees_and_exits_1,
        a_delegated_answer_outside_the_delegations_campaign_is_reported,
        verify_names_an_edited_delegation,
        stored_record_texts_are_the_built_records,
    );
}
