//! Manifest benchmarks.
//!
//! A generated campaign of 10,000 events and 10,000 `needs` edges: 100
//! levels of 100 events, each event of levels 1–99 needing one event of the
//! level before, and 100 of them a second one. Every event has two
//! attendees. The store is a SQLite file in a temporary directory (WAL,
//! `synchronous = FULL`), as in production.
//!
//! - `validate_plan_apply_10k`: parse + validate the YAML text, then plan and
//!   apply it into an empty store in one transaction (target < 1 s);
//! - `replan_unchanged_10k`: parse + validate + plan the same manifest again
//!   against the applied store: no changes (target < 300 ms);
//! - `plan_only_unchanged_10k`: the plan step alone.
//!
//! Run: `cargo bench --bench manifest`. Numbers are recorded in
//! `docs/performance.md`.

use std::hint::black_box;
use std::time::Duration as StdDuration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use t_minus::manifest::{self, ValidManifests, ValidateOptions};
use t_minus::plan::PlanOptions;
use t_minus::Engine;

const LEVELS: usize = 100;
const WIDTH: usize = 100;

/// The manifest text: 10,000 events, 10,000 edges.
fn generate() -> String {
    let mut s = String::with_capacity(2 << 20);
    s.push_str(
        "campaign: big\ndescription: generated\ndefaults:\n  t_minus: 1m\n  quorum: 1\nevents:\n",
    );
    for level in 0..LEVELS {
        for i in 0..WIDTH {
            s.push_str(&format!(
                "  e{level}-{i}:\n    at: +10m\n    attendees: [agent-{i}, agent-{}]\n",
                i + 1
            ));
            if level > 0 {
                let prev = level - 1;
                s.push_str(&format!("    needs: [e{prev}-{i}"));
                // 100 extra edges: event 0 of every level 1..=99, and event 1
                // of level 1, also need their parent's right neighbour.
                if i == 0 || (level == 1 && i == 1) {
                    s.push_str(&format!(", e{prev}-{}", i + 1));
                }
                s.push_str("]\n");
            }
        }
    }
    s
}

/// A chain of 10,000 events, each needing the one before: the deepest
/// graph, where settling per event with its ancestors would be quadratic.
fn chain(t_minus: &str) -> String {
    let mut s = format!("campaign: chain\ndefaults:\n  t_minus: {t_minus}\nevents:\n");
    for i in 0..LEVELS * WIDTH {
        s.push_str(&format!("  c{i}:\n    at: +10m\n    attendees: [agent]\n"));
        if i > 0 {
            s.push_str(&format!("    needs: [c{}]\n", i - 1));
        }
    }
    s
}

fn validate(text: &str) -> ValidManifests {
    manifest::validate(
        &manifest::parse_str("big.yaml", text),
        &ValidateOptions::default(),
    )
    .expect("the generated manifest is valid")
}

fn fresh_engine(dir: &tempfile::TempDir, n: &mut usize) -> Engine {
    *n += 1;
    Engine::new(&dir.path().join(format!("s{n}.db"))).expect("store")
}

fn bench(c: &mut Criterion) {
    let text = generate();
    let summary = validate(&text).summary();
    assert_eq!(
        (summary.events, summary.edges),
        (10_000, 10_000),
        "{summary}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut n = 0;

    let mut group = c.benchmark_group("manifest");
    group.sample_size(10);
    group.measurement_time(StdDuration::from_secs(35));
    group.bench_function("validate_plan_apply_10k", |b| {
        b.iter_batched(
            || fresh_engine(&dir, &mut n),
            |mut engine| {
                let desired = validate(&text);
                let (plan, _) = engine
                    .apply_manifests(&desired, &PlanOptions::default())
                    .expect("apply");
                assert_eq!(plan.counts.add, 10_001);
                engine
            },
            BatchSize::PerIteration,
        )
    });

    let mut engine = fresh_engine(&dir, &mut n);
    engine
        .apply_manifests(&validate(&text), &PlanOptions::default())
        .expect("apply");
    group.bench_function("replan_unchanged_10k", |b| {
        b.iter(|| {
            let desired = validate(&text);
            let plan = engine
                .plan(&desired, &PlanOptions::default())
                .expect("plan");
            assert!(plan.is_empty());
            black_box(plan)
        })
    });
    let desired = validate(&text);
    group.bench_function("plan_only_unchanged_10k", |b| {
        b.iter(|| {
            black_box(
                engine
                    .plan(&desired, &PlanOptions::default())
                    .expect("plan"),
            )
        })
    });
    group.bench_function("parse_validate_10k", |b| {
        b.iter(|| black_box(validate(&text)))
    });

    // A 10,000-event chain: an apply that changes every event, and a
    // campaign cancel, each settle the campaign once.
    let (chain_1m, chain_2m) = (validate(&chain("1m")), validate(&chain("2m")));
    let applied_chain = |n: &mut usize| {
        let mut engine = fresh_engine(&dir, n);
        engine
            .apply_manifests(&chain_1m, &PlanOptions::default())
            .expect("apply the chain");
        engine
    };
    group.bench_function("apply_update_every_event_chain_10k", |b| {
        b.iter_batched(
            || applied_chain(&mut n),
            |mut engine| {
                let (plan, _) = engine
                    .apply_manifests(&chain_2m, &PlanOptions::default())
                    .expect("apply");
                assert_eq!(plan.counts.change, 10_000);
                engine
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("cancel_campaign_chain_10k", |b| {
        b.iter_batched(
            || {
                let engine = applied_chain(&mut n);
                let id = engine.resolve_campaign("chain").expect("campaign");
                (engine, id)
            },
            |(mut engine, id)| {
                let cancelled = engine.cancel_campaign(id, None).expect("cancel");
                assert_eq!(cancelled.len(), 10_000);
                engine
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
