//! The OpenAPI 3.1 document of the API (`GET /openapi.json`), generated
//! from the same [`schemars::JsonSchema`] derives as the `--json` output and
//! the MCP output schemas: each route names its parameter, body and reply
//! types, and their schemas (JSON Schema 2020-12, which OpenAPI 3.1 uses)
//! become the document's components.

use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

use super::routes::{
    BreakglassBody, CancelBody, ConfirmBody, DeclineBody, DeferBody, DelegateBody,
    DelegationsQuery, InboxQuery, ListQuery, ManifestQuery, SignedAnswerBody, StreamQuery,
    VerifyQuery,
};
use crate::output::{
    ApplyResult, CampaignStatus, Delegation, ErrorOutput, Event, EventSigners, Health, Inbox,
    LogEntry, Verification,
};
use crate::plan::Plan;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Anyone.
    Open,
    /// Any token.
    Read,
    /// An agent token.
    Agent,
    /// An operator token.
    Operator,
}

/// The schemas of one document: replies in their serialized form, bodies
/// and parameters in the form the server reads.
struct Schemas {
    out: SchemaGenerator,
    input: SchemaGenerator,
}

impl Schemas {
    fn new() -> Self {
        let settings = || {
            let mut s = SchemaSettings::draft2020_12();
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
            s
        };
        Schemas {
            out: settings().for_serialize().into_generator(),
            input: settings().for_deserialize().into_generator(),
        }
    }

    fn reply<T: JsonSchema>(&mut self) -> Value {
        self.out.subschema_for::<T>().to_value()
    }

    fn body<T: JsonSchema>(&mut self) -> Value {
        self.input.subschema_for::<T>().to_value()
    }

    /// The query parameters of `T`'s fields, each optional.
    fn query<T: JsonSchema>(&mut self) -> Vec<Value> {
        let schema = self.input.root_schema_for::<T>().to_value();
        let Some(props) = schema.get("properties").and_then(Value::as_object) else {
            return Vec::new();
        };
        props
            .iter()
            .map(|(name, prop)| {
                let mut prop = prop.clone();
                let description = prop
                    .as_object_mut()
                    .and_then(|p| p.remove("description"))
                    .unwrap_or(Value::Null);
                json!({
                    "name": name,
                    "in": "query",
                    "required": false,
                    "description": description,
                    "schema": prop,
                })
            })
            .collect()
    }
}

/// One operation of the document.
struct Op {
    method: &'static str,
    path: &'static str,
    id: &'static str,
    summary: &'static str,
    access: Access,
    parameters: Vec<Value>,
    body: Option<(&'static str, Value, bool)>,
    reply: Value,
    errors: &'static [u16],
}

/// A path parameter.
fn path_param(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "required": true,
        "description": description,
        "schema": {"type": "string"},
    })
}

const EVENT_REF: &str =
    "The event: its id, a unique id prefix (4+ hex digits), or `campaign/name` URL-encoded (`release%2Fdeploy`).";

/// The OpenAPI document; `server` is the URL clients reach the service at,
/// when known.
pub fn document(server: Option<&str>) -> Value {
    let mut s = Schemas::new();
    let event = || path_param("event", EVENT_REF);
    let answer_errors: &[u16] = &[400, 401, 403, 404, 409, 413, 422];
    let read_errors: &[u16] = &[400, 401, 404];
    let mut ops = vec![
        Op {
            method: "get",
            path: "/v1/health",
            id: "health",
            summary: "The service runs and its store answers.",
            access: Access::Open,
            parameters: vec![],
            body: None,
            reply: s.reply::<Health>(),
            errors: &[],
        },
        Op {
            method: "get",
            path: "/v1/events",
            id: "listEvents",
            summary: "Events, soonest fire time first: unfinished ones unless `state` says otherwise.",
            access: Access::Read,
            parameters: s.query::<ListQuery>(),
            body: None,
            reply: s.reply::<Vec<Event>>(),
            errors: read_errors,
        },
        Op {
            method: "get",
            path: "/v1/events/{event}",
            id: "getEvent",
            summary: "One event with its attendees' answers.",
            access: Access::Read,
            parameters: vec![event()],
            body: None,
            reply: s.reply::<Event>(),
            errors: read_errors,
        },
        Op {
            method: "get",
            path: "/v1/events/{event}/log",
            id: "eventLog",
            summary: "An event's audit entries with their chain links, oldest first.",
            access: Access::Read,
            parameters: vec![event()],
            body: None,
            reply: s.reply::<Vec<LogEntry>>(),
            errors: read_errors,
        },
        Op {
            method: "get",
            path: "/v1/events/{event}/signers",
            id: "eventSigners",
            summary: "The public keys that may sign the event's answers (null when none is needed), for a client signing through its ssh-agent.",
            access: Access::Read,
            parameters: vec![event()],
            body: None,
            reply: s.reply::<EventSigners>(),
            errors: read_errors,
        },
        Op {
            method: "post",
            path: "/v1/events/{event}/confirm",
            id: "confirm",
            summary: "Confirm as the token's agent; the reply is the event.",
            access: Access::Agent,
            parameters: vec![event()],
            body: Some(("application/json", s.body::<ConfirmBody>(), false)),
            reply: s.reply::<Event>(),
            errors: answer_errors,
        },
        Op {
            method: "post",
            path: "/v1/events/{event}/defer",
            id: "defer",
            summary: "Ask for more time as the token's agent; the reply is the event.",
            access: Access::Agent,
            parameters: vec![event()],
            body: Some(("application/json", s.body::<DeferBody>(), true)),
            reply: s.reply::<Event>(),
            errors: answer_errors,
        },
        Op {
            method: "post",
            path: "/v1/events/{event}/decline",
            id: "decline",
            summary: "Decline as the token's agent; the reply is the event.",
            access: Access::Agent,
            parameters: vec![event()],
            body: Some(("application/json", s.body::<DeclineBody>(), false)),
            reply: s.reply::<Event>(),
            errors: answer_errors,
        },
        Op {
            method: "post",
            path: "/v1/events/{event}/breakglass",
            id: "breakglass",
            summary: "Fire the event at once as the token's agent, listed in its `breakglass`, with a reason; the reply is the event.",
            access: Access::Agent,
            parameters: vec![event()],
            body: Some(("application/json", s.body::<BreakglassBody>(), true)),
            reply: s.reply::<Event>(),
            errors: answer_errors,
        },
        Op {
            method: "post",
            path: "/v1/events/{event}/cancel",
            id: "cancel",
            summary: "Cancel an unfinished event (operator); the reply is the event.",
            access: Access::Operator,
            parameters: vec![event()],
            body: Some(("application/json", s.body::<CancelBody>(), false)),
            reply: s.reply::<Event>(),
            errors: answer_errors,
        },
        Op {
            method: "get",
            path: "/v1/campaigns/{campaign}",
            id: "getCampaign",
            summary: "A campaign with its events in execution order.",
            access: Access::Read,
            parameters: vec![path_param("campaign", "The campaign: its name, id or id prefix.")],
            body: None,
            reply: s.reply::<CampaignStatus>(),
            errors: read_errors,
        },
        Op {
            method: "get",
            path: "/v1/inbox",
            id: "inbox",
            summary: "The events waiting for the token's agent, soonest deadline first.",
            access: Access::Read,
            parameters: s.query::<InboxQuery>(),
            body: None,
            reply: s.reply::<Inbox>(),
            errors: &[400, 401],
        },
        Op {
            method: "get",
            path: "/v1/verify",
            id: "verify",
            summary: "The whole audit log checked: chain, states, answers and signatures.",
            access: Access::Read,
            parameters: s.query::<VerifyQuery>(),
            body: None,
            reply: s.reply::<Verification>(),
            errors: &[400, 401, 422],
        },
        Op {
            method: "post",
            path: "/v1/answers",
            id: "signedAnswer",
            summary: "A signed answer (`answer-message` signed with `ssh-keygen -Y sign -n t-minus`); no token needed, the signature authenticates it.",
            access: Access::Open,
            parameters: vec![],
            body: Some(("application/json", s.body::<SignedAnswerBody>(), true)),
            reply: s.reply::<Event>(),
            errors: &[400, 404, 409, 413, 422],
        },
        Op {
            method: "get",
            path: "/v1/delegations",
            id: "listDelegations",
            summary: "The delegations in force (every one with `all=true`): who may answer for whom, oldest first.",
            access: Access::Read,
            parameters: s.query::<DelegationsQuery>(),
            body: None,
            reply: s.reply::<Vec<Delegation>>(),
            errors: &[400, 401],
        },
        Op {
            method: "post",
            path: "/v1/delegations",
            id: "delegate",
            summary: "The token's agent lets another answer for it (`to`, optionally `until`, `campaign`), or submits the `t-minus delegation v1` message it signed (`message`, `signature`) where its answers must be signed; the reply is the delegation.",
            access: Access::Agent,
            parameters: vec![],
            body: Some(("application/json", s.body::<DelegateBody>(), true)),
            reply: s.reply::<Delegation>(),
            errors: &[400, 401, 403, 404, 409, 413, 422],
        },
        Op {
            method: "post",
            path: "/v1/delegations/{delegation}/revoke",
            id: "undelegate",
            summary: "The token's agent revokes a delegation of its answers; the reply is the delegation, revoked.",
            access: Access::Agent,
            parameters: vec![path_param(
                "delegation",
                "The delegation: its id, or a unique id prefix (4+ hex digits).",
            )],
            body: None,
            reply: s.reply::<Delegation>(),
            errors: &[400, 401, 403, 404, 409],
        },
        Op {
            method: "post",
            path: "/v1/plan",
            id: "plan",
            summary: "What applying the manifests in the body would do (operator).",
            access: Access::Operator,
            parameters: s.query::<ManifestQuery>(),
            body: Some(("application/yaml", json!({"type": "string"}), true)),
            reply: s.reply::<Plan>(),
            errors: &[400, 401, 403, 409, 413, 415, 422],
        },
        Op {
            method: "post",
            path: "/v1/apply",
            id: "apply",
            summary: "Plans and applies the manifests in the body in one transaction (operator).",
            access: Access::Operator,
            parameters: s.query::<ManifestQuery>(),
            body: Some(("application/yaml", json!({"type": "string"}), true)),
            reply: s.reply::<ApplyResult>(),
            errors: &[400, 401, 403, 409, 413, 415, 422],
        },
    ];
    let stream_params = {
        let mut params = s.query::<StreamQuery>();
        params.push(json!({
            "name": "Last-Event-ID",
            "in": "header",
            "required": false,
            "description": "The `id` of the last event received: the stream resumes after it.",
            "schema": {"type": "string"},
        }));
        params
    };
    let entry = s.reply::<crate::output::AuditEntry>();
    let error = s.reply::<ErrorOutput>();
    let mut paths = Map::new();
    for op in ops.drain(..) {
        let mut responses = Map::new();
        responses.insert(
            "200".into(),
            json!({
                "description": "Success.",
                "content": {"application/json": {"schema": op.reply}},
            }),
        );
        let mut errors: Vec<u16> = op.errors.to_vec();
        errors.push(500);
        if op.access != Access::Open {
            errors.push(401);
        }
        if matches!(op.access, Access::Agent | Access::Operator) {
            errors.push(403);
        }
        errors.sort_unstable();
        errors.dedup();
        for status in errors {
            responses.insert(
                status.to_string(),
                json!({
                    "description": status_text(status),
                    "content": {"application/json": {"schema": error.clone()}},
                }),
            );
        }
        let mut operation = json!({
            "operationId": op.id,
            "summary": op.summary,
            "parameters": op.parameters,
            "responses": responses,
        });
        if let Some((media, schema, required)) = op.body {
            operation["requestBody"] = json!({
                "required": required,
                "content": {media: {"schema": schema}},
            });
        }
        operation["security"] = match op.access {
            Access::Open => json!([]),
            _ => json!([{"bearer": []}]),
        };
        if let Some(role) = match op.access {
            Access::Agent => Some("agent"),
            Access::Operator => Some("operator"),
            _ => None,
        } {
            operation["description"] = json!(format!("Needs a token with role `{role}`."));
        }
        let entry = paths
            .entry(op.path.to_string())
            .or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    let mut schemas = s.out.take_definitions(true);
    schemas.extend(s.input.take_definitions(true));
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "t-minus",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Countdown events for multi-agent systems: the HTTP API of `t-minus serve`. Errors are `{\"error\": {\"code\", \"message\", \"help\"}}` with the command line's codes.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token made by `t-minus token create AGENT --role ROLE` on the store's host.",
                },
            },
        },
    });
    doc["paths"]["/v1/stream"] = json!({"get": {
        "operationId": "stream",
        "summary": "The audit log as Server-Sent Events: one per entry (answers, transitions, notifications, tokens) as it is written; `id` is the entry's `seq`, `event` its action, `data` the entry.",
        "security": [{"bearer": []}],
        "parameters": stream_params,
        "responses": {
            "200": {
                "description": "A stream of events whose `data` is an audit entry.",
                "content": {"text/event-stream": {"schema": {"type": "string", "description": "Each event's data is this JSON object.", "contentSchema": entry}}},
            },
            "400": {"description": status_text(400), "content": {"application/json": {"schema": error.clone()}}},
            "401": {"description": status_text(401), "content": {"application/json": {"schema": error.clone()}}},
            "404": {"description": status_text(404), "content": {"application/json": {"schema": error.clone()}}},
        },
    }});
    doc["paths"]["/metrics"] = json!({"get": {
        "operationId": "metrics",
        "summary": "Counters in the Prometheus text format: requests by route and status, their durations, answers, transitions.",
        "security": [],
        "responses": {"200": {
            "description": "Success.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }},
    }});
    if let Some(url) = server {
        doc["servers"] = json!([{ "url": url }]);
    }
    doc
}

/// A short description of an error status.
fn status_text(status: u16) -> &'static str {
    match status {
        400 => "Bad request: invalid input.",
        401 => "No token, or one that is unknown, revoked or expired.",
        403 => "The token's role or agent does not allow this.",
        404 => "No such event, campaign or route.",
        409 => "Refused: the event's state or the store changed.",
        413 => "The body is over the route's limit.",
        415 => "The body is not of the media type the route takes.",
        422 => "Invalid manifests, signatures or remote-apply refusals.",
        429 => "Too many requests.",
        _ => "The server failed.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_resolves_to_a_component() {
        let doc = document(Some("http://127.0.0.1:8470"));
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let text = doc.to_string();
        let mut rest = text.as_str();
        let marker = "\"$ref\":\"#/components/schemas/";
        let mut count = 0;
        while let Some(at) = rest.find(marker) {
            rest = &rest[at + marker.len()..];
            let name = &rest[..rest.find('"').unwrap()];
            assert!(schemas.contains_key(name), "missing component {name}");
            count += 1;
        }
        assert!(count > 10);
        assert!(doc["paths"]["/v1/events/{event}/confirm"]["post"].is_object());
    }
}
