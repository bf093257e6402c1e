//! The result of a lint run: per file, its findings, diagnostics and overall risk; and a summary.

use std::path::PathBuf;

use safeshift_source::SourceText;
use serde::Serialize;

use crate::context::Execution;
use crate::finding::{Diagnostic, Finding, Severity};
use crate::risk::Risk;

/// One linted file (a migration's up section, or a loose SQL file).
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// The path as given, or as found in the migrations directory.
    pub path: PathBuf,
    /// The migration's version, when the file is part of a migrations directory.
    pub version: Option<String>,
    pub execution: Execution,
    /// Statements in the file.
    pub statements: usize,
    /// Findings, in file order; acknowledged ones carry their reason in `suppressed`.
    pub findings: Vec<Finding>,
    pub diagnostics: Vec<Diagnostic>,
    /// The normalised file text, for rendering snippets.
    #[serde(skip)]
    pub source: Option<SourceText>,
}

impl FileReport {
    /// The highest risk among the findings not acknowledged; `None` when there are none.
    pub fn risk(&self) -> Option<Risk> {
        self.active_findings().map(|f| f.risk).max()
    }

    /// Whether a finding at or above `threshold` remains, or the file has errors.
    pub fn fails(&self, threshold: Risk) -> bool {
        self.errors().next().is_some() || self.active_findings().any(|f| f.risk >= threshold)
    }

    /// Findings not acknowledged by a suppression.
    pub fn active_findings(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| !f.is_suppressed())
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }
}

/// Everything a lint run found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LintReport {
    pub files: Vec<FileReport>,
}

/// Counts for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub files: usize,
    pub statements: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    pub suppressed: usize,
    pub errors: usize,
    pub warnings: usize,
    /// The highest risk of any file.
    pub risk: Option<Risk>,
}

impl LintReport {
    pub fn summary(&self) -> Summary {
        let mut summary = Summary {
            files: self.files.len(),
            ..Summary::default()
        };
        for file in &self.files {
            summary.statements += file.statements;
            for finding in &file.findings {
                match (&finding.suppressed, finding.risk) {
                    (Some(_), _) => summary.suppressed += 1,
                    (None, Risk::High) => summary.high += 1,
                    (None, Risk::Medium) => summary.medium += 1,
                    (None, Risk::Low) => summary.low += 1,
                }
            }
            for diagnostic in &file.diagnostics {
                match diagnostic.severity {
                    Severity::Error => summary.errors += 1,
                    Severity::Warning => summary.warnings += 1,
                }
            }
            summary.risk = summary.risk.max(file.risk());
        }
        summary
    }

    /// Whether a finding at or above `threshold` remains, or the files have errors.
    pub fn fails(&self, threshold: Risk) -> bool {
        self.files.iter().any(|file| file.fails(threshold))
    }

    /// Every active finding with its file.
    pub fn active_findings(&self) -> impl Iterator<Item = (&FileReport, &Finding)> {
        self.files
            .iter()
            .flat_map(|file| file.active_findings().map(move |f| (file, f)))
    }
}
