//! `ADD COLUMN … NOT NULL` without a default on a table other sessions use.

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::sql::{column_default, column_not_null, quote_ident};

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        for &(ref table, column, added) in &context.columns {
            let generated = crate::sql::constraints(&column.constraints).any(|c| {
                matches!(
                    c.contype(),
                    pg_query::protobuf::ConstrType::ConstrIdentity
                        | pg_query::protobuf::ConstrType::ConstrGenerated
                )
            });
            if !added || !context.is_existing(table) || !column_not_null(column) || generated {
                continue;
            }
            if column_default(column).is_some() {
                continue;
            }
            let name = quote_ident(&column.colname);
            let check = quote_ident(&format!("{}_{}_not_null", table.name, column.colname));
            let add = crate::sql::add_column_sql(table, column);
            let t = table.sql();
            violations.push(
                Violation::new(format!(
                    "adding `{}` as NOT NULL without a default fails on any row of `{table}`, and running code that does not set it fails too",
                    column.colname
                ))
                .alternative(format!(
                    "{add};\n-- deploy code that writes {name}, backfill existing rows in batches, then:\n\
                     ALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({name} IS NOT NULL) NOT VALID;\n\
                     ALTER TABLE {t} VALIDATE CONSTRAINT {check};  -- in a later migration\n\
                     ALTER TABLE {t} ALTER COLUMN {name} SET NOT NULL;\n\
                     ALTER TABLE {t} DROP CONSTRAINT {check};"
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
    fn flags_a_required_column_without_default() {
        let finding = one(
            "adding-required-column",
            SETUP,
            "ALTER TABLE users ADD COLUMN email text NOT NULL",
        );
        assert_eq!(finding.lock.unwrap().sql_name(), "ACCESS EXCLUSIVE");
        let alternative = finding.safe_alternative.unwrap();
        assert!(
            alternative.starts_with("ALTER TABLE users ADD COLUMN email text;"),
            "{alternative}"
        );
        assert!(
            alternative.contains("CHECK (email IS NOT NULL) NOT VALID"),
            "{alternative}"
        );
    }

    #[test]
    fn passes_defaults_nullable_columns_identity_and_new_tables() {
        none(
            "adding-required-column",
            SETUP,
            "ALTER TABLE users ADD COLUMN status text NOT NULL DEFAULT 'active'",
        );
        none(
            "adding-required-column",
            SETUP,
            "ALTER TABLE users ADD COLUMN nickname text",
        );
        none(
            "adding-required-column",
            SETUP,
            "ALTER TABLE users ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY",
        );
        none(
            "adding-required-column",
            "",
            "CREATE TABLE t (id bigint); ALTER TABLE t ADD COLUMN email text NOT NULL",
        );
        none(
            "adding-required-column",
            "",
            "CREATE TABLE t (id bigint, email text NOT NULL)",
        );
    }
}
