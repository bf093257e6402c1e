//! goose SQL migrations: `{version}_{name}.sql` with `-- +goose Up` and `-- +goose Down`
//! annotations (case-insensitive, on their own line), `-- +goose StatementBegin` /
//! `StatementEnd` around statements that hold semicolons, `-- +goose NO TRANSACTION` for the
//! whole file, and `-- +goose ENVSUB ON` / `OFF` around lines whose `${VAR}` and `$VAR` goose
//! replaces with environment variables.
//!
//! safeshift splits statements with PostgreSQL's own lexer, which never splits inside quotes,
//! dollar-quoted bodies or `BEGIN ATOMIC … END`, so a `StatementBegin` block reaches the server
//! as the statements it holds; the annotations are checked (balanced, inside a section) and
//! otherwise left as the comments they are. goose Go migrations (`.go` files) cannot run here
//! and stop the load.

use std::path::Path;

use crate::error::{SourceError, SourceErrorKind};
use crate::migration::{Section, SectionParts};
use crate::options::{Direction, SectionOptions};
use crate::statements::has_code;
use crate::template::{self, DollarStyle, FileText, Variables};

/// An annotation line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Annotation {
    Up,
    Down,
    StatementBegin,
    StatementEnd,
    NoTransaction,
    EnvsubOn,
    EnvsubOff,
}

const NO_TRANSACTION_HELP: &str = "add a line `-- +goose NO TRANSACTION` to the file (goose's annotation; safeshift then sends each statement on its own and resumes from a failed one)";

/// Whether a line is a goose annotation, and which; `Err` carries an annotation goose does not
/// know.
pub(crate) fn annotation(line: &str) -> Option<Result<Annotation, String>> {
    let rest = line.trim_start().strip_prefix("--")?.trim_start();
    if rest.len() < 6 || !rest[..6].eq_ignore_ascii_case("+goose") {
        return None;
    }
    let command = rest[6..].split_whitespace().collect::<Vec<_>>().join(" ");
    Some(match command.to_ascii_lowercase().as_str() {
        "up" => Ok(Annotation::Up),
        "down" => Ok(Annotation::Down),
        "statementbegin" => Ok(Annotation::StatementBegin),
        "statementend" => Ok(Annotation::StatementEnd),
        "no transaction" => Ok(Annotation::NoTransaction),
        "envsub on" => Ok(Annotation::EnvsubOn),
        "envsub off" => Ok(Annotation::EnvsubOff),
        _ => Err(command),
    })
}

/// Reads a goose file into its up and down sections.
pub(crate) fn read(
    path: &Path,
    relative_path: &Path,
    file: FileText,
    variables: &Variables,
) -> Result<(Section, Option<Section>), SourceError> {
    let error = |kind: SourceErrorKind, line: u32, message: String, help: &str| {
        SourceError::new(kind, path, message)
            .at_line(line)
            .help(help.to_owned())
    };
    let mut up: Option<(u32, usize)> = None;
    let mut down: Option<(u32, usize)> = None;
    let mut no_transaction = false;
    let mut open_block: Option<u32> = None;
    let mut envsub_from: Option<u32> = None;
    let mut envsub_lines = Vec::new();
    let mut last_line = 0;
    for (line, range) in file.text.lines() {
        last_line = line;
        let text = &file.text.as_str()[range.clone()];
        let Some(found) = annotation(text) else {
            continue;
        };
        let found = found.map_err(|command| {
            error(
                SourceErrorKind::UnknownMarker,
                line,
                format!("`-- +goose {command}` is not a goose annotation"),
                "goose knows Up, Down, StatementBegin, StatementEnd, NO TRANSACTION, ENVSUB ON and ENVSUB OFF",
            )
        })?;
        match found {
            Annotation::Up | Annotation::Down => {
                if let Some(begin) = open_block {
                    return Err(error(
                        SourceErrorKind::MisplacedMarker,
                        line,
                        format!("a section starts inside the StatementBegin block of line {begin}"),
                        "close the block with `-- +goose StatementEnd` before the next section",
                    ));
                }
                if found == Annotation::Up
                    && let Some((down_line, _)) = down
                {
                    return Err(error(
                        SourceErrorKind::MisplacedMarker,
                        line,
                        format!("`-- +goose Up` comes after `-- +goose Down` (line {down_line})"),
                        "put the Up section first",
                    ));
                }
                let slot = if found == Annotation::Up {
                    &mut up
                } else {
                    &mut down
                };
                if let Some((first, _)) = slot {
                    return Err(error(
                        SourceErrorKind::MisplacedMarker,
                        line,
                        format!(
                            "second `-- +goose {}` (the first is on line {first})",
                            if found == Annotation::Up {
                                "Up"
                            } else {
                                "Down"
                            }
                        ),
                        "a goose file has one Up section and at most one Down section",
                    ));
                }
                *slot = Some((line, range.start));
            }
            Annotation::StatementBegin => {
                if let Some(begin) = open_block {
                    return Err(error(
                        SourceErrorKind::MisplacedMarker,
                        line,
                        format!("StatementBegin inside the block opened on line {begin}"),
                        "close the first block with `-- +goose StatementEnd`",
                    ));
                }
                if up.is_none() {
                    return Err(error(
                        SourceErrorKind::MisplacedMarker,
                        line,
                        "StatementBegin before `-- +goose Up`".into(),
                        "statements belong in the Up or Down section",
                    ));
                }
                open_block = Some(line);
            }
            Annotation::StatementEnd => {
                if open_block.take().is_none() {
                    return Err(error(
                        SourceErrorKind::MisplacedMarker,
                        line,
                        "StatementEnd without a StatementBegin".into(),
                        "add `-- +goose StatementBegin` above the statement, or remove this line",
                    ));
                }
            }
            Annotation::NoTransaction => no_transaction = true,
            Annotation::EnvsubOn => {
                envsub_from.get_or_insert(line);
            }
            Annotation::EnvsubOff => {
                if let Some(from) = envsub_from.take() {
                    envsub_lines.push((from, line));
                }
            }
        }
    }
    if let Some(begin) = open_block {
        return Err(error(
            SourceErrorKind::MisplacedMarker,
            begin,
            "StatementBegin is never closed".into(),
            "add `-- +goose StatementEnd` after the statement",
        ));
    }
    if let Some(from) = envsub_from {
        envsub_lines.push((from, last_line));
    }
    let Some((up_line, _)) = up else {
        return Err(SourceError::new(
            SourceErrorKind::MissingUp,
            path,
            "the goose file has no `-- +goose Up` annotation",
        )
        .at_line(down.map_or(1, |(line, _)| line))
        .help("goose requires `-- +goose Up` above the migration's SQL"));
    };
    let file = if envsub_lines.is_empty() {
        file
    } else {
        let lookup = |name: &str| {
            variables
                .given
                .get(name)
                .or_else(|| variables.environment.get(name))
                .cloned()
        };
        let help = |name: &str| {
            format!("goose takes `{name}` from the environment: set it, or pass --var {name}=VALUE")
        };
        template::expand_dollar(
            path,
            file,
            Some(&envsub_lines),
            &DollarStyle {
                shell_forms: true,
                lookup: &lookup,
                missing_help: &help,
                dotted_names: false,
            },
        )?
    };
    let source = &file.text;
    if let Some(token) = has_code(path, source, 0..source.line_start(up_line))? {
        let (line, column) = source.line_col(token.start);
        return Err(SourceError::new(
            SourceErrorKind::CodeBeforeUp,
            path,
            format!("SQL before `-- +goose Up` (line {up_line}) would never run"),
        )
        .at(line, column)
        .help("move it below the annotation, or delete it"));
    }
    let end = source.as_str().len();
    let options = SectionOptions {
        transaction: !no_transaction,
        ..SectionOptions::default()
    };
    let section = |direction: Direction, line: u32, start: usize, section_end: usize| {
        let body_start = (source.line_end(line) + 1).min(section_end);
        Section::build(SectionParts {
            direction,
            path,
            relative_path,
            file: &file,
            marker_line: Some(line),
            options: options.clone(),
            range: start..section_end,
            body: body_start..section_end,
            no_transaction_help: Some(NO_TRANSACTION_HELP.to_owned()),
        })
    };
    // Offsets are taken again from the line numbers: expansion moved bytes, never lines.
    let up_start = source.line_start(up_line);
    let down = down.map(|(line, _)| (line, source.line_start(line)));
    let up_end = down.map_or(end, |(_, start)| start);
    let up_section = section(Direction::Up, up_line, up_start, up_end)?;
    let down_section = down
        .map(|(line, start)| section(Direction::Down, line, start, end))
        .transpose()?;
    Ok((up_section, down_section))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statements::Dialect;
    use crate::text::SourceText;

    fn read_text(text: &str) -> Result<(Section, Option<Section>), SourceError> {
        let file = FileText::plain(
            SourceText::from_bytes(Path::new("00001_x.sql"), text.as_bytes()).unwrap(),
        );
        read(
            Path::new("00001_x.sql"),
            Path::new("00001_x.sql"),
            file,
            &Variables::default(),
        )
    }

    #[test]
    fn annotations_are_case_insensitive() {
        assert_eq!(annotation("-- +goose Up"), Some(Ok(Annotation::Up)));
        assert_eq!(annotation("-- +goose up"), Some(Ok(Annotation::Up)));
        assert_eq!(
            annotation("-- +goose NO  TRANSACTION"),
            Some(Ok(Annotation::NoTransaction))
        );
        assert_eq!(
            annotation("-- +goose statementbegin"),
            Some(Ok(Annotation::StatementBegin))
        );
        assert_eq!(
            annotation("-- +goose Sideways"),
            Some(Err("Sideways".into()))
        );
        assert_eq!(annotation("-- a goose"), None);
    }

    #[test]
    fn sections_blocks_and_no_transaction() {
        let (up, down) = read_text(
            "-- +goose NO TRANSACTION\n-- +goose Up\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql;\n-- +goose StatementEnd\nCREATE INDEX CONCURRENTLY i ON t (a);\n\n-- +goose Down\nDROP INDEX CONCURRENTLY i;\nDROP FUNCTION f();\n",
        )
        .unwrap();
        assert!(!up.options.transaction);
        assert_eq!(up.marker_line, Some(2));
        let statements = up.executable_statements(Dialect::Postgres).unwrap();
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[0].line, 4);
        let down = down.unwrap();
        assert!(!down.options.transaction);
        assert_eq!(down.statements(Dialect::Postgres).unwrap().len(), 2);
    }

    #[test]
    fn broken_annotations_are_located() {
        let error = read_text("-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n").unwrap_err();
        assert_eq!(
            (error.kind, error.line),
            (SourceErrorKind::MisplacedMarker, Some(2))
        );
        let error = read_text("SELECT 1;\n").unwrap_err();
        assert_eq!(error.kind, SourceErrorKind::MissingUp);
        let error = read_text("CREATE TABLE t ();\n-- +goose Up\nSELECT 1;\n").unwrap_err();
        assert_eq!(
            (error.kind, error.line),
            (SourceErrorKind::CodeBeforeUp, Some(1))
        );
        let error = read_text("-- +goose Up\nSELECT 1;\n-- +goose Sideways\n").unwrap_err();
        assert_eq!(
            (error.kind, error.line),
            (SourceErrorKind::UnknownMarker, Some(3))
        );
    }

    #[test]
    fn envsub_regions_expand_from_variables_and_the_environment() {
        let file = FileText::plain(
            SourceText::from_bytes(
                Path::new("x.sql"),
                b"-- +goose Up\n-- +goose ENVSUB ON\nCREATE ROLE ${ROLE_NAME};\n-- +goose ENVSUB OFF\nSELECT '$ROLE_NAME';\n",
            )
            .unwrap(),
        );
        let mut variables = Variables::default();
        variables
            .environment
            .insert("ROLE_NAME".into(), "reporting".into());
        let (up, _) = read(Path::new("x.sql"), Path::new("x.sql"), file, &variables).unwrap();
        let statements = up.statements(Dialect::Postgres).unwrap();
        assert_eq!(statements[0].sql, "CREATE ROLE reporting");
        assert_eq!(statements[1].sql, "SELECT '$ROLE_NAME'");
    }
}
