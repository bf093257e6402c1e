//! `CREATE TRIGGER` on a table other sessions use: SHARE ROW EXCLUSIVE blocks writes while it waits.

use pg_query::NodeEnum;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::sql::TableName;

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        let NodeEnum::CreateTrigStmt(trigger) = context.node else {
            return;
        };
        let Some(relation) = &trigger.relation else {
            return;
        };
        let table = TableName::from_range_var(relation);
        if !context.is_existing(&table) {
            return;
        }
        let advice = if context.state.lock_timeout_set {
            "-- the runner's lock_timeout bounds the wait; keep this migration short so the lock is released quickly".to_owned()
        } else {
            format!(
                "SET lock_timeout = '2s';\n{};  -- retry on timeout",
                context.sql
            )
        };
        violations.push(
            Violation::new(format!(
                "CREATE TRIGGER takes SHARE ROW EXCLUSIVE on `{table}`: writes wait while it queues behind running queries, and from then on every write runs the trigger"
            ))
            .alternative(advice),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    const TRIGGER: &str = "CREATE TRIGGER t BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()";

    #[test]
    fn flags_triggers_on_existing_tables() {
        let finding = one(
            "creating-trigger-on-existing-table",
            "CREATE TABLE orders (id bigint);",
            TRIGGER,
        );
        assert_eq!(finding.lock.unwrap().sql_name(), "SHARE ROW EXCLUSIVE");
    }

    #[test]
    fn passes_new_tables() {
        none(
            "creating-trigger-on-existing-table",
            "",
            &format!("CREATE TABLE orders (id bigint); {TRIGGER}"),
        );
    }
}
