//! `UPDATE` or `DELETE` without `WHERE` on a table other sessions use: every row changed in one
//! transaction. An `UPDATE` under `-- safeshift:backfill` in a `transaction:false` migration is
//! run in batches by the runner, and is not reported.

use pg_query::NodeEnum;

use super::{Rule, Violation};
use crate::context::{Execution, StatementContext};
use crate::sql::TableName;

/// The directive that makes the runner batch an `UPDATE` (`safeshift-online` runs it).
pub(crate) const BACKFILL_DIRECTIVE: &str = "backfill";

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        let (verb, relation, unfiltered) = match context.node {
            NodeEnum::UpdateStmt(update) => (
                "UPDATE",
                &update.relation,
                update.where_clause.is_none() && update.from_clause.is_empty(),
            ),
            NodeEnum::DeleteStmt(delete) => (
                "DELETE",
                &delete.relation,
                delete.where_clause.is_none() && delete.using_clause.is_empty(),
            ),
            _ => return,
        };
        let Some(relation) = relation else { return };
        let table = TableName::from_range_var(relation);
        if !unfiltered || !context.is_existing(&table) || is_batched_backfill(context) {
            return;
        }
        let held = match context.state.strongest_held() {
            Some(mode) if mode.blocks_traffic() => format!(
                ", and the {mode} lock this transaction already holds stays held until it ends"
            ),
            _ => String::new(),
        };
        let batched = match context.node {
            NodeEnum::UpdateStmt(_) => format!(
                "-- run outside the migration (or in a transaction:false one), in batches:\n\
                 {} WHERE <key> BETWEEN :start AND :start + 9999;  -- repeat, pausing between batches",
                context.sql
            ),
            _ => format!(
                "-- delete in batches outside the migration's transaction:\n\
                 DELETE FROM {t} WHERE ctid IN (SELECT ctid FROM {t} LIMIT 10000);  -- repeat until 0 rows",
                t = table.sql()
            ),
        };
        let effect = match context.node {
            NodeEnum::UpdateStmt(_) => "overwrites every row of",
            _ => "deletes every row of",
        };
        violations.push(
            Violation::new(format!(
                "{verb} without WHERE {effect} `{table}` for good, in one transaction: row locks on all of them, a burst of WAL and dead rows{held}"
            ))
            .alternative(batched),
        );
    }
}

/// An `UPDATE` the runner will run as a batched backfill: it carries the directive and runs
/// without a migration transaction (in one, the runner refuses the file before running it).
pub(crate) fn is_batched_backfill(context: &StatementContext<'_>) -> bool {
    matches!(context.node, NodeEnum::UpdateStmt(_))
        && context.statement.directive(BACKFILL_DIRECTIVE).is_some()
        && context.state.execution == (Execution::Runner { transaction: false })
        && !context.state.in_transaction
}

#[cfg(test)]
mod tests {
    use crate::metadata::ExampleMode;
    use crate::options::PgVersion;
    use crate::rules::testing::{findings_with, none, one};

    const SETUP: &str = "CREATE TABLE users (id bigint, status text);";

    #[test]
    fn flags_whole_table_updates_and_deletes() {
        let finding = one(
            "unbatched-data-change",
            SETUP,
            "UPDATE users SET status = 'active'",
        );
        assert_eq!(finding.lock.unwrap().sql_name(), "ROW EXCLUSIVE");
        one("unbatched-data-change", SETUP, "DELETE FROM users");
    }

    #[test]
    fn passes_filtered_changes_and_new_tables() {
        none(
            "unbatched-data-change",
            SETUP,
            "UPDATE users SET status = 'active' WHERE id < 1000",
        );
        none(
            "unbatched-data-change",
            "",
            "CREATE TABLE t (a int); UPDATE t SET a = 1",
        );
    }

    #[test]
    fn passes_a_backfill_the_runner_batches() {
        let backfill = "-- safeshift:backfill batch=500\nUPDATE users SET status = 'active'";
        let found = |mode| {
            findings_with(
                "unbatched-data-change",
                SETUP,
                backfill,
                mode,
                PgVersion::DEFAULT,
            )
        };
        assert!(found(ExampleMode::MigrationWithoutTransaction).is_empty());
        assert_eq!(
            found(ExampleMode::Migration).len(),
            1,
            "in a transaction the directive cannot work"
        );
    }
}
