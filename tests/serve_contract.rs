//! A third-party contract check of the HTTP API: schemathesis (from PyPI)
//! loads `/openapi.json` of a live `t-minus serve`, generates requests for
//! every operation (schema-conforming and not) with an operator's and an
//! agent's token, and checks that no response is a server error and that
//! every response conforms to the document: its status, content type,
//! headers and body schema, authentication enforced, bad data refused.
//!
//! Left out: `/v1/stream` (an endless Server-Sent Events response), and
//! schemathesis's `positive_data_acceptance` check, which expects every
//! schema-valid request to succeed while a string that is no event
//! reference (`0`) or no manifest is rightly refused with 400 or 422.
//!
//! Ignored unless `T_MINUS_TEST_SCHEMATHESIS` (the `schemathesis` program)
//! was set at build time (`cfg(t_minus_test_schemathesis)`; `.ci/run`
//! installs it in a venv); fails when it is set and cannot run. Every
//! test runs on SQLite and on PostgreSQL.

use std::process::Command;

use crate::cli_support::T;
use crate::serve::{token, Server};

/// The variable naming the `schemathesis` program.
const SCHEMATHESIS_VAR: &str = "T_MINUS_TEST_SCHEMATHESIS";

/// Fuzzed test cases per operation: with the coverage phase's cases, a
/// run of every operation takes seconds.
const MAX_EXAMPLES: &str = "5";

/// Runs schemathesis's `phases` against `server` with `token`; panics
/// with its report unless every check passed.
fn schemathesis(t: &T, program: &str, server: &Server, token: &str, who: &str, phases: &str) {
    let out = Command::new(program)
        // Its cache (`.schemathesis/`) goes to the test's directory.
        .current_dir(t.dir())
        .args(["run", &format!("{}/openapi.json", server.base)])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        .args(["--exclude-path", "/v1/stream"])
        .args([
            "--max-examples",
            MAX_EXAMPLES,
            "--seed",
            "1",
            "--workers",
            "1",
            "--phases",
            phases,
        ])
        .args(["--request-timeout", "30", "--no-color"])
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .output()
        .unwrap_or_else(|e| panic!("{SCHEMATHESIS_VAR}={program} cannot run: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems with {who}'s token:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("passed"), "{stdout}");
}

fn the_api_keeps_its_openapi_contract() {
    let program = match std::env::var(SCHEMATHESIS_VAR) {
        Ok(p) if !p.trim().is_empty() => p,
        _ => panic!(
            "{SCHEMATHESIS_VAR} is not set: this test needs schemathesis (`.ci/run` installs it)"
        ),
    };
    let t = T::new();
    t.ok("schedule review +30m --name rev --attendees alice,bob");
    std::fs::write(
        t.dir().join("rel.yaml"),
        "campaign: rel\nevents:\n  build:\n    at: +1h\n    attendees: [alice]\n",
    )
    .unwrap();
    t.ok("apply rel.yaml");
    let (ops, alice) = (token(&t, "ops", "operator"), token(&t, "alice", "agent"));
    // No rate limit: the generated requests come fast.
    let server = Server::start(&t, &["--rate-limit", "0"]);
    schemathesis(
        &t,
        &program,
        &server,
        &ops,
        "an operator",
        "coverage,fuzzing",
    );
    // An agent's token reaches the answering routes: their systematic cases.
    schemathesis(&t, &program, &server, &alice, "an agent", "coverage");
    // The service is still there and its log intact.
    assert!(t.ok("verify").contains("intact"));
}

/// The contract check on both stores, ignored without schemathesis.
mod contract {
    use crate::cli_support::stores::{run, Backend};

    #[test]
    #[cfg_attr(
        not(t_minus_test_schemathesis),
        ignore = "needs T_MINUS_TEST_SCHEMATHESIS"
    )]
    fn sqlite() {
        run(
            Backend::Sqlite,
            "contract::sqlite",
            super::the_api_keeps_its_openapi_contract,
        );
    }

    #[test]
    #[cfg_attr(
        not(all(t_minus_test_schemathesis, t_minus_test_pg)),
        ignore = "needs T_MINUS_TEST_SCHEMATHESIS and T_MINUS_TEST_PG"
    )]
    fn postgres() {
        run(
            Backend::Postgres,
            "contract::postgres",
            super::the_api_keeps_its_openapi_contract,
        );
    }
}
