//! `ADD COLUMN … DEFAULT <volatile>`: every row gets its own value, so the table is rewritten.

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::effects::{ColumnRewrite, column_rewrites_table};
use crate::sql::{add_column_sql, column_default, deparse_expression, quote_ident};
use crate::volatility::Volatility;

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        for &(ref table, column, added) in &context.columns {
            if !added || !context.is_existing(table) {
                continue;
            }
            let Some(ColumnRewrite::VolatileDefault(volatility)) =
                column_rewrites_table(column, context.pg_version)
            else {
                continue;
            };
            let (function, certainty) = match volatility {
                Volatility::PerRow { function } => (function, "is volatile"),
                Volatility::Unknown { function } => (
                    function,
                    "is not a built-in safeshift knows, so it is assumed volatile",
                ),
                Volatility::OneValue => continue,
            };
            let default = column_default(column)
                .map(deparse_expression)
                .unwrap_or_default();
            let t = table.sql();
            let name = quote_ident(&column.colname);
            violations.push(
                Violation::new(format!(
                    "the default of `{}` calls `{function}()`, which {certainty}: PostgreSQL rewrites every row of `{table}` under an ACCESS EXCLUSIVE lock",
                    column.colname
                ))
                .alternative(format!(
                    "{};\nALTER TABLE {t} ALTER COLUMN {name} SET DEFAULT {default};\n\
                     -- then backfill existing rows in batches:\n\
                     -- UPDATE {t} SET {name} = {default} WHERE {name} IS NULL AND <key> BETWEEN … AND …;",
                    add_column_sql(table, column)
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    const SETUP: &str = "CREATE TABLE users (id bigint PRIMARY KEY);";

    #[test]
    fn flags_volatile_and_unknown_defaults() {
        let finding = one(
            "adding-column-with-volatile-default",
            SETUP,
            "ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid()",
        );
        assert!(finding.rewrite);
        assert_eq!(
            finding.safe_alternative.unwrap(),
            "ALTER TABLE users ADD COLUMN token uuid;\nALTER TABLE users ALTER COLUMN token SET DEFAULT gen_random_uuid();\n\
             -- then backfill existing rows in batches:\n\
             -- UPDATE users SET token = gen_random_uuid() WHERE token IS NULL AND <key> BETWEEN … AND …;"
        );
        one(
            "adding-column-with-volatile-default",
            SETUP,
            "ALTER TABLE users ADD COLUMN code text DEFAULT app.next_code()",
        );
    }

    #[test]
    fn passes_constant_and_stable_defaults_and_new_tables() {
        none(
            "adding-column-with-volatile-default",
            SETUP,
            "ALTER TABLE users ADD COLUMN created_at timestamptz DEFAULT now()",
        );
        none(
            "adding-column-with-volatile-default",
            SETUP,
            "ALTER TABLE users ADD COLUMN status text NOT NULL DEFAULT 'new'",
        );
        none(
            "adding-column-with-volatile-default",
            SETUP,
            "ALTER TABLE users ADD COLUMN d date DEFAULT CURRENT_DATE",
        );
        none(
            "adding-column-with-volatile-default",
            "",
            "CREATE TABLE t (id bigint); ALTER TABLE t ADD COLUMN u uuid DEFAULT gen_random_uuid()",
        );
    }
}
