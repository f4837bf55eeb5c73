//! `delegate`, `delegations` and `undelegate`: who may answer for whom,
//! on the store or through a t-minus service (`--db http://…`, as the
//! token's agent).

use std::process::ExitCode;

use t_minus::delegation::DelegationState;
use t_minus::output::Delegation;
use t_minus::time_spec::format_time;
use t_minus::trust::grant::DelegationMessage;
use t_minus::trust::{Signers, SigningKey};
use t_minus::{AgentId, TMinusError, TimeSpec};

use super::args::{DelegateArgs, DelegationsArgs, UndelegateArgs};
use super::context::Context;
use super::error::CliError;
use super::json;
use super::remote::{encode, Client};

impl DelegateArgs {
    /// `delegate FROM TO [--until TIME] [--campaign C] [--sign KEY]`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let from = AgentId::parse(&self.from)?;
        let to = AgentId::parse(&self.to)?;
        if let Some(client) = cx.remote()? {
            let made = self.remote(&client, &from, &to)?;
            return print_made(cx, &made);
        }
        let mut s = cx.open()?;
        let now = s.engine.now();
        let until = match &self.until {
            Some(text) => Some(TimeSpec::parse(text)?.resolve(now)?),
            None => None,
        };
        let campaign = self.campaign.as_deref();
        let made = match &self.sign {
            Some(key) => {
                let key = SigningKey::parse(key);
                s.engine
                    .delegate_with_key(&from, &to, until, campaign, &key)?
            }
            None => s.engine.delegate(&from, &to, until, campaign)?,
        };
        print_made(cx, &Delegation::new(&made, now))
    }

    /// `delegate` through a t-minus service: `POST /v1/delegations`, with
    /// the delegation message signed here when `--sign` is given.
    fn remote(
        &self,
        client: &Client,
        from: &AgentId,
        to: &AgentId,
    ) -> Result<Delegation, CliError> {
        let Some(key) = &self.sign else {
            let body = serde_json::json!({
                "from": from.as_str(),
                "to": to.as_str(),
                "until": self.until,
                "campaign": self.campaign,
            });
            return Ok(client
                .post_json::<Delegation>("/v1/delegations", &body)?
                .value);
        };
        let key = SigningKey::parse(key);
        let now = super::context::pinned_now()?.unwrap_or_else(chrono::Utc::now);
        let until = match &self.until {
            Some(text) => Some(TimeSpec::parse(text)?.resolve(now)?),
            None => None,
        };
        // The campaign's id goes into the message; through the ssh-agent,
        // the key is the one the campaign's key set allows for FROM (the
        // set of its events: the service shows it for each).
        let (campaign, signers) = match &self.campaign {
            Some(name) => {
                let path = format!("/v1/campaigns/{}", encode(name));
                let shown = client.get::<t_minus::output::CampaignStatus>(&path)?.value;
                let signers = match (&key, shown.events.first()) {
                    (SigningKey::Agent, Some(event)) => {
                        super::remote::signers(client, event.id)?.unwrap_or_default()
                    }
                    _ => Signers::default(),
                };
                (Some(shown.campaign.id), signers)
            }
            None => (None, Signers::default()),
        };
        let message = DelegationMessage {
            from: from.clone(),
            to: to.clone(),
            campaign,
            until,
            time: now,
            nonce: uuid::Uuid::new_v4(),
        };
        let bytes = message.to_bytes();
        let signature = key
            .sign(&signers, from, &bytes, now)
            .map_err(TMinusError::from)?;
        let body = serde_json::json!({
            "message": message.render(),
            "signature": signature.to_armored(),
        });
        Ok(client
            .post_json::<Delegation>("/v1/delegations", &body)?
            .value)
    }
}

/// Prints a delegation just made.
fn print_made(cx: &Context, made: &Delegation) -> Result<ExitCode, CliError> {
    if cx.json() {
        json::print(made);
    } else {
        println!(
            "🤝 {} may answer for {} ({}); delegation {}.",
            made.to,
            made.from,
            scope(made),
            made.id
        );
    }
    Ok(ExitCode::SUCCESS)
}

impl DelegationsArgs {
    /// `delegations [--all]`.
    pub fn run(&self, cx: &Context) -> Result<ExitCode, CliError> {
        let listed: Vec<Delegation> = match cx.remote()? {
            Some(client) => {
                let path = if self.all {
                    "/v1/delegations?all=true"
                } else {
                    "/v1/delegations"
                };
                client.get::<Vec<Delegation>>(path)?.value
            }
            None => {
                let s = cx.open()?;
                let now = s.engine.now();
                s.engine
                    .delegations()?
                    .iter()
                    .filter(|d| self.all || d.state(now) == DelegationState::Active)
                    .map(|d| Delegation::new(d, now))
                    .collect()
            }
        };
        if cx.json() {
            json::print(&listed);
            return Ok(ExitCode::SUCCESS);
        }
        if listed.is_empty() {
            println!("No delegations in force. (`t-minus delegate FROM TO` makes one.)");
        }
        for d in &listed {
            let state = match d.state {
                DelegationState::Revoked => format!(
                    "revoked {}",
                    d.revoked_at.map(format_time).unwrap_or_default()
                ),
                other => other.as_str().to_string(),
            };
            let signed = if d.signed { ", signed" } else { "" };
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
        let revoked = match cx.remote()? {
            Some(client) => {
                let path = format!("/v1/delegations/{}/revoke", encode(&self.delegation));
                client
                    .post_json::<Delegation>(&path, &serde_json::json!({}))?
                    .value
            }
            None => {
                let mut s = cx.open()?;
                let now = s.engine.now();
                Delegation::new(&s.engine.undelegate(&self.delegation)?, now)
            }
        };
        if cx.json() {
            json::print(&revoked);
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
    let place = match &d.campaign {
        Some(name) => format!("campaign {name}"),
        None => "every event".to_string(),
    };
    let until = match d.until {
        Some(until) => format!("until {}", format_time(until)),
        None => "until revoked".to_string(),
    };
    format!("{place}, {until}")
}
