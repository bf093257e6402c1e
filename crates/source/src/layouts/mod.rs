//! Other tools' layouts, read as they are: one module per tool. Each turns the tool's files
//! into [`crate::Migration`]s with up and down sections, following the tool's own rules for
//! sections, transactions and ordering, and reports what it cannot follow as a
//! [`crate::SourceError`] naming the file and line.

pub(crate) mod diesel;
pub(crate) mod flyway;
pub(crate) mod goose;
pub(crate) mod plain;
pub(crate) mod prisma;
pub(crate) mod sqitch;

use std::path::Path;

use crate::error::{SourceError, SourceErrorKind};
use crate::template::{self, FileText, Variables};
use crate::text::SourceText;

/// Reads a file as normalised text, with Go template placeholders expanded.
pub(crate) fn read_file(path: &Path, variables: &Variables) -> Result<FileText, SourceError> {
    let bytes = std::fs::read(path).map_err(|error| {
        SourceError::new(
            SourceErrorKind::Io,
            path,
            format!("cannot read the file: {error}"),
        )
    })?;
    let text = SourceText::from_bytes(path, &bytes)?;
    template::expand_go_templates(path, FileText::plain(text), variables)
}

/// A file that must hold SQL and holds only whitespace.
pub(crate) fn empty_file_error(path: &Path) -> SourceError {
    SourceError::new(SourceErrorKind::Empty, path, "the file is empty")
        .help("write the migration, or delete the file")
}

/// A psql meta-command (`\i file.sql`, `\set`) in a file another tool ran through psql.
pub(crate) fn refuse_psql_meta_commands(path: &Path, file: &FileText) -> Result<(), SourceError> {
    for (line, range) in file.text.lines() {
        let text = &file.text.as_str()[range];
        if let Some(command) = text.trim_start().strip_prefix('\\') {
            let word = command.split_whitespace().next().unwrap_or("");
            return Err(SourceError::new(
                SourceErrorKind::Layout,
                path,
                format!("`\\{word}` is a psql meta-command, which only psql understands"),
            )
            .at_line(line)
            .help("safeshift sends SQL to the server itself; write out what the command does (for `\\i`, the included file's SQL) in the script"));
        }
    }
    Ok(())
}

/// The entries of a directory, sorted by name, without hidden ones (`.git`, `.keep`) and
/// without names that are not UTF-8.
pub(crate) fn sorted_entries(
    directory: &Path,
) -> Result<Vec<(String, std::path::PathBuf)>, SourceError> {
    let entries = std::fs::read_dir(directory).map_err(|error| {
        let error = SourceError::new(
            SourceErrorKind::Io,
            directory,
            format!("cannot read the migrations directory: {error}"),
        );
        if directory.exists() {
            error
        } else {
            error.help(
                "point safeshift at your migrations with --dir or `directory` in safeshift.toml",
            )
        }
    })?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| {
            SourceError::new(
                SourceErrorKind::Io,
                directory,
                format!("cannot list the directory: {error}"),
            )
        })?;
        if let Some(name) = entry.file_name().to_str()
            && !name.starts_with('.')
        {
            names.push((name.to_owned(), entry.path()));
        }
    }
    names.sort();
    Ok(names)
}

/// Whether a file's SQL holds a statement that cannot run inside a transaction block
/// (`CREATE INDEX CONCURRENTLY`, `VACUUM`…), for the tools that notice such statements and run
/// them outside a transaction themselves. With `only_statement`, it must be the file's only
/// statement (a multi-statement query string is one implicit transaction on PostgreSQL).
pub(crate) fn needs_no_transaction(
    path: &Path,
    file: &FileText,
    only_statement: bool,
) -> Result<bool, SourceError> {
    let lower = file.text.as_str().to_ascii_lowercase();
    let candidates = [
        "concurrently",
        "vacuum",
        "alter system",
        "database",
        "tablespace",
        "subscription",
        "reindex",
        "cluster",
        "prepared",
    ];
    if !candidates.iter().any(|word| lower.contains(word)) {
        return Ok(false);
    }
    let end = file.text.as_str().len();
    let statements = crate::statements::split(
        path,
        &file.text,
        0..end,
        crate::statements::Dialect::Postgres,
    )?;
    let outside = |statement: &crate::statements::Statement| {
        matches!(
            statement.transactionality,
            crate::statements::Transactionality::OutsideTransaction { .. }
        )
    };
    Ok(if only_statement {
        statements.len() == 1 && outside(&statements[0])
    } else {
        statements.iter().any(outside)
    })
}
