//! Runs the example programs that `cargo test` builds beside the tests.

use std::path::PathBuf;
use std::process::Command;

/// `target/<profile>/examples/<name>`, found from this test's own path
/// (`target/<profile>/deps/examples-…`).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

#[test]
fn seed_readme_example_prints_event_fired() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(example("seed_readme"))
        .current_dir(dir.path())
        .output()
        .expect("run the seed_readme example (built by `cargo test`)");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.trim();
    let id = line
        .strip_prefix("Event ")
        .and_then(|rest| rest.strip_suffix(" fired!"))
        .unwrap_or_else(|| panic!("unexpected output: {stdout}"));
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    assert!(dir.path().join("coordination.db").exists());
}

#[test]
fn release_pipeline_runs_the_campaign_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(example("release_pipeline"))
        .env("TMPDIR", dir.path())
        .output()
        .expect("run the release_pipeline example (built by `cargo test`)");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "Campaign release-v2: checkpoint → review, docs → deploy",
        "T+ 2m  🚀 fired checkpoint (quorum reached)",
        "T+ 8m  ❌ missed docs (quorum unreachable)",
        "T+20m  🚀 fired review (quorum reached)",
        "T+55m  🚀 fired deploy (quorum reached)",
        "Campaign release-v2 failed",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}
