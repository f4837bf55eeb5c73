//! `GET /v1/stream`: the audit log as Server-Sent Events, one per entry
//! (answers, transitions, notifications, tokens), as it is written.
//!
//! One task tails the log for the whole service ([`LogTail`]): it reads
//! the entries after the last it saw every [`TAIL_EVERY`] and broadcasts
//! them, each with its event's campaign name; every stream filters the
//! broadcast. An event's `id` is the entry's `seq`, so a client that
//! reconnects with `Last-Event-ID` first gets what it missed, read from the
//! store, then the live entries. A stream that falls more than
//! [`BROADCAST_CAPACITY`] entries behind is closed; its client reconnects
//! and resumes from the store.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::output::AuditEntry;
use crate::{Engine, Result};

/// How often the log is read for new entries.
pub const TAIL_EVERY: Duration = Duration::from_millis(200);

/// How many entries a stream may lag behind before it is closed.
pub const BROADCAST_CAPACITY: usize = 4096;

/// How many missed entries a resumed stream reads back at most.
pub const MAX_REPLAY: usize = 10_000;

/// How often an idle stream sends a comment, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// An entry as the streams get it: with its event's campaign.
#[derive(Debug, Clone)]
pub struct Tailed {
    /// The entry.
    pub entry: AuditEntry,
    /// The name of its event's campaign, if any.
    pub campaign: Option<String>,
}

/// The service's tail of the audit log.
#[derive(Debug)]
pub struct LogTail {
    sender: broadcast::Sender<Arc<Tailed>>,
}

impl LogTail {
    /// A tail with no subscriber yet.
    pub fn new() -> Self {
        LogTail {
            sender: broadcast::channel(BROADCAST_CAPACITY).0,
        }
    }

    /// A receiver of the entries written from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Tailed>> {
        self.sender.subscribe()
    }

    /// Reads the log after what it has seen, every [`TAIL_EVERY`], until
    /// `stop` turns true, on one engine `open` opens (and opens again
    /// after an error).
    pub async fn run(
        self: Arc<Self>,
        open: Arc<dyn Fn() -> Result<Engine> + Send + Sync>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut state: Option<(i64, Campaigns)> = None;
        // Kept open between reads; opened again after an error.
        let mut kept = super::pool::Held::default();
        loop {
            let opener = open.clone();
            let taken = state.take();
            let engine = kept.0.take();
            let read = tokio::task::spawn_blocking(move || {
                let engine = match engine {
                    Some(engine) => engine,
                    None => opener()?,
                };
                let (after, mut campaigns) = match taken {
                    Some(s) => s,
                    None => (
                        engine.read(|tx| tx.latest_audit_seq())?,
                        Campaigns::default(),
                    ),
                };
                let entries = engine.read(|tx| tx.audit_since(after, 1000))?;
                let mut out = Vec::with_capacity(entries.len());
                let mut last = after;
                for e in &entries {
                    last = e.seq;
                    out.push(Tailed {
                        entry: AuditEntry::from(e),
                        campaign: campaigns.of(&engine, e.event)?,
                    });
                }
                Ok::<_, crate::TMinusError>((out, last, campaigns, engine))
            })
            .await;
            match read {
                Ok(Ok((entries, last, campaigns, engine))) => {
                    kept.0 = Some(engine);
                    let more = entries.len() == 1000;
                    for t in entries {
                        // No subscriber is fine: nobody is listening.
                        let _ = self.sender.send(Arc::new(t));
                    }
                    state = Some((last, campaigns));
                    if more {
                        continue;
                    }
                }
                Ok(Err(e)) => eprintln!("t-minus serve: reading the log for streams: {e}"),
                Err(e) => eprintln!("t-minus serve: reading the log for streams: {e}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(TAIL_EVERY) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

impl Default for LogTail {
    fn default() -> Self {
        Self::new()
    }
}

/// The campaign names of events, looked up once each.
#[derive(Debug, Default)]
pub struct Campaigns(HashMap<Uuid, Option<String>>);

impl Campaigns {
    /// The name of `event`'s campaign (`None` for a standalone event, or a
    /// subject that is not an event, such as a token).
    pub fn of(&mut self, engine: &Engine, event: Uuid) -> Result<Option<String>> {
        if let Some(name) = self.0.get(&event) {
            return Ok(name.clone());
        }
        let name = match engine.get_event(event)?.and_then(|e| e.campaign) {
            Some(c) => engine.campaign_name(c)?,
            None => None,
        };
        self.0.insert(event, name.clone());
        Ok(name)
    }
}

/// Reads back the entries after `after` (at most [`MAX_REPLAY`]) for a
/// resumed stream.
pub fn replay(engine: &Engine, after: i64) -> Result<Vec<Tailed>> {
    let entries = engine.read(|tx| tx.audit_since(after, MAX_REPLAY))?;
    let mut campaigns = Campaigns::default();
    entries
        .iter()
        .map(|e| {
            Ok(Tailed {
                entry: AuditEntry::from(e),
                campaign: campaigns.of(engine, e.event)?,
            })
        })
        .collect()
}

/// What a stream shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only the entries of this campaign's events.
    pub campaign: Option<String>,
    /// Only the entries of this event.
    pub event: Option<Uuid>,
    /// Only the entries about events and campaigns: none about tokens,
    /// delegations or people's passkeys (for a visitor of a public
    /// dashboard).
    pub events_only: bool,
}

impl Filter {
    fn admits(&self, t: &Tailed) -> bool {
        use crate::AuditAction as A;
        let about_access = matches!(
            t.entry.action,
            A::TokenCreated
                | A::TokenRevoked
                | A::TokenRefused
                | A::Delegated
                | A::Undelegated
                | A::PersonInvited
                | A::PersonEnrolled
                | A::PersonRevoked
        );
        !(self.events_only && about_access)
            && self
                .campaign
                .as_ref()
                .is_none_or(|c| t.campaign.as_ref() == Some(c))
            && self.event.is_none_or(|e| t.entry.event == e)
    }
}

/// One Server-Sent Event of `t`.
fn frame(t: &Tailed) -> Bytes {
    let data = serde_json::to_string(&t.entry).unwrap_or_default();
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {data}\n\n",
        t.entry.seq, t.entry.action
    ))
}

/// What a stream holds between frames.
struct StreamState {
    backlog: VecDeque<Arc<Tailed>>,
    /// End the stream once the backlog is sent (it was cut at
    /// [`MAX_REPLAY`]: the client resumes from its end).
    close_after_backlog: bool,
    live: broadcast::Receiver<Arc<Tailed>>,
    filter: Filter,
    last: i64,
    stop: watch::Receiver<bool>,
}

/// The body of a stream: `backlog` (entries read back for a resumed
/// stream, in order), then the live entries after `last`, filtered, until
/// the service stops or the stream falls behind. A backlog of
/// [`MAX_REPLAY`] entries may not be the whole gap: the stream ends after
/// it, and the client resumes from its last entry.
pub fn body(
    backlog: Vec<Tailed>,
    live: broadcast::Receiver<Arc<Tailed>>,
    filter: Filter,
    last: i64,
    stop: watch::Receiver<bool>,
) -> axum::body::Body {
    let state = StreamState {
        close_after_backlog: backlog.len() >= MAX_REPLAY,
        backlog: backlog.into_iter().map(Arc::new).collect(),
        live,
        filter,
        last,
        stop,
    };
    let frames = futures_util::stream::unfold(state, |mut s| async move {
        while let Some(t) = s.backlog.pop_front() {
            if t.entry.seq > s.last {
                s.last = t.entry.seq;
                if s.filter.admits(&t) {
                    return Some((Ok::<_, Infallible>(frame(&t)), s));
                }
            }
        }
        if s.close_after_backlog {
            return None;
        }
        loop {
            if *s.stop.borrow() {
                return None;
            }
            tokio::select! {
                received = s.live.recv() => match received {
                    Ok(t) if t.entry.seq > s.last => {
                        s.last = t.entry.seq;
                        if s.filter.admits(&t) {
                            return Some((Ok(frame(&t)), s));
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return None,
                },
                _ = tokio::time::sleep(KEEP_ALIVE) => {
                    return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), s));
                }
                _ = s.stop.changed() => return None,
            }
        }
    });
    axum::body::Body::from_stream(frames)
}
