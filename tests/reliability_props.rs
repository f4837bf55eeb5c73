//! Property tests: random sequences of schedule,
//! respond (confirm / defer / decline, by attendees and non-attendees),
//! cancel, campaign links and cancellation, and ticks at random
//! non-decreasing times, run against `Engine::in_memory()` on a pinned
//! `FixedClock` and checked against the reference model in `tests/model`:
//!
//! - every operation is accepted or refused as the model says (and for the
//!   same reason);
//! - after every tick, every event has the model's state, answers, fire
//!   time and finish time, and its audit log holds exactly the model's
//!   transitions with the model's logical times;
//! - a final state never changes;
//! - fired events had quorum by their deadline; missed events lacked it (or
//!   opened after their deadline) and left nobody pending;
//! - every transition is reported by exactly one tick and logged once;
//! - replaying the same operations without the intermediate ticks gives the
//!   same transitions at the same times (a transition's time never depends
//!   on when a tick ran).
//!
//! 256 cases by default; `PROPTEST_CASES=5000 cargo test --test
//! integration reliability_props` for a longer run.

use crate::common;
use crate::model;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use t_minus::{
    AuditAction, Engine, EventKind, EventState, FirePolicy, FixedClock, NewEvent, Quorum,
    QuorumGroup, ResponseStatus, TMinusError, TMinusEvent, TickResult,
};
use uuid::Uuid;

use common::{agent, agents, t0};
use model::{Ans, Answer, Model, Refusal, Spec, St, Tr};

const AGENTS: [&str; 5] = ["a0", "a1", "a2", "a3", "a4"];
const CAMPAIGNS: usize = 2;

#[derive(Debug, Clone, Copy)]
enum QuorumChoice {
    Count(usize),
    All,
    Majority,
}

#[derive(Debug, Clone)]
enum Op {
    Schedule {
        campaign: Option<usize>,
        fire_in_s: i64,
        t_minus_s: i64,
        mask: u8,
        quorum: QuorumChoice,
        on_time: bool,
        max_defer_s: Option<i64>,
        /// Two groups' member masks: quorum groups (the quorum applied to
        /// each) when both pick somebody, else a plain event of `mask`.
        groups: Option<(u8, u8)>,
    },
    Respond {
        event: usize,
        agent: usize,
        answer: Answer,
    },
    Cancel {
        event: usize,
    },
    CancelCampaign {
        campaign: usize,
    },
    Link {
        campaign: usize,
        from: usize,
        to: usize,
    },
    Tick,
}

/// One step: advance the clock by `dt_ms`, then do `op`.
#[derive(Debug, Clone)]
struct Step {
    dt_ms: i64,
    op: Op,
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        3 => Just(Answer::Confirm),
        1 => Just(Answer::Decline),
        1 => (1i64..=120).prop_map(|s| Answer::Defer(s * 1000)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let quorum = prop_oneof![
        3 => (0usize..=5).prop_map(QuorumChoice::Count),
        1 => Just(QuorumChoice::All),
        1 => Just(QuorumChoice::Majority),
    ];
    let schedule = (
        prop::option::weighted(0.8, 0..CAMPAIGNS),
        0i64..=300,
        prop_oneof![3 => Just(0i64), 1 => 0i64..=60],
        any::<u8>(),
        quorum,
        any::<bool>(),
        prop::option::weighted(0.3, 0i64..=180),
        prop::option::weighted(0.3, (any::<u8>(), any::<u8>())),
    )
        .prop_map(
            |(campaign, fire_in_s, t_minus_s, mask, quorum, on_time, max_defer_s, groups)| {
                Op::Schedule {
                    campaign,
                    fire_in_s,
                    t_minus_s,
                    mask,
                    quorum,
                    on_time,
                    max_defer_s,
                    groups,
                }
            },
        );
    prop_oneof![
        4 => schedule,
        8 => (any::<usize>(), 0usize..AGENTS.len() + 1, answer())
            .prop_map(|(event, agent, answer)| Op::Respond { event, agent, answer }),
        1 => any::<usize>().prop_map(|event| Op::Cancel { event }),
        1 => (0..CAMPAIGNS).prop_map(|campaign| Op::CancelCampaign { campaign }),
        6 => (0..CAMPAIGNS, any::<usize>(), any::<usize>())
            .prop_map(|(campaign, from, to)| Op::Link { campaign, from, to }),
        2 => Just(Op::Tick),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let dt = prop_oneof![
        4 => Just(0i64),
        3 => (0i64..=60).prop_map(|s| s * 1000),
        1 => 0i64..=200_000,
    ];
    (dt, op()).prop_map(|(dt_ms, op)| Step { dt_ms, op })
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("time in range")
}

fn refusal(e: &TMinusError) -> Refusal {
    match e {
        TMinusError::DeadlinePassed { .. } => Refusal::Deadline,
        TMinusError::EventFinal { .. } => Refusal::Final,
        TMinusError::NotAnAttendee { .. } => Refusal::NotAttendee,
        TMinusError::MaxDeferExceeded { .. } => Refusal::MaxDefer,
        TMinusError::FireTimePassed { .. } => Refusal::FireTimePassed,
        TMinusError::Cycle { .. } => Refusal::Cycle,
        TMinusError::InvalidLink { .. } => Refusal::BadLink,
        other => panic!("unexpected error: {other:?}"),
    }
}

fn st(s: EventState) -> St {
    match s {
        EventState::Blocked => St::Blocked,
        EventState::Pending => St::Pending,
        EventState::Fired => St::Fired,
        EventState::Missed => St::Missed,
        EventState::Cancelled => St::Cancelled,
    }
}

fn ans(s: ResponseStatus) -> Ans {
    match s {
        ResponseStatus::Pending => Ans::Pending,
        ResponseStatus::Confirmed => Ans::Confirmed,
        ResponseStatus::Deferred(d) => Ans::Deferred(d.num_milliseconds()),
        ResponseStatus::Declined => Ans::Declined,
        ResponseStatus::Missed => Ans::Missed,
    }
}

fn tr(a: AuditAction) -> Option<Tr> {
    Some(match a {
        AuditAction::Opened => Tr::Opened,
        AuditAction::Fired => Tr::Fired,
        AuditAction::Missed => Tr::Missed,
        AuditAction::Cancelled => Tr::Cancelled,
        _ => return None,
    })
}

/// An engine, the model, and how their ids correspond.
struct Harness {
    engine: Engine,
    clock: FixedClock,
    model: Model,
    ids: Vec<Uuid>,
    campaigns: Vec<Uuid>,
    now: i64,
    /// Every tick's result, in order.
    ticks: Vec<TickResult>,
    /// Final (state, finished_at) as first observed.
    finals: HashMap<usize, (EventState, Option<DateTime<Utc>>)>,
    /// Whether to run the `Tick` steps (the replay skips them).
    ticks_enabled: bool,
}

type Check = Result<(), TestCaseError>;

impl Harness {
    fn new(ticks_enabled: bool) -> Self {
        let clock = FixedClock::new(t0());
        let mut engine = Engine::in_memory()
            .expect("engine")
            .with_clock(Arc::new(clock.clone()));
        let mut model = Model::new();
        let campaigns = (0..CAMPAIGNS)
            .map(|i| {
                model.create_campaign();
                engine
                    .create_campaign(format!("c{i}"))
                    .expect("campaign")
                    .id
            })
            .collect();
        Harness {
            engine,
            clock,
            model,
            ids: Vec::new(),
            campaigns,
            now: ms(t0()),
            ticks: Vec::new(),
            finals: HashMap::new(),
            ticks_enabled,
        }
    }

    fn advance(&mut self, dt_ms: i64) {
        self.now += dt_ms;
        self.clock.set(time(self.now));
    }

    fn step(&mut self, s: &Step) -> Check {
        self.advance(s.dt_ms);
        let now = self.now;
        match &s.op {
            Op::Schedule {
                campaign,
                fire_in_s,
                t_minus_s,
                mask,
                quorum,
                on_time,
                max_defer_s,
                groups,
            } => {
                let pick = |m: u8| -> Vec<&str> {
                    AGENTS
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| m & (1 << i) != 0)
                        .map(|(_, a)| *a)
                        .collect()
                };
                let resolve = |n: usize| match *quorum {
                    QuorumChoice::Count(c) => (Quorum::Count(c % (n + 1)), c % (n + 1)),
                    QuorumChoice::All => (Quorum::All, n),
                    // A majority of nobody is refused (event_rules tests
                    // it); the model asks for no confirmation instead.
                    QuorumChoice::Majority if n == 0 => (Quorum::Count(0), 0),
                    QuorumChoice::Majority => (Quorum::Majority, n / 2 + 1),
                };
                let grouped = groups
                    .map(|(a, b)| (pick(a), pick(b)))
                    .filter(|(a, b)| !a.is_empty() && !b.is_empty());
                let names: Vec<&str> = AGENTS
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, a)| *a)
                    .collect();
                let n = names.len();
                let (q, resolved) = resolve(n);
                let fire = now + fire_in_s * 1000;
                let new = NewEvent {
                    t_minus: Duration::seconds(*t_minus_s),
                    attendees: agents(&names),
                    quorum: q,
                    fire_policy: if *on_time {
                        FirePolicy::OnTime
                    } else {
                        FirePolicy::Early
                    },
                    max_defer: max_defer_s.map(Duration::seconds),
                    ..NewEvent::new(
                        EventKind::Checkpoint,
                        time(fire) + Duration::seconds(*t_minus_s),
                    )
                };
                let mut spec = Spec {
                    attendees: names.iter().map(|s| s.to_string()).collect(),
                    quorum: resolved,
                    groups: Vec::new(),
                    on_time: *on_time,
                    fire,
                    max_defer: max_defer_s.map(|s| s * 1000),
                };
                let mut new = new;
                if let Some((a, b)) = grouped {
                    // Members of `a`, then those of `b` not in `a`.
                    let mut union: Vec<&str> = a.clone();
                    union.extend(b.iter().filter(|x| !a.contains(x)));
                    let index = |g: &[&str]| -> Vec<usize> {
                        g.iter()
                            .map(|x| union.iter().position(|u| u == x).unwrap())
                            .collect()
                    };
                    let (qa, na) = resolve(a.len());
                    let (qb, nb) = resolve(b.len());
                    new.attendees = Vec::new();
                    new.groups = vec![
                        QuorumGroup::new("a", qa, agents(&a)),
                        QuorumGroup::new("b", qb, agents(&b)),
                    ];
                    spec.attendees = union.iter().map(|s| s.to_string()).collect();
                    spec.quorum = na + nb;
                    spec.groups = vec![(na, index(&a)), (nb, index(&b))];
                }
                let got = match campaign {
                    Some(c) => self.engine.campaign_add(self.campaigns[*c], new, None),
                    None => self.engine.schedule(new),
                };
                let want = self.model.schedule(now, &spec, *campaign);
                match (got, want) {
                    (Ok(e), Ok(i)) => {
                        prop_assert_eq!(i, self.ids.len());
                        self.ids.push(e.id);
                        self.compare_event(i, &e)?;
                    }
                    (Err(e), Err(r)) => prop_assert_eq!(refusal(&e), r),
                    (got, want) => {
                        prop_assert!(false, "schedule: engine {:?}, model {:?}", got, want)
                    }
                }
            }
            Op::Respond {
                event,
                agent: who,
                answer,
            } => {
                if self.ids.is_empty() {
                    return Ok(());
                }
                let i = event % self.ids.len();
                let name = AGENTS.get(*who).copied().unwrap_or("outsider");
                let response = match *answer {
                    Answer::Confirm => t_minus::Response::Confirm,
                    Answer::Decline => t_minus::Response::Decline(Some("no".into())),
                    Answer::Defer(by) => t_minus::Response::Defer(Duration::milliseconds(by)),
                };
                let got = self.engine.respond(self.ids[i], &agent(name), response);
                let want = self.model.respond(now, i, name, *answer);
                match (got, want) {
                    (Ok(e), Ok(())) => self.compare_event(i, &e)?,
                    (Err(e), Err(r)) => prop_assert_eq!(refusal(&e), r, "{}", e),
                    (got, want) => prop_assert!(
                        false,
                        "respond {} {:?} to #{}: engine {:?}, model {:?}",
                        name,
                        answer,
                        i,
                        got.map(|e| e.state),
                        want
                    ),
                }
            }
            Op::Cancel { event } => {
                if self.ids.is_empty() {
                    return Ok(());
                }
                let i = event % self.ids.len();
                let got = self.engine.cancel_event(self.ids[i], None);
                let want = self.model.cancel(now, i);
                match (got, want) {
                    (Ok(e), Ok(())) => self.compare_event(i, &e)?,
                    (Err(e), Err(r)) => prop_assert_eq!(refusal(&e), r),
                    (got, want) => prop_assert!(
                        false,
                        "cancel #{}: engine {:?}, model {:?}",
                        i,
                        got.map(|e| e.state),
                        want
                    ),
                }
            }
            Op::CancelCampaign { campaign } => {
                let got = self
                    .engine
                    .cancel_campaign(self.campaigns[*campaign], None)
                    .expect("cancel campaign");
                let want: Vec<Uuid> = self
                    .model
                    .cancel_campaign(now, *campaign)
                    .into_iter()
                    .map(|i| self.ids[i])
                    .collect();
                prop_assert_eq!(got, want);
            }
            Op::Link { campaign, from, to } => {
                let members = self.model.campaigns[*campaign].clone();
                if members.is_empty() {
                    return Ok(());
                }
                let (f, t) = (members[from % members.len()], members[to % members.len()]);
                let got =
                    self.engine
                        .campaign_link(self.campaigns[*campaign], self.ids[f], self.ids[t]);
                let want = self.model.link(now, *campaign, f, t);
                match (got, want) {
                    (Ok(_), Ok(())) => {}
                    (Err(e), Err(r)) => prop_assert_eq!(refusal(&e), r, "{}", e),
                    (got, want) => prop_assert!(
                        false,
                        "link #{} → #{}: engine {:?}, model {:?}",
                        f,
                        t,
                        got.map(|_| ()),
                        want
                    ),
                }
            }
            Op::Tick => {
                if self.ticks_enabled {
                    self.tick()?;
                }
            }
        }
        Ok(())
    }

    fn tick(&mut self) -> Check {
        let result = self.engine.tick(time(self.now)).expect("tick");
        self.ticks.push(result);
        self.model.tick(self.now);
        self.compare_all()
    }

    /// One event against the model.
    fn compare_event(&mut self, i: usize, e: &TMinusEvent) -> Check {
        let m = &self.model.events[i];
        prop_assert_eq!(st(e.state), m.state, "state of #{}", i);
        prop_assert_eq!(ms(e.fire_time()), m.fire, "fire time of #{}", i);
        prop_assert_eq!(e.deferred.num_milliseconds(), m.deferred, "deferred #{}", i);
        prop_assert_eq!(e.finished_at.map(ms), m.finished, "finished_at of #{}", i);
        prop_assert_eq!(e.started_at.map(ms), m.opened, "started_at of #{}", i);
        prop_assert_eq!(e.quorum, m.quorum);
        let answers: Vec<(String, Ans)> = e
            .attendees
            .iter()
            .map(|(a, s)| (a.0.clone(), ans(*s)))
            .collect();
        let want: Vec<(String, Ans)> = m
            .attendees
            .iter()
            .cloned()
            .zip(m.answers.iter().copied())
            .collect();
        prop_assert_eq!(answers, want, "answers of #{}", i);

        // Final states never change.
        if e.state.is_final() {
            let seen = *self.finals.entry(i).or_insert((e.state, e.finished_at));
            prop_assert_eq!(seen, (e.state, e.finished_at), "final #{} changed", i);
        } else {
            prop_assert!(!self.finals.contains_key(&i), "#{} left a final state", i);
        }
        // Quorum and deadline rules.
        match e.state {
            EventState::Fired => {
                prop_assert!(e.has_quorum(), "#{} fired without quorum", i);
                prop_assert!(e.finished_at.unwrap() <= e.fire_time(), "#{} fired late", i);
                if e.fire_policy == FirePolicy::OnTime {
                    prop_assert_eq!(e.finished_at, Some(e.fire_time()), "on-time #{}", i);
                }
            }
            EventState::Missed => {
                let opened_late = e.started_at.is_some_and(|s| s > e.fire_time());
                prop_assert!(!e.has_quorum() || opened_late, "#{} missed with quorum", i);
                prop_assert_eq!(e.pending_count(), 0, "#{} missed with open answers", i);
            }
            _ => {}
        }
        Ok(())
    }

    /// Every event and campaign against the model, logs included.
    fn compare_all(&mut self) -> Check {
        for i in 0..self.ids.len() {
            let e = self.engine.get_event(self.ids[i]).unwrap().unwrap();
            self.compare_event(i, &e)?;
            let log: Vec<(Tr, i64)> = self
                .engine
                .log(self.ids[i])
                .unwrap()
                .iter()
                .filter_map(|a| tr(a.action).map(|t| (t, ms(a.at))))
                .collect();
            prop_assert_eq!(&log, &self.model.events[i].log, "transitions of #{}", i);
        }
        for (c, id) in self.campaigns.clone().into_iter().enumerate() {
            let got = self.engine.get_campaign(id).unwrap().unwrap();
            prop_assert_eq!(got.state.to_string(), self.model.campaign_state(c));
        }
        Ok(())
    }

    /// Ticks far ahead (everything becomes final), then checks reporting.
    fn finish(&mut self) -> Check {
        self.advance(2 * 24 * 3600 * 1000);
        self.tick()?;
        for i in 0..self.ids.len() {
            prop_assert!(self.model.events[i].state.is_final(), "#{} not final", i);
        }
        // Every logged transition was reported by exactly one tick.
        let mut reported: HashMap<i64, usize> = HashMap::new();
        for r in &self.ticks {
            for t in &r.transitions {
                *reported.entry(t.seq).or_default() += 1;
            }
        }
        let mut logged = 0;
        for id in &self.ids {
            for entry in self.engine.log(*id).unwrap() {
                if entry.action.is_transition() {
                    logged += 1;
                    prop_assert_eq!(reported.get(&entry.seq), Some(&1), "{:?}", entry);
                }
            }
        }
        prop_assert_eq!(reported.len(), logged, "reported but not logged");
        prop_assert!(self.engine.tick(time(self.now)).unwrap().is_empty());
        Ok(())
    }

    /// Every event's logged transitions, by creation index.
    fn transitions(&mut self) -> Vec<Vec<(AuditAction, DateTime<Utc>)>> {
        self.ids
            .clone()
            .into_iter()
            .map(|id| {
                self.engine
                    .log(id)
                    .unwrap()
                    .into_iter()
                    .filter(|e| e.action.is_transition())
                    .map(|e| (e.action, e.at))
                    .collect()
            })
            .collect()
    }
}

fn check(steps: &[Step]) -> Check {
    let mut h = Harness::new(true);
    for s in steps {
        h.step(s)?;
    }
    h.finish()?;
    // The same operations without the intermediate ticks.
    let mut lazy = Harness::new(false);
    for s in steps {
        lazy.step(s)?;
    }
    lazy.finish()?;
    prop_assert_eq!(h.transitions(), lazy.transitions());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES overrides the default of 256.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_agrees_with_the_reference_model(steps in prop::collection::vec(step(), 1..80)) {
        check(&steps)?;
    }
}

/// A step at the same instant.
fn at0(op: Op) -> Step {
    Step { dt_ms: 0, op }
}

#[test]
fn a_cancellation_cascade_records_the_earliest_failure_whatever_the_tick_order() {
    // c0: X (fire +10s) and N1 (+50s) miss; M1 needs X, M2 needs M1, and D
    // needs both N1 and M2. Eagerly, X's miss at +10s cancels M1, M2 and D
    // at +10s; a single tick at +100s must record the same.
    let ev = |fire_in_s| Op::Schedule {
        campaign: Some(0),
        fire_in_s,
        t_minus_s: 0,
        mask: 1,
        quorum: QuorumChoice::All,
        on_time: false,
        max_defer_s: None,
        groups: None,
    };
    let link = |from, to| Op::Link {
        campaign: 0,
        from,
        to,
    };
    let steps = vec![
        at0(ev(10)),  // 0 X
        at0(ev(50)),  // 1 N1
        at0(ev(300)), // 2 M1
        at0(ev(300)), // 3 M2
        at0(ev(300)), // 4 D
        at0(link(0, 2)),
        at0(link(2, 3)),
        at0(link(1, 4)),
        at0(link(3, 4)),
        Step {
            dt_ms: 100_000,
            op: Op::Tick,
        },
    ];
    check(&steps).unwrap();
}
