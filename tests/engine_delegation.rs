//! Delegations: an agent answers for another while a delegation is in
//! force (everywhere or in one campaign, until a time or until revoked),
//! the log records "TO for FROM" and `verify` accounts for it; refusals
//! without one; signed delegations for events whose answers must be signed.
//!
//! Every test runs on SQLite and on PostgreSQL (`store_tests!` at the end),
//! with a pinned clock.

use miette::Diagnostic;
use t_minus::delegation::DelegationState;
use t_minus::plan::PlanOptions;
use t_minus::{AuditAction, EventState, Quorum, Response, ResponseStatus, TMinusError};

use crate::common::{self, *};
use crate::trust::{key, Keys};

fn code(err: &TMinusError) -> String {
    err.code().map(|c| c.to_string()).unwrap_or_default()
}

/// How many entries the whole log holds (and that it verifies).
fn whole_log(engine: &t_minus::Engine) -> u64 {
    engine.verify_log(None).unwrap().entries
}

fn a_delegate_answers_for_its_principal_and_the_log_says_so() {
    let (mut engine, _clock) = engine();
    let e = engine
        .schedule(spec(30, &["alice", "bob"], Quorum::All))
        .unwrap();
    let d = engine
        .delegate(&agent("alice"), &agent("carol"), None, None)
        .unwrap();
    assert_eq!(d.state(t0()), DelegationState::Active);
    let updated = engine
        .respond_for(e.id, &agent("carol"), &agent("alice"), Response::Confirm)
        .unwrap();
    assert_eq!(response(&updated, "alice"), ResponseStatus::Confirmed);
    assert_eq!(response(&updated, "bob"), ResponseStatus::Pending);
    assert_eq!(updated.state, EventState::Pending);

    let log = engine.log(e.id).unwrap();
    let last = log.last().unwrap();
    assert_eq!(last.action, AuditAction::Confirmed);
    assert_eq!(last.agent, Some(agent("carol")));
    assert_eq!(last.on_behalf_of, Some(agent("alice")));
    assert_eq!(last.detail["delegation"], d.id.to_string());

    // The delegation's own entry: its id as subject, by alice.
    let made = engine.log(d.id).unwrap();
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].action, AuditAction::Delegated);
    assert_eq!(made[0].agent, Some(agent("alice")));
    assert_eq!(made[0].detail["to"], "carol");
    assert_eq!(made[0].detail["campaign"], serde_json::Value::Null);

    // A deferral and a decline for alice work the same way; bob's confirm
    // then fires nothing, since alice declined.
    engine
        .respond_for(
            e.id,
            &agent("carol"),
            &agent("alice"),
            Response::Defer(mins(5)),
        )
        .unwrap();
    let declined = engine
        .respond_for(
            e.id,
            &agent("carol"),
            &agent("alice"),
            Response::Decline(Some("alice is away".into())),
        )
        .unwrap();
    assert_eq!(declined.state, EventState::Missed);

    // verify accounts for alice's stored answer with carol's entries.
    let report = engine.verify_log(None).unwrap();
    assert_eq!(report.events, 1);
}

fn an_answer_for_another_is_refused_without_a_delegation_in_force() {
    let (mut engine, clock) = engine();
    engine.create_campaign("release".into()).unwrap();
    engine.create_campaign("other".into()).unwrap();
    let e = engine
        .schedule(spec(60, &["alice", "bob"], Quorum::All))
        .unwrap();
    let before = whole_log(&engine);
    let refuse = |engine: &mut t_minus::Engine, why: &str| {
        let err = engine
            .respond_for(e.id, &agent("carol"), &agent("alice"), Response::Confirm)
            .unwrap_err();
        assert_eq!(code(&err), "t_minus::refused::no_delegation", "{err}");
        assert!(err.to_string().contains(why), "{err}");
        assert_eq!(
            response(&get(engine, e.id), "alice"),
            ResponseStatus::Pending
        );
    };
    // None at all.
    refuse(&mut engine, "alice has not delegated to carol");
    assert_eq!(whole_log(&engine), before, "a refusal writes nothing");

    // One for another campaign (the event is standalone).
    engine
        .delegate(&agent("alice"), &agent("carol"), None, Some("other"))
        .unwrap();
    refuse(&mut engine, "covers campaign `other` only");

    // One that expired: in force until minute 10, exclusive.
    engine
        .delegate(&agent("alice"), &agent("carol"), Some(at_min(10)), None)
        .unwrap();
    clock.set(at_min(10));
    refuse(&mut engine, "expired at");

    // One that was revoked.
    let d = engine
        .delegate(&agent("alice"), &agent("carol"), None, None)
        .unwrap();
    let revoked = engine.undelegate(&d.id.to_string()[..8]).unwrap();
    assert_eq!(revoked.revoked_at, Some(at_min(10)));
    refuse(&mut engine, "revoked at");
    let entries = engine.log(d.id).unwrap();
    let actions: Vec<AuditAction> = entries.iter().map(|e| e.action).collect();
    assert_eq!(actions, [AuditAction::Delegated, AuditAction::Undelegated]);

    // A delegation to another agent lets that agent answer, not carol.
    engine
        .delegate(&agent("alice"), &agent("dave"), None, None)
        .unwrap();
    refuse(&mut engine, "revoked at");
    engine
        .respond_for(e.id, &agent("dave"), &agent("alice"), Response::Confirm)
        .unwrap();

    // Delegating never makes a non-attendee's answer count.
    engine
        .delegate(&agent("mallory"), &agent("carol"), None, None)
        .unwrap();
    let err = engine
        .respond_for(e.id, &agent("carol"), &agent("mallory"), Response::Confirm)
        .unwrap_err();
    assert_eq!(code(&err), "t_minus::refused::not_attendee", "{err}");
    engine.verify_log(None).unwrap();
}

fn a_campaign_delegation_covers_that_campaigns_events_only() {
    let (mut engine, _clock) = engine();
    engine
        .apply_manifests(
            &desired(
                r#"
campaign: release
events:
  review:
    kind: review
    at: +1h
    attendees: [alice, bob]
"#,
            ),
            &PlanOptions::default(),
        )
        .unwrap();
    let review = engine.resolve_event("release/review").unwrap();
    let standalone = engine.schedule(spec(30, &["alice"], Quorum::All)).unwrap();
    engine
        .delegate(&agent("alice"), &agent("carol"), None, Some("release"))
        .unwrap();
    let (updated, campaign) = engine
        .respond_to_for(
            "release/review",
            &agent("carol"),
            Some(&agent("alice")),
            Response::Confirm,
        )
        .unwrap();
    assert_eq!(campaign.as_deref(), Some("release"));
    assert_eq!(updated.id, review);
    assert_eq!(response(&updated, "alice"), ResponseStatus::Confirmed);
    let err = engine
        .respond_for(
            standalone.id,
            &agent("carol"),
            &agent("alice"),
            Response::Confirm,
        )
        .unwrap_err();
    assert_eq!(code(&err), "t_minus::refused::no_delegation");
    let listed = engine.delegations().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].campaign_name.as_deref(), Some("release"));
}

fn bad_delegations_are_refused_and_change_nothing() {
    let (mut engine, _clock) = engine();
    let before = whole_log(&engine);
    let cases = [
        (
            engine
                .delegate(&agent("alice"), &agent("alice"), None, None)
                .unwrap_err(),
            "t_minus::input::delegation",
        ),
        (
            engine
                .delegate(&agent("alice"), &agent("bob"), Some(t0()), None)
                .unwrap_err(),
            "t_minus::input::delegation_until",
        ),
        (
            engine
                .delegate(&agent("alice"), &agent("bob"), None, Some("nope"))
                .unwrap_err(),
            "t_minus::not_found::campaign",
        ),
        (
            engine
                .delegate(&agent(" "), &agent("bob"), None, None)
                .unwrap_err(),
            "t_minus::input::agent_id",
        ),
        (
            engine.undelegate("0000").unwrap_err(),
            "t_minus::not_found::delegation",
        ),
    ];
    for (err, expected) in cases {
        assert_eq!(code(&err), expected, "{err}");
    }
    assert_eq!(whole_log(&engine), before);
    assert!(engine.delegations().unwrap().is_empty());

    let d = engine
        .delegate(&agent("alice"), &agent("bob"), None, None)
        .unwrap();
    engine.undelegate(&d.id.to_string()).unwrap();
    let err = engine.undelegate(&d.id.to_string()).unwrap_err();
    assert_eq!(code(&err), "t_minus::refused::delegation_revoked");

    // An agent cannot answer for itself "under a delegation".
    let e = engine.schedule(spec(30, &["alice"], Quorum::All)).unwrap();
    let err = engine
        .respond_for(e.id, &agent("alice"), &agent("alice"), Response::Confirm)
        .unwrap_err();
    assert_eq!(code(&err), "t_minus::input::delegation");
}

/// Campaign `release` whose answers are signed; carol is a signer but
/// no attendee.
fn signed_manifest(keys: &Keys) -> String {
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
    attendees: [alice, bob]
"#,
        keys.alice.1, keys.bob.1, keys.carol.1
    )
}

fn a_signed_event_takes_a_delegated_answer_only_under_a_delegation_signed_by_the_principal() {
    let keys = Keys::new();
    let (mut engine, _clock) = common::engine();
    engine
        .apply_manifests(&desired(&signed_manifest(&keys)), &PlanOptions::default())
        .unwrap();
    let id = engine.resolve_event("release/deploy").unwrap();
    // carol's answer for alice, signed with carol's key.
    let carol_confirms_for_alice = |engine: &mut t_minus::Engine| {
        engine.respond_with_key_for(
            id,
            &agent("carol"),
            Some(&agent("alice")),
            Response::Confirm,
            &key(&keys.carol.0),
        )
    };
    // A delegation from alice to carol, signed with the key at `path`.
    let alice_delegates_to_carol =
        |engine: &mut t_minus::Engine, campaign: Option<&str>, path: &std::path::Path| {
            engine.delegate_with_key(&agent("alice"), &agent("carol"), None, campaign, &key(path))
        };

    // An unsigned answer for alice is refused as unsigned, delegation or not.
    engine
        .delegate(&agent("alice"), &agent("carol"), None, None)
        .unwrap();
    let err = engine
        .respond_for(id, &agent("carol"), &agent("alice"), Response::Confirm)
        .unwrap_err();
    assert_eq!(code(&err), "t_minus::trust::unsigned", "{err}");

    // Signed by carol, but the delegation in force is unsigned.
    let err = carol_confirms_for_alice(&mut engine).unwrap_err();
    assert_eq!(code(&err), "t_minus::refused::unsigned_delegation", "{err}");

    // A delegation "signed" with bob's key does not speak for alice.
    alice_delegates_to_carol(&mut engine, Some("release"), &keys.bob.0).unwrap_err();
    let err = carol_confirms_for_alice(&mut engine).unwrap_err();
    assert_eq!(code(&err), "t_minus::refused::unsigned_delegation", "{err}");
    assert_eq!(
        response(&get(&engine, id), "alice"),
        ResponseStatus::Pending
    );

    // Signed by alice: carol's signed answer for alice is taken.
    let d = alice_delegates_to_carol(&mut engine, None, &keys.alice.0).unwrap();
    assert!(d.signed.is_some());
    let updated = carol_confirms_for_alice(&mut engine).unwrap();
    assert_eq!(response(&updated, "alice"), ResponseStatus::Confirmed);
    let links = engine.log_links(id).unwrap();
    let last = links.last().unwrap();
    assert_eq!(last.entry.agent, Some(agent("carol")));
    assert_eq!(last.entry.on_behalf_of, Some(agent("alice")));
    assert_eq!(last.entry.detail["delegation"], d.id.to_string());
    let message = last.message.as_deref().unwrap();
    assert!(
        message.contains("\nagent: carol\non-behalf-of: alice\nanswer: confirm\n"),
        "{message}"
    );
    let report = engine.verify_log(None).unwrap();
    assert_eq!(report.signatures, 1);

    // The signed delegation message cannot be submitted twice.
    let signed = d.signed.unwrap();
    let err = engine
        .delegate_signed(signed.message.as_bytes(), &signed.signature)
        .unwrap_err();
    assert_eq!(code(&err), "t_minus::trust::nonce", "{err}");
}

common::store_tests!(
    a_delegate_answers_for_its_principal_and_the_log_says_so,
    an_answer_for_another_is_refused_without_a_delegation_in_force,
    a_campaign_delegation_covers_that_campaigns_events_only,
    bad_delegations_are_refused_and_change_nothing,
    a_signed_event_takes_a_delegated_answer_only_under_a_delegation_signed_by_the_principal,
);

/// The command line and the HTTP API.
mod cli {
    use serde_json::{json, Value};

    use crate::cli_support::{self, T};
    use crate::serve::{answer_of, token, Server};

    fn delegate_list_answer_for_and_undelegate_on_the_command_line() {
        let t = T::new();
        let gate = t.schedule("deploy +30m --name gate --attendees alice,bob");
        let stderr = t.fail("confirm gate carol --for alice");
        assert!(
            stderr.contains("t_minus::refused::no_delegation"),
            "{stderr}"
        );
        assert!(stderr.contains("t-minus delegate FROM TO"), "{stderr}");

        let out = t.ok("delegate alice carol --until +1h");
        assert!(
            out.contains("carol may answer for alice (every event, until 2025-06-06T15:50:00Z)"),
            "{out}"
        );
        let listed = t.json("delegations --json");
        let listed = listed.as_array().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["from"], "alice");
        assert_eq!(listed[0]["to"], "carol");
        assert_eq!(listed[0]["state"], "active");
        assert_eq!(listed[0]["until"], "2025-06-06T15:50:00Z");
        assert_eq!(listed[0]["signed"], false);
        let id = listed[0]["id"].as_str().unwrap().to_string();

        let out = t.ok("confirm gate carol --for alice");
        assert!(out.contains("✅ carol for alice confirmed gate"), "{out}");
        let event = t.event(&gate);
        assert_eq!(answer_of(&event, "alice"), "confirmed");
        let log = t.ok("log gate");
        assert!(log.contains("confirmed  by carol for alice"), "{log}");
        let entries = t.json("log gate --json");
        let last = entries.as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["agent"], "carol");
        assert_eq!(last["on_behalf_of"], "alice");
        t.ok("verify");

        let out = t.ok(&format!("undelegate {}", &id[..8]));
        assert!(out.contains("carol no longer answers for alice"), "{out}");
        assert_eq!(t.json("delegations --json"), json!([]));
        let all = t.json("delegations --all --json");
        assert_eq!(all[0]["state"], "revoked");
        let stderr = t.fail("decline gate carol --for alice");
        assert!(stderr.contains("was revoked at"), "{stderr}");
        let stderr = t.fail(&format!("undelegate {id}"));
        assert!(
            stderr.contains("t_minus::refused::delegation_revoked"),
            "{stderr}"
        );
        let stderr = t.fail("delegate alice alice");
        assert!(stderr.contains("t_minus::input::delegation"), "{stderr}");
        t.ok("verify");
    }

    fn an_agent_token_answers_for_a_delegator_over_http() {
        let t = T::new();
        t.schedule("deploy +30m --name gate --attendees alice,bob");
        let carol = token(&t, "carol", "agent");
        let server = Server::start(&t, &[]);
        let http = ureq::Agent::new_with_defaults();
        let post = |body: Value| {
            let mut reply = http
                .post(format!("{}/v1/events/gate/confirm", server.base))
                .header("Authorization", format!("Bearer {carol}"))
                .header("Content-Type", "application/json")
                .config()
                .http_status_as_error(false)
                .build()
                .send(body.to_string())
                .unwrap();
            let status = reply.status().as_u16();
            let text = reply.body_mut().read_to_string().unwrap();
            (status, serde_json::from_str::<Value>(&text).unwrap())
        };
        let (status, body) = post(json!({ "for": "alice" }));
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["error"]["code"], "t_minus::refused::no_delegation");
        t.ok("delegate alice carol");
        let (status, body) = post(json!({ "for": "alice" }));
        assert_eq!(status, 200, "{body}");
        assert_eq!(answer_of(&body, "alice"), "confirmed");
        // The token answers as its own agent only, for whomever it answers.
        let (status, body) = post(json!({ "agent": "dave", "for": "alice" }));
        assert_eq!(status, 403, "{body}");
        drop(server);
        let log = t.ok("log gate");
        assert!(log.contains("confirmed  by carol for alice"), "{log}");
    }

    cli_support::store_tests!(
        delegate_list_answer_for_and_undelegate_on_the_command_line,
        an_agent_token_answers_for_a_delegator_over_http,
    );
}
