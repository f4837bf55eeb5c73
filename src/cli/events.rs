//! Event commands: schedule, confirm/defer/decline, cancel, status, tick, log.

use t_minus::duration::{format_countdown, format_duration, parse_duration};
use t_minus::engine::EventViews;
use t_minus::time_spec::format_time;
use t_minus::{
    AgentId, Engine, EventKind, EventState, FirePolicy, NewEvent, Quorum, QuorumGroup, Response,
    Result, TMinusError, TMinusEvent, Target, TimeSpec,
};

use std::process::ExitCode;

use t_minus::notify::{Hook, NotifyRule, Trigger, WebhookFormat};
use t_minus::output::{CampaignCancel, DeliveryStatus, Event, LogEntry, TickReport};

use super::args::{
    BreakglassArgs, CancelArgs, ConfirmArgs, DeclineArgs, DeferArgs, EventOptions, LogArgs,
    NotifyOptions, ScheduleArgs, TickArgs,
};
use super::context::Context;
use super::error::CliError;
use super::remote::{encode, Campaigns, Client, ClientError};
use super::{done, json};
use t_minus::display::{EventView, Renderer};

/// Builds a [`NewEvent`] from `KIND TIME` and the shared options.
pub fn new_event(engine: &Engine, kind: &str, time: &str, o: &EventOptions) -> Result<NewEvent> {
    let kind: EventKind = kind.parse().unwrap_or_else(|never| match never {});
    let at = TimeSpec::parse(time)?.resolve(engine.now())?;
    let attendees = t_minus::agent::parse_agent_list(&o.attendees)
        .map_err(|e| in_flag(e.into(), "--attendees", &o.attendees))?;
    let payload = match &o.payload {
        Some(text) => serde_json::from_str(text).map_err(|e| TMinusError::InvalidPayload {
            reason: e.to_string(),
        })?,
        None => serde_json::Value::Null,
    };
    Ok(NewEvent {
        notify: notify_rules(&o.notify)?,
        t_minus: parse_duration(&o.t_minus)?,
        organizer: AgentId::parse(&o.organizer)
            .map_err(|e| in_flag(e.into(), "--organizer", &o.organizer))?,
        quorum: o.quorum.parse::<Quorum>()?,
        fire_policy: o.fire.parse::<FirePolicy>()?,
        max_defer: o.max_defer.as_deref().map(parse_duration).transpose()?,
        attendees,
        groups: o
            .groups
            .iter()
            .map(|g| {
                g.parse::<QuorumGroup>()
                    .map_err(|e| in_flag(e.into(), "--group", g))
            })
            .collect::<Result<_>>()?,
        payload,
        gates: t_minus::gate::Gates {
            four_eyes: o.four_eyes,
            windows: o
                .windows
                .iter()
                .map(|w| {
                    w.parse()
                        .map_err(|e: t_minus::input::InputError| in_flag(e.into(), "--window", w))
                })
                .collect::<Result<_>>()?,
            breakglass: match &o.breakglass {
                Some(list) => t_minus::agent::parse_agent_list(list)
                    .map_err(|e| in_flag(e.into(), "--breakglass", list))?,
                None => Vec::new(),
            },
            broken: None,
        },
        ..NewEvent::new(kind, at)
    })
}

/// The rules of `--notify-exec` / `--notify-webhook` with `--on`,
/// `--notify-before` and `--notify-format`.
fn notify_rules(o: &NotifyOptions) -> Result<Vec<NotifyRule>> {
    if o.notify_exec.is_empty() && o.notify_webhook.is_empty() {
        return Ok(Vec::new());
    }
    let on = o
        .notify_on
        .iter()
        .map(|w| w.trim().parse::<Trigger>())
        .collect::<Result<Vec<_>>>()?;
    let mut before_ms = Vec::new();
    for text in &o.notify_before {
        let d = parse_duration(text)?;
        before_ms.push(u64::try_from(d.num_milliseconds()).unwrap_or(0));
    }
    let format: WebhookFormat = o.notify_format.parse()?;
    let execs = o
        .notify_exec
        .iter()
        .map(|cmd| exec_argv(cmd).map(|argv| Hook::Exec { argv }))
        .collect::<Result<Vec<_>>>()?;
    let hooks = execs
        .into_iter()
        .chain(o.notify_webhook.iter().map(|url| Hook::Webhook {
            url: url.clone(),
            format,
            headers: Default::default(),
        }));
    let timeout_ms = match &o.notify_timeout {
        Some(text) => Some(u64::try_from(parse_duration(text)?.num_milliseconds()).unwrap_or(0)),
        None => None,
    };
    Ok(hooks
        .map(|hook| {
            let mut rule = NotifyRule::new(on.clone(), hook);
            rule.before_ms = before_ms.clone();
            if let Some(ms) = timeout_ms {
                rule.timeout_ms = ms;
            }
            if let Some(n) = o.notify_retry {
                rule.attempts = n;
            }
            rule
        })
        .collect())
}

/// Splits a `--notify-exec` command into a program and its arguments with
/// POSIX shell quoting (`./page.sh --to 'on call'` is three words).
/// A program path with a `/` is resolved against the current directory
/// now, so the rule runs the same program whichever directory delivers it.
fn exec_argv(cmd: &str) -> Result<Vec<String>> {
    let mut argv = shlex::split(cmd).ok_or_else(|| TMinusError::InvalidNotify {
        reason: format!("--notify-exec `{cmd}` has an unbalanced quote or a trailing backslash"),
        help: "close every ' and \" quote in the command, e.g. --notify-exec \"./page.sh --to 'on call'\"".into(),
    })?;
    if let Some(program) = argv.first_mut() {
        let path = std::path::Path::new(program.as_str());
        if program.contains('/') && !path.is_absolute() {
            if let Ok(absolute) = std::path::absolute(path) {
                *program = absolute.display().to_string();
            }
        }
    }
    Ok(argv)
}

/// Says which option an invalid agent id came from (`alice,,bob` has an
/// empty one, which the bare id `""` does not explain).
fn in_flag(e: TMinusError, flag: &str, value: &str) -> TMinusError {
    match e {
        TMinusError::InvalidAgentId { value: id, reason } => TMinusError::InvalidAgentId {
            value: id,
            reason: format!("{reason} (in {flag} `{value}`)"),
        },
        other => other,
    }
}

/// Prints a freshly created event.
pub fn print_created(
    engine: &mut Engine,
    out: &mut Renderer,
    verb: &str,
    event: &TMinusEvent,
    as_json: bool,
) -> Result<()> {
    let mut views = EventViews::default();
    if as_json {
        json::print(&Event::read(engine, &mut views, event)?);
        return Ok(());
    }
    let label = views.label(engine, event)?;
    println!("📅 {verb} {label} {}", event.id);
    println!(
        "   at {}, confirmations due by {} (T-{})",
        format_time(event.scheduled_at),
        format_time(event.fire_time()),
        format_countdown(event.fire_time() - out.now)
    );
    if event.state == EventState::Fired {
        println!(
            "   quorum {} needs no confirmation: it fired at once",
            event.quorum
        );
    }
    let view = views.view(engine, event)?;
    println!("{}", out.event_block(&view));
    Ok(())
}

impl ScheduleArgs {
    /// `schedule KIND TIME`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let mut s = cx.open()?;
        done(schedule(&mut s.engine, &mut s.out, self, cx.json()))
    }
}

/// `schedule`.
fn schedule(
    engine: &mut Engine,
    out: &mut Renderer,
    args: &ScheduleArgs,
    as_json: bool,
) -> Result<()> {
    let mut new = new_event(engine, &args.kind, &args.time, &args.options)?;
    new.name = args.name.clone();
    if let Some(path) = &args.signers {
        new.signers = Some(t_minus::trust::Signers::read_allowed_signers(path)?);
    }
    let event = engine.schedule(new)?;
    print_created(engine, out, "Scheduled", &event, as_json)
}

impl ConfirmArgs {
    /// `confirm EVENT AGENT`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let who = (self.agent.as_str(), self.for_agent.as_deref());
        answer(cx, &self.event, who, Answer::Confirm, self.sign.as_deref())
    }
}

impl DeferArgs {
    /// `defer EVENT AGENT DURATION`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let who = (self.agent.as_str(), self.for_agent.as_deref());
        let sign = self.sign.as_deref();
        answer(cx, &self.event, who, Answer::Defer(&self.duration), sign)
    }
}

impl DeclineArgs {
    /// `decline EVENT AGENT [--reason]`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let (reason, sign) = (self.reason.clone(), self.sign.as_deref());
        let who = (self.agent.as_str(), self.for_agent.as_deref());
        answer(cx, &self.event, who, Answer::Decline(reason), sign)
    }
}

/// Opens the store and records one answer of `confirm`, `defer` or
/// `decline`, by `who.0`, for `who.1` under a delegation when given.
fn answer(
    cx: &Context,
    event: &str,
    who: (&str, Option<&str>),
    answer: Answer<'_>,
    sign: Option<&str>,
) -> Result<ExitCode, CliError> {
    let (agent, principal) = who;
    if let Some(client) = cx.remote()? {
        return remote_answer(cx, &client, event, (agent, principal), answer, sign);
    }
    let mut s = cx.open()?;
    done(respond(
        &mut s.engine,
        event,
        (agent, principal),
        answer,
        sign,
        cx.json(),
    ))
}

/// An answer from the command line.
pub enum Answer<'a> {
    /// `confirm`.
    Confirm,
    /// `defer DURATION`.
    Defer(&'a str),
    /// `decline [--reason]`.
    Decline(Option<String>),
}

impl Answer<'_> {
    /// The answer, checked as the engine takes it.
    fn response(self) -> Result<Response> {
        Ok(match self {
            Answer::Confirm => Response::Confirm,
            Answer::Defer(text) => {
                let by = parse_duration(text)?;
                if by.is_zero() {
                    return Err(TMinusError::NonPositiveDeferral {
                        value: t_minus::error::DeferralValue::Written(text.to_string()),
                    });
                }
                Response::Defer(by)
            }
            Answer::Decline(reason) => Response::Decline(reason),
        })
    }
}

/// `confirm`, `defer`, `decline` through a t-minus service, as the token's
/// agent (the service refuses another `AGENT` with
/// `t_minus::auth::other_agent`).
fn remote_answer(
    cx: &Context,
    client: &Client,
    event: &str,
    who: (&str, Option<&str>),
    answer: Answer<'_>,
    sign: Option<&str>,
) -> Result<ExitCode, CliError> {
    let agent = AgentId::parse(who.0)?;
    let principal = who.1.map(AgentId::parse).transpose()?;
    if let Some(key) = super::context::signing_key(sign) {
        let who = (&agent, principal.as_ref());
        return remote_signed_answer(cx, client, event, who, answer, &key);
    }
    let (verb, mut body) = match &answer {
        Answer::Confirm => ("confirm", serde_json::json!({ "agent": agent.as_str() })),
        Answer::Defer(by) => (
            "defer",
            serde_json::json!({ "by": by, "agent": agent.as_str() }),
        ),
        Answer::Decline(reason) => (
            "decline",
            serde_json::json!({ "reason": reason, "agent": agent.as_str() }),
        ),
    };
    if let Some(principal) = &principal {
        body["for"] = serde_json::json!(principal.as_str());
    }
    let response = answer.response()?;
    let path = format!("/v1/events/{}/{verb}", encode(event));
    post_event(cx, client, &path, &body, |label, updated| {
        answer_lines(label, acted(&agent, principal.as_ref()), &response, updated)
    })
}

/// Posts `body` to the service's `path`, which answers with the event:
/// prints the event as JSON, or calls `lines` with its label and the event.
fn post_event(
    cx: &Context,
    client: &Client,
    path: &str,
    body: &serde_json::Value,
    lines: impl FnOnce(&str, &TMinusEvent),
) -> Result<ExitCode, CliError> {
    let reply = client.post_json::<Event>(path, body)?;
    if cx.json() {
        json::print(&reply.json);
    } else {
        let event = reply.value.to_event()?;
        let label = t_minus::display::label(reply.value.campaign.as_deref(), &event);
        lines(&label, &event);
    }
    Ok(ExitCode::SUCCESS)
}

/// `confirm`, `defer`, `decline --sign KEYFILE` through a t-minus service:
/// the answer message is made from the event the service shows (its digest
/// included), signed here, and posted to `/v1/answers`.
fn remote_signed_answer(
    cx: &Context,
    client: &Client,
    event: &str,
    who: (&AgentId, Option<&AgentId>),
    answer: Answer<'_>,
    key: &t_minus::trust::SigningKey,
) -> Result<ExitCode, CliError> {
    let (agent, principal) = who;
    let response = answer.response()?;
    let shown = client.get::<Event>(&format!("/v1/events/{}", encode(event)))?;
    let now = super::context::pinned_now()?.unwrap_or_else(chrono::Utc::now);
    let mut message = super::remote::answer_message(&shown.value, agent, (&response).into(), now)?;
    if let Some(principal) = principal {
        message = message
            .on_behalf_of(principal.clone())
            .map_err(TMinusError::from)?;
    }
    let bytes = message.to_bytes();
    // Through ssh-agent, the key is the one the event's signers allow for
    // the agent: the service says which.
    let signers = match key {
        t_minus::trust::SigningKey::File(_) => t_minus::trust::Signers::default(),
        t_minus::trust::SigningKey::Agent => {
            super::remote::signers(client, shown.value.id)?.unwrap_or_default()
        }
    };
    let signature = key
        .sign(&signers, agent, &bytes, now)
        .map_err(TMinusError::from)?;
    let reply = super::remote::submit(client, &bytes, &signature.to_armored())?;
    if cx.json() {
        json::print(&reply.json);
        return Ok(ExitCode::SUCCESS);
    }
    let updated = reply.value.to_event()?;
    let label = t_minus::display::label(reply.value.campaign.as_deref(), &updated);
    answer_lines(&label, acted(agent, principal), &response, &updated);
    Ok(ExitCode::SUCCESS)
}

/// `confirm`, `defer`, `decline`, by `who.0` (for `who.1` under a
/// delegation when given).
fn respond(
    engine: &mut Engine,
    event: &str,
    who: (&str, Option<&str>),
    answer: Answer<'_>,
    sign: Option<&str>,
    as_json: bool,
) -> Result<()> {
    let agent = AgentId::parse(who.0)?;
    let principal = who.1.map(AgentId::parse).transpose()?;
    let response = answer.response()?;
    let key = sign.map(str::to_string).or_else(|| {
        std::env::var("T_MINUS_SIGNING_KEY")
            .ok()
            .filter(|k| !k.is_empty())
    });
    let mut views = EventViews::default();
    let updated = match key {
        Some(key) => {
            let id = engine.resolve_event(event)?;
            engine.respond_with_key_for(
                id,
                &agent,
                principal.as_ref(),
                response.clone(),
                &t_minus::trust::SigningKey::parse(&key),
            )?
        }
        // Resolved, answered and named in one transaction.
        None => {
            let (updated, campaign) =
                engine.respond_to_for(event, &agent, principal.as_ref(), response.clone())?;
            if let Some(id) = updated.campaign {
                views.know_campaign(id, campaign);
            }
            updated
        }
    };
    if as_json {
        json::print(&Event::read_one(engine, &mut views, &updated)?);
        return Ok(());
    }
    let label = views.label(engine, &updated)?;
    answer_lines(
        &label,
        acted(&agent, principal.as_ref()),
        &response,
        &updated,
    );
    Ok(())
}

/// Who gave an answer: `AGENT`, or `TO for FROM` under a delegation.
fn acted(agent: &AgentId, principal: Option<&AgentId>) -> String {
    match principal {
        Some(principal) => format!("{agent} for {principal}"),
        None => agent.to_string(),
    }
}

/// Prints an accepted answer and what it did to the event.
pub fn print_answer(
    engine: &Engine,
    agent: &AgentId,
    response: &Response,
    updated: &TMinusEvent,
    as_json: bool,
) -> Result<()> {
    let mut views = EventViews::default();
    print_answer_with(engine, &mut views, agent, response, updated, as_json)
}

/// [`print_answer`] with the views built so far.
fn print_answer_with(
    engine: &Engine,
    views: &mut EventViews,
    agent: &AgentId,
    response: &Response,
    updated: &TMinusEvent,
    as_json: bool,
) -> Result<()> {
    if as_json {
        json::print(&Event::read(engine, views, updated)?);
        return Ok(());
    }
    let label = views.label(engine, updated)?;
    answer_lines(&label, agent, response, updated);
    Ok(())
}

/// The lines of an accepted answer: what the agent did, and the event's
/// outcome when the answer decided it.
fn answer_lines(
    label: &str,
    agent: impl std::fmt::Display,
    response: &Response,
    updated: &TMinusEvent,
) {
    let progress = format!("quorum {}", t_minus::display::quorum_progress(updated));
    match response {
        Response::Confirm => println!(
            "✅ {agent} confirmed {label} [{}] ({progress})",
            updated.short_id()
        ),
        Response::Defer(by) => println!(
            "⏳ {agent} deferred {label} [{}] by {}; confirmations now due by {} ({progress})",
            updated.short_id(),
            format_duration(*by),
            updated
                .fire_deadline()
                .map(format_time)
                .unwrap_or_else(|| "its start + offset".into()),
        ),
        Response::Decline(_) => println!(
            "🚫 {agent} declined {label} [{}] ({progress})",
            updated.short_id()
        ),
    }
    match updated.state {
        EventState::Fired => println!("🚀 Event {} fired! (quorum reached)", updated.id),
        EventState::Missed => println!(
            "❌ Event {} missed (quorum can no longer be reached)",
            updated.id
        ),
        _ => {}
    }
}

impl BreakglassArgs {
    /// `breakglass EVENT AGENT --reason TEXT [--sign KEY]`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        if let Some(client) = cx.remote()? {
            return remote_breakglass(cx, &client, self);
        }
        let mut s = cx.open()?;
        done(breakglass(&mut s.engine, self, cx.json()))
    }
}

/// `breakglass` on the store.
fn breakglass(engine: &mut Engine, args: &BreakglassArgs, as_json: bool) -> Result<()> {
    let agent = AgentId::parse(&args.agent)?;
    let reason = args.reason.as_deref().unwrap_or_default();
    let id = engine.resolve_event(&args.event)?;
    let event = match &args.sign {
        Some(key) => engine.break_glass_with_key(
            id,
            &agent,
            reason,
            &t_minus::trust::SigningKey::parse(key),
        )?,
        None => engine.break_glass(id, &agent, reason)?,
    };
    let mut views = EventViews::default();
    if as_json {
        json::print(&Event::read(engine, &mut views, &event)?);
    } else {
        let label = views.label(engine, &event)?;
        println!(
            "🔨 {agent} broke the glass of {label} [{}]: {reason}",
            event.short_id()
        );
        println!("🚀 Event {} fired! (break-glass)", event.id);
    }
    Ok(())
}

/// `breakglass` through a t-minus service: the token's agent (or an
/// operator naming the agent) breaks the glass.
fn remote_breakglass(
    cx: &Context,
    client: &Client,
    args: &BreakglassArgs,
) -> Result<ExitCode, CliError> {
    if args.sign.is_some() {
        return Err(ClientError::Unsupported {
            what: "a signed break-glass (--sign)".into(),
        }
        .into());
    }
    let path = format!("/v1/events/{}/breakglass", encode(&args.event));
    let body = serde_json::json!({ "agent": args.agent, "reason": args.reason });
    post_event(cx, client, &path, &body, |label, event| {
        println!(
            "🔨 {} broke the glass of {label} [{}]: {}",
            args.agent,
            event.short_id(),
            args.reason.as_deref().unwrap_or_default()
        )
    })
}

impl CancelArgs {
    /// `cancel EVENT|CAMPAIGN`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        if let Some(client) = cx.remote()? {
            return remote_cancel(cx, &client, self);
        }
        let mut s = cx.open()?;
        let signer = self.signer.as_deref().zip(self.sign.clone());
        done(cancel(
            &mut s.engine,
            &self.target,
            self.reason.clone(),
            signer,
            cx.json(),
        ))
    }
}

/// `cancel EVENT|CAMPAIGN [--sign KEY --as AGENT]`.
fn cancel(
    engine: &mut Engine,
    target: &str,
    reason: Option<String>,
    signer: Option<(&str, String)>,
    as_json: bool,
) -> Result<()> {
    match engine.resolve_target(target)? {
        Target::Event(id) => {
            let event = match signer {
                Some((agent, key)) => engine.cancel_with_key(
                    id,
                    &AgentId::parse(agent)?,
                    reason,
                    &t_minus::trust::SigningKey::parse(&key),
                )?,
                None => engine.cancel_event(id, reason)?,
            };
            print_cancelled(engine, &event, as_json)?;
        }
        Target::Campaign(_) if signer.is_some() => {
            return Err(t_minus::trust::TrustError::CampaignSignedCancel {
                campaign: target.to_string(),
            }
            .into())
        }
        Target::Campaign(id) => {
            let cancelled = engine.cancel_campaign(id, reason)?;
            let name = engine.get_campaign(id)?.map(|c| c.name).unwrap_or_default();
            if as_json {
                json::print(&CampaignCancel {
                    campaign: name,
                    cancelled,
                });
            } else {
                println!(
                    "🛑 Cancelled {} unfinished event(s) of campaign {name}",
                    cancelled.len()
                );
            }
        }
    }
    Ok(())
}

/// `cancel EVENT` through a t-minus service (an operator's token); a
/// campaign is cancelled where the store is.
fn remote_cancel(cx: &Context, client: &Client, args: &CancelArgs) -> Result<ExitCode, CliError> {
    if args.sign.is_some() || args.signer.is_some() {
        return Err(ClientError::Unsupported {
            what: "a signed cancel (--sign, --as)".into(),
        }
        .into());
    }
    let path = format!("/v1/events/{}/cancel", encode(&args.target));
    let body = serde_json::json!({ "reason": args.reason });
    post_event(cx, client, &path, &body, |label, event| {
        println!("🛑 Cancelled {label} [{}]", event.short_id())
    })
}

/// Prints an answer a service accepted (`submit` through a service):
/// the answer's lines, or for a cancel the cancel's line.
pub fn print_remote_answer(
    agent: &AgentId,
    response: Option<&Response>,
    shown: &Event,
) -> Result<()> {
    let updated = shown.to_event()?;
    let label = t_minus::display::label(shown.campaign.as_deref(), &updated);
    match response {
        Some(response) => answer_lines(&label, agent, response, &updated),
        None => println!("🛑 Cancelled {label} [{}]", updated.short_id()),
    }
    Ok(())
}

/// Prints a cancelled event.
pub fn print_cancelled(engine: &Engine, event: &TMinusEvent, as_json: bool) -> Result<()> {
    let mut views = EventViews::default();
    if as_json {
        json::print(&Event::read(engine, &mut views, event)?);
    } else {
        let label = views.label(engine, event)?;
        println!("🛑 Cancelled {label} [{}]", event.short_id());
    }
    Ok(())
}

impl TickArgs {
    /// `tick`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let mut s = cx.open()?;
        done(tick(&mut s.engine, &mut s.out, cx.json(), !self.no_notify))
    }
}

/// `tick`, then delivering what is due (unless `deliver` is false).
fn tick(engine: &mut Engine, out: &mut Renderer, as_json: bool, deliver: bool) -> Result<()> {
    let mut views = EventViews::default();
    let result = engine.tick(out.now)?;
    let outcomes = if deliver {
        super::notify::after_tick(engine)?
    } else {
        Vec::new()
    };
    if as_json {
        let delivered = outcomes
            .iter()
            .map(|o| DeliveryStatus::from(&o.delivery))
            .collect();
        json::print(&TickReport::new(&result, delivered));
        return Ok(());
    }
    if result.is_empty() {
        println!("Nothing changed.");
    }
    for entry in &result.escalations {
        let label = views.label_of(engine, entry.event)?;
        println!("{}", out.escalation(entry, &label));
    }
    for entry in &result.transitions {
        let label = views.label_of(engine, entry.event)?;
        println!("{}", out.transition(entry, &label));
    }
    for outcome in &outcomes {
        println!("{}", super::notify::delivery_line(&outcome.delivery));
    }
    Ok(())
}

impl LogArgs {
    /// `log EVENT`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        if let Some(client) = cx.remote()? {
            return remote_log(cx, &client, &self.event);
        }
        let mut s = cx.open()?;
        done(log(&mut s.engine, &mut s.out, &self.event, cx.json()))
    }
}

/// `log EVENT`.
fn log(engine: &mut Engine, out: &mut Renderer, event: &str, as_json: bool) -> Result<()> {
    let mut views = EventViews::default();
    let id = engine.resolve_event(event)?;
    if as_json {
        let links = engine.log_links(id)?;
        json::print(&links.iter().map(LogEntry::from).collect::<Vec<_>>());
        return Ok(());
    }
    let entries = engine.log(id)?;
    if let Some(e) = engine.get_event(id)? {
        let view = views.view(engine, &e)?;
        println!("{}", out.headline(&view));
    }
    for entry in &entries {
        println!("{}", out.log_line(entry));
    }
    Ok(())
}

/// `log EVENT` through a t-minus service.
fn remote_log(cx: &Context, client: &Client, event: &str) -> Result<ExitCode, CliError> {
    let reference = encode(event);
    let entries = client.get::<Vec<LogEntry>>(&format!("/v1/events/{reference}/log"))?;
    if cx.json() {
        json::print(&entries.json);
        return Ok(ExitCode::SUCCESS);
    }
    let out = cx.renderer()?;
    let shown = client.get::<Event>(&format!("/v1/events/{reference}"))?;
    let e = shown.value.to_event()?;
    let needs = Campaigns::default().needs(client, &shown.value)?;
    let view = EventView::new(&e, shown.value.campaign.clone(), needs);
    println!("{}", out.headline(&view));
    for entry in &entries.value {
        println!("{}", out.log_line(&entry.entry.to_entry()?));
    }
    Ok(ExitCode::SUCCESS)
}
