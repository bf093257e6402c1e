//! Rendering errors for people: the file and line with a snippet, what went wrong, and what to
//! do next.

use std::io::IsTerminal;
use std::path::Path;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, NamedSource, Report,
};

use safeshift_driver::DriverError;
use safeshift_runner::{FailedStatement, RunError};
use safeshift_source::{SourceError, SourceText};

use crate::exit::CliError;
use crate::output::{BOLD, RED, err, styled};

/// Prints an error to stderr.
pub fn report(error: &CliError) {
    match error {
        CliError::Usage { message, help } => plain(message, help.as_deref()),
        CliError::Source(errors) => {
            for error in errors.iter() {
                source_error(error);
            }
            if errors.0.len() > 1 {
                err(format!(
                    "{} problems in the migration files; nothing was applied",
                    errors.0.len()
                ));
            }
        }
        CliError::Database(error) => database_error(error, None),
        CliError::Run(error) => run_error(error),
        CliError::Guard(guard) => plain(&guard.message, guard.help.as_deref()),
    }
}

fn plain(message: &str, help: Option<&str>) {
    err(format!("{}: {message}", styled(RED, "error")));
    if let Some(help) = help {
        for (i, line) in help.lines().enumerate() {
            err(format!(
                "  {} {line}",
                if i == 0 {
                    styled(BOLD, "help:")
                } else {
                    "     ".to_owned()
                }
            ));
        }
    }
}

fn database_error(error: &DriverError, context: Option<&str>) {
    let message = match context {
        Some(context) => format!("{context}: {error}"),
        None => error.to_string(),
    };
    let (message, hint) = match (&error.hint, message.split_once("\nhint: ")) {
        (Some(_), Some((before, hint))) => (before.to_owned(), Some(hint.to_owned())),
        _ => (message, None),
    };
    plain(&message, hint.as_deref());
}

fn handler() -> GraphicalReportHandler {
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let theme = if colour {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_context_lines(1)
}

/// Renders a diagnostic with a labelled span in a file; falls back to plain text when the file
/// cannot be read.
fn located(
    path: &Path,
    message: &str,
    span: Option<(usize, usize)>,
    label: &str,
    help: Option<&str>,
    text: Option<String>,
) {
    let text = text.or_else(|| {
        std::fs::read(path)
            .ok()
            .and_then(|bytes| SourceText::from_bytes(path, &bytes).ok())
            .map(|t| t.as_str().to_owned())
    });
    let (Some(text), Some((start, length))) = (text, span) else {
        plain(&format!("{}: {message}", path.display()), help);
        return;
    };
    let mut diagnostic =
        MietteDiagnostic::new(message.to_owned()).with_labels([LabeledSpan::new_with_span(
            Some(label.to_owned()),
            (start.min(text.len()), length),
        )]);
    if let Some(help) = help {
        diagnostic = diagnostic.with_help(help.to_owned());
    }
    let report = Report::new(diagnostic)
        .with_source_code(NamedSource::new(path.display().to_string(), text));
    let mut rendered = String::new();
    if handler()
        .render_report(&mut rendered, report.as_ref())
        .is_ok()
    {
        err(rendered.trim_end());
    } else {
        plain(message, help);
    }
}

/// Byte offset of a 1-based line and column in normalised file text.
fn offset_of(text: &SourceText, line: u32, column: u32) -> usize {
    let start = text.line_start(line);
    let rest = &text.as_str()[start..];
    start
        + rest
            .char_indices()
            .nth(column.saturating_sub(1) as usize)
            .map_or(rest.len(), |(i, _)| i)
}

pub fn source_error(error: &SourceError) {
    let (Some(line), Some(text)) = (error.line, read_lossy(&error.path)) else {
        plain(&error.to_string(), error.help.as_deref());
        return;
    };
    let start = offset_of(&text, line, error.column.unwrap_or(1));
    let line_end = text.as_str()[start..]
        .find('\n')
        .map_or(text.as_str().len(), |i| start + i);
    let length = (line_end - start).clamp(1, 80);
    located(
        &error.path,
        &error.message,
        Some((start, length)),
        "here",
        error.help.as_deref(),
        Some(text.as_str().to_owned()),
    );
}

/// A file's normalised text; in a file that is not UTF-8 the bytes that are not are shown
/// escaped (`\xE9`), so the line holding one can still be shown, with the byte itself.
fn read_lossy(path: &Path) -> Option<SourceText> {
    let bytes = std::fs::read(path).ok()?;
    SourceText::from_bytes(path, &bytes)
        .or_else(|_| SourceText::from_bytes(path, escape_invalid_utf8(&bytes).as_bytes()))
        .ok()
}

fn escape_invalid_utf8(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        for byte in chunk.invalid() {
            text.push_str(&format!("\\x{byte:02X}"));
        }
    }
    text
}

fn run_error(error: &RunError) {
    let help = error.help();
    match error {
        RunError::Source(errors) => report(&CliError::Source(errors.clone())),
        RunError::Statements(error) => source_error(error),
        RunError::Database(error) => database_error(error, None),
        RunError::MigrationFailed {
            version,
            file,
            direction,
            statement,
            error: cause,
            attempts,
            ..
        } => {
            let attempts_note = if *attempts > 1 {
                format!(" after {attempts} attempts")
            } else {
                String::new()
            };
            let message = match statement {
                Some(s) => format!(
                    "migration {version} ({direction}) failed at statement {} of {}{attempts_note}: {}",
                    s.number, s.total, cause.message
                ),
                None => format!(
                    "migration {version} ({direction}) failed{attempts_note}: {}",
                    cause.message
                ),
            };
            let mut help_text = String::new();
            if let Some(detail) = &cause.detail {
                help_text.push_str(&format!("detail: {detail}\n"));
            }
            help_text.push_str(&help.unwrap_or_default());
            let label = cause
                .code_label()
                .unwrap_or_else(|| "failed here".to_owned());
            match statement {
                Some(statement) => located(
                    file,
                    &message,
                    statement_span(file, statement, cause.position),
                    &label,
                    Some(&help_text),
                    None,
                ),
                None => plain(&message, Some(&help_text)),
            }
        }
        RunError::ChecksumMismatch(mismatches) => {
            err(format!("{}: {error}", styled(RED, "error")));
            for mismatch in mismatches {
                err(format!(
                    "  {} (version {})",
                    mismatch.file.display(),
                    mismatch.version
                ));
                err(format!("    recorded {}", mismatch.recorded));
                err(format!("    now      {}", mismatch.current));
            }
            plain_help(help.as_deref());
        }
        RunError::MissingDown(missing) => {
            err(format!(
                "{}: cannot roll back; nothing was run",
                styled(RED, "error")
            ));
            for (version, why) in missing {
                err(format!("  {version}: {why}"));
            }
            plain_help(help.as_deref());
        }
        RunError::LockTimeout { waited, holder } => {
            let holder = holder
                .as_ref()
                .map_or_else(|| "an unknown holder".to_owned(), |h| h.description.clone());
            plain(
                &format!(
                    "gave up after {} waiting for the run lock, held by {holder}",
                    humantime::format_duration(round(*waited))
                ),
                help.as_deref(),
            );
        }
        other => plain(&other.to_string(), help.as_deref()),
    }
}

fn plain_help(help: Option<&str>) {
    if let Some(help) = help {
        err(format!("  {} {help}", styled(BOLD, "help:")));
    }
}

fn round(duration: std::time::Duration) -> std::time::Duration {
    std::time::Duration::from_secs(duration.as_secs())
}

/// The span to underline for a failed statement: the character the server pointed at (to the
/// end of its word), or the statement's first line.
fn statement_span(
    path: &Path,
    statement: &FailedStatement,
    position: Option<u32>,
) -> Option<(usize, usize)> {
    let text = read_lossy(path)?;
    let start = offset_of(&text, statement.line, statement.column);
    if !text.as_str()[start..].starts_with(&statement.sql) {
        return None;
    }
    match position {
        Some(position) => {
            let mut characters = statement.sql.char_indices();
            let offset = match characters.nth(position.saturating_sub(1) as usize) {
                Some((i, _)) => i,
                // "at end of input": where the statement stops.
                None => statement.sql.char_indices().last().map(|(i, _)| i)?,
            };
            let word = statement.sql[offset..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '"' || c == '.'))
                .unwrap_or(statement.sql.len() - offset)
                .max(1);
            Some((start + offset, word))
        }
        None => Some((start, first_line(&statement.sql).len().max(1))),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}
