//! The risk policy, from the runbooks: some operations are dangerous whatever the table size
//! (floors), and for the rest the size decides. A statement that locks a table in use against
//! reads or writes may be LOW only on a small table; an estimated time under such a lock beyond
//! the lock budget is HIGH. Without sizes (no database), every finding keeps its rule's risk,
//! raised to its floor.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::finding::{Finding, SizeEstimate};
use crate::metadata::RuleMetadata;
use crate::report::LintReport;
use crate::risk::Risk;
use crate::rules;
use crate::size::{self, TableSize, TableStatistics};
use crate::sql::TableName;

/// The settings of the policy (`[lint]` in safeshift.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RiskPolicy {
    /// A table with fewer rows than this is small: a statement that blocks it may be LOW.
    pub small_table_rows: u64,
    /// The longest a lock that blocks reads or writes may be held: an estimate above it is HIGH.
    #[serde(serialize_with = "crate::finding::serialize_duration_ms")]
    pub lock_budget: Duration,
}

impl Default for RiskPolicy {
    fn default() -> Self {
        RiskPolicy {
            small_table_rows: 1_000,
            lock_budget: Duration::from_secs(1),
        }
    }
}

/// What an operation does that no table size makes harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hazard {
    /// Deletes data for good (`DROP TABLE`, `DROP COLUMN`, `TRUNCATE`, `DELETE` or `UPDATE`
    /// without `WHERE`): HIGH.
    DataLoss,
    /// Deletes data if the table exists: `DROP TABLE IF EXISTS` of a table no earlier migration
    /// creates. HIGH when the database has the table; without a database, the rule's risk.
    DataLossIfPresent,
    /// Breaks code running during the deploy or depends on every row (renames, type changes,
    /// `SET NOT NULL` on an existing column): at least MEDIUM.
    Breaking,
}

impl Hazard {
    /// The lowest risk a finding with this hazard may have; `present` is whether the table is
    /// known to exist (the database has it).
    fn floor(self, present: bool) -> Risk {
        match self {
            Hazard::DataLoss => Risk::High,
            Hazard::DataLossIfPresent if present => Risk::High,
            Hazard::DataLossIfPresent => Risk::Low,
            Hazard::Breaking => Risk::Medium,
        }
    }

    /// For `safeshift explain`.
    pub fn describe(self) -> &'static str {
        match self {
            Hazard::DataLoss => "high whatever the table size: the data is gone for good",
            Hazard::DataLossIfPresent => {
                "high when the database has the table: its data is gone for good"
            }
            Hazard::Breaking => {
                "medium at least, whatever the table size: it breaks running code or depends on every row"
            }
        }
    }
}

/// Whether a rule is about a lock that blocks reads or writes: its findings are at least MEDIUM
/// unless the tables are known to be small.
fn about_blocking_lock(metadata: &RuleMetadata) -> bool {
    metadata.lock.is_some_and(|mode| mode.blocks_traffic())
}

/// The risk of a finding before table sizes are known: the rule's (or the violation's) risk,
/// raised to the hazard's floor and, for a rule about a blocking lock that the statement takes
/// on a table in use, to MEDIUM.
pub(crate) fn risk_without_sizes(metadata: &RuleMetadata, finding: &Finding) -> Risk {
    let mut risk = finding.risk;
    if let Some(hazard) = finding.hazard {
        risk = risk.max(hazard.floor(false));
    }
    // A table that may not exist (only the database can say) blocks nobody by itself.
    let may_be_absent = finding.hazard == Some(Hazard::DataLossIfPresent);
    if about_blocking_lock(metadata)
        && !may_be_absent
        && finding.lock.is_some_and(|mode| mode.blocks_traffic())
    {
        risk = risk.max(Risk::Medium);
    }
    risk
}

/// How the findings of a report were graded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "kebab-case")]
pub enum Grading {
    /// Without a database: each finding has its rule's risk, raised to its floor.
    FilesAlone,
    /// With the sizes of the tables the findings lock, read from the database.
    TableSizes,
    /// A database was given but its sizes could not be read; graded as files alone.
    SizesUnavailable { reason: String },
}

/// Grades every finding by the policy with the sizes `statistics` reads for the tables the
/// findings lock (one lookup for the whole report). When the lookup fails, the findings keep the
/// risk they have without sizes and the reason is returned.
pub fn grade(
    report: &mut LintReport,
    policy: &RiskPolicy,
    statistics: &mut dyn TableStatistics,
) -> Grading {
    let mut tables: Vec<TableName> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for file in &report.files {
        for finding in &file.findings {
            for lock in &finding.locks {
                if seen.insert(lock.table.key().to_owned()) {
                    tables.push(lock.table.clone());
                }
            }
        }
    }
    if tables.is_empty() {
        return Grading::TableSizes;
    }
    let sizes = match statistics.table_sizes(&tables) {
        Ok(sizes) => sizes,
        Err(reason) => return Grading::SizesUnavailable { reason },
    };
    let by_table: std::collections::HashMap<&str, Option<TableSize>> = tables
        .iter()
        .map(TableName::key)
        .zip(sizes.into_iter().chain(std::iter::repeat(None)))
        .collect();
    let metadata = rules::metadata();
    for file in &mut report.files {
        for finding in &mut file.findings {
            let Some(position) = rules::position(finding.rule.as_str()) else {
                continue;
            };
            let sizes: Vec<Option<TableSize>> = finding
                .locks
                .iter()
                .map(|lock| by_table.get(lock.table.key()).copied().flatten())
                .collect();
            grade_finding(finding, &metadata[position], policy, &sizes);
        }
    }
    Grading::TableSizes
}

/// Grades one finding given the sizes of the tables it locks (`None`: not in the database).
fn grade_finding(
    finding: &mut Finding,
    metadata: &RuleMetadata,
    policy: &RiskPolicy,
    sizes: &[Option<TableSize>],
) {
    let found: Vec<TableSize> = sizes.iter().flatten().copied().collect();
    if found.is_empty() {
        // None of its tables exists in the database (or it locks none): nothing to weigh.
        return;
    }
    let rows = found.iter().try_fold(0u64, |sum, size| {
        size.rows.map(|rows| sum.saturating_add(rows))
    });
    let bytes = found.iter().map(|size| size.bytes).sum::<u64>();
    let small = found.len() == sizes.len()
        && found
            .iter()
            .all(|size| size.rows.is_some_and(|rows| rows < policy.small_table_rows));
    let duration = size::duration_under_lock(metadata.cost, bytes);
    let static_risk = finding.risk;
    let blocking =
        about_blocking_lock(metadata) && finding.lock.is_some_and(|mode| mode.blocks_traffic());
    let mut reasons: Vec<String> = Vec::new();
    let mut risk = match duration {
        Some(duration) if duration > policy.lock_budget => {
            reasons.push(format!(
                "about {} under the lock, over the {} lock budget",
                size::describe_duration(duration),
                size::describe_duration(policy.lock_budget)
            ));
            Risk::High
        }
        Some(duration) => {
            let within = format!(
                "about {} under the lock, within the {} lock budget",
                size::describe_duration(duration),
                size::describe_duration(policy.lock_budget)
            );
            reasons.push(within);
            if blocking && !small {
                Risk::Medium
            } else {
                Risk::Low
            }
        }
        // Not a matter of time: a rename or a drop is as dangerous on any table.
        None => static_risk,
    };
    if blocking && !small && risk < Risk::Medium {
        risk = Risk::Medium;
    }
    if blocking {
        reasons.push(if small {
            format!(
                "a small table (under {} rows)",
                group_digits(policy.small_table_rows)
            )
        } else {
            match rows {
                Some(_) => format!(
                    "not a small table ({} rows or more)",
                    group_digits(policy.small_table_rows)
                ),
                None => "the row count is unknown (the table was never analysed)".to_owned(),
            }
        });
    }
    if let Some(hazard) = finding.hazard {
        let floor = hazard.floor(true);
        if floor > risk {
            risk = floor;
            reasons.push(format!("floor: {}", hazard.describe()));
        }
    }
    finding.risk = risk;
    finding.estimate = Some(SizeEstimate {
        rows,
        bytes,
        duration,
        static_risk,
        basis: reasons.join("; "),
    });
}

/// `1000` → `1,000`.
fn group_digits(number: u64) -> String {
    let digits = number.to_string();
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(id: &str) -> &'static RuleMetadata {
        crate::rule(id).unwrap()
    }

    fn finding(rule: &'static str, sql: &str) -> Finding {
        let linter = crate::Linter::new(crate::LintOptions::default()).unwrap();
        let report = linter.lint_example(
            "CREATE TABLE t (id bigint PRIMARY KEY, a int, b text NOT NULL);",
            sql,
            crate::ExampleMode::Migration,
        );
        report
            .findings
            .into_iter()
            .find(|f| f.rule == rule)
            .unwrap_or_else(|| panic!("no {rule} on {sql}"))
    }

    fn graded(rule: &'static str, sql: &str, rows: Option<u64>, bytes: u64) -> Finding {
        let mut finding = finding(rule, sql);
        let sizes = vec![Some(TableSize { rows, bytes }); finding.locks.len()];
        grade_finding(&mut finding, metadata(rule), &RiskPolicy::default(), &sizes);
        finding
    }

    #[test]
    fn a_blocking_statement_is_low_only_on_a_small_table() {
        let index = "CREATE INDEX t_a ON t (a)";
        let small = graded(
            "require-concurrent-index-creation",
            index,
            Some(500),
            64 << 10,
        );
        assert_eq!(small.risk, Risk::Low, "{:?}", small.estimate);
        let large = graded(
            "require-concurrent-index-creation",
            index,
            Some(100_000),
            8 << 20,
        );
        assert_eq!(large.risk, Risk::Medium, "{:?}", large.estimate);
        assert!(
            large.estimate.unwrap().basis.contains("not a small table"),
            "the finding says why"
        );
        let never_analysed = graded("require-concurrent-index-creation", index, None, 64 << 10);
        assert_eq!(never_analysed.risk, Risk::Medium);
    }

    #[test]
    fn time_over_the_lock_budget_is_high() {
        let huge = graded(
            "require-concurrent-index-creation",
            "CREATE INDEX t_a ON t (a)",
            Some(50_000_000),
            20 << 30,
        );
        assert_eq!(huge.risk, Risk::High);
        assert!(
            huge.estimate
                .unwrap()
                .basis
                .contains("over the 1 s lock budget")
        );
    }

    #[test]
    fn floors_hold_on_small_tables() {
        let type_change = graded(
            "changing-column-type",
            "ALTER TABLE t ALTER COLUMN a TYPE bigint",
            Some(10),
            8 << 10,
        );
        assert_eq!(type_change.risk, Risk::Medium);
        let not_null = graded(
            "setting-not-null-on-existing-column",
            "ALTER TABLE t ALTER COLUMN a SET NOT NULL",
            Some(10),
            8 << 10,
        );
        assert_eq!(not_null.risk, Risk::Medium);
        for (rule, sql) in [
            ("dropping-column", "ALTER TABLE t DROP COLUMN a"),
            ("dropping-table", "DROP TABLE t"),
            ("unbatched-data-change", "DELETE FROM t"),
            ("unbatched-data-change", "UPDATE t SET a = 1"),
        ] {
            assert_eq!(
                graded(rule, sql, Some(10), 8 << 10).risk,
                Risk::High,
                "{sql}"
            );
        }
        let rename = graded(
            "renaming-column",
            "ALTER TABLE t RENAME COLUMN a TO c",
            Some(10),
            8 << 10,
        );
        assert!(rename.risk >= Risk::Medium);
    }

    #[test]
    fn without_sizes_floors_apply_too() {
        assert_eq!(
            finding("unbatched-data-change", "DELETE FROM t").risk,
            Risk::High
        );
        assert_eq!(
            finding(
                "require-concurrent-index-creation",
                "CREATE INDEX t_a ON t (a)"
            )
            .risk,
            Risk::High
        );
    }

    #[test]
    fn groups_digits() {
        assert_eq!(group_digits(1000), "1,000");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1234567), "1,234,567");
    }
}
