//! Pieces the pages share: links, countdowns, states and quorum progress.

use chrono::{DateTime, SecondsFormat, Utc};
use maud::{html, Markup};

use crate::duration::format_countdown;
use crate::output::{AnswerStatus, Event};
use crate::time_spec::format_time;
use crate::EventState;

/// `text` percent-encoded for a path segment or a query value: every byte
/// but the unreserved characters of RFC 3986.
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The page of an event: `/events/CAMPAIGN/NAME` for a campaign event,
/// `/events/ID` otherwise.
pub fn event_href(e: &Event) -> String {
    match (&e.campaign, &e.name) {
        (Some(c), Some(n)) => format!("/events/{}/{}", encode_component(c), encode_component(n)),
        _ => format!("/events/{}", e.id),
    }
}

/// The page of the campaign named `name`.
pub fn campaign_href(name: &str) -> String {
    format!("/campaigns/{}", encode_component(name))
}

/// `campaign/name`, the name of a standalone event, or its kind.
pub fn label(e: &Event) -> String {
    match (&e.campaign, &e.name) {
        (Some(c), Some(n)) => format!("{c}/{n}"),
        (None, Some(n)) => n.clone(),
        _ => e.kind.clone(),
    }
}

/// An event's name within its campaign, or its short id.
pub fn label_in_campaign(e: &Event) -> String {
    e.name
        .clone()
        .unwrap_or_else(|| crate::event::short_id(e.id))
}

/// An instant as `<time>`, in the CLI's words.
pub fn time(at: DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339_opts(SecondsFormat::Secs, true)) { (format_time(at)) } }
}

/// The countdown of an event as the CLI's first column shows it: `T-4m32s`
/// (counted down by the page's script), `due`, `blocked`, or the final
/// state.
pub fn countdown(e: &Event, now: DateTime<Utc>) -> Markup {
    match (e.state, e.fire_time) {
        (EventState::Pending, Some(fire)) => {
            let text = if fire > now {
                format!("T-{}", format_countdown(fire - now))
            } else {
                "due".to_string()
            };
            html! {
                time.countdown datetime=(fire.to_rfc3339_opts(SecondsFormat::Millis, true))
                    data-fire title={ "confirmations due at " (format_time(fire)) } { (text) }
            }
        }
        (state, _) => html! { span.countdown { (state_word(state)) } },
    }
}

/// The lowercase word of a state.
pub fn state_word(state: EventState) -> &'static str {
    match state {
        EventState::Blocked => "blocked",
        EventState::Pending => "pending",
        EventState::Fired => "fired",
        EventState::Missed => "missed",
        EventState::Cancelled => "cancelled",
    }
}

/// A state as a badge (its word, coloured; the word carries the meaning).
pub fn state_badge(state: EventState) -> Markup {
    let word = state_word(state);
    html! { span class={ "badge state-" (word) } { (word) } }
}

/// A campaign state as a badge.
pub fn campaign_badge(state: crate::CampaignState) -> Markup {
    let word = match state {
        crate::CampaignState::Running => "running",
        crate::CampaignState::Succeeded => "succeeded",
        crate::CampaignState::Failed => "failed",
    };
    html! { span class={ "badge campaign-" (word) } { (word) } }
}

/// An answer as a badge.
pub fn answer_badge(status: AnswerStatus, deferred_ms: Option<i64>) -> Markup {
    let word = answer_word(status);
    html! {
        span class={ "badge answer-" (word) } {
            (word)
            @if let Some(ms) = deferred_ms {
                " " (crate::duration::format_duration(chrono::Duration::milliseconds(ms)))
            }
        }
    }
}

/// The lowercase word of an answer.
pub fn answer_word(status: AnswerStatus) -> &'static str {
    match status {
        AnswerStatus::Pending => "pending",
        AnswerStatus::Confirmed => "confirmed",
        AnswerStatus::Deferred => "deferred",
        AnswerStatus::Declined => "declined",
        AnswerStatus::Missed => "missed",
    }
}

/// Quorum progress: one bar for the event, or one per group.
pub fn quorum(e: &Event) -> Markup {
    html! {
        @if e.groups.is_empty() {
            (bar(None, e.confirmed, e.quorum))
        } @else {
            @for g in &e.groups {
                (bar(Some(&g.name), g.confirmed, g.quorum))
            }
        }
    }
}

/// One progress bar with its text: `ops 1/2`.
fn bar(group: Option<&str>, confirmed: usize, needed: usize) -> Markup {
    let label = match group {
        Some(g) => format!("{g}: {confirmed} of {needed} confirmations"),
        None => format!("quorum: {confirmed} of {needed} confirmations"),
    };
    html! {
        span.quorum {
            @if let Some(g) = group { span.group { (g) " " } }
            progress max=(needed.max(1)) value=(confirmed.min(needed.max(1))) aria-label=(label) {
                (confirmed) "/" (needed)
            }
            span.count { (confirmed) "/" (needed) }
        }
    }
}

/// One event as a card: countdown, name (linking to its page), kind,
/// state, quorum and its attendees' answers.
pub fn event_card(e: &Event, now: DateTime<Utc>, needs: &[String]) -> Markup {
    html! {
        article.card.event data-state=(state_word(e.state)) {
            div.headline {
                (countdown(e, now))
                " "
                a.name href=(event_href(e)) { (label(e)) }
                " "
                span.kind { (e.kind) }
                " "
                (state_badge(e.state))
            }
            div.progress { (quorum(e)) }
            @if !needs.is_empty() {
                p.needs { "needs: " (needs.join(", ")) }
            }
            @if !e.attendees.is_empty() {
                ul.answers aria-label="Answers" {
                    @for a in &e.attendees {
                        li { span.agent { (a.agent) } " " (answer_badge(a.status, a.deferred_ms)) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_percent_encoded() {
        assert_eq!(encode_component("release-v2"), "release-v2");
        assert_eq!(encode_component("a/b c"), "a%2Fb%20c");
        assert_eq!(encode_component("<é>"), "%3C%C3%A9%3E");
    }
}
