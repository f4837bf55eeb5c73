//! Trusted answers: the building blocks that bind an answer to what was
//! approved, prove who gave it, and make the audit trail tamper-evident.
//!
//! - [`digest`]: the content digest of an event (what an approval is bound to).
//! - [`message`]: the canonical answer message an agent signs.
//! - [`signers`]: who may sign, read from an OpenSSH `allowed_signers` file or
//!   an inline map of agents to public keys.
//! - [`sign`]: signing (with a private key file or through the running
//!   ssh-agent) and verification, in OpenSSH's `sshsig` format, so
//!   `ssh-keygen -Y sign` and `ssh-keygen -Y verify` interoperate.
//! - [`grant`]: the signed delegation message an agent signs to let another
//!   answer for it.
//! - [`chain`]: the hash chain over audit entries.
//! - [`attest`]: a campaign's outcome as an in-toto statement.
//! - [`record`]: what the log says an event or campaign is, field by field.
//!
//! Every byte format is specified exactly in the module that defines it and
//! in `docs/security.md`. Nothing here touches a store: these are pure
//! functions and types for the engine to call.

pub mod attest;
pub mod chain;
pub mod digest;
pub mod error;
pub(crate) mod framing;
pub mod grant;
pub mod message;
pub mod record;
pub mod sign;
pub mod signers;
pub mod webauthn;

pub use chain::{verify_chain, BreakKind, ChainHash, ChainLink, ChainVerifier};
pub use digest::{content_digest, ContentDigest};
pub use error::TrustError;
pub use message::{Answer, AnswerMessage};
pub use sign::{
    agent_socket_from_env, sign_with_agent, sign_with_key_file, sign_with_private_key,
    verify_signature, SigningKey, SshSignature,
};
pub use signers::{SignerEntry, Signers};

/// The `sshsig` namespace of every t-minus signature.
pub const NAMESPACE: &str = "t-minus";
