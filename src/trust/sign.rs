//! Signing answers and verifying signatures, in OpenSSH's `sshsig` format.
//!
//! A signature is what `ssh-keygen -Y sign -n t-minus -f KEY FILE` writes:
//! an armored block starting `-----BEGIN SSH SIGNATURE-----`, over the
//! message bytes, in namespace `t-minus`, with a SHA-512 message hash (SHA-256
//! is accepted when verifying). t-minus signs in-process with an unencrypted
//! OpenSSH private key file, or asks the running ssh-agent to sign, so
//! passphrase-protected and hardware keys work too.
//!
//! Verification accepts a signature for an agent only if it is in namespace
//! `t-minus`, uses an accepted algorithm (Ed25519, ECDSA, RSA with SHA-2, or
//! their FIDO variants; never DSA or RSA with SHA-1), was made by one of the
//! keys the [`Signers`] allow for that agent at the answer's time, and matches
//! the message.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

use crate::agent::AgentId;
use crate::trust::error::TrustError;
use crate::trust::signers::{SignerEntry, Signers};
use crate::trust::NAMESPACE;

/// The hash t-minus signs with (the `ssh-keygen` default).
pub const HASH: HashAlg = HashAlg::Sha512;

/// The environment variable naming the ssh-agent socket.
pub const AUTH_SOCK_ENV: &str = "SSH_AUTH_SOCK";

/// An `sshsig` signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSignature(SshSig);

impl SshSignature {
    /// Reads an armored signature (`-----BEGIN SSH SIGNATURE-----` …).
    pub fn parse(armored: &str) -> Result<Self, TrustError> {
        SshSig::from_pem(armored.trim().as_bytes())
            .map(SshSignature)
            .map_err(|e| TrustError::InvalidSignature {
                reason: e.to_string(),
            })
    }

    /// The armored form, lines ended by `\n`.
    pub fn to_armored(&self) -> String {
        // Encoding a signature that was decoded or built from valid parts
        // does not fail; an empty string would fail every later parse.
        self.0.to_pem(LineEnding::LF).unwrap_or_default()
    }

    /// The decoded signature.
    pub fn sshsig(&self) -> &SshSig {
        &self.0
    }

    /// The SHA-256 fingerprint of the key that made it (`SHA256:…`).
    pub fn fingerprint(&self) -> String {
        PublicKey::from(self.0.public_key().clone())
            .fingerprint(HashAlg::Sha256)
            .to_string()
    }
}

impl From<SshSig> for SshSignature {
    fn from(sig: SshSig) -> Self {
        SshSignature(sig)
    }
}

impl FromStr for SshSignature {
    type Err = TrustError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for SshSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_armored())
    }
}

/// Reads an unencrypted OpenSSH private key file.
pub fn read_private_key(path: &Path) -> Result<PrivateKey, TrustError> {
    let text = std::fs::read(path).map_err(|e| TrustError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let key = PrivateKey::from_openssh(&text).map_err(|e| {
        let public = std::str::from_utf8(&text)
            .is_ok_and(|t| PublicKey::from_openssh(t.trim()).is_ok());
        if public {
            let hint = match path.to_str().and_then(|p| p.strip_suffix(".pub")) {
                Some(private) => format!("the private key is usually the same path without `.pub`: {private}"),
                None => "the private key is the file without `.pub` that ssh-keygen wrote beside this one".into(),
            };
            TrustError::PublicKeyGiven {
                path: path.to_path_buf(),
                hint,
            }
        } else {
            TrustError::PrivateKey {
                path: path.to_path_buf(),
                reason: format!("it is not an OpenSSH private key ({e})"),
            }
        }
    })?;
    if key.is_encrypted() {
        return Err(TrustError::PrivateKey {
            path: path.to_path_buf(),
            reason: "it is protected by a passphrase".into(),
        });
    }
    Ok(key)
}

/// Signs `message` with the unencrypted OpenSSH private key in `path`.
pub fn sign_with_key_file(path: &Path, message: &[u8]) -> Result<SshSignature, TrustError> {
    sign_with_private_key(&read_private_key(path)?, message)
}

/// Signs `message` with `key`, in namespace `t-minus` with SHA-512.
pub fn sign_with_private_key(key: &PrivateKey, message: &[u8]) -> Result<SshSignature, TrustError> {
    sign_in_namespace(key, NAMESPACE, message)
}

/// Signs `message` with `key` in `namespace` with SHA-512 (an attestation
/// is signed in [`crate::trust::attest::STATEMENT_NAMESPACE`], so that a
/// signature over a statement can never pass for an answer's).
pub fn sign_in_namespace(
    key: &PrivateKey,
    namespace: &str,
    message: &[u8],
) -> Result<SshSignature, TrustError> {
    if key.algorithm() == Algorithm::Dsa {
        return Err(TrustError::UnacceptedAlgorithm {
            what: "a DSA key".into(),
        });
    }
    key.sign(namespace, HASH, message)
        .map(SshSignature)
        .map_err(|e| TrustError::Sign {
            reason: match key.algorithm() {
                Algorithm::Rsa { .. } => format!(
                    "{e}: this RSA key cannot be used for signing in-process; add it to ssh-agent (`ssh-add KEYFILE`) and sign through the agent, or use an Ed25519 key"
                ),
                _ => e.to_string(),
            },
        })
}

/// Where a signature comes from: an unencrypted OpenSSH private key file,
/// or the running ssh-agent (`SSH_AUTH_SOCK`), which signs with a key the
/// signers register for the agent (so passphrase-protected and hardware
/// keys work).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningKey {
    /// A private key file.
    File(PathBuf),
    /// The ssh-agent.
    Agent,
}

impl SigningKey {
    /// `agent` names the ssh-agent; anything else is a key file's path.
    pub fn parse(text: &str) -> Self {
        if text == "agent" {
            SigningKey::Agent
        } else {
            SigningKey::File(PathBuf::from(text))
        }
    }

    /// Signs `message` for `agent`, whose answer is made at `at`; through the
    /// ssh-agent, with a key `signers` allow for the agent then.
    pub fn sign(
        &self,
        signers: &Signers,
        agent: &AgentId,
        message: &[u8],
        at: DateTime<Utc>,
    ) -> Result<SshSignature, TrustError> {
        match self {
            SigningKey::File(path) => sign_with_key_file(path, message),
            SigningKey::Agent => {
                sign_with_agent(&agent_socket_from_env()?, signers, agent, message, at)
            }
        }
    }
}

/// The ssh-agent socket named by `SSH_AUTH_SOCK`.
pub fn agent_socket_from_env() -> Result<PathBuf, TrustError> {
    match std::env::var_os(AUTH_SOCK_ENV) {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => Err(TrustError::SshAgent {
            reason: format!("{AUTH_SOCK_ENV} is not set, so there is no agent to ask"),
        }),
    }
}

/// Asks the ssh-agent at `socket` to sign `message` for `agent` with the
/// first key (in signers order) that the signers allow for the agent at `at`
/// and that the ssh-agent holds. The signature is checked before it is
/// returned.
pub fn sign_with_agent(
    socket: &Path,
    signers: &Signers,
    agent: &AgentId,
    message: &[u8],
    at: DateTime<Utc>,
) -> Result<SshSignature, TrustError> {
    let allowed = signers.keys_for(agent.as_str(), at);
    if allowed.is_empty() {
        return Err(TrustError::NoSigner {
            agent: agent.to_string(),
        });
    }
    let agent_error = |what: &str, e: ssh_agent_client_rs::Error| TrustError::SshAgent {
        reason: format!("{what} ({}): {e}", socket.display()),
    };
    let mut client = ssh_agent_client_rs::Client::connect(socket)
        .map_err(|e| agent_error("cannot connect to the agent", e))?;
    let held = client
        .list_all_identities()
        .map_err(|e| agent_error("cannot list the agent's keys", e))?;
    let key = allowed
        .into_iter()
        .find(|key| {
            held.iter().any(|identity| match identity {
                ssh_agent_client_rs::Identity::PublicKey(h) => h.key_data() == key.key_data(),
                ssh_agent_client_rs::Identity::Certificate(_) => false,
            })
        })
        .ok_or_else(|| TrustError::AgentKeyMissing {
            agent: agent.to_string(),
        })?;
    let signed_data =
        SshSig::signed_data(NAMESPACE, HASH, message).map_err(|e| TrustError::Sign {
            reason: e.to_string(),
        })?;
    let raw = client
        .sign(key, &signed_data)
        .map_err(|e| agent_error("the agent refused to sign", e))?;
    let sig = SshSig::new(key.key_data().clone(), NAMESPACE, HASH, raw).map_err(|e| {
        TrustError::Sign {
            reason: e.to_string(),
        }
    })?;
    key.verify(NAMESPACE, message, &sig)
        .map_err(|e| TrustError::SshAgent {
            reason: format!("the agent returned a signature that does not verify: {e}"),
        })?;
    Ok(SshSignature(sig))
}

/// Checks that `signature` is a valid t-minus signature of `message` by a key
/// the signers allow for `agent` at `at` (the answer's time). Returns the
/// signers entry whose key made it.
pub fn verify_signature<'s>(
    signers: &'s Signers,
    agent: &AgentId,
    message: &[u8],
    signature: &SshSignature,
    at: DateTime<Utc>,
) -> Result<&'s SignerEntry, TrustError> {
    let sig = signature.sshsig();
    if sig.namespace() != NAMESPACE {
        return Err(TrustError::WrongNamespace {
            found: sig.namespace().chars().take(80).collect(),
        });
    }
    if !matches!(sig.hash_alg(), HashAlg::Sha256 | HashAlg::Sha512) {
        return Err(TrustError::UnacceptedAlgorithm {
            what: format!("the message hash {}", sig.hash_alg()),
        });
    }
    match sig.algorithm() {
        Algorithm::Dsa => return Err(TrustError::UnacceptedAlgorithm { what: "DSA".into() }),
        Algorithm::Rsa { hash: None } => {
            return Err(TrustError::UnacceptedAlgorithm {
                what: "RSA with SHA-1".into(),
            })
        }
        Algorithm::Other(name) => {
            return Err(TrustError::UnacceptedAlgorithm {
                what: format!("the algorithm `{}`", name.as_str()),
            })
        }
        _ => {}
    }
    let entries = signers.entries_for(agent.as_str(), at);
    if entries.is_empty() {
        return Err(TrustError::NoSigner {
            agent: agent.to_string(),
        });
    }
    let entry = entries
        .into_iter()
        .find(|entry| entry.key.key_data() == sig.public_key())
        .ok_or_else(|| TrustError::WrongKey {
            agent: agent.to_string(),
            fingerprint: signature.fingerprint(),
        })?;
    entry
        .key
        .verify(NAMESPACE, message, sig)
        .map_err(|_| TrustError::BadSignature {
            agent: agent.to_string(),
        })?;
    Ok(entry)
}
