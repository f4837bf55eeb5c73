//! The example manifests validate, match the schema, and apply.

use std::path::PathBuf;

use chrono::Duration;

use crate::common::t0;
use t_minus::manifest::{self, ValidateOptions};
use t_minus::plan::PlanOptions;
use t_minus::{Engine, EventState, FixedClock};

fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files = manifest::parse::manifest_files(&dir).expect("examples directory");
    // The main job's demo manifest lives apart: it reuses release.yaml's name.
    files.extend(manifest::parse::manifest_files(&dir.join("demo")).expect("examples/demo"));
    files.extend(
        manifest::parse::manifest_files(&dir.join("notify-demo")).expect("examples/notify-demo"),
    );
    files
}

#[test]
fn there_are_at_least_three_examples_with_the_schema_line() {
    let files = examples();
    assert!(files.len() >= 3, "{files:?}");
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let reference = first
            .strip_prefix("# yaml-language-server: $schema=")
            .unwrap_or_else(|| panic!("{} lacks the schema line", f.display()));
        // The reference, relative to the file, must be the checked-in schema.
        let schema = f.parent().unwrap().join(reference).canonicalize().unwrap();
        let expected = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("schemas/campaign.schema.json")
            .canonicalize()
            .unwrap();
        assert_eq!(schema, expected, "{}", f.display());
    }
}

#[test]
fn every_example_validates() {
    for f in examples() {
        let desired = manifest::check(&[&f], &ValidateOptions::default())
            .unwrap_or_else(|d| panic!("{}: {d:?}", f.display()));
        assert_eq!(desired.campaigns.len(), 1, "{}", f.display());
    }
}

#[test]
fn the_directory_validates_as_a_whole() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let desired = manifest::check(&[dir], &ValidateOptions::default()).unwrap();
    let names: Vec<&str> = desired.campaigns.iter().map(|c| c.name.as_str()).collect();
    // name order of the files
    assert_eq!(
        names,
        [
            "guarded-release",
            "release-v2",
            "rolling-deploy-v2",
            "sprint-planning",
            "two-key-deploy"
        ]
    );
    let deploy = desired
        .campaign("two-key-deploy")
        .and_then(|c| c.events.iter().find(|e| e.key == "deploy"))
        .expect("two-key-deploy/deploy");
    let groups: Vec<(&str, String, usize)> = deploy
        .groups
        .iter()
        .map(|g| (g.name.as_str(), g.quorum.to_string(), g.members.len()))
        .collect();
    assert_eq!(
        groups,
        [
            ("ops", "2".to_string(), 3),
            ("security", "1".to_string(), 2)
        ]
    );
    assert_eq!(deploy.attendees.len(), 5);
    assert_eq!(deploy.quorum_count(), 3);
    assert_eq!(
        desired.summary().to_string(),
        "5 campaigns, 15 events, 11 edges"
    );
}

#[test]
fn every_example_applies_and_reapplies_as_a_no_op() {
    for f in examples() {
        let clock = FixedClock::new(t0());
        let mut engine = Engine::in_memory()
            .unwrap()
            .with_clock(std::sync::Arc::new(clock.clone()));
        let desired = manifest::check(&[&f], &ValidateOptions::default()).unwrap();
        let (plan, report) = engine
            .apply_manifests(&desired, &PlanOptions::default())
            .unwrap();
        assert!(!plan.is_empty());
        assert_eq!(report.campaigns.len(), 1);
        clock.advance(Duration::hours(1));
        let again = engine.plan(&desired, &PlanOptions::default()).unwrap();
        assert!(again.is_empty(), "{}:\n{}", f.display(), again.render());
        let campaign = engine.list_campaigns().unwrap().remove(0);
        assert!(campaign.managed);
        let events = engine.list_events().unwrap();
        assert_eq!(events.len(), desired.campaigns[0].events.len());
        for e in &events {
            let d = desired.campaigns[0]
                .events
                .iter()
                .find(|d| Some(&d.key) == e.name.as_ref())
                .unwrap();
            let expected = if d.needs.is_empty() {
                EventState::Pending
            } else {
                EventState::Blocked
            };
            assert_eq!(e.state, expected, "{:?}", e.name);
        }
    }
}
