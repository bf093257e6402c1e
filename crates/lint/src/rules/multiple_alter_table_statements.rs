//! Several `ALTER TABLE` statements on the same table in one migration: each takes its lock (and
//! possibly scans) separately; one statement with all the actions does it once.
//!
//! Statements that must stay on their own are left out: `VALIDATE CONSTRAINT` scans under a
//! lock that lets writes through, and merged into a statement with a stronger action it would
//! scan under that one (undoing NOT VALID then VALIDATE); `ATTACH` and `DETACH PARTITION` do not
//! combine with other actions.

use pg_query::NodeEnum;
use pg_query::protobuf::{AlterTableStmt, AlterTableType};

use super::{Rule, Violation};
use crate::context::MigrationEnd;
use crate::sql::deparse_owned;

pub(crate) struct Check;

/// Actions spelled out in the suggested combined statement.
const MAX_COMBINED_ACTIONS: usize = 6;

impl Rule for Check {
    fn finish(&self, end: &MigrationEnd<'_>, violations: &mut Vec<Violation>) {
        for alterations in end
            .state
            .alterations
            .iter()
            .filter(|a| a.statements.len() > 1)
        {
            let mergeable: Vec<(usize, &AlterTableStmt)> = alterations
                .statements
                .iter()
                .filter_map(|&i| match end.nodes.get(i) {
                    Some(Some(NodeEnum::AlterTableStmt(alter))) if stays_mergeable(alter) => {
                        Some((i, alter))
                    }
                    _ => None,
                })
                .collect();
            let [(_, first), (second, _), rest @ ..] = mergeable.as_slice() else {
                continue;
            };
            // The combined statement is spelled out for the first few; a long run gets the
            // pattern, not a wall of SQL.
            let mut combined = (*first).clone();
            let mut left_out = 0;
            for &(_, alter) in &mergeable[1..] {
                if combined.cmds.len() < MAX_COMBINED_ACTIONS {
                    combined.cmds.extend(alter.cmds.iter().cloned());
                } else {
                    left_out += 1;
                }
            }
            let mut combined = deparse_owned(NodeEnum::AlterTableStmt(combined));
            if left_out > 0 {
                combined =
                    format!("{combined}, …  -- and the actions of {left_out} more statements");
            }
            violations.push(
                Violation::new(format!(
                    "{} ALTER TABLE statements on `{}` each queue for the lock (and may scan) separately",
                    rest.len() + 2,
                    alterations.table
                ))
                .at_statement(*second)
                .locks(Vec::new())
                .alternative(format!("{combined};")),
            );
        }
    }
}

/// Whether a statement's actions can join others in one `ALTER TABLE`.
fn stays_mergeable(alter: &AlterTableStmt) -> bool {
    alter.cmds.iter().all(|cmd| match &cmd.node {
        Some(NodeEnum::AlterTableCmd(cmd)) => !matches!(
            cmd.subtype(),
            AlterTableType::AtValidateConstraint
                | AlterTableType::AtAttachPartition
                | AlterTableType::AtDetachPartition
                | AlterTableType::AtDetachPartitionFinalize
        ),
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    const SETUP: &str = "CREATE TABLE users (id bigint);";

    #[test]
    fn flags_repeated_alters_with_the_combined_statement() {
        let finding = one(
            "multiple-alter-table-statements",
            SETUP,
            "ALTER TABLE users ADD COLUMN a text;\nALTER TABLE users ADD COLUMN b text;",
        );
        assert_eq!(finding.line, 2);
        assert_eq!(
            finding.safe_alternative.unwrap(),
            "ALTER TABLE users ADD COLUMN a text, ADD COLUMN b text;"
        );
    }

    #[test]
    fn never_merges_a_validation_into_a_stronger_statement() {
        none(
            "multiple-alter-table-statements",
            SETUP,
            "ALTER TABLE users ADD CONSTRAINT users_id_positive CHECK (id > 0) NOT VALID;\n\
             ALTER TABLE users VALIDATE CONSTRAINT users_id_positive;",
        );
        let finding = one(
            "multiple-alter-table-statements",
            SETUP,
            "ALTER TABLE users ADD COLUMN a text;\n\
             ALTER TABLE users VALIDATE CONSTRAINT users_a_check;\n\
             ALTER TABLE users ADD COLUMN b text;",
        );
        assert_eq!(finding.line, 3);
        assert!(finding.message.starts_with("2 ALTER TABLE"), "{}", finding.message);
        assert_eq!(
            finding.safe_alternative.unwrap(),
            "ALTER TABLE users ADD COLUMN a text, ADD COLUMN b text;"
        );
    }

    #[test]
    fn passes_one_alter_per_table_and_new_tables() {
        none(
            "multiple-alter-table-statements",
            SETUP,
            "ALTER TABLE users ADD COLUMN a text, ADD COLUMN b text",
        );
        none(
            "multiple-alter-table-statements",
            "",
            "CREATE TABLE t (a int); ALTER TABLE t ADD COLUMN b int; ALTER TABLE t ADD COLUMN c int",
        );
    }
}
