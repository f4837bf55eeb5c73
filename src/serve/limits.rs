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

/// The default rate limit: requests per second per token (or per client
/// address, for requests without one), in bursts of up to twice as many.
pub const DEFAULT_RATE: u32 = 100;

/// How many clients the rate limiter remembers before it forgets the idle
/// ones.
const RATE_KEYS: usize = 10_000;

/// A token bucket per client: `rate` requests a second, bursts of `2 ×
/// rate`. Time is the server's monotonic clock.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: std::sync::Mutex<std::collections::HashMap<String, (f64, std::time::Instant)>>,
}

impl RateLimiter {
    /// A limiter of `rate` requests a second per client (at least 1).
    pub fn new(rate: u32) -> Self {
        let rate = f64::from(rate.max(1));
        RateLimiter {
            rate,
            burst: 2.0 * rate,
            buckets: Default::default(),
        }
    }

    /// Takes one request of `client`'s allowance: `Ok`, or how long to wait
    /// before the next one is allowed.
    pub fn check(&self, client: &str) -> Result<(), Duration> {
        let now = std::time::Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= RATE_KEYS && !buckets.contains_key(client) {
            // Forget the clients whose allowance is full again.
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets
            .entry(client.to_string())
            .or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_burst_then_waits_and_others_are_not_affected() {
        let limiter = RateLimiter::new(5);
        for _ in 0..10 {
            assert!(limiter.check("a").is_ok());
        }
        let wait = limiter.check("a").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(200),
            "{wait:?}"
        );
        assert!(limiter.check("b").is_ok());
    }
}
