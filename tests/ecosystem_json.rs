//! The `--json` shapes documented in docs/json.md, pinned by snapshots.
//! The clock is pinned (`T_MINUS_NOW`), so times are stable; UUIDs are
//! masked as `[UUID]` and plan digests as `[DIGEST]`.

use crate::cli_support;

use cli_support::T;
use insta::assert_snapshot;

const MANIFEST: &str = "\
campaign: release-v2
description: Ship v2 to production
defaults:
  t_minus: 5m
events:
  checkpoint:
    at: +10m
    attendees: [ci-bot]
  review:
    kind: review
    needs: [checkpoint]
    at: +20m
    quorum: 2
    attendees: [alice, bob, carol]
  deploy:
    kind: deploy
    needs: [review]
    at: +30m
    t_minus: 10m
    fire: on-time
    max_defer: 1h
    attendees: [ops-1, ops-2]
    payload: { version: 2.0.0 }
";

const INVALID: &str = "\
campaign: broken
events:
  review:
    at: +20m
    needs: [checkpoint]
    quorum: 3
    attendees: [alice, bob]
";

fn setup() -> T {
    let t = T::new();
    std::fs::write(t.dir().join("release.yaml"), MANIFEST).unwrap();
    std::fs::write(t.dir().join("broken.yaml"), INVALID).unwrap();
    t
}

#[test]
fn validate_json() {
    let t = setup();
    assert_snapshot!("validate_valid", t.ok("validate release.yaml --json"));
    let out = t.run("validate broken.yaml --json");
    assert_eq!(out.code, 1, "invalid manifests exit 1, JSON on stdout");
    assert_eq!(out.stderr, "");
    assert_snapshot!("validate_invalid", out.stdout);
}

#[test]
fn plan_and_apply_json() {
    let t = setup();
    let out = t.run("plan release.yaml --json --detailed-exitcode");
    assert_eq!(out.code, 2, "changes");
    assert_snapshot!("plan_create", out.stdout);
    assert_snapshot!("apply", t.ok("apply release.yaml --json"));
    assert_snapshot!(
        "plan_no_changes",
        t.ok("plan release.yaml --json --detailed-exitcode")
    );
    std::fs::write(
        t.dir().join("release.yaml"),
        MANIFEST.replace("quorum: 2", "quorum: 3"),
    )
    .unwrap();
    assert_snapshot!("plan_update", t.run("plan release.yaml --json").stdout);
}

#[test]
fn campaign_json() {
    let t = setup();
    t.ok("apply release.yaml");
    assert_snapshot!("campaign_show", t.ok("campaign show release-v2 --json"));
    assert_snapshot!("status_campaign", t.ok("status release-v2 --json"));
    assert_snapshot!("campaign_order", t.ok("campaign order release-v2 --json"));
    assert_snapshot!("campaign_list", t.ok("campaign list --json"));
    assert_snapshot!("campaign_create", t.ok("campaign create adhoc --json"));
    t.ok("campaign add adhoc checkpoint +10m --attendees a");
    t.ok("campaign add adhoc review +20m --attendees b");
    assert_snapshot!(
        "campaign_link",
        t.ok("campaign link adhoc checkpoint review --json")
    );
    assert_snapshot!("cancel_campaign", t.ok("cancel adhoc --json"));
}

#[test]
fn event_commands_json() {
    let t = setup();
    let id = t.schedule("review +15m --t-minus 5m --quorum 2 --attendees alice,bob,carol");
    assert_snapshot!("confirm", t.ok(&format!("confirm {id} alice --json")));
    assert_snapshot!("defer", t.ok(&format!("defer {id} bob 5m --json")));
    assert_snapshot!("status_list", t.ok("status --json"));
    let mut t = t;
    t.set_now("2025-06-06T15:30:00Z");
    assert_snapshot!("tick", t.ok("tick --json"));
    assert_snapshot!("log", t.ok(&format!("log {id} --json")));
}

#[test]
fn run_and_wait_json_lines() {
    let mut t = setup();
    t.ok("apply release.yaml");
    t.ok("confirm release-v2/checkpoint ci-bot");
    t.ok("confirm release-v2/review alice");
    t.ok("confirm release-v2/review bob");
    t.ok("confirm release-v2/deploy ops-1");
    // Every remaining deadline has passed: the run finishes at once.
    t.set_now("2025-06-06T16:00:00Z");
    let out = t.run("run --campaign release-v2 --json");
    assert_eq!(out.code, 3, "deploy was missed: {}", out.stderr);
    for line in out.stdout.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("one JSON object per line");
    }
    assert_snapshot!("run", out.stdout);
    let out = t.run("wait release-v2/review --json");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_snapshot!("wait_already_final", out.stdout);
}
