//! What a PostgreSQL, MySQL or MariaDB server is doing while safeshift changes it, read from a
//! connection of its own: the sessions and what blocks whom ([`activity`]), a [`watchdog`] that samples the
//! migration's session during `up` and trips thresholds, the server-side [`probes`] of a
//! pre-flight check, and the [`health`] checks run after a migration.
//!
//! Everything returns values or reports events through a callback; nothing here prints, and
//! nothing knows about migration files or their order. All queries use the simple query
//! protocol, so they work through PgBouncer too.

pub mod activity;
pub mod health;
pub mod mysql;
pub mod probes;
mod query;
pub mod sampler;
pub mod watchdog;

pub use activity::{Activity, Connections, IndexBuild, LockWait, Session, TableActivity};
pub use health::{HealthCheck, HealthOutcome};
pub use sampler::{OwnSession, Sampler};
pub use watchdog::{Limits, Threshold, WatchConfig, WatchEvent, WatchSummary, Watchdog};
