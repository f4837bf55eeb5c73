//! The main job: a release campaign declared in YAML, applied into a fresh
//! SQLite store, and driven to the end by the runner while simulated agents
//! answer from their own connections to the store, as separate processes
//! would.
//!
//! `cargo run --release -p t-minus-demo`
//!
//! A crate of its own, so that command builds the library (without the
//! command line's dependencies) and this program, and nothing else.
//!
//! The campaign is `examples/demo/release.yaml`: checkpoint → review (2 of
//! 3) and docs sign-off (1 of 2) → on-time deploy (majority of 3). Bob
//! defers the review, the tech writer declines the side branch (the editor
//! signs off instead), an operator defers the deploy. On a terminal you see
//! the live countdown view; otherwise one line per transition. It ends with
//! where the store is, so you can inspect it with `status` and `log`.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use t_minus::display::{Renderer, RunView, Styles, ViewMode};
use t_minus::manifest::{self, ValidateOptions};
use t_minus::plan::PlanOptions;
use t_minus::runner::{run, RunOptions, RunPrinter, Scope};
use t_minus::{AgentId, Engine, Response};

/// (seconds after the start, agent, event, answer)
const SCRIPT: &[(f64, &str, &str, &str)] = &[
    (1.0, "ci-bot", "checkpoint", "confirm"),
    (2.0, "bob", "review", "defer 2s"),
    (2.8, "alice", "review", "confirm"),
    (3.4, "tech-writer", "docs", "decline"),
    (4.0, "editor", "docs", "confirm"),
    (4.8, "bob", "review", "confirm"),
    (5.6, "ops-1", "deploy", "confirm"),
    (6.2, "ops-2", "deploy", "defer 1s"),
    (7.0, "ops-3", "deploy", "confirm"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("t-minus-release-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("release.db");
    let manifest_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo/release.yaml");

    // validate → plan → apply, as `t-minus apply` does.
    let mut engine = Engine::new(&db)?;
    let valid = manifest::check(&[&manifest_path], &ValidateOptions::default())
        .map_err(|d| format!("{:?}", miette::Report::new(d)))?;
    let (plan, report) = engine
        .apply_manifests(&valid, &PlanOptions::default())
        .map_err(|e| format!("{:?}", miette::Report::new(e)))?;
    print!("{}", plan.render());
    println!("{}\n", report.summary_line());
    let campaign = engine.resolve_campaign("release-v2")?;

    let live = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let agents = std::thread::spawn({
        let db = db.clone();
        move || answer(&db, !live)
    });

    let mut options = RunOptions::new(Scope::Campaigns(vec![campaign]));
    options.timeout = Some(Duration::from_secs(60));
    let mode = if live {
        options.refresh = Some(Duration::from_millis(250));
        ViewMode::Live
    } else {
        ViewMode::Lines
    };
    let view = RunView::new(Renderer::new(Styles::new(live), engine.now()), mode);
    let mut printer = RunPrinter::new(view);
    let result = run(&mut engine, &options, &mut printer, &AtomicBool::new(false))?;
    printer.finish(&result);
    agents.join().map_err(|_| "the agents' thread panicked")??;

    let db = db.display();
    println!("\nThe store is {db}. Look at it with:");
    println!("  cargo run --release -- --db {db} status release-v2");
    println!("  cargo run --release -- --db {db} log release-v2/deploy");
    Ok(())
}

/// The simulated agents: each answer on its own connection, at its time.
fn answer(db: &Path, print: bool) -> Result<(), String> {
    let start = Instant::now();
    let mut engine = Engine::new(db).map_err(|e| e.to_string())?;
    for (at, agent, event, answer) in SCRIPT {
        let wait = Duration::from_secs_f64(*at).saturating_sub(start.elapsed());
        std::thread::sleep(wait);
        let id = engine
            .resolve_event(&format!("release-v2/{event}"))
            .map_err(|e| e.to_string())?;
        let response = match answer.split_once(' ') {
            Some(("defer", by)) => {
                Response::Defer(t_minus::duration::parse_duration(by).map_err(|e| e.to_string())?)
            }
            _ if *answer == "decline" => Response::Decline(Some("on leave".into())),
            _ => Response::Confirm,
        };
        let outcome = engine.respond(id, &AgentId(agent.to_string()), response);
        if print {
            match outcome {
                Ok(_) => println!("                         {agent} {answer} {event}"),
                Err(e) => {
                    println!("                         {agent} {answer} {event}: refused: {e}")
                }
            }
        }
    }
    Ok(())
}
