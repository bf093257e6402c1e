//! Pre-flight checks before `up` (and `safeshift preflight`): each passes, warns or fails, with
//! the numbers behind it.

use std::time::{Duration, Instant};

use serde::Serialize;

use std::path::Path;

use safeshift_driver::{Driver, Engine, MysqlDriver, PostgresDriver};
use safeshift_lint::{Risk, RiskPolicy};
use safeshift_runner::{EntryState, Migrator};
use safeshift_source::Version;
use safeshift_watch::probes;

use crate::database::Database;
use crate::describe::{millis, session_line};
use crate::error::DeployError;
use crate::plan::{self, Plan};

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Warn,
    Fail,
}

/// One check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub outcome: Outcome,
    pub summary: String,
    pub details: Vec<String>,
}

impl Check {
    fn new(name: &'static str, outcome: Outcome, summary: impl Into<String>) -> Check {
        Check {
            name,
            outcome,
            summary: summary.into(),
            details: Vec::new(),
        }
    }

    fn with_details(mut self, details: Vec<String>) -> Check {
        self.details = details;
        self
    }
}

/// Every check, and the plan they looked at.
#[derive(Debug, Clone, Serialize)]
pub struct Preflight {
    pub database: String,
    pub checks: Vec<Check>,
}

impl Preflight {
    pub fn outcome(&self) -> Outcome {
        self.checks
            .iter()
            .map(|c| c.outcome)
            .max()
            .unwrap_or(Outcome::Pass)
    }
}

/// Transactions open longer than this are reported: they hold locks and old snapshots.
const LONG_TRANSACTION: Duration = Duration::from_secs(60);
/// Replication lag worth a warning.
const LAG_WARNING: Duration = Duration::from_secs(10);
const LAG_BYTES_WARNING: u64 = 256 << 20;

/// What the checks look at, besides the database.
pub struct PreflightInputs<'a> {
    pub target: Option<&'a Version>,
    /// The highest risk applied without an acknowledgement.
    pub accepted: Risk,
    /// How table sizes grade the plan's risks (`[lint]`).
    pub risk_policy: RiskPolicy,
    /// Where a backup would go (its free space is checked).
    pub backup_dir: &'a Path,
    /// The plan, when the caller has built it already; otherwise the checks build it.
    pub plan: Option<&'a Plan>,
}

/// Runs the checks on a connection of their own. Only a failure to connect for the server
/// checks is an error; everything else, a failed first connection included, is a verdict.
pub fn run(
    database: &Database,
    migrator: &Migrator,
    inputs: &PreflightInputs<'_>,
) -> Result<Preflight, DeployError> {
    let mut checks = Vec::new();
    let started = Instant::now();
    let mut db = match database.connect(false) {
        Ok(db) => db,
        Err(error) => {
            checks.push(Check::new("connection", Outcome::Fail, error.to_string()));
            return Ok(Preflight {
                database: database.url.redacted().to_owned(),
                checks,
            });
        }
    };
    checks.push(Check::new(
        "connection",
        Outcome::Pass,
        format!(
            "connected to {} in {}",
            db.redacted_url(),
            millis(started.elapsed().as_millis() as u64)
        ),
    ));
    let server = db.server().clone();
    let engine = db.engine();
    let version_outcome = if engine == Engine::Postgres && server.version_number < 120000 {
        Outcome::Warn
    } else {
        Outcome::Pass
    };
    checks.push(Check::new(
        "server",
        version_outcome,
        format!(
            "{} {} (database {}, user {})",
            match engine {
                Engine::Postgres => "PostgreSQL",
                Engine::Sqlite => "SQLite",
                Engine::Mysql =>
                    MysqlDriver::of(db.as_ref()).map_or("MySQL", |d| d.flavor().name()),
            },
            server.version,
            server.database,
            server.user
        ),
    ));

    checks.push(history_check(migrator, db.as_mut())?);
    let built;
    let plan = match inputs.plan {
        Some(plan) => plan,
        None => {
            built = plan::build(
                migrator,
                db.as_mut(),
                database,
                inputs.risk_policy,
                inputs.target,
            )?;
            &built
        }
    };
    checks.push(pending_check(plan, inputs.accepted));
    checks.push(space_check(database, inputs.backup_dir));
    if engine == Engine::Postgres {
        let mut probe = database.connect_postgres()?;
        server_checks(&mut checks, &mut probe, plan)?;
    }
    Ok(Preflight {
        database: db.redacted_url().to_owned(),
        checks,
    })
}

/// Whether a backup fits in the backup directory, with room to spare.
fn space_check(database: &Database, backup_dir: &Path) -> Check {
    match safeshift_backup::space_check(&database.for_backup(), backup_dir) {
        Ok(space) => {
            let numbers = format!(
                "database {}, {} free in {}",
                safeshift_backup::human_bytes(space.database_bytes),
                safeshift_backup::human_bytes(space.free_bytes),
                backup_dir.display()
            );
            if !space.fits() {
                Check::new(
                    "disk space",
                    Outcome::Fail,
                    format!("a backup does not fit: {numbers}"),
                )
            } else if space.free_bytes / 2 < space.database_bytes {
                Check::new(
                    "disk space",
                    Outcome::Warn,
                    format!("less than twice the database is free for backups: {numbers}"),
                )
            } else {
                Check::new("disk space", Outcome::Pass, numbers)
            }
        }
        Err(error) => Check::new(
            "disk space",
            Outcome::Warn,
            format!("could not measure: {error}"),
        ),
    }
}

fn history_check(migrator: &Migrator, db: &mut dyn Driver) -> Result<Check, DeployError> {
    let status = migrator.status(db)?;
    let mut problems = Vec::new();
    let mut applied = 0;
    for entry in &status.entries {
        match entry.state {
            EntryState::Applied => applied += 1,
            EntryState::Running => problems.push(format!(
                "{} has an attempt marked running (in progress now, or its runner died)",
                entry.version
            )),
            EntryState::Partial | EntryState::PartiallyRolledBack => problems.push(format!(
                "{} stopped part-way ({})",
                entry.version,
                entry.state.as_str()
            )),
            EntryState::Failed => {
                problems.push(format!("{}: its last attempt failed", entry.version))
            }
            EntryState::Changed => problems.push(format!(
                "{}: the file changed since it was applied (checksum mismatch)",
                entry.version
            )),
            EntryState::FileMissing => {
                problems.push(format!("{} is applied but its file is gone", entry.version))
            }
            EntryState::Pending if entry.out_of_order => problems.push(format!(
                "{} is pending but older than the newest applied version",
                entry.version
            )),
            EntryState::Invalid => problems.push(format!(
                "{}: the file has a problem ({})",
                entry.version,
                entry.problems.join("; ")
            )),
            EntryState::Pending | EntryState::Reapply => {}
        }
    }
    Ok(if problems.is_empty() {
        Check::new(
            "history",
            Outcome::Pass,
            format!("{applied} applied, no failed or running attempts, checksums intact"),
        )
    } else {
        Check::new(
            "history",
            Outcome::Fail,
            format!("{} problem(s) in the history", problems.len()),
        )
        .with_details(problems)
    })
}

fn pending_check(plan: &Plan, accepted: Risk) -> Check {
    if plan.migrations.is_empty() {
        return Check::new("pending", Outcome::Pass, "nothing to apply");
    }
    let details: Vec<String> = plan
        .migrations
        .iter()
        .map(|m| {
            format!(
                "{} {}: risk {}, ~{}{}",
                m.version,
                m.name,
                m.risk.map_or("none", Risk::as_str),
                millis(m.estimated.as_millis() as u64),
                if m.downtime { ", blocks traffic" } else { "" }
            )
        })
        .collect();
    let blocking: Vec<String> = plan
        .migrations
        .iter()
        .flat_map(|m| {
            m.findings
                .iter()
                .filter(|f| f.acknowledged.is_none() && f.risk > accepted)
                .map(move |f| format!("{} line {}: {} ({})", m.version, f.line, f.rule, f.risk))
        })
        .collect();
    let summary = format!(
        "{} migration(s), highest risk {}, estimated {}",
        plan.migrations.len(),
        plan.risk.map_or("none", Risk::as_str),
        millis(plan.estimated.as_millis() as u64)
    );
    if !blocking.is_empty() {
        let mut all = details;
        all.extend(
            blocking
                .iter()
                .map(|b| format!("above {accepted} risk and not acknowledged: {b}")),
        );
        Check::new("pending", Outcome::Fail, summary).with_details(all)
    } else if plan.risk >= Some(Risk::Medium) || plan.downtime {
        Check::new("pending", Outcome::Warn, summary).with_details(details)
    } else {
        Check::new("pending", Outcome::Pass, summary).with_details(details)
    }
}

/// The checks that ask the server: privileges, sessions in the way, replication.
fn server_checks(
    checks: &mut Vec<Check>,
    probe: &mut PostgresDriver,
    plan: &Plan,
) -> Result<(), DeployError> {
    // Quoted as SQL, so that the server resolves each name as the migrations wrote it.
    let tables: Vec<String> = plan.tables().iter().map(|t| t.sql()).collect();
    let client = probe.client();
    checks.push(privileges_check(client, &tables)?);
    checks.push(blocking_sessions_check(client, &tables)?);
    checks.push(replication_check(client)?);
    Ok(())
}

/// Whether the role can run DDL and owns the tables the migrations alter.
fn privileges_check(
    client: &mut postgres::Client,
    tables: &[String],
) -> Result<Check, DeployError> {
    let privilege = probes::ddl_privilege(client, tables)?;
    Ok(if privilege.in_recovery {
        Check::new(
            "privileges",
            Outcome::Fail,
            "the server is a read-only standby",
        )
    } else if !privilege.can_create {
        Check::new(
            "privileges",
            Outcome::Fail,
            format!(
                "role {} cannot create a table: {}",
                privilege.role,
                privilege.create_error.unwrap_or_default()
            ),
        )
    } else if !privilege.not_owned.is_empty() {
        Check::new(
            "privileges",
            Outcome::Fail,
            format!(
                "role {} does not own {} table(s) the migrations alter (ALTER needs ownership)",
                privilege.role,
                privilege.not_owned.len()
            ),
        )
        .with_details(privilege.not_owned)
    } else {
        Check::new(
            "privileges",
            Outcome::Pass,
            format!(
                "role {}{} can run DDL{}",
                privilege.role,
                if privilege.superuser {
                    " (superuser)"
                } else {
                    ""
                },
                if tables.is_empty() {
                    String::new()
                } else {
                    format!(
                        " and owns the {} table(s) the migrations lock",
                        tables.len()
                    )
                }
            ),
        )
    })
}

/// Sessions holding locks on the tables, and long transactions: a migration would wait for
/// them, and everything would queue behind it.
fn blocking_sessions_check(
    client: &mut postgres::Client,
    tables: &[String],
) -> Result<Check, DeployError> {
    let holders = probes::lock_holders(client, tables)?;
    let long = probes::long_transactions(client, LONG_TRANSACTION.as_millis() as u64)?;
    let mut details: Vec<String> = holders
        .iter()
        .map(|h| format!("{} holds {}", session_line(&h.session), h.locks.join(", ")))
        .collect();
    details.extend(
        long.iter()
            .filter(|s| !holders.iter().any(|h| h.session.pid == s.pid))
            .map(|s| format!("long transaction: {}", session_line(s))),
    );
    Ok(if details.is_empty() {
        Check::new(
            "blocking sessions",
            Outcome::Pass,
            format!(
                "no session holds locks on the {} table(s) the migrations lock; no transaction open over {} s",
                tables.len(),
                LONG_TRANSACTION.as_secs()
            ),
        )
    } else {
        Check::new(
            "blocking sessions",
            Outcome::Warn,
            format!(
                "{} session(s) hold locks on tables the migrations lock, {} transaction(s) open over {} s: the migration would wait for them, and everything would queue behind it",
                holders.len(),
                long.len(),
                LONG_TRANSACTION.as_secs()
            ),
        )
        .with_details(details)
    })
}

/// Streaming replicas, and how far behind they replay.
fn replication_check(client: &mut postgres::Client) -> Result<Check, DeployError> {
    let replicas = probes::replicas(client)?;
    Ok(if replicas.is_empty() {
        Check::new("replication", Outcome::Pass, "no streaming replicas")
    } else {
        let lagging: Vec<String> = replicas
            .iter()
            .filter(|r| {
                r.replay_lag_ms
                    .is_some_and(|ms| ms >= LAG_WARNING.as_millis() as u64)
                    || r.replay_lag_bytes.is_some_and(|b| b >= LAG_BYTES_WARNING)
            })
            .map(|r| r.name.clone())
            .collect();
        let details = replicas
            .iter()
            .map(|r| {
                format!(
                    "{} ({}, {}): replay lag {} / {}",
                    r.name,
                    r.address,
                    r.state,
                    r.replay_lag_ms.map_or("n/a".into(), millis),
                    r.replay_lag_bytes
                        .map_or("n/a".into(), safeshift_backup::human_bytes)
                )
            })
            .collect();
        Check::new(
            "replication",
            if lagging.is_empty() {
                Outcome::Pass
            } else {
                Outcome::Warn
            },
            format!("{} replica(s), {} lagging", replicas.len(), lagging.len()),
        )
        .with_details(details)
    })
}
