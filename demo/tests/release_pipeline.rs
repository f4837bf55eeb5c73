//! The main job, run as a user runs it: the demo applies its manifest and
//! drives the release campaign to the end in real time (about ten seconds).

use std::process::Command;

#[test]
fn release_pipeline_applies_the_manifest_and_runs_it_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_release-pipeline"))
        .env("TMPDIR", dir.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("run the release-pipeline demo (built by `cargo test --workspace`)");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let transitions: Vec<String> = stdout
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .map(|l| {
            // `<time> <icon> <verb> release-v2/<name> [<short>] (<reason>)`
            let words: Vec<&str> = l.split_whitespace().collect();
            format!("{} {}", words[2], words[3])
        })
        .collect();
    assert_eq!(
        transitions,
        [
            "fired release-v2/checkpoint",
            "opened release-v2/review",
            "opened release-v2/docs",
            "fired release-v2/docs",
            "fired release-v2/review",
            "opened release-v2/deploy",
            "fired release-v2/deploy",
        ],
        "{stdout}"
    );
    for expected in [
        "Plan: 5 to add, 0 to change, 0 to destroy.",
        "tech-writer decline docs",
        "bob defer 2s review",
        "Run succeeded: 4 fired, 0 missed, 0 cancelled",
        "status release-v2",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}
