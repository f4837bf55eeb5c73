//! The service's limits: request bodies per route, and how long a client
//! may take.

use std::time::Duration;

/// The largest body of an answer, a cancel, or a signed answer: 64 KiB.
pub const ANSWER_BODY_LIMIT: usize = 64 * 1024;

/// The largest manifest body of `plan` and `apply`: the manifest file
/// limit, 16 MiB ([`crate::manifest::DEFAULT_MAX_FILE_BYTES`]).
pub const MANIFEST_BODY_LIMIT: usize = crate::manifest::DEFAULT_MAX_FILE_BYTES as usize;

/// How long a client may take to send a request's headers (HTTP/1.1): a
/// client that trickles them (slow loris) is disconnected.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one request may take, its body included, before the server
/// answers 408 and drops it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a graceful shutdown waits for requests in flight.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How often HTTP/2 connections are pinged to notice dead peers.
pub const HTTP2_KEEP_ALIVE: Duration = Duration::from_secs(30);

/// How many engine operations (each on a store connection of its own) run
/// at once; further requests wait for one to finish. Bounds the
/// connections a service opens to PostgreSQL.
pub const MAX_CONCURRENT_OPERATIONS: usize = 16;
