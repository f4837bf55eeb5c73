//! The versioned formats and the once-only rule of signed answers: answer
//! messages v1 and v2 at the engine, audit entries v1 then v2 in one store,
//! replayed signed answers (a reused nonce, an earlier answer after a later
//! one) refused by the engine and reported by `verify`, and signed cancels.
//!
//! Every engine test runs on SQLite and on PostgreSQL; the CLI tests too.

use std::path::Path;

use chrono::Duration;
use t_minus::plan::PlanOptions;
use t_minus::trust::chain::{entry_hash, entry_hash_in, BreakKind, ChainHash, EntryFormat};
use t_minus::trust::message::{MessageVersion, Passkey};
use t_minus::trust::{Answer, AnswerMessage, TrustError};
use t_minus::{AuditAction, Engine, EventState, FixedClock, Response, ResponseStatus, TMinusError};
use uuid::Uuid;

use crate::cli_support::{self, T};
use crate::common::{self, agent, desired, t0};
use crate::trust::{key, Keys};

/// Campaign `release` with alice, bob and carol as signers (mallory is
/// none): `deploy` (quorum 2 of alice, bob, carol) and `announce` after it,
/// every answer signed.
fn manifest(keys: &Keys) -> String {
    format!(
        r#"
campaign: release
signers:
  alice: "{}"
  bob: "{}"
  carol: "{}"
events:
  deploy:
    kind: deploy
    at: +1h
    quorum: 2
    attendees: [alice, bob, carol]
    payload: {{ version: "2.0.0" }}
  announce:
    kind: custom
    at: +2h
    needs: [deploy]
    attendees: [alice]
"#,
        keys.alice.1, keys.bob.1, keys.carol.1
    )
}

fn trust_error(err: TMinusError) -> TrustError {
    match err {
        TMinusError::Trust(e) => e,
        other => panic!("not a trust error: {other:?}"),
    }
}

/// The release campaign applied to a store other connections can reach.
fn applied(keys: &Keys) -> (common::stores::TempStore, String, Engine, FixedClock, Uuid) {
    let (guard, location) = common::store();
    let clock = FixedClock::new(t0());
    let mut engine = common::open_engine(&location, &clock);
    engine
        .apply_manifests(&desired(&manifest(keys)), &PlanOptions::default())
        .unwrap();
    let id = engine.resolve_event("release/deploy").unwrap();
    (guard, location, engine, clock, id)
}

/// `message` signed with the key file `with`.
fn sign(message: &AnswerMessage, with: &Path) -> (Vec<u8>, String) {
    let bytes = message.to_bytes();
    let sig = t_minus::trust::sign_with_key_file(with, &bytes).unwrap();
    (bytes, sig.to_armored())
}

/// A message of `who` answering `answer` to `id` at the engine clock.
fn message(engine: &Engine, id: Uuid, who: &str, answer: Answer) -> AnswerMessage {
    engine.answer_message(id, &agent(who), answer).unwrap()
}

fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The SQL that appends `entry` (with its message and signature) to the
/// log, chained after `prev` with a hash in `format`.
fn append_sql(
    format: EntryFormat,
    prev: ChainHash,
    entry: &t_minus::AuditEntry,
    message: Option<&str>,
    signature: Option<&str>,
) -> String {
    let hash = entry_hash_in(format, &prev, entry, message.map(str::as_bytes), signature);
    let opt = |v: Option<&str>| v.map_or("NULL".to_string(), quoted);
    format!(
        "INSERT INTO {{audit}} (event_id, at_ms, recorded_ms, agent, action, detail, prev, hash, message, signature) \
         VALUES ({}, {}, {}, {}, '{}', {}, {}, {}, {}, {})",
        common::stores::id_sql(entry.event),
        entry.at.timestamp_millis(),
        entry.recorded_at.timestamp_millis(),
        opt(entry.agent.as_ref().map(|a| a.as_str())),
        entry.action,
        quoted(&entry.detail.to_string()),
        common::stores::hash_sql(&prev.hex()),
        common::stores::hash_sql(&hash.hex()),
        opt(message),
        opt(signature),
    )
}

/// Every entry of the store's log in commit order (the events of the
/// release campaign are the only ones).
/// Every entry of the log (the events' and the campaign's), in order.
fn all_links(engine: &Engine) -> Vec<t_minus::store::StoredLink> {
    let mut tx = engine.store().read().unwrap();
    tx.audit_links(0, 100_000).unwrap()
}

fn head(engine: &Engine) -> ChainHash {
    engine.verify_log(None).unwrap().head
}

/// Bob confirms (signed), then declines (signed); a store writer appends a
/// correctly chained copy of his confirm entry and sets his row back to
/// confirmed. `verify` and `verify --since` report the reused nonce; the
/// engine refuses the old confirm message when it is submitted again.
fn a_replayed_signed_confirm_is_refused_and_reported() {
    let keys = Keys::new();
    let (_guard, location, mut engine, clock, id) = applied(&keys);
    let confirm = sign(&message(&engine, id, "bob", Answer::Confirm), &keys.bob.0);
    engine.respond_signed(&confirm.0, &confirm.1).unwrap();
    clock.advance(Duration::seconds(1));
    let decline = sign(
        &message(&engine, id, "bob", Answer::Decline { reason: None }),
        &keys.bob.0,
    );
    engine.respond_signed(&decline.0, &decline.1).unwrap();
    let kept = head(&engine);

    // The engine: the same message again is refused, and writes nothing.
    let before = engine.log(id).unwrap().len();
    let err = trust_error(engine.respond_signed(&confirm.0, &confirm.1).unwrap_err());
    assert!(matches!(err, TrustError::NonceReused { .. }), "{err:?}");
    assert_eq!(engine.log(id).unwrap().len(), before);

    // The store writer: a chained copy of the confirm entry.
    let links = engine.log_links(id).unwrap();
    let original = links
        .iter()
        .find(|l| l.entry.action == AuditAction::Confirmed)
        .unwrap();
    let mut copy = original.entry.clone();
    copy.at += Duration::seconds(2);
    copy.recorded_at += Duration::seconds(2);
    common::stores::tamper(
        &location,
        &format!(
            "{}; UPDATE {{attendees}} SET status = 'confirmed' WHERE event_id = {} AND agent = 'bob'",
            append_sql(
                EntryFormat::V2,
                kept,
                &copy,
                original.message.as_deref(),
                original.signature.as_deref()
            ),
            common::stores::id_sql(id)
        ),
    );
    let reader = common::open_engine(&location, &clock);
    assert_eq!(
        reader.get_event(id).unwrap().unwrap().attendees[1].1,
        ResponseStatus::Confirmed
    );
    for since in [None, Some(kept)] {
        let err = trust_error(reader.verify_log(since).unwrap_err());
        assert!(matches!(err, TrustError::SignedEntry { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("nonce"), "{text}");
        assert!(text.contains("already used by entry seq"), "{text}");
    }
    // Scoped to the event, too.
    let err = trust_error(reader.verify_log_of(None, Some(&[id])).unwrap_err());
    assert!(err.to_string().contains("already used"), "{err}");
}

/// An answer signed before a later one that was accepted cannot come back
/// within its time window: the engine refuses it, and `verify` reports an
/// entry that carries it.
fn an_earlier_signed_answer_cannot_follow_a_later_one() {
    let keys = Keys::new();
    let (_guard, location, mut engine, clock, id) = applied(&keys);
    let held = sign(&message(&engine, id, "bob", Answer::Confirm), &keys.bob.0);
    clock.advance(Duration::seconds(30));
    let decline = sign(
        &message(&engine, id, "bob", Answer::Decline { reason: None }),
        &keys.bob.0,
    );
    engine.respond_signed(&decline.0, &decline.1).unwrap();
    let before = engine.log(id).unwrap().len();
    let err = trust_error(engine.respond_signed(&held.0, &held.1).unwrap_err());
    assert!(matches!(err, TrustError::AnswerOrder { .. }), "{err:?}");
    assert!(
        err.to_string().contains("before its answer signed at"),
        "{err}"
    );
    assert_eq!(engine.log(id).unwrap().len(), before, "nothing written");
    assert_eq!(
        engine.get_event(id).unwrap().unwrap().attendees[1].1,
        ResponseStatus::Declined
    );
    // A message made at the same millisecond as the last one is not earlier.
    let again = sign(&message(&engine, id, "bob", Answer::Confirm), &keys.bob.0);
    engine.respond_signed(&again.0, &again.1).unwrap();
    engine.verify_log(None).unwrap();

    // The held message written into the log by a store writer.
    let kept = head(&engine);
    let template = engine
        .log_links(id)
        .unwrap()
        .into_iter()
        .rfind(|l| l.entry.action == AuditAction::Confirmed)
        .unwrap();
    let mut entry = template.entry.clone();
    entry.at += Duration::seconds(1);
    entry.recorded_at += Duration::seconds(1);
    entry.detail = template.entry.detail.clone();
    common::stores::tamper(
        &location,
        &append_sql(
            EntryFormat::V2,
            kept,
            &entry,
            Some(std::str::from_utf8(&held.0).unwrap()),
            Some(&held.1),
        ),
    );
    let reader = common::open_engine(&location, &clock);
    for since in [None, Some(kept)] {
        let err = trust_error(reader.verify_log(since).unwrap_err());
        assert!(matches!(err, TrustError::SignedEntry { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("an earlier answer came back after a later one"),
            "{err}"
        );
    }
}

/// A store whose first entries are hashed in the entry format v1 and whose
/// later ones in v2 verifies, also against a v1 head; a v1 entry appended
/// after v2 ones is reported.
fn a_store_with_v1_then_v2_entries_verifies() {
    let keys = Keys::new();
    let (_guard, location, mut engine, clock, id) = applied(&keys);
    engine
        .respond_with_key(id, &agent("alice"), Response::Confirm, &key(&keys.alice.0))
        .unwrap();
    // Rewrite the whole log so far as a v1 chain, as an older build wrote it.
    let mut prev = ChainHash::GENESIS;
    let mut sql = String::new();
    for link in all_links(&engine) {
        let hash = entry_hash_in(
            EntryFormat::V1,
            &prev,
            &link.entry,
            link.message.as_deref().map(str::as_bytes),
            link.signature.as_deref(),
        );
        assert_ne!(
            hash,
            entry_hash(
                &prev,
                &link.entry,
                link.message.as_deref().map(str::as_bytes),
                link.signature.as_deref()
            ),
            "the two formats never hash alike"
        );
        sql.push_str(&format!(
            "UPDATE {{audit}} SET prev = {}, hash = {} WHERE seq = {};\n",
            common::stores::hash_sql(&prev.hex()),
            common::stores::hash_sql(&hash.hex()),
            link.entry.seq
        ));
        prev = hash;
    }
    common::stores::tamper(&location, &sql);
    let v1_head = prev;
    let mut engine = common::open_engine(&location, &clock);
    let checked = engine.verify_log(None).unwrap();
    assert_eq!(checked.head, v1_head);
    assert_eq!(checked.signatures, 1);

    // New entries are v2, chained after the v1 ones.
    clock.advance(Duration::seconds(1));
    engine
        .respond_with_key(id, &agent("bob"), Response::Confirm, &key(&keys.bob.0))
        .unwrap();
    let links = all_links(&engine);
    let last = links.last().unwrap();
    let v2 = entry_hash(
        &last.prev.as_deref().unwrap().parse().unwrap(),
        &last.entry,
        last.message.as_deref().map(str::as_bytes),
        last.signature.as_deref(),
    );
    assert_eq!(last.hash.as_deref(), Some(v2.hex().as_str()));
    let checked = engine.verify_log(Some(v1_head)).unwrap();
    assert_eq!(checked.signatures, 2);
    assert_eq!(
        engine.get_event(id).unwrap().unwrap().state,
        EventState::Fired
    );

    // A v1 entry after v2 ones is a downgrade.
    let mut extra = last.entry.clone();
    extra.action = AuditAction::Opened;
    extra.agent = None;
    extra.detail = serde_json::json!({});
    common::stores::tamper(
        &location,
        &append_sql(EntryFormat::V1, checked.head, &extra, None, None),
    );
    let err = trust_error(
        common::open_engine(&location, &clock)
            .verify_log(None)
            .unwrap_err(),
    );
    match err {
        TrustError::ChainBroken { kind, .. } => {
            assert!(matches!(kind, BreakKind::Downgrade { .. }), "{kind:?}")
        }
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

/// Messages in format v1 are still accepted; the v2 fields the engine does
/// not support yet are refused with their own code; a v1 message carrying
/// a v2 field is refused as such.
fn v1_messages_are_accepted_and_unsupported_v2_fields_refused() {
    let keys = Keys::new();
    let (_guard, _location, mut engine, _clock, id) = applied(&keys);
    let v1 = message(&engine, id, "alice", Answer::Confirm)
        .in_version(MessageVersion::V1)
        .unwrap();
    assert!(v1.render().starts_with("t-minus answer v1\n"));
    let (bytes, sig) = sign(&v1, &keys.alice.0);
    engine.respond_signed(&bytes, &sig).unwrap();

    let before = engine.log(id).unwrap().len();
    // A delegated answer is taken (see engine_delegation); a delegated
    // cancel is not.
    let delegated = message(&engine, id, "carol", Answer::Cancel { reason: None })
        .on_behalf_of(agent("bob"))
        .unwrap();
    // A break-glass is a `confirm`; on any other answer the field is
    // refused (a signed break-glass is tested in engine_breakglass).
    let glass = message(&engine, id, "carol", Answer::Decline { reason: None })
        .break_glass("sev1: the site is down".into())
        .unwrap();
    let listed_nowhere = message(&engine, id, "carol", Answer::Confirm)
        .break_glass("sev1: the site is down".into())
        .unwrap();
    let (bytes, sig) = sign(&listed_nowhere, &keys.carol.0);
    let err = engine.respond_signed(&bytes, &sig).unwrap_err();
    assert!(
        matches!(err, TMinusError::BreakGlassRefused { .. }),
        "{err:?}"
    );
    let passkey = message(&engine, id, "carol", Answer::Confirm)
        .passkey(Passkey {
            credential: "AAECAwQ".into(),
            origin: "https://approve.example.com".into(),
            rp_id: "example.com".into(),
        })
        .unwrap();
    for (unsupported, what) in [
        (delegated, "on-behalf-of"),
        (glass, "break-glass"),
        (passkey, "passkey"),
    ] {
        let (bytes, sig) = sign(&unsupported, &keys.carol.0);
        let err = trust_error(engine.respond_signed(&bytes, &sig).unwrap_err());
        assert!(matches!(err, TrustError::Unsupported { .. }), "{err:?}");
        assert!(err.to_string().contains(what), "{err}");
        let code = miette::Diagnostic::code(&err).unwrap().to_string();
        assert_eq!(code, "t_minus::trust::unsupported");
    }
    // A v1 message with `on-behalf-of:` is refused before any signature.
    let text = String::from_utf8(message(&engine, id, "carol", Answer::Confirm).to_bytes())
        .unwrap()
        .replacen("t-minus answer v2", "t-minus answer v1", 1)
        .replacen("agent: carol\n", "agent: carol\non-behalf-of: bob\n", 1);
    let (_, sig) = sign(
        &message(&engine, id, "carol", Answer::Confirm),
        &keys.carol.0,
    );
    let err = trust_error(engine.respond_signed(text.as_bytes(), &sig).unwrap_err());
    assert!(
        matches!(err, TrustError::MessageVersion { line: 5, .. }),
        "{err:?}"
    );
    assert_eq!(engine.log(id).unwrap().len(), before, "nothing written");
    engine.verify_log(None).unwrap();
}

/// An event whose answers must be signed is cancelled only by a signed
/// cancel of one of its signers; an unsigned cancel, a cancel by someone
/// without a key, and an unsigned cancel of the campaign are refused and
/// write nothing. `verify` checks the signed cancel's signature.
fn cancelling_a_signed_event_needs_a_signer() {
    let keys = Keys::new();
    let (_guard, location, mut engine, clock, id) = applied(&keys);
    let announce = engine.resolve_event("release/announce").unwrap();
    let campaign = engine.resolve_campaign("release").unwrap();
    let before = engine.log(id).unwrap().len();

    let err = trust_error(engine.cancel_event(id, None).unwrap_err());
    assert!(matches!(err, TrustError::UnsignedCancel { .. }), "{err:?}");
    assert_eq!(
        miette::Diagnostic::code(&err).unwrap().to_string(),
        "t_minus::trust::unsigned_cancel"
    );
    let err = trust_error(engine.cancel_campaign(campaign, None).unwrap_err());
    assert!(matches!(err, TrustError::UnsignedCancel { .. }), "{err:?}");
    assert!(err.to_string().contains("campaign release"), "{err}");
    let err = trust_error(
        engine
            .cancel_with_key(id, &agent("mallory"), None, &key(&keys.mallory.0))
            .unwrap_err(),
    );
    assert!(matches!(err, TrustError::NoSigner { .. }), "{err:?}");
    // Signed by bob's key in alice's name.
    let err = trust_error(
        engine
            .cancel_with_key(id, &agent("alice"), None, &key(&keys.bob.0))
            .unwrap_err(),
    );
    assert!(matches!(err, TrustError::WrongKey { .. }), "{err:?}");
    // A reason over the limit.
    let long = "x".repeat(t_minus::engine::MAX_REASON_BYTES + 1);
    let err = engine
        .cancel_with_key(id, &agent("alice"), Some(long), &key(&keys.alice.0))
        .unwrap_err();
    assert!(matches!(err, TMinusError::TextTooLong { .. }), "{err:?}");
    assert_eq!(engine.log(id).unwrap().len(), before, "nothing written");
    assert_eq!(
        engine.get_event(id).unwrap().unwrap().state,
        EventState::Pending
    );

    // Signed by carol (an attendee and a signer): cancelled, its dependent
    // too; the entry keeps the message and names the key.
    let event = engine
        .cancel_with_key(
            id,
            &agent("carol"),
            Some("rollback".into()),
            &key(&keys.carol.0),
        )
        .unwrap();
    assert_eq!(event.state, EventState::Cancelled);
    assert_eq!(
        engine.get_event(announce).unwrap().unwrap().state,
        EventState::Cancelled
    );
    let links = engine.log_links(id).unwrap();
    let last = links.last().unwrap();
    assert_eq!(last.entry.action, AuditAction::Cancelled);
    assert_eq!(last.entry.agent, Some(agent("carol")));
    assert_eq!(last.entry.detail["reason"], "rollback");
    assert!(last.entry.detail["key"]
        .as_str()
        .unwrap()
        .starts_with("SHA256:"));
    let text = last.message.as_deref().unwrap();
    assert!(
        text.contains("\nagent: carol\nanswer: cancel\nreason: \"rollback\"\n"),
        "{text}"
    );
    assert_eq!(engine.verify_log(None).unwrap().signatures, 1);
    // Nothing left to cancel: the campaign cancel is accepted.
    assert!(engine.cancel_campaign(campaign, None).unwrap().is_empty());

    // A cancel entry signed by mallory's key in alice's name is reported.
    let kept = head(&engine);
    let mut forged = last.entry.clone();
    forged.at += Duration::seconds(1);
    forged.agent = Some(agent("alice"));
    let (bytes, sig) = sign(
        &message(&engine, id, "alice", Answer::Cancel { reason: None }),
        &keys.mallory.0,
    );
    common::stores::tamper(
        &location,
        &append_sql(
            EntryFormat::V2,
            kept,
            &forged,
            Some(std::str::from_utf8(&bytes).unwrap()),
            Some(&sig),
        ),
    );
    let err = trust_error(
        common::open_engine(&location, &clock)
            .verify_log(None)
            .unwrap_err(),
    );
    assert!(err.to_string().contains("does not verify"), "{err}");
}

/// A cancel submitted as a message signed elsewhere, through
/// `respond_signed`.
fn a_cancel_message_is_submitted_like_an_answer() {
    let keys = Keys::new();
    let (_guard, _location, mut engine, _clock, id) = applied(&keys);
    let cancel = message(&engine, id, "alice", Answer::Cancel { reason: None });
    assert!(cancel.render().contains("\nanswer: cancel\n"));
    let (bytes, sig) = sign(&cancel, &keys.alice.0);
    let event = engine.respond_signed(&bytes, &sig).unwrap();
    assert_eq!(event.state, EventState::Cancelled);
    // Once final, another signed cancel is refused as for any final event.
    let again = sign(
        &message(&engine, id, "bob", Answer::Cancel { reason: None }),
        &keys.bob.0,
    );
    let err = engine.respond_signed(&again.0, &again.1).unwrap_err();
    assert!(matches!(err, TMinusError::EventFinal { .. }), "{err:?}");
    engine.verify_log(None).unwrap();
}

common::store_tests!(
    a_replayed_signed_confirm_is_refused_and_reported,
    an_earlier_signed_answer_cannot_follow_a_later_one,
    a_store_with_v1_then_v2_entries_verifies,
    v1_messages_are_accepted_and_unsupported_v2_fields_refused,
    cancelling_a_signed_event_needs_a_signer,
    a_cancel_message_is_submitted_like_an_answer,
);

/// The CLI: `cancel --sign --as`, an unsigned cancel refused with its code
/// and help, `answer-message … cancel` printing v2.
mod cli {
    use super::*;

    fn setup(keys: &Keys) -> T {
        let t = T::new();
        std::fs::write(t.dir().join("release.yaml"), manifest(keys)).unwrap();
        t.ok("apply release.yaml");
        for (name, path) in [("alice", &keys.alice.0), ("mallory", &keys.mallory.0)] {
            std::fs::copy(path, t.dir().join(name)).unwrap();
        }
        t
    }

    fn signed_cancel_on_the_command_line() {
        let keys = Keys::new();
        let t = setup(&keys);
        let stderr = t.fail("cancel release/deploy");
        assert!(
            stderr.contains("t_minus::trust::unsigned_cancel"),
            "{stderr}"
        );
        assert!(
            stderr.contains("--sign KEYFILE|agent --as AGENT"),
            "{stderr}"
        );
        let stderr = t.fail("cancel release");
        assert!(
            stderr.contains("t_minus::trust::unsigned_cancel"),
            "{stderr}"
        );
        let stderr = t.fail("cancel release/deploy --sign mallory --as mallory");
        assert!(stderr.contains("t_minus::trust::no_signer"), "{stderr}");
        let stderr = t.fail("cancel release --sign alice --as alice");
        assert!(stderr.contains("t_minus::trust::cancel_target"), "{stderr}");
        assert!(
            stderr.contains("a signed cancel names one event"),
            "{stderr}"
        );
        let message = t.ok("answer-message release/deploy alice cancel --reason stop");
        assert!(message.starts_with("t-minus answer v2\n"), "{message}");
        assert!(
            message.contains("\nanswer: cancel\nreason: \"stop\"\n"),
            "{message}"
        );
        let out = t.ok("cancel release/deploy --sign alice --as alice --reason rollback");
        assert!(out.contains("🛑 Cancelled release/deploy"), "{out}");
        let out = t.ok("verify");
        assert!(out.contains("1 signature verified"), "{out}");
    }

    fn size_limits_on_the_command_line() {
        let t = T::new();
        let kind = "k".repeat(65);
        let stderr = t.fail(&format!("schedule {kind} +1h --attendees a"));
        assert!(stderr.contains("t_minus::input::too_long"), "{stderr}");
        assert!(
            stderr.contains("the kind is 65 bytes long; the limit is 64"),
            "{stderr}"
        );
        let payload = format!("--payload={{\"blob\":\"{}\"}}", "p".repeat(65_536));
        let out = t.run_args(&["schedule", "deploy", "+1h", "--attendees", "a", &payload]);
        assert_eq!(out.code, 1, "{}", out.stdout);
        assert!(
            out.stderr.contains("the payload is 65547 bytes long"),
            "{}",
            out.stderr
        );
        let out = t.ok("status --all");
        assert!(
            out.trim().is_empty() || out.contains("No events"),
            "nothing stored: {out}"
        );
    }

    fn submit_takes_messages_of_both_versions() {
        let keys = Keys::new();
        let t = setup(&keys);
        let v2 = t.ok("answer-message release/deploy alice confirm");
        assert!(v2.starts_with("t-minus answer v2\n"), "{v2}");
        let v1 = v2.replacen("t-minus answer v2", "t-minus answer v1", 1);
        let file = t.dir().join("v1.txt");
        std::fs::write(&file, &v1).unwrap();
        let sig = crate::trust::ssh_keygen_sign(&keys.alice.0, "t-minus", &file);
        std::fs::write(t.dir().join("v1.txt.sig"), sig).unwrap();
        let out = t.ok("submit v1.txt v1.txt.sig");
        assert!(out.contains("alice confirmed release/deploy"), "{out}");
        // A field out of order is refused with its code, before any check
        // of the signature.
        let text = t.ok("answer-message release/deploy bob confirm");
        let swapped = text.replacen(
            "agent: bob\nanswer: confirm\n",
            "answer: confirm\nagent: bob\n",
            1,
        );
        std::fs::write(t.dir().join("bad.txt"), swapped).unwrap();
        let stderr = t.fail("submit bad.txt v1.txt.sig");
        assert!(stderr.contains("t_minus::trust::message_order"), "{stderr}");
        assert!(
            stderr.contains("`agent` must come before `answer`"),
            "{stderr}"
        );
        let out = t.ok("verify");
        assert!(out.contains("1 signature verified"), "{out}");
    }

    cli_support::store_tests!(
        submit_takes_messages_of_both_versions,
        signed_cancel_on_the_command_line,
        size_limits_on_the_command_line
    );
}
