//! `wait EVENT` through a t-minus service: the service ticks, the client
//! follows its stream (`GET /v1/stream?event=ID`, Server-Sent Events) and
//! prints each transition of the event as the local `wait` does, until the
//! event is final, the timeout passes or Ctrl-C; the exit codes are the
//! local ones (0 fired, 3 missed or cancelled, 124 timed out, 130
//! interrupted).
//!
//! The stream is opened after the last entry of the event's log read at
//! the start (`Last-Event-ID`), so no transition falls between reading the
//! event and following it. When the stream ends or breaks, the client
//! reconnects after the last entry it saw, backing off as the local runner
//! does while its store is unreachable, for at most five minutes.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration as StdDuration, Instant};

use t_minus::display::{RunView, ViewMode};
use t_minus::duration::parse_duration;
use t_minus::output::{AuditEntry, Event, LogEntry};
use t_minus::run_report::{RunOutcome, RunReport, RunSummary};
use t_minus::runner::retry_delay;
use t_minus::EventState;

use super::context::{pinned_now, Context};
use super::error::CliError;
use super::remote::{encode, Client, ClientError, EventStream, StreamItem};
use super::run::{stop_flag, LIVE_REFRESH};

/// How long the client keeps reconnecting to a service it cannot reach.
const RETRY_FOR: StdDuration = StdDuration::from_secs(300);

/// How long a stream may stay silent (the service sends a comment every
/// 15 s) before the client takes it for broken and reconnects.
const SILENCE: StdDuration = StdDuration::from_secs(45);

/// What the thread reading a stream reports.
enum Read {
    /// An event or a comment.
    Item(StreamItem),
    /// The stream ended or broke.
    Ended(String),
}

/// `wait EVENT [--timeout DUR]` through `client`.
pub(super) fn wait(
    cx: &Context,
    client: &Client,
    event: &str,
    timeout: Option<&str>,
) -> Result<ExitCode, CliError> {
    let timeout = timeout
        .map(parse_duration)
        .transpose()?
        .map(|d| d.to_std().unwrap_or(StdDuration::ZERO));
    let deadline = timeout.map(|t| Instant::now() + t);
    // The log before the event: a transition in between is after `last`,
    // so the stream (or the final read-back) reports it.
    let reference = encode(event);
    let log = client.get::<Vec<LogEntry>>(&format!("/v1/events/{reference}/log"))?;
    let mut last = log.value.iter().map(|e| e.entry.seq).max().unwrap_or(0);
    let shown = client.get::<Event>(&format!("/v1/events/{reference}"))?;
    let id = shown.value.id;
    let event_path = format!("/v1/events/{id}");
    let label = t_minus::display::label(shown.value.campaign.as_deref(), &shown.value.to_event()?);

    let mode = if cx.json() {
        ViewMode::Json
    } else if std::io::stdout().is_terminal() {
        ViewMode::Live
    } else {
        ViewMode::Lines
    };
    let rows = console::Term::stdout().size_checked().map(|(rows, _)| rows);
    let mut view = RunView::new(cx.renderer()?, mode)
        .with_terminal_rows(rows)
        .waiting_for(label.clone());
    let mut wait = Wait {
        client,
        view: &mut view,
        label: &label,
        event_path: &event_path,
        current: shown.value,
    };

    if wait.current.state.is_final() {
        // Final already: report what happened since the log was read.
        let log = client.get::<Vec<LogEntry>>(&format!("{event_path}/log"))?;
        for e in log.value.iter().filter(|e| e.entry.seq > last) {
            wait.entry(&e.entry)?;
        }
        return Ok(wait.finish(None));
    }

    let stop = stop_flag();
    let stream_path = format!("/v1/stream?event={id}");
    let (sender, receiver) = mpsc::channel();
    follow(client.stream(&stream_path, Some(last))?, sender.clone());
    let mut heard = Instant::now();
    let mut drawn = Instant::now() - LIVE_REFRESH;
    let mut outage: Option<(Instant, u32)> = None;
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(wait.finish(Some(RunOutcome::Interrupted)));
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Ok(wait.finish(Some(RunOutcome::TimedOut)));
        }
        if wait.view.is_live() && now >= drawn + LIVE_REFRESH {
            wait.refresh()?;
            drawn = now;
        }
        let nap = deadline
            .map_or(LIVE_REFRESH, |d| d.saturating_duration_since(now))
            .min(LIVE_REFRESH);
        let broken = match receiver.recv_timeout(nap) {
            Ok(Read::Item(item)) => {
                heard = Instant::now();
                outage = None;
                if let StreamItem::Event { data, .. } = item {
                    let entry: AuditEntry =
                        serde_json::from_str(&data).map_err(|e| ClientError::Reply {
                            url: stream_path.clone(),
                            reason: format!("an event of the stream is not a log entry: {e}"),
                        })?;
                    if entry.seq > last {
                        last = entry.seq;
                        if entry.event == id && wait.entry(&entry)? {
                            return Ok(wait.finish(None));
                        }
                    }
                }
                None
            }
            Ok(Read::Ended(reason)) => Some(reason),
            Err(mpsc::RecvTimeoutError::Timeout) if heard.elapsed() < SILENCE => None,
            Err(mpsc::RecvTimeoutError::Timeout) => Some("the stream went silent".into()),
            Err(mpsc::RecvTimeoutError::Disconnected) => Some("the stream ended".into()),
        };
        let Some(reason) = broken else { continue };
        // Reconnect after the last entry seen, backing off.
        let (since, attempt) = outage.get_or_insert((Instant::now(), 0));
        *attempt += 1;
        let delay = retry_delay(*attempt);
        if since.elapsed() >= RETRY_FOR {
            return Err(ClientError::Unreachable {
                url: stream_path.clone(),
                reason,
            }
            .into());
        }
        // On stderr with --json too: stdout holds run lines only.
        eprintln!(
            "warning: {reason}; reconnecting in {} (attempt {attempt})",
            humantime::format_duration(delay)
        );
        let resume = Instant::now() + delay;
        while Instant::now() < resume
            && !stop.load(Ordering::SeqCst)
            && deadline.is_none_or(|d| Instant::now() < d)
        {
            std::thread::sleep(StdDuration::from_millis(25));
        }
        if stop.load(Ordering::SeqCst) || deadline.is_some_and(|d| Instant::now() >= d) {
            continue;
        }
        match client.stream(&stream_path, Some(last)) {
            Ok(stream) => {
                heard = Instant::now();
                follow(stream, sender.clone());
            }
            Err(ClientError::Unreachable { reason, .. }) => {
                sender
                    .send(Read::Ended(format!("cannot reach the service: {reason}")))
                    .ok();
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reads `stream` on a thread of its own, sending what it reads.
fn follow(mut stream: EventStream, sender: mpsc::Sender<Read>) {
    std::thread::spawn(move || loop {
        let read = match stream.next_item() {
            Ok(Some(item)) => Read::Item(item),
            Ok(None) => Read::Ended("the stream ended".into()),
            Err(e) => Read::Ended(format!("the stream broke: {e}")),
        };
        let ended = matches!(read, Read::Ended(_));
        if sender.send(read).is_err() || ended {
            return;
        }
    });
}

/// A wait in progress.
struct Wait<'a> {
    client: &'a Client,
    view: &'a mut RunView,
    label: &'a str,
    event_path: &'a str,
    /// The event as the service showed it last.
    current: Event,
}

impl Wait<'_> {
    /// Reports `entry` of the event when it is a transition, with the event
    /// as it is now; true when the event is final.
    fn entry(&mut self, entry: &AuditEntry) -> Result<bool, CliError> {
        if !entry.action.is_transition() {
            return Ok(false);
        }
        self.current = self.client.get::<Event>(self.event_path)?.value;
        self.view
            .transition(&entry.to_entry()?, &self.current.to_event()?, self.label);
        Ok(self.current.state.is_final())
    }

    /// Redraws the live block.
    fn refresh(&mut self) -> Result<(), CliError> {
        let event = self.current.to_event()?;
        let now = pinned_now()?.unwrap_or_else(chrono::Utc::now);
        self.view
            .refresh(&[(&event, self.label.to_string())], 0, now);
        Ok(())
    }

    /// Prints the summary and gives the exit code: of `stopped` (timed out,
    /// interrupted), or of the event's final state.
    fn finish(&mut self, stopped: Option<RunOutcome>) -> ExitCode {
        let mut summary = RunSummary::default();
        match self.current.state {
            EventState::Fired => summary.fired = 1,
            EventState::Missed => summary.missed = 1,
            EventState::Cancelled => summary.cancelled = 1,
            _ => summary.unfinished = 1,
        }
        let outcome = stopped.unwrap_or(match self.current.state {
            EventState::Fired => RunOutcome::Succeeded,
            _ => RunOutcome::Failed,
        });
        let report = RunReport { outcome, summary };
        self.view.finish(&report);
        ExitCode::from(outcome.exit_code())
    }
}
