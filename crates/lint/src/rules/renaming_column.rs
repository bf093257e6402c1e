//! `RENAME COLUMN` on a table other sessions use: running code still uses the old name.

use pg_query::NodeEnum;
use pg_query::protobuf::ObjectType;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::sql::{TableName, quote_ident};

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        let NodeEnum::RenameStmt(rename) = context.node else {
            return;
        };
        if rename.rename_type() != ObjectType::ObjectColumn
            || rename.relation_type() != ObjectType::ObjectTable
        {
            return;
        }
        let Some(relation) = &rename.relation else {
            return;
        };
        let table = TableName::from_range_var(relation);
        if !context.is_existing(&table) {
            return;
        }
        let t = table.sql();
        let (old, new) = (quote_ident(&rename.subname), quote_ident(&rename.newname));
        let column_type = context
            .schema
            .table(&table)
            .and_then(|known| known.column(&rename.subname))
            .and_then(|c| c.column_type.as_ref())
            .map_or_else(|| "<type>".to_owned(), |t| t.sql());
        violations.push(
            Violation::new(format!(
                "renaming `{}` to `{}` breaks every running query that still says `{}` until the new code is deployed everywhere",
                rename.subname, rename.newname, rename.subname
            ))
            .alternative(format!(
                "ALTER TABLE {t} ADD COLUMN {new} {column_type};\n\
                 -- write both columns from the application (or a trigger), backfill {new} from {old} in batches,\n\
                 -- switch reads to {new}, and in a later release:\nALTER TABLE {t} DROP COLUMN {old};"
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    #[test]
    fn flags_renames_on_existing_tables() {
        let finding = one(
            "renaming-column",
            "CREATE TABLE users (id bigint, email text);",
            "ALTER TABLE users RENAME COLUMN email TO email_address",
        );
        assert!(
            finding
                .safe_alternative
                .unwrap()
                .starts_with("ALTER TABLE users ADD COLUMN email_address text;")
        );
    }

    #[test]
    fn passes_new_tables() {
        none(
            "renaming-column",
            "",
            "CREATE TABLE t (a int); ALTER TABLE t RENAME COLUMN a TO b",
        );
    }
}
