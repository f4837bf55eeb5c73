//! Resolving what users type into ids: full UUIDs, unique prefixes of at
//! least 4 hex digits, `campaign/event` paths, campaign names and the names
//! of standalone events.
//!
//! An event reference is tried, in order, as a `campaign/event` path (it
//! holds a `/`), a full UUID, the name of a standalone event, and a unique
//! id prefix. The last two never overlap: a standalone event's name may not
//! read as an id (see [`check_standalone_name`]). A name resolves to the one
//! unfinished standalone event holding it (at most one may), else to the one
//! final event holding it; several final ones are ambiguous. Where a
//! reference may name an event or a campaign (`status`), a campaign and a
//! standalone event of the same name are ambiguous too.

use uuid::Uuid;

use super::Engine;
use crate::error::{Result, TMinusError};
use crate::name::name_problem;
use crate::store::Tx;

/// Shortest accepted id prefix, in hex digits.
pub const MIN_PREFIX_DIGITS: usize = 4;

/// How many candidates an ambiguity error lists at most.
const MAX_CANDIDATES: usize = 10;

/// What a reference names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// An event.
    Event(Uuid),
    /// A campaign.
    Campaign(Uuid),
}

/// A hex prefix in the lowercase, hyphenated form of an id, or why it is not one.
fn normalize_prefix(text: &str) -> std::result::Result<String, String> {
    let digits: String = text.chars().filter(|c| *c != '-').collect();
    if let Some(c) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("{c:?} is not a hex digit"));
    }
    if digits.len() < MIN_PREFIX_DIGITS {
        return Err(format!(
            "a prefix needs at least {MIN_PREFIX_DIGITS} hex digits, this one has {}",
            digits.len()
        ));
    }
    if digits.len() > 32 {
        return Err("it is longer than a UUID".into());
    }
    let mut out = String::with_capacity(36);
    for (i, c) in digits.to_ascii_lowercase().chars().enumerate() {
        if matches!(i, 8 | 12 | 16 | 20) {
            out.push('-');
        }
        out.push(c);
    }
    Ok(out)
}

fn one_of(value: &str, ids: Vec<Uuid>, labels: impl Fn(Uuid) -> String) -> Result<Option<Uuid>> {
    match ids.len() {
        0 => Ok(None),
        1 => Ok(Some(ids[0])),
        _ => Err(TMinusError::AmbiguousReference {
            value: value.to_string(),
            candidates: ids.into_iter().map(labels).collect(),
        }),
    }
}

fn event_label(tx: &mut dyn Tx, id: Uuid) -> String {
    match tx.event(id) {
        Ok(Some(e)) => match &e.name {
            Some(name) => format!("{id} ({name})"),
            None => format!("{id} ({})", e.kind),
        },
        _ => id.to_string(),
    }
}

fn campaign_label(tx: &mut dyn Tx, id: Uuid) -> String {
    match tx.campaign(id) {
        Ok(Some(c)) => format!("{id} ({})", c.name),
        _ => id.to_string(),
    }
}

/// Checks a new standalone event's name: the naming rule, and that it does
/// not read as an event id (a UUID, or a prefix of 4 to 32 hex digits),
/// which would make references to it ambiguous.
pub(crate) fn check_standalone_name(name: &str) -> Result<()> {
    let invalid = |reason: String| TMinusError::InvalidName {
        value: name.to_string(),
        reason,
    };
    if let Some(reason) = name_problem(name) {
        return Err(invalid(reason));
    }
    if Uuid::parse_str(name).is_ok() || normalize_prefix(name).is_ok() {
        return Err(invalid(
            "it reads as an event id (a UUID, or 4 or more hex digits); use a letter beyond `f` or a `_`".into(),
        ));
    }
    Ok(())
}

/// The unfinished standalone event named `name`, if any.
pub(crate) fn unfinished_standalone(tx: &mut dyn Tx, name: &str) -> Result<Option<Uuid>> {
    for id in tx.standalone_events_named(name, 1)? {
        if let Some(event) = tx.event(id)? {
            if !event.state.is_final() {
                return Ok(Some(id));
            }
        }
    }
    Ok(None)
}

/// The standalone event `text` names: the unfinished one holding the name,
/// else the one final one; `None` when no standalone event has it (or
/// `text` cannot be a standalone event's name).
fn standalone_named(tx: &mut dyn Tx, text: &str) -> Result<Option<Uuid>> {
    if name_problem(text).is_some() || normalize_prefix(text).is_ok() {
        return Ok(None);
    }
    let ids = tx.standalone_events_named(text, MAX_CANDIDATES)?;
    let mut unfinished = Vec::new();
    let mut finished = Vec::new();
    for id in ids {
        match tx.event(id)? {
            Some(e) if !e.state.is_final() => unfinished.push(id),
            Some(_) => finished.push(id),
            None => {}
        }
    }
    let ids = if unfinished.is_empty() {
        finished
    } else {
        unfinished
    };
    let labels: Vec<(Uuid, String)> = ids
        .iter()
        .map(|id| (*id, standalone_label(tx, *id)))
        .collect();
    one_of(text, ids, |id| lookup(&labels, id))
}

/// `UUID (name, state)`: which of several events of one name this is.
fn standalone_label(tx: &mut dyn Tx, id: Uuid) -> String {
    match tx.event(id) {
        Ok(Some(e)) => match &e.name {
            Some(name) => format!("{id} ({name}, {})", e.state),
            None => format!("{id} ({}, {})", e.kind, e.state),
        },
        _ => id.to_string(),
    }
}

/// Resolves an event reference inside a transaction.
pub(crate) fn event_ref(tx: &mut dyn Tx, text: &str) -> Result<Uuid> {
    let text = text.trim();
    let not_found = || TMinusError::EventNotFound {
        reference: text.to_string(),
    };
    if let Some((campaign, name)) = text.split_once('/') {
        let empty = match (campaign.trim().is_empty(), name.trim().is_empty()) {
            (true, _) => Some("the campaign part before `/` is empty"),
            (_, true) => Some("the event name after `/` is empty"),
            _ => None,
        };
        if let Some(reason) = empty {
            return Err(TMinusError::InvalidReference {
                value: text.to_string(),
                what: "event",
                reason: reason.into(),
            });
        }
        // A campaign named (not given by id): campaign and event in one
        // look-up. Otherwise, or when that finds nothing, the campaign is
        // resolved first, which also says what was not found.
        if Uuid::parse_str(campaign.trim()).is_err() {
            if let Some(id) = tx.event_by_names(campaign.trim(), name)? {
                return Ok(id);
            }
        }
        let campaign = campaign_ref(tx, campaign)?;
        return tx.event_by_name(campaign, name)?.ok_or_else(not_found);
    }
    if let Ok(id) = Uuid::parse_str(text) {
        return match tx.event(id)? {
            Some(_) => Ok(id),
            None => Err(not_found()),
        };
    }
    if let Some(id) = standalone_named(tx, text)? {
        return Ok(id);
    }
    let prefix = normalize_prefix(text).map_err(|reason| TMinusError::InvalidReference {
        value: text.to_string(),
        what: "event",
        reason: format!("it is not a UUID or `campaign/event`, and not a prefix: {reason}"),
    })?;
    let ids = tx.events_with_prefix(&prefix, MAX_CANDIDATES)?;
    let labels: Vec<(Uuid, String)> = ids.iter().map(|id| (*id, event_label(tx, *id))).collect();
    one_of(text, ids, |id| lookup(&labels, id))?.ok_or_else(not_found)
}

fn lookup(labels: &[(Uuid, String)], id: Uuid) -> String {
    labels
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, l)| l.clone())
        .unwrap_or_else(|| id.to_string())
}

/// Resolves a campaign reference: UUID, name, or unique prefix.
pub(crate) fn campaign_ref(tx: &mut dyn Tx, text: &str) -> Result<Uuid> {
    let text = text.trim();
    let not_found = || TMinusError::CampaignNotFound {
        reference: text.to_string(),
    };
    if let Ok(id) = Uuid::parse_str(text) {
        return match tx.campaign(id)? {
            Some(_) => Ok(id),
            None => Err(not_found()),
        };
    }
    if let Some(c) = tx.campaign_by_name(text)? {
        return Ok(c.id);
    }
    match normalize_prefix(text) {
        Ok(prefix) => {
            let ids = tx.campaigns_with_prefix(&prefix, MAX_CANDIDATES)?;
            let labels: Vec<(Uuid, String)> = ids
                .iter()
                .map(|id| (*id, campaign_label(tx, *id)))
                .collect();
            one_of(text, ids, |id| lookup(&labels, id))?.ok_or_else(not_found)
        }
        Err(_) => Err(not_found()),
    }
}

/// Resolves something that may name an event or a campaign.
pub(crate) fn target_ref(tx: &mut dyn Tx, text: &str) -> Result<Target> {
    let text = text.trim();
    if text.contains('/') {
        return event_ref(tx, text).map(Target::Event);
    }
    let campaign = tx.campaign_by_name(text)?;
    match (campaign, standalone_named(tx, text)?) {
        (Some(c), Some(e)) => {
            return Err(TMinusError::AmbiguousReference {
                value: text.to_string(),
                candidates: vec![
                    format!("event {}", event_label(tx, e)),
                    format!("campaign {}", campaign_label(tx, c.id)),
                ],
            })
        }
        (Some(c), None) => return Ok(Target::Campaign(c.id)),
        (None, Some(e)) => return Ok(Target::Event(e)),
        (None, None) => {}
    }
    let event = event_ref(tx, text);
    let campaign = campaign_ref(tx, text);
    match (event, campaign) {
        (Ok(e), Err(TMinusError::CampaignNotFound { .. })) => Ok(Target::Event(e)),
        (Err(TMinusError::EventNotFound { .. }), Ok(c)) => Ok(Target::Campaign(c)),
        (Err(TMinusError::InvalidReference { .. }), Ok(c)) => Ok(Target::Campaign(c)),
        (Ok(e), Ok(c)) => Err(TMinusError::AmbiguousReference {
            value: text.to_string(),
            candidates: vec![
                format!("event {}", event_label(tx, e)),
                format!("campaign {}", campaign_label(tx, c)),
            ],
        }),
        (Err(TMinusError::EventNotFound { .. }), Err(TMinusError::CampaignNotFound { .. }))
        | (Err(TMinusError::InvalidReference { .. }), Err(TMinusError::CampaignNotFound { .. })) => {
            Err(TMinusError::TargetNotFound {
                reference: text.to_string(),
            })
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

impl Engine {
    /// Resolves an event reference: `campaign/event`, a full UUID, the name
    /// of a standalone event, or a unique prefix of at least 4 hex digits
    /// (in this order; see the module documentation).
    pub fn resolve_event(&self, text: &str) -> Result<Uuid> {
        self.read(|tx| event_ref(tx, text))
    }

    /// Resolves a campaign reference: a UUID, a name, or a unique prefix.
    pub fn resolve_campaign(&self, text: &str) -> Result<Uuid> {
        self.read(|tx| campaign_ref(tx, text))
    }

    /// Resolves a reference that may name an event or a campaign. A campaign
    /// name wins over an id prefix; a prefix matching both, or a name that a
    /// campaign and a standalone event share, is ambiguous.
    pub fn resolve_target(&self, text: &str) -> Result<Target> {
        self.read(|tx| target_ref(tx, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalized_to_the_stored_form() {
        assert_eq!(normalize_prefix("A1B2").unwrap(), "a1b2");
        assert_eq!(normalize_prefix("a1b2c3d4e5").unwrap(), "a1b2c3d4-e5");
        assert_eq!(normalize_prefix("a1b2c3d4-e5").unwrap(), "a1b2c3d4-e5");
        assert!(normalize_prefix("a1b").unwrap_err().contains("at least 4"));
        assert!(normalize_prefix("zzzz").unwrap_err().contains("'z'"));
    }
}
