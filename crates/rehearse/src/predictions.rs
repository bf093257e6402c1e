//! What the linter predicted for each statement, handed in by the caller (this crate does not
//! run the linter; it shares its lock model), and where the observation disagrees: the
//! observation wins.

use std::collections::BTreeMap;

use serde::Serialize;

use safeshift_lint::{LockMode, TableName};

use crate::report::{Observation, ObservedRelation, StatementReport};

/// Whether a table as a migration names it (the schema optional) is the observed relation.
fn names(predicted: &TableName, observed: &TableName) -> bool {
    predicted.name == observed.name
        && predicted
            .schema
            .as_ref()
            .is_none_or(|schema| Some(schema) == observed.schema.as_ref())
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
/// statement needs on that table cannot be observed and is not compared; nor is a lock a
/// statement outside a transaction was not seen taking (its locks are sampled).
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
    let mut locked_earlier: Vec<TableName> = Vec::new();
    for statement in statements {
        if !transactional {
            locked_earlier.clear();
        }
        let predicted = migration.get(&statement.index).unwrap_or(&nothing);
        let rewritten: Vec<&ObservedRelation> = statement
            .rewrites
            .iter()
            .filter(|r| r.kind.holds_rows())
            .collect();
        let mut found = Vec::new();
        for table in &predicted.rewrites {
            if !rewritten
                .iter()
                .any(|observed| names(table, &observed.qualified))
            {
                found.push(format!(
                    "the linter expected a rewrite of {table} that did not happen"
                ));
            }
        }
        for observed in &rewritten {
            if !predicted
                .rewrites
                .iter()
                .any(|table| names(table, &observed.qualified))
            {
                found.push(format!(
                    "{} was rewritten, which the linter did not predict",
                    observed.relation
                ));
            }
        }
        for (table, mode) in &predicted.locks {
            let strongest = statement
                .locks
                .iter()
                .filter(|lock| lock.table.is_none() && names(table, &lock.qualified))
                .map(|lock| lock.mode)
                .max();
            match strongest {
                Some(observed) if observed == *mode => {}
                Some(observed) => found.push(format!(
                    "the linter predicted {mode} on {table}, observed {observed}"
                )),
                None if locked_earlier.iter().any(|earlier| names(table, earlier)) => {}
                // Sampled from a second connection, a short-lived lock can come and go unseen:
                // not seeing it contradicts nothing.
                None if statement.observation == Observation::SecondConnection => {}
                None => found.push(format!(
                    "the linter predicted {mode} on {table}, observed no new lock"
                )),
            }
        }
        locked_earlier.extend(statement.locks.iter().map(|lock| lock.qualified.clone()));
        statement.lint_disagreements = found;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relations::RelationKind;
    use crate::report::ObservedLock;

    fn observed(mode: LockMode, rewrite: bool) -> StatementReport {
        StatementReport {
            index: 0,
            line: 1,
            sql: String::new(),
            observation: Observation::Transaction,
            duration_ms: 0.0,
            locks: vec![ObservedLock {
                relation: "public.users".to_owned(),
                qualified: TableName::new(Some("public"), "users"),
                kind: RelationKind::Table,
                table: None,
                mode,
                blocks: Vec::new(),
                held_ms: 0.0,
            }],
            rewrites: rewrite
                .then(|| ObservedRelation {
                    relation: "public.users".to_owned(),
                    qualified: TableName::new(Some("public"), "users"),
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
        TableName::new(None, "users")
    }

    #[test]
    fn a_feared_rewrite_that_did_not_happen_is_reported() {
        let mut statements = [observed(LockMode::AccessExclusive, false)];
        let prediction = StatementPrediction {
            locks: vec![(users(), LockMode::AccessExclusive)],
            rewrites: vec![users()],
        };
        compare(&predictions(prediction), "0001", true, &mut statements);
        assert_eq!(
            statements[0].lint_disagreements,
            vec!["the linter expected a rewrite of users that did not happen"]
        );
    }

    #[test]
    fn a_quoted_name_with_a_dot_is_one_name() {
        let odd = TableName::new(Some("odd.schema"), "a.b");
        let mut statements = [observed(LockMode::AccessExclusive, true)];
        for lock in &mut statements[0].locks {
            lock.relation = "\"odd.schema\".\"a.b\"".to_owned();
            lock.qualified = odd.clone();
        }
        for rewrite in &mut statements[0].rewrites {
            rewrite.relation = "\"odd.schema\".\"a.b\"".to_owned();
            rewrite.qualified = odd.clone();
        }
        let prediction = StatementPrediction {
            locks: vec![(odd.clone(), LockMode::AccessExclusive)],
            rewrites: vec![odd],
        };
        compare(&predictions(prediction), "0001", true, &mut statements);
        assert!(
            statements[0].lint_disagreements.is_empty(),
            "{:?}",
            statements[0].lint_disagreements
        );
    }

    #[test]
    fn a_missed_rewrite_and_another_lock_mode_are_reported() {
        let mut statements = [observed(LockMode::AccessExclusive, true)];
        let prediction = StatementPrediction {
            locks: vec![(users(), LockMode::Share)],
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
            observed(LockMode::AccessExclusive, false),
            observed(LockMode::AccessShare, false),
        ];
        statements[1].index = 1;
        statements[1].locks.clear();
        let mut predictions = predictions(StatementPrediction::default());
        predictions.migrations.get_mut("0001").unwrap().insert(
            1,
            StatementPrediction {
                locks: vec![(users(), LockMode::Share)],
                rewrites: Vec::new(),
            },
        );
        compare(&predictions, "0001", true, &mut statements);
        assert!(statements[1].lint_disagreements.is_empty());
        compare(&predictions, "0001", false, &mut statements);
        assert_eq!(statements[1].lint_disagreements.len(), 1);
    }

    #[test]
    fn a_lock_a_sampling_connection_did_not_see_is_not_a_disagreement() {
        // CREATE INDEX CONCURRENTLY on a small table: its lock comes and goes between samples.
        let mut statements = [observed(LockMode::ShareUpdateExclusive, false)];
        statements[0].observation = Observation::SecondConnection;
        statements[0].locks.clear();
        let prediction = StatementPrediction {
            locks: vec![(users(), LockMode::ShareUpdateExclusive)],
            rewrites: Vec::new(),
        };
        compare(
            &predictions(prediction.clone()),
            "0001",
            false,
            &mut statements,
        );
        assert!(
            statements[0].lint_disagreements.is_empty(),
            "{:?}",
            statements[0].lint_disagreements
        );
        // A lock it did see, in another mode, still is.
        let mut statements = [observed(LockMode::AccessExclusive, false)];
        statements[0].observation = Observation::SecondConnection;
        compare(&predictions(prediction), "0001", false, &mut statements);
        assert_eq!(statements[0].lint_disagreements.len(), 1);
    }

    #[test]
    fn agreement_and_unlinted_migrations_report_nothing() {
        let mut statements = [observed(LockMode::AccessExclusive, true)];
        let prediction = StatementPrediction {
            locks: vec![(users(), LockMode::AccessExclusive)],
            rewrites: vec![users()],
        };
        compare(&predictions(prediction), "0001", true, &mut statements);
        assert!(statements[0].lint_disagreements.is_empty());
        compare(&Predictions::default(), "0001", true, &mut statements);
        assert!(statements[0].lint_disagreements.is_empty());
    }
}
