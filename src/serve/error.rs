//! Errors as HTTP responses: the status code that fits the error's code,
//! and the body every front end prints, `{"error": {"code", "message",
//! "help"}}` ([`ErrorOutput`]).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use miette::Diagnostic;
use thiserror::Error;

use crate::output::{ErrorBody, ErrorOutput};
use crate::plan::ManifestError;
use crate::TMinusError;

/// What the HTTP front end itself refuses, before or around an operation.
#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum ServeError {
    /// The request body is over the route's limit.
    #[error("the request body is larger than this route's limit of {limit} bytes")]
    #[diagnostic(
        code(t_minus::http::too_large),
        help("send a smaller body: answers take at most 64 KiB, manifests at most 16 MiB")
    )]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },

    /// The request body could not be read.
    #[error("the request body could not be read: {reason}")]
    #[diagnostic(
        code(t_minus::http::body),
        help("send the whole body, then wait for the answer")
    )]
    Body {
        /// Why.
        reason: String,
    },

    /// The body is not the JSON the route takes.
    #[error("the request body is not valid for this route: {reason}")]
    #[diagnostic(
        code(t_minus::http::json),
        help("send a JSON object with the fields the route takes (see /openapi.json)")
    )]
    Json {
        /// The parser's message.
        reason: String,
    },

    /// The body is not of the media type the route takes.
    #[error("this route takes `{expected}`, not `{found}`")]
    #[diagnostic(
        code(t_minus::http::media_type),
        help("set `Content-Type: {expected}`")
    )]
    MediaType {
        /// What the route takes.
        expected: String,
        /// What was sent.
        found: String,
    },

    /// A query parameter is not valid.
    #[error("invalid query parameter `{name}`: {reason}")]
    #[diagnostic(
        code(t_minus::http::query),
        help("see /openapi.json for the route's parameters")
    )]
    Query {
        /// The parameter.
        name: String,
        /// Why.
        reason: String,
    },

    /// No route has this path (or this method on it).
    #[error("no route {method} {path}")]
    #[diagnostic(
        code(t_minus::http::not_found),
        help("the routes are listed in /openapi.json")
    )]
    NoRoute {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
    },

    /// The route does not take this method.
    #[error("{path} does not take {method}")]
    #[diagnostic(
        code(t_minus::http::method),
        help("the routes and their methods are listed in /openapi.json")
    )]
    MethodNotAllowed {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
    },

    /// The request took longer than the server allows.
    #[error("the request took longer than {seconds} s")]
    #[diagnostic(
        code(t_minus::http::timeout),
        help("send the request again; if the store is slow, try later")
    )]
    Timeout {
        /// The limit, in seconds.
        seconds: u64,
    },

    /// A manifest sent over HTTP refers to a file on the server's disk.
    #[error("{what} refers to the file `{path}` on the server; a manifest sent over HTTP may not")]
    #[diagnostic(
        code(t_minus::remote::file_reference),
        help("inline it: write `signers:` as a map from agent ids to public key lines")
    )]
    FileReference {
        /// What refers to it (`campaign `x`'s signers`).
        what: String,
        /// The path as written.
        path: String,
    },

    /// A manifest sent over HTTP has an exec hook the server does not allow.
    #[error("{what} runs `{program}` on the server, which this server does not allow")]
    #[diagnostic(
        code(t_minus::remote::exec),
        help("use a webhook instead, or start the server with `serve --allow-exec DIR` and name a program under DIR by its absolute path")
    )]
    Exec {
        /// The rule's place (`campaign `x``, `event x/y`).
        what: String,
        /// The program as written.
        program: String,
    },

    /// Too many requests from one token or client address.
    #[error("too many requests; try again in {retry_after} s")]
    #[diagnostic(
        code(t_minus::http::rate),
        help("slow down: wait for the Retry-After header's seconds before the next request")
    )]
    RateLimited {
        /// Seconds to wait.
        retry_after: u64,
    },

    /// The address to listen on could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    #[diagnostic(
        code(t_minus::http::listen),
        help("choose another address with --listen, e.g. 127.0.0.1:8470, or stop what holds this one")
    )]
    Listen {
        /// The address.
        addr: String,
        /// The system's error.
        reason: String,
    },

    /// The TLS certificate or key cannot be used.
    #[error("cannot set up TLS: {reason}")]
    #[diagnostic(
        code(t_minus::http::tls),
        help("give --tls-cert a PEM certificate chain (the server's certificate first) and --tls-key its PEM private key")
    )]
    Tls {
        /// Why.
        reason: String,
    },

    /// A directory given to `--allow-exec` cannot be used.
    #[error("cannot allow programs under `{dir}`: {reason}")]
    #[diagnostic(
        code(t_minus::http::allow_exec),
        help("give an existing directory to --allow-exec")
    )]
    AllowExec {
        /// The directory.
        dir: String,
        /// Why.
        reason: String,
    },

    /// The Slack settings, at start-up.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Slack(#[from] super::slack::SlackError),

    /// The store, at start-up.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] TMinusError),

    /// The server could not run the operation.
    #[error("the server could not run the request: {reason}")]
    #[diagnostic(
        code(t_minus::http::internal),
        help("try again; the server's log says more")
    )]
    Internal {
        /// Why.
        reason: String,
    },
}

/// An error response: its status and body.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: ErrorBody,
}

impl ApiError {
    /// The response for `error`, its status from its code.
    pub fn new(error: &dyn Diagnostic) -> Self {
        let body = ErrorBody::new(error);
        ApiError {
            status: status_of(&body.code),
            body,
        }
    }
}

/// The status that fits an error code:
///
/// | code | status |
/// | --- | --- |
/// | `t_minus::auth::missing`, `…::token`, `…::revoked`, `…::expired` | 401 |
/// | `t_minus::slack::signature`, `…::stale`, `…::replay` | 401 |
/// | `t_minus::slack::not_configured` | 503 |
/// | `t_minus::auth::role`, `…::other_agent`, `t_minus::passkey::csrf` | 403 |
/// | `t_minus::passkey::session` | 401 |
/// | `t_minus::not_found::…`, `t_minus::http::not_found` | 404 |
/// | `t_minus::refused::…`, `t_minus::plan::stale`, `t_minus::trust::stale`, `…::nonce` | 409 |
/// | `t_minus::http::method` | 405 |
/// | `t_minus::http::timeout` | 408 |
/// | `t_minus::http::too_large` | 413 |
/// | `t_minus::http::media_type` | 415 |
/// | `t_minus::manifest::…`, `t_minus::remote::…`, `t_minus::trust::…` | 422 |
/// | `t_minus::http::rate` | 429 |
/// | `t_minus::store::unreachable` | 503 |
/// | other `t_minus::store::…`, `t_minus::http::internal`, uncoded | 500 |
/// | `t_minus::github::signature` | 401 |
/// | `t_minus::github::not_configured` | 404 |
/// | `t_minus::github::replayed` | 409 |
/// | `t_minus::github::unknown_gate`, `…::callback_outside_api` | 422 |
/// | anything else (`t_minus::input::…`, `t_minus::http::json`, …) | 400 |
pub fn status_of(code: &str) -> StatusCode {
    let area = code
        .strip_prefix("t_minus::")
        .and_then(|rest| rest.split("::").next())
        .unwrap_or("");
    match code {
        "t_minus::auth::missing"
        | "t_minus::auth::token"
        | "t_minus::auth::revoked"
        | "t_minus::auth::expired" => return StatusCode::UNAUTHORIZED,
        "t_minus::slack::signature" | "t_minus::slack::stale" | "t_minus::slack::replay" => {
            return StatusCode::UNAUTHORIZED
        }
        "t_minus::slack::not_configured" => return StatusCode::SERVICE_UNAVAILABLE,
        "t_minus::auth::role" | "t_minus::auth::other_agent" | "t_minus::passkey::csrf" => {
            return StatusCode::FORBIDDEN
        }
        "t_minus::passkey::session" => return StatusCode::UNAUTHORIZED,
        "t_minus::http::not_found" => return StatusCode::NOT_FOUND,
        "t_minus::http::method" => return StatusCode::METHOD_NOT_ALLOWED,
        "t_minus::http::timeout" => return StatusCode::REQUEST_TIMEOUT,
        "t_minus::http::too_large" => return StatusCode::PAYLOAD_TOO_LARGE,
        "t_minus::http::media_type" => return StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "t_minus::http::rate" => return StatusCode::TOO_MANY_REQUESTS,
        "t_minus::http::internal" | "t_minus::error" | "t_minus::auth::random" => {
            return StatusCode::INTERNAL_SERVER_ERROR
        }
        "t_minus::plan::stale" | "t_minus::trust::stale" | "t_minus::trust::nonce" => {
            return StatusCode::CONFLICT
        }
        "t_minus::store::unreachable" => return StatusCode::SERVICE_UNAVAILABLE,
        "t_minus::github::signature" => return StatusCode::UNAUTHORIZED,
        "t_minus::github::not_configured" => return StatusCode::NOT_FOUND,
        "t_minus::github::replayed" => return StatusCode::CONFLICT,
        "t_minus::github::unknown_gate" | "t_minus::github::callback_outside_api" => {
            return StatusCode::UNPROCESSABLE_ENTITY
        }
        _ => {}
    }
    match area {
        "not_found" => StatusCode::NOT_FOUND,
        "refused" => StatusCode::CONFLICT,
        "manifest" | "remote" | "trust" => StatusCode::UNPROCESSABLE_ENTITY,
        "store" | "io" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl From<TMinusError> for ApiError {
    fn from(e: TMinusError) -> Self {
        ApiError::new(&e)
    }
}

impl From<crate::input::InputError> for ApiError {
    fn from(e: crate::input::InputError) -> Self {
        TMinusError::from(e).into()
    }
}

impl From<crate::trust::TrustError> for ApiError {
    fn from(e: crate::trust::TrustError) -> Self {
        TMinusError::from(e).into()
    }
}

impl From<ServeError> for ApiError {
    fn from(e: ServeError) -> Self {
        ApiError::new(&e)
    }
}

impl From<crate::people::PeopleError> for ApiError {
    fn from(e: crate::people::PeopleError) -> Self {
        ApiError::new(&e)
    }
}

impl From<crate::token::TokenError> for ApiError {
    fn from(e: crate::token::TokenError) -> Self {
        ApiError::new(&e)
    }
}

impl From<ManifestError> for ApiError {
    fn from(e: ManifestError) -> Self {
        match e {
            ManifestError::Store(e) => e.into(),
            ManifestError::Invalid(diagnostics) => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                body: ErrorBody::invalid_manifests(&diagnostics),
            },
            other => ApiError::new(&other),
        }
    }
}

/// The `429` reply of a client over its rate, with `Retry-After`.
pub fn rate_limited(wait: std::time::Duration) -> Response {
    let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = ApiError::from(ServeError::RateLimited { retry_after }).into_response();
    if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let unauthorized = self.status == StatusCode::UNAUTHORIZED;
        let mut response = (self.status, axum::Json(ErrorOutput::from(self.body))).into_response();
        if unauthorized {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"t-minus\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_the_status_that_fits() {
        let cases = [
            ("t_minus::auth::missing", 401),
            ("t_minus::auth::revoked", 401),
            ("t_minus::auth::role", 403),
            ("t_minus::slack::signature", 401),
            ("t_minus::slack::stale", 401),
            ("t_minus::slack::replay", 401),
            ("t_minus::slack::not_configured", 503),
            ("t_minus::slack::payload", 400),
            ("t_minus::auth::other_agent", 403),
            ("t_minus::not_found::event", 404),
            ("t_minus::not_found::token", 404),
            ("t_minus::refused::final_event", 409),
            ("t_minus::refused::deadline_passed", 409),
            ("t_minus::trust::nonce", 409),
            ("t_minus::plan::stale", 409),
            ("t_minus::http::too_large", 413),
            ("t_minus::http::method", 405),
            ("t_minus::http::timeout", 408),
            ("t_minus::http::media_type", 415),
            ("t_minus::manifest::unknown_field", 422),
            ("t_minus::remote::exec", 422),
            ("t_minus::trust::bad_signature", 422),
            ("t_minus::http::rate", 429),
            ("t_minus::input::duration", 400),
            ("t_minus::input::ambiguous", 400),
            ("t_minus::http::json", 400),
            ("t_minus::store::corrupt", 500),
            ("t_minus::store::unreachable", 503),
        ];
        for (code, status) in cases {
            assert_eq!(status_of(code).as_u16(), status, "{code}");
        }
    }
}
