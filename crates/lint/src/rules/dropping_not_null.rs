//! `ALTER COLUMN … DROP NOT NULL` on a table other sessions use.

use pg_query::protobuf::AlterTableType;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::sql::alter_commands_of;

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        for (table, command) in alter_commands_of(context.node, AlterTableType::AtDropNotNull) {
            if !context.is_existing(&table) {
                continue;
            }
            violations.push(
                Violation::new(format!(
                    "`{table}.{}` may now hold NULLs; code and consumers (reports, exports, other services) that assume it never does will break",
                    command.name
                ))
                .alternative(format!(
                    "-- check every reader of {table}.{} handles NULL first, then:\n{};",
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
    fn flags_dropping_not_null() {
        one(
            "dropping-not-null",
            "CREATE TABLE users (id bigint, email text NOT NULL);",
            "ALTER TABLE users ALTER COLUMN email DROP NOT NULL",
        );
    }

    #[test]
    fn passes_new_tables() {
        none(
            "dropping-not-null",
            "",
            "CREATE TABLE t (a int NOT NULL); ALTER TABLE t ALTER COLUMN a DROP NOT NULL",
        );
    }
}
