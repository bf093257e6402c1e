//! What a rehearsal found, as values: the CLI renders them (terminal, JSON, Markdown).

use serde::Serialize;

use crate::estimate::DurationEstimate;
use crate::relations::RelationKind;
use crate::snapshot::SchemaDiff;
use safeshift_lint::{LockMode, TableName};

/// The whole rehearsal.
#[derive(Debug, Clone, Serialize)]
pub struct RehearsalReport {
    pub server: ServerReport,
    pub starting_point: StartingPointReport,
    pub migrations: Vec<MigrationReport>,
    /// Pending migrations not rehearsed because an earlier one failed in a way that leaves the
    /// scratch database in an unknown state.
    pub not_rehearsed: Vec<String>,
    /// Rows asked for with `--rows`.
    pub rows: Option<u64>,
    /// With `--from-database`: how the durations scaled to the real table sizes were made.
    pub estimate_method: Option<&'static str>,
    pub strict: bool,
    /// Everything, server start included.
    pub total_ms: f64,
}

impl RehearsalReport {
    /// Whether any migration failed (or the starting point could not be built).
    pub fn failed(&self) -> bool {
        self.starting_point.failure.is_some()
            || !self.not_rehearsed.is_empty()
            || self.migrations.iter().any(|m| m.verdict == Verdict::Fail)
    }

    /// Counts of migrations per verdict: passed, warned, failed.
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |verdict| {
            self.migrations
                .iter()
                .filter(|m| m.verdict == verdict)
                .count()
        };
        (
            count(Verdict::Pass),
            count(Verdict::Warn),
            count(Verdict::Fail),
        )
    }
}

/// Where the rehearsal ran.
#[derive(Debug, Clone, Serialize)]
pub struct ServerReport {
    /// `throwaway` (started from local binaries) or `scratch` (`--scratch-url`).
    pub kind: String,
    /// The server, password redacted, or the binaries' directory.
    pub location: String,
    pub version: String,
    /// The database the rehearsal created (and dropped afterwards on a scratch server).
    pub database: String,
    pub start_ms: f64,
}

/// How the schema before the first pending migration was built.
#[derive(Debug, Clone, Serialize)]
pub struct StartingPointReport {
    /// `empty` (applied migrations replayed) or `copied` (`--from-database`).
    pub kind: String,
    /// The database copied from, password redacted.
    pub source: Option<String>,
    /// Applied migrations replayed to build it.
    pub replayed: Vec<String>,
    /// Tables whose statistics were read from the real database.
    pub tables_with_statistics: usize,
    pub ms: f64,
    /// Why it could not be built; nothing was rehearsed then.
    pub failure: Option<String>,
}

/// A migration's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

/// One rehearsed migration.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationReport {
    pub version: String,
    pub name: String,
    pub file: String,
    pub transactional: bool,
    /// Tables filled with synthetic rows before `up` (`--rows`).
    pub fills: Vec<TableFill>,
    pub statements: Vec<StatementReport>,
    /// How `up` ended, when it failed.
    pub up_failure: Option<StatementFailure>,
    pub up_ms: f64,
    pub commit_ms: f64,
    pub rollback: RollbackCheck,
    pub reapply: ReapplyCheck,
    /// Differences between the `--expect` file and what the migration did.
    pub expectation_mismatches: Vec<String>,
    /// Whether the expectations file had an entry for this migration.
    pub expectations_checked: bool,
    pub policy_violations: Vec<PolicyViolation>,
    pub verdict: Verdict,
    /// Why the verdict is not `pass`.
    pub reasons: Vec<String>,
}

/// Synthetic rows put in one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableFill {
    pub table: String,
    pub rows_before: u64,
    pub rows_added: u64,
    pub ms: f64,
    /// Why fewer rows than asked went in.
    pub note: Option<String>,
}

/// How a statement was watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Observation {
    /// In its transaction: locks read from `pg_locks` after it, scans from
    /// `pg_stat_xact_user_tables`. Exact.
    Transaction,
    /// It cannot run in a transaction: locks sampled from a second connection while it ran
    /// (very short-lived locks can be missed), scans from `pg_stat_user_tables`.
    SecondConnection,
}

/// One statement of `up`, as observed.
#[derive(Debug, Clone, Serialize)]
pub struct StatementReport {
    /// 0-based index in the section.
    pub index: usize,
    pub line: u32,
    pub sql: String,
    pub observation: Observation,
    pub duration_ms: f64,
    /// Locks taken on relations that existed before the migration (new to this statement).
    pub locks: Vec<ObservedLock>,
    /// Pre-existing relations whose file node changed: rewritten.
    pub rewrites: Vec<ObservedRelation>,
    /// Pre-existing tables read in full (sequential scans).
    pub scans: Vec<ObservedRelation>,
    /// With `--from-database`: the duration scaled to the real table sizes.
    pub estimate: Option<DurationEstimate>,
    /// Where the linter's prediction and this observation disagree.
    pub lint_disagreements: Vec<String>,
}

/// A lock on a pre-existing relation.
#[derive(Debug, Clone, Serialize)]
pub struct ObservedLock {
    pub relation: String,
    /// The relation's schema and name, unquoted.
    #[serde(skip)]
    pub qualified: TableName,
    pub kind: RelationKind,
    /// The table an index belongs to.
    pub table: Option<String>,
    #[serde(serialize_with = "pg_locks_name")]
    pub mode: LockMode,
    /// The everyday commands it blocks on that relation while held.
    pub blocks: Vec<&'static str>,
    /// From the start of the statement that took it until the transaction ended.
    pub held_ms: f64,
}

/// A lock mode as `pg_locks` names it (`AccessExclusiveLock`), as rehearsal reports have always
/// written it.
fn pg_locks_name<S: serde::Serializer>(mode: &LockMode, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(mode.pg_locks_name())
}

/// A pre-existing relation a statement rewrote or scanned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedRelation {
    pub relation: String,
    /// The relation's schema and name, unquoted.
    #[serde(skip)]
    pub qualified: TableName,
    pub kind: RelationKind,
    pub table: Option<String>,
}

/// A statement that failed, with the database's error.
#[derive(Debug, Clone, Serialize)]
pub struct StatementFailure {
    pub index: usize,
    pub line: u32,
    pub sql: String,
    /// `ERROR 42P07: relation "x" already exists`.
    pub error: String,
}

/// Whether `down` restored the schema from before `up`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum RollbackCheck {
    /// The schema after `down` equals the one before `up`.
    Exact { ms: f64 },
    /// Equal but for column order (a failure with `--strict`).
    ColumnOrderOnly { ms: f64, diff: SchemaDiff },
    /// It differs: the diff's left side is the schema before `up`, the right side after `down`.
    Differs { ms: f64, diff: SchemaDiff },
    /// A `down` statement failed.
    Failed { failure: StatementFailure },
    /// The migration has no down section (a failure with `--strict`).
    NoDown,
    /// `up` failed, so there was nothing to roll back.
    NotRun,
}

/// Whether `up` ran again after `down`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum ReapplyCheck {
    /// It ran and produced the same schema as the first `up`.
    Succeeded {
        ms: f64,
    },
    /// It ran but produced another schema (left: after the first `up`, right: after this one).
    DifferentSchema {
        ms: f64,
        diff: SchemaDiff,
    },
    /// A statement failed.
    Failed {
        failure: StatementFailure,
    },
    NotRun,
}

/// A lock policy a rehearsal enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockPolicy {
    /// No pre-existing table is rewritten while ACCESS EXCLUSIVE is held on it.
    RewriteUnderAccessExclusive,
    /// No pre-existing table is read in full while ACCESS EXCLUSIVE is held on it.
    ScanUnderAccessExclusive,
}

impl LockPolicy {
    /// The kebab-case name reports show.
    pub fn as_str(self) -> &'static str {
        match self {
            LockPolicy::RewriteUnderAccessExclusive => "rewrite-under-access-exclusive",
            LockPolicy::ScanUnderAccessExclusive => "scan-under-access-exclusive",
        }
    }
}

impl std::fmt::Display for LockPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A lock policy broken by a statement.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyViolation {
    pub rule: LockPolicy,
    pub statement: usize,
    pub line: u32,
    pub table: String,
    pub message: String,
}
