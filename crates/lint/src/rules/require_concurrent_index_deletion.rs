//! `DROP INDEX` without `CONCURRENTLY` on a table other sessions use.

use pg_query::NodeEnum;
use pg_query::protobuf::ObjectType;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::sql::{TableName, insert_after_keyword};

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        let NodeEnum::DropStmt(drop) = context.node else {
            return;
        };
        if drop.remove_type() != ObjectType::ObjectIndex || drop.concurrent {
            return;
        }
        let names: Vec<TableName> = drop
            .objects
            .iter()
            .filter_map(|o| match &o.node {
                Some(NodeEnum::List(list)) => TableName::from_names(&list.items),
                _ => None,
            })
            .collect();
        let tables: Vec<Option<&TableName>> = names
            .iter()
            .map(|index| context.schema.table_of_index(index))
            .collect();
        if tables
            .iter()
            .all(|t| t.is_some_and(|t| !context.is_existing(t)))
        {
            return;
        }
        let mut alternative =
            insert_after_keyword(context.sql, "index", " CONCURRENTLY").unwrap_or_default();
        if !drop.missing_ok {
            alternative = insert_after_keyword(&alternative, "concurrently", " IF EXISTS")
                .unwrap_or(alternative);
        }
        let on = match tables.first().copied().flatten() {
            Some(table) => format!("`{table}`"),
            None => "its table".to_owned(),
        };
        let index_names: Vec<String> = names.iter().map(ToString::to_string).collect();
        violations.push(
            Violation::new(format!(
                "dropping index `{}` takes an ACCESS EXCLUSIVE lock on {on}: while it waits for running queries, every query on the table queues behind it",
                index_names.join("`, `")
            ))
            .alternative(format!("-- in a migration of its own, marked `-- migrate:up transaction:false`\n{alternative};")),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::metadata::ExampleMode;
    use crate::options::PgVersion;
    use crate::rules::testing::{findings_with, none, one};

    const SETUP: &str = "CREATE TABLE orders (id bigint, user_id bigint); CREATE INDEX orders_user_id_idx ON orders (user_id);";

    #[test]
    fn flags_a_blocking_drop() {
        let finding = one(
            "require-concurrent-index-deletion",
            SETUP,
            "DROP INDEX orders_user_id_idx",
        );
        assert_eq!(finding.tables, ["orders"]);
        assert!(
            finding
                .safe_alternative
                .unwrap()
                .ends_with("DROP INDEX CONCURRENTLY IF EXISTS orders_user_id_idx;")
        );
    }

    #[test]
    fn passes_concurrent_drops_and_new_indexes() {
        let found = findings_with(
            "require-concurrent-index-deletion",
            SETUP,
            "DROP INDEX CONCURRENTLY orders_user_id_idx",
            ExampleMode::MigrationWithoutTransaction,
            PgVersion::DEFAULT,
        );
        assert!(found.is_empty());
        none(
            "require-concurrent-index-deletion",
            "",
            "CREATE TABLE t (a int); CREATE INDEX t_a ON t (a); DROP INDEX t_a",
        );
    }
}
