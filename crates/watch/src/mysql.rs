//! What a MySQL or MariaDB server is doing, for `safeshift activity` and the watchdog: the
//! processlist (sessions, what they run, how long), InnoDB's transactions and row-lock waits
//! (`information_schema.INNODB_TRX`, `INNODB_LOCK_WAITS` on MariaDB, `performance_schema.
//! data_lock_waits` on MySQL), and the metadata locks that DDL waits for
//! (`information_schema.METADATA_LOCK_INFO` when MariaDB's plugin is loaded,
//! `performance_schema.metadata_locks` on MySQL).
//!
//! Without a metadata lock table the server cannot say who holds the lock a DDL statement
//! waits for; the sessions with a transaction open since before the wait began are named
//! instead, as the likely holders (a metadata lock is held until its transaction ends).

use safeshift_driver::{Driver, DriverError, MysqlDriver, MysqlFlavor};

use crate::activity::{Activity, Connections, IndexBuild, LockWait, Session, TableActivity};
use crate::query::{Row, millis, number, text};
use crate::sampler::{OwnSession, Sampler};

/// Where this server tells who holds a metadata lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetadataLocks {
    /// MariaDB's `METADATA_LOCK_INFO` plugin.
    MariadbPlugin,
    /// MySQL's `performance_schema.metadata_locks`.
    PerformanceSchema,
    /// Nowhere.
    Unavailable,
}

/// A watchdog or `activity` connection to MySQL or MariaDB, with what its server offers.
pub struct MysqlSampler {
    driver: MysqlDriver,
    metadata_locks: MetadataLocks,
}

const MDL_WAIT: &str = "Waiting for table metadata lock";
/// How a session waiting for an InnoDB row lock is described.
const ROW_LOCK_WAIT: &str = "Waiting for a row lock";

impl MysqlSampler {
    /// Wraps a connection of its own (not the migration's) and finds out what it can read.
    pub fn new(mut driver: MysqlDriver) -> Result<MysqlSampler, DriverError> {
        let metadata_locks = match driver.flavor() {
            MysqlFlavor::Mariadb => {
                let active = driver.query_rows(
                    "SELECT COUNT(*) FROM information_schema.PLUGINS \
                     WHERE PLUGIN_NAME = 'METADATA_LOCK_INFO' AND PLUGIN_STATUS = 'ACTIVE'",
                )?;
                if first(&active) == "0" {
                    MetadataLocks::Unavailable
                } else {
                    MetadataLocks::MariadbPlugin
                }
            }
            MysqlFlavor::Mysql => {
                let enabled = driver.query_rows("SELECT @@performance_schema")?;
                if first(&enabled) == "1" {
                    MetadataLocks::PerformanceSchema
                } else {
                    MetadataLocks::Unavailable
                }
            }
        };
        Ok(MysqlSampler {
            driver,
            metadata_locks,
        })
    }

    /// Whether the server names the holders of metadata locks (otherwise blockers are guessed
    /// from open transactions).
    pub fn knows_metadata_lock_holders(&self) -> bool {
        self.metadata_locks != MetadataLocks::Unavailable
    }

    fn time_ms(&self) -> &'static str {
        match self.driver.flavor() {
            MysqlFlavor::Mariadb => "p.TIME_MS",
            MysqlFlavor::Mysql => "p.TIME * 1000",
        }
    }

    /// Processlist sessions matching `condition` on `p` (and `t`, their InnoDB transaction).
    fn sessions_where(&mut self, condition: &str) -> Result<Vec<Session>, DriverError> {
        let rows = self.driver.query_rows(&format!(
            "SELECT p.ID, p.USER, p.HOST, p.COMMAND, COALESCE(p.STATE, ''), {time}, \
             TIMESTAMPDIFF(MICROSECOND, t.trx_started, NOW(6)) / 1000, LEFT(COALESCE(p.INFO, ''), 500), \
             t.trx_state \
             FROM information_schema.PROCESSLIST p \
             LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID \
             WHERE {condition} ORDER BY t.trx_started IS NULL, t.trx_started, p.ID",
            time = self.time_ms()
        ))?;
        Ok(rows.iter().map(session_from).collect())
    }

    /// The connections holding a lock that `id` waits for: the holders of the row locks it
    /// waits for, and of metadata locks on the tables it holds or wants one on.
    fn blocker_ids(&mut self, id: i64) -> Result<Vec<i64>, DriverError> {
        let mut ids = ids(&self.driver.query_rows(&match self.driver.flavor() {
            MysqlFlavor::Mariadb => format!(
                "SELECT b.trx_mysql_thread_id FROM information_schema.INNODB_LOCK_WAITS w \
                 JOIN information_schema.INNODB_TRX r ON r.trx_id = w.requesting_trx_id \
                 JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id \
                 WHERE r.trx_mysql_thread_id = {id}"
            ),
            MysqlFlavor::Mysql => format!(
                "SELECT b.trx_mysql_thread_id FROM performance_schema.data_lock_waits w \
                 JOIN information_schema.INNODB_TRX r ON r.trx_id = w.REQUESTING_ENGINE_TRANSACTION_ID \
                 JOIN information_schema.INNODB_TRX b ON b.trx_id = w.BLOCKING_ENGINE_TRANSACTION_ID \
                 WHERE r.trx_mysql_thread_id = {id}"
            ),
        })?);
        let waiting_for_metadata = self.driver.query_rows(&format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {id} AND STATE = '{MDL_WAIT}'"
        ))?;
        if first(&waiting_for_metadata) != "0" {
            ids.extend(self.metadata_lock_holders_for(id)?);
        }
        ids.sort_unstable();
        ids.dedup();
        ids.retain(|other| *other != id);
        Ok(ids)
    }

    /// Other connections holding a metadata lock on a table `id` holds or waits for one on;
    /// without a metadata lock table, the connections with a transaction older than `id`'s
    /// current statement.
    fn metadata_lock_holders_for(&mut self, id: i64) -> Result<Vec<i64>, DriverError> {
        let sql = match self.metadata_locks {
            MetadataLocks::MariadbPlugin => format!(
                "SELECT DISTINCT m.THREAD_ID FROM information_schema.METADATA_LOCK_INFO m \
                 JOIN information_schema.METADATA_LOCK_INFO mine ON mine.TABLE_SCHEMA = m.TABLE_SCHEMA \
                 AND mine.TABLE_NAME = m.TABLE_NAME WHERE mine.THREAD_ID = {id} AND m.THREAD_ID <> {id} \
                 AND m.TABLE_NAME <> ''"
            ),
            MetadataLocks::PerformanceSchema => format!(
                "SELECT DISTINCT ht.PROCESSLIST_ID FROM performance_schema.metadata_locks h \
                 JOIN performance_schema.threads ht ON ht.THREAD_ID = h.OWNER_THREAD_ID \
                 JOIN performance_schema.metadata_locks w ON w.OBJECT_SCHEMA = h.OBJECT_SCHEMA AND w.OBJECT_NAME = h.OBJECT_NAME \
                 JOIN performance_schema.threads wt ON wt.THREAD_ID = w.OWNER_THREAD_ID \
                 WHERE wt.PROCESSLIST_ID = {id} AND w.LOCK_STATUS = 'PENDING' AND h.LOCK_STATUS = 'GRANTED' \
                 AND h.OBJECT_TYPE = 'TABLE'"
            ),
            MetadataLocks::Unavailable => format!(
                "SELECT t.trx_mysql_thread_id FROM information_schema.INNODB_TRX t \
                 JOIN information_schema.PROCESSLIST p ON p.ID = {id} \
                 WHERE t.trx_mysql_thread_id <> {id} \
                 AND t.trx_started <= NOW() - INTERVAL {time} / 1000 SECOND",
                time = self.time_ms()
            ),
        };
        Ok(ids(&self.driver.query_rows(&sql)?))
    }
}

impl Sampler for MysqlSampler {
    fn own_session(&mut self, id: i64) -> Result<OwnSession, DriverError> {
        let query_id = match self.driver.flavor() {
            MysqlFlavor::Mariadb => "p.QUERY_ID",
            MysqlFlavor::Mysql => "MD5(COALESCE(p.INFO, ''))",
        };
        let rows = self.driver.query_rows(&format!(
            "SELECT p.COMMAND, COALESCE(p.STATE, ''), {time}, t.trx_state, \
             COALESCE(DATE_FORMAT(t.trx_wait_started, '%Y-%m-%d %H:%i:%s'), {query_id}), \
             CASE WHEN t.trx_state = 'LOCK WAIT' THEN TIMESTAMPDIFF(MICROSECOND, t.trx_wait_started, NOW(6)) / 1000 \
                  ELSE {time} END \
             FROM information_schema.PROCESSLIST p \
             LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID WHERE p.ID = {id}",
            time = self.time_ms()
        ))?;
        let Some(own) = rows.into_iter().next() else {
            return Ok(OwnSession::default());
        };
        let state = text(&own, 1);
        let row_lock = text(&own, 3) == "LOCK WAIT";
        let metadata_lock = state == MDL_WAIT;
        let waiting = row_lock || metadata_lock;
        Ok(OwnSession {
            active: text(&own, 0) == "Query",
            waiting,
            wait_started: waiting.then(|| text(&own, 4)),
            waited_ms: if waiting {
                millis(&own, 5).unwrap_or(0)
            } else {
                0
            },
            running_ms: millis(&own, 2).unwrap_or(0),
            lock: if metadata_lock {
                Some("metadata lock (DDL waits for the transactions that used the table)".into())
            } else if row_lock {
                Some("row lock".into())
            } else {
                None
            },
        })
    }

    fn blockers(&mut self, id: i64) -> Result<Vec<Session>, DriverError> {
        let ids = self.blocker_ids(id)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.sessions_where(&format!("p.ID IN ({})", join(&ids)))
    }

    fn queued_behind(&mut self, id: i64) -> Result<Vec<Session>, DriverError> {
        // Sessions waiting for a metadata lock on the same tables, or for a row lock held by
        // the migration's transaction.
        let waiting = self.sessions_where(&format!(
            "p.ID <> {id} AND p.DB = (SELECT DB FROM information_schema.PROCESSLIST WHERE ID = {id}) \
             AND (p.STATE = '{MDL_WAIT}' OR t.trx_state = 'LOCK WAIT')"
        ))?;
        let mut queued = Vec::new();
        for mut session in waiting {
            let blockers = self.blocker_ids(session.pid)?;
            if blockers.contains(&id) || !self.knows_metadata_lock_holders() {
                session.blocked_by = blockers;
                queued.push(session);
            }
        }
        Ok(queued)
    }

    fn connections(&mut self) -> Result<Connections, DriverError> {
        let row = self
            .driver
            .query_rows(
                "SELECT (SELECT COUNT(*) FROM information_schema.PROCESSLIST), @@max_connections",
            )?
            .into_iter()
            .next()
            .unwrap_or_default();
        Ok(Connections {
            used: number(&row, 0).unwrap_or(0.0) as u64,
            max: number(&row, 1).unwrap_or(0.0) as u64,
        })
    }
}

/// The picture `safeshift activity` shows, read through `sampler` (which does not count itself).
pub fn activity(sampler: &mut MysqlSampler, tables: usize) -> Result<Activity, DriverError> {
    let mut sessions = sampler.sessions_where(
        "p.ID <> CONNECTION_ID() AND p.DB = DATABASE() AND (p.COMMAND <> 'Sleep' OR t.trx_id IS NOT NULL)",
    )?;
    let mut lock_waits = Vec::new();
    for session in &mut sessions {
        let waiting_for = match session.wait.as_deref() {
            Some(MDL_WAIT) => Some(("metadata", "exclusive (DDL)")),
            Some(ROW_LOCK_WAIT) => Some(("row", "row lock")),
            _ => None,
        };
        if let Some((lock_type, mode)) = waiting_for {
            session.blocked_by = sampler.blocker_ids(session.pid)?;
            lock_waits.push(LockWait {
                pid: session.pid,
                lock_type: lock_type.to_owned(),
                mode: mode.to_owned(),
                relation: None,
                waited_ms: session.query_ms,
            });
        }
    }
    // MariaDB reports the progress of ALTER TABLE (and index builds) per stage.
    let index_builds = match sampler.driver.flavor() {
        MysqlFlavor::Mariadb => sampler
            .driver
            .query_rows(
                "SELECT ID, LEFT(INFO, 200), STAGE, MAX_STAGE, PROGRESS FROM information_schema.PROCESSLIST \
                 WHERE DB = DATABASE() AND ID <> CONNECTION_ID() AND MAX_STAGE > 0",
            )?
            .iter()
            .map(|row| IndexBuild {
                pid: number(row, 0).unwrap_or(0.0) as i64,
                table: String::new(),
                index: text(row, 1),
                phase: format!("stage {} of {}", text(row, 2), text(row, 3)),
                // PROGRESS is a percentage with three decimals.
                blocks_done: (number(row, 4).unwrap_or(0.0) * 1000.0) as u64,
                blocks_total: 100_000,
                tuples_done: 0,
                tuples_total: 0,
            })
            .collect(),
        MysqlFlavor::Mysql => Vec::new(),
    };
    let table_rows = sampler.driver.query_rows(&format!(
        "SELECT TABLE_NAME, COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0), COALESCE(TABLE_ROWS, 0) \
         FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' \
         ORDER BY 2 DESC, 1 LIMIT {tables}"
    ))?;
    let server = sampler.driver.server().clone();
    Ok(Activity {
        engine: sampler.driver.flavor().name().to_owned(),
        database: server.database,
        server_version: server.version,
        connections: sampler.connections()?,
        sessions,
        lock_waits,
        index_builds,
        tables: table_rows
            .iter()
            .map(|row| TableActivity {
                table: text(row, 0),
                total_bytes: number(row, 1).unwrap_or(0.0) as u64,
                live_tuples: number(row, 2).unwrap_or(0.0) as u64,
                // InnoDB purges old row versions itself; it reports no dead rows.
                dead_tuples: 0,
            })
            .collect(),
    })
}

/// A processlist row as a session: the state is what it does (`active`, `idle`, `idle in
/// transaction`), the wait what it waits for (a metadata lock, as the processlist says, or a
/// row lock, as InnoDB says).
fn session_from(row: &Row) -> Session {
    let in_transaction = row.get(6).cloned().flatten().is_some();
    let state = text(row, 4);
    Session {
        pid: number(row, 0).unwrap_or(0.0) as i64,
        user: text(row, 1),
        application: text(row, 2),
        state: match (text(row, 3).as_str(), in_transaction) {
            ("Sleep", true) => "idle in transaction",
            ("Sleep", false) => "idle",
            _ => "active",
        }
        .to_owned(),
        wait: if text(row, 8) == "LOCK WAIT" {
            Some(ROW_LOCK_WAIT.to_owned())
        } else {
            state.starts_with("Waiting for").then_some(state)
        },
        query_ms: millis(row, 5),
        transaction_ms: millis(row, 6),
        query: text(row, 7),
        blocked_by: Vec::new(),
    }
}

fn first(rows: &[Row]) -> String {
    rows.first().map(|row| text(row, 0)).unwrap_or_default()
}

fn ids(rows: &[Row]) -> Vec<i64> {
    rows.iter()
        .filter_map(|row| number(row, 0).map(|n| n as i64))
        .collect()
}

fn join(ids: &[i64]) -> String {
    ids.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
