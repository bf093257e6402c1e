//! `ALTER SCHEMA … RENAME TO`: every qualified name in running code breaks.

use pg_query::NodeEnum;
use pg_query::protobuf::ObjectType;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::sql::quote_ident;

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        let NodeEnum::RenameStmt(rename) = context.node else {
            return;
        };
        if rename.rename_type() != ObjectType::ObjectSchema {
            return;
        }
        violations.push(
            Violation::new(format!(
                "renaming schema `{}` to `{}` breaks every running query, function and search_path that names `{}`",
                rename.subname, rename.newname, rename.subname
            ))
            .alternative(format!(
                "CREATE SCHEMA {};\n-- create or move the objects into it (ALTER TABLE … SET SCHEMA, one table at a time),\n-- switch the application over, then drop the old schema in a later release",
                quote_ident(&rename.newname)
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    #[test]
    fn flags_schema_renames() {
        one(
            "renaming-schema",
            "",
            "ALTER SCHEMA billing RENAME TO payments",
        );
    }

    #[test]
    fn passes_other_renames() {
        none(
            "renaming-schema",
            "",
            "CREATE TABLE t (a int); ALTER TABLE t RENAME TO u",
        );
    }
}
