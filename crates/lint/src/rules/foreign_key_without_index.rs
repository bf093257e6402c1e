//! A foreign key whose referencing columns no index starts with: every DELETE or key UPDATE on the
//! referenced table scans the referencing one.

use super::{Rule, Violation};
use crate::context::MigrationEnd;
use crate::sql::{column_list, quote_ident};

pub(crate) struct Check;

impl Rule for Check {
    fn finish(&self, end: &MigrationEnd<'_>, violations: &mut Vec<Violation>) {
        for (statement, table, columns, referenced) in &end.state.foreign_keys {
            let Some(known) = end.schema.table(table) else {
                continue;
            };
            if columns.is_empty() || known.has_index_leading_with(columns) {
                continue;
            }
            let index = quote_ident(&format!("{}_{}_idx", table.name, columns.join("_")));
            violations.push(
                Violation::new(format!(
                    "no index on `{table}` ({}) backs the foreign key to `{referenced}`: each DELETE or key UPDATE on `{referenced}` scans `{table}`",
                    columns.join(", ")
                ))
                .at_statement(*statement)
                .locks(Vec::new())
                .alternative(format!(
                    "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY IF NOT EXISTS {index} ON {} ({});",
                    table.sql(),
                    column_list(columns)
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
    fn flags_foreign_keys_without_an_index() {
        let finding = one(
            "foreign-key-without-index",
            SETUP,
            "CREATE TABLE orders (id bigint, user_id bigint REFERENCES users)",
        );
        assert!(finding.safe_alternative.unwrap().ends_with(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_user_id_idx ON orders (user_id);"
        ));
    }

    #[test]
    fn passes_when_an_index_follows_in_the_migration() {
        none(
            "foreign-key-without-index",
            SETUP,
            "CREATE TABLE orders (id bigint, user_id bigint REFERENCES users); CREATE INDEX orders_user_id_idx ON orders (user_id, id);",
        );
        none(
            "foreign-key-without-index",
            SETUP,
            "CREATE TABLE profiles (user_id bigint PRIMARY KEY REFERENCES users)",
        );
    }
}
