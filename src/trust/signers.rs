//! Who may sign answers: an OpenSSH `allowed_signers` file or an inline map
//! of agents to public keys.
//!
//! The `allowed_signers` format is OpenSSH's (see `ssh-keygen(1)`, section
//! ALLOWED SIGNERS). Each non-blank line not starting with `#` is
//!
//! ```text
//! PRINCIPALS [OPTIONS] KEYTYPE BASE64KEY [COMMENT]
//! ```
//!
//! - `PRINCIPALS`: a comma-separated list of patterns (`*` and `?` wildcards,
//!   a leading `!` negates), optionally in double quotes. An agent matches a
//!   line when some pattern matches it and no negated pattern does.
//! - `OPTIONS` (comma-separated, names case-insensitive):
//!   - `namespaces="LIST"`: patterns of the namespaces the key may sign for.
//!     A key whose namespaces do not match `t-minus` does not count here.
//!   - `valid-after="TIME"`, `valid-before="TIME"`: `YYYYMMDD`,
//!     `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, in UTC when followed by `Z` or
//!     `UTC`, local time otherwise. The key counts only for answers made in
//!     that window (both ends inclusive).
//!   - `cert-authority`: the key is a certificate authority. t-minus accepts
//!     signatures by plain keys only, so such a line is read but authorizes
//!     no answer.
//! - `KEYTYPE BASE64KEY [COMMENT]`: the public key as in a `.pub` file.
//!   Ed25519, ECDSA (P-256, P-384, P-521), RSA and the FIDO `sk-` variants
//!   are accepted; DSA keys are refused.
//!
//! The inline form maps each agent to one public key line; such a key counts
//! for exactly that agent, in every namespace, at every time.
//!
//! Looking up an agent's keys costs O(log n) for lines whose principals are
//! plain names, plus a scan of the (usually few) lines with wildcards or
//! negations.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use ssh_key::{Algorithm, PublicKey};

use crate::trust::error::TrustError;
use crate::trust::NAMESPACE;

/// One line of an `allowed_signers` file (or one entry of an inline map).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerEntry {
    /// The principal patterns.
    pub principals: Vec<String>,
    /// Whether the key is a certificate authority (see the module docs).
    pub cert_authority: bool,
    /// The namespace patterns, if restricted.
    pub namespaces: Option<Vec<String>>,
    /// The key counts only for answers made at or after this time.
    pub valid_after: Option<DateTime<Utc>>,
    /// The key counts only for answers made at or before this time.
    pub valid_before: Option<DateTime<Utc>>,
    /// The public key (with its comment).
    pub key: PublicKey,
    /// The 1-based line it was read from (for an inline map: its position).
    pub line: usize,
}

impl SignerEntry {
    /// Whether this entry lets its key sign t-minus answers for `agent` made
    /// at `at`.
    pub fn allows(&self, agent: &str, at: DateTime<Utc>) -> bool {
        self.names(agent)
            && self.valid_after.is_none_or(|after| at >= after)
            && self.valid_before.is_none_or(|before| at <= before)
    }

    /// Whether this entry lets its key sign t-minus answers for `agent` at
    /// some time: a plain key, a principal that matches, the `t-minus`
    /// namespace.
    pub fn names(&self, agent: &str) -> bool {
        !self.cert_authority
            && match_pattern_list(agent, &self.principals)
            && self
                .namespaces
                .as_ref()
                .is_none_or(|ns| match_pattern_list(NAMESPACE, ns))
    }

    /// The entry as an `allowed_signers` line (times in UTC).
    pub fn to_line(&self) -> String {
        let mut line = format!("\"{}\"", self.principals.join(","));
        let mut options = Vec::new();
        if self.cert_authority {
            options.push("cert-authority".to_string());
        }
        if let Some(ns) = &self.namespaces {
            options.push(format!("namespaces=\"{}\"", ns.join(",")));
        }
        if let Some(after) = self.valid_after {
            options.push(format!("valid-after=\"{}\"", after.format("%Y%m%d%H%M%SZ")));
        }
        if let Some(before) = self.valid_before {
            options.push(format!(
                "valid-before=\"{}\"",
                before.format("%Y%m%d%H%M%SZ")
            ));
        }
        if !options.is_empty() {
            line.push(' ');
            line.push_str(&options.join(","));
        }
        line.push(' ');
        // Encoding a key that was decoded cannot fail; fall back to the
        // algorithm name so the line is still recognisably this key's.
        line.push_str(
            &self
                .key
                .to_openssh()
                .unwrap_or_else(|_| self.key.algorithm().to_string()),
        );
        line
    }
}

/// The keys allowed to sign answers, by agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signers {
    entries: Vec<SignerEntry>,
    /// Plain principal name → entries naming it (entries with only plain,
    /// non-negated principals).
    by_name: BTreeMap<String, Vec<usize>>,
    /// Entries with wildcard or negated principals, checked for every agent.
    patterned: Vec<usize>,
    /// Passkeys pinned by credential id (`AGENT webauthn:CREDENTIAL`).
    pins: Vec<PasskeyPin>,
}

/// A passkey a key set pins for an agent: the only passkeys that may answer
/// for that agent where the set is in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyPin {
    /// The agent (a plain name, no pattern).
    pub agent: String,
    /// The WebAuthn credential id, base64url without padding.
    pub credential: String,
    /// The 1-based line it was read from (for an inline map: its position).
    pub line: usize,
}

/// The prefix of a pinned passkey where a key would be.
pub const WEBAUTHN_PREFIX: &str = "webauthn:";

/// Reads `webauthn:CREDENTIAL` (the credential id in base64url without
/// padding).
fn parse_pin(agent: &str, text: &str, line: usize) -> Result<PasskeyPin, String> {
    let credential = text.strip_prefix(WEBAUTHN_PREFIX).unwrap_or(text).trim();
    let valid = !credential.is_empty()
        && credential
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(format!(
            "`{text}` is not a pinned passkey: write `webauthn:` and the credential id in base64url without padding (`t-minus people list` shows it)"
        ));
    }
    if is_pattern(agent) || agent.contains(',') {
        return Err("a pinned passkey names one agent, not a pattern or a list".into());
    }
    Ok(PasskeyPin {
        agent: agent.to_string(),
        credential: credential.to_string(),
        line,
    })
}

impl Signers {
    /// Reads an `allowed_signers` file.
    pub fn read_allowed_signers(path: &Path) -> Result<Self, TrustError> {
        let text = std::fs::read_to_string(path).map_err(|e| TrustError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::parse_allowed_signers(&text, &path.display().to_string())
    }

    /// Parses the text of an `allowed_signers` file; `source_name` names it
    /// in errors.
    pub fn parse_allowed_signers(text: &str, source_name: &str) -> Result<Self, TrustError> {
        let mut signers = Signers::default();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let content = raw.trim_start_matches([' ', '\t']);
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let invalid = |reason: String| TrustError::InvalidSignersLine {
                source_name: source_name.to_string(),
                line,
                reason,
            };
            let (principal, rest) = take_token(content).map_err(invalid)?;
            let rest = rest.trim_start_matches([' ', '\t']);
            if rest.starts_with(WEBAUTHN_PREFIX) {
                let pin = parse_pin(principal, rest.trim_end(), line).map_err(invalid)?;
                signers.pins.push(pin);
                continue;
            }
            let entry = parse_line(content, line).map_err(invalid)?;
            signers.push(entry);
        }
        Ok(signers)
    }

    /// Builds signers from an inline map of agent → public key line
    /// (`ssh-ed25519 AAAA… comment`).
    pub fn from_inline<I, A, K>(map: I) -> Result<Self, TrustError>
    where
        I: IntoIterator<Item = (A, K)>,
        A: AsRef<str>,
        K: AsRef<str>,
    {
        let mut signers = Signers::default();
        for (index, (agent, key)) in map.into_iter().enumerate() {
            let (agent, key) = (agent.as_ref(), key.as_ref());
            let invalid = |reason: String| TrustError::InvalidInlineSigner {
                agent: agent.to_string(),
                reason,
            };
            crate::agent::AgentId::parse(agent).map_err(|e| invalid(e.to_string()))?;
            if agent.contains([',', '*', '?', '!', '"']) {
                return Err(invalid(
                    "an agent id used as a signer cannot contain `,` `*` `?` `!` or `\"`".into(),
                ));
            }
            if key.trim().starts_with(WEBAUTHN_PREFIX) {
                let pin = parse_pin(agent, key.trim(), index + 1).map_err(invalid)?;
                signers.pins.push(pin);
                continue;
            }
            let key = parse_key(key.trim()).map_err(invalid)?;
            signers.push(SignerEntry {
                principals: vec![agent.to_string()],
                cert_authority: false,
                namespaces: None,
                valid_after: None,
                valid_before: None,
                key,
                line: index + 1,
            });
        }
        Ok(signers)
    }

    fn push(&mut self, entry: SignerEntry) {
        let index = self.entries.len();
        if entry.principals.iter().all(|p| !is_pattern(p)) {
            for principal in &entry.principals {
                let slot = self.by_name.entry(principal.clone()).or_default();
                if !slot.contains(&index) {
                    slot.push(index);
                }
            }
        } else {
            self.patterned.push(index);
        }
        self.entries.push(entry);
    }

    /// Every entry, in file order.
    pub fn entries(&self) -> &[SignerEntry] {
        &self.entries
    }

    /// Whether there are no entries and no pinned passkeys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.pins.is_empty()
    }

    /// The pinned passkeys, in file order.
    pub fn pins(&self) -> &[PasskeyPin] {
        &self.pins
    }

    /// Whether the passkey `credential` is pinned for `agent`.
    pub fn pins_passkey(&self, agent: &str, credential: &str) -> bool {
        self.pins
            .iter()
            .any(|pin| pin.agent == agent && pin.credential == credential)
    }

    /// The entries whose keys may sign t-minus answers for `agent` made at
    /// `at`, in file order.
    pub fn entries_for(&self, agent: &str, at: DateTime<Utc>) -> Vec<&SignerEntry> {
        let mut indexes: Vec<usize> = self.by_name.get(agent).cloned().unwrap_or_default();
        indexes.extend(self.patterned.iter().copied());
        indexes.sort_unstable();
        indexes.dedup();
        indexes
            .into_iter()
            .map(|i| &self.entries[i])
            .filter(|entry| entry.allows(agent, at))
            .collect()
    }

    /// The keys that may sign t-minus answers for `agent` made at `at`.
    pub fn keys_for(&self, agent: &str, at: DateTime<Utc>) -> Vec<&PublicKey> {
        self.entries_for(agent, at)
            .into_iter()
            .map(|entry| &entry.key)
            .collect()
    }

    /// Whether some key here may sign t-minus answers for `agent` (at some
    /// time: validity windows are not considered).
    pub fn may_sign(&self, agent: &str) -> bool {
        self.entries.iter().any(|entry| entry.names(agent))
            || self.pins.iter().any(|pin| pin.agent == agent)
    }

    /// The digest that names this key set: `sha256:` and the SHA-256, in
    /// lowercase hex, of [`Signers::to_allowed_signers`].
    pub fn digest(&self) -> String {
        digest_of_text(&self.to_allowed_signers())
    }

    /// The signers as an `allowed_signers` file, one line per entry, then
    /// one line per pinned passkey (`"AGENT" webauthn:CREDENTIAL`, which
    /// only t-minus reads: drop those lines before handing the file to
    /// `ssh-keygen`).
    pub fn to_allowed_signers(&self) -> String {
        let mut out = String::new();
        for entry in &self.entries {
            out.push_str(&entry.to_line());
            out.push('\n');
        }
        for pin in &self.pins {
            out.push_str(&format!(
                "\"{}\" {WEBAUTHN_PREFIX}{}\n",
                pin.agent, pin.credential
            ));
        }
        out
    }
}

/// The digest of a key set's canonical text: `sha256:` and 64 hex digits.
pub fn digest_of_text(text: &str) -> String {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(text.as_bytes());
    let mut out = String::from("sha256:");
    for byte in hash {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

fn is_pattern(principal: &str) -> bool {
    principal.starts_with('!') || principal.contains(['*', '?'])
}

/// Parses one non-comment line (leading whitespace already removed).
fn parse_line(content: &str, line: usize) -> Result<SignerEntry, String> {
    let (principals, rest) = take_token(content)?;
    if principals.is_empty() {
        return Err("the principals are empty".into());
    }
    let principals: Vec<String> = principals.split(',').map(str::to_string).collect();
    if principals.iter().any(String::is_empty) {
        return Err("a principal in the list is empty (check the commas)".into());
    }
    let rest = rest.trim_start_matches([' ', '\t']);
    if rest.is_empty() {
        return Err("the public key is missing after the principals".into());
    }
    let mut entry = SignerEntry {
        principals,
        cert_authority: false,
        namespaces: None,
        valid_after: None,
        valid_before: None,
        key: placeholder_key(),
        line,
    };
    // A known key type right after the principals means there are no
    // options; otherwise the first token is the options list.
    let first = rest.split([' ', '\t']).next().unwrap_or("");
    let key_text = if matches!(first.parse::<Algorithm>(), Ok(a) if !matches!(a, Algorithm::Other(_)))
    {
        rest
    } else {
        let (options, key_text) = take_options(rest)?;
        apply_options(&mut entry, options)?;
        let key_text = key_text.trim_start_matches([' ', '\t']);
        if key_text.is_empty() {
            return Err("the public key is missing after the options".into());
        }
        key_text
    };
    entry.key = parse_key(key_text)?;
    if let (Some(after), Some(before)) = (entry.valid_after, entry.valid_before) {
        if before <= after {
            return Err("valid-before must be later than valid-after".into());
        }
    }
    Ok(entry)
}

/// A key that only fills the slot until the real one is parsed.
fn placeholder_key() -> PublicKey {
    PublicKey::new(
        ssh_key::public::KeyData::Ed25519(ssh_key::public::Ed25519PublicKey([0; 32])),
        "",
    )
}

/// Splits off the first token: a double-quoted string (quotes removed) or
/// everything up to the first space or tab.
fn take_token(text: &str) -> Result<(&str, &str), String> {
    if let Some(quoted) = text.strip_prefix('"') {
        let end = quoted
            .find('"')
            .ok_or("the quoted principals have no closing `\"`")?;
        let rest = &quoted[end + 1..];
        if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
            return Err("expected a space after the closing `\"` of the principals".into());
        }
        Ok((&quoted[..end], rest))
    } else {
        let end = text.find([' ', '\t']).unwrap_or(text.len());
        Ok((&text[..end], &text[end..]))
    }
}

/// Splits off the options token: up to the first space or tab outside
/// double quotes (a `\"` inside quotes does not end them).
fn take_options(text: &str) -> Result<(&str, &str), String> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            ' ' | '\t' if !in_quotes => return Ok((&text[..i], &text[i..])),
            _ => {}
        }
    }
    if in_quotes {
        Err("an option value has no closing `\"`".into())
    } else {
        Ok((text, ""))
    }
}

/// Applies a comma-separated options list.
fn apply_options(entry: &mut SignerEntry, mut options: &str) -> Result<(), String> {
    while !options.is_empty() {
        let (name, value, rest) = next_option(options)?;
        match (name.to_ascii_lowercase().as_str(), value) {
            ("cert-authority", None) => entry.cert_authority = true,
            ("namespaces", Some(value)) => {
                let list: Vec<String> = value.split(',').map(str::to_string).collect();
                if list.iter().any(String::is_empty) {
                    return Err("a namespace in `namespaces` is empty".into());
                }
                entry.namespaces = Some(list);
            }
            ("valid-after", Some(value)) => entry.valid_after = Some(parse_time(&value)?),
            ("valid-before", Some(value)) => entry.valid_before = Some(parse_time(&value)?),
            ("cert-authority", Some(_)) => return Err("`cert-authority` takes no value".into()),
            ("namespaces" | "valid-after" | "valid-before", None) => {
                return Err(format!("the option `{name}` needs a value: `{name}=\"…\"`"))
            }
            _ => {
                return Err(format!(
                    "unsupported option `{name}` (or the key type is unknown); the options are `namespaces`, `valid-after`, `valid-before` and `cert-authority`"
                ))
            }
        }
        options = rest;
    }
    Ok(())
}

/// Reads one option: its name, its dequoted value if any, and what follows
/// its comma.
fn next_option(text: &str) -> Result<(&str, Option<String>, &str), String> {
    let name_end = text.find(['=', ',']).unwrap_or(text.len());
    let name = &text[..name_end];
    if name.is_empty() {
        return Err("an option is empty (check the commas)".into());
    }
    let after = &text[name_end..];
    let Some(quoted) = after.strip_prefix('=') else {
        return Ok((name, None, after.strip_prefix(',').unwrap_or(after)));
    };
    let Some(body) = quoted.strip_prefix('"') else {
        return Err(format!("the value of `{name}` must be in double quotes"));
    };
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, '"')) => value.push('"'),
                Some((_, other)) => {
                    value.push('\\');
                    value.push(other);
                }
                None => break,
            },
            '"' => {
                let rest = &body[i + 1..];
                return match rest.strip_prefix(',') {
                    Some(rest) => Ok((name, Some(value), rest)),
                    None if rest.is_empty() => Ok((name, Some(value), rest)),
                    None => Err(format!("expected `,` after the value of `{name}`")),
                };
            }
            other => value.push(other),
        }
    }
    Err(format!("the value of `{name}` has no closing `\"`"))
}

/// Reads an OpenSSH key validity time.
fn parse_time(value: &str) -> Result<DateTime<Utc>, String> {
    let (digits, utc) = if let Some(d) = value.strip_suffix('Z') {
        (d, true)
    } else if let Some(d) = value.strip_suffix("UTC") {
        (d, true)
    } else {
        (value, false)
    };
    let invalid = || {
        format!("invalid time `{value}`: write YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, with `Z` for UTC")
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(invalid());
    }
    let number = |range: std::ops::Range<usize>| -> Result<u32, String> {
        match digits.get(range) {
            Some(text) if !text.is_empty() => text.parse().map_err(|_| invalid()),
            _ => Ok(0),
        }
    };
    let year = i32::try_from(number(0..4)?).map_err(|_| invalid())?;
    let date = NaiveDate::from_ymd_opt(year, number(4..6)?, number(6..8)?).ok_or_else(invalid)?;
    let time = NaiveTime::from_hms_opt(number(8..10)?, number(10..12)?, number(12..14)?)
        .ok_or_else(invalid)?;
    let naive = NaiveDateTime::new(date, time);
    if utc {
        Ok(naive.and_utc())
    } else {
        Local
            .from_local_datetime(&naive)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| format!("the local time `{value}` does not exist (a clock change)"))
    }
}

/// Parses `KEYTYPE BASE64KEY [COMMENT]`, refusing key types t-minus does
/// not accept.
pub(crate) fn parse_key(text: &str) -> Result<PublicKey, String> {
    let key = PublicKey::from_openssh(text).map_err(|e| {
        let kind = text.split([' ', '\t']).next().unwrap_or("");
        format!(
            "`{}…` is not a public key ({e})",
            kind.chars().take(40).collect::<String>()
        )
    })?;
    match key.algorithm() {
        Algorithm::Dsa => Err("DSA keys are not accepted; use an Ed25519 key".into()),
        Algorithm::Other(name) => Err(format!("the key type `{}` is not supported", name.as_str())),
        _ => Ok(key),
    }
}

/// OpenSSH's pattern-list match: true when some pattern matches `name` and
/// no negated (`!`) pattern does.
fn match_pattern_list(name: &str, patterns: &[String]) -> bool {
    let mut matched = false;
    for pattern in patterns {
        if let Some(negated) = pattern.strip_prefix('!') {
            if match_pattern(name, negated) {
                return false;
            }
        } else if match_pattern(name, pattern) {
            matched = true;
        }
    }
    matched
}

/// Glob match with `*` (any run) and `?` (one character), in linear space.
fn match_pattern(name: &str, pattern: &str) -> bool {
    let name: Vec<char> = name.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    let (mut n, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == name[n]) {
            n += 1;
            p += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((star_p, star_n)) = star {
            p = star_p + 1;
            n = star_n + 1;
            star = Some((star_p, star_n + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matching() {
        assert!(match_pattern("alice", "alice"));
        assert!(match_pattern("alice", "a*"));
        assert!(match_pattern("alice", "*"));
        assert!(match_pattern("alice", "al?ce"));
        assert!(match_pattern("alice", "*li*e"));
        assert!(!match_pattern("alice", "bob"));
        assert!(!match_pattern("alice", "a?"));
        assert!(!match_pattern("alice", "alice?"));
        let list = |s: &str| s.split(',').map(str::to_string).collect::<Vec<_>>();
        assert!(match_pattern_list("ops-1", &list("ops-*,!ops-2")));
        assert!(!match_pattern_list("ops-2", &list("ops-*,!ops-2")));
        assert!(!match_pattern_list("dev", &list("!ops-2")));
    }

    #[test]
    fn times_in_utc_and_forms() {
        assert_eq!(
            parse_time("20260102Z").unwrap().to_rfc3339(),
            "2026-01-02T00:00:00+00:00"
        );
        assert_eq!(
            parse_time("202601021304UTC").unwrap().to_rfc3339(),
            "2026-01-02T13:04:00+00:00"
        );
        assert_eq!(
            parse_time("20260102130405Z").unwrap().to_rfc3339(),
            "2026-01-02T13:04:05+00:00"
        );
        assert!(parse_time("2026010").is_err());
        assert!(parse_time("20261302Z").is_err());
        assert!(parse_time("2026-01-02").is_err());
    }
}
