//! The online operations in the CLI: the runner hooks `up` and `down` install, and how their
//! progress is drawn.

mod render;

use safeshift_online::{OnlineHooks, OnlineSettings};

pub use render::{Renderer, count, summary_line};

/// The hooks `up` and `down` run with, drawing progress on stderr unless `quiet`.
pub fn hooks(settings: &OnlineSettings, quiet: bool) -> OnlineHooks {
    OnlineHooks::new(settings.clone(), Renderer::sink(quiet))
}
