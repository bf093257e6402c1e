//! The run lock on MySQL: `GET_LOCK` held by a connection of its own (released by the server
//! the moment that connection ends, so a killed runner never leaves it behind), or a lease row
//! renewed by a heartbeat ([`super::lease`]).
//!
//! The lock's connection is not the migration's: killing a migration's statement, or the
//! migration connection itself, leaves the lock held until the runner lets it go. Before an
//! attempt and with every recorded step, the migration connection checks that the lock is
//! still held by that connection (`IS_USED_LOCK`).

use std::time::Duration;

use mysql::Conn;
use sha2::{Digest, Sha256};

use super::lease::{self, Lease};
use super::{MysqlDriver, rows};
use crate::Dialect;
use crate::error::{DriverError, ErrorKind};
use crate::history_sql::literal;
use crate::lease::{Keeper, Wake};
use crate::lock::{LockAttempt, LockHolder, LockRequest, RunLockMode};

/// How often the lock's connection checks that it still holds the lock (which also keeps it
/// from idling into `wait_timeout`).
const KEEPALIVE: Duration = Duration::from_secs(10);

/// `safeshift.` and 40 hex digits of SHA-256 over the database and history table: one lock per
/// history, within the 64 characters `GET_LOCK` allows, and server-wide as `GET_LOCK` names are.
pub(super) fn lock_name(database: &str, table: &str) -> String {
    let digest = Sha256::digest(format!("safeshift:{database}.{table}").as_bytes());
    let hex: String = digest[..20].iter().map(|b| format!("{b:02x}")).collect();
    format!("safeshift.{hex}")
}

/// `GET_LOCK` held by a dedicated connection, watched by a keeper thread.
pub(super) struct NamedLock {
    /// The lock connection's id, which `IS_USED_LOCK` names while it holds the lock.
    pub connection_id: u32,
    keeper: Keeper,
}

impl NamedLock {
    fn start(mut conn: Conn, connection_id: u32, name: String) -> NamedLock {
        let name = literal(Dialect::Mysql, &name);
        let keeper = Keeper::start("safeshift-run-lock", KEEPALIVE, move |wake| match wake {
            Wake::Stop => {
                let _ = rows(&mut conn, &format!("SELECT RELEASE_LOCK({name})"));
                None
            }
            Wake::Check => {
                let held = rows(
                    &mut conn,
                    &format!("SELECT IS_USED_LOCK({name}) = CONNECTION_ID()"),
                );
                match held {
                    Ok(rows) if rows.first().and_then(|r| r[0].as_deref()) == Some("1") => None,
                    Ok(_) => Some("the server no longer counts the run lock as held".to_owned()),
                    Err(error) => Some(format!("the run lock's connection failed: {error}")),
                }
            }
        });
        NamedLock {
            connection_id,
            keeper,
        }
    }

    pub fn lost(&self) -> Option<String> {
        self.keeper.lost()
    }

    /// Releases the lock and closes its connection.
    fn release(self) {
        self.keeper.stop();
    }
}

impl MysqlDriver {
    /// A statement that returns `1` only while this run holds the run lock, run on the
    /// migration connection: the lock's connection still holds `GET_LOCK`, or the lease is
    /// renewed (inside a migration's transaction the renewal locks the lease row, fencing off
    /// a takeover until the transaction ends).
    pub(super) fn lock_check(&mut self) -> Result<(), DriverError> {
        let held = if let Some(lock) = &self.named_lock {
            let sql = format!(
                "SELECT IS_USED_LOCK({}) = {}",
                literal(Dialect::Mysql, &self.lock_name),
                lock.connection_id
            );
            self.first_value(&sql)?.as_deref() == Some("1")
        } else if let Some(lease) = &self.lease {
            let sql = lease.renew_sql(&self.table);
            self.run(&sql)?;
            self.conn.affected_rows() == 1
        } else {
            return Ok(());
        };
        if held {
            return Ok(());
        }
        Err(DriverError::new(
            ErrorKind::LockLost,
            match self.lease {
                Some(_) => {
                    "the run lock's lease was lost: it expired and another runner took it over"
                }
                None => "the run lock was lost: its connection is gone",
            },
        )
        .with_hint(
            "nothing more was applied; run `safeshift status` and then `safeshift up` again",
        ))
    }

    pub(super) fn try_lock(&mut self, request: &LockRequest) -> Result<LockAttempt, DriverError> {
        match request.mode {
            RunLockMode::Advisory => {
                let mut conn = self.connect_again()?;
                let row = rows(
                    &mut conn,
                    &format!(
                        "SELECT GET_LOCK({}, 0), CONNECTION_ID()",
                        literal(Dialect::Mysql, &self.lock_name)
                    ),
                )?
                .into_iter()
                .next()
                .unwrap_or_default();
                if row.first().cloned().flatten().as_deref() != Some("1") {
                    return Ok(LockAttempt::Busy(self.named_lock_holder()?));
                }
                let connection_id = row
                    .get(1)
                    .cloned()
                    .flatten()
                    .and_then(|id| id.parse().ok())
                    .unwrap_or_default();
                self.named_lock = Some(NamedLock::start(
                    conn,
                    connection_id,
                    self.lock_name.clone(),
                ));
                Ok(LockAttempt::Acquired)
            }
            RunLockMode::Lease => {
                let table = lease::lock_table(&self.table);
                if !self.table_exists(&table)? {
                    self.run(&lease::create_sql(&self.table))?;
                }
                if !lease::acquire(&mut self.conn, &self.table, request)? {
                    let holder = rows(&mut self.conn, &lease::holder_sql(&self.table))?;
                    return Ok(LockAttempt::Busy(
                        holder.first().map(|row| crate::lease::holder_from_row(row)),
                    ));
                }
                let heartbeat = self.connect_again()?;
                self.lease = Some(Lease::start(
                    heartbeat,
                    request.run_id.clone(),
                    request.lease,
                    self.table.clone(),
                ));
                Ok(LockAttempt::Acquired)
            }
        }
    }

    pub(super) fn unlock(&mut self) -> Result<(), DriverError> {
        if let Some(lock) = self.named_lock.take() {
            lock.release();
        }
        if let Some(lease) = self.lease.take() {
            let release = lease.release_sql(&self.table);
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
            RunLockMode::Advisory => self.named_lock_holder(),
            RunLockMode::Lease => {
                if !self.table_exists(&lease::lock_table(&self.table))? {
                    return Ok(None);
                }
                let holder = rows(&mut self.conn, &lease::live_holder_sql(&self.table))?;
                Ok(holder.first().map(|row| crate::lease::holder_from_row(row)))
            }
        }
    }

    /// The connection holding the `GET_LOCK`, as the processlist describes it.
    fn named_lock_holder(&mut self) -> Result<Option<LockHolder>, DriverError> {
        let sql = format!(
            "SELECT p.ID, p.USER, p.HOST FROM information_schema.PROCESSLIST p WHERE p.ID = IS_USED_LOCK({})",
            literal(Dialect::Mysql, &self.lock_name)
        );
        let found = rows(&mut self.conn, &sql)?;
        Ok(found.into_iter().next().map(|row| {
            let field = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
            LockHolder {
                description: format!(
                    "connection {} (database user {} from {})",
                    field(0),
                    field(1),
                    field(2)
                ),
                backend_pid: field(0).parse().ok(),
                since: None,
                expires_at: None,
            }
        }))
    }
}
