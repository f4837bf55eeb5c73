//! The MCP server of `t-minus serve` at `/mcp` (streamable HTTP) as its
//! clients use it: JSON-RPC posted over real HTTP, the agent the bearer
//! token's and never an argument, roles applied, the `Host` check, events
//! whose answers must be signed answered in two steps, and the official
//! Python MCP SDK as a client.
//!
//! Every test runs on SQLite and on PostgreSQL.

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::{json, Value};

use crate::cli_support::{self, T};
use crate::serve::{answer_of, token, Server};

/// The protocol version the tests speak.
const PROTOCOL: &str = "2025-06-18";

/// An MCP client of `server` with one token, over plain HTTP posts.
struct Mcp {
    url: String,
    token: Option<String>,
    http: ureq::Agent,
}

/// A reply to one post: the status and the JSON-RPC messages it carried
/// (the SSE events' data, or the JSON body), or the body as text.
struct Posted {
    status: u16,
    messages: Vec<Value>,
    text: String,
}

impl Mcp {
    fn new(server: &Server, token: Option<&str>) -> Mcp {
        Mcp {
            url: format!("{}/mcp", server.base),
            token: token.map(String::from),
            http: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(60)))
                .build()
                .into(),
        }
    }

    fn post(&self, message: &Value) -> Posted {
        let mut request = self
            .http
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", PROTOCOL);
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let mut response = request.send(message.to_string()).unwrap();
        let status = response.status().as_u16();
        let sse = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let text = response.body_mut().read_to_string().unwrap();
        let messages = if sse {
            text.lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(|d| serde_json::from_str(d).unwrap())
                .collect()
        } else {
            serde_json::from_str(&text).into_iter().collect()
        };
        Posted {
            status,
            messages,
            text,
        }
    }

    /// A request; its answer's `result` (or `error`).
    #[track_caller]
    fn request(&self, method: &str, params: Value) -> Value {
        let posted =
            self.post(&json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}));
        assert_eq!(posted.status, 200, "{method}: {}", posted.text);
        let answer = posted
            .messages
            .into_iter()
            .find(|m| m["id"] == 7)
            .unwrap_or_else(|| panic!("{method}: no answer in {}", posted.text));
        answer
            .get("result")
            .or_else(|| answer.get("error"))
            .cloned()
            .unwrap()
    }

    fn initialize(&self) -> Value {
        self.request(
            "initialize",
            json!({"protocolVersion": PROTOCOL, "capabilities": {},
                   "clientInfo": {"name": "t-minus-tests", "version": "0"}}),
        )
    }

    fn call(&self, tool: &str, arguments: Value) -> Value {
        self.request("tools/call", json!({"name": tool, "arguments": arguments}))
    }

    /// A tool call that succeeds: its structured result.
    #[track_caller]
    fn ok(&self, tool: &str, arguments: Value) -> Value {
        let result = self.call(tool, arguments);
        assert_ne!(result["isError"], true, "{tool}: {result}");
        result["structuredContent"].clone()
    }

    /// A tool call refused as a tool error whose text starts with `code`:
    /// its text.
    #[track_caller]
    fn refused(&self, tool: &str, arguments: Value, code: &str) -> String {
        let result = self.call(tool, arguments);
        assert_eq!(result["isError"], true, "{tool}: {result}");
        let text = result["content"][0]["text"].as_str().unwrap().to_string();
        assert!(text.starts_with(code), "{tool}: {text}");
        text
    }
}

/// Posts `body` to `/mcp` over a raw connection with the `Host` header
/// `host`; the status.
fn status_with_host(server: &Server, host: &str, token: &str) -> u16 {
    let addr = server.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string();
    write!(
        stream,
        "POST /mcp HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         MCP-Protocol-Version: {PROTOCOL}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {reply:?}"))
}

fn mcp_over_http_answers_as_the_tokens_agent() {
    let t = T::new();
    let id = t.schedule("review +30m --name rev --quorum 2 --attendees alice,bob,carol");
    let (alice, watcher, ops) = (
        token(&t, "alice", "agent"),
        token(&t, "watcher", "reader"),
        token(&t, "ops", "operator"),
    );
    let server = Server::start(&t, &["--public-url", "https://tminus.example:8443/"]);

    // No token, or a wrong one: 401 with the API's error, before MCP.
    let none =
        Mcp::new(&server, None).post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
    assert_eq!(none.status, 401, "{}", none.text);
    assert!(
        none.text.contains("t_minus::auth::missing"),
        "{}",
        none.text
    );
    let wrong = format!("tmt_{}", "1".repeat(64));
    let bad = Mcp::new(&server, Some(&wrong))
        .post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
    assert_eq!(bad.status, 401, "{}", bad.text);
    assert!(bad.text.contains("t_minus::auth::token"), "{}", bad.text);

    // The Host header: the loopback names and the public URL's host.
    assert_eq!(status_with_host(&server, "evil.example", &alice), 403);
    assert_eq!(
        status_with_host(&server, "tminus.example:8443", &alice),
        200
    );
    assert_eq!(status_with_host(&server, "localhost", &alice), 200);

    let a = Mcp::new(&server, Some(&alice));
    let info = a.initialize();
    assert_eq!(info["serverInfo"]["name"], "t-minus");
    assert!(info["capabilities"]["tools"].is_object(), "{info}");
    let tools = a.request("tools/list", json!({}));
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, crate::mcp::TOOLS);
    for tool in tools["tools"].as_array().unwrap() {
        assert!(
            tool["inputSchema"]["properties"].get("agent").is_none(),
            "{} takes an agent",
            tool["name"]
        );
    }

    // Alice reads her inbox and answers as herself.
    let inbox = a.ok("inbox", json!({}));
    assert_eq!(inbox["agent"], "alice");
    assert_eq!(inbox["events"][0]["id"], id.as_str());
    let confirmed = a.ok("confirm", json!({"event": "rev"}));
    assert_eq!(confirmed["confirmed"], 1);
    assert_eq!(answer_of(&t.event("rev"), "alice"), "confirmed");
    // No tool takes an agent: naming one is refused, nothing written.
    a.refused(
        "decline",
        json!({"event": "rev", "agent": "bob"}),
        "t_minus::input::arguments",
    );
    assert_eq!(answer_of(&t.event("rev"), "bob"), "pending");
    let deferred = a.ok("defer", json!({"event": "rev", "duration": "10m"}));
    assert_eq!(deferred["deferred_ms"], 600_000);
    // Alice delegates her own answers, as the token's agent.
    let made = a.ok("delegate", json!({"to": "dave"}));
    assert_eq!(
        (&made["from"], &made["to"]),
        (&json!("alice"), &json!("dave"))
    );
    assert_eq!(
        a.ok("delegations", json!({}))["delegations"][0]["id"],
        made["id"]
    );

    // A reader reads and cannot answer; an operator does not answer either.
    let w = Mcp::new(&server, Some(&watcher));
    assert_eq!(
        w.ok("get_event", json!({"event": "rev"}))["id"],
        id.as_str()
    );
    assert_eq!(w.ok("inbox", json!({}))["agent"], "watcher");
    for (client, role) in [(&w, "reader"), (&Mcp::new(&server, Some(&ops)), "operator")] {
        for (tool, args) in [
            ("confirm", json!({"event": "rev"})),
            ("decline", json!({"event": "rev"})),
            ("defer", json!({"event": "rev", "duration": "5m"})),
            (
                "answer_message",
                json!({"event": "rev", "answer": "confirm"}),
            ),
            ("delegate", json!({"to": "erin"})),
            ("undelegate", json!({"delegation": made["id"]})),
        ] {
            let text = client.refused(tool, args, "t_minus::auth::role");
            assert!(text.contains(role), "{text}");
        }
    }
    let stored = t.event("rev");
    assert_eq!(answer_of(&stored, "alice"), "deferred");
    assert_eq!(answer_of(&stored, "bob"), "pending");
    assert_eq!(answer_of(&stored, "carol"), "pending");

    // A revoked token is refused at the next request.
    t.ok(&format!("token revoke {}", token_id(&t, "watcher")));
    let revoked = w.post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
    assert_eq!(revoked.status, 401, "{}", revoked.text);
    assert!(
        revoked.text.contains("t_minus::auth::revoked"),
        "{}",
        revoked.text
    );

    // Answers over MCP are counted with the others.
    let metrics = ureq::get(format!("{}/metrics", server.base))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        metrics.contains("answer=\"confirm\"") && metrics.contains("answer=\"defer\""),
        "{metrics}"
    );
}

/// The id of `agent`'s token, from `token list --json`.
fn token_id(t: &T, agent: &str) -> String {
    t.json("token list --json")
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["agent"] == agent)
        .map(|k| k["id"].as_str().unwrap().to_string())
        .unwrap()
}

fn signed_events_are_answered_over_mcp_in_two_steps() {
    use crate::trust::{apply_signed_release, ssh_keygen_sign, Keys};
    let t = T::new();
    let keys = Keys::new();
    apply_signed_release(&t, &keys);
    let alice = token(&t, "alice", "agent");
    let server = Server::start(&t, &[]);
    let a = Mcp::new(&server, Some(&alice));

    // The server holds no key: a plain confirm is refused, saying what to do.
    let text = a.refused(
        "confirm",
        json!({"event": "release/deploy"}),
        "t_minus::trust::unsigned",
    );
    assert!(text.contains("answer_message"), "{text}");

    // Step one: the exact message, as answer-message prints it.
    let to_sign = a.ok(
        "answer_message",
        json!({"event": "release/deploy", "answer": "confirm"}),
    );
    let message = to_sign["message"].as_str().unwrap().to_string();
    assert_eq!(to_sign["agent"], "alice");
    assert_eq!(to_sign["answer"], "confirm");
    assert_eq!(to_sign["namespace"], "t-minus");
    assert_eq!(to_sign["time"], t.now());
    let digest = t.event("release/deploy")["content_digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains(&digest) && message.contains("agent: alice\n"),
        "{message}"
    );
    assert_eq!(answer_of(&t.event("release/deploy"), "alice"), "pending");

    // Step two: the message and its signature, made with alice's own key.
    let sign = |key: &std::path::Path, text: &str, name: &str| {
        let file = keys.dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        ssh_keygen_sign(key, "t-minus", &file)
    };
    let signature = sign(&keys.alice.0, &message, "alice.txt");
    // A signature by another key is refused; nothing is written.
    let forged = sign(&keys.bob.0, &message, "forged.txt");
    a.refused(
        "submit_answer",
        json!({"message": message, "signature": forged}),
        "t_minus::trust::",
    );
    assert_eq!(answer_of(&t.event("release/deploy"), "alice"), "pending");
    let event = a.ok(
        "submit_answer",
        json!({"message": message, "signature": signature}),
    );
    assert_eq!(event["confirmed"], 1);
    assert_eq!(answer_of(&t.event("release/deploy"), "alice"), "confirmed");
    assert!(t.ok("verify").contains("1 signature"));
    // The same answer again: its nonce was used.
    a.refused(
        "submit_answer",
        json!({"message": message, "signature": signature}),
        "t_minus::trust::nonce",
    );

    // Bob's signed message is bob's answer: not alice's to submit.
    let bobs = t.ok("answer-message release/deploy bob confirm");
    let bob_signature = sign(&keys.bob.0, &bobs, "bob.txt");
    let text = a.refused(
        "submit_answer",
        json!({"message": bobs, "signature": bob_signature}),
        "t_minus::input::arguments",
    );
    assert!(text.contains("bob"), "{text}");
    assert_eq!(answer_of(&t.event("release/deploy"), "bob"), "pending");

    // Arguments that do not go with the answer are refused.
    for (args, said) in [
        (
            json!({"event": "release/deploy", "answer": "defer"}),
            "needs a `duration`",
        ),
        (
            json!({"event": "release/deploy", "answer": "confirm", "duration": "5m"}),
            "`duration` goes with `defer` only",
        ),
        (
            json!({"event": "release/deploy", "answer": "confirm", "reason": "x"}),
            "`reason` goes with `decline` only",
        ),
    ] {
        let text = a.refused("answer_message", args, "t_minus::input::arguments");
        assert!(text.contains(said), "{text}");
    }
    a.refused(
        "answer_message",
        json!({"event": "release/deploy", "answer": "cancel"}),
        "t_minus::input::arguments",
    );
    let deferral = a.ok(
        "answer_message",
        json!({"event": "release/deploy", "answer": "defer", "duration": "10m"}),
    );
    assert_eq!(deferral["answer"], "defer 10m");
}

/// The official Python MCP SDK drives `/mcp` over streamable HTTP with a
/// bearer token: list tools, inbox, confirm, wait_event with progress while
/// another process confirms, the refusals of a final event and of a
/// reader's answer; the SDK validates every structured result against the
/// tool's output schema. Ignored when `T_MINUS_TEST_MCP_PYTHON` is unset at
/// build time (`cfg(t_minus_test_mcp_python)`); fails when it is set and
/// the SDK is missing.
fn python_sdk_speaks_streamable_http() {
    let mut client = crate::mcp::sdk_client("python_http_client.py");
    let t = T::new();
    let id = t.schedule("review +30m --attendees alice,bob");
    let (alice, watcher) = (token(&t, "alice", "agent"), token(&t, "watcher", "reader"));
    let server = Server::start(&t, &[]);
    client
        .arg(format!("{}/mcp", server.base))
        .args([&alice, &watcher, &id])
        .arg(assert_cmd::cargo::cargo_bin!("t-minus"))
        .arg(t.db_location())
        .env("T_MINUS_NOW", t.now())
        .env("NO_COLOR", "1")
        .current_dir(t.dir());
    let transcript = crate::mcp::sdk_transcript(client);
    assert_eq!(transcript["server"], "t-minus");
    assert_eq!(transcript["tools"], json!(crate::mcp::TOOLS));
    assert_eq!(transcript["inbox"]["agent"], "alice");
    assert_eq!(transcript["inbox"]["events"][0]["id"], id.as_str());
    assert_eq!(transcript["confirm"]["confirmed"], 1);
    assert_eq!(transcript["wait_event"]["state"], "fired");
    assert!(
        transcript["progress"]
            .as_array()
            .is_some_and(|p| !p.is_empty()),
        "{transcript}"
    );
    assert_eq!(transcript["refusal"]["is_error"], true);
    assert!(transcript["refusal"]["text"]
        .as_str()
        .unwrap()
        .starts_with("t_minus::refused::final_event"));
    assert_eq!(transcript["reader_inbox"]["agent"], "watcher");
    assert_eq!(transcript["reader_confirm"]["is_error"], true);
    assert!(transcript["reader_confirm"]["text"]
        .as_str()
        .unwrap()
        .starts_with("t_minus::auth::role"));
    let stored = t.event(&id);
    assert_eq!(stored["state"], "fired");
    assert_eq!(answer_of(&stored, "alice"), "confirmed");
}

cli_support::store_tests!(
    mcp_over_http_answers_as_the_tokens_agent,
    signed_events_are_answered_over_mcp_in_two_steps,
);

/// The Python SDK's test on both stores, ignored without the SDK.
mod python_sdk {
    use crate::cli_support::stores::{run, Backend};

    #[test]
    #[cfg_attr(not(t_minus_test_mcp_python), ignore = "needs T_MINUS_TEST_MCP_PYTHON")]
    fn sqlite() {
        run(
            Backend::Sqlite,
            "python_sdk::sqlite",
            super::python_sdk_speaks_streamable_http,
        );
    }

    #[test]
    #[cfg_attr(
        not(all(t_minus_test_mcp_python, t_minus_test_pg)),
        ignore = "needs T_MINUS_TEST_MCP_PYTHON and T_MINUS_TEST_PG"
    )]
    fn postgres() {
        run(
            Backend::Postgres,
            "python_sdk::postgres",
            super::python_sdk_speaks_streamable_http,
        );
    }
}
