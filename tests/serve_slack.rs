//! Answering from Slack: `t-minus serve`'s `POST /v1/slack/interactions`
//! against a local fake of Slack that follows Slack's documented formats —
//! a sender that signs each request as Slack does (`X-Slack-Signature: v0=`
//! hex HMAC-SHA256 of `v0:{timestamp}:{body}`, the body form-encoded
//! `payload=` and a `block_actions` JSON object) and a receiver standing in
//! for `hooks.slack.com` that records what t-minus posts to `response_url`
//! and to incoming webhooks. Also `people link`/`unlink`, and the Block Kit
//! message and `answer_url` of `format: slack` notifications.
//!
//! Every test runs on SQLite and on PostgreSQL.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, ChildStdout, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::cli_support::{self, stores, T};

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const PUBLIC_URL: &str = "https://tminus.example.com";
const ALICE: &str = "U0ALICE01";
const BOB: &str = "U0BOB0002";

/// What the fake Slack host received: the path and the JSON body of each
/// POST.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, Value)>>>);

impl Received {
    /// Waits (at most 20 s) for a POST to `path` and returns its body.
    fn wait_for(&self, path: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some((_, body)) = self.0.lock().unwrap().iter().find(|(p, _)| p == path) {
                return body.clone();
            }
            assert!(Instant::now() < deadline, "nothing was posted to {path}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn count(&self, path: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .count()
    }
}

/// A fake `hooks.slack.com` on a free port: answers every POST `200 ok`
/// and records it. Returns its base URL (`http://127.0.0.1:PORT/`).
fn fake_slack_host() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let received = Received::default();
    let log = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_string();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            log.0.lock().unwrap().push((path, value));
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (base, received)
}

/// A `block_actions` interaction as Slack sends it: the form body
/// `payload=…` of a press of button `action` (value `event`) by `user`.
fn interaction(user: &str, action: &str, event: &str, response_url: &str) -> String {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user, "username": "someone", "name": "someone", "team_id": "T0TEAM001"},
        "api_app_id": "A0APP0001",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": "1748000000.000100", "channel_id": "C0CHAN001", "is_ephemeral": false},
        "trigger_id": "1234.5678.abcdef",
        "team": {"id": "T0TEAM001", "domain": "example"},
        "channel": {"id": "C0CHAN001", "name": "releases"},
        "message": {"type": "message", "text": "…", "ts": "1748000000.000100"},
        "response_url": response_url,
        "actions": [{
            "type": "button",
            "action_id": action,
            "block_id": format!("t-minus:{event}"),
            "text": {"type": "plain_text", "text": "Confirm", "emoji": true},
            "value": event,
            "action_ts": "1748000001.000200",
        }],
    });
    form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
}

/// Slack's signature of `body` sent at `timestamp` with `secret`.
fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    format!(
        "v0={}",
        base16ct::lower::encode_string(&mac.finalize().into_bytes())
    )
}

/// A running `t-minus serve` with Slack's interactions enabled.
struct Server {
    child: Child,
    base: String,
    _stdout: BufReader<ChildStdout>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `serve --public-url PUBLIC_URL` on `t`'s store at `t`'s instant,
    /// without background work, with the signing secret `secret` (none:
    /// not configured) and `response_base`.
    fn start(t: &T, secret: Option<&str>, response_base: &str) -> Server {
        let mut cmd = t.command();
        cmd.env_remove("T_MINUS_NOW")
            .env_remove("T_MINUS_SLACK_SIGNING_SECRET")
            .env("T_MINUS_SLACK_RESPONSE_BASE", response_base)
            .args(["serve", "--listen", "127.0.0.1:0", "--no-background"])
            .args(["--public-url", PUBLIC_URL, "--clock-for-tests", t.now()]);
        if let Some(secret) = secret {
            cmd.env("T_MINUS_SLACK_SIGNING_SECRET", secret);
        }
        let stderr = std::fs::File::create(t.dir().join("serve.err")).unwrap();
        cmd.stdout(Stdio::piped()).stderr(stderr);
        let mut child = cmd.spawn().expect("start t-minus serve");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let base = line
            .trim()
            .strip_prefix("t-minus serve: listening on ")
            .unwrap_or_else(|| panic!("serve did not start: {line:?}"))
            .to_string();
        Server {
            child,
            base,
            _stdout: stdout,
        }
    }

    /// POSTs `body` to the interactions route with Slack's headers; the
    /// status and the JSON body (`null` for an empty one).
    fn send(&self, timestamp: i64, signature: &str, body: &str) -> (u16, Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let mut r = agent
            .post(format!("{}/v1/slack/interactions", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Slack-Request-Timestamp", timestamp.to_string())
            .header("X-Slack-Signature", signature)
            .send(body)
            .unwrap();
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Sends `body` signed with [`SECRET`] at `timestamp`.
    fn press(&self, timestamp: i64, body: &str) -> (u16, Value) {
        self.send(timestamp, &signature(SECRET, timestamp, body), body)
    }
}

/// The pinned clock of `t` in Unix seconds.
fn unix(t: &T) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t.now())
        .unwrap()
        .timestamp()
}

/// The event's log entries with action `action`.
fn entries(t: &T, event: &str, action: &str) -> Vec<Value> {
    let log = t.json(&format!("log {event} --json"));
    log.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action)
        .cloned()
        .collect()
}

fn answers_from_slack_are_verified_recorded_and_update_the_message() {
    let t = T::new();
    let (slack, received) = fake_slack_host();
    t.ok(&format!(
        "apply {}",
        write(
            &t,
            "rel.yaml",
            &format!(
                "campaign: rel\nevents:\n  deploy:\n    at: +1h\n    attendees: [alice, bob]\n    quorum: 2\n    max_defer: 1h\n    notify:\n      - on: [opened]\n        webhook: {slack}hook\n        format: slack\n        defer: 20m\n"
            )
        )
    ));
    let id = t.json("status rel/deploy --json")["id"]
        .as_str()
        .unwrap()
        .to_string();
    t.ok(&format!("people link alice --slack {ALICE}"));
    let server = Server::start(&t, Some(SECRET), &slack);
    let now = unix(&t);

    // A good answer: recorded as alice's, and the message is replaced with
    // who answered and the quorum.
    let confirm = interaction(ALICE, "t-minus.confirm", &id, &format!("{slack}actions/1"));
    let (status, body) = server.press(now, &confirm);
    assert_eq!(status, 200, "{body}");
    let update = received.wait_for("/actions/1");
    assert_eq!(update["replace_original"], true, "{update}");
    let text = update["text"].as_str().unwrap();
    assert!(
        text.contains("alice confirmed rel/deploy from Slack"),
        "{text}"
    );
    let blocks = update["blocks"].to_string();
    assert!(blocks.contains("quorum 1/2"), "{blocks}");
    assert!(
        blocks.contains(&format!("{PUBLIC_URL}/events/{id}")),
        "{blocks}"
    );
    let confirmed = entries(&t, "rel/deploy", "confirmed");
    assert_eq!(confirmed.len(), 1);
    assert_eq!(confirmed[0]["agent"], "alice");
    let via = &confirmed[0]["detail"]["via"];
    assert_eq!(
        (&via["chat"], &via["user"]),
        (&json!("slack"), &json!(ALICE))
    );
    let request = via["request"].as_str().unwrap();
    assert!(
        request.starts_with("sha256:") && request.len() == 71,
        "{request}"
    );
    let whole_log = t.ok("log rel/deploy --json");
    assert!(
        !whole_log.contains("actions/1") && !whole_log.contains("response_url"),
        "the log never keeps the response_url: {whole_log}"
    );

    // The same signed request again is refused, and nothing is recorded.
    let (status, body) = server.press(now, &confirm);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("t_minus::slack::replay")),
        "{body}"
    );
    assert_eq!(entries(&t, "rel/deploy", "confirmed").len(), 1);

    // A bad signature, a wrong secret and an old timestamp: 401.
    let decline = interaction(ALICE, "t-minus.decline", &id, &format!("{slack}actions/2"));
    let mut forged = signature(SECRET, now, &decline);
    forged.replace_range(forged.len() - 4.., "0000");
    let (status, body) = server.send(now, &forged, &decline);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("t_minus::slack::signature")),
        "{body}"
    );
    let (status, body) = server.send(now, &signature("another-secret", now, &decline), &decline);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("t_minus::slack::signature")),
        "{body}"
    );
    let old = now - 301;
    let (status, body) = server.press(old, &decline);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("t_minus::slack::stale")),
        "{body}"
    );
    assert!(entries(&t, "rel/deploy", "declined").is_empty());
    assert_eq!(received.count("/actions/2"), 0);

    // An unknown Slack user gets an ephemeral reply saying what to ask.
    let (status, _) = server.press(
        now,
        &interaction(BOB, "t-minus.defer", &id, &format!("{slack}actions/3")),
    );
    assert_eq!(status, 200);
    let reply = received.wait_for("/actions/3");
    assert_eq!(
        (&reply["response_type"], &reply["replace_original"]),
        (&json!("ephemeral"), &json!(false)),
        "{reply}"
    );
    let text = reply["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("t-minus people link YOUR-AGENT --slack {BOB}")),
        "{text}"
    );
    assert!(entries(&t, "rel/deploy", "deferred").is_empty());

    // Once linked, Bob's Defer defers by the rule's `defer: 20m`.
    t.ok(&format!("people link bob --slack {BOB}"));
    let (status, _) = server.press(
        now + 1,
        &interaction(BOB, "t-minus.defer", &id, &format!("{slack}actions/4")),
    );
    assert_eq!(status, 200);
    let update = received.wait_for("/actions/4");
    assert!(
        update["text"].as_str().unwrap().contains("bob deferred"),
        "{update}"
    );
    let deferred = entries(&t, "rel/deploy", "deferred");
    assert_eq!(deferred.len(), 1);
    assert_eq!(deferred[0]["detail"]["by"], "20m", "{}", deferred[0]);
    assert_eq!(deferred[0]["detail"]["via"]["user"], BOB);

    // A response_url off Slack's hosts is never called.
    let elsewhere = interaction(ALICE, "t-minus.confirm", &id, "https://evil.example/x");
    let (status, body) = server.press(now + 2, &elsewhere);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("t_minus::slack::response_url")),
        "{body}"
    );

    // Every row, the links included, is explained by the log.
    t.ok("verify");
}

fn an_event_whose_answers_must_be_signed_gets_its_link() {
    use crate::trust::keygen;
    let t = T::new();
    let (slack, received) = fake_slack_host();
    let keys = tempfile::tempdir().unwrap();
    let (_, alice_pub) = keygen(keys.path(), "alice", "ed25519");
    t.ok(&format!(
        "apply {}",
        write(
            &t,
            "signed.yaml",
            &format!("campaign: signed\nsigners:\n  alice: \"{alice_pub}\"\nevents:\n  deploy:\n    at: +1h\n    attendees: [alice]\n")
        )
    ));
    let id = t.json("status signed/deploy --json")["id"]
        .as_str()
        .unwrap()
        .to_string();
    t.ok(&format!("people link alice --slack {ALICE}"));
    let server = Server::start(&t, Some(SECRET), &slack);
    let (status, _) = server.press(
        unix(&t),
        &interaction(ALICE, "t-minus.confirm", &id, &format!("{slack}actions/9")),
    );
    assert_eq!(status, 200);
    let reply = received.wait_for("/actions/9");
    assert_eq!(reply["response_type"], "ephemeral", "{reply}");
    let text = reply["text"].as_str().unwrap();
    assert!(
        text.contains("must be signed") && text.contains(&format!("{PUBLIC_URL}/events/{id}")),
        "{text}"
    );
    assert!(entries(&t, "signed/deploy", "confirmed").is_empty());
}

fn without_a_signing_secret_the_route_refuses_and_says_how_to_enable_it() {
    let t = T::new();
    let (slack, _) = fake_slack_host();
    let server = Server::start(&t, None, &slack);
    let body = interaction(ALICE, "t-minus.confirm", "x", &format!("{slack}actions/1"));
    let (status, reply) = server.press(unix(&t), &body);
    assert_eq!(status, 503, "{reply}");
    assert_eq!(reply["error"]["code"], "t_minus::slack::not_configured");
    assert!(
        reply["error"]["help"]
            .as_str()
            .unwrap()
            .contains("T_MINUS_SLACK_SIGNING_SECRET"),
        "{reply}"
    );
}

fn people_link_and_unlink_are_logged_and_checked_by_verify() {
    let t = T::new();
    let out = t.ok(&format!("people link alice --slack {ALICE}"));
    assert!(
        out.contains(&format!("Linked Slack user {ALICE} to agent alice")),
        "{out}"
    );
    let err = t.fail(&format!("people link bob --slack {ALICE}"));
    assert!(err.contains("t_minus::refused::chat_linked"), "{err}");
    assert!(err.contains("already linked to agent alice"), "{err}");
    let err = t.fail("people link bob --slack alice");
    assert!(err.contains("t_minus::input::chat_user"), "{err}");
    let links = t.json("people links --json");
    assert_eq!(links.as_array().unwrap().len(), 1);
    assert_eq!(
        (&links[0]["agent"], &links[0]["user"], &links[0]["chat"]),
        (&json!("alice"), &json!(ALICE), &json!("slack"))
    );
    let err = t.fail(&format!("people unlink bob --slack {ALICE}"));
    assert!(err.contains("t_minus::refused::chat_link_agent"), "{err}");
    t.ok(&format!("people link bob --slack {BOB}"));
    t.ok(&format!("people unlink alice --slack {ALICE}"));
    let err = t.fail(&format!("people unlink --slack {ALICE}"));
    assert!(err.contains("t_minus::not_found::chat_link"), "{err}");
    let links = t.json("people links --json");
    assert_eq!(links.as_array().unwrap().len(), 1);
    assert_eq!(links[0]["agent"], "bob");
    t.ok("verify");

    // A link changed or added behind the log's back is caught by verify.
    stores::tamper(
        &t.db_location(),
        &format!("UPDATE {{chat_links}} SET agent = 'mallory' WHERE chat_user = '{BOB}'"),
    );
    let err = t.fail("verify");
    assert!(
        err.contains("agent is stored as \"mallory\" but the log says \"bob\""),
        "{err}"
    );
    stores::tamper(
        &t.db_location(),
        &format!(
            "UPDATE {{chat_links}} SET agent = 'bob' WHERE chat_user = '{BOB}'; \
             INSERT INTO {{chat_links}} (id, chat, chat_user, agent, linked_ms) \
             VALUES ({}, 'slack', '{ALICE}', 'alice', 0)",
            stores::id_sql(uuid::Uuid::new_v4())
        ),
    );
    let err = t.fail("verify");
    assert!(err.contains("chat-link "), "{err}");
    assert!(err.contains("row is stored as \"present\""), "{err}");
}

fn slack_notifications_carry_buttons_and_every_payload_its_answer_url() {
    let t = T::new();
    let (hooks, received) = fake_slack_host();
    t.ok(&format!(
        "apply {}",
        write(
            &t,
            "n.yaml",
            &format!(
                "campaign: n\nevents:\n  review:\n    at: +1h\n    attendees: [alice]\n    notify:\n      - on: [opened]\n        webhook: {hooks}slack\n        format: slack\n      - on: [opened]\n        webhook: {hooks}json\n"
            )
        )
    ));
    let id = t.json("status n/review --json")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut cmd = t.command();
    cmd.env("T_MINUS_PUBLIC_URL", format!("{PUBLIC_URL}/"))
        .args(["notify", "test", "n/review", "--on", "opened"]);
    let out = cli_support::output(cmd);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let url = format!("{PUBLIC_URL}/events/{id}");
    let json = received.wait_for("/json");
    assert_eq!(json["answer_url"], url.as_str(), "{json}");
    let message = received.wait_for("/slack");
    assert!(
        message["text"].as_str().unwrap().contains("n/review"),
        "{message}"
    );
    let actions = message["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .expect("an actions block")
        .clone();
    let buttons: Vec<(&str, &str)> = actions["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["action_id"].as_str().unwrap(),
                b["value"].as_str().or(b["url"].as_str()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        buttons,
        vec![
            ("t-minus.confirm", id.as_str()),
            ("t-minus.defer", id.as_str()),
            ("t-minus.decline", id.as_str()),
            ("t-minus.open", url.as_str()),
        ]
    );
    // Without a public URL, no answer_url and no Open button.
    let out = t.run("notify test n/review --on opened");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let deadline = Instant::now() + Duration::from_secs(20);
    while received.count("/json") < 2 {
        assert!(Instant::now() < deadline, "no second delivery");
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = received
        .0
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|(p, _)| p == "/json")
        .unwrap()
        .1
        .clone();
    assert!(second.get("answer_url").is_none(), "{second}");
}

fn a_chat_request_is_answered_once_by_every_process_on_the_store() {
    use t_minus::chat::{Chat, ChatLinkError};
    use t_minus::engine::{chat_request_digest, ChatAnswer};
    use t_minus::{AgentId, FixedClock, TMinusError};
    let t = T::new();
    t.ok("schedule deploy +1h --attendees alice,bob --name deploy");
    let clock = FixedClock::new(t.now().parse().unwrap());
    let mut first = crate::common::open_engine(&t.db_location(), &clock);
    let mut second = crate::common::open_engine(&t.db_location(), &clock);
    let id = first.resolve_event("deploy").unwrap();
    first
        .link_chat(&AgentId::parse("alice").unwrap(), Chat::Slack, ALICE)
        .unwrap();
    let digest = chat_request_digest(b"v0:1749221400:payload=%7B%7D");
    let (event, agent) = first
        .answer_from_chat(id, Chat::Slack, ALICE, ChatAnswer::Confirm, &digest)
        .unwrap();
    assert_eq!((agent.as_str(), event.confirmed_count()), ("alice", 1));
    // Another process (another `serve` on the store) refuses the same
    // request: its digest is used up in the store.
    let err = second
        .answer_from_chat(id, Chat::Slack, ALICE, ChatAnswer::Decline, &digest)
        .unwrap_err();
    assert!(
        matches!(err, TMinusError::ChatLink(ChatLinkError::Replayed { .. })),
        "{err:?}"
    );
    // An account that is not linked answers nothing.
    let err = second
        .answer_from_chat(
            id,
            Chat::Slack,
            BOB,
            ChatAnswer::Confirm,
            &chat_request_digest(b"other"),
        )
        .unwrap_err();
    assert!(
        matches!(err, TMinusError::ChatLink(ChatLinkError::NotLinked { .. })),
        "{err:?}"
    );
    let confirmed = entries(&t, "deploy", "confirmed");
    assert_eq!(confirmed.len(), 1);
    assert_eq!(confirmed[0]["detail"]["via"]["request"], digest.as_str());
    assert!(entries(&t, "deploy", "declined").is_empty());
}

/// Writes `text` to `name` in `t`'s directory; returns the name.
fn write(t: &T, name: &str, text: &str) -> String {
    std::fs::write(t.dir().join(name), text).unwrap();
    name.to_string()
}

cli_support::store_tests!(
    answers_from_slack_are_verified_recorded_and_update_the_message,
    an_event_whose_answers_must_be_signed_gets_its_link,
    without_a_signing_secret_the_route_refuses_and_says_how_to_enable_it,
    people_link_and_unlink_are_logged_and_checked_by_verify,
    slack_notifications_carry_buttons_and_every_payload_its_answer_url,
    a_chat_request_is_answered_once_by_every_process_on_the_store,
);
