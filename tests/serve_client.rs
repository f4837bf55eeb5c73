//! The command line as a client of `t-minus serve` (`--db http://…` with
//! `T_MINUS_TOKEN`): answers land in the service's store, reads print what
//! the local command prints on the same store (text and `--json`), the
//! service's refusals keep their code, manifests go out with their
//! `signers:` files inlined, and the client never creates a store.
//!
//! Every test runs on SQLite and on PostgreSQL.

use std::path::Path;

use serde_json::Value;

use crate::cli_support::{self, output, split, Clock, Out, T};
use crate::serve::{answer_of, token, Server};

/// A `t-minus` client of `server` with `token`, run in a directory of its
/// own (which must stay empty: the client creates no store).
struct Client {
    base: String,
    token: String,
    now: String,
    dir: tempfile::TempDir,
}

impl Client {
    fn new(server: &Server, t: &T, token: &str) -> Client {
        Client {
            base: server.base.clone(),
            token: token.to_string(),
            now: t.now().to_string(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, line: &str) -> Out {
        let mut cmd = cli_support::command(&self.base, Clock::Pinned(&self.now));
        cmd.current_dir(self.dir.path())
            .env("T_MINUS_TOKEN", &self.token)
            .args(split(line));
        output(cmd)
    }

    /// Starts a command in the background, its output piped.
    fn spawn(&self, line: &str) -> std::process::Child {
        let mut cmd = cli_support::command(&self.base, Clock::Pinned(&self.now));
        cmd.current_dir(self.dir.path())
            .env("T_MINUS_TOKEN", &self.token)
            .args(split(line))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd.spawn().unwrap()
    }

    #[track_caller]
    fn ok(&self, line: &str) -> String {
        let out = self.run(line);
        assert_eq!(
            out.code, 0,
            "client `{line}` failed\nstdout:\n{}\nstderr:\n{}",
            out.stdout, out.stderr
        );
        out.stdout
    }

    #[track_caller]
    fn json(&self, line: &str) -> Value {
        serde_json::from_str(&self.ok(line)).unwrap()
    }

    /// Runs a command that must fail with exit 1; returns its output.
    #[track_caller]
    fn fail(&self, line: &str) -> Out {
        let out = self.run(line);
        assert_eq!(
            out.code, 1,
            "client `{line}` should exit 1\nstdout:\n{}\nstderr:\n{}",
            out.stdout, out.stderr
        );
        out
    }

    /// Runs a command that must fail with exit 1 and name the error `code`
    /// on stderr; returns its output.
    #[track_caller]
    fn fail_with(&self, line: &str, code: &str) -> Out {
        let out = self.fail(line);
        assert!(out.stderr.contains(code), "{}", out.stderr);
        out
    }

    /// Asserts that the client's directory is still empty.
    #[track_caller]
    fn assert_no_files(&self) {
        assert_empty(self.dir.path());
    }
}

#[track_caller]
fn assert_empty(dir: &Path) {
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(files.is_empty(), "the client created {files:?}");
}

fn answers_through_the_client_land_in_the_store() {
    let t = T::new();
    let id = t.schedule("review +15m --name rev --quorum 2 --attendees alice,bob,carol");
    let short = &id[..8];
    let (alice, bob, carol) = (
        token(&t, "alice", "agent"),
        token(&t, "bob", "agent"),
        token(&t, "carol", "agent"),
    );
    let server = Server::start(&t, &[]);
    let a = Client::new(&server, &t, &alice);
    let b = Client::new(&server, &t, &bob);
    let c = Client::new(&server, &t, &carol);

    assert_eq!(
        a.ok("confirm rev alice"),
        format!("✅ alice confirmed rev [{short}] (quorum 1/2)\n")
    );
    let deferred = b.ok("defer rev bob 5m");
    assert!(
        deferred.starts_with(&format!(
            "⏳ bob deferred rev [{short}] by 5m; confirmations now due by "
        )),
        "{deferred}"
    );
    assert_eq!(
        c.ok("decline rev carol --reason busy"),
        format!("🚫 carol declined rev [{short}] (quorum 1/2)\n")
    );
    // The reply of --json is the event, as the local command prints it.
    let event = b.json("confirm rev bob --json");
    assert_eq!(event["state"], "fired");
    let mut local = t.event("rev");
    local.as_object_mut().unwrap().remove("notifications");
    assert_eq!(event, local);

    let stored = t.event("rev");
    assert_eq!(answer_of(&stored, "alice"), "confirmed");
    assert_eq!(answer_of(&stored, "bob"), "confirmed");
    assert_eq!(answer_of(&stored, "carol"), "declined");
    let log = t.ok("log rev");
    assert!(log.contains("by carol") && log.contains("busy"), "{log}");
    for client in [&a, &b, &c] {
        client.assert_no_files();
    }
}

fn reads_through_the_client_print_what_the_local_command_prints() {
    let t = T::new();
    t.ok("schedule review +15m --name rev --quorum 2 --attendees alice,bob,carol");
    t.ok("schedule deploy +1h --attendees alice --payload '{\"v\": 2}'");
    t.ok("campaign create rel");
    t.ok("campaign add rel build +10m --attendees alice");
    t.ok("campaign add rel ship +20m --needs build --attendees bob,alice");
    t.ok("confirm rev alice");
    t.ok("defer rev bob 5m");
    t.ok("delegate carol dave");
    t.ok("decline rev dave --for carol");
    assert!(t.ok("status rev").contains("dave for carol declined"));
    let alice = token(&t, "alice", "agent");
    let server = Server::start(&t, &[]);
    let a = Client::new(&server, &t, &alice);

    for line in [
        "status",
        "status --all",
        "status rev",
        "status rel/build",
        "status rel/ship",
        "status rel",
        "log rev",
        "log rel/ship",
        "verify",
        "inbox alice",
        "inbox alice --all",
        "status --json",
        "status --all --json",
        "status rel --json",
        "log rev --json",
        "verify --json",
        "inbox alice --json",
        "inbox alice --all --json",
    ] {
        assert_eq!(a.ok(line), t.ok(line), "`{line}` through the service");
    }
    // `status EVENT --json` is the event; the service does not list its
    // notifications.
    let mut local = t.json("status rel/ship --json");
    local.as_object_mut().unwrap().remove("notifications");
    assert_eq!(a.json("status rel/ship --json"), local);
    a.assert_no_files();
}

fn the_services_refusals_keep_their_code() {
    let t = T::new();
    t.ok("schedule review +15m --name rev --attendees alice,bob");
    let alice = token(&t, "alice", "agent");
    let reader = token(&t, "watcher", "reader");
    let server = Server::start(&t, &[]);
    let a = Client::new(&server, &t, &alice);

    // Another agent than the token's.
    let out = a.fail_with("confirm rev bob", "t_minus::auth::other_agent");
    assert_eq!(out.stdout, "");
    let out = a.fail("defer rev bob 5m --json");
    let error: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(error["error"]["code"], "t_minus::auth::other_agent");
    a.fail_with("inbox bob", "t_minus::auth::other_agent");
    assert_eq!(answer_of(&t.event("rev"), "bob"), "pending");

    // The service's errors, with their codes.
    let out = a.fail_with("confirm abcd1234 alice", "t_minus::not_found::event");
    assert!(out.stderr.contains("abcd1234"));
    let out = a.fail("defer rev alice soon --json");
    let error: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(error["error"]["code"], "t_minus::input::duration");
    let r = Client::new(&server, &t, &reader);
    r.fail_with("confirm rev watcher", "t_minus::auth::role");
    r.fail_with("cancel rev", "t_minus::auth::role");
    let forged = Client::new(&server, &t, &format!("tmt_{}", "0".repeat(64)));
    forged.fail_with("status", "t_minus::auth::token");
    assert_eq!(t.event("rev")["state"], "pending");
    for client in [&a, &r, &forged] {
        client.assert_no_files();
    }
}

fn an_operator_plans_applies_and_cancels_with_signers_inlined() {
    use crate::trust::keygen;
    let t = T::new();
    t.ok("schedule standup +1h --name standup --attendees carol");
    let operator = token(&t, "ops", "operator");
    let keys = tempfile::tempdir().unwrap();
    let (_, alice_pub) = keygen(keys.path(), "alice", "ed25519");
    let (_, bob_pub) = keygen(keys.path(), "bob", "ed25519");
    let manifests = tempfile::tempdir().unwrap();
    std::fs::write(
        manifests.path().join("allowed_signers"),
        format!("# the release's signers\nalice {alice_pub}\nbob {bob_pub}\n"),
    )
    .unwrap();
    let yaml = "campaign: release\nsigners: ./allowed_signers\nevents:\n  deploy:\n    at: +1h\n    quorum: 2\n    attendees: [alice, bob]\n";
    let manifest = manifests.path().join("release.yaml");
    std::fs::write(&manifest, yaml).unwrap();
    let server = Server::start(&t, &[]);
    let ops = Client::new(&server, &t, &operator);
    let path = manifest.display();

    // The plan is the local command's.
    assert_eq!(
        ops.ok(&format!("plan {path}")),
        t.ok(&format!("plan {path}"))
    );
    let code = ops.run(&format!("plan {path} --detailed-exitcode")).code;
    assert_eq!(code, 2, "changes to make");
    let applied = ops.ok(&format!("apply {path}"));
    assert!(
        applied.ends_with("Apply complete: 2 added, 0 changed, 0 destroyed.\n"),
        "{applied}"
    );
    // The keys of the file were applied: the event's answers must be signed.
    let alice = token(&t, "alice", "agent");
    Client::new(&server, &t, &alice)
        .fail_with("confirm release/deploy alice", "t_minus::trust::unsigned");
    let again = ops.json(&format!("apply {path} --json"));
    assert_eq!(again["report"]["counts"]["add"], 0, "{again}");
    assert_eq!(
        ops.ok(&format!("plan {path} --json")),
        t.ok(&format!("plan {path} --json"))
    );

    // A signers file an inline map cannot hold is refused before sending.
    std::fs::write(
        manifests.path().join("allowed_signers"),
        format!("alice,bob {alice_pub}\nalice {bob_pub}\n"),
    )
    .unwrap();
    ops.fail_with(&format!("plan {path}"), "t_minus::client::signers");

    // An event whose answers are signed is cancelled by a signed cancel:
    // the service's refusal, with its code.
    ops.fail_with(
        "cancel release/deploy --reason moved",
        "t_minus::trust::unsigned_cancel",
    );
    let cancelled = ops.ok("cancel standup --reason moved");
    let id = t.event("standup")["id"].as_str().unwrap().to_string();
    assert_eq!(cancelled, format!("🛑 Cancelled standup [{}]\n", &id[..8]));
    assert_eq!(t.event("standup")["state"], "cancelled");
    ops.assert_no_files();
}

fn signed_answers_are_signed_here_and_posted_to_answers() {
    use crate::trust::{apply_signed_release, ssh_keygen_sign, Keys};
    let t = T::new();
    let keys = Keys::new();
    apply_signed_release(&t, &keys);
    let alice = token(&t, "alice", "agent");
    let server = Server::start(&t, &[]);
    let a = Client::new(&server, &t, &alice);
    let id = t.event("release/deploy")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let short = &id[..8];

    // confirm --sign: the message is made and signed here.
    let out = a.ok(&format!(
        "confirm release/deploy alice --sign {}",
        keys.alice.0.display()
    ));
    assert_eq!(
        out,
        format!("✅ alice confirmed release/deploy [{short}] (quorum 1/2)\n")
    );
    // answer-message through the service, signed elsewhere, submitted.
    let message = a.ok("answer-message release/deploy bob confirm");
    assert!(message.contains("bob"), "{message}");
    let digest = t.event("release/deploy")["content_digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains(&digest), "bound to the digest: {message}");
    let file = keys.dir.path().join("answer.txt");
    std::fs::write(&file, &message).unwrap();
    let sig = keys.dir.path().join("answer.sig");
    std::fs::write(&sig, ssh_keygen_sign(&keys.bob.0, "t-minus", &file)).unwrap();
    let out = a.ok(&format!("submit {} {}", file.display(), sig.display()));
    assert!(
        out.starts_with(&format!(
            "✅ bob confirmed release/deploy [{short}] (quorum 2/2)\n"
        )),
        "{out}"
    );
    assert_eq!(t.event("release/deploy")["state"], "fired");
    assert!(t.ok("verify").contains("2 signatures"));
    // The same signed answer again is refused by the service, with its code.
    a.fail_with(
        &format!("submit {} {}", file.display(), sig.display()),
        "t_minus::",
    );
    a.assert_no_files();
}

/// `delegate`, `delegations` and `undelegate` through the service, as the
/// token's agent: the same lines as on the store; `--sign KEYFILE` signs
/// the delegation message here and posts it.
fn delegations_through_the_client() {
    use crate::trust::{apply_signed_release, Keys};
    let t = T::new();
    let keys = Keys::new();
    apply_signed_release(&t, &keys);
    let alice = token(&t, "alice", "agent");
    let server = Server::start(&t, &[]);
    let a = Client::new(&server, &t, &alice);
    let out = a.ok("delegate alice dave --until +1h");
    assert!(
        out.starts_with(
            "🤝 dave may answer for alice (every event, until 2025-06-06T15:50:00Z); delegation "
        ),
        "{out}"
    );
    let refused = a.fail_with("delegate bob dave", "t_minus::auth::other_agent");
    assert!(
        refused
            .stderr
            .contains("may not make or revoke delegations of bob's"),
        "{}",
        refused.stderr
    );
    let out = a.ok(&format!(
        "delegate alice carol --campaign release --sign {}",
        keys.alice.0.display()
    ));
    assert!(
        out.contains("carol may answer for alice (campaign release, until revoked)"),
        "{out}"
    );
    // The listing is the store's.
    assert_eq!(a.ok("delegations"), t.ok("delegations"));
    let listed = a.json("delegations --json");
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    // Made at the same instant: found by their delegate.
    let to = |name: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["to"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(to("carol")["signed"], true, "{listed}");
    assert_eq!(to("dave")["signed"], false, "{listed}");
    let id = to("dave")["id"].as_str().unwrap().to_string();
    let out = a.ok(&format!("undelegate {}", &id[..8]));
    assert_eq!(
        out,
        format!("Revoked delegation {id}: dave no longer answers for alice.\n")
    );
    a.fail_with(
        &format!("undelegate {id}"),
        "t_minus::refused::delegation_revoked",
    );
    let all = t.json("delegations --all --json");
    let states: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["state"])
        .collect();
    assert!(states.contains(&&Value::from("revoked")), "{all}");
    a.assert_no_files();
}

fn signed_answers_through_ssh_agent_pick_the_key_the_signers_allow() {
    use crate::trust::{apply_signed_release, keygen, Keys, SshAgent};
    let t = T::new();
    let keys = Keys::new();
    let (other_key, _) = keygen(keys.dir.path(), "other", "ed25519");
    apply_signed_release(&t, &keys);
    let short = t.event("release/deploy")["id"].as_str().unwrap()[..8].to_string();
    let alice = token(&t, "alice", "agent");
    let server = Server::start(&t, &[]);
    let a = Client::new(&server, &t, &alice);
    let ssh_agent = SshAgent::start(keys.dir.path());
    let confirm = || {
        let mut cmd = cli_support::command(&server.base, Clock::Pinned(t.now()));
        cmd.current_dir(a.dir.path())
            .env("T_MINUS_TOKEN", &alice)
            .env("SSH_AUTH_SOCK", &ssh_agent.socket)
            .args(["confirm", "release/deploy", "alice", "--sign", "agent"]);
        output(cmd)
    };
    // The ssh-agent holds only a key the signers do not allow for alice.
    ssh_agent.add(&other_key);
    let out = confirm();
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains("t_minus::trust::ssh_agent_key"),
        "{}",
        out.stderr
    );
    assert_eq!(answer_of(&t.event("release/deploy"), "alice"), "pending");
    // With alice's key added, it signs with that one.
    ssh_agent.add(&keys.alice.0);
    let out = confirm();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!("✅ alice confirmed release/deploy [{short}] (quorum 1/2)\n")
    );
    assert_eq!(answer_of(&t.event("release/deploy"), "alice"), "confirmed");
    assert_eq!(t.json("verify --json")["signatures"], 1);
    // The signers as the service shows them: the public keys, and the
    // digest the log names.
    let shown: Value = serde_json::from_str(
        &ureq::get(format!(
            "{}/v1/events/release%2Fdeploy/signers",
            server.base
        ))
        .header("Authorization", format!("Bearer {alice}"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap(),
    )
    .unwrap();
    let allowed = shown["allowed_signers"].as_str().unwrap();
    let key_of = |line: &str| line.split_whitespace().nth(1).unwrap().to_string();
    assert!(allowed.contains(&key_of(&keys.alice.1)), "{allowed}");
    assert!(allowed.contains(&key_of(&keys.bob.1)), "{allowed}");
    let log = t.json("log release/deploy --json");
    let signed = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "confirmed")
        .unwrap();
    assert!(
        signed
            .to_string()
            .contains(shown["digest"].as_str().unwrap()),
        "{signed}"
    );
    a.assert_no_files();
}

fn without_a_service_or_a_token_the_client_says_so() {
    let t = T::new();
    let dir = tempfile::tempdir().unwrap();
    let run = |db: &str, token: Option<&str>, line: &str| {
        let mut cmd = cli_support::command(db, Clock::Pinned(t.now()));
        cmd.current_dir(dir.path()).args(split(line));
        match token {
            Some(token) => cmd.env("T_MINUS_TOKEN", token),
            None => cmd.env_remove("T_MINUS_TOKEN"),
        };
        output(cmd)
    };
    // Nothing listens on port 9 of 127.0.0.1 (discard): refused at once.
    let secret = format!("tmt_{}", "1".repeat(64));
    let out = run("http://127.0.0.1:9", Some(&secret), "status");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("t_minus::client::unreachable"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("http://127.0.0.1:9"));
    assert!(!out.stderr.contains(&secret), "the token is never shown");
    let out = run("http://127.0.0.1:9", Some(&secret), "status --json");
    let error: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(error["error"]["code"], "t_minus::client::unreachable");

    let out = run("http://127.0.0.1:9", None, "confirm rev alice");
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("t_minus::client::token"),
        "{}",
        out.stderr
    );
    // A command that needs the store itself is refused, not run on a file
    // named after the URL.
    let out = run("https://127.0.0.1:9", Some(&secret), "tick");
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("t_minus::client::unsupported"),
        "{}",
        out.stderr
    );
    assert_empty(dir.path());
}

/// Runs `openssl ARGS` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Over HTTPS, the service's certificate is checked: trusted through
/// `T_MINUS_CA_CERT` (a CA made with `openssl`), refused without it.
#[test]
#[cfg_attr(
    not(t_minus_test_tools),
    ignore = "needs openssl: set T_MINUS_TEST_TOOLS=1"
)]
fn https_checks_the_services_certificate() {
    let t = T::new();
    t.ok("schedule review +15m --name rev --attendees alice");
    let alice = token(&t, "alice", "agent");
    let dir = t.dir();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=t-minus test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(dir, &ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "1",
            "-extfile",
            "leaf.ext",
        ],
    );
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let server = Server::start(
        &t,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let a = Client::new(&server, &t, &alice);
    let out = a.fail("status");
    assert!(
        out.stderr.contains("t_minus::client::unreachable"),
        "an unknown issuer is refused: {}",
        out.stderr
    );
    let mut cmd = cli_support::command(&server.base, Clock::Pinned(t.now()));
    cmd.current_dir(a.dir.path())
        .env("T_MINUS_TOKEN", &alice)
        .env("T_MINUS_CA_CERT", dir.join("ca.pem"))
        .args(["confirm", "rev", "alice"]);
    let out = output(cmd);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("✅ alice confirmed rev"),
        "{}",
        out.stdout
    );
    assert_eq!(answer_of(&t.event("rev"), "alice"), "confirmed");
    // A file without a certificate is refused before connecting.
    let mut cmd = cli_support::command(&server.base, Clock::Pinned(t.now()));
    cmd.current_dir(a.dir.path())
        .env("T_MINUS_TOKEN", &alice)
        .env("T_MINUS_CA_CERT", &key)
        .arg("status");
    let out = output(cmd);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("t_minus::client::ca_cert"),
        "{}",
        out.stderr
    );
    a.assert_no_files();
}

/// How many streams `server` has opened (its `/metrics`).
fn streams_opened(base: &str) -> u64 {
    let text = ureq::get(format!("{base}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    text.lines()
        .filter(|l| l.contains("route=\"/v1/stream\"") && l.contains("status=\"200\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Waits (at most 20 s) until `server` has opened `n` streams.
#[track_caller]
fn await_streams(base: &str, n: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while streams_opened(base) < n {
        assert!(std::time::Instant::now() < deadline, "no stream was opened");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The JSON lines `out` printed, which must be `n`.
#[track_caller]
fn json_lines(out: &Out, n: usize) -> Vec<Value> {
    let lines: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), n, "{}", out.stdout);
    lines
}

/// The output of a background command, once it exits (at most 30 s).
#[track_caller]
fn finished(mut child: std::process::Child) -> Out {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the command did not end\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn wait_through_the_client_follows_the_stream() {
    let t = T::new();
    let id = t.schedule("review +15m --name rev --quorum 2 --attendees alice,bob");
    let short = id[..8].to_string();
    t.ok("schedule deploy +1h --name ship --attendees alice");
    t.ok("schedule deploy +2h --name far --attendees alice");
    let (alice, bob, ops) = (
        token(&t, "alice", "agent"),
        token(&t, "bob", "agent"),
        token(&t, "ops", "operator"),
    );
    let server = Server::start(&t, &[]);
    let (a, b, o) = (
        Client::new(&server, &t, &alice),
        Client::new(&server, &t, &bob),
        Client::new(&server, &t, &ops),
    );

    // Fired while waiting: the transition line, then the summary; exit 0.
    let waiting = a.spawn("wait rev");
    await_streams(&server.base, 1);
    a.ok("confirm rev alice");
    b.ok("confirm rev bob");
    let out = finished(waiting);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(
        lines[0].starts_with(&format!("{} 🚀 fired rev [{short}] (", t.now())),
        "{}",
        out.stdout
    );
    assert_eq!(lines[1], "rev fired");
    // Final already: what the local wait prints.
    let local = t.run("wait rev");
    let remote = a.run("wait rev");
    assert_eq!((remote.code, &remote.stdout), (local.code, &local.stdout));
    assert_eq!(remote.stdout, "rev fired\n");

    // Cancelled while waiting, with --json: a transition line and the
    // summary; exit 3.
    let waiting = a.spawn("wait ship --json");
    await_streams(&server.base, 2);
    o.ok("cancel ship --reason scrapped");
    let out = finished(waiting);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let lines = json_lines(&out, 2);
    assert_eq!(lines[0]["type"], "transition");
    assert_eq!(lines[0]["action"], "cancelled");
    assert_eq!(lines[0]["state"], "cancelled");
    assert_eq!(lines[0]["label"], "ship");
    assert_eq!(lines[0]["reason"], "scrapped");
    assert_eq!(
        lines[1],
        serde_json::json!({"type": "summary", "outcome": "failed", "fired": 0,
            "missed": 0, "cancelled": 1, "unfinished": 0})
    );
    let local = t.run("wait ship");
    let remote = a.run("wait ship");
    assert_eq!((remote.code, &remote.stdout), (3, &local.stdout));

    // The timeout: exit 124, as the local wait says it.
    let remote = a.run("wait far --timeout 300ms");
    assert_eq!(remote.code, 124, "{}", remote.stderr);
    assert_eq!(remote.stdout, "Wait timed out: far is not final yet\n");

    // Bad input and unknown events fail before waiting.
    a.fail_with("wait far --timeout soon", "t_minus::input::duration");
    a.fail_with("wait abcd1234", "t_minus::not_found::event");
    a.assert_no_files();
}

fn wait_through_the_client_resumes_after_the_service_restarts() {
    let t = T::new();
    let id = t.schedule("review +15m --name rev --attendees alice");
    let alice = token(&t, "alice", "agent");
    let server = Server::start(&t, &[]);
    let listen = server.base.trim_start_matches("http://").to_string();
    let a = Client::new(&server, &t, &alice);
    let waiting = a.spawn("wait rev --json");
    await_streams(&server.base, 1);
    server.kill();
    // Answered while the service is down, on the store itself.
    t.ok("confirm rev alice");
    let server = Server::start_at(&t, &listen, &[]);
    let out = finished(waiting);
    drop(server);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let lines = json_lines(&out, 2);
    assert_eq!(lines[0]["action"], "fired");
    assert_eq!(lines[0]["event"], id.as_str());
    assert_eq!(lines[1]["outcome"], "succeeded");
    assert!(
        out.stderr.contains("reconnecting"),
        "the client said it reconnects: {}",
        out.stderr
    );
    a.assert_no_files();
}

cli_support::store_tests!(
    delegations_through_the_client,
    wait_through_the_client_follows_the_stream,
    wait_through_the_client_resumes_after_the_service_restarts,
    answers_through_the_client_land_in_the_store,
    reads_through_the_client_print_what_the_local_command_prints,
    the_services_refusals_keep_their_code,
    an_operator_plans_applies_and_cancels_with_signers_inlined,
    signed_answers_are_signed_here_and_posted_to_answers,
    signed_answers_through_ssh_agent_pick_the_key_the_signers_allow,
    without_a_service_or_a_token_the_client_says_so,
);
