//! Notification rules: when to notify (the triggers) and how (a command to
//! run or a webhook to call), as stored with each event.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration as StdDuration;

use serde::{Deserialize, Serialize};

use crate::audit::AuditAction;
use crate::error::{Result, TMinusError};

/// The most rules one event may carry (campaign and event level together).
pub const MAX_RULES: usize = 64;
/// The most `before` offsets one rule may list.
pub const MAX_BEFORE: usize = 16;
/// The most headers one webhook may send.
pub const MAX_HEADERS: usize = 32;
/// The most arguments one exec hook may have.
pub const MAX_ARGS: usize = 256;
/// The most attempts a rule may ask for.
pub const MAX_ATTEMPTS: u32 = 100;
/// The longest timeout a rule may ask for.
pub const MAX_TIMEOUT: StdDuration = StdDuration::from_secs(3600);
/// Default number of attempts.
pub const DEFAULT_ATTEMPTS: u32 = 8;
/// Default timeout of an exec hook.
pub const DEFAULT_EXEC_TIMEOUT: StdDuration = StdDuration::from_secs(30);
/// Default timeout of a webhook.
pub const DEFAULT_WEBHOOK_TIMEOUT: StdDuration = StdDuration::from_secs(10);
/// How long a Defer pressed in a chat (Slack's button) defers, unless the
/// event's `format: slack` rule says otherwise (`defer:`): 15 minutes.
pub const DEFAULT_CHAT_DEFER: StdDuration = StdDuration::from_secs(15 * 60);

/// What a rule is triggered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// The event started counting down (all needs fired).
    Opened,
    /// The event fired.
    Fired,
    /// The event was missed.
    Missed,
    /// The event was cancelled.
    Cancelled,
    /// An attendee confirmed.
    Confirmed,
    /// An attendee deferred.
    Deferred,
    /// An attendee declined.
    Declined,
    /// A `before` offset ahead of the fire time passed while quorum is not met.
    Reminder,
    /// The event was fired by a break-glass (rules on `fired` go off too).
    Breakglass,
    /// An escalation step applied: it added attendees (the payload's
    /// `detail.added` names them).
    Escalated,
}

impl Trigger {
    /// Every trigger, in documentation order.
    pub const ALL: [Trigger; 10] = [
        Trigger::Opened,
        Trigger::Fired,
        Trigger::Missed,
        Trigger::Cancelled,
        Trigger::Confirmed,
        Trigger::Deferred,
        Trigger::Declined,
        Trigger::Reminder,
        Trigger::Breakglass,
        Trigger::Escalated,
    ];

    /// The lowercase word used in manifests, payloads and the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Opened => "opened",
            Trigger::Fired => "fired",
            Trigger::Missed => "missed",
            Trigger::Cancelled => "cancelled",
            Trigger::Confirmed => "confirmed",
            Trigger::Deferred => "deferred",
            Trigger::Declined => "declined",
            Trigger::Reminder => "reminder",
            Trigger::Breakglass => "breakglass",
            Trigger::Escalated => "escalated",
        }
    }

    /// The trigger an audit entry of `action` sets off, if any.
    pub fn of_action(action: AuditAction) -> Option<Trigger> {
        Some(match action {
            AuditAction::Opened => Trigger::Opened,
            AuditAction::Fired => Trigger::Fired,
            AuditAction::Missed => Trigger::Missed,
            AuditAction::Cancelled => Trigger::Cancelled,
            AuditAction::Confirmed => Trigger::Confirmed,
            AuditAction::Deferred => Trigger::Deferred,
            AuditAction::Declined => Trigger::Declined,
            AuditAction::Escalated => Trigger::Escalated,
            _ => return None,
        })
    }

    /// The accepted words, for error messages.
    pub fn expected() -> String {
        let words: Vec<&str> = Trigger::ALL.iter().map(|t| t.as_str()).collect();
        words.join(", ")
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Trigger {
    type Err = TMinusError;
    fn from_str(s: &str) -> Result<Self> {
        Trigger::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| TMinusError::InvalidNotify {
                reason: format!("unknown trigger `{s}`"),
                help: format!("use one of: {}", Trigger::expected()),
            })
    }
}

/// The body a webhook sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// The delivery's JSON payload (`docs/notifications.md`).
    #[default]
    Json,
    /// A Slack message: `text` and Block Kit `blocks` (the buttons and the
    /// event's link; see [`crate::notification::payload::slack_message`]).
    Slack,
}

impl FromStr for WebhookFormat {
    type Err = TMinusError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "json" => Ok(WebhookFormat::Json),
            "slack" => Ok(WebhookFormat::Slack),
            other => Err(TMinusError::InvalidNotify {
                reason: format!("unknown webhook format `{other}`"),
                help: "use `json` (the default) or `slack`".into(),
            }),
        }
    }
}

impl fmt::Display for WebhookFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WebhookFormat::Json => "json",
            WebhookFormat::Slack => "slack",
        })
    }
}

/// Where a notification goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hook {
    /// Run a command: the program and its arguments (no shell).
    Exec {
        /// Program and arguments.
        argv: Vec<String>,
    },
    /// POST to a URL.
    Webhook {
        /// An `http://` or `https://` URL.
        url: String,
        /// The body's shape.
        #[serde(default)]
        format: WebhookFormat,
        /// Extra headers; `${VAR}` in a value is read from the environment
        /// at delivery.
        #[serde(default)]
        headers: BTreeMap<String, String>,
    },
}

impl Hook {
    /// A one-line description: the command or the URL.
    pub fn describe(&self) -> String {
        match self {
            Hook::Exec { argv } => format!("exec {}", argv.join(" ")),
            Hook::Webhook { url, format, .. } => match format {
                WebhookFormat::Json => format!("webhook {url}"),
                WebhookFormat::Slack => format!("webhook {url} (slack)"),
            },
        }
    }
}

/// One notification rule: which triggers, which hook, and how hard to try.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyRule {
    /// What sets it off.
    pub on: Vec<Trigger>,
    /// Where it goes.
    pub hook: Hook,
    /// For `reminder`: how long before the fire time, in milliseconds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before_ms: Vec<u64>,
    /// How long one attempt may take, in milliseconds.
    pub timeout_ms: u64,
    /// How many attempts before giving up.
    pub attempts: u32,
    /// For a `format: slack` webhook: how long its Defer button defers, in
    /// milliseconds (`None`: [`DEFAULT_CHAT_DEFER`]). Not part of
    /// [`NotifyRule::digest_json`]: it changes nothing the rule does when
    /// the event fires or is missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_defer_ms: Option<u64>,
}

impl NotifyRule {
    /// A rule with the defaults: timeout 30 s for exec and 10 s for
    /// webhooks, 8 attempts, no reminders.
    pub fn new(on: Vec<Trigger>, hook: Hook) -> Self {
        let timeout = match hook {
            Hook::Exec { .. } => DEFAULT_EXEC_TIMEOUT,
            Hook::Webhook { .. } => DEFAULT_WEBHOOK_TIMEOUT,
        };
        NotifyRule {
            on,
            hook,
            before_ms: Vec::new(),
            timeout_ms: timeout.as_millis() as u64,
            attempts: DEFAULT_ATTEMPTS,
            chat_defer_ms: None,
        }
    }

    /// How long one attempt may take.
    pub fn timeout(&self) -> StdDuration {
        StdDuration::from_millis(self.timeout_ms)
    }

    /// How long a Defer pressed in the chat this rule posts to defers.
    pub fn chat_defer(&self) -> StdDuration {
        self.chat_defer_ms
            .map_or(DEFAULT_CHAT_DEFER, StdDuration::from_millis)
    }

    /// Whether `trigger` sets this rule off.
    pub fn wants(&self, trigger: Trigger) -> bool {
        self.on.contains(&trigger)
    }

    /// Whether the rule is bound to approvals: it acts when the event fires
    /// or is missed, so it is part of the event's content digest.
    /// Reminders and rules on answers, openings and cancels are
    /// informational and not bound.
    pub fn is_bound(&self) -> bool {
        self.wants(Trigger::Fired) || self.wants(Trigger::Missed)
    }

    /// The JSON object a bound rule is digested as (in canonical form, see
    /// [`crate::trust::digest`]): every part of the rule, spelled out here
    /// rather than derived from its stored form, so that the digest changes
    /// only with this documented format.
    ///
    /// ```text
    /// {"attempts": N, "before_ms": [N, …], "on": ["fired", …], "timeout_ms": N,
    ///  "exec": ["PROGRAM", "ARG", …]}                                   an exec hook
    ///  "webhook": {"format": "json"|"slack", "headers": {…}, "url": "…"}  or a webhook
    /// ```
    pub fn digest_json(&self) -> serde_json::Value {
        let on: Vec<&str> = self.on.iter().map(|t| t.as_str()).collect();
        let mut value = serde_json::json!({
            "on": on,
            "before_ms": self.before_ms,
            "timeout_ms": self.timeout_ms,
            "attempts": self.attempts,
        });
        match &self.hook {
            Hook::Exec { argv } => value["exec"] = serde_json::json!(argv),
            Hook::Webhook {
                url,
                format,
                headers,
            } => {
                value["webhook"] = serde_json::json!({
                    "url": url,
                    "format": format.to_string(),
                    "headers": headers,
                });
            }
        }
        value
    }

    /// Checks the rule; the error says what is wrong and how to fix it.
    pub fn check(&self) -> Result<()> {
        let bad = |reason: String, help: &str| {
            Err(TMinusError::InvalidNotify {
                reason,
                help: help.into(),
            })
        };
        if self.on.is_empty() {
            return bad(
                "`on` lists no trigger".into(),
                &format!("list one or more of: {}", Trigger::expected()),
            );
        }
        let reminds = self.wants(Trigger::Reminder);
        if reminds && self.before_ms.is_empty() {
            return bad(
                "`reminder` needs `before`".into(),
                "say how long before the fire time, e.g. `before: 5m` or `before: [1h, 5m]`",
            );
        }
        if !reminds && !self.before_ms.is_empty() {
            return bad(
                "`before` is only for `reminder`".into(),
                "add `reminder` to `on`, or remove `before`",
            );
        }
        if self.before_ms.len() > MAX_BEFORE {
            return bad(
                format!(
                    "{} `before` offsets (at most {MAX_BEFORE})",
                    self.before_ms.len()
                ),
                "list fewer reminder times",
            );
        }
        if self.before_ms.contains(&0) {
            return bad(
                "`before` must be longer than zero".into(),
                "use a positive duration such as `5m`",
            );
        }
        if self.timeout_ms == 0 || self.timeout() > MAX_TIMEOUT {
            return bad(
                "`timeout` must be between 1 ms and 1 h".into(),
                "use a duration such as `30s`",
            );
        }
        if self.attempts == 0 || self.attempts > MAX_ATTEMPTS {
            return bad(
                format!("`retry` must be between 1 and {MAX_ATTEMPTS} attempts"),
                "the default is 8 attempts",
            );
        }
        let slack = matches!(
            self.hook,
            Hook::Webhook {
                format: WebhookFormat::Slack,
                ..
            }
        );
        if self.chat_defer_ms == Some(0) || (self.chat_defer_ms.is_some() && !slack) {
            return bad(
                "`defer` is a positive duration, for `format: slack` rules only".into(),
                "write e.g. `defer: 15m` on a `format: slack` webhook, or remove it",
            );
        }
        match &self.hook {
            Hook::Exec { argv } => check_argv(argv),
            Hook::Webhook { url, headers, .. } => {
                check_url(url)?;
                check_headers(headers)
            }
        }
    }
}

/// Checks an exec hook's argument list.
pub fn check_argv(argv: &[String]) -> Result<()> {
    let bad = |reason: String, help: &str| {
        Err(TMinusError::InvalidNotify {
            reason,
            help: help.into(),
        })
    };
    match argv.first() {
        None => bad(
            "`exec` names no program".into(),
            "write the program and its arguments, e.g. `exec: [./notify.sh, --channel, ops]`",
        ),
        Some(p) if p.trim().is_empty() => bad(
            "`exec` names an empty program".into(),
            "write the program's path as the first element",
        ),
        Some(_) if argv.len() > MAX_ARGS => bad(
            format!("`exec` has {} arguments (at most {MAX_ARGS})", argv.len()),
            "pass fewer arguments",
        ),
        // A relative path would be found in whatever directory the
        // delivering process runs in: the writer resolves it first.
        Some(p) if p.contains('/') && !std::path::Path::new(p).is_absolute() => bad(
            format!("`exec` program {p:?} is a relative path"),
            "give an absolute path or a bare name looked up on PATH; `schedule` and manifests resolve relative paths when they write the rule",
        ),
        Some(_) => match argv.iter().find(|a| has_variable(a) || a.contains('\0')) {
            Some(a) => bad(
                format!("`exec` argument {a:?} holds `${{…}}` or a NUL byte"),
                "secrets never live in manifests: the hook reads them from its environment itself",
            ),
            None => Ok(()),
        },
    }
}

/// Checks a webhook URL: `http(s)://host…`, no `${VAR}`, no whitespace.
pub fn check_url(url: &str) -> Result<()> {
    let bad = |reason: String, help: &str| {
        Err(TMinusError::InvalidNotify {
            reason,
            help: help.into(),
        })
    };
    if has_variable(url) {
        return bad(
            format!("the webhook URL {url:?} holds `${{…}}`"),
            "secrets never live in URLs: pass them in a header, e.g. `headers: { Authorization: \"Bearer ${TOKEN}\" }`",
        );
    }
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    let Some(rest) = rest else {
        return bad(
            format!("the webhook URL {url:?} is not http(s)"),
            "write an `https://…` (or `http://…`) URL",
        );
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad(
            format!("the webhook URL {url:?} has no host or holds whitespace"),
            "write a full URL such as `https://hooks.example.com/t-minus`",
        );
    }
    if url.len() > 2048 {
        return bad(
            "the webhook URL is longer than 2048 bytes".into(),
            "use a shorter URL",
        );
    }
    Ok(())
}

/// Checks webhook headers: valid names, no line breaks, at most
/// [`MAX_HEADERS`]; `${VAR}` allowed in values.
pub fn check_headers(headers: &BTreeMap<String, String>) -> Result<()> {
    let bad = |reason: String| {
        Err(TMinusError::InvalidNotify {
            reason,
            help: "header names are letters, digits and `-`; values are one line".into(),
        })
    };
    if headers.len() > MAX_HEADERS {
        return bad(format!("{} headers (at most {MAX_HEADERS})", headers.len()));
    }
    for (name, value) in headers {
        let name_ok = !name.is_empty()
            && name.len() <= 128
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return bad(format!("invalid header name {name:?}"));
        }
        if value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') || value.len() > 8192 {
            return bad(format!(
                "the value of header {name:?} is not one short line"
            ));
        }
        for var in variables(value) {
            let ok = !var.is_empty() && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !ok {
                return bad(format!(
                    "header {name:?} refers to `${{{var}}}`, which is not a variable name"
                ));
            }
        }
    }
    Ok(())
}

/// Whether `text` holds a `${…}` reference.
pub fn has_variable(text: &str) -> bool {
    text.contains("${")
}

/// The names of the `${VAR}` references in `text`.
fn variables(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                out.push(&after[..end]);
                rest = &after[end + 1..];
            }
            None => {
                out.push(after);
                break;
            }
        }
    }
    out
}

/// Why a `${VAR}` reference could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// The variable is not listed in the allowed variables
    /// (`T_MINUS_HOOK_ENV`): a mistake or an attempt to read a secret.
    NotAllowed(String),
    /// The variable is allowed but not set in the delivering process.
    NotSet(String),
    /// A `${` without its `}`.
    Unclosed,
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpandError::NotAllowed(name) => write!(
                f,
                "a header refers to ${{{name}}}, which the delivering process does not allow; \
                 list it in T_MINUS_HOOK_ENV (e.g. T_MINUS_HOOK_ENV={name})"
            ),
            ExpandError::NotSet(name) => write!(f, "environment variable {name} is not set"),
            ExpandError::Unclosed => f.write_str("an unclosed `${` in a header"),
        }
    }
}

/// Replaces every `${VAR}` in `text` with the variable's value from the
/// environment, for variables listed in `allowed` only (the delivering
/// process's `T_MINUS_HOOK_ENV`).
pub fn expand(text: &str, allowed: &[String]) -> std::result::Result<String, ExpandError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(ExpandError::Unclosed);
        };
        let name = &after[..end];
        if !allowed.iter().any(|a| a == name) {
            return Err(ExpandError::NotAllowed(name.to_string()));
        }
        match std::env::var(name) {
            Ok(value) => out.push_str(&value),
            Err(_) => return Err(ExpandError::NotSet(name.to_string())),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The digest of the rules of `rules` bound to approvals
/// ([`NotifyRule::is_bound`]), `None` when there are none: what
/// [`crate::event::TMinusEvent::rules_digest`] holds (the format is in
/// [`crate::trust::digest`]).
pub fn bound_rules_digest(rules: &[NotifyRule]) -> Option<[u8; 32]> {
    let bound: Vec<serde_json::Value> = rules
        .iter()
        .filter(|r| r.is_bound())
        .map(NotifyRule::digest_json)
        .collect();
    crate::trust::digest::rules_digest(&bound)
}

/// Checks a whole list of rules, at most [`MAX_RULES`].
pub fn check_rules(rules: &[NotifyRule]) -> Result<()> {
    if rules.len() > MAX_RULES {
        return Err(TMinusError::InvalidNotify {
            reason: format!("{} notification rules (at most {MAX_RULES})", rules.len()),
            help: "list fewer rules; one rule may have several triggers in `on`".into(),
        });
    }
    rules.iter().try_for_each(NotifyRule::check)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(url: &str) -> NotifyRule {
        NotifyRule::new(
            vec![Trigger::Fired],
            Hook::Webhook {
                url: url.into(),
                format: WebhookFormat::Json,
                headers: BTreeMap::new(),
            },
        )
    }

    #[test]
    fn urls_must_be_http_without_variables() {
        assert!(webhook("https://hooks.example.com/x").check().is_ok());
        assert!(webhook("http://127.0.0.1:8080").check().is_ok());
        for bad in [
            "ftp://example.com",
            "https://",
            "https://example.com/${TOKEN}",
            "https://exa mple.com",
            "example.com",
        ] {
            assert!(webhook(bad).check().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn reminders_need_before() {
        let mut rule = webhook("https://example.com");
        rule.on = vec![Trigger::Reminder];
        assert!(rule.check().is_err());
        rule.before_ms = vec![300_000];
        assert!(rule.check().is_ok());
        rule.on = vec![Trigger::Fired];
        assert!(rule.check().is_err());
    }

    #[test]
    fn header_variables_expand_from_the_environment() {
        std::env::set_var("T_MINUS_SPEC_TEST_TOKEN", "s3cret");
        let allowed = vec![
            "T_MINUS_SPEC_TEST_TOKEN".to_string(),
            "T_MINUS_SPEC_TEST_UNSET_VARIABLE".to_string(),
        ];
        assert_eq!(
            expand("Bearer ${T_MINUS_SPEC_TEST_TOKEN}!", &allowed).unwrap(),
            "Bearer s3cret!"
        );
        assert!(expand("${T_MINUS_SPEC_TEST_UNSET_VARIABLE}", &allowed)
            .unwrap_err()
            .to_string()
            .contains("T_MINUS_SPEC_TEST_UNSET_VARIABLE"));
        // Set, but not allowed: refused, naming the variable.
        assert_eq!(
            expand("Bearer ${T_MINUS_SPEC_TEST_TOKEN}", &allowed[1..]),
            Err(ExpandError::NotAllowed("T_MINUS_SPEC_TEST_TOKEN".into()))
        );
        let mut headers = BTreeMap::new();
        headers.insert("Authorization".into(), "Bearer ${bad name}".into());
        assert!(check_headers(&headers).is_err());
    }

    #[test]
    fn exec_programs_are_absolute_or_bare_names() {
        let exec = |program: &str| {
            NotifyRule::new(
                vec![Trigger::Fired],
                Hook::Exec {
                    argv: vec![program.into()],
                },
            )
        };
        assert!(exec("/usr/local/bin/page").check().is_ok());
        assert!(exec("page").check().is_ok());
        for relative in ["./page.sh", "scripts/page.sh", "../page.sh"] {
            assert!(exec(relative).check().is_err(), "{relative} accepted");
        }
    }

    #[test]
    fn rules_are_capped() {
        let rules = vec![webhook("https://example.com"); MAX_RULES + 1];
        assert!(check_rules(&rules).is_err());
        assert!(check_rules(&rules[..MAX_RULES]).is_ok());
    }
}
