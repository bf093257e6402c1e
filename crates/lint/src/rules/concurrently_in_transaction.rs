//! A statement that cannot run in a transaction block (`CREATE INDEX CONCURRENTLY`, `VACUUM`, …)
//! in a migration the runner wraps in one, or after the file's own `BEGIN`.

use safeshift_source::Transactionality;

use super::{Rule, Violation};
use crate::context::{Execution, StatementContext};

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        let Transactionality::OutsideTransaction { what, reason } =
            &context.statement.transactionality
        else {
            return;
        };
        if !context.state.in_transaction {
            return;
        }
        let (why, fix) = match (context.state.explicit_begin, context.state.execution) {
            (None, Execution::Runner { .. }) => (
                "safeshift runs this migration in one transaction",
                format!(
                    "-- move it into a migration of its own whose first line is\n-- migrate:up transaction:false\n{};",
                    context.sql
                ),
            ),
            _ => (
                "the file's BEGIN opened a transaction",
                format!(
                    "-- run it after COMMIT, outside the transaction block\n{};",
                    context.sql
                ),
            ),
        };
        violations.push(
            Violation::new(format!(
                "`{what}` {reason}, and {why}: the migration fails at this statement"
            ))
            .locks(Vec::new())
            .alternative(fix),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::metadata::ExampleMode;
    use crate::options::PgVersion;
    use crate::rules::testing::{findings_with, one};

    const SETUP: &str = "CREATE TABLE orders (id bigint, user_id bigint);";

    #[test]
    fn flags_concurrently_in_a_wrapped_migration_or_after_begin() {
        let finding = one(
            "concurrently-in-transaction",
            SETUP,
            "CREATE INDEX CONCURRENTLY i ON orders (user_id)",
        );
        assert!(finding.message.contains("CREATE INDEX CONCURRENTLY"));
        assert!(
            finding
                .safe_alternative
                .unwrap()
                .contains("transaction:false")
        );
        let found = findings_with(
            "concurrently-in-transaction",
            SETUP,
            "BEGIN; VACUUM orders; COMMIT;",
            ExampleMode::Script,
            PgVersion::DEFAULT,
        );
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn passes_outside_a_transaction() {
        for mode in [
            ExampleMode::MigrationWithoutTransaction,
            ExampleMode::Script,
        ] {
            let found = findings_with(
                "concurrently-in-transaction",
                SETUP,
                "CREATE INDEX CONCURRENTLY i ON orders (user_id)",
                mode,
                PgVersion::DEFAULT,
            );
            assert!(found.is_empty(), "{mode:?}");
        }
    }
}
