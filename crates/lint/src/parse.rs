//! Parsing one statement with the PostgreSQL grammar, and finding where a syntax error is:
//! libpg_query knows the cursor position, but `pg_query`'s error carries only the message.

use std::collections::VecDeque;
use std::ops::Range;

use pg_query::NodeEnum;
use pg_query::protobuf::Token;
use safeshift_source::{SourceText, Statement};

/// A statement the grammar rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFailure {
    pub message: String,
    /// Byte offset of the offending token in the statement text.
    pub offset: usize,
}

/// How much SQL goes to the parser in one call: a few dozen kilobytes, so that one call per
/// chunk replaces one call per statement (a round trip through libpg_query's protobuf encoding
/// each), while the trees of a chunk stay small: a whole large file in one call builds trees of
/// hundreds of megabytes at once.
const CHUNK_BYTES: usize = 32 << 10;

/// The trees of a section's statements, in order, parsed a chunk at a time as they are taken,
/// so that only one chunk's trees exist besides those the caller keeps. When a chunk fails, or
/// does not yield the statements the splitter found, each of its statements is parsed on its
/// own, so that a syntax error is located and does not hide the others.
pub struct SectionTrees {
    text: SourceText,
    spans: Vec<Range<usize>>,
    /// The next statement to put in a chunk.
    next: usize,
    ready: VecDeque<Result<Option<NodeEnum>, ParseFailure>>,
}

/// Parses the statements of a section (see [`SectionTrees`]); `text` is their file's text.
pub fn parse_section(text: &SourceText, statements: &[Statement]) -> SectionTrees {
    SectionTrees {
        text: text.clone(),
        spans: statements.iter().map(|s| s.span.clone()).collect(),
        next: 0,
        ready: VecDeque::new(),
    }
}

impl SectionTrees {
    fn parse_next_chunk(&mut self) {
        let start = self.next;
        let mut end = start;
        let mut chunk = String::new();
        while end < self.spans.len() && (end == start || chunk.len() < CHUNK_BYTES) {
            chunk.push_str(&self.text.as_str()[self.spans[end].clone()]);
            // The newline ends a trailing `--` comment.
            chunk.push_str("\n;\n");
            end += 1;
        }
        self.next = end;
        match pg_query::parse(&chunk, pg_query::ParserOptions::default()) {
            Ok(tree) if tree.protobuf.stmts.len() == end - start => self.ready.extend(
                tree.protobuf
                    .stmts
                    .into_iter()
                    .map(|raw| Ok(raw.stmt.and_then(|stmt| stmt.node))),
            ),
            _ => {
                for span in &self.spans[start..end] {
                    self.ready
                        .push_back(parse_statement(&self.text.as_str()[span.clone()]));
                }
            }
        }
    }
}

impl Iterator for SectionTrees {
    type Item = Result<Option<NodeEnum>, ParseFailure>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ready.is_empty() && self.next < self.spans.len() {
            self.parse_next_chunk();
        }
        self.ready.pop_front()
    }
}

/// Parses one statement. `Ok(None)` for a statement with no syntax tree (only comments).
pub fn parse_statement(sql: &str) -> Result<Option<NodeEnum>, ParseFailure> {
    match pg_query::parse(sql, pg_query::ParserOptions::default()) {
        Ok(parsed) => Ok(parsed
            .protobuf
            .stmts
            .into_iter()
            .next()
            .and_then(|raw| raw.stmt)
            .and_then(|stmt| stmt.node)),
        Err(error) => {
            let message = match error {
                pg_query::Error::Parse(message) => message,
                other => other.to_string(),
            };
            let offset = locate(sql, &message);
            Err(ParseFailure { message, offset })
        }
    }
}

/// Finds the token a parse error is about. PostgreSQL says `syntax error at or near "X"` for the
/// token it could not accept, or `at end of input`. The grammar rejects a token regardless of
/// what follows it, so of the tokens spelled `X`, the offending one is the first whose prefix
/// (the text up to and including it) fails with the same message.
fn locate(sql: &str, message: &str) -> usize {
    if message.contains("at end of input") {
        return sql.trim_end().len();
    }
    let Some(fragment) = near_fragment(message) else {
        return 0;
    };
    let Ok(tokens) = safeshift_source::scan_tokens(sql) else {
        return sql.find(fragment).unwrap_or(0);
    };
    let candidates: Vec<(usize, usize)> = tokens
        .iter()
        .filter(|token| !matches!(token.token(), Token::SqlComment | Token::CComment))
        .map(|token| (token.start as usize, token.end as usize))
        .filter(|&(start, end)| {
            sql.get(start..end)
                .is_some_and(|text| text.eq_ignore_ascii_case(fragment))
        })
        .collect();
    for &(start, end) in &candidates {
        if let Err(pg_query::Error::Parse(prefix_message)) =
            pg_query::parse(&sql[..end], pg_query::ParserOptions::default())
            && prefix_message == message
        {
            return start;
        }
    }
    candidates
        .first()
        .map_or_else(|| sql.find(fragment).unwrap_or(0), |&(start, _)| start)
}

fn near_fragment(message: &str) -> Option<&str> {
    let start = message.find("at or near \"")? + "at or near \"".len();
    let rest = &message[start..];
    let end = rest.rfind('"')?;
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_at(sql: &str) -> (String, usize) {
        let failure = parse_statement(sql).unwrap_err();
        (failure.message, failure.offset)
    }

    #[test]
    fn finds_the_offending_token_among_equal_ones() {
        let sql = "SELECT a, b FROM t WHERE a = 1 b";
        let (message, offset) = error_at(sql);
        assert!(message.contains("\"b\""), "{message}");
        assert_eq!(offset, sql.rfind('b').unwrap());
    }

    #[test]
    fn finds_a_misspelled_keyword() {
        let sql = "ALTER TABLE users ADD COLUMN email text NOT NUL";
        let (_, offset) = error_at(sql);
        assert_eq!(&sql[offset..], "NUL");
    }

    #[test]
    fn end_of_input_is_the_end() {
        let sql = "CREATE TABLE t (id int";
        let (message, offset) = error_at(sql);
        assert!(message.contains("end of input"), "{message}");
        assert_eq!(offset, sql.len());
    }

    #[test]
    fn parses_good_statements() {
        assert!(matches!(
            parse_statement("SELECT 1"),
            Ok(Some(NodeEnum::SelectStmt(_)))
        ));
    }
}
