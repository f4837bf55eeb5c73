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
use super::events::{print_answer, print_cancelled, print_remote_answer};
use super::remote::{Client, ClientError};
use super::{done, json};

impl VerifyArgs {
    /// `verify [EVENT|CAMPAIGN] [--since HASH]`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        if let Some(path) = &self.attestation {
            return done(verify_attestation(path, cx.json()));
        }
        let (target, since) = (self.target.as_deref(), self.since.as_deref());
        if let Some(client) = cx.remote()? {
            return remote_verify(cx, &client, target, since);
        }
        let s = cx.open()?;
        verify(&s.engine, target, since, cx.json())
    }
}

impl AnswerMessageArgs {
    /// `answer-message EVENT AGENT ANSWER [DURATION] [--reason]`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let duration = self.duration.as_deref();
        let reason = self.reason.clone();
        let agent = AgentId::parse(&self.agent)?;
        let answer = parse_answer(&self.answer, duration, reason)?;
        if let Some(client) = cx.remote()? {
            let path = format!("/v1/events/{}", super::remote::encode(&self.event));
            let shown = client.get::<t_minus::output::Event>(&path)?;
            let now = super::context::pinned_now()?.unwrap_or_else(chrono::Utc::now);
            let message = super::remote::answer_message(&shown.value, &agent, answer, now)?;
            print!("{}", message.render());
            return Ok(ExitCode::SUCCESS);
        }
        let s = cx.open()?;
        done(answer_message(&s.engine, &self.event, &agent, answer))
    }
}

impl SubmitArgs {
    /// `submit MESSAGE SIGNATURE`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        if let Some(client) = cx.remote()? {
            let (message, signature) = read_signed(&self.message, &self.signature)?;
            let parsed =
                t_minus::trust::AnswerMessage::parse(&message).map_err(TMinusError::from)?;
            let reply = super::remote::submit(&client, &message, &signature)?;
            if cx.json() {
                json::print(&reply.json);
                return Ok(ExitCode::SUCCESS);
            }
            let response = Response::try_from(parsed.answer()).ok();
            print_remote_answer(parsed.agent(), response.as_ref(), &reply.value)?;
            return Ok(ExitCode::SUCCESS);
        }
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
        done(attest(
            &s.engine,
            &self.campaign,
            self.out.as_deref(),
            self.sign.as_deref(),
        ))
    }
}

/// `verify [EVENT|CAMPAIGN] [--since HASH] [--json]`: recomputes the audit
/// chain, replays it, compares every stored field and checks signatures (of
/// the target only, when given); prints the counts and head, or every
/// field that disagrees (exit 1), or fails at the first broken entry.
fn verify(
    engine: &Engine,
    target: Option<&str>,
    since: Option<&str>,
    as_json: bool,
) -> Result<ExitCode, CliError> {
    let since = since
        .map(str::parse::<ChainHash>)
        .transpose()
        .map_err(TMinusError::from)?;
    let scope = match target {
        None => None,
        Some(text) => Some(match engine.resolve_target(text)? {
            Target::Event(id) => vec![id],
            Target::Campaign(id) => {
                let mut ids = vec![id];
                ids.extend(
                    engine
                        .get_campaign(id)?
                        .map(|c| c.events)
                        .unwrap_or_default(),
                );
                ids
            }
        }),
    };
    let report = engine.verify_report(since, scope.as_deref())?;
    print_verification(&Verification::from(&report), as_json)
}

/// Prints a verification: as JSON (exit 1 unless intact), the line of an
/// intact log, or each field that disagrees and the error, on stderr.
fn print_verification(v: &Verification, as_json: bool) -> Result<ExitCode, CliError> {
    if as_json {
        json::print(v);
        return Ok(if v.intact {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(super::EXIT_ERROR)
        });
    }
    if v.intact {
        print_intact(v);
        return Ok(ExitCode::SUCCESS);
    }
    // A failing command prints nothing on stdout: the fields go to stderr,
    // before the error.
    for m in &v.mismatches {
        eprintln!(
            "{} {}: {} is stored as {} but the log says {}",
            m.subject, m.id, m.field, m.stored, m.logged
        );
    }
    let first = &v.mismatches[0];
    Err(
        TMinusError::from(t_minus::trust::TrustError::StateMismatch {
            event: first.id.clone(),
            reason: format!(
                "{} disagree with the log, listed above (the chain itself is intact, head {})",
                count(v.mismatches.len() as u64, "stored field", "stored fields"),
                v.head
            ),
        })
        .into(),
    )
}

/// The line of an intact log.
fn print_intact(v: &Verification) {
    println!(
        "The audit log is intact: {}, {} checked, {} verified, head {}",
        count(v.entries, "entry", "entries"),
        count(v.events, "event", "events"),
        count(v.signatures, "signature", "signatures"),
        v.head
    );
}

/// `verify [--since HASH]` through a t-minus service: the whole log, checked
/// by the service.
fn remote_verify(
    cx: &Context,
    client: &Client,
    target: Option<&str>,
    since: Option<&str>,
) -> Result<ExitCode, CliError> {
    if target.is_some() {
        return Err(ClientError::Unsupported {
            what: "`verify EVENT|CAMPAIGN` (the service verifies the whole log)".into(),
        }
        .into());
    }
    let since = since
        .map(str::parse::<ChainHash>)
        .transpose()
        .map_err(TMinusError::from)?;
    let query = since.map(|h| format!("?since={h}")).unwrap_or_default();
    let reply = client.get::<Verification>(&format!("/v1/verify{query}"))?;
    if cx.json() {
        json::print(&reply.json);
        return Ok(if reply.value.intact {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(super::EXIT_ERROR)
        });
    }
    print_verification(&reply.value, false)
}

/// `1 entry`, `2 entries`.
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `answer-message EVENT AGENT ANSWER`: prints the message to sign,
/// exactly (no trailing text).
fn answer_message(engine: &Engine, event: &str, agent: &AgentId, answer: Answer) -> Result<()> {
    let id = engine.resolve_event(event)?;
    let message = engine.answer_message(id, agent, answer)?;
    print!("{}", message.render());
    Ok(())
}

/// The answer of `answer-message`: `confirm`, `defer DURATION`, `decline
/// [--reason]` or `cancel [--reason]`.
fn parse_answer(answer: &str, duration: Option<&str>, reason: Option<String>) -> Result<Answer> {
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
    Ok(answer)
}

/// `submit MESSAGE_FILE SIG_FILE`: records an answer signed elsewhere.
fn submit(engine: &mut Engine, message: &Path, signature: &Path, as_json: bool) -> Result<()> {
    let (message, signature) = read_signed(message, signature)?;
    let parsed = t_minus::trust::AnswerMessage::parse(&message)?;
    let updated = engine.respond_signed(&message, &signature)?;
    match Response::try_from(parsed.answer()) {
        Ok(response) => print_answer(engine, parsed.agent(), &response, &updated, as_json),
        Err(()) => print_cancelled(engine, &updated, as_json),
    }
}

/// The answer message and the signature of `submit`, read from their files.
fn read_signed(message: &Path, signature: &Path) -> Result<(Vec<u8>, String)> {
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
    Ok((message, signature))
}

/// `attest CAMPAIGN [--out FILE [--sign KEYFILE]]`. The key is read before
/// anything is written.
fn attest(engine: &Engine, campaign: &str, out: Option<&Path>, sign: Option<&Path>) -> Result<()> {
    let key = sign
        .map(t_minus::trust::sign::read_private_key)
        .transpose()?;
    let id = engine.resolve_campaign(campaign)?;
    let statement = engine.attest(id)?;
    let Some(path) = out else {
        json::print(&statement);
        return Ok(());
    };
    let mut text = serde_json::to_string_pretty(&statement).unwrap_or_default();
    text.push('\n');
    let signature = key
        .map(|key| {
            t_minus::trust::sign::sign_in_namespace(
                &key,
                t_minus::trust::attest::STATEMENT_NAMESPACE,
                text.as_bytes(),
            )
        })
        .transpose()?;
    let write = |path: &Path, bytes: &[u8]| {
        std::fs::write(path, bytes).map_err(|e| TMinusError::WriteFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    };
    write(path, text.as_bytes())?;
    if let Some(signature) = signature {
        let mut sig_path = path.as_os_str().to_owned();
        sig_path.push(".sig");
        write(Path::new(&sig_path), signature.to_armored().as_bytes())?;
    }
    Ok(())
}

/// `verify --attestation FILE [--json]`: checks an attestation alone; opens
/// no store.
fn verify_attestation(path: &Path, as_json: bool) -> Result<()> {
    let text = std::fs::read(path).map_err(|e| t_minus::trust::TrustError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let check = t_minus::trust::attest::verify_statement(&text)?;
    if as_json {
        json::print(&check);
    } else {
        println!(
            "The attestation of campaign {} holds: {}, {}, {} verified with the keys in force, subject {}, log head {}",
            check.campaign,
            count(check.events as u64, "event", "events"),
            count(check.answers as u64, "answer", "answers"),
            count(check.signatures as u64, "signature", "signatures"),
            check.subject,
            check.head
        );
    }
    Ok(())
}
