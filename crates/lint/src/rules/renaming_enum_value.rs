//! `ALTER TYPE … RENAME VALUE`: stored rows change meaning for code that knows the old label.

use pg_query::NodeEnum;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::sql::{TableName, quote_literal};

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        let NodeEnum::AlterEnumStmt(alter) = context.node else {
            return;
        };
        if alter.old_val.is_empty() {
            return;
        }
        if context.schema.enum_origin(&alter.type_name) == Some(crate::schema::Origin::New) {
            return;
        }
        let name = TableName::from_names(&alter.type_name)
            .map(|n| n.sql())
            .unwrap_or_default();
        violations.push(
            Violation::new(format!(
                "renaming enum value '{}' to '{}' breaks running code that writes or compares '{}'",
                alter.old_val, alter.new_val, alter.old_val
            ))
            .alternative(format!(
                "ALTER TYPE {name} ADD VALUE IF NOT EXISTS {};\n-- write the new value from the application, migrate rows in batches,\n-- and stop using {} once no running code does",
                quote_literal(&alter.new_val),
                quote_literal(&alter.old_val)
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    #[test]
    fn flags_enum_value_renames() {
        let finding = one(
            "renaming-enum-value",
            "CREATE TYPE status AS ENUM ('new', 'paid');",
            "ALTER TYPE status RENAME VALUE 'paid' TO 'settled'",
        );
        assert!(
            finding
                .safe_alternative
                .unwrap()
                .starts_with("ALTER TYPE status ADD VALUE IF NOT EXISTS 'settled';")
        );
    }

    #[test]
    fn passes_new_enums_and_added_values() {
        none(
            "renaming-enum-value",
            "",
            "CREATE TYPE s AS ENUM ('a'); ALTER TYPE s RENAME VALUE 'a' TO 'b'",
        );
        none(
            "renaming-enum-value",
            "CREATE TYPE status AS ENUM ('new');",
            "ALTER TYPE status ADD VALUE 'paid' AFTER 'new'",
        );
    }
}
