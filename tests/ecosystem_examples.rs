//! Runs `examples/health_agent.rs` (docs/library.md), which `cargo test`
//! builds beside the tests. (A filtered run such as `cargo test --test
//! ecosystem_examples` does not rebuild examples: `cargo build --examples`.)

use std::path::PathBuf;
use std::process::Command;

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
