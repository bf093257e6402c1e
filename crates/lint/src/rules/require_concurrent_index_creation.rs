//! `CREATE INDEX` without `CONCURRENTLY` on a table other sessions use.

use pg_query::NodeEnum;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::sql::{TableName, insert_after_keyword};

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        let NodeEnum::IndexStmt(index) = context.node else {
            return;
        };
        let Some(relation) = &index.relation else {
            return;
        };
        let table = TableName::from_range_var(relation);
        if index.concurrent || !context.is_existing(&table) {
            return;
        }
        let mut alternative =
            insert_after_keyword(context.sql, "index", " CONCURRENTLY").unwrap_or_default();
        if !index.if_not_exists && !index.idxname.is_empty() {
            alternative = insert_after_keyword(&alternative, "concurrently", " IF NOT EXISTS")
                .unwrap_or(alternative);
        }
        violations.push(
            Violation::new(format!(
                "building index `{}` locks `{table}` against writes (SHARE) until the build finishes",
                if index.idxname.is_empty() { "(unnamed)" } else { &index.idxname }
            ))
            .alternative(format!(
                "-- in a migration of its own, marked `-- migrate:up transaction:false`\n{alternative};"
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::metadata::ExampleMode;
    use crate::options::PgVersion;
    use crate::rules::testing::{findings_with, none, one};

    const SETUP: &str = "CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint);";

    #[test]
    fn flags_a_blocking_index_build_on_an_existing_table() {
        let finding = one(
            "require-concurrent-index-creation",
            SETUP,
            "CREATE INDEX orders_user_id_idx ON orders (user_id);",
        );
        assert_eq!(finding.lock.unwrap().sql_name(), "SHARE");
        assert_eq!(finding.tables, ["orders"]);
        assert_eq!(
            finding.safe_alternative.unwrap(),
            "-- in a migration of its own, marked `-- migrate:up transaction:false`\nCREATE INDEX CONCURRENTLY IF NOT EXISTS orders_user_id_idx ON orders (user_id);"
        );
    }

    #[test]
    fn passes_concurrent_builds_and_new_tables() {
        let found = findings_with(
            "require-concurrent-index-creation",
            SETUP,
            "CREATE INDEX CONCURRENTLY orders_user_id_idx ON orders (user_id);",
            ExampleMode::MigrationWithoutTransaction,
            PgVersion::DEFAULT,
        );
        assert!(found.is_empty());
        none(
            "require-concurrent-index-creation",
            "",
            "CREATE TABLE carts (id bigint, user_id bigint); CREATE INDEX carts_user_id_idx ON carts (user_id);",
        );
    }
}
