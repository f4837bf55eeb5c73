//! Stable JSON shapes for `--json` (documented in docs/json.md).
//!
//! Times are RFC 3339 UTC strings; durations are integer milliseconds in
//! fields ending in `_ms`.

use serde::Serialize;
use serde_json::{json, Value};
use t_minus::time_spec::format_time;
use t_minus::{AuditEntry, Campaign, Engine, ResponseStatus, Result, TMinusEvent, TickResult};

use t_minus::engine::EventViews;

/// An event, its campaign's name looked up through `names`.
pub fn event(engine: &Engine, views: &mut EventViews, e: &TMinusEvent) -> Result<Value> {
    let campaign = views.campaign_name(engine, e)?;
    Ok(event_in(e, campaign.as_deref()))
}

/// An event of the campaign named `campaign`.
pub fn event_in(e: &TMinusEvent, campaign: Option<&str>) -> Value {
    let attendees: Vec<Value> = e
        .attendees
        .iter()
        .map(|(agent, status)| {
            let mut a = json!({ "agent": agent.as_str(), "status": status.word() });
            if let ResponseStatus::Deferred(d) = status {
                a["deferred_ms"] = json!(d.num_milliseconds());
            }
            if !e.groups.is_empty() {
                a["groups"] = json!(e.groups_of(agent));
            }
            a
        })
        .collect();
    let mut out = json!({
        "id": e.id,
        "campaign": campaign,
        "name": e.name,
        "kind": e.kind.to_string(),
        "state": e.state,
        "scheduled_at": e.at_known().then(|| format_time(e.scheduled_at)),
        "fire_time": e.fire_deadline().map(format_time),
        "relative_at_ms": e.relative_at.map(|d| d.num_milliseconds()),
        "t_minus_ms": e.t_minus.num_milliseconds(),
        "quorum": e.quorum,
        "quorum_spec": e.quorum_spec.to_string(),
        "confirmed": e.confirmed_count(),
        "fire_policy": e.fire_policy,
        "deferred_ms": e.deferred.num_milliseconds(),
        "max_defer_ms": e.max_defer.map(|d| d.num_milliseconds()),
        "organizer": e.organizer.as_str(),
        "attendees": attendees,
        "payload": e.payload,
        "content_digest": t_minus::trust::content_digest(e).to_string(),
        "description": e.description,
        "created_at": format_time(e.created_at),
        "started_at": e.started_at.map(format_time),
        "finished_at": e.finished_at.map(format_time),
    });
    if !e.groups.is_empty() {
        let groups: Vec<Value> = e
            .groups
            .iter()
            .zip(e.quorum_status())
            .map(|(g, status)| {
                json!({
                    "name": g.name,
                    "quorum_spec": g.quorum.to_string(),
                    "quorum": status.needed,
                    "confirmed": status.confirmed,
                    "members": g.members,
                })
            })
            .collect();
        out["groups"] = json!(groups);
    }
    out
}

/// An audit entry.
pub fn audit(entry: &AuditEntry) -> Value {
    json!({
        "seq": entry.seq,
        "event": entry.event,
        "at": format_time(entry.at),
        "recorded_at": format_time(entry.recorded_at),
        "agent": entry.agent.as_ref().map(|a| a.as_str()),
        "action": entry.action,
        "detail": entry.detail,
    })
}

/// An audit entry with its chain links: [`audit`] plus `prev`, `hash`,
/// `message` and `signature` (`null` when not stored).
pub fn audit_link(link: &t_minus::store::StoredLink) -> Value {
    let mut out = audit(&link.entry);
    out["prev"] = json!(link.prev);
    out["hash"] = json!(link.hash);
    out["message"] = json!(link.message);
    out["signature"] = json!(link.signature);
    out
}

/// A tick's result.
pub fn tick(result: &TickResult) -> Value {
    json!({
        "fired": result.fired,
        "missed": result.missed,
        "cancelled": result.cancelled,
        "opened": result.opened,
        "transitions": result.transitions.iter().map(audit).collect::<Vec<_>>(),
    })
}

/// A campaign with its events.
pub fn campaign(engine: &Engine, c: &Campaign) -> Result<Value> {
    let mut events = Vec::new();
    for id in &c.events {
        if let Some(e) = engine.get_event(*id)? {
            events.push(json!({ "id": e.id, "name": e.name, "state": e.state }));
        }
    }
    Ok(json!({
        "id": c.id,
        "name": c.name,
        "state": c.state,
        "managed": c.managed,
        "description": c.description,
        "created_at": format_time(c.created_at),
        "events": events,
        "dependencies": c.dependencies.iter().map(|(from, to)| json!({ "from": from, "to": to })).collect::<Vec<_>>(),
    }))
}

/// A JSON array written to stdout one element at a time, in the bytes
/// [`print`] writes for the whole array. A reader that went away stops the
/// writing, not the command.
pub struct ArrayStream<W: std::io::Write> {
    out: W,
    count: usize,
    failed: bool,
}

impl<W: std::io::Write> ArrayStream<W> {
    /// An array written to `out`.
    pub fn new(out: W) -> Self {
        ArrayStream {
            out,
            count: 0,
            failed: false,
        }
    }

    /// Writes the next element.
    pub fn push(&mut self, value: &Value) {
        if self.failed {
            return;
        }
        let text = match serde_json::to_string_pretty(value) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("error: could not encode JSON: {e}");
                self.failed = true;
                return;
            }
        };
        let mut chunk = String::with_capacity(text.len() + text.len() / 8 + 4);
        chunk.push_str(if self.count == 0 { "[\n" } else { ",\n" });
        // Nested one level deeper: JSON text has line breaks only between
        // tokens (a string's own are escaped), so each line is indented.
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                chunk.push('\n');
            }
            chunk.push_str("  ");
            chunk.push_str(line);
        }
        self.count += 1;
        self.failed = self.out.write_all(chunk.as_bytes()).is_err();
    }

    /// Closes the array (`[]` when it is empty) and flushes.
    pub fn finish(mut self) {
        if self.failed {
            return;
        }
        let end = if self.count == 0 { "[]\n" } else { "\n]\n" };
        let _ = self
            .out
            .write_all(end.as_bytes())
            .and_then(|()| self.out.flush());
    }
}

/// Prints a value as pretty JSON on stdout. A reader that went away
/// (`t-minus status --json | head`) is not an error: the command's work is
/// already committed, and printing must not panic.
pub fn print(value: &impl Serialize) {
    use std::io::Write;
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
        }
        Err(e) => eprintln!("error: could not encode JSON: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What [`print`] writes for `values` as one array.
    fn whole(values: &[Value]) -> String {
        serde_json::to_string_pretty(values).unwrap() + "\n"
    }

    fn streamed(values: &[Value]) -> String {
        let mut bytes = Vec::new();
        let mut array = ArrayStream::new(&mut bytes);
        for v in values {
            array.push(v);
        }
        array.finish();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_streamed_array_has_the_bytes_of_the_whole_one() {
        let event = json!({
            "id": "a1b2",
            "about": "two\nlines \"quoted\"",
            "attendees": [{"agent": "alice", "groups": []}, {"agent": "bob"}],
            "payload": {"nested": {"deep": [1, 2, {}]}},
            "none": null,
        });
        let cases = [
            vec![],
            vec![event.clone()],
            vec![event.clone(), json!([]), json!({}), json!("x"), event],
        ];
        for values in cases {
            assert_eq!(streamed(&values), whole(&values));
        }
    }

    #[test]
    fn a_reader_that_went_away_stops_the_writing_quietly() {
        struct Closed;
        impl std::io::Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut array = ArrayStream::new(Closed);
        array.push(&json!(1));
        array.push(&json!(2));
        assert!(array.failed);
        array.finish();
    }
}
