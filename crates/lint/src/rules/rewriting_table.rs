//! `ALTER TABLE … SET LOGGED | SET UNLOGGED | SET ACCESS METHOD | SET TABLESPACE`: the table is
//! copied into new files under an ACCESS EXCLUSIVE lock.

use pg_query::protobuf::AlterTableType;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::sql::alter_commands_of;

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        for (subtype, what) in [
            (AlterTableType::AtSetLogged, "SET LOGGED"),
            (AlterTableType::AtSetUnLogged, "SET UNLOGGED"),
            (AlterTableType::AtSetAccessMethod, "SET ACCESS METHOD"),
            (AlterTableType::AtSetTableSpace, "SET TABLESPACE"),
        ] {
            for (table, _) in alter_commands_of(context.node, subtype) {
                if !context.is_existing(&table) {
                    continue;
                }
                violations.push(
                    Violation::new(format!(
                        "{what} copies `{table}` and its indexes into new files under an ACCESS EXCLUSIVE lock: no reads or writes until it is done"
                    ))
                    .alternative(format!(
                        "-- build a new table with the wanted property, copy rows in batches with a dual-write trigger,\n\
                         -- then swap the names in one short transaction (or use pg_repack):\n\
                         CREATE TABLE {t}_new (LIKE {t} INCLUDING ALL);",
                        t = table.sql()
                    )),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    #[test]
    fn flags_rewriting_alterations() {
        let finding = one(
            "rewriting-table",
            "CREATE TABLE events (id bigint);",
            "ALTER TABLE events SET UNLOGGED",
        );
        assert!(finding.rewrite);
    }

    #[test]
    fn passes_new_tables_and_storage_parameters() {
        none(
            "rewriting-table",
            "",
            "CREATE TABLE t (a int); ALTER TABLE t SET LOGGED",
        );
        none(
            "rewriting-table",
            "CREATE TABLE events (id bigint);",
            "ALTER TABLE events SET (fillfactor = 90)",
        );
    }
}
