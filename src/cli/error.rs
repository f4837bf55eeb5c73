//! Errors of the command line, rendered as miette reports on stderr.
//!
//! The library's help says what to do in library terms; where the command
//! line has a command or flag that does it, the report shows the command
//! line's hint instead ([`cli_hint`]).

use std::fmt;

use miette::{Diagnostic, LabeledSpan, Severity, SourceCode};
use t_minus::error::LinkRefusal;
use t_minus::event::short_id;
use t_minus::output::{ErrorBody, ErrorOutput};
use t_minus::plan::ManifestError;
use t_minus::TMinusError;

/// An error a command ends with.
#[derive(Debug)]
pub enum CliError {
    /// From the engine or the store.
    Engine(TMinusError),
    /// From manifests, plans or apply.
    Manifest(ManifestError),
    /// From the HTTP service.
    Serve(t_minus::serve::ServeError),
    /// From a request to a t-minus service (`--db http(s)://…`).
    Remote(Box<super::remote::ClientError>),
}

impl From<super::remote::ClientError> for CliError {
    fn from(e: super::remote::ClientError) -> Self {
        CliError::Remote(Box::new(e))
    }
}

impl From<TMinusError> for CliError {
    fn from(e: TMinusError) -> Self {
        CliError::Engine(e)
    }
}

impl From<t_minus::input::InputError> for CliError {
    fn from(e: t_minus::input::InputError) -> Self {
        CliError::Engine(e.into())
    }
}

impl From<ManifestError> for CliError {
    fn from(e: ManifestError) -> Self {
        match e {
            ManifestError::Store(e) => CliError::Engine(e),
            other => CliError::Manifest(other),
        }
    }
}

impl CliError {
    /// The error as `--json` prints it: code, message, help, and for
    /// invalid manifests every problem.
    /// The help is the command line's hint where it has one, as on stderr.
    pub fn output(&self) -> ErrorOutput {
        let (mut body, hint) = match self {
            CliError::Manifest(ManifestError::Invalid(diagnostics)) => {
                (ErrorBody::invalid_manifests(diagnostics), None)
            }
            CliError::Manifest(e) => (ErrorBody::new(e), cli_hint_of_code(&code_of(e))),
            CliError::Engine(e) => (ErrorBody::new(e), cli_hint(e)),
            CliError::Serve(e) => (ErrorBody::new(e), None),
            CliError::Remote(e) => (ErrorBody::new(e.as_ref()), None),
        };
        if hint.is_some() {
            body.help = hint;
        }
        body.into()
    }

    /// Prints the error to stderr: every manifest problem as its own report
    /// (with its source snippet), then a count; anything else as one report.
    pub fn print(self) {
        match self {
            CliError::Manifest(ManifestError::Invalid(diagnostics)) => {
                let count = diagnostics.len();
                for d in diagnostics.iter() {
                    eprintln!("{:?}", miette::Report::new(d.clone()));
                }
                let noun = if count == 1 { "problem" } else { "problems" };
                eprintln!("error: {count} {noun} found; nothing was changed");
            }
            CliError::Manifest(e) => {
                let hint = cli_hint_of_code(&code_of(&e));
                eprintln!("{:?}", miette::Report::new(Hinted { inner: e, hint }))
            }
            CliError::Engine(e) => {
                let hint = cli_hint(&e);
                eprintln!("{:?}", miette::Report::new(Hinted { inner: e, hint }))
            }
            CliError::Serve(e) => eprintln!("{:?}", miette::Report::new(e)),
            CliError::Remote(e) => eprintln!("{:?}", miette::Report::new(*e)),
        }
    }
}

/// The diagnostic code of `e`, or an empty string.
fn code_of(e: &dyn Diagnostic) -> String {
    e.code().map(|c| c.to_string()).unwrap_or_default()
}

/// The command line's hint for `e`, naming the command or flag that does
/// what the library's help says; `None` keeps the library's help.
pub fn cli_hint(e: &TMinusError) -> Option<String> {
    let hint = match e {
        TMinusError::EventFinal { id, .. } => format!(
            "schedule a new event instead; `t-minus log {}` shows its history",
            short_id(*id)
        ),
        TMinusError::InvalidLink(refusal) => match refusal {
            LinkRefusal::OtherCampaign { .. } => "an event belongs to at most one campaign; schedule a new one with `t-minus campaign add`".into(),
            LinkRefusal::NotInCampaign { campaign, .. } => {
                format!("add it first with `t-minus campaign add {campaign}`")
            }
            LinkRefusal::EmptyNeed { .. } => {
                "separate the events it needs with single commas: --needs build,test".into()
            }
            LinkRefusal::UnknownNeed { campaign, .. } => format!(
                "name events of the campaign (`t-minus campaign show {campaign}` lists them), as `campaign/name`, or by id; add a need before the events that need it"
            ),
            _ => return None,
        },
        other => return cli_hint_of_code(&code_of(other)),
    };
    Some(hint)
}

/// The command line's hint for the errors whose hint depends on their code
/// alone.
fn cli_hint_of_code(code: &str) -> Option<String> {
    let hint = match code {
        "t_minus::input::payload" => "pass a JSON value, e.g. --payload '{\"version\": \"2.0.0\"}'",
        "t_minus::input::answer" => "answer `confirm`, `defer DURATION` (e.g. `defer 30m`) or `decline` (optionally with `--reason TEXT`)",
        "t_minus::not_found::event" => "list events with `t-minus status --all`",
        "t_minus::not_found::campaign" => "list campaigns with `t-minus campaign list`",
        "t_minus::not_found::target" => "list events with `t-minus status --all` and campaigns with `t-minus campaign list`",
        "t_minus::refused::deadline_passed" => "responses must arrive before the fire time; run `t-minus tick` to record the outcome",
        "t_minus::refused::duplicate_event_name" => "choose another name with --name",
        "t_minus::store::not_a_store" => "point --db (or T_MINUS_DB) at a t-minus store, or at a path that does not exist yet to create one",
        "t_minus::store::open" => "point --db (or T_MINUS_DB) at an SQLite file in a writable directory, or at a PostgreSQL URL such as postgres://user@host:5432/db",
        "t_minus::store::auth" => "check the user and password: postgres://USER:PASSWORD@HOST/DB in --db or T_MINUS_DB, or PGUSER and PGPASSWORD",
        "t_minus::store::missing" => "check the path given with --db or T_MINUS_DB; `verify` and `attest` read an existing store and never create one",
        "t_minus::trust::message" => "sign the exact text printed by `t-minus answer-message`, unchanged (same lines, same order, one trailing newline)",
        "t_minus::trust::unsigned" => "sign the answer: add `--sign KEYFILE` (or `--sign agent` to sign through ssh-agent, or set T_MINUS_SIGNING_KEY), or sign the text of `t-minus answer-message` elsewhere and send it with `t-minus submit`",
        "t_minus::trust::no_signers" => "answer without `--sign`, or declare `signers:` for the event's campaign (or `schedule --signers FILE`) so that its answers are checked",
        "t_minus::trust::stale" => "look at the event again (`t-minus status EVENT`), and if you still agree, sign a new answer: its message will name the current digest",
        "t_minus::trust::unsigned_cancel" => "cancel with `t-minus cancel EVENT --sign KEYFILE|agent --as AGENT` (AGENT: a signer of the event), or sign the text of `t-minus answer-message EVENT AGENT cancel` and send it with `t-minus submit`; a campaign with signers is cancelled event by event",
        "t_minus::trust::unsigned_delete" => "nothing was applied; cancel each unfinished event with `t-minus cancel CAMPAIGN/EVENT --sign KEYFILE|agent --as AGENT` (AGENT: a signer of the event; run `t-minus tick` first to record events that already missed), then apply again",
        "t_minus::trust::cancel_target" => "cancel the campaign's unfinished events one by one, each with `t-minus cancel CAMPAIGN/EVENT --sign KEYFILE|agent --as AGENT`",
        "t_minus::trust::order" => "an earlier answer cannot come back after a later one was accepted; sign a new message now (`t-minus answer-message` makes one)",
        "t_minus::trust::message_field" | "t_minus::trust::message_repeated" | "t_minus::trust::message_order" | "t_minus::trust::message_version" => "sign the exact text printed by `t-minus answer-message`, unchanged (same lines, same order, one trailing newline)",
        "t_minus::trust::nonce" => "every signed answer is accepted once; to answer again, sign a new message (`t-minus answer-message` makes one with a fresh nonce)",
        "t_minus::refused::no_delegation" => "the attendee makes one with `t-minus delegate FROM TO` (`--campaign C` for one campaign, `--until TIME` to end it); `t-minus delegations --all` lists them",
        "t_minus::refused::unsigned_delegation" => "the attendee signs one with `t-minus delegate FROM TO --sign KEYFILE|agent`, with a key the event's signers allow for it",
        "t_minus::input::delegation_until" => "give --until a time in the future (RFC 3339, or +DURATION from now), or leave it out",
        "t_minus::not_found::delegation" => "`t-minus delegations --all` lists every delegation with its id",
        "t_minus::plan::stale" => "nothing was applied; run `t-minus plan` again and review the new plan",
        "t_minus::plan::out" => "nothing was written; save the plan to another file, e.g. `--out plan.json`",
        "t_minus::plan::file" => "save a plan with `t-minus plan PATH... --out FILE`",
        "t_minus::plan::write" => "check that the directory exists and is writable, or choose another --out path",
        _ => return None,
    };
    Some(hint.to_string())
}

/// A library error shown with the command line's hint as its help (the
/// library's help when there is none); everything else is the error's own.
struct Hinted<E> {
    inner: E,
    hint: Option<String>,
}

impl<E: fmt::Display> fmt::Display for Hinted<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl<E: fmt::Debug> fmt::Debug for Hinted<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl<E: std::error::Error> std::error::Error for Hinted<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

impl<E: Diagnostic> Diagnostic for Hinted<E> {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.inner.code()
    }
    fn severity(&self) -> Option<Severity> {
        self.inner.severity()
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match &self.hint {
            Some(hint) => Some(Box::new(hint)),
            None => self.inner.help(),
        }
    }
    fn url<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.inner.url()
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.inner.source_code()
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.inner.labels()
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        self.inner.related()
    }
    fn diagnostic_source(&self) -> Option<&dyn Diagnostic> {
        self.inner.diagnostic_source()
    }
}
