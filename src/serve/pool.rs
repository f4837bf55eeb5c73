//! Store connections kept open between requests.
//!
//! Opening a store is most of a small request's cost: an SQLite file is
//! checked, switched to WAL and its schema parsed; a PostgreSQL connection
//! is a TCP (and TLS) handshake and a new server backend whose statements
//! are prepared again. A [`Pool`] keeps the engines requests are done
//! with and hands them to the next ones. Nothing is cached above the
//! connection: every operation reads the store in its own transaction, so
//! a reused engine sees every commit, this process's and others'.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use crate::Engine;

/// Engines on one store, opened as needed and kept when returned.
pub(crate) struct Pool {
    location: String,
    /// At most this many idle engines are kept; more are closed.
    keep: usize,
    idle: Mutex<Vec<Engine>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("location", &self.location)
            .field("keep", &self.keep)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool of engines on `location` keeping at most `keep` idle ones.
    pub(crate) fn new(location: &str, keep: usize) -> Arc<Self> {
        Arc::new(Pool {
            location: location.to_string(),
            keep,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// The store's location, as `--db` gave it.
    pub(crate) fn location(&self) -> &str {
        &self.location
    }

    /// An idle engine, or a new one on a new connection. It goes back to
    /// the pool when dropped.
    pub(crate) fn take(self: &Arc<Self>) -> crate::Result<Pooled> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let engine = match idle {
            Some(engine) => engine,
            // The service has the store open already (its ticker, other
            // requests).
            None => Engine::with_store(crate::store::open_again(&self.location)?),
        };
        Ok(Pooled {
            engine: Some(engine),
            pool: self.clone(),
        })
    }

    /// Keeps `engine` for a later request, unless enough are kept.
    fn give(&self, engine: Engine) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.keep {
            idle.push(engine);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|e| e.into_inner()));
        close(idle);
    }
}

/// Drops `engines` on a thread of its own and waits for it. The last
/// reference to a pool or an engine may go on a thread that drives the
/// service's runtime, where closing a PostgreSQL connection (which blocks
/// on a runtime of its own) is not allowed.
pub(crate) fn close<T: Send + 'static>(engines: T) {
    let _ = std::thread::spawn(move || drop(engines)).join();
}

/// An engine held across `.await`s: closed with [`close`] when dropped.
#[derive(Default)]
pub(crate) struct Held(pub(crate) Option<Engine>);

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(engine) = self.0.take() {
            close(engine);
        }
    }
}

/// An engine taken from a [`Pool`], returned to it when dropped (closed
/// instead when its thread is panicking: what it was doing is unknown).
pub(crate) struct Pooled {
    engine: Option<Engine>,
    pool: Arc<Pool>,
}

impl Deref for Pooled {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        self.engine.as_ref().expect("a pooled engine until dropped")
    }
}

impl DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Engine {
        self.engine.as_mut().expect("a pooled engine until dropped")
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(engine) = self.engine.take() {
            if !std::thread::panicking() {
                self.pool.give(engine);
            }
        }
    }
}
