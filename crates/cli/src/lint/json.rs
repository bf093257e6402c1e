//! `--format json`: a list of findings, each with its file, position, rule, risk, lock, help and
//! its file's overall risk; a file's problems (a statement that does not parse, a bad
//! suppression) are in the list too, as `kind` `error` or `warning`.
//!
//! `--format json-report`: the whole report as one object: the findings, every file with its
//! overall risk, the diagnostics, the summary, and with `--fix` what was rewritten.
//!
//! Both are serialised straight from typed records (no intermediate JSON tree): a large corpus
//! renders in a fraction of the linting time.

use serde::Serialize;

use safeshift_lint::{
    Blocks, DiagnosticKind, Execution, FileFix, FileReport, Finding, LeftAlone, LintReport,
    LockMode, Rewrite, Risk, Severity, SizeEstimate, Summary,
};

#[derive(Serialize)]
struct Report<'a> {
    findings: Vec<FindingRecord<'a>>,
    files: Vec<FileRecord<'a>>,
    diagnostics: Vec<DiagnosticRecord<'a>>,
    summary: Summary,
    /// With `--fix`: what was rewritten and what was left alone, per file.
    #[serde(skip_serializing_if = "Option::is_none")]
    fixes: Option<Vec<FixRecord<'a>>>,
}

#[derive(Serialize)]
struct FixRecord<'a> {
    file: String,
    version: Option<&'a str>,
    /// Whether the file was written.
    rewritten: bool,
    rewrites: &'a [Rewrite],
    section_change: Option<&'a str>,
    warnings: &'a [String],
    left_alone: &'a [LeftAlone],
}

#[derive(Serialize)]
struct FindingRecord<'a> {
    /// `finding`, or for a problem with the file itself, `error` or `warning`.
    kind: &'static str,
    file: &'a str,
    line: u32,
    column: u32,
    end_line: u32,
    end_column: u32,
    rule: &'a str,
    risk: Risk,
    message: &'a str,
    lock: Option<LockMode>,
    blocks: Option<Blocks>,
    tables: &'a [String],
    rewrite: bool,
    help: &'a str,
    safe_alternative: Option<&'a str>,
    estimate: Option<&'a SizeEstimate>,
    suppressed: Option<&'a str>,
    file_risk: Option<Risk>,
}

#[derive(Serialize)]
struct FileRecord<'a> {
    file: &'a str,
    version: Option<&'a str>,
    risk: Option<Risk>,
    statements: usize,
    execution: Execution,
    findings: usize,
}

#[derive(Serialize)]
struct DiagnosticRecord<'a> {
    file: &'a str,
    line: u32,
    column: u32,
    severity: Severity,
    kind: DiagnosticKind,
    message: &'a str,
    help: Option<&'a str>,
}

/// `--format json`, indented.
pub fn render(report: &LintReport) -> String {
    let mut bytes = Vec::new();
    let _ = write_list(report, &mut bytes, true);
    String::from_utf8(bytes).unwrap_or_default()
}

/// `--format json-report`, indented.
pub fn render_report(report: &LintReport) -> String {
    let mut bytes = Vec::new();
    let _ = write(report, None, &mut bytes, true);
    String::from_utf8(bytes).unwrap_or_default()
}

/// Writes the list of findings as JSON to `out`: indented when `pretty`, else one line. A file's
/// problems (parse errors, bad suppressions) are entries too, of `kind` `error` (risk `high`:
/// they fail the run) or `warning` (risk `low`); each file's entries are in source order.
pub fn write_list(
    report: &LintReport,
    out: &mut impl std::io::Write,
    pretty: bool,
) -> std::io::Result<()> {
    if !pretty {
        let mut list = ListWriter::new(out)?;
        for file in &report.files {
            list.file(file)?;
        }
        return list.finish();
    }
    let paths: Vec<String> = report.files.iter().map(super::display_path).collect();
    let mut records = Vec::new();
    for (file, path) in report.files.iter().zip(&paths) {
        records.extend(file_records(file, path));
    }
    serde_json::to_writer_pretty(&mut *out, &records).map_err(std::io::Error::other)?;
    out.write_all(b"\n")
}

/// `--format json` on one line, written a file at a time as files are linted: the same bytes
/// [`write_list`] writes for the whole report, without holding the report.
pub struct ListWriter<W: std::io::Write> {
    out: W,
    first: bool,
}

impl<W: std::io::Write> ListWriter<W> {
    pub fn new(mut out: W) -> std::io::Result<ListWriter<W>> {
        out.write_all(b"[")?;
        Ok(ListWriter { out, first: true })
    }

    /// Writes the entries of one file.
    pub fn file(&mut self, file: &FileReport) -> std::io::Result<()> {
        let path = super::display_path(file);
        for record in file_records(file, &path) {
            if !std::mem::take(&mut self.first) {
                self.out.write_all(b",")?;
            }
            serde_json::to_writer(&mut self.out, &record).map_err(std::io::Error::other)?;
        }
        Ok(())
    }

    /// Closes the list and flushes it.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.out.write_all(b"]\n")?;
        self.out.flush()
    }
}

/// One file's entries of the list, in source order: its problems, then its findings.
fn file_records<'a>(file: &'a FileReport, path: &'a str) -> Vec<FindingRecord<'a>> {
    let risk = file.risk();
    let mut records = Vec::with_capacity(file.diagnostics.len() + file.findings.len());
    for diagnostic in &file.diagnostics {
        let (end_line, end_column) = diagnostic
            .span
            .as_ref()
            .and_then(|span| super::end_position(file, span))
            .unwrap_or((diagnostic.line, diagnostic.column));
        let error = diagnostic.severity == Severity::Error;
        records.push(FindingRecord {
            kind: if error { "error" } else { "warning" },
            file: path,
            line: diagnostic.line,
            column: diagnostic.column,
            end_line,
            end_column,
            rule: diagnostic_rule(diagnostic.kind),
            risk: if error { Risk::High } else { Risk::Low },
            message: &diagnostic.message,
            lock: None,
            blocks: None,
            tables: &[],
            rewrite: false,
            help: diagnostic.help.as_deref().unwrap_or(""),
            safe_alternative: None,
            estimate: None,
            suppressed: None,
            file_risk: risk,
        });
    }
    records.extend(
        file.findings
            .iter()
            .map(|finding| finding_record(file, path, risk, finding)),
    );
    records.sort_by_key(|record| (record.line, record.column));
    records
}

/// The `rule` of a file problem in the list: its kind.
fn diagnostic_rule(kind: DiagnosticKind) -> &'static str {
    match kind {
        DiagnosticKind::ParseError => "parse-error",
        DiagnosticKind::SourceError => "source-error",
        DiagnosticKind::UnknownRule => "unknown-rule",
        DiagnosticKind::MissingReason => "missing-reason",
        DiagnosticKind::UnusedSuppression => "unused-suppression",
    }
}

/// Writes the report as JSON to `out`: indented when `pretty`, else one line (what programs read,
/// at half the size). `fixes` (from `--fix`) adds a `fixes` array.
pub fn write(
    report: &LintReport,
    fixes: Option<&[FileFix]>,
    out: &mut impl std::io::Write,
    pretty: bool,
) -> std::io::Result<()> {
    let paths: Vec<String> = report.files.iter().map(super::display_path).collect();
    let risks: Vec<Option<Risk>> = report.files.iter().map(FileReport::risk).collect();
    let mut findings = Vec::new();
    let mut diagnostics = Vec::new();
    for ((file, path), risk) in report.files.iter().zip(&paths).zip(&risks) {
        findings.extend(
            file.findings
                .iter()
                .map(|finding| finding_record(file, path, *risk, finding)),
        );
        diagnostics.extend(file.diagnostics.iter().map(|d| DiagnosticRecord {
            file: path,
            line: d.line,
            column: d.column,
            severity: d.severity,
            kind: d.kind,
            message: &d.message,
            help: d.help.as_deref(),
        }));
    }
    let files = report
        .files
        .iter()
        .zip(&paths)
        .zip(&risks)
        .map(|((file, path), risk)| FileRecord {
            file: path,
            version: file.version.as_deref(),
            risk: *risk,
            statements: file.statements,
            execution: file.execution,
            findings: file.active_findings().count(),
        })
        .collect();
    let value = Report {
        findings,
        files,
        diagnostics,
        summary: report.summary(),
        fixes: fixes.map(|fixes| {
            fixes
                .iter()
                .map(|fix| FixRecord {
                    file: fix.path.display().to_string().replace('\\', "/"),
                    version: fix.version.as_deref(),
                    rewritten: fix.fixed.is_some(),
                    rewrites: &fix.rewrites,
                    section_change: fix.section_change.as_deref(),
                    warnings: &fix.warnings,
                    left_alone: &fix.left_alone,
                })
                .collect()
        }),
    };
    let written = if pretty {
        serde_json::to_writer_pretty(&mut *out, &value)
    } else {
        serde_json::to_writer(&mut *out, &value)
    };
    written.map_err(std::io::Error::other)?;
    out.write_all(b"\n")
}

fn finding_record<'a>(
    file: &'a FileReport,
    path: &'a str,
    file_risk: Option<Risk>,
    finding: &'a Finding,
) -> FindingRecord<'a> {
    let (end_line, end_column) =
        super::end_position(file, &finding.span).unwrap_or((finding.line, finding.column));
    FindingRecord {
        kind: "finding",
        file: path,
        line: finding.line,
        column: finding.column,
        end_line,
        end_column,
        rule: finding.rule.as_str(),
        risk: finding.risk,
        message: &finding.message,
        lock: finding.lock,
        blocks: finding.blocks,
        tables: &finding.tables,
        rewrite: finding.rewrite,
        help: finding.help,
        safe_alternative: finding.safe_alternative.as_deref(),
        estimate: finding.estimate.as_ref(),
        suppressed: finding.suppressed.as_deref(),
        file_risk,
    }
}
