//! The web pages of `t-minus serve`: HTML rendered on the server from
//! templates compiled into the binary ([`maud`]), with every asset served
//! from the binary (no build chain, no CDN).
//!
//! - [`layout`]: the page frame every page shares.
//! - [`session`]: the person a request's session cookie signs in.
//! - [`passkeys`]: enrolment, sign-in and passkey-signed answers
//!   (WebAuthn), and the script the pages call (`/assets/passkey.js`).

pub mod layout;
pub mod passkeys;
pub mod session;

use std::sync::Arc;

use axum::Router;

use super::Shared;
use crate::people::{relying_party, PeopleError};

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
    Router::new().merge(passkeys::router())
}
