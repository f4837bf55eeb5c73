//! Passkeys over real HTTP against `t-minus serve`: a software
//! authenticator in Rust (a P-256 key, authenticator data, client data
//! JSON, attestation `none`) enrols through an invitation, signs in and
//! answers; every refusal is checked with its code; `verify` checks the
//! passkey-signed answers offline. No browser: the pages' browser tests
//! drive Chrome's virtual authenticator.
//!
//! Every test runs on SQLite and on PostgreSQL.

use base64ct::{Base64UrlUnpadded, Encoding};
use ciborium::Value as Cbor;
use p256::ecdsa::signature::Signer;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::cli_support::{self, T};
use crate::common::stores::tamper;
use crate::serve::Server;

const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

fn b64(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    Base64UrlUnpadded::decode_vec(text).unwrap()
}

/// A software authenticator holding one P-256 passkey.
pub(crate) struct Authenticator {
    key: p256::ecdsa::SigningKey,
    credential: Vec<u8>,
    rp_id: String,
    counter: u32,
}

impl Authenticator {
    pub(crate) fn new(seed: u8, rp_id: &str) -> Self {
        Authenticator {
            key: p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap(),
            credential: vec![seed; 16],
            rp_id: rp_id.to_string(),
            counter: 0,
        }
    }

    fn credential_id(&self) -> String {
        b64(&self.credential)
    }

    fn cose(&self) -> Vec<u8> {
        let point = self.key.verifying_key().to_encoded_point(false);
        let map = Cbor::Map(vec![
            (Cbor::Integer(1.into()), Cbor::Integer(2.into())),
            (Cbor::Integer(3.into()), Cbor::Integer((-7).into())),
            (Cbor::Integer((-1).into()), Cbor::Integer(1.into())),
            (
                Cbor::Integer((-2).into()),
                Cbor::Bytes(point.x().unwrap().to_vec()),
            ),
            (
                Cbor::Integer((-3).into()),
                Cbor::Bytes(point.y().unwrap().to_vec()),
            ),
        ]);
        let mut out = Vec::new();
        ciborium::ser::into_writer(&map, &mut out).unwrap();
        out
    }

    fn auth_data(&mut self, flags: u8) -> Vec<u8> {
        self.counter += 1;
        let mut data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        data.push(flags);
        data.extend_from_slice(&self.counter.to_be_bytes());
        data
    }

    fn client_data(kind: &str, challenge: &str, origin: &str) -> Vec<u8> {
        format!(r#"{{"type":"{kind}","challenge":"{challenge}","origin":"{origin}","crossOrigin":false}}"#)
            .into_bytes()
    }

    /// `navigator.credentials.create` for `options.publicKey`.
    fn register(&mut self, options: &Value, origin: &str, flags: u8) -> Value {
        let challenge = options["challenge"].as_str().unwrap();
        let mut auth = self.auth_data(flags);
        auth.extend_from_slice(&[0; 16]);
        auth.extend_from_slice(&(self.credential.len() as u16).to_be_bytes());
        auth.extend_from_slice(&self.credential);
        auth.extend_from_slice(&self.cose());
        let object = Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(vec![])),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth)),
        ]);
        let mut attestation = Vec::new();
        ciborium::ser::into_writer(&object, &mut attestation).unwrap();
        json!({
            "id": self.credential_id(),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&Self::client_data("webauthn.create", challenge, origin)),
                "attestationObject": b64(&attestation),
            },
        })
    }

    /// `navigator.credentials.get` over `challenge` (base64url).
    fn assert(&mut self, challenge: &str, origin: &str, flags: u8) -> Value {
        let auth = self.auth_data(flags);
        let client = Self::client_data("webauthn.get", challenge, origin);
        let mut signed = auth.clone();
        signed.extend_from_slice(&Sha256::digest(&client));
        let signature: p256::ecdsa::Signature = self.key.sign(&signed);
        json!({
            "id": self.credential_id(),
            "response": {
                "clientDataJSON": b64(&client),
                "authenticatorData": b64(&auth),
                "signature": b64(signature.to_der().as_bytes()),
                "userHandle": null,
            },
        })
    }
}

/// A browser: one cookie jar, the service's origin on every request.
pub(crate) struct Browser<'a> {
    server: &'a Server,
    http: ureq::Agent,
    origin: String,
    pub(crate) cookie: Option<String>,
    csrf: Option<String>,
}

/// A reply: status, JSON body (or `Value::Null`), `Set-Cookie`.
pub(crate) struct Reply {
    pub(crate) status: u16,
    body: Value,
    set_cookie: Option<String>,
}

impl Reply {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl<'a> Browser<'a> {
    pub(crate) fn new(server: &'a Server) -> Self {
        let port = server.base.rsplit(':').next().unwrap().to_string();
        Browser {
            server,
            http: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into(),
            origin: format!("http://localhost:{port}"),
            cookie: None,
            csrf: None,
        }
    }

    fn send(&mut self, method: &str, path: &str, body: Option<Value>, csrf: bool) -> Reply {
        let url = format!("{}{path}", self.server.base);
        let mut headers = vec![("Origin", self.origin.clone())];
        if let Some(cookie) = &self.cookie {
            headers.push(("Cookie", cookie.clone()));
        }
        if csrf {
            if let Some(token) = &self.csrf {
                headers.push(("X-CSRF-Token", token.clone()));
            }
        }
        let result = if method == "GET" {
            let mut req = self.http.get(&url);
            for (k, v) in &headers {
                req = req.header(*k, v);
            }
            req.call()
        } else {
            let mut req = self.http.post(&url);
            for (k, v) in &headers {
                req = req.header(*k, v);
            }
            req.header("Content-Type", "application/json")
                .send(body.unwrap_or(json!({})).to_string())
        };
        let mut response = result.unwrap();
        let status = response.status().as_u16();
        let set_cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let text = response.body_mut().read_to_string().unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        if let Some(set) = &set_cookie {
            let pair = set.split(';').next().unwrap().to_string();
            self.cookie = (!pair.ends_with('=')).then_some(pair);
        }
        if let Some(csrf) = body["csrf"].as_str() {
            self.csrf = Some(csrf.to_string());
        }
        Reply {
            status,
            body,
            set_cookie,
        }
    }

    fn post(&mut self, path: &str, body: Value) -> Reply {
        self.send("POST", path, Some(body), true)
    }

    fn get(&mut self, path: &str) -> Reply {
        self.send("GET", path, None, false)
    }

    pub(crate) fn enrol(&mut self, token: &str, authenticator: &mut Authenticator) -> Reply {
        let begun = self.post("/web/enrol/begin", json!({ "token": token }));
        assert_eq!(begun.status, 200, "{}", begun.body);
        let origin = self.origin.clone();
        let credential = authenticator.register(&begun.body["publicKey"], &origin, UP | UV | AT);
        self.post(
            "/web/enrol/finish",
            json!({ "ceremony": begun.body["ceremony"], "token": token, "credential": credential }),
        )
    }

    fn sign_in_with(
        &mut self,
        authenticator: &mut Authenticator,
        origin: &str,
        flags: u8,
    ) -> Reply {
        let begun = self.post("/web/signin/begin", json!({}));
        assert_eq!(begun.status, 200, "{}", begun.body);
        let challenge = begun.body["publicKey"]["challenge"].as_str().unwrap();
        let credential = authenticator.assert(challenge, origin, flags);
        self.post(
            "/web/signin/finish",
            json!({ "ceremony": begun.body["ceremony"], "credential": credential }),
        )
    }

    fn sign_in(&mut self, authenticator: &mut Authenticator) -> Reply {
        let origin = self.origin.clone();
        self.sign_in_with(authenticator, &origin, UP | UV)
    }

    fn begin_answer(&mut self, event: &str, answer: Value) -> Reply {
        self.post(&format!("/web/events/{event}/answer/begin"), answer)
    }

    fn finish_answer(&mut self, event: &str, ceremony: &Value, credential: Value) -> Reply {
        self.post(
            &format!("/web/events/{event}/answer/finish"),
            json!({ "ceremony": ceremony, "credential": credential }),
        )
    }

    /// Begins and finishes `answer` with `authenticator`.
    fn answer(&mut self, event: &str, answer: Value, authenticator: &mut Authenticator) -> Reply {
        let begun = self.begin_answer(event, answer);
        assert_eq!(begun.status, 200, "{}", begun.body);
        let origin = self.origin.clone();
        let challenge = begun.body["publicKey"]["challenge"].as_str().unwrap();
        let credential = authenticator.assert(challenge, &origin, UP | UV);
        self.finish_answer(event, &begun.body["ceremony"], credential)
    }
}

/// `people invite AGENT`: the link's token.
pub(crate) fn invite(t: &T, agent: &str, extra: &str) -> String {
    let out = t.ok(&format!(
        "people invite {agent} --public-url http://localhost:8470 {extra}"
    ));
    let link = out.lines().last().unwrap();
    let token = link
        .strip_prefix("http://localhost:8470/enrol/")
        .unwrap_or_else(|| panic!("no link in {out}"));
    token.to_string()
}

fn status_of(event: &Value, agent: &str) -> String {
    crate::serve::answer_of(event, agent)
}

fn a_person_enrols_signs_in_and_answers_with_a_passkey() {
    let t = T::new();
    t.ok("schedule review +15m --name rev --quorum 2 --attendees alice,bob");
    let token = invite(&t, "alice", "");
    let server = Server::start(&t, &[]);
    let mut browser = Browser::new(&server);
    let mut alice = Authenticator::new(7, "localhost");

    let (status, page) = (browser.get(&format!("/enrol/{token}")).status, ());
    assert_eq!((status, page), (200, ()));
    let script = browser.get("/assets/passkey.js");
    assert_eq!(script.status, 200);

    // Registration: a discoverable credential, user verification required.
    let begun = browser.post("/web/enrol/begin", json!({ "token": token }));
    let options = &begun.body["publicKey"];
    assert_eq!(options["rp"]["id"], "localhost");
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(
        options["authenticatorSelection"]["userVerification"],
        "required"
    );
    assert_eq!(options["user"]["name"], "alice");
    let origin = browser.origin.clone();
    let credential = alice.register(options, &origin, UP | UV | AT);
    let enrolled = browser.post(
        "/web/enrol/finish",
        json!({ "ceremony": begun.body["ceremony"], "token": token, "credential": credential }),
    );
    assert_eq!(enrolled.status, 200, "{}", enrolled.body);
    assert_eq!(enrolled.body["agent"], "alice");
    assert_eq!(enrolled.body["credential"], alice.credential_id());
    let cookie = enrolled.set_cookie.unwrap();
    assert!(cookie.starts_with("tminus_session=tms_"), "{cookie}");
    for part in ["Path=/", "HttpOnly", "SameSite=Lax"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    let session = browser.get("/web/session");
    assert_eq!(
        (session.status, &session.body["agent"]),
        (200, &json!("alice"))
    );

    // The invitation was used up.
    let again = browser.post("/web/enrol/begin", json!({ "token": token }));
    assert_eq!(
        (again.status, again.code()),
        (400, "t_minus::passkey::invite_used")
    );

    // A new browser signs in with the discoverable credential.
    let mut other = Browser::new(&server);
    assert_eq!(
        other.get("/web/session").code(),
        "t_minus::passkey::session"
    );
    let signed_in = other.sign_in(&mut alice);
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    assert_eq!(signed_in.body["agent"], "alice");

    // The answer message names the passkey, and its SHA-256 is the challenge.
    let begun = other.begin_answer("rev", json!({ "answer": "confirm" }));
    assert_eq!(begun.status, 200, "{}", begun.body);
    let message = begun.body["message"].as_str().unwrap();
    assert!(message.starts_with("t-minus answer v2\n"), "{message}");
    assert!(
        message.contains("agent: alice\nanswer: confirm\n"),
        "{message}"
    );
    assert!(message.ends_with(&format!(
        "passkey-credential: {}\npasskey-origin: {}\npasskey-rp-id: localhost\n",
        alice.credential_id(),
        other.origin
    )));
    let challenge = begun.body["publicKey"]["challenge"].as_str().unwrap();
    assert_eq!(
        unb64(challenge),
        Sha256::digest(message.as_bytes()).to_vec()
    );
    assert_eq!(
        begun.body["publicKey"]["allowCredentials"][0]["id"],
        alice.credential_id()
    );
    let origin = other.origin.clone();
    let assertion = alice.assert(challenge, &origin, UP | UV);
    let answered = other.finish_answer("rev", &begun.body["ceremony"], assertion.clone());
    assert_eq!(answered.status, 200, "{}", answered.body);
    assert_eq!(status_of(&answered.body, "alice"), "confirmed");
    assert_eq!(answered.body["confirmed"], 1);

    // The same assertion again: its ceremony is finished; and submitted to
    // the engine directly, its nonce was used.
    let replayed = other.finish_answer("rev", &begun.body["ceremony"], assertion.clone());
    assert_eq!(
        (replayed.status, replayed.code()),
        (400, "t_minus::passkey::ceremony")
    );
    let now = chrono::DateTime::parse_from_rfc3339(t.now())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let mut engine = t_minus::Engine::open(&t.db_location())
        .unwrap()
        .with_clock(std::sync::Arc::new(t_minus::FixedClock::new(now)));
    let stored = t_minus::trust::webauthn::Assertion {
        authenticator_data: assertion["response"]["authenticatorData"]
            .as_str()
            .unwrap()
            .into(),
        client_data_json: assertion["response"]["clientDataJSON"]
            .as_str()
            .unwrap()
            .into(),
        signature: assertion["response"]["signature"].as_str().unwrap().into(),
    };
    let err = engine
        .respond_passkey(message.as_bytes(), &stored)
        .unwrap_err();
    assert!(
        matches!(
            err,
            t_minus::TMinusError::Trust(t_minus::trust::TrustError::NonceReused { .. })
        ),
        "{err}"
    );
    drop(engine);

    // The log keeps the message and the assertion; verify checks it offline.
    let log = t.json("log rev --json");
    let entry = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "confirmed")
        .unwrap()
        .clone();
    assert_eq!(entry["message"], message);
    assert_eq!(
        entry["detail"]["key"],
        format!("webauthn:{}", alice.credential_id())
    );
    let stored: Value = serde_json::from_str(entry["signature"].as_str().unwrap()).unwrap();
    for field in ["authenticator_data", "client_data_json", "signature"] {
        assert!(stored[field].is_string(), "{stored}");
    }
    let verified = t.ok("verify");
    assert!(verified.contains("intact"), "{verified}");
    assert!(
        verified.contains("1 signatures verified") || verified.contains("1 signature verified"),
        "{verified}"
    );

    // Sign-out ends the session.
    let out = other.post("/web/signout", json!({}));
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(out.set_cookie.unwrap().contains("Max-Age=0"));
    assert_eq!(other.get("/web/session").status, 401);
}

fn bad_passkey_requests_are_refused_with_their_codes() {
    let mut t = T::new();
    t.ok("schedule review +15m --name rev --quorum 2 --attendees alice,bob");
    let token = invite(&t, "alice", "");
    let now = t.now().to_string();
    // An invitation made 2 hours ago for 1 hour.
    let earlier = (chrono::DateTime::parse_from_rfc3339(&now).unwrap()
        - chrono::Duration::hours(2))
    .to_rfc3339();
    t.set_now(&earlier);
    let expired = invite(&t, "bob", "--expires 1h");
    t.set_now(&now);
    let server = Server::start(&t, &[]);
    let mut browser = Browser::new(&server);
    let mut alice = Authenticator::new(7, "localhost");

    let r = browser.post("/web/enrol/begin", json!({ "token": expired }));
    assert_eq!(
        (r.status, r.code()),
        (400, "t_minus::passkey::invite_expired")
    );
    let r = browser.post("/web/enrol/begin", json!({ "token": "tmi_nope" }));
    assert_eq!(r.code(), "t_minus::passkey::invite");

    // A registration without user verification is refused.
    let begun = browser.post("/web/enrol/begin", json!({ "token": token }));
    let origin = browser.origin.clone();
    let credential = alice.register(&begun.body["publicKey"], &origin, UP | AT);
    let r = browser.post(
        "/web/enrol/finish",
        json!({ "ceremony": begun.body["ceremony"], "token": token, "credential": credential }),
    );
    assert_eq!(r.code(), "t_minus::passkey::invalid", "{}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("UV"));
    let r = browser.enrol(&token, &mut alice);
    assert_eq!(r.status, 200, "{}", r.body);

    // Sign-in: wrong origin, UP unset, UV unset, an unknown credential.
    let mut other = Browser::new(&server);
    let r = other.sign_in_with(&mut alice, "https://evil.example", UP | UV);
    assert_eq!(r.code(), "t_minus::passkey::invalid");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("origin"));
    let origin = other.origin.clone();
    let r = other.sign_in_with(&mut alice, &origin, UV);
    assert!(
        r.body["error"]["message"].as_str().unwrap().contains("UP"),
        "{}",
        r.body
    );
    let r = other.sign_in_with(&mut alice, &origin, UP);
    assert!(
        r.body["error"]["message"].as_str().unwrap().contains("UV"),
        "{}",
        r.body
    );
    let mut stranger = Authenticator::new(9, "localhost");
    let r = other.sign_in(&mut stranger);
    assert_eq!(r.code(), "t_minus::passkey::unknown");
    // An assertion for another relying party.
    let mut elsewhere = Authenticator::new(7, "example.com");
    let r = other.sign_in(&mut elsewhere);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("relying party"),
        "{}",
        r.body
    );
    assert_eq!(other.cookie, None);

    // Answers: no session, no CSRF token, another Origin.
    let r = other.begin_answer("rev", json!({ "answer": "confirm" }));
    assert_eq!((r.status, r.code()), (401, "t_minus::passkey::session"));
    let r = browser.send(
        "POST",
        "/web/events/rev/answer/begin",
        Some(json!({ "answer": "confirm" })),
        false,
    );
    assert_eq!((r.status, r.code()), (403, "t_minus::passkey::csrf"));
    let real_origin = browser.origin.clone();
    browser.origin = "https://evil.example".into();
    let r = browser.begin_answer("rev", json!({ "answer": "confirm" }));
    assert_eq!((r.status, r.code()), (403, "t_minus::passkey::csrf"));
    browser.origin = real_origin;

    // A wrong challenge, and an assertion without user verification.
    let begun = browser.begin_answer("rev", json!({ "answer": "decline", "reason": "not yet" }));
    assert!(begun.body["message"]
        .as_str()
        .unwrap()
        .contains("reason: \"not yet\"\n"));
    let origin = browser.origin.clone();
    let wrong = alice.assert(&b64(&[0; 32]), &origin, UP | UV);
    let r = browser.finish_answer("rev", &begun.body["ceremony"], wrong);
    assert_eq!(r.code(), "t_minus::passkey::invalid");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("challenge"),
        "{}",
        r.body
    );
    let begun = browser.begin_answer("rev", json!({ "answer": "confirm" }));
    let challenge = begun.body["publicKey"]["challenge"]
        .as_str()
        .unwrap()
        .to_string();
    let no_uv = alice.assert(&challenge, &origin, UP);
    let r = browser.finish_answer("rev", &begun.body["ceremony"], no_uv);
    assert!(
        r.body["error"]["message"].as_str().unwrap().contains("UV"),
        "{}",
        r.body
    );
    let r = browser.begin_answer("rev", json!({ "answer": "defer" }));
    assert_eq!(r.code(), "t_minus::http::json");

    // Nothing was answered; then a revoked passkey ends its sessions.
    assert_eq!(status_of(&t.json("status rev --json"), "alice"), "pending");
    let out = t.ok(&format!("people revoke {}", alice.credential_id()));
    assert!(out.contains("Revoked passkey"), "{out}");
    let r = browser.begin_answer("rev", json!({ "answer": "confirm" }));
    assert_eq!(r.code(), "t_minus::passkey::session");
    let r = other.sign_in(&mut alice);
    assert_eq!(r.code(), "t_minus::passkey::revoked");
    let listed = t.json("people list --json");
    assert!(listed["passkeys"][0]["revoked_at"].is_string(), "{listed}");
    let err = t.fail(&format!("people revoke {}", alice.credential_id()));
    assert!(err.contains("t_minus::passkey::revoked"), "{err}");
    assert!(t.ok("verify").contains("intact"));
}

fn an_ip_address_cannot_be_the_relying_party() {
    let t = T::new();
    let err = t.fail("people invite alice --public-url http://127.0.0.1:8470");
    assert!(err.contains("t_minus::passkey::relying_party"), "{err}");
    assert!(err.contains("IP address"), "{err}");
    let token = invite(&t, "alice", "");
    let server = Server::start(&t, &["--public-url", "http://127.0.0.1:8470"]);
    let mut browser = Browser::new(&server);
    let r = browser.post("/web/enrol/begin", json!({ "token": token }));
    assert_eq!(r.code(), "t_minus::passkey::relying_party");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("IP address"));
}

fn signed_events_accept_only_the_passkeys_their_signers_pin() {
    let t = T::new();
    let pinned = Authenticator::new(11, "localhost");
    let manifest = format!(
        "campaign: release\nsigners:\n  alice: \"webauthn:{}\"\n  bob: \"webauthn:Ym9iLXBhc3NrZXk\"\nevents:\n  approve:\n    kind: review\n    at: +30m\n    quorum: 1\n    attendees: [alice, bob]\n",
        pinned.credential_id()
    );
    std::fs::write(t.dir().join("release.yaml"), manifest).unwrap();
    t.ok("apply release.yaml");
    let first = invite(&t, "alice", "");
    let second = invite(&t, "alice", "");
    let server = Server::start(&t, &[]);
    let mut browser = Browser::new(&server);

    // An enrolled passkey that the signers do not pin: refused.
    let mut unpinned = Authenticator::new(12, "localhost");
    assert_eq!(browser.enrol(&first, &mut unpinned).status, 200);
    let r = browser.answer(
        "release%2Fapprove",
        json!({ "answer": "confirm" }),
        &mut unpinned,
    );
    assert_eq!(
        (r.status, r.code()),
        (422, "t_minus::trust::passkey_not_pinned"),
        "{}",
        r.body
    );

    // The pinned one: accepted, and verify checks it.
    let mut pinned = pinned;
    let mut browser = Browser::new(&server);
    assert_eq!(browser.enrol(&second, &mut pinned).status, 200);
    let r = browser.answer(
        "release%2Fapprove",
        json!({ "answer": "confirm" }),
        &mut pinned,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["state"], "fired");
    let verified = t.ok("verify");
    assert!(verified.contains("intact"), "{verified}");

    // The attestation carries the passkey; a third party checks it alone.
    t.ok("attest release --out release.intoto.json");
    let statement: Value = serde_json::from_str(
        &std::fs::read_to_string(t.dir().join("release.intoto.json")).unwrap(),
    )
    .unwrap();
    let record = &statement["predicate"]["passkeys"][pinned.credential_id()];
    assert_eq!(record["agent"], "alice", "{statement}");
    assert_eq!(record["public_key"], b64(&pinned.cose()));
    let held = t.ok("verify --attestation release.intoto.json");
    assert!(held.contains("holds"), "{held}");
    assert!(held.contains("1 signature"), "{held}");
    let mut edited = statement.clone();
    edited["predicate"]["passkeys"][pinned.credential_id()]["public_key"] =
        json!(b64(&unpinned.cose()));
    std::fs::write(t.dir().join("edited.json"), edited.to_string()).unwrap();
    let err = t.fail("verify --attestation edited.json");
    assert!(err.contains("its passkey signature"), "{err}");

    // An answer written into the store directly is caught.
    tamper(
        &t.db_location(),
        "UPDATE {attendees} SET status = 'declined' WHERE agent = 'alice'",
    );
    let err = t.fail("verify");
    assert!(err.contains("answers.alice"), "{err}");
}

fn verify_checks_a_passkey_answer_against_the_logged_public_key() {
    let t = T::new();
    t.ok("schedule review +15m --name rev --quorum 1 --attendees alice");
    let token = invite(&t, "alice", "");
    let server = Server::start(&t, &[]);
    let mut browser = Browser::new(&server);
    let mut alice = Authenticator::new(7, "localhost");
    assert_eq!(browser.enrol(&token, &mut alice).status, 200);
    let r = browser.answer("rev", json!({ "answer": "confirm" }), &mut alice);
    assert_eq!(r.status, 200, "{}", r.body);
    drop(server);
    let engine = t_minus::Engine::open(&t.db_location()).unwrap();
    let log = engine
        .store()
        .read()
        .unwrap()
        .audit_since(0, 10_000)
        .unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "scheduled",
            "person-invited",
            "person-enrolled",
            "confirmed",
            "fired"
        ]
    );
    let enrolled = &log[2];
    assert_eq!(enrolled.agent.as_ref().unwrap().as_str(), "alice");
    assert_eq!(enrolled.detail["credential"], alice.credential_id());
    assert_eq!(enrolled.detail["public_key"], b64(&alice.cose()));
    assert_eq!(enrolled.detail["algorithm"], "ES256");
    assert_eq!(log[1].event, enrolled.event, "one subject: the enrolment");
    drop(engine);
    assert!(t.ok("verify").contains("intact"));
    // A passkey row whose public key was swapped is reported.
    tamper(
        &t.db_location(),
        "UPDATE {passkeys} SET public_key = 'AAAA'",
    );
    let err = t.fail("verify");
    assert!(err.contains("passkey"), "{err}");
    assert!(err.contains("public_key"), "{err}");
    // So is an invitation handed to another agent.
    tamper(&t.db_location(), "UPDATE {invites} SET agent = 'mallory'");
    let err = t.fail("verify");
    assert!(err.contains("invitation"), "{err}");
    assert!(err.contains("agent is stored as \"mallory\""), "{err}");
}

fn a_ceremony_begun_by_one_server_finishes_on_another() {
    let t = T::new();
    let token = invite(&t, "alice", "");
    // Two processes behind one public URL (a load balancer's).
    let public = ["--public-url", "http://localhost:8470"];
    let first = Server::start(&t, &public);
    let second = Server::start(&t, &public);
    let mut on_first = Browser::new(&first);
    let mut on_second = Browser::new(&second);
    on_first.origin = "http://localhost:8470".into();
    on_second.origin = "http://localhost:8470".into();
    let mut alice = Authenticator::new(7, "localhost");
    let begun = on_first.post("/web/enrol/begin", json!({ "token": token }));
    let origin = on_first.origin.clone();
    let credential = alice.register(&begun.body["publicKey"], &origin, UP | UV | AT);
    let enrolled = on_second.post(
        "/web/enrol/finish",
        json!({ "ceremony": begun.body["ceremony"], "token": token, "credential": credential }),
    );
    assert_eq!(enrolled.status, 200, "{}", enrolled.body);
    // The session works on either.
    on_first.cookie = on_second.cookie.clone();
    assert_eq!(on_first.get("/web/session").body["agent"], "alice");
}

/// `/assets/passkey.js` as served, run in Node with `navigator.credentials`
/// backed by a software authenticator (`tests/fixtures/passkeys/harness.js`):
/// enrol, sign in, answer, a refusal, sign out.
#[test]
#[cfg_attr(
    not(t_minus_test_tools),
    ignore = "needs node: set T_MINUS_TEST_TOOLS=1"
)]
fn passkey_js_enrols_signs_in_and_answers() {
    let t = T::new();
    t.ok("schedule review +15m --name rev --quorum 2 --attendees alice,bob");
    let token = invite(&t, "alice", "");
    let server = Server::start(&t, &[]);
    let mut browser = Browser::new(&server);
    let url = format!("{}/assets/passkey.js", server.base);
    let mut response = browser.http.get(&url).call().unwrap();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("text/javascript"),
        "{content_type}"
    );
    let script = response.body_mut().read_to_string().unwrap();
    assert!(script.contains("window.tMinusPasskey = {"));
    let path = t.dir().join("passkey.js");
    std::fs::write(&path, script).unwrap();
    let harness = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/passkeys/harness.js"
    );
    let origin = browser.origin.clone();
    let out = std::process::Command::new("node")
        .arg(harness)
        .arg(&path)
        .args([server.base.as_str(), origin.as_str(), token.as_str(), "rev"])
        .output()
        .expect("run node");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["enrolled"]["agent"], "alice", "{run}");
    assert_eq!(run["signedIn"]["agent"], "alice", "{run}");
    assert_eq!(status_of(&run["answered"], "alice"), "deferred", "{run}");
    assert_eq!(run["refused"]["status"], 400, "{run}");
    assert_eq!(run["refused"]["code"], "t_minus::input::reference", "{run}");
    assert_eq!(run["signedOut"]["signed_out"], true, "{run}");
    assert_eq!(
        run["afterSignOut"]["code"], "t_minus::passkey::session",
        "{run}"
    );
    let log = t.json("log rev --json");
    let deferred = log.as_array().unwrap().last().unwrap();
    assert_eq!(deferred["action"], "deferred");
    assert!(deferred["message"]
        .as_str()
        .unwrap()
        .contains("answer: defer 5m\n"));
    assert!(t.ok("verify").contains("intact"));
    browser.cookie = None;
}

cli_support::store_tests!(
    a_person_enrols_signs_in_and_answers_with_a_passkey,
    bad_passkey_requests_are_refused_with_their_codes,
    an_ip_address_cannot_be_the_relying_party,
    signed_events_accept_only_the_passkeys_their_signers_pin,
    verify_checks_a_passkey_answer_against_the_logged_public_key,
    a_ceremony_begun_by_one_server_finishes_on_another,
);
