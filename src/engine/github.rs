//! GitHub deployments gated by a campaign (see [`crate::github`]): made from
//! a template when a delivery asks, decided when the campaign is, and the
//! answer to GitHub claimed and recorded once. Each row is written with a
//! log entry whose subject is the deployment's id: `github-requested` (the
//! whole row as received), `github-reported` and `github-report-failed`
//! (how the answer ended).

use std::sync::Arc;

use chrono::Duration;
use serde_json::{json, Value};
use uuid::Uuid;

use super::apply::{apply_in, audit_campaign};
use super::settle::audit;
use super::Engine;
use crate::audit::AuditAction;
use crate::error::Result;
use crate::github::{
    campaign_name, is_under, DeploymentRequest, GithubDeployment, GithubError, ReportState, Verdict,
};
use crate::manifest::model::GithubTemplate;
use crate::manifest::{DesiredEvent, ValidManifests};
use crate::plan::{compute, ManifestError, PlanOptions};
use crate::state::{EventState, ResponseStatus};
use crate::store::Tx;

/// How long an attempt holds a deployment's answer before another
/// process may try it.
pub const REPORT_LEASE: Duration = Duration::seconds(90);

/// The log entry's detail of a deployment as received: every column it sets.
fn requested_detail(d: &GithubDeployment) -> Value {
    json!({
        "delivery": d.delivery,
        "campaign": d.campaign,
        "template": d.template,
        "repository": d.repository,
        "environment": d.environment,
        "deployment_id": d.deployment_id,
        "ref": d.git_ref,
        "sha": d.sha,
        "run_url": d.run_url,
        "installation_id": d.installation_id,
        "callback_url": d.callback_url,
    })
}

/// The campaign of a template for one deployment: named after both, its
/// events' payloads carrying the deployment under `github`.
fn instance(
    template: &GithubTemplate,
    request: &DeploymentRequest,
    delivery: &str,
) -> crate::manifest::DesiredCampaign {
    let github = request.payload(delivery);
    let mut campaign = template.campaign.clone();
    campaign.name = campaign_name(&template.campaign.name, request, delivery);
    let what = [request.git_ref.as_deref(), request.sha.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    campaign.description = Some(format!(
        "GitHub deployment of {} to {}{}",
        request.repository,
        request.environment,
        if what.is_empty() {
            String::new()
        } else {
            format!(" ({what})")
        }
    ));
    campaign.events = template
        .campaign
        .events
        .iter()
        .map(|e| {
            let mut e: DesiredEvent = (**e).clone();
            e.payload = match e.payload {
                Value::Object(mut map) => {
                    map.insert("github".into(), github.clone());
                    Value::Object(map)
                }
                Value::Null => json!({ "github": github }),
                other => json!({ "value": other, "github": github }),
            };
            Arc::new(e)
        })
        .collect();
    campaign
}

/// What a campaign's events say: approved when all fired, rejected as soon
/// as one was missed or cancelled, `None` while undecided; with the comment
/// sent to GitHub.
fn decide(tx: &mut dyn Tx, campaign: Uuid) -> Result<Option<(Verdict, String)>> {
    let members = tx.campaign_events(campaign)?;
    if members.is_empty() {
        return Ok(Some((
            Verdict::Rejected,
            "t-minus: the deployment's campaign has no events (removed?)".into(),
        )));
    }
    if let Some((_, name, state)) = members
        .iter()
        .find(|(_, _, s)| matches!(s, EventState::Missed | EventState::Cancelled))
    {
        let why = match state {
            EventState::Cancelled => "was cancelled",
            _ => "was missed: its quorum was not reached",
        };
        return Ok(Some((Verdict::Rejected, format!("t-minus: {name} {why}"))));
    }
    if members.iter().all(|(_, _, s)| *s == EventState::Fired) {
        let ids: Vec<Uuid> = members.iter().map(|(id, _, _)| *id).collect();
        let mut parts = Vec::new();
        for event in tx.events_by_id(&ids)? {
            let confirmed: Vec<&str> = event
                .attendees
                .iter()
                .filter(|(_, s)| *s == ResponseStatus::Confirmed)
                .map(|(a, _)| a.as_str())
                .collect();
            let name = event.name.clone().unwrap_or_else(|| event.id.to_string());
            if confirmed.is_empty() {
                parts.push(format!("{name} fired"));
            } else {
                parts.push(format!(
                    "{name} fired (confirmed: {})",
                    confirmed.join(", ")
                ));
            }
        }
        return Ok(Some((
            Verdict::Approved,
            format!("t-minus: quorum reached; {}", parts.join("; ")),
        )));
    }
    Ok(None)
}

/// The pause before attempt `attempts + 1`: 1 s doubled each time, at most
/// ten minutes.
pub fn backoff_after(attempts: u32) -> Duration {
    let seconds = 1i64 << attempts.saturating_sub(1).min(10);
    Duration::seconds(seconds.min(600))
}

impl Engine {
    /// Gates a GitHub deployment: makes the campaign of the template among
    /// `templates` that gates the request's repository and environment, and
    /// records the deployment (delivery `delivery`) to answer GitHub when
    /// the campaign decides. One transaction: the campaign, the row and its
    /// `github-requested` entry land together or not at all.
    ///
    /// Refused, changing nothing, when the callback URL is not under `api`
    /// ([`GithubError::CallbackOutsideApi`]), no template gates the
    /// environment ([`GithubError::UnknownGate`]), or the delivery (or
    /// another for the same deployment) was acted on before
    /// ([`GithubError::Replayed`]).
    pub fn gate_github_deployment(
        &mut self,
        delivery: &str,
        request: &DeploymentRequest,
        templates: &ValidManifests,
        api: &str,
    ) -> std::result::Result<GithubDeployment, ManifestError> {
        if !is_under(api, &request.callback_url) {
            return Err(crate::TMinusError::from(GithubError::CallbackOutsideApi {
                url: request.callback_url.clone(),
                api: api.to_string(),
            })
            .into());
        }
        let template = templates
            .github
            .iter()
            .find(|t| t.gates(&request.repository, &request.environment))
            .ok_or_else(|| {
                crate::TMinusError::from(GithubError::UnknownGate {
                    repository: request.repository.clone(),
                    environment: request.environment.clone(),
                })
            })?;
        let campaign = instance(template, request, delivery);
        let desired = ValidManifests {
            campaigns: vec![campaign.clone()],
            github: Vec::new(),
            sources: templates.sources.clone(),
        };
        let now = self.now();
        let wall = crate::notification::wall_now();
        let mut tx = self.store_mut().write()?;
        tx.lock_store()?;
        let replayed = |campaign: String| {
            crate::TMinusError::from(GithubError::Replayed {
                delivery: delivery.to_string(),
                campaign,
            })
        };
        if let Some(seen) = tx.github_deployment_by_delivery(delivery)? {
            let name = tx
                .campaign(seen.campaign)?
                .map_or_else(|| seen.campaign.to_string(), |c| c.name);
            return Err(replayed(name).into());
        }
        if tx.campaign_by_name(&campaign.name)?.is_some() {
            return Err(replayed(campaign.name).into());
        }
        let options = PlanOptions {
            prune: false,
            now: Some(now),
        };
        let plan = compute(&mut *tx, &desired, &options, now)?;
        apply_in(&mut *tx, &plan, now)?;
        let mut row = tx.campaign_by_name(&campaign.name)?.ok_or_else(|| {
            crate::TMinusError::CampaignNotFound {
                reference: campaign.name.clone(),
            }
        })?;
        // Not managed by a manifest: `apply --prune` of the templates'
        // manifests leaves it alone.
        row.managed = false;
        tx.update_campaign(&row)?;
        let signers = tx.scope_signers(row.id)?.map(|s| s.digest);
        audit_campaign(
            &mut *tx,
            &row,
            signers.as_deref(),
            AuditAction::CampaignUpdated,
            now,
        )?;
        let deployment = GithubDeployment {
            id: Uuid::new_v4(),
            delivery: delivery.to_string(),
            campaign: row.id,
            template: template.campaign.name.clone(),
            repository: request.repository.clone(),
            environment: request.environment.clone(),
            deployment_id: request.deployment_id,
            git_ref: request.git_ref.clone(),
            sha: request.sha.clone(),
            run_url: request.run_url.clone(),
            installation_id: request.installation_id,
            callback_url: request.callback_url.clone(),
            received_at: now,
            state: ReportState::Waiting,
            verdict: None,
            comment: None,
            attempts: 0,
            next_at: wall,
            finished_at: None,
            last_error: None,
        };
        tx.insert_github_deployment(&deployment)?;
        let detail = requested_detail(&deployment);
        audit(
            &mut *tx,
            deployment.id,
            now,
            now,
            None,
            AuditAction::GithubRequested,
            detail,
        )?;
        tx.commit()?;
        Ok(deployment)
    }

    /// Claims up to `limit` GitHub deployments whose campaign has decided
    /// and whose answer is due: each gets its verdict and comment (fixed
    /// by the first claim), a lease of [`REPORT_LEASE`] and its attempt
    /// counted, in one write transaction. Deployments still undecided are
    /// left as they are (read without the write lock first).
    pub fn claim_github_reports(&mut self, limit: usize) -> Result<Vec<GithubDeployment>> {
        let wall = crate::notification::wall_now();
        let decided = self.read(|tx| {
            let mut decided = Vec::new();
            for d in tx.due_github_deployments(wall, limit)? {
                if d.verdict.is_some() || decide(tx, d.campaign)?.is_some() {
                    decided.push(d.id);
                }
            }
            Ok(decided)
        })?;
        if decided.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|tx| {
            let mut claimed = Vec::new();
            for id in &decided {
                let Some(mut d) = tx.github_deployment(*id)? else {
                    continue;
                };
                if d.state != ReportState::Waiting || d.next_at > wall {
                    continue;
                }
                if d.verdict.is_none() {
                    let Some((verdict, comment)) = decide(tx, d.campaign)? else {
                        continue;
                    };
                    d.verdict = Some(verdict);
                    d.comment = Some(comment);
                }
                d.attempts += 1;
                d.next_at = wall + REPORT_LEASE;
                tx.update_github_deployment(&d)?;
                claimed.push(d);
            }
            Ok(claimed)
        })
    }

    /// Records how an attempt at a claimed deployment's answer went:
    /// `None`, reported (`github-reported`); a failure, retried after
    /// [`backoff_after`] unless it is `permanent` or the last of
    /// [`crate::github::MAX_ATTEMPTS`] (then `github-report-failed`). A
    /// deployment another process finished meanwhile is left as it is.
    pub fn record_github_report(
        &mut self,
        claimed: &GithubDeployment,
        failure: Option<(&str, bool)>,
    ) -> Result<GithubDeployment> {
        let now = self.now();
        let wall = crate::notification::wall_now();
        self.write(|tx| {
            let Some(mut d) = tx.github_deployment(claimed.id)? else {
                return Ok(claimed.clone());
            };
            if d.state != ReportState::Waiting {
                return Ok(d);
            }
            let mut detail = json!({
                "state": d.verdict.map(Verdict::as_str),
                "comment": d.comment,
                "attempts": d.attempts,
                "callback_url": d.callback_url,
            });
            match failure {
                None => {
                    d.state = ReportState::Reported;
                    d.finished_at = Some(wall);
                    d.last_error = None;
                    audit(
                        tx,
                        d.id,
                        now,
                        now,
                        None,
                        AuditAction::GithubReported,
                        detail,
                    )?;
                }
                Some((error, permanent)) => {
                    d.last_error = Some(error.to_string());
                    if permanent || d.attempts >= crate::github::MAX_ATTEMPTS {
                        d.state = ReportState::Failed;
                        d.finished_at = Some(wall);
                        detail["error"] = json!(error);
                        let action = AuditAction::GithubReportFailed;
                        audit(tx, d.id, now, now, None, action, detail)?;
                    } else {
                        d.next_at = wall + backoff_after(d.attempts);
                    }
                }
            }
            tx.update_github_deployment(&d)?;
            Ok(d)
        })
    }

    /// The GitHub deployment recorded for delivery `delivery`, if any.
    pub fn github_deployment_by_delivery(
        &self,
        delivery: &str,
    ) -> Result<Option<GithubDeployment>> {
        self.read(|tx| tx.github_deployment_by_delivery(delivery))
    }
}
