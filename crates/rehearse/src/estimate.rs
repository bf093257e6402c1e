//! Durations scaled to the real database's table sizes (`--from-database`): a statement that
//! rewrites or reads whole tables takes time in proportion to their size, so its duration here is
//! multiplied by how much bigger the largest such table is in the real database. Statements
//! that only change the catalog are not scaled.

use std::collections::HashMap;

use serde::Serialize;

use crate::connection::{Connection, number, text};
use crate::error::RehearseError;
use crate::report::StatementReport;

/// How every estimate is made, for the report.
pub const METHOD: &str = "statements that rewrite or read whole tables are scaled linearly by \
    table size (bytes in the real database / bytes in the rehearsal, the largest such table \
    counts); statements that only change the catalog are not scaled; real sizes are \
    pg_total_relation_size and pg_class.reltuples of the real database, read once";

/// A table's size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TableStatistics {
    /// Estimated rows (`pg_class.reltuples`).
    pub rows: u64,
    /// Heap, indexes and TOAST (`pg_total_relation_size`).
    pub bytes: u64,
}

/// A statement's duration scaled to the real database.
#[derive(Debug, Clone, Serialize)]
pub struct DurationEstimate {
    pub ms: f64,
    /// How this number was made, in a sentence.
    pub basis: String,
}

/// Sizes of every table of the connected database, by quoted qualified name.
pub fn table_statistics(
    connection: &mut Connection,
) -> Result<HashMap<String, TableStatistics>, RehearseError> {
    let rows = connection.rows(
        "table statistics",
        "SELECT format('%I.%I', n.nspname, c.relname), greatest(c.reltuples, 0)::int8, \
                pg_total_relation_size(c.oid) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
           AND n.nspname NOT LIKE 'pg\\_toast%'",
    )?;
    Ok(rows
        .iter()
        .map(|row| {
            (
                text(row, 0),
                TableStatistics {
                    rows: number(row, 1).max(0) as u64,
                    bytes: number(row, 2).max(0) as u64,
                },
            )
        })
        .collect())
}

/// The estimate for one statement.
pub fn estimate(
    statement: &StatementReport,
    real: &HashMap<String, TableStatistics>,
    rehearsal: &HashMap<String, TableStatistics>,
) -> DurationEstimate {
    let mut worked: Vec<&str> = statement
        .rewrites
        .iter()
        .map(|r| r.table.as_deref().unwrap_or(&r.relation))
        .chain(statement.scans.iter().map(|s| s.relation.as_str()))
        .collect();
    worked.sort();
    worked.dedup();
    if worked.is_empty() {
        return DurationEstimate {
            ms: statement.duration_ms,
            basis: "catalog change only: not scaled".to_owned(),
        };
    }
    let mut best: Option<(f64, &str, TableStatistics, TableStatistics)> = None;
    for table in worked {
        let (Some(real), Some(here)) = (real.get(table), rehearsal.get(table)) else {
            continue;
        };
        // An empty table still has a page or two; never divide by less than one page.
        let factor = real.bytes as f64 / here.bytes.max(8192) as f64;
        if best.is_none_or(|(f, ..)| factor > f) {
            best = Some((factor, table, *real, *here));
        }
    }
    match best {
        None => DurationEstimate {
            ms: statement.duration_ms,
            basis: "the tables it works on are not in the real database: not scaled".to_owned(),
        },
        Some((factor, table, real, here)) => {
            let factor = factor.max(1.0);
            DurationEstimate {
                ms: statement.duration_ms * factor,
                basis: format!(
                    "×{factor:.1} for {table}: {} and ~{} rows in the real database, {} and {} rows here",
                    bytes(real.bytes),
                    real.rows,
                    bytes(here.bytes),
                    here.rows
                ),
            }
        }
    }
}

/// `1.7 MB`.
pub fn bytes(count: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = count as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{count} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relations::RelationKind;
    use crate::report::{Observation, ObservedRelation};

    fn statement(scanned: bool) -> StatementReport {
        StatementReport {
            index: 0,
            line: 1,
            sql: String::new(),
            observation: Observation::Transaction,
            duration_ms: 2.0,
            locks: Vec::new(),
            rewrites: Vec::new(),
            scans: scanned
                .then(|| ObservedRelation {
                    relation: "public.orders".to_owned(),
                    qualified: safeshift_lint::TableName::new(Some("public"), "orders"),
                    kind: RelationKind::Table,
                    table: None,
                })
                .into_iter()
                .collect(),
            estimate: None,
            lint_disagreements: Vec::new(),
        }
    }

    #[test]
    fn work_on_a_table_scales_with_its_size_and_catalog_changes_do_not() {
        let real = HashMap::from([(
            "public.orders".to_owned(),
            TableStatistics {
                rows: 1_000_000,
                bytes: 800 * 1024 * 1024,
            },
        )]);
        let here = HashMap::from([(
            "public.orders".to_owned(),
            TableStatistics {
                rows: 1000,
                bytes: 800 * 1024,
            },
        )]);
        let scaled = estimate(&statement(true), &real, &here);
        assert!((scaled.ms - 2048.0).abs() < 0.01, "{scaled:?}");
        assert!(
            scaled.basis.contains("×1024.0 for public.orders"),
            "{}",
            scaled.basis
        );
        let catalog = estimate(&statement(false), &real, &here);
        assert_eq!(catalog.ms, 2.0);
        assert_eq!(bytes(800 * 1024 * 1024), "800.0 MB");
    }
}
