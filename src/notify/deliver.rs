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

use crate::notification::payload;
use crate::notification::spec::{expand, ExpandError, Hook, WebhookFormat};
use crate::notification::{wall_now, Delivery, DeliveryState};

/// Added to a delivery's timeout to make its lease.
pub const LEASE_MARGIN: StdDuration = StdDuration::from_secs(2);

/// The variable naming (comma-separated) the variables of the delivering
/// process that hooks may use: `${VAR}` in a webhook header expands only
/// these, and exec hooks get them in their environment.
pub const HOOK_ENV_VAR: &str = "T_MINUS_HOOK_ENV";

/// The variable that, set to `1`, lets webhooks reach link-local and cloud
/// metadata addresses.
pub const ALLOW_LINK_LOCAL_VAR: &str = "T_MINUS_HOOK_ALLOW_LINK_LOCAL";

/// The variables of the delivering process every exec hook gets, when they
/// are set (`PATH` defaults to [`DEFAULT_PATH`]); besides these, a hook sees
/// only its `T_MINUS_*` event variables and what [`HOOK_ENV_VAR`] allows.
pub const HOOK_BASE_ENV: [&str; 6] = ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"];

/// An exec hook's `PATH` when the delivering process has none.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

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
    /// Whether the background deliverer keeps every outcome to return when
    /// it stops (a run's report); a long-lived service does not.
    pub keep_outcomes: bool,
    /// The URL people reach the service's pages at (`serve --public-url`,
    /// or [`PUBLIC_URL_VAR`]): each payload then carries its event's
    /// `answer_url`. `None`: payloads carry none.
    pub public_url: Option<String>,
}

/// The variable that gives processes other than `serve` (`run`, `wait`,
/// `tick`, `notify test`) the service's public URL, for the `answer_url` of
/// the payloads they deliver.
pub const PUBLIC_URL_VAR: &str = "T_MINUS_PUBLIC_URL";

impl Default for DeliverOptions {
    /// Four at once, backoff from 1 s capped at 10 min, polled every 100 ms.
    fn default() -> Self {
        DeliverOptions {
            concurrency: 4,
            backoff: StdDuration::from_secs(1),
            max_backoff: StdDuration::from_secs(600),
            poll: StdDuration::from_millis(100),
            keep_outcomes: true,
            public_url: None,
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
/// webhook, with the payload's `answer_url` under `public_url` when given
/// (see [`payload::as_delivered`]). Blocks for at most the rule's timeout
/// (plus connection set-up).
pub fn attempt(d: &Delivery, public_url: Option<&str>) -> std::result::Result<(), Failure> {
    let body = payload::as_delivered(&d.payload, public_url);
    match &d.rule.hook {
        Hook::Exec { argv } => exec(d, argv, &body),
        Hook::Webhook {
            url,
            format,
            headers,
        } => webhook(d, url, *format, headers, &body),
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
                        let result = attempt(&d, options.public_url.as_deref()).err();
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

    /// Whether the dispatcher still runs: false once it stopped on an error
    /// (the store could not be reached), which [`Deliverer::stop`] returns.
    pub fn is_running(&self) -> bool {
        self.handle.as_ref().is_some_and(|h| !h.is_finished())
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
            let public_url = options.public_url.clone();
            in_flight += 1;
            std::thread::spawn(move || {
                let failure = attempt(&d, public_url.as_deref()).err();
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
                    let outcome = record(&mut *store, &d, failure, options)?;
                    if options.keep_outcomes {
                        outcomes.push(outcome);
                    }
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

/// Blocks SIGPIPE for the calling thread, so that its writes into a pipe
/// whose reader is gone fail with `EPIPE` instead of killing the process.
/// A SIGPIPE left pending on the thread is dropped when the thread ends.
#[cfg(unix)]
fn block_sigpipe_in_this_thread() {
    // SAFETY: changes the calling thread's signal mask only, with a set
    // initialised by sigemptyset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// The environment and stdin of an exec hook; killed at its timeout.
fn exec(
    d: &Delivery,
    argv: &[String],
    payload: &serde_json::Value,
) -> std::result::Result<(), Failure> {
    let Some((program, args)) = argv.split_first() else {
        return Err(Failure::Permanent("no program to run".into()));
    };
    let event = &d.payload["event"];
    let mut cmd = Command::new(program);
    // Only what the operator allows: a few variables every program expects,
    // those named by T_MINUS_HOOK_ENV, and the event's own.
    cmd.env_clear();
    for name in HOOK_BASE_ENV {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
    if std::env::var_os("PATH").is_none() {
        cmd.env("PATH", DEFAULT_PATH);
    }
    for name in allowed_variables() {
        if let Some(value) = std::env::var_os(&name) {
            cmd.env(name, value);
        }
    }
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
    let timeout = d.rule.timeout();
    #[cfg(target_os = "linux")]
    reaper::install(&mut cmd, timeout);
    let started = std::time::Instant::now();
    let mut child = cmd.spawn().map_err(|e| {
        let message = format!("cannot run {program}: {e}");
        match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                Failure::Permanent(message)
            }
            _ => Failure::Retry(message),
        }
    })?;
    let input = payload.to_string();
    if let Some(mut stdin) = child.stdin.take() {
        std::thread::spawn(move || {
            // A hook that does not read its input is fine: its pipe closes
            // under this write, which must fail here, not end the process
            // (the command line restores SIGPIPE's default for its output).
            #[cfg(unix)]
            block_sigpipe_in_this_thread();
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
    // On Linux the reaper ends the hook's whole tree at the timeout and
    // then kills itself; the wait here is a backstop.
    let wait_for = if cfg!(target_os = "linux") {
        timeout + LEASE_MARGIN
    } else {
        timeout
    };
    let status = match child.wait_timeout(wait_for) {
        Ok(Some(status)) if killed_at_timeout(&status, started.elapsed(), timeout) => {
            return Err(Failure::Retry(format!(
                "{program} did not finish within {} and was killed",
                humantime::format_duration(timeout)
            )));
        }
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

/// Whether a hook that ended with `status` after `elapsed` was killed at its
/// timeout (by its reaper, with `SIGKILL`).
fn killed_at_timeout(
    status: &std::process::ExitStatus,
    elapsed: StdDuration,
    timeout: StdDuration,
) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        status.signal() == Some(libc::SIGKILL) && elapsed >= timeout
    }
    #[cfg(not(unix))]
    {
        let _ = (status, elapsed, timeout);
        false
    }
}

/// The names listed in [`HOOK_ENV_VAR`].
fn allowed_variables() -> Vec<String> {
    std::env::var(HOOK_ENV_VAR)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect()
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
    payload: &serde_json::Value,
) -> std::result::Result<(), Failure> {
    let body = match format {
        WebhookFormat::Json => payload.to_string(),
        WebhookFormat::Slack => {
            serde_json::to_string(&payload::slack_message(payload)).unwrap_or_default()
        }
    };
    // No proxy: the address check below must see where the request goes.
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(d.rule.timeout()))
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .user_agent(concat!("t-minus/", env!("CARGO_PKG_VERSION")))
        .build();
    // The resolver checks the addresses it returns, and the connection goes
    // to exactly those: a second lookup cannot swap them.
    let agent = ureq::Agent::with_parts(
        config,
        ureq::unversioned::transport::DefaultConnector::new(),
        address::CheckedResolver {
            allow_link_local: std::env::var(ALLOW_LINK_LOCAL_VAR).as_deref() == Ok("1"),
        },
    );
    let allowed = allowed_variables();
    let mut request = agent
        .post(url)
        .header("Content-Type", "application/json")
        .header("T-Minus-Delivery", d.key.to_string())
        .header("T-Minus-Event", d.event.to_string())
        .header("T-Minus-Transition", d.on.as_str());
    for (name, value) in headers {
        // A variable not allowed stays refused until the operator allows
        // it; one not set may be set for the next process that delivers.
        let value = expand(value, &allowed).map_err(|e| match e {
            ExpandError::NotSet(_) => Failure::Retry(e.to_string()),
            _ => Failure::Permanent(e.to_string()),
        })?;
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
        Err(ureq::Error::Other(refusal)) if refusal.is::<address::Refused>() => {
            Err(Failure::Permanent(format!("{url}: {refusal}")))
        }
        Err(e) => Err(Failure::Retry(format!("{url}: {e}"))),
    }
}

/// Which addresses a webhook may reach.
mod address {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use ureq::config::Config;
    use ureq::http::Uri;
    use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
    use ureq::unversioned::transport::NextTimeout;

    /// Cloud metadata services outside the link-local ranges.
    const METADATA: [IpAddr; 2] = [
        // AWS instance metadata over IPv6.
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
        // Alibaba Cloud.
        IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    ];

    /// Why an address is refused, if it is: link-local (169.254.0.0/16,
    /// fe80::/10, where the common metadata services live) or a known
    /// metadata address, also when written as an IPv4-mapped IPv6 address.
    pub fn refusal(ip: IpAddr) -> Option<&'static str> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        if METADATA.contains(&ip) {
            return Some("a cloud metadata address");
        }
        match ip {
            IpAddr::V4(v4) if v4.is_link_local() => Some("link-local"),
            IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => Some("link-local"),
            _ => None,
        }
    }

    /// A webhook address that is refused.
    #[derive(Debug)]
    pub struct Refused {
        ip: IpAddr,
        why: &'static str,
    }

    impl std::fmt::Display for Refused {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(
                f,
                "refused to connect to {} ({}); set {}=1 to allow it",
                self.ip,
                self.why,
                super::ALLOW_LINK_LOCAL_VAR
            )
        }
    }

    impl std::error::Error for Refused {}

    /// The default resolver, refusing every answer that holds a refused
    /// address (unless allowed).
    #[derive(Debug)]
    pub struct CheckedResolver {
        /// Whether link-local and metadata addresses are allowed.
        pub allow_link_local: bool,
    }

    impl Resolver for CheckedResolver {
        fn resolve(
            &self,
            uri: &Uri,
            config: &Config,
            timeout: NextTimeout,
        ) -> Result<ResolvedSocketAddrs, ureq::Error> {
            let addrs = DefaultResolver::default().resolve(uri, config, timeout)?;
            if !self.allow_link_local {
                for addr in addrs.iter() {
                    if let Some(why) = refusal(addr.ip()) {
                        return Err(ureq::Error::Other(Box::new(Refused { ip: addr.ip(), why })));
                    }
                }
            }
            Ok(addrs)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn link_local_and_metadata_addresses_are_refused() {
            for bad in [
                "169.254.169.254",
                "169.254.0.1",
                "169.254.170.2",
                "fe80::1",
                "febf::1",
                "fd00:ec2::254",
                "100.100.100.200",
                "::ffff:169.254.169.254",
            ] {
                assert!(refusal(bad.parse().unwrap()).is_some(), "{bad}");
            }
            for good in [
                "127.0.0.1",
                "10.0.0.1",
                "::1",
                "fec0::1",
                "8.8.8.8",
                "fd00::1",
            ] {
                assert!(refusal(good.parse().unwrap()).is_none(), "{good}");
            }
        }
    }
}

/// The per-hook reaper (Linux): the hook runs as the child of a small
/// intermediate process that is a child subreaper, so every descendant of
/// the hook — also one that called `setsid` or double-forked — stays below
/// it. At the timeout the reaper kills its descendants until none is left,
/// then kills itself.
#[cfg(target_os = "linux")]
mod reaper {
    use std::os::unix::process::CommandExt;
    use std::process::Command;
    use std::time::Duration;

    /// How often the reaper looks whether the hook ended.
    const POLL_NS: i64 = 2_000_000;

    /// Makes `cmd` start through a reaper that enforces `timeout`.
    pub fn install(cmd: &mut Command, timeout: Duration) {
        let limit_ns = i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX);
        // SAFETY: the closure runs in the forked child before `exec`, and
        // calls only async-signal-safe system calls (prctl, clone,
        // sigaction, waitpid, clock_gettime, nanosleep, open, read, close,
        // kill, _exit); it allocates nothing and takes no lock.
        unsafe {
            cmd.pre_exec(move || {
                become_reaper(limit_ns);
                Ok(())
            });
        }
    }

    /// Monotonic nanoseconds.
    // `time_t` and `c_long` are not 64 bits wide everywhere.
    #[allow(clippy::unnecessary_cast)]
    fn now_ns() -> i64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: writes into `ts`, which lives for the call.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        (ts.tv_sec as i64)
            .saturating_mul(1_000_000_000)
            .saturating_add(ts.tv_nsec as i64)
    }

    /// In the child: becomes the reaper and forks the hook, which returns
    /// to be executed; the reaper itself never returns. When it cannot
    /// become a reaper, the child runs the hook itself.
    fn become_reaper(limit_ns: i64) {
        let start = now_ns();
        // SAFETY: plain system calls on this process.
        unsafe {
            if libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0 {
                return;
            }
            // A raw fork: glibc's fork runs at-fork handlers, which may wait
            // on locks another thread of the parent held when it forked.
            let hook = libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_long, 0, 0, 0, 0);
            if hook < 0 {
                return;
            }
            if hook == 0 {
                // The hook: no longer a reaper, on to exec.
                libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
                return;
            }
            let hook = hook as libc::pid_t;
            // The delivering process's signal handlers (a SIGCHLD self-pipe,
            // a Ctrl-C flag) would run here on descriptors closed below.
            for signal in 1..libc::SIGRTMAX() {
                let mut current: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, std::ptr::null(), &mut current) == 0
                    && current.sa_sigaction != libc::SIG_DFL
                    && current.sa_sigaction != libc::SIG_IGN
                {
                    libc::signal(signal, libc::SIG_DFL);
                }
            }
            // The reaper holds no pipe of the hook's open, so the delivering
            // process sees their ends close with the hook's.
            libc::close(0);
            libc::close(1);
            libc::close(2);
            if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
                for fd in 3..1024 {
                    libc::close(fd);
                }
            }
            let mut status = 0;
            loop {
                let r = libc::waitpid(hook, &mut status, libc::WNOHANG);
                if r == hook {
                    break;
                }
                if r < 0 && *libc::__errno_location() != libc::EINTR {
                    libc::_exit(127);
                }
                if now_ns().saturating_sub(start) >= limit_ns {
                    kill_descendants(hook);
                    libc::kill(libc::getpid(), libc::SIGKILL);
                    libc::_exit(137);
                }
                let pause = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: POLL_NS as _,
                };
                libc::nanosleep(&pause, std::ptr::null_mut());
            }
            // The hook ended by itself: end as it did. What it left running
            // is left alone, as without a reaper.
            if libc::WIFEXITED(status) {
                libc::_exit(libc::WEXITSTATUS(status));
            }
            let signal = libc::WTERMSIG(status);
            libc::signal(signal, libc::SIG_DFL);
            libc::kill(libc::getpid(), signal);
            libc::_exit(128 + signal);
        }
    }

    /// Kills the hook and every process below the reaper (each orphan of a
    /// killed process is re-parented to the reaper), until it has no child.
    ///
    /// # Safety
    ///
    /// Async-signal-safe system calls only; call in the reaper.
    unsafe fn kill_descendants(hook: libc::pid_t) {
        libc::kill(hook, libc::SIGKILL);
        for _ in 0..100_000 {
            let listed = kill_children();
            let flags = if listed > 0 { 0 } else { libc::WNOHANG };
            let r = libc::waitpid(-1, std::ptr::null_mut(), flags);
            if r < 0 && *libc::__errno_location() == libc::ECHILD {
                return;
            }
            if r == 0 {
                // Children, none listed (yet): look again shortly.
                let pause = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 1_000_000,
                };
                libc::nanosleep(&pause, std::ptr::null_mut());
            }
        }
    }

    /// Sends `SIGKILL` to each child listed in
    /// `/proc/thread-self/children`; returns how many were listed.
    ///
    /// # Safety
    ///
    /// Async-signal-safe system calls only, no allocation.
    unsafe fn kill_children() -> usize {
        let path = b"/proc/thread-self/children\0";
        let fd = libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return 0;
        }
        let mut buf = [0u8; 512];
        let mut listed = 0;
        let mut pid: libc::pid_t = 0;
        let mut in_number = false;
        loop {
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            if n <= 0 {
                break;
            }
            for &b in &buf[..n as usize] {
                if b.is_ascii_digit() {
                    pid = pid
                        .saturating_mul(10)
                        .saturating_add(libc::pid_t::from(b - b'0'));
                    in_number = true;
                } else if in_number {
                    libc::kill(pid, libc::SIGKILL);
                    listed += 1;
                    pid = 0;
                    in_number = false;
                }
            }
        }
        if in_number {
            libc::kill(pid, libc::SIGKILL);
            listed += 1;
        }
        libc::close(fd);
        listed
    }
}
