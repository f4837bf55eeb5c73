//! The web pages of `t-minus serve`: HTML rendered on the server from
//! templates compiled into the binary ([`maud`]), with every asset served
//! from the binary (no build chain, no CDN).
//!
//! - [`layout`]: the page frame every page shares.
//! - [`session`]: the person a request's session cookie signs in.

pub mod layout;
pub mod session;

use std::sync::Arc;

use axum::Router;

use super::Shared;

/// The routes of the pages and their assets, over the service's state.
pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
}
