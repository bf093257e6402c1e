//! A picture of the server at one moment: sessions and what they run, who blocks whom, lock
//! waits, index builds in progress, and the largest tables with their dead-tuple ratios.

use postgres::Client;
use serde::Serialize;

use safeshift_driver::DriverError;

use crate::query::{millis, number, pids, rows, text};

/// A client session of the database.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Session {
    pub pid: i64,
    pub user: String,
    pub application: String,
    /// `active`, `idle in transaction`, …
    pub state: String,
    /// `Lock:relation`, `IO:DataFileRead`, … when it waits.
    pub wait: Option<String>,
    /// How long the current (or last) query has run.
    pub query_ms: Option<u64>,
    /// How long its transaction has been open.
    pub transaction_ms: Option<u64>,
    /// The query, cut to 500 characters.
    pub query: String,
    /// Sessions it waits for (`pg_blocking_pids`), when it waits on a lock.
    pub blocked_by: Vec<i64>,
}

/// Connection slots in use.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Connections {
    pub used: u64,
    pub max: u64,
}

impl Connections {
    pub fn ratio(&self) -> f64 {
        if self.max == 0 {
            0.0
        } else {
            self.used as f64 / self.max as f64
        }
    }
}

/// A lock some session waits for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LockWait {
    pub pid: i64,
    pub lock_type: String,
    pub mode: String,
    /// The relation, when the lock is on one.
    pub relation: Option<String>,
    /// How long it has waited (PostgreSQL 14 and newer).
    pub waited_ms: Option<u64>,
}

/// A `CREATE INDEX` (or `REINDEX`) in progress.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexBuild {
    pub pid: i64,
    pub table: String,
    pub index: String,
    pub phase: String,
    pub blocks_done: u64,
    pub blocks_total: u64,
    pub tuples_done: u64,
    pub tuples_total: u64,
}

/// A table's size and how much of it is dead tuples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableActivity {
    pub table: String,
    pub total_bytes: u64,
    pub live_tuples: u64,
    pub dead_tuples: u64,
}

impl TableActivity {
    pub fn dead_ratio(&self) -> f64 {
        let all = self.live_tuples + self.dead_tuples;
        if all == 0 {
            0.0
        } else {
            self.dead_tuples as f64 / all as f64
        }
    }
}

/// Everything `safeshift activity` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Activity {
    /// `PostgreSQL`, `MySQL` or `MariaDB`.
    pub engine: String,
    pub database: String,
    pub server_version: String,
    pub connections: Connections,
    /// Sessions of this database other than ours that are not idle.
    pub sessions: Vec<Session>,
    pub lock_waits: Vec<LockWait>,
    pub index_builds: Vec<IndexBuild>,
    /// The largest tables, biggest first.
    pub tables: Vec<TableActivity>,
}

/// A table's size with its indexes and TOAST, from the catalog's page counts (as of the last
/// VACUUM or ANALYZE) for `pg_class c`. Not `pg_total_relation_size`: that opens the relation
/// with a lock, and behind a migration queued for an exclusive lock it would wait too — exactly
/// when someone looks at the activity to see why things are stuck.
pub(crate) const RELATION_BYTES: &str = "((c.relpages::bigint \
     + coalesce((SELECT t.relpages FROM pg_class t WHERE t.oid = c.reltoastrelid), 0) \
     + coalesce((SELECT sum(ic.relpages) FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
                 WHERE i.indrelid = c.oid), 0)) * current_setting('block_size')::bigint)";

/// The columns `session_from` reads, in order; `{where}` restricts the sessions.
pub(crate) const SESSION_COLUMNS: &str = "a.pid, coalesce(a.usename::text, ''), coalesce(a.application_name, ''), \
     coalesce(a.state, ''), \
     CASE WHEN a.wait_event_type IS NOT NULL THEN a.wait_event_type || ':' || a.wait_event END, \
     extract(epoch FROM clock_timestamp() - a.query_start) * 1000, \
     extract(epoch FROM clock_timestamp() - a.xact_start) * 1000, \
     left(a.query, 500), \
     CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) END";

pub(crate) fn session_from(row: &crate::query::Row) -> Session {
    Session {
        pid: number(row, 0).unwrap_or(0.0) as i64,
        user: text(row, 1),
        application: text(row, 2),
        state: text(row, 3),
        wait: row.get(4).cloned().flatten(),
        query_ms: millis(row, 5),
        transaction_ms: millis(row, 6),
        query: text(row, 7),
        blocked_by: pids(row, 8),
    }
}

/// Sessions matching a condition on `pg_stat_activity a`.
pub(crate) fn sessions_where(
    client: &mut Client,
    condition: &str,
) -> Result<Vec<Session>, DriverError> {
    Ok(rows(
        client,
        &format!(
            "SELECT {SESSION_COLUMNS} FROM pg_stat_activity a WHERE {condition} ORDER BY a.xact_start NULLS LAST, a.pid"
        ),
    )?
    .iter()
    .map(session_from)
    .collect())
}

pub(crate) fn connections(client: &mut Client) -> Result<Connections, DriverError> {
    let row = rows(
        client,
        "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'), \
         current_setting('max_connections')::int",
    )?
    .into_iter()
    .next()
    .unwrap_or_default();
    Ok(Connections {
        used: number(&row, 0).unwrap_or(0.0) as u64,
        max: number(&row, 1).unwrap_or(0.0) as u64,
    })
}

impl Activity {
    /// Reads the picture through `client` (which does not count itself among the sessions).
    pub fn sample(client: &mut Client, tables: usize) -> Result<Activity, DriverError> {
        let header = rows(
            client,
            "SELECT current_database(), current_setting('server_version'), current_setting('server_version_num')::int",
        )?
        .into_iter()
        .next()
        .unwrap_or_default();
        let version_number = number(&header, 2).unwrap_or(0.0) as u32;
        let sessions = sessions_where(
            client,
            "a.pid <> pg_backend_pid() AND a.datname = current_database() \
             AND a.backend_type = 'client backend' AND a.state IS DISTINCT FROM 'idle'",
        )?;
        let waited = if version_number >= 140000 {
            "extract(epoch FROM clock_timestamp() - l.waitstart) * 1000"
        } else {
            "NULL"
        };
        let lock_waits = rows(
            client,
            &format!(
                "SELECT l.pid, l.locktype, l.mode, CASE WHEN l.relation IS NOT NULL THEN l.relation::regclass::text END, {waited} \
                 FROM pg_locks l WHERE NOT l.granted ORDER BY 5 DESC NULLS LAST"
            ),
        )?
        .iter()
        .map(|row| LockWait {
            pid: number(row, 0).unwrap_or(0.0) as i64,
            lock_type: text(row, 1),
            mode: text(row, 2),
            relation: row.get(3).cloned().flatten(),
            waited_ms: millis(row, 4),
        })
        .collect();
        let index_builds = if version_number >= 120000 {
            rows(
                client,
                "SELECT p.pid, p.relid::regclass::text, CASE WHEN p.index_relid <> 0 THEN p.index_relid::regclass::text ELSE '' END, \
                 p.phase, p.blocks_done, p.blocks_total, p.tuples_done, p.tuples_total \
                 FROM pg_stat_progress_create_index p",
            )?
            .iter()
            .map(|row| IndexBuild {
                pid: number(row, 0).unwrap_or(0.0) as i64,
                table: text(row, 1),
                index: text(row, 2),
                phase: text(row, 3),
                blocks_done: number(row, 4).unwrap_or(0.0) as u64,
                blocks_total: number(row, 5).unwrap_or(0.0) as u64,
                tuples_done: number(row, 6).unwrap_or(0.0) as u64,
                tuples_total: number(row, 7).unwrap_or(0.0) as u64,
            })
            .collect()
        } else {
            Vec::new()
        };
        let tables = rows(
            client,
            &format!(
                "SELECT format('%I.%I', s.schemaname, s.relname), {RELATION_BYTES}, s.n_live_tup, s.n_dead_tup \
                 FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid ORDER BY 2 DESC, 1 LIMIT {tables}"
            ),
        )?
        .iter()
        .map(|row| TableActivity {
            table: text(row, 0),
            total_bytes: number(row, 1).unwrap_or(0.0) as u64,
            live_tuples: number(row, 2).unwrap_or(0.0) as u64,
            dead_tuples: number(row, 3).unwrap_or(0.0) as u64,
        })
        .collect();
        Ok(Activity {
            engine: "PostgreSQL".to_owned(),
            database: text(&header, 0),
            server_version: text(&header, 1),
            connections: connections(client)?,
            sessions,
            lock_waits,
            index_builds,
            tables,
        })
    }
}
