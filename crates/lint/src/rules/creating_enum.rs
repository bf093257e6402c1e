//! `CREATE TYPE … AS ENUM`: values can be added but never removed.

use pg_query::NodeEnum;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::sql::{TableName, string_value};

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        let NodeEnum::CreateEnumStmt(create) = context.node else {
            return;
        };
        let Some(name) = TableName::from_names(&create.type_name) else {
            return;
        };
        let values: Vec<String> = create
            .vals
            .iter()
            .filter_map(string_value)
            .map(crate::sql::quote_literal)
            .collect();
        let table = TableName::new(name.schema.as_deref(), &format!("{}_values", name.name));
        violations.push(
            Violation::new(format!(
                "enum `{name}` can gain values but never lose or reorder them without rebuilding every column that uses it"
            ))
            .alternative(format!(
                "CREATE TABLE {t} (value text PRIMARY KEY);\nINSERT INTO {t} (value) VALUES ({});\n-- columns: value text REFERENCES {t} (value)",
                values.join("), ("),
                t = table.sql()
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    #[test]
    fn flags_new_enums() {
        let finding = one(
            "creating-enum",
            "",
            "CREATE TYPE mood AS ENUM ('sad', 'happy')",
        );
        assert!(
            finding
                .safe_alternative
                .unwrap()
                .contains("VALUES ('sad'), ('happy')")
        );
    }

    #[test]
    fn passes_lookup_tables() {
        none(
            "creating-enum",
            "",
            "CREATE TABLE moods (value text PRIMARY KEY)",
        );
    }
}
