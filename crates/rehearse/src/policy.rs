//! Lock policies a rehearsal enforces: no pre-existing table may be rewritten or read in full
//! while its transaction holds ACCESS EXCLUSIVE on it, because every query on that table waits
//! for as long as that takes (which grows with the table).
//!
//! A violation is graded by what the rehearsal knows of the table's size, the way the linter
//! grades a statement that blocks a table in use: over the lock budget it is HIGH and fails the
//! migration; otherwise it is a warning, LOW on a small table and MEDIUM on any other. Without
//! `--rows` or `--from-database` the tables are empty and say nothing about time: MEDIUM.

use std::collections::{BTreeSet, HashMap};

use crate::estimate::TableStatistics;
use crate::report::{LockPolicy, PolicyViolation, StatementReport};
use safeshift_lint::{LockMode, Risk};

/// Where a violation turns from a warning into a failure: the linter's risk policy (`[lint]
/// small_table_rows` and `lock_budget`, defaults 1,000 rows and 1 s), so that `lint`, `up` and
/// `rehearse` grade the same statement on the same table alike.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradingThresholds {
    /// A table with fewer rows is small: a violation on it is LOW.
    pub small_table_rows: u64,
    /// A violation whose statement works longer than this under the lock is HIGH (a failure).
    pub lock_budget_ms: f64,
}

impl Default for GradingThresholds {
    fn default() -> Self {
        GradingThresholds::from(safeshift_lint::RiskPolicy::default())
    }
}

/// The linter's risk policy is where the thresholds come from, so they cannot disagree.
impl From<safeshift_lint::RiskPolicy> for GradingThresholds {
    fn from(policy: safeshift_lint::RiskPolicy) -> Self {
        GradingThresholds {
            small_table_rows: policy.small_table_rows,
            lock_budget_ms: policy.lock_budget.as_secs_f64() * 1_000.0,
        }
    }
}

/// The table sizes a rehearsal knows, when it was given any (`--rows`, `--from-database`).
#[derive(Debug, Clone, Copy)]
pub struct KnownSizes<'a> {
    /// The real database's tables (`--from-database`).
    pub real: Option<&'a HashMap<String, TableStatistics>>,
    /// The rehearsal's own tables before `up` (filled to `--rows`).
    pub rehearsal: &'a HashMap<String, TableStatistics>,
}

/// The violations in one migration's traced statements. In a transactional migration, locks
/// taken by earlier statements are still held; otherwise each statement stands alone. Each is
/// graded with `sizes` (`None`: the rehearsal was given no sizes).
pub fn violations(
    statements: &[StatementReport],
    transactional: bool,
    sizes: Option<KnownSizes<'_>>,
    thresholds: &GradingThresholds,
) -> Vec<PolicyViolation> {
    let mut found = Vec::new();
    let mut exclusive: BTreeSet<String> = BTreeSet::new();
    for statement in statements {
        if !transactional {
            exclusive.clear();
        }
        exclusive.extend(
            statement
                .locks
                .iter()
                .filter(|lock| lock.mode == LockMode::AccessExclusive)
                .map(|lock| lock.table.clone().unwrap_or_else(|| lock.relation.clone())),
        );
        let mut rewritten: BTreeSet<&str> = BTreeSet::new();
        for rewrite in &statement.rewrites {
            rewritten.insert(rewrite.table.as_deref().unwrap_or(&rewrite.relation));
        }
        for table in rewritten {
            if exclusive.contains(table) {
                found.push(graded(
                    LockPolicy::RewriteUnderAccessExclusive,
                    statement,
                    table,
                    format!(
                        "{table} is rewritten while ACCESS EXCLUSIVE is held on it: reads and writes wait for the whole rewrite"
                    ),
                    sizes,
                    thresholds,
                ));
            }
        }
        for scan in &statement.scans {
            let rewritten_too = statement
                .rewrites
                .iter()
                .any(|r| r.table.as_deref().unwrap_or(&r.relation) == scan.relation);
            if exclusive.contains(&scan.relation) && !rewritten_too {
                found.push(graded(
                    LockPolicy::ScanUnderAccessExclusive,
                    statement,
                    &scan.relation,
                    format!(
                        "{} is read in full while ACCESS EXCLUSIVE is held on it: reads and writes wait for the whole scan",
                        scan.relation
                    ),
                    sizes,
                    thresholds,
                ));
            }
        }
    }
    found
}

/// One violation with its risk: by the time the statement works under the lock (scaled to the
/// real sizes when known) against the budget, then by the table's rows against the small-table
/// threshold, as the linter grades a blocking statement.
fn graded(
    rule: LockPolicy,
    statement: &StatementReport,
    table: &str,
    message: String,
    sizes: Option<KnownSizes<'_>>,
    thresholds: &GradingThresholds,
) -> PolicyViolation {
    let mut violation = PolicyViolation {
        rule,
        statement: statement.index,
        line: statement.line,
        table: table.to_owned(),
        message,
        risk: Risk::Medium,
        table_rows: None,
        time_under_lock_ms: None,
        grade: "the rehearsal knows no table sizes (its tables are empty): a warning; rehearse \
                with --rows N or --from-database URL to grade it"
            .to_owned(),
    };
    let Some(sizes) = sizes else {
        return violation;
    };
    let (rows, source) = match sizes.real.and_then(|real| real.get(table)) {
        Some(real) => (real.rows, "in the real database"),
        None => (
            sizes.rehearsal.get(table).and_then(|here| here.rows),
            "in the rehearsal",
        ),
    };
    let ms = statement
        .estimate
        .as_ref()
        .map_or(statement.duration_ms, |estimate| estimate.ms);
    violation.table_rows = rows;
    violation.time_under_lock_ms = Some(ms);
    let budget = format_ms(thresholds.lock_budget_ms);
    let time = if ms > thresholds.lock_budget_ms {
        format!(
            "about {} under the lock, over the {budget} lock budget",
            format_ms(ms)
        )
    } else {
        format!(
            "about {} under the lock, within the {budget} lock budget",
            format_ms(ms)
        )
    };
    let small = rows.is_some_and(|rows| rows < thresholds.small_table_rows);
    let size = match rows {
        Some(rows) if small => format!(
            "a small table (~{} rows {source}, under {})",
            grouped(rows),
            grouped(thresholds.small_table_rows)
        ),
        Some(rows) => format!(
            "not a small table (~{} rows {source}, {} or more)",
            grouped(rows),
            grouped(thresholds.small_table_rows)
        ),
        None => format!("the row count {source} is unknown (never analysed)"),
    };
    violation.risk = if ms > thresholds.lock_budget_ms {
        Risk::High
    } else if small {
        Risk::Low
    } else {
        Risk::Medium
    };
    violation.grade = format!("{time}; {size}");
    violation
}

/// `1,000`, as lint prints its threshold.
fn grouped(number: u64) -> String {
    let digits = number.to_string();
    let mut out = String::new();
    for (position, digit) in digits.chars().enumerate() {
        if position > 0 && (digits.len() - position).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `0.4 ms`, `230 ms`, `1.5 s`.
fn format_ms(ms: f64) -> String {
    if ms >= 1_000.0 && ms % 1_000.0 == 0.0 {
        format!("{:.0} s", ms / 1_000.0)
    } else if ms >= 1_000.0 {
        format!("{:.1} s", ms / 1_000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relations::RelationKind;
    use crate::report::{Observation, ObservedLock, ObservedRelation};
    use safeshift_lint::TableName;

    fn statement(
        index: usize,
        mode: Option<LockMode>,
        rewrite: bool,
        scan: bool,
    ) -> StatementReport {
        let relation = || ObservedRelation {
            relation: "public.t".to_owned(),
            qualified: TableName::new(Some("public"), "t"),
            kind: RelationKind::Table,
            table: None,
        };
        StatementReport {
            index,
            line: 1,
            sql: String::new(),
            observation: Observation::Transaction,
            duration_ms: 0.0,
            locks: mode
                .map(|mode| ObservedLock {
                    relation: "public.t".to_owned(),
                    qualified: TableName::new(Some("public"), "t"),
                    kind: RelationKind::Table,
                    table: None,
                    mode,
                    blocks: mode.blocked_commands(),
                    held_ms: 0.0,
                })
                .into_iter()
                .collect(),
            rewrites: if rewrite {
                vec![relation()]
            } else {
                Vec::new()
            },
            scans: if scan { vec![relation()] } else { Vec::new() },
            estimate: None,
            lint_disagreements: Vec::new(),
        }
    }

    #[test]
    fn a_rewrite_or_scan_under_access_exclusive_is_a_violation() {
        let rewrite = [statement(0, Some(LockMode::AccessExclusive), true, true)];
        let found = violations(&rewrite, true, None, &GradingThresholds::default());
        assert_eq!(found.len(), 1, "a rewrite's own scan is not counted twice");
        assert_eq!(found[0].rule, LockPolicy::RewriteUnderAccessExclusive);
        let scan = [statement(0, Some(LockMode::AccessExclusive), false, true)];
        assert_eq!(
            violations(&scan, true, None, &GradingThresholds::default())[0].rule,
            LockPolicy::ScanUnderAccessExclusive
        );
    }

    #[test]
    fn a_lock_from_an_earlier_statement_counts_only_inside_one_transaction() {
        let statements = [
            statement(0, Some(LockMode::AccessExclusive), false, false),
            statement(1, None, false, true),
        ];
        assert_eq!(
            violations(&statements, true, None, &GradingThresholds::default()).len(),
            1
        );
        assert!(violations(&statements, false, None, &GradingThresholds::default()).is_empty());
    }

    #[test]
    fn a_scan_under_a_weaker_lock_is_allowed() {
        let validate = [statement(
            0,
            Some(LockMode::ShareUpdateExclusive),
            false,
            true,
        )];
        assert!(violations(&validate, true, None, &GradingThresholds::default()).is_empty());
    }

    fn sizes(rows: Option<u64>) -> HashMap<String, TableStatistics> {
        HashMap::from([("public.t".to_owned(), TableStatistics { rows, bytes: 8192 })])
    }

    fn graded_with(rows: Option<u64>, ms: f64, real: bool) -> PolicyViolation {
        let mut rewrite = statement(0, Some(LockMode::AccessExclusive), true, false);
        rewrite.duration_ms = ms;
        let table = sizes(rows);
        let empty = HashMap::new();
        let known = if real {
            KnownSizes {
                real: Some(&table),
                rehearsal: &empty,
            }
        } else {
            KnownSizes {
                real: None,
                rehearsal: &table,
            }
        };
        let found = violations(&[rewrite], true, Some(known), &GradingThresholds::default());
        assert_eq!(found.len(), 1);
        found.into_iter().next().unwrap()
    }

    #[test]
    fn without_sizes_a_violation_is_a_medium_warning() {
        let rewrite = [statement(0, Some(LockMode::AccessExclusive), true, false)];
        let found = violations(&rewrite, true, None, &GradingThresholds::default());
        assert_eq!(found[0].risk, Risk::Medium);
        assert_eq!(found[0].time_under_lock_ms, None);
        assert!(found[0].grade.contains("--rows N"), "{}", found[0].grade);
    }

    #[test]
    fn with_sizes_a_violation_is_graded_by_rows_and_time_as_lint_grades_it() {
        let small = graded_with(Some(999), 5.0, false);
        assert_eq!(small.risk, Risk::Low, "{}", small.grade);
        assert_eq!(
            small.grade,
            "about 5.0 ms under the lock, within the 1 s lock budget; a small table (~999 rows in the rehearsal, under 1,000)"
        );
        let large = graded_with(Some(1_000), 5.0, true);
        assert_eq!(large.risk, Risk::Medium, "{}", large.grade);
        assert!(
            large
                .grade
                .contains("~1,000 rows in the real database, 1,000 or more")
        );
        let unknown = graded_with(None, 5.0, true);
        assert_eq!(unknown.risk, Risk::Medium, "{}", unknown.grade);
        assert!(unknown.grade.contains("unknown"));
        let slow = graded_with(Some(10), 1_500.0, false);
        assert_eq!(slow.risk, Risk::High, "{}", slow.grade);
        assert!(
            slow.grade
                .starts_with("about 1.5 s under the lock, over the 1 s lock budget")
        );
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped(999), "999");
        // Exactly the budget is within it, as lint's `duration > budget` has it.
        assert_eq!(graded_with(Some(10), 1_000.0, false).risk, Risk::Low);
    }
}
