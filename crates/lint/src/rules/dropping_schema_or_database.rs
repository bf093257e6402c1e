//! `DROP SCHEMA` or `DROP DATABASE` in a migration.

use pg_query::NodeEnum;
use pg_query::protobuf::ObjectType;

use super::{Rule, Violation};
use crate::context::StatementContext;

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        let (what, name) = match context.node {
            NodeEnum::DropdbStmt(drop) => ("database", drop.dbname.clone()),
            NodeEnum::DropStmt(drop) if drop.remove_type() == ObjectType::ObjectSchema => {
                let names: Vec<String> = drop
                    .objects
                    .iter()
                    .filter_map(|o| crate::sql::string_value(o).map(str::to_owned))
                    .collect();
                ("schema", names.join(", "))
            }
            _ => return,
        };
        violations.push(
            Violation::new(format!(
                "dropping {what} `{name}` deletes everything in it, for good"
            ))
            .alternative(format!(
                "-- take a backup first (pg_dump), and drop the {what} by hand if it really must go"
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    #[test]
    fn flags_dropping_schemas() {
        one(
            "dropping-schema-or-database",
            "",
            "DROP SCHEMA billing CASCADE",
        );
    }

    #[test]
    fn passes_other_drops() {
        none(
            "dropping-schema-or-database",
            "CREATE TABLE t (a int);",
            "DROP VIEW IF EXISTS v",
        );
    }
}
