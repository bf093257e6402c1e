//! Rehearsing pending migrations on a throwaway PostgreSQL before they meet production.
//!
//! For each pending migration, in order: the schema is snapshotted from the catalog, `up` runs
//! statement by statement while every lock on a pre-existing relation (mode, what it blocks, how
//! long it is held), every rewrite (a changed file node) and every full scan is recorded, `down`
//! runs and the schema must equal the one before `up` (a difference only in column order is
//! reported apart), and `up` must run again. The starting schema is built by replaying the
//! applied migrations, or copied from a real database (`pg_dump --schema-only` and its table
//! sizes, which scale the durations). The library returns a [`RehearsalReport`]; it prints
//! nothing.
//!
//! ```no_run
//! use safeshift_rehearse::{RehearsalOptions, ServerChoice, SnapshotScope, rehearse};
//!
//! let set = safeshift_source::MigrationSet::load(std::path::Path::new("migrations"))?;
//! let options = RehearsalOptions {
//!     server: ServerChoice::Throwaway { preferred_major: None },
//!     from_database: None,
//!     applied: Default::default(),
//!     rows: Some(10_000),
//!     expectations: None,
//!     strict: false,
//!     predictions: Default::default(),
//!     scope: SnapshotScope::default(),
//! };
//! let report = rehearse(&set, &options, &mut |_progress| {})?;
//! assert!(!report.failed());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Snapshot::capture`] and [`diff`] are also usable on their own (`safeshift schema`,
//! `safeshift diff`).

mod apply;
mod baseline;
mod connection;
mod error;
mod estimate;
mod expectations;
mod policy;
mod predictions;
mod production;
mod rehearsal;
mod relations;
mod report;
mod scratch;
mod snapshot;
mod synthetic;
mod trace;
mod watcher;

pub use baseline::{BaselineProof, CapturedSchema, capture_schema, migration_body, prove_rebuild};
pub use connection::Connection;
pub use error::RehearseError;
pub use estimate::{DurationEstimate, METHOD as ESTIMATE_METHOD, TableStatistics, bytes};
pub use expectations::{Expectations, MigrationExpectation, ObjectLists};
pub use predictions::{Predictions, StatementPrediction};
pub use rehearsal::{Progress, RehearsalOptions, rehearse};
pub use relations::RelationKind;
pub use report::{
    LockPolicy, MigrationReport, Observation, ObservedLock, ObservedRelation, PolicyViolation,
    ReapplyCheck, RehearsalReport, RollbackCheck, ServerReport, StartingPointReport,
    StatementFailure, StatementReport, TableFill, Verdict,
};
/// The lock model rehearsals share with the linter and the online operations.
pub use safeshift_lint::{LockMode, TableName};
pub use scratch::{APPLICATION_NAME, SERVER_DIR_ENV, ServerChoice};
pub use snapshot::{
    Column, ColumnOrderDifference, Constraint, Difference, Extension, Function, Index, Policy,
    Schema, SchemaDiff, Sequence, Snapshot, SnapshotScope, Table, Trigger, Type, View, diff,
};

/// Snapshots the schema of the database at `url`.
pub fn snapshot_of(
    url: &safeshift_driver::DatabaseUrl,
    scope: &SnapshotScope,
) -> Result<Snapshot, RehearseError> {
    let mut connection = Connection::open(url, APPLICATION_NAME)?;
    Snapshot::capture(&mut connection, scope)
}
