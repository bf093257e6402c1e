//! Zero-downtime operations for safeshift: the work that must not stop an application while it
//! runs. Nothing here prints or knows the command line: operations return values and report
//! progress as [`OnlineEvent`]s to the sink they are given.
//!
//! * **Lock-safe DDL** ([`lock_safe`]): a statement whose lock blocks reads or writes waits out
//!   long transactions on its tables, then queues under a short `lock_timeout`, retried with
//!   jittered backoff within a cap on attempts and on total stall.
//! * **Backfills** ([`backfill`]): an `UPDATE` run in keyset-paginated batches with a checkpoint
//!   that commits with each batch, adapted to a target batch duration and throttled on
//!   replication lag, lock waiters and a user probe. In a migration, `-- safeshift:backfill`
//!   above the `UPDATE` (in a `transaction:false` section) makes the runner run it this way.
//! * **Concurrent indexes** ([`index`]): progress, and INVALID leftovers dropped and retried.
//! * **Expand/contract** ([`expand`]): renaming a column or changing its type through a second
//!   column kept in sync by a trigger, written as reviewable migrations.
//!
//! [`OnlineHooks`] installs all of it into a `safeshift_runner::Migrator`.

pub mod backfill;
pub mod catalog;
mod events;
pub mod expand;
mod hooks;
pub mod index;
pub mod lock_safe;
pub mod schema_change;
pub mod session;
mod settings;

pub use events::{
    BackfillProgress, BackfillSummary, Blocker, EventSink, IndexProgress, OnlineEvent, quiet,
};
pub use hooks::{BACKFILL_DIRECTIVE, OnlineHooks};
pub use session::Session;
pub use settings::{BackfillOptions, LockSafety, OnlineSettings, Probe};
