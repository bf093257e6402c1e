//! The one evaluation `safeshift lint`, `plan` and `up` share, and the lock model's prediction
//! `rehearse` compares with what it observes.

use safeshift_source::MigrationSet;

use crate::effects::StatementEffects;
use crate::linter::{AppliedMigrations, Linter, Scope};
use crate::policy::Grading;
use crate::report::LintReport;
use crate::size::TableStatistics;

/// The result of [`Linter::evaluate`]: the findings of the migrations in scope, graded.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub report: LintReport,
    /// Whether table sizes graded the findings.
    pub grading: Grading,
}

impl Linter {
    /// The evaluation `safeshift lint`, `plan` and `up` share, so they grade the same migrations
    /// identically: lints the migrations of `scope` with the whole history read for context,
    /// then grades the findings by the risk policy with the sizes `statistics` reads from the
    /// database (one lookup for all of them), or without sizes when there is none.
    pub fn evaluate(
        &self,
        set: &MigrationSet,
        applied: Option<&AppliedMigrations>,
        scope: &Scope,
        statistics: Option<&mut dyn TableStatistics>,
    ) -> Evaluation {
        let mut report = self.lint_set(set, applied, scope);
        let grading = self.grade(&mut report, statistics);
        Evaluation { report, grading }
    }

    /// Grades a report's findings by this linter's risk policy: with the sizes `statistics`
    /// reads, or without sizes (each finding keeps its rule's risk, raised to its floor).
    pub fn grade(
        &self,
        report: &mut LintReport,
        statistics: Option<&mut dyn TableStatistics>,
    ) -> Grading {
        match statistics {
            Some(statistics) => crate::policy::grade(report, &self.options().policy, statistics),
            None => Grading::FilesAlone,
        }
    }

    /// The lock model's claim for every statement of the migrations in `scope` (the history
    /// read for context), by version: the locks each statement takes on tables in use and the
    /// tables it rewrites. What `rehearse` compares its observations with, statement by
    /// statement, whatever the findings.
    pub fn predict(
        &self,
        set: &MigrationSet,
        applied: Option<&AppliedMigrations>,
        scope: &Scope,
    ) -> Vec<(String, Vec<StatementEffects>)> {
        let mut predictions = Vec::new();
        self.walk_set(set, applied, scope, |visit| {
            let mut effects = Vec::new();
            let report = self.lint_parsed(
                &visit.migration.up,
                visit.parsed,
                visit.execution,
                visit.schema,
                false,
                &visit.history,
                Some(&mut effects),
            );
            if visit.reported && report.errors().next().is_none() {
                predictions.push((visit.migration.version.as_str().to_owned(), effects));
            }
        });
        predictions
    }
}
