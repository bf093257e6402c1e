//! Slow work under a lock (scan, rewrite, index build) with no `statement_timeout` in force, in a
//! file the runner does not manage.

use super::{Rule, Violation};
use crate::context::StatementContext;

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        if context.state.statement_timeout_set || context.state.slow_statements > 0 {
            return;
        }
        let slow = context
            .effects
            .scans
            .iter()
            .chain(&context.effects.rewrites)
            .find(|t| context.is_existing(t));
        let Some(table) = slow else { return };
        violations.push(
            Violation::new(format!(
                "this statement reads or rewrites all of `{table}` with no statement_timeout: if it runs long, nothing stops it while it holds its lock"
            ))
            .alternative(format!("SET statement_timeout = '15min';  -- an upper bound you accept for this step\n{};", context.sql)),
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
            "missing-statement-timeout",
            SETUP,
            sql,
            ExampleMode::Script,
            PgVersion::DEFAULT,
        )
        .len()
    }

    #[test]
    fn flags_slow_work_without_statement_timeout() {
        assert_eq!(script("CREATE INDEX CONCURRENTLY i ON users (email)"), 1);
    }

    #[test]
    fn passes_with_a_timeout_quick_statements_and_runner_migrations() {
        assert_eq!(
            script("SET statement_timeout = '10min'; CREATE INDEX CONCURRENTLY i ON users (email)"),
            0
        );
        assert_eq!(script("ALTER TABLE users ADD COLUMN age int"), 0);
        none(
            "missing-statement-timeout",
            SETUP,
            "ALTER TABLE users ALTER COLUMN email SET NOT NULL",
        );
    }
}
