//! Passkeys (WebAuthn): the checks of a registration and of an assertion,
//! byte for byte, with no store and no clock, so that `verify` can redo
//! them offline from the log.
//!
//! A **registration** (`navigator.credentials.create`) is accepted when:
//!
//! - its client data JSON has `type` `webauthn.create`, the `challenge` the
//!   ceremony issued (base64url without padding) and the expected `origin`,
//!   and is not `crossOrigin`;
//! - its attestation object is a CBOR map with `fmt`, `attStmt` and
//!   `authData`. The attestation statement is not checked (t-minus asks for
//!   attestation `none`: it trusts the person's enrolment link, not an
//!   authenticator vendor);
//! - the authenticator data starts with the SHA-256 of the relying party
//!   id, has the user-present (`0x01`), user-verified (`0x04`) and
//!   attested-credential-data (`0x40`) flags, and carries a credential id
//!   (at most 1023 bytes) and a COSE public key t-minus can check: ES256
//!   (kty 2, alg -7, crv 1: ECDSA P-256 with SHA-256) or EdDSA (kty 1,
//!   alg -8, crv 6: Ed25519).
//!
//! An **assertion** (`navigator.credentials.get`) made with that key over
//! `challenge` is accepted ([`verify_assertion`]) when:
//!
//! 1. the client data JSON is a JSON object whose `type` is `webauthn.get`,
//!    whose `challenge` is the base64url (no padding) of `challenge`, whose
//!    `origin` is the expected origin exactly, and whose `crossOrigin`, if
//!    present, is `false`;
//! 2. the authenticator data is at least 37 bytes; its first 32 bytes are
//!    the SHA-256 of the relying party id; its flags byte (offset 32) has
//!    the user-present (`0x01`) and user-verified (`0x04`) bits set;
//! 3. the signature verifies, with the credential's public key, over
//!    `authenticatorData || SHA-256(clientDataJSON)`: for ES256 an ASN.1
//!    DER ECDSA signature over the SHA-256 of those bytes (either `s`), for
//!    EdDSA a 64-byte Ed25519 signature (strict verification).
//!
//! For an answer, `challenge` is the SHA-256 of the answer message's bytes,
//! the origin and relying party id are the message's `passkey-origin` and
//! `passkey-rp-id`, and the credential is its `passkey-credential`.

use base64ct::{Base64UrlUnpadded, Encoding};
use ciborium::Value;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bit 0 of the flags: the user was present.
pub const FLAG_UP: u8 = 0x01;
/// Bit 2 of the flags: the user was verified (PIN, biometrics).
pub const FLAG_UV: u8 = 0x04;
/// Bit 6 of the flags: attested credential data follows.
pub const FLAG_AT: u8 = 0x40;

/// The longest credential id WebAuthn allows, in bytes.
pub const MAX_CREDENTIAL_ID: usize = 1023;

/// Base64url without padding, as WebAuthn writes binary in JSON.
pub fn b64url(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// Reads base64url with or without padding; `what` names it in the error.
pub fn from_b64url(text: &str, what: &str) -> Result<Vec<u8>, String> {
    Base64UrlUnpadded::decode_vec(text.trim_end_matches('='))
        .map_err(|_| format!("{what} is not base64url"))
}

/// A passkey's public key, as its COSE_Key bytes and the algorithm they
/// name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoseKey {
    /// The COSE_Key, exactly as the authenticator gave it.
    pub bytes: Vec<u8>,
    /// The algorithm and key.
    pub key: PublicKey,
}

/// A public key t-minus checks passkey signatures with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// ES256: ECDSA on P-256 with SHA-256 (COSE alg -7).
    Es256(p256::ecdsa::VerifyingKey),
    /// EdDSA on Ed25519 (COSE alg -8).
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl PublicKey {
    /// The COSE algorithm's name: `ES256` or `EdDSA`.
    pub fn algorithm(&self) -> &'static str {
        match self {
            PublicKey::Es256(_) => "ES256",
            PublicKey::Ed25519(_) => "EdDSA",
        }
    }
}

impl CoseKey {
    /// Reads a COSE_Key (the whole of `bytes`).
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let mut rest = bytes;
        let key = read_cose(&mut rest)?;
        if !rest.is_empty() {
            return Err("the COSE key is followed by other bytes".into());
        }
        Ok(key)
    }

    /// The key as base64url of its COSE bytes (how the log records it).
    pub fn to_b64url(&self) -> String {
        b64url(&self.bytes)
    }
}

/// Reads a COSE_Key from the front of `rest`, leaving what follows.
fn read_cose(rest: &mut &[u8]) -> Result<CoseKey, String> {
    let start = *rest;
    let value: Value = ciborium::de::from_reader(&mut *rest)
        .map_err(|e| format!("the COSE key is not CBOR: {e}"))?;
    let bytes = start[..start.len() - rest.len()].to_vec();
    let Value::Map(entries) = value else {
        return Err("the COSE key is not a CBOR map".into());
    };
    let get = |label: i128| {
        entries.iter().find_map(|(k, v)| match k {
            Value::Integer(i) if i128::from(*i) == label => Some(v),
            _ => None,
        })
    };
    let int = |label: i128| match get(label) {
        Some(Value::Integer(i)) => Some(i128::from(*i)),
        _ => None,
    };
    let octets = |label: i128, len: usize, what: &str| match get(label) {
        Some(Value::Bytes(b)) if b.len() == len => Ok(b.clone()),
        _ => Err(format!("the COSE key's {what} is not {len} bytes")),
    };
    let key = match (int(1), int(3), int(-1)) {
        (Some(2), Some(-7), Some(1)) => {
            let x = octets(-2, 32, "x coordinate")?;
            let y = octets(-3, 32, "y coordinate")?;
            let point = p256::EncodedPoint::from_affine_coordinates(
                p256::FieldBytes::from_slice(&x),
                p256::FieldBytes::from_slice(&y),
                false,
            );
            let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point)
                .map_err(|_| "the COSE key's point is not on P-256".to_string())?;
            PublicKey::Es256(key)
        }
        (Some(1), Some(-8), Some(6)) => {
            let x = octets(-2, 32, "public key")?;
            let mut raw = [0u8; 32];
            raw.copy_from_slice(&x);
            let key = ed25519_dalek::VerifyingKey::from_bytes(&raw)
                .map_err(|_| "the COSE key is not an Ed25519 public key".to_string())?;
            PublicKey::Ed25519(key)
        }
        (kty, alg, crv) => {
            return Err(format!(
                "the COSE key (kty {}, alg {}, crv {}) is not ES256 (kty 2, alg -7, crv 1) or EdDSA (kty 1, alg -8, crv 6), the algorithms t-minus checks",
                show(kty),
                show(alg),
                show(crv)
            ))
        }
    };
    Ok(CoseKey { bytes, key })
}

fn show(v: Option<i128>) -> String {
    v.map_or_else(|| "absent".to_string(), |v| v.to_string())
}

/// What a WebAuthn ceremony is checked against: the origin the browser
/// reports and the relying party id the authenticator hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party<'a> {
    /// The origin (`https://approve.example.com`, `http://localhost:8470`).
    pub origin: &'a str,
    /// The relying party id (`example.com`, `localhost`).
    pub rp_id: &'a str,
}

/// A passkey assertion as the log keeps it, in the entry's signature field:
/// the canonical JSON object of these three fields, each base64url without
/// padding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assertion {
    /// The authenticator data.
    pub authenticator_data: String,
    /// The client data JSON, exactly as the browser serialized it.
    pub client_data_json: String,
    /// The signature.
    pub signature: String,
}

impl Assertion {
    /// The canonical JSON (keys sorted, compact) stored as the signature.
    pub fn to_json(&self) -> String {
        // Field order is alphabetical already.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads the stored form.
    pub fn parse(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("the passkey assertion cannot be read: {e}"))
    }
}

/// Checks the client data JSON of a ceremony (see the module docs).
fn check_client_data(
    client_data: &[u8],
    kind: &str,
    challenge: &[u8],
    party: &Party,
) -> Result<(), String> {
    let json: serde_json::Value = serde_json::from_slice(client_data)
        .map_err(|e| format!("the client data is not JSON: {e}"))?;
    if json["type"] != kind {
        return Err(format!(
            "the client data's type is {}, not \"{kind}\"",
            json["type"]
        ));
    }
    let expected = b64url(challenge);
    if json["challenge"].as_str() != Some(expected.as_str()) {
        return Err(format!(
            "the client data's challenge {} is not {expected}, the one issued",
            json["challenge"]
        ));
    }
    if json["origin"].as_str() != Some(party.origin) {
        return Err(format!(
            "the client data's origin {} is not {}",
            json["origin"], party.origin
        ));
    }
    if json.get("crossOrigin").is_some_and(|c| c != false) {
        return Err("the ceremony ran in a cross-origin frame".into());
    }
    Ok(())
}

/// Checks the relying party hash and the UP and UV flags of authenticator
/// data; returns its flags.
fn check_authenticator_data(data: &[u8], party: &Party) -> Result<u8, String> {
    if data.len() < 37 {
        return Err(format!(
            "the authenticator data is {} bytes, shorter than 37",
            data.len()
        ));
    }
    if data[..32] != Sha256::digest(party.rp_id.as_bytes())[..] {
        return Err(format!(
            "the authenticator data is for another relying party than {}",
            party.rp_id
        ));
    }
    let flags = data[32];
    if flags & FLAG_UP == 0 {
        return Err("the authenticator did not see the user present (flag UP unset)".into());
    }
    if flags & FLAG_UV == 0 {
        return Err("the authenticator did not verify the user (flag UV unset)".into());
    }
    Ok(flags)
}

/// A registration that checks out: the credential id and its public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The credential id.
    pub credential: Vec<u8>,
    /// Its public key.
    pub key: CoseKey,
}

/// Checks a registration (see the module docs) made for `challenge`.
pub fn verify_registration(
    client_data: &[u8],
    attestation_object: &[u8],
    challenge: &[u8],
    party: &Party,
) -> Result<Registered, String> {
    check_client_data(client_data, "webauthn.create", challenge, party)?;
    let value: Value = ciborium::de::from_reader(attestation_object)
        .map_err(|e| format!("the attestation object is not CBOR: {e}"))?;
    let Value::Map(entries) = value else {
        return Err("the attestation object is not a CBOR map".into());
    };
    let field = |name: &str| {
        entries.iter().find_map(|(k, v)| match k {
            Value::Text(t) if t == name => Some(v),
            _ => None,
        })
    };
    if !matches!(field("fmt"), Some(Value::Text(_))) || field("attStmt").is_none() {
        return Err("the attestation object lacks `fmt` or `attStmt`".into());
    }
    let Some(Value::Bytes(auth)) = field("authData") else {
        return Err("the attestation object lacks `authData`".into());
    };
    let flags = check_authenticator_data(auth, party)?;
    if flags & FLAG_AT == 0 || auth.len() < 55 {
        return Err("the authenticator data carries no credential (flag AT unset)".into());
    }
    let len = u16::from_be_bytes([auth[53], auth[54]]) as usize;
    if len == 0 || len > MAX_CREDENTIAL_ID || auth.len() < 55 + len {
        return Err(format!("the credential id length {len} is not valid"));
    }
    let credential = auth[55..55 + len].to_vec();
    let mut rest = &auth[55 + len..];
    let key = read_cose(&mut rest)?;
    Ok(Registered { credential, key })
}

/// Checks an assertion (see the module docs): made over `challenge` for
/// `party`, signed with `key`.
pub fn verify_assertion(
    assertion: &Assertion,
    challenge: &[u8],
    party: &Party,
    key: &CoseKey,
) -> Result<(), String> {
    let client_data = from_b64url(&assertion.client_data_json, "the client data JSON")?;
    let auth = from_b64url(&assertion.authenticator_data, "the authenticator data")?;
    let signature = from_b64url(&assertion.signature, "the signature")?;
    check_client_data(&client_data, "webauthn.get", challenge, party)?;
    check_authenticator_data(&auth, party)?;
    let mut signed = auth.clone();
    signed.extend_from_slice(&Sha256::digest(&client_data));
    let bad = || "the signature does not verify with the credential's public key".to_string();
    match &key.key {
        PublicKey::Es256(public) => {
            use p256::ecdsa::signature::Verifier;
            let sig = p256::ecdsa::Signature::from_der(&signature).map_err(|_| bad())?;
            let sig = sig.normalize_s().unwrap_or(sig);
            public.verify(&signed, &sig).map_err(|_| bad())
        }
        PublicKey::Ed25519(public) => {
            let sig = ed25519_dalek::Signature::from_slice(&signature).map_err(|_| bad())?;
            public.verify_strict(&signed, &sig).map_err(|_| bad())
        }
    }
}

/// The challenge of an answer's assertion: the SHA-256 of the message.
pub fn answer_challenge(message: &[u8]) -> [u8; 32] {
    Sha256::digest(message).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;

    fn es256() -> (p256::ecdsa::SigningKey, CoseKey) {
        let secret = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let point = secret.verifying_key().to_encoded_point(false);
        let map = Value::Map(vec![
            (Value::Integer(1.into()), Value::Integer(2.into())),
            (Value::Integer(3.into()), Value::Integer((-7).into())),
            (Value::Integer((-1).into()), Value::Integer(1.into())),
            (
                Value::Integer((-2).into()),
                Value::Bytes(point.x().unwrap().to_vec()),
            ),
            (
                Value::Integer((-3).into()),
                Value::Bytes(point.y().unwrap().to_vec()),
            ),
        ]);
        let mut bytes = Vec::new();
        ciborium::ser::into_writer(&map, &mut bytes).unwrap();
        let key = CoseKey::parse(&bytes).unwrap();
        (secret, key)
    }

    fn assertion(secret: &p256::ecdsa::SigningKey, challenge: &[u8], flags: u8) -> Assertion {
        let party = Party {
            origin: "https://approve.example.com",
            rp_id: "example.com",
        };
        let client = format!(
            r#"{{"type":"webauthn.get","challenge":"{}","origin":"{}","crossOrigin":false}}"#,
            b64url(challenge),
            party.origin
        );
        let mut auth = Sha256::digest(party.rp_id.as_bytes()).to_vec();
        auth.push(flags);
        auth.extend_from_slice(&[0, 0, 0, 1]);
        let mut signed = auth.clone();
        signed.extend_from_slice(&Sha256::digest(client.as_bytes()));
        let sig: p256::ecdsa::Signature = secret.sign(&signed);
        Assertion {
            authenticator_data: b64url(&auth),
            client_data_json: b64url(client.as_bytes()),
            signature: b64url(sig.to_der().as_bytes()),
        }
    }

    #[test]
    fn an_assertion_verifies_and_each_check_refuses_its_mistake() {
        let (secret, key) = es256();
        assert_eq!(key.key.algorithm(), "ES256");
        let party = Party {
            origin: "https://approve.example.com",
            rp_id: "example.com",
        };
        let challenge = answer_challenge(b"t-minus answer v2\n");
        let good = assertion(&secret, &challenge, FLAG_UP | FLAG_UV);
        verify_assertion(&good, &challenge, &party, &key).unwrap();
        let other = answer_challenge(b"other");
        let err = verify_assertion(&good, &other, &party, &key).unwrap_err();
        assert!(err.contains("challenge"), "{err}");
        let elsewhere = Party {
            origin: "https://evil.example",
            rp_id: "example.com",
        };
        let err = verify_assertion(&good, &challenge, &elsewhere, &key).unwrap_err();
        assert!(err.contains("origin"), "{err}");
        let no_uv = assertion(&secret, &challenge, FLAG_UP);
        let err = verify_assertion(&no_uv, &challenge, &party, &key).unwrap_err();
        assert!(err.contains("UV"), "{err}");
        let no_up = assertion(&secret, &challenge, FLAG_UV);
        let err = verify_assertion(&no_up, &challenge, &party, &key).unwrap_err();
        assert!(err.contains("UP"), "{err}");
        let mut forged = good.clone();
        forged.authenticator_data = assertion(&secret, &challenge, 0x05 | 0x10).authenticator_data;
        let err = verify_assertion(&forged, &challenge, &party, &key).unwrap_err();
        assert!(err.contains("signature"), "{err}");
        assert_eq!(Assertion::parse(&good.to_json()).unwrap(), good);
        assert!(good.to_json().starts_with("{\"authenticator_data\":"));
    }

    #[test]
    fn cose_keys_of_other_algorithms_are_refused_by_name() {
        let map = Value::Map(vec![
            (Value::Integer(1.into()), Value::Integer(3.into())),
            (Value::Integer(3.into()), Value::Integer((-257).into())),
        ]);
        let mut bytes = Vec::new();
        ciborium::ser::into_writer(&map, &mut bytes).unwrap();
        let err = CoseKey::parse(&bytes).unwrap_err();
        assert!(err.contains("alg -257"), "{err}");
    }
}
