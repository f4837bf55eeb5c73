//! The trust building blocks: content digests, answer messages,
//! `allowed_signers`, `sshsig` signing and verification (interoperating with
//! OpenSSH's `ssh-keygen` and `ssh-agent`), and the audit hash chain.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::json;
use ssh_key::{HashAlg, SshSig};
use t_minus::audit::{AuditAction, AuditEntry};
use t_minus::state::{EventState, ResponseStatus};
use t_minus::trust::chain::{
    entry_hash, entry_hash_in, BreakKind, ChainHash, ChainLink, ChainVerifier, EntryFormat,
};
use t_minus::trust::{
    content_digest, sign_with_agent, sign_with_key_file, sign_with_private_key, verify_chain,
    verify_signature, Answer, AnswerMessage, ContentDigest, Signers, SshSignature, TrustError,
};
use t_minus::{AgentId, EventKind, FirePolicy, Quorum, TMinusEvent};
use tempfile::TempDir;
use uuid::Uuid;

// ---------------------------------------------------------------- helpers

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn agent(name: &str) -> AgentId {
    AgentId(name.to_string())
}

fn event() -> TMinusEvent {
    TMinusEvent {
        rules_digest: None,
        id: Uuid::parse_str("6f1c0e2a-5b7d-4c1e-9a3f-2d8e4b6a7c10").unwrap(),
        kind: EventKind::Deploy,
        scheduled_at: t("2026-11-28T12:00:00Z"),
        t_minus: Duration::minutes(5),
        organizer: agent("lead"),
        attendees: vec![
            (agent("alice"), ResponseStatus::Pending),
            (agent("bob"), ResponseStatus::Confirmed),
        ],
        quorum: 2,
        payload: json!({"version": "2.0.1", "replicas": 3, "flags": {"b": true, "a": null}}),
        state: EventState::Pending,
        campaign: Some(Uuid::parse_str("11111111-2222-4333-8444-555555555555").unwrap()),
        name: Some("deploy-api".into()),
        quorum_spec: Quorum::All,
        fire_policy: FirePolicy::Early,
        max_defer: None,
        deferred: Duration::zero(),
        relative_at: None,
        started_at: Some(t("2026-11-28T00:00:00Z")),
        finished_at: None,
        created_at: t("2026-11-28T00:00:00Z"),
        last_response_at: None,
        gates: Default::default(),
        description: Some("Ship it".into()),
        escalation: Default::default(),
        groups: Vec::new(),
    }
}

const NOW: &str = "2026-11-28T11:00:00.250Z";

fn message_for(name: &str, answer: Answer) -> AnswerMessage {
    AnswerMessage::new(&event(), agent(name), answer, t(NOW)).unwrap()
}

/// Runs a command, failing the test with its output if it fails.
fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("the command runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Makes a key pair with `ssh-keygen` (no passphrase); returns the private
/// key path and the public key line.
pub(crate) fn keygen(dir: &Path, name: &str, kind: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-N", "", "-C", &format!("{name}@test"), "-f"])
        .arg(&path);
    match kind {
        "ed25519" => cmd.args(["-t", "ed25519"]),
        "ecdsa" => cmd.args(["-t", "ecdsa", "-b", "256"]),
        "ecdsa384" => cmd.args(["-t", "ecdsa", "-b", "384"]),
        "rsa" => cmd.args(["-t", "rsa", "-b", "2048"]),
        other => panic!("no key kind {other}"),
    };
    run(&mut cmd);
    let public = fs::read_to_string(path.with_extension("pub")).unwrap();
    (path, public.trim().to_string())
}

/// Ed25519 key pairs for alice, bob, carol and mallory in a temp dir: each
/// the private key path and the public key line. Which of them a test's
/// manifest declares as signers is up to the test.
pub(crate) struct Keys {
    pub(crate) dir: TempDir,
    pub(crate) alice: (PathBuf, String),
    pub(crate) bob: (PathBuf, String),
    pub(crate) carol: (PathBuf, String),
    pub(crate) mallory: (PathBuf, String),
}

impl Keys {
    pub(crate) fn new() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        Keys {
            alice: keygen(dir.path(), "alice", "ed25519"),
            bob: keygen(dir.path(), "bob", "ed25519"),
            carol: keygen(dir.path(), "carol", "ed25519"),
            mallory: keygen(dir.path(), "mallory", "ed25519"),
            dir,
        }
    }
}

/// Writes `release.yaml` into `t`'s folder and applies it: campaign
/// `release` whose event `deploy` (quorum 2 of alice and bob) takes only
/// answers signed with alice's and bob's `keys`.
pub(crate) fn apply_signed_release(t: &crate::cli_support::T, keys: &Keys) {
    let (alice_pub, bob_pub) = (&keys.alice.1, &keys.bob.1);
    std::fs::write(
        t.dir().join("release.yaml"),
        format!(
            "campaign: release\nsigners:\n  alice: \"{alice_pub}\"\n  bob: \"{bob_pub}\"\nevents:\n  deploy:\n    at: +1h\n    quorum: 2\n    attendees: [alice, bob]\n"
        ),
    )
    .unwrap();
    t.ok("apply release.yaml");
}

/// The private key file at `path` as a [`t_minus::trust::SigningKey`].
pub(crate) fn key(path: &Path) -> t_minus::trust::SigningKey {
    t_minus::trust::SigningKey::File(path.to_path_buf())
}

/// Signs a file with `ssh-keygen -Y sign`; returns the armored signature.
pub(crate) fn ssh_keygen_sign(key: &Path, namespace: &str, file: &Path) -> String {
    run(Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", namespace, "-f"])
        .arg(key)
        .arg(file));
    let sig = PathBuf::from(format!("{}.sig", file.display()));
    let text = fs::read_to_string(&sig).unwrap();
    fs::remove_file(sig).unwrap();
    text
}

/// Runs `ssh-keygen -Y verify`; returns whether it accepted.
pub(crate) fn ssh_keygen_verify(
    allowed: &Path,
    identity: &str,
    sig: &Path,
    message: &[u8],
) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-n", "t-minus", "-I", identity, "-f"])
        .arg(allowed)
        .arg("-s")
        .arg(sig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

// ---------------------------------------------------------------- digest

/// The rules of the version 2 test vector: a bound exec hook on `fired`,
/// an unbound reminder, and a bound webhook on `missed` and `cancelled`.
fn vector_rules() -> Vec<t_minus::notification::NotifyRule> {
    use t_minus::notification::{Hook, NotifyRule, Trigger, WebhookFormat};
    let exec = NotifyRule::new(
        vec![Trigger::Fired],
        Hook::Exec {
            argv: vec!["/usr/local/bin/deploy".into(), "--prod".into()],
        },
    );
    let reminder = NotifyRule {
        before_ms: vec![300_000],
        ..NotifyRule::new(
            vec![Trigger::Reminder],
            Hook::Exec {
                argv: vec!["/usr/local/bin/page".into()],
            },
        )
    };
    let webhook = NotifyRule::new(
        vec![Trigger::Missed, Trigger::Cancelled],
        Hook::Webhook {
            url: "https://hooks.example.com/t-minus".into(),
            format: WebhookFormat::Slack,
            headers: [("Authorization".to_string(), "Bearer ${TOKEN}".to_string())].into(),
        },
    );
    vec![exec, reminder, webhook]
}

#[test]
fn digest_v2_binds_the_rules_that_act_when_the_event_fires_or_is_missed() {
    use t_minus::notification::spec::bound_rules_digest as rules_digest;
    use t_minus::trust::digest::rules_bytes;
    // Computed independently (Python: struct.pack(">Q"), json.dumps with
    // sorted keys and compact separators, hashlib.sha256) from the
    // encoding in docs/security.md.
    let rules = vector_rules();
    assert_eq!(
        rules.iter().map(|r| r.is_bound()).collect::<Vec<_>>(),
        [true, false, true]
    );
    let digest = rules_digest(&rules).unwrap();
    assert_eq!(
        hex(&digest),
        "1e847081f7c83bbad94812686e3308b44782c3adf06bb8ea39613fed919f7c27"
    );
    let bound: Vec<_> = rules
        .iter()
        .filter(|r| r.is_bound())
        .map(|r| r.digest_json())
        .collect();
    let bytes = rules_bytes(&bound).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains(r#"{"attempts":8,"before_ms":[],"exec":["/usr/local/bin/deploy","--prod"],"on":["fired"],"timeout_ms":30000}"#), "{text}");
    let mut e = event();
    e.rules_digest = Some(digest);
    let v2 = content_digest(&e);
    assert_eq!(
        v2.hex(),
        "26c788c8aa702cf20cd746d0320656b7eba838beacd09794de13beec4fc335ef"
    );
    // Informational rules alone bind nothing: the digest stays version 1.
    assert_eq!(rules_digest(&rules[1..2]), None);
    // Any change to a bound rule changes the digest; to the reminder, not.
    let mut changed = rules.clone();
    changed[1].before_ms = vec![600_000];
    assert_eq!(rules_digest(&changed), Some(digest));
    changed[0].attempts = 3;
    assert_ne!(rules_digest(&changed), Some(digest));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn digest_matches_the_documented_encoding() {
    // Computed independently from the encoding in the module docs (u64 BE
    // length-prefixed fields, 0x00 / 0x01 optionals, canonical JSON).
    let digest = content_digest(&event());
    assert_eq!(
        digest.hex(),
        "b8f6688027696070aa19f86daecd4e7e9a1be686368aa418dc64cd51ff7d16bc"
    );
    assert_eq!(digest.short(), "b8f668802769");
    assert_eq!(
        digest.to_string(),
        "sha256:b8f6688027696070aa19f86daecd4e7e9a1be686368aa418dc64cd51ff7d16bc"
    );
    assert_eq!(digest.to_string().parse::<ContentDigest>().unwrap(), digest);
    assert_eq!(digest.hex().parse::<ContentDigest>().unwrap(), digest);
    assert!(matches!(
        "sha256:B8F6".parse::<ContentDigest>(),
        Err(TrustError::InvalidHash { .. })
    ));
    assert!(matches!(
        digest.hex().to_uppercase().parse::<ContentDigest>(),
        Err(TrustError::InvalidHash { .. })
    ));
}

#[test]
fn digest_changes_with_every_included_field() {
    let base = content_digest(&event());
    type Change = Box<dyn Fn(&mut TMinusEvent)>;
    let changes: Vec<(&str, Change)> = vec![
        ("id", Box::new(|e| e.id = Uuid::from_u128(1))),
        (
            "campaign",
            Box::new(|e| e.campaign = Some(Uuid::from_u128(2))),
        ),
        ("no campaign", Box::new(|e| e.campaign = None)),
        ("name", Box::new(|e| e.name = Some("deploy-web".into()))),
        ("no name", Box::new(|e| e.name = None)),
        ("kind", Box::new(|e| e.kind = EventKind::Review)),
        (
            "custom kind",
            Box::new(|e| e.kind = EventKind::Custom("Deploy".into())),
        ),
        (
            "description",
            Box::new(|e| e.description = Some("Ship it!".into())),
        ),
        ("no description", Box::new(|e| e.description = None)),
        (
            "empty description",
            Box::new(|e| e.description = Some(String::new())),
        ),
        (
            "payload value",
            Box::new(|e| e.payload["version"] = json!("2.0.2")),
        ),
        (
            "payload type",
            Box::new(|e| e.payload["replicas"] = json!("3")),
        ),
        (
            "payload number form",
            Box::new(|e| e.payload["replicas"] = json!(3.0)),
        ),
        (
            "payload nested",
            Box::new(|e| e.payload["flags"]["a"] = json!(false)),
        ),
        (
            "payload key",
            Box::new(|e| {
                let value = e
                    .payload
                    .as_object_mut()
                    .unwrap()
                    .remove("replicas")
                    .unwrap();
                e.payload["replica"] = value;
            }),
        ),
    ];
    let mut seen = vec![base];
    for (what, change) in changes {
        let mut changed = event();
        change(&mut changed);
        let digest = content_digest(&changed);
        assert!(
            !seen.contains(&digest),
            "changing the {what} must change the digest"
        );
        seen.push(digest);
    }
}

#[test]
fn digest_ignores_times_quorum_attendees_and_state() {
    let base = content_digest(&event());
    let mut changed = event();
    changed.scheduled_at += Duration::hours(3);
    changed.t_minus = Duration::minutes(30);
    changed.organizer = agent("someone-else");
    changed.attendees = vec![(agent("carol"), ResponseStatus::Declined)];
    changed.quorum = 1;
    changed.quorum_spec = Quorum::Majority;
    changed.fire_policy = FirePolicy::OnTime;
    changed.state = EventState::Fired;
    changed.max_defer = Some(Duration::hours(1));
    changed.deferred = Duration::minutes(10);
    changed.relative_at = Some(Duration::minutes(20));
    changed.started_at = None;
    changed.finished_at = Some(t("2026-11-28T12:00:00Z"));
    changed.created_at = t("2020-01-01T00:00:00Z");
    changed.last_response_at = Some(t("2026-11-28T11:00:00Z"));
    assert_eq!(content_digest(&changed), base);
    // Key order and whitespace of the payload do not matter either.
    changed.payload = serde_json::from_str(
        r#"{ "replicas": 3, "flags": { "a": null, "b": true }, "version": "2.0.1" }"#,
    )
    .unwrap();
    assert_eq!(content_digest(&changed), base);
}

// ---------------------------------------------------------------- message

#[test]
fn message_names_every_part_and_parses_back() {
    let message = message_for("alice", Answer::Defer(Duration::minutes(15)));
    let text = message.render();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "t-minus answer v2");
    assert_eq!(lines[1], "event: 6f1c0e2a-5b7d-4c1e-9a3f-2d8e4b6a7c10");
    assert_eq!(lines[2], format!("digest: {}", content_digest(&event())));
    assert_eq!(lines[3], "agent: alice");
    assert_eq!(lines[4], "answer: defer 15m");
    assert_eq!(lines[5], "time: 2026-11-28T11:00:00.250Z");
    assert!(lines[6].starts_with("nonce: "));
    assert_eq!(lines.len(), 7);
    assert_eq!(message.nonce().get_version_num(), 4);
    assert_eq!(AnswerMessage::parse(text.as_bytes()).unwrap(), message);
    // Two messages for the same answer differ by their nonces.
    let again = message_for("alice", Answer::Defer(Duration::minutes(15)));
    assert_ne!(again.nonce(), message.nonce());
    assert_ne!(again.to_bytes(), message.to_bytes());
}

#[test]
fn message_time_is_truncated_to_milliseconds() {
    let message = AnswerMessage::new(
        &event(),
        agent("alice"),
        Answer::Confirm,
        t("2026-11-28T11:00:00.123999999Z"),
    )
    .unwrap();
    assert_eq!(message.time(), t("2026-11-28T11:00:00.123Z"));
    assert!(message
        .render()
        .contains("\ntime: 2026-11-28T11:00:00.123Z\n"));
}

#[test]
fn message_construction_refuses_what_cannot_render_canonically() {
    let build = |agent_id: &str, answer: Answer, time: DateTime<Utc>, nonce: Uuid| {
        AnswerMessage::from_parts(
            Uuid::from_u128(7),
            ContentDigest::from_bytes([1; 32]),
            AgentId(agent_id.into()),
            answer,
            time,
            nonce,
        )
    };
    let v4 = Uuid::new_v4();
    let now = t(NOW);
    let line_of = |r: Result<AnswerMessage, TrustError>| match r {
        Err(TrustError::InvalidMessage { line, .. }) => line,
        other => panic!("expected an invalid message, got {other:?}"),
    };
    assert_eq!(line_of(build("al ice", Answer::Confirm, now, v4)), 4);
    assert_eq!(line_of(build("", Answer::Confirm, now, v4)), 4);
    assert_eq!(
        line_of(build(
            "alice",
            Answer::Defer(Duration::days(40_000)),
            now,
            v4
        )),
        5
    );
    assert_eq!(
        line_of(build(
            "alice",
            Answer::Defer(Duration::seconds(-1)),
            now,
            v4
        )),
        5
    );
    let far = Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap();
    assert_eq!(line_of(build("alice", Answer::Confirm, far, v4)), 6);
    assert_eq!(
        line_of(build("alice", Answer::Confirm, now, Uuid::from_u128(9))),
        7
    );
}

#[test]
fn message_parsing_refuses_every_non_canonical_form() {
    let decline = message_for(
        "alice",
        Answer::Decline {
            reason: Some("tests fail\non arm64".into()),
        },
    );
    let text = decline.render();
    assert_eq!(AnswerMessage::parse(text.as_bytes()).unwrap(), decline);
    assert!(text.contains("\nanswer: decline\nreason: \"tests fail\\non arm64\"\n"));

    let confirm = message_for("alice", Answer::Confirm).render();
    let nonce_line = confirm.lines().last().unwrap().to_string();
    let event_line = "event: 6f1c0e2a-5b7d-4c1e-9a3f-2d8e4b6a7c10";
    let cases: Vec<(String, usize, &str)> = vec![
        (confirm.replace('\n', "\r\n"), 1, "carriage returns"),
        (
            confirm.trim_end().to_string(),
            7,
            "must end with one newline",
        ),
        (format!("{confirm}\n"), 8, "blank lines"),
        (
            confirm.replacen("t-minus answer v2", "t-minus answer v3", 1),
            1,
            "first line",
        ),
        (
            confirm.replacen(
                event_line,
                &event_line.to_uppercase().replace("EVENT", "event"),
                1,
            ),
            2,
            "lowercase hyphenated",
        ),
        (
            confirm.replacen(event_line, "event: 6f1c0e2a5b7d4c1e9a3f2d8e4b6a7c10", 1),
            2,
            "lowercase hyphenated",
        ),
        (
            confirm.replacen(event_line, "event: not-a-uuid", 1),
            2,
            "not a UUID",
        ),
        (confirm.replacen("event: ", "event:  ", 1), 2, "not a UUID"),
        (
            confirm.replacen("digest: sha256:", "digest: ", 1),
            3,
            "must start with `sha256:`",
        ),
        (
            confirm.replacen("digest: sha256:b8", "digest: sha256:B8", 1),
            3,
            "lowercase hex",
        ),
        (
            confirm.replacen("agent: alice", "agent: al\u{7f}ice", 1),
            4,
            "invalid agent id",
        ),
        (
            confirm.replacen("agent: alice", "agent: alice ", 1),
            4,
            "invalid agent id",
        ),
        (
            confirm.replacen("answer: confirm", "answer: Confirm", 1),
            5,
            "not an answer",
        ),
        (
            confirm.replacen("answer: confirm", "answer: defer soon", 1),
            5,
            "invalid duration",
        ),
        (
            confirm.replacen("answer: confirm", "answer: defer 300s", 1),
            5,
            "write the duration as `5m`",
        ),
        (
            confirm.replacen("answer: confirm", "answer: confirm\nreason: \"x\"", 1),
            6,
            "follows only `answer: decline` or `answer: cancel`",
        ),
        (
            text.replacen("reason: \"tests fail\\non arm64\"", "reason: tests fail", 1),
            6,
            "one JSON string",
        ),
        (
            text.replacen(
                "reason: \"tests fail\\non arm64\"",
                "reason: \"tests fail\\u000aon arm64\"",
                1,
            ),
            6,
            "write the reason as",
        ),
        (
            confirm.replacen(
                "time: 2026-11-28T11:00:00.250Z",
                "time: 2026-11-28T12:00:00.250+01:00",
                1,
            ),
            6,
            "in UTC with milliseconds",
        ),
        (
            confirm.replacen(
                "time: 2026-11-28T11:00:00.250Z",
                "time: 2026-11-28T11:00:00.25Z",
                1,
            ),
            6,
            "in UTC with milliseconds",
        ),
        (
            confirm.replacen(
                "time: 2026-11-28T11:00:00.250Z",
                "time: 2026-11-28 11:00:00.250Z",
                1,
            ),
            6,
            "in UTC with milliseconds",
        ),
        (
            confirm.replacen("time: 2026-11-28T11:00:00.250Z", "time: yesterday", 1),
            6,
            "not RFC 3339",
        ),
        (
            confirm.replacen(
                &nonce_line,
                "nonce: 00000000-0000-0000-0000-000000000001",
                1,
            ),
            7,
            "UUID v4",
        ),
        (confirm.replacen(&nonce_line, "", 1), 7, "blank lines"),
        (
            confirm.replacen(&format!("{nonce_line}\n"), "", 1),
            7,
            "ends before the `nonce:` line",
        ),
        (String::new(), 1, "must end with one newline"),
        ("\n".to_string(), 1, "first line"),
    ];
    for (input, line, reason) in cases {
        match AnswerMessage::parse(input.as_bytes()) {
            Err(TrustError::InvalidMessage {
                line: got,
                reason: why,
            }) => {
                assert_eq!(got, line, "line for {input:?}: {why}");
                assert!(
                    why.contains(reason),
                    "reason for {input:?}: {why:?} lacks {reason:?}"
                );
            }
            other => panic!("{input:?} must be refused, got {other:?}"),
        }
    }
    let mut bad_utf8 = confirm.into_bytes();
    bad_utf8[60] = 0xff;
    assert!(matches!(
        AnswerMessage::parse(&bad_utf8),
        Err(TrustError::InvalidMessage { line: 2, .. })
    ));
}

fn answer_strategy() -> impl Strategy<Value = Answer> {
    prop_oneof![
        Just(Answer::Confirm),
        (0i64..=36_525 * 86_400_000).prop_map(|ms| Answer::Defer(Duration::milliseconds(ms))),
        (0i64..=86_400).prop_map(|s| Answer::Defer(Duration::seconds(s))),
        Just(Answer::Decline { reason: None }),
        any::<String>().prop_map(|r| Answer::Decline { reason: Some(r) }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn message_round_trips(
        event_id in any::<u128>(),
        digest in any::<[u8; 32]>(),
        agent_id in "[A-Za-z0-9._@:/+-]{1,40}",
        answer in answer_strategy(),
        millis in -62_167_219_200_000i64..=253_402_300_799_999,
        nonce in any::<[u8; 16]>(),
    ) {
        let message = AnswerMessage::from_parts(
            Uuid::from_u128(event_id),
            ContentDigest::from_bytes(digest),
            AgentId(agent_id),
            answer,
            DateTime::from_timestamp_millis(millis).unwrap(),
            uuid::Builder::from_random_bytes(nonce).into_uuid(),
        ).unwrap();
        let bytes = message.to_bytes();
        let parsed = AnswerMessage::parse(&bytes).unwrap();
        prop_assert_eq!(&parsed, &message);
        prop_assert_eq!(parsed.to_bytes(), bytes);
    }

    #[test]
    fn message_v2_fields_round_trip(
        answer in answer_strategy(),
        cancel_reason in proptest::option::of(any::<String>()),
        principal in proptest::option::of("[a-z][a-z0-9-]{0,20}"),
        glass in proptest::option::of(".{1,40}"),
        v1 in any::<bool>(),
    ) {
        let answer = match (answer, cancel_reason) {
            (Answer::Confirm, Some(reason)) => Answer::Cancel { reason: Some(reason) },
            (answer, _) => answer,
        };
        let mut message = message_for("alice", answer);
        if let Some(p) = principal.filter(|p| p != "alice") {
            message = message.on_behalf_of(AgentId(p)).unwrap();
        }
        if let Some(reason) = glass {
            message = message.break_glass(reason).unwrap();
        }
        if v1 {
            match message.clone().in_version(t_minus::trust::message::MessageVersion::V1) {
                Ok(old) => message = old,
                Err(err) => {
                    let refused = matches!(err, TrustError::MessageVersion { .. });
                    prop_assert!(refused, "{:?}", err);
                }
            }
        }
        let bytes = message.to_bytes();
        let parsed = AnswerMessage::parse(&bytes).unwrap();
        prop_assert_eq!(&parsed, &message);
        prop_assert_eq!(parsed.to_bytes(), bytes);
    }

    #[test]
    fn message_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = AnswerMessage::parse(&bytes);
    }

    #[test]
    fn message_parse_refuses_any_single_byte_change(position in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let message = message_for("alice", Answer::Decline { reason: Some("no".into()) });
        let mut bytes = message.to_bytes();
        let i = position.index(bytes.len());
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        // A changed message is either refused or reads as a different message.
        if let Ok(parsed) = AnswerMessage::parse(&bytes) {
            prop_assert_ne!(parsed, message);
        }
    }
}

// ---------------------------------------------------------------- allowed_signers

const ED_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN6wmQFs2rP9W9K3ViqJzYHb/xN1Y6hsCkBaGJl5B681";
const ED_B: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKGub+Iugdy5MAF5VwloYjqNarFvrTwKZ3W+3DpsIwsZ";

fn signers(text: &str) -> Signers {
    Signers::parse_allowed_signers(text, "allowed_signers").unwrap()
}

fn signers_error(text: &str) -> (usize, String) {
    match Signers::parse_allowed_signers(text, "allowed_signers") {
        Err(TrustError::InvalidSignersLine {
            line,
            reason,
            source_name,
        }) => {
            assert_eq!(source_name, "allowed_signers");
            (line, reason)
        }
        other => panic!("{text:?} must be refused, got {other:?}"),
    }
}

fn count(s: &Signers, who: &str) -> usize {
    s.keys_for(who, t(NOW)).len()
}

#[test]
fn allowed_signers_lines_comments_and_principals() {
    let s = signers(&format!(
        "# team keys\n\n   \t\nalice {ED_A} alice@laptop (work)\n  \"bob,carol\" {ED_B}\n# dave {ED_A}\nops-*,!ops-2 {ED_B}\n"
    ));
    assert_eq!(s.entries().len(), 3);
    assert_eq!(s.entries()[0].line, 4);
    assert_eq!(s.entries()[0].key.comment(), "alice@laptop (work)");
    assert_eq!(s.entries()[1].principals, vec!["bob", "carol"]);
    assert_eq!(count(&s, "alice"), 1);
    assert_eq!(count(&s, "bob"), 1);
    assert_eq!(count(&s, "carol"), 1);
    assert_eq!(count(&s, "dave"), 0);
    assert_eq!(count(&s, "ops-1"), 1);
    assert_eq!(count(&s, "ops-2"), 0);
    assert_eq!(count(&s, "Alice"), 0, "principals are case-sensitive");
    assert_eq!(
        s.keys_for("alice", t(NOW))[0].to_openssh().unwrap(),
        format!("{ED_A} alice@laptop (work)")
    );
}

#[test]
fn allowed_signers_namespaces_decide_whether_a_key_counts() {
    let s = signers(&format!(
        "a1 namespaces=\"t-minus\" {ED_A}\n\
         a2 namespaces=\"git,t-minus\" {ED_A}\n\
         a3 NAMESPACES=\"t-*\" {ED_A}\n\
         a4 namespaces=\"git\" {ED_A}\n\
         a5 namespaces=\"*,!t-minus\" {ED_A}\n\
         a6 namespaces=\"file\",namespaces=\"t-minus\" {ED_A}\n"
    ));
    assert_eq!(count(&s, "a1"), 1);
    assert_eq!(count(&s, "a2"), 1);
    assert_eq!(count(&s, "a3"), 1);
    assert_eq!(
        count(&s, "a4"),
        0,
        "a git-only key does not count for t-minus"
    );
    assert_eq!(count(&s, "a5"), 0);
    assert_eq!(count(&s, "a6"), 1, "the last namespaces option wins");
}

#[test]
fn allowed_signers_validity_window_and_cert_authority() {
    let s = signers(&format!(
        "w valid-after=\"20261128Z\",valid-before=\"202611281200Z\" {ED_A}\n\
         ca cert-authority {ED_B}\n\
         ca2 cert-authority,namespaces=\"t-minus\" {ED_B}\n"
    ));
    let entry = &s.entries()[0];
    assert_eq!(entry.valid_after, Some(t("2026-11-28T00:00:00Z")));
    assert_eq!(entry.valid_before, Some(t("2026-11-28T12:00:00Z")));
    assert_eq!(s.keys_for("w", t("2026-11-27T23:59:59.999Z")).len(), 0);
    assert_eq!(s.keys_for("w", t("2026-11-28T00:00:00Z")).len(), 1);
    assert_eq!(s.keys_for("w", t("2026-11-28T12:00:00Z")).len(), 1);
    assert_eq!(s.keys_for("w", t("2026-11-28T12:00:00.001Z")).len(), 0);
    assert!(s.entries()[1].cert_authority);
    assert_eq!(
        count(&s, "ca"),
        0,
        "a certificate authority key signs no answer itself"
    );
    assert_eq!(count(&s, "ca2"), 0);
    // The entries render back to lines that read the same.
    let again = signers(&s.to_allowed_signers());
    assert_eq!(again.entries().len(), 3);
    for (a, b) in again.entries().iter().zip(s.entries()) {
        assert_eq!(
            (
                &a.principals,
                a.cert_authority,
                &a.namespaces,
                a.valid_after,
                a.valid_before,
                a.key.key_data()
            ),
            (
                &b.principals,
                b.cert_authority,
                &b.namespaces,
                b.valid_after,
                b.valid_before,
                b.key.key_data()
            )
        );
    }
}

#[test]
fn allowed_signers_errors_name_the_line() {
    let cases = [
        (format!("# c\nalice {ED_A}\nbob ssh-ed25519 AAAAnotbase64!!\n"), 3, "not a public key"),
        ("alice\n".to_string(), 1, "public key is missing"),
        (format!("\n\nalice frobnicate {ED_A}\n"), 3, "unsupported option `frobnicate`"),
        (format!("alice namespaces=t-minus {ED_A}\n"), 1, "double quotes"),
        (format!("alice namespaces=\"t-minus {ED_A}\n"), 1, "no closing"),
        (format!("\"alice {ED_A}\n"), 1, "no closing"),
        (format!("alice,,bob {ED_A}\n"), 1, "empty"),
        ("alice namespaces=\"t-minus\"\n".to_string(), 1, "missing after the options"),
        (format!("alice valid-after=\"2026-11-28\" {ED_A}\n"), 1, "invalid time"),
        (format!("alice valid-after=\"20261128Z\",valid-before=\"20261127Z\" {ED_A}\n"), 1, "later than"),
        (format!("alice cert-authority=\"yes\" {ED_A}\n"), 1, "takes no value"),
        (format!("alice namespaces {ED_A}\n"), 1, "needs a value"),
        ("alice ssh-dss AAAAB3NzaC1kc3MAAACBAP1/U4EddRIpUt9KnC7s5Of2EbdSPO9EAMMeP4C2USZpRV1AIlH7WT2NWPq/xfW6MPbLm1Vs14E7gB00b/JmYLdrmVClpJ+f6AR7ECLCT7up1/63xhv4O1fnxqimFQ8E+4P208UewwI1VBNaFpEy9nXzrith1yrv8iIDGZ3RSAHHAAAAFQCXYFCPFSMLzLKSuYKi64QL8Fgc9QAAAIEA9+GghdabPd7LvKtcNrhXuXmUr7v6OuqC+VdMCz0HgmdRWVeOutRZT+ZxBxCBgLRJFnEj6EwoFhO3zwkyjMim4TwWeotUfI0o4KOuHiuzpnWRbqN/C/ohNWLx+2J6ASQ7zKTxvqhRkImog9/hWuWfBpKLZl6Ae1UlZAFMO/7PSSoAAACBAPRIaNAfnGCVMK6ic8ljKDuBXPvjHy+oX7Of47hBGSiNQxDSzhnCMYgx6T6JnO94kVkT4qhRYmKvNAM9NHPC3RZU6xY7ho4ZvmdgNvMgCkDdasIuPdmHrEB9NOXDZNLHyVpDOuZjNoNnYfAP/Hxl6I4rTUF3IY7GNcG/9bSpZZkn\n".to_string(), 1, "DSA"),
    ];
    for (text, line, reason) in cases {
        let (got, why) = signers_error(&text);
        assert_eq!(got, line, "line for {text:?}: {why}");
        assert!(
            why.contains(reason),
            "reason for {text:?}: {why:?} lacks {reason:?}"
        );
    }
}

#[test]
fn allowed_signers_file_unreadable_is_an_error() {
    let dir = TempDir::new().unwrap();
    assert!(matches!(
        Signers::read_allowed_signers(&dir.path().join("missing")),
        Err(TrustError::Read { .. })
    ));
}

#[test]
fn inline_signers_map_agents_to_keys() {
    let s = Signers::from_inline([
        ("alice", format!("{ED_A} alice@laptop")),
        ("bob", ED_B.to_string()),
    ])
    .unwrap();
    assert_eq!(count(&s, "alice"), 1);
    assert_eq!(count(&s, "bob"), 1);
    assert_eq!(count(&s, "carol"), 0);
    assert_eq!(s.keys_for("alice", t(NOW))[0].comment(), "alice@laptop");
    assert_ne!(
        s.keys_for("alice", t(NOW))[0].key_data(),
        s.keys_for("bob", t(NOW))[0].key_data()
    );
    for (who, key, reason) in [
        ("alice", "ssh-ed25519 AAAA", "not a public key"),
        ("alice", "", "not a public key"),
        ("al ice", ED_A, "invalid agent id"),
        ("ops-*", ED_A, "cannot contain"),
    ] {
        match Signers::from_inline([(who, key)]) {
            Err(TrustError::InvalidInlineSigner { agent, reason: why }) => {
                assert_eq!(agent, who);
                assert!(why.contains(reason), "{why:?} lacks {reason:?}");
            }
            other => panic!("{who}: {key} must be refused, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------- signing with ssh-keygen

/// An answer message written to a file, with the signers for one agent.
struct Fixture {
    dir: TempDir,
    key: PathBuf,
    public: String,
    message: Vec<u8>,
    message_file: PathBuf,
}

fn fixture(kind: &str) -> Fixture {
    let dir = TempDir::new().unwrap();
    let (key, public) = keygen(dir.path(), "alice", kind);
    let message = message_for("alice", Answer::Confirm).to_bytes();
    let message_file = dir.path().join("message");
    fs::write(&message_file, &message).unwrap();
    Fixture {
        dir,
        key,
        public,
        message,
        message_file,
    }
}

fn alice_signers(public: &str) -> Signers {
    signers(&format!("alice namespaces=\"t-minus\" {public}\n"))
}

#[test]
fn ssh_keygen_signatures_verify_for_every_key_type() {
    for kind in ["ed25519", "ecdsa", "ecdsa384", "rsa"] {
        let f = fixture(kind);
        let armored = ssh_keygen_sign(&f.key, "t-minus", &f.message_file);
        assert!(armored.starts_with("-----BEGIN SSH SIGNATURE-----\n"));
        let signature = SshSignature::parse(&armored).unwrap();
        let s = alice_signers(&f.public);
        let entry = verify_signature(&s, &agent("alice"), &f.message, &signature, t(NOW))
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(entry.line, 1);
        // The message file is what `submit` reads: it parses as the message.
        assert_eq!(
            AnswerMessage::parse(&fs::read(&f.message_file).unwrap())
                .unwrap()
                .agent(),
            &agent("alice")
        );
    }
}

#[test]
fn our_signatures_verify_with_ssh_keygen_for_every_key_type() {
    for kind in ["ed25519", "ecdsa", "rsa"] {
        let f = fixture(kind);
        let signature = match sign_with_key_file(&f.key, &f.message) {
            Ok(signature) => signature,
            // The ssh-key crate cannot sign with every RSA key in-process;
            // the error then points to ssh-agent, which signs RSA (tested below).
            Err(TrustError::Sign { reason }) if kind == "rsa" => {
                assert!(reason.contains("ssh-agent"), "{reason}");
                continue;
            }
            Err(e) => panic!("{kind}: {e}"),
        };
        let armored = signature.to_armored();
        assert!(armored.starts_with("-----BEGIN SSH SIGNATURE-----\n"));
        assert!(armored.ends_with("-----END SSH SIGNATURE-----\n"));
        assert_eq!(signature.sshsig().namespace(), "t-minus");
        assert_eq!(signature.sshsig().hash_alg(), HashAlg::Sha512);
        let sig_file = f.dir.path().join("message.sig");
        fs::write(&sig_file, &armored).unwrap();

        let allowed = f.dir.path().join("allowed_signers");
        fs::write(
            &allowed,
            format!("alice namespaces=\"t-minus\" {}\n", f.public),
        )
        .unwrap();
        let (ok, out) = ssh_keygen_verify(&allowed, "alice", &sig_file, &f.message);
        assert!(ok, "{kind}: ssh-keygen refused our signature: {out}");
        assert!(
            out.contains("Good \"t-minus\" signature for alice"),
            "{out}"
        );
        // ssh-keygen refuses it for another principal and for a changed message.
        assert!(!ssh_keygen_verify(&allowed, "bob", &sig_file, &f.message).0);
        let mut changed = f.message.clone();
        changed[0] ^= 1;
        assert!(!ssh_keygen_verify(&allowed, "alice", &sig_file, &changed).0);

        // Our own verifier agrees, also with signers given inline.
        let inline = Signers::from_inline([("alice", f.public.as_str())]).unwrap();
        verify_signature(&inline, &agent("alice"), &f.message, &signature, t(NOW)).unwrap();
        // And the inline signers written out as allowed_signers work for ssh-keygen.
        fs::write(&allowed, inline.to_allowed_signers()).unwrap();
        let (ok, out) = ssh_keygen_verify(&allowed, "alice", &sig_file, &f.message);
        assert!(ok, "{kind}: {out}");
    }
}

#[test]
fn refused_wrong_key_namespace_message_and_signature() {
    let f = fixture("ed25519");
    let (mallory_key, mallory_public) = keygen(f.dir.path(), "mallory", "ed25519");
    let s = signers(&format!(
        "alice {}\nmallory {}\nbob namespaces=\"git\" {}\n",
        f.public, mallory_public, f.public
    ));
    let alice = agent("alice");

    // Signed by another agent's key.
    let by_mallory = sign_with_key_file(&mallory_key, &f.message).unwrap();
    match verify_signature(&s, &alice, &f.message, &by_mallory, t(NOW)) {
        Err(TrustError::WrongKey { agent, fingerprint }) => {
            assert_eq!(agent, "alice");
            assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");
        }
        other => panic!("expected a wrong key, got {other:?}"),
    }

    // Signed for another namespace (ssh-keygen -n git).
    let for_git = SshSignature::parse(&ssh_keygen_sign(&f.key, "git", &f.message_file)).unwrap();
    assert_eq!(
        verify_signature(&s, &alice, &f.message, &for_git, t(NOW)).unwrap_err(),
        TrustError::WrongNamespace {
            found: "git".into()
        }
    );

    // A tampered message.
    let good = sign_with_key_file(&f.key, &f.message).unwrap();
    verify_signature(&s, &alice, &f.message, &good, t(NOW)).unwrap();
    let tampered = String::from_utf8(f.message.clone())
        .unwrap()
        .replace("answer: confirm", "answer: decline")
        .into_bytes();
    assert_eq!(
        verify_signature(&s, &alice, &tampered, &good, t(NOW)).unwrap_err(),
        TrustError::BadSignature {
            agent: "alice".into()
        }
    );

    // A tampered signature: one bit of the signature value flipped.
    let sig = good.sshsig();
    let mut bytes = sig.signature_bytes().to_vec();
    bytes[10] ^= 0x01;
    let forged = SshSig::new(
        sig.public_key().clone(),
        "t-minus",
        sig.hash_alg(),
        ssh_key::Signature::new(sig.algorithm(), bytes).unwrap(),
    )
    .unwrap();
    assert_eq!(
        verify_signature(&s, &alice, &f.message, &SshSignature::from(forged), t(NOW)).unwrap_err(),
        TrustError::BadSignature {
            agent: "alice".into()
        }
    );

    // Garbage where the armored signature should be.
    let mut armored = good.to_armored();
    armored.replace_range(40..44, "!!!!");
    assert!(matches!(
        SshSignature::parse(&armored),
        Err(TrustError::InvalidSignature { .. })
    ));
    assert!(matches!(
        SshSignature::parse(""),
        Err(TrustError::InvalidSignature { .. })
    ));

    // A key that only counts for git, and an agent with no key at all.
    assert_eq!(
        verify_signature(&s, &agent("bob"), &f.message, &good, t(NOW)).unwrap_err(),
        TrustError::NoSigner {
            agent: "bob".into()
        }
    );
    assert_eq!(
        verify_signature(&s, &agent("carol"), &f.message, &good, t(NOW)).unwrap_err(),
        TrustError::NoSigner {
            agent: "carol".into()
        }
    );
}

#[test]
fn our_signature_round_trips_through_its_armor() {
    let f = fixture("ed25519");
    let signature = sign_with_key_file(&f.key, &f.message).unwrap();
    let again = SshSignature::parse(&signature.to_armored()).unwrap();
    assert_eq!(again, signature);
    assert_eq!(again.to_string(), signature.to_armored());
}

#[test]
fn private_key_problems_are_clear_errors() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("locked");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "secret passphrase", "-f"])
        .arg(&path));
    match sign_with_key_file(&path, b"x") {
        Err(TrustError::PrivateKey { reason, .. }) => {
            assert!(reason.contains("passphrase"), "{reason}")
        }
        other => panic!("expected a private key error, got {other:?}"),
    }
    // A public key where the private key belongs is named as such.
    let public = dir.path().join("locked.pub");
    assert!(matches!(
        sign_with_key_file(&public, b"x"),
        Err(TrustError::PublicKeyGiven { .. })
    ));
    assert!(matches!(
        sign_with_key_file(&dir.path().join("missing"), b"x"),
        Err(TrustError::Read { .. })
    ));
}

#[test]
fn signing_in_memory_matches_signing_from_the_file() {
    let f = fixture("ed25519");
    let key = t_minus::trust::sign::read_private_key(&f.key).unwrap();
    // Ed25519 signatures are deterministic.
    assert_eq!(
        sign_with_private_key(&key, &f.message).unwrap(),
        sign_with_key_file(&f.key, &f.message).unwrap()
    );
}

// ---------------------------------------------------------------- ssh-agent

/// A private `ssh-agent` on a socket in a temp dir, killed on drop.
pub(crate) struct SshAgent {
    child: Child,
    pub(crate) socket: PathBuf,
}

impl SshAgent {
    pub(crate) fn start(dir: &Path) -> SshAgent {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent starts");
        let started = Instant::now();
        while !socket.exists() {
            assert!(
                started.elapsed() < StdDuration::from_secs(10),
                "ssh-agent did not start"
            );
            std::thread::sleep(StdDuration::from_millis(5));
        }
        SshAgent { child, socket }
    }

    pub(crate) fn add(&self, key: &Path) {
        run(Command::new("ssh-add")
            .env("SSH_AUTH_SOCK", &self.socket)
            .arg(key));
    }
}

impl Drop for SshAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ssh_agent_signs_with_the_agents_registered_key() {
    for kind in ["ed25519", "ecdsa", "rsa"] {
        let f = fixture(kind);
        let (other_key, other_public) = keygen(f.dir.path(), "other", "ed25519");
        let agent_proc = SshAgent::start(f.dir.path());
        let s = signers(&format!("other {other_public}\nalice {}\n", f.public));
        let alice = agent("alice");

        // The agent holds only another key: nothing to sign alice's answer with.
        agent_proc.add(&other_key);
        assert_eq!(
            sign_with_agent(&agent_proc.socket, &s, &alice, &f.message, t(NOW)).unwrap_err(),
            TrustError::AgentKeyMissing {
                agent: "alice".into()
            }
        );

        agent_proc.add(&f.key);
        let signature = sign_with_agent(&agent_proc.socket, &s, &alice, &f.message, t(NOW))
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(signature.sshsig().namespace(), "t-minus");
        assert_eq!(
            signature.sshsig().public_key(),
            s.keys_for("alice", t(NOW))[0].key_data()
        );
        verify_signature(&s, &alice, &f.message, &signature, t(NOW)).unwrap();

        let sig_file = f.dir.path().join("agent.sig");
        fs::write(&sig_file, signature.to_armored()).unwrap();
        let allowed = f.dir.path().join("allowed_signers");
        fs::write(&allowed, s.to_allowed_signers()).unwrap();
        let (ok, out) = ssh_keygen_verify(&allowed, "alice", &sig_file, &f.message);
        assert!(ok, "{kind}: {out}");

        // An agent with no key registered is refused before asking ssh-agent.
        assert_eq!(
            sign_with_agent(&agent_proc.socket, &s, &agent("nobody"), &f.message, t(NOW))
                .unwrap_err(),
            TrustError::NoSigner {
                agent: "nobody".into()
            }
        );
    }
}

#[test]
fn ssh_agent_unreachable_is_a_clear_error() {
    let dir = TempDir::new().unwrap();
    let s = signers(&format!("alice {ED_A}\n"));
    match sign_with_agent(
        &dir.path().join("no.sock"),
        &s,
        &agent("alice"),
        b"m",
        t(NOW),
    ) {
        Err(TrustError::SshAgent { reason }) => {
            assert!(reason.contains("cannot connect"), "{reason}")
        }
        other => panic!("expected an ssh-agent error, got {other:?}"),
    }
}

// ---------------------------------------------------------------- audit chain

fn entry(
    seq: i64,
    action: AuditAction,
    agent_id: Option<&str>,
    detail: serde_json::Value,
) -> AuditEntry {
    AuditEntry {
        seq,
        event: Uuid::parse_str("6f1c0e2a-5b7d-4c1e-9a3f-2d8e4b6a7c10").unwrap(),
        at: t("2026-11-28T00:00:00Z"),
        recorded_at: t("2026-11-28T00:00:01.500Z"),
        agent: agent_id.map(agent),
        on_behalf_of: None,
        action,
        detail,
    }
}

/// A stored entry: the entry, its message and signature, prev and hash.
type Stored = (
    AuditEntry,
    Option<Vec<u8>>,
    Option<String>,
    ChainHash,
    ChainHash,
);

fn chain_of(entries: Vec<(AuditEntry, Option<Vec<u8>>, Option<String>)>) -> Vec<Stored> {
    let mut prev = ChainHash::GENESIS;
    entries
        .into_iter()
        .map(|(entry, message, signature)| {
            let hash = entry_hash_in(
                EntryFormat::V1,
                &prev,
                &entry,
                message.as_deref(),
                signature.as_deref(),
            );
            let stored = (entry, message, signature, prev, hash);
            prev = hash;
            stored
        })
        .collect()
}

fn links(stored: &[Stored]) -> Vec<ChainLink<'_>> {
    stored
        .iter()
        .map(|(entry, message, signature, prev, hash)| ChainLink {
            entry,
            message: message.as_deref(),
            signature: signature.as_deref(),
            prev: *prev,
            hash: *hash,
        })
        .collect()
}

fn sample_chain() -> Vec<Stored> {
    let sig = "-----BEGIN SSH SIGNATURE-----\nabc\n-----END SSH SIGNATURE-----\n".to_string();
    chain_of(vec![
        (
            entry(
                1,
                AuditAction::Deferred,
                Some("alice"),
                json!({"reason": "x", "by": "5m"}),
            ),
            Some(b"hello\n".to_vec()),
            Some(sig),
        ),
        (entry(2, AuditAction::Fired, None, json!({})), None, None),
        (
            entry(3, AuditAction::Confirmed, Some("bob"), json!({})),
            None,
            None,
        ),
        (
            entry(
                4,
                AuditAction::Cancelled,
                Some("lead"),
                json!({"reason": "done"}),
            ),
            None,
            None,
        ),
    ])
}

fn break_at(stored: &[Stored]) -> (u64, i64, BreakKind) {
    match verify_chain(links(stored)) {
        Err(TrustError::ChainBroken {
            position,
            seq,
            kind,
        }) => (position, seq, kind),
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

#[test]
fn chain_hashes_match_the_documented_encoding() {
    let chain = sample_chain();
    // Computed independently from the encoding in the module docs.
    assert_eq!(
        chain[0].4.hex(),
        "f5b6adb5ec240625d6842c60a12dc6d1e690e25cdb0b470ceb26bc5931980047"
    );
    assert_eq!(
        chain[1].4.hex(),
        "4a3745b1ae036a358707fb65219bb3ddf24fdfefb6d34c8c48f3c989cabf4f50"
    );
    assert_eq!(chain[0].3, ChainHash::GENESIS);
    assert_eq!(ChainHash::GENESIS.hex(), "0".repeat(64));
    assert_eq!(chain[1].4.hex().parse::<ChainHash>().unwrap(), chain[1].4);
    let head = verify_chain(links(&chain)).unwrap();
    assert_eq!(head, chain[3].4);
    assert_eq!(verify_chain(Vec::new()).unwrap(), ChainHash::GENESIS);
}

#[test]
fn entry_formats_v1_and_v2_match_the_documented_vectors() {
    // Computed independently (Python's hashlib) from the encodings in
    // docs/security.md.
    let fired = entry(1, AuditAction::Fired, None, json!({}));
    assert_eq!(
        entry_hash(&ChainHash::GENESIS, &fired, None, None).hex(),
        "4c076f294f03c36cffdeb7000eb21b1adb4e8b885820d8d593bc6bb03aa88390"
    );
    assert_eq!(
        entry_hash_in(EntryFormat::V1, &ChainHash::GENESIS, &fired, None, None).hex(),
        "f948f1209ba31d5f5f63b066fb0de24c086b8027cd6d830cc343b65ea09efd27"
    );
    // v2 binds the subject's kind and the agent acted for.
    use t_minus::trust::chain::{entry_bytes, entry_bytes_v2, Subject, SubjectKind};
    let event = Subject::event(fired.event);
    assert_eq!(
        entry_bytes_v2(&event, None, &fired, None, None),
        entry_bytes(&fired, None, None)
    );
    let token = Subject {
        kind: SubjectKind::Token,
        id: event.id.clone(),
    };
    assert_ne!(
        entry_bytes_v2(&token, None, &fired, None, None),
        entry_bytes(&fired, None, None)
    );
    assert_ne!(
        entry_bytes_v2(&event, Some("bob"), &fired, None, None),
        entry_bytes(&fired, None, None)
    );
    assert_ne!(
        entry_bytes_v2(&event, Some(""), &fired, None, None),
        entry_bytes(&fired, None, None)
    );
}

#[test]
fn chain_hash_ignores_seq_and_sub_millisecond_time_but_not_content() {
    let base = entry(
        1,
        AuditAction::Confirmed,
        Some("bob"),
        json!({"a": 1, "b": 2}),
    );
    let h = |e: &AuditEntry, m: Option<&[u8]>, s: Option<&str>| {
        entry_hash(&ChainHash::GENESIS, e, m, s)
    };
    let reference = h(&base, None, None);
    let mut same = base.clone();
    same.seq = 99;
    same.at += Duration::microseconds(300);
    same.detail = serde_json::from_str(r#"{"b":2,"a":1}"#).unwrap();
    assert_eq!(h(&same, None, None), reference);

    let mut variants: Vec<ChainHash> = vec![reference];
    let mut push = |hash: ChainHash, what: &str| {
        assert!(
            !variants.contains(&hash),
            "changing the {what} must change the hash"
        );
        variants.push(hash);
    };
    let mut e = base.clone();
    e.event = Uuid::from_u128(5);
    push(h(&e, None, None), "event");
    let mut e = base.clone();
    e.at += Duration::milliseconds(1);
    push(h(&e, None, None), "at");
    let mut e = base.clone();
    e.recorded_at += Duration::milliseconds(1);
    push(h(&e, None, None), "recorded_at");
    let mut e = base.clone();
    e.agent = None;
    push(h(&e, None, None), "agent (absent)");
    let mut e = base.clone();
    e.agent = Some(agent("bobby"));
    push(h(&e, None, None), "agent");
    let mut e = base.clone();
    e.action = AuditAction::Declined;
    push(h(&e, None, None), "action");
    let mut e = base.clone();
    e.detail = json!({"a": 1, "b": 3});
    push(h(&e, None, None), "detail");
    push(h(&base, Some(b""), None), "message (empty)");
    push(h(&base, Some(b"m"), None), "message");
    push(h(&base, None, Some("")), "signature (empty)");
    push(h(&base, None, Some("s")), "signature");
    push(
        entry_hash(&ChainHash::from_bytes([1; 32]), &base, None, None),
        "prev",
    );
}

#[test]
fn chain_detects_an_edited_entry() {
    let mut chain = sample_chain();
    chain[2].0.detail = json!({"forged": true});
    let (position, seq, kind) = break_at(&chain);
    assert_eq!((position, seq), (2, 3));
    assert!(matches!(kind, BreakKind::Hash { found, .. } if found == chain[2].4));

    let mut chain = sample_chain();
    chain[0].1 = Some(b"hellO\n".to_vec());
    assert_eq!(break_at(&chain).0, 0, "an edited signed message is caught");

    let mut chain = sample_chain();
    chain[0].2 = None;
    assert_eq!(break_at(&chain).0, 0, "a removed signature is caught");

    let mut chain = sample_chain();
    chain[3].0.agent = Some(agent("mallory"));
    assert_eq!(break_at(&chain).0, 3);
}

#[test]
fn chain_detects_deleted_inserted_and_reordered_entries() {
    let mut deleted = sample_chain();
    deleted.remove(1);
    let (position, seq, kind) = break_at(&deleted);
    assert_eq!((position, seq), (1, 3));
    let original = sample_chain();
    assert_eq!(
        kind,
        BreakKind::Prev {
            expected: original[0].4,
            found: original[1].4
        }
    );

    let mut first_deleted = sample_chain();
    first_deleted.remove(0);
    assert_eq!(break_at(&first_deleted).0, 0);

    // An inserted entry that even links to the one before it breaks the next link.
    let mut inserted = sample_chain();
    let forged = entry(9, AuditAction::Confirmed, Some("mallory"), json!({}));
    let prev = inserted[1].4;
    let hash = entry_hash(&prev, &forged, None, None);
    inserted.insert(2, (forged, None, None, prev, hash));
    let (position, _, kind) = break_at(&inserted);
    assert_eq!(position, 3);
    assert!(matches!(kind, BreakKind::Prev { .. }));

    let mut reordered = sample_chain();
    reordered.swap(1, 2);
    assert_eq!(break_at(&reordered).0, 1);

    // Deleting the last entry cannot be seen from the chain alone, only
    // against a head kept elsewhere.
    let mut truncated = sample_chain();
    truncated.pop();
    let kept_head = sample_chain()[3].4;
    let mut verifier = ChainVerifier::new().since(kept_head);
    for link in links(&truncated) {
        verifier.push(&link).unwrap();
    }
    assert_eq!(verifier.len(), 3);
    assert_eq!(
        verifier.finish().unwrap_err(),
        TrustError::HeadNotFound {
            head: kept_head.hex()
        }
    );
}

#[test]
fn chain_since_an_earlier_head_proves_append_only() {
    let chain = sample_chain();
    let earlier = chain[1].4;
    let mut verifier = ChainVerifier::new().since(earlier);
    for link in links(&chain) {
        verifier.push(&link).unwrap();
    }
    assert_eq!(verifier.finish().unwrap(), chain[3].4);
    // The genesis is before every chain.
    let mut verifier = ChainVerifier::new().since(ChainHash::GENESIS);
    assert!(verifier.is_empty());
    for link in links(&chain) {
        verifier.push(&link).unwrap();
    }
    assert!(verifier.finish().is_ok());
    // A rewritten history no longer contains the earlier head, even if it is
    // consistently re-chained.
    let mut rewritten: Vec<_> = sample_chain()
        .into_iter()
        .map(|(e, m, s, _, _)| (e, m, s))
        .collect();
    rewritten[0].0.detail = json!({"reason": "y", "by": "5m"});
    let rewritten = chain_of(rewritten);
    assert!(verify_chain(links(&rewritten)).is_ok());
    let mut verifier = ChainVerifier::new().since(earlier);
    for link in links(&rewritten) {
        verifier.push(&link).unwrap();
    }
    assert!(matches!(
        verifier.finish(),
        Err(TrustError::HeadNotFound { .. })
    ));
}

#[test]
fn signed_answer_end_to_end_with_message_digest_and_chain() {
    // An agent signs the message for the event's current content; the
    // signature verifies, the message's digest is the event's, and both are
    // chained into the log entry that records the answer.
    let f = fixture("ed25519");
    let s = alice_signers(&f.public);
    let message = AnswerMessage::parse(&f.message).unwrap();
    let signature = sign_with_key_file(&f.key, &f.message).unwrap();
    verify_signature(&s, message.agent(), &f.message, &signature, message.time()).unwrap();
    assert_eq!(message.digest(), content_digest(&event()));
    let mut changed = event();
    changed.payload["version"] = json!("2.0.2");
    assert_ne!(
        message.digest(),
        content_digest(&changed),
        "a payload change unbinds the approval"
    );

    let armored = signature.to_armored();
    let chain = chain_of(vec![(
        entry(1, AuditAction::Confirmed, Some("alice"), json!({})),
        Some(f.message.clone()),
        Some(armored),
    )]);
    assert_eq!(verify_chain(links(&chain)).unwrap(), chain[0].4);
}
