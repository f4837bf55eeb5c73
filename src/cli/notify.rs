//! Notification commands and helpers: `notify test`, delivery after `tick`,
//! the background deliverer of `run` and `wait`, and the deliveries `status`
//! shows.

use std::process::ExitCode;

use t_minus::duration::parse_duration;
use t_minus::notify::{
    DeliverOptions, Deliverer, Delivery, DeliveryState, Trigger, PUBLIC_URL_VAR,
};
use t_minus::output::NotifyTestResult;
use t_minus::store::Store;
use t_minus::time_spec::format_time;
use t_minus::{Engine, Result};

use super::args::{Cli, NotifyCommand, NotifyTestArgs};
use super::context::Context;
use super::error::CliError;
use super::json;

/// Variable that sets the first retry pause (default 1 s; tests shorten it).
pub const BACKOFF_VAR: &str = "T_MINUS_NOTIFY_BACKOFF";

/// Variable that sets how many hooks run at once (default 4, 1 to 64).
pub const CONCURRENCY_VAR: &str = "T_MINUS_NOTIFY_CONCURRENCY";

/// Delivery settings: the defaults, with the backoff from
/// [`BACKOFF_VAR`], the concurrency from [`CONCURRENCY_VAR`] and the public
/// URL from [`PUBLIC_URL_VAR`] when set.
pub fn options() -> Result<DeliverOptions> {
    let mut options = DeliverOptions {
        public_url: public_url()?,
        ..DeliverOptions::default()
    };
    if let Ok(text) = std::env::var(BACKOFF_VAR) {
        if !text.trim().is_empty() {
            let d = parse_duration(&text)?;
            options.backoff = d.to_std().unwrap_or(options.backoff);
        }
    }
    if let Ok(text) = std::env::var(CONCURRENCY_VAR) {
        if !text.trim().is_empty() {
            options.concurrency = match text.trim().parse::<usize>() {
                Ok(n) if (1..=64).contains(&n) => n,
                _ => {
                    return Err(t_minus::TMinusError::InvalidNotify {
                        reason: format!("{CONCURRENCY_VAR}={text:?} is not a number from 1 to 64"),
                        help: "set it to how many hooks may run at once, e.g. 4".into(),
                    })
                }
            };
        }
    }
    Ok(options)
}

/// The public URL [`PUBLIC_URL_VAR`] gives, checked: an `http(s)://` URL.
pub fn public_url() -> Result<Option<String>> {
    let Ok(text) = std::env::var(PUBLIC_URL_VAR) else {
        return Ok(None);
    };
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let lower = text.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://"))
        || text.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(t_minus::TMinusError::InvalidNotify {
            reason: format!("{PUBLIC_URL_VAR}={text:?} is not an http(s) URL"),
            help:
                "set it to the URL people reach `t-minus serve` at, e.g. https://tminus.example.com"
                    .into(),
        });
    }
    Ok(Some(text.to_string()))
}

/// A second connection to the store, for the background deliverer.
pub fn open_store(cli: &Cli) -> Result<Box<dyn Store>> {
    match cli.db.to_str() {
        Some(url) if t_minus::store::is_server_url(url) => t_minus::store::open(url),
        _ => Ok(Box::new(t_minus::store::sqlite::SqliteStore::open_again(
            &cli.db,
        )?)),
    }
}

/// Starts delivering in the background for `run` and `wait`, unless
/// `--no-notify`.
pub fn start(cli: &Cli, no_notify: bool) -> Result<Option<Deliverer>> {
    if no_notify {
        return Ok(None);
    }
    Ok(Some(Deliverer::start(open_store(cli)?, options()?)))
}

/// Delivers what `tick` queued (and anything else due), then returns.
pub fn after_tick(engine: &mut Engine) -> Result<Vec<t_minus::notify::Outcome>> {
    engine.deliver_due(&options()?)
}

/// One delivery as a line of `status`.
pub fn delivery_line(d: &Delivery) -> String {
    let state = match d.state {
        DeliveryState::Pending if d.attempts == 0 => "queued".to_string(),
        DeliveryState::Pending => format!(
            "retrying (attempt {} of {}, next at {})",
            d.attempts + 1,
            d.rule.attempts,
            format_time(d.next_at)
        ),
        DeliveryState::Failed => format!("failed after {} attempt(s)", d.attempts),
        DeliveryState::Delivered => "delivered".to_string(),
    };
    let mut line = format!("  🔔 {} → {}: {state}", d.on, d.rule.hook.describe());
    if let Some(e) = &d.last_error {
        line.push_str(&format!(" — {e}"));
    }
    line
}

/// The deliveries `status EVENT` shows: pending and failed ones.
pub fn open_deliveries(engine: &mut Engine, id: uuid::Uuid) -> Result<Vec<Delivery>> {
    Ok(engine
        .deliveries(id)?
        .into_iter()
        .filter(|d| d.state != DeliveryState::Delivered)
        .collect())
}

impl NotifyCommand {
    /// `notify …`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        match self {
            NotifyCommand::Test(args) => args.run(cx),
        }
    }
}

impl NotifyTestArgs {
    /// `notify test EVENT --on WHAT`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let mut s = cx.open()?;
        Ok(test(&mut s.engine, &self.event, &self.on, cx.json())?)
    }
}

/// `notify test EVENT --on WHAT`.
fn test(engine: &mut Engine, event: &str, on: &str, as_json: bool) -> Result<ExitCode> {
    let id = engine.resolve_event(event)?;
    let on: Trigger = on.trim().parse()?;
    let results = engine.notify_test(id, on, public_url()?.as_deref())?;
    let ok = results.iter().all(|(_, f)| f.is_none());
    if as_json {
        let list: Vec<NotifyTestResult> = results
            .iter()
            .map(|(d, f)| NotifyTestResult::new(d, f.as_ref()))
            .collect();
        json::print(&list);
    } else if results.is_empty() {
        println!("The event has no notification rules.");
    } else {
        for (d, f) in &results {
            match f {
                None => println!(
                    "✅ {} → {}: delivered ({})",
                    d.on,
                    d.rule.hook.describe(),
                    d.key
                ),
                Some(f) => println!("❌ {} → {}: {}", d.on, d.rule.hook.describe(), f.message()),
            }
        }
    }
    Ok(if ok && !results.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
