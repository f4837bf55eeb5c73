//! The documentation's command transcripts, run: every ```` ```console ````
//! block of the files in [`TRANSCRIPTS`] is executed against the `t-minus`
//! binary, so a sample that no longer matches the program fails.
//!
//! A block holds `$ t-minus …` lines (optionally preceded by `VAR=value`,
//! ending in a `# comment`, continued with a trailing `\`), each followed by
//! the output it prints (stdout and stderr, in the order written). Each file
//! runs in a fresh temporary directory — its store is `tminus.db` there —
//! with the clock pinned at `T_MINUS_NOW=2025-06-06T14:50:00Z` unless a
//! command sets it, `NO_COLOR`, and the files its transcript reads copied
//! in. Output is compared with snapbox: `[..]` stands for the rest of a
//! line, a `...` line for any number of lines; the docs use them for nonces,
//! hashes, key fingerprints and paths. A command is expected to fail (exit
//! non-zero) exactly when its sample output shows a diagnostic (`×` or a
//! line starting with `error`). A command shown without output is run and
//! must succeed; its output is not compared.
//!
//! Event and campaign ids are random, but the docs show real ones (a reader
//! types `confirm e283 alice` after seeing `e283ae30` scheduled): the runner
//! learns which real id each id of the sample stands for from the first
//! output line that shows it, rewrites later command arguments naming a
//! sample id (or a prefix of one) to the real id, and shows real ids as the
//! sample's before comparing.
//!
//! A sample ending in a line `[exit N]` expects that exit status. Lines
//! `<!-- docs-run: … -->` between blocks (invisible once rendered) steer the
//! run: `$ COMMAND` runs a command the reader is told about in words (it
//! must succeed; its output is not shown), `fresh` starts over in a new
//! directory, `now TIME` pins the clock of the commands after it, `file
//! NAME` saves the next code block (of any language) as that file before
//! the first command, and `skip REASON` leaves the next `console` block
//! unrun (it needs a key, or the real clock).
//!
//! Walk-throughs that use other programs (`ssh-keygen`, `jq`, `sqlite3`,
//! `curl`, a webhook receiver in Python) run as one `bash` script ([`Mode::Shell`]),
//! `t-minus` on `PATH`; they are ignored unless `T_MINUS_TEST_TOOLS` is
//! set, which CI does (installing what they need). Blocks that are not
//! `console` are illustrative and not run: commands that need a PostgreSQL
//! server or the network. What they show is tested elsewhere: the
//! PostgreSQL store in `postgres_store` and the PostgreSQL copies of the
//! store suites (docs/postgres.md, whose table list
//! `postgres_store::the_docs_list_every_table` checks), and the demo's
//! output in the demo crate's own test (the README's first sample).
//! [`every_console_block_is_run`] checks that no file outside
//! [`TRANSCRIPTS`] and [`NOT_RUN`] has a `console` block, and
//! [`the_readme_command_list_matches_the_program`] the README's command
//! list against `--help`.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use regex_lite::Regex;
use wait_timeout::ChildExt;

use crate::common::NOW;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// How long one documented command may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// A documentation file whose `console` blocks run as one transcript.
struct Transcript {
    /// The file, relative to the repository root.
    doc: &'static str,
    /// How its commands run.
    mode: Mode,
    /// Files copied into the working directory before the first command:
    /// (name there, repository path).
    files: &'static [(&'static str, &'static str)],
    /// Before the command with this exact text (comment included): start
    /// over in a fresh directory (a new store, the files copied again).
    fresh_before: &'static [&'static str],
    /// Before the command with this exact text: copy a repository file to a
    /// name in the working directory (an edit the text describes).
    edits: &'static [(&'static str, &'static str, &'static str)],
}

/// How the commands of a transcript run.
enum Mode {
    /// Each `$ t-minus …` line runs the binary itself, with sample ids in
    /// its arguments rewritten to the real ones.
    TMinus,
    /// The transcript runs as one `bash` script, a line a command, with
    /// `t-minus` on `PATH` and these variables set: for walk-throughs that
    /// use other programs (`ssh-keygen`, `jq`, `sqlite3`, `python3`), whose
    /// commands name events by name rather than by id. Variables, the
    /// working directory and background jobs carry over from line to line;
    /// background jobs are stopped at the end.
    Shell {
        env: &'static [(&'static str, &'static str)],
    },
}

/// The files whose transcripts run.
const TRANSCRIPTS: &[Transcript] = &[
    Transcript {
        doc: "README.md",
        mode: Mode::TMinus,
        files: &[
            ("release.yaml", "examples/release.yaml"),
            ("broken.yaml", "tests/fixtures/docs/broken.yaml"),
        ],
        // The manifest section starts a store of its own: the CLI section's
        // ad-hoc release-v2 would clash with the manifest's.
        fresh_before: &["t-minus validate release.yaml"],
        edits: &[(
            "t-minus plan release.yaml        # after raising review's quorum and adding dave",
            "release.yaml",
            "tests/fixtures/docs/release-dave.yaml",
        )],
    },
    Transcript {
        doc: "docs/agents.md",
        mode: Mode::TMinus,
        files: &[],
        fresh_before: &[],
        edits: &[],
    },
    Transcript {
        doc: "docs/concepts.md",
        mode: Mode::TMinus,
        files: &[],
        fresh_before: &[],
        edits: &[],
    },
    Transcript {
        doc: "docs/cli.md",
        mode: Mode::TMinus,
        files: &[
            ("examples/release.yaml", "examples/release.yaml"),
            (
                "examples/rolling-deploy.yaml",
                "examples/rolling-deploy.yaml",
            ),
            ("examples/standup.yaml", "examples/standup.yaml"),
            ("broken.yaml", "tests/fixtures/docs/broken.yaml"),
            ("page.sh", "tests/fixtures/docs/page.sh"),
        ],
        fresh_before: &[],
        edits: &[],
    },
    Transcript {
        doc: "docs/security.md",
        mode: Mode::Shell {
            env: &[
                ("T_MINUS_NOW", "2026-11-28T10:00:00Z"),
                ("T_MINUS_DB", "release.db"),
            ],
        },
        files: &[("release.yaml", "tests/fixtures/docs/signed-release.yaml")],
        fresh_before: &[],
        edits: &[],
    },
    Transcript {
        doc: "docs/notifications.md",
        mode: Mode::Shell { env: &[] },
        files: &[
            ("notify-demo.yaml", "examples/notify-demo/notify-demo.yaml"),
            ("append.sh", "examples/notify-demo/append.sh"),
        ],
        fresh_before: &[],
        edits: &[],
    },
    Transcript {
        doc: "docs/semantics.md",
        mode: Mode::TMinus,
        files: &[("guarded-release.yaml", "examples/guarded-release.yaml")],
        fresh_before: &[],
        edits: &[],
    },
    Transcript {
        doc: "docs/server.md",
        mode: Mode::Shell { env: &[] },
        files: &[],
        fresh_before: &[],
        edits: &[],
    },
    Transcript {
        doc: "docs/slack.md",
        mode: Mode::TMinus,
        files: &[],
        fresh_before: &[],
        edits: &[],
    },
    Transcript {
        doc: "docs/github.md",
        mode: Mode::TMinus,
        files: &[],
        fresh_before: &[],
        edits: &[],
    },
];

/// Files with `console` blocks that do not run, and why.
const NOT_RUN: &[(&str, &str)] = &[];

#[test]
fn readme() {
    run_transcript(&TRANSCRIPTS[0]);
}

/// docs/github.md: a template validated.
#[test]
fn github() {
    run_transcript(&TRANSCRIPTS[9]);
}

#[test]
fn agents() {
    run_transcript(&TRANSCRIPTS[1]);
}

#[test]
fn concepts() {
    run_transcript(&TRANSCRIPTS[2]);
}

#[test]
fn cli() {
    run_transcript(&TRANSCRIPTS[3]);
}

/// docs/security.md's walk-through: keys from `ssh-keygen`, a signed
/// release, `jq` over the log and the attestation, and an entry edited with
/// `sqlite3` that `verify` catches.
#[test]
#[cfg_attr(
    not(t_minus_test_tools),
    ignore = "needs ssh-keygen, jq, sqlite3, python3 and curl: set T_MINUS_TEST_TOOLS=1"
)]
fn security_walk_through() {
    run_transcript(&TRANSCRIPTS[4]);
}

/// docs/notifications.md's "Try it": the example's exec hook and the
/// documented Python webhook receiver, delivered by a `run` in the
/// background.
#[test]
#[cfg_attr(
    not(t_minus_test_tools),
    ignore = "needs ssh-keygen, jq, sqlite3, python3 and curl: set T_MINUS_TEST_TOOLS=1"
)]
fn notifications_try_it() {
    run_transcript(&TRANSCRIPTS[5]);
}

/// docs/slack.md's `people link`, `links` and `unlink`, then `verify`.
#[test]
fn slack_people() {
    run_transcript(&TRANSCRIPTS[8]);
}

/// docs/server.md's session: `serve` on a free port, tokens, answers and
/// refusals with `curl` and `jq`, a clean stop.
#[test]
#[cfg_attr(
    not(t_minus_test_tools),
    ignore = "needs ssh-keygen, jq, sqlite3, python3 and curl: set T_MINUS_TEST_TOOLS=1"
)]
fn server_session() {
    run_transcript(&TRANSCRIPTS[7]);
}

/// docs/semantics.md's "Gates together": examples/guarded-release.yaml on
/// a pinned clock, each gate in turn (lazy consensus, four eyes,
/// delegation, escalation, a time window, break-glass), then `verify`.
#[test]
fn semantics_gates_together() {
    run_transcript(&TRANSCRIPTS[6]);
}

/// Every `console` block of the README and `docs/` is in a file listed in
/// [`TRANSCRIPTS`] (or in [`NOT_RUN`], with its reason), so a new sample is
/// run as soon as it is written.
#[test]
fn every_console_block_is_run() {
    let mut docs = vec![PathBuf::from("README.md")];
    for entry in std::fs::read_dir(Path::new(ROOT).join("docs")).expect("docs/") {
        let path = entry.expect("a docs entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            docs.push(
                path.strip_prefix(ROOT)
                    .expect("under the root")
                    .to_path_buf(),
            );
        }
    }
    let mut unrun = Vec::new();
    for doc in docs {
        let name = doc.to_string_lossy().replace('\\', "/");
        let text = std::fs::read_to_string(Path::new(ROOT).join(&doc)).expect("read the doc");
        let listed =
            TRANSCRIPTS.iter().any(|t| t.doc == name) || NOT_RUN.iter().any(|(d, _)| *d == name);
        let parsed = parse(&name, &text);
        if !listed && parsed.items.iter().any(|i| matches!(i, Item::Step(_))) {
            unrun.push(name);
        }
    }
    assert!(
        unrun.is_empty(),
        "these files have ```console blocks that no test runs: {unrun:?}; \
         list them in TRANSCRIPTS (tests/docs_run.rs), or make illustrative \
         blocks ```sh"
    );
}

/// One command of a transcript and the output its sample shows.
#[derive(Debug)]
struct Step {
    /// The line of the `$` in the file (1-based).
    line: usize,
    /// The command as written after `$ `, continuation lines joined.
    command: String,
    /// The lines of the sample output (0-based, end exclusive).
    output_lines: std::ops::Range<usize>,
    expected: String,
    /// The exit status a final `[exit N]` line of the sample shows.
    exit: Option<i32>,
}

/// What a transcript does, in order.
#[derive(Debug)]
enum Item {
    /// A command shown with its output.
    Step(Step),
    /// `<!-- docs-run: $ COMMAND -->`: a command the reader does not see
    /// (setting up what the text describes in words); it must succeed.
    Hidden { line: usize, command: String },
    /// `<!-- docs-run: fresh -->`: start over in a fresh directory.
    Fresh { line: usize },
    /// `<!-- docs-run: now TIME -->`: the clock of the commands after it.
    Now { line: usize, time: String },
}

/// A documentation file's transcript: its items, and the files its
/// `<!-- docs-run: file NAME -->` directives take from the code block after
/// them (written to the working directory before the first command).
#[derive(Debug, Default)]
struct Parsed {
    items: Vec<Item>,
    files: Vec<(String, String)>,
}

/// The transcript of `text` (the file `doc`): the `console` blocks'
/// commands and the directives between them, in order. A directive is a
/// line `<!-- docs-run: … -->` outside code blocks: `$ COMMAND`, `fresh`,
/// `now TIME`, `file NAME` (the next code block is that file) or
/// `skip REASON` (the next `console` block does not run).
fn parse(doc: &str, text: &str) -> Parsed {
    let mut parsed = Parsed::default();
    // Inside a code block: is it a run `console` block, and the file it is.
    let mut block: Option<(bool, Option<String>)> = None;
    let mut file_text = String::new();
    let (mut skip_next, mut file_next) = (false, None::<String>);
    let mut continued = false;
    for (i, line) in text.lines().enumerate() {
        if let Some(info) = line.trim_start().strip_prefix("```") {
            match block.take() {
                Some((_, file)) if info.is_empty() => {
                    if let Some(name) = file {
                        parsed.files.push((name, std::mem::take(&mut file_text)));
                    }
                }
                Some(open) => block = Some(open),
                None => {
                    let console = info.trim() == "console" && !std::mem::take(&mut skip_next);
                    block = Some((console, file_next.take()));
                }
            }
            continue;
        }
        let Some((console, file)) = &block else {
            if let Some(directive) = line
                .trim()
                .strip_prefix("<!-- docs-run:")
                .and_then(|d| d.strip_suffix("-->"))
            {
                let directive = directive.trim();
                let (word, rest) = directive.split_once(' ').unwrap_or((directive, ""));
                match word {
                    "$" => parsed.items.push(Item::Hidden {
                        line: i + 1,
                        command: rest.trim().to_string(),
                    }),
                    "fresh" => parsed.items.push(Item::Fresh { line: i + 1 }),
                    "now" => parsed.items.push(Item::Now {
                        line: i + 1,
                        time: rest.trim().to_string(),
                    }),
                    "file" => file_next = Some(rest.trim().to_string()),
                    "skip" => skip_next = true,
                    _ => panic!("{doc}:{}: unknown docs-run directive `{word}`", i + 1),
                }
            }
            continue;
        };
        if file.is_some() {
            file_text.push_str(line);
            file_text.push('\n');
        }
        if !console {
            continue;
        }
        let last = parsed.items.last_mut();
        if continued {
            let Some(Item::Step(step)) = last else {
                unreachable!("a continued line follows a step")
            };
            continued = line.ends_with('\\');
            step.output_lines = i + 1..i + 1;
            step.command.push(' ');
            step.command.push_str(line.trim_end_matches('\\').trim());
        } else if let Some(command) = line.strip_prefix("$ ") {
            continued = command.ends_with('\\');
            parsed.items.push(Item::Step(Step {
                line: i + 1,
                command: command.trim_end_matches('\\').trim_end().to_string(),
                output_lines: i + 1..i + 1,
                expected: String::new(),
                exit: None,
            }));
        } else if let Some(Item::Step(step)) = last {
            step.expected.push_str(line);
            step.expected.push('\n');
            if !line.trim().is_empty() {
                step.output_lines.end = i + 1;
            }
        }
    }
    let exit_re = Regex::new(r"\n\[exit (\d+)\]\n*$").unwrap();
    for item in &mut parsed.items {
        if let Item::Step(step) = item {
            step.expected = trim_blank_end(&step.expected);
            let with_newline = format!("\n{}", step.expected);
            if let Some(c) = exit_re.captures(&with_newline) {
                step.exit = c[1].parse().ok();
                let at = c.get(0).expect("the match").start();
                step.expected = trim_blank_end(with_newline.get(1..at).unwrap_or_default());
            }
        }
    }
    parsed
}

/// `text` without trailing blank lines, ending in one newline (or empty).
fn trim_blank_end(text: &str) -> String {
    let trimmed = text.trim_end();
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}\n")
    }
}

/// `command` without its `# comment` (a `#` after whitespace, outside quotes).
fn strip_comment(command: &str) -> &str {
    let (mut single, mut double, mut prev_space) = (false, false, true);
    for (i, c) in command.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if prev_space && !single && !double => return command[..i].trim_end(),
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    command
}
/// The sample's ids and the real ones they stand for.
#[derive(Default)]
struct Ids {
    /// Sample id (first 8 hex digits) → real one.
    to_real: HashMap<String, String>,
    /// Real id (first 8 hex digits) → sample one.
    to_sample: HashMap<String, String>,
    /// Full UUIDs by their first 8 hex digits: the sample's, the real ones.
    sample_full: HashMap<String, String>,
    real_full: HashMap<String, String>,
}

fn uuid_re() -> Regex {
    Regex::new(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b").unwrap()
}

fn id8_re() -> Regex {
    Regex::new(r"\b[0-9a-f]{8}\b").unwrap()
}

impl Ids {
    /// Learns, from each expected line showing ids, the real ids at the same
    /// places of the first actual line (after the previous one) it matches.
    fn learn(&mut self, expected: &str, actual: &str) {
        let (uuid, id8) = (uuid_re(), id8_re());
        let id = Regex::new(&format!(r"{}|{}", uuid.as_str(), id8.as_str())).unwrap();
        for full in uuid.find_iter(actual) {
            let full = full.as_str();
            self.real_full
                .insert(full[..8].to_string(), full.to_string());
        }
        let actual: Vec<&str> = actual.lines().collect();
        let mut from = 0;
        for line in expected.lines() {
            if !id8.is_match(line) || line == "..." {
                continue;
            }
            // The line as a pattern: ids captured, `[..]` any text.
            let mut pattern = String::from("^");
            let mut sample_ids = Vec::new();
            let mut rest = line;
            while let Some(m) = id.find(rest) {
                pattern.push_str(&wildcards(&rest[..m.start()]));
                pattern.push_str("([0-9a-f]{8})");
                if m.len() > 8 {
                    pattern.push_str("-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
                }
                sample_ids.push(m.as_str()[..8].to_string());
                rest = &rest[m.end()..];
            }
            pattern.push_str(&wildcards(rest));
            pattern.push('$');
            let Ok(re) = Regex::new(&pattern) else {
                continue;
            };
            let found = actual[from..]
                .iter()
                .enumerate()
                .find_map(|(i, a)| re.captures(a).map(|c| (i, c)));
            if let Some((i, captures)) = found {
                from += i + 1;
                for (k, sample) in sample_ids.iter().enumerate() {
                    let real = captures[k + 1].to_string();
                    if !self.to_real.contains_key(sample) && !self.to_sample.contains_key(&real) {
                        self.to_real.insert(sample.clone(), real.clone());
                        self.to_sample.insert(real, sample.clone());
                    }
                }
            }
        }
    }

    /// `arg` with a sample id (a prefix of 4+ hex digits, or a full UUID)
    /// replaced by the real id it stands for.
    fn real_arg(&self, arg: &str) -> String {
        let hex = arg.len() >= 4 && arg.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        if !hex {
            return arg.to_string();
        }
        if arg.len() <= 8 {
            if let Some((_, real)) = self.to_real.iter().find(|(s, _)| s.starts_with(arg)) {
                return real.clone();
            }
        } else if let Some(real) = self
            .to_real
            .get(&arg[..8])
            .and_then(|real| self.real_full.get(real))
        {
            return real.clone();
        }
        arg.to_string()
    }

    /// `actual` with every real id shown as the sample's.
    fn as_sample(&self, actual: &str) -> String {
        let text = uuid_re().replace_all(actual, |c: &regex_lite::Captures<'_>| {
            let real = &c[0];
            match self
                .to_sample
                .get(&real[..8])
                .and_then(|s| self.sample_full.get(s))
            {
                Some(sample) => sample.clone(),
                None => real.to_string(),
            }
        });
        id8_re()
            .replace_all(&text, |c: &regex_lite::Captures<'_>| {
                self.to_sample
                    .get(&c[0])
                    .cloned()
                    .unwrap_or_else(|| c[0].to_string())
            })
            .into_owned()
    }
}

/// `text` as a regex, with snapbox's `[..]` as any text.
fn wildcards(text: &str) -> String {
    text.split("[..]")
        .map(regex_lite::escape)
        .collect::<Vec<_>>()
        .join(".*")
}

/// A fresh working directory with the transcript's files and those its
/// directives take from the doc.
fn workdir(transcript: &Transcript, parsed: &Parsed) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, source) in transcript.files {
        let to = dir.path().join(name);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).expect("create the file's directory");
        }
        std::fs::copy(Path::new(ROOT).join(source), &to)
            .unwrap_or_else(|e| panic!("copy {source}: {e}"));
    }
    for (name, text) in &parsed.files {
        std::fs::write(dir.path().join(name), text).unwrap_or_else(|e| panic!("write {name}: {e}"));
    }
    dir
}

/// What one command did: its exit status and what it printed (stdout and
/// stderr together), or why it did not run to the end.
type Outcome = Result<(Option<i32>, String), String>;

/// Runs every item of `transcript`'s file; panics with every mismatch.
fn run_transcript(transcript: &Transcript) {
    let text = std::fs::read_to_string(Path::new(ROOT).join(transcript.doc)).expect("read");
    let parsed = parse(transcript.doc, &text);
    assert!(
        parsed.items.iter().any(|i| matches!(i, Item::Step(_))),
        "{} has no console steps",
        transcript.doc
    );
    let mut ids = Ids::default();
    for full in uuid_re().find_iter(&text) {
        let full = full.as_str();
        ids.sample_full
            .insert(full[..8].to_string(), full.to_string());
    }
    let mut report = Report::default();
    match transcript.mode {
        Mode::TMinus => {
            let mut dir = workdir(transcript, &parsed);
            let mut now = NOW.to_string();
            for item in &parsed.items {
                match item {
                    Item::Fresh { .. } => dir = workdir(transcript, &parsed),
                    Item::Now { time, .. } => now = time.clone(),
                    Item::Hidden { line, command } => {
                        let outcome = run_t_minus(command, dir.path(), &now, &ids);
                        if let Some(problem) = hidden_failed(outcome) {
                            report.failures.push(format!(
                                "{}:{line}: the hidden command `{command}` {problem}",
                                transcript.doc
                            ));
                        }
                    }
                    Item::Step(step) => {
                        if transcript.fresh_before.contains(&step.command.as_str()) {
                            dir = workdir(transcript, &parsed);
                        }
                        for (before, name, source) in transcript.edits {
                            if *before == step.command {
                                std::fs::copy(Path::new(ROOT).join(source), dir.path().join(name))
                                    .unwrap_or_else(|e| panic!("copy {source}: {e}"));
                            }
                        }
                        let outcome = run_t_minus(&step.command, dir.path(), &now, &ids);
                        report.check(transcript.doc, step, outcome, &mut ids);
                    }
                }
            }
        }
        Mode::Shell { env } => {
            let dir = workdir(transcript, &parsed);
            let outcomes = run_shell(transcript.doc, &parsed.items, dir.path(), env);
            for (item, outcome) in parsed.items.iter().zip(outcomes) {
                match item {
                    Item::Step(step) => report.check(transcript.doc, step, outcome, &mut ids),
                    Item::Hidden { line, command } => {
                        if let Some(problem) = hidden_failed(outcome) {
                            report.failures.push(format!(
                                "{}:{line}: the hidden command `{command}` {problem}",
                                transcript.doc
                            ));
                        }
                    }
                    Item::Fresh { line } | Item::Now { line, .. } => report.failures.push(format!(
                        "{}:{line}: `fresh` and `now` are for t-minus transcripts; \
                         a shell transcript sets variables with a hidden command",
                        transcript.doc
                    )),
                }
            }
        }
    }
    if std::env::var_os("DOCS_RUN_OVERWRITE").is_some() && !report.corrected.is_empty() {
        overwrite(transcript.doc, &text, &report.corrected);
    }
    assert!(
        report.failures.is_empty(),
        "{} sample(s) of {} do not match the program:\n\n{}",
        report.failures.len(),
        transcript.doc,
        report.failures.join("\n\n")
    );
}

/// What a transcript's run found wrong.
#[derive(Default)]
struct Report {
    /// Every mismatch, with its place.
    failures: Vec<String>,
    /// The program's output for the samples that differ: (lines, output).
    corrected: Vec<(std::ops::Range<usize>, String)>,
}

impl Report {
    /// Compares `step`'s outcome with its sample (see [`compare`]).
    fn check(&mut self, doc: &str, step: &Step, outcome: Outcome, ids: &mut Ids) {
        let place = format!("{doc}:{}: $ {}", step.line, step.command);
        if let Err((problem, shown)) = compare(step, outcome, ids) {
            self.failures.push(format!("{place}\n{problem}"));
            if let Some(shown) = shown {
                let shown = match step.exit {
                    Some(code) => format!("{shown}\n[exit {code}]\n"),
                    None => shown,
                };
                self.corrected.push((step.output_lines.clone(), shown));
            }
        }
    }
}

/// Why a hidden command's outcome is a failure, if it is one.
fn hidden_failed(outcome: Outcome) -> Option<String> {
    match outcome {
        Ok((Some(0), _)) => None,
        Ok((code, output)) => Some(format!("exited with {code:?}:\n{output}")),
        Err(problem) => Some(problem),
    }
}

/// Writes the program's output over the samples that differ, for a person
/// to review (`DOCS_RUN_OVERWRITE=1 cargo test --test integration
/// docs_run::`, then `git diff`): the wildcards of a rewritten sample are
/// lost.
fn overwrite(doc: &str, text: &str, corrected: &[(std::ops::Range<usize>, String)]) {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for (range, shown) in corrected.iter().rev() {
        let new: Vec<String> = shown.lines().map(str::to_string).collect();
        lines.splice(range.clone(), new);
    }
    let mut out = lines.join("\n");
    out.push('\n');
    std::fs::write(Path::new(ROOT).join(doc), out).expect("overwrite the doc");
}

/// Runs the `t-minus` command line `command` (its sample ids rewritten to
/// the real ones) in `dir` with the clock at `now`.
fn run_t_minus(command: &str, dir: &Path, now: &str, ids: &Ids) -> Outcome {
    let Some(words) = shlex::split(strip_comment(command)) else {
        return Err("the command is not valid shell words".into());
    };
    let mut words = words.into_iter().peekable();
    let mut env = Vec::new();
    while let Some((name, value)) = words.peek().and_then(|w| w.split_once('=')) {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            break;
        }
        env.push((name.to_string(), value.to_string()));
        words.next();
    }
    if words.next().as_deref() != Some("t-minus") {
        return Err(
            "only `t-minus` commands can run here; make the block ```sh \
                    if it needs other programs"
                .into(),
        );
    }
    let args: Vec<String> = words.map(|w| ids.real_arg(&w)).collect();
    if args
        .iter()
        .any(|a| ["|", ">", ">>", "<", "&&", "||", ";", "&"].contains(&a.as_str()))
    {
        return Err("pipes and redirections do not run here; make the block ```sh".into());
    }

    let output = tempfile::NamedTempFile::new().expect("output file");
    let out = File::create(output.path()).expect("open output");
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("t-minus"));
    cmd.args(&args)
        .current_dir(dir)
        .env("T_MINUS_NOW", now)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("clone"))
        .stderr(out);
    clean_env(&mut cmd);
    for (name, value) in &env {
        cmd.env(name, value);
    }
    let mut child = cmd.spawn().expect("spawn t-minus");
    let status = match child.wait_timeout(TIMEOUT).expect("wait") {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("did not finish within {TIMEOUT:?}"));
        }
    };
    let actual = std::fs::read_to_string(output.path()).expect("read the output");
    Ok((status.code(), trim_blank_end(&actual)))
}

/// The environment every documented command starts from: no colour, no
/// store or key of the person running the tests.
fn clean_env(cmd: &mut Command) {
    cmd.env("NO_COLOR", "1")
        .env_remove("T_MINUS_DB")
        .env_remove("T_MINUS_TOKEN")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("FORCE_COLOR")
        .env_remove("T_MINUS_SIGNING_KEY")
        .env_remove("SSH_AUTH_SOCK");
}

/// The marker the shell prints after each command: its index and status.
const MARKER: &str = "@@docs-run-exit";

/// Runs `items` as one bash script in `dir`, `t-minus` on `PATH`, the clock
/// at [`NOW`] unless `env` sets it; returns each item's outcome.
fn run_shell(doc: &str, items: &[Item], dir: &Path, env: &[(&str, &str)]) -> Vec<Outcome> {
    let mut script = String::from(
        "exec 2>&1\n\
         trap 'kill $(jobs -p) 2>/dev/null' EXIT\n",
    );
    for (i, item) in items.iter().enumerate() {
        let body = match item {
            Item::Step(step) => step.command.clone(),
            Item::Hidden { command, .. } => format!("{{ {command}\n}} >/dev/null"),
            Item::Fresh { .. } | Item::Now { .. } => "false".to_string(),
        };
        script.push_str(&format!(
            "{{ {body}\n}}\nprintf '\\n{MARKER} {i} %d@@\\n' $?\n"
        ));
    }
    let binary = PathBuf::from(assert_cmd::cargo::cargo_bin!("t-minus"));
    let bin_dir = binary.parent().expect("the binary's directory");
    let path = std::env::join_paths(std::iter::once(bin_dir.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("PATH");
    let output = tempfile::NamedTempFile::new().expect("output file");
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(&script)
        .current_dir(dir)
        .env("PATH", path)
        .env("T_MINUS_NOW", NOW)
        .stdin(Stdio::null())
        .stdout(File::create(output.path()).expect("open output"));
    clean_env(&mut cmd);
    for (name, value) in env {
        cmd.env(name, value);
    }
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{doc}: run bash: {e}"));
    let limit = TIMEOUT * 3;
    let finished = child.wait_timeout(limit).expect("wait");
    if finished.is_none() {
        #[cfg(unix)]
        // SAFETY: signals the process group the script leads, which this
        // test made.
        unsafe {
            libc::kill(-(child.id() as i32), libc::SIGKILL);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    let printed = std::fs::read_to_string(output.path()).expect("read the output");
    let marker = Regex::new(&format!(r"^{MARKER} (\d+) (\d+)@@$")).unwrap();
    let mut outcomes: Vec<Outcome> = items
        .iter()
        .map(|_| {
            Err(format!(
                "did not run: the transcript stopped (it may take at most {limit:?})"
            ))
        })
        .collect();
    let mut current = String::new();
    for line in printed.lines() {
        if let Some(c) = marker.captures(line) {
            let i: usize = c[1].parse().expect("an index");
            let code: i32 = c[2].parse().expect("a status");
            outcomes[i] = Ok((Some(code), trim_blank_end(&current)));
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    outcomes
}

/// Compares what a step's command did with its sample: the exit status
/// (the sample's `[exit N]`, else failure exactly when it shows a
/// diagnostic) and the output (unless the sample shows none). On a
/// mismatch: what differs, and the program's output as the sample would
/// show it, when that differs.
fn compare(step: &Step, outcome: Outcome, ids: &mut Ids) -> Result<(), (String, Option<String>)> {
    let (code, actual) = outcome.map_err(|problem| (problem, None))?;
    ids.learn(&step.expected, &actual);
    let shown = ids.as_sample(&actual);
    let mut problems = Vec::new();
    let mut differs = false;
    match step.exit {
        Some(expected) if code != Some(expected) => problems.push(format!(
            "exit status {code:?}, but the sample shows [exit {expected}]"
        )),
        Some(_) => {}
        None => {
            let expect_failure = step.expected.contains('×')
                || step.expected.lines().any(|l| l.starts_with("error"));
            if (code == Some(0)) == expect_failure {
                problems.push(format!(
                    "exit status {code:?}, but the sample {}",
                    if expect_failure {
                        "shows an error"
                    } else {
                        "shows no error"
                    }
                ));
            }
        }
    }
    if step.expected.is_empty() {
        // The sample shows the command only.
    } else if let Err(e) = snapbox::Assert::new().normalize_paths(false).try_eq(
        Some(&"the program"),
        snapbox::Data::text(shown.clone()),
        snapbox::Data::text(step.expected.clone()),
    ) {
        problems.push(format!("{e}\n--- the program printed:\n{shown}"));
        differs = true;
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err((problems.join("\n"), differs.then_some(shown)))
    }
}

/// The README's command list names every command of `t-minus --help`, and
/// each command and option it names exists.
#[test]
fn the_readme_command_list_matches_the_program() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).expect("README");
    let start = readme
        .find("### Commands\n\n```\n")
        .expect("the README's command list");
    let block = &readme[start + "### Commands\n\n```\n".len()..];
    let block = &block[..block.find("```").expect("the list ends")];
    // One entry per command, its continuation lines (indented) joined.
    let mut entries: Vec<String> = Vec::new();
    for line in block.lines() {
        match entries.last_mut() {
            Some(entry) if line.starts_with(' ') => entry.push_str(line),
            _ => entries.push(line.to_string()),
        }
    }
    let help = |path: &[&str]| {
        let out = Command::new(assert_cmd::cargo::cargo_bin!("t-minus"))
            .args(path)
            .arg("--help")
            .output()
            .expect("run t-minus --help");
        assert!(out.status.success(), "t-minus {path:?} --help: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let flag = Regex::new(r"--[a-z][a-z-]*").unwrap();
    let mut listed = Vec::new();
    for entry in &entries {
        let words: Vec<&str> = entry.split_whitespace().collect();
        assert_eq!(words.first(), Some(&"t-minus"), "{entry}");
        let path: Vec<&str> = match words[1] {
            "campaign" | "notify" => words[1..3].to_vec(),
            _ => words[1..2].to_vec(),
        };
        listed.push(path[0].to_string());
        let text = help(&path);
        for f in flag.find_iter(entry) {
            let f = f.as_str();
            assert!(
                Regex::new(&format!(r"{}\b", regex_lite::escape(f)))
                    .unwrap()
                    .is_match(&text),
                "the README lists `{f}` for `t-minus {}`, which has no such option",
                path.join(" ")
            );
        }
    }
    let top = help(&[]);
    let commands = top
        .split("Commands:\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .expect("the commands of t-minus --help");
    for line in commands.lines() {
        // `  name   description`; description continuation lines are
        // indented further.
        let Some(name) = line.strip_prefix("  ").filter(|l| !l.starts_with(' ')) else {
            continue;
        };
        let name = name.split_whitespace().next().unwrap_or_default();
        if name != "help" {
            assert!(
                listed.iter().any(|l| l == name),
                "`t-minus {name}` is missing from the README's command list"
            );
        }
    }
}
