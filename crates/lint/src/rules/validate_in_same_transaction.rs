//! `VALIDATE CONSTRAINT` in the transaction that added the constraint, or while the transaction
//! holds a lock that blocks writes on the table: the validation scan then runs under that lock.

use pg_query::protobuf::AlterTableType;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::sql::{alter_commands_of, quote_ident};

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        if !context.state.in_transaction {
            return;
        }
        for (table, command) in
            alter_commands_of(context.node, AlterTableType::AtValidateConstraint)
        {
            let added_here = context
                .state
                .not_valid_in_transaction
                .iter()
                .any(|(key, name)| *key == table.key() && *name == command.name);
            let held = context
                .state
                .held_on(&table)
                .filter(|h| h.lock.mode.blocks_traffic());
            let Some(held) = held else { continue };
            let cause = if added_here {
                "the constraint was added NOT VALID in this same transaction"
            } else {
                "an earlier statement of this transaction locked the table"
            };
            violations.push(
                Violation::new(format!(
                    "VALIDATE CONSTRAINT `{}` scans `{table}` while this transaction still holds {} on it ({cause}), so the scan blocks writes: NOT VALID gains nothing",
                    command.name, held.lock.mode
                ))
                .locks(vec![held.lock.clone()])
                .alternative(format!(
                    "-- move this statement into a later migration (its own transaction):\nALTER TABLE {} VALIDATE CONSTRAINT {};",
                    table.sql(),
                    quote_ident(&command.name)
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    const SETUP: &str = "CREATE TABLE users (id bigint PRIMARY KEY); CREATE TABLE orders (id bigint, user_id bigint);";

    #[test]
    fn flags_validation_in_the_adding_transaction() {
        let finding = one(
            "validate-in-same-transaction",
            SETUP,
            "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT fk;",
        );
        assert_eq!(finding.line, 2);
        assert_eq!(finding.lock.unwrap().sql_name(), "SHARE ROW EXCLUSIVE");
    }

    #[test]
    fn passes_validation_in_its_own_migration() {
        none(
            "validate-in-same-transaction",
            "CREATE TABLE users (id bigint PRIMARY KEY); CREATE TABLE orders (id bigint, user_id bigint); ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;",
            "ALTER TABLE orders VALIDATE CONSTRAINT fk;",
        );
    }
}
