//! `ADD COLUMN … DEFAULT <constant>` before PostgreSQL 11, which rewrites the table.

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::effects::{ColumnRewrite, column_rewrites_table};
use crate::sql::{add_column_sql, column_default, deparse_expression, quote_ident};

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        for &(ref table, column, added) in &context.columns {
            if !added || !context.is_existing(table) {
                continue;
            }
            if column_rewrites_table(column, context.pg_version)
                != Some(ColumnRewrite::DefaultBeforePg11)
            {
                continue;
            }
            let default = column_default(column)
                .map(deparse_expression)
                .unwrap_or_default();
            let t = table.sql();
            let name = quote_ident(&column.colname);
            violations.push(
                Violation::new(format!(
                    "on PostgreSQL {} a default on a new column is written into every row: `{table}` is rewritten under an ACCESS EXCLUSIVE lock",
                    context.pg_version
                ))
                .alternative(format!(
                    "{};\nALTER TABLE {t} ALTER COLUMN {name} SET DEFAULT {default};\n-- then backfill existing rows in batches",
                    add_column_sql(table, column)
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::metadata::ExampleMode;
    use crate::options::PgVersion;
    use crate::rules::testing::findings_with;

    const SETUP: &str = "CREATE TABLE users (id bigint PRIMARY KEY);";
    const SQL: &str = "ALTER TABLE users ADD COLUMN status text DEFAULT 'new'";

    #[test]
    fn flags_constant_defaults_before_11_only() {
        let old = findings_with(
            "adding-column-with-default-before-pg11",
            SETUP,
            SQL,
            ExampleMode::Migration,
            PgVersion(10),
        );
        assert_eq!(old.len(), 1);
        assert!(old[0].rewrite);
        assert!(
            old[0]
                .safe_alternative
                .as_deref()
                .unwrap()
                .contains("SET DEFAULT 'new'")
        );
        let current = findings_with(
            "adding-column-with-default-before-pg11",
            SETUP,
            SQL,
            ExampleMode::Migration,
            PgVersion(11),
        );
        assert!(current.is_empty());
    }
}
