//! `VACUUM FULL` or `CLUSTER` in a migration.

use pg_query::NodeEnum;

use super::{Rule, Violation};
use crate::context::StatementContext;

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        let what = match context.node {
            NodeEnum::VacuumStmt(vacuum)
                if vacuum.is_vacuumcmd
                    && context
                        .effects
                        .rewrites
                        .iter()
                        .any(|t| context.is_existing(t)) =>
            {
                "VACUUM FULL"
            }
            NodeEnum::VacuumStmt(vacuum)
                if vacuum.is_vacuumcmd
                    && vacuum.rels.is_empty()
                    && vacuum.options.iter().any(
                        |o| matches!(&o.node, Some(NodeEnum::DefElem(d)) if d.defname == "full"),
                    ) =>
            {
                "VACUUM FULL"
            }
            NodeEnum::ClusterStmt(_) => "CLUSTER",
            _ => return,
        };
        let tables: Vec<String> = context
            .effects
            .rewrites
            .iter()
            .map(ToString::to_string)
            .collect();
        let target = if tables.is_empty() {
            "every table".to_owned()
        } else {
            format!("`{}`", tables.join("`, `"))
        };
        let alternative = if context.pg_version.0 >= 19 {
            "-- PostgreSQL 19+: REPACK (CONCURRENTLY) rewrites without blocking traffic".to_owned()
        } else {
            "-- use pg_repack (an extension) to rebuild the table online, outside the migration"
                .to_owned()
        };
        violations.push(
            Violation::new(format!("{what} rewrites {target} under an ACCESS EXCLUSIVE lock: no reads or writes until it is done"))
                .alternative(alternative),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::metadata::ExampleMode;
    use crate::options::PgVersion;
    use crate::rules::testing::{findings_with, none, one};

    const SETUP: &str = "CREATE TABLE events (id bigint PRIMARY KEY);";

    #[test]
    fn flags_cluster_and_vacuum_full() {
        let finding = one(
            "vacuum-full-or-cluster",
            SETUP,
            "CLUSTER events USING events_pkey",
        );
        assert!(finding.rewrite);
        let found = findings_with(
            "vacuum-full-or-cluster",
            SETUP,
            "VACUUM FULL events",
            ExampleMode::MigrationWithoutTransaction,
            PgVersion::DEFAULT,
        );
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn passes_plain_vacuum_and_analyze() {
        none("vacuum-full-or-cluster", SETUP, "ANALYZE events");
        let found = findings_with(
            "vacuum-full-or-cluster",
            SETUP,
            "VACUUM events",
            ExampleMode::MigrationWithoutTransaction,
            PgVersion::DEFAULT,
        );
        assert!(found.is_empty());
    }
}
