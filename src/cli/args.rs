//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Coordinate countdown events between agents: schedule, confirm, defer,
/// decline; fire on quorum; chain events into campaigns.
#[derive(Debug, Parser)]
#[command(name = "t-minus", version, about, long_about = None)]
#[command(after_help = "Examples:
  t-minus schedule review +15m --t-minus 5m --quorum 2 --attendees alice,bob,carol
  t-minus confirm a1b2 alice
  t-minus plan examples/release.yaml --detailed-exitcode
  t-minus apply examples/release.yaml && t-minus run --campaign release-v2

Exit codes: 0 success, 1 error, 2 plan has changes (--detailed-exitcode), \
3 run/wait finished with a miss or cancellation, 124 timeout, 130 interrupted.

The clock can be pinned for tests and simulations with T_MINUS_NOW=<RFC 3339 time>.
Shell completions: `t-minus completions bash|zsh|fish|powershell|elvish`; man page: `t-minus man`.")]
pub struct Cli {
    /// The store: an SQLite file (created when missing), or a PostgreSQL
    /// URL such as postgres://user@host:5432/db for a store shared by hosts;
    /// or a t-minus service, https://host:port, with a token in
    /// T_MINUS_TOKEN (agent and operator commands only).
    #[arg(
        long,
        global = true,
        env = "T_MINUS_DB",
        default_value = "tminus.db",
        value_name = "PATH|URL"
    )]
    pub db: PathBuf,

    /// When to use colour (NO_COLOR also turns it off).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Print JSON: the result, in the shapes of docs/json.md, or an error
    /// as {"error": {"code", "message", "help"}} (on stdout; exit code 1).
    /// `run` and `wait` print one object per line.
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// When writing to a terminal and NO_COLOR is unset.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests: every problem of every file, with its location.
    #[command(after_help = "Examples:
  t-minus validate examples/
  t-minus validate release.yaml --json

Exit codes: 0 valid, 1 problems found (with --json they are printed on stdout).")]
    Validate(ValidateArgs),

    /// Show what `apply` would change in the store, Terraform style.
    #[command(after_help = "Examples:
  t-minus plan examples/release.yaml --out release.plan
  t-minus apply release.plan
  t-minus plan manifests/ --detailed-exitcode --json

Exit codes: 0 success (with --detailed-exitcode: no changes), 1 error, \
2 changes (only with --detailed-exitcode).")]
    Plan(PlanArgs),

    /// Write manifests (or a saved plan) into the store, in one transaction.
    #[command(
        after_help = "A saved plan is refused when the store changed since it was made.

Examples:
  t-minus apply examples/release.yaml
  t-minus apply release.plan

Exit codes: 0 applied (or nothing to do), 1 error (nothing was changed)."
    )]
    Apply(ApplyArgs),

    /// Schedule a standalone event.
    #[command(after_help = "Examples:
  t-minus schedule review +15m --t-minus 5m --quorum 2 --attendees alice,bob,carol
  t-minus schedule deploy 2025-06-06T15:00:00Z --fire on-time --max-defer 1h --attendees ops-1
  t-minus schedule deploy +30m --group ops=2:ops-1,ops-2,ops-3 --group security=1:sec-1,sec-2
  t-minus schedule deploy +30m --name deploy-eu --attendees ops-1   (then: t-minus confirm deploy-eu ops-1)

Exit codes: 0 success, 1 error (bad input or refused; the store is unchanged).")]
    Schedule(ScheduleArgs),

    /// Confirm readiness for an event.
    #[command(after_help = "Examples:
  t-minus confirm a1b2 alice
  t-minus confirm release-v2/review alice

Exit codes: 0 success, 1 error (bad input or refused; the store is unchanged).")]
    Confirm(ConfirmArgs),

    /// Ask for more time: moves the event (and its fire time) later.
    #[command(after_help = "Example:
  t-minus defer a1b2 bob 5m

Exit codes: 0 success, 1 error (bad input or refused; the store is unchanged).")]
    Defer(DeferArgs),

    /// Decline an event.
    #[command(after_help = "Example:
  t-minus decline a1b2 carol --reason 'on leave'

Exit codes: 0 success, 1 error (bad input or refused; the store is unchanged).")]
    Decline(DeclineArgs),

    /// Fire an event at once, whatever its quorum, as an agent its
    /// `breakglass` list names, saying why.
    #[command(after_help = "Examples:
  t-minus breakglass release-v2/deploy oncall --reason \"sev1: rollback blocked\"
  t-minus breakglass deploy-eu oncall --reason \"pager 4411\" --sign ~/.ssh/id_ed25519

The event fires now; its log, status, verify and attest mark it as a
break-glass, and notification rules on `breakglass` (and `fired`) go off.
Where answers must be signed, so must a break-glass (--sign).

Exit codes: 0 success, 1 error (bad input or refused; the store is unchanged).")]
    Breakglass(BreakglassArgs),

    /// Cancel an event (and what needs it) or every unfinished event of a campaign.
    #[command(after_help = "Examples:
  t-minus cancel release-v2/deploy --reason 'rollback'
  t-minus cancel release-v2

Exit codes: 0 success, 1 error (bad input or refused; the store is unchanged).")]
    Cancel(CancelArgs),

    /// Show events: unfinished ones soonest first, one event, or one campaign.
    #[command(after_help = "Examples:
  t-minus status
  t-minus status release-v2
  t-minus status --all --json

Exit codes: 0 success, 1 error (unknown or ambiguous reference, unreadable store).")]
    Status(StatusArgs),

    /// Advance every event to its state now and report what changed.
    #[command(after_help = "Examples:
  t-minus tick
  T_MINUS_NOW=2025-06-06T15:00:00Z t-minus tick --json

Exit codes: 0 success (also when nothing changed), 1 error.")]
    Tick(TickArgs),

    /// Print an event's audit trail.
    #[command(after_help = "Examples:
  t-minus log release-v2/deploy
  t-minus log a1b2 --json

Exit codes: 0 success, 1 error (unknown or ambiguous event).")]
    Log(LogArgs),

    /// Check that the audit log was not tampered with: recompute its hash
    /// chain and print its head.
    #[command(after_help = "Examples:
  t-minus verify
  t-minus verify --since 3f1c…e9a0 --json

Keep the printed head elsewhere (a CI artifact); `--since HEAD` later proves
the log up to it was only appended to.

  t-minus verify --attestation release-v2.intoto.json

checks an attestation alone, with no store: every content digest and the
subject recomputed, every signature checked with the keys in force when it
was made.
Exit codes: 0 the log (or attestation) is intact, 1 it is not (the first
entry that disagrees, or every problem of the attestation, is named) or
another error.")]
    Verify(VerifyArgs),

    /// Print the exact message an attendee signs to answer an event.
    #[command(after_help = "Examples:
  t-minus answer-message release-v2/deploy alice confirm > answer.txt
  ssh-keygen -Y sign -n t-minus -f ~/.ssh/id_ed25519 answer.txt
  t-minus submit answer.txt answer.txt.sig

  t-minus answer-message a1b2 bob defer 30m
  t-minus answer-message a1b2 carol decline --reason 'on leave'

The message names the event's content digest, the answer, the time (the
engine clock) and a fresh nonce; submit it within 5 minutes.
Exit codes: 0 success, 1 error (unknown event, bad answer).")]
    AnswerMessage(AnswerMessageArgs),

    /// Submit an answer signed elsewhere (`ssh-keygen -Y sign -n t-minus`).
    #[command(after_help = "Example:
  t-minus submit answer.txt answer.txt.sig

Exit codes: 0 accepted, 1 refused (the store is unchanged) or another error.")]
    Submit(SubmitArgs),

    /// Print an in-toto attestation (Statement v1) of a campaign's outcome.
    #[command(after_help = "Examples:
  t-minus attest release-v2 --out release-v2.intoto.json
  t-minus attest release-v2 --out release-v2.intoto.json --sign ~/.ssh/ci_ed25519
  t-minus verify --attestation release-v2.intoto.json

The statement's subject is the campaign (its name and the digest of its
events' contents); its predicate lists every event's content, quorum,
attendees and answers with their signatures, every key set in force, and
the log head: `verify --attestation` checks it without the store. With
`--sign`, FILE.sig is an ssh signature (namespace t-minus-attestation) over
FILE: `ssh-keygen -Y verify -n t-minus-attestation` checks it. The format is
in docs/json.md and docs/security.md.
Exit codes: 0 success, 1 error (unknown campaign, log not intact).")]
    Attest(AttestArgs),

    /// Tick until every event in scope is final, showing each transition.
    #[command(after_help = "Examples:
  t-minus run --campaign release-v2 --timeout 1h
  t-minus run examples/release.yaml --json

Exit codes: 0 all fired, 1 error, 3 something missed or was cancelled, \
124 --timeout reached, 130 interrupted (state is saved; run again to resume).")]
    Run(RunArgs),

    /// The events waiting for AGENT's answer, soonest deadline first.
    #[command(after_help = "Examples:
  t-minus inbox alice
  t-minus inbox alice --all --json

Each line: countdown, campaign/name, quorum, and AGENT's answer so far.
Exit codes: 0 success (an empty inbox too), 1 error (invalid agent id).")]
    Inbox(InboxArgs),

    /// Serve AGENT's tools to an AI agent: a Model Context Protocol server on
    /// stdin/stdout.
    #[command(after_help = "Examples:
  t-minus mcp --agent alice
  claude mcp add t-minus-alice -- t-minus --db /srv/tminus.db mcp --agent alice

Tools: inbox, get_event, confirm, defer, decline, wait_event, campaign_status.
Every answer is given as AGENT; no tool takes an agent. Logs go to stderr.
Exit codes: 0 the client closed the connection, 1 error (invalid agent id, store).")]
    Mcp(McpArgs),

    /// Serve the store over HTTP: the API under /v1 and the web pages,
    /// ticking and delivering in the background.
    #[command(after_help = "Examples:
  t-minus serve --listen 127.0.0.1:8470          (the store of --db / T_MINUS_DB)
  t-minus serve --listen 0.0.0.0:8470 --public-url https://tminus.example.com
  t-minus serve --public-dashboard               (anyone sees the pages, read-only)
  curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:8470/v1/inbox

Prints the address it listens on, then serves until SIGTERM or Ctrl-C, which
let requests in flight finish. HTTP/1.1 and HTTP/2; HTTPS with --tls-cert and
--tls-key, or behind a TLS proxy. Tokens: `t-minus token create AGENT --role agent|operator|reader`.
Exit codes: 0 stopped by a signal, 1 error (store, address in use).")]
    Serve(ServeArgs),

    /// API tokens of `serve`: create, list, revoke (on the store's host).
    #[command(subcommand)]
    #[command(after_help = "Examples:
  t-minus token create alice --role agent --expires 90days
  t-minus token list
  t-minus token revoke 3f2a

Exit codes: 0 success, 1 error.")]
    Token(TokenCommand),

    /// People: passkeys for answering from a browser (invite, list,
    /// revoke) and the chat accounts they answer from (link, unlink,
    /// links), on the store's host.
    #[command(subcommand)]
    #[command(after_help = "Examples:
  t-minus people invite alice --expires 2days --public-url https://approve.example.com
  t-minus people list
  t-minus people revoke AAECAwQF
  t-minus people link alice --slack U024BE7LH
  t-minus people links
  t-minus people unlink --slack U024BE7LH

Exit codes: 0 success, 1 error.")]
    People(PeopleCommand),

    /// Let TO answer for FROM (`confirm EVENT TO --for FROM`), everywhere or
    /// in one campaign, until a time or until revoked.
    #[command(after_help = "Examples:
  t-minus delegate alice bob --until +8h
  t-minus delegate alice bob --campaign release-v2 --sign ~/.ssh/id_ed25519

An unsigned delegation covers events whose answers need no signature; one
signed by FROM (--sign, with a key an event's signers allow for FROM) also
covers events whose answers must be signed.
Exit codes: 0 success, 1 error (bad agent, time or campaign).")]
    Delegate(DelegateArgs),

    /// List delegations: those in force (every one with --all).
    #[command(after_help = "Example:
  t-minus delegations --all --json

Exit codes: 0 success, 1 error (store).")]
    Delegations(DelegationsArgs),

    /// Revoke a delegation by id or unique id prefix.
    #[command(after_help = "Example:
  t-minus undelegate 3f2a

Answers given under it stay. Exit codes: 0 revoked, 1 error (no such delegation, already revoked).")]
    Undelegate(UndelegateArgs),

    /// Tick until one event is final: exit 0 if it fired, 3 if not.
    #[command(after_help = "Example:
  t-minus wait release-v2/deploy --timeout 2h && ./deploy.sh

Exit codes: 0 fired, 1 error, 3 missed or cancelled, 124 --timeout reached, 130 interrupted.")]
    Wait(WaitArgs),

    /// Ad-hoc campaigns: groups of events with dependencies.
    #[command(subcommand)]
    #[command(after_help = "Examples:
  t-minus campaign create release-v2
  t-minus campaign add release-v2 review +20m --quorum 2 --attendees alice,bob,carol
  t-minus campaign show release-v2

Exit codes: 0 success, 1 error (bad input or refused; the store is unchanged).")]
    Campaign(CampaignCommand),

    /// Notifications: send a test delivery.
    #[command(subcommand)]
    #[command(after_help = "Example:
  t-minus notify test release-v2/deploy --on fired

Exit codes: 0 every test delivery succeeded, 1 error or a delivery failed.")]
    Notify(NotifyCommand),

    /// Print a shell completion script on stdout.
    #[command(after_help = "Examples:
  t-minus completions bash > ~/.local/share/bash-completion/completions/t-minus
  t-minus completions zsh > ~/.zfunc/_t-minus
  t-minus completions fish > ~/.config/fish/completions/t-minus.fish
  t-minus completions powershell >> $PROFILE

Needs no store. Exit codes: 0 success, 1 error (unknown shell).")]
    Completions(CompletionsArgs),

    /// Print the man page (roff) on stdout.
    #[command(after_help = "Examples:
  t-minus man > ~/.local/share/man/man1/t-minus.1
  t-minus man | man -l -

Needs no store. Exit codes: 0 success, 1 error.")]
    Man,
}

/// `serve`'s arguments.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on; port 0 picks a free one.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8470")]
    pub listen: String,
    /// The URL clients reach the service at (behind a proxy), named in
    /// /openapi.json.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Let manifests applied over HTTP run exec hooks whose program is
    /// named by an absolute path under DIR (repeatable). Without it,
    /// manifests with exec hooks are refused.
    #[arg(long, value_name = "DIR", num_args = 1..)]
    pub allow_exec: Vec<std::path::PathBuf>,
    /// For tests only: every request and tick happens at this RFC 3339
    /// instant instead of the system clock. (`T_MINUS_NOW` is not read by
    /// `serve`.)
    #[arg(long, value_name = "RFC3339", hide = true)]
    pub clock_for_tests: Option<String>,
    /// Do not tick or deliver notifications; serve requests only.
    #[arg(long)]
    pub no_background: bool,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Requests a second allowed per token (per client address for
    /// requests without one), in bursts of twice as many; 0: no limit.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub rate_limit: u32,
    /// Gate GitHub deployments with the templates (manifest documents with
    /// a `github:` section) in these files or directories, read again on
    /// every delivery; needs T_MINUS_GITHUB_WEBHOOK_SECRET, --github-app-id
    /// and --github-private-key (docs/github.md).
    #[arg(long, value_name = "PATH", num_args = 1.., env = "T_MINUS_GITHUB_TEMPLATES")]
    pub github_templates: Vec<std::path::PathBuf>,
    /// The GitHub App's id (its "App ID").
    #[arg(long, value_name = "ID", env = "T_MINUS_GITHUB_APP_ID")]
    pub github_app_id: Option<String>,
    /// The GitHub App's private key (the PEM file GitHub generated).
    #[arg(long, value_name = "FILE", env = "T_MINUS_GITHUB_PRIVATE_KEY_FILE")]
    pub github_private_key: Option<std::path::PathBuf>,
    /// The GitHub API base URL; answers go only to URLs under it
    /// (GitHub Enterprise Server: https://HOST/api/v3).
    #[arg(
        long,
        value_name = "URL",
        env = "T_MINUS_GITHUB_API_URL",
        default_value = "https://api.github.com"
    )]
    pub github_api_url: String,
    /// Show the web pages (dashboard, events, campaigns) read-only to
    /// visitors who are not signed in; without it they are sent to sign in.
    /// Nobody answers without signing in.
    #[arg(long)]
    pub public_dashboard: bool,
}

/// `token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token for AGENT and print it once (the last line of stdout);
    /// only its hash is stored.
    #[command(after_help = "Example:
  t-minus token create alice --role agent --expires 30days

Exit codes: 0 success, 1 error (invalid agent, role or duration).")]
    Create(TokenCreateArgs),
    /// List the tokens (never their secrets).
    #[command(after_help = "Example:
  t-minus token list --json

Exit codes: 0 success, 1 error (store).")]
    List,
    /// Revoke a token by id or unique id prefix; it is refused from then on.
    #[command(after_help = "Example:
  t-minus token revoke 3f2a

Exit codes: 0 revoked, 1 error (no such token, already revoked).")]
    Revoke(TokenRevokeArgs),
}

/// `people` subcommands.
#[derive(Debug, Subcommand)]
pub enum PeopleCommand {
    /// Print a single-use link that enrols a passkey for AGENT
    /// (`PUBLIC_URL/enrol/TOKEN`); only the token's hash is stored.
    #[command(after_help = "Example:
  t-minus people invite alice --expires 2days --public-url https://approve.example.com

The public URL is where people reach `t-minus serve` (its --public-url); its
host is the passkeys' relying party, so it must be a domain name (localhost
for local use), never an IP address.
Exit codes: 0 success, 1 error (invalid agent, duration or URL).")]
    Invite(PeopleInviteArgs),
    /// List the passkeys and the invitations not used yet.
    #[command(after_help = "Example:
  t-minus people list --json

Exit codes: 0 success, 1 error (store).")]
    List,
    /// Revoke a passkey (by credential id, or a unique prefix of it or of
    /// its id): it signs nothing from then on, and its sessions end.
    #[command(after_help = "Example:
  t-minus people revoke AAECAwQF

Exit codes: 0 revoked, 1 error (no such passkey, already revoked).")]
    Revoke(PeopleRevokeArgs),
    /// Link a Slack account to AGENT: its presses on Slack messages'
    /// buttons answer as AGENT (recorded in the log).
    #[command(after_help = "Example:
  t-minus people link alice --slack U024BE7LH

The Slack user id is in the person's Slack profile (⋮ → Copy member ID).
A Slack account answers as one agent; unlink it first to move it.
Exit codes: 0 linked, 1 error (bad agent or user id, already linked).")]
    Link(PeopleLinkArgs),
    /// Remove a Slack account's link (recorded in the log).
    #[command(after_help = "Examples:
  t-minus people unlink --slack U024BE7LH
  t-minus people unlink alice --slack U024BE7LH   (refused unless linked to alice)

Exit codes: 0 unlinked, 1 error (not linked, linked to another agent).")]
    Unlink(PeopleUnlinkArgs),
    /// List the linked chat accounts.
    #[command(after_help = "Example:
  t-minus people links --json

Exit codes: 0 success, 1 error (store).")]
    Links,
}

/// `people invite`'s arguments.
#[derive(Debug, Args)]
pub struct PeopleInviteArgs {
    /// The agent the passkey will answer as.
    pub agent: String,
    /// How long the link is valid (e.g. `2days`); default 7 days.
    #[arg(long, value_name = "DUR")]
    pub expires: Option<String>,
    /// The URL people reach `t-minus serve` at (`https://HOST[:PORT]`, or
    /// `http://localhost:PORT`).
    #[arg(long, value_name = "URL", env = "T_MINUS_PUBLIC_URL")]
    pub public_url: String,
}

/// `people revoke`'s arguments.
#[derive(Debug, Args)]
pub struct PeopleRevokeArgs {
    /// The credential id, or a unique prefix (4+ characters) of it or of
    /// the passkey's id.
    pub passkey: String,
}

/// `people link`'s arguments.
#[derive(Debug, Args)]
pub struct PeopleLinkArgs {
    /// The agent the account answers as.
    pub agent: String,
    /// The Slack user id (`U…` or `W…`).
    #[arg(long, value_name = "USER_ID", required = true)]
    pub slack: String,
}

/// `people unlink`'s arguments.
#[derive(Debug, Args)]
pub struct PeopleUnlinkArgs {
    /// The agent it must be linked to (optional: a check).
    pub agent: Option<String>,
    /// The Slack user id.
    #[arg(long, value_name = "USER_ID", required = true)]
    pub slack: String,
}

/// `delegate`'s arguments.
#[derive(Debug, Args)]
pub struct DelegateArgs {
    /// The agent whose answers may be given by another.
    pub from: String,
    /// The agent who may give them.
    pub to: String,
    /// When it ends (RFC 3339, or `+DURATION` from now); default: until
    /// revoked.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// The campaign it covers; default: every event.
    #[arg(long, value_name = "CAMPAIGN")]
    pub campaign: Option<String>,
    /// Sign it as FROM: an unencrypted OpenSSH private key file, or `agent`
    /// for the running ssh-agent.
    #[arg(long, value_name = "KEYFILE|agent")]
    pub sign: Option<String>,
}

/// `delegations`' arguments.
#[derive(Debug, Args)]
pub struct DelegationsArgs {
    /// Include expired and revoked delegations.
    #[arg(long)]
    pub all: bool,
}

/// `undelegate`'s arguments.
#[derive(Debug, Args)]
pub struct UndelegateArgs {
    /// The delegation's id, or a unique prefix of it (4+ hex digits).
    pub delegation: String,
}

/// `token create`'s arguments.
#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// The agent the token acts as.
    pub agent: String,
    /// What it may do: `reader` reads; `agent` reads and answers as AGENT;
    /// `operator` reads, plans, applies and cancels.
    #[arg(long, value_name = "ROLE", default_value = "agent")]
    pub role: String,
    /// How long it is valid (e.g. `90days`); default: until revoked.
    #[arg(long, value_name = "DUR")]
    pub expires: Option<String>,
}

/// `token revoke`'s arguments.
#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    /// The token's id, or a unique prefix of it (4+ hex digits).
    pub token: String,
}

/// `notify` subcommands.
#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send one test delivery per rule of the event that wants `--on` (every
    /// rule when none does) and print the results; nothing is queued.
    #[command(after_help = "Example:
  t-minus notify test release-v2/deploy --on fired

Exit codes: 0 every test delivery succeeded, 1 error, no rule, or a delivery failed.")]
    Test(NotifyTestArgs),
}

/// The notification options of `schedule` and `campaign add`.
#[derive(Debug, Args)]
pub struct NotifyOptions {
    /// Run this command on the `--on` transitions: the program and its
    /// arguments, split like a POSIX shell splits words (`'on call'` and
    /// `"on call"` stay one argument; no variables or globs are expanded;
    /// repeatable). It gets the delivery's JSON on stdin.
    #[arg(long, value_name = "CMD")]
    pub notify_exec: Vec<String>,
    /// POST the `--on` transitions to this http(s) URL (repeatable).
    #[arg(long, value_name = "URL")]
    pub notify_webhook: Vec<String>,
    /// Which transitions notify: opened, fired, missed, cancelled,
    /// confirmed, deferred, declined, reminder (comma-separated or
    /// repeated).
    #[arg(
        long = "on",
        value_name = "WHAT",
        value_delimiter = ',',
        default_value = "fired,missed,cancelled"
    )]
    pub notify_on: Vec<String>,
    /// For `--on reminder`: how long before the fire time (repeatable).
    #[arg(long, value_name = "DUR")]
    pub notify_before: Vec<String>,
    /// How long one delivery attempt may take (default 30s for commands,
    /// 10s for webhooks); a command still running then is killed.
    #[arg(long, value_name = "DUR")]
    pub notify_timeout: Option<String>,
    /// Attempts before a delivery is given up (default 8).
    #[arg(long, value_name = "N")]
    pub notify_retry: Option<u32>,
    /// The body of `--notify-webhook`: json or slack.
    #[arg(long, default_value = "json", value_name = "json|slack")]
    pub notify_format: String,
}

/// Options shared by `schedule` and `campaign add`.
#[derive(Debug, Args)]
pub struct EventOptions {
    /// Confirmations needed: a number, `all` or `majority`.
    #[arg(
        long,
        default_value = "all",
        value_name = "N|all|majority",
        allow_hyphen_values = true
    )]
    pub quorum: String,
    /// Comma-separated attendees.
    #[arg(long, default_value = "", value_name = "a,b,c")]
    pub attendees: String,
    /// A quorum group (repeatable): the event fires when every group has
    /// its quorum. Instead of --attendees/--quorum.
    #[arg(
        long = "group",
        value_name = "NAME=QUORUM:a,b",
        conflicts_with_all = ["quorum", "attendees"]
    )]
    pub groups: Vec<String>,
    /// Countdown length: confirmations are due this long before TIME.
    #[arg(
        long = "t-minus",
        default_value = "0s",
        value_name = "DUR",
        allow_hyphen_values = true
    )]
    pub t_minus: String,
    /// `early` fires as soon as quorum holds; `on-time` at the fire time;
    /// `lazy` at the fire time unless someone declined.
    #[arg(long, default_value = "early", value_name = "early|on-time|lazy")]
    pub fire: String,
    /// Cap on the total of all deferrals.
    #[arg(long, value_name = "DUR", allow_hyphen_values = true)]
    pub max_defer: Option<String>,
    /// Arbitrary JSON, returned untouched.
    #[arg(long, value_name = "JSON")]
    pub payload: Option<String>,
    /// Who schedules it: the requester, for --four-eyes.
    #[arg(long, default_value = "t-minus", value_name = "AGENT")]
    pub organizer: String,
    /// Four eyes: the organizer's own answer is refused, and the quorum
    /// must be reachable without it.
    #[arg(long)]
    pub four_eyes: bool,
    /// A time window the event may fire in (repeatable):
    /// `DAYS HH:MM-HH:MM ZONE`, e.g. "Mon-Fri 09:00-17:00 Europe/Berlin".
    #[arg(long = "window", value_name = "WINDOW")]
    pub windows: Vec<String>,
    /// Agents who may fire it at once with a reason (`t-minus breakglass`).
    #[arg(long, value_name = "a,b")]
    pub breakglass: Option<String>,
    /// Notification rules.
    #[command(flatten)]
    pub notify: Box<NotifyOptions>,
}

/// `schedule`'s arguments.
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// meeting, checkpoint, review, deploy, or any other word.
    pub kind: String,
    /// When: RFC 3339 with an offset, `now`, or `+DURATION` from now.
    #[arg(allow_hyphen_values = true)]
    pub time: String,
    /// A name to refer to it by instead of its id
    /// ([A-Za-z_][A-Za-z0-9_-]{0,63}, not readable as an id); no other
    /// unfinished standalone event may hold it.
    #[arg(long)]
    pub name: Option<String>,
    /// Require every answer to be signed by a key in this OpenSSH
    /// allowed_signers file (every attendee needs one).
    #[arg(long, value_name = "FILE")]
    pub signers: Option<std::path::PathBuf>,
    /// Event options.
    #[command(flatten)]
    pub options: EventOptions,
}

/// `campaign` subcommands.
#[derive(Debug, Subcommand)]
pub enum CampaignCommand {
    /// Create an empty campaign.
    #[command(after_help = "Example:
  t-minus campaign create release-v2

Exit codes: 0 success, 1 error (bad input or refused; the store is unchanged).")]
    Create(CampaignCreateArgs),
    /// Schedule a new event in a campaign.
    #[command(after_help = "Examples:
  t-minus campaign add release-v2 review +20m --quorum 2 --attendees alice,bob,carol
  t-minus campaign add release-v2 deploy +40m --needs review --attendees ops-1,ops-2
  t-minus campaign add release-v2 deploy +40m --name deploy-eu --fire on-time --attendees ops-1
  t-minus campaign add release-v2 deploy +40m --group ops=2:ops-1,ops-2,ops-3 --group security=1:sec-1,sec-2

With --needs the event starts blocked and opens when every event it needs
has fired; TIME is still relative to now.

Exit codes: 0 success, 1 error (bad input or refused; the store is unchanged).")]
    Add(CampaignAddArgs),
    /// Make TO need FROM: TO opens only after FROM fired.
    #[command(after_help = "Example:
  t-minus campaign link release-v2 checkpoint review

Exit codes: 0 success, 1 error (e.g. the link would close a cycle; the store is unchanged).")]
    Link(CampaignLinkArgs),
    /// Print the execution order in levels: `A → B, C → D`.
    #[command(after_help = "Examples:
  t-minus campaign order release-v2
  t-minus campaign order release-v2 --json

Exit codes: 0 success, 1 error (unknown campaign).")]
    Order(CampaignOrderArgs),
    /// List campaigns.
    #[command(after_help = "Examples:
  t-minus campaign list
  t-minus campaign list --json

Exit codes: 0 success, 1 error.")]
    List(CampaignListArgs),
    /// Show a campaign: its state, execution order and every event.
    #[command(after_help = "Examples:
  t-minus campaign show release-v2
  t-minus campaign show release-v2 --json

Exit codes: 0 success, 1 error (unknown or ambiguous campaign).")]
    Show(CampaignShowArgs),
}

/// `validate`'s arguments.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Manifest files or directories (every *.yaml / *.yml in name order).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// `plan`'s arguments.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Manifest files or directories.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Save the plan, with a fingerprint of the store, for `apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Also remove manifest-managed campaigns no manifest declares.
    #[arg(long)]
    pub prune: bool,
}

/// `apply`'s arguments.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Manifest files or directories, or one plan file from `plan --out`.
    #[arg(required = true, value_name = "PATH|PLANFILE")]
    pub paths: Vec<PathBuf>,
    /// Also remove manifest-managed campaigns no manifest declares.
    #[arg(long)]
    pub prune: bool,
}

/// `confirm`'s arguments.
#[derive(Debug, Args)]
pub struct ConfirmArgs {
    /// The event: UUID, unique prefix (≥ 4 hex digits) or campaign/event.
    pub event: String,
    /// The attendee confirming (with `--for`, the agent answering for it).
    pub agent: String,
    /// Answer for this attendee under its delegation to AGENT.
    #[arg(long = "for", value_name = "FROM")]
    pub for_agent: Option<String>,
    /// Sign the answer (required when the event declares signers): an
    /// unencrypted OpenSSH private key file, or `agent` to sign through
    /// the running ssh-agent. Default: $T_MINUS_SIGNING_KEY. Events
    /// without signers take the answer unsigned.
    #[arg(long, value_name = "KEYFILE|agent")]
    pub sign: Option<String>,
}

/// `defer`'s arguments.
#[derive(Debug, Args)]
pub struct DeferArgs {
    /// The event.
    pub event: String,
    /// The attendee deferring (with `--for`, the agent answering for it).
    pub agent: String,
    /// Answer for this attendee under its delegation to AGENT.
    #[arg(long = "for", value_name = "FROM")]
    pub for_agent: Option<String>,
    /// How much later (humantime, e.g. 5m; a bare number is seconds).
    #[arg(allow_hyphen_values = true)]
    pub duration: String,
    /// Sign the answer (required when the event declares signers): an
    /// unencrypted OpenSSH private key file, or `agent` to sign through
    /// the running ssh-agent. Default: $T_MINUS_SIGNING_KEY. Events
    /// without signers take the answer unsigned.
    #[arg(long, value_name = "KEYFILE|agent")]
    pub sign: Option<String>,
}

/// `decline`'s arguments.
#[derive(Debug, Args)]
pub struct DeclineArgs {
    /// The event.
    pub event: String,
    /// The attendee declining (with `--for`, the agent answering for it).
    pub agent: String,
    /// Answer for this attendee under its delegation to AGENT.
    #[arg(long = "for", value_name = "FROM")]
    pub for_agent: Option<String>,
    /// Why.
    #[arg(long)]
    pub reason: Option<String>,
    /// Sign the answer (required when the event declares signers): an
    /// unencrypted OpenSSH private key file, or `agent` to sign through
    /// the running ssh-agent. Default: $T_MINUS_SIGNING_KEY. Events
    /// without signers take the answer unsigned.
    #[arg(long, value_name = "KEYFILE|agent")]
    pub sign: Option<String>,
}

/// `cancel`'s arguments.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The event or campaign.
    pub target: String,
    /// Why.
    #[arg(long)]
    pub reason: Option<String>,
    /// Sign the cancel (required when the event declares signers): an
    /// unencrypted OpenSSH private key file, or `agent` to sign through
    /// ssh-agent.
    #[arg(long, value_name = "KEYFILE|agent", requires = "signer")]
    pub sign: Option<String>,
    /// The signer of the event who cancels (with `--sign`).
    #[arg(long = "as", id = "signer", value_name = "AGENT", requires = "sign")]
    pub signer: Option<String>,
}

/// `breakglass`'s arguments.
#[derive(Debug, Args)]
pub struct BreakglassArgs {
    /// The event.
    pub event: String,
    /// The agent breaking the glass (in the event's `breakglass` list).
    pub agent: String,
    /// Why the event must fire now (required; refused when missing or
    /// empty).
    #[arg(long)]
    pub reason: Option<String>,
    /// Sign the break-glass (required when the event declares signers): an
    /// unencrypted OpenSSH private key file, or `agent` to sign through
    /// ssh-agent.
    #[arg(long, value_name = "KEYFILE|agent")]
    pub sign: Option<String>,
}

/// `status`'s arguments.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// An event or campaign (default: every unfinished event).
    pub target: Option<String>,
    /// Include finished events.
    #[arg(long)]
    pub all: bool,
}

/// `tick`'s arguments.
#[derive(Debug, Args)]
pub struct TickArgs {
    /// Do not deliver queued notifications (they stay queued).
    #[arg(long)]
    pub no_notify: bool,
}

/// `log`'s arguments.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// The event.
    pub event: String,
}

/// `verify`'s arguments.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Check the states, answers and signatures of this event or
    /// campaign only (default: every event). The chain is always
    /// checked whole.
    pub target: Option<String>,
    /// A head printed earlier that must be in the chain (64 hex digits).
    #[arg(long, value_name = "HASH")]
    pub since: Option<String>,
    /// Check an attestation written by `attest` instead, alone: no store is
    /// opened or created (`--db` is not read).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["target", "since"])]
    pub attestation: Option<std::path::PathBuf>,
}

/// `answer-message`'s arguments.
#[derive(Debug, Args)]
pub struct AnswerMessageArgs {
    /// The event.
    pub event: String,
    /// The attendee answering (for `cancel`: a signer of the event).
    pub agent: String,
    /// `confirm`, `defer`, `decline`, or `cancel`.
    #[arg(value_name = "confirm|defer|decline|cancel")]
    pub answer: String,
    /// For `defer`: how much later (humantime).
    #[arg(value_name = "DURATION")]
    pub duration: Option<String>,
    /// For `decline` and `cancel`: why.
    #[arg(long)]
    pub reason: Option<String>,
}

/// `submit`'s arguments.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The message, exactly as `t-minus answer-message` printed it.
    pub message: std::path::PathBuf,
    /// Its armored signature (`-----BEGIN SSH SIGNATURE-----`).
    pub signature: std::path::PathBuf,
}

/// `attest`'s arguments.
#[derive(Debug, Args)]
pub struct AttestArgs {
    /// The campaign.
    pub campaign: String,
    /// Write to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
    /// Also sign the statement with this unencrypted OpenSSH private key:
    /// an `sshsig` signature in namespace `t-minus-attestation` over the
    /// exact bytes written, to FILE.sig (needs `--out FILE`).
    #[arg(long, value_name = "KEYFILE", requires = "out")]
    pub sign: Option<std::path::PathBuf>,
}

/// `run`'s arguments.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Manifests to apply first; the run then drives their campaigns.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Only these campaigns (default: the manifests' campaigns, or every
    /// unfinished event when no PATH is given).
    #[arg(long = "campaign", value_name = "NAME")]
    pub campaigns: Vec<String>,
    /// Give up after this long (exit 124).
    #[arg(long, value_name = "DUR")]
    pub timeout: Option<String>,
    /// Do not deliver queued notifications (they stay queued).
    #[arg(long)]
    pub no_notify: bool,
}

/// `inbox`'s arguments.
#[derive(Debug, Args)]
pub struct InboxArgs {
    /// The agent.
    pub agent: String,
    /// Also the unfinished events AGENT already confirmed or declined.
    #[arg(long)]
    pub all: bool,
}

/// `mcp`'s arguments.
#[derive(Debug, Args)]
pub struct McpArgs {
    /// The agent every answer is given as.
    #[arg(long, value_name = "AGENT")]
    pub agent: String,
    /// Sign answers where the event requires signed answers: an
    /// unencrypted OpenSSH private key file, or `agent` to sign through
    /// the running ssh-agent. Default: $T_MINUS_SIGNING_KEY.
    #[arg(long, value_name = "KEYFILE|agent")]
    pub sign: Option<String>,
}

/// `wait`'s arguments.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The event.
    pub event: String,
    /// Give up after this long (exit 124).
    #[arg(long, value_name = "DUR")]
    pub timeout: Option<String>,
    /// Do not deliver queued notifications (they stay queued).
    #[arg(long)]
    pub no_notify: bool,
}

/// `completions`'s arguments.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `campaign create`'s arguments.
#[derive(Debug, Args)]
pub struct CampaignCreateArgs {
    /// Its unique name ([A-Za-z_][A-Za-z0-9_-]{0,63}).
    pub name: String,
}

/// `campaign add`'s arguments.
#[derive(Debug, Args)]
pub struct CampaignAddArgs {
    /// The campaign.
    pub campaign: String,
    /// The event's kind.
    pub kind: String,
    /// When: RFC 3339 with an offset, `now`, or `+DURATION` from now.
    #[arg(allow_hyphen_values = true)]
    pub time: String,
    /// Its name in the campaign (default: the kind, then kind-2, …).
    #[arg(long)]
    pub name: Option<String>,
    /// Comma-separated events it needs: names in the campaign,
    /// `campaign/name`, ids or id prefixes.
    #[arg(long, value_name = "a,b")]
    pub needs: Option<String>,
    /// Event options (boxed: the largest variant by far).
    #[command(flatten)]
    pub options: Box<EventOptions>,
}

/// `campaign link`'s arguments.
#[derive(Debug, Args)]
pub struct CampaignLinkArgs {
    /// The campaign.
    pub campaign: String,
    /// The event that must fire first (name in the campaign, or any event reference).
    pub from: String,
    /// The event that waits.
    pub to: String,
}

/// `campaign order`'s arguments.
#[derive(Debug, Args)]
pub struct CampaignOrderArgs {
    /// The campaign.
    pub campaign: String,
}

/// `campaign list`'s arguments.
#[derive(Debug, Args)]
pub struct CampaignListArgs {}

/// `campaign show`'s arguments.
#[derive(Debug, Args)]
pub struct CampaignShowArgs {
    /// The campaign: name, UUID or unique prefix.
    pub campaign: String,
}

/// `notify test`'s arguments.
#[derive(Debug, Args)]
pub struct NotifyTestArgs {
    /// The event.
    pub event: String,
    /// The transition to pretend happened.
    #[arg(long, default_value = "fired", value_name = "WHAT")]
    pub on: String,
}
