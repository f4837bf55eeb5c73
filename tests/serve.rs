//! `t-minus serve` as its clients use it: the real binary on a free port,
//! spoken to over HTTP with `ureq`; what it writes checked with the command
//! line afterwards. Tokens and roles, errors with their status and code,
//! body limits, the OpenAPI document, remote apply refusing files and exec
//! hooks, signed answers without a token, SIGTERM, and `kill -9` after
//! acknowledged answers. The token store itself is tested in process.
//!
//! Every test runs on SQLite and on PostgreSQL.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use t_minus::token::{looks_like_secret, Role};
use t_minus::{AgentId, AuditAction, FixedClock, TMinusError};

use crate::cli_support::{self, stores, T};
use crate::common::{self, t0};

/// A running `t-minus serve` on a free port of 127.0.0.1.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
    http: ureq::Agent,
    _stdout: BufReader<ChildStdout>,
}

/// A reply: its status, body and `WWW-Authenticate` header.
struct Reply {
    status: u16,
    body: Value,
    authenticate: Option<String>,
    retry_after: Option<String>,
}

impl Reply {
    /// The error code of an error reply.
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl Server {
    /// `serve` on `t`'s store with its clock pinned at `t`'s instant, plus
    /// `extra` arguments.
    pub(crate) fn start(t: &T, extra: &[&str]) -> Server {
        Server::start_at(t, "127.0.0.1:0", extra)
    }

    /// [`Server::start`] listening on `listen`.
    pub(crate) fn start_at(t: &T, listen: &str, extra: &[&str]) -> Server {
        let mut cmd = t.command();
        cmd.env_remove("T_MINUS_NOW")
            .args(["serve", "--listen", listen, "--clock-for-tests"])
            .arg(t.now())
            .args(extra);
        Server::spawn(cmd, t)
    }

    /// Kills the server with SIGKILL and reaps it.
    pub(crate) fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub(crate) fn spawn(mut cmd: Command, t: &T) -> Server {
        let stderr = std::fs::File::create(t.dir().join("serve.err")).unwrap();
        cmd.stdout(Stdio::piped()).stderr(stderr);
        let mut child = cmd.spawn().expect("start t-minus serve");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let Some(base) = line.trim().strip_prefix("t-minus serve: listening on ") else {
            let _ = child.kill();
            let err = std::fs::read_to_string(t.dir().join("serve.err")).unwrap_or_default();
            panic!("serve did not start: {line:?}\n{err}");
        };
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Server {
            base: base.to_string(),
            child,
            http,
            _stdout: stdout,
        }
    }

    /// A request: `body` is `(content type, text)`.
    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, &str)>,
    ) -> Reply {
        let url = format!("{}{path}", self.base);
        let bearer = token.map(|t| format!("Bearer {t}"));
        let result = match method {
            "GET" => {
                let mut req = self.http.get(&url);
                if let Some(b) = &bearer {
                    req = req.header("Authorization", b);
                }
                req.call()
            }
            _ => {
                let mut req = self.http.post(&url);
                if let Some(b) = &bearer {
                    req = req.header("Authorization", b);
                }
                match body {
                    Some((media, text)) => req.header("Content-Type", media).send(text),
                    None => req.send_empty(),
                }
            }
        };
        let mut response = result.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        };
        let (authenticate, retry_after) = (header("www-authenticate"), header("retry-after"));
        let text = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .unwrap();
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"));
        Reply {
            status,
            body,
            authenticate,
            retry_after,
        }
    }

    /// A `GET` whose reply is text.
    fn text(&self, path: &str) -> (u16, String) {
        let mut r = self
            .http
            .get(format!("{}{path}", self.base))
            .call()
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    }

    fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call("GET", path, token, None)
    }

    fn post_json(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        let text = body.to_string();
        self.call("POST", path, token, Some(("application/json", &text)))
    }

    fn post_yaml(&self, path: &str, token: Option<&str>, yaml: &str) -> Reply {
        self.call("POST", path, token, Some(("application/yaml", yaml)))
    }

    /// Sends SIGTERM and waits (at most 20 s) for the exit code.
    fn terminate(mut self) -> Option<i32> {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: signalling the child this harness started and still owns.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `token create AGENT --role ROLE`: the secret, the last line of stdout.
pub(crate) fn token(t: &T, agent: &str, role: &str) -> String {
    let out = t.ok(&format!("token create {agent} --role {role}"));
    let secret = out.lines().last().unwrap_or("").to_string();
    assert!(looks_like_secret(&secret), "{out}");
    secret
}

/// The status of `agent` in the event JSON `event`.
pub(crate) fn answer_of(event: &Value, agent: &str) -> String {
    event["attendees"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent"] == agent)
        .map(|a| a["status"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

fn tokens_and_roles_decide_who_reads_answers_and_operates() {
    let t = T::new();
    t.ok("schedule review +15m --name rev --quorum 2 --attendees alice,bob,carol");
    let reader = token(&t, "watcher", "reader");
    let alice = token(&t, "alice", "agent");
    let operator = token(&t, "ops", "operator");
    let server = Server::start(&t, &[]);

    let health = server.get("/v1/health", None);
    assert_eq!((health.status, &health.body["status"]), (200, &json!("ok")));

    let none = server.get("/v1/events", None);
    assert_eq!((none.status, none.code()), (401, "t_minus::auth::missing"));
    assert!(none.authenticate.unwrap().starts_with("Bearer"));
    let forged = format!("tmt_{}", "0".repeat(64));
    let bad = server.get("/v1/events", Some(&forged));
    assert_eq!((bad.status, bad.code()), (401, "t_minus::auth::token"));

    let list = server.get("/v1/events", Some(&reader));
    assert_eq!(list.status, 200);
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    assert_eq!(list.body[0]["name"], "rev");

    // A reader reads but does not answer; an operator does not answer.
    let r = server.call("POST", "/v1/events/rev/confirm", Some(&reader), None);
    assert_eq!((r.status, r.code()), (403, "t_minus::auth::role"));
    let r = server.call("POST", "/v1/events/rev/confirm", Some(&operator), None);
    assert_eq!((r.status, r.code()), (403, "t_minus::auth::role"));
    // An agent answers as itself only.
    let r = server.post_json(
        "/v1/events/rev/confirm",
        Some(&alice),
        json!({"agent": "bob"}),
    );
    assert_eq!((r.status, r.code()), (403, "t_minus::auth::other_agent"));
    let r = server.call("POST", "/v1/events/rev/confirm", Some(&alice), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(answer_of(&r.body, "alice"), "confirmed");
    assert_eq!(r.body["confirmed"], 1);

    let inbox = server.get("/v1/inbox?all=true", Some(&alice));
    assert_eq!(inbox.body["agent"], "alice");
    assert_eq!(inbox.body["events"].as_array().unwrap().len(), 1);
    let log = server.get("/v1/events/rev/log", Some(&reader));
    let actions: Vec<&str> = log
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["scheduled", "confirmed"]);
    assert_eq!(server.get("/v1/verify", Some(&reader)).body["intact"], true);

    // An operator cancels; the store has every answer the server acknowledged.
    let r = server.post_json(
        "/v1/events/rev/cancel",
        Some(&operator),
        json!({"reason": "moved"}),
    );
    assert_eq!((r.status, &r.body["state"]), (200, &json!("cancelled")));
    let stored = t.json("status rev --json");
    assert_eq!(answer_of(&stored, "alice"), "confirmed");
    assert_eq!(stored["state"], "cancelled");

    // A revoked token is refused, and its use is in the (intact) log.
    let listed = t.json("token list --json");
    let reader_id = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["agent"] == "watcher")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    t.ok(&format!("token revoke {}", &reader_id[..8]));
    let r = server.get("/v1/events", Some(&reader));
    assert_eq!((r.status, r.code()), (401, "t_minus::auth::revoked"));
    assert!(t.ok("verify").contains("intact"));
    drop(server);
    let listing = t.ok("token list");
    assert!(listing.contains("revoked"), "{listing}");
    for secret in [&reader, &alice, &operator] {
        assert!(!listing.contains(secret.as_str()));
        assert!(!t.ok("token list --json").contains(secret.as_str()));
    }
    if stores::current() == stores::Backend::Sqlite {
        // Only the hash is stored: the secret is nowhere in the files.
        for name in [
            cli_support::DB.to_string(),
            format!("{}-wal", cli_support::DB),
        ] {
            if let Ok(bytes) = std::fs::read(t.dir().join(name)) {
                let text = String::from_utf8_lossy(&bytes);
                assert!(!text.contains(alice.as_str()));
            }
        }
    }
}

fn errors_have_the_status_and_code_of_the_cli() {
    let t = T::new();
    t.ok("schedule review +15m --name rev --attendees alice,bob");
    let alice = token(&t, "alice", "agent");
    let operator = token(&t, "ops", "operator");
    let server = Server::start(&t, &[]);

    let r = server.get("/v1/events/abcd1234", Some(&alice));
    assert_eq!((r.status, r.code()), (404, "t_minus::not_found::event"));
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("abcd1234"));
    let r = server.get("/v1/events/no%20such", Some(&alice));
    assert_eq!((r.status, r.code()), (400, "t_minus::input::reference"));
    let r = server.get("/v1/campaigns/nope", Some(&alice));
    assert_eq!((r.status, r.code()), (404, "t_minus::not_found::campaign"));
    let r = server.get("/v1/nothing", None);
    assert_eq!((r.status, r.code()), (404, "t_minus::http::not_found"));
    let r = server.get("/v1/apply", Some(&operator));
    assert_eq!((r.status, r.code()), (405, "t_minus::http::method"));
    let r = server.post_json("/v1/events/rev/defer", Some(&alice), json!({"by": "soon"}));
    assert_eq!((r.status, r.code()), (400, "t_minus::input::duration"));
    let r = server.call(
        "POST",
        "/v1/events/rev/defer",
        Some(&alice),
        Some(("application/json", "{\"by\":")),
    );
    assert_eq!((r.status, r.code()), (400, "t_minus::http::json"));
    let r = server.get("/v1/events?state=soon", Some(&alice));
    assert_eq!((r.status, r.code()), (400, "t_minus::http::query"));
    // Bodies over the route's limit: 64 KiB for answers.
    let big = json!({"reason": "x".repeat(70 * 1024)}).to_string();
    let r = server.call(
        "POST",
        "/v1/events/rev/decline",
        Some(&alice),
        Some(("application/json", &big)),
    );
    assert_eq!((r.status, r.code()), (413, "t_minus::http::too_large"));
    let r = server.call(
        "POST",
        "/v1/apply",
        Some(&operator),
        Some(("application/json", "{}")),
    );
    assert_eq!((r.status, r.code()), (415, "t_minus::http::media_type"));
    let r = server.post_yaml("/v1/apply", Some(&operator), "campaign: [\n");
    assert_eq!(r.status, 422);
    assert!(!r.body["error"]["problems"].as_array().unwrap().is_empty());
    // A final event refuses answers.
    assert_eq!(
        server
            .call("POST", "/v1/events/rev/cancel", Some(&operator), None)
            .status,
        200
    );
    let r = server.call("POST", "/v1/events/rev/confirm", Some(&alice), None);
    assert_eq!((r.status, r.code()), (409, "t_minus::refused::final_event"));
    // None of the refusals answered anything.
    let stored = t.json("status rev --json");
    assert_eq!(answer_of(&stored, "alice"), "pending");
}

fn the_openapi_document_lists_the_routes_and_describes_the_replies() {
    let t = T::new();
    t.ok("schedule review +15m --name rev --attendees alice");
    let reader = token(&t, "watcher", "reader");
    let server = Server::start(&t, &["--public-url", "https://tminus.example.com"]);
    let doc = server.get("/openapi.json", None).body;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], "https://tminus.example.com");
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/v1/health",
        "/v1/events",
        "/v1/events/{event}",
        "/v1/events/{event}/log",
        "/v1/events/{event}/signers",
        "/v1/events/{event}/confirm",
        "/v1/events/{event}/defer",
        "/v1/events/{event}/decline",
        "/v1/events/{event}/cancel",
        "/v1/campaigns/{campaign}",
        "/v1/inbox",
        "/v1/verify",
        "/v1/answers",
        "/v1/delegations",
        "/v1/delegations/{delegation}/revoke",
        "/v1/plan",
        "/v1/apply",
        "/metrics",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    // The replies match the schemas the document gives for them.
    let check = |path: &str, method: &str, reply: &Value| {
        let schema = doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]
            ["schema"]
            .clone();
        let mut root = schema;
        root["components"] = doc["components"].clone();
        let validator = jsonschema::validator_for(&root).expect("a valid schema");
        let errors: Vec<String> = validator
            .iter_errors(reply)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{method} {path}: {errors:?}\n{reply}");
    };
    check(
        "/v1/events",
        "get",
        &server.get("/v1/events", Some(&reader)).body,
    );
    check(
        "/v1/events/{event}",
        "get",
        &server.get("/v1/events/rev", Some(&reader)).body,
    );
    check("/v1/health", "get", &server.get("/v1/health", None).body);
    check(
        "/v1/delegations",
        "get",
        &server.get("/v1/delegations?all=true", Some(&reader)).body,
    );
    check(
        "/v1/verify",
        "get",
        &server.get("/v1/verify", Some(&reader)).body,
    );
    let error = server.get("/v1/events/abcd1234", Some(&reader)).body;
    let schema = doc["paths"]["/v1/events/{event}"]["get"]["responses"]["404"]["content"]
        ["application/json"]["schema"]
        .clone();
    let mut root = schema;
    root["components"] = doc["components"].clone();
    assert!(jsonschema::validator_for(&root).unwrap().is_valid(&error));
}

/// A manifest of campaign `name` whose event `step` has `notify` rules
/// `rules` (YAML flow text) and campaign-level `extra` lines.
fn manifest(name: &str, extra: &str, rules: &str) -> String {
    format!(
        "campaign: {name}\n{extra}events:\n  step:\n    at: +1h\n    attendees: [alice]\n{rules}"
    )
}

fn remote_apply_refuses_file_references_and_exec_hooks() {
    let t = T::new();
    let operator = token(&t, "ops", "operator");
    let agent = token(&t, "alice", "agent");
    let allowed = t.dir().join("hooks");
    std::fs::create_dir(&allowed).unwrap();
    let program = allowed.join("page.sh");
    std::fs::write(&program, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::write(t.dir().join("allowed_signers"), "alice ssh-ed25519 AAAA\n").unwrap();
    let server = Server::start(&t, &["--allow-exec", allowed.to_str().unwrap()]);

    let r = server.post_yaml("/v1/apply", Some(&agent), &manifest("a", "", ""));
    assert_eq!((r.status, r.code()), (403, "t_minus::auth::role"));
    let r = server.post_yaml(
        "/v1/apply",
        Some(&operator),
        &manifest("files", "signers: ./allowed_signers\n", ""),
    );
    assert_eq!(
        (r.status, r.code()),
        (422, "t_minus::remote::file_reference")
    );
    for program in ["./page.sh", "page.sh", "/bin/sh", "hooks/page.sh"] {
        let rules = format!("    notify: [{{on: [fired], exec: [\"{program}\"]}}]\n");
        let r = server.post_yaml("/v1/plan", Some(&operator), &manifest("hooks", "", &rules));
        assert_eq!(
            (r.status, r.code()),
            (422, "t_minus::remote::exec"),
            "{program}"
        );
    }
    let outside = format!("{}/../allowed_signers", allowed.display());
    let rules = format!("    notify: [{{on: [fired], exec: [\"{outside}\"]}}]\n");
    let r = server.post_yaml("/v1/apply", Some(&operator), &manifest("hooks", "", &rules));
    assert_eq!((r.status, r.code()), (422, "t_minus::remote::exec"));
    assert!(
        t.ok("campaign list").contains("No campaigns"),
        "nothing applied"
    );

    // A program under the allowed directory, by absolute path, is accepted;
    // so are webhooks and inline signers.
    let rules = format!(
        "    notify: [{{on: [fired], exec: [\"{}\"]}}, {{on: [missed], webhook: \"https://hooks.example.com/x\"}}]\n",
        program.display()
    );
    let r = server.post_yaml("/v1/plan", Some(&operator), &manifest("hooks", "", &rules));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["counts"]["add"], 2, "{}", r.body);
    let two = format!(
        "{}---\n{}",
        manifest("hooks", "", &rules),
        manifest("other", "", "")
    );
    let r = server.post_yaml("/v1/apply", Some(&operator), &two);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["report"]["counts"]["add"], 4, "{}", r.body);
    let stored = t.json("status hooks/step --json");
    assert_eq!(stored["state"], "pending");
    let r = server.get("/v1/campaigns/hooks", Some(&agent));
    assert_eq!((r.status, &r.body["name"]), (200, &json!("hooks")));
    let r = server.post_yaml("/v1/apply", Some(&operator), &two);
    assert_eq!(
        r.body["report"]["counts"]["add"], 0,
        "applying again changes nothing"
    );
}

fn a_signed_answer_needs_no_token() {
    use crate::trust::keygen;
    let t = T::new();
    let operator = token(&t, "ops", "operator");
    let keys = tempfile::tempdir().unwrap();
    let (alice_key, alice_pub) = keygen(keys.path(), "alice", "ed25519");
    let server = Server::start(&t, &[]);
    let yaml = format!(
        "campaign: release\nsigners:\n  alice: \"{alice_pub}\"\nevents:\n  deploy:\n    at: +1h\n    attendees: [alice]\n"
    );
    let r = server.post_yaml("/v1/apply", Some(&operator), &yaml);
    assert_eq!(r.status, 200, "{}", r.body);

    let clock = FixedClock::new(t.now().parse().unwrap());
    let engine = common::open_engine(&t.db_location(), &clock);
    let id = engine.resolve_event("release/deploy").unwrap();
    let message = engine
        .answer_message(
            id,
            &AgentId("alice".into()),
            t_minus::trust::Answer::Confirm,
        )
        .unwrap()
        .to_bytes();
    let signature = t_minus::trust::sign_with_key_file(&alice_key, &message)
        .unwrap()
        .to_armored();
    let message = String::from_utf8(message).unwrap();
    let body = json!({"message": message, "signature": signature});
    let r = server.post_json("/v1/answers", None, body.clone());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["state"], "fired");
    // The same message twice is refused: every signed answer is accepted once.
    let r = server.post_json("/v1/answers", None, body);
    assert_eq!(r.status, 409, "{}", r.body);
    // A tampered message is not.
    let tampered = json!({"message": message.replace("alice", "bob"), "signature": signature});
    let r = server.post_json("/v1/answers", None, tampered);
    assert!(
        matches!(r.status, 400 | 404 | 422),
        "{} {}",
        r.status,
        r.body
    );
    assert!(t.ok("verify").contains("1 signature"));
}

/// HTTPS with a certificate from `openssl`, and HTTP/2 in the clear with
/// `curl` as the client (the store does not matter: SQLite).
#[test]
#[cfg_attr(
    not(t_minus_test_tools),
    ignore = "needs openssl and curl: set T_MINUS_TEST_TOOLS=1"
)]
fn https_with_a_certificate_and_http2_in_the_clear() {
    let t = T::new();
    let dir = t.dir();
    let openssl = Command::new("openssl")
        .current_dir(dir)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .output()
        .expect("openssl makes the test certificate");
    assert!(
        openssl.status.success(),
        "{}",
        String::from_utf8_lossy(&openssl.stderr)
    );
    let mut cmd = t.command();
    cmd.env_remove("T_MINUS_NOW").args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        "cert.pem",
        "--tls-key",
        "key.pem",
    ]);
    let server = Server::spawn(cmd, &t);
    assert!(
        server.base.starts_with("https://127.0.0.1:"),
        "{}",
        server.base
    );
    let pem = std::fs::read(dir.join("cert.pem")).unwrap();
    let root = ureq::tls::Certificate::from_pem(&pem).unwrap();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&[root]))
        .build();
    let https: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut reply = https
        .get(format!("{}/v1/health", server.base))
        .call()
        .expect("an HTTPS reply");
    let body: Value = serde_json::from_str(&reply.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["status"], "ok");
    // Plain HTTP to the TLS port is not answered as HTTP.
    let plain = server.base.replace("https://", "http://");
    assert!(ureq::get(format!("{plain}/v1/health")).call().is_err());
    // An unusable key is refused at start-up.
    std::fs::write(dir.join("bad.pem"), "not a key").unwrap();
    let out = t.run("serve --listen 127.0.0.1:0 --tls-cert cert.pem --tls-key bad.pem");
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("t_minus::http::tls"), "{}", out.stderr);

    // HTTP/2 with prior knowledge on a plain server (curl is the client).
    let plain = Server::start(&t, &[]);
    let curl = Command::new("curl")
        .args(["-s", "-i", "--http2-prior-knowledge"])
        .arg(format!("{}/v1/health", plain.base))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&curl.stdout);
    assert!(text.starts_with("HTTP/2 200"), "{text}");
}

fn a_client_over_its_rate_gets_429_with_retry_after() {
    let t = T::new();
    let reader = token(&t, "watcher", "reader");
    let server = Server::start(&t, &["--rate-limit", "1"]);
    // Bursts of twice the rate, then 429s for this address...
    let statuses: Vec<u16> = (0..6)
        .map(|_| server.get("/v1/health", None).status)
        .collect();
    assert_eq!(&statuses[..2], [200, 200], "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    let r = server.get("/v1/health", None);
    assert_eq!((r.status, r.code()), (429, "t_minus::http::rate"));
    assert_eq!(r.retry_after.as_deref(), Some("1"));
    // ... while a token has an allowance of its own.
    assert_eq!(server.get("/v1/events", Some(&reader)).status, 200);
}

fn metrics_count_requests_answers_and_transitions() {
    let t = T::new();
    t.ok("schedule review +15m --name rev --quorum 1 --attendees alice,bob");
    let alice = token(&t, "alice", "agent");
    let server = Server::start(&t, &[]);
    let r = server.call("POST", "/v1/events/rev/confirm", Some(&alice), None);
    assert_eq!((r.status, &r.body["state"]), (200, &json!("fired")));
    assert_eq!(server.get("/v1/events/abcd1234", Some(&alice)).status, 404);
    // The runner reports the fire the answer caused.
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let (status, text) = server.text("/metrics");
        assert_eq!(status, 200);
        if text.contains("t_minus_transitions_total{action=\"fired\"} 1")
            || Instant::now() > deadline
        {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    for line in [
        "t_minus_transitions_total{action=\"fired\"} 1",
        "t_minus_answers_total{answer=\"confirm\"} 1",
        "t_minus_http_requests_total{method=\"POST\",route=\"/v1/events/{event}/confirm\",status=\"200\"} 1",
        "t_minus_http_requests_total{method=\"GET\",route=\"/v1/events/{event}\",status=\"404\"} 1",
        "t_minus_http_request_duration_seconds_count ",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    assert!(!text.contains(&alice), "no token in the metrics");
}

/// Opens `/v1/stream` (with `Last-Event-ID` when given): its lines.
fn open_stream(
    server: &Server,
    query: &str,
    token: &str,
    last_id: Option<&str>,
) -> impl Iterator<Item = String> {
    let mut req = server
        .http
        .get(format!("{}/v1/stream{query}", server.base))
        .header("Authorization", format!("Bearer {token}"));
    if let Some(id) = last_id {
        req = req.header("Last-Event-ID", id);
    }
    let response = req.call().expect("the stream opens");
    assert_eq!(response.status().as_u16(), 200);
    let kind = response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(kind, "text/event-stream");
    BufReader::new(response.into_body().into_reader())
        .lines()
        .map_while(|l| l.ok())
}

/// The next event of a stream: its id, name and data.
fn next_event(lines: &mut impl Iterator<Item = String>) -> (i64, String, Value) {
    let (mut id, mut name, mut data) = (None, None, None);
    for line in lines.by_ref() {
        if let Some(v) = line.strip_prefix("id: ") {
            id = Some(v.parse().unwrap());
        } else if let Some(v) = line.strip_prefix("event: ") {
            name = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("data: ") {
            data = Some(serde_json::from_str(v).unwrap());
        } else if line.is_empty() && data.is_some() {
            break;
        }
    }
    (
        id.expect("an id"),
        name.expect("a name"),
        data.expect("data"),
    )
}

fn the_stream_sends_each_entry_and_resumes_after_last_event_id() {
    let t = T::new();
    t.ok("schedule review +15m --name rev --quorum 2 --attendees alice,bob");
    t.ok("schedule review +15m --name other --attendees carol");
    let (alice, bob) = (token(&t, "alice", "agent"), token(&t, "bob", "agent"));
    let carol = token(&t, "carol", "agent");
    let server = Server::start(&t, &[]);
    let mut lines = open_stream(&server, "?event=rev", &alice, None);
    let confirm = |token: &str, event: &str| {
        let path = format!("/v1/events/{event}/confirm");
        assert_eq!(server.call("POST", &path, Some(token), None).status, 200);
    };
    confirm(&carol, "other"); // not this stream's event
    confirm(&alice, "rev");
    let (first, name, data) = next_event(&mut lines);
    assert_eq!(
        (name.as_str(), &data["agent"]),
        ("confirmed", &json!("alice"))
    );
    assert_eq!(data["seq"], first);
    confirm(&bob, "rev");
    let (second, name, data) = next_event(&mut lines);
    assert_eq!(
        (name.as_str(), &data["agent"]),
        ("confirmed", &json!("bob"))
    );
    // The quorum fired it in the same transaction, one entry later.
    let (_, name, _) = next_event(&mut lines);
    assert_eq!(name, "fired");
    assert!(second > first);
    drop(lines);
    // Resumed after the first answer: what came later, from the store.
    let mut resumed = open_stream(&server, "?event=rev", &alice, Some(&first.to_string()));
    let (id, name, data) = next_event(&mut resumed);
    assert_eq!(
        (id, name.as_str(), &data["agent"]),
        (second, "confirmed", &json!("bob"))
    );
    assert_eq!(next_event(&mut resumed).1, "fired");
    drop(resumed);
    let r = server.get("/v1/stream", None);
    assert_eq!((r.status, r.code()), (401, "t_minus::auth::missing"));
    let r = server.get("/v1/stream?campaign=nope", Some(&alice));
    assert_eq!((r.status, r.code()), (404, "t_minus::not_found::campaign"));
}

fn the_service_ticks_and_delivers_by_itself() {
    let t = T::new();
    let hooks = t.dir().join("hooks");
    std::fs::create_dir(&hooks).unwrap();
    let program = hooks.join("record.sh");
    std::fs::write(
        &program,
        "#!/bin/sh\ncat > \"$(dirname \"$0\")/delivered-$$.json\"\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let operator = token(&t, "ops", "operator");
    // The service's clock is an hour after the store's: the event is due.
    let later = "2025-06-06T15:50:00Z";
    let mut cmd = t.command();
    cmd.env_remove("T_MINUS_NOW").args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--clock-for-tests",
        t.now(),
        "--allow-exec",
        hooks.to_str().unwrap(),
    ]);
    let server = Server::spawn(cmd, &t);
    let rules = format!(
        "    notify: [{{on: [missed], exec: [\"{}\"]}}]\n",
        program.display()
    );
    let yaml = format!(
        "campaign: nightly\nevents:\n  step:\n    at: +30m\n    attendees: [alice]\n{rules}"
    );
    let r = server.post_yaml("/v1/apply", Some(&operator), &yaml);
    assert_eq!(r.status, 200, "{}", r.body);
    drop(server);
    let mut cmd = t.command();
    cmd.env_remove("T_MINUS_NOW").args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--clock-for-tests",
        later,
    ]);
    let _server = Server::spawn(cmd, &t);
    // Nobody runs `tick` or `run`: the service records the miss and runs
    // the hook.
    let deadline = Instant::now() + Duration::from_secs(20);
    let delivered = loop {
        let found: Vec<_> = std::fs::read_dir(&hooks)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("delivered-"))
            .collect();
        if let Some(file) = found.first() {
            let text = std::fs::read_to_string(file.path()).unwrap();
            if !text.is_empty() {
                break text;
            }
        }
        assert!(Instant::now() < deadline, "no delivery");
        std::thread::sleep(Duration::from_millis(50));
    };
    let payload: Value = serde_json::from_str(&delivered).unwrap();
    assert_eq!(payload["on"], "missed", "{payload}");
    assert_eq!(t.json("status nightly/step --json")["state"], "missed");
}

fn sigterm_stops_the_server_with_exit_code_0() {
    let t = T::new();
    let reader = token(&t, "watcher", "reader");
    let server = Server::start(&t, &[]);
    assert_eq!(server.get("/v1/health", None).status, 200);
    // An open stream does not hold the shutdown up: it ends.
    let lines = open_stream(&server, "", &reader, None);
    let started = Instant::now();
    let base = server.base.clone();
    assert_eq!(server.terminate(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(lines.count(), 0, "the stream ended");
    let addr = base.trim_start_matches("http://");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still listening"
    );
}

/// The clients of the load tests.
const CLIENTS: usize = 32;

/// The answers of the load tests.
const ANSWERS: usize = 200;

/// Events `{prefix}0`…, each attended by the `CLIENTS` agents and one who
/// never answers (none fires), and the agents' tokens; the answers of
/// client `i` are its confirmations of the first events, `ANSWERS` in all.
fn load_setup(t: &T, prefix: &str, tokens: &mut Vec<String>) -> Vec<Vec<String>> {
    let agents: Vec<String> = (0..CLIENTS).map(|i| format!("agent-{i:02}")).collect();
    let events = ANSWERS.div_ceil(CLIENTS);
    for e in 0..events {
        t.ok(&format!(
            "schedule review +1h --name {prefix}{e} --quorum all --attendees {},absent",
            agents.join(",")
        ));
    }
    if tokens.is_empty() {
        tokens.extend(agents.iter().map(|a| token(t, a, "agent")));
    }
    (0..CLIENTS)
        .map(|i| {
            let n = ANSWERS / CLIENTS + usize::from(i < ANSWERS % CLIENTS);
            (0..n).map(|e| format!("{prefix}{e}")).collect()
        })
        .collect()
}

/// What happened to each answer sent: `(event, agent)` acknowledged (`200`)
/// or not (no reply, or another status).
#[derive(Default)]
struct Sent {
    acknowledged: Vec<(String, String)>,
    unacknowledged: Vec<(String, String)>,
}

/// Sends every client's answers from its own thread (all at once), each
/// client one after the other; `acked` counts the acknowledgements as they
/// come.
fn send_answers(
    base: &str,
    tokens: &[String],
    answers: &[Vec<String>],
    acked: &Arc<AtomicUsize>,
) -> Vec<std::thread::JoinHandle<Sent>> {
    answers
        .iter()
        .enumerate()
        .map(|(i, events)| {
            let (base, token, events) = (base.to_string(), tokens[i].clone(), events.clone());
            let acked = acked.clone();
            std::thread::spawn(move || {
                let agent = format!("agent-{i:02}");
                let http: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(20)))
                    .build()
                    .into();
                let mut sent = Sent::default();
                for event in events {
                    let reply = http
                        .post(format!("{base}/v1/events/{event}/confirm"))
                        .header("Authorization", format!("Bearer {token}"))
                        .send_empty();
                    let ok = matches!(&reply, Ok(r) if r.status() == 200);
                    if ok {
                        acked.fetch_add(1, Ordering::SeqCst);
                        sent.acknowledged.push((event, agent.clone()));
                    } else {
                        sent.unacknowledged.push((event, agent.clone()));
                    }
                }
                sent
            })
        })
        .collect()
}

/// The answers in the store: `(event, agent)` confirmed, read through
/// `server` with `token`.
fn confirmed(server: &Server, token: &str, prefix: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for e in 0..ANSWERS.div_ceil(CLIENTS) {
        let name = format!("{prefix}{e}");
        let reply = server.get(&format!("/v1/events/{name}"), Some(token));
        assert_eq!(reply.status, 200, "{}", reply.body);
        for a in reply.body["attendees"].as_array().unwrap() {
            if a["status"] == "confirmed" {
                found.push((name.clone(), a["agent"].as_str().unwrap().to_string()));
            }
        }
    }
    found.sort();
    found
}

fn answers_from_32_concurrent_clients_are_all_recorded() {
    let t = T::new();
    let mut tokens = Vec::new();
    let answers = load_setup(&t, "load", &mut tokens);
    let reader = token(&t, "watcher", "reader");
    let server = Server::start(&t, &[]);
    let acked = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let sent: Vec<Sent> = send_answers(&server.base, &tokens, &answers, &acked)
        .into_iter()
        .map(|th| th.join().unwrap())
        .collect();
    let took = started.elapsed();
    let mut acknowledged: Vec<_> = sent.iter().flat_map(|s| s.acknowledged.clone()).collect();
    acknowledged.sort();
    assert_eq!(acknowledged.len(), ANSWERS, "every answer is acknowledged");
    assert_eq!(
        confirmed(&server, &reader, "load"),
        acknowledged,
        "none lost"
    );
    // Every answer has its one log entry, and the chain holds.
    let counted = server.get("/v1/verify", Some(&reader));
    assert_eq!(counted.status, 200, "{}", counted.body);
    let log = t.json("log load0 --json");
    let answered = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "confirmed")
        .count();
    assert_eq!(answered, CLIENTS);
    eprintln!("{ANSWERS} answers from {CLIENTS} clients in {took:?}");
}

fn kill_9_loses_no_acknowledged_answer() {
    let t = T::new();
    let mut tokens = Vec::new();
    let answers = load_setup(&t, "crash", &mut tokens);
    let reader = token(&t, "watcher", "reader");
    let server = Server::start(&t, &[]);
    let acked = Arc::new(AtomicUsize::new(0));
    let threads = send_answers(&server.base, &tokens, &answers, &acked);
    // Killed in the middle: half the answers acknowledged, others in flight.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.load(Ordering::SeqCst) < ANSWERS / 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    server.kill();
    let sent: Vec<Sent> = threads.into_iter().map(|th| th.join().unwrap()).collect();
    let acknowledged: Vec<_> = sent.iter().flat_map(|s| s.acknowledged.clone()).collect();
    let unacknowledged: Vec<_> = sent.iter().flat_map(|s| s.unacknowledged.clone()).collect();
    assert!(acknowledged.len() >= ANSWERS / 2, "{}", acknowledged.len());
    assert!(!unacknowledged.is_empty(), "killed before the last answer");

    // After a restart every acknowledged answer is there.
    let server = Server::start(&t, &[]);
    let stored = confirmed(&server, &reader, "crash");
    for answer in &acknowledged {
        assert!(stored.contains(answer), "{answer:?} was acknowledged");
    }
    // The clients send again what was not acknowledged; then all are there.
    let mut again: Vec<Vec<String>> = vec![Vec::new(); CLIENTS];
    for (event, agent) in &unacknowledged {
        let i: usize = agent.trim_start_matches("agent-").parse().unwrap();
        again[i].push(event.clone());
    }
    let resent = Arc::new(AtomicUsize::new(0));
    for th in send_answers(&server.base, &tokens, &again, &resent) {
        assert!(th.join().unwrap().unacknowledged.is_empty());
    }
    assert_eq!(confirmed(&server, &reader, "crash").len(), ANSWERS);
    assert!(t.ok("verify").contains("intact"));
}

/// Answers that arrive together (written in one transaction on SQLite):
/// each accepted one is acknowledged with the event and has its own log
/// entry; each refused one gets its own error and leaves nothing.
fn concurrent_answers_each_get_their_own_reply_and_entry() {
    let t = T::new();
    let agents: Vec<String> = (0..16).map(|i| format!("agent-{i}")).collect();
    // `late` never answers: the event stays open, so every refusal is the
    // strangers' own.
    t.ok(&format!(
        "schedule review +1h --name rev --quorum all --attendees {},late",
        agents.join(",")
    ));
    // Four strangers (not attendees) answer among them.
    let strangers: Vec<String> = (0..4).map(|i| format!("stranger-{i}")).collect();
    let callers: Vec<(String, String)> = agents
        .iter()
        .chain(&strangers)
        .map(|a| (a.clone(), token(&t, a, "agent")))
        .collect();
    let server = Server::start(&t, &[]);
    let start = Arc::new(std::sync::Barrier::new(callers.len()));
    let threads: Vec<_> = callers
        .into_iter()
        .map(|(agent, token)| {
            let (base, start) = (server.base.clone(), start.clone());
            std::thread::spawn(move || {
                let http: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(30)))
                    .build()
                    .into();
                start.wait();
                let mut reply = http
                    .post(format!("{base}/v1/events/rev/confirm"))
                    .header("Authorization", format!("Bearer {token}"))
                    .send_empty()
                    .unwrap();
                let status = reply.status().as_u16();
                let body: Value =
                    serde_json::from_str(&reply.body_mut().read_to_string().unwrap()).unwrap();
                (agent, status, body)
            })
        })
        .collect();
    for th in threads {
        let (agent, status, body) = th.join().unwrap();
        if agent.starts_with("stranger") {
            assert_eq!(status, 409, "{agent}: {body}");
            assert_eq!(body["error"]["code"], "t_minus::refused::not_attendee");
        } else {
            assert_eq!(status, 200, "{agent}: {body}");
            assert_eq!(answer_of(&body, &agent), "confirmed", "{body}");
        }
    }
    let log = t.json("log rev --json");
    let confirmed: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "confirmed")
        .map(|e| e["agent"].as_str().unwrap())
        .collect();
    assert_eq!(confirmed.len(), 16, "{log}");
    for agent in &agents {
        assert!(confirmed.contains(&agent.as_str()), "{agent}: {log}");
    }
    assert!(!log.to_string().contains("stranger"), "{log}");
    let stored = t.json("status rev --json");
    for agent in &agents {
        assert_eq!(answer_of(&stored, agent), "confirmed", "{stored}");
    }
    assert!(t.ok("verify").contains("intact"));
}

fn tokens_are_hashed_checked_and_audited() {
    let (mut engine, clock) = common::engine();
    let alice = AgentId("alice".into());
    let new = engine
        .create_token(&alice, Role::Agent, Some(chrono::Duration::hours(1)))
        .unwrap();
    assert!(looks_like_secret(&new.secret));
    assert_eq!(
        new.token.expires_at,
        Some(t0() + chrono::Duration::hours(1))
    );
    assert_eq!(engine.tokens().unwrap(), vec![new.token.clone()]);
    assert_eq!(engine.authenticate(&new.secret).unwrap(), new.token);
    let code = |e: TMinusError| {
        use miette::Diagnostic;
        e.code().unwrap().to_string()
    };
    let wrong = format!("tmt_{}", "1".repeat(64));
    assert_eq!(
        code(engine.authenticate(&wrong).unwrap_err()),
        "t_minus::auth::token"
    );

    // Expired an hour later, and the refusal is logged.
    clock.advance(chrono::Duration::hours(1));
    assert_eq!(
        code(engine.authenticate(&new.secret).unwrap_err()),
        "t_minus::auth::expired"
    );
    clock.set(t0());
    let prefix = &new.token.id.to_string()[..6];
    let revoked = engine.revoke_token(prefix).unwrap();
    assert_eq!(revoked.revoked_at, Some(t0()));
    assert_eq!(
        code(engine.revoke_token(prefix).unwrap_err()),
        "t_minus::refused::token_revoked"
    );
    assert_eq!(
        code(engine.authenticate(&new.secret).unwrap_err()),
        "t_minus::auth::revoked"
    );
    assert_eq!(
        code(engine.revoke_token("ffff").unwrap_err()),
        "t_minus::not_found::token"
    );
    let actions: Vec<AuditAction> = engine
        .log(new.token.id)
        .unwrap()
        .iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            AuditAction::TokenCreated,
            AuditAction::TokenRefused,
            AuditAction::TokenRevoked,
            AuditAction::TokenRefused,
        ]
    );
    let entries = engine.log(new.token.id).unwrap();
    assert!(entries.iter().all(|e| e.agent.as_ref() == Some(&alice)));
    assert!(
        !serde_json::to_string(&entries.iter().map(|e| &e.detail).collect::<Vec<_>>())
            .unwrap()
            .contains(&new.secret)
    );
    let verified = engine.verify_log(None).unwrap();
    assert_eq!(verified.entries, 4);
    assert!(matches!(
        engine.create_token(&AgentId("".into()), Role::Reader, None),
        Err(TMinusError::InvalidAgentId { .. })
    ));
}

/// Break-glass over HTTP: the listed agent's own token; the requester of a
/// manifest applied over HTTP is the token's agent.
fn breakglass_and_the_requester_over_http() {
    let t = T::new();
    t.ok("schedule deploy +30m --name dep --attendees ops-1 --breakglass oncall");
    let oncall = token(&t, "oncall", "agent");
    let ops = token(&t, "ops-1", "agent");
    let operator = token(&t, "ops", "operator");
    let server = Server::start(&t, &[]);
    let r = server.post_json(
        "/v1/events/dep/breakglass",
        Some(&ops),
        json!({"reason": "x"}),
    );
    assert_eq!(
        (r.status, r.code()),
        (409, "t_minus::refused::breakglass"),
        "{}",
        r.body
    );
    let r = server.post_json(
        "/v1/events/dep/breakglass",
        Some(&operator),
        json!({"reason": "x"}),
    );
    assert_eq!(
        (r.status, r.code()),
        (403, "t_minus::auth::role"),
        "{}",
        r.body
    );
    let r = server.post_json(
        "/v1/events/dep/breakglass",
        Some(&ops),
        json!({"reason": "x", "agent": "oncall"}),
    );
    assert_eq!(
        (r.status, r.code()),
        (403, "t_minus::auth::other_agent"),
        "{}",
        r.body
    );
    let r = server.post_json(
        "/v1/events/dep/breakglass",
        Some(&oncall),
        json!({"reason": ""}),
    );
    assert_eq!(r.code(), "t_minus::input::breakglass_reason", "{}", r.body);
    let r = server.post_json(
        "/v1/events/dep/breakglass",
        Some(&oncall),
        json!({"reason": "sev1"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["state"], "fired");
    assert_eq!(r.body["broken"]["by"], "oncall");
    assert_eq!(
        server.get("/v1/verify", Some(&operator)).body["breakglass"],
        1
    );

    // The operator applying a manifest is its requester.
    let four_eyes = "campaign: fe\nevents:\n  step:\n    at: +1h\n    four_eyes: true\n    attendees: [alice, bob]\n    quorum: 1\n";
    let r = server.post_yaml("/v1/apply", Some(&operator), four_eyes);
    assert_eq!(r.status, 200, "{}", r.body);
    let event = server.get("/v1/events/fe%2Fstep", Some(&operator));
    assert_eq!(event.body["organizer"], "ops", "{}", event.body);
    let other =
        "campaign: fe2\nrequested_by: alice\nevents:\n  step:\n    at: +1h\n    attendees: [bob]\n";
    let r = server.post_yaml("/v1/apply", Some(&operator), other);
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body
            .to_string()
            .contains("t_minus::manifest::requested_by"),
        "{}",
        r.body
    );
}

/// Delegations over HTTP: an agent token makes, lists and revokes
/// delegations of its own answers (refused for another agent's, for an
/// operator's token, and with the codes of the command line); the delegate
/// answers for it with `for`, and the event shows who answered for whom.
fn delegations_over_http() {
    let t = T::new();
    t.ok("schedule review +30m --name rev --attendees alice,bob --quorum 2");
    let alice = token(&t, "alice", "agent");
    let erin = token(&t, "erin", "agent");
    let reader = token(&t, "watch", "reader");
    let operator = token(&t, "ops", "operator");
    let server = Server::start(&t, &[]);
    let delegate =
        |token: &str, body: Value| server.post_json("/v1/delegations", Some(token), body);

    let r = delegate(&erin, json!({"from": "alice", "to": "erin"}));
    assert_eq!(
        (r.status, r.code()),
        (403, "t_minus::auth::other_agent"),
        "{}",
        r.body
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("may not make or revoke delegations of alice's answers"),
        "{}",
        r.body
    );
    let r = delegate(&operator, json!({"to": "erin"}));
    assert_eq!(
        (r.status, r.code()),
        (403, "t_minus::auth::role"),
        "{}",
        r.body
    );
    let r = delegate(&alice, json!({"to": "alice"}));
    assert_eq!(
        (r.status, r.code()),
        (400, "t_minus::input::delegation"),
        "{}",
        r.body
    );
    let r = delegate(&alice, json!({"to": "erin", "campaign": "nope"}));
    assert_eq!(
        (r.status, r.code()),
        (404, "t_minus::not_found::campaign"),
        "{}",
        r.body
    );
    let r = delegate(
        &alice,
        json!({"to": "erin", "until": "2020-01-01T00:00:00Z"}),
    );
    assert_eq!(
        (r.status, r.code()),
        (400, "t_minus::input::delegation_until"),
        "{}",
        r.body
    );
    let r = server.call("POST", "/v1/delegations", Some(&alice), None);
    assert_eq!(
        (r.status, r.code()),
        (400, "t_minus::http::json"),
        "{}",
        r.body
    );
    let r = delegate(&alice, json!({"to": "erin", "message": "x"}));
    assert_eq!(
        (r.status, r.code()),
        (400, "t_minus::http::json"),
        "{}",
        r.body
    );
    // Nothing was made by the refusals.
    assert_eq!(
        server.get("/v1/delegations?all=true", Some(&reader)).body,
        json!([])
    );

    let r = delegate(&alice, json!({"to": "erin", "until": "+1h"}));
    assert_eq!(r.status, 200, "{}", r.body);
    let made = r.body;
    assert_eq!(
        (
            &made["from"],
            &made["to"],
            &made["state"],
            &made["signed"],
            &made["campaign"]
        ),
        (
            &json!("alice"),
            &json!("erin"),
            &json!("active"),
            &json!(false),
            &Value::Null
        )
    );
    assert_eq!(made["until"], "2025-06-06T15:50:00Z");
    let id = made["id"].as_str().unwrap().to_string();
    let listed = server.get("/v1/delegations", Some(&reader));
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body, json!([made.clone()]));

    // erin answers for alice; the event says who answered for whom.
    let r = server.post_json(
        "/v1/events/rev/confirm",
        Some(&erin),
        json!({"for": "alice"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(answer_of(&r.body, "alice"), "confirmed");
    let event = server.get("/v1/events/rev", Some(&reader)).body;
    let alice_row = &event["attendees"][0];
    assert_eq!(
        (&alice_row["agent"], &alice_row["answered_by"]),
        (&json!("alice"), &json!("erin")),
        "{event}"
    );
    assert!(
        event["attendees"][1].get("answered_by").is_none(),
        "{event}"
    );

    // Revoking: alice's own only, by id or prefix, once.
    let revoke = |token: &str, reference: &str| {
        server.call(
            "POST",
            &format!("/v1/delegations/{reference}/revoke"),
            Some(token),
            None,
        )
    };
    let r = revoke(&erin, &id);
    assert_eq!(
        (r.status, r.code()),
        (403, "t_minus::auth::other_agent"),
        "{}",
        r.body
    );
    let r = revoke(&alice, "ffffffff");
    assert_eq!(
        (r.status, r.code()),
        (404, "t_minus::not_found::delegation"),
        "{}",
        r.body
    );
    let r = revoke(&alice, &id[..8]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["state"], "revoked");
    assert_eq!(r.body["revoked_at"], json!(t.now()));
    let r = revoke(&alice, &id);
    assert_eq!(
        (r.status, r.code()),
        (409, "t_minus::refused::delegation_revoked"),
        "{}",
        r.body
    );
    assert_eq!(server.get("/v1/delegations", Some(&reader)).body, json!([]));
    let all = server.get("/v1/delegations?all=true", Some(&reader)).body;
    assert_eq!(all[0]["state"], "revoked", "{all}");
    let r = server.post_json(
        "/v1/events/rev/decline",
        Some(&erin),
        json!({"for": "alice"}),
    );
    assert_eq!(
        (r.status, r.code()),
        (409, "t_minus::refused::no_delegation"),
        "{}",
        r.body
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{}",
        r.body
    );

    // The log has both, by alice; verify explains it.
    let v = server.get("/v1/verify", Some(&reader)).body;
    assert_eq!(v["intact"], true, "{v}");
}

/// Where alice's answers must be signed, her delegation over HTTP is the
/// `t-minus delegation v1` message she signed: accepted from her token
/// only, refused with a signature by another key; carol's signed answer
/// for alice then counts.
fn a_signed_delegation_over_http() {
    use crate::trust::{key, Keys};
    use t_minus::trust::grant::DelegationMessage;
    let t = T::new();
    let keys = Keys::new();
    std::fs::write(
        t.dir().join("release.yaml"),
        format!(
            "campaign: release\nsigners:\n  alice: \"{}\"\n  bob: \"{}\"\n  carol: \"{}\"\nevents:\n  deploy:\n    at: +1h\n    quorum: 2\n    attendees: [alice, bob]\n",
            keys.alice.1, keys.bob.1, keys.carol.1
        ),
    )
    .unwrap();
    t.ok("apply release.yaml");
    let campaign: uuid::Uuid = t.json("campaign show release --json")["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let alice = token(&t, "alice", "agent");
    let bob = token(&t, "bob", "agent");
    let server = Server::start(&t, &[]);
    let message = DelegationMessage {
        from: AgentId("alice".into()),
        to: AgentId("carol".into()),
        campaign: Some(campaign),
        until: None,
        time: t0(),
        nonce: uuid::Uuid::new_v4(),
    };
    let bytes = message.to_bytes();
    let signed_by = |path: &std::path::Path| {
        let sig = key(path)
            .sign(
                &t_minus::trust::Signers::default(),
                &message.from,
                &bytes,
                t0(),
            )
            .unwrap();
        json!({"message": message.render(), "signature": sig.to_armored()})
    };
    let r = server.post_json("/v1/delegations", Some(&bob), signed_by(&keys.alice.0));
    assert_eq!(
        (r.status, r.code()),
        (403, "t_minus::auth::other_agent"),
        "{}",
        r.body
    );
    let r = server.post_json("/v1/delegations", Some(&alice), signed_by(&keys.bob.0));
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.code().starts_with("t_minus::trust::"), "{}", r.body);
    let r = server.post_json("/v1/delegations", Some(&alice), signed_by(&keys.alice.0));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (&r.body["signed"], &r.body["campaign"]),
        (&json!(true), &json!("release"))
    );
    // Once only: the nonce is spent.
    let r = server.post_json("/v1/delegations", Some(&alice), signed_by(&keys.alice.0));
    assert_eq!(
        (r.status, r.code()),
        (409, "t_minus::trust::nonce"),
        "{}",
        r.body
    );

    // carol's signed answer for alice, through the client.
    let carol = token(&t, "carol", "agent");
    let mut cmd = cli_support::command(&server.base, cli_support::Clock::Pinned(t.now()));
    cmd.env("T_MINUS_TOKEN", &carol)
        .args(cli_support::split(&format!(
            "confirm release/deploy carol --for alice --sign {}",
            keys.carol.0.display()
        )));
    let out = cli_support::output(cmd);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let event = t.event("release/deploy");
    assert_eq!(answer_of(&event, "alice"), "confirmed");
    assert!(t.ok("verify").contains("1 signature"));
}

cli_support::store_tests!(
    delegations_over_http,
    a_signed_delegation_over_http,
    breakglass_and_the_requester_over_http,
    tokens_and_roles_decide_who_reads_answers_and_operates,
    errors_have_the_status_and_code_of_the_cli,
    the_openapi_document_lists_the_routes_and_describes_the_replies,
    remote_apply_refuses_file_references_and_exec_hooks,
    a_signed_answer_needs_no_token,
    sigterm_stops_the_server_with_exit_code_0,
    a_client_over_its_rate_gets_429_with_retry_after,
    metrics_count_requests_answers_and_transitions,
    the_stream_sends_each_entry_and_resumes_after_last_event_id,
    the_service_ticks_and_delivers_by_itself,
    answers_from_32_concurrent_clients_are_all_recorded,
    kill_9_loses_no_acknowledged_answer,
    concurrent_answers_each_get_their_own_reply_and_entry,
    tokens_are_hashed_checked_and_audited,
);
