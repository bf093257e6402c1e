//! Errors found while reading migration files: each names the file, the line when there is one,
//! what is wrong and what to do about it.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// What kind of problem a [`SourceError`] reports, for callers that react to specific cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceErrorKind {
    /// The file or directory could not be read.
    Io,
    /// The file is not valid UTF-8.
    NotUtf8,
    /// The file holds nothing but whitespace.
    Empty,
    /// The file has no `-- migrate:up` section.
    MissingUp,
    /// The up section holds no statements.
    EmptyUp,
    /// A section marker appears twice, or the down marker comes before the up marker.
    MisplacedMarker,
    /// SQL stands before the `-- migrate:up` marker, where it would never run.
    CodeBeforeUp,
    /// A line looks like a section marker but is not one.
    UnknownMarker,
    /// A marker carries an option safeshift does not know, or a bad value for one it knows.
    UnknownOption,
    /// Two files carry the same version.
    DuplicateVersion,
    /// A down or rollback file has no up file with the same version.
    OrphanDown,
    /// A file name starts like a migration but does not follow `{version}_{description}.sql`.
    BadFileName,
    /// The SQL could not be tokenised (an unterminated string, comment or dollar quote).
    Lexer,
    /// A statement cannot run in the transaction mode the migration asks for.
    TransactionMode,
    /// A `-- safeshift:` directive is unknown or used where it cannot work.
    Directive,
    /// A template placeholder (`{{ .Name }}`, `${name}`) has no value, or is template logic
    /// safeshift cannot expand.
    Template,
    /// Another tool's configuration or plan file (`flyway.conf`, `sqitch.plan`,
    /// `metadata.toml`…) cannot be read or says something safeshift cannot follow.
    Config,
    /// The directory mixes layouts that cannot be read together, or holds a migration safeshift
    /// cannot run (a goose Go migration, a psql meta-command).
    Layout,
}

/// A problem with a migration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceError {
    pub kind: SourceErrorKind,
    /// The file, as found under the migrations directory.
    pub path: PathBuf,
    /// 1-based line, when the problem has a place in the file.
    pub line: Option<u32>,
    /// 1-based column (in characters), when known.
    pub column: Option<u32>,
    pub message: String,
    /// What to do next.
    pub help: Option<String>,
}

impl SourceError {
    pub(crate) fn new(kind: SourceErrorKind, path: &Path, message: impl Into<String>) -> Self {
        SourceError {
            kind,
            path: path.to_path_buf(),
            line: None,
            column: None,
            message: message.into(),
            help: None,
        }
    }

    /// A problem with a `-- safeshift:` directive, found by whoever acts on it.
    pub fn directive(
        path: &Path,
        line: u32,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        SourceError::new(SourceErrorKind::Directive, path, message)
            .at_line(line)
            .help(help)
    }

    /// A problem with another tool's configuration or plan file.
    pub(crate) fn config(path: &Path, message: impl Into<String>) -> Self {
        SourceError::new(SourceErrorKind::Config, path, message)
    }

    pub(crate) fn at(mut self, line: u32, column: u32) -> Self {
        self.line = Some(line);
        self.column = Some(column);
        self
    }

    pub(crate) fn at_line(mut self, line: u32) -> Self {
        self.line = Some(line);
        self.column = Some(1);
        self
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// `path:line:column`, as far as it is known.
    pub fn location(&self) -> String {
        match (self.line, self.column) {
            (Some(line), Some(column)) => format!("{}:{line}:{column}", self.path.display()),
            (Some(line), None) => format!("{}:{line}", self.path.display()),
            _ => self.path.display().to_string(),
        }
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location(), self.message)
    }
}

impl std::error::Error for SourceError {}

/// Every problem found in a migrations directory. Loading reports all of them at once, so one run
/// shows the whole list instead of one error per attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceErrors(pub Vec<SourceError>);

impl SourceErrors {
    pub fn iter(&self) -> impl Iterator<Item = &SourceError> {
        self.0.iter()
    }
}

impl fmt::Display for SourceErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SourceErrors {}

impl From<SourceError> for SourceErrors {
    fn from(error: SourceError) -> Self {
        SourceErrors(vec![error])
    }
}
