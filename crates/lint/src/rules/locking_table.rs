//! `LOCK TABLE`: an explicit lock, held until the transaction ends; outside a transaction block
//! PostgreSQL refuses it.

use pg_query::NodeEnum;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::risk::Risk;
use crate::sql::{TableName, range_vars};

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        let NodeEnum::LockStmt(lock) = context.node else {
            return;
        };
        let tables: Vec<TableName> = range_vars(&lock.relations)
            .map(TableName::from_range_var)
            .collect();
        let Some(mode) = tables.iter().find_map(|t| context.effects.mode_on(t)) else {
            return;
        };
        let names: Vec<String> = tables.iter().map(|t| format!("`{t}`")).collect();
        let names = names.join(", ");
        if !context.state.in_transaction {
            violations.push(
                Violation::new(format!(
                    "LOCK TABLE {names} fails here: PostgreSQL accepts it only inside a transaction block, and this statement runs outside one"
                ))
                .risk(Risk::High)
                .alternative("-- remove it: each statement takes the lock it needs"),
            );
            return;
        }
        let locks = context.existing_locks();
        if locks.is_empty() || !mode.blocks_traffic() {
            return;
        }
        violations.push(
            Violation::new(format!(
                "LOCK TABLE {names} takes {mode} and holds it until the transaction ends: {} on {names} wait for every later statement of the migration",
                mode.blocks().describe()
            ))
            .locks(locks)
            .alternative(format!(
                "-- remove it and let each statement take the lock it needs; if writes must stop, SHARE blocks writes but not reads:\nLOCK TABLE {} IN SHARE MODE;",
                tables.iter().map(TableName::sql).collect::<Vec<_>>().join(", ")
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::metadata::ExampleMode;
    use crate::options::PgVersion;
    use crate::risk::Risk;
    use crate::rules::testing::{findings_with, none, one};

    const SETUP: &str = "CREATE TABLE accounts (id bigint PRIMARY KEY);";

    #[test]
    fn flags_an_explicit_lock_held_to_the_end() {
        let finding = one("locking-table", SETUP, "LOCK TABLE accounts");
        assert_eq!(finding.risk, Risk::Medium);
        assert_eq!(finding.lock.unwrap().sql_name(), "ACCESS EXCLUSIVE");
        let share = one("locking-table", SETUP, "LOCK TABLE accounts IN SHARE MODE");
        assert_eq!(share.lock.unwrap().sql_name(), "SHARE");
    }

    #[test]
    fn passes_weak_modes_and_new_tables() {
        none("locking-table", SETUP, "LOCK TABLE accounts IN ROW EXCLUSIVE MODE");
        none(
            "locking-table",
            "",
            "CREATE TABLE scratch (id bigint); LOCK TABLE scratch",
        );
    }

    #[test]
    fn outside_a_transaction_it_fails() {
        let found = findings_with(
            "locking-table",
            SETUP,
            "LOCK TABLE accounts",
            ExampleMode::Script,
            PgVersion::DEFAULT,
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].risk, Risk::High);
        assert!(found[0].message.contains("only inside a transaction block"));
    }
}
