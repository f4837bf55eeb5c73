//! Human-readable rendering shared by the CLI and library users: event
//! blocks in the seed's format (`T-4m32s review [a1b2c3d4] quorum:2/3
//! attendees:3`), transitions (`🚀 Event … fired! (quorum reached)`),
//! audit lines, and the views of a run.
//!
//! Renderers take [`EventView`]s, events with the names they mention
//! already resolved, and look nothing up: [`crate::engine::EventViews`]
//! builds views through engine reads of a row or a few by index, and
//! listings arrive with their names ([`crate::Engine::scan_events`]).

mod render;
mod run_view;
mod styles;
mod view;

pub use render::Renderer;
pub use run_view::{RunView, ViewMode};
pub use styles::Styles;
pub use view::{label, EventView};

use crate::event::TMinusEvent;

/// Confirmations against quorum: `2/3` for a plain event, each group's
/// for an event with groups (`ops 1/2 · security 0/1`).
pub fn quorum_progress(event: &TMinusEvent) -> String {
    if event.groups.is_empty() {
        return format!("{}/{}", event.confirmed_count(), event.quorum);
    }
    let groups: Vec<String> = event
        .quorum_status()
        .iter()
        .map(|g| {
            format!(
                "{} {}/{}",
                g.name.as_deref().unwrap_or_default(),
                g.confirmed,
                g.needed
            )
        })
        .collect();
    groups.join(" · ")
}
