//! A migration and its up and down sections.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::checksum::Checksum;
use crate::error::{SourceError, SourceErrorKind};
use crate::options::{Direction, SectionOptions};
use crate::statements::{self, Dialect, Statement, Transactionality};
use crate::text::SourceText;
use crate::version::Version;

/// How a migration's files are laid out on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// One file with `-- migrate:up` and `-- migrate:down` sections (dbmate's format).
    Sections,
    /// `{version}_{name}.up.sql` and `.down.sql` (golang-migrate, sqlx).
    Pair,
    /// `{version}_{name}.sql` with `rollback/{version}_rollback_{name}.sql` beside it.
    RollbackDirectory,
}

/// One versioned migration.
#[derive(Debug, Clone)]
pub struct Migration {
    pub version: Version,
    /// The description from the file name (`add_idempotency_tables`).
    pub name: String,
    pub layout: Layout,
    pub up: Section,
    /// The down section or file, if there is one (possibly empty: see [`Section::is_empty`]).
    pub down: Option<Section>,
}

/// Why a migration cannot be rolled back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MissingDown {
    /// The migration has no down section or file.
    Absent,
    /// It has one, with no statements in it.
    Empty,
}

impl Migration {
    /// The up file's path relative to the migrations directory, as recorded in the history.
    pub fn file(&self) -> &Path {
        &self.up.relative_path
    }

    /// The down section, if it has statements.
    pub fn down_section(&self) -> Result<&Section, MissingDown> {
        match &self.down {
            None => Err(MissingDown::Absent),
            Some(section) if section.is_empty() => Err(MissingDown::Empty),
            Some(section) => Ok(section),
        }
    }

    /// The section for a direction.
    pub fn section(&self, direction: Direction) -> Option<&Section> {
        match direction {
            Direction::Up => Some(&self.up),
            Direction::Down => self.down_section().ok(),
        }
    }
}

/// The up or down part of a migration: where it is, its options and its text.
#[derive(Debug, Clone)]
pub struct Section {
    pub direction: Direction,
    /// The file's path as found (the migrations directory joined with the file name).
    pub path: PathBuf,
    /// The file's path relative to the migrations directory.
    pub relative_path: PathBuf,
    pub options: SectionOptions,
    /// 1-based line of the section marker, when there is one.
    pub marker_line: Option<u32>,
    /// SHA-256 of the section (marker line included) after normalisation.
    pub checksum: Checksum,
    pub(crate) source: SourceText,
    /// Byte range of the section body (after the marker line) in the file text.
    pub(crate) body: Range<usize>,
    pub(crate) empty: bool,
}

impl Section {
    /// The body: the SQL after the marker line.
    pub fn sql(&self) -> &str {
        &self.source.as_str()[self.body.clone()]
    }

    /// The whole normalised text of the file the section is in.
    pub fn file_text(&self) -> &SourceText {
        &self.source
    }

    /// 1-based line where the body starts.
    pub fn body_line(&self) -> u32 {
        self.source.line_col(self.body.start).0
    }

    /// Whether the body holds no statements (only whitespace and comments).
    pub fn is_empty(&self) -> bool {
        self.empty
    }

    /// The section's statements, split for `dialect`.
    pub fn statements(&self, dialect: Dialect) -> Result<Vec<Statement>, SourceError> {
        statements::split(&self.path, &self.source, self.body.clone(), dialect)
    }

    /// The statements, checked against the section's transaction mode: in a transactional
    /// section, a statement that must run outside a transaction, or that begins or ends one, is an
    /// error that says how to fix the file.
    pub fn executable_statements(&self, dialect: Dialect) -> Result<Vec<Statement>, SourceError> {
        let statements = self.statements(dialect)?;
        if self.options.transaction {
            for statement in &statements {
                self.check_fits_transaction(statement)?;
            }
        }
        Ok(statements)
    }

    fn check_fits_transaction(&self, statement: &Statement) -> Result<(), SourceError> {
        let marker = match self.marker_line {
            Some(line) => format!(
                "add transaction:false to the marker on line {line}: `-- migrate:{} transaction:false`",
                self.direction
            ),
            None => format!(
                "add a first line `-- migrate:{} transaction:false` to the file",
                self.direction
            ),
        };
        let (message, help) = match &statement.transactionality {
            Transactionality::Any => return Ok(()),
            Transactionality::OutsideTransaction { what, reason } => (
                format!("`{what}` {reason}, and this migration runs in one transaction"),
                format!(
                    "{marker}; safeshift then sends each statement on its own and records progress after each, \
                     so a failure resumes from the failed statement. Keep such statements in a migration of their own."
                ),
            ),
            Transactionality::TransactionControl { what } => (
                format!(
                    "`{what}` controls the transaction, but safeshift already runs this migration in one"
                ),
                format!(
                    "remove the statement (each migration is one transaction), or {marker} to manage transactions yourself"
                ),
            ),
        };
        Err(
            SourceError::new(SourceErrorKind::TransactionMode, &self.path, message)
                .at(statement.line, statement.column)
                .help(help),
        )
    }
}
