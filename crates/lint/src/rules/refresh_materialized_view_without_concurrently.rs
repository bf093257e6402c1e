//! `REFRESH MATERIALIZED VIEW` without `CONCURRENTLY`.

use pg_query::NodeEnum;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::sql::{TableName, insert_after_keyword};

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        let NodeEnum::RefreshMatViewStmt(refresh) = context.node else {
            return;
        };
        let Some(relation) = &refresh.relation else {
            return;
        };
        let view = TableName::from_range_var(relation);
        if refresh.concurrent || !context.is_existing(&view) || refresh.skip_data {
            return;
        }
        violations.push(
            Violation::new(format!(
                "REFRESH MATERIALIZED VIEW locks `{view}` ACCESS EXCLUSIVE while it recomputes: every query on it waits"
            ))
            .alternative(format!(
                "-- needs a unique index on the view\n{};",
                insert_after_keyword(context.sql, "view", " CONCURRENTLY").unwrap_or_default()
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    const SETUP: &str = "CREATE TABLE orders (user_id bigint, total numeric); CREATE MATERIALIZED VIEW totals AS SELECT user_id, sum(total) AS total FROM orders GROUP BY user_id;";

    #[test]
    fn flags_blocking_refresh() {
        let finding = one(
            "refresh-materialized-view-without-concurrently",
            SETUP,
            "REFRESH MATERIALIZED VIEW totals",
        );
        assert!(
            finding
                .safe_alternative
                .unwrap()
                .ends_with("REFRESH MATERIALIZED VIEW CONCURRENTLY totals;")
        );
    }

    #[test]
    fn passes_concurrent_refresh() {
        none(
            "refresh-materialized-view-without-concurrently",
            SETUP,
            "REFRESH MATERIALIZED VIEW CONCURRENTLY totals",
        );
    }
}
