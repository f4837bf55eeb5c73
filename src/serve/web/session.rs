//! The person a browser request comes from: the session its cookie names.

use axum::http::HeaderMap;

use crate::{AgentId, Engine};

/// A signed-in person: the agent their passkey is bound to, and the CSRF
/// token every state-changing request of theirs must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// The agent the person answers as.
    pub agent: AgentId,
    /// The token state-changing requests send back (`X-CSRF-Token`).
    pub csrf: String,
}

/// The session the request's cookie names, if it is one in force now.
/// Without a sign-in to make sessions, no request has one.
pub fn current(engine: &mut Engine, headers: &HeaderMap) -> crate::Result<Option<WebSession>> {
    let _ = (engine, headers);
    Ok(None)
}
