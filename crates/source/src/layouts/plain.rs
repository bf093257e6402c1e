//! Hand-run numbered files, as teams keep them before they adopt a tool: `{version}_{name}.sql`
//! whose rollback follows a `-- Down migration` comment (node-pg-migrate writes
//! `-- Up Migration` / `-- Down Migration`; `-- up`, `-- down:` and `-- migration up` are read
//! too), or no sections at all, the whole file being the migration. sqlx's first-line
//! `-- no-transaction` is honoured.

use std::path::Path;

use crate::error::{SourceError, SourceErrorKind};
use crate::migration::{Section, SectionParts};
use crate::options::{Direction, SectionOptions};
use crate::statements::has_code;
use crate::template::FileText;

const NO_TRANSACTION_HELP: &str = "make `-- no-transaction` the file's first line (safeshift then sends each statement on its own and resumes from a failed one)";

/// Which section a comment line starts, if it is a plain section comment.
pub(crate) fn marker(line: &str) -> Option<Direction> {
    let rest = line.trim_start().strip_prefix("--")?;
    let words: Vec<String> = rest
        .trim_start_matches('-')
        .trim()
        .trim_end_matches(':')
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["up"] | ["up", "migration"] | ["migration", "up"] => Some(Direction::Up),
        ["down"] | ["down", "migration"] | ["migration", "down"] => Some(Direction::Down),
        _ => None,
    }
}

/// Reads a plain file. Without section comments the whole file is the up migration.
pub(crate) fn read(
    path: &Path,
    relative_path: &Path,
    file: FileText,
) -> Result<(Section, Option<Section>), SourceError> {
    let source = &file.text;
    let mut up: Option<(u32, usize)> = None;
    let mut down: Option<(u32, usize)> = None;
    for (line, range) in source.lines() {
        let Some(direction) = marker(&source.as_str()[range.clone()]) else {
            continue;
        };
        let misplaced = |message: String, help: &str| {
            SourceError::new(SourceErrorKind::MisplacedMarker, path, message)
                .at_line(line)
                .help(help.to_owned())
        };
        match direction {
            Direction::Up if up.is_some() || down.is_some() => {
                return Err(misplaced(
                    "a second up-migration comment, or one after the down migration".into(),
                    "a file has one up part, then at most one down part",
                ));
            }
            Direction::Down if down.is_some() => {
                return Err(misplaced(
                    "a second down-migration comment".into(),
                    "a file has at most one down part",
                ));
            }
            Direction::Up => up = Some((line, range.start)),
            Direction::Down => down = Some((line, range.start)),
        }
    }
    let end = source.as_str().len();
    let options = SectionOptions {
        transaction: !source.as_str().starts_with("-- no-transaction"),
        ..SectionOptions::default()
    };
    let up_end = down.map_or(end, |(_, start)| start);
    let (up_line, up_range, up_body) = match up {
        Some((line, start)) => {
            if let Some(token) = has_code(path, source, 0..start)? {
                let (code_line, column) = source.line_col(token.start);
                return Err(SourceError::new(
                    SourceErrorKind::CodeBeforeUp,
                    path,
                    format!("SQL before the up-migration comment (line {line})"),
                )
                .at(code_line, column)
                .help("move it below the comment; above it, it reads as neither the up nor the down migration"));
            }
            let body_start = (source.line_end(line) + 1).min(up_end);
            (Some(line), start..up_end, body_start..up_end)
        }
        None => (None, 0..up_end, 0..up_end),
    };
    let up_section = Section::build(SectionParts {
        direction: Direction::Up,
        path,
        relative_path,
        file: &file,
        marker_line: up_line,
        options: options.clone(),
        range: up_range,
        body: up_body,
        no_transaction_help: Some(NO_TRANSACTION_HELP.to_owned()),
    })?;
    if up_section.is_empty() {
        return Err(SourceError::new(
            SourceErrorKind::EmptyUp,
            path,
            "the up migration has no statements",
        )
        .at_line(up_line.unwrap_or(1))
        .help("write the migration's SQL, or delete the file"));
    }
    let down_section = down
        .map(|(line, start)| {
            Section::build(SectionParts {
                direction: Direction::Down,
                path,
                relative_path,
                file: &file,
                marker_line: Some(line),
                options: options.clone(),
                range: start..end,
                body: (source.line_end(line) + 1).min(end)..end,
                no_transaction_help: Some(NO_TRANSACTION_HELP.to_owned()),
            })
        })
        .transpose()?;
    Ok((up_section, down_section))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statements::Dialect;
    use crate::text::SourceText;

    fn read_text(text: &str) -> Result<(Section, Option<Section>), SourceError> {
        let file =
            FileText::plain(SourceText::from_bytes(Path::new("x.sql"), text.as_bytes()).unwrap());
        read(Path::new("001_x.sql"), Path::new("001_x.sql"), file)
    }

    #[test]
    fn section_comments() {
        assert_eq!(marker("-- Up Migration"), Some(Direction::Up));
        assert_eq!(marker("--- DOWN:"), Some(Direction::Down));
        assert_eq!(marker("-- migration down"), Some(Direction::Down));
        assert_eq!(marker("-- upgrade the users"), None);
        assert_eq!(marker("SELECT 1; -- up"), None);
    }

    #[test]
    fn up_and_down_parts() {
        let (up, down) = read_text(
            "-- Up Migration\nCREATE TABLE a (id int);\n\n-- Down Migration\nDROP TABLE a;\n",
        )
        .unwrap();
        assert_eq!(up.statements(Dialect::Postgres).unwrap()[0].line, 2);
        assert_eq!(
            down.unwrap().statements(Dialect::Postgres).unwrap()[0].sql,
            "DROP TABLE a"
        );
        let (up, down) = read_text("CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n").unwrap();
        assert_eq!(up.statements(Dialect::Postgres).unwrap().len(), 2);
        assert!(down.is_none());
        let (up, down) =
            read_text("CREATE TABLE a (id int);\n-- down\n-- DROP TABLE a;\n").unwrap();
        assert_eq!(up.statements(Dialect::Postgres).unwrap().len(), 1);
        assert!(down.unwrap().is_empty());
    }

    #[test]
    fn no_transaction_first_line() {
        let (up, _) =
            read_text("-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\n").unwrap();
        assert!(!up.options.transaction);
    }

    #[test]
    fn code_above_the_up_comment_is_an_error() {
        let error = read_text("SELECT 1;\n-- Up Migration\nSELECT 2;\n").unwrap_err();
        assert_eq!(
            (error.kind, error.line),
            (SourceErrorKind::CodeBeforeUp, Some(1))
        );
    }
}
