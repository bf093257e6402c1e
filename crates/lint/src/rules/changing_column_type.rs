//! `ALTER COLUMN … TYPE` that rewrites the table (anything but a binary-coercible change).

use pg_query::NodeEnum;
use pg_query::protobuf::AlterTableType;

use super::{Rule, Violation};
use crate::coercion::{self, TypeChange};
use crate::context::StatementContext;
use crate::risk::Risk;
use crate::sql::{ColumnType, alter_commands_of, inner, quote_ident};

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        for (table, command) in alter_commands_of(context.node, AlterTableType::AtAlterColumnType) {
            if !context.is_existing(&table) {
                continue;
            }
            let Some(NodeEnum::ColumnDef(definition)) = inner(&command.def) else {
                continue;
            };
            let Some(new_type) = definition
                .type_name
                .as_ref()
                .map(ColumnType::from_type_name)
            else {
                continue;
            };
            let old = context.schema.column_type(&table, &command.name);
            let change = coercion::classify(
                old.as_ref(),
                &new_type,
                definition.raw_default.is_some(),
                context.state.utc_conversions,
            );
            let t = table.sql();
            let column = quote_ident(&command.name);
            let new_column = quote_ident(&format!("{}_new", command.name));
            let alternative = format!(
                "ALTER TABLE {t} ADD COLUMN {new_column} {};\n\
                 -- keep it in sync with a trigger, backfill in batches, switch the application over, then:\n\
                 ALTER TABLE {t} DROP COLUMN {column};\nALTER TABLE {t} RENAME COLUMN {new_column} TO {column};",
                new_type.sql()
            );
            let violation = match (change, &old) {
                (TypeChange::MetadataOnly, _) => continue,
                (TypeChange::Rewrite, Some(old)) => Violation::new(format!(
                    "changing `{}` from {} to {} rewrites `{table}` and all its indexes under an ACCESS EXCLUSIVE lock",
                    command.name,
                    old.sql(),
                    new_type.sql()
                )),
                (TypeChange::Rewrite, None) => Violation::new(format!(
                    "changing `{}` to {} with USING rewrites `{table}` and all its indexes under an ACCESS EXCLUSIVE lock",
                    command.name,
                    new_type.sql()
                )),
                (TypeChange::Unknown, _) => Violation::new(format!(
                    "the old type of `{}` is unknown ({}): changing it to {} rewrites `{table}` under an ACCESS EXCLUSIVE lock unless the change is binary-coercible",
                    command.name,
                    if context.schema.knows_database() {
                        format!("no earlier migration creates `{table}`, and the database has no such column")
                    } else {
                        format!("no earlier migration creates `{table}`, and no database was given")
                    },
                    new_type.sql()
                ))
                .risk(Risk::Medium)
                .rewrite(true),
            };
            violations.push(violation.alternative(alternative));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    const SETUP: &str =
        "CREATE TABLE users (id integer, email varchar(100), note text, price numeric(10, 2));";

    #[test]
    fn flags_rewriting_type_changes() {
        let finding = one(
            "changing-column-type",
            SETUP,
            "ALTER TABLE users ALTER COLUMN id TYPE bigint",
        );
        assert!(finding.rewrite);
        assert!(
            finding.message.contains("from integer to bigint"),
            "{}",
            finding.message
        );
        assert!(
            finding
                .safe_alternative
                .unwrap()
                .starts_with("ALTER TABLE users ADD COLUMN id_new bigint;")
        );
        one(
            "changing-column-type",
            SETUP,
            "ALTER TABLE users ALTER COLUMN email TYPE varchar(50)",
        );
        one(
            "changing-column-type",
            SETUP,
            "ALTER TABLE users ALTER COLUMN note TYPE varchar(20)",
        );
        let unknown = one(
            "changing-column-type",
            "",
            "ALTER TABLE elsewhere ALTER COLUMN a TYPE text",
        );
        assert_eq!(unknown.risk, crate::risk::Risk::Medium);
    }

    #[test]
    fn timestamps_to_timestamptz_in_a_utc_session_rewrite_nothing() {
        let setup = "CREATE TABLE events (at timestamp, seen timestamptz);";
        none(
            "changing-column-type",
            setup,
            "SET timezone = 'UTC'; ALTER TABLE events ALTER COLUMN at TYPE timestamptz",
        );
        none(
            "changing-column-type",
            setup,
            "SET TIME ZONE 'Etc/UTC'; ALTER TABLE events ALTER COLUMN seen TYPE timestamp",
        );
        one(
            "changing-column-type",
            setup,
            "ALTER TABLE events ALTER COLUMN at TYPE timestamptz",
        );
        one(
            "changing-column-type",
            setup,
            "SET timezone = 'UTC'; RESET timezone; ALTER TABLE events ALTER COLUMN at TYPE timestamptz",
        );
        one(
            "changing-column-type",
            setup,
            "SET timezone = 'Europe/Paris'; ALTER TABLE events ALTER COLUMN at TYPE timestamptz",
        );
    }

    fn with_database_columns(sql: &str) -> Vec<crate::finding::Finding> {
        let mut columns = crate::schema::DatabaseColumns::new();
        columns.insert("public", "legacy", "email", "character varying(100)");
        columns.insert("public", "legacy", "id", "integer");
        let linter = crate::Linter::new(crate::LintOptions {
            database_columns: Some(std::sync::Arc::new(columns)),
            ..crate::LintOptions::default()
        })
        .unwrap();
        linter
            .lint_example("", sql, crate::ExampleMode::Migration)
            .findings
            .into_iter()
            .filter(|f| f.rule == "changing-column-type")
            .collect()
    }

    #[test]
    fn the_database_gives_the_old_type_of_a_table_no_migration_creates() {
        assert!(with_database_columns("ALTER TABLE legacy ALTER COLUMN email TYPE varchar(200)").is_empty());
        assert!(with_database_columns("ALTER TABLE legacy ALTER COLUMN email TYPE text").is_empty());
        let widened = with_database_columns("ALTER TABLE legacy ALTER COLUMN id TYPE bigint");
        assert!(widened[0].message.contains("from integer to bigint"), "{}", widened[0].message);
        // A change earlier in the history is the type the next one starts from.
        let twice = with_database_columns(
            "ALTER TABLE legacy ALTER COLUMN email TYPE varchar(20);\nALTER TABLE legacy ALTER COLUMN email TYPE varchar(30)",
        );
        assert_eq!(twice.len(), 1, "only the narrowing rewrites: {twice:#?}");
        let unknown = with_database_columns("ALTER TABLE legacy ALTER COLUMN note TYPE text");
        assert!(
            unknown[0].message.contains("the old type of `note` is unknown"),
            "{}",
            unknown[0].message
        );
    }

    #[test]
    fn without_a_database_an_unknown_type_says_so() {
        let unknown = one(
            "changing-column-type",
            "",
            "ALTER TABLE elsewhere ALTER COLUMN a TYPE text",
        );
        assert!(
            unknown.message.contains("the old type of `a` is unknown (no earlier migration creates `elsewhere`, and no database was given)"),
            "{}",
            unknown.message
        );
    }

    #[test]
    fn passes_binary_coercible_changes() {
        none(
            "changing-column-type",
            SETUP,
            "ALTER TABLE users ALTER COLUMN email TYPE varchar(200)",
        );
        none(
            "changing-column-type",
            SETUP,
            "ALTER TABLE users ALTER COLUMN email TYPE text",
        );
        none(
            "changing-column-type",
            SETUP,
            "ALTER TABLE users ALTER COLUMN note TYPE varchar",
        );
        none(
            "changing-column-type",
            SETUP,
            "ALTER TABLE users ALTER COLUMN price TYPE numeric(12, 2)",
        );
    }
}
