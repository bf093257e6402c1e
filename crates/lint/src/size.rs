//! Size-aware grading: the same statement is harmless on a 500-row table and an outage on a
//! 50-million-row one. The caller supplies sizes through [`TableStatistics`] (the CLI reads them
//! from the database); this module turns them into a risk and a rough duration.

use std::time::Duration;

use crate::finding::SizeEstimate;
use crate::metadata::Cost;
use crate::report::LintReport;
use crate::risk::Risk;
use crate::rules;

/// Row estimate and size of one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSize {
    /// `pg_class.reltuples`, or 0 when the table was never analysed.
    pub rows: u64,
    /// `pg_total_relation_size`: heap, indexes and TOAST.
    pub bytes: u64,
}

/// Where sizes come from. `schema` is `None` for an unqualified name (the search path decides).
pub trait TableStatistics {
    fn table_size(&self, schema: Option<&str>, table: &str) -> Option<TableSize>;
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

/// The risk for work of `duration` under a lock that blocks traffic.
fn risk_for(duration: Duration) -> Risk {
    if duration < Duration::from_secs(1) {
        Risk::Low
    } else if duration < Duration::from_secs(10) {
        Risk::Medium
    } else {
        Risk::High
    }
}

/// Estimates the duration of every finding whose work grows with its tables, and grades its risk
/// by it: under a second is LOW, under ten seconds MEDIUM, longer HIGH. Findings whose danger
/// does not depend on size (renames, drops, lock waits) keep their risk but get the sizes.
pub fn grade(report: &mut LintReport, statistics: &dyn TableStatistics) {
    let metadata = rules::metadata();
    for file in &mut report.files {
        for finding in &mut file.findings {
            let mut rows = 0u64;
            let mut bytes = 0u64;
            let mut known = false;
            for lock in &finding.locks {
                if let Some(size) =
                    statistics.table_size(lock.table.schema.as_deref(), &lock.table.name)
                {
                    rows += size.rows;
                    bytes += size.bytes;
                    known = true;
                }
            }
            if !known {
                continue;
            }
            let cost =
                rules::position(finding.rule.as_str()).map_or(Cost::None, |i| metadata[i].cost);
            let duration = throughput(cost)
                .map(|per_second| Duration::from_millis(bytes.saturating_mul(1000) / per_second));
            let static_risk = finding.risk;
            if let Some(duration) = duration {
                finding.risk = risk_for(duration);
            }
            finding.estimate = Some(SizeEstimate {
                rows,
                bytes,
                duration,
                static_risk,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades_by_duration() {
        assert_eq!(risk_for(Duration::from_millis(20)), Risk::Low);
        assert_eq!(risk_for(Duration::from_secs(5)), Risk::Medium);
        assert_eq!(risk_for(Duration::from_secs(600)), Risk::High);
        assert_eq!(throughput(Cost::Metadata), None);
    }
}
