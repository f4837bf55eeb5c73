//! Human-readable rendering shared by the CLI and library users: event
//! blocks in the seed's format (`T-4m32s review [a1b2c3d4] quorum:2/3
//! attendees:3`), transitions (`🚀 Event … fired! (quorum reached)`),
//! audit lines, and the views of a run.

mod names;
mod render;
mod run_view;
mod styles;

pub use names::Names;
pub use render::Renderer;
pub use run_view::{RunView, ViewMode};
pub use styles::Styles;
