//! Statements that fail when run again (no `IF [NOT] EXISTS`) in a migration without a
//! transaction, where a failure leaves the earlier statements applied.

use pg_query::NodeEnum;
use pg_query::protobuf::AlterTableType;

use super::{Rule, Violation};
use crate::context::{Execution, StatementContext};
use crate::sql::{alter_commands_of, insert_after_keyword};

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        let applies = match context.state.execution {
            Execution::Runner { transaction } => !transaction,
            Execution::Script => !context.state.in_transaction && context.index > 0,
        };
        if !applies || context.state.in_transaction {
            return;
        }
        let (what, alternative) = match context.node {
            NodeEnum::IndexStmt(index) if !index.if_not_exists && !index.idxname.is_empty() => {
                let keyword = if index.concurrent {
                    "concurrently"
                } else {
                    "index"
                };
                let robust = insert_after_keyword(context.sql, keyword, " IF NOT EXISTS")
                    .unwrap_or_default();
                let drop = if index.concurrent {
                    "DROP INDEX CONCURRENTLY IF EXISTS"
                } else {
                    "DROP INDEX IF EXISTS"
                };
                (
                    format!("CREATE INDEX {}", index.idxname),
                    format!(
                        "-- a failed concurrent build leaves an INVALID index: drop it before building again\n{drop} {};\n{robust};",
                        crate::sql::quote_ident(&index.idxname)
                    ),
                )
            }
            NodeEnum::CreateStmt(create) if !create.if_not_exists => (
                "CREATE TABLE".to_owned(),
                format!(
                    "{};",
                    insert_after_keyword(context.sql, "table", " IF NOT EXISTS")
                        .unwrap_or_default()
                ),
            ),
            NodeEnum::DropStmt(drop) if !drop.missing_ok => {
                let keyword = if drop.concurrent {
                    "concurrently"
                } else {
                    object_keyword(drop)
                };
                (
                    "DROP".to_owned(),
                    format!(
                        "{};",
                        insert_after_keyword(context.sql, keyword, " IF EXISTS")
                            .unwrap_or_default()
                    ),
                )
            }
            NodeEnum::AlterTableStmt(_) => {
                let columns = alter_commands_of(context.node, AlterTableType::AtAddColumn);
                if columns.is_empty() || columns.iter().all(|(_, c)| c.missing_ok) {
                    return;
                }
                (
                    "ADD COLUMN".to_owned(),
                    format!(
                        "{};",
                        insert_after_keyword(context.sql, "column", " IF NOT EXISTS")
                            .unwrap_or_else(|| context.sql.replacen(
                                "ADD ",
                                "ADD COLUMN IF NOT EXISTS ",
                                1
                            ))
                    ),
                )
            }
            _ => return,
        };
        violations.push(
            Violation::new(format!(
                "`{what}` fails if it runs again; without a transaction, a failure leaves earlier statements applied and the rerun hits this one"
            ))
            .locks(Vec::new())
            .alternative(alternative),
        );
    }
}

fn object_keyword(drop: &pg_query::protobuf::DropStmt) -> &'static str {
    use pg_query::protobuf::ObjectType;
    match drop.remove_type() {
        ObjectType::ObjectIndex => "index",
        ObjectType::ObjectView => "view",
        ObjectType::ObjectMatview => "view",
        ObjectType::ObjectSequence => "sequence",
        ObjectType::ObjectType => "type",
        ObjectType::ObjectSchema => "schema",
        ObjectType::ObjectFunction => "function",
        ObjectType::ObjectTrigger => "trigger",
        _ => "table",
    }
}

#[cfg(test)]
mod tests {
    use crate::metadata::ExampleMode;
    use crate::options::PgVersion;
    use crate::rules::testing::{findings_with, none};

    const SETUP: &str = "CREATE TABLE orders (id bigint, user_id bigint);";

    fn without_transaction(sql: &str) -> Vec<crate::finding::Finding> {
        findings_with(
            "non-idempotent-in-non-transactional-migration",
            SETUP,
            sql,
            ExampleMode::MigrationWithoutTransaction,
            PgVersion::DEFAULT,
        )
    }

    #[test]
    fn flags_non_idempotent_statements_without_a_transaction() {
        let found =
            without_transaction("CREATE INDEX CONCURRENTLY orders_user_id_idx ON orders (user_id)");
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].safe_alternative.as_deref().unwrap(),
            "-- a failed concurrent build leaves an INVALID index: drop it before building again\n\
             DROP INDEX CONCURRENTLY IF EXISTS orders_user_id_idx;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS orders_user_id_idx ON orders (user_id);"
        );
        assert_eq!(without_transaction("DROP INDEX CONCURRENTLY i").len(), 1);
    }

    #[test]
    fn passes_robust_statements_and_transactional_migrations() {
        assert!(
            without_transaction("CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON orders (user_id)")
                .is_empty()
        );
        assert!(without_transaction("DROP INDEX CONCURRENTLY IF EXISTS i").is_empty());
        none(
            "non-idempotent-in-non-transactional-migration",
            SETUP,
            "CREATE TABLE t (a int)",
        );
    }
}
