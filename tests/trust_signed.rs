//! Signed answers: signers declared in manifests and on `schedule`, every
//! refusal of `respond_signed`, the log and `verify` checking signatures
//! against the keys in force, `attest`, and the CLI with keys made by
//! `ssh-keygen` (files, `ssh-agent`, `answer-message` + `ssh-keygen -Y sign`
//! + `submit`).
//!
//! Every test runs on SQLite and on PostgreSQL.

use std::path::{Path, PathBuf};

use chrono::Duration;
use t_minus::plan::PlanOptions;
use t_minus::trust::{Answer, AnswerMessage, TrustError};
use t_minus::{AuditAction, Engine, FixedClock, Response, ResponseStatus, TMinusError};

use crate::cli_support::{self, T};
use crate::common::{self, agent, desired, t0};
use crate::trust::{key, keygen, ssh_keygen_sign, ssh_keygen_verify, Keys, SshAgent};

/// An `allowed_signers` file in `dir` for alice and bob.
fn allowed_signers(keys: &Keys, dir: &Path) -> PathBuf {
    let path = dir.join("allowed_signers");
    std::fs::write(
        &path,
        format!(
            "alice namespaces=\"t-minus\" {}\nbob {}\n",
            keys.alice.1, keys.bob.1
        ),
    )
    .unwrap();
    path
}

/// The campaign `release` with inline signers for alice and bob (carol
/// and mallory are none).
fn manifest(keys: &Keys, version: &str) -> String {
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
    quorum: 2
    attendees: [alice, bob]
    payload: {{ version: "{version}" }}
"#,
        keys.alice.1, keys.bob.1
    )
}

fn applied(keys: &Keys) -> (Engine, FixedClock, uuid::Uuid) {
    let (mut engine, clock) = common::engine();
    engine
        .apply_manifests(&desired(&manifest(keys, "2.0.0")), &PlanOptions::default())
        .unwrap();
    let id = engine.resolve_event("release/deploy").unwrap();
    (engine, clock, id)
}

/// A signed message for `who` answering `answer` at `time`, signed with
/// `with`.
fn signed(
    engine: &Engine,
    id: uuid::Uuid,
    who: &str,
    answer: Answer,
    with: &Path,
) -> (Vec<u8>, String) {
    let message = engine.answer_message(id, &agent(who), answer).unwrap();
    let bytes = message.to_bytes();
    let sig = t_minus::trust::sign_with_key_file(with, &bytes).unwrap();
    (bytes, sig.to_armored())
}

fn trust_error(err: TMinusError) -> TrustError {
    match err {
        TMinusError::Trust(e) => e,
        other => panic!("not a trust error: {other:?}"),
    }
}

fn statuses(engine: &Engine, id: uuid::Uuid) -> Vec<ResponseStatus> {
    let event = engine.get_event(id).unwrap().unwrap();
    event.attendees.iter().map(|(_, s)| *s).collect()
}

fn a_signed_confirm_is_recorded_with_its_message_and_verifies() {
    let keys = Keys::new();
    let (mut engine, _, id) = applied(&keys);
    let event = engine
        .respond_with_key(id, &agent("alice"), Response::Confirm, &key(&keys.alice.0))
        .unwrap();
    assert_eq!(event.attendees[0].1, ResponseStatus::Confirmed);
    let links = engine.log_links(id).unwrap();
    let last = links.last().unwrap();
    assert_eq!(last.entry.action, AuditAction::Confirmed);
    let message = last.message.as_deref().expect("the message is kept");
    assert!(message.starts_with("t-minus answer v2\n"), "{message}");
    assert!(
        message.contains("\nagent: alice\nanswer: confirm\n"),
        "{message}"
    );
    assert!(last
        .signature
        .as_deref()
        .unwrap()
        .starts_with("-----BEGIN SSH SIGNATURE-----"));
    assert!(last.entry.detail["key"]
        .as_str()
        .unwrap()
        .starts_with("SHA256:"));
    let signers = engine.signers_of(id).unwrap().unwrap();
    assert_eq!(last.entry.detail["signers"], signers.digest().as_str());
    // The scheduled entry named the key set in force.
    assert_eq!(links[0].entry.detail["signers"], signers.digest().as_str());

    let report = engine.verify_log(None).unwrap();
    assert_eq!(report.signatures, 1);
    assert_eq!(report.events, 1);

    // A defer and a decline are signed the same way.
    engine
        .respond_with_key(
            id,
            &agent("bob"),
            Response::Defer(Duration::minutes(5)),
            &key(&keys.bob.0),
        )
        .unwrap();
    engine
        .respond_with_key(
            id,
            &agent("bob"),
            Response::Decline(Some("no \"go\"\nat all".into())),
            &key(&keys.bob.0),
        )
        .unwrap();
    assert_eq!(engine.verify_log(None).unwrap().signatures, 3);
}

fn every_refusal_writes_nothing() {
    let keys = Keys::new();
    let (mut engine, clock, id) = applied(&keys);
    let before = engine.log(id).unwrap().len();
    let check = |engine: &Engine| {
        assert_eq!(engine.log(id).unwrap().len(), before, "nothing logged");
        assert_eq!(
            statuses(engine, id),
            vec![ResponseStatus::Pending, ResponseStatus::Pending]
        );
    };

    // Unsigned.
    let err = trust_error(engine.confirm(id, &agent("alice")).unwrap_err());
    assert!(matches!(err, TrustError::Unsigned { .. }), "{err:?}");
    assert!(err.to_string().contains("requires signed answers"), "{err}");
    check(&engine);

    // Signed by another key than the agent's.
    let (msg, sig) = signed(&engine, id, "alice", Answer::Confirm, &keys.mallory.0);
    let err = trust_error(engine.respond_signed(&msg, &sig).unwrap_err());
    assert!(matches!(err, TrustError::WrongKey { .. }), "{err:?}");
    // Signed by bob for alice: bob's key is not alice's.
    let (msg, sig) = signed(&engine, id, "alice", Answer::Confirm, &keys.bob.0);
    let err = trust_error(engine.respond_signed(&msg, &sig).unwrap_err());
    assert!(matches!(err, TrustError::WrongKey { .. }), "{err:?}");
    // An agent with no key at all.
    let (msg, sig) = signed(&engine, id, "mallory", Answer::Confirm, &keys.mallory.0);
    let err = trust_error(engine.respond_signed(&msg, &sig).unwrap_err());
    assert!(matches!(err, TrustError::NoSigner { .. }), "{err:?}");
    // A message changed after signing.
    let (msg, sig) = signed(&engine, id, "alice", Answer::Confirm, &keys.alice.0);
    let text = String::from_utf8(msg).unwrap();
    let forged = text.replace("answer: confirm", "answer: decline");
    let err = trust_error(engine.respond_signed(forged.as_bytes(), &sig).unwrap_err());
    assert!(matches!(err, TrustError::BadSignature { .. }), "{err:?}");
    check(&engine);

    // Too old: signed 5 minutes and 1 ms before the engine clock.
    let (msg, sig) = signed(&engine, id, "alice", Answer::Confirm, &keys.alice.0);
    clock.advance(Duration::minutes(5) + Duration::milliseconds(1));
    let err = trust_error(engine.respond_signed(&msg, &sig).unwrap_err());
    assert!(matches!(err, TrustError::MessageTime { .. }), "{err:?}");
    assert!(err.to_string().contains("before the engine clock"), "{err}");
    // Too far ahead: signed 1 minute and 1 ms after the engine clock.
    clock.set(t0());
    let ahead = t0() + Duration::minutes(1) + Duration::milliseconds(1);
    let early = engine.get_event(id).unwrap().unwrap();
    let message = AnswerMessage::new(&early, agent("alice"), Answer::Confirm, ahead).unwrap();
    let sig = t_minus::trust::sign_with_key_file(&keys.alice.0, &message.to_bytes())
        .unwrap()
        .to_armored();
    let err = trust_error(
        engine
            .respond_signed(&message.to_bytes(), &sig)
            .unwrap_err(),
    );
    assert!(matches!(err, TrustError::MessageTime { .. }), "{err:?}");
    assert!(err.to_string().contains("after the engine clock"), "{err}");
    check(&engine);

    // Exactly at the limits it is accepted.
    let (msg, sig) = signed(&engine, id, "alice", Answer::Confirm, &keys.alice.0);
    clock.advance(Duration::minutes(5));
    engine.respond_signed(&msg, &sig).unwrap();

    // A nonce already used.
    let err = trust_error(engine.respond_signed(&msg, &sig).unwrap_err());
    assert!(matches!(err, TrustError::NonceReused { .. }), "{err:?}");
    assert_eq!(engine.log(id).unwrap().len(), before + 1);
}

fn a_content_change_makes_a_signed_answer_stale() {
    let keys = Keys::new();
    let (mut engine, _, id) = applied(&keys);
    let (msg, sig) = signed(&engine, id, "alice", Answer::Confirm, &keys.alice.0);
    engine
        .apply_manifests(&desired(&manifest(&keys, "2.0.1")), &PlanOptions::default())
        .unwrap();
    let before = engine.log(id).unwrap().len();
    let err = trust_error(engine.respond_signed(&msg, &sig).unwrap_err());
    assert!(matches!(err, TrustError::StaleDigest { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("the event changed since you signed"),
        "{err}"
    );
    assert_eq!(engine.log(id).unwrap().len(), before);
    // A message for the new content is accepted.
    let (msg, sig) = signed(&engine, id, "alice", Answer::Confirm, &keys.alice.0);
    engine.respond_signed(&msg, &sig).unwrap();
}

fn events_without_signers_refuse_signed_answers_and_take_plain_ones() {
    let keys = Keys::new();
    let (mut engine, _) = common::engine();
    let event = engine
        .schedule(t_minus::NewEvent {
            attendees: vec![agent("alice")],
            ..t_minus::NewEvent::new(t_minus::EventKind::Deploy, t0() + Duration::hours(1))
        })
        .unwrap();
    let (msg, sig) = signed(&engine, event.id, "alice", Answer::Confirm, &keys.alice.0);
    let err = trust_error(engine.respond_signed(&msg, &sig).unwrap_err());
    assert!(matches!(err, TrustError::NoSigners { .. }), "{err:?}");
    // With a key at hand, an event without signers takes the plain answer.
    let done = engine
        .respond_with_key(
            event.id,
            &agent("alice"),
            Response::Confirm,
            &key(&keys.alice.0),
        )
        .unwrap();
    assert_eq!(done.state, t_minus::EventState::Fired);
    assert!(engine.log_links(event.id).unwrap()[1].message.is_none());
}

fn schedule_with_signers_requires_a_key_for_every_attendee() {
    let keys = Keys::new();
    let (mut engine, _) = common::engine();
    let signers =
        t_minus::trust::Signers::read_allowed_signers(&allowed_signers(&keys, keys.dir.path()))
            .unwrap();
    let new = |attendees: &[&str]| t_minus::NewEvent {
        attendees: attendees.iter().map(|a| agent(a)).collect(),
        signers: Some(signers.clone()),
        ..t_minus::NewEvent::new(t_minus::EventKind::Deploy, t0() + Duration::hours(1))
    };
    let err = trust_error(engine.schedule(new(&["alice", "carol"])).unwrap_err());
    assert!(
        matches!(&err, TrustError::NoSigner { agent } if agent == "carol"),
        "{err:?}"
    );
    assert!(engine.list_events().unwrap().is_empty());
    let event = engine.schedule(new(&["alice", "bob"])).unwrap();
    let err = trust_error(engine.confirm(event.id, &agent("bob")).unwrap_err());
    assert!(matches!(err, TrustError::Unsigned { .. }), "{err:?}");
    engine
        .respond_with_key(
            event.id,
            &agent("bob"),
            Response::Confirm,
            &key(&keys.bob.0),
        )
        .unwrap();
    assert_eq!(engine.verify_log(None).unwrap().signatures, 1);
}

fn a_key_change_is_a_plan_line_logged_and_verified_against_the_keys_then() {
    let keys = Keys::new();
    let (mut engine, _, id) = applied(&keys);
    engine
        .respond_with_key(id, &agent("alice"), Response::Confirm, &key(&keys.alice.0))
        .unwrap();
    let old = engine.signers_of(id).unwrap().unwrap().digest();
    // alice's key is rotated.
    let (new_key, new_public) = keygen(keys.dir.path(), "alice2", "ed25519");
    let rotated = manifest(&keys, "2.0.0").replace(&keys.alice.1, &new_public);
    let plan = engine
        .plan(&desired(&rotated), &PlanOptions::default())
        .unwrap();
    let text = plan.render();
    let new = engine_digest_of(&rotated);
    assert!(
        text.contains(&format!("~ signers: {old} → {new}")),
        "{text}"
    );
    engine
        .apply_manifests(&desired(&rotated), &PlanOptions::default())
        .unwrap();
    let log = engine.log(id).unwrap();
    let change = log.last().unwrap();
    assert_eq!(change.action, AuditAction::Updated);
    assert_eq!(change.detail["signers"]["old"], old.as_str());
    assert_eq!(change.detail["signers"]["new"], new.as_str());
    // The old key no longer signs; the new one does.
    let err = trust_error(
        engine
            .respond_with_key(id, &agent("alice"), Response::Confirm, &key(&keys.alice.0))
            .unwrap_err(),
    );
    assert!(matches!(err, TrustError::WrongKey { .. }), "{err:?}");
    engine
        .respond_with_key(id, &agent("alice"), Response::Confirm, &key(&new_key))
        .unwrap();
    // Both answers verify, each against the keys in force when it was made.
    assert_eq!(engine.verify_log(None).unwrap().signatures, 2);
}

fn engine_digest_of(manifest: &str) -> String {
    let valid = desired(manifest);
    let text = valid.campaigns[0].signers.as_deref().unwrap();
    t_minus::trust::signers::digest_of_text(text)
}

fn verify_catches_an_edited_key_set_and_a_stripped_signature() {
    let keys = Keys::new();
    let (guard, location) = common::store();
    let clock = FixedClock::new(t0());
    let mut engine = common::open_engine(&location, &clock);
    engine
        .apply_manifests(&desired(&manifest(&keys, "2.0.0")), &PlanOptions::default())
        .unwrap();
    let id = engine.resolve_event("release/deploy").unwrap();
    engine
        .respond_with_key(id, &agent("alice"), Response::Confirm, &key(&keys.alice.0))
        .unwrap();
    engine.verify_log(None).unwrap();

    // The stored key set is swapped for mallory's key under alice's name.
    let digest = engine.signers_of(id).unwrap().unwrap().digest();
    let forged = format!("\"alice\" {}\n\"bob\" {}\n", keys.mallory.1, keys.bob.1);
    common::stores::tamper(
        &location,
        &format!("UPDATE {{signer_sets}} SET text = '{forged}' WHERE digest = '{digest}'"),
    );
    let err = trust_error(
        common::open_engine(&location, &clock)
            .verify_log(None)
            .unwrap_err(),
    );
    assert!(matches!(err, TrustError::SignedEntry { .. }), "{err:?}");
    assert!(
        err.to_string().contains("does not hash to its digest"),
        "{err}"
    );
    drop(guard);
}

fn pruning_a_campaign_keeps_its_log_and_the_chain_intact() {
    let keys = Keys::new();
    let (mut engine, _, id) = applied(&keys);
    for (who, k) in [("alice", &keys.alice.0), ("bob", &keys.bob.0)] {
        engine
            .respond_with_key(id, &agent(who), Response::Confirm, &key(k))
            .unwrap();
    }
    let entries = engine.verify_log(None).unwrap().entries;
    let other = "campaign: other\nevents:\n  x:\n    at: +1h\n";
    let options = PlanOptions {
        prune: true,
        ..PlanOptions::default()
    };
    engine.apply_manifests(&desired(other), &options).unwrap();
    assert!(engine.get_event(id).unwrap().is_none(), "pruned");
    let report = engine.verify_log(None).unwrap();
    assert!(report.entries > entries, "the log was only appended to");
    assert_eq!(engine.log(id).unwrap().len(), 4, "its history stays");
}

fn attest_lists_outcomes_answers_signatures_and_the_head() {
    let keys = Keys::new();
    let (mut engine, _, id) = applied(&keys);
    for (who, k) in [("alice", &keys.alice.0), ("bob", &keys.bob.0)] {
        engine
            .respond_with_key(id, &agent(who), Response::Confirm, &key(k))
            .unwrap();
    }
    let campaign = engine.resolve_campaign("release").unwrap();
    let statement = engine.attest(campaign).unwrap();
    let json = serde_json::to_value(&statement).unwrap();
    assert_eq!(json["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        json["predicateType"],
        "https://t-minus.dev/attestation/campaign/v2"
    );
    assert_eq!(json["subject"][0]["name"], "t-minus:campaign/release");
    let event = engine.get_event(id).unwrap().unwrap();
    let digest = t_minus::trust::content_digest(&event).to_string();
    assert_eq!(
        json["subject"][0]["digest"]["sha256"],
        t_minus::trust::attest::campaign_digest([("deploy", digest.as_str())]).as_str()
    );
    let p = &json["predicate"];
    assert_eq!(p["campaign"]["name"], "release");
    assert_eq!(p["events"][0]["state"], "fired");
    assert_eq!(p["events"][0]["content_digest"], digest.as_str());
    let answers = p["events"][0]["answers"].as_array().unwrap();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[1]["agent"], "bob");
    assert!(answers[1]["message"]
        .as_str()
        .unwrap()
        .contains("agent: bob"));
    assert_eq!(
        p["log"]["head"],
        engine.verify_log(None).unwrap().head.hex().as_str()
    );
    assert_eq!(
        p["signers"],
        engine.signers_of(id).unwrap().unwrap().digest().as_str()
    );
}

/// The campaign `release` of [`manifest`] with the event's
/// notification rules `rules` (YAML list items, indented for `notify:`).
fn manifest_with_rules(keys: &Keys, rules: &str) -> String {
    format!("{}    notify:\n{rules}", manifest(keys, "2.0.0"))
}

const FIRED_HOOK: &str = "      - on: [fired]\n        exec: [/usr/bin/deploy, --prod]\n";
const REMINDER: &str = "      - on: [reminder]\n        before: 10m\n        webhook: https://hooks.example.com/x\n        headers: { Authorization: \"Bearer ${TOKEN}\" }\n";

fn changing_the_fired_hook_resets_confirmations_and_stales_old_signatures() {
    let keys = Keys::new();
    let (mut engine, _) = common::engine();
    let apply = |engine: &mut Engine, rules: &str| {
        engine
            .apply_manifests(
                &desired(&manifest_with_rules(&keys, &format!("{FIRED_HOOK}{rules}"))),
                &PlanOptions::default(),
            )
            .unwrap()
    };
    apply(&mut engine, REMINDER);
    let id = engine.resolve_event("release/deploy").unwrap();
    let event = engine.get_event(id).unwrap().unwrap();
    assert!(event.rules_digest.is_some(), "the fired hook is bound");
    let before = t_minus::trust::content_digest(&event);
    engine
        .respond_with_key(id, &agent("alice"), Response::Confirm, &key(&keys.alice.0))
        .unwrap();
    // Bob signs over the current content, but submits only after the change.
    let (bob_message, bob_sig) = signed(&engine, id, "bob", Answer::Confirm, &keys.bob.0);

    // A changed reminder is informational: nothing is reset.
    let other_reminder = REMINDER.replace("10m", "15m");
    let changed = manifest_with_rules(&keys, &format!("{FIRED_HOOK}{other_reminder}"));
    let plan = engine
        .plan(&desired(&changed), &PlanOptions::default())
        .unwrap();
    assert_eq!(plan.campaigns[0].events[0].resets, 0, "{plan:?}");
    apply(&mut engine, &other_reminder);
    let event = engine.get_event(id).unwrap().unwrap();
    assert_eq!(t_minus::trust::content_digest(&event), before);
    assert_eq!(event.attendees[0].1, ResponseStatus::Confirmed);

    // The command that runs when it fires changes: alice's approval is gone.
    let hook = FIRED_HOOK.replace("--prod", "--prod --force");
    let changed = manifest_with_rules(&keys, &format!("{hook}{other_reminder}"));
    let plan = engine
        .plan(&desired(&changed), &PlanOptions::default())
        .unwrap();
    assert_eq!(plan.campaigns[0].events[0].resets, 1, "{plan:?}");
    let text = plan.render();
    let line = text
        .lines()
        .find(|l| l.contains("~ notify:"))
        .unwrap_or_else(|| panic!("no notify line in {text}"));
    assert!(line.ends_with("(resets 1 confirmation)"), "{text}");
    assert!(!text.contains("Bearer"), "headers are never shown: {text}");
    engine.apply_plan(&plan).unwrap();
    let event = engine.get_event(id).unwrap().unwrap();
    let after = t_minus::trust::content_digest(&event);
    assert_ne!(after, before);
    assert_eq!(statuses(&engine, id)[0], ResponseStatus::Pending);
    let updated = engine.log(id).unwrap();
    let content = &updated.last().unwrap().detail["content"];
    assert_eq!(content["reset"], serde_json::json!(["alice"]), "{content}");
    assert_eq!(content["new_digest"], after.to_string());

    // Bob's answer signed over the old content is stale; the message to sign
    // now names the new digest.
    let err = trust_error(engine.respond_signed(&bob_message, &bob_sig).unwrap_err());
    assert!(matches!(err, TrustError::StaleDigest { .. }), "{err:?}");
    let message = engine
        .answer_message(id, &agent("bob"), Answer::Confirm)
        .unwrap();
    assert_eq!(message.digest(), after);
    let report = engine.verify_log(None).unwrap();
    assert!(report.signatures >= 1);

    // Removing the fired hook changes the digest again (back to version 1).
    apply(&mut engine, "");
    engine
        .apply_manifests(&desired(&manifest(&keys, "2.0.0")), &PlanOptions::default())
        .unwrap();
    let event = engine.get_event(id).unwrap().unwrap();
    assert_eq!(event.rules_digest, None);
    assert_ne!(t_minus::trust::content_digest(&event), after);
}

fn set_notify_rules_resets_confirmations_when_bound_rules_change() {
    let keys = Keys::new();
    let (mut engine, _, id) = applied(&keys);
    engine
        .respond_with_key(id, &agent("alice"), Response::Confirm, &key(&keys.alice.0))
        .unwrap();
    let before = t_minus::trust::content_digest(&engine.get_event(id).unwrap().unwrap());
    let reminder = t_minus::notification::NotifyRule {
        before_ms: vec![600_000],
        ..t_minus::notification::NotifyRule::new(
            vec![t_minus::notification::Trigger::Reminder],
            t_minus::notification::Hook::Exec {
                argv: vec!["/usr/bin/page".into()],
            },
        )
    };
    engine
        .set_notify_rules(id, std::slice::from_ref(&reminder))
        .unwrap();
    let event = engine.get_event(id).unwrap().unwrap();
    assert_eq!(t_minus::trust::content_digest(&event), before);
    assert_eq!(event.attendees[0].1, ResponseStatus::Confirmed);
    let missed = t_minus::notification::NotifyRule::new(
        vec![t_minus::notification::Trigger::Missed],
        t_minus::notification::Hook::Exec {
            argv: vec!["/usr/bin/rollback".into()],
        },
    );
    engine.set_notify_rules(id, &[reminder, missed]).unwrap();
    let event = engine.get_event(id).unwrap().unwrap();
    assert_ne!(t_minus::trust::content_digest(&event), before);
    assert_eq!(event.attendees[0].1, ResponseStatus::Pending);
    let last = engine.log(id).unwrap().pop().unwrap();
    assert_eq!(last.action, AuditAction::Updated);
    assert_eq!(
        last.detail["content"]["reset"],
        serde_json::json!(["alice"])
    );
    engine.verify_log(None).unwrap();
}

fn pruning_or_removing_unfinished_signed_events_needs_signed_cancels() {
    let keys = Keys::new();
    let (mut engine, _, id) = applied(&keys);
    let other = "campaign: other\nevents:\n  x:\n    at: +1h\n";
    let prune = PlanOptions {
        prune: true,
        ..PlanOptions::default()
    };
    let entries = engine.verify_log(None).unwrap().entries;
    let err = engine.apply_manifests(&desired(other), &prune).unwrap_err();
    let text = format!("{err}");
    assert!(text.contains("deploy"), "{text}");
    let code = miette::Diagnostic::code(&err).map(|c| c.to_string());
    assert_eq!(code.as_deref(), Some("t_minus::trust::unsigned_delete"));
    let help = miette::Diagnostic::help(&err).unwrap().to_string();
    assert!(help.contains("cancel signed by a signer"), "{help}");
    assert!(
        engine.get_event(id).unwrap().is_some(),
        "nothing was pruned"
    );
    assert_eq!(engine.verify_log(None).unwrap().entries, entries);

    // Removing the event from its own manifest is the same deletion.
    let without = manifest(&keys, "2.0.0")
        .replace("  deploy:", "  other:")
        .replace("kind: deploy", "kind: review");
    let err = engine
        .apply_manifests(&desired(&without), &PlanOptions::default())
        .unwrap_err();
    assert!(format!("{err}").contains("deploy"), "{err}");
    assert!(engine.get_event(id).unwrap().is_some());

    // Once cancelled with a signature, the campaign prunes.
    engine
        .cancel_with_key(id, &agent("alice"), None, &key(&keys.alice.0))
        .unwrap();
    engine.apply_manifests(&desired(other), &prune).unwrap();
    assert!(engine.get_event(id).unwrap().is_none(), "pruned");
    engine.verify_log(None).unwrap();
}

/// The campaign `release` of [`manifest`] with alice's key replaced
/// by `alice_key` (a rotation by re-apply).
fn rotated_manifest(keys: &Keys, alice_key: &str) -> String {
    manifest(keys, "2.0.0").replace(&keys.alice.1, alice_key)
}

/// Checks `statement` (as JSON) alone; the problems when it fails.
fn check(statement: &serde_json::Value) -> Result<t_minus::trust::attest::StatementCheck, String> {
    t_minus::trust::attest::verify_statement(statement.to_string().as_bytes()).map_err(
        |e| match e {
            TrustError::Attestation { problems } => problems.join("\n"),
            other => panic!("not an attestation refusal: {other:?}"),
        },
    )
}

fn an_attestation_verifies_alone_with_the_keys_in_force_and_names_every_edit() {
    let keys = Keys::new();
    let (mut engine, _, id) = applied(&keys);
    engine
        .respond_with_key(id, &agent("alice"), Response::Confirm, &key(&keys.alice.0))
        .unwrap();
    // Alice's key is rotated; her answer stands, made with the old key.
    let new_alice = crate::trust::keygen(keys.dir.path(), "alice2", "ed25519");
    engine
        .apply_manifests(
            &desired(&rotated_manifest(&keys, &new_alice.1)),
            &PlanOptions::default(),
        )
        .unwrap();
    engine
        .respond_with_key(id, &agent("bob"), Response::Confirm, &key(&keys.bob.0))
        .unwrap();
    let campaign = engine.resolve_campaign("release").unwrap();
    let statement = serde_json::to_value(engine.attest(campaign).unwrap()).unwrap();
    let p = &statement["predicate"];
    assert_eq!(p["key_sets"].as_object().unwrap().len(), 2, "{p}");
    let event = &p["events"][0];
    assert_eq!(event["state"], "fired");
    assert_eq!(event["description"], serde_json::Value::Null);
    assert_eq!(event["quorum"], 2);
    assert_eq!(event["attendees"][0]["status"], "confirmed");
    assert_eq!(event["key_history"].as_array().unwrap().len(), 2, "{event}");
    let ok = check(&statement).unwrap();
    assert_eq!((ok.events, ok.answers, ok.signatures), (1, 2, 2), "{ok:?}");
    assert_eq!(ok.subject, statement["subject"][0]["digest"]["sha256"]);

    // Every edit is named.
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let edits: Vec<(&str, Edit, &str)> = vec![
        (
            "payload",
            Box::new(|s| s["predicate"]["events"][0]["payload"]["version"] = "9.9.9".into()),
            "content digest",
        ),
        (
            "description",
            Box::new(|s| s["predicate"]["events"][0]["description"] = "other".into()),
            "content digest",
        ),
        (
            "rules digest",
            Box::new(|s| {
                s["predicate"]["events"][0]["rules_digest"] =
                    format!("sha256:{}", "ab".repeat(32)).into()
            }),
            "content digest",
        ),
        (
            "content digest and subject",
            Box::new(|s| {
                let e = &mut s["predicate"]["events"][0];
                e["payload"]["version"] = "9.9.9".into();
                let id: uuid::Uuid = e["id"].as_str().unwrap().parse().unwrap();
                let campaign: uuid::Uuid = s["predicate"]["campaign"]["id"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                let payload = s["predicate"]["events"][0]["payload"].clone();
                let content = t_minus::trust::digest::Content {
                    id,
                    campaign: Some(campaign),
                    name: Some("deploy"),
                    kind: "deploy",
                    description: None,
                    payload: &payload,
                    rules: None,
                };
                let digest = content.digest().to_string();
                s["subject"][0]["digest"]["sha256"] =
                    t_minus::trust::attest::campaign_digest([("deploy", digest.as_str())]).into();
                s["predicate"]["events"][0]["content_digest"] = digest.into();
            }),
            "signed for content",
        ),
        (
            "subject",
            Box::new(|s| s["subject"][0]["digest"]["sha256"] = "00".repeat(32).into()),
            "subject's digest",
        ),
        (
            "answer",
            Box::new(|s| s["predicate"]["events"][0]["answers"][1]["answer"] = "declined".into()),
            "its signed message is agent bob",
        ),
        (
            "attendee's answer",
            Box::new(|s| s["predicate"]["events"][0]["attendees"][1]["status"] = "declined".into()),
            "attendee bob is declined",
        ),
        (
            "message",
            Box::new(|s| {
                let m = s["predicate"]["events"][0]["answers"][1]["message"]
                    .as_str()
                    .unwrap()
                    .replace("answer: confirm", "answer: decline");
                s["predicate"]["events"][0]["answers"][1]["message"] = m.into();
            }),
            "answer seq",
        ),
        (
            "stripped signature",
            Box::new(|s| {
                s["predicate"]["events"][0]["answers"][0]["signature"] = serde_json::Value::Null;
                s["predicate"]["events"][0]["answers"][0]["message"] = serde_json::Value::Null;
            }),
            "it is not signed",
        ),
        (
            "key",
            Box::new(|s| {
                let sets = s["predicate"]["key_sets"].as_object_mut().unwrap();
                for text in sets.values_mut() {
                    *text = text.as_str().unwrap().replace("alice", "mallory").into();
                }
            }),
            "does not hash to its digest",
        ),
        (
            "quorum",
            Box::new(|s| s["predicate"]["events"][0]["quorum"] = 3.into()),
            "fired with 2 confirmations",
        ),
    ];
    for (what, edit, said) in edits {
        let mut edited = statement.clone();
        edit(&mut edited);
        let problems = check(&edited).expect_err(what);
        assert!(problems.contains(said), "{what}: {problems}");
    }
    // A key set replaced by one with mallory's key in alice's place, its
    // digest updated everywhere: alice's signature no longer verifies.
    let mut forged = statement.clone();
    let old = p["events"][0]["answers"][0]["detail"]["signers"]
        .as_str()
        .unwrap()
        .to_string();
    let text = p["key_sets"][&old].as_str().unwrap().to_string();
    let mallory = text.replace(
        keys.alice.1.split(' ').nth(1).unwrap(),
        keys.mallory.1.split(' ').nth(1).unwrap(),
    );
    let digest = t_minus::trust::signers::digest_of_text(&mallory);
    let text = forged.to_string().replace(&old, &digest);
    forged = serde_json::from_str(&text).unwrap();
    forged["predicate"]["key_sets"][&digest] = mallory.into();
    let problems = check(&forged).expect_err("a forged key set");
    assert!(problems.contains("does not verify"), "{problems}");
    // An attestation of an earlier version says what it lacks.
    let mut v1 = statement.clone();
    v1["predicateType"] = "https://t-minus.dev/attestation/campaign/v1".into();
    assert!(check(&v1).unwrap_err().contains("attest again"));
}

fn an_attestation_carries_the_rules_digest_not_the_rules() {
    let keys = Keys::new();
    let (mut engine, _) = common::engine();
    let manifest = manifest_with_rules(&keys, &format!("{FIRED_HOOK}{REMINDER}"));
    engine
        .apply_manifests(&desired(&manifest), &PlanOptions::default())
        .unwrap();
    let id = engine.resolve_event("release/deploy").unwrap();
    engine
        .respond_with_key(id, &agent("alice"), Response::Confirm, &key(&keys.alice.0))
        .unwrap();
    let campaign = engine.resolve_campaign("release").unwrap();
    let statement = serde_json::to_value(engine.attest(campaign).unwrap()).unwrap();
    let text = statement.to_string();
    assert!(!text.contains("/usr/bin/deploy"), "{text}");
    assert!(!text.contains("Bearer"), "{text}");
    let event = engine.get_event(id).unwrap().unwrap();
    let rules = event.rules_digest.unwrap();
    assert_eq!(
        statement["predicate"]["events"][0]["rules_digest"],
        format!("sha256:{}", hex(&rules))
    );
    check(&statement).unwrap();
    let mut dropped = statement.clone();
    dropped["predicate"]["events"][0]["rules_digest"] = serde_json::Value::Null;
    assert!(check(&dropped).unwrap_err().contains("content digest"));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

common::store_tests!(
    an_attestation_verifies_alone_with_the_keys_in_force_and_names_every_edit,
    an_attestation_carries_the_rules_digest_not_the_rules,
    changing_the_fired_hook_resets_confirmations_and_stales_old_signatures,
    set_notify_rules_resets_confirmations_when_bound_rules_change,
    pruning_or_removing_unfinished_signed_events_needs_signed_cancels,
    a_signed_confirm_is_recorded_with_its_message_and_verifies,
    every_refusal_writes_nothing,
    a_content_change_makes_a_signed_answer_stale,
    events_without_signers_refuse_signed_answers_and_take_plain_ones,
    schedule_with_signers_requires_a_key_for_every_attendee,
    a_key_change_is_a_plan_line_logged_and_verified_against_the_keys_then,
    verify_catches_an_edited_key_set_and_a_stripped_signature,
    pruning_a_campaign_keeps_its_log_and_the_chain_intact,
    attest_lists_outcomes_answers_signatures_and_the_head,
);

/// Manifest validation of `signers`.
mod manifest {
    use super::*;

    fn problems(text: &str, dir: &Path) -> String {
        let path = dir.join("release.yaml");
        std::fs::write(&path, text).unwrap();
        let parsed = t_minus::manifest::parse_str(&path.display().to_string(), text);
        match t_minus::manifest::validate(&parsed, &Default::default()) {
            Ok(_) => panic!("valid: {text}"),
            Err(d) => {
                let handler = miette::GraphicalReportHandler::new_themed(
                    miette::GraphicalTheme::unicode_nocolor(),
                );
                d.render(&handler)
            }
        }
    }

    #[test]
    fn an_attendee_without_a_key_a_bad_key_and_a_missing_file_are_errors_with_spans() {
        let keys = Keys::new();
        let dir = keys.dir.path();
        let carol = manifest(&keys, "1").replace("[alice, bob]", "[alice, bob, carol]");
        let text = problems(&carol, dir);
        assert!(text.contains("t_minus::manifest::signers"), "{text}");
        assert!(
            text.contains("attendee `carol` of `release/deploy` has no key in `signers`"),
            "{text}"
        );
        assert!(text.contains("this attendee cannot sign"), "{text}");

        let bad = manifest(&keys, "1").replace(&keys.bob.1, "ssh-ed25519 AAAAnotakey");
        let text = problems(&bad, dir);
        assert!(text.contains("not a usable public key"), "{text}");

        let missing = "campaign: release\nsigners: ./nowhere\nevents:\n  x:\n    at: +1h\n";
        let text = problems(missing, dir);
        assert!(text.contains("cannot read"), "{text}");
        assert!(text.contains("nowhere"), "{text}");

        // A file relative to the manifest is read.
        allowed_signers(&keys, dir);
        let file = "campaign: release\nsigners: allowed_signers\nevents:\n  x:\n    at: +1h\n    attendees: [alice, bob]\n";
        let path = dir.join("release.yaml");
        let parsed = t_minus::manifest::parse_str(&path.display().to_string(), file);
        let valid = t_minus::manifest::validate(&parsed, &Default::default()).unwrap();
        assert_eq!(
            valid.campaigns[0]
                .signers
                .as_deref()
                .unwrap()
                .lines()
                .count(),
            2
        );
    }
}

/// The command line.
mod cli {
    use super::*;

    fn setup(keys: &Keys) -> T {
        let t = T::new();
        std::fs::write(t.dir().join("release.yaml"), manifest(keys, "2.0.0")).unwrap();
        t.ok("apply release.yaml");
        t
    }

    fn confirm_sign_with_a_key_file_and_the_environment() {
        let keys = Keys::new();
        let t = setup(&keys);
        let stderr = t.fail("confirm release/deploy alice");
        assert!(stderr.contains("t_minus::trust::unsigned"), "{stderr}");
        assert!(stderr.contains("--sign KEYFILE"), "{stderr}");
        let stderr = t.fail(&format!(
            "confirm release/deploy alice --sign {}",
            keys.mallory.0.display()
        ));
        assert!(stderr.contains("t_minus::trust::wrong_key"), "{stderr}");
        // The public key where the private one belongs: said plainly, and
        // the private key's path suggested.
        let public = keys.alice.0.with_extension("pub");
        let stderr = t.fail(&format!(
            "confirm release/deploy alice --sign {}",
            public.display()
        ));
        assert!(stderr.contains("t_minus::trust::public_key"), "{stderr}");
        // (The report wraps long lines: compare without white space.)
        let unwrapped: String = stderr
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '│')
            .collect();
        assert!(
            unwrapped.contains("thisisapublickey;passtheprivatekeyfile"),
            "{stderr}"
        );
        assert!(
            unwrapped.contains(&format!("`.pub`:{}", keys.alice.0.display())),
            "{stderr}"
        );
        let out = t.ok(&format!(
            "confirm release/deploy alice --sign {}",
            keys.alice.0.display()
        ));
        assert!(out.contains("alice confirmed release/deploy"), "{out}");
        let mut cmd = t.command();
        cmd.env("T_MINUS_SIGNING_KEY", &keys.bob.0)
            .args(["defer", "release/deploy", "bob", "5m"]);
        let out = cli_support::output(cmd);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let report = t.json("verify --json");
        assert_eq!(report["signatures"], 2);
        let report = t.json("verify release --json");
        assert_eq!(report["events"], 1);
    }

    fn a_signature_made_by_t_minus_verifies_with_ssh_keygen() {
        let keys = Keys::new();
        let t = setup(&keys);
        t.ok(&format!(
            "confirm release/deploy alice --sign {}",
            keys.alice.0.display()
        ));
        let log = t.json("log release/deploy --json");
        let last = log.as_array().unwrap().last().unwrap().clone();
        let message = last["message"].as_str().unwrap();
        let sig = t.dir().join("answer.sig");
        std::fs::write(&sig, last["signature"].as_str().unwrap()).unwrap();
        let allowed = allowed_signers(&keys, t.dir());
        let (ok, said) = ssh_keygen_verify(&allowed, "alice", &sig, message.as_bytes());
        assert!(ok, "{said}");
    }

    fn answer_message_signed_by_ssh_keygen_is_accepted_by_submit() {
        let keys = Keys::new();
        let t = setup(&keys);
        let message = t.ok("answer-message release/deploy bob defer 30m");
        assert!(message.contains("\nanswer: defer 30m\n"), "{message}");
        assert!(
            message.contains(&format!("\ntime: {}", &t.now()[..19])),
            "{message}"
        );
        let file = t.dir().join("answer.txt");
        std::fs::write(&file, &message).unwrap();
        let sig = ssh_keygen_sign(&keys.bob.0, "t-minus", &file);
        std::fs::write(t.dir().join("answer.txt.sig"), &sig).unwrap();
        let out = t.ok("submit answer.txt answer.txt.sig");
        assert!(out.contains("bob deferred release/deploy"), "{out}");
        let stderr = t.fail("submit answer.txt answer.txt.sig");
        assert!(stderr.contains("t_minus::trust::nonce"), "{stderr}");
        // Signed in another namespace.
        let other = t.ok("answer-message release/deploy bob confirm");
        let file = t.dir().join("other.txt");
        std::fs::write(&file, &other).unwrap();
        let sig = ssh_keygen_sign(&keys.bob.0, "git", &file);
        std::fs::write(t.dir().join("other.sig"), &sig).unwrap();
        let stderr = t.fail("submit other.txt other.sig");
        assert!(stderr.contains("t_minus::trust::namespace"), "{stderr}");
        // Bad input: unknown answer, missing duration, a reason without decline.
        for (line, said) in [
            (
                "answer-message release/deploy bob maybe",
                "unknown answer `maybe`",
            ),
            (
                "answer-message release/deploy bob defer",
                "needs a duration",
            ),
            (
                "answer-message release/deploy bob confirm --reason x",
                "--reason goes with `decline` or `cancel` only",
            ),
        ] {
            let stderr = t.fail(line);
            assert!(stderr.contains("t_minus::input::answer"), "{stderr}");
            assert!(stderr.contains(said), "{stderr}");
        }
        let stderr = t.fail("submit nothing.txt answer.txt.sig");
        assert!(stderr.contains("t_minus::trust::read"), "{stderr}");
    }

    fn sign_through_ssh_agent() {
        let keys = Keys::new();
        let t = setup(&keys);
        let agent_proc = SshAgent::start(keys.dir.path());
        let run = |who: &str| {
            let mut cmd = t.command();
            cmd.env("SSH_AUTH_SOCK", &agent_proc.socket).args([
                "confirm",
                "release/deploy",
                who,
                "--sign",
                "agent",
            ]);
            cli_support::output(cmd)
        };
        let out = run("alice");
        assert_eq!(out.code, 1);
        assert!(
            out.stderr.contains("t_minus::trust::ssh_agent_key"),
            "{}",
            out.stderr
        );
        agent_proc.add(&keys.alice.0);
        let out = run("alice");
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(t.json("verify --json")["signatures"], 1);
    }

    fn attest_writes_an_in_toto_statement() {
        let keys = Keys::new();
        let t = setup(&keys);
        for (who, k) in [("alice", &keys.alice.0), ("bob", &keys.bob.0)] {
            t.ok(&format!(
                "confirm release/deploy {who} --sign {}",
                k.display()
            ));
        }
        t.ok("attest release --out statement.json");
        let text = std::fs::read_to_string(t.dir().join("statement.json")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["_type"], "https://in-toto.io/Statement/v1");
        assert_eq!(json["predicate"]["events"][0]["state"], "fired");
        let head = t.json("verify --json")["head"].clone();
        assert_eq!(json["predicate"]["log"]["head"], head);
        assert_eq!(t.json("attest release"), json);
        let stderr = t.fail("attest nothing");
        assert!(stderr.contains("t_minus::not_found"), "{stderr}");
    }

    #[test]
    fn verify_and_attest_refuse_a_store_that_does_not_exist() {
        let t = T::new().without_db_flag();
        for line in ["--db missing.db verify", "--db missing.db attest release"] {
            let out = t.run_args(&cli_support::split(line));
            assert_eq!(out.code, 1, "{line}: {}", out.stdout);
            assert!(
                out.stderr.contains("t_minus::store::missing"),
                "{}",
                out.stderr
            );
            assert!(
                out.stderr.contains("there is no store at missing.db"),
                "{}",
                out.stderr
            );
        }
        assert!(!t.dir().join("missing.db").exists(), "no store was created");
    }

    #[test]
    fn a_store_in_a_directory_that_does_not_exist_is_not_created() {
        let t = T::new().without_db_flag();
        for line in [
            "--db nowhere/t.db status",
            "--db nowhere/deeper/t.db schedule review +1h --attendees a",
        ] {
            let out = t.run_args(&cli_support::split(line));
            assert_eq!(out.code, 1, "{line}: {}", out.stdout);
            assert!(out.stdout.is_empty(), "{}", out.stdout);
            assert!(
                out.stderr.contains("t_minus::store::no_directory"),
                "{}",
                out.stderr
            );
            assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
        }
        assert!(!t.dir().join("nowhere").exists(), "nothing was created");
    }

    fn verify_attestation_checks_a_statement_alone_and_creates_no_store() {
        let keys = Keys::new();
        let t = setup(&keys);
        t.ok(&format!(
            "confirm release/deploy alice --sign {}",
            keys.alice.0.display()
        ));
        // Alice's key is rotated before bob answers.
        let new_alice = crate::trust::keygen(keys.dir.path(), "alice2", "ed25519");
        std::fs::write(
            t.dir().join("release.yaml"),
            super::rotated_manifest(&keys, &new_alice.1),
        )
        .unwrap();
        t.ok("apply release.yaml");
        t.ok(&format!(
            "confirm release/deploy bob --sign {}",
            keys.bob.0.display()
        ));
        t.ok(&format!(
            "attest release --out statement.json --sign {}",
            keys.bob.0.display()
        ));
        let file = t.dir().join("statement.json");
        let text = std::fs::read_to_string(&file).unwrap();

        // Offline, in an empty directory, without --db or T_MINUS_DB.
        let empty = tempfile::tempdir().unwrap();
        let offline = |path: &Path| {
            let mut cmd = cli_support::t_minus(cli_support::Clock::Real);
            cmd.current_dir(empty.path())
                .arg("verify")
                .arg("--attestation")
                .arg(path);
            cli_support::output(cmd)
        };
        let out = offline(&file);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(
            out.stdout.contains(
                "The attestation of campaign release holds: 1 event, 2 answers, 2 signatures"
            ),
            "{}",
            out.stdout
        );
        let mut cmd = cli_support::t_minus(cli_support::Clock::Real);
        cmd.current_dir(empty.path())
            .args(["verify", "--json", "--attestation"])
            .arg(&file);
        let out = cli_support::output(cmd);
        let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(json["signatures"], 2, "{json}");
        let edited = t.dir().join("edited.json");
        std::fs::write(&edited, text.replace("\"2.0.0\"", "\"2.0.1\"")).unwrap();
        let out = offline(&edited);
        assert_eq!(out.code, 1, "{}", out.stdout);
        assert!(out.stdout.is_empty(), "{}", out.stdout);
        assert!(
            out.stderr.contains("t_minus::trust::attestation"),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("event deploy: its content digest"),
            "{}",
            out.stderr
        );
        let out = offline(&t.dir().join("missing.json"));
        assert_eq!(out.code, 1);
        assert!(
            out.stderr.contains("t_minus::trust::read"),
            "{}",
            out.stderr
        );
        assert_eq!(
            std::fs::read_dir(empty.path()).unwrap().count(),
            0,
            "no store or other file was created"
        );

        // ssh-keygen checks alice's answer with the key set in force when
        // she answered (before the rotation), as docs/security.md shows.
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let answer = &json["predicate"]["events"][0]["answers"][0];
        assert_eq!(answer["agent"], "alice");
        let set = answer["detail"]["signers"].as_str().unwrap();
        assert_ne!(Some(set), json["predicate"]["signers"].as_str(), "rotated");
        let allowed = t.dir().join("allowed_then");
        std::fs::write(
            &allowed,
            json["predicate"]["key_sets"][set].as_str().unwrap(),
        )
        .unwrap();
        let sig = t.dir().join("alice.sig");
        std::fs::write(&sig, answer["signature"].as_str().unwrap()).unwrap();
        let message = answer["message"].as_str().unwrap().as_bytes();
        let (ok, said) = ssh_keygen_verify(&allowed, "alice", &sig, message);
        assert!(ok, "{said}");
        let now = t.dir().join("allowed_now");
        std::fs::write(&now, json["predicate"]["signers_text"].as_str().unwrap()).unwrap();
        let (ok, _) = ssh_keygen_verify(&now, "alice", &sig, message);
        assert!(!ok, "alice's old key is not in the current set");

        // The statement's own signature: sshsig over the file's bytes in
        // namespace t-minus-attestation.
        let signer = t.dir().join("attesters");
        std::fs::write(&signer, format!("ci {}\n", keys.bob.1)).unwrap();
        let verify = |namespace: &str| {
            std::process::Command::new("ssh-keygen")
                .args(["-Y", "verify", "-n", namespace, "-I", "ci", "-f"])
                .arg(&signer)
                .arg("-s")
                .arg(t.dir().join("statement.json.sig"))
                .stdin(std::fs::File::open(&file).unwrap())
                .output()
                .unwrap()
        };
        let out = verify("t-minus-attestation");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !verify("t-minus").status.success(),
            "not an answer's signature"
        );
        let stderr = t.fail("attest release --sign nothing");
        assert!(stderr.contains("--out"), "{stderr}");
    }

    fn a_changed_fired_hook_resets_approvals_in_plan_apply_and_answer_message() {
        let keys = Keys::new();
        let t = T::new();
        let rules = format!("{}{}", super::FIRED_HOOK, super::REMINDER);
        let write = |rules: &str| {
            std::fs::write(
                t.dir().join("release.yaml"),
                super::manifest_with_rules(&keys, rules),
            )
            .unwrap()
        };
        write(&rules);
        t.ok("apply release.yaml");
        t.ok(&format!(
            "confirm release/deploy alice --sign {}",
            keys.alice.0.display()
        ));
        let digest = |message: &str| {
            message
                .lines()
                .find_map(|l| l.strip_prefix("digest: "))
                .unwrap()
                .to_string()
        };
        let old = t.ok("answer-message release/deploy bob confirm");
        std::fs::write(t.dir().join("old.txt"), &old).unwrap();
        let sig = ssh_keygen_sign(&keys.bob.0, "t-minus", &t.dir().join("old.txt"));
        std::fs::write(t.dir().join("old.txt.sig"), sig).unwrap();

        // A new reminder time: no reset.
        write(&rules.replace("10m", "20m"));
        let plan = t.ok("plan release.yaml");
        assert!(!plan.contains("resets"), "{plan}");
        t.ok("apply release.yaml");
        assert_eq!(
            digest(&t.ok("answer-message release/deploy bob confirm")),
            digest(&old)
        );

        // A new command when it fires: the plan says alice's approval goes.
        write(&rules.replace("--prod", "--canary").replace("10m", "20m"));
        let plan = t.ok("plan release.yaml");
        let line = plan.lines().find(|l| l.contains("~ notify:")).unwrap();
        assert!(line.ends_with("(resets 1 confirmation)"), "{plan}");
        t.ok("apply release.yaml");
        let shown = t.json("status release/deploy --json");
        assert_eq!(shown["attendees"][0]["status"], "pending", "{shown}");
        let new = t.ok("answer-message release/deploy bob confirm");
        assert_ne!(digest(&new), digest(&old));
        assert_eq!(digest(&new), shown["content_digest"].as_str().unwrap());
        let stderr = t.fail("submit old.txt old.txt.sig");
        assert!(stderr.contains("t_minus::trust::stale"), "{stderr}");
        t.ok("verify");
    }

    fn prune_of_a_signed_campaign_points_to_signed_cancels() {
        let keys = Keys::new();
        let t = setup(&keys);
        std::fs::write(
            t.dir().join("other.yaml"),
            "campaign: other\nevents:\n  x:\n    at: +1h\n",
        )
        .unwrap();
        for line in ["plan other.yaml --prune", "apply other.yaml --prune"] {
            let stderr = t.fail(line);
            assert!(
                stderr.contains("t_minus::trust::unsigned_delete"),
                "{stderr}"
            );
            assert!(stderr.contains("CAMPAIGN/EVENT --sign"), "{stderr}");
        }
        assert_eq!(t.json("status release/deploy --json")["state"], "pending");
        t.ok(&format!(
            "cancel release/deploy --sign {} --as alice",
            keys.alice.0.display()
        ));
        t.ok("apply other.yaml --prune");
        t.ok("verify");
    }

    cli_support::store_tests!(
        prune_of_a_signed_campaign_points_to_signed_cancels,
        a_changed_fired_hook_resets_approvals_in_plan_apply_and_answer_message,
        verify_attestation_checks_a_statement_alone_and_creates_no_store,
        confirm_sign_with_a_key_file_and_the_environment,
        a_signature_made_by_t_minus_verifies_with_ssh_keygen,
        answer_message_signed_by_ssh_keygen_is_accepted_by_submit,
        sign_through_ssh_agent,
        attest_writes_an_in_toto_statement,
    );
}
