//! The lines of `run --json` and `wait --json`: defined with the run's
//! result in [`crate::run_report`], below the display that prints them.

pub use crate::run_report::{RunLine, RunOutcomeWord};
