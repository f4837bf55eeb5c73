//! The tables beside events and campaigns whose rows the log explains:
//! each is replayed from its entries while `verify` reads the chain, then
//! compared row by row with what the store holds.
//!
//! **Adding a table** (a new table of the engine's, as chat links were):
//!
//! 1. write its rows only through the engine, each change in the same
//!    transaction as an entry whose subject (`event` column) is the row's
//!    id and whose detail records what it set (secrets as their digest);
//! 2. implement [`ReplayedTable`] for it: [`ReplayedTable::follow`] turns
//!    its entries into the record of each row, [`ReplayedTable::stored`]
//!    reads the rows into the same records (a `Tx` method that reads the
//!    whole table, in any order);
//! 3. list it in [`tables`].
//!
//! `verify` then reports every member that disagrees as a
//! [`RowMismatch`] with the table's subject (`delegation`, `token`, …), a
//! row without a log and a logged row that is gone as `row`, exactly as it
//! does for events. A test edits a row with SQL on both stores and expects
//! the member named (see `tests/trust_replay.rs`).

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};
use uuid::Uuid;

use super::RowMismatch;
use crate::audit::{AuditAction, AuditEntry};
use crate::error::Result;
use crate::store::{StoredLink, Tx};
use crate::trust::record::{differences, time_value, Record};
use crate::trust::signers::digest_of_text;

/// A table whose every row is one subject of the log, replayed from the
/// entries about it and compared with the stored rows by `verify` (see the
/// module documentation for how to add one).
pub(crate) trait ReplayedTable {
    /// The subject reports name (`delegation`, `token`).
    fn subject(&self) -> &'static str;

    /// Takes in the next entry of the whole chain, in chain order: entries
    /// about other subjects come by too and are ignored (or read for what
    /// they say about this table's rows, as a campaign's name).
    fn follow(&mut self, link: &StoredLink);

    /// The record of every row the log says exists, by id. A member a
    /// record lacks is one the log does not explain (its entry was written
    /// before it recorded that member) and is not compared.
    fn logged(&mut self) -> BTreeMap<Uuid, Record>;

    /// The record of every stored row, by id.
    fn stored(&self, tx: &mut dyn Tx) -> Result<BTreeMap<Uuid, Record>>;
}

/// Every table replayed beside events and campaigns, in the order their
/// mismatches are reported. A new table is one more line here.
pub(crate) fn tables() -> Vec<Box<dyn ReplayedTable>> {
    vec![
        Box::<ChatLinks>::default(),
        Box::<Delegations>::default(),
        Box::<Tokens>::default(),
    ]
}

/// Every member of `stored` that disagrees with `logged`, for the rows of
/// one table: a row on one side only is a `row` mismatch, and members the
/// logged record lacks are not compared.
pub(crate) fn compare(
    subject: &'static str,
    mut logged: BTreeMap<Uuid, Record>,
    stored: BTreeMap<Uuid, Record>,
    out: &mut Vec<RowMismatch>,
) {
    let presence = |id: Uuid, stored: bool| RowMismatch {
        subject,
        id,
        field: "row".into(),
        stored: json!(if stored { "present" } else { "absent" }),
        logged: json!(if stored { "absent" } else { "present" }),
    };
    for (id, mut row) in stored {
        let Some(record) = logged.remove(&id) else {
            out.push(presence(id, true));
            continue;
        };
        row.retain(|member, _| record.contains_key(member));
        out.extend(differences(&row, &record).into_iter().map(|d| RowMismatch {
            subject,
            id,
            field: d.field,
            stored: d.stored,
            logged: d.logged,
        }));
    }
    out.extend(logged.into_keys().map(|id| presence(id, false)));
}

/// A time of a detail (`format_time`'s RFC 3339) as a record's member.
fn detail_time(value: &Value) -> Value {
    let parsed = value
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    match parsed {
        Some(t) => time_value(Some(t)),
        None => value.clone(),
    }
}

/// The digest of a text that may be secret or long, as recorded.
fn text_digest(text: Option<&str>) -> Value {
    text.map_or(Value::Null, |t| Value::String(digest_of_text(t)))
}

/// The chat links table: `chat-linked` makes a row (its detail names the
/// chat, the account and the agent), `chat-unlinked` removes it.
///
/// A chat link's record: `chat`, `user`, `agent`.
#[derive(Default)]
struct ChatLinks(BTreeMap<Uuid, Record>);

impl ReplayedTable for ChatLinks {
    fn subject(&self) -> &'static str {
        "chat-link"
    }

    fn follow(&mut self, link: &StoredLink) {
        let e = &link.entry;
        match e.action {
            AuditAction::ChatLinked => {
                let record = ["chat", "user", "agent"]
                    .into_iter()
                    .map(|member| (member.to_string(), e.detail[member].clone()))
                    .collect();
                self.0.insert(e.event, record);
            }
            AuditAction::ChatUnlinked => {
                self.0.remove(&e.event);
            }
            _ => {}
        }
    }

    fn logged(&mut self) -> BTreeMap<Uuid, Record> {
        std::mem::take(&mut self.0)
    }

    fn stored(&self, tx: &mut dyn Tx) -> Result<BTreeMap<Uuid, Record>> {
        Ok(tx
            .chat_links()?
            .into_iter()
            .map(|link| {
                let record = [
                    ("chat", json!(link.chat.as_str())),
                    ("user", json!(link.user)),
                    ("agent", json!(link.agent.as_str())),
                ]
                .into_iter()
                .map(|(member, value)| (member.to_string(), value))
                .collect();
                (link.id, record)
            })
            .collect())
    }
}

/// The delegations table: `delegated` makes a row (FROM is the entry's
/// agent, the rest its detail, the signed delegation its message and
/// signature), `undelegated` sets its `revoked_at`.
///
/// A delegation's record: `from`, `to`, `campaign` (the campaign's id, or
/// `null` for every event), `created_at`, `until`, `revoked_at`, and
/// `message` and `signature` (the signed delegation's, as their digest, or
/// `null`).
#[derive(Default)]
struct Delegations {
    rows: BTreeMap<Uuid, Record>,
    /// Each campaign's name as the log last set it, for `delegated` entries
    /// that name their campaign only by its name.
    campaigns: HashMap<String, Uuid>,
}

impl ReplayedTable for Delegations {
    fn subject(&self) -> &'static str {
        "delegation"
    }

    fn follow(&mut self, link: &StoredLink) {
        let e = &link.entry;
        match e.action {
            AuditAction::Delegated => {
                let campaign = match (e.detail.get("campaign_id"), e.detail.get("campaign")) {
                    (Some(id), _) => id.clone(),
                    (None, Some(Value::String(name))) => self
                        .campaigns
                        .get(name)
                        .map_or(Value::Null, |id| json!(id.to_string())),
                    _ => Value::Null,
                };
                let mut r = Record::new();
                r.insert("from".into(), json!(e.agent.as_ref().map(|a| a.as_str())));
                r.insert("to".into(), e.detail.get("to").cloned().unwrap_or_default());
                r.insert("campaign".into(), campaign);
                r.insert("created_at".into(), time_value(Some(e.at)));
                r.insert(
                    "until".into(),
                    detail_time(e.detail.get("until").unwrap_or(&Value::Null)),
                );
                r.insert("revoked_at".into(), Value::Null);
                r.insert("message".into(), text_digest(link.message.as_deref()));
                r.insert("signature".into(), text_digest(link.signature.as_deref()));
                self.rows.insert(e.event, r);
            }
            AuditAction::Undelegated => {
                if let Some(r) = self.rows.get_mut(&e.event) {
                    r.insert("revoked_at".into(), time_value(Some(e.at)));
                }
            }
            action if action.is_about_campaign() => self.follow_campaign(e),
            _ => {}
        }
    }

    fn logged(&mut self) -> BTreeMap<Uuid, Record> {
        std::mem::take(&mut self.rows)
    }

    fn stored(&self, tx: &mut dyn Tx) -> Result<BTreeMap<Uuid, Record>> {
        Ok(tx
            .delegations()?
            .into_iter()
            .map(|d| {
                let signed = d.signed.as_ref();
                let mut r = Record::new();
                r.insert("from".into(), json!(d.from.as_str()));
                r.insert("to".into(), json!(d.to.as_str()));
                r.insert(
                    "campaign".into(),
                    d.campaign.map_or(Value::Null, |c| json!(c.to_string())),
                );
                r.insert("created_at".into(), time_value(Some(d.created_at)));
                r.insert("until".into(), time_value(d.until));
                r.insert("revoked_at".into(), time_value(d.revoked_at));
                r.insert(
                    "message".into(),
                    text_digest(signed.map(|s| s.message.as_str())),
                );
                r.insert(
                    "signature".into(),
                    text_digest(signed.map(|s| s.signature.as_str())),
                );
                (d.id, r)
            })
            .collect())
    }
}

impl Delegations {
    /// Keeps the name a campaign entry's `record` or `set` gives it.
    fn follow_campaign(&mut self, e: &AuditEntry) {
        let name = ["record", "set"]
            .iter()
            .find_map(|member| e.detail.get(member)?.get("name")?.as_str())
            .or_else(|| e.detail.get("name")?.as_str());
        if let (Some(name), false) = (name, e.action == AuditAction::CampaignRemoved) {
            self.campaigns.retain(|_, id| *id != e.event);
            self.campaigns.insert(name.to_string(), e.event);
        }
    }
}

/// The tokens table: `token-created` makes a row (the agent is the entry's,
/// the role, expiry and the digest of the secret's hash its detail's),
/// `token-revoked` sets its `revoked_at`.
///
/// A token's record: `agent`, `role`, `created_at`, `expires_at`,
/// `revoked_at`, and `hash` (the digest of the stored hash of its secret;
/// not compared for a token whose `token-created` entry predates it).
#[derive(Default)]
struct Tokens {
    rows: BTreeMap<Uuid, Record>,
}

impl ReplayedTable for Tokens {
    fn subject(&self) -> &'static str {
        "token"
    }

    fn follow(&mut self, link: &StoredLink) {
        let e = &link.entry;
        match e.action {
            AuditAction::TokenCreated => {
                let mut r = Record::new();
                r.insert("agent".into(), json!(e.agent.as_ref().map(|a| a.as_str())));
                r.insert(
                    "role".into(),
                    e.detail.get("role").cloned().unwrap_or_default(),
                );
                r.insert("created_at".into(), time_value(Some(e.at)));
                r.insert(
                    "expires_at".into(),
                    detail_time(e.detail.get("expires_at").unwrap_or(&Value::Null)),
                );
                r.insert("revoked_at".into(), Value::Null);
                if let Some(hash) = e.detail.get("hash_digest") {
                    r.insert("hash".into(), hash.clone());
                }
                self.rows.insert(e.event, r);
            }
            AuditAction::TokenRevoked => {
                if let Some(r) = self.rows.get_mut(&e.event) {
                    r.insert("revoked_at".into(), time_value(Some(e.at)));
                }
            }
            _ => {}
        }
    }

    fn logged(&mut self) -> BTreeMap<Uuid, Record> {
        std::mem::take(&mut self.rows)
    }

    fn stored(&self, tx: &mut dyn Tx) -> Result<BTreeMap<Uuid, Record>> {
        Ok(tx
            .stored_tokens()?
            .into_iter()
            .map(|(t, hash)| {
                let mut r = Record::new();
                r.insert("agent".into(), json!(t.agent));
                r.insert("role".into(), json!(t.role.as_str()));
                r.insert("created_at".into(), time_value(Some(t.created_at)));
                r.insert("expires_at".into(), time_value(t.expires_at));
                r.insert("revoked_at".into(), time_value(t.revoked_at));
                r.insert("hash".into(), json!(token_hash_digest(&hash)));
                (t.id, r)
            })
            .collect())
    }
}

/// What a `token-created` entry records of the stored hash of the token's
/// secret: its digest (the hash itself stays in the tokens table only).
pub(crate) fn token_hash_digest(hash: &crate::token::TokenHash) -> String {
    digest_of_text(&hash.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(v: Value) -> Record {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn members_the_log_does_not_record_are_not_compared_and_rows_on_one_side_are_named() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        let c = Uuid::from_u128(3);
        let logged = BTreeMap::from([
            (a, rec(json!({"role": "agent"}))),
            (b, rec(json!({"role": "reader"}))),
        ]);
        let stored = BTreeMap::from([
            (a, rec(json!({"role": "operator", "hash": "sha256:x"}))),
            (c, rec(json!({"role": "reader"}))),
        ]);
        let mut out = Vec::new();
        compare("token", logged, stored, &mut out);
        let got: Vec<(Uuid, &str, Value, Value)> = out
            .iter()
            .map(|m| (m.id, m.field.as_str(), m.stored.clone(), m.logged.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (a, "role", json!("operator"), json!("agent")),
                (c, "row", json!("present"), json!("absent")),
                (b, "row", json!("absent"), json!("present")),
            ]
        );
    }

    #[test]
    fn a_detail_time_is_recorded_with_milliseconds() {
        assert_eq!(
            detail_time(&json!("2026-01-01T00:00:00Z")),
            json!("2026-01-01T00:00:00.000Z")
        );
        assert_eq!(detail_time(&Value::Null), Value::Null);
    }
}
