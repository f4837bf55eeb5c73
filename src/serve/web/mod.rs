//! The web pages of `t-minus serve`: HTML rendered on the server from
//! templates compiled into the binary ([`maud`]), with every asset served
//! from the binary (no build chain, no CDN).
//!
//! - [`layout`]: the page frame every page shares.
//! - [`session`]: the person a request's session cookie signs in.
//! - [`passkeys`]: enrolment, sign-in and passkey-signed answers
//!   (WebAuthn), and the script the pages call (`/assets/passkey.js`).
//! - `dashboard`: `/`, the campaigns and events, soonest deadline first.
//! - `event_page`: `/events/{event}`, one event with its answers and log.
//! - `campaign_page`: `/campaigns/{campaign}`, the graph in execution
//!   order.
//! - `parts`: the pieces the pages share (countdowns, states, quorum).
//!
//! Who sees a page: a signed-in person; anyone when the service runs with
//! `--public-dashboard` (read-only: answer buttons need a session); others
//! are sent to `/signin`. The pages read the store through the engine's
//! own views ([`crate::output`]), as the API does. Each page names the
//! `/v1/stream` it follows; `/assets/app.js` fetches its live regions
//! again when an entry arrives, and counts the countdowns down.

mod campaign_page;
mod dashboard;
mod event_page;
pub mod layout;
mod parts;
pub mod passkeys;
pub mod session;

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};

use super::error::ApiError;
use super::Shared;
use crate::people::{relying_party, PeopleError};
use crate::Engine;
use session::WebSession;

/// Who the pages are for: the origin browsers reach them at and the
/// relying party id passkeys are bound to.
#[derive(Debug, Clone)]
pub(crate) struct WebConfig {
    /// The origin and relying party id, or why the public URL cannot give
    /// them (passkey requests are then refused with that error).
    pub(crate) party: Result<(String, String), PeopleError>,
    /// Whether the pages are served over https (the cookie is then
    /// `Secure` and `__Host-` prefixed).
    pub(crate) secure: bool,
}

impl WebConfig {
    /// The pages of a service reached at `public_url`, or, without one, at
    /// `SCHEME://localhost:PORT` (browsers treat `localhost` as a secure
    /// context, and WebAuthn refuses an IP address).
    pub(crate) fn new(public_url: Option<&str>, scheme: &str, port: u16) -> Self {
        let url = public_url
            .map(String::from)
            .unwrap_or_else(|| format!("{scheme}://localhost:{port}"));
        let party = relying_party(&url);
        let secure = party.as_ref().map_or(scheme == "https", |(origin, _)| {
            origin.starts_with("https://")
        });
        WebConfig { party, secure }
    }
}

/// The routes of the pages and their assets, over the service's state.
pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(dashboard::show))
        .route("/events/{event}", get(event_page::show))
        .route(
            "/events/{campaign}/{name}",
            get(event_page::show_in_campaign),
        )
        .route("/campaigns/{campaign}", get(campaign_page::show))
        .route("/assets/style.css", get(style))
        .route("/assets/app.js", get(script))
        .merge(passkeys::router())
}

/// The style sheet of every page.
const STYLE: &str = include_str!("assets/style.css");

/// The script of every page: countdowns, live regions, answer buttons.
const SCRIPT: &str = include_str!("assets/app.js");

/// `GET /assets/style.css`.
async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// `GET /assets/app.js`.
async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// An asset compiled into the binary; browsers may keep it a few minutes.
fn asset(media_type: &'static str, text: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, media_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        text,
    )
        .into_response()
}

/// What a page's request came to: the page's data for the signed-in
/// person (or an anonymous visitor of a public dashboard), or a visitor to
/// send to sign in.
pub(crate) enum Seen<T> {
    /// The data, and the session if there is one.
    Page(Option<WebSession>, T),
    /// Nobody signed in, and the dashboard is not public.
    SignIn,
}

/// Reads a page's data with `read` on a blocking thread, once the request's
/// session (or the public dashboard) lets the visitor see it.
pub(crate) async fn seen<T: Send + 'static>(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    read: impl FnOnce(&mut Engine, Option<&WebSession>) -> Result<T, ApiError> + Send + 'static,
) -> Result<Seen<T>, ApiError> {
    let headers = headers.clone();
    let public = shared.public_dashboard;
    super::routes::blocking(shared, move |engine| {
        let session = session::current(engine, &headers)?;
        if session.is_none() && !public {
            return Ok(Seen::SignIn);
        }
        let data = read(engine, session.as_ref())?;
        Ok(Seen::Page(session, data))
    })
    .await
}

/// The response of a page: `render`ed for whoever sees it, the sign-in
/// redirect (`303` to `/signin?next=PATH`), or the error as a page with
/// its status.
pub(crate) fn respond<T>(
    uri: &Uri,
    seen: Result<Seen<T>, ApiError>,
    render: impl FnOnce(Option<&WebSession>, T) -> Markup,
) -> Response {
    match seen {
        Ok(Seen::Page(session, data)) => {
            let markup = render(session.as_ref(), data);
            html_response(StatusCode::OK, markup)
        }
        Ok(Seen::SignIn) => sign_in(uri),
        Err(error) => error_page(None, &error),
    }
}

/// `303 See Other` to `/signin`, naming the page to come back to.
fn sign_in(uri: &Uri) -> Response {
    let next = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let location = format!("/signin?next={}", parts::encode_component(&next));
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The policy of the pages: scripts, styles and connections only from the
/// service itself; no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// An HTML page with `status`, never cached (it may show a session's
/// view), under the pages' content security policy.
pub(crate) fn html_response(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "same-origin"),
        ],
        markup.into_string(),
    )
        .into_response()
}

/// An error as a page: its status, message, code and help.
pub(crate) fn error_page(session: Option<&WebSession>, error: &ApiError) -> Response {
    let title = match error.status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::BAD_REQUEST => "Bad request",
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => "Not allowed",
        s if s.is_server_error() => "Server error",
        _ => "Cannot show this page",
    };
    let body = html! {
        h1 { (title) }
        div.error role="alert" {
            p { (error.body.message) }
            @if let Some(help) = &error.body.help {
                p { "Help: " (help) }
            }
            p.code { "Code " code { (error.body.code) } " (HTTP " (error.status.as_u16()) ")" }
        }
        p { a href="/" { "Back to the dashboard" } }
    };
    html_response(error.status, layout::page(title, session, body))
}
