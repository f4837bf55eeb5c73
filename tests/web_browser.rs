//! The web pages in a real browser: headless Chromium (Debian's
//! `chromium`) driven by Playwright for Python
//! (`tests/fixtures/web/browser.py`), with axe-core checking
//! accessibility. The pages render with no console error under their
//! content security policy; axe finds no serious or critical violation on
//! a desktop or a 390 px phone; nothing scrolls sideways on the phone; the
//! keyboard reaches the skip link and navigation; the event page reads
//! without JavaScript; countdowns count down; an answer given with the CLI
//! shows on the open event page within a second, without a reload.
//!
//! Ignored unless `T_MINUS_TEST_BROWSER` (the Python with Playwright) was
//! set at build time (`cfg(t_minus_test_browser)`; `.ci/run` installs and
//! sets it); fails when it is set and the browser, Playwright or axe-core
//! is missing. axe-core is read from `T_MINUS_TEST_AXE`, else from
//! `.ci/node_modules/axe-core/axe.min.js`; Chromium from
//! `T_MINUS_TEST_CHROMIUM`, else `/usr/bin/chromium`. With
//! `T_MINUS_WEB_SCREENSHOTS=DIR` the test saves the dashboard and the
//! event page, desktop and phone, as `DIR/*.png` (docs/web/ holds those
//! of docs/web.md).
//!
//! Runs on SQLite and on PostgreSQL.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};

use crate::cli_support::T;
use crate::serve::Server;

/// The environment variable naming the Python with Playwright.
const BROWSER_VAR: &str = "T_MINUS_TEST_BROWSER";

/// The events the pages show: a campaign in flight and two standalone
/// events.
const MANIFEST: &str = "campaign: release-v2
description: Ship v2 to production
events:
  checkpoint:
    kind: checkpoint
    at: +10m
    attendees: [ci-bot]
  review:
    kind: review
    needs: [checkpoint]
    at: +40m
    t_minus: 10m
    quorum: 2
    attendees: [alice, bob, carol]
    description: Review the release notes and the diff of v2.0.0.
    payload: {version: 2.0.0, region: eu-west-1, changes: 42}
  deploy:
    kind: deploy
    needs: [review]
    at: +30m
    t_minus: 10m
    fire: on-time
    max_defer: 1h
    attendees: [ops-1, ops-2]
    payload: {version: 2.0.0, region: eu-west-1}
";

/// The Python of `T_MINUS_TEST_BROWSER`; panics when it is unset.
fn python() -> String {
    match std::env::var(BROWSER_VAR) {
        Ok(p) if !p.trim().is_empty() => p,
        _ => panic!(
            "{BROWSER_VAR} is not set: this test needs a Python with Playwright and the \
             system Chromium (`.ci/run` installs them)"
        ),
    }
}

/// axe-core's script, which must exist.
fn axe() -> PathBuf {
    let path = match std::env::var("T_MINUS_TEST_AXE") {
        Ok(p) if !p.trim().is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".ci/node_modules/axe-core/axe.min.js"),
    };
    assert!(
        path.is_file(),
        "axe-core is missing at {} (`npm install --prefix .ci axe-core@4`, or set T_MINUS_TEST_AXE)",
        path.display()
    );
    path
}

/// Runs the browser script with `settings`: its JSON transcript.
pub(crate) fn run_browser(script: &str, settings: &Value) -> Value {
    let python = python();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/web")
        .join(script);
    let out = Command::new(&python)
        .arg(&script)
        .arg(settings.to_string())
        .output()
        .unwrap_or_else(|e| panic!("{BROWSER_VAR}={python} cannot run: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser script failed (Playwright installed for {python}? Chromium present?)\n{stdout}\n{stderr}"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

/// Settings every browser script takes: the service, axe-core, Chromium
/// and where screenshots go.
pub(crate) fn base_settings(server: &Server) -> Value {
    json!({
        "base": server.base,
        "axe": axe(),
        "chromium": std::env::var("T_MINUS_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
        "screenshots": std::env::var("T_MINUS_WEB_SCREENSHOTS").ok().filter(|s| !s.is_empty()),
    })
}

/// axe's serious and critical violations in `violations`.
fn serious(violations: &Value) -> Vec<&Value> {
    violations
        .as_array()
        .map(|list| {
            list.iter()
                .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
                .collect()
        })
        .unwrap_or_default()
}

fn the_pages_work_in_a_browser() {
    let t = T::new();
    std::fs::write(t.dir().join("release.yaml"), MANIFEST).unwrap();
    t.ok("apply release.yaml");
    t.ok("confirm release-v2/checkpoint ci-bot");
    t.ok("confirm release-v2/review bob");
    t.ok("defer release-v2/review carol 5m");
    t.schedule("meeting +2h --name standup --attendees alice,bob,carol,dave --quorum majority");
    let fired = t.schedule("checkpoint +20m --name nightly --attendees ci-bot");
    t.ok(&format!("confirm {fired} ci-bot"));
    let server = Server::start(&t, &["--public-dashboard"]);
    let mut settings = base_settings(&server);
    settings["pages"] = json!({
        "dashboard": "/",
        "event": "/events/release-v2/review",
        "campaign": "/campaigns/release-v2",
        "history": "/?state=all",
    });
    let mut command = vec![
        assert_cmd::cargo::cargo_bin!("t-minus")
            .display()
            .to_string(),
        "--db".into(),
        t.db_location(),
    ];
    command.extend(["confirm", "release-v2/review", "alice"].map(String::from));
    settings["live"] = json!({
        "command": command,
        "env": {"T_MINUS_NOW": t.now(), "NO_COLOR": "1"},
        "agent": "alice",
        "answer": "confirmed",
    });
    let out = run_browser("browser.py", &settings);
    assert_eq!(out["console_errors"], json!([]), "{out:#}");
    for (name, record) in out["pages"].as_object().unwrap() {
        assert_eq!(record["status"], 200, "{name}: {record:#}");
        for device in ["desktop", "phone"] {
            let found = serious(&record[format!("axe_{device}")]);
            assert!(found.is_empty(), "{name} ({device}): {found:#?}");
        }
        let overflow = &record["overflow_phone"];
        assert!(
            overflow["scroll"].as_i64() <= overflow["width"].as_i64(),
            "{name} scrolls sideways at 390 px: {overflow}"
        );
    }
    assert_eq!(
        out["pages"]["event"]["title"],
        "release-v2/review · t-minus"
    );
    let keyboard = &out["keyboard"];
    assert_eq!(keyboard["first"], "Skip to content", "{keyboard}");
    assert_eq!(keyboard["after_skip"], "main", "{keyboard}");
    let tabbed: Vec<&str> = keyboard["tabbed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        &tabbed[1..4],
        ["t-minus", "Dashboard", "History"],
        "{keyboard}"
    );
    let no_script = out["no_script"]["text"].as_str().unwrap();
    for shown in ["Attendees", "\"region\": \"eu-west-1\"", "carol", "Log"] {
        assert!(
            no_script.contains(shown),
            "{shown} without JavaScript:\n{no_script}"
        );
    }
    let countdown = out["countdown"].as_array().unwrap();
    assert_ne!(countdown[0], countdown[1], "the countdown stands still");
    assert!(countdown[0].as_str().unwrap().starts_with("T-"));
    assert_eq!(out["live_before"], false);
    assert_eq!(out["live_command"]["code"], 0, "{out:#}");
    let ms = out["live_ms"].as_i64();
    assert!(
        ms.is_some_and(|ms| ms <= 1000),
        "no live update within 1 s: {out:#}"
    );
    assert_eq!(out["same_document"], true, "the page was reloaded");
    assert!(
        out["announced"].as_str().unwrap().contains("alice"),
        "{out:#}"
    );
}

/// A free port of 127.0.0.1 (free when asked; the server binds it next).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// End to end with a passkey: `people invite` prints the link; Chromium,
/// with the DevTools protocol's virtual authenticator, opens it and
/// enrols (which signs in); the event page shows the buttons to the
/// attendee; Confirm signs the answer with the passkey; a second page of
/// the session (its stream authenticated by the cookie) shows it within
/// a second without a reload; `verify` finds the log intact and `log`
/// shows the passkey-signed answer. With `T_MINUS_WEB_TRANSCRIPT=FILE`
/// the `log` transcript is saved there.
fn a_person_enrols_a_passkey_and_confirms_on_the_event_page() {
    let t = T::new();
    std::fs::write(t.dir().join("release.yaml"), MANIFEST).unwrap();
    t.ok("apply release.yaml");
    t.ok("confirm release-v2/checkpoint ci-bot");
    t.ok("confirm release-v2/review bob");
    let port = free_port();
    let origin = format!("http://localhost:{port}");
    let server = Server::start_at(&t, &format!("127.0.0.1:{port}"), &[]);
    let invite = t.ok(&format!("people invite alice --public-url {origin}"));
    let link = invite
        .lines()
        .find(|l| l.starts_with(&format!("{origin}/enrol/")))
        .unwrap_or_else(|| panic!("no enrolment link in:\n{invite}"))
        .to_string();
    let mut settings = base_settings(&server);
    settings["base"] = json!(origin);
    settings["enrol_link"] = json!(link);
    settings["event"] = json!("/events/release-v2/review");
    settings["agent"] = json!("alice");
    let out = run_browser("passkey.py", &settings);
    assert_eq!(out["console_errors"], json!([]), "{out:#}");
    assert!(
        out["signed_in_as"].as_str().unwrap().contains("alice"),
        "{out:#}"
    );
    assert_eq!(out["credentials"], 1);
    assert_eq!(out["buttons"], json!(["Confirm", "Defer", "Decline"]));
    let found = serious(&out["axe_signed_in"]);
    assert!(found.is_empty(), "signed in: {found:#?}");
    assert_eq!(out["before"], false);
    assert!(
        out["status"].as_str().unwrap().starts_with("Confirmed"),
        "{out:#}"
    );
    let ms = out["watcher_ms"].as_i64();
    assert!(
        ms.is_some_and(|ms| ms <= 1000),
        "no live update within 1 s: {out:#}"
    );
    assert_eq!(out["same_document"], true, "the watching page was reloaded");
    let shown = out["signature_shown"].as_str().unwrap();
    assert!(shown.contains("signed with a passkey webauthn:"), "{shown}");
    assert!(out["after_signout"].as_str().unwrap().contains("/signin"));
    drop(server);
    // The store agrees: the answer is alice's, signed by her passkey, and
    // the log checks out.
    let review = t.event("release-v2/review");
    assert_eq!(review["state"], "fired");
    assert!(t.ok("verify").contains("intact"));
    let log = t.ok("log release-v2/review");
    let line = log
        .lines()
        .find(|l| l.contains("confirmed") && l.contains("by alice"))
        .unwrap_or_else(|| panic!("no confirmation by alice in:\n{log}"));
    assert!(line.contains("key=webauthn:"), "{line}");
    if let Some(path) = std::env::var_os("T_MINUS_WEB_TRANSCRIPT").filter(|p| !p.is_empty()) {
        let verify = t.ok("verify");
        let transcript = format!(
            "$ t-minus log release-v2/review\n{log}\n$ t-minus log release-v2/review --json (alice's answer)\n{}\n$ t-minus verify\n{verify}",
            serde_json::to_string_pretty(
                &t.json("log release-v2/review --json")
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|e| e["action"] == "confirmed" && e["agent"] == "alice")
                    .unwrap()
            )
            .unwrap()
        );
        std::fs::write(path, transcript).unwrap();
    }
}

/// The browser tests on both stores, ignored without the browser.
mod browser {
    use crate::cli_support::stores::{run, Backend};

    #[test]
    #[cfg_attr(not(t_minus_test_browser), ignore = "needs T_MINUS_TEST_BROWSER")]
    fn sqlite() {
        run(
            Backend::Sqlite,
            "browser::sqlite",
            super::the_pages_work_in_a_browser,
        );
    }

    #[test]
    #[cfg_attr(
        not(all(t_minus_test_browser, t_minus_test_pg)),
        ignore = "needs T_MINUS_TEST_BROWSER and T_MINUS_TEST_PG"
    )]
    fn postgres() {
        run(
            Backend::Postgres,
            "browser::postgres",
            super::the_pages_work_in_a_browser,
        );
    }

    #[test]
    #[cfg_attr(not(t_minus_test_browser), ignore = "needs T_MINUS_TEST_BROWSER")]
    fn passkey_sqlite() {
        run(
            Backend::Sqlite,
            "browser::passkey_sqlite",
            super::a_person_enrols_a_passkey_and_confirms_on_the_event_page,
        );
    }

    #[test]
    #[cfg_attr(
        not(all(t_minus_test_browser, t_minus_test_pg)),
        ignore = "needs T_MINUS_TEST_BROWSER and T_MINUS_TEST_PG"
    )]
    fn passkey_postgres() {
        run(
            Backend::Postgres,
            "browser::passkey_postgres",
            super::a_person_enrols_a_passkey_and_confirms_on_the_event_page,
        );
    }
}
