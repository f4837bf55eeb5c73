//! Every error a user can cause carries a stable diagnostic code
//! (`t_minus::…`) and a help line that says how to fix it.
//!
//! Three checks: every variant of [`TMinusError`] and [`ManifestError`]
//! (the list below must grow with the enums: a count of the `code(…)`
//! attributes in the sources catches a forgotten one); a table of command
//! lines that provoke the errors through the binary, whose stderr must show
//! the code and a `help:` line; and every invalid manifest fixture, whose
//! `validate --json` problems must all have a code and a help line.

use crate::cli_support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use chrono::{DateTime, Duration};
use cli_support::T;
use miette::Diagnostic;
use t_minus::error::LinkRefusal;
use t_minus::input::InputError;
use t_minus::plan::ManifestError;
use t_minus::store::{Location, StoreError};
use t_minus::{AgentId, EventState, TMinusError};
use uuid::Uuid;

fn s(text: &str) -> String {
    text.to_string()
}

/// One value of every variant of the library's error types.
fn every_error() -> Vec<Box<dyn Diagnostic>> {
    let path = || PathBuf::from("store.db");
    let file = || Location::File(path());
    let store = |e: StoreError| -> Box<dyn Diagnostic> { Box::new(TMinusError::Store(e)) };
    let t0 = || DateTime::from_timestamp(1_749_222_000, 0).unwrap();
    vec![
        Box::new(TMinusError::InvalidAgentId {
            value: s("a b"),
            reason: s("whitespace"),
        }),
        Box::new(TMinusError::DuplicateAttendee { agent: s("alice") }),
        Box::new(TMinusError::InvalidDuration {
            value: s("5x"),
            reason: s("unknown unit"),
        }),
        Box::new(TMinusError::InvalidTime {
            value: s("tomorrow"),
            reason: s("no"),
        }),
        Box::new(TMinusError::InvalidQuorum { value: s("most") }),
        Box::new(TMinusError::DuplicateStandaloneName {
            name: s("deploy"),
            event: Uuid::nil(),
        }),
        Box::new(TMinusError::TextTooLong {
            field: "decline reason",
            len: 5_000_000,
            max: 4096,
        }),
        Box::new(TMinusError::QuorumTooLarge {
            quorum: 4,
            attendees: 3,
        }),
        Box::new(TMinusError::InvalidGroup {
            group: s("ops"),
            reason: s("the group has no members"),
        }),
        Box::new(TMinusError::InvalidAnswer {
            reason: s("unknown answer `maybe`: use confirm, defer DURATION or decline"),
        }),
        Box::new(TMinusError::WriteFile {
            path: path(),
            reason: s("Permission denied (os error 13)"),
        }),
        Box::new(TMinusError::InvalidArguments {
            tool: s("defer"),
            reason: s("missing field `duration`"),
        }),
        Box::new(TMinusError::InvalidFirePolicy { value: s("late") }),
        Box::new(TMinusError::InvalidPayload { reason: s("EOF") }),
        Box::new(TMinusError::InvalidNotify {
            reason: s("unknown trigger `exploded`"),
            help: s("use one of: opened, fired"),
        }),
        Box::new(TMinusError::InvalidName {
            value: s("1x"),
            reason: s("digit"),
        }),
        Box::new(TMinusError::InvalidReference {
            value: s("zz"),
            what: "event",
            reason: s("hex"),
        }),
        Box::new(TMinusError::AmbiguousReference {
            value: s("ab"),
            candidates: vec![s("ab12"), s("ab34")],
        }),
        Box::new(TMinusError::EventNotFound {
            reference: s("abcd"),
        }),
        Box::new(TMinusError::CampaignNotFound {
            reference: s("rel"),
        }),
        Box::new(TMinusError::NotAnAttendee {
            agent: AgentId(s("eve")),
            event: s("review"),
            attendees: vec![AgentId(s("alice"))],
        }),
        Box::new(TMinusError::DeadlinePassed {
            event: s("review"),
            deadline: t0(),
            ago: Duration::minutes(1),
        }),
        Box::new(TMinusError::EventFinal {
            event: s("review"),
            id: Uuid::nil(),
            state: EventState::Fired,
            at: Some(t0()),
        }),
        Box::new(TMinusError::FireTimePassed {
            fire_time: t0(),
            ago: Duration::minutes(1),
        }),
        Box::new(TMinusError::TargetNotFound { reference: s("x") }),
        Box::new(TMinusError::NonPositiveDeferral {
            value: t_minus::error::DeferralValue::Written(s("0s")),
        }),
        Box::new(TMinusError::InvalidWindow {
            value: s("Mon 9-5"),
            reason: s("hours"),
        }),
        Box::new(TMinusError::FourEyes {
            agent: t_minus::AgentId(s("alice")),
            event: s("deploy"),
        }),
        Box::new(TMinusError::FourEyesQuorum {
            requester: t_minus::AgentId(s("alice")),
            group: None,
            needed: 2,
            others: 1,
        }),
        Box::new(TMinusError::OutsideWindows {
            fire_time: t0(),
            windows: s("Mon 09:00-17:00 UTC"),
        }),
        Box::new(TMinusError::BreakGlassRefused {
            agent: t_minus::AgentId(s("bob")),
            event: s("deploy"),
            allowed: vec![t_minus::AgentId(s("oncall"))],
        }),
        Box::new(TMinusError::BreakGlassBlocked { event: s("deploy") }),
        Box::new(TMinusError::BreakGlassReason),
        Box::new(TMinusError::MaxDeferExceeded {
            event: s("deploy"),
            requested: Duration::hours(1),
            already: Duration::hours(1),
            max: Duration::hours(1),
        }),
        Box::new(TMinusError::Cycle {
            cycle: vec![s("a"), s("b"), s("a")],
        }),
        Box::new(TMinusError::DuplicateCampaign { name: s("rel") }),
        Box::new(TMinusError::DuplicateEventName {
            campaign: s("rel"),
            name: s("review"),
        }),
        Box::new(TMinusError::InvalidLink(LinkRefusal::NotInCampaign {
            event: s("review"),
            campaign: s("rel"),
        })),
        store(StoreError::NotAStore {
            location: file(),
            reason: s("text"),
        }),
        store(StoreError::TooNew {
            location: file(),
            found: 99,
            supported: 1,
        }),
        store(StoreError::UnknownMigration {
            location: file(),
            name: s("later"),
        }),
        store(StoreError::MigrationOrder {
            location: file(),
            position: 9,
            found: s("theirs"),
            expected: s("ours"),
        }),
        store(StoreError::Corrupt {
            location: file(),
            reason: s("malformed"),
        }),
        store(StoreError::ReadOnly {
            location: file(),
            reason: s("readonly"),
        }),
        store(StoreError::Open {
            location: file(),
            reason: s("no dir"),
        }),
        store(StoreError::Unreachable {
            server: s("postgres://u@db:5432/t"),
            reason: s("connection refused"),
        }),
        store(StoreError::Auth {
            server: s("postgres://u@db:5432/t"),
            reason: s("password authentication failed"),
        }),
        store(StoreError::Tls {
            server: s("postgres://u@db:5432/t"),
            reason: s("invalid peer certificate"),
        }),
        store(StoreError::Missing { path: path() }),
        store(StoreError::NoDirectory {
            path: path(),
            dir: path(),
        }),
        store(StoreError::DatabaseMissing {
            server: s("postgres://u@db:5432/t"),
            reason: s("database \"t\" does not exist"),
        }),
        store(StoreError::Failed {
            location: file(),
            reason: s("disk I/O error"),
        }),
        Box::new(ManifestError::StalePlan {
            changes: vec![s("rel changed")],
        }),
        Box::new(ManifestError::PlanFile {
            reason: s("not JSON"),
        }),
        Box::new(ManifestError::PlanOutIsStore {
            path: s("store.db"),
        }),
        Box::new(ManifestError::PlanWrite {
            path: path(),
            reason: s("no such directory"),
        }),
    ]
}

/// The `code(t_minus::…)` attributes written in a source file.
fn codes_in(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(file))
        .unwrap_or_else(|e| panic!("read {file}: {e}"));
    text.match_indices("code(t_minus::")
        .map(|(at, _)| {
            let rest = &text[at + "code(".len()..];
            rest[..rest.find(')').unwrap()].to_string()
        })
        .collect()
}

#[test]
fn every_library_error_has_a_stable_code_and_a_help_line() {
    let mut seen = BTreeSet::new();
    for e in every_error() {
        let code = e.code().map(|c| c.to_string()).unwrap_or_default();
        assert!(code.starts_with("t_minus::"), "{e:?} has no t_minus:: code");
        let help = e.help().map(|h| h.to_string()).unwrap_or_default();
        assert!(!help.trim().is_empty(), "{code} ({e}) has no help line");
        assert!(seen.insert(code.clone()), "{code} is used twice");
    }
    let mut written: BTreeSet<String> = codes_in("src/error.rs").into_iter().collect();
    written.extend(codes_in("src/error/store.rs"));
    written.extend(codes_in("src/plan/mod.rs"));
    assert_eq!(
        seen, written,
        "every error variant must be listed in every_error() (and vice versa)"
    );
}

/// Whether `text` names a command-line flag (`--db`) or a command
/// (`` `t-minus status` ``).
fn names_the_cli(text: &str) -> bool {
    let flag = text.match_indices("--").any(|(at, _)| {
        text[at + 2..].starts_with(|c: char| c.is_ascii_lowercase()) && !text[..at].ends_with('-')
    });
    flag || text.contains("`t-minus ")
}

#[test]
fn names_the_cli_finds_flags_and_commands_only() {
    assert!(names_the_cli("point --db at a store"));
    assert!(names_the_cli("list events with `t-minus status --all`"));
    assert!(names_the_cli("run `t-minus tick`"));
    assert!(!names_the_cli("upgrade t-minus to open this store"));
    assert!(!names_the_cli(
        "give the whole `-----BEGIN SSH SIGNATURE-----` block"
    ));
    assert!(!names_the_cli("sign with `-n t-minus`"));
}

/// The library's messages and help say what to do in library terms; the
/// command line adds the commands and flags (see `src/cli/error.rs`).
#[test]
fn no_library_error_names_a_cli_flag_or_command() {
    for e in every_error() {
        let help = e.help().map(|h| h.to_string()).unwrap_or_default();
        assert!(!names_the_cli(&help), "help of {e:?}: {help}");
        assert!(!names_the_cli(&e.to_string()), "message of {e:?}: {e}");
    }
    for e in [
        LinkRefusal::OtherCampaign {
            event: s("a"),
            campaign: s("rel"),
        },
        LinkRefusal::FinalEvent {
            event: s("a"),
            state: EventState::Fired,
        },
        LinkRefusal::DeadNeed {
            need: s("a"),
            state: EventState::Missed,
            event: s("b"),
        },
        LinkRefusal::ForeignNeed {
            event: s("a"),
            need: s("b"),
            campaign: s("rel"),
        },
        LinkRefusal::EmptyNeed { list: s("a,,b") },
        LinkRefusal::UnknownNeed {
            need: s("x"),
            campaign: s("rel"),
        },
    ] {
        assert!(!names_the_cli(&e.help()), "help of {e:?}: {}", e.help());
        assert!(!names_the_cli(&e.to_string()), "message of {e:?}: {e}");
    }
    // Every text written in the error sources, the trust errors included.
    let text = regex_lite::Regex::new(r#""(?:[^"\\]|\\.)*""#).unwrap();
    for file in [
        "src/error.rs",
        "src/error/store.rs",
        "src/input.rs",
        "src/trust/error.rs",
        "src/plan/mod.rs",
        "src/manifest/diagnostics.rs",
    ] {
        let source = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(file))
            .unwrap_or_else(|e| panic!("read {file}: {e}"));
        let code: Vec<&str> = source
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect();
        let code = code.join("\n");
        let named: Vec<&str> = text
            .find_iter(&code)
            .map(|m| m.as_str())
            .filter(|literal| names_the_cli(literal))
            .collect();
        assert!(named.is_empty(), "{file} names the command line: {named:?}");
    }
}

/// The command line shows its own hint where the library's help speaks in
/// library terms.
#[test]
fn the_cli_hints_name_its_commands_and_flags() {
    let library = TMinusError::EventNotFound {
        reference: s("nope"),
    };
    let help = library.help().map(|h| h.to_string()).unwrap_or_default();
    assert!(!help.contains("t-minus status"), "{help}");
    let t = T::new();
    let stderr = t.fail("log abcd");
    assert!(stderr.contains("t_minus::not_found::event"), "{stderr}");
    assert!(stderr.contains("`t-minus status --all`"), "{stderr}");
    let bare = T::new().without_db_flag();
    std::fs::write(bare.dir().join("text.db"), "hello, not a database").unwrap();
    let out = bare.run("--db text.db status");
    assert!(
        out.stderr.contains("t_minus::store::not_a_store"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("point --db (or T_MINUS_DB)"),
        "{}",
        out.stderr
    );
}

/// A value type's error is reported by an operation as the variant of the
/// same name, with the same code, message and help.
#[test]
fn a_value_error_becomes_the_operation_error_of_the_same_code_message_and_help() {
    let values = [
        InputError::InvalidAgentId {
            value: s("a b"),
            reason: s("whitespace"),
        },
        InputError::DuplicateAttendee { agent: s("alice") },
        InputError::InvalidDuration {
            value: s("5x"),
            reason: s("unknown unit"),
        },
        InputError::InvalidTime {
            value: s("tomorrow"),
            reason: s("no"),
        },
        InputError::InvalidQuorum { value: s("most") },
        InputError::QuorumTooLarge {
            quorum: 4,
            attendees: 3,
        },
        InputError::InvalidGroup {
            group: s("ops"),
            reason: s("the group has no members"),
        },
        InputError::InvalidFirePolicy { value: s("late") },
        InputError::InvalidWindow {
            value: s("Mon 9-5"),
            reason: s("hours"),
        },
        InputError::InvalidName {
            value: s("1x"),
            reason: s("digit"),
        },
    ];
    let shown = |e: &dyn Diagnostic| {
        (
            e.code().map(|c| c.to_string()),
            e.to_string(),
            e.help().map(|h| h.to_string()),
        )
    };
    let mut codes = BTreeSet::new();
    for value in values {
        let operation = TMinusError::from(value.clone());
        assert_eq!(shown(&value), shown(&operation), "{value:?}");
        codes.insert(value.code().map(|c| c.to_string()).unwrap_or_default());
    }
    let written: BTreeSet<String> = codes_in("src/input.rs").into_iter().collect();
    assert_eq!(codes, written, "every InputError variant is checked here");
    let parsed = t_minus::AgentId::parse("a b").unwrap_err();
    assert!(
        matches!(TMinusError::from(parsed), TMinusError::InvalidAgentId { ref value, .. } if value == "a b")
    );
}

/// (setup, command line, expected code): each line must exit 1 and print
/// the code and a help line on stderr.
#[test]
fn the_cli_reports_each_error_with_its_code_and_help() {
    let t = T::new();
    let id = t.schedule("review +15m --t-minus 5m --quorum 2 --attendees alice,bob,carol");
    let capped = t.schedule("deploy +30m --max-defer 5m --attendees ops");
    let fired = t.schedule("checkpoint +30m --quorum 0");
    t.ok("campaign create rel");
    t.ok("campaign add rel checkpoint +10m --attendees ci");
    t.ok("campaign add rel review +20m --attendees alice");
    t.ok("campaign link rel checkpoint review");
    std::fs::write(
        t.dir().join("bad.yaml"),
        "campaign: x\nevents:\n  a: {at: +1m, bogus: 1}\n",
    )
    .unwrap();
    std::fs::write(t.dir().join("notaplan.json"), "{\"t_minus_plan\": 99}").unwrap();
    let cases: Vec<(String, &str)> = vec![
        (format!("confirm {id} 'a b'"), "t_minus::input::agent_id"),
        (
            s("schedule review +10m --attendees a,a"),
            "t_minus::input::duplicate_attendee",
        ),
        (format!("defer {id} bob 5x"), "t_minus::input::duration"),
        (s("schedule review tomorrow"), "t_minus::input::time"),
        (
            s("schedule review +10m --quorum most --attendees a"),
            "t_minus::input::quorum",
        ),
        (
            s("schedule review +10m --quorum 3 --attendees a"),
            "t_minus::input::quorum_too_large",
        ),
        (
            s("schedule review +10m --fire late --attendees a"),
            "t_minus::input::fire_policy",
        ),
        (
            s("schedule review +10m --payload {oops --attendees a"),
            "t_minus::input::payload",
        ),
        (s("campaign create 1bad"), "t_minus::input::name"),
        (s("confirm zz alice"), "t_minus::input::reference"),
        (s("confirm ffff alice"), "t_minus::not_found::event"),
        (s("campaign order nope"), "t_minus::not_found::campaign"),
        (
            format!("confirm {id} eve"),
            "t_minus::refused::not_attendee",
        ),
        (
            format!("confirm {fired} alice"),
            "t_minus::refused::final_event",
        ),
        (
            s("schedule review 2020-01-01T00:00:00Z --attendees a"),
            "t_minus::input::fire_time_passed",
        ),
        (s("cancel nothing-here"), "t_minus::not_found::target"),
        (format!("defer {id} bob 0s"), "t_minus::input::deferral"),
        (
            format!("defer {capped} ops 10m"),
            "t_minus::refused::max_defer",
        ),
        (
            s("campaign link rel review checkpoint"),
            "t_minus::refused::cycle",
        ),
        (
            s("campaign create rel"),
            "t_minus::refused::duplicate_campaign",
        ),
        (
            s("campaign add rel checkpoint +30m --name review --attendees a"),
            "t_minus::refused::duplicate_event_name",
        ),
        (
            format!("campaign link rel {id} review"),
            "t_minus::refused::link",
        ),
        (s("validate bad.yaml"), "t_minus::manifest::unknown_field"),
        (s("apply notaplan.json"), "t_minus::plan::file"),
        (s("plan bad.yaml"), "t_minus::manifest::unknown_field"),
        (
            format!("plan {}", fixture("fire-time-passed.yaml")),
            "t_minus::manifest::fire_time_passed",
        ),
    ];
    let mut failures = Vec::new();
    for (line, code) in &cases {
        let out = t.run(line);
        let ok = out.code == 1
            && out.stdout.is_empty()
            && out.stderr.contains(code)
            && out.stderr.contains("help:");
        if !ok {
            failures.push(format!(
                "$ t-minus {line}\n  expected exit 1 with {code} and a help line; got exit {}\n{}",
                out.code, out.stderr
            ));
        }
    }
    // Stores: these need their own --db.
    let bare = T::new().without_db_flag();
    std::fs::write(bare.dir().join("text.db"), "hello, not a database").unwrap();
    for (line, code) in [
        ("--db text.db status", "t_minus::store::not_a_store"),
        (
            "--db no/such/dir/x.db status",
            "t_minus::store::no_directory",
        ),
    ] {
        let out = bare.run(line);
        if !(out.code == 1 && out.stderr.contains(code) && out.stderr.contains("help:")) {
            failures.push(format!(
                "$ t-minus {line}\n  expected {code}; got {}\n{}",
                out.code, out.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/manifests/invalid")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn plan_out_to_an_unwritable_path_is_a_plan_write_error() {
    let t = T::new();
    std::fs::write(
        t.dir().join("ok.yaml"),
        "campaign: x\nevents:\n  a: {at: +10m, quorum: 0}\n",
    )
    .unwrap();
    let stderr = t.fail("plan ok.yaml --out no/such/dir/x.plan");
    assert!(stderr.contains("t_minus::plan::write"), "{stderr}");
    assert!(stderr.contains("help:"), "{stderr}");
    t.ok("status"); // creates the store
    let stderr = t.fail(&format!("plan ok.yaml --out {}", cli_support::DB));
    assert!(stderr.contains("t_minus::plan::out"), "{stderr}");
    assert!(stderr.contains("help:"), "{stderr}");
}

#[test]
fn every_manifest_problem_has_a_code_and_a_help_line() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests/invalid");
    let t = T::new();
    let mut codes = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let out = t.run_args(&["validate".as_ref(), path.as_os_str(), "--json".as_ref()]);
        let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        if report["valid"] == true {
            // Problems found only against the store and the clock (plan).
            assert_eq!(out.code, 0);
            continue;
        }
        assert_eq!(out.code, 1, "{}: {}", path.display(), out.stdout);
        for error in report["errors"].as_array().unwrap() {
            let code = error["code"].as_str().unwrap_or_default();
            assert!(
                code.starts_with("t_minus::manifest::"),
                "{}: {error}",
                path.display()
            );
            let help = error["help"].as_str().unwrap_or_default();
            assert!(
                !help.trim().is_empty(),
                "{}: {code} has no help: {error}",
                path.display()
            );
            codes.insert(code.to_string());
        }
    }
    assert!(codes.len() >= 10, "the fixtures cover only {codes:?}");
}

/// A store error says how to fix it for the kind of store it names: the
/// SQLite integrity check only for a file, never for a PostgreSQL server;
/// a store busy past the lock wait is a storage error like any other.
#[test]
fn store_errors_help_for_their_kind_of_store() {
    let server = || Location::Server("postgres://u@db:5432/t".into());
    let file = || Location::File(PathBuf::from("store.db"));
    let help = |e: StoreError| {
        let e = TMinusError::Store(e);
        (
            e.code().map(|c| c.to_string()).unwrap_or_default(),
            e.help().map(|h| h.to_string()).unwrap_or_default(),
            e.to_string(),
        )
    };
    for (location, sqlite) in [(file(), true), (server(), false)] {
        for e in [
            StoreError::Corrupt {
                location: location.clone(),
                reason: s("malformed"),
            },
            StoreError::Failed {
                location: location.clone(),
                reason: s("I/O"),
            },
            StoreError::Busy {
                location: location.clone(),
                reason: s("locked"),
                waited: std::time::Duration::from_secs(30),
            },
            StoreError::ReadOnly {
                location: location.clone(),
                reason: s("read-only"),
            },
        ] {
            let (code, help, message) = help(e);
            assert!(code.starts_with("t_minus::store::"), "{code}");
            if sqlite {
                let hint = match code.as_str() {
                    "t_minus::store::read_only" => "-wal and -shm",
                    _ => "sqlite3 FILE 'PRAGMA integrity_check'",
                };
                assert!(help.contains(hint), "{code}: {help}");
            } else {
                assert!(
                    !help.contains("sqlite3") && !help.contains("PRAGMA"),
                    "{help}"
                );
                assert!(help.contains("PostgreSQL"), "{code}: {help}");
            }
            assert!(!message.is_empty());
        }
    }
    let (code, _, message) = help(StoreError::Busy {
        location: file(),
        reason: s("database is locked"),
        waited: std::time::Duration::from_secs(30),
    });
    assert_eq!(code, "t_minus::store::error");
    assert_eq!(
        message,
        "storage error: database is locked (another process held the store for more than 30s)"
    );
}
