//! Concurrency against the reference model.
//!
//! Sixteen answerers, each its own agent, each running 50 `t-minus`
//! processes one after another (confirm, defer, decline) from a script
//! generated with a fixed seed, on shared events (all sixteen attend),
//! distinct events (two attendees each), events of others (refused: not an
//! attendee) and four events whose fire time is a few seconds ahead, so
//! that some answers beat the deadline and some are refused — all while a
//! `t-minus run` ticks the store. Every answer is recorded as accepted (exit
//! 0) or refused (with its diagnostic code). Then:
//!
//! - no accepted answer is lost or doubled: per (event, agent) the audit log
//!   holds exactly the accepted answers, in the order they were sent;
//! - the audit log is complete: every event starts with `scheduled`, a final
//!   event has exactly one final entry and a non-final one none;
//! - the final states, answers, fire and finish times equal what the
//!   reference model (`tests/model`) computes from the accepted answers in
//!   log order at their logged times;
//! - every refusal was justified (deadline passed, event final, not an
//!   attendee, deferral cap) by the model's account of that event;
//! - `run` reported each transition exactly once.
//!
//! Far events fire in an hour, so only answers decide them; the near ones
//! have an attendee who never answers, so they can only miss; they fire
//! 1–2.5 s after the start, while the answerers are still at work.
//!
//! Runs on SQLite (every process on one file) and on PostgreSQL (every
//! process its own connection to one server, as if on its own host):
//! `store_tests!` at the end.

use crate::common;
use crate::model;

use std::collections::{BTreeMap, HashMap};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use t_minus::{AgentId, Engine, EventKind, FirePolicy, NewEvent, Quorum, TMinusEvent};
use uuid::Uuid;

use common::Rng;
use model::{Answer, Model, Refusal, Spec, St};

/// Pause before each answer: 50 answers take over 3.5 s.
const ANSWER_PACE: StdDuration = StdDuration::from_millis(70);

/// The same counts on both stores. On PostgreSQL the test takes ~8–12 s
/// rather than ~5 s on the 2-core CI machine (every answer is a process
/// with its own connection, and so a server backend of its own).
const PROCESSES: usize = 16;
const ANSWERS: usize = 50;
const SEED: u64 = 0x74D1_5EED;

/// The binary on the store at `db` (a file or a server URL), on the real
/// clock.
fn cmd(db: &str) -> Command {
    crate::cli_support::command(db, crate::cli_support::Clock::Real)
}

fn agent_name(p: usize) -> String {
    format!("agent-{p:02}")
}

/// One scripted answer and what became of it.
#[derive(Debug, Clone)]
struct Sent {
    event: usize,
    answer: Answer,
    /// Wall-clock end of the command, ms.
    ended_ms: i64,
    /// `None` when accepted; the refusal otherwise.
    refused: Option<Refusal>,
}

fn model_spec(e: &TMinusEvent) -> Spec {
    Spec {
        attendees: e.attendees.iter().map(|(a, _)| a.0.clone()).collect(),
        quorum: e.quorum,
        groups: Vec::new(),
        on_time: e.fire_policy == FirePolicy::OnTime,
        fire: e.fire_time().timestamp_millis(),
        max_defer: e.max_defer.map(|d| d.num_milliseconds()),
    }
}

fn classify(stderr: &str) -> Refusal {
    for (code, r) in [
        ("t_minus::refused::deadline_passed", Refusal::Deadline),
        ("t_minus::refused::final_event", Refusal::Final),
        ("t_minus::refused::not_attendee", Refusal::NotAttendee),
        ("t_minus::refused::max_defer", Refusal::MaxDefer),
    ] {
        if stderr.contains(code) {
            return r;
        }
    }
    panic!("an answer failed for an unexpected reason:\n{stderr}");
}

fn sixteen_answerers_and_a_runner_agree_with_the_reference_model() {
    let _serial = crate::common::serial();
    let (_store, db) = common::store();
    let everyone: Vec<AgentId> = (0..PROCESSES).map(|p| AgentId(agent_name(p))).collect();

    // The events, created through the library on the system clock.
    let mut engine = Engine::open(&db).unwrap();
    let now = Utc::now();
    let far = now + Duration::hours(1);
    let new = |attendees: Vec<AgentId>, quorum, policy, max_defer: Option<i64>| NewEvent {
        attendees,
        quorum,
        fire_policy: policy,
        max_defer: max_defer.map(Duration::minutes),
        ..NewEvent::new(EventKind::Meeting, far)
    };
    use FirePolicy::{Early, OnTime};
    let mut specs = vec![
        new(everyone.clone(), Quorum::Majority, Early, None),
        new(everyone.clone(), Quorum::All, Early, Some(10)),
        new(everyone.clone(), Quorum::Count(12), OnTime, None),
        new(everyone.clone(), Quorum::Count(4), Early, Some(3)),
        new(everyone.clone(), Quorum::Count(0), OnTime, Some(5)),
        new(everyone.clone(), Quorum::Count(14), Early, None),
    ];
    let shared = 0..specs.len();
    let distinct_start = specs.len();
    for p in 0..PROCESSES {
        let pair = vec![everyone[p].clone(), everyone[(p + 1) % PROCESSES].clone()];
        let (quorum, policy) = match p % 4 {
            0 => (Quorum::Count(1), Early),
            1 => (Quorum::All, Early),
            2 => (Quorum::Count(1), OnTime),
            _ => (Quorum::All, OnTime),
        };
        specs.push(new(pair, quorum, policy, (p % 3 == 0).then_some(4)));
    }
    // The events far ahead are written first; the near ones and the
    // sentinel count from the moment after, so however long those writes
    // take on a loaded machine, the near fire times are still ahead.
    let mut events: Vec<TMinusEvent> = specs
        .drain(..)
        .map(|s| engine.schedule(s).unwrap())
        .collect();
    let now = Utc::now();
    let near_start = events.len();
    for k in 0..4i64 {
        // Eight agents and one who never answers; quorum all: these can only
        // miss, at their fire time or at the first decline.
        let mut attendees: Vec<AgentId> = (0..8)
            .map(|j| everyone[(k as usize * 4 + j) % PROCESSES].clone())
            .collect();
        attendees.push(AgentId("ghost".into()));
        specs.push(NewEvent {
            attendees,
            max_defer: Some(Duration::seconds(1)),
            ..NewEvent::new(
                EventKind::Checkpoint,
                now + Duration::milliseconds(1000 + 500 * k),
            )
        });
    }
    // A sentinel the runner fires itself: once it reports it, the runner
    // is up and reports everything that follows.
    let sentinel = near_start + specs.len();
    events.extend(specs.into_iter().map(|s| engine.schedule(s).unwrap()));
    // The sentinel last, timed from its own writing.
    events.push(
        engine
            .schedule(NewEvent {
                quorum: Quorum::Count(0),
                fire_policy: OnTime,
                ..NewEvent::new(
                    EventKind::Checkpoint,
                    Utc::now() + Duration::milliseconds(300),
                )
            })
            .unwrap(),
    );
    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    let near = near_start..sentinel;

    // The scripts.
    let scripts: Vec<Vec<(usize, Answer)>> = (0..PROCESSES)
        .map(|p| {
            let mut rng = Rng(SEED ^ (p as u64).wrapping_mul(0x1000_0001));
            (0..ANSWERS)
                .map(|_| {
                    let roll = rng.below(100);
                    let event = if roll < 40 {
                        shared.start + rng.below(shared.len() as u64) as usize
                    } else if roll < 65 {
                        // Its own pair event, or the one it shares with p − 1.
                        let q = if rng.below(2) == 0 {
                            p
                        } else {
                            (p + PROCESSES - 1) % PROCESSES
                        };
                        distinct_start + q
                    } else if roll < 90 {
                        near.start + rng.below(near.len() as u64) as usize
                    } else {
                        // Someone else's pair: not an attendee.
                        distinct_start + (p + 2 + rng.below(13) as usize) % PROCESSES
                    };
                    let is_near = near.contains(&event);
                    let roll = rng.below(20);
                    let answer = if is_near {
                        match roll {
                            0..=13 => Answer::Confirm,
                            14 => Answer::Decline,
                            _ => Answer::Defer(200 + 100 * rng.below(5) as i64),
                        }
                    } else {
                        match roll {
                            0..=10 => Answer::Confirm,
                            11 | 12 => Answer::Decline,
                            _ => Answer::Defer(60_000 * (1 + rng.below(3) as i64)),
                        }
                    };
                    (event, answer)
                })
                .collect()
        })
        .collect();

    // The runner, then the answerers.
    let runner = cmd(&db)
        .args(["run", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut runner = runner;
    let stdout = runner.stdout.take().unwrap();
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let reader = thread::spawn(move || {
        use std::io::BufRead;
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            lines.push(line.unwrap());
            let _ = ready_tx.send(());
        }
        lines
    });
    ready
        .recv_timeout(StdDuration::from_secs(30))
        .expect("the runner fires the sentinel");
    let started = Instant::now();
    let handles: Vec<_> = scripts
        .into_iter()
        .enumerate()
        .map(|(p, script)| {
            let db = db.clone();
            let ids = ids.clone();
            thread::spawn(move || {
                let me = agent_name(p);
                script
                    .into_iter()
                    .map(|(event, answer)| {
                        // Paced, so that the answers outlast the near
                        // events' deadlines (≤ 2.5 s) however fast the
                        // machine: some must be refused for the deadline.
                        thread::sleep(ANSWER_PACE);
                        let id = ids[event].to_string();
                        let mut c = cmd(&db);
                        match answer {
                            Answer::Confirm => c.args(["confirm", &id, &me]),
                            Answer::Decline => c.args(["decline", &id, &me, "--reason", "busy"]),
                            Answer::Defer(ms) => c.args(["defer", &id, &me, &format!("{ms}ms")]),
                        };
                        let out = c.output().unwrap();
                        let ended_ms = Utc::now().timestamp_millis();
                        let refused = (!out.status.success())
                            .then(|| classify(&String::from_utf8_lossy(&out.stderr)));
                        if refused.is_none() {
                            assert_eq!(out.status.code(), Some(0));
                        }
                        Sent {
                            event,
                            answer,
                            ended_ms,
                            refused,
                        }
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let sent: Vec<Vec<Sent>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let answering = started.elapsed();

    // Let the runner record the near events' outcome, then stop it (Ctrl-C).
    let deadline = Instant::now() + StdDuration::from_secs(30);
    loop {
        let done = near
            .clone()
            .all(|i| engine.get_event(ids[i]).unwrap().unwrap().state.is_final());
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the runner never finished the near events"
        );
        thread::sleep(StdDuration::from_millis(50));
    }
    let status = Command::new("kill")
        .args(["-INT", &runner.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let run_out = runner.wait_with_output().unwrap();
    assert_eq!(
        run_out.status.code(),
        Some(130),
        "interrupted run\n{}",
        String::from_utf8_lossy(&run_out.stderr)
    );

    // Bring the store to now (nothing should be due) and fix the model's clock.
    let end = Utc::now();
    engine.tick(end).unwrap();
    let end_ms = end.timestamp_millis();

    // Per (event, agent): the accepted answers, in the order sent.
    let mut accepted: HashMap<(usize, String), Vec<Answer>> = HashMap::new();
    let (mut n_accepted, mut refusals) = (0, BTreeMap::<String, usize>::new());
    for (p, list) in sent.iter().enumerate() {
        for s in list {
            match s.refused {
                None => {
                    n_accepted += 1;
                    accepted
                        .entry((s.event, agent_name(p)))
                        .or_default()
                        .push(s.answer);
                }
                Some(r) => *refusals.entry(format!("{r:?}")).or_default() += 1,
            }
        }
    }

    let mut run_transitions: HashMap<(String, String), usize> = HashMap::new();
    let run_lines = reader.join().unwrap();
    for line in &run_lines {
        let v: serde_json::Value = serde_json::from_str(line).expect("run --json line");
        if v["type"] == "transition" {
            let key = (
                v["event"].as_str().unwrap_or_default().to_string(),
                v["action"].as_str().unwrap_or_default().to_string(),
            );
            *run_transitions.entry(key).or_default() += 1;
        }
    }

    let mut logged_answers = 0;
    for (i, e) in events.iter().enumerate() {
        let log = engine.log(e.id).unwrap();
        let stored = engine.get_event(e.id).unwrap().unwrap();
        assert_eq!(
            log[0].action.as_str(),
            "scheduled",
            "#{i} log starts with scheduled"
        );

        // The model: this event alone (no campaigns here), its accepted
        // answers replayed in log order at their logged times.
        let mut m = Model::new();
        m.schedule(e.created_at.timestamp_millis(), &model_spec(e), None)
            .unwrap();
        let mut per_agent: HashMap<String, Vec<Answer>> = HashMap::new();
        for entry in &log {
            let answer = match entry.action.as_str() {
                "confirmed" => Answer::Confirm,
                "declined" => Answer::Decline,
                "deferred" => {
                    let by = entry.detail["by"].as_str().unwrap();
                    let ms = t_minus::duration::parse_duration(by)
                        .unwrap()
                        .num_milliseconds();
                    Answer::Defer(ms)
                }
                _ => continue,
            };
            logged_answers += 1;
            let who = entry.agent.as_ref().unwrap().0.clone();
            m.respond(entry.at.timestamp_millis(), 0, &who, answer)
                .unwrap_or_else(|r| panic!("#{i}: the model refuses logged {entry:?}: {r:?}"));
            per_agent.entry(who).or_default().push(answer);
        }
        m.tick(end_ms);
        let me = &m.events[0];

        // No accepted answer lost or doubled, in the order sent.
        for (agent, answers) in &per_agent {
            let sent = accepted
                .get(&(i, agent.clone()))
                .cloned()
                .unwrap_or_default();
            assert_eq!(&sent, answers, "#{i} {agent}: accepted vs logged");
        }
        for ((ev, agent), answers) in &accepted {
            if *ev == i {
                assert!(
                    per_agent.contains_key(agent),
                    "#{i} {agent}: {answers:?} accepted but not logged"
                );
            }
        }

        // The stored event equals the model's.
        assert_eq!(stored.state.to_string(), me.state.word(), "#{i} state");
        assert_eq!(stored.fire_time().timestamp_millis(), me.fire, "#{i} fire");
        assert_eq!(
            stored.finished_at.map(|t| t.timestamp_millis()),
            me.finished,
            "#{i} finished_at"
        );
        let answers: Vec<String> = stored
            .attendees
            .iter()
            .map(|(_, s)| s.word().to_string())
            .collect();
        let want: Vec<String> = me
            .answers
            .iter()
            .map(|a| {
                match a {
                    model::Ans::Pending => "pending",
                    model::Ans::Confirmed => "confirmed",
                    model::Ans::Deferred(_) => "deferred",
                    model::Ans::Declined => "declined",
                    model::Ans::Missed => "missed",
                }
                .to_string()
            })
            .collect();
        assert_eq!(answers, want, "#{i} answers");

        // The log's transitions: one final entry iff final, matching.
        let finals: Vec<&str> = log
            .iter()
            .map(|a| a.action.as_str())
            .filter(|a| matches!(*a, "fired" | "missed" | "cancelled"))
            .collect();
        if me.state.is_final() {
            assert_eq!(finals, [me.state.word()], "#{i} final entries");
            // `run` reported it, once.
            let key = (e.id.to_string(), me.state.word().to_string());
            assert_eq!(
                run_transitions.get(&key),
                Some(&1),
                "#{i}: run reported {key:?}"
            );
        } else {
            assert!(
                finals.is_empty(),
                "#{i}: {finals:?} but {}",
                me.state.word()
            );
        }
        if i == sentinel {
            assert_eq!(me.state, St::Fired, "the sentinel fired on time");
        }
        if near.contains(&i) {
            assert_eq!(me.state, St::Missed, "near #{i} can only miss");
        }

        // Every refusal was justified at the end of its command.
        for (p, list) in sent.iter().enumerate() {
            for s in list.iter().filter(|s| s.event == i) {
                let Some(r) = s.refused else { continue };
                let ok = match r {
                    Refusal::Deadline => me.fire <= s.ended_ms,
                    Refusal::Final => me.finished.is_some_and(|f| f <= s.ended_ms),
                    Refusal::NotAttendee => !me.attendees.contains(&agent_name(p)),
                    Refusal::MaxDefer => match s.answer {
                        Answer::Defer(by) => me.max_defer.is_some_and(|max| me.deferred + by > max),
                        _ => false,
                    },
                    _ => false,
                };
                assert!(
                    ok,
                    "#{i}: {} refused {:?} with {r:?}: {me:?}",
                    agent_name(p),
                    s.answer
                );
            }
        }
    }
    assert_eq!(
        logged_answers, n_accepted,
        "every accepted answer logged once"
    );
    let run_total: usize = run_transitions.values().sum();
    assert_eq!(
        run_total,
        run_transitions.len(),
        "run reported nothing twice"
    );

    eprintln!(
        "{} answers in {answering:?}: {n_accepted} accepted, refused {refusals:?}",
        PROCESSES * ANSWERS
    );
    // The scripts exercise every path.
    assert!(n_accepted > 100, "{n_accepted}");
    assert!(refusals.contains_key("NotAttendee"), "{refusals:?}");
    assert!(refusals.contains_key("Deadline"), "{refusals:?}");
}

common::store_tests!(sixteen_answerers_and_a_runner_agree_with_the_reference_model);
