//! The lint gate before `up`: the migrations to apply may not carry a finding above the accepted
//! risk unless it is acknowledged. Only PostgreSQL migrations are linted.

use safeshift_driver::{Driver, Engine};
use safeshift_lint::{PgVersion, Risk};
use safeshift_runner::{Migrator, RunError, StatusReport};
use safeshift_source::Version;

use crate::error::DeployError;
use crate::evaluation::applied_migrations;

/// Refuses the run when a migration up to `target` carries a finding above `accepted` that is
/// not acknowledged. `status` is where the database stands now.
pub fn check(
    migrator: &Migrator,
    db: &dyn Driver,
    status: &StatusReport,
    accepted: Risk,
    target: Option<&Version>,
) -> Result<(), DeployError> {
    if db.engine() != Engine::Postgres {
        return Ok(());
    }
    let set = migrator.migrations();
    let applied = applied_migrations(status);
    // Nothing pending (the usual deploy-time `up`): nothing to gate, and no reason to parse
    // every file for the history's context.
    if set
        .migrations
        .iter()
        .all(|m| applied.versions.contains_key(m.version.as_str()))
    {
        return Ok(());
    }
    let pg_version = PgVersion::from_server_version_num(db.server().version_number);
    let Some(blocked) = safeshift_lint::gate_pending(set, &applied, pg_version, target, accepted)?
    else {
        return Ok(());
    };
    let count = blocked.count;
    Err(DeployError::Blocked {
        report: Box::new(blocked.report),
        error: RunError::Blocked {
            version: blocked.version,
            message: format!(
                "{count} finding{} above {accepted} risk in pending migrations; nothing was applied",
                if count == 1 { "" } else { "s" }
            ),
            help: "make the migration safe (see the safe alternative above), acknowledge the finding with \
                   `-- safeshift:allow <rule-id> <reason>` on the statement, or run `safeshift up --allow-risk high`"
                .to_owned(),
        },
    })
}
