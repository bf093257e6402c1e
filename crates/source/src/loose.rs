//! Reading a single SQL file that is not (or need not be) part of a migrations directory, for
//! tools such as the linter that are pointed at files.

use std::path::{Path, PathBuf};

use crate::checksum::Checksum;
use crate::error::{SourceError, SourceErrorKind};
use crate::migration::Section;
use crate::options::{self, Direction, KNOWN_OPTIONS, MarkerLine};
use crate::text::SourceText;

/// A SQL file read on its own.
#[derive(Debug, Clone)]
pub struct LooseFile {
    /// The path as given.
    pub path: PathBuf,
    /// The statements to run: the `-- migrate:up` section when the file has one, else the whole
    /// file.
    pub up: Section,
    /// Whether the file carries a `-- migrate:up` marker (so it is meant for a migration runner).
    pub has_marker: bool,
}

impl LooseFile {
    /// Reads `path`. A file with `-- migrate:up` and `-- migrate:down` markers yields its up
    /// section (with the marker's options); any other file is one section holding everything.
    pub fn read(path: impl AsRef<Path>) -> Result<LooseFile, SourceError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|error| {
            SourceError::new(
                SourceErrorKind::Io,
                path,
                format!("cannot read the file: {error}"),
            )
        })?;
        LooseFile::from_bytes(path, &bytes)
    }

    /// Like [`LooseFile::read`], for text already in memory.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<LooseFile, SourceError> {
        let source = SourceText::from_bytes(path, bytes)?;
        let end = source.as_str().len();
        let mut up_marker = None;
        let mut down_start = None;
        for (line, range) in source.lines() {
            let text = &source.as_str()[range.clone()];
            if let MarkerLine::Marker {
                direction,
                options,
                options_offset,
            } = options::classify_line(text)
            {
                match direction {
                    Direction::Up if up_marker.is_none() => {
                        let parsed = options::parse_options(options).map_err(|error| {
                            let column =
                                text[..options_offset + error.offset].chars().count() as u32 + 1;
                            SourceError::new(SourceErrorKind::UnknownOption, path, error.message)
                                .at(line, column)
                                .help(format!("known options: {KNOWN_OPTIONS}"))
                        })?;
                        up_marker = Some((line, range, parsed));
                    }
                    Direction::Down if up_marker.is_some() && down_start.is_none() => {
                        down_start = Some(range.start)
                    }
                    _ => {}
                }
            }
        }
        let has_marker = up_marker.is_some();
        let (section_range, body, options, marker_line) = match up_marker {
            Some((line, range, options)) => {
                let section_end = down_start.unwrap_or(end);
                let body_start = (range.end + 1).min(section_end);
                (
                    range.start..section_end,
                    body_start..section_end,
                    options,
                    Some(line),
                )
            }
            None => (0..end, 0..end, Default::default(), None),
        };
        let empty = !has_code_quickly(&source.as_str()[body.clone()]);
        let relative_path = PathBuf::from(path.file_name().unwrap_or(path.as_os_str()));
        Ok(LooseFile {
            path: path.to_path_buf(),
            up: Section {
                direction: Direction::Up,
                path: path.to_path_buf(),
                relative_path,
                options,
                marker_line,
                checksum: Checksum::of(&source.as_str()[section_range]),
                source,
                body,
                empty,
                no_transaction_help: None,
            },
            has_marker,
        })
    }
}

/// Whether `sql` holds anything but whitespace and comments. The splitter's lexer answers the
/// same question exactly, at the cost of tokenising the whole file; for a file read on its own,
/// whose statements are split right after, this check is enough.
fn has_code_quickly(sql: &str) -> bool {
    let mut rest = sql.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after
                .find('\n')
                .map_or("", |end| &after[end..])
                .trim_start();
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after
                .find("*/")
                .map_or("", |end| &after[end + 2..])
                .trim_start();
        } else {
            return !rest.is_empty();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statements::Dialect;

    #[test]
    fn only_comments_is_empty() {
        assert!(!has_code_quickly("  -- a\n/* b\n c */\n-- d"));
        assert!(has_code_quickly("-- a\nSELECT 1"));
        assert!(has_code_quickly("/* a */ x"));
        assert!(
            LooseFile::from_bytes(Path::new("x.sql"), b"-- nothing\n")
                .unwrap()
                .up
                .is_empty()
        );
    }

    #[test]
    fn a_plain_file_is_one_section() {
        let file = LooseFile::from_bytes(
            Path::new("x.sql"),
            b"CREATE TABLE a (id int);\nDROP TABLE b;\n",
        )
        .unwrap();
        assert!(!file.has_marker);
        assert!(file.up.options.transaction);
        assert_eq!(file.up.statements(Dialect::Postgres).unwrap().len(), 2);
    }

    #[test]
    fn a_file_with_markers_yields_its_up_section_and_options() {
        let text = b"-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (a);\n-- migrate:down\nDROP INDEX i;\n";
        let file = LooseFile::from_bytes(Path::new("0001_x.sql"), text).unwrap();
        assert!(file.has_marker);
        assert!(!file.up.options.transaction);
        let statements = file.up.statements(Dialect::Postgres).unwrap();
        assert_eq!(statements.len(), 1);
        assert_eq!(statements[0].line, 2);
    }
}
