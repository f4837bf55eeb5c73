//! Manifest parse + validate (+ rendering every diagnostic, + plan/apply of
//! what validates) on arbitrary bytes.
#![no_main]

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use t_minus::manifest::{self, ValidateOptions};
use t_minus::plan::PlanOptions;
use t_minus::{Engine, FixedClock};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-06-06T14:50:00Z")
        .expect("valid time")
        .with_timezone(&Utc)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = manifest::parse_str("fuzz.yaml", text);
    let options = ValidateOptions { now: Some(now()) };
    match manifest::validate(&parsed, &options) {
        Ok(valid) => {
            let _ = valid.summary().to_string();
            // What validates must plan and apply without panicking, and
            // applying it again must change nothing.
            let mut engine = Engine::in_memory()
                .expect("in-memory store")
                .with_clock(std::sync::Arc::new(FixedClock::new(now())));
            let opts = PlanOptions::default();
            if let Ok(plan) = engine.plan(&valid, &opts) {
                let _ = plan.render();
                let json = plan.to_json();
                // Spans are not saved; everything else round-trips.
                let back = t_minus::plan::Plan::from_json(&json).expect("a plan reads back");
                assert_eq!(back.to_json(), json, "plan JSON round trip");
                if engine.apply_plan(&plan).is_ok() {
                    let again = engine.plan(&valid, &opts).expect("re-plan");
                    assert!(again.is_empty(), "re-plan after apply: {}", again.render());
                }
            }
        }
        Err(diagnostics) => {
            // Rendering must cope with every span the validator produced.
            let handler = miette::GraphicalReportHandler::new_themed(
                miette::GraphicalTheme::unicode_nocolor(),
            );
            for d in diagnostics.iter() {
                let mut out = String::new();
                handler
                    .render_report(&mut out, d)
                    .expect("render diagnostic");
                assert!(!out.is_empty());
            }
        }
    }
});
