//! The HTTP service (`t-minus serve`): one process owns the store, clients
//! hold a token (or sign their answers) and talk JSON over HTTP.
//!
//! - [`serve`] binds the address, answers HTTP/1.1 and HTTP/2 (over TLS
//!   with [`ServeOptions::tls`], rustls with ALPN; cleartext otherwise), and
//!   on SIGTERM or Ctrl-C stops accepting, lets the requests in flight
//!   finish (at most [`limits::DRAIN_TIMEOUT`]) and returns.
//! - `routes`: the API under `/v1`; each request is one engine operation
//!   on a store connection kept open between requests (`pool`), on a
//!   blocking thread, committed before the reply is sent. Replies are the
//!   [`crate::output`] types.
//! - [`writer`]: on SQLite, answers that arrive together are written in
//!   one transaction (group commit), each with its own log entry and
//!   error.
//! - [`auth`]: bearer tokens ([`crate::token`]) and roles.
//! - [`error`]: errors as `{"error": {"code", "message", "help"}}` with the
//!   status that fits the code.
//! - [`remote`]: manifests sent over HTTP may not read the server's files
//!   or run its programs (unless allowed).
//! - [`limits`]: body caps and timeouts.
//! - [`openapi`]: the OpenAPI 3.1 document, generated from the types.
//! - [`metrics`]: `GET /metrics` in the Prometheus text format.
//! - [`stream`]: `GET /v1/stream`, the log as Server-Sent Events.
//! - [`ticker`]: ticks and delivers notifications in the background.
//! - [`mcp`]: the MCP server at `/mcp` (streamable HTTP), as the token's
//!   agent.
//! - [`slack`]: `POST /v1/slack/interactions`, answers pressed on Slack
//!   messages' buttons.
//! - [`web`]: the web pages, for people in a browser.
//! - [`github`]: `POST /v1/github/webhook`, GitHub deployments gated by a
//!   campaign, and the thread that answers GitHub.

pub mod auth;
pub mod error;
pub mod github;
pub mod limits;
pub mod mcp;
pub mod metrics;
pub mod openapi;
mod pool;
pub mod remote;
mod routes;
pub mod slack;
pub mod stream;
pub mod ticker;
pub mod web;
pub mod writer;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;

pub use error::{ApiError, ServeError};
pub use remote::ExecPolicy;
pub use routes::{
    CancelBody, ConfirmBody, DeclineBody, DeferBody, InboxQuery, ListQuery, ManifestQuery,
    SignedAnswerBody, StreamQuery, VerifyQuery,
};

use crate::notify::DeliverOptions;
use crate::{Engine, FixedClock};

/// The address `serve` listens on by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8470";

/// How a service runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The store: an SQLite path or a PostgreSQL URL.
    pub location: String,
    /// The address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: String,
    /// The URL clients reach the service at (behind a proxy), named in the
    /// OpenAPI document.
    pub public_url: Option<String>,
    /// Directories whose programs remote manifests' exec hooks may run.
    pub allow_exec: Vec<PathBuf>,
    /// A pinned clock, for tests only: every request and tick happens at
    /// this instant. `None` (always, in production) is the system clock.
    pub clock_for_tests: Option<DateTime<Utc>>,
    /// Ticking and delivering in the background: `None` serves requests
    /// only.
    pub background: Option<DeliverOptions>,
    /// Serve HTTPS with this certificate chain and key (PEM files);
    /// `None`: plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Requests a second per token, or per client address for requests
    /// without a token (bursts of twice as many); `None`: no limit.
    pub rate_limit: Option<u32>,
    /// Taking Slack's interactions (`POST /v1/slack/interactions`); `None`:
    /// the route refuses them.
    pub slack: Option<slack::SlackOptions>,
    /// Gating GitHub deployments (`POST /v1/github/webhook`); `None`: the
    /// route refuses every delivery.
    pub github: Option<github::GithubOptions>,
    /// Show the web pages read-only to visitors without a session (never
    /// their buttons); otherwise they are sent to sign in.
    pub public_dashboard: bool,
}

/// The PEM files of a TLS server.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, the server's certificate first.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl TlsFiles {
    /// The rustls acceptor of these files, offering HTTP/2 and HTTP/1.1.
    fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, ServeError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let bad = |path: &std::path::Path, e: &dyn std::fmt::Display| ServeError::Tls {
            reason: format!("{}: {e}", path.display()),
        };
        let certs = CertificateDer::pem_file_iter(&self.cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| bad(&self.cert, &e))?;
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| bad(&self.key, &e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ServeError::Tls {
                reason: e.to_string(),
            })?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| bad(&self.cert, &e))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

impl ServeOptions {
    /// Serving `location` on [`DEFAULT_LISTEN`], ticking and delivering
    /// with the default options, no exec hooks allowed.
    pub fn new(location: impl Into<String>) -> Self {
        ServeOptions {
            location: location.into(),
            listen: DEFAULT_LISTEN.into(),
            public_url: None,
            allow_exec: Vec::new(),
            clock_for_tests: None,
            background: Some(DeliverOptions::default()),
            tls: None,
            rate_limit: Some(limits::DEFAULT_RATE),
            slack: None,
            github: None,
            public_dashboard: false,
        }
    }
}

/// What every request shares.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Store connections kept between requests.
    pool: Arc<pool::Pool>,
    clock_for_tests: Option<DateTime<Utc>>,
    exec: ExecPolicy,
    openapi: serde_json::Value,
    /// Bounds the engine operations running at once (each holds a store
    /// connection): [`limits::MAX_CONCURRENT_OPERATIONS`].
    operations: Arc<tokio::sync::Semaphore>,
    /// One writer at a time, on SQLite (`None` on PostgreSQL).
    writer: Option<Arc<tokio::sync::Semaphore>>,
    /// Answers written together, on SQLite (`None` on PostgreSQL).
    answers: Option<writer::AnswerWriter>,
    /// Requests per token or client address, when limited.
    rate: Option<limits::RateLimiter>,
    /// The counters of `/metrics`.
    metrics: Arc<metrics::Metrics>,
    /// The tail of the log the streams follow.
    tail: Arc<stream::LogTail>,
    /// Turns true when the service stops: streams end.
    stopping: tokio::sync::watch::Receiver<bool>,
    /// The hosts `/mcp` requests may name ([`mcp::allowed_hosts`]).
    mcp_hosts: Vec<String>,
    /// The URL people reach the service at, when given: the event pages
    /// Slack replies link to.
    public_url: Option<String>,
    /// Taking Slack's interactions, when configured.
    slack: Option<slack::SlackOptions>,
    /// The Slack requests received lately, against replays.
    slack_seen: slack::Seen,
    /// Gating GitHub deployments, when configured.
    github: Option<Arc<github::GithubOptions>>,
    /// Whether visitors without a session see the pages (read-only).
    public_dashboard: bool,
    /// The origin and relying party of the web pages' passkeys.
    web: web::WebConfig,
}

impl Shared {
    /// An engine on a store connection no other request is using, at one
    /// instant: the moment the request is handled (or the pinned clock).
    /// It goes back to the pool when dropped.
    fn engine(&self) -> crate::Result<pool::Pooled> {
        let now = self.clock_for_tests.unwrap_or_else(Utc::now);
        let mut engine = self.pool.take()?;
        engine.set_clock(Arc::new(FixedClock::new(now)));
        Ok(engine)
    }
}

/// Runs the service until SIGTERM or Ctrl-C. Opens (and creates or
/// migrates) the store first, binds the address, calls `ready` with the
/// address bound and the scheme (`http` or `https`), and serves. Returns
/// once the requests in flight have finished and the background runner has
/// stopped.
pub fn serve(
    options: ServeOptions,
    ready: impl FnOnce(SocketAddr, &str),
) -> Result<(), ServeError> {
    // Open once up front: a bad --db fails before anything listens, and a
    // new store is created and migrated by one connection.
    Engine::open(&options.location)?;
    let exec = ExecPolicy::allow(&options.allow_exec).map_err(|e| ServeError::AllowExec {
        dir: options
            .allow_exec
            .iter()
            .find(|d| std::fs::canonicalize(d).is_err())
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
        reason: e.to_string(),
    })?;
    let scheme = if options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let tls = options.tls.as_ref().map(TlsFiles::acceptor).transpose()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("t-minus-serve")
        .build()
        .map_err(|e| ServeError::Internal {
            reason: format!("cannot start the runtime: {e}"),
        })?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(&options.listen))
        .map_err(|e| ServeError::Listen {
            addr: options.listen.clone(),
            reason: e.to_string(),
        })?;
    let addr = listener.local_addr().map_err(|e| ServeError::Listen {
        addr: options.listen.clone(),
        reason: e.to_string(),
    })?;
    let server = options
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{addr}"));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let pool = pool::Pool::new(&options.location, limits::MAX_CONCURRENT_OPERATIONS);
    let operations = Arc::new(tokio::sync::Semaphore::new(
        limits::MAX_CONCURRENT_OPERATIONS,
    ));
    let writer = (!crate::store::is_server_url(&options.location))
        .then(|| Arc::new(tokio::sync::Semaphore::new(1)));
    let answers = writer.as_ref().map(|writer| {
        let _runtime = runtime.enter();
        writer::AnswerWriter::start(writer::Context {
            pool: pool.clone(),
            clock_for_tests: options.clock_for_tests,
            writer: writer.clone(),
            operations: operations.clone(),
        })
    });
    let shared = Arc::new(Shared {
        pool,
        clock_for_tests: options.clock_for_tests,
        exec,
        openapi: openapi::document(Some(&server)),
        operations,
        writer,
        answers,
        rate: options.rate_limit.map(limits::RateLimiter::new),
        metrics: Arc::new(metrics::Metrics::default()),
        tail: Arc::new(stream::LogTail::new()),
        stopping: stop_rx.clone(),
        mcp_hosts: mcp::allowed_hosts(options.public_url.as_deref()),
        public_url: options.public_url.clone(),
        slack: options.slack.clone(),
        slack_seen: slack::Seen::default(),
        github: options.github.clone().map(Arc::new),
        public_dashboard: options.public_dashboard,
        web: web::WebConfig::new(options.public_url.as_deref(), scheme, addr.port()),
    });
    let ticker = match &options.background {
        Some(deliver) => Some(ticker::Ticker::start(
            &options.location,
            options.clock_for_tests,
            Some(DeliverOptions {
                public_url: options.public_url.clone().or(deliver.public_url.clone()),
                ..deliver.clone()
            }),
            Some(shared.metrics.clone()),
        )?),
        None => None,
    };
    let reporter = match (&options.github, &options.background) {
        (Some(github), Some(_)) => Some(github::Reporter::start(
            &options.location,
            options.clock_for_tests,
            github.app.clone(),
        )),
        _ => None,
    };
    let location = options.location.clone();
    let open: Arc<dyn Fn() -> crate::Result<Engine> + Send + Sync> =
        Arc::new(move || Ok(Engine::with_store(crate::store::open_again(&location)?)));
    runtime.spawn(shared.tail.clone().run(open, stop_rx));
    ready(addr, scheme);
    // In the runtime: the router starts a task of its own.
    let app = {
        let _entered = runtime.enter();
        routes::router(shared)
    };
    runtime.block_on(accept(listener, app, tls, stop_tx));
    if let Some(ticker) = ticker {
        ticker.stop();
    }
    if let Some(reporter) = reporter {
        reporter.stop();
    }
    runtime.shutdown_timeout(limits::DRAIN_TIMEOUT);
    Ok(())
}

/// Accepts connections until a stop signal, then drains them.
async fn accept(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stopping: tokio::sync::watch::Sender<bool>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits::HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits::HTTP2_KEEP_ALIVE));
    let graceful = GracefulShutdown::new();
    let mut signal = std::pin::pin!(stop_signal());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(_) => {
                        // Out of file descriptors and the like: wait a
                        // moment rather than spin.
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (app, builder, watcher) = (app.clone(), builder.clone(), graceful.watcher());
                match &tls {
                    None => {
                        tokio::spawn(connection(TokioIo::new(stream), peer, app, builder, watcher));
                    }
                    Some(acceptor) => {
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            // The handshake has the header timeout too.
                            let handshake = tokio::time::timeout(
                                limits::HEADER_READ_TIMEOUT,
                                acceptor.accept(stream),
                            );
                            if let Ok(Ok(stream)) = handshake.await {
                                connection(TokioIo::new(stream), peer, app, builder, watcher).await;
                            }
                        });
                    }
                }
            }
            () = &mut signal => break,
        }
    }
    drop(listener);
    // Streams end now; other requests finish.
    let _ = stopping.send(true);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits::DRAIN_TIMEOUT) => {}
    }
}

/// Serves one connection until it closes or the shutdown drains it.
async fn connection<I>(
    io: TokioIo<I>,
    peer: SocketAddr,
    app: axum::Router,
    builder: auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            let mut app = app.clone();
            async move { tower_service::Service::call(&mut app, request).await }
        });
    let connection = builder.serve_connection(io, service);
    let _ = watcher.watch(connection).await;
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
async fn stop_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
