//! `ADD COLUMN` of a `serial` or identity column on a table other sessions use.

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::effects::{ColumnRewrite, column_rewrites_table};
use crate::sql::quote_ident;

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        for &(ref table, column, added) in &context.columns {
            if !added || !context.is_existing(table) {
                continue;
            }
            let kind = match column_rewrites_table(column, context.pg_version) {
                Some(ColumnRewrite::Serial(name)) => name,
                Some(ColumnRewrite::Identity) => "identity".to_owned(),
                _ => continue,
            };
            let t = table.sql();
            let name = quote_ident(&column.colname);
            let sequence = quote_ident(&format!("{}_{}_seq", table.name, column.colname));
            violations.push(
                Violation::new(format!(
                    "the {kind} column `{}` gets a value for every existing row: `{table}` is rewritten under an ACCESS EXCLUSIVE lock",
                    column.colname
                ))
                .alternative(format!(
                    "CREATE SEQUENCE {sequence};\n\
                     ALTER TABLE {t} ADD COLUMN {name} bigint;\n\
                     ALTER TABLE {t} ALTER COLUMN {name} SET DEFAULT nextval('{sequence}');\n\
                     ALTER SEQUENCE {sequence} OWNED BY {t}.{name};\n\
                     -- then backfill existing rows in batches: UPDATE {t} SET {name} = nextval('{sequence}') WHERE {name} IS NULL AND …;"
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    const SETUP: &str = "CREATE TABLE events (payload text);";

    #[test]
    fn flags_serial_and_identity_columns() {
        let finding = one(
            "adding-auto-increment-column",
            SETUP,
            "ALTER TABLE events ADD COLUMN id bigserial",
        );
        assert!(finding.rewrite);
        assert!(
            finding
                .safe_alternative
                .unwrap()
                .contains("CREATE SEQUENCE events_id_seq;")
        );
        one(
            "adding-auto-increment-column",
            SETUP,
            "ALTER TABLE events ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY",
        );
    }

    #[test]
    fn passes_new_tables_and_plain_columns() {
        none(
            "adding-auto-increment-column",
            "",
            "CREATE TABLE t (id bigserial PRIMARY KEY)",
        );
        none(
            "adding-auto-increment-column",
            SETUP,
            "ALTER TABLE events ADD COLUMN id bigint",
        );
    }
}
