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
            let old = context
                .schema
                .table(&table)
                .and_then(|t| t.column(&command.name))
                .and_then(|c| c.column_type.clone());
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
                    "changing `{}` to {} rewrites `{table}` under an ACCESS EXCLUSIVE lock unless the change is binary-coercible (the old type is not in the linted history)",
                    command.name,
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
