//! Trust commands: verify, answer-message, submit, attest.

use std::path::Path;
use std::process::ExitCode;

use t_minus::duration::parse_duration;
use t_minus::output::Verification;
use t_minus::trust::{Answer, ChainHash};
use t_minus::{AgentId, Engine, Response, Result, TMinusError, Target};

use super::args::{AnswerMessageArgs, AttestArgs, SubmitArgs, VerifyArgs};
use super::context::Context;
use super::error::CliError;
use super::events::{print_answer, print_cancelled};
use super::{done, json};

impl VerifyArgs {
    /// `verify [EVENT|CAMPAIGN] [--since HASH]`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let s = cx.open()?;
        let (target, since) = (self.target.as_deref(), self.since.as_deref());
        done(verify(&s.engine, target, since, cx.json()))
    }
}

impl AnswerMessageArgs {
    /// `answer-message EVENT AGENT ANSWER [DURATION] [--reason]`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let s = cx.open()?;
        let duration = self.duration.as_deref();
        let reason = self.reason.clone();
        done(answer_message(
            &s.engine,
            &self.event,
            &self.agent,
            &self.answer,
            duration,
            reason,
        ))
    }
}

impl SubmitArgs {
    /// `submit MESSAGE SIGNATURE`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let mut s = cx.open()?;
        done(submit(
            &mut s.engine,
            &self.message,
            &self.signature,
            cx.json(),
        ))
    }
}

impl AttestArgs {
    /// `attest CAMPAIGN [--out FILE]`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let s = cx.open()?;
        done(attest(&s.engine, &self.campaign, self.out.as_deref()))
    }
}

/// `verify [EVENT|CAMPAIGN] [--since HASH] [--json]`: recomputes the audit
/// chain, checks states, answers and signatures (of the target only, when
/// given); prints the counts and head, or fails at the first disagreement.
fn verify(engine: &Engine, target: Option<&str>, since: Option<&str>, as_json: bool) -> Result<()> {
    let since = since.map(str::parse::<ChainHash>).transpose()?;
    let scope = match target {
        None => None,
        Some(text) => Some(match engine.resolve_target(text)? {
            Target::Event(id) => vec![id],
            Target::Campaign(id) => engine
                .get_campaign(id)?
                .map(|c| c.events)
                .unwrap_or_default(),
        }),
    };
    let report = engine.verify_log_of(since, scope.as_deref())?;
    if as_json {
        json::print(&Verification::from(&report));
    } else {
        println!(
            "The audit log is intact: {}, {} checked, {} verified, head {}",
            count(report.entries, "entry", "entries"),
            count(report.events, "event", "events"),
            count(report.signatures, "signature", "signatures"),
            report.head
        );
    }
    Ok(())
}

/// `1 entry`, `2 entries`.
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `answer-message EVENT AGENT confirm|defer DUR|decline [--reason T]`:
/// prints the message to sign, exactly (no trailing text).
fn answer_message(
    engine: &Engine,
    event: &str,
    agent: &str,
    answer: &str,
    duration: Option<&str>,
    reason: Option<String>,
) -> Result<()> {
    let agent = AgentId::parse(agent)?;
    let bad = |why: String| TMinusError::InvalidAnswer { reason: why };
    if reason.is_some() && !matches!(answer, "decline" | "cancel") {
        return Err(bad("--reason goes with `decline` or `cancel` only".into()));
    }
    let answer = match (answer, duration) {
        ("confirm", None) => Answer::Confirm,
        ("defer", Some(text)) => {
            let by = parse_duration(text)?;
            if by <= chrono::Duration::zero() {
                return Err(TMinusError::NonPositiveDeferral {
                    value: t_minus::error::DeferralValue::Written(text.to_string()),
                });
            }
            Answer::Defer(by)
        }
        ("defer", None) => return Err(bad("`defer` needs a duration, e.g. `defer 30m`".into())),
        ("decline", None) => Answer::Decline { reason },
        ("cancel", None) => Answer::Cancel { reason },
        ("confirm" | "decline" | "cancel", Some(extra)) => {
            return Err(bad(format!(
                "`{answer}` takes no duration, but `{extra}` was given"
            )))
        }
        (other, _) => {
            return Err(bad(format!(
                "unknown answer `{other}`: use confirm, defer DURATION, decline or cancel"
            )))
        }
    };
    let id = engine.resolve_event(event)?;
    let message = engine.answer_message(id, &agent, answer)?;
    print!("{}", message.render());
    Ok(())
}

/// `submit MESSAGE_FILE SIG_FILE`: records an answer signed elsewhere.
fn submit(engine: &mut Engine, message: &Path, signature: &Path, as_json: bool) -> Result<()> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| t_minus::trust::TrustError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    };
    let message = read(message)?;
    let signature = read(signature)?;
    let signature =
        String::from_utf8(signature).map_err(|_| t_minus::trust::TrustError::InvalidSignature {
            reason: "the signature file is not text".into(),
        })?;
    let parsed = t_minus::trust::AnswerMessage::parse(&message)?;
    let updated = engine.respond_signed(&message, &signature)?;
    match Response::try_from(parsed.answer()) {
        Ok(response) => print_answer(engine, parsed.agent(), &response, &updated, as_json),
        Err(()) => print_cancelled(engine, &updated, as_json),
    }
}

/// `attest CAMPAIGN [--out FILE]`.
fn attest(engine: &Engine, campaign: &str, out: Option<&Path>) -> Result<()> {
    let id = engine.resolve_campaign(campaign)?;
    let statement = engine.attest(id)?;
    match out {
        None => json::print(&statement),
        Some(path) => {
            let mut text = serde_json::to_string_pretty(&statement).unwrap_or_default();
            text.push('\n');
            std::fs::write(path, text).map_err(|e| TMinusError::WriteFile {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?
        }
    }
    Ok(())
}
