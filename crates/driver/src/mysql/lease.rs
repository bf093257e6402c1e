//! The lease lock on MySQL: a row in `{history}_lock` with an expiry, renewed by a heartbeat on
//! a connection of its own. It needs no session state, so it works through a proxy that
//! multiplexes connections; a killed runner's lease runs out and the next runner takes it over.

use std::time::Duration;

use mysql::Conn;

use super::{quote_identifier, rows};
use crate::Dialect;
use crate::error::{DriverError, ErrorKind};
use crate::history_sql::literal;
use crate::lease::{Keeper, LOCK_NAME};
use crate::lock::LockRequest;

/// The lease table's name beside the history table.
pub(super) fn lock_table(history_table: &str) -> String {
    format!("{history_table}_lock")
}

fn quoted_lock_table(history_table: &str) -> String {
    quote_identifier(&lock_table(history_table))
}

pub(super) fn create_sql(history_table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (name varchar(64) PRIMARY KEY, run_id text NOT NULL, holder text NOT NULL, \
         acquired_at datetime(6) NOT NULL, renewed_at datetime(6) NOT NULL, expires_at datetime(6) NOT NULL) \
         ENGINE = InnoDB DEFAULT CHARSET = utf8mb4",
        quoted_lock_table(history_table)
    )
}

/// Takes the lease if it is free, expired, or already this run's; returns whether it did.
/// A running migration's transaction holds the lease row locked (see
/// `MysqlDriver::lock_check`); waiting for it a second and reporting "busy" keeps this runner
/// polling and able to say who holds the lock. Runners taking the lease at once can deadlock
/// (two `INSERT IGNORE`s of a row just deleted each hold a shared lock the other's insert
/// waits for); InnoDB rolls the victim's statement back, so it too is "busy", and asks again.
pub(super) fn acquire(
    conn: &mut Conn,
    history_table: &str,
    request: &LockRequest,
) -> Result<bool, DriverError> {
    rows(
        conn,
        "SET @safeshift_row_lock_wait = @@innodb_lock_wait_timeout; SET SESSION innodb_lock_wait_timeout = 1",
    )?;
    let acquired = match take(conn, history_table, request) {
        Err(error) if matches!(error.kind, ErrorKind::LockTimeout | ErrorKind::Deadlock) => {
            Ok(false)
        }
        other => other,
    };
    rows(
        conn,
        "SET SESSION innodb_lock_wait_timeout = @safeshift_row_lock_wait",
    )?;
    acquired
}

/// One try at the lease: the row is created on first use; two runners creating it at once are
/// told apart by the primary key.
fn take(conn: &mut Conn, history_table: &str, request: &LockRequest) -> Result<bool, DriverError> {
    let table = quoted_lock_table(history_table);
    let lease_us = request.lease.as_micros();
    let (name, run_id, holder) = (
        literal(Dialect::Mysql, LOCK_NAME),
        literal(Dialect::Mysql, &request.run_id),
        literal(Dialect::Mysql, &request.holder),
    );
    rows(
        conn,
        &format!(
            "UPDATE {table} SET run_id = {run_id}, holder = {holder}, acquired_at = UTC_TIMESTAMP(6), \
             renewed_at = UTC_TIMESTAMP(6), expires_at = UTC_TIMESTAMP(6) + INTERVAL {lease_us} MICROSECOND \
             WHERE name = {name} AND (expires_at < UTC_TIMESTAMP(6) OR run_id = {run_id})"
        ),
    )?;
    if conn.affected_rows() == 1 {
        return Ok(true);
    }
    rows(
        conn,
        &format!(
            "INSERT IGNORE INTO {table} (name, run_id, holder, acquired_at, renewed_at, expires_at) VALUES \
             ({name}, {run_id}, {holder}, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) + INTERVAL {lease_us} MICROSECOND)"
        ),
    )?;
    Ok(conn.affected_rows() == 1)
}

pub(super) fn holder_sql(history_table: &str) -> String {
    format!(
        "SELECT holder, run_id, DATE_FORMAT(acquired_at, '%Y-%m-%dT%H:%i:%s.%fZ'), \
         DATE_FORMAT(expires_at, '%Y-%m-%dT%H:%i:%s.%fZ') FROM {} WHERE name = {}",
        quoted_lock_table(history_table),
        literal(Dialect::Mysql, LOCK_NAME)
    )
}

/// The holder of a lease that has not expired.
pub(super) fn live_holder_sql(history_table: &str) -> String {
    format!(
        "{} AND expires_at > UTC_TIMESTAMP(6)",
        holder_sql(history_table)
    )
}

/// A held lease and its heartbeat.
pub(super) struct Lease {
    run_id: String,
    lease: Duration,
    heartbeat: Keeper,
}

impl Lease {
    pub fn start(
        mut connection: Conn,
        run_id: String,
        lease: Duration,
        history_table: String,
    ) -> Lease {
        let renew = renew_sql_for(&history_table, &run_id, lease);
        // A migration's transaction holds the lease row (renewed) until it ends; the heartbeat
        // waits for it rather than giving up after the server's default 50 s.
        let _ = rows(
            &mut connection,
            "SET SESSION innodb_lock_wait_timeout = 31536000",
        );
        let heartbeat = crate::lease::heartbeat(lease, move || {
            rows(&mut connection, &renew).map(|_| connection.affected_rows() == 1)
        });
        Lease {
            run_id,
            lease,
            heartbeat,
        }
    }

    /// Why the lease was lost, if it was.
    pub fn lost(&self) -> Option<String> {
        self.heartbeat.lost()
    }

    /// Renewal as an `UPDATE` that matches one row only while the lease is this run's.
    pub fn renew_sql(&self, history_table: &str) -> String {
        renew_sql_for(history_table, &self.run_id, self.lease)
    }

    pub fn release_sql(&self, history_table: &str) -> String {
        format!(
            "DELETE FROM {} WHERE name = {} AND run_id = {}",
            quoted_lock_table(history_table),
            literal(Dialect::Mysql, LOCK_NAME),
            literal(Dialect::Mysql, &self.run_id)
        )
    }

    /// Stops the heartbeat and waits for it.
    pub fn stop(self) {
        self.heartbeat.stop();
    }
}

fn renew_sql_for(history_table: &str, run_id: &str, lease: Duration) -> String {
    format!(
        "UPDATE {} SET renewed_at = UTC_TIMESTAMP(6), expires_at = UTC_TIMESTAMP(6) + INTERVAL {} MICROSECOND \
         WHERE name = {} AND run_id = {}",
        quoted_lock_table(history_table),
        lease.as_micros(),
        literal(Dialect::Mysql, LOCK_NAME),
        literal(Dialect::Mysql, run_id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::RunLockMode;
    use mysql::prelude::Queryable;

    fn request(run: &str) -> LockRequest {
        LockRequest {
            mode: RunLockMode::Lease,
            run_id: run.to_owned(),
            holder: format!("{run}@test pid 1"),
            lease: Duration::from_secs(30),
        }
    }

    /// The deadlocks InnoDB has detected since the server started.
    fn deadlocks(conn: &mut Conn) -> u64 {
        conn.query_first(
            "SELECT variable_value FROM information_schema.global_status \
             WHERE variable_name = 'INNODB_DEADLOCKS'",
        )
        .unwrap()
        .expect("MariaDB counts deadlocks")
    }

    /// Runners taking the lease at once can deadlock in InnoDB (two `INSERT IGNORE`s of the
    /// row another runner just deleted each hold a shared lock the other's insert waits for:
    /// seen in `eight_runners_at_once_with_the_lease`, about one run in ten). InnoDB rolls the
    /// victim's statement back, so nothing was taken: the runner is told the lock is busy and
    /// asks again, as after a lock wait timeout, instead of failing the run.
    ///
    /// Made deterministic here: a transaction that has written rows (so InnoDB chooses the
    /// runner as the victim) holds the lease row shared, the runner's `UPDATE` queues for it,
    /// and the transaction then asks for the row exclusively: a cycle.
    #[test]
    fn a_deadlock_while_taking_the_lease_is_busy_not_a_failure() {
        let database = safeshift_testkit::TestMysqlDatabase::new();
        let mut setup = database.conn();
        setup.query_drop(create_sql("history")).unwrap();
        assert!(acquire(&mut setup, "history", &request("first")).unwrap());
        // The first run's lease has run out; the next one may take it.
        setup
            .query_drop("UPDATE history_lock SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND")
            .unwrap();
        setup.query_drop("CREATE TABLE ballast (id int)").unwrap();
        let deadlocks_before = deadlocks(&mut setup);

        let mut other = database.conn();
        other.query_drop("BEGIN").unwrap();
        other
            .query_drop("INSERT INTO ballast SELECT seq FROM seq_1_to_1000")
            .unwrap();
        other
            .query_drop("SELECT * FROM history_lock LOCK IN SHARE MODE")
            .unwrap();
        let mut runner = database.conn();
        let taken = std::thread::scope(|scope| {
            let taking = scope.spawn(|| acquire(&mut runner, "history", &request("second")));
            // Let the runner's UPDATE queue behind the shared lock.
            std::thread::sleep(Duration::from_millis(300));
            other
                .query_drop("UPDATE history_lock SET holder = holder")
                .unwrap();
            taking.join().unwrap()
        });
        other.query_drop("COMMIT").unwrap();
        assert!(
            deadlocks(&mut setup) > deadlocks_before,
            "no deadlock happened: the test did not test anything"
        );
        match taken {
            Ok(taken) => assert!(!taken, "the deadlock's victim reports the lease taken"),
            Err(error) => panic!("a deadlock failed the runner: {error:?}"),
        }
        // Asking again takes it.
        assert!(acquire(&mut runner, "history", &request("second")).unwrap());
    }
}
