//! `GET /metrics`: the service's counters in the Prometheus text format.
//!
//! - `t_minus_http_requests_total{method, route, status}`: requests served,
//!   by route pattern (`/v1/events/{event}/confirm`, never the event).
//! - `t_minus_http_request_duration_seconds`: a histogram of how long
//!   requests took.
//! - `t_minus_answers_total{answer}`: answers accepted (`confirm`, `defer`,
//!   `decline`, `signed`).
//! - `t_minus_transitions_total{action}`: transitions the background runner
//!   reported (`opened`, `fired`, `missed`, `cancelled`), whoever caused
//!   them.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The service's counters, shared by the requests and the runner.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
    answers: Mutex<BTreeMap<&'static str, u64>>,
    transitions: Mutex<BTreeMap<String, u64>>,
}

/// Adds one to `key` of a counter map.
fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    *map.entry(key).or_default() += 1;
}

impl Metrics {
    /// Counts a request to `route` (its pattern) and how long it took.
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        bump(
            &self.requests,
            (method.to_string(), route.to_string(), status),
        );
        let seconds = took.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Counts an accepted answer (`confirm`, `defer`, `decline`, `signed`).
    pub fn answer(&self, answer: &'static str) {
        bump(&self.answers, answer);
    }

    /// Counts a transition the runner reported.
    pub fn transition(&self, action: &str) {
        bump(&self.transitions, action.to_string());
    }

    /// The counters in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP t_minus_http_requests_total HTTP requests served."
        );
        let _ = writeln!(out, "# TYPE t_minus_http_requests_total counter");
        for ((method, route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "t_minus_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        let _ = writeln!(
            out,
            "# HELP t_minus_http_request_duration_seconds How long requests took."
        );
        let _ = writeln!(
            out,
            "# TYPE t_minus_http_request_duration_seconds histogram"
        );
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "t_minus_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "t_minus_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "t_minus_http_request_duration_seconds_sum {sum}");
        let _ = writeln!(out, "t_minus_http_request_duration_seconds_count {count}");
        let _ = writeln!(
            out,
            "# HELP t_minus_answers_total Answers accepted over HTTP."
        );
        let _ = writeln!(out, "# TYPE t_minus_answers_total counter");
        for (answer, n) in self
            .answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(out, "t_minus_answers_total{{answer=\"{answer}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP t_minus_transitions_total Transitions reported by the runner."
        );
        let _ = writeln!(out, "# TYPE t_minus_transitions_total counter");
        for (action, n) in self
            .transitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "t_minus_transitions_total{{action=\"{}\"}} {n}",
                escape(action)
            );
        }
        out
    }
}

/// A label value with `\`, `"` and line breaks escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_in_the_text_format() {
        let m = Metrics::default();
        m.request(
            "POST",
            "/v1/events/{event}/confirm",
            200,
            Duration::from_millis(3),
        );
        m.request(
            "POST",
            "/v1/events/{event}/confirm",
            200,
            Duration::from_millis(30),
        );
        m.answer("confirm");
        m.transition("fired");
        let text = m.render();
        assert!(text.contains(
            "t_minus_http_requests_total{method=\"POST\",route=\"/v1/events/{event}/confirm\",status=\"200\"} 2"
        ), "{text}");
        assert!(text.contains("t_minus_http_request_duration_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("t_minus_http_request_duration_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("t_minus_answers_total{answer=\"confirm\"} 1"));
        assert!(text.contains("t_minus_transitions_total{action=\"fired\"} 1"));
    }
}
