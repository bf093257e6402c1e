//! Placeholders that another tool expands before a migration's SQL reaches the server: Go
//! templates (`{{ .Schema }}`), goose's `-- +goose ENVSUB ON` regions (`${VAR}`, `$VAR`) and
//! Flyway's placeholders (`${name}`). safeshift expands the simple forms from the values it is
//! given and stops at anything else, naming the file and line, rather than send a placeholder to
//! the server.
//!
//! Expansion never moves a line: a value holding a line break is refused, so every line and
//! column reported afterwards is the one an editor shows. Checksums are taken on the file as
//! written, so the same file gives the same checksum whatever the values.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use crate::error::{SourceError, SourceErrorKind};
use crate::text::SourceText;

/// A file's text as the server will see it, and as written when the two differ.
#[derive(Debug, Clone)]
pub(crate) struct FileText {
    /// The text with its placeholders expanded.
    pub text: SourceText,
    /// The text as written, when expansion changed it (checksums are taken on this).
    pub raw: Option<SourceText>,
}

impl FileText {
    pub fn plain(text: SourceText) -> FileText {
        FileText { text, raw: None }
    }

    /// The text checksums are taken on for the lines that `range` of the expanded text spans.
    pub fn checksummed(&self, range: Range<usize>) -> &str {
        match &self.raw {
            None => &self.text.as_str()[range],
            Some(raw) => {
                // Lines line up between the two texts; the range starts at a line start.
                let first = self.text.line_col(range.start).0;
                let last = if range.end >= self.text.as_str().len() {
                    raw.line_count()
                } else {
                    self.text.line_col(range.end).0
                };
                let start = raw.line_start(first);
                let end = if range.end >= self.text.as_str().len() {
                    raw.as_str().len()
                } else {
                    raw.line_start(last)
                };
                &raw.as_str()[start..end.max(start)]
            }
        }
    }

    /// Replaces the expanded text (after another kind of placeholder was expanded).
    pub fn expanded(self, text: String) -> FileText {
        let raw = self.raw.unwrap_or_else(|| self.text.clone());
        FileText {
            text: SourceText::from_normalized(&text),
            raw: Some(raw),
        }
    }
}

/// Values for placeholders: `--var NAME=VALUE` first, then (where the tool reads it) the
/// environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Variables {
    /// Given with `--var`.
    pub given: BTreeMap<String, String>,
    /// The process environment, for goose's ENVSUB (goose reads environment variables).
    pub environment: BTreeMap<String, String>,
}

/// Expands Go template actions of the form `{{ .NAME }}` (or `{{ NAME }}` with spaces inside the
/// braces) from `--var`. Any other action (`{{ if … }}`, `{{ .A | f }}`) is an error: its result
/// cannot be known. Text that only looks like braces (a two-dimensional array literal such as
/// `'{{1,2},{3,4}}'`) is left alone.
pub(crate) fn expand_go_templates(
    path: &Path,
    file: FileText,
    variables: &Variables,
) -> Result<FileText, SourceError> {
    let text = file.text.as_str();
    if !text.contains("{{") {
        return Ok(file);
    }
    let mut output = String::with_capacity(text.len());
    let mut copied = 0;
    let mut changed = false;
    let mut search = 0;
    while let Some(found) = text[search..].find("{{") {
        let open = search + found;
        let line_end = text[open..].find('\n').map_or(text.len(), |i| open + i);
        let Some(close) = text[open + 2..line_end].find("}}").map(|i| open + 2 + i) else {
            search = open + 2;
            continue;
        };
        let inner = &text[open + 2..close];
        let Some(action) = template_action(inner) else {
            search = open + 2;
            continue;
        };
        let (line, column) = file.text.line_col(open);
        let placeholder = &text[open..close + 2];
        let error = |message: String, help: String| {
            SourceError::new(SourceErrorKind::Template, path, message)
                .at(line, column)
                .help(help)
        };
        match action {
            TemplateAction::Variable(name) => {
                let Some(value) = variables.given.get(name) else {
                    return Err(error(
                        format!(
                            "`{placeholder}` is a template placeholder and no value was given for `{name}`"
                        ),
                        format!(
                            "pass --var {name}=VALUE to expand it (safeshift expands `{{{{ .NAME }}}}` placeholders from --var), or render the file with your template tool first"
                        ),
                    ));
                };
                let value = single_line(value, name, path, line, column)?;
                output.push_str(&text[copied..open]);
                output.push_str(value);
                copied = close + 2;
                changed = true;
            }
            TemplateAction::Logic(word) => {
                return Err(error(
                    format!("`{placeholder}` is template logic (`{word}`) that safeshift cannot expand"),
                    "safeshift expands only `{{ .NAME }}` placeholders (with --var NAME=VALUE); render the file with your template tool first, or write the SQL out".to_owned(),
                ));
            }
        }
        search = close + 2;
    }
    if !changed {
        return Ok(file);
    }
    output.push_str(&text[copied..]);
    Ok(file.expanded(output))
}

enum TemplateAction<'a> {
    Variable(&'a str),
    /// Anything else a template engine would act on; the word names it.
    Logic(&'a str),
}

/// What the text between `{{` and `}}` is, if it is a Go template action at all.
fn template_action(inner: &str) -> Option<TemplateAction<'_>> {
    // `{{-` and `-}}` trim the text around the action.
    let trimmed = inner.strip_prefix("- ").unwrap_or(inner);
    let trimmed = trimmed.strip_suffix(" -").unwrap_or(trimmed);
    let spaced = trimmed.starts_with(char::is_whitespace) && trimmed.ends_with(char::is_whitespace);
    let body = trimmed.trim();
    if body.is_empty() || body.contains(['{', '}']) {
        return None;
    }
    if let Some(name) = body.strip_prefix('.')
        && is_identifier(name)
    {
        return Some(TemplateAction::Variable(name));
    }
    if spaced && is_identifier(body) && !is_template_keyword(body) {
        return Some(TemplateAction::Variable(body));
    }
    let word = body
        .split(|c: char| c.is_whitespace() || c == '|' || c == '(')
        .next()
        .unwrap_or(body);
    let looks_like_action = body.starts_with(['.', '$'])
        || body.starts_with("/*")
        || is_template_keyword(word)
        || (spaced && body.contains('|'));
    looks_like_action.then_some(TemplateAction::Logic(word))
}

fn is_template_keyword(word: &str) -> bool {
    matches!(
        word,
        "if" | "else"
            | "end"
            | "range"
            | "with"
            | "define"
            | "template"
            | "block"
            | "break"
            | "continue"
    )
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// How `${…}` placeholders are written and where their values come from.
pub(crate) struct DollarStyle<'a> {
    /// goose's envsub also expands `$NAME` and `${NAME:-default}`; Flyway only `${name}`.
    pub shell_forms: bool,
    /// The value of a name, if it has one.
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
    /// What to tell the user when a name has no value.
    pub missing_help: &'a dyn Fn(&str) -> String,
    /// Names may contain `.`, `:` and `-` (Flyway's `${flyway:table}`).
    pub dotted_names: bool,
}

/// Expands `${name}` placeholders (and, with `shell_forms`, `$NAME`, `${NAME:-default}`,
/// `${NAME-default}`) in the given line ranges of the text (1-based, inclusive), or everywhere.
pub(crate) fn expand_dollar(
    path: &Path,
    file: FileText,
    lines: Option<&[(u32, u32)]>,
    style: &DollarStyle<'_>,
) -> Result<FileText, SourceError> {
    let text = file.text.as_str();
    if !text.contains('$') {
        return Ok(file);
    }
    let in_scope = |offset: usize| -> bool {
        match lines {
            None => true,
            Some(ranges) => {
                let line = file.text.line_col(offset).0;
                ranges
                    .iter()
                    .any(|&(first, last)| line >= first && line <= last)
            }
        }
    };
    let bytes = text.as_bytes();
    let mut output = String::with_capacity(text.len());
    let mut copied = 0;
    let mut changed = false;
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] != b'$' || !in_scope(index) {
            index += 1;
            continue;
        }
        let start = index;
        let (name, default, end) = if bytes.get(index + 1) == Some(&b'{') {
            let Some(close) = text[index + 2..].find('}').map(|i| index + 2 + i) else {
                index += 1;
                continue;
            };
            let inner = &text[index + 2..close];
            let (name, default) = if style.shell_forms {
                match inner.find([':', '-']) {
                    Some(at) if inner[at..].starts_with(":-") => {
                        (&inner[..at], Some(&inner[at + 2..]))
                    }
                    Some(at) if inner[at..].starts_with('-') => {
                        (&inner[..at], Some(&inner[at + 1..]))
                    }
                    _ => (inner, None),
                }
            } else {
                (inner, None)
            };
            let valid = if style.dotted_names {
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
            } else {
                is_identifier(name)
            };
            if !valid || name.contains('\n') {
                index += 1;
                continue;
            }
            (name, default, close + 1)
        } else if style.shell_forms {
            if bytes.get(index + 1) == Some(&b'$') {
                // `$$` opens or closes a dollar-quoted body.
                index += 2;
                continue;
            }
            let rest = &text[index + 1..];
            let length = rest
                .char_indices()
                .find(|&(i, c)| {
                    !(c.is_ascii_alphanumeric() || c == '_') || (i == 0 && c.is_ascii_digit())
                })
                .map_or(rest.len(), |(i, _)| i);
            if length == 0 {
                index += 1;
                continue;
            }
            if rest[length..].starts_with('$') {
                // `$tag$` opens or closes a dollar-quoted body.
                index += length + 2;
                continue;
            }
            (&rest[..length], None, index + 1 + length)
        } else {
            index += 1;
            continue;
        };
        let (line, column) = file.text.line_col(start);
        let value = match (style.lookup)(name) {
            Some(value) => value,
            None => match default {
                Some(default) => default.to_owned(),
                None => {
                    return Err(SourceError::new(
                        SourceErrorKind::Template,
                        path,
                        format!(
                            "`{}` is a placeholder and `{name}` has no value",
                            &text[start..end]
                        ),
                    )
                    .at(line, column)
                    .help((style.missing_help)(name)));
                }
            },
        };
        let value = single_line(&value, name, path, line, column)?;
        output.push_str(&text[copied..start]);
        output.push_str(value);
        copied = end;
        changed = true;
        index = end;
    }
    if !changed {
        return Ok(file);
    }
    output.push_str(&text[copied..]);
    Ok(file.expanded(output))
}

fn single_line<'a>(
    value: &'a str,
    name: &str,
    path: &Path,
    line: u32,
    column: u32,
) -> Result<&'a str, SourceError> {
    if value.contains(['\n', '\r']) {
        return Err(SourceError::new(
            SourceErrorKind::Template,
            path,
            format!("the value of `{name}` holds a line break"),
        )
        .at(line, column)
        .help("give a value on one line; a line break would move every line number after it"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> FileText {
        FileText::plain(SourceText::from_bytes(Path::new("t.sql"), text.as_bytes()).unwrap())
    }

    fn given(pairs: &[(&str, &str)]) -> Variables {
        Variables {
            given: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            environment: BTreeMap::new(),
        }
    }

    #[test]
    fn go_placeholders_expand_from_given_values() {
        let expanded = expand_go_templates(
            Path::new("t.sql"),
            file("CREATE SCHEMA {{ .Schema }};\nSET search_path = {{.Schema}};\n"),
            &given(&[("Schema", "app")]),
        )
        .unwrap();
        assert_eq!(
            expanded.text.as_str(),
            "CREATE SCHEMA app;\nSET search_path = app;\n"
        );
        assert_eq!(
            expanded.checksummed(0..expanded.text.as_str().len()),
            "CREATE SCHEMA {{ .Schema }};\nSET search_path = {{.Schema}};\n"
        );
    }

    #[test]
    fn go_placeholders_without_values_and_template_logic_are_errors() {
        let error = expand_go_templates(
            Path::new("t.sql"),
            file("SELECT 1;\nCREATE TABLE {{ .Table }} (id int);\n"),
            &Variables::default(),
        )
        .unwrap_err();
        assert_eq!(error.kind, SourceErrorKind::Template);
        assert_eq!((error.line, error.column), (Some(2), Some(14)));
        assert!(error.help.unwrap().contains("--var Table=VALUE"));
        let error = expand_go_templates(
            Path::new("t.sql"),
            file("{{ if .Replica }}SELECT 1;{{ end }}\n"),
            &given(&[("Replica", "x")]),
        )
        .unwrap_err();
        assert!(
            error.message.contains("template logic (`if`)"),
            "{}",
            error.message
        );
    }

    #[test]
    fn array_literals_are_not_templates() {
        let original = file("SELECT '{{1,2},{3,4}}'::int[][], '{{a,b}}'::text[][];\n");
        let expanded =
            expand_go_templates(Path::new("t.sql"), original, &Variables::default()).unwrap();
        assert!(expanded.raw.is_none());
    }

    #[test]
    fn dollar_placeholders_with_shell_forms_and_defaults() {
        let variables = given(&[("OWNER", "admin")]);
        let lookup = |name: &str| variables.given.get(name).cloned();
        let help = |name: &str| format!("set {name}");
        let style = DollarStyle {
            shell_forms: true,
            lookup: &lookup,
            missing_help: &help,
            dotted_names: false,
        };
        let expanded = expand_dollar(
            Path::new("t.sql"),
            file("GRANT ALL ON t TO $OWNER;\nSELECT '${MODE:-fast}', $$body$$, $q$x$q$, $1;\nSELECT '$OWNER';\n"),
            Some(&[(1, 2)]),
            &style,
        )
        .unwrap();
        assert_eq!(
            expanded.text.as_str(),
            "GRANT ALL ON t TO admin;\nSELECT 'fast', $$body$$, $q$x$q$, $1;\nSELECT '$OWNER';\n"
        );
        let error = expand_dollar(
            Path::new("t.sql"),
            file("SELECT ${MISSING};\n"),
            None,
            &style,
        )
        .unwrap_err();
        assert_eq!((error.line, error.column), (Some(1), Some(8)));
        assert_eq!(error.help.as_deref(), Some("set MISSING"));
    }

    #[test]
    fn values_with_line_breaks_are_refused() {
        let error = expand_go_templates(
            Path::new("t.sql"),
            file("SELECT {{ .X }};\n"),
            &given(&[("X", "1;\nDROP TABLE t")]),
        )
        .unwrap_err();
        assert!(error.message.contains("line break"));
    }
}
