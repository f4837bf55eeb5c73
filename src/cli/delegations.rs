//! `delegate`, `delegations` and `undelegate`: who may answer for whom.

use std::process::ExitCode;

use t_minus::delegation::{Delegation, DelegationState};
use t_minus::time_spec::format_time;
use t_minus::{AgentId, TimeSpec};

use super::args::{DelegateArgs, DelegationsArgs, UndelegateArgs};
use super::context::Context;
use super::error::CliError;
use super::json;

impl DelegateArgs {
    /// `delegate FROM TO [--until TIME] [--campaign C] [--sign KEY]`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let from = AgentId::parse(&self.from)?;
        let to = AgentId::parse(&self.to)?;
        let mut s = cx.open()?;
        let now = s.engine.now();
        let until = match &self.until {
            Some(text) => Some(TimeSpec::parse(text)?.resolve(now)?),
            None => None,
        };
        let campaign = self.campaign.as_deref();
        let made = match &self.sign {
            Some(key) => {
                let key = t_minus::trust::SigningKey::parse(key);
                s.engine
                    .delegate_with_key(&from, &to, until, campaign, &key)?
            }
            None => s.engine.delegate(&from, &to, until, campaign)?,
        };
        if cx.json() {
            json::print(&t_minus::output::Delegation::new(&made, now));
        } else {
            println!(
                "🤝 {} may answer for {} ({}); delegation {}.",
                made.to,
                made.from,
                scope(&made),
                made.id
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

impl DelegationsArgs {
    /// `delegations [--all]`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let s = cx.open()?;
        let now = s.engine.now();
        let listed: Vec<Delegation> = s
            .engine
            .delegations()?
            .into_iter()
            .filter(|d| self.all || d.state(now) == DelegationState::Active)
            .collect();
        if cx.json() {
            let out: Vec<t_minus::output::Delegation> = listed
                .iter()
                .map(|d| t_minus::output::Delegation::new(d, now))
                .collect();
            json::print(&out);
            return Ok(ExitCode::SUCCESS);
        }
        if listed.is_empty() {
            println!("No delegations in force. (`t-minus delegate FROM TO` makes one.)");
        }
        for d in &listed {
            let state = match d.state(now) {
                DelegationState::Active => "active".to_string(),
                DelegationState::Expired => "expired".to_string(),
                DelegationState::Revoked => format!(
                    "revoked {}",
                    d.revoked_at.map(format_time).unwrap_or_default()
                ),
            };
            let signed = if d.signed.is_some() { ", signed" } else { "" };
            println!(
                "{}  {} → {}  {}{signed}  {state}",
                d.id,
                d.from,
                d.to,
                scope(d)
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

impl UndelegateArgs {
    /// `undelegate ID`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let mut s = cx.open()?;
        let now = s.engine.now();
        let revoked = s.engine.undelegate(&self.delegation)?;
        if cx.json() {
            json::print(&t_minus::output::Delegation::new(&revoked, now));
        } else {
            println!(
                "Revoked delegation {}: {} no longer answers for {}.",
                revoked.id, revoked.to, revoked.from
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Where and how long a delegation holds: `every event` or `campaign C`,
/// and `until T` or `until revoked`.
fn scope(d: &Delegation) -> String {
    let place = match (&d.campaign_name, d.campaign) {
        (Some(name), _) => format!("campaign {name}"),
        (None, Some(id)) => format!("campaign {id}"),
        (None, None) => "every event".to_string(),
    };
    let until = match d.until {
        Some(until) => format!("until {}", format_time(until)),
        None => "until revoked".to_string(),
    };
    format!("{place}, {until}")
}
