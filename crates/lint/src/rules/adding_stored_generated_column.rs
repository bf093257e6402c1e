//! `ADD COLUMN … GENERATED ALWAYS AS (…) STORED` on a table other sessions use.

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::effects::{ColumnRewrite, column_rewrites_table};
use crate::sql::{add_column_sql, quote_ident};

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        for &(ref table, column, added) in &context.columns {
            if !added || !context.is_existing(table) {
                continue;
            }
            if column_rewrites_table(column, context.pg_version)
                != Some(ColumnRewrite::StoredGenerated)
            {
                continue;
            }
            let name = quote_ident(&column.colname);
            violations.push(
                Violation::new(format!(
                    "the stored generated column `{}` is computed for every row: `{table}` is rewritten under an ACCESS EXCLUSIVE lock",
                    column.colname
                ))
                .alternative(format!(
                    "{};\n-- keep it up to date with a BEFORE INSERT OR UPDATE trigger, then backfill in batches:\n\
                     -- UPDATE {} SET {name} = <expression> WHERE <key> BETWEEN … AND …;",
                    add_column_sql(table, column),
                    table.sql()
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    const SETUP: &str = "CREATE TABLE orders (id bigint PRIMARY KEY, total numeric, tax numeric);";

    #[test]
    fn flags_stored_generated_columns_on_existing_tables() {
        let finding = one(
            "adding-stored-generated-column",
            SETUP,
            "ALTER TABLE orders ADD COLUMN gross numeric GENERATED ALWAYS AS (total + tax) STORED",
        );
        assert!(finding.rewrite);
        assert!(
            finding
                .safe_alternative
                .unwrap()
                .starts_with("ALTER TABLE orders ADD COLUMN gross numeric;")
        );
    }

    #[test]
    fn passes_new_tables() {
        none(
            "adding-stored-generated-column",
            "",
            "CREATE TABLE t (a int, b int GENERATED ALWAYS AS (a * 2) STORED)",
        );
    }
}
