//! The errors of the trust building blocks.

use std::path::PathBuf;

use miette::Diagnostic;
use thiserror::Error;

/// Everything that can go wrong while digesting, signing, verifying or
/// chaining. Each variant has a stable code (`t_minus::trust::…`) and a help
/// line saying what to do.
#[derive(Debug, Error, Diagnostic, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrustError {
    /// A hex hash or digest could not be read.
    #[error("invalid hash `{value}`: {reason}")]
    #[diagnostic(
        code(t_minus::trust::hash),
        help("write the hash as printed by t-minus: 64 lowercase hex digits (a digest may carry the prefix `sha256:`)")
    )]
    InvalidHash {
        /// The rejected text.
        value: String,
        /// Why it was rejected.
        reason: String,
    },

    /// An answer message is not in the canonical form.
    #[error("invalid answer message, line {line}: {reason}")]
    #[diagnostic(
        code(t_minus::trust::message),
        help("sign the exact text of the answer message, unchanged (same lines, same order, one trailing newline)")
    )]
    InvalidMessage {
        /// The 1-based line that is wrong.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// An answer message has a line whose key the format does not have.
    #[error("invalid answer message, line {line}: `{key}` is not a field of `{version}`")]
    #[diagnostic(
        code(t_minus::trust::message_field),
        help("an answer message has only the fields of its version, in their order (see docs/security.md); sign the exact message, unchanged")
    )]
    MessageUnknownField {
        /// The 1-based line.
        line: usize,
        /// The unknown key.
        key: String,
        /// The message's header line.
        version: &'static str,
    },

    /// An answer message has a field twice.
    #[error("invalid answer message, line {line}: `{key}` appears a second time (first on line {first})")]
    #[diagnostic(
        code(t_minus::trust::message_repeated),
        help("each field of an answer message appears at most once; sign the exact message, unchanged")
    )]
    MessageRepeatedField {
        /// The 1-based line of the repetition.
        line: usize,
        /// The repeated key.
        key: &'static str,
        /// The line where it first appears.
        first: usize,
    },

    /// An answer message has its fields out of order.
    #[error("invalid answer message, line {line}: `{key}` must come before `{after}`")]
    #[diagnostic(
        code(t_minus::trust::message_order),
        help("the fields of an answer message come in one fixed order (see docs/security.md); sign the exact message, unchanged")
    )]
    MessageFieldOrder {
        /// The 1-based line.
        line: usize,
        /// The key out of place.
        key: &'static str,
        /// The key it follows but must precede.
        after: &'static str,
    },

    /// A version 1 answer message uses what only version 2 has.
    #[error(
        "invalid answer message, line {line}: {what} exists only in version 2 answer messages"
    )]
    #[diagnostic(
        code(t_minus::trust::message_version),
        help(
            "make it a version 2 message (its first line names the version), or leave out what version 1 does not have"
        )
    )]
    MessageVersion {
        /// The 1-based line.
        line: usize,
        /// What version 1 does not have.
        what: String,
    },

    /// A signed answer uses a part of the format this version of t-minus
    /// does not accept yet.
    #[error(
        "{what} is part of the answer message format, but not accepted by this version of t-minus"
    )]
    #[diagnostic(
        code(t_minus::trust::unsupported),
        help("answer as the agent itself, signed with its SSH key, without `on-behalf-of:`, `break-glass:` or passkey fields")
    )]
    Unsupported {
        /// What is not accepted: `a delegated answer (on-behalf-of)`, ….
        what: &'static str,
    },

    /// A signed message's time is before that of the agent's last signed
    /// answer accepted for the same event.
    #[error("agent {agent:?} signed this answer to event {event} at {time}, before its answer signed at {last} that was already accepted")]
    #[diagnostic(
        code(t_minus::trust::order),
        help("an earlier answer cannot come back after a later one was accepted; sign a new answer message now")
    )]
    AnswerOrder {
        /// The event, as `campaign/name` or its id.
        event: String,
        /// The agent.
        agent: String,
        /// The refused message's time.
        time: chrono::DateTime<chrono::Utc>,
        /// The time of the agent's last accepted signed answer.
        last: chrono::DateTime<chrono::Utc>,
    },

    /// A cancel without a signature of an event whose answers must be
    /// signed.
    #[error("{target} requires signed answers, so cancelling it must be signed by a signer of the event")]
    #[diagnostic(
        code(t_minus::trust::unsigned_cancel),
        help("submit a signed answer message whose answer is `cancel`, made and signed by a signer of the event; a campaign with signers is cancelled event by event")
    )]
    UnsignedCancel {
        /// The event (`event …`) or campaign (`campaign …`) to cancel.
        target: String,
    },

    /// A signed cancel aimed at a campaign: a signed cancel names one event.
    #[error("a signed cancel names one event, and {campaign} is a campaign")]
    #[diagnostic(
        code(t_minus::trust::cancel_target),
        help("cancel the campaign's unfinished events one by one, each with a signed cancel")
    )]
    CampaignSignedCancel {
        /// The campaign's name.
        campaign: String,
    },

    /// A line of an `allowed_signers` file could not be read.
    #[error("{source_name}:{line}: {reason}")]
    #[diagnostic(
        code(t_minus::trust::allowed_signers),
        help("each line is `PRINCIPALS [OPTIONS] KEYTYPE BASE64KEY [COMMENT]`, e.g. `alice namespaces=\"t-minus\" ssh-ed25519 AAAA… alice@laptop`")
    )]
    InvalidSignersLine {
        /// The file (or other source) the line comes from.
        source_name: String,
        /// The 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// An entry of an inline signers map could not be read.
    #[error("invalid key for signer {agent:?}: {reason}")]
    #[diagnostic(
        code(t_minus::trust::inline_signer),
        help("give each agent one public key line as in a `.pub` file, e.g. `ssh-ed25519 AAAA… alice@laptop`")
    )]
    InvalidInlineSigner {
        /// The agent whose key is wrong.
        agent: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A signers file or key file could not be read.
    #[error("cannot read {path}: {reason}")]
    #[diagnostic(
        code(t_minus::trust::read),
        help("check that the path is right and the file is readable by this user")
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },

    /// A private key file is not an OpenSSH private key t-minus can use.
    #[error("cannot use the private key {path}: {reason}")]
    #[diagnostic(
        code(t_minus::trust::private_key),
        help("give an OpenSSH private key (`ssh-keygen -t ed25519`); for a passphrase-protected or hardware key, add it to ssh-agent and sign through the agent instead")
    )]
    PrivateKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A public key given where the private key is needed to sign.
    #[error("cannot sign with {path}: this is a public key; pass the private key file")]
    #[diagnostic(code(t_minus::trust::public_key), help("{hint}"))]
    PublicKeyGiven {
        /// The public key file.
        path: PathBuf,
        /// Where the private key usually is.
        hint: String,
    },

    /// No key is registered for the agent in the `t-minus` namespace.
    #[error("no key is allowed to sign for agent {agent:?} in namespace `t-minus`")]
    #[diagnostic(
        code(t_minus::trust::no_signer),
        help("add a line for the agent to the signers (with `namespaces=\"t-minus\"` or no namespaces option), or answer as an agent that has a key")
    )]
    NoSigner {
        /// The agent.
        agent: String,
    },

    /// The ssh-agent could not be reached or refused to sign.
    #[error("ssh-agent: {reason}")]
    #[diagnostic(
        code(t_minus::trust::ssh_agent),
        help("start an agent (`eval $(ssh-agent)`), add the key with `ssh-add KEYFILE`, and make sure SSH_AUTH_SOCK is set in this environment")
    )]
    SshAgent {
        /// What went wrong.
        reason: String,
    },

    /// The ssh-agent holds none of the keys registered for the agent.
    #[error("ssh-agent holds none of the keys registered for agent {agent:?}")]
    #[diagnostic(
        code(t_minus::trust::ssh_agent_key),
        help("add the agent's private key to ssh-agent with `ssh-add KEYFILE` (`ssh-add -l` lists what it holds)")
    )]
    AgentKeyMissing {
        /// The agent.
        agent: String,
    },

    /// Signing failed inside the cryptographic library.
    #[error("signing failed: {reason}")]
    #[diagnostic(
        code(t_minus::trust::sign),
        help(
            "check that the key is an Ed25519, ECDSA or RSA key that `ssh-keygen -Y sign` accepts"
        )
    )]
    Sign {
        /// What went wrong.
        reason: String,
    },

    /// A signature is not an armored `sshsig` signature.
    #[error("invalid signature: {reason}")]
    #[diagnostic(
        code(t_minus::trust::signature_format),
        help("give the whole `-----BEGIN SSH SIGNATURE-----` block that `ssh-keygen -Y sign` or t-minus produced, unchanged")
    )]
    InvalidSignature {
        /// What is wrong with it.
        reason: String,
    },

    /// The signature was made for another namespace.
    #[error("the signature is for namespace `{found}`, not `t-minus`")]
    #[diagnostic(
        code(t_minus::trust::namespace),
        help("sign with `-n t-minus` (`ssh-keygen -Y sign -n t-minus -f KEY FILE`)")
    )]
    WrongNamespace {
        /// The namespace the signature names.
        found: String,
    },

    /// The signature uses an algorithm t-minus does not accept.
    #[error("the signature uses {what}, which t-minus does not accept")]
    #[diagnostic(
        code(t_minus::trust::algorithm),
        help("sign with an Ed25519 key (or ECDSA, or RSA with SHA-2) and a SHA-256 or SHA-512 message hash, as `ssh-keygen -Y sign` does by default")
    )]
    UnacceptedAlgorithm {
        /// The algorithm.
        what: String,
    },

    /// The signature was made by a key that may not sign for the agent.
    #[error("the signature was made by key {fingerprint}, which is not a key of agent {agent:?}")]
    #[diagnostic(
        code(t_minus::trust::wrong_key),
        help("sign with the agent's own private key; the keys allowed for each agent are the ones listed in the signers")
    )]
    WrongKey {
        /// The agent the answer claims to come from.
        agent: String,
        /// The SHA-256 fingerprint of the key that signed.
        fingerprint: String,
    },

    /// The signature does not match the message.
    #[error("the signature of agent {agent:?} does not match the message")]
    #[diagnostic(
        code(t_minus::trust::bad_signature),
        help(
            "the message or the signature was changed after signing; sign the exact message again"
        )
    )]
    BadSignature {
        /// The agent the answer claims to come from.
        agent: String,
    },

    /// An audit chain does not verify.
    #[error("the audit chain breaks at entry {position} (seq {seq}): {kind}")]
    #[diagnostic(
        code(t_minus::trust::chain),
        help("the log was edited, reordered, or had entries removed or inserted at this entry; compare with a head hash kept elsewhere and restore the store from a backup")
    )]
    ChainBroken {
        /// The 0-based position of the first entry that disagrees.
        position: u64,
        /// Its stored sequence number.
        seq: i64,
        /// How it disagrees.
        kind: crate::trust::chain::BreakKind,
    },

    /// An audit entry whose stored `prev` or `hash` is missing or not a hash.
    #[error("the audit chain breaks at entry {position} (seq {seq}): its {column} is {found}")]
    #[diagnostic(
        code(t_minus::trust::chain),
        help("the entry's chain columns were edited or cleared; compare with a head hash kept elsewhere and restore the store from a backup")
    )]
    ChainColumn {
        /// The 0-based position of the entry.
        position: u64,
        /// Its stored sequence number.
        seq: i64,
        /// `prev` or `hash`.
        column: &'static str,
        /// What it holds: `missing`, or the value quoted.
        found: String,
    },

    /// An event's stored state or an attendee's stored answer has no entry
    /// behind it in the event's log.
    #[error("event {event}: {reason}")]
    #[diagnostic(
        code(t_minus::trust::state),
        help("the event's row or an attendee row was edited outside t-minus; restore the store from a backup, or ask the attendee to answer again")
    )]
    StateMismatch {
        /// The event's id.
        event: String,
        /// What disagrees with the log.
        reason: String,
    },

    /// An earlier head is not part of the chain.
    #[error("the head {head} is not in the audit chain")]
    #[diagnostic(
        code(t_minus::trust::since),
        help("the log since that head was not only appended to: entries up to it were changed or removed, or the head comes from another store")
    )]
    HeadNotFound {
        /// The head that was looked for.
        head: String,
    },

    /// An unsigned answer to an event whose answers must be signed.
    #[error("event {event} requires signed answers: agent {agent:?} answered without a signature")]
    #[diagnostic(
        code(t_minus::trust::unsigned),
        help("sign the answer with an SSH key (a key file, or through ssh-agent), or sign its answer message elsewhere and submit the signed answer")
    )]
    Unsigned {
        /// The event, as `campaign/name` or its id.
        event: String,
        /// The agent who answered.
        agent: String,
    },

    /// An MCP server started without a key answered an event whose answers
    /// must be signed.
    #[error("event {event} requires signed answers, and this server for agent {agent:?} has no key to sign with")]
    #[diagnostic(
        code(t_minus::trust::unsigned),
        help("sign the answer yourself: `answer_message` gives the exact message, `submit_answer` records it with its signature; or start the server with a signing key (a key file, or ssh-agent through SSH_AUTH_SOCK)")
    )]
    ServerUnsigned {
        /// The event, as `campaign/name` or its id.
        event: String,
        /// The server's agent.
        agent: String,
    },

    /// A signed answer to an event that declares no signers.
    #[error("event {event} declares no signers, so a signed answer cannot be checked")]
    #[diagnostic(
        code(t_minus::trust::no_signers),
        help("answer unsigned, or declare signers for the event (`signers:` in its campaign's manifest, or when scheduling it) so that its answers are checked")
    )]
    NoSigners {
        /// The event, as `campaign/name` or its id.
        event: String,
    },

    /// The signed message names another content digest than the event's.
    #[error("the event changed since you signed: event {event} has content digest {current}, the answer was signed for {signed}")]
    #[diagnostic(
        code(t_minus::trust::stale),
        help("look at the event again, and if you still agree, sign a new answer: its message will name the current digest")
    )]
    StaleDigest {
        /// The event, as `campaign/name` or its id.
        event: String,
        /// The digest the message names.
        signed: crate::trust::digest::ContentDigest,
        /// The event's current digest.
        current: crate::trust::digest::ContentDigest,
    },

    /// The signed message's time is too far from the engine clock.
    #[error("the answer was signed at {time}, {skew} the engine clock ({now}); {limit}")]
    #[diagnostic(
        code(t_minus::trust::time),
        help("sign the answer again now (answers are accepted up to 5 minutes after and 1 minute before they were signed), and check that this machine's clock is right")
    )]
    MessageTime {
        /// The message's time.
        time: chrono::DateTime<chrono::Utc>,
        /// The engine clock.
        now: chrono::DateTime<chrono::Utc>,
        /// How far off, in words: `5m 12s before`, `2m after`.
        skew: String,
        /// The rule it breaks.
        limit: &'static str,
    },

    /// A signed message was accepted before.
    #[error("the signed answer with nonce {nonce} was already submitted")]
    #[diagnostic(
        code(t_minus::trust::nonce),
        help("every signed answer is accepted once; to answer again, sign a new answer message (each has a fresh nonce)")
    )]
    NonceReused {
        /// The nonce.
        nonce: uuid::Uuid,
    },

    /// A signed answer's message does not match the entry that records it.
    #[error("event {event}: {reason}")]
    #[diagnostic(
        code(t_minus::trust::signed_entry),
        help("the log entry or its signed message was edited outside t-minus; compare with a head hash kept elsewhere and restore the store from a backup")
    )]
    SignedEntry {
        /// The event's id.
        event: String,
        /// What is wrong, naming the entry.
        reason: String,
    },

    /// An attestation checked without the store does not hold together.
    #[error("the attestation does not verify:{}", problems.iter().map(|p| format!("\n- {p}")).collect::<String>())]
    #[diagnostic(
        code(t_minus::trust::attestation),
        help("the statement was edited, or is not an attestation of this version; attest the campaign again from its store and compare")
    )]
    Attestation {
        /// Every problem found, each naming the event and answer.
        problems: Vec<String>,
    },

    /// `apply` would delete unfinished events whose answers must be signed
    /// (a pruned campaign, or events removed from its manifest) without a
    /// signature: deleting them is cancelling them.
    #[error("{campaign} has signers, and deleting its unfinished events ({}) needs a signed cancel of each", events.join(", "))]
    #[diagnostic(
        code(t_minus::trust::unsigned_delete),
        help("nothing was applied; cancel each unfinished event with a cancel signed by a signer of the event (after recording the events that already missed), then apply again")
    )]
    UnsignedDelete {
        /// The campaign (`campaign NAME`).
        campaign: String,
        /// The unfinished events' names.
        events: Vec<String>,
    },
}
