//! Every JSON shape the command line prints validates against the JSON
//! Schema derived from its type in `t_minus::output` (or `plan::Plan`,
//! `trust::attest::Statement`): one contract for `--json`, the MCP output
//! schemas and the HTTP API. The schemas are made strict for the check (no
//! property the type does not declare), so a field printed but not
//! described fails too.

use schemars::JsonSchema;
use serde_json::Value;
use t_minus::output::{
    self, ApplyResult, Campaign, CampaignCancel, CampaignDetail, CampaignOrder, CampaignStatus,
    ErrorOutput, Event, EventStatus, LogEntry, NotifyTestResult, RunLine, TickReport, Validation,
    Verification,
};
use t_minus::plan::Plan;
use t_minus::trust::attest::Statement;

use crate::cli_support::T;

/// `schema` with `additionalProperties: false` on every object schema that
/// lists its properties and says nothing about others.
fn strict(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.contains_key("properties")
                && !map.contains_key("additionalProperties")
                && !map.contains_key("unevaluatedProperties")
            {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(strict);
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}

/// Checks `value` against the strict schema of `S`.
#[track_caller]
fn check<S: JsonSchema>(what: &str, value: &Value) {
    let mut schema = output::schema::<S>();
    strict(&mut schema);
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("the schema of {what} is not valid: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "`{what}` does not match the schema of {}:\n{}\n{value:#}",
        std::any::type_name::<S>(),
        errors.join("\n")
    );
}

/// Runs `t-minus LINE`, which must print one JSON value (whatever its exit
/// code), and checks it against `S`'s schema.
#[track_caller]
fn prints<S: JsonSchema>(t: &T, line: &str) -> Value {
    let out = t.run(line);
    let value: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("`{line}` printed no JSON ({e}): {out:?}"));
    check::<S>(line, &value);
    value
}

/// Runs `t-minus LINE`, which prints JSON lines, and checks each against
/// `S`'s schema.
#[track_caller]
fn prints_lines<S: JsonSchema>(t: &T, line: &str) -> Vec<Value> {
    let out = t.run(line);
    let values: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("`{line}`: {e}: {l}")))
        .collect();
    assert!(!values.is_empty(), "`{line}` printed nothing: {out:?}");
    for v in &values {
        check::<S>(line, v);
    }
    values
}

const MANIFEST: &str = "\
campaign: release
description: Ship it
defaults:
  t_minus: 5m
events:
  checkpoint:
    at: +10m
    attendees: [ci-bot]
  review:
    kind: review
    needs: [checkpoint]
    at: +20m
    attendees:
      ops: [ops-1, ops-2]
      security: [sec-1]
    quorum: { ops: 1, security: 1 }
  deploy:
    kind: deploy
    needs: [review]
    at: +30m
    fire: on-time
    max_defer: 1h
    attendees: [ops-1]
    payload: { version: 2.0.0 }
    notify:
      - on: [fired]
        exec: [sh, -c, \"cat >/dev/null\"]
";

const INVALID: &str = "\
campaign: broken
events:
  review:
    at: +20m
    needs: [checkpoint]
    quorum: 3
    attendees: [alice, bob]
";

#[test]
fn every_json_output_matches_the_schema_of_its_type() {
    let mut t = T::new();
    std::fs::write(t.dir().join("release.yaml"), MANIFEST).unwrap();
    std::fs::write(t.dir().join("broken.yaml"), INVALID).unwrap();
    let manifest_changed = MANIFEST.replace("description: Ship it", "description: Ship it now");
    std::fs::write(t.dir().join("changed.yaml"), manifest_changed).unwrap();

    // Manifests.
    prints::<Validation>(&t, "validate release.yaml --json");
    let invalid = prints::<Validation>(&t, "validate broken.yaml --json");
    assert_eq!(invalid["valid"], false);
    prints::<Plan>(&t, "plan release.yaml --json");
    prints::<ApplyResult>(&t, "apply release.yaml --json");
    let plan = prints::<Plan>(&t, "plan changed.yaml --json");
    assert_eq!(plan["counts"]["change"], 1, "{plan}");

    // Events: plain, deferred, with groups, with notifications.
    let id = t.schedule("review +15m --t-minus 5m --quorum 2 --attendees alice,bob,carol");
    prints::<Event>(&t, &format!("confirm {id} alice --json"));
    let deferred = prints::<Event>(&t, &format!("defer {id} bob 5m --json"));
    assert_eq!(deferred["attendees"][1]["deferred_ms"], 300_000);
    prints::<Event>(&t, &format!("decline {id} carol --json"));
    let grouped = prints::<Event>(
        &t,
        "schedule deploy +30m --group ops=1:ops-1,ops-2 --group sec=1:sec-1 --json",
    );
    assert!(grouped["groups"].is_array(), "{grouped}");
    prints::<Event>(
        &t,
        "schedule meeting +40m --attendees a --notify-exec 'sh -c \"cat >/dev/null\"' \
         --on fired,reminder --notify-before 10m --json",
    );
    prints::<Vec<Event>>(&t, "status --json");
    prints::<Vec<Event>>(&t, "status --all --json");
    prints::<EventStatus>(&t, "status release/deploy --json");
    prints::<CampaignStatus>(&t, "status release --json");
    prints::<Vec<Event>>(&t, "inbox ops-1 --json");
    prints::<Vec<Event>>(&t, "inbox ops-1 --all --json");
    prints::<Vec<NotifyTestResult>>(&t, "notify test release/deploy --on fired --json");
    prints::<Vec<LogEntry>>(&t, &format!("log {id} --json"));

    // Campaigns.
    prints::<Vec<Campaign>>(&t, "campaign list --json");
    prints::<CampaignDetail>(&t, "campaign show release --json");
    prints::<CampaignOrder>(&t, "campaign order release --json");
    prints::<Campaign>(&t, "campaign create adhoc --json");
    prints::<Event>(
        &t,
        "campaign add adhoc checkpoint +10m --attendees a --json",
    );
    t.ok("campaign add adhoc review +20m --attendees b");
    prints::<Campaign>(&t, "campaign link adhoc checkpoint review --json");
    prints::<CampaignCancel>(&t, "cancel adhoc --json");
    let cancelled = t.schedule("meeting +50m --attendees a");
    prints::<Event>(&t, &format!("cancel {cancelled} --json"));

    // The clock moves: ticks, runs, waits.
    t.ok("confirm release/checkpoint ci-bot");
    t.set_now("2025-06-06T15:20:00Z");
    let tick = prints::<TickReport>(&t, "tick --json");
    assert!(
        !tick["transitions"].as_array().unwrap().is_empty(),
        "{tick}"
    );
    t.set_now("2025-06-06T16:30:00Z");
    let lines = prints_lines::<RunLine>(&t, "run --campaign release --json --no-notify");
    assert_eq!(lines.last().unwrap()["type"], "summary");
    prints_lines::<RunLine>(&t, "wait release/checkpoint --json --no-notify");

    // Evidence.
    prints::<Verification>(&t, "verify --json");
    prints::<Statement>(&t, "attest release");

    // Failures, with `--json`: one error object on stdout, exit 1.
    let out = t.run("confirm no-such/event alice --json");
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stderr, "", "with --json the error goes to stdout only");
    let error = prints::<ErrorOutput>(&t, "confirm no-such/event alice --json");
    assert!(error["error"]["code"]
        .as_str()
        .unwrap()
        .starts_with("t_minus::"));
    assert!(error["error"]["message"].is_string());
    let invalid = prints::<ErrorOutput>(&t, "plan broken.yaml --json");
    assert!(
        !invalid["error"]["problems"].as_array().unwrap().is_empty(),
        "{invalid}"
    );
    let lines = prints_lines::<ErrorOutput>(&t, "wait no-such/event --json");
    assert_eq!(lines.len(), 1, "one line, as `wait --json` prints lines");
}

/// The gates' JSON, checked against the strict schemas: when a windowed
/// event may fire next, the next escalation step, who answered for whom,
/// a tick that applied an escalation step, and delegations.
#[test]
fn the_gates_json_matches_the_schemas() {
    let mut t = T::new();
    std::fs::write(
        t.dir().join("gate.yaml"),
        "campaign: rel\nevents:\n  gate:\n    at: +1h\n    quorum: 2\n    attendees: [alice, bob]\n    escalate:\n      - after: 10m\n        add: [carol]\n",
    )
    .unwrap();
    t.ok("apply gate.yaml");
    let id =
        t.schedule("deploy 2025-06-10T12:00:00Z --attendees ops-1 --window 'Mon 09:00-10:00 UTC'");
    let windowed = prints::<EventStatus>(&t, &format!("status {id} --json"));
    assert_eq!(
        windowed["may_fire_next"], "2025-06-09T09:00:00Z",
        "{windowed}"
    );
    let listed = prints::<Vec<Event>>(&t, "status --json");
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["may_fire_next"] == "2025-06-09T09:00:00Z"),
        "{listed}"
    );
    let gate = prints::<EventStatus>(&t, "status rel/gate --json");
    assert_eq!(
        gate["next_escalation"],
        serde_json::json!({"at": "2025-06-06T15:00:00Z", "step": 1, "of": 1, "add": [{"agents": ["carol"]}]})
    );
    prints::<t_minus::output::Delegation>(&t, "delegate alice zoe --json");
    prints::<Vec<t_minus::output::Delegation>>(&t, "delegations --all --json");
    let answered = prints::<Event>(&t, "confirm rel/gate zoe --for alice --json");
    assert_eq!(answered["attendees"][0]["answered_by"], "zoe", "{answered}");
    t.set_now("2025-06-06T15:00:00Z");
    let tick = prints::<TickReport>(&t, "tick --json");
    assert_eq!(
        tick["escalations"][0]["detail"]["added"],
        serde_json::json!(["carol"]),
        "{tick}"
    );
}

/// The error object, field by field: the shape the HTTP API will return.
#[test]
fn an_error_with_json_is_code_message_and_help() {
    let t = T::new();
    let out = t.run("defer a1b2c3d4 alice soon --json");
    assert_eq!(out.code, 1, "{out:?}");
    let value: Value = serde_json::from_str(&out.stdout).unwrap();
    let error = value["error"].as_object().expect("an error object");
    assert_eq!(
        error.keys().collect::<Vec<_>>(),
        ["code", "message", "help"],
        "{value:#}"
    );
    // The same command without --json: the report on stderr, nothing on stdout.
    let human = t.run("defer a1b2c3d4 alice soon");
    assert_eq!(human.code, 1);
    assert_eq!(human.stdout, "");
    let code = error["code"].as_str().unwrap();
    assert!(human.stderr.contains(code), "{code} in {}", human.stderr);

    // The help is the command line's hint, as on stderr.
    let out = t.run("status nope --json");
    assert_eq!(out.code, 1, "{out:?}");
    let value: Value = serde_json::from_str(&out.stdout).unwrap();
    let help = value["error"]["help"].as_str().expect("a help line");
    assert!(help.contains("t-minus status --all"), "{help}");
    let human = t.run("status nope");
    assert!(
        human.stderr.contains("t-minus status --all"),
        "{}",
        human.stderr
    );
}

/// What an exec hook reads on stdin matches the schema of
/// `notification::payload::DeliveryPayload`: a response, a reminder and a
/// test delivery, from a named standalone event.
#[test]
fn a_delivery_payload_matches_its_schema() {
    use t_minus::notification::payload::DeliveryPayload;
    let mut t = T::new();
    let hook = "sh -c 'cat > payload-$T_MINUS_DELIVERY.json'";
    t.ok(&format!(
        "schedule deploy +30m --name deploy-eu --attendees ops-1,ops-2 --notify-exec \"{hook}\" \
         --on confirmed,reminder --notify-before 10m"
    ));
    t.ok("notify test deploy-eu --on confirmed");
    t.ok("confirm deploy-eu ops-1");
    t.set_now("2025-06-06T15:11:00Z");
    t.ok("tick");
    let mut payloads = Vec::new();
    for entry in std::fs::read_dir(t.dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("payload-") {
            let value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            check::<DeliveryPayload>(&name, &value);
            payloads.push(value);
        }
    }
    let mut ons: Vec<(&str, bool)> = payloads
        .iter()
        .map(|p| (p["on"].as_str().unwrap(), p["test"] == true))
        .collect();
    ons.sort();
    assert_eq!(
        ons,
        [
            ("confirmed", false),
            ("confirmed", true),
            ("reminder", false)
        ]
    );
    assert!(payloads.iter().all(|p| p["event"]["name"] == "deploy-eu"));
    let reminder = payloads.iter().find(|p| p["on"] == "reminder").unwrap();
    assert_eq!(reminder["before_ms"], 600_000);
    assert_eq!(reminder["waiting_for"], serde_json::json!(["ops-2"]));
}
