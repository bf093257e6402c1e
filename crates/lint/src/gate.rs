//! The check `safeshift up` runs before applying: pending migrations may not carry a finding above
//! the accepted risk unless it is acknowledged.

use crate::finding::Finding;
use crate::report::{FileReport, LintReport};
use crate::risk::Risk;

/// A finding that stops `up`, with its file.
#[derive(Debug, Clone)]
pub struct BlockingFinding<'a> {
    pub file: &'a FileReport,
    pub finding: &'a Finding,
}

/// Rules whose pattern the runner refuses by itself before running anything, with its own
/// error; the gate leaves those to it so users see one message, not two.
const REFUSED_BY_THE_RUNNER: &[&str] = &["concurrently-in-transaction"];

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
