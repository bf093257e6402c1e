//! What the linter is given about the database: the applied history, and table sizes for
//! size-aware grading.

use std::collections::HashMap;

use safeshift_driver::{DriverError, PostgresDriver};
use safeshift_lint::{AppliedMigrations, LintReport, TableSize, TableStatistics};
use safeshift_runner::{EntryState, StatusReport};
use safeshift_source::Checksum;

/// The versions the database has applied (or applied in part), with their recorded checksums.
pub fn applied_migrations(status: &StatusReport) -> AppliedMigrations {
    let mut applied = AppliedMigrations::default();
    for entry in &status.entries {
        if matches!(
            entry.state,
            EntryState::Applied
                | EntryState::Changed
                | EntryState::FileMissing
                | EntryState::Partial
        ) {
            applied.versions.insert(
                entry.version.clone(),
                entry
                    .recorded_checksum
                    .as_deref()
                    .map(Checksum::from_stored),
            );
        }
    }
    applied
}

/// Table sizes read from the database, keyed by the name as the migration wrote it.
struct Sizes(HashMap<(Option<String>, String), TableSize>);

impl TableStatistics for Sizes {
    fn table_size(&self, schema: Option<&str>, table: &str) -> Option<TableSize> {
        self.0
            .get(&(schema.map(str::to_owned), table.to_owned()))
            .copied()
    }
}

/// Grades the report's findings by the sizes of the tables they lock, read from `db`.
pub fn grade_by_size(report: &mut LintReport, db: &mut PostgresDriver) -> Result<(), DriverError> {
    let mut names: Vec<(Option<String>, String)> = Vec::new();
    for (_, finding) in report.active_findings() {
        for lock in &finding.locks {
            let name = (lock.table.schema.clone(), lock.table.name.clone());
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    let sizes = db.table_sizes(&names)?;
    let sizes = Sizes(
        sizes
            .into_iter()
            .map(|s| {
                (
                    (s.schema, s.table),
                    TableSize {
                        rows: s.rows,
                        bytes: s.bytes,
                    },
                )
            })
            .collect(),
    );
    safeshift_lint::grade(report, &sizes);
    Ok(())
}
