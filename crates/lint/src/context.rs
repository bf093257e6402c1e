//! What a rule sees: the statement, the schema before it, and the state of the migration so far
//! (transaction, timeouts, locks held).

use std::collections::HashMap;

use pg_query::NodeEnum;

use crate::effects::{Effects, TableLock};
use crate::lock::LockMode;
use crate::options::PgVersion;
use crate::schema::Schema;
use crate::sql::TableName;

/// How a file is executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Execution {
    /// Run by safeshift's runner: wrapped in one transaction unless `transaction:false`, with
    /// `lock_timeout` and `statement_timeout` set by the runner.
    Runner { transaction: bool },
    /// A plain SQL script (psql or another tool): no implicit transaction, no timeouts.
    Script,
}

/// A lock held in the current transaction on a table other sessions use.
#[derive(Debug, Clone)]
pub struct HeldLock {
    pub lock: TableLock,
    /// The statement that took it.
    pub statement: usize,
    /// Statements that ran after it in the same transaction.
    pub later_statements: usize,
    /// Whether one of those later statements does slow work (scan, rewrite, index build, DML).
    pub later_slow_work: bool,
    /// The transaction's statement count when the lock was taken; the two fields above are
    /// worked out from it when the transaction ends, so a statement costs the same however many
    /// locks are held.
    pub(crate) taken_at: usize,
}

/// The state of the migration before the current statement.
#[derive(Debug, Clone)]
pub struct MigrationState {
    pub execution: Execution,
    /// Whether the statement runs inside a transaction block.
    pub in_transaction: bool,
    /// The statement that opened the current transaction with `BEGIN`, if the file did.
    pub explicit_begin: Option<usize>,
    pub lock_timeout_set: bool,
    pub statement_timeout_set: bool,
    /// Whether the session's time zone is UTC (fixed zero offset) on PostgreSQL 12+, so
    /// `timestamp` ↔ `timestamptz` changes rewrite nothing: from the database's setting, or a
    /// `SET TIME ZONE` earlier in the migration.
    pub utc_conversions: bool,
    /// Locks held in the current transaction, strongest per table.
    pub held: Vec<HeldLock>,
    /// Locks that were held until a commit, kept for the end-of-migration rules.
    pub released: Vec<HeldLock>,
    /// Constraints added `NOT VALID` in the current transaction: table key and name.
    pub not_valid_in_transaction: Vec<(String, String)>,
    /// `ALTER TABLE` statements per table on tables other sessions use, with all their actions
    /// combined into one statement.
    pub alterations: Vec<Alterations>,
    /// Positions in `held` and `alterations` by table key.
    pub(crate) held_by_table: HashMap<String, usize>,
    pub(crate) alterations_by_table: HashMap<String, usize>,
    /// Statements run in the current transaction, and the count at the last one that did slow
    /// work (0: none).
    pub(crate) transaction_statements: usize,
    pub(crate) last_slow_work: usize,
    /// Statements so far that took a lock blocking traffic on a table other sessions use.
    pub blocking_statements: usize,
    /// Statements so far whose work grows with a table (scan, rewrite, index build).
    pub slow_statements: usize,
    /// Foreign keys declared in this migration: statement, table, columns, referenced table.
    pub foreign_keys: Vec<(usize, TableName, Vec<String>, TableName)>,
}

/// The `ALTER TABLE` statements of a migration on one table.
#[derive(Debug, Clone)]
pub struct Alterations {
    pub table: TableName,
    pub statements: Vec<usize>,
}

impl MigrationState {
    pub fn new(execution: Execution, utc_conversions: bool) -> MigrationState {
        let (in_transaction, timeouts) = match execution {
            Execution::Runner { transaction } => (transaction, true),
            Execution::Script => (false, false),
        };
        MigrationState {
            execution,
            in_transaction,
            explicit_begin: None,
            lock_timeout_set: timeouts,
            statement_timeout_set: timeouts,
            utc_conversions,
            held: Vec::new(),
            released: Vec::new(),
            not_valid_in_transaction: Vec::new(),
            alterations: Vec::new(),
            held_by_table: HashMap::new(),
            alterations_by_table: HashMap::new(),
            transaction_statements: 0,
            last_slow_work: 0,
            blocking_statements: 0,
            slow_statements: 0,
            foreign_keys: Vec::new(),
        }
    }

    /// Whether the runner wraps the whole section in one transaction.
    pub fn runner_transaction(&self) -> bool {
        matches!(self.execution, Execution::Runner { transaction: true })
    }

    /// The strongest lock held on a table in the current transaction.
    pub fn held_on(&self, table: &TableName) -> Option<&HeldLock> {
        self.held_by_table
            .get(table.key())
            .and_then(|&position| self.held.get(position))
    }

    /// The strongest lock held on any table.
    pub fn strongest_held(&self) -> Option<LockMode> {
        self.held.iter().map(|h| h.lock.mode).max()
    }
}

/// One statement, as a rule sees it.
pub struct StatementContext<'a> {
    /// The statement text, without its semicolon.
    pub sql: &'a str,
    pub node: &'a NodeEnum,
    /// 0-based index in the section.
    pub index: usize,
    /// The statement as split from the file (position, transaction needs).
    pub statement: &'a safeshift_source::Statement,
    /// The schema before the statement.
    pub schema: &'a Schema,
    /// The migration before the statement.
    pub state: &'a MigrationState,
    pub effects: &'a Effects,
    pub pg_version: PgVersion,
    /// The columns the statement defines (`CREATE TABLE`, `ADD COLUMN`), with their table and
    /// whether they are added to an existing definition; computed once for every rule.
    pub columns: Vec<(TableName, &'a pg_query::protobuf::ColumnDef, bool)>,
}

impl StatementContext<'_> {
    /// Whether other sessions may be using the table (it is not new in this run).
    pub fn is_existing(&self, table: &TableName) -> bool {
        self.schema.is_existing(table)
    }

    /// The statement's locks on tables other sessions use.
    pub fn existing_locks(&self) -> Vec<TableLock> {
        self.effects
            .locks
            .iter()
            .filter(|l| self.is_existing(&l.table))
            .cloned()
            .collect()
    }

    /// The statement's lock on `table`, when the table is one other sessions use.
    pub fn lock_on(&self, table: &TableName) -> Vec<TableLock> {
        match self.effects.mode_on(table) {
            Some(mode) if self.is_existing(table) => vec![TableLock {
                table: table.clone(),
                mode,
            }],
            _ => Vec::new(),
        }
    }
}

/// The end of a migration, for rules that look at the whole of it.
pub struct MigrationEnd<'a> {
    pub state: &'a MigrationState,
    /// The schema after the migration.
    pub schema: &'a Schema,
    /// The tree of every `ALTER TABLE` statement, by statement index (`None` for the other
    /// statements, whose trees are not kept, and for one that did not parse).
    pub nodes: &'a [Option<NodeEnum>],
    /// The newest applied version, when this pending migration's version is lower.
    pub out_of_order: Option<&'a str>,
    /// Whether the file changed since it was applied.
    pub changed_since_applied: bool,
}
