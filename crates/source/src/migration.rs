//! A migration and its up and down sections.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::checksum::Checksum;
use crate::error::{SourceError, SourceErrorKind};
use crate::format::Format;
use crate::options::{Direction, SectionOptions};
use crate::statements::{self, Dialect, Statement, Transactionality, has_code};
use crate::template::FileText;
use crate::text::SourceText;
use crate::version::Version;

/// How a migration's files are laid out on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// One file with `-- migrate:up` and `-- migrate:down` sections (dbmate's format).
    Sections,
    /// `{version}_{name}.up.sql` and `.down.sql` (golang-migrate, sqlx).
    Pair,
    /// `{version}_{name}.sql` with `rollback/{version}_rollback_{name}.sql` beside it.
    RollbackDirectory,
    /// One file with `-- +goose Up` and `-- +goose Down` annotations.
    Goose,
    /// Flyway's `V{version}__{description}.sql`, with `U{version}__….sql` as its undo; or a
    /// repeatable `R__{description}.sql`.
    Flyway,
    /// A diesel directory `{version}_{name}/` with `up.sql`, `down.sql` and `metadata.toml`.
    Diesel,
    /// A Prisma directory `{version}_{name}/` with `migration.sql` (and, for safeshift, an
    /// optional `down.sql`).
    Prisma,
    /// A sqitch change: a line of `sqitch.plan` with `deploy/`, `revert/` and `verify/` scripts.
    Sqitch,
    /// A hand-run file: `-- Up migration` and `-- Down migration` comments, or no sections at all.
    Plain,
}

impl Layout {
    /// The tool whose layout this is.
    pub fn format(self) -> Format {
        match self {
            Layout::Sections | Layout::Pair | Layout::RollbackDirectory => Format::Safeshift,
            Layout::Goose => Format::Goose,
            Layout::Flyway => Format::Flyway,
            Layout::Diesel => Format::Diesel,
            Layout::Prisma => Format::Prisma,
            Layout::Sqitch => Format::Sqitch,
            Layout::Plain => Format::Plain,
        }
    }
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
    /// Statements that check the up section worked, run right after it (sqitch's verify
    /// script); a failure fails the migration.
    pub verify: Option<Section>,
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

    /// What a rollback of this migration is, in its layout, for messages about a missing one
    /// (`a -- migrate:down section`, `revert/users.sql`).
    pub fn rollback_description(&self) -> String {
        let beside = |name: &str| {
            self.up
                .path
                .parent()
                .map(|dir| dir.join(name).display().to_string())
                .unwrap_or_else(|| name.to_owned())
        };
        match self.layout {
            Layout::Sections | Layout::RollbackDirectory => {
                "a `-- migrate:down` section (or a file in rollback/)".to_owned()
            }
            Layout::Pair => format!("{}_{}.down.sql", self.version, self.name),
            Layout::Goose => "a `-- +goose Down` section".to_owned(),
            Layout::Plain => "a `-- Down Migration` part".to_owned(),
            Layout::Flyway => format!("an undo file U{}__….sql", self.version),
            Layout::Diesel | Layout::Prisma => beside("down.sql"),
            Layout::Sqitch => {
                let script = self.up.path.file_name().map(|n| n.to_owned());
                let revert = self
                    .up
                    .path
                    .parent()
                    .and_then(Path::parent)
                    .map(|top| top.join("revert"));
                match (revert, script) {
                    (Some(revert), Some(script)) => revert.join(script).display().to_string(),
                    _ => "a revert script".to_owned(),
                }
            }
        }
    }

    /// The section for a direction.
    pub fn section(&self, direction: Direction) -> Option<&Section> {
        match direction {
            Direction::Up => Some(&self.up),
            Direction::Down => self.down_section().ok(),
        }
    }

    /// The statements a run sends for `direction`, checked against the section's transaction
    /// mode: the up section followed by its verify statements, or the down section.
    ///
    /// A verify script brackets its checks with `BEGIN` … `ROLLBACK` so that nothing it does
    /// stays; inside the up section's transaction those become a savepoint and a rollback to it.
    pub fn executable_statements(
        &self,
        direction: Direction,
        dialect: Dialect,
    ) -> Result<Vec<Statement>, SourceError> {
        let Some(section) = self.section(direction) else {
            return Ok(Vec::new());
        };
        let mut statements = section.executable_statements(dialect)?;
        if let (Direction::Up, Some(verify)) = (direction, &self.verify) {
            for mut statement in verify.statements(dialect)? {
                if section.options.transaction {
                    match &statement.transactionality {
                        Transactionality::TransactionControl { what } if what == "BEGIN" => {
                            statement.sql = VERIFY_SAVEPOINT.to_owned();
                            statement.transactionality = Transactionality::Any;
                        }
                        Transactionality::TransactionControl { what } if what == "ROLLBACK" => {
                            statement.sql =
                                format!("ROLLBACK TO SAVEPOINT {VERIFY_SAVEPOINT_NAME}");
                            statement.transactionality = Transactionality::Any;
                        }
                        _ => verify.check_fits_transaction(&statement)?,
                    }
                }
                statement.index = statements.len();
                statement.file = Some(verify.path.clone());
                statements.push(statement);
            }
        }
        Ok(statements)
    }
}

const VERIFY_SAVEPOINT_NAME: &str = "safeshift_verify";
const VERIFY_SAVEPOINT: &str = "SAVEPOINT safeshift_verify";

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
    /// How to ask for no transaction in this file's layout, when it is not a marker option.
    pub(crate) no_transaction_help: Option<String>,
}

/// What a layout reader knows about a section, to build it.
pub(crate) struct SectionParts<'a> {
    pub direction: Direction,
    pub path: &'a Path,
    pub relative_path: &'a Path,
    pub file: &'a FileText,
    pub marker_line: Option<u32>,
    pub options: SectionOptions,
    /// The section, marker line included: what the checksum covers.
    pub range: Range<usize>,
    /// The SQL after the marker line.
    pub body: Range<usize>,
    /// See [`Section::no_transaction_help`].
    pub no_transaction_help: Option<String>,
}

impl Section {
    pub(crate) fn build(parts: SectionParts<'_>) -> Result<Section, SourceError> {
        let source = &parts.file.text;
        let empty = has_code(parts.path, source, parts.body.clone())?.is_none();
        Ok(Section {
            direction: parts.direction,
            path: parts.path.to_path_buf(),
            relative_path: parts.relative_path.to_path_buf(),
            options: parts.options,
            marker_line: parts.marker_line,
            checksum: Checksum::of(parts.file.checksummed(parts.range)),
            source: source.clone(),
            body: parts.body,
            empty,
            no_transaction_help: parts.no_transaction_help,
        })
    }

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

    pub(crate) fn check_fits_transaction(&self, statement: &Statement) -> Result<(), SourceError> {
        let marker = match (&self.no_transaction_help, self.marker_line) {
            (Some(help), _) => help.clone(),
            (None, Some(line)) => format!(
                "add transaction:false to the marker on line {line}: `-- migrate:{} transaction:false`",
                self.direction
            ),
            (None, None) => format!(
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
