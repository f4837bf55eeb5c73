//! `serve` and `token create|list|revoke`: the HTTP service and its tokens.

use std::io::Write;
use std::process::ExitCode;

use t_minus::duration::parse_duration;
use t_minus::github::{GithubApp, GithubError};
use t_minus::serve::github::GithubOptions;
use t_minus::serve::{serve, ServeError, ServeOptions, TlsFiles};
use t_minus::time_spec::format_time;
use t_minus::token::{Role, TokenInfo};
use t_minus::{AgentId, TMinusError, TimeSpec};

use super::args::{ServeArgs, TokenCommand, TokenCreateArgs, TokenRevokeArgs};
use super::context::{Context, NOW_VAR};
use super::error::CliError;
use super::json;

/// The environment variable holding the GitHub App's webhook secret.
pub const GITHUB_SECRET_VAR: &str = "T_MINUS_GITHUB_WEBHOOK_SECRET";

impl ServeArgs {
    /// `serve [--listen ADDR] [--public-url URL] [--allow-exec DIR...]`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let clock = match &self.clock_for_tests {
            None => None,
            Some(text) => match TimeSpec::parse(text)? {
                TimeSpec::Absolute(t) => Some(t),
                TimeSpec::Relative(_) => {
                    return Err(TMinusError::InvalidTime {
                        value: text.clone(),
                        reason: "--clock-for-tests takes an absolute RFC 3339 time".into(),
                    }
                    .into())
                }
            },
        };
        if std::env::var_os(NOW_VAR).is_some_and(|v| !v.is_empty()) {
            eprintln!("t-minus serve: {NOW_VAR} is ignored: the service runs on the system clock");
        }
        if let Some(t) = clock {
            eprintln!(
                "t-minus serve: the clock is pinned at {} (--clock-for-tests); never use this in production",
                format_time(t)
            );
        }
        let background = if self.no_background {
            None
        } else {
            Some(super::notify::options()?)
        };
        let options = ServeOptions {
            location: cx.cli.db.to_string_lossy().into_owned(),
            listen: self.listen.clone(),
            public_url: self.public_url.clone(),
            allow_exec: self.allow_exec.clone(),
            clock_for_tests: clock,
            background,
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                _ => None,
            },
            rate_limit: (self.rate_limit > 0).then_some(self.rate_limit),
            slack: t_minus::serve::slack::SlackOptions::from_env()
                .map_err(|e| CliError::Serve(ServeError::Slack(e)))?,
            github: self.github()?,
            public_dashboard: self.public_dashboard,
        };
        serve(options, |addr, scheme| {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "t-minus serve: listening on {scheme}://{addr}")
                .and_then(|()| stdout.flush());
        })
        .map_err(CliError::Serve)?;
        Ok(ExitCode::SUCCESS)
    }
}

impl ServeArgs {
    /// The GitHub options: all of the webhook secret, the templates, the
    /// app id and its key, or none of them.
    fn github(&self) -> Result<Option<GithubOptions>, CliError> {
        let secret = std::env::var(GITHUB_SECRET_VAR)
            .ok()
            .filter(|s| !s.is_empty());
        let given = [
            secret.is_some(),
            !self.github_templates.is_empty(),
            self.github_app_id.is_some(),
            self.github_private_key.is_some(),
        ];
        if given.iter().all(|g| !g) {
            return Ok(None);
        }
        let missing: Vec<&str> = [
            GITHUB_SECRET_VAR,
            "--github-templates",
            "--github-app-id",
            "--github-private-key",
        ]
        .into_iter()
        .zip(given)
        .filter(|(_, g)| !g)
        .map(|(name, _)| name)
        .collect();
        if !missing.is_empty() {
            return Err(TMinusError::from(GithubError::NotConfigured {
                reason: format!("{} not given", missing.join(", ")),
            })
            .into());
        }
        let (Some(secret), Some(app_id), Some(key)) =
            (secret, &self.github_app_id, &self.github_private_key)
        else {
            return Ok(None);
        };
        let pem = std::fs::read(key).map_err(|e| {
            TMinusError::from(GithubError::Key {
                path: key.display().to_string(),
                reason: e.to_string(),
            })
        })?;
        let app = GithubApp::new(
            app_id,
            &pem,
            &key.display().to_string(),
            &self.github_api_url,
        )
        .map_err(TMinusError::from)?;
        let options = GithubOptions {
            webhook_secret: secret,
            templates: self.github_templates.clone(),
            app,
        };
        // Checked now, so a broken template fails at start rather than at
        // the first deployment.
        options
            .load_templates(chrono::Utc::now())
            .map_err(CliError::from)?;
        Ok(Some(options))
    }
}

impl TokenCommand {
    /// `token …`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        match self {
            TokenCommand::Create(args) => args.run(cx),
            TokenCommand::List => list(cx),
            TokenCommand::Revoke(args) => args.run(cx),
        }
    }
}

impl TokenCreateArgs {
    /// `token create AGENT [--role ROLE] [--expires DUR]`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let agent = AgentId::parse(&self.agent)?;
        let role: Role = self.role.parse().map_err(TMinusError::from)?;
        let expires = self.expires.as_deref().map(parse_duration).transpose()?;
        let mut s = cx.open()?;
        let new = s.engine.create_token(&agent, role, expires)?;
        if cx.json() {
            json::print(&new);
        } else {
            println!(
                "Created token {} for {} (role {}, {}).",
                new.token.id,
                new.token.agent,
                new.token.role,
                expiry(&new.token)
            );
            println!("Send it as `Authorization: Bearer TOKEN`; it is not shown again:");
            println!("{}", new.secret);
        }
        Ok(ExitCode::SUCCESS)
    }
}

impl TokenRevokeArgs {
    /// `token revoke ID`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let mut s = cx.open()?;
        let token = s.engine.revoke_token(&self.token)?;
        if cx.json() {
            json::print(&token);
        } else {
            println!("Revoked token {} of {}.", token.id, token.agent);
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// `token list`.
fn list(cx: &Context) -> Result<ExitCode, CliError> {
    let s = cx.open()?;
    let tokens = s.engine.tokens()?;
    if cx.json() {
        json::print(&tokens);
        return Ok(ExitCode::SUCCESS);
    }
    if tokens.is_empty() {
        println!("No tokens. (`t-minus token create AGENT` makes one.)");
    }
    for t in &tokens {
        let state = match t.refusal(s.engine.now()) {
            None => "active".to_string(),
            Some(_) if t.revoked_at.is_some() => {
                format!(
                    "revoked {}",
                    t.revoked_at.map(format_time).unwrap_or_default()
                )
            }
            Some(_) => "expired".to_string(),
        };
        println!(
            "{}  {:<8}  {}  created {}, {}  {state}",
            t.id,
            t.role.as_str(),
            t.agent,
            format_time(t.created_at),
            expiry(t)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `expires …` or `no expiry`.
fn expiry(t: &TokenInfo) -> String {
    match t.expires_at {
        Some(at) => format!("expires {}", format_time(at)),
        None => "no expiry".into(),
    }
}
