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

/// The findings that block applying the linted migrations: those not acknowledged by a
/// suppression whose risk is above `accepted` (by default `Risk::Medium`, so HIGH blocks; with
/// `--allow-risk high` nothing does).
pub fn gate(report: &LintReport, accepted: Risk) -> Vec<BlockingFinding<'_>> {
    report
        .active_findings()
        .filter(|(_, finding)| finding.risk > accepted)
        .map(|(file, finding)| BlockingFinding { file, finding })
        .collect()
}
