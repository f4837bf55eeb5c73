//! What every command needs: the engine (store + clock) and output styling.

use std::io::IsTerminal;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use t_minus::display::{Renderer, Styles};
use t_minus::{Engine, FixedClock, Result, TMinusError, TimeSpec};

use super::args::{Cli, ColorChoice, Command};
use super::error::CliError;
use super::remote::{is_service_url, Client, ClientError};

/// What every command runs with: the parsed command line.
pub struct Context<'a> {
    /// The command line.
    pub cli: &'a Cli,
}

/// An open store and the renderer of its instant.
pub struct Session {
    /// The engine on `--db`.
    pub engine: Engine,
    /// Text output, at the engine's instant.
    pub out: Renderer,
}

impl<'a> Context<'a> {
    /// The context of `cli`.
    pub fn new(cli: &'a Cli) -> Self {
        Context { cli }
    }

    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        self.cli.json
    }

    /// Opens the store for a command that happens at one instant.
    pub fn open(&self) -> std::result::Result<Session, CliError> {
        self.session(false)
    }

    /// Opens the store for `run` and `wait`, which follow the clock.
    pub fn open_live(&self) -> std::result::Result<Session, CliError> {
        self.session(true)
    }

    /// The client of the t-minus service `--db` names (`http(s)://…`), or
    /// `None` when `--db` is a store.
    pub fn remote(&self) -> std::result::Result<Option<Client>, CliError> {
        match self.cli.db.to_str() {
            Some(url) if is_service_url(url) => Ok(Some(Client::from_env(url)?)),
            _ => Ok(None),
        }
    }

    /// The renderer of a command run through a t-minus service: the
    /// local command's styles, at this instant (`T_MINUS_NOW` pins it).
    pub fn renderer(&self) -> Result<Renderer> {
        let now = pinned_now()?.unwrap_or_else(Utc::now);
        Ok(Renderer::new(
            Styles::new(color_enabled(self.cli.color)),
            now,
        ))
    }

    fn session(&self, live: bool) -> std::result::Result<Session, CliError> {
        if let Some(url) = self.cli.db.to_str().filter(|u| is_service_url(u)) {
            return Err(ClientError::Unsupported {
                what: format!("this command (with --db {url})"),
            }
            .into());
        }
        let engine = open_engine(self.cli, live)?;
        let styles = Styles::new(color_enabled(self.cli.color));
        let out = Renderer::new(styles, engine.now());
        Ok(Session { engine, out })
    }
}

/// Name of the variable that pins the clock.
pub const NOW_VAR: &str = "T_MINUS_NOW";

/// The pinned time from `T_MINUS_NOW`, if set.
pub fn pinned_now() -> Result<Option<DateTime<Utc>>> {
    match std::env::var(NOW_VAR) {
        Ok(value) if !value.trim().is_empty() => match TimeSpec::parse(&value)? {
            TimeSpec::Absolute(t) => Ok(Some(t)),
            TimeSpec::Relative(_) => Err(TMinusError::InvalidTime {
                value,
                reason: format!("{NOW_VAR} must be an absolute RFC 3339 time"),
            }),
        },
        _ => Ok(None),
    }
}

/// Opens the engine on `--db`. With `live` (run, wait) it follows the
/// system clock; otherwise the command happens at one instant, the moment it
/// started, so that `now` in its arguments and the engine's checks agree.
/// `T_MINUS_NOW` pins the clock either way.
pub fn open_engine(cli: &Cli, live: bool) -> Result<Engine> {
    let engine = match cli.db.to_str() {
        Some(url) if t_minus::store::is_server_url(url) => Engine::open(url)?,
        _ => {
            let evidence = matches!(cli.command, Command::Verify(_) | Command::Attest(_));
            if evidence && !cli.db.exists() {
                return Err(t_minus::store::StoreError::Missing {
                    path: cli.db.clone(),
                }
                .into());
            }
            Engine::new(&cli.db)?
        }
    };
    Ok(match (pinned_now()?, live) {
        (Some(now), _) => engine.with_clock(Arc::new(FixedClock::new(now))),
        (None, false) => engine.with_clock(Arc::new(FixedClock::new(chrono::Utc::now()))),
        (None, true) => engine,
    })
}

/// Whether stdout gets colour.
pub fn color_enabled(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
        }
    }
}

/// The key to sign answers with: `--sign`'s value, else
/// `T_MINUS_SIGNING_KEY` when set and not empty.
pub fn signing_key(sign: Option<&str>) -> Option<t_minus::trust::SigningKey> {
    sign.map(str::to_string)
        .or_else(|| {
            std::env::var("T_MINUS_SIGNING_KEY")
                .ok()
                .filter(|k| !k.is_empty())
        })
        .map(|key| t_minus::trust::SigningKey::parse(&key))
}
