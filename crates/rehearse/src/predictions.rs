//! What the linter predicted for each statement, handed in by the caller (this crate does not
//! know the linter), and where the observation disagrees: the observation wins.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::lock_mode::LockMode;
use crate::report::StatementReport;

/// A table as a migration names it: the schema is optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableName {
    pub schema: Option<String>,
    pub name: String,
}

impl TableName {
    /// Whether `qualified` (`public.users`, as observed) is this table.
    fn matches(&self, qualified: &str) -> bool {
        let (schema, name) = qualified.split_once('.').unwrap_or(("public", qualified));
        let unquote = |text: &str| text.trim_matches('"').replace("\"\"", "\"");
        unquote(name) == self.name
            && self
                .schema
                .as_ref()
                .is_none_or(|wanted| *wanted == unquote(schema))
    }

    fn display(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{schema}.{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// The linter's prediction for one statement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatementPrediction {
    /// The strongest lock it expects on each table it reported on.
    pub locks: Vec<(TableName, LockMode)>,
    /// The tables it expects to be rewritten.
    pub rewrites: Vec<TableName>,
}

/// Predictions per migration version and statement index. A version that is present was linted:
/// its statements without an entry were predicted to rewrite nothing.
#[derive(Debug, Clone, Default)]
pub struct Predictions {
    pub migrations: BTreeMap<String, BTreeMap<usize, StatementPrediction>>,
}

/// Fills each statement's `lint_disagreements` for a linted migration. In a transactional
/// migration a lock already taken by an earlier statement is not taken again, so what a later
/// statement needs on that table cannot be observed and is not compared.
pub fn compare(
    predictions: &Predictions,
    version: &str,
    transactional: bool,
    statements: &mut [StatementReport],
) {
    let Some(migration) = predictions.migrations.get(version) else {
        return;
    };
    let nothing = StatementPrediction::default();
    let mut locked_earlier: Vec<String> = Vec::new();
    for statement in statements {
        if !transactional {
            locked_earlier.clear();
        }
        let predicted = migration.get(&statement.index).unwrap_or(&nothing);
        let rewritten: Vec<&str> = statement
            .rewrites
            .iter()
            .filter(|r| r.kind.holds_rows())
            .map(|r| r.relation.as_str())
            .collect();
        let mut found = Vec::new();
        for table in &predicted.rewrites {
            if !rewritten.iter().any(|observed| table.matches(observed)) {
                found.push(format!(
                    "the linter expected a rewrite of {} that did not happen",
                    table.display()
                ));
            }
        }
        for observed in &rewritten {
            if !predicted
                .rewrites
                .iter()
                .any(|table| table.matches(observed))
            {
                found.push(format!(
                    "{observed} was rewritten, which the linter did not predict"
                ));
            }
        }
        for (table, mode) in &predicted.locks {
            let strongest = statement
                .locks
                .iter()
                .filter(|lock| lock.table.is_none() && table.matches(&lock.relation))
                .map(|lock| lock.mode)
                .max();
            match strongest {
                Some(observed) if observed == *mode => {}
                Some(observed) => found.push(format!(
                    "the linter predicted {mode} on {}, observed {observed}",
                    table.display()
                )),
                None if locked_earlier.iter().any(|earlier| table.matches(earlier)) => {}
                None => found.push(format!(
                    "the linter predicted {mode} on {}, observed no new lock",
                    table.display()
                )),
            }
        }
        locked_earlier.extend(statement.locks.iter().map(|lock| lock.relation.clone()));
        statement.lint_disagreements = found;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relations::RelationKind;
    use crate::report::{Observation, ObservedLock, ObservedRelation};

    fn observed(mode: LockMode, rewrite: bool) -> StatementReport {
        StatementReport {
            index: 0,
            line: 1,
            sql: String::new(),
            observation: Observation::Transaction,
            duration_ms: 0.0,
            locks: vec![ObservedLock {
                relation: "public.users".to_owned(),
                kind: RelationKind::Table,
                table: None,
                mode,
                blocks: Vec::new(),
                held_ms: 0.0,
            }],
            rewrites: rewrite
                .then(|| ObservedRelation {
                    relation: "public.users".to_owned(),
                    kind: RelationKind::Table,
                    table: None,
                })
                .into_iter()
                .collect(),
            scans: Vec::new(),
            estimate: None,
            lint_disagreements: Vec::new(),
        }
    }

    fn predictions(prediction: StatementPrediction) -> Predictions {
        let mut predictions = Predictions::default();
        predictions
            .migrations
            .entry("0001".to_owned())
            .or_default()
            .insert(0, prediction);
        predictions
    }

    fn users() -> TableName {
        TableName {
            schema: None,
            name: "users".to_owned(),
        }
    }

    #[test]
    fn a_feared_rewrite_that_did_not_happen_is_reported() {
        let mut statements = [observed(LockMode::AccessExclusiveLock, false)];
        let prediction = StatementPrediction {
            locks: vec![(users(), LockMode::AccessExclusiveLock)],
            rewrites: vec![users()],
        };
        compare(&predictions(prediction), "0001", true, &mut statements);
        assert_eq!(
            statements[0].lint_disagreements,
            vec!["the linter expected a rewrite of users that did not happen"]
        );
    }

    #[test]
    fn a_missed_rewrite_and_another_lock_mode_are_reported() {
        let mut statements = [observed(LockMode::AccessExclusiveLock, true)];
        let prediction = StatementPrediction {
            locks: vec![(users(), LockMode::ShareLock)],
            rewrites: Vec::new(),
        };
        compare(&predictions(prediction), "0001", true, &mut statements);
        assert_eq!(statements[0].lint_disagreements.len(), 2);
        assert!(
            statements[0].lint_disagreements[1]
                .contains("predicted SHARE on users, observed ACCESS EXCLUSIVE")
        );
    }

    #[test]
    fn a_lock_held_since_an_earlier_statement_is_not_compared() {
        let mut statements = [
            observed(LockMode::AccessExclusiveLock, false),
            observed(LockMode::AccessShareLock, false),
        ];
        statements[1].index = 1;
        statements[1].locks.clear();
        let mut predictions = predictions(StatementPrediction::default());
        predictions.migrations.get_mut("0001").unwrap().insert(
            1,
            StatementPrediction {
                locks: vec![(users(), LockMode::ShareLock)],
                rewrites: Vec::new(),
            },
        );
        compare(&predictions, "0001", true, &mut statements);
        assert!(statements[1].lint_disagreements.is_empty());
        compare(&predictions, "0001", false, &mut statements);
        assert_eq!(statements[1].lint_disagreements.len(), 1);
    }

    #[test]
    fn agreement_and_unlinted_migrations_report_nothing() {
        let mut statements = [observed(LockMode::AccessExclusiveLock, true)];
        let prediction = StatementPrediction {
            locks: vec![(users(), LockMode::AccessExclusiveLock)],
            rewrites: vec![users()],
        };
        compare(&predictions(prediction), "0001", true, &mut statements);
        assert!(statements[0].lint_disagreements.is_empty());
        compare(&Predictions::default(), "0001", true, &mut statements);
        assert!(statements[0].lint_disagreements.is_empty());
    }
}
