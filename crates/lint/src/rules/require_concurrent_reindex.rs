//! `REINDEX` without `CONCURRENTLY`.

use pg_query::NodeEnum;
use pg_query::protobuf::ReindexObjectType;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::sql::{TableName, insert_after_keyword};

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        let NodeEnum::ReindexStmt(reindex) = context.node else {
            return;
        };
        let concurrently = reindex
            .params
            .iter()
            .any(|p| matches!(&p.node, Some(NodeEnum::DefElem(d)) if d.defname == "concurrently"));
        if concurrently {
            return;
        }
        let Some(relation) = &reindex.relation else {
            return;
        };
        let name = TableName::from_range_var(relation);
        let (kind, table) = match reindex.kind() {
            ReindexObjectType::ReindexObjectIndex => {
                ("index", context.schema.table_of_index(&name).cloned())
            }
            ReindexObjectType::ReindexObjectTable => ("table", Some(name.clone())),
            _ => return,
        };
        if table.as_ref().is_some_and(|t| !context.is_existing(t)) {
            return;
        }
        let alternative = if context.pg_version.0 >= 12 {
            let keyword = if kind == "index" { "index" } else { "table" };
            format!(
                "-- in a migration of its own, marked `-- migrate:up transaction:false`\n{};",
                insert_after_keyword(context.sql, keyword, " CONCURRENTLY").unwrap_or_default()
            )
        } else {
            format!(
                "-- PostgreSQL {} has no REINDEX CONCURRENTLY: build a replacement with CREATE INDEX CONCURRENTLY, then drop the old index concurrently",
                context.pg_version
            )
        };
        violations.push(
            Violation::new(format!(
                "REINDEX {kind} `{name}` blocks writes to {} and reads that use the index until it finishes",
                table.map_or("the table".to_owned(), |t| format!("`{t}`"))
            ))
            .alternative(alternative),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::metadata::ExampleMode;
    use crate::options::PgVersion;
    use crate::rules::testing::{findings_with, one};

    const SETUP: &str = "CREATE TABLE orders (id bigint, user_id bigint); CREATE INDEX orders_user_id_idx ON orders (user_id);";

    #[test]
    fn flags_blocking_reindex() {
        let finding = one(
            "require-concurrent-reindex",
            SETUP,
            "REINDEX INDEX orders_user_id_idx",
        );
        assert_eq!(finding.tables, ["orders"]);
        assert!(
            finding
                .safe_alternative
                .unwrap()
                .ends_with("REINDEX INDEX CONCURRENTLY orders_user_id_idx;")
        );
        one("require-concurrent-reindex", SETUP, "REINDEX TABLE orders");
    }

    #[test]
    fn passes_concurrent_reindex() {
        let found = findings_with(
            "require-concurrent-reindex",
            SETUP,
            "REINDEX TABLE CONCURRENTLY orders",
            ExampleMode::MigrationWithoutTransaction,
            PgVersion::DEFAULT,
        );
        assert!(found.is_empty());
    }
}
