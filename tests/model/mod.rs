//! A small reference model of the event state machine (and the decisions of
//! docs/semantics.md), written for the reliability tests independently of
//! `src/lifecycle.rs` and the engine.
//!
//! The model is *eager*: after every operation at time `now` it brings every
//! event to its state at `now`, walking the dependency graph in topological
//! order (needs first), so each transition happens at the logical moment it
//! became true. It knows nothing about ticks: the engine, which is lazy and
//! settles only what a command touches or what is due, must agree with it
//! whenever a tick has run. Times are integer milliseconds.
#![allow(dead_code)] // each test binary uses a different part of it

use std::collections::BTreeSet;

/// An event's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum St {
    Blocked,
    Pending,
    Fired,
    Missed,
    Cancelled,
}

impl St {
    pub fn is_final(self) -> bool {
        matches!(self, St::Fired | St::Missed | St::Cancelled)
    }

    /// The word the engine uses (`EventState`'s Display).
    pub fn word(self) -> &'static str {
        match self {
            St::Blocked => "blocked",
            St::Pending => "pending",
            St::Fired => "fired",
            St::Missed => "missed",
            St::Cancelled => "cancelled",
        }
    }
}

/// A transition as the audit log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tr {
    Opened,
    Fired,
    Missed,
    Cancelled,
}

impl Tr {
    /// The audit action word.
    pub fn word(self) -> &'static str {
        match self {
            Tr::Opened => "opened",
            Tr::Fired => "fired",
            Tr::Missed => "missed",
            Tr::Cancelled => "cancelled",
        }
    }
}

/// An attendee's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ans {
    Pending,
    Confirmed,
    /// The latest deferral, in ms.
    Deferred(i64),
    Declined,
    Missed,
}

impl Ans {
    /// Pending or deferred: may still confirm.
    fn open(self) -> bool {
        matches!(self, Ans::Pending | Ans::Deferred(_))
    }
}

/// What an agent sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Confirm,
    /// By this many ms (> 0).
    Defer(i64),
    Decline,
}

/// Why an operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The fire time had passed.
    Deadline,
    /// The event was final.
    Final,
    /// The agent is not an attendee.
    NotAttendee,
    /// The deferral would exceed `max_defer`.
    MaxDefer,
    /// A new event whose fire time is already past.
    FireTimePassed,
    /// A link that closes a cycle.
    Cycle,
    /// Any other refused link (not in the campaign, final `to`, failed `from`).
    BadLink,
}

/// What a new event looks like.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub attendees: Vec<String>,
    /// Resolved quorum (≤ attendees); with groups, their total.
    pub quorum: usize,
    /// Quorum groups: each group's resolved quorum and its members as
    /// indices into `attendees`. Empty: one group of every attendee.
    pub groups: Vec<(usize, Vec<usize>)>,
    /// `fire: on-time` (else `early`).
    pub on_time: bool,
    /// Absolute fire time (`at − t_minus`), ms.
    pub fire: i64,
    pub max_defer: Option<i64>,
}

/// One event of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct MEvent {
    pub attendees: Vec<String>,
    pub answers: Vec<Ans>,
    pub quorum: usize,
    pub groups: Vec<(usize, Vec<usize>)>,
    pub on_time: bool,
    /// Current fire time, deferrals included.
    pub fire: i64,
    pub deferred: i64,
    pub max_defer: Option<i64>,
    pub state: St,
    pub opened: Option<i64>,
    pub finished: Option<i64>,
    pub campaign: Option<usize>,
    /// Indices of the events this one needs.
    pub needs: Vec<usize>,
    /// Every transition, in order, with its logical time.
    pub log: Vec<(Tr, i64)>,
}

impl MEvent {
    pub fn confirmed(&self) -> usize {
        self.answers
            .iter()
            .filter(|a| **a == Ans::Confirmed)
            .count()
    }

    fn still_open(&self) -> usize {
        self.answers.iter().filter(|a| a.open()).count()
    }

    /// Whether quorum holds: in every group (or overall, without groups).
    fn met(&self) -> bool {
        if self.groups.is_empty() {
            return self.confirmed() >= self.quorum;
        }
        self.groups.iter().all(|(needed, members)| {
            members
                .iter()
                .filter(|m| self.answers[**m] == Ans::Confirmed)
                .count()
                >= *needed
        })
    }

    /// Whether quorum can still hold: in every group, confirmed + open ≥ needed.
    fn reachable(&self) -> bool {
        if self.groups.is_empty() {
            return self.confirmed() + self.still_open() >= self.quorum;
        }
        self.groups.iter().all(|(needed, members)| {
            members
                .iter()
                .filter(|m| self.answers[**m] == Ans::Confirmed || self.answers[**m].open())
                .count()
                >= *needed
        })
    }

    fn finish(&mut self, state: St, at: i64) {
        self.state = state;
        self.finished = Some(at);
        let tr = match state {
            St::Fired => Tr::Fired,
            St::Missed => Tr::Missed,
            St::Cancelled => Tr::Cancelled,
            _ => unreachable!("not a final state"),
        };
        self.log.push((tr, at));
        if state == St::Missed {
            for a in &mut self.answers {
                if a.open() {
                    *a = Ans::Missed;
                }
            }
        }
    }
}

/// The model: events (by creation index) and campaigns (membership lists).
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub events: Vec<MEvent>,
    /// Per campaign, its events in the order added.
    pub campaigns: Vec<Vec<usize>>,
}

impl Model {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new campaign; returns its index.
    pub fn create_campaign(&mut self) -> usize {
        self.campaigns.push(Vec::new());
        self.campaigns.len() - 1
    }

    /// Schedules an event at `now` (standalone, or added to `campaign`):
    /// refused when its fire time is not after `now`; otherwise it opens at
    /// once. Returns its index.
    pub fn schedule(
        &mut self,
        now: i64,
        spec: &Spec,
        campaign: Option<usize>,
    ) -> Result<usize, Refusal> {
        assert!(!spec.groups.is_empty() || spec.quorum <= spec.attendees.len());
        self.settle(now);
        if spec.fire <= now {
            return Err(Refusal::FireTimePassed);
        }
        let id = self.events.len();
        self.events.push(MEvent {
            attendees: spec.attendees.clone(),
            answers: vec![Ans::Pending; spec.attendees.len()],
            quorum: spec.quorum,
            groups: spec.groups.clone(),
            on_time: spec.on_time,
            fire: spec.fire,
            deferred: 0,
            max_defer: spec.max_defer,
            state: St::Pending,
            opened: Some(now),
            finished: None,
            campaign,
            needs: Vec::new(),
            log: Vec::new(),
        });
        if let Some(c) = campaign {
            self.campaigns[c].push(id);
        }
        self.decide_open(id, now);
        self.settle(now);
        Ok(id)
    }

    /// An attendee's answer at `now`.
    fn respond_inner(
        &mut self,
        now: i64,
        id: usize,
        agent: &str,
        answer: Answer,
    ) -> Result<(), Refusal> {
        self.settle(now);
        let e = &mut self.events[id];
        // The deadline first (documented): it is known for every event in
        // the model (absolute times only).
        if now >= e.fire {
            return Err(Refusal::Deadline);
        }
        if e.state.is_final() {
            return Err(Refusal::Final);
        }
        let Some(slot) = e.attendees.iter().position(|a| a == agent) else {
            return Err(Refusal::NotAttendee);
        };
        match answer {
            Answer::Confirm => e.answers[slot] = Ans::Confirmed,
            Answer::Decline => e.answers[slot] = Ans::Declined,
            Answer::Defer(by) => {
                assert!(by > 0);
                if e.max_defer.is_some_and(|max| e.deferred + by > max) {
                    return Err(Refusal::MaxDefer);
                }
                e.deferred += by;
                e.fire += by;
                e.answers[slot] = Ans::Deferred(by);
            }
        }
        // Answers to a blocked event wait for it to open.
        if e.state == St::Pending {
            self.decide_by_answers(id, now);
        }
        self.settle(now);
        Ok(())
    }

    /// Cancels a non-final event at `now`; its blocked dependents follow.
    fn cancel_inner(&mut self, now: i64, id: usize) -> Result<(), Refusal> {
        self.settle(now);
        if self.events[id].state.is_final() {
            return Err(Refusal::Final);
        }
        self.events[id].finish(St::Cancelled, now);
        self.settle(now);
        Ok(())
    }

    /// Cancels every unfinished event of a campaign at `now`; events the
    /// clock already decided keep their outcome.
    pub fn cancel_campaign(&mut self, now: i64, campaign: usize) -> Vec<usize> {
        self.settle(now);
        let mut cancelled = Vec::new();
        for id in self.campaigns[campaign].clone() {
            if !self.events[id].state.is_final() {
                self.events[id].finish(St::Cancelled, now);
                cancelled.push(id);
            }
        }
        self.settle(now);
        cancelled
    }

    /// `to` needs `from` (both in `campaign`).
    fn link_inner(
        &mut self,
        now: i64,
        campaign: usize,
        from: usize,
        to: usize,
    ) -> Result<(), Refusal> {
        self.settle(now);
        if self.events[from].campaign != Some(campaign)
            || self.events[to].campaign != Some(campaign)
        {
            return Err(Refusal::BadLink);
        }
        if self.events[to].needs.contains(&from) {
            return Ok(());
        }
        if from == to || self.reaches(to, from) {
            return Err(Refusal::Cycle);
        }
        if self.events[to].state.is_final() {
            return Err(Refusal::BadLink);
        }
        if matches!(self.events[from].state, St::Missed | St::Cancelled) {
            return Err(Refusal::BadLink);
        }
        self.events[to].needs.push(from);
        if self.events[to].state == St::Pending && self.events[from].state != St::Fired {
            self.events[to].state = St::Blocked;
            self.events[to].opened = None;
        }
        self.settle(now);
        Ok(())
    }

    /// An attendee's answer at `now`. A refused answer changes nothing: not
    /// even the settlement it found due is kept (the next tick records it).
    pub fn respond(
        &mut self,
        now: i64,
        id: usize,
        agent: &str,
        answer: Answer,
    ) -> Result<(), Refusal> {
        self.unless_refused(|m| m.respond_inner(now, id, agent, answer))
    }

    /// Cancels a non-final event at `now`; its blocked dependents follow. A
    /// refused cancel changes nothing.
    pub fn cancel(&mut self, now: i64, id: usize) -> Result<(), Refusal> {
        self.unless_refused(|m| m.cancel_inner(now, id))
    }

    /// `to` needs `from` (both in `campaign`). A refused link changes
    /// nothing.
    pub fn link(
        &mut self,
        now: i64,
        campaign: usize,
        from: usize,
        to: usize,
    ) -> Result<(), Refusal> {
        self.unless_refused(|m| m.link_inner(now, campaign, from, to))
    }

    /// Runs `op`, and puts the model back as it was when `op` refuses: a
    /// refused command is a transaction rolled back.
    fn unless_refused(
        &mut self,
        op: impl FnOnce(&mut Self) -> Result<(), Refusal>,
    ) -> Result<(), Refusal> {
        let before = self.clone();
        let result = op(self);
        if result.is_err() {
            *self = before;
        }
        result
    }

    /// Brings everything to its state at `now` (what a tick must produce).
    pub fn tick(&mut self, now: i64) {
        self.settle(now);
    }

    /// Whether `from` reaches `to` following "is needed by" edges.
    fn reaches(&self, from: usize, to: usize) -> bool {
        let mut stack = vec![from];
        let mut seen = BTreeSet::new();
        while let Some(n) = stack.pop() {
            if n == to {
                return true;
            }
            if !seen.insert(n) {
                continue;
            }
            for (i, e) in self.events.iter().enumerate() {
                if e.needs.contains(&n) {
                    stack.push(i);
                }
            }
        }
        false
    }

    /// Event indices, needs before the events that need them.
    fn topological(&self) -> Vec<usize> {
        let n = self.events.len();
        let mut done = vec![false; n];
        let mut order = Vec::with_capacity(n);
        while order.len() < n {
            let before = order.len();
            for i in 0..n {
                if !done[i] && self.events[i].needs.iter().all(|d| done[*d]) {
                    done[i] = true;
                    order.push(i);
                }
            }
            assert!(order.len() > before, "the model's graph has a cycle");
        }
        order
    }

    /// The eager step: every event, needs first, to its state at `now`.
    fn settle(&mut self, now: i64) {
        for id in self.topological() {
            if self.events[id].state == St::Blocked {
                let needs: Vec<(St, Option<i64>)> = self.events[id]
                    .needs
                    .iter()
                    .map(|n| (self.events[*n].state, self.events[*n].finished))
                    .collect();
                // The first need to fail cancels it, at that moment.
                let failed = needs
                    .iter()
                    .filter(|(s, _)| matches!(s, St::Missed | St::Cancelled))
                    .filter_map(|(_, at)| *at)
                    .min();
                if let Some(at) = failed {
                    self.events[id].finish(St::Cancelled, at);
                    continue;
                }
                if needs.iter().all(|(s, _)| *s == St::Fired) {
                    let at = needs.iter().filter_map(|(_, at)| *at).max().unwrap_or(now);
                    let e = &mut self.events[id];
                    e.state = St::Pending;
                    e.opened = Some(at);
                    e.log.push((Tr::Opened, at));
                    self.decide_open(id, at);
                }
            }
            let e = &mut self.events[id];
            // The clock: at the fire time an open event is decided.
            if e.state == St::Pending && now >= e.fire {
                let at = e.fire;
                if e.met() {
                    e.finish(St::Fired, at);
                } else {
                    e.finish(St::Missed, at);
                }
            }
        }
    }

    /// An event that has just opened at `at`, with the answers it already has.
    fn decide_open(&mut self, id: usize, at: i64) {
        if self.events[id].fire < at {
            // Its deadline passed while it waited: only a miss is possible.
            self.events[id].finish(St::Missed, at);
            return;
        }
        self.decide_by_answers(id, at);
    }

    /// Decisions that answers alone can make: unreachable quorum misses at
    /// once; `early` fires as soon as quorum holds.
    fn decide_by_answers(&mut self, id: usize, at: i64) {
        let e = &mut self.events[id];
        if !e.reachable() {
            e.finish(St::Missed, at);
        } else if !e.on_time && e.met() {
            e.finish(St::Fired, at);
        }
    }

    /// A campaign's derived state: `running`, `succeeded` or `failed`.
    pub fn campaign_state(&self, campaign: usize) -> &'static str {
        let members = &self.campaigns[campaign];
        if members.iter().any(|i| !self.events[*i].state.is_final()) {
            "running"
        } else if members.iter().all(|i| self.events[*i].state == St::Fired) {
            "succeeded"
        } else {
            "failed"
        }
    }
}
