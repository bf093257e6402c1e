//! `DETACH PARTITION` without `CONCURRENTLY`.

use pg_query::NodeEnum;
use pg_query::protobuf::AlterTableType;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::sql::{TableName, alter_commands_of, inner};

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        for (table, command) in alter_commands_of(context.node, AlterTableType::AtDetachPartition) {
            let Some(NodeEnum::PartitionCmd(partition)) = inner(&command.def) else {
                continue;
            };
            if partition.concurrent || !context.is_existing(&table) {
                continue;
            }
            let child = partition
                .name
                .as_ref()
                .map(TableName::from_range_var)
                .map(|n| n.sql())
                .unwrap_or_default();
            let alternative = if context.pg_version.0 >= 14 {
                format!(
                    "-- in a migration of its own, marked `-- migrate:up transaction:false`\nALTER TABLE {} DETACH PARTITION {child} CONCURRENTLY;",
                    table.sql()
                )
            } else {
                format!(
                    "-- PostgreSQL {} has no DETACH PARTITION CONCURRENTLY; set a short lock_timeout and retry",
                    context.pg_version
                )
            };
            violations.push(
                Violation::new(format!(
                    "DETACH PARTITION takes an ACCESS EXCLUSIVE lock on the partitioned table `{table}`: every query on any partition waits"
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
    use crate::rules::testing::{findings_with, one};

    const SETUP: &str = "CREATE TABLE events (id bigint, at date) PARTITION BY RANGE (at); CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');";

    #[test]
    fn flags_blocking_detach() {
        let finding = one(
            "require-concurrent-partition-detach",
            SETUP,
            "ALTER TABLE events DETACH PARTITION events_2024",
        );
        assert!(
            finding
                .safe_alternative
                .unwrap()
                .ends_with("DETACH PARTITION events_2024 CONCURRENTLY;")
        );
    }

    #[test]
    fn passes_concurrent_detach() {
        let found = findings_with(
            "require-concurrent-partition-detach",
            SETUP,
            "ALTER TABLE events DETACH PARTITION events_2024 CONCURRENTLY",
            ExampleMode::MigrationWithoutTransaction,
            PgVersion::DEFAULT,
        );
        assert!(found.is_empty());
    }
}
