//! Text and Markdown for the production reports, one file per report: pre-flight checks, the
//! plan, backups, health checks and the server's activity.

mod activity;
mod backup;
mod health;
mod plan;
mod preflight;

pub use activity::activity;
pub use backup::{backup_rows, prune, restore_preview, verification};
pub use health::health;
pub use plan::{plan_markdown, plan_summary};
pub use preflight::preflight;
