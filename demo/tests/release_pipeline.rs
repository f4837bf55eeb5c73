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
    matches_the_readme(&stdout);
}

/// The README shows this output: the same lines once times, ids and the
/// temporary directory are set aside. The agents' answers (indented) race
/// with the runner's lines, so they are compared as a set.
fn matches_the_readme(stdout: &str) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("read README.md");
    let start = readme
        .find("```text\n+ campaign release-v2")
        .expect("the README shows the demo's output in a ```text block");
    let block = &readme[start + "```text\n".len()..];
    let block = &block[..block.find("```").expect("the block ends")];
    let normalize = |text: &str| {
        let time = regex_lite::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z").unwrap();
        let id = regex_lite::Regex::new(r"\[[0-9a-f]{8}\]").unwrap();
        let dir = regex_lite::Regex::new(r"\S*t-minus-release-\d+").unwrap();
        let text = time.replace_all(text, "[TIME]");
        let text = id.replace_all(&text, "[ID]");
        let text = dir.replace_all(&text, "[DIR]");
        let (mut lines, mut answers) = (Vec::new(), Vec::new());
        for line in text.trim_end().lines() {
            if line.starts_with("                         ") {
                answers.push(line.trim().to_string());
            } else {
                lines.push(line.to_string());
            }
        }
        answers.sort();
        (lines, answers)
    };
    assert_eq!(
        normalize(stdout),
        normalize(block),
        "the demo's output differs from the README's sample:\n{stdout}"
    );
}
