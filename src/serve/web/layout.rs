//! The frame of every page: the document head, the site header and the
//! place of the page's own content.

use maud::{html, Markup, DOCTYPE};

use super::session::WebSession;

/// A whole HTML document titled `title` around `body`. With a `session`,
/// the page carries its CSRF token (`<meta name="csrf-token">`) for the
/// scripts that change state, and names the signed-in person.
pub fn page(title: &str, session: Option<&WebSession>, body: Markup) -> Markup {
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
            }
            body {
                header {
                    a href="/" { "t-minus" }
                    @if let Some(session) = session {
                        span { " signed in as " (session.agent.as_str()) }
                    }
                }
                main { (body) }
            }
        }
    }
}
