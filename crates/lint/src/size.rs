//! Table sizes, and the time work under a lock takes on a table of a given size: the same
//! statement is harmless on a 500-row table and an outage on a 50-million-row one. The caller
//! supplies sizes through [`TableStatistics`] (the CLI reads them from the database);
//! [`crate::policy`] turns them into risks.

use std::time::Duration;

use crate::metadata::Cost;
use crate::sql::TableName;

/// Row estimate and size of one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSize {
    /// `pg_class.reltuples`; `None` when the table was never analysed and is not empty, so its
    /// row count is unknown.
    pub rows: Option<u64>,
    /// `pg_total_relation_size`: heap, indexes and TOAST.
    pub bytes: u64,
}

/// Where sizes come from.
pub trait TableStatistics {
    /// The size of each of `tables`, in the same order: `None` for a table the database does
    /// not have. A table without a schema is looked up through the search path. An error says
    /// why the sizes could not be read (the findings are then graded without them).
    fn table_sizes(&mut self, tables: &[TableName]) -> Result<Vec<Option<TableSize>>, String>;
}

/// Throughput assumed for work under a lock, in bytes per second (a modest server's disk).
fn throughput(cost: Cost) -> Option<u64> {
    match cost {
        Cost::Rewrite => Some(60 << 20),
        Cost::IndexBuild => Some(80 << 20),
        Cost::Scan => Some(200 << 20),
        Cost::DataChange => Some(30 << 20),
        Cost::Metadata | Cost::None => None,
    }
}

/// Roughly how long work of `cost` takes on `bytes` of table; `None` when it does not grow with
/// the table (a catalog change, a rename).
pub(crate) fn duration_under_lock(cost: Cost, bytes: u64) -> Option<Duration> {
    throughput(cost)
        .map(|per_second| Duration::from_millis(bytes.saturating_mul(1000) / per_second))
}

/// `230 ms`, `1.5 s`, `12 s`, `3 min`.
pub(crate) fn describe_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds < 1.0 {
        format!("{} ms", duration.as_millis())
    } else if seconds < 10.0 {
        let text = format!("{seconds:.1}");
        format!("{} s", text.strip_suffix(".0").unwrap_or(&text))
    } else if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else {
        format!("{:.0} min", seconds / 60.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_grow_with_the_table() {
        assert_eq!(duration_under_lock(Cost::Metadata, 1 << 30), None);
        let small = duration_under_lock(Cost::Rewrite, 1 << 20).unwrap();
        let large = duration_under_lock(Cost::Rewrite, 1 << 30).unwrap();
        assert!(small < Duration::from_millis(100) && large > Duration::from_secs(10));
    }

    #[test]
    fn describes_durations() {
        assert_eq!(describe_duration(Duration::from_millis(3)), "3 ms");
        assert_eq!(describe_duration(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(describe_duration(Duration::from_secs(1)), "1 s");
        assert_eq!(describe_duration(Duration::from_secs(42)), "42 s");
        assert_eq!(describe_duration(Duration::from_secs(600)), "10 min");
    }
}
