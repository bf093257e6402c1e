//! `DROP COLUMN` on a table other sessions use.

use pg_query::protobuf::AlterTableType;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::sql::alter_commands_of;

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        for (table, command) in alter_commands_of(context.node, AlterTableType::AtDropColumn) {
            if !context.is_existing(&table) {
                continue;
            }
            violations.push(
                Violation::new(format!(
                    "dropping `{}` loses its data, and running code that still selects or writes it fails",
                    command.name
                ))
                .alternative(format!(
                    "-- first release: stop reading and writing `{}` (e.g. Rails ignored_columns), then in a later migration:\n{};",
                    command.name, context.sql
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    #[test]
    fn flags_dropped_columns() {
        one(
            "dropping-column",
            "CREATE TABLE users (id bigint, legacy text);",
            "ALTER TABLE users DROP COLUMN legacy",
        );
    }

    #[test]
    fn passes_new_tables() {
        none(
            "dropping-column",
            "",
            "CREATE TABLE t (a int, b int); ALTER TABLE t DROP COLUMN b",
        );
    }
}
