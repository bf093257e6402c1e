//! Applying `up` statement by statement while watching what each does to the relations that
//! existed before: the locks it takes (mode, what they block, how long they are held), the
//! relations it rewrites (their file node changes) and the tables it reads in full.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Instant;

use safeshift_source::{Section, Statement, Transactionality};

use crate::apply::{failure, milliseconds, statements};
use crate::connection::{Connection, Rows, number, text};
use crate::error::RehearseError;
use crate::relations::Relations;
use crate::report::{
    Observation, ObservedLock, ObservedRelation, StatementFailure, StatementReport,
};
use crate::watcher::LockWatcher;
use safeshift_lint::LockMode;

/// `up`, traced.
pub struct TracedSection {
    pub statements: Vec<StatementReport>,
    pub failure: Option<StatementFailure>,
    pub total_ms: f64,
    pub commit_ms: f64,
}

/// What one observation round trip reads.
struct Observed {
    locks: BTreeSet<(u32, String)>,
    filenodes: HashMap<u32, u32>,
    seq_scans: HashMap<u32, i64>,
}

/// Runs `section` on `connection`, observing each statement. `before` are the relations that
/// existed before the migration.
pub fn trace_section(
    connection: &mut Connection,
    section: &Section,
    before: &Relations,
) -> Result<TracedSection, RehearseError> {
    let statements = statements(section)?;
    let oids = before.oid_array();
    let tables = before.table_oids();
    let started = Instant::now();
    let mut reports = Vec::with_capacity(statements.len());
    let mut filenodes = before.filenodes.clone();
    let mut result = TracedSection {
        statements: Vec::new(),
        failure: None,
        total_ms: 0.0,
        commit_ms: 0.0,
    };
    if section.options.transaction {
        connection
            .execute("BEGIN")
            .map_err(|error| RehearseError::database("starting a transaction", error))?;
        let mut held = BTreeSet::new();
        let mut scans = observe(connection, &oids, Scans::Transaction)?.seq_scans;
        // When each statement started, to compute how long its locks are held.
        let mut starts = Vec::with_capacity(statements.len());
        for statement in &statements {
            let start = Instant::now();
            starts.push(start);
            if let Err(error) = connection.execute(&statement.sql) {
                let _ = connection.execute("ROLLBACK");
                result.failure = Some(failure(statement, &error));
                break;
            }
            let duration_ms = milliseconds(start);
            let observed = observe(connection, &oids, Scans::Transaction)?;
            let new_locks: BTreeSet<_> = observed.locks.difference(&held).cloned().collect();
            held.extend(new_locks.iter().cloned());
            reports.push(statement_report(
                statement,
                Observation::Transaction,
                duration_ms,
                &new_locks,
                before,
                &filenodes,
                &observed,
                &scans,
                &tables,
            ));
            filenodes = observed.filenodes;
            scans = observed.seq_scans;
        }
        if result.failure.is_none() {
            let commit = Instant::now();
            connection
                .execute("COMMIT")
                .map_err(|error| RehearseError::database("committing", error))?;
            result.commit_ms = milliseconds(commit);
            let ended = Instant::now();
            for (report, start) in reports.iter_mut().zip(&starts) {
                let held_ms = ended.duration_since(*start).as_secs_f64() * 1000.0;
                for lock in &mut report.locks {
                    lock.held_ms = held_ms;
                }
            }
        }
    } else {
        let user_transactions = statements.iter().any(|s| {
            matches!(
                s.transactionality,
                Transactionality::TransactionControl { .. }
            )
        });
        let pid = backend_pid(connection)?;
        for statement in &statements {
            // A statement that may run in a transaction is traced in one of its own (which
            // changes nothing for a single statement); the others are watched from outside.
            let own_transaction =
                !user_transactions && matches!(statement.transactionality, Transactionality::Any);
            let outcome = if own_transaction {
                trace_in_own_transaction(connection, statement, before, &filenodes, &oids, &tables)?
            } else {
                trace_from_outside(
                    connection, statement, before, &filenodes, &oids, &tables, pid,
                )?
            };
            match outcome {
                Ok((report, observed_filenodes)) => {
                    reports.push(report);
                    filenodes = observed_filenodes;
                }
                Err(failed) => {
                    result.failure = Some(failed);
                    break;
                }
            }
        }
    }
    result.total_ms = milliseconds(started);
    result.statements = reports;
    Ok(result)
}

type Traced = Result<(StatementReport, HashMap<u32, u32>), StatementFailure>;

fn trace_in_own_transaction(
    connection: &mut Connection,
    statement: &Statement,
    before: &Relations,
    filenodes: &HashMap<u32, u32>,
    oids: &str,
    tables: &HashSet<u32>,
) -> Result<Traced, RehearseError> {
    connection
        .execute("BEGIN")
        .map_err(|error| RehearseError::database("starting a transaction", error))?;
    let scans = observe(connection, oids, Scans::Transaction)?.seq_scans;
    let start = Instant::now();
    if let Err(error) = connection.execute(&statement.sql) {
        let _ = connection.execute("ROLLBACK");
        return Ok(Err(failure(statement, &error)));
    }
    let duration_ms = milliseconds(start);
    let observed = observe(connection, oids, Scans::Transaction)?;
    connection
        .execute("COMMIT")
        .map_err(|error| RehearseError::database("committing", error))?;
    let held_ms = milliseconds(start);
    let mut report = statement_report(
        statement,
        Observation::Transaction,
        duration_ms,
        &observed.locks,
        before,
        filenodes,
        &observed,
        &scans,
        tables,
    );
    for lock in &mut report.locks {
        lock.held_ms = held_ms;
    }
    Ok(Ok((report, observed.filenodes)))
}

fn trace_from_outside(
    connection: &mut Connection,
    statement: &Statement,
    before: &Relations,
    filenodes: &HashMap<u32, u32>,
    oids: &str,
    tables: &HashSet<u32>,
    pid: i32,
) -> Result<Traced, RehearseError> {
    let scans = observe(connection, oids, Scans::Flushed)?.seq_scans;
    let watcher = LockWatcher::start(connection.another()?, pid);
    let start = Instant::now();
    let executed = connection.execute(&statement.sql);
    let duration_ms = milliseconds(start);
    let locks = watcher.finish();
    if let Err(error) = executed {
        return Ok(Err(failure(statement, &error)));
    }
    let observed = observe(connection, oids, Scans::Flushed)?;
    let mut report = statement_report(
        statement,
        Observation::SecondConnection,
        duration_ms,
        &locks,
        before,
        filenodes,
        &observed,
        &scans,
        tables,
    );
    for lock in &mut report.locks {
        lock.held_ms = duration_ms;
    }
    Ok(Ok((report, observed.filenodes)))
}

fn backend_pid(connection: &mut Connection) -> Result<i32, RehearseError> {
    let rows = connection.rows("backend pid", "SELECT pg_backend_pid()")?;
    Ok(rows.first().map_or(0, |row| number(row, 0) as i32))
}

/// Where sequential-scan counts come from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scans {
    /// `pg_stat_xact_user_tables`: this transaction's counts, exact and immediate.
    Transaction,
    /// `pg_stat_user_tables` after flushing this backend's pending counts (PostgreSQL 15+).
    Flushed,
}

/// One round trip: this backend's relation locks, the file nodes of `oids`, and their
/// sequential-scan counts.
fn observe(
    connection: &mut Connection,
    oids: &str,
    scans: Scans,
) -> Result<Observed, RehearseError> {
    let scan_view = match scans {
        Scans::Transaction => "pg_stat_xact_user_tables",
        Scans::Flushed => "pg_stat_user_tables",
    };
    let flush = if scans == Scans::Flushed && connection.server_version_number() >= 150000 {
        // The flush happens when the backend next goes idle, i.e. before the queries below.
        "SELECT pg_stat_force_next_flush();"
    } else {
        ""
    };
    if !flush.is_empty() {
        connection.rows("statistics flush", flush)?;
    }
    let sql = format!(
        "SELECT relation::oid::int8, mode FROM pg_locks \
           WHERE pid = pg_backend_pid() AND locktype = 'relation' AND granted AND relation IS NOT NULL; \
         SELECT oid::int8, pg_relation_filenode(oid) FROM pg_class WHERE oid = ANY({oids}); \
         SELECT relid::int8, seq_scan FROM {scan_view} WHERE relid = ANY({oids})"
    );
    let sets = connection.result_sets("locks and file nodes", &sql)?;
    let mut sets = sets.into_iter();
    let (locks, filenodes, seq_scans): (Rows, Rows, Rows) = (
        sets.next().unwrap_or_default(),
        sets.next().unwrap_or_default(),
        sets.next().unwrap_or_default(),
    );
    Ok(Observed {
        locks: locks
            .iter()
            .map(|row| (number(row, 0) as u32, text(row, 1)))
            .collect(),
        filenodes: filenodes
            .iter()
            .filter(|row| row.get(1).is_some_and(Option::is_some))
            .map(|row| (number(row, 0) as u32, number(row, 1) as u32))
            .collect(),
        seq_scans: seq_scans
            .iter()
            .map(|row| (number(row, 0) as u32, number(row, 1)))
            .collect(),
    })
}

#[allow(clippy::too_many_arguments)]
fn statement_report(
    statement: &Statement,
    observation: Observation,
    duration_ms: f64,
    new_locks: &BTreeSet<(u32, String)>,
    before: &Relations,
    filenodes_before: &HashMap<u32, u32>,
    observed: &Observed,
    scans_before: &HashMap<u32, i64>,
    tables: &HashSet<u32>,
) -> StatementReport {
    let mut locks: Vec<ObservedLock> = new_locks
        .iter()
        .filter_map(|(oid, mode)| {
            let relation = before.by_oid.get(oid)?;
            let mode = LockMode::from_pg_locks_name(mode)?;
            Some(ObservedLock {
                relation: relation.name.clone(),
                qualified: relation.qualified.clone(),
                kind: relation.kind,
                table: relation.table.clone(),
                mode,
                blocks: mode.blocked_commands(),
                held_ms: 0.0,
            })
        })
        .collect();
    locks.sort_by(|a, b| (&a.relation, a.mode).cmp(&(&b.relation, b.mode)));
    let observed_relation = |oid: &u32| {
        before.by_oid.get(oid).map(|relation| ObservedRelation {
            relation: relation.name.clone(),
            qualified: relation.qualified.clone(),
            kind: relation.kind,
            table: relation.table.clone(),
        })
    };
    let mut rewrites: Vec<ObservedRelation> = filenodes_before
        .iter()
        .filter(|(oid, filenode)| {
            observed
                .filenodes
                .get(oid)
                .is_some_and(|now| now != *filenode)
        })
        .filter_map(|(oid, _)| observed_relation(oid))
        .collect();
    rewrites.sort_by(|a, b| a.relation.cmp(&b.relation));
    let mut scans: Vec<ObservedRelation> = tables
        .iter()
        .filter(|oid| {
            let after = observed.seq_scans.get(oid).copied().unwrap_or(0);
            after > scans_before.get(oid).copied().unwrap_or(0)
        })
        .filter_map(observed_relation)
        .collect();
    scans.sort_by(|a, b| a.relation.cmp(&b.relation));
    StatementReport {
        index: statement.index,
        line: statement.line,
        sql: statement.sql.clone(),
        observation,
        duration_ms,
        locks,
        rewrites,
        scans,
        estimate: None,
        lint_disagreements: Vec::new(),
    }
}
