//! What the linter reports: findings on statements, and diagnostics about the file itself (parse
//! errors, bad suppressions).

use std::ops::Range;
use std::time::Duration;

use serde::Serialize;

use crate::effects::TableLock;
use crate::lock::{Blocks, LockMode};
use crate::policy::Hazard;
use crate::risk::Risk;
use crate::rules::RuleId;

/// A rule's finding on one statement.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The rule's kebab-case id.
    pub rule: RuleId,
    pub risk: Risk,
    pub message: String,
    /// The strongest lock the statement takes on the tables below (a PostgreSQL lock mode name).
    pub lock: Option<LockMode>,
    /// What that lock blocks.
    pub blocks: Option<Blocks>,
    /// The tables the finding is about, as written.
    pub tables: Vec<String>,
    /// Every lock on a table that other sessions use.
    pub locks: Vec<TableLock>,
    /// Whether the statement rewrites the table.
    pub rewrite: bool,
    /// What to do instead, in a sentence (the rule's).
    pub help: &'static str,
    /// The safe alternative as SQL for this statement, when there is one.
    pub safe_alternative: Option<String>,
    /// 1-based line of the statement's first character.
    pub line: u32,
    /// 1-based column of the statement's first character.
    pub column: u32,
    /// Byte range of the statement in the file text.
    pub span: Range<usize>,
    /// 0-based index of the statement in its section.
    pub statement: usize,
    /// What the statement does that no table size makes harmless, which sets the lowest risk
    /// the finding may have (see [`crate::RiskPolicy`]).
    pub hazard: Option<Hazard>,
    /// Size and duration estimate, when table statistics were given.
    pub estimate: Option<SizeEstimate>,
    /// The reason given by a `-- safeshift:allow` comment that acknowledges the finding.
    pub suppressed: Option<String>,
}

impl Finding {
    pub fn is_suppressed(&self) -> bool {
        self.suppressed.is_some()
    }
}

/// The size of the tables a finding touches, how long the statement may hold its lock, and why
/// the finding has its risk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizeEstimate {
    /// Estimated rows (from `pg_class.reltuples`), summed over the tables; `None` when a table
    /// was never analysed.
    pub rows: Option<u64>,
    /// Total bytes including indexes and TOAST, summed over the tables.
    pub bytes: u64,
    /// Roughly how long the work under the lock takes; `None` for metadata-only changes.
    #[serde(serialize_with = "serialize_optional_duration_ms")]
    pub duration: Option<Duration>,
    /// The risk before sizes were known.
    pub static_risk: Risk,
    /// Why the finding has its risk, in words: the time under the lock against the budget, the
    /// table's size against the small-table limit, the floor.
    pub basis: String,
}

pub(crate) fn serialize_duration_ms<S: serde::Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(duration.as_millis() as u64)
}

fn serialize_optional_duration_ms<S: serde::Serializer>(
    duration: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match duration {
        Some(duration) => serializer.serialize_u64(duration.as_millis() as u64),
        None => serializer.serialize_none(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiagnosticKind {
    /// A statement the PostgreSQL grammar rejects.
    ParseError,
    /// The file could not be read or split.
    SourceError,
    /// A suppression names a rule that does not exist.
    UnknownRule,
    /// A suppression gives no reason.
    MissingReason,
    /// A suppression that acknowledged nothing.
    UnusedSuppression,
}

/// A problem with the file rather than with what a statement does.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub kind: DiagnosticKind,
    pub message: String,
    pub help: Option<String>,
    pub line: u32,
    pub column: u32,
    /// Byte range in the file text, when known.
    pub span: Option<Range<usize>>,
}
