//! How the online operations' progress is drawn (the `safeshift` crate installs the operations
//! themselves into every run).

mod render;

pub use render::{Renderer, count, summary_line};
