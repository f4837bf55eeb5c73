//! The web pages of `t-minus serve` over HTTP: who may see them (sign-in
//! redirect, `--public-dashboard`), what the dashboard, event and campaign
//! pages show, errors as pages with their status, hostile names and
//! payloads escaped, and the stream a public page follows. The pages in a
//! real browser are tested in `web_browser`.
//!
//! Every test runs on SQLite and on PostgreSQL.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use crate::cli_support::{self, T};
use crate::serve::{token, Server};

/// A page's reply: status, headers and text.
pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) location: Option<String>,
    pub(crate) content_type: String,
    pub(crate) csp: Option<String>,
    pub(crate) text: String,
}

/// An agent that follows no redirect and takes every status as a reply.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// `GET path` as a browser without a session.
pub(crate) fn get(server: &Server, path: &str) -> Page {
    let mut r = agent()
        .get(format!("{}{path}", server.base))
        .header("Accept", "text/html")
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let (location, content_type, csp) = (
        header("location"),
        header("content-type").unwrap_or_default(),
        header("content-security-policy"),
    );
    Page {
        status: r.status().as_u16(),
        location,
        content_type,
        csp,
        text: r.body_mut().read_to_string().unwrap_or_default(),
    }
}

/// A page that must be there: `200`, HTML.
#[track_caller]
fn page(server: &Server, path: &str) -> String {
    let p = get(server, path);
    assert_eq!(p.status, 200, "GET {path}: {}", p.text);
    assert_eq!(p.content_type, "text/html; charset=utf-8");
    assert!(p.text.starts_with("<!DOCTYPE html>"), "{}", p.text);
    p.text
}

/// The position of `needle` in `haystack`, which must hold it.
#[track_caller]
fn at(haystack: &str, needle: &str) -> usize {
    haystack
        .find(needle)
        .unwrap_or_else(|| panic!("no {needle:?} in:\n{haystack}"))
}

/// Writes `text` to `name` in the test's directory.
fn write(t: &T, name: &str, text: &str) {
    std::fs::write(t.dir().join(name), text).unwrap();
}

const RELEASE: &str = "campaign: release
description: Ship v2
events:
  build:
    kind: checkpoint
    at: +10m
    attendees: [ci]
  review:
    kind: review
    needs: [build]
    at: +30m
    quorum: 1
    attendees: [alice, bob]
    description: Read the diff
    payload: {version: \"2.0.0\", region: eu-west-1}
  docs:
    kind: checkpoint
    needs: [build]
    at: +20m
    attendees: [carol]
  deploy:
    kind: deploy
    needs: [review, docs]
    at: +40m
    attendees: [ops]
";

fn pages_need_a_session_unless_the_dashboard_is_public() {
    let t = T::new();
    let id = t.schedule("review +15m --name rev --attendees alice");
    let server = Server::start(&t, &[]);
    for (path, next) in [
        ("/", "%2F"),
        ("/?state=all", "%2F%3Fstate%3Dall"),
        (
            &format!("/events/{id}") as &str,
            &format!("%2Fevents%2F{id}"),
        ),
        ("/campaigns/nope", "%2Fcampaigns%2Fnope"),
    ] {
        let p = get(&server, path);
        assert_eq!(p.status, 303, "GET {path}");
        assert_eq!(
            p.location.as_deref(),
            Some(format!("/signin?next={next}").as_str())
        );
    }
    // The assets are public: the sign-in page uses them.
    let css = get(&server, "/assets/style.css");
    assert_eq!(
        (css.status, css.content_type.as_str()),
        (200, "text/css; charset=utf-8")
    );
    assert!(css.text.contains("--focus"));
    let js = get(&server, "/assets/app.js");
    assert_eq!(
        (js.status, js.content_type.as_str()),
        (200, "text/javascript; charset=utf-8")
    );
    assert!(js.text.contains("EventSource"));
    // Nor may an anonymous browser follow the log.
    assert_eq!(get(&server, "/v1/stream").status, 401);
    drop(server);

    let server = Server::start(&t, &["--public-dashboard"]);
    let dashboard = page(&server, "/");
    assert!(dashboard.contains(&format!("href=\"/events/{id}\"")));
    assert!(dashboard.contains("href=\"/signin\""), "{dashboard}");
    let event = page(&server, &format!("/events/{id}"));
    assert!(event.contains("alice"));
    // Read-only: no answer buttons, no CSRF token.
    for absent in ["data-answer", "Confirm</button>", "csrf-token"] {
        assert!(
            !event.contains(absent),
            "{absent} on a public page:\n{event}"
        );
    }
    assert!(event.contains("sign in</a> to answer"), "{event}");
    let csp = get(&server, "/").csp.unwrap_or_default();
    assert!(csp.contains("script-src 'self'"), "{csp}");
}

/// `GET path` with the session `cookie`.
fn get_as(server: &Server, path: &str, cookie: &str) -> Page {
    let mut r = agent()
        .get(format!("{}{path}", server.base))
        .header("Cookie", cookie)
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    Page {
        status: r.status().as_u16(),
        location: None,
        content_type: String::new(),
        csp: None,
        text: r.body_mut().read_to_string().unwrap_or_default(),
    }
}

/// A session of `agent`, enrolled with a software passkey: its cookie.
fn signed_in(t: &T, server: &Server, agent: &str, seed: u8) -> String {
    use crate::serve_passkeys::{invite, Authenticator, Browser};
    let token = invite(t, agent, "");
    let mut browser = Browser::new(server);
    let mut key = Authenticator::new(seed, "localhost");
    let reply = browser.enrol(&token, &mut key);
    assert_eq!(reply.status, 200);
    browser.cookie.clone().expect("a session cookie")
}

fn a_signed_in_attendee_gets_the_buttons_and_others_do_not() {
    let t = T::new();
    let id = t.schedule("review +15m --name rev --attendees alice");
    let done = t.schedule("review +15m --name done --attendees alice");
    t.ok(&format!("confirm {done} alice"));
    // No public dashboard: a session is what shows the pages.
    let server = Server::start(&t, &[]);
    let alice = signed_in(&t, &server, "alice", 3);
    let carol = signed_in(&t, &server, "carol", 4);
    let dashboard = get_as(&server, "/", &alice);
    assert_eq!(dashboard.status, 200);
    assert!(dashboard
        .text
        .contains("Signed in as <strong>alice</strong>"));
    assert!(dashboard.text.contains("data-signout"));
    // What waits for alice comes first; carol has nothing to answer.
    let yours = &dashboard.text[at(&dashboard.text, "Waiting for your answer")..];
    let yours = &yours[..at(yours, "id=\"events-heading\"")];
    assert!(yours.contains(&format!("href=\"/events/{id}\"")), "{yours}");
    assert!(!yours.contains(&format!("href=\"/events/{done}\"")));
    let theirs = get_as(&server, "/", &carol).text;
    assert!(theirs.contains("Nothing waits for you, carol."), "{theirs}");
    let page = get_as(&server, &format!("/events/{id}"), &alice);
    assert_eq!(page.status, 200);
    for present in [
        "<meta name=\"csrf-token\"",
        &format!("data-event=\"{id}\"") as &str,
        "data-answer=\"confirm\"",
        "data-answer=\"defer\"",
        "data-answer=\"decline\"",
        "<label for=\"defer-duration\">",
        "<label for=\"decline-reason\">",
        "<fieldset class=\"answers\" disabled data-needs-script>",
    ] {
        assert!(page.text.contains(present), "{present}:\n{}", page.text);
    }
    // Not an attendee, or a final event: no buttons.
    let other = get_as(&server, &format!("/events/{id}"), &carol);
    assert_eq!(other.status, 200);
    assert!(!other.text.contains("data-answer"), "{}", other.text);
    let finished = get_as(&server, &format!("/events/{done}"), &alice);
    assert!(!finished.text.contains("data-answer"), "{}", finished.text);
    // The session opens the stream too.
    let stream = agent()
        .get(format!("{}/v1/stream", server.base))
        .header("Cookie", &alice)
        .call()
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    // Without a cookie, or with one that names no session: sign in.
    assert_eq!(get(&server, "/").status, 303);
    assert_eq!(get_as(&server, "/", "tminus_session=nope").status, 303);
}

/// The open stream of `path` without a token: its lines.
fn anonymous_stream(server: &Server, path: &str) -> impl Iterator<Item = String> {
    let response = agent()
        .get(format!("{}{path}", server.base))
        .call()
        .expect("the stream opens");
    assert_eq!(response.status().as_u16(), 200);
    BufReader::new(response.into_body().into_reader())
        .lines()
        .map_while(|l| l.ok())
}

fn a_public_stream_carries_answers_and_transitions_but_not_tokens() {
    let t = T::new();
    let id = t.schedule("review +15m --name rev --attendees alice");
    let server = Server::start(&t, &["--public-dashboard"]);
    let mut lines = anonymous_stream(&server, "/v1/stream");
    // A token made and refused meanwhile is not the public's business.
    let alice = token(&t, "alice", "agent");
    t.ok(&format!("confirm {id} alice"));
    let mut names = Vec::new();
    for line in lines.by_ref() {
        if let Some(name) = line.strip_prefix("event: ") {
            names.push(name.to_string());
            if name == "fired" {
                break;
            }
        }
    }
    assert_eq!(names, ["confirmed", "fired"]);
    assert!(!alice.is_empty());
}

fn the_dashboard_lists_unfinished_events_soonest_first_with_history_behind_a_filter() {
    let t = T::new();
    write(&t, "release.yaml", RELEASE);
    t.ok("apply release.yaml");
    let later = t.schedule("meeting +2h --name standup --attendees alice,bob --quorum 2");
    let sooner = t.schedule("checkpoint +5m --name smoke --attendees ci --quorum 1");
    let done = t.schedule("review +1h --name done --attendees bob");
    t.ok(&format!("confirm {done} bob"));
    t.ok(&format!("confirm {later} alice"));
    let server = Server::start(&t, &["--public-dashboard"]);
    let d = page(&server, "/");
    // Soonest deadline first: smoke (5m), release/build (10m), standup
    // (2h); blocked ones (no fire time yet) after.
    let (smoke, build, standup) = (
        at(&d, &format!("href=\"/events/{sooner}\"")),
        at(&d, "href=\"/events/release/build\""),
        at(&d, &format!("href=\"/events/{later}\"")),
    );
    assert!(smoke < build && build < standup, "{d}");
    assert!(at(&d, "href=\"/events/release/deploy\"") > standup);
    assert!(!d.contains(&format!("href=\"/events/{done}\"")), "{d}");
    // Live countdowns from the pinned clock, quorum progress, states.
    assert!(d.contains(">T-5m00s</time>"), "{d}");
    assert!(d.contains("data-fire"));
    assert!(
        d.contains("aria-label=\"quorum: 1 of 2 confirmations\""),
        "{d}"
    );
    assert!(d.contains("class=\"badge state-blocked\""));
    assert!(d.contains("data-stream=\"/v1/stream\""));
    // The running campaign, linked.
    assert!(d.contains("href=\"/campaigns/release\""));
    assert!(d.contains("0 of 4 events fired"));
    // History: every event, or one state.
    let all = page(&server, "/?state=all");
    assert!(all.contains(&format!("href=\"/events/{done}\"")));
    assert!(all.contains("<option value=\"all\" selected>"), "{all}");
    let fired = page(&server, "/?state=fired");
    assert!(fired.contains(&format!("href=\"/events/{done}\"")));
    assert!(!fired.contains(&format!("href=\"/events/{sooner}\"")));
    // A bad filter is a page saying so, with its status and code.
    let bad = get(&server, "/?state=soon");
    assert_eq!(bad.status, 400);
    assert!(bad.text.contains("t_minus::http::query"), "{}", bad.text);
    assert!(bad.text.contains("`soon` is not unfinished"));
}

fn the_event_page_shows_content_answers_changes_and_log() {
    let t = T::new();
    write(&t, "release.yaml", RELEASE);
    t.ok("apply release.yaml");
    t.ok("confirm release/build ci");
    t.ok("tick");
    t.ok("decline release/review bob --reason not-today");
    // A new version: the payload changes (answers given before are reset).
    write(&t, "release.yaml", &RELEASE.replace("2.0.0", "2.0.1"));
    t.ok("apply release.yaml");
    let server = Server::start(&t, &["--public-dashboard"]);
    let p = page(&server, "/events/release/review");
    let id = t.event("release/review")["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The same page by id and by prefix, as /v1/events/{event} takes them.
    for reference in [id.clone(), id[..8].to_string(), "release%2Freview".into()] {
        let other = page(&server, &format!("/events/{reference}"));
        assert!(other.contains(&format!("<code>{id}</code>")));
    }
    assert!(p.contains("<title>release/review · t-minus</title>"));
    assert!(p.contains("<p class=\"description\">Read the diff</p>"));
    // The payload as pretty JSON, and the digest the API shows.
    assert!(p.contains("&quot;version&quot;: &quot;2.0.1&quot;"), "{p}");
    let digest = t.event(&id)["content_digest"].as_str().unwrap().to_string();
    assert!(p.contains(&digest));
    // Needs, linked to their pages.
    assert!(p.contains("href=\"/events/release/build\""));
    // Answers: bob declined, with his reason, not signed.
    let bob = at(&p, "<span class=\"agent\">bob</span>");
    let rest = &p[bob..];
    assert!(rest.contains("answer-declined"), "{rest}");
    assert!(rest.contains("reason: <q>not-today</q>"), "{rest}");
    assert!(rest.contains("not signed"));
    // What changed since version 1, from the log.
    let changes = &p[at(&p, "id=\"changes-heading\"")..];
    assert!(changes.contains("version 2"), "{changes}");
    assert!(changes.contains("2.0.0"), "{changes}");
    assert!(changes.contains("2.0.1"), "{changes}");
    assert!(changes.contains("content digest"), "{changes}");
    // The log, oldest first, with each entry's link in the chain.
    let log = &p[at(&p, "id=\"log-heading\"")..];
    let (scheduled, declined, updated) = (
        at(log, ">scheduled<"),
        at(log, ">declined<"),
        at(log, ">updated<"),
    );
    assert!(scheduled < declined && declined < updated, "{log}");
    assert!(log.contains("reason=not-today"));
    assert!(log.contains("changed=payload content=sha256:"), "{log}");
    assert!(log.contains("class=\"hash\""));
    // Since version 2 nothing changed.
    let seq = t
        .json(&format!("log {id} --json"))
        .as_array()
        .unwrap()
        .iter()
        .rfind(|e| e["action"] == "updated")
        .unwrap()["seq"]
        .as_i64()
        .unwrap();
    let since = page(&server, &format!("/events/{id}?since={seq}"));
    assert!(
        since.contains("Nothing changed since that version."),
        "{since}"
    );
    // Unknown and ambiguous references are pages with the API's status.
    let missing = get(&server, "/events/release/nope");
    assert_eq!(missing.status, 404);
    assert!(missing.content_type.starts_with("text/html"));
    assert!(
        missing.text.contains("t_minus::not_found::event"),
        "{}",
        missing.text
    );
    assert!(missing.text.contains("Not found"));
    // A path with no page at all is a page too, for a browser.
    let nowhere = get(&server, "/nowhere");
    assert_eq!(nowhere.status, 404);
    assert!(nowhere.content_type.starts_with("text/html"));
    assert!(nowhere.text.contains("t_minus::http::not_found"));
}

fn the_campaign_page_shows_the_graph_in_execution_order() {
    let t = T::new();
    write(&t, "release.yaml", RELEASE);
    t.ok("apply release.yaml");
    t.ok("confirm release/build ci");
    t.ok("tick");
    let server = Server::start(&t, &["--public-dashboard"]);
    let p = page(&server, "/campaigns/release");
    assert!(p.contains("<p class=\"description\">Ship v2</p>"));
    assert!(p.contains("Order: build → review, docs → deploy"), "{p}");
    let (one, two, three) = (at(&p, ">Step 1<"), at(&p, ">Step 2 <"), at(&p, ">Step 3<"));
    assert!(one < two && two < three, "{p}");
    assert!(p.contains("(2 in parallel)"));
    let build = &p[one..two];
    assert!(build.contains("state-fired") && build.contains("release/build"));
    let deploy = &p[three..];
    assert!(deploy.contains("state-blocked"));
    assert!(deploy.contains("needs: review, docs"), "{deploy}");
    assert!(p.contains("1 of 4 events fired"));
    assert!(p.contains("data-stream=\"/v1/stream?campaign=release\""));
    // By id too; an unknown campaign is a 404 page.
    let id = t.json("campaign list --json")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(page(&server, &format!("/campaigns/{id}")).contains("Order: build"));
    let missing = get(&server, "/campaigns/nope");
    assert_eq!(missing.status, 404);
    assert!(missing.text.contains("t_minus::not_found::campaign"));
}

fn hostile_names_and_payloads_are_escaped() {
    let t = T::new();
    let agent = "<script>alert(1)</script>";
    let payload = r#"{"note": "</code></pre><script>alert(2)</script>", "q": "\"'&"}"#;
    let out = t.run_args(&[
        "schedule",
        "review",
        "+15m",
        "--attendees",
        &format!("{agent},bob"),
        "--quorum",
        "1",
        "--payload",
        payload,
        "--json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let id = serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = t.run_args(&[
        "decline",
        &id,
        agent,
        "--reason",
        "<img src=x onerror=alert(3)>",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let server = Server::start(&t, &["--public-dashboard"]);
    for path in ["/".to_string(), format!("/events/{id}")] {
        let p = page(&server, &path);
        assert!(!p.contains("<script>alert"), "{path}:\n{p}");
        assert!(!p.contains("<img src=x"), "{path}:\n{p}");
        assert!(
            p.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}:\n{p}"
        );
    }
    let p = page(&server, &format!("/events/{id}"));
    assert!(
        p.contains("&lt;/code&gt;&lt;/pre&gt;&lt;script&gt;alert(2)"),
        "{p}"
    );
    assert!(p.contains("&lt;img src=x onerror=alert(3)&gt;"));
    assert!(p.contains("&quot;'&amp;"), "{p}");
}

cli_support::store_tests!(
    pages_need_a_session_unless_the_dashboard_is_public,
    a_public_stream_carries_answers_and_transitions_but_not_tokens,
    the_dashboard_lists_unfinished_events_soonest_first_with_history_behind_a_filter,
    the_event_page_shows_content_answers_changes_and_log,
    the_campaign_page_shows_the_graph_in_execution_order,
    hostile_names_and_payloads_are_escaped,
    a_signed_in_attendee_gets_the_buttons_and_others_do_not,
);
