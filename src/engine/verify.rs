//! Verifying the tamper-evident audit log.

mod tables;

pub(crate) use tables::token_hash_digest;

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::Engine;
use crate::agent::AgentId;
use crate::audit::{AuditAction, AuditEntry};
use crate::error::Result;
use crate::store::{campaign_record, RawLink, StoredLink, StoredState, Tx};
use crate::trust::chain::{ChainHash, ChainLink, ChainVerifier};
use crate::trust::framing::{canonical_json, canonical_object_text};
use crate::trust::message::{Answer, AnswerMessage};
use crate::trust::record::{
    apply_event_entry, changes_record, differences, parse_record, record_text, Record,
};
use crate::trust::sign::{verify_signature, SshSignature};
use crate::trust::signers::{digest_of_text, Signers};
use crate::trust::TrustError;

use super::verify_passkeys::{stored_rows, LoggedPasskeys};

/// Entries read per store round trip while verifying.
const BATCH: usize = 10_000;

/// What [`Engine::verify_report`] checked: an intact chain with valid
/// signatures, and every stored row compared with the record the log
/// implies.
#[derive(Debug, Clone, PartialEq)]
pub struct LogVerification {
    /// How many entries were checked.
    pub entries: u64,
    /// How many events' states, answers and signatures were checked.
    pub events: u64,
    /// How many signed answers were verified.
    pub signatures: u64,
    /// How many events were fired by a break-glass.
    pub breakglass: u64,
    /// The hash of the last entry (64 zeros for an empty log): keep it to
    /// prove later, with `since`, that the log was only appended to.
    pub head: ChainHash,
    /// Every stored field that disagrees with the log, sorted by subject,
    /// id and field; empty when every row is explained.
    pub mismatches: Vec<RowMismatch>,
}

/// A stored field of an event, a campaign or a row of another table the
/// log explains (a delegation, a token) that disagrees with what its log
/// implies (see [`crate::trust::record`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RowMismatch {
    /// `event`, `campaign`, `chat-link`, `delegation`, `token`, `passkey`
    /// or `invitation`.
    pub subject: &'static str,
    /// The event's, campaign's, chat link's, delegation's, token's,
    /// passkey's or invitation's id.
    pub id: Uuid,
    /// The field, as the record names it (`quorum`, `answers.bob`, …);
    /// `row` when the row itself is there without a log or gone while its
    /// log says it exists.
    pub field: String,
    /// The stored value (`null` when absent; for `row`, `present` or
    /// `absent`).
    pub stored: serde_json::Value,
    /// The value the log implies (`null` when absent; for `row`, `present`
    /// or `absent`).
    pub logged: serde_json::Value,
}

impl std::fmt::Display for RowMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {} is stored as {} but the log says {}",
            self.subject, self.id, self.field, self.stored, self.logged
        )
    }
}

impl Engine {
    /// Verifies the whole store: see [`Engine::verify_log_of`].
    pub fn verify_log(&self, since: Option<ChainHash>) -> Result<LogVerification> {
        self.verify_log_of(since, None)
    }

    /// [`Engine::verify_report`], failing with [`TrustError::StateMismatch`]
    /// (naming the first field, and how many more disagree) when a stored
    /// row disagrees with the log.
    pub fn verify_log_of(
        &self,
        since: Option<ChainHash>,
        scope: Option<&[Uuid]>,
    ) -> Result<LogVerification> {
        let report = self.verify_report(since, scope)?;
        if let Some(first) = report.mismatches.first() {
            let more = report.mismatches.len() - 1;
            let reason = format!(
                "{} is stored as {} but the log says {}{}",
                first.field,
                first.stored,
                first.logged,
                if more > 0 {
                    format!(" (and {more} more fields disagree)")
                } else {
                    String::new()
                }
            );
            return Err(TrustError::StateMismatch {
                event: format!(
                    "{}{}",
                    match first.subject {
                        "event" => String::new(),
                        "chat-link" => "chat link ".to_string(),
                        other => format!("{other} "),
                    },
                    first.id
                ),
                reason,
            }
            .into());
        }
        Ok(report)
    }

    /// Recomputes the audit chain of the whole store in commit order, in one
    /// read transaction, reading the log once, and replays it into the
    /// record of every event and campaign it implies (see
    /// [`crate::trust::record`]). With `since` (a head printed earlier), also
    /// requires that head to be in the chain; the replay still starts at the
    /// first entry, so a row changed before or after that head is caught
    /// alike. Then compares every stored event and campaign (or only the
    /// events and campaigns in `scope`), field by field, with its replayed
    /// record (each disagreement is a [`RowMismatch`] of the report), and,
    /// without `scope`, every row of the other tables the log explains
    /// (delegations, tokens: see `tables::tables`, where a new table is
    /// added), and
    /// checks every signed answer's signature against the key set its log
    /// says was in force. Fails with [`TrustError::ChainBroken`] or
    /// [`TrustError::ChainColumn`] at the first entry that disagrees,
    /// [`TrustError::HeadNotFound`], or [`TrustError::SignedEntry`] naming
    /// the event and entry.
    ///
    /// The chain is always checked whole: an entry's hash covers every entry
    /// before it, whatever event they belong to.
    pub fn verify_report(
        &self,
        since: Option<ChainHash>,
        scope: Option<&[Uuid]>,
    ) -> Result<LogVerification> {
        let mut tx = self.store().read()?;
        let mut pass = ChainPass::new(since, scope);
        let mut after = 0;
        loop {
            let batch = tx.raw_audit_links(after, BATCH)?;
            let Some(last) = batch.last() else { break };
            after = last.link.entry.seq;
            for link in batch {
                pass.take(link)?;
            }
        }
        let ChainPass {
            verifier,
            logs,
            reused,
            replay,
            tables,
            ungranted,
            passkeys,
            ..
        } = pass;
        let entries = verifier.len();
        let head = verifier.finish()?;
        if let Some(reused) = reused {
            return Err(reused.into());
        }
        if let Some(ungranted) = ungranted {
            return Err(ungranted.into());
        }
        let stored = tx.stored_state(scope)?;
        let events = stored.events.len() as u64;
        let mut mismatches = replay.compare(&stored);
        if scope.is_none() {
            for mut table in tables {
                let stored = table.stored(&mut *tx)?;
                tables::compare(table.subject(), table.logged(), stored, &mut mismatches);
            }
            let (stored_keys, invites) = stored_rows(&mut *tx)?;
            mismatches.extend(passkeys.compare(&stored_keys));
            mismatches.extend(passkeys.compare_invites(&invites));
            mismatches
                .sort_by(|a, b| (a.subject, a.id, &a.field).cmp(&(b.subject, b.id, &b.field)));
        }
        // Signed answers are checked for every event that has a log, rows
        // removed from the store (`apply` removing an unfinished event)
        // included.
        let mut keys = KeySets::default();
        let mut signatures = 0;
        let mut ids: Vec<&Uuid> = logs.keys().collect();
        ids.sort();
        for id in ids {
            signatures += check_signatures(&mut *tx, *id, &logs[id], &mut keys, &passkeys)?;
        }
        let breakglass = logs
            .values()
            .flatten()
            .filter(|fact| fact.breakglass)
            .count() as u64;
        Ok(LogVerification {
            entries,
            events,
            signatures,
            breakglass,
            head,
            mismatches,
        })
    }
}

/// What one pass over the whole log, in chain order, gathers: the chain's
/// verifier, the records the log implies, the other replayed tables, and
/// of each event's entries only what the later checks read.
struct ChainPass {
    verifier: ChainVerifier,
    /// The events and campaigns replayed and compared (`None`: all).
    wanted: Option<HashSet<Uuid>>,
    /// Of each event's entries, only what the later checks read (see
    /// [`Fact`]): most entries are dropped as soon as they are hashed.
    logs: HashMap<Uuid, Vec<Fact>>,
    /// Every nonce of a signed message in the log, whatever the scope, with
    /// the entry that used it first.
    nonces: HashMap<Uuid, i64>,
    /// The first reuse of a nonce found.
    reused: Option<TrustError>,
    replay: Replay,
    /// The other tables the log explains, replayed from every entry and
    /// compared only when the whole store is verified.
    tables: Vec<Box<dyn tables::ReplayedTable>>,
    /// The delegations the log has made so far.
    grants: Grants,
    /// The first answer given for another agent without a delegation in
    /// force.
    ungranted: Option<TrustError>,
    /// The passkeys the log enrolled and revoked.
    passkeys: LoggedPasskeys,
}

impl ChainPass {
    /// A pass from the first entry, requiring `since` to be in the chain
    /// when given, replaying the events and campaigns in `scope` (all
    /// without one).
    fn new(since: Option<ChainHash>, scope: Option<&[Uuid]>) -> Self {
        let mut verifier = ChainVerifier::new();
        if let Some(head) = since {
            verifier = verifier.since(head);
        }
        ChainPass {
            verifier,
            wanted: scope.map(|ids| ids.iter().copied().collect()),
            logs: HashMap::new(),
            nonces: HashMap::new(),
            reused: None,
            replay: Replay::default(),
            tables: if scope.is_none() {
                tables::tables()
            } else {
                Vec::new()
            },
            grants: Grants::default(),
            ungranted: None,
            passkeys: LoggedPasskeys::default(),
        }
    }

    /// Takes in the next entry of the chain.
    fn take(&mut self, RawLink { mut link, detail }: RawLink) -> Result<()> {
        let position = self.verifier.len();
        let prev = parse_column(&link, position, "prev", link.prev.as_deref())?;
        let hash = parse_column(&link, position, "hash", link.hash.as_deref())?;
        let detail = Detail::read(&link, position, &detail)?;
        link.entry.detail = detail.value;
        self.verifier.push_with_detail(
            &ChainLink {
                entry: &link.entry,
                message: link.message.as_deref().map(str::as_bytes),
                signature: link.signature.as_deref(),
                prev,
                hash,
            },
            &detail.canonical,
        )?;
        if let Some(message) = &link.message {
            if let Ok(parsed) = AnswerMessage::parse(message.as_bytes()) {
                if let Some(first) = self.nonces.insert(parsed.nonce(), link.entry.seq) {
                    self.nonces.insert(parsed.nonce(), first);
                    self.reused.get_or_insert(TrustError::SignedEntry {
                        event: link.entry.event.to_string(),
                        reason: format!(
                            "entry seq {} ({}): its signed message's nonce {} was already used by entry seq {first}; a signed answer is accepted once",
                            link.entry.seq,
                            link.entry.action,
                            parsed.nonce()
                        ),
                    });
                }
            }
        }
        self.passkeys.follow(&link.entry);
        let event = link.entry.event;
        let in_scope = self.wanted.as_ref().is_none_or(|w| w.contains(&event));
        if let Some(refusal) = self.grants.follow(&link.entry, &self.replay) {
            if in_scope {
                self.ungranted.get_or_insert(refusal);
            }
        }
        for table in &mut self.tables {
            table.follow(&link);
        }
        if in_scope || link.entry.action == AuditAction::CampaignRemoved {
            // Hashed already: its whole record is moved, not copied.
            self.replay.apply(&mut link.entry, detail.record);
        }
        if in_scope {
            let log = self.logs.get_mut(&event);
            let has_log = log.is_some();
            if let Some(fact) = Fact::of(link, has_log) {
                match log {
                    Some(log) => log.push(fact),
                    None => {
                        self.logs.insert(event, vec![fact]);
                    }
                }
            }
        }
        Ok(())
    }
}

/// The delegations a log has made, by id, as read in chain order: who
/// delegated to whom, until when, and whether it was revoked since.
#[derive(Default)]
struct Grants(HashMap<Uuid, Grant>);

/// One delegation as its `delegated` entry made it.
struct Grant {
    from: Option<AgentId>,
    to: Option<String>,
    until: Option<chrono::DateTime<chrono::Utc>>,
    revoked: bool,
    /// The campaign it is limited to (`None`: every event).
    campaign: Option<GrantCampaign>,
}

/// The campaign a delegation covers, as its `delegated` entry names it: by
/// id (`detail.campaign_id`) and name (`detail.campaign`); entries written
/// before the id was recorded name it only.
struct GrantCampaign {
    id: Option<Uuid>,
    name: Option<String>,
}

impl GrantCampaign {
    /// The campaign the delegation's entry names; `None`: every event.
    fn of(detail: &serde_json::Value) -> Option<Self> {
        let id = detail["campaign_id"]
            .as_str()
            .and_then(|id| Uuid::parse_str(id).ok());
        let name = detail["campaign"].as_str().map(str::to_string);
        (id.is_some() || name.is_some()).then_some(GrantCampaign { id, name })
    }

    /// Whether it is the campaign of `event` as the replayed log has it;
    /// `None` when the log has no record of the event (or of its campaign,
    /// for a delegation named by name only) to tell.
    fn covers(&self, replay: &Replay, event: Uuid) -> Option<bool> {
        let record = crate::trust::record::parse_record(replay.events.get(&event)?);
        let campaign = match record.get("campaign")? {
            serde_json::Value::String(id) => Uuid::parse_str(id).ok()?,
            _ => return Some(false),
        };
        if let Some(id) = self.id {
            return Some(id == campaign);
        }
        let record = crate::trust::record::parse_record(replay.campaigns.get(&campaign)?);
        Some(record.get("name").and_then(|n| n.as_str()) == self.name.as_deref())
    }

    /// How the refusal names it: by name, else by id.
    fn label(&self) -> String {
        match (&self.name, self.id) {
            (Some(name), _) => name.clone(),
            (None, Some(id)) => id.to_string(),
            (None, None) => String::new(),
        }
    }
}

impl Grants {
    /// Takes in the next entry of the chain: a `delegated` entry makes a
    /// delegation, an `undelegated` one revokes it, and an answer given
    /// for another agent must name (`detail.delegation`) one from that
    /// agent to the one who answered, made before it, not revoked, not
    /// past its `until`, and, when it is limited to a campaign, one the
    /// answered event is in (as `replay` has the event so far); the refusal
    /// when it does not.
    fn follow(&mut self, e: &crate::AuditEntry, replay: &Replay) -> Option<TrustError> {
        match e.action {
            AuditAction::Delegated => {
                let until = e.detail["until"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&chrono::Utc));
                self.0.insert(
                    e.event,
                    Grant {
                        from: e.agent.clone(),
                        to: e.detail["to"].as_str().map(String::from),
                        until,
                        revoked: false,
                        campaign: GrantCampaign::of(&e.detail),
                    },
                );
                None
            }
            AuditAction::Undelegated => {
                if let Some(grant) = self.0.get_mut(&e.event) {
                    grant.revoked = true;
                }
                None
            }
            AuditAction::Confirmed | AuditAction::Deferred | AuditAction::Declined => {
                let principal = e.on_behalf_of.as_ref()?;
                let grant = e.detail["delegation"]
                    .as_str()
                    .and_then(|id| Uuid::parse_str(id).ok())
                    .and_then(|id| self.0.get(&id));
                let in_force = grant.is_some_and(|g| {
                    g.from.as_ref() == Some(principal)
                        && g.to.as_deref() == e.agent.as_ref().map(AgentId::as_str)
                        && !g.revoked
                        && g.until.is_none_or(|until| e.at < until)
                });
                if in_force {
                    let campaign = grant.and_then(|g| g.campaign.as_ref())?;
                    if campaign.covers(replay, e.event) != Some(false) {
                        return None;
                    }
                    return Some(TrustError::StateMismatch {
                        event: e.event.to_string(),
                        reason: format!(
                            "entry seq {} ({}): {} answered for {principal} under delegation {}, which covers campaign `{}` only, and this event is not in it",
                            e.seq,
                            e.action,
                            e.agent.as_ref().map_or("nobody", AgentId::as_str),
                            e.detail["delegation"].as_str().unwrap_or_default(),
                            campaign.label(),
                        ),
                    });
                }
                (!in_force).then(|| TrustError::StateMismatch {
                    event: e.event.to_string(),
                    reason: format!(
                        "entry seq {} ({}): {} answered for {principal}, but the log shows no delegation from {principal} to {} in force then",
                        e.seq,
                        e.action,
                        e.agent.as_ref().map_or("nobody", AgentId::as_str),
                        e.agent.as_ref().map_or("nobody", AgentId::as_str),
                    ),
                })
            }
            _ => None,
        }
    }
}

/// What the checks after the chain pass read of one log entry: the entries
/// that set the key set in force, answer, or end the event.
/// Every other entry is dropped once hashed.
struct Fact {
    seq: i64,
    action: AuditAction,
    agent: Option<AgentId>,
    /// The agent `agent` answered for, under a delegation.
    on_behalf_of: Option<AgentId>,
    /// The key set this entry puts in force (`Some(None)`: none), for a
    /// `scheduled` entry and an `updated` entry that changed the keys.
    signers: Option<Option<String>>,
    /// The signed answer's message, when it was signed.
    message: Option<String>,
    /// The armored signature of `message`.
    signature: Option<String>,
    /// Whether it is a `fired` entry written by a break-glass.
    breakglass: bool,
}

impl Fact {
    /// What the later checks need of `link`, or `None` when they need
    /// nothing. A `scheduled` entry that puts no key set in force is kept
    /// only when the event's log already has facts (`has_log`): before it,
    /// none is in force anyway.
    fn of(link: StoredLink, has_log: bool) -> Option<Fact> {
        let e = link.entry;
        let signers = match e.action {
            AuditAction::Scheduled => Some(
                e.detail
                    .get("signers")
                    .and_then(|s| s.as_str())
                    .map(String::from),
            ),
            AuditAction::Updated => e
                .detail
                .get("signers")
                .map(|change| change.get("new").and_then(|s| s.as_str()).map(String::from)),
            _ => None,
        };
        let breakglass = e.action == AuditAction::Fired && e.detail.get("breakglass").is_some();
        let needed = match e.action {
            AuditAction::Confirmed
            | AuditAction::Deferred
            | AuditAction::Declined
            | AuditAction::Fired
            | AuditAction::Missed
            | AuditAction::Cancelled => true,
            AuditAction::Scheduled => has_log || matches!(signers, Some(Some(_))),
            _ => signers.is_some(),
        };
        needed.then_some(Fact {
            seq: e.seq,
            action: e.action,
            agent: e.agent,
            on_behalf_of: e.on_behalf_of,
            signers,
            message: link.message,
            signature: link.signature,
            breakglass,
        })
    }

    fn is_answer(&self) -> bool {
        matches!(
            self.action,
            AuditAction::Confirmed | AuditAction::Deferred | AuditAction::Declined
        )
    }
}

/// Key sets read while verifying, by digest.
#[derive(Default)]
struct KeySets(HashMap<String, Signers>);

impl KeySets {
    /// The key set named `digest`, read from the store once; it must hash to
    /// its name.
    fn get(&mut self, tx: &mut dyn Tx, event: Uuid, seq: i64, digest: &str) -> Result<&Signers> {
        if !self.0.contains_key(digest) {
            let broken = |reason: String| TrustError::SignedEntry {
                event: event.to_string(),
                reason: format!("entry seq {seq}: {reason}"),
            };
            let text = tx.signers_by_digest(digest)?.ok_or_else(|| {
                broken(format!("the key set {digest} in force is not in the store"))
            })?;
            if digest_of_text(&text) != digest {
                return Err(broken(format!(
                    "the stored key set {digest} does not hash to its digest (it was edited)"
                ))
                .into());
            }
            let signers = Signers::parse_allowed_signers(&text, digest)?;
            self.0.insert(digest.to_string(), signers);
        }
        Ok(&self.0[digest])
    }
}

/// Checks the answers in event `id`'s log against the key sets its log says
/// were in force: an answer made while a set was in force must carry a
/// message and signature that verify with one of the set's keys for the
/// answering agent, and the message must name this event, agent and
/// answer; an answer made while none was in force must carry none. Returns
/// how many signatures were verified.
fn check_signatures(
    tx: &mut dyn Tx,
    id: Uuid,
    log: &[Fact],
    keys: &mut KeySets,
    passkeys: &LoggedPasskeys,
) -> Result<u64> {
    let mut in_force: Option<&str> = None;
    let mut verified = 0;
    // Each agent's latest signed message time and the entry that has it.
    let mut latest: HashMap<&AgentId, (chrono::DateTime<chrono::Utc>, i64)> = HashMap::new();
    for fact in log {
        if let Some(set) = &fact.signers {
            in_force = set.as_deref();
        }
        // Cancels by the engine itself (a need failed, an operator's cancel
        // before signed cancels) carry no message; a signed cancel does.
        let signed_cancel = fact.action == AuditAction::Cancelled && fact.message.is_some();
        // A break-glass is an agent's act: signed while a key set is in
        // force, like an answer.
        if !fact.is_answer() && !signed_cancel && !fact.breakglass {
            continue;
        }
        let broken = |reason: String| TrustError::SignedEntry {
            event: id.to_string(),
            reason: format!("entry seq {} ({}): {reason}", fact.seq, fact.action),
        };
        let passkey_message = fact
            .message
            .as_deref()
            .and_then(|m| AnswerMessage::parse(m.as_bytes()).ok())
            .filter(|parsed| parsed.passkey_fields().is_some());
        if let (Some(parsed), Some(message)) = (passkey_message, &fact.message) {
            // Signed by a passkey: checked with the public key the log
            // recorded, whether or not a key set was in force.
            check_acted(id, fact, &parsed)?;
            let signers = match in_force {
                Some(digest) => Some(keys.get(tx, id, fact.seq, digest)?),
                None => None,
            };
            let signature = fact.signature.as_deref().unwrap_or_default();
            passkeys
                .check_answer(fact.seq, &parsed, message.as_bytes(), signature, signers)
                .map_err(|reason| {
                    broken(format!("its passkey signature does not verify: {reason}"))
                })?;
            check_order(id, fact, &parsed, &mut latest)?;
            verified += 1;
            continue;
        }
        let (digest, message, signature) = match (in_force, &fact.message, &fact.signature) {
            (None, None, None) => continue,
            (Some(digest), Some(message), Some(signature)) => (digest, message, signature),
            (Some(digest), _, _) => {
                return Err(broken(format!(
                    "the answer is not signed, but the key set {digest} was in force"
                ))
                .into())
            }
            (None, _, _) => {
                return Err(broken(
                    "the answer carries a signature, but no key set was in force".into(),
                )
                .into())
            }
        };
        let parsed = AnswerMessage::parse(message.as_bytes())
            .map_err(|err| broken(format!("its signed message is not canonical: {err}")))?;
        check_acted(id, fact, &parsed)?;
        let signers = keys.get(tx, id, fact.seq, digest)?;
        let sig = SshSignature::parse(signature)
            .map_err(|err| broken(format!("its signature cannot be read: {err}")))?;
        verify_signature(
            signers,
            parsed.agent(),
            message.as_bytes(),
            &sig,
            parsed.time(),
        )
        .map_err(|err| broken(format!("its signature does not verify: {err}")))?;
        check_order(id, fact, &parsed, &mut latest)?;
        verified += 1;
    }
    Ok(verified)
}

/// The refusal of entry `fact` of event `id` for `reason`.
fn broken_entry(id: Uuid, fact: &Fact, reason: String) -> TrustError {
    TrustError::SignedEntry {
        event: id.to_string(),
        reason: format!("entry seq {} ({}): {reason}", fact.seq, fact.action),
    }
}

/// Refuses a signed message that is not this entry's act: another event,
/// agent, agent acted for, or answer.
fn check_acted(id: Uuid, fact: &Fact, parsed: &AnswerMessage) -> Result<()> {
    let answered = match parsed.answer() {
        Answer::Confirm if parsed.break_glass_reason().is_some() => AuditAction::Fired,
        Answer::Confirm => AuditAction::Confirmed,
        Answer::Defer(_) => AuditAction::Deferred,
        Answer::Decline { .. } => AuditAction::Declined,
        Answer::Cancel { .. } => AuditAction::Cancelled,
    };
    if parsed.event() != id
        || Some(parsed.agent()) != fact.agent.as_ref()
        || parsed.principal() != fact.on_behalf_of.as_ref()
        || answered != fact.action
    {
        let acted = match parsed.principal() {
            Some(principal) => format!("{} for {principal}", parsed.agent()),
            None => parsed.agent().to_string(),
        };
        return Err(broken_entry(
            id,
            fact,
            format!(
                "its signed message is agent {acted} answering {} to event {}, not this entry",
                parsed.answer(),
                parsed.event()
            ),
        )
        .into());
    }
    Ok(())
}

/// Refuses a signed answer made before the same agent's answer logged
/// before it; records it as the agent's latest.
fn check_order<'a>(
    id: Uuid,
    fact: &'a Fact,
    parsed: &AnswerMessage,
    latest: &mut HashMap<&'a AgentId, (chrono::DateTime<chrono::Utc>, i64)>,
) -> Result<()> {
    if let Some(agent) = fact.agent.as_ref() {
        if let Some((last, seq)) = latest.get(agent) {
            if parsed.time() < *last {
                return Err(broken_entry(
                    id,
                    fact,
                    format!(
                        "its signed message was made at {}, before agent {agent}'s answer at entry seq {seq} made at {last}: an earlier answer came back after a later one",
                        parsed.time()
                    ),
                )
                .into());
            }
        }
        latest.insert(agent, (parsed.time(), fact.seq));
    }
    Ok(())
}

fn parse_column(
    link: &StoredLink,
    position: u64,
    column: &'static str,
    value: Option<&str>,
) -> std::result::Result<ChainHash, TrustError> {
    let broken = |found: String| TrustError::ChainColumn {
        position,
        seq: link.entry.seq,
        column,
        found,
    };
    match value {
        None => Err(broken("missing".into())),
        Some(text) => text
            .parse()
            .map_err(|_| broken(format!("{:?}", text.chars().take(80).collect::<String>()))),
    }
}

/// An entry's detail as the chain pass reads it from its stored text.
struct Detail {
    /// The detail's canonical JSON, which its hash covers.
    canonical: String,
    /// For an entry whose detail carries an event's whole record
    /// (`scheduled`, `baseline`): the record's canonical text, and `value`
    /// holds every other member.
    record: Option<String>,
    /// The detail as a value (without `record` when that is given apart).
    value: serde_json::Value,
}

impl Detail {
    /// Reads the stored detail `text` of `link`'s entry. The detail of an
    /// entry that carries a whole record, most of a log by size, is written
    /// canonically from its text ([`canonical_object_text`]), its record
    /// kept as text, and only its other members parsed; any other detail
    /// is parsed and written canonically from the value. Fails when the
    /// text is not JSON.
    fn read(link: &StoredLink, position: u64, text: &str) -> Result<Detail> {
        let broken = |reason: String| TrustError::ChainColumn {
            position,
            seq: link.entry.seq,
            column: "detail",
            found: reason,
        };
        let whole = matches!(
            link.entry.action,
            AuditAction::Scheduled | AuditAction::Baseline
        );
        if whole {
            if let Some(fast) = canonical_object_text(text) {
                if let Some(record) = fast.member("record").filter(|r| r.starts_with('{')) {
                    let mut rest = serde_json::Map::new();
                    for (key, range) in &fast.members {
                        if *key != "record" {
                            let value = serde_json::from_str(&fast.text[range.clone()])
                                .map_err(|e| broken(e.to_string()))?;
                            rest.insert((*key).to_string(), value);
                        }
                    }
                    return Ok(Detail {
                        record: Some(record.to_string()),
                        canonical: fast.text,
                        value: serde_json::Value::Object(rest),
                    });
                }
            }
        }
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            broken(format!(
                "not JSON ({e}): {:?}",
                text.chars().take(80).collect::<String>()
            ))
        })?;
        Ok(Detail {
            canonical: canonical_json(&value),
            record: None,
            value,
        })
    }
}

/// The records a log implies, by id, as replayed entry by entry, each
/// kept as its canonical text ([`record_text`]): one string per event, and
/// a comparison with the stored record is one string comparison when they
/// agree.
#[derive(Default)]
struct Replay {
    events: HashMap<Uuid, String>,
    campaigns: HashMap<Uuid, String>,
}

impl Replay {
    /// Applies one entry: a whole `record` (in its detail, or `record`, its
    /// canonical text read apart from the detail) replaces the subject's, a
    /// `set` changes the members it names ([`apply_event_entry`]),
    /// `removed` and `campaign-removed` drop the subject (a campaign with
    /// its events). Entries without either (written before the log recorded
    /// them, or about tokens) change nothing.
    fn apply(&mut self, entry: &mut AuditEntry, record: Option<String>) {
        let id = entry.event;
        match entry.action {
            AuditAction::TokenCreated
            | AuditAction::TokenRevoked
            | AuditAction::TokenRefused
            | AuditAction::Delegated
            | AuditAction::Undelegated
            | AuditAction::ChatLinked
            | AuditAction::ChatUnlinked
            | AuditAction::GithubRequested
            | AuditAction::GithubReported
            | AuditAction::GithubReportFailed
            | AuditAction::PersonInvited
            | AuditAction::PersonEnrolled
            | AuditAction::PersonRevoked => return,
            AuditAction::Removed => {
                self.events.remove(&id);
                return;
            }
            AuditAction::CampaignRemoved => {
                self.campaigns.remove(&id);
                let campaign = serde_json::Value::String(id.to_string());
                self.events
                    .retain(|_, record| parse_record(record).get("campaign") != Some(&campaign));
                return;
            }
            _ => {}
        }
        let records = if entry.action.is_about_campaign() {
            &mut self.campaigns
        } else {
            &mut self.events
        };
        if let Some(text) = record {
            records.insert(id, text);
        } else if let Some(serde_json::Value::Object(whole)) = entry
            .detail
            .as_object_mut()
            .and_then(|detail| detail.remove("record"))
        {
            records.insert(id, record_text(&whole));
        }
        // Before its first whole record (a log written before records
        // were), an entry explains nothing.
        if !changes_record(entry.action, &entry.detail) {
            return;
        }
        if let Some(text) = records.get_mut(&id) {
            let mut record = parse_record(text);
            apply_event_entry(&mut record, entry.action, &entry.detail);
            *text = record_text(&record);
        }
    }

    /// Every field of `stored` that disagrees with the replayed records,
    /// and every replayed event or campaign whose row is gone, sorted.
    fn compare(mut self, stored: &StoredState) -> Vec<RowMismatch> {
        let mut out = Vec::new();
        let presence = |subject: &'static str, id: Uuid, stored: bool| RowMismatch {
            subject,
            id,
            field: "row".into(),
            stored: serde_json::json!(if stored { "present" } else { "absent" }),
            logged: serde_json::json!(if stored { "absent" } else { "present" }),
        };
        let mut one =
            |subject: &'static str, id: Uuid, row: Record, logged: Option<String>| match logged {
                None => out.push(presence(subject, id, true)),
                Some(logged) if logged == record_text(&row) => {}
                Some(logged) => out.extend(
                    differences(&row, &parse_record(&logged))
                        .into_iter()
                        .map(|d| RowMismatch {
                            subject,
                            id,
                            field: d.field,
                            stored: d.stored,
                            logged: d.logged,
                        }),
                ),
            };
        for event in &stored.events {
            let logged = self.events.remove(&event.event.id);
            // Most rows agree: their text is written without the record.
            let text = event.record_text();
            debug_assert_eq!(text, record_text(&event.record()));
            if logged.as_ref() != Some(&text) {
                one("event", event.event.id, event.record(), logged);
            }
        }
        for (row, signers) in &stored.campaigns {
            let logged = self.campaigns.remove(&row.id);
            one(
                "campaign",
                row.id,
                campaign_record(row, signers.as_deref()),
                logged,
            );
        }
        out.extend(
            self.events
                .into_keys()
                .map(|id| presence("event", id, false)),
        );
        out.extend(
            self.campaigns
                .into_keys()
                .map(|id| presence("campaign", id, false)),
        );
        out.sort_by(|a, b| (a.subject, a.id, &a.field).cmp(&(b.subject, b.id, &b.field)));
        out
    }
}
