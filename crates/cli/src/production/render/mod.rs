//! Text and Markdown for the production reports, one file per report: pre-flight checks, the
//! plan, backups, health checks, the server's activity, the watchdog's events and the steps of
//! a guarded run.

mod activity;
mod backup;
mod health;
mod plan;
mod preflight;
mod steps;
mod watch;

pub use activity::activity;
pub use backup::{backup_rows, prune, restore_preview, verification};
pub use health::health;
pub use plan::{plan_markdown, plan_summary};
pub use preflight::preflight;
pub use steps::step;
pub use watch::watch_event;
