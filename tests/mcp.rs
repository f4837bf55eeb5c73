//! The MCP server (`t_minus::mcp`, `t-minus mcp`): an in-process rmcp
//! client over a pipe exercises every tool, refusal and bad argument on both
//! stores; raw JSON-RPC checks the malformed cases; the official Python SDK
//! drives the binary as a subprocess.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use rmcp::model::{CallToolRequestParams, CallToolResult, ProgressNotificationParam};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{json, Value};
use t_minus::mcp::McpServer;
use t_minus::{EventKind, FixedClock, NewEvent, Quorum};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::common::{self, agent, agents, at_min, open_engine, spec, t0, NOW};

/// The tools the server offers, in order.
pub(crate) const TOOLS: [&str; 12] = [
    "inbox",
    "get_event",
    "confirm",
    "defer",
    "decline",
    "wait_event",
    "campaign_status",
    "answer_message",
    "delegate",
    "delegations",
    "undelegate",
    "submit_answer",
];

/// A client that records the progress notifications it receives.
#[derive(Clone, Default)]
struct Recorder {
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }
}

/// A client connected to a server for `who` on the store at `location`.
struct Session {
    client: RunningService<RoleClient, Recorder>,
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl Session {
    async fn connect(location: &str, who: &str) -> Session {
        Session::serve(McpServer::new(location, agent(who), Some(t0()))).await
    }

    /// A client connected to `server`.
    async fn serve(server: McpServer) -> Session {
        let (server_end, client_end) = tokio::io::duplex(1 << 16);
        tokio::spawn(async move {
            if let Ok(running) = server.serve(server_end).await {
                let _ = running.waiting().await;
            }
        });
        let recorder = Recorder::default();
        let progress = recorder.progress.clone();
        let client = recorder.serve(client_end).await.expect("initialize");
        Session { client, progress }
    }

    /// Calls `tool` with `args` (a JSON object); the tool result.
    async fn call(&self, tool: &'static str, args: Value) -> CallToolResult {
        let Value::Object(args) = args else {
            panic!("arguments must be an object")
        };
        self.client
            .call_tool(CallToolRequestParams::new(tool).with_arguments(args))
            .await
            .unwrap_or_else(|e| panic!("{tool}: {e}"))
    }

    /// A call that must succeed: its structured content.
    async fn ok(&self, tool: &'static str, args: Value) -> Value {
        let result = self.call(tool, args.clone()).await;
        assert_eq!(
            result.is_error,
            Some(false),
            "{tool} {args} failed: {}",
            text(&result)
        );
        assert!(!text(&result).is_empty(), "{tool} has no text");
        let value = result.structured_content.expect("structured content");
        conforms(tool, &value);
        value
    }

    /// A call that must be a tool error: its text, which starts with `code`.
    async fn refused(&self, tool: &'static str, args: Value, code: &str) -> String {
        let result = self.call(tool, args.clone()).await;
        let text = text(&result);
        assert_eq!(
            result.is_error,
            Some(true),
            "{tool} {args} succeeded: {text}"
        );
        assert!(
            text.starts_with(&format!("{code}: ")),
            "{tool} {args}: expected {code}, got {text}"
        );
        text
    }
}

/// Checks a tool's structured result against the output schema the tool
/// declares (formats included: times, ids).
#[track_caller]
fn conforms(tool: &str, value: &Value) {
    let declared = McpServer::tools()
        .into_iter()
        .find(|t| t.name == tool)
        .and_then(|t| t.output_schema)
        .unwrap_or_else(|| panic!("{tool} declares no output schema"));
    let schema = Value::Object(declared.as_ref().clone());
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{tool}: {errors:?}\n{value:#}");
}

/// Each tool's declared output schema is the schema derived from the
/// `t_minus::output` type it returns (less the root's title and
/// description, which MCP leaves out).
#[test]
fn break_glass_is_never_offered_to_an_agent_over_mcp() {
    let names: Vec<String> = McpServer::tools()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(!names.is_empty());
    assert!(
        names
            .iter()
            .all(|n| !n.contains("break") && !n.contains("glass")),
        "{names:?}"
    );
}

#[test]
fn output_schemas_are_derived_from_the_output_types() {
    use t_minus::output::{
        schema, AgentDelegations, AnswerToSign, CampaignStatus, Delegation, Event, Inbox,
    };
    fn root<S: schemars::JsonSchema>() -> Value {
        let mut value = schema::<S>();
        let map = value.as_object_mut().unwrap();
        map.remove("title");
        map.remove("description");
        value
    }
    let expected = [
        ("inbox", root::<Inbox>()),
        ("get_event", root::<Event>()),
        ("confirm", root::<Event>()),
        ("defer", root::<Event>()),
        ("decline", root::<Event>()),
        ("wait_event", root::<Event>()),
        ("campaign_status", root::<CampaignStatus>()),
        ("answer_message", root::<AnswerToSign>()),
        ("delegate", root::<Delegation>()),
        ("delegations", root::<AgentDelegations>()),
        ("undelegate", root::<Delegation>()),
        ("submit_answer", root::<Event>()),
    ];
    let tools = McpServer::tools();
    assert_eq!(tools.len(), expected.len());
    for (name, schema) in expected {
        let tool = tools.iter().find(|t| t.name == name).expect(name);
        let declared = Value::Object(tool.output_schema.as_ref().expect(name).as_ref().clone());
        assert_eq!(declared, schema, "{name}");
        assert_eq!(declared["type"], "object", "{name}");
    }
}

/// The text of a result's content.
fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs `t-minus ARGS` on `location` at [`NOW`]; panics unless it succeeds.
fn t_minus(location: &str, args: &[&str]) -> String {
    let out = Command::new(assert_cmd::cargo::cargo_bin!("t-minus"))
        .arg("--db")
        .arg(location)
        .args(args)
        .env("T_MINUS_NOW", NOW)
        .env("NO_COLOR", "1")
        .output()
        .expect("run t-minus");
    assert!(
        out.status.success(),
        "t-minus {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn tools_are_exactly_these_with_input_and_output_schemas() {
    let (_store, location) = common::store();
    runtime().block_on(async {
        let s = Session::connect(&location, "alice").await;
        let info = s.client.peer_info().expect("server info");
        assert_eq!(
            info.server_info.as_ref().map(|i| i.name.as_str()),
            Some("t-minus")
        );
        let tools = s.client.list_all_tools().await.expect("tools/list");
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names, TOOLS);
        let required = |t: &rmcp::model::Tool| -> Vec<String> {
            t.input_schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().map(|v| v.as_str().unwrap().to_string()).collect())
                .unwrap_or_default()
        };
        for tool in &tools {
            assert_eq!(tool.input_schema["type"], "object", "{}", tool.name);
            let props = tool.input_schema["properties"]
                .as_object()
                .expect("properties");
            assert!(!props.contains_key("agent"), "{} takes an agent", tool.name);
            let output = tool.output_schema.as_ref().expect("an output schema");
            assert_eq!(output["type"], "object", "{}", tool.name);
            assert!(tool.description.is_some());
        }
        let by = |n: &str| tools.iter().find(|t| t.name == n).unwrap();
        assert_eq!(required(by("inbox")), Vec::<String>::new());
        assert_eq!(required(by("confirm")), ["event"]);
        assert_eq!(required(by("defer")), ["event", "duration"]);
        assert_eq!(required(by("decline")), ["event"]);
        assert_eq!(required(by("wait_event")), ["event"]);
        assert_eq!(required(by("campaign_status")), ["campaign"]);
        assert_eq!(required(by("answer_message")), ["event", "answer"]);
        assert_eq!(required(by("submit_answer")), ["message", "signature"]);
        assert_eq!(required(by("delegate")), Vec::<String>::new());
        assert_eq!(required(by("delegations")), Vec::<String>::new());
        assert_eq!(required(by("undelegate")), ["delegation"]);
        let event_props = by("get_event").output_schema.as_ref().unwrap()["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>();
        assert!(event_props.contains(&"fire_time".to_string()));
        assert!(event_props.contains(&"attendees".to_string()));
    });
}

fn every_tool_answers_as_the_servers_agent() {
    let (_store, location) = common::store();
    let clock = FixedClock::new(t0());
    let mut engine = open_engine(&location, &clock);
    let standup = engine
        .schedule(spec(10, &["alice", "bob"], Quorum::All))
        .unwrap();
    let retro = engine
        .schedule(spec(60, &["bob", "alice"], Quorum::All))
        .unwrap();
    let campaign = engine.create_campaign("release".into()).unwrap();
    let review = engine
        .campaign_add(
            campaign.id,
            spec(20, &["alice", "carol"], Quorum::Count(1)),
            Some("review".into()),
        )
        .unwrap();
    let deploy = engine
        .campaign_add(
            campaign.id,
            NewEvent {
                attendees: agents(&["ops"]),
                ..NewEvent::new(EventKind::Deploy, at_min(40))
            },
            Some("deploy".into()),
        )
        .unwrap();
    engine
        .campaign_link(campaign.id, review.id, deploy.id)
        .unwrap();
    drop(engine);

    runtime().block_on(async {
        let s = Session::connect(&location, "alice").await;

        let inbox = s.ok("inbox", json!({})).await;
        assert_eq!(inbox["agent"], "alice");
        let ids: Vec<&str> = inbox["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        let (standup_id, retro_id, review_id) = (
            standup.id.to_string(),
            retro.id.to_string(),
            review.id.to_string(),
        );
        assert_eq!(
            ids,
            [standup_id.as_str(), review_id.as_str(), retro_id.as_str()]
        );
        assert_eq!(inbox["events"][1]["campaign"], "release");
        assert_eq!(inbox["events"][1]["name"], "review");

        // get_event by `campaign/name`, in the shape of `status EVENT --json`.
        let event = s
            .ok("get_event", json!({ "event": "release/review" }))
            .await;
        assert_eq!(event["id"], review_id.as_str());
        assert_eq!(event["state"], "pending");
        assert_eq!(event["quorum"], 1);

        // confirm by 8-digit prefix, as alice.
        let confirmed = s.ok("confirm", json!({ "event": &standup_id[..8] })).await;
        assert_eq!(confirmed["confirmed"], 1);
        assert_eq!(
            confirmed["attendees"][0],
            json!({ "agent": "alice", "status": "confirmed" })
        );
        assert_eq!(
            confirmed["attendees"][1]["status"], "pending",
            "bob is untouched"
        );

        // defer moves the event; decline records the reason.
        let deferred = s
            .ok("defer", json!({ "event": retro_id, "duration": "15m" }))
            .await;
        assert_eq!(deferred["attendees"][1]["status"], "deferred");
        assert_eq!(deferred["attendees"][1]["deferred_ms"], 900_000);
        assert_eq!(deferred["fire_time"], "2025-06-06T16:05:00Z");
        let declined = s
            .ok(
                "decline",
                json!({ "event": "release/review", "reason": "on leave" }),
            )
            .await;
        assert_eq!(declined["attendees"][0]["status"], "declined");
        assert_eq!(declined["state"], "pending", "carol can still confirm");

        // The inbox now holds the deferred retro only; `all` adds the rest.
        let inbox = s.ok("inbox", json!({ "all": false })).await;
        assert_eq!(inbox["events"].as_array().unwrap().len(), 1);
        assert_eq!(inbox["events"][0]["id"], retro_id.as_str());
        let all = s.ok("inbox", json!({ "all": true })).await;
        assert_eq!(all["events"].as_array().unwrap().len(), 3);

        // campaign_status: the campaign in execution order with full events.
        let status = s
            .ok("campaign_status", json!({ "campaign": "release" }))
            .await;
        assert_eq!(status["name"], "release");
        let names: Vec<&str> = status["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["review", "deploy"]);
        assert_eq!(status["events"][1]["state"], "blocked");
        assert_eq!(status["dependencies"].as_array().unwrap().len(), 1);
    });

    // Every answer was written as alice, to the store.
    let engine = open_engine(&location, &clock);
    let log = engine.log(retro.id).unwrap();
    let last = log.last().unwrap();
    assert_eq!(last.agent.as_ref().map(|a| a.as_str()), Some("alice"));
    assert_eq!(last.action.to_string(), "deferred");
    let standup = engine.get_event(standup.id).unwrap().unwrap();
    assert_eq!(common::response(&standup, "alice").word(), "confirmed");
}

fn refusals_are_tool_errors_with_the_cli_code_and_message() {
    let (_store, location) = common::store();
    let clock = FixedClock::new(t0());
    let mut engine = open_engine(&location, &clock);
    let not_hers = engine
        .schedule(spec(10, &["bob"], Quorum::All))
        .unwrap()
        .id
        .to_string();
    let capped = engine
        .schedule(NewEvent {
            max_defer: Some(common::mins(10)),
            ..spec(30, &["alice"], Quorum::All)
        })
        .unwrap()
        .id
        .to_string();
    let fired = engine
        .schedule(spec(30, &["alice"], Quorum::All))
        .unwrap()
        .id
        .to_string();
    engine
        .confirm(fired.parse().unwrap(), &agent("alice"))
        .unwrap();
    // Two events that share their first 4 hex digits, for an ambiguous prefix.
    let mut seen = std::collections::HashMap::new();
    let prefix = loop {
        let id = engine
            .schedule(spec(90, &["alice"], Quorum::All))
            .unwrap()
            .id
            .to_string();
        if seen.insert(id[..4].to_string(), id.clone()).is_some() {
            break id[..4].to_string();
        }
        assert!(seen.len() < 5000, "no shared prefix");
    };
    drop(engine);

    runtime().block_on(async {
        let s = Session::connect(&location, "alice").await;
        let text = s
            .refused(
                "confirm",
                json!({ "event": not_hers }),
                "t_minus::refused::not_attendee",
            )
            .await;
        assert!(text.contains("alice") && text.contains("bob"), "{text}");
        assert!(text.contains("\nhelp: "), "{text}");
        for (tool, args, code) in [
            (
                "confirm",
                json!({ "event": fired }),
                "t_minus::refused::final_event",
            ),
            (
                "defer",
                json!({ "event": capped, "duration": "11m" }),
                "t_minus::refused::max_defer",
            ),
            (
                "defer",
                json!({ "event": capped, "duration": "0s" }),
                "t_minus::input::deferral",
            ),
            (
                "defer",
                json!({ "event": capped, "duration": "soon" }),
                "t_minus::input::duration",
            ),
            (
                "get_event",
                json!({ "event": "0000dead-0000-4000-8000-000000000000" }),
                "t_minus::not_found::event",
            ),
            (
                "confirm",
                json!({ "event": "nope/review" }),
                "t_minus::not_found::campaign",
            ),
            (
                "get_event",
                json!({ "event": "xyz" }),
                "t_minus::input::reference",
            ),
            (
                "campaign_status",
                json!({ "campaign": "nope" }),
                "t_minus::not_found::campaign",
            ),
            (
                "wait_event",
                json!({ "event": capped, "timeout": "16m" }),
                "t_minus::input::duration",
            ),
            (
                "decline",
                json!({ "event": capped, "reason": "x".repeat(4097) }),
                "t_minus::input::too_long",
            ),
        ] {
            s.refused(tool, args, code).await;
        }
        let text = s
            .refused(
                "confirm",
                json!({ "event": prefix }),
                "t_minus::input::ambiguous",
            )
            .await;
        assert!(text.contains(&prefix), "{text}");

        // Bad arguments: wrong types, missing, unknown (no agent can be
        // smuggled in), on every tool that takes any.
        for (tool, args) in [
            ("confirm", json!({ "event": 5 })),
            ("confirm", json!({})),
            ("confirm", json!({ "event": capped, "agent": "bob" })),
            ("defer", json!({ "event": capped })),
            ("defer", json!({ "event": capped, "duration": 600 })),
            ("decline", json!({ "event": capped, "reason": ["no"] })),
            ("inbox", json!({ "all": "yes" })),
            ("inbox", json!({ "agent": "bob" })),
            ("get_event", json!({ "event": null })),
            ("wait_event", json!({ "event": capped, "timeout": 5 })),
            ("campaign_status", json!({ "name": "release" })),
        ] {
            let text = s.refused(tool, args, "t_minus::input::arguments").await;
            assert!(text.contains(tool), "{text}");
        }

        // An unknown tool is a protocol error; the server keeps serving.
        let err = s
            .client
            .call_tool(CallToolRequestParams::new("launch"))
            .await
            .expect_err("unknown tool");
        assert!(err.to_string().contains("launch"), "{err}");
        let still = s.ok("inbox", json!({})).await;
        assert!(!still["events"].as_array().unwrap().is_empty());
    });

    // Nothing was written by the refusals.
    let engine = open_engine(&location, &clock);
    let capped = engine.get_event(capped.parse().unwrap()).unwrap().unwrap();
    assert_eq!(common::response(&capped, "alice").word(), "pending");
}

fn wait_event_returns_when_another_process_confirms() {
    let (_store, location) = common::store();
    let clock = FixedClock::new(t0());
    let mut engine = open_engine(&location, &clock);
    let id = engine
        .schedule(spec(30, &["alice", "bob"], Quorum::All))
        .unwrap()
        .id
        .to_string();
    let idle = engine
        .schedule(spec(30, &["alice"], Quorum::All))
        .unwrap()
        .id
        .to_string();
    drop(engine);

    runtime().block_on(async {
        let s = Session::connect(&location, "alice").await;
        s.ok("confirm", json!({ "event": id })).await;
        // Bob confirms from another process while alice waits.
        let other = {
            let (location, id) = (location.clone(), id.clone());
            tokio::task::spawn_blocking(move || {
                std::thread::sleep(StdDuration::from_millis(300));
                t_minus(&location, &["confirm", &id, "bob"])
            })
        };
        let started = std::time::Instant::now();
        let result = s
            .call("wait_event", json!({ "event": id, "timeout": "1m" }))
            .await;
        assert!(other.await.unwrap().contains("bob confirmed"));
        assert_eq!(result.is_error, Some(false), "{}", text(&result));
        let event = result.structured_content.clone().unwrap();
        assert_eq!(event["state"], "fired");
        assert_eq!(event["confirmed"], 2);
        assert!(text(&result).contains("fired"), "{}", text(&result));
        assert!(started.elapsed() < StdDuration::from_secs(30));
        let progress = s.progress.lock().unwrap().clone();
        assert!(!progress.is_empty(), "no progress notifications");
        assert!(
            progress.windows(2).all(|w| w[0].progress < w[1].progress),
            "progress must increase: {progress:?}"
        );
        assert!(
            progress
                .iter()
                .any(|p| p.message.as_deref().is_some_and(|m| m.contains("fired"))),
            "{progress:?}"
        );

        // A wait that times out returns the event as it is, not an error.
        let result = s
            .call("wait_event", json!({ "event": idle, "timeout": "200ms" }))
            .await;
        assert_eq!(result.is_error, Some(false), "{}", text(&result));
        assert_eq!(
            result.structured_content.as_ref().unwrap()["state"],
            "pending"
        );
        assert!(text(&result).starts_with("timed out"), "{}", text(&result));
    });
}

/// Where an event requires signed answers, a server without a key says how
/// to start it with one, and a server with `--sign` signs its answers.
fn a_server_signs_where_signatures_are_required() {
    let keys = tempfile::tempdir().unwrap();
    let (alice_key, alice_public) = crate::trust::keygen(keys.path(), "alice", "ed25519");
    let (_store, location) = common::store();
    let clock = FixedClock::new(t0());
    let mut engine = open_engine(&location, &clock);
    let signers = t_minus::trust::Signers::from_inline([("alice", alice_public.as_str())]).unwrap();
    let event = engine
        .schedule(NewEvent {
            signers: Some(signers),
            ..spec(60, &["alice"], Quorum::All)
        })
        .unwrap();
    let id = event.id.to_string();
    runtime().block_on(async {
        let plain = Session::connect(&location, "alice").await;
        let text = plain
            .refused(
                "confirm",
                json!({ "event": id }),
                "t_minus::trust::unsigned",
            )
            .await;
        assert!(text.contains("has no key to sign with"), "{text}");
        let signing = Session::serve(
            McpServer::new(&location, agent("alice"), Some(t0()))
                .with_signing_key(t_minus::trust::SigningKey::File(alice_key)),
        )
        .await;
        let value = signing.ok("confirm", json!({ "event": id })).await;
        assert_eq!(value["state"], "fired");
    });
    let report = engine.verify_log(None).unwrap();
    assert_eq!(report.signatures, 1);
}

/// `confirm`, `defer` and `decline` take `for`: the server's agent answers
/// for an attendee that delegated to it, refused without a delegation.
fn the_answer_tools_answer_for_a_delegator() {
    let (_store, location) = common::store();
    let clock = FixedClock::new(t0());
    let mut engine = open_engine(&location, &clock);
    let gate = engine
        .schedule(spec(30, &["alice", "bob"], Quorum::All))
        .unwrap();
    drop(engine);
    let id = gate.id.to_string();
    runtime().block_on(async {
        let s = Session::connect(&location, "carol").await;
        let refusal = s
            .refused(
                "confirm",
                json!({ "event": id, "for": "alice" }),
                "t_minus::refused::no_delegation",
            )
            .await;
        assert!(
            refusal.contains("alice has not delegated to carol"),
            "{refusal}"
        );
        t_minus(&location, &["delegate", "alice", "carol"]);
        let event = s
            .ok("confirm", json!({ "event": id, "for": "alice" }))
            .await;
        let alice = &event["attendees"][0];
        assert_eq!(
            (&alice["agent"], &alice["status"]),
            (&json!("alice"), &json!("confirmed"))
        );
        let result = s
            .call(
                "defer",
                json!({ "event": id, "duration": "5m", "for": "alice" }),
            )
            .await;
        assert!(
            text(&result).starts_with("carol for alice deferred by 5m"),
            "{}",
            text(&result)
        );
        s.ok(
            "decline",
            json!({ "event": id, "for": "alice", "reason": "away" }),
        )
        .await;
    });
    let engine = open_engine(&location, &clock);
    let log = engine.log(gate.id).unwrap();
    let declined = log
        .iter()
        .find(|e| e.action == t_minus::AuditAction::Declined)
        .expect("the decline is logged");
    assert_eq!(declined.agent, Some(agent("carol")));
    assert_eq!(declined.on_behalf_of, Some(agent("alice")));
    assert_eq!(declined.detail["reason"], "away");
}

/// `delegate`, `delegations` and `undelegate` act as the server's agent:
/// it delegates its own answers (signed with the server's key where they
/// must be signed), lists what it gave and received, and revokes only its
/// own; the delegate's answer shows who answered for whom.
fn the_delegation_tools_act_as_the_servers_agent() {
    let keys = tempfile::tempdir().unwrap();
    let (alice_key, alice_public) = crate::trust::keygen(keys.path(), "alice", "ed25519");
    let (carol_key, carol_public) = crate::trust::keygen(keys.path(), "carol", "ed25519");
    let (_store, location) = common::store();
    let clock = FixedClock::new(t0());
    let mut engine = open_engine(&location, &clock);
    let plain = engine
        .schedule(spec(30, &["alice", "bob"], Quorum::All))
        .unwrap();
    let signers = t_minus::trust::Signers::from_inline([
        ("alice", alice_public.as_str()),
        ("carol", carol_public.as_str()),
    ])
    .unwrap();
    let signed = engine
        .schedule(NewEvent {
            signers: Some(signers),
            ..spec(60, &["alice"], Quorum::All)
        })
        .unwrap();
    drop(engine);
    let (plain_id, signed_id) = (plain.id.to_string(), signed.id.to_string());
    runtime().block_on(async {
        let alice = Session::connect(&location, "alice").await;
        let carol = Session::serve(
            McpServer::new(&location, agent("carol"), Some(t0()))
                .with_signing_key(t_minus::trust::SigningKey::File(carol_key.clone())),
        )
        .await;
        alice
            .refused("delegate", json!({}), "t_minus::input::arguments")
            .await;
        alice
            .refused(
                "delegate",
                json!({"to": "alice"}),
                "t_minus::input::delegation",
            )
            .await;
        let made = alice
            .ok("delegate", json!({"to": "carol", "until": "+2h"}))
            .await;
        assert_eq!(
            (&made["from"], &made["to"], &made["signed"], &made["until"]),
            (
                &json!("alice"),
                &json!("carol"),
                &json!(false),
                &json!("2025-06-06T16:50:00Z")
            )
        );
        let id = made["id"].as_str().unwrap().to_string();
        // carol answers for alice on the plain event; the event says so.
        let event = carol
            .ok("confirm", json!({"event": plain_id, "for": "alice"}))
            .await;
        assert_eq!(event["attendees"][0]["answered_by"], "carol", "{event}");
        // The unsigned delegation does not cover the signed event.
        carol
            .refused(
                "confirm",
                json!({"event": signed_id, "for": "alice"}),
                "t_minus::refused::unsigned_delegation",
            )
            .await;
        // A server holding alice's key signs her delegation.
        let signing_alice = Session::serve(
            McpServer::new(&location, agent("alice"), Some(t0()))
                .with_signing_key(t_minus::trust::SigningKey::File(alice_key.clone())),
        )
        .await;
        let signed_made = signing_alice.ok("delegate", json!({"to": "carol"})).await;
        assert_eq!(signed_made["signed"], true);
        let event = carol
            .ok("confirm", json!({"event": signed_id, "for": "alice"}))
            .await;
        assert_eq!(event["attendees"][0]["status"], "confirmed", "{event}");

        // Each lists what it gave or received; bob has none.
        let listed = carol.ok("delegations", json!({})).await;
        assert_eq!(listed["agent"], "carol");
        assert_eq!(listed["delegations"].as_array().unwrap().len(), 2);
        let bob = Session::connect(&location, "bob").await;
        let none = bob.ok("delegations", json!({})).await;
        assert_eq!(none["delegations"], json!([]));
        // Only alice revokes hers.
        carol
            .refused(
                "undelegate",
                json!({"delegation": id}),
                "t_minus::auth::other_agent",
            )
            .await;
        let revoked = alice
            .ok("undelegate", json!({"delegation": &id[..8]}))
            .await;
        assert_eq!(revoked["state"], "revoked");
        alice
            .refused(
                "undelegate",
                json!({"delegation": id}),
                "t_minus::refused::delegation_revoked",
            )
            .await;
        let active = alice.ok("delegations", json!({})).await;
        assert_eq!(active["delegations"].as_array().unwrap().len(), 1);
        let all = alice.ok("delegations", json!({"all": true})).await;
        assert_eq!(all["delegations"].as_array().unwrap().len(), 2);
        // A signed message made elsewhere: only the server's own agent's.
        let message = t_minus::trust::grant::DelegationMessage {
            from: agent("alice"),
            to: agent("dave"),
            campaign: None,
            until: None,
            time: t0(),
            nonce: uuid::Uuid::new_v4(),
        };
        let bytes = message.to_bytes();
        let signature = t_minus::trust::sign_with_key_file(&alice_key, &bytes)
            .unwrap()
            .to_armored();
        let args = json!({"message": message.render(), "signature": signature});
        bob.refused("delegate", args.clone(), "t_minus::auth::other_agent")
            .await;
        let made = alice.ok("delegate", args).await;
        assert_eq!(
            (&made["to"], &made["signed"]),
            (&json!("dave"), &json!(true))
        );
    });
    let engine = open_engine(&location, &clock);
    assert_eq!(engine.verify_log(None).unwrap().signatures, 1);
}

common::store_tests!(
    the_delegation_tools_act_as_the_servers_agent,
    the_answer_tools_answer_for_a_delegator,
    a_server_signs_where_signatures_are_required,
    tools_are_exactly_these_with_input_and_output_schemas,
    every_tool_answers_as_the_servers_agent,
    refusals_are_tool_errors_with_the_cli_code_and_message,
    wait_event_returns_when_another_process_confirms,
);

/// Raw JSON-RPC lines: malformed input is answered (or dropped) and the
/// server keeps serving.
#[test]
fn malformed_json_rpc_does_not_stop_the_server() {
    let (_dir, path) = common::temp_store();
    let location = path.to_string_lossy().into_owned();
    runtime().block_on(async {
        let server = McpServer::new(location, agent("alice"), Some(t0()));
        let (server_end, client_end) = tokio::io::duplex(1 << 16);
        let serving = tokio::spawn(async move {
            let running = server.serve(server_end).await.expect("initialize");
            running.waiting().await.map(drop)
        });
        let (read, mut write) = tokio::io::split(client_end);
        let mut lines = BufReader::new(read).lines();
        send(&mut write, r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#).await;
        let init: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(init["id"], 1);
        assert_eq!(init["result"]["serverInfo"]["name"], "t-minus");
        assert!(init["result"]["capabilities"]["tools"].is_object());
        send(&mut write, r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).await;
        // Not JSON, JSON that is no message, a call without a name, then a
        // good request: only answers with an id (or the parse error) come back.
        send(&mut write, "{this is not json").await;
        send(&mut write, r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"arguments":{}}}"#).await;
        send(&mut write, r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"confirm","arguments":{"event":7}}}"#).await;
        send(&mut write, r#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#).await;
        let mut answers = Vec::new();
        // Calls run concurrently: the tool call (3) may be answered after
        // the listing (4).
        let answered = |answers: &[Value], id: i64| answers.iter().any(|a| a["id"] == id);
        while !(answered(&answers, 3) && answered(&answers, 4)) {
            let line = tokio::time::timeout(StdDuration::from_secs(10), lines.next_line())
                .await
                .expect("an answer within 10 s")
                .unwrap()
                .expect("the server is still there");
            answers.push(serde_json::from_str(&line).expect("every line is JSON"));
        }
        let by_id = |id: i64| answers.iter().find(|a| a["id"] == id).cloned();
        // rmcp drops a call it cannot parse as a request (no `name`) or
        // answers it with a protocol error; either way it is no tool result
        // and the server goes on serving (the answers below).
        if let Some(missing_name) = by_id(2) {
            assert!(missing_name["error"]["code"].is_i64(), "{missing_name}");
        }
        let bad_args = by_id(3).expect("an answer to bad arguments");
        assert_eq!(bad_args["result"]["isError"], true, "{bad_args}");
        let text = bad_args["result"]["content"][0]["text"].as_str().unwrap();
        assert!(text.starts_with("t_minus::input::arguments: "), "{text}");
        assert_eq!(
            by_id(4).unwrap()["result"]["tools"].as_array().unwrap().len(),
            TOOLS.len()
        );
        drop(write);
        drop(lines);
        let _ = tokio::time::timeout(StdDuration::from_secs(5), serving).await;
    });
}

/// Through the line transport of `t-minus mcp`: a line that is not JSON is
/// answered with -32700, one nested too deep with -32600, and the server
/// keeps serving; error text shows no path.
#[test]
fn the_transport_answers_malformed_and_deep_json_with_errors() {
    let (_dir, path) = common::temp_store();
    let location = path.to_string_lossy().into_owned();
    runtime().block_on(async {
        let server = McpServer::new(location.clone(), agent("alice"), Some(t0()));
        let (server_in, mut write) = tokio::io::duplex(1 << 16);
        let (read, server_out) = tokio::io::duplex(1 << 16);
        let serving = tokio::spawn(t_minus::mcp::serve_lines(server, server_in, server_out));
        let mut lines = BufReader::new(read).lines();
        let mut next = async || -> Value {
            let line = tokio::time::timeout(StdDuration::from_secs(10), lines.next_line())
                .await
                .expect("an answer within 10 s, not a hang")
                .unwrap()
                .expect("the server is still there");
            serde_json::from_str(&line).expect("every line is JSON")
        };
        send(&mut write, "{this is not json").await;
        let parse = next().await;
        assert_eq!(parse["error"]["code"], -32700, "{parse}");
        assert_eq!(parse["id"], Value::Null);
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        send(&mut write, &deep).await;
        let invalid = next().await;
        assert_eq!(invalid["error"]["code"], -32600, "{invalid}");
        send(&mut write, r#"{"jsonrpc":"2.0","id":9,"params":{}}"#).await;
        let no_method = next().await;
        assert_eq!(no_method["error"]["code"], -32600, "{no_method}");
        assert_eq!(no_method["id"], 9);
        send(&mut write, r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#).await;
        let init = next().await;
        assert_eq!(init["result"]["serverInfo"]["name"], "t-minus", "{init}");
        send(&mut write, r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).await;
        send(&mut write, r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#).await;
        let listed = next().await;
        assert_eq!(listed["id"], 2);
        assert!(!listed.to_string().contains(&location));
        drop(write);
        let _ = tokio::time::timeout(StdDuration::from_secs(5), serving).await;
    });
}

/// Writes one line to the server.
async fn send(write: &mut (impl AsyncWriteExt + Unpin), line: &str) {
    write.write_all(line.as_bytes()).await.unwrap();
    write.write_all(b"\n").await.unwrap();
}

/// The variable `.ci/run` sets to the Python with the official MCP SDK.
const PYTHON_VAR: &str = "T_MINUS_TEST_MCP_PYTHON";

/// A command that runs the SDK client `script` (in tests/fixtures/mcp)
/// with the Python [`PYTHON_VAR`] names; panics when it is not set.
pub(crate) fn sdk_client(script: &str) -> Command {
    let python = match std::env::var(PYTHON_VAR) {
        Ok(p) if !p.trim().is_empty() => p,
        _ => panic!(
            "{PYTHON_VAR} is not set: this test needs a Python with the official MCP SDK \
             (`.ci/run` makes one)"
        ),
    };
    let mut cmd = Command::new(python);
    cmd.arg(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/mcp")
            .join(script),
    );
    cmd
}

/// Runs an SDK client made by [`sdk_client`]: the JSON transcript it
/// prints; panics unless it succeeds.
pub(crate) fn sdk_transcript(mut cmd: Command) -> Value {
    let python = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{PYTHON_VAR}={python} cannot run: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the Python client failed (is `mcp` installed for {python}?)\n{stdout}\n{stderr}"
    );
    let transcript: Value = serde_json::from_str(&stdout).expect("the client prints JSON");
    transcript
}

/// The official Python MCP SDK drives `t-minus mcp` as a subprocess: list
/// tools, inbox, confirm, wait_event (while another process confirms), and
/// validates every structured result against the tool's output schema.
/// Ignored when `T_MINUS_TEST_MCP_PYTHON` is unset at build time (the build
/// script sets `cfg(t_minus_test_mcp_python)` otherwise); fails when it is
/// set and the client is missing, or when run with `--include-ignored`
/// without it.
#[test]
#[cfg_attr(not(t_minus_test_mcp_python), ignore = "needs T_MINUS_TEST_MCP_PYTHON")]
fn python_sdk_drives_the_binary() {
    let mut client = sdk_client("python_client.py");
    let (dir, path) = common::temp_store();
    let db = path.to_string_lossy().into_owned();
    let event = t_minus(
        &db,
        &[
            "schedule",
            "review",
            "+30m",
            "--attendees",
            "alice,bob",
            "--json",
        ],
    );
    let event: Value = serde_json::from_str(&event).unwrap();
    let id = event["id"].as_str().unwrap();
    client
        .arg(assert_cmd::cargo::cargo_bin!("t-minus"))
        .arg(&db)
        .arg(id)
        .env("T_MINUS_NOW", NOW)
        .current_dir(dir.path());
    let transcript = sdk_transcript(client);
    assert_eq!(transcript["tools"], json!(TOOLS));
    assert_eq!(transcript["inbox"]["events"][0]["id"], id);
    assert_eq!(transcript["confirm"]["confirmed"], 1);
    assert_eq!(transcript["wait_event"]["state"], "fired");
    assert!(transcript["progress"]
        .as_array()
        .is_some_and(|p| !p.is_empty()));
    assert_eq!(transcript["refusal"]["is_error"], true);
    assert!(transcript["refusal"]["text"]
        .as_str()
        .unwrap()
        .starts_with("t_minus::refused::final_event: "));
}
