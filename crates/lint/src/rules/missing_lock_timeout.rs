//! A lock that blocks traffic requested with no `lock_timeout` in force, in a file the runner does
//! not manage (the runner sets one for every migration).

use super::{Rule, Violation};
use crate::context::StatementContext;

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        if context.state.lock_timeout_set || context.state.blocking_statements > 0 {
            return;
        }
        let locks: Vec<_> = context
            .existing_locks()
            .into_iter()
            .filter(|l| l.mode.blocks_traffic())
            .collect();
        let Some(strongest) = locks.iter().max_by_key(|l| l.mode) else {
            return;
        };
        violations.push(
            Violation::new(format!(
                "this statement waits for {} on `{}` with no lock_timeout: while it waits behind a long query, every query on the table queues behind it",
                strongest.mode, strongest.table
            ))
            .locks(locks.clone())
            .alternative(format!("SET lock_timeout = '5s';\n{};  -- retry on timeout", context.sql)),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::metadata::ExampleMode;
    use crate::options::PgVersion;
    use crate::rules::testing::{findings_with, none};

    const SETUP: &str = "CREATE TABLE users (id bigint, email text);";

    fn script(sql: &str) -> usize {
        findings_with(
            "missing-lock-timeout",
            SETUP,
            sql,
            ExampleMode::Script,
            PgVersion::DEFAULT,
        )
        .len()
    }

    #[test]
    fn flags_the_first_blocking_lock_in_a_script_without_lock_timeout() {
        assert_eq!(
            script("ALTER TABLE users ADD COLUMN age int; ALTER TABLE users ADD COLUMN b int"),
            1
        );
    }

    #[test]
    fn passes_scripts_that_set_it_and_runner_managed_migrations() {
        assert_eq!(
            script("SET lock_timeout = '2s'; ALTER TABLE users ADD COLUMN age int"),
            0
        );
        assert_eq!(script("SELECT 1; CREATE TABLE t (a int)"), 0);
        none(
            "missing-lock-timeout",
            SETUP,
            "ALTER TABLE users ADD COLUMN age int",
        );
        assert_eq!(
            script("SET lock_timeout = 0; ALTER TABLE users ADD COLUMN age int"),
            1
        );
    }
}
