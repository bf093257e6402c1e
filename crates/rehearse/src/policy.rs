//! Lock policies a rehearsal enforces: no pre-existing table may be rewritten or read in full
//! while its transaction holds ACCESS EXCLUSIVE on it, because every query on that table waits
//! for as long as that takes (which grows with the table).

use std::collections::BTreeSet;

use crate::report::{LockPolicy, PolicyViolation, StatementReport};
use safeshift_lint::LockMode;

/// The violations in one migration's traced statements. In a transactional migration, locks
/// taken by earlier statements are still held; otherwise each statement stands alone.
pub fn violations(statements: &[StatementReport], transactional: bool) -> Vec<PolicyViolation> {
    let mut found = Vec::new();
    let mut exclusive: BTreeSet<String> = BTreeSet::new();
    for statement in statements {
        if !transactional {
            exclusive.clear();
        }
        exclusive.extend(
            statement
                .locks
                .iter()
                .filter(|lock| lock.mode == LockMode::AccessExclusive)
                .map(|lock| lock.table.clone().unwrap_or_else(|| lock.relation.clone())),
        );
        let mut rewritten: BTreeSet<&str> = BTreeSet::new();
        for rewrite in &statement.rewrites {
            rewritten.insert(rewrite.table.as_deref().unwrap_or(&rewrite.relation));
        }
        for table in rewritten {
            if exclusive.contains(table) {
                found.push(PolicyViolation {
                    rule: LockPolicy::RewriteUnderAccessExclusive,
                    statement: statement.index,
                    line: statement.line,
                    table: table.to_owned(),
                    message: format!(
                        "{table} is rewritten while ACCESS EXCLUSIVE is held on it: reads and writes wait for the whole rewrite"
                    ),
                });
            }
        }
        for scan in &statement.scans {
            let rewritten_too = statement
                .rewrites
                .iter()
                .any(|r| r.table.as_deref().unwrap_or(&r.relation) == scan.relation);
            if exclusive.contains(&scan.relation) && !rewritten_too {
                found.push(PolicyViolation {
                    rule: LockPolicy::ScanUnderAccessExclusive,
                    statement: statement.index,
                    line: statement.line,
                    table: scan.relation.clone(),
                    message: format!(
                        "{} is read in full while ACCESS EXCLUSIVE is held on it: reads and writes wait for the whole scan",
                        scan.relation
                    ),
                });
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relations::RelationKind;
    use crate::report::{Observation, ObservedLock, ObservedRelation};
    use safeshift_lint::TableName;

    fn statement(
        index: usize,
        mode: Option<LockMode>,
        rewrite: bool,
        scan: bool,
    ) -> StatementReport {
        let relation = || ObservedRelation {
            relation: "public.t".to_owned(),
            qualified: TableName::new(Some("public"), "t"),
            kind: RelationKind::Table,
            table: None,
        };
        StatementReport {
            index,
            line: 1,
            sql: String::new(),
            observation: Observation::Transaction,
            duration_ms: 0.0,
            locks: mode
                .map(|mode| ObservedLock {
                    relation: "public.t".to_owned(),
                    qualified: TableName::new(Some("public"), "t"),
                    kind: RelationKind::Table,
                    table: None,
                    mode,
                    blocks: mode.blocked_commands(),
                    held_ms: 0.0,
                })
                .into_iter()
                .collect(),
            rewrites: if rewrite {
                vec![relation()]
            } else {
                Vec::new()
            },
            scans: if scan { vec![relation()] } else { Vec::new() },
            estimate: None,
            lint_disagreements: Vec::new(),
        }
    }

    #[test]
    fn a_rewrite_or_scan_under_access_exclusive_is_a_violation() {
        let rewrite = [statement(0, Some(LockMode::AccessExclusive), true, true)];
        let found = violations(&rewrite, true);
        assert_eq!(found.len(), 1, "a rewrite's own scan is not counted twice");
        assert_eq!(found[0].rule, LockPolicy::RewriteUnderAccessExclusive);
        let scan = [statement(0, Some(LockMode::AccessExclusive), false, true)];
        assert_eq!(
            violations(&scan, true)[0].rule,
            LockPolicy::ScanUnderAccessExclusive
        );
    }

    #[test]
    fn a_lock_from_an_earlier_statement_counts_only_inside_one_transaction() {
        let statements = [
            statement(0, Some(LockMode::AccessExclusive), false, false),
            statement(1, None, false, true),
        ];
        assert_eq!(violations(&statements, true).len(), 1);
        assert!(violations(&statements, false).is_empty());
    }

    #[test]
    fn a_scan_under_a_weaker_lock_is_allowed() {
        let validate = [statement(
            0,
            Some(LockMode::ShareUpdateExclusive),
            false,
            true,
        )];
        assert!(violations(&validate, true).is_empty());
    }
}
