//! `safeshift rehearse`, `schema` and `diff`: their arguments, and rendering their results
//! (terminal, JSON, Markdown). Each renderer turns a value into text and prints nothing itself.

mod args;
mod diff;
mod human;
mod markdown;
mod schema;

pub use args::{DiffArgs, Format, RehearseArgs, SchemaArgs};
pub use diff::{difference_lines, render as render_diff};
pub use human::render as render_human;
pub use markdown::render as render_markdown;
pub use schema::render as render_schema;
