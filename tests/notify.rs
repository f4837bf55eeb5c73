//! Notifications through the binary: exec hooks appending to a file, a
//! webhook receiver on a loopback `TcpListener`, reminders on a pinned
//! clock, retries and permanent failures, a hung hook killed at its
//! timeout, a runner killed mid-delivery, two runners on one store.
//!
//! Every test runs on SQLite and on PostgreSQL (`store_tests!` at the end).

use crate::cli_support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cli_support::{Out, T};
use serde_json::Value;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Request {
    headers: HashMap<String, String>,
    body: Value,
}

/// A webhook receiver on 127.0.0.1: answers each request with the next
/// status of its script (200 once the script is used up) and records it.
struct Receiver {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl Receiver {
    fn new(script: &[u16]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (requests.clone(), stop.clone());
        let mut script: Vec<u16> = script.iter().rev().copied().collect();
        std::thread::spawn(move || {
            // Bounded: at most 200 connections per test.
            for _ in 0..200 {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let status = script.pop().unwrap_or(200);
                serve(stream, status, |request| r.lock().unwrap().push(request));
            }
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            requests,
            stop,
            port,
        }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so its thread ends.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Reads one HTTP request, records it, then answers `status`: recorded
/// before the sender can see the answer, so a test that checks the requests
/// after its command returned finds every one it sent.
fn serve(stream: TcpStream, status: u16, record: impl FnOnce(Request)) -> Option<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut headers = HashMap::new();
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    if !line.starts_with("POST ") {
        return None;
    }
    for _ in 0..100 {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let length: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = vec![0; length.min(1 << 20)];
    reader.read_exact(&mut body).ok()?;
    record(Request {
        headers,
        body: serde_json::from_slice(&body).ok()?,
    });
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let _ = stream.flush();
    Some(())
}

/// Writes an executable hook script into the test's directory: it appends
/// `TRANSITION KEY EVENT ATTEMPT` to `hook.log` and the payload to
/// `payloads.jsonl`, after running `before` (shell code).
fn hook(t: &T, before: &str) -> PathBuf {
    let path = t.dir().join("hook.sh");
    let log = t.dir().join("hook.log");
    let payloads = t.dir().join("payloads.jsonl");
    let script = format!(
        "#!/bin/sh\n{before}\npayload=$(cat)\n\
         echo \"$T_MINUS_TRANSITION $T_MINUS_DELIVERY $T_MINUS_EVENT $T_MINUS_ATTEMPT\" >> '{}'\n\
         printf '%s\\n' \"$payload\" >> '{}'\n",
        log.display(),
        payloads.display()
    );
    std::fs::write(&path, script).unwrap();
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&path, perms).unwrap();
    path
}

/// The hook's log lines, split into words.
fn hook_lines(t: &T) -> Vec<Vec<String>> {
    std::fs::read_to_string(t.dir().join("hook.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// The payloads the hook got.
fn payloads(t: &T) -> Vec<Value> {
    std::fs::read_to_string(t.dir().join("payloads.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("payload is JSON"))
        .collect()
}

/// Runs a command line with a short retry backoff.
fn run_fast(t: &T, line: &str) -> Out {
    let mut cmd = t.command();
    cmd.env("T_MINUS_NOTIFY_BACKOFF", "50ms")
        .args(cli_support::split(line));
    cli_support::output(cmd)
}

/// The actions of an event's log, with their details.
fn log_entries(t: &T, id: &str) -> Vec<Value> {
    t.json(&format!("log {id} --json"))
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn actions(entries: &[Value], action: &str) -> Vec<Value> {
    entries
        .iter()
        .filter(|e| e["action"] == action)
        .cloned()
        .collect()
}

fn each_transition_is_delivered_once_with_its_payload() {
    let t = T::new();
    let hook = hook(&t, "");
    let id = t.schedule(&format!(
        "review 2025-06-06T15:00:00Z --quorum 2 --attendees alice,bob,carol \
         --notify-exec '{}' --on confirmed,declined,fired,missed",
        hook.display()
    ));
    // Answers queue deliveries; only tick (or run, wait) delivers them.
    t.ok(&format!("confirm {id} alice"));
    assert!(hook_lines(&t).is_empty());
    t.ok("tick");
    t.ok(&format!("decline {id} carol --reason away"));
    t.ok(&format!("confirm {id} bob"));
    t.ok("tick");
    t.ok("tick");
    // One tick delivers concurrently: compare without order.
    let lines = hook_lines(&t);
    let mut words: Vec<&str> = lines.iter().map(|l| l[0].as_str()).collect();
    words.sort();
    assert_eq!(words, ["confirmed", "confirmed", "declined", "fired"]);
    for line in &lines {
        assert_eq!(line[2], id, "T_MINUS_EVENT");
        assert_eq!(line[3], "1", "first attempt");
    }
    let mut keys: Vec<&str> = lines.iter().map(|l| l[1].as_str()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 4, "one key per delivery");

    let payloads = payloads(&t);
    let find = |on: &str| {
        payloads
            .iter()
            .find(|p| p["on"] == on)
            .cloned()
            .unwrap_or_else(|| panic!("no {on} payload"))
    };
    let fired = find("fired");
    let fired_line = lines.iter().find(|l| l[0] == "fired").unwrap();
    assert_eq!(fired["delivery"], fired_line[1].as_str());
    assert_eq!(fired["event"]["id"], id.as_str());
    assert_eq!(fired["event"]["state"], "fired");
    assert_eq!(fired["event"]["confirmed"], 2);
    assert_eq!(fired["detail"]["reason"], "quorum reached");
    let declined = find("declined");
    assert_eq!(declined["agent"], "carol");
    assert_eq!(declined["detail"]["reason"], "away");
    assert_eq!(declined["waiting_for"], serde_json::json!(["bob"]));
    assert_eq!(declined["event"]["state"], "pending", "as of the decline");

    let log = log_entries(&t, &id);
    let notified = actions(&log, "notified");
    assert_eq!(notified.len(), 4);
    assert!(notified.iter().all(|e| e["detail"]["attempts"] == 1));
    assert!(actions(&log, "notify-failed").is_empty());
}

fn webhooks_retry_after_500_and_give_up_after_400() {
    let t = T::new();
    let receiver = Receiver::new(&[500, 200]);
    let id = t.schedule(&format!(
        "deploy 2025-06-06T15:00:00Z --attendees alice --notify-webhook {} --on fired",
        receiver.url
    ));
    t.ok(&format!("confirm {id} alice"));
    run_fast(&t, "tick");
    assert_eq!(receiver.requests().len(), 1);
    let status = t.ok(&format!("status {id}"));
    assert!(status.contains("retrying (attempt 2 of 8"), "{status}");
    assert!(status.contains("HTTP 500"), "{status}");
    let json = t.json(&format!("status {id} --json"));
    assert_eq!(json["notifications"][0]["state"], "pending");
    std::thread::sleep(Duration::from_millis(120));
    run_fast(&t, "tick");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2, "retried once");
    let key = &requests[0].headers["t-minus-delivery"];
    assert_eq!(&requests[1].headers["t-minus-delivery"], key, "same key");
    assert_eq!(requests[1].body["delivery"], key.as_str());
    assert_eq!(requests[1].body["on"], "fired");
    assert_eq!(
        requests[1].headers["content-type"], "application/json",
        "json body"
    );
    let notified = actions(&log_entries(&t, &id), "notified");
    assert_eq!(notified.len(), 1);
    assert_eq!(notified[0]["detail"]["attempts"], 2);
    let status = t.ok(&format!("status {id}"));
    assert!(
        !status.contains("🔔"),
        "delivered ones are not listed: {status}"
    );

    // A 400 is permanent: no retry, `notify-failed` in the log.
    let refusing = Receiver::new(&[400]);
    let id = t.schedule(&format!(
        "deploy 2025-06-06T15:00:00Z --attendees alice --notify-webhook {} --on fired \
         --notify-format slack",
        refusing.url
    ));
    t.ok(&format!("confirm {id} alice"));
    run_fast(&t, "tick");
    std::thread::sleep(Duration::from_millis(120));
    run_fast(&t, "tick");
    let requests = refusing.requests();
    assert_eq!(requests.len(), 1, "no retry after 400");
    let text = requests[0].body["text"].as_str().unwrap_or_default();
    assert!(text.contains("fired"), "slack text: {text}");
    let failed = actions(&log_entries(&t, &id), "notify-failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["detail"]["attempts"], 1);
    assert!(failed[0]["detail"]["error"]
        .as_str()
        .unwrap()
        .contains("HTTP 400"));
    let status = t.ok(&format!("status {id}"));
    assert!(status.contains("failed after 1 attempt"), "{status}");
}

fn reminders_go_out_at_their_times_while_quorum_is_not_met() {
    let mut t = T::new();
    let hook = hook(&t, "");
    let id = t.schedule(&format!(
        "review 2025-06-06T15:00:00Z --attendees alice,bob --notify-exec '{}' \
         --on reminder --notify-before 5m --notify-before 2m",
        hook.display()
    ));
    // Quorum (1 of 1) is met before its reminder: none goes out.
    let met = t.schedule(&format!(
        "deploy 2025-06-06T15:00:00Z --attendees ops --notify-exec '{}' \
         --on reminder --notify-before 5m",
        hook.display()
    ));
    t.ok(&format!("confirm {met} ops"));
    t.set_now("2025-06-06T14:54:59Z");
    t.ok("tick");
    assert!(hook_lines(&t).is_empty(), "too early");
    t.set_now("2025-06-06T14:55:00Z");
    t.ok("tick");
    t.ok("tick");
    let lines = hook_lines(&t);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0][0], "reminder");
    assert_eq!(lines[0][2], id);
    let first = &payloads(&t)[0];
    assert_eq!(first["before_ms"], 300_000);
    assert_eq!(first["waiting_for"], serde_json::json!(["alice", "bob"]));
    assert_eq!(first["at"], "2025-06-06T14:55:00Z");

    t.set_now("2025-06-06T14:56:00Z");
    t.ok(&format!("confirm {id} alice"));
    t.set_now("2025-06-06T14:58:30Z");
    t.ok("tick");
    let lines = hook_lines(&t);
    assert_eq!(lines.len(), 2);
    let second = &payloads(&t)[1];
    assert_eq!(second["before_ms"], 120_000);
    assert_eq!(second["waiting_for"], serde_json::json!(["bob"]));
    t.set_now("2025-06-06T14:59:30Z");
    t.ok("tick");
    assert_eq!(hook_lines(&t).len(), 2, "each reminder once");
}

fn hung_hook_is_killed_at_its_timeout_and_retried_while_run_reports() {
    let t = T::new();
    let db = t.db_location();
    let pid_file = t.dir().join("hung.pid");
    // The first attempt hangs; later ones succeed.
    let hook = hook(
        &t,
        &format!(
            "if [ \"$T_MINUS_ATTEMPT\" = 1 ]; then echo $$ > '{}'; exec sleep 30; fi",
            pid_file.display()
        ),
    );
    let started = Instant::now();
    run_real(
        &db,
        &format!(
            "schedule checkpoint +300ms --quorum 0 --fire on-time --notify-exec {} \
             --on fired --notify-timeout 2s",
            hook.display()
        ),
    );
    // Fires while the first attempt hangs (0.3 s to 2.3 s).
    run_real(&db, "schedule checkpoint +1200ms --quorum 0 --fire on-time");
    // Keeps the run going until the retry is done.
    run_real(&db, "schedule checkpoint +3500ms --quorum 0 --fire on-time");
    let out = real(&db, "run --json --timeout 20s")
        .env("T_MINUS_NOTIFY_BACKOFF", "50ms")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.matches("\"fired\"").count() >= 3, "{stdout}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the hang was cut short"
    );

    let events = json_real(&db, "status --all --json");
    let events = events.as_array().unwrap();
    let mut hooked = None;
    let mut plain = Vec::new();
    for e in events {
        let log = json_real(&db, &format!("log {} --json", e["id"].as_str().unwrap()));
        let log = log.as_array().unwrap().clone();
        if actions(&log, "notified").is_empty() {
            plain.push((e.clone(), log));
        } else {
            hooked = Some((e.clone(), log));
        }
    }
    let (_, hooked_log) = hooked.expect("the hooked event was notified");
    let notified = actions(&hooked_log, "notified");
    assert_eq!(notified.len(), 1);
    assert_eq!(notified[0]["detail"]["attempts"], 2, "killed, then retried");
    // The other events were recorded on time, one of them while the hook hung.
    assert_eq!(plain.len(), 2);
    for (event, log) in &plain {
        let fired = &actions(log, "fired")[0];
        let recorded =
            chrono::DateTime::parse_from_rfc3339(fired["recorded_at"].as_str().unwrap()).unwrap();
        let due =
            chrono::DateTime::parse_from_rfc3339(event["fire_time"].as_str().unwrap()).unwrap();
        assert!(
            recorded - due < chrono::Duration::milliseconds(700),
            "fired late: {recorded} vs {due}"
        );
    }
    // The hung process is gone.
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let alive = Path::new(&format!("/proc/{}", pid.trim())).exists()
        && !std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
            .unwrap_or_default()
            .contains(") Z ");
    assert!(!alive, "the hook that hung was killed");
    let lines = hook_lines(&t);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0][3], "2");
}

fn a_runner_killed_mid_delivery_leaves_it_to_the_next_with_the_same_key() {
    let t = T::new();
    let db = t.db_location();
    let started = t.dir().join("started");
    // The first attempt says it started, then hangs until killed.
    let hook = hook(
        &t,
        &format!(
            "if [ \"$T_MINUS_ATTEMPT\" = 1 ]; then echo $T_MINUS_DELIVERY > '{}'; exec sleep 5; fi",
            started.display()
        ),
    );
    run_real(
        &db,
        &format!(
            "schedule checkpoint +200ms --quorum 0 --fire on-time --notify-exec {} \
             --on fired --notify-timeout 1s",
            hook.display()
        ),
    );
    let mut runner = real(&db, "run --json --timeout 20s")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !started.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(started.exists(), "the first attempt started");
    // kill -9: no chance to record anything.
    runner.kill().unwrap();
    runner.wait().unwrap();
    let first_key = std::fs::read_to_string(&started)
        .unwrap()
        .trim()
        .to_string();
    // The next process delivers it once the lease runs out (1 s + margin).
    let deadline = Instant::now() + Duration::from_secs(15);
    while hook_lines(&t).is_empty() && Instant::now() < deadline {
        run_real(&db, "tick");
        std::thread::sleep(Duration::from_millis(200));
    }
    let lines = hook_lines(&t);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0][1], first_key, "same idempotency key");
    assert_eq!(lines[0][3], "2", "second attempt");
}

fn two_runners_deliver_each_transition_once() {
    let t = T::new();
    let db = t.db_location();
    let hook = hook(&t, "");
    for i in 0..5 {
        run_real(
            &db,
            &format!(
                "schedule checkpoint +{}ms --quorum 0 --fire on-time --notify-exec {} --on fired",
                400 + i * 150,
                hook.display()
            ),
        );
    }
    let runners: Vec<_> = (0..2)
        .map(|_| {
            real(&db, "run --json --timeout 20s")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for r in runners {
        let out = r.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let lines = hook_lines(&t);
    let mut events: Vec<&str> = lines.iter().map(|l| l[2].as_str()).collect();
    events.sort();
    events.dedup();
    assert_eq!(lines.len(), 5, "no duplicates: {lines:?}");
    assert_eq!(events.len(), 5, "every event once");
}

fn hostile_notification_rules_are_refused_and_the_store_untouched() {
    let t = T::new();
    let err = t.fail(
        "schedule deploy 2025-06-06T15:00:00Z --notify-webhook 'https://hooks.example.com/${TOKEN}'",
    );
    assert!(err.contains("t_minus::input::notify"), "{err}");
    assert!(err.contains("header"), "says where secrets go: {err}");
    let err = t.fail("schedule deploy 2025-06-06T15:00:00Z --notify-webhook ftp://example.com");
    assert!(err.contains("not http(s)"), "{err}");
    let err = t.fail(
        "schedule deploy 2025-06-06T15:00:00Z --notify-webhook https://example.com --on reminder",
    );
    assert!(err.contains("`reminder` needs `before`"), "{err}");
    let err = t.fail(
        "schedule deploy 2025-06-06T15:00:00Z --notify-webhook https://example.com --on exploded",
    );
    assert!(err.contains("unknown trigger `exploded`"), "{err}");
    assert!(t.events().is_empty(), "nothing was scheduled");
}

fn notify_exec_is_split_with_shell_quoting() {
    let t = T::new();
    let script = t.dir().join("page.sh");
    let out = t.dir().join("args.txt");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncat > /dev/null\nprintf '%s|' \"$#\" \"$@\" >> '{}'\n",
            out.display()
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).unwrap();

    let id = t.schedule(&format!(
        "deploy 2025-06-06T15:00:00Z --attendees alice \
         --notify-exec \"{} --to 'on call' \\$HOME\" --on confirmed",
        script.display()
    ));
    t.ok(&format!("confirm {id} alice"));
    t.ok("tick");
    // Three arguments: `'on call'` is one word, `\$HOME` is not expanded.
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "3|--to|on call|$HOME|"
    );

    let err = t.fail(&format!(
        "schedule review 2025-06-06T15:00:00Z --attendees alice \
         --notify-exec \"{} --to 'on call\" --on confirmed",
        script.display()
    ));
    assert!(err.contains("t_minus::input::notify"), "{err}");
    assert!(err.contains("unbalanced quote"), "{err}");
    let err = t.fail("schedule review 2025-06-06T15:00:00Z --notify-exec '' --on fired");
    assert!(err.contains("names no program"), "{err}");
    assert_eq!(t.events().len(), 1, "only the first event was scheduled");
}

fn notify_test_sends_one_marked_delivery() {
    let t = T::new();
    let receiver = Receiver::new(&[200, 503]);
    let id = t.schedule(&format!(
        "deploy 2025-06-06T15:00:00Z --attendees alice --notify-webhook {} --on fired",
        receiver.url
    ));
    let out = t.ok(&format!("notify test {id} --on fired"));
    assert!(out.contains("delivered"), "{out}");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].body["test"], true);
    assert_eq!(requests[0].body["event"]["id"], id.as_str());
    let out = t.run(&format!("notify test {id} --on fired"));
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("HTTP 503"), "{}", out.stdout);
    // Nothing was queued or logged.
    assert!(actions(&log_entries(&t, &id), "notified").is_empty());
    assert_eq!(receiver.requests().len(), 2);
}

fn standalone_events_go_by_their_names() {
    let t = T::new();
    let receiver = Receiver::new(&[200]);
    let id = t.schedule(&format!(
        "deploy 2025-06-06T15:00:00Z --name deploy-eu --attendees alice,bob \
         --notify-webhook {} --on fired",
        receiver.url
    ));
    // The name works wherever an event is expected, and the notification
    // payload carries it.
    let out = t.ok("notify test deploy-eu --on fired");
    assert!(out.contains("delivered"), "{out}");
    let requests = receiver.requests();
    assert_eq!(requests[0].body["event"]["id"], id.as_str());
    assert_eq!(requests[0].body["event"]["name"], "deploy-eu");
    assert_eq!(t.json("confirm deploy-eu alice --json")["id"], id.as_str());
    assert_eq!(t.json("status deploy-eu --json")["name"], "deploy-eu");

    // One unfinished standalone event per name; names that read as ids are
    // refused.
    let err = t.fail("schedule deploy 2025-06-06T16:00:00Z --name deploy-eu --attendees carol");
    assert!(
        err.contains("t_minus::refused::duplicate_standalone_name"),
        "{err}"
    );
    let unwrapped: String = err
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '│')
        .collect();
    assert!(unwrapped.contains(&id), "{err}");
    for name in [
        "abcd",
        "dead-beef",
        "c35584c9-3741-4952-bc53-88ac60676790",
        "9lives",
    ] {
        let err = t.fail(&format!(
            "schedule deploy 2025-06-06T16:00:00Z --name {name} --attendees carol"
        ));
        assert!(err.contains("t_minus::input::name"), "{name}: {err}");
    }
    assert_eq!(t.events().len(), 1, "nothing else was scheduled");

    // Once final, the name may be given again; it then means the
    // unfinished event.
    t.ok("cancel deploy-eu");
    let second = t.schedule("deploy 2025-06-06T16:00:00Z --name deploy-eu --attendees carol,erin");
    assert_ne!(second, id);
    assert_eq!(
        t.json("confirm deploy-eu carol --json")["id"],
        second.as_str()
    );
    // Two final events of one name: ambiguous, and both are listed.
    t.ok(&format!("cancel {second}"));
    let err = t.fail("log deploy-eu");
    assert!(err.contains("t_minus::input::ambiguous"), "{err}");
    let unwrapped: String = err
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '│')
        .collect();
    assert!(
        unwrapped.contains(&id) && unwrapped.contains(&second),
        "{err}"
    );

    // A campaign of the same name as a standalone event: where a reference
    // may be either, it is ambiguous; where only an event fits, it is the
    // event.
    let third = t.schedule("review 2025-06-06T16:00:00Z --name gate --attendees dave");
    t.ok("campaign create gate");
    let err = t.fail("status gate");
    assert!(err.contains("t_minus::input::ambiguous"), "{err}");
    assert_eq!(t.json("confirm gate dave --json")["id"], third.as_str());
}

fn manifests_declare_rules_at_campaign_and_event_level() {
    let t = T::new();
    hook(&t, "");
    let manifest = t.dir().join("release.yaml");
    let write = |extra: &str| {
        std::fs::write(
            &manifest,
            format!(
                "campaign: rel\n\
                 notify:\n\
                 \x20 - on: [fired, missed]\n\
                 \x20   exec: [./hook.sh, --channel, releases]\n\
                 events:\n\
                 \x20 deploy:\n\
                 \x20   at: 2025-06-06T15:00:00Z\n\
                 \x20   attendees: [ops]\n\
                 \x20   notify:\n\
                 \x20     - on: [confirmed{extra}]\n\
                 \x20       exec: [./hook.sh]\n"
            ),
        )
        .unwrap();
    };
    write("");
    t.ok("validate release.yaml");
    t.ok("apply release.yaml");
    // A changed rule is a planned change of the `notify` field.
    write(", declined");
    let plan = t.ok("plan release.yaml");
    assert!(plan.contains("notify"), "{plan}");
    assert!(plan.contains("confirmed,declined"), "{plan}");
    t.ok("apply release.yaml");
    assert!(t.ok("plan release.yaml").contains("No changes"), "applied");
    t.ok("confirm rel/deploy ops");
    t.ok("tick");
    let mut words: Vec<String> = hook_lines(&t).into_iter().map(|l| l[0].clone()).collect();
    words.sort();
    // The campaign's rule (fired) and the event's (confirmed), once each.
    assert_eq!(words, ["confirmed", "fired"]);
    let fired = payloads(&t)
        .into_iter()
        .find(|p| p["on"] == "fired")
        .unwrap();
    assert_eq!(fired["event"]["campaign"], "rel");
    assert_eq!(fired["event"]["name"], "deploy");
}

fn hostile_manifests_are_refused() {
    let t = T::new();
    std::fs::write(
        t.dir().join("secret.yaml"),
        "campaign: rel\n\
         events:\n\
         \x20 deploy:\n\
         \x20   at: +10m\n\
         \x20   notify:\n\
         \x20     - on: [fired, exploded]\n\
         \x20       webhook: https://hooks.example.com/${TOKEN}\n\
         \x20     - on: [reminder]\n\
         \x20       exec: [./x.sh]\n\
         \x20     - on: [fired]\n\
         \x20       exec: [./x.sh]\n\
         \x20       webhook: http://127.0.0.1:9/\n",
    )
    .unwrap();
    let err = t.fail("validate secret.yaml");
    assert!(err.contains("t_minus::manifest::notify"), "{err}");
    assert!(err.contains("unknown trigger `exploded`"), "{err}");
    assert!(err.contains("holds `${…}`"), "{err}");
    assert!(err.contains("`reminder` needs `before`"), "{err}");
    assert!(err.contains("both `exec` and `webhook`"), "{err}");
    // Spans point at the nodes: the URL's line is shown.
    assert!(err.contains("https://hooks.example.com/${TOKEN}"), "{err}");

    let mut big = String::from("campaign: big\nnotify:\n");
    for _ in 0..10_000 {
        big.push_str("  - on: [fired]\n    exec: [./x.sh]\n");
    }
    big.push_str("events:\n  a:\n    at: +10m\n");
    std::fs::write(t.dir().join("big.yaml"), big).unwrap();
    let err = t.fail("apply big.yaml");
    assert!(
        err.contains("10000 notification rules (at most 64)"),
        "{err}"
    );
    assert!(t.events().is_empty(), "the store is untouched");
}

fn run_attempts_every_delivery_due_when_it_ends() {
    // One hook at a time; a slow `confirmed` delivery holds the slot while
    // three events fire at the end of the run: all three `fired`
    // deliveries must be attempted before `run` exits.
    let t = T::new();
    let db = t.db_location();
    let hook = hook(
        &t,
        "if [ \"$T_MINUS_TRANSITION\" = confirmed ]; then sleep 2; fi",
    );
    let gate = json_real(
        &db,
        &format!(
            "schedule checkpoint +1h --attendees alice --quorum 1 --notify-exec {} \
             --on confirmed --json",
            hook.display()
        ),
    );
    for _ in 0..3 {
        run_real(
            &db,
            &format!(
                "schedule checkpoint +800ms --quorum 0 --fire on-time --notify-exec {} --on fired",
                hook.display()
            ),
        );
    }
    run_real(
        &db,
        &format!("confirm {} alice", gate["id"].as_str().unwrap()),
    );
    let out = real(&db, "run --timeout 20s")
        .env("T_MINUS_NOTIFY_CONCURRENCY", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = hook_lines(&t);
    let mut words: Vec<&str> = lines.iter().map(|l| l[0].as_str()).collect();
    words.sort();
    assert_eq!(words, ["confirmed", "fired", "fired", "fired"], "{lines:?}");
}

/// Writes an executable script `name` into the test's directory.
fn script(t: &T, name: &str, body: &str) -> PathBuf {
    let path = t.dir().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&path, perms).unwrap();
    path
}

/// A hook that exits without reading a payload larger than a pipe holds:
/// the delivering process's write into its stdin fails, the process goes on
/// (the command line keeps SIGPIPE's default action for its own output),
/// and the delivery counts as made.
#[test]
fn a_hook_that_does_not_read_its_input_does_not_end_the_delivering_process() {
    let t = T::new();
    let hook = script(&t, "quick.sh", "exit 0");
    let payload = format!("{{\"blob\": \"{}\"}}", "x".repeat(65_000));
    std::fs::write(t.dir().join("payload.json"), &payload).unwrap();
    let mut cmd = t.command();
    cmd.arg("schedule")
        .arg("review")
        .arg("2025-06-06T15:00:00Z")
        .arg("--attendees")
        .arg("alice")
        .arg("--payload")
        .arg(&payload)
        .arg("--notify-exec")
        .arg(hook.display().to_string())
        .arg("--on")
        .arg("confirmed")
        .arg("--json");
    let out = cli_support::output(cmd);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let id = serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    t.ok(&format!("confirm {id} alice"));
    let mut cmd = t.command();
    cmd.arg("tick");
    let out = cli_support::output(cmd);
    assert_eq!(out.code, 0, "stderr: {} stdout: {}", out.stderr, out.stdout);
    let log = t.ok(&format!("log {id}"));
    assert!(log.contains("notified"), "{log}");
}

fn exec_hooks_see_only_the_documented_environment() {
    let t = T::new();
    let env_file = t.dir().join("env.txt");
    let hook = script(&t, "env.sh", &format!("env > '{}'", env_file.display()));
    let id = t.schedule(&format!(
        "review 2025-06-06T15:00:00Z --attendees alice --notify-exec {} --on confirmed",
        hook.display()
    ));
    t.ok(&format!("confirm {id} alice"));
    let mut cmd = t.command();
    cmd.env("T_MINUS_TEST_SIGNING_KEY", "/secret/key")
        .env("HOOK_TOKEN", "for-the-hook")
        .env("T_MINUS_HOOK_ENV", "HOOK_TOKEN")
        .env("LANG", "C.UTF-8")
        .arg("tick");
    let out = cli_support::output(cmd);
    assert_eq!(out.code, 0, "stderr: {} stdout: {}", out.stderr, out.stdout);
    let text = std::fs::read_to_string(&env_file).unwrap();
    let mut names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once('=').map(|(n, _)| n))
        // What the shell itself adds.
        .filter(|n| !matches!(*n, "PWD" | "OLDPWD" | "SHLVL" | "_"))
        .collect();
    names.sort();
    let documented = [
        "HOME",
        "HOOK_TOKEN",
        "LANG",
        "LC_ALL",
        "PATH",
        "TMPDIR",
        "TZ",
        "T_MINUS_ATTEMPT",
        "T_MINUS_CAMPAIGN",
        "T_MINUS_DELIVERY",
        "T_MINUS_EVENT",
        "T_MINUS_EVENT_NAME",
        "T_MINUS_TRANSITION",
    ];
    for name in &names {
        assert!(documented.contains(name), "{name} leaked: {text}");
    }
    for name in [
        "PATH",
        "LANG",
        "HOOK_TOKEN",
        "T_MINUS_EVENT",
        "T_MINUS_TRANSITION",
    ] {
        assert!(names.contains(&name), "{name} missing: {text}");
    }
    assert!(text.contains("HOOK_TOKEN=for-the-hook"), "{text}");
    assert!(!text.contains("/secret/key"), "{text}");
}

fn header_variables_expand_only_when_allowed() {
    let t = T::new();
    let receiver = Receiver::new(&[]);
    std::fs::write(
        t.dir().join("hooked.yaml"),
        format!(
            "campaign: hooked\n\
             events:\n\
             \x20 deploy:\n\
             \x20   at: 2025-06-06T15:00:00Z\n\
             \x20   attendees: [ops, qa]\n\
             \x20   notify:\n\
             \x20     - on: [confirmed]\n\
             \x20       webhook: {}\n\
             \x20       headers: {{ Authorization: \"Bearer ${{HOOK_SECRET}}\" }}\n",
            receiver.url
        ),
    )
    .unwrap();
    t.ok("apply hooked.yaml");
    let tick = |allow: &str| {
        let mut cmd = t.command();
        cmd.env("HOOK_SECRET", "s3cret")
            .env("T_MINUS_HOOK_ENV", allow)
            .env("T_MINUS_NOTIFY_BACKOFF", "50ms")
            .arg("tick");
        let out = cli_support::output(cmd);
        assert_eq!(out.code, 0, "stderr: {} stdout: {}", out.stderr, out.stdout);
    };
    // Not allowed: refused without a request, `notify-failed` in the log.
    t.ok("confirm hooked/deploy ops");
    tick("OTHER_TOKEN");
    assert!(receiver.requests().is_empty(), "nothing was sent");
    let id = t.json("status hooked/deploy --json")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let failed = actions(&log_entries(&t, &id), "notify-failed");
    assert_eq!(failed.len(), 1);
    let error = failed[0]["detail"]["error"].as_str().unwrap();
    assert!(
        error.contains("${HOOK_SECRET}") && error.contains("T_MINUS_HOOK_ENV"),
        "{error}"
    );
    assert!(!error.contains("s3cret"), "{error}");
    // Allowed: sent.
    t.ok("confirm hooked/deploy qa");
    tick("OTHER_TOKEN, HOOK_SECRET");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].headers["authorization"], "Bearer s3cret");
}

fn webhooks_to_link_local_addresses_are_refused_before_connecting() {
    let t = T::new();
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]:8080/hook",
        "http://[fd00:ec2::254]/latest",
    ] {
        let id = t.schedule(&format!(
            "deploy 2025-06-06T15:00:00Z --attendees alice --notify-webhook {url} --on confirmed \
             --notify-timeout 30s"
        ));
        t.ok(&format!("confirm {id} alice"));
        let started = Instant::now();
        run_fast(&t, "tick");
        // Refused before any connection: no wait for a connect timeout.
        assert!(started.elapsed() < Duration::from_secs(10), "{url}");
        let failed = actions(&log_entries(&t, &id), "notify-failed");
        assert_eq!(failed.len(), 1, "{url}: refused for good");
        let error = failed[0]["detail"]["error"].as_str().unwrap();
        assert!(
            error.contains("refused to connect") && error.contains("T_MINUS_HOOK_ALLOW_LINK_LOCAL"),
            "{error}"
        );
    }
}

fn a_hook_tree_that_left_its_session_is_killed_at_the_timeout() {
    let t = T::new();
    let pid_file = t.dir().join("grandchild.pid");
    // The hook starts a child in a session of its own, which starts a
    // grandchild (a double fork), and then hangs.
    let hook = script(
        &t,
        "escape.sh",
        &format!(
            "setsid sh -c 'sleep 60 & echo $! > \"{}\"; wait' </dev/null >/dev/null 2>&1 &\n\
             sleep 60",
            pid_file.display()
        ),
    );
    let id = t.schedule(&format!(
        "deploy 2025-06-06T15:00:00Z --attendees alice --notify-exec {} --on confirmed \
         --notify-timeout 1s --notify-retry 1",
        hook.display()
    ));
    t.ok(&format!("confirm {id} alice"));
    let started = Instant::now();
    run_fast(&t, "tick");
    assert!(started.elapsed() < Duration::from_secs(10), "cut short");
    let failed = actions(&log_entries(&t, &id), "notify-failed");
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]["detail"]["error"]
            .as_str()
            .unwrap()
            .contains("did not finish within 1s"),
        "{failed:?}"
    );
    let pid = std::fs::read_to_string(&pid_file).expect("the grandchild started");
    let pid = pid.trim();
    // Killed and reaped: gone (at most a zombie for a moment).
    let deadline = Instant::now() + Duration::from_secs(3);
    let alive = || {
        Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ")
    };
    while alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !alive(),
        "the grandchild {pid} in its own session was killed"
    );
}

fn a_relative_exec_path_is_resolved_when_the_rule_is_written() {
    let t = T::new();
    hook(&t, "");
    let id = t.schedule(
        "review 2025-06-06T15:00:00Z --attendees alice --notify-exec ./hook.sh --on confirmed",
    );
    let rules = t.json(&format!("status {id} --json"));
    let stored = t.dir().join("hook.sh");
    let hook = rules["notifications"][0]["hook"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // Delivered from another directory, the same program runs.
    t.ok(&format!("confirm {id} alice"));
    let out = real(&t.db_location(), "tick")
        .current_dir("/")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(hook_lines(&t).len(), 1, "ran {hook}");
    let log = log_entries(&t, &id);
    let notified = actions(&log, "notified");
    assert_eq!(
        notified[0]["detail"]["hook"],
        format!("exec {}", stored.display()),
        "stored as an absolute path"
    );
}

// ───────────── real-clock helpers (run/tick processes) ─────────────

/// `t-minus --db DB ARGS` on the real clock.
fn real(db: &str, args: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_t-minus"));
    cmd.arg("--db")
        .arg(db)
        .args(cli_support::split(args))
        .env("NO_COLOR", "1")
        .env("T_MINUS_NOTIFY_BACKOFF", "50ms")
        .env_remove("T_MINUS_NOW")
        .env_remove("T_MINUS_DB");
    cmd
}

fn run_real(db: &str, args: &str) -> String {
    let out = real(db, args).output().unwrap();
    assert!(
        out.status.success(),
        "t-minus {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json_real(db: &str, args: &str) -> Value {
    serde_json::from_str(&run_real(db, args)).expect("JSON output")
}

cli_support::store_tests!(
    standalone_events_go_by_their_names,
    each_transition_is_delivered_once_with_its_payload,
    webhooks_retry_after_500_and_give_up_after_400,
    reminders_go_out_at_their_times_while_quorum_is_not_met,
    hung_hook_is_killed_at_its_timeout_and_retried_while_run_reports,
    a_runner_killed_mid_delivery_leaves_it_to_the_next_with_the_same_key,
    two_runners_deliver_each_transition_once,
    hostile_notification_rules_are_refused_and_the_store_untouched,
    notify_exec_is_split_with_shell_quoting,
    notify_test_sends_one_marked_delivery,
    manifests_declare_rules_at_campaign_and_event_level,
    hostile_manifests_are_refused,
    run_attempts_every_delivery_due_when_it_ends,
    exec_hooks_see_only_the_documented_environment,
    header_variables_expand_only_when_allowed,
    webhooks_to_link_local_addresses_are_refused_before_connecting,
    a_hook_tree_that_left_its_session_is_killed_at_the_timeout,
    a_relative_exec_path_is_resolved_when_the_rule_is_written,
);
