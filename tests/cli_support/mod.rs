//! A tiny harness for driving the `t-minus` binary the way a user would:
//! one temporary directory per test with its own store, the clock pinned
//! with `T_MINUS_NOW`, colour off, and insta filters that mask the random
//! parts of the output (UUIDs, short ids).
//!
//! Tests listed in [`store_tests!`] run on SQLite and on PostgreSQL; [`T::new`]
//! gives a store of the test's backend (see [`stores`]).
#![allow(dead_code)] // each test binary uses a different part of it

pub use crate::common::stores;

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use serde_json::Value;

/// Runs each listed test function (plain functions, without `#[test]`) on
/// both stores, as the tests `sqlite::NAME` and `postgres::NAME`, with
/// [`T`] on that store: `cli_support::store_tests!(a, b, c);`. See
/// [`stores`].
#[allow(unused_macros)] // not every test binary runs on both stores
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        $crate::cli_support::stores::__store_tests!([$crate::cli_support::stores] $($name),*);
    };
}
#[allow(unused_imports)]
pub(crate) use store_tests;

/// The SQLite store file name used by [`T`] (relative to its directory).
pub const DB: &str = "store.db";

/// The pinned time of every run: the tests' one instant.
pub use crate::common::NOW;

/// The clock a spawned `t-minus` reads.
#[derive(Debug, Clone, Copy)]
pub enum Clock<'a> {
    /// The system clock: for runners and processes that race each other.
    Real,
    /// `T_MINUS_NOW` pinned at this RFC 3339 time.
    Pinned(&'a str),
}

/// The one builder of `t-minus` processes in the suites: the binary, without
/// colour, on `clock`, with no store or colour choice inherited from the
/// environment. Add `--db` and the arguments.
pub fn t_minus(clock: Clock) -> StdCommand {
    let mut cmd = StdCommand::new(assert_cmd::cargo::cargo_bin!("t-minus"));
    cmd.env("NO_COLOR", "1")
        .env_remove("T_MINUS_DB")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("FORCE_COLOR");
    match clock {
        Clock::Real => cmd.env_remove("T_MINUS_NOW"),
        Clock::Pinned(now) => cmd.env("T_MINUS_NOW", now),
    };
    cmd
}

/// `t-minus --db DB` (an SQLite file or a server URL) on `clock`.
pub fn command(db: &str, clock: Clock) -> StdCommand {
    let mut cmd = t_minus(clock);
    cmd.arg("--db").arg(db);
    cmd
}

/// The outcome of one run of the binary.
#[derive(Debug, Clone)]
pub struct Out {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

/// A test environment: a temporary directory (the working directory of every
/// run), a store — `store.db` in that directory on SQLite, a schema of its
/// own on PostgreSQL — and a pinned clock.
pub struct T {
    dir: tempfile::TempDir,
    now: String,
    /// The `--db` argument.
    db: Option<String>,
    /// The PostgreSQL store, dropped with `T`.
    pg: Option<stores::TempStore>,
    /// The harness's insta [`settings`], bound to the test's thread for as
    /// long as `T` lives: every snapshot of a test that has a `T` masks the
    /// random parts of the output.
    _snapshots: insta::internals::SettingsBindDropGuard,
}

impl Default for T {
    fn default() -> Self {
        Self::new()
    }
}

impl T {
    /// A fresh environment at [`NOW`], with an empty store of the test's
    /// backend.
    pub fn new() -> Self {
        let pg = match stores::current() {
            stores::Backend::Sqlite => None,
            stores::Backend::Postgres => Some(stores::TempStore::new(DB)),
        };
        T {
            dir: tempfile::tempdir().expect("temp dir"),
            now: NOW.to_string(),
            db: Some(pg.as_ref().map_or(DB, |s| s.location()).to_string()),
            pg,
            _snapshots: settings().bind_to_scope(),
        }
    }

    /// Runs without `--db`, so the store comes from `T_MINUS_DB` or the default.
    pub fn without_db_flag(mut self) -> Self {
        self.db = None;
        self
    }

    /// The temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The SQLite store's path.
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join(DB)
    }

    /// The store as other processes reach it: the SQLite file's absolute
    /// path or the PostgreSQL URL.
    pub fn db_location(&self) -> String {
        match &self.pg {
            Some(store) => store.location().to_string(),
            None => self.db_path().display().to_string(),
        }
    }

    /// Moves the pinned clock (RFC 3339).
    pub fn set_now(&mut self, now: &str) {
        self.now = now.to_string();
    }

    /// The pinned clock.
    pub fn now(&self) -> &str {
        &self.now
    }

    /// A command for the binary with this environment's settings, not yet run.
    pub fn command(&self) -> StdCommand {
        let mut cmd = t_minus(Clock::Pinned(&self.now));
        cmd.current_dir(self.dir.path());
        if let Some(db) = &self.db {
            cmd.arg("--db").arg(db);
        }
        cmd
    }

    /// Runs a command line (split like a shell: whitespace, '…' and "…").
    pub fn run(&self, line: &str) -> Out {
        self.run_args(&split(line))
    }

    /// Runs with explicit arguments.
    pub fn run_args<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Out {
        let mut cmd = self.command();
        cmd.args(args);
        output(cmd)
    }

    /// Runs a command that must succeed; returns its stdout.
    #[track_caller]
    pub fn ok(&self, line: &str) -> String {
        let out = self.run(line);
        assert_eq!(
            out.code, 0,
            "`t-minus {line}` failed\nstdout:\n{}\nstderr:\n{}",
            out.stdout, out.stderr
        );
        out.stdout
    }

    /// Runs a command that must fail with exit code 1 and print nothing on
    /// stdout; returns its stderr.
    #[track_caller]
    pub fn fail(&self, line: &str) -> String {
        let out = self.run(line);
        assert_eq!(
            out.code, 1,
            "`t-minus {line}` should exit 1\nstdout:\n{}\nstderr:\n{}",
            out.stdout, out.stderr
        );
        assert_eq!(out.stdout, "", "`t-minus {line}` printed on stdout");
        assert!(!out.stderr.is_empty(), "`t-minus {line}` printed no error");
        out.stderr
    }

    /// Runs a command that must succeed and print JSON; returns it parsed.
    #[track_caller]
    pub fn json(&self, line: &str) -> Value {
        let stdout = self.ok(line);
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("`t-minus {line}` printed invalid JSON ({e}):\n{stdout}"))
    }

    /// Schedules an event with `schedule ARGS --json`; returns its UUID.
    #[track_caller]
    pub fn schedule(&self, args: &str) -> String {
        let event = self.json(&format!("schedule {args} --json"));
        event["id"].as_str().expect("id").to_string()
    }

    /// `status --all --json`.
    #[track_caller]
    pub fn events(&self) -> Vec<Value> {
        match self.json("status --all --json") {
            Value::Array(list) => list,
            other => panic!("status --json is not a list: {other}"),
        }
    }

    /// `status ID --json`.
    #[track_caller]
    pub fn event(&self, id: &str) -> Value {
        self.json(&format!("status {id} --json"))
    }

    /// The ids of all events as `status --all --json` lists them.
    #[track_caller]
    pub fn ids(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|e| e["id"].as_str().expect("id").to_string())
            .collect()
    }
}

/// Runs a prepared command and collects its output.
pub fn output(mut cmd: StdCommand) -> Out {
    let out = cmd.output().expect("run t-minus");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

/// Splits a command line like a shell would, for the simple cases tests
/// need: whitespace separates words, '…' and "…" group (no escapes).
pub fn split(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            None => {
                word.push(c);
                in_word = true;
            }
        }
    }
    assert!(quote.is_none(), "unbalanced quote in {line:?}");
    if in_word {
        words.push(word);
    }
    words
}

/// Insta settings for CLI output: UUIDs become `[UUID]`, 8-hex short ids
/// in brackets `[SHORT]`, the short id in `t-minus log 1a2b3c4d` hints too,
/// content digests (`sha256:…`, the short form after `digest:`, JSON
/// `"digest"`) `[DIGEST]`, and the audit chain's `prev` and `hash` in JSON
/// `[HASH]`. [`T::new`] binds them; a test adds filters of its own by binding
/// `settings()` with them after making its `T`.
pub fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(
        r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
        "[UUID]",
    );
    s.add_filter(r"\[[0-9a-f]{8}\]", "[SHORT]");
    s.add_filter(r"t-minus log [0-9a-f]{8}\b", "t-minus log [SHORT]");
    s.add_filter(r"\bneed [0-9a-f]{8}\b", "need [SHORT]");
    s.add_filter(r#""digest": "[0-9a-f]+""#, r#""digest": "[DIGEST]""#);
    s.add_filter(r"sha256:[0-9a-f]{64}", "sha256:[DIGEST]");
    s.add_filter(r#""(prev|hash)": "[0-9a-f]{64}""#, r#""$1": "[HASH]""#);
    s.add_filter(r"(digest: +)[0-9a-f]{12}\b", "${1}[DIGEST]");
    s
}

/// A UUID's first 8 hex digits, as the human output shows it.
pub fn short(id: &str) -> &str {
    &id[..8]
}
