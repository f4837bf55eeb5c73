//! Tells the integration tests which optional test dependencies are
//! configured, so that libtest lists the tests needing an absent one as
//! ignored instead of passing them unrun:
//!
//! - `cfg(t_minus_test_pg)` when `T_MINUS_TEST_PG` (a PostgreSQL server
//!   URL) is set: the PostgreSQL copies of the store suites run;
//! - `cfg(t_minus_test_mcp_python)` when `T_MINUS_TEST_MCP_PYTHON` (a Python
//!   with the official MCP SDK) is set: the MCP client test runs;
//! - `cfg(t_minus_test_tools)` when `T_MINUS_TEST_TOOLS` is set
//!   (`ssh-keygen`, `jq`, `sqlite3`, `python3`, `curl` and `openssl` are on
//!   `PATH`): the documentation's walk-throughs that use them and the
//!   service's HTTPS test run;
//! - `cfg(t_minus_test_schemathesis)` when `T_MINUS_TEST_SCHEMATHESIS` (the
//!   `schemathesis` program, from PyPI) is set: the contract check of the
//!   service's OpenAPI document runs;
//! - `cfg(t_minus_test_browser)` when `T_MINUS_TEST_BROWSER` (a Python with
//!   Playwright, driving the system Chromium; axe-core from npm) is set:
//!   the web pages' browser tests run.
//!
//! The library and the binary do not read these settings.

fn main() {
    for (var, cfg) in [
        ("T_MINUS_TEST_PG", "t_minus_test_pg"),
        ("T_MINUS_TEST_MCP_PYTHON", "t_minus_test_mcp_python"),
        ("T_MINUS_TEST_TOOLS", "t_minus_test_tools"),
        ("T_MINUS_TEST_SCHEMATHESIS", "t_minus_test_schemathesis"),
        ("T_MINUS_TEST_BROWSER", "t_minus_test_browser"),
    ] {
        println!("cargo::rerun-if-env-changed={var}");
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if std::env::var_os(var).is_some_and(|v| !v.to_string_lossy().trim().is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
