//! Runs the example programs that `cargo test` builds beside the tests.
//! (A filtered run such as `cargo test --test integration examples::` does not rebuild
//! them: run `cargo build --examples` first.)

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

/// `examples/health_agent.rs`, the agent of docs/library.md.
#[test]
fn the_health_agent_defers_while_unhealthy_then_confirms() {
    let output = Command::new(example("health_agent"))
        .output()
        .expect("run the health_agent example (built by `cargo test`)");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<String> = stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        [
            "14:50 web confirmed",
            "14:50 db deferred",
            "14:55 db deferred",
            "15:00 db confirmed",
            "15:00 🚀 event",
            "deploy is fired",
        ],
        "{stdout}"
    );
    assert!(stdout.contains("quorum 2/2, due by 15:20"), "{stdout}");
}
