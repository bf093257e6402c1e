//! `ALTER TABLE … RENAME TO` on a table other sessions use.

use pg_query::NodeEnum;
use pg_query::protobuf::ObjectType;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::sql::TableName;

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        let NodeEnum::RenameStmt(rename) = context.node else {
            return;
        };
        if rename.rename_type() != ObjectType::ObjectTable {
            return;
        }
        let Some(relation) = &rename.relation else {
            return;
        };
        let table = TableName::from_range_var(relation);
        if !context.is_existing(&table) {
            return;
        }
        let new = TableName::new(table.schema.as_deref(), &rename.newname);
        violations.push(
            Violation::new(format!(
                "renaming `{table}` to `{}` breaks every running query that still names `{table}`",
                rename.newname
            ))
            .alternative(format!(
                "{};\n-- keep the old name working for code that is still running:\nCREATE VIEW {} AS SELECT * FROM {};\n-- drop the view once every instance uses the new name",
                context.sql,
                table.sql(),
                new.sql()
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    #[test]
    fn flags_renames_of_existing_tables() {
        let finding = one(
            "renaming-table",
            "CREATE TABLE users (id bigint);",
            "ALTER TABLE users RENAME TO customers",
        );
        assert!(
            finding
                .safe_alternative
                .unwrap()
                .contains("CREATE VIEW users AS SELECT * FROM customers;")
        );
    }

    #[test]
    fn passes_new_tables() {
        none(
            "renaming-table",
            "",
            "CREATE TABLE t (a int); ALTER TABLE t RENAME TO u",
        );
    }
}
