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
//! Blocks that are not `console` are illustrative and not run: commands
//! that need a PostgreSQL server, a webhook receiver, ssh-keygen, sqlite3,
//! jq or the network, and commands that wait on the real clock (`run`,
//! `wait`). What they show is tested elsewhere, not as transcripts:
//! signing with ssh-keygen and ssh-agent, `submit`, `verify` and `attest`
//! in `trust_signed` and `trust` (docs/security.md's walk-through),
//! command and webhook receivers in `notify` (docs/notifications.md),
//! the PostgreSQL store in `postgres_store` and the PostgreSQL copies of the
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

/// The files whose transcripts run.
const TRANSCRIPTS: &[Transcript] = &[
    Transcript {
        doc: "README.md",
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
        files: &[],
        fresh_before: &[],
        edits: &[],
    },
    Transcript {
        doc: "docs/concepts.md",
        files: &[],
        fresh_before: &[],
        edits: &[],
    },
];

/// Files with `console` blocks that do not run, and why.
const NOT_RUN: &[(&str, &str)] = &[(
    "docs/cli.md",
    "a reference: each block illustrates one command in a store of its own \
     (and some sign with a key or wait on the real clock); the same commands \
     run in README.md's transcript",
)];

#[test]
fn readme() {
    run_transcript(&TRANSCRIPTS[0]);
}

#[test]
fn agents() {
    run_transcript(&TRANSCRIPTS[1]);
}

#[test]
fn concepts() {
    run_transcript(&TRANSCRIPTS[2]);
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
        if !listed && !steps(&text).is_empty() {
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
}

/// The steps of every `console` block of `text`, in order.
fn steps(text: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut in_console = false;
    let mut continued = false;
    for (i, line) in text.lines().enumerate() {
        if let Some(info) = line.strip_prefix("```") {
            if in_console && info.is_empty() {
                in_console = false;
            } else if !in_console {
                in_console = info.trim() == "console";
            }
            continue;
        }
        if !in_console {
            continue;
        }
        if continued {
            let step = steps.last_mut().expect("a step to continue");
            continued = line.ends_with('\\');
            step.output_lines = i + 1..i + 1;
            step.command.push(' ');
            step.command.push_str(line.trim_end_matches('\\').trim());
        } else if let Some(command) = line.strip_prefix("$ ") {
            continued = command.ends_with('\\');
            steps.push(Step {
                line: i + 1,
                command: command.trim_end_matches('\\').trim_end().to_string(),
                output_lines: i + 1..i + 1,
                expected: String::new(),
            });
        } else if let Some(step) = steps.last_mut() {
            step.expected.push_str(line);
            step.expected.push('\n');
            if !line.trim().is_empty() {
                step.output_lines.end = i + 1;
            }
        }
    }
    for step in &mut steps {
        step.expected = trim_blank_end(&step.expected);
    }
    steps
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

/// A fresh working directory with the transcript's files.
fn workdir(transcript: &Transcript) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, source) in transcript.files {
        std::fs::copy(Path::new(ROOT).join(source), dir.path().join(name))
            .unwrap_or_else(|e| panic!("copy {source}: {e}"));
    }
    dir
}

/// Runs every step of `transcript`'s file; panics with every mismatch.
fn run_transcript(transcript: &Transcript) {
    let text = std::fs::read_to_string(Path::new(ROOT).join(transcript.doc)).expect("read");
    let steps = steps(&text);
    assert!(!steps.is_empty(), "{} has no console steps", transcript.doc);
    let mut ids = Ids::default();
    for full in uuid_re().find_iter(&text) {
        let full = full.as_str();
        ids.sample_full
            .insert(full[..8].to_string(), full.to_string());
    }
    let mut dir = workdir(transcript);
    let mut failures = Vec::new();
    let mut corrected = Vec::new();
    for step in &steps {
        if transcript.fresh_before.contains(&step.command.as_str()) {
            dir = workdir(transcript);
        }
        for (before, name, source) in transcript.edits {
            if *before == step.command {
                std::fs::copy(Path::new(ROOT).join(source), dir.path().join(name))
                    .unwrap_or_else(|e| panic!("copy {source}: {e}"));
            }
        }
        let place = format!("{}:{}: $ {}", transcript.doc, step.line, step.command);
        match run_step(step, dir.path(), &mut ids) {
            Ok(()) => {}
            Err((problem, shown)) => {
                failures.push(format!("{place}\n{problem}"));
                if let Some(shown) = shown {
                    corrected.push((step.output_lines.clone(), shown));
                }
            }
        }
    }
    if std::env::var_os("DOCS_RUN_OVERWRITE").is_some() && !corrected.is_empty() {
        overwrite(transcript.doc, &text, &corrected);
    }
    assert!(
        failures.is_empty(),
        "{} sample(s) of {} do not match the program:\n\n{}",
        failures.len(),
        transcript.doc,
        failures.join("\n\n")
    );
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

/// Runs one step in `dir`: the command's output must match the sample
/// (unless the sample shows none). On a mismatch: what differs, and the
/// program's output as the sample would show it, when that differs.
fn run_step(step: &Step, dir: &Path, ids: &mut Ids) -> Result<(), (String, Option<String>)> {
    let fail = |problem: &str| Err((problem.to_string(), None));
    let Some(words) = shlex::split(strip_comment(&step.command)) else {
        return fail("the command is not valid shell words");
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
        return fail(
            "only `t-minus` commands can run here; make the block ```sh \
             if it needs other programs",
        );
    }
    let args: Vec<String> = words.map(|w| ids.real_arg(&w)).collect();
    if args
        .iter()
        .any(|a| ["|", ">", ">>", "<", "&&", "||", ";"].contains(&a.as_str()))
    {
        return fail("pipes and redirections do not run here; make the block ```sh");
    }

    let output = tempfile::NamedTempFile::new().expect("output file");
    let out = File::create(output.path()).expect("open output");
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("t-minus"));
    cmd.args(&args)
        .current_dir(dir)
        .env("T_MINUS_NOW", NOW)
        .env("NO_COLOR", "1")
        .env_remove("T_MINUS_DB")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("FORCE_COLOR")
        .env_remove("T_MINUS_SIGNING_KEY")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("clone"))
        .stderr(out);
    for (name, value) in &env {
        cmd.env(name, value);
    }
    let mut child = cmd.spawn().expect("spawn t-minus");
    let status = match child.wait_timeout(TIMEOUT).expect("wait") {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            return fail(&format!("did not finish within {TIMEOUT:?}"));
        }
    };
    let actual = std::fs::read_to_string(output.path()).expect("read the output");
    let actual = trim_blank_end(&actual);

    ids.learn(&step.expected, &actual);
    let shown = ids.as_sample(&actual);
    let expect_failure =
        step.expected.contains('×') || step.expected.lines().any(|l| l.starts_with("error"));
    let mut problems = Vec::new();
    let mut differs = false;
    if status.success() == expect_failure {
        problems.push(format!(
            "exit status {:?}, but the sample {}",
            status.code(),
            if expect_failure {
                "shows an error"
            } else {
                "shows no error"
            }
        ));
    }
    if step.expected.is_empty() {
        // The sample shows the command only.
    } else if let Err(e) = snapbox::Assert::new().try_eq(
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
