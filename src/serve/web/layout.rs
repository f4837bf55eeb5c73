//! The frame of every page: the document head, the site header with its
//! navigation and sign-in state, and the place of the page's own content.

use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};

use super::session::WebSession;

/// A whole HTML document titled `title` around `body`. With a `session`,
/// the page carries its CSRF token (`<meta name="csrf-token">`) for the
/// scripts that change state, names the signed-in person and offers to
/// sign out; without one, it links to `/signin`. Every page loads
/// `/assets/passkey.js` (`window.tMinusPasskey`, for enrolment, sign-in,
/// sign-out and answers) and `/assets/app.js`, in that order.
pub fn page(title: &str, session: Option<&WebSession>, body: Markup) -> Markup {
    frame(title, session, &Live::default(), body)
}

/// What a page's script keeps up to date: the instant the page was made
/// (countdowns count from it, whatever the browser's clock says) and the
/// stream of log entries that make it fetch its live regions again.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// The server's clock when the page was rendered.
    pub now: Option<DateTime<Utc>>,
    /// The `/v1/stream` URL (with its filter) the page follows.
    pub stream: Option<String>,
}

/// [`page`] with the live settings of `live` (`data-now`, `data-stream` on
/// `<body>`, read by `/assets/app.js`).
pub fn frame(title: &str, session: Option<&WebSession>, live: &Live, body: Markup) -> Markup {
    let now = live
        .now
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(session) = session {
                    meta name="csrf-token" content=(session.csrf);
                }
                title { (title) " · t-minus" }
                link rel="icon" href="data:,";
                link rel="stylesheet" href="/assets/style.css";
                script src="/assets/passkey.js" defer {}
                script src="/assets/app.js" defer {}
            }
            body data-now=[now] data-stream=[live.stream.as_deref()] {
                a.skip href="#main" { "Skip to content" }
                header.site {
                    nav aria-label="Site" {
                        a.brand href="/" { "t-minus" }
                        a href="/" { "Dashboard" }
                        a href="/?state=all" { "History" }
                    }
                    div.who {
                        @if let Some(session) = session {
                            span { "Signed in as " strong { (session.agent.as_str()) } }
                            button.link type="button" data-signout { "Sign out" }
                        } @else {
                            a href="/signin" { "Sign in" }
                        }
                    }
                }
                main #main tabindex="-1" { (body) }
                div.announce #announce role="status" aria-live="polite" {}
                footer.site {
                    p { "Times are UTC. Every answer is in the event's log; "
                        code { "t-minus verify" } " checks it." }
                }
            }
        }
    }
}
