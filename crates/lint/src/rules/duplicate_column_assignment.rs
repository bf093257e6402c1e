//! `UPDATE … SET a = …, a = …` or `INSERT INTO t (a, a)`: the statement fails.

use pg_query::NodeEnum;

use super::{Rule, Violation};
use crate::context::StatementContext;

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        let targets = match context.node {
            NodeEnum::UpdateStmt(update) => &update.target_list,
            NodeEnum::InsertStmt(insert) => &insert.cols,
            _ => return,
        };
        let mut seen: Vec<&str> = Vec::new();
        for target in targets {
            let Some(NodeEnum::ResTarget(target)) = &target.node else {
                continue;
            };
            if seen.contains(&target.name.as_str()) {
                violations.push(
                    Violation::new(format!(
                        "column `{}` is assigned twice; PostgreSQL rejects the statement",
                        target.name
                    ))
                    .alternative(format!("-- assign `{}` once", target.name)),
                );
                return;
            }
            seen.push(&target.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    const SETUP: &str = "CREATE TABLE t (a int, b int);";

    #[test]
    fn flags_repeated_columns() {
        one(
            "duplicate-column-assignment",
            SETUP,
            "UPDATE t SET a = 1, b = 2, a = 3 WHERE b = 0",
        );
        one(
            "duplicate-column-assignment",
            SETUP,
            "INSERT INTO t (a, a) VALUES (1, 2)",
        );
    }

    #[test]
    fn passes_distinct_columns() {
        none(
            "duplicate-column-assignment",
            SETUP,
            "UPDATE t SET a = 1, b = 2 WHERE a = 0",
        );
    }
}
