//! The check `safeshift up` runs before applying: pending migrations may not carry a finding above
//! the accepted risk unless it is acknowledged.

use std::path::PathBuf;

use crate::evaluation::Evaluation;
use crate::finding::Finding;
use crate::policy::Grading;
use crate::report::{FileReport, LintReport, Summary};
use crate::risk::Risk;
use crate::rules::RuleId;

/// A finding that stops `up`, with its file.
#[derive(Debug, Clone)]
pub struct BlockingFinding<'a> {
    pub file: &'a FileReport,
    pub finding: &'a Finding,
}

/// Rules whose pattern the runner refuses by itself before running anything, with its own
/// error; the gate leaves those to it so users see one message, not two.
const REFUSED_BY_THE_RUNNER: &[RuleId] = &[RuleId::ConcurrentlyInTransaction];

/// The findings that block applying the linted migrations: those not acknowledged by a
/// suppression whose risk is above `accepted` (by default `Risk::Medium`, so HIGH blocks; with
/// `--allow-risk high` nothing does).
pub fn gate(report: &LintReport, accepted: Risk) -> Vec<BlockingFinding<'_>> {
    report
        .active_findings()
        .filter(|(_, finding)| {
            finding.risk > accepted && !REFUSED_BY_THE_RUNNER.contains(&finding.rule)
        })
        .map(|(file, finding)| BlockingFinding { file, finding })
        .collect()
}

/// Why `up` may not apply the pending migrations.
#[derive(Debug, Clone)]
pub struct BlockedUp {
    /// The blocking findings, and only them, per file: what to show.
    pub report: LintReport,
    /// How many findings block.
    pub count: usize,
    /// The highest risk accepted without an acknowledgement.
    pub accepted: Risk,
    /// The version of the first migration with a blocking finding.
    pub version: String,
    /// The counts of the whole evaluation: every migration `up` would apply, not only those
    /// shown.
    pub evaluated: Summary,
    /// Whether table sizes graded the findings.
    pub grading: Grading,
}

/// What blocks `up` in the evaluation of the migrations it would apply (see
/// [`Linter::evaluate`](crate::Linter::evaluate), the one `lint` and `plan` show): findings above
/// `accepted` that are not acknowledged. `None` when nothing does.
pub fn blocked_up(evaluation: &Evaluation, accepted: Risk) -> Option<BlockedUp> {
    let evaluated = &evaluation.report;
    let blocking = gate(evaluated, accepted);
    let first = blocking.first()?;
    let version = first.file.version.clone().unwrap_or_default();
    let count = blocking.len();
    let blocking_keys: Vec<(PathBuf, usize, RuleId)> = blocking
        .iter()
        .map(|b| (b.file.path.clone(), b.finding.statement, b.finding.rule))
        .collect();
    let mut report = evaluated.clone();
    for file in &mut report.files {
        let path = file.path.clone();
        file.findings
            .retain(|f| blocking_keys.contains(&(path.clone(), f.statement, f.rule)));
        file.diagnostics.clear();
    }
    report.files.retain(|f| !f.findings.is_empty());
    Some(BlockedUp {
        report,
        count,
        accepted,
        version,
        evaluated: evaluated.summary(),
        grading: evaluation.grading.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExampleMode, LintOptions, Linter};

    fn report(sql: &str) -> LintReport {
        let linter = Linter::new(LintOptions::default()).unwrap();
        LintReport {
            files: vec![linter.lint_example(
                "CREATE TABLE t (a int);",
                sql,
                ExampleMode::Migration,
            )],
        }
    }

    #[test]
    fn high_risk_blocks_unless_accepted_or_acknowledged() {
        let blocking = report("CREATE INDEX t_a ON t (a)");
        assert_eq!(gate(&blocking, Risk::Medium).len(), 1);
        assert!(gate(&blocking, Risk::High).is_empty());
        let acknowledged = report(
            "-- safeshift:allow require-concurrent-index-creation t has ten rows\nCREATE INDEX t_a ON t (a)",
        );
        assert!(gate(&acknowledged, Risk::Medium).is_empty());
    }

    #[test]
    fn leaves_what_the_runner_refuses_to_the_runner() {
        assert!(
            gate(
                &report("CREATE INDEX CONCURRENTLY t_a ON t (a)"),
                Risk::Medium
            )
            .is_empty()
        );
    }
}
