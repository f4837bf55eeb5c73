//! The result of a run: how it ended and what it saw. The runner produces
//! it; renderers and front ends read it.

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// Every event in scope fired (exit 0).
    Succeeded,
    /// Every event in scope is final and some missed or were cancelled (exit 3).
    Failed,
    /// The timeout passed first (exit 124).
    TimedOut,
    /// The stop flag was raised, e.g. by Ctrl-C (exit 130). All state is
    /// saved; running again resumes.
    Interrupted,
}

impl RunOutcome {
    /// The CLI's exit code for this outcome.
    pub fn exit_code(self) -> u8 {
        match self {
            RunOutcome::Succeeded => 0,
            RunOutcome::Failed => 3,
            RunOutcome::TimedOut => 124,
            RunOutcome::Interrupted => 130,
        }
    }
}

/// A summary of the events a run saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Events that fired.
    pub fired: usize,
    /// Events that were missed.
    pub missed: usize,
    /// Events that were cancelled.
    pub cancelled: usize,
    /// Events not final when the run stopped.
    pub unfinished: usize,
}

/// The result of [`crate::runner::run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// How it ended.
    pub outcome: RunOutcome,
    /// Counts over the events in scope.
    pub summary: RunSummary,
}
