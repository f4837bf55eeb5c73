//! Attestations: a campaign's outcome as an in-toto Statement v1, evidence a
//! release pipeline can archive and anyone can check without the store.
//!
//! The statement's single subject is the campaign: its name
//! (`t-minus:campaign/NAME`) and the SHA-256 of its events' contents,
//! computed by [`campaign_digest`]. The predicate ([`CampaignPredicate`],
//! type [`PREDICATE_TYPE`]) carries, for every event, everything its content
//! digest covers (its bound notification rules as their digest), its quorum
//! and groups, its attendees with their final answers, every answer in its
//! log (with the signed message and signature of each signed answer), and
//! the key sets its log put in force; and for the campaign every key set an
//! answer was checked against, and the audit log's head when it was made.
//! [`verify_statement`] checks all of it alone. The format is documented in
//! `docs/json.md` and `docs/security.md`.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::trust::digest::{parse_hex32, Content, ContentDigest};
use crate::trust::error::TrustError;
use crate::trust::message::{Answer, AnswerMessage};
use crate::trust::sign::{verify_signature, SshSignature};
use crate::trust::signers::{digest_of_text, Signers};

/// The in-toto Statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// The predicate type of a t-minus campaign attestation.
pub const PREDICATE_TYPE: &str = "https://t-minus.dev/attestation/campaign/v2";

/// The predicate type of the attestations of earlier versions, which lack
/// what an offline check needs.
pub const PREDICATE_TYPE_V1: &str = "https://t-minus.dev/attestation/campaign/v1";

/// The `sshsig` namespace of a signed statement (`attest --sign`).
pub const STATEMENT_NAMESPACE: &str = "t-minus-attestation";

/// An in-toto Statement v1 about one campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Statement {
    /// [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// The campaign.
    pub subject: Vec<Subject>,
    /// [`PREDICATE_TYPE`].
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The campaign's outcome.
    pub predicate: CampaignPredicate,
}

/// A statement's subject: a name and its digests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Subject {
    /// `t-minus:campaign/NAME`.
    pub name: String,
    /// `{"sha256": "<64 hex digits>"}`: the [`campaign_digest`].
    pub digest: BTreeMap<String, String>,
}

/// What a campaign attestation says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CampaignPredicate {
    /// The campaign's id, name and derived state.
    pub campaign: CampaignInfo,
    /// The digest of the key set in force now (`sha256:…`), or `None` when
    /// answers need no signature.
    pub signers: Option<String>,
    /// The key set's `allowed_signers` text, when there is one.
    pub signers_text: Option<String>,
    /// Every key set in force for an answer of the campaign's events at the
    /// time it was made, and the one in force now: digest → its
    /// `allowed_signers` text (which hashes to the digest).
    pub key_sets: BTreeMap<String, String>,
    /// The audit log when the attestation was made.
    pub log: LogInfo,
    /// When it was made (the engine clock).
    pub attested_at: DateTime<Utc>,
    /// Every event of the campaign, in campaign order.
    pub events: Vec<EventOutcome>,
    /// The passkeys that signed an answer, by credential id (base64url), as
    /// their log enrolled them: what checks those answers offline.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub passkeys: BTreeMap<String, PasskeyRecord>,
}

/// A passkey as its log enrolled (and perhaps revoked) it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PasskeyRecord {
    /// The agent it is bound to.
    pub agent: String,
    /// The COSE public key, base64url without padding.
    pub public_key: String,
    /// `ES256` or `EdDSA`.
    pub algorithm: String,
    /// The `seq` of its `person-enrolled` entry.
    pub enrolled_seq: i64,
    /// The `seq` of its `person-revoked` entry, once revoked.
    pub revoked_seq: Option<i64>,
}

/// The campaign in a predicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CampaignInfo {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// `pending`, `complete`, `failed`, … as `status` shows it.
    pub state: String,
}

/// The audit log in a predicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LogInfo {
    /// The hash of the last entry (64 hex digits): `t-minus verify --since
    /// HEAD` later proves the log was only appended to.
    pub head: String,
    /// How many entries the whole log had.
    pub entries: u64,
}

/// One event's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EventOutcome {
    /// Its id.
    pub id: Uuid,
    /// Its name in the campaign.
    pub name: Option<String>,
    /// Its kind as displayed.
    pub kind: String,
    /// Its description.
    pub description: Option<String>,
    /// Its state: `fired`, `missed`, `cancelled`, or still `pending`/`blocked`.
    pub state: String,
    /// Its content digest, `sha256:…` (what the answers are bound to).
    pub content_digest: String,
    /// The digest (`sha256:…`) of its notification rules that act when it
    /// fires or is missed, part of the content digest; `None` when it has
    /// none. The rules themselves are not shown: they may hold secrets.
    pub rules_digest: Option<String>,
    /// Its payload.
    pub payload: Value,
    /// When it became final, if it has.
    pub finished_at: Option<DateTime<Utc>>,
    /// Its fire policy: `early`, `on-time` or `lazy` (a lazy event fires
    /// at its fire time unless someone declined, whatever its quorum).
    #[serde(default)]
    pub fire: String,
    /// Confirmations needed (for an event with groups: the total).
    pub quorum: usize,
    /// The quorum as spelled (`2`, `all`, `majority`).
    pub quorum_spec: String,
    /// Its quorum groups (empty for a plain event).
    pub groups: Vec<GroupOutcome>,
    /// Its attendees, in order, with their answers as stored.
    pub attendees: Vec<AttendeeOutcome>,
    /// The key set in force from each entry of its log that set one, oldest
    /// first: `signers` is the set's digest, `null` for none.
    pub key_history: Vec<KeyChange>,
    /// Every answer in its log, oldest first (a signed cancel and a
    /// break-glass among them, as the answers `cancelled` and `breakglass`).
    pub answers: Vec<AnswerRecord>,
    /// The break-glass that fired it, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakglass: Option<crate::gate::BreakGlass>,
}

/// A quorum group of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GroupOutcome {
    /// Its name.
    pub name: String,
    /// Its quorum as spelled.
    pub quorum: String,
    /// Confirmations it needs.
    pub needed: usize,
    /// Its members.
    pub members: Vec<String>,
}

/// An attendee and its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AttendeeOutcome {
    /// The agent.
    pub agent: String,
    /// `pending`, `confirmed`, `deferred`, `declined` or `missed`.
    pub status: String,
}

/// An entry of an event's log that put a key set in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyChange {
    /// The entry's sequence number.
    pub seq: i64,
    /// The key set's digest, `None` when none is in force from it on.
    pub signers: Option<String>,
}

/// One answer from an event's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AnswerRecord {
    /// The audit entry's sequence number.
    pub seq: i64,
    /// Who answered.
    pub agent: Option<String>,
    /// The attendee `agent` answered for, under its delegation (absent for
    /// an attendee's own answer): the answer is this attendee's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    /// `confirmed`, `deferred`, `declined`, `breakglass`, or `cancelled`
    /// (for a signed cancel).
    pub answer: String,
    /// When the engine recorded it.
    pub at: DateTime<Utc>,
    /// The entry's detail (deferral, reason, signing key, key set).
    pub detail: Value,
    /// The signed message, for a signed answer.
    pub message: Option<String>,
    /// Its armored signature.
    pub signature: Option<String>,
    /// The entry's chain hash.
    pub hash: Option<String>,
}

/// The digest of a campaign's contents: SHA-256 over one line per event,
/// sorted by event name, each
/// `NAME SP sha256:HEX LF` with the event's content digest.
pub fn campaign_digest<'a>(events: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut lines: Vec<(&str, &str)> = events.into_iter().collect();
    lines.sort();
    let mut hasher = Sha256::new();
    for (name, digest) in lines {
        hasher.update(name.as_bytes());
        hasher.update(b" ");
        hasher.update(digest.as_bytes());
        hasher.update(b"\n");
    }
    base16ct::lower::encode_string(&hasher.finalize())
}

/// What an offline check of a statement found: it holds together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct StatementCheck {
    /// The campaign's name.
    pub campaign: String,
    /// The subject's digest (64 hex digits), recomputed.
    pub subject: String,
    /// Events whose content digest was recomputed.
    pub events: usize,
    /// Answers read.
    pub answers: usize,
    /// Signatures verified with the key set in force when each was made.
    pub signatures: usize,
    /// The audit log head the statement names.
    pub head: String,
}

/// Checks an attestation (its JSON text) alone, without any store:
///
/// - it is an in-toto Statement v1 of predicate type [`PREDICATE_TYPE`];
/// - every event's content digest is recomputed from the fields it covers,
///   and the subject from the events' names and digests;
/// - every key set hashes to its digest;
/// - every answer made while a key set was in force (its event's
///   `key_history`) carries a message and a signature: the message names
///   the event, the agent and the answer, and the signature verifies with a
///   key of the set in force for that agent at the message's time; an
///   answer made while none was in force carries none;
/// - every attendee's stored answer is its latest answer in the log, and a
///   standing signed confirmation names the event's content digest;
/// - a fired event has its quorum of confirmations.
///
/// Every problem found is listed in the error
/// ([`TrustError::Attestation`]).
pub fn verify_statement(text: &[u8]) -> Result<StatementCheck, TrustError> {
    let refuse = |problems: Vec<String>| TrustError::Attestation { problems };
    let value: Value =
        serde_json::from_slice(text).map_err(|e| refuse(vec![format!("it is not JSON: {e}")]))?;
    let predicate_type = value.get("predicateType").and_then(Value::as_str);
    if predicate_type == Some(PREDICATE_TYPE_V1) {
        return Err(refuse(vec![format!(
            "its predicate type is {PREDICATE_TYPE_V1}, which lacks what an offline check needs (descriptions, rules digests, attendees, earlier key sets); attest again with this version"
        )]));
    }
    let statement: Statement = serde_json::from_value(value)
        .map_err(|e| refuse(vec![format!("it is not a t-minus attestation: {e}")]))?;
    let mut problems = Vec::new();
    if statement.statement_type != STATEMENT_TYPE {
        problems.push(format!(
            "`_type` is {:?}, not {STATEMENT_TYPE:?}",
            statement.statement_type
        ));
    }
    if statement.predicate_type != PREDICATE_TYPE {
        problems.push(format!(
            "`predicateType` is {:?}, not {PREDICATE_TYPE:?}",
            statement.predicate_type
        ));
    }
    let p = &statement.predicate;
    let mut key_sets = HashMap::new();
    for (digest, text) in &p.key_sets {
        if digest_of_text(text) != *digest {
            problems.push(format!(
                "key set {digest}: its text does not hash to its digest"
            ));
            continue;
        }
        match Signers::parse_allowed_signers(text, digest) {
            Ok(signers) => {
                key_sets.insert(digest.as_str(), signers);
            }
            Err(err) => problems.push(format!("key set {digest}: {err}")),
        }
    }
    if let (Some(digest), Some(text)) = (&p.signers, &p.signers_text) {
        if p.key_sets.get(digest) != Some(text) {
            problems.push(format!(
                "the key set in force, {digest}, is not among `key_sets` as `signers_text` shows it"
            ));
        }
    }
    let (mut answers, mut signatures) = (0, 0);
    let mut digests = Vec::with_capacity(p.events.len());
    for event in &p.events {
        let label = event.name.clone().unwrap_or_else(|| event.id.to_string());
        let mut fail = |reason: String| problems.push(format!("event {label}: {reason}"));
        let digest = match check_content(event, p.campaign.id) {
            Ok(digest) => digest,
            Err(reason) => {
                fail(reason);
                None
            }
        };
        digests.push((
            event.name.clone().unwrap_or_default(),
            event.content_digest.clone(),
        ));
        answers += event.answers.len();
        signatures += check_answers(event, digest, &key_sets, &p.passkeys, &mut fail);
        check_outcome(event, &mut fail);
    }
    let subject = campaign_digest(digests.iter().map(|(n, d)| (n.as_str(), d.as_str())));
    match statement.subject.as_slice() {
        [one] => {
            let name = format!("t-minus:campaign/{}", p.campaign.name);
            if one.name != name {
                problems.push(format!("the subject is named {:?}, not {name:?}", one.name));
            }
            if one.digest.get("sha256") != Some(&subject) {
                problems.push(format!(
                    "the subject's digest {} is not the digest of the events' contents, {subject}",
                    one.digest
                        .get("sha256")
                        .map(String::as_str)
                        .unwrap_or("(none)")
                ));
            }
        }
        other => problems.push(format!("it has {} subjects, not one", other.len())),
    }
    if !problems.is_empty() {
        return Err(refuse(problems));
    }
    Ok(StatementCheck {
        campaign: p.campaign.name.clone(),
        subject,
        events: p.events.len(),
        answers,
        signatures,
        head: p.log.head.clone(),
    })
}

/// Recomputes `event`'s content digest from the fields it covers; the
/// digest when it is the one shown, `None` when the shown one cannot be
/// read, the reason when they differ.
fn check_content(event: &EventOutcome, campaign: Uuid) -> Result<Option<ContentDigest>, String> {
    let rules = match &event.rules_digest {
        None => None,
        Some(text) => {
            let hex = text.strip_prefix("sha256:").unwrap_or(text);
            Some(parse_hex32(text, hex).map_err(|e| format!("its rules digest: {e}"))?)
        }
    };
    let content = Content {
        id: event.id,
        campaign: Some(campaign),
        name: event.name.as_deref(),
        kind: &event.kind,
        description: event.description.as_deref(),
        payload: &event.payload,
        rules,
    };
    let recomputed = content.digest();
    let shown: ContentDigest = event
        .content_digest
        .parse()
        .map_err(|e| format!("its content digest: {e}"))?;
    if shown != recomputed {
        return Err(format!(
            "its content digest {shown} is not the digest of its kind, description, payload and rules digest, {recomputed} (the statement was edited)"
        ));
    }
    Ok(Some(recomputed))
}

/// Checks `event`'s answers against the key sets its history put in force
/// (see [`verify_statement`]); returns how many signatures verified.
fn check_answers(
    event: &EventOutcome,
    digest: Option<ContentDigest>,
    key_sets: &HashMap<&str, Signers>,
    passkeys: &BTreeMap<String, PasskeyRecord>,
    fail: &mut dyn FnMut(String),
) -> usize {
    let mut verified = 0;
    let mut history = event.key_history.iter().peekable();
    let mut in_force: Option<&str> = None;
    // The latest answer of each agent, for the final answers.
    let mut latest: HashMap<&str, (&AnswerRecord, Option<AnswerMessage>)> = HashMap::new();
    for answer in &event.answers {
        while let Some(change) = history.next_if(|c| c.seq < answer.seq) {
            in_force = change.signers.as_deref();
        }
        let agent = answer.agent.as_deref().unwrap_or_default();
        let at = format!("answer seq {} ({agent} {})", answer.seq, answer.answer);
        let by_passkey = answer
            .message
            .as_deref()
            .and_then(|m| AnswerMessage::parse(m.as_bytes()).ok())
            .filter(|m| m.passkey_fields().is_some());
        if let Some(parsed) = by_passkey {
            let signers = in_force.and_then(|set| key_sets.get(set));
            match check_passkey_answer(event, answer, &parsed, signers, passkeys) {
                Ok(()) => {
                    verified += 1;
                    latest.insert(agent, (answer, Some(parsed)));
                }
                Err(reason) => fail(format!("{at}: {reason}")),
            }
            continue;
        }
        let parsed = match (in_force, &answer.message, &answer.signature) {
            (None, None, None) => None,
            (Some(set), Some(message), Some(signature)) => {
                match check_signed(event, answer, set, message, signature, key_sets) {
                    Ok(parsed) => {
                        verified += 1;
                        Some(parsed)
                    }
                    Err(reason) => {
                        fail(format!("{at}: {reason}"));
                        continue;
                    }
                }
            }
            (Some(set), _, _) => {
                fail(format!(
                    "{at}: it is not signed, but the key set {set} was in force"
                ));
                continue;
            }
            (None, _, _) => {
                fail(format!(
                    "{at}: it carries a signature, but no key set was in force"
                ));
                continue;
            }
        };
        if !matches!(answer.answer.as_str(), "cancelled" | "breakglass") {
            latest.insert(agent, (answer, parsed));
        }
    }
    for attendee in &event.attendees {
        if matches!(attendee.status.as_str(), "pending" | "missed") {
            continue;
        }
        let Some((answer, parsed)) = latest.get(attendee.agent.as_str()) else {
            fail(format!(
                "attendee {} is {}, but no answer of theirs is listed",
                attendee.agent, attendee.status
            ));
            continue;
        };
        if answer.answer != attendee.status {
            fail(format!(
                "attendee {} is {}, but their latest answer (seq {}) is {}",
                attendee.agent, attendee.status, answer.seq, answer.answer
            ));
            continue;
        }
        if let (Some(parsed), Some(digest), "confirmed") =
            (parsed, digest, attendee.status.as_str())
        {
            if parsed.digest() != digest {
                fail(format!(
                    "attendee {}'s standing confirmation (seq {}) was signed for content {}, not the event's {digest}",
                    attendee.agent,
                    answer.seq,
                    parsed.digest()
                ));
            }
        }
    }
    verified
}

/// Checks an answer signed by a passkey: its message names the event, agent
/// and answer; the passkey is among the statement's, enrolled for the agent
/// before the answer and not revoked before it; its assertion checks out
/// (`crate::trust::webauthn`) with the enrolled public key; where a key set
/// was in force (`signers`), it pins the passkey for the agent.
fn check_passkey_answer(
    event: &EventOutcome,
    answer: &AnswerRecord,
    parsed: &AnswerMessage,
    signers: Option<&Signers>,
    passkeys: &BTreeMap<String, PasskeyRecord>,
) -> Result<(), String> {
    use crate::trust::webauthn::{
        answer_challenge, from_b64url, verify_assertion, Assertion, CoseKey, Party,
    };
    message_names(event, answer, parsed)?;
    let Some(passkey) = parsed.passkey_fields() else {
        return Err("its message names no passkey".into());
    };
    let Some(record) = passkeys.get(&passkey.credential) else {
        return Err(format!(
            "its passkey {} is not among the statement's `passkeys`",
            passkey.credential
        ));
    };
    if record.agent != parsed.agent().as_str() || record.enrolled_seq > answer.seq {
        return Err(format!(
            "its passkey {} was not enrolled for agent {} before the answer",
            passkey.credential,
            parsed.agent()
        ));
    }
    if record.revoked_seq.is_some_and(|seq| seq < answer.seq) {
        return Err(format!(
            "its passkey {} was revoked before the answer",
            passkey.credential
        ));
    }
    let key = from_b64url(&record.public_key, "the passkey's public key")
        .and_then(|bytes| CoseKey::parse(&bytes))?;
    let assertion = Assertion::parse(answer.signature.as_deref().unwrap_or_default())?;
    let message = answer.message.as_deref().unwrap_or_default();
    let party = Party {
        origin: &passkey.origin,
        rp_id: &passkey.rp_id,
    };
    verify_assertion(
        &assertion,
        &answer_challenge(message.as_bytes()),
        &party,
        &key,
    )
    .map_err(|e| format!("its passkey signature does not verify: {e}"))?;
    if let Some(signers) = signers {
        if !signers.pins_passkey(parsed.agent().as_str(), &passkey.credential) {
            return Err(format!(
                "its passkey {} is not pinned for {} by the key set in force",
                passkey.credential,
                parsed.agent()
            ));
        }
    }
    Ok(())
}

/// Checks that a signed message `parsed` names the event, the agent and
/// the answer of `answer` (a break-glass message names `breakglass`).
fn message_names(
    event: &EventOutcome,
    answer: &AnswerRecord,
    parsed: &AnswerMessage,
) -> Result<(), String> {
    let answered = match parsed.answer() {
        Answer::Confirm if parsed.break_glass_reason().is_some() => "breakglass",
        Answer::Confirm => "confirmed",
        Answer::Defer(_) => "deferred",
        Answer::Decline { .. } => "declined",
        Answer::Cancel { .. } => "cancelled",
    };
    if parsed.event() != event.id
        || Some(parsed.agent().as_str()) != answer.agent.as_deref()
        || answered != answer.answer
    {
        return Err(format!(
            "its signed message is agent {} answering {} to event {}, not this answer",
            parsed.agent(),
            parsed.answer(),
            parsed.event()
        ));
    }
    Ok(())
}

/// Checks one signed answer: its message names the event, agent and answer,
/// and its signature verifies with a key of the set `set`.
fn check_signed(
    event: &EventOutcome,
    answer: &AnswerRecord,
    set: &str,
    message: &str,
    signature: &str,
    key_sets: &HashMap<&str, Signers>,
) -> Result<AnswerMessage, String> {
    let parsed = AnswerMessage::parse(message.as_bytes())
        .map_err(|e| format!("its signed message is not canonical: {e}"))?;
    message_names(event, answer, &parsed)?;
    let named = answer.detail.get("signers").and_then(Value::as_str);
    if named.is_some_and(|named| named != set) {
        return Err(format!(
            "it names the key set {}, but {set} was in force",
            named.unwrap_or_default()
        ));
    }
    let Some(signers) = key_sets.get(set) else {
        return Err(format!(
            "the key set {set} in force is not among `key_sets` (or does not hash to its digest)"
        ));
    };
    let sig =
        SshSignature::parse(signature).map_err(|e| format!("its signature cannot be read: {e}"))?;
    verify_signature(
        signers,
        parsed.agent(),
        message.as_bytes(),
        &sig,
        parsed.time(),
    )
    .map_err(|e| format!("its signature does not verify with the key set {set}: {e}"))?;
    Ok(parsed)
}

/// Checks that a fired event shows its quorum of confirmations (a lazy
/// one: that nobody declined; a break-glass one: nothing, its answer is
/// checked with the others).
fn check_outcome(event: &EventOutcome, fail: &mut dyn FnMut(String)) {
    if event.state != "fired" || event.breakglass.is_some() {
        return;
    }
    if event.fire == "lazy" {
        if let Some(declined) = event.attendees.iter().find(|a| a.status == "declined") {
            fail(format!(
                "it fired by lazy consensus, but {} declined",
                declined.agent
            ));
        }
        return;
    }
    let confirmed = |agent: &str| {
        event
            .attendees
            .iter()
            .any(|a| a.agent == agent && a.status == "confirmed")
    };
    if event.groups.is_empty() {
        let count = event
            .attendees
            .iter()
            .filter(|a| a.status == "confirmed")
            .count();
        if count < event.quorum {
            fail(format!(
                "it fired with {count} confirmations of the {} its quorum needs",
                event.quorum
            ));
        }
        return;
    }
    for group in &event.groups {
        let count = group.members.iter().filter(|m| confirmed(m)).count();
        if count < group.needed {
            fail(format!(
                "it fired with {count} confirmations in group {} of the {} it needs",
                group.name, group.needed
            ));
        }
    }
}
