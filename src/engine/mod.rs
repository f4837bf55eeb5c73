//! The engine: the library's entry point.
//!
//! Every operation runs in one store transaction: it settles what it touches
//! to its state at the engine's clock (or the `now` passed to [`Engine::tick`]),
//! applies the change, cascades, and commits.

mod apply;
mod attest;
mod breakglass;
mod campaigns;
mod chat;
mod content;
pub(crate) mod delegations;
mod github;
mod inbox;
mod people;
mod queue;
mod resolve;
pub(crate) mod settle;
mod signed;
mod tokens;
mod verify;
mod verify_passkeys;
mod views;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

pub use crate::plan::{AppliedCampaign, ApplyReport};
pub use breakglass::BREAK_GLASS;
pub use chat::{request_digest as chat_request_digest, ChatAnswer};
pub use github::{backoff_after, REPORT_LEASE};
pub use people::NewSession;
pub use resolve::Target;
pub use signed::{MAX_MESSAGE_AGE, MAX_MESSAGE_LEAD};
pub use verify::{LogVerification, RowMismatch};
pub use views::{delegated_answers, EventViews};

use crate::agent::AgentId;
use crate::audit::{AuditAction, AuditEntry};
use crate::clock::{Clock, SystemClock};
use crate::duration::format_duration;
use crate::error::{Result, TMinusError};
use crate::event::TMinusEvent;
use crate::event_check::{self, EventDraft};
use crate::kind::EventKind;
use crate::notification::NotifyRule;
use crate::policy::{FirePolicy, Quorum, QuorumGroup};
use crate::state::{EventState, ResponseStatus};
use crate::store::sqlite::SqliteStore;
use crate::store::{EventFilter, Store, Tx};
use crate::tick::TickResult;
use crate::time_spec::format_time;
use crate::trust::record;

use settle::{audit, settle, settled, settled_with_ancestors};

/// Everything needed to schedule an event; build one with [`NewEvent::new`]
/// and set the fields that differ from the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// What it is.
    pub kind: EventKind,
    /// The scheduled time.
    pub at: DateTime<Utc>,
    /// Countdown length (≥ 0); the fire time is `at − t_minus`.
    pub t_minus: Duration,
    /// Who schedules it.
    pub organizer: AgentId,
    /// Attendees, unique, in order (leave empty when `groups` is set).
    pub attendees: Vec<AgentId>,
    /// Confirmations needed (ignored when `groups` is set).
    pub quorum: Quorum,
    /// Quorum groups: when non-empty, the event fires when every group meets
    /// its quorum, and the attendees are the groups' members.
    pub groups: Vec<QuorumGroup>,
    /// When it fires once quorum holds.
    pub fire_policy: FirePolicy,
    /// Cap on the total of all deferrals.
    pub max_defer: Option<Duration>,
    /// Arbitrary JSON.
    pub payload: serde_json::Value,
    /// Free text.
    pub description: Option<String>,
    /// The name of a standalone event (none by default): see
    /// [`Engine::schedule`]. Events added to a campaign take their name
    /// there instead.
    pub name: Option<String>,
    /// Notification rules (none by default).
    pub notify: Vec<NotifyRule>,
    /// The keys that must sign its answers (none by default: answers need
    /// no signature). Every attendee must have a key here.
    pub signers: Option<crate::trust::Signers>,
    /// Four eyes (the organizer is the requester and may not answer), time
    /// windows and who may break the glass (none by default).
    pub gates: crate::gate::Gates,
    /// Escalation steps, soonest first (none by default): see
    /// [`crate::escalation`]. Refused when a step is not after the previous
    /// one, is due at or after the fire time, or adds an attendee (or group
    /// member) the event has or an earlier step adds.
    pub escalate: Vec<crate::escalation::EscalationStep>,
}

impl NewEvent {
    /// An event of `kind` at `at` with the defaults: no countdown, organizer
    /// `t-minus`, no attendees, quorum `all`, fire `early`, payload `null`.
    pub fn new(kind: EventKind, at: DateTime<Utc>) -> Self {
        NewEvent {
            kind,
            at,
            t_minus: Duration::zero(),
            organizer: AgentId("t-minus".into()),
            attendees: Vec::new(),
            quorum: Quorum::All,
            groups: Vec::new(),
            fire_policy: FirePolicy::Early,
            max_defer: None,
            payload: serde_json::Value::Null,
            description: None,
            name: None,
            notify: Vec::new(),
            signers: None,
            gates: crate::gate::Gates::default(),
            escalate: Vec::new(),
        }
    }
}

/// An attendee's answer, as passed to [`Engine::respond`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Ready.
    Confirm,
    /// Needs this much more time (> 0).
    Defer(Duration),
    /// Will not take part, optionally saying why.
    Decline(Option<String>),
}

/// An answer as recorded: the event as settled and its campaign's name
/// ([`Engine::respond_to`], [`Engine::respond_batch`]).
pub type Answered = (TMinusEvent, Option<String>);

/// The t-minus engine over a store.
pub struct Engine {
    store: Box<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// Opens (or creates) the SQLite store at `path`, on the system clock.
    pub fn new(path: &Path) -> Result<Self> {
        Ok(Self::with_store(Box::new(SqliteStore::open(path)?)))
    }

    /// Opens the store at `location` — a PostgreSQL URL
    /// (`postgres://user@host/db`) or an SQLite file path — on the system
    /// clock. See [`crate::store::open`].
    pub fn open(location: &str) -> Result<Self> {
        Ok(Self::with_store(crate::store::open(location)?))
    }

    /// A private in-memory store, for tests.
    pub fn in_memory() -> Result<Self> {
        Ok(Self::with_store(Box::new(SqliteStore::in_memory()?)))
    }

    /// An engine over any store, on the system clock.
    pub fn with_store(store: Box<dyn Store>) -> Self {
        Engine {
            store,
            clock: Arc::new(SystemClock),
        }
    }

    /// Replaces the clock used by operations that do not take `now`
    /// (schedule, confirm, defer, decline, cancel, campaign commands).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the clock in place; see [`Engine::with_clock`].
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }

    /// The engine clock's current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Direct access to the store, for the manifest and runner layers.
    pub fn store_mut(&mut self) -> &mut dyn Store {
        &mut *self.store
    }

    /// Shared access to the store, for reading.
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// Schedules an event (the seed's signature: an exact quorum count, fire
    /// policy `early`, no deferral cap). See [`Engine::schedule`].
    #[allow(clippy::too_many_arguments)]
    pub fn schedule_event(
        &mut self,
        kind: EventKind,
        scheduled_at: DateTime<Utc>,
        t_minus: Duration,
        organizer: AgentId,
        attendees: Vec<AgentId>,
        quorum: usize,
        payload: serde_json::Value,
    ) -> Result<TMinusEvent> {
        self.schedule(NewEvent {
            t_minus,
            organizer,
            attendees,
            quorum: Quorum::Count(quorum),
            groups: Vec::new(),
            payload,
            ..NewEvent::new(kind, scheduled_at)
        })
    }

    /// Schedules a standalone event. It starts `pending` (a quorum of 0 with
    /// `early` fires at once). Refused when the input breaks a rule of
    /// [`crate::event_check`], or when the fire time is not after now (it
    /// could only be missed), as for an event of a manifest.
    ///
    /// A name makes the event a reference of its own (see
    /// [`Engine::resolve_event`]): it follows the naming rule, must not read
    /// as an event id (a UUID, or 4 to 32 hex digits and hyphens), and no
    /// other unfinished standalone event may hold it. Once an event is final
    /// its name may be given again.
    pub fn schedule(&mut self, mut new: NewEvent) -> Result<TMinusEvent> {
        let now = self.now();
        if let Some(name) = &new.name {
            resolve::check_standalone_name(name)?;
        }
        let signers = new.signers.take();
        let (event, rules) = build_event(new, now)?;
        if let Some(signers) = &signers {
            for (agent, _) in &event.attendees {
                if !signers.may_sign(agent.as_str()) {
                    return Err(crate::trust::TrustError::NoSigner {
                        agent: agent.to_string(),
                    }
                    .into());
                }
            }
        }
        let id = event.id;
        self.write_whole(|tx| {
            if let Some(name) = &event.name {
                if let Some(holder) = resolve::unfinished_standalone(tx, name)? {
                    return Err(TMinusError::DuplicateStandaloneName {
                        name: name.clone(),
                        event: holder,
                    });
                }
            }
            let digest = match &signers {
                Some(signers) => {
                    let stored = signed::stored(signers);
                    tx.set_scope_signers(id, Some(&stored))?;
                    Some(stored.digest)
                }
                None => None,
            };
            insert_new_event(tx, &event, &rules, digest.as_deref(), now)?;
            settle(tx, [id], now)?;
            load(tx, id)
        })
    }

    /// Records `agent`'s confirmation.
    pub fn confirm(&mut self, id: Uuid, agent: &AgentId) -> Result<TMinusEvent> {
        self.respond(id, agent, Response::Confirm)
    }

    /// Records a deferral by `by`: the event and its fire time move later by
    /// `by`, refused past the event's `max_defer`.
    pub fn defer(&mut self, id: Uuid, agent: &AgentId, by: Duration) -> Result<TMinusEvent> {
        self.respond(id, agent, Response::Defer(by))
    }

    /// Records `agent`'s decline. When declines make quorum unreachable the
    /// event is missed at once.
    pub fn decline(
        &mut self,
        id: Uuid,
        agent: &AgentId,
        reason: Option<String>,
    ) -> Result<TMinusEvent> {
        self.respond(id, agent, Response::Decline(reason))
    }

    /// Records a response. Only attendees may respond, only before the fire
    /// time, and only while the event is not final; an agent may change its
    /// answer until then. The event is settled in the same transaction, so a
    /// confirm that completes quorum under `early` fires it (the next tick
    /// reports that).
    pub fn respond(
        &mut self,
        id: Uuid,
        agent: &AgentId,
        response: Response,
    ) -> Result<TMinusEvent> {
        check_answer(agent, &response)?;
        let now = self.now();
        self.write_refusable(|tx| respond_in(tx, id, agent, None, &response, now))
    }

    /// Records `agent`'s answer for `principal` under a delegation (see
    /// [`crate::delegation`]): the answer is `principal`'s (its status
    /// changes, and the rules of [`Engine::respond`] apply to it), and the
    /// log names `agent` as who gave it for `principal`. Refused with
    /// [`crate::delegation::DelegationError::NotInForce`] when no delegation
    /// from `principal` to `agent` covers the event now, and as an unsigned
    /// answer when the event's answers must be signed.
    pub fn respond_for(
        &mut self,
        id: Uuid,
        agent: &AgentId,
        principal: &AgentId,
        response: Response,
    ) -> Result<TMinusEvent> {
        check_answer(agent, &response)?;
        check_principal(agent, principal)?;
        let now = self.now();
        self.write_refusable(|tx| respond_in(tx, id, agent, Some(principal), &response, now))
    }

    /// [`Engine::respond`] to the event `reference` names (read as
    /// [`Engine::resolve_event`] reads it), resolved in the answer's own
    /// transaction: one transaction for the whole command. Returns the
    /// event as settled and its campaign's name.
    pub fn respond_to(
        &mut self,
        reference: &str,
        agent: &AgentId,
        response: Response,
    ) -> Result<(TMinusEvent, Option<String>)> {
        self.respond_to_for(reference, agent, None, response)
    }

    /// [`Engine::respond_to`], for `principal` under a delegation when
    /// given (see [`Engine::respond_for`]).
    pub fn respond_to_for(
        &mut self,
        reference: &str,
        agent: &AgentId,
        principal: Option<&AgentId>,
        response: Response,
    ) -> Result<(TMinusEvent, Option<String>)> {
        check_answer(agent, &response)?;
        if let Some(principal) = principal {
            check_principal(agent, principal)?;
        }
        let now = self.now();
        self.write_refusable(|tx| respond_to_in(tx, reference, agent, principal, &response, now))
    }

    /// [`Engine::respond_to`] for several answers at once, in one write
    /// transaction: one commit (one sync to disk) for them all. Each answer
    /// runs after a [`Tx::mark`] of its own, so one that is refused or
    /// fails is undone alone and gets its own error, while the others keep
    /// their writes and their own log entries. The outer `Err`: the
    /// transaction as a whole failed (it could not begin, undo an answer
    /// or commit), and none of the answers was recorded.
    ///
    /// For a store whose writer holds the whole store (SQLite): on
    /// PostgreSQL a deadlock would abort the whole batch, which this does
    /// not retry.
    pub fn respond_batch(
        &mut self,
        answers: &[(String, AgentId, Response)],
    ) -> Result<Vec<Result<Answered>>> {
        let now = self.now();
        let mut results: Vec<Option<Result<Answered>>> = answers
            .iter()
            .map(|(_, agent, response)| check_answer(agent, response).err().map(Err))
            .collect();
        if results.iter().any(Option::is_none) {
            let mut tx = self.store.write()?;
            for (slot, (reference, agent, response)) in results.iter_mut().zip(answers) {
                if slot.is_some() {
                    continue;
                }
                tx.mark()?;
                let answered = match respond_to_in(&mut *tx, reference, agent, None, response, now)
                {
                    Ok(Ok(answered)) => Ok(answered),
                    Ok(Err(refusal)) | Err(refusal) => Err(refusal),
                };
                if answered.is_ok() {
                    tx.release_mark()?;
                } else {
                    tx.rollback_to_mark()?;
                }
                *slot = Some(answered);
            }
            tx.commit()?;
        }
        Ok(results.into_iter().flatten().collect())
    }

    /// Cancels a non-final event; events that need it are cancelled in turn.
    /// An event whose answers must be signed is refused with
    /// [`crate::trust::TrustError::UnsignedCancel`]: cancel it with
    /// [`Engine::cancel_with_key`] or a signed cancel message
    /// ([`Engine::respond_signed`]).
    pub fn cancel_event(&mut self, id: Uuid, reason: Option<String>) -> Result<TMinusEvent> {
        if let Some(reason) = &reason {
            check_reason("cancel reason", reason)?;
        }
        let now = self.now();
        self.write_refusable(|tx| {
            let mut event = settled_event(tx, id, now)?;
            if let Err(refusal) = check_not_final(&event) {
                return Ok(Err(refusal));
            }
            if signed::in_force(tx, &event)?.is_some() {
                return Ok(Err(crate::trust::TrustError::UnsignedCancel {
                    target: format!("event {}", event.label()),
                }
                .into()));
            }
            let reason = reason.as_deref().unwrap_or("cancelled by request");
            settle::cancel(tx, &mut event, now, now, None, reason)?;
            let dependents = tx.dependents(id)?;
            settle(tx, dependents, now)?;
            load(tx, id).map(Ok)
        })
    }

    /// Marks a non-final event missed: an operator's decision, recorded at
    /// the engine clock as the transition to `missed` (reported by the next
    /// tick like any miss; its audit entry's reason is `marked missed`).
    /// Attendees still pending or deferred become `Missed`, and events that
    /// need it are cancelled as after any miss. Refused on a final event
    /// (settled at the engine clock first, so an event that has already
    /// fired or missed by then keeps its outcome).
    pub fn mark_missed(&mut self, id: Uuid) -> Result<TMinusEvent> {
        let now = self.now();
        self.write_refusable(|tx| {
            let mut event = settled_event(tx, id, now)?;
            if let Err(refusal) = check_not_final(&event) {
                return Ok(Err(refusal));
            }
            settle::mark_missed(tx, &mut event, now)?;
            let dependents = tx.dependents(id)?;
            settle(tx, dependents, now)?;
            load(tx, id).map(Ok)
        })
    }

    /// Cancels the event and returns true; false when there is no such
    /// event. Nothing is deleted: history is kept, and a final event stays
    /// as it is (also true).
    #[deprecated(
        since = "0.1.0",
        note = "history is never deleted: use `Engine::cancel_event` to stop an event (a final one is refused there)"
    )]
    pub fn remove_event(&mut self, id: Uuid) -> Result<bool> {
        let now = self.now();
        self.write(|tx| {
            let Some(mut event) = settled_with_ancestors(tx, id, now)? else {
                return Ok(false);
            };
            if !event.state.is_final() {
                if signed::in_force(tx, &event)?.is_some() {
                    return Err(crate::trust::TrustError::UnsignedCancel {
                        target: format!("event {}", event.label()),
                    }
                    .into());
                }
                settle::cancel(tx, &mut event, now, now, None, "removed by request")?;
                let dependents = tx.dependents(id)?;
                settle(tx, dependents, now)?;
            }
            Ok(true)
        })
    }

    /// Returns the event as stored (`None` when there is no such event) and
    /// changes nothing: a deferral moves the event's time when it is made
    /// ([`Engine::defer`]), so there is no cascade left to apply.
    #[deprecated(
        since = "0.1.0",
        note = "deferrals take effect when made (`Engine::defer`); read the event with `Engine::get_event`"
    )]
    pub fn apply_deferral_cascade(&self, id: Uuid) -> Result<Option<TMinusEvent>> {
        self.get_event(id)
    }

    /// Advances every unfinished event to its state at `now`, in dependency
    /// order, and reports every transition not reported before — exactly
    /// once across all processes ticking the store. It touches only events
    /// that are due; events whose responses changed were settled when the
    /// response was written.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Result<TickResult> {
        self.write(|tx| {
            let due = tx.due_events(now, usize::MAX)?;
            settle(tx, due, now)?;
            queue::remind(tx, now, usize::MAX)?;
            Ok(TickResult::from_entries(tx.claim_reports()?))
        })
    }

    /// The soonest fire time of a pending event (of `campaign`, if given):
    /// when the next tick has work.
    pub fn next_fire_time(&self, campaign: Option<Uuid>) -> Result<Option<DateTime<Utc>>> {
        self.read(|tx| tx.next_fire_time(campaign))
    }

    /// Loads one event.
    pub fn get_event(&self, id: Uuid) -> Result<Option<TMinusEvent>> {
        self.read(|tx| tx.event(id))
    }

    /// Every event, soonest fire time first.
    pub fn list_events(&self) -> Result<Vec<TMinusEvent>> {
        self.read(|tx| tx.list_events(EventFilter::All))
    }

    /// Blocked and pending events, soonest fire time first.
    pub fn list_unfinished(&self) -> Result<Vec<TMinusEvent>> {
        self.read(|tx| tx.list_events(EventFilter::Unfinished))
    }

    /// Hands each event of the listing `filter` selects to `visit`, soonest
    /// fire time first, with its campaign's name and a blocked event's
    /// needs, from one read transaction. The listing is read in chunks, so
    /// memory does not grow with its length; an error from `visit` stops it.
    pub fn scan_events(
        &self,
        filter: EventFilter,
        mut visit: impl FnMut(crate::store::ListedEvent) -> Result<()>,
    ) -> Result<()> {
        self.read(|tx| tx.scan_events(filter, &mut visit))
    }

    /// The name of campaign `id` (one indexed lookup of its row; its events
    /// and edges are not loaded).
    pub fn campaign_name(&self, id: Uuid) -> Result<Option<String>> {
        self.read(|tx| Ok(tx.campaign(id)?.map(|c| c.name)))
    }

    /// The names of the events `id` needs, in the order they were added:
    /// each event's name, or its short id when it has none. One indexed
    /// lookup per need.
    pub fn need_names(&self, id: Uuid) -> Result<Vec<String>> {
        self.read(|tx| {
            let needs = tx.needs(id)?;
            let mut names = Vec::with_capacity(needs.len());
            for need in needs {
                names.push(match tx.event(need.id)? {
                    Some(e) => e.display_name(),
                    None => need.id.to_string(),
                });
            }
            Ok(names)
        })
    }

    /// An event's audit trail, oldest first.
    pub fn log(&self, id: Uuid) -> Result<Vec<AuditEntry>> {
        self.read(|tx| tx.audit(id))
    }

    /// The audit trail of event `id` with each entry's chain links (`prev`,
    /// `hash`) and signed message and signature, oldest first.
    pub fn log_links(&self, id: Uuid) -> Result<Vec<crate::store::StoredLink>> {
        self.read(|tx| tx.event_audit_links(id))
    }

    /// Runs `f` in a write transaction; commits when it succeeds. A
    /// transaction the server aborted to break a deadlock with another
    /// writer is run again (see [`MAX_ATTEMPTS`]).
    pub(crate) fn write<T>(&mut self, mut f: impl FnMut(&mut dyn Tx) -> Result<T>) -> Result<T> {
        self.write_refusable(|tx| f(tx).map(Ok))
    }

    /// [`Engine::write`] holding the audit chain's lock from the start
    /// ([`Tx::lock_store`]): for writes whose checks span more than the
    /// events they load (names, a campaign's positions and graph).
    pub(crate) fn write_whole<T>(
        &mut self,
        mut f: impl FnMut(&mut dyn Tx) -> Result<T>,
    ) -> Result<T> {
        self.write_refusable(|tx| {
            tx.lock_store()?;
            f(tx).map(Ok)
        })
    }

    /// Like [`Engine::write`], for operations that may be refused after
    /// settling: a refusal (the inner `Err`) rolls back everything the
    /// transaction did, the settlement included, so a refused command has
    /// changed nothing. What the settlement found is recorded, with the same
    /// logical times, by the next tick.
    pub(crate) fn write_refusable<T>(
        &mut self,
        mut f: impl FnMut(&mut dyn Tx) -> Result<Result<T>>,
    ) -> Result<T> {
        let mut attempt = 1;
        loop {
            match self.try_write(&mut f) {
                Err(e) if attempt < MAX_ATTEMPTS && crate::store::is_conflict(&e) => attempt += 1,
                done => return done?,
            }
        }
    }

    /// One attempt of [`Engine::write_refusable`].
    fn try_write<T>(
        &mut self,
        f: &mut impl FnMut(&mut dyn Tx) -> Result<Result<T>>,
    ) -> Result<Result<T>> {
        let mut tx = self.store.write()?;
        let value = match f(&mut *tx)? {
            Ok(value) => value,
            Err(refusal) => return Ok(Err(refusal)),
        };
        tx.commit()?;
        Ok(Ok(value))
    }

    /// Runs `f` in a read transaction.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
        let mut tx = self.store.read()?;
        f(&mut *tx)
    }
}

/// How many times a write is tried when the server aborts it to break a
/// deadlock with another writer.
pub const MAX_ATTEMPTS: u32 = 5;

/// Records `agent`'s answer to event `id` inside `tx` (see
/// [`Engine::respond`]), for `principal` under a delegation when given (see
/// [`Engine::respond_for`]); the inner `Err` is a refusal.
fn respond_in(
    tx: &mut dyn Tx,
    id: Uuid,
    agent: &AgentId,
    principal: Option<&AgentId>,
    response: &Response,
    now: DateTime<Utc>,
) -> Result<Result<TMinusEvent>> {
    let mut event = settled_event(tx, id, now)?;
    let delegation = match principal {
        Some(principal) => match delegations::in_force(tx, &event, principal, agent, now)? {
            Ok(covering) => Some((principal, covering[0].id)),
            Err(refusal) => return Ok(Err(refusal)),
        },
        None => None,
    };
    let answerer = principal.unwrap_or(agent);
    let accepted = match check_response(&mut event, answerer, response, now) {
        Ok(accepted) => accepted,
        Err(refusal) => return Ok(Err(refusal)),
    };
    if signed::in_force(tx, &event)?.is_some() {
        return Ok(Err(crate::trust::TrustError::Unsigned {
            event: event.label(),
            agent: agent.to_string(),
        }
        .into()));
    }
    record_response(tx, event, agent, delegation, accepted, now, None, None).map(Ok)
}

/// Records `agent`'s answer to the event `reference` names inside `tx`
/// (see [`Engine::respond_to`]); the inner `Err` is a refusal.
fn respond_to_in(
    tx: &mut dyn Tx,
    reference: &str,
    agent: &AgentId,
    principal: Option<&AgentId>,
    response: &Response,
    now: DateTime<Utc>,
) -> Result<Result<(TMinusEvent, Option<String>)>> {
    let id = match resolve::event_ref(tx, reference) {
        Ok(id) => id,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let event = match respond_in(tx, id, agent, principal, response, now)? {
        Ok(event) => event,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let campaign = match event.campaign {
        Some(c) => tx.campaign(c)?.map(|c| c.name),
        None => None,
    };
    Ok(Ok((event, campaign)))
}

/// Loads an event that must exist.
pub(crate) fn load(tx: &mut dyn Tx, id: Uuid) -> Result<TMinusEvent> {
    found(tx.event(id)?, id)
}

/// Settles `id` and its ancestors at `now`, and returns it as settled.
fn settled_event(tx: &mut dyn Tx, id: Uuid, now: DateTime<Utc>) -> Result<TMinusEvent> {
    found(settled_with_ancestors(tx, id, now)?, id)
}

/// The event, or the error for a missing one.
fn found(event: Option<TMinusEvent>, id: Uuid) -> Result<TMinusEvent> {
    event.ok_or_else(|| TMinusError::EventNotFound {
        reference: id.to_string(),
    })
}

/// Writes an accepted answer: the event (its deferral total and response
/// time), the attendee's status and the audit entry (with the signed message
/// and signature, for a signed answer); returns the event settled at `now`.
/// Under a delegation (`principal` and the delegation's id) the status is
/// `principal`'s, and the entry names `agent` acting for it and the
/// delegation (`detail.delegation`). An answer given from a chat names
/// where it came from (`detail.via`, see [`chat`]).
#[allow(clippy::too_many_arguments)]
fn record_response(
    tx: &mut dyn Tx,
    mut event: TMinusEvent,
    agent: &AgentId,
    delegation: Option<(&AgentId, Uuid)>,
    accepted: Accepted,
    now: DateTime<Utc>,
    signed: Option<signed::Signed>,
    via: Option<serde_json::Value>,
) -> Result<TMinusEvent> {
    let id = event.id;
    let (action, mut detail) = accepted.audit();
    event.last_response_at = Some(now);
    // The row's due time depends on the answers (an early event with
    // windows waits for an opening once it holds its quorum).
    let answerer = delegation.map_or(agent, |(principal, _)| principal);
    if let Some(slot) = event.attendees.iter_mut().find(|(a, _)| a == answerer) {
        slot.1 = accepted.status();
    }
    tx.update_event(&event)?;
    let principal = delegation.map(|(principal, _)| principal);
    tx.set_response(id, answerer, accepted.status(), now)?;
    detail["set"] =
        json!({ record::ANSWERS: { answerer.as_str(): accepted.status().to_string() } });
    if let Accepted::Deferred { by, .. } = &accepted {
        detail["set"][record::DEFERRED_BY] = json!(by.num_milliseconds());
    }
    // Where the row's due time depends on the answers (windows), it is
    // recorded as it is now, after the deferral moved the fire time.
    if settle::due_varies(&event) {
        detail["set"]["fire_time"] = record::set_of(&event, &["fire_time"])["fire_time"].take();
    }
    if let Some((_, delegation)) = delegation {
        detail["delegation"] = json!(delegation.to_string());
    }
    if let Some(signed) = &signed {
        signed::signed_detail(&mut detail, signed);
    }
    if let Some(via) = via {
        detail["via"] = via;
    }
    settle::append(
        tx,
        crate::store::NewAuditEntry {
            event: id,
            at: now,
            recorded_at: now,
            agent: Some(agent.clone()),
            on_behalf_of: principal.cloned(),
            action,
            detail,
            signed: signed.map(|s| s.answer),
        },
    )?;
    found(settled(tx, id, now)?, id)
}

/// Refuses any change to a final event.
pub(crate) fn check_not_final(event: &TMinusEvent) -> Result<()> {
    if event.state.is_final() {
        return Err(TMinusError::EventFinal {
            event: event.label(),
            id: event.id,
            state: event.state,
            at: event.finished_at,
        });
    }
    Ok(())
}

/// A response the rules accept, with what it changed.
#[derive(Debug, Clone, PartialEq)]
enum Accepted {
    /// A confirmation.
    Confirmed,
    /// A decline, with its reason.
    Declined(Option<String>),
    /// A deferral by `by`, making the event's total `total` and its fire
    /// time `fire` (when known).
    Deferred {
        by: Duration,
        total: Duration,
        fire: Option<DateTime<Utc>>,
    },
}

impl Accepted {
    /// The responding agent's new status.
    fn status(&self) -> ResponseStatus {
        match self {
            Accepted::Confirmed => ResponseStatus::Confirmed,
            Accepted::Declined(_) => ResponseStatus::Declined,
            Accepted::Deferred { by, .. } => ResponseStatus::Deferred(*by),
        }
    }

    /// The audit entry's action and detail.
    fn audit(&self) -> (AuditAction, serde_json::Value) {
        match self {
            Accepted::Confirmed => (AuditAction::Confirmed, json!({})),
            Accepted::Declined(reason) => (AuditAction::Declined, json!({ "reason": reason })),
            Accepted::Deferred { by, total, fire } => {
                let mut detail =
                    json!({ "by": format_duration(*by), "total": format_duration(*total) });
                if let Some(fire) = fire {
                    detail["fire_time"] = json!(format_time(*fire));
                }
                (AuditAction::Deferred, detail)
            }
        }
    }
}

/// Checks a response against the rules and applies it to `event` in memory
/// (the deferral total); returns what was accepted.
fn check_response(
    event: &mut TMinusEvent,
    agent: &AgentId,
    response: &Response,
    now: DateTime<Utc>,
) -> Result<Accepted> {
    if let Response::Decline(Some(reason)) = response {
        check_reason("decline reason", reason)?;
    }
    // The deadline comes first: the event was settled at `now` just before,
    // so past its fire time it is usually final already, and the refusal
    // must say that the deadline passed whether or not a tick recorded it.
    if let Some(deadline) = event.fire_deadline() {
        if now >= deadline {
            return Err(TMinusError::DeadlinePassed {
                event: event.label(),
                deadline,
                ago: now - deadline,
            });
        }
    }
    check_not_final(event)?;
    if event.response_of(agent).is_none() {
        return Err(TMinusError::NotAnAttendee {
            agent: agent.clone(),
            event: event.label(),
            attendees: event.attendees.iter().map(|(a, _)| a.clone()).collect(),
        });
    }
    if event.gates.four_eyes && *agent == event.organizer {
        return Err(TMinusError::FourEyes {
            agent: agent.clone(),
            event: event.label(),
        });
    }
    Ok(match response {
        Response::Confirm => Accepted::Confirmed,
        Response::Decline(reason) => Accepted::Declined(reason.clone()),
        Response::Defer(by) => {
            let total = event.deferred + *by;
            if let Some(max) = event.max_defer {
                if total > max {
                    return Err(TMinusError::MaxDeferExceeded {
                        event: event.label(),
                        requested: *by,
                        already: event.deferred,
                        max,
                    });
                }
            }
            event.deferred = total;
            event.scheduled_at += *by;
            Accepted::Deferred {
                by: *by,
                total,
                fire: event.fire_deadline(),
            }
        }
    })
}

/// The longest reason a decline or a cancel may give, in bytes.
pub const MAX_REASON_BYTES: usize = 4096;

/// Refuses a reason longer than [`MAX_REASON_BYTES`].
fn check_reason(field: &'static str, reason: &str) -> Result<()> {
    if reason.len() > MAX_REASON_BYTES {
        return Err(TMinusError::TextTooLong {
            field,
            len: reason.len(),
            max: MAX_REASON_BYTES,
        });
    }
    Ok(())
}

/// Checks a new event against the rules of [`crate::event_check`] (its
/// fire time must come after `now`) and builds it, `pending` and started at
/// `now`. Returns it with its notification rules, which are stored apart.
pub(crate) fn build_event(
    new: NewEvent,
    now: DateTime<Utc>,
) -> Result<(TMinusEvent, Vec<NotifyRule>)> {
    let kind = new.kind.to_string();
    if let Some(problem) = event_check::text_sizes(&kind, new.description.as_deref(), &new.payload)
    {
        return Err(problem.into());
    }
    let resolved = event_check::check(&EventDraft {
        notify: &new.notify,
        organizer: Some(&new.organizer),
        attendees: &new.attendees,
        quorum: new.quorum,
        groups: &new.groups,
        t_minus: new.t_minus,
        max_defer: new.max_defer,
        relative_at: None,
        fire: Some((event_check::fire_of(new.at, new.t_minus), now)),
    })?;
    check_gates(
        &new.gates,
        &new.organizer,
        &resolved.attendees,
        new.quorum,
        &new.groups,
        new.fire_policy,
        Some(event_check::fire_of(new.at, new.t_minus)),
    )?;
    let quorum_spec = if new.groups.is_empty() {
        new.quorum
    } else {
        Quorum::Count(resolved.quorum)
    };
    crate::escalation::check(
        &new.escalate,
        &resolved.attendees,
        &new.groups,
        Some(event_check::fire_of(new.at, new.t_minus) - now),
    )?;
    let event = TMinusEvent {
        rules_digest: crate::notification::spec::bound_rules_digest(&new.notify),
        id: Uuid::new_v4(),
        kind: new.kind,
        scheduled_at: new.at,
        t_minus: new.t_minus,
        organizer: new.organizer,
        attendees: resolved
            .attendees
            .into_iter()
            .map(|a| (a, ResponseStatus::Pending))
            .collect(),
        quorum: resolved.quorum,
        groups: new.groups,
        payload: new.payload,
        state: EventState::Pending,
        campaign: None,
        name: new.name,
        quorum_spec,
        fire_policy: new.fire_policy,
        max_defer: new.max_defer,
        deferred: Duration::zero(),
        relative_at: None,
        started_at: Some(now),
        finished_at: None,
        created_at: now,
        last_response_at: None,
        description: new.description,
        gates: new.gates,
        escalation: crate::escalation::Escalation {
            steps: new.escalate,
            applied: 0,
            applied_at: None,
        },
    };
    Ok((event, new.notify))
}

/// Checks an event's gates: the break-glass agents are valid ids; a
/// four-eyes event's quorum can be met without its requester; an event
/// firing at its fire time has that time (when known) inside a window.
pub(crate) fn check_gates(
    gates: &crate::gate::Gates,
    requester: &AgentId,
    attendees: &[AgentId],
    quorum: Quorum,
    groups: &[QuorumGroup],
    policy: FirePolicy,
    fire: Option<DateTime<Utc>>,
) -> Result<()> {
    for agent in &gates.breakglass {
        agent.validate()?;
    }
    if gates.four_eyes {
        if let Some(problem) = event_check::four_eyes(requester, attendees, quorum, groups) {
            return Err(problem.into());
        }
    }
    if let Some(fire) = fire {
        if let Some(problem) = event_check::windows_fire(&gates.windows, policy, fire) {
            return Err(problem.into());
        }
    }
    Ok(())
}

/// Inserts a new event with its notification rules, and its `scheduled`
/// audit entry.
pub(crate) fn insert_new_event(
    tx: &mut dyn Tx,
    event: &TMinusEvent,
    rules: &[NotifyRule],
    signers: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    debug_assert_eq!(
        event.rules_digest,
        crate::notification::spec::bound_rules_digest(rules),
        "a new event carries the digest of its bound rules"
    );
    tx.insert_event(event)?;
    if !rules.is_empty() {
        tx.set_notify_rules(event.id, rules)?;
    }
    let mut detail = json!({
        "kind": event.kind.to_string(),
        "quorum": event.quorum_spec.to_string(),
        "attendees": event.attendees.len(),
    });
    if !event.groups.is_empty() {
        detail["groups"] = groups_json(&event.groups);
    }
    if let Some(fire) = event.fire_deadline() {
        detail["fire_time"] = json!(format_time(fire));
    }
    if let Some(digest) = signers {
        detail["signers"] = json!(digest);
    }
    gates_detail(&mut detail, event);
    detail["record"] = Value::Object(record::event_record(
        event,
        record::EventExtras {
            fire_time: event.stored_due(),
            notify: record::notify_digest(rules),
            needs: &[],
            signers,
        },
    ));
    audit(
        tx,
        event.id,
        now,
        now,
        Some(&event.organizer),
        AuditAction::Scheduled,
        detail,
    )
}

/// Adds what an event's gates and fire policy hold to the detail of its
/// `scheduled` entry, each only when set: `fire` (when not `early`),
/// `requested_by` and `four_eyes` (for a four-eyes event), `windows`,
/// `breakglass`.
pub(crate) fn gates_detail(detail: &mut serde_json::Value, event: &TMinusEvent) {
    if event.fire_policy != FirePolicy::Early {
        detail["fire"] = json!(event.fire_policy.to_string());
    }
    let gates = &event.gates;
    if gates.four_eyes {
        detail["four_eyes"] = json!(true);
        detail["requested_by"] = json!(event.organizer);
    }
    if !gates.windows.is_empty() {
        detail["windows"] = json!(gates.windows);
    }
    if !gates.breakglass.is_empty() {
        detail["breakglass"] = json!(gates.breakglass);
    }
}

/// Groups as JSON, in the groups' order:
/// `[{"name": "ops", "quorum": "2", "needed": 2, "members": [...]}]`.
pub(crate) fn groups_json(groups: &[QuorumGroup]) -> serde_json::Value {
    groups
        .iter()
        .map(|g| {
            json!({
                "name": g.name,
                "quorum": g.quorum.to_string(),
                "needed": g.needed(),
                "members": g.members,
            })
        })
        .collect()
}

/// Refuses an agent answering for itself under a delegation.
fn check_principal(agent: &AgentId, principal: &AgentId) -> Result<()> {
    principal.validate()?;
    if agent == principal {
        return Err(crate::delegation::DelegationError::ToItself {
            agent: agent.to_string(),
        }
        .into());
    }
    Ok(())
}

/// Refuses what no store is needed to refuse in an answer: an invalid
/// agent id, a deferral that is not positive.
fn check_answer(agent: &AgentId, response: &Response) -> Result<()> {
    agent.validate()?;
    if let Response::Defer(by) = response {
        if *by <= Duration::zero() {
            return Err(TMinusError::NonPositiveDeferral {
                value: crate::error::DeferralValue::Duration(*by),
            });
        }
    }
    Ok(())
}
