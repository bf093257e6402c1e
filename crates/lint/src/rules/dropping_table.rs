//! `DROP TABLE` of a table other sessions use.

use pg_query::NodeEnum;
use pg_query::protobuf::ObjectType;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::sql::TableName;

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        let NodeEnum::DropStmt(drop) = context.node else {
            return;
        };
        if drop.remove_type() != ObjectType::ObjectTable {
            return;
        }
        for name in drop.objects.iter().filter_map(|o| match &o.node {
            Some(NodeEnum::List(list)) => TableName::from_names(&list.items),
            _ => None,
        }) {
            if !context.is_existing(&name) {
                continue;
            }
            violations.push(
                Violation::new(format!("dropping `{name}` deletes its data for good, and running code that uses it fails"))
                    .locks(context.lock_on(&name))
                    .alternative(format!(
                        "-- first release: stop using `{name}`; keep a copy if the data matters:\n\
                         ALTER TABLE {t} RENAME TO {t}_deprecated;  -- reversible, and fails loudly if anything still uses it\n\
                         -- a later release: DROP TABLE {t}_deprecated;",
                        t = name.sql()
                    )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    #[test]
    fn flags_dropping_existing_tables() {
        let finding = one(
            "dropping-table",
            "CREATE TABLE audit (id bigint);",
            "DROP TABLE audit",
        );
        assert_eq!(finding.lock.unwrap().sql_name(), "ACCESS EXCLUSIVE");
    }

    #[test]
    fn passes_tables_created_in_the_migration() {
        none(
            "dropping-table",
            "",
            "CREATE TABLE scratch (id bigint); DROP TABLE scratch",
        );
    }
}
