//! `BEGIN` inside a transaction, or `COMMIT`/`ROLLBACK` inside the runner's transaction.

use pg_query::NodeEnum;
use pg_query::protobuf::TransactionStmtKind;

use super::{Rule, Violation};
use crate::context::StatementContext;

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        let NodeEnum::TransactionStmt(transaction) = context.node else {
            return;
        };
        let state = context.state;
        let message = match transaction.kind() {
            TransactionStmtKind::TransStmtBegin | TransactionStmtKind::TransStmtStart
                if state.in_transaction =>
            {
                if state.explicit_begin.is_none() && state.runner_transaction() {
                    "BEGIN inside the transaction safeshift opens for this migration is ignored with a warning; the migration's statements are not isolated as the file suggests"
                } else {
                    "BEGIN inside an open transaction is ignored with a warning: the statements are not isolated as the file suggests"
                }
            }
            TransactionStmtKind::TransStmtCommit | TransactionStmtKind::TransStmtRollback
                if state.explicit_begin.is_none() && state.runner_transaction() =>
            {
                "COMMIT/ROLLBACK here ends the transaction safeshift opened for this migration: the statements after it run without one, and the history row is no longer written atomically with them"
            }
            _ => return,
        };
        violations.push(Violation::new(message).locks(Vec::new()).alternative(
            "-- remove the transaction control: safeshift runs the migration in one transaction;\n\
             -- or mark the migration `-- migrate:up transaction:false` and manage transactions yourself",
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::metadata::ExampleMode;
    use crate::options::PgVersion;
    use crate::rules::testing::findings_with;

    #[test]
    fn flags_begin_and_commit_inside_the_runner_transaction() {
        let wrapped = findings_with(
            "nested-transaction",
            "",
            "BEGIN; CREATE TABLE t (a int); COMMIT;",
            ExampleMode::Migration,
            PgVersion::DEFAULT,
        );
        assert_eq!(
            wrapped.len(),
            2,
            "BEGIN is ignored and COMMIT ends the runner's transaction"
        );
        assert!(wrapped[1].message.starts_with("COMMIT/ROLLBACK"));
        let found = findings_with(
            "nested-transaction",
            "",
            "BEGIN; BEGIN; COMMIT;",
            ExampleMode::Script,
            PgVersion::DEFAULT,
        );
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn passes_transaction_control_in_scripts() {
        let found = findings_with(
            "nested-transaction",
            "",
            "BEGIN; CREATE TABLE t (a int); COMMIT;",
            ExampleMode::Script,
            PgVersion::DEFAULT,
        );
        assert!(found.is_empty());
        let found = findings_with(
            "nested-transaction",
            "",
            "BEGIN; CREATE TABLE t (a int); COMMIT;",
            ExampleMode::MigrationWithoutTransaction,
            PgVersion::DEFAULT,
        );
        assert!(found.is_empty());
    }
}
