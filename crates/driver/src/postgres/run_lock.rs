//! The run lock on PostgreSQL: a session advisory lock (with a check that this very server
//! connection holds it), or a lease row renewed by a heartbeat.

use postgres::SimpleQueryMessage;
use sha2::{Digest, Sha256};

use super::lease::{self, Lease};
use super::pooler;
use super::{PostgresDriver, column_value};
use crate::Dialect;
use crate::error::{DriverError, ErrorKind};
use crate::history::HistoryLocation;
use crate::history_sql::literal;
use crate::lock::{LockAttempt, LockHolder, LockRequest, RunLockMode};

/// The session setting that names the run holding the advisory lock on a session.
pub(super) const OWNER_SETTING: &str = "safeshift.run_lock_owner";

/// The text of the error a deferred prelude raises when this connection does not hold the run
/// lock (see [`PostgresDriver::raising_fence_expression`]).
const FENCE_MARKER: &str = "safeshift: the run lock is not held by this server connection";

impl PostgresDriver {
    pub(super) fn advisory_holder(&mut self) -> Result<Option<LockHolder>, DriverError> {
        let key = self.lock_key as u64;
        let rows = self.rows(&format!(
            "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''), \
             coalesce(host(a.client_addr), 'local socket'), \
             to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') \
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND l.classid = {} AND l.objid = {} LIMIT 1",
            key >> 32,
            key & 0xffff_ffff
        ))?;
        Ok(rows.into_iter().next().map(|row| {
            let field = |i: usize| row[i].clone().unwrap_or_default();
            LockHolder {
                description: format!(
                    "{} (database user {} from {}, server pid {})",
                    if field(1).is_empty() {
                        "an unnamed client".to_owned()
                    } else {
                        field(1)
                    },
                    field(2),
                    field(3),
                    field(0)
                ),
                backend_pid: field(0).parse().ok(),
                since: row[4]
                    .as_deref()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.to_utc()),
                expires_at: None,
            }
        }))
    }

    /// A statement that returns a `run_lock_held` row only while this connection holds the run
    /// lock, run at the start of every attempt (inside a migration's transaction). For a lease it
    /// renews the lease, and taking the lease row's lock fences off a takeover until the
    /// migration's transaction ends. For the advisory lock it checks that this very backend holds
    /// it: behind a transaction-pooling proxy a statement can land on another server connection,
    /// where the session lock means nothing.
    pub(super) fn fence_sql(&self) -> Option<String> {
        if let Some(lease) = &self.lease {
            return Some(lease.renew_sql(&self.quoted_schema, &self.location));
        }
        self.advisory_fence_expression()
            .map(|held| format!("SELECT {held}"))
    }

    /// `… AS run_lock_held`, true while this session holds the advisory lock for this run. The
    /// owner setting is set on the session that took the lock and cleared when it is released,
    /// so it stands for the lock without a scan of pg_locks.
    pub(super) fn advisory_fence_expression(&self) -> Option<String> {
        self.advisory_owner.as_ref().map(|run_id| {
            format!(
                "coalesce(current_setting('{OWNER_SETTING}', true) = {}, false) AS run_lock_held",
                literal(Dialect::Postgres, run_id)
            )
        })
    }

    /// The advisory lock check as an expression that fails the statement, with an error naming
    /// [`FENCE_MARKER`], when this session does not hold the lock: the cast of the marker to
    /// boolean. The condition is not constant, so the planner does not evaluate the cast early.
    pub(super) fn raising_fence_expression(&self) -> Option<String> {
        self.advisory_owner.as_ref().map(|run_id| {
            format!(
                "(CASE WHEN coalesce(current_setting('{OWNER_SETTING}', true) = {}, false) THEN 'true' ELSE {} END)::boolean AS run_lock_held",
                literal(Dialect::Postgres, run_id),
                literal(Dialect::Postgres, FENCE_MARKER),
            )
        })
    }

    pub(super) fn check_fence(
        &mut self,
        messages: &[SimpleQueryMessage],
    ) -> Result<(), DriverError> {
        let held = column_value(messages, "run_lock_held").is_some_and(|v| v == "t" || v == "1");
        match (held, self.lease.is_some(), self.advisory_owner.is_some()) {
            (true, _, _) | (false, false, false) => Ok(()),
            (false, true, _) => Err(DriverError::new(
                ErrorKind::LockLost,
                "the run lock's lease was lost: it expired and another runner took it over",
            )
            .with_hint(
                "nothing more was applied; run `safeshift status` and then `safeshift up` again",
            )),
            (false, false, true) => Err(advisory_lock_not_held()),
        }
    }

    pub(super) fn try_lock(&mut self, request: &LockRequest) -> Result<LockAttempt, DriverError> {
        match request.mode {
            RunLockMode::Advisory => {
                if !self.pooler_checked {
                    self.pooler_checked = true;
                    if let Some(evidence) = pooler::transaction_pooling(self)? {
                        return Err(pooler::refusal(&evidence));
                    }
                }
                // One statement takes the lock and tags its session with the owner, so both
                // land on the same server connection even through a pooler the probe missed.
                // The lock is re-entrant: on a server connection shared through a transaction
                // pooler, another run's lock is "acquired" again; the owner tag gives it away,
                // and that second hold is given back at once.
                let row = self.first_row(&format!(
                    "SELECT got, previous, CASE WHEN got AND previous NOT IN ('', {run}) THEN pg_advisory_unlock({key}) \
                     WHEN got THEN set_config('{OWNER_SETTING}', {run}, false) IS NOT NULL END \
                     FROM (SELECT pg_try_advisory_lock({key}) AS got, \
                     coalesce(current_setting('{OWNER_SETTING}', true), '') AS previous OFFSET 0) AS attempt",
                    key = self.lock_key,
                    run = literal(Dialect::Postgres, &request.run_id),
                ))?;
                if row[0].as_deref() != Some("t") {
                    return Ok(LockAttempt::Busy(self.advisory_holder()?));
                }
                let owner = row[1].clone().unwrap_or_default();
                if !owner.is_empty() && owner != request.run_id {
                    return Err(DriverError::new(
                        ErrorKind::LockLost,
                        format!(
                            "this server connection already holds the run lock for another run ({owner}): \
                             the connection goes through a transaction-pooling proxy (such as PgBouncer), \
                             where a session advisory lock does not protect anything"
                        ),
                    )
                    .with_hint(
                        "nothing was applied; use `--lock-mode lease` (or `[lock] mode = \"lease\"`) through a \
                         transaction pooler, or connect to the server directly",
                    ));
                }
                self.advisory_owner = Some(request.run_id.clone());
                Ok(LockAttempt::Acquired)
            }
            RunLockMode::Lease => {
                let exists = self.first_row(&format!(
                    "SELECT to_regclass({}) IS NOT NULL",
                    lease::lock_table_literal(&self.quoted_schema, &self.location)
                ))?;
                if exists[0].as_deref() != Some("t") {
                    let create_schema = self.create_schema_sql()?;
                    self.run(&lease::bootstrap_sql(
                        self.lock_key,
                        &create_schema,
                        &self.quoted_schema,
                        &self.location,
                    ))?;
                }
                // A running migration holds the lease row locked (see `fence_sql`); waiting for
                // it briefly and reporting "busy" keeps this runner polling and able to say who
                // holds the lock.
                let acquire = format!(
                    "BEGIN; SET LOCAL lock_timeout = 1000; {}; COMMIT",
                    lease::acquire_sql(&self.quoted_schema, &self.location, request)
                );
                let rows = match self.rows(&acquire) {
                    Ok(rows) => rows,
                    Err(error) if error.kind == ErrorKind::LockTimeout => {
                        self.run("ROLLBACK")?;
                        Vec::new()
                    }
                    Err(error) => {
                        let _ = self.run("ROLLBACK");
                        return Err(error);
                    }
                };
                if rows.is_empty() {
                    let rows =
                        self.rows(&lease::holder_sql(&self.quoted_schema, &self.location))?;
                    return Ok(LockAttempt::Busy(
                        rows.first().map(|row| crate::lease::holder_from_row(row)),
                    ));
                }
                let heartbeat = self.connect_again()?;
                self.lease = Some(Lease::start(
                    heartbeat,
                    request.run_id.clone(),
                    request.lease,
                    self.quoted_schema.clone(),
                    self.location.clone(),
                ));
                Ok(LockAttempt::Acquired)
            }
        }
    }

    pub(super) fn unlock(&mut self) -> Result<(), DriverError> {
        // An attempt abandoned before its first statement opened no transaction.
        self.pending_prelude = None;
        self.lock_checked_up_front = false;
        if let Some(run_id) = self.advisory_owner.take() {
            pooler::release_advisory_lock(self, &run_id)?;
        }
        if let Some(lease) = self.lease.take() {
            let release = lease.release_sql(&self.quoted_schema, &self.location);
            lease.stop();
            self.run(&release)?;
        }
        Ok(())
    }

    pub(super) fn lock_holder(
        &mut self,
        mode: RunLockMode,
    ) -> Result<Option<LockHolder>, DriverError> {
        match mode {
            RunLockMode::Advisory => self.advisory_holder(),
            RunLockMode::Lease => {
                let table = lease::lock_table_literal(&self.quoted_schema, &self.location);
                let exists = self.first_row(&format!("SELECT to_regclass({table}) IS NOT NULL"))?;
                if exists[0].as_deref() != Some("t") {
                    return Ok(None);
                }
                let rows =
                    self.rows(&lease::live_holder_sql(&self.quoted_schema, &self.location))?;
                Ok(rows.first().map(|row| crate::lease::holder_from_row(row)))
            }
        }
    }
}

/// The advisory lock key: the first 8 bytes of SHA-256 over the history table's name, so two
/// projects with different history tables in one database do not block each other.
pub(super) fn advisory_key(location: &HistoryLocation) -> i64 {
    let digest =
        Sha256::digest(format!("safeshift:{}.{}", location.schema, location.table).as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// The advisory lock is not held by the server connection a statement ran on.
fn advisory_lock_not_held() -> DriverError {
    DriverError::new(
        ErrorKind::LockLost,
        // The advice is in the message too: the runner reports a lost lock by its message.
        "the run lock is not held by the server connection this statement ran on: the \
         connection goes through a transaction-pooling proxy (such as PgBouncer), where a \
         session advisory lock does not protect anything; use `--lock-mode lease` there",
    )
    .with_hint(
        "nothing was applied; use `--lock-mode lease` (or `[lock] mode = \"lease\"`) through a \
         transaction pooler, or connect to the server directly",
    )
}

/// The error of a raising run lock check ([`FENCE_MARKER`]) as the lock loss it stands for;
/// any other error as it is.
pub(super) fn fence_error(error: DriverError) -> DriverError {
    if error.message.contains(FENCE_MARKER) {
        advisory_lock_not_held()
    } else {
        error
    }
}
