//! `ALTER COLUMN … SET NOT NULL` on a table other sessions use, without a validated
//! `CHECK (column IS NOT NULL)` that lets PostgreSQL 12+ skip the scan.

use pg_query::protobuf::AlterTableType;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::sql::{alter_commands_of, quote_ident};

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        for (table, command) in alter_commands_of(context.node, AlterTableType::AtSetNotNull) {
            if !context.is_existing(&table) || !context.effects.scans.contains(&table) {
                continue;
            }
            let t = table.sql();
            let column = quote_ident(&command.name);
            let check = quote_ident(&format!("{}_{}_not_null", table.name, command.name));
            let alternative = if context.pg_version.0 >= 12 {
                format!(
                    "ALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({column} IS NOT NULL) NOT VALID;\n\
                     -- in a later migration:\nALTER TABLE {t} VALIDATE CONSTRAINT {check};\n\
                     -- then (PostgreSQL 12+ skips the scan thanks to the validated CHECK):\n\
                     ALTER TABLE {t} ALTER COLUMN {column} SET NOT NULL;\nALTER TABLE {t} DROP CONSTRAINT {check};"
                )
            } else {
                format!(
                    "-- PostgreSQL {} always scans for SET NOT NULL; enforce it with a CHECK instead:\n\
                     ALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({column} IS NOT NULL) NOT VALID;\n\
                     ALTER TABLE {t} VALIDATE CONSTRAINT {check};  -- in a later migration",
                    context.pg_version
                )
            };
            violations.push(
                Violation::new(format!(
                    "SET NOT NULL on `{}` scans every row of `{table}` under an ACCESS EXCLUSIVE lock: no reads or writes until it is done",
                    command.name
                ))
                .alternative(alternative),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::metadata::ExampleMode;
    use crate::options::PgVersion;
    use crate::rules::testing::{findings_with, none, one};

    const SETUP: &str = "CREATE TABLE users (id bigint, email text);";

    #[test]
    fn flags_set_not_null_without_a_validated_check() {
        let finding = one(
            "setting-not-null-on-existing-column",
            SETUP,
            "ALTER TABLE users ALTER COLUMN email SET NOT NULL",
        );
        assert!(
            finding
                .safe_alternative
                .unwrap()
                .contains("CHECK (email IS NOT NULL) NOT VALID")
        );
    }

    #[test]
    fn passes_when_a_validated_check_exists_on_12_and_later() {
        let setup = "CREATE TABLE users (id bigint, email text); ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID; ALTER TABLE users VALIDATE CONSTRAINT email_nn;";
        none(
            "setting-not-null-on-existing-column",
            setup,
            "ALTER TABLE users ALTER COLUMN email SET NOT NULL",
        );
        let old = findings_with(
            "setting-not-null-on-existing-column",
            setup,
            "ALTER TABLE users ALTER COLUMN email SET NOT NULL",
            ExampleMode::Migration,
            PgVersion(11),
        );
        assert_eq!(old.len(), 1);
        none(
            "setting-not-null-on-existing-column",
            "",
            "CREATE TABLE t (a int); ALTER TABLE t ALTER COLUMN a SET NOT NULL",
        );
    }
}
