//! `/mcp`: the MCP server of `t-minus mcp` over streamable HTTP (rmcp's
//! server transport, stateless: every request stands alone, so several
//! `serve` processes behind one address serve it alike).
//!
//! Every request needs a bearer token, checked before the MCP layer sees
//! it (`401` with the API's error body otherwise); each tool call answers
//! as the token's agent ([`McpServer::for_token`]) and its role applies: a
//! reader reads, only an agent answers. The server holds no agent's key:
//! events whose answers must be signed are answered with `answer_message`
//! and `submit_answer`.
//!
//! DNS rebinding is refused by the `Host` check of the transport: the
//! loopback names and the host of `--public-url` are allowed.

use std::sync::Arc;

use axum::extract::State;
use axum::Router;
use chrono::{DateTime, Utc};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};

use super::auth;
use super::error::{ApiError, ServeError};
use super::limits::ANSWER_BODY_LIMIT;
use super::metrics::Metrics;
use super::Shared;
use crate::mcp::{McpServer, SIGNED_INSTRUCTIONS};
use crate::token::TokenInfo;

/// The path the MCP server is served at.
pub const PATH: &str = "/mcp";

/// The hosts the `Host` header of an MCP request may name: the loopback
/// names and, when the service has a public URL, its host (with its port
/// when the URL names one).
pub fn allowed_hosts(public_url: Option<&str>) -> Vec<String> {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"]
        .into_iter()
        .map(String::from)
        .collect();
    if let Some(authority) = public_url.and_then(authority) {
        hosts.push(authority);
    }
    hosts
}

/// `host[:port]` of an `http(s)://` URL.
fn authority(url: &str) -> Option<String> {
    let rest = url.trim().split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    (!authority.is_empty()).then(|| authority.to_ascii_lowercase())
}

/// The routes of `/mcp` over `shared`. Call inside the service's runtime:
/// a task ends the open MCP streams when the service stops.
pub(crate) fn router(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_allowed_hosts(shared.mcp_hosts.clone())
        .with_max_request_body_bytes(ANSWER_BODY_LIMIT);
    let cancel = config.cancellation_token.clone();
    let mut stopping = shared.stopping.clone();
    tokio::spawn(async move {
        while !*stopping.borrow_and_update() {
            if stopping.changed().await.is_err() {
                break;
            }
        }
        cancel.cancel();
    });
    let handler = HttpMcp {
        location: shared.location.clone(),
        clock_for_tests: shared.clock_for_tests,
        metrics: shared.metrics.clone(),
    };
    let service = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    Router::new()
        .route_service(PATH, service)
        .layer(axum::middleware::from_fn_with_state(shared, authenticate))
}

/// Checks the bearer token of a request to `/mcp` and hands it to the
/// tools in the request's extensions.
async fn authenticate(
    State(shared): State<Arc<Shared>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<axum::response::Response, ApiError> {
    let secret = auth::bearer(request.headers());
    let checked = tokio::task::spawn_blocking(move || {
        let mut engine = shared.engine()?;
        auth::authenticate(&mut engine, secret.as_deref())
    })
    .await
    .map_err(|e| ServeError::Internal {
        reason: e.to_string(),
    })?;
    request.extensions_mut().insert(checked?);
    Ok(next.run(request).await)
}

/// The MCP server of whoever calls: tools answer as the token's agent.
#[derive(Debug, Clone)]
struct HttpMcp {
    location: String,
    clock_for_tests: Option<DateTime<Utc>>,
    metrics: Arc<Metrics>,
}

impl ServerHandler for HttpMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("t-minus", env!("CARGO_PKG_VERSION")).with_title("t-minus"),
            )
            .with_instructions(format!(
                "Countdown events between agents. You answer as the agent of your token: \
                 `inbox` lists what waits for you; `confirm`, `defer` and `decline` answer; \
                 `wait_event` waits for an event to fire. {SIGNED_INSTRUCTIONS}"
            ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(McpServer::tools()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        McpServer::tools().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let token = context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<TokenInfo>())
            .cloned()
            .ok_or_else(|| {
                ErrorData::internal_error("the request carries no checked token", None)
            })?;
        let kind = match request.name.as_ref() {
            "confirm" => Some("confirm"),
            "defer" => Some("defer"),
            "decline" => Some("decline"),
            "submit_answer" => Some("signed"),
            _ => None,
        };
        let server = McpServer::for_token(self.location.clone(), &token, self.clock_for_tests);
        let response = server.call_tool(request, context).await?;
        if let (Some(kind), CallToolResponse::Complete(result)) = (kind, &response) {
            if result.is_error != Some(true) {
                self.metrics.answer(kind);
            }
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_urls_host_is_allowed_with_the_loopback_names() {
        assert_eq!(
            allowed_hosts(Some("https://tminus.example.com/base")),
            ["localhost", "127.0.0.1", "::1", "tminus.example.com"]
        );
        assert_eq!(
            allowed_hosts(Some("http://Ops.Example:8443"))
                .last()
                .unwrap(),
            "ops.example:8443"
        );
        assert_eq!(allowed_hosts(None).len(), 3);
        assert_eq!(authority("not a url"), None);
    }
}
