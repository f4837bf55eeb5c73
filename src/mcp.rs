//! A Model Context Protocol server for one agent (`t-minus mcp --agent A`).
//!
//! [`McpServer`] is an rmcp [`ServerHandler`] with twelve tools: `inbox`,
//! `get_event`, `confirm`, `defer`, `decline`, `wait_event`,
//! `campaign_status`, `answer_message`, `submit_answer`, `delegate`,
//! `delegations` and `undelegate`. The agent is
//! fixed when the server is made (by `--agent`, or over HTTP by the bearer
//! token, [`McpServer::for_token`]); no tool takes one, so a client can
//! answer only as that agent (or, with the
//! answer tools' `for`, for an attendee that delegated to that agent).
//!
//! An event whose answers must be signed is answered by a server holding a
//! key ([`McpServer::with_signing_key`]), or in two steps by a client that
//! holds its own: `answer_message` returns the exact message to sign, and
//! `submit_answer` takes it with its `ssh-keygen -Y sign -n t-minus`
//! signature.
//!
//! Every tool call is one engine operation on a store opened for it, on a
//! blocking thread: several servers (one per agent) and command-line
//! processes share one store as they would share it from the command line.
//! Results carry a short text and `structuredContent`: a value of one of
//! the [`crate::output`] types, whose derived schema is the tool's output
//! schema (`docs/json.md` lists them). A refusal or bad arguments is a tool result with
//! `isError: true` whose text starts with the error's `t_minus::…` code;
//! protocol errors are left to protocol problems (an unknown tool).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Utc};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
    ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::display::{Renderer, Styles};
use crate::duration::{format_duration, parse_duration};
use crate::engine::EventViews;
use crate::output::{
    AgentDelegations, AnswerToSign, CampaignStatus, Delegation, ErrorBody, Event, Inbox,
};
use crate::runner::{run, RunObserver, RunOptions, Scope};
use crate::token::{Role, TokenError, TokenInfo};
use crate::trust::{Answer, AnswerMessage, SigningKey, TrustError};
use crate::{AgentId, AuditEntry, Engine, FixedClock, Response, Result, TMinusError, TMinusEvent};

/// How long `wait_event` waits when no timeout is given.
pub const DEFAULT_WAIT: StdDuration = StdDuration::from_secs(5 * 60);
/// The longest `wait_event` waits.
pub const MAX_WAIT: StdDuration = StdDuration::from_secs(15 * 60);
/// How often `wait_event` reports progress while nothing changes.
const WAIT_REFRESH: StdDuration = StdDuration::from_secs(5);

/// `inbox` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct InboxArgs {
    /// Also the unfinished events the agent already confirmed or declined.
    #[serde(default)]
    all: Option<bool>,
}

/// Arguments naming one event.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct EventArgs {
    /// The event: `campaign/name`, a full id, or a unique id prefix.
    event: String,
}

/// `confirm` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ConfirmArgs {
    /// The event: `campaign/name`, a full id, or a unique id prefix.
    event: String,
    /// Answer for this attendee, which delegated its answers to this agent
    /// (`delegate FROM AGENT`); leave it out to answer as this agent.
    #[serde(default, rename = "for")]
    for_agent: Option<String>,
}

/// `defer` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DeferArgs {
    /// The event: `campaign/name`, a full id, or a unique id prefix.
    event: String,
    /// How much more time, e.g. `10m`, `1h 30m`.
    duration: String,
    /// Answer for this attendee, which delegated its answers to this agent
    /// (`delegate FROM AGENT`); leave it out to answer as this agent.
    #[serde(default, rename = "for")]
    for_agent: Option<String>,
}

/// `decline` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DeclineArgs {
    /// The event: `campaign/name`, a full id, or a unique id prefix.
    event: String,
    /// Why, recorded in the event's log.
    #[serde(default)]
    reason: Option<String>,
    /// Answer for this attendee, which delegated its answers to this agent
    /// (`delegate FROM AGENT`); leave it out to answer as this agent.
    #[serde(default, rename = "for")]
    for_agent: Option<String>,
}

/// `wait_event` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WaitArgs {
    /// The event: `campaign/name`, a full id, or a unique id prefix.
    event: String,
    /// How long to wait at most, e.g. `2m` (default 5m, at most 15m).
    #[serde(default)]
    timeout: Option<String>,
}

/// `answer_message` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AnswerMessageArgs {
    /// The event: `campaign/name`, a full id, or a unique id prefix.
    event: String,
    /// The answer.
    answer: AnswerWord,
    /// For `defer`: how much more time, e.g. `10m`.
    #[serde(default)]
    duration: Option<String>,
    /// For `decline`: why, recorded in the event's log.
    #[serde(default)]
    reason: Option<String>,
}

/// An answer `answer_message` can make.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum AnswerWord {
    /// Ready for the event to fire.
    Confirm,
    /// More time (`duration`).
    Defer,
    /// Not taking part (`reason`, optional).
    Decline,
}

/// `submit_answer` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SubmitArgs {
    /// The message `answer_message` returned, exactly.
    message: String,
    /// Its armored signature: the output of `ssh-keygen -Y sign -n t-minus
    /// -f KEY` on the message (`-----BEGIN SSH SIGNATURE-----` …).
    signature: String,
}

/// `delegate` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DelegateArgs {
    /// The agent who may answer for this one.
    #[serde(default)]
    to: Option<String>,
    /// When the delegation ends (exclusive): RFC 3339, or `+DURATION` from
    /// now, e.g. `+8h`; default: until revoked.
    #[serde(default)]
    until: Option<String>,
    /// The campaign it covers (name, id or id prefix); default: every
    /// event.
    #[serde(default)]
    campaign: Option<String>,
    /// Instead of `to`, `until` and `campaign`: a `t-minus delegation v1`
    /// message from this agent, exactly as signed (`t-minus delegate --sign`
    /// makes one), for events whose answers must be signed.
    #[serde(default)]
    message: Option<String>,
    /// The message's armored `ssh-keygen -Y sign -n t-minus` signature.
    #[serde(default)]
    signature: Option<String>,
}

/// `delegations` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DelegationsArgs {
    /// Also the expired and revoked delegations.
    #[serde(default)]
    all: Option<bool>,
}

/// `undelegate` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct UndelegateArgs {
    /// The delegation: its id, or a unique prefix of 4+ hex digits.
    delegation: String,
}

/// The tools that answer: refused to a token whose role is not `agent`.
const ANSWERING: [&str; 7] = [
    "confirm",
    "defer",
    "decline",
    "answer_message",
    "submit_answer",
    "delegate",
    "undelegate",
];

/// `campaign_status` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CampaignArgs {
    /// The campaign's name or id prefix.
    campaign: String,
}

/// The MCP server of one agent over one store.
#[derive(Debug, Clone)]
pub struct McpServer {
    location: String,
    agent: AgentId,
    pinned_now: Option<DateTime<Utc>>,
    signing_key: Option<SigningKey>,
    /// The role of the token the agent comes from (over HTTP); `None`: the
    /// server's own agent, who may answer. A server made for a token runs
    /// inside a process that has the store open already, so it opens the
    /// store with [`crate::store::open_again`].
    role: Option<Role>,
}

impl McpServer {
    /// A server answering as `agent` on the store at `location` (a file path
    /// or a PostgreSQL URL, as [`Engine::open`] takes). With `pinned_now`
    /// every call happens at that instant (the command line's `T_MINUS_NOW`);
    /// otherwise at the moment it starts.
    pub fn new(
        location: impl Into<String>,
        agent: AgentId,
        pinned_now: Option<DateTime<Utc>>,
    ) -> Self {
        McpServer {
            location: location.into(),
            agent,
            pinned_now,
            signing_key: None,
            role: None,
        }
    }

    /// A server for the caller of one HTTP request: it answers as `token`'s
    /// agent, and only when the token's role is `agent` (a reader reads, an
    /// operator does not answer). It holds no key: events whose answers must
    /// be signed are answered with `answer_message` and `submit_answer`.
    pub fn for_token(
        location: impl Into<String>,
        token: &TokenInfo,
        pinned_now: Option<DateTime<Utc>>,
    ) -> Self {
        McpServer {
            role: Some(token.role),
            ..McpServer::new(location, token.agent_id(), pinned_now)
        }
    }

    /// Signs the server's answers with `key` where the event requires
    /// signed answers (`--sign KEYFILE|agent`). Without a key, such answers
    /// are refused with [`TrustError::ServerUnsigned`].
    pub fn with_signing_key(mut self, key: SigningKey) -> Self {
        self.signing_key = Some(key);
        self
    }

    /// The agent this server answers as.
    pub fn agent(&self) -> &AgentId {
        &self.agent
    }

    /// The tools, with their input and output schemas. Each output schema
    /// is derived from the [`crate::output`] type the tool returns.
    pub fn tools() -> Vec<Tool> {
        let read = ToolAnnotations::new().read_only(true);
        let answer = ToolAnnotations::new()
            .read_only(false)
            .destructive(false)
            .idempotent(true);
        vec![
            tool::<InboxArgs, Inbox>(
                "inbox",
                "The events waiting for this agent's answer (pending or blocked, not yet \
                 confirmed or declined), soonest deadline first. `all: true` adds the \
                 unfinished events it already answered.",
                read.clone(),
            ),
            tool::<EventArgs, Event>(
                "get_event",
                "One event with its attendees' answers.",
                read.clone(),
            ),
            tool::<ConfirmArgs, Event>(
                "confirm",
                "Confirm the event as this agent: ready for it to fire. With `for`, confirm \
                 for an attendee that delegated its answers to this agent.",
                answer.clone(),
            ),
            tool::<DeferArgs, Event>(
                "defer",
                "Ask for more time as this agent: the event and its deadline move later by \
                 `duration` (a humantime duration such as `10m`).",
                answer.clone().idempotent(false),
            ),
            tool::<DeclineArgs, Event>(
                "decline",
                "Decline the event as this agent, optionally saying why. When declines make \
                 quorum unreachable the event is missed at once.",
                answer,
            ),
            tool::<WaitArgs, Event>(
                "wait_event",
                "Wait until the event is final (fired, missed or cancelled) or the timeout \
                 passes (default 5m, at most 15m), sending progress notifications; returns \
                 the event's state then.",
                read.clone(),
            ),
            tool::<CampaignArgs, CampaignStatus>(
                "campaign_status",
                "A campaign with its events in execution order.",
                read.clone(),
            ),
            tool::<AnswerMessageArgs, AnswerToSign>(
                "answer_message",
                "For an event whose answers must be signed: the exact message that gives \
                 `answer` as this agent. Sign `message` with `ssh-keygen -Y sign -n t-minus -f \
                 KEY` (the agent's key) and pass it and the signature to `submit_answer` \
                 within five minutes.",
                read.clone(),
            ),
            tool::<DelegateArgs, Delegation>(
                "delegate",
                "Let another agent (`to`) answer for this one, until `until` or until revoked, \
                 for the events of `campaign` or every event. Where this agent's answers must \
                 be signed, the delegation must be too: the server signs it with its key, or \
                 pass a `t-minus delegation v1` `message` this agent signed and its \
                 `signature` instead of `to`, `until` and `campaign`.",
                ToolAnnotations::new()
                    .read_only(false)
                    .destructive(false)
                    .idempotent(false),
            ),
            tool::<DelegationsArgs, AgentDelegations>(
                "delegations",
                "The delegations this agent gave or received that are in force (`all: true`: \
                 expired and revoked ones too), oldest first.",
                read,
            ),
            tool::<UndelegateArgs, Delegation>(
                "undelegate",
                "Revoke a delegation this agent gave; answers given under it stay.",
                ToolAnnotations::new()
                    .read_only(false)
                    .destructive(true)
                    .idempotent(false),
            ),
            tool::<SubmitArgs, Event>(
                "submit_answer",
                "Record a signed answer of this agent: the message `answer_message` returned \
                 and its armored `ssh-keygen -Y sign -n t-minus` signature. The signature must \
                 be made by a key the event's signers allow for the agent.",
                ToolAnnotations::new()
                    .read_only(false)
                    .destructive(false)
                    .idempotent(false),
            ),
        ]
    }

    /// Opens the store for one call, on the clock of the call.
    fn engine(&self, live: bool) -> Result<Engine> {
        let engine = match self.role {
            Some(_) => Engine::with_store(crate::store::open_again(&self.location)?),
            None => Engine::open(&self.location)?,
        };
        Ok(match (self.pinned_now, live) {
            (Some(now), _) => engine.with_clock(Arc::new(FixedClock::new(now))),
            (None, false) => engine.with_clock(Arc::new(FixedClock::new(Utc::now()))),
            (None, true) => engine,
        })
    }

    /// Runs one tool call that is not `wait_event`: the short text and the
    /// structured result.
    fn call(&self, name: &str, args: JsonObject) -> Result<(String, Value)> {
        let mut engine = self.engine(false)?;
        let out = Renderer::new(Styles::new(false), engine.now());
        let mut views = EventViews::default();
        let engine = &mut engine;
        match name {
            "inbox" => {
                let InboxArgs { all } = parse(name, args)?;
                let events = if all.unwrap_or(false) {
                    engine.inbox_all(&self.agent)?
                } else {
                    engine.inbox(&self.agent)?
                };
                let mut inbox = Inbox {
                    agent: self.agent.as_str().to_string(),
                    events: Vec::with_capacity(events.len()),
                };
                let mut lines = Vec::with_capacity(events.len() + 1);
                lines.push(match events.len() {
                    0 => format!("Nothing waits for {}.", self.agent),
                    n => format!("{n} event(s) for {}:", self.agent),
                });
                for e in &events {
                    inbox.events.push(Event::read(engine, &mut views, e)?);
                    let view = views.named(engine, e)?;
                    lines.push(out.inbox_line(&view, &self.agent));
                }
                Ok((lines.join("\n"), structured(&inbox)))
            }
            "get_event" => {
                let EventArgs { event } = parse(name, args)?;
                let id = engine.resolve_event(&event)?;
                let e = engine
                    .get_event(id)?
                    .ok_or(TMinusError::EventNotFound { reference: event })?;
                let view = views.view(engine, &e)?;
                let text = out.event_block(&view);
                Ok((text, structured(&Event::read_one(engine, &mut views, &e)?)))
            }
            "confirm" => {
                let ConfirmArgs { event, for_agent } = parse(name, args)?;
                self.answer(engine, &event, for_agent, Response::Confirm)
            }
            "defer" => {
                let DeferArgs {
                    event,
                    duration,
                    for_agent,
                } = parse(name, args)?;
                let by = parse_duration(&duration)?;
                if by.is_zero() {
                    return Err(TMinusError::NonPositiveDeferral {
                        value: crate::error::DeferralValue::Written(duration),
                    });
                }
                self.answer(engine, &event, for_agent, Response::Defer(by))
            }
            "decline" => {
                let DeclineArgs {
                    event,
                    reason,
                    for_agent,
                } = parse(name, args)?;
                self.answer(engine, &event, for_agent, Response::Decline(reason))
            }
            "answer_message" => {
                let AnswerMessageArgs {
                    event,
                    answer,
                    duration,
                    reason,
                } = parse(name, args)?;
                let answer = answer_of(answer, duration, reason)?;
                let id = engine.resolve_event(&event)?;
                let message = engine.answer_message(id, &self.agent, answer)?;
                let text = message.render();
                let shown = AnswerToSign {
                    event: message.event(),
                    agent: self.agent.as_str().to_string(),
                    answer: message.answer().to_string(),
                    time: message.time(),
                    message: text.clone(),
                    namespace: crate::trust::NAMESPACE.to_string(),
                };
                Ok((text, structured(&shown)))
            }
            "submit_answer" => {
                let SubmitArgs { message, signature } = parse(name, args)?;
                let parsed = AnswerMessage::parse(message.as_bytes())?;
                let bad = |reason: String| TMinusError::InvalidArguments {
                    tool: name.to_string(),
                    reason,
                };
                if parsed.agent() != &self.agent {
                    return Err(bad(format!(
                        "the message is {}'s answer; this server answers as {}",
                        parsed.agent(),
                        self.agent
                    )));
                }
                let response = Response::try_from(parsed.answer()).map_err(|()| {
                    bad("submit_answer records confirm, defer and decline answers".into())
                })?;
                let updated = engine.respond_signed(message.as_bytes(), &signature)?;
                let who = self.agent.as_str();
                answered(engine, &mut views, who, &verb(&response), &updated)
            }
            "delegate" => {
                let args: DelegateArgs = parse(name, args)?;
                self.delegate(engine, args)
            }
            "delegations" => {
                let DelegationsArgs { all } = parse(name, args)?;
                let now = engine.now();
                let all = all.unwrap_or(false);
                let mine: Vec<Delegation> = engine
                    .delegations()?
                    .iter()
                    .filter(|d| d.from == self.agent || d.to == self.agent)
                    .filter(|d| all || d.state(now) == crate::delegation::DelegationState::Active)
                    .map(|d| Delegation::new(d, now))
                    .collect();
                let mut lines = vec![match mine.len() {
                    0 => format!("No delegations of {}.", self.agent),
                    n => format!("{n} delegation(s) of {}:", self.agent),
                }];
                for d in &mine {
                    lines.push(delegation_line(d));
                }
                let listed = AgentDelegations {
                    agent: self.agent.as_str().to_string(),
                    delegations: mine,
                };
                Ok((lines.join("\n"), structured(&listed)))
            }
            "undelegate" => {
                let UndelegateArgs { delegation } = parse(name, args)?;
                let found = engine.resolve_delegation(&delegation)?;
                if found.from != self.agent {
                    return Err(TokenError::OtherDelegator {
                        token: self.agent.to_string(),
                        agent: found.from.to_string(),
                    }
                    .into());
                }
                let revoked = engine.undelegate(&found.id.to_string())?;
                let shown = Delegation::new(&revoked, engine.now());
                let text = format!(
                    "Revoked delegation {}: {} no longer answers for {}.",
                    shown.id, shown.to, shown.from
                );
                Ok((text, structured(&shown)))
            }
            "campaign_status" => {
                let CampaignArgs { campaign } = parse(name, args)?;
                let id = engine.resolve_campaign(&campaign)?;
                let c = engine
                    .get_campaign(id)?
                    .ok_or(TMinusError::CampaignNotFound {
                        reference: campaign,
                    })?;
                let mut events = Vec::new();
                let mut lines = vec![out.campaign_line(&c)];
                for id in engine.campaign_execution_order(id)? {
                    if let Some(e) = engine.get_event(id)? {
                        let view = views.view(engine, &e)?;
                        lines.push(out.headline(&view));
                        events.push(e);
                    }
                }
                let status = CampaignStatus::new(&c, &events);
                Ok((lines.join("\n"), structured(&status)))
            }
            other => Err(TMinusError::InvalidArguments {
                tool: other.to_string(),
                reason: "no such tool".into(),
            }),
        }
    }

    /// `confirm`, `defer`, `decline` as the server's agent, for
    /// `principal` under its delegation when given.
    fn answer(
        &self,
        engine: &mut Engine,
        event: &str,
        principal: Option<String>,
        response: Response,
    ) -> Result<(String, Value)> {
        let principal = principal.as_deref().map(AgentId::parse).transpose()?;
        let principal = principal.as_ref();
        let id = engine.resolve_event(event)?;
        let verb = verb(&response);
        let updated = match &self.signing_key {
            Some(key) => engine.respond_with_key_for(id, &self.agent, principal, response, key)?,
            None => match principal {
                Some(principal) => engine.respond_for(id, &self.agent, principal, response),
                None => engine.respond(id, &self.agent, response),
            }
            .map_err(|err| match err {
                TMinusError::Trust(TrustError::Unsigned { event, agent }) => {
                    TrustError::ServerUnsigned { event, agent }.into()
                }
                other => other,
            })?,
        };
        let who = match principal {
            Some(principal) => format!("{} for {principal}", self.agent),
            None => self.agent.to_string(),
        };
        answered(engine, &mut EventViews::default(), &who, &verb, &updated)
    }

    /// `delegate` as the server's agent: a signed message it was given, or
    /// one the server signs with its key, or an unsigned delegation.
    fn delegate(&self, engine: &mut Engine, args: DelegateArgs) -> Result<(String, Value)> {
        let bad = |reason: &str| TMinusError::InvalidArguments {
            tool: "delegate".into(),
            reason: reason.to_string(),
        };
        let made = match (args.message, args.signature) {
            (Some(message), Some(signature)) => {
                if args.to.is_some() || args.until.is_some() || args.campaign.is_some() {
                    return Err(bad("a signed delegation is its `message` and `signature` only: the message says to, campaign and until"));
                }
                let parsed = crate::trust::grant::DelegationMessage::parse(message.as_bytes())?;
                if parsed.from != self.agent {
                    return Err(TokenError::OtherDelegator {
                        token: self.agent.to_string(),
                        agent: parsed.from.to_string(),
                    }
                    .into());
                }
                engine.delegate_signed(message.as_bytes(), &signature)?
            }
            (None, None) => {
                let to = args
                    .to
                    .ok_or_else(|| bad("name the agent who may answer for this one in `to`"))?;
                let to = AgentId::parse(&to)?;
                let until = match &args.until {
                    Some(text) => Some(crate::TimeSpec::parse(text)?.resolve(engine.now())?),
                    None => None,
                };
                let campaign = args.campaign.as_deref();
                match &self.signing_key {
                    Some(key) => {
                        engine.delegate_with_key(&self.agent, &to, until, campaign, key)?
                    }
                    None => engine.delegate(&self.agent, &to, until, campaign)?,
                }
            }
            _ => {
                return Err(bad(
                    "a signed delegation needs both `message` and `signature`",
                ))
            }
        };
        let shown = Delegation::new(&made, engine.now());
        let text = format!(
            "{} may answer for {}; delegation {}.",
            shown.to, shown.from, shown.id
        );
        Ok((text, structured(&shown)))
    }

    /// `wait_event`: drives the event with the runner until it is final or
    /// the timeout passes, reporting each step on `progress`.
    fn wait(
        &self,
        args: JsonObject,
        progress: mpsc::UnboundedSender<String>,
        stop: &AtomicBool,
    ) -> Result<(String, Value)> {
        let WaitArgs { event, timeout } = parse("wait_event", args)?;
        let timeout = match timeout {
            None => DEFAULT_WAIT,
            Some(text) => {
                let d = parse_duration(&text)?.to_std().unwrap_or(StdDuration::ZERO);
                if d > MAX_WAIT {
                    return Err(TMinusError::InvalidDuration {
                        value: text,
                        reason: "wait_event waits at most 15m; call it again to wait longer".into(),
                    });
                }
                d
            }
        };
        let mut engine = self.engine(true)?;
        let id = engine.resolve_event(&event)?;
        let mut options = RunOptions::new(Scope::Event(id));
        options.timeout = Some(timeout);
        options.refresh = Some(WAIT_REFRESH);
        options.poll = StdDuration::from_millis(50);
        let mut observer = Progress {
            sender: progress,
            started: Instant::now(),
        };
        run(&mut engine, &options, &mut observer, stop)?;
        let e = engine
            .get_event(id)?
            .ok_or(TMinusError::EventNotFound { reference: event })?;
        let out = Renderer::new(Styles::new(false), engine.now());
        let mut views = EventViews::default();
        let view = views.view(&engine, &e)?;
        let headline = out.headline(&view);
        let text = if e.state.is_final() {
            format!("{} is {}: {headline}", e.label(), e.state)
        } else {
            format!(
                "timed out after {}; {} is still {}: {headline}",
                humantime::format_duration(timeout),
                e.label(),
                e.state
            )
        };
        Ok((text, structured(&Event::read(&engine, &mut views, &e)?)))
    }
}

/// One delegation as the `delegations` tool lists it:
/// `ID  FROM → TO  campaign C|every event  STATE`.
fn delegation_line(d: &Delegation) -> String {
    let place = match &d.campaign {
        Some(c) => format!("campaign {c}"),
        None => "every event".to_string(),
    };
    format!(
        "{}  {} → {}  {place}  {}",
        d.id,
        d.from,
        d.to,
        d.state.as_str()
    )
}

/// An answer's tool result: `WHO VERB LABEL [ID]: STATE, quorum N/M` and
/// the event as it is now.
fn answered(
    engine: &Engine,
    views: &mut EventViews,
    who: &str,
    verb: &str,
    updated: &TMinusEvent,
) -> Result<(String, Value)> {
    let label = views.label(engine, updated)?;
    let text = format!(
        "{who} {verb} {label} [{}]: {}, quorum {}/{}",
        updated.short_id(),
        updated.state,
        updated.confirmed_count(),
        updated.quorum
    );
    Ok((text, structured(&Event::read_one(engine, views, updated)?)))
}

/// `confirmed`, `deferred by 10m`, `declined`.
fn verb(response: &Response) -> String {
    match response {
        Response::Confirm => "confirmed".to_string(),
        Response::Defer(by) => format!("deferred by {}", format_duration(*by)),
        Response::Decline(_) => "declined".to_string(),
    }
}

/// The answer `answer_message` was asked for, refusing arguments that do
/// not go with it.
fn answer_of(word: AnswerWord, duration: Option<String>, reason: Option<String>) -> Result<Answer> {
    let bad = |reason: &str| TMinusError::InvalidArguments {
        tool: "answer_message".into(),
        reason: reason.into(),
    };
    if reason.is_some() && !matches!(word, AnswerWord::Decline) {
        return Err(bad("`reason` goes with `decline` only"));
    }
    match (word, duration) {
        (AnswerWord::Confirm, None) => Ok(Answer::Confirm),
        (AnswerWord::Decline, None) => Ok(Answer::Decline { reason }),
        (AnswerWord::Defer, Some(text)) => {
            let by = parse_duration(&text)?;
            if by.is_zero() {
                return Err(TMinusError::NonPositiveDeferral {
                    value: crate::error::DeferralValue::Written(text),
                });
            }
            Ok(Answer::Defer(by))
        }
        (AnswerWord::Defer, None) => Err(bad("`defer` needs a `duration`, e.g. `10m`")),
        (_, Some(_)) => Err(bad("`duration` goes with `defer` only")),
    }
}

/// Parses a tool's arguments, refusing what does not fit its schema.
fn parse<T: DeserializeOwned>(tool: &str, args: JsonObject) -> Result<T> {
    serde_json::from_value(Value::Object(args)).map_err(|e| TMinusError::InvalidArguments {
        tool: tool.to_string(),
        reason: e.to_string(),
    })
}

/// A tool taking `A` and returning `O`, with their derived schemas.
fn tool<A: JsonSchema + 'static, O: JsonSchema + 'static>(
    name: &'static str,
    description: &'static str,
    annotations: ToolAnnotations,
) -> Tool {
    Tool::new(
        name,
        description,
        rmcp::handler::server::common::schema_for_type::<A>(),
    )
    .with_raw_output_schema(rmcp::handler::server::common::schema_for_output::<O>())
    .with_annotations(annotations)
}

/// A tool's structured result: an output value as JSON.
fn structured(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// A refusal or bad input as a tool result: the code, the message, the help.
fn error_result(e: &TMinusError) -> CallToolResult {
    let error = ErrorBody::new(e);
    let mut text = format!("{}: {}", error.code, error.message);
    if let Some(help) = &error.help {
        text.push_str(&format!("\nhelp: {help}"));
    }
    CallToolResult::error(vec![ContentBlock::text(without_paths(&text))])
}

/// `text` with every filesystem path and store URL replaced by `<path>` and
/// `<store>`: the model sees what went wrong, not where the store and the
/// keys live.
fn without_paths(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        // A token: up to whitespace or a quote.
        let end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '(' | ')'))
            .unwrap_or(rest.len());
        if end == 0 {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let token = &rest[..end];
        let trimmed = token.trim_end_matches([',', ';', ':', '.']);
        let tail = &token[trimmed.len()..];
        let lower = trimmed.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            out.push_str("<store>");
            out.push_str(tail);
        } else if trimmed.len() > 1
            && (trimmed.starts_with('/') || trimmed.starts_with("~/") || trimmed.starts_with("./"))
        {
            out.push_str("<path>");
            out.push_str(tail);
        } else {
            out.push_str(token);
        }
        rest = &rest[end..];
    }
    out
}

/// A success: the short text and the structured result.
fn success(text: String, value: Value) -> CallToolResult {
    let mut result = CallToolResult::structured(value);
    result.content = vec![ContentBlock::text(text)];
    result
}

/// Reports `wait_event`'s steps as progress messages.
struct Progress {
    sender: mpsc::UnboundedSender<String>,
    started: Instant,
}

impl RunObserver for Progress {
    fn transition(&mut self, _: &Engine, entry: &AuditEntry, event: &TMinusEvent) -> Result<()> {
        let _ = self.sender.send(format!(
            "{} {} ({})",
            event.label(),
            entry.action,
            event.state
        ));
        Ok(())
    }

    fn refresh(&mut self, _: &Engine, events: &[TMinusEvent], _: DateTime<Utc>) -> Result<()> {
        if let Some(e) = events.first() {
            let _ = self.sender.send(format!(
                "{} {}, quorum {}/{}, waited {}s",
                e.label(),
                e.state,
                e.confirmed_count(),
                e.quorum,
                self.started.elapsed().as_secs()
            ));
        }
        Ok(())
    }
}

/// What the instructions say of events whose answers must be signed.
pub const SIGNED_INSTRUCTIONS: &str = "Where an event's answers must be signed and the server \
    holds no key, `answer_message` gives the exact message to sign with your key \
    (`ssh-keygen -Y sign -n t-minus`) and `submit_answer` records it with the signature.";

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("t-minus", env!("CARGO_PKG_VERSION")).with_title("t-minus"),
            )
            .with_instructions(format!(
                "Countdown events between agents. You answer as `{}`: `inbox` lists what waits \
                 for you; `confirm`, `defer` and `decline` answer; `wait_event` waits for an \
                 event to fire. {SIGNED_INSTRUCTIONS}",
                self.agent
            ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(Self::tools()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        Self::tools().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> std::result::Result<CallToolResponse, ErrorData> {
        let name = request.name.to_string();
        if self.get_tool(&name).is_none() {
            return Err(ErrorData::invalid_params(
                format!("unknown tool `{name}`"),
                None,
            ));
        }
        if let Some(role) = self.role.filter(|r| *r != Role::Agent) {
            if ANSWERING.contains(&name.as_str()) {
                let refused = TMinusError::from(TokenError::Forbidden {
                    role,
                    action: "answer".into(),
                    needed: "agent".into(),
                });
                return Ok(error_result(&refused).into());
            }
        }
        let args = request.arguments.unwrap_or_default();
        let server = self.clone();
        let outcome = if name == "wait_event" {
            self.wait_event(args, context).await
        } else {
            tokio::task::spawn_blocking(move || server.call(&name, args)).await
        };
        Ok(match outcome {
            Ok(Ok((text, value))) => success(text, value),
            Ok(Err(e)) => error_result(&e),
            Err(join) => CallToolResult::error(vec![ContentBlock::text(format!(
                "t_minus::internal: the call failed: {join}"
            ))]),
        }
        .into())
    }
}

impl McpServer {
    /// `wait_event` on a blocking thread, forwarding its progress to the
    /// client (when the request asked for progress) and stopping it when the
    /// client cancels the request.
    async fn wait_event(
        &self,
        args: JsonObject,
        context: RequestContext<RoleServer>,
    ) -> std::result::Result<Result<(String, Value)>, tokio::task::JoinError> {
        let (sender, mut receiver) = mpsc::unbounded_channel();
        let stop = Arc::new(AtomicBool::new(false));
        let server = self.clone();
        let raised = stop.clone();
        let mut task = tokio::task::spawn_blocking(move || server.wait(args, sender, &raised));
        let token = context.meta.get_progress_token();
        let mut step = 0.0;
        let mut notify = async |message: String| {
            if let Some(token) = &token {
                step += 1.0;
                let _ = context
                    .peer
                    .notify_progress(
                        ProgressNotificationParam::new(token.clone(), step).with_message(message),
                    )
                    .await;
            }
        };
        loop {
            tokio::select! {
                done = &mut task => {
                    // The steps the wait reported last (the transition that
                    // ended it) go out before the result.
                    while let Ok(message) = receiver.try_recv() {
                        notify(message).await;
                    }
                    return done;
                }
                Some(message) = receiver.recv() => notify(message).await,
                () = context.ct.cancelled(), if !stop.load(Ordering::SeqCst) => {
                    stop.store(true, Ordering::SeqCst);
                }
            }
        }
    }
}

/// Serves `server` on stdin/stdout until the client closes the connection.
/// Needs a tokio runtime (the command line starts a current-thread one).
///
/// Each incoming line is checked before the session sees it: a line that
/// is not JSON is answered with a JSON-RPC parse error (-32700), and one
/// nested deeper than [`MAX_DEPTH`], longer than [`MAX_LINE`] bytes, or not
/// a JSON-RPC 2.0 object with an invalid-request error (-32600); neither
/// reaches the session, and the connection stays open.
pub async fn serve_stdio(server: McpServer) -> std::result::Result<(), String> {
    serve_lines(server, tokio::io::stdin(), tokio::io::stdout()).await
}

/// [`serve_stdio`] on any pair of streams: newline-delimited JSON-RPC in on
/// `input`, answers out on `output`, with the same checks.
pub async fn serve_lines(
    server: McpServer,
    input: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    output: impl tokio::io::AsyncWrite + Unpin + Send + 'static,
) -> std::result::Result<(), String> {
    use rmcp::ServiceExt;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    let (session_in, mut to_session) = tokio::io::duplex(64 * 1024);
    let (from_session, session_out) = tokio::io::duplex(64 * 1024);
    let (lines_tx, mut lines_rx) = mpsc::unbounded_channel::<String>();

    // One writer to stdout, a line at a time: the session's answers and the
    // transport's own errors never interleave.
    let errors = lines_tx.clone();
    let writer = tokio::spawn(async move {
        let mut stdout = output;
        while let Some(line) = lines_rx.recv().await {
            if stdout.write_all(line.as_bytes()).await.is_err()
                || stdout.write_all(b"\n").await.is_err()
                || stdout.flush().await.is_err()
            {
                return;
            }
        }
    });
    let answers = tokio::spawn(async move {
        let mut lines = BufReader::new(from_session).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let reader = tokio::spawn(async move {
        let mut stdin = BufReader::new(input);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match (&mut stdin)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut buf)
                .await
            {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if buf.len() > MAX_LINE && buf.last() != Some(&b'\n') {
                // Skip the rest of the over-long line.
                let mut rest = Vec::new();
                let _ = stdin.read_until(b'\n', &mut rest).await;
                let _ = errors.send(rpc_error(
                    Value::Null,
                    -32600,
                    "Invalid Request: the message is too long",
                ));
                continue;
            }
            match check_incoming(&buf) {
                Incoming::Blank => {}
                Incoming::Forward => {
                    if to_session.write_all(&buf).await.is_err() {
                        return;
                    }
                    if buf.last() != Some(&b'\n') && to_session.write_all(b"\n").await.is_err() {
                        return;
                    }
                }
                Incoming::Refused(answer) => {
                    let _ = errors.send(answer);
                }
            }
        }
    });
    let running = server
        .serve((session_in, session_out))
        .await
        .map_err(|e| format!("the MCP client did not initialize the session: {e}"))?;
    let result = running
        .waiting()
        .await
        .map(drop)
        .map_err(|e| format!("the MCP session ended with an error: {e}"));
    reader.abort();
    let _ = answers.await;
    let _ = writer.await;
    result
}

/// The deepest nesting of arrays and objects an incoming message may have.
pub const MAX_DEPTH: usize = 64;

/// The longest incoming message, in bytes.
pub const MAX_LINE: usize = 4 * 1024 * 1024;

/// What to do with one incoming line.
enum Incoming {
    /// Only whitespace.
    Blank,
    /// A JSON-RPC message for the session.
    Forward,
    /// Answered here with this error.
    Refused(String),
}

/// Checks one incoming line (see [`serve_stdio`]).
fn check_incoming(line: &[u8]) -> Incoming {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Incoming::Blank;
    }
    if nesting(line) > MAX_DEPTH {
        return Incoming::Refused(rpc_error(
            Value::Null,
            -32600,
            &format!("Invalid Request: nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            return Incoming::Refused(rpc_error(Value::Null, -32700, &format!("Parse error: {e}")))
        }
    };
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    let valid = value.as_object().is_some_and(|o| {
        o.get("jsonrpc") == Some(&json!("2.0"))
            && (o.contains_key("method") || o.contains_key("result") || o.contains_key("error"))
    });
    if valid {
        Incoming::Forward
    } else {
        Incoming::Refused(rpc_error(
            id,
            -32600,
            "Invalid Request: not a JSON-RPC 2.0 request, notification or response",
        ))
    }
}

/// The deepest nesting of `[` and `{` in `json`, outside strings.
fn nesting(json: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// A JSON-RPC error answer, as one line.
fn rpc_error(id: Value, code: i64, message: &str) -> String {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } }).to_string()
}

#[cfg(test)]
mod transport_tests {
    use super::*;

    #[test]
    fn error_text_shows_no_paths() {
        let text = without_paths(
            "cannot open the store /home/ops/.t-minus/store.db: denied; key `/home/ops/.ssh/id_ed25519` (see ./keys/x.pub), url postgres://ops:pw@db/t",
        );
        assert!(!text.contains("/home"), "{text}");
        assert!(!text.contains("./keys"), "{text}");
        assert!(!text.contains("pw@db"), "{text}");
        assert!(text.contains("<path>: denied"), "{text}");
        assert!(text.contains("`<path>`"), "{text}");
        assert!(text.contains("<store>"), "{text}");
        assert_eq!(without_paths("quorum 2 of 3 / all"), "quorum 2 of 3 / all");
    }

    #[test]
    fn incoming_lines_are_checked() {
        assert!(matches!(check_incoming(b"  \n"), Incoming::Blank));
        assert!(matches!(check_incoming(b"{nope"), Incoming::Refused(e) if e.contains("-32700")));
        let deep = format!("{}{}", "{\"a\":".repeat(65), "}".repeat(65));
        assert!(
            matches!(check_incoming(deep.as_bytes()), Incoming::Refused(e) if e.contains("-32600"))
        );
        // Brackets inside strings do not count.
        let quoted = format!(
            r#"{{"jsonrpc":"2.0","method":"x","params":{{"s":"{}"}}}}"#,
            "[".repeat(100)
        );
        assert!(matches!(
            check_incoming(quoted.as_bytes()),
            Incoming::Forward
        ));
    }
}
