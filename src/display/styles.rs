//! Terminal styles for human output.

use anstyle::{AnsiColor, Style};

/// Styles for human output; all plain when colour is off.
#[derive(Debug, Clone, Copy)]
pub struct Styles {
    /// Emphasis (names).
    pub bold: Style,
    /// Secondary text (ids, times).
    pub dim: Style,
    /// Good news (fired, confirmed).
    pub good: Style,
    /// Bad news (missed, declined, cancelled).
    pub bad: Style,
    /// Waiting (pending, deferred, blocked).
    pub wait: Style,
}

impl Styles {
    /// Styles for the given choice.
    pub fn new(enabled: bool) -> Self {
        if !enabled {
            let plain = Style::new();
            return Styles {
                bold: plain,
                dim: plain,
                good: plain,
                bad: plain,
                wait: plain,
            };
        }
        Styles {
            bold: Style::new().bold(),
            dim: Style::new().dimmed(),
            good: AnsiColor::Green.on_default(),
            bad: AnsiColor::Red.on_default(),
            wait: AnsiColor::Yellow.on_default(),
        }
    }

    /// `text` wrapped in `style`.
    pub fn paint(style: Style, text: impl std::fmt::Display) -> String {
        format!("{style}{text}{style:#}")
    }
}
