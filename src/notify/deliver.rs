//! Delivering queued notifications: claiming them under a lease, running
//! the hooks on worker threads, and writing each outcome to the log.
//!
//! A claim is a write transaction that moves each due delivery's next time
//! to the end of its lease (its timeout plus [`LEASE_MARGIN`]) and counts the
//! attempt, so other processes skip it while it is under way; a process
//! killed mid-delivery leaves the lease to run out, and the next process
//! attempts it again with the same key (at least once). Outcomes are written
//! in transactions of their own: a `notified` entry in the event's log, or
//! after the last attempt (or a permanent failure) `notify-failed` with the
//! attempt count and the error. Failed attempts are retried with
//! exponential backoff.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration as StdDuration;

use chrono::Duration;
use serde_json::json;
use wait_timeout::ChildExt;

use crate::audit::AuditAction;
use crate::engine::settle::audit;
use crate::error::Result;
use crate::store::Store;

use super::payload;
use super::queue::{wall_now, Delivery, DeliveryState};
use super::spec::{expand, Hook, WebhookFormat};

/// Added to a delivery's timeout to make its lease.
pub const LEASE_MARGIN: StdDuration = StdDuration::from_secs(2);

/// How deliveries are run.
#[derive(Debug, Clone)]
pub struct DeliverOptions {
    /// How many hooks may run at once.
    pub concurrency: usize,
    /// The pause after the first failed attempt; it doubles with each
    /// further failure.
    pub backoff: StdDuration,
    /// The longest pause between attempts.
    pub max_backoff: StdDuration,
    /// How often the background deliverer looks for due deliveries.
    pub poll: StdDuration,
}

impl Default for DeliverOptions {
    /// Four at once, backoff from 1 s capped at 10 min, polled every 100 ms.
    fn default() -> Self {
        DeliverOptions {
            concurrency: 4,
            backoff: StdDuration::from_secs(1),
            max_backoff: StdDuration::from_secs(600),
            poll: StdDuration::from_millis(100),
        }
    }
}

impl DeliverOptions {
    /// The pause after failed attempt number `attempts` (from 1).
    pub fn backoff_after(&self, attempts: u32) -> StdDuration {
        let factor = 1u32 << attempts.saturating_sub(1).min(20);
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth trying again (a timeout, a network error, HTTP 429 or 5xx, a
    /// hook that exited non-zero).
    Retry(String),
    /// Trying again would not help (HTTP 4xx other than 429, a program that
    /// does not exist).
    Permanent(String),
}

impl Failure {
    /// The error text.
    pub fn message(&self) -> &str {
        match self {
            Failure::Retry(m) | Failure::Permanent(m) => m,
        }
    }
}

/// The result of one attempt, as written to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The delivery after the outcome was written.
    pub delivery: Delivery,
    /// `None` when the hook accepted it.
    pub failure: Option<Failure>,
}

/// Claims up to `limit` due deliveries for this process: each gets a lease
/// and its attempt counted, in one write transaction.
pub fn claim(store: &mut dyn Store, limit: usize) -> Result<Vec<Delivery>> {
    claim_due_by(store, limit, wall_now())
}

/// [`claim`] of the deliveries due by `due_by` (leases still start now).
fn claim_due_by(
    store: &mut dyn Store,
    limit: usize,
    due_by: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Delivery>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    // Look first without the write lock: most polls find nothing due, and
    // must not hold up writers.
    if store.read()?.due_deliveries(due_by, 1)?.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = store.write()?;
    let now = wall_now();
    let mut due = tx.due_deliveries(due_by, limit)?;
    for d in &mut due {
        d.attempts += 1;
        d.next_at = now + lease(d);
        tx.update_delivery(d)?;
    }
    tx.commit()?;
    Ok(due)
}

/// A delivery's lease: its timeout and [`LEASE_MARGIN`].
fn lease(d: &Delivery) -> Duration {
    Duration::from_std(d.rule.timeout() + LEASE_MARGIN).unwrap_or(Duration::hours(2))
}

/// Makes one attempt at a claimed delivery: runs the command or calls the
/// webhook. Blocks for at most the rule's timeout (plus connection set-up).
pub fn attempt(d: &Delivery) -> std::result::Result<(), Failure> {
    match &d.rule.hook {
        Hook::Exec { argv } => exec(d, argv),
        Hook::Webhook {
            url,
            format,
            headers,
        } => webhook(d, url, *format, headers),
    }
}

/// Writes the outcome of an attempt: delivered, retried later, or given up;
/// logs `notified` or `notify-failed`. A delivery another process finished
/// in the meantime is left as it is.
pub fn record(
    store: &mut dyn Store,
    claimed: &Delivery,
    failure: Option<Failure>,
    options: &DeliverOptions,
) -> Result<Outcome> {
    let mut tx = store.write()?;
    let now = wall_now();
    let mut d = match tx.delivery(claimed.key)? {
        Some(d) if d.state == DeliveryState::Pending => d,
        Some(d) => {
            return Ok(Outcome {
                delivery: d,
                failure,
            })
        }
        None => claimed.clone(),
    };
    let base = json!({
        "delivery": d.key,
        "on": d.on.as_str(),
        "hook": d.rule.hook.describe(),
        "attempts": d.attempts,
    });
    match &failure {
        None => {
            d.state = DeliveryState::Delivered;
            d.finished_at = Some(now);
            d.last_error = None;
            audit(
                &mut *tx,
                d.event,
                now,
                now,
                None,
                AuditAction::Notified,
                base,
            )?;
        }
        Some(f) => {
            d.last_error = Some(f.message().to_string());
            let permanent = matches!(f, Failure::Permanent(_));
            if permanent || d.attempts >= d.rule.attempts {
                d.state = DeliveryState::Failed;
                d.finished_at = Some(now);
                let mut detail = base;
                detail["error"] = json!(f.message());
                audit(
                    &mut *tx,
                    d.event,
                    now,
                    now,
                    None,
                    AuditAction::NotifyFailed,
                    detail,
                )?;
            } else {
                let pause = Duration::from_std(options.backoff_after(d.attempts))
                    .unwrap_or(Duration::minutes(10));
                d.next_at = now + pause;
            }
        }
    }
    tx.update_delivery(&d)?;
    tx.commit()?;
    Ok(Outcome {
        delivery: d,
        failure,
    })
}

/// Delivers everything due now, at most `options.concurrency` at a time,
/// and returns the outcomes; blocks until they are written. A delivery
/// that fails waits for its backoff: a later call retries it.
pub fn deliver_due(store: &mut dyn Store, options: &DeliverOptions) -> Result<Vec<Outcome>> {
    let mut outcomes = Vec::new();
    let due_by = wall_now();
    loop {
        let batch = claim_due_by(store, options.concurrency.max(1), due_by)?;
        if batch.is_empty() {
            return Ok(outcomes);
        }
        let results: Vec<(Delivery, Option<Failure>)> = std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .into_iter()
                .map(|d| {
                    s.spawn(move || {
                        let result = attempt(&d).err();
                        (d, result)
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        for (d, failure) in results {
            outcomes.push(record(store, &d, failure, options)?);
        }
    }
}

/// Delivers in the background, off the caller's thread: a dispatcher thread
/// with its own store connection claims due deliveries and runs each on a
/// worker thread, at most `concurrency` at once, so a hung hook delays
/// nothing else. On a store that reports changes (an SQLite file) an idle
/// dispatcher sleeps until a write lands, the next queued delivery is due,
/// or it is told to stop; elsewhere it looks every [`DeliverOptions::poll`].
pub struct Deliverer {
    stop: Arc<AtomicBool>,
    drain: Arc<AtomicBool>,
    wake: mpsc::Sender<Message>,
    handle: Option<JoinHandle<Result<Vec<Outcome>>>>,
}

/// What wakes the dispatcher.
enum Message {
    /// A worker's attempt ended.
    Done(Box<Delivery>, Option<Failure>),
    /// The store may have changed, or a stop was requested.
    Wake,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer").finish_non_exhaustive()
    }
}

impl Deliverer {
    /// Starts delivering from `store` (a connection of its own).
    pub fn start(store: Box<dyn Store>, options: DeliverOptions) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let drain = Arc::new(AtomicBool::new(false));
        let (wake, messages) = mpsc::channel();
        let (s, d, w) = (stop.clone(), drain.clone(), wake.clone());
        let handle = std::thread::Builder::new()
            .name("t-minus-notify".into())
            .spawn(move || dispatch(store, &options, &s, &d, &w, &messages))
            .ok();
        Deliverer {
            stop,
            drain,
            wake,
            handle,
        }
    }

    /// Stops after attempting every delivery due now (at the call) and
    /// finishing what is under way (each bounded by its timeout), however
    /// many that takes at the concurrency limit; retries and deliveries due
    /// later stay queued. Returns the outcomes of the whole run.
    pub fn finish(mut self) -> Result<Vec<Outcome>> {
        self.drain.store(true, Ordering::SeqCst);
        let _ = self.wake.send(Message::Wake);
        self.join()
    }

    /// Stops as soon as the attempts under way end.
    pub fn stop(mut self) -> Result<Vec<Outcome>> {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.wake.send(Message::Wake);
        self.join()
    }

    fn join(&mut self) -> Result<Vec<Outcome>> {
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) | None => Ok(Vec::new()),
        }
    }
}

impl Drop for Deliverer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.wake.send(Message::Wake);
    }
}

/// How long an idle dispatcher on a store that reports changes sleeps at
/// most before it looks for due deliveries anyway (in case a notification
/// was lost).
const IDLE_LOOK: StdDuration = StdDuration::from_secs(5);

/// After a change notification, how many times (a millisecond apart) an idle
/// dispatcher looks for the commit that caused it to become visible.
const COMMIT_GRACE_POLLS: usize = 20;

/// The dispatcher loop of a [`Deliverer`].
fn dispatch(
    mut store: Box<dyn Store>,
    options: &DeliverOptions,
    stop: &AtomicBool,
    drain: &AtomicBool,
    wake: &mpsc::Sender<Message>,
    messages: &mpsc::Receiver<Message>,
) -> Result<Vec<Outcome>> {
    let watched = {
        let wake = wake.clone();
        store.watch_changes(Box::new(move || {
            let _ = wake.send(Message::Wake);
        }))
    };
    let mut outcomes = Vec::new();
    let mut in_flight = 0usize;
    let mut backlog: VecDeque<Delivery> = VecDeque::new();
    // From the moment draining starts: that moment (what is due by it must
    // be attempted before the dispatcher ends) and whether the last claim
    // found nothing more due by it.
    let mut drain_at: Option<chrono::DateTime<chrono::Utc>> = None;
    let mut drained = false;
    // The data version when the store was last looked at, and when the next
    // delivery queued then is due: what an idle dispatcher waits for.
    let mut seen_version: Option<i64> = None;
    let mut next_due: Option<chrono::DateTime<chrono::Utc>> = None;
    let limit = options.concurrency.max(1);
    loop {
        if stop.load(Ordering::SeqCst) && in_flight == 0 {
            return Ok(outcomes);
        }
        let draining = drain.load(Ordering::SeqCst);
        if draining && drain_at.is_none() {
            drain_at = Some(wall_now());
        }
        // While draining, keep claiming what was due when draining started
        // until a claim finds nothing more: a claim is capped by the free
        // slots, so one claim may leave due deliveries behind.
        let may_claim = !stop.load(Ordering::SeqCst) && !drained;
        if may_claim && backlog.is_empty() && in_flight < limit {
            if watched {
                seen_version = store.data_version().ok();
            }
            let claimed = match drain_at {
                Some(at) => claim_due_by(&mut *store, limit - in_flight, at),
                None => claim(&mut *store, limit - in_flight),
            };
            match claimed {
                Ok(batch) => {
                    drained = drain_at.is_some() && batch.is_empty();
                    backlog.extend(batch);
                }
                Err(e) if e.is_transient() => {}
                Err(e) => return Err(e),
            }
            next_due = None;
            if watched && backlog.is_empty() {
                let horizon = wall_now() + Duration::from_std(IDLE_LOOK).unwrap_or_default();
                if let Ok(mut tx) = store.read() {
                    next_due = tx
                        .due_deliveries(horizon, 1)
                        .ok()
                        .and_then(|d| d.first().map(|d| d.next_at));
                }
            }
        }
        while in_flight < limit {
            let Some(d) = backlog.pop_front() else { break };
            let done = wake.clone();
            in_flight += 1;
            std::thread::spawn(move || {
                let failure = attempt(&d).err();
                let _ = done.send(Message::Done(Box::new(d), failure));
            });
        }
        if drained && in_flight == 0 && backlog.is_empty() {
            return Ok(outcomes);
        }
        let idle = watched && in_flight == 0 && backlog.is_empty();
        let timeout = if idle {
            // A delivery found due that the claim did not take (the claim
            // failed) is looked for again after the poll interval, not at
            // once.
            next_due
                .map(|at| match (at - wall_now()).to_std() {
                    Ok(until) if !until.is_zero() => until,
                    _ => options.poll,
                })
                .unwrap_or(IDLE_LOOK)
                .min(IDLE_LOOK)
        } else {
            options.poll
        };
        let mut woken = false;
        let mut next = messages.recv_timeout(timeout).ok();
        while let Some(message) = next {
            match message {
                Message::Done(d, failure) => {
                    in_flight -= 1;
                    outcomes.push(record(&mut *store, &d, failure, options)?);
                }
                Message::Wake => woken = true,
            }
            next = messages.try_recv().ok();
        }
        if woken && idle && !stop.load(Ordering::SeqCst) && !drain.load(Ordering::SeqCst) {
            // A commit writes its WAL frames (which is what sends the
            // notification) before it makes them visible: look for it for a
            // short while before claiming.
            for _ in 0..COMMIT_GRACE_POLLS {
                if store.data_version().ok() != seen_version {
                    break;
                }
                std::thread::sleep(StdDuration::from_millis(1));
            }
        }
    }
}

/// The environment and stdin of an exec hook; killed at its timeout.
fn exec(d: &Delivery, argv: &[String]) -> std::result::Result<(), Failure> {
    let Some((program, args)) = argv.split_first() else {
        return Err(Failure::Permanent("no program to run".into()));
    };
    let event = &d.payload["event"];
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env("T_MINUS_EVENT", d.event.to_string())
        .env("T_MINUS_CAMPAIGN", event["campaign"].as_str().unwrap_or(""))
        .env("T_MINUS_EVENT_NAME", event["name"].as_str().unwrap_or(""))
        .env("T_MINUS_TRANSITION", d.on.as_str())
        .env("T_MINUS_DELIVERY", d.key.to_string())
        .env("T_MINUS_ATTEMPT", d.attempts.to_string());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Its own process group, so a timeout kills what it started too.
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().map_err(|e| {
        let message = format!("cannot run {program}: {e}");
        match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                Failure::Permanent(message)
            }
            _ => Failure::Retry(message),
        }
    })?;
    let input = d.payload.to_string();
    if let Some(mut stdin) = child.stdin.take() {
        std::thread::spawn(move || {
            // A hook that does not read its input is fine.
            let _ = stdin.write_all(input.as_bytes());
        });
    }
    // Read on a thread of its own: a hook that leaves a child holding its
    // stderr must not block the delivery.
    let (said_tx, said_rx) = mpsc::channel::<String>();
    if let Some(mut err) = child.stderr.take() {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = (&mut err).take(64 * 1024).read_to_end(&mut text);
            let _ = said_tx.send(String::from_utf8_lossy(&text).into_owned());
        });
    }
    let timeout = d.rule.timeout();
    let status = match child.wait_timeout(timeout) {
        Ok(Some(status)) => status,
        Ok(None) => {
            kill(&mut child);
            return Err(Failure::Retry(format!(
                "{program} did not finish within {} and was killed",
                humantime::format_duration(timeout)
            )));
        }
        Err(e) => {
            kill(&mut child);
            return Err(Failure::Retry(format!("waiting for {program}: {e}")));
        }
    };
    if status.success() {
        return Ok(());
    }
    // What it wrote to stderr explains the exit.
    let said = said_rx
        .recv_timeout(StdDuration::from_secs(1))
        .map(|s| last_line(&s))
        .unwrap_or_default();
    let code = match status.code() {
        Some(c) => format!("exit status {c}"),
        None => "killed by a signal".into(),
    };
    Err(Failure::Retry(if said.is_empty() {
        format!("{program} failed ({code})")
    } else {
        format!("{program} failed ({code}): {said}")
    }))
}

/// Kills a hook and everything in its process group, and reaps it.
fn kill(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill(2) with a negative pid signals the process group
            // the child leads (it was started with process_group(0)); it
            // touches no memory.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The last non-empty line of `text`, at most 300 characters.
fn last_line(text: &str) -> String {
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    line.chars().take(300).collect()
}

/// POSTs the delivery: 2xx is success, 429 and 5xx and network errors are
/// retried, other statuses are permanent failures.
fn webhook(
    d: &Delivery,
    url: &str,
    format: WebhookFormat,
    headers: &std::collections::BTreeMap<String, String>,
) -> std::result::Result<(), Failure> {
    let body = match format {
        WebhookFormat::Json => d.payload.to_string(),
        WebhookFormat::Slack => json!({ "text": payload::text(&d.payload) }).to_string(),
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(d.rule.timeout()))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("t-minus/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut request = agent
        .post(url)
        .header("Content-Type", "application/json")
        .header("T-Minus-Delivery", d.key.to_string())
        .header("T-Minus-Event", d.event.to_string())
        .header("T-Minus-Transition", d.on.as_str());
    for (name, value) in headers {
        let value = expand(value).map_err(Failure::Retry)?;
        request = request.header(name.as_str(), value);
    }
    match request.send(body) {
        Ok(response) => {
            let status = response.status().as_u16();
            match status {
                200..=299 => Ok(()),
                429 | 500..=599 => Err(Failure::Retry(format!("HTTP {status} from {url}"))),
                _ => Err(Failure::Permanent(format!("HTTP {status} from {url}"))),
            }
        }
        Err(e) => Err(Failure::Retry(format!("{url}: {e}"))),
    }
}
