//! Names of campaigns and of events within a campaign.

use crate::input::InputError;

/// Checks a name against `[A-Za-z_][A-Za-z0-9_-]{0,63}`, and that it does
/// not parse as a UUID.
pub fn validate_name(value: &str) -> Result<(), InputError> {
    let reason = name_problem(value);
    match reason {
        Some(reason) => Err(InputError::InvalidName {
            value: value.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Why `value` is not a valid name, or `None` when it is.
pub fn name_problem(value: &str) -> Option<String> {
    let mut chars = value.chars();
    match chars.next() {
        None => return Some("it is empty".into()),
        Some(c) if !(c.is_ascii_alphabetic() || c == '_') => {
            return Some(format!("it must start with a letter or `_`, not {c:?}"))
        }
        Some(_) => {}
    }
    if let Some(c) = chars.find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')) {
        return Some(format!(
            "it contains {c:?}; only letters, digits, `_` and `-` are allowed"
        ));
    }
    if value.len() > 64 {
        return Some(format!(
            "it is {} characters long; the limit is 64",
            value.len()
        ));
    }
    // References take an event id where they take a name: a name that is
    // an id would make `cancel <id>` ambiguous.
    if uuid::Uuid::try_parse(value).is_ok() {
        return Some("it parses as a UUID, which is how events are referred to by id".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "deploy-eu", "_x", "A9_-", &"a".repeat(64)] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "9a",
            "-a",
            "a b",
            "a/b",
            "é",
            &"a".repeat(65),
            "deadbeef-0000-4000-8000-000000000000",
            "deadbeef00004000800000000000abcd",
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
